"""The worker-side embedding cache: hot rows of a server-held table, an id-to-slot map, eviction.

``EmbeddingCache(capacity, dim, dtype, vocab_size, policy)`` keeps up to ``capacity`` rows of a
table (and the same rows of the table's optimizer state) in this worker's memory. While a
row is cached the cache holds its master copy: the worker's optimizer updates it in place
(the same optimizer Cell, through :func:`sporax.ps._apply.step_optimizer`), and the row is
written back to its server before its slot is reused (write-back), so no update is lost.

Each step :meth:`prepare` takes the step's unique ids and decides, for each, where it comes
from: a hit, a miss loaded into a free or evicted slot, or, when the cache cannot hold all the
step's rows, a direct read from the server for this step (the *fallback*, whose gradient then
goes to the server). Rows used by the current step are never evicted. ``policy`` is ``"LRU"``
(least recently used, by step) or ``"LFU"`` (fewest uses since loaded, then LRU).

Each worker has its own cache. With several workers a row is held by at most one cache at a
time (the servers track which): ids another worker also looks up in a step are excluded
(``prepare(exclude=...)``) and updated on the server, and a held row another worker needs is
dropped and returned first (:meth:`drop`); see :meth:`sporax.ps.server.ParameterServer.announce`.
A cache holds the only current copy of its updated rows until it writes them back. With
snapshots (``set_ps_context(snapshot_steps=N, snapshot_path=DIR)``) every worker writes back
its dirty rows (kept cached) at each snapshot step, so a snapshot holds them; when a killed
worker is replaced the job rolls back to that snapshot and every cache starts empty again
(:meth:`clear`). Without snapshots a replacement refuses to start when the worker it replaces
held cache rows (their updates are lost).
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np

from sporax.ps._apply import RowStore

__all__ = ["EmbeddingCache", "Prepared", "POLICIES"]

POLICIES = ("LRU", "LFU")


class Prepared(NamedTuple):
    """What one step needs: for the sorted unique ``ids``, a slot (``-1``: fallback) each."""

    ids: np.ndarray
    slots: np.ndarray  # per unique id: its cache slot, or -1 for a direct server read
    load_ids: np.ndarray  # misses to load from the server (values and optimizer state) ...
    load_slots: np.ndarray  # ... into these slots
    evicted: tuple  # (ids, values, {state name: rows}) of dirty rows written back this step


class EmbeddingCache:
    """See the module docstring."""

    def __init__(self, capacity: int, dim: int, dtype, vocab_size: int, policy: str = "LRU") -> None:
        if policy not in POLICIES:
            raise ValueError(f"For 'EmbeddingCache', the 'policy' should be one of {list(POLICIES)}, but got {policy!r}.")
        self.capacity = capacity
        self.dim = dim
        self.policy = policy
        self.store = RowStore(np.zeros((capacity, dim), dtype), {})
        self.frozen: set = set()  # optimizer states that never change (not loaded, not written back)
        self.slot_of = np.full(vocab_size, -1, np.int64)
        self.id_of = np.full(capacity, -1, np.int64)
        self.last_used = np.full(capacity, -1, np.int64)
        self.uses = np.zeros(capacity, np.int64)
        self.dirty = np.zeros(capacity, bool)
        self.step = 0
        self._gb = 0
        self.last: dict = {}
        self.totals = {"lookups": 0, "lookup_hits": 0, "unique": 0, "unique_hits": 0, "fallback": 0,
                       "evictions": 0, "writebacks": 0, "shared": 0, "given_back": 0}

    def _moving(self, slots) -> dict:
        return {k: v[slots].copy() for k, v in self.store.states.items() if k not in self.frozen}

    def add_state(self, name: str, fill_rows) -> None:
        """Track optimizer state ``name`` (rows created lazily from the server on load)."""
        if name not in self.store.states:
            self.store.states[name] = np.zeros((self.capacity, self.dim), self.store.values.dtype)

    def prepare(self, ids: np.ndarray, counts: np.ndarray, exclude: np.ndarray | None = None,
                evict_all: bool = False) -> Prepared:
        """Assign slots for the sorted unique ``ids`` of one step (``counts``: lookups per id).

        ``exclude`` (a mask over ``ids``, none of them cached): ids that another worker also
        looks up this step, read directly instead of cached. ``evict_all``: write back every
        evicted row, not only updated ones (several workers: the server then knows it is no
        longer held here).
        """
        self.step += 1
        slots = self.slot_of[ids] if self.capacity else np.full(len(ids), -1, np.int64)
        hit = slots >= 0
        miss = np.flatnonzero(~hit & ~exclude) if exclude is not None else np.flatnonzero(~hit)
        n_excluded = int(exclude.sum()) if exclude is not None else 0
        in_use = np.zeros(self.capacity, bool)
        in_use[slots[hit]] = True
        free = np.flatnonzero(self.id_of < 0)
        n_take = min(len(miss), len(free) + int(np.count_nonzero(~in_use & (self.id_of >= 0))))
        chosen = free[:n_take]
        if n_take > len(chosen):
            candidates = np.flatnonzero(~in_use & (self.id_of >= 0))
            order = self._victim_order(candidates)
            chosen = np.concatenate([chosen, candidates[order[: n_take - len(chosen)]]])
        victims = chosen[self.id_of[chosen] >= 0]
        dirty = victims if evict_all else victims[self.dirty[victims]]
        evicted = (self.id_of[dirty].copy(), self.store.values[dirty].copy(), self._moving(dirty))
        self.slot_of[self.id_of[victims]] = -1
        load_pos = miss[:n_take]
        load_ids = ids[load_pos]
        self.id_of[chosen] = load_ids
        self.slot_of[load_ids] = chosen
        self.dirty[chosen] = False
        self.uses[chosen] = 0
        slots = slots.copy()
        slots[load_pos] = chosen
        used = slots[slots >= 0]
        self.last_used[used] = self.step
        self.uses[used] += counts[slots >= 0]
        lookups = int(counts.sum())
        self.last = {
            "lookups": lookups, "lookup_hits": int(counts[hit].sum()), "unique": len(ids),
            "unique_hits": int(hit.sum()), "fallback": int(len(miss) - n_take + n_excluded),
            "evictions": int(len(victims)),
            "writebacks": int(len(dirty)), "shared": n_excluded, "given_back": self.totals["given_back"] - self._gb,
        }
        self._gb = self.totals["given_back"]
        for k, v in self.last.items():
            self.totals[k] += v
        return Prepared(ids, slots, load_ids, chosen, evicted)

    def _victim_order(self, candidates: np.ndarray) -> np.ndarray:
        if self.policy == "LFU":
            return np.lexsort((self.last_used[candidates], self.uses[candidates]))
        return np.argsort(self.last_used[candidates], kind="stable")

    def fill(self, slots: np.ndarray, values: np.ndarray, states: dict) -> None:
        """Put rows loaded from the server (values and optimizer state) into ``slots``."""
        self.store.values[slots] = values
        for k, v in states.items():
            self.add_state(k, None)
            self.store.states[k][slots] = v

    def drop(self, ids: np.ndarray, given_back: bool = False) -> tuple:
        """Remove the cached ones of ``ids`` from the cache: their (ids, values, states), by id
        (``given_back``: counted as rows another worker asked for)."""
        ids = np.asarray(ids, np.int64)
        ids = np.sort(ids[self.slot_of[ids] >= 0])
        if given_back:
            self.totals["given_back"] += len(ids)
        slots = self.slot_of[ids]
        out = (ids, self.store.values[slots].copy(), self._moving(slots))
        self.slot_of[ids] = -1
        self.id_of[slots] = -1
        self.dirty[slots] = False
        self.last_used[slots] = -1
        self.uses[slots] = 0
        return out

    def clear(self) -> None:
        """Forget every cached row without writing it back (the job rolled back to a snapshot)."""
        self.slot_of[:] = -1
        self.id_of[:] = -1
        self.last_used[:] = -1
        self.uses[:] = 0
        self.dirty[:] = False

    def cached_ids(self, lo: int, hi: int) -> np.ndarray:
        """The cached ids in ``[lo, hi)``, sorted."""
        ids = self.id_of[self.id_of >= 0]
        return np.sort(ids[(ids >= lo) & (ids < hi)])

    def dirty_rows(self) -> tuple:
        """(ids, values, states) of every row updated since it was loaded or written back; marks them clean."""
        slots = np.flatnonzero(self.dirty & (self.id_of >= 0))
        slots = slots[np.argsort(self.id_of[slots])]  # by id, as the servers' row blocks are
        self.dirty[slots] = False
        return self.id_of[slots].copy(), self.store.values[slots].copy(), self._moving(slots)

    def stats(self) -> dict:
        """Hit rates of the last step and since the start: by lookup and by unique id."""
        def rates(d: dict) -> dict:
            return {
                **d,
                "hit_rate": d["lookup_hits"] / d["lookups"] if d.get("lookups") else 0.0,
                "unique_hit_rate": d["unique_hits"] / d["unique"] if d.get("unique") else 0.0,
            }

        return {"step": rates(dict(self.last)) if self.last else {}, "total": rates(dict(self.totals)),
                "capacity": self.capacity, "cached": int(np.count_nonzero(self.id_of >= 0)), "policy": self.policy}
