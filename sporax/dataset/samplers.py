"""Samplers of ``mindspore.dataset``: which rows of a random-access source an epoch reads, in which order.

A sampler is a record turned into Grain transformations on the source's ``MapDataset``
(:meth:`Sampler._apply`). A fixed order is a ``slice``; a random order is an epoch's index array
(a numpy permutation or draw, a pure function of the node's seed and the epoch) read through
``MapDataset.select_from_datasets`` (:class:`EpochOrder`). Grain's own ``MapDataset.shuffle``
computes a Feistel index per row, about 25 us each (measured), more than the rest of a 28x28
image pipeline costs per row; one permutation per epoch costs nanoseconds per row.

Shards follow MindSpore's ``DistributedSampler``: shard ``s`` of ``k`` takes positions
``s, s + k, ...`` of the (shuffled, the same on every shard) order, padded by wrapping to
``ceil(n / k)`` rows, so every shard has the same count. When ``k`` does not divide ``n`` the
first ``ceil(n / k) * k - n`` rows of the order are read twice per epoch over all shards (as in
MindSpore 2.10); when it divides, every row is read exactly once. ``offset >= 0`` assigns row
``j`` to shard ``(j + offset) % k`` without padding, as MindSpore does.
"""

from __future__ import annotations

import numbers

import grain
import numpy as np

from sporax.common._validation import check_bool, msg

__all__ = ["Sampler", "SequentialSampler", "RandomSampler", "DistributedSampler", "SubsetRandomSampler",
           "SubsetSampler"]


def _num_samples(num_samples, where: str):
    if num_samples is None:
        return None
    if not isinstance(num_samples, int) or isinstance(num_samples, bool) or num_samples < 0:
        raise ValueError(msg(where, "num_samples", "None or an int >= 0", num_samples))
    return num_samples or None  # MindSpore: 0 means all


class Sampler:
    """Base of the samplers."""

    num_samples = None

    def _apply(self, g: grain.MapDataset, ctx) -> grain.MapDataset:
        """The sampled rows of ``g`` (a source of ``len(g)`` rows)."""
        raise TypeError(f"{type(self).__name__} is not a sampler of sporax.dataset.")

    def _limit(self, g):
        return g if self.num_samples is None else g.slice(slice(0, self.num_samples))

    def __repr__(self) -> str:
        return f"{type(self).__name__}({', '.join(f'{k}={v!r}' for k, v in vars(self).items())})"


class SequentialSampler(Sampler):
    """Rows in order from ``start_index``, ``num_samples`` of them (None: to the end)."""

    def __init__(self, start_index=None, num_samples=None) -> None:
        if start_index is not None and (not isinstance(start_index, int) or isinstance(start_index, bool)
                                        or start_index < 0):
            raise ValueError(msg("SequentialSampler", "start_index", "None or an int >= 0", start_index))
        self.start_index = start_index or 0
        self.num_samples = _num_samples(num_samples, "SequentialSampler")

    def _apply(self, g, ctx):
        return self._limit(g.slice(slice(self.start_index, None)) if self.start_index else g)


class RandomSampler(Sampler):
    """A random order each epoch; with ``replacement``, ``num_samples`` independent draws."""

    def __init__(self, replacement: bool = False, num_samples=None) -> None:
        self.replacement = check_bool(replacement, "replacement", "RandomSampler")
        self.num_samples = _num_samples(num_samples, "RandomSampler")

    def _apply(self, g, ctx):
        n, seed = len(g), ctx.node_seed()
        if self.replacement:
            return EpochOrder.select(g, _Draws(n, self.num_samples or n, seed))
        return EpochOrder.select(g, _Permutation(np.arange(n), seed, self.num_samples))


class EpochOrder:
    """A Grain selection map: position ``i`` of epoch ``e`` -> row ``order(e)[i]`` of dataset 0.

    ``order`` is computed once per epoch (per process: each worker derives the same array) and
    the row index carries the epoch (``e * len(parent)``), so that per-row seeds below differ
    per epoch as they do with Grain's own shuffle.
    """

    def __init__(self, order, parent_len: int) -> None:
        self.order, self.parent_len = order, parent_len
        self.length = order.length
        self._cache: dict = {}

    @classmethod
    def select(cls, g, order):
        return grain.MapDataset.select_from_datasets([g], cls(order, len(g)))

    def __len__(self) -> int:
        return self.length

    def __getitem__(self, index: int):
        epoch, i = divmod(index, self.length)
        rows = self._cache.get(epoch)
        if rows is None:  # threads may compute it twice: same array either way
            rows = self.order(epoch)
            self._cache = {epoch: rows}
        return 0, int(rows[i]) + epoch * self.parent_len

    def __getstate__(self):
        return {**self.__dict__, "_cache": {}}


class _Permutation:
    """``indices`` in a random order per epoch (the first ``count`` of it)."""

    def __init__(self, indices, seed: int, count=None) -> None:
        self.indices, self.seed = np.asarray(indices, np.int64), seed
        self.length = len(self.indices) if count is None else min(count, len(self.indices))

    def __call__(self, epoch: int):
        return np.random.default_rng([self.seed, epoch]).permutation(self.indices)[:self.length]


class _Draws:
    """``count`` rows drawn with replacement per epoch."""

    def __init__(self, n: int, count: int, seed: int) -> None:
        self.n, self.length, self.seed = n, count, seed

    def __call__(self, epoch: int):
        return np.random.default_rng([self.seed, epoch]).integers(self.n, size=self.length)


class _Shard:
    """MindSpore's shard of an (optionally shuffled) order: positions ``s::k``, padded by wrapping."""

    def __init__(self, n, num_shards, shard_id, shuffle_seed, count, offset) -> None:
        self.n, self.shuffle_seed = n, shuffle_seed
        if offset is None or offset < 0:
            per = -(-n // num_shards)
            self.positions = (shard_id + num_shards * np.arange(per, dtype=np.int64)) % max(n, 1)
        else:
            self.positions = np.arange((shard_id - offset) % num_shards, n, num_shards, dtype=np.int64)
        if count is not None:
            self.positions = self.positions[:count]
        self.length = len(self.positions) if n else 0

    def __call__(self, epoch: int):
        if self.shuffle_seed is None:
            return self.positions
        return np.random.default_rng([self.shuffle_seed, epoch]).permutation(self.n)[self.positions]


class DistributedSampler(Sampler):
    """Shard ``shard_id`` of ``num_shards``: positions ``shard_id::num_shards`` of the (shuffled) order,
    padded by wrapping to ``ceil(n / num_shards)`` rows as in MindSpore (see the module docstring)."""

    def __init__(self, num_shards: int, shard_id: int, shuffle: bool = True, num_samples=None, offset: int = -1) -> None:
        _check_shards(num_shards, shard_id, "DistributedSampler")
        if not isinstance(offset, int) or isinstance(offset, bool) or offset < -1:
            raise ValueError(msg("DistributedSampler", "offset", "-1 or an int >= 0", offset))
        self.num_shards, self.shard_id = num_shards, shard_id
        self.shuffle = check_bool(shuffle, "shuffle", "DistributedSampler")
        self.num_samples = _num_samples(num_samples, "DistributedSampler")
        self.offset = offset

    def _apply(self, g, ctx):
        seed = ctx.node_seed() if self.shuffle else None  # the same seed on every shard: one permutation, split
        shard = _Shard(len(g), self.num_shards, self.shard_id, seed, self.num_samples, self.offset)
        return EpochOrder.select(g, shard) if shard.length else g.slice(slice(0, 0))


class SubsetSampler(Sampler):
    """The rows at ``indices``, in that order."""

    def __init__(self, indices, num_samples=None) -> None:
        if isinstance(indices, np.ndarray):
            indices = indices.tolist()
        if not isinstance(indices, (list, tuple)) or not all(
                isinstance(i, numbers.Integral) and not isinstance(i, bool) and i >= 0 for i in indices):
            raise TypeError(msg(type(self).__name__, "indices", "a list of ints >= 0", indices))
        self.indices = [int(i) for i in indices]
        self.num_samples = _num_samples(num_samples, type(self).__name__)

    def _select(self, g):
        n = len(g)
        bad = [i for i in self.indices if i >= n]
        if bad:
            raise ValueError(f"For '{type(self).__name__}', the indices {bad[:5]} are out of range for a dataset of "
                             f"{n} rows.")
        from sporax.dataset.datasets import _Selection

        return grain.MapDataset.select_from_datasets([g], _Selection(np.asarray(self.indices, np.int64)))

    def _apply(self, g, ctx):
        return self._limit(self._select(g))


class SubsetRandomSampler(SubsetSampler):
    """The rows at ``indices``, in a random order each epoch."""

    def _apply(self, g, ctx):
        self._select(g)  # checks the indices
        return EpochOrder.select(g, _Permutation(self.indices, ctx.node_seed(), self.num_samples))


def _check_shards(num_shards, shard_id, where: str) -> None:
    if not isinstance(num_shards, int) or isinstance(num_shards, bool) or num_shards < 1:
        raise ValueError(msg(where, "num_shards", "an int >= 1", num_shards))
    if not isinstance(shard_id, int) or isinstance(shard_id, bool) or not 0 <= shard_id < num_shards:
        raise ValueError(msg(where, "shard_id", f"an int in [0, {num_shards - 1}]", shard_id))


def resolve(sampler, shuffle, num_shards, shard_id, num_samples, where: str) -> Sampler:
    """The sampler of a random-access source from MindSpore's source arguments."""
    if (num_shards is None) != (shard_id is None):
        raise ValueError(f"For '{where}', 'num_shards' and 'shard_id' need to be passed in together, but got "
                         f"num_shards={num_shards!r}, shard_id={shard_id!r}.")
    if shuffle is not None:
        check_bool(shuffle, "shuffle", where)
    if sampler is not None:
        if shuffle is not None or num_shards is not None:
            raise RuntimeError(f"For '{where}', 'sampler' and 'shuffle'/'num_shards' cannot be specified at the same "
                               "time; put the shuffle or shard into the sampler.")
        if isinstance(sampler, (list, tuple, np.ndarray)):
            sampler = SubsetSampler(sampler)
        if not isinstance(sampler, Sampler):
            raise TypeError(msg(where, "sampler", "a sampler of mindspore.dataset or a list of indices",
                                type(sampler).__name__))
        if num_samples is not None:
            sampler.num_samples = _num_samples(num_samples, where)
        return sampler
    if num_shards is not None:
        _check_shards(num_shards, shard_id, where)
        return DistributedSampler(num_shards, shard_id, shuffle is not False, num_samples)
    if shuffle is False:
        return SequentialSampler(num_samples=num_samples)
    return RandomSampler(num_samples=num_samples)
