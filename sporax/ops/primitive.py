"""Primitives: small callable operator objects, as in ``mindspore.ops`` (``ops.MatMul()``).

A Primitive holds its attributes twice, as MindSpore does: in ``attrs`` (the dict that
``repr`` and ``get_attr_dict`` show) and as plain instance attributes (``conv.stride``).
:func:`prim_attr_register` records a constructor's arguments into both.

``shard(in_strategy, out_strategy)`` records a strategy (checked for types here). Every
Primitive class has its ``__call__`` wrapped once, at class creation, so that while a
semi-auto parallel step is traced (``_shard_scope`` non-empty; the scope is pushed by
:mod:`sporax.parallel.semi_auto`) each call goes through the scope: for the operators listed
in ``_SHARD_KINDS`` it checks the strategy against the input shapes, records parameter layouts
and adds sharding constraints; a strategy on any other operator is a RuntimeError (it would
otherwise be silently ignored). Outside such a trace the wrapper costs one list test.
"""

from __future__ import annotations

import functools
import inspect

__all__ = ["Primitive", "PrimitiveWithInfer", "PrimitiveWithCheck", "prim_attr_register", "constexpr"]

# The semi-auto parallel scopes being traced, innermost last (see the module docstring).
_shard_scope: list = []

# Primitive class name -> rule kind. ``reshape`` passes layouts through (no rule, no constraint).
_SHARD_KINDS = {
    "MatMul": "matmul", "BatchMatMul": "matmul", "BiasAdd": "bias_add",
    "Add": "elementwise", "Sub": "elementwise", "Mul": "elementwise", "RealDiv": "elementwise",
    "Div": "elementwise", "Maximum": "elementwise", "Minimum": "elementwise",
    "ReLU": "unary", "GeLU": "unary", "FastGeLU": "unary", "Sigmoid": "unary", "Tanh": "unary",
    "Exp": "unary", "Log": "unary", "Neg": "unary", "Square": "unary", "Sqrt": "unary",
    "ReLU6": "unary", "SiLU": "unary",
    "Softmax": "softmax", "LogSoftmax": "softmax",
    "ReduceSum": "reduce", "ReduceMean": "reduce", "ReduceMax": "reduce", "ReduceMin": "reduce",
    "Gather": "gather", "Transpose": "transpose", "Reshape": "reshape",
}


def _check_shard_args(name: str, in_strategy, out_strategy) -> None:
    """``Primitive.shard``'s argument checks (before any shape is known).

    TypeError for a non-tuple strategy or a non-int cut, ValueError for a cut < 1 or an
    ``out_strategy`` without ``in_strategy`` (MindSpore's types).
    """
    for arg, strategy in (("in_strategy", in_strategy), ("out_strategy", out_strategy)):
        if strategy is None:
            continue
        if not isinstance(strategy, tuple):
            raise TypeError(f"For '{name}.shard', the '{arg}' should be a tuple of tuples of int, "
                            f"but got {type(strategy).__name__}: {strategy!r}.")
        for i, item in enumerate(strategy):
            if not isinstance(item, tuple):
                raise TypeError(f"For '{name}.shard', element {i} of '{arg}' {strategy!r} should be a tuple of int "
                                f"(one cut per dimension of input {i}), but got {type(item).__name__}.")
            for v in item:
                if not isinstance(v, int) or isinstance(v, bool):
                    raise TypeError(f"For '{name}.shard', the '{arg}' {strategy!r} of {name} is not valid: the "
                                    f"value of strategy must be int type, but got {type(v).__name__} ({v!r}).")
                if v < 1:
                    raise ValueError(f"For '{name}.shard', every value of '{arg}' should be an int >= 1, but "
                                     f"got {strategy!r}.")
    if in_strategy is None and out_strategy is not None:
        raise ValueError(f"The out_strategy of {name} is {out_strategy}, need to set in_strategy, but got none.")



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


def _shardable(call, kind: str):
    def __call__(self, *args, **kwargs):
        if _shard_scope:
            return _shard_scope[-1](self, kind, call, args, kwargs)
        return call(self, *args, **kwargs)

    __call__._sporax_shard_inner = call
    __call__.__doc__ = call.__doc__
    __call__._sporax_shard_kind = kind
    return __call__


class Primitive:
    """An operator object. Subclasses define ``__call__``; ``shard`` records a strategy."""

    def __init_subclass__(cls, **kwargs) -> None:
        super().__init_subclass__(**kwargs)
        call = cls.__dict__.get("__call__")
        if call is not None:  # the O1 white-list check (sporax.ops._amp_scope), once per class
            from sporax.ops import _amp_scope

            cls.__call__ = _amp_scope.hook_call(call)
        kind = _SHARD_KINDS.get(cls.__name__)  # None: no sharding rule (a strategy on it is an error)
        call = next((b.__dict__["__call__"] for b in cls.__mro__ if "__call__" in b.__dict__), None)
        if call is not None and getattr(call, "_sporax_shard_kind", False) != kind:
            cls.__call__ = _shardable(getattr(call, "_sporax_shard_inner", call), kind)

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
        """Set the operator's sharding strategy: ``in_strategy`` gives, per input, into how many
        parts each dimension is split (``matmul.shard(((2, 1), (4, 1)))``).

        Used in ``semi_auto_parallel`` / ``auto_parallel`` mode; in the other modes the strategy
        is recorded and ignored, as in MindSpore. TypeError for a non-tuple strategy or a
        non-int value, ValueError for a value < 1 or an ``out_strategy`` without ``in_strategy``;
        whether the strategy fits the inputs is checked when the step is compiled (RuntimeError).
        """
        if in_strategy is None and out_strategy is None:
            return self
        _check_shard_args(self.name, in_strategy, out_strategy)
        self.in_strategy = in_strategy
        self.out_strategy = out_strategy
        if in_strategy is not None:
            self.attrs["in_strategy"] = in_strategy
        if out_strategy is not None:
            self.attrs["out_strategy"] = out_strategy
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
