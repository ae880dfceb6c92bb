"""One optimizer step over dense gradients and row views: the one path for servers and caches.

A parameter-server step must use the same optimizer math as local training. Rather than a
second implementation, the optimizer Cell itself runs: every Parameter it writes is bound
(through :mod:`sporax.common._binding`) to the array it should update, ``optimizer(grads)``
is called, and the written values are read back. For a row-sparse table only the rows that
received gradients are bound, as a ``[k, dim]`` view gathered from a :class:`RowStore` (the
server's block of the table, or a worker's cache), together with the same rows of the
table's optimizer state; the results are scattered back. Parameters whose gradient is
``None`` are left alone (``Optimizer._apply_rule`` skips them).
"""

from __future__ import annotations

import numpy as np

from sporax.common import _binding
from sporax.common.tensor import Tensor

__all__ = ["RowStore", "state_params", "step_optimizer", "bucket", "rows_only", "frozen_states"]


class RowStore:
    """Rows of a table and of its optimizer state, as writable numpy arrays indexed by position."""

    __slots__ = ("values", "states")

    def __init__(self, values: np.ndarray, states: dict) -> None:
        self.values = values
        self.states = states  # state Parameter name -> array of the same shape as values


def bucket(k: int) -> int:
    """The padded row count for ``k`` rows: a power of two (>= 64), so shapes repeat and compile once."""
    n = 64
    while n < k:
        n *= 2
    return n


_STATE_CACHE: dict = {}


def state_params(opt) -> dict:
    """``{parameter name: [state Parameters]}`` of an optimizer, matched by MindSpore's naming.

    A state is named ``<prefix>.<parameter name>`` (``moment1.fc.weight``, ``accum.fc.weight``)
    and has the parameter's shape; when several parameter names fit, the longest wins.
    """
    key = id(opt)
    hit = _STATE_CACHE.get(key)
    if hit is not None and hit[0] is opt:
        return hit[1]
    params = list(opt._parameters)
    names = sorted((p.name for p in params), key=len, reverse=True)
    by_name = {p.name: p for p in params}
    ids = {id(p) for p in params}
    out: dict = {p.name: [] for p in params}
    for q in _binding.walk_cell(opt)[0]:
        if id(q) in ids:
            continue
        for n in names:
            if q.name.endswith("." + n) and tuple(q.shape) == tuple(by_name[n].shape):
                out[n].append(q)
                break
    _STATE_CACHE[key] = (opt, out)
    return out


def rows_only(opt) -> bool:
    """True when a step of ``opt`` on a row-sparse table updates only the rows that got gradients.

    MindSpore's parameter-server optimizers decide this: ``Adam(use_lazy=True)`` runs
    ``SparseApplyLazyAdam`` and ``FTRL`` / ``ProximalAdagrad`` run ``SparseApplyFtrl`` /
    ``SparseApplyProximalAdagrad``, which touch only the looked-up rows; ``Adam`` (not lazy)
    runs ``SparseApplyAdam``, which decays the moments of *every* row and moves every row
    (dense Adam), and ``Momentum`` runs the dense ``ApplyMomentum``. sporax follows that: a
    lazy optimizer updates rows only; any other one updates the whole table every step (rows
    without a gradient get a zero gradient), exactly as dense local training does. SGD without
    momentum or weight decay and Adagrad without weight decay leave a row with a zero gradient
    unchanged, so for them the row-only update is the dense one, and is taken.
    """
    from sporax.nn.optim.ada_grad import FTRL, Adagrad, ProximalAdagrad
    from sporax.nn.optim.sgd import SGD

    if getattr(opt, "use_lazy", False) or isinstance(opt, (FTRL, ProximalAdagrad)):
        return True
    if getattr(opt, "exec_weight_decay", True):
        return False
    if isinstance(opt, SGD):
        return float(np.asarray(opt.momentum._jax())) == 0.0
    return type(opt) is Adagrad


def frozen_states(opt) -> set:
    """Names of the optimizer-state Parameters a step of ``opt`` neither changes nor uses for the
    update (SGD without momentum: ``accum.*`` and ``stat.*``). Their rows need not travel between
    a server and a cache: both copies keep their initial values."""
    from sporax.nn.optim.sgd import SGD

    if isinstance(opt, SGD) and float(np.asarray(opt.momentum._jax())) == 0.0:
        return {q.name for qs in state_params(opt).values() for q in qs}
    return set()


def _pad(rows: np.ndarray, n: int) -> np.ndarray:
    if rows.shape[0] == n:
        return rows
    out = np.zeros((n,) + rows.shape[1:], rows.dtype)
    out[: rows.shape[0]] = rows
    return out


def step_optimizer(opt, dense: dict, rows: dict, whole: bool = False) -> None:
    """Run one step of ``opt``: ``dense`` maps parameter names to full gradients; ``rows`` maps
    a table's name to ``(store, positions, row_grads)`` (positions into the store, unique).
    With ``whole`` every row of each store is updated (the rows not in ``positions`` with a zero
    gradient: see :func:`rows_only`), else only the rows at ``positions``.

    Every other parameter of ``opt`` gets ``None`` (untouched). The step counter and other
    shared state (Adam's beta powers, ...) advance once, as in local training.
    """
    states = state_params(opt)
    bound: list = []
    arrays: list = []
    grads: list = []
    views: list = []
    skipped: list = []
    for p in opt._parameters:
        if p.name in dense:
            grads.append(Tensor._wrap(dense[p.name]))
        elif p.name in rows:
            store, pos, g = rows[p.name]
            bound.append(p)
            if whole:
                full = np.zeros_like(store.values)
                full[pos] = g
                arrays.append(store.values)
                arrays.extend(store.states[q.name] for q in states[p.name])
                grads.append(Tensor._wrap(full))
                views.append((p, store, slice(None), None, len(states[p.name])))
            else:
                k = len(pos)
                n = bucket(k)
                arrays.append(_pad(store.values[pos], n))
                arrays.extend(_pad(store.states[q.name][pos], n) for q in states[p.name])
                grads.append(Tensor._wrap(_pad(np.asarray(g, store.values.dtype), n)))
                views.append((p, store, pos, k, len(states[p.name])))
            bound.extend(states[p.name])
        else:
            grads.append(None)
            skipped.append(p)
            skipped.extend(states[p.name])
    # Bind everything the step may write, except what it must not touch (and not materialize):
    # the parameters it does not update here, and their state.
    taken = {id(q) for q in bound} | {id(q) for q in skipped}
    others = [q for q in _binding.walk_cell(opt)[0] if id(q) not in taken]
    bound.extend(others)
    arrays.extend(q._jax() for q in others)
    with _binding.bind(bound, arrays, kind="jit"):
        opt(tuple(grads))
        new = _binding.read_values(bound)
    at = 0
    for p, store, pos, k, n_states in views:
        store.values[pos] = np.asarray(new[at])[:k]
        for j, q in enumerate(states[p.name]):
            store.states[q.name][pos] = np.asarray(new[at + 1 + j])[:k]
        at += 1 + n_states
    for q, old, value in zip(bound[at:], arrays[at:], new[at:]):
        if value is not old:
            q._assign(value)
