"""Initializers (spec §4): pure descriptions that produce any rectangular window of a full tensor.

An ``Initializer`` keeps only its hyper-parameters. ``window(seed, full_shape, dtype, offsets,
sizes)`` returns the window ``[offsets : offsets + sizes]`` of the full tensor that the
initializer defines for ``seed``, bit-identical to that window of the full materialization,
in memory proportional to the window. Random kinds read the counter-based generator of
``sporax.common._rng`` (values drawn in float32, then cast to ``dtype``: ints truncate toward
zero). ``Identity``, ``Dirac`` and constants compute their pattern's window directly.
``Orthogonal`` and ``Sparse`` need the whole matrix: they compute it once per process (a small
cache) and cut the window.

Fan convention (MindSpore's, as for Dense weights ``(out, in)``): ``fan_in = shape[1] * rf``,
``fan_out = shape[0] * rf`` with ``rf = prod(shape[2:])``.
"""

from __future__ import annotations

import abc
import collections
import math
import numbers
import threading

import numpy as np

from sporax.common import _rng
from sporax.common import dtype as mstype
from sporax.common.dtype import Type

__all__ = [
    "Initializer",
    "Zero",
    "One",
    "Constant",
    "Normal",
    "Uniform",
    "TruncatedNormal",
    "XavierUniform",
    "XavierNormal",
    "HeUniform",
    "HeNormal",
    "Identity",
    "Orthogonal",
    "Dirac",
    "VarianceScaling",
    "Sparse",
    "initializer",
]


# ---------------------------------------------------------------------------------- helpers
def _fans(shape: tuple, where: str) -> tuple[int, int]:
    """``(fan_in, fan_out)`` of ``shape`` by MindSpore's rule; ValueError below 2 dimensions."""
    if len(shape) < 2:
        raise ValueError(
            f"For '{where}', fan in and fan out can not be computed for a tensor with fewer than 2 "
            f"dimensions, but got shape {tuple(shape)}."
        )
    rf = math.prod(shape[2:])
    return shape[1] * rf, shape[0] * rf


_GAIN_ONE = (
    "linear",
    "conv1d",
    "conv2d",
    "conv3d",
    "conv_transpose1d",
    "conv_transpose2d",
    "conv_transpose3d",
    "sigmoid",
)


def _gain(nonlinearity, negative_slope, where: str) -> float:
    """The recommended gain of ``nonlinearity`` (spec §4.2 gain rule)."""
    if nonlinearity in _GAIN_ONE:
        return 1.0
    if nonlinearity == "tanh":
        return 5.0 / 3
    if nonlinearity == "relu":
        return math.sqrt(2.0)
    if nonlinearity == "leaky_relu":
        if negative_slope is None:
            slope = 0.01
        elif isinstance(negative_slope, (int, float)) and not isinstance(negative_slope, bool):
            slope = negative_slope
        else:
            raise ValueError(
                f"For '{where}', the 'negative_slope' should be an int, a float or None, but got {negative_slope!r}."
            )
        return math.sqrt(2.0 / (1 + slope**2))
    raise ValueError(
        f"For '{where}', the 'nonlinearity' should be one of {[*_GAIN_ONE, 'tanh', 'relu', 'leaky_relu']}, "
        f"but got {nonlinearity!r}."
    )


def _he_fan(shape: tuple, mode, where: str) -> int:
    if not isinstance(mode, str) or mode.lower() not in ("fan_in", "fan_out"):
        raise ValueError(f"For '{where}', the 'mode' should be 'fan_in' or 'fan_out', but got {mode!r}.")
    fan_in, fan_out = _fans(shape, where)
    return fan_in if mode.lower() == "fan_in" else fan_out


def _np_dtype(dtype) -> np.dtype:
    return dtype.np_dtype if isinstance(dtype, Type) else np.dtype(dtype)


def _slices(offsets: tuple, sizes: tuple) -> tuple:
    return tuple(slice(o, o + s) for o, s in zip(offsets, sizes))


class _FullCache:
    """Whole tensors of the initializers that need them, kept per process (a few entries, LRU)."""

    def __init__(self, entries: int = 4) -> None:
        self._entries = entries
        self._data: collections.OrderedDict = collections.OrderedDict()
        self._lock = threading.Lock()

    def get(self, key, compute) -> np.ndarray:
        with self._lock:
            if key in self._data:
                self._data.move_to_end(key)
                return self._data[key]
        value = compute()
        value.flags.writeable = False
        with self._lock:
            self._data[key] = value
            while len(self._data) > self._entries:
                self._data.popitem(last=False)
        return value


_FULL = _FullCache()


# ---------------------------------------------------------------------------------- base
class Initializer:
    """Base class: keeps its keyword arguments; a subclass defines the values.

    ``__call__(arr)`` fills the numpy array ``arr`` in place (a fresh seed each call).
    ``window(seed, full_shape, dtype, offsets, sizes)`` is what ``Tensor.init_data`` and all
    sharded code use. A user subclass that only overrides ``_initialize`` still works: its
    windows are cut from a full materialization (and are only as reproducible as it is).
    """

    def __init__(self, **kwargs) -> None:
        self._kwargs = kwargs

    def __call__(self, arr: np.ndarray) -> None:
        if not isinstance(arr, np.ndarray):
            raise TypeError(
                f"For '{type(self).__name__}', the 'arr' should be a numpy.ndarray, but got {type(arr).__name__}."
            )
        return self._initialize(arr)

    def _initialize(self, arr: np.ndarray) -> None:
        raise NotImplementedError(f"'{type(self).__name__}' does not define its values: override '_initialize'.")

    def validate(self, shape: tuple) -> None:
        """Raise ValueError if this initializer cannot fill ``shape`` (called at lazy creation)."""

    def window(self, seed: int, full_shape: tuple, dtype: Type, offsets: tuple, sizes: tuple) -> np.ndarray:
        """The window ``[offsets : offsets + sizes]`` of the full tensor for ``seed``, as ``dtype``."""
        full = np.empty(tuple(full_shape), _np_dtype(dtype))
        self._initialize(full)
        return np.ascontiguousarray(full[_slices(offsets, sizes)])

    def window_jax(self, seed: int, full_shape: tuple, dtype: Type, offsets: tuple, sizes: tuple):
        """``window`` as a ``jax.Array`` computed inside the current trace where possible.

        Use under ``jit`` with ``out_shardings`` to generate a shard on its device. The base
        version transfers the host window.
        """
        import jax.numpy as jnp

        return jnp.asarray(self.window(seed, full_shape, dtype, offsets, sizes))

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self._kwargs.items())
        return f"{type(self).__name__}({args})"


class _Windowed(Initializer, abc.ABC):
    """An initializer defined by its windows; filling an array is its full window."""

    def _initialize(self, arr: np.ndarray) -> None:
        shape = tuple(arr.shape)
        arr[...] = self.window(_rng.next_seed(), shape, mstype.from_numpy(arr.dtype), (0,) * len(shape), shape)

    def window(self, seed: int, full_shape: tuple, dtype: Type, offsets: tuple, sizes: tuple) -> np.ndarray:
        full_shape, offsets, sizes = tuple(full_shape), tuple(offsets), tuple(sizes)
        self.validate(full_shape)
        _rng._check_window(full_shape, offsets, sizes)
        return self._window(seed, full_shape, _np_dtype(dtype), offsets, sizes)

    @abc.abstractmethod
    def _window(self, seed: int, full_shape: tuple, np_dtype: np.dtype, offsets: tuple, sizes: tuple) -> np.ndarray:
        """The window, with arguments already checked."""


class _Random(_Windowed):
    """Random kinds: a distribution of ``_rng`` with parameters that may depend on the shape."""

    @abc.abstractmethod
    def _draw(self, shape: tuple) -> tuple[str, np.ndarray]:
        """The ``_rng`` kind and its parameters for a tensor of ``shape``."""

    def _window(self, seed, full_shape, np_dtype, offsets, sizes):
        kind, params = self._draw(full_shape)
        return _rng.sample_window(kind, params, seed, full_shape, np_dtype, offsets, sizes)

    def window_jax(self, seed: int, full_shape: tuple, dtype: Type, offsets: tuple, sizes: tuple):
        full_shape, offsets, sizes = tuple(full_shape), tuple(offsets), tuple(sizes)
        self.validate(full_shape)
        kind, params = self._draw(full_shape)
        return _rng.sample_window_jax(kind, params, seed, full_shape, _np_dtype(dtype), offsets, sizes)


# ---------------------------------------------------------------------------------- constants
class Constant(_Windowed):
    """Every element is ``value``; a numpy array ``value`` is broadcast to the shape."""

    def __init__(self, value) -> None:
        super().__init__(value=value)
        self.value = value

    def validate(self, shape: tuple) -> None:
        if isinstance(self.value, np.ndarray):
            try:
                np.broadcast_shapes(self.value.shape, tuple(shape))
            except ValueError:
                raise ValueError(
                    f"For 'Constant', the 'value' of shape {self.value.shape} should be broadcastable to the "
                    f"shape {tuple(shape)}."
                ) from None

    def _window(self, seed, full_shape, np_dtype, offsets, sizes):
        if isinstance(self.value, np.ndarray):
            src = np.broadcast_to(self.value, full_shape)[_slices(offsets, sizes)]
            out = np.empty(sizes, np_dtype)
            np.copyto(out, src, casting="unsafe")
            return out
        return np.full(sizes, self.value, np_dtype)

    def window_jax(self, seed, full_shape, dtype, offsets, sizes):
        import jax.numpy as jnp

        if isinstance(self.value, np.ndarray):
            return super().window_jax(seed, full_shape, dtype, offsets, sizes)
        return jnp.full(tuple(sizes), self.value, _np_dtype(dtype))


class Zero(Constant):
    """All zeros (aliases ``zeros``, ``zero``)."""

    def __init__(self) -> None:
        Initializer.__init__(self)
        self.value = 0


class One(Constant):
    """All ones (aliases ``ones``, ``one``)."""

    def __init__(self) -> None:
        Initializer.__init__(self)
        self.value = 1


# ---------------------------------------------------------------------------------- random
class Normal(_Random):
    """N(mean, sigma**2). ``sigma < 0`` raises ValueError when drawing."""

    def __init__(self, sigma: float = 0.01, mean: float = 0.0) -> None:
        super().__init__(sigma=sigma, mean=mean)
        self.sigma = sigma
        self.mean = mean

    def _draw(self, shape):
        if self.sigma < 0:
            raise ValueError(f"For 'Normal', the 'sigma' should be >= 0, but got {self.sigma}.")
        return "normal", _rng.transform_params("normal", sigma=self.sigma, mean=self.mean)


class Uniform(_Random):
    """U(-scale, scale)."""

    def __init__(self, scale: float = 0.07) -> None:
        super().__init__(scale=scale)
        self.scale = scale

    def _draw(self, shape):
        return "uniform", _rng.transform_params("uniform", bound=self.scale)


class TruncatedNormal(_Random):
    """N(mean, sigma**2) conditioned to the absolute bounds ``[a, b]`` (MindSpore 2.x form).

    Inverse CDF between Phi((a-mean)/sigma) and Phi((b-mean)/sigma). ``sigma <= 0`` or
    ``a >= b`` raise ValueError when drawing.
    """

    def __init__(self, sigma: float = 0.01, mean: float = 0.0, a: float = -2.0, b: float = 2.0) -> None:
        super().__init__(sigma=sigma, mean=mean, a=a, b=b)
        self.sigma = sigma
        self.mean = mean
        self.a = a
        self.b = b

    def _draw(self, shape):
        if not self.sigma > 0:
            raise ValueError(f"For 'TruncatedNormal', the 'sigma' should be > 0, but got {self.sigma}.")
        if not self.a < self.b:
            raise ValueError(f"For 'TruncatedNormal', the bounds should satisfy a < b, but got a={self.a}, b={self.b}.")
        return "truncated_normal", _rng.transform_params(
            "truncated_normal", sigma=self.sigma, mean=self.mean, a=self.a, b=self.b
        )


class XavierUniform(_Random):
    """U(-B, B) with B = gain * sqrt(6 / (fan_in + fan_out)) (Glorot)."""

    def __init__(self, gain: float = 1) -> None:
        super().__init__(gain=gain)
        self.gain = gain

    def validate(self, shape):
        _fans(shape, "XavierUniform")

    def _draw(self, shape):
        fan_in, fan_out = _fans(shape, "XavierUniform")
        return "uniform", _rng.transform_params("uniform", bound=self.gain * math.sqrt(6.0 / (fan_in + fan_out)))


class XavierNormal(_Random):
    """N(0, sigma**2) with sigma = gain * sqrt(2 / (fan_in + fan_out)) (Glorot)."""

    def __init__(self, gain: float = 1) -> None:
        super().__init__(gain=gain)
        self.gain = gain

    def validate(self, shape):
        _fans(shape, "XavierNormal")

    def _draw(self, shape):
        fan_in, fan_out = _fans(shape, "XavierNormal")
        sigma = self.gain * math.sqrt(2.0 / (fan_in + fan_out))
        return "normal", _rng.transform_params("normal", sigma=sigma, mean=0.0)


class _He(_Random):
    def __init__(self, negative_slope=0, mode: str = "fan_in", nonlinearity: str = "leaky_relu") -> None:
        super().__init__(negative_slope=negative_slope, mode=mode, nonlinearity=nonlinearity)
        self.negative_slope = negative_slope
        self.mode = mode
        self.nonlinearity = nonlinearity

    def validate(self, shape):
        _he_fan(shape, self.mode, type(self).__name__)
        _gain(self.nonlinearity, self.negative_slope, type(self).__name__)

    def _std(self, shape) -> float:
        name = type(self).__name__
        return _gain(self.nonlinearity, self.negative_slope, name) / math.sqrt(_he_fan(shape, self.mode, name))


class HeUniform(_He):
    """U(-B, B) with B = sqrt(3) * gain / sqrt(fan) (Kaiming); gain from ``nonlinearity``."""

    def _draw(self, shape):
        return "uniform", _rng.transform_params("uniform", bound=math.sqrt(3.0) * self._std(shape))


class HeNormal(_He):
    """N(0, sigma**2) with sigma = gain / sqrt(fan) (Kaiming); gain from ``nonlinearity``."""

    def _draw(self, shape):
        return "normal", _rng.transform_params("normal", sigma=self._std(shape), mean=0.0)


_VS_MODES = ("fan_in", "fan_out", "fan_avg")
_VS_DISTRIBUTIONS = ("uniform", "truncated_normal", "untruncated_normal")
# Standard deviation of a unit normal truncated to [-2, 2]: dividing by it keeps the variance.
_TRUNC_STD = 0.87962566103423978


class VarianceScaling(_Random):
    """Variance ``scale / n`` with n the fan of ``mode``; uniform, normal or normal truncated at 2 sigma.

    Arguments are checked at construction (spec §4.2).
    """

    def __init__(self, scale: float = 1.0, mode: str = "fan_in", distribution: str = "truncated_normal") -> None:
        if not scale > 0:
            raise ValueError(f"For 'VarianceScaling', the 'scale' should be > 0, but got {scale!r}.")
        if mode not in _VS_MODES:
            raise ValueError(f"For 'VarianceScaling', the 'mode' should be one of {_VS_MODES}, but got {mode!r}.")
        if distribution not in _VS_DISTRIBUTIONS:
            raise ValueError(
                f"For 'VarianceScaling', the 'distribution' should be one of {_VS_DISTRIBUTIONS}, "
                f"but got {distribution!r}."
            )
        super().__init__(scale=scale, mode=mode, distribution=distribution)
        self.scale = scale
        self.mode = mode
        self.distribution = distribution

    def validate(self, shape):
        _fans(shape, "VarianceScaling")

    def _draw(self, shape):
        fan_in, fan_out = _fans(shape, "VarianceScaling")
        fan = {"fan_in": fan_in, "fan_out": fan_out, "fan_avg": (fan_in + fan_out) / 2.0}[self.mode]
        variance = self.scale / max(1.0, fan)
        if self.distribution == "uniform":
            return "uniform", _rng.transform_params("uniform", bound=math.sqrt(3.0 * variance))
        if self.distribution == "untruncated_normal":
            return "normal", _rng.transform_params("normal", sigma=math.sqrt(variance), mean=0.0)
        sigma = math.sqrt(variance) / _TRUNC_STD
        return "truncated_normal", _rng.transform_params(
            "truncated_normal", sigma=sigma, mean=0.0, a=-2.0 * sigma, b=2.0 * sigma
        )


# ---------------------------------------------------------------------------------- patterns
class Identity(_Windowed):
    """The 2-D identity ``eye(rows, cols)``."""

    def validate(self, shape):
        if len(shape) != 2:
            raise ValueError(f"For 'Identity', the shape should have 2 dimensions, but got {tuple(shape)}.")

    def _window(self, seed, full_shape, np_dtype, offsets, sizes):
        out = np.zeros(sizes, np_dtype)
        first = max(offsets[0], offsets[1])
        last = min(offsets[0] + sizes[0], offsets[1] + sizes[1])
        diag = np.arange(first, max(first, last))
        out[diag - offsets[0], diag - offsets[1]] = 1
        return out

    def window_jax(self, seed, full_shape, dtype, offsets, sizes):
        import jax.numpy as jnp
        from jax import lax

        self.validate(full_shape)
        rows = lax.broadcasted_iota(jnp.int32, tuple(sizes), 0) + offsets[0]
        cols = lax.broadcasted_iota(jnp.int32, tuple(sizes), 1) + offsets[1]
        return (rows == cols).astype(_np_dtype(dtype))


class Dirac(_Windowed):
    """The Dirac delta for convolution weights (3-D, 4-D or 5-D): convolving with it keeps the input.

    With ``o = shape[0] // groups``: ones at ``[g*o + d, d, shape[2]//2, ...]`` for each group
    ``g`` and ``d < min(o, shape[1])``, zeros elsewhere.
    """

    def __init__(self, groups: int = 1) -> None:
        super().__init__(groups=groups)
        self.groups = groups

    def validate(self, shape):
        if len(shape) not in (3, 4, 5):
            raise ValueError(f"For 'Dirac', the shape should have 3, 4 or 5 dimensions, but got {tuple(shape)}.")
        if not isinstance(self.groups, int) or isinstance(self.groups, bool) or self.groups < 1:
            raise ValueError(f"For 'Dirac', the 'groups' should be a positive int, but got {self.groups!r}.")
        if shape[0] % self.groups != 0:
            raise ValueError(
                f"For 'Dirac', the first dimension {shape[0]} of the shape {tuple(shape)} should be divisible by "
                f"'groups' ({self.groups})."
            )

    def _window(self, seed, full_shape, np_dtype, offsets, sizes):
        out = np.zeros(sizes, np_dtype)
        per_group = full_shape[0] // self.groups
        d = np.arange(min(per_group, full_shape[1]))
        dim0 = (np.arange(self.groups)[:, None] * per_group + d[None, :]).ravel()
        dim1 = np.tile(d, self.groups)
        index = [dim0, dim1] + [np.full(dim0.shape, n // 2) for n in full_shape[2:]]
        inside = np.ones(dim0.shape, bool)
        for idx, o, s in zip(index, offsets, sizes):
            inside &= (idx >= o) & (idx < o + s)
        out[tuple(idx[inside] - o for idx, o in zip(index, offsets))] = 1
        return out


class Orthogonal(_Windowed):
    """A (semi-)orthogonal matrix times ``gain``: rows or columns of the ``(shape[0], size/shape[0])`` view
    are orthonormal.

    QR of an N(0, 1) matrix (transposed when rows < cols), columns signed by ``diag(R)``. The
    whole matrix is needed: it is computed once per process (cached by seed, shape, dtype,
    gain) and each window cut from it.
    """

    def __init__(self, gain: float = 1.0) -> None:
        super().__init__(gain=gain)
        self.gain = gain

    def validate(self, shape):
        if len(shape) < 2:
            raise ValueError(f"For 'Orthogonal', the shape should have at least 2 dimensions, but got {tuple(shape)}.")

    def _full(self, seed: int, shape: tuple, np_dtype: np.dtype) -> np.ndarray:
        rows = shape[0]
        cols = math.prod(shape) // rows
        flat_shape = (cols, rows) if rows < cols else (rows, cols)
        params = _rng.transform_params("normal", sigma=1.0, mean=0.0)
        flat = _rng.sample_window("normal", params, seed, flat_shape, np.float32, (0, 0), flat_shape)
        q, r = np.linalg.qr(flat.astype(np.float64))
        q *= np.sign(np.diag(r))
        if rows < cols:
            q = q.T
        out = np.empty(shape, np_dtype)
        np.copyto(out, (self.gain * q).reshape(shape), casting="unsafe")
        return out

    def _window(self, seed, full_shape, np_dtype, offsets, sizes):
        key = ("orthogonal", seed, full_shape, np_dtype.str, self.gain)
        full = _FULL.get(key, lambda: self._full(seed, full_shape, np_dtype))
        return full[_slices(offsets, sizes)].copy()


class Sparse(_Windowed):
    """N(0, sigma**2) with ``ceil(sparsity * rows)`` random rows zeroed in every column (2-D only).

    The whole matrix is needed: computed once per process (cached) and each window cut from it.
    """

    def __init__(self, sparsity: float, sigma: float = 0.01) -> None:
        super().__init__(sparsity=sparsity, sigma=sigma)
        self.sparsity = sparsity
        self.sigma = sigma

    def validate(self, shape):
        if len(shape) != 2:
            raise ValueError(f"For 'Sparse', the shape should have 2 dimensions, but got {tuple(shape)}.")
        if not 0 <= self.sparsity <= 1:
            raise ValueError(f"For 'Sparse', the 'sparsity' should be in [0, 1], but got {self.sparsity!r}.")

    def _full(self, seed: int, shape: tuple, np_dtype: np.dtype) -> np.ndarray:
        rows, cols = shape
        params = _rng.transform_params("normal", sigma=self.sigma, mean=0.0)
        values = _rng.sample_window("normal", params, seed, shape, np.float32, (0, 0), shape)
        zeros = math.ceil(self.sparsity * rows)
        if zeros:
            # Stream 1 orders the rows of each column at random; the first `zeros` are cleared.
            keys = _rng.sample_window(
                "bits", _rng.transform_params("bits"), seed, (cols, rows), np.uint32, (0, 0), (cols, rows), stream=1
            )
            chosen = np.argsort(keys, axis=1, kind="stable")[:, :zeros]
            values[chosen, np.arange(cols)[:, None]] = 0
        out = np.empty(shape, np_dtype)
        np.copyto(out, values, casting="unsafe")
        return out

    def _window(self, seed, full_shape, np_dtype, offsets, sizes):
        key = ("sparse", seed, full_shape, np_dtype.str, self.sparsity, self.sigma)
        full = _FULL.get(key, lambda: self._full(seed, full_shape, np_dtype))
        return full[_slices(offsets, sizes)].copy()


# ---------------------------------------------------------------------------------- factory
_ALIASES = {
    "zeros": Zero,
    "zero": Zero,
    "ones": One,
    "one": One,
    "normal": Normal,
    "uniform": Uniform,
    "truncatednormal": TruncatedNormal,
    "xavier_uniform": XavierUniform,
    "xavieruniform": XavierUniform,
    "xavier_normal": XavierNormal,
    "xaviernormal": XavierNormal,
    "he_uniform": HeUniform,
    "heuniform": HeUniform,
    "he_normal": HeNormal,
    "henormal": HeNormal,
    "identity": Identity,
    "sparse": Sparse,
    "dirac": Dirac,
    "orthogonal": Orthogonal,
    "variancescaling": VarianceScaling,
}


def _normalize_shape(shape) -> tuple:
    if type(shape) in (list, tuple) and all(type(n) is int and n > 0 for n in shape):
        return tuple(shape)  # the common case, without the slower abstract-type checks below
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        shape = (shape,)
    if not isinstance(shape, (list, tuple)):
        raise TypeError(
            f"For 'initializer', the 'shape' should be an int, a list or a tuple of int, but got {shape!r}."
        )
    for n in shape:
        if not isinstance(n, numbers.Integral) or isinstance(n, bool) or n <= 0:
            raise ValueError(
                f"For 'initializer', every element of the 'shape' must be positive integer, but got shape {shape!r}."
            )
    return tuple(int(n) for n in shape)


def initializer(init, shape=None, dtype: Type = mstype.float32):
    """A lazy Tensor of ``shape`` and ``dtype`` filled by ``init`` when materialized (spec §4.1).

    ``init`` is an ``Initializer``, an alias string (``'normal'``, case-insensitive), a number
    (a ``Constant``) or a ``Tensor`` (returned as is after a shape check). No memory is
    allocated until ``init_data()``.

    >>> initializer('ones', [2, 3]).init_data().asnumpy().sum()
    6.0
    """
    from sporax.common.tensor import Tensor

    if isinstance(init, Tensor):
        if shape is not None and _normalize_shape(shape) != tuple(init.shape):
            raise ValueError(
                f"For 'initializer', the 'shape' {shape!r} should equal the shape {tuple(init.shape)} of the "
                f"Tensor 'init'."
            )
        return init
    if not isinstance(init, (str, Initializer, numbers.Number)):
        raise TypeError(
            f"For 'initializer', the 'init' should be a Tensor, a str, an Initializer or a number, "
            f"but got {type(init).__name__}."
        )
    if shape is None:
        raise AttributeError(
            f"For 'initializer', the 'shape' should be given when 'init' is not a Tensor, but got None (init {init!r})."
        )
    shape = _normalize_shape(shape)
    if isinstance(init, str):
        cls = _ALIASES.get(init.lower())
        if cls is None:
            raise ValueError(
                f"For 'initializer', the initializer '{init}' was not found. Known names: {sorted(_ALIASES)}."
            )
        init = cls()
    elif isinstance(init, numbers.Number):
        init = Constant(init)
    return Tensor(dtype=dtype, shape=shape, init=init)  # the Tensor validates init against shape
