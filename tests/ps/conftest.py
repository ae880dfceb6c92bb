"""One Ray instance for the whole test session (small, quiet, shut down at the end), and a fresh
parameter-server job (its own server actors, killed afterwards) per test."""

import contextlib
import itertools
import os

import pytest

_jobs = itertools.count()


_JAX_CACHE = {"JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS": "0", "JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES": "-1"}


@pytest.fixture(scope="session")
def ray_address(tmp_path_factory):
    """Start the session's local Ray instance; yield its GCS address (for worker subprocesses).

    Server actors and the tests' worker processes (not this process) share one JAX compilation
    cache for the session, so each program is compiled once rather than once per process.
    """
    ray = pytest.importorskip("ray")
    os.environ["RAY_USAGE_STATS_ENABLED"] = "0"
    os.environ["RAY_AUTH_MODE"] = "disabled"
    saved = {k: os.environ.get(k) for k in [*_JAX_CACHE, "JAX_COMPILATION_CACHE_DIR"]}
    os.environ.update(_JAX_CACHE, JAX_COMPILATION_CACHE_DIR=str(tmp_path_factory.mktemp("jax-cache")))
    from sporax.ps import cluster

    cluster._quiet_env()
    ray.init(address="local", num_cpus=2, object_store_memory=200 * 1024 * 1024, include_dashboard=False,
             log_to_driver=False, namespace=cluster.NAMESPACE)
    try:
        yield ray.get_runtime_context().gcs_address
    finally:
        ray.shutdown()
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def reset_servers(job: str, n: int = 2) -> None:
    """End this process's PS job and put the job's server actors back to a blank state (reused by
    the next test: starting actors is the slow part)."""
    import ray

    import sporax.ps
    from sporax.ps import cluster

    sporax.ps.shutdown(kill_servers=False)
    for k in range(n):
        with contextlib.suppress(Exception):
            ray.get(ray.get_actor(f"{job}.server{k}", namespace=cluster.NAMESPACE).reset.remote(), timeout=30)


@pytest.fixture(scope="session")
def _session_job():
    return f"test{os.getpid()}"


@pytest.fixture
def ps_job(ray_address, _session_job, monkeypatch):
    """The session's PS job (2 servers, reset after each test), in the embedded worker role."""
    job = _session_job
    monkeypatch.setenv("SPORAX_PS_JOB", job)
    monkeypatch.setenv("MS_SERVER_NUM", "2")
    monkeypatch.delenv("MS_ROLE", raising=False)
    monkeypatch.delenv("MS_WORKER_NUM", raising=False)
    monkeypatch.delenv("MS_WORKER_ID", raising=False)
    try:
        yield {"job": job, "address": ray_address}
    finally:
        reset_servers(job)


@pytest.fixture
def own_job(ps_job, monkeypatch):
    """A PS job of its own (new server actors, killed at the end), for tests that kill servers."""
    import ray

    import sporax.ps
    from sporax.ps import cluster

    job = f"{ps_job['job']}_{next(_jobs)}"
    monkeypatch.setenv("SPORAX_PS_JOB", job)
    try:
        yield {**ps_job, "job": job}
    finally:
        sporax.ps.shutdown(kill_servers=True)
        for k in range(2):
            with contextlib.suppress(Exception):
                ray.kill(ray.get_actor(f"{job}.server{k}", namespace=cluster.NAMESPACE), no_restart=True)
