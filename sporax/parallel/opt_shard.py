"""The parallel optimizer at run time: sharded state, the forward all-gather, comm recompute.

What is sharded is decided by :func:`sporax.parallel.plan.optimizer_shard_plan` (a pure
function of the flags); this module runs it inside a data-parallel step
(:mod:`sporax.parallel.data_parallel`):

- *Storage.* A sharded weight and each of its optimizer states are one ``jax.Array`` of the
  full shape with ``NamedSharding(mesh, P(shard_axis))``: every device holds its rows
  ``layout.opt_shard_window`` of dimension 0 and nothing else. A lazy Parameter is
  initialized shard by shard through its initializer's exact window, so the full tensor never
  exists on any device or host; host values are cut into the same windows.
  ``Parameter.asnumpy()`` gives the full tensor (gathered on the host) in one process;
  ``data_parallel.get_device_values`` gives each local device's rows.
- *Step.* The step's ``shard_map`` hands each device its shard. While the gradients are
  differentiated (``ops.composite._differentiate``, which every ``GradOperation`` /
  ``TrainOneStepCell`` uses), :func:`forward_views` replaces each sharded weight by its
  ``all_gather`` over the shard group, so the network computes with the full weight and the
  gradient with respect to the shard is the transpose of that gather: a reduce-scatter
  (summed over the group). The reducer skips those gradients in its all-reduce buckets, only
  all-reducing them over the other groups when ``optimizer_weight_shard_size`` k < N and
  scaling by ``1/degree`` for ``mean``; the optimizer then updates shards of weights with
  shards of gradients and of state (its update is row-wise, ``Optimizer._shard_rows``).
- *Comm recompute* (``parallel_optimizer_comm_recompute`` or ``optimizer_level='level3'``):
  the differentiated function runs under ``jax.checkpoint`` with a policy that saves
  everything but the all-gathered weights, so the backward pass gathers them again from the
  shards instead of keeping the forward copy alive. On the CPU backend the step is then
  compiled with XLA's memory-optimized scheduler and without ``cse_barrier_expander`` (which
  would drop the optimization barrier that keeps XLA's CSE from merging the two gathers).

Meshes: k = N uses the data-parallel mesh (axis ``"dp"``). k < N uses a two-axis mesh of the
same devices in the same order, ``("dp_rep", "dp_opt")`` of shape ``(N/k, k)``: a shard group
is k consecutive devices (MindSpore's grouping), and the step's data-parallel axis is the pair.
"""

from __future__ import annotations

import contextlib
import math

import numpy as np

from sporax.parallel import _runtime

__all__ = ["StepShards", "forward_views", "remat", "active"]

GATHER_NAME = "sporax_opt_shard_gather"
REP_AXIS, OPT_AXIS = "dp_rep", "dp_opt"
_meshes: dict = {}


class StepShards:
    """The sharding of one data-parallel step: which Parameters are sharded, over which axes."""

    def __init__(self, plan, chosen: dict, devices: list) -> None:
        self.plan = plan
        self.n = len(devices)
        self.k = plan.group_size
        self.weights = {}  # id(weight) -> full shape
        self.states = {}  # id(state) -> full shape
        self.recompute = set()
        for rec, (p, states) in zip(plan.shards, chosen.values()):
            self.weights[id(p)] = tuple(p.shape)
            for q in states:
                self.states[id(q)] = tuple(q.shape)
            if rec.recompute:
                self.recompute.add(id(p))
        if self.k == self.n:
            self.mesh = _runtime.mesh(devices)
            self.shard_axis, self.mirror_axis, self.axis = _runtime.AXIS, None, _runtime.AXIS
        else:
            self.mesh = _two_axis_mesh(devices, self.k)
            self.shard_axis, self.mirror_axis, self.axis = OPT_AXIS, REP_AXIS, (REP_AXIS, OPT_AXIS)

    def is_sharded(self, param) -> bool:
        return id(param) in self.weights or id(param) in self.states

    def spec(self, param):
        from jax.sharding import PartitionSpec as P

        return P(self.shard_axis) if self.is_sharded(param) else P()

    def sharding(self, param):
        from jax.sharding import NamedSharding

        return NamedSharding(self.mesh, self.spec(param))

    def key(self) -> tuple:
        """What a compiled step depends on: the plan, and which Parameter objects are sharded."""
        return (self.plan.key(), tuple(self.weights), tuple(self.states))


def _two_axis_mesh(devices: list, k: int):
    from jax.sharding import Mesh

    key = (tuple(d.id for d in devices), k)
    m = _meshes.get(key)
    if m is None:
        grid = np.array(devices, dtype=object).reshape(len(devices) // k, k)
        m = _meshes[key] = Mesh(grid, (REP_AXIS, OPT_AXIS))
    return m


def active() -> StepShards | None:
    """The sharding of the data-parallel step being traced, or None."""
    return _runtime.opt_shards()


# ---------------------------------------------------------------------------------- placement
def _window(param, full_shape: tuple, index: tuple) -> np.ndarray:
    """The window ``index`` (a tuple of slices) of ``param``'s value, computed alone when lazy."""
    offsets = tuple(0 if s.start is None else int(s.start) for s in index)
    sizes = tuple((n if s.stop is None else int(s.stop)) - o for s, n, o in zip(index, full_shape, offsets))
    return param.init.window(param._seed, full_shape, param._dtype, offsets, sizes)


def place(param, sharding) -> None:
    """Give ``param`` the value it has now, stored with ``sharding`` (each device only its window)."""
    import jax

    value = param._value
    if isinstance(value, jax.Array) and value.sharding == sharding:
        return
    shape = tuple(param.shape)
    if value is None and param.init is not None:  # lazy: every local window from the initializer
        arr = jax.make_array_from_callback(shape, sharding, lambda idx: _window(param, shape, idx))
    elif isinstance(value, jax.Array) and value.is_fully_addressable:
        arr = jax.device_put(value, sharding)
    else:
        host = value if isinstance(value, np.ndarray) else np.asarray(value.addressable_shards[0].data)
        if host.shape != shape:  # a non-addressable array that is not replicated
            from jax.experimental import multihost_utils

            host = np.asarray(multihost_utils.process_allgather(value, tiled=True))
        arr = jax.make_array_from_callback(shape, sharding, lambda idx: host[idx])
    param._value = arr
    param.init = None
    if hasattr(param, "init_mode"):
        param.init_mode = None


# ---------------------------------------------------------------------------------- in the step
def forward_views(params, values) -> list:
    """``values`` with each sharded weight of ``params`` replaced by its all-gather (see the module doc)."""
    import jax
    from jax.ad_checkpoint import checkpoint_name

    shards = _runtime.opt_shards()
    if shards is None:
        return list(values)
    out = list(values)
    for i, (p, v) in enumerate(zip(params, values)):
        full = shards.weights.get(id(p))
        if full is None or tuple(v.shape) == full:  # not sharded, or already the gathered view
            continue
        g = jax.lax.all_gather(v, shards.shard_axis, axis=0, tiled=True)
        if id(p) in shards.recompute:
            g = checkpoint_name(g, GATHER_NAME)
        out[i] = g
    return out


def _policy(gathered_sizes: frozenset):
    """Remat policy: save every value except the all-gathered weights and what is computed from them
    alone (a transpose or cast of a weight, recognized by its inputs all having a gathered weight's
    element count); those are computed again from the shards in the backward pass."""

    def saveable(prim, *avals, **params) -> bool:
        if prim.name == "all_gather" or (prim.name == "name" and params.get("name") == GATHER_NAME):
            return False
        arrays = [a for a in avals if getattr(a, "shape", ())]
        return not arrays or not all(math.prod(a.shape) in gathered_sizes for a in arrays)

    return saveable


_semi_recompute: list = []  # semi-auto steps being traced: {id(weight): element count} with comm recompute


@contextlib.contextmanager
def recompute_scope(recompute: dict):
    """While a semi-auto step is traced: the sharded weights whose gathers are recomputed."""
    _semi_recompute.append(recompute or {})
    try:
        yield
    finally:
        _semi_recompute.pop()


def remat(fn, params):
    """``fn`` under ``jax.checkpoint`` when one of ``params`` is a sharded weight with comm recompute.

    In semi-auto parallel XLA's partitioner makes the gather of a weight where the step
    constrains it to its op's layout (``jax.lax.with_sharding_constraint``): that value and what
    is computed from the weight alone are not saved, so the backward pass constrains (gathers) again.
    """
    import jax

    shards = _runtime.opt_shards()
    if shards is not None and shards.recompute:
        sizes = frozenset(math.prod(shards.weights[id(p)]) for p in params if id(p) in shards.recompute)
    elif shards is None and _semi_recompute and _semi_recompute[-1]:
        rec = _semi_recompute[-1]
        sizes = frozenset(rec[id(p)] for p in params if id(p) in rec)
    else:
        return fn
    if not sizes:
        return fn
    return jax.checkpoint(fn, policy=_policy(sizes), prevent_cse=True)


def reduce_sharded(grad, shards: StepShards):
    """A sharded weight's gradient after the reduce-scatter: summed over the other groups (k < N)."""
    import jax

    if shards.mirror_axis is None:
        return grad
    return jax.lax.psum(grad, shards.mirror_axis)


def recompute_jit_options(recompute: dict):
    """``jax.jit`` options of a semi-auto step: None, or with comm recompute the XLA settings below."""
    if not recompute:
        return None
    return {"compiler_options": _recompute_options({})}


def compiler_options(shards: StepShards | None, base: dict) -> dict:
    """The step's XLA options: ``base``, and for comm recompute on CPU the two settings of the module doc."""
    if shards is None or not shards.recompute:
        return base
    return _recompute_options(base)


def _recompute_options(base: dict) -> dict:
    import jax

    if jax.default_backend() != "cpu":
        return base
    out = dict(base)
    passes = [p for p in out.get("xla_disable_hlo_passes", "").split(",") if p]
    out["xla_disable_hlo_passes"] = ",".join([*passes, "cse_barrier_expander"])
    out["xla_cpu_scheduler_type"] = "CPU_SCHEDULER_TYPE_MEMORY_OPTIMIZED"
    return out


# ---------------------------------------------------------------------------------- semi-auto parallel
def semi_storage(cell, params: list, layouts: dict, shardings: list, devices: list) -> tuple:
    """Semi-auto parallel: ``shardings`` (one per Parameter of ``params``) with the optimizer-sharded
    ones (``plan._select`` over each Parameter's replica group) split further along dimension 0.

    A Parameter with layout ``(dev_mat, tensor_map)`` is held whole-slice by the ``r`` devices of
    its replica group (the device-matrix axes its tensor map does not use). Sharded, dimension 0
    of its storage is split over those axes too (its slice's rows ``layout.opt_shard_window`` on
    each member, in rank order), or over the minor ones whose sizes multiply to
    ``optimizer_weight_shard_size``; the step still constrains every use to the op's layout, so
    XLA's partitioner gathers the weight for the forward pass and reduce-scatters its gradient.
    Its optimizer states get the same storage; ``layouts`` get ``opt_shard_group`` set. Returns the
    shardings and ``{id(weight): element count}`` of the sharded weights with comm recompute.
    """
    import dataclasses

    from sporax.parallel import plan as _plan

    n = len(devices)
    replicas = _plan.semi_replicas(params, layouts, n)
    shard_plan, chosen = _plan._select(cell, n, replicas)
    if shard_plan is None or not shard_plan.shards:
        return shardings, {}
    index = {id(p): i for i, p in enumerate(params)}
    out = list(shardings)
    recompute = {}
    for rec, (p, states) in zip(shard_plan.shards, chosen.values()):
        lay = layouts[p.name]
        sharding = _semi_sharding(lay, rec.group_size, devices)
        if sharding is None:
            from sporax.parallel.plan import _log

            _log.warning("Parallel optimizer: optimizer_weight_shard_size %d is not a product of the minor replica "
                         "axes of %s's layout %s; %s stays unsharded.", rec.group_size, p.name, lay.to_mindspore(),
                         p.name)
            continue
        group = f"{rec.group_size}-{p.name}"
        if rec.recompute:
            recompute[id(p)] = math.prod(p.shape)
        for q in (p, *states):
            i = index.get(id(q))
            if i is not None:
                out[i] = sharding
                layouts[q.name] = dataclasses.replace(layouts[q.name], opt_shard_group=group)
    return out, recompute


def _semi_sharding(lay, k: int, devices: list):
    """The storage ``NamedSharding`` of ``lay`` with dimension 0 split over k replica devices, or None."""
    from jax.sharding import NamedSharding, PartitionSpec

    from sporax.parallel.layout import to_mesh_and_spec

    mesh, spec = to_mesh_and_spec(lay, devices)
    used = set()
    for entry in spec:
        used.update(() if entry is None else entry if isinstance(entry, tuple) else (entry,))
    replica = [a for a in mesh.axis_names if a not in used and mesh.shape[a] > 1]
    extra, size = [], 1
    for a in reversed(replica):  # the minor axes first: a shard group is consecutive ranks
        if size == k:
            break
        extra.insert(0, a)
        size *= mesh.shape[a]
    if size != k:
        return None
    e0 = spec[0] if len(spec) else None
    first = (() if e0 is None else e0 if isinstance(e0, tuple) else (e0,)) + tuple(extra)
    return NamedSharding(mesh, PartitionSpec(first, *spec[1:]))
