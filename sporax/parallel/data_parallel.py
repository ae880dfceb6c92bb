"""Data-parallel training steps: a step Cell run under ``shard_map`` over the data-parallel devices.

In ``data_parallel`` / ``hybrid_parallel`` mode, a Cell that holds an
``nn.DistributedGradReducer`` (``TrainOneStepCell`` does) is a data-parallel *step*. Called
outside any trace, with more than one device on the data-parallel axis, it runs as ONE
compiled SPMD program (in GRAPH_MODE and PYNATIVE_MODE alike: collectives need the SPMD
program), through the engine's one compiled-call path (:func:`sporax.common.api.run_compiled`,
with its state threading and buffer donation):

- every input Tensor is split along dimension 0 over the devices (each device computes on its
  share of the batch); in a multi-process run each process's input is its local batch and
  the global batch is their concatenation in rank order;
- every Parameter (and the random key state) enters replicated; each device runs
  ``construct`` on its share, the reducer all-reduces the gradients bucket by bucket, the
  optimizer updates every device's replica;
- floating outputs (the loss) come back as their mean over the devices, which for a mean loss
  is the global batch's loss; other outputs as device 0 computed them.

Per-device values. A Parameter's value is one array, replicated over the mesh. Gradient
reduction keeps the replicas of ordinary parameters equal; a ``layerwise_parallel=True``
parameter (and its optimizer state, whose clones keep the flag) is updated with each device's
local gradient, so its replicas differ. ``Parameter.asnumpy()`` gives the replica of this
process's first device (MindSpore's "this rank's value" in a one-device-per-process run);
:func:`get_device_values` / :func:`set_device_values` read and write all replicas of this
process's devices, one row per device. ``set_data`` gives every device the same value.

``parameter_broadcast=True``: before a step cell's first step every non-layerwise parameter
(the optimizer state included) takes the value of device 0 of rank 0.
"""

from __future__ import annotations

import numpy as np

from sporax.common import _binding
from sporax.common._validation import msg
from sporax.parallel import _runtime

__all__ = ["is_step", "maybe_run", "get_device_values", "set_device_values", "broadcast_parameters",
           "compiled_text", "compiled"]

NOT_DP = object()
_DP_MODES = ("data_parallel", "hybrid_parallel")


def is_step(cell) -> bool:
    """True if ``cell`` holds an ``nn.DistributedGradReducer`` (cached per cell-tree version)."""
    from sporax.parallel.grad_reducer import DistributedGradReducer

    store = cell.__dict__["_jit_cache"]
    rec = store.get("dp_is_step")
    if rec is not None and rec[0] == _binding.CellTable.version:
        return rec[1]
    found = any(isinstance(c, DistributedGradReducer) for _, c in cell.cells_and_names())
    store["dp_is_step"] = (_binding.CellTable.version, found)
    return found


def _reducers(cell) -> list:
    """The reducers of ``cell``'s tree (cached per cell-tree version: no walk per step)."""
    from sporax.parallel.grad_reducer import DistributedGradReducer

    store = cell.__dict__["_jit_cache"]
    rec = store.get("dp_reducers")
    if rec is not None and rec[0] == _binding.CellTable.version:
        return rec[1]
    found = [c for _, c in cell.cells_and_names() if isinstance(c, DistributedGradReducer)]
    store["dp_reducers"] = (_binding.CellTable.version, found)
    return found


def maybe_run(cell, args: tuple, kwargs: dict):
    """Run ``cell`` as a data-parallel step if it is one (see the module docstring), else ``NOT_DP``."""
    if not is_step(cell):
        return NOT_DP
    devices = _runtime.dp_devices()
    if len(devices) == 1:
        return NOT_DP
    from sporax.common.api import _exec_lock

    with _exec_lock:  # as every compiled call: one thread binds the Parameters at a time
        return _run(cell, _runtime.mesh(devices), args, kwargs)


# ---------------------------------------------------------------------------------- placement
def _local_devices(m) -> list:
    import jax

    me = jax.process_index()
    return [d for d in m.devices.flat if d.process_index == me]


def _replicate(value, m, repl):
    """``value`` as an array replicated over mesh ``m`` (each local device gets a copy)."""
    import jax

    if isinstance(value, jax.Array) and value.sharding == repl:
        return value
    host = value if isinstance(value, np.ndarray) else None
    if host is None and isinstance(value, jax.Array) and not value.is_fully_addressable:
        host = np.asarray(value)
    local = _local_devices(m)
    src = host if host is not None else value
    shards = [jax.device_put(src, d) for d in local]
    return jax.make_array_from_single_device_arrays(tuple(np.shape(value)), repl, shards)


def _place(state: list, m, repl, shards=None) -> None:
    """Give every state value the replicated mesh sharding (only those that lack it move); the
    parameters the parallel optimizer shards (``shards``) get their sharded placement."""
    import jax

    from sporax.parallel import opt_shard

    for p in state:
        if shards is not None and shards.is_sharded(p):
            opt_shard.place(p, shards.sharding(p))
            continue
        v = p._value
        if isinstance(v, jax.Array) and v.sharding == repl:
            continue
        v = p._jax()
        p._value = _replicate(v, m, repl)


def get_device_values(param) -> np.ndarray:
    """The replicas of ``param`` on this process's data-parallel devices, stacked: shape ``(n, *shape)``.

    For a ``layerwise_parallel`` parameter after data-parallel steps the rows differ (each
    device's own value); otherwise they are equal. Outside a multi-device run, one row.
    """
    import jax

    from sporax.common.parameter import Parameter

    if not isinstance(param, Parameter):
        raise TypeError(msg("get_device_values", "param", "a Parameter", type(param).__name__))
    v = param._jax()
    if isinstance(v, jax.Array) and len(v.addressable_shards) > 1:
        m = _runtime.mesh()
        order = {d.id: i for i, d in enumerate(_local_devices(m))}
        shards = sorted(v.addressable_shards, key=lambda s: order.get(s.device.id, len(order)))
        return np.stack([np.asarray(s.data) for s in shards])
    return np.asarray(v)[None]


def set_device_values(param, values) -> None:
    """Give each of this process's data-parallel devices its own value of ``param``.

    ``values`` has shape ``(n, *param.shape)``, one row per local device in mesh order. Use it
    for ``layerwise_parallel`` parameters (their replicas may differ) or to start replicas from
    different values before a ``parameter_broadcast``.
    """
    import jax

    from sporax.common.parameter import Parameter

    if not isinstance(param, Parameter):
        raise TypeError(msg("set_device_values", "param", "a Parameter", type(param).__name__))
    m = _runtime.mesh()
    local = _local_devices(m)
    arr = np.asarray(values.asnumpy() if hasattr(values, "asnumpy") else values)
    want = (len(local), *param.shape)
    if arr.shape != want:
        raise ValueError(msg("set_device_values", "values", f"an array of shape {want} (one row per device)",
                             arr.shape))
    arr = arr.astype(param.dtype.np_dtype, copy=False)
    shards = [jax.device_put(arr[i], d) for i, d in enumerate(local)]
    param._assign(jax.make_array_from_single_device_arrays(tuple(param.shape), _runtime.replicated(m), shards))
    param.init = None


# ---------------------------------------------------------------------------------- broadcast
def broadcast_parameters(params: list, m=None) -> None:
    """Every parameter of ``params`` except ``layerwise_parallel`` ones takes device 0's value.

    One all-reduce per dtype: the parameters are concatenated into a flat buffer that is
    zero on every device but device 0, and summed.
    """
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    from sporax.common.parameter import Parameter

    m = _runtime.mesh() if m is None else m
    repl = _runtime.replicated(m)
    targets = [p for p in params if isinstance(p, Parameter) and not p.layerwise_parallel]
    if not targets:
        return
    _place(targets, m, repl)
    groups: dict = {}
    for i, p in enumerate(targets):
        groups.setdefault(np.dtype(p._value.dtype), []).append(i)
    shapes = [tuple(p._value.shape) for p in targets]
    order = [idx for idx in groups.values()]

    def body(vals):
        first = jax.lax.axis_index(_runtime.AXIS) == 0
        out = list(vals)
        for idx in order:
            flat = jnp.concatenate([vals[i].reshape(-1) for i in idx])
            flat = jax.lax.psum(jnp.where(first, flat, jnp.zeros((), flat.dtype)), _runtime.AXIS)
            off = 0
            for i in idx:
                n = int(np.prod(shapes[i], dtype=np.int64))
                out[i] = flat[off:off + n].reshape(shapes[i])
                off += n
        return out

    fn = jax.jit(jax.shard_map(body, mesh=m, in_specs=(P(),), out_specs=P(), check_vma=False),
                 compiler_options=_runtime.COMPILER_OPTIONS)
    new = fn([p._value for p in targets])
    for p, v in zip(targets, new):
        p._assign(v)


# ---------------------------------------------------------------------------------- the step
def _global_inputs(args: tuple, kwargs: dict, m, axis=None):
    """In a multi-process run: each input Tensor (a process's local batch) as the global batch array."""
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    from sporax.common.parameter import Parameter
    from sporax.common.tensor import Tensor

    def conv(x):
        if isinstance(x, Tensor) and not isinstance(x, Parameter):
            local = np.asarray(x.asnumpy())
            spec = P(_runtime.AXIS if axis is None else axis) if local.ndim else P()
            return Tensor._wrap(jax.make_array_from_process_local_data(NamedSharding(m, spec), local))
        return x

    leaves, tree = jax.tree_util.tree_flatten((args, kwargs), is_leaf=lambda x: isinstance(x, Tensor))
    return tree.unflatten([conv(x) for x in leaves])


def _run(cell, m, args: tuple, kwargs: dict):
    import jax

    from sporax import context
    from sporax.common._random_state import key_state
    from sporax.common.api import run_compiled

    params, training = _binding.walk_cell_cached(cell)
    store = cell.__dict__["_jit_cache"]
    cache = store.setdefault("dp", {})
    from sporax.common import _rng

    if key_state._counter_token is not _rng._counter:  # as run_compiled does, but before placement
        key_state._seed_now()
    ap = context._state.auto_parallel
    shards = _step_shards(cell, m)
    if ap.parameter_broadcast and not cache.get("broadcast_done"):
        broadcast_parameters(params, m)  # on the replicated values, before any optimizer sharding
        cache["broadcast_done"] = True
    sm = m if shards is None else shards.mesh
    _place([*params, key_state], sm, _runtime.replicated(sm), shards)
    if jax.process_count() > 1:
        args, kwargs = _global_inputs(args, kwargs, sm, None if shards is None else shards.axis)
    skey = None if shards is None else shards.key()
    fn = cache.get("fn")
    if fn is None or fn[0] is not params or fn[1] is not sm or fn[3] != skey:
        fn = cache["fn"] = (params, sm, _step_function(cell, params, sm, shards), skey)
    reducers = _reducers(cell)
    flags = tuple((p.comm_fusion, p.layerwise_parallel) for r in reducers for p in r.parameters)
    extra = (training, id(sm), flags, repr(ap.comm_fusion), skey)
    opts = cache["options"] = _step_options(shards)
    compiled = len(cache)
    out = run_compiled(cache, fn[2], params, args, kwargs, extra, jit_options={"compiler_options": opts})
    if shards is not None and len(cache) > compiled:
        _write_strategy_file(cell, shards)
    cache["dyn"] = _abstract_inputs(args, kwargs)
    return out


def _write_strategy_file(cell, shards) -> None:
    """A data-parallel step with the parallel optimizer compiled: write the strategy file that
    ``strategy_ckpt_config["save_file"]`` names, if any. Every parameter is replicated over the
    ``n`` devices (device matrix ``[n]``, tensor map all -1); a sharded one (weight or optimizer
    state) records its dimension-0 optimizer shard over groups of ``k`` consecutive ranks
    (``opt_weight_shard_step`` 1, ``opt_weight_shard_size`` k), which is how its rank files slice it."""
    from sporax import context
    from sporax.parallel import _strategy

    cfg = context.get_auto_parallel_context("strategy_ckpt_config")
    if not cfg["save_file"]:
        return
    layouts = {}
    for _, p in cell.parameters_and_names():
        if p.name in layouts or (cfg["only_trainable_params"] and not p.requires_grad):
            continue
        sharded = shards.is_sharded(p) and shards.k > 1
        layouts[p.name] = _strategy.make_layouts([shards.n], [-1] * len(p.shape), tuple(p.shape), 0,
                                                 1 if sharded else 0, shards.k if sharded else 0)
    _strategy.save_strategy_file(cfg["save_file"], layouts)


def _step_shards(cell, m):
    """The parallel optimizer's sharding of ``cell``'s step over mesh ``m`` (None when nothing is sharded)."""
    from sporax import context
    from sporax.parallel import opt_shard, plan

    ap = context._state.auto_parallel
    if not ap.enable_parallel_optimizer:
        return None
    store = cell.__dict__["_jit_cache"]
    # _select is a pure function of the cell tree, the Parameters' flags and the context: reuse its result
    reducers = _reducers(cell)
    flags = tuple((p.parallel_optimizer, p.parallel_optimizer_comm_recompute, p.requires_grad, p.layerwise_parallel,
                   p._shape) for r in reducers for p in r.parameters)
    key = (_binding.CellTable.version, _binding.flags_version, flags, m.devices.size, ap.parallel_mode,
           repr(ap.parallel_optimizer_config))
    hit = store.get("dp_shards")
    if hit is not None and hit[0] == key:
        return hit[1]
    shard_plan, chosen = plan._select(cell, m.devices.size)
    shards = None
    if shard_plan is not None and shard_plan.shards:
        shards = opt_shard.StepShards(shard_plan, chosen, list(m.devices.flat))
    store["dp_shards"] = (key, shards)
    return shards


def _step_options(shards) -> dict:
    from sporax.parallel import opt_shard

    # the buckets rely on XLA's all-reduce combiner where _runtime.combines() (see grad_reducer)
    return opt_shard.compiler_options(shards, {} if _runtime.combines(shards) else _runtime.COMPILER_OPTIONS)


def _abstract_inputs(args, kwargs) -> list:
    import jax

    from sporax.common.tensor import Tensor

    leaves = jax.tree_util.tree_leaves((args, kwargs), is_leaf=lambda x: isinstance(x, Tensor))
    out = []
    for x in leaves:
        if isinstance(x, Tensor):
            v = x._jax()
            sharding = getattr(v, "sharding", None)
            if sharding is not None and len(sharding.device_set) == 1:
                sharding = None  # a one-device input: jit moves it onto the mesh
            out.append(jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=sharding))
    return out


def _step_function(cell, params: list, m, shards=None):
    """The function run_compiled traces: the cell's construct under shard_map over mesh ``m``
    (``shards``: the parallel optimizer's sharding, see :mod:`sporax.parallel.opt_shard`)."""
    import jax
    import jax.numpy as jnp
    from jax.sharding import PartitionSpec as P

    from sporax.common._random_state import key_state
    from sporax.common.tensor import Tensor

    n = m.devices.size
    axis = _runtime.AXIS if shards is None else shards.axis

    def is_array(x) -> bool:
        return isinstance(x, (Tensor, jax.Array, jax.core.Tracer))

    def step(*args, **kwargs):
        state = [*params, key_state]
        vals = [p._value for p in state]
        state_specs = [P() if shards is None else shards.spec(p) for p in state]
        leaves, tree = jax.tree_util.tree_flatten((args, kwargs), is_leaf=lambda x: isinstance(x, Tensor))
        pos = [i for i, x in enumerate(leaves) if is_array(x)]
        dyn = [leaves[i]._value if isinstance(leaves[i], Tensor) else leaves[i] for i in pos]
        specs = []
        for k, a in enumerate(dyn):
            if a.ndim == 0:
                specs.append(P())
                continue
            if a.shape[0] % n:
                raise ValueError(
                    f"In data-parallel mode the batch (dimension 0) of every input is split over the {n} devices of "
                    f"the data-parallel axis, but input {k} has shape {tuple(a.shape)}: its batch size "
                    f"{a.shape[0]} is not divisible by {n}."
                )
            specs.append(P(axis))
        side: dict = {}

        def body(vals_in, dyn_in):
            local = list(leaves)
            for i, a in zip(pos, dyn_in):
                local[i] = Tensor._wrap(a) if isinstance(leaves[i], Tensor) else a
            a_in, k_in = tree.unflatten(local)
            with _runtime.axis_scope(axis, n, shards):
                with _binding.bind(state, vals_in, kind="jit"):
                    out = cell.construct(*a_in, **k_in)
                    new = _binding.read_values(state)
                written = [i for i, (v_new, v_old) in enumerate(zip(new, vals_in)) if v_new is not v_old]
                o_leaves, o_tree = jax.tree_util.tree_flatten(out, is_leaf=lambda x: isinstance(x, Tensor))
                kinds, o_dyn = [], []
                for x in o_leaves:
                    if is_array(x):
                        v = x._jax() if isinstance(x, Tensor) else x
                        if jnp.issubdtype(v.dtype, jnp.floating):
                            v = jax.lax.pmean(_runtime.tie([v])[0], axis)  # after the gradients' buckets
                            _runtime.advance([v])
                        o_dyn.append(v)
                        kinds.append(isinstance(x, Tensor))
                    else:
                        kinds.append(("static", x))
            side.update(written=written, o_tree=o_tree, kinds=kinds)
            return o_dyn, new  # every state value (each with its spec); only the written ones are kept

        sm = jax.shard_map(body, mesh=m, in_specs=(state_specs, specs), out_specs=(P(), state_specs),
                           check_vma=False)
        o_dyn, new_all = sm(vals, dyn)
        for i in side["written"]:
            state[i]._value = new_all[i]
        it = iter(o_dyn)
        o_leaves = [k[1] if isinstance(k, tuple) else (Tensor._wrap(next(it)) if k else next(it)) for k in side["kinds"]]
        return side["o_tree"].unflatten(o_leaves)

    step._sporax_cell = cell
    return step


def compiled_text(cell) -> str:
    """The optimized HLO of ``cell``'s last data-parallel step (for checking the plan)."""
    store = cell.__dict__["_jit_cache"].get("dp", {})
    last = store.get("last")
    if last is None or "dyn" not in store:
        raise RuntimeError("compiled_text: the cell has not run a data-parallel step yet.")
    return compiled(cell).as_text()


def compiled(cell):
    """The compiled executable of ``cell``'s last data-parallel step (``memory_analysis()``, ``as_text()``)."""
    store = cell.__dict__["_jit_cache"].get("dp", {})
    last = store.get("last")
    if last is None or "dyn" not in store:
        raise RuntimeError("compiled: the cell has not run a data-parallel step yet.")
    entry = last[3]
    lowered = entry.jitted.lower(entry.owned, entry.r_cached, store["dyn"])
    return lowered.compile(store.get("options", _runtime.COMPILER_OPTIONS))
