"""Array operator classes of ``mindspore.ops.operations`` (``ops.Concat``, ``ops.Gather``, ``ops.Squeeze``, ...)."""

from __future__ import annotations

import jax.numpy as jnp

from sporax.common import dtype as mstype
from sporax.common._validation import msg
from sporax.common.tensor import Tensor
from sporax.ops import functional as F
from sporax.ops.function import array_func as A
from sporax.ops.function.math_func import tensor_arg
from sporax.ops.primitive import Primitive, prim_attr_register

__all__ = ["Reshape", "Transpose", "Cast", "Shape", "Concat", "Stack", "Pack", "Unstack", "Unpack", "Split",
           "Squeeze", "ExpandDims", "Flatten", "Fill", "Fills", "DType", "Select", "Gather", "GatherV2",
           "SparseGatherV2", "Tile", "BroadcastTo", "OneHot", "ZerosLike", "OnesLike", "Zeros", "Ones", "Size",
           "Rank", "Identity", "Eye"]


class Reshape(Primitive):
    """``ops.Reshape()(x, shape)``."""

    def __call__(self, x, shape) -> Tensor:
        tensor_arg(x, "Reshape", "input_x")
        try:
            return F.reshape(x, shape)
        except (TypeError, ValueError) as exc:
            raise ValueError(f"For 'Reshape', the shape {tuple(x.shape)} can not be reshaped to {shape}: {exc}") from None


class Transpose(Primitive):
    """``ops.Transpose()(x, perm)``."""

    def __call__(self, x, perm) -> Tensor:
        tensor_arg(x, "Transpose", "input_x")
        if len(perm) != x.ndim or sorted(perm) != list(range(x.ndim)):
            raise ValueError(msg("Transpose", "input_perm", f"a permutation of range({x.ndim})", perm))
        return F.transpose(x, perm)


class Cast(Primitive):
    """``ops.Cast()(x, dtype)``."""

    def __call__(self, x, dtype) -> Tensor:
        if not isinstance(dtype, mstype.Type):
            raise TypeError(msg("Cast", "dtype", "a sporax dtype", dtype))
        if not isinstance(x, Tensor):
            return Tensor(x, dtype)
        return F.cast(x, dtype)


class Shape(Primitive):
    """``ops.Shape()(x)``: the shape as a tuple of int."""

    def __call__(self, x) -> tuple:
        return tuple(tensor_arg(x, "Shape", "input_x").shape)


class Concat(Primitive):
    """``ops.Concat(axis=0)(tensors)``: join a tuple/list of Tensors of one dtype along ``axis``."""

    @prim_attr_register
    def __init__(self, axis: int = 0) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(msg("Concat", "axis", "an int", axis))

    def __call__(self, x) -> Tensor:
        if not isinstance(x, (list, tuple)) or not x:
            raise TypeError(msg("Concat", "tensors", "a non-empty tuple or list of Tensors", type(x).__name__))
        for i, t in enumerate(x):
            tensor_arg(t, "Concat", f"tensors[{i}]")
        ndim = x[0].ndim
        axis = A.check_axis(self.axis, ndim, "Concat")
        for t in x[1:]:
            if t.ndim != ndim or any(a != b for d, (a, b) in enumerate(zip(t.shape, x[0].shape)) if d != axis):
                raise ValueError(f"For 'Concat', all inputs should have the same shape except on axis {axis}, "
                                 f"but got {[tuple(t.shape) for t in x]}.")
        return F.concat(x, axis)


class Stack(Primitive):
    """``ops.Stack(axis=0)(tensors)``: stack Tensors of one shape along a new ``axis``."""

    @prim_attr_register
    def __init__(self, axis: int = 0) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(msg(self.name, "axis", "an int", axis))

    def __call__(self, x) -> Tensor:
        if not isinstance(x, (list, tuple)) or not x:
            raise TypeError(msg(self.name, "x", "a non-empty tuple or list of Tensors", type(x).__name__))
        if len({tuple(t.shape) for t in x}) > 1:
            raise ValueError(f"For '{self.name}', all inputs should have one shape, but got {[t.shape for t in x]}.")
        return F.stack(x, A.check_axis(self.axis, x[0].ndim, self.name, extra=1))


Pack = Stack


class Unstack(Primitive):
    """``ops.Unstack(axis=0, num=None)(x)``: the slices of ``x`` along ``axis``, as a tuple."""

    @prim_attr_register
    def __init__(self, axis: int = 0, num=None) -> None:
        pass

    def __call__(self, x) -> tuple:
        return A.unstack(x, self.axis)


Unpack = Unstack


class Split(Primitive):
    """``ops.Split(axis=0, output_num=1)(x)``: ``output_num`` equal parts along ``axis``."""

    @prim_attr_register
    def __init__(self, axis: int = 0, output_num: int = 1) -> None:
        if isinstance(output_num, bool) or not isinstance(output_num, int) or output_num < 1:
            raise ValueError(msg("Split", "output_num", "an int >= 1", output_num))

    def __call__(self, x) -> tuple:
        tensor_arg(x, "Split", "input_x")
        axis = A.check_axis(self.axis, x.ndim, "Split")
        if x.shape[axis] % self.output_num:
            raise ValueError(f"For 'Split', the size of axis {axis} ({x.shape[axis]}) should be divisible by "
                             f"'output_num' ({self.output_num}).")
        return A.split(x, x.shape[axis] // self.output_num, axis)


class Squeeze(Primitive):
    """``ops.Squeeze(axis=())(x)``: drop the given axes that have size 1 (``()``: every size-1 axis).

    As in MindSpore 2.10, a listed axis whose size is not 1 is left in place.
    """

    @prim_attr_register
    def __init__(self, axis=()) -> None:
        if isinstance(axis, int) and not isinstance(axis, bool):
            axis = (axis,)
        elif isinstance(axis, list):
            axis = tuple(axis)
        if not isinstance(axis, tuple) or not all(isinstance(a, int) and not isinstance(a, bool) for a in axis):
            raise TypeError(msg("Squeeze", "axis", "an int or a tuple of int", axis))
        self.add_prim_attr("axis", axis)

    def __call__(self, x) -> Tensor:
        tensor_arg(x, "Squeeze", "input_x")
        axes = tuple(A.check_axis(a, x.ndim, "Squeeze") for a in self.axis)
        if axes:
            axes = tuple(a for a in axes if x.shape[a] == 1)
            if not axes:
                return x.copy()
        return F.squeeze(x, axes or None)


class ExpandDims(Primitive):
    """``ops.ExpandDims()(x, axis)``: insert a size-1 axis at ``axis`` (in ``[-ndim - 1, ndim]``)."""

    def __call__(self, x, axis) -> Tensor:
        tensor_arg(x, "ExpandDims", "input_x")
        return F.expand_dims(x, A.check_axis(axis, x.ndim, "ExpandDims", extra=1))


class Flatten(Primitive):
    """``ops.Flatten()(x)``: ``(N, ...)`` to ``(N, prod(...))``."""

    def __call__(self, x) -> Tensor:
        tensor_arg(x, "Flatten", "input_x")
        if x.ndim < 1:
            raise ValueError("For 'Flatten', the 'input_x' should be at least 1-D, but got a 0-D Tensor.")
        return F.reshape(x, (x.shape[0], -1))


class Fill(Primitive):
    """``ops.Fill()(type, shape, value)``: a new Tensor of ``shape`` filled with ``value``."""

    def __call__(self, type, shape, value) -> Tensor:  # noqa: A002 - MindSpore's argument name
        return A.fill_value(type, shape, value, "Fill")


class Fills(Primitive):
    """``ops.Fills()(x, value)``: a Tensor like ``x`` filled with ``value``."""

    def __call__(self, x, value) -> Tensor:
        tensor_arg(x, "Fills", "x")
        return A.fill_value(x.dtype, x.shape, value, "Fills")


class DType(Primitive):
    """``ops.DType()(x)``: the dtype of ``x``."""

    def __call__(self, x) -> mstype.Type:
        return A.dtype(x)


class Select(Primitive):
    """``ops.Select()(condition, x, y)``: ``x`` where ``condition``, else ``y``."""

    def __call__(self, condition, x, y) -> Tensor:
        return A.select(condition, x, y)


class Gather(Primitive):
    """``ops.Gather(batch_dims=0)(input_params, input_indices, axis)``: slices at ``input_indices`` along ``axis``."""

    @prim_attr_register
    def __init__(self, batch_dims: int = 0) -> None:
        if isinstance(batch_dims, bool) or not isinstance(batch_dims, int):
            raise TypeError(msg("Gather", "batch_dims", "an int", batch_dims))

    def __call__(self, input_params, input_indices, axis) -> Tensor:
        return A.gather(input_params, input_indices, axis, self.batch_dims)


GatherV2 = Gather


class SparseGatherV2(Primitive):
    """``ops.SparseGatherV2()(input_params, input_indices, axis)``: :class:`Gather` (gradients are dense here)."""

    def __init__(self) -> None:
        super().__init__()
        self.init_prim_io_names(["params", "indices", "axis"], ["output"])
        self.add_prim_attr("bprop_return_sparse", True)

    def __call__(self, input_params, input_indices, axis) -> Tensor:
        return A.gather(input_params, input_indices, axis)


class Tile(Primitive):
    """``ops.Tile()(x, multiples)``."""

    def __call__(self, x, multiples) -> Tensor:
        return A.tile(x, multiples)


class BroadcastTo(Primitive):
    """``ops.BroadcastTo(shape)(x)`` (``-1`` keeps that axis of ``x``)."""

    @prim_attr_register
    def __init__(self, shape) -> None:
        pass

    def __call__(self, x) -> Tensor:
        return A.broadcast_to(x, self.shape)


class OneHot(Primitive):
    """``ops.OneHot(axis=-1)(indices, depth, on_value, off_value)``."""

    @prim_attr_register
    def __init__(self, axis: int = -1) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(msg("OneHot", "axis", "an int", axis))

    def __call__(self, indices, depth, on_value, off_value) -> Tensor:
        if isinstance(on_value, Tensor) and isinstance(off_value, Tensor) and on_value.dtype != off_value.dtype:
            raise TypeError(f"For 'OneHot', 'on_value' and 'off_value' should have one dtype, but got "
                            f"{on_value.dtype} and {off_value.dtype}.")
        return A.one_hot(indices, depth, on_value, off_value, self.axis)


class ZerosLike(Primitive):
    def __call__(self, x) -> Tensor:
        return F.zeros_like(tensor_arg(x, "ZerosLike", "x"))


class OnesLike(Primitive):
    def __call__(self, x) -> Tensor:
        return F.ones_like(tensor_arg(x, "OnesLike", "x"))


class Zeros(Primitive):
    """``ops.Zeros()(shape, dtype)``."""

    def __call__(self, size, type=None) -> Tensor:  # noqa: A002
        return A.fill_value(type or mstype.float32, size, 0, "Zeros")


class Ones(Primitive):
    """``ops.Ones()(shape, dtype)``."""

    def __call__(self, size, type=None) -> Tensor:  # noqa: A002
        return A.fill_value(type or mstype.float32, size, 1, "Ones")


class Eye(Primitive):
    """``ops.Eye()(n, m, t)``: an ``n x m`` identity of dtype ``t``."""

    def __call__(self, n: int, m: int, t) -> Tensor:
        if not isinstance(t, mstype.Type):
            raise TypeError(msg("Eye", "t", "a sporax dtype", t))
        return Tensor._wrap(jnp.eye(n, m, dtype=t.np_dtype))


class Size(Primitive):
    def __call__(self, x) -> int:
        return A.size(x)


class Rank(Primitive):
    def __call__(self, x) -> int:
        return A.rank(x)


class Identity(Primitive):
    """``ops.Identity()(x)``: a new Tensor with ``x``'s values."""

    def __call__(self, x) -> Tensor:
        return tensor_arg(x, "Identity", "x").copy()


