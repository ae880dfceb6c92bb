"""JAX's persistent compilation cache, on by default in a per-user directory (sporax/_jax_setup.py).

Each case runs in a fresh interpreter: the cache directory is read when sporax is imported.
"""

import json
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

# One GRAPH_MODE training step; prints where the cache is and how many executables came from it.
STEP = r"""
import json, sys
import jax
hits = []
jax.monitoring.register_event_listener(lambda name, **kw: hits.append(name) if name.endswith("cache_hits") else None)
import numpy as np
import sporax as ms
from sporax import nn, Tensor
for kv in sys.argv[1:]:
    k, v = kv.split("=")
    ms.set_context(**{k: json.loads(v)})
ms.set_context(mode=ms.GRAPH_MODE)
ms.set_seed(1)
net = nn.Dense(4, 3)
step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Momentum(net.trainable_params(), 0.1, 0.9))
loss = step(Tensor(np.ones((2, 4), np.float32)), Tensor(np.zeros((2, 3), np.float32)))
print(json.dumps({"dir": ms._jax_setup.compile_cache_dir(), "enabled": ms.get_context("enable_compile_cache"),
                  "hits": len(hits), "loss": float(loss.asnumpy())}))
"""


def _run(tmp_path, env_update, *context_args):
    env = {k: v for k, v in os.environ.items() if k not in ("SPORAX_COMPILE_CACHE", "JAX_COMPILATION_CACHE_DIR")}
    env.update(PYTHONPATH=ROOT, XDG_CACHE_HOME=str(tmp_path / "xdg"), HOME=str(tmp_path / "home"), **env_update)
    out = subprocess.run([sys.executable, "-c", STEP, *context_args], capture_output=True, text=True, timeout=300,
                         env=env)
    assert out.returncode == 0, out.stderr[-3000:]
    return json.loads(out.stdout.strip().splitlines()[-1])


def _entries(path) -> int:
    return len([f for f in os.listdir(path) if not f.endswith(".lock")]) if os.path.isdir(path) else 0


def test_default_is_a_per_user_directory_and_a_second_run_loads_from_it(tmp_path):
    default = str(tmp_path / "xdg" / "sporax" / "jax")
    first = _run(tmp_path, {})
    assert first["dir"] == default and first["enabled"] is True
    assert first["hits"] == 0 and _entries(default) > 0
    second = _run(tmp_path, {})
    assert second["hits"] > 0 and second["loss"] == first["loss"]  # the step itself came from the cache


def test_env_var_moves_or_disables_the_cache(tmp_path):
    where = tmp_path / "mine"
    res = _run(tmp_path, {"SPORAX_COMPILE_CACHE": str(where)})
    assert res["dir"] == str(where) and _entries(where) > 0
    for off in ("off", "0"):
        res = _run(tmp_path, {"SPORAX_COMPILE_CACHE": off})
        assert res["dir"] is None and res["enabled"] is False
    assert _entries(tmp_path / "xdg" / "sporax" / "jax") == 0


def test_set_context_moves_or_disables_the_cache(tmp_path):
    where = tmp_path / "ctx"
    res = _run(tmp_path, {}, f"compile_cache_path={json.dumps(str(where))}")
    assert res["dir"] == str(where) and _entries(where) > 0
    res = _run(tmp_path, {}, "enable_compile_cache=false")
    assert res["dir"] is None and res["enabled"] is False
    assert _entries(tmp_path / "xdg" / "sporax" / "jax") == 0


def test_a_cache_configured_through_jax_is_left_alone(tmp_path):
    where = tmp_path / "jaxdir"
    res = _run(tmp_path, {"JAX_COMPILATION_CACHE_DIR": str(where)}, "enable_compile_cache=false")
    assert res["dir"] == str(where)  # JAX's own settings (what it caches) stay as the user made them


def test_set_context_checks_the_cache_options():
    import sporax as ms

    with pytest.raises(TypeError, match="enable_compile_cache"):
        ms.set_context(enable_compile_cache="yes")
    with pytest.raises(TypeError, match="compile_cache_path"):
        ms.set_context(compile_cache_path=3)


def test_tests_do_not_write_to_the_users_cache():
    """tests/conftest.py points the cache at a directory of the test session."""
    import sporax as ms

    where = ms._jax_setup.compile_cache_dir()
    assert where == os.environ["SPORAX_COMPILE_CACHE"]
    assert not os.path.realpath(where).startswith(os.path.realpath(ms._jax_setup._per_user_dir()))
