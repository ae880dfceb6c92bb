"""Argument checks with MindSpore's message form, kept in one place so wording cannot drift.

Every message reads "For 'WHERE', the 'ARG' should be EXPECTED, but got GOT." and names
the fix where there is an obvious one.
"""

from __future__ import annotations

__all__ = ["check_bool", "check_float", "check_int", "check_non_negative_int", "check_positive_int", "check_str_in", "msg"]


def msg(where: str, arg: str, expected: str, got) -> str:
    """The standard message: which call, which argument, what was expected and what came."""
    return f"For '{where}', the '{arg}' should be {expected}, but got {got!r}."


def check_bool(value, arg: str, where: str) -> bool:
    """``value`` if it is exactly True/False, else TypeError."""
    if value is True or value is False:
        return value
    raise TypeError(msg(where, arg, "a bool", value))


def check_int(value, arg: str, where: str) -> int:
    """``value`` if it is an int (bool excluded), else TypeError."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise TypeError(msg(where, arg, "an int", value))


def check_non_negative_int(value, arg: str, where: str) -> int:
    """An int >= 0: TypeError for a non-int or bool, ValueError for a negative int."""
    check_int(value, arg, where)
    if value < 0:
        raise ValueError(msg(where, arg, "an int >= 0", value))
    return value


def check_positive_int(value, arg: str, where: str) -> int:
    """An int >= 1: TypeError for a non-int or bool, ValueError otherwise."""
    check_int(value, arg, where)
    if value < 1:
        raise ValueError(msg(where, arg, "an int >= 1", value))
    return value


def check_str_in(value, choices, arg: str, where: str) -> str:
    """``value`` if it is one of ``choices``, else ValueError listing them."""
    if value in choices:
        return value
    raise ValueError(msg(where, arg, f"one of {list(choices)}", value))


def check_float(value, arg: str, where: str, positive: bool = True) -> float:
    """A Python float, > 0 (or >= 0 when ``positive`` is False): TypeError, else ValueError."""
    if not isinstance(value, float):
        raise TypeError(msg(where, arg, "a float", value))
    if value < 0 or (positive and value == 0):
        raise ValueError(msg(where, arg, "a float > 0" if positive else "a float >= 0", value))
    return value
