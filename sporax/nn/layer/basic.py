"""Basic layers: ``nn.Dense``, ``nn.Flatten`` and ``nn.Dropout`` with MindSpore 2.x signatures.

Defaults follow MindSpore 2.10: Dense's weight is ``(out_channels, in_channels)`` drawn from
``HeUniform(sqrt(5))``, its bias from ``Uniform(1/sqrt(in_channels))``; Dropout is the identity
outside training mode.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from sporax.common import dtype as mstype
from sporax.common._validation import check_bool, check_int, check_positive_int, msg
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.nn.layer._utils import check_dtype, check_float, make_param
from sporax.nn.layer.activation import get_activation
from sporax.ops import primitive as _primitive
from sporax.ops.primitive import Primitive

__all__ = ["Dense", "Flatten", "Dropout"]


def _check_init_shape(init, shape: tuple, arg: str, where: str) -> None:
    if isinstance(init, Tensor) and tuple(init.shape) != tuple(shape):
        raise ValueError(
            f"For '{where}', the shape of '{arg}' should be {tuple(shape)}, but got {tuple(init.shape)}."
        )


def resolve_activation(activation, where: str):
    """A Cell/Primitive for ``activation`` (a name, a Cell, a Primitive or None)."""
    if isinstance(activation, str):
        return get_activation(activation, where)
    if activation is not None and not isinstance(activation, (Cell, Primitive)):
        raise TypeError(msg(where, "activation", "a str, Cell, Primitive or None", activation))
    return activation


class Dense(Cell):
    """Fully connected layer: ``activation(x @ weight.T + bias)`` over the last axis of ``x``.

    ``Dense(in_channels, out_channels, weight_init=None, bias_init=None, has_bias=True,
    activation=None, dtype=mstype.float32)``; parameters ``weight`` (out, in) and ``bias`` (out,).
    """

    def __init__(self, in_channels: int, out_channels: int, weight_init=None, bias_init=None,
                 has_bias: bool = True, activation=None, dtype=mstype.float32) -> None:
        super().__init__()
        from sporax.common.initializer import HeUniform, Uniform

        self.in_channels = check_positive_int(in_channels, "in_channels", "Dense")
        self.out_channels = check_positive_int(out_channels, "out_channels", "Dense")
        self.has_bias = check_bool(has_bias, "has_bias", "Dense")
        check_dtype(dtype, "Dense")
        _check_init_shape(weight_init, (out_channels, in_channels), "weight_init", "Dense")
        if weight_init is None:
            weight_init = HeUniform(math.sqrt(5))
        self.weight = make_param(weight_init, (out_channels, in_channels), dtype, "weight")
        self.bias = None
        if self.has_bias:
            _check_init_shape(bias_init, (out_channels,), "bias_init", "Dense")
            if bias_init is None:
                bias_init = Uniform(scale=1 / math.sqrt(in_channels))
            self.bias = make_param(bias_init, (out_channels,), dtype, "bias")
        from sporax.ops.operations import BiasAdd, MatMul

        # MindSpore's attributes, so that ``dense.matmul.shard(...)`` sets the layer's strategy.
        if self.has_bias:
            self.bias_add = BiasAdd()
        self.matmul = MatMul(transpose_b=True)
        self.activation = resolve_activation(activation, "Dense")
        self.activation_flag = self.activation is not None

    def construct(self, x) -> Tensor:
        a = unwrap(x)
        if a.shape[-1] != self.in_channels:
            raise ValueError(
                f"For 'Dense', the last dimension of the input should be in_channels={self.in_channels}, "
                f"but got input shape {tuple(a.shape)}."
            )
        if _primitive._shard_scope:  # a semi-auto parallel step is traced: the strategies apply
            return self._construct_sharded(x, a)
        y = jnp.matmul(a, self.weight._jax().T)
        if self.bias is not None:
            y = y + self.bias._jax()
        out = Tensor._wrap(y)
        if self.activation_flag:
            out = self.activation(out)
        return out

    def _construct_sharded(self, x, a) -> Tensor:
        """MindSpore's construct, through the primitives: 2-D ``matmul``, ``bias_add``, reshape back."""
        if a.ndim != 2:
            x = Tensor._wrap(jnp.reshape(a, (-1, a.shape[-1])))
        out = self.matmul(x, self.weight)
        if self.bias is not None:
            out = self.bias_add(out, self.bias)
        if self.activation_flag:
            out = self.activation(out)
        if a.ndim != 2:
            out = Tensor._wrap(jnp.reshape(out._jax(), (*a.shape[:-1], self.out_channels)))
        return out

    def extend_repr(self) -> str:
        s = f"input_channels={self.in_channels}, output_channels={self.out_channels}, has_bias={self.has_bias}"
        if self.activation_flag:
            s += f", activation={self.activation}"
        return s


class Flatten(Cell):
    """Flattens dimensions ``start_dim`` .. ``end_dim`` into one (default: all but the batch axis)."""

    def __init__(self, start_dim: int = 1, end_dim: int = -1) -> None:
        super().__init__()
        self.start_dim = check_int(start_dim, "start_dim", "Flatten")
        self.end_dim = check_int(end_dim, "end_dim", "Flatten")

    def construct(self, x) -> Tensor:
        a = unwrap(x)
        ndim = max(a.ndim, 1)
        start, end = self.start_dim, self.end_dim
        for v in (start, end):
            if not -ndim <= v < ndim:
                raise ValueError(
                    f"For 'Flatten', 'start_dim' and 'end_dim' should be in [{-ndim}, {ndim}) for an input of "
                    f"rank {a.ndim}, but got start_dim={start}, end_dim={end}."
                )
        if a.ndim == 0:
            return Tensor._wrap(jnp.reshape(a, (1,)))
        start, end = start % ndim, end % ndim
        if start > end:
            raise ValueError(f"For 'Flatten', 'start_dim' ({start}) should not be after 'end_dim' ({end}).")
        shape = a.shape[:start] + (-1,) + a.shape[end + 1:]
        return Tensor._wrap(jnp.reshape(a, shape))


class Dropout(Cell):
    """Randomly zeroes elements with probability ``p`` in training mode, scaling the rest by ``1/(1-p)``.

    ``Dropout(keep_prob=0.5, p=None, dtype=mstype.float32)``: ``p`` (the drop probability, in
    [0, 1)) wins over the older ``keep_prob`` (in (0, 1]). Outside training mode it is the identity.
    The random key comes from ``sporax.common._random_state``, which gives a fresh key per call
    both eagerly and under ``jit`` (where the key is threaded as state).
    """

    def __init__(self, keep_prob: float = 0.5, p: float | None = None, dtype=mstype.float32) -> None:
        super().__init__()
        if p is None:
            if not isinstance(keep_prob, float):
                raise TypeError(msg("Dropout", "keep_prob", "a float", keep_prob))
            keep_prob = check_float(keep_prob, "keep_prob", "Dropout", 0.0, 1.0, low_inclusive=False)
        else:
            p = check_float(p, "p", "Dropout", 0.0, 1.0, high_inclusive=False)
            keep_prob = 1.0 - p
        self.p = p
        self.keep_prob = keep_prob

    def construct(self, x) -> Tensor:
        if not self.training or self.keep_prob == 1.0:
            return x if isinstance(x, Tensor) else Tensor._wrap(x)
        from sporax.common import _random_state

        a = unwrap(x)
        key = _random_state.next_key()
        keep = jax.random.bernoulli(key, self.keep_prob, a.shape)
        scale = jnp.asarray(1.0 / self.keep_prob, a.dtype)
        return Tensor._wrap(jnp.where(keep, a * scale, jnp.zeros((), a.dtype)))

    def extend_repr(self) -> str:
        return f"p={self.p}" if self.p is not None else f"keep_prob={self.keep_prob}"
