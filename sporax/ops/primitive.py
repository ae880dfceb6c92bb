"""Primitives: small callable operator objects, as in ``mindspore.ops`` (``ops.MatMul()``).

A Primitive holds its attributes twice, as MindSpore does: in ``attrs`` (the dict that
``repr`` and ``get_attr_dict`` show) and as plain instance attributes (``conv.stride``).
:func:`prim_attr_register` records a constructor's arguments into both.
"""

from __future__ import annotations

import functools
import inspect

__all__ = ["Primitive", "PrimitiveWithInfer", "PrimitiveWithCheck", "prim_attr_register", "constexpr"]


def prim_attr_register(fn):
    """Decorator for a Primitive's ``__init__``: records every argument (defaults included) as an attr."""
    signature = inspect.signature(fn)

    @functools.wraps(fn)
    def wrapper(self, *args, **kwargs):
        bound = signature.bind(self, *args, **kwargs)
        bound.apply_defaults()
        Primitive.__init__(self, type(self).__name__)
        for name, value in list(bound.arguments.items())[1:]:
            if name not in ("args", "kwargs"):
                self.add_prim_attr(name, value)
        fn(self, *args, **kwargs)

    return wrapper


def _attr_text(value) -> str:
    return str(value)


class Primitive:
    """An operator object. Subclasses define ``__call__``; ``shard`` records a strategy."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None:  # the O1 white-list check (sporax.ops._amp_scope), once per class
            from sporax.ops import _amp_scope

            cls.__call__ = _amp_scope.hook_call(call)

    def __init__(self, name: str | None = None) -> None:
        self.name = name or type(self).__name__
        self.__dict__.setdefault("attrs", {})  # a second __init__ (from a registered one) keeps the attrs
        self.__dict__.setdefault("in_strategy", None)
        self.__dict__.setdefault("out_strategy", None)
        self.__dict__.setdefault("instance_name", "")

    def add_prim_attr(self, name: str, value) -> Primitive:
        """Set attribute ``name`` (in ``attrs`` and as an instance attribute); returns self."""
        self.attrs[name] = value
        object.__setattr__(self, name, value)
        return self

    def del_prim_attr(self, name: str) -> Primitive:
        self.attrs.pop(name, None)
        self.__dict__.pop(name, None)
        return self

    def get_attr_dict(self) -> dict:
        return self.attrs

    def init_prim_io_names(self, inputs, outputs) -> None:
        """Record the operator's input and output names (MindSpore's ``input_names``/``output_names``)."""
        self.add_prim_attr("input_names", list(inputs))
        self.add_prim_attr("output_names", list(outputs))

    def shard(self, in_strategy=None, out_strategy=None) -> Primitive:
        """Record the operator's sharding strategy (used by semi-auto parallel)."""
        self.in_strategy = in_strategy
        self.out_strategy = out_strategy
        return self

    def set_prim_instance_name(self, instance_name: str) -> Primitive:
        self.instance_name = instance_name
        return self

    def __repr__(self) -> str:
        shown = {k: v for k, v in self.attrs.items() if k not in ("input_names", "output_names")}
        if not shown:
            return f"Prim[{self.name}]"
        return f"Prim[{self.name}]<" + ", ".join(f"{k}={_attr_text(v)}" for k, v in shown.items()) + ">"


PrimitiveWithInfer = Primitive
PrimitiveWithCheck = Primitive


def constexpr(fn=None, **_kwargs):
    """MindSpore's ``@constexpr``: the function runs on Python values, which is what it does here anyway."""
    if fn is None:
        return lambda f: f
    return fn
