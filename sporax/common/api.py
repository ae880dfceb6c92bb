"""``jit`` and GRAPH_MODE: compile a whole step (forward, backward, optimizer update) once.

A compiled call is ``jax.jit`` over a pure function::

    (written state arrays, read-only state arrays, input arrays)
        -> (output arrays, new values of the written state)

built with the one state-threading mechanism (:mod:`sporax.common._binding`): the state
Parameters (and the random key state) are bound to the jit tracers, the user's code runs
once, and the values it wrote are read back as outputs.

- Which state the code writes is found once per signature by an abstract trace
  (``jax.eval_shape``): only written state is returned, and its buffers are *donated*, so a
  train step updates parameters and optimizer moments in place. Read-only state (an eval
  network's weights) is passed without donation.
- Each signature (state identity, cells' training flags, input shapes/dtypes, static
  arguments) gets one :class:`_Entry`, traced and compiled once and reused: ``_stats
  ['traces']`` counts traces, i.e. compilations.
- A donated buffer must belong to sporax alone. The arrays a call writes into its state are
  registered as donatable (``tensor.mark_donatable``); any path that gives one of them a second
  holder (a snapshot with ``param.value()``/``clone()``, a new Tensor from it, handing it to
  numpy or jax) unregisters it. A state value that is not registered (a ``set_data`` from
  outside, a fresh lazy parameter, a shared array) is copied to a private buffer before the
  call. The per-step check is one identity comparison and one dict lookup per state array.

Inputs: Tensors and arrays (also inside tuples, lists and dicts) are traced; a Parameter
argument is state (bound and written back like the cell's own); every other argument
(Python numbers, strings, Cells) is static, part of the signature. Outputs: Tensors
and arrays (also nested in tuples, lists and dicts) come back as Tensors and arrays; other
Python values returned by the traced code come back as they were at trace time.

Threads: compiled calls are safe to make from several threads (two threads may train one
network). They run one at a time: a process-wide reentrant lock is held from the signature
lookup to the dispatch of the compiled computation, because the donation fast path, the
per-signature caches and the Parameter bindings of a trace are shared. The computations
themselves still run asynchronously on the device.
"""

from __future__ import annotations

import functools
import operator
import threading
import types

import jax
import jax.numpy as jnp
import numpy as np

from sporax import context as _context
from sporax._jax_setup import copy_array
from sporax.common import _binding, _branching, _rng
from sporax.common._random_state import key_state
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, is_donatable, mark_donatable
from sporax.common.tensor import escapes as _escapes

__all__ = ["jit", "ms_function", "run_compiled", "run_cell", "call_cell", "compile_count"]

_GRAPH_MODE = _context.GRAPH_MODE
_DP_MODES = ("data_parallel", "hybrid_parallel")
_SEMI_MODES = ("semi_auto_parallel", "auto_parallel")

# Counts traces of compiled functions (one per compilation); tests read it.
_stats = {"traces": 0}

_T, _A, _S = 0, 1, 2  # leaf kinds: Tensor, raw array, static Python value
_NOTHING = object()
_ARRAYS = (np.ndarray, jax.Array)
# Held by every compiled call (see the module docstring); reentrant for the nested calls of a trace.
_exec_lock = threading.RLock()


def compile_count() -> int:
    """How many times sporax has traced a function for compilation in this process."""
    return _stats["traces"]


class _Entry:
    """One compiled signature: the state split into written/read-only, and the jitted function."""

    __slots__ = ("state", "w_params", "r_params", "w_idx", "r_idx", "avals", "jitted", "owned", "r_cached",
                 "order", "cached", "nw", "out_tree", "out_kinds", "single_tensor",
                 "escapes")

    def __init__(self, state: list) -> None:
        self.state = state
        self.owned: list = []  # the written state's arrays after the last call (sporax's own)
        self.r_cached: list = []  # the read-only state's arrays at the last call
        self.cached: list = []  # owned + r_cached, in the order of ``order``
        self.escapes = -1  # tensor.escapes at the last call (-1: none yet)
        self.out_tree = None
        self.out_kinds: list = []
        self.single_tensor = False


# ---------------------------------------------------------------------------------- arguments
def _split_args(args: tuple, kwargs: dict) -> tuple:
    """(dynamic arrays, signature, template leaves, treedef) of a call's arguments."""
    if not kwargs and all(type(a) is Tensor for a in args):
        # The common case (a train step on a few Tensors), without flattening a pytree.
        dyn = [a._value if isinstance(a._value, jax.Array) else a._jax() for a in args]
        return dyn, tuple([(a._shape, a._dtype) for a in args]), None, None
    leaves, treedef = jax.tree_util.tree_flatten((args, kwargs))
    dyn = []
    sig = []
    template = []
    for x in leaves:
        if isinstance(x, Parameter):  # state, not data: bound by identity (run_compiled adds it)
            sig.append((_S, Parameter, id(x)))
            template.append((_S, x))
        elif isinstance(x, Tensor):
            v = x._value
            if v is None or isinstance(v, np.ndarray):
                v = x._jax()
            dyn.append(v)
            sig.append((_T, x._shape, x._dtype))
            template.append(_T)
        elif isinstance(x, _ARRAYS):
            dyn.append(x)
            sig.append((_A, x.shape, x.dtype))
            template.append(_A)
        else:
            try:
                hash(x)
                sig.append((_S, type(x), x))
            except TypeError:
                sig.append((_S, type(x), id(x)))
            template.append((_S, x))
    return dyn, (treedef, tuple(sig)), template, treedef


def _rebuild_args(template, treedef, dyn: list):
    if template is None:  # the all-Tensor fast path of _split_args
        return tuple(Tensor._wrap(v) for v in dyn), {}
    return treedef.unflatten(_fill(template, dyn))


def _fill(kinds: list, dyn: list) -> list:
    """Leaves from their kinds: arrays from ``dyn`` in order (Tensors wrapped), statics as recorded."""
    it = iter(dyn)
    return [Tensor._wrap(next(it)) if k is _T else next(it) if k is _A else k[1] for k in kinds]


def _split_out(out) -> tuple:
    leaves, tree = jax.tree_util.tree_flatten(out)
    dyn, kinds = [], []
    for x in leaves:
        if isinstance(x, Tensor):
            dyn.append(x._jax())
            kinds.append(_T)
        elif isinstance(x, (jax.Array, jax.core.Tracer, np.ndarray)):
            dyn.append(x)
            kinds.append(_A)
        else:
            kinds.append((_S, x))
    return dyn, tree, kinds


def _rebuild_out(entry: _Entry, dyn: list):
    if entry.single_tensor:
        return Tensor._wrap(dyn[0])
    return entry.out_tree.unflatten(_fill(entry.out_kinds, dyn))


# ---------------------------------------------------------------------------------- building
def _avals(values: list) -> list:
    return [(tuple(v.shape), v.dtype) for v in values]


def _build(fn, state: list, template: list, treedef, dyn: list, readonly: bool, jit_options=None) -> _Entry:
    """Find the written state by an abstract trace, then make the donating jitted function.

    ``readonly``: the state is only read (its writes are dropped): no probe, no donation.
    """
    entry = _Entry(state)
    _binding.prepare_constants(fn, template)
    values = _binding.materialize(state)
    entry.avals = _avals(values)

    def run_once(vals, dyn_in):
        with _binding.bind(state, vals, kind="jit"):
            args, kwargs = _rebuild_args(template, treedef, dyn_in)
            out = fn(*args, **kwargs)
            new = _binding.read_values(state)
        return out, new

    def probe(vals, dyn_in):
        for _, (_, new) in _branching.run_paths(lambda: run_once(vals, dyn_in)):
            written.extend(i for i, (n, v) in enumerate(zip(new, vals)) if n is not v and i not in written)
        written.sort()
        return 0

    written: list = []
    if not readonly:
        jax.eval_shape(probe, values, dyn)
    w_idx = tuple(written)
    r_idx = tuple(i for i in range(len(state)) if i not in set(w_idx))
    entry.w_idx, entry.r_idx = w_idx, r_idx
    entry.w_params = [state[i] for i in w_idx]
    entry.r_params = [state[i] for i in r_idx]
    entry.order = entry.w_params + entry.r_params
    entry.nw = len(w_idx)
    entry.cached = [_NOTHING] * len(entry.order)  # no value is this: the first call refreshes
    n = len(state)
    avals = entry.avals

    def pure(wv, rv, dyn_in):
        _stats["traces"] += 1
        vals = [None] * n
        for i, v in zip(w_idx, wv):
            vals[i] = v
        for i, v in zip(r_idx, rv):
            vals[i] = v
        paths = _branching.run_paths(lambda: run_once(vals, dyn_in))
        out, new = paths[0][1]
        if len(paths) > 1:  # Python control flow on traced Tensors: select per value
            out, new = _select_paths(paths, state)
        for i in r_idx:
            if new[i] is not vals[i] and not readonly:
                raise RuntimeError(
                    f"{_binding._describe(state[i])} was written on this trace but not when sporax first "
                    "traced the function to find its state writes; the function's writes must not depend "
                    "on Python-side conditions that change between traces."
                )
        new_w = [_conform(state[i], new[i], avals[i]) for i in w_idx]
        out_dyn, entry.out_tree, entry.out_kinds = _split_out(out)
        entry.single_tensor = entry.out_kinds == [_T] and entry.out_tree.num_leaves == 1 and isinstance(out, Tensor)
        return out_dyn, new_w

    entry.jitted = jax.jit(pure, donate_argnums=(0,), **(jit_options or {}))
    return entry


def _select_paths(paths: list, state: list) -> tuple:
    """One (outputs, new state) from the decision paths of a trace (see ``sporax.common._branching``)."""
    preds, values = [], []
    first_tree = first_kinds = None
    for pred, (out, new) in paths:
        out_dyn, tree, kinds = _split_out(out)
        if first_tree is None:
            first_tree, first_kinds = tree, kinds
        elif tree != first_tree or [k if k in (_T, _A) else ("s", k[1]) for k in kinds] != [
                k if k in (_T, _A) else ("s", k[1]) for k in first_kinds]:
            raise TypeError("The branches of a Python 'if' on a Tensor return different structures "
                            f"({first_tree} vs {tree}); both branches must return the same, as in MindSpore's "
                            "graph mode.")
        preds.append(pred)
        values.append(list(out_dyn) + [jnp.asarray(v) if not isinstance(v, jax.core.Tracer) else v for v in new])
    n_out = len(values[0]) - len(state)
    names = [f"output {j}" for j in range(n_out)] + [_binding._describe(p) for p in state]
    chosen = _branching.select(preds, values, names)
    out = first_tree.unflatten(_fill(first_kinds, chosen[:n_out]))
    return out, chosen[n_out:]


def _conform(param, value, aval):
    """The written value with the parameter's shape and dtype (a write may not reshape state)."""
    shape, dtype = aval
    if tuple(value.shape) != shape:
        raise ValueError(
            f"{_binding._describe(param)} of shape {shape} was given a value of shape {tuple(value.shape)} "
            "inside a compiled function; the state of a compiled function keeps its shape."
        )
    if value.dtype != dtype:
        value = value.astype(dtype)
    return value


_GET_VALUE = operator.attrgetter("_value")


def _refresh(entry: _Entry):
    """Slow path: materialize state, copy donated buffers sporax does not own alone.

    Returns ``(written values, read-only values)``, or None if a shape/dtype changed.
    """
    values = _binding.materialize(entry.state)
    if _avals(values) != entry.avals:
        return None
    del values
    nw = len(entry.w_params)
    vals = list(map(_GET_VALUE, entry.order))
    wv, rv = vals[:nw], vals[nw:]
    r_ids = {id(v) for v in rv}
    for j, v in enumerate(wv):
        if not is_donatable(v) or id(v) in r_ids:
            wv[j] = copy_array(v)  # a transfer, not a compiled copy kernel per shape
    return wv, rv


# ---------------------------------------------------------------------------------- running
_RETRACE = object()
_LAST = "last"


def _execute(entry: _Entry, dyn: list):
    """Call the compiled function with the state's current arrays and store what it wrote.

    Returns the outputs, or ``_RETRACE`` when a state shape/dtype changed since tracing.
    """
    # Fast path: the state holds exactly the arrays of the last call, the written ones unshared.
    vals = list(map(_GET_VALUE, entry.order))
    if all(map(operator.is_, vals, entry.cached)) and (
            entry.escapes == _escapes[0] or all(map(is_donatable, vals[: entry.nw]))):
        wv, rv = entry.owned, entry.r_cached
    else:
        del vals
        prepared = _refresh(entry)
        if prepared is None:
            return _RETRACE
        wv, rv = prepared
    out, new = entry.jitted(wv, rv, dyn)
    for p, v in zip(entry.w_params, new):
        p._value = v
    mark_donatable(new)
    entry.escapes = _escapes[0]  # none of ``new`` has escaped yet
    entry.owned = new
    entry.r_cached = rv
    entry.cached = new + rv
    return _rebuild_out(entry, out)


def run_compiled(cache: dict, fn, state: list, args: tuple, kwargs: dict, extra_key=(), readonly: bool = False,
                 jit_options=None):
    """Run ``fn(*args, **kwargs)`` compiled, with ``state`` Parameters threaded in and out.

    ``cache`` holds the entries (a cell's ``_jit_cache`` or a jit wrapper's dict);
    ``extra_key`` adds what jax cannot see (the training flags of the cells involved);
    ``readonly`` drops the state writes (the caller performs them itself); ``jit_options``
    go to ``jax.jit`` (the data-parallel step passes compiler options).
    """
    with _exec_lock:
        return _run_compiled(cache, fn, state, args, kwargs, extra_key, readonly, jit_options)


def _run_compiled(cache: dict, fn, state: list, args: tuple, kwargs: dict, extra_key, readonly: bool,
                  jit_options=None):
    if key_state._counter_token is not _rng._counter:  # set_seed was called: restart the key
        key_state._seed_now()
    state_in = state
    state = [*state, key_state]
    dyn, sig, template, treedef = _split_args(args, kwargs)
    if template is not None:
        ids = set(map(id, state))
        extra = [x[1] for x in template if x is not _T and x is not _A and isinstance(x[1], Parameter)]
        state[:-1] = state[:-1] + [p for p in extra if id(p) not in ids]
    flags = _binding.flags_version  # a requires_grad change re-traces (it decides zero gradients)
    key = (tuple(map(id, state)), extra_key, sig, readonly, flags)
    entry = cache.get(key)
    if entry is None:
        entry = cache[key] = _build(fn, state, template, treedef, dyn, readonly, jit_options)
    cache[_LAST] = (state_in, extra_key, sig, entry, readonly, flags)
    out = _execute(entry, dyn)
    if out is _RETRACE:  # a state shape/dtype changed (set_data(slice_shape=True)): trace again
        del cache[key]
        cache.pop(_LAST, None)
        return _run_compiled(cache, fn, state_in, args, kwargs, extra_key, readonly, jit_options)
    return out


def run_cell(cell, args: tuple, kwargs: dict):
    """GRAPH_MODE ``Cell.__call__``: the cell's ``construct`` compiled with all its parameters as state.

    The parameter list comes from :func:`_binding.walk_cell_cached`, re-walked whenever a
    cell table of the tree changed, so replacing a Parameter or a sub-cell is seen at once;
    the training flags of all cells are part of the signature. A call with the same
    parameter list, flags and input signature as the previous one skips the cache lookup.
    """
    with _exec_lock:
        return _run_cell(cell, args, kwargs)


def _run_cell(cell, args: tuple, kwargs: dict):
    params, training = _binding.walk_cell_cached(cell)
    cache = cell.__dict__["_jit_cache"]
    last = cache.get(_LAST)
    if (last is not None and last[0] is params and last[1] == training and not kwargs and not last[4]
            and last[5] == _binding.flags_version and key_state._counter_token is _rng._counter):
        dyn, sig, template, _ = _split_args(args, kwargs)
        if template is None and sig == last[2]:
            out = _execute(last[3], dyn)
            if out is not _RETRACE:
                return out
    compiled = len(cache)
    out = run_compiled(cache, cell.construct, params, args, kwargs, training)
    if len(cache) > compiled and cell.__dict__.get("parameter_layout_dict"):
        from sporax.parallel import _strategy  # a sharded cell compiled: write its strategy file if asked

        _strategy.write_net_strategy(cell)
    return out


def call_cell(cell, args: tuple, kwargs: dict):
    """``Cell.__call__``: compiled in GRAPH_MODE outside any trace, ``construct`` otherwise.

    In a data-parallel mode a step cell (one holding a gradient reducer) runs as one SPMD
    program over the data-parallel devices (:mod:`sporax.parallel.data_parallel`); in
    semi-auto/auto parallel mode every cell does, with its operators' strategies
    (:mod:`sporax.parallel.semi_auto`).
    """
    mode = _context._state.auto_parallel.parallel_mode
    if mode in _DP_MODES and not _binding._frames:
        from sporax.parallel import data_parallel

        out = data_parallel.maybe_run(cell, args, kwargs)
        if out is not data_parallel.NOT_DP:
            return out
    elif mode in _SEMI_MODES and not _binding._frames:
        from sporax.parallel import semi_auto

        return semi_auto.run(cell, args, kwargs)
    if _context._state.execution.mode == _GRAPH_MODE:
        with _exec_lock:  # another thread's trace binds Parameters to its tracers: wait for it
            if not _binding._frames:
                return _run_cell(cell, args, kwargs)
    return cell.construct(*args, **kwargs)


# ---------------------------------------------------------------------------------- @jit
class _JitFunction:
    """A function or Cell method compiled on call; see :func:`jit`."""

    def __init__(self, fn) -> None:
        self.fn = fn
        self._cache: dict = {}
        functools.update_wrapper(self, fn)

    def __get__(self, obj, objtype=None):
        if obj is None:
            return self
        return types.MethodType(self, obj)

    def _sporax_state_roots(self) -> tuple:
        return (self.fn,)

    def __call__(self, *args, **kwargs):
        with _exec_lock:
            if not _binding._frames:
                return self._compiled(args, kwargs)
        return self.fn(*args, **kwargs)  # already inside a compiled or differentiated call: just run

    def _compiled(self, args: tuple, kwargs: dict):
        params, cells = _binding.discover_with_cells(self.fn, args, kwargs)
        owner = args[0] if args and _binding._is_cell(args[0]) else None
        cache = owner.__dict__["_jit_cache"].setdefault(("jit", id(self)), {}) if owner is not None else self._cache
        training = tuple(_binding.walk_cell_cached(c)[1] for c in cells)
        return _run_compiled(cache, self.fn, params, args, kwargs, training, False)


def jit(function=None, *args, **options):
    """Compile ``function`` (a plain function or a Cell method) with ``jax.jit`` on first call.

    ``@jit`` and ``@jit(...)`` both work; MindSpore's compile options (``mode``,
    ``jit_level``, ``input_signature``, ...) are accepted and need no action here. The state
    is every Parameter reachable from the arguments (Cells included), the closure and the
    globals the function names; it is read in, written back and donated as in GRAPH_MODE.

    Example::

        @sporax.jit
        def train_step(data, label):
            loss, grads = grad_fn(data, label)
            optimizer(grads)
            return loss
    """
    if function is None:
        return lambda f: jit(f, *args, **options)
    if isinstance(function, _JitFunction):
        return function
    if not callable(function):
        raise TypeError(f"For 'jit', the 'function' should be a function or method, but got {type(function).__name__}.")
    if _binding._is_cell(function):
        cell = function
        return _JitFunction(type(cell).construct).__get__(cell)
    return _JitFunction(function)


def ms_function(fn=None, input_signature=None, hash_args=None, jit_config=None):
    """MindSpore 1.x's name of :func:`jit` (gone from MindSpore 2.x): warns, then compiles exactly as ``jit``."""
    import warnings

    warnings.warn("'ms_function' is MindSpore 1.x's name of 'jit'; use 'sporax.jit' (mindspore.jit).",
                  DeprecationWarning, stacklevel=2)
    return jit(fn, input_signature=input_signature, hash_args=hash_args, jit_config=jit_config)
