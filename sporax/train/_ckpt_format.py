"""MindSpore ``.ckpt`` wire codec: a streaming writer and a memory-mapped, validating reader.

The layout below was written from inspecting files that MindSpore 2.10 produced (see
``tests/train/fixtures/make_fixtures.py``); it is protobuf wire format, and this module
encodes/decodes it by hand, so no ``protobuf`` dependency is needed and no field is ever
copied out of the file before its length has been checked.

File = a concatenation of top-level messages, each (field numbers / wire types)::

    1: entry        (len)   repeated; MindSpore writes exactly one per message
        1: name     (len)   UTF-8 parameter name
        2: tensor   (len)
            1: dims         (varint, repeated; packed form also accepted) int64
            2: dtype name   (len)   'Float32', 'BFloat16', ... or 'str'
            3: content      (len)   raw little-endian bytes, C order
        3: map tensor (len)  MindSpore MapParameter; skipped (listed in ``skipped``)
        15: slice layout (len)  sporax only: UTF-8 JSON ``{"full_shape", "offsets", ...}``
                                of a sharded slice; other readers ignore unknown fields.

A CRC-protected file written by sporax starts with a marker, top-level field 15 (len) holding
``b"sporax:crc32"``, which other readers (MindSpore's protobuf parser) skip as an unknown
field; a marked file whose trailer is gone (cut at a record boundary) is refused.

Since concatenated protobuf messages merge, the whole file parses as one message whose
repeated ``entry`` lists every record in order. A tensor larger than ``SPLIT_BYTES`` is
written as consecutive entries with the same name and dims, each holding the next piece of
the content. With a CRC the file ends with ``b"crc_num"`` + the zlib CRC32 of every byte
before it, as a 10-byte big-endian integer (17 bytes in all).
"""

from __future__ import annotations

import json
import math
import mmap
import os
import zlib
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

import numpy as np

from sporax.common import dtype as mstype

__all__ = [
    "SPLIT_BYTES",
    "STR_TYPE",
    "CkptWriter",
    "CkptReader",
    "TensorRecord",
    "np_dtype_of",
    "read_exact_into",
    "check_window",
    "mmap_window",
    "parse_json",
    "check_dims",
    "check_layout",
    "check_memory",
    "MAX_DIMS",
]

#: Tensors with more content bytes than this are split over consecutive same-name entries
#: (MindSpore's threshold: 512 MiB). Tests lower it.
SPLIT_BYTES = 512 * 1024 * 1024
#: The dtype name MindSpore uses for string values saved through ``append_dict``.
STR_TYPE = "str"
_CRC_MARK = b"crc_num"
_CRC_LEN = 10
_TRAILER = len(_CRC_MARK) + _CRC_LEN
_LAYOUT_FIELD = 15
_MARK_FIELD = 15  # top level: the CRC marker (inside an entry, 15 is the slice layout)
_MARK_TEXT = b"sporax:crc32"
_COPY_CHUNK = 64 * 1024 * 1024
#: numpy's limit on the number of dimensions.
MAX_DIMS = 64
_MAX_BYTES = (1 << 63) - 1
_MEMORY_CHECK_BYTES = 256 * 1024 * 1024  # reads this large first check the memory available


def _reject_constant(name: str):
    raise ValueError(f"{name} is not a JSON number")


def _int_or_bad(text: str):
    # "-0" and other negative literals can never be a size or offset: keep them out of ints
    return float(text) if text.startswith("-") else int(text)


def _unique_pairs(pairs: list) -> dict:
    out = dict(pairs)
    if len(out) != len(pairs):
        seen = set()
        dup = next(k for k, _ in pairs if k in seen or seen.add(k))
        raise ValueError(f"duplicate key {dup!r}")
    return out


def parse_json(text) -> object:
    """Strict JSON: no NaN/Infinity, no duplicate keys, no lone surrogates, negative integers
    parsed as floats (so no size can be negative), and ValueError (never RecursionError or
    OverflowError) for anything else wrong, e.g. nesting too deep."""
    try:
        if isinstance(text, (bytes, bytearray, memoryview)):
            text = bytes(text).decode("utf-8")
        value = json.loads(
            text, parse_constant=_reject_constant, parse_int=_int_or_bad, object_pairs_hook=_unique_pairs
        )
        json.dumps(value, ensure_ascii=False).encode("utf-8")  # lone surrogates (\ud800) fail here
    except RecursionError:
        raise ValueError("JSON nested too deeply") from None
    except (ValueError, OverflowError, TypeError) as e:  # JSONDecodeError, UnicodeError are ValueErrors
        raise ValueError(f"invalid JSON ({e})") from None
    return value


def _is_int(x) -> bool:
    return type(x) is int


def check_dims(shape, itemsize: int) -> str | None:
    """Why ``shape`` cannot be an array of ``itemsize``-byte elements, or None if it can."""
    if len(shape) > MAX_DIMS:
        return f"{len(shape)} dimensions (at most {MAX_DIMS})"
    if not all(_is_int(d) for d in shape):
        return f"shape {list(shape)!r} that is not a list of integers"
    if any(d < 0 for d in shape):
        return f"a negative dimension in shape {tuple(shape)}"
    if math.prod(max(d, 1) for d in shape) * max(itemsize, 1) > _MAX_BYTES:
        return f"shape {tuple(shape)}, too large for any array"
    return None


def check_layout(layout, shape: tuple) -> str | None:
    """Why a slice ``layout`` record does not describe a slice of ``shape``, or None."""
    if not isinstance(layout, dict):
        return "the slice layout is not a JSON object"
    full, offsets = layout.get("full_shape"), layout.get("offsets")
    if not isinstance(full, list) or not all(_is_int(d) and d >= 0 for d in full) or len(full) > MAX_DIMS:
        return f"the slice layout's full_shape {full!r} is not a list of non-negative integers"
    if not isinstance(offsets, list) or not all(_is_int(o) and o >= 0 for o in offsets):
        return f"the slice layout's offsets {offsets!r} are not a list of non-negative integers"
    if not len(full) == len(offsets) == len(shape) or any(o + n > d for o, n, d in zip(offsets, shape, full)):
        return f"the slice of shape {tuple(shape)} at offsets {tuple(offsets)} does not fit full_shape {tuple(full)}"
    return None


def _available_memory() -> int | None:
    """Bytes this process could still allocate: MemAvailable + SwapFree, capped by a cgroup limit."""
    try:
        info = {}
        with open("/proc/meminfo") as f:
            for line in f:
                key, _, rest = line.partition(":")
                info[key] = int(rest.split()[0]) * 1024
        avail = info["MemAvailable"] + info.get("SwapFree", 0)
    except (OSError, KeyError, ValueError, IndexError):
        return None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit != "max":
            with open("/sys/fs/cgroup/memory.current") as f:
                avail = min(avail, int(limit) - int(f.read().strip()))
    except (OSError, ValueError):
        pass
    return avail


def check_memory(path: str, name: str, nbytes: int) -> None:
    """MemoryError naming the file, the parameter and the bytes, before allocating ``nbytes``
    that the machine does not have (a huge but well-formed, e.g. sparse, file)."""
    if nbytes < _MEMORY_CHECK_BYTES:
        return
    avail = _available_memory()
    if avail is not None and nbytes > avail:
        raise MemoryError(
            f"Checkpoint file '{path}': parameter '{name}' needs {nbytes} bytes ({nbytes / 2**30:.1f} GiB) "
            f"of memory to load, but only {max(avail, 0)} bytes are available."
        )


def np_dtype_of(dtype_name: str, path: str = "<memory>", name: str = "?") -> np.dtype:
    """numpy dtype for a checkpoint dtype name; ValueError naming file and parameter if unknown."""
    try:
        return mstype.from_name(dtype_name).np_dtype
    except ValueError:
        raise ValueError(
            f"Checkpoint file '{path}': parameter '{name}' has unknown dtype name {dtype_name!r}."
        ) from None


# ----------------------------------------------------------------------------- encoding
def _varint(n: int) -> bytes:
    if n < 0:
        n += 1 << 64  # int64 two's complement, 10 bytes
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


def _len_field(field_no: int, payload_len: int) -> bytes:
    return _varint((field_no << 3) | 2) + _varint(payload_len)


def _entry_header(
    name: bytes, shape: tuple[int, ...], dtype_name: bytes, content_len: int, layout: bytes | None
) -> tuple[bytes, bytes]:
    """The bytes of one top-level message before and after its ``content_len`` content bytes."""
    dims = b"".join(b"\x08" + _varint(d) for d in shape)
    tensor_head = dims + _len_field(2, len(dtype_name)) + dtype_name + _len_field(3, content_len)
    tensor_len = len(tensor_head) + content_len
    extra = b"" if layout is None else _len_field(_LAYOUT_FIELD, len(layout)) + layout
    value_head = _len_field(1, len(name)) + name + _len_field(2, tensor_len)
    value_len = len(value_head) + tensor_len + len(extra)
    return _len_field(1, value_len) + value_head + tensor_head, extra


def _as_bytes(buf) -> memoryview:
    """A flat byte view of an array or bytes-like object, without copying when possible."""
    if isinstance(buf, np.ndarray):
        arr = np.ascontiguousarray(buf)
        if arr.dtype.byteorder == ">":
            arr = arr.astype(arr.dtype.newbyteorder("<"))
        return memoryview(arr.reshape(-1).view(np.uint8))
    return memoryview(buf).cast("B")


#: The first bytes of a CRC-protected file that sporax wrote (an unknown field to MindSpore).
CRC_MARKER = _len_field(_MARK_FIELD, len(_MARK_TEXT)) + _MARK_TEXT


class CkptWriter:
    """Streams entries to an open binary file, splitting large tensors, tracking the CRC.

    Only the current chunk is ever held: ``write_chunks`` takes an iterable of buffers, so a
    lazy parameter can be produced piece by piece.
    """

    def __init__(self, f: BinaryIO, crc: bool = False) -> None:
        self._f = f
        self._crc = 0 if crc else None
        if crc:
            self._put(CRC_MARKER)

    def _put(self, data) -> None:
        self._f.write(data)
        if self._crc is not None:
            self._crc = zlib.crc32(data, self._crc)

    def write_array(
        self, name: str, array: np.ndarray, dtype_name: str | None = None, layout: dict | None = None
    ) -> None:
        """Write one array (split over ``SPLIT_BYTES``). ``dtype_name`` defaults from its dtype."""
        dtype_name = dtype_name or mstype.from_numpy(array.dtype).name
        self.write_chunks(name, tuple(array.shape), dtype_name, array.nbytes, [array], layout)

    def write_chunks(
        self,
        name: str,
        shape: tuple[int, ...],
        dtype_name: str,
        nbytes: int,
        chunks: Iterable,
        layout: dict | None = None,
    ) -> None:
        """Write ``nbytes`` of content, taken in order from the buffers in ``chunks``."""
        itemsize = 4 if dtype_name == STR_TYPE else np_dtype_of(dtype_name).itemsize
        step = max(itemsize, SPLIT_BYTES - SPLIT_BYTES % itemsize)
        name_b, type_b = name.encode("utf-8"), dtype_name.encode("utf-8")
        layout_b = None if layout is None else json.dumps(layout, sort_keys=True).encode()
        pieces: Iterator = iter(chunks)
        current = memoryview(b"")
        remaining = nbytes
        while True:
            length = min(step, remaining)
            head, extra = _entry_header(name_b, shape, type_b, length, layout_b)
            self._put(head)
            need = length
            while need:
                if not len(current):
                    try:
                        current = _as_bytes(next(pieces))
                    except StopIteration:
                        raise ValueError(f"Parameter '{name}': chunks ended {need} bytes short.") from None
                    continue
                take = min(need, len(current))
                self._put(current[:take])
                current, need = current[take:], need - take
            self._put(extra)
            remaining -= length
            if remaining == 0:
                break
        if len(current) or any(len(_as_bytes(rest)) for rest in pieces):
            raise ValueError(f"Parameter '{name}': chunks hold more than the {nbytes} declared bytes.")

    def write_string(self, name: str, value: str) -> None:
        """A string value, stored the way MindSpore stores ``append_dict`` strings (UTF-32-LE)."""
        data = np.array(value).tobytes()
        self.write_chunks(name, (0,), STR_TYPE, len(data), [data])

    def finish(self) -> None:
        """Append the CRC trailer when the writer was created with ``crc=True``."""
        if self._crc is not None:
            self._f.write(_CRC_MARK + self._crc.to_bytes(_CRC_LEN, "big"))


# ----------------------------------------------------------------------------- decoding
@dataclass
class TensorRecord:
    """One parameter of a checkpoint: where its (possibly split) content lies in the file."""

    name: str
    shape: tuple[int, ...]
    dtype_name: str
    segments: list[tuple[int, int]] = field(default_factory=list)  # (file offset, length)
    layout: dict | None = None

    @property
    def nbytes(self) -> int:
        return sum(n for _, n in self.segments)


class _Malformed(Exception):
    pass


def _read_varint(buf, pos: int, end: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= end or shift > 63:
            raise _Malformed(f"truncated or overlong varint at byte {pos}")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if b < 0x80:
            return result, pos
        shift += 7


def _fields(buf, pos: int, end: int) -> Iterator[tuple[int, int, int, int]]:
    """Yield (field number, wire type, value or offset, length) of one message's fields,
    checking every length against the enclosing message before anything uses it."""
    while pos < end:
        key, pos = _read_varint(buf, pos, end)
        field_no, wire = key >> 3, key & 7
        if field_no == 0:
            raise _Malformed(f"field number 0 at byte {pos}")
        if wire == 0:
            value, pos = _read_varint(buf, pos, end)
            yield field_no, 0, value, 0
        elif wire == 2:
            length, pos = _read_varint(buf, pos, end)
            if length > end - pos:
                raise _Malformed(f"length {length} at byte {pos} runs past its message end {end}")
            yield field_no, 2, pos, length
            pos += length
        elif wire in (1, 5):
            size = 8 if wire == 1 else 4
            if size > end - pos:
                raise _Malformed(f"fixed field runs past its message end at byte {pos}")
            pos += size
        else:
            raise _Malformed(f"unsupported wire type {wire} at byte {pos}")


def _int64(v: int) -> int:
    return v - (1 << 64) if v >= 1 << 63 else v


def _parse_tensor(buf, pos: int, end: int) -> tuple[list[int], str | None, int, int]:
    dims: list[int] = []
    dtype_name, c_off, c_len = None, pos, 0
    for fno, wire, a, n in _fields(buf, pos, end):
        if fno == 1 and wire == 0:
            dims.append(_int64(a))
        elif fno == 1 and wire == 2:  # packed dims
            p = a
            while p < a + n:
                v, p = _read_varint(buf, p, a + n)
                dims.append(_int64(v))
        elif fno == 2 and wire == 2:
            dtype_name = _utf8(buf, a, n)
        elif fno == 3 and wire == 2:
            c_off, c_len = a, n
    return dims, dtype_name, c_off, c_len


def _utf8(buf, off: int, n: int) -> str:
    try:
        return bytes(buf[off : off + n]).decode("utf-8")
    except UnicodeDecodeError:
        raise _Malformed(f"invalid UTF-8 text at byte {off}") from None


def _check_size(path: str, rec: TensorRecord) -> None:
    """Declared shape vs stored bytes, in exact integers, before anything is allocated."""
    if rec.dtype_name == STR_TYPE:
        if rec.nbytes % 4:
            raise ValueError(
                f"Checkpoint file '{path}': string '{rec.name}' has {rec.nbytes} bytes, not a multiple of 4."
            )
        return
    itemsize = np_dtype_of(rec.dtype_name, path, rec.name).itemsize
    problem = check_dims(rec.shape, itemsize)
    if problem is not None:
        raise ValueError(f"Checkpoint file '{path}': parameter '{rec.name}' has {problem}.")
    expected = math.prod(rec.shape) * itemsize
    if expected != rec.nbytes:
        if rec.shape == (0,) and rec.nbytes == itemsize:  # MindSpore writes dims [0] for some scalars
            rec.shape = ()
        else:
            raise ValueError(
            f"Checkpoint file '{path}': parameter '{rec.name}' declares shape {rec.shape} and dtype "
            f"{rec.dtype_name} ({expected} bytes) but stores {rec.nbytes} bytes; the file is "
            "truncated or corrupted."
            )
    if rec.layout is not None and (problem := check_layout(rec.layout, rec.shape)) is not None:
        raise ValueError(f"Checkpoint file '{path}': parameter '{rec.name}': {problem}.")


class CkptReader:
    """Parses a ``.ckpt`` file's entries through a read-only memory map.

    Only the small headers are touched while parsing; tensor bytes stay on disk until
    ``read``/``view``/``read_window`` asks for them. Any inconsistency raises ValueError
    naming the file and the problem. A CRC trailer, when present, is verified unless
    ``verify_crc=False``; ``require_crc`` makes a missing trailer an error. A file that sporax
    wrote with a CRC (marked at its start) is refused without its trailer in any case.
    """

    def __init__(self, path: str, verify_crc: bool = True, require_crc: bool = False) -> None:
        self.path = os.fspath(path)
        self.records: dict[str, TensorRecord] = {}
        self.skipped: list[str] = []
        self.has_crc = False
        self.crc_marked = False
        self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        try:
            size = os.fstat(self._file.fileno()).st_size
            if size == 0:
                raise ValueError(f"Checkpoint file '{self.path}' is empty; it is not a checkpoint.")
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
            end = size
            if size >= _TRAILER and self._mm[size - _TRAILER : size - _CRC_LEN] == _CRC_MARK:
                self.has_crc = True
                end = size - _TRAILER
                if verify_crc:
                    self._verify_crc(end, int.from_bytes(self._mm[end + len(_CRC_MARK) : size], "big"))
            self._parse(end)
            if not self.has_crc and (self.crc_marked or require_crc):
                raise ValueError(
                    f"Checkpoint file '{self.path}' has no CRC32 trailer"
                    + (
                        ", but it was written with one: the file is truncated."
                        if self.crc_marked
                        else " to check (crc_check=True)."
                    )
                )
        except BaseException:
            self.close()
            raise

    # -- parsing
    def _fail(self, what: str) -> ValueError:
        return ValueError(
            f"Checkpoint file '{self.path}' is not a valid MindSpore checkpoint "
            f"(truncated, corrupted, or another kind of file): {what}."
        )

    def _verify_crc(self, end: int, stored: int) -> None:
        crc, buf = 0, bytearray(min(_COPY_CHUNK, end))
        self._file.seek(0)
        done = 0
        while done < end:
            n = self._file.readinto(memoryview(buf)[: min(len(buf), end - done)])
            if not n:
                raise self._fail("file shrank while being read")
            crc = zlib.crc32(memoryview(buf)[:n], crc)
            done += n
        if crc != stored:
            raise ValueError(
                f"Checkpoint file '{self.path}' failed its CRC32 check (stored "
                f"{stored:#010x}, computed {crc:#010x}); the file is damaged."
            )

    def _parse(self, end: int) -> None:
        mm = self._mm
        if mm[0] not in (0x0A, (_MARK_FIELD << 3) | 2):
            raise self._fail(f"first byte is {mm[0]:#04x}, expected an entry (0x0a)")
        prev: TensorRecord | None = None
        try:
            for fno, wire, off, n in _fields(mm, 0, end):
                if fno == _MARK_FIELD and wire == 2 and off == 2 and bytes(mm[off : off + n]) == _MARK_TEXT:
                    self.crc_marked = True
                if fno != 1 or wire != 2:
                    continue
                name, t_off, t_len, has_map, layout = None, -1, 0, False, None
                for vf, vw, a, m in _fields(mm, off, off + n):
                    if vf == 1 and vw == 2:
                        name = _utf8(mm, a, m)
                    elif vf == 2 and vw == 2:
                        t_off, t_len = a, m
                    elif vf == 3 and vw == 2:
                        has_map = True
                    elif vf == _LAYOUT_FIELD and vw == 2:
                        layout = self._layout(mm, a, m)
                if name is None:
                    raise _Malformed(f"entry at byte {off} has no name")
                if t_off < 0:
                    if has_map:
                        self.skipped.append(name)
                        prev = None
                        continue
                    raise _Malformed(f"entry '{name}' at byte {off} has no tensor")
                dims, dtype_name, c_off, c_len = _parse_tensor(mm, t_off, t_off + t_len)
                if dtype_name is None:
                    raise _Malformed(f"tensor '{name}' has no dtype name")
                shape = tuple(dims)
                if prev is not None and prev.name == name:
                    if (prev.shape, prev.dtype_name) != (shape, dtype_name):
                        raise _Malformed(f"split entries of '{name}' disagree on shape or dtype")
                    prev.segments.append((c_off, c_len))
                    continue
                if prev is not None:
                    _check_size(self.path, prev)
                prev = TensorRecord(name, shape, dtype_name, [(c_off, c_len)], layout)
                self.records.pop(name, None)  # a later record replaces an earlier one
                self.records[name] = prev
        except _Malformed as e:
            raise self._fail(str(e)) from None
        if prev is not None:
            _check_size(self.path, prev)
        if not self.records and not self.skipped:
            raise self._fail("no entries")
        for name, rec in self.records.items():
            if rec.dtype_name == STR_TYPE:
                self.read(name)  # strings are small: decode now, so a bad one fails at open

    def _layout(self, mm, a: int, m: int) -> dict:
        try:
            layout = parse_json(_utf8(mm, a, m))
        except ValueError as e:
            raise _Malformed(f"slice layout at byte {a}: {e}") from None
        if not isinstance(layout, dict):
            raise _Malformed(f"slice layout at byte {a} is not a JSON object")
        return layout

    # -- reading
    def np_dtype(self, rec: TensorRecord) -> np.dtype:
        return np_dtype_of(rec.dtype_name, self.path, rec.name)

    def read(self, name: str) -> np.ndarray | str:
        """A fresh array (owned, not backed by the file) for parameter ``name``.

        Bytes go straight from the page cache into the new array (``readinto``), so memory
        grows by the array's size only, and the file can be replaced afterwards.
        """
        rec = self.records[name]
        if rec.dtype_name == STR_TYPE:
            data = b"".join(bytes(self._mm[o : o + n]) for o, n in rec.segments)
            try:  # UTF-32-LE as numpy stores it (trailing NULs dropped as numpy does)
                return data.decode("utf-32-le", "surrogatepass").rstrip("\0")
            except UnicodeDecodeError as e:
                raise ValueError(f"Checkpoint file '{self.path}': string '{name}' is not valid UTF-32 ({e}).") from None
        check_memory(self.path, name, rec.nbytes)
        out = np.empty(rec.shape, self.np_dtype(rec))
        flat = memoryview(out.reshape(-1).view(np.uint8))
        pos = 0
        for off, n in rec.segments:
            read_exact_into(self._file, off, flat[pos : pos + n], self.path)
            pos += n
        return out

    def view(self, name: str) -> np.ndarray:
        """A zero-copy, read-only view into the memory map (only for unsplit tensors).

        Valid while this reader is open; use ``read`` for data that outlives it.
        """
        rec = self.records[name]
        if len(rec.segments) != 1 or rec.dtype_name == STR_TYPE:
            return np.asarray(self.read(name))
        off, n = rec.segments[0]
        return np.frombuffer(self._mm, self.np_dtype(rec), n // self.np_dtype(rec).itemsize, off).reshape(rec.shape)

    def read_window(self, name: str, offsets: tuple[int, ...], sizes: tuple[int, ...]) -> np.ndarray:
        """The rectangular window ``[offsets, offsets + sizes)`` of parameter ``name``, copied
        out of the memory map; only the pages under the window are touched."""
        rec = self.records[name]
        if len(rec.segments) != 1:  # split tensors are rare (> 512 MiB): assemble, then cut
            check_window(self.path, rec, offsets, sizes)
            return np.array(self.read(name)[tuple(slice(o, o + s) for o, s in zip(offsets, sizes))])
        return mmap_window(self._mm, self.path, rec, self.np_dtype(rec), offsets, sizes)

    def close(self) -> None:
        mm = getattr(self, "_mm", None)
        if mm is not None:
            try:
                mm.close()
            except BufferError:  # views from view() still alive; the map closes with them
                pass
        self._file.close()

    def __enter__(self) -> CkptReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def check_window(path: str, rec: TensorRecord, offsets, sizes) -> None:
    """ValueError unless ``[offsets, offsets + sizes)`` lies inside ``rec``'s shape."""
    if (
        len(offsets) != len(rec.shape)
        or len(sizes) != len(rec.shape)
        or any(o < 0 or s < 0 or o + s > d for o, s, d in zip(offsets, sizes, rec.shape))
    ):
        raise ValueError(
            f"Checkpoint file '{path}': window offsets {tuple(offsets)} sizes "
            f"{tuple(sizes)} do not fit parameter '{rec.name}' of shape {rec.shape}."
        )


def mmap_window(mm: mmap.mmap | None, path: str, rec: TensorRecord, dt: np.dtype, offsets, sizes) -> np.ndarray:
    """Copy a window of an unsplit record out of ``mm``, then drop the mapping of its pages
    (they stay in the page cache) so the read leaves nothing resident but the copy."""
    check_window(path, rec, offsets, sizes)
    check_memory(path, rec.name, math.prod(sizes) * dt.itemsize)
    off, n = rec.segments[0]
    if n == 0 or mm is None:
        return np.empty(tuple(sizes), dt)
    full = np.frombuffer(mm, dt, n // dt.itemsize, off).reshape(rec.shape)
    out = np.array(full[tuple(slice(o, o + s) for o, s in zip(offsets, sizes))])
    del full
    start = off - off % mmap.PAGESIZE
    mm.madvise(mmap.MADV_DONTNEED, start, min(len(mm), off + n) - start)
    return out


def read_exact_into(f, offset: int, dest: memoryview, path: str) -> None:
    """Fill ``dest`` from ``f`` at ``offset`` (``readinto`` loop: reads may come back short)."""
    f.seek(offset)
    done, total = 0, len(dest)
    while done < total:
        n = f.readinto(dest[done:])
        if not n:
            raise ValueError(f"Checkpoint file '{path}' ended early (truncated while reading).")
        done += n
