"""Matrix products of ``mindspore.ops`` built on MindSpore's MatMul/Ger Primitives: ``mm``, ``ger``, ``dense``.

``mm`` and ``ger`` are the ``MatMul`` and ``Ger`` Primitives in MindSpore 2.10, so amp O1 casts
them (:mod:`sporax.ops._amp_scope`); ``dense`` is not, and stays in float32 under O1.
"""

from __future__ import annotations

import jax.numpy as jnp

from sporax.common.tensor import Tensor
from sporax.ops import _amp_scope
from sporax.ops.function.math_func import kind, tensor_arg

__all__ = ["mm", "ger", "dense"]


def _same_dtype(x: Tensor, y: Tensor, where: str, a1: str = "x1", a2: str = "x2") -> None:
    if x.dtype != y.dtype:
        raise TypeError(f"For '{where}', the type of '{a2}' should be same as '{a1}', but got '{a1}' with type "
                        f"Tensor[{x.dtype}] and '{a2}' with type Tensor[{y.dtype}].")


@_amp_scope.as_primitive("MatMul")
def mm(input, mat2) -> Tensor:  # noqa: A002
    """``input @ mat2`` for two 2-D Tensors of one dtype."""
    tensor_arg(input, "MatMul", "x1")
    tensor_arg(mat2, "MatMul", "x2")
    _same_dtype(input, mat2, "MatMul")
    a, b = input._jax(), mat2._jax()
    if a.ndim != 2 or b.ndim != 2:
        raise ValueError("MatMul inputs should have the same dimension size and equal to 2.")
    if a.shape[1] != b.shape[0]:
        raise ValueError(f"For 'MatMul' the input dimensions must be equal, but got 'x1_col': {a.shape[1]} and "
                         f"'x2_row': {b.shape[0]}.")
    return Tensor._wrap(jnp.matmul(a, b))


@_amp_scope.as_primitive("Ger")
def ger(input, vec2) -> Tensor:  # noqa: A002
    """The outer product of two 1-D float Tensors of one dtype: shape ``(n, m)``."""
    tensor_arg(input, "Ger", "x1")
    tensor_arg(vec2, "Ger", "x2")
    for arg, t in (("x1", input), ("x2", vec2)):
        if kind(t.dtype.np_dtype) != "f" or t.dtype.np_dtype == jnp.bfloat16:
            raise TypeError(f"For primitive[Ger], the input argument[{arg}] must be a type of {{Tensor[Float16], "
                            f"Tensor[Float32], Tensor[Float64]}}, but got Tensor[{t.dtype}].")
    if input.dtype != vec2.dtype:
        raise TypeError("For primitive[Ger], the input type must be same.")
    for arg, t in (("x1", input), ("x2", vec2)):
        if t.ndim != 1:
            raise ValueError(f"For primitive[Ger], the {arg} rank must be equal to 1, but got {t.ndim}.")
    return Tensor._wrap(jnp.outer(input._jax(), vec2._jax()))


def dense(input, weight, bias=None) -> Tensor:  # noqa: A002
    """``input @ weight.T + bias`` (``weight`` 2-D ``(out, in)`` or 1-D ``(in,)``)."""
    tensor_arg(input, "Dense", "x")
    tensor_arg(weight, "Dense", "w")
    a, w = input._jax(), weight._jax()
    if a.shape[-1] != w.shape[-1]:
        raise ValueError(f"Dense shape error, got x_col: {a.shape[-1]}, w_row: {w.shape[-1 if w.ndim == 1 else 1]}. "
                         "In Dense x_col and w_row should be equal. if the dim of w is 2.")
    out = jnp.matmul(a, w.T if w.ndim == 2 else w)
    if bias is not None:
        out = out + tensor_arg(bias, "Dense", "b")._jax()
    return Tensor._wrap(out)
