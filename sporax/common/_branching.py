"""Python control flow on a traced Tensor inside a compiled function: ``if all_finite(grads): ...``.

MindSpore compiles a ``construct`` (or ``@jit`` function) into a graph, so an ``if`` on a
Tensor becomes a graph branch. JAX traces Python instead, and a Python ``if`` needs a
concrete bool. sporax runs the traced function once per *decision path*: the first run takes
every Tensor condition as True and records it; each later run replays a recorded prefix and
takes the next condition as False, until every path has run (a depth-first walk). Each path
gives outputs and new state values; the compiled function returns, per value,
``where(path predicate, path value, ...)``, the predicates being the recorded conditions (and
their negations) of each path. The result equals the branch the data takes, as in MindSpore.

Why this and not ``jax.lax.cond``: ``lax.cond`` needs each branch as a function, and a Python
``if`` body is not one (turning it into one means rewriting the user's source, as AutoGraph
does). Path replay needs nothing from the user's code, and its state writes (an optimizer
step inside the ``if``) go through the one binding mechanism like any other write. What it
costs: the code of every path is traced (XLA shares the common part, computes each branch,
and selects; a skipped optimizer step is still computed), the number of paths is bounded
(:data:`MAX_CONDITIONS` conditions per path, :data:`MAX_PATHS` paths), so ``while tensor:``
loops are refused with an error naming the fix, and Python side effects (prints, list
appends) run once per path at trace time. All paths must return the same structure, shapes
and dtypes (MindSpore requires the same of its graph branches).

Outside sporax's compiled calls (a bare ``jax.jit``), ``bool`` of a traced Tensor raises a
TypeError naming the two ways out.
"""

from __future__ import annotations

import contextvars

import jax
import jax.numpy as jnp

__all__ = ["decide", "run_paths", "select", "MAX_CONDITIONS", "MAX_PATHS"]

MAX_CONDITIONS = 8
MAX_PATHS = 32

_REC: contextvars.ContextVar = contextvars.ContextVar("sporax_branch_recorder", default=None)

_FIX = ("compute both values and pick with ops.select(cond, a, b) (jnp.where), or call the function from "
        "sporax.jit / GRAPH_MODE, where Python control flow on a Tensor is supported")


class _Recorder:
    def __init__(self, prefix: tuple) -> None:
        self.prefix = prefix
        self.decisions: list = []
        self.conds: list = []

    def decide(self, cond) -> bool:
        i = len(self.decisions)
        if i >= MAX_CONDITIONS:
            raise RuntimeError(
                f"A compiled function took more than {MAX_CONDITIONS} Python decisions ('if'/'while'/'and'/'or') "
                "on traced Tensors in one run; sporax traces each decision path, so a 'while' on a Tensor (or "
                f"a long chain of them) is not supported. Fix: {_FIX.split(', or call')[0]}, or make the "
                "condition a Python value.")
        d = self.prefix[i] if i < len(self.prefix) else True
        self.decisions.append(d)
        self.conds.append(cond)
        return d


def decide(value) -> bool:
    """``bool(tensor)`` for a traced value: the decision of the path being traced."""
    rec = _REC.get()
    if rec is None:
        raise TypeError("A Python 'if'/'while'/'and'/'or'/'not' on a Tensor needs its value, and this Tensor is "
                        f"traced (inside jax.jit, grad or vmap) so it has none. Fix: {_FIX}.")
    if value.size != 1:
        raise ValueError("The truth value of a Tensor with more than one element is ambiguous; reduce it first "
                         "(ops.all / ops.any).")
    return rec.decide(jnp.reshape(value, ()).astype(bool))


def run_paths(run_once) -> list:
    """``[(predicate or None, run_once()), ...]`` over every decision path of ``run_once``."""
    results = []
    stack = [()]
    while stack:
        prefix = stack.pop()
        rec = _Recorder(prefix)
        token = _REC.set(rec)
        try:
            res = run_once()
        finally:
            _REC.reset(token)
        for i in range(len(rec.decisions) - 1, len(prefix) - 1, -1):
            stack.append(tuple(rec.decisions[:i]) + (False,))
        pred = None
        for c, d in zip(rec.conds, rec.decisions):
            term = c if d else jnp.logical_not(c)
            pred = term if pred is None else jnp.logical_and(pred, term)
        results.append((pred, res))
        if len(results) > MAX_PATHS:
            raise RuntimeError(f"A compiled function has more than {MAX_PATHS} paths through Python conditions on "
                               f"traced Tensors. Fix: {_FIX.split(', or call')[0]}.")
    return results


def select(preds: list, values: list, names: list) -> list:
    """Per position, the value of the path whose predicate holds (the last path is the default).

    ``values[k]`` is path k's list of arrays; ``names[j]`` says what position j is, for errors.
    """
    acc = list(values[-1])
    for pred, leaves in zip(reversed(preds[:-1]), reversed(values[:-1])):
        out = []
        for j, (a, b) in enumerate(zip(leaves, acc)):
            if a is b:
                out.append(a)
                continue
            if tuple(jnp.shape(a)) != tuple(jnp.shape(b)) or jnp.result_type(a) != jnp.result_type(b):
                raise TypeError(f"The branches of a Python 'if' on a Tensor give {names[j]} different shapes or "
                                f"dtypes ({jnp.shape(a)} {jnp.result_type(a)} vs {jnp.shape(b)} "
                                f"{jnp.result_type(b)}); both branches must agree, as in MindSpore's graph mode.")
            try:
                out.append(jnp.where(pred, a, b))
            except jax.errors.UnexpectedTracerError as exc:
                raise RuntimeError("A Python 'if' on a Tensor inside a function being differentiated (value_and_grad "
                                   f"inside jit) is not supported. Fix: {_FIX.split(', or call')[0]}.") from exc
        acc = out
    return acc
