"""Operator strategies -> layouts (MindSpore's conventions), as pure functions.

A strategy (``prim.shard(in_strategy)``) says into how many parts each dimension of each
input is cut. From it MindSpore derives, per operator, a *device matrix* and one *tensor map*
per input and output (spec §3); :func:`infer` does the same for the operators that
semi-auto parallel supports:

=====================  ================================================================
kind                   device matrix (before repetition) and tensor maps
=====================  ================================================================
``matmul``             ``[*batch, i, j, k]`` for ``x (..., i, j) @ y (..., j, k)`` (``transpose_a``
                       / ``transpose_b`` read the strategies in stored order); the two ``j``
                       must be equal. Output ``(..., i, k)``.
``bias_add``           the input's strategy; the bias must be cut like the channel axis.
``elementwise``        the broadcast output's strategy (equal cuts where shapes agree, 1
                       for a broadcast dimension of size 1).
``unary``/``softmax``  the input's strategy (``softmax``: the ``axis`` dims must not be cut).
``reduce``             the input's strategy; the output drops (``keep_dims``: keeps uncut)
                       the reduced dims.
``gather``             axis not cut: the output's strategy ``[*params[:axis], *indices,
                       *params[axis+1:]]``; axis cut: the params' strategy (indices not cut).
``transpose``          the input's strategy; the output's map is permuted.
=====================  ================================================================

When the strategy uses fewer devices than ``device_num``, the remaining factor (repeated
calculation) is appended as the last device-matrix axis and every tensor-map entry moves up
by one (MindSpore's default; Gather with a cut axis puts it first instead). The layouts are
returned in MindSpore's *standard* form, the one ``parameter_layout_dict`` shows: device-matrix
axes of size 1 removed, tensor-map entries on them set to -1, the others renumbered.

Errors are MindSpore's: a strategy that does not fit the operator's inputs is a RuntimeError
at compile time (MindSpore: "Failure: operator X init failed") naming the operator and the
input; ``shard``'s own argument checks (TypeError/ValueError) are in ``sporax.ops.primitive``.
"""

from __future__ import annotations

import math
import numbers
from typing import NamedTuple

__all__ = ["OpLayout", "infer", "standard_form"]

# Operators whose output strategy may be set (MindSpore: "It does not support to set output
# strategy now" for the others).
OUT_STRATEGY_KINDS = ("matmul",)


class OpLayout(NamedTuple):
    """An operator's layouts in standard form: one device matrix, a tensor map per tensor
    input (in input order) and for the output (None: not constrained)."""

    dev_mat: tuple
    in_maps: tuple
    out_map: tuple | None
    out_dev_mat: tuple | None = None


def _is_int(x) -> bool:
    return isinstance(x, numbers.Integral) and not isinstance(x, bool)


def _fail(op: str, text: str):
    return RuntimeError(f"For {op}, {text}.")


def standard_form(dev_origin, maps) -> tuple[tuple, list]:
    """Drop size-1 device-matrix axes (MindSpore's standard layout): entries on them -> -1,
    the others renumbered. ``maps``: tensor maps (ints, -1 = not cut) on ``dev_origin``."""
    d = len(dev_origin)
    keep = [a for a in range(d) if dev_origin[a] != 1]
    renumber = {d - 1 - a: len(keep) - 1 - pos for pos, a in enumerate(keep)}
    out = [tuple(-1 if k == -1 else renumber.get(k, -1) for k in m) for m in maps]
    dev = tuple(dev_origin[a] for a in keep) or (1,)
    return dev, out


def _repeat(op: str, dev: list, maps: list, device_num: int, right: bool = True) -> tuple[list, list]:
    used = math.prod(dev)
    if used > device_num:
        raise _fail(op, f"the strategy uses {used} devices (device matrix {dev}), more than device_num={device_num}")
    if device_num % used:
        raise _fail(op, f"device_num={device_num} is not divisible by the {used} devices the strategy uses "
                        f"(device matrix {dev})")
    rep = device_num // used
    if rep == 1:
        return dev, maps
    if right:
        return [*dev, rep], [tuple(-1 if k == -1 else k + 1 for k in m) for m in maps]
    return [rep, *dev], maps


def _check_inputs(op: str, strategy: tuple, shapes: list) -> None:
    if len(strategy) != len(shapes):
        raise _fail(op, f"the in_strategy {strategy} has {len(strategy)} entries but the operator has "
                        f"{len(shapes)} tensor inputs (shapes {shapes})")
    for i, (s, shape) in enumerate(zip(strategy, shapes)):
        if len(s) != len(shape):
            raise _fail(op, f"the strategy {s} of input {i} has {len(s)} entries but input {i} has shape "
                            f"{tuple(shape)} ({len(shape)} dimensions)")
        for dim, (cut, n) in enumerate(zip(s, shape)):
            if n % cut:
                raise _fail(op, f"dimension {dim} of input {i} (size {n}, shape {tuple(shape)}) can not be split "
                                f"{cut} ways: {n} is not divisible by {cut}")


def _iota(n: int, offset: int = 0) -> tuple:
    """Tensor map of an n-d tensor on its own strategy: ``[n-1+offset, ..., offset]``."""
    return tuple(range(n - 1 + offset, offset - 1, -1))


def infer(kind: str, name: str, shapes: list, strategy: tuple, device_num: int, *, attrs: dict | None = None,
          out_strategy: tuple | None = None, path: str | None = None) -> OpLayout:
    """The layouts of one operator call (see the module docstring); RuntimeError if the
    strategy does not fit. ``shapes``: the tensor inputs' shapes; ``attrs``: ``transpose_a``,
    ``transpose_b``, ``data_format``, ``axis``, ``keep_dims``, ``perm``; ``path``: where the
    primitive sits in the network (``fc1.matmul``), for the messages."""
    op = f"'{name}'" + (f" (the primitive '{path}')" if path else "")
    attrs = attrs or {}
    strategy = tuple(tuple(int(v) for v in s) for s in strategy)
    _check_inputs(op, strategy, shapes)
    if out_strategy is not None and kind not in OUT_STRATEGY_KINDS:
        raise _fail(op, "it does not support to set an output strategy (out_strategy); only MatMul and "
                        "BatchMatMul do")
    right = True
    if kind == "matmul":
        dev, maps, out = _matmul(op, strategy, shapes, attrs)
    elif kind == "bias_add":
        s0, sb = strategy
        c = len(s0) - 1 if attrs.get("data_format") == "NHWC" else 1
        if sb[0] != s0[c]:
            raise _fail(op, f"the bias (input 1) must be split like the channel dimension {c} of input 0, but the "
                            f"strategy is {strategy}")
        n = len(s0)
        dev, maps, out = list(s0), [_iota(n), (n - 1 - c,)], _iota(n)
    elif kind == "elementwise":
        dev, maps, out = _elementwise(op, strategy, shapes)
    elif kind in ("unary", "softmax"):
        (s,) = strategy
        if kind == "softmax":
            for a in _axes(attrs.get("axis", -1), len(s)):
                if s[a] != 1:
                    raise _fail(op, f"the strategy {strategy} splits dimension {a}, the softmax axis; the "
                                    "strategy of the axis dimension must be 1")
        dev, maps, out = list(s), [_iota(len(s))], _iota(len(s))
    elif kind == "reduce":
        (s,) = strategy
        n = len(s)
        axes = set(_axes(attrs.get("axis", ()), n)) if attrs.get("axis", ()) not in ((), []) else set(range(n))
        full = _iota(n)
        if attrs.get("keep_dims"):
            out = tuple(-1 if i in axes else full[i] for i in range(n))
        else:
            out = tuple(full[i] for i in range(n) if i not in axes)
        dev, maps = list(s), [full]
    elif kind == "gather":
        dev, maps, out, right = _gather(op, strategy, shapes, attrs, device_num)
    elif kind == "transpose":
        (s,) = strategy
        perm = tuple(attrs["perm"])
        full = _iota(len(s))
        dev, maps, out = list(s), [full], tuple(full[p] for p in perm)
    else:
        raise ValueError(f"no sharding rule for operator kind {kind!r}")
    dev, all_maps = _repeat(op, dev, [*maps, out], device_num, right)
    std_dev, std_maps = standard_form(dev, all_maps)
    out_dev, out_map = std_dev, std_maps[-1]
    if out_strategy is not None:
        out_dev, out_map = _own_layout(op, tuple(tuple(int(v) for v in s) for s in out_strategy), device_num)
    return OpLayout(std_dev, tuple(std_maps[:-1]), out_map, out_dev)


def _own_layout(op: str, out_strategy: tuple, device_num: int) -> tuple:
    (s,) = out_strategy
    dev, maps = _repeat(op, list(s), [_iota(len(s))], device_num)
    std_dev, (m,) = standard_form(dev, maps)
    return std_dev, m


def _axes(axis, n: int) -> list:
    axes = axis if isinstance(axis, (tuple, list)) else (axis,)
    return [int(a) % n for a in axes]


def _matmul(op: str, strategy: tuple, shapes: list, attrs: dict):
    sa, sb = (list(s) for s in strategy)
    if len(sa) < 2 or len(sb) < 2:
        raise _fail(op, f"both inputs must be at least 2-D, but got shapes {shapes}")
    ta, tb = bool(attrs.get("transpose_a")), bool(attrs.get("transpose_b"))
    if ta:
        sa[-1], sa[-2] = sa[-2], sa[-1]
    if tb:
        sb[-1], sb[-2] = sb[-2], sb[-1]
    if sa[-1] != sb[-2]:
        raise _fail(op, f"the reduction dimension must be split the same way in both inputs, but the strategy "
                        f"{strategy} splits it {sa[-1]} and {sb[-2]} ways")
    nb = max(len(sa), len(sb)) - 2
    batch = []
    ba, bb = sa[:-2], sb[:-2]
    for t in range(nb):
        ia, ib = t - (nb - len(ba)), t - (nb - len(bb))
        ca = ba[ia] if ia >= 0 else None
        cb = bb[ib] if ib >= 0 else None
        if ca is not None and cb is not None and ca != cb:
            raise _fail(op, f"batch dimension {t} must be split the same way in both inputs, but the strategy is "
                            f"{strategy}")
        batch.append(ca if ca is not None else cb)
    dev = [*batch, sa[-2], sa[-1], sb[-1]]
    d = len(dev)

    def batch_map(rank: int) -> list:
        return [d - 1 - (t + nb - rank) for t in range(rank)]

    ma = [*batch_map(len(ba)), 2, 1]
    mb = [*batch_map(len(bb)), 1, 0]
    if ta:
        ma[-1], ma[-2] = ma[-2], ma[-1]
    if tb:
        mb[-1], mb[-2] = mb[-2], mb[-1]
    out = (*[d - 1 - t for t in range(nb)], 2, 0)
    return dev, [tuple(ma), tuple(mb)], out


def _elementwise(op: str, strategy: tuple, shapes: list):
    r = max(len(s) for s in shapes)
    dev = [None] * r
    for s, shape in zip(strategy, shapes):
        off = r - len(shape)
        for j, (cut, n) in enumerate(zip(s, shape)):
            d = off + j
            if n == 1:  # broadcast (a size-1 dimension can not be split: checked above)
                continue
            if dev[d] is not None and dev[d] != cut:
                raise _fail(op, f"dimension {d} of the output must be split the same way in every input, but the "
                                f"strategy is {strategy}")
            dev[d] = cut
    dev = [1 if c is None else c for c in dev]
    maps = []
    for s, shape in zip(strategy, shapes):
        off = r - len(shape)
        maps.append(tuple(-1 if c == 1 and dev[off + j] != 1 else r - 1 - (off + j) for j, c in enumerate(s)))
    return dev, maps, _iota(r)


def _gather(op: str, strategy: tuple, shapes: list, attrs: dict, device_num: int):
    sp, si = strategy
    axis = int(attrs.get("axis", 0)) % len(sp)
    if sp[axis] == 1:
        dev = [*sp[:axis], *si, *sp[axis + 1:]]
        d = len(dev)
        pm = [d - 1 - i for i in range(axis)] + [-1] + [d - 1 - (axis + len(si) + i) for i in range(len(sp) - axis - 1)]
        im = [d - 1 - (axis + i) for i in range(len(si))]
        return dev, [tuple(pm), tuple(im)], _iota(d), True
    if any(c != 1 for c in si):
        raise _fail(op, f"when the params (input 0) are split along the gather axis {axis}, the indices (input 1) "
                        f"can not be split, but the strategy is {strategy}")
    n = len(sp)
    pm = _iota(n)
    out = (*pm[:axis], *([-1] * len(si)), *pm[axis + 1:])
    used = math.prod(sp)
    return list(sp), [pm, tuple([-1] * len(si))], out, used in (device_num, 1)
