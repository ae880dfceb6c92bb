"""Microseconds per Parameter operation, each next to the bare jax.numpy operation it wraps.

Run: ``python benchmarks/bench_parameter.py``. MindSpore 2.10 on the reference machine:
87 us (Parameter from a Tensor), 177 us (from an initializer, eager), 118 us (clone()),
211 us per parameter (ParameterTuple.clone('moments', init='zeros')). Goal: <= 10 us each.
"""

from __future__ import annotations

import time

import jax
import jax.numpy as jnp
import numpy as np

import sporax as sp
from sporax import Parameter, ParameterTuple, Tensor
from sporax.common.initializer import initializer

N = 10_000
MINDSPORE_US = {"Parameter(Tensor 4x4)": 87, "Parameter(initializer normal)": 177, "clone()": 118,
                "ParameterTuple.clone zeros (per param)": 211}


def per_op_us(fn, n: int = N, repeats: int = 3) -> float:
    """Best-of-``repeats`` microseconds per call of ``fn(i)`` over ``n`` calls."""
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        for i in range(n):
            fn(i)
        best = min(best, (time.perf_counter() - start) / n * 1e6)
    return best


def main() -> None:
    t44 = Tensor(np.ones((4, 4), np.float32))
    j44 = jnp.ones((4, 4), jnp.float32)
    jax.block_until_ready(j44)
    p = Parameter(t44, name="p")
    params = [Parameter(Tensor(np.ones((4, 4), np.float32)), name=f"w{i}") for i in range(N)]
    same = Tensor(np.zeros((4, 4), np.float32))
    key = jax.random.key(0)

    rows = [
        ("Parameter(Tensor 4x4)", per_op_us(lambda i: Parameter(t44)), "jnp.array(x) copy",
         per_op_us(lambda i: jnp.array(j44))),
        ("Parameter(initializer normal)", per_op_us(lambda i: Parameter(initializer("normal", [4, 4], sp.float32))),
         "jax.random.normal 4x4", per_op_us(lambda i: jax.random.normal(key, (4, 4), jnp.float32), n=2000)),
        ("Parameter(float)", per_op_us(lambda i: Parameter(1.5)), "jnp.asarray(1.5, f32)",
         per_op_us(lambda i: jnp.asarray(1.5, jnp.float32))),
        ("clone()", per_op_us(lambda i: p.clone()), "jnp.array(x) copy", per_op_us(lambda i: jnp.array(j44))),
        ("set_data(same-shape Tensor)", per_op_us(lambda i: p.set_data(same)), "jnp.asarray(x)",
         per_op_us(lambda i: jnp.asarray(j44))),
    ]
    tup = ParameterTuple(params)
    start = time.perf_counter()
    tup.clone("moments", init="zeros")
    clone_us = (time.perf_counter() - start) / N * 1e6
    start = time.perf_counter()
    for _ in range(N):
        jnp.zeros((4, 4), jnp.float32)
    zeros_us = (time.perf_counter() - start) / N * 1e6
    rows.append(("ParameterTuple.clone zeros (per param)", clone_us, "jnp.zeros 4x4", zeros_us))

    print(f"{'operation':42s} {'sporax us':>10s} {'bare jax':28s} {'jax us':>8s} {'ratio':>7s} {'MS 2.10 us':>10s}")
    for name, us, bare, bare_us, in rows:
        ms = MINDSPORE_US.get(name)
        print(f"{name:42s} {us:10.2f} {bare:28s} {bare_us:8.2f} {us / bare_us:7.2f} {ms if ms else '':>10}")


if __name__ == "__main__":
    main()
