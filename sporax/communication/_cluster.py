"""Starting ``jax.distributed`` from the launcher's environment, with a bounded rendezvous first.

``jax.distributed.initialize`` aborts the whole process (SIGABRT, no Python exception) when a
peer is missing or dies while it waits. So before calling it, the workers meet in a small TCP
rendezvous of our own on the scheduler address (:func:`rendezvous`): rank 0 listens, every
other rank connects and says who it is; once all ``worker_num`` ranks are there rank 0 sends
GO, every rank answers ACK, and rank 0 sends START. A rank that never comes, or that drops
out before its ACK, makes every survivor raise a RuntimeError naming what went wrong, within
``cluster_time_out`` seconds (plus the ACK wait of at most 10 s). Only then does every rank
call ``jax.distributed.initialize`` (rank 0 hosts the coordinator on the same port; the
rendezvous socket is closed first, the peers closing their side first so that the port is
free at once). At exit, ``jax.distributed``'s shutdown barrier waits for the slowest rank at
most max(300 s, ``cluster_time_out``).

Environment (set by ``python -m sporax msrun``; MindSpore's names): ``MS_WORKER_NUM`` (or
``RANK_SIZE``), ``MS_NODE_ID`` (or ``RANK_ID``), ``MS_SCHED_HOST`` (default 127.0.0.1),
``MS_SCHED_PORT``, ``MS_LOCAL_RANK``, ``MS_LOCAL_WORKER_NUM``, ``MS_CLUSTER_TIMEOUT``
(seconds, default 600).
"""

from __future__ import annotations

import dataclasses
import inspect
import os
import select
import socket
import time

from sporax.parallel._runtime import env_int

__all__ = ["Cluster", "cluster_env", "rendezvous", "start"]

_HELLO = b"SPORAX-HELLO"
_GO = b"SPORAX-GO\n"
_ACK = b"SPORAX-ACK\n"
_START = b"SPORAX-START\n"
_ACK_S = 10.0  # how long rank 0 waits for the ACKs once every rank is connected


@dataclasses.dataclass(frozen=True)
class Cluster:
    worker_num: int
    rank: int
    host: str
    port: int
    local_rank: int
    local_worker_num: int
    timeout: float


def cluster_env() -> Cluster | None:
    """The cluster this process belongs to, from the environment; None when there is none."""
    worker_num = env_int("MS_WORKER_NUM", "RANK_SIZE")
    if worker_num is None or worker_num <= 1:
        return None
    rank = env_int("MS_NODE_ID", "RANK_ID")
    if rank is None:
        raise RuntimeError(f"init(): MS_WORKER_NUM={worker_num} but neither MS_NODE_ID nor RANK_ID gives this "
                           "process's rank; start the workers with 'python -m sporax msrun'.")
    if not 0 <= rank < worker_num:
        raise RuntimeError(f"init(): the rank {rank} (MS_NODE_ID/RANK_ID) is not in [0, {worker_num}).")
    port = env_int("MS_SCHED_PORT")
    if port is None or not 0 < port < 65536:
        raise RuntimeError(f"init(): MS_SCHED_PORT should give the scheduler's port, but got "
                           f"{os.environ.get('MS_SCHED_PORT')!r}.")
    timeout = float(os.environ.get("MS_CLUSTER_TIMEOUT") or 600)
    return Cluster(
        worker_num=worker_num,
        rank=rank,
        host=os.environ.get("MS_SCHED_HOST") or "127.0.0.1",
        port=port,
        local_rank=env_int("MS_LOCAL_RANK", default=rank),
        local_worker_num=env_int("MS_LOCAL_WORKER_NUM", default=worker_num),
        timeout=timeout,
    )


def _recv_line(sock: socket.socket, deadline: float) -> bytes:
    buf = b""
    while not buf.endswith(b"\n"):
        sock.settimeout(max(0.05, deadline - time.monotonic()))
        chunk = sock.recv(256)
        if not chunk:
            break
        buf += chunk
    return buf


def _alive(conn: socket.socket) -> bool:
    """False once the peer of ``conn`` has closed it or died (nothing is read from a live one)."""
    try:
        ready, _, _ = select.select([conn], [], [], 0)
        if not ready:
            return True
        return bool(conn.recv(1, socket.MSG_PEEK))
    except OSError:
        return False


def _serve(c: Cluster, deadline: float, where: str) -> None:
    """Rank 0's side: collect every rank's hello, then GO, every ACK, START."""
    srv = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        srv.bind((c.host, c.port))
    except OSError as e:
        srv.close()
        raise RuntimeError(f"init(): rank 0 could not listen on the scheduler address {where}: {e}.") from None
    srv.listen(c.worker_num)
    peers: dict = {}
    dropped: set = set()
    try:
        while len(peers) < c.worker_num - 1:
            for r in [r for r, conn in peers.items() if not _alive(conn)]:
                peers.pop(r).close()  # it may come back (a restarted worker) while time is left
                dropped.add(r)
            left = deadline - time.monotonic()
            if left <= 0:
                missing = sorted(set(range(1, c.worker_num)) - set(peers))
                gone = sorted(dropped & set(missing))
                raise RuntimeError(
                    f"init(): only {len(peers) + 1} of {c.worker_num} workers reached the scheduler at {where} "
                    f"within cluster_time_out={c.timeout:g} s; missing ranks {missing}"
                    + (f" (ranks {gone} connected and then dropped out)" if gone else "")
                    + ". Check that every worker was started (msrun --worker_num/--local_worker_num) and is alive.")
            srv.settimeout(min(left, 0.2))
            try:
                conn, _ = srv.accept()
            except TimeoutError:
                continue
            try:
                line = _recv_line(conn, min(deadline, time.monotonic() + 5)).split()
            except OSError:
                line = []
            if len(line) != 3 or line[0] != _HELLO or not line[1].isdigit() or line[2] != b"%d" % c.worker_num:
                conn.close()
                continue
            r = int(line[1])
            if r in peers or not 0 < r < c.worker_num:
                conn.close()
                raise RuntimeError(f"init(): two workers claim rank {r} (MS_NODE_ID/RANK_ID) at {where}.")
            peers[r] = conn
        # Every rank is there: GO, and each must answer ACK (a rank that died meanwhile does not).
        lost = []
        for r, conn in peers.items():
            try:
                conn.sendall(_GO)
            except OSError:
                lost.append(r)
        end = time.monotonic() + _ACK_S
        for r, conn in peers.items():
            if r in lost:
                continue
            try:
                ok = _recv_line(conn, end) == _ACK
            except OSError:
                ok = False
            if not ok:
                lost.append(r)
        if lost:
            raise RuntimeError(
                f"init(): ranks {sorted(lost)} dropped out during the rendezvous at {where} (they reached the "
                f"scheduler, then did not confirm the start); the cluster of {c.worker_num} workers can not start.")
        for conn in peers.values():
            try:
                conn.sendall(_START)
            except OSError:
                pass
        end = time.monotonic() + 5
        for conn in peers.values():  # the peers close first: no TIME_WAIT on the scheduler port
            try:
                _recv_line(conn, end)
            except OSError:
                pass
    finally:
        for conn in peers.values():
            conn.close()
        srv.close()


def _join(c: Cluster, deadline: float, where: str) -> None:
    """Another rank's side: hello to rank 0 until it answers GO, then ACK and wait for START."""
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            raise RuntimeError(f"init(): rank {c.rank} could not reach the scheduler (rank 0) at {where} within "
                               f"cluster_time_out={c.timeout:g} s, or the cluster did not form (a worker is "
                               "missing or rank 0 failed).")
        sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        try:
            sock.settimeout(min(left, 2.0))
            sock.connect((c.host, c.port))
            sock.sendall(b"%s %d %d\n" % (_HELLO, c.rank, c.worker_num))
            answer = _recv_line(sock, deadline)
        except OSError:
            sock.close()
            time.sleep(0.1)
            continue
        if answer != _GO:
            sock.close()  # rank 0 restarted or dropped us: try again while time is left
            time.sleep(0.1)
            continue
        try:
            sock.sendall(_ACK)
            answer = _recv_line(sock, time.monotonic() + _ACK_S + 5)
        except OSError:
            answer = b""
        finally:
            sock.close()
        if answer == _START:
            return
        raise RuntimeError(f"init(): rank {c.rank}: the cluster at {where} failed to start: another worker dropped "
                           "out during the rendezvous (or rank 0 failed); see the other workers' logs.")


def rendezvous(c: Cluster) -> None:
    """Wait until all ``c.worker_num`` ranks are reachable, at most ``c.timeout`` seconds (RuntimeError).

    Protocol on ``c.host:c.port``: each rank > 0 connects and sends ``HELLO rank worker_num``;
    rank 0, once every rank is connected (a connection that closes before is forgotten, the rank
    missing again), sends ``GO`` to all, waits for each one's ``ACK`` (a rank that dropped out
    meanwhile fails the start on rank 0, and rank 0 closing the connections fails it on the
    others) and then sends ``START``.
    """
    deadline = time.monotonic() + c.timeout
    where = f"{c.host}:{c.port}"
    if c.rank == 0:
        _serve(c, deadline, where)
    else:
        _join(c, deadline, where)


def shutdown_timeout(c: Cluster) -> int:
    """Seconds ``jax.distributed``'s exit-time barrier waits for the slowest rank: max(300, cluster_time_out).

    Ranks finish their scripts at different times (a loaded host, uneven work after training);
    a short barrier would abort the ranks that finished first.
    """
    return max(300, int(c.timeout))


def start(c: Cluster) -> None:
    """Rendezvous, then ``jax.distributed.initialize`` for cluster ``c``."""
    import jax

    rendezvous(c)
    try:
        jax.config.update("jax_cpu_collectives_implementation", "gloo")
    except Exception:  # noqa: BLE001  (older/newer jax without the option: its default applies)
        pass
    kwargs = {}
    if "shutdown_timeout_seconds" in inspect.signature(jax.distributed.initialize).parameters:  # JAX >= 0.8.1
        kwargs["shutdown_timeout_seconds"] = shutdown_timeout(c)  # older JAX: its own default applies
    jax.distributed.initialize(
        coordinator_address=f"{c.host}:{c.port}",
        num_processes=c.worker_num,
        process_id=c.rank,
        initialization_timeout=max(10, int(c.timeout)),
        **kwargs,
    )
