"""Learning-rate schedules: Cells mapping the optimizer's ``global_step`` to a learning rate.

An optimizer given a ``LearningRateSchedule`` calls it with its ``global_step`` Parameter (an
int32 Tensor of shape ``(1,)``) before every update; the formulas are MindSpore 2.10's and
are pure ``jax.numpy``, so they trace under ``jit``.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from sporax.common._validation import check_bool, check_float, check_positive_int
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell

__all__ = ["LearningRateSchedule", "ExponentialDecayLR", "NaturalExpDecayLR", "InverseDecayLR",
           "CosineDecayLR", "PolynomialDecayLR", "WarmUpLR"]


def _step(global_step):
    return jnp.asarray(unwrap(global_step)).astype(jnp.float32)


class LearningRateSchedule(Cell):
    """Base of the schedules: subclasses define ``construct(global_step) -> Tensor``."""


class _DecayLR(LearningRateSchedule):
    def __init__(self, learning_rate: float, decay_rate: float, decay_steps: int, is_stair: bool = False) -> None:
        super().__init__()
        where = self.cls_name
        self.learning_rate = check_float(learning_rate, "learning_rate", where)
        self.decay_rate = check_float(decay_rate, "decay_rate", where)
        self.decay_steps = check_positive_int(decay_steps, "decay_steps", where)
        self.is_stair = check_bool(is_stair, "is_stair", where)


class ExponentialDecayLR(_DecayLR):
    """``lr * decay_rate ** p`` with ``p = step / decay_steps`` (floored when ``is_stair``)."""

    def construct(self, global_step) -> Tensor:
        p = _step(global_step) / self.decay_steps
        if self.is_stair:
            p = jnp.floor(p)
        return Tensor._wrap(self.learning_rate * jnp.power(jnp.float32(self.decay_rate), p))


class NaturalExpDecayLR(_DecayLR):
    """``lr * exp(-decay_rate * p)`` with ``p = step`` (rounded down to a multiple of decay_steps when ``is_stair``)."""

    def construct(self, global_step) -> Tensor:
        p = _step(global_step)
        if self.is_stair:
            p = jnp.floor(p / self.decay_steps) * self.decay_steps
        return Tensor._wrap(self.learning_rate * jnp.power(jnp.float32(math.e), -self.decay_rate * p))


class InverseDecayLR(_DecayLR):
    """``lr / (1 + decay_rate * p)`` with ``p = step / decay_steps`` (floored when ``is_stair``)."""

    def construct(self, global_step) -> Tensor:
        p = _step(global_step) / self.decay_steps
        if self.is_stair:
            p = jnp.floor(p)
        return Tensor._wrap(self.learning_rate / (1 + self.decay_rate * p))


class CosineDecayLR(LearningRateSchedule):
    """``min_lr + (max_lr - min_lr) / 2 * (1 + cos(pi * min(step, decay_steps) / decay_steps))``."""

    def __init__(self, min_lr: float, max_lr: float, decay_steps: int) -> None:
        super().__init__()
        self.min_lr = check_float(min_lr, "min_lr", "CosineDecayLR", positive=False)
        self.max_lr = check_float(max_lr, "max_lr", "CosineDecayLR")
        self.decay_steps = check_positive_int(decay_steps, "decay_steps", "CosineDecayLR")
        if min_lr >= max_lr:
            raise ValueError(
                f"For 'CosineDecayLR', the 'max_lr' should be greater than the 'min_lr', but got "
                f"max_lr={max_lr}, min_lr={min_lr}."
            )
        self.delta = 0.5 * (max_lr - min_lr)

    def construct(self, global_step) -> Tensor:
        p = jnp.minimum(_step(global_step), self.decay_steps)
        # MindSpore writes cos(x) as sin(x + pi/2); keep its form for bit-level agreement.
        return Tensor._wrap(self.min_lr + self.delta * (1.0 + jnp.sin(math.pi * (p / self.decay_steps + 0.5))))


class PolynomialDecayLR(LearningRateSchedule):
    """``(lr - end_lr) * (1 - p) ** power + end_lr`` with ``p = min(step, decay_steps) / decay_steps``.

    With ``update_decay_steps=True`` the horizon grows instead: ``decay_steps`` is multiplied by
    ``max(ceil(step / decay_steps), 1)``, so the schedule restarts its decay in cycles.
    """

    def __init__(self, learning_rate: float, end_learning_rate: float, decay_steps: int, power: float,
                 update_decay_steps: bool = False) -> None:
        super().__init__()
        where = "PolynomialDecayLR"
        self.start_learning_rate = check_float(learning_rate, "learning_rate", where)
        self.end_learning_rate = check_float(end_learning_rate, "end_learning_rate", where, positive=False)
        self.decay_steps = check_positive_int(decay_steps, "decay_steps", where)
        self.power = check_float(power, "power", where)
        self.update_decay_steps = check_bool(update_decay_steps, "update_decay_steps", where)
        self.diff_learning_rate = learning_rate - end_learning_rate

    def construct(self, global_step) -> Tensor:
        step = _step(global_step)
        decay_steps = jnp.float32(self.decay_steps)
        if self.update_decay_steps:
            decay_steps = decay_steps * jnp.maximum(jnp.ceil(step / decay_steps), 1.0)
        else:
            step = jnp.minimum(step, decay_steps)
        p = step / decay_steps
        return Tensor._wrap(self.diff_learning_rate * jnp.power(1.0 - p, self.power) + self.end_learning_rate)


class WarmUpLR(LearningRateSchedule):
    """``lr * min(step, warmup_steps) / warmup_steps``: a linear ramp from 0 to ``lr``."""

    def __init__(self, learning_rate: float, warmup_steps: int) -> None:
        super().__init__()
        self.learning_rate = check_float(learning_rate, "learning_rate", "WarmUpLR", positive=False)
        self.warmup_steps = check_positive_int(warmup_steps, "warmup_steps", "WarmUpLR")

    def construct(self, global_step) -> Tensor:
        return Tensor._wrap(self.learning_rate * (jnp.minimum(_step(global_step), self.warmup_steps) / self.warmup_steps))
