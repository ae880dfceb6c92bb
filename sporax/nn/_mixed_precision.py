"""Per-cell compute dtype: what ``Cell.to_float(dtype)`` (flags ``fp16``/``bf16``/``fp32``) does.

MindSpore runs every operator of a flagged cell on inputs cast to the flag's type, the cell's
inputs and Parameters included; the Parameters themselves keep their dtype (float32 master
weights), so their gradients come back in float32 through the cast. The innermost flag wins
(a BatchNorm flagged ``fp32`` inside an ``fp16`` network computes in float32).

sporax does the same at the cell boundary, inside the one ``construct`` call path (so eager,
compiled and differentiated calls all see it): while a flagged cell's ``construct`` runs, its
floating-point inputs are cast, and its *own* floating-point Parameters are rebound to cast
copies of their values (a value slot swap, as :mod:`sporax.common._binding` does). When
``construct`` returns, each Parameter gets its own value back, or, if the code wrote it (a
BatchNorm's moving statistics), the written value cast back to the Parameter's dtype. A cell's
outputs stay in the compute dtype, as in MindSpore. Known difference: a plain Tensor attribute
(not a Parameter) used inside a flagged cell is not cast; it promotes with the other operand.

A flagged cell's ``construct`` attribute is its bound :meth:`Cell._mixed_precision_construct`,
which calls the class's ``construct`` with the casts around it; an unflagged cell pays nothing.
"""

from __future__ import annotations

import contextlib

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common import dtype as mstype
from sporax.common.tensor import Tensor
from sporax.ops import _amp_scope

__all__ = ["FLAG_TYPES", "apply_flags", "cast_floating", "run_construct"]

# flag name -> compute dtype, in the order MindSpore applies them (a later true flag wins)
FLAG_TYPES = {"fp16": mstype.float16, "fp32": mstype.float32, "bf16": mstype.bfloat16}


def apply_flags(cell, flags: dict) -> None:
    """Set ``cell``'s compute dtype from mixed-precision flags (``add_flags(fp16=True)``)."""
    d = cell.__dict__
    chosen = d.get("_mixed_precision_type")
    for name, t in FLAG_TYPES.items():
        if flags.get(name):
            chosen = t
    d["_mixed_precision_type"] = chosen
    if chosen is None:
        d.pop("construct", None)
    else:
        d["construct"] = cell._mixed_precision_construct


def _is_float(x) -> bool:
    return jnp.issubdtype(x.dtype, jnp.floating)


def _cast_leaf(x, np_dtype):
    from sporax.common.parameter import Parameter

    if isinstance(x, Tensor) and not isinstance(x, Parameter):
        if x.dtype.np_dtype != np_dtype and jnp.issubdtype(x.dtype.np_dtype, jnp.floating):
            return Tensor._wrap(x._jax().astype(np_dtype))
        return x
    if isinstance(x, (jax.Array, np.ndarray, jax.core.Tracer)) and _is_float(x) and x.dtype != np_dtype:
        return jnp.asarray(x).astype(np_dtype)
    return x


def cast_floating(tree, dtype):
    """``tree`` with every floating Tensor/array cast to ``dtype`` (other leaves unchanged)."""
    np_dtype = dtype.np_dtype
    if isinstance(tree, (tuple, list)):
        return type(tree)(cast_floating(x, dtype) for x in tree)
    if isinstance(tree, dict):
        return {k: cast_floating(v, dtype) for k, v in tree.items()}
    return _cast_leaf(tree, np_dtype)


@contextlib.contextmanager
def _cast_own_parameters(cell, dtype):
    np_dtype = dtype.np_dtype
    swapped = []
    seen = set()
    for p in cell.__dict__["_params"].values():
        if p is None:
            continue
        if p._inited_param is not None:
            p = p._inited_param
        if id(p) in seen or p._dtype == dtype or p._dtype not in mstype.float_type:
            continue
        seen.add(id(p))
        value = p._jax()
        cast = value.astype(np_dtype)
        swapped.append((p, value, p._dtype, cast))
        p._value, p._dtype = cast, dtype
    try:
        yield
    finally:
        for p, value, own_dtype, cast in swapped:
            if p._value is cast:
                p._value, p._dtype = value, own_dtype
            else:  # written by construct: keep the new value, in the parameter's own dtype
                new = p._value
                p._value = new if new.dtype == own_dtype.np_dtype else new.astype(own_dtype.np_dtype)
                p._dtype = own_dtype


def run_construct(cell, args: tuple, kwargs: dict):
    """The class's ``construct`` of ``cell`` on cast inputs and cast own Parameters."""
    dtype = cell.__dict__["_mixed_precision_type"]
    args = cast_floating(args, dtype)
    kwargs = cast_floating(kwargs, dtype)
    # a cell with its own compute dtype is not entered by O1's operator casting (MindSpore's
    # rewrite skips it too): sporax.ops._amp_scope is suspended inside
    with _cast_own_parameters(cell, dtype), _amp_scope.suspended():
        return type(cell).construct(cell, *args, **kwargs)
