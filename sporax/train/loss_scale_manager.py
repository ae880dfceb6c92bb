"""Loss scale managers (``mindspore.amp``/``mindspore.train``): what ``Model`` and
``build_train_network`` turn into a loss-scaled train step.

- ``FixedLossScaleManager(loss_scale=128.0, drop_overflow_update=True)``: a constant scale;
  with ``drop_overflow_update`` a step with inf/NaN gradients is skipped
  (``TrainOneStepWithLossScaleCell`` + ``FixedLossScaleUpdateCell``), without it the scale is
  only the gradient's sensitivity (``TrainOneStepCell(sens=loss_scale)``; give the optimizer the
  same ``loss_scale`` to divide it back out, as in MindSpore).
- ``DynamicLossScaleManager(init_loss_scale=2**24, scale_factor=2, scale_window=2000)``: the
  scale is divided by ``scale_factor`` on overflow (never below 1) and multiplied by it after
  ``scale_window`` steps without one (``DynamicLossScaleUpdateCell``). Unlike MindSpore on CPU,
  sporax supports it on every device.
"""

from __future__ import annotations

from sporax.common._validation import msg

__all__ = ["LossScaleManager", "FixedLossScaleManager", "DynamicLossScaleManager"]


class LossScaleManager:
    """Base class of the loss scale managers."""

    def get_loss_scale(self):
        """The current loss scale."""

    def update_loss_scale(self, overflow) -> None:
        """Adjust the scale on the host after a step (``Model`` calls it)."""

    def get_update_cell(self):
        """The Cell that updates the scale inside the train step, or None."""


def _number(value, arg: str, where: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(msg(where, arg, "an int or float", value))
    return value


class FixedLossScaleManager(LossScaleManager):
    """A constant loss scale (see the module docstring)."""

    def __init__(self, loss_scale: float = 128.0, drop_overflow_update: bool = True) -> None:
        if _number(loss_scale, "loss_scale", "FixedLossScaleManager") < 1:
            raise ValueError(f"The argument 'loss_scale' must be >= 1, but got {loss_scale}")
        if not isinstance(drop_overflow_update, bool):
            raise TypeError(msg("FixedLossScaleManager", "drop_overflow_update", "a bool", drop_overflow_update))
        self._loss_scale = loss_scale
        self._drop_overflow_update = drop_overflow_update

    def get_loss_scale(self):
        return self._loss_scale

    def get_drop_overflow_update(self) -> bool:
        """Whether a step with overflowing gradients is skipped."""
        return self._drop_overflow_update

    def update_loss_scale(self, overflow) -> None:
        return None

    def get_update_cell(self):
        if not self._drop_overflow_update:
            return None
        from sporax.nn.loss_scale import FixedLossScaleUpdateCell

        return FixedLossScaleUpdateCell(self._loss_scale)


class DynamicLossScaleManager(LossScaleManager):
    """A loss scale that adapts to overflows (see the module docstring)."""

    def __init__(self, init_loss_scale=2 ** 24, scale_factor=2, scale_window: int = 2000) -> None:
        if _number(init_loss_scale, "init_loss_scale", "DynamicLossScaleManager") < 1.0:
            raise ValueError(f"The argument 'init_loss_scale' must be > 1, but got {init_loss_scale}")
        if isinstance(scale_window, bool) or not isinstance(scale_window, int) or scale_window <= 0:
            raise ValueError(msg("DynamicLossScaleManager", "scale_window", "a positive int", scale_window))
        if _number(scale_factor, "scale_factor", "DynamicLossScaleManager") <= 0:
            raise ValueError(f"The argument 'scale_factor' must be > 0, but got {scale_factor}")
        self.loss_scale = init_loss_scale
        self.scale_window = scale_window
        self.scale_factor = scale_factor
        self.increase_ratio = scale_factor
        self.decrease_ratio = 1 / scale_factor
        self.cur_iter = 1
        self.last_overflow_iter = 0
        self.bad_step_max = 1000
        self.bad_step = 0

    def get_loss_scale(self):
        return self.loss_scale

    def update_loss_scale(self, overflow) -> None:
        """The host-side mirror of the update cell (kept in step by ``Model.train``)."""
        if overflow:
            self.loss_scale = max(self.loss_scale * self.decrease_ratio, 1)
            self.last_overflow_iter = self.cur_iter
            self.bad_step += 1
        else:
            if (self.cur_iter - self.last_overflow_iter) % self.scale_window == 0:
                self.loss_scale *= self.increase_ratio
            self.bad_step = 0
        if self.bad_step > self.bad_step_max:
            raise RuntimeError(f"Dynamic loss scale Continuous overflow {self.bad_step} times, has exceeded "
                               "maximum threshold.")
        self.cur_iter += 1

    def get_drop_overflow_update(self) -> bool:
        return True

    def get_update_cell(self):
        from sporax.nn.loss_scale import DynamicLossScaleUpdateCell

        return DynamicLossScaleUpdateCell(self.loss_scale, self.scale_factor, self.scale_window)
