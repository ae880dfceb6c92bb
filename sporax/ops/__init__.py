"""``sporax.ops`` (``mindspore.ops``): operator classes, functional ops and gradient ops."""

from sporax.ops import composite, function, functional, operations
from sporax.ops.composite import *  # noqa: F403
from sporax.ops.functional import *  # noqa: F403
from sporax.ops.operations import *  # noqa: F403
from sporax.ops.primitive import Primitive, PrimitiveWithCheck, PrimitiveWithInfer, constexpr, prim_attr_register

P = operations

__all__ = [
    *functional.__all__, *operations.__all__, *composite.__all__, "Primitive", "PrimitiveWithInfer",
    "PrimitiveWithCheck", "prim_attr_register", "constexpr", "function", "functional", "operations", "composite",
    "P",
]
