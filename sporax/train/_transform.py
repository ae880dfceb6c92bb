"""Checkpoints that reshard: read any window of a tensor saved as rank slices, whatever the
layouts on both sides (N ranks -> M ranks, optimizer shards included).

A *slice* is one record of one rank's file together with where it lies in the full tensor:
``offsets`` and ``full_shape`` come from the record's sporax layout (written by every
``integrated_save=False`` save) or, for a MindSpore file without one, from the source
strategy file (``param_window`` of that rank). A target window is then assembled from the
intersections with the slices that overlap it, each read through the reader's memory map
(``read_window``), so a rank touches only the bytes of its own windows, and memory stays
proportional to the window being built.
"""

from __future__ import annotations

import glob
import math
import os
import re
from dataclasses import dataclass

import numpy as np

from sporax.common import dtype as mstype
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, _readonly
from sporax.parallel import _strategy as st
from sporax.train import _ckpt_format as ckf
from sporax.train._ckpt_io import Item, atomic_write, open_checkpoint, resolve_format, write_items

__all__ = ["Slice", "Sources", "merge_sliced_parameter", "rank_list_for_transform", "transform_checkpoint_by_rank",
           "transform_checkpoints", "load_distributed_checkpoint"]


@dataclass(frozen=True)
class Slice:
    reader: object
    rank: int
    shape: tuple
    offsets: tuple
    full_shape: tuple
    dtype_name: str


class Sources:
    """Every rank slice of every tensor in a set of rank files, checked for consistency (same
    full shape and dtype everywhere, slices inside the full shape) before anything is read."""

    def __init__(self, files: dict[int, str], strategy: dict | None, where: str) -> None:
        self.where = where
        self.readers: list = []
        self.slices: dict[str, list[Slice]] = {}
        self.strings: dict[str, str] = {}
        self.by_strategy = 0  # slices placed by the strategy file (records without a layout)
        try:
            for rank, path in sorted(files.items()):
                # no CRC pass: it would read every byte of every file; the structure is still checked
                reader = open_checkpoint(path, "safetensors" if str(path).endswith(".safetensors") else "ckpt",
                                         verify_crc=False)
                self.readers.append(reader)
                self._add(rank, reader, strategy or {})
        except BaseException:
            self.close()
            raise

    def _add(self, rank: int, reader, strategy: dict) -> None:
        for name, rec in reader.records.items():
            if rec.dtype_name == ckf.STR_TYPE:
                self.strings.setdefault(name, reader.read(name))
                continue
            if rec.layout is not None:
                offsets, full = tuple(rec.layout["offsets"]), tuple(rec.layout["full_shape"])
            elif name in strategy:
                self.by_strategy += 1
                try:
                    full = st.full_shape_of(strategy[name], rec.shape)
                    offsets, sizes = st.param_window(strategy[name], full, rank)
                except ValueError as e:
                    raise ValueError(
                        f"For '{self.where}', parameter '{name}' of rank {rank}'s file '{reader.path}' does not fit "
                        f"its layout in the source strategy: {e}"
                    ) from None
                if tuple(sizes) != tuple(rec.shape):
                    raise ValueError(
                        f"For '{self.where}', parameter '{name}' in rank {rank}'s file '{reader.path}' has shape "
                        f"{rec.shape}, but the source strategy gives rank {rank} a slice of shape {tuple(sizes)}."
                    )
            else:
                offsets, full = (0,) * len(rec.shape), tuple(rec.shape)
            s = Slice(reader, rank, tuple(rec.shape), tuple(int(o) for o in offsets), tuple(int(n) for n in full),
                      rec.dtype_name)
            parts = self.slices.setdefault(name, [])
            if parts and (parts[0].full_shape, parts[0].dtype_name) != (s.full_shape, s.dtype_name):
                raise ValueError(
                    f"For '{self.where}', the slices of '{name}' disagree: full shape {parts[0].full_shape} "
                    f"{parts[0].dtype_name} in '{parts[0].reader.path}' but {s.full_shape} {s.dtype_name} in "
                    f"'{reader.path}'."
                )
            parts.append(s)

    def close(self) -> None:
        for r in self.readers:
            r.close()
        self.readers = []

    def __enter__(self) -> Sources:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    def full_shape(self, name: str) -> tuple:
        return self.slices[name][0].full_shape

    def dtype_name(self, name: str) -> str:
        return self.slices[name][0].dtype_name

    def check_covered(self, name: str, offsets, sizes) -> None:
        """ValueError unless the distinct slices of ``name`` cover the window (checked on the
        metadata alone, before anything is read or written)."""
        seen, volume = set(), 0
        for s in self.slices[name]:
            if (s.offsets, s.shape) in seen:
                continue
            seen.add((s.offsets, s.shape))
            volume += math.prod(max(0, min(a + n, b + m) - max(a, b))
                                for a, n, b, m in zip(offsets, sizes, s.offsets, s.shape))
        if volume < math.prod(sizes):
            files = sorted({s.reader.path for s in self.slices[name]})
            raise ValueError(
                f"For '{self.where}', the slices of '{name}' in {files} cover only {volume} of the "
                f"{math.prod(sizes)} elements of the window at {tuple(offsets)} of size {tuple(sizes)} (full shape "
                f"{self.full_shape(name)}); a rank's file is missing."
            )

    def read_window(self, name: str, offsets, sizes) -> np.ndarray:
        """The window ``[offsets, offsets + sizes)`` of full tensor ``name``, from the slices that
        overlap it (replicas read once); ValueError naming the files when they do not cover it."""
        offsets, sizes = tuple(int(o) for o in offsets), tuple(int(s) for s in sizes)
        parts = self.slices[name]
        full = parts[0].full_shape
        if len(offsets) != len(full) or any(o < 0 or o + s > n for o, s, n in zip(offsets, sizes, full)):
            raise ValueError(
                f"For '{self.where}', the window at {offsets} of size {sizes} does not fit '{name}' of full shape "
                f"{full}."
            )
        dt = ckf.np_dtype_of(parts[0].dtype_name, parts[0].reader.path, name)
        ckf.check_memory(parts[0].reader.path, name, math.prod(sizes) * (dt.itemsize + 1))
        out = np.empty(sizes, dt)
        covered = np.zeros(sizes, np.bool_)
        seen = set()
        for s in parts:
            if (s.offsets, s.shape) in seen:
                continue
            lo = [max(a, b) for a, b in zip(offsets, s.offsets)]
            hi = [min(a + n, b + m) for a, n, b, m in zip(offsets, sizes, s.offsets, s.shape)]
            if any(h <= low for low, h in zip(lo, hi)) and math.prod(sizes):
                continue
            seen.add((s.offsets, s.shape))
            local = tuple(low - b for low, b in zip(lo, s.offsets))
            extent = tuple(h - low for low, h in zip(lo, hi))
            dst = tuple(slice(low - a, h - a) for low, h, a in zip(lo, hi, offsets))
            out[dst] = s.reader.read_window(name, local, extent)
            covered[dst] = True
        if not covered.all():
            files = sorted({s.reader.path for s in parts})
            raise ValueError(
                f"For '{self.where}', the slices of '{name}' in {files} cover only {int(covered.sum())} of the "
                f"{covered.size} elements of the window at {offsets} of size {sizes} (full shape {full}); a rank's "
                "file is missing."
            )
        return out


# ----------------------------------------------------------------------------- strategies
def _strategy_arg(value, arg: str, where: str) -> dict | None:
    """A strategy given as a file name, a ``build_searched_strategy`` dict or a
    ``parameter_layout_dict``-style dict of layout tuples; None for no sharding."""
    if value is None:
        return None
    if isinstance(value, (str, os.PathLike)):
        return st.read_strategy_file(value, where)[0]
    if not isinstance(value, dict):
        raise TypeError(
            f"For '{where}', the '{arg}' should be a strategy file name or a dict, but got {type(value).__name__}."
        )
    out = {}
    for name, layout in value.items():
        if isinstance(layout, st.ParallelLayouts):
            out[name] = layout
        elif isinstance(layout, (list, tuple)) and len(layout) >= 3:
            out[name] = st.layouts_from_tuple(tuple(layout), None)
        else:
            raise TypeError(
                f"For '{where}', the '{arg}' entry of '{name}' should be a layout tuple (dev_mat, tensor_map, "
                f"slice_shape, ...) or a ParallelLayouts, but got {layout!r}."
            )
    return out


def _device_num(strategy: dict | None) -> int:
    return max((st.device_count(pl) for pl in strategy.values()), default=1) if strategy else 1


def _target_window(pl, full: tuple, rank: int, name: str, where: str):
    try:
        if pl.tensor_shape is not None and pl.tensor_shape and tuple(pl.tensor_shape) != tuple(full):
            raise ValueError(f"its full shape is {full}, but the strategy says {tuple(pl.tensor_shape)}")
        return st.param_window(pl, full, rank)
    except ValueError as e:
        raise ValueError(f"For '{where}', parameter '{name}' cannot take its destination layout: {e}") from None


def _slice_record(pl, full: tuple, offsets: tuple, rank: int) -> dict:
    return {"full_shape": list(full), "offsets": list(offsets), "rank": rank, "dev_mat": list(pl.dev_mat),
            "tensor_map": [t if isinstance(t, int) else list(t) for t in pl.tmap]}


def _rank_items(sources: Sources, dst: dict | None, rank: int, where: str) -> list[Item]:
    """Deferred items of ``rank``'s part of every tensor under ``dst`` (full tensors where
    ``dst`` does not name them): each window is read only when the writer reaches it."""
    items = []
    for name in sources.slices:
        full = sources.full_shape(name)
        pl = (dst or {}).get(name)
        if pl is None:
            offsets, sizes, layout = (0,) * len(full), full, None
        else:
            offsets, sizes = _target_window(pl, full, rank, name, where)
            layout = _slice_record(pl, full, offsets, rank)
        sources.check_covered(name, offsets, sizes)

        def chunks(name=name, offsets=offsets, sizes=sizes) -> list:
            return [sources.read_window(name, offsets, sizes)]

        items.append(Item(name, tuple(sizes), sources.dtype_name(name), chunks, layout))
    return items


def _check_rank(rank_id, where: str, limit: int | None = None) -> int:
    if isinstance(rank_id, bool) or not isinstance(rank_id, int):
        raise TypeError(f"For '{where}', the 'rank_id' should be an int, but got {rank_id!r}.")
    if rank_id < 0 or (limit is not None and rank_id >= limit):
        raise ValueError(f"For '{where}', the 'rank_id' should be in [0, {limit}), but got {rank_id}.")
    return rank_id


def _virtual_shape(src: dict, dst: dict | None, name: str) -> tuple | None:
    """A full shape on which every split of ``name`` on both sides falls on whole elements (the
    least common multiple per dimension): overlaps of windows do not depend on the real size."""
    pl = src[name]
    sides = [p for p in (pl, (dst or {}).get(name)) if p is not None]
    for p in sides:
        if p.tensor_shape is not None:
            return tuple(p.tensor_shape)
    if pl.split_sizes or pl.field:
        return None
    dims = []
    for i in range(len(pl.tmap)):
        n = 1
        for p in sides:
            if len(p.tmap) != len(pl.tmap):
                return None
            k = p.strategy()[i] * (math.prod(p.dev_mat) if i == 0 and p.opt_weight_shard_size else 1)
            n = math.lcm(n, k)
        dims.append(n)
    return tuple(dims)


def rank_list_for_transform(rank_id, src_strategy_file=None, dst_strategy_file=None) -> list[int]:
    """The source ranks whose files ``transform_checkpoint_by_rank`` needs to build ``rank_id``'s
    checkpoint under the destination strategy (one rank per distinct source slice, the lowest;
    listed in descending order, as MindSpore does). No source strategy: ``[0]``."""
    where = "rank_list_for_transform"
    _check_rank(rank_id, where)
    src = _strategy_arg(src_strategy_file, "src_strategy_file", where)
    if src is None:
        return [0]
    if not src:
        raise ValueError(f"For '{where}', the src_strategy_file '{src_strategy_file}' has no parameter layouts.")
    dst = _strategy_arg(dst_strategy_file, "dst_strategy_file", where)
    _check_rank(rank_id, where, _device_num(dst))
    needed: set[int] = set()
    for name, pl in src.items():
        full = _virtual_shape(src, dst, name)
        n_src = st.device_count(pl)
        if full is None:  # uneven or field splits: every source rank may hold a part
            needed.update(range(n_src))
            continue
        if dst is not None and name in dst:
            want = _target_window(dst[name], full, rank_id, name, where)
        else:
            want = ((0,) * len(full), full)
        chosen: dict = {}
        for r in range(n_src):
            offsets, sizes = st.param_window(pl, full, r)
            if (offsets, sizes) in chosen:
                continue
            if all(o < wo + ws and wo < o + s for o, s, wo, ws in zip(offsets, sizes, *want)) or not full:
                chosen[(offsets, sizes)] = r
        needed.update(chosen.values())
    return sorted(needed, reverse=True)


def transform_checkpoint_by_rank(rank_id, checkpoint_files_map, save_checkpoint_file_name, src_strategy_file=None,
                                 dst_strategy_file=None) -> None:
    """Write ``rank_id``'s checkpoint under ``dst_strategy_file`` from source rank files
    (``{rank: file}``, at least those of ``rank_list_for_transform``) saved under
    ``src_strategy_file``. ``None`` strategies mean unsharded. Each output tensor is
    assembled from only the overlapping windows of the sources, one at a time, and written
    atomically; a sharded output record carries its layout (sporax's field, ignored by MindSpore).
    """
    where = "transform_checkpoint_by_rank"
    if not isinstance(checkpoint_files_map, dict):
        raise TypeError(f"For '{where}', the 'checkpoint_files_map' should be a dict, but got "
                        f"{type(checkpoint_files_map).__name__}.")
    _check_rank(rank_id, where)
    if not isinstance(save_checkpoint_file_name, (str, os.PathLike)):
        raise TypeError(f"For '{where}', the 'save_checkpoint_file_name' should be a str, but got "
                        f"{save_checkpoint_file_name!r}.")
    save = os.fspath(save_checkpoint_file_name)
    if not save.endswith((".ckpt", ".safetensors")):
        raise ValueError(f"For '{where}', the 'save_checkpoint_file_name' {save!r} should end with '.ckpt' "
                         "(or '.safetensors').")
    for rank, path in checkpoint_files_map.items():
        _check_rank(rank, where)
        if not isinstance(path, (str, os.PathLike)) or not os.path.isfile(path):
            raise ValueError(f"For '{where}', the checkpoint file {path!r} of rank {rank} does not exist.")
    src = _strategy_arg(src_strategy_file, "src_strategy_file", where)
    dst = _strategy_arg(dst_strategy_file, "dst_strategy_file", where)
    _check_rank(rank_id, where, _device_num(dst))
    if os.path.dirname(os.path.abspath(save)) and not os.path.isdir(os.path.dirname(os.path.abspath(save))):
        raise ValueError(f"For '{where}', the directory of 'save_checkpoint_file_name' {save!r} does not exist.")
    with Sources({int(r): os.fspath(p) for r, p in checkpoint_files_map.items()}, src, where) as sources:
        _write_rank(sources, dst, rank_id, save, where)


def _write_rank(sources: Sources, dst: dict | None, rank: int, path: str, where: str) -> None:
    items = _rank_items(sources, dst, rank, where)
    fmt = resolve_format(path, "ckpt", where)
    atomic_write(path, lambda f: write_items(f, fmt, items, sources.strings, False))


_RANK_DIR = re.compile(r"rank_(\d+)")


def _rank_files(src_dir: str, where: str) -> dict[int, str]:
    """``{rank: file}`` from ``src_dir/rank_N/``: the last checkpoint in lexicographic order."""
    found: dict[int, str] = {}
    for d in sorted(glob.glob(os.path.join(glob.escape(src_dir), "rank_*"))):
        m = _RANK_DIR.fullmatch(os.path.basename(d))
        if m is None or not os.path.isdir(d):
            continue
        files = sorted(f for f in os.listdir(d) if f.endswith((".ckpt", ".safetensors")) and not f.startswith("."))
        if files:
            found[int(m.group(1))] = os.path.join(d, files[-1])
    if not found:
        raise ValueError(f"For '{where}', the 'src_checkpoints_dir' '{src_dir}' has no rank_N/*.ckpt files.")
    return found


def transform_checkpoints(src_checkpoints_dir, dst_checkpoints_dir, ckpt_prefix, src_strategy_file=None,
                          dst_strategy_file=None, process_num=1, output_format="ckpt") -> None:
    """Convert every rank's checkpoint from the source strategy to the destination one.

    Sources are ``src_checkpoints_dir/rank_N/*.ckpt`` (the last file in lexicographic order of
    each rank); outputs are ``dst_checkpoints_dir/rank_M/{ckpt_prefix}{M}.ckpt`` for every
    rank ``M`` of the destination strategy (one, unsharded, when it is None). Every file is
    written atomically; a missing source rank raises ValueError before anything is written.
    ``process_num`` is accepted for compatibility (the conversion streams in this process).
    """
    where = "transform_checkpoints"
    for arg, value in (("src_checkpoints_dir", src_checkpoints_dir), ("dst_checkpoints_dir", dst_checkpoints_dir)):
        if not isinstance(value, (str, os.PathLike)):
            raise TypeError(f"For '{where}', the '{arg}' should be a str, but got {value!r}.")
    if not isinstance(ckpt_prefix, str):
        raise TypeError(f"For '{where}', the 'ckpt_prefix' should be a str, but got {ckpt_prefix!r}.")
    if os.sep in ckpt_prefix or ckpt_prefix in (".", ".."):
        raise ValueError(f"For '{where}', the 'ckpt_prefix' {ckpt_prefix!r} should be a file name prefix, not a path.")
    if output_format not in ("ckpt", "safetensors"):
        raise ValueError(f"For '{where}', the 'output_format' should be 'ckpt' or 'safetensors', but got "
                         f"{output_format!r}.")
    if isinstance(process_num, bool) or not isinstance(process_num, int) or process_num < 1:
        raise ValueError(f"For '{where}', the 'process_num' should be an int >= 1, but got {process_num!r}.")
    src_dir, dst_dir = os.fspath(src_checkpoints_dir), os.fspath(dst_checkpoints_dir)
    if not os.path.isdir(src_dir):
        raise NotADirectoryError(f"For '{where}', the 'src_checkpoints_dir' '{src_dir}' is not a directory.")
    if os.path.exists(dst_dir) and not os.path.isdir(dst_dir):
        raise NotADirectoryError(f"For '{where}', the 'dst_checkpoints_dir' '{dst_dir}' is not a directory.")
    files = _rank_files(src_dir, where)
    src = _strategy_arg(src_strategy_file, "src_strategy_file", where)
    dst = _strategy_arg(dst_strategy_file, "dst_strategy_file", where)
    plans = []
    for rank in range(_device_num(dst)):
        needed = rank_list_for_transform(rank, src, dst) if src is not None else sorted(files)
        missing = [r for r in needed if r not in files]
        if missing:
            raise ValueError(
                f"For '{where}', the checkpoint files of source ranks {sorted(missing)} are needed for destination "
                f"rank {rank}, but '{src_dir}' has none for them."
            )
        plans.append((rank, needed))
    used = sorted({r for _, needed in plans for r in needed})
    with Sources({r: files[r] for r in used}, src, where) as sources:
        for rank, _ in plans:  # every destination window is checked before any file is written
            _rank_items(sources, dst, rank, where)
        for rank, _ in plans:
            out_dir = os.path.join(dst_dir, f"rank_{rank}")
            os.makedirs(out_dir, exist_ok=True)
            _write_rank(sources, dst, rank, os.path.join(out_dir, f"{ckpt_prefix}{rank}.{output_format}"), where)


# ----------------------------------------------------------------------------- merge
def merge_sliced_parameter(sliced_parameters, strategy=None):
    """One Parameter with the whole data from its slices, given in rank order.

    Without ``strategy`` the slices are concatenated along dimension 0. With it (a
    ``build_searched_strategy`` dict, or ``{name: layout tuple}``), each rank's slice is put
    at its window under the parameter's layout (replicas are read once; uneven dimension-0
    splits follow ``param_split_shape``); there must be one slice per device of the layout.
    """
    where = "merge_sliced_parameter"
    if not isinstance(sliced_parameters, list):
        raise TypeError(f"For '{where}', the 'sliced_parameters' should be a list, but got "
                        f"{type(sliced_parameters).__name__}.")
    if not sliced_parameters:
        raise ValueError(f"For '{where}', the 'sliced_parameters' should not be empty.")
    if strategy is not None and not isinstance(strategy, dict):
        raise TypeError(f"For '{where}', the 'strategy' should be a dict, but got {type(strategy).__name__}.")
    for i, p in enumerate(sliced_parameters):
        if not isinstance(p, Parameter):
            raise TypeError(f"For '{where}', the element at index {i} of 'sliced_parameters' should be a Parameter, "
                            f"but got {type(p).__name__}.")
    first = sliced_parameters[0]
    name, shape = first.name, tuple(first.shape)
    for i, p in enumerate(sliced_parameters):
        if p.name != name or len(p.shape) != len(shape) or tuple(p.shape[1:]) != shape[1:] or p.dtype != first.dtype:
            raise ValueError(
                f"For '{where}', the slices should have the same name, dtype, rank and shape except dimension 0 "
                f"({name!r}, {first.dtype}, {shape}), but the one at index {i} is {p.name!r}, {p.dtype}, "
                f"{tuple(p.shape)}."
            )
    if not strategy:
        data = np.concatenate([np.asarray(p.asnumpy()) for p in sliced_parameters]) if shape else \
            np.asarray(first.asnumpy())
    else:
        if name not in strategy:
            raise KeyError(f"For '{where}', the parameter name {name!r} should be a key of the 'strategy'.")
        pl = _strategy_arg({name: strategy[name]}, "strategy", where)[name]
        count = st.device_count(pl)
        if len(sliced_parameters) != count:
            raise ValueError(f"For '{where}', the 'sliced_parameters' should hold one slice per device of the "
                             f"layout ({count}), but got {len(sliced_parameters)}.")
        if not pl.split_sizes and any(tuple(p.shape) != shape for p in sliced_parameters):
            raise ValueError(f"For '{where}', the slices of an even split should all have shape {shape}.")
        try:
            full = st.full_shape_of(pl, shape)
            windows = [st.param_window(pl, full, r) for r in range(count)]
        except ValueError as e:
            raise ValueError(f"For '{where}', the slices of {name!r} do not fit its strategy: {e}") from None
        data = np.empty(full, first.dtype.np_dtype)
        covered = np.zeros(full, np.bool_)
        for r, (offsets, sizes) in enumerate(windows):
            if tuple(sizes) != tuple(sliced_parameters[r].shape):
                raise ValueError(f"For '{where}', the slice of rank {r} should have shape {tuple(sizes)} under the "
                                 f"strategy, but got {tuple(sliced_parameters[r].shape)}.")
            index = tuple(slice(o, o + s) for o, s in zip(offsets, sizes))
            if not covered[index].all():
                data[index] = np.asarray(sliced_parameters[r].asnumpy())
                covered[index] = True
        if not covered.all():
            raise ValueError(f"For '{where}', the slices of {name!r} do not cover its full shape {full}.")
    return Parameter(Tensor(data, first.dtype), name, first.requires_grad, first.layerwise_parallel)


# ----------------------------------------------------------------------------- load into a net
_FLOATS = set(mstype.float_type)
_INTS = set(mstype.int_type)


def _converter(p: Parameter, dtype_name: str, strict_load: bool, name: str, where: str):
    """A function casting a read window to ``p``'s dtype, or a ValueError naming both dtypes."""
    src = mstype.from_name(dtype_name)
    if src == p.dtype:
        return lambda a: a
    pair = {src, p.dtype}
    if strict_load or not (pair <= _FLOATS or pair <= _INTS):
        why = " (strict_load=True allows no conversion)" if strict_load else ""
        raise ValueError(f"For '{where}', '{p.name}' has dtype {p.dtype} in the network but {src} in the checkpoint "
                         f"('{name}'){why}.")
    np_dt = p.dtype.np_dtype
    return lambda a: a.astype(np_dt)


def _global_sharding(p: Parameter):
    """The sharding of ``p``'s value when it is a ``jax.Array`` spread over several devices."""
    import jax

    value = p._value
    if isinstance(value, jax.Array) and not isinstance(value, jax.core.Tracer) and len(value.sharding.device_set) > 1:
        return value.sharding
    return None


def _plan_param(p: Parameter, key: str, sources: Sources, predict: dict | None, net_layouts: dict, rank: int,
                strict_load: bool, where: str):
    """What ``p`` takes from the sources, built lazily: ``(build, sliced)``; checked now."""
    from sporax.common.parameter import _window_of_index

    full = sources.full_shape(key)
    cast = _converter(p, sources.dtype_name(key), strict_load, key, where)
    sharding = _global_sharding(p)
    if sharding is not None:  # a global array: every local device reads its own window
        if tuple(p.shape) != full:
            raise ValueError(f"For '{where}', '{p.name}' has shape {tuple(p.shape)} in the network but {full} in the "
                             "checkpoint.")

        def build_global():
            import jax

            def shard(index):
                return cast(sources.read_window(key, *_window_of_index(index, full)))

            return jax.make_array_from_callback(full, sharding, shard)

        return build_global, False
    pl = None
    spmd = _spmd_mode()
    if predict is not None and p.name in predict:
        pl = predict[p.name]
    elif p.name in net_layouts and (p.sliced or p.init is not None or spmd):
        pl = st.layouts_from_tuple(tuple(net_layouts[p.name]), full)
    if pl is not None and spmd and (sharding := _layout_sharding(pl, full)) is not None:
        if tuple(p.shape) != full:
            raise ValueError(f"For '{where}', '{p.name}' has shape {tuple(p.shape)} in the network but {full} in the "
                             "checkpoint.")
        _target_window(pl, full, 0, key, where)  # the layout fits the shape

        def build_placed():
            import jax

            def shard(index):
                return cast(sources.read_window(key, *_window_of_index(index, full)))

            return jax.make_array_from_callback(full, sharding, shard)

        return build_placed, False
    if pl is None:
        window = ((0,) * len(full), full)
        expect = tuple(p.shape)
    else:
        window = _target_window(pl, full, rank, key, where)
        expect = tuple(window[1])
        if p.init is None and not p.sliced and tuple(p.shape) == full and expect != full:
            expect = tuple(window[1])  # a full parameter becomes this rank's slice
    if pl is None and tuple(p.shape) != full:
        raise ValueError(f"For '{where}', '{p.name}' has shape {tuple(p.shape)} in the network but {full} in the "
                         "checkpoint.")
    if pl is not None and p.sliced and p.init is None and tuple(p.shape) != expect:
        raise ValueError(f"For '{where}', '{p.name}' holds a slice of shape {tuple(p.shape)}, but its layout gives "
                         f"rank {rank} a slice of shape {expect} of the checkpoint's {full}.")

    def build_local():
        return _readonly(cast(sources.read_window(key, *window)))

    return build_local, expect != full


def _spmd_mode() -> bool:
    """Semi-auto / auto parallel: parameters live as global arrays over the context's devices."""
    from sporax import context

    return context._state.auto_parallel.parallel_mode in ("semi_auto_parallel", "auto_parallel")


def _layout_sharding(pl, full: tuple):
    """The ``NamedSharding`` semi-auto parallel gives a layout (no optimizer shard), over the
    context's devices; None when the layout does not map to one."""
    from jax.sharding import NamedSharding

    from sporax.parallel import _runtime
    from sporax.parallel.layout import Layout, to_mesh_and_spec

    opt = pl.opt_weight_shard_size not in (0, 1) and (pl.opt_weight_shard_step or pl.opt_weight_shard_size == -1)
    if pl.split_sizes or pl.field or opt:
        return None
    devices = _runtime.dp_devices()
    if st.device_count(pl) != len(devices):
        return None
    mesh, spec = to_mesh_and_spec(Layout(pl.dev_mat, pl.tmap, (0,) * len(pl.tmap)), devices)
    return NamedSharding(mesh, spec)


def load_distributed_checkpoint(network, checkpoint_filenames=None, predict_strategy=None,
                                train_strategy_filename=None, strict_load=False, dec_key=None, dec_mode="AES-GCM",
                                format="ckpt", unified_safetensors_dir=None, dst_safetensors_dir=None,  # noqa: A002
                                rank_id=None, output_format="safetensors", name_map=None, max_process_num=64,
                                return_param_dict=False):
    """Load rank checkpoints saved by a sharded run (any number of ranks, any layouts) into
    ``network``, however it is sharded now; optimizer state is loaded like any parameter.

    ``checkpoint_filenames`` lists the source files in rank order. Where a slice lies comes from
    its record's layout (sporax files) or from the training strategy file
    (``train_strategy_filename``, else ``strategy_ckpt_config["load_file"]``; needed for
    MindSpore's files). Each parameter takes, without the full tensor ever being built:

    * a parameter held as a ``jax.Array`` sharded over several devices: the same sharding, each
      local device's shard read alone from the windows that overlap it;
    * a parameter named in ``predict_strategy`` (``{name: layout tuple}``, e.g. a
      ``parameter_layout_dict``, or a strategy file) or, when sliced or lazy, in
      ``network.parameter_layout_dict``: this rank's slice (``rank_id``, default ``get_rank()``);
    * otherwise the full tensor.

    All shapes and dtypes are checked before any parameter changes (float-to-float and
    int-to-int casts unless ``strict_load``). ``name_map`` maps checkpoint names to network
    names. Returns True, or ``{name: Parameter}`` of what was loaded with ``return_param_dict``.
    MindSpore's unified-safetensors mode (``unified_safetensors_dir``) and encryption are refused.
    """
    from sporax import communication, context
    from sporax.nn.cell import Cell

    where = "load_distributed_checkpoint"
    if not isinstance(network, Cell):
        raise TypeError(f"For '{where}', the 'network' should be a Cell, but got {type(network).__name__}.")
    if format not in ("ckpt", "safetensors") or output_format not in ("ckpt", "safetensors"):
        raise ValueError(f"For '{where}', 'format' and 'output_format' should be 'ckpt' or 'safetensors', but got "
                         f"{format!r} and {output_format!r}.")
    if dec_key is not None:
        raise ValueError(f"For '{where}', encrypted checkpoints ('dec_key') are not supported by sporax.")
    if unified_safetensors_dir is not None or dst_safetensors_dir is not None:
        raise ValueError(f"For '{where}', the unified-safetensors mode ('unified_safetensors_dir', "
                         "'dst_safetensors_dir') is not supported by sporax; list the rank files in "
                         "'checkpoint_filenames' (.ckpt or .safetensors) instead.")
    if (not isinstance(checkpoint_filenames, (list, tuple)) or not checkpoint_filenames
            or not all(isinstance(f, (str, os.PathLike)) for f in checkpoint_filenames)):
        raise TypeError(f"For '{where}', the 'checkpoint_filenames' should be a non-empty list of file names in rank "
                        f"order, but got {checkpoint_filenames!r}.")
    for i, f in enumerate(checkpoint_filenames):
        if not os.path.isfile(f):
            raise ValueError(f"For '{where}', the checkpoint file '{os.fspath(f)}' (rank {i}) does not exist.")
    if not isinstance(strict_load, bool):
        raise TypeError(f"For '{where}', the 'strict_load' should be a bool, but got {strict_load!r}.")
    if name_map is not None and not (isinstance(name_map, dict)
                                     and all(isinstance(k, str) and isinstance(v, str) for k, v in name_map.items())):
        raise TypeError(f"For '{where}', the 'name_map' should be a dict of str to str, but got {name_map!r}.")
    predict = _strategy_arg(predict_strategy, "predict_strategy", where)
    if train_strategy_filename is None:
        train_strategy_filename = context.get_auto_parallel_context("strategy_ckpt_config")["load_file"] or None
    train = _strategy_arg(train_strategy_filename, "train_strategy_filename", where)
    rank = communication.get_rank() if rank_id is None else _check_rank(rank_id, where)
    back = {v: k for k, v in (name_map or {}).items()}
    net_layouts = dict(getattr(network, "parameter_layout_dict", None) or {})
    files = {i: os.fspath(f) for i, f in enumerate(checkpoint_filenames)}
    with Sources(files, train, where) as sources:
        if sources.by_strategy and _device_num(train) != len(files):  # files without sporax's layouts
            raise ValueError(f"For '{where}', the 'checkpoint_filenames' should hold one file per training device "
                             f"({_device_num(train)} in '{train_strategy_filename}'), but got {len(files)}.")
        plan = []
        for _, p in network.parameters_and_names():
            key = back.get(p.name, p.name)
            if key not in sources.slices:
                continue
            build, sliced = _plan_param(p, key, sources, predict, net_layouts, rank, strict_load, where)
            plan.append((p, build, sliced))
        values = [(p, build(), sliced) for p, build, sliced in plan]  # every read before any write
    from sporax.common.tensor import mark_donatable

    loaded = {}
    for p, value, sliced in values:
        p.set_data(Tensor._wrap(value), slice_shape=sliced or p.sliced)
        loaded[p.name] = p
    mark_donatable([v for _, v, _ in values if not isinstance(v, np.ndarray)])  # fresh buffers held only here
    missing = [p.name for _, p in network.parameters_and_names() if p.name not in loaded]
    if missing:
        import logging

        logging.getLogger(__name__).warning("load_distributed_checkpoint: %d parameters of the network are not in the "
                                            "checkpoint files: %s.", len(missing), missing)
    return loaded if return_param_dict else True
