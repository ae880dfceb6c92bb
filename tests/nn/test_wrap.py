"""Training wrappers: TrainOneStepCell in both modes, frozen parameters, WithEvalCell, ForwardValueAndGrad."""

import numpy as np
import pytest

import sporax as ms
from sporax import Tensor, nn, ops
from sporax.common import api


class MLP(nn.Cell):
    def __init__(self, frozen_bias=False):
        super().__init__()
        self.fc1 = nn.Dense(6, 8)
        self.relu = nn.ReLU()
        self.fc2 = nn.Dense(8, 3)
        if frozen_bias:
            self.fc1.bias.requires_grad = False

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


def _data(n=16):
    rng = np.random.default_rng(0)
    return Tensor(rng.standard_normal((n, 6)).astype(np.float32)), Tensor(rng.integers(0, 3, n).astype(np.int32))


def _train(mode, steps=5, frozen_bias=False, sens=1.0):
    ms.set_context(mode=mode)
    ms.set_seed(11)
    net = MLP(frozen_bias)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt, sens=sens)
    step.set_train()
    x, y = _data()
    bias0 = net.fc1.bias.asnumpy()
    losses = [float(step(x, y).asnumpy()) for _ in range(steps)]
    return losses, net, bias0


def test_graph_and_pynative_give_the_same_losses():
    before = api.compile_count()
    graph, net_g, _ = _train(ms.GRAPH_MODE)
    assert api.compile_count() - before == 1  # five steps, one compilation
    pynative, net_p, _ = _train(ms.PYNATIVE_MODE)
    np.testing.assert_allclose(graph, pynative, rtol=1e-5)
    np.testing.assert_allclose(net_g.fc2.weight.asnumpy(), net_p.fc2.weight.asnumpy(), rtol=1e-5, atol=1e-6)
    assert graph[-1] < graph[0]


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_requires_grad_false_parameters_are_not_updated(mode):
    losses, net, bias0 = _train(mode, frozen_bias=True)
    np.testing.assert_array_equal(net.fc1.bias.asnumpy(), bias0)
    assert losses[-1] < losses[0]


def test_sens_scales_the_update():
    ms.set_context(mode=ms.PYNATIVE_MODE)
    x, y = _data()
    grads = {}
    for sens in (1.0, 2.0):
        ms.set_seed(11)
        net = MLP()
        loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
        step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), opt, sens=sens, return_grad=True)
        _, g = step(x, y)
        grads[sens] = g[0].asnumpy()
    np.testing.assert_allclose(grads[2.0], 2 * grads[1.0], rtol=1e-6)


def test_with_loss_and_eval_cells():
    net = MLP()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    x, y = _data()
    with_loss = nn.WithLossCell(net, loss)
    assert with_loss.backbone_network is net
    assert [p.name for p in with_loss.trainable_params()] == [p.name for p in net.trainable_params()]
    l_eval, logits, label = nn.WithEvalCell(net, loss, add_cast_fp32=True)(x, y)
    assert logits.shape == (16, 3) and logits.dtype == ms.float32 and label.dtype == ms.int32
    assert float(l_eval.asnumpy()) == pytest.approx(float(with_loss(x, y).asnumpy()), rel=1e-6)
    with pytest.raises(TypeError, match="'backbone' should be a Cell"):
        nn.WithLossCell(lambda x: x, loss)


def test_forward_value_and_grad():
    net = MLP()
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    with_loss = nn.WithLossCell(net, loss)
    weights = with_loss.trainable_params()
    x, y = _data()
    value, grads = nn.ForwardValueAndGrad(with_loss, weights, get_by_list=True)(x, y)
    ref_value, ref_grads = ops.value_and_grad(with_loss, None, weights)(x, y)
    assert float(value.asnumpy()) == pytest.approx(float(ref_value.asnumpy()))
    for a, b in zip(grads, ref_grads):
        np.testing.assert_allclose(a.asnumpy(), b.asnumpy(), rtol=1e-6)


class NoisyNet(nn.Cell):
    """Dropout (random key state) and BatchNorm (statistics written in the forward pass)."""

    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(6, 16)
        self.bn = nn.BatchNorm1d(16)
        self.drop = nn.Dropout(p=0.3)
        self.fc2 = nn.Dense(16, 3)

    def construct(self, x):
        return self.fc2(self.drop(self.bn(self.fc1(x))))


def test_dropout_and_batchnorm_train_identically_in_both_modes():
    results = []
    for mode in (ms.PYNATIVE_MODE, ms.GRAPH_MODE):
        ms.set_context(mode=mode)
        ms.set_seed(5)
        net = NoisyNet()
        loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
        step = nn.TrainOneStepCell(nn.WithLossCell(net, loss), nn.Momentum(net.trainable_params(), 0.05, 0.9))
        step.set_train()
        x, y = _data()
        losses = [float(step(x, y).asnumpy()) for _ in range(5)]
        results.append((losses, net.bn.moving_mean.asnumpy()))
    np.testing.assert_allclose(results[0][0], results[1][0], rtol=1e-5)
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-4, atol=1e-6)
    assert not np.allclose(results[1][1], 0.0)
