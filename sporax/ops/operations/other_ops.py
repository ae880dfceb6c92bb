"""Other operator classes of ``mindspore.ops.operations``: ``Print``, ``Depend``, ``Assign``, ``AssignAdd``, ..."""

from __future__ import annotations

import sys

import jax
import numpy as np

from sporax.common._validation import msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.ops.function.array_func import depend
from sporax.ops.primitive import Primitive

__all__ = ["Print", "Depend", "Assign", "AssignAdd", "AssignSub"]


def _tensor_text(value) -> str:
    """MindSpore's printed form of a Tensor inside ``Print``."""
    arr = np.asarray(value)
    return f"Tensor(shape={list(arr.shape)}, dtype={_dtype_name(arr)}, value={_values(arr)})"


def _dtype_name(arr) -> str:
    from sporax.common import dtype as mstype

    return str(mstype.from_numpy(arr.dtype))


def _values(arr) -> str:
    text = np.array2string(arr, separator=" ")
    return text if arr.ndim == 0 else "\n" + text


def _emit(parts: list) -> None:
    sys.stdout.write("\n".join(parts) + "\n")
    sys.stdout.flush()


class Print(Primitive):
    """``ops.Print()(*inputs)``: print strings and Tensors, one per line, and return None.

    Inside a compiled function (``jit``, GRAPH_MODE) the values are printed when the compiled
    step runs (through ``jax.debug.callback``), as MindSpore's graph-mode Print does.
    """

    def __init__(self) -> None:
        super().__init__()
        self.add_prim_attr("side_effect_io", True)

    def __call__(self, *inputs) -> None:
        items = []
        for i, x in enumerate(inputs):
            if isinstance(x, Tensor):
                items.append(("t", x._jax()))
            elif isinstance(x, (str, int, float, bool)):
                items.append(("s", str(x)))
            else:
                raise TypeError(msg("Print", f"input {i}", "a str, a number or a Tensor", type(x).__name__))
        arrays = [a for k, a in items if k == "t"]
        template = [(k, None if k == "t" else a) for k, a in items]

        def show(*values):
            it = iter(values)
            _emit([_tensor_text(next(it)) if k == "t" else s for k, s in template])

        if any(isinstance(a, jax.core.Tracer) for a in arrays):
            jax.debug.callback(show, *arrays, ordered=True)
        else:
            show(*arrays)


class Depend(Primitive):
    """``ops.Depend()(value, expr)``: ``value``, ordered after ``expr`` (program order already does that here)."""

    def __init__(self) -> None:
        super().__init__()
        self.add_prim_attr("side_effect_propagate", 1)

    def __call__(self, value, expr):
        return depend(value, expr)


class Assign(Primitive):
    """``ops.Assign()(variable, value)``: ``variable`` takes ``value``'s data (through ``set_data``) and is returned."""

    def __call__(self, variable, value):
        if not isinstance(variable, Parameter):
            raise TypeError(msg("Assign", "variable", "a Parameter", type(variable).__name__))
        value = value if isinstance(value, Tensor) else Tensor(value)
        return variable.set_data(value.astype(variable.dtype))


class AssignAdd(Primitive):
    """``ops.AssignAdd()(variable, value)``: ``variable += value`` in place; returns ``variable``."""

    _sign = 1

    def __call__(self, variable, value):
        if not isinstance(variable, Parameter):
            raise TypeError(msg(self.name, "variable", "a Parameter", type(variable).__name__))
        v = value._jax() if isinstance(value, Tensor) else np.asarray(value)
        new = variable._jax() + self._sign * v.astype(variable.dtype.np_dtype)
        return variable.set_data(Tensor._wrap(new.astype(variable.dtype.np_dtype)))


class AssignSub(AssignAdd):
    """``ops.AssignSub()(variable, value)``: ``variable -= value`` in place; returns ``variable``."""

    _sign = -1
