"""MindSpore 2.10's type promotion, written once and applied in one place.

Every binary arithmetic operator (``Tensor.__add__`` & co, on Tensors and Parameters alike),
every functional op (``ops.add``, ``ops.mul``, ...) and every operator class (``ops.Add()``,
...) computes its result dtype here, then casts both operands to it explicitly before calling
``jax.numpy``. So the dtype rules never depend on JAX's own promotion, nor on
``jax_enable_x64`` (which sporax turns on so that Int64/Float64 are real): a 32-bit program
gets 32-bit results.

The rules (measured on MindSpore 2.10, CPU; goldens in ``tests/common/test_promotion.py``):

1. Two Tensors (strong dtypes): the table of :func:`strong` below. Bool joins anything;
   integers widen, and an unsigned with a signed integer of no greater width gives the next
   wider signed integer (UInt8 + Int8 = Int16); an integer with a float gives the float;
   Float16 with BFloat16 gives Float32; floats widen; a float with a complex gives the complex,
   widened to Complex128 by Float64.
2. A Python scalar is weak: ``bool`` < ``int`` < ``float`` < ``complex``. If the scalar's
   kind is not above the tensor's kind, the tensor's dtype is kept (``Tensor(float16) * 2.5``
   is Float16, ``Tensor(int8) + 300`` is Int8); otherwise the result is the default dtype of
   the scalar's kind: Int64 for an int, Float32 for a float, Complex64 for a complex
   (``Tensor(int32) + 2.5`` is Float32, ``Tensor(bool) + 1`` is Int64).
3. True division (``/``, ``ops.div``) of two bool/integer operands gives Float32; the
   operator class ``ops.RealDiv`` keeps the integer dtype (as MindSpore's does).
4. ``*`` and ``/`` (operators and functional ``mul``/``div``) with a 0-d Tensor on the right
   and a wider dtype of the same kind keep the left operand's dtype for the pairs in
   ``_ZERO_D_KEEP`` (``Tensor(float16) * Tensor(float32 0-d)`` is Float16). ``+`` and ``-``
   do not do this in MindSpore, and neither do we.

numpy arrays and numpy scalars are strong, like Tensors of their dtype.

How an op uses it (new ops must go through here, never through JAX's promotion)::

    from sporax.common import _promotion

    def add(x, y):
        return _promotion.binary(jnp.add, x, y)              # Tensor result

    a, b = _promotion.promote(x, y, op="truediv")            # two jax arrays, one dtype

``op`` is one of ``"arith"`` (default: +, -, //, %, **, maximum, minimum, matmul,
comparisons), ``"mul"``, ``"truediv"`` and ``"realdiv"`` (rules 3 and 4).
"""

from __future__ import annotations

import numbers

import jax
import jax.numpy as jnp
import ml_dtypes
import numpy as np

__all__ = ["strong", "result_dtype", "promote", "binary", "subtract", "OPS"]

OPS = ("arith", "mul", "truediv", "realdiv")

_BOOL = np.dtype(np.bool_)
_I64 = np.dtype(np.int64)
_F16 = np.dtype(np.float16)
_BF16 = np.dtype(ml_dtypes.bfloat16)
_F32 = np.dtype(np.float32)
_F64 = np.dtype(np.float64)
_C64 = np.dtype(np.complex64)
_C128 = np.dtype(np.complex128)
_SIGNED = {1: np.dtype(np.int8), 2: np.dtype(np.int16), 4: np.dtype(np.int32), 8: _I64}


def _kind(dt: np.dtype) -> int:
    """0 bool, 1 integer (signed or unsigned), 2 float, 3 complex."""
    if dt == _BOOL:
        return 0
    if dt.kind in "iu":
        return 1
    if dt.kind == "c":
        return 3
    return 2  # float kinds, bfloat16 included (numpy calls it 'V')


def _strong_rule(a: np.dtype, b: np.dtype) -> np.dtype:
    if a == b:
        return a
    ka, kb = _kind(a), _kind(b)
    if ka != kb:
        hi, lo = (a, b) if ka > kb else (b, a)
        if max(ka, kb) == 3 and lo == _F64:
            return _C128
        return hi
    if ka == 1:
        if a.kind == b.kind:
            return a if a.itemsize >= b.itemsize else b
        u, s = (a, b) if a.kind == "u" else (b, a)
        if s.itemsize > u.itemsize:
            return s
        return _SIGNED[min(2 * u.itemsize, 8)]
    if ka == 2:
        if {a, b} == {_F16, _BF16}:
            return _F32
        return a if a.itemsize >= b.itemsize else b
    return _C128


_ALL = [np.dtype(t) for t in (np.bool_, np.int8, np.int16, np.int32, np.int64, np.uint8, np.uint16, np.uint32,
                              np.uint64, np.float16, np.float32, np.float64, np.complex64, np.complex128)] + [_BF16]
# The whole table, computed once from the rule above (a dict lookup per operation).
_TABLE: dict = {(a, b): _strong_rule(a, b) for a in _ALL for b in _ALL}

# Rule 4: (left dtype, right 0-d dtype) pairs where MindSpore 2.10's mul/div keep the left dtype.
_ZERO_D_KEEP = frozenset(
    (np.dtype(a), np.dtype(b))
    for a, b in [
        (np.int8, np.int64), (np.int16, np.int32), (np.int16, np.int64), (np.int32, np.int64),
        (np.uint8, np.int64), (np.float16, np.float32), (np.float16, np.float64), (np.float32, np.float64),
    ]
)

# Rule 2: the dtype a weak Python scalar gets when it is of a higher kind than the tensor.
_WEAK_DEFAULT = {1: _I64, 2: _F32, 3: _C64}


def strong(a, b) -> np.dtype:
    """The promoted dtype of two strong (Tensor/array) dtypes: rule 1 (numpy dtypes)."""
    return _TABLE[(np.dtype(a), np.dtype(b))]


def _scalar_kind(x) -> int | None:
    """The kind of a Python scalar, or None for anything else."""
    if isinstance(x, bool):
        return 0
    if isinstance(x, int):
        return 1
    if isinstance(x, float):
        return 2
    if isinstance(x, complex):
        return 3
    if isinstance(x, numbers.Number) and not isinstance(x, np.generic):
        return 2
    return None


def _info(x):
    """(dtype, ndim) of an operand, or (None, kind) for a weak Python scalar."""
    if isinstance(x, _tensor_class()):  # a Tensor or Parameter (possibly lazy): its declared dtype
        return x._dtype._np, len(x._shape)
    if isinstance(x, (np.ndarray, np.generic, jax.Array, jax.core.Tracer)):
        return x.dtype, x.ndim
    k = _scalar_kind(x)
    if k is None:
        raise TypeError(
            "For a sporax arithmetic operation, each operand should be a Tensor, a numpy array or a "
            f"Python/numpy number, but got {type(x).__name__}."
        )
    return None, k


def result_dtype(x, y, op: str = "arith") -> np.dtype:
    """The numpy dtype of ``x <op> y`` under MindSpore's rules (see the module docstring)."""
    dx, nx = _info(x)
    dy, ny = _info(y)
    return _result(dx, nx, dy, ny, op)


def _result(dx, nx, dy, ny, op: str) -> np.dtype:
    if dx is None and dy is None:  # two Python scalars: as Tensors of their default dtypes
        dx = _BOOL if nx == 0 else _WEAK_DEFAULT[nx]
        dy = _BOOL if ny == 0 else _WEAK_DEFAULT[ny]
        nx = ny = 0
    if dx is None:
        out = _weak(dy, nx)
    elif dy is None:
        out = _weak(dx, ny)
    elif op in ("mul", "truediv") and ny == 0 and nx > 0 and (dx, dy) in _ZERO_D_KEEP:
        out = dx
    else:
        out = _TABLE[(dx, dy)]
    if op == "truediv" and _kind(out) < 2:
        return _F32
    return out


def _weak(dt: np.dtype, scalar_kind: int) -> np.dtype:
    if scalar_kind <= _kind(dt):
        return dt
    return _WEAK_DEFAULT[scalar_kind]


_TENSOR: list = []


def _tensor_class():
    if not _TENSOR:  # tensor.py imports this module: resolve the class on first use
        from sporax.common.tensor import Tensor

        _TENSOR.append(Tensor)
    return _TENSOR[0]


def _as_operand(x, dtype: np.dtype):
    """``x`` as an operand of ``dtype`` for jax.numpy: a jax array or tracer, or a numpy value."""
    if isinstance(x, _tensor_class()):
        x = x._jax()
    elif not isinstance(x, (jax.Array, jax.core.Tracer)):
        try:
            return np.asarray(x, dtype)
        except OverflowError:  # a Python int outside the tensor's range wraps, as a cast does
            return np.asarray(x).astype(dtype)
    if x.dtype != dtype:
        x = x.astype(dtype)
    return x


def promote(x, y, op: str = "arith") -> tuple:
    """``(x, y)`` as operands of their common dtype under MindSpore's rules (jax arrays, tracers or
    numpy values, ready for any ``jax.numpy`` function)."""
    dt = result_dtype(x, y, op)
    return _as_operand(x, dt), _as_operand(y, dt)


def binary(fn, x, y, op: str = "arith"):
    """``Tensor(fn(x', y'))`` with ``x', y'`` promoted by :func:`promote` (the one entry point for ops)."""
    dt = result_dtype(x, y, op)
    out = fn(_as_operand(x, dt), _as_operand(y, dt))
    if out.dtype != dt:  # RealDiv of integers stays integer; Bool // Bool stays Bool
        out = out.astype(dt)
    return _tensor_class()._wrap(out)


def subtract(a, b):
    """``jnp.subtract``, plus Bool - Bool (MindSpore gives Bool; XLA has no boolean subtraction)."""
    if a.dtype == _BOOL:
        return jnp.logical_xor(a, b)
    return jnp.subtract(a, b)
