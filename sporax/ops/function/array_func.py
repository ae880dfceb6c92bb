"""Array functional ops of ``mindspore.ops``: ``gather``, ``select``, ``tile``, ``one_hot``, ``depend``, ..."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common import dtype as mstype
from sporax.common._validation import msg
from sporax.common.tensor import Tensor, unwrap
from sporax.ops.function.math_func import kind, tensor_arg

__all__ = ["gather", "sparse_gather", "select", "where", "dtype", "size", "rank", "tile", "broadcast_to",
           "one_hot", "depend", "unstack", "split", "check_axis", "fill_value", "masked_fill"]


def check_axis(axis, ndim: int, where: str, arg: str = "axis", extra: int = 0) -> int:
    """An int axis in ``[-ndim - extra, ndim + extra)``, normalized to be non-negative."""
    if isinstance(axis, Tensor):
        axis = int(axis.asnumpy())
    if isinstance(axis, bool) or not isinstance(axis, (int, np.integer)):
        raise TypeError(msg(where, arg, "an int", axis))
    n = ndim + extra
    if not -max(n, 1) <= axis < max(n, 1):
        raise ValueError(msg(where, arg, f"in the range [{-n}, {n})", axis))
    return int(axis) % max(n, 1)


def _indices(indices, where: str):
    if isinstance(indices, Tensor):
        idx = indices._jax()
    elif isinstance(indices, (int, list, tuple, np.ndarray)) and not isinstance(indices, bool):
        idx = jnp.asarray(indices)
    else:
        raise TypeError(msg(where, "input_indices", "a Tensor of int", type(indices).__name__))
    if kind(idx.dtype) != "i":
        raise TypeError(f"For '{where}', the 'input_indices' should be a Tensor of int dtype, but got {idx.dtype}.")
    return idx


def gather(input_params, input_indices, axis: int, batch_dims: int = 0) -> Tensor:
    """Slices of ``input_params`` along ``axis`` at ``input_indices``.

    Output shape: ``params.shape[:axis] + indices.shape[batch_dims:] + params.shape[axis + 1:]``.
    Indices out of range give zeros, as MindSpore's CPU kernel does.
    """
    tensor_arg(input_params, "Gather", "input_params")
    a = input_params._jax()
    idx = _indices(input_indices, "Gather")
    axis = check_axis(axis, a.ndim, "Gather")
    if isinstance(batch_dims, bool) or not isinstance(batch_dims, int):
        raise TypeError(msg("Gather", "batch_dims", "an int", batch_dims))
    if batch_dims < 0:
        batch_dims += idx.ndim
    if not 0 <= batch_dims <= min(axis, idx.ndim):
        raise ValueError(msg("Gather", "batch_dims", f"in the range [0, {min(axis, idx.ndim)}]", batch_dims))

    def take(p, i, ax):
        return jnp.take(p, i, axis=ax, mode="fill", fill_value=0)

    fn, ax = take, axis
    for _ in range(batch_dims):
        fn = jax.vmap(fn, in_axes=(0, 0, None))
        ax -= 1
    return Tensor._wrap(fn(a, idx, ax))


def sparse_gather(input_params, input_indices, axis: int) -> Tensor:
    """``SparseGatherV2``: :func:`gather` (the gradient is dense here)."""
    return gather(input_params, input_indices, axis)


def select(condition, input, other) -> Tensor:  # noqa: A002 - MindSpore's name
    """Elementwise ``input`` where ``condition`` is True, else ``other`` (broadcast)."""
    tensor_arg(condition, "Select", "condition")
    if condition.dtype is not mstype.bool_:
        raise TypeError(f"For 'Select', the 'condition' should be a bool Tensor, but got {condition.dtype}.")
    for v, arg in ((input, "input"), (other, "other")):
        if not isinstance(v, (Tensor, int, float)) or isinstance(v, bool):
            raise TypeError(msg("Select", arg, "a Tensor, int or float", type(v).__name__))
    if isinstance(input, Tensor) and isinstance(other, Tensor) and input.dtype != other.dtype:
        raise TypeError(f"For 'Select', the 'input' and 'other' should have one dtype, but got {input.dtype} "
                        f"and {other.dtype}.")
    return Tensor._wrap(jnp.where(condition._jax(), unwrap(input), unwrap(other)))


where = select


def dtype(x) -> mstype.Type:
    """The dtype of Tensor ``x``."""
    return tensor_arg(x, "DType", "x").dtype


def size(input_x) -> int:
    return tensor_arg(input_x, "Size", "input_x").size


def rank(input_x) -> int:
    return tensor_arg(input_x, "Rank", "input_x").ndim


def _int_tuple(value, arg: str, where: str) -> tuple:
    if isinstance(value, list):
        value = tuple(value)
    if not isinstance(value, tuple) or not all(isinstance(v, int) and not isinstance(v, bool) for v in value):
        raise TypeError(msg(where, arg, "a tuple of int", value))
    return value


def tile(input, dims) -> Tensor:  # noqa: A002
    tensor_arg(input, "Tile")
    dims = _int_tuple(dims, "dims", "Tile")
    if any(d < 0 for d in dims):
        raise ValueError(msg("Tile", "dims", "a tuple of int >= 0", dims))
    a = input._jax()
    if len(dims) < a.ndim:
        raise ValueError(f"For 'Tile', the length of 'dims' ({len(dims)}) should be >= the input's rank ({a.ndim}).")
    return Tensor._wrap(jnp.tile(a, dims))


def broadcast_to(input, shape) -> Tensor:  # noqa: A002
    tensor_arg(input, "BroadcastTo")
    shape = _int_tuple(shape, "shape", "BroadcastTo")
    a = input._jax()
    full = tuple(a.shape[i - (len(shape) - a.ndim)] if s == -1 else s for i, s in enumerate(shape))
    try:
        return Tensor._wrap(jnp.broadcast_to(a, full))
    except ValueError:
        raise ValueError(f"For 'BroadcastTo', the input shape {tuple(a.shape)} can not broadcast to {shape}.") from None


def one_hot(indices, depth: int, on_value=1, off_value=0, axis: int = -1) -> Tensor:
    """One-hot vectors of length ``depth`` along ``axis``; dtype of ``on_value``."""
    idx = _indices(indices, "OneHot")
    if isinstance(depth, bool) or not isinstance(depth, int):
        raise TypeError(msg("OneHot", "depth", "an int", depth))
    if depth < 0:
        raise ValueError(msg("OneHot", "depth", "an int >= 0", depth))
    axis = -1 if axis == -1 else check_axis(axis, idx.ndim, "OneHot", extra=1)
    on, off = unwrap(on_value), unwrap(off_value)
    if isinstance(on_value, Tensor):
        out_dtype = on.dtype
    else:
        out_dtype = jnp.int64 if isinstance(on_value, int) else jnp.float32
    hot = jax.nn.one_hot(idx, depth, dtype=jnp.bool_, axis=axis)
    return Tensor._wrap(jnp.where(hot, jnp.asarray(on, out_dtype), jnp.asarray(off, out_dtype)))


def depend(value, expr):
    """``value``, computed after ``expr`` (execution order is program order here, so just ``value``)."""
    return value


def unstack(input_x, axis: int = 0) -> tuple:
    tensor_arg(input_x, "Unstack", "input_x")
    a = input_x._jax()
    axis = check_axis(axis, a.ndim, "Unstack")
    return tuple(Tensor._wrap(jnp.take(a, i, axis=axis)) for i in range(a.shape[axis]))


def split(tensor, split_size_or_sections, axis: int = 0) -> tuple:
    """Chunks of ``split_size_or_sections`` (an int chunk size or a list of sizes) along ``axis``."""
    tensor_arg(tensor, "split", "tensor")
    a = tensor._jax()
    axis = check_axis(axis, a.ndim, "split")
    n = a.shape[axis]
    if isinstance(split_size_or_sections, int) and not isinstance(split_size_or_sections, bool):
        if split_size_or_sections <= 0:
            raise ValueError(msg("split", "split_size_or_sections", "an int > 0", split_size_or_sections))
        bounds = list(range(split_size_or_sections, n, split_size_or_sections))
    elif isinstance(split_size_or_sections, (list, tuple)):
        if sum(split_size_or_sections) != n:
            raise ValueError(f"For 'split', the sections {list(split_size_or_sections)} should sum to the size of "
                             f"axis {axis} ({n}).")
        bounds = list(np.cumsum(split_size_or_sections)[:-1])
    else:
        raise TypeError(msg("split", "split_size_or_sections", "an int or a list of int", split_size_or_sections))
    return tuple(Tensor._wrap(p) for p in jnp.split(a, bounds, axis=axis))


def fill_value(dtype_, shape, value, where: str = "Fill") -> Tensor:
    """A Tensor of ``shape`` filled with ``value``, of ``dtype_``."""
    if not isinstance(dtype_, mstype.Type):
        raise TypeError(msg(where, "type", "a sporax dtype such as sporax.float32", dtype_))
    if isinstance(shape, int) and not isinstance(shape, bool):
        shape = (shape,)
    shape = _int_tuple(shape, "shape", where)
    if any(s < 0 for s in shape):
        raise ValueError(msg(where, "shape", "a tuple of int >= 0", shape))
    if isinstance(value, Tensor):
        value = value._jax()
    elif isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(msg(where, "value", "a number or a Tensor", type(value).__name__))
    return Tensor._wrap(jnp.full(shape, value, dtype_.np_dtype))


def masked_fill(input_x, mask, value) -> Tensor:
    tensor_arg(input_x, "masked_fill", "input_x")
    tensor_arg(mask, "masked_fill", "mask")
    if mask.dtype is not mstype.bool_:
        raise TypeError(f"For 'masked_fill', the 'mask' should be a bool Tensor, but got {mask.dtype}.")
    a = input_x._jax()
    return Tensor._wrap(jnp.where(mask._jax(), jnp.asarray(unwrap(value), a.dtype), a))
