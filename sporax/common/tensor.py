"""Tensor: a value that is either concrete (an array) or lazy (initializer + shape + dtype).

A concrete value is a read-only numpy array, a ``jax.Array`` or (inside ``jit``/``grad``) a
tracer. It is never mutated in place, so Tensors share it freely; every write goes through
``_assign``, which rebinds it. Operators go to ``jax.numpy``. A lazy tensor holds no memory
until ``init_data()`` or the first use of its values (spec §1.3).
"""

from __future__ import annotations

import numbers
import operator
import weakref

import jax
import jax.numpy as jnp
import numpy as np

from sporax._jax_setup import to_device
from sporax.common import _promotion, _rng
from sporax.common import dtype as mstype
from sporax.common.dtype import Type
from sporax.common.initializer import Initializer

__all__ = ["Tensor", "wrap", "unwrap", "mark_donatable", "is_donatable"]

_ARRAY_TYPES = (np.ndarray, jax.Array, jax.core.Tracer)

# Device arrays a compiled step may donate (let XLA overwrite in place): the arrays it wrote
# into its state Parameters, for as long as nothing else holds them. Keyed by id, holding a
# weak reference that is checked on lookup (a dead array, or a new one reusing its id, is
# never donatable); dead entries are purged in bulk. Every path that gives an array a second
# holder (a snapshot, a copy, a new Tensor from a Tensor, an op that returns its input,
# handing it to jax or numpy) calls ``_escape``, so the next compiled call donates a private
# copy instead and the other holder's data stays valid.
_donatable: dict[int, weakref.ref] = {}
_purge_at = [1024]


def mark_donatable(arrays) -> None:
    """Record ``arrays`` (a compiled step's fresh state outputs) as held by their Parameter alone."""
    ref = weakref.ref
    for a in arrays:
        _donatable[id(a)] = ref(a)
    if len(_donatable) > _purge_at[0]:
        for key in [k for k, r in _donatable.items() if r() is None]:
            del _donatable[key]
        _purge_at[0] = max(1024, 2 * len(_donatable))


def is_donatable(array) -> bool:
    """True if ``array`` is a compiled step's output that no other Tensor or caller holds."""
    r = _donatable.get(id(array))
    return r is not None and r() is array


# How many donatable arrays have escaped so far: a compiled call whose state arrays are those
# of its last call, with no escape since, skips checking them one by one (``api._execute``).
escapes = [0]


def _escape(value):
    """``value`` is about to get another holder: it may no longer be donated."""
    if _donatable and _donatable.pop(id(value), None) is not None:
        escapes[0] += 1
    return value


def _readonly(arr: np.ndarray) -> np.ndarray:
    arr.flags.writeable = False
    return arr


def _infer_sequence(data) -> np.ndarray:
    """numpy's inference for a list/tuple, narrowed to MindSpore 2.x rules (spec §1.2)."""
    data = _unwrap_nested(data)
    try:
        arr = np.array(data)
    except ValueError as exc:
        raise TypeError(f"For 'Tensor', the nested list/tuple must not be ragged: {exc}") from None
    if arr.dtype == np.object_:
        raise TypeError("For 'Tensor', the input_data holds objects that are not numbers.")
    if arr.dtype == np.float64:
        arr = arr.astype(np.float32)
    elif arr.dtype in (np.int32, np.int64) or arr.dtype.kind == "i" and arr.dtype != np.int64:
        arr = arr.astype(np.int64)
    return arr


def _unwrap_nested(data):
    if isinstance(data, Tensor):
        return data.asnumpy()
    if isinstance(data, (list, tuple)):
        return [_unwrap_nested(d) for d in data]
    return data


def _check_dtype(dtype) -> None:
    if dtype is not None and not isinstance(dtype, Type):
        raise TypeError(
            f"For 'Tensor', the 'dtype' should be a sporax dtype such as sporax.float32 or None, "
            f"but got {dtype!r} of type {type(dtype).__name__}."
        )


def _normalize_shape(shape) -> tuple:
    if type(shape) is tuple and all(type(s) is int for s in shape):
        return shape
    if isinstance(shape, numbers.Integral) and not isinstance(shape, bool):
        return (int(shape),)
    if isinstance(shape, (list, tuple)) and all(
        isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in shape
    ):
        return tuple(int(s) for s in shape)
    raise TypeError(f"For 'Tensor', the 'shape' should be an int or a list/tuple of int, but got {shape!r}.")


def _cast(value, dtype: Type):
    """Cast an array to ``dtype``; numpy stays numpy (and read-only), jax stays jax."""
    if isinstance(value, np.ndarray):
        if value.dtype == dtype.np_dtype:
            return value
        return _readonly(value.astype(dtype.np_dtype))
    return value.astype(dtype.np_dtype)


class Tensor:
    """A MindSpore Tensor on JAX (spec §1).

    ``Tensor(input_data=None, dtype=None, shape=None, init=None)``: from a Tensor, numpy array
    or scalar, list/tuple, int, float or bool; or lazy, from an ``Initializer`` with ``shape``
    and ``dtype``.
    """

    __slots__ = ("_value", "_shape", "_dtype", "init", "_seed", "__weakref__")
    __array_priority__ = 100

    def __init__(self, input_data=None, dtype=None, shape=None, init=None, internal=False, const_arg=False):
        _check_dtype(dtype)
        self.init = None
        self._seed = None
        if init is not None:
            self._init_lazy(input_data, dtype, shape, init)
            return
        if input_data is None:
            if shape is None or dtype is None:
                raise TypeError(
                    "For 'Tensor', 'input_data' must be given (a Tensor, numpy array, list, tuple, "
                    "int, float or bool), or 'init' with 'shape' and 'dtype'; got no data."
                )
            shape = _normalize_shape(shape)
            value = _readonly(np.zeros(shape, dtype.np_dtype))
        else:
            if shape is not None:
                raise ValueError("For 'Tensor', 'input_data' and 'shape' can not be given at the same time.")
            value = self._convert(input_data, dtype)
        self._value = value
        self._shape = tuple(value.shape)
        self._dtype = mstype.from_numpy(value.dtype)

    def _init_lazy(self, input_data, dtype, shape, init) -> None:
        if input_data is not None:
            raise ValueError("For 'Tensor', 'input_data' and 'init' can not be given at the same time.")
        if dtype is None or shape is None:
            raise ValueError("init, dtype and shape must have values at the same time.")
        if not isinstance(init, Initializer):
            raise TypeError(f"For 'Tensor', 'init' should be an Initializer, but got {type(init).__name__}.")
        shape = _normalize_shape(shape)
        init.validate(shape)
        self._value = None
        self._shape = shape
        self._dtype = dtype
        self.init = init
        self._seed = _rng.next_seed()

    @staticmethod
    def _convert(data, dtype):
        """Array for ``data`` by the dtype inference rules of spec §1.2 (copies host data)."""
        if isinstance(data, Tensor):
            value = _escape(data._materialized())
        elif isinstance(data, np.ndarray):
            if data.dtype == np.object_:
                raise TypeError("For 'Tensor', a numpy array of object dtype is not supported.")
            mstype.from_numpy(data.dtype)  # str/bytes arrays give a String tensor (host data, as MindSpore)
            value = _readonly(np.array(data))
        elif isinstance(data, (jax.Array, jax.core.Tracer)):
            value = data
        elif isinstance(data, np.generic):
            value = _readonly(np.array(data))
        elif isinstance(data, bool):
            value = _readonly(np.array(data, np.bool_))
        elif isinstance(data, int):
            value = _readonly(np.array(data, np.int64))
        elif isinstance(data, float):
            value = _readonly(np.array(data, np.float32))
        elif isinstance(data, complex):  # MindSpore 2.10: Complex128
            value = _readonly(np.array(data, np.complex128))
        elif isinstance(data, (list, tuple)):
            value = _readonly(_infer_sequence(data))
        else:
            raise TypeError(
                "For 'Tensor', the 'input_data' should be a Tensor, numpy array, numpy scalar, "
                f"list, tuple, int, float, complex or bool, but got {type(data).__name__}."
            )
        if dtype is not None:
            value = _cast(value, dtype)
        return value

    # ------------------------------------------------------------------ construction helpers
    @classmethod
    def _wrap(cls, value) -> Tensor:
        """A Tensor around an existing array, with no copy and no validation (internal)."""
        t = object.__new__(Tensor)
        t._value = _escape(value)
        t._shape = tuple(value.shape)
        t._dtype = mstype.from_numpy(value.dtype)
        t.init = None
        t._seed = None
        return t

    @staticmethod
    def from_numpy(array: np.ndarray) -> Tensor:
        """A Tensor of a numpy array's values and dtype (``mindspore.from_numpy``).

        MindSpore shares the array's memory; sporax copies it (a Tensor's data is never mutated in
        place), so a later write into ``array`` is not seen by the Tensor.
        """
        if not isinstance(array, np.ndarray):
            raise TypeError(f"For 'Tensor.from_numpy', the 'array' should be a numpy.ndarray, but got {type(array).__name__}.")
        return Tensor(array)

    # ------------------------------------------------------------------ value access
    def _materialized(self):
        """The stored array, materializing a lazy tensor first."""
        if self._value is None:
            self.init_data()
        return self._value

    def _jax(self):
        """The value as a jax array (or tracer); host data is transferred once and cached."""
        value = self._materialized()
        if isinstance(value, np.ndarray):
            value = to_device(value)  # a concrete array even inside a trace: it is cached
            self._value = value
        return value

    def _assign(self, value) -> None:
        """Rebind the stored array (the one write path; shape/dtype follow the array)."""
        self._value = _escape(value)
        self._shape = tuple(value.shape)
        self._dtype = mstype.from_numpy(value.dtype)

    def assign_value(self, value) -> Tensor:
        """Replace this tensor's data in place with ``value``'s (internal; keeps identity)."""
        if not isinstance(value, Tensor):
            value = Tensor(value)
        self._assign(value._materialized())
        self.init = None
        return self

    # ------------------------------------------------------------------ properties
    @property
    def shape(self) -> tuple:
        return self._shape

    @property
    def dtype(self) -> Type:
        return self._dtype

    @property
    def ndim(self) -> int:
        return len(self._shape)

    @property
    def size(self) -> int:
        return int(np.prod(self._shape, dtype=np.int64))

    @property
    def itemsize(self) -> int:
        return self._dtype.itemsize

    @property
    def nbytes(self) -> int:
        return self.size * self._dtype.itemsize

    @property
    def strides(self) -> tuple:
        """Bytes to step in each dimension of the row-major data (numpy's ``strides``)."""
        out, step = [], self._dtype.itemsize
        for d in reversed(self._shape):
            out.append(step)
            step *= d
        return tuple(reversed(out))

    @property
    def has_init(self) -> bool:
        return self.init is not None

    @property
    def T(self) -> Tensor:
        return self.transpose()

    # ------------------------------------------------------------------ lazy initialization
    def init_data(self, slice_index=None, shape=None, opt_shard_group=None) -> Tensor:
        """Materialize a lazy tensor in place and return it (spec §1.3).

        With ``slice_index`` and ``shape``, only that slice of the full tensor is made: the
        window that the slice index denotes, bit-identical to the same window of the whole
        tensor. With ``opt_shard_group`` the slice is further split along dimension 0 among
        the members of that communication group (spec §3.4).
        """
        if self.init is None:
            raise TypeError("init_data must be set Tensor.init, init can't be None")
        full_shape = self._shape
        shape = full_shape if shape is None else _normalize_shape(shape)
        offsets, sizes = (0,) * len(shape), shape
        if slice_index is None:
            full_shape = shape  # no slice: a fresh tensor of the requested shape
        else:
            from sporax.parallel import layout

            offsets, _ = layout.slice_index_window(full_shape, shape, slice_index)
        if opt_shard_group:
            from sporax import communication
            from sporax.parallel import layout

            offsets, sizes = layout.opt_shard_window(
                (offsets, sizes),
                communication.get_group_size(opt_shard_group),
                communication.get_rank(opt_shard_group),
            )
        self._materialize_window(full_shape, offsets, sizes)
        return self

    def _materialize_window(self, full_shape: tuple, offsets: tuple, sizes: tuple) -> None:
        """Fill this lazy tensor with the given window of its initializer's full tensor."""
        data = self.init.window(self._seed, tuple(full_shape), self._dtype, tuple(offsets), tuple(sizes))
        self._value = _readonly(data)
        self._shape = tuple(data.shape)
        self.init = None

    # ------------------------------------------------------------------ conversion
    def asnumpy(self) -> np.ndarray:
        """A numpy copy of the values (materializes a lazy tensor in place first)."""
        return np.array(self._materialized())

    def numpy(self) -> np.ndarray:
        return self.asnumpy()

    def __array__(self, dtype=None, copy=None):
        arr = np.asarray(_escape(self._materialized()))
        if dtype is not None:
            arr = arr.astype(dtype)
        return arr

    def __jax_array__(self):
        return _escape(self._jax())

    def item(self):
        return self.asnumpy().item()

    def tolist(self):
        return self.asnumpy().tolist()

    def __bool__(self) -> bool:
        v = self._materialized()
        if isinstance(v, jax.core.Tracer):  # `if tensor:` while compiling: sporax.common._branching
            from sporax.common import _branching

            return _branching.decide(v)
        return bool(v)

    def __int__(self) -> int:
        return int(self._materialized())

    def __float__(self) -> float:
        return float(self._materialized())

    def __index__(self) -> int:
        return operator.index(self.asnumpy().item())

    def __len__(self) -> int:
        if not self._shape:
            raise TypeError("len() of a 0-d Tensor")
        return self._shape[0]

    def __iter__(self):
        for i in range(len(self)):
            yield self[i]

    def __contains__(self, value) -> bool:
        """MindSpore 2.x: elementwise, ``value`` (a number or Tensor) equals some element or row.
        Anything else, a numpy array included, is never contained (``np.array(1) in t`` is False)."""
        if isinstance(value, np.ndarray) or not isinstance(value, (Tensor, numbers.Number)):
            return False
        return bool(jnp.any((self == value)._jax()))

    def __hash__(self) -> int:
        return id(self)

    def __reduce__(self):
        if self._value is None:
            return (lazy_tensor, (self.init, self._shape, self._dtype, self._seed))
        return (Tensor, (np.asarray(self._value),))

    # ------------------------------------------------------------------ printing
    def __str__(self) -> str:
        if self._value is None:
            return self._uninitialized_repr()
        if isinstance(self._value, jax.core.Tracer):
            return f"Tensor(shape={list(self._shape)}, dtype={self._dtype}, value=<traced>)"
        return str(np.asarray(self._value))

    def __repr__(self) -> str:
        if self._value is None:
            return self._uninitialized_repr()
        if isinstance(self._value, jax.core.Tracer):
            return str(self)
        return f"Tensor(shape={list(self._shape)}, dtype={self._dtype}, value={_format_value(np.asarray(self._value), self._dtype)})"

    def _uninitialized_repr(self) -> str:
        return f"Tensor(shape={list(self._shape)}, dtype={self._dtype}, value=<uninitialized>)"

    # ------------------------------------------------------------------ methods
    def astype(self, dtype: Type, copy: bool = True) -> Tensor:
        _check_dtype(dtype)
        if dtype is None:
            raise TypeError("For 'astype', the 'dtype' should be a sporax dtype, but got None.")
        return Tensor._wrap(_cast(self._materialized(), dtype))

    def to(self, dtype: Type) -> Tensor:
        return self.astype(dtype)

    def copy(self) -> Tensor:
        return Tensor._wrap(self._materialized())

    def reshape(self, *shape) -> Tensor:
        if len(shape) == 1 and isinstance(shape[0], (list, tuple)):
            shape = tuple(shape[0])
        return Tensor._wrap(jnp.reshape(self._jax(), shape))

    def view(self, *shape) -> Tensor:
        return self.reshape(*shape)

    def flatten(self) -> Tensor:
        return Tensor._wrap(jnp.ravel(self._jax()))

    def ravel(self) -> Tensor:
        return self.flatten()

    def transpose(self, *axes) -> Tensor:
        if len(axes) == 1 and isinstance(axes[0], (list, tuple)):
            axes = tuple(axes[0])
        return Tensor._wrap(jnp.transpose(self._jax(), axes or None))

    def squeeze(self, axis=None) -> Tensor:
        return Tensor._wrap(jnp.squeeze(self._jax(), axis))

    def expand_dims(self, axis: int) -> Tensor:
        return Tensor._wrap(jnp.expand_dims(self._jax(), axis))

    def sum(self, axis=None, dtype=None, keepdims=False) -> Tensor:
        return _reduce(jnp.sum, self, axis, keepdims, dtype)

    def mean(self, axis=None, keep_dims=False, keepdims=None) -> Tensor:
        return _reduce(jnp.mean, self, axis, keep_dims if keepdims is None else keepdims)

    def max(self, axis=None, keepdims=False) -> Tensor:
        return _reduce(jnp.max, self, axis, keepdims)

    def min(self, axis=None, keepdims=False) -> Tensor:
        return _reduce(jnp.min, self, axis, keepdims)

    def prod(self, axis=None, keep_dims=False) -> Tensor:
        return _reduce(jnp.prod, self, axis, keep_dims)

    def std(self, axis=None, ddof=0, keepdims=False) -> Tensor:
        return Tensor._wrap(jnp.std(self._jax(), axis=_axis(axis), ddof=ddof, keepdims=keepdims))

    def var(self, axis=None, ddof=0, keepdims=False) -> Tensor:
        return Tensor._wrap(jnp.var(self._jax(), axis=_axis(axis), ddof=ddof, keepdims=keepdims))

    def argmax(self, axis=None) -> Tensor:
        return Tensor._wrap(jnp.argmax(self._jax(), axis=axis))

    def argmin(self, axis=None) -> Tensor:
        return Tensor._wrap(jnp.argmin(self._jax(), axis=axis))

    def abs(self) -> Tensor:
        return Tensor._wrap(jnp.abs(self._jax()))

    def sqrt(self) -> Tensor:
        return Tensor._wrap(jnp.sqrt(self._jax()))

    def exp(self) -> Tensor:
        return Tensor._wrap(jnp.exp(self._jax()))

    def log(self) -> Tensor:
        return Tensor._wrap(jnp.log(self._jax()))

    def all(self, axis=None, keep_dims=False) -> Tensor:
        return _reduce(jnp.all, self, axis, keep_dims)

    def any(self, axis=None, keep_dims=False) -> Tensor:
        return _reduce(jnp.any, self, axis, keep_dims)

    def clip(self, xmin, xmax) -> Tensor:
        return Tensor._wrap(jnp.clip(self._jax(), unwrap(xmin), unwrap(xmax)))

    def fill(self, value) -> Tensor:
        return Tensor._wrap(jnp.full(self._shape, value, self._dtype.np_dtype))

    def dim(self) -> int:
        return self.ndim

    def numel(self) -> int:
        return self.size

    # ------------------------------------------------------------------ indexing
    def __getitem__(self, index) -> Tensor:
        return Tensor._wrap(self._jax()[_unwrap_index(index)])

    def __setitem__(self, index, value) -> None:
        new = self._jax().at[_unwrap_index(index)].set(jnp.asarray(unwrap(value), self._dtype.np_dtype))
        self._assign(new)


def _format_value(arr: np.ndarray, dtype: Type) -> str:
    """The value part of ``repr``: spec §1.4."""
    if arr.ndim == 0:
        v = arr.item()
        if isinstance(v, float):
            return " " + format(v, "g")
        if isinstance(v, complex):
            return " " + _complex_str(v)
        return f" {v}"
    fmt = None
    if dtype in mstype.complex_type:
        fmt = {"complex_kind": _complex_str}
    if dtype in (mstype.float32, mstype.float64, mstype.bfloat16):
        fmt = {"float_kind": lambda x: format(float(x), " .8e")}
    elif dtype is mstype.float16:
        fmt = {"float_kind": lambda x: format(float(x), " .4e")}
    text = np.array2string(arr.astype(np.float32) if dtype is mstype.bfloat16 else arr, separator=", ", formatter=fmt)
    return (" " if arr.ndim == 1 else "\n") + text


def _complex_str(v) -> str:
    """MindSpore's complex format: ``1+2j``, ``3-0.5j``."""
    return f"{v.real:g}{v.imag:+g}j"


def _axis(axis):
    if isinstance(axis, list):
        return tuple(axis)
    if axis == ():
        return None
    return axis


def _reduce(fn, t: Tensor, axis, keepdims, dtype=None) -> Tensor:
    kwargs = {"dtype": dtype.np_dtype} if dtype is not None else {}
    return Tensor._wrap(fn(t._jax(), axis=_axis(axis), keepdims=keepdims, **kwargs))


def _unwrap_index(index):
    if isinstance(index, Tensor):
        return index._jax()
    if isinstance(index, tuple):
        return tuple(i._jax() if isinstance(i, Tensor) else i for i in index)
    if isinstance(index, list):
        return jnp.asarray(index)
    return index


def lazy_tensor(init, shape, dtype: Type, seed: int) -> Tensor:
    """A lazy Tensor with a given seed, so copies and pickles keep the same values."""
    t = object.__new__(Tensor)
    t._value = None
    t._shape = tuple(shape)
    t._dtype = dtype
    t.init = init
    t._seed = seed
    return t


def unwrap(x):
    """The array inside a Tensor, or ``x`` unchanged (for scalars and arrays)."""
    return x._jax() if isinstance(x, Tensor) else x


def wrap(x):
    """Wrap arrays (and nested tuples/lists/dicts of them) as Tensors."""
    if isinstance(x, _ARRAY_TYPES):
        return Tensor._wrap(x)
    if isinstance(x, tuple):
        return tuple(wrap(i) for i in x)
    if isinstance(x, list):
        return [wrap(i) for i in x]
    if isinstance(x, dict):
        return {k: wrap(v) for k, v in x.items()}
    return x


def _binary(fn, reflected=False, op="arith", arith=False):
    """An operator method: operands promoted by MindSpore's rules (:mod:`sporax.common._promotion`)."""

    def method(self, other):
        if not isinstance(other, _OPERAND_TYPES):
            return NotImplemented
        if type(other) is type(self) and other._dtype is self._dtype:  # fast path: nothing to promote
            a, b = self._jax(), other._jax()
            if op == "truediv" and self._dtype._np.kind in "biu":
                a, b = a.astype(np.float32), b.astype(np.float32)
        else:
            a, b = _promotion.promote(self, other, op) if not reflected else _promotion.promote(other, self, op)[::-1]
        out = fn(b, a) if reflected else fn(a, b)
        if arith and out.dtype != a.dtype:  # Bool // Bool stays Bool, as in MindSpore
            out = out.astype(a.dtype)
        return Tensor._wrap(out)

    return method


_OPERAND_TYPES = (Tensor, numbers.Number, np.ndarray, np.generic, jax.Array, jax.core.Tracer)


def _unary(fn):
    def method(self):
        return Tensor._wrap(fn(self._jax()))

    return method


_OP_KIND = {"mul": "mul", "truediv": "truediv"}
for _name, _fn in {
    "add": jnp.add,
    "sub": _promotion.subtract,
    "mul": jnp.multiply,
    "truediv": jnp.true_divide,
    "floordiv": jnp.floor_divide,
    "mod": jnp.mod,
    "pow": jnp.power,
    "matmul": jnp.matmul,
}.items():
    _kind = _OP_KIND.get(_name, "arith")
    setattr(Tensor, f"__{_name}__", _binary(_fn, op=_kind, arith=True))
    setattr(Tensor, f"__r{_name}__", _binary(_fn, reflected=True, op=_kind, arith=True))

for _name, _fn in {"and": jnp.logical_and, "or": jnp.logical_or, "xor": jnp.logical_xor}.items():
    setattr(Tensor, f"__{_name}__", _binary(_fn))
    setattr(Tensor, f"__r{_name}__", _binary(_fn, reflected=True))

for _name, _fn in {
    "eq": jnp.equal,
    "ne": jnp.not_equal,
    "lt": jnp.less,
    "le": jnp.less_equal,
    "gt": jnp.greater,
    "ge": jnp.greater_equal,
}.items():
    setattr(Tensor, f"__{_name}__", _binary(_fn))

for _name, _fn in {"neg": jnp.negative, "pos": jnp.positive, "abs": jnp.abs, "invert": jnp.invert}.items():
    setattr(Tensor, f"__{_name}__", _unary(_fn))

Tensor.__hash__ = lambda self: id(self)  # __eq__ is elementwise; identity keeps dict/set use working
