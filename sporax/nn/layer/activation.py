"""Activation layers (``nn.ReLU``, ``nn.GELU``, ...) and ``get_activation``, as in MindSpore 2.x.

Each layer is a parameter-free Cell whose ``construct`` is one ``jax.nn`` / ``jax.numpy``
function on the unwrapped array, so it traces cleanly under ``jit`` and ``grad``.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sporax.common._validation import check_bool, msg
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell

__all__ = ["ReLU", "ReLU6", "GELU", "Sigmoid", "Tanh", "Softmax", "LogSoftmax", "SiLU", "LeakyReLU",
           "ELU", "get_activation"]


class _Elementwise(Cell):
    """A parameter-free activation: ``construct(x) = fn(x)``."""

    def _fn(self, a):
        raise RuntimeError(f"'{self.cls_name}' must define _fn.")

    def construct(self, x) -> Tensor:
        return Tensor._wrap(self._fn(unwrap(x)))


class ReLU(_Elementwise):
    """``max(x, 0)`` elementwise (MindSpore's ``ReLU`` Primitive, so amp O1 casts it)."""

    def _fn(self, a):
        return jax.nn.relu(a)

    def construct(self, x) -> Tensor:
        from sporax.ops.functional import relu

        return relu(x)


class ReLU6(_Elementwise):
    """``min(max(x, 0), 6)`` elementwise."""

    def _fn(self, a):
        return jax.nn.relu6(a)


class GELU(_Elementwise):
    """Gaussian error linear unit; ``approximate=True`` (MindSpore's default) is the tanh form."""

    def __init__(self, approximate: bool = True) -> None:
        super().__init__()
        self.approximate = check_bool(approximate, "approximate", "GELU")

    def _fn(self, a):
        return jax.nn.gelu(a, approximate=self.approximate)

    def extend_repr(self) -> str:
        return f"approximate={self.approximate}"


class Sigmoid(_Elementwise):
    """``1 / (1 + exp(-x))`` elementwise."""

    def _fn(self, a):
        return jax.nn.sigmoid(a)


class Tanh(_Elementwise):
    """Hyperbolic tangent elementwise."""

    def _fn(self, a):
        return jnp.tanh(a)


class SiLU(_Elementwise):
    """``x * sigmoid(x)`` elementwise."""

    def _fn(self, a):
        return jax.nn.silu(a)


class _AxisActivation(_Elementwise):
    def __init__(self, axis=-1) -> None:
        super().__init__()
        if isinstance(axis, list):
            axis = tuple(axis)
        if not (isinstance(axis, int) and not isinstance(axis, bool)) and not (
            isinstance(axis, tuple) and all(isinstance(a, int) for a in axis)
        ):
            raise TypeError(msg(type(self).__name__, "axis", "an int or a tuple of int", axis))
        self.axis = axis

    def extend_repr(self) -> str:
        return f"axis={self.axis}"


class Softmax(_AxisActivation):
    """``exp(x) / sum(exp(x))`` along ``axis`` (default the last)."""

    def _fn(self, a):
        return jax.nn.softmax(a, axis=self.axis)


class LogSoftmax(_AxisActivation):
    """``log(softmax(x))`` along ``axis``, computed stably."""

    def _fn(self, a):
        return jax.nn.log_softmax(a, axis=self.axis)


class LeakyReLU(_Elementwise):
    """``x`` where ``x >= 0``, ``alpha * x`` elsewhere (MindSpore's default ``alpha=0.2``)."""

    def __init__(self, alpha: float = 0.2) -> None:
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(msg("LeakyReLU", "alpha", "an int or float", alpha))
        self.alpha = float(alpha)

    def _fn(self, a):
        return jnp.where(a >= 0, a, a * jnp.asarray(self.alpha, a.dtype))


class ELU(_Elementwise):
    """``x`` where ``x > 0``, ``alpha * (exp(x) - 1)`` elsewhere."""

    def __init__(self, alpha: float = 1.0) -> None:
        super().__init__()
        if isinstance(alpha, bool) or not isinstance(alpha, (int, float)):
            raise TypeError(msg("ELU", "alpha", "a float", alpha))
        self.alpha = float(alpha)

    def _fn(self, a):
        return jax.nn.elu(a, alpha=self.alpha)


_ACTIVATIONS = {
    "relu": ReLU,
    "relu6": ReLU6,
    "gelu": GELU,
    "sigmoid": Sigmoid,
    "tanh": Tanh,
    "softmax": Softmax,
    "logsoftmax": LogSoftmax,
    "silu": SiLU,
    "leakyrelu": LeakyReLU,
    "elu": ELU,
}


def get_activation(name: str | None, prim_name: str | None = None) -> Cell | None:
    """A new activation Cell for ``name`` (``'relu'``, ``'gelu'``, ...); ``None`` for ``None``.

    >>> get_activation('relu')
    ReLU<>
    """
    if name is None:
        return None
    if name not in _ACTIVATIONS:
        where = f"For '{prim_name}', the" if prim_name else "The"
        raise KeyError(f"{where} 'name' must be in {list(_ACTIVATIONS)}, but got {name!r}.")
    return _ACTIVATIONS[name]()
