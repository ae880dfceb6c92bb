"""Parameter-server mode on Ray (MindSpore 1.x's PS mode): ``set_ps_context(enable_ps=True)``.

Parameters marked with ``Parameter.set_param_ps()`` / ``Cell.set_param_ps()`` have their
master copy and optimizer state in server actors (:class:`sporax.ps.server.ParameterServer`),
spread over ``MS_SERVER_NUM`` servers by a stable hash of their names; large tables and
``EmbeddingLookup`` tables are row-sliced over all servers. A ``TrainOneStepCell`` training
them pulls before its forward pass and pushes gradients after its backward pass; the servers
apply the same optimizer Cell as local training. Training is synchronous across the
``MS_WORKER_NUM`` workers (each step's gradients are averaged, as one big batch would be).
An asynchronous variant would let a server apply each worker's push as it arrives, making
steps faster but the result depend on timing (stale gradients); sporax does not offer it.

Parameters not marked with ``set_param_ps`` stay on the workers, each worker holding a copy
updated by its own optimizer (MindSpore's hybrid mode: "some weights can be stored and updated
through the parameter server, and other weights are still trained through the AllReduce
algorithm"). With several workers their gradients are all-reduced over the workers each step
before that update, so the copies stay equal and training equals one process on the whole
batch (equal shards, a mean loss): MindSpore's workers do it with their data-parallel reducer (``DistributedGradReducer``
reduces every gradient but the ``is_param_ps`` ones; its PS examples set
``parallel_mode=DATA_PARALLEL`` or ``AUTO_PARALLEL`` with ``gradients_mean=True`` on the
workers), sporax through the servers (:meth:`sporax.ps.server.ParameterServer.allreduce`), as
PS workers form no ``jax.distributed`` cluster. It averages in every parallel mode (MindSpore in
``STAND_ALONE`` mode would reduce nothing and let the copies drift apart, which its docs rule
out for several workers), and sums when a parallel mode is set with ``gradients_mean=False``
(as ``DistributedGradReducer(mean=False)``). Worker-local parameters are not in the servers'
snapshots: a replacement worker starts them from its own initialization, with a
``RuntimeWarning`` that names them (mark them with ``set_param_ps`` to have them survive a
worker's loss).

Roles and clusters: :mod:`sporax.ps.cluster`. The worker step: :mod:`sporax.ps.worker`.
The embedding cache: :mod:`sporax.ps.cache`. Faults (idempotent versioned pushes,
snapshots and restarts, worker replacement, dead servers): :mod:`sporax.ps.server`.

Embedding tables (``EmbeddingLookup(sparse=True)``) move only the rows a step looks up, and
are updated as MindSpore's parameter-server optimizers update them
(:func:`sporax.ps._apply.rows_only`): a lazy optimizer (``Adam(use_lazy=True)``, MindSpore's
``SparseApplyLazyAdam``; ``FTRL``; ``ProximalAdagrad``) changes only the looked-up rows and
their state; any other one (``Adam``, MindSpore's ``SparseApplyAdam``, which decays every
row's moments; ``Momentum``; ...) updates every row each step, with a zero gradient for the
rows not looked up, so training equals dense local training. Dense server parameters are
updated exactly as locally.

Several workers may each keep an embedding cache: each step the workers announce their ids
to the servers, a row that more than one worker looks up is updated on its server (read
directly, gradients pushed and averaged), and a row held in one worker's cache that another
worker needs is given back first; a row only one worker uses may stay in that worker's cache,
updated there with its share of the averaged gradient. The result equals training without
caches. ``pull_parameters`` is then collective: every worker calls it at the same step.
"""

from __future__ import annotations

import time

from sporax.ps.callback import CacheMonitor
from sporax.ps.worker import cache_stats, current_step, pull_parameters, runtime, shutdown

__all__ = ["serve", "shutdown", "current_step", "pull_parameters", "cache_stats", "CacheMonitor", "runtime",
           "server_handles"]


def server_handles() -> list:
    """The Ray actor handles of this job's servers (created where missing)."""
    from sporax.ps import cluster

    return list(runtime().servers) if cluster.import_ray().is_initialized() else cluster.server_handles()


def serve(poll: float = 1.0) -> None:
    """Run this process's server role (``MS_PSERVER`` or ``MS_SCHED``) until every worker has finished.

    A server process creates server ``MS_SERVER_ID`` (default 0) on its own node; the actors
    hold the state, this process only keeps the role alive for MindSpore-style launch scripts.
    """
    import os

    from sporax import context
    from sporax.ps import cluster

    timeout = float(context._state.ps.server_timeout)
    cluster.connect(timeout)
    ray = cluster.import_ray()
    sched = context._ps_role() == "MS_SCHED"
    own = None if sched else int(os.environ.get("MS_SERVER_ID", "0"))
    handles = cluster.server_handles(pin_to_node=own)
    if own is not None and own < len(handles):
        ray.get(handles[own].serving.remote(True), timeout=timeout)
    try:
        while True:
            try:
                if all(ray.get([h.done.remote() for h in handles], timeout=timeout)):
                    break
            except ray.exceptions.RayActorError:
                pass
            time.sleep(poll)
        if own is not None and own < len(handles):
            ray.get(handles[own].serving.remote(False), timeout=timeout)
        if sched:  # the server processes finish before the head goes (bounded by server_timeout)
            deadline = time.monotonic() + timeout
            while time.monotonic() < deadline:
                try:
                    if not any(ray.get([h.serving.remote() for h in handles], timeout=timeout)):
                        break
                except ray.exceptions.RayActorError:
                    break
                time.sleep(poll)
    finally:
        if sched:
            for h in handles:
                ray.kill(h, no_restart=True)
            cluster.stop_head()
