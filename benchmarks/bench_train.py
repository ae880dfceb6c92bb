"""Train-step speed: sporax GRAPH_MODE and PYNATIVE_MODE against pure JAX + optax, in one process.

Two models, each trained on fixed random data:

(a) MLP 784-1024-1024-10 with ReLU, sparse softmax cross-entropy (mean), Momentum(0.01, 0.9),
    batch 128;
(b) one Dense(10, 10), the same loss and optimizer, batch 8 (measures per-step overhead);
(c) the MLP of (a) with ``Model(amp_level="O2")`` (float16 + dynamic loss scale), ``"O3"`` and O3
    in bfloat16, each against plain JAX with the same low-precision compute on float32 master
    weights (``--amp-only`` runs just this case).

Pure JAX is the same model as ``jax.jit(value_and_grad + optax.sgd(momentum=0.9))`` with the
parameters and optimizer state donated, in float32 (sporax turns on ``jax_enable_x64``, so
the JAX side fixes its dtypes explicitly). For each, the first-step latency (including
compilation, not parameter initialization) and the steps per second after warm-up are
printed, with ratios to pure JAX.

Timing: each stepper is compiled and warmed up first, then all three are timed in interleaved
rounds (so load from other processes hits them alike) and the median is reported.

(d) first-step latency (``--first-step``): each run is a fresh process that builds the model and
    takes one step, timed from the model's construction to the first loss on the host (so
    parameter initialization counts for both sides: sporax's is lazy, JAX's is eager). "cold":
    an empty persistent compilation cache; "warm": a second process on the cache the cold one
    filled (sporax's default cache; plain JAX with its own persistent cache configured the same
    way). GRAPH_MODE (TrainOneStepCell) is compared with ``jax.jit``; PYNATIVE_MODE (the
    tutorials' ``value_and_grad`` + optimizer loop, run eagerly) with plain JAX run eagerly,
    and with ``jax.jit`` for reference.

Run: ``python benchmarks/bench_train.py [--steps N] [--rounds R] [--quick] [--first-step]``.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time

import jax
import jax.numpy as jnp
import numpy as np
import optax

import sporax as ms
from sporax import Tensor, nn

LR, MOMENTUM = 0.01, 0.9


# ---------------------------------------------------------------------------------- data
def make_data(in_dim: int, classes: int, batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    x = rng.standard_normal((batch, in_dim)).astype(np.float32)
    y = rng.integers(0, classes, batch).astype(np.int32)
    return x, y


# ---------------------------------------------------------------------------------- pure JAX
def jax_init(sizes: list, seed: int = 0) -> list:
    key = jax.random.PRNGKey(seed)
    params = []
    for fan_in, fan_out in zip(sizes[:-1], sizes[1:]):
        key, k1 = jax.random.split(key)
        bound = 1.0 / np.sqrt(fan_in)
        w = jax.random.uniform(k1, (fan_in, fan_out), jnp.float32, -bound, bound)
        params.append((w, jnp.zeros((fan_out,), jnp.float32)))
    return params


def jax_forward(params, x):
    for i, (w, b) in enumerate(params):
        x = x @ w + b
        if i < len(params) - 1:
            x = jax.nn.relu(x)
    return x


def make_jax_step(params):
    tx = optax.sgd(LR, momentum=MOMENTUM)
    opt_state = tx.init(params)

    def loss_fn(p, x, y):
        logits = jax_forward(p, x)
        return optax.softmax_cross_entropy_with_integer_labels(logits, y).mean()

    def _step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    return jax.jit(_step, donate_argnums=(0, 1)), opt_state


def jax_stepper(sizes, x, y):
    """(first-step seconds, run(n) -> seconds for n more steps) for pure JAX + optax."""
    params = jax_init(sizes)
    step, state = make_jax_step(params)
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    box = [params, state]
    t0 = time.perf_counter()
    box[0], box[1], loss = step(box[0], box[1], xj, yj)
    loss.block_until_ready()
    first = time.perf_counter() - t0

    def run(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            box[0], box[1], loss = step(box[0], box[1], xj, yj)
        loss.block_until_ready()
        return time.perf_counter() - t

    return first, run


# ---------------------------------------------------------------------------------- sporax
class MLP(nn.Cell):
    def __init__(self, sizes: list) -> None:
        super().__init__()
        self.layers = nn.CellList([nn.Dense(a, b) for a, b in zip(sizes[:-1], sizes[1:])])
        self.relu = nn.ReLU()

    def construct(self, x):
        n = len(self.layers)
        for i, layer in enumerate(self.layers):
            x = layer(x)
            if i < n - 1:
                x = self.relu(x)
        return x


def sporax_stepper(mode: int, sizes, x, y):
    """(first-step seconds, run(n)) for a sporax TrainOneStepCell in ``mode``."""
    ms.set_context(mode=mode)
    net = MLP(sizes)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), LR, MOMENTUM)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt)
    step.set_train()
    step.init_parameters_data()  # materialize the lazy initializers outside the timing, as JAX's init is
    xt, yt = Tensor(x), Tensor(y)
    t0 = time.perf_counter()
    step(xt, yt)._jax().block_until_ready()
    first = time.perf_counter() - t0

    def run(n: int) -> float:
        ms.set_context(mode=mode)
        t = time.perf_counter()
        for _ in range(n):
            out = step(xt, yt)
        out._jax().block_until_ready()
        return time.perf_counter() - t

    return first, run


# ---------------------------------------------------------------------------------- report
def run_case(name: str, sizes: list, batch: int, steps: int, pynative_steps: int, rounds: int) -> dict:
    """Build the three steppers, warm them up, then time them in interleaved rounds (median)."""
    x, y = make_data(sizes[0], sizes[-1], batch)
    steppers = {
        "pure JAX": (jax_stepper(sizes, x, y), steps),
        "sporax GRAPH_MODE": (sporax_stepper(ms.GRAPH_MODE, sizes, x, y), steps),
        "sporax PYNATIVE_MODE": (sporax_stepper(ms.PYNATIVE_MODE, sizes, x, y), pynative_steps),
    }
    for (_, run), n in steppers.values():
        run(max(3, n // 10))
    rates: dict = {k: [] for k in steppers}
    for _ in range(rounds):
        for k, ((_, run), n) in steppers.items():
            rates[k].append(n / run(n))
    res = {k: (steppers[k][0][0], float(np.median(v))) for k, v in rates.items()}
    ref = res["pure JAX"][1]
    print(f"\n({name}) sizes={sizes} batch={batch}, median of {rounds} interleaved rounds")
    print(f"  {'':22s} {'first step':>12s} {'steps/s':>10s} {'us/step':>10s} {'vs pure JAX':>12s}")
    for k, (first, sps) in res.items():
        print(f"  {k:22s} {first * 1e3:10.1f}ms {sps:10.1f} {1e6 / sps:10.1f} {sps / ref:11.2f}x")
    return res


# ---------------------------------------------------------------------------------- mixed precision
# (c) the MLP of (a) trained with amp_level="O2" (float16, dynamic loss scale that skips
# overflowing steps), "O3" (float16, no loss scale) and O3 in bfloat16 (auto_mixed_precision),
# against the same model in plain JAX: low-precision compute on float32 master weights, the
# loss in float32, and for O2 the same dynamic loss scaling (scaled loss, unscaled gradients,
# finiteness check, step skipped on overflow, scale halved / doubled after a window). The JAX
# weights are stored (out, in) and applied as x @ w.T, as sporax's (and MindSpore's) Dense does:
# XLA's CPU float16 matmul is ~4x faster in that layout than with (in, out), so the layouts must match.
AMP_CASES = (("O2", "float16", True), ("O3", "float16", False), ("O3", "bfloat16", False))


def amp_jax_stepper(sizes, x, y, dtype: str, loss_scale: bool):
    """(first-step seconds, run(n)) for plain JAX mixed precision (see the comment above)."""
    dt = jnp.dtype(dtype)
    params = [(jnp.asarray(w.T), b) for w, b in jax_init(sizes)]  # (out, in), as Dense stores it
    tx = optax.sgd(LR, momentum=MOMENTUM)
    opt_state = tx.init(params)
    window = 2000

    def loss_fn(p, xb, yb, scale):
        p_low = jax.tree_util.tree_map(lambda a: a.astype(dt), p)
        h = xb.astype(dt)
        for i, (w, b) in enumerate(p_low):
            h = h @ w.T + b
            if i < len(p_low) - 1:
                h = jax.nn.relu(h)
        logits = h.astype(jnp.float32)
        return optax.softmax_cross_entropy_with_integer_labels(logits, yb).mean() * scale

    def _step(p, s, ls, xb, yb):
        scale, good = ls
        loss, g = jax.value_and_grad(loss_fn)(p, xb, yb, scale)
        g = jax.tree_util.tree_map(lambda a: a / scale, g)
        updates, s_new = tx.update(g, s, p)
        p_new = optax.apply_updates(p, updates)
        if not loss_scale:
            return p_new, s_new, ls, loss
        finite = jnp.all(jnp.stack([jnp.all(jnp.isfinite(a)) for a in jax.tree_util.tree_leaves(g)]))
        p = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), p_new, p)
        s = jax.tree_util.tree_map(lambda n, o: jnp.where(finite, n, o), s_new, s)
        good = jnp.where(finite, good + 1, 0)
        grow = good >= window
        scale = jnp.where(finite, jnp.where(grow, scale * 2, scale), jnp.maximum(scale / 2, 1.0))
        return p, s, (scale, jnp.where(grow, 0, good)), loss / ls[0]

    step = jax.jit(_step, donate_argnums=(0, 1, 2))
    init_scale = jnp.float32(2.0 ** 24 if loss_scale else 1.0)
    box = [params, opt_state, (init_scale, jnp.int32(0))]
    xj, yj = jnp.asarray(x), jnp.asarray(y)
    t0 = time.perf_counter()
    box[0], box[1], box[2], loss = step(*box, xj, yj)
    loss.block_until_ready()
    first = time.perf_counter() - t0

    def run(n: int) -> float:
        t = time.perf_counter()
        for _ in range(n):
            box[0], box[1], box[2], loss = step(*box, xj, yj)
        loss.block_until_ready()
        return time.perf_counter() - t

    return first, run


def amp_sporax_stepper(level: str, dtype: str, sizes, x, y):
    """(first-step seconds, run(n)) for sporax GRAPH_MODE with Model(amp_level=level)'s train network."""
    from sporax import amp
    from sporax.train import Model

    ms.set_context(mode=ms.GRAPH_MODE)
    net = MLP(sizes)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), LR, MOMENTUM)
    if dtype == "float16":
        step = Model(net, loss, opt, amp_level=level).train_network  # O2: TrainOneStepWithLossScaleCell
    else:
        low = amp.auto_mixed_precision(net, level, ms.bfloat16)
        step = nn.TrainOneStepCell(nn.WithLossCell(low, loss), opt).set_train()
    step.init_parameters_data()
    xt, yt = Tensor(x), Tensor(y)

    def first_out(out):
        return (out[0] if isinstance(out, tuple) else out)._jax()

    t0 = time.perf_counter()
    first_out(step(xt, yt)).block_until_ready()
    first = time.perf_counter() - t0

    def run(n: int) -> float:
        ms.set_context(mode=ms.GRAPH_MODE)
        t = time.perf_counter()
        for _ in range(n):
            out = step(xt, yt)
        first_out(out).block_until_ready()
        return time.perf_counter() - t

    return first, run


def run_amp_cases(sizes: list, batch: int, steps: int, rounds: int) -> dict:
    """Each amp level against its plain-JAX twin, timed in interleaved rounds (median steps/s)."""
    x, y = make_data(sizes[0], sizes[-1], batch)
    steppers = {}
    for level, dtype, scaled in AMP_CASES:
        steppers[(level, dtype, "pure JAX")] = amp_jax_stepper(sizes, x, y, dtype, scaled)
        steppers[(level, dtype, "sporax")] = amp_sporax_stepper(level, dtype, sizes, x, y)
    for _, run in steppers.values():
        run(max(3, steps // 10))
    rates: dict = {k: [] for k in steppers}
    for _ in range(rounds):
        for k, (_, run) in steppers.items():
            rates[k].append(steps / run(steps))
    res = {k: (steppers[k][0], float(np.median(v))) for k, v in rates.items()}
    print(f"\n(c) mixed precision, sizes={sizes} batch={batch}, float32 master weights, median of {rounds} rounds")
    print(f"  {'':28s} {'first step':>12s} {'steps/s':>10s} {'us/step':>10s} {'vs pure JAX':>12s}")
    for level, dtype, scaled in AMP_CASES:
        ref = res[(level, dtype, "pure JAX")][1]
        for who in ("pure JAX", "sporax"):
            first, sps = res[(level, dtype, who)]
            label = f"{who} {level} {dtype}" + (" +scale" if scaled else "")
            print(f"  {label:28s} {first * 1e3:10.1f}ms {sps:10.1f} {1e6 / sps:10.1f} {sps / ref:11.2f}x")
    return res


# ---------------------------------------------------------------------------------- first step
FIRST_MODELS = {"tiny": ([10, 10], 8), "mlp": ([784, 512, 512, 10], 64)}


def _first_step_worker(who: str, model: str) -> float:
    """Seconds from building ``model`` to its first loss, in this (fresh) process."""
    sizes, batch = FIRST_MODELS[model]
    x, y = make_data(sizes[0], sizes[-1], batch)
    if who.startswith("jax"):
        t0 = time.perf_counter()
        params = jax_init(sizes)
        tx = optax.sgd(LR, momentum=MOMENTUM)
        state = tx.init(params)

        def loss_fn(p, xb, yb):
            return optax.softmax_cross_entropy_with_integer_labels(jax_forward(p, xb), yb).mean()

        def step(p, s, xb, yb):
            loss, g = jax.value_and_grad(loss_fn)(p, xb, yb)
            updates, s = tx.update(g, s, p)
            return optax.apply_updates(p, updates), s, loss

        if who == "jax-jit":
            step = jax.jit(step, donate_argnums=(0, 1))
        _, _, loss = step(params, state, jnp.asarray(x), jnp.asarray(y))
        float(loss)
        return time.perf_counter() - t0
    ms.set_context(mode=ms.GRAPH_MODE if who == "sporax-graph" else ms.PYNATIVE_MODE)
    t0 = time.perf_counter()
    net = MLP(sizes)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), LR, MOMENTUM)
    xt, yt = Tensor(x), Tensor(y)
    if who == "sporax-graph":
        step = nn.TrainOneStepCell(nn.WithLossCell(net, loss_fn), opt)
        step.set_train()
        loss = step(xt, yt)
    else:
        def forward(data, label):
            return loss_fn(net(data), label)

        grad_fn = ms.value_and_grad(forward, None, opt.parameters)
        loss, grads = grad_fn(xt, yt)
        opt(grads)
    float(loss.asnumpy())
    return time.perf_counter() - t0


def _first_step_run(who: str, model: str, cache: str | None) -> float:
    env = dict(os.environ)
    env.pop("JAX_COMPILATION_CACHE_DIR", None)
    env["SPORAX_COMPILE_CACHE"] = cache if (cache and who.startswith("sporax")) else "off"
    if cache and who.startswith("jax"):  # plain JAX with the same persistent cache settings
        env.update(JAX_COMPILATION_CACHE_DIR=cache, JAX_PERSISTENT_CACHE_MIN_COMPILE_TIME_SECS="0",
                   JAX_PERSISTENT_CACHE_MIN_ENTRY_SIZE_BYTES="-1")
    out = subprocess.run([sys.executable, os.path.abspath(__file__), "--first-step-worker", who, model],
                         capture_output=True, text=True, timeout=600, env=env)
    if out.returncode:
        raise RuntimeError(f"first-step worker {who} {model} failed:\n{out.stderr[-3000:]}")
    return float(out.stdout.strip().splitlines()[-1])


FIRST_WHO = ("jax-jit", "sporax-graph", "jax-eager", "sporax-pynative")


def run_first_step(rounds: int) -> dict:
    """Cold and warm first-step seconds (median of interleaved rounds), per model and runner."""
    times: dict = {}
    for _ in range(rounds):
        for model in FIRST_MODELS:
            for who in FIRST_WHO:
                with tempfile.TemporaryDirectory(prefix="bench-first-") as cache:
                    cold = _first_step_run(who, model, cache)
                    warm = _first_step_run(who, model, cache)
                times.setdefault((model, who), []).append((cold, warm))
    res = {k: tuple(float(np.median([v[i] for v in vals])) for i in (0, 1)) for k, vals in times.items()}
    print(f"\n(d) first step (model built -> first loss), fresh processes, median of {rounds} interleaved rounds")
    print(f"  {'':24s} {'cold':>9s} {'warm':>9s} {'cold vs JAX':>12s} {'warm vs JAX':>12s}  (JAX: jit / eager)")
    for model in FIRST_MODELS:
        for who in FIRST_WHO:
            cold, warm = res[(model, who)]
            ref = {"sporax-graph": "jax-jit", "sporax-pynative": "jax-eager"}.get(who)
            ratio = ""
            if ref:
                rc, rw = res[(model, ref)]
                jc, jw = res[(model, "jax-jit")]
                ratio = f" {cold / rc:11.2f}x {warm / rw:11.2f}x"
                if who == "sporax-pynative":
                    ratio += f"   vs jit: {cold / jc:.2f}x / {warm / jw:.2f}x"
            print(f"  {model + ' ' + who:24s} {cold * 1e3:7.0f}ms {warm * 1e3:7.0f}ms{ratio}")
    return res


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="few steps (a smoke test)")
    parser.add_argument("--amp-only", action="store_true", help="only the mixed-precision case (c)")
    parser.add_argument("--first-step", action="store_true", help="only the first-step latency case (d)")
    parser.add_argument("--no-first-step", action="store_true", help="skip case (d)")
    parser.add_argument("--no-amp", action="store_true", help="skip case (c)")
    parser.add_argument("--first-step-worker", nargs=2, help=argparse.SUPPRESS)
    a = parser.parse_args(argv)
    if a.first_step_worker:
        print(_first_step_worker(*a.first_step_worker))
        return
    steps = 20 if a.quick else a.steps
    rounds = 1 if a.quick else a.rounds
    print(f"jax {jax.__version__} on {jax.devices()[0].platform}, {len(jax.devices())} device(s)")
    if a.first_step:
        run_first_step(rounds)
        return
    if a.amp_only:
        rc = run_amp_cases([784, 1024, 1024, 10], 128, max(10, steps // 4), rounds)
        _print_amp_goal(rc)
        return
    ra = run_case("a", [784, 1024, 1024, 10], 128, steps, max(10, steps // 2), rounds)
    rb = run_case("b", [10, 10], 8, steps * 10, steps * 2, rounds)
    ga = ra["sporax GRAPH_MODE"][1] / ra["pure JAX"][1]
    tb = (1 / rb["sporax GRAPH_MODE"][1]) / (1 / rb["pure JAX"][1])
    print(f"\nGoals (issue 11): (a) GRAPH_MODE >= 1.0x pure JAX steps/s: {ga:.2f}x  "
          f"(b) GRAPH_MODE time/step <= 1.3x pure JAX: {tb:.2f}x")
    print(f"MindSpore 2.10 reference (same machine): (a) graph 63, pynative 31 steps/s; "
          f"(b) graph 270 us, pynative 5200 us per step. sporax: (a) graph {ra['sporax GRAPH_MODE'][1]:.1f}, "
          f"pynative {ra['sporax PYNATIVE_MODE'][1]:.1f} steps/s; (b) graph {1e6 / rb['sporax GRAPH_MODE'][1]:.0f} us, "
          f"pynative {1e6 / rb['sporax PYNATIVE_MODE'][1]:.0f} us per step.")
    if not a.no_amp:
        rc = run_amp_cases([784, 1024, 1024, 10], 128, max(10, steps // 4), rounds)
        _print_amp_goal(rc)
    if not a.no_first_step:
        run_first_step(rounds)


def _print_amp_goal(rc: dict) -> None:
    ratios = ", ".join(f"{lv} {dt}: {rc[(lv, dt, 'sporax')][1] / rc[(lv, dt, 'pure JAX')][1]:.2f}x"
                       for lv, dt, _ in AMP_CASES)
    print(f"Goal (c): sporax amp >= 0.9x plain JAX mixed precision steps/s: {ratios}")


if __name__ == "__main__":
    main()
