"""What travels: a Cell's federated flags as a plan, and numpy arrays as Flower ``Array``s.

A parameter's name is its key in every ``ArrayRecord``. ``Plan`` is computed once from a
Cell (``set_param_fl`` flags, shapes, dtypes) and decides everything else: what a client
pushes, what it lets the server overwrite, what the server averages. Incoming arrays are
checked against it before they are decoded (declared dtype, shape, byte count) and after
(decoded dtype, shape, finiteness).
"""

from __future__ import annotations

import dataclasses
import io

import ml_dtypes
import numpy as np
from flwr.app import Array, ArrayRecord

__all__ = ["Entry", "Plan", "RejectedArray", "to_array", "from_array", "record_from", "arrays_nbytes"]

_NUMPY_STYPE = "numpy.ndarray"  # Flower's own serialization (np.save, no pickle)
_RAW_STYPE = "sporax.raw"  # raw little-endian bytes, for dtypes np.save cannot describe (bfloat16)
_HEADER_SLACK = 4096  # an .npy header is at most a few hundred bytes for any shape


@dataclasses.dataclass(frozen=True)
class Entry:
    """One parameter's federated role."""

    name: str
    shape: tuple
    dtype: np.dtype
    push: bool
    pull: bool
    requires_aggr: bool
    aggr: bool  # averaged by the server: requires_aggr and a floating dtype

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * self.dtype.itemsize


class RejectedArray(ValueError):
    """A client's array that does not fit the plan (the message says which and why)."""


def _is_float(dtype: np.dtype) -> bool:
    if np.issubdtype(dtype, np.floating):
        return True
    try:  # bfloat16, float8 variants
        ml_dtypes.finfo(dtype)
    except (TypeError, ValueError):
        return False
    return True


def _all_finite(value: np.ndarray) -> bool:
    if value.size == 0:
        return True
    if not np.issubdtype(value.dtype, np.floating):
        value = value.astype(np.float32)  # ml_dtypes floats all fit in float32
    # min and max propagate NaN and reach +-Inf, without the temporary of isfinite(value).all()
    return bool(np.isfinite(value.min()) and np.isfinite(value.max()))


class Plan:
    """The federated plan of a Cell: one ``Entry`` per parameter, in the Cell's order."""

    def __init__(self, net) -> None:
        from sporax.nn.cell import Cell

        if not isinstance(net, Cell):
            raise TypeError(f"sporax.fl needs a Cell (a fresh one from 'make_net()'), but got {type(net).__name__}.")
        entries = {}
        for _, p in net.parameters_and_names():
            dtype = np.dtype(p.dtype.np_dtype)
            entries[p.name] = Entry(
                p.name,
                tuple(p.shape),
                dtype,
                bool(p.push_weight_to_server),
                bool(p.pull_weight_from_server),
                bool(p.requires_aggr),
                bool(p.requires_aggr) and _is_float(dtype),
            )
        self.entries: dict[str, Entry] = entries
        self.pushed = [e.name for e in entries.values() if e.push]
        self.pulled = [e.name for e in entries.values() if e.pull]
        self.aggregated = [e.name for e in entries.values() if e.push and e.aggr]
        # pushed but kept per client on the server: requires_aggr=False, or an int/bool dtype
        self.stored = [e.name for e in entries.values() if e.push and not e.aggr]
        # what a client keeps itself between rounds: all the server may not send back
        self.local = [e.name for e in entries.values() if not e.pull or (e.push and not e.aggr)]
        self.push_nbytes = sum(entries[n].nbytes for n in self.pushed)

    def signature(self) -> tuple:
        return tuple((e.name, e.shape, e.dtype.str, e.push, e.pull, e.aggr) for e in self.entries.values())

    def check(self, name: str, array: Array, *, direction: str) -> np.ndarray:
        """Decode ``array`` sent for ``name`` after checking it fits; RejectedArray otherwise.

        ``direction`` is "push" (a client's reply, also checked for NaN/Inf) or "pull" (the
        server's message to a client, whose values the server checked when they came in)."""
        entry = self.entries.get(name)
        if entry is None:
            raise RejectedArray(f"parameter {name!r} is not a parameter of the network")
        if direction == "push" and not entry.push:
            raise RejectedArray(f"parameter {name!r} is not pushed to the server (push_weight_to_server=False)")
        if direction == "pull" and not entry.pull:
            raise RejectedArray(f"parameter {name!r} is not pulled from the server (pull_weight_from_server=False)")
        if not isinstance(array, Array):
            raise RejectedArray(f"parameter {name!r} is a {type(array).__name__}, expected a flwr Array")
        if tuple(array.shape) != entry.shape:
            raise RejectedArray(f"parameter {name!r} has shape {tuple(array.shape)}, expected {entry.shape}")
        if array.dtype != _dtype_name(entry.dtype):
            raise RejectedArray(f"parameter {name!r} has dtype {array.dtype}, expected {_dtype_name(entry.dtype)}")
        if len(array.data) > entry.nbytes + _HEADER_SLACK:
            raise RejectedArray(
                f"parameter {name!r} carries {len(array.data)} bytes, more than its {entry.nbytes} bytes of data"
            )
        try:
            value = from_array(array)
        except Exception as e:  # a damaged payload: np.load / frombuffer failure
            raise RejectedArray(f"parameter {name!r} could not be decoded: {e}") from None
        if value.shape != entry.shape or value.dtype != entry.dtype:
            raise RejectedArray(
                f"parameter {name!r} decodes to {value.dtype}{list(value.shape)}, expected {entry.dtype}{list(entry.shape)}"
            )
        if direction == "push" and _is_float(entry.dtype) and not _all_finite(value):
            raise RejectedArray(f"parameter {name!r} contains NaN or Inf values")
        return value


def _dtype_name(dtype: np.dtype) -> str:
    return str(dtype)


def to_array(value: np.ndarray) -> Array:
    """A Flower ``Array`` for ``value``: Flower's numpy serialization (an ``.npy`` image, written
    with one copy of the data), raw bytes for bfloat16 and the other ml_dtypes."""
    value = np.asarray(value)
    if not value.flags.c_contiguous:  # (np.ascontiguousarray would turn a 0-d array into 1-d)
        value = value.copy(order="C")
    shape = tuple(int(d) for d in value.shape)
    if value.dtype.kind == "V" or value.dtype.type.__module__.startswith("ml_dtypes"):
        data = value.astype(value.dtype.newbyteorder("<"), copy=False).tobytes()
        return Array(dtype=str(value.dtype), shape=shape, stype=_RAW_STYPE, data=data)
    if value.dtype.hasobject:
        raise TypeError(f"sporax.fl cannot send an array of dtype {value.dtype}")
    header = io.BytesIO()
    np.lib.format.write_array_header_1_0(header, np.lib.format.header_data_from_array_1_0(value))
    data = b"".join((header.getvalue(), memoryview(value.reshape(-1)).cast("B")))
    return Array(dtype=str(value.dtype), shape=shape, stype=_NUMPY_STYPE, data=data)


def from_array(array: Array) -> np.ndarray:
    """The numpy array in ``array``: a read-only view of its bytes, no copy (never unpickles)."""
    if array.stype == _RAW_STYPE:
        dtype = np.dtype(getattr(ml_dtypes, array.dtype))
        return np.frombuffer(array.data, dtype=dtype).reshape(array.shape)
    if array.stype != _NUMPY_STYPE:
        raise ValueError(f"unsupported serialization {array.stype!r}")
    stream = io.BytesIO(array.data)
    version = np.lib.format.read_magic(stream)
    if version == (1, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_1_0(stream)
    elif version == (2, 0):
        shape, fortran, dtype = np.lib.format.read_array_header_2_0(stream)
    else:
        return np.load(io.BytesIO(array.data), allow_pickle=False)
    if dtype.hasobject:
        raise ValueError("object arrays are refused")
    count = int(np.prod(shape, dtype=np.int64))
    if len(array.data) - stream.tell() != count * dtype.itemsize:
        raise ValueError(f"{len(array.data) - stream.tell()} bytes of data for {count} elements of {dtype}")
    flat = np.frombuffer(array.data, dtype=dtype, count=count, offset=stream.tell())
    return flat.reshape(shape[::-1]).T if fortran else flat.reshape(shape)


def record_from(values: dict[str, np.ndarray]) -> ArrayRecord:
    """An ``ArrayRecord`` with the names as keys, in the given order."""
    record = ArrayRecord()
    for name, value in values.items():
        record[name] = to_array(value)
    return record


def arrays_nbytes(record: ArrayRecord) -> int:
    """Payload bytes of a record (what goes over the wire, less a few bytes of metadata)."""
    return sum(len(a.data) for a in record.values())
