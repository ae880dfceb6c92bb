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

A bucket is one flat buffer (the gradients raveled and concatenated, in float32 or wider) and
one all-reduce. The later parallel-optimizer issue extends :class:`CommPlan` with
optimizer-sharded parameters; the per-device byte counts are the place for that.
"""

from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from sporax.common._validation import msg

__all__ = ["Bucket", "Collective", "CommPlan", "assign_buckets", "check_fusion_config", "comm_plan", "summary"]

_AUTO_MB = 64


@dataclasses.dataclass(frozen=True)
class Bucket:
    """One fused all-reduce: the gradients of ``names`` concatenated into one ``dtype`` buffer."""

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
    rows: tuple = ()  # (name, shape, dtype, requires_grad, layerwise_parallel, comm_fusion, bucket)

    @property
    def allreduce_count(self) -> int:
        return sum(1 for c in self.collectives if c.kind == "all-reduce")

    @property
    def allreduce_bytes(self) -> int:
        return sum(c.nbytes for c in self.collectives if c.kind == "all-reduce")

    def __str__(self) -> str:
        lines = [f"CommPlan({self.parallel_mode}, degree={self.degree}, mean={self.mean}): "
                 f"{len(self.buckets)} gradient bucket(s), {self.allreduce_count} all-reduce(s) per step, "
                 f"{self.allreduce_bytes} bytes"]
        for i, b in enumerate(self.buckets):
            lines.append(f"  bucket {i} (fusion id {b.fusion_id}): {b.nbytes} bytes {b.dtype}: {', '.join(b.names)}")
        if self.excluded:
            lines.append(f"  local (layerwise_parallel): {', '.join(self.excluded)}")
        if self.broadcast is not None:
            lines.append(f"  first step: parameter broadcast from rank 0, {self.broadcast.nbytes} bytes")
        lines.append(f"  per device: parameters {self.param_bytes} B, gradients {self.grad_bytes} B, "
                     f"optimizer state {self.opt_state_bytes} B")
        if self.rows:
            lines.append(_table(self.rows))
        return "\n".join(lines)


def _table(rows) -> str:
    head = ("name", "shape", "dtype", "requires_grad", "layerwise_parallel", "comm_fusion", "bucket")
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


def bucket_records(params: Sequence, fusion_config=None, fusion_type: int = 1) -> tuple:
    """:class:`Bucket` records for the gradients of ``params`` (Parameters, in order)."""
    entries = [(math.prod(p.shape), 0, p.comm_fusion, p.layerwise_parallel) for p in params]
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
    if reducers:
        red = reducers[0]
        buckets = red.buckets()
        degree, mean = red.resolved_degree(), red.mean
    else:
        buckets, degree, mean = (), 1, ap.gradients_mean
    collectives = [Collective("all-reduce", "gradients", b.nbytes, b.dtype, bucket=i) for i, b in enumerate(buckets)]
    if reducers:
        collectives.append(Collective("all-reduce", "loss", 4, "float32"))
    bucket_of = {i: k for k, b in enumerate(buckets) for i in b.indices}
    windex = {id(p): i for i, p in enumerate(weights)}
    rows = []
    for p in all_params:
        i = windex.get(id(p))
        where = "local" if p.layerwise_parallel else bucket_of.get(i, "-") if i is not None else "-"
        rows.append((p.name, tuple(p.shape), p.dtype, p.requires_grad, p.layerwise_parallel, p.comm_fusion, where))
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
        param_bytes=sum(_nbytes(p) for p in net_params),
        grad_bytes=sum(_nbytes(p) for p in weights),
        opt_state_bytes=sum(_nbytes(p) for p in opt_state),
        rows=tuple(rows),
    )


def summary(cell) -> str:
    """A table of ``cell``'s parameters with their flags (and buckets, for a step with a reducer)."""
    return str(comm_plan(cell))
