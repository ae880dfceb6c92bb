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
string value in ``"sporax.str/<name>"``. MindSpore's optional ``"crc_num"`` metadata (CRC32
over the sorted names and their bytes) is written on request and verified when present.
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
    mmap_window,
    np_dtype_of,
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
_MAX_HEADER = 100 * 1024 * 1024
_CRC_WIDTH = 10  # digits of the largest CRC32; the placeholder is rewritten in place


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
    if crc:
        meta["crc_num"] = " " * _CRC_WIDTH
    header["__metadata__"] = meta
    head = json.dumps(header, separators=(",", ":")).encode("utf-8")
    head += b" " * (-len(head) % 8)
    start = f.tell()
    f.write(struct.pack("<Q", len(head)))
    f.write(head)
    running = 0
    for name, _, _, nbytes, chunks in items:
        if crc:
            running = zlib.crc32(name.encode("utf-8"), running)
        written = 0
        for chunk in chunks():
            view = _as_bytes(chunk)
            f.write(view)
            if crc:
                running = zlib.crc32(view, running)
            written += len(view)
        if written != nbytes:
            raise ValueError(f"Parameter '{name}': wrote {written} bytes, expected {nbytes}.")
    if crc:
        end = f.tell()
        placeholder = json.dumps(" " * _CRC_WIDTH).encode()
        pos = head.rindex(b'"crc_num":' + placeholder) + len(b'"crc_num":')
        f.seek(start + 8 + pos)
        f.write(json.dumps(str(running).rjust(_CRC_WIDTH)).encode())
        f.seek(end)


class SafetensorsReader:
    """Validating reader with the same surface as ``CkptReader`` (records, read, read_window)."""

    def __init__(self, path: str, verify_crc: bool = True) -> None:
        self.path = os.fspath(path)
        self.records: dict[str, TensorRecord] = {}
        self.strings: dict[str, str] = {}
        self.skipped: list[str] = []
        self._file = open(self.path, "rb", buffering=0)  # noqa: SIM115 - closed by close()
        self._mm = None
        try:
            self._parse(verify_crc)
        except BaseException:
            self.close()
            raise

    def _fail(self, what: str) -> ValueError:
        return ValueError(
            f"safetensors file '{self.path}' is invalid (truncated, corrupted, or another kind of file): {what}."
        )

    def _parse(self, verify_crc: bool) -> None:
        size = os.fstat(self._file.fileno()).st_size
        if size < 8:
            raise self._fail(f"only {size} bytes")
        (hlen,) = struct.unpack("<Q", self._file.read(8))
        if hlen > min(size - 8, _MAX_HEADER):
            raise self._fail(f"header length {hlen} exceeds the file size {size}")
        try:
            header = json.loads(self._file.read(hlen).decode("utf-8"))
        except (UnicodeDecodeError, json.JSONDecodeError) as e:
            raise self._fail(f"header is not JSON ({e})") from None
        if not isinstance(header, dict):
            raise self._fail("header is not a JSON object")
        meta = header.pop("__metadata__", None) or {}
        if not isinstance(meta, dict):
            raise self._fail("__metadata__ is not an object")
        base = 8 + hlen
        for name, info in header.items():
            self.records[name] = self._record(name, info, base, size - base, meta)
        for key, value in meta.items():
            if key.startswith(STR_KEY):
                self.strings[key[len(STR_KEY) :]] = str(value)
        if "crc_num" in meta and verify_crc:
            self._verify_crc(str(meta["crc_num"]))
        if size > base:
            self._mm = mmap.mmap(self._file.fileno(), 0, access=mmap.ACCESS_READ)

    def _record(self, name: str, info, base: int, data_len: int, meta: dict) -> TensorRecord:
        try:
            dtype_name = FROM_ST[info["dtype"]]
            shape = tuple(int(d) for d in info["shape"])
            begin, end = (int(x) for x in info["data_offsets"])
        except (KeyError, TypeError, ValueError):
            raise self._fail(f"entry '{name}' is malformed: {info!r}") from None
        if any(d < 0 for d in shape) or not 0 <= begin <= end <= data_len:
            raise self._fail(
                f"entry '{name}' has shape {shape} / offsets {[begin, end]} outside the {data_len} data bytes"
            )
        expected = math.prod(shape) * np_dtype_of(dtype_name, self.path, name).itemsize
        if expected != end - begin:
            raise self._fail(
                f"entry '{name}' declares shape {shape} {dtype_name} ({expected} bytes) but spans {end - begin} bytes"
            )
        layout = meta.get(LAYOUT_KEY + name)
        if layout is not None:
            try:
                layout = json.loads(layout)
            except (TypeError, json.JSONDecodeError):
                raise self._fail(f"layout of '{name}' is not JSON") from None
        return TensorRecord(name, shape, dtype_name, [(base + begin, end - begin)], layout)

    def _verify_crc(self, stored: str) -> None:
        crc = 0
        for name in sorted(self.records):
            crc = zlib.crc32(name.encode("utf-8"), crc)
            crc = zlib.crc32(memoryview(self.read(name).reshape(-1).view(np.uint8)), crc)
        if stored.strip() != str(crc):
            raise ValueError(
                f"safetensors file '{self.path}' failed its CRC32 check (stored "
                f"{stored.strip()}, computed {crc}); the file is damaged."
            )

    def read(self, name: str) -> np.ndarray:
        """A fresh array read straight into its own memory."""
        rec = self.records[name]
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
