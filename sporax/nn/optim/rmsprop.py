"""``nn.RMSProp`` with MindSpore 2.10's state names and formulas (its ``ApplyRMSProp`` kernels).

State: ``mean_square.<param>`` (ones), ``moment.<param>`` (zeros) and, with ``centered=True``,
``mean_grad.<param>`` (zeros)::

    mean_square = decay * mean_square + (1 - decay) * g * g
    moment = momentum * moment + lr * g / sqrt(mean_square + epsilon)          (centered: mean_square - mean_grad**2)
    param -= moment

The learning rate sits inside the moment, as in MindSpore, so the saved ``moment`` values
interoperate (Optax's ``rmsprop`` keeps the moment without it, which is why its state is not used here).
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from sporax.common._validation import check_bool, msg
from sporax.nn.optim.optimizer import Optimizer

__all__ = ["RMSProp", "rmsprop_rule", "centered_rmsprop_rule"]


def rmsprop_rule(p, g, state, lr, wd, hyper, *, decay: float, momentum: float, epsilon: float):
    ms, mom = state
    ms = decay * ms + (1.0 - decay) * g * g
    mom = momentum * mom + lr * g / jnp.sqrt(ms + epsilon)
    return p - mom, (ms, mom)


def centered_rmsprop_rule(p, g, state, lr, wd, hyper, *, decay: float, momentum: float, epsilon: float):
    mg, ms, mom = state
    mg = decay * mg + (1.0 - decay) * g
    ms = decay * ms + (1.0 - decay) * g * g
    mom = momentum * mom + lr * g / jnp.sqrt(ms - mg * mg + epsilon)
    return p - mom, (mg, ms, mom)


class RMSProp(Optimizer):
    """``RMSProp(params, learning_rate=0.1, decay=0.9, momentum=0.0, epsilon=1e-10, use_locking=False,
    centered=False, loss_scale=1.0, weight_decay=0.0)``."""

    _shard_rows = True  # row-wise update: the parallel optimizer may shard it (parallel/plan.py)

    def __init__(self, params, learning_rate=0.1, decay: float = 0.9, momentum: float = 0.0, epsilon: float = 1e-10,
                 use_locking: bool = False, centered: bool = False, loss_scale: float = 1.0, weight_decay=0.0) -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        for arg, value in (("decay", decay), ("momentum", momentum), ("epsilon", epsilon)):
            if not isinstance(value, float):
                raise TypeError(msg("RMSProp", arg, "a float", value))
        if decay < 0.0:
            raise ValueError(msg("RMSProp", "decay", "a float >= 0.0", decay))
        if momentum < 0.0:
            raise ValueError(msg("RMSProp", "momentum", "a float >= 0.0", momentum))
        if epsilon <= 0.0:
            raise ValueError(msg("RMSProp", "epsilon", "a float > 0.0", epsilon))
        self.use_locking = check_bool(use_locking, "use_locking", "RMSProp")
        self.centered = check_bool(centered, "centered", "RMSProp")
        self.decay, self.momentum, self.epsilon = decay, momentum, epsilon
        kw = {"decay": decay, "momentum": momentum, "epsilon": epsilon}
        if centered:
            self.mg = self._parameters.clone(prefix="mean_grad", init="zeros")
        self.ms = self._parameters.clone(prefix="mean_square", init="ones")
        self.moment = self._parameters.clone(prefix="moment", init="zeros")
        if centered:
            self._states = (self.mg, self.ms, self.moment)
            self._rule = functools.partial(centered_rmsprop_rule, **kw)
        else:
            self._states = (self.ms, self.moment)
            self._rule = functools.partial(rmsprop_rule, **kw)

    def construct(self, gradients) -> bool:
        return self._apply_rule(gradients, self._rule, self._states)
