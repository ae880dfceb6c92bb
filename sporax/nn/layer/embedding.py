"""``nn.Embedding`` and ``nn.EmbeddingLookup``: tables of ``vocab_size`` rows of ``embedding_size`` values.

The table is the Parameter ``embedding_table`` (initializer ``'normal'``, i.e. N(0, 0.01), by
default). With ``padding_idx`` that row starts at zero, as in MindSpore. ``EmbeddingLookup``
is the parameter-server aware one (MindSpore 1.x): with ``set_param_ps()`` its table lives on
the servers, and ``vocab_cache_size > 0`` keeps the hot rows in a worker-side cache.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common import dtype as mstype
from sporax.common._validation import check_bool, check_int, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.nn.layer._utils import check_dtype
from sporax.ops import primitive as _primitive

__all__ = ["Embedding", "EmbeddingLookup"]


class Embedding(Cell):
    """``Embedding(vocab_size, embedding_size, use_one_hot=False, embedding_table='normal',
    dtype=mstype.float32, padding_idx=None)``: ids of any shape -> ``ids.shape + (embedding_size,)``.

    ``use_one_hot=True`` computes the lookup as ``one_hot(ids) @ table`` (same values; it
    trades memory for a matmul, which some accelerators prefer).
    """

    def __init__(self, vocab_size: int, embedding_size: int, use_one_hot: bool = False,
                 embedding_table="normal", dtype=mstype.float32, padding_idx: int | None = None) -> None:
        super().__init__()
        from sporax.common.initializer import initializer

        self.vocab_size = check_int(vocab_size, "vocab_size", "Embedding")
        self.embedding_size = check_int(embedding_size, "embedding_size", "Embedding")
        self.use_one_hot = check_bool(use_one_hot, "use_one_hot", "Embedding")
        check_dtype(dtype, "Embedding")
        if dtype not in mstype.number_type:
            raise TypeError(msg("Embedding", "dtype", "a number dtype", dtype))
        self.dtype = dtype
        table = initializer(embedding_table, [vocab_size, embedding_size])
        self.padding_idx = padding_idx
        if padding_idx is not None:
            check_int(padding_idx, "padding_idx", "Embedding")
            if not 0 <= padding_idx < vocab_size:
                raise ValueError(msg("Embedding", "padding_idx", f"in the range [0, {vocab_size})", padding_idx))
            if table.init is not None:
                table = table.init_data()
            values = table.asnumpy()
            values[padding_idx] = 0
            table = Tensor(np.asarray(values), table.dtype)
        self.embedding_table = Parameter(table, name="embedding_table")
        from sporax.ops.operations import Gather, MatMul

        self.gather = Gather()  # MindSpore's attributes: ``embedding.gather.shard(...)``
        self.array_mul = MatMul()

    def construct(self, ids) -> Tensor:
        idx = unwrap(ids)
        flat = jnp.reshape(idx, (-1,))
        if _primitive._shard_scope:  # a semi-auto parallel step is traced: the strategies apply
            if self.use_one_hot:
                one_hot = Tensor._wrap(jax.nn.one_hot(flat, self.vocab_size, dtype=self.embedding_table.dtype.np_dtype))
                rows = self.array_mul(one_hot, self.embedding_table)
            else:
                rows = self.gather(self.embedding_table, Tensor._wrap(flat), 0)
            return Tensor._wrap(jnp.reshape(rows._jax(), tuple(idx.shape) + (self.embedding_size,)))
        table = self.embedding_table._jax()
        if self.use_one_hot:
            one_hot = jax.nn.one_hot(flat, self.vocab_size, dtype=table.dtype)
            rows = jnp.matmul(one_hot, table)
        else:
            rows = jnp.take(table, flat, axis=0)
        return Tensor._wrap(jnp.reshape(rows, tuple(idx.shape) + (self.embedding_size,)))

    def extend_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, embedding_size={self.embedding_size}, use_one_hot={self.use_one_hot}, "
            f"embedding_table={self.embedding_table}, dtype={self.dtype}, padding_idx={self.padding_idx}"
        )


_TARGETS = ("CPU", "DEVICE")
_SLICE_MODES = ("batch_slice", "field_slice", "table_row_slice", "table_column_slice")


def _check_ids(idx, vocab_size: int, where: str) -> None:
    """ValueError for ids outside ``[0, vocab_size)`` (when they are concrete; a trace cannot check)."""
    if isinstance(idx, jax.core.Tracer):
        return
    a = np.asarray(idx)
    if not np.issubdtype(a.dtype, np.integer):
        raise TypeError(msg(where, "input_indices", "an int Tensor", f"dtype {a.dtype}"))
    if a.size and (a.min() < 0 or a.max() >= vocab_size):
        bad = a[(a < 0) | (a >= vocab_size)]
        raise ValueError(msg(where, "input_indices", f"ids in the range [0, {vocab_size})",
                             f"ids such as {bad.reshape(-1)[:5].tolist()}"))


class EmbeddingLookup(Cell):
    """``EmbeddingLookup(vocab_size, embedding_size, param_init='normal', target='CPU',
    slice_mode='batch_slice', max_norm=None, sparse=True, vocab_cache_size=0, dtype=float32,
    *, cache_policy='LRU')``: ids of any shape -> ``ids.shape + (embedding_size,)``.

    ``max_norm`` rescales each looked-up row to a norm of at most ``max_norm``. ``sparse``
    marks the table's gradient as de-duplicated rows (``embedding_table.unique``): in
    parameter-server mode the servers then move only the rows a step uses (a dense table is
    pulled and pushed whole). ``target`` and ``slice_mode`` are MindSpore's placement hints
    (validated; one process computes the lookup the same way for all of them).

    ``vocab_cache_size > 0`` sets ``embedding_table.cache_enable = True`` and
    ``cache_shape = [vocab_cache_size, embedding_size]``; in parameter-server mode (it then
    also calls ``set_param_ps()``) the worker keeps up to that many hot rows in a cache
    (:mod:`sporax.ps.cache`, eviction by ``cache_policy``: ``'LRU'`` or ``'LFU'``) and
    :meth:`cache_stats` reports hit rates. Outside that mode the flags are recorded and the
    lookup is the plain local one.
    """

    def __init__(self, vocab_size: int, embedding_size: int, param_init="normal", target: str = "CPU",
                 slice_mode: str = "batch_slice", max_norm=None, sparse: bool = True, vocab_cache_size: int = 0,
                 dtype=mstype.float32, *, cache_policy: str = "LRU") -> None:
        super().__init__()
        from sporax import context
        from sporax.common.initializer import initializer
        from sporax.ps.cache import POLICIES

        where = "EmbeddingLookup"
        check_int(vocab_size, "vocab_size", where)
        check_int(embedding_size, "embedding_size", where)
        for arg, value in (("vocab_size", vocab_size), ("embedding_size", embedding_size)):
            if value <= 0:
                raise ValueError(msg(where, arg, "an int > 0", value))
        if not isinstance(target, str) or target not in _TARGETS:
            raise ValueError(msg(where, "target", f"one of {list(_TARGETS)}", target))
        if not isinstance(slice_mode, str) or slice_mode not in _SLICE_MODES:
            raise ValueError(msg(where, "slice_mode", f"one of {list(_SLICE_MODES)}", slice_mode))
        if max_norm is not None:
            if isinstance(max_norm, bool) or not isinstance(max_norm, (int, float)):
                raise TypeError(msg(where, "max_norm", "a float or None", max_norm))
            if max_norm <= 0:
                raise ValueError(msg(where, "max_norm", "a float > 0", max_norm))
        check_bool(sparse, "sparse", where)
        check_int(vocab_cache_size, "vocab_cache_size", where)
        if not 0 <= vocab_cache_size <= vocab_size:
            raise ValueError(msg(where, "vocab_cache_size", f"an int in [0, vocab_size={vocab_size}]",
                                 vocab_cache_size))
        if not isinstance(cache_policy, str) or cache_policy.upper() not in POLICIES:
            raise ValueError(msg(where, "cache_policy", f"one of {list(POLICIES)}", cache_policy))
        check_dtype(dtype, where)
        if dtype not in mstype.float_type:
            raise TypeError(msg(where, "dtype", "a float dtype", dtype))
        self.vocab_size = vocab_size
        self.embedding_size = embedding_size
        self.target = target
        self.slice_mode = slice_mode
        self.max_norm = None if max_norm is None else float(max_norm)
        self.sparse = sparse
        self.vocab_cache_size = vocab_cache_size
        self.cache_policy = cache_policy.upper()
        self.dtype = dtype
        self.embedding_table = Parameter(initializer(param_init, [vocab_size, embedding_size], dtype),
                                         name="embedding_table")
        self.embedding_table.unique = sparse
        from sporax.ops.operations import Gather

        self.gatherv2 = Gather()  # MindSpore's attribute: ``lookup.gatherv2.shard(...)``
        d = self.__dict__
        d["_ps_mode"] = None
        d["_ps_cache_obj"] = None
        if vocab_cache_size > 0:
            self.embedding_table.cache_enable = True
            self.embedding_table.cache_shape = [vocab_cache_size, embedding_size]
            if context._ps_active():
                self.embedding_table.set_param_ps()

    @property
    def _ps_cache(self):
        """The worker-side cache (parameter-server mode with ``vocab_cache_size > 0``), made on first use."""
        d = self.__dict__
        if d["_ps_cache_obj"] is None and self.vocab_cache_size > 0 and self.embedding_table.is_param_ps:
            from sporax.ps.cache import EmbeddingCache

            d["_ps_cache_obj"] = EmbeddingCache(self.vocab_cache_size, self.embedding_size,
                                                self.dtype.np_dtype, self.vocab_size, self.cache_policy)
        return d["_ps_cache_obj"]

    def cache_stats(self) -> dict:
        """Hit rates of the cache: ``{"step": {...}, "total": {...}, "capacity", "cached", "policy"}``.

        ``hit_rate`` counts lookups (repeated ids included) whose row was cached when the step
        began; ``unique_hit_rate`` counts distinct ids. Also ``fallback`` (ids read directly
        from the servers: the cache could not hold them, or another worker used them too),
        ``shared`` (of those, ids another worker also looked up), ``given_back`` (cached rows
        handed to another worker), ``evictions`` and ``writebacks``. Empty dicts before the
        first step, or without a cache.
        """
        cache = self._ps_cache
        if cache is None:
            return {"step": {}, "total": {}, "capacity": 0, "cached": 0, "policy": self.cache_policy}
        return cache.stats()

    def _ps_begin(self, mode: str, counter, work=None, positions=None) -> None:
        d = self.__dict__
        d["_ps_mode"] = mode
        d["_ps_counter"] = counter
        d["_ps_work"] = work
        d["_ps_positions"] = positions
        d["_ps_call"] = 0
        if mode == "record":
            d["_ps_ids"] = []

    def construct(self, input_indices) -> Tensor:
        d = self.__dict__
        idx = unwrap(input_indices)
        mode = d["_ps_mode"]
        if mode == "record":
            _check_ids(idx, self.vocab_size, "EmbeddingLookup")
            d["_ps_ids"].append(np.asarray(idx))
            counter = d["_ps_counter"]
            if counter["left"] is not None:
                counter["left"] -= 1
                if counter["left"] <= 0:
                    from sporax.ps.worker import _Discovered

                    raise _Discovered()
            return Tensor._wrap(jnp.zeros(tuple(idx.shape) + (self.embedding_size,), self.dtype.np_dtype))
        if mode == "run":
            i = d["_ps_call"]
            if i >= len(d["_ps_positions"]):
                raise RuntimeError(
                    f"EmbeddingLookup '{self.embedding_table.name}' was called more often in this step than when "
                    "its ids were collected; a server-held table must be looked up the same number of times each step."
                )
            d["_ps_call"] = i + 1
            rows = jnp.take(d["_ps_work"]._jax(), d["_ps_positions"][i], axis=0)
        elif _primitive._shard_scope:  # a semi-auto parallel step is traced: the strategy applies
            flat = Tensor._wrap(jnp.reshape(idx, (-1,)))
            rows = jnp.reshape(self.gatherv2(self.embedding_table, flat, 0)._jax(),
                               tuple(idx.shape) + (self.embedding_size,))
        else:
            _check_ids(idx, self.vocab_size, "EmbeddingLookup")
            rows = jnp.take(self.embedding_table._jax(), idx, axis=0)
        if self.max_norm is not None:
            norm = jnp.sqrt(jnp.sum(rows * rows, axis=-1, keepdims=True))
            rows = rows * jnp.minimum(1.0, self.max_norm / jnp.maximum(norm, 1e-12)).astype(rows.dtype)
        return Tensor._wrap(rows)

    def extend_repr(self) -> str:
        return (
            f"vocab_size={self.vocab_size}, embedding_size={self.embedding_size}, target={self.target}, "
            f"slice_mode={self.slice_mode}, max_norm={self.max_norm}, sparse={self.sparse}, "
            f"vocab_cache_size={self.vocab_cache_size}"
        )
