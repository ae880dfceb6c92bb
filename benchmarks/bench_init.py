"""Initializer speed and memory, side by side with numpy and jax.random.

Throughput: materializing a (8192, 8192) float32 tensor with sporax's Normal, Uniform,
TruncatedNormal and XavierUniform (counter-based Threefry, any window exact) next to numpy's
``Generator.standard_normal`` / ``Generator.random`` for the same size (median of repeats,
interleaved so that machine noise hits both sides alike).

Peak memory: each case runs in a fresh subprocess; peak RSS above a baseline taken after
imports and warm-up (sampled every millisecond with psutil, and ru_maxrss as a cross-check):
one rank's 1/8 slice of a (65536, 8192) float32 Normal (256 MiB) split along dim 0 and
along dim 1, the full 2 GiB tensor, the full (8192, 8192) tensor, and ``jax.random.normal``
of (8192, 8192) for reference.

Run: ``.venv/bin/python benchmarks/bench_init.py [--repeats N] [--skip-memory]``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import sys
import time

SHAPE = (8192, 8192)
BIG = (65536, 8192)
MIB = 1 << 20


def _throughput(repeats: int) -> None:
    import numpy as np

    import sporax as sp
    from sporax.common.initializer import Normal, TruncatedNormal, Uniform, XavierUniform, initializer

    gen = np.random.default_rng()
    nbytes = SHAPE[0] * SHAPE[1] * 4

    def ours(init):
        return lambda: initializer(init, SHAPE, sp.float32).init_data()

    cases = {
        "Normal": (ours(Normal(1.0)), "np.standard_normal"),
        "TruncatedNormal": (ours(TruncatedNormal(1.0, 0.0, -2.0, 2.0)), "np.standard_normal"),
        "Uniform": (ours(Uniform(1.0)), "np.random"),
        "XavierUniform": (ours(XavierUniform()), "np.random"),
    }
    baselines = {
        "np.standard_normal": lambda: gen.standard_normal(SHAPE, dtype=np.float32),
        "np.random": lambda: gen.random(SHAPE, dtype=np.float32),
    }
    funcs = {**{k: v[0] for k, v in cases.items()}, **baselines}
    times = {k: [] for k in funcs}
    cpu = {k: [] for k in funcs}
    for f in funcs.values():  # warm-up: compile, fault in the allocator
        f()
    for _ in range(repeats):
        for k, f in funcs.items():
            c, t = _cpu_seconds(), time.perf_counter()
            out = f()
            times[k].append(time.perf_counter() - t)
            cpu[k].append(_cpu_seconds() - c)
            del out
    gbs = {k: nbytes / statistics.median(v) / 1e9 for k, v in times.items()}
    best = {k: nbytes / min(v) / 1e9 for k, v in times.items()}
    gb_cpu = {k: nbytes / statistics.median(v) / 1e9 for k, v in cpu.items()}
    print(f"Throughput, {SHAPE} float32 ({nbytes / MIB:.0f} MiB), {repeats} interleaved repeats.")
    print("GB/s: median wall (best wall) [median GB per CPU-second]; ratio of medians (of bests).")
    print(f"  {'initializer':<16} {'sporax':>21}   {'numpy':<19} {'':>21}   {'ratio':>13}")
    for name, (_, base) in cases.items():
        print(
            f"  {name:<16} {gbs[name]:>5.2f} ({best[name]:>5.2f}) [{gb_cpu[name]:>5.2f}]   {base:<19} "
            f"{gbs[base]:>5.2f} ({best[base]:>5.2f}) [{gb_cpu[base]:>5.2f}]   "
            f"{gbs[name] / gbs[base]:>4.2f}x ({best[name] / best[base]:>4.2f}x)"
        )


def _cpu_seconds() -> float:
    import resource

    r = resource.getrusage(resource.RUSAGE_SELF)
    return r.ru_utime + r.ru_stime


# ------------------------------------------------------------------------------ memory
def _measure(case: str) -> dict:
    """Runs in a fresh subprocess: peak RSS of one materialization above the warm baseline."""
    import resource
    import threading

    import numpy as np
    import psutil

    proc = psutil.Process()

    if case == "jax_random":
        import jax

        key = jax.random.key(0)
        f = jax.jit(lambda k: jax.random.normal(k, SHAPE, np.float32))
        f(key).block_until_ready()
        jax.jit(lambda k: jax.random.normal(k, (16,), np.float32))(key).block_until_ready()

        def run():
            return np.asarray(f(key))

        # Compilation for the real shape happened above; drop its result first.
        expected = SHAPE[0] * SHAPE[1] * 4
    else:
        import sporax as sp
        from sporax.common.initializer import Normal, initializer
        from sporax.parallel import layout

        shape = SHAPE if case == "full_8192" else BIG
        initializer(Normal(), (1 << 23,), sp.float32).init_data()  # warm-up: kernel compiled
        initializer(Normal(), (8, 1 << 20), sp.float32).init_data(slice_index=0, shape=(8, 1 << 17))
        if case.startswith("slice"):
            tmap = [2, -1] if case == "slice_dim0" else [-1, 2]
            sshape = layout.slice_shape(shape, [8], [0 if t == 2 else -1 for t in tmap])
            rank = 5
            index = layout.slice_index([8], [0 if t == 2 else -1 for t in tmap], rank)

            def run():
                return initializer(Normal(), shape, sp.float32).init_data(slice_index=index, shape=sshape)

            expected = sshape[0] * sshape[1] * 4
        else:

            def run():
                return initializer(Normal(), shape, sp.float32).init_data()

            expected = shape[0] * shape[1] * 4

    base = proc.memory_info().rss
    peak = [base]
    stop = threading.Event()

    def sample():
        while not stop.is_set():
            peak[0] = max(peak[0], proc.memory_info().rss)
            time.sleep(0.001)

    thread = threading.Thread(target=sample, daemon=True)
    thread.start()
    t = time.perf_counter()
    out = run()
    elapsed = time.perf_counter() - t
    stop.set()
    thread.join()
    peak[0] = max(peak[0], proc.memory_info().rss)
    maxrss = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
    del out
    return {"case": case, "expected": expected, "sampled": peak[0] - base, "maxrss": maxrss - base, "seconds": elapsed}


def _memory() -> None:
    rows = []
    for case in ("slice_dim0", "slice_dim1", "full_65536", "full_8192", "jax_random"):
        res = subprocess.run(
            [sys.executable, __file__, "--worker", case], capture_output=True, text=True, timeout=600, check=False
        )
        if res.returncode:
            print(f"  {case}: failed\n{res.stderr[-2000:]}")
            continue
        rows.append(json.loads(res.stdout.strip().splitlines()[-1]))
    labels = {
        "slice_dim0": f"sporax 1/8 slice of {BIG}, dim 0 split",
        "slice_dim1": f"sporax 1/8 slice of {BIG}, dim 1 split",
        "full_65536": f"sporax full {BIG}",
        "full_8192": f"sporax full {SHAPE}",
        "jax_random": f"jax.random.normal {SHAPE}",
    }
    print("\nPeak RSS above the warm baseline (fresh process per case), float32 Normal:")
    print(
        f"  {'case':<44} {'output MiB':>10} {'peak MiB':>9} {'maxrss MiB':>10} {'peak/out':>8} {'extra MiB':>9} {'s':>6}"
    )
    for r in rows:
        out, peak = r["expected"] / MIB, r["sampled"] / MIB
        print(
            f"  {labels[r['case']]:<44} {out:>10.0f} {peak:>9.0f} {r['maxrss'] / MIB:>10.0f} {peak / out:>7.2f}x "
            f"{peak - out:>9.0f} {r['seconds']:>6.2f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--skip-memory", action="store_true")
    parser.add_argument("--skip-throughput", action="store_true")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(json.dumps(_measure(args.worker)))
        return
    if not args.skip_throughput:
        _throughput(args.repeats)
    if not args.skip_memory:
        _memory()


if __name__ == "__main__":
    main()
