"""safetensors files, streamed: one tensor in memory at a time when writing, ``readinto``/mmap
when reading.

The format (8-byte little-endian header length, a JSON header of
``{name: {"dtype", "shape", "data_offsets"}, "__metadata__": {str: str}}`` padded with spaces
to a multiple of 8, then the raw bytes) is the one the ``safetensors`` package reads and
writes; tests check both directions against the package. The package itself is not on the
hot path because its writer needs every tensor in memory at once (no bounded-memory saving
of lazy parameters) and its numpy reader keeps the mapped file resident on top of the copies
(about 2x the file size at peak); ``benchmarks/bench_ckpt.py`` prints both.

sporax keeps a sharded slice's layout in metadata key ``"sporax.layout/<name>"`` (JSON) and a
string value in ``"sporax.str/<name>"``.

Reading is as strict as the ``safetensors`` package (whatever it refuses, this reader refuses,
with ValueError naming the file): header length within the file, a JSON object without
duplicate keys, NaN or lone surrogates; integral non-negative shapes and offsets; offsets in
order, contiguous and exactly covering the data; byte lengths matching shape and dtype;
``__metadata__`` a str -> str map.

CRCs (written with ``crc_check=True``, verified when loading with ``crc_check=True``):

* ``"crc_num"``, MindSpore's: CRC32 over the sorted names, each followed by ``bytes(array)``;
  for a 0-d integer array that is ``value`` zero bytes (``bytes(np.array(3))`` is
  ``b"\\0\\0\\0"``), and sporax follows that rule so that MindSpore and sporax read each
  other's files (a sporax file written before this rule, hashing the raw bytes, still verifies).
* ``"sporax.crc"``: CRC32 over the canonical JSON of the whole header except the two CRC
  values (names, dtypes, shapes, offsets, layouts, strings), then every data byte. It is
  checked instead of ``crc_num`` when present.
"""

from __future__ import annotations

import json
import math
import mmap
import os
import struct
import zlib
from collections.abc import Callable, Iterable

import numpy as np

from sporax.train._ckpt_format import (
    TensorRecord,
    _as_bytes,
    check_dims,
    check_layout,
    check_memory,
    mmap_window,
    np_dtype_of,
    parse_json,
    read_exact_into,
)

__all__ = ["SafetensorsReader", "write_safetensors", "TO_ST", "FROM_ST"]

TO_ST = {
    "Bool": "BOOL",
    "Int8": "I8",
    "UInt8": "U8",
    "Int16": "I16",
    "UInt16": "U16",
    "Int32": "I32",
    "UInt32": "U32",
    "Int64": "I64",
    "UInt64": "U64",
    "Float16": "F16",
    "BFloat16": "BF16",
    "Float32": "F32",
    "Float64": "F64",
    "Complex64": "C64",
}
FROM_ST = {v: k for k, v in TO_ST.items()}
LAYOUT_KEY = "sporax.layout/"
STR_KEY = "sporax.str/"
_MAX_HEADER = 100_000_000  # the safetensors package's limit
_CRC_WIDTH = 10  # digits of the largest CRC32; the placeholder is rewritten in place
MS_CRC_KEY = "crc_num"
CRC_KEY = "sporax.crc"
_INT_KINDS = "iu"
_CRC_BLOCK = 16 * 1024 * 1024


def _gf2_apply(mat: list, vec: int) -> int:
    out, i = 0, 0
    while vec:
        if vec & 1:
            out ^= mat[i]
        vec >>= 1
        i += 1
    return out


def _crc32_zeros(crc: int, n: int, block: int = _CRC_BLOCK) -> int:
    """``zlib.crc32(bytes(n), crc)``, in O(log n) steps beyond ``block`` bytes: the CRC
    register's update over one zero byte is a linear map over GF(2), raised to the n-th power
    by squaring."""
    if n <= block:
        return zlib.crc32(bytes(max(n, 0)), crc)
    op = [0xEDB88320] + [1 << i for i in range(31)]  # one zero bit (reflected polynomial)
    for _ in range(3):  # -> one zero byte
        op = [_gf2_apply(op, col) for col in op]
    reg = crc ^ 0xFFFFFFFF  # zlib's pre/post conditioning
    while n:
        if n & 1:
            reg = _gf2_apply(op, reg)
        n >>= 1
        if n:
            op = [_gf2_apply(op, col) for col in op]
    return reg ^ 0xFFFFFFFF


def _ms_scalar_zeros(dtype_name: str, shape: tuple, data) -> int | None:
    """For a 0-d integer tensor, the number of zero bytes MindSpore's ``bytes(array)`` hashes
    (its value); None when ``bytes(array)`` is the raw bytes (or fails, for a negative value)."""
    if shape != () or dtype_name == "Bool":
        return None
    dt = np_dtype_of(dtype_name)
    if dt.kind not in _INT_KINDS:
        return None
    value = int(np.frombuffer(bytes(data), dt, 1)[0])
    return value if value >= 0 else None


def _canonical_header(header: dict) -> bytes:
    """What ``"sporax.crc"`` covers of the header: all of it but the two CRC values."""
    meta = {k: v for k, v in (header.get("__metadata__") or {}).items() if k not in (CRC_KEY, MS_CRC_KEY)}
    body = {k: v for k, v in header.items() if k != "__metadata__"}
    body["__metadata__"] = meta
    return json.dumps(body, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode()


def write_safetensors(
    f,
    items: list[tuple[str, tuple[int, ...], str, int, Callable[[], Iterable]]],
    layouts: dict[str, dict],
    strings: dict[str, str],
    crc: bool = False,
) -> None:
    """Write ``items`` = ``(name, shape, dtype_name, nbytes, chunks)`` to the binary file ``f``.

    ``chunks()`` is called once per tensor, after the previous one was written, and must yield
    exactly ``nbytes`` bytes in buffers. Tensors are laid out in name order (so MindSpore's
    CRC, which is defined over sorted names, can be computed while streaming).
    """
    items = sorted(items, key=lambda it: it[0])
    header: dict = {}
    offset = 0
    for name, shape, dtype_name, nbytes, _ in items:
        if dtype_name not in TO_ST:
            raise ValueError(f"Parameter '{name}': dtype {dtype_name} cannot be stored in safetensors.")
        header[name] = {"dtype": TO_ST[dtype_name], "shape": list(shape), "data_offsets": [offset, offset + nbytes]}
        offset += nbytes
    meta = {"format": "ms"}
    meta.update({LAYOUT_KEY + k: json.dumps(v, sort_keys=True) for k, v in layouts.items()})
    meta.update({STR_KEY + k: v for k, v in strings.items()})
    header["__metadata__"] = meta
    full_crc = zlib.crc32(_canonical_header(header)) if crc else 0
    if crc:
        meta[MS_CRC_KEY] = " " * _CRC_WIDTH
        meta[CRC_KEY] = " " * _CRC_WIDTH
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    start = f.tell()
    f.write(struct.pack("<Q", len(head)))
    f.write(head)
    running = 0
    for name, shape, dtype_name, nbytes, chunks in items:
        if crc:
            running = zlib.crc32(name.encode("utf-8"), running)
        written = 0
        for chunk in chunks():
            view = _as_bytes(chunk)
            f.write(view)
            if crc:
                full_crc = zlib.crc32(view, full_crc)
                if (zeros := _ms_scalar_zeros(dtype_name, tuple(shape), view)) is not None:
                    running = _crc32_zeros(running, zeros)
                else:
                    running = zlib.crc32(view, running)
            written += len(view)
        if written != nbytes:
            raise ValueError(f"Parameter '{name}': wrote {written} bytes, expected {nbytes}.")
    if crc:
        end = f.tell()
        placeholder = json.dumps(" " * _CRC_WIDTH).encode()
        for key, value in ((MS_CRC_KEY, running), (CRC_KEY, full_crc)):
            tag = json.dumps(key).encode() + b":" + placeholder
            pos = head.rindex(tag) + len(tag) - len(placeholder)
            f.seek(start + 8 + pos)
            f.write(json.dumps(str(value).rjust(_CRC_WIDTH)).encode())
        f.seek(end)


class SafetensorsReader:
    """Validating reader with the same surface as ``CkptReader`` (records, read, read_window)."""

    def __init__(self, path: str, verify_crc: bool = True, require_crc: bool = False) -> None:
        self.path = os.fspath(path)
        self.records: dict[str, TensorRecord] = {}
        self.strings: dict[str, str] = {}
        self.skipped: list[str] = []
        self.has_crc = False
        self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._mm = None
        try:
            self._parse(verify_crc, require_crc)
        except BaseException:
            self.close()
            raise

    def _fail(self, what: str) -> ValueError:
        return ValueError(
            f"safetensors file '{self.path}' is invalid (truncated, corrupted, or another kind of file): {what}."
        )

    def _parse(self, verify_crc: bool, require_crc: bool) -> None:
        size = os.fstat(self._file.fileno()).st_size
        if size < 8:
            raise self._fail(f"only {size} bytes")
        (hlen,) = struct.unpack("<Q", self._file.read(8))
        if hlen > _MAX_HEADER or hlen > size - 8:
            raise self._fail(f"header length {hlen} exceeds the file size {size} (or the {_MAX_HEADER}-byte limit)")
        raw = bytearray(hlen)
        read_exact_into(self._file, 8, memoryview(raw), self.path)
        try:
            header = parse_json(raw)
        except ValueError as e:
            raise self._fail(f"header: {e}") from None
        if not isinstance(header, dict):
            raise self._fail("header is not a JSON object")
        meta = header.get("__metadata__")
        if meta is None:
            meta = {}
        elif not isinstance(meta, dict) or not all(isinstance(v, str) for v in meta.values()):
            raise self._fail("__metadata__ is not a map of strings to strings")
        base = 8 + hlen
        spans = []
        for name, info in header.items():
            if name != "__metadata__":
                rec = self._record(name, info, base, meta)
                self.records[name] = rec
                spans.append((rec.segments[0][0] - base, rec.segments[0][0] - base + rec.nbytes, name))
        spans.sort()
        pos = 0
        for begin, end, name in spans:
            if begin != pos:
                raise self._fail(f"entry '{name}' starts at data byte {begin}, not where the previous ends ({pos})")
            pos = end
        if pos != size - base:
            raise self._fail(f"the entries cover {pos} data bytes, but the file holds {size - base}")
        for key, value in meta.items():
            if key.startswith(STR_KEY):
                self.strings[key[len(STR_KEY) :]] = value
        self.has_crc = CRC_KEY in meta or MS_CRC_KEY in meta
        if require_crc and not self.has_crc:
            raise ValueError(f"safetensors file '{self.path}' has no CRC32 to check (crc_check=True).")
        if size > base:
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)
        if verify_crc and CRC_KEY in meta:
            self._verify_full_crc(meta[CRC_KEY], header, base, size)
        elif verify_crc and MS_CRC_KEY in meta:
            self._verify_ms_crc(meta[MS_CRC_KEY])

    def _record(self, name: str, info, base: int, meta: dict) -> TensorRecord:
        if not isinstance(info, dict):
            raise self._fail(f"entry '{name}' is not an object")
        dtype, shape, offsets = info.get("dtype"), info.get("shape"), info.get("data_offsets")
        if not isinstance(dtype, str) or not isinstance(shape, list) or not isinstance(offsets, list):
            raise self._fail(f"entry '{name}' needs a 'dtype' string, a 'shape' list and a 'data_offsets' list")
        if dtype not in FROM_ST:
            raise self._fail(f"entry '{name}' has a dtype {dtype!r} that sporax does not support")
        dtype_name = FROM_ST[dtype]
        itemsize = np_dtype_of(dtype_name, self.path, name).itemsize
        problem = check_dims(shape, itemsize)
        if problem is not None:
            raise self._fail(f"entry '{name}' has {problem}")
        if len(offsets) != 2 or not all(type(o) is int and 0 <= o < 1 << 64 for o in offsets):
            raise self._fail(f"entry '{name}' has data_offsets {offsets!r}, not two non-negative integers")
        begin, end = offsets
        expected = math.prod(shape) * itemsize
        if end < begin or expected != end - begin:
            raise self._fail(
                f"entry '{name}' declares shape {tuple(shape)} {dtype_name} ({expected} bytes) but its "
                f"data_offsets {offsets} span {end - begin} bytes"
            )
        shape = tuple(shape)
        layout = meta.get(LAYOUT_KEY + name)
        if layout is not None:
            try:
                layout = parse_json(layout)
            except ValueError as e:
                raise self._fail(f"layout of '{name}': {e}") from None
            if (problem := check_layout(layout, shape)) is not None:
                raise self._fail(f"layout of '{name}': {problem}")
        return TensorRecord(name, shape, dtype_name, [(base + begin, end - begin)], layout)

    def _crc_failed(self, stored: str, computed: int) -> ValueError:
        return ValueError(
            f"safetensors file '{self.path}' failed its CRC32 check (stored "
            f"{stored.strip()}, computed {computed}); the file is damaged."
        )

    def _crc_range(self, crc: int, off: int, n: int) -> int:
        end = off + n
        while off < end:
            step = min(_CRC_BLOCK, end - off)
            crc = zlib.crc32(self._mm[off : off + step], crc)
            off += step
        return crc

    def _verify_full_crc(self, stored: str, header: dict, base: int, size: int) -> None:
        crc = self._crc_range(zlib.crc32(_canonical_header(header)), base, size - base)
        if stored.strip() != str(crc):
            raise self._crc_failed(stored, crc)

    def _verify_ms_crc(self, stored: str) -> None:
        """MindSpore's rule, and (files of older sporax versions) the raw-bytes rule."""
        ms = raw = 0
        for name in sorted(self.records):
            rec = self.records[name]
            try:
                name_b = name.encode("utf-8")
            except UnicodeEncodeError:
                raise self._fail(f"name {name!r} is not valid UTF-8") from None
            ms, raw = zlib.crc32(name_b, ms), zlib.crc32(name_b, raw)
            off, n = rec.segments[0]
            zeros = _ms_scalar_zeros(rec.dtype_name, rec.shape, self._mm[off : off + n]) if n else None
            raw = self._crc_range(raw, off, n)
            ms = _crc32_zeros(ms, zeros) if zeros is not None else self._crc_range(ms, off, n)
        if stored.strip() not in (str(ms), str(raw)):
            raise self._crc_failed(stored, ms)

    def read(self, name: str) -> np.ndarray:
        """A fresh array read straight into its own memory."""
        rec = self.records[name]
        check_memory(self.path, name, rec.nbytes)
        out = np.empty(rec.shape, np_dtype_of(rec.dtype_name, self.path, name))
        off, n = rec.segments[0]
        read_exact_into(self._file, off, memoryview(out.reshape(-1).view(np.uint8)), self.path)
        return out

    def read_window(self, name: str, offsets: tuple[int, ...], sizes: tuple[int, ...]) -> np.ndarray:
        """A window copied out of the memory map (only its pages are touched)."""
        rec = self.records[name]
        return mmap_window(self._mm, self.path, rec, np_dtype_of(rec.dtype_name, self.path, name), offsets, sizes)

    def close(self) -> None:
        if self._mm is not None:
            try:
                self._mm.close()
            except BufferError:
                pass
        self._file.close()

    def __enter__(self) -> SafetensorsReader:
        return self

    def __exit__(self, *exc) -> None:
        self.close()
