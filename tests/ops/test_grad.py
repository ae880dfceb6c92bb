"""Gradient operations: return structures as MindSpore 2.10, values vs hand derivation and finite differences."""

import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, ParameterTuple, Tensor, nn, ops


class Affine(nn.Cell):
    """sum(x * w * y + b): d/dx = w*y, d/dw = x*y, d/db = 1 (with x=3, y=5, w=2: 10, 15, 1)."""

    def __init__(self, b_requires_grad=True):
        super().__init__()
        self.w = Parameter(Tensor(np.array([2.0], np.float32)), name="w")
        self.b = Parameter(Tensor(np.array([1.0], np.float32)), name="b", requires_grad=b_requires_grad)

    def construct(self, x, y):
        return (x * self.w * y + self.b).sum()


class Smooth(nn.Cell):
    """A small nonlinear network in float64, for finite differences."""

    def __init__(self):
        super().__init__()
        rng = np.random.default_rng(0)
        self.w1 = Parameter(Tensor(rng.standard_normal((4, 3))), name="w1")
        self.w2 = Parameter(Tensor(rng.standard_normal((3,))), name="w2")

    def construct(self, x):
        h = ops.tanh(ops.matmul(x, self.w1))
        return (ops.sigmoid(h * self.w2) ** 2).sum()


X = Tensor(np.array([3.0], np.float32))
Y = Tensor(np.array([5.0], np.float32))


def _np(t):
    return t.asnumpy()


def _structure(r):
    if isinstance(r, tuple):
        return tuple(_structure(i) for i in r)
    assert isinstance(r, Tensor)
    return "T"


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_grad_operation_structures_and_values(mode):
    ms.set_context(mode=mode)
    net = Affine()
    w = ParameterTuple(net.trainable_params())
    g = ops.GradOperation()(net)(X, Y)
    assert _structure(g) == "T" and np.allclose(_np(g), [10.0])
    g = ops.GradOperation(get_by_list=True)(net, w)(X, Y)
    assert _structure(g) == ("T", "T")
    assert np.allclose(_np(g[0]), [15.0]) and np.allclose(_np(g[1]), [1.0])
    g = ops.GradOperation(get_all=True)(net)(X, Y)
    assert _structure(g) == ("T", "T") and np.allclose(_np(g[1]), [6.0])
    g = ops.GradOperation(get_all=True, get_by_list=True)(net, w)(X, Y)
    assert _structure(g) == (("T", "T"), ("T", "T"))
    g = ops.GradOperation(sens_param=True)(net)(X, Y, Tensor(2.0, ms.float32))
    assert np.allclose(_np(g), [20.0])
    g = ops.GradOperation(get_by_list=True)(net)(X, Y)  # weights default to trainable_params
    assert _structure(g) == ("T", "T")


def test_functional_grad_structures_match_mindspore():
    net = Affine()
    w = net.trainable_params()
    assert _structure(ops.grad(net)(X, Y)) == "T"
    assert _structure(ops.grad(net, (0, 1))(X, Y)) == ("T", "T")
    assert _structure(ops.grad(net, (0,))(X, Y)) == "T"
    assert _structure(ops.grad(net, None, w)(X, Y)) == ("T", "T")
    assert _structure(ops.grad(net, 0, w)(X, Y)) == ("T", ("T", "T"))
    assert _structure(ops.grad(net, None, net.w)(X, Y)) == "T"
    assert _structure(ops.value_and_grad(net)(X, Y)) == ("T", "T")
    assert _structure(ops.value_and_grad(net, None, w)(X, Y)) == ("T", ("T", "T"))
    assert _structure(ops.value_and_grad(net, (0, 1), w)(X, Y)) == ("T", (("T", "T"), ("T", "T")))
    value, grads = ops.value_and_grad(net, 0, w)(X, Y)
    assert float(value) == pytest.approx(31.0)
    assert np.allclose(_np(grads[0]), [10.0]) and np.allclose(_np(grads[1][0]), [15.0])


def test_multiple_outputs_and_has_aux():
    def f(x, y):
        return (x * y).sum(), x * 2

    # without has_aux every output is differentiated (MindSpore: 5 + 2 = 7)
    assert np.allclose(_np(ops.grad(f, 0)(X, Y)), [7.0])
    value, g = ops.value_and_grad(f, 0)(X, Y)
    assert isinstance(value, tuple) and len(value) == 2 and np.allclose(_np(g), [7.0])
    g, aux = ops.grad(f, 0, has_aux=True)(X, Y)
    assert np.allclose(_np(g), [5.0]) and isinstance(aux, tuple) and np.allclose(_np(aux[0]), [6.0])
    (loss, aux0), g = ops.value_and_grad(f, 0, has_aux=True)(X, Y)
    assert float(loss) == pytest.approx(15.0) and np.allclose(_np(aux0), [6.0]) and np.allclose(_np(g), [5.0])
    with pytest.raises(ValueError, match="has_aux is True, origin fn requires more than one outputs"):
        ops.grad(lambda x, y: (x * y).sum(), 0, has_aux=True)(X, Y)


def test_requires_grad_false_weight_gets_zero_gradient():
    net = Affine(b_requires_grad=False)
    assert [p.name for p in net.trainable_params()] == ["w"]
    gw, gb = ops.grad(net, None, [net.w, net.b])(X, Y)
    assert np.allclose(_np(gw), [15.0]) and np.allclose(_np(gb), [0.0])


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_gradients_match_finite_differences(mode):
    ms.set_context(mode=mode)
    net = Smooth()
    x = Tensor(np.random.default_rng(1).standard_normal((5, 4)))
    weights = net.trainable_params()
    g_x, g_w = ops.grad(net, 0, weights)(x)
    eps = 1e-6

    def f(xv, w1, w2):
        h = np.tanh(xv @ w1)
        return ((1 / (1 + np.exp(-h * w2))) ** 2).sum()

    base = [x.asnumpy(), net.w1.asnumpy(), net.w2.asnumpy()]
    for k, analytic in enumerate([g_x, g_w[0], g_w[1]]):
        numeric = np.zeros_like(base[k])
        for idx in np.ndindex(base[k].shape):
            plus = [b.copy() for b in base]
            minus = [b.copy() for b in base]
            plus[k][idx] += eps
            minus[k][idx] -= eps
            numeric[idx] = (f(*plus) - f(*minus)) / (2 * eps)
        np.testing.assert_allclose(analytic.asnumpy(), numeric, rtol=1e-5, atol=1e-7)


def test_stop_gradient():
    def h(x):
        return (ops.stop_gradient(x * x) + x).sum()

    assert np.allclose(_np(ops.grad(h)(X)), [1.0])
    assert np.allclose(_np(ops.stop_gradient(X)), [3.0])


def test_argument_errors():
    net = Affine()
    with pytest.raises(ValueError, match="can not be None at the same time"):
        ops.grad(net, None, None)
    with pytest.raises(ValueError, match="grad_position"):
        ops.grad(net, 5)(X, Y)
    with pytest.raises(TypeError, match="'weights' should be"):
        ops.grad(net, 0, [1, 2])
    with pytest.raises(TypeError, match="'get_all' should be a bool"):
        ops.GradOperation(get_all=1)


class Counting(nn.Cell):
    """Writes a running sum during its forward pass (like BatchNorm's moving statistics)."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([2.0], np.float32)), name="w")
        self.seen = Parameter(Tensor(np.array([0.0], np.float32)), name="seen", requires_grad=False)

    def construct(self, x):
        self.seen.set_data(self.seen + x.sum())
        return (x * self.w).sum()


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_state_written_during_forward_is_kept(mode):
    ms.set_context(mode=mode)
    net = Counting()
    for _ in range(3):
        g = ops.grad(net, None, net.trainable_params())(X)
    assert np.allclose(_np(g[0]), [3.0])
    assert np.allclose(net.seen.asnumpy(), [9.0])


def test_plain_function_writing_an_unbound_parameter_is_adopted():
    net = Counting()

    def loss_fn(x):
        return net(x) * 2

    g = ops.grad(loss_fn, None, [net.w])(X)
    assert np.allclose(_np(g[0]), [6.0])
    assert np.allclose(net.seen.asnumpy(), [3.0])


class Branchy(nn.Cell):
    """Python control flow on a tensor value: cannot be traced, so PyNative falls back to eager vjp."""

    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([2.0], np.float32)), name="w")

    def construct(self, x):
        if float(x.sum()) > 0:
            return (x * self.w).sum()
        return (x * self.w * self.w).sum()


def test_pynative_value_dependent_control_flow():
    net = Branchy()
    assert np.allclose(_np(ops.grad(net, None, net.w)(X)), [3.0])
    assert np.allclose(_np(ops.grad(net, None, net.w)(Tensor(np.array([-1.0], np.float32)))), [-4.0])


class Scaled(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([2.0], np.float32)), name="w")
        self.scale = 1.0
        self.offset = Tensor(np.array([0.0], np.float32))

    def construct(self, x):
        return ((x * self.w + self.offset) * self.scale).sum()


def test_pynative_gradients_follow_python_attribute_changes():
    net = Scaled()
    g = ops.grad(net, None, net.w)
    assert np.allclose(_np(g(X)), [3.0])
    net.scale = 2.0
    assert np.allclose(_np(g(X)), [6.0])
    net.offset.assign_value(Tensor(np.array([1.0], np.float32)))
    value, grads = ops.value_and_grad(net, None, net.w)(X)
    assert float(value) == pytest.approx(14.0) and np.allclose(_np(grads), [6.0])
    for i in range(20):  # an attribute changing on every call ends in eager differentiation
        net.scale = float(i + 1)
        assert np.allclose(_np(g(X)), [3.0 * (i + 1)])
    assert net._jit_cache["bprop"].get("eager_only")


def test_return_ids_pairs_gradients_with_their_targets():
    net = Affine()
    pos, = ops.grad(net, 0, None, return_ids=True)(X, Y)[:1]
    assert pos == 0
    pairs = ops.grad(net, (0, 1), None, return_ids=True)(X, Y)
    assert [p[0] for p in pairs] == [0, 1] and np.allclose(_np(pairs[1][1]), [6.0])
    by_name = ops.grad(net, None, net.trainable_params(), return_ids=True)(X, Y)
    assert [p[0] for p in by_name] == ["w", "b"] and np.allclose(_np(by_name[0][1]), [15.0])
    both = ops.grad(net, 0, net.trainable_params(), return_ids=True)(X, Y)
    assert both[0][0] == 0 and both[1][1][0] == "b"
