"""Elementwise math of ``mindspore.ops`` (``ops.sin``, ``ops.pow``, ``ops.equal``, ...) with MindSpore's dtype rules.

Each unary op accepts a Tensor of the dtype kinds MindSpore 2.10 accepts and raises a
TypeError naming the op otherwise (a Python number is not a Tensor). Ops that MindSpore
computes in floating point for integer input (``sqrt``, ``reciprocal``, ``div``) cast integer
and bool tensors to float32 first. Binary ops go through :func:`_binary`, the one place where
two operands meet, so the project-wide dtype promotion applies to all of them.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp

from sporax.common import _promotion
from sporax.common._validation import msg
from sporax.common.tensor import Tensor, unwrap

__all__ = [
    "sin", "cos", "tan", "asin", "acos", "atan", "sinh", "cosh", "asinh", "acosh", "atanh", "exp", "expm1",
    "log1p", "rsqrt", "erf", "erfc", "erfinv", "floor", "ceil", "round", "sign", "neg", "negative", "reciprocal",
    "trunc", "rint", "logical_not", "isnan", "isinf", "isfinite", "invert", "pow", "floor_div", "floor_divide",
    "floor_mod", "remainder", "atan2", "xlogy", "xdivy", "equal", "eq", "not_equal", "ne", "less", "lt",
    "less_equal", "le", "greater", "gt", "greater_equal", "ge", "logical_and", "logical_or", "logical_xor",
    "truncate_div", "truncate_mod", "squared_difference", "div_no_nan", "real_div", "addn", "amax", "amin",
    "prod", "all", "any", "reduce_max", "reduce_min", "cumsum", "cumprod", "clip_by_value", "clamp",
]

_KIND_NAMES = {"f": "float", "i": "int", "b": "bool", "c": "complex"}


def kind(dtype) -> str:
    """'b' (bool), 'i' (signed or unsigned int), 'f' (float, bfloat16 included) or 'c' (complex)."""
    if dtype == jnp.bool_:
        return "b"
    if jnp.issubdtype(dtype, jnp.integer):
        return "i"
    if jnp.issubdtype(dtype, jnp.complexfloating):
        return "c"
    return "f"


def tensor_arg(x, where: str, arg: str = "input") -> Tensor:
    """``x`` if it is a Tensor, else TypeError in MindSpore's form."""
    if not isinstance(x, Tensor):
        raise TypeError(msg(where, arg, "a Tensor", type(x).__name__))
    return x


def check_kind(x: Tensor, kinds: str, where: str, arg: str = "input") -> None:
    """TypeError unless ``x``'s dtype is of one of ``kinds`` ('f', 'i', 'b', 'c')."""
    if kind(x.dtype.np_dtype) not in kinds:
        expected = "a Tensor of " + " or ".join(_KIND_NAMES[k] for k in kinds) + " dtype"
        raise TypeError(f"For '{where}', the '{arg}' should be {expected}, but got {x.dtype}.")


def unary(jfn, x, where: str, kinds: str = "f", int_to_float: bool = False) -> Tensor:
    """``jfn`` on the array of Tensor ``x`` after MindSpore's dtype check for op ``where``."""
    tensor_arg(x, where)
    check_kind(x, kinds, where)
    a = x._jax()
    if int_to_float and kind(a.dtype) in "ib":
        a = a.astype(jnp.float32)
    return Tensor._wrap(jfn(a))


def _binary(jfn, x, y, op: str = "arith") -> Tensor:
    """``jfn`` on two operands (Tensors or numbers) promoted by the project's one promotion table."""
    a, b = _promotion.promote(x, y, op)
    return Tensor._wrap(jfn(a, b))


def operand_kind(v) -> str:
    if isinstance(v, Tensor):
        return kind(v.dtype.np_dtype)
    if isinstance(v, bool):
        return "b"
    if isinstance(v, int):
        return "i"
    if isinstance(v, float):
        return "f"
    if isinstance(v, complex):
        return "c"
    return kind(jnp.asarray(v).dtype)


def check_operands(x, y, where: str, tensors_only: bool = False) -> None:
    """TypeError unless at least one operand is a Tensor and the other a Tensor or number."""
    names = ("input", "other")
    for v, arg in zip((x, y), names):
        if isinstance(v, Tensor):
            continue
        if tensors_only or isinstance(v, (str, list, tuple, dict, type(None))) or not hasattr(v, "__float__"):
            raise TypeError(msg(where, arg, "a Tensor" if tensors_only else "a Tensor or a number", type(v).__name__))
    if not isinstance(x, Tensor) and not isinstance(y, Tensor):
        raise TypeError(f"For '{where}', at least one of 'input' and 'other' should be a Tensor, "
                        f"but got {type(x).__name__} and {type(y).__name__}.")


def binary(jfn, x, y, where: str, no_bool: bool = False, float_only: bool = False,
           tensors_only: bool = False, op: str = "arith") -> Tensor:
    """A checked binary op: ``no_bool`` rejects two bool operands, ``float_only`` needs a float operand."""
    check_operands(x, y, where, tensors_only)
    kinds = {operand_kind(x), operand_kind(y)}
    if no_bool and kinds == {"b"}:
        raise TypeError(f"For '{where}', the inputs should be numbers, not both bool.")
    if float_only and not kinds & {"f", "c"}:
        raise TypeError(f"For '{where}', one of the inputs should be a float Tensor or a float, but got "
                        f"{_dtype_text(x)} and {_dtype_text(y)}.")
    return _binary(jfn, x, y, op)


def _dtype_text(v) -> str:
    return str(v.dtype) if isinstance(v, Tensor) else type(v).__name__


# ---------------------------------------------------------------------------------- unary
def _gelu_tanh(a):
    return jax.nn.gelu(a, approximate=True)


def sin(input) -> Tensor:  # noqa: A002 - MindSpore's argument name
    return unary(jnp.sin, input, "Sin")


def cos(input) -> Tensor:  # noqa: A002
    return unary(jnp.cos, input, "Cos")


def tan(input) -> Tensor:  # noqa: A002
    return unary(jnp.tan, input, "Tan")


def asin(input) -> Tensor:  # noqa: A002
    return unary(jnp.arcsin, input, "Asin")


def acos(input) -> Tensor:  # noqa: A002
    return unary(jnp.arccos, input, "ACos")


def atan(input) -> Tensor:  # noqa: A002
    return unary(jnp.arctan, input, "Atan")


def sinh(input) -> Tensor:  # noqa: A002
    return unary(jnp.sinh, input, "Sinh")


def cosh(input) -> Tensor:  # noqa: A002
    return unary(jnp.cosh, input, "Cosh")


def asinh(input) -> Tensor:  # noqa: A002
    return unary(jnp.arcsinh, input, "Asinh")


def acosh(input) -> Tensor:  # noqa: A002
    return unary(jnp.arccosh, input, "Acosh")


def atanh(input) -> Tensor:  # noqa: A002
    return unary(jnp.arctanh, input, "Atanh")


def exp(input) -> Tensor:  # noqa: A002
    return unary(jnp.exp, input, "Exp")


def expm1(input) -> Tensor:  # noqa: A002
    return unary(jnp.expm1, input, "Expm1")


def log1p(input) -> Tensor:  # noqa: A002
    return unary(jnp.log1p, input, "Log1p")


def rsqrt(input) -> Tensor:  # noqa: A002
    return unary(jax.lax.rsqrt, input, "Rsqrt")


def erf(input) -> Tensor:  # noqa: A002
    return unary(jsp.erf, input, "Erf")


def erfc(input) -> Tensor:  # noqa: A002
    return unary(jsp.erfc, input, "Erfc")


def erfinv(input) -> Tensor:  # noqa: A002
    return unary(jsp.erfinv, input, "Erfinv")


def floor(input) -> Tensor:  # noqa: A002
    return unary(jnp.floor, input, "Floor")


def ceil(input) -> Tensor:  # noqa: A002
    return unary(jnp.ceil, input, "Ceil")


def round(input, *, decimals: int = 0) -> Tensor:  # noqa: A001,A002 - MindSpore's name
    """Round half to even (MindSpore's rule); ``decimals`` digits after the point. Bool input is a RuntimeError."""
    if isinstance(input, Tensor) and kind(input.dtype.np_dtype) == "b":
        raise RuntimeError("For 'Round', a bool Tensor is not supported: cast it to an int or float dtype first.")
    return unary(lambda a: jnp.round(a, decimals), input, "Round", "fi")


def sign(input) -> Tensor:  # noqa: A002
    return unary(jnp.sign, input, "Sign", "fi")


def neg(input) -> Tensor:  # noqa: A002
    return unary(jnp.negative, input, "Neg", "fi")


negative = neg


def reciprocal(input) -> Tensor:  # noqa: A002
    return unary(jnp.reciprocal, input, "Reciprocal", "fib", int_to_float=True)


def trunc(input) -> Tensor:  # noqa: A002
    return unary(lambda a: jnp.trunc(a) if kind(a.dtype) == "f" else a, input, "Trunc", "fib")


def rint(input) -> Tensor:  # noqa: A002
    return unary(jnp.rint, input, "Rint")


def logical_not(input) -> Tensor:  # noqa: A002
    return unary(jnp.logical_not, input, "LogicalNot", "fibc")


def isnan(input) -> Tensor:  # noqa: A002
    return unary(jnp.isnan, input, "IsNan", "fibc")


def isinf(input) -> Tensor:  # noqa: A002
    return unary(jnp.isinf, input, "IsInf")


def isfinite(input) -> Tensor:  # noqa: A002
    return unary(jnp.isfinite, input, "IsFinite", "fibc")


def invert(input) -> Tensor:  # noqa: A002
    return unary(jnp.invert, input, "Invert", "i")


# ---------------------------------------------------------------------------------- binary
def _power(a, b):
    if kind(jnp.result_type(a, b)) != "i":
        return jnp.power(a, b)
    # Integer powers with a negative exponent truncate toward zero, as C does: only +-1 survive.
    neg = b < 0
    plain = jnp.power(a, jnp.where(neg, 0, b))
    odd = jnp.mod(b, 2) != 0
    inverse = jnp.where(a == 1, 1, jnp.where(a == -1, jnp.where(odd, -1, 1), 0))
    return jnp.where(neg, inverse.astype(plain.dtype), plain)


def pow(input, exponent) -> Tensor:  # noqa: A001,A002 - MindSpore's name
    """``input ** exponent`` elementwise (Tensors or numbers; not both bool)."""
    return binary(_power, input, exponent, "Pow", no_bool=True)


def _floor_div(a, b):
    if jnp.result_type(a, b) == jnp.bool_:  # MindSpore's bool kernel: x // y is x (also where y is False)
        return jnp.broadcast_to(a, jnp.broadcast_shapes(jnp.shape(a), jnp.shape(b)))
    return jnp.floor_divide(a, b)


def floor_div(x, y) -> Tensor:
    return binary(_floor_div, x, y, "FloorDiv")


floor_divide = floor_div


def floor_mod(x, y) -> Tensor:
    """Remainder with the sign of the divisor (Python's ``%``)."""
    return binary(jnp.mod, x, y, "FloorMod", no_bool=True)


remainder = floor_mod


def atan2(input, other) -> Tensor:  # noqa: A002
    return binary(jnp.arctan2, input, other, "Atan2", float_only=True)


def xlogy(input, other) -> Tensor:  # noqa: A002
    return binary(jsp.xlogy, input, other, "Xlogy", float_only=True, tensors_only=True)


def xdivy(x, y) -> Tensor:
    return binary(lambda a, b: jnp.where(a == 0, jnp.zeros_like(a / b), a / b), x, y, "Xdivy", float_only=True)


def _compare(jfn, where: str, tensor_first: bool = False):
    def op(input, other) -> Tensor:  # noqa: A002
        if tensor_first and not isinstance(input, Tensor):  # MindSpore 2.10 rejects a number first here
            raise TypeError(msg(where, "input", "a Tensor", type(input).__name__))
        return binary(jfn, input, other, where)

    op.__name__ = where.lower()
    op.__doc__ = f"Elementwise comparison (``{where}``); the result is a bool Tensor."
    return op


equal = eq = _compare(jnp.equal, "Equal", tensor_first=True)
not_equal = ne = _compare(jnp.not_equal, "NotEqual")
less = lt = _compare(jnp.less, "Less", tensor_first=True)
less_equal = le = _compare(jnp.less_equal, "LessEqual")
greater = gt = _compare(jnp.greater, "Greater")
greater_equal = ge = _compare(jnp.greater_equal, "GreaterEqual")


def logical_and(input, other) -> Tensor:  # noqa: A002
    return binary(jnp.logical_and, input, other, "LogicalAnd", tensors_only=True)


def logical_or(input, other) -> Tensor:  # noqa: A002
    return binary(jnp.logical_or, input, other, "LogicalOr", tensors_only=True)


def logical_xor(input, other) -> Tensor:  # noqa: A002
    return binary(jnp.logical_xor, input, other, "LogicalXor", tensors_only=True)


def _trunc_div(a, b):
    if kind(jnp.result_type(a, b)) == "f":
        return jnp.trunc(a / b)
    q = jnp.floor_divide(a, b)
    return jnp.where((jnp.mod(a, b) != 0) & ((a < 0) != (b < 0)), q + 1, q)


def _trunc_mod(a, b):
    if kind(jnp.result_type(a, b)) == "f":
        return jnp.fmod(a, b)
    return a - _trunc_div(a, b) * b


def truncate_div(x, y) -> Tensor:
    """Division rounded toward zero (C's ``/`` for integers)."""
    return binary(_trunc_div, x, y, "TruncateDiv", no_bool=True)


def truncate_mod(x, y) -> Tensor:
    """Remainder with the sign of the dividend (C's ``%``, ``fmod``)."""
    return binary(_trunc_mod, x, y, "TruncateMod", no_bool=True)


def real_div(x, y) -> Tensor:
    """``x / y``; for two integer operands the quotient is truncated and keeps the integer dtype."""
    check_operands(x, y, "RealDiv")
    kinds = {operand_kind(x), operand_kind(y)}
    if kinds == {"b"}:
        raise TypeError("For 'RealDiv', the inputs should be numbers, not both bool.")
    if kinds <= {"i", "b"}:
        return binary(_trunc_div, x, y, "RealDiv", op="realdiv")
    return _binary(jnp.true_divide, x, y, "realdiv")


def squared_difference(x, y) -> Tensor:
    return binary(lambda a, b: jnp.square(a - b), x, y, "SquaredDifference", no_bool=True)


def div_no_nan(x, y) -> Tensor:
    """``x / y``, and 0 where ``y == 0``."""

    def fn(a, b):
        safe = jnp.where(b == 0, jnp.ones_like(b), b)
        return jnp.where(b == 0, jnp.zeros_like(a / safe), a / safe)

    return binary(fn, x, y, "DivNoNan", float_only=True)


def addn(x) -> Tensor:
    """The elementwise sum of a list/tuple of Tensors of one shape and dtype."""
    if not isinstance(x, (list, tuple)) or not x:
        raise TypeError(msg("AddN", "x", "a non-empty list or tuple of Tensors", type(x).__name__))
    for i, t in enumerate(x):
        tensor_arg(t, "AddN", f"x[{i}]")
    if len({t.dtype for t in x}) > 1:
        raise TypeError(f"For 'AddN', all inputs should have one dtype, but got {[str(t.dtype) for t in x]}.")
    if len({tuple(t.shape) for t in x}) > 1:
        raise ValueError(f"For 'AddN', all inputs should have one shape, but got {[tuple(t.shape) for t in x]}.")
    out = x[0]
    for t in x[1:]:
        out = _binary(jnp.add, out, t)
    return out


# ---------------------------------------------------------------------------------- reductions
def norm_axis(axis, ndim: int, where: str):
    """MindSpore's reduction axis (int, tuple or list; ``()``/None: all) as a jnp axis, range-checked."""
    if axis is None or axis == () or axis == []:
        return None
    axes = tuple(axis) if isinstance(axis, (list, tuple)) else (axis,)
    for a in axes:
        if isinstance(a, bool) or not isinstance(a, int):
            raise TypeError(msg(where, "axis", "an int or a tuple/list of int", axis))
        if not -max(ndim, 1) <= a < max(ndim, 1):
            raise ValueError(msg(where, "axis", f"in the range [{-max(ndim, 1)}, {max(ndim, 1)})", axis))
    return tuple(a % max(ndim, 1) for a in axes) if ndim else None


def reduce(jfn, x, axis, keep_dims: bool, where: str, kinds: str = "fib") -> Tensor:
    tensor_arg(x, where, "x")
    check_kind(x, kinds, where, "x")
    a = x._jax()
    extra = {"dtype": a.dtype} if jfn in (jnp.sum, jnp.prod) and kind(a.dtype) == "i" else {}  # no int64 widening
    return Tensor._wrap(jfn(a, axis=norm_axis(axis, a.ndim, where), keepdims=keep_dims, **extra))


def amax(input, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A002
    return reduce(jnp.max, input, axis, keepdims, "amax")


def amin(input, axis=None, keepdims: bool = False) -> Tensor:  # noqa: A002
    return reduce(jnp.min, input, axis, keepdims, "amin")


def reduce_max(x, axis=()) -> Tensor:
    return reduce(jnp.max, x, axis, False, "ReduceMax")


def reduce_min(x, axis=()) -> Tensor:
    return reduce(jnp.min, x, axis, False, "ReduceMin")


def prod(input, axis=None, keep_dims: bool = False, dtype=None) -> Tensor:  # noqa: A002
    out = reduce(jnp.prod, input, axis, keep_dims, "prod")
    return out if dtype is None else out.astype(dtype)


def all(input, axis=None, keep_dims: bool = False) -> Tensor:  # noqa: A001,A002 - MindSpore's name
    return reduce(jnp.all, input, axis, keep_dims, "all")


def any(input, axis=None, keep_dims: bool = False) -> Tensor:  # noqa: A001,A002 - MindSpore's name
    return reduce(jnp.any, input, axis, keep_dims, "any")


def _cum(jfn, x, axis, exclusive: bool, reverse: bool, where: str) -> Tensor:
    tensor_arg(x, where, "x")
    a = x._jax()
    if isinstance(axis, Tensor):
        axis = int(axis.asnumpy())
    if isinstance(axis, bool) or not isinstance(axis, int):
        raise TypeError(msg(where, "axis", "an int", axis))
    if not -max(a.ndim, 1) <= axis < max(a.ndim, 1):
        raise ValueError(msg(where, "axis", f"in the range [{-a.ndim}, {a.ndim})", axis))
    if reverse:
        a = jnp.flip(a, axis)
    out = jfn(a, axis=axis)
    if exclusive:
        ident = jnp.zeros_like if jfn is jnp.cumsum else jnp.ones_like
        first = ident(jax.lax.slice_in_dim(a, 0, 1, axis=axis))
        out = jnp.concatenate([first, jax.lax.slice_in_dim(out, 0, a.shape[axis] - 1, axis=axis)], axis=axis)
    if reverse:
        out = jnp.flip(out, axis)
    return Tensor._wrap(out.astype(a.dtype))


def cumsum(x, axis: int, dtype=None) -> Tensor:
    out = _cum(jnp.cumsum, x, axis, False, False, "cumsum")
    return out if dtype is None else out.astype(dtype)


def cumprod(input, dim: int, dtype=None) -> Tensor:  # noqa: A002
    out = _cum(jnp.cumprod, input, dim, False, False, "cumprod")
    return out if dtype is None else out.astype(dtype)


def clip_by_value(x, clip_value_min=None, clip_value_max=None) -> Tensor:
    """``x`` clipped to ``[clip_value_min, clip_value_max]`` (either may be None)."""
    tensor_arg(x, "clip_by_value", "x")
    if clip_value_min is None and clip_value_max is None:
        raise ValueError("For 'clip_by_value', at least one of 'clip_value_min' and 'clip_value_max' must be given.")
    a = x._jax()
    lo = None if clip_value_min is None else unwrap(clip_value_min)
    hi = None if clip_value_max is None else unwrap(clip_value_max)
    return Tensor._wrap(jnp.clip(a, lo, hi).astype(a.dtype))


def clamp(input, min=None, max=None) -> Tensor:  # noqa: A002 - MindSpore's names
    return clip_by_value(input, min, max)
