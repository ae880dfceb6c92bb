"""The random key that layers draw from at run time (Dropout masks, random ops in construct).

API for layer authors (nn.Dropout and friends)::

    from sporax.common._random_state import next_key

    def construct(self, x):
        if not self.training:
            return x
        keep = jax.random.bernoulli(next_key(), self.keep_prob, x.shape)
        ...

``next_key()`` returns a fresh raw JAX key (``uint32[2]``, usable by every ``jax.random``
function) and advances one global key state. Call it once per random draw, inside
``construct`` (not in ``__init__``: a key taken at construction time would be the same on
every step).

Why a state object and not a plain global: the key state is threaded through ``jax.jit``
and ``jax.vjp`` exactly like a Parameter (:mod:`sporax.common._binding`). A compiled train
step (GRAPH_MODE, ``@jit``) takes the key in as an argument and returns the advanced key, so
every step draws a new mask without recompiling; in PYNATIVE_MODE the key advances eagerly.

Seeding: the state starts from the global seed (``set_seed``) the first time it is needed,
and restarts whenever ``set_seed`` is called again, so a seeded program draws the same masks.
"""

from __future__ import annotations

import jax
import numpy as np

from sporax._jax_setup import to_device
from sporax.common import _binding, _rng

__all__ = ["next_key", "key_state", "KeyState"]

# Sub-stream of the seed space reserved for run-time randomness (initializers use stream 0).
_STREAM = 0x52414E44  # "RAND"


class KeyState:
    """The one mutable random key: a value slot shaped like a Parameter's so it can be bound."""

    __slots__ = ("_value", "_shape", "_dtype", "_counter_token")

    name = "sporax random key state"

    def __init__(self) -> None:
        self._value = None
        self._shape = (2,)
        self._dtype = None
        self._counter_token = None

    def _fresh(self) -> bool:
        """Whether the key must be (re)seeded: never seeded, or ``set_seed`` called since."""
        return self._value is None or self._counter_token is not _rng._counter

    def _seed_now(self) -> None:
        self._counter_token = _rng._counter
        # Derived from the global seed without taking a creation count: initializer seeds stay put.
        k0, k1 = _rng.derive_key(_rng._base, _STREAM)
        self._value = to_device(np.array([k0, k1], np.uint32))

    def _jax(self):
        """The current key as an array, seeding it first if needed (the binding protocol)."""
        if not _binding._frames and self._fresh():
            self._seed_now()
        elif self._value is None:
            self._seed_now()
        return self._value

    def next(self):
        """Split the key: keep one half as the new state, return the other for one draw."""
        key = self._jax()
        new_state, sub = jax.random.split(key)
        _binding.check_write(self, new_state)
        self._value = new_state
        return sub


key_state = KeyState()


def next_key():
    """A fresh raw JAX PRNG key (``uint32[2]``) for one random draw; advances the key state."""
    return key_state.next()
