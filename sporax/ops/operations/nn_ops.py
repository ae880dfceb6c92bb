"""Neural-network operator classes of ``mindspore.ops.operations``: convolutions, activations, losses.

The ``Apply*`` optimizer primitives live in :mod:`sporax.ops.operations._optim_ops` and are
re-exported here, as MindSpore keeps them in ``nn_ops``.
"""

from __future__ import annotations

import jax.numpy as jnp

from sporax.common._validation import check_str_in, msg
from sporax.common.tensor import Tensor
from sporax.ops import functional as F
from sporax.ops.function import math_func as M
from sporax.ops.function import nn_func as N
from sporax.ops.operations._optim_ops import *  # noqa: F403
from sporax.ops.operations._optim_ops import __all__ as _optim_all
from sporax.ops.primitive import Primitive, prim_attr_register


def _kernel(value, n: int, where: str) -> tuple:
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * n
    if not isinstance(value, tuple) or len(value) != n or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value
    ):
        raise ValueError(msg(where, "kernel_size", f"an int or a tuple of {n} positive ints", value))
    return value


def _strides(value, n: int, arg: str, where: str) -> tuple:
    """MindSpore's stored form: ``(1, 1, s...)`` from an int, ``n`` ints or ``n + 2`` ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        value = (value,) * n
    if isinstance(value, tuple) and len(value) == n:
        value = (1, 1, *value)
    if not isinstance(value, tuple) or len(value) != n + 2 or any(
        isinstance(v, bool) or not isinstance(v, int) or v < 1 for v in value
    ):
        raise ValueError(msg(where, arg, f"an int or a tuple of {n} or {n + 2} positive ints", value))
    return value


class _ConvND(Primitive):
    _n = 2
    _format = "NCHW"

    def _setup(self, out_channel, kernel_size, mode, pad_mode, pad, stride, dilation, group, data_format) -> None:
        where, n = self.name, self._n
        if isinstance(out_channel, bool) or not isinstance(out_channel, int) or out_channel < 1:
            raise ValueError(msg(where, "out_channel", "an int >= 1", out_channel))
        self.kernel_size = _kernel(kernel_size, n, where)
        self.add_prim_attr("kernel_size", self.kernel_size)
        if not isinstance(pad_mode, str):
            raise TypeError(msg(where, "pad_mode", "a str", pad_mode))
        self.add_prim_attr("pad_mode", check_str_in(pad_mode.lower(), ("valid", "same", "pad"), "pad_mode", where))
        pads = N.conv_pads(pad, n, where)
        if self.pad_mode != "pad" and any(v for p in pads for v in p):
            raise ValueError(f"For '{where}', the 'pad' should be 0 when 'pad_mode' is '{self.pad_mode}', but got "
                             f"{pad!r}; use pad_mode='pad' for explicit padding.")
        self._pads = pads
        self.add_prim_attr("pad", tuple(v for p in pads for v in p))
        self.add_prim_attr("stride", _strides(stride, n, "stride", where))
        self.add_prim_attr("dilation", _strides(dilation, n, "dilation", where))
        if isinstance(group, bool) or not isinstance(group, int) or group < 1:
            raise ValueError(msg(where, "group", "an int >= 1", group))
        if out_channel % group:
            raise ValueError(f"For '{where}', the 'out_channel' ({out_channel}) should be divisible by 'group' ({group}).")
        check_str_in(data_format, (self._format,), "data_format", where)
        self.add_prim_attr("groups", group)
        self.add_prim_attr("format", data_format)

    def __call__(self, x, weight) -> Tensor:
        M.tensor_arg(weight, self.name, "weight")
        if weight.shape and (weight.shape[0] != self.out_channel or tuple(weight.shape[2:]) != self.kernel_size):
            raise RuntimeError(f"For '{self.name}', the 'weight' should have shape (out_channel={self.out_channel}, "
                             f"C_in / group, *kernel_size={self.kernel_size}), but got {tuple(weight.shape)}.")
        return N.conv_nd(x, weight, self.stride[2:], self.pad_mode, self._pads, self.dilation[2:], self.group,
                         self.name)


class Conv2D(_ConvND):
    """``ops.Conv2D(out_channel, kernel_size, mode=1, pad_mode='valid', pad=0, stride=1, dilation=1, group=1,
    data_format='NCHW')(x, weight)``: 2-D convolution of ``(N, C, H, W)`` with ``(out_channel, C/group, kh, kw)``.

    ``pad`` is an int or ``(top, bottom, left, right)`` and needs ``pad_mode='pad'``; ``stride`` and
    ``dilation`` are stored, as in MindSpore, as 4-tuples ``(1, 1, h, w)``.
    """

    @prim_attr_register
    def __init__(self, out_channel: int, kernel_size, mode: int = 1, pad_mode: str = "valid", pad=0, stride=1,
                 dilation=1, group: int = 1, data_format: str = "NCHW") -> None:
        self._setup(out_channel, kernel_size, mode, pad_mode, pad, stride, dilation, group, data_format)


class Conv3D(_ConvND):
    """``ops.Conv3D(out_channel, kernel_size, mode=1, pad_mode='valid', pad=0, stride=1, dilation=1, group=1,
    data_format='NCDHW')(x, weight)``: 3-D convolution; ``pad`` is an int or ``(head, tail, top, bottom, left, right)``.
    """

    _n = 3
    _format = "NCDHW"

    @prim_attr_register
    def __init__(self, out_channel: int, kernel_size, mode: int = 1, pad_mode: str = "valid", pad=0, stride=1,
                 dilation=1, group: int = 1, data_format: str = "NCDHW") -> None:
        self._setup(out_channel, kernel_size, mode, pad_mode, pad, stride, dilation, group, data_format)


class BiasAdd(Primitive):
    """``ops.BiasAdd(data_format='NCHW')(input_x, bias)``: add a 1-D ``bias`` along the channel axis."""

    @prim_attr_register
    def __init__(self, data_format: str = "NCHW") -> None:
        check_str_in(data_format, ("NCHW", "NHWC", "NCDHW"), "data_format", "BiasAdd")

    def __call__(self, input_x, bias) -> Tensor:
        return N.bias_add(input_x, bias, self.data_format)


class Softmax(Primitive):
    """``ops.Softmax(axis=-1)(x)``."""

    @prim_attr_register
    def __init__(self, axis=-1) -> None:
        if isinstance(axis, int) and not isinstance(axis, bool):
            axis = (axis,)
        if not isinstance(axis, (tuple, list)) or not all(isinstance(a, int) for a in axis):
            raise TypeError(msg("Softmax", "axis", "an int or a tuple of int", axis))
        self.add_prim_attr("axis", tuple(axis))

    def __call__(self, x) -> Tensor:
        M.tensor_arg(x, "Softmax", "x")
        M.check_kind(x, "f", "Softmax", "x")
        return F.softmax(x, self.axis)


class LogSoftmax(Primitive):
    """``ops.LogSoftmax(axis=-1)(logits)``."""

    @prim_attr_register
    def __init__(self, axis: int = -1) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(msg("LogSoftmax", "axis", "an int", axis))

    def __call__(self, logits) -> Tensor:
        return N.log_softmax(logits, self.axis)


class ReLU(Primitive):
    """``ops.ReLU()(x)``: ``max(x, 0)``; int and bool keep their dtype."""

    def __call__(self, x) -> Tensor:
        M.tensor_arg(x, "ReLU", "x")
        return x.copy() if M.kind(x.dtype.np_dtype) == "b" else F.relu(x)


class PReLU(Primitive):
    """``ops.PReLU()(x, weight)``: :func:`sporax.ops.prelu` (on amp O1's white list)."""

    def __call__(self, x, weight) -> Tensor:
        return F.prelu(x, weight)


class Sigmoid(Primitive):
    """``ops.Sigmoid()(x)``: ``1 / (1 + exp(-x))`` for float Tensors."""

    def __call__(self, x) -> Tensor:
        M.tensor_arg(x, "Sigmoid", "x")
        M.check_kind(x, "f", "Sigmoid", "x")
        return F.sigmoid(x)


def _act(name: str, fn, doc: str):
    def __call__(self, x) -> Tensor:
        return fn(x)

    return type(name, (Primitive,), {"__call__": __call__, "__doc__": doc, "__module__": __name__})


ReLU6 = _act("ReLU6", N.relu6, "``ops.ReLU6()(x)``: ``min(max(x, 0), 6)``.")
GeLU = _act("GeLU", lambda x: N.gelu(x, "tanh"), "``ops.GeLU()(x)``: GELU, tanh approximation (MindSpore's kernel).")
FastGeLU = _act("FastGeLU", N.fast_gelu, "``ops.FastGeLU()(x)``.")
HSwish = _act("HSwish", N.hardswish, "``ops.HSwish()(x)``: ``x * relu6(x + 3) / 6``.")
HSigmoid = _act("HSigmoid", N.hardsigmoid, "``ops.HSigmoid()(x)``: ``relu6(x + 3) / 6``.")
Softplus = _act("Softplus", N.softplus, "``ops.Softplus()(x)``: ``log(1 + exp(x))``.")
Softsign = _act("Softsign", N.softsign, "``ops.Softsign()(x)``: ``x / (1 + |x|)``.")
Mish = _act("Mish", N.mish, "``ops.Mish()(x)``: ``x * tanh(softplus(x))``.")
SeLU = _act("SeLU", N.selu, "``ops.SeLU()(x)``.")
SiLU = _act("SiLU", N.silu, "``ops.SiLU()(x)``: ``x * sigmoid(x)``.")


class Elu(Primitive):
    """``ops.Elu(alpha=1.0)(x)``: ``x`` for ``x > 0``, else ``alpha * (exp(x) - 1)``."""

    @prim_attr_register
    def __init__(self, alpha: float = 1.0) -> None:
        if not isinstance(alpha, float):
            raise TypeError(msg("Elu", "alpha", "a float", alpha))
        if alpha != 1.0:
            raise ValueError(msg("Elu", "alpha", "1.0 (the only value MindSpore's Elu primitive supports; use "
                                 "ops.elu or nn.ELU for others)", alpha))

    def __call__(self, x) -> Tensor:
        return N.elu(x, self.alpha)


class SigmoidCrossEntropyWithLogits(Primitive):
    """``ops.SigmoidCrossEntropyWithLogits()(logits, label)``: elementwise BCE on logits (no reduction)."""

    def __call__(self, logits, label) -> Tensor:
        return N.sigmoid_cross_entropy_with_logits(logits, label)


class BCEWithLogitsLoss(Primitive):
    """``ops.BCEWithLogitsLoss(reduction='mean')(logits, label, weight, pos_weight)``."""

    @prim_attr_register
    def __init__(self, reduction: str = "mean") -> None:
        check_str_in(reduction, ("mean", "sum", "none"), "reduction", "BCEWithLogitsLoss")

    def __call__(self, logits, label, weight, pos_weight) -> Tensor:
        return N.binary_cross_entropy_with_logits(logits, label, weight, pos_weight, self.reduction)


class L2Loss(Primitive):
    """``ops.L2Loss()(x)``: ``sum(x ** 2) / 2``."""

    def __call__(self, x) -> Tensor:
        M.tensor_arg(x, "L2Loss", "x")
        M.check_kind(x, "f", "L2Loss", "x")
        a = x._jax()
        return Tensor._wrap((jnp.sum(jnp.square(a)) / 2).astype(a.dtype))


class L2Normalize(Primitive):
    """``ops.L2Normalize(axis=0, epsilon=1e-4)(x)``."""

    @prim_attr_register
    def __init__(self, axis=0, epsilon: float = 1e-4) -> None:
        pass

    def __call__(self, x) -> Tensor:
        return N.l2_normalize(x, self.axis, self.epsilon)


__all__ = ["PReLU", "Conv2D", "Conv3D", "BiasAdd", "Softmax", "LogSoftmax", "ReLU", "Sigmoid", "ReLU6", "GeLU", "FastGeLU",
           "HSwish", "HSigmoid", "Softplus", "Softsign", "Mish", "SeLU", "SiLU", "Elu",
           "SigmoidCrossEntropyWithLogits", "BCEWithLogitsLoss", "L2Loss", "L2Normalize", *_optim_all]
