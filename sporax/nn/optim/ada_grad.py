"""``nn.Adagrad``, ``nn.ProximalAdagrad`` and ``nn.FTRL`` with MindSpore 2.10's state names and formulas.

They run the same math as the primitives ``ApplyAdagrad``, ``ApplyProximalAdagrad`` and
``ApplyFtrl`` (:mod:`sporax.ops.operations._optim_ops`). State names: ``accum.<param>``
(Adagrad, ProximalAdagrad; initialized to ``accum``), ``moments.<param>`` (FTRL's accumulator,
initialized to ``initial_accum``) and ``linear.<param>`` (zeros).

Adagrad's rule is Optax's ``scale_by_rss`` with ``eps=0`` (accumulate, then divide by the
root); it is written out here because MindSpore's accumulator is the state checkpoints carry.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from sporax.common._validation import check_bool, msg
from sporax.nn.optim.optimizer import Optimizer
from sporax.ops.operations._optim_ops import ftrl_update, proximal

__all__ = ["Adagrad", "ProximalAdagrad", "FTRL"]


def adagrad_rule(p, g, state, lr, wd, hyper, *, update_slots: bool):
    (accum,) = state
    if update_slots:
        accum = accum + g * g
    return p - lr * g / jnp.sqrt(accum), (accum,)


def proximal_adagrad_rule(p, g, state, lr, wd, hyper, *, l1: float, l2: float):
    (accum,) = state
    accum = accum + g * g
    lr_t = lr / jnp.sqrt(accum)
    return proximal(p - lr_t * g, lr_t, l1, l2), (accum,)


def ftrl_rule(p, g, state, lr, wd, hyper, *, l1: float, l2: float, lr_power: float):
    accum, linear = state
    p, accum, linear = ftrl_update(p, accum, linear, g, lr, l1, l2, lr_power)
    return p, (accum, linear)


def _float(value, arg: str, where: str, low: float | None = 0.0, strict: bool = False) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(msg(where, arg, "a float", value))
    if low is not None and (value <= low if strict else value < low):
        raise ValueError(msg(where, arg, f"a float {'>' if strict else '>='} {low}", value))
    return float(value)


class Adagrad(Optimizer):
    """``Adagrad(params, accum=0.1, learning_rate=0.001, update_slots=True, loss_scale=1.0, weight_decay=0.0)``::

        accum += g * g;  param -= lr * g / sqrt(accum)
    """

    _shard_rows = True  # row-wise update: the parallel optimizer may shard it (parallel/plan.py)

    def __init__(self, params, accum: float = 0.1, learning_rate=0.001, update_slots: bool = True,
                 loss_scale: float = 1.0, weight_decay=0.0) -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        accum = _float(accum, "accum", "Adagrad")
        self.update_slots = check_bool(update_slots, "update_slots", "Adagrad")
        self.accum = self._parameters.clone(prefix="accum", init=accum)
        self._rule = functools.partial(adagrad_rule, update_slots=update_slots)

    def construct(self, gradients) -> bool:
        return self._apply_rule(gradients, self._rule, (self.accum,))


class ProximalAdagrad(Optimizer):
    """``ProximalAdagrad(params, accum=0.1, learning_rate=0.001, l1=0.0, l2=0.0, use_locking=False,
    loss_scale=1.0, weight_decay=0.0)``: Adagrad followed by the L1/L2 proximal step (``ApplyProximalAdagrad``)."""

    _shard_rows = True  # row-wise update: the parallel optimizer may shard it (parallel/plan.py)

    def __init__(self, params, accum: float = 0.1, learning_rate=0.001, l1: float = 0.0, l2: float = 0.0,
                 use_locking: bool = False, loss_scale: float = 1.0, weight_decay=0.0) -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        accum = _float(accum, "accum", "ProximalAdagrad")
        self.l1 = _float(l1, "l1", "ProximalAdagrad")
        self.l2 = _float(l2, "l2", "ProximalAdagrad")
        self.use_locking = check_bool(use_locking, "use_locking", "ProximalAdagrad")
        self.accum = self._parameters.clone(prefix="accum", init=accum)
        self._rule = functools.partial(proximal_adagrad_rule, l1=self.l1, l2=self.l2)

    def construct(self, gradients) -> bool:
        return self._apply_rule(gradients, self._rule, (self.accum,))


class FTRL(Optimizer):
    """``FTRL(params, initial_accum=0.1, learning_rate=0.001, lr_power=-0.5, l1=0.0, l2=0.0, use_locking=False,
    loss_scale=1.0, weight_decay=0.0)``: follow-the-regularized-leader (``ApplyFtrl``).

    As in MindSpore, the learning rate must be a fixed float (no schedule, no groups with their own lr).
    """

    _shard_rows = True  # row-wise update: the parallel optimizer may shard it (parallel/plan.py)

    def __init__(self, params, initial_accum: float = 0.1, learning_rate=0.001, lr_power: float = -0.5,
                 l1: float = 0.0, l2: float = 0.0, use_locking: bool = False, loss_scale: float = 1.0,
                 weight_decay=0.0) -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if self.dynamic_lr or self.is_group_lr:
            raise ValueError("For 'FTRL', dynamic learning rate and group learning rate are not supported: give "
                             "'learning_rate' as a float.")
        initial_accum = _float(initial_accum, "initial_accum", "FTRL")
        self.lr_power = _float(lr_power, "lr_power", "FTRL", low=None)
        if self.lr_power > 0:
            raise ValueError(msg("FTRL", "lr_power", "a float <= 0", lr_power))
        self.l1 = _float(l1, "l1", "FTRL")
        self.l2 = _float(l2, "l2", "FTRL")
        self.use_locking = check_bool(use_locking, "use_locking", "FTRL")
        self.lr = learning_rate
        self.moments = self._parameters.clone(prefix="moments", init=initial_accum)
        self.linear = self._parameters.clone(prefix="linear", init="zeros")
        self._rule = functools.partial(ftrl_rule, l1=self.l1, l2=self.l2, lr_power=self.lr_power)

    def construct(self, gradients) -> bool:
        return self._apply_rule(gradients, self._rule, (self.moments, self.linear))
