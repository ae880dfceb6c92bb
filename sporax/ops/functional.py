"""Functional ops of ``mindspore.ops`` (``ops.matmul``, ``ops.reshape``, ...), on jax.numpy.

Binary arithmetic ops take their result dtype from :mod:`sporax.common._promotion`
(MindSpore's promotion table, one place for every op): ``_promotion.binary(jnp.fn, x, y, op=...)``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sporax.common import _promotion
from sporax.common.tensor import Tensor, unwrap
from sporax.ops import _amp_scope

__all__ = ["matmul", "add", "sub", "mul", "div", "reshape", "transpose", "cast", "ones", "zeros",
           "ones_like", "zeros_like", "fill", "reduce_sum", "sum", "mean", "square", "sqrt", "exp",
           "log", "relu", "sigmoid", "tanh", "softmax", "concat", "stack", "shape", "assign", "abs",
           "maximum", "minimum", "argmax", "expand_dims", "squeeze", "flatten", "cat"]


def _w(x) -> Tensor:
    return Tensor._wrap(x)


def matmul(x, y) -> Tensor:
    return _promotion.binary(jnp.matmul, x, y)


def add(x, y) -> Tensor:
    return _promotion.binary(jnp.add, x, y)


def sub(x, y) -> Tensor:
    return _promotion.binary(_promotion.subtract, x, y)


def mul(x, y) -> Tensor:
    return _promotion.binary(jnp.multiply, x, y, op="mul")


def div(x, y) -> Tensor:
    return _promotion.binary(jnp.true_divide, x, y, op="truediv")


def maximum(x, y) -> Tensor:
    return _promotion.binary(jnp.maximum, x, y)


def minimum(x, y) -> Tensor:
    return _promotion.binary(jnp.minimum, x, y)


def reshape(x, shape) -> Tensor:
    return _w(jnp.reshape(unwrap(x), tuple(shape)))


def transpose(x, perm) -> Tensor:
    return _w(jnp.transpose(unwrap(x), tuple(perm)))


def expand_dims(x, axis: int) -> Tensor:
    return _w(jnp.expand_dims(unwrap(x), axis))


def squeeze(x, axis=None) -> Tensor:
    return _w(jnp.squeeze(unwrap(x), axis))


def flatten(x) -> Tensor:
    a = unwrap(x)
    return _w(jnp.reshape(a, (a.shape[0], -1)))


def cast(x, dtype) -> Tensor:
    return _w(jnp.asarray(unwrap(x)).astype(dtype.np_dtype))


def ones(shape, dtype=None) -> Tensor:
    from sporax.common import dtype as mstype

    return _w(jnp.ones(shape, (dtype or mstype.float32).np_dtype))


def zeros(shape, dtype=None) -> Tensor:
    from sporax.common import dtype as mstype

    return _w(jnp.zeros(shape, (dtype or mstype.float32).np_dtype))


def ones_like(x) -> Tensor:
    return _w(jnp.ones_like(unwrap(x)))


def zeros_like(x) -> Tensor:
    return _w(jnp.zeros_like(unwrap(x)))


def fill(dtype, shape, value) -> Tensor:
    return _w(jnp.full(shape, value, dtype.np_dtype))


def _axis(axis):
    if axis == () or axis is None:
        return None
    return tuple(axis) if isinstance(axis, list) else axis


def reduce_sum(x, axis=(), keep_dims=False) -> Tensor:
    return _w(jnp.sum(unwrap(x), axis=_axis(axis), keepdims=keep_dims))


def sum(x, dim=None, keepdim=False) -> Tensor:  # noqa: A001 - MindSpore's name
    return _w(jnp.sum(unwrap(x), axis=_axis(dim), keepdims=keepdim))


def mean(x, axis=None, keep_dims=False) -> Tensor:
    return _w(jnp.mean(unwrap(x), axis=_axis(axis), keepdims=keep_dims))


def argmax(x, axis=None, keepdims=False) -> Tensor:
    return _w(jnp.argmax(unwrap(x), axis=axis, keepdims=keepdims))


def square(x) -> Tensor:
    return _w(jnp.square(unwrap(x)))


def sqrt(x) -> Tensor:
    return _w(jnp.sqrt(unwrap(x)))


def exp(x) -> Tensor:
    return _w(jnp.exp(unwrap(x)))


def log(x) -> Tensor:
    return _w(jnp.log(unwrap(x)))


def abs(x) -> Tensor:  # noqa: A001 - MindSpore's name
    return _w(jnp.abs(unwrap(x)))


@_amp_scope.as_primitive("ReLU")
def relu(x) -> Tensor:
    return _w(jax.nn.relu(unwrap(x)))


def sigmoid(x) -> Tensor:
    return _w(jax.nn.sigmoid(unwrap(x)))


def tanh(x) -> Tensor:
    return _w(jnp.tanh(unwrap(x)))


def softmax(x, axis: int = -1) -> Tensor:
    return _w(jax.nn.softmax(unwrap(x), axis=axis))


def concat(tensors, axis: int = 0) -> Tensor:
    return _w(jnp.concatenate([unwrap(t) for t in tensors], axis=axis))


cat = concat


def stack(tensors, axis: int = 0) -> Tensor:
    return _w(jnp.stack([unwrap(t) for t in tensors], axis=axis))


def shape(x) -> tuple:
    return tuple(x.shape)


def assign(variable, value):
    """``variable`` takes ``value``'s data in place (a Parameter keeps its dtype and shape)."""
    return variable.set_data(value if isinstance(value, Tensor) else Tensor(value))


# The rest of MindSpore's functional families live in ``sporax.ops.function``; they are part of
# ``ops.functional`` too, as in MindSpore.
from sporax.ops.function import array_func as _array_func  # noqa: E402
from sporax.ops.function import grad_func as _grad_func  # noqa: E402
from sporax.ops.function import linalg_func as _linalg_func  # noqa: E402
from sporax.ops.function import math_func as _math_func  # noqa: E402
from sporax.ops.function import nn_func as _nn_func  # noqa: E402
from sporax.ops.function.array_func import *  # noqa: E402,F403
from sporax.ops.function.grad_func import *  # noqa: E402,F403
from sporax.ops.function.linalg_func import *  # noqa: E402,F403
from sporax.ops.function.math_func import *  # noqa: E402,F403
from sporax.ops.function.nn_func import *  # noqa: E402,F403

_INTERNAL = {"check_axis", "fill_value", "conv_nd"}
__all__ += [n for n in (*_math_func.__all__, *_array_func.__all__, *_nn_func.__all__, *_grad_func.__all__,
                               *_linalg_func.__all__) if n not in _INTERNAL]
