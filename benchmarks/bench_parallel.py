"""Data-parallel step speed and communication: sporax against plain JAX, on simulated CPU devices.

The model is bench_train's MLP 784-1024-1024-10 (ReLU, sparse softmax cross-entropy, mean;
Momentum(0.01, 0.9)), batch 128 per device.

(1) One process, 1/2/4/8 devices: sporax DATA_PARALLEL (``TrainOneStepCell``, GRAPH_MODE,
    ``device_num=n``: the step runs under ``shard_map``, gradients in one fused all-reduce)
    against the same model in plain JAX with ``NamedSharding`` (parameters replicated, batch
    split, GSPMD inserts the all-reduce), steps/s and ratio (goal >= 0.9x at each count). The
    reference is the same computation: float32, MindSpore's Dense layout (weight (out, in),
    ``x @ w.T``), SGD with momentum (optax.sgd(momentum) is MindSpore's Momentum update), jit
    with the parameters and optimizer state donated; both get their batch already on the devices
    (split over them). Beside: the milliseconds until one step call returns (host work).
(2) Two processes with one device each (``python -m sporax msrun``, gloo collectives) against
    one process with two devices, the same script and global batch.
(3) All-reduces per step and their bytes with fusion ids all 0, one per layer, and all 1: from
    ``sporax.parallel.comm_plan`` and counted in the compiled HLO, with the steps/s of each on
    8 devices.

(4) The parallel optimizer (``enable_parallel_optimizer=True``, Adam(1e-3), the same MLP) on
    2/4/8 devices against plain JAX with the same ``NamedSharding``s (the two large weights and
    their Adam moments split along dimension 0, the rest replicated) and ``optax.adam`` with
    sharded state (GSPMD inserts the all-gathers and reduce-scatters), steps/s and ratio (goal
    >= 0.9x); per-device bytes of weights and optimizer state from the plan, the ZeRO formulas
    (``sporax.parallel.zero_bytes``) and XLA's memory analysis of both compiled steps.

(5) Semi-auto parallel, one process, 2/4/8 devices: the same MLP with its first Dense
    column-parallel and its second row-parallel over a "model" axis of all n devices
    (``matmul.shard``, full batch 128), Momentum, against plain JAX with the same
    ``NamedSharding``s for weights, batch and optax momentum state; steps/s and ratio
    (goal >= 0.9x), and the per-device weight bytes (= the slice shapes).

The simulated devices share this machine's cores, so compare the ratios, not speedups.
Run: ``python benchmarks/bench_parallel.py [--steps N] [--rounds R] [--quick] [--popt-only] [--semi-only]``.
"""

from __future__ import annotations

import os
import sys

if __name__ == "__main__" and "--worker" not in sys.argv:
    os.environ["XLA_FLAGS"] = (os.environ.get("XLA_FLAGS", "") + " --xla_force_host_platform_device_count=8").strip()
os.environ.setdefault("JAX_PLATFORMS", "cpu")

import argparse  # noqa: E402
import re  # noqa: E402
import socket  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

import numpy as np  # noqa: E402

SIZES = [784, 1024, 1024, 10]
LR, MOMENTUM, PER_DEVICE = 0.01, 0.9, 128
HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)


def make_data(batch: int, seed: int = 0):
    rng = np.random.default_rng(seed)
    return (rng.standard_normal((batch, SIZES[0])).astype(np.float32),
            rng.integers(0, SIZES[-1], batch).astype(np.int32))


# ---------------------------------------------------------------------------------- plain JAX
def jax_stepper(n: int, x, y):
    import jax
    import jax.numpy as jnp
    import optax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:n]), ("dp",))
    repl, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("dp"))
    key = jax.random.PRNGKey(0)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):  # MindSpore's Dense layout: weight (out, in), x @ w.T
        key, k1 = jax.random.split(key)
        bound = 1.0 / np.sqrt(fan_in)
        params.append((jax.random.uniform(k1, (fan_out, fan_in), jnp.float32, -bound, bound),
                       jnp.zeros((fan_out,), jnp.float32)))
    tx = optax.sgd(LR, momentum=MOMENTUM)
    params = jax.device_put(params, repl)
    state = jax.device_put(tx.init(params), repl)

    def loss_fn(p, x, y):
        for i, (w, b) in enumerate(p):
            x = x @ w.T + b
            if i < len(p) - 1:
                x = jax.nn.relu(x)
        return optax.softmax_cross_entropy_with_integer_labels(x, y).mean()

    def _step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    step = jax.jit(_step, donate_argnums=(0, 1), out_shardings=(repl, repl, repl))
    xj, yj = jax.device_put(x, split), jax.device_put(y, split)
    box = [params, state]

    def run(k: int) -> float:
        t = time.perf_counter()
        for _ in range(k):
            box[0], box[1], loss = step(box[0], box[1], xj, yj)
        loss.block_until_ready()
        return time.perf_counter() - t

    def dispatch() -> float:
        box[0], box[1], loss = step(box[0], box[1], xj, yj)
        loss.block_until_ready()
        t = time.perf_counter()
        box[0], box[1], loss = step(box[0], box[1], xj, yj)
        d = time.perf_counter() - t
        loss.block_until_ready()
        return d

    run.dispatch = dispatch
    run.hlo = lambda: step.lower(box[0], box[1], xj, yj).compile().as_text()
    return run


# ---------------------------------------------------------------------------------- sporax
def sporax_step(n: int, fusion: str = "ones"):
    import sporax as ms
    from sporax import nn

    class MLP(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.CellList([nn.Dense(a, b) for a, b in zip(SIZES[:-1], SIZES[1:])])
            self.relu = nn.ReLU()

        def construct(self, x):
            for i, layer in enumerate(self.layers):
                x = layer(x)
                if i < len(self.layers) - 1:
                    x = self.relu(x)
            return x

    ms.context._reset()
    ms.set_context(mode=ms.GRAPH_MODE)
    if n > 1:
        ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True, device_num=n)
    net = MLP()
    if fusion == "zeros":
        net.set_comm_fusion(0)
    elif fusion == "per_layer":
        for i, layer in enumerate(net.layers):
            layer.set_comm_fusion(i + 1)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), LR, MOMENTUM))
    step.set_train()
    step.init_parameters_data()
    return step


def sporax_stepper(n: int, x, y, fusion: str = "ones"):
    import sporax as ms
    from sporax import Tensor

    step = sporax_step(n, fusion)
    xt, yt = Tensor(x), Tensor(y)
    if n > 1:  # already split over the devices, as the plain-JAX reference's batch is
        import jax
        from jax.sharding import NamedSharding
        from jax.sharding import PartitionSpec as P

        split = NamedSharding(ms.parallel._runtime.mesh(), P(ms.parallel._runtime.AXIS))
        xt, yt = Tensor(jax.device_put(x, split)), Tensor(jax.device_put(y, split))
    else:
        import jax

        xt, yt = Tensor(jax.device_put(x)), Tensor(jax.device_put(y))
    ap = dict(vars(ms.context._state.auto_parallel))

    def run(k: int) -> float:
        for key, value in ap.items():  # each stepper keeps its own parallel context
            setattr(ms.context._state.auto_parallel, key, value)
        ms.set_context(mode=ms.GRAPH_MODE)
        t = time.perf_counter()
        for _ in range(k):
            out = step(xt, yt)
        out._jax().block_until_ready()
        return time.perf_counter() - t

    def dispatch() -> float:
        """Seconds until one step call returns (the compiled step itself runs asynchronously)."""
        step(xt, yt)._jax().block_until_ready()
        t = time.perf_counter()
        out = step(xt, yt)
        d = time.perf_counter() - t
        out._jax().block_until_ready()
        return d

    run.dispatch = dispatch
    return run, step


def timed(steppers: dict, steps: int, rounds: int) -> dict:
    for run in steppers.values():
        run(max(2, steps // 5))
    rates: dict = {k: [] for k in steppers}
    for _ in range(rounds):
        for k, run in steppers.items():
            rates[k].append(steps / run(steps))
    return {k: float(np.median(v)) for k, v in rates.items()}


def part1(steps: int, rounds: int) -> None:
    print(f"\n(1) one process, n simulated devices, batch {PER_DEVICE}/device: steps/s "
          f"(median of {rounds} interleaved rounds of {steps} steps); dispatch = ms until one step call returns "
          "(median of 5; host work, the step runs asynchronously)")
    print(f"  {'devices':>7s} {'plain JAX':>10s} {'sporax DP':>10s} {'ratio':>7s} {'dispatch JAX':>13s} "
          f"{'dispatch sporax':>16s}")
    for n in (1, 2, 4, 8):
        x, y = make_data(PER_DEVICE * n)
        steppers = {"jax": jax_stepper(n, x, y), "sporax": sporax_stepper(n, x, y)[0]}
        res = timed(steppers, steps, rounds)
        disp = {k: 1e3 * float(np.median([r.dispatch() for _ in range(5)])) for k, r in steppers.items()}
        print(f"  {n:7d} {res['jax']:10.2f} {res['sporax']:10.2f} {res['sporax'] / res['jax']:6.2f}x "
              f"{disp['jax']:13.2f} {disp['sporax']:16.2f}", flush=True)


def _hlo_allreduce_bytes(text: str) -> tuple:
    """(count, bytes) of the all-reduces in optimized HLO text (a combined one counts once, all its operands)."""
    sizes = {"f32": 4, "f64": 8, "f16": 2, "bf16": 2, "s32": 4}
    count = total = 0
    for line in text.splitlines():
        m = re.search(r"= (.+?) all-reduce\(", line)
        if m:
            count += 1
            for dt, dims in re.findall(r"(\w+)\[([\d,]*)\]", m.group(1)):
                total += sizes.get(dt, 4) * int(np.prod([int(d) for d in dims.split(",") if d] or [1]))
    return count, total


def part3(steps: int, rounds: int) -> None:
    import sporax as ms

    print("\n(3) fusion on 8 devices: gradient buckets, all-reduces per step (plan == compiled HLO), bytes, steps/s")
    print(f"  {'fusion ids':>12s} {'buckets':>8s} {'plan ARs':>8s} {'HLO ARs':>8s} {'plan bytes':>10s} "
          f"{'HLO bytes':>10s} {'steps/s':>8s}")
    x, y = make_data(PER_DEVICE * 8)
    steppers, steps_by = {}, {}
    for fusion in ("zeros", "per_layer", "ones"):
        steppers[fusion], steps_by[fusion] = sporax_stepper(8, x, y, fusion)
    res = timed(steppers, steps, rounds)
    for fusion, step in steps_by.items():
        plan = ms.parallel.comm_plan(step)
        hlo, hlo_bytes = _hlo_allreduce_bytes(ms.parallel.compiled_text(step))
        label = {"zeros": "all 0", "per_layer": "per layer", "ones": "all 1"}[fusion]
        print(f"  {label:>12s} {len(plan.buckets):8d} {plan.allreduce_count:8d} {hlo:8d} {plan.allreduce_bytes:10d} "
              f"{hlo_bytes:10d} {res[fusion]:8.2f}")


# ---------------------------------------------------------------------------------- parallel optimizer
ADAM_LR = 1e-3


def _popt_sharded(shape) -> bool:
    """What the parallel optimizer shards at the default threshold (64 KB) on n | dim 0 devices."""
    return int(np.prod(shape)) * 4 >= 64 * 1024


def jax_popt_stepper(n: int, x, y):
    """Plain JAX: weights (out, in) as sporax's Dense, the large ones and their Adam moments split on dim 0."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:n]), ("dp",))
    repl, split = NamedSharding(mesh, P()), NamedSharding(mesh, P("dp"))
    key = jax.random.PRNGKey(0)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        key, k1 = jax.random.split(key)
        bound = 1.0 / np.sqrt(fan_in)
        params.append((jax.random.uniform(k1, (fan_out, fan_in), jnp.float32, -bound, bound),
                       jnp.zeros((fan_out,), jnp.float32)))
    shardings = jax.tree_util.tree_map(lambda a: split if _popt_sharded(a.shape) else repl, params)
    tx = optax.adam(ADAM_LR)
    params = jax.device_put(params, shardings)
    state_shardings = jax.tree_util.tree_map(
        lambda a: split if a.ndim and _popt_sharded(a.shape) else repl, jax.eval_shape(tx.init, params))
    state = jax.jit(tx.init, out_shardings=state_shardings)(params)

    def loss_fn(p, x, y):
        for i, (w, b) in enumerate(p):
            x = x @ w.T + b
            if i < len(p) - 1:
                x = jax.nn.relu(x)
        return optax.softmax_cross_entropy_with_integer_labels(x, y).mean()

    def _step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        updates, s = tx.update(g, s, p)
        return optax.apply_updates(p, updates), s, loss

    step = jax.jit(_step, donate_argnums=(0, 1), out_shardings=(shardings, state_shardings, repl))
    xj, yj = jax.device_put(x, split), jax.device_put(y, split)
    box = [params, state]

    def run(k: int) -> float:
        t = time.perf_counter()
        for _ in range(k):
            box[0], box[1], loss = step(box[0], box[1], xj, yj)
        loss.block_until_ready()
        return time.perf_counter() - t

    run.memory = lambda: step.lower(box[0], box[1], xj, yj).compile().memory_analysis()
    return run


def sporax_popt_stepper(n: int, x, y):
    import sporax as ms
    from sporax import Tensor, nn

    net = sporax_step(n).network.backbone_network  # the MLP, in DATA_PARALLEL over n devices
    ms.set_auto_parallel_context(enable_parallel_optimizer=True)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Adam(net.trainable_params(), ADAM_LR))
    step.set_train()
    import jax
    from jax.sharding import NamedSharding
    from jax.sharding import PartitionSpec as P

    split = NamedSharding(ms.parallel._runtime.mesh(), P(ms.parallel._runtime.AXIS))
    xt, yt = Tensor(jax.device_put(x, split)), Tensor(jax.device_put(y, split))  # placed, as the reference's
    ap = dict(vars(ms.context._state.auto_parallel))

    def run(k: int) -> float:
        for key, value in ap.items():
            setattr(ms.context._state.auto_parallel, key, value)
        ms.set_context(mode=ms.GRAPH_MODE)
        t = time.perf_counter()
        for _ in range(k):
            out = step(xt, yt)
        out._jax().block_until_ready()
        return time.perf_counter() - t

    def dispatch() -> float:
        """Seconds until one step call returns (the compiled step itself runs asynchronously)."""
        step(xt, yt)._jax().block_until_ready()
        t = time.perf_counter()
        out = step(xt, yt)
        d = time.perf_counter() - t
        out._jax().block_until_ready()
        return d

    run.dispatch = dispatch
    return run, step


def _cpu_timed(run, out: list):
    """``run``, also appending this process's CPU seconds per step to ``out``."""
    def wrapped(k: int) -> float:
        c = time.process_time()
        wall = run(k)
        out.append((time.process_time() - c) / k)
        return wall

    return wrapped


def part_popt(steps: int, rounds: int) -> None:
    import sporax as ms
    from sporax.parallel import data_parallel

    print(f"\n(4) parallel optimizer (Adam, batch {PER_DEVICE}/device): steps/s, sporax vs plain JAX with the same "
          f"NamedShardings + optax.adam (median of {rounds} interleaved rounds of {steps} steps)")
    print(f"  {'devices':>7s} {'plain JAX':>10s} {'sporax':>10s} {'ratio':>7s} {'cpu ratio':>9s}   per-device bytes: "
          "weights / Adam state "
          f"(plan | ZeRO formula | XLA args sporax | XLA args JAX)")
    for n in (2, 4, 8):
        x, y = make_data(PER_DEVICE * n)
        jrun = jax_popt_stepper(n, x, y)
        srun, step = sporax_popt_stepper(n, x, y)
        cpu: dict = {"jax": [], "sporax": []}  # CPU seconds per step (less disturbed by other load)
        res = timed({"jax": _cpu_timed(jrun, cpu["jax"]), "sporax": _cpu_timed(srun, cpu["sporax"])}, steps, rounds)
        cpu_ratio = float(np.median(cpu["jax"][1:]) / np.median(cpu["sporax"][1:]))
        plan = ms.parallel.comm_plan(step)
        shard = {s.name for s in plan.opt_shard.shards}
        weights = step.weights
        psi_s = sum(int(np.prod(p.shape)) * 4 for p in weights if p.name in shard)
        psi_r = sum(int(np.prod(p.shape)) * 4 for p in weights if p.name not in shard)
        f = ms.parallel.zero_bytes(psi_s, 2 * psi_s, n)
        scalars = plan.opt_state_bytes - f["opt_state"] - 2 * psi_r
        formula_w, formula_s = f["weights"] + psi_r, f["opt_state"] + 2 * psi_r + scalars
        batch = PER_DEVICE * (SIZES[0] + 1) * 4
        s_args = data_parallel.compiled(step).memory_analysis().argument_size_in_bytes - batch
        j_args = jrun.memory().argument_size_in_bytes - batch
        print(f"  {n:7d} {res['jax']:10.2f} {res['sporax']:10.2f} {res['sporax'] / res['jax']:6.2f}x "
              f"{cpu_ratio:8.2f}x   "
              f"{plan.param_bytes} / {plan.opt_state_bytes} | {formula_w} / {formula_s} | "
              f"{s_args} | {j_args}", flush=True)


# ---------------------------------------------------------------------------------- semi-auto
SEMI_BATCH = 128


def jax_semi_stepper(n: int, x, y):
    """Plain JAX, the sharding semi-auto derives: W0 (out, in) split on out, b0 split, W1 split
    on in, the rest and the batch replicated; optax momentum state sharded like the weights.
    The hidden activation and the new weights/state are pinned with ``with_sharding_constraint``
    as sporax pins them (without, GSPMD all-gathers whole weights around the update and runs
    2-4x slower on this machine)."""
    import jax
    import jax.numpy as jnp
    import optax
    from jax.sharding import Mesh, NamedSharding
    from jax.sharding import PartitionSpec as P

    mesh = Mesh(np.array(jax.devices()[:n]), ("model",))
    specs = [(P("model", None), P("model")), (P(None, "model"), P()), (P(), P())]
    shard = [tuple(NamedSharding(mesh, s) for s in pair) for pair in specs]
    repl = NamedSharding(mesh, P())
    key = jax.random.PRNGKey(0)
    params = []
    for fan_in, fan_out in zip(SIZES[:-1], SIZES[1:]):
        key, k1 = jax.random.split(key)
        bound = 1.0 / np.sqrt(fan_in)
        params.append((jax.random.uniform(k1, (fan_out, fan_in), jnp.float32, -bound, bound),
                       jnp.zeros((fan_out,), jnp.float32)))
    tx = optax.sgd(LR, momentum=MOMENTUM)
    params = jax.device_put(params, shard)
    state = tx.init(params)  # eager: the momentum traces keep their weights' shardings (jit(tx.init) would not)

    hidden = NamedSharding(mesh, P(None, "model"))
    state_sharding = jax.tree_util.tree_map(lambda a: a.sharding, state)
    pin = jax.lax.with_sharding_constraint

    def loss_fn(p, x, y):
        for i, (w, b) in enumerate(p):
            x = x @ w.T + b
            if i == 0:
                x = pin(x, hidden)  # the activation layout the strategies give (column parallel)
            if i < len(p) - 1:
                x = jax.nn.relu(x)
        return optax.softmax_cross_entropy_with_integer_labels(x, y).mean()

    def _step(p, s, x, y):
        loss, g = jax.value_and_grad(loss_fn)(p, x, y)
        updates, s = tx.update(g, s, p)
        return pin(optax.apply_updates(p, updates), shard), pin(s, state_sharding), loss

    step = jax.jit(_step, donate_argnums=(0, 1), out_shardings=(shard, state_sharding, repl))
    xj, yj = jax.device_put(x, repl), jax.device_put(y, repl)
    box = [params, state]

    def run(k: int) -> float:
        t = time.perf_counter()
        for _ in range(k):
            box[0], box[1], loss = step(box[0], box[1], xj, yj)
        loss.block_until_ready()
        return time.perf_counter() - t

    run.compiled_text = lambda: step.lower(box[0], box[1], xj, yj).compile().as_text()
    return run, box


def sporax_semi_stepper(n: int, x, y):
    import sporax as ms
    from sporax import Tensor, nn, ops

    class MLP(nn.Cell):
        def __init__(self) -> None:
            super().__init__()
            self.layers = nn.CellList([nn.Dense(a, b) for a, b in zip(SIZES[:-1], SIZES[1:])])
            self.relu = ops.ReLU()  # after the column-parallel layer (sharded)
            self.relu2 = ops.ReLU()  # after the row-parallel one (replicated: no strategy)

        def construct(self, x):
            x = self.relu(self.layers[0](x))
            x = self.relu2(self.layers[1](x))
            return self.layers[2](x)

    ms.context._reset()
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=n, full_batch=True)
    net = MLP()
    first, second = net.layers[0], net.layers[1]
    first.matmul.shard(((1, 1), (n, 1)))  # column parallel: output features over "model"
    first.bias_add.shard(((1, n), (n,)))
    net.relu.shard(((1, n),))
    second.matmul.shard(((1, n), (1, n)))  # row parallel: the reduction over "model"
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), LR, MOMENTUM))
    step.set_train()
    xt, yt = Tensor(x), Tensor(y)
    ap = dict(vars(ms.context._state.auto_parallel))

    def run(k: int) -> float:
        for key, value in ap.items():  # each stepper keeps its own parallel context
            setattr(ms.context._state.auto_parallel, key, value)
        ms.set_context(mode=ms.GRAPH_MODE)
        t = time.perf_counter()
        for _ in range(k):
            out = step(xt, yt)
        out._jax().block_until_ready()
        return time.perf_counter() - t

    return run, step


def part_semi(steps: int, rounds: int) -> None:
    print(f"\n(5) semi-auto parallel, MatMul split over a 'model' axis of n devices, full batch {SEMI_BATCH}: "
          f"steps/s (median of {rounds} interleaved rounds of {steps} steps)")
    print(f"  {'devices':>7s} {'plain JAX':>10s} {'sporax':>10s} {'ratio':>7s}  per-device weight bytes (sporax, JAX)")
    x, y = make_data(SEMI_BATCH)
    for n in (2, 4, 8):
        jax_run, box = jax_semi_stepper(n, x, y)
        semi_run, step = sporax_semi_stepper(n, x, y)
        res = timed({"jax": jax_run, "sporax": semi_run}, steps, rounds)
        weights = [p for p in step.get_parameters() if not p.name.startswith(("moments", "learning", "momentum",
                                                                               "global"))]
        mine = sum(p._value.addressable_shards[0].data.nbytes for p in weights)
        theirs = sum(leaf.addressable_shards[0].data.nbytes for pair in box[0] for leaf in pair)
        print(f"  {n:7d} {res['jax']:10.2f} {res['sporax']:10.2f} {res['sporax'] / res['jax']:6.2f}x  {mine} {theirs}",
              flush=True)


# ---------------------------------------------------------------------------------- processes
def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def worker(steps: int, rounds: int) -> None:
    """Run inside each process (msrun) or alone with 2 devices: time the DP step, print steps/s."""
    import jax

    from sporax import Tensor
    from sporax.communication import get_group_size, get_rank, init

    init()
    total = jax.device_count()
    x, y = make_data(PER_DEVICE * total)
    rank, size = get_rank(), get_group_size()
    per = len(x) // size
    xt, yt = Tensor(x[rank * per:(rank + 1) * per]), Tensor(y[rank * per:(rank + 1) * per])
    step = sporax_step(total)
    for _ in range(max(2, steps // 5)):
        out = step(xt, yt)
    out._jax().block_until_ready()
    rates = []
    for _ in range(rounds):
        t = time.perf_counter()
        for _ in range(steps):
            out = step(xt, yt)
        out._jax().block_until_ready()
        rates.append(steps / (time.perf_counter() - t))
    print(f"RATE rank={rank} size={size} devices={total} steps_per_s={np.median(rates):.3f}", flush=True)


def part2(steps: int, rounds: int) -> None:
    print(f"\n(2) 2 processes x 1 device (msrun, gloo) vs 1 process x 2 devices, global batch {2 * PER_DEVICE}")
    env = dict(os.environ, PYTHONPATH=ROOT + os.pathsep + os.environ.get("PYTHONPATH", ""), JAX_PLATFORMS="cpu")
    me = os.path.abspath(__file__)
    args = ["--worker", "--steps", str(steps), "--rounds", str(rounds)]
    one = subprocess.run([sys.executable, me, *args], capture_output=True, text=True, timeout=900,
                         env=dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=2"))
    cmd = [sys.executable, "-m", "sporax", "msrun", "--worker_num=2", "--local_worker_num=2",
           f"--master_port={_free_port()}", "--log_dir=/tmp/sporax_bench_parallel_logs", "--join=True",
           me, *args]
    two = subprocess.run(cmd, capture_output=True, text=True, timeout=900,
                         env=dict(env, XLA_FLAGS="--xla_force_host_platform_device_count=1"))
    r1 = [float(v) for v in re.findall(r"steps_per_s=([\d.]+)", one.stdout)]
    r2 = [float(v) for v in re.findall(r"steps_per_s=([\d.]+)", two.stdout)]
    if not r1 or len(r2) != 2:
        print("  failed:\n" + one.stdout[-2000:] + one.stderr[-2000:] + two.stdout[-3000:] + two.stderr[-2000:])
        return
    print(f"  1 process x 2 devices: {r1[0]:.2f} steps/s")
    print(f"  2 processes x 1 device: {min(r2):.2f} steps/s (slower rank)  ratio {min(r2) / r1[0]:.2f}x")


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=20)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--quick", action="store_true", help="few steps (a smoke test)")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--popt-only", action="store_true", help="only (4), the parallel optimizer")
    parser.add_argument("--semi-only", action="store_true", help="only (5), semi-auto parallel")
    parser.add_argument("--dp-only", action="store_true", help="only (1), (3) and (2), data parallel")
    a = parser.parse_args(argv)
    steps, rounds = (4, 1) if a.quick else (a.steps, a.rounds)
    if a.worker:
        worker(steps, rounds)
        return
    import jax

    print(f"jax {jax.__version__}, {jax.device_count()} simulated {jax.devices()[0].platform} devices on "
          f"{os.cpu_count()} cores (shared: compare ratios)")
    if a.popt_only:
        part_popt(steps, rounds)
        return
    if a.semi_only:
        part_semi(steps, rounds)
        return
    part1(steps, rounds)
    part3(steps, rounds)
    if not a.dp_only:
        part_popt(steps, rounds)
        part_semi(steps, rounds)
    part2(steps, rounds)


if __name__ == "__main__":
    main()
