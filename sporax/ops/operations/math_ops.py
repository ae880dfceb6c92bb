"""Math operator classes of ``mindspore.ops.operations`` (``ops.Add``, ``ops.Sin``, ``ops.ReduceSum``, ...).

Every class is a thin :class:`Primitive` over the functional op of the same family
(``ops.Add()(x, y)`` is ``ops.add(x, y)`` with MindSpore's dtype checks), so the project's
dtype promotion applies to both alike.
"""

from __future__ import annotations

import jax.numpy as jnp

from sporax.common import dtype as mstype
from sporax.common._validation import check_bool
from sporax.common.tensor import Tensor, unwrap
from sporax.ops import functional as F
from sporax.ops.function import math_func as M
from sporax.ops.function.array_func import check_axis
from sporax.ops.primitive import Primitive, prim_attr_register

_UNARY = {
    # name: (functional op, dtype kinds checked here or None when the functional op checks)
    "Sin": (M.sin, None), "Cos": (M.cos, None), "Tan": (M.tan, None), "Asin": (M.asin, None),
    "ACos": (M.acos, None), "Atan": (M.atan, None), "Sinh": (M.sinh, None), "Cosh": (M.cosh, None),
    "Asinh": (M.asinh, None), "Acosh": (M.acosh, None), "Atanh": (M.atanh, None), "Expm1": (M.expm1, None),
    "Log1p": (M.log1p, None), "Rsqrt": (M.rsqrt, None), "Erf": (M.erf, None), "Erfc": (M.erfc, None),
    "Erfinv": (M.erfinv, None), "Floor": (M.floor, None), "Ceil": (M.ceil, None), "Round": (M.round, None),
    "Sign": (M.sign, None), "Neg": (M.neg, None), "Reciprocal": (M.reciprocal, None), "Trunc": (M.trunc, None),
    "Rint": (M.rint, None), "LogicalNot": (M.logical_not, None), "IsNan": (M.isnan, None),
    "IsInf": (M.isinf, None), "IsFinite": (M.isfinite, None), "Invert": (M.invert, None),
    "Exp": (F.exp, "f"), "Log": (F.log, "f"), "Tanh": (F.tanh, "f"), "Square": (F.square, "fi"),
    "Abs": (F.abs, "fib"),
}


def _unary_class(name: str, fn, kinds):
    def __call__(self, x) -> Tensor:
        if kinds is not None:
            M.tensor_arg(x, name, "x")
            M.check_kind(x, kinds, name, "x")
        return fn(x)

    doc = f"``ops.{name}()(x)``: elementwise ``{fn.__name__}`` of a Tensor, with MindSpore's dtype rules."
    return type(name, (Primitive,), {"__call__": __call__, "__doc__": doc, "__module__": __name__})


for _name, (_fn, _kinds) in _UNARY.items():
    globals()[_name] = _unary_class(_name, _fn, _kinds)
Acos = globals()["ACos"]


class Sqrt(Primitive):
    """``ops.Sqrt()(x)``: square root; integer and bool input give float32."""

    def __call__(self, x) -> Tensor:
        M.tensor_arg(x, "Sqrt", "x")
        return F.sqrt(x.astype(mstype.float32) if M.kind(x.dtype.np_dtype) in "ib" else x)


class Inv(Primitive):
    """``ops.Inv()(x)``: ``1 / x``; integer input keeps its dtype (the quotient is truncated)."""

    def __call__(self, x) -> Tensor:
        M.tensor_arg(x, "Inv", "x")
        M.check_kind(x, "fi", "Inv", "x")
        return M.real_div(1 if M.kind(x.dtype.np_dtype) == "i" else 1.0, x)


_BINARY = {
    # name: (functional op, reject two bool operands)
    "Add": (F.add, True), "Sub": (F.sub, True), "Mul": (F.mul, False), "Maximum": (F.maximum, False),
    "Minimum": (F.minimum, True), "Pow": (M.pow, False), "FloorDiv": (M.floor_div, False),
    "FloorMod": (M.floor_mod, False), "Atan2": (M.atan2, False), "Xlogy": (M.xlogy, False),
    "Xdivy": (M.xdivy, False), "Equal": (M.equal, False), "NotEqual": (M.not_equal, False),
    "Less": (M.less, False), "LessEqual": (M.less_equal, False), "Greater": (M.greater, False),
    "GreaterEqual": (M.greater_equal, False), "LogicalAnd": (M.logical_and, False),
    "LogicalOr": (M.logical_or, False), "LogicalXor": (M.logical_xor, False),
    "TruncateDiv": (M.truncate_div, False), "TruncateMod": (M.truncate_mod, False),
    "SquaredDifference": (M.squared_difference, False), "DivNoNan": (M.div_no_nan, False),
    "RealDiv": (M.real_div, False), "Mod": (M.truncate_mod, False),
}


def _binary_class(name: str, fn, no_bool: bool):
    def __call__(self, x, y) -> Tensor:
        if no_bool:
            M.check_operands(x, y, name)
            if M.operand_kind(x) == "b" and M.operand_kind(y) == "b":
                raise TypeError(f"For '{name}', the inputs should be numbers, not both bool.")
        return fn(x, y)

    doc = f"``ops.{name}()(x, y)``: elementwise ``{fn.__name__}`` of two Tensors (or a Tensor and a number)."
    return type(name, (Primitive,), {"__call__": __call__, "__doc__": doc, "__module__": __name__})


for _name, (_fn, _no_bool) in _BINARY.items():
    globals()[_name] = _binary_class(_name, _fn, _no_bool)


class Div(Primitive):
    """``ops.Div()(x, y)``: true division; two integer/bool operands give float32."""

    def __call__(self, x, y) -> Tensor:
        M.check_operands(x, y, "Div")
        return F.div(x, y)


class AddN(Primitive):
    """``ops.AddN()(inputs)``: the sum of a list/tuple of Tensors of one shape and dtype."""

    def __call__(self, x) -> Tensor:
        return M.addn(x)


class MatMul(Primitive):
    """``ops.MatMul(transpose_a=False, transpose_b=False)(x, y)``: ``x @ y``, optionally transposing either side."""

    @prim_attr_register
    def __init__(self, transpose_a: bool = False, transpose_b: bool = False) -> None:
        check_bool(transpose_a, "transpose_a", self.name)
        check_bool(transpose_b, "transpose_b", self.name)

    def __call__(self, x, y) -> Tensor:
        a, b = unwrap(x), unwrap(y)
        if self.transpose_a:
            a = jnp.swapaxes(a, -1, -2)
        if self.transpose_b:
            b = jnp.swapaxes(b, -1, -2)
        return F.matmul(Tensor._wrap(a), Tensor._wrap(b))


class Ger(Primitive):
    """``ops.Ger()(x1, x2)``: the outer product of two 1-D float Tensors (on amp O1's white list)."""

    def __call__(self, x1, x2) -> Tensor:
        return F.ger(x1, x2)


class BatchMatMul(MatMul):
    """``ops.BatchMatMul(transpose_a=False, transpose_b=False)(x, y)``: matmul over the last two axes."""


class _Reduce(Primitive):
    _fn = staticmethod(jnp.sum)
    _kinds = "fib"

    @prim_attr_register
    def __init__(self, keep_dims: bool = False) -> None:
        check_bool(keep_dims, "keep_dims", self.name)

    def __call__(self, x, axis=()) -> Tensor:
        return M.reduce(self._fn, x, axis, self.keep_dims, self.name, self._kinds)


class ReduceSum(_Reduce):
    """``ops.ReduceSum(keep_dims=False, skip_mode=False)(x, axis=())``: sum over ``axis`` (``()``: all)."""

    @prim_attr_register
    def __init__(self, keep_dims: bool = False, skip_mode: bool = False) -> None:
        check_bool(keep_dims, "keep_dims", self.name)
        check_bool(skip_mode, "skip_mode", self.name)

    def __call__(self, x, axis=()) -> Tensor:
        if self.skip_mode and (axis == () or axis == []):
            return x
        return super().__call__(x, axis)


class ReduceMean(_Reduce):
    """``ops.ReduceMean(keep_dims=False)(x, axis=())``: mean over ``axis``."""

    _fn = staticmethod(jnp.mean)
    _kinds = "f"


class ReduceMax(_Reduce):
    _fn = staticmethod(jnp.max)


class ReduceMin(_Reduce):
    _fn = staticmethod(jnp.min)


class ReduceProd(_Reduce):
    _fn = staticmethod(jnp.prod)
    _kinds = "fi"


class ReduceAll(_Reduce):
    _fn = staticmethod(jnp.all)
    _kinds = "b"


class ReduceAny(_Reduce):
    _fn = staticmethod(jnp.any)
    _kinds = "b"


class Argmax(Primitive):
    """``ops.Argmax(axis=-1, output_type=mstype.int32)(x)``: indices of the maxima along ``axis``."""

    @prim_attr_register
    def __init__(self, axis: int = -1, output_type=mstype.int32) -> None:
        if output_type not in (mstype.int32, mstype.int64):
            raise TypeError(f"For 'Argmax', the 'output_type' should be int32 or int64, but got {output_type}.")

    def __call__(self, x) -> Tensor:
        M.tensor_arg(x, "Argmax", "x")
        a = x._jax()
        axis = check_axis(self.axis, a.ndim, "Argmax")
        return Tensor._wrap(jnp.argmax(a, axis=axis).astype(self.output_type.np_dtype))


class Argmin(Argmax):
    """``ops.Argmin(axis=-1, output_type=mstype.int32)(x)``: indices of the minima along ``axis``."""

    def __call__(self, x) -> Tensor:
        M.tensor_arg(x, "Argmin", "x")
        a = x._jax()
        axis = check_axis(self.axis, a.ndim, "Argmin")
        return Tensor._wrap(jnp.argmin(a, axis=axis).astype(self.output_type.np_dtype))


class ArgMaxWithValue(Primitive):
    """``ops.ArgMaxWithValue(axis=0, keep_dims=False)(x)``: ``(int64 indices, values)`` of the maxima."""

    _arg, _val = staticmethod(jnp.argmax), staticmethod(jnp.max)

    @prim_attr_register
    def __init__(self, axis: int = 0, keep_dims: bool = False) -> None:
        check_bool(keep_dims, "keep_dims", self.name)

    def __call__(self, x) -> tuple:
        M.tensor_arg(x, self.name, "x")
        a = x._jax()
        axis = check_axis(self.axis, a.ndim, self.name)
        index = self._arg(a, axis=axis, keepdims=self.keep_dims).astype(jnp.int64)
        return Tensor._wrap(index), Tensor._wrap(self._val(a, axis=axis, keepdims=self.keep_dims))


class ArgMinWithValue(ArgMaxWithValue):
    """``ops.ArgMinWithValue(axis=0, keep_dims=False)(x)``: ``(int64 indices, values)`` of the minima."""

    _arg, _val = staticmethod(jnp.argmin), staticmethod(jnp.min)


class _Cumulative(Primitive):
    _fn = staticmethod(jnp.cumsum)

    @prim_attr_register
    def __init__(self, exclusive: bool = False, reverse: bool = False) -> None:
        check_bool(exclusive, "exclusive", self.name)
        check_bool(reverse, "reverse", self.name)

    def __call__(self, x, axis) -> Tensor:
        return M._cum(self._fn, x, axis, self.exclusive, self.reverse, self.name)


class CumSum(_Cumulative):
    """``ops.CumSum(exclusive=False, reverse=False)(x, axis)``: running sums along ``axis``."""


class CumProd(_Cumulative):
    """``ops.CumProd(exclusive=False, reverse=False)(x, axis)``: running products along ``axis``."""

    _fn = staticmethod(jnp.cumprod)


__all__ = [*_UNARY, "Acos", "Sqrt", "Inv", *_BINARY, "Div", "AddN", "MatMul", "BatchMatMul", "Ger", "ReduceSum",
           "ReduceMean", "ReduceMax", "ReduceMin", "ReduceProd", "ReduceAll", "ReduceAny", "Argmax", "Argmin",
           "ArgMaxWithValue", "ArgMinWithValue", "CumSum", "CumProd"]
