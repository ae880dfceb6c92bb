"""Test setup: 8 simulated CPU devices (set before jax is imported) and a fresh context per test."""

import os

os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import pytest  # noqa: E402

import sporax  # noqa: E402
from sporax import context  # noqa: E402


@pytest.fixture(autouse=True)
def _fresh_context():
    """Every test starts from default contexts and a fixed seed, and leaves nothing behind."""
    context._reset()
    sporax.set_seed(1234)
    yield
    context._reset()
    from sporax import communication

    communication.release()
