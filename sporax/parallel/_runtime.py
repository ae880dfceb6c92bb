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
    _scope.append([name, size, opt_shards])
    try:
        yield
    finally:
        _scope.pop()


# XLA's all-reduce combiners merge independent all-reduces into one (measured on CPU for
# shard_map psums); a data-parallel step is compiled without them so that each planned bucket
# stays one all-reduce and the bucket sizes the user chose are what runs.
COMPILER_OPTIONS = {"xla_disable_hlo_passes": "cpu-all-reduce-combiner,all-reduce-combiner"}


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
