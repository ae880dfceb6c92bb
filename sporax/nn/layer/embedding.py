"""``nn.Embedding``: a lookup table of ``vocab_size`` rows of ``embedding_size`` values.

The table is the Parameter ``embedding_table`` (initializer ``'normal'``, i.e. N(0, 0.01), by
default). With ``padding_idx`` that row starts at zero, as in MindSpore.
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

__all__ = ["Embedding"]


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

    def construct(self, ids) -> Tensor:
        idx = unwrap(ids)
        table = self.embedding_table._jax()
        flat = jnp.reshape(idx, (-1,))
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
