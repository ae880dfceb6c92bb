"""Argument checks of ``experimental.optim`` with MindSpore 2.10's messages and exception types."""

from __future__ import annotations

from sporax.common._validation import msg
from sporax.common.tensor import Tensor


def _number(value, name: str, where: str):
    if isinstance(value, bool) or not isinstance(value, (int, float, Tensor)):
        raise TypeError(msg(where, name, "an int, a float or a Tensor", value))
    return float(value.asnumpy()) if isinstance(value, Tensor) else value


def check_at_least(value, name: str, where: str, bound: float = 0.0) -> None:
    """ValueError unless ``value >= bound`` (MindSpore's ``check_not_less_than``)."""
    if _number(value, name, where) < bound:
        raise ValueError(f"For {where}, the {name} must be greater than or equal to {bound}, but got {value}.")


def check_positive(value, name: str, where: str, bound: float = 0.0) -> None:
    """ValueError unless ``value > bound`` (MindSpore's ``check_not_less_than_without_equal``)."""
    if _number(value, name, where) <= bound:
        raise ValueError(f"For {where}, the {name} must be greater than {bound}, but got {value}.")

