"""Strategy files: MindSpore's record of how each parameter is sharded, in its two formats.

A strategy file maps parameter names to layouts, and op names to the strategies given to
``Primitive.shard``. MindSpore writes it when a sharded graph compiles and
``set_auto_parallel_context(strategy_ckpt_config={"save_file": path})`` (or the older
``strategy_ckpt_save_file``) names a file; ``build_searched_strategy`` reads it, and the
checkpoint transforms (:mod:`sporax.train._transform`) use it to cut and merge rank slices.

Formats (both written and read here, with no protobuf dependency):

* **protobuf** (any name not ending in ``.json``): message ``mindspore.straspb.ParallelStrategyMap``
  (proto2)::

      1 current_stage uint32 | 2 parallel_strategy_item (1 node_name, 2 {1 stage, 2 {1 dim*}}*)*
      3 parallel_layout_item (1 param_name, 2 ParallelLayouts)*
      ParallelLayouts: 1 dev_matrix {1 dim uint32*}*, 2 tensor_map {1 dim int32*}*,
                       3 param_split_shape {1 dim int64*}*, 4 indices_offset {1 dim int64*}*,
                       5 field int32, 6 opt_weight_shard_step int32, 7 opt_weight_shard_size int32

  It has no full shape: a reader derives it from a slice's shape and the split.
* **JSON** (``.json``): ``{"current_stage": 0, "parallel_strategy_item": {node: {"stage",
  "parallel_strategy"}}, "parallel_layout_item": {name: {"dev_matrix", "tensor_map",
  "tensor_shape", "field", "opt_weight_shard_step", "opt_weight_shard_size"[,
  "param_split_shape", "indices_offset"]}}}`` (``tensor_shape`` is the full shape).

Optimizer shard (parallel optimizer): ``opt_weight_shard_size`` ranks (``-1``: the whole
replica group; ``0``: no shard) of a replica group split the slice along dimension 0; the
member index of a rank is its position in the ascending replica group modulo the size, and
``opt_weight_shard_step`` is the rank distance between consecutive members.
"""

from __future__ import annotations

import dataclasses
import math
import os

from sporax.parallel import layout as lm

__all__ = [
    "Dims",
    "ParallelLayouts",
    "build_searched_strategy",
    "save_strategy_file",
    "strategy_of_net",
    "write_net_strategy",
    "loaded_strategy",
    "param_window",
    "full_shape_of",
]


@dataclasses.dataclass
class Dims:
    """One repeated-int message of the strategy file (``DevMatrix``, ``TensorMap``, ...)."""

    dim: list


@dataclasses.dataclass
class ParallelLayouts:
    """A parameter's layout as MindSpore's ``ParallelLayouts`` message (``layout.dev_matrix[0].dim``,
    ``layout.tensor_map[0].dim``, ``layout.field``, ...), plus ``tensor_shape``: the full shape
    (JSON files and sporax's own layouts; ``None`` when read from protobuf)."""

    dev_matrix: list
    tensor_map: list
    param_split_shape: list
    indices_offset: list
    field: int = 0
    opt_weight_shard_step: int = 0
    opt_weight_shard_size: int = 0
    tensor_shape: tuple | None = None

    # -- sporax's view of it
    @property
    def dev_mat(self) -> tuple:
        return tuple(self.dev_matrix[0].dim) if self.dev_matrix else ()

    @property
    def tmap(self) -> tuple:
        """The tensor map with one entry per dimension: ``-1``, an axis, or a tuple of axes."""
        if len(self.tensor_map) > 1:  # one TensorMap per dimension (multi-axis layouts)
            maps = [list(t.dim) for t in self.tensor_map if list(t.dim)]
            return tuple(m[0] if len(m) == 1 else tuple(m) for m in maps)
        return tuple(self.tensor_map[0].dim) if self.tensor_map else ()

    @property
    def split_sizes(self) -> tuple:
        """Uneven split: the dimension-0 size of each slice (empty when even)."""
        return tuple(self.param_split_shape[0].dim) if self.param_split_shape else ()

    @property
    def split_offsets(self) -> tuple:
        return tuple(self.indices_offset[0].dim) if self.indices_offset else ()

    def strategy(self) -> tuple:
        return lm.strategy(self.dev_mat, self.tmap)


def make_layouts(dev_mat, tensor_map, full_shape=None, field=0, opt_step=0, opt_size=0) -> ParallelLayouts:
    """A validated ``ParallelLayouts`` from sporax's terms."""
    dev_mat = tuple(int(m) for m in dev_mat)
    entries = [e if isinstance(e, int) else tuple(e) for e in tensor_map]
    lm.strategy(dev_mat, entries)  # validates dev_mat and tensor_map together
    if any(isinstance(e, tuple) for e in entries):
        maps = [Dims([e] if isinstance(e, int) else list(e)) for e in entries]
        if len(maps) == 1:
            maps.append(Dims([]))  # MindSpore's rule: a multi-axis map always has >= 2 messages
    else:
        maps = [Dims(list(entries))]
    return ParallelLayouts(
        [Dims(list(dev_mat))], maps, [Dims([])], [Dims([])], int(field), int(opt_step), int(opt_size),
        None if full_shape is None else tuple(int(n) for n in full_shape),
    )


# ----------------------------------------------------------------------------- layout math
def _opt_size(pl: ParallelLayouts, group_size: int) -> int:
    """How many ranks share a slice's optimizer shard (1 = no shard)."""
    size = pl.opt_weight_shard_size
    if size == 0 or (pl.opt_weight_shard_step == 0 and size != -1):
        return 1
    size = group_size if size == -1 else size
    if size < 1 or group_size % size:
        raise ValueError(
            f"The opt_weight_shard_size {pl.opt_weight_shard_size} does not divide the replica group of "
            f"{group_size} ranks (dev_matrix {list(pl.dev_mat)}, tensor_map {list(pl.tmap)})."
        )
    return size


def full_shape_of(pl: ParallelLayouts, slice_shape) -> tuple:
    """The full shape implied by one rank's slice shape (``tensor_shape`` when the file has it)."""
    if pl.tensor_shape is not None:
        return tuple(pl.tensor_shape)
    if pl.field:
        raise ValueError(f"field-split layouts (field={pl.field}, MultiFieldEmbeddingLookup) are not supported.")
    strat = pl.strategy()
    shape = list(slice_shape)
    if len(shape) != len(strat):
        raise ValueError(
            f"A slice of shape {tuple(shape)} does not match the tensor_map {list(pl.tmap)} "
            f"({len(strat)} dimensions)."
        )
    if pl.split_sizes:
        shape[0] = sum(pl.split_sizes[: strat[0]])
        return (shape[0], *(n * s for n, s in zip(shape[1:], strat[1:])))
    group = math.prod(pl.dev_mat) // math.prod(strat)
    if shape:
        shape[0] *= _opt_size(pl, group)
    return tuple(n * s for n, s in zip(shape, strat))


def param_window(pl: ParallelLayouts, full_shape, rank: int) -> lm.Window:
    """``(offsets, sizes)`` of ``rank``'s part of a ``full_shape`` tensor under ``pl``: its slice,
    then its optimizer shard of that slice along dimension 0."""
    if pl.field:
        raise ValueError(f"field-split layouts (field={pl.field}, MultiFieldEmbeddingLookup) are not supported.")
    full_shape = tuple(int(n) for n in full_shape)
    dev_mat, tmap = pl.dev_mat, pl.tmap
    if pl.split_sizes:  # uneven split of dimension 0: sizes and offsets listed per slice
        strat = lm.strategy(dev_mat, tmap)
        coord = lm.slice_coord(dev_mat, tmap, rank)
        rest = lm.slice_shape((strat[0], *full_shape[1:]), dev_mat, tmap)
        sizes_all, offs = pl.split_sizes, pl.split_offsets or _cumsum(pl.split_sizes)
        if len(sizes_all) < strat[0] or len(offs) < strat[0]:
            raise ValueError(
                f"The param_split_shape {list(sizes_all)} should list {strat[0]} dimension-0 sizes "
                f"(the split of dimension 0)."
            )
        offsets = (int(offs[coord[0]]), *(c * n for c, n in zip(coord[1:], rest[1:])))
        sizes = (int(sizes_all[coord[0]]), *rest[1:])
        if offsets[0] + sizes[0] > full_shape[0]:
            raise ValueError(f"The param_split_shape {list(sizes_all)} does not fit dimension 0 of {full_shape}.")
        return offsets, sizes
    win = lm.rank_window(dev_mat, tmap, full_shape, rank)
    group = lm.replica_group(dev_mat, tmap, rank)
    size = _opt_size(pl, len(group))
    if size == 1:
        return win
    return lm.opt_shard_window(win, size, group.index(rank) % size)


def _cumsum(sizes) -> tuple:
    out, total = [], 0
    for s in sizes:
        out.append(total)
        total += int(s)
    return tuple(out)


def device_count(pl: ParallelLayouts) -> int:
    return math.prod(pl.dev_mat)


# ----------------------------------------------------------------------------- from a network
def _opt_shard_of(layout, rank_group: list[int]) -> tuple[int, int]:
    """``(opt_weight_shard_step, opt_weight_shard_size)`` of a MindSpore layout tuple."""
    group_name = layout[5] if len(layout) >= 6 else ""
    if not group_name:
        return 0, 0
    from sporax import communication

    members = communication._groups.get(group_name) if isinstance(group_name, str) else None
    size = len(members) if members else len(rank_group)
    if size <= 1:
        return 0, 0
    step = rank_group[1] - rank_group[0] if len(rank_group) > 1 else 0
    return step, size


def layouts_from_tuple(layout, full_shape) -> ParallelLayouts:
    """A ``ParallelLayouts`` from a ``parameter_layout_dict`` entry and the parameter's full shape."""
    rec = lm.Layout.from_mindspore(tuple(layout))
    step, size = _opt_shard_of(layout, rec.replica_group(0))
    return make_layouts(rec.dev_mat, rec.tensor_map, full_shape, rec.field_size, step, size)


def strategy_of_net(net, only_trainable_params: bool = True) -> dict[str, ParallelLayouts]:
    """The layouts of ``net``'s parameters named in its ``parameter_layout_dict``, in parameter
    order (trainable ones only by default, as MindSpore's ``only_trainable_params``)."""
    layouts = getattr(net, "parameter_layout_dict", None) or {}
    out = {}
    for _, p in net.parameters_and_names():
        if p.name not in layouts or (only_trainable_params and not p.requires_grad):
            continue
        layout = layouts[p.name]
        full = lm.Layout.from_mindspore(tuple(layout)).full_shape if p.sliced and p.init is None else p.shape
        out[p.name] = layouts_from_tuple(layout, full)
    return out


def write_net_strategy(net, op_strategies: dict | None = None) -> str | None:
    """The hook a sharded step calls once it has compiled (``parameter_layout_dict`` filled): write
    the strategy file that ``strategy_ckpt_config["save_file"]`` names, if any; return its path.

    ``op_strategies`` maps op names to their ``shard`` input strategies (tuples of tuples)."""
    from sporax import context

    cfg = context.get_auto_parallel_context("strategy_ckpt_config")
    path = cfg["save_file"]
    if not path:
        return None
    layouts = strategy_of_net(net, cfg["only_trainable_params"])
    save_strategy_file(path, layouts, op_strategies)
    return path


def loaded_strategy() -> tuple[dict, dict] | None:
    """``(layouts, op strategies)`` of ``strategy_ckpt_config["load_file"]``, or None when unset."""
    from sporax import context

    path = context.get_auto_parallel_context("strategy_ckpt_config")["load_file"]
    if not path:
        return None
    return read_strategy_file(path, "set_auto_parallel_context")


# ----------------------------------------------------------------------------- files
def save_strategy_file(path, layouts: dict[str, ParallelLayouts], op_strategies: dict | None = None,
                       current_stage: int = 0) -> None:
    """Write a strategy file atomically: JSON for a ``.json`` name, protobuf otherwise."""
    from sporax.train._ckpt_io import atomic_write

    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(directory):
        raise ValueError(f"The directory of the strategy file '{path}' does not exist.")
    ops = {name: [list(map(int, dims)) for dims in stra] for name, stra in (op_strategies or {}).items()}
    if path.endswith(".json"):
        data = _to_json(layouts, ops, current_stage).encode("utf-8")
    else:
        data = _to_protobuf(layouts, ops, current_stage)
    atomic_write(path, lambda f: f.write(data))


def build_searched_strategy(strategy_filename) -> dict[str, ParallelLayouts]:
    """Read a strategy file (protobuf, or JSON for a ``.json`` name): ``{parameter name: layout}``
    with MindSpore's ``ParallelLayouts`` fields (``layout.dev_matrix[0].dim``, ...).

    >>> strategy = build_searched_strategy("./strategy_train.ckpt")     # doctest: +SKIP
    """
    return read_strategy_file(strategy_filename, "build_searched_strategy")[0]


def read_strategy_file(path, where: str) -> tuple[dict[str, ParallelLayouts], dict]:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"For '{where}', the strategy file name should be a str, but got {type(path).__name__}.")
    path = os.fspath(path)
    if not os.path.isfile(path):
        raise ValueError(f"For '{where}', no such strategy file: '{path}'.")
    with open(path, "rb") as f:
        data = f.read()
    if not data:
        raise ValueError(f"For '{where}', the strategy file '{path}' is empty.")
    try:
        layouts, ops = _from_json(data) if path.endswith(".json") else _from_protobuf(data)
        for name, pl in layouts.items():
            _check_layouts(name, pl)
    except ValueError as e:
        kind = "JSON" if path.endswith(".json") else "protobuf (a name not ending in '.json')"
        raise ValueError(f"For '{where}', the strategy file '{path}' is not a valid {kind} strategy file: {e}") from None
    return layouts, ops


def _check_layouts(name: str, pl: ParallelLayouts) -> None:
    if not pl.dev_matrix or not pl.tensor_map:
        raise ValueError(f"parameter '{name}' has no dev_matrix or tensor_map")
    try:
        lm.strategy(pl.dev_mat, pl.tmap)
    except ValueError as e:
        raise ValueError(f"parameter '{name}': {e}") from None
    if pl.tensor_shape is not None:
        if len(pl.tensor_shape) != len(pl.tmap) or any(n < 0 for n in pl.tensor_shape):
            raise ValueError(f"parameter '{name}': tensor_shape {list(pl.tensor_shape)} does not match its tensor_map")
    if pl.opt_weight_shard_size < -1 or pl.opt_weight_shard_step < 0:
        raise ValueError(f"parameter '{name}': negative optimizer-shard step or size")


# -- JSON
def _to_json(layouts: dict, ops: dict, current_stage: int) -> str:
    import json

    doc: dict = {"current_stage": int(current_stage)}
    if ops:
        doc["parallel_strategy_item"] = {n: {"stage": 0, "parallel_strategy": s} for n, s in ops.items()}
    items = {}
    for name, pl in layouts.items():
        item = {
            "dev_matrix": list(pl.dev_mat),
            "tensor_map": [e if isinstance(e, int) else list(e) for e in pl.tmap],
            "tensor_shape": list(pl.tensor_shape) if pl.tensor_shape is not None else [],
            "field": pl.field,
            "opt_weight_shard_step": pl.opt_weight_shard_step,
            "opt_weight_shard_size": pl.opt_weight_shard_size,
        }
        if pl.split_sizes:
            item["param_split_shape"], item["indices_offset"] = list(pl.split_sizes), list(pl.split_offsets)
        items[name] = item
    doc["parallel_layout_item"] = items
    return json.dumps(doc, indent=2)


def _ints(value, what: str, signed: bool = True) -> list:
    if not isinstance(value, list) or not all(type(v) is int or (signed and type(v) is float and v == int(v))
                                              for v in value):
        raise ValueError(f"{what} should be a list of integers, but got {value!r}")
    return [int(v) for v in value]


def _from_json(data: bytes) -> tuple[dict, dict]:
    from sporax.train._ckpt_format import parse_json

    doc = parse_json(data)
    if not isinstance(doc, dict):
        raise ValueError("the top level is not a JSON object")
    layouts = {}
    items = doc.get("parallel_layout_item", {})
    if not isinstance(items, dict):
        raise ValueError("'parallel_layout_item' is not an object")
    for name, item in items.items():
        if not isinstance(item, dict):
            raise ValueError(f"the layout of '{name}' is not an object")
        try:
            dev = _ints(item["dev_matrix"], "dev_matrix")
            raw_map = item["tensor_map"]
            if not isinstance(raw_map, list):
                raise ValueError(f"tensor_map should be a list, but got {raw_map!r}")
            tmap = [tuple(_ints(e, "tensor_map entry")) if isinstance(e, list) else _ints([e], "tensor_map")[0]
                    for e in raw_map]
            shape = _ints(item.get("tensor_shape", []), "tensor_shape")
            scalars = [item.get(k, 0) for k in ("field", "opt_weight_shard_step", "opt_weight_shard_size")]
            if not all(type(v) is int for v in scalars):
                raise ValueError(f"field and opt_weight_shard_step/size should be integers, but got {scalars}")
        except KeyError as e:
            raise ValueError(f"the layout of '{name}' has no {e.args[0]!r}") from None
        try:
            pl = make_layouts(dev, tmap, shape if shape or not tmap else None, *scalars)
        except ValueError as e:
            raise ValueError(f"the layout of '{name}': {e}") from None
        if "param_split_shape" in item:
            pl.param_split_shape = [Dims(_ints(item["param_split_shape"], "param_split_shape"))]
            pl.indices_offset = [Dims(_ints(item.get("indices_offset", []), "indices_offset"))]
        layouts[name] = pl
    ops = {}
    for name, item in (doc.get("parallel_strategy_item") or {}).items():
        stra = item.get("parallel_strategy") if isinstance(item, dict) else None
        if not isinstance(stra, list):
            raise ValueError(f"the strategy of op '{name}' has no 'parallel_strategy' list")
        ops[name] = [tuple(_ints(s, f"strategy of op '{name}'")) for s in stra]
    return layouts, ops


# -- protobuf
def _key(field: int, wire: int) -> bytes:
    from sporax.train._ckpt_format import _varint

    return _varint((field << 3) | wire)


def _msg(field: int, payload: bytes) -> bytes:
    from sporax.train._ckpt_format import _varint

    return _key(field, 2) + _varint(len(payload)) + payload


def _varints(field: int, values) -> bytes:
    from sporax.train._ckpt_format import _varint

    return b"".join(_key(field, 0) + _varint(int(v)) for v in values)


def _to_protobuf(layouts: dict, ops: dict, current_stage: int) -> bytes:
    out = [_varints(1, [current_stage])]
    for name, stra in ops.items():
        strategys = _varints(1, [0]) + b"".join(_msg(2, _varints(1, dims)) for dims in stra)
        out.append(_msg(2, _msg(1, name.encode("utf-8")) + _msg(2, strategys)))
    for name, pl in layouts.items():
        body = b"".join([
            b"".join(_msg(1, _varints(1, d.dim)) for d in pl.dev_matrix),
            b"".join(_msg(2, _varints(1, t.dim)) for t in pl.tensor_map),
            b"".join(_msg(3, _varints(1, d.dim)) for d in pl.param_split_shape),
            b"".join(_msg(4, _varints(1, d.dim)) for d in pl.indices_offset),
            _varints(5, [pl.field]), _varints(6, [pl.opt_weight_shard_step]), _varints(7, [pl.opt_weight_shard_size]),
        ])
        out.append(_msg(3, _msg(1, name.encode("utf-8")) + _msg(2, body)))
    return b"".join(out)


def _repeated(buf, off: int, n: int, signed: bool) -> list:
    """The ints of field 1 of a ``{repeated int dim = 1;}`` message (packed or not)."""
    from sporax.train._ckpt_format import _fields, _int64, _read_varint

    vals = []
    for fno, wire, a, m in _fields(buf, off, off + n):
        if fno != 1:
            continue
        if wire == 0:
            vals.append(a)
        elif wire == 2:
            p = a
            while p < a + m:
                v, p = _read_varint(buf, p, a + m)
                vals.append(v)
    return [_int64(v) if signed else v for v in vals]


def _int32(v: int) -> int:
    v &= (1 << 64) - 1
    v = v - (1 << 64) if v >= 1 << 63 else v
    if not -(1 << 31) <= v < 1 << 31:
        raise ValueError(f"the value {v} does not fit an int32 field")
    return v


def _text(buf, a: int, n: int) -> str:
    try:
        return bytes(buf[a : a + n]).decode("utf-8")
    except UnicodeDecodeError:
        raise ValueError(f"invalid UTF-8 text at byte {a}") from None


def _from_protobuf(data: bytes) -> tuple[dict, dict]:
    from sporax.train._ckpt_format import _fields, _Malformed

    buf = memoryview(data)
    layouts, ops = {}, {}
    try:
        for fno, wire, a, n in _fields(buf, 0, len(buf)):
            if wire != 2 or fno not in (2, 3):
                continue
            name, body = None, None
            for f2, w2, b, m in _fields(buf, a, a + n):
                if f2 == 1 and w2 == 2:
                    name = _text(buf, b, m)
                elif f2 == 2 and w2 == 2:
                    body = (b, m)
            if name is None or body is None:
                raise ValueError(f"an item at byte {a} has no name or no value")
            if fno == 2:
                stra = [tuple(_repeated(buf, c, k, False)) for f3, w3, c, k in _fields(buf, body[0], sum(body))
                        if f3 == 2 and w3 == 2]
                ops[name] = stra
                continue
            groups: dict[int, list] = {1: [], 2: [], 3: [], 4: []}
            scalars = {5: 0, 6: 0, 7: 0}
            for f3, w3, c, k in _fields(buf, body[0], sum(body)):
                if f3 in groups and w3 == 2:
                    groups[f3].append(Dims(_repeated(buf, c, k, signed=f3 != 1)))
                elif f3 in scalars and w3 == 0:
                    scalars[f3] = _int32(c)
            groups[2] = [Dims([_int32(v) for v in t.dim]) for t in groups[2]]
            layouts[name] = ParallelLayouts(groups[1], groups[2], groups[3], groups[4], scalars[5], scalars[6],
                                            scalars[7], None)
    except _Malformed as e:
        raise ValueError(str(e)) from None
    return layouts, ops
