"""Segment reductions, transposed convolutions, image resizing and block/box ops of ``ops.operations``
(``ops.UnsortedSegmentSum``, ``ops.Conv2DBackpropInput``/``ops.Conv2DTranspose``, ``ops.ResizeBilinearV2``,
``ops.SpaceToBatchND``, ``ops.IOU``, ...), checked against MindSpore 2.10 in ``tests/ops/test_op_families.py``.

``Conv2DBackpropInput`` is, by definition, the gradient of ``Conv2D`` with respect to its input, so
it is computed as exactly that (``jax.vjp`` of the forward convolution): no second convolution
formula to keep in step with the first.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from sporax.common._validation import check_bool, check_str_in, msg
from sporax.common.tensor import Tensor
from sporax.ops.function import nn_func as N
from sporax.ops.operations._prim_util import arr, pyint_tuple, scalar_of, wrap
from sporax.ops.operations.nn_ops import _ConvND
from sporax.ops.primitive import Primitive, prim_attr_register


# ---------------------------------------------------------------------------------- unsorted segments
def _unsorted(name: str, fn, empty):
    def __call__(self, x, segment_ids, num_segments) -> Tensor:
        a = arr(x, name, "x", "fi")
        ids = arr(segment_ids, name, "segment_ids", "i").astype(jnp.int32)
        n = int(scalar_of(num_segments, name, "num_segments"))
        if n <= 0:
            raise ValueError(msg(name, "num_segments", "an int > 0", n))
        if tuple(a.shape[: ids.ndim]) != tuple(ids.shape):
            raise ValueError(f"For '{name}', the shape of 'segment_ids' {ids.shape} should be a prefix of the shape "
                             f"of 'x' {a.shape}.")
        flat = a.reshape((-1,) + a.shape[ids.ndim:])
        out = fn(flat, ids.reshape(-1), num_segments=n)
        if empty is not None:
            cnt = jax.ops.segment_sum(jnp.ones(ids.size, jnp.int32), ids.reshape(-1), num_segments=n)
            fill = empty(a.dtype)
            out = jnp.where(cnt.reshape((-1,) + (1,) * (out.ndim - 1)) > 0, out, fill)
        return wrap(out.astype(a.dtype))

    return type(name, (Primitive,), {"__call__": __call__, "__module__": __name__, "__doc__":
                                     f"``ops.{name}()(x, segment_ids, num_segments)``: per segment id "
                                     "(ids outside ``[0, num_segments)`` are dropped)."})


def _lowest(dt):
    return jnp.finfo(dt).min if jnp.issubdtype(dt, jnp.floating) else jnp.iinfo(dt).min


def _highest(dt):
    return jnp.finfo(dt).max if jnp.issubdtype(dt, jnp.floating) else jnp.iinfo(dt).max


UnsortedSegmentSum = _unsorted("UnsortedSegmentSum", jax.ops.segment_sum, None)
UnsortedSegmentMax = _unsorted("UnsortedSegmentMax", jax.ops.segment_max, _lowest)
UnsortedSegmentMin = _unsorted("UnsortedSegmentMin", jax.ops.segment_min, _highest)
UnsortedSegmentProd = _unsorted("UnsortedSegmentProd", jax.ops.segment_prod, None)


# ---------------------------------------------------------------------------------- transposed convolution
class Conv2DBackpropInput(_ConvND):
    """``ops.Conv2DBackpropInput(out_channel, kernel_size, pad_mode='valid', pad=0, pad_list=None, mode=1, stride=1,
    dilation=1, group=1, data_format='NCHW')(dout, weight, input_size)``: the gradient of ``Conv2D`` with respect
    to its input of shape ``input_size``, given the output gradient ``dout`` (on amp O1's white list)."""

    @prim_attr_register
    def __init__(self, out_channel: int, kernel_size, pad_mode: str = "valid", pad=0, pad_list=None, mode: int = 1,
                 stride=1, dilation=1, group: int = 1, data_format: str = "NCHW") -> None:
        if pad_list is not None and any(pyint_tuple(pad_list, self.name, "pad_list")):
            pad, pad_mode = tuple(pad_list), "pad"
        self._setup(out_channel, kernel_size, mode, pad_mode, pad, stride, dilation, group, data_format)

    def __call__(self, dout, weight, input_size) -> Tensor:
        d = arr(dout, self.name, "dout", "f")
        w = arr(weight, self.name, "weight", "f")
        shape = pyint_tuple(input_size, self.name, "input_size")
        if len(shape) != 4:
            raise ValueError(msg(self.name, "input_size", "a tuple of 4 ints", input_size))

        def forward(x):
            return N.conv_nd(Tensor._wrap(x), Tensor._wrap(w), self.stride[2:], self.pad_mode, self._pads,
                             self.dilation[2:], self.group, self.name)._jax()

        out_shape = jax.eval_shape(forward, jax.ShapeDtypeStruct(shape, d.dtype)).shape
        if tuple(out_shape) != tuple(d.shape):
            raise ValueError(f"For '{self.name}', 'dout' should have shape {tuple(out_shape)} for input_size {shape}, "
                             f"but got {tuple(d.shape)}.")
        _, pullback = jax.vjp(forward, jnp.zeros(shape, d.dtype))
        return wrap(pullback(d)[0])


class Conv2DTranspose(Conv2DBackpropInput):
    """``ops.Conv2DTranspose(...)(dout, weight, input_size)``: the same operator as ``Conv2DBackpropInput``."""


# ---------------------------------------------------------------------------------- resizing
def _src_coords(out: int, size: int, align: bool, half: bool):
    d = jnp.arange(out, dtype=jnp.float32)
    if align and out > 1:
        return d * ((size - 1) / (out - 1))
    scale = size / out
    return (d + 0.5) * scale - 0.5 if half else d * scale


def _size2(size, where: str) -> tuple:
    s = tuple(int(v) for v in np.asarray(size.asnumpy() if isinstance(size, Tensor) else size).reshape(-1))
    if len(s) != 2 or min(s) <= 0:
        raise ValueError(msg(where, "size", "two positive ints", size))
    return s


class ResizeNearestNeighbor(Primitive):
    """``ops.ResizeNearestNeighbor(size, align_corners=False, half_pixel_centers=False)(input_x)``: NCHW."""

    @prim_attr_register
    def __init__(self, size, align_corners: bool = False, half_pixel_centers: bool = False) -> None:
        check_bool(align_corners, "align_corners", "ResizeNearestNeighbor")
        check_bool(half_pixel_centers, "half_pixel_centers", "ResizeNearestNeighbor")
        _size2(size, "ResizeNearestNeighbor")

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "ResizeNearestNeighbor", "input_x")
        if a.ndim != 4:
            raise ValueError(f"For 'ResizeNearestNeighbor', the 'input_x' should be 4-D, but got {a.ndim}-D.")
        oh, ow = _size2(self.size, "ResizeNearestNeighbor")
        idx = []
        for out, size in ((oh, a.shape[2]), (ow, a.shape[3])):
            if self.align_corners and out > 1:  # halves round up, as MindSpore's kernel does
                src = jnp.floor(jnp.arange(out) * ((size - 1) / (out - 1)) + 0.5)
            elif self.half_pixel_centers:
                src = jnp.floor((jnp.arange(out) + 0.5) * (size / out))
            else:
                src = jnp.floor(jnp.arange(out) * (size / out))
            idx.append(jnp.clip(src, 0, size - 1).astype(jnp.int32))
        return wrap(a[:, :, idx[0][:, None], idx[1][None, :]])


class ResizeBilinearV2(Primitive):
    """``ops.ResizeBilinearV2(align_corners=False, half_pixel_centers=False)(x, size)``: bilinear, NCHW."""

    @prim_attr_register
    def __init__(self, align_corners: bool = False, half_pixel_centers: bool = False) -> None:
        check_bool(align_corners, "align_corners", "ResizeBilinearV2")
        check_bool(half_pixel_centers, "half_pixel_centers", "ResizeBilinearV2")
        if align_corners and half_pixel_centers:
            raise ValueError("For 'ResizeBilinearV2', align_corners and half_pixel_centers can not both be True.")

    def __call__(self, x, size) -> Tensor:
        a = arr(x, "ResizeBilinearV2", "x", "f")
        oh, ow = _size2(size, "ResizeBilinearV2")
        out = a
        for axis, o in ((2, oh), (3, ow)):
            n = a.shape[axis]
            src = jnp.clip(_src_coords(o, n, self.align_corners, self.half_pixel_centers), 0, n - 1)
            lo = jnp.floor(src).astype(jnp.int32)
            hi = jnp.minimum(lo + 1, n - 1)
            frac = (src - lo).astype(a.dtype)
            shape = [1] * 4
            shape[axis] = o
            out = (jnp.take(out, lo, axis=axis) * (1 - frac.reshape(shape))
                   + jnp.take(out, hi, axis=axis) * frac.reshape(shape))
        return wrap(out.astype(a.dtype))


# ---------------------------------------------------------------------------------- blocks
class SpaceToBatchND(Primitive):
    """``ops.SpaceToBatchND(block_shape, paddings)(input_x)``: spatial blocks moved into the batch (NCHW)."""

    @prim_attr_register
    def __init__(self, block_shape, paddings) -> None:
        pass

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "SpaceToBatchND", "input_x")
        block = pyint_tuple(self.block_shape, "SpaceToBatchND", "block_shape")
        m = len(block)
        pads = [tuple(p) for p in self.paddings]
        a = jnp.pad(a, [(0, 0)] * (a.ndim - m) + pads)
        n, c = a.shape[:2]
        spatial = a.shape[2:]
        if any(s % b for s, b in zip(spatial, block)):
            # MindSpore 2.10 raises RuntimeError here
            raise RuntimeError(f"For 'SpaceToBatchND', padded shape should be divisible by block_size, but got padded "
                               f"shape: {spatial}, block_size: {block}.")
        shape = [n, c] + [v for s, b in zip(spatial, block) for v in (s // b, b)]
        y = a.reshape(shape)
        perm = [3 + 2 * i for i in range(m)] + [0, 1] + [2 + 2 * i for i in range(m)]
        y = y.transpose(perm)
        return wrap(y.reshape((n * int(np.prod(block)), c) + tuple(s // b for s, b in zip(spatial, block))))


class BatchToSpaceND(Primitive):
    """``ops.BatchToSpaceND(block_shape, crops)(input_x)``: the inverse of ``SpaceToBatchND`` (NCHW)."""

    @prim_attr_register
    def __init__(self, block_shape, crops) -> None:
        pass

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "BatchToSpaceND", "input_x")
        block = pyint_tuple(self.block_shape, "BatchToSpaceND", "block_shape")
        m = len(block)
        prod = int(np.prod(block))
        if a.shape[0] % prod:
            raise ValueError("For 'BatchToSpaceND', the batch should be divisible by prod(block_shape).")
        n, c = a.shape[0] // prod, a.shape[1]
        spatial = a.shape[2:]
        y = a.reshape(tuple(block) + (n, c) + spatial)
        perm = [m, m + 1] + [v for i in range(m) for v in (m + 2 + i, i)]
        y = y.transpose(perm).reshape((n, c) + tuple(s * b for s, b in zip(spatial, block)))
        index = [slice(None), slice(None)] + [slice(lo, y.shape[2 + i] - hi) for i, (lo, hi) in
                                              enumerate(tuple(p) for p in self.crops)]
        return wrap(y[tuple(index)])


# ---------------------------------------------------------------------------------- misc
class Zeta(Primitive):
    """``ops.Zeta()(x, q)``: the Hurwitz zeta function ``sum over k of (k + q) ** -x``."""

    def __call__(self, x, q) -> Tensor:
        a, b = arr(x, "Zeta", "x", "f"), arr(q, "Zeta", "q", "f")
        return wrap(jsp.zeta(a, b).astype(a.dtype))


class UnravelIndex(Primitive):
    """``ops.UnravelIndex()(indices, dims)``: the ``(len(dims), n)`` coordinates of flat ``indices``."""

    def __call__(self, indices, dims) -> Tensor:
        i = arr(indices, "UnravelIndex", "indices", "i")
        d = tuple(int(v) for v in np.asarray(arr(dims, "UnravelIndex", "dims", "i")).reshape(-1))
        return wrap(jnp.stack(jnp.unravel_index(i, d), axis=0).astype(i.dtype))


class UniqueConsecutive(Primitive):
    """``ops.UniqueConsecutive(return_inverse=False, return_counts=False, dim=None)(x)``: runs of equal values
    collapsed: ``(output, inverse indices, counts)``; an index or count not asked for is a 0-d int64 placeholder
    (MindSpore 2.10 returns one holding an arbitrary value; sporax's holds 0)."""

    @prim_attr_register
    def __init__(self, return_inverse: bool = False, return_counts: bool = False, dim=None) -> None:
        check_bool(return_inverse, "return_inverse", "UniqueConsecutive")
        check_bool(return_counts, "return_counts", "UniqueConsecutive")

    def __call__(self, x) -> tuple:
        a = arr(x, "UniqueConsecutive", "x")
        if isinstance(a, jax.core.Tracer):
            raise ValueError("For 'UniqueConsecutive', the output shape depends on the input values, so the input "
                             "must be concrete (call it in PYNATIVE_MODE, outside jit).")
        if self.dim is not None and not (a.ndim == 1 and self.dim in (0, -1)):
            raise ValueError("For 'UniqueConsecutive', sporax supports dim=None (the flattened input) only.")
        v = np.asarray(a).reshape(-1)
        start = np.concatenate([[True], v[1:] != v[:-1]]) if v.size else np.zeros(0, bool)
        out = v[start]
        inv = np.cumsum(start) - 1
        counts = np.diff(np.concatenate([np.nonzero(start)[0], [v.size]]))
        placeholder = jnp.zeros((), jnp.int64)
        return (wrap(jnp.asarray(out, a.dtype)),
                wrap(jnp.asarray(inv.reshape(a.shape), jnp.int64) if self.return_inverse else placeholder),
                wrap(jnp.asarray(counts, jnp.int64) if self.return_counts else placeholder))


class AccumulateNV2(Primitive):
    """``ops.AccumulateNV2()(x)``: the sum of a tuple of same-shaped Tensors (as ``AddN``)."""

    def __call__(self, x) -> Tensor:
        arrays = [arr(t, "AccumulateNV2", "x") for t in x]
        if not arrays:
            raise ValueError("For 'AccumulateNV2', the 'x' should not be empty.")
        out = arrays[0]
        for b in arrays[1:]:
            out = out + b
        return wrap(out)


class Eps(Primitive):
    """``ops.Eps()(x)``: a Tensor like ``x`` filled with the smallest positive normal value of its float dtype."""

    def __call__(self, x) -> Tensor:
        a = arr(x, "Eps", "x", "f")
        return wrap(jnp.full(a.shape, jnp.finfo(a.dtype).tiny, a.dtype))


class ConjugateTranspose(Primitive):
    """``ops.ConjugateTranspose()(x, perm)``: ``conj(transpose(x, perm))``."""

    def __call__(self, x, perm) -> Tensor:
        a = arr(x, "ConjugateTranspose", "x")
        p = pyint_tuple(perm, "ConjugateTranspose", "perm")
        if sorted(p) != list(range(a.ndim)):
            raise ValueError(msg("ConjugateTranspose", "perm", f"a permutation of range({a.ndim})", perm))
        return wrap(jnp.conj(jnp.transpose(a, p)))


class IOU(Primitive):
    """``ops.IOU(mode='iou')(anchor_boxes, gt_boxes)``: ``(M, N)`` overlaps of ``N`` anchors and ``M`` ground-truth
    boxes ``(x1, y1, x2, y2)``; 'iof' divides by the ground-truth box's area. Areas use MindSpore's ``+1`` pixel
    convention."""

    @prim_attr_register
    def __init__(self, mode: str = "iou") -> None:
        check_str_in(mode, ("iou", "iof"), "mode", "IOU")

    def __call__(self, anchor_boxes, gt_boxes) -> Tensor:
        a = arr(anchor_boxes, "IOU", "anchor_boxes", "f")
        g = arr(gt_boxes, "IOU", "gt_boxes", "f")
        lt = jnp.maximum(g[:, None, :2], a[None, :, :2])
        rb = jnp.minimum(g[:, None, 2:4], a[None, :, 2:4])
        wh = jnp.maximum(rb - lt + 1, 0)
        inter = wh[..., 0] * wh[..., 1]
        area_a = (a[:, 2] - a[:, 0] + 1) * (a[:, 3] - a[:, 1] + 1)
        area_g = (g[:, 2] - g[:, 0] + 1) * (g[:, 3] - g[:, 1] + 1)
        denom = area_g[:, None] + area_a[None, :] - inter if self.mode == "iou" else area_g[:, None]
        return wrap((inter / denom).astype(a.dtype))


class FillDiagonal(Primitive):
    """``ops.FillDiagonal(fill_value, wrap=False)(input_x)``: the main diagonal set to ``fill_value``; ``wrap``
    restarts it every ``ncols + 1`` rows of a tall matrix (numpy's ``fill_diagonal``)."""

    @prim_attr_register
    def __init__(self, fill_value: float, wrap: bool = False) -> None:
        check_bool(wrap, "wrap", "FillDiagonal")

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "FillDiagonal", "input_x")
        if a.ndim < 2:
            raise ValueError("For 'FillDiagonal', the 'input_x' should be at least 2-D.")
        if a.ndim > 2 and len(set(a.shape)) != 1:
            raise ValueError("For 'FillDiagonal', a Tensor of more than 2 dimensions should have equal dimensions.")
        rows, cols = a.shape[0], a.shape[1]
        if a.ndim == 2:
            step = cols + 1
            end = rows * cols if self.wrap else min(rows, cols) * cols
            flat = jnp.arange(0, end, step)
            out = a.reshape(-1).at[flat].set(jnp.asarray(self.fill_value, a.dtype)).reshape(a.shape)
            return wrap(out)
        i = jnp.arange(rows)
        return wrap(a.at[(i,) * a.ndim].set(jnp.asarray(self.fill_value, a.dtype)))


class MaskedScatter(Primitive):
    """``ops.MaskedScatter()(input, mask, updates)``: the True positions of ``mask`` filled, in order, with the
    first elements of ``updates``."""

    def __call__(self, input, mask, updates) -> Tensor:  # noqa: A002
        a = arr(input, "MaskedScatter", "input")
        m = jnp.broadcast_to(arr(mask, "MaskedScatter", "mask", "b"), a.shape).reshape(-1)
        u = arr(updates, "MaskedScatter", "updates").reshape(-1).astype(a.dtype)
        pos = jnp.clip(jnp.cumsum(m) - 1, 0, max(u.size - 1, 0))
        return wrap(jnp.where(m, u[pos], a.reshape(-1)).reshape(a.shape))


__all__ = ["UnsortedSegmentSum", "UnsortedSegmentMax", "UnsortedSegmentMin", "UnsortedSegmentProd",
           "Conv2DBackpropInput", "Conv2DTranspose", "ResizeNearestNeighbor", "ResizeBilinearV2", "SpaceToBatchND",
           "BatchToSpaceND", "Zeta", "UnravelIndex", "UniqueConsecutive", "AccumulateNV2", "Eps",
           "ConjugateTranspose", "IOU", "FillDiagonal", "MaskedScatter"]
