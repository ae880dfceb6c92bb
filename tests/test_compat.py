"""``import mindspore`` resolves to sporax inside ``python -m sporax run`` and after compat.install()."""

import os
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).parent.parent

SCRIPT = textwrap.dedent(
    """
    import sys
    import sporax
    import mindspore
    import mindspore as ms
    from mindspore import Parameter, Tensor, ParameterTuple, nn, ops, context
    from mindspore import dtype as mstype
    import mindspore.common.dtype as mstype2
    from mindspore.common.initializer import initializer, Normal
    from mindspore.common.parameter import Parameter as P2
    from mindspore.communication import get_rank
    from mindspore.communication.management import get_group_size
    import mindspore.nn as nn2
    import mindspore.ops as ops2
    assert mindspore is sporax and ms is sporax
    assert Parameter is sporax.Parameter is P2 and Tensor is sporax.Tensor
    assert ParameterTuple is sporax.ParameterTuple and nn is sporax.nn is nn2 and ops is sporax.ops is ops2
    assert context is sporax.context and mstype is sporax.common.dtype is mstype2
    assert initializer is sporax.common.initializer.initializer and Normal is sporax.common.initializer.Normal
    assert get_rank is sporax.communication.get_rank and get_group_size() == 1
    print("ok", sys.argv[1:])
    """
)


def test_alias_inside_sporax_run(tmp_path):
    script = tmp_path / "script.py"
    script.write_text(SCRIPT)
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-m", "sporax", "run", str(script), "a", "--b"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.strip() == "ok ['a', '--b']"


def test_alias_is_process_local():
    import importlib.util

    from sporax import compat

    compat.install()
    try:
        import mindspore

        import sporax

        assert mindspore is sporax
    finally:
        compat.uninstall()
    assert "mindspore" not in sys.modules
    spec = importlib.util.find_spec("mindspore")
    assert spec is None or "sporax" not in str(spec.origin)


def test_run_usage_errors():
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run([sys.executable, "-m", "sporax", "run", "/nonexistent.py"],
                          capture_output=True, text=True, env=env, timeout=60)
    assert proc.returncode != 0 and "no such script" in proc.stderr
