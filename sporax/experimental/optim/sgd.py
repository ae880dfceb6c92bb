"""``experimental.optim.SGD`` on MindSpore's ``SGD`` kernel: state ``accum.<param>`` and ``stat.<param>``.

The rule is ``nn.SGD``'s (:func:`sporax.nn.optim.sgd.sgd_rule`), with ``weight_decay`` as an L2
term on the gradient and ``maximize`` negating it.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from sporax.common._validation import check_bool, msg
from sporax.experimental.optim.optimizer import Optimizer
from sporax.nn.optim.sgd import sgd_rule

__all__ = ["SGD"]


def _rule(p, g, state, lr, hyper, *, momentum, dampening, weight_decay, nesterov, maximize):
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    return sgd_rule(p, g, state, lr, None, (jnp.asarray(momentum, p.dtype),), dampening=dampening, nesterov=nesterov)


class SGD(Optimizer):
    """``SGD(params, lr, momentum=0, dampening=0, weight_decay=0.0, nesterov=False, *, maximize=False)``."""

    def __init__(self, params, lr, momentum=0, dampening=0, weight_decay=0.0, nesterov: bool = False, *,
                 maximize: bool = False) -> None:
        for arg, value in (("lr", lr), ("momentum", momentum), ("dampening", dampening), ("weight_decay", weight_decay)):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise TypeError(msg("SGD", arg, "a float", value))
            if value < 0.0:
                raise ValueError(f"Invalid {arg} value: {value}")
        check_bool(nesterov, "nesterov", "SGD")
        check_bool(maximize, "maximize", "SGD")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("Nesterov momentum requires a momentum and zero dampening")
        super().__init__(params, {"lr": float(lr), "momentum": float(momentum), "dampening": float(dampening),
                                  "weight_decay": float(weight_decay), "nesterov": nesterov, "maximize": maximize})
        self.accum = self.parameters.clone(prefix="accum", init="zeros")
        self.stat = self.parameters.clone(prefix="stat", init="ones")
        self._rules: dict = {}

    def _rule_of(self, group):
        key = tuple(group[k] for k in ("momentum", "dampening", "weight_decay", "nesterov", "maximize"))
        if key not in self._rules:
            self._rules[key] = functools.partial(_rule, **{k: group[k] for k in (
                "momentum", "dampening", "weight_decay", "nesterov", "maximize")})
        return self._rules[key]

    def construct(self, gradients) -> bool:
        return self._step_groups(gradients, self._rule_of, (self.accum, self.stat))
