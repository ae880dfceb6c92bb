"""More neural-network operator classes of ``ops.operations``: activations, pooling, normalization,
losses, dropout and distances (``ops.MaxPool``, ``ops.BatchNorm``, ``ops.NLLLoss``, ``ops.Dropout``, ...).

Primitives over ``jax.numpy``/``jax.lax`` with MindSpore 2.10's attributes, outputs (tuples where
MindSpore returns them: ``BatchNorm`` gives five Tensors, ``NLLLoss`` ``(loss, total_weight)``)
and exception types, checked against MindSpore in ``tests/ops/test_op_families.py``. Random
masks (``Dropout*``) come from sporax's one run-time key (``next_key``), so a compiled step
draws a new mask each call.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common._random_state import next_key
from sporax.common._validation import check_bool, check_str_in, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.ops.function import nn_func as N
from sporax.ops.operations._prim_util import arr, wrap
from sporax.ops.primitive import Primitive, prim_attr_register


def _ints(value, n: int, where: str, arg: str) -> tuple:
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,) * n
    if isinstance(value, (tuple, list)) and len(value) in (n, n + 2) and all(isinstance(v, int) for v in value):
        return tuple(value[-n:])
    raise TypeError(msg(where, arg, f"an int or a tuple of {n} ints", value))


# ---------------------------------------------------------------------------------- activations
class CeLU(Primitive):
    """``ops.CeLU(alpha=1.0)(x)``: ``max(0, x) + min(0, alpha * (exp(x / alpha) - 1))``."""

    @prim_attr_register
    def __init__(self, alpha: float = 1.0) -> None:
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or alpha == 0:
            raise ValueError(msg("CeLU", "alpha", "a non-zero float", alpha))

    def __call__(self, x) -> Tensor:
        a = arr(x, "CeLU", "x", "f")
        return wrap(jax.nn.celu(a, self.alpha).astype(a.dtype))


class GLU(Primitive):
    """``ops.GLU(axis=-1)(x)``: ``a * sigmoid(b)`` for the two halves ``a, b`` of ``x`` along ``axis``."""

    @prim_attr_register
    def __init__(self, axis: int = -1) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(msg("GLU", "axis", "an int", axis))

    def __call__(self, x) -> Tensor:
        a = arr(x, "GLU", "x", "f")
        if a.shape[self.axis] % 2:
            raise ValueError(f"For 'GLU', the size of axis {self.axis} should be even, but got {a.shape[self.axis]}.")
        first, second = jnp.split(a, 2, axis=self.axis)
        return wrap(first * jax.nn.sigmoid(second))


class HShrink(Primitive):
    """``ops.HShrink(lambd=0.5)(input_x)``: ``x`` where ``|x| > lambd``, else 0."""

    @prim_attr_register
    def __init__(self, lambd: float = 0.5) -> None:
        if isinstance(lambd, bool) or not isinstance(lambd, (int, float)):
            raise TypeError(msg("HShrink", "lambd", "a float", lambd))

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "HShrink", "input_x", "f")
        return wrap(jnp.where(jnp.abs(a) > self.lambd, a, jnp.zeros((), a.dtype)))


class SoftShrink(Primitive):
    """``ops.SoftShrink(lambd=0.5)(input_x)``: ``x - lambd`` above ``lambd``, ``x + lambd`` below ``-lambd``, else 0."""

    @prim_attr_register
    def __init__(self, lambd: float = 0.5) -> None:
        if isinstance(lambd, bool) or not isinstance(lambd, (int, float)) or lambd < 0:
            raise ValueError(msg("SoftShrink", "lambd", "a float >= 0", lambd))

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "SoftShrink", "input_x", "f")
        lam = jnp.asarray(self.lambd, a.dtype)
        return wrap(jnp.where(a > lam, a - lam, jnp.where(a < -lam, a + lam, jnp.zeros((), a.dtype))))


class Gelu(Primitive):
    """``ops.Gelu()(x)``: MindSpore 1.x's name of ``ops.GeLU`` (tanh approximation)."""

    def __call__(self, x) -> Tensor:
        return N.gelu(x, "tanh")


class FastGelu(Primitive):
    """``ops.FastGelu()(x)``: MindSpore 1.x's name of ``ops.FastGeLU``."""

    def __call__(self, x) -> Tensor:
        return N.fast_gelu(x)


class LRN(Primitive):
    """``ops.LRN(depth_radius=5, bias=1.0, alpha=1.0, beta=0.5, norm_region='ACROSS_CHANNELS')(x)``:
    ``x / (bias + alpha * sum of x**2 over channels within depth_radius) ** beta`` (NCHW)."""

    @prim_attr_register
    def __init__(self, depth_radius: int = 5, bias: float = 1.0, alpha: float = 1.0, beta: float = 0.5,
                 norm_region: str = "ACROSS_CHANNELS") -> None:
        check_str_in(norm_region, ("ACROSS_CHANNELS",), "norm_region", "LRN")
        if isinstance(depth_radius, bool) or not isinstance(depth_radius, int) or depth_radius < 0:
            raise ValueError(msg("LRN", "depth_radius", "an int >= 0", depth_radius))

    def __call__(self, x) -> Tensor:
        a = arr(x, "LRN", "x", "f")
        if a.ndim != 4:
            raise ValueError(f"For 'LRN', the 'x' should be 4-D, but got {a.ndim}-D.")
        r = self.depth_radius
        sq = jnp.pad(a * a, [(0, 0), (r, r), (0, 0), (0, 0)])
        total = sum(sq[:, i:i + a.shape[1]] for i in range(2 * r + 1))
        return wrap((a / (self.bias + self.alpha * total) ** self.beta).astype(a.dtype))


# ---------------------------------------------------------------------------------- pooling
def _pool(a, n: int, kernel, strides, pad_mode: str, kind: str, pads=None, count_include_pad: bool = False,
          divisor: int = 0):
    """Max or average pooling over the last ``n`` axes (channels first)."""
    window = (1,) * (a.ndim - n) + kernel
    step = (1,) * (a.ndim - n) + strides
    if pad_mode == "same":
        padding = jax.lax.padtype_to_pads(a.shape, window, step, "SAME")
    elif pad_mode == "pad":
        padding = [(0, 0)] * (a.ndim - n) + list(pads)
    else:
        padding = [(0, 0)] * a.ndim
    if kind == "max":
        init = -jnp.inf if jnp.issubdtype(a.dtype, jnp.floating) else jnp.iinfo(a.dtype).min
        return jax.lax.reduce_window(a, jnp.asarray(init, a.dtype), jax.lax.max, window, step, padding)
    total = jax.lax.reduce_window(a, jnp.zeros((), a.dtype), jax.lax.add, window, step, padding)
    if divisor:
        return total / divisor
    if count_include_pad or pad_mode == "valid":
        return total / math.prod(kernel)
    count = jax.lax.reduce_window(jnp.ones(a.shape, a.dtype), jnp.zeros((), a.dtype), jax.lax.add, window, step,
                                  padding)
    return total / count


class _Pool2D(Primitive):
    _kind = "max"

    @prim_attr_register
    def __init__(self, kernel_size=1, strides=1, pad_mode: str = "valid", data_format: str = "NCHW") -> None:
        if not isinstance(pad_mode, str) or pad_mode.upper() not in ("VALID", "SAME"):
            raise ValueError(f"For '{self.name}', the 'pad_mode' must be str and must be in '['VALID', 'SAME']', "
                             f"but got '{str(pad_mode).upper()}'.")
        check_str_in(data_format, ("NCHW", "NHWC"), "data_format", self.name)
        self._k = _ints(kernel_size, 2, self.name, "kernel_size")
        self._s = _ints(strides, 2, self.name, "strides")

    def __call__(self, x) -> Tensor:
        a = arr(x, self.name, "x", "f")
        if a.ndim != 4:
            raise ValueError(f"For '{self.name}', the 'x' should be 4-D, but got {a.ndim}-D.")
        if self.data_format == "NHWC":
            a = jnp.transpose(a, (0, 3, 1, 2))
        out = _pool(a, 2, self._k, self._s, self.pad_mode.lower(), self._kind).astype(a.dtype)
        return wrap(jnp.transpose(out, (0, 2, 3, 1)) if self.data_format == "NHWC" else out)


class MaxPool(_Pool2D):
    """``ops.MaxPool(kernel_size=1, strides=1, pad_mode='valid', data_format='NCHW')(x)``."""


class AvgPool(_Pool2D):
    """``ops.AvgPool(kernel_size=1, strides=1, pad_mode='VALID', data_format='NCHW')(x)``; SAME averages over
    the elements inside the input only."""

    _kind = "avg"


class _Pool3D(Primitive):
    def _setup(self, kernel_size, strides, pad_mode, pad) -> None:
        check_str_in(pad_mode.lower(), ("valid", "same", "pad"), "pad_mode", self.name)
        self._k = _ints(kernel_size, 3, self.name, "kernel_size")
        self._s = _ints(strides, 3, self.name, "strides")
        p = (pad,) * 6 if isinstance(pad, int) else tuple(pad)
        self._pads = [(p[0], p[1]), (p[2], p[3]), (p[4], p[5])]


class AvgPool3D(_Pool3D):
    """``ops.AvgPool3D(kernel_size=1, strides=1, pad_mode='valid', pad=0, ceil_mode=False, count_include_pad=True,
    divisor_override=0, data_format='NCDHW')(x)``."""

    @prim_attr_register
    def __init__(self, kernel_size=1, strides=1, pad_mode: str = "valid", pad=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int = 0, data_format: str = "NCDHW") -> None:
        self._setup(kernel_size, strides, pad_mode, pad)
        if ceil_mode:
            raise ValueError("For 'AvgPool3D', ceil_mode=True is not supported by sporax; pad the input instead.")

    def __call__(self, x) -> Tensor:
        a = arr(x, "AvgPool3D", "x", "f")
        return wrap(_pool(a, 3, self._k, self._s, self.pad_mode.lower(), "avg", self._pads, self.count_include_pad,
                          self.divisor_override).astype(a.dtype))


class MaxPool3D(_Pool3D):
    """``ops.MaxPool3D(kernel_size=1, strides=1, pad_mode='VALID', pad_list=0, ceil_mode=None,
    data_format='NCDHW')(x)``."""

    @prim_attr_register
    def __init__(self, kernel_size=1, strides=1, pad_mode: str = "VALID", pad_list=0, ceil_mode=None,
                 data_format: str = "NCDHW") -> None:
        self._setup(kernel_size, strides, pad_mode, pad_list)
        if ceil_mode:
            raise ValueError("For 'MaxPool3D', ceil_mode=True is not supported by sporax; pad the input instead.")

    def __call__(self, x) -> Tensor:
        a = arr(x, "MaxPool3D", "x", "f")
        return wrap(_pool(a, 3, self._k, self._s, self.pad_mode.lower(), "max", self._pads).astype(a.dtype))


def _adaptive_bins(size: int, out: int) -> list:
    return [(i * size // out, -(-(i + 1) * size // out)) for i in range(out)]


def _adaptive(a, output_size, n: int, where: str, kind: str):
    sizes = (output_size,) * n if isinstance(output_size, int) else tuple(output_size)
    if len(sizes) != n:
        raise ValueError(msg(where, "output_size", f"an int or a tuple of {n}", output_size))
    sizes = tuple(a.shape[a.ndim - n + i] if s is None else s for i, s in enumerate(sizes))
    h, w = a.shape[-2:]
    bins_h, bins_w = _adaptive_bins(h, sizes[0]), _adaptive_bins(w, sizes[1])
    rows = []
    idx_rows = []
    for h0, h1 in bins_h:
        cols, idx_cols = [], []
        for w0, w1 in bins_w:
            patch = a[..., h0:h1, w0:w1].reshape(a.shape[:-2] + (-1,))
            if kind == "avg":
                cols.append(jnp.mean(patch, axis=-1))
            else:
                j = jnp.argmax(patch, axis=-1)
                cols.append(jnp.max(patch, axis=-1))
                idx_cols.append((h0 + j // (w1 - w0)) * w + w0 + j % (w1 - w0))
        rows.append(jnp.stack(cols, -1))
        if idx_cols:
            idx_rows.append(jnp.stack(idx_cols, -1))
    out = jnp.stack(rows, -2).astype(a.dtype)
    return (out, jnp.stack(idx_rows, -2)) if kind == "max" else out


class AdaptiveAvgPool2D(Primitive):
    """``ops.AdaptiveAvgPool2D(output_size)(input_x)``: averages over PyTorch's adaptive bins."""

    @prim_attr_register
    def __init__(self, output_size) -> None:
        pass

    def __call__(self, input_x) -> Tensor:
        return wrap(_adaptive(arr(input_x, "AdaptiveAvgPool2D", "input_x", "f"), self.output_size, 2,
                              "AdaptiveAvgPool2D", "avg"))


class AdaptiveMaxPool2D(Primitive):
    """``ops.AdaptiveMaxPool2D(output_size)(input_x)``: ``(maxima, int64 flat H*W indices)`` over adaptive bins."""

    @prim_attr_register
    def __init__(self, output_size) -> None:
        pass

    def __call__(self, input_x) -> tuple:
        out, idx = _adaptive(arr(input_x, "AdaptiveMaxPool2D", "input_x", "f"), self.output_size, 2,
                             "AdaptiveMaxPool2D", "max")
        return wrap(out), wrap(idx.astype(jnp.int64))


def _max_with_argmax(a, kernel, strides, pads):
    """2-D max pooling and the flat ``h * W + w`` index (of the unpadded input) of each maximum."""
    h, w = a.shape[-2:]
    ap = jnp.pad(a, [(0, 0)] * (a.ndim - 2) + list(pads), constant_values=-jnp.inf)
    oh = (ap.shape[-2] - kernel[0]) // strides[0] + 1
    ow = (ap.shape[-1] - kernel[1]) // strides[1] + 1
    r = (jnp.arange(oh) * strides[0])[:, None] + jnp.arange(kernel[0])[None, :]
    c = (jnp.arange(ow) * strides[1])[:, None] + jnp.arange(kernel[1])[None, :]
    patches = ap[..., r[:, None, :, None], c[None, :, None, :]].reshape(a.shape[:-2] + (oh, ow, -1))
    j = jnp.argmax(patches, axis=-1)
    rows = (jnp.arange(oh) * strides[0])[:, None] + j // kernel[1] - pads[0][0]
    cols = (jnp.arange(ow) * strides[1])[None, :] + j % kernel[1] - pads[1][0]
    return jnp.max(patches, axis=-1), rows * w + cols


class MaxPoolWithArgmax(Primitive):
    """``ops.MaxPoolWithArgmax(kernel_size=1, strides=1, pad_mode='valid', data_format='NCHW')(x)``:
    ``(output, int32 argmax)``, the argmax a flat index into each sample's ``C * H * W`` (MindSpore's CPU kernel;
    ``MaxPoolWithArgmaxV2`` indexes each ``H * W`` plane)."""

    @prim_attr_register
    def __init__(self, kernel_size=1, strides=1, pad_mode: str = "valid", data_format: str = "NCHW") -> None:
        check_str_in(pad_mode.lower(), ("valid", "same"), "pad_mode", "MaxPoolWithArgmax")
        self._k = _ints(kernel_size, 2, "MaxPoolWithArgmax", "kernel_size")
        self._s = _ints(strides, 2, "MaxPoolWithArgmax", "strides")

    def __call__(self, x) -> tuple:
        a = arr(x, "MaxPoolWithArgmax", "x", "f")
        pads = ([(0, 0)] * 2 if self.pad_mode.lower() == "valid"
                else jax.lax.padtype_to_pads(a.shape[-2:], self._k, self._s, "SAME"))
        out, idx = _max_with_argmax(a, self._k, self._s, pads)
        plane = a.shape[-2] * a.shape[-1]
        idx = idx + (jnp.arange(a.shape[1]) * plane).reshape(1, -1, 1, 1)
        return wrap(out.astype(a.dtype)), wrap(idx.astype(jnp.int32))


class MaxPoolWithArgmaxV2(Primitive):
    """``ops.MaxPoolWithArgmaxV2(kernel_size, strides=None, pads=0, dilation=(1, 1), ceil_mode=False,
    argmax_type=int64)(x)``: explicit symmetric ``pads``; ``(output, argmax)``."""

    @prim_attr_register
    def __init__(self, kernel_size, strides=None, pads=0, dilation=(1, 1), ceil_mode: bool = False,
                 argmax_type=None) -> None:
        from sporax.common import dtype as mstype

        self._k = _ints(kernel_size, 2, "MaxPoolWithArgmaxV2", "kernel_size")
        self._s = self._k if strides is None else _ints(strides, 2, "MaxPoolWithArgmaxV2", "strides")
        p = _ints(pads, 2, "MaxPoolWithArgmaxV2", "pads")
        self._pads = [(p[0], p[0]), (p[1], p[1])]
        if tuple(_ints(dilation, 2, "MaxPoolWithArgmaxV2", "dilation")) != (1, 1) or ceil_mode:
            raise ValueError("For 'MaxPoolWithArgmaxV2', dilation other than 1 and ceil_mode=True are not supported "
                             "by sporax.")
        self._argmax = (argmax_type or mstype.int64).np_dtype

    def __call__(self, x) -> tuple:
        a = arr(x, "MaxPoolWithArgmaxV2", "x", "f")
        out, idx = _max_with_argmax(a, self._k, self._s, self._pads)
        return wrap(out.astype(a.dtype)), wrap(idx.astype(self._argmax))


# ---------------------------------------------------------------------------------- normalization
class BatchNorm(Primitive):
    """``ops.BatchNorm(is_training=False, epsilon=1e-05, momentum=0.1, data_format='NCHW')(input_x, scale, bias,
    mean, variance)``: ``(y, batch_mean, batch_variance, reserve_space_1, reserve_space_2)``. Training uses the
    batch statistics and updates the ``mean``/``variance`` Parameters in place:
    ``moving = (1 - momentum) * moving + momentum * batch`` (the unbiased batch variance). The four
    statistics outputs are those of MindSpore 2.10's CPU kernel: ``batch_mean``/``batch_variance`` are
    zeros, the reserve spaces hold the batch mean and (biased) variance in training, zeros otherwise."""

    @prim_attr_register
    def __init__(self, is_training: bool = False, epsilon: float = 1e-05, momentum: float = 0.1,
                 data_format: str = "NCHW") -> None:
        check_bool(is_training, "is_training", "BatchNorm")
        if not 0.0 <= momentum <= 1.0:
            raise ValueError(msg("BatchNorm", "momentum", "in [0, 1]", momentum))

    def __call__(self, input_x, scale, bias, mean, variance) -> tuple:
        a = arr(input_x, "BatchNorm", "input_x", "f")
        g, b = arr(scale, "BatchNorm", "scale", "f"), arr(bias, "BatchNorm", "bias", "f")
        m, v = arr(mean, "BatchNorm", "mean", "f"), arr(variance, "BatchNorm", "variance", "f")
        axes = tuple(i for i in range(a.ndim) if i != 1)
        shape = [1] * a.ndim
        shape[1] = a.shape[1]
        if self.is_training:
            bm = jnp.mean(a, axis=axes)
            bv = jnp.var(a, axis=axes)
            n = a.size // a.shape[1]
            y = (a - bm.reshape(shape)) / jnp.sqrt(bv.reshape(shape) + self.epsilon)
            for p, moving, batch in ((mean, m, bm), (variance, v, bv * n / max(n - 1, 1))):
                if isinstance(p, Parameter):
                    new = (1 - self.momentum) * moving + self.momentum * batch
                    p.set_data(Tensor._wrap(new.astype(moving.dtype)), slice_shape=p.sliced)
            reserve = (bm, bv)
        else:
            y = (a - m.reshape(shape)) / jnp.sqrt(v.reshape(shape) + self.epsilon)
            reserve = (jnp.zeros_like(m), jnp.zeros_like(v))
        y = y * g.reshape(shape) + b.reshape(shape)
        zero = jnp.zeros_like(m)
        return (wrap(y.astype(a.dtype)), wrap(zero), wrap(zero), wrap(reserve[0]), wrap(reserve[1]))


class LayerNorm(Primitive):
    """``ops.LayerNorm(begin_norm_axis=1, begin_params_axis=1, epsilon=1e-07)(input_x, gamma, beta)``:
    ``(y, mean, variance)``, normalized over the axes from ``begin_norm_axis`` on."""

    @prim_attr_register
    def __init__(self, begin_norm_axis: int = 1, begin_params_axis: int = 1, epsilon: float = 1e-07) -> None:
        pass

    def __call__(self, input_x, gamma, beta) -> tuple:
        a = arr(input_x, "LayerNorm", "input_x", "f")
        g, b = arr(gamma, "LayerNorm", "gamma", "f"), arr(beta, "LayerNorm", "beta", "f")
        axes = tuple(range(self.begin_norm_axis % a.ndim, a.ndim))
        mean = jnp.mean(a, axis=axes, keepdims=True)
        var = jnp.var(a, axis=axes, keepdims=True)
        rstd = jax.lax.rsqrt(var + self.epsilon)
        y = (a - mean) * rstd * g + b
        return wrap(y.astype(a.dtype)), wrap(mean), wrap(var)


# ---------------------------------------------------------------------------------- losses
def _reduce(loss, reduction: str):
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _reduction(value, where: str, allowed=("none", "mean", "sum")) -> None:
    check_str_in(value, allowed, "reduction", where)


class NLLLoss(Primitive):
    """``ops.NLLLoss(reduction='mean', ignore_index=-100)(logits, labels, weight)``: ``(loss, total_weight)``."""

    @prim_attr_register
    def __init__(self, reduction: str = "mean", ignore_index: int = -100) -> None:
        _reduction(reduction, "NLLLoss")

    def __call__(self, logits, labels, weight) -> tuple:
        x = arr(logits, "NLLLoss", "logits", "f")
        t = arr(labels, "NLLLoss", "labels", "i").astype(jnp.int32)
        w = arr(weight, "NLLLoss", "weight", "f")
        keep = t != self.ignore_index
        safe = jnp.where(keep, t, 0)
        wt = jnp.where(keep, w[safe], 0.0).astype(x.dtype)
        loss = -jnp.take_along_axis(x, safe[:, None], axis=1)[:, 0] * wt
        total = jnp.sum(wt)
        if self.reduction == "mean":
            return wrap(jnp.sum(loss) / total), wrap(total)
        return wrap(_reduce(loss, self.reduction)), wrap(total)


class KLDivLoss(Primitive):
    """``ops.KLDivLoss(reduction='mean')(logits, labels)``: ``labels * (log(labels) - logits)``, reduced."""

    @prim_attr_register
    def __init__(self, reduction: str = "mean") -> None:
        _reduction(reduction, "KLDivLoss", ("none", "mean", "sum", "batchmean"))

    def __call__(self, logits, labels) -> Tensor:
        x, y = arr(logits, "KLDivLoss", "logits", "f"), arr(labels, "KLDivLoss", "labels", "f")
        loss = jnp.where(y > 0, y * (jnp.log(jnp.where(y > 0, y, 1)) - x), 0.0)
        if self.reduction == "batchmean":
            return wrap(jnp.sum(loss) / x.shape[0])
        return wrap(_reduce(loss, self.reduction))


class SmoothL1Loss(Primitive):
    """``ops.SmoothL1Loss(beta=1.0, reduction='none')(logits, labels)``: ``0.5 d**2 / beta`` below ``beta``,
    ``|d| - 0.5 beta`` above."""

    @prim_attr_register
    def __init__(self, beta: float = 1.0, reduction: str = "none") -> None:
        _reduction(reduction, "SmoothL1Loss")
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta <= 0:
            raise ValueError(msg("SmoothL1Loss", "beta", "a float > 0", beta))

    def __call__(self, logits, labels) -> Tensor:
        x, y = arr(logits, "SmoothL1Loss", "logits", "f"), arr(labels, "SmoothL1Loss", "labels", "f")
        d = jnp.abs(x - y)
        loss = jnp.where(d < self.beta, 0.5 * d * d / self.beta, d - 0.5 * self.beta)
        return wrap(_reduce(loss, self.reduction).astype(x.dtype))


class SoftMarginLoss(Primitive):
    """``ops.SoftMarginLoss(reduction='mean')(logits, labels)``: ``log(1 + exp(-labels * logits))``, reduced."""

    @prim_attr_register
    def __init__(self, reduction: str = "mean") -> None:
        _reduction(reduction, "SoftMarginLoss")

    def __call__(self, logits, labels) -> Tensor:
        x, y = arr(logits, "SoftMarginLoss", "logits", "f"), arr(labels, "SoftMarginLoss", "labels", "f")
        return wrap(_reduce(jax.nn.softplus(-y * x), self.reduction).astype(x.dtype))


class BinaryCrossEntropy(Primitive):
    """``ops.BinaryCrossEntropy(reduction='mean')(logits, labels, weight=None)``: on probabilities ``logits``."""

    @prim_attr_register
    def __init__(self, reduction: str = "mean") -> None:
        _reduction(reduction, "BinaryCrossEntropy")

    def __call__(self, logits, labels, weight=None) -> Tensor:
        x, y = arr(logits, "BinaryCrossEntropy", "logits", "f"), arr(labels, "BinaryCrossEntropy", "labels", "f")
        loss = -(y * jnp.log(x) + (1 - y) * jnp.log(1 - x))
        if weight is not None:
            loss = loss * arr(weight, "BinaryCrossEntropy", "weight", "f")
        return wrap(_reduce(loss, self.reduction).astype(x.dtype))


class SoftmaxCrossEntropyWithLogits(Primitive):
    """``ops.SoftmaxCrossEntropyWithLogits()(logits, labels)``: ``(loss per row, softmax(logits) - labels)``."""

    def __call__(self, logits, labels) -> tuple:
        x = arr(logits, "SoftmaxCrossEntropyWithLogits", "logits", "f")
        y = arr(labels, "SoftmaxCrossEntropyWithLogits", "labels", "f")
        logp = jax.nn.log_softmax(x, axis=-1)
        return wrap(-jnp.sum(y * logp, axis=-1)), wrap(jnp.exp(logp) - y)


class SparseSoftmaxCrossEntropyWithLogits(Primitive):
    """``ops.SparseSoftmaxCrossEntropyWithLogits(is_grad=False)(logits, labels)``: the mean loss (0-d), or with
    ``is_grad`` its gradient ``(softmax - one_hot) / batch``."""

    @prim_attr_register
    def __init__(self, is_grad: bool = False) -> None:
        check_bool(is_grad, "is_grad", "SparseSoftmaxCrossEntropyWithLogits")

    def __call__(self, logits, labels) -> Tensor:
        x = arr(logits, "SparseSoftmaxCrossEntropyWithLogits", "logits", "f")
        t = arr(labels, "SparseSoftmaxCrossEntropyWithLogits", "labels", "i").astype(jnp.int32)
        logp = jax.nn.log_softmax(x, axis=-1)
        if self.is_grad:
            return wrap((jnp.exp(logp) - jax.nn.one_hot(t, x.shape[-1], dtype=x.dtype)) / x.shape[0])
        return wrap(-jnp.mean(jnp.take_along_axis(logp, t[:, None], axis=1)))


class MultiMarginLoss(Primitive):
    """``ops.MultiMarginLoss(p=1, margin=1.0, reduction='mean')(inputs, target, weight=None)``: per sample
    ``sum over i != y of weight[y] * max(0, margin - x[y] + x[i]) ** p / C`` (``target`` int64)."""

    @prim_attr_register
    def __init__(self, p: int = 1, margin: float = 1.0, reduction: str = "mean") -> None:
        _reduction(reduction, "MultiMarginLoss")
        if p not in (1, 2):
            raise ValueError(msg("MultiMarginLoss", "p", "1 or 2", p))

    def __call__(self, inputs, target, weight=None) -> Tensor:
        x = arr(inputs, "MultiMarginLoss", "inputs", "f")
        t = arr(target, "MultiMarginLoss", "target")
        if t.dtype != jnp.int64:
            raise TypeError("For primitive[MultiMarginLoss], the input argument[target] must be a type of "
                            f"{{Tensor[Int64]}}, but got Tensor[{Tensor._wrap(t).dtype}].")
        t = t.astype(jnp.int32)
        xy = jnp.take_along_axis(x, t[:, None], axis=1)
        m = jnp.maximum(0.0, self.margin - xy + x) ** self.p
        if weight is not None:
            m = m * arr(weight, "MultiMarginLoss", "weight", "f")[t][:, None]
        m = jnp.where(jax.nn.one_hot(t, x.shape[1], dtype=bool), 0.0, m)
        return wrap(_reduce(jnp.sum(m, axis=1) / x.shape[1], self.reduction).astype(x.dtype))


class MultilabelMarginLoss(Primitive):
    """``ops.MultilabelMarginLoss(reduction='mean')(x, target)``: ``(loss, is_target)``; ``target`` lists each
    sample's classes, ended by -1. Per sample: ``sum over targets j and non-targets i of
    max(0, 1 - (x[j] - x[i])) / C``."""

    @prim_attr_register
    def __init__(self, reduction: str = "mean") -> None:
        _reduction(reduction, "MultilabelMarginLoss")

    def __call__(self, x, target) -> tuple:
        a = arr(x, "MultilabelMarginLoss", "x", "f")
        t = arr(target, "MultilabelMarginLoss", "target", "i").astype(jnp.int32)
        c = a.shape[-1]
        valid = jnp.cumprod(t >= 0, axis=-1).astype(bool)
        is_target = jnp.zeros(a.shape, bool)
        rows = jnp.arange(a.shape[0])[:, None]
        is_target = is_target.at[rows, jnp.where(valid, t, 0)].max(valid)
        xt = jnp.take_along_axis(a, jnp.where(valid, t, 0), axis=1)
        hinge = jnp.maximum(0.0, 1 - (xt[:, :, None] - a[:, None, :]))
        hinge = jnp.where(valid[:, :, None] & ~is_target[:, None, :], hinge, 0.0)
        loss = jnp.sum(hinge, axis=(1, 2)) / c
        return wrap(_reduce(loss, self.reduction).astype(a.dtype)), wrap(is_target.astype(jnp.int32))


# ---------------------------------------------------------------------------------- dropout
def _keep_prob(value, where: str) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 < value <= 1.0:
        raise ValueError(msg(where, "keep_prob", "a float in (0, 1]", value))


class Dropout(Primitive):
    """``ops.Dropout(keep_prob=0.5, Seed0=0, Seed1=0)(x)``: ``(x * mask / keep_prob, mask)`` (mask of x's dtype)."""

    @prim_attr_register
    def __init__(self, keep_prob: float = 0.5, Seed0: int = 0, Seed1: int = 0) -> None:  # noqa: N803
        _keep_prob(keep_prob, "Dropout")

    def __call__(self, x) -> tuple:
        a = arr(x, "Dropout", "x", "f")
        if self.keep_prob == 1.0:
            return wrap(a), wrap(jnp.ones_like(a))
        mask = jax.random.bernoulli(next_key(), self.keep_prob, a.shape).astype(a.dtype)
        return wrap(a * mask / jnp.asarray(self.keep_prob, a.dtype)), wrap(mask)


class _ChannelDropout(Primitive):
    _ndim = 4

    @prim_attr_register
    def __init__(self, keep_prob: float = 0.5) -> None:
        _keep_prob(keep_prob, self.name)

    def __call__(self, x) -> tuple:
        a = arr(x, self.name, "x", "f")
        if a.ndim != self._ndim:
            raise ValueError(f"For '{self.name}', the 'x' should be {self._ndim}-D, but got {a.ndim}-D.")
        keep = jax.random.bernoulli(next_key(), self.keep_prob, a.shape[:2] + (1,) * (a.ndim - 2))
        mask = jnp.broadcast_to(keep, a.shape)
        return wrap(jnp.where(mask, a / jnp.asarray(self.keep_prob, a.dtype), 0).astype(a.dtype)), wrap(mask)


class Dropout2D(_ChannelDropout):
    """``ops.Dropout2D(keep_prob=0.5)(x)``: whole channels of NCHW ``x`` zeroed; ``(output, bool mask)``."""


class Dropout3D(_ChannelDropout):
    """``ops.Dropout3D(keep_prob=0.5)(x)``: whole channels of NCDHW ``x`` zeroed; ``(output, bool mask)``."""

    _ndim = 5


# ---------------------------------------------------------------------------------- dense and distances
class Dense(Primitive):
    """``ops.Dense()(x, w, b=None)``: ``x @ w.T + b``."""

    def __call__(self, x, w, b=None) -> Tensor:
        from sporax.ops.function.linalg_func import dense

        return dense(x, w, b)


def _pnorm(d, p: float):
    if p == 0:
        return jnp.sum(d != 0, axis=-1).astype(d.dtype)
    if math.isinf(p):
        return jnp.max(jnp.abs(d), axis=-1)
    return jnp.sum(jnp.abs(d) ** p, axis=-1) ** (1.0 / p)


class Cdist(Primitive):
    """``ops.Cdist(p=2.0)(input_x, input_y)``: batched pairwise p-norm distances ``(B, P, R)``."""

    @prim_attr_register
    def __init__(self, p: float = 2.0) -> None:
        if isinstance(p, bool) or not isinstance(p, float) or p < 0:
            raise TypeError(msg("Cdist", "p", "a float >= 0", p))

    def __call__(self, input_x, input_y) -> Tensor:
        a, b = arr(input_x, "Cdist", "input_x", "f"), arr(input_y, "Cdist", "input_y", "f")
        return wrap(_pnorm(a[..., :, None, :] - b[..., None, :, :], self.p).astype(a.dtype))


class Pdist(Primitive):
    """``ops.Pdist(p=2.0)(x)``: the p-norm distances of every row pair ``i < j`` of a 2-D ``x``, in row order."""

    @prim_attr_register
    def __init__(self, p: float = 2.0) -> None:
        if isinstance(p, bool) or not isinstance(p, float) or p < 0:
            raise TypeError(msg("Pdist", "p", "a float >= 0", p))

    def __call__(self, x) -> Tensor:
        a = arr(x, "Pdist", "x", "f")
        i, j = np.triu_indices(a.shape[0], 1)
        return wrap(_pnorm(a[i] - a[j], self.p).astype(a.dtype))


__all__ = ["CeLU", "GLU", "HShrink", "SoftShrink", "Gelu", "FastGelu", "LRN", "MaxPool", "AvgPool", "AvgPool3D",
           "MaxPool3D", "AdaptiveAvgPool2D", "AdaptiveMaxPool2D", "MaxPoolWithArgmax", "MaxPoolWithArgmaxV2",
           "BatchNorm", "LayerNorm", "NLLLoss", "KLDivLoss", "SmoothL1Loss", "SoftMarginLoss", "BinaryCrossEntropy",
           "SoftmaxCrossEntropyWithLogits", "SparseSoftmaxCrossEntropyWithLogits", "MultiMarginLoss",
           "MultilabelMarginLoss", "Dropout", "Dropout2D", "Dropout3D", "Dense", "Cdist", "Pdist"]
