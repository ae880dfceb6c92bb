"""``sporax.common`` (``mindspore.common``): dtype, Tensor, Parameter, initializers, seeds."""

from sporax.common import dtype
from sporax.common._rng import get_seed, set_seed
from sporax.common.parameter import Parameter, ParameterTuple
from sporax.common.tensor import Tensor

__all__ = ["dtype", "Tensor", "Parameter", "ParameterTuple", "set_seed", "get_seed"]
