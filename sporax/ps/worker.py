"""The worker side of a parameter-server step: pull, forward and backward, push, commit.

A ``TrainOneStepCell`` whose weights include ``set_param_ps()`` parameters runs
:func:`train_step` instead of its local step (PYNATIVE or GRAPH_MODE alike; the step is
eager because it talks to the servers between the passes):

1. ``sync`` every server: commit the previous step (see :mod:`sporax.ps.server`), wait until
   all workers have, and pull the dense server parameters.
2. Find the ids each server-held ``EmbeddingLookup`` looks up, with a forward pass that
   stops as soon as every such layer has seen its ids (nothing it does is kept).
3. Get those rows: from the layer's cache, loaded into it, or read directly from the servers.
4. Forward and backward (``_differentiate_eager``) with each table replaced by the array of
   its step's unique rows, so the table's gradient is the de-duplicated row gradient.
5. ``push`` the server parameters' gradients (rows sliced per server) and evicted cache rows,
   logged until a snapshot covers them; with several workers, average the gradients of the
   worker-local parameters (no ``set_param_ps``) over the workers through the servers
   (``ParameterServer.allreduce``: MindSpore all-reduces them); update local parameters and
   cached rows with this worker's optimizer (the same Cell); the commit rides on the next
   step's ``sync``.

Workers hold only handles, placeholders and step numbers; servers hold the state.
"""

from __future__ import annotations

import atexit
import contextlib
import time
import uuid
import warnings

import jax.numpy as jnp
import numpy as np

from sporax import context
from sporax.common import _binding
from sporax.common.tensor import Tensor
from sporax.ps import cluster
from sporax.ps._apply import bucket, frozen_states, rows_only, state_params
from sporax.ps._placement import place, split_rows, stable_server

__all__ = ["Runtime", "runtime", "train_step", "current_step", "pull_parameters", "shutdown", "cache_stats"]


class _Discovered(Exception):
    """Raised by the last server-held EmbeddingLookup to see its ids: the rest of the pass is not needed."""


class _RolledBack(RuntimeError):
    """A server rolled the job back to a snapshot (a replaced worker): this worker redoes its steps from there."""


# Messages that carry the worker's epoch: a server that rolled back since ignores them and says so.
_EPOCHED = frozenset({"sync", "push", "commit", "announce", "allreduce", "pull_rows", "give_back", "write_rows",
                      "snapshot_flush"})


# ---------------------------------------------------------------------------------- the runtime
class Runtime:
    """This process's connection: Ray, the server handles, and the bound on every wait."""

    def __init__(self) -> None:
        cluster.connect(self.timeout)
        self.ray = cluster.import_ray()
        self.job = cluster.job_name()
        self.n_servers = cluster.n_servers()
        self.n_workers = cluster.n_workers()
        self.worker = cluster.worker_id()
        self.servers = cluster.server_handles()
        self.held: dict = {k: [] for k in range(self.n_servers)}  # server -> names it holds (for errors)
        self.plans: list = []
        self.trained_locally: dict = {}  # id -> Parameter a PS training cell updates on this worker
        self.bytes = {"pull": 0, "push": 0}
        self.dead: set = set()  # servers found dead: shutdown() no longer waits for them
        self.epochs: dict = {}  # server -> the rollback epoch this worker is at

    @property
    def timeout(self) -> float:
        """The bound on every wait for a server (``set_ps_context(server_timeout=...)``, read live)."""
        return float(context._state.ps.server_timeout)

    def _fail(self, k: int, what: str, cause) -> RuntimeError:
        names = sorted(set(self.held.get(k, []))) or ["(no parameters registered yet)"]
        return RuntimeError(
            f"Parameter server {k} ('{cluster.server_name(k)}') {what}: {cause}. It held parameters {names}; "
            f"training cannot continue without them (restart it, or raise set_ps_context(server_timeout=...))."
        )

    def call_all(self, calls: list) -> list:
        """Run ``[(server, method, args)]`` concurrently; retry a restarting server until the timeout."""
        ray = self.ray
        deadline = time.monotonic() + self.timeout
        servers = self.servers

        def send(k, method, args):
            kw = {"epoch": self.epochs[k]} if method in _EPOCHED and k in self.epochs else {}
            return getattr(servers[k], method).remote(*args, **kw)

        def stale(k, method, r) -> bool:
            return (method in _EPOCHED and type(r) is dict and k in self.epochs
                    and (r.get("stale") or r.get("epoch", self.epochs[k]) != self.epochs[k]))

        first = [send(*c) for c in calls]
        try:  # the common case: one ray.get for every reply, no per-call bookkeeping
            results = ray.get(first, timeout=self.timeout + 5.0)
        except (ray.exceptions.GetTimeoutError, ray.exceptions.RayActorError):
            results = None
        if results is not None:
            if any(stale(c[0], c[1], r) for c, r in zip(calls, results)):
                raise _RolledBack("the parameter servers rolled the job back to a snapshot")
            for k, r in enumerate(results):
                if type(r) is dict and "error" in r:
                    raise self._fail(calls[k][0], "refused the step", r["error"])
            return results
        results = [None] * len(calls)
        todo = list(range(len(calls)))
        refs = dict(enumerate(first))
        while todo:
            retry = []
            for i in todo:
                k = calls[i][0]
                left = deadline - time.monotonic()
                try:
                    results[i] = ray.get(refs[i], timeout=max(left, 0.01) + 5.0)
                except ray.exceptions.GetTimeoutError as e:
                    raise self._fail(k, f"did not answer within {self.timeout:.1f}s", type(e).__name__) from None
                except ray.exceptions.RayActorError as e:
                    if time.monotonic() >= deadline:
                        self.dead.add(k)
                        raise self._fail(k, f"is dead (no answer for {self.timeout:.1f}s)",
                                         str(e).splitlines()[0]) from None
                    retry.append(i)
                    continue
                if stale(k, calls[i][1], results[i]):
                    raise _RolledBack("the parameter servers rolled the job back to a snapshot")
                if isinstance(results[i], dict) and "error" in results[i]:
                    raise self._fail(k, "refused the step", results[i]["error"])
            if retry:
                time.sleep(0.2)
                refs.update({i: send(*calls[i]) for i in retry})
            todo = retry
        return results

    def shutdown(self, kill_servers: bool = True) -> None:
        """Flush caches, and kill this job's servers (``kill_servers``); shut Ray down if this process started it."""
        ray = self.ray
        for plan in self.plans if not self.dead else ():
            with contextlib.suppress(Exception):
                plan.finish()
        if self.plans and not self.dead:
            with contextlib.suppress(Exception):
                self.call_all([(k, "finish", (self.worker,)) for k in range(self.n_servers)])
        if kill_servers:
            for h in self.servers:
                with contextlib.suppress(Exception):
                    ray.kill(h, no_restart=True)
        if cluster.started_here() and ray.is_initialized():
            ray.shutdown()
            cluster._state["started"] = False


_RUNTIME: dict = {}


def runtime() -> Runtime:
    """The runtime of this process's PS job (created, and Ray joined or started, on first use)."""
    rt = _RUNTIME.get("rt")
    if rt is None or rt.job != cluster.job_name():
        rt = _RUNTIME["rt"] = Runtime()
    return rt


def shutdown(kill_servers: bool = True) -> None:
    """End this process's parameter-server job: flush caches and commit the last step; with
    ``kill_servers`` (default) also stop the job's server actors."""
    rt = _RUNTIME.pop("rt", None)
    if rt is not None:
        rt.shutdown(kill_servers)


@atexit.register
def _at_exit() -> None:  # pragma: no cover - process exit
    rt = _RUNTIME.get("rt")
    if rt is None or not rt.ray.is_initialized():  # Ray already shut down: never auto-connect at exit
        _RUNTIME.pop("rt", None)
        return
    with contextlib.suppress(Exception):  # tell the servers this worker finished; embedded: stop them
        shutdown(cluster.started_here())


# ---------------------------------------------------------------------------------- one training cell
class _Table:
    """A server-held EmbeddingLookup in a plan: the layer, its table, its cache, this step's rows."""

    def __init__(self, layer, param, pieces) -> None:
        self.layer = layer
        self.param = param
        self.pieces = pieces
        self.cache = layer._ps_cache
        self.calls = None  # lookups per step (learned on the first step)


class _Plan:
    """What a training cell sends where; built and registered with the servers on its first step."""

    def __init__(self, cell) -> None:
        from sporax.nn.layer.embedding import EmbeddingLookup

        self.cell = cell
        self.rt = rt = runtime()
        self.opt = cell.optimizer
        weights = list(cell.weights)
        ps = [p for p in weights if p.is_param_ps]
        ps_ids = {id(p) for p in ps}
        self.tables: list[_Table] = []
        table_ids: set = set()
        for _, c in cell.network.cells_and_names():
            if isinstance(c, EmbeddingLookup) and id(c.embedding_table) in ps_ids and c.sparse:
                if id(c.embedding_table) in table_ids:
                    continue
                table_ids.add(id(c.embedding_table))
                pieces = place(c.embedding_table.name, tuple(c.embedding_table.shape), rt.n_servers, True)
                self.tables.append(_Table(c, c.embedding_table, pieces))
        # Several workers with caches: each step's ids are announced to the servers, which say
        # which rows another worker also uses (updated on the server) and which cached rows to give back.
        self.shared_caches = rt.n_workers > 1 and any(t.cache is not None for t in self.tables)
        self.whole = not rows_only(self.opt)  # the optimizer moves every row of a table each step
        frozen = frozen_states(self.opt)
        for t in self.tables:
            if t.cache is not None:
                t.cache.frozen = frozen
        self.dense = [p for p in ps if id(p) not in table_ids]
        self.local = [p for p in weights if not p.is_param_ps]
        self.pieces = {p.name: place(p.name, tuple(p.shape), rt.n_servers, False) for p in self.dense}
        for t in self.tables:
            self.pieces[t.param.name] = t.pieces
        for name, pieces in self.pieces.items():
            for piece in pieces:
                rt.held[piece.server].append(name)
        rt.trained_locally.update({id(p): p for p in self.local})
        self.step = 0
        self.uncommitted: int | None = None
        self.log: dict = {}  # step -> {server: payload}, kept until a snapshot covers it
        self.incarnation: dict = {}
        self.snapshot_step: dict = {}
        self.stand_ins: dict = {}
        self.to_return: set = set()  # restarted servers whose cached rows this worker gives back
        self.inputs: dict = {}  # step -> this worker's inputs, kept since the last snapshot (redone after a rollback)
        self.flushed_at: int | None = None  # the snapshot step this worker last flushed its state for
        self.token = uuid.uuid4().hex
        self._register()
        rt.plans.append(self)

    # -------------------------------------------------------------- registration and resume
    def _spec(self, k: int) -> dict:
        import ray.cloudpickle as cloudpickle

        states = state_params(self.opt)
        pieces = []
        for p in [*self.dense, *(t.param for t in self.tables)]:
            for piece in self.pieces[p.name]:
                if piece.server != k:
                    continue
                pieces.append({
                    "name": p.name, "shape": tuple(p.shape), "dtype": str(p.dtype), "row_start": piece.row_start,
                    "row_stop": piece.row_stop, "row_sparse": any(p is t.param for t in self.tables),
                    "source": _source(p, piece), "states": {q.name: _source(q, piece) for q in states[p.name]},
                })
        server_held = [p for p in [*self.dense, *(t.param for t in self.tables)]]
        with _placeholders(server_held + [q for p in server_held for q in states[p.name]]):
            blob = cloudpickle.dumps(self.opt)
        return {"n_workers": self.rt.n_workers, "optimizer": blob, "pieces": pieces}

    def _register(self) -> None:
        rt = self.rt
        infos = rt.call_all([(k, "register", (self._spec(k),)) for k in range(rt.n_servers)])
        for k, info in enumerate(infos):
            self.incarnation[k] = info["incarnation"]
            self.snapshot_step[k] = info["snapshot_step"]
        joins = rt.call_all([(k, "join", (rt.worker, self.token)) for k in range(rt.n_servers)])
        for k, j in enumerate(joins):
            rt.epochs[k] = j["epoch"]
        if not any(j["replaced"] for j in joins):
            self._resume()
            return
        # This worker replaces one that died: roll the job back to the last snapshot every server
        # has (it holds that worker's cache rows and local state); the other workers redo their steps.
        common = set.intersection(*(set(j["snapshots"]) for j in joins))
        if common:
            step = max(common)
            infos = rt.call_all([(k, "rollback", (step, self.token)) for k in range(rt.n_servers)])
            for k, info in enumerate(infos):
                rt.epochs[k] = info["epoch"]
                self.snapshot_step[k] = info["snapshot_step"]
            self._set_local(rt.call_all([(0, "rolled_back_local", (rt.worker,))])[0]["local"])
            self.step = step
            self.uncommitted = None
            return
        held = {}
        for j in joins:
            for name, n in j["held"].items():
                held[name] = held.get(name, 0) + n
        held = {n: c for n, c in held.items() if c}
        if held:
            raise RuntimeError(
                f"Worker {rt.worker} replaces a worker that died at step {max(j['step'] for j in joins)} while its "
                f"embedding cache held rows {held} (table: rows) whose updates only it had: they are lost, and "
                "training would silently diverge. Set set_ps_context(snapshot_steps=N, snapshot_path=DIR) to make "
                "a replacement lossless (the job rolls back to the last snapshot).")
        self._resume()

    def _local_state(self) -> dict:
        """``{name: array}``: the worker-local parameters and this worker's optimizer state for them
        (and the optimizer's own counters): what a snapshot needs besides the servers' state."""
        from sporax.common import _binding

        states = state_params(self.opt)
        skip = set()
        for p in [*self.dense, *(t.param for t in self.tables)]:
            skip.add(id(p))
            skip.update(id(q) for q in states[p.name])
        out = {}
        for q in [*self.local, *_binding.walk_cell(self.opt)[0]]:
            if id(q) not in skip and q.name not in out:
                out[q.name] = np.asarray(q.asnumpy())
        return out

    def _set_local(self, local: dict) -> None:
        from sporax.common import _binding

        by_name = {q.name: q for q in [*self.local, *_binding.walk_cell(self.opt)[0]]}
        for name, value in local.items():
            by_name[name]._assign(jnp.asarray(value))

    def _snapshot_flush(self) -> None:
        """At a snapshot step: write back every dirty cache row (kept cached) and send this
        worker's local state, so that the servers' snapshot is the job's complete state."""
        rt = self.rt
        rows: dict = {k: {} for k in range(rt.n_servers)}
        for t in self.tables:
            if t.cache is None:
                continue
            ids, values, states = t.cache.dirty_rows()
            for piece, pos in split_rows(t.pieces, ids):
                rows[piece.server][t.param.name] = (ids[pos], values[pos], {n: v[pos] for n, v in states.items()})
                rt.bytes["push"] += values[pos].nbytes + sum(v[pos].nbytes for v in states.values())
        local = self._local_state()
        rt.call_all([(k, "snapshot_flush", (rt.worker, self.step, rows[k], local if k == 0 else {}))
                     for k in range(rt.n_servers)])
        self.flushed_at = self.step

    def roll_back(self) -> None:
        """A replacement worker rolled the job back: wait until every server has, then drop this
        worker's cache and load its local state of that snapshot (its steps since are redone)."""
        rt = self.rt
        deadline = time.monotonic() + rt.timeout
        while True:
            st = rt.call_all([(k, "status", (rt.worker,)) for k in range(rt.n_servers)])
            if all(s["epoch"] != rt.epochs.get(k) for k, s in enumerate(st)):
                break
            if time.monotonic() > deadline:
                raise RuntimeError(f"Worker {rt.worker}: the parameter servers began a rollback to a snapshot that "
                                   f"did not complete within {rt.timeout:.1f}s (the replacement worker died?).")
            time.sleep(0.05)
        steps = {s["step"] for s in st}
        if len(steps) != 1:
            raise RuntimeError(f"Worker {rt.worker}: the parameter servers rolled back to different steps {steps}.")
        step = steps.pop()
        for k, s in enumerate(st):
            rt.epochs[k] = s["epoch"]
            self.snapshot_step[k] = s["snapshot_step"]
        for t in self.tables:
            if t.cache is not None:
                t.cache.clear()
        self._set_local(rt.call_all([(0, "rolled_back_local", (rt.worker,))])[0]["local"])
        self.step = step
        self.uncommitted = None
        self.log = {s: v for s, v in self.log.items() if s < step}
        self.to_return.clear()
        self.flushed_at = None

    def _resume(self) -> None:
        """Find this worker's step from the servers (a replacement worker continues where its predecessor stopped)."""
        rt = self.rt
        st = rt.call_all([(k, "status", (rt.worker,)) for k in range(rt.n_servers)])
        nxt = [s["step"] + (1 if s["committed"] else 0) for s in st]
        target = max(nxt)
        for k, s in enumerate(st):
            if nxt[k] < target and s["pending"] and s["step"] == target - 1:
                rt.call_all([(k, "commit", (rt.worker, s["step"]))])
        self.step = target
        self.uncommitted = None
        if target > 0 and self.local:
            warnings.warn(
                f"The parameter servers are at step {target}: this worker resumes there, but its worker-local "
                f"parameters {[p.name for p in self.local]} (no set_param_ps) and their optimizer state are not "
                "held by the servers and keep the values this process gave them, not those of the worker it "
                "replaces (set_ps_context(snapshot_steps=N, snapshot_path=DIR) makes a replacement lossless: the "
                "job rolls back to the last snapshot; or mark them with set_param_ps).", RuntimeWarning, stacklevel=2)

    # -------------------------------------------------------------- messages
    def _check_restarts(self, infos: list) -> bool:
        """Replay logged steps to restarted servers; True if any was replayed (the call is then redone)."""
        replayed = False
        for k, info in enumerate(infos):
            if info["incarnation"] == self.incarnation.get(k):
                self.snapshot_step[k] = info["snapshot_step"]
                continue
            if not info["registered"]:
                raise self.rt._fail(k, "restarted without a snapshot", "its parameters and optimizer state are lost "
                                    "(set_ps_context(snapshot_steps=N, snapshot_path=DIR) makes it resume)")
            self.incarnation[k] = info["incarnation"]
            self._replay(k, info["step"])
            self.to_return.add(k)  # it no longer knows which rows the caches hold: give them back (sync)
            replayed = True
        self._trim_log()
        return replayed

    def _replay(self, k: int, start: int) -> None:
        rt = self.rt
        last = self.step - 1  # the last step this worker pushed
        for s in range(start, last + 1):
            if s not in self.log:
                raise rt._fail(k, f"restarted from its snapshot at step {start}",
                               f"this worker no longer has its step-{s} message to replay")
            rt.call_all([(k, "push", (rt.worker, s, self.log[s][k]))])
            rt.call_all([(k, "commit", (rt.worker, s))])
            if s < last:
                rt.call_all([(k, "sync", (rt.worker, s + 1, None, [], rt.timeout, self.incarnation[k]))])

    def _trim_log(self) -> None:
        keep = min(self.snapshot_step.values()) if self.snapshot_step else -1
        for s in [s for s in self.log if s < keep]:
            del self.log[s]
        for s in [s for s in self.inputs if s < keep]:
            del self.inputs[s]

    def _return_cached(self, k: int) -> None:
        """Write back and drop every row of server ``k``'s blocks that this worker's caches hold."""
        calls = []
        for t in self.tables:
            if t.cache is None:
                continue
            for piece in t.pieces:
                if piece.server == k:
                    ids, values, states = t.cache.drop(t.cache.cached_ids(piece.row_start, piece.row_stop))
                    calls.append((k, "write_rows", (t.param.name, ids, values, states, self.rt.worker, None, True)))
        if calls:
            self.rt.call_all(calls)

    def announce(self) -> dict | None:
        """Several workers with caches: tell every server this step's ids of its cached tables, and
        give back the cached rows another worker needs. ``{table: ids read directly}``, or None when
        a server restarted (the step is then redone from :meth:`sync`)."""
        rt = self.rt
        per_server: dict = {k: {} for k in range(rt.n_servers)}
        for t in self.tables:
            if t.cache is None or not t.layer._ps_ids:
                continue
            ids = np.unique(np.concatenate([c.reshape(-1) for c in t.layer._ps_ids]).astype(np.int64))
            for piece, pos in split_rows(t.pieces, ids):
                per_server[piece.server][t.param.name] = ids[pos]
            for piece in t.pieces:
                per_server[piece.server].setdefault(t.param.name, ids[:0])
        infos = rt.call_all([(k, "announce", (rt.worker, self.step, per_server[k], rt.timeout, self.incarnation[k]))
                             for k in range(rt.n_servers)])
        if any("answer" not in info for info in infos):
            return None
        shared: dict = {}
        backs = []
        by_name = {t.param.name: t for t in self.tables}
        for k, info in enumerate(infos):
            for name, (sh, back) in info["answer"].items():
                shared.setdefault(name, []).append(np.asarray(sh, np.int64))
                if len(back):
                    ids, values, states = by_name[name].cache.drop(back, given_back=True)
                    backs.append((k, "give_back", (rt.worker, name, back, ids, values, states)))
                    rt.bytes["push"] += values.nbytes + sum(v.nbytes for v in states.values())
        if backs:
            rt.call_all(backs)
        return {name: np.concatenate(parts) for name, parts in shared.items()}

    def sync(self) -> None:
        """Commit the previous step, wait for this one, and pull the dense server parameters."""
        rt = self.rt
        while True:
            calls = []
            for k in range(rt.n_servers):
                names = [p.name for p in self.dense if any(pc.server == k for pc in self.pieces[p.name])]
                calls.append((k, "sync", (rt.worker, self.step, self.uncommitted, names, rt.timeout,
                                          self.incarnation[k])))
            infos = rt.call_all(calls)
            if not self._check_restarts(infos):
                break
        self.uncommitted = None
        ps = context._state.ps
        if ps.snapshot_steps and ps.snapshot_path and self.step % ps.snapshot_steps == 0 \
                and self.flushed_at != self.step:
            self._snapshot_flush()
        for k in sorted(self.to_return):  # the server is at this step again: hand back the rows it lost track of
            self._return_cached(k)
        self.to_return.clear()
        for p in self.dense:
            parts = sorted((pc.row_start, infos[pc.server]["dense"][p.name]) for pc in self.pieces[p.name])
            full = parts[0][1] if len(parts) == 1 else np.concatenate([v for _, v in parts])
            rt.bytes["pull"] += full.nbytes
            p._assign(jnp.asarray(full.reshape(p.shape)))
            p.init = None
            p.init_mode = None

    def finish(self) -> None:
        """Write back every dirty cache row and commit the last step (end of training, or before reading weights)."""
        rt = self.rt
        flush_step = self.step if self.shared_caches else None
        calls = []
        for t in self.tables:
            if t.cache is None:
                continue
            ids, values, states = t.cache.dirty_rows()
            for piece, pos in split_rows(t.pieces, ids):
                calls.append((piece.server, "write_rows", (t.param.name, ids[pos], values[pos],
                                                          {n: v[pos] for n, v in states.items()}, rt.worker)))
        if flush_step is not None:  # every server learns that this worker's rows are written back at this step
            calls.extend((k, "write_rows", (None, None, None, {}, rt.worker, flush_step)) for k in range(rt.n_servers))
        if calls:
            rt.call_all(calls)
        if self.uncommitted is not None:
            rt.call_all([(k, "commit", (rt.worker, self.uncommitted)) for k in range(rt.n_servers)])
            self.uncommitted = None


def _source(p, piece) -> tuple:
    """How a server makes its block of ``p``: the initializer (an exact window) or the values."""
    if p.init is not None:
        return ("init", p.init, p._seed)
    value = np.asarray(p._value)
    if piece.sliced:
        value = value[piece.row_start:piece.row_stop]
    return ("values", value)


@contextlib.contextmanager
def _placeholders(params: list):
    """Pickle server-held parameters as shape-only lazy placeholders (servers get their data separately)."""
    from sporax.common.initializer import Zero

    saved = []
    for p in params:
        if p.init is None:
            saved.append((p, p._value, p.init_mode))
            p._value, p.init, p._seed, p.init_mode = None, Zero(), 0, None
    try:
        yield
    finally:
        for p, value, mode in saved:
            p._value, p.init, p._seed, p.init_mode = value, None, None, mode


def _plan_of(cell) -> _Plan:
    plan = cell.__dict__.get("_ps_plan")
    if plan is None or plan.rt is not _RUNTIME.get("rt"):
        plan = _Plan(cell)
        cell.__dict__["_ps_plan"] = plan
    return plan


def trained_locally(param) -> bool:
    """True when a parameter-server training cell of this process already trains ``param`` locally."""
    rt = _RUNTIME.get("rt")
    return rt is not None and rt.trained_locally.get(id(param)) is param


def uses_ps(cell) -> bool:
    """True when ``cell`` (a TrainOneStepCell) trains any ``set_param_ps`` parameter in an active PS mode."""
    return context._ps_active() and any(p.is_param_ps for p in cell.weights)


# ---------------------------------------------------------------------------------- the step
def _discover(plan: _Plan, inputs: tuple) -> None:
    """Run the network forward until every server-held table has seen its ids (nothing is kept)."""
    from sporax.common._random_state import key_state

    if not plan.tables:
        return
    expected = sum(t.calls for t in plan.tables) if all(t.calls is not None for t in plan.tables) else None
    counter = {"left": expected}
    for t in plan.tables:
        t.layer._ps_begin("record", counter)
    key = key_state._value
    try:
        with _binding.bind([], [], kind="grad"):
            plan.cell.network(*inputs)
    except _Discovered:
        pass
    finally:
        key_state._value = key
        for t in plan.tables:
            t.layer._ps_mode = None
    for t in plan.tables:
        if t.calls is None:
            t.calls = len(t.layer._ps_ids)


def _gather_rows(plan: _Plan, shared: dict | None = None) -> list:
    """Per table: (unique ids, counts, Prepared or None, working array, positions per call).

    ``shared``: per cached table, the ids another worker also looks up this step (read directly).
    """
    rt = plan.rt
    prepared = []
    rows_req: dict = {}
    state_req: dict = {}
    for t in plan.tables:
        calls = t.layer._ps_ids
        if not calls:
            prepared.append(None)
            continue
        flat = np.concatenate([c.reshape(-1) for c in calls]).astype(np.int64)
        ids, inverse, counts = np.unique(flat, return_inverse=True, return_counts=True)
        if t.cache is not None:
            exclude = None
            if shared is not None:
                exclude = np.isin(ids, shared.get(t.param.name, ids[:0]), assume_unique=True)
            prep = t.cache.prepare(ids, counts, exclude, evict_all=plan.shared_caches or plan.whole)
            fallback = ids[prep.slots < 0]
            load = prep.load_ids
        else:
            prep, fallback, load = None, ids, ids[:0]
        for piece, pos in split_rows(t.pieces, fallback):
            rows_req.setdefault(piece.server, {})[t.param.name] = fallback[pos]
        for piece, pos in split_rows(t.pieces, np.sort(load)):
            state_req.setdefault(piece.server, {})[t.param.name] = np.sort(load)[pos]
        prepared.append((t, ids, inverse, counts, prep, fallback, calls))
    servers = sorted(set(rows_req) | set(state_req))
    replies = rt.call_all([(k, "pull_rows", (rows_req.get(k, {}), state_req.get(k, {}), rt.worker, rt.timeout))
                           for k in servers])
    got = dict(zip(servers, replies))
    out = []
    for item in prepared:
        if item is None:
            out.append(None)
            continue
        t, ids, inverse, counts, prep, fallback, calls = item
        name = t.param.name
        dim = t.param.shape[1]
        work = np.zeros((bucket(len(ids)), dim), t.param.dtype.np_dtype)
        if prep is not None and len(prep.load_ids):
            parts = [got[k]["state_rows"][name] for k in servers if name in got[k]["state_rows"]]
            values = np.concatenate([v for v, _ in parts])
            states = {s: np.concatenate([st[s] for _, st in parts]) for s in parts[0][1]}
            order = np.argsort(prep.load_ids)
            slots_sorted = prep.load_slots[order]
            t.cache.fill(slots_sorted, values, states)
            rt.bytes["pull"] += values.nbytes + sum(v.nbytes for v in states.values())
        if prep is not None:
            cached = prep.slots >= 0
            work[np.flatnonzero(cached)] = t.cache.store.values[prep.slots[cached]]
            fb_pos = np.flatnonzero(~cached)
        else:
            fb_pos = np.arange(len(ids))
        if len(fallback):
            parts = [got[k]["rows"][name] for k in servers if name in got[k]["rows"]]
            values = np.concatenate(parts)
            work[fb_pos] = values
            rt.bytes["pull"] += values.nbytes
        positions, at = [], 0
        for c in calls:
            n = c.size
            positions.append(jnp.asarray(inverse[at:at + n].reshape(c.shape).astype(np.int32)))
            at += n
        out.append((t, ids, prep, fb_pos, work, positions))
    return out


def train_step(cell, inputs: tuple):
    """One synchronous parameter-server step of a TrainOneStepCell; returns the loss.

    With snapshots, the step's inputs are kept until a snapshot covers them: if a replaced
    worker rolls the job back to a snapshot, this worker redoes its steps from there first."""
    role = context._ps_role()
    if role in ("MS_PSERVER", "MS_SCHED"):
        from sporax.ps import serve

        serve()
        raise SystemExit(0)
    plan = _plan_of(cell)
    target = plan.step
    ps = context._state.ps
    if ps.snapshot_steps and ps.snapshot_path:
        plan.inputs[target] = inputs
    while True:
        try:
            while plan.step < target:  # after a rollback: redo the steps since the snapshot
                if plan.step not in plan.inputs:
                    raise RuntimeError(f"Worker {plan.rt.worker}: the job rolled back to step {plan.step}, but this "
                                       f"worker no longer has its step-{plan.step} inputs to redo it.")
                _one_step(cell, plan, plan.inputs[plan.step])
            return _one_step(cell, plan, inputs)
        except _RolledBack:
            plan.roll_back()


def _one_step(cell, plan: _Plan, inputs: tuple):
    from sporax.common.parameter import Parameter
    from sporax.ops.composite import _differentiate_eager
    from sporax.ps._apply import step_optimizer

    rt = plan.rt
    t_step = plan.step
    while True:
        plan.sync()
        _discover(plan, inputs)
        shared = plan.announce() if plan.shared_caches else None
        if shared is not None or not plan.shared_caches:
            break
    rows = _gather_rows(plan, shared)
    weights = list(plan.local) + list(plan.dense)
    stand_ins = []
    for item in rows:
        if item is None:
            continue
        t, _, _, _, work, positions = item
        w = plan.stand_ins.get(t.param.name)
        if w is None:
            w = plan.stand_ins[t.param.name] = Parameter(Tensor._wrap(work), name=t.param.name + ".rows")
        w._assign(jnp.asarray(work))
        stand_ins.append(w)
        t.layer._ps_begin("run", None, w, positions)
    sens = None if cell.sens is None or cell.sens == 1.0 else cell.sens
    try:
        with _table_dummies([t.param for t in plan.tables]):
            loss, _, grads = _differentiate_eager(cell.network, inputs, {}, (), weights + stand_ins, sens, False)
    finally:
        for t in plan.tables:
            t.layer._ps_mode = None
    grads = [np.asarray(g._jax()) if isinstance(g, Tensor) else np.asarray(g) for g in grads]
    n_local, n_dense = len(plan.local), len(plan.dense)
    payload: dict = {k: {"dense": {}, "rows": {}, "writeback": {}} for k in range(rt.n_servers)}
    for p, g in zip(plan.dense, grads[n_local:n_local + n_dense]):
        for pc in plan.pieces[p.name]:
            part = g[pc.row_start:pc.row_stop] if pc.sliced else g
            payload[pc.server]["dense"][p.name] = part
            rt.bytes["push"] += part.nbytes
    cache_rows = {}
    row_grads = iter(grads[n_local + n_dense:])
    for item in rows:
        if item is None:
            continue
        t, ids, prep, fb_pos, _, _ = item
        g = next(row_grads)[: len(ids)]
        name = t.param.name
        fb_ids = ids[fb_pos]
        for piece, pos in split_rows(t.pieces, fb_ids):
            payload[piece.server]["rows"][name] = (fb_ids[pos], g[fb_pos][pos])
            rt.bytes["push"] += g[fb_pos][pos].nbytes
        if prep is not None:
            cached = np.flatnonzero(prep.slots >= 0)
            if len(cached) or plan.whole:
                # The server averages over workers; a row only this worker uses gets its share alone.
                gc = g[cached] if rt.n_workers == 1 else g[cached] / np.asarray(rt.n_workers, g.dtype)
                cache_rows[name] = (t.cache.store, prep.slots[cached], gc)
                t.cache.dirty[prep.slots[cached]] = True
                if plan.whole:  # every cached row moves
                    t.cache.dirty[t.cache.id_of >= 0] = True
            ev_ids, ev_vals, ev_states = prep.evicted
            if len(ev_ids):
                order = np.argsort(ev_ids)
                ev_ids, ev_vals = ev_ids[order], ev_vals[order]
                ev_states = {n: v[order] for n, v in ev_states.items()}
                for piece, pos in split_rows(t.pieces, ev_ids):
                    payload[piece.server]["writeback"][name] = (
                        ev_ids[pos], ev_vals[pos], {n: v[pos] for n, v in ev_states.items()})
                    rt.bytes["push"] += ev_vals[pos].nbytes + sum(v[pos].nbytes for v in ev_states.values())
    calls = [(k, "push", (rt.worker, t_step, payload[k])) for k in range(rt.n_servers)]
    local = {p.name: g for p, g in zip(plan.local, grads[:n_local])}
    if rt.n_workers > 1 and local:
        # MindSpore's hybrid mode: the worker-local parameters are data parallel over the
        # workers (their gradients all-reduced, averaged); here the servers average them.
        parts: dict = {}
        for name, g in local.items():
            parts.setdefault(stable_server(name, rt.n_servers), {})[name] = g
            rt.bytes["push"] += g.nbytes
        calls += [(k, "allreduce", (rt.worker, t_step, part, rt.n_workers, rt.timeout, _reduce_mean()))
                  for k, part in sorted(parts.items())]
    replies = rt.call_all(calls)
    for reply in replies[rt.n_servers:]:
        local.update(reply["mean"])
        rt.bytes["pull"] += sum(np.asarray(g).nbytes for g in reply["mean"].values())
    if context._state.ps.snapshot_steps:
        plan.log[t_step] = payload
    plan.uncommitted = t_step
    plan.step = t_step + 1
    for t in plan.tables:
        if t.cache is not None:
            for q in state_params(plan.opt)[t.param.name]:
                t.cache.add_state(q.name, None)
            if plan.whole and t.param.name not in cache_rows:  # not looked up this step: its cached rows still move
                cache_rows[t.param.name] = (t.cache.store, np.zeros(0, np.int64),
                                            np.zeros((0, t.cache.dim), t.cache.store.values.dtype))
                t.cache.dirty[t.cache.id_of >= 0] = True
    step_optimizer(plan.opt, local, cache_rows, whole=plan.whole)
    return loss


def _reduce_mean() -> bool:
    """Whether the worker-local gradients are averaged over the workers (else summed).

    MindSpore's workers reduce them with their parallel mode's all-reduce, a mean when
    ``gradients_mean`` is set (its PS examples set it); sporax averages unless a parallel mode
    is set with ``gradients_mean=False``, which sums as MindSpore's ``DistributedGradReducer``."""
    if context._parallel_mode() == context.ParallelMode.STAND_ALONE:
        return True
    return bool(context.get_auto_parallel_context("gradients_mean"))


@contextlib.contextmanager
def _table_dummies(tables: list):
    """Give each (lazy) server-held table a one-row stand-in value while the step runs, so that
    binding the network's parameters never materializes it."""
    saved = []
    for p in tables:
        saved.append((p, p._value, p._shape))
        if p._value is None:
            p._value = np.zeros((1,) + tuple(p.shape[1:]), p.dtype.np_dtype)
    try:
        yield
    finally:
        for p, value, shape in saved:
            p._value, p._shape = value, shape


# ---------------------------------------------------------------------------------- user functions
def current_step(cell) -> int:
    """The next step a PS ``TrainOneStepCell`` will run (a replacement worker resumes there)."""
    return _plan_of(cell).step


def pull_parameters(cell) -> None:
    """Write back dirty cache rows, commit, and copy the servers' current values of every
    server-held parameter of ``cell`` (a TrainOneStepCell) into the worker's Parameters
    (materializing them: use it before ``save_checkpoint`` or to inspect the trained model)."""
    plan = _plan_of(cell)
    plan.finish()
    rt = plan.rt
    # Wait until every worker's last step is applied.
    rt.call_all([(k, "sync", (rt.worker, plan.step, None, [], rt.timeout, plan.incarnation[k]))
                 for k in range(rt.n_servers)])
    want: dict = {}
    for name, pieces in plan.pieces.items():
        for pc in pieces:
            want.setdefault(pc.server, []).append(name)
    servers = sorted(want)
    step = plan.step if plan.shared_caches else None
    replies = rt.call_all([(k, "read", (want[k], step, rt.timeout)) for k in servers])
    blocks: dict = {}
    for reply in replies:
        for name, (start, values) in reply.items():
            blocks.setdefault(name, []).append((start, values))
    for p in [*plan.dense, *(t.param for t in plan.tables)]:
        parts = sorted(blocks[p.name], key=lambda x: x[0])
        full = np.concatenate([v for _, v in parts]) if len(parts) > 1 else parts[0][1]
        p._assign(jnp.asarray(full.reshape(p.shape)))
        p.init = None
        p.init_mode = None


def cache_stats(cell) -> dict:
    """``{table name: stats}`` of every EmbeddingLookup cache in ``cell`` (see ``EmbeddingLookup.cache_stats``)."""
    from sporax.nn.layer.embedding import EmbeddingLookup

    return {c.embedding_table.name: c.cache_stats() for _, c in cell.cells_and_names()
            if isinstance(c, EmbeddingLookup) and c._ps_cache is not None}
