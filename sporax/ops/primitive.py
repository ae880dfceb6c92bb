"""Primitives: small callable operator objects, as in ``mindspore.ops`` (``ops.MatMul()``)."""

from __future__ import annotations

__all__ = ["Primitive", "PrimitiveWithInfer", "prim_attr_register"]


def prim_attr_register(fn):
    """Decorator kept for MindSpore source compatibility: records __init__ arguments as attrs."""

    def wrapper(self, *args, **kwargs):
        fn(self, *args, **kwargs)

    wrapper.__wrapped__ = fn
    return wrapper


class Primitive:
    """An operator object. Subclasses define ``__call__``; ``shard`` records a strategy."""

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self.attrs: dict = {}
        self.in_strategy = None
        self.out_strategy = None

    def add_prim_attr(self, name: str, value) -> Primitive:
        self.attrs[name] = value
        return self

    def shard(self, in_strategy=None, out_strategy=None) -> Primitive:
        """Record the operator's sharding strategy (used by semi-auto parallel)."""
        self.in_strategy = in_strategy
        self.out_strategy = out_strategy
        return self

    def set_prim_instance_name(self, instance_name: str) -> Primitive:
        self.instance_name = instance_name
        return self

    def __repr__(self) -> str:
        return f"Prim[{self.name}]"


PrimitiveWithInfer = Primitive
