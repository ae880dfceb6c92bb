"""``ParameterServer``: the actor that owns the master copy of its parameters and their optimizer state.

One actor per server (``sporax.ps`` creates them on Ray as named, detached, restartable
actors). The actor owns everything; workers only hold its handle and a step number:

* ``register``: the parameters (or row blocks of tables) placed on this server, each from its
  Initializer description (an exact window of the full tensor) or from values, and a copy of
  the worker's optimizer Cell (pickled), which then updates them: the same class and math as
  local training (:func:`sporax.ps._apply.step_optimizer`).
* Synchronous steps with versioned, idempotent messages: a worker ``push``es its step-``t``
  gradients (and the cache rows it evicts), then ``commit``s step ``t`` (carried by its next
  ``sync``) once the push reached *every* server. When all workers have committed ``t`` the
  server averages the gradients, applies one optimizer step and moves to ``t + 1``. A push
  or commit for a step already applied is ignored, so a retried message never counts twice;
  an uncommitted push may be replaced by its retry.
* Snapshots: every ``snapshot_steps`` steps the parameters and optimizer state are saved with
  ``sporax.train.save_checkpoint`` (our checkpoint format); the registration is saved once
  beside it. Ray restarts a crashed actor by re-running ``__init__``, which reloads both and
  resumes at the snapshot's step; each reply carries an ``incarnation`` id so workers notice
  the restart and re-send the steps they logged since that snapshot.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import threading
import time
import uuid

import numpy as np

__all__ = ["ParameterServer"]


class ParameterServer:
    """The state of one parameter server (wrapped with ``ray.remote`` by :mod:`sporax.ps`)."""

    def __init__(self, index: int, n_servers: int, job: str, snapshot_path: str = "", snapshot_steps: int = 0) -> None:
        self._init(index, n_servers, job, snapshot_path, snapshot_steps)
        self._restore()

    def reset(self) -> dict:
        """Forget every parameter and step (a new training job on the same actor); snapshots stay on disk."""
        with self.cond:
            self._init(self.index, self.n_servers, self.job, self.snapshot_path, self.snapshot_steps)
            return self._info()

    def _init(self, index: int, n_servers: int, job: str, snapshot_path: str, snapshot_steps: int) -> None:
        self.index = index
        self.n_servers = n_servers
        self.job = job
        self.snapshot_path = snapshot_path
        self.snapshot_steps = snapshot_steps
        self.incarnation = uuid.uuid4().hex
        self.epoch = self._read_epoch()  # bumped by each rollback (a replaced worker): workers then redo steps
        self.members: dict = {}  # worker -> token of the training cell (process) that joined as that worker
        self.snap_parts: dict = {}  # worker -> its worker-local state, flushed for the snapshot of step self.step
        self.rolled_local: dict = {}  # worker -> worker-local state of the snapshot the last rollback restored
        self.rolled_for = None
        if not hasattr(self, "cond"):
            self.cond = threading.Condition()
        self.step = 0
        self.snapshot_step = -1
        self.n_workers = 0
        self.opt = None
        self.dense: dict = {}  # name -> (Parameter of self.opt holding the master value, row_start)
        self.tables: dict = {}  # name -> (RowStore, row_start)
        self.pieces: list = []
        self.pending: dict = {}  # worker -> payload of step self.step
        self.committed: set = set()
        self.applied_steps = 0
        self.finished: set = set()
        self.spec = None
        self.frozen: set = set()  # optimizer states that never change (see sporax.ps._apply.frozen_states)
        self.whole = False  # update every row of a table each step (see sporax.ps._apply.rows_only)
        # Worker caches (several workers): which worker holds each row's master copy (-1: this
        # server), rows asked back from their holder and not yet returned, and this step's
        # announced ids and the answers computed from them.
        self.owner: dict = {}  # table name -> int array over this server's rows
        self.owed: dict = {}  # table name -> bool array over this server's rows
        self.announced: dict = {}  # worker -> {table name: ids} of step self.step
        self.answers: dict = {}  # worker -> {table name: (shared ids, ids to give back)}
        self.flushed: dict = {}  # worker -> the step at which it last wrote back all its cached rows
        # Worker-local parameters (no set_param_ps) with several workers: their gradients are
        # averaged here (MindSpore all-reduces them over the workers), see :meth:`allreduce`.
        self.reduce_parts: dict = {}  # step -> {worker: {name: grad}}
        self.reduced: dict = {}  # step -> {name: mean grad}

    # ------------------------------------------------------------------ registration
    def register(self, spec: dict) -> dict:
        """Create this server's parameters and optimizer from a worker's ``spec`` (first one wins)."""
        with self.cond:
            if self.spec is None:
                self._build(spec)
                self._save_meta()
            elif [p["name"] for p in spec["pieces"]] != [p["name"] for p in self.spec["pieces"]]:
                return {**self._info(), "error": (
                    f"it already serves the parameters {[p['name'] for p in self.spec['pieces']]} of another "
                    f"training cell, not {[p['name'] for p in spec['pieces']]}; one training cell per PS job "
                    "(set SPORAX_PS_JOB to run another, or sporax.ps.shutdown() first)")}
            return self._info()

    def _build(self, spec: dict) -> None:
        import ray.cloudpickle as cloudpickle

        from sporax.common.tensor import _readonly
        from sporax.ps._apply import RowStore, state_params

        self.spec = spec
        self.n_workers = spec["n_workers"]
        from sporax.ps._apply import frozen_states, rows_only

        self.opt = cloudpickle.loads(spec["optimizer"])
        self.whole = not rows_only(self.opt)
        self.frozen = frozen_states(self.opt)
        states = state_params(self.opt)
        by_name = {p.name: p for p in self.opt._parameters}
        for piece in spec["pieces"]:
            name = piece["name"]
            p = by_name[name]
            window = _window(piece["source"], piece["shape"], piece["dtype"], piece["row_start"], piece["row_stop"])
            state_windows = {
                q.name: _window(piece["states"][q.name], piece["shape"], piece["dtype"], piece["row_start"],
                                piece["row_stop"])
                for q in states[name]
            }
            if piece["row_sparse"]:
                self.tables[name] = (RowStore(window, state_windows), piece["row_start"])
                self.owner[name] = np.full(len(window), -1, np.int32)
                self.owed[name] = np.zeros(len(window), bool)
            else:
                p.set_data(_tensor(_readonly(window)), slice_shape=True)
                for q in states[name]:
                    q.set_data(_tensor(_readonly(state_windows[q.name])), slice_shape=True)
                self.dense[name] = (p, piece["row_start"])
            self.pieces.append(name)

    def _info(self) -> dict:
        return {"step": self.step, "incarnation": self.incarnation, "snapshot_step": self.snapshot_step,
                "registered": self.spec is not None, "epoch": self.epoch}

    def _stale(self, epoch) -> dict | None:
        """The reply to a message of a worker that has not yet seen the last rollback (no effect)."""
        if epoch is not None and epoch != self.epoch:
            return {**self._info(), "stale": True}
        return None

    # ------------------------------------------------------------------ workers joining, replaced workers
    def join(self, worker: int, token: str) -> dict:
        """A training cell joins as ``worker``. ``replaced``: another one was that worker before
        (its process died: this one replaces it); ``snapshots``: the complete snapshot steps on
        disk; ``held``: rows of each table the old one held in its cache (their updates are lost
        unless the job rolls back to a snapshot)."""
        with self.cond:
            prev = self.members.get(worker)
            self.members[worker] = token
            info = self._info()
            info["replaced"] = (prev is not None and prev != token) or (
                prev is None and (self.step > 0 or worker in self.pending))
            info["snapshots"] = self._snapshot_steps()
            info["held"] = {name: int(np.count_nonzero(o == worker)) for name, o in self.owner.items()}
            return info

    def rollback(self, step: int, token: str) -> dict:
        """Restore the snapshot of ``step`` (parameters, optimizer state, the workers' flushed cache
        rows and worker-local state) and forget everything after it; every waiting worker is told
        (its replies carry the new ``epoch``) and redoes its steps from there. Idempotent per ``token``."""
        with self.cond:
            if self.rolled_for == token and self.step == step:
                return self._info()
            local = self._load(step)
            self.pending, self.committed, self.announced, self.answers = {}, set(), {}, {}
            self.reduce_parts, self.reduced, self.flushed, self.snap_parts = {}, {}, {}, {}
            for name in self.owner:
                self.owner[name][:] = -1
                self.owed[name][:] = False
            self.rolled_local = local
            self.rolled_for = token
            self.epoch += 1
            self._write_epoch()
            self.cond.notify_all()
            return self._info()

    def rolled_back_local(self, worker: int) -> dict:
        """``worker``'s worker-local state (``{name: array}``) in the snapshot the last rollback restored."""
        with self.cond:
            return {**self._info(), "local": self.rolled_local.get(worker, {})}

    def snapshot_flush(self, worker: int, step: int, rows: dict, local: dict, epoch: int | None = None) -> dict:
        """At a snapshot step, ``worker`` writes back its dirty cache rows (``{name: (ids, values,
        states)}``, still cached) and its worker-local state; once every worker has, this server
        saves the snapshot of ``step``: the job's complete state."""
        with self.cond:
            stale = self._stale(epoch)
            if stale is not None or step != self.step:
                return stale or self._info()
            for name, (ids, values, states) in rows.items():
                store, start = self.tables[name]
                loc = np.asarray(ids, np.int64) - start
                store.values[loc] = values
                for k, v in states.items():
                    store.states[k][loc] = v
            self.snap_parts[worker] = local
            if len(self.snap_parts) >= self.n_workers:
                self._snapshot(self.snap_parts)
                self.snap_parts = {}
            return self._info()

    # ------------------------------------------------------------------ the step protocol
    def status(self, worker: int) -> dict:
        """Where this server is, and whether it holds an uncommitted push of ``worker`` for its step."""
        with self.cond:
            info = self._info()
            info["pending"] = worker in self.pending
            info["committed"] = worker in self.committed
            return info

    def sync(self, worker: int, step: int, commit: int | None, dense: list, timeout: float,
             incarnation: str | None = None, epoch: int | None = None) -> dict:
        """Commit ``worker``'s step ``commit`` (if given), wait until step ``step`` is reached, and
        return the values of the ``dense`` parameters (this server's blocks).

        A worker that knew an earlier ``incarnation`` gets an immediate answer (no commit, no
        wait): this server restarted, and the worker must first replay its logged steps.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            if incarnation is not None and incarnation != self.incarnation:
                return self._info()
            stale = self._stale(epoch)
            if stale is not None:
                return stale
            if commit is not None:
                self._commit(worker, commit)
            while self.step < step:
                if self._stale(epoch) is not None:
                    return {**self._info(), "stale": True}
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(set(range(self.n_workers)) - self.committed)
                    return {**self._info(), "error": f"timed out after {timeout:.1f}s waiting for step {step}: "
                            f"workers {missing} have not committed step {self.step}"}
                self.cond.wait(left)
            info = self._info()
            info["dense"] = {n: np.asarray(self.dense[n][0]._value) for n in dense}
            return info

    def pull_rows(self, rows: dict, state_rows: dict, worker: int | None = None, timeout: float = 0.0,
                  epoch: int | None = None) -> dict:
        """Read rows by global id: ``rows`` values only (direct reads), ``state_rows`` values and
        optimizer state (rows ``worker`` loads into its cache, which then holds their master copy).

        A row that another worker's cache was asked to give back (see :meth:`announce`) is read
        once it has been returned (waiting at most ``timeout`` seconds).
        """
        with self.cond:
            stale = self._stale(epoch)
            if stale is not None:
                return stale
            if self.n_workers > 1 and (rows or state_rows):
                error = self._wait_returned([*rows.items(), *state_rows.items()], timeout)
                if self._stale(epoch) is not None:
                    return {**self._info(), "stale": True}
                if error:
                    return {**self._info(), "error": error}
            out, out_state = {}, {}
            for name, ids in rows.items():
                store, start = self.tables[name]
                out[name] = store.values[ids - start if start else ids]
            for name, ids in state_rows.items():
                store, start = self.tables[name]
                local = np.asarray(ids, np.int64) - start
                out_state[name] = (store.values[local],
                                   {k: v[local] for k, v in store.states.items() if k not in self.frozen})
                if worker is not None:
                    self.owner[name][local] = worker
            return {**self._info(), "rows": out, "state_rows": out_state}

    def _wait_returned(self, requests: list, timeout: float) -> str | None:
        deadline = time.monotonic() + timeout
        epoch = self.epoch
        while self.epoch == epoch:
            waiting = [(name, ids) for name, ids in requests
                       if len(ids) and self.owed[name][np.asarray(ids, np.int64) - self.tables[name][1]].any()]
            if not waiting:
                return None
            left = deadline - time.monotonic()
            if left <= 0:
                return (f"timed out after {timeout:.1f}s waiting for a worker's cache to give back rows of "
                        f"{sorted(n for n, _ in waiting)}")
            self.cond.wait(left)
        return None

    # ------------------------------------------------------------------ worker caches (several workers)
    def announce(self, worker: int, step: int, ids: dict, timeout: float, incarnation: str | None = None,
                 epoch: int | None = None) -> dict:
        """``worker``'s unique ids of step ``step`` per cached table (this server's rows); waits
        until every worker has announced, then answers ``{table: (shared, give_back)}``:

        * ``shared``: this worker's ids that another worker also looks up this step. Their
          update needs every worker's gradient, so it happens here: the worker reads them
          directly and pushes their gradients (they are not cached this step).
        * ``give_back``: rows this worker's cache holds that another worker looks up this step;
          the worker returns them now (:meth:`give_back`) and drops them from its cache.

        The other ids are this worker's alone this step: its cache may hold and update them.
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            if incarnation is not None and incarnation != self.incarnation:
                return self._info()
            stale = self._stale(epoch)
            if stale is not None:
                return stale
            if step != self.step:
                return {**self._info(), "error": f"announce for step {step} but this server is at step {self.step}"}
            self.announced[worker] = ids
            if len(self.announced) >= self.n_workers and not self.answers:
                self._answer()
                self.cond.notify_all()
            while not self.answers:
                if self._stale(epoch) is not None:
                    return {**self._info(), "stale": True}
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(set(range(self.n_workers)) - set(self.announced))
                    return {**self._info(), "error": f"timed out after {timeout:.1f}s waiting for workers {missing} "
                            f"to announce the ids of step {step}"}
                self.cond.wait(left)
            return {**self._info(), "answer": self.answers.get(worker, {})}

    def _answer(self) -> None:
        answers: dict = {w: {} for w in self.announced}
        for name, (store, start) in self.tables.items():
            per = {w: np.asarray(a[name], np.int64) - start for w, a in self.announced.items() if name in a}
            if not per:
                continue
            touched = np.zeros(len(store.values), np.int32)
            last = np.full(len(store.values), -1, np.int32)
            for w, local in per.items():
                touched[local] += 1
                last[local] = w
            owner = self.owner[name]
            for w in answers:
                local = per.get(w, np.zeros(0, np.int64))
                shared = local[touched[local] > 1]
                held = np.flatnonzero(owner == w)
                wanted = held[(touched[held] > 1) | ((touched[held] == 1) & (last[held] != w))]
                owner[wanted] = -1
                self.owed[name][wanted] = True
                answers[w][name] = (shared + start, wanted + start)
        self.answers = answers

    def give_back(self, worker: int, name: str, asked, ids, values, states: dict, epoch: int | None = None) -> dict:
        """``worker`` returns rows its cache held (``ids``: the ``asked`` rows it still had, with
        their values and optimizer state); every ``asked`` row is this server's again."""
        with self.cond:
            stale = self._stale(epoch)
            if stale is not None:
                return stale
            store, start = self.tables[name]
            local = np.asarray(ids, np.int64) - start
            store.values[local] = values
            for k, v in states.items():
                store.states[k][local] = v
            self.owed[name][np.asarray(asked, np.int64) - start] = False
            self.cond.notify_all()
            return self._info()

    def allreduce(self, worker: int, step: int, grads: dict, n_workers: int, timeout: float,
                  mean: bool = True, epoch: int | None = None) -> dict:
        """The mean (the sum without ``mean``) over the ``n_workers`` workers of their step-``step`` gradients ``grads``
        (``{name: grad}``) of worker-local parameters, which no server holds: MindSpore's hybrid
        parameter-server mode all-reduces these over the workers (``DistributedGradReducer``
        skips only the ``is_param_ps`` ones). Waits (at most ``timeout`` seconds) until every
        worker has sent its part; a retried call of a worker replaces its part, or gets the
        result again once computed (the last two steps' results are kept)."""
        deadline = time.monotonic() + timeout
        with self.cond:
            stale = self._stale(epoch)
            if stale is not None:
                return stale
            if step not in self.reduced:
                parts = self.reduce_parts.setdefault(step, {})
                parts[worker] = grads
                if len(parts) >= n_workers:
                    out = {}
                    for name in sorted(set().union(*(p.keys() for p in parts.values()))):
                        gs = [np.asarray(p[name]) for p in parts.values() if name in p]
                        total = sum(g.astype(np.float32) for g in gs)
                        out[name] = (total / float(n_workers) if mean else total).astype(gs[0].dtype)
                    self.reduced[step] = out
                    del self.reduce_parts[step]
                    for s in [s for s in self.reduced if s < step - 1]:
                        del self.reduced[s]
                    for s in [s for s in self.reduce_parts if s < step]:
                        del self.reduce_parts[s]
                    self.cond.notify_all()
            while step not in self.reduced:
                if self._stale(epoch) is not None:
                    return {**self._info(), "stale": True}
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = sorted(set(range(n_workers)) - set(self.reduce_parts.get(step, {})))
                    return {**self._info(), "error": f"timed out after {timeout:.1f}s waiting for workers {missing} "
                            f"to send their step-{step} gradients of worker-local parameters {sorted(grads)}"}
                self.cond.wait(left)
            out = self.reduced[step]
            return {**self._info(), "mean": {name: out[name] for name in grads}}

    def push(self, worker: int, step: int, payload: dict, epoch: int | None = None) -> dict:
        """Store ``worker``'s step-``step`` message: ``{"dense": {name: grad}, "rows": {name: (ids, grads)},
        "writeback": {name: (ids, values, states)}}``. Idempotent (see the module docstring)."""
        with self.cond:
            stale = self._stale(epoch)
            if stale is not None:
                return stale
            info = self._info()
            if step < self.step or worker in self.committed:
                info["duplicate"] = True
                return info
            if step > self.step:
                info["error"] = f"push for step {step} but this server is at step {self.step}"
                return info
            self.pending[worker] = payload
            return info

    def commit(self, worker: int, step: int, epoch: int | None = None) -> dict:
        with self.cond:
            stale = self._stale(epoch)
            if stale is not None:
                return stale
            self._commit(worker, step)
            return self._info()

    def _commit(self, worker: int, step: int) -> None:
        if step != self.step or worker not in self.pending:
            return  # already applied (a retry), or nothing to commit
        self.committed.add(worker)
        if len(self.committed) >= self.n_workers:
            self._apply()
            self.cond.notify_all()

    def _apply(self) -> None:
        from sporax.ps._apply import step_optimizer

        payloads = [self.pending[w] for w in sorted(self.pending)]
        n = float(self.n_workers)
        for w, pl in zip(sorted(self.pending), payloads):
            for name, (ids, values, states) in pl.get("writeback", {}).items():
                store, start = self.tables[name]
                local = np.asarray(ids, np.int64) - start
                store.values[local] = values
                for k, v in states.items():
                    store.states[k][local] = v
                owner = self.owner[name]
                owner[local[owner[local] == w]] = -1  # evicted from that worker's cache: ours again
        dense = {}
        for name in self.dense:
            parts = [pl["dense"][name] for pl in payloads if name in pl.get("dense", {})]
            if parts:
                dense[name] = (sum(np.asarray(g, np.float32) for g in parts) / n).astype(parts[0].dtype)
        rows = {}
        for name, (store, start) in self.tables.items():
            parts = [pl["rows"][name] for pl in payloads if name in pl.get("rows", {})]
            if not parts:
                if self.whole:  # every row moves each step, with a zero gradient here
                    rows[name] = (store, np.zeros(0, np.int64), np.zeros((0,) + store.values.shape[1:],
                                                                          store.values.dtype))
                continue
            ids = np.concatenate([np.asarray(i, np.int64) for i, _ in parts])
            grads = np.concatenate([np.asarray(g) for _, g in parts])
            uniq, inverse = np.unique(ids, return_inverse=True)
            summed = np.zeros((len(uniq),) + grads.shape[1:], grads.dtype)
            np.add.at(summed, inverse, grads)
            rows[name] = (store, uniq - start, summed / np.asarray(n, grads.dtype))
        kept = []
        if self.whole:  # rows held in a worker's cache are updated there: leave them as they are
            for name, (store, _, _) in rows.items():
                held = np.flatnonzero(self.owner[name] >= 0)
                if len(held):
                    kept.append((store, held, store.values[held], {k: v[held] for k, v in store.states.items()}))
        step_optimizer(self.opt, dense, rows, whole=self.whole)
        for store, held, values, states in kept:
            store.values[held] = values
            for k, v in states.items():
                store.states[k][held] = v
        self.step += 1
        self.applied_steps += 1
        self.pending = {}
        self.committed = set()
        self.announced = {}
        self.answers = {}
        self.snap_parts = {}

    # ------------------------------------------------------------------ reading and writing whole values
    def read(self, names: list, step: int | None = None, timeout: float = 0.0) -> dict:
        """This server's blocks of ``names``: ``{name: (row_start, values)}`` (for pulling weights).

        With ``step`` (several workers with caches), first wait until every worker has written
        back its cached rows at that step (:meth:`write_rows` with ``flush_step``).
        """
        deadline = time.monotonic() + timeout
        with self.cond:
            while step is not None and any(self.flushed.get(w, -1) < step for w in range(self.n_workers)):
                left = deadline - time.monotonic()
                if left <= 0:
                    missing = [w for w in range(self.n_workers) if self.flushed.get(w, -1) < step]
                    return {"error": f"timed out after {timeout:.1f}s waiting for workers {missing} to write back "
                            f"their cached rows at step {step} (every worker calls pull_parameters)"}
                self.cond.wait(left)
            out = {}
            for name in names:
                if name in self.tables:
                    store, start = self.tables[name]
                    out[name] = (start, store.values.copy())
                elif name in self.dense:
                    p, start = self.dense[name]
                    out[name] = (start, np.asarray(p._value))
            return out

    def write_rows(self, name: str | None, ids, values, states: dict, worker: int | None = None,
                   flush_step: int | None = None, release: bool = False, epoch: int | None = None) -> dict:
        """Overwrite rows (and their optimizer state) now: a worker's cache flushing its dirty rows
        (``flush_step``: all of them, at that step); ``release``: it no longer holds them."""
        with self.cond:
            stale = self._stale(epoch)
            if stale is not None:
                return stale
            if name is not None:
                store, start = self.tables[name]
                local = np.asarray(ids, np.int64) - start
                store.values[local] = values
                for k, v in states.items():
                    store.states[k][local] = v
                if release and worker is not None:
                    owner = self.owner[name]
                    owner[local[owner[local] == worker]] = -1
            if flush_step is not None and worker is not None:
                self.flushed[worker] = max(flush_step, self.flushed.get(worker, -1))
                self.cond.notify_all()
            return self._info()

    def finish(self, worker: int) -> dict:
        """``worker`` has finished training (server processes serve until every worker has)."""
        with self.cond:
            self.finished.add(worker)
            return self._info()

    def done(self) -> bool:
        with self.cond:
            return self.n_workers > 0 and len(self.finished) >= self.n_workers

    def serving(self, state: bool | None = None) -> bool:
        """Whether an MS_PSERVER process still serves this server (``state`` sets it); the MS_SCHED
        process keeps Ray's head up until none does."""
        with self.cond:
            if state is not None:
                self.served_by = state
            return getattr(self, "served_by", False)

    def ping(self) -> dict:
        with self.cond:
            return {**self._info(), "pid": os.getpid(), "pieces": list(self.pieces)}

    # ------------------------------------------------------------------ snapshots
    def _base(self) -> str:
        return os.path.join(self.snapshot_path, f"{self.job}_server{self.index}")

    def _files(self, step: int | None = None) -> tuple[str, str]:
        """The registration file, and the snapshot of ``step`` (default: the latest on disk)."""
        if step is None:
            steps = self._snapshot_steps()
            step = steps[-1] if steps else -1
        return self._base() + ".meta", f"{self._base()}_s{step}.ckpt"

    def _snapshot_steps(self) -> list:
        """The steps of the complete snapshots on disk (the last two are kept), ascending."""
        if not self.snapshot_path or not os.path.isdir(self.snapshot_path):
            return []
        prefix = os.path.basename(self._base()) + "_s"
        out = []
        for f in os.listdir(self.snapshot_path):
            if f.startswith(prefix) and f.endswith(".ckpt") and f[len(prefix):-5].isdigit():
                out.append(int(f[len(prefix):-5]))
        return sorted(out)

    def _read_epoch(self) -> int:
        path = os.path.join(self.snapshot_path, f"{self.job}_server{self.index}.epoch") if self.snapshot_path else ""
        if path and os.path.exists(path):
            with open(path) as f:
                return int(f.read().strip() or 0)
        return 0

    def _write_epoch(self) -> None:
        if self.snapshot_path:
            from sporax.train._ckpt_io import atomic_write

            data = str(self.epoch).encode()
            atomic_write(self._base() + ".epoch", lambda f: f.write(data))

    def _save_meta(self) -> None:
        if not self.snapshot_path:
            return
        from sporax.train._ckpt_io import atomic_write

        os.makedirs(self.snapshot_path, exist_ok=True)
        meta, _ = self._files()
        data = pickle.dumps(self.spec)
        atomic_write(meta, lambda f: f.write(data))

    def _snapshot(self, local: dict) -> None:
        """Save step ``self.step``: parameters, optimizer state and each worker's ``local`` state."""
        if not self.snapshot_path:
            return
        from sporax.common.tensor import Tensor
        from sporax.train.serialization import save_checkpoint

        _, ckpt = self._files(self.step)
        items = []
        for q in _all_params(self.opt):
            if q._value is not None:
                items.append({"name": q.name, "data": Tensor._wrap(np.asarray(q._value))})
        for name, (store, _) in self.tables.items():
            items.append({"name": name, "data": Tensor._wrap(store.values)})
            for k, v in store.states.items():
                items.append({"name": k, "data": Tensor._wrap(v)})
        for w, state in sorted(local.items()):
            for name, v in state.items():
                items.append({"name": f"{_LOCAL}{w}/{name}", "data": Tensor._wrap(np.asarray(v))})
        save_checkpoint(items, ckpt, append_dict={"sporax_ps_step": self.step})
        self.snapshot_step = self.step
        for old in self._snapshot_steps()[:-2]:
            with contextlib.suppress(OSError):
                os.remove(self._files(old)[1])

    def _restore(self) -> None:
        if not self.snapshot_path:
            return
        meta, ckpt = self._files()
        if not os.path.exists(meta):
            return
        with open(meta, "rb") as f:
            self._build(pickle.loads(f.read()))
        if os.path.exists(ckpt):
            self._load(None)

    def _load(self, step: int | None) -> dict:
        """Load the snapshot of ``step`` (the latest: None) into this server; its workers' local state."""
        from sporax.common.tensor import _readonly
        from sporax.train.serialization import load_checkpoint

        _, ckpt = self._files(step)
        if not os.path.exists(ckpt):
            raise RuntimeError(f"parameter server {self.index} has no snapshot of step {step} in {self.snapshot_path!r}")
        saved = load_checkpoint(ckpt)
        by_name = {q.name: q for q in _all_params(self.opt)}
        table_states = {k: (store, k) for store, _ in self.tables.values() for k in store.states}
        local: dict = {}
        for name, value in saved.items():
            if name == "sporax_ps_step":
                continue
            array = np.array(value.asnumpy())
            if name.startswith(_LOCAL):
                w, key = name[len(_LOCAL):].split("/", 1)
                local.setdefault(int(w), {})[key] = array
            elif name in self.tables:
                self.tables[name][0].values[...] = array
            elif name in table_states:
                store, k = table_states[name]
                store.states[k][...] = array
            elif name in by_name:
                by_name[name].set_data(_tensor(_readonly(array)), slice_shape=True)
        self.step = int(np.asarray(saved["sporax_ps_step"].asnumpy()))
        self.snapshot_step = self.step
        return local


_LOCAL = "sporax_ps_local/"


def _all_params(opt) -> list:
    from sporax.common import _binding

    return _binding.walk_cell(opt)[0]


def _tensor(array):
    from sporax.common.tensor import Tensor

    return Tensor._wrap(array)


def _window(source, shape, dtype_name, row_start: int, row_stop: int) -> np.ndarray:
    """Rows ``[row_start, row_stop)`` of a parameter, as a writable array.

    ``source`` is ``("init", initializer, seed)`` (the exact window generator: the values equal
    local initialization) or ``("values", array)`` (already this window).
    """
    from sporax.common import dtype as mstype

    dtype = mstype.from_name(dtype_name)
    shape = tuple(shape)
    if source[0] == "init":
        _, init, seed = source
        offsets = (row_start,) + (0,) * (len(shape) - 1)
        sizes = (row_stop - row_start,) + shape[1:] if shape else ()
        if not shape:
            offsets = ()
        return np.array(init.window(seed, shape, dtype, offsets, sizes))
    return np.array(source[1])
