"""Every code block of both seed documents runs verbatim under ``python -m sporax run``.

The scripts in ``tests/seeds/`` are the seeds' code blocks (seed 000's full-width punctuation
made ASCII). Expected outputs are the seeds', in the long ``Parameter (name=..., shape=...,
dtype=..., requires_grad=...)`` form where seed 002 shows the short one (spec §8). Seed 002's
first block is the constructor's signature, not runnable code, so it has no script.
"""

import os
import subprocess
import sys
from pathlib import Path

import pytest

SEEDS = Path(__file__).parent / "seeds"
ROOT = Path(__file__).parent.parent

EXPECTED = {
    "seed000_parameter_api.py": "[[2.]]\n[[0.]]\n",
    "seed002_initialization.py": (
        "Parameter (name=x, shape=(2, 3), dtype=Int64, requires_grad=True) \n\n"
        " Parameter (name=y, shape=(1, 2, 3), dtype=Float32, requires_grad=True) \n\n"
        " Parameter (name=z, shape=(), dtype=Float32, requires_grad=True)\n"
    ),
    "seed002_attributes.py": (
        "name:  Parameter \n"
        " sliced:  False \n"
        " is_init:  False \n"
        " inited_param:  None \n"
        " requires_grad:  True \n"
        " layerwise_parallel:  False \n"
        " data:  Parameter (name=Parameter, shape=(2, 3), dtype=Int64, requires_grad=True)\n"
    ),
    "seed002_methods.py": (
        "Parameter (name=Parameter, shape=(1, 2, 3), dtype=Float32, requires_grad=True)\n"
        "Parameter (name=x_clone, shape=(1, 2, 3), dtype=Float32, requires_grad=True)\n"
        "Parameter (name=Parameter, shape=(1, 2, 3), dtype=Float32, requires_grad=True)\n"
        "Parameter (name=Parameter, shape=(1, 2, 3), dtype=Float32, requires_grad=True)\n"
    ),
    "seed002_parameter_tuple.py": (
        "(Parameter (name=x, shape=(2, 3), dtype=Int64, requires_grad=True), "
        "Parameter (name=y, shape=(1, 2, 3), dtype=Float32, requires_grad=True), "
        "Parameter (name=z, shape=(), dtype=Float32, requires_grad=True)) \n\n"
        "(Parameter (name=params_copy.x, shape=(2, 3), dtype=Int64, requires_grad=True), "
        "Parameter (name=params_copy.y, shape=(1, 2, 3), dtype=Float32, requires_grad=True), "
        "Parameter (name=params_copy.z, shape=(), dtype=Float32, requires_grad=True))\n"
    ),
}


def test_every_seed_script_has_an_expectation():
    assert sorted(p.name for p in SEEDS.glob("*.py")) == sorted(EXPECTED)


@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_seed_block_runs_verbatim(script):
    env = dict(os.environ, PYTHONPATH=str(ROOT), JAX_PLATFORMS="cpu")
    env.pop("XLA_FLAGS", None)
    proc = subprocess.run(
        [sys.executable, "-m", "sporax", "run", str(SEEDS / script)],
        capture_output=True, text=True, env=env, timeout=120,
    )
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout == EXPECTED[script]
