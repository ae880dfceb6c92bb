"""Shared helpers of the operator-class families (argument checks in MindSpore's form, wrapping)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np

from sporax.common import dtype as mstype
from sporax.common.tensor import Tensor
from sporax.ops.function import math_func as M

__all__ = ["arr", "wrap", "kinds", "same_dtype", "int_kinds", "pyint_tuple", "to_dtype"]

_NAMES = {"f": "float", "i": "int", "b": "bool", "c": "complex"}


def arr(x, where: str, arg: str = "x", allowed: str | None = None):
    """The jax array of Tensor ``x`` (TypeError if not a Tensor, or not of the ``allowed`` kinds)."""
    M.tensor_arg(x, where, arg)
    if allowed is not None:
        M.check_kind(x, allowed, where, arg)
    return x._jax()


def wrap(a) -> Tensor:
    return Tensor._wrap(a)


def kinds(a) -> str:
    return M.kind(a.dtype)


def int_kinds(a, where: str, arg: str, dtypes=("int8", "int16", "int32", "int64", "uint8", "uint16", "uint32",
                                              "uint64")) -> None:
    """TypeError unless ``a`` (an array) has one of ``dtypes`` (names)."""
    if str(a.dtype) not in dtypes:
        allowed = ", ".join(f"Tensor[{mstype.from_numpy(np.dtype(d))}]" for d in dtypes)
        raise TypeError(f"For primitive[{where}], the input argument[{arg}] must be a type of {{{allowed}}}, but got "
                        f"Tensor[{mstype.from_numpy(np.dtype(a.dtype))}].")


def same_dtype(a, b, where: str, a1: str = "x", a2: str = "y") -> None:
    if a.dtype != b.dtype:
        raise TypeError(f"For '{where}', the '{a2}' should have the same dtype as '{a1}', but got "
                        f"{mstype.from_numpy(np.dtype(a.dtype))} and {mstype.from_numpy(np.dtype(b.dtype))}.")


def pyint_tuple(value, where: str, arg: str) -> tuple:
    """An int or a tuple/list of ints as a tuple (TypeError otherwise)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return (value,)
    if isinstance(value, (tuple, list)) and all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        return tuple(value)
    raise TypeError(f"For '{where}', the '{arg}' should be an int or a tuple of ints, but got {value!r}.")


def to_dtype(dtype, where: str, arg: str = "dtype"):
    """A MindSpore dtype (``mstype.int32``) as a numpy dtype."""
    if isinstance(dtype, mstype.Type):
        return dtype.np_dtype
    raise TypeError(f"For '{where}', the '{arg}' should be a mindspore dtype, but got {dtype!r}.")


def scalar_of(x, where: str, arg: str):
    """A Python number from a number or a one-element Tensor."""
    if isinstance(x, Tensor):
        return x.asnumpy().reshape(-1)[0].item()
    if isinstance(x, (int, float, np.number)) and not isinstance(x, bool):
        return x
    raise TypeError(f"For '{where}', the '{arg}' should be a number or a Tensor, but got {type(x).__name__}.")


def floatify(a):
    return a.astype(jnp.float32) if kinds(a) in "ib" else a
