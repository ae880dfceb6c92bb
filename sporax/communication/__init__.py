"""Ranks and groups: ``init()`` on ``jax.distributed``, and MindSpore's query functions.

Model (JAX's): a *rank* is a process; each process drives all its local devices. ``init()``
starts ``jax.distributed`` when the environment describes a cluster (``python -m sporax
msrun`` sets it; MindSpore's variables are read, see :mod:`sporax.communication._cluster`),
and otherwise only marks communication started: one process, rank 0 of 1, with all local
devices forming the data-parallel axis (the embedded default). So a script that takes
``X[rank * per:(rank + 1) * per]`` with ``per = len(X) // get_group_size()`` takes the whole
global batch in one process, and sporax splits it over the local devices.

Before ``init()``, ``get_rank`` / ``get_group_size`` emulate a rank from the auto-parallel
context (``global_rank``, ``device_num``; spec §7.2), which layout math uses.

Named groups (``create_group(name, rank_ids)``) list positions on the data-parallel axis,
i.e. devices; with one device per process (MindSpore's model) they are the process ranks.
Collectives over them run inside data-parallel steps (:mod:`sporax.ops.comm_ops`).
"""

from __future__ import annotations

import sys
import traceback

from sporax import context
from sporax.common._validation import msg
from sporax.communication import _cluster

__all__ = ["init", "release", "get_rank", "get_group_size", "get_local_rank", "get_local_rank_size",
           "create_group", "destroy_group", "get_world_rank_from_group_rank",
           "get_group_rank_from_world_rank", "GlobalComm", "HCCL_WORLD_COMM_GROUP", "NCCL_WORLD_COMM_GROUP"]

HCCL_WORLD_COMM_GROUP = "hccl_world_group"
NCCL_WORLD_COMM_GROUP = "nccl_world_group"
_WORLD = {HCCL_WORLD_COMM_GROUP, NCCL_WORLD_COMM_GROUP, "world", None}
_groups: dict[str, list[int]] = {}
_BACKENDS = (None, "hccl", "nccl", "mccl", "gloo")
_started: dict = {}  # the Cluster jax.distributed was started for (it can start once per process)


class GlobalComm:
    BACKEND = "jax"
    WORLD_COMM_GROUP = NCCL_WORLD_COMM_GROUP
    INITED = False


def init(backend_name: str | None = None) -> None:
    """Start communication: ``jax.distributed`` in a cluster, else just mark it started.

    A missing or dead peer gives a RuntimeError naming it within ``cluster_time_out``
    (``MS_CLUSTER_TIMEOUT``, msrun's ``--cluster_time_out``). With the parameter-server mode on
    (``set_ps_context(enable_ps=True)``, which runs on Ray) it starts no ``jax.distributed``:
    ``get_rank()``/``get_group_size()`` are then the PS worker's id and ``MS_WORKER_NUM``. In a cluster, an uncaught
    exception afterwards ends the process at once (exit code 1, traceback printed) instead
    of waiting in ``jax.distributed``'s shutdown barrier for peers that wait on it.
    """
    if backend_name not in _BACKENDS:
        raise ValueError(msg("init", "backend_name", f"one of {list(_BACKENDS)}", backend_name))
    if GlobalComm.INITED:
        return
    if context._state.ps.enable_ps:
        # Parameter-server mode runs on Ray (sporax.ps), whose MS_WORKER_NUM/MS_SCHED_* describe the
        # Ray cluster: no jax.distributed here. Ranks are the PS worker ids.
        GlobalComm.INITED = True
        _started["ps"] = True
        return
    cluster = _cluster.cluster_env()
    if cluster is not None and "cluster" not in _started:
        _cluster.start(cluster)
        _started["cluster"] = cluster
        sys.excepthook = _exit_on_error
    GlobalComm.INITED = True


def _exit_on_error(kind, value, tb) -> None:
    import os

    traceback.print_exception(kind, value, tb)
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(1)


def release() -> None:
    GlobalComm.INITED = False
    _started.pop("ps", None)
    _groups.clear()


def _world() -> tuple[int, int] | None:
    """(rank, size) of the real cluster after init(); None before it."""
    if not GlobalComm.INITED:
        return None
    if "ps" in _started:
        from sporax.ps import cluster as ps_cluster

        if context._ps_role() == "MS_WORKER":
            return ps_cluster.worker_id(), ps_cluster.n_workers()
        return 0, 1
    if "cluster" in _started:
        import jax

        return jax.process_index(), jax.process_count()
    return 0, 1


def _members(group) -> list[int]:
    if group in _WORLD:
        world = _world()
        return list(range(world[1] if world else context._state.auto_parallel.device_num))
    if not isinstance(group, str):
        raise TypeError(msg("get_rank", "group", "a str or None", group))
    try:
        return _groups[group]
    except KeyError:
        raise ValueError(f"The communication group {group!r} does not exist; create it with create_group().") from None


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (the world group by default)."""
    world = _world()
    rank = world[0] if world else context._state.auto_parallel.global_rank
    if group in _WORLD:
        return rank
    members = _members(group)
    if rank not in members:
        raise ValueError(f"Rank {rank} is not a member of communication group {group!r} ({members}).")
    return members.index(rank)


def get_group_size(group=None) -> int:
    """Number of ranks in ``group`` (the world group by default): processes after ``init()``."""
    return len(_members(group))


def get_local_rank(group=None) -> int:
    """This process's rank among the processes of its host."""
    if group not in _WORLD:
        return get_rank(group)
    c = _started.get("cluster")
    return c.local_rank if c is not None and GlobalComm.INITED else get_rank(group)


def get_local_rank_size(group=None) -> int:
    """How many processes run on this host."""
    if group not in _WORLD:
        return get_group_size(group)
    c = _started.get("cluster")
    return c.local_worker_num if c is not None and GlobalComm.INITED else get_group_size(group)


def create_group(group: str, rank_ids) -> None:
    """Create a named group of global ranks (order defines each member's group rank)."""
    if not isinstance(group, str) or not group:
        raise TypeError(msg("create_group", "group", "a non-empty str", group))
    ranks = list(rank_ids)
    if not ranks or len(set(ranks)) != len(ranks) or not all(isinstance(r, int) and r >= 0 for r in ranks):
        raise ValueError(msg("create_group", "rank_ids", "a non-empty list of distinct non-negative ints", rank_ids))
    if group in _groups or group in _WORLD:
        raise ValueError(f"For 'create_group', the group {group!r} already exists.")
    _groups[group] = ranks


def destroy_group(group: str) -> None:
    """Remove a group made by ``create_group`` (ValueError for the world group or an unknown name)."""
    if group in _WORLD:
        raise ValueError(f"For 'destroy_group', the world group {group!r} can not be destroyed.")
    if group not in _groups:
        raise ValueError(f"For 'destroy_group', the communication group {group!r} does not exist.")
    del _groups[group]


def get_world_rank_from_group_rank(group: str, group_rank_num: int) -> int:
    """The world rank of member ``group_rank_num`` of ``group``."""
    members = _members(group)
    if isinstance(group_rank_num, bool) or not isinstance(group_rank_num, int) or not 0 <= group_rank_num < len(members):
        raise ValueError(msg("get_world_rank_from_group_rank", "group_rank_num", f"an int in [0, {len(members)})",
                             group_rank_num))
    return members[group_rank_num]


def get_group_rank_from_world_rank(world_rank_num: int, group: str) -> int:
    """The position of world rank ``world_rank_num`` in ``group``."""
    members = _members(group)
    if world_rank_num not in members:
        raise ValueError(msg("get_group_rank_from_world_rank", "world_rank_num", f"a member of {members}",
                             world_rank_num))
    return members.index(world_rank_num)
