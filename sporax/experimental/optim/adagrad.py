"""``experimental.optim.Adagrad`` with MindSpore 2.10's state names and formula.

State: ``accum.<param>`` (starts at ``initial_accumulator_value``) and the int32 ``step_t``
(the number of steps taken, incremented after each step). With ``t = step_t`` before the step::

    g = -g if maximize;  g = g + weight_decay * param
    lr_t = lr / (1 + t * lr_decay)
    accum += g * g;  param -= lr_t * g / (sqrt(accum) + eps)

(MindSpore's ``ApplyAdagradV2`` kernel: ``eps`` is outside the square root, unlike Optax's
``scale_by_rss``, so the rule is written out here.)
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.experimental.optim._checks import check_at_least, check_positive
from sporax.experimental.optim.optimizer import Optimizer
from sporax.nn.optim.optimizer import write

__all__ = ["Adagrad"]


def adagrad_rule(p, g, state, lr, hyper, *, lr_decay, eps, weight_decay, maximize):
    (acc,) = state
    (t,) = hyper
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    lr_t = lr / (1 + t * lr_decay)
    acc = acc + g * g
    return p - lr_t * g / (jnp.sqrt(acc) + eps), (acc,)


class Adagrad(Optimizer):
    """``Adagrad(params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0, eps=1e-10, *,
    maximize=False)``."""

    def __init__(self, params, lr=1e-2, lr_decay=0.0, weight_decay=0.0, initial_accumulator_value=0.0,
                 eps=1e-10, *, maximize: bool = False) -> None:
        where = "Adagrad"
        check_positive(lr, "lr", where)
        check_at_least(lr_decay, "lr_decay", where)
        check_at_least(weight_decay, "weight_decay", where)
        check_at_least(initial_accumulator_value, "initial_accumulator_value", where)
        check_positive(eps, "eps", where)
        super().__init__(params, {"lr": lr, "lr_decay": lr_decay, "eps": eps, "weight_decay": weight_decay,
                                  "initial_accumulator_value": initial_accumulator_value, "maximize": maximize})
        self.accum = self.parameters.clone(prefix="accum", init=float(initial_accumulator_value))
        self.step_t = Parameter(Tensor(jnp.int32(0)), name="step_t", requires_grad=False)
        self._rules: dict = {}

    def _rule_of(self, group):
        key = tuple(float(group[k]) for k in ("lr_decay", "eps", "weight_decay")) + (bool(group["maximize"]),)
        if key not in self._rules:
            self._rules[key] = functools.partial(adagrad_rule, lr_decay=key[0], eps=key[1], weight_decay=key[2],
                                                 maximize=key[3])
        return self._rules[key]

    def construct(self, gradients) -> bool:
        t = self.step_t._jax().astype(jnp.float32)
        self._step_groups(gradients, self._rule_of, (self.accum,), (t,))
        write(self.step_t, self.step_t._jax() + jnp.int32(1))
        return True
