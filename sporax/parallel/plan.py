"""The communication plan of a data-parallel step: a pure function of the Parameters' flags.

Like PyTorch DDP's bucket assignment (``_compute_bucket_assignment_by_size``), the plan is
computed apart from the code that runs it: :class:`~sporax.parallel.grad_reducer.
DistributedGradReducer` executes exactly the buckets :func:`assign_buckets` returns, so what a
user inspects with :func:`comm_plan` is what runs (tests compare it with the compiled HLO).

Bucket rules, over the reducer's gradients in order:

- ``layerwise_parallel=True`` parameters are excluded: no all-reduce, no broadcast;
- with the context's ``comm_fusion={"allreduce": {"mode": ..., "config": ...}}``:
  ``"index"``: split points into the gradient list (``[20, 35]`` gives gradients 0-19, 20-34,
  35-end); ``"size"``: consecutive gradients fill a bucket until it reaches ``config`` MB;
  ``"auto"``: the same with 64 MB;
- otherwise each parameter's ``comm_fusion`` id: one bucket per id > 0 (ordered by first
  appearance), and each id-0 parameter alone.

A bucket is one all-reduce, in float32 or wider (on the CPU backend a combined all-reduce of the
gradients in their own shapes; elsewhere one flat buffer: see :mod:`sporax.parallel.grad_reducer`).

Optimizer sharding (``enable_parallel_optimizer=True``, :func:`optimizer_shard_plan`). Over
the data-parallel group of N devices, with ``k`` = ``optimizer_weight_shard_size`` (-1, the
default, or a value that does not divide N: k = N; ``k <= 1``: nothing is sharded; ``k > N``:
RuntimeError, MindSpore's message), a parameter is sharded when all of these hold (MindSpore's
conditions; any that fails leaves it replicated, with the reason in ``OptShardPlan.skipped``):

- it is a gradient of the step's reducer, ``requires_grad``, ``parallel_optimizer=True``, not
  ``layerwise_parallel``, and held by one optimizer whose update is row-wise
  (``Optimizer._shard_rows``: SGD, Momentum, Adam, AdamWeightDecay, Adagrad, ProximalAdagrad,
  FTRL, RMSProp; Lamb's and LARS's trust ratios need whole-tensor norms);
- its size in bytes is at least ``parallel_optimizer_threshold`` KB (default 64);
- it has a dimension 0 divisible by k (MindSpore: "Tensor could not be shard on the first
  dimension", and the parameter is skipped).

Each device then stores rows ``[g*d0/k, (g+1)*d0/k)`` of the weight and of each of its
optimizer states (``layout.opt_shard_window``), where ``g`` is the device's position in its
group of k consecutive devices; the weight is all-gathered in the group for the forward pass
(and once more in the backward pass with ``parallel_optimizer_comm_recompute`` or
``optimizer_level='level3'``), its gradient reduce-scattered in the group (the transpose of
the gather), all-reduced over the N/k groups when k < N, and the optimizer updates the shard.
The per-device bytes of :class:`CommPlan` are then the ZeRO formulas (:func:`zero_bytes`).
"""

from __future__ import annotations

import dataclasses
import logging
import math
from collections.abc import Sequence

import numpy as np

from sporax.common._validation import msg

__all__ = ["Bucket", "Collective", "CommPlan", "OptShard", "OptShardPlan", "assign_buckets", "check_fusion_config",
           "check_optimizer_config", "comm_plan", "optimizer_shard_plan", "summary", "zero_bytes"]

_AUTO_MB = 64
_log = logging.getLogger("sporax.parallel")


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One fused all-reduce: the gradients of ``names``, reduced together in ``dtype``."""

    fusion_id: int
    names: tuple
    indices: tuple  # positions in the reducer's gradient list
    numel: int
    dtype: str

    @property
    def nbytes(self) -> int:
        return self.numel * np.dtype(self.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class Collective:
    """One collective of the step: ``kind`` ('all-reduce'), ``purpose``, bytes, and when it runs."""

    kind: str
    purpose: str  # 'gradients', 'loss', 'parameter_broadcast'
    nbytes: int
    dtype: str
    when: str = "every step"
    bucket: int | None = None


@dataclasses.dataclass(frozen=True)
class OptShard:
    """One optimizer-sharded parameter: ``group_size`` devices each hold ``shard_shape`` of it
    (rows of dimension 0) and of each of its optimizer ``states``."""

    name: str
    shape: tuple
    dtype: str
    group_size: int
    shard_shape: tuple
    recompute: bool  # all-gathered again in the backward pass
    states: tuple  # names of its optimizer-state Parameters (sharded alike)
    state_nbytes: int  # full bytes of those states

    @property
    def nbytes(self) -> int:
        return math.prod(self.shape) * np.dtype(self.dtype).itemsize

    @property
    def shard_nbytes(self) -> int:
        """Bytes per device (in semi-auto parallel: of its slice's share)."""
        return math.prod(self.shard_shape) * np.dtype(self.dtype).itemsize


@dataclasses.dataclass(frozen=True)
class OptShardPlan:
    """Which parameters the parallel optimizer shards (see the module docstring)."""

    degree: int  # N: devices of the data-parallel group
    group_size: int  # k: devices sharing one copy (optimizer_weight_shard_size)
    threshold_bytes: int
    level: str  # optimizer_level: 'level1', 'level2' or 'level3' (level3: every gather recomputed)
    shards: tuple  # OptShard records, in the reducer's parameter order
    skipped: tuple  # (name, reason) of the parallel_optimizer=True parameters left replicated

    @property
    def mirror(self) -> int:
        """N/k: the groups whose shards are all-reduced with each other (1: none)."""
        return self.degree // self.group_size

    def key(self) -> tuple:
        """What a compiled step depends on."""
        return (self.degree, self.group_size, tuple((s.name, s.recompute) for s in self.shards))


@dataclasses.dataclass(frozen=True)
class CommPlan:
    """What a data-parallel step communicates and holds per device (see the module docstring)."""

    parallel_mode: str
    degree: int
    mean: bool
    buckets: tuple
    excluded: tuple  # names of layerwise_parallel parameters (gradient stays local)
    collectives: tuple  # per step
    broadcast: Collective | None  # first step only (parameter_broadcast=True)
    param_bytes: int  # per device: the network's parameters
    grad_bytes: int  # per device: the gradients
    opt_state_bytes: int  # per device: optimizer state (moments, lr, step)
    rows: tuple = ()  # (name, shape, dtype, requires_grad, layerwise_parallel, comm_fusion, bucket, opt_shard[,
    #                    layout: semi-auto parallel, "dev_mat tensor_map slice shape"])
    opt_shard: OptShardPlan | None = None  # enable_parallel_optimizer: what is sharded
    gathered_bytes: int = 0  # per device, transient: the all-gathered weights (at most all at once)

    def count(self, kind: str) -> int:
        """Collectives of ``kind`` ('all-reduce', 'all-gather', 'reduce-scatter') per step."""
        return sum(1 for c in self.collectives if c.kind == kind)

    @property
    def allreduce_count(self) -> int:
        return self.count("all-reduce")

    @property
    def allreduce_bytes(self) -> int:
        return sum(c.nbytes for c in self.collectives if c.kind == "all-reduce")

    @property
    def allgather_count(self) -> int:
        return self.count("all-gather")

    @property
    def reducescatter_count(self) -> int:
        return self.count("reduce-scatter")

    def __str__(self) -> str:
        lines = [f"CommPlan({self.parallel_mode}, degree={self.degree}, mean={self.mean}): "
                 f"{len(self.buckets)} gradient bucket(s), {self.allreduce_count} all-reduce(s) per step, "
                 f"{self.allreduce_bytes} bytes"]
        for i, b in enumerate(self.buckets):
            lines.append(f"  bucket {i} (fusion id {b.fusion_id}): {b.nbytes} bytes {b.dtype}: {', '.join(b.names)}")
        if self.excluded:
            lines.append(f"  local (layerwise_parallel): {', '.join(self.excluded)}")
        if self.parallel_mode in ("semi_auto_parallel", "auto_parallel"):
            lines.append("  the operators' communication: inserted by XLA's SPMD partitioner (semi_auto.compiled_text)")
        if self.broadcast is not None:
            lines.append(f"  first step: parameter broadcast from rank 0, {self.broadcast.nbytes} bytes")
        o = self.opt_shard
        if o is not None:
            lines.append(f"  parallel optimizer: {len(o.shards)} parameter(s) sharded over groups of {o.group_size} "
                         f"of the {o.degree} devices ({o.level}, threshold {o.threshold_bytes // 1024} KB): "
                         f"{self.allgather_count} all-gather(s), {self.reducescatter_count} reduce-scatter(s) per step")
            for c in self.collectives:
                if c.kind != "all-reduce" or c.purpose == "sharded gradients":
                    lines.append(f"    {c.kind} {c.purpose} ({c.when}): {c.nbytes} bytes {c.dtype}")
            for name, why in o.skipped:
                lines.append(f"    replicated {name}: {why}")
        lines.append(f"  per device: parameters {self.param_bytes} B, gradients {self.grad_bytes} B, "
                     f"optimizer state {self.opt_state_bytes} B"
                     + (f", all-gathered weights {self.gathered_bytes} B (transient)" if o is not None else ""))
        if self.rows:
            lines.append(_table(self.rows))
        return "\n".join(lines)


def _table(rows) -> str:
    head = ("name", "shape", "dtype", "requires_grad", "layerwise_parallel", "comm_fusion", "bucket", "opt_shard",
            "layout")[:len(rows[0])]
    cells = [head] + [tuple(str(x) for x in r) for r in rows]
    widths = [max(len(r[i]) for r in cells) for i in range(len(head))]
    return "\n".join("  " + "  ".join(c.ljust(w) for c, w in zip(r, widths)) for r in cells)


# ---------------------------------------------------------------------------------- pure parts
def check_fusion_config(value, where: str = "set_auto_parallel_context"):
    """Validate ``comm_fusion={"allreduce": {"mode": ..., "config": ...}, ...}``; returns it."""
    if value is None:
        return None
    if not isinstance(value, dict):
        raise TypeError(msg(where, "comm_fusion", "a dict like {'allreduce': {'mode': 'size', 'config': 32}}", value))
    for op, cfg in value.items():
        if op not in ("openstate", "allreduce", "allgather", "reducescatter"):
            raise ValueError(msg(where, "comm_fusion", "keys among 'openstate', 'allreduce', 'allgather', "
                                 "'reducescatter'", op))
        if op == "openstate":
            if cfg is not True and cfg is not False:
                raise TypeError(msg(where, "comm_fusion['openstate']", "a bool", cfg))
            continue
        if not isinstance(cfg, dict) or set(cfg) - {"mode", "config"} or "mode" not in cfg:
            raise ValueError(msg(where, f"comm_fusion[{op!r}]", "a dict with keys 'mode' and 'config'", cfg))
        mode, conf = cfg["mode"], cfg.get("config")
        if mode not in ("auto", "size", "index"):
            raise ValueError(msg(where, f"comm_fusion[{op!r}]['mode']", "one of ['auto', 'size', 'index']", mode))
        if mode == "size":
            if isinstance(conf, bool) or not isinstance(conf, (int, float)) or conf <= 0:
                raise ValueError(msg(where, f"comm_fusion[{op!r}]['config']", "a size in MB > 0 for mode 'size'",
                                     conf))
        elif mode == "index":
            if (not isinstance(conf, (list, tuple)) or not conf
                    or not all(isinstance(i, int) and not isinstance(i, bool) and i > 0 for i in conf)
                    or list(conf) != sorted(set(conf))):
                raise ValueError(msg(where, f"comm_fusion[{op!r}]['config']",
                                     "a non-empty increasing list of positive split indices for mode 'index'", conf))
        elif conf is not None and not (isinstance(conf, (int, float)) and not isinstance(conf, bool) and conf > 0):
            raise ValueError(msg(where, f"comm_fusion[{op!r}]['config']", "None or a size in MB for mode 'auto'",
                                 conf))
    return value


_OPT_DEFAULTS = {"gradient_accumulation_shard": False, "parallel_optimizer_threshold": 64,
                 "optimizer_weight_shard_size": -1, "optimizer_level": "level1"}
_LEVELS = ["level1", "level2", "level3"]


def _int_like(value) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def check_optimizer_config(value, previous=None) -> dict:
    """Validate ``parallel_optimizer_config`` as MindSpore 2.10 does; returns the merged settings.

    Keys: ``gradient_accumulation_shard`` (bool), ``parallel_optimizer_threshold`` (KB, int >= 0),
    ``optimizer_weight_shard_size`` (-1 or an int > 0; 1 only warns, as MindSpore),
    ``optimizer_level`` ('level1', 'level2' (= gradient_accumulation_shard), 'level3' (every
    gathered weight gathered again in the backward pass)). Keys not given keep ``previous``.
    """
    if not isinstance(value, dict):
        raise TypeError(f"The parameter 'parallel_optimizer_config' must be {dict}, but got {type(value)}")
    unknown = [k for k in value if k not in _OPT_DEFAULTS]
    if unknown:
        raise ValueError(f"Unknown config: {unknown}")
    out = dict(_OPT_DEFAULTS if previous is None else previous)
    level = value.get("optimizer_level")
    if "gradient_accumulation_shard" in value:
        g = value["gradient_accumulation_shard"]
        if g is not True and g is not False:
            raise TypeError("For 'gradient_accumulation_shard', the 'gradient_accumulation_shard' must be a bool, "
                            f"but got {type(g).__name__}.")
        if level is not None and level != "level2":
            raise ValueError(f"The optimizer_level is set as {level}, thus cannot set grad_accumulation_shard as True.")
        out["gradient_accumulation_shard"] = g
    for key, low, word in (("parallel_optimizer_threshold", 0, ">= 0"), ("optimizer_weight_shard_size", 1, "> 0")):
        if key not in value:
            continue
        v = value[key]
        if key == "optimizer_weight_shard_size" and v == -1 and _int_like(v):
            out[key] = -1
            continue
        if not _int_like(v):
            raise TypeError(f"For '{key}', the input value must be int, but got '{type(v).__name__}'")
        if v < low:
            raise ValueError(f"For '{key}', the input value must be int and must {word}, but got '{v}' with type 'int'.")
        if key == "optimizer_weight_shard_size" and v <= 1:
            _log.warning("The setting 'optimizer_weight_shard_size' is invalid. Please use the integer larger than 1.")
        out[key] = v
    if level is not None:
        if level not in _LEVELS:
            raise ValueError(f"Optimizer level should in {_LEVELS}, but got {level}")
        if out["gradient_accumulation_shard"] and level != "level2":
            raise ValueError("The grad_accumulation shard is set, thus cannot set optimizer_level != 'level2'")
        if level == "level2":
            out["gradient_accumulation_shard"] = True
        if level == "level3":
            out["gradient_accumulation_shard"] = False
        out["optimizer_level"] = level
    return out


def zero_bytes(weight_bytes: int, state_bytes: int, degree: int, sharded: bool = True) -> dict:
    """Per-device bytes of ZeRO-style sharding over ``degree`` devices (Rajbhandari et al., 2020).

    For parameters of ``weight_bytes`` (Psi, their full size) with optimizer state of
    ``state_bytes`` (K*Psi): stored weights Psi/N and state K*Psi/N (MindSpore's level1: the
    weight and the optimizer state are split), reduced gradients Psi/N (the reduce-scatter's
    output, ZeRO-2); ``sharded=False`` gives the replicated baseline (Psi, K*Psi, Psi).
    """
    n = degree if sharded else 1
    return {"weights": weight_bytes // n, "grads": weight_bytes // n, "opt_state": state_bytes // n}


def _bucket_dtype(dtypes) -> str:
    import jax.numpy as jnp

    floats = [d for d in dtypes if jnp.issubdtype(d, jnp.floating)]
    return str(np.dtype(jnp.result_type(np.float32, *floats)))


def assign_buckets(entries: Sequence, fusion_config=None, fusion_type: int = 1) -> list:
    """Buckets as lists of gradient indices, from ``entries`` of ``(numel, itemsize, comm_fusion,
    layerwise_parallel)`` per gradient, in order (see the module docstring for the rules).

    A pure function: the same flags give the same buckets in every process.
    """
    live = [i for i, e in enumerate(entries) if not e[3]]
    allreduce = (fusion_config or {}).get("allreduce")
    if fusion_type == 0:
        return [[i] for i in live]
    if allreduce is not None:
        mode, conf = allreduce["mode"], allreduce.get("config")
        if mode == "index":
            buckets: list = []
            cuts = list(conf)
            current: list = []
            for i in range(len(entries)):
                while cuts and i >= cuts[0]:
                    cuts.pop(0)
                    if current:
                        buckets.append(current)
                    current = []
                if not entries[i][3]:
                    current.append(i)
            if current:
                buckets.append(current)
            return buckets
        limit = (conf if mode == "size" else (conf or _AUTO_MB)) * 1024 * 1024
        buckets, current, size = [], [], 0
        for i in live:
            current.append(i)
            size += entries[i][0] * 4
            if size >= limit:
                buckets.append(current)
                current, size = [], 0
        if current:
            buckets.append(current)
        return buckets
    by_id: dict = {}
    out: list = []
    for i in live:
        fid = entries[i][2]
        if fid == 0:
            out.append([i])
        elif fid in by_id:
            by_id[fid].append(i)
        else:
            by_id[fid] = [i]
            out.append(by_id[fid])
    return out


def bucket_records(params: Sequence, fusion_config=None, fusion_type: int = 1, exclude=()) -> tuple:
    """:class:`Bucket` records for the gradients of ``params`` (Parameters, in order); the ids in
    ``exclude`` (optimizer-sharded parameters, reduce-scattered instead) stay out, as layerwise ones."""
    entries = [(math.prod(p.shape), 0, p.comm_fusion, p.layerwise_parallel or id(p) in exclude) for p in params]
    out = []
    for idx in assign_buckets(entries, fusion_config, fusion_type):
        ids = {params[i].comm_fusion for i in idx}
        fid = ids.pop() if len(ids) == 1 else -1
        out.append(Bucket(
            fusion_id=0 if fusion_type == 0 else fid,
            names=tuple(params[i].name for i in idx),
            indices=tuple(idx),
            numel=sum(entries[i][0] for i in idx),
            dtype=_bucket_dtype([params[i].dtype.np_dtype for i in idx]),
        ))
    return tuple(out)


def _nbytes(p) -> int:
    return math.prod(p.shape) * np.dtype(p.dtype.np_dtype).itemsize


# ---------------------------------------------------------------------------------- optimizer sharding
_SHARD_MODES = ("data_parallel", "semi_auto_parallel", "auto_parallel")


def _group_size(cfg: dict, n: int) -> int:
    """k: the devices sharing one copy of a sharded parameter (see the module docstring)."""
    ws = cfg["optimizer_weight_shard_size"]
    if ws == -1:
        return n
    if ws > n:
        raise RuntimeError(f"When parallel_optimizer is enabled, the optimizer_weight_shard_size {ws} should not "
                           f"exceed the device num {n}.")
    if ws <= 1:
        return 1
    if n % ws:
        _log.warning("Parallel optimizer: optimizer_weight_shard_size %d can not be applied: the data-parallel "
                     "group of %d devices is not divisible by it; the whole group is used.", ws, n)
        return n
    return ws


def _row_states(opt) -> dict:
    """``{id(param): [its state Parameters]}`` of an optimizer: the entries of its ParameterTuples
    aligned with ``_parameters`` (``ParameterTuple.clone``, the one way optimizers make state).
    A parameter that some other state of its shape could belong to maps to None (not sharded)."""
    from sporax.common._binding import walk_cell
    from sporax.common.parameter import ParameterTuple

    params = list(opt._parameters)
    out: dict = {id(p): [] for p in params}
    seen = {id(p) for p in params}
    for value in vars(opt).values():
        if (isinstance(value, ParameterTuple) and value is not opt._parameters and len(value) == len(params)
                and all(tuple(q.shape) == tuple(p.shape) for p, q in zip(params, value))):
            for p, q in zip(params, value):
                if id(q) not in seen:
                    out[id(p)].append(q)
                    seen.add(id(q))
    by_shape: dict = {}
    for p in params:
        by_shape.setdefault(tuple(p.shape), []).append(p)
    for q in walk_cell(opt)[0]:
        if id(q) not in seen and q.shape:
            for p in by_shape.get(tuple(q.shape), ()):
                out[id(p)] = None
    return out


def _replica_group_size(cfg: dict, r: int) -> int:
    """k for a parameter whose slice ``r`` devices hold (semi-auto parallel: its replica group)."""
    ws = cfg["optimizer_weight_shard_size"]
    if ws == -1 or ws >= r or r % ws:
        return r
    return max(ws, 1)


def _select(train_net, degree=None, replicas=None):
    """``(OptShardPlan or None, {id(weight): (weight, [states])})`` for the step cell ``train_net``.

    ``replicas`` (semi-auto parallel): ``{id(weight): (size of its replica group, slice shape)}``;
    without it every weight is whole on each of the ``degree`` devices (data parallel)."""
    from sporax import context
    from sporax.nn.optim.optimizer import Optimizer

    ap = context._state.auto_parallel
    if not ap.enable_parallel_optimizer or ap.parallel_mode not in _SHARD_MODES:
        return None, {}
    if degree is None:
        from sporax.parallel import _runtime

        degree = len(_runtime.dp_devices())
    if degree <= 1:
        return None, {}
    cfg = ap.parallel_optimizer_config or dict(_OPT_DEFAULTS)
    k = _group_size(cfg, degree)
    threshold = cfg["parallel_optimizer_threshold"] * 1024
    level = cfg["optimizer_level"]
    reducers = _reducers(train_net)
    owner: dict = {}
    state_of: dict = {}
    updated: list = []  # without a reducer (semi-auto parallel): what the step's optimizers update
    for _, c in train_net.cells_and_names():
        if isinstance(c, Optimizer):
            for p in c._parameters:
                if id(p) not in owner:
                    updated.append(p)
                owner.setdefault(id(p), []).append(c)
            if getattr(type(c), "_shard_rows", False):
                state_of.update(_row_states(c))
    grads = list(reducers[0].parameters) if reducers else updated
    chosen: dict = {}
    records, skipped = [], []
    for p in grads:
        if not p.requires_grad:
            continue
        if not p.parallel_optimizer:
            skipped.append((p.name, "parallel_optimizer=False (manually set skipped)"))
            continue
        why = None
        opts = owner.get(id(p), [])
        kp, shape = k, tuple(p.shape)
        if replicas is not None:
            r, shape = replicas.get(id(p), (degree, shape))
            kp = _replica_group_size(cfg, r) if k > 1 else 1
        nbytes = math.prod(shape) * np.dtype(p.dtype.np_dtype).itemsize
        states = []
        if p.layerwise_parallel:
            why = "layerwise_parallel=True"
        elif len(opts) != 1:
            why = "not updated by exactly one optimizer of the step"
        elif not getattr(type(opts[0]), "_shard_rows", False):
            why = f"{type(opts[0]).__name__} updates whole tensors (its update is not row-wise)"
        elif kp <= 1:
            why = "a shard group of one device (optimizer_weight_shard_size <= 1, or its slice is on no other device)"
        elif nbytes < threshold:
            why = (f"the size of {p.name}({nbytes / 1024:g}KB) is smaller than the threshold("
                   f"{threshold // 1024}KB)")
        elif not shape or shape[0] % kp:
            why = (f"Tensor could not be shard on the first dimension: dimension 0 of shape {shape} is not "
                   f"divisible by the {kp} devices of a shard group")
            _log.warning("Parallel optimizer: %s does not satisfy the conditions, thus not apply optimizer shard (%s).",
                         p.name, why)
        else:
            states = state_of.get(id(p))
            if states is None:
                why = "its optimizer state could not be told apart from other state of its shape"
        if why is not None:
            skipped.append((p.name, why))
            continue
        chosen[id(p)] = (p, states)
        records.append(OptShard(
            name=p.name, shape=tuple(p.shape), dtype=str(np.dtype(p.dtype.np_dtype)), group_size=kp,
            shard_shape=(shape[0] // kp, *shape[1:]),
            recompute=bool(p.parallel_optimizer_comm_recompute or level == "level3"),
            states=tuple(q.name for q in states), state_nbytes=sum(_nbytes(q) for q in states),
        ))
    plan = OptShardPlan(degree=degree, group_size=k, threshold_bytes=threshold, level=level,
                        shards=tuple(records), skipped=tuple(skipped))
    return plan, chosen


def optimizer_shard_plan(train_net, degree: int | None = None) -> OptShardPlan | None:
    """What the parallel optimizer shards in the step cell ``train_net`` over ``degree`` devices
    (default: the data-parallel devices); None when it is off (see the module docstring)."""
    from sporax.nn.cell import Cell

    if not isinstance(train_net, Cell):
        raise TypeError(msg("optimizer_shard_plan", "train_net", "a Cell", type(train_net).__name__))
    return _select(train_net, degree)[0]


# ---------------------------------------------------------------------------------- from a cell
def _reducers(cell) -> list:
    from sporax.parallel.grad_reducer import DistributedGradReducer

    return [c for _, c in cell.cells_and_names() if isinstance(c, DistributedGradReducer)]


def comm_plan(train_net) -> CommPlan:
    """The communication plan of ``train_net`` (a ``TrainOneStepCell`` or any step Cell that holds
    an ``nn.DistributedGradReducer``), as it would run now.

    Example::

        >>> plan = sporax.parallel.comm_plan(nn.TrainOneStepCell(net_with_loss, opt))
        >>> plan.allreduce_count, [b.names for b in plan.buckets]
    """
    from sporax import context
    from sporax.common._binding import cell_parameters
    from sporax.nn.cell import Cell
    from sporax.nn.optim.optimizer import Optimizer

    if not isinstance(train_net, Cell):
        raise TypeError(msg("comm_plan", "train_net", "a Cell", type(train_net).__name__))
    reducers = _reducers(train_net)
    ap = context._state.auto_parallel
    if not reducers and ap.parallel_mode in ("semi_auto_parallel", "auto_parallel"):
        from sporax.parallel import semi_auto

        layouts = semi_auto.layouts_of(train_net)
        if layouts:
            return _semi_comm_plan(train_net, layouts)
    all_params = cell_parameters(train_net)
    weights = list(reducers[0].parameters) if reducers else [p for p in all_params if p.requires_grad]
    optimizers = [c for _, c in train_net.cells_and_names() if isinstance(c, Optimizer)]
    weight_ids = {id(p) for p in weights}
    opt_state = []
    seen = set()
    for opt in optimizers:
        for p in cell_parameters(opt):
            if id(p) not in weight_ids and id(p) not in seen:
                seen.add(id(p))
                opt_state.append(p)
    state_ids = {id(p) for p in opt_state}
    net_params = [p for p in all_params if id(p) not in state_ids]
    shard_plan, chosen = _select(train_net) if reducers else (None, {})
    sharded = set(chosen)
    sharded_states = {id(q) for _, states in chosen.values() for q in states}
    k = shard_plan.group_size if shard_plan is not None else 1
    if reducers:
        red = reducers[0]
        buckets = red.buckets(exclude=sharded)
        degree, mean = red.resolved_degree(), red.mean
    else:
        buckets, degree, mean = (), 1, ap.gradients_mean
    collectives = [Collective("all-reduce", "gradients", b.nbytes, b.dtype, bucket=i) for i, b in enumerate(buckets)]
    if shard_plan is not None:
        for s in shard_plan.shards:
            collectives.append(Collective("all-gather", f"weight {s.name}", s.nbytes, s.dtype, when="forward"))
            if s.recompute:
                collectives.append(Collective("all-gather", f"weight {s.name}", s.nbytes, s.dtype,
                                              when="backward (comm recompute)"))
            collectives.append(Collective("reduce-scatter", f"gradient {s.name}", s.nbytes, s.dtype, when="backward"))
            if shard_plan.mirror > 1:
                collectives.append(Collective("all-reduce", "sharded gradients", s.shard_nbytes, s.dtype,
                                              when=f"backward, over the {shard_plan.mirror} shard groups"))
    if reducers:
        collectives.append(Collective("all-reduce", "loss", 4, "float32"))
    bucket_of = {i: k for k, b in enumerate(buckets) for i in b.indices}
    windex = {id(p): i for i, p in enumerate(weights)}
    rows = []
    for p in all_params:
        i = windex.get(id(p))
        where = ("local" if p.layerwise_parallel else "reduce-scatter" if id(p) in sharded
                 else bucket_of.get(i, "-") if i is not None else "-")
        split = f"1/{k}" if id(p) in sharded or id(p) in sharded_states else "-"
        rows.append((p.name, tuple(p.shape), p.dtype, p.requires_grad, p.layerwise_parallel, p.comm_fusion, where,
                     split))
    broadcast = None
    if reducers and ap.parameter_broadcast:
        b_params = [p for p in all_params if not p.layerwise_parallel]
        broadcast = Collective("all-reduce", "parameter_broadcast", sum(_nbytes(p) for p in b_params), "mixed",
                               when="first step")
    return CommPlan(
        parallel_mode=ap.parallel_mode,
        degree=degree,
        mean=mean,
        buckets=buckets,
        excluded=tuple(p.name for p in weights if p.layerwise_parallel),
        collectives=tuple(collectives),
        broadcast=broadcast,
        param_bytes=sum(_stored(p, sharded, k) for p in net_params),
        grad_bytes=sum(_stored(p, sharded, k) for p in weights),
        opt_state_bytes=sum(_stored(p, sharded_states, k) for p in opt_state),
        rows=tuple(rows),
        opt_shard=shard_plan,
        gathered_bytes=sum(s.nbytes for s in shard_plan.shards) if shard_plan is not None else 0,
    )


def semi_replicas(params, layouts: dict, n: int) -> dict:
    """Semi-auto parallel: ``{id(param): (size of its replica group, slice shape)}`` from the
    layouts (the devices holding one slice: those of the device matrix its tensor map leaves unused)."""
    out = {}
    for p in params:
        lay = layouts.get(p.name)
        if lay is not None:
            out[id(p)] = (n // math.prod(lay.strategy), tuple(lay.slice_shape))
    return out


def _semi_comm_plan(train_net, layouts: dict) -> CommPlan:
    """The plan of a semi-auto (or auto) parallel step, from the layouts of its last compiled step.

    Per parameter: its layout's slice, and (``enable_parallel_optimizer``) the split of that
    slice over its replica group, chosen by the same :func:`_select` the step's storage uses
    (a parameter the step could not split stays out: its layout has no ``opt_shard_group``).
    The listed collectives are the optimizer sharding's: per sharded weight, the all-gather of
    its slice over the group (again in the backward pass with comm recompute), the
    reduce-scatter of its gradient, the all-reduce over the other groups when
    ``optimizer_weight_shard_size`` is smaller than the group; the rest of the step's
    communication (the operators' strategies) is inserted by XLA's SPMD partitioner and shows
    in ``semi_auto.compiled_text``. Per-device bytes: each slice, divided by its group size when
    optimizer-sharded (weights, their gradients and their optimizer states)."""
    from sporax import context
    from sporax.common._binding import cell_parameters
    from sporax.nn.optim.optimizer import Optimizer
    from sporax.parallel import _runtime

    ap = context._state.auto_parallel
    n = len(_runtime.dp_devices())
    all_params = cell_parameters(train_net)
    optimizers = [c for _, c in train_net.cells_and_names() if isinstance(c, Optimizer)]
    weights, seen = [], set()
    for opt in optimizers:
        for p in opt._parameters:
            if id(p) not in seen:
                seen.add(id(p))
                weights.append(p)
    weight_ids = {id(p) for p in weights}
    opt_state = []
    for opt in optimizers:
        for p in cell_parameters(opt):
            if id(p) not in weight_ids and id(p) not in seen:
                seen.add(id(p))
                opt_state.append(p)
    state_ids = {id(p) for p in opt_state}
    net_params = [p for p in all_params if id(p) not in state_ids]
    replicas = semi_replicas(all_params, layouts, n)
    shard_plan, chosen = _select(train_net, n, replicas)
    split: dict = {}  # id(param) -> k, for the weights and states the step stores split
    if shard_plan is not None:
        kept = []
        for rec, (p, states) in zip(shard_plan.shards, chosen.values()):
            lay = layouts.get(p.name)
            if lay is None or not lay.opt_shard_group:
                continue
            kept.append(rec)
            for q in (p, *states):
                split[id(q)] = rec.group_size
        shard_plan = dataclasses.replace(shard_plan, shards=tuple(kept))

    def slice_bytes(p) -> int:
        lay = layouts.get(p.name)
        shape = tuple(lay.slice_shape) if lay is not None else tuple(p.shape)
        return math.prod(shape) * np.dtype(p.dtype.np_dtype).itemsize

    def stored(p) -> int:
        return slice_bytes(p) // split.get(id(p), 1)

    collectives = []
    if shard_plan is not None:
        by_name = {p.name: p for p in weights}
        for s in shard_plan.shards:
            nbytes = slice_bytes(by_name[s.name])
            collectives.append(Collective("all-gather", f"weight {s.name}", nbytes, s.dtype, when="forward"))
            if s.recompute:
                collectives.append(Collective("all-gather", f"weight {s.name}", nbytes, s.dtype,
                                              when="backward (comm recompute)"))
            collectives.append(Collective("reduce-scatter", f"gradient {s.name}", nbytes, s.dtype, when="backward"))
            mirror = replicas[id(by_name[s.name])][0] // s.group_size
            if mirror > 1:
                collectives.append(Collective("all-reduce", "sharded gradients", s.shard_nbytes, s.dtype,
                                              when=f"backward, over the {mirror} shard groups"))
    rows = []
    for p in all_params:
        lay = layouts.get(p.name)
        k = split.get(id(p))
        where = "reduce-scatter" if id(p) in weight_ids and k else "XLA (SPMD)" if id(p) in weight_ids else "-"
        layout = (f"{list(lay.dev_mat)} {[list(e) if isinstance(e, tuple) else e for e in lay.tensor_map]} "
                  f"slice {tuple(lay.slice_shape)}") if lay is not None else "-"
        rows.append((p.name, tuple(p.shape), p.dtype, p.requires_grad, p.layerwise_parallel, p.comm_fusion, where,
                     f"1/{k}" if k else "-", layout))
    return CommPlan(
        parallel_mode=ap.parallel_mode,
        degree=n,
        mean=ap.gradients_mean,
        buckets=(),
        excluded=(),
        collectives=tuple(collectives),
        broadcast=None,
        param_bytes=sum(stored(p) for p in net_params),
        grad_bytes=sum(stored(p) for p in weights if p.requires_grad),
        opt_state_bytes=sum(stored(p) for p in opt_state),
        rows=tuple(rows),
        opt_shard=shard_plan,
        gathered_bytes=sum(c.nbytes for c in collectives if c.kind == "all-gather" and c.when == "forward"),
    )


def _stored(p, sharded: set, k: int) -> int:
    """Bytes of ``p`` per device: 1/k of it when optimizer-sharded."""
    return _nbytes(p) // k if id(p) in sharded else _nbytes(p)


def summary(cell) -> str:
    """A table of ``cell``'s parameters with their flags (and buckets, for a step with a reducer)."""
    return str(comm_plan(cell))
