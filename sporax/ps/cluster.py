"""Ray for the parameter-server mode: roles, joining or starting a cluster, and the server actors.

Roles (``MS_ROLE``, read when the mode is used):

* none (the embedded default): this process is the only worker; it starts a local Ray
  instance (``address="local"``, dashboard and usage stats off, a small object store) unless
  Ray is already initialized (``ray.init(address=...)`` before training reaches an existing
  cluster), and creates the server actors in it.
* ``MS_SCHED``: starts a Ray head at ``MS_SCHED_HOST:MS_SCHED_PORT`` (a ``ray start --head
  --block`` child process), serves until the workers finish, then stops it.
* ``MS_PSERVER`` / ``MS_SERVER``: joins that cluster, creates server ``MS_SERVER_ID`` (default 0)
  on its own node and serves until the workers finish.
* ``MS_WORKER``: joins the cluster (retrying until ``server_timeout``) and trains; worker
  ``MS_WORKER_ID`` (default ``RANK_ID``, else 0) of ``MS_WORKER_NUM``.

``MS_SERVER_NUM`` servers (default 1) are named actors ``<job>.server<k>`` in the Ray
namespace ``sporax_ps`` (``job`` from ``SPORAX_PS_JOB``, default ``"sporax"``), created by
whichever process needs one first; they are detached (a worker's death does not take them
down) and restarted by Ray after a crash.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import subprocess
import sys
import time

__all__ = ["import_ray", "connect", "server_handles", "n_servers", "n_workers", "worker_id", "job_name", "NAMESPACE"]

NAMESPACE = "sporax_ps"
_state: dict = {"started": False}


def import_ray():
    """The ``ray`` module, or an ImportError saying how to install it."""
    try:
        import ray
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError(
            "sporax's parameter-server mode runs on Ray, which is not installed: pip install 'sporax[ps]'."
        ) from e
    return ray


def _env_int(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    try:
        value = int(raw)
    except ValueError:
        raise ValueError(f"The environment variable {name} should be an int, but got {raw!r}.") from None
    if value < 0:
        raise ValueError(f"The environment variable {name} should be >= 0, but got {value}.")
    return value


def n_servers() -> int:
    n = _env_int("MS_SERVER_NUM", 1)
    if n < 1:
        raise ValueError(f"The environment variable MS_SERVER_NUM should be >= 1, but got {n}.")
    return n


def n_workers() -> int:
    n = _env_int("MS_WORKER_NUM", 1)
    if n < 1:
        raise ValueError(f"The environment variable MS_WORKER_NUM should be >= 1, but got {n}.")
    return n


def worker_id() -> int:
    w = _env_int("MS_WORKER_ID", _env_int("RANK_ID", 0))
    if w >= n_workers():
        raise ValueError(f"The worker id (MS_WORKER_ID) should be < MS_WORKER_NUM ({n_workers()}), but got {w}.")
    return w


def job_name() -> str:
    return os.environ.get("SPORAX_PS_JOB", "sporax")


def _sched_address() -> str | None:
    host = os.environ.get("MS_SCHED_HOST", "")
    port = os.environ.get("MS_SCHED_PORT", "")
    if not host and not port:
        return None
    if not host or not port.isdigit():
        raise ValueError(
            f"MS_SCHED_HOST and MS_SCHED_PORT should name the scheduler (a host and a port number), "
            f"but got {host!r} and {port!r}."
        )
    return f"{host}:{port}"


def _quiet_env() -> None:
    os.environ.setdefault("RAY_USAGE_STATS_ENABLED", "0")
    # Workers of a local instance inherit this process's environment: make sporax importable there.
    root = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
    path = os.environ.get("PYTHONPATH", "")
    if root not in path.split(os.pathsep):
        os.environ["PYTHONPATH"] = root + (os.pathsep + path if path else "")


def connect(timeout: float) -> None:
    """Initialize Ray for this process's role (nothing if Ray is already initialized)."""
    ray = import_ray()
    if ray.is_initialized():
        return
    _quiet_env()
    from sporax import context

    role = context._ps_role()
    address = _sched_address()
    if role == "MS_SCHED":
        if address is None:
            raise ValueError("MS_ROLE=MS_SCHED needs MS_SCHED_HOST and MS_SCHED_PORT (where to start Ray's head).")
        host, port = address.rsplit(":", 1)
        # --block: the head lives exactly as long as this child process, which stop_head() ends.
        _state["head"] = subprocess.Popen(
            [sys.executable, "-m", "ray.scripts.scripts", "start", "--head", "--block", f"--port={port}",
             f"--node-ip-address={host}", "--include-dashboard=false", "--disable-usage-stats",
             "--num-cpus=2", f"--object-store-memory={200 * 1024 * 1024}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True,
        )
        atexit.register(stop_head)
    if address is not None and os.environ.get("MS_ROLE"):
        deadline = time.monotonic() + timeout
        while True:
            try:
                ray.init(address=address, namespace=NAMESPACE, log_to_driver=False)
                return
            except (ConnectionError, RuntimeError) as e:
                if time.monotonic() > deadline:
                    raise RuntimeError(
                        f"Could not join the parameter-server cluster at {address} (MS_SCHED_HOST:MS_SCHED_PORT) "
                        f"within {timeout:.0f}s: {e}. Start the MS_SCHED process first."
                    ) from e
                time.sleep(1.0)
    ray.init(address="local", num_cpus=max(2, n_servers()), object_store_memory=200 * 1024 * 1024,
             include_dashboard=False, log_to_driver=False, namespace=NAMESPACE)
    _state["started"] = True


def stop_head() -> None:
    """Stop the Ray head this (MS_SCHED) process started, if any."""
    head = _state.pop("head", None)
    if head is not None and head.poll() is None:
        ray = import_ray()
        if ray.is_initialized():
            ray.shutdown()
        head.terminate()  # `ray start --block` stops the node's processes on SIGTERM, but can take long:
        try:  # after a short grace period the whole process group goes (gcs, raylet; their workers follow)
            head.wait(timeout=3)
        except subprocess.TimeoutExpired:
            pass
        with contextlib.suppress(ProcessLookupError):
            os.killpg(head.pid, 9)
        if head.poll() is None:
            head.wait()


def started_here() -> bool:
    """True when this process started the local Ray instance (and so shuts it down)."""
    return _state["started"]


def server_name(k: int) -> str:
    return f"{job_name()}.server{k}"


def server_handles(create: bool = True, pin_to_node: int | None = None) -> list:
    """Handles of the ``MS_SERVER_NUM`` server actors, created where missing (idempotent)."""
    ray = import_ray()
    from sporax import context
    from sporax.ps.server import ParameterServer

    ps = context._state.ps
    handles = []
    remote = ray.remote(ParameterServer)
    for k in range(n_servers()):
        options = dict(name=server_name(k), namespace=NAMESPACE, get_if_exists=True, lifetime="detached",
                       max_restarts=-1, max_concurrency=16, num_cpus=0)
        if pin_to_node == k:
            from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

            options["scheduling_strategy"] = NodeAffinitySchedulingStrategy(
                ray.get_runtime_context().get_node_id(), soft=False)
        if create:
            h = remote.options(**options).remote(k, n_servers(), job_name(), ps.snapshot_path, ps.snapshot_steps)
        else:
            h = ray.get_actor(server_name(k), namespace=NAMESPACE)
        handles.append(h)
    return handles
