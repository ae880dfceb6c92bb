"""Checkpoint save/load throughput and load memory, side by side in one run.

A network of 16 ``nn.Dense(4096, 4096)`` weights, float32 (1.07 GB), is saved and loaded by

* sporax ``.ckpt``            (``save_checkpoint`` / ``load_checkpoint``),
* sporax safetensors          (same calls, ``.safetensors`` file),
* the ``safetensors`` package (``save_file`` / ``safe_open``), for reference,
* raw numpy                   (``np.save`` / ``np.load`` of the same 16 arrays into one file),
  once as is and once followed by ``fsync`` (sporax saves are durable: they fsync).

Every measurement runs in a fresh subprocess so that the peak resident-set growth during a
load (``ru_maxrss`` after minus RSS before) is exact. Loads are warm (the file was just
written, so it is in the page cache). The kinds are interleaved over ``--rounds`` rounds of
``--repeat`` saves and loads each, with ``sync`` between phases, and the best time is kept
(this 2-core VM's disk is noisy). Usage::

    python benchmarks/bench_ckpt.py [--rounds 3] [--repeat 2] [--dir DIR]
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import subprocess
import sys
import tempfile
import time

N_PARAMS, SHAPE = 16, (4096, 4096)
KINDS = ("sporax-ckpt", "sporax-safetensors", "safetensors-pkg", "numpy", "numpy+fsync")
EXT = {
    "sporax-ckpt": ".ckpt",
    "sporax-safetensors": ".safetensors",
    "safetensors-pkg": ".st",
    "numpy": ".npy",
    "numpy+fsync": ".npy",
}


def _arrays():
    import numpy as np

    rng = np.random.default_rng(0)
    return {f"layer{i}.weight": rng.standard_normal(SHAPE, dtype=np.float32) for i in range(N_PARAMS)}


def _rss() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def _save(kind: str, path: str, arrays: dict) -> None:
    import numpy as np

    if kind.startswith("sporax"):
        from sporax import Parameter, nn
        from sporax.common.tensor import Tensor
        from sporax.train.serialization import save_checkpoint

        net = _net(nn, Parameter, Tensor, arrays)
        save_checkpoint(net, path)
    elif kind == "safetensors-pkg":
        from safetensors.numpy import save_file

        save_file(arrays, path)
    else:
        with open(path, "wb") as f:
            for a in arrays.values():
                np.save(f, a)
            if kind == "numpy+fsync":
                f.flush()
                os.fsync(f.fileno())


def _net(nn, Parameter, Tensor, arrays):
    """16 ``nn.Dense(4096, 4096, has_bias=False)`` holding ``arrays`` (bare Parameters if there
    is no Dense); the arrays are shared, not copied."""

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            for name, a in arrays.items():
                layer = name.split(".")[0]
                if hasattr(nn, "Dense"):
                    setattr(self, layer, nn.Dense(SHAPE[1], SHAPE[0], has_bias=False))
                    getattr(self, layer).weight.set_data(Tensor._wrap(a))
                else:
                    setattr(self, layer, Parameter(Tensor._wrap(a)))

    return Net()


def _load(kind: str, path: str):
    import numpy as np

    if kind.startswith("sporax"):
        from sporax.train.serialization import load_checkpoint

        return load_checkpoint(path)
    if kind == "safetensors-pkg":
        from safetensors import safe_open

        with safe_open(path, "np") as f:
            return {k: f.get_tensor(k) for k in f.keys()}
    with open(path, "rb") as f:
        return [np.load(f) for _ in range(N_PARAMS)]


def worker(op: str, kind: str, path: str, repeat: int) -> dict:
    """Runs in a subprocess; returns the best time (and, for loads, the peak RSS growth)."""
    import sporax  # noqa: F401  (import cost kept out of the measurement)

    if kind == "safetensors-pkg":
        import safetensors.numpy  # noqa: F401
    best, growth = float("inf"), None
    arrays = _arrays() if op == "save" else None
    for i in range(repeat):
        if op == "save" and os.path.exists(path):
            os.remove(path)  # untimed, for every kind: no save pays for dropping an old file
            os.sync()
        before = _rss()
        t0 = time.perf_counter()
        if op == "save":
            _save(kind, path, arrays)
        else:
            result = _load(kind, path)
        best = min(best, time.perf_counter() - t0)
        if op == "load":
            if i == 0:
                growth = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024 - before
            del result
    return {"seconds": best, "rss_growth": growth}


def _run(op: str, kind: str, path: str, repeat: int) -> dict:
    out = subprocess.run(
        [sys.executable, __file__, "--worker", op, kind, path, str(repeat)], check=True, capture_output=True, text=True
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--repeat", type=int, default=2, help="saves/loads per subprocess")
    parser.add_argument("--rounds", type=int, default=3, help="rounds over all kinds (best is kept)")
    parser.add_argument("--dir", default=None, help="where to write the files (default: a temp dir)")
    parser.add_argument("--worker", nargs=4, help=argparse.SUPPRESS)
    ns = parser.parse_args()
    if ns.worker:
        op, kind, path, repeat = ns.worker
        print(json.dumps(worker(op, kind, path, int(repeat))))
        return
    nbytes = N_PARAMS * SHAPE[0] * SHAPE[1] * 4
    best: dict[str, list] = {kind: [0.0, 0.0, 0.0] for kind in KINDS}
    with tempfile.TemporaryDirectory(dir=ns.dir) as d:
        for _ in range(ns.rounds):  # kinds interleaved, so slow phases of the machine hit all of them
            for kind in KINDS:
                path = os.path.join(d, "bench" + EXT[kind])
                os.sync()  # no writeback of an earlier file competes with this measurement
                save = _run("save", kind, path, ns.repeat)
                os.sync()
                load = _run("load", kind, path, 3 * ns.repeat)  # loads are cheap: more samples
                growth = load["rss_growth"] / os.path.getsize(path)
                os.remove(path)
                b = best[kind]
                b[0], b[1], b[2] = (
                    max(b[0], nbytes / save["seconds"] / 1e9),
                    max(b[1], nbytes / load["seconds"] / 1e9),
                    max(b[2], growth),
                )
    results = {kind: tuple(v) for kind, v in best.items()}
    print(
        f"{N_PARAMS} float32 parameters {SHAPE[0]}x{SHAPE[1]} = {nbytes / 1e9:.2f} GB; "
        f"warm loads; best of {ns.rounds}x{ns.repeat} saves, {ns.rounds}x{3 * ns.repeat} loads; "
        "RSS growth: largest peak during a load / file size"
    )
    print(f"{'':22}{'save GB/s':>10}{'load GB/s':>10}{'RSS growth':>12}")
    for kind, (s, ld, g) in results.items():
        print(f"{kind:22}{s:10.2f}{ld:10.2f}{g:11.2f}x")
    raw, durable = results["numpy"], results["numpy+fsync"]
    for kind in ("sporax-ckpt", "sporax-safetensors"):
        s, ld, g = results[kind]
        print(
            f"{kind}: save {s / raw[0]:.2f}x np.save ({s / durable[0]:.2f}x np.save+fsync), "
            f"load {ld / raw[1]:.2f}x np.load, peak RSS growth {g:.2f}x file size "
            f"(goals: >= 0.8x, >= 0.8x, <= 1.1x)"
        )


if __name__ == "__main__":
    main()
