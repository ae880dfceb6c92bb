"""Operator classes of ``mindspore.ops`` (``ops.MatMul``, ``ops.Add``, ...), on jax.numpy."""

from __future__ import annotations

import jax.numpy as jnp

from sporax.common import _promotion
from sporax.common._validation import check_bool
from sporax.common.tensor import Tensor, unwrap
from sporax.ops.primitive import Primitive

__all__ = ["MatMul", "BatchMatMul", "Add", "Sub", "Mul", "RealDiv", "Div", "ReduceSum", "ReduceMean",
           "Reshape", "Transpose", "Cast", "Shape", "Square", "Sqrt", "Exp", "Log", "ReLU", "Tanh",
           "Sigmoid", "Softmax", "Assign", "Identity", "Neg", "Abs", "Maximum", "Minimum", "Pow"]


class MatMul(Primitive):
    """``x @ y`` for 2-D tensors, optionally transposing either side first."""

    def __init__(self, transpose_a: bool = False, transpose_b: bool = False) -> None:
        super().__init__()
        self.transpose_a = check_bool(transpose_a, "transpose_a", "MatMul")
        self.transpose_b = check_bool(transpose_b, "transpose_b", "MatMul")

    def __call__(self, x, y) -> Tensor:
        a, b = unwrap(x), unwrap(y)
        if self.transpose_a:
            a = jnp.swapaxes(a, -1, -2)
        if self.transpose_b:
            b = jnp.swapaxes(b, -1, -2)
        return _promotion.binary(jnp.matmul, a, b)


BatchMatMul = MatMul


def _binary_op(name: str, fn, op: str = "arith"):
    """An operator class over two operands promoted by MindSpore's rules (sporax.common._promotion)."""

    def __call__(self, x, y):
        return _promotion.binary(fn, x, y, op)

    return type(name, (Primitive,), {"__call__": __call__, "__doc__": f"Elementwise ``{fn.__name__}``."})


def _elementwise(name: str, fn):
    def __call__(self, *args):
        return Tensor._wrap(fn(*(unwrap(a) for a in args)))

    return type(name, (Primitive,), {"__call__": __call__, "__doc__": f"Elementwise ``{fn.__name__}``."})


Add = _binary_op("Add", jnp.add)
Sub = _binary_op("Sub", _promotion.subtract)
Mul = _binary_op("Mul", jnp.multiply, "mul")
RealDiv = _binary_op("RealDiv", jnp.true_divide, "realdiv")
Div = RealDiv
Square = _elementwise("Square", jnp.square)
Sqrt = _elementwise("Sqrt", jnp.sqrt)
Exp = _elementwise("Exp", jnp.exp)
Log = _elementwise("Log", jnp.log)
Neg = _elementwise("Neg", jnp.negative)
Abs = _elementwise("Abs", jnp.abs)
Maximum = _binary_op("Maximum", jnp.maximum)
Minimum = _binary_op("Minimum", jnp.minimum)
Pow = _binary_op("Pow", jnp.power)
Tanh = _elementwise("Tanh", jnp.tanh)
ReLU = _elementwise("ReLU", lambda x: jnp.maximum(x, 0))
Identity = _elementwise("Identity", lambda x: x)


class Sigmoid(Primitive):
    def __call__(self, x) -> Tensor:
        import jax

        return Tensor._wrap(jax.nn.sigmoid(unwrap(x)))


class Softmax(Primitive):
    def __init__(self, axis: int = -1) -> None:
        super().__init__()
        self.axis = axis

    def __call__(self, x) -> Tensor:
        import jax

        return Tensor._wrap(jax.nn.softmax(unwrap(x), axis=self.axis))


class _Reduce(Primitive):
    _fn = staticmethod(jnp.sum)

    def __init__(self, keep_dims: bool = False) -> None:
        super().__init__()
        self.keep_dims = check_bool(keep_dims, "keep_dims", type(self).__name__)

    def __call__(self, x, axis=()) -> Tensor:
        axis = None if axis == () else tuple(axis) if isinstance(axis, list) else axis
        return Tensor._wrap(self._fn(unwrap(x), axis=axis, keepdims=self.keep_dims))


class ReduceSum(_Reduce):
    _fn = staticmethod(jnp.sum)


class ReduceMean(_Reduce):
    _fn = staticmethod(jnp.mean)


class Reshape(Primitive):
    def __call__(self, x, shape) -> Tensor:
        return Tensor._wrap(jnp.reshape(unwrap(x), tuple(shape)))


class Transpose(Primitive):
    def __call__(self, x, perm) -> Tensor:
        return Tensor._wrap(jnp.transpose(unwrap(x), tuple(perm)))


class Cast(Primitive):
    def __call__(self, x, dtype) -> Tensor:
        return Tensor._wrap(jnp.asarray(unwrap(x)).astype(dtype.np_dtype))


class Shape(Primitive):
    def __call__(self, x) -> tuple:
        return tuple(x.shape)


class Assign(Primitive):
    """``variable`` takes ``value``'s data (through ``Parameter.set_data``) and is returned."""

    def __call__(self, variable, value):
        return variable.set_data(value if isinstance(value, Tensor) else Tensor(value))
