"""Semi-auto (and auto) parallel: operator strategies -> parameter layouts -> one SPMD program.

In ``semi_auto_parallel`` / ``auto_parallel`` mode every Cell called outside a trace (a train
step, an eval network) runs as ONE ``jax.jit`` program over the devices of the context
(``device_num`` of them, :func:`sporax.parallel._runtime.dp_devices`), in GRAPH_MODE and
PYNATIVE_MODE alike, through the engine's one compiled-call path
(:func:`sporax.common.api.run_compiled`: state threading, buffer donation). Per cell and input
signature, once:

1. **Layouts.** An abstract trace (``jax.eval_shape``) of ``construct`` with a scope pushed on
   ``sporax.ops.primitive._shard_scope``: each call of a primitive that has a strategy is checked
   against its inputs' shapes and turned into MindSpore's device matrix and tensor maps
   (:mod:`sporax.parallel.strategy`). A Parameter takes the layout its first sharded consumer
   gives that input; an optimizer's state (``moments.w``, ...) takes its parameter's layout
   (MindSpore gives cloned parameters their source's layout); every other Parameter is
   replicated, ``([device_num], [-1, ...], shape)``. The result, MindSpore's
   ``(dev_mat, tensor_map, slice_shape, field_size, uniform_split, opt_shard_group)`` per name,
   is the cell's ``parameter_layout_dict``.
2. **Sharded parameters.** Each Parameter becomes a global ``jax.Array`` with the
   ``NamedSharding`` of its layout (mesh ``dev_mat`` over the devices in rank order, one
   ``PartitionSpec`` entry per tensor-map entry: :func:`sporax.parallel.layout.to_mesh_and_spec`).
   A lazy Parameter computes each of this process's device shards alone through its
   initializer's exact window (``Parameter.to_global``): the full tensor never exists on a
   host, and every shard equals that window of the unsharded initialization bit for bit.
3. **The step.** ``construct`` is traced for ``jax.jit`` with the same scope: every sharded
   primitive call wraps its inputs in ``jax.lax.with_sharding_constraint`` (its strategy's
   layouts; the output too when ``out_strategy`` is given), and every written state value is
   pinned to its parameter's sharding, so the layouts survive the update. XLA's SPMD
   partitioner inserts the communication (the all-reduce of a split reduction dimension, the
   all-gathers between layouts) and places it: an output without ``out_strategy`` is left to
   propagation, so a partial sum is reduced where its consumer needs it (as MindSpore's
   MatMul all-reduces its output when the reduction dimension is split).

Inputs (``set_auto_parallel_context``): ``full_batch=True`` (or ``dataset_strategy=
"full_batch"``) gives every device the whole batch (replicated); otherwise the default
``dataset_strategy="data_parallel"`` splits dimension 0 of every input over all devices, and a
tuple of per-input strategies splits as given (repetition in front, as MindSpore's dataset).
In a multi-process run each process passes its local part and the global input is their
concatenation in rank order.

``auto_parallel``: sporax does not search strategies. The strategies given are imposed as
above and XLA's sharding propagation (GSPMD) decides the layout of everything else (MindSpore's
``search_mode="sharding_propagation"``); operators and Parameters without a strategy stay
replicated at the step's boundary.
"""

from __future__ import annotations

import math

import numpy as np

from sporax.common import _binding
from sporax.parallel import _runtime, opt_shard
from sporax.parallel import strategy as _strategy

__all__ = ["MODES", "run", "layouts_of", "compiled_text"]

MODES = ("semi_auto_parallel", "auto_parallel")


def _shardable_names() -> set:
    from sporax.ops.primitive import _SHARD_KINDS

    return set(_SHARD_KINDS)


_SHARDABLE = _shardable_names()


# ---------------------------------------------------------------------------------- the scope
class _Scope:
    """Pushed on ``primitive._shard_scope`` while a step is traced: checks strategies, records
    Parameter layouts (first consumer wins) and adds the sharding constraints."""

    def __init__(self, devices: list, names: dict, record: dict | None) -> None:
        self.devices = devices
        self.n = len(devices)
        self.names = names  # id(primitive) -> its attribute path ("fc1.matmul"), for messages
        self.record = record  # id(Parameter) -> (dev_mat, tensor_map), or None (not recording)
        self._shardings: dict = {}
        self.inside: set = set()  # ids of the primitives whose sharded call is running

    def sharding(self, dev_mat: tuple, tensor_map: tuple):
        key = (tuple(dev_mat), tuple(tensor_map))
        s = self._shardings.get(key)
        if s is None:
            s = self._shardings[key] = sharding_of(dev_mat, tensor_map, self.devices)
        return s

    def __call__(self, prim, kind: str, call, args: tuple, kwargs: dict):
        import jax

        from sporax.common.parameter import Parameter
        from sporax.common.tensor import Tensor

        strategy = prim.in_strategy
        if strategy is None or kind == "reshape" or id(prim) in self.inside:
            return call(prim, *args, **kwargs)  # (inside: a base class's __call__ reached from the sharded one)
        if kind is None:
            path = self.names.get(id(prim))
            where = f"'{prim.name}'" + (f" (the primitive '{path}')" if path else "")
            raise RuntimeError(
                f"For {where}, semi-auto parallel has no sharding rule, so its strategy {strategy} can not be "
                f"applied. Operators that take strategies: {', '.join(sorted(_SHARDABLE))}; remove the shard() "
                "call or use one of them."
            )
        pos = [i for i, a in enumerate(args) if isinstance(a, (Tensor, jax.Array, jax.core.Tracer))]
        shapes = [tuple(args[i].shape) for i in pos]
        op_layout = _strategy.infer(kind, prim.name, shapes, strategy, self.n, attrs=_attrs(prim, kind, args, kwargs),
                                    out_strategy=prim.out_strategy, path=self.names.get(id(prim)))
        new = list(args)
        for i, tmap in zip(pos, op_layout.in_maps):
            a = args[i]
            if isinstance(a, Parameter) and self.record is not None and id(a) not in self.record:
                self.record[id(a)] = (op_layout.dev_mat, tmap)
            value = a._jax() if isinstance(a, Tensor) else a
            value = jax.lax.with_sharding_constraint(value, self.sharding(op_layout.dev_mat, tmap))
            new[i] = Tensor._wrap(value) if isinstance(a, Tensor) else value
        self.inside.add(id(prim))
        try:
            out = call(prim, *new, **kwargs)
        finally:
            self.inside.discard(id(prim))
        if prim.out_strategy is not None and isinstance(out, Tensor):  # else: left to propagation
            s = self.sharding(op_layout.out_dev_mat, op_layout.out_map)
            out = Tensor._wrap(jax.lax.with_sharding_constraint(out._jax(), s))
        return out


def _attrs(prim, kind: str, args: tuple, kwargs: dict) -> dict:
    """What a sharding rule needs beyond the shapes, from the primitive and the call."""
    if kind == "matmul":
        return {"transpose_a": prim.transpose_a, "transpose_b": prim.transpose_b}
    if kind == "bias_add":
        return {"data_format": prim.data_format}
    if kind == "softmax":
        return {"axis": prim.axis}
    if kind == "reduce":
        axis = kwargs.get("axis", args[1] if len(args) > 1 else ())
        return {"axis": axis, "keep_dims": prim.keep_dims}
    if kind == "gather":
        return {"axis": kwargs.get("axis", args[2] if len(args) > 2 else 0)}
    if kind == "transpose":
        return {"perm": kwargs.get("perm", args[1] if len(args) > 1 else ())}
    return {}


def sharding_of(dev_mat, tensor_map, devices):
    """The ``NamedSharding`` of layout ``(dev_mat, tensor_map)`` over ``devices`` (rank order)."""
    from jax.sharding import NamedSharding

    from sporax.parallel.layout import Layout, to_mesh_and_spec

    mesh, spec = to_mesh_and_spec(Layout(tuple(dev_mat), tuple(tensor_map), (0,) * len(tensor_map)), devices)
    return NamedSharding(mesh, spec)


# ---------------------------------------------------------------------------------- the plan
class _Plan:
    """Per cell, state list, input signature and devices: layouts, shardings, the step."""

    __slots__ = ("params", "sig", "devices", "layouts", "shardings", "state", "fn", "last", "token", "dyn",
                 "recompute")


def _primitive_names(cell) -> dict:
    from sporax.ops.primitive import Primitive

    names = {}
    for path, c in cell.cells_and_names():
        for attr, value in vars(c).items():
            if isinstance(value, Primitive) and id(value) not in names:
                names[id(value)] = f"{path}.{attr}" if path else attr
    return names


def _optimizer_states(cell) -> list:
    """``(state Parameter, its parameter)`` pairs of every optimizer in ``cell``'s tree."""
    from sporax.common.parameter import ParameterTuple
    from sporax.nn.optim.optimizer import Optimizer

    pairs = []
    for _, c in cell.cells_and_names():
        if not isinstance(c, Optimizer):
            continue
        own = tuple(c.parameters)
        for value in vars(c).values():
            if isinstance(value, ParameterTuple) and value is not c.parameters and len(value) == len(own):
                pairs.extend((q, p) for q, p in zip(value, own) if tuple(q.shape) == tuple(p.shape))
    return pairs


def _abstract(p):
    import jax

    if p._value is None:
        return jax.ShapeDtypeStruct(tuple(p._shape), p._dtype.np_dtype)
    return p._value


def _discover(cell, state: list, args: tuple, kwargs: dict, devices: list) -> dict:
    """``id(Parameter) -> (dev_mat, tensor_map)`` for the Parameters a sharded primitive consumes."""
    import jax

    from sporax.common.api import _rebuild_args, _split_args
    from sporax.ops import primitive

    dyn, _sig, template, treedef = _split_args(args, kwargs)
    record: dict = {}
    scope = _Scope(devices, _primitive_names(cell), record)

    def probe(vals, dyn_in):
        primitive._shard_scope.append(scope)
        try:
            with _binding.bind(state, vals, kind="jit"):
                a, k = _rebuild_args(template, treedef, dyn_in)
                cell.construct(*a, **k)
        finally:
            primitive._shard_scope.pop()
        return 0

    # A write inside the trace (set_data) drops a lazy Parameter's initializer; the binding
    # restores values only, so the lazy description is saved and put back here.
    lazy = [(p, p.init, p.init_mode, p.sliced) for p in state if getattr(p, "init", None) is not None]
    try:
        jax.eval_shape(probe, [_abstract(p) for p in state], dyn)
    finally:
        for p, init, init_mode, sliced in lazy:
            p.init, p.init_mode, p.sliced = init, init_mode, sliced
    for q, p in _optimizer_states(cell):
        if id(p) in record and id(q) not in record:
            record[id(q)] = record[id(p)]
    return record


def _make_plan(cell, params: list, sig, args: tuple, kwargs: dict, devices: list) -> _Plan:
    from sporax.common._random_state import key_state
    from sporax.parallel.layout import Layout, slice_shape

    state = [*params, key_state]
    _apply_loaded_strategies(cell)
    record = _discover(cell, state, args, kwargs, devices)
    n = len(devices)
    layouts, shardings = {}, []
    for p in params:
        dev_mat, tmap = record.get(id(p), ((n,), (-1,) * len(p.shape)))
        layout = Layout(tuple(dev_mat), tuple(tmap), slice_shape(tuple(p.shape), dev_mat, tmap))
        layouts[p.name] = layout
        shardings.append(sharding_of(layout.dev_mat, layout.tensor_map, devices))
    shardings, recompute = opt_shard.semi_storage(cell, params, layouts, shardings, devices)  # parallel optimizer
    shardings.append(_runtime.replicated(_runtime.mesh(devices)))
    plan = _Plan()
    plan.params, plan.sig, plan.devices = params, sig, devices
    plan.layouts, plan.shardings, plan.state = layouts, shardings, state
    plan.last = plan.dyn = None
    plan.token = object()
    plan.recompute = recompute
    plan.fn = _step_function(cell, plan)
    cell.__dict__["parameter_layout_dict"] = {name: lay.to_mindspore() for name, lay in layouts.items()}
    _write_strategy_file(cell)
    return plan


def _primitives_by_path(cell) -> dict:
    from sporax.ops.primitive import Primitive

    out = {}
    for path, c in cell.cells_and_names():
        for attr, value in vars(c).items():
            if isinstance(value, Primitive):
                out.setdefault(f"{path}.{attr}" if path else attr, value)
    return out


def _apply_loaded_strategies(cell) -> None:
    """``strategy_ckpt_config["load_file"]``: its op strategies replace the ones set with
    ``shard`` (ops are matched by attribute path, the names sporax writes; others are kept)."""
    from sporax.parallel import _strategy as strategy_file

    loaded = strategy_file.loaded_strategy()
    if not loaded:
        return
    prims = _primitives_by_path(cell)
    for name, stra in loaded[1].items():
        if name in prims:
            prims[name].shard(tuple(tuple(int(d) for d in dims) for dims in stra))


def _write_strategy_file(cell) -> None:
    """The strategy file of ``strategy_ckpt_config["save_file"]``, if set: layouts and op strategies."""
    from sporax.parallel import _strategy as strategy_file

    ops = {path: p.in_strategy for path, p in _primitives_by_path(cell).items()
           if getattr(p, "in_strategy", None) is not None}
    strategy_file.write_net_strategy(cell, ops)


def layouts_of(cell) -> dict:
    """``name -> Layout`` of the parameters of ``cell``'s last semi-auto step (empty before one)."""
    plan = cell.__dict__["_jit_cache"].get("semi", {}).get("plan")
    return dict(plan.layouts) if plan is not None else {}


# ---------------------------------------------------------------------------------- placement
def _host_put(value, sharding):
    """``value`` (host data, the same in every process) as a global array with ``sharding``."""
    import jax

    host = np.asarray(value)
    return jax.make_array_from_callback(host.shape, sharding, lambda index: host[index])


def _place(plan: _Plan) -> None:
    """Give every state value its sharding: lazy Parameters are initialized shard by shard."""
    import jax

    from sporax.common._random_state import key_state
    from sporax.common.tensor import mark_donatable

    vals = [p._value for p in plan.state]
    if plan.last is not None and all(v is c for v, c in zip(vals, plan.last)):
        return
    fresh = []
    for p, s in zip(plan.state, plan.shardings):
        v = p._value
        if isinstance(v, jax.Array) and v.sharding == s:
            continue
        if p is key_state:
            p._value = _host_put(v, s)
        elif isinstance(v, jax.Array) and not v.is_fully_addressable:
            p._assign(_reshard(v, s))
        else:
            p.to_global(s)
        fresh.append(p._value)
    mark_donatable(fresh)  # sporax's own buffers: the step may donate them without a copy
    plan.last = [p._value for p in plan.state]


def _reshard(value, sharding):
    import jax

    return jax.jit(lambda x: x, out_shardings=sharding)(value)


def _input_sharding(ndim: int, k: int, devices: list):
    from sporax import context

    ap = context._state.auto_parallel
    repl = _runtime.replicated(_runtime.mesh(devices))
    ds = ap.dataset_strategy
    if ndim == 0 or (ap.full_batch and not isinstance(ds, tuple)):
        return repl
    if isinstance(ds, tuple):
        if k >= len(ds):
            raise ValueError(f"For 'set_auto_parallel_context', the 'dataset_strategy' {ds!r} has {len(ds)} entries, "
                             f"but the step has more inputs (input {k}).")
        s = tuple(ds[k])
        if len(s) != ndim:
            raise ValueError(f"For 'set_auto_parallel_context', entry {k} of the 'dataset_strategy' {ds!r} should have "
                             f"one value per dimension of input {k} ({ndim}), but got {s}.")
        n = len(devices)
        used = math.prod(s)
        if used > n or n % used:
            raise ValueError(f"For 'set_auto_parallel_context', entry {k} of the 'dataset_strategy' {ds!r} uses {used} "
                             f"devices, which does not divide device_num={n}.")
        dev = [n // used, *s] if n // used > 1 else list(s)
        tmap = tuple(range(ndim - 1, -1, -1))
        dev, (tmap,) = _strategy.standard_form(dev, [tmap])
        return sharding_of(dev, tmap, devices)
    return sharding_of((len(devices),), (0, *([-1] * (ndim - 1))), devices)


def _place_inputs(args: tuple, kwargs: dict, devices: list):
    import jax

    from sporax.common.parameter import Parameter
    from sporax.common.tensor import Tensor

    leaves, tree = jax.tree_util.tree_flatten((args, kwargs), is_leaf=lambda x: isinstance(x, Tensor))
    out, k = [], 0
    multi = jax.process_count() > 1
    for x in leaves:
        if isinstance(x, Tensor) and not isinstance(x, Parameter):
            v = x._value if x._value is not None else x._jax()
            s = _input_sharding(np.ndim(v), k, devices)
            k += 1
            if isinstance(v, jax.Array) and v.sharding == s:
                out.append(x)
                continue
            for dim, parts in zip(np.shape(v), _parts(s)):
                if dim % parts and not multi:
                    raise ValueError(
                        f"In {_mode()} mode the inputs are split over the devices as 'dataset_strategy' says, but input "
                        f"{k - 1} of shape {tuple(np.shape(v))} can not be split {_parts(s)} ways."
                    )
            if multi:
                out.append(Tensor._wrap(jax.make_array_from_process_local_data(s, np.asarray(v))))
            else:
                # the placed copy replaces the host data in the Tensor (as ``Tensor._jax`` caches its
                # device copy), so a Tensor fed to every step is transferred once
                x._value = jax.device_put(v, s)
                out.append(x)
        else:
            out.append(x)
    return tree.unflatten(out)


def _parts(sharding) -> tuple:
    mesh, spec = sharding.mesh, sharding.spec
    parts = []
    for entry in spec:
        axes = () if entry is None else entry if isinstance(entry, tuple) else (entry,)
        parts.append(math.prod(mesh.shape[a] for a in axes))
    return tuple(parts)


def _mode() -> str:
    from sporax import context

    return context._state.auto_parallel.parallel_mode


# ---------------------------------------------------------------------------------- the step
def _step_function(cell, plan: _Plan):
    """The function run_compiled traces: ``construct`` under the scope, written state pinned."""
    import jax

    from sporax.ops import primitive

    scope = _Scope(plan.devices, _primitive_names(cell), None)
    pinned = list(zip(plan.state, plan.shardings))

    def step(*args, **kwargs):
        primitive._shard_scope.append(scope)
        try:
            before = [p._value for p, _ in pinned]
            with opt_shard.recompute_scope(plan.recompute):
                out = cell.construct(*args, **kwargs)
            for (p, s), old in zip(pinned, before):
                if p._value is not old:
                    p._value = jax.lax.with_sharding_constraint(p._value, s)
        finally:
            primitive._shard_scope.pop()
        return out

    step._sporax_cell = cell
    return step


def _signature(args: tuple, kwargs: dict) -> tuple:
    import jax

    from sporax.common.tensor import Tensor

    leaves = jax.tree_util.tree_leaves((args, kwargs), is_leaf=lambda x: isinstance(x, Tensor))
    return tuple((tuple(x.shape), str(x.dtype)) if isinstance(x, Tensor) else type(x) for x in leaves)


def run(cell, args: tuple, kwargs: dict):
    """Run ``cell`` as one semi-auto parallel SPMD program (see the module docstring)."""
    from sporax.common.api import _exec_lock

    with _exec_lock:
        return _run(cell, args, kwargs)


def _run(cell, args: tuple, kwargs: dict):
    from sporax.common import _rng
    from sporax.common._random_state import key_state
    from sporax.common.api import run_compiled

    params, training = _binding.walk_cell_cached(cell)
    devices = _runtime.dp_devices()
    store = cell.__dict__["_jit_cache"].setdefault("semi", {})
    if key_state._counter_token is not _rng._counter or key_state._value is None:
        key_state._seed_now()
    sig = _signature(args, kwargs)
    args, kwargs = _place_inputs(args, kwargs, devices)
    plan = store.get("plan")
    if plan is None or plan.params is not params or plan.sig != sig or plan.devices != devices:
        plan = store["plan"] = _make_plan(cell, params, sig, args, kwargs, devices)
    _place(plan)
    out = run_compiled(store, plan.fn, params, args, kwargs, (training, plan.token),
                       jit_options=opt_shard.recompute_jit_options(plan.recompute))
    plan.last = [p._value for p in plan.state]
    if plan.dyn is None:
        plan.dyn = _abstract_inputs(args, kwargs)
    return out


def _abstract_inputs(args: tuple, kwargs: dict) -> list:
    import jax

    from sporax.common.api import _split_args

    dyn = _split_args(args, kwargs)[0]
    return [jax.ShapeDtypeStruct(v.shape, v.dtype, sharding=getattr(v, "sharding", None)) for v in dyn]


def compiled_text(cell) -> str:
    """The optimized HLO of ``cell``'s last semi-auto step (to check the communication XLA inserted)."""
    store = cell.__dict__["_jit_cache"].get("semi", {})
    last, plan = store.get("last"), store.get("plan")
    if last is None or plan is None or plan.dyn is None:
        raise RuntimeError("compiled_text: the cell has not run a semi-auto parallel step yet.")
    entry = last[3]
    return entry.jitted.lower(entry.owned, entry.r_cached, plan.dyn).compile().as_text()
