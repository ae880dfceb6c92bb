"""MindSpore-named data types, mapped both ways to numpy/JAX dtypes.

Every dtype is a singleton: ``str(float32) == 'Float32'`` (MindSpore's printed name),
``repr(float32) == 'sporax.float32'``. 64-bit types are real 64-bit data (sporax enables
``jax_enable_x64`` at import and always picks dtypes explicitly).
"""

from __future__ import annotations

import ml_dtypes
import numpy as np

__all__ = [
    "Type",
    "bool_",
    "int8",
    "int16",
    "int32",
    "int64",
    "uint8",
    "uint16",
    "uint32",
    "uint64",
    "float16",
    "bfloat16",
    "float32",
    "float64",
    "complex64",
    "complex128",
    "float_",
    "double",
    "half",
    "int_",
    "uint",
    "int_type",
    "uint_type",
    "float_type",
    "complex_type",
    "number_type",
    "all_types",
    "to_numpy",
    "is_dtype",
    "dtype_to_nptype",
    "dtype_to_pytype",
    "string_",
    "pytype_to_dtype",
    "get_py_obj_dtype",
]


class Type:
    """A MindSpore dtype: a printed name plus the numpy dtype that stores it."""

    __slots__ = ("_name", "_attr", "_np")

    def __init__(self, name: str, attr: str, np_dtype: np.dtype) -> None:
        self._name = name
        self._attr = attr
        self._np = np.dtype(np_dtype)

    @property
    def name(self) -> str:
        return self._name

    @property
    def np_dtype(self) -> np.dtype:
        """The numpy dtype (``ml_dtypes.bfloat16`` for BFloat16)."""
        return self._np

    @property
    def itemsize(self) -> int:
        return self._np.itemsize

    @property
    def is_floating(self) -> bool:
        return self in float_type

    def __str__(self) -> str:
        return self._name

    def __repr__(self) -> str:
        return f"sporax.{self._attr}"

    def __reduce__(self):
        return (_by_attr, (self._attr,))

    def __copy__(self):
        return self

    def __deepcopy__(self, memo):
        return self


def _by_attr(attr: str) -> Type:
    return globals()[attr]


bool_ = Type("Bool", "bool_", np.bool_)
int8 = Type("Int8", "int8", np.int8)
int16 = Type("Int16", "int16", np.int16)
int32 = Type("Int32", "int32", np.int32)
int64 = Type("Int64", "int64", np.int64)
uint8 = Type("UInt8", "uint8", np.uint8)
uint16 = Type("UInt16", "uint16", np.uint16)
uint32 = Type("UInt32", "uint32", np.uint32)
uint64 = Type("UInt64", "uint64", np.uint64)
float16 = Type("Float16", "float16", np.float16)
bfloat16 = Type("BFloat16", "bfloat16", ml_dtypes.bfloat16)
float32 = Type("Float32", "float32", np.float32)
float64 = Type("Float64", "float64", np.float64)
complex64 = Type("Complex64", "complex64", np.complex64)
complex128 = Type("Complex128", "complex128", np.complex128)
# MindSpore's string dtype: a Tensor of a numpy str/bytes array holds it (host data only, no ops).
string_ = Type("String", "string_", np.str_)

# MindSpore's aliases.
float_ = float32
double = float64
half = float16
int_ = int32
uint = uint32

int_type = (int8, int16, int32, int64)
uint_type = (uint8, uint16, uint32, uint64)
float_type = (float16, float32, float64, bfloat16)
complex_type = (complex64, complex128)
number_type = (*int_type, *uint_type, *float_type, *complex_type)
all_types = (bool_, *number_type)

_FROM_NP = {t.np_dtype: t for t in all_types}
_BY_NAME = {t.name: t for t in (*all_types, string_)}


def from_numpy(np_dtype) -> Type:
    """The sporax dtype that stores numpy dtype ``np_dtype``; TypeError if there is none."""
    try:
        return _FROM_NP[np.dtype(np_dtype)]
    except (KeyError, TypeError):
        if isinstance(np_dtype, np.dtype) and np_dtype.kind in "US":
            return string_
        raise TypeError(f"The numpy dtype {np_dtype!r} has no sporax equivalent.") from None


def from_name(name: str) -> Type:
    """The dtype printed as ``name`` (``'Float32'``); ValueError for an unknown name."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise ValueError(f"Unknown dtype name {name!r}; expected one of {sorted(_BY_NAME)}.") from None


def to_numpy(dtype: Type) -> np.dtype:
    """The numpy dtype of a sporax dtype."""
    return dtype.np_dtype


dtype_to_nptype = to_numpy


def is_dtype(obj) -> bool:
    return isinstance(obj, Type)


def pytype_to_dtype(obj) -> Type:
    """Python/numpy type object -> sporax dtype (``int`` -> Int64, ``float`` -> Float32)."""
    if isinstance(obj, Type):
        return obj
    if obj is bool:
        return bool_
    if obj is int:
        return int64
    if obj is float:
        return float32
    return from_numpy(obj)


_PYTYPES = {bool_: bool, **dict.fromkeys((*int_type, *uint_type), int), **dict.fromkeys(float_type, float),
            **dict.fromkeys(complex_type, complex), string_: str}


def dtype_to_pytype(type_) -> type:
    """The Python type of a dtype's elements (``float32`` -> ``float``); KeyError otherwise, as in MindSpore."""
    return _PYTYPES[type_]


def get_py_obj_dtype(obj) -> Type:
    """The dtype of a Tensor, or of a Python type object."""
    dt = getattr(obj, "dtype", None)
    if isinstance(dt, Type):
        return dt
    return pytype_to_dtype(obj)
