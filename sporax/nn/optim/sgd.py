"""``nn.SGD``: stochastic gradient descent with optional (Nesterov) momentum and dampening.

State (MindSpore 2.10 names): ``momentum`` (scalar Parameter), ``accum.<param>`` (zeros) and
``stat.<param>`` (ones: "no step taken yet"). The rule, verified against MindSpore's kernel::

    if momentum > 0:
        accum = g                                          on the first step (stat > 0), then
        accum = momentum * accum + (1 - dampening) * g     and stat = 0
        d = g + momentum * accum if nesterov else accum
    else:
        d = g                                              (accum and stat untouched)
    param = param - lr * d
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from sporax.common._validation import check_bool, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.nn.optim.optimizer import Optimizer

__all__ = ["SGD", "sgd_rule"]


def sgd_rule(p, g, state, lr, wd, hyper, *, dampening: float, nesterov: bool):
    """One SGD step for one parameter: pure function of arrays (see the module docstring)."""
    accum, stat = state
    (momentum,) = hyper
    use_momentum = momentum > 0
    first = stat > 0
    moved = jnp.where(first, g, momentum * accum + (1.0 - dampening) * g)
    direction = g + momentum * moved if nesterov else moved
    new_accum = jnp.where(use_momentum, moved, accum)
    new_stat = jnp.where(use_momentum, jnp.zeros_like(stat), stat)
    new_p = p - lr * jnp.where(use_momentum, direction, g)
    return new_p, (new_accum, new_stat)


def _non_negative_float(value, arg: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(msg("SGD", arg, "a float", value))
    if value < 0.0:
        raise ValueError(msg("SGD", arg, "a float >= 0.0", value))
    return float(value)


class SGD(Optimizer):
    """``SGD(params, learning_rate=0.1, momentum=0.0, dampening=0.0, weight_decay=0.0, nesterov=False,
    loss_scale=1.0)``; ``opt(gradients)`` updates the parameters in place and returns True."""

    _shard_rows = True  # row-wise update: the parallel optimizer may shard it (parallel/plan.py)

    def __init__(self, params, learning_rate=0.1, momentum: float = 0.0, dampening: float = 0.0,
                 weight_decay=0.0, nesterov: bool = False, loss_scale: float = 1.0) -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        momentum = _non_negative_float(momentum, "momentum")
        self.dampening = _non_negative_float(dampening, "dampening")
        self.nesterov = check_bool(nesterov, "nesterov", "SGD")
        if nesterov and (momentum <= 0.0 or dampening != 0.0):
            raise ValueError(
                f"For 'SGD', if 'nesterov' is true, 'momentum' must be > 0.0 and 'dampening' must equal 0.0, "
                f"but got 'momentum' {momentum}, 'dampening' {dampening}."
            )
        if self.dynamic_weight_decay:
            raise TypeError("For 'SGD', dynamic weight decay is not supported: give 'weight_decay' as a float or int.")
        self.momentum = Parameter(Tensor(np.float32(momentum)), name="momentum")
        self.accum = self._parameters.clone(prefix="accum", init="zeros")
        self.stat = self._parameters.clone(prefix="stat", init="ones")
        self._rule = functools.partial(sgd_rule, dampening=self.dampening, nesterov=self.nesterov)

    def construct(self, gradients) -> bool:
        return self._apply_rule(gradients, self._rule, (self.accum, self.stat), (self.momentum._jax(),))
