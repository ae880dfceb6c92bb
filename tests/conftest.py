"""Test setup: 8 simulated CPU devices (set before jax is imported) and a fresh context per test."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")
# JAX's persistent compilation cache (on by default in sporax) goes to a directory of this test
# session, never to the user's ~/.cache/sporax/jax; subprocesses started by tests inherit it.
if "SPORAX_COMPILE_CACHE" not in os.environ:
    import atexit
    import shutil
    import tempfile

    _cache_dir = tempfile.mkdtemp(prefix="sporax-test-jax-cache-")
    os.environ["SPORAX_COMPILE_CACHE"] = _cache_dir
    atexit.register(shutil.rmtree, _cache_dir, ignore_errors=True)

import pytest  # noqa: E402

import sporax  # noqa: E402
from sporax import _jax_setup, context  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_context():
    """Every test starts from default contexts and a fixed seed, and leaves nothing behind."""
    context._reset()
    sporax.set_seed(1234)
    cache = _jax_setup.compile_cache_dir()
    yield
    context._reset()
    if _jax_setup.compile_cache_dir() != cache:  # a test moved or disabled the compilation cache
        _jax_setup.set_compile_cache(cache)
    from sporax import communication

    communication.release()
