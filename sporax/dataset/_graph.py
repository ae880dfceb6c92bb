"""How a MindSpore pipeline becomes a Grain pipeline: the build context and the row functions.

Rows travel through Grain as tuples of numpy arrays, one per column. A node builds its Grain
dataset from its children's: random-access parts are ``grain.MapDataset`` (exact lengths, epochs
as index offsets, so Grain's shuffle and per-row seeds differ per epoch), and a node that
cannot keep random access (``filter``, an iterable source) turns its input into a
``grain.IterDataset`` for one epoch at a time (``_BuildCtx.epoch``).

The row functions here are small picklable callables, so the same graph runs in Grain's
worker processes.
"""

from __future__ import annotations

import dataclasses

import grain
import numpy as np

from sporax.dataset import config
from sporax.dataset.transforms.transforms import _OneToOne, apply_operations

__all__ = []


@dataclasses.dataclass
class _BuildCtx:
    """What one build of a pipeline needs: its seed, the epoch an iterable part serves, and the
    worker settings the nodes ask for (collected while building)."""

    seed: int
    epoch: int = 0
    processes: int = 0
    threads: int = 1
    sliceable: bool = True  # False once an iterable source is in the graph (workers cannot split it)
    section: StreamSection | None = None  # the open stream section (see seal)
    _ordinal: int = 0

    def node_seed(self, per_epoch: bool = False) -> int:
        """A seed for the next random node (in build order, so the same graph gets the same seeds)."""
        self._ordinal += 1
        path = (self._ordinal, self.epoch) if per_epoch else (self._ordinal,)
        return config.derive_seed(self.seed, *path)

    def workers(self, num_parallel_workers, python_multiprocessing: bool) -> None:
        """Record a node's worker request: for the open stream section if there is one (its row-by-row
        nodes), else for the whole pipeline."""
        n = num_parallel_workers or 1
        if self.section is not None:
            self.section.request(n, python_multiprocessing)
        elif python_multiprocessing and n > 1:
            self.processes = max(self.processes, n)
        else:
            self.threads = max(self.threads, n)

    def read_options(self) -> grain.ReadOptions:
        return grain.ReadOptions(num_threads=self.threads, prefetch_buffer_size=config.get_prefetch_size())


class StreamSection:
    """The row-by-row part of a pipeline over an iterable source: the source and the maps, projects
    and renames right above it, up to the first other node (batch, shuffle, filter, ...).

    With workers requested there (``num_parallel_workers > 1`` on the source or on those maps),
    :func:`seal` runs the section in that many Grain workers (``mp_prefetch`` processes, or
    ``multithread_prefetch`` threads without ``python_multiprocessing``). Worker ``w`` of ``k``
    reads the whole source but converts and transforms only rows ``w, w + k, ...``; Grain
    interleaves the workers' outputs in turn, so rows come out in the source's order, and each map
    sees every row's index as in one process (``start + count * step``). So a source must give
    the same rows each time it is read (a generator function, a list, an object with
    ``__iter__``), as MindSpore also reads it once per epoch.
    """

    def __init__(self, sliceable: bool) -> None:
        self.sliceable = sliceable  # False for a one-shot iterator: it cannot be read in several workers
        self.processes = 0
        self.threads = 1
        self.start, self.step = 0, 1  # this copy's rows (set in a worker by the source's set_slice)

    def request(self, n: int, python_multiprocessing: bool) -> None:
        if python_multiprocessing and n > 1:
            self.processes = max(self.processes, n)
        else:
            self.threads = max(self.threads, n)

    def index(self, count: int) -> int:
        return self.start + count * self.step


def prefetch_in_processes(g, workers: int, buffer_size: int):
    """Grain's ``mp_prefetch`` with ``workers`` processes."""
    from absl import flags

    if not flags.FLAGS.is_parsed():  # Grain's worker start reads its absl flags
        flags.FLAGS.mark_as_parsed()
    return g.mp_prefetch(grain.MultiprocessingOptions(num_workers=workers, per_worker_buffer_size=buffer_size))


def seal(g, ctx: _BuildCtx):
    """End the open stream section at ``g`` (see :class:`StreamSection`): run it in its workers."""
    sec, ctx.section = ctx.section, None
    if sec is None or not isinstance(g, grain.IterDataset) or not sec.sliceable:
        return g
    if sec.processes > 1:
        return prefetch_in_processes(g, sec.processes, config.get_prefetch_size())
    if sec.threads > 1:
        return grain.experimental.multithread_prefetch(g, num_threads=sec.threads,
                                                       buffer_size=config.get_prefetch_size())
    return g


def to_iter(g, ctx: _BuildCtx):
    """``g`` as an IterDataset of the rows of epoch ``ctx.epoch``."""
    if isinstance(g, grain.IterDataset):
        return g
    n = len(g)
    if ctx.epoch and n != _INFINITE:
        g = g.repeat(ctx.epoch + 1)[ctx.epoch * n:]
    return g.to_iter_dataset(ctx.read_options())


_INFINITE = __import__("sys").maxsize


def row_error(what: str, columns, index, n, err: BaseException) -> RuntimeError:
    where = f"row {index}" if n in (None, 0, _INFINITE) else f"row {index % n} of epoch {index // n}"
    return RuntimeError(f"{what} failed on column(s) {list(columns)} at {where}: {type(err).__name__}: {err}")


class MapRow:
    """Apply ``Dataset.map``'s operations to one row (called with the row's index)."""

    def __init__(self, ops, in_idx, out_layout, in_names, out_count, n, seed, random, section=None) -> None:
        self.ops, self.in_idx, self.out_layout = ops, in_idx, out_layout
        self.in_names, self.out_count, self.n, self.seed, self.random = in_names, out_count, n, seed, random
        self.section = section  # in a stream section: the rows this copy sees
        self._count = 0
        # One column through one-column transforms (the usual image chain): call them directly.
        self._chain = None
        if len(in_idx) == 1 and out_count == 1 and all(isinstance(op, _OneToOne) for op in ops):
            self._chain = [op._apply1 for op in ops]
        # ... and over a whole batch at once, where each transform is elementwise per row.
        self.batchable = self._chain is not None and not random and all(
            getattr(type(op), "_apply_batch", None) is not None for op in ops)

    def apply_batch(self, cols: list) -> list:
        """This map on stacked columns (``batchable`` maps only): the same values as per row, then stacked."""
        x = cols[self.in_idx[0]]
        for op in self.ops:
            x = op._apply_batch(x, None)
        return [x if src else cols[j] for src, j in self.out_layout]

    def __call__(self, index, row=None):
        if row is None:  # IterDataset.map: no index, count rows instead
            row, index = index, self._count if self.section is None else self.section.index(self._count)
            self._count += 1
        rng = np.random.default_rng([self.seed, index]) if self.random else None
        try:
            if self._chain is not None:
                x = row[self.in_idx[0]]
                for f in self._chain:
                    x = f(x, rng)
                out = (x if type(x) is np.ndarray else np.asarray(x),)
            else:
                out = apply_operations(self.ops, tuple([row[i] for i in self.in_idx]), rng)
        except Exception as e:
            names = ", ".join(getattr(op, "__name__", type(op).__name__) for op in self.ops)
            raise row_error(f"map operation [{names}]", self.in_names, index, self.n, e) from e
        if len(out) != self.out_count:
            raise RuntimeError(
                f"Invalid columns, the number of columns returned in 'map' operations should match the number of "
                f"'output_columns', but got {len(out)} returned columns and {self.out_count} output_columns "
                f"({self.in_names} -> ?); pass output_columns naming each returned column.")
        return tuple([out[j] if src else row[j] for src, j in self.out_layout])


class Select:
    """Keep the columns at ``idx`` (``project``), in that order."""

    batchable = True

    def __init__(self, idx) -> None:
        self.idx = tuple(idx)

    def __call__(self, row):
        return tuple(row[i] for i in self.idx)

    def apply_batch(self, cols: list) -> list:
        return [cols[i] for i in self.idx]


class FusedBatch:
    """``batch`` with the maps/projects right below it, on one batch of random-access rows.

    Called with the batch's index and its rows as read from the source (a list of tuples).
    When every step is batchable (elementwise transforms of one column, no padding), the
    columns are stacked first and each transform runs once on the batch; values are those of
    the per-row path, since each transform treats every row alike. Otherwise, or when that
    fails (rows of different shapes or dtypes, a bad input), the steps run row by row with the
    same row indices (per-row seeds, error messages) as ``map`` nodes of their own would see.
    """

    def __init__(self, steps, in_names, out_names, pads, n: int, batch_size: int, drop_remainder: bool) -> None:
        self.steps = [s for s in steps if s is not None]
        self.in_count, self.stack = len(in_names), StackRows(out_names, pads)
        self.n, self.batch_size = n, batch_size
        self.per_epoch = n // batch_size if drop_remainder else -(-n // batch_size)
        self.vector = all(s.batchable for s in self.steps) and all(p is None for p in self.stack.pads)

    def __call__(self, index, rows):
        if self.vector and rows:
            out = self._vectorized(rows)
            if out is not None:
                return out
        epoch, b = divmod(index, self.per_epoch) if self.per_epoch else (0, 0)
        start = epoch * self.n + b * self.batch_size
        for step in self.steps:
            if isinstance(step, MapRow):
                rows = [step(start + k, r) for k, r in enumerate(rows)]
            else:
                rows = [step(r) for r in rows]
        return self.stack(rows)

    def _vectorized(self, rows):
        for c in range(self.in_count):  # rows of a column must share one dtype to be cast alike
            dt = getattr(rows[0][c], "dtype", None)
            if dt is None or any(getattr(r[c], "dtype", None) != dt for r in rows):
                return None
        try:
            cols = [np.stack([r[c] for r in rows]) for c in range(self.in_count)]
            for step in self.steps:
                cols = step.apply_batch(cols)
        except Exception:  # the per-row path gives the result or the error that names the row
            return None
        return tuple(cols)


class Flatten:
    """Join the rows of zipped datasets into one row."""

    def __call__(self, rows):
        return tuple(v for r in rows for v in r)


class Predicate:
    """``Dataset.filter``'s predicate on the selected columns."""

    def __init__(self, fn, idx, names) -> None:
        self.fn, self.idx, self.names = fn, tuple(idx), names
        self._count = 0

    def __call__(self, row) -> bool:
        self._count += 1
        try:
            return bool(np.all(self.fn(*(row[i] for i in self.idx))))
        except Exception as e:
            raise row_error("filter predicate", self.names, self._count - 1, None, e) from e


class SkipFirst:
    """Drop the first ``count`` rows of a stream (``skip`` after a non-random-access node)."""

    def __init__(self, count: int) -> None:
        self.count = count
        self._seen = 0

    def __call__(self, row) -> bool:
        self._seen += 1
        return self._seen > self.count


def stack_column(values, name: str, pad=None):
    """Stack one column of a batch; with ``pad`` (``(shape or None, value)``), pad/crop each row first."""
    if pad is not None:
        return pad_column(values, name, *pad)
    try:
        return np.stack(values)
    except ValueError:
        pass  # find the row that differs, for the message
    first = np.asarray(values[0])
    for v in values[1:]:
        if np.shape(v) != first.shape:
            raise RuntimeError(
                f"Cannot batch tensors with different shapes in column '{name}'. First element had shape "
                f"{first.shape} and this element had shape {np.shape(v)}; pad or resize the rows first (e.g. a "
                "map with vision.Resize), use padded_batch(pad_info=...), or use per_batch_map.")
    return np.stack(values)


def pad_column(values, name: str, shape, value):
    """``padded_batch``: every row of the column padded with ``value`` (cut where longer) to ``shape``;
    a ``None`` shape (or dimension) is the longest in the batch. ``value`` None is 0 ("" for strings)."""
    arrays = [np.asarray(v) for v in values]
    rank = arrays[0].ndim
    for a in arrays:
        if a.ndim != rank:
            raise RuntimeError(f"Cannot pad tensors of different ranks in column '{name}': {arrays[0].shape} and "
                               f"{a.shape}.")
    if shape is not None and len(shape) != rank:
        raise RuntimeError(f"Invalid pad_info, rank of pad_shape must be equal to rank of specified column "
                           f"'{name}'. pad_shapes rank:{len(shape)}, column rank: {rank}.")
    longest = [max(a.shape[d] for a in arrays) for d in range(rank)]
    target = tuple(longest[d] if shape is None or shape[d] is None else shape[d] for d in range(rank))
    dtype = np.result_type(*arrays)
    text = dtype.kind in "US"
    if value is None:
        value = ("" if dtype.kind == "U" else b"") if text else 0
    elif text != isinstance(value, (str, bytes)):
        raise RuntimeError(f"For 'padded_batch', cannot pad column '{name}' of dtype {dtype} with the value "
                           f"{value!r}: give a {'string' if text else 'number'} pad value.")
    out = np.full((len(arrays), *target), value if text else np.asarray(value).astype(dtype), dtype=dtype)
    for k, a in enumerate(arrays):
        cut = tuple(slice(0, min(s, t)) for s, t in zip(a.shape, target))
        out[(k, *cut)] = a[cut]
    return out


class StackRows:
    """``batch``'s batch_fn: stack each column of a list of rows (padding those ``pads`` names)."""

    def __init__(self, names, pads=None) -> None:
        self.names = list(names)
        self.pads = [None] * len(self.names) if pads is None else list(pads)

    def __call__(self, rows):
        return tuple(stack_column([r[c] for r in rows], self.names[c], self.pads[c]) for c in range(len(self.names)))


class GatherRows:
    """``batch`` with ``per_batch_map``: each column as a list of the rows' arrays."""

    def __call__(self, rows):
        return tuple(list(col) for col in zip(*rows))


class BatchInfo:
    """What ``per_batch_map`` (and a callable batch size) sees: the batch and epoch numbers."""

    def __init__(self, batch_num: int, epoch_num: int) -> None:
        self._batch_num, self._epoch_num = batch_num, epoch_num

    def get_batch_num(self) -> int:
        return self._batch_num

    def get_epoch_num(self) -> int:
        return self._epoch_num


class PerBatch:
    """Apply ``per_batch_map`` to a gathered batch, then stack the columns."""

    def __init__(self, fn, in_idx, out_layout, names, out_names, n, epoch, pads=None) -> None:
        self.fn, self.in_idx, self.out_layout = fn, in_idx, out_layout
        self.names, self.out_names, self.n, self.epoch = names, out_names, n, epoch
        self.pads = pads
        self._count = 0

    def __call__(self, index, batch=None):
        if batch is None:
            batch, index = index, self._count
            self._count += 1
        if self.n in (None, 0, _INFINITE):
            info = BatchInfo(index, self.epoch)
        else:
            info = BatchInfo(index % self.n, index // self.n)
        try:
            out = self.fn(*(batch[i] for i in self.in_idx), info)
        except Exception as e:
            raise row_error("batch per_batch_map", [self.names[i] for i in self.in_idx], index, self.n, e) from e
        if not isinstance(out, tuple) or len(out) != len([1 for src, _ in self.out_layout if src]):
            raise RuntimeError(f"per_batch_map should return a tuple of {len(self.out_names)} column(s) "
                               f"{self.out_names}, but got {type(out).__name__}"
                               f"{'' if not isinstance(out, tuple) else f' of {len(out)}'}.")
        row = tuple(out[j] if src else batch[j] for src, j in self.out_layout)
        names = [self.out_names[j] if src else self.names[j] for src, j in self.out_layout]
        pads = self.pads or [None] * len(names)
        return tuple(stack_column(list(v), name, pad) for v, name, pad in zip(row, names, pads))


class BufferShuffleIterDataset(grain.IterDataset):
    """``Dataset.shuffle(buffer_size)`` over a stream, as MindSpore does it: a buffer of ``buffer_size``
    rows; each output is a random row of the buffer, whose place the next input row takes.

    Grain has a window shuffle (``WindowShuffleIterDataset``: fill a window, emit all of it
    permuted) but no such buffer: with a window a row never leaves its window of
    ``buffer_size`` rows, while with MindSpore's buffer a row moves ahead by at most
    ``buffer_size - 1`` places and may be held back any number of places.
    """

    def __init__(self, parent, buffer_size: int, seed: int) -> None:
        super().__init__(parent)
        self.buffer_size, self.seed = buffer_size, seed

    def __iter__(self):
        return _BufferShuffleIterator(self._parent.__iter__(), self.buffer_size, self.seed)

    def __str__(self) -> str:
        return f"BufferShuffleIterDataset(buffer_size={self.buffer_size})"


class _BufferShuffleIterator(grain.DatasetIterator):
    _DRAWS = 1024  # uniform draws made at a time

    def __init__(self, parent, buffer_size: int, seed: int) -> None:
        super().__init__(parent)
        self._size, self._rng = buffer_size, np.random.default_rng(seed)
        self._buf: list = []
        self._u, self._k = None, self._DRAWS
        self._exhausted = False
        self._emitted = 0

    def __next__(self):
        buf = self._buf
        while not self._exhausted and len(buf) < self._size:
            try:
                buf.append(next(self._parent))
            except StopIteration:
                self._exhausted = True
        if not buf:
            raise StopIteration
        if self._k == self._DRAWS:
            self._u, self._k = self._rng.random(self._DRAWS), 0
        j = int(self._u[self._k] * len(buf))
        self._k += 1
        row = buf[j]
        buf[j] = buf[-1]
        buf.pop()
        self._emitted += 1
        return row

    def get_state(self):
        return {"emitted": self._emitted}

    def set_state(self, state):
        raise RuntimeError("Dataset.shuffle with a buffer smaller than the dataset cannot resume from a saved "
                           "position; restart the epoch.")


class ToDevice:
    """A row's numeric arrays as (uncommitted) jax arrays on the default device, for Tensors."""

    def __call__(self, row):
        import jax

        return tuple(jax.device_put(v) if type(v) is np.ndarray and v.dtype.kind in "biufc" else v for v in row)
