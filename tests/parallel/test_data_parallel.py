"""Data parallel in one process over the simulated devices: equivalence, layerwise, broadcast, fusion, ops."""

import os
import re
import sys

import jax
import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, communication, nn, ops
from sporax.parallel import comm_plan, compiled_text, get_device_values, set_device_values

HERE = os.path.dirname(__file__)
FIXTURE = os.path.join(HERE, "fixtures", "dp_momentum_ms210.npz")
SCRIPT = os.path.join(HERE, "scripts", "dp_train.py")
GOLD = np.load(FIXTURE)
KEYS = ("w1", "b1", "w2", "b2")


def _run_script(tmp_path, mode: str) -> dict:
    """Run the MindSpore script in this process, as ``python -m sporax run`` does."""
    from sporax.__main__ import run_script

    prefix = str(tmp_path / f"out_{mode}")
    argv, path = sys.argv[:], sys.path[:]
    try:
        run_script(SCRIPT, [FIXTURE, prefix, mode])
    finally:
        sys.argv[:], sys.path[:] = argv, path
    return dict(np.load(prefix + ".rank0.npz"))


@pytest.mark.parametrize("mode", ["graph", "pynative"])
@pytest.mark.parametrize("ndev", [1, 8])
def test_script_trains_like_mindspore(tmp_path, monkeypatch, mode, ndev):
    """Settings 1 and 2: one process, 1 or 8 devices; the same parameters as MindSpore 2.10."""
    if ndev == 1:
        monkeypatch.setattr(ms.parallel._runtime, "dp_devices", lambda: jax.devices()[:1])
    got = _run_script(tmp_path, mode)
    assert int(got["size"]) == 1  # the process is the rank: it takes the whole global batch
    for k in KEYS:
        np.testing.assert_allclose(got[f"{mode}_{k}"], GOLD[f"{mode}_{k}"], rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got[f"{mode}_losses"], GOLD[f"{mode}_losses"], rtol=1e-5)


def _net(seed=0):
    ms.set_seed(seed)
    return nn.SequentialCell([nn.Dense(6, 8), nn.ReLU(), nn.Dense(8, 3)])


def _data(n=16, seed=0):
    rng = np.random.default_rng(seed)
    return rng.normal(size=(n, 6)).astype(np.float32), rng.normal(size=(n, 3)).astype(np.float32)


def _train(parallel: bool, device_num=None, steps=2, model=False):
    ms.context._reset()
    ms.set_context(mode=ms.GRAPH_MODE)
    if parallel:
        ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True,
                                     **({"device_num": device_num} if device_num else {}))
    net = _net()
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    x, y = _data()
    if model:
        ms.Model(net, nn.MSELoss(), opt).train(steps, [(x, y)])
    else:
        step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
        for _ in range(steps):
            step(Tensor(x), Tensor(y))
    return [p.asnumpy() for p in net.trainable_params()]


@pytest.mark.parametrize("device_num", [4])
def test_subset_of_devices_and_model_train(device_num):
    ref = _train(False)
    for got in (_train(True, device_num), _train(True, model=True)):
        for a, b in zip(ref, got):
            np.testing.assert_allclose(b, a, rtol=1e-5, atol=1e-6)


def test_sum_of_gradients_without_mean():
    """gradients_mean=False: the update uses the sum of the 8 local mean-loss gradients."""
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=False)
    net = _net()
    w0 = [p.asnumpy() for p in net.trainable_params()]
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.01))
    x, y = _data()
    step(Tensor(x), Tensor(y))
    ms.context._reset()
    ref = _net()
    for p, v in zip(ref.trainable_params(), w0):
        p.set_data(Tensor(v))
    ref_step = nn.TrainOneStepCell(nn.WithLossCell(ref, nn.MSELoss()), nn.SGD(ref.trainable_params(), 0.08))
    ref_step(Tensor(x), Tensor(y))  # 8 x (mean gradient) == sum of the 8 local gradients
    for a, b in zip(ref.trainable_params(), net.trainable_params()):
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), rtol=1e-5, atol=1e-6)


class _Lw(nn.Cell):
    def __init__(self):
        super().__init__()
        self.dense = nn.Dense(6, 3)
        self.scale = Parameter(Tensor(np.ones(3, np.float32)), name="scale", layerwise_parallel=True)

    def construct(self, x):
        return self.dense(x) * self.scale


def _local_grads(w, b, s, x, y):
    def loss(w, b, s):
        return ((((x @ w.T) + b) * s - y) ** 2).mean()

    return jax.grad(loss, argnums=(0, 1, 2))(w, b, s)


@pytest.mark.parametrize("parallel_mode", ["data_parallel", "hybrid_parallel"])
def test_layerwise_parameter_keeps_its_local_gradient(parallel_mode):
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_auto_parallel_context(parallel_mode=parallel_mode, gradients_mean=True)
    ms.set_seed(3)
    net = _Lw()
    w0, b0, s0 = (p.asnumpy() for p in (net.dense.weight, net.dense.bias, net.scale))
    x, y = _data(16, seed=5)  # each device gets different rows
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.5))
    plan = comm_plan(step)
    assert plan.excluded == ("scale",) and [b.names for b in plan.buckets] == [("dense.weight", "dense.bias")]
    step(Tensor(x), Tensor(y))
    grads = [_local_grads(w0, b0, s0, x[2 * d:2 * d + 2], y[2 * d:2 * d + 2]) for d in range(8)]
    scales = get_device_values(net.scale)
    assert scales.shape == (8, 3)
    for d in range(8):
        np.testing.assert_allclose(scales[d], s0 - 0.5 * np.asarray(grads[d][2]), rtol=1e-5, atol=1e-6)
    mean_w = np.mean([np.asarray(g[0]) for g in grads], axis=0)
    mean_b = np.mean([np.asarray(g[1]) for g in grads], axis=0)
    for got, want in ((net.dense.weight, w0 - 0.5 * mean_w), (net.dense.bias, b0 - 0.5 * mean_b)):
        rows = get_device_values(got)
        np.testing.assert_allclose(rows, np.broadcast_to(want, rows.shape), rtol=1e-5, atol=1e-6)
    assert not np.allclose(scales[0], scales[1])
    np.testing.assert_array_equal(net.scale.asnumpy(), scales[0])  # asnumpy: the first device's replica


def test_parameter_broadcast_equalizes_all_but_layerwise():
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True, parameter_broadcast=True)
    net = _Lw()
    seeded = {}
    for i, p in enumerate(net.trainable_params()):  # differently seeded replicas, one per device
        rows = np.stack([np.random.default_rng(10 * i + d).normal(size=p.shape) for d in range(8)]).astype(np.float32)
        set_device_values(p, rows)
        seeded[p.name] = rows
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.0))
    assert comm_plan(step).broadcast is not None
    x, y = _data()
    step(Tensor(x), Tensor(y))
    for p in net.trainable_params():
        rows = get_device_values(p)
        if p.layerwise_parallel:
            np.testing.assert_allclose(rows, seeded[p.name], rtol=1e-6)
        else:
            np.testing.assert_allclose(rows, np.broadcast_to(seeded[p.name][0], rows.shape), rtol=1e-6)


class _Deep(nn.Cell):
    def __init__(self, n=3):
        super().__init__()
        self.layers = nn.CellList([nn.Dense(4, 4) for _ in range(n)])

    def construct(self, x):
        for layer in self.layers:
            x = layer(x)
        return x


class _Many(nn.Cell):
    """40 small parameters (cheap to compile) for the 'index' split points [20, 35]."""

    def __init__(self, n=40):
        super().__init__()
        self.ps = nn.CellList([_Scale() for _ in range(n)])

    def construct(self, x):
        for c in self.ps:
            x = c(x)
        return x


class _Scale(nn.Cell):
    def __init__(self):
        super().__init__()
        self.s = Parameter(Tensor(np.ones(4, np.float32)), name="s")

    def construct(self, x):
        return x * self.s


def _hlo_allreduces(text: str) -> list:
    """Each all-reduce of the optimized HLO as the sorted tuple of its operands' types (a combined one has several)."""
    out = []
    for line in text.splitlines():
        m = re.search(r"= (.+?) all-reduce\(", line)
        if m:
            kind = re.sub(r"/\*.*?\*/|\{[\d,]*\}", "", m.group(1)).strip("() ")
            out.append(tuple(sorted(re.findall(r"\w+\[[\d,]*\]", kind))))
    return sorted(out)


@pytest.mark.parametrize("fusion", ["ones", "zeros", "per_layer", "index", "size"])
def test_fusion_buckets_are_the_compiled_allreduces(fusion):
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
    net = _Deep()
    if fusion == "zeros":
        net.set_comm_fusion(0)
    elif fusion == "per_layer":
        for i, layer in enumerate(net.layers):
            layer.set_comm_fusion(i + 1)
    elif fusion == "index":
        ms.set_auto_parallel_context(comm_fusion={"allreduce": {"mode": "index", "config": [2, 5]}})
    elif fusion == "size":  # 4x4+4 floats = 80 bytes a layer: an 80-byte threshold closes a bucket per layer
        ms.set_auto_parallel_context(comm_fusion={"allreduce": {"mode": "size", "config": 80 / 2**20}})
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1))
    plan = comm_plan(step)
    expected = {"ones": 1, "zeros": 6, "per_layer": 3, "index": 3, "size": 3}[fusion]
    assert len(plan.buckets) == expected
    x = np.ones((8, 4), np.float32)
    step(Tensor(x), Tensor(x))
    got = _hlo_allreduces(compiled_text(step))
    shapes = {row[0]: row[1] for row in plan.rows}
    # one all-reduce per bucket, each gradient in its own shape (XLA's combiner merges exactly the bucket)
    want = sorted([tuple(sorted(f"f32[{','.join(map(str, shapes[n]))}]" for n in b.names)) for b in plan.buckets]
                  + [("f32[]",)])  # + the loss's mean
    assert got == want and len(got) == plan.allreduce_count
    assert " concatenate(" not in compiled_text(step)  # no flat buffer: no copies
    if fusion == "index":
        assert [len(b.names) for b in plan.buckets] == [2, 3, 1]


def test_the_xla_combiner_facts_the_buckets_rely_on():
    """XLA:CPU merges independent shard_map psums (at most COMBINE_LIMIT operands each) and never
    merges across a _runtime.tie dependency; an optimization_barrier does not stop it."""
    from jax.sharding import Mesh
    from jax.sharding import PartitionSpec as P

    from sporax.parallel import _runtime

    mesh = Mesh(np.array(jax.devices()), ("dp",))

    def counts(n, how=None, per=1):
        def body(*a):
            out, tok = [], None
            for k in range(0, n, per):
                gs = [x * 2.0 for x in a[k:k + per]]
                if how == "barrier" and tok is not None:
                    gs, _ = jax.lax.optimization_barrier((gs, tok))
                elif how == "tie":
                    gs = _runtime.tie(gs)
                rs = [jax.lax.psum(g, "dp") for g in gs]
                if how == "tie":
                    _runtime.advance(rs)
                out += rs
                tok = rs
            return out

        f = jax.shard_map(body, mesh=mesh, in_specs=(P(),) * n, out_specs=P(), check_vma=False)
        args = [jax.ShapeDtypeStruct((3,), np.float32)] * n
        with _runtime.axis_scope("dp", 8):
            text = jax.jit(f).lower(*args).compile().as_text()
        return sorted(len(g) for g in _hlo_allreduces(text))

    limit = _runtime.COMBINE_LIMIT
    assert counts(limit + 1) == [1, limit]
    # XLA of JAX <= 0.10 merges across an optimization_barrier; the XLA of JAX 0.12 does not. Either
    # way a barrier is no bucket boundary sporax could rely on, which is why buckets use _runtime.tie.
    assert counts(6, "barrier", per=2) in ([6], [2, 2, 2])
    assert counts(6, "tie", per=2) == [2, 2, 2]


def test_bucket_past_the_combiner_operand_limit_is_still_one_allreduce(monkeypatch):
    """More gradients than the combiner takes in one all-reduce (256 on XLA:CPU, measured; 8 here so
    that the test compiles fast): the largest 7 alone, the smallest rest packed, still one all-reduce."""
    monkeypatch.setattr(ms.parallel._runtime, "COMBINE_LIMIT", 8)
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
    net = _Many(12)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1))
    x = np.linspace(0, 1, 32, dtype=np.float32).reshape(8, 4)
    step(Tensor(x), Tensor(x * 0.5))
    got = _hlo_allreduces(compiled_text(step))
    assert len(got) == comm_plan(step).allreduce_count == 2 and sorted(len(k) for k in got) == [1, 8]
    assert ("f32[20]",) in [tuple(k for k in g if k != "f32[4]") for g in got]  # 5 of the 12 packed: 20 floats


@pytest.mark.parametrize("fusion", ["ones", "per_layer"])
def test_flat_buffer_buckets_where_the_combiner_is_not_relied_on(monkeypatch, fusion):
    """The other backends' path (one raveled buffer per bucket) trains the same, one all-reduce per bucket."""
    results = []
    for combine in (True, False):
        monkeypatch.setattr(ms.parallel._runtime, "combines", lambda c=combine: c)
        ms.context._reset()
        ms.set_context(mode=ms.GRAPH_MODE)
        ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
        ms.set_seed(0)
        net = _Deep()
        if fusion == "per_layer":
            for i, layer in enumerate(net.layers):
                layer.set_comm_fusion(i + 1)
        step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Momentum(net.trainable_params(), 0.1, 0.9))
        x = np.linspace(-1, 1, 64, dtype=np.float32).reshape(16, 4)
        for _ in range(2):
            step(Tensor(x), Tensor(x[:, ::-1].copy()))
        plan = comm_plan(step)
        got = _hlo_allreduces(compiled_text(step))
        assert len(got) == plan.allreduce_count
        if not combine:
            assert sorted(got) == sorted([(f"f32[{b.numel}]",) for b in plan.buckets] + [("f32[]",)])
        results.append([p.asnumpy() for p in net.trainable_params()])
    for a, b in zip(*results):
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_index_split_points_20_35_give_three_buckets():
    ms.set_auto_parallel_context(parallel_mode="data_parallel",
                                 comm_fusion={"allreduce": {"mode": "index", "config": [20, 35]}})
    ms.set_context(mode=ms.GRAPH_MODE)
    net = _Many()
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1))
    plan = comm_plan(step)
    assert [len(b.names) for b in plan.buckets] == [20, 15, 5] and plan.buckets[1].names[0] == "ps.20.s"
    assert plan.allreduce_count == 4  # three buckets and the loss
    x = np.ones((8, 4), np.float32)
    step(Tensor(x), Tensor(x))
    assert sorted(len(k) for k in _hlo_allreduces(compiled_text(step))) == [1, 5, 15, 20]


class _Big(nn.Cell):
    """Three lazy 24 MB parameters and a small one (only the plan is asked for: nothing is materialized)."""

    def __init__(self):
        super().__init__()
        from sporax.common.initializer import initializer

        for k in range(3):
            setattr(self, f"w{k}", Parameter(initializer("zeros", [6 * 2**20], ms.float32), name=f"w{k}"))
        self.b = Parameter(initializer("zeros", [10], ms.float32), name="b")

    def construct(self, x):
        return x * self.b.sum() + self.w0.sum() + self.w1.sum() + self.w2.sum()


@pytest.mark.parametrize("config, sizes", [(None, [3, 1]), (32, [2, 2]), (100, [4])])
def test_auto_mode_closes_a_bucket_at_64_mb_or_its_config(config, sizes):
    ms.set_auto_parallel_context(parallel_mode="data_parallel",
                                 comm_fusion={"allreduce": {"mode": "auto", "config": config}})
    net = _Big()
    plan = comm_plan(nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1)))
    assert [len(b.names) for b in plan.buckets] == sizes  # 24+24+24 MB >= 64 MB closes the first bucket
    assert net.w0.has_init  # still lazy: the plan needs no values


def test_plan_flags_survive_nesting_renaming_clone_and_checkpoints(tmp_path):
    class Outer(nn.Cell):
        def __init__(self):
            super().__init__()
            self.inner = nn.SequentialCell([_Lw(), nn.Dense(3, 2)])

        def construct(self, x):
            return self.inner(x)

    ms.set_auto_parallel_context(parallel_mode="data_parallel")
    net = Outer()
    net.inner[1].set_comm_fusion(0)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Momentum(net.trainable_params(), 0.1, 0.9))
    before = comm_plan(step)
    assert before.excluded == ("inner.0.scale",)
    assert [b.names for b in before.buckets] == [("inner.0.dense.weight", "inner.0.dense.bias"),
                                                 ("inner.1.weight",), ("inner.1.bias",)]
    opt_state = step.optimizer.moments
    assert [p.layerwise_parallel for p in opt_state] == [True, False, False, False, False]
    path = str(tmp_path / "n.ckpt")
    ms.save_checkpoint(net, path)
    ms.load_param_into_net(net, ms.load_checkpoint(path))
    net.update_parameters_name("renamed.")
    clone = net.inner[0].scale.clone()
    assert clone.layerwise_parallel and net.inner[1].weight.clone().comm_fusion == 0
    after = comm_plan(step)
    assert [b.indices for b in after.buckets] == [b.indices for b in before.buckets]
    assert after.excluded == ("renamed.inner.0.scale",)
    text = str(after)
    assert "renamed.inner.0.scale" in text and "local" in text and "layerwise_parallel" in text


class _CollectiveStep(nn.Cell):
    """A custom step: gradients through DistributedGradReducer by hand, collectives in construct."""

    def __init__(self, net, opt):
        super().__init__()
        self.net, self.opt = net, opt
        self.weights = opt.parameters
        self.grad = ops.GradOperation(get_by_list=True)
        self.reducer = nn.DistributedGradReducer(self.weights, mean=True)
        self.allreduce = ops.AllReduce()
        self.allmax = ops.AllReduce(ops.ReduceOp.MAX)
        self.gather = ops.AllGather()
        self.scatter = ops.ReduceScatter()
        self.group_sum = ops.AllReduce(group="evens")
        self.bcast = ops.Broadcast(3)
        self.out_sum = Parameter(Tensor(np.zeros(2, np.float32)), name="out_sum", layerwise_parallel=True)
        self.out_max = Parameter(Tensor(np.zeros(2, np.float32)), name="out_max", layerwise_parallel=True)
        self.out_gather = Parameter(Tensor(np.zeros(16, np.float32)), name="out_gather", layerwise_parallel=True)
        self.out_scatter = Parameter(Tensor(np.zeros(2, np.float32)), name="out_scatter", layerwise_parallel=True)
        self.out_group = Parameter(Tensor(np.zeros(2, np.float32)), name="out_group", layerwise_parallel=True)
        self.out_bcast = Parameter(Tensor(np.zeros(2, np.float32)), name="out_bcast", layerwise_parallel=True)

    def construct(self, x, y):
        v = x[:, 0]  # this device's 2 rows, first column
        self.out_sum.set_data(self.allreduce(v))
        self.out_max.set_data(self.allmax(v))
        self.out_gather.set_data(self.gather(v))
        self.out_scatter.set_data(self.scatter(ops.concat([v] * 8)))
        self.out_group.set_data(self.group_sum(v))
        self.out_bcast.set_data(self.bcast((v,))[0])
        grads = self.reducer(self.grad(self.net, self.weights)(x, y))
        self.opt(grads)
        return self.net(x, y)


def test_collective_ops_in_a_custom_step():
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
    communication.init()
    communication.create_group("evens", [0, 2, 4, 6])
    net = _net()
    w0 = [p.asnumpy() for p in net.trainable_params()]
    loss_net = nn.WithLossCell(net, nn.MSELoss())
    step = _CollectiveStep(loss_net, nn.SGD(net.trainable_params(), 0.1))
    x = np.arange(16 * 6, dtype=np.float32).reshape(16, 6) / 100
    y = np.zeros((16, 3), np.float32)
    step(Tensor(x), Tensor(y))
    v = x[:, 0].reshape(8, 2)  # row d: device d's values
    rows = {p.name: get_device_values(p) for p in (step.out_sum, step.out_max, step.out_gather, step.out_scatter,
                                                  step.out_group, step.out_bcast)}
    for d in range(8):
        np.testing.assert_allclose(rows["out_sum"][d], v.sum(0), rtol=1e-6)
        np.testing.assert_allclose(rows["out_max"][d], v.max(0), rtol=1e-6)
        np.testing.assert_allclose(rows["out_gather"][d], v.reshape(-1), rtol=1e-6)
        np.testing.assert_allclose(rows["out_scatter"][d], np.tile(v, (1, 8)).sum(0)[2 * d:2 * d + 2], rtol=1e-6)
        np.testing.assert_allclose(rows["out_group"][d], v[::2].sum(0) if d % 2 == 0 else v[d], rtol=1e-6)
        np.testing.assert_allclose(rows["out_bcast"][d], v[3], rtol=1e-6)
    ms.context._reset()  # the same update as one device on the whole batch
    ref = _net()
    for p, w in zip(ref.trainable_params(), w0):
        p.set_data(Tensor(w))
    nn.TrainOneStepCell(nn.WithLossCell(ref, nn.MSELoss()), nn.SGD(ref.trainable_params(), 0.1))(Tensor(x), Tensor(y))
    for a, b in zip(ref.trainable_params(), net.trainable_params()):
        np.testing.assert_allclose(b.asnumpy(), a.asnumpy(), rtol=1e-5, atol=1e-6)


def test_collective_outside_a_step_is_identity_on_one_device_and_an_error_on_many():
    x = Tensor(np.ones(4, np.float32))
    np.testing.assert_array_equal(ops.AllReduce()(x).asnumpy(), np.ones(4))
    np.testing.assert_array_equal(ops.AllGather()(x).asnumpy(), np.ones(4))
    ms.set_auto_parallel_context(parallel_mode="data_parallel")
    with pytest.raises(RuntimeError, match="inside the construct of a training step"):
        ops.AllReduce()(x)


def test_embedded_ranks_and_groups():
    communication.init()
    assert (communication.get_rank(), communication.get_group_size()) == (0, 1)
    assert (communication.get_local_rank(), communication.get_local_rank_size()) == (0, 1)
    communication.create_group("g", [0, 3])
    assert communication.get_world_rank_from_group_rank("g", 1) == 3
    assert communication.get_group_rank_from_world_rank(3, "g") == 1
    with pytest.raises(ValueError, match="group_rank_num"):
        communication.get_world_rank_from_group_rank("g", 2)
    communication.destroy_group("g")
    with pytest.raises(ValueError, match="does not exist"):
        communication.destroy_group("g")
    with pytest.raises(ValueError, match="backend_name"):
        communication.init("tcp")


def test_bad_input_is_rejected_and_changes_nothing():
    ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
    before = dict(vars(ms.context._state.auto_parallel))
    bad = [
        (ValueError, "parallel_mode", {"parallel_mode": "model_parallel"}),
        (ValueError, "device_num", {"device_num": 16}),  # 8 devices here
        (ValueError, "parallel_mode", {"device_num": 2, "parallel_mode": "nope"}),
        (TypeError, "gradients_mean", {"gradients_mean": "yes"}),
        (TypeError, "comm_fusion", {"comm_fusion": [1, 2]}),
        (ValueError, "mode", {"comm_fusion": {"allreduce": {"mode": "fast"}}}),
        (ValueError, "config", {"comm_fusion": {"allreduce": {"mode": "index", "config": [35, 20]}}}),
        (ValueError, "config", {"comm_fusion": {"allreduce": {"mode": "size", "config": -1}}}),
        (ValueError, "comm_fusion", {"comm_fusion": {"allgahter": {"mode": "auto"}}}),
    ]
    for exc, match, kwargs in bad:
        with pytest.raises(exc, match=match):
            ms.set_auto_parallel_context(**kwargs)
        assert dict(vars(ms.context._state.auto_parallel)) == before
    net = _net()
    with pytest.raises(ValueError, match="comm_fusion"):
        net.set_comm_fusion(-1)
    with pytest.raises(TypeError, match="comm_fusion|fusion_type"):
        net.set_comm_fusion(1.5)
    assert all(p.comm_fusion == 1 for p in net.trainable_params())
    with pytest.raises(ValueError, match="group"):
        ops.AllReduce(group="missing")
    with pytest.raises(ValueError, match="group"):
        nn.DistributedGradReducer(net.trainable_params(), group="missing")
    with pytest.raises(ValueError, match="degree"):
        nn.DistributedGradReducer(net.trainable_params(), degree=0)
    with pytest.raises(TypeError, match="mean"):
        nn.DistributedGradReducer(net.trainable_params(), mean=1)
    with pytest.raises(ValueError, match="op"):
        ops.AllReduce("avg")
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD(net.trainable_params(), 0.1))
    w = [p.asnumpy() for p in net.trainable_params()]
    with pytest.raises(ValueError, match="not divisible by 8"):
        step(Tensor(np.ones((12, 6), np.float32)), Tensor(np.ones((12, 3), np.float32)))
    for a, p in zip(w, net.trainable_params()):
        np.testing.assert_array_equal(p.asnumpy(), a)


def test_model_eval_after_data_parallel_training():
    """Model.train in DATA_PARALLEL on 8 devices, then Model.eval/predict: as a one-device run."""
    x, y = _data(32, seed=7)
    results = []
    for parallel in (True, False):
        ms.context._reset()
        ms.set_context(mode=ms.GRAPH_MODE)
        if parallel:
            ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True)
        net = _net(seed=2)
        model = ms.Model(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.05, 0.9), metrics={"loss", "mae"})
        model.train(2, [(x[:16], y[:16]), (x[16:], y[16:])])
        metrics = model.eval([(x[:8], y[:8]), (x[8:24], y[8:24])])
        pred = model.predict(Tensor(x[24:])).asnumpy()
        results.append((metrics, pred, [p.asnumpy() for p in net.trainable_params()]))
    (m_dp, p_dp, w_dp), (m_ref, p_ref, w_ref) = results
    for a, b in zip(w_dp, w_ref):
        np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
    assert set(m_dp) == {"loss", "mae"}
    for k in m_ref:
        np.testing.assert_allclose(m_dp[k], m_ref[k], rtol=1e-5)
    np.testing.assert_allclose(p_dp, p_ref, rtol=1e-5, atol=1e-6)
    untrained = _net(seed=2)(Tensor(x[24:])).asnumpy()
    assert not np.allclose(p_dp, untrained, atol=1e-3)  # the evaluated net is the trained one


def test_init_starts_no_jax_distributed_in_ps_mode(monkeypatch):
    """Parameter-server mode runs on Ray: its MS_WORKER_NUM/MS_SCHED_* start no jax.distributed."""
    from sporax.communication import _cluster

    calls = []
    monkeypatch.setattr(_cluster, "start", lambda c: calls.append(c))
    monkeypatch.setattr(communication, "_started", {})  # restored afterwards, as sys.excepthook
    monkeypatch.setattr(sys, "excepthook", sys.excepthook)
    for k, v in {"MS_WORKER_NUM": "2", "MS_SCHED_HOST": "127.0.0.1", "MS_SCHED_PORT": "1", "MS_NODE_ID": "1",
                 "MS_WORKER_ID": "1", "MS_ROLE": "MS_WORKER"}.items():
        monkeypatch.setenv(k, v)
    ms.set_ps_context(enable_ps=True)
    communication.init()
    assert calls == [] and communication.GlobalComm.INITED
    assert (communication.get_rank(), communication.get_group_size()) == (1, 2)  # the PS worker's id and count
    communication.release()
    ms.context.reset_ps_context()
    communication.init()  # the same environment without PS mode is a jax.distributed cluster
    assert [(c.worker_num, c.rank, c.port) for c in calls] == [(2, 1, 1)]
