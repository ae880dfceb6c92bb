"""Loss scaling for mixed-precision training: ``TrainOneStepWithLossScaleCell`` and its update cells.

``TrainOneStepWithLossScaleCell(network, optimizer, scale_sense)`` runs one step as MindSpore
2.10 does: the loss's cotangent is the scale (so the gradients are of ``loss * scale``), the
gradients are divided by the scale, checked for inf/NaN (``overflow``), the update cell
(``DynamicLossScaleUpdateCell``/``FixedLossScaleUpdateCell``) adjusts the scale, and the
optimizer step is skipped when the check failed. It returns ``(loss, overflow, scale)`` with
the scale used in this step.

Skipping is exact under ``jax.jit`` too: the optimizer runs, and every Parameter it wrote
(weights, moments, ``global_step``) is given back its previous value where ``overflow`` is true
(one select per parameter in the compiled step); eagerly the optimizer is simply not called.

Checkpoint keys, as MindSpore writes them: the train cell adds ``scale_sense``; a
``DynamicLossScaleUpdateCell`` adds ``current_iterator_step`` and ``last_overflow_iterator_step``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common._validation import msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.nn.wrap import TrainOneStepCell

__all__ = ["DynamicLossScaleUpdateCell", "FixedLossScaleUpdateCell", "TrainOneStepWithLossScaleCell"]


def _number(value, arg: str, where: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(msg(where, arg, "an int or float", value))
    return value


class DynamicLossScaleUpdateCell(Cell):
    """Halve the scale on overflow, double it after ``scale_window`` steps without one.

    ``DynamicLossScaleUpdateCell(loss_scale_value, scale_factor, scale_window)``; called as
    ``cell(scale_param, overflow) -> overflow``, writing the new scale into ``scale_param``.
    The scale never goes below 1.
    """

    def __init__(self, loss_scale_value, scale_factor, scale_window) -> None:
        super().__init__()
        self.loss_scale_value = _number(loss_scale_value, "loss_scale_value", "DynamicLossScaleUpdateCell")
        self.scale_factor = float(_number(scale_factor, "scale_factor", "DynamicLossScaleUpdateCell"))
        if isinstance(scale_window, bool) or not isinstance(scale_window, int) or scale_window <= 0:
            raise ValueError(msg("DynamicLossScaleUpdateCell", "scale_window", "a positive int", scale_window))
        self.scale_window = scale_window
        self.cur_iter = Parameter(Tensor(np.array(1, np.int32)), name="current_iterator_step")
        self.last_overflow_iter = Parameter(Tensor(np.array(0, np.int32)), name="last_overflow_iterator_step")

    def get_loss_scale(self):
        return self.loss_scale_value

    def construct(self, loss_scale, overflow):
        scale = unwrap(loss_scale)
        ov = unwrap(overflow)
        cur, last = self.cur_iter._jax(), self.last_overflow_iter._jax()
        factor = jnp.asarray(self.scale_factor, scale.dtype)
        on_overflow = jnp.where(ov, jnp.maximum(scale / factor, jnp.asarray(1.0, scale.dtype)), scale)
        should_inc = (cur - last) >= self.scale_window
        self.last_overflow_iter.set_data(Tensor._wrap(jnp.where(ov | should_inc, cur, last)))
        new_scale = jnp.where(should_inc & ~ov, on_overflow * factor, on_overflow)
        loss_scale.set_data(Tensor._wrap(new_scale.astype(scale.dtype)))
        self.cur_iter.set_data(Tensor._wrap(cur + 1))
        return overflow


class FixedLossScaleUpdateCell(Cell):
    """A constant scale: ``cell(scale_param, overflow) -> overflow`` (a step still skips on overflow)."""

    def __init__(self, loss_scale_value) -> None:
        super().__init__()
        self.loss_scale_value = _number(loss_scale_value, "loss_scale_value", "FixedLossScaleUpdateCell")

    def get_loss_scale(self):
        return self.loss_scale_value

    def construct(self, _, overflow):
        return overflow


def _overflow(grads) -> jax.Array:
    """True if any gradient holds an inf or NaN."""
    flags = [~jnp.all(jnp.isfinite(unwrap(g))) for g in grads if jnp.issubdtype(unwrap(g).dtype, jnp.inexact)]
    if not flags:
        return jnp.asarray(False)
    return jnp.any(jnp.stack(flags))


class TrainOneStepWithLossScaleCell(TrainOneStepCell):
    """One loss-scaled training step (see the module docstring).

    ``scale_sense``: a ``DynamicLossScaleUpdateCell``/``FixedLossScaleUpdateCell`` (its
    initial scale becomes the Parameter ``scale_sense``) or a Tensor of shape () or (1,)
    (a fixed scale, settable with :meth:`set_sense_scale`).
    """

    def __init__(self, network: Cell, optimizer: Cell, scale_sense) -> None:
        super().__init__(network, optimizer, sens=None)
        self.loss_scaling_manager = None
        if isinstance(scale_sense, Cell):
            self.loss_scaling_manager = scale_sense
            value = np.array(scale_sense.get_loss_scale(), np.float32)
            self.scale_sense = Parameter(Tensor(value), name="scale_sense")
        elif isinstance(scale_sense, Tensor):
            if scale_sense.shape not in ((1,), ()):
                raise ValueError("For 'TrainOneStepWithLossScaleCell', the shape of 'scale_sense' must be (1,) or (), "
                                 f"but got {scale_sense.shape}.")
            self.scale_sense = Parameter(scale_sense, name="scale_sense")
        else:
            raise TypeError("For 'TrainOneStepWithLossScaleCell', the 'scale_sense' must be Cell or Tensor, but got "
                            f"'scale_sense' type: {type(scale_sense)}.")
        self._opt_state = None

    def set_sense_scale(self, sens) -> None:
        """Set the scale (a Tensor of the scale's shape)."""
        if not isinstance(sens, Tensor):
            raise TypeError(f"For 'TrainOneStepWithLossScaleCell', the type of 'sens' must be Tensor, but got {type(sens)}")
        self.scale_sense.set_data(sens.astype(self.scale_sense.dtype))

    def get_overflow_status(self, status, compute_output):
        """A bool Tensor: True if any of ``compute_output`` (the gradients) is inf or NaN."""
        return Tensor._wrap(_overflow(compute_output))

    def process_loss_scale(self, overflow):
        """Let the update cell adjust the scale; returns the overflow flag it decides on."""
        if self.loss_scaling_manager is not None:
            return self.loss_scaling_manager(self.scale_sense, overflow)
        return overflow

    def construct(self, *inputs):
        from sporax.ops.composite import _differentiate

        scale = self.scale_sense._jax()
        scaling_sens = Tensor._wrap(scale)
        # the loss's cotangent: the scale broadcast to the loss's shape and dtype (MindSpore's
        # ones_like(loss) * cast(scale, loss.dtype)), so the gradients are of loss * scale
        sens = Tensor._wrap(scale.reshape(()))
        loss, _, grads = _differentiate(self.network, inputs, {}, (), list(self.weights), sens, False)
        inv = 1.0 / scale.reshape(())
        grads = tuple(Tensor._wrap(unwrap(g) * inv.astype(unwrap(g).dtype)) for g in grads)
        if self.grad_reducer is not None:
            grads = self.grad_reducer(grads)
        cond = self.get_overflow_status(None, grads)
        overflow = self.process_loss_scale(cond)
        self._step_unless(overflow, grads)
        return loss, cond, scaling_sens

    def _step_unless(self, overflow, grads) -> None:
        """``optimizer(grads)`` unless ``overflow``: skipped eagerly, undone by selects under a trace."""
        flag = unwrap(overflow)
        if not isinstance(flag, jax.core.Tracer):
            if not bool(np.asarray(flag).all()):
                self.optimizer(grads)
            return
        if self._opt_state is None:
            self._opt_state = tuple(self.optimizer.get_parameters())  # each once (by identity)
        state = self._opt_state
        before = [p._jax() for p in state]
        self.optimizer(grads)
        flag = jnp.all(flag)
        for p, old in zip(state, before):
            new = p._value
            if new is not old:
                p.set_data(Tensor._wrap(jnp.where(flag, old, new)))
