"""Mixed precision: Cell.to_float, auto_mixed_precision O1/O2/O3, build_train_network, Model(amp_level=...),
loss scale managers and cells, the loss scalers, checkpoint keys with loss scaling.

``golden/amp_losses.json`` holds REAL MindSpore 2.10's losses of the same MLP (``golden/amp_case.py``)
trained at O0/O2/O3 (``golden/make_amp_golden.py``); sporax's O2/O3 runs must follow them within
float16 tolerance.
"""

import json
import os
import sys

import numpy as np
import pytest

import sporax as ms
from sporax import Tensor, amp, nn
from sporax.train import DynamicLossScaleManager, FixedLossScaleManager, Model

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "golden"))
from amp_case import LR, MOMENTUM, SCALE, SIZES, STEPS, make_case  # noqa: E402

GOLDEN = json.load(open(os.path.join(HERE, "golden", "amp_losses.json")))
KEYS = json.load(open(os.path.join(HERE, "golden", "ckpt_names.json")))["loss_scale_keys"]


class MLP(nn.Cell):
    def __init__(self, weights, bn=False):
        super().__init__()
        self.fc1 = nn.Dense(SIZES[0], SIZES[1], weight_init=Tensor(weights[0][0]), bias_init=Tensor(weights[0][1]))
        self.fc2 = nn.Dense(SIZES[1], SIZES[2], weight_init=Tensor(weights[1][0]), bias_init=Tensor(weights[1][1]))
        self.fc3 = nn.Dense(SIZES[2], SIZES[3], weight_init=Tensor(weights[2][0]), bias_init=Tensor(weights[2][1]))
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm1d(SIZES[1]) if bn else None

    def construct(self, x):
        x = self.relu(self.fc1(x))
        if self.bn is not None:
            x = self.bn(x)
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def _loss():
    return nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")


def _run(level, bn=False, **model_kwargs):
    weights, batches = make_case()
    net = MLP(weights, bn)
    opt = nn.Momentum(net.trainable_params(), LR, MOMENTUM, loss_scale=SCALE)
    lsm = FixedLossScaleManager(SCALE, drop_overflow_update=False)
    model = Model(net, _loss(), opt, amp_level=level, loss_scale_manager=lsm, **model_kwargs)
    losses = []
    for i in range(STEPS):
        x, y = batches[i % len(batches)]
        losses.append(float(model.train_network(Tensor(x), Tensor(y)).asnumpy()))
    return model, net, np.array(losses)


@pytest.mark.parametrize("mode,level,bn", [(ms.GRAPH_MODE, "O2", False), (ms.GRAPH_MODE, "O3", False),
                                           (ms.GRAPH_MODE, "O2", True), (ms.PYNATIVE_MODE, "O2", True)])
def test_mixed_precision_losses_follow_mindspore(mode, level, bn):
    ms.set_context(mode=mode)
    model, net, losses = _run(level, bn)
    key = f"{level}_bn" if bn else level
    want = GOLDEN[key]
    # float16 tolerance: a few float16 ulps of the loss, grown over 30 steps of training
    np.testing.assert_allclose(losses, want["losses"], rtol=2e-3, atol=2e-3)
    # and it is float16 arithmetic: closer to MindSpore's O2 run than to its float32 run
    fp32 = np.array(GOLDEN["O0_bn" if bn else "O0"]["losses"])
    assert np.abs(losses - fp32).max() > 1e-5
    assert np.abs(losses - np.array(want["losses"])).max() < np.abs(losses - fp32).max()
    assert str(net.fc1.weight.dtype) == want["weight_dtype"] == "Float32"  # float32 master weights
    x = make_case()[1][0][0]
    assert str(model.predict(Tensor(x)).dtype) == want["predict_dtype"]


def test_bfloat16_compute():
    net = MLP(make_case()[0])
    out = amp.auto_mixed_precision(net, "O3", ms.bfloat16)
    x = Tensor(make_case()[1][0][0])
    assert out(x).dtype == ms.float32 and net(x).dtype == ms.bfloat16 and net.fc1.weight.dtype == ms.float32
    assert not np.allclose(net(x).asnumpy().astype(np.float32), MLP(make_case()[0])(x).asnumpy(), atol=1e-4)


def test_to_float_and_the_amp_levels_structure():
    net = MLP(make_case()[0], bn=True)
    x = Tensor(make_case()[1][0][0])
    assert net.to_float(ms.float16) is net
    assert net(x).dtype == ms.float16 and net.fc1.weight.dtype == ms.float32
    net.to_float(ms.float32)
    assert net(x).dtype == ms.float32
    with pytest.raises(ValueError, match="'dst_type' must be mstype.float32"):
        net.to_float(ms.int32)
    # O2: BatchNorm kept in float32 behind a cast back to float16; outputs float32
    net = MLP(make_case()[0], bn=True)
    wrapped = amp.auto_mixed_precision(net, "O2")
    assert type(wrapped).__name__ == "_OutputTo32" and wrapped.fc1 is net.fc1
    assert type(net.bn).__name__ == "_OutputTo16" and net.bn._backbone._mixed_precision_type == ms.float32
    assert net.fc1._mixed_precision_type == ms.float16
    assert wrapped(x).dtype == ms.float32
    assert [p.name for p in wrapped.get_parameters()] == [p.name for p in MLP(make_case()[0], True).get_parameters()]
    # O1: white-listed cells cast, the rest untouched
    net = MLP(make_case()[0], bn=True)
    out = amp.auto_mixed_precision(net, "O1")
    assert type(net.fc1).__name__ == "_OutputTo32" and net.bn._mixed_precision_type is None
    assert out(x).dtype == ms.float32
    np.testing.assert_allclose(out(x).asnumpy(), MLP(make_case()[0], True)(x).asnumpy(), rtol=2e-2, atol=2e-2)
    with pytest.raises(ValueError, match="'auto'"):
        amp.auto_mixed_precision(MLP(make_case()[0]), "auto")
    with pytest.raises(ValueError, match="dtype should be one of"):
        amp.auto_mixed_precision(MLP(make_case()[0]), "O2", ms.float32)
    with pytest.raises(TypeError, match="should be Cell"):
        amp.auto_mixed_precision(lambda v: v, "O2")
    # custom lists
    net = amp.custom_mixed_precision(MLP(make_case()[0], True), black_list=amp.get_black_list())
    assert net(x).dtype == ms.float32
    with pytest.raises(ValueError, match="one of white_list and black_list"):
        amp.custom_mixed_precision(MLP(make_case()[0]))
    with pytest.raises(TypeError, match="should be a class"):
        amp.custom_mixed_precision(MLP(make_case()[0]), white_list=[3])


@pytest.mark.parametrize("mode,init", [(ms.GRAPH_MODE, None), (ms.PYNATIVE_MODE, 2 ** 18)])
def test_dynamic_loss_scale_skips_overflowing_steps(mode, init):
    ms.set_context(mode=mode)
    weights, batches = make_case()
    net = MLP(weights)
    opt = nn.Momentum(net.trainable_params(), LR, MOMENTUM)
    # O2's default manager (2**24) overflows float16 at first: those steps are skipped and the scale halves
    kwargs = {} if init is None else {"loss_scale_manager": DynamicLossScaleManager(init)}
    top = 24 if init is None else 18
    model = Model(net, _loss(), opt, amp_level="O2", **kwargs)
    step = model.train_network
    assert isinstance(step, nn.TrainOneStepWithLossScaleCell)
    before = net.fc1.weight.asnumpy().copy()
    scales, overflows = [], []
    for i in range(12 if init is None else 6):
        x, y = batches[i % 6]
        loss, overflow, scale = step(Tensor(x), Tensor(y))
        scales.append(float(scale.asnumpy()))
        overflows.append(bool(overflow.asnumpy()))
        if i == 0:
            assert overflows[0] and np.array_equal(net.fc1.weight.asnumpy(), before)
            assert int(opt.global_step.asnumpy()[0]) == 0  # the optimizer did not step
    assert scales[0] == 2.0 ** top and scales[1] == 2.0 ** (top - 1)
    first_ok = overflows.index(False)
    assert all(overflows[:first_ok]) and not any(overflows[first_ok:])
    assert scales[first_ok] == 2.0 ** (top - first_ok)
    assert int(opt.global_step.asnumpy()[0]) == len(scales) - first_ok
    assert not np.array_equal(net.fc1.weight.asnumpy(), before)
    assert float(step.scale_sense.asnumpy()) == 2.0 ** (top - first_ok)


def test_dynamic_update_cell_grows_the_scale_and_model_keeps_the_manager_in_step():
    weights, batches = make_case()
    net = MLP(weights)
    opt = nn.Momentum(net.trainable_params(), LR, MOMENTUM)
    lsm = DynamicLossScaleManager(init_loss_scale=2 ** 10, scale_factor=2, scale_window=3)
    model = Model(net, _loss(), opt, amp_level="O3", loss_scale_manager=lsm)

    class Batches:
        def __len__(self):
            return 6

        def __iter__(self):
            return iter(batches)

    model.train(1, Batches())
    # 6 finite steps, window 3: doubled after steps 3 and 6, both in the cell and in the manager
    assert float(model.train_network.scale_sense.asnumpy()) == 2.0 ** 12
    assert lsm.get_loss_scale() == 2 ** 12
    assert int(model.train_network.loss_scaling_manager.cur_iter.asnumpy()) == 7


def test_loss_scale_checkpoint_keys_match_mindspore(tmp_path):
    def cell(sense):
        net = nn.Dense(4, 3)
        opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
        return nn.TrainOneStepWithLossScaleCell(nn.WithLossCell(net, _loss()), opt, scale_sense=sense)

    got = cell(nn.DynamicLossScaleUpdateCell(2 ** 12, 2, 1000))
    assert sorted(p.name for p in got.get_parameters()) == sorted(KEYS["dynamic_update_cell"])
    assert sorted(p.name for p in cell(nn.FixedLossScaleUpdateCell(128.0)).get_parameters()) == sorted(
        KEYS["fixed_update_cell"])
    tensor_cell = cell(Tensor(np.float32(64.0)))
    ms.save_checkpoint(tensor_cell, str(tmp_path / "c.ckpt"))
    assert sorted(ms.load_checkpoint(str(tmp_path / "c.ckpt"))) == KEYS["tensor_sense_saved"]
    net = nn.Dense(4, 3)
    m = Model(net, _loss(), nn.Momentum(net.trainable_params(), 0.1, 0.9), amp_level="O2",
              loss_scale_manager=FixedLossScaleManager(128.0, drop_overflow_update=False))
    assert sorted(p.name for p in m.train_network.get_parameters()) == sorted(KEYS["model_O2_fixed_no_drop"])
    with pytest.raises(ValueError, match="shape of 'scale_sense'"):
        cell(Tensor(np.ones(3, np.float32)))
    with pytest.raises(TypeError, match="must be Cell or Tensor"):
        cell(2.0)
    tensor_cell.set_sense_scale(Tensor(np.float32(8.0)))
    assert float(tensor_cell.scale_sense.asnumpy()) == 8.0


def test_model_and_build_train_network_arguments():
    net = nn.Dense(4, 3)
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    with pytest.raises(ValueError, match="'optimizer' is None"):
        Model(net, _loss(), amp_level="O2")
    with pytest.raises(ValueError, match="should be 'loss_scale_manager'"):
        Model(net, _loss(), opt, loss_scale=2)
    with pytest.raises(ValueError, match="'auto'"):
        Model(net, _loss(), opt, amp_level="auto")
    with pytest.raises(ValueError, match="'level'"):
        amp.build_train_network(net, opt, _loss(), level="O4")
    with pytest.raises(ValueError, match="Unsupported arg"):
        amp.build_train_network(net, opt, _loss(), level="O2", loss_scale=3)
    with pytest.raises(TypeError, match="cast_model_type"):
        amp.build_train_network(net, opt, _loss(), level="O2", cast_model_type=ms.bfloat16)
    with pytest.raises(TypeError, match="optimizer"):
        amp.build_train_network(net, "sgd", _loss())
    step = amp.build_train_network(net, opt, _loss(), level="O3")
    assert type(step) is nn.TrainOneStepCell and step.training and net._mixed_precision_type == ms.float16
    with pytest.raises(ValueError, match="'loss_scale' must be >= 1"):
        FixedLossScaleManager(0.5)
    with pytest.raises(ValueError, match="'scale_window'"):
        DynamicLossScaleManager(scale_window=0)
    lsm = DynamicLossScaleManager(8, 2, 2)
    for overflow in (True, False, False, True):
        lsm.update_loss_scale(overflow)
    assert lsm.get_loss_scale() == 4


@pytest.mark.parametrize("mode", [ms.GRAPH_MODE, ms.PYNATIVE_MODE])
def test_loss_scalers_in_a_functional_loop(mode):
    ms.set_context(mode=mode)
    scaler = amp.DynamicLossScaler(scale_value=2 ** 4, scale_factor=2, scale_window=2)
    assert float(scaler.scale(Tensor(np.float32(3.0))).asnumpy()) == 48.0
    g = scaler.unscale((Tensor(np.float32(32.0)), Tensor(np.ones(2, np.float32) * 16)))
    assert float(g[0].asnumpy()) == 2.0 and g[1].asnumpy().tolist() == [1.0, 1.0]
    assert bool(amp.all_finite(g).asnumpy())
    assert not bool(amp.all_finite([Tensor(np.array([1.0, np.inf], np.float32))]).asnumpy())

    @ms.jit
    def adjust(finite):
        return scaler.adjust(finite)

    for finite in (True, True, False, True):
        adjust(Tensor(np.array(finite)))
    # +1 (counter 1), +1 -> doubled (32, counter 0), overflow -> 16 (counter 0), +1 (counter 1)
    assert float(scaler.scale_value.asnumpy()) == 16.0 and int(scaler.counter.asnumpy()) == 1
    static = amp.StaticLossScaler(4)
    assert float(static.unscale(static.scale(Tensor(np.float32(5.0)))).asnumpy()) == 5.0
    assert static.adjust(True) is False
    with pytest.raises(ValueError, match="'scale_value' must be > 1"):
        amp.StaticLossScaler(0.5)


LS = json.load(open(os.path.join(HERE, "golden", "loss_scale.json")))


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_loss_scale_update_rules_match_mindspore(mode):
    ms.set_context(mode=mode)
    cell = nn.DynamicLossScaleUpdateCell(loss_scale_value=2 ** 10, scale_factor=2, scale_window=3)
    scale = ms.Parameter(Tensor(np.float32(2 ** 10)), name="scale_sense")
    got = []
    for ov in LS["overflows"]:
        cell(scale, Tensor(np.array(ov)))
        got.append([float(scale.asnumpy()), int(cell.cur_iter.asnumpy()), int(cell.last_overflow_iter.asnumpy())])
    assert got == LS["update_cell"]
    scaler = amp.DynamicLossScaler(scale_value=2 ** 10, scale_factor=2, scale_window=3)
    got = []
    for ov in LS["overflows"]:
        scaler.adjust(Tensor(np.array(not ov)))
        got.append([float(scaler.scale_value.asnumpy()), int(scaler.counter.asnumpy())])
    assert got == LS["scaler"]
    manager = amp.DynamicLossScaleManager(init_loss_scale=2 ** 10, scale_factor=2, scale_window=3)
    got = []
    for ov in LS["overflows"]:
        manager.update_loss_scale(ov)
        got.append(float(manager.get_loss_scale()))
    assert got == LS["manager"]
    fin = LS["all_finite"]
    assert bool(amp.all_finite([Tensor(np.ones(3, np.float32)), Tensor(np.zeros(2, np.float16))]).asnumpy()) == fin["finite"]
    assert bool(amp.all_finite([Tensor(np.ones(3, np.float32)), Tensor(np.array([np.inf], np.float32))]).asnumpy()) == fin["inf"]
    assert bool(amp.all_finite((Tensor(np.array([np.nan], np.float16)),)).asnumpy()) == fin["nan"]
    static = amp.StaticLossScaler(8)
    assert [float(v.asnumpy()) for v in static.scale((Tensor(np.float32(1.5)), Tensor(np.float32(-2.0))))] == LS["static_scale"]
    assert [float(v.asnumpy()) for v in static.unscale((Tensor(np.float32(12.0)),))] == LS["static_unscale"]


def test_o1_casts_white_listed_operator_attributes_and_model_o1_trains():
    from sporax import ops

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.matmul = ops.MatMul(transpose_b=True)
            self.w = ms.Parameter(Tensor(np.full((3, 4), 0.1, np.float32)), name="w")

        def construct(self, x):
            return self.matmul(x, self.w) * 2

    net = Net()
    out = amp.auto_mixed_precision(net, "O1")
    x = Tensor(np.linspace(0, 1, 8, dtype=np.float32).reshape(2, 4))
    y = out(x)
    assert y.dtype == ms.float32 and net.w.dtype == ms.float32
    np.testing.assert_allclose(y.asnumpy(), x.asnumpy().sum(1, keepdims=True).repeat(3, 1) * 0.2, rtol=2e-3)
    weights, batches = make_case()
    mlp = MLP(weights)
    model = Model(mlp, _loss(), nn.Momentum(mlp.trainable_params(), LR, MOMENTUM), amp_level="O1")
    assert type(mlp.fc1).__name__ == "_OutputTo32"
    losses = [float(model.train_network(Tensor(bx), Tensor(by)).asnumpy()) for bx, by in batches[:3]]
    np.testing.assert_allclose(losses, GOLDEN["O0"]["losses"][:3], rtol=5e-3)
