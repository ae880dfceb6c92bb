"""``nn.Momentum``: gradient descent with (Nesterov) momentum, MindSpore's ``ApplyMomentum``.

State (MindSpore 2.10 names): ``momentum`` (scalar Parameter) and ``moments.<param>`` (zeros)::

    moments = momentum * moments + g
    param   = param - lr * (g + momentum * moments)     if use_nesterov
    param   = param - lr * moments                      otherwise

The Nesterov form is MindSpore's documented one; note MindSpore 2.10's CPU kernel ignores
``use_nesterov`` (it always takes the plain step), its GPU/Ascend kernels follow the docs.
"""

from __future__ import annotations

import functools

import numpy as np

from sporax.common._validation import check_bool, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.nn.optim.optimizer import Optimizer

__all__ = ["Momentum", "momentum_rule"]


def momentum_rule(p, g, state, lr, wd, hyper, *, nesterov: bool):
    """One momentum step for one parameter: pure function of arrays."""
    (moments,) = state
    (momentum,) = hyper
    moments = momentum * moments + g
    step = g + momentum * moments if nesterov else moments
    return p - lr * step, (moments,)


class Momentum(Optimizer):
    """``Momentum(params, learning_rate, momentum, weight_decay=0.0, loss_scale=1.0, use_nesterov=False)``."""

    _shard_rows = True  # row-wise update: the parallel optimizer may shard it (parallel/plan.py)

    def __init__(self, params, learning_rate, momentum: float, weight_decay=0.0, loss_scale: float = 1.0,
                 use_nesterov: bool = False) -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if not isinstance(momentum, float):
            raise TypeError(msg("Momentum", "momentum", "a float", momentum))
        if momentum < 0.0:
            raise ValueError(msg("Momentum", "momentum", "a float >= 0.0", momentum))
        self.momentum = Parameter(Tensor(np.float32(momentum)), name="momentum")
        self.use_nesterov = check_bool(use_nesterov, "use_nesterov", "Momentum")
        self.params = self._parameters
        self.moments = self._parameters.clone(prefix="moments", init="zeros")
        self._rule = functools.partial(momentum_rule, nesterov=self.use_nesterov)

    def construct(self, gradients) -> bool:
        return self._apply_rule(gradients, self._rule, (self.moments,), (self.momentum._jax(),))
