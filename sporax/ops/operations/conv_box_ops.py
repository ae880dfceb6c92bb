"""3-D transposed convolution, 3-D adaptive pooling, box coding and a few more operator
classes of ``ops.operations`` (``ops.Conv3DTranspose``,
``ops.BoundingBoxEncode``/``Decode``, ``ops.CheckValid``, ``ops.TripletMarginLoss``, ...), checked
against MindSpore 2.10 in ``tests/ops/test_op_families.py``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common._validation import check_bool, check_str_in, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.ops.function import nn_func as N
from sporax.ops.operations._prim_util import arr, pyint_tuple, wrap
from sporax.ops.operations.image_segment_ops import BatchToSpaceND, SpaceToBatchND
from sporax.ops.operations.nn_ext_ops import _adaptive_bins, _ints
from sporax.ops.primitive import Primitive, prim_attr_register


def _pad_spec(pad_mode: str, pad, n: int, where: str):
    mode = check_str_in(pad_mode.lower(), ("valid", "same", "pad"), "pad_mode", where)
    pads = N.conv_pads(pad, n, where)
    if mode != "pad" and any(v for p in pads for v in p):
        raise ValueError(f"For '{where}', the 'pad' should be 0 when 'pad_mode' is '{mode}'.")
    return mode, pads


class Conv3DTranspose(Primitive):
    """``ops.Conv3DTranspose(in_channel, out_channel, kernel_size, mode=1, pad_mode='valid', pad=0, stride=1,
    dilation=1, group=1, output_padding=0, data_format='NCDHW')(dout, weight)``: the input-gradient of a 3-D
    convolution whose weight is ``weight`` ``(in_channel, out_channel/group, kd, kh, kw)``; output spatial size
    ``(in - 1) * stride - pad_total + dilation * (k - 1) + output_padding + 1`` (``same``: ``in * stride``)."""

    @prim_attr_register
    def __init__(self, in_channel: int, out_channel: int, kernel_size, mode: int = 1, pad_mode: str = "valid", pad=0,
                 stride=1, dilation=1, group: int = 1, output_padding=0, data_format: str = "NCDHW") -> None:
        self._mode, self._pads = _pad_spec(pad_mode, pad, 3, "Conv3DTranspose")
        self._k = _ints(kernel_size, 3, "Conv3DTranspose", "kernel_size")
        self._s = _ints(stride, 3, "Conv3DTranspose", "stride")
        self._d = _ints(dilation, 3, "Conv3DTranspose", "dilation")
        self._op = _ints(output_padding, 3, "Conv3DTranspose", "output_padding")

    def __call__(self, dout, weight) -> Tensor:
        d = arr(dout, "Conv3DTranspose", "dout", "f")
        w = arr(weight, "Conv3DTranspose", "weight", "f")
        if w.shape[0] != self.in_channel or d.shape[1] != self.in_channel:
            raise ValueError(f"For 'Conv3DTranspose', 'dout' and 'weight' should have {self.in_channel} channels.")
        spatial = []
        for i in range(3):
            if self._mode == "same":
                spatial.append(d.shape[2 + i] * self._s[i])
            else:
                total = sum(self._pads[i]) if self._mode == "pad" else 0
                spatial.append((d.shape[2 + i] - 1) * self._s[i] - total + self._d[i] * (self._k[i] - 1)
                               + self._op[i] + 1)
        shape = (d.shape[0], w.shape[1] * self.group) + tuple(spatial)

        def forward(x):
            return N.conv_nd(Tensor._wrap(x), Tensor._wrap(w), self._s, self._mode, self._pads, self._d, self.group,
                             "Conv3DTranspose")._jax()

        _, pullback = jax.vjp(forward, jnp.zeros(shape, d.dtype))
        return wrap(pullback(d)[0])


class AdaptiveAvgPool3D(Primitive):
    """``ops.AdaptiveAvgPool3D(output_size)(x)``: averages over PyTorch's adaptive bins of the last 3 axes."""

    @prim_attr_register
    def __init__(self, output_size) -> None:
        pass

    def __call__(self, x) -> Tensor:
        a = arr(x, "AdaptiveAvgPool3D", "x", "f")
        sizes = (self.output_size,) * 3 if isinstance(self.output_size, int) else tuple(self.output_size)
        sizes = tuple(a.shape[a.ndim - 3 + i] if s is None else s for i, s in enumerate(sizes))
        out = a
        for i, o in enumerate(sizes):
            axis = a.ndim - 3 + i
            bins = _adaptive_bins(out.shape[axis], o)
            out = jnp.stack([jnp.mean(jax.lax.slice_in_dim(out, lo, hi, axis=axis), axis=axis) for lo, hi in bins],
                            axis=axis)
        return wrap(out.astype(a.dtype))


def _box_parts(b):
    w = b[..., 2] - b[..., 0] + 1.0
    h = b[..., 3] - b[..., 1] + 1.0
    return b[..., 0] + 0.5 * (w - 1.0), b[..., 1] + 0.5 * (h - 1.0), w, h


class BoundingBoxEncode(Primitive):
    """``ops.BoundingBoxEncode(means=(0,0,0,0), stds=(1,1,1,1))(anchor_box, groundtruth_box)``: the deltas
    ``((dx, dy, log dw, log dh) - means) / stds`` (boxes ``(x1, y1, x2, y2)``, ``+1`` pixel sizes)."""

    @prim_attr_register
    def __init__(self, means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0)) -> None:
        if len(means) != 4 or len(stds) != 4:
            raise ValueError("For 'BoundingBoxEncode', 'means' and 'stds' should have 4 elements.")

    def __call__(self, anchor_box, groundtruth_box) -> Tensor:
        a = arr(anchor_box, "BoundingBoxEncode", "anchor_box", "f")
        g = arr(groundtruth_box, "BoundingBoxEncode", "groundtruth_box", "f")
        px, py, pw, ph = _box_parts(a)
        gx, gy, gw, gh = _box_parts(g)
        deltas = jnp.stack([(gx - px) / pw, (gy - py) / ph, jnp.log(gw / pw), jnp.log(gh / ph)], axis=-1)
        return wrap(((deltas - jnp.asarray(self.means, a.dtype)) / jnp.asarray(self.stds, a.dtype)).astype(a.dtype))


class BoundingBoxDecode(Primitive):
    """``ops.BoundingBoxDecode(max_shape, means, stds, wh_ratio_clip=0.016)(anchor_box, deltas)``: boxes from
    deltas (the inverse of ``BoundingBoxEncode``), ``log`` sizes clipped to ``|log(wh_ratio_clip)|`` and corners
    to ``[0, w]`` and ``[0, h]`` of ``max_shape = (h, w)``."""

    @prim_attr_register
    def __init__(self, max_shape, means=(0.0, 0.0, 0.0, 0.0), stds=(1.0, 1.0, 1.0, 1.0),
                 wh_ratio_clip: float = 0.016) -> None:
        if len(max_shape) != 2:
            raise ValueError("For 'BoundingBoxDecode', 'max_shape' should be (height, width).")

    def __call__(self, anchor_box, deltas) -> Tensor:
        a = arr(anchor_box, "BoundingBoxDecode", "anchor_box", "f")
        d = arr(deltas, "BoundingBoxDecode", "deltas", "f") * jnp.asarray(self.stds) + jnp.asarray(self.means)
        px, py, pw, ph = _box_parts(a)
        limit = abs(float(np.log(self.wh_ratio_clip)))
        dw, dh = jnp.clip(d[..., 2], -limit, limit), jnp.clip(d[..., 3], -limit, limit)
        gw, gh = pw * jnp.exp(dw), ph * jnp.exp(dh)
        gx, gy = px + pw * d[..., 0], py + ph * d[..., 1]
        h, w = self.max_shape
        x1 = jnp.clip(gx - 0.5 * gw + 0.5, 0, w)
        y1 = jnp.clip(gy - 0.5 * gh + 0.5, 0, h)
        x2 = jnp.clip(gx + 0.5 * gw - 0.5, 0, w)
        y2 = jnp.clip(gy + 0.5 * gh - 0.5, 0, h)
        return wrap(jnp.stack([x1, y1, x2, y2], axis=-1).astype(a.dtype))


class CheckValid(Primitive):
    """``ops.CheckValid()(bboxes, img_metas)``: whether each box lies inside the image ``(h, w, ratio)``."""

    def __call__(self, bboxes, img_metas) -> Tensor:
        b = arr(bboxes, "CheckValid", "bboxes", "fi")
        m = arr(img_metas, "CheckValid", "img_metas", "fi")
        h, w = m[0] * m[2], m[1] * m[2]
        ok = (b[:, 0] >= 0) & (b[:, 1] >= 0) & (b[:, 2] <= w - 1) & (b[:, 3] <= h - 1)
        return wrap(ok)


class NuclearNorm(Primitive):
    """``ops.NuclearNorm(dim=None, keepdim=False)(input)``: the sum of singular values over the two axes ``dim``."""

    @prim_attr_register
    def __init__(self, dim=None, keepdim: bool = False) -> None:
        check_bool(keepdim, "keepdim", "NuclearNorm")

    def __call__(self, input) -> Tensor:  # noqa: A002
        a = arr(input, "NuclearNorm", "input", "f")
        dims = (a.ndim - 2, a.ndim - 1) if self.dim is None else tuple(d % a.ndim for d in self.dim)
        if len(dims) != 2:
            raise ValueError(msg("NuclearNorm", "dim", "two axes", self.dim))
        moved = jnp.moveaxis(a, dims, (-2, -1))
        out = jnp.sum(jnp.linalg.svd(moved, compute_uv=False), axis=-1)
        if self.keepdim:
            for d in sorted(dims):
                out = jnp.expand_dims(out, d)
        return wrap(out.astype(a.dtype))


class TripletMarginLoss(Primitive):
    """``ops.TripletMarginLoss(p=2, swap=False, eps=1e-06, reduction='mean')(x, positive, negative, margin)``:
    ``max(d(x, positive) - d(x, negative) + margin, 0)``, ``d`` the p-norm distance over the last axis."""

    @prim_attr_register
    def __init__(self, p: int = 2, swap: bool = False, eps: float = 1e-06, reduction: str = "mean") -> None:
        check_bool(swap, "swap", "TripletMarginLoss")
        check_str_in(reduction, ("none", "mean", "sum"), "reduction", "TripletMarginLoss")

    def _dist(self, a, b):
        return jnp.sum(jnp.abs(a - b + self.eps) ** self.p, axis=-1) ** (1.0 / self.p)

    def __call__(self, x, positive, negative, margin) -> Tensor:
        a = arr(x, "TripletMarginLoss", "x", "f")
        pos = arr(positive, "TripletMarginLoss", "positive", "f")
        neg = arr(negative, "TripletMarginLoss", "negative", "f")
        mg = arr(margin, "TripletMarginLoss", "margin", "f")
        dp, dn = self._dist(a, pos), self._dist(a, neg)
        if self.swap:
            dn = jnp.minimum(dn, self._dist(pos, neg))
        loss = jnp.maximum(dp - dn + mg, 0.0)
        if self.reduction == "mean":
            loss = jnp.mean(loss)
        elif self.reduction == "sum":
            loss = jnp.sum(loss)
        return wrap(loss.astype(a.dtype))


class SpaceToBatch(SpaceToBatchND):
    """``ops.SpaceToBatch(block_size, paddings)(input_x)``: ``SpaceToBatchND`` with one block size for H and W."""

    @prim_attr_register
    def __init__(self, block_size: int, paddings) -> None:
        self.block_shape = [block_size, block_size]


class BatchToSpace(BatchToSpaceND):
    """``ops.BatchToSpace(block_size, crops)(input_x)``: ``BatchToSpaceND`` with one block size for H and W."""

    @prim_attr_register
    def __init__(self, block_size: int, crops) -> None:
        self.block_shape = [block_size, block_size]


class InplaceIndexAdd(Primitive):
    """``ops.InplaceIndexAdd(axis)(var, indices, updates)``: Parameter ``var`` plus ``updates`` at ``indices``
    along ``axis``, in place."""

    @prim_attr_register
    def __init__(self, axis: int) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(msg("InplaceIndexAdd", "axis", "an int", axis))

    def __call__(self, var, indices, updates) -> Tensor:
        if not isinstance(var, Parameter):
            raise TypeError(f"For 'InplaceIndexAdd', the 'var' should be a Parameter, but got {type(var).__name__}.")
        a = arr(var, "InplaceIndexAdd", "var")
        idx = arr(indices, "InplaceIndexAdd", "indices", "i").astype(jnp.int32)
        u = arr(updates, "InplaceIndexAdd", "updates").astype(a.dtype)
        ax = self.axis % a.ndim
        new = jnp.moveaxis(jnp.moveaxis(a, ax, 0).at[idx].add(jnp.moveaxis(u, ax, 0)), 0, ax)
        var.set_data(Tensor._wrap(new), slice_shape=var.sliced)
        return Tensor._wrap(var._jax())


class IndexPut(Primitive):
    """``ops.IndexPut(accumulate=0)(x1, x2, indices)``: ``x1[indices] = x2`` (``+=`` with ``accumulate``), as a
    new Tensor; ``indices`` is a tuple of int Tensors, one per leading axis."""

    @prim_attr_register
    def __init__(self, accumulate: int = 0) -> None:
        if accumulate not in (0, 1):
            raise ValueError(msg("IndexPut", "accumulate", "0 or 1", accumulate))

    def __call__(self, x1, x2, indices) -> Tensor:
        a = arr(x1, "IndexPut", "x1")
        v = arr(x2, "IndexPut", "x2").astype(a.dtype)
        idx = tuple(arr(i, "IndexPut", "indices", "i").astype(jnp.int32) for i in indices)
        ref = a.at[idx]
        return wrap(ref.add(v) if self.accumulate else ref.set(v))


class LogSoftmaxExt(Primitive):
    """``ops.LogSoftmaxExt()(input, dim=None, dtype=None)``: ``log_softmax`` over ``dim`` (PyTorch's default for
    ``None``: axis 0 for 0-, 1- and 3-d input, else 1), optionally cast to ``dtype`` first."""

    def __call__(self, input, dim=None, dtype=None) -> Tensor:  # noqa: A002
        a = arr(input, "LogSoftmaxExt", "input", "f")
        if dtype is not None:
            a = a.astype(dtype.np_dtype)
        if dim is None:
            dim = 0 if a.ndim in (0, 1, 3) else 1
        return wrap(jax.nn.log_softmax(a, axis=dim))


__all__ = ["Conv3DTranspose", "AdaptiveAvgPool3D", "BoundingBoxEncode", "BoundingBoxDecode",
           "CheckValid", "NuclearNorm", "TripletMarginLoss", "SpaceToBatch", "BatchToSpace", "InplaceIndexAdd",
           "IndexPut", "LogSoftmaxExt"]
_ = pyint_tuple
