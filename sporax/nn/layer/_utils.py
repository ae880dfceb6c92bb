"""Small helpers shared by the layers: argument checks and parameter creation."""

from __future__ import annotations

import numbers

from sporax.common import dtype as mstype
from sporax.common._validation import msg
from sporax.common.parameter import Parameter

__all__ = ["make_param", "int_pair", "check_float", "check_dtype"]


def make_param(init, shape, dtype, name: str, requires_grad: bool = True) -> Parameter:
    """A Parameter named ``name`` from ``initializer(init, shape, dtype)`` (lazy for named inits)."""
    from sporax.common.initializer import initializer

    return Parameter(initializer(init, list(shape), dtype=dtype), name=name, requires_grad=requires_grad)


def int_pair(value, arg: str, where: str, allow_four: bool = False) -> tuple[int, int]:
    """``value`` as ``(h, w)``: an int, a pair, or (with ``allow_four``) an NCHW 4-tuple."""
    if isinstance(value, int) and not isinstance(value, bool):
        pair = (value, value)
    elif isinstance(value, (tuple, list)) and len(value) == 2:
        pair = tuple(value)
    elif allow_four and isinstance(value, (tuple, list)) and len(value) == 4:
        pair = tuple(value[2:])
    else:
        expected = "an int or a tuple of 2" + (" or 4" if allow_four else "") + " ints"
        raise TypeError(msg(where, arg, expected, value))
    for v in pair:
        if not isinstance(v, int) or isinstance(v, bool) or v < 1:
            raise ValueError(msg(where, arg, "made of ints >= 1", value))
    return pair


def check_float(value, arg: str, where: str, low: float | None = None, high: float | None = None,
                low_inclusive: bool = True, high_inclusive: bool = True) -> float:
    """``value`` as a float within the given bounds (ints are accepted, bools are not)."""
    if isinstance(value, bool) or not isinstance(value, numbers.Real):
        raise TypeError(msg(where, arg, "a float", value))
    value = float(value)
    bad_low = low is not None and (value < low if low_inclusive else value <= low)
    bad_high = high is not None and (value > high if high_inclusive else value >= high)
    if bad_low or bad_high:
        lo = "" if low is None else ("[" if low_inclusive else "(") + str(low)
        hi = "" if high is None else str(high) + ("]" if high_inclusive else ")")
        raise ValueError(msg(where, arg, f"in the range {lo or '(-inf'}, {hi or 'inf)'}", value))
    return value


def check_dtype(dtype, where: str):
    """``dtype`` if it is a sporax dtype, else TypeError."""
    if not isinstance(dtype, mstype.Type):
        raise TypeError(msg(where, "dtype", "a sporax dtype such as sporax.float32", dtype))
    return dtype
