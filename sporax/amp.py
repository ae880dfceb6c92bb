"""``sporax.amp`` (``mindspore.amp``): mixed precision and loss scaling.

Network preparation (:mod:`sporax.train.amp`): ``auto_mixed_precision``, ``custom_mixed_precision``,
``build_train_network``, ``get_white_list``, ``get_black_list``. Loss scale managers for
``Model``/``build_train_network`` (:mod:`sporax.train.loss_scale_manager`). And, for functional
training loops, the loss scalers::

    scaler = amp.DynamicLossScaler(scale_value=2**10, scale_factor=2, scale_window=50)

    def forward(x, y):
        return scaler.scale(loss_fn(net(x), y))

    grad_fn = ms.value_and_grad(forward, None, opt.parameters)
    loss, grads = grad_fn(x, y)
    loss, grads = scaler.unscale(loss), scaler.unscale(grads)
    finite = amp.all_finite(grads)
    if finite:              # also inside @jit / GRAPH_MODE (sporax.common._branching)
        opt(grads)
    scaler.adjust(finite)

A scaler's state (``scale_value``, and ``counter`` for the dynamic one) is Parameters, so a
``@jit`` function that uses a scaler carries them as state.
"""

from __future__ import annotations

from abc import ABC, abstractmethod

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common._validation import msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, unwrap
from sporax.train.amp import (
    auto_mixed_precision,
    build_train_network,
    custom_mixed_precision,
    get_black_list,
    get_white_list,
)
from sporax.train.loss_scale_manager import DynamicLossScaleManager, FixedLossScaleManager, LossScaleManager

__all__ = ["DynamicLossScaleManager", "LossScaleManager", "FixedLossScaleManager", "build_train_network",
           "DynamicLossScaler", "StaticLossScaler", "LossScaler", "auto_mixed_precision", "all_finite",
           "custom_mixed_precision", "get_white_list", "get_black_list"]


def _leaves(inputs) -> list:
    return [x for x in jax.tree_util.tree_leaves(inputs, is_leaf=lambda t: isinstance(t, Tensor))]


def all_finite(inputs) -> Tensor:
    """A bool Tensor: True when every floating value in ``inputs`` (a Tensor or a tuple/list of them) is finite."""
    flags = [jnp.all(jnp.isfinite(unwrap(x))) for x in _leaves(inputs)
             if jnp.issubdtype(jnp.asarray(unwrap(x)).dtype, jnp.inexact)]
    if not flags:
        return Tensor._wrap(jnp.asarray(True))
    return Tensor._wrap(jnp.all(jnp.stack(flags)))


def _map(fn, inputs):
    if isinstance(inputs, (tuple, list)):
        return type(inputs)(_map(fn, x) for x in inputs)
    if isinstance(inputs, dict):
        return {k: _map(fn, v) for k, v in inputs.items()}
    if isinstance(inputs, Tensor) or isinstance(inputs, (jax.Array, np.ndarray)):
        return Tensor._wrap(fn(unwrap(inputs)))
    return inputs


def _check_scale(scale_value, where: str) -> float:
    if isinstance(scale_value, bool) or not isinstance(scale_value, (int, float)):
        raise TypeError(msg(where, "scale_value", "an int or float", scale_value))
    if scale_value < 1.0:
        raise ValueError(f"The argument 'scale_value' must be > 1, but got {scale_value}")
    return float(scale_value)


class LossScaler(ABC):
    """Base class: ``scale(inputs)``, ``unscale(inputs)``, ``adjust(grads_finite)``."""

    @abstractmethod
    def scale(self, inputs):
        """``inputs`` multiplied by the scale."""

    @abstractmethod
    def unscale(self, inputs):
        """``inputs`` divided by the scale."""

    @abstractmethod
    def adjust(self, grads_finite):
        """Update the scale after a step."""

    def _sporax_state_roots(self) -> tuple:
        return tuple(v for v in vars(self).values() if isinstance(v, Parameter))

    def _scale_by(self, inputs, inverse: bool):
        s = self.scale_value._jax()
        return _map(lambda a: a * (1.0 / s if inverse else s).astype(a.dtype), inputs)


class StaticLossScaler(LossScaler):
    """A fixed scale: ``StaticLossScaler(scale_value)`` (>= 1)."""

    def __init__(self, scale_value) -> None:
        value = _check_scale(scale_value, "StaticLossScaler")
        self.scale_value = Parameter(Tensor(np.float32(value)), name="scale_value")

    def scale(self, inputs):
        return self._scale_by(inputs, False)

    def unscale(self, inputs):
        return self._scale_by(inputs, True)

    def adjust(self, grads_finite) -> bool:
        return False


class DynamicLossScaler(LossScaler):
    """``DynamicLossScaler(scale_value, scale_factor, scale_window)``: ``adjust(finite)`` divides the
    scale by ``scale_factor`` (not below 1) when the gradients were not finite, and multiplies it
    after ``scale_window`` finite steps in a row (unless that would overflow)."""

    def __init__(self, scale_value, scale_factor, scale_window) -> None:
        value = _check_scale(scale_value, "DynamicLossScaler")
        for arg, v in (("scale_window", scale_window), ("scale_factor", scale_factor)):
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(msg("DynamicLossScaler", arg, "a positive int", v))
        self.scale_value = Parameter(Tensor(np.float32(value)), name="scale_value")
        self.scale_window = scale_window
        self.scale_factor = scale_factor
        self.counter = Parameter(Tensor(np.int32(0)), name="counter")

    def scale(self, inputs):
        return self._scale_by(inputs, False)

    def unscale(self, inputs):
        return self._scale_by(inputs, True)

    def adjust(self, grads_finite) -> bool:
        finite = jnp.asarray(unwrap(grads_finite)).astype(bool).reshape(())
        s = self.scale_value._jax()
        counter = self.counter._jax()
        grown = s * self.scale_factor
        up = jnp.where(counter == self.scale_window - 1, jnp.where(jnp.isfinite(grown), grown, s), s)
        down = jnp.maximum(jnp.ones((), s.dtype), s / self.scale_factor)
        self.scale_value.set_data(Tensor._wrap(jnp.where(finite, up, down).astype(s.dtype)))
        self.counter.set_data(Tensor._wrap(((counter + 1) % self.scale_window * finite).astype(counter.dtype)))
        return True
