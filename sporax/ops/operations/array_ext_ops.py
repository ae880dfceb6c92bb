"""More array operator classes of ``ops.operations``: slicing, gather/scatter, sorting, padding,
index construction and the in-place Parameter scatters (``ops.StridedSlice``, ``ops.GatherD``,
``ops.TensorScatterAdd``, ``ops.ScatterAdd``, ``ops.Sort``, ``ops.TopK``, ``ops.PadV3``, ...).

Primitives over ``jax.numpy``/``jax.lax`` with MindSpore 2.10's attributes, output dtypes and
exception types (checked against MindSpore in ``tests/ops/test_op_families.py``). The in-place
scatters (``Scatter*``, ``ScatterNd*``, ``IndexAdd``) write their Parameter through
``set_data`` (the write path ``jit``/``grad`` capture) and return its new value. Ops whose output
shape depends on values (``NonZero``, ``MaskedSelect``, ``Unique``, ``ListDiff``) need concrete
input, as with ``jnp.nonzero``: they raise ValueError inside a compiled function.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common import dtype as mstype
from sporax.common._validation import check_bool, check_str_in, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.ops.function import math_func as M
from sporax.ops.operations._prim_util import arr, pyint_tuple, scalar_of, to_dtype, wrap
from sporax.ops.primitive import Primitive, prim_attr_register


def _concrete(a, where: str):
    if isinstance(a, jax.core.Tracer):
        raise ValueError(f"For '{where}', the output shape depends on the input values, so the input must be concrete "
                         "(call it in PYNATIVE_MODE, outside jit).")
    return np.asarray(a)


def _write(param, value, where: str):
    if not isinstance(param, Parameter):
        raise TypeError(f"For '{where}', the 'input_x' should be a Parameter, but got {type(param).__name__}.")
    param.set_data(Tensor._wrap(value.astype(param.dtype.np_dtype)), slice_shape=param.sliced)
    return Tensor._wrap(param._jax())


# ---------------------------------------------------------------------------------- slicing
class Slice(Primitive):
    """``ops.Slice()(input_x, begin, size)``: ``size[i] == -1`` takes the rest of axis ``i``."""

    def __call__(self, input_x, begin, size) -> Tensor:
        a = arr(input_x, "Slice", "input_x")
        b, s = pyint_tuple(begin, "Slice", "begin"), pyint_tuple(size, "Slice", "size")
        if len(b) != a.ndim or len(s) != a.ndim:
            raise ValueError(f"For 'Slice', 'begin' and 'size' should have {a.ndim} elements, but got {b} and {s}.")
        s = tuple(a.shape[i] - b[i] if s[i] == -1 else s[i] for i in range(a.ndim))
        for i in range(a.ndim):
            if b[i] < 0 or s[i] < 0 or b[i] + s[i] > a.shape[i]:
                raise ValueError(f"For 'Slice', the slice [{b[i]}, {b[i] + s[i]}) is out of range for axis {i} of "
                                 f"size {a.shape[i]}.")
        return wrap(jax.lax.slice(a, b, tuple(x + y for x, y in zip(b, s))))


class StridedSlice(Primitive):
    """``ops.StridedSlice(begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0)(x, begin,
    end, strides)``: Python slicing ``x[begin:end:strides]`` per axis, with TensorFlow's bit masks."""

    @prim_attr_register
    def __init__(self, begin_mask: int = 0, end_mask: int = 0, ellipsis_mask: int = 0, new_axis_mask: int = 0,
                 shrink_axis_mask: int = 0) -> None:
        for arg, value in (("begin_mask", begin_mask), ("end_mask", end_mask), ("ellipsis_mask", ellipsis_mask),
                           ("new_axis_mask", new_axis_mask), ("shrink_axis_mask", shrink_axis_mask)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(msg("StridedSlice", arg, "an int >= 0", value))

    def __call__(self, input_x, begin, end, strides) -> Tensor:
        a = arr(input_x, "StridedSlice", "input_x")
        b, e, st = (pyint_tuple(x, "StridedSlice", n) for x, n in ((begin, "begin"), (end, "end"),
                                                                  (strides, "strides")))
        if not len(b) == len(e) == len(st):
            raise ValueError("For 'StridedSlice', 'begin', 'end' and 'strides' should have the same length.")
        if any(s == 0 for s in st):
            raise ValueError("For 'StridedSlice', the 'strides' should not contain 0.")
        index: list = []
        for i in range(len(b)):
            bit = 1 << i
            if self.ellipsis_mask & bit:
                index.append(Ellipsis)
            elif self.new_axis_mask & bit:
                index.append(None)
            elif self.shrink_axis_mask & bit:
                index.append(b[i])
            else:
                index.append(slice(None if self.begin_mask & bit else b[i], None if self.end_mask & bit else e[i],
                                   st[i]))
        return wrap(a[tuple(index)])


class GatherD(Primitive):
    """``ops.GatherD()(x, dim, index)``: ``out[i][j] = x[index[i][j]][j]`` (for ``dim == 0``), and so on."""

    def __call__(self, x, dim, index) -> Tensor:
        a = arr(x, "GatherD", "x")
        idx = arr(index, "GatherD", "index", "i")
        d = int(scalar_of(dim, "GatherD", "dim")) % a.ndim
        return wrap(jnp.take_along_axis(a, idx.astype(jnp.int32), axis=d))


class GatherNd(Primitive):
    """``ops.GatherNd()(input_x, indices)``: the slices of ``input_x`` at the index tuples of ``indices[..., :]``."""

    def __call__(self, input_x, indices) -> Tensor:
        a = arr(input_x, "GatherNd", "input_x")
        idx = arr(indices, "GatherNd", "indices", "i")
        return wrap(a[tuple(jnp.moveaxis(idx, -1, 0))])


_SCATTER = {"add": lambda r, u: r.add(u), "sub": lambda r, u: r.add(-u), "mul": lambda r, u: r.multiply(u),
            "div": lambda r, u: r.divide(u), "max": lambda r, u: r.max(u), "min": lambda r, u: r.min(u),
            "update": lambda r, u: r.set(u)}


def _nd_scatter(a, idx, upd, kind: str, where: str):
    idx = idx.astype(jnp.int32)
    if upd.shape != idx.shape[:-1] + a.shape[idx.shape[-1]:]:
        raise ValueError(f"For '{where}', 'updates' should have shape {idx.shape[:-1] + a.shape[idx.shape[-1]:]}, "
                         f"but got {upd.shape}.")
    return _SCATTER[kind](a.at[tuple(jnp.moveaxis(idx, -1, 0))], upd.astype(a.dtype))


class ScatterNd(Primitive):
    """``ops.ScatterNd()(indices, updates, shape)``: zeros of ``shape`` with ``updates`` added at ``indices``."""

    def __call__(self, indices, updates, shape) -> Tensor:
        idx = arr(indices, "ScatterNd", "indices", "i")
        u = arr(updates, "ScatterNd", "updates")
        return wrap(_nd_scatter(jnp.zeros(pyint_tuple(shape, "ScatterNd", "shape"), u.dtype), idx, u, "add",
                                "ScatterNd"))


def _tensor_scatter(name: str, kind: str):
    def __call__(self, input_x, indices, updates) -> Tensor:
        a = arr(input_x, name, "input_x")
        return wrap(_nd_scatter(a, arr(indices, name, "indices", "i"), arr(updates, name, "updates"), kind, name))

    return type(name, (Primitive,), {"__call__": __call__, "__module__": __name__, "__doc__":
                                     f"``ops.{name}()(input_x, indices, updates)``: a new Tensor, '{kind}' of "
                                     "``updates`` at the index tuples ``indices``."})


def _param_nd_scatter(name: str, kind: str):
    @prim_attr_register
    def __init__(self, use_locking: bool = kind == "update") -> None:
        check_bool(use_locking, "use_locking", name)

    def __call__(self, input_x, indices, updates) -> Tensor:
        a = arr(input_x, name, "input_x")
        new = _nd_scatter(a, arr(indices, name, "indices", "i"), arr(updates, name, "updates"), kind, name)
        return _write(input_x, new, name)

    return type(name, (Primitive,), {"__init__": __init__, "__call__": __call__, "__module__": __name__, "__doc__":
                                     f"``ops.{name}(use_locking)(input_x, indices, updates)``: Parameter "
                                     f"``input_x`` updated in place ('{kind}' at index tuples)."})


def _param_row_scatter(name: str, kind: str):
    @prim_attr_register
    def __init__(self, use_locking: bool = kind == "update") -> None:
        check_bool(use_locking, "use_locking", name)

    def __call__(self, input_x, indices, updates) -> Tensor:
        a = arr(input_x, name, "input_x")
        idx = arr(indices, name, "indices", "i").astype(jnp.int32)
        u = arr(updates, name, "updates")
        if u.shape != idx.shape + a.shape[1:]:
            raise ValueError(f"For '{name}', 'updates' should have shape {idx.shape + a.shape[1:]}, but got "
                             f"{u.shape}.")
        return _write(input_x, _SCATTER[kind](a.at[idx], u.astype(a.dtype)), name)

    return type(name, (Primitive,), {"__init__": __init__, "__call__": __call__, "__module__": __name__, "__doc__":
                                     f"``ops.{name}(use_locking)(input_x, indices, updates)``: rows ``indices`` of "
                                     f"Parameter ``input_x`` updated in place ('{kind}')."})


for _kind in ("add", "sub", "mul", "div", "max", "min", "update"):
    _cap = _kind.capitalize()
    globals()[f"TensorScatter{_cap}"] = _tensor_scatter(f"TensorScatter{_cap}", _kind)
    globals()[f"ScatterNd{_cap}"] = _param_nd_scatter(f"ScatterNd{_cap}", _kind)
    globals()[f"Scatter{_cap}"] = _param_row_scatter(f"Scatter{_cap}", _kind)


class ScatterNonAliasingAdd(Primitive):
    """``ops.ScatterNonAliasingAdd()(input_x, indices, updates)``: ``ScatterNdAdd`` on a Parameter."""

    def __call__(self, input_x, indices, updates) -> Tensor:
        a = arr(input_x, "ScatterNonAliasingAdd", "input_x")
        new = _nd_scatter(a, arr(indices, "ScatterNonAliasingAdd", "indices", "i"),
                          arr(updates, "ScatterNonAliasingAdd", "updates"), "add", "ScatterNonAliasingAdd")
        return _write(input_x, new, "ScatterNonAliasingAdd")


class TensorScatterElements(Primitive):
    """``ops.TensorScatterElements(axis=0, reduction='none')(data, indices, updates)``: element scatter on ``axis``."""

    @prim_attr_register
    def __init__(self, axis: int = 0, reduction: str = "none") -> None:
        check_str_in(reduction, ("none", "add"), "reduction", "TensorScatterElements")

    def __call__(self, data, indices, updates) -> Tensor:
        a = arr(data, "TensorScatterElements", "data")
        idx = arr(indices, "TensorScatterElements", "indices", "i").astype(jnp.int32)
        u = arr(updates, "TensorScatterElements", "updates").astype(a.dtype)
        ax = self.axis % a.ndim
        grid = list(jnp.meshgrid(*[jnp.arange(n) for n in idx.shape], indexing="ij"))
        grid[ax] = idx
        ref = a.at[tuple(grid)]
        return wrap(ref.add(u) if self.reduction == "add" else ref.set(u))


class ScatterAddWithAxis(TensorScatterElements):
    """``ops.ScatterAddWithAxis(axis=0)(input_x, indices, updates)``: element scatter-add on ``axis``."""

    @prim_attr_register
    def __init__(self, axis: int = 0) -> None:
        self.reduction = "add"


class MaskedFill(Primitive):
    """``ops.MaskedFill()(input, mask, value)``: ``value`` where ``mask`` is True."""

    def __call__(self, input, mask, value) -> Tensor:  # noqa: A002
        a = arr(input, "MaskedFill", "input")
        m = arr(mask, "MaskedFill", "mask", "b")
        val = arr(value, "MaskedFill", "value") if isinstance(value, Tensor) else jnp.asarray(value)
        return wrap(jnp.where(m, val.astype(a.dtype), a))


class MaskedSelect(Primitive):
    """``ops.MaskedSelect()(x, mask)``: the 1-D Tensor of the elements where ``mask`` (broadcast) is True."""

    def __call__(self, x, mask) -> Tensor:
        a = arr(x, "MaskedSelect", "x")
        m = _concrete(arr(mask, "MaskedSelect", "mask", "b"), "MaskedSelect")
        shape = jnp.broadcast_shapes(a.shape, m.shape)
        return wrap(jnp.broadcast_to(a, shape)[np.broadcast_to(m, shape)])


class Roll(Primitive):
    """``ops.Roll(shifts, dims=None)(input_x)``: elements shifted circularly along ``dims``."""

    @prim_attr_register
    def __init__(self, shifts, dims=None) -> None:
        pyint_tuple(shifts, "Roll", "shifts")

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "Roll", "input_x")
        shifts = pyint_tuple(self.shifts, "Roll", "shifts")
        if self.dims is None:
            return wrap(jnp.roll(a.reshape(-1), shifts[0]).reshape(a.shape))
        dims = pyint_tuple(self.dims, "Roll", "dims")
        if len(dims) != len(shifts):
            raise ValueError("For 'Roll', 'shifts' and 'dims' should have the same length.")
        return wrap(jnp.roll(a, shifts, dims))


class ReverseV2(Primitive):
    """``ops.ReverseV2(axis)(input_x)``: reversed along the axes in ``axis``."""

    @prim_attr_register
    def __init__(self, axis) -> None:
        pyint_tuple(axis, "ReverseV2", "axis")

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "ReverseV2", "input_x")
        return wrap(jnp.flip(a, tuple(x % a.ndim for x in pyint_tuple(self.axis, "ReverseV2", "axis"))))


class Sort(Primitive):
    """``ops.Sort(axis=-1, descending=False)(x)``: ``(values, int32 indices)``, stable."""

    @prim_attr_register
    def __init__(self, axis: int = -1, descending: bool = False) -> None:
        check_bool(descending, "descending", "Sort")

    def __call__(self, x) -> tuple:
        a = arr(x, "Sort", "x", "fi")
        idx = jnp.argsort(a, axis=self.axis, stable=True, descending=self.descending)
        return wrap(jnp.take_along_axis(a, idx, axis=self.axis)), wrap(idx.astype(jnp.int32))


class TopK(Primitive):
    """``ops.TopK(sorted=True)(input_x, k)``: the ``k`` largest along the last axis and their int32 indices."""

    @prim_attr_register
    def __init__(self, sorted: bool = True) -> None:  # noqa: A002
        check_bool(sorted, "sorted", "TopK")

    def __call__(self, input_x, k) -> tuple:
        a = arr(input_x, "TopK", "input_x", "fi")
        k = int(scalar_of(k, "TopK", "k"))
        if not 0 <= k <= a.shape[-1]:
            raise ValueError(f"For 'TopK', the 'k' should be in [0, {a.shape[-1]}], but got {k}.")
        vals, idx = jax.lax.top_k(a, k)
        return wrap(vals), wrap(idx.astype(jnp.int32))


class _Band(Primitive):
    _fn = staticmethod(jnp.tril)

    @prim_attr_register
    def __init__(self, diagonal: int = 0) -> None:
        if isinstance(diagonal, bool) or not isinstance(diagonal, int):
            raise TypeError(msg(self.name, "diagonal", "an int", diagonal))

    def __call__(self, x) -> Tensor:
        a = arr(x, self.name, "x")
        if a.ndim < 2:
            raise ValueError(f"For '{self.name}', the 'x' should be at least 2-D, but got {a.ndim}-D.")
        return wrap(self._fn(a, self.diagonal))


class Tril(_Band):
    """``ops.Tril(diagonal=0)(x)``: the lower triangle of the last two axes (the rest zeroed)."""


class Triu(_Band):
    """``ops.Triu(diagonal=0)(x)``: the upper triangle of the last two axes (the rest zeroed)."""

    _fn = staticmethod(jnp.triu)


# ---------------------------------------------------------------------------------- construction
class Range(Primitive):
    """``ops.Range(maxlen=1000000)(start, limit, delta)``: int Tensors give int64, float ones float32."""

    @prim_attr_register
    def __init__(self, maxlen: int = 1000000) -> None:
        pass

    def __call__(self, start, limit, delta) -> Tensor:
        vals = [np.asarray(_concrete(arr(t, "Range", n), "Range")).item()
                for t, n in ((start, "start"), (limit, "limit"), (delta, "delta"))]
        if vals[2] == 0:
            raise ValueError("For 'Range', the 'delta' can not be 0.")
        dt = jnp.int64 if all(isinstance(v, int) for v in vals) else arr(start, "Range", "start").dtype
        out = np.arange(*vals)
        if out.size > self.maxlen:
            raise ValueError(f"For 'Range', the output has {out.size} elements, more than 'maxlen' {self.maxlen}.")
        return wrap(jnp.asarray(out, dt))


class LinSpace(Primitive):
    """``ops.LinSpace()(start, stop, num)``: ``num`` evenly spaced values, both ends included."""

    def __call__(self, start, stop, num) -> Tensor:
        s, e = arr(start, "LinSpace", "start", "f"), arr(stop, "LinSpace", "stop", "f")
        n = int(scalar_of(num, "LinSpace", "num"))
        return wrap(jnp.linspace(s, e, n).astype(s.dtype))


class LogSpace(Primitive):
    """``ops.LogSpace(steps=10, base=10, dtype=float32)(start, end)``: ``base ** linspace(start, end, steps)``."""

    @prim_attr_register
    def __init__(self, steps: int = 10, base: int = 10, dtype=mstype.float32) -> None:
        pass

    def __call__(self, start, end) -> Tensor:
        s, e = arr(start, "LogSpace", "start", "f"), arr(end, "LogSpace", "end", "f")
        return wrap(jnp.logspace(s, e, self.steps, base=self.base).astype(to_dtype(self.dtype, "LogSpace")))


class Meshgrid(Primitive):
    """``ops.Meshgrid(indexing='xy')(inputs)``: coordinate grids from a tuple of 1-D Tensors."""

    @prim_attr_register
    def __init__(self, indexing: str = "xy") -> None:
        check_str_in(indexing, ("xy", "ij"), "indexing", "Meshgrid")

    def __call__(self, inputs) -> tuple:
        arrays = [arr(t, "Meshgrid", "inputs") for t in inputs]
        return tuple(wrap(g) for g in jnp.meshgrid(*arrays, indexing=self.indexing))


class SplitV(Primitive):
    """``ops.SplitV(size_splits, split_dim, num_split)(input_x)``: pieces of the given sizes (one may be -1)."""

    @prim_attr_register
    def __init__(self, size_splits, split_dim: int, num_split: int) -> None:
        if len(pyint_tuple(size_splits, "SplitV", "size_splits")) != num_split:
            raise ValueError("For 'SplitV', len(size_splits) should equal num_split.")

    def __call__(self, input_x) -> tuple:
        a = arr(input_x, "SplitV", "input_x")
        ax = self.split_dim % a.ndim
        sizes = list(self.size_splits)
        if sizes.count(-1) > 1:
            raise ValueError("For 'SplitV', at most one of 'size_splits' can be -1.")
        if -1 in sizes:
            sizes[sizes.index(-1)] = a.shape[ax] - (sum(sizes) + 1)
        if sum(sizes) != a.shape[ax]:
            raise ValueError(f"For 'SplitV', 'size_splits' should sum to {a.shape[ax]}, but got {sizes}.")
        return tuple(wrap(p) for p in jnp.split(a, np.cumsum(sizes)[:-1].tolist(), axis=ax))


class Pad(Primitive):
    """``ops.Pad(paddings)(input_x)``: zero padding, ``paddings[i] = (before, after)`` for axis ``i``."""

    @prim_attr_register
    def __init__(self, paddings) -> None:
        if not isinstance(paddings, (tuple, list)) or not all(isinstance(p, (tuple, list)) and len(p) == 2
                                                              for p in paddings):
            raise TypeError(msg("Pad", "paddings", "a tuple of (before, after) pairs", paddings))

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "Pad", "input_x")
        if len(self.paddings) != a.ndim:
            raise ValueError(f"For 'Pad', the 'paddings' should have {a.ndim} pairs, but got {len(self.paddings)}.")
        return wrap(jnp.pad(a, [tuple(p) for p in self.paddings]))


class MirrorPad(Primitive):
    """``ops.MirrorPad(mode='REFLECT')(input_x, paddings)``: reflect (edge excluded) or symmetric (included)."""

    @prim_attr_register
    def __init__(self, mode: str = "REFLECT") -> None:
        check_str_in(mode, ("REFLECT", "SYMMETRIC"), "mode", "MirrorPad")

    def __call__(self, input_x, paddings) -> Tensor:
        a = arr(input_x, "MirrorPad", "input_x")
        pads = np.asarray(_concrete(arr(paddings, "MirrorPad", "paddings", "i"), "MirrorPad")).tolist()
        return wrap(jnp.pad(a, pads, mode=self.mode.lower()))


class PadV3(Primitive):
    """``ops.PadV3(mode='constant', paddings_contiguous=True)(x, paddings, value=None)``: ``paddings`` pairs
    run from the last axis backwards, as in PyTorch's ``F.pad``; modes constant, reflect, edge, circular."""

    @prim_attr_register
    def __init__(self, mode: str = "constant", paddings_contiguous: bool = True) -> None:
        check_str_in(mode, ("constant", "reflect", "edge", "circular"), "mode", "PadV3")
        check_bool(paddings_contiguous, "paddings_contiguous", "PadV3")

    def __call__(self, x, paddings, value=None) -> Tensor:
        a = arr(x, "PadV3", "x")
        flat = np.asarray(_concrete(arr(paddings, "PadV3", "paddings", "i"), "PadV3")).reshape(-1).tolist()
        if not self.paddings_contiguous:
            half = len(flat) // 2
            flat = [v for pair in zip(flat[:half], flat[half:]) for v in pair]
        pairs = [(0, 0)] * a.ndim
        for i in range(len(flat) // 2):
            pairs[a.ndim - 1 - i] = (flat[2 * i], flat[2 * i + 1])
        if self.mode == "constant":
            fill = 0 if value is None else scalar_of(value, "PadV3", "value")
            return wrap(jnp.pad(a, pairs, constant_values=jnp.asarray(fill, a.dtype)))
        mode = {"reflect": "reflect", "edge": "edge", "circular": "wrap"}[self.mode]
        return wrap(jnp.pad(a, pairs, mode=mode))


class Diag(Primitive):
    """``ops.Diag()(input_x)``: a Tensor of shape ``x.shape + x.shape`` with ``x`` on its diagonal."""

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "Diag", "input_x")
        n = a.size
        return wrap(jnp.diag(a.reshape(-1)).reshape(a.shape + a.shape) if n else a)


class DiagPart(Primitive):
    """``ops.DiagPart()(input_x)``: the inverse of ``Diag``: ``x`` of shape ``s + s`` gives shape ``s``."""

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "DiagPart", "input_x")
        if a.ndim % 2 or a.shape[: a.ndim // 2] != a.shape[a.ndim // 2:]:
            raise ValueError(f"For 'DiagPart', the shape of 'input_x' should be s + s, but got {a.shape}.")
        half = a.shape[: a.ndim // 2]
        n = int(np.prod(half))
        return wrap(jnp.diagonal(a.reshape(n, n)).reshape(half))


class MatrixBandPart(Primitive):
    """``ops.MatrixBandPart()(x, lower, upper)``: keep ``lower`` sub- and ``upper`` super-diagonals (-1: all)."""

    def __call__(self, x, lower, upper) -> Tensor:
        a = arr(x, "MatrixBandPart", "x")
        lo, hi = int(scalar_of(lower, "MatrixBandPart", "lower")), int(scalar_of(upper, "MatrixBandPart", "upper"))
        m, n = a.shape[-2:]
        i, j = jnp.arange(m)[:, None], jnp.arange(n)[None, :]
        keep = ((lo < 0) | (i - j <= lo)) & ((hi < 0) | (j - i <= hi))
        return wrap(jnp.where(keep, a, jnp.zeros((), a.dtype)))


class NonZero(Primitive):
    """``ops.NonZero()(x)``: the int64 ``(count, ndim)`` coordinates of the non-zero elements."""

    def __call__(self, x) -> Tensor:
        a = _concrete(arr(x, "NonZero", "x"), "NonZero")
        return wrap(jnp.asarray(np.argwhere(a), jnp.int64))


class InvertPermutation(Primitive):
    """``ops.InvertPermutation()(input_x)``: the inverse permutation of a tuple of ints (a tuple back)."""

    def __call__(self, input_x) -> tuple:
        perm = pyint_tuple(input_x, "InvertPermutation", "input_x")
        if sorted(perm) != list(range(len(perm))):
            raise ValueError(f"For 'InvertPermutation', the 'input_x' should be a permutation, but got {perm}.")
        out = [0] * len(perm)
        for i, p in enumerate(perm):
            out[p] = i
        return tuple(out)


class Expand(Primitive):
    """``ops.Expand()(input_x, shape)``: broadcast to ``shape`` (an int Tensor; -1 keeps a dimension)."""

    def __call__(self, input_x, shape) -> Tensor:
        a = arr(input_x, "Expand", "input_x")
        s = [int(v) for v in np.asarray(_concrete(arr(shape, "Expand", "shape", "i"), "Expand")).reshape(-1)]
        lead = len(s) - a.ndim
        s = [a.shape[i - lead] if v == -1 else v for i, v in enumerate(s)]
        return wrap(jnp.broadcast_to(a, tuple(s)))


class FillV2(Primitive):
    """``ops.FillV2()(shape, value)``: a Tensor of ``shape`` filled with the 0-d Tensor ``value`` (its dtype)."""

    def __call__(self, shape, value) -> Tensor:
        v = arr(value, "FillV2", "value")
        s = pyint_tuple(shape, "FillV2", "shape") if not isinstance(shape, Tensor) else tuple(
            int(i) for i in np.asarray(_concrete(arr(shape, "FillV2", "shape", "i"), "FillV2")).reshape(-1))
        return wrap(jnp.full(s, v.reshape(()), v.dtype))


class SearchSorted(Primitive):
    """``ops.SearchSorted(dtype=int64, right=False)(sorted_sequence, values)``: insertion indices per last axis."""

    @prim_attr_register
    def __init__(self, dtype=mstype.int64, right: bool = False) -> None:
        check_bool(right, "right", "SearchSorted")
        if dtype not in (mstype.int32, mstype.int64):
            raise TypeError(msg("SearchSorted", "dtype", "mindspore.int32 or mindspore.int64", dtype))

    def __call__(self, sorted_sequence, values) -> Tensor:
        s = arr(sorted_sequence, "SearchSorted", "sorted_sequence")
        v = arr(values, "SearchSorted", "values")
        side = "right" if self.right else "left"
        if s.ndim == 1:
            out = jnp.searchsorted(s, v, side=side)
        else:
            out = jax.vmap(lambda a, b: jnp.searchsorted(a, b, side=side))(s.reshape(-1, s.shape[-1]),
                                                                           v.reshape(-1, v.shape[-1])).reshape(v.shape)
        return wrap(out.astype(self.dtype.np_dtype))


class Bucketize(Primitive):
    """``ops.Bucketize(boundaries)(input)``: the int32 bucket index of each element (``boundaries`` sorted)."""

    @prim_attr_register
    def __init__(self, boundaries) -> None:
        if not isinstance(boundaries, (list, tuple)):
            raise TypeError(msg("Bucketize", "boundaries", "a list of floats", boundaries))

    def __call__(self, input) -> Tensor:  # noqa: A002
        a = arr(input, "Bucketize", "input")
        return wrap(jnp.searchsorted(jnp.asarray(self.boundaries, jnp.float32), a, side="right").astype(jnp.int32))


class _Bound(Primitive):
    _side = "left"

    @prim_attr_register
    def __init__(self, out_type=mstype.int32) -> None:
        if out_type not in (mstype.int32, mstype.int64):
            raise TypeError(msg(self.name, "out_type", "mindspore.int32 or mindspore.int64", out_type))

    def __call__(self, sorted_x, values) -> Tensor:
        s, v = arr(sorted_x, self.name, "sorted_x"), arr(values, self.name, "values")
        if s.ndim != 2 or v.ndim != 2 or s.shape[0] != v.shape[0]:
            raise ValueError(f"For '{self.name}', 'sorted_x' and 'values' should be 2-D with one number of rows.")
        out = jax.vmap(lambda a, b: jnp.searchsorted(a, b, side=self._side))(s, v)
        return wrap(out.astype(self.out_type.np_dtype))


class LowerBound(_Bound):
    """``ops.LowerBound(out_type=int32)(sorted_x, values)``: per row, the first index with ``sorted_x >= value``."""


class UpperBound(_Bound):
    """``ops.UpperBound(out_type=int32)(sorted_x, values)``: per row, the first index with ``sorted_x > value``."""

    _side = "right"


class _Inplace(Primitive):
    _kind = "add"

    @prim_attr_register
    def __init__(self, indices) -> None:
        pyint_tuple(indices, self.name, "indices")

    def __call__(self, x, v) -> Tensor:
        a, u = arr(x, self.name, "x"), arr(v, self.name, "v")
        idx = jnp.asarray(pyint_tuple(self.indices, self.name, "indices"), jnp.int32)
        if u.shape != (idx.shape[0],) + a.shape[1:]:
            raise ValueError(f"For '{self.name}', 'v' should have shape {(idx.shape[0],) + a.shape[1:]}, but got "
                             f"{u.shape}.")
        return wrap(_SCATTER[self._kind](a.at[idx], u.astype(a.dtype)))


class InplaceAdd(_Inplace):
    """``ops.InplaceAdd(indices)(x, v)``: rows ``indices`` of ``x`` plus ``v`` (a new Tensor)."""


class InplaceSub(_Inplace):
    """``ops.InplaceSub(indices)(x, v)``: rows ``indices`` of ``x`` minus ``v`` (a new Tensor)."""

    _kind = "sub"


class InplaceUpdate(_Inplace):
    """``ops.InplaceUpdate(indices)(x, v)``: rows ``indices`` of ``x`` replaced by ``v`` (a new Tensor)."""

    _kind = "update"


class InplaceUpdateV2(Primitive):
    """``ops.InplaceUpdateV2()(x, indices, v)``: ``InplaceUpdate`` with the row indices as an input."""

    def __call__(self, x, indices, v) -> Tensor:
        a, u = arr(x, "InplaceUpdateV2", "x"), arr(v, "InplaceUpdateV2", "v")
        idx = arr(indices, "InplaceUpdateV2", "indices", "i") if isinstance(indices, Tensor) else jnp.asarray(
            pyint_tuple(indices, "InplaceUpdateV2", "indices"))
        return wrap(a.at[idx.reshape(-1).astype(jnp.int32)].set(u.astype(a.dtype)))


class IndexAdd(Primitive):
    """``ops.IndexAdd(axis, use_lock=True, check_index_bound=True)(input_x, indices, y)``: Parameter ``input_x``
    with ``y`` added at ``indices`` along ``axis``, in place."""

    @prim_attr_register
    def __init__(self, axis: int, use_lock: bool = True, check_index_bound: bool = True) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(msg("IndexAdd", "axis", "an int", axis))

    def __call__(self, input_x, indices, y) -> Tensor:
        a = arr(input_x, "IndexAdd", "input_x")
        idx = arr(indices, "IndexAdd", "indices", "i").astype(jnp.int32)
        u = arr(y, "IndexAdd", "y")
        ax = self.axis % a.ndim
        moved = jnp.moveaxis(a, ax, 0).at[idx].add(jnp.moveaxis(u, ax, 0).astype(a.dtype))
        return _write(input_x, jnp.moveaxis(moved, 0, ax), "IndexAdd")


class IndexFill(Primitive):
    """``ops.IndexFill()(x, dim, index, value)``: ``value`` at positions ``index`` along ``dim`` (a new Tensor)."""

    def __call__(self, x, dim, index, value) -> Tensor:
        a = arr(x, "IndexFill", "x")
        d = int(scalar_of(dim, "IndexFill", "dim")) % a.ndim
        idx = arr(index, "IndexFill", "index", "i").reshape(-1).astype(jnp.int32)
        val = jnp.asarray(arr(value, "IndexFill", "value") if isinstance(value, Tensor) else value, a.dtype)
        moved = jnp.moveaxis(a, d, 0).at[idx].set(val)
        return wrap(jnp.moveaxis(moved, 0, d))


class DepthToSpace(Primitive):
    """``ops.DepthToSpace(block_size)(x)``: NCHW ``(N, C*b*b, H, W)`` to ``(N, C, H*b, W*b)``."""

    @prim_attr_register
    def __init__(self, block_size: int) -> None:
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
            raise ValueError(msg("DepthToSpace", "block_size", "an int >= 2", block_size))

    def __call__(self, x) -> Tensor:
        a = arr(x, "DepthToSpace", "x")
        b = self.block_size
        n, c, h, w = a.shape
        if c % (b * b):
            raise ValueError(f"For 'DepthToSpace', the channels ({c}) should be divisible by block_size**2.")
        y = a.reshape(n, b, b, c // (b * b), h, w).transpose(0, 3, 4, 1, 5, 2)
        return wrap(y.reshape(n, c // (b * b), h * b, w * b))


class SpaceToDepth(Primitive):
    """``ops.SpaceToDepth(block_size)(x)``: NCHW ``(N, C, H, W)`` to ``(N, C*b*b, H/b, W/b)``."""

    @prim_attr_register
    def __init__(self, block_size: int) -> None:
        if isinstance(block_size, bool) or not isinstance(block_size, int) or block_size < 2:
            raise ValueError(msg("SpaceToDepth", "block_size", "an int >= 2", block_size))

    def __call__(self, x) -> Tensor:
        a = arr(x, "SpaceToDepth", "x")
        b = self.block_size
        n, c, h, w = a.shape
        if h % b or w % b:
            raise ValueError(f"For 'SpaceToDepth', H and W ({h}, {w}) should be divisible by block_size {b}.")
        y = a.reshape(n, c, h // b, b, w // b, b).transpose(0, 3, 5, 1, 2, 4)
        return wrap(y.reshape(n, c * b * b, h // b, w // b))


class ReverseSequence(Primitive):
    """``ops.ReverseSequence(seq_dim, batch_dim=0)(x, seq_lengths)``: the first ``seq_lengths[i]`` elements of
    batch ``i`` reversed along ``seq_dim``."""

    @prim_attr_register
    def __init__(self, seq_dim: int, batch_dim: int = 0) -> None:
        pass

    def __call__(self, x, seq_lengths) -> Tensor:
        a = arr(x, "ReverseSequence", "x")
        lens = arr(seq_lengths, "ReverseSequence", "seq_lengths", "i")
        sd, bd = self.seq_dim % a.ndim, self.batch_dim % a.ndim
        n = a.shape[sd]
        pos = jnp.arange(n)
        shape = [1] * a.ndim
        shape[sd] = n
        lshape = [1] * a.ndim
        lshape[bd] = a.shape[bd]
        p = pos.reshape(shape)
        ln = lens.reshape(lshape)
        src = jnp.where(p < ln, ln - 1 - p, p)
        return wrap(jnp.take_along_axis(a, jnp.broadcast_to(src, a.shape).astype(jnp.int32), axis=sd))


class ChannelShuffle(Primitive):
    """``ops.ChannelShuffle(group)(x)``: channels ``(g, C/g)`` transposed to ``(C/g, g)``."""

    @prim_attr_register
    def __init__(self, group: int) -> None:
        if isinstance(group, bool) or not isinstance(group, int) or group < 1:
            raise ValueError(msg("ChannelShuffle", "group", "an int >= 1", group))

    def __call__(self, x) -> Tensor:
        a = arr(x, "ChannelShuffle", "x")
        n, c = a.shape[:2]
        if c % self.group:
            raise ValueError(f"For 'ChannelShuffle', the channels ({c}) should be divisible by group {self.group}.")
        y = a.reshape((n, self.group, c // self.group) + a.shape[2:])
        return wrap(jnp.swapaxes(y, 1, 2).reshape(a.shape))


class _TriIndices(Primitive):
    _lower = True

    @prim_attr_register
    def __init__(self, row: int, col: int, offset: int = 0, dtype=mstype.int32) -> None:
        if dtype not in (mstype.int32, mstype.int64):
            raise TypeError(msg(self.name, "dtype", "mindspore.int32 or mindspore.int64", dtype))

    def __call__(self) -> Tensor:
        fn = np.tril_indices if self._lower else np.triu_indices
        r, c = fn(self.row, self.offset, self.col)
        return wrap(jnp.asarray(np.stack([r, c]), self.dtype.np_dtype))


class TrilIndices(_TriIndices):
    """``ops.TrilIndices(row, col, offset=0, dtype=int32)()``: the ``(2, n)`` coordinates of the lower triangle."""


class TriuIndices(_TriIndices):
    """``ops.TriuIndices(row, col, offset=0, dtype=int32)()``: the ``(2, n)`` coordinates of the upper triangle."""

    _lower = False


class StopGradient(Primitive):
    """``ops.StopGradient()(x)``: ``x``, with no gradient flowing back through it."""

    def __call__(self, x) -> Tensor:
        return wrap(jax.lax.stop_gradient(arr(x, "StopGradient", "x")))


class ParallelConcat(Primitive):
    """``ops.ParallelConcat()(values)``: concatenation along axis 0 of Tensors whose first dimension is 1."""

    def __call__(self, values) -> Tensor:
        arrays = [arr(t, "ParallelConcat", "values") for t in values]
        if any(a.shape[0] != 1 for a in arrays):
            raise ValueError("For 'ParallelConcat', the first dimension of every input should be 1.")
        return wrap(jnp.concatenate(arrays, axis=0))


class Unique(Primitive):
    """``ops.Unique()(input_x)``: ``(values in first-seen order, index of each element in them)``, int32 indices."""

    def __call__(self, input_x) -> tuple:
        a = _concrete(arr(input_x, "Unique", "input_x"), "Unique")
        vals, first, inv = np.unique(a.reshape(-1), return_index=True, return_inverse=True)
        order = np.argsort(first, kind="stable")
        rank = np.empty_like(order)
        rank[order] = np.arange(order.size)
        return wrap(jnp.asarray(vals[order], a.dtype)), wrap(jnp.asarray(rank[inv], jnp.int32))


class Bincount(Primitive):
    """``ops.Bincount()(array, size, weights)``: per value in ``[0, size)``, the sum of ``weights`` (weights' dtype)."""

    def __call__(self, array, size, weights) -> Tensor:
        a = arr(array, "Bincount", "array", "i")
        n = int(scalar_of(size, "Bincount", "size"))
        w = arr(weights, "Bincount", "weights")
        if n < 0:
            raise ValueError("For 'Bincount', the 'size' should be >= 0.")
        return wrap(jnp.zeros(n, w.dtype).at[a.reshape(-1)].add(w.reshape(-1), mode="drop"))


class HistogramFixedWidth(Primitive):
    """``ops.HistogramFixedWidth(nbins, dtype='int32')(x, range)``: counts in ``nbins`` equal bins of ``range``
    (values outside go to the first/last bin)."""

    @prim_attr_register
    def __init__(self, nbins: int, dtype: str = "int32") -> None:
        if isinstance(nbins, bool) or not isinstance(nbins, int) or nbins < 1:
            raise ValueError(msg("HistogramFixedWidth", "nbins", "an int >= 1", nbins))

    def __call__(self, x, range) -> Tensor:  # noqa: A002
        a = arr(x, "HistogramFixedWidth", "x")
        r = arr(range, "HistogramFixedWidth", "range")
        lo, hi = r[0], r[1]
        idx = jnp.clip(jnp.floor((a - lo) / (hi - lo) * self.nbins), 0, self.nbins - 1).astype(jnp.int32)
        return wrap(jnp.zeros(self.nbins, jnp.int32).at[idx.reshape(-1)].add(1))


class Histogram(Primitive):
    """``ops.Histogram(bins=100, min=0.0, max=0.0)(x)``: counts (float32) in ``bins`` equal bins of ``[min, max]``
    (the data's range when both are 0); values outside are ignored."""

    @prim_attr_register
    def __init__(self, bins: int = 100, min: float = 0.0, max: float = 0.0) -> None:  # noqa: A002
        if self.min > self.max:
            raise ValueError("For 'Histogram', the 'min' should not be greater than 'max'.")

    def __call__(self, x) -> Tensor:
        a = arr(x, "Histogram", "x", "fi").astype(jnp.float32)
        lo, hi = (jnp.min(a), jnp.max(a)) if self.min == self.max == 0.0 else (self.min, self.max)
        counts, _ = jnp.histogram(a.reshape(-1), bins=self.bins, range=(lo, hi))
        return wrap(counts.astype(jnp.float32))


class NthElement(Primitive):
    """``ops.NthElement(reverse=False)(input, n)``: the ``n``-th smallest (largest with ``reverse``) of the last axis."""

    @prim_attr_register
    def __init__(self, reverse: bool = False) -> None:
        check_bool(reverse, "reverse", "NthElement")

    def __call__(self, input, n) -> Tensor:  # noqa: A002
        a = arr(input, "NthElement", "input", "fi")
        k = int(scalar_of(n, "NthElement", "n"))
        if not 0 <= k < a.shape[-1]:
            raise ValueError(f"For 'NthElement', the 'n' should be in [0, {a.shape[-1]}), but got {k}.")
        s = jnp.sort(a, axis=-1)
        return wrap(s[..., -1 - k] if self.reverse else s[..., k])


class ListDiff(Primitive):
    """``ops.ListDiff(out_idx=int32)(x, y)``: the values of ``x`` not in ``y`` and their positions in ``x``."""

    @prim_attr_register
    def __init__(self, out_idx=mstype.int32) -> None:
        pass

    def __call__(self, x, y) -> tuple:
        a = _concrete(arr(x, "ListDiff", "x"), "ListDiff")
        b = _concrete(arr(y, "ListDiff", "y"), "ListDiff")
        keep = ~np.isin(a, b)
        return wrap(jnp.asarray(a[keep], a.dtype)), wrap(jnp.asarray(np.nonzero(keep)[0],
                                                                     self.out_idx.np_dtype))


class Padding(Primitive):
    """``ops.Padding(pad_dim_size=8)(x)``: a last axis of size 1 padded with zeros to ``pad_dim_size``."""

    @prim_attr_register
    def __init__(self, pad_dim_size: int = 8) -> None:
        if isinstance(pad_dim_size, bool) or not isinstance(pad_dim_size, int) or pad_dim_size < 1:
            raise ValueError(msg("Padding", "pad_dim_size", "an int >= 1", pad_dim_size))

    def __call__(self, x) -> Tensor:
        a = arr(x, "Padding", "x")
        if a.shape[-1] != 1:
            raise ValueError(f"For 'Padding', the last dimension of 'x' should be 1, but got {a.shape[-1]}.")
        return wrap(jnp.pad(a, [(0, 0)] * (a.ndim - 1) + [(0, self.pad_dim_size - 1)]))


class IdentityN(Primitive):
    """``ops.IdentityN()(x)``: the tuple of Tensors ``x`` itself."""

    def __call__(self, x) -> tuple:
        if not isinstance(x, (tuple, list)) or not all(isinstance(t, Tensor) for t in x):
            raise TypeError(msg("IdentityN", "x", "a tuple of Tensors", type(x).__name__))
        return tuple(x)


class Cross(Primitive):
    """``ops.Cross(dim=-65530)(x1, x2)``: the 3-D cross product along ``dim`` (default: the first axis of size 3)."""

    @prim_attr_register
    def __init__(self, dim: int = -65530) -> None:
        pass

    def __call__(self, x1, x2) -> Tensor:
        a, b = arr(x1, "Cross", "x1"), arr(x2, "Cross", "x2")
        dim = self.dim
        if dim == -65530:
            dim = next((i for i, n in enumerate(a.shape) if n == 3), None)
            if dim is None:
                raise ValueError("For 'Cross', no dimension of size 3 in 'x1'.")
        if a.shape[dim] != 3:
            raise ValueError(f"For 'Cross', the size of dimension {dim} should be 3, but got {a.shape[dim]}.")
        return wrap(jnp.cross(a, b, axis=dim))


class Einsum(Primitive):
    """``ops.Einsum(equation)(x)``: ``jnp.einsum(equation, *x)`` for a tuple of float Tensors."""

    @prim_attr_register
    def __init__(self, equation: str) -> None:
        if not isinstance(equation, str):
            raise TypeError(msg("Einsum", "equation", "a str", equation))

    def __call__(self, x) -> Tensor:
        arrays = [arr(t, "Einsum", "x", "f") for t in x]
        return wrap(jnp.einsum(self.equation, *arrays))


__all__ = ["Slice", "StridedSlice", "GatherD", "GatherNd", "ScatterNd", "ScatterNonAliasingAdd",
           "TensorScatterElements", "ScatterAddWithAxis", "MaskedFill", "MaskedSelect", "Roll", "ReverseV2", "Sort",
           "TopK", "Tril", "Triu", "Range", "LinSpace", "LogSpace", "Meshgrid", "SplitV", "Pad", "MirrorPad", "PadV3",
           "Diag", "DiagPart", "MatrixBandPart", "NonZero", "InvertPermutation", "Expand", "FillV2", "SearchSorted",
           "Bucketize", "LowerBound", "UpperBound", "InplaceAdd", "InplaceSub", "InplaceUpdate", "InplaceUpdateV2",
           "IndexAdd", "IndexFill", "DepthToSpace", "SpaceToDepth", "ReverseSequence", "ChannelShuffle",
           "TrilIndices", "TriuIndices", "StopGradient", "ParallelConcat", "Unique", "Bincount", "HistogramFixedWidth",
           "Histogram", "NthElement", "ListDiff", "Padding", "IdentityN", "Cross", "Einsum",
           *[f"{p}{k.capitalize()}" for k in ("add", "sub", "mul", "div", "max", "min", "update")
             for p in ("TensorScatter", "ScatterNd", "Scatter")]]
_ = M
