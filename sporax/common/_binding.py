"""The one state-threading mechanism: bind Parameters to arrays, run, read back, restore.

JAX functions are pure and sporax Parameters are mutable. Every transformation (grad,
jit, parallel) joins them the same way: swap each Parameter's value for an array (a tracer
inside ``jax.jit``/``jax.grad``), run the user's code, read the values back (including any
``set_data``/``assign`` the code did), and restore the originals in ``finally``.

A write to a Parameter that is *not* bound while a trace is active would be lost (it
happens once, at trace time), so ``Parameter._assign`` asks :func:`check_write` first and
raises instead of going silently stale. Plain Tensors created inside a trace are local
values and may be written freely.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence

import jax

__all__ = ["bind", "read_values", "check_write", "tracing"]

# Stack of active bindings; each frame is (set of bound object ids, whether it traces).
_frames: list[tuple[frozenset[int], bool]] = []


def tracing() -> bool:
    """True while a tracing binding (jit/grad) is active."""
    return any(traced for _, traced in _frames)


@contextlib.contextmanager
def bind(params: Sequence, arrays: Sequence, *, traced: bool = True) -> Iterator[None]:
    """Temporarily give each Parameter in ``params`` the matching value in ``arrays``.

    Values written to the Parameters during the block can be collected with
    :func:`read_values` before the block exits; afterwards every Parameter holds its
    original value again, whatever happened inside.
    """
    if len(params) != len(arrays):
        raise ValueError(f"bind: got {len(params)} parameters but {len(arrays)} arrays.")
    saved = [(p._value, p._shape) for p in params]
    _frames.append((frozenset(map(id, params)), traced))
    try:
        for p, a in zip(params, arrays):
            p._value = a
            p._shape = tuple(a.shape)
        yield
    finally:
        _frames.pop()
        for p, (value, shape) in zip(params, saved):
            p._value = value
            p._shape = shape


def read_values(params: Sequence) -> list:
    """The current (possibly traced) value of each bound Parameter."""
    return [p._value for p in params]


def check_write(param, new_value) -> None:
    """Raise if writing ``new_value`` into ``param`` now would be lost or leak a tracer."""
    if not _frames:
        if isinstance(new_value, jax.core.Tracer):
            raise RuntimeError(
                f"Cannot store a traced value into {_describe(param)} outside the jit/grad "
                "call that produced it: the value would leak out of the transformation. "
                "Return it from the function instead."
            )
        return
    bound_ids, traced = _frames[-1]
    if id(param) in bound_ids:
        return
    if traced or isinstance(new_value, jax.core.Tracer):
        raise RuntimeError(
            f"{_describe(param)} was written inside a jit/grad transformation that does not "
            "carry it as state, so the write would be lost after tracing. Make it an "
            "attribute of the Cell being compiled (or pass it in `weights`), or write it "
            "outside the transformation."
        )


def _describe(param) -> str:
    return f"Parameter '{param.name}'"
