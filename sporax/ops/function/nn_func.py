"""Neural-network functional ops of ``mindspore.ops``: convolutions, ``bias_add``, activations, BCE on logits."""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sporax.common._validation import check_str_in, msg
from sporax.common.tensor import Tensor
from sporax.ops import _amp_scope
from sporax.ops.function.math_func import kind, tensor_arg, unary

__all__ = ["conv2d", "conv3d", "conv_nd", "bias_add", "binary_cross_entropy_with_logits",
           "sigmoid_cross_entropy_with_logits", "log_softmax", "gelu", "fast_gelu", "silu", "softplus", "softsign",
           "mish", "selu", "elu", "relu6", "hardswish", "hardsigmoid", "leaky_relu", "l2_normalize", "prelu"]


def _int_tuple(value, n: int, arg: str, where: str, minimum: int = 1) -> tuple:
    """``value`` as ``n`` ints: an int, ``n`` ints, or (MindSpore's 4/5-d form) ``n + 2`` ints."""
    if isinstance(value, int) and not isinstance(value, bool):
        out = (value,) * n
    elif isinstance(value, (tuple, list)) and len(value) == n:
        out = tuple(value)
    elif isinstance(value, (tuple, list)) and len(value) == n + 2:
        out = tuple(value[2:])
    else:
        raise TypeError(msg(where, arg, f"an int or a tuple of {n} ints", value))
    for v in out:
        if isinstance(v, bool) or not isinstance(v, int) or v < minimum:
            raise ValueError(msg(where, arg, f"made of ints >= {minimum}", value))
    return out


def conv_pads(pad, n: int, where: str) -> tuple:
    """Explicit padding as ``n`` (low, high) pairs from an int, ``n`` ints (symmetric) or ``2n`` ints."""
    if isinstance(pad, int) and not isinstance(pad, bool):
        flat = (pad,) * (2 * n)
    elif isinstance(pad, (tuple, list)) and len(pad) == n:
        flat = tuple(v for p in pad for v in (p, p))
    elif isinstance(pad, (tuple, list)) and len(pad) == 2 * n:
        flat = tuple(pad)
    else:
        raise TypeError(msg(where, "pad", f"an int or a tuple of {n} or {2 * n} ints", pad))
    if any(isinstance(v, bool) or not isinstance(v, int) or v < 0 for v in flat):
        raise ValueError(msg(where, "pad", "made of ints >= 0", pad))
    return tuple((flat[2 * i], flat[2 * i + 1]) for i in range(n))


def conv_nd(x, weight, stride, pad_mode: str, pads, dilation, groups: int, where: str) -> Tensor:
    """N-d convolution (channels first) with checked shapes; ``pads`` are (low, high) pairs for 'pad'."""
    tensor_arg(x, where, "x")
    tensor_arg(weight, where, "weight")
    a, w = x._jax(), weight._jax()
    n = w.ndim - 2
    if a.ndim != n + 2 or w.ndim != n + 2:
        raise ValueError(f"For '{where}', 'x' and 'weight' should be {n + 2}-D, but got shapes {tuple(a.shape)} "
                         f"and {tuple(w.shape)}.")
    if a.dtype != w.dtype:
        raise TypeError(f"For '{where}', 'x' and 'weight' should have one dtype, but got {x.dtype} and {weight.dtype}.")
    if kind(a.dtype) != "f":
        raise TypeError(f"For '{where}', the 'x' should be a float Tensor, but got {x.dtype}.")
    if a.shape[1] != w.shape[1] * groups:
        raise ValueError(f"For '{where}', the input channels ({a.shape[1]}) should equal weight.shape[1] * group "
                         f"({w.shape[1]} * {groups}).")
    if w.shape[0] % groups:
        raise ValueError(f"For '{where}', the output channels ({w.shape[0]}) should be divisible by group ({groups}).")
    padding = {"same": "SAME", "valid": "VALID"}.get(pad_mode, pads)
    spec = "NCDHW"[: 2] + "DHW"[3 - n:]
    kernel = "OI" + "DHW"[3 - n:]
    y = jax.lax.conv_general_dilated(a, w, window_strides=stride, padding=padding, rhs_dilation=dilation,
                                     dimension_numbers=(spec, kernel, spec), feature_group_count=groups)
    return Tensor._wrap(y.astype(a.dtype))


def _functional_conv(n: int, where: str, input, weight, bias, stride, pad_mode, padding, dilation, groups):  # noqa: A002
    if isinstance(padding, str):
        pad_mode, padding = padding, 0
    pad_mode = check_str_in(pad_mode, ("valid", "same", "pad"), "pad_mode", where)
    pads = conv_pads(padding, n, where)
    if pad_mode != "pad" and any(v for p in pads for v in p):
        raise ValueError(f"For '{where}', the 'padding' should be 0 when 'pad_mode' is '{pad_mode}', but got "
                         f"{padding!r}.")
    out = _CONV_CORE[n](input, weight, _int_tuple(stride, n, "stride", where), pad_mode, pads,
                  _int_tuple(dilation, n, "dilation", where), groups, where)
    return out if bias is None else bias_add(out, bias)


# the convolution without its bias is MindSpore's Conv2D/Conv3D Primitive (amp O1 casts it)
_CONV_CORE = {2: _amp_scope.as_primitive("Conv2D")(conv_nd), 3: _amp_scope.as_primitive("Conv3D")(conv_nd)}


def conv2d(input, weight, bias=None, stride=1, pad_mode: str = "valid", padding=0, dilation=1,  # noqa: A002
           groups: int = 1) -> Tensor:
    """2-D convolution of ``(N, C, H, W)`` input with ``(C_out, C/groups, kh, kw)`` weight (plus ``bias``)."""
    return _functional_conv(2, "conv2d", input, weight, bias, stride, pad_mode, padding, dilation, groups)


def conv3d(input, weight, bias=None, stride=1, pad_mode: str = "valid", padding=0, dilation=1,  # noqa: A002
           groups: int = 1) -> Tensor:
    """3-D convolution of ``(N, C, D, H, W)`` input with ``(C_out, C/groups, kd, kh, kw)`` weight."""
    return _functional_conv(3, "conv3d", input, weight, bias, stride, pad_mode, padding, dilation, groups)


def bias_add(input_x, bias, data_format: str = "NCHW") -> Tensor:
    """``input_x + bias`` along the channel axis (1 for NCHW/NCDHW, last for NHWC); ``bias`` is 1-D."""
    tensor_arg(input_x, "BiasAdd", "input_x")
    tensor_arg(bias, "BiasAdd", "bias")
    a, b = input_x._jax(), bias._jax()
    if b.ndim != 1:
        raise ValueError(f"For 'BiasAdd', the 'bias' should be 1-D, but got shape {tuple(b.shape)}.")
    if a.ndim < 2:
        raise ValueError(f"For 'BiasAdd', the 'input_x' should be at least 2-D, but got shape {tuple(a.shape)}.")
    if a.dtype != b.dtype:
        raise TypeError(f"For 'BiasAdd', 'input_x' and 'bias' should have one dtype, but got {input_x.dtype} "
                        f"and {bias.dtype}.")
    axis = a.ndim - 1 if data_format == "NHWC" else 1
    if a.shape[axis] != b.shape[0]:
        raise ValueError(f"For 'BiasAdd', the 'bias' length ({b.shape[0]}) should equal the channel dimension "
                         f"({a.shape[axis]}).")
    shape = [1] * a.ndim
    shape[axis] = b.shape[0]
    return Tensor._wrap(a + jnp.reshape(b, shape))


def _reduce_loss(loss, reduction: str, where: str):
    check_str_in(reduction, ("mean", "sum", "none"), "reduction", where)
    if reduction == "mean":
        return jnp.mean(loss)
    if reduction == "sum":
        return jnp.sum(loss)
    return loss


def _bce_logits(x, y, weight=None, pos_weight=None):
    log_sig, log_one_minus = jax.nn.log_sigmoid(x), jax.nn.log_sigmoid(-x)
    pos = y * log_sig
    if pos_weight is not None:
        pos = pos * pos_weight
    loss = -(pos + (1 - y) * log_one_minus)
    return loss if weight is None else loss * weight


def binary_cross_entropy_with_logits(input, target, weight=None, pos_weight=None,  # noqa: A002
                                     reduction: str = "mean") -> Tensor:
    """``-w [pw * y log s(x) + (1 - y) log(1 - s(x))]``, reduced; computed stably from logits."""
    where = "binary_cross_entropy_with_logits"
    tensor_arg(input, where, "input")
    tensor_arg(target, where, "target")
    x, y = input._jax(), target._jax()
    if kind(x.dtype) != "f":
        raise TypeError(f"For '{where}', the 'input' should be a float Tensor, but got {input.dtype}.")
    w = None if weight is None else tensor_arg(weight, where, "weight")._jax().astype(x.dtype)
    pw = None if pos_weight is None else tensor_arg(pos_weight, where, "pos_weight")._jax().astype(x.dtype)
    loss = _bce_logits(x, y.astype(x.dtype), w, pw)
    return Tensor._wrap(_reduce_loss(loss, reduction, where).astype(x.dtype))


def sigmoid_cross_entropy_with_logits(logits, label) -> Tensor:
    """Elementwise ``-label log s(x) - (1 - label) log(1 - s(x))`` (``SigmoidCrossEntropyWithLogits``)."""
    where = "SigmoidCrossEntropyWithLogits"
    tensor_arg(logits, where, "logits")
    tensor_arg(label, where, "label")
    if logits.shape != label.shape:
        raise ValueError(f"For '{where}', 'logits' and 'label' should have one shape, but got {logits.shape} "
                         f"and {label.shape}.")
    if logits.dtype != label.dtype:
        raise TypeError(f"For '{where}', 'logits' and 'label' should have one dtype, but got {logits.dtype} "
                        f"and {label.dtype}.")
    x = logits._jax()
    if kind(x.dtype) != "f":
        raise TypeError(f"For '{where}', the 'logits' should be a float Tensor, but got {logits.dtype}.")
    return Tensor._wrap(_bce_logits(x, label._jax()).astype(x.dtype))


def log_softmax(logits, axis: int = -1) -> Tensor:
    return unary(lambda a: jax.nn.log_softmax(a, axis=axis), logits, "LogSoftmax")


def gelu(input, approximate: str = "none") -> Tensor:  # noqa: A002
    check_str_in(approximate, ("none", "tanh"), "approximate", "gelu")
    return unary(lambda a: jax.nn.gelu(a, approximate=approximate == "tanh"), input, "GeLU")


def fast_gelu(x) -> Tensor:
    """``x / (1 + exp(-1.702 |x|)) * exp(0.851 (x - |x|))``."""
    return unary(lambda a: a / (1 + jnp.exp(-1.702 * jnp.abs(a))) * jnp.exp(0.851 * (a - jnp.abs(a))), x, "FastGeLU")


def silu(input) -> Tensor:  # noqa: A002
    return unary(jax.nn.silu, input, "SiLU")


def softplus(input, beta=1, threshold=20) -> Tensor:  # noqa: A002
    """``log(1 + exp(beta x)) / beta``, linear where ``beta x > threshold``."""

    def fn(a):
        scaled = a * beta
        return jnp.where(scaled > threshold, a, jax.nn.softplus(scaled) / beta).astype(a.dtype)

    return unary(fn, input, "Softplus")


def softsign(x) -> Tensor:
    return unary(lambda a: a / (1 + jnp.abs(a)), x, "Softsign")


def mish(x) -> Tensor:
    return unary(lambda a: a * jnp.tanh(jax.nn.softplus(a)), x, "Mish")


def selu(input_x) -> Tensor:
    """``scale * (x if x > 0 else alpha * (exp(x) - 1))``; integer input gives ``trunc(scale * max(x, 0))`` as
    MindSpore's integer kernel does."""
    alpha, scale = 1.6732632423543772, 1.0507009873554805

    def fn(a):
        if kind(a.dtype) == "i":
            return (scale * jnp.maximum(a, 0).astype(jnp.float32)).astype(a.dtype)
        return (scale * jnp.where(a > 0, a, alpha * jnp.expm1(a))).astype(a.dtype)

    return unary(fn, input_x, "SeLU", "fi")


def elu(input_x, alpha: float = 1.0) -> Tensor:
    return unary(lambda a: jnp.where(a > 0, a, alpha * jnp.expm1(a)).astype(a.dtype), input_x, "Elu")


def relu6(x) -> Tensor:
    return unary(lambda a: jnp.clip(a, 0, 6), x, "ReLU6")


def hardswish(input) -> Tensor:  # noqa: A002
    def fn(a):
        if kind(a.dtype) == "i":  # integer kernels divide toward zero
            p = a * jnp.clip(a + 3, 0, 6)
            return jnp.sign(p) * (jnp.abs(p) // 6)
        return a * jnp.clip(a + 3, 0, 6) / 6

    return unary(fn, input, "HSwish", "fi")


def hardsigmoid(input) -> Tensor:  # noqa: A002
    def fn(a):
        if kind(a.dtype) == "i":
            return jnp.clip(a + 3, 0, 6) // 6
        return jnp.clip(a + 3, 0, 6) / 6

    return unary(fn, input, "HSigmoid", "fi")


def leaky_relu(input, alpha: float = 0.2) -> Tensor:  # noqa: A002
    return unary(lambda a: jnp.where(a >= 0, a, a * alpha).astype(a.dtype), input, "LeakyReLU", "fi")


@_amp_scope.as_primitive("PReLU")
def prelu(x, weight) -> Tensor:
    """``x`` where ``x > 0``, else ``weight * x``; ``weight`` (1-D) is per channel (axis 1) or one value."""
    tensor_arg(x, "PReLU", "x")
    tensor_arg(weight, "PReLU", "weight")
    for arg, t in (("x", x), ("weight", weight)):
        if t.dtype.np_dtype not in (jnp.float16, jnp.float32):
            raise TypeError(f"For primitive[PReLU], the input argument[{arg}] must be a type of {{Float16, Float32}}, "
                            f"but got {t.dtype}.")
    a, w = x._jax(), weight._jax().reshape(-1)
    channels = a.shape[1] if a.ndim >= 2 else 1
    if w.shape[0] not in (1, channels):
        raise ValueError(f"For 'PReLU', the 'weight' should have 1 or {channels} (channel) elements, but got "
                         f"{w.shape[0]}.")
    if a.ndim >= 2 and w.shape[0] == channels:
        w = w.reshape((1, channels) + (1,) * (a.ndim - 2))
    return Tensor._wrap(jnp.where(a > 0, a, a * w.astype(a.dtype)))


def l2_normalize(x, axis=0, epsilon: float = 1e-4) -> Tensor:
    """``x / sqrt(max(sum(x ** 2, axis), epsilon))``."""
    def fn(a):
        axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
        return a / jnp.sqrt(jnp.maximum(jnp.sum(a * a, axis=axes, keepdims=True), epsilon))

    return unary(fn, x, "L2Normalize")
