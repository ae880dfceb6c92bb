"""``mindspore.ops.function``: the functional ops, by family (math, array, nn)."""

from sporax.ops.function import array_func, grad_func, linalg_func, math_func, nn_func
from sporax.ops.function.array_func import *  # noqa: F403
from sporax.ops.function.grad_func import *  # noqa: F403
from sporax.ops.function.linalg_func import *  # noqa: F403
from sporax.ops.function.math_func import *  # noqa: F403
from sporax.ops.function.nn_func import *  # noqa: F403

__all__ = [*math_func.__all__, *array_func.__all__, *nn_func.__all__, *grad_func.__all__, *linalg_func.__all__]
