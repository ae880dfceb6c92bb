"""The one place where ``amp_level="O1"`` casts operators: a dynamic white-list scope.

MindSpore 2.10's O1 rewrites a network's source so that every call of a white-listed
Primitive (``ops.MatMul``, ``ops.ReLU``, ``ops.Conv2D``, ...) gets its floating inputs cast
to float16 (or bfloat16) and its outputs cast back to float32, however the Primitive is
reached: a cell attribute (``self.matmul(x, w)``), an instance made inline
(``ops.MatMul()(x, w)``), or a functional op built on that Primitive (``ops.relu``,
``ops.conv2d``, ``ops.mm``, ``ops.bmm``, ``ops.prelu``, ``ops.ger``). Operators that are not
white-list Primitives are left in float32, also in MindSpore: ``x @ w``, ``Tensor.matmul``,
``ops.matmul``, ``ops.dense``, ``a + b``, ``ops.add`` (checked against MindSpore 2.10 in
``tests/train/test_amp_o1_ops.py``).

sporax does it dynamically instead of rewriting source: while an O1 network's ``construct``
runs, :func:`scope` holds the white list; every Primitive's ``__call__`` (wrapped once per
class by :func:`hook_call`, from ``Primitive.__init_subclass__``) and every functional op
marked with :func:`as_primitive` checks it. A white-listed call runs with the scope
suspended, so the ops it is built from are not cast again, and so does every cell with its
own compute dtype (``to_float``; MindSpore's rewrite does not enter those either).
Outside a scope the check is one context-variable read.
"""

from __future__ import annotations

import contextlib
import contextvars
import functools
import importlib

__all__ = ["scope", "suspended", "hook_call", "as_primitive", "active"]

# (white-list classes, low-precision dtype) while an O1 network runs, else None
_SCOPE: contextvars.ContextVar = contextvars.ContextVar("sporax_amp_o1_scope", default=None)


def active():
    """The current ``(white_classes, dtype)``, or None."""
    return _SCOPE.get()


@contextlib.contextmanager
def scope(white: tuple, dtype):
    """Run the block with ``white`` (Primitive classes) cast to ``dtype``."""
    token = _SCOPE.set((tuple(white), dtype))
    try:
        yield
    finally:
        _SCOPE.reset(token)


@contextlib.contextmanager
def suspended():
    """Run the block with no white-list casting (inside a cast call or a ``to_float`` cell)."""
    token = _SCOPE.set(None)
    try:
        yield
    finally:
        _SCOPE.reset(token)


def _cast_call(fn, dtype, args, kwargs):
    from sporax.common import dtype as mstype
    from sporax.nn._mixed_precision import cast_floating

    args = cast_floating(args, dtype)
    kwargs = cast_floating(kwargs, dtype)
    with suspended():
        out = fn(*args, **kwargs)
    return cast_floating(out, mstype.float32)


def hook_call(call):
    """``call`` (a Primitive class's ``__call__``) casting when its class is white-listed in the scope."""
    if getattr(call, "_sporax_amp_hooked", False):
        return call

    @functools.wraps(call)
    def wrapper(self, *args, **kwargs):
        s = _SCOPE.get()
        if s is None or not isinstance(self, s[0]):
            return call(self, *args, **kwargs)
        return _cast_call(functools.partial(call, self), s[1], args, kwargs)

    wrapper._sporax_amp_hooked = True
    return wrapper


def as_primitive(prim_name: str):
    """Decorator: the functional op is MindSpore's ``prim_name`` Primitive for O1 purposes."""

    def deco(fn):
        @functools.wraps(fn)
        def wrapper(*args, **kwargs):
            s = _SCOPE.get()
            if s is None:
                return fn(*args, **kwargs)
            cls = getattr(importlib.import_module("sporax.ops.operations"), prim_name)
            if not any(issubclass(cls, w) for w in s[0]):
                return fn(*args, **kwargs)
            return _cast_call(fn, s[1], args, kwargs)

        return wrapper

    return deco
