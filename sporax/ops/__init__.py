"""``sporax.ops`` (``mindspore.ops``): operator classes, functional ops and gradient ops."""

from sporax.ops import composite, functional, operations
from sporax.ops.composite import *  # noqa: F403
from sporax.ops.functional import *  # noqa: F403
from sporax.ops.operations import *  # noqa: F403
from sporax.ops.primitive import Primitive, PrimitiveWithInfer, prim_attr_register

P = operations

__all__ = [
    *functional.__all__, *operations.__all__, *composite.__all__, "Primitive", "PrimitiveWithInfer",
    "prim_attr_register", "functional", "operations", "composite", "P",
]
