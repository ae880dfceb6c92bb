"""General transforms of ``mindspore.dataset.transforms``: ``TypeCast``, ``Compose``, ``OneHot``,
``Fill``, ``Duplicate``, and the base class every transform derives from.

A transform is a small record of its arguments plus ``_apply(columns, rng) -> columns``, a pure
function of the input arrays (and, for random transforms, of the ``numpy.random.Generator``
that the pipeline hands it: seeded per row, so results do not depend on worker count or
order). Called directly (``TypeCast(ms.int32)(array)``) a transform runs eagerly.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np

from sporax.common._validation import msg

__all__ = ["TensorOperation", "PyTensorOperation", "TypeCast", "Compose", "OneHot", "Fill", "Duplicate",
           "apply_operations"]


def _is_pil(x) -> bool:
    return type(x).__module__.startswith("PIL.")


def _as_array(x):
    """A column value as numpy (PIL images stay images between transforms)."""
    if isinstance(x, np.ndarray) or _is_pil(x):
        return x
    if hasattr(x, "asnumpy"):  # a Tensor handed to an eager call
        return x.asnumpy()
    return np.asarray(x)


class TensorOperation:
    """Base of all dataset transforms. Subclasses set ``random`` and implement ``_apply``."""

    random = False

    def _apply(self, cols: tuple, rng: np.random.Generator | None) -> tuple:
        """Map the input columns to the output columns (tuples of arrays).

        sporax's transforms override this. A user's subclass written as in MindSpore defines
        ``__call__(self, *columns)`` instead; it is called here, and a non-tuple result is one column.
        """
        call = type(self).__call__
        if call is TensorOperation.__call__:
            raise TypeError(f"For '{type(self).__name__}', a TensorOperation subclass must define "
                            f"'__call__(self, *columns)' (or '_apply'), but it defines neither.")
        out = call(self, *cols)
        return out if isinstance(out, tuple) else (out,)

    def __call__(self, *inputs):
        """Run the transform eagerly on numpy arrays (or PIL images)."""
        from sporax.dataset.config import _eager_generator

        if not inputs:
            raise TypeError(f"For '{type(self).__name__}', at least one input array should be given, but got none.")
        out = self._apply(tuple(_as_array(x) for x in inputs), _eager_generator() if self.random else None)
        return out[0] if len(out) == 1 else out

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in vars(self).items() if not k.startswith("_"))
        return f"{type(self).__name__}({args})"


class PyTensorOperation(TensorOperation):
    """Base of the Python-implemented transforms (the 1.x ``py_transforms`` family)."""


class _OneToOne(TensorOperation):
    """A transform of exactly one column."""

    def _apply(self, cols, rng):
        if len(cols) != 1:
            raise RuntimeError(f"{type(self).__name__}: expected 1 input column, but got {len(cols)}.")
        return (self._apply1(cols[0], rng),)

    _apply1: Callable  # each subclass defines _apply1(self, x, rng) -> array


def _call_operation(op, cols: tuple, rng) -> tuple:
    if isinstance(op, TensorOperation):
        return op._apply(cols, rng)
    out = op(*cols)
    return tuple(out) if isinstance(out, tuple) else (out,)


def _as_arrays(cols) -> tuple:
    if all(type(c) is np.ndarray for c in cols):  # the common case, checked cheaply
        return cols
    return tuple([_as_array(c) for c in cols])


def apply_operations(ops, cols: tuple, rng) -> tuple:
    """Run a chain of transforms/callables on the columns, returning numpy columns."""
    for op in ops:
        cols = _as_arrays(_call_operation(op, cols, rng))
    if all(type(c) is np.ndarray for c in cols):
        return cols
    return tuple([np.asarray(c) for c in cols])


def _to_np_dtype(data_type, where: str):
    np_dtype = getattr(data_type, "np_dtype", None)  # a mindspore dtype
    if np_dtype is not None:
        return np.dtype(np_dtype)
    try:
        return np.dtype(data_type)
    except TypeError:
        raise TypeError(msg(where, "data_type", "a mindspore dtype (e.g. mindspore.int32) or a numpy dtype",
                            data_type)) from None


class TypeCast(_OneToOne):
    """Cast a column to ``data_type`` (a mindspore dtype or a numpy dtype), like ``ndarray.astype``."""

    def __init__(self, data_type) -> None:
        self.data_type = _to_np_dtype(data_type, "TypeCast")

    def _apply1(self, x, rng):
        return np.asarray(x).astype(self.data_type)

    def _apply_batch(self, x, rng=None):
        return x.astype(self.data_type)


class Compose(TensorOperation):
    """Apply ``transforms`` in order as one transform."""

    def __init__(self, transforms) -> None:
        if not isinstance(transforms, (list, tuple)) or not transforms:
            raise TypeError(msg("Compose", "transforms", "a non-empty list of transforms", transforms))
        for t in transforms:
            if not callable(t):
                raise TypeError(msg("Compose", "transforms", "a list of callables",
                                    f"an element of type {type(t).__name__}"))
        self.transforms = list(transforms)
        self.random = any(getattr(t, "random", False) for t in self.transforms)

    def _apply(self, cols, rng):
        for op in self.transforms:
            cols = _as_arrays(_call_operation(op, cols, rng))
        return cols


class OneHot(_OneToOne):
    """One-hot encode integer labels into ``num_classes`` classes, optionally label-smoothed."""

    def __init__(self, num_classes: int, smoothing_rate: float = 0.0) -> None:
        if not isinstance(num_classes, int) or isinstance(num_classes, bool):
            raise TypeError(msg("OneHot", "num_classes", "an int", num_classes))
        if num_classes < 1:
            raise ValueError(msg("OneHot", "num_classes", "an int >= 1", num_classes))
        if not isinstance(smoothing_rate, (int, float)) or not 0.0 <= smoothing_rate <= 1.0:
            raise ValueError(msg("OneHot", "smoothing_rate", "a float in [0.0, 1.0]", smoothing_rate))
        self.num_classes = num_classes
        self.smoothing_rate = float(smoothing_rate)

    def _apply1(self, x, rng):
        x = np.asarray(x)
        if x.dtype.kind not in "iu":
            raise RuntimeError(f"OneHot: the input should be integer class indices, but got dtype {x.dtype}.")
        if x.size and (x.min() < 0 or x.max() >= self.num_classes):
            raise RuntimeError(f"OneHot: class index out of range [0, {self.num_classes}): got values in "
                               f"[{x.min()}, {x.max()}].")
        out = np.eye(self.num_classes, dtype=x.dtype)[x]
        if self.smoothing_rate:
            out = out * (1.0 - self.smoothing_rate) + self.smoothing_rate / self.num_classes
        return out


class Fill(_OneToOne):
    """Replace every element with ``fill_value`` (keeping shape and dtype)."""

    def __init__(self, fill_value) -> None:
        if not isinstance(fill_value, (int, float, bool, str, bytes)):
            raise TypeError(msg("Fill", "fill_value", "a number, bool, str or bytes", fill_value))
        self.fill_value = fill_value

    def _apply1(self, x, rng):
        x = np.asarray(x)
        return np.full_like(x, self.fill_value)


class Duplicate(TensorOperation):
    """Output the input column twice (map with two ``output_columns``)."""

    def _apply(self, cols, rng):
        if len(cols) != 1:
            raise RuntimeError(f"Duplicate: expected 1 input column, but got {len(cols)}.")
        x = np.asarray(cols[0])
        return (x, x.copy())
