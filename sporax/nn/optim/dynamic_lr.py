"""Per-step learning-rate lists (``nn.piecewise_constant_lr``, ``nn.cosine_decay_lr``, ...).

Each function returns a plain list of ``total_step`` floats that an optimizer takes as its
``learning_rate`` (it then reads element ``global_step`` on every step). Epochs are
``floor(step / step_per_epoch)``; the formulas are MindSpore 2.10's.
"""

from __future__ import annotations

import math

from sporax.common._validation import check_bool, check_float, check_positive_int, msg

__all__ = ["piecewise_constant_lr", "exponential_decay_lr", "natural_exp_decay_lr", "inverse_decay_lr",
           "cosine_decay_lr", "polynomial_decay_lr", "warmup_lr"]


def _epochs(total_step: int, step_per_epoch: int, where: str) -> list[int]:
    check_positive_int(total_step, "total_step", where)
    check_positive_int(step_per_epoch, "step_per_epoch", where)
    return [i // step_per_epoch for i in range(total_step)]


def piecewise_constant_lr(milestone, learning_rates) -> list[float]:
    """``learning_rates[t]`` for the steps in ``[milestone[t-1], milestone[t])``; ``milestone[-1]`` values."""
    where = "piecewise_constant_lr"
    for arg, value in (("milestone", milestone), ("learning_rates", learning_rates)):
        if not isinstance(value, (list, tuple)):
            raise TypeError(msg(where, arg, "a list or tuple", value))
    if len(milestone) != len(learning_rates):
        raise ValueError(
            f"For '{where}', 'milestone' and 'learning_rates' should have the same length, but got "
            f"{len(milestone)} and {len(learning_rates)}."
        )
    out: list[float] = []
    last = 0
    for i, (stop, lr) in enumerate(zip(milestone, learning_rates)):
        check_positive_int(stop, f"milestone[{i}]", where)
        if not isinstance(lr, float):
            raise TypeError(msg(where, f"learning_rates[{i}]", "a float", lr))
        if stop < last:
            raise ValueError(msg(where, f"milestone[{i}]", f">= milestone[{i - 1}] ({last})", stop))
        out.extend([lr] * (stop - last))
        last = stop
    return out


def _decay_checks(learning_rate, decay_rate, decay_epoch, is_stair, where: str) -> None:
    check_float(learning_rate, "learning_rate", where)
    check_float(decay_rate, "decay_rate", where)
    check_positive_int(decay_epoch, "decay_epoch", where)
    check_bool(is_stair, "is_stair", where)


def exponential_decay_lr(learning_rate: float, decay_rate: float, total_step: int, step_per_epoch: int,
                         decay_epoch: int, is_stair: bool = False) -> list[float]:
    """``lr * decay_rate ** (epoch / decay_epoch)`` (exponent floored when ``is_stair``)."""
    _decay_checks(learning_rate, decay_rate, decay_epoch, is_stair, "exponential_decay_lr")
    return [learning_rate * decay_rate ** (e // decay_epoch if is_stair else e / decay_epoch)
            for e in _epochs(total_step, step_per_epoch, "exponential_decay_lr")]


def natural_exp_decay_lr(learning_rate: float, decay_rate: float, total_step: int, step_per_epoch: int,
                         decay_epoch: int, is_stair: bool = False) -> list[float]:
    """``lr * e ** (-decay_rate * epoch)`` (epoch rounded down to a multiple of decay_epoch when ``is_stair``)."""
    _decay_checks(learning_rate, decay_rate, decay_epoch, is_stair, "natural_exp_decay_lr")
    return [learning_rate * math.e ** (-decay_rate * ((e // decay_epoch) * decay_epoch if is_stair else e))
            for e in _epochs(total_step, step_per_epoch, "natural_exp_decay_lr")]


def inverse_decay_lr(learning_rate: float, decay_rate: float, total_step: int, step_per_epoch: int,
                     decay_epoch: int, is_stair: bool = False) -> list[float]:
    """``lr / (1 + decay_rate * epoch / decay_epoch)`` (ratio floored when ``is_stair``)."""
    _decay_checks(learning_rate, decay_rate, decay_epoch, is_stair, "inverse_decay_lr")
    return [learning_rate / (1 + decay_rate * (e // decay_epoch if is_stair else e / decay_epoch))
            for e in _epochs(total_step, step_per_epoch, "inverse_decay_lr")]


def cosine_decay_lr(min_lr: float, max_lr: float, total_step: int, step_per_epoch: int,
                    decay_epoch: int) -> list[float]:
    """``min_lr + (max_lr - min_lr) / 2 * (1 + cos(pi * min(epoch, decay_epoch) / decay_epoch))``."""
    where = "cosine_decay_lr"
    check_float(min_lr, "min_lr", where, positive=False)
    check_float(max_lr, "max_lr", where)
    check_positive_int(decay_epoch, "decay_epoch", where)
    if min_lr >= max_lr:
        raise ValueError(f"For '{where}', the 'max_lr' should be greater than 'min_lr', but got {max_lr} <= {min_lr}.")
    delta = 0.5 * (max_lr - min_lr)
    return [min_lr + delta * (1 + math.cos(math.pi * min(e, decay_epoch) / decay_epoch))
            for e in _epochs(total_step, step_per_epoch, where)]


def polynomial_decay_lr(learning_rate: float, end_learning_rate: float, total_step: int, step_per_epoch: int,
                        decay_epoch: int, power: float, update_decay_epoch: bool = False) -> list[float]:
    """``(lr - end_lr) * (1 - t / T) ** power + end_lr``: t = min(epoch, T), T = decay_epoch.

    With ``update_decay_epoch`` the horizon grows instead: ``T = decay_epoch * max(ceil(epoch / decay_epoch), 1)``
    and ``t = epoch``.
    """
    where = "polynomial_decay_lr"
    check_float(learning_rate, "learning_rate", where)
    check_float(end_learning_rate, "end_learning_rate", where, positive=False)
    check_float(power, "power", where)
    check_positive_int(decay_epoch, "decay_epoch", where)
    check_bool(update_decay_epoch, "update_decay_epoch", where)
    delta = learning_rate - end_learning_rate
    out = []
    for e in _epochs(total_step, step_per_epoch, where):
        if update_decay_epoch:
            horizon, t = decay_epoch * max(math.ceil(e / decay_epoch), 1), e
        else:
            horizon, t = decay_epoch, min(e, decay_epoch)
        out.append(delta * (1 - t / horizon) ** power + end_learning_rate)
    return out


def warmup_lr(learning_rate: float, total_step: int, step_per_epoch: int, warmup_epoch: int) -> list[float]:
    """``lr * min(epoch, warmup_epoch) / warmup_epoch``: a linear ramp from 0."""
    check_float(learning_rate, "learning_rate", "warmup_lr", positive=False)
    check_positive_int(warmup_epoch, "warmup_epoch", "warmup_lr")
    return [learning_rate * min(e, warmup_epoch) / warmup_epoch
            for e in _epochs(total_step, step_per_epoch, "warmup_lr")]
