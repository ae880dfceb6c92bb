"""Iterators over a dataset: ``create_tuple_iterator`` / ``create_dict_iterator``.

One iterator serves ``num_epochs`` epochs (-1: any number); each ``for`` loop over it ends at an
epoch boundary, and the next loop starts the next epoch, as in MindSpore. Where the whole
pipeline is random-access, one Grain iterator runs over ``repeat(num_epochs)`` of it (Grain
reseeds shuffles per epoch; worker processes start once); otherwise each epoch gets a fresh
Grain iterator of that epoch's graph. Worker processes (``num_parallel_workers > 1`` with
``python_multiprocessing``) are Grain's ``mp_prefetch``: each worker computes every
``num_workers``-th element, and the output order is the same as with one process.
"""

from __future__ import annotations

import contextlib
import sys
import types

import grain

from sporax.common._validation import msg
from sporax.dataset import _graph, config
from sporax.dataset._graph import _BuildCtx

__all__ = ["TupleIterator", "DictIterator"]


@contextlib.contextmanager
def _spawn_without_main():
    """Start worker processes without re-running the user's script in them.

    Grain spawns its workers; spawn would re-import ``__main__`` in each (running a script that
    lacks a ``__main__`` guard, and importing ``mindspore`` there before any alias exists). The
    pipeline itself travels pickled (cloudpickle), so the workers do not need the script.
    """
    main = sys.modules.get("__main__")
    sys.modules["__main__"] = types.ModuleType("__main__")
    try:
        yield
    finally:
        sys.modules["__main__"] = main


_EMPTY = object()


class _Epochs:
    """The rows of a dataset, epoch by epoch (numpy tuples)."""

    def __init__(self, dataset, num_epochs: int, to_device: bool = False) -> None:
        if not isinstance(num_epochs, int) or isinstance(num_epochs, bool) or num_epochs == 0 or num_epochs < -1:
            raise ValueError(msg("create_tuple_iterator", "num_epochs", "-1 or an int >= 1", num_epochs))
        self.dataset = dataset
        self.num_epochs = num_epochs
        self.seed = config.get_seed()
        self.to_device = to_device
        self.epoch = 0  # epochs begun
        self._it = None
        self._pending = []  # the first element, computed while workers start
        self._left = 0  # rows left in the current epoch (persistent stream only)
        ctx = _BuildCtx(seed=self.seed)
        g = dataset._build(ctx)
        self._persistent = isinstance(g, grain.MapDataset)
        if self._persistent:
            n = len(g)
            self._per_epoch = n
            if n != _graph._INFINITE:
                g = g.repeat(None if num_epochs == -1 else num_epochs)
            self._grain_ds = self._finish(g.to_iter_dataset(ctx.read_options()), ctx, to_device)
        else:
            self._first = (g, ctx)

    @staticmethod
    def _finish(it_ds, ctx, to_device: bool):
        it_ds = _graph.seal(it_ds, ctx)  # a stream section that reaches the top runs in its workers
        if ctx.processes > 1 and ctx.sliceable:
            it_ds = _graph.prefetch_in_processes(it_ds, ctx.processes, 2)
        if to_device:
            # Host -> device transfer of each output in a background thread (Grain's thread prefetch),
            # ahead of the consumer: a jnp.asarray per column at the step call costs about 1 ms
            # there (measured) and would hold up the training loop.
            it_ds = grain.experimental.ThreadPrefetchIterDataset(it_ds.map(_graph.ToDevice()), prefetch_buffer_size=2)
        return it_ds

    def _start(self, it_ds):
        # Workers start lazily, in Grain's threads, while the first element is computed: keep
        # the stub __main__ in place until it arrives.
        with _spawn_without_main():
            it = iter(it_ds)
            try:
                self._pending = [next(it)]
            except StopIteration:
                self._pending = [_EMPTY]
        return it

    def begin_epoch(self) -> bool:
        """Start the next epoch; False when all epochs are done."""
        if self.num_epochs != -1 and self.epoch >= self.num_epochs:
            return False
        self.epoch += 1
        if self._persistent:
            if self._it is None:
                self._it = self._start(self._grain_ds)
            self._left = self._per_epoch
            return True
        self.close()
        if self._first is not None:
            g, ctx = self._first
            self._first = None
        else:
            ctx = _BuildCtx(seed=self.seed, epoch=self.epoch - 1)
            g = self.dataset._build(ctx)
        self._it = self._start(self._finish(_graph.to_iter(g, ctx), ctx, self.to_device))
        return True

    def next_row(self):
        """The next row of the current epoch; StopIteration at its end."""
        if self._it is None:
            raise StopIteration
        if self._persistent:
            if self._left <= 0:
                raise StopIteration
            self._left -= 1
        try:
            if self._pending:
                row = self._pending.pop()
                if row is _EMPTY:
                    raise StopIteration
                return row
            return next(self._it)
        except StopIteration:
            self._left = 0
            raise

    def close(self) -> None:
        it, self._it = self._it, None
        if it is not None and hasattr(it, "close"):
            it.close()


class TupleIterator:
    """Rows as lists of Tensors (or of numpy arrays with ``output_numpy=True``)."""

    def __init__(self, dataset, num_epochs: int = -1, output_numpy: bool = False) -> None:
        self._epochs = _Epochs(dataset, num_epochs, to_device=not output_numpy)
        self._output_numpy = output_numpy
        self._columns = dataset.get_col_names()
        self._in_epoch = False

    def __iter__(self):
        return self

    def _next_numpy(self):
        if not self._in_epoch:
            if not self._epochs.begin_epoch():
                self._epochs.close()
                raise RuntimeError("EOF buffer encountered. User tries to fetch data beyond the specified number of "
                                   f"epochs ({self._epochs.num_epochs}); create the iterator with a larger "
                                   "num_epochs, or num_epochs=-1.")
            self._in_epoch = True
        try:
            return self._epochs.next_row()
        except StopIteration:
            self._in_epoch = False
            if self._epochs.num_epochs != -1 and self._epochs.epoch >= self._epochs.num_epochs:
                self._epochs.close()
            raise

    def _convert(self, row):
        if self._output_numpy:
            return list(row)
        from sporax.common.tensor import Tensor

        return [Tensor(v) for v in row]

    def __next__(self):
        return self._convert(self._next_numpy())

    def get_col_names(self) -> list[str]:
        return list(self._columns)

    def stop(self) -> None:
        """Stop the pipeline (worker processes end)."""
        self._epochs.close()

    def __del__(self):
        try:
            self._epochs.close()
        except Exception:  # interpreter shutdown
            pass


class DictIterator(TupleIterator):
    """Rows as ``{column name: Tensor}`` (or numpy arrays)."""

    def __next__(self):
        return dict(zip(self._columns, self._convert(self._next_numpy())))
