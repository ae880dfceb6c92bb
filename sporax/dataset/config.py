"""``mindspore.dataset.config``: the pipeline's seed and defaults.

The seed is the one global seed of :mod:`sporax.common._rng` (``ms.set_seed`` seeds the
pipeline, as in MindSpore); without it the pipeline uses MindSpore's default dataset seed
(5489), so every process and every data-parallel rank shuffles alike by default.
"""

from __future__ import annotations

import numpy as np

from sporax.common import _rng
from sporax.common._validation import check_positive_int

__all__ = ["get_seed", "set_seed", "get_num_parallel_workers", "set_num_parallel_workers", "get_prefetch_size",
           "set_prefetch_size"]

DEFAULT_SEED = 5489
_settings = {"num_parallel_workers": 1, "prefetch_size": 16}
_eager = {"seed": None, "generator": None}


def get_seed() -> int:
    """The seed the dataset pipeline uses: the global seed, else 5489."""
    seed = _rng.get_seed()
    return DEFAULT_SEED if seed is None else seed


def set_seed(seed: int) -> None:
    """Set the global seed (the same as ``mindspore.set_seed``)."""
    _rng.set_seed(seed)


def get_num_parallel_workers() -> int:
    """The default ``num_parallel_workers`` of operations that do not give one."""
    return _settings["num_parallel_workers"]


def set_num_parallel_workers(num: int) -> None:
    _settings["num_parallel_workers"] = check_positive_int(num, "num", "set_num_parallel_workers")


def get_prefetch_size() -> int:
    """How many finished elements the pipeline buffers ahead of the consumer."""
    return _settings["prefetch_size"]


def set_prefetch_size(size: int) -> None:
    _settings["prefetch_size"] = check_positive_int(size, "size", "set_prefetch_size")


def _eager_generator() -> np.random.Generator:
    """The generator of random transforms called eagerly (outside a pipeline), reseeded with the seed."""
    seed = get_seed()
    if _eager["generator"] is None or _eager["seed"] != seed:
        _eager["seed"], _eager["generator"] = seed, np.random.default_rng([seed, 0x5EED])
    return _eager["generator"]


def derive_seed(seed: int, *path: int) -> int:
    """A 32-bit seed for one random node of a pipeline, a pure function of the seed and its position."""
    return int(np.random.SeedSequence([seed, *path]).generate_state(1, np.uint32)[0])
