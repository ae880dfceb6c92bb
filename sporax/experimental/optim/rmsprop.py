"""``experimental.optim.RMSprop`` with MindSpore 2.10's state names and formula.

State: ``mean_grad.<param>``, ``mean_square.<param>`` and ``moment.<param>`` (all zeros)::

    g = -g if maximize;  g = g + weight_decay * param
    mean_square = alpha * mean_square + (1 - alpha) * g * g
    centered:  mean_grad = alpha * mean_grad + (1 - alpha) * g
               avg = sqrt(mean_square - mean_grad ** 2) + eps
    else:      avg = sqrt(mean_square) + eps
    momentum > 0:  moment = momentum * moment + g / avg;  param -= lr * moment
    else:          param -= lr * g / avg

(``eps`` is added outside the square root, unlike Optax's ``scale_by_rms``, so the rule is
written out here.) ``mean_grad`` stays zero unless ``centered``; ``moment`` unless ``momentum > 0``.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from sporax.experimental.optim._checks import check_at_least, check_positive
from sporax.experimental.optim.optimizer import Optimizer

__all__ = ["RMSprop"]


def rmsprop_rule(p, g, state, lr, hyper, *, alpha, eps, momentum, centered, weight_decay, maximize):
    mean_grad, mean_square, moment = state
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    mean_square = mean_square * alpha + (1 - alpha) * g * g
    if centered:
        mean_grad = mean_grad * alpha + g * (1 - alpha)
        avg = jnp.sqrt(mean_square - mean_grad * mean_grad) + eps
    else:
        avg = jnp.sqrt(mean_square) + eps
    if momentum > 0:
        moment = moment * momentum + g / avg
        p = p - moment * lr
    else:
        p = p - lr * g / avg
    return p, (mean_grad, mean_square, moment)


class RMSprop(Optimizer):
    """``RMSprop(params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0, centered=False,
    maximize=False)``."""

    def __init__(self, params, lr=1e-2, alpha=0.99, eps=1e-8, weight_decay=0.0, momentum=0.0,
                 centered: bool = False, maximize: bool = False) -> None:
        where = "RMSprop"
        check_positive(lr, "lr", where)
        check_at_least(alpha, "alpha", where)
        check_positive(eps, "eps", where)
        check_at_least(momentum, "momentum", where)
        check_at_least(weight_decay, "weight_decay", where)
        super().__init__(params, {"lr": lr, "momentum": momentum, "alpha": alpha, "eps": eps, "centered": centered,
                                  "weight_decay": weight_decay, "maximize": maximize})
        self.mean_grad = self.parameters.clone(prefix="mean_grad", init="zeros")
        self.mean_square = self.parameters.clone(prefix="mean_square", init="zeros")
        self.moment = self.parameters.clone(prefix="moment", init="zeros")
        self._rules: dict = {}

    def _rule_of(self, group):
        key = (float(group["alpha"]), float(group["eps"]), float(group["momentum"]), bool(group["centered"]),
               float(group["weight_decay"]), bool(group["maximize"]))
        if key not in self._rules:
            self._rules[key] = functools.partial(rmsprop_rule, alpha=key[0], eps=key[1], momentum=key[2],
                                                 centered=key[3], weight_decay=key[4], maximize=key[5])
        return self._rules[key]

    def construct(self, gradients) -> bool:
        return self._step_groups(gradients, self._rule_of, (self.mean_grad, self.mean_square, self.moment))
