"""``sporax.ops`` (``mindspore.ops``): operator classes, functional ops and gradient ops."""

from sporax.ops import comm_ops, composite, function, functional, operations
from sporax.ops.comm_ops import *  # noqa: F403
from sporax.ops.composite import *  # noqa: F403
from sporax.ops.functional import *  # noqa: F403
from sporax.ops.operations import *  # noqa: F403
from sporax.ops.primitive import Primitive, PrimitiveWithCheck, PrimitiveWithInfer, constexpr, prim_attr_register

P = operations

__all__ = [
    *functional.__all__, *operations.__all__, *comm_ops.__all__, *composite.__all__, "Primitive", "PrimitiveWithInfer",
    "PrimitiveWithCheck", "prim_attr_register", "constexpr", "function", "functional", "operations", "comm_ops",
    "composite", "P",
]
