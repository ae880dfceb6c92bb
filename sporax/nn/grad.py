"""``nn.Jvp`` and ``nn.Vjp``: Cells computing the Jacobian-vector and vector-Jacobian products of a network."""

from __future__ import annotations

from sporax.common._validation import msg
from sporax.nn.cell import Cell
from sporax.ops.function.grad_func import jvp, vjp

__all__ = ["Jvp", "Vjp"]


class Jvp(Cell):
    """``Jvp(fn)(*inputs, v)``: ``(fn(*inputs), J v)``; ``v`` is a Tensor or a tuple, one tangent per input."""

    def __init__(self, fn) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(msg("Jvp", "fn", "a Cell or function", type(fn).__name__))
        self.fn = fn

    def construct(self, *args):
        if len(args) < 2:
            raise TypeError("For 'Jvp', the inputs should be the network's inputs followed by 'v'.")
        return jvp(self.fn, tuple(args[:-1]), args[-1])


class Vjp(Cell):
    """``Vjp(fn)(*inputs, v)``: ``(fn(*inputs), v^T J)``; the second item is a tuple over the inputs."""

    def __init__(self, fn) -> None:
        super().__init__()
        if not callable(fn):
            raise TypeError(msg("Vjp", "fn", "a Cell or function", type(fn).__name__))
        self.fn = fn

    def construct(self, *args):
        if len(args) < 2:
            raise TypeError("For 'Vjp', the inputs should be the network's inputs followed by 'v'.")
        out, fn = vjp(self.fn, *args[:-1])
        return out, fn(args[-1])
