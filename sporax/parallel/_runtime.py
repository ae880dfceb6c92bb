"""Where data parallelism runs: the device mesh of the data-parallel axis and the axis in scope.

Model (JAX's: one process per host, several devices per process). The data-parallel group is
a set of *devices*: all devices of all processes (``jax.devices()``), or the first
``device_num`` of them when ``set_auto_parallel_context(device_num=...)`` was given in one
process. A MindSpore rank (``communication.get_rank()``) is a *process*; inside a
data-parallel step every device of the mesh computes on its share of its process's batch.
With one device per process (MindSpore's own model) the two notions coincide.

While the body of a data-parallel step is traced (under ``shard_map``), :func:`axis` gives the
mesh axis name and size; collectives (``ops.AllReduce``, the gradient reducer) use it.
Outside a step there is no axis, and collectives act over a group of one device.
"""

from __future__ import annotations

import contextlib
import os

__all__ = ["AXIS", "axis", "axis_scope", "opt_shards", "dp_devices", "mesh", "replicated", "cluster_pending"]

AXIS = "dp"
_scope: list = []  # (axis name, size) of the data-parallel step being traced, innermost last
_meshes: dict = {}


def axis():
    """``(name, size)`` of the data-parallel axis being traced, or None outside a step."""
    return _scope[-1][:2] if _scope else None


def opt_shards():
    """The parallel-optimizer sharding (``opt_shard.StepShards``) of the step being traced, or None."""
    return _scope[-1][2] if _scope else None


@contextlib.contextmanager
def axis_scope(name, size: int, opt_shards=None):
    """While tracing a step's body: its data-parallel axis (a name, or a tuple of mesh axis names
    when the parallel optimizer splits the devices into groups) and its optimizer sharding."""
    _scope.append([name, size, opt_shards, None])  # [3]: the chain token of tie/advance
    try:
        yield
    finally:
        _scope.pop()


# Without XLA's all-reduce combiners: the parameter broadcast (first step only; one flat buffer
# per dtype), and the steps that do not rely on the combiner (see combines()).
COMPILER_OPTIONS = {"xla_disable_hlo_passes": "cpu-all-reduce-combiner,all-reduce-combiner"}

# How a bucket of gradients becomes ONE all-reduce. XLA's SPMD partitioner accepts only
# single-operand all-reduces in shard_map ("supports only single-operand allreduce in manual
# partitioning mode", measured on jax 0.10.2), so a bucket can not be one variadic collective
# written by us. XLA:CPU's all-reduce combiner, which runs after the partitioner, merges every
# set of mutually independent all-reduces of one dtype (at most 256 operands per all-reduce, no
# byte limit: measured) into one tuple all-reduce, with no copies. So each gradient of a bucket
# gets its own psum, and the collectives of a step are chained by data dependency (tie/advance:
# the inputs of the next collective add an exact zero computed from the previous collective's
# result), so the combiner merges exactly within a bucket and never across buckets. An
# optimization_barrier does not work: it is removed before the combiner runs (measured).
COMBINE_LIMIT = 256


def combines(opt_shards=None) -> bool:
    """True where buckets rely on the combiner (the CPU backend, measured), and the parallel
    optimizer does not shard the step (its groups keep their own collectives); else one flat
    buffer per bucket, compiled with COMPILER_OPTIONS."""
    import jax

    return opt_shards is None and jax.default_backend() == "cpu"


def tie(arrays: list) -> list:
    """``arrays`` made to depend on the last collective of the step being traced (values unchanged)."""
    import jax.numpy as jnp

    if not _scope or _scope[-1][3] is None:
        return list(arrays)
    zero = _scope[-1][3]
    return [a + zero.astype(a.dtype) if jnp.issubdtype(a.dtype, jnp.inexact) else a for a in arrays]


def advance(results: list) -> None:
    """Record ``results`` (a collective's outputs) as what the next collective of the step waits for."""
    import jax.numpy as jnp

    if not _scope:
        return
    floats = [r for r in results if jnp.issubdtype(r.dtype, jnp.inexact) and r.size]
    if not floats:
        return
    # one element of EVERY result: the next collective must depend on all of them, or the
    # combiner may still merge it with those it does not depend on (measured)
    v = sum(r.reshape(-1)[0].real.astype(jnp.float32) for r in floats)
    # an exact zero XLA can not fold away (x * 0 is not simplified for floats), finite for any x
    _scope[-1][3] = jnp.where(jnp.isfinite(v), v, jnp.zeros((), jnp.float32)) * jnp.zeros((), jnp.float32)

def cluster_pending() -> bool:
    """True when this process belongs to a cluster whose ``init()`` has not run yet.

    Asking JAX for its devices then would start the backend before ``jax.distributed`` and
    make ``init()`` impossible, so device checks wait until ``init()``.
    """
    from sporax.communication import GlobalComm, _cluster

    return not GlobalComm.INITED and _cluster.cluster_env() is not None


def dp_devices() -> list:
    """The devices of the data-parallel axis, in rank order (see the module docstring).

    ``device_num`` 1 (the default, and what ``get_group_size()`` gives in one process) or the
    rank count means every device; in one process ``1 < device_num <= devices`` takes the first
    ``device_num`` devices.
    """
    import jax

    from sporax import context

    devices = jax.devices()
    n = context._state.auto_parallel.device_num
    check_device_num(n, len(devices), jax.process_count())
    if jax.process_count() == 1 and n > 1:
        devices = devices[:n]
    return devices


def check_device_num(n: int, devices: int, processes: int) -> None:
    """ValueError unless ``device_num`` ``n`` fits ``devices`` devices in ``processes`` processes."""
    from sporax.common._validation import msg

    if processes == 1:
        if n > devices:
            raise ValueError(msg("set_auto_parallel_context", "device_num",
                                 f"at most the {devices} devices of this process", n))
    elif n not in (1, processes, devices):
        raise ValueError(msg("set_auto_parallel_context", "device_num",
                             f"the number of ranks ({processes}) or devices ({devices}) of the cluster", n))


def mesh(devices=None):
    """The one-axis ``Mesh`` (axis ``"dp"``) over ``devices`` (default :func:`dp_devices`), cached."""
    import numpy as np
    from jax.sharding import Mesh

    devices = tuple(dp_devices() if devices is None else devices)
    key = tuple(d.id for d in devices)
    m = _meshes.get(key)
    if m is None:
        m = _meshes[key] = Mesh(np.array(devices, dtype=object), (AXIS,))
    return m


def replicated(m):
    """The replicated ``NamedSharding`` over mesh ``m``, cached on it."""
    from jax.sharding import NamedSharding, PartitionSpec

    key = ("repl", id(m))
    s = _meshes.get(key)
    if s is None:
        s = _meshes[key] = NamedSharding(m, PartitionSpec())
    return s


def env_int(*names: str, default: int | None = None) -> int | None:
    """The first of the environment variables ``names`` that is set, as an int."""
    for name in names:
        value = os.environ.get(name)
        if value not in (None, ""):
            try:
                return int(value)
            except ValueError:
                raise ValueError(f"The environment variable {name} should be an int, but got {value!r}.") from None
    return default
