"""Collective operators: ``AllReduce``, ``AllGather``, ``ReduceScatter``, ``Broadcast`` with ``ReduceOp``.

They run over the data-parallel axis of the step being traced (see
:mod:`sporax.parallel._runtime`): inside a data-parallel training step each device of the mesh
is one member. Outside a step there is one member (the op is the identity of a one-device
group); calling one there while several devices form the data-parallel group is a
RuntimeError, since there is no SPMD program to communicate in.

Groups: the world group (``GlobalComm.WORLD_COMM_GROUP``) or a name from
``communication.create_group(name, rank_ids)``, whose ranks are positions on the
data-parallel axis (devices; with one device per process, MindSpore's model, the process
ranks). Inside SPMD code every device runs the op; a device outside a named group gets its
input back (AllReduce, Broadcast) or the group's result (AllGather).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common._validation import msg
from sporax.common.tensor import Tensor, unwrap
from sporax.ops.primitive import Primitive

__all__ = ["ReduceOp", "AllReduce", "AllGather", "ReduceScatter", "Broadcast"]


class ReduceOp:
    """Reduction of ``AllReduce`` / ``ReduceScatter``."""

    SUM = "sum"
    MAX = "max"
    MIN = "min"
    PROD = "prod"


_OPS = (ReduceOp.SUM, ReduceOp.MAX, ReduceOp.MIN, ReduceOp.PROD)


def _check_group(group, where: str):
    """The group's members on the data-parallel axis (None for the world group); ValueError if unknown."""
    from sporax import communication

    if group is None or group in communication._WORLD:
        return None
    if not isinstance(group, str):
        raise TypeError(msg(where, "group", "a str (a group made by create_group)", group))
    if group not in communication._groups:
        raise ValueError(msg(where, "group", "an existing communication group (see create_group)", group))
    return tuple(communication._groups[group])


def _scope(where: str, members):
    """``(axis name, axis size)``; None when the op acts on one member (no step being traced)."""
    from sporax.parallel import _runtime

    ax = _runtime.axis()
    if ax is not None:
        if members is not None and max(members) >= ax[1]:
            raise ValueError(f"For '{where}', the group ranks {list(members)} exceed the {ax[1]} devices of the "
                             "data-parallel axis.")
        return ax
    if members is not None and len(members) > 1 or _world_size() > 1:
        raise RuntimeError(
            f"'{where}' communicates across the devices of a data-parallel step: call it inside the construct of a "
            "training step (a Cell holding nn.DistributedGradReducer, e.g. TrainOneStepCell) in DATA_PARALLEL or "
            "HYBRID_PARALLEL mode."
        )
    return None


def _world_size() -> int:
    from sporax import context
    from sporax.parallel import _runtime

    if context._parallel_mode() not in ("data_parallel", "hybrid_parallel") or _runtime.cluster_pending():
        return 1
    return len(_runtime.dp_devices())


def _mask(axis: str, members):
    idx = jax.lax.axis_index(axis)
    return jnp.isin(idx, jnp.asarray(members)), idx


def _identity_of(op: str, dtype):
    if op == ReduceOp.SUM:
        return jnp.zeros((), dtype)
    if op == ReduceOp.PROD:
        return jnp.ones((), dtype)
    info = jnp.finfo(dtype) if jnp.issubdtype(dtype, jnp.floating) else jnp.iinfo(dtype)
    return jnp.asarray(info.min if op == ReduceOp.MAX else info.max, dtype)


def all_reduce(x, op: str, axis: str, members=None):
    """``x`` reduced with ``op`` over ``axis`` (or the ``members`` of a named group). Array in, array out."""
    inside = None
    if members is not None:
        inside, _ = _mask(axis, members)
        x_in = jnp.where(inside, x, _identity_of(op, x.dtype))
    else:
        x_in = x
    if op == ReduceOp.SUM:
        out = jax.lax.psum(x_in, axis)
    elif op == ReduceOp.MAX:
        out = jax.lax.pmax(x_in, axis)
    elif op == ReduceOp.MIN:
        out = jax.lax.pmin(x_in, axis)
    else:
        out = jnp.prod(jax.lax.all_gather(x_in, axis), axis=0).astype(x.dtype)
    return out if inside is None else jnp.where(inside, out, x)


def _gather(x, axis: str, members):
    full = jax.lax.all_gather(x, axis, tiled=False)  # (axis size, *x.shape)
    if members is not None:
        full = full[np.asarray(members)]
    return full.reshape((-1, *x.shape[1:])) if x.ndim else full


class _Collective(Primitive):
    def __init__(self, group, name: str) -> None:
        from sporax.communication import GlobalComm

        super().__init__(name)
        self.group = GlobalComm.WORLD_COMM_GROUP if group is None else group
        self._members = _check_group(group, name)
        self.add_prim_attr("group", self.group)

    def _array(self, x, arg: str = "x"):
        if not isinstance(x, (Tensor, jax.Array, np.ndarray, jax.core.Tracer)):
            raise TypeError(msg(self.name, arg, "a Tensor", type(x).__name__))
        return unwrap(x) if isinstance(x, Tensor) else jnp.asarray(x)


class AllReduce(_Collective):
    """``AllReduce(op=ReduceOp.SUM, group=GlobalComm.WORLD_COMM_GROUP)(x)``: every member gets the reduction."""

    def __init__(self, op: str = ReduceOp.SUM, group=None) -> None:
        if op not in _OPS:
            raise ValueError(msg("AllReduce", "op", f"one of {list(_OPS)}", op))
        super().__init__(group, "AllReduce")
        self.op = op
        self.add_prim_attr("op", op)

    def __call__(self, x):
        from sporax.parallel import _runtime

        a = self._array(x)
        ax = _scope(self.name, self._members)
        if ax is None:
            return Tensor._wrap(a)
        out = all_reduce(_runtime.tie([a])[0], self.op, ax[0], self._members)
        _runtime.advance([out])  # ordered with the step's other all-reduces: never merged with them
        return Tensor._wrap(out)


class AllGather(_Collective):
    """``AllGather(group)(x)``: the members' inputs concatenated along dimension 0, in rank order."""

    def __init__(self, group=None) -> None:
        super().__init__(group, "AllGather")

    def __call__(self, x):
        a = self._array(x)
        ax = _scope(self.name, self._members)
        if ax is None:
            return Tensor._wrap(a)
        if a.ndim == 0:
            raise ValueError(f"For 'AllGather', the input should have at least 1 dimension, but got shape {a.shape}.")
        return Tensor._wrap(_gather(a, ax[0], self._members))


class ReduceScatter(_Collective):
    """``ReduceScatter(op=ReduceOp.SUM, group)(x)``: reduce over the members, member ``i`` keeps chunk ``i``
    of dimension 0 (which must divide by the group size)."""

    def __init__(self, op: str = ReduceOp.SUM, group=None) -> None:
        if op not in _OPS:
            raise ValueError(msg("ReduceScatter", "op", f"one of {list(_OPS)}", op))
        super().__init__(group, "ReduceScatter")
        self.op = op
        self.add_prim_attr("op", op)

    def __call__(self, x):
        a = self._array(x)
        ax = _scope(self.name, self._members)
        if ax is None:
            return Tensor._wrap(a)
        size = ax[1] if self._members is None else len(self._members)
        if a.ndim == 0 or a.shape[0] % size:
            raise ValueError(f"For 'ReduceScatter', dimension 0 of the input (shape {a.shape}) should be divisible "
                             f"by the group size {size}.")
        chunk = a.shape[0] // size
        if self._members is None and self.op == ReduceOp.SUM:
            return Tensor._wrap(jax.lax.psum_scatter(a, ax[0], scatter_dimension=0, tiled=True))
        full = all_reduce(a, self.op, ax[0], self._members)
        idx = jax.lax.axis_index(ax[0])
        pos = idx if self._members is None else jnp.argmax(jnp.asarray(self._members) == idx)
        return Tensor._wrap(jax.lax.dynamic_slice_in_dim(full, pos * chunk, chunk, axis=0))


class Broadcast(_Collective):
    """``Broadcast(root_rank, group)((x, ...))``: every member gets ``root_rank``'s tensors (a tuple)."""

    def __init__(self, root_rank: int, group=None) -> None:
        if isinstance(root_rank, bool) or not isinstance(root_rank, int) or root_rank < 0:
            raise ValueError(msg("Broadcast", "root_rank", "an int >= 0", root_rank))
        super().__init__(group, "Broadcast")
        if self._members is not None and root_rank not in self._members:
            raise ValueError(msg("Broadcast", "root_rank", f"a member of group {self.group!r} {list(self._members)}",
                                 root_rank))
        self.root_rank = root_rank
        self.add_prim_attr("root_rank", root_rank)

    def __call__(self, input_x):
        if not isinstance(input_x, (tuple, list)):
            raise TypeError(msg("Broadcast", "input_x", "a tuple of Tensors", type(input_x).__name__))
        arrays = [self._array(x, "input_x") for x in input_x]
        ax = _scope(self.name, self._members)
        if ax is None:
            return tuple(Tensor._wrap(a) for a in arrays)
        if self.root_rank >= ax[1]:
            raise ValueError(f"For 'Broadcast', the 'root_rank' {self.root_rank} is not on the data-parallel axis of "
                             f"{ax[1]} devices.")
        from sporax.parallel import _runtime

        idx = jax.lax.axis_index(ax[0])
        out = []
        for a in _runtime.tie(arrays):
            b = jax.lax.psum(jnp.where(idx == self.root_rank, a, jnp.zeros((), a.dtype)), ax[0])
            if self._members is not None:
                b = jnp.where(jnp.isin(idx, jnp.asarray(self._members)), b, a)
            out.append(Tensor._wrap(b.astype(a.dtype)))
        _runtime.advance([unwrap(b) for b in out])
        return tuple(out)
