"""``experimental.optim.lr_scheduler``: epoch-wise learning-rate schedules over ``param_groups``.

``scheduler.step()`` advances ``last_epoch`` and writes each group's new ``lr`` (which the
optimizer reads into its learning-rate Parameter on its next step, compiled or not).
``get_last_lr()`` gives the current values. The values are the closed forms PyTorch and
MindSpore 2.10 produce.
"""

from __future__ import annotations

import math

from sporax.common._validation import msg
from sporax.experimental.optim.optimizer import Optimizer

__all__ = ["LRScheduler", "StepLR", "ExponentialLR", "CosineAnnealingLR", "LambdaLR"]


class LRScheduler:
    """Base class: ``LRScheduler(optimizer, last_epoch=-1)``; subclasses define :meth:`get_lr`."""

    def __init__(self, optimizer, last_epoch: int = -1) -> None:
        if not isinstance(optimizer, Optimizer):
            raise TypeError(msg(type(self).__name__, "optimizer", "an experimental.optim Optimizer",
                                type(optimizer).__name__))
        if isinstance(last_epoch, bool) or not isinstance(last_epoch, int):
            raise ValueError(msg(type(self).__name__, "last_epoch", "an int", last_epoch))
        if last_epoch < -1:
            raise ValueError(f"Invalid last_epoch: {last_epoch}")
        self.optimizer = optimizer
        for group in optimizer.param_groups:
            if last_epoch == -1:
                group.setdefault("initial_lr", group["lr"])
            elif "initial_lr" not in group:
                raise KeyError("param 'initial_lr' is not specified in param_groups when resuming an optimizer")
        self.base_lrs = [float(g["initial_lr"]) for g in optimizer.param_groups]
        self.last_epoch = last_epoch
        self._last_lr = [float(g["lr"]) for g in optimizer.param_groups]
        self.step()

    def get_lr(self) -> list:
        raise NotImplementedError(f"'{type(self).__name__}' must define get_lr().")

    def get_last_lr(self) -> list:
        """The learning rate of each group after the last :meth:`step`."""
        return list(self._last_lr)

    def step(self) -> None:
        """Advance one epoch and set every group's ``lr``."""
        self.last_epoch += 1
        values = self.get_lr()
        for gid, (group, lr) in enumerate(zip(self.optimizer.param_groups, values)):
            group["lr"] = float(lr)
            self.optimizer._sync_lr(gid)  # now, so that an already compiled step sees it
        self._last_lr = [float(g["lr"]) for g in self.optimizer.param_groups]


class StepLR(LRScheduler):
    """``StepLR(optimizer, step_size, gamma=0.1, last_epoch=-1)``: ``base * gamma ** (epoch // step_size)``."""

    def __init__(self, optimizer, step_size: int, gamma: float = 0.1, last_epoch: int = -1) -> None:
        if isinstance(step_size, bool) or not isinstance(step_size, int) or step_size < 1:
            raise ValueError(msg("StepLR", "step_size", "an int >= 1", step_size))
        self.step_size, self.gamma = step_size, float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [b * self.gamma ** (self.last_epoch // self.step_size) for b in self.base_lrs]


class ExponentialLR(LRScheduler):
    """``ExponentialLR(optimizer, gamma, last_epoch=-1)``: ``base * gamma ** epoch``."""

    def __init__(self, optimizer, gamma: float, last_epoch: int = -1) -> None:
        if isinstance(gamma, bool) or not isinstance(gamma, (int, float)):
            raise TypeError(msg("ExponentialLR", "gamma", "a float", gamma))
        self.gamma = float(gamma)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [b * self.gamma ** self.last_epoch for b in self.base_lrs]


class CosineAnnealingLR(LRScheduler):
    """``CosineAnnealingLR(optimizer, T_max, eta_min=0.0, last_epoch=-1)``:
    ``eta_min + (base - eta_min) * (1 + cos(pi * epoch / T_max)) / 2``."""

    def __init__(self, optimizer, T_max: int, eta_min: float = 0.0, last_epoch: int = -1) -> None:  # noqa: N803
        if isinstance(T_max, bool) or not isinstance(T_max, int) or T_max < 1:
            raise ValueError(msg("CosineAnnealingLR", "T_max", "an int >= 1", T_max))
        self.T_max, self.eta_min = T_max, float(eta_min)
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        c = (1 + math.cos(math.pi * self.last_epoch / self.T_max)) / 2
        return [self.eta_min + (b - self.eta_min) * c for b in self.base_lrs]


class LambdaLR(LRScheduler):
    """``LambdaLR(optimizer, lr_lambda, last_epoch=-1)``: ``base * lr_lambda(epoch)`` (one function, or one per group)."""

    def __init__(self, optimizer, lr_lambda, last_epoch: int = -1) -> None:
        n = len(optimizer.param_groups) if isinstance(optimizer, Optimizer) else 0
        fns = list(lr_lambda) if isinstance(lr_lambda, (list, tuple)) else [lr_lambda] * n
        if len(fns) != n or not all(callable(f) for f in fns):
            raise ValueError(f"For 'LambdaLR', 'lr_lambda' should be a function or a list of {n} functions.")
        self.lr_lambdas = fns
        super().__init__(optimizer, last_epoch)

    def get_lr(self) -> list:
        return [b * f(self.last_epoch) for b, f in zip(self.base_lrs, self.lr_lambdas)]
