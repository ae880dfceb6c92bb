"""Real multi-process data parallel through ``python -m sporax msrun`` on 127.0.0.1, and its faults.

Every launch uses a free port, a timeout, and kills its process group in ``finally``; each test
checks that no worker outlives the launcher.
"""

import os
import re
import signal
import socket
import subprocess
import sys
import time

import numpy as np
import psutil
import pytest

HERE = os.path.dirname(__file__)
ROOT = os.path.dirname(os.path.dirname(HERE))
FIXTURE = os.path.join(HERE, "fixtures", "dp_momentum_ms210.npz")
TRAIN = os.path.join(HERE, "scripts", "dp_train.py")
FAULT = os.path.join(HERE, "scripts", "fault.py")
KEYS = ("w1", "b1", "w2", "b2")


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _msrun(tmp_path, args: list, devices: int = 1, timeout: float = 240, **flags):
    """(exit code, console output, seconds, worker pids, exit time) of one msrun launch."""
    env = dict(os.environ, XLA_FLAGS=f"--xla_force_host_platform_device_count={devices}", JAX_PLATFORMS="cpu",
               PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""))
    opts = {"worker_num": 2, "local_worker_num": 2, "master_port": _free_port(), "log_dir": str(tmp_path / "logs"),
            "join": "True", **flags}
    cmd = [sys.executable, "-m", "sporax", "msrun", *(f"--{k}={v}" for k, v in opts.items()), *args]
    start = time.time()
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=env, start_new_session=True)
    try:
        out, _ = proc.communicate(timeout=timeout)
    finally:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        proc.wait()
    end = time.time()
    text = out.decode(errors="replace")
    pids = [int(p) for p in re.findall(r"started worker \d+ \(pid (\d+)\)", text)]
    return proc.returncode, text, end - start, pids, end


def _assert_reaped(pids):
    for pid in pids:
        assert not psutil.pid_exists(pid) or psutil.Process(pid).status() == psutil.STATUS_ZOMBIE, pid


@pytest.mark.parametrize("devices", [1, 4])
def test_two_processes_train_like_mindspore(tmp_path, devices):
    """Settings 3 and 4: 2 processes with 1 or 4 devices each, graph and pynative."""
    gold = np.load(FIXTURE)
    prefix = str(tmp_path / "out")
    rc, text, _, pids, _ = _msrun(tmp_path, [TRAIN, FIXTURE, prefix, "both"], devices=devices)
    assert rc == 0, text
    _assert_reaped(pids)
    for rank in (0, 1):
        got = np.load(f"{prefix}.rank{rank}.npz")
        assert int(got["size"]) == 2
        for mode in ("graph", "pynative"):
            for k in KEYS:
                np.testing.assert_allclose(got[f"{mode}_{k}"], gold[f"{mode}_{k}"], rtol=1e-5, atol=1e-6)
        log = (tmp_path / "logs" / f"worker_{rank}.log").read_text()
        assert f"rank {rank} of 2: done" in log
    assert "[worker 1] rank 1 of 2: done" in text and "all 2 workers finished" in text


def _fail_time(text: str) -> float:
    return float(re.search(r"FAIL_AT ([\d.]+)", text).group(1))


@pytest.mark.parametrize("mode", ["raise", "sigkill"])
def test_failed_worker_stops_the_others(tmp_path, mode):
    rc, text, _, pids, end = _msrun(tmp_path, [FAULT, mode])
    assert rc == 1, text
    code = "1" if mode == "raise" else r"-9 \(killed by SIGKILL\)"
    assert re.search(rf"worker 1 \(pid \d+\) failed with exit code {code}", text), text
    assert end - _fail_time(text) < 30
    _assert_reaped(pids)
    if mode == "raise":
        assert "worker 1 fails on purpose" in (tmp_path / "logs" / "worker_1.log").read_text()


def test_peer_that_never_starts(tmp_path):
    rc, text, _, pids, end = _msrun(tmp_path, [FAULT, "alone"], local_worker_num=1, cluster_time_out=3)
    assert rc == 1, text
    log = (tmp_path / "logs" / "worker_0.log").read_text()
    assert "RuntimeError" in log and "missing ranks [1]" in log and "cluster_time_out=3" in log
    assert "worker 0 (pid" in text and "failed with exit code 1" in text
    assert end - _fail_time(text) < 30
    _assert_reaped(pids)


def test_bad_launcher_arguments(tmp_path):
    from sporax.parallel.msrun import parse_args

    with pytest.raises(SystemExit):
        parse_args(["--worker_num=2", "--local_worker_num=3", TRAIN])
    with pytest.raises(SystemExit):
        parse_args(["--worker_num=2", "--join=maybe", TRAIN])
    with pytest.raises(SystemExit):
        parse_args(["--worker_num=2", str(tmp_path / "missing.py")])
    ns = parse_args(["--worker_num=4", "--local_worker_num=2", "--node_rank=1", "--join=true", TRAIN, "a", "--b"])
    assert (ns.node_rank, ns.join, ns.master_addr, ns.task_script_args) == (1, True, "127.0.0.1", ["a", "--b"])


@pytest.mark.parametrize("mode", ["drop_before_go", "drop_after_go"])
def test_worker_dropping_out_during_the_rendezvous(tmp_path, mode):
    """Rank 2 of 3 dies inside the rendezvous: ranks 0 and 1 raise a clear RuntimeError within
    cluster_time_out (workers started by hand with MindSpore's variables, so each reports itself)."""
    timeout_s = 6
    port = _free_port()
    base = dict(os.environ, JAX_PLATFORMS="cpu", XLA_FLAGS="--xla_force_host_platform_device_count=1",
                PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), MS_WORKER_NUM="3",
                MS_SCHED_HOST="127.0.0.1", MS_SCHED_PORT=str(port), MS_CLUSTER_TIMEOUT=str(timeout_s))
    procs = []
    try:
        for rank in range(3):
            procs.append(subprocess.Popen([sys.executable, "-m", "sporax", "run", FAULT, mode],
                                          env=dict(base, MS_NODE_ID=str(rank)), stdout=subprocess.PIPE,
                                          stderr=subprocess.STDOUT, start_new_session=True))
        outs = [p.communicate(timeout=120)[0].decode(errors="replace") for p in procs]
    finally:
        for p in procs:
            try:
                os.killpg(p.pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
            p.wait()
    assert procs[2].returncode == -signal.SIGKILL, outs[2]
    for rank in (0, 1):
        out = outs[rank]
        assert procs[rank].returncode == 1, out
        assert "RuntimeError: init():" in out and "Traceback" in out, out
        took = _fail_time(out) - float(re.search(r"INIT_AT ([\d.]+)", out).group(1))
        assert took < timeout_s + 3, (took, out)
    if mode == "drop_before_go":
        assert "missing ranks [2] (ranks [2] connected and then dropped out)" in outs[0], outs[0]
        assert "could not reach the scheduler (rank 0)" in outs[1] and "did not form" in outs[1], outs[1]
    else:
        assert "ranks [2] dropped out during the rendezvous" in outs[0], outs[0]
        assert "another worker dropped out during the rendezvous" in outs[1], outs[1]
    _assert_reaped([p.pid for p in procs])


SEMI = os.path.join(HERE, "scripts", "semi_train.py")


@pytest.mark.parametrize("how", ["semi", "semi_split"])
def test_semi_auto_two_processes_of_four_devices(tmp_path, how):
    """Semi-auto parallel over 2 processes x 4 devices: each process holds only its devices'
    slices (exactly slice_shape each), and together they equal one-device training; with the
    full batch on every process, or (full_batch=False) each process feeding its half."""
    from sporax.__main__ import run_script

    ref_prefix = str(tmp_path / "ref")
    argv, path = sys.argv[:], sys.path[:]
    try:
        run_script(SEMI, [ref_prefix, "standalone"])
    finally:
        sys.argv[:], sys.path[:] = argv, path
    ref = np.load(ref_prefix + ".rank0.npz")
    prefix = str(tmp_path / "semi")
    rc, text, _, pids, _ = _msrun(tmp_path, [SEMI, prefix, how], devices=4)
    assert rc == 0, text
    _assert_reaped(pids)
    covered: dict = {}
    for rank in (0, 1):
        got = np.load(f"{prefix}.rank{rank}.npz")
        np.testing.assert_allclose(got["losses"], ref["losses"], rtol=2e-6)
        shards = [k for k in got.files if k.count("|") == 1]
        names = {k.split("|")[0] for k in shards}
        assert names == {k for k in ref.files if k != "losses"}
        for key in shards:
            name, window = key.split("|")
            index = tuple(slice(*map(int, part.split(":"))) for part in window.split(",")) if window else ()
            np.testing.assert_allclose(got[key], ref[name][index], rtol=1e-5, atol=1e-6, err_msg=key)
            assert got[key].shape == tuple(got[key + "|layout_slice"])  # each device: exactly its slice
            covered.setdefault(name, set()).add(window)
        assert sum(len(got[k].shape) > 0 for k in shards) > 0
    assert len(covered["fc1.weight"]) == 4 and len(covered["fc2.bias"]) == 1  # 4 distinct slices; replicated


BIG = os.path.join(HERE, "scripts", "semi_big_init.py")


@pytest.mark.xfail(tuple(int(v) for v in __import__("jax").__version__.split(".")[:2]) >= (0, 11), strict=True,
                   reason="known: under JAX 0.12 each rank's RSS grows by 2x its eighth (1024 MiB, not 512), with "
                          "sporax's transfer path and with jnp.asarray alike; not yet found (issue 11)")
def test_four_gib_sharded_parameter_costs_each_rank_its_eighth(tmp_path):
    """8 ranks of one device: the 4 GiB weight is never whole on any host; each rank's peak RSS
    grows by about 4 GiB / 8 and its shard is the exact window of the unsharded init."""
    prefix = str(tmp_path / "big")
    rc, text, _, pids, _ = _msrun(tmp_path, [BIG, prefix], devices=1, timeout=480, worker_num=8, local_worker_num=8)
    assert rc == 0, text
    _assert_reaped(pids)
    share = 4096 / 8
    starts = set()
    for rank in range(8):
        got = np.load(f"{prefix}.rank{rank}.npz")
        assert bool(got["eye_window"]) and bool(got["out_ok"]), rank
        assert tuple(got["shape"]) == tuple(got["layout_slice"]) == (4096, 32768)
        assert 0.9 * share < float(got["growth"]) < 1.5 * share, (rank, float(got["growth"]))
        starts.add(int(got["row0"]))
    assert starts == {4096 * r for r in range(8)}


def test_importing_sporax_starts_no_jax_backend():
    """init() has to start jax.distributed before the backend exists: no module may compute at import."""
    code = ("import importlib, pkgutil, sporax\n"
            "for m in pkgutil.walk_packages(sporax.__path__, 'sporax.'):\n"
            "    if not any(s in m.name for s in ('.fl', '.ps', '__main__')):\n"
            "        try:\n"
            "            importlib.import_module(m.name)\n"
            "        except ImportError:\n"
            "            pass\n"
            "from jax._src import xla_bridge\n"
            "print('BACKEND', xla_bridge.backends_are_initialized())\n")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=240, env=env)
    assert "BACKEND False" in out.stdout, out.stdout + out.stderr


RESHARD = os.path.join(HERE, "scripts", "reshard_train.py")


def test_reshard_across_two_processes_of_four_devices(tmp_path):
    """2 processes x 4 devices: semi-auto training (dp 2 x mp 4) saves each rank's part and the
    strategy file; a second launch sharded dp 4 x mp 2 loads them, each process reading only its
    devices' windows, and 2 more steps equal 4 uninterrupted one-device steps."""
    from sporax.__main__ import run_script
    from sporax.train.serialization import load_checkpoint

    argv, path = sys.argv[:], sys.path[:]
    try:
        run_script(RESHARD, [str(tmp_path), "standalone"])
    finally:
        sys.argv[:], sys.path[:] = argv, path
    ref = np.load(str(tmp_path / "ref.npz"))["losses"]
    for mode in ("save", "load"):
        rc, text, _, pids, _ = _msrun(tmp_path, [RESHARD, str(tmp_path), mode], devices=4)
        assert rc == 0, text
        _assert_reaped(pids)
    assert os.path.isfile(tmp_path / "strategy.ckpt")
    sizes = [os.path.getsize(tmp_path / f"rank_{r}" / "net.ckpt") for r in (0, 1)]
    full = load_checkpoint(str(tmp_path / "ref.ckpt"))
    for rank in (0, 1):
        saved = np.load(str(tmp_path / f"save.rank{rank}.npz"))
        loaded = np.load(str(tmp_path / f"load.rank{rank}.npz"))
        np.testing.assert_allclose(np.concatenate([saved["losses"], loaded["losses"]]), ref, rtol=1e-5)
        assert 0 < int(loaded["read"]) < sum(sizes)  # its own windows, not both files
        after = load_checkpoint(str(tmp_path / f"after.rank{rank}.ckpt"))
        for name, value in full.items():
            np.testing.assert_allclose(after[name].asnumpy(), value.asnumpy(), rtol=1e-5, atol=1e-6, err_msg=name)
