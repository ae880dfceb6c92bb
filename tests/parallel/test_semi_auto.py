"""Semi-auto parallel in one process over the 8 simulated devices, through the public API:
``shard`` strategies on the layers' primitives, the parameter layouts they imply, sharded
parameters initialized shard by shard, training equal to one device, and bad strategies."""

import math
import re

import jax
import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, nn, ops
from sporax.common.initializer import initializer
from sporax.parallel import semi_auto


class MLP(nn.Cell):
    def __init__(self, d_in=16, d_hidden=32, d_out=8):
        super().__init__()
        self.fc1 = nn.Dense(d_in, d_hidden)
        self.relu = ops.ReLU()
        self.fc2 = nn.Dense(d_hidden, d_out)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def _data(n=8, d_in=16, d_out=8, seed=0):
    rng = np.random.default_rng(seed)
    return (Tensor(rng.standard_normal((n, d_in)).astype(np.float32)),
            Tensor(rng.standard_normal((n, d_out)).astype(np.float32)))


def _megatron(net, dp=2, mp=4):
    """Column-parallel fc1 and row-parallel fc2 over a "model" axis of ``mp`` devices."""
    net.fc1.matmul.shard(((dp, 1), (mp, 1)))
    net.fc1.bias_add.shard(((dp, mp), (mp,)))
    net.relu.shard(((dp, mp),))
    net.fc2.matmul.shard(((dp, mp), (1, mp)))


def _train(parallel, steps=4, shard=_megatron, optimizer="momentum", mode=ms.GRAPH_MODE, **ctx):
    ms.context._reset()
    ms.set_context(mode=mode)
    if parallel:
        ms.set_auto_parallel_context(**{"parallel_mode": "semi_auto_parallel", "device_num": 8, "full_batch": True, **ctx})
    ms.set_seed(3)
    net = MLP()
    if parallel and shard is not None:
        shard(net)
    if optimizer == "momentum":
        opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    else:
        opt = nn.Adam(net.trainable_params(), 0.01)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    x, y = _data()
    losses = [float(train(x, y).asnumpy()) for _ in range(steps)]
    return losses, train, net


@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE])
def test_semi_auto_trains_like_one_device(optimizer, mode):
    ref_losses, ref_train, _ = _train(False, optimizer=optimizer, mode=mode)
    ref = {p.name: p.asnumpy() for p in ref_train.get_parameters()}
    losses, train, net = _train(True, optimizer=optimizer, mode=mode)
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-6)
    for p in train.get_parameters():
        np.testing.assert_allclose(p.asnumpy(), ref[p.name], rtol=1e-5, atol=1e-6, err_msg=p.name)
    assert isinstance(net.fc1.weight._value.sharding, jax.sharding.NamedSharding)


def test_parameter_layout_dict_follows_mindspore_conventions():
    _, train, _ = _train(True, steps=1)
    layouts = train.parameter_layout_dict
    # fc1.matmul ((2, 1), (4, 1)), transpose_b: device matrix [2, 1, 4] -> standard [2, 4];
    # the weight (out, in) is split 4 ways along out (map 0 = the last axis).
    assert layouts["fc1.weight"] == ([2, 4], [0, -1], [8, 16], 0, True, "")
    assert layouts["fc1.bias"] == ([2, 4], [0], [8], 0, True, "")
    # fc2.matmul ((2, 4), (1, 4)): device matrix [2, 4, 1] -> [2, 4]; the weight's "in" is split.
    assert layouts["fc2.weight"] == ([2, 4], [-1, 0], [8, 8], 0, True, "")
    # no strategy: replicated over the 8 devices (MindSpore's batch-parallel default).
    assert layouts["fc2.bias"] == ([8], [-1], [8], 0, True, "")
    # the optimizer's state takes its parameter's layout (MindSpore: cloned parameters).
    assert layouts["moments.fc1.weight"] == layouts["fc1.weight"]
    assert layouts["moments.fc2.weight"] == layouts["fc2.weight"]
    assert layouts["learning_rate"] == ([8], [], [], 0, True, "")


def test_every_device_holds_exactly_its_slice():
    _, train, _ = _train(True, steps=2)
    layouts = semi_auto.layouts_of(train)
    sharded = 0
    for p in train.get_parameters():
        layout = layouts[p.name]
        arr = p._value
        assert len(arr.addressable_shards) == 8
        for shard in arr.addressable_shards:
            assert tuple(shard.data.shape) == layout.slice_shape, p.name
            assert shard.data.nbytes == math.prod(layout.slice_shape) * arr.dtype.itemsize
            offsets, sizes = layout.window(p.shape, shard.device.id)  # rank = device position
            expect = tuple(slice(o, o + s) for o, s in zip(offsets, sizes))
            np.testing.assert_array_equal(np.asarray(shard.data), p.asnumpy()[expect])
        sharded += layout.slice_shape != tuple(p.shape)
    assert sharded == 6  # fc1.weight, fc1.bias, fc2.weight and their moments


def test_sharded_initialization_is_the_window_of_the_unsharded_one():
    ms.set_seed(11)
    ref = MLP()
    full = {p.name: p.asnumpy() for p in ref.get_parameters()}
    ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, full_batch=True)
    ms.set_seed(11)
    net = MLP()
    net.fc1.matmul.shard(((1, 1), (8, 1)))
    net.fc2.matmul.shard(((1, 8), (1, 8)))
    assert net.fc1.weight.has_init
    net(_data()[0])  # the eval network compiles: parameters placed, none written
    for p in net.get_parameters():
        for shard in p._value.addressable_shards:
            np.testing.assert_array_equal(np.asarray(shard.data), full[p.name][shard.index], err_msg=p.name)
    assert net.fc1.weight._value.addressable_shards[0].data.shape == (4, 16)
    assert net.parameter_layout_dict["fc2.weight"] == ([8], [-1, 0], [8, 4], 0, True, "")


def test_data_parallel_dataset_and_repeated_calculation():
    """full_batch=False: the batch is split over all devices; a strategy on 4 of 8 devices
    repeats on the remaining factor (the last device-matrix axis)."""
    def shard(net):
        net.fc1.matmul.shard(((2, 1), (2, 1)))

    ref_losses, ref_train, _ = _train(False)
    losses, train, net = _train(True, shard=shard, full_batch=False)
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-6)
    # [2, 1, 2] + repetition 2 at the right -> [2, 1, 2, 2] -> standard [2, 2, 2]; the weight's
    # map moves up by one (1 -> axis of size 2 in the middle).
    assert train.parameter_layout_dict["fc1.weight"] == ([2, 2, 2], [1, -1], [16, 16], 0, True, "")
    w = net.fc1.weight._value
    rows = sorted({s.index[0].start for s in w.addressable_shards})
    assert rows == [0, 16]


def test_embedding_gather_and_elementwise_layouts():
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.emb = nn.Embedding(64, 16)
            self.scale = Parameter(initializer("normal", [16]), name="scale")
            self.mul = ops.Mul()
            self.fc = nn.Dense(16, 4)
            self.mean = ops.ReduceMean()

        def construct(self, ids):
            return self.mean(self.fc(self.mul(self.emb(ids), self.scale)), 0)

    def make():
        ms.set_seed(5)
        return Net()

    ids = Tensor(np.arange(8, dtype=np.int32) * 7)
    want = make()(ids).asnumpy()
    ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, full_batch=True)
    net = make()
    net.emb.gather.shard(((1, 8), (1,)))
    net.mul.shard(((1, 8), (8,)))
    net.fc.matmul.shard(((1, 8), (1, 8)))
    net.mean.shard(((8, 1),))
    np.testing.assert_allclose(net(ids).asnumpy(), want, rtol=1e-5, atol=1e-6)
    layouts = net.parameter_layout_dict
    # Gather, axis not split: device matrix [*params[:0], *indices, *params[1:]] = [1, 8] -> [8].
    assert layouts["emb.embedding_table"] == ([8], [-1, 0], [64, 2], 0, True, "")
    assert layouts["scale"] == ([8], [0], [2], 0, True, "")
    # a gather split along the table's rows (the axis): the params' strategy, indices unsplit.
    ms.context._reset()
    ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, full_batch=True)
    net = make()
    net.emb.gather.shard(((8, 1), (1,)))
    np.testing.assert_allclose(net(ids).asnumpy(), want, rtol=1e-5, atol=1e-6)
    assert net.parameter_layout_dict["emb.embedding_table"] == ([8], [0, -1], [8, 16], 0, True, "")


def _collectives(train) -> dict:
    text = semi_auto.compiled_text(train)
    return {op: len(re.findall(rf" {op}\(", text)) for op in ("all-reduce", "all-gather", "reduce-scatter")}


def test_the_compiled_step_has_the_communication_of_the_strategies():
    # 8-way model parallel: column-parallel fc1, row-parallel fc2: ONE all-reduce (fc2's partial
    # sums), no gradient reduction, no all-gather (every weight and its update stay sharded).
    _, train, _ = _train(True, steps=1, shard=lambda net: _megatron(net, 1, 8))
    assert _collectives(train) == {"all-reduce": 1, "all-gather": 0, "reduce-scatter": 0}
    # 8-way data parallel through strategies: no activation collective; the weights' gradients
    # are all-reduced (possibly combined by XLA into fewer all-reduces).
    _, train, _ = _train(True, steps=1, full_batch=False, shard=lambda net: net.fc1.matmul.shard(((8, 1), (1, 1))))
    counts = _collectives(train)
    assert counts["all-reduce"] >= 1 and counts["all-gather"] == 0
    assert train.parameter_layout_dict["fc1.weight"] == ([8], [-1, -1], [32, 16], 0, True, "")


def test_auto_parallel_propagates_from_the_strategies_given():
    ref_losses, _, _ = _train(False)
    losses, train, net = _train(True, parallel_mode="auto_parallel",
                                shard=lambda net: net.fc1.matmul.shard(((1, 1), (8, 1))))
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-6)
    assert train.parameter_layout_dict["fc1.weight"] == ([8], [0, -1], [4, 16], 0, True, "")
    assert train.parameter_layout_dict["fc2.weight"] == ([8], [-1, -1], [8, 32], 0, True, "")


# ---------------------------------------------------------------------------------- bad input
def test_shard_argument_errors_name_the_op():
    mm = ops.MatMul()
    with pytest.raises(TypeError, match=r"'MatMul.shard'.*'in_strategy' should be a tuple"):
        mm.shard([(2, 1), (4, 1)])
    with pytest.raises(TypeError, match=r"element 1 of 'in_strategy'"):
        mm.shard(((2, 1), [4, 1]))
    with pytest.raises(TypeError, match=r"must be int type, but got float"):
        mm.shard(((2.0, 1), (4, 1)))
    with pytest.raises(ValueError, match=r"int >= 1"):
        mm.shard(((0, 1), (4, 1)))
    with pytest.raises(ValueError, match=r"The out_strategy of MatMul .* need to set in_strategy"):
        mm.shard(None, ((8, 1),))
    assert mm.in_strategy is None  # nothing recorded by a rejected call
    assert "in_strategy=((2, 1), (4, 1))" in repr(mm.shard(((2, 1), (4, 1))))


@pytest.mark.parametrize("strategy, match", [
    (((2, 1, 1), (4, 1)), r"'MatMul' \(the primitive 'network._backbone.fc1.matmul'\).*strategy \(2, 1, 1\) of input 0 has 3 entries "
                          r"but input 0 has shape \(8, 16\)"),
    (((2, 1),), r"'MatMul' \(the primitive '[\w.]*fc1.matmul'\).*1 entries but the operator has 2 tensor inputs"),
    (((3, 1), (1, 1)), r"dimension 0 of input 0 \(size 8.*can not be split 3 ways"),
    (((1, 1), (1, 3)), r"dimension 1 of input 1 \(size 16.*can not be split 3 ways"),
    (((4, 1), (4, 1)), r"uses 16 devices .* more than device_num=8"),
    (((2, 2), (4, 1)), r"reduction dimension must be split the same way"),
])
def test_strategies_that_do_not_fit_are_runtime_errors(strategy, match):
    ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, full_batch=True)
    net = MLP()
    net.fc1.matmul.shard(strategy)
    train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Momentum(net.trainable_params(), 0.1, 0.9))
    with pytest.raises(RuntimeError, match=match):
        train(*_data())
    assert net.fc1.weight.has_init and net.fc1.weight._value is None  # nothing was placed
    assert train.parameter_layout_dict == {}


def test_other_strategy_errors():
    ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, full_batch=True)
    x = Tensor(np.ones((8, 16), np.float32))

    class One(nn.Cell):
        def __init__(self, prim, *extra):
            super().__init__()
            self.prim, self.extra = prim, extra

        def construct(self, x):
            return self.prim(x, *self.extra)

    with pytest.raises(RuntimeError, match=r"'Softmax'.*softmax axis"):
        One(ops.Softmax().shard(((1, 8),)))(x)
    with pytest.raises(RuntimeError, match=r"'ReLU'.*does not support to set an output strategy"):
        One(ops.ReLU().shard(((8, 1),), ((8, 1),)))(x)
    with pytest.raises(RuntimeError, match=r"'ReduceSum'.*device_num=8 is not divisible by the 3 devices"):
        One(ops.ReduceSum().shard(((1, 3),)), 1)(Tensor(np.ones((8, 6), np.float32)))
    with pytest.raises(RuntimeError, match=r"'Tile'.*no sharding rule, so its strategy \(\(8, 1\),\) can not"):
        One(ops.Tile().shard(((8, 1),)), (1, 2))(x)
    with pytest.raises(ValueError, match=r"input 0 of shape \(6, 16\) can not be split \(8, 1\) ways"):
        ms.set_auto_parallel_context(full_batch=False)
        One(ops.ReLU().shard(((1, 1),)))(Tensor(np.ones((6, 16), np.float32)))


def test_strategies_are_ignored_outside_semi_auto_modes():
    """MindSpore: "It is valid only in semi auto parallel or auto parallel mode. In other
    parallel modes, strategies set here will be ignored." """
    ref_losses, _, _ = _train(False)
    losses, train, _ = _train(False, shard=_megatron)
    assert losses == ref_losses and train.parameter_layout_dict == {}
    ms.set_auto_parallel_context(parallel_mode="data_parallel")
    x, _ = _data()
    net = MLP()
    _megatron(net)
    assert net(x).shape == (8, 8)


def test_transpose_and_batch_matmul_layouts():
    from sporax.parallel.strategy import infer

    lay = infer("matmul", "BatchMatMul", [(4, 8, 16), (4, 16, 32)], ((2, 1, 2), (2, 2, 2)), 8)
    assert lay.dev_mat == (2, 2, 2) and lay.in_maps == ((2, -1, 1), (2, 1, 0)) and lay.out_map == (2, -1, 0)
    lay = infer("transpose", "Transpose", [(8, 4, 2)], ((2, 4, 1),), 8, attrs={"perm": (2, 0, 1)})
    assert lay.dev_mat == (2, 4) and lay.in_maps == ((1, 0, -1),) and lay.out_map == (-1, 1, 0)
    lay = infer("matmul", "MatMul", [(16, 8), (16, 4)], ((2, 4), (2, 1)), 8, attrs={"transpose_a": True})
    # x stored (j, i) = (16, 8) split (2, 4): i = 4, j = 2; device matrix [4, 2, 1] -> [4, 2]
    assert lay.dev_mat == (4, 2) and lay.in_maps == ((0, 1), (0, -1)) and lay.out_map == (1, -1)


def test_every_supported_operator_runs_sharded_and_matches_one_device():
    """BatchMatMul, Add/Sub/Mul/RealDiv, GeLU/Sigmoid/Softmax, ReduceSum, Transpose and Reshape
    (passing layouts through) with strategies: the same outputs and gradients as one device."""

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(initializer("normal", [4, 8, 16]), name="w")
            self.b = Parameter(initializer("normal", [16]), name="b")
            self.bmm, self.add, self.sub = ops.BatchMatMul(), ops.Add(), ops.Sub()
            self.mul, self.div, self.gelu = ops.Mul(), ops.RealDiv(), ops.GeLU()
            self.sigmoid, self.softmax, self.sum = ops.Sigmoid(), ops.Softmax(), ops.ReduceSum(keep_dims=True)
            self.transpose, self.reshape = ops.Transpose(), ops.Reshape()

        def construct(self, x):
            h = self.bmm(x, self.w)  # (4, 2, 16)
            h = self.gelu(self.add(h, self.b))
            h = self.div(self.sub(h, self.sigmoid(h)), 2.0)
            h = self.transpose(self.mul(h, h), (0, 2, 1))  # (4, 16, 2)
            h = self.reshape(h, (4, 32))
            return self.sum(self.softmax(h), 1)

    def make():
        ms.set_seed(8)
        return Net()

    x = Tensor(np.random.default_rng(1).standard_normal((4, 2, 8)).astype(np.float32))
    ref = make()
    want = ref(x).asnumpy()
    want_grads = [g.asnumpy() for g in ms.grad(ref, None, ref.trainable_params())(x)]
    ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, full_batch=True)
    net = make()
    net.bmm.shard(((2, 1, 1), (2, 1, 4)))
    net.add.shard(((2, 1, 4), (4,)))
    net.gelu.shard(((2, 1, 4),))
    net.sigmoid.shard(((2, 1, 4),))
    net.sub.shard(((2, 1, 4), (2, 1, 4)))
    net.div.shard(((2, 1, 4),))
    net.mul.shard(((2, 1, 4), (2, 1, 4)))
    net.transpose.shard(((2, 1, 4),))
    net.reshape.shard(((2, 4, 1),))  # Reshape passes layouts through (the strategy is not used)
    net.softmax.shard(((4, 1),))
    net.sum.shard(((2, 4),))  # the reduced axis split: XLA adds the partial-sum all-reduce
    np.testing.assert_allclose(net(x).asnumpy(), want, rtol=1e-5, atol=1e-6)
    assert net.parameter_layout_dict["w"] == ([2, 4], [1, -1, 0], [2, 8, 4], 0, True, "")
    assert net.parameter_layout_dict["b"] == ([2, 4], [0], [4], 0, True, "")

    class Grads(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net = net
            self.grad = ms.grad(net, None, net.trainable_params())

        def construct(self, x):
            return self.grad(x)

    got = Grads(net)(x)
    for g, w in zip(got, want_grads):
        np.testing.assert_allclose(g.asnumpy(), w, rtol=1e-5, atol=1e-6)


def test_dataset_strategy_splits_each_input_as_given():
    ref_losses, ref_train, _ = _train(False)
    ms.context._reset()
    losses, train, net = _train(True, full_batch=False, dataset_strategy=((4, 1), (4, 1)))
    np.testing.assert_allclose(losses, ref_losses, rtol=2e-6)
    x, _ = _data()
    train(x, _data()[1])
    # (4, 1) on 8 devices: repetition 2 in front -> device matrix [2, 4]; rows split 4 ways
    assert x._value.sharding.spec == jax.sharding.PartitionSpec("d1", None)
    assert {s.data.shape for s in x._value.addressable_shards} == {(2, 16)}
    ms.set_auto_parallel_context(dataset_strategy="full_batch")
    assert ms.get_auto_parallel_context("full_batch") is True
    with pytest.raises(ValueError, match="must be 'full_batch' or 'data_parallel'"):
        ms.set_auto_parallel_context(dataset_strategy="model_parallel")
    with pytest.raises(TypeError, match="must be str or tuple type"):
        ms.set_auto_parallel_context(dataset_strategy=[(4, 1)])
    with pytest.raises(TypeError, match="must be int type"):
        ms.set_auto_parallel_context(dataset_strategy=((4.0, 1),))
    assert ms.get_auto_parallel_context("dataset_strategy") == "full_batch"


def test_model_train_runs_semi_auto_steps():
    from sporax import dataset as ds
    from sporax.train import Model

    rng = np.random.default_rng(2)
    x = rng.standard_normal((32, 16)).astype(np.float32)
    y = rng.standard_normal((32, 8)).astype(np.float32)

    def fit(parallel: bool):
        ms.context._reset()
        if parallel:
            ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, full_batch=True)
        ms.set_seed(4)
        net = MLP()
        if parallel:
            _megatron(net, 1, 8)
        model = Model(net, nn.MSELoss(), nn.Momentum(net.trainable_params(), 0.1, 0.9))
        model.train(2, ds.NumpySlicesDataset((x, y), ["x", "y"], shuffle=False).batch(8))
        return net

    ref, got = fit(False), fit(True)
    for p, q in zip(ref.get_parameters(), got.get_parameters()):
        np.testing.assert_allclose(q.asnumpy(), p.asnumpy(), rtol=1e-5, atol=1e-6, err_msg=p.name)
    assert got.fc1.weight._value.addressable_shards[0].data.shape == (4, 16)


def test_layout_of_mindspores_own_parameter_layout_test():
    """The case of MindSpore's tests/ut/python/parallel/test_get_parameter_layout.py (its expected
    value is the fact checked): MatMul(transpose_b=True).shard(((2, 1), (4, 1))) and
    ReLU.shard(((2, 4),)) on 8 devices give the (64, 32) weight ([2, 4], [0, -1], [16, 32])."""

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.weight = Parameter(Tensor(np.ones([64, 32]), ms.float32), "w1")
            self.matmul = ops.MatMul(transpose_a=False, transpose_b=True).shard(((2, 1), (4, 1)))
            self.relu = ops.ReLU().shard(((2, 4),))

        def construct(self, x):
            return self.relu(self.matmul(x, self.weight))

    ms.set_auto_parallel_context(device_num=8, global_rank=0, parallel_mode="semi_auto_parallel", full_batch=True)
    net = Net()
    out = net(Tensor(np.ones([32, 32]), ms.float32))
    np.testing.assert_array_equal(out.asnumpy(), np.full((32, 64), 32.0, np.float32))
    assert net.parameter_layout_dict == {"w1": ([2, 4], [0, -1], [16, 32], 0, True, "")}
