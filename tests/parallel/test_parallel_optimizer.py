"""The parallel optimizer in data parallel: sharded weights and state, equal training, memory, recompute."""

import logging
import math
import os

import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, nn
from sporax.common.initializer import Normal, initializer
from sporax.parallel import comm_plan, compiled_text, data_parallel, optimizer_shard_plan, zero_bytes

HERE = os.path.dirname(__file__)
OPTIMIZERS = {
    "SGD": lambda p: nn.SGD(p, 0.1, momentum=0.9),
    "Momentum": lambda p: nn.Momentum(p, 0.1, 0.9),
    "Adam": lambda p: nn.Adam(p, 1e-2),
    "AdamWeightDecay": lambda p: nn.AdamWeightDecay(p, 1e-2, weight_decay=0.01),
}


def _context(popt: bool, device_num=None, **config):
    ms.context._reset()
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_auto_parallel_context(parallel_mode="data_parallel", gradients_mean=True, enable_parallel_optimizer=popt,
                                 **({"device_num": device_num} if device_num else {}))
    if config:
        ms.set_auto_parallel_context(parallel_optimizer_config=config)


def _mlp(widths=(32, 128, 64, 8), bias=True):
    ms.set_seed(0)
    cells = []
    for a, b in zip(widths[:-1], widths[1:]):
        cells += [nn.Dense(a, b, has_bias=bias), nn.Tanh()]
    return nn.SequentialCell(cells[:-1])


def _data(n=32, d_in=32, d_out=8):
    rng = np.random.default_rng(0)
    return rng.normal(size=(n, d_in)).astype(np.float32), rng.normal(size=(n, d_out)).astype(np.float32)


def _train(popt, opt="Adam", steps=3, device_num=None, recompute=False, widths=(32, 128, 64, 8), bias=True,
           parallel=True, mode=ms.GRAPH_MODE, **config):
    if parallel:
        _context(popt, device_num, **config)
    else:
        ms.context._reset()
    ms.set_context(mode=mode)
    net = _mlp(widths, bias)
    if recompute:
        net.recompute(parallel_optimizer_comm_recompute=True)
    optimizer = OPTIMIZERS[opt](net.trainable_params())
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), optimizer)
    x, y = _data(d_in=widths[0], d_out=widths[-1])
    losses = [float(step(Tensor(x), Tensor(y)).asnumpy()) for _ in range(steps)]
    return losses, step, net, optimizer


def _shard_bytes(param) -> list:
    return [s.data.nbytes for s in param._value.addressable_shards]


# ---------------------------------------------------------------------------------- configuration
@pytest.mark.parametrize("config, exc, text", [
    ({"foo": 1}, ValueError, "Unknown config: ['foo']"),
    ({"parallel_optimizer_threshold": -1}, ValueError, "must be int and must >= 0, but got '-1'"),
    ({"parallel_optimizer_threshold": 1.5}, TypeError, "For 'parallel_optimizer_threshold', the input value must be int"),
    ({"gradient_accumulation_shard": 1}, TypeError, "'gradient_accumulation_shard' must be a bool, but got int"),
    ({"optimizer_weight_shard_size": 0}, ValueError, "For 'optimizer_weight_shard_size', the input value must be int "
                                                     "and must > 0"),
    ({"optimizer_weight_shard_size": 2.0}, TypeError, "For 'optimizer_weight_shard_size', the input value must be int"),
    ({"optimizer_level": "level4"}, ValueError, "Optimizer level should in ['level1', 'level2', 'level3']"),
    ([("parallel_optimizer_threshold", 1)], TypeError, "'parallel_optimizer_config' must be <class 'dict'>"),
])
def test_config_rejected_as_mindspore(config, exc, text):
    """MindSpore 2.10's exception types and messages; the context is left unchanged."""
    before = dict(vars(ms.context._state.auto_parallel))
    with pytest.raises(exc) as info:
        ms.set_auto_parallel_context(parallel_optimizer_config=config)
    assert text in str(info.value)
    assert dict(vars(ms.context._state.auto_parallel)) == before


def test_config_merges_and_levels():
    ms.set_auto_parallel_context(parallel_optimizer_config={"parallel_optimizer_threshold": 8})
    ms.set_auto_parallel_context(parallel_optimizer_config={"optimizer_weight_shard_size": 2})
    cfg = ms.get_auto_parallel_context("parallel_optimizer_config")
    assert cfg["parallel_optimizer_threshold"] == 8 and cfg["optimizer_weight_shard_size"] == 2
    ms.set_auto_parallel_context(parallel_optimizer_config={"optimizer_level": "level2"})
    assert ms.get_auto_parallel_context("parallel_optimizer_config")["gradient_accumulation_shard"] is True
    with pytest.raises(ValueError, match="cannot set optimizer_level != 'level2'"):
        ms.set_auto_parallel_context(parallel_optimizer_config={"optimizer_level": "level3"})
    with pytest.raises(TypeError, match="enable_parallel_optimizer"):
        ms.set_auto_parallel_context(enable_parallel_optimizer=1)


# ---------------------------------------------------------------------------------- equal training
@pytest.mark.parametrize("opt", list(OPTIMIZERS))
def test_losses_and_parameters_match_unsharded(opt):
    """SGD, Momentum, Adam, AdamWeightDecay: sharded training gives unsharded training's results."""
    ref_losses, _, ref_net, ref_opt = _train(False, opt, parallel_optimizer_threshold=1)
    one_losses, _, one_net, _ = _train(False, opt, parallel=False)
    losses, step, net, optimizer = _train(True, opt, parallel_optimizer_threshold=1)
    plan = optimizer_shard_plan(step)
    assert [s.name for s in plan.shards] == ["0.weight", "2.weight", "4.weight"]  # the biases are under 1 KB
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-6)
    np.testing.assert_allclose(losses, one_losses, rtol=1e-5)
    for a, b, c in zip(net.trainable_params(), ref_net.trainable_params(), one_net.trainable_params()):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6, atol=1e-7)
        np.testing.assert_allclose(a.asnumpy(), c.asnumpy(), rtol=1e-4, atol=2e-5)  # summation order
    # the optimizer state too, read back whole from its shards
    ref_state = {p.name: p.asnumpy() for p in ref_opt.get_parameters()}
    for p in optimizer.get_parameters():
        np.testing.assert_allclose(p.asnumpy(), ref_state[p.name], rtol=1e-6, atol=1e-7)


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE])
def test_weight_shard_size_groups(mode):
    """optimizer_weight_shard_size=4 of 8 devices: groups of 4 consecutive devices, in both modes."""
    ref, _, ref_net, _ = _train(False, mode=mode)
    losses, step, net, _ = _train(True, mode=mode, parallel_optimizer_threshold=1, optimizer_weight_shard_size=4)
    np.testing.assert_allclose(losses, ref, rtol=1e-6)
    w = net.trainable_params()[0]
    assert dict(w._value.sharding.mesh.shape) == {"dp_rep": 2, "dp_opt": 4}
    rows = [s.index[0] for s in sorted(w._value.addressable_shards, key=lambda s: s.device.id)]
    assert [(r.start, r.stop) for r in rows] == [(0, 32), (32, 64), (64, 96), (96, 128)] * 2
    plan = comm_plan(step)
    assert plan.opt_shard.group_size == 4 and plan.opt_shard.mirror == 2
    text = compiled_text(step)
    assert text.count(" all-gather(") == plan.allgather_count == 3
    assert text.count(" reduce-scatter(") == plan.reducescatter_count == 3
    # the biases' bucket, the sharded gradients over the 2 groups (one each), the loss
    assert text.count(" all-reduce(") == plan.allreduce_count == 5
    for a, b in zip(net.trainable_params(), ref_net.trainable_params()):  # sums in another order: 4, then 2
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-4, atol=1e-5)


def test_weight_shard_size_errors_and_fallbacks():
    with pytest.raises(RuntimeError, match="optimizer_weight_shard_size 16 should not exceed the device num 8"):
        _train(True, steps=1, optimizer_weight_shard_size=16)
    _, step, _, _ = _train(True, steps=1, parallel_optimizer_threshold=1, optimizer_weight_shard_size=3)
    assert comm_plan(step).opt_shard.group_size == 8  # 3 does not divide 8: MindSpore uses the whole group


# ---------------------------------------------------------------------------------- what is sharded
def test_flags_threshold_and_divisibility(caplog):
    """parallel_optimizer=False and small parameters stay replicated; dimension 0 not divisible: replicated."""
    _context(True)  # default threshold: 64 KB
    ms.set_seed(0)
    net = nn.SequentialCell([nn.Dense(128, 256), nn.ReLU(), nn.Dense(256, 128), nn.ReLU(), nn.Dense(128, 12)])
    net[2].weight.parallel_optimizer = False
    odd = Parameter(Tensor(np.ones((100, 200), np.float32)), name="odd")  # 80 KB, 100 rows: not divisible by 8
    net.odd = odd

    class WithOdd(nn.Cell):
        def __init__(self, net):
            super().__init__()
            self.net = net

        def construct(self, x):
            return self.net(x) + (self.net.odd * 0.0).sum()

    opt = nn.Adam(net.trainable_params(), 1e-2)
    step = nn.TrainOneStepCell(nn.WithLossCell(WithOdd(net), nn.MSELoss()), opt)
    with caplog.at_level(logging.WARNING, logger="sporax.parallel"):
        plan = comm_plan(step)
    assert [s.name for s in plan.opt_shard.shards] == ["net.0.weight"]  # 128 KB; 4.weight is 6 KB
    why = dict(plan.opt_shard.skipped)
    assert why["net.2.weight"].startswith("parallel_optimizer=False")
    assert "smaller than the threshold(64KB)" in why["net.4.weight"]
    assert "could not be shard on the first dimension" in why["net.odd"]
    assert "net.odd does not satisfy the conditions" in caplog.text
    x = np.ones((16, 128), np.float32)
    step(Tensor(x), Tensor(np.zeros((16, 12), np.float32)))
    assert _shard_bytes(net[0].weight) == [256 * 128 * 4 // 8] * 8
    for p in (net[2].weight, net[4].weight, odd):
        assert _shard_bytes(p) == [p.asnumpy().nbytes] * 8


def test_non_row_wise_optimizer_stays_replicated():
    _context(True, parallel_optimizer_threshold=0)
    net = _mlp()
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Lamb(net.trainable_params(), 1e-2))
    plan = optimizer_shard_plan(step)
    assert not plan.shards and all("not row-wise" in why for _, why in plan.skipped)


def test_lazy_parameters_are_initialized_shard_by_shard():
    """A lazy weight is made window by window, bit-equal to the unsharded initialization."""
    _context(True, parallel_optimizer_threshold=0)
    ms.set_seed(5)
    w = Parameter(initializer(Normal(0.02), (64, 16)), name="w")
    ref = Parameter(initializer(Normal(0.02), (64, 16)), name="w")
    ref._seed = w._seed
    assert w._value is None

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = w

        def construct(self, x):
            return x @ self.w

    net = Net()
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.SGD([w], 0.0))
    assert w._value is None
    step(Tensor(np.ones((8, 64), np.float32)), Tensor(np.zeros((8, 16), np.float32)))
    full = ref.asnumpy()
    for s in w._value.addressable_shards:
        assert s.data.shape == (8, 16)
        np.testing.assert_array_equal(np.asarray(s.data), full[s.index])


# ---------------------------------------------------------------------------------- memory = formulas
@pytest.mark.parametrize("n", [2, 4, 8])
def test_per_device_bytes_match_zero_formulas(n):
    """Stored weights Psi/N and optimizer state K*Psi/N per device (addressable shards, the plan and XLA)."""
    widths = (64, 256, 128)
    _, base_step, _, _ = _train(False, "Adam", steps=1, device_num=n, widths=widths, bias=False)
    base = comm_plan(base_step)
    base_mem = data_parallel.compiled(base_step).memory_analysis()
    _, step, net, opt = _train(True, "Adam", steps=1, device_num=n, widths=widths, bias=False,
                               parallel_optimizer_threshold=0)
    plan = comm_plan(step)
    weights = net.trainable_params()
    psi = sum(p.asnumpy().nbytes for p in weights)
    moments = [*opt.moment1, *opt.moment2]
    k_psi = sum(m.asnumpy().nbytes for m in moments)  # Adam: K = 2 (two moments per weight)
    assert k_psi == 2 * psi
    scalars = base.opt_state_bytes - k_psi  # step, learning rate, beta powers: replicated
    want = zero_bytes(psi, k_psi, n)
    assert want == {"weights": psi // n, "grads": psi // n, "opt_state": k_psi // n}
    # every device holds exactly its 1/N of each weight and moment
    for p in [*weights, *moments]:
        assert _shard_bytes(p) == [p.asnumpy().nbytes // n] * n
    assert sum(_shard_bytes(weights[0])[:1]) + sum(_shard_bytes(weights[1])[:1]) == want["weights"]
    # the plan: the formulas, against the replicated baseline
    assert (base.param_bytes, base.grad_bytes, base.opt_state_bytes) == (psi, psi, k_psi + scalars)
    assert (plan.param_bytes, plan.grad_bytes, plan.opt_state_bytes) == (
        want["weights"], want["grads"], want["opt_state"] + scalars)
    assert plan.gathered_bytes == psi
    # XLA's memory analysis of the compiled step: its per-device arguments are the state plus the batch share
    mem = data_parallel.compiled(step).memory_analysis()
    batch = (32 // n) * (widths[0] + widths[-1]) * 4
    assert mem.argument_size_in_bytes == plan.param_bytes + plan.opt_state_bytes + batch
    assert base_mem.argument_size_in_bytes == base.param_bytes + base.opt_state_bytes + batch
    # the gradients: the baseline's full local gradients are temporaries of its step; sharded, the stored
    # gradient is a 1/N reduce-scatter output, and the gathered weights (Psi) are the transient cost
    assert mem.temp_size_in_bytes >= plan.gathered_bytes


def test_plan_collectives_match_compiled_hlo():
    _, step, _, _ = _train(True, steps=1, parallel_optimizer_threshold=1)
    plan = comm_plan(step)
    text = compiled_text(step)
    assert plan.allgather_count == plan.reducescatter_count == 3
    assert text.count(" all-gather(") == plan.allgather_count
    assert text.count(" reduce-scatter(") == plan.reducescatter_count
    assert text.count(" all-reduce(") == plan.allreduce_count == 2  # the biases' bucket and the loss
    s = str(plan)
    assert "all-gather weight 0.weight (forward): 16384 bytes float32" in s
    assert "reduce-scatter gradient 0.weight (backward)" in s


# ---------------------------------------------------------------------------------- comm recompute
def test_comm_recompute_gathers_again_in_the_backward_pass():
    """cell.recompute(parallel_optimizer_comm_recompute=True): more all-gathers, the forward copies not kept."""
    widths = (256,) * 5  # four 256x256 layers
    layer = 256 * 256 * 4
    plain_losses, plain, _, _ = _train(True, steps=2, widths=widths, bias=False, parallel_optimizer_threshold=1)
    losses, step, net, _ = _train(True, steps=2, widths=widths, bias=False, recompute=True,
                                  parallel_optimizer_threshold=1)
    assert all(p.parallel_optimizer_comm_recompute for p in net.trainable_params())
    np.testing.assert_allclose(losses, plain_losses, rtol=1e-6)
    plan = comm_plan(step)
    assert plan.allgather_count == 8 and "backward (comm recompute)" in str(plan)
    n_plain = compiled_text(plain).count(" all-gather(")
    n_rc = compiled_text(step).count(" all-gather(")
    # 4 in the forward pass; 3 again in the backward pass (the first layer's weight is not needed there:
    # the input's gradient is not computed)
    assert (n_plain, n_rc) == (4, 7)
    # Without recompute the forward copies of the 3 weights the backward pass uses stay alive into it
    # (XLA's temporaries hold at least those); with it they are not all live at once.
    t_plain = data_parallel.compiled(plain).memory_analysis().temp_size_in_bytes
    t_rc = data_parallel.compiled(step).memory_analysis().temp_size_in_bytes
    assert t_plain >= 3 * layer > t_rc


def test_parameter_flag_and_level3():
    widths = (256,) * 3
    _, step, net, _ = _train(True, steps=1, widths=widths, bias=False, parallel_optimizer_threshold=1)
    net[0].weight.parallel_optimizer_comm_recompute = False
    net[2].weight.parallel_optimizer_comm_recompute = True
    assert [s.recompute for s in optimizer_shard_plan(step).shards] == [False, True]
    ms.set_auto_parallel_context(parallel_optimizer_config={"optimizer_level": "level3"})
    assert [s.recompute for s in optimizer_shard_plan(step).shards] == [True, True]


# ---------------------------------------------------------------------------------- the launcher
def test_two_processes_of_four_devices(tmp_path):
    """2 processes x 4 devices through msrun: shards of 1/8 on each device, unsharded training's results."""
    import sys

    sys.path.insert(0, HERE)
    try:
        from test_msrun import _assert_reaped, _msrun
    finally:
        sys.path.remove(HERE)

    prefix = str(tmp_path / "out")
    rc, text, _, pids, _ = _msrun(tmp_path, [os.path.join(HERE, "scripts", "popt_train.py"), prefix], devices=4)
    assert rc == 0, text
    _assert_reaped(pids)
    # the reference: the same global batch on 8 devices of one process, unsharded
    _context(False)
    rng = np.random.default_rng(7)
    x, y = rng.normal(size=(32, 16)).astype(np.float32), rng.normal(size=(32, 4)).astype(np.float32)
    ms.set_seed(3)
    net = nn.SequentialCell([nn.Dense(16, 64), nn.ReLU(), nn.Dense(64, 4)])
    opt = nn.Adam(net.trainable_params(), 1e-2)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    ref_losses = [float(step(Tensor(x), Tensor(y)).asnumpy()) for _ in range(3)]
    for rank in (0, 1):
        got = np.load(f"{prefix}.rank{rank}.npz")
        assert int(got["size"]) == 2 and int(got["devices"]) == 8
        np.testing.assert_allclose(got["losses"], ref_losses, rtol=1e-5)
        for p in [*net.trainable_params(), opt.moment1[0]]:
            np.testing.assert_allclose(got["full." + p.name], p.asnumpy(), rtol=1e-5, atol=1e-6)
            shards = got["shard." + p.name]
            assert len(shards) == 4
            if p.shape[0] % 8 == 0 and math.prod(p.shape) * 4 >= 1024:
                assert all(tuple(s) == (p.shape[0] // 8, *p.shape[1:]) for s in shards), p.name
            else:
                assert all(tuple(s) == tuple(p.shape) for s in shards), p.name


# ---------------------------------------------------------------------------------- semi-auto parallel
@pytest.mark.parametrize("optimizer", ["momentum", "adam"])
def test_semi_auto_parallel_optimizer(optimizer):
    """Semi-auto (MatMul split over a "model" axis of 4, data axis of 2): each weight's slice and its
    state are split again over its replica group; training equals the unsharded semi-auto run."""
    import sys

    sys.path.insert(0, HERE)
    try:
        from test_semi_auto import _train as semi_train
    finally:
        sys.path.remove(HERE)
    ref_losses, ref_train, _ = semi_train(True, optimizer=optimizer)
    ref = {p.name: p.asnumpy() for p in ref_train.get_parameters()}
    losses, train, net = semi_train(True, optimizer=optimizer, enable_parallel_optimizer=True,
                                    parallel_optimizer_config={"parallel_optimizer_threshold": 0})
    np.testing.assert_allclose(losses, ref_losses, rtol=1e-6)
    layouts = train.parameter_layout_dict
    for p in train.get_parameters():
        np.testing.assert_allclose(p.asnumpy(), ref[p.name], rtol=1e-6, atol=1e-7, err_msg=p.name)
        if not p.shape:
            continue
        dev_mat, tmap, slice_shape, _, _, group = layouts[p.name]
        split = math.prod(dev_mat[len(dev_mat) - 1 - m] for m in tmap if m != -1)
        r = 8 // split  # the devices holding one slice
        if p.name in ("global_step",):
            continue
        # fc1: slice (8, 16) held by 2 devices; fc2.weight (8, 8) by 2; fc2.bias replicated on 8
        assert group == f"{r}-{p.name.split('.', 1)[1] if p.name.startswith('mom') else p.name}", p.name
        want = (slice_shape[0] // r, *slice_shape[1:])
        assert {tuple(s.data.shape) for s in p._value.addressable_shards} == {want}, p.name
    # member g of a replica group holds rows [g*s/r, (g+1)*s/r) of its slice (rank order)
    w = net.fc1.weight
    full = w.asnumpy()
    for s in w._value.addressable_shards:
        d = s.device.id
        rows = slice(8 * (d % 4) + 4 * (d // 4), 8 * (d % 4) + 4 * (d // 4) + 4)
        np.testing.assert_array_equal(np.asarray(s.data), full[rows])


def test_semi_auto_comm_recompute():
    """Semi-auto parallel (MatMul strategies over the 8 devices): comm recompute gathers the sharded
    weights again in the backward pass (XLA's partitioner, where the step constrains their uses)."""
    from sporax import ops

    class Deep(nn.Cell):
        def __init__(self):
            super().__init__()
            self.layers = nn.CellList([nn.Dense(256, 256, has_bias=False) for _ in range(4)])

        def construct(self, x):
            for layer in self.layers:
                x = ops.tanh(layer(x))
            return x

    def run(recompute, parallel=True):
        ms.context._reset()
        ms.set_context(mode=ms.GRAPH_MODE)
        if parallel:
            ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8,
                                         enable_parallel_optimizer=True,
                                         parallel_optimizer_config={"parallel_optimizer_threshold": 0})
        ms.set_seed(1)
        net = Deep()
        for layer in net.layers:
            layer.matmul.shard(((8, 1), (1, 1)))
        if recompute:
            net.recompute(parallel_optimizer_comm_recompute=True)
        step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Adam(net.trainable_params(), 1e-2))
        x = Tensor(np.random.default_rng(0).normal(size=(16, 256)).astype(np.float32))
        losses = [float(step(x, x).asnumpy()) for _ in range(2)]
        return losses, step, net

    from sporax.parallel import semi_auto

    one, _, _ = run(False, parallel=False)
    plain, plain_step, _ = run(False)
    losses, step, net = run(True)
    np.testing.assert_allclose(plain, one, rtol=1e-5)
    np.testing.assert_allclose(losses, plain, rtol=1e-6)
    assert all(s.data.shape == (32, 256) for s in net.layers[1].weight._value.addressable_shards)
    # 4 gathers in the forward pass; 3 again in the backward pass (not the first layer's: no input gradient)
    assert semi_auto.compiled_text(plain_step).count(" all-gather(") == 4
    assert semi_auto.compiled_text(step).count(" all-gather(") == 7


@pytest.mark.parametrize("config", [{"parallel_optimizer_threshold": 0},
                                    {"parallel_optimizer_threshold": 0, "optimizer_weight_shard_size": 1},
                                    {"parallel_optimizer_threshold": 0, "optimizer_weight_shard_size": 2},
                                    None])
def test_semi_auto_comm_plan_bytes_match_addressable_shards(config):
    """comm_plan of a semi-auto step: per parameter its slice and optimizer-shard split, the
    gathers and reduce-scatters of the sharded weights, and per-device bytes of weights, gradients
    and optimizer state equal to what each device holds (addressable shards)."""
    import sys

    sys.path.insert(0, HERE)
    try:
        from test_semi_auto import _train as semi_train
    finally:
        sys.path.remove(HERE)
    popt = {} if config is None else {"enable_parallel_optimizer": True, "parallel_optimizer_config": config}
    _, train, net = semi_train(True, steps=1, optimizer="adam", **popt)
    plan = comm_plan(train)
    opt = train.optimizer
    weights = list(opt._parameters)
    wid = {id(p) for p in weights}
    states = [p for p in opt.get_parameters() if id(p) not in wid]
    state_ids = {id(p) for p in states}
    others = [p for p in train.get_parameters() if id(p) not in state_ids]
    layouts = train.parameter_layout_dict

    def held(params, device):
        return sum(s.data.nbytes for p in params for s in p._value.addressable_shards if s.device == device)

    for d in net.fc1.weight._value.sharding.mesh.devices.flat:
        assert plan.param_bytes == held(others, d)
        assert plan.grad_bytes == held(weights, d)  # each gradient is stored (updated) as its weight is
        assert plan.opt_state_bytes == held(states, d)
    assert plan.parallel_mode == "semi_auto_parallel" and plan.degree == 8
    sharded = [p.name for p in weights if layouts[p.name][5]]
    rows = {r[0]: r for r in plan.rows}
    assert rows["fc1.weight"][8] == "[2, 4] [0, -1] slice (8, 16)"
    if config is None or config.get("optimizer_weight_shard_size") == 1:
        assert sharded == [] and (plan.opt_shard is None or not plan.opt_shard.shards)
        assert plan.count("reduce-scatter") == plan.count("all-gather") == 0
        assert rows["fc1.weight"][7] == "-"
        return
    if config.get("optimizer_weight_shard_size") == 2:  # fc2.bias (replicated on 8) has no 2-device split
        assert sorted(sharded) == sorted(s.name for s in plan.opt_shard.shards) == ["fc1.bias", "fc1.weight",
                                                                                     "fc2.weight"]
        assert rows["fc2.bias"][6:8] == ("XLA (SPMD)", "-")
        return
    # fc1.weight, fc1.bias, fc2.weight: slices held by 2 devices, split in 2; fc2.bias by 8, split in 8
    assert sorted(sharded) == sorted(s.name for s in plan.opt_shard.shards) == sorted(p.name for p in weights)
    assert rows["fc1.weight"][6:8] == ("reduce-scatter", "1/2") and rows["fc2.bias"][7] == "1/8"
    assert rows["moment1.fc1.weight"][7] == "1/2"
    assert plan.count("all-gather") == plan.count("reduce-scatter") == len(sharded)
    text = str(plan)
    assert "all-gather weight fc1.weight (forward): 512 bytes float32" in text  # its (8, 16) slice
    assert "reduce-scatter gradient fc1.weight (backward): 512 bytes float32" in text
    assert "per device: parameters" in text and "layout" in text
    # ZeRO-1/2 within each replica group: 1/r of every slice, the same for the optimizer's moments
    full = sum(math.prod(layouts[p.name][2]) * 4 for p in weights)
    assert plan.param_bytes < full and plan.gathered_bytes == full
