"""``python -m sporax msrun``: MindSpore's ``msrun`` launcher, for sporax workers on this host.

    python -m sporax msrun --worker_num=2 --local_worker_num=2 --master_port=8118 \\
        --log_dir=logs --join=True train.py ARGS...

starts ``local_worker_num`` processes, each ``python -m sporax run train.py ARGS`` with the
environment ``communication.init()`` reads (``MS_WORKER_NUM``, ``MS_SCHED_HOST``,
``MS_SCHED_PORT``, ``MS_NODE_ID``/``RANK_ID``, ``RANK_SIZE``, ``MS_LOCAL_RANK``,
``MS_LOCAL_WORKER_NUM``, ``MS_CLUSTER_TIMEOUT``, ``MS_ROLE=MS_WORKER``). Worker ranks are
``node_rank * local_worker_num + i``; a multi-host run starts one msrun per host with its
``--node_rank`` and the same ``--master_addr``. There is no separate scheduler process:
rank 0 hosts the rendezvous and the ``jax.distributed`` coordinator on ``master_port``.

Each worker's stdout and stderr go to ``LOG_DIR/worker_<rank>.log`` (and, with
``--join=True``, to the console, each line prefixed with ``[worker <rank>]``). msrun always
waits for its workers, so none outlives it: if one fails, the others are stopped (SIGTERM to
their process groups, then SIGKILL), msrun names the failed worker and its exit code, and
exits 1. It exits 0 only when every worker succeeded; SIGINT/SIGTERM to msrun stop all workers.
"""

from __future__ import annotations

import argparse
import os
import signal
import subprocess
import sys
import threading
import time

__all__ = ["main", "parse_args"]

_STOP_GRACE_S = 3.0


def _bool(text: str) -> bool:
    value = str(text).strip().lower()
    if value in ("true", "1", "yes"):
        return True
    if value in ("false", "0", "no"):
        return False
    raise argparse.ArgumentTypeError(f"expected True or False, got {text!r}")


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m sporax msrun", description="Start sporax workers (MindSpore's msrun).")
    p.add_argument("--worker_num", type=int, default=8, help="total number of workers (all hosts)")
    p.add_argument("--local_worker_num", type=int, default=None, help="workers on this host (default worker_num)")
    p.add_argument("--master_addr", default="127.0.0.1", help="address of rank 0's host")
    p.add_argument("--master_port", type=int, default=8118, help="port of the rendezvous on rank 0's host")
    p.add_argument("--node_rank", type=int, default=-1, help="this host's index (default 0 on a single host)")
    p.add_argument("--log_dir", default=".", help="directory of the worker_<rank>.log files")
    p.add_argument("--join", type=_bool, nargs="?", const=True, default=False,
                   help="also print the workers' output on the console")
    p.add_argument("--cluster_time_out", type=int, default=600, help="seconds to wait for every worker at init()")
    p.add_argument("--bind_core", type=_bool, nargs="?", const=True, default=False, help="accepted, no effect")
    p.add_argument("task_script", help="the training script")
    p.add_argument("task_script_args", nargs=argparse.REMAINDER, help="its arguments")
    return p


def parse_args(argv: list[str]) -> argparse.Namespace:
    """Parse and validate msrun's arguments (argparse exits 2 on a bad one, as msrun does)."""
    parser = _parser()
    ns = parser.parse_args(argv)
    if ns.worker_num < 1:
        parser.error(f"--worker_num should be >= 1, but got {ns.worker_num}")
    if ns.local_worker_num is None:
        ns.local_worker_num = ns.worker_num
    if not 1 <= ns.local_worker_num <= ns.worker_num:
        parser.error(f"--local_worker_num should be in [1, {ns.worker_num}], but got {ns.local_worker_num}")
    if ns.node_rank < 0:
        ns.node_rank = 0
    first = ns.node_rank * ns.local_worker_num
    if first + ns.local_worker_num > ns.worker_num:
        parser.error(f"--node_rank {ns.node_rank} with {ns.local_worker_num} local workers gives ranks beyond "
                     f"--worker_num={ns.worker_num}")
    if not 0 < ns.master_port < 65536:
        parser.error(f"--master_port should be in [1, 65535], but got {ns.master_port}")
    if ns.cluster_time_out <= 0:
        parser.error(f"--cluster_time_out should be > 0, but got {ns.cluster_time_out}")
    if not os.path.isfile(ns.task_script):
        parser.error(f"no such script: {ns.task_script}")
    return ns


def _worker_env(ns, rank: int, local: int) -> dict:
    env = dict(os.environ)
    env.update(
        MS_WORKER_NUM=str(ns.worker_num), RANK_SIZE=str(ns.worker_num), MS_SCHED_HOST=ns.master_addr,
        MS_SCHED_PORT=str(ns.master_port), MS_NODE_ID=str(rank), RANK_ID=str(rank), MS_LOCAL_RANK=str(local),
        MS_LOCAL_WORKER_NUM=str(ns.local_worker_num), MS_CLUSTER_TIMEOUT=str(ns.cluster_time_out),
        MS_ROLE="MS_WORKER", DEVICE_ID=str(local), PYTHONUNBUFFERED="1",
    )
    return env


def _pump(stream, log_path: str, prefix: str, echo: bool) -> None:
    """Copy a worker's output to its log (and the console), line by line."""
    with open(log_path, "ab", buffering=0) as log:
        for line in iter(stream.readline, b""):
            log.write(line)
            if echo:
                sys.stdout.write(prefix + line.decode(errors="replace"))
                sys.stdout.flush()
    stream.close()


def _describe(code: int) -> str:
    if code < 0:
        try:
            return f"{code} (killed by {signal.Signals(-code).name})"
        except ValueError:
            return str(code)
    return str(code)


def _stop(procs: list) -> None:
    """SIGTERM every live worker's process group, then SIGKILL what is left after a grace period."""
    live = [p for p in procs if p.poll() is None]
    for p in live:
        try:
            os.killpg(p.pid, signal.SIGTERM)
        except ProcessLookupError:
            pass
    end = time.monotonic() + _STOP_GRACE_S
    for p in live:
        try:
            p.wait(max(0.0, end - time.monotonic()))
        except subprocess.TimeoutExpired:
            pass
    for p in procs:
        try:  # the group too: a worker's own children go with it
            os.killpg(p.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        try:
            p.wait(5)
        except subprocess.TimeoutExpired:
            pass


class _Interrupted(Exception):
    pass


def _on_signal(signum, frame):
    raise _Interrupted(signal.Signals(signum).name)


def main(argv: list[str] | None = None) -> int:
    """Run msrun; returns the exit status (0 only when every worker succeeded)."""
    ns = parse_args(list(sys.argv[1:] if argv is None else argv))
    os.makedirs(ns.log_dir, exist_ok=True)
    first = ns.node_rank * ns.local_worker_num
    ranks = list(range(first, first + ns.local_worker_num))
    procs: list = []
    pumps: list = []
    old = {s: signal.signal(s, _on_signal) for s in (signal.SIGTERM, signal.SIGINT)}
    try:
        for local, rank in enumerate(ranks):
            log_path = os.path.join(ns.log_dir, f"worker_{rank}.log")
            open(log_path, "wb").close()
            cmd = [sys.executable, "-m", "sporax", "run", ns.task_script, *ns.task_script_args]
            p = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
                                 env=_worker_env(ns, rank, local), start_new_session=True)
            p.rank = rank
            p.log_path = log_path
            procs.append(p)
            t = threading.Thread(target=_pump, args=(p.stdout, log_path, f"[worker {rank}] ", ns.join), daemon=True)
            t.start()
            pumps.append(t)
            print(f"msrun: started worker {rank} (pid {p.pid}), log {log_path}", flush=True)
        while True:
            codes = [p.poll() for p in procs]
            failed = [p for p, c in zip(procs, codes) if c not in (None, 0)]
            if failed:
                bad = failed[0]
                print(f"msrun: worker {bad.rank} (pid {bad.pid}) failed with exit code {_describe(bad.returncode)}; "
                      f"stopping the other workers. See {bad.log_path}.", file=sys.stderr, flush=True)
                _stop(procs)
                return 1
            if all(c == 0 for c in codes):
                print(f"msrun: all {len(procs)} workers finished successfully.", flush=True)
                return 0
            time.sleep(0.05)
    except _Interrupted as e:
        print(f"msrun: received {e}; stopping the workers.", file=sys.stderr, flush=True)
        return 1
    finally:
        _stop(procs)
        for t in pumps:
            t.join(2)
        for s, h in old.items():
            signal.signal(s, h)


if __name__ == "__main__":
    sys.exit(main())
