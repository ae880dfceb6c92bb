"""``if all_finite(grads):`` inside ``@jit`` / GRAPH_MODE, as MindSpore's loss-scale tutorial writes it.

The tutorial step against MindSpore 2.10 (``fixtures/amp_tutorial_golden.npz``), and the path
mechanism of :mod:`sporax.common._branching` on its own: else branches, several conditions,
mismatched branches, ``while`` on a Tensor, and a bare ``jax.jit``.
"""

import os

import jax
import jax.numpy as jnp
import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, jit, nn, ops, value_and_grad
from sporax.amp import DynamicLossScaler, all_finite
from sporax.common import api

G = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "amp_tutorial_golden.npz"))


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.d1 = nn.Dense(4, 8, weight_init=Tensor(G["input::w1"]), bias_init="zeros")
        self.relu = nn.ReLU()
        self.d2 = nn.Dense(8, 3, weight_init="ones", bias_init="zeros")

    def construct(self, x):
        return self.d2(self.relu(self.d1(x)))


@pytest.mark.parametrize("mode", ["graph", "pynative"])
def test_loss_scale_tutorial_step_matches_mindspore(mode):
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    model = Net()
    loss_fn = nn.CrossEntropyLoss()
    optimizer = nn.SGD(model.trainable_params(), 0.1)
    loss_scaler = DynamicLossScaler(scale_value=2**16, scale_factor=2, scale_window=2)

    def forward_fn(data, label):
        logits = model(data)
        loss = loss_fn(logits, label)
        loss = loss_scaler.scale(loss)
        return loss, logits

    grad_fn = value_and_grad(forward_fn, None, optimizer.parameters, has_aux=True)

    @jit
    def train_step(data, label):
        (loss, _), grads = grad_fn(data, label)
        loss = loss_scaler.unscale(loss)
        is_finite = all_finite(grads)
        if is_finite:
            grads = loss_scaler.unscale(grads)
            optimizer(grads)
        loss_scaler.adjust(is_finite)
        return loss

    traces = api._stats["traces"]
    for step in range(5):
        xs = G["input::x"] * (np.float32(1e38) if step == 2 else np.float32(1.0))
        loss = train_step(Tensor(xs), Tensor(G["input::y"]))
        np.testing.assert_allclose(loss.asnumpy(), G[f"{mode}::loss{step}"], rtol=1e-5)
        assert float(loss_scaler.scale_value.asnumpy()) == float(G[f"{mode}::scale{step}"]), step
        np.testing.assert_allclose(model.d1.weight.asnumpy(), G[f"{mode}::w1_{step}"], rtol=1e-5, atol=1e-6)
    assert api._stats["traces"] - traces == 1  # one compilation, both branches inside


def test_if_else_and_chained_conditions_in_graph_mode():
    class Step(nn.Cell):
        def __init__(self):
            super().__init__()
            self.p = Parameter(Tensor(np.zeros(2, np.float32)), name="p")
            self.n = Parameter(Tensor(np.int32(0)), name="n")

        def construct(self, x):
            if x.sum() > 0 and x.max() < 10:
                self.p.set_data(self.p + x)
                out = x * 2
            elif x.sum() > 0:
                out = x - 10
            else:
                self.n.set_data(self.n + 1)
                out = -x
            if not (x.min() > -100):
                out = out * 0
            return out, self.n + 0

    ms.set_context(mode=ms.GRAPH_MODE)
    net = Step()
    traces = api._stats["traces"]
    out, n = net(Tensor(np.array([1.0, 2.0], np.float32)))
    np.testing.assert_array_equal(out.asnumpy(), [2.0, 4.0])
    np.testing.assert_array_equal(net.p.asnumpy(), [1.0, 2.0])
    out, n = net(Tensor(np.array([11.0, 2.0], np.float32)))
    np.testing.assert_array_equal(out.asnumpy(), [1.0, -8.0])
    np.testing.assert_array_equal(net.p.asnumpy(), [1.0, 2.0])
    out, n = net(Tensor(np.array([-1.0, -2.0], np.float32)))
    np.testing.assert_array_equal(out.asnumpy(), [1.0, 2.0])
    assert int(n.asnumpy()) == 1 and int(net.n.asnumpy()) == 1
    out, _ = net(Tensor(np.array([-1000.0, -2.0], np.float32)))
    np.testing.assert_array_equal(out.asnumpy(), [0.0, 0.0])
    assert api._stats["traces"] - traces == 1
    ms.set_context(mode=ms.PYNATIVE_MODE)
    out, _ = Step()(Tensor(np.array([11.0, 2.0], np.float32)))  # eager: plain Python
    np.testing.assert_array_equal(out.asnumpy(), [1.0, -8.0])


def test_branches_must_agree():
    @jit
    def f(x):
        if x.sum() > 0:
            return x
        return x.astype(ms.int32)

    with pytest.raises(TypeError, match="different shapes or dtypes"):
        f(Tensor(np.ones(2, np.float32)))

    @jit
    def g(x):
        if x.sum() > 0:
            return x, x
        return x

    with pytest.raises(TypeError, match="different structures"):
        g(Tensor(np.ones(2, np.float32)))


def test_while_on_a_tensor_and_ambiguous_truth_are_refused():
    @jit
    def f(x):
        while x.sum() < 100:
            x = x * 2
        return x

    with pytest.raises(RuntimeError, match="'while' on a Tensor"):
        f(Tensor(np.ones(2, np.float32)))

    @jit
    def g(x):
        return x * 2 if x > 0 else x

    with pytest.raises(ValueError, match="more than one element"):
        g(Tensor(np.ones(2, np.float32)))


def test_bare_jax_jit_names_the_fix():
    def f(a):
        t = Tensor._wrap(a)
        return a if t.sum() > 0 else -a

    with pytest.raises(TypeError, match="ops.select"):
        jax.jit(f)(jnp.ones(2))
    assert ops.select is not None


def test_if_inside_a_differentiated_function_under_jit():
    w = Parameter(Tensor(np.array([1.0, -2.0], np.float32)), name="w")

    def fwd(x):
        y = (x * w).sum()
        if y > 0:
            return y * 2
        return y * 3

    grad_fn = value_and_grad(fwd, None, [w])

    @jit
    def step(x):
        return grad_fn(x)

    for xv, scale in (([3.0, 1.0], 2.0), ([1.0, 3.0], 3.0)):
        x = np.array(xv, np.float32)
        loss, (g,) = step(Tensor(x))
        np.testing.assert_allclose(loss.asnumpy(), scale * float((x * [1.0, -2.0]).sum()))
        np.testing.assert_allclose(g.asnumpy(), scale * x)
