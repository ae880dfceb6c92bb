"""Sources of ``mindspore.dataset``: ``GeneratorDataset`` and ``NumpySlicesDataset``, and the base of
every random-access source (the file datasets derive from it too).

A random-access source (``__getitem__`` + ``__len__``) becomes a leaf ``grain.MapDataset``
(:class:`RowSource`), then its sampler's transformations; an iterable source (a generator function, or an object
with ``__iter__`` only) becomes a small ``grain.IterDataset`` read once per epoch.
"""

from __future__ import annotations

import warnings

import grain
import numpy as np

from sporax.common._validation import msg
from sporax.dataset import _graph
from sporax.dataset import samplers as _samplers
from sporax.dataset._graph import row_error
from sporax.dataset.datasets import Dataset, _check_workers, _names
from sporax.dataset.transforms.transforms import _to_np_dtype

__all__ = ["MappableDataset", "GeneratorDataset", "NumpySlicesDataset"]


def _as_column(value):
    if isinstance(value, np.ndarray):
        return value
    if hasattr(value, "asnumpy"):
        return value.asnumpy()
    return np.asarray(value)


_NUMPY = (np.ndarray, np.generic)


class _Rows:
    """A random-access row source: item ``i`` of ``source`` as a checked tuple of numpy columns."""

    def __init__(self, source, names, types, where: str) -> None:
        self.source, self.names, self.types, self.where = source, list(names), types, where
        self._len = len(source)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index: int):
        try:
            item = self.source[index]
        except Exception as e:
            raise row_error(f"the 'source' of '{self.where}'", self.names, index, None, e) from e
        if type(item) is tuple and len(item) == len(self.names) and self.types is None:
            for c in item:
                if not isinstance(c, _NUMPY):
                    break
            else:
                return item  # already a row of numpy values
        return _to_row(item, self.names, self.types, self.where)


class RowSource(grain.MapDataset):
    """Random-access rows as a leaf Grain ``MapDataset`` (``MapDataset.source`` without its per-read
    byte accounting: that estimates each row's size with a pytree walk, a quarter of the cost of
    reading a 28x28 row, measured, for metrics sporax does not report)."""

    def __init__(self, rows) -> None:
        super().__init__()
        self._rows = rows
        self._len = len(rows)

    def __len__(self) -> int:
        return self._len

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self.slice(index)
        return self._rows[index % self._len]

    def __str__(self) -> str:
        return f"RowSource({type(self._rows).__name__}, {self._len} rows)"


def _to_row(item, names, types, where: str) -> tuple:
    cols = tuple(item) if isinstance(item, (tuple, list)) else (item,)
    if len(cols) != len(names):
        raise RuntimeError(
            f"Invalid Python function, the 'source' of '{where}' should return same number of NumPy arrays as "
            f"specified in column_names, the size of column_names is:{len(names)} and number of returned NumPy array "
            f"is:{len(cols)}; make each item a tuple of {len(names)} array(s) or fix column_names {names}.")
    # numpy scalars pass as they are (0-d values: batching stacks them, Tensors take them)
    cols = tuple([c if isinstance(c, (np.ndarray, np.generic)) else _as_column(c) for c in cols])
    if types is not None:
        cols = tuple(c.astype(t, copy=False) for c, t in zip(cols, types))
    return cols


class _IterableSource(grain.IterDataset):
    """An iterable Python source as a Grain IterDataset (re-read from the start each epoch).

    It heads a stream section (:class:`sporax.dataset._graph.StreamSection`): ``set_slice`` (Grain's
    in-place slicing protocol, called in each worker) makes this copy yield only rows
    ``start::step`` of the source, converting no others.
    """

    def __init__(self, source, names, types, where: str, num_samples, section) -> None:
        super().__init__()
        self.source, self.names, self.types, self.where, self.num_samples = source, names, types, where, num_samples
        self.section = section

    def __iter__(self):
        return _IterableSourceIterator(self)

    def set_slice(self, sl: slice, sequential_slice: bool = False) -> None:
        self.section.start, self.section.step = sl.start or 0, sl.step or 1


class _IterableSourceIterator(grain.DatasetIterator):
    def __init__(self, ds: _IterableSource) -> None:
        super().__init__()
        self._ds = ds
        src = ds.source() if callable(ds.source) and not hasattr(ds.source, "__iter__") else ds.source
        self._it = iter(src)
        self._count = 0  # items read from the source
        self._start, self._step = ds.section.start, ds.section.step

    def __next__(self):
        ds = self._ds
        while True:
            if ds.num_samples is not None and self._count >= ds.num_samples:
                raise StopIteration
            try:
                item = next(self._it)
            except StopIteration:
                raise
            except Exception as e:
                raise row_error(f"the 'source' of '{ds.where}'", ds.names, self._count, None, e) from e
            self._count += 1
            if (self._count - 1) % self._step == self._start:
                return _to_row(item, ds.names, ds.types, ds.where)

    def get_state(self):
        return {"count": self._count}

    def set_state(self, state):
        raise RuntimeError(f"'{self._ds.where}' over an iterable source cannot resume from a saved position.")


class MappableDataset(Dataset):
    """A random-access source with MindSpore's sampling arguments (shuffle, shards, sampler, num_samples)."""

    def _init_sampling(self, where, num_samples, shuffle, sampler, num_shards, shard_id) -> None:
        self.sampler = _samplers.resolve(sampler, shuffle, num_shards, shard_id, num_samples, where)
        self.num_shards, self.shard_id = num_shards, shard_id

    def _rows(self):
        """The random-access rows (``__len__``, ``__getitem__`` -> tuple of arrays)."""
        raise TypeError(f"{type(self).__name__} has no rows.")

    def _build(self, ctx):
        ctx.workers(self.num_parallel_workers, getattr(self, "python_multiprocessing", False))
        return self.sampler._apply(RowSource(self._rows()), ctx)

    def use_sampler(self, new_sampler) -> None:
        """Replace the sampler (as MindSpore's ``use_sampler``)."""
        self.sampler = _samplers.resolve(new_sampler, None, None, None, None, type(self).__name__)
        self._size_cache = None


class GeneratorDataset(MappableDataset):
    """Rows from a Python ``source``: random access (``__getitem__`` + ``__len__``), an iterable, or a
    callable returning an iterator. Each item is a tuple (or list) of one value per column.

    Random-access sources are shuffled by default (``shuffle=None``), sharded with
    ``num_shards``/``shard_id``, and read in ``num_parallel_workers`` processes when
    ``python_multiprocessing`` (the default) and ``num_parallel_workers > 1``.
    """

    def __init__(self, source, column_names=None, column_types=None, schema=None, num_samples=None,
                 num_parallel_workers: int = 1, shuffle=None, sampler=None, num_shards=None, shard_id=None,
                 python_multiprocessing: bool = True, max_rowsize=None) -> None:
        super().__init__([], _check_workers(num_parallel_workers, "GeneratorDataset"))
        where = "GeneratorDataset"
        if column_names is None and schema is None:
            raise ValueError("For 'GeneratorDataset', 'column_names' should be given (a str or a list of str), e.g. "
                             "column_names=['data', 'label'].")
        if column_names is None:
            column_names = [c["name"] if isinstance(c, dict) else c for c in schema]
        self._col_names = _names(column_names, "column_names", where)
        self._types = None
        if column_types is not None:
            if not isinstance(column_types, (list, tuple)) or len(column_types) != len(self._col_names):
                raise ValueError(f"For 'GeneratorDataset', 'column_types' should list one type per column "
                                 f"{self._col_names}, but got {column_types!r}.")
            self._types = [_to_np_dtype(t, where) for t in column_types]
        self.python_multiprocessing = bool(python_multiprocessing)
        self.source = source
        self.random_access = hasattr(source, "__getitem__") and hasattr(source, "__len__")
        if self.random_access:
            self._init_sampling(where, num_samples, shuffle, sampler, num_shards, shard_id)
            return
        if not (hasattr(source, "__iter__") or callable(source)):
            raise TypeError(msg(where, "source", "a random-access object (__getitem__ and __len__), an iterable, or a "
                                "callable returning an iterator", type(source).__name__))
        for arg, value in (("sampler", sampler), ("num_shards", num_shards)):
            if value is not None:
                raise ValueError(f"{arg} is not supported if source does not have attribute '__getitem__'; give a "
                                 "random-access source (__getitem__ and __len__) to shard or sample it.")
        if shuffle:
            raise ValueError("shuffle is not supported if source does not have attribute '__getitem__'; shuffle "
                             "with Dataset.shuffle(buffer_size) instead.")
        self.sampler = None
        self.num_samples = num_samples

    def _rows(self):
        return _Rows(self.source, self._col_names, self._types, "GeneratorDataset")

    def _build(self, ctx):
        if self.random_access:
            return super()._build(ctx)
        ctx.sliceable = False
        one_shot = iter(self.source) is self.source if hasattr(self.source, "__iter__") else False
        if one_shot and (self.num_parallel_workers or 1) > 1:
            warnings.warn("GeneratorDataset: the source is a one-shot iterator (e.g. a generator object), which "
                          "worker processes cannot each re-read; its rows are read in this process. Pass the "
                          "generator function instead of calling it to use num_parallel_workers.", stacklevel=2)
        ctx.section = _graph.StreamSection(sliceable=not one_shot)
        ctx.workers(self.num_parallel_workers, self.python_multiprocessing)
        return _IterableSource(self.source, self._col_names, self._types, "GeneratorDataset", self.num_samples,
                               ctx.section)

    def _static_size(self):
        if not self.random_access:
            if not hasattr(self.source, "__len__"):
                return None
            n = len(self.source)
            return n if self.num_samples is None else min(n, self.num_samples)
        return super()._static_size()


class _Slices:
    """Row ``i`` of each column array."""

    def __init__(self, arrays) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays[0])

    def __getitem__(self, index: int):
        return tuple(a[index] for a in self.arrays)


class NumpySlicesDataset(MappableDataset):
    """Rows sliced along the first axis of ``data``: a list or array (one column), a tuple of them
    (one column each), or a dict ``{name: values}``."""

    def __init__(self, data, column_names=None, num_samples=None, num_parallel_workers: int = 1, shuffle=None,
                 sampler=None, num_shards=None, shard_id=None) -> None:
        super().__init__([], _check_workers(num_parallel_workers, "NumpySlicesDataset"))
        where = "NumpySlicesDataset"
        if isinstance(data, dict):
            names, cols = list(data.keys()), list(data.values())
        elif isinstance(data, tuple):
            names, cols = [f"column_{i}" for i in range(len(data))], list(data)
        elif isinstance(data, (list, np.ndarray)) or hasattr(data, "asnumpy"):
            names, cols = ["column_0"], [data]
        else:
            raise TypeError(msg(where, "data", "a list, tuple, dict or numpy array", type(data).__name__))
        arrays = [_as_column(c) for c in cols]
        if not arrays or any(a.ndim == 0 for a in arrays):
            raise ValueError(f"For '{where}', every column of 'data' should have a first axis to slice along.")
        if len({len(a) for a in arrays}) != 1:
            raise ValueError(f"For '{where}', all columns of 'data' should have the same length, but got "
                             f"{[len(a) for a in arrays]}.")
        if column_names is not None:
            column_names = _names(column_names, "column_names", where)
            if len(column_names) != len(arrays):
                raise ValueError(f"For '{where}', 'column_names' should name the {len(arrays)} column(s) of 'data', "
                                 f"but got {column_names}.")
            names = column_names
        self._col_names = list(names)
        self._arrays = arrays
        self._init_sampling(where, num_samples, shuffle, sampler, num_shards, shard_id)

    def _rows(self):
        return _Slices(self._arrays)
