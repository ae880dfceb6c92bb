"""``nn.DistributedGradReducer``: all-reduce gradients over the data-parallel group, by the plan.

Per bucket of :func:`sporax.parallel.plan.bucket_records` (one per fusion id, id 0 alone,
layerwise parameters excluded), exactly one all-reduce (sum) in the bucket's dtype (float32 or
wider), then a multiplication by ``1/degree`` when ``mean`` and a cast back. Gradients of
``layerwise_parallel`` parameters come back unchanged.

How a bucket becomes one all-reduce (see :mod:`sporax.parallel._runtime`): on the CPU backend
each gradient gets its own psum in its own shape and XLA's all-reduce combiner merges the
bucket's psums into one tuple all-reduce, with no copies; the buckets (and the loss's mean)
are chained by data dependency so that the combiner never merges two of them. Elsewhere a
bucket of several gradients is raveled and concatenated into one flat buffer (a gradient
alone keeps its shape). Buckets are reduced last first, the order backward produces them in.

The reducer runs inside a data-parallel step (a Cell holding it is run under ``shard_map``
over the data-parallel devices, see :mod:`sporax.parallel.data_parallel`); with a single
device there is nothing to reduce and only the ``mean`` scaling by ``degree`` applies.
"""

from __future__ import annotations

import math

import jax.numpy as jnp

from sporax.common._validation import check_bool, check_non_negative_int, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.parallel import _runtime, opt_shard, plan

__all__ = ["DistributedGradReducer"]


def _reduce_each(grads: list, axis: str, members) -> list:
    """One psum per gradient, in its own shape: XLA's combiner makes them one all-reduce.

    Past the combiner's operand limit the smallest gradients share one flat buffer, so that the
    bucket still is one all-reduce.
    """
    from sporax.ops.comm_ops import ReduceOp, all_reduce

    limit = _runtime.COMBINE_LIMIT
    if len(grads) <= limit:
        return [all_reduce(g, ReduceOp.SUM, axis, members) for g in grads]
    order = sorted(range(len(grads)), key=lambda i: -grads[i].size)
    alone, packed = order[:limit - 1], sorted(order[limit - 1:])
    out = [None] * len(grads)
    for i in alone:
        out[i] = all_reduce(grads[i], ReduceOp.SUM, axis, members)
    for i, r in zip(packed, _reduce_flat([grads[i] for i in packed], axis, members)):
        out[i] = r
    return out


def _reduce_flat(grads: list, axis: str, members) -> list:
    """The gradients raveled into one buffer, all-reduced, and split back into their shapes."""
    from sporax.ops.comm_ops import ReduceOp, all_reduce

    flat = all_reduce(jnp.concatenate([g.reshape(-1) for g in grads]), ReduceOp.SUM, axis, members)
    out, offset = [], 0
    for g in grads:
        n = math.prod(g.shape)
        out.append(flat[offset:offset + n].reshape(g.shape))
        offset += n
    return out


class DistributedGradReducer(Cell):
    """``DistributedGradReducer(parameters, mean=None, degree=None, fusion_type=1, group=WORLD)``.

    ``mean=None`` takes the context's ``gradients_mean``; ``degree=None`` the size of the group
    on the data-parallel axis (every device of the step; a named group's member count).
    ``fusion_type=0`` sends every gradient alone; otherwise the parameters' ``comm_fusion``
    ids (or the context's ``comm_fusion`` config) form the buckets. Called on the tuple of
    gradients (in ``parameters`` order), it returns the reduced tuple.
    """

    def __init__(self, parameters, mean=None, degree=None, fusion_type: int = 1, group=None) -> None:
        from sporax import context
        from sporax.ops.comm_ops import _check_group

        super().__init__(auto_prefix=False)
        if isinstance(parameters, Parameter) or not hasattr(parameters, "__iter__"):
            raise TypeError(msg("DistributedGradReducer", "parameters", "a list or tuple of Parameters",
                                type(parameters).__name__))
        params = tuple(parameters)
        for p in params:
            if not isinstance(p, Parameter):
                raise TypeError(msg("DistributedGradReducer", "parameters", "a list or tuple of Parameters",
                                    type(p).__name__))
        if mean is None:
            mean = context._state.auto_parallel.gradients_mean
        mean = check_bool(mean, "mean", "DistributedGradReducer")
        if degree is not None and (isinstance(degree, bool) or not isinstance(degree, int) or degree <= 0):
            raise ValueError(msg("DistributedGradReducer", "degree", "None or an int > 0", degree))
        check_non_negative_int(fusion_type, "fusion_type", "DistributedGradReducer")
        members = _check_group(group, "DistributedGradReducer")
        # Not Cell attributes: the Parameters belong to the network (no renaming, no second owner).
        object.__setattr__(self, "_grad_params", params)
        self.mean = mean
        self.degree = degree
        self.fusion_type = fusion_type
        self.group = group
        object.__setattr__(self, "_members", members)

    @property
    def parameters(self) -> tuple:
        """The Parameters whose gradients this reducer receives, in order."""
        return self._grad_params

    def buckets(self, exclude=None) -> tuple:
        """The fusion buckets as they are now (a pure function of the Parameters' flags); the
        optimizer-sharded gradients (``exclude``, default: those of the step being traced) stay out."""
        from sporax import context

        if exclude is None:
            shards = _runtime.opt_shards()
            exclude = shards.weights if shards is not None else ()
        return plan.bucket_records(self._grad_params, context._state.auto_parallel.comm_fusion,
                                   self.fusion_type, exclude)

    def resolved_degree(self) -> int:
        """The divisor of ``mean``: ``degree``, or the group's size on the data-parallel axis."""
        if self.degree is not None:
            return self.degree
        if self._members is not None:
            return len(self._members)
        ax = _runtime.axis()
        if ax is not None:
            return ax[1]
        from sporax.ops.comm_ops import _world_size

        return _world_size()

    def construct(self, grads):
        from sporax.ops.comm_ops import ReduceOp, _scope, all_reduce

        grads = tuple(grads)
        if len(grads) != len(self._grad_params):
            raise ValueError(f"For 'DistributedGradReducer', got {len(grads)} gradients for "
                             f"{len(self._grad_params)} parameters.")
        arrays = [unwrap(g) if isinstance(g, Tensor) else jnp.asarray(g) for g in grads]
        ax = _scope("DistributedGradReducer", self._members) if _runtime.axis() is not None else None
        degree = self.degree or (len(self._members) if self._members else ax[1] if ax else 1)
        scale = 1.0 / degree if self.mean else None
        out = list(arrays)
        if ax is None:  # one device: nothing to reduce
            for bucket in self.buckets():
                for i in bucket.indices:
                    if scale is not None:
                        out[i] = (arrays[i].astype(bucket.dtype) * jnp.asarray(scale, bucket.dtype)).astype(
                            arrays[i].dtype)
            return tuple(Tensor._wrap(a) for a in out)
        shards = _runtime.opt_shards()
        if shards is not None:  # parallel optimizer: already reduce-scattered (opt_shard's module docstring)
            for i, p in enumerate(self._grad_params):
                if id(p) in shards.weights:
                    g = opt_shard.reduce_sharded(arrays[i], shards)
                    out[i] = g if scale is None else g * jnp.asarray(scale, g.dtype)
        combine = _runtime.combines(shards)
        for bucket in reversed(self.buckets()):  # last layers first: the order backward computes them in
            idx = bucket.indices
            dt = jnp.dtype(bucket.dtype)
            grads = [arrays[i].astype(dt) for i in idx]
            if combine:  # chained: the combiner merges this bucket's psums and nothing else
                reduced = _reduce_each(_runtime.tie(grads), ax[0], self._members)
                _runtime.advance(reduced)
            elif len(idx) == 1:
                reduced = [all_reduce(grads[0], ReduceOp.SUM, ax[0], self._members)]
            else:
                reduced = _reduce_flat(grads, ax[0], self._members)
            for i, r in zip(idx, reduced):
                if scale is not None:
                    r = r * jnp.asarray(scale, dt)
                out[i] = r.astype(arrays[i].dtype)
        return tuple(Tensor._wrap(a) for a in out)
