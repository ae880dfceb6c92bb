"""Ranks and groups (spec §7.2).

sporax runs one process per host; the rank and group size come from the auto-parallel
context (``global_rank``, ``device_num``), so layout math and the gradient reducer see the
same numbers MindSpore would after ``init()``. Named groups are lists of global ranks.
"""

from __future__ import annotations

from sporax import context
from sporax.common._validation import msg

__all__ = ["init", "release", "get_rank", "get_group_size", "get_local_rank", "get_local_rank_size",
           "create_group", "destroy_group", "get_world_rank_from_group_rank",
           "get_group_rank_from_world_rank", "GlobalComm", "HCCL_WORLD_COMM_GROUP", "NCCL_WORLD_COMM_GROUP"]

HCCL_WORLD_COMM_GROUP = "hccl_world_group"
NCCL_WORLD_COMM_GROUP = "nccl_world_group"
_WORLD = {HCCL_WORLD_COMM_GROUP, NCCL_WORLD_COMM_GROUP, "world", None}
_groups: dict[str, list[int]] = {}


class GlobalComm:
    BACKEND = "jax"
    WORLD_COMM_GROUP = NCCL_WORLD_COMM_GROUP
    INITED = False


def init(backend_name: str | None = None) -> None:
    """Start communication. In one process this only marks it started."""
    GlobalComm.INITED = True


def release() -> None:
    GlobalComm.INITED = False
    _groups.clear()


def _members(group) -> list[int]:
    if group in _WORLD:
        return list(range(context._state.auto_parallel.device_num))
    if not isinstance(group, str):
        raise TypeError(msg("get_rank", "group", "a str or None", group))
    try:
        return _groups[group]
    except KeyError:
        raise ValueError(f"The communication group {group!r} does not exist; create it with create_group().") from None


def get_rank(group=None) -> int:
    """This process's rank in ``group`` (the world group by default)."""
    rank = context._state.auto_parallel.global_rank
    if group in _WORLD:
        return rank
    members = _members(group)
    if rank not in members:
        raise ValueError(f"Rank {rank} is not a member of communication group {group!r} ({members}).")
    return members.index(rank)


def get_group_size(group=None) -> int:
    """Number of ranks in ``group`` (the world group by default)."""
    return len(_members(group))


def get_local_rank(group=None) -> int:
    return get_rank(group)


def get_local_rank_size(group=None) -> int:
    return get_group_size(group)


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
    _groups.pop(group, None)


def get_world_rank_from_group_rank(group: str, group_rank_num: int) -> int:
    return _members(group)[group_rank_num]


def get_group_rank_from_world_rank(world_rank_num: int, group: str) -> int:
    return _members(group).index(world_rank_num)
