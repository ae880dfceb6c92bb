"""Layout math (spec §3): which window of a tensor each rank holds. Pure functions.

Terms. ``dev_mat = [m_0, ..., m_{D-1}]`` views the ranks as a row-major grid (last axis
fastest). ``tensor_map[i]`` says how tensor dimension ``i`` is split: ``-1`` not split, ``k``
split along device-matrix axis ``D-1-k`` (counted from the RIGHT), a tuple of such ``k`` split
over several axes (the first is the major one; the factor is the product). Ranks holding the
same slice are replicas; the optimizer shard (§3.4) splits a replica group's slice along dim 0.

The one JAX-aware function, ``to_mesh_and_spec``, turns a layout into a ``jax.sharding.Mesh``
(shape ``dev_mat``, axes ``d0..d{D-1}``, devices in rank order) and a ``PartitionSpec``, so the
device at rank ``r`` holds exactly ``rank_window(..., r)``.
"""

from __future__ import annotations

import dataclasses
import math
import numbers

__all__ = [
    "rank_to_coord",
    "strategy",
    "slice_shape",
    "slice_coord",
    "slice_index",
    "rank_window",
    "slice_index_window",
    "replica_group",
    "opt_shard_window",
    "Layout",
    "to_mesh_and_spec",
]

Window = tuple[tuple[int, ...], tuple[int, ...]]


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _dev_mat(dev_mat) -> tuple[int, ...]:
    if not isinstance(dev_mat, (list, tuple)) or not dev_mat or not all(_is_int(m) and m >= 1 for m in dev_mat):
        raise ValueError(f"The 'dev_mat' should be a non-empty list/tuple of positive ints, but got {dev_mat!r}.")
    return tuple(int(m) for m in dev_mat)


def _tensor_map(tensor_map, ndim_dev: int) -> tuple[tuple[int, ...], ...]:
    """Each entry as a tuple of device-matrix axes counted from the right (``()`` = not split)."""
    if not isinstance(tensor_map, (list, tuple)):
        raise ValueError(f"The 'tensor_map' should be a list/tuple, but got {tensor_map!r}.")
    out, used = [], set()
    for i, entry in enumerate(tensor_map):
        ks = tuple(entry) if isinstance(entry, (list, tuple)) else (entry,)
        if ks == (-1,):
            out.append(())
            continue
        for k in ks:
            if not _is_int(k) or not 0 <= k < ndim_dev:
                raise ValueError(
                    f"The 'tensor_map' entry {entry!r} of dimension {i} should be -1 or in [0, {ndim_dev - 1}] "
                    f"(device matrix of {ndim_dev} axes), but got {tensor_map!r}."
                )
            if k in used:
                raise ValueError(f"The 'tensor_map' {tensor_map!r} uses device-matrix axis {k} twice.")
            used.add(k)
        out.append(tuple(int(k) for k in ks))
    return tuple(out)


def _check_rank(dev_mat: tuple, rank) -> int:
    size = math.prod(dev_mat)
    if not _is_int(rank) or not 0 <= rank < size:
        raise ValueError(f"The 'rank' should be in [0, {size}) for dev_mat {list(dev_mat)}, but got {rank!r}.")
    return int(rank)


def _check_ndim(full_shape, tmap: tuple) -> tuple[int, ...]:
    full_shape = tuple(int(n) for n in full_shape)
    if len(full_shape) != len(tmap):
        raise ValueError(
            f"The 'tensor_map' should have one entry per tensor dimension ({len(full_shape)} for shape "
            f"{full_shape}), but got {len(tmap)} entries."
        )
    return full_shape


def rank_to_coord(dev_mat, rank: int) -> tuple[int, ...]:
    """Rank -> device-matrix coordinate, row-major (``[2, 4]``, rank 5 -> ``(1, 1)``)."""
    dev_mat = _dev_mat(dev_mat)
    r = _check_rank(dev_mat, rank)
    coord = []
    for m in reversed(dev_mat):
        coord.append(r % m)
        r //= m
    return tuple(reversed(coord))


def strategy(dev_mat, tensor_map) -> tuple[int, ...]:
    """How many ways each tensor dimension is split."""
    dev_mat = _dev_mat(dev_mat)
    d = len(dev_mat)
    return tuple(math.prod(dev_mat[d - 1 - k] for k in ks) for ks in _tensor_map(tensor_map, d))


def slice_shape(full_shape, dev_mat, tensor_map) -> tuple[int, ...]:
    """The shape of one rank's slice; ValueError if a dimension does not divide by its split."""
    strat = strategy(dev_mat, tensor_map)
    full_shape = _check_ndim(full_shape, strat)
    for i, (n, s) in enumerate(zip(full_shape, strat)):
        if n % s:
            raise ValueError(
                f"Dimension {i} of shape {full_shape} (size {n}) can not be split {s} ways "
                f"(dev_mat {list(dev_mat)}, tensor_map {list(tensor_map)}): {n} is not divisible by {s}."
            )
    return tuple(n // s for n, s in zip(full_shape, strat))


def slice_coord(dev_mat, tensor_map, rank: int) -> tuple[int, ...]:
    """The slice coordinate of ``rank`` along each tensor dimension."""
    dev_mat = _dev_mat(dev_mat)
    d = len(dev_mat)
    coord = rank_to_coord(dev_mat, rank)
    out = []
    for ks in _tensor_map(tensor_map, d):
        c = 0
        for k in ks:
            c = c * dev_mat[d - 1 - k] + coord[d - 1 - k]
        out.append(c)
    return tuple(out)


def slice_index(dev_mat, tensor_map, rank: int) -> int:
    """Row-major index of ``rank``'s slice over the strategy; replicas share it."""
    index = 0
    for c, s in zip(slice_coord(dev_mat, tensor_map, rank), strategy(dev_mat, tensor_map)):
        index = index * s + c
    return index


def rank_window(dev_mat, tensor_map, full_shape, rank: int) -> Window:
    """``(offsets, sizes)`` of the window of the full tensor that ``rank`` holds."""
    sizes = slice_shape(full_shape, dev_mat, tensor_map)
    coord = slice_coord(dev_mat, tensor_map, rank)
    return tuple(c * n for c, n in zip(coord, sizes)), sizes


def slice_index_window(full_shape, slice_shape, slice_index: int) -> Window:
    """``(offsets, sizes)`` of slice number ``slice_index`` (row-major over full/slice)."""
    full_shape = tuple(int(n) for n in full_shape)
    sizes = tuple(int(n) for n in slice_shape)
    if len(full_shape) != len(sizes):
        raise ValueError(f"The slice shape {sizes} should have as many dimensions as the full shape {full_shape}.")
    strat = []
    for i, (n, s) in enumerate(zip(full_shape, sizes)):
        if s <= 0 or n % s:
            raise ValueError(
                f"Dimension {i} of the full shape {full_shape} (size {n}) should be a multiple of the slice size "
                f"{s} (slice shape {sizes})."
            )
        strat.append(n // s)
    count = math.prod(strat)
    if not _is_int(slice_index) or not 0 <= slice_index < count:
        raise ValueError(
            f"The 'slice_index' should be in [0, {count}) for full shape {full_shape} and slice shape {sizes}, "
            f"but got {slice_index!r}."
        )
    coord = []
    rest = int(slice_index)
    for s in reversed(strat):
        coord.append(rest % s)
        rest //= s
    coord.reverse()
    return tuple(c * n for c, n in zip(coord, sizes)), sizes


def replica_group(dev_mat, tensor_map, rank: int) -> list[int]:
    """All ranks holding the same slice as ``rank``, ascending."""
    dev_mat = _dev_mat(dev_mat)
    mine = slice_index(dev_mat, tensor_map, rank)
    return [r for r in range(math.prod(dev_mat)) if slice_index(dev_mat, tensor_map, r) == mine]


def opt_shard_window(window: Window, group_size: int, member: int) -> Window:
    """Member ``member`` of a group of ``group_size`` keeps 1/``group_size`` of ``window`` along dim 0 (§3.4)."""
    offsets, sizes = tuple(window[0]), tuple(window[1])
    if not _is_int(group_size) or group_size < 1:
        raise ValueError(f"The optimizer-shard 'group_size' should be a positive int, but got {group_size!r}.")
    if not _is_int(member) or not 0 <= member < group_size:
        raise ValueError(f"The optimizer-shard 'member' should be in [0, {group_size}), but got {member!r}.")
    if not sizes:
        raise ValueError("A 0-d tensor can not be optimizer-sharded along dimension 0.")
    if sizes[0] % group_size:
        raise ValueError(
            f"The optimizer shard splits dimension 0 of the slice {sizes} among {group_size} ranks, "
            f"but {sizes[0]} is not divisible by {group_size}."
        )
    part = sizes[0] // group_size
    return (offsets[0] + member * part, *offsets[1:]), (part, *sizes[1:])


def _entry(ks: tuple):
    return -1 if not ks else ks[0] if len(ks) == 1 else ks


@dataclasses.dataclass(frozen=True)
class Layout:
    """A parameter's layout: MindSpore's ``(dev_mat, tensor_map, slice_shape, field_size,
    uniform_split, opt_shard_group)`` as named, validated fields."""

    dev_mat: tuple
    tensor_map: tuple
    slice_shape: tuple
    field_size: int = 0
    uniform_split: bool = True
    opt_shard_group: str = ""

    def __post_init__(self) -> None:
        dev_mat = _dev_mat(self.dev_mat)
        tmap = _tensor_map(self.tensor_map, len(dev_mat))
        if not isinstance(self.slice_shape, (list, tuple)) or not all(_is_int(n) and n >= 0 for n in self.slice_shape):
            raise ValueError(f"The 'slice_shape' should be a list/tuple of ints >= 0, but got {self.slice_shape!r}.")
        if len(self.slice_shape) != len(tmap):
            raise ValueError(
                f"The 'tensor_map' {list(self.tensor_map)} and the 'slice_shape' {list(self.slice_shape)} should "
                f"have the same length."
            )
        object.__setattr__(self, "dev_mat", dev_mat)
        object.__setattr__(self, "tensor_map", tuple(_entry(ks) for ks in tmap))
        object.__setattr__(self, "slice_shape", tuple(int(n) for n in self.slice_shape))

    @classmethod
    def from_mindspore(cls, layout) -> Layout:
        """From MindSpore's 3- to 6-element form ``(dev_mat, tensor_map, slice_shape[, ...])``."""
        if isinstance(layout, Layout):
            return layout
        if not isinstance(layout, (list, tuple)):
            raise TypeError(f"The 'layout' should be a tuple, but got {type(layout).__name__}.")
        if not 3 <= len(layout) <= 6:
            raise ValueError(f"The 'layout' should have 3 to 6 elements, but got {len(layout)}.")
        return cls(*layout)

    def to_mindspore(self) -> tuple:
        """MindSpore's 6-element form with lists: ``([2, 4], [1, -1], [16, 32], 0, True, '')``."""
        tmap = [list(e) if isinstance(e, tuple) else e for e in self.tensor_map]
        return (
            list(self.dev_mat),
            tmap,
            list(self.slice_shape),
            self.field_size,
            self.uniform_split,
            self.opt_shard_group,
        )

    @property
    def strategy(self) -> tuple[int, ...]:
        return strategy(self.dev_mat, self.tensor_map)

    @property
    def full_shape(self) -> tuple[int, ...]:
        """The unsliced shape this layout implies (slice shape times the strategy)."""
        return tuple(n * s for n, s in zip(self.slice_shape, self.strategy))

    def slice_index(self, rank: int) -> int:
        return slice_index(self.dev_mat, self.tensor_map, rank)

    def replica_group(self, rank: int) -> list[int]:
        return replica_group(self.dev_mat, self.tensor_map, rank)

    def window(self, full_shape, rank: int, opt_shard: bool = False) -> Window:
        """``rank``'s window of ``full_shape``; with ``opt_shard``, its optimizer shard (§3.4)."""
        if full_shape is None:
            full_shape = self.full_shape
        win = rank_window(self.dev_mat, self.tensor_map, full_shape, rank)
        if win[1] != self.slice_shape:
            raise ValueError(
                f"The layout's slice shape {self.slice_shape} does not match the full shape {tuple(full_shape)} "
                f"split by dev_mat {list(self.dev_mat)} and tensor_map {list(self.tensor_map)} (gives {win[1]})."
            )
        if opt_shard:
            group = self.replica_group(rank)
            win = opt_shard_window(win, len(group), group.index(rank))
        return win


def to_mesh_and_spec(layout, devices=None):
    """``(jax.sharding.Mesh, PartitionSpec)`` for ``layout`` (a ``Layout`` or MindSpore tuple).

    The mesh has shape ``dev_mat`` and axes ``d0..d{D-1}``; ``devices`` (default
    ``jax.devices()``) are taken in rank order, so mesh coordinate = ``rank_to_coord(rank)``.
    """
    import jax
    import numpy as np
    from jax.sharding import Mesh, PartitionSpec

    layout = Layout.from_mindspore(layout)
    d = len(layout.dev_mat)
    size = math.prod(layout.dev_mat)
    devices = list(jax.devices() if devices is None else np.asarray(devices, dtype=object).ravel())
    if len(devices) < size:
        raise ValueError(f"The layout's dev_mat {list(layout.dev_mat)} needs {size} devices, but got {len(devices)}.")
    names = tuple(f"d{a}" for a in range(d))
    mesh = Mesh(np.array(devices[:size], dtype=object).reshape(layout.dev_mat), names)
    spec = []
    for ks in _tensor_map(layout.tensor_map, d):
        axes = tuple(names[d - 1 - k] for k in ks)
        spec.append(None if not axes else axes[0] if len(axes) == 1 else axes)
    return mesh, PartitionSpec(*spec)
