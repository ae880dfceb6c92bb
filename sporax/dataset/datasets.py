"""``Dataset``: MindSpore's dataset operations, each one Grain transformation on the child's graph.

A ``Dataset`` is a node over its children with the column names of its rows. Nothing runs
until an iterator is created: then :meth:`Dataset._build` turns the tree into a Grain
pipeline (see :mod:`sporax.dataset._graph`), with the seed read from the one RNG module at
that moment, so ``ms.set_seed(s)`` before iterating gives the same order in every run.

Operation          Grain transformation
``map``            ``MapDataset.map_with_index`` / ``IterDataset.map`` (``random_map`` seeding per row)
``batch``          ``.batch(batch_fn=...)`` (+ a map for ``per_batch_map``); over random-access rows
                   the maps/projects right below it run in one ``map_with_index`` per batch
                   (``_graph.FusedBatch``: vectorized for elementwise transforms)
``padded_batch``   ``batch`` whose batch_fn pads the ``pad_info`` columns
``shuffle``        a shuffle buffer over the stream (``BufferShuffleIterDataset``); a per-epoch
                   permutation (``select_from_datasets``) when the buffer holds every row
``repeat``         ``MapDataset.repeat`` / ``RepeatIterDataset``
``take``/``skip``  ``slice`` / ``LimitIterDataset`` / ``filter``
``zip``/``concat`` ``ZipMapDataset`` / ``MapDataset.concatenate`` (and their IterDataset twins)
``split``          ``MapDataset.select_from_datasets``
``filter``         ``IterDataset.filter``
``project``        ``map``; ``rename`` changes names only.
"""

from __future__ import annotations

import builtins
import numbers

import grain
import numpy as np

from sporax.common._validation import check_bool, msg
from sporax.dataset import _graph, config
from sporax.dataset._graph import _BuildCtx, to_iter

__all__ = ["Dataset", "zip"]

_MAX_INT32 = 2147483647


def _names(value, arg: str, where: str) -> list[str]:
    if isinstance(value, str):
        value = [value]
    if not isinstance(value, (list, tuple)) or not all(isinstance(v, str) for v in value) or not value:
        raise TypeError(msg(where, arg, "a str or a non-empty list of str", value))
    if len(set(value)) != len(value):
        raise ValueError(msg(where, arg, "a list of distinct column names", value))
    return list(value)


def _check_kwargs(kwargs, known, where: str) -> None:
    unknown = sorted(set(kwargs) - set(known))
    if unknown:
        raise TypeError(f"For '{where}', got unexpected keyword argument(s) {unknown}.")


def _check_workers(num, where: str):
    if num is None:
        return None
    if not isinstance(num, int) or isinstance(num, bool) or num < 1:
        raise ValueError(msg(where, "num_parallel_workers", "an int >= 1", num))
    return num


class Dataset:
    """Base of every dataset: the operations, iterators and metadata of ``mindspore.dataset``."""

    def __init__(self, children=(), num_parallel_workers=None) -> None:
        self.children = list(children)
        self.num_parallel_workers = num_parallel_workers
        self._col_names: list[str] = []
        self._size_cache = None

    # ---------------------------------------------------------------- building (subclasses)
    def _build(self, ctx: _BuildCtx):
        """This node's Grain dataset (a MapDataset or an IterDataset) for ``ctx``."""
        raise TypeError(f"{type(self).__name__} cannot be iterated: it has no pipeline.")

    def _build_sealed(self, ctx: _BuildCtx):
        """``_build``, ending an open stream section there (see :func:`sporax.dataset._graph.seal`):
        what nodes that are not row by row (batch, shuffle, filter, ...) build on."""
        return _graph.seal(self._build(ctx), ctx)

    def _column_index(self, names, where: str) -> list[int]:
        idx = []
        for n in names:
            if n not in self._col_names:
                raise RuntimeError(f"For '{where}', the column '{n}' does not exist in the dataset columns "
                                   f"{self._col_names}.")
            idx.append(self._col_names.index(n))
        return idx

    # ---------------------------------------------------------------- operations
    def map(self, operations, input_columns=None, output_columns=None, column_order=None, num_parallel_workers=None,
            python_multiprocessing: bool = False, **kwargs) -> Dataset:
        """Apply ``operations`` (a transform, a callable, or a list of them) to ``input_columns``.

        Outputs are named ``output_columns`` (default: the input names) and come first,
        followed by the other columns.
        """
        _check_kwargs(kwargs, ("cache", "callbacks", "max_rowsize", "offload"), "map")
        out = MapDataset(self, operations, input_columns, output_columns, num_parallel_workers,
                         python_multiprocessing)
        return out if column_order is None else out.project(column_order)  # 1.x column_order

    def batch(self, batch_size: int, drop_remainder: bool = False, num_parallel_workers=None, per_batch_map=None,
              input_columns=None, output_columns=None, python_multiprocessing: bool = False, **kwargs) -> Dataset:
        """Stack ``batch_size`` consecutive rows per column (within an epoch)."""
        _check_kwargs(kwargs, ("column_order", "max_rowsize", "pad_info"), "batch")
        out = BatchDataset(self, batch_size, drop_remainder, num_parallel_workers, per_batch_map, input_columns,
                           output_columns, python_multiprocessing, kwargs.get("pad_info"))  # 1.x pad_info
        order = kwargs.get("column_order")
        return out if order is None else out.project(order)  # 1.x column_order

    def padded_batch(self, batch_size: int, drop_remainder: bool = False, num_parallel_workers=None,
                     pad_info=None) -> Dataset:
        """Batch like :meth:`batch`, first padding the columns named in ``pad_info``.

        ``pad_info`` maps a column name to ``(shape, value)``: each row is padded with ``value`` (cast
        to the column's dtype; None: 0) up to ``shape`` and cut where it is longer; a ``None`` shape
        or dimension is the longest in the batch. ``{}`` pads every column to the longest with 0;
        columns not named are batched as they are. E.g.
        ``padded_batch(2, pad_info={"tokens": ([None], -1)})``.
        """
        return BatchDataset(self, batch_size, drop_remainder, num_parallel_workers, None, None, None, False, pad_info,
                            where="padded_batch")

    def shuffle(self, buffer_size: int) -> Dataset:
        """Shuffle the rows (a new order every epoch, fixed by the seed)."""
        return ShuffleDataset(self, buffer_size)

    def repeat(self, count=None) -> Dataset:
        """Repeat the rows ``count`` times (``None`` or -1: forever)."""
        return RepeatDataset(self, count)

    def take(self, count: int = -1) -> Dataset:
        """The first ``count`` rows (-1: all)."""
        return TakeDataset(self, count)

    def skip(self, count: int) -> Dataset:
        """All rows but the first ``count``."""
        return SkipDataset(self, count)

    def project(self, columns) -> Dataset:
        """Keep only ``columns``, in that order."""
        return ProjectDataset(self, columns)

    def rename(self, input_columns, output_columns) -> Dataset:
        """Rename ``input_columns`` to ``output_columns``."""
        return RenameDataset(self, input_columns, output_columns)

    def zip(self, datasets) -> Dataset:
        """Join this dataset's rows with those of ``datasets`` (column names must be distinct)."""
        if isinstance(datasets, Dataset):
            datasets = (datasets,)
        if not isinstance(datasets, (list, tuple)):
            raise TypeError(msg("zip", "datasets", "a Dataset or a tuple of Datasets", type(datasets).__name__))
        return ZipDataset((self, *datasets))

    def concat(self, datasets) -> Dataset:
        """The rows of this dataset followed by those of ``datasets`` (same columns)."""
        if isinstance(datasets, Dataset):
            datasets = [datasets]
        if not isinstance(datasets, (list, tuple)):
            raise TypeError(msg("concat", "datasets", "a Dataset or a list of Datasets", type(datasets).__name__))
        return ConcatDataset([self, *datasets])

    def __add__(self, other: Dataset) -> Dataset:
        return self.concat(other)

    def filter(self, predicate, input_columns=None, num_parallel_workers=None) -> Dataset:
        """Keep the rows where ``predicate(*columns)`` is true."""
        return FilterDataset(self, predicate, input_columns, num_parallel_workers)

    def split(self, sizes, randomize: bool = True) -> list[Dataset]:
        """Split into datasets of ``sizes`` rows (ints) or fractions (floats summing to 1)."""
        return _split(self, sizes, randomize)

    # ---------------------------------------------------------------- iteration
    def create_tuple_iterator(self, columns=None, num_epochs: int = -1, output_numpy: bool = False,
                              do_copy: bool = True):
        """An iterator of rows as lists of Tensors (numpy arrays with ``output_numpy=True``).

        It serves ``num_epochs`` epochs (-1: any number); each ``for`` loop over it is one epoch.
        """
        from sporax.dataset.iterators import TupleIterator

        if columns is not None:
            return self.project(columns).create_tuple_iterator(None, num_epochs, output_numpy, do_copy)
        return TupleIterator(self, num_epochs, output_numpy)

    def create_dict_iterator(self, num_epochs: int = -1, output_numpy: bool = False, do_copy: bool = True):
        """Like :meth:`create_tuple_iterator`, rows as ``{column name: value}``."""
        from sporax.dataset.iterators import DictIterator

        return DictIterator(self, num_epochs, output_numpy)

    def __iter__(self):
        return iter(self.create_tuple_iterator(num_epochs=1))

    # ---------------------------------------------------------------- metadata
    def get_col_names(self) -> list[str]:
        """The column names of the rows."""
        return list(self._col_names)

    def get_dataset_size(self) -> int:
        """Rows (batches after ``batch``) per epoch; counted by one pass when not known up front."""
        if self._size_cache is None:
            n = self._static_size()
            if n is None:
                n = sum(1 for _ in self.create_tuple_iterator(num_epochs=1, output_numpy=True))
            self._size_cache = -1 if n == _graph._INFINITE else n
        return self._size_cache

    def _static_size(self):
        """Rows per epoch if known without reading them (``_graph._INFINITE``: endless), else None."""
        g = self._build(_BuildCtx(seed=config.get_seed()))
        return len(g) if isinstance(g, grain.MapDataset) else None

    def _child_size(self):
        return self.children[0]._static_size()

    def _first_row(self):
        it = self.create_tuple_iterator(num_epochs=1, output_numpy=True)
        try:
            return next(iter(it))
        except StopIteration:
            raise RuntimeError("The dataset is empty: it has no row to read shapes or types from.") from None
        finally:
            it.stop()

    def output_shapes(self) -> list[list[int]]:
        """The shape of each column (of the first row)."""
        return [list(np.shape(v)) for v in self._first_row()]

    def output_types(self) -> list[np.dtype]:
        """The numpy dtype of each column (of the first row)."""
        return [np.asarray(v).dtype for v in self._first_row()]

    def get_batch_size(self) -> int:
        """The batch size of the nearest ``batch`` (1 without one)."""
        node = self
        while node is not None:
            if isinstance(node, BatchDataset):
                return node.batch_size
            node = node.children[0] if len(node.children) == 1 else None
        return 1

    def get_repeat_count(self) -> int:
        node, count = self, 1
        while node is not None:
            if isinstance(node, RepeatDataset):
                count *= node.count
            node = node.children[0] if len(node.children) == 1 else None
        return count


# ---------------------------------------------------------------------------- operation nodes
def _map_layout(cols, ins, outs):
    """Where each result column comes from, as MindSpore orders them: with as many outputs as
    inputs, output ``j`` takes the place of input ``j``; otherwise the outputs come first. Other
    columns follow in order, except those an output name replaces."""
    rest = [i for i, c in enumerate(cols) if c not in ins and c not in outs]
    if len(ins) == len(outs):
        layout = [(True, ins.index(c)) if c in ins else (False, i) for i, c in enumerate(cols)
                  if c in ins or i in rest]
    else:
        layout = [(True, j) for j in range(len(outs))] + [(False, i) for i in rest]
    return layout, [outs[j] if src else cols[j] for src, j in layout]


class MapDataset(Dataset):
    """``Dataset.map``."""

    def __init__(self, child, operations, input_columns, output_columns, num_parallel_workers,
                 python_multiprocessing) -> None:
        super().__init__([child], _check_workers(num_parallel_workers, "map"))
        if not isinstance(operations, (list, tuple)):
            operations = [operations]
        if not operations:
            raise ValueError(msg("map", "operations", "a transform, a callable, or a non-empty list of them", []))
        for op in operations:
            if not callable(op):
                raise TypeError(msg("map", "operations", "transforms or callables", f"a {type(op).__name__}"))
        self.operations = list(operations)
        self.python_multiprocessing = check_bool(python_multiprocessing, "python_multiprocessing", "map")
        cols = child.get_col_names()
        self.input_columns = _names(input_columns, "input_columns", "map") if input_columns is not None else cols[:1]
        self._in_idx = child._column_index(self.input_columns, "map")
        self.output_columns = (_names(output_columns, "output_columns", "map") if output_columns is not None
                               else list(self.input_columns))
        self._layout, self._col_names = _map_layout(cols, self.input_columns, self.output_columns)
        self._random = any(getattr(op, "random", False) for op in self.operations)

    def _build(self, ctx):
        return self._apply_to(self.children[0]._build(ctx), ctx)

    def _row_fn(self, g, ctx) -> _graph.MapRow:
        ctx.workers(self.num_parallel_workers, self.python_multiprocessing)
        n = len(g) if isinstance(g, grain.MapDataset) else None
        return _graph.MapRow(self.operations, self._in_idx, self._layout, self.input_columns,
                             len(self.output_columns), n, ctx.node_seed(per_epoch=n is None), self._random,
                             ctx.section if n is None else None)

    def _apply_to(self, g, ctx):
        fn = self._row_fn(g, ctx)
        return g.map_with_index(fn) if isinstance(g, grain.MapDataset) else g.map(fn)

    def _fused_step(self, g, ctx):
        return self._row_fn(g, ctx)

    def _static_size(self):
        return self._child_size()


class BatchDataset(Dataset):
    """``Dataset.batch``."""

    def __init__(self, child, batch_size, drop_remainder, num_parallel_workers, per_batch_map, input_columns,
                 output_columns, python_multiprocessing, pad_info=None, where="batch") -> None:
        super().__init__([child], _check_workers(num_parallel_workers, where))
        if not isinstance(batch_size, int) or isinstance(batch_size, bool):
            raise TypeError(msg("batch", "batch_size", "an int", batch_size))
        if not 1 <= batch_size <= _MAX_INT32:
            raise ValueError(f"Input batch_size is not within the required interval of [1, {_MAX_INT32}], "
                             f"got {batch_size}.")
        self.batch_size = batch_size
        self.drop_remainder = check_bool(drop_remainder, "drop_remainder", "batch")
        self.python_multiprocessing = check_bool(python_multiprocessing, "python_multiprocessing", "batch")
        if per_batch_map is not None and not callable(per_batch_map):
            raise TypeError(msg("batch", "per_batch_map", "a callable", type(per_batch_map).__name__))
        if per_batch_map is None and (input_columns is not None or output_columns is not None):
            raise ValueError("For 'batch', 'input_columns' and 'output_columns' need 'per_batch_map'.")
        self.per_batch_map = per_batch_map
        cols = child.get_col_names()
        self._col_names = cols
        if per_batch_map is not None:
            self.input_columns = _names(input_columns, "input_columns", "batch") if input_columns else list(cols)
            self._in_idx = child._column_index(self.input_columns, "batch")
            self.output_columns = (_names(output_columns, "output_columns", "batch") if output_columns
                                   else list(self.input_columns))
            self._layout, self._col_names = _map_layout(cols, self.input_columns, self.output_columns)
        self._pads = _pad_spec(pad_info, cols if per_batch_map is None else self._col_names, where)

    def _build(self, ctx):
        # The maps (and projects/renames) right below a batch over random-access rows run inside
        # the batch, per batch: one Grain element per batch instead of a Grain map per row and
        # column, the transforms vectorized over the batch where they are elementwise.
        chain, base = [], self.children[0]
        while self.per_batch_map is None and isinstance(base, (MapDataset, ProjectDataset, RenameDataset)):
            chain.append(base)
            base = base.children[0]
        g = base._build(ctx)
        if chain and isinstance(g, grain.MapDataset) and len(g) != _graph._INFINITE:
            steps = [node._fused_step(g, ctx) for node in reversed(chain)]
            ctx.workers(self.num_parallel_workers, self.python_multiprocessing)
            fn = _graph.FusedBatch(steps, base.get_col_names(), self.children[0].get_col_names(), self._pads,
                                   len(g), self.batch_size, self.drop_remainder)
            return g.batch(self.batch_size, drop_remainder=self.drop_remainder, batch_fn=list).map_with_index(fn)
        for node in reversed(chain):
            g = node._apply_to(g, ctx)
        g = _graph.seal(g, ctx)
        ctx.workers(self.num_parallel_workers, self.python_multiprocessing)
        names = self.children[0].get_col_names()
        if self.per_batch_map is None:
            return g.batch(self.batch_size, drop_remainder=self.drop_remainder,
                           batch_fn=_graph.StackRows(names, self._pads))
        g = g.batch(self.batch_size, drop_remainder=self.drop_remainder, batch_fn=_graph.GatherRows())
        n = len(g) if isinstance(g, grain.MapDataset) else None
        fn = _graph.PerBatch(self.per_batch_map, self._in_idx, self._layout, names, self.output_columns, n, ctx.epoch,
                             self._pads)
        return g.map_with_index(fn) if n is not None else g.map(fn)

    def _static_size(self):
        n = self._child_size()
        if n is None or n == _graph._INFINITE:
            return n
        return n // self.batch_size if self.drop_remainder else -(-n // self.batch_size)


def _pad_spec(pad_info, cols, where: str):
    """``pad_info`` as one ``(shape, value)`` or None per column (None everywhere without pad_info)."""
    if pad_info is None:
        return None
    if not isinstance(pad_info, dict):
        raise TypeError(f"Argument pad_info with value {pad_info!r} is not of type [<class 'dict'>], but got "
                        f"{type(pad_info)}.")
    pads = [(None, None) if not pad_info else None for _ in cols]  # {}: every column to the longest
    for name, spec in pad_info.items():
        if not isinstance(name, str):
            raise TypeError(msg(where, "pad_info", "a dict keyed by column names (str)", name))
        if name not in cols:
            raise RuntimeError(f"Invalid pad_info, column name: {name} does not exist in the columns {cols}.")
        if spec is None:
            spec = (None, None)
        if not isinstance(spec, tuple) or len(spec) != 2:
            raise TypeError(msg(where, f"pad_info['{name}']", "a tuple (pad_shape, pad_value)", spec))
        shape, value = spec
        if shape is not None:
            if not isinstance(shape, list):
                raise TypeError(f"Argument shape in pad_info with value {shape!r} is not of type [<class 'list'>], "
                                f"but got {type(shape)}.")
            for dim in shape:
                if dim is not None and (not isinstance(dim, int) or isinstance(dim, bool)):
                    raise TypeError(msg(where, f"pad_info['{name}'] shape", "a list of ints or None", shape))
                if dim is not None and not 1 <= dim <= _MAX_INT32:
                    raise ValueError(f"Input dim of shape in pad_info is not within the required interval of "
                                     f"[1, {_MAX_INT32}], got {shape}.")
        if value is not None and not isinstance(value, (numbers.Number, str, bytes)):
            raise TypeError(msg(where, f"pad_info['{name}'] pad value", "a number, a str or None", value))
        pads[cols.index(name)] = (None if shape is None else list(shape), value)
    return pads


class ShuffleDataset(Dataset):
    """``Dataset.shuffle``: MindSpore's shuffle buffer of ``buffer_size`` rows, a new order every epoch.

    Rows that stay random-access and fit the buffer (``buffer_size >= `` the dataset size) get a
    full per-epoch permutation instead (:class:`sporax.dataset.samplers.EpochOrder`): a buffer
    holding every row emits a uniform random permutation too, and the result keeps random
    access (exact length, worker processes per batch). Otherwise the rows stream through
    :class:`sporax.dataset._graph.BufferShuffleIterDataset`.
    """

    def __init__(self, child, buffer_size) -> None:
        super().__init__([child])
        if not isinstance(buffer_size, int) or isinstance(buffer_size, bool):
            raise TypeError(msg("shuffle", "buffer_size", "an int", buffer_size))
        if not 2 <= buffer_size <= _MAX_INT32:
            raise ValueError(f"Input buffer_size is not within the required interval of [2, {_MAX_INT32}], "
                             f"got {buffer_size}.")
        self.buffer_size = buffer_size
        self._col_names = child.get_col_names()

    def _build(self, ctx):
        from sporax.dataset.samplers import EpochOrder, _Permutation

        g = self.children[0]._build_sealed(ctx)
        if isinstance(g, grain.MapDataset) and self.buffer_size >= len(g):
            return EpochOrder.select(g, _Permutation(np.arange(len(g)), ctx.node_seed()))
        return _graph.BufferShuffleIterDataset(to_iter(g, ctx), self.buffer_size, ctx.node_seed(per_epoch=True))

    def _static_size(self):
        return self._child_size()


def _count(count, where: str, allow_all: bool) -> int:
    if not isinstance(count, int) or isinstance(count, bool):
        raise TypeError(msg(where, "count", "an int", count))
    if count < (-1 if allow_all else 0) or count > _MAX_INT32:
        lo = -1 if allow_all else 0
        raise ValueError(f"Input count is not within the required interval of [{lo}, {_MAX_INT32}], got {count}.")
    return count


class RepeatDataset(Dataset):
    """``Dataset.repeat``."""

    def __init__(self, child, count) -> None:
        super().__init__([child])
        count = -1 if count is None else _count(count, "repeat", True)
        if count == 0:
            raise ValueError("Input count is not within the required interval of [-1, 2147483647] (0 excluded).")
        self.count = count
        self._col_names = child.get_col_names()

    def _build(self, ctx):
        g = self.children[0]._build_sealed(ctx)
        times = None if self.count == -1 else self.count
        if isinstance(g, grain.MapDataset):
            return g.repeat(times) if len(g) != _graph._INFINITE else g
        return grain.experimental.RepeatIterDataset(g, num_epochs=times)

    def _static_size(self):
        n = self._child_size()
        if n is None or n == _graph._INFINITE:
            return n
        return _graph._INFINITE if self.count == -1 else n * self.count


class TakeDataset(Dataset):
    """``Dataset.take``."""

    def __init__(self, child, count) -> None:
        super().__init__([child])
        self.count = _count(count, "take", True)
        self._col_names = child.get_col_names()

    def _build(self, ctx):
        g = self.children[0]._build_sealed(ctx)
        if self.count == -1:
            return g
        if isinstance(g, grain.MapDataset):
            return g.slice(slice(0, self.count))
        if self.count == 0:
            return g.filter(_graph.SkipFirst(_graph._INFINITE))
        return grain.experimental.LimitIterDataset(g, count=self.count)

    def _static_size(self):
        n = self._child_size()
        return n if n is None or self.count == -1 else min(n, self.count)


class SkipDataset(Dataset):
    """``Dataset.skip``."""

    def __init__(self, child, count) -> None:
        super().__init__([child])
        self.count = _count(count, "skip", False)
        self._col_names = child.get_col_names()

    def _build(self, ctx):
        g = self.children[0]._build_sealed(ctx)
        if isinstance(g, grain.MapDataset):
            return g.slice(slice(self.count, None))
        return g.filter(_graph.SkipFirst(self.count))

    def _static_size(self):
        n = self._child_size()
        return n if n is None or n == _graph._INFINITE else max(0, n - self.count)


class ProjectDataset(Dataset):
    """``Dataset.project``."""

    def __init__(self, child, columns) -> None:
        super().__init__([child])
        self._col_names = _names(columns, "columns", "project")
        self._idx = child._column_index(self._col_names, "project")

    def _build(self, ctx):
        return self._apply_to(self.children[0]._build(ctx), ctx)

    def _apply_to(self, g, ctx):
        return g.map(_graph.Select(self._idx))

    def _fused_step(self, g, ctx):
        return _graph.Select(self._idx)

    def _static_size(self):
        return self._child_size()


class RenameDataset(Dataset):
    """``Dataset.rename``: names only, the rows are untouched."""

    def __init__(self, child, input_columns, output_columns) -> None:
        super().__init__([child])
        ins = _names(input_columns, "input_columns", "rename")
        outs = _names(output_columns, "output_columns", "rename")
        if len(ins) != len(outs):
            raise ValueError(f"For 'rename', 'input_columns' and 'output_columns' should have the same length, but "
                             f"got {len(ins)} and {len(outs)}.")
        child._column_index(ins, "rename")
        mapping = dict(builtins.zip(ins, outs))
        self._col_names = [mapping.get(c, c) for c in child.get_col_names()]
        if len(set(self._col_names)) != len(self._col_names):
            raise ValueError(f"For 'rename', the new column names {self._col_names} should be distinct.")

    def _build(self, ctx):
        return self.children[0]._build(ctx)

    def _apply_to(self, g, ctx):
        return g

    def _fused_step(self, g, ctx):
        return None

    def _static_size(self):
        return self._child_size()


class ZipDataset(Dataset):
    """``Dataset.zip`` / ``mindspore.dataset.zip``: rows side by side, as many as the shortest."""

    def __init__(self, datasets) -> None:
        for d in datasets:
            if not isinstance(d, Dataset):
                raise TypeError(msg("zip", "datasets", "a tuple of Datasets", f"an element of type {type(d).__name__}"))
        super().__init__(datasets)
        names = [c for d in datasets for c in d.get_col_names()]
        dup = sorted({c for c in names if names.count(c) > 1})
        if dup:
            raise RuntimeError(f"Invalid data, duplicate column(s) {dup} already exist when zipping datasets; rename "
                               "them first (Dataset.rename).")
        self._col_names = names

    def _build(self, ctx):
        gs = [d._build_sealed(ctx) for d in self.children]
        if all(isinstance(g, grain.MapDataset) for g in gs):
            m = min(len(g) for g in gs)  # as many rows as the shortest
            return grain.experimental.ZipMapDataset([g.slice(slice(0, m)) for g in gs]).map(_graph.Flatten())
        return grain.experimental.ZipIterDataset([to_iter(g, ctx) for g in gs]).map(_graph.Flatten())


class ConcatDataset(Dataset):
    """``Dataset.concat`` / ``+``."""

    def __init__(self, datasets) -> None:
        for d in datasets:
            if not isinstance(d, Dataset):
                raise TypeError(msg("concat", "datasets", "a list of Datasets",
                                    f"an element of type {type(d).__name__}"))
        super().__init__(datasets)
        first = datasets[0].get_col_names()
        for d in datasets[1:]:
            if d.get_col_names() != first:
                raise RuntimeError(f"Invalid columns, 'column name' or 'column order' of concat datasets should be the "
                                   f"same, but got {first} and {d.get_col_names()}.")
        self._col_names = first

    def _build(self, ctx):
        gs = [d._build_sealed(ctx) for d in self.children]
        if all(isinstance(g, grain.MapDataset) for g in gs):
            return grain.MapDataset.concatenate(gs)
        return grain.experimental.InterleaveIterDataset([to_iter(g, ctx) for g in gs], cycle_length=1)


class FilterDataset(Dataset):
    """``Dataset.filter``: the rows become a stream (its length is known only by counting)."""

    def __init__(self, child, predicate, input_columns, num_parallel_workers) -> None:
        super().__init__([child], _check_workers(num_parallel_workers, "filter"))
        if not callable(predicate):
            raise TypeError(msg("filter", "predicate", "a callable", type(predicate).__name__))
        self.predicate = predicate
        cols = child.get_col_names()
        self.input_columns = _names(input_columns, "input_columns", "filter") if input_columns else list(cols)
        self._idx = child._column_index(self.input_columns, "filter")
        self._col_names = cols

    def _build(self, ctx):
        g = to_iter(self.children[0]._build_sealed(ctx), ctx)
        return g.filter(_graph.Predicate(self.predicate, self._idx, self.input_columns))


class _SplitDataset(Dataset):
    """One part of ``Dataset.split``: the parent's rows at fixed indices."""

    def __init__(self, child, indices) -> None:
        super().__init__([child])
        self._indices = np.asarray(indices, dtype=np.int64)
        self._col_names = child.get_col_names()

    def _build(self, ctx):
        g = self.children[0]._build(ctx)
        return grain.MapDataset.select_from_datasets([g], _Selection(self._indices))


class _Selection:
    """A Grain selection map: index ``i`` -> row ``indices[i]`` of dataset 0."""

    def __init__(self, indices) -> None:
        self.indices = indices

    def __len__(self) -> int:
        return len(self.indices)

    def __getitem__(self, index: int):
        return 0, int(self.indices[index % len(self.indices)])


def _split(ds: Dataset, sizes, randomize: bool) -> list[Dataset]:
    check_bool(randomize, "randomize", "split")
    if not isinstance(sizes, (list, tuple)) or not sizes:
        raise TypeError(msg("split", "sizes", "a non-empty list of ints or of floats", sizes))
    g = ds._build(_BuildCtx(seed=config.get_seed()))
    if not isinstance(g, grain.MapDataset) or len(g) == _graph._INFINITE:
        raise RuntimeError("For 'split', the dataset should have random-access rows of a known count; split before "
                           "'filter', infinite 'repeat' or an iterable GeneratorDataset source.")
    n = len(g)
    if all(isinstance(s, numbers.Integral) and not isinstance(s, bool) for s in sizes):
        if any(s < 1 for s in sizes) or sum(sizes) != n:
            raise ValueError(f"For 'split', int sizes should be >= 1 and sum to the dataset size {n}, but got {sizes}.")
        counts = list(sizes)
    elif all(isinstance(s, float) for s in sizes):
        if any(not 0 < s <= 1 for s in sizes) or abs(sum(sizes) - 1.0) > 1e-6:
            raise ValueError(f"For 'split', float sizes should be in (0, 1] and sum to 1, but got {sizes}.")
        counts = [int(round(s * n)) for s in sizes]
        counts[0] += n - sum(counts)  # as MindSpore: the rounding difference goes to the first split
        if any(c < 1 for c in counts):
            raise RuntimeError(f"For 'split', sizes {sizes} of a dataset of {n} rows give an empty split {counts}.")
    else:
        raise TypeError(msg("split", "sizes", "a list of ints or a list of floats", sizes))
    order = (np.random.default_rng(config.derive_seed(config.get_seed(), 0x5917)).permutation(n) if randomize
             else np.arange(n))
    bounds = np.cumsum([0, *counts])
    return [_SplitDataset(ds, order[bounds[i]:bounds[i + 1]]) for i in range(len(counts))]


def zip(datasets) -> Dataset:  # noqa: A001  (MindSpore's name)
    """``mindspore.dataset.zip``: join the rows of a tuple of datasets."""
    if not isinstance(datasets, (list, tuple)) or not datasets:
        raise TypeError(msg("zip", "datasets", "a non-empty tuple of Datasets", datasets))
    return ZipDataset(tuple(datasets))
