"""Streaming checkpoint I/O shared by ``serialization`` and the CLI: deferred items, the two
formats behind one writer/reader choice, atomic durable writes, and merging rank slices.

An ``Item`` is a tensor's metadata plus a callable that yields its bytes only when the
writer reaches it, so at most one tensor (or one window of a lazy one) is in memory.
"""

from __future__ import annotations

import ctypes
import errno
import fcntl
import os
import re
import secrets
import stat
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass

import numpy as np

from sporax.common import dtype as mstype
from sporax.common.tensor import Tensor, _escape
from sporax.train import _ckpt_format as ckf
from sporax.train import _safetensors_io as stio

__all__ = [
    "Item",
    "tensor_item",
    "resolve_format",
    "write_items",
    "open_checkpoint",
    "atomic_write",
    "temp_files",
    "merge_checkpoints",
]

_FORMATS = ("ckpt", "safetensors")
LAZY_BLOCK_BYTES = 64 * 1024 * 1024  # largest piece of a lazy parameter generated at once


@dataclass
class Item:
    """One value to save: its metadata, and a callable yielding its bytes when it is written."""

    name: str
    shape: tuple[int, ...]
    dtype_name: str
    chunks: Callable[[], Iterable]
    layout: dict | None = None

    @property
    def nbytes(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) * mstype.from_name(self.dtype_name).itemsize


def lazy_chunks(init, seed: int, dtype, full_shape: tuple, offsets: tuple, sizes: tuple) -> Iterator[np.ndarray]:
    """The window ``offsets/sizes`` of a lazy tensor, in C order, as blocks of leading rows."""
    if not sizes:
        yield init.window(seed, full_shape, dtype, (), ())
        return
    row = int(np.prod(sizes[1:], dtype=np.int64)) * dtype.itemsize
    step = max(1, LAZY_BLOCK_BYTES // max(row, 1))
    for start in range(0, sizes[0], step):
        n = min(step, sizes[0] - start)
        yield init.window(seed, full_shape, dtype, (offsets[0] + start, *offsets[1:]), (n, *sizes[1:]))
    if sizes[0] == 0:
        yield np.empty(sizes, dtype.np_dtype)


def tensor_item(name: str, t: Tensor, layout: dict | None = None, window=None) -> Item:
    """An item for tensor ``t``, or for its window ``(offsets, sizes)`` only. What it needs is
    captured now (a lazy tensor's initializer and seed, or the immutable array), so the item
    is a snapshot: later changes to ``t`` do not reach it (asynchronous saves rely on this)."""
    full = tuple(t.shape)
    offsets, sizes = (tuple(window[0]), tuple(window[1])) if window is not None else ((0,) * len(full), full)
    if t.init is not None:
        init, seed, dtype = t.init, t._seed, t.dtype
        return Item(name, sizes, dtype.name, lambda: lazy_chunks(init, seed, dtype, full, offsets, sizes), layout)
    value = _escape(t._value)  # held by the writer now: a compiled step must not donate it
    index = tuple(slice(o, o + n) for o, n in zip(offsets, sizes))
    if _is_sharded(value):
        if window is None:
            return Item(name, sizes, t.dtype.name, lambda: sharded_chunks(value), layout)
        return Item(name, sizes, t.dtype.name, lambda: [shard_window(value, offsets, sizes)], layout)
    return Item(name, sizes, t.dtype.name, lambda: [np.asarray(value if window is None else value[index])], layout)


def _is_sharded(value) -> bool:
    """A ``jax.Array`` spread over more than one device."""
    sharding = getattr(value, "sharding", None)
    return sharding is not None and hasattr(value, "addressable_shards") and len(sharding.device_set) > 1


def _shard_window(shard, full: tuple) -> tuple[tuple, tuple]:
    bounds = [sl.indices(n)[:2] for sl, n in zip(shard.index, full)]
    return tuple(a for a, _ in bounds), tuple(b - a for a, b in bounds)


def shard_window(value, offsets: tuple, sizes: tuple) -> np.ndarray:
    """The window ``offsets/sizes`` of a sharded array, copied from the one local shard that is
    exactly it when there is one (no cross-device work), else assembled from the local shards
    inside it when they cover it, else cut from the array."""
    full, offsets, sizes = tuple(value.shape), tuple(offsets), tuple(sizes)
    inside = []
    for shard in value.addressable_shards:
        win = _shard_window(shard, full)
        if win == (offsets, sizes):
            return np.asarray(shard.data)
        if all(o <= a and a + n <= o + s for a, n, o, s in zip(*win, offsets, sizes)):
            inside.append((win, shard))
    if inside and not value.is_fully_addressable:
        out = np.empty(sizes, value.dtype)
        for (a, n), shard in {w: sh for w, sh in inside}.items():
            out[tuple(slice(x - o, x - o + m) for x, m, o in zip(a, n, offsets))] = np.asarray(shard.data)
        return out
    return np.asarray(value[tuple(slice(o, o + n) for o, n in zip(offsets, sizes))])


def process_window(value) -> tuple[tuple, tuple] | None:
    """``(offsets, sizes)`` of the box this process's devices hold of a sharded array that spans
    several processes, when their shards fill it exactly; None otherwise."""
    full = tuple(value.shape)
    wins = {_shard_window(shard, full) for shard in value.addressable_shards}
    if not wins:
        return None
    lo = tuple(min(w[0][i] for w in wins) for i in range(len(full)))
    hi = tuple(max(w[0][i] + w[1][i] for w in wins) for i in range(len(full)))
    sizes = tuple(b - a for a, b in zip(lo, hi))
    if sum(int(np.prod(w[1], dtype=np.int64)) for w in wins) != int(np.prod(sizes, dtype=np.int64)):
        return None  # the local shards overlap or leave holes: no single box
    return lo, sizes


def sharded_chunks(value) -> Iterator[np.ndarray]:
    """A sharded array's full content in C order, as bands of leading rows assembled from its
    local shards one band at a time (never the whole tensor at once). An array that spans
    processes is gathered first (``process_allgather``: every process must save it too)."""
    full = tuple(value.shape)
    for shard in value.addressable_shards:  # replicated: one local copy is the whole tensor
        if _shard_window(shard, full)[1] == full:
            yield np.asarray(shard.data)
            return
    if not value.is_fully_addressable:
        from jax.experimental import multihost_utils

        yield np.asarray(multihost_utils.process_allgather(value, tiled=True))
        return
    if not full or 0 in full:
        yield np.asarray(value)
        return
    bands: dict[tuple, dict] = {}
    for shard in value.addressable_shards:
        offsets, sizes = _shard_window(shard, full)
        bands.setdefault((offsets[0], offsets[0] + sizes[0]), {}).setdefault((offsets, sizes), shard)
    order = sorted(bands)
    if [a for a, _ in order] != [0, *[b for _, b in order[:-1]]] or order[-1][1] != full[0]:
        yield np.asarray(value)  # shards overlap along dim 0 in an unusual way: one gather
        return
    for a, b in order:
        band = np.empty((b - a, *full[1:]), value.dtype)
        for (offsets, sizes), shard in bands[(a, b)].items():
            index = (slice(None), *(slice(o, o + n) for o, n in zip(offsets[1:], sizes[1:])))
            band[index] = np.asarray(shard.data)
        yield band


def resolve_format(file_name: str, fmt: str, where: str) -> str:
    if fmt not in _FORMATS:
        raise ValueError(f"For '{where}', the 'format' should be 'ckpt' or 'safetensors', but got {fmt!r}.")
    return "safetensors" if fmt == "safetensors" or str(file_name).endswith(".safetensors") else "ckpt"


def write_items(f, fmt: str, items: list[Item], strings: dict[str, str], crc: bool) -> None:
    if fmt == "safetensors":
        stio.write_safetensors(
            f,
            [(i.name, i.shape, i.dtype_name, i.nbytes, i.chunks) for i in items],
            {i.name: i.layout for i in items if i.layout},
            strings,
            crc,
        )
        return
    writer = ckf.CkptWriter(f, crc=crc)
    for i in items:
        writer.write_chunks(i.name, i.shape, i.dtype_name, i.nbytes, i.chunks(), i.layout)
    for name, s in strings.items():
        writer.write_string(name, s)
    writer.finish()


def open_checkpoint(path: str, format: str = "ckpt", verify_crc: bool = True, require_crc: bool = False):  # noqa: A002
    """A validating reader (``.records``, ``.read``, ``.read_window``, ``.close``) for a
    ``.ckpt`` or ``.safetensors`` file; ValueError naming the file for anything malformed.
    ``verify_crc`` checks a CRC that is present; ``require_crc`` makes a missing one an error."""
    path = os.fspath(path)
    fmt = resolve_format(path, format, "load_checkpoint")
    if not os.path.isfile(path):
        raise ValueError(f"For 'load_checkpoint', the checkpoint file '{path}' does not exist.")
    reader = stio.SafetensorsReader if fmt == "safetensors" else ckf.CkptReader
    try:
        return reader(path, verify_crc, require_crc)
    except OSError as e:  # unreadable (permissions, I/O error): still name the checkpoint
        raise OSError(e.errno, f"Reading the checkpoint failed: {e.strerror or e}", path) from e


def _libc_sync_file_range():
    try:
        fn = ctypes.CDLL(None, use_errno=True).sync_file_range
    except (OSError, AttributeError):
        return None
    fn.argtypes = (ctypes.c_int, ctypes.c_int64, ctypes.c_int64, ctypes.c_uint)
    return fn


_sync_file_range = _libc_sync_file_range() if sys.platform.startswith("linux") else None
_WRITEBACK_BYTES = 64 * 1024 * 1024
_SYNC_FILE_RANGE_WRITE = 2


class _WritebackFile:
    """A write-only file that asks the kernel to start writing each 64 MiB to disk as soon as
    it is written (Linux ``sync_file_range``), so the final fsync overlaps with the writing
    instead of following it. Elsewhere it is a plain buffered file."""

    def __init__(self, f) -> None:
        self._f, self._fd = f, f.fileno()
        self._pos = self._started = 0

    def write(self, data) -> int:
        n = self._f.write(data)
        self._pos += memoryview(data).nbytes
        if _sync_file_range is not None and self._pos - self._started >= _WRITEBACK_BYTES:
            self._f.flush()
            _sync_file_range(self._fd, self._started, self._pos - self._started, _SYNC_FILE_RANGE_WRITE)
            self._started = self._pos
        return n

    def tell(self) -> int:
        return self._pos

    def seek(self, pos: int) -> int:
        self._pos = self._f.seek(pos)
        self._started = min(self._started, self._pos)
        return self._pos


def _close_later(fd: int) -> None:
    """Close ``fd`` in a background thread: the last reference to a replaced file is dropped
    there, so freeing its (possibly gigabytes of) cached pages does not delay the save."""
    threading.Thread(target=os.close, args=(fd,), daemon=True).start()


def _umask() -> int:
    """The process umask, read without changing it (``os.umask`` would race with other threads)."""
    try:
        with open("/proc/self/status") as f:
            for line in f:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except OSError:
        pass
    return 0o022


# Temporary files are ``.NAME.PID.<8 random characters>.tmp`` (PID of the writer),
# flock-ed by their writer from creation until they are renamed; the lock dies with the process.
_TMP_RE = r"\.{}\.(?:(\d+)\.)?[A-Za-z0-9_]{{8}}\.tmp"
_TMP_GRACE_S = 60.0  # an unlocked temp file of a live pid younger than this may be being created


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:  # EPERM: it exists, owned by someone else
        return True
    return True


def _is_stale(tmp: str, pid: int | None) -> bool:
    """True if no live writer holds ``tmp``: its lock is free and its writer is dead (or it
    has been untouched for a minute, e.g. a dead writer whose pid was reused)."""
    try:
        fd = os.open(tmp, os.O_RDONLY | os.O_NOFOLLOW)
    except OSError:
        return False
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            return False  # a live writer holds it
        fcntl.flock(fd, fcntl.LOCK_UN)
        if pid is None or pid == os.getpid() or _pid_alive(pid):
            return time.time() - os.fstat(fd).st_mtime > _TMP_GRACE_S
        return True
    finally:
        os.close(fd)


def temp_files(path: str) -> list[tuple[str, int, bool]]:
    """``(temp file, size in bytes, stale)`` for every temporary file of a save to ``path``
    found beside it; ``stale`` means its writer is gone (killed mid-save)."""
    directory = os.path.dirname(os.path.abspath(path))
    pattern = re.compile(_TMP_RE.format(re.escape(os.path.basename(path))))
    found = []
    try:
        names = sorted(os.listdir(directory))
    except OSError:
        return []
    for name in names:
        m = pattern.fullmatch(name)
        if m is None:
            continue
        full = os.path.join(directory, name)
        try:
            size = os.lstat(full).st_size
        except OSError:
            continue
        found.append((full, size, _is_stale(full, int(m.group(1)) if m.group(1) else None)))
    return found


def remove_stale_temp_files(path: str) -> list[str]:
    """Delete the temporary files that dead writers left beside ``path``; return their names."""
    removed = []
    for tmp, _, stale in temp_files(path):
        if stale:
            try:
                os.unlink(tmp)
                removed.append(tmp)
            except OSError:
                pass
    return removed


def _make_temp(directory: str, base: str) -> tuple[int, str]:
    """Create and lock a fresh temporary file (mode 0600, as ``mkstemp``)."""
    for _ in range(100):
        suffix = secrets.token_hex(4)
        tmp = os.path.join(directory, f".{base}.{os.getpid()}.{suffix}.tmp")
        try:
            fd = os.open(tmp, os.O_RDWR | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | getattr(os, "O_CLOEXEC", 0), 0o600)
        except FileExistsError:
            continue
        fcntl.flock(fd, fcntl.LOCK_EX)
        return fd, tmp
    raise FileExistsError(errno.EEXIST, "no free temporary file name", os.path.join(directory, f".{base}.*.tmp"))


def _save_error(path: str, e: OSError) -> OSError:
    """``e`` restated for the checkpoint ``path`` (same errno, hence the same OSError subclass)."""
    what = e.strerror or str(e)
    if e.filename is not None and os.fspath(e.filename) != path:
        what += f" (at {os.fspath(e.filename)!r})"
    return OSError(e.errno, f"Saving the checkpoint failed: {what}", path)


def atomic_write(path: str, write: Callable) -> None:
    """Run ``write(f)`` on a hidden temporary file next to ``path``, fsync it, rename it over
    ``path`` and fsync the directory. On any error (or a kill) ``path`` keeps its old content;
    the temporary name starts with '.' and ends with '.tmp', so it is never taken for a checkpoint.

    Temporary files that killed writers left beside ``path`` are removed first (never one a
    live writer holds). An existing ``path`` keeps its permission bits. An OSError (disk full,
    file too large, read-only directory) is raised again as an OSError of the same kind naming
    ``path``, with the original as its cause.
    """
    path = os.fspath(path)
    directory = os.path.dirname(os.path.abspath(path))
    remove_stale_temp_files(path)
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        mode = 0o666 & ~_umask()
    try:
        fd, tmp = _make_temp(directory, os.path.basename(path))
    except OSError as e:
        raise _save_error(path, e) from e
    f = os.fdopen(fd, "wb")
    try:
        try:
            write(_WritebackFile(f))
            f.flush()
            os.fchmod(f.fileno(), mode)
            os.fsync(f.fileno())
            try:
                old = os.open(path, os.O_RDONLY)
            except OSError:
                old = None
            os.replace(tmp, path)
            if old is not None:
                _close_later(old)
        except OSError as e:
            raise _save_error(path, e) from e
    except BaseException:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        try:
            f.close()
        except OSError:
            pass
        raise
    f.close()  # releases the lock only now that the name is gone
    try:
        dir_fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
    except OSError as e:
        raise _save_error(path, e) from e


# ----------------------------------------------------------------------------- merge
def merge_checkpoints(ckpt_files: list[str], out_file: str, format: str = "ckpt", crc_check: bool = False) -> None:  # noqa: A002
    """Rebuild full tensors from per-rank checkpoints saved with ``integrated_save=False``.

    Every slice carries its layout (full shape and offsets). Each full tensor is assembled in
    memory one at a time from all files' slices (replicas are read once) and streamed to
    ``out_file``; a tensor whose slices do not cover it raises ValueError naming the tensor.
    Unsliced entries are taken from the first file holding them.
    """
    if not ckpt_files:
        raise ValueError("For 'merge_checkpoints', give at least one checkpoint file.")
    readers = []
    try:
        for f in ckpt_files:
            readers.append(open_checkpoint(f))
        order: dict[str, list] = {}
        strings: dict[str, str] = {}
        for r in readers:
            for name, rec in r.records.items():
                if rec.dtype_name == ckf.STR_TYPE:
                    strings.setdefault(name, r.read(name))
                else:
                    order.setdefault(name, []).append((r, rec))
            for name, s in getattr(r, "strings", {}).items():
                strings.setdefault(name, s)
        items = [_merged_item(name, parts) for name, parts in order.items()]
        atomic_write(
            os.fspath(out_file),
            lambda f: write_items(f, resolve_format(out_file, format, "merge_checkpoints"), items, strings, crc_check),
        )
    finally:
        for r in readers:
            r.close()


def _merged_item(name: str, parts: list) -> Item:
    """The full tensor ``name`` from its slices ``parts`` = [(reader, record)]: checked (same
    full shape and dtype everywhere, slices inside it, enough of them) before anything is
    allocated, assembled only when the writer reaches it."""
    import math

    r0, first = parts[0]
    if first.layout is None:
        if len(parts) > 1 and any(rec.layout is not None for _, rec in parts):
            raise ValueError(
                f"For 'merge_checkpoints', '{name}' is a full tensor in '{r0.path}' but a slice elsewhere."
            )
        return Item(name, first.shape, first.dtype_name, lambda: [r0.read(name)])
    full = tuple(first.layout["full_shape"])  # readers validated every layout against its slice
    for r, rec in parts:
        if rec.layout is None or tuple(rec.layout["full_shape"]) != full or rec.dtype_name != first.dtype_name:
            raise ValueError(
                f"For 'merge_checkpoints', the slices of '{name}' in '{r.path}' and '{r0.path}' disagree on "
                f"the full shape or dtype ({rec.layout and rec.layout.get('full_shape')} {rec.dtype_name} vs "
                f"{list(full)} {first.dtype_name})."
            )
    distinct = {(tuple(rec.layout["offsets"]), rec.shape) for _, rec in parts}
    itemsize = mstype.from_name(first.dtype_name).itemsize
    if (problem := ckf.check_dims(list(full), itemsize)) is not None or sum(
        math.prod(shape) for _, shape in distinct
    ) < math.prod(full):
        # checked before allocating: a corrupted full_shape must not make the merge allocate it
        raise ValueError(
            f"For 'merge_checkpoints', the slices of '{name}' ({len(distinct)} distinct) cannot cover its "
            f"full shape {full}{'' if problem is None else ' (' + problem + ')'}; a rank's file is missing or a "
            "layout is corrupted."
        )

    def assemble() -> list[np.ndarray]:
        ckf.check_memory(r0.path, name, math.prod(full) * (itemsize + 1))
        out = np.empty(full, mstype.from_name(first.dtype_name).np_dtype)
        covered = np.zeros(full, np.bool_)
        seen = set()
        for r, rec in parts:
            offsets = tuple(rec.layout["offsets"])
            if (offsets, rec.shape) in seen:
                continue
            seen.add((offsets, rec.shape))
            index = tuple(slice(o, o + s) for o, s in zip(offsets, rec.shape))
            out[index] = r.read(name)
            covered[index] = True
        if not covered.all():
            raise ValueError(
                f"For 'merge_checkpoints', the slices of '{name}' cover only {int(covered.sum())} of "
                f"{covered.size} elements of its full shape {full}; a rank's file is missing."
            )
        return [out]

    return Item(name, full, first.dtype_name, assemble)
