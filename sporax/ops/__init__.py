"""``sporax.ops`` (``mindspore.ops``): operator classes, functional ops and gradient ops."""

from sporax.ops import functional, operations
from sporax.ops.functional import *  # noqa: F403
from sporax.ops.operations import *  # noqa: F403
from sporax.ops.primitive import Primitive, PrimitiveWithInfer, prim_attr_register

P = operations

__all__ = [*functional.__all__, *operations.__all__, "Primitive", "PrimitiveWithInfer", "prim_attr_register",
           "functional", "operations", "P"]
from sporax.ops.grad import GradOperation, grad, stop_gradient, value_and_grad  # noqa: E402,F401
