"""A lazy 16 GiB Parameter allocates nothing (spec §2.3), measured through the process's RSS."""

import os
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).parent.parent.parent

CODE = """
import psutil, sporax as sp
from sporax import Parameter, nn
from sporax.common.initializer import initializer
proc = psutil.Process()
before = proc.memory_info().rss
class Big(nn.Cell):
    def __init__(self):
        super().__init__()
        self.table = Parameter(initializer('normal', [1 << 20, 1 << 12], sp.float32))
        self.moments = sp.ParameterTuple([self.table]).clone('moments', init='zeros')
net = Big()
p = net.table
print(p, p.has_init, str(p.clone()))
print((proc.memory_info().rss - before) // (1 << 20))
"""


def test_sixteen_gib_lazy_parameter_allocates_nothing():
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    proc = subprocess.run([sys.executable, "-c", CODE], capture_output=True, text=True, env=env, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.strip().splitlines()
    assert lines[0].startswith("Parameter (name=table, shape=(1048576, 4096), dtype=Float32, requires_grad=True) True")
    assert int(lines[-1]) < 64, f"RSS grew by {lines[-1]} MiB for a lazy 16 GiB parameter"
