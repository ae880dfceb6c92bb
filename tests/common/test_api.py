"""jit / GRAPH_MODE: state threading, compile once per signature, donation safety, errors."""

import jax.numpy as jnp
import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, nn, ops
from sporax.common import _binding, api
from sporax.common.initializer import Normal


class Scale(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([2.0, 3.0], np.float32)), name="w")

    def construct(self, x):
        return x * self.w


class Accumulate(nn.Cell):
    """Adds its input to a Parameter on each call and returns several kinds of outputs."""

    def __init__(self):
        super().__init__()
        self.total = Parameter(Tensor(np.zeros(2, np.float32)), name="total", requires_grad=False)
        self.w = Parameter(Tensor(np.ones(2, np.float32)), name="w")

    def construct(self, x, tag="t"):
        self.total.set_data(self.total + x)
        return {"sum": self.total * 1, "pair": (x, [self.w * 2]), "tag": tag}


def test_graph_mode_cell_compiles_once_and_threads_state():
    ms.set_context(mode=ms.GRAPH_MODE)
    net = Accumulate()
    x = Tensor(np.array([1.0, 2.0], np.float32))
    before = api.compile_count()
    for _ in range(5):
        out = net(x)
    assert api.compile_count() - before == 1
    assert np.allclose(net.total.asnumpy(), [5.0, 10.0])
    assert set(out) == {"sum", "pair", "tag"} and out["tag"] == "t"
    assert isinstance(out["sum"], Tensor) and np.allclose(out["sum"].asnumpy(), [5.0, 10.0])
    assert isinstance(out["pair"], tuple) and isinstance(out["pair"][1], list)
    net(Tensor(np.ones((2,), np.float64)))  # new dtype: a second compilation
    net(x, tag="u")  # new static argument: a third
    assert api.compile_count() - before == 3


def test_graph_and_pynative_agree():
    x = Tensor(np.array([1.0, 2.0], np.float32))
    results = []
    for mode in (ms.PYNATIVE_MODE, ms.GRAPH_MODE):
        ms.set_context(mode=mode)
        net = Accumulate()
        for _ in range(3):
            out = net(x)
        results.append((out["sum"].asnumpy(), net.total.asnumpy()))
    np.testing.assert_allclose(results[0][0], results[1][0])
    np.testing.assert_allclose(results[0][1], results[1][1])


def test_set_data_and_parameter_replacement_between_compiled_steps():
    ms.set_context(mode=ms.GRAPH_MODE)
    net = Scale()
    x = Tensor(np.array([1.0, 1.0], np.float32))
    assert np.allclose(net(x).asnumpy(), [2.0, 3.0])
    snapshot = net.w.asnumpy()
    net.w.set_data(Tensor(np.array([5.0, 7.0], np.float32)))
    assert np.allclose(net(x).asnumpy(), [5.0, 7.0])
    net.w = Parameter(Tensor(np.array([-1.0, -2.0], np.float32)), name="w")
    assert np.allclose(net(x).asnumpy(), [-1.0, -2.0])
    assert np.allclose(snapshot, [2.0, 3.0])


def test_lazy_parameters_are_materialized_before_tracing():
    ms.set_context(mode=ms.GRAPH_MODE)
    net = Scale()
    net.w = Parameter(Tensor(shape=(2,), dtype=ms.float32, init=Normal(0.1)), name="w")
    assert net.w.has_init
    out = net(Tensor(np.ones(2, np.float32)))
    assert not net.w.has_init
    np.testing.assert_allclose(out.asnumpy(), net.w.asnumpy())


def _functional_losses(compiled: bool, x, y) -> list:
    ms.set_seed(3)
    net = nn.Dense(4, 3)
    loss_fn = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)

    def forward(data, label):
        return loss_fn(net(data), label)

    grad_fn = ops.value_and_grad(forward, None, opt.parameters)

    def train_step(data, label):
        loss, grads = grad_fn(data, label)
        opt(grads)
        return loss

    step = ms.jit(train_step) if compiled else train_step
    before = api.compile_count()
    losses = [float(step(x, y).asnumpy()) for _ in range(5)]
    if compiled:
        assert api.compile_count() - before == 1
    return losses


def test_jit_function_over_global_network_and_optimizer():
    """The MindSpore 2.x functional loop: value_and_grad over a forward function, then optimizer(grads)."""
    x = Tensor(np.random.default_rng(0).standard_normal((8, 4)).astype(np.float32))
    y = Tensor(np.random.default_rng(1).integers(0, 3, 8).astype(np.int32))
    eager = _functional_losses(False, x, y)
    compiled = _functional_losses(True, x, y)
    np.testing.assert_allclose(compiled, eager, rtol=1e-5)
    assert compiled[-1] < compiled[0]


def test_jit_on_cell_method():
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = Parameter(Tensor(np.array([3.0], np.float32)), name="w")
            self.calls = Parameter(Tensor(np.zeros(1, np.float32)), name="calls", requires_grad=False)

        @ms.jit
        def construct(self, x):
            self.calls.set_data(self.calls + 1)
            return x * self.w

    net = Net()
    before = api.compile_count()
    for _ in range(3):
        out = net(Tensor(np.array([2.0], np.float32)))
    assert np.allclose(out.asnumpy(), [6.0]) and np.allclose(net.calls.asnumpy(), [3.0])
    assert api.compile_count() - before == 1


class _Holder:
    """An object that state discovery does not look into."""

    def __init__(self, p):
        self.p = p


def test_writing_an_unbound_parameter_inside_jit_raises():
    holder = _Holder(Parameter(Tensor(np.zeros(1, np.float32)), name="hidden"))

    @ms.jit
    def f(x):
        holder.p.set_data(x)
        return x

    with pytest.raises(RuntimeError, match="Parameter 'hidden' was written inside a jit-compiled function"):
        f(Tensor(np.ones(1, np.float32)))
    assert np.allclose(holder.p.asnumpy(), [0.0])


def test_check_write_outside_any_trace_rejects_tracers():
    import jax

    p = Parameter(Tensor(np.zeros(1, np.float32)), name="p")

    def leak(x):
        p._assign(x)
        return x

    with pytest.raises(RuntimeError, match="outside the jit/grad call"):
        jax.jit(leak)(np.ones(1, np.float32))


def test_bind_restores_values_after_errors():
    p = Parameter(Tensor(np.array([1.0], np.float32)), name="p")
    with pytest.raises(ZeroDivisionError):
        with _binding.bind([p], [np.array([5.0], np.float32)]):
            assert float(p.asnumpy()[0]) == 5.0
            raise ZeroDivisionError
    assert float(p.asnumpy()[0]) == 1.0 and not _binding.tracing()


def test_dropout_key_threads_through_compiled_steps():
    ms.set_context(mode=ms.GRAPH_MODE)
    ms.set_seed(7)
    drop = nn.Dropout(p=0.5)
    drop.set_train()
    x = Tensor(np.ones((64,), np.float32))
    masks = [drop(x).asnumpy() for _ in range(3)]
    assert not np.array_equal(masks[0], masks[1]) and not np.array_equal(masks[1], masks[2])
    ms.set_seed(7)
    assert np.array_equal(drop(x).asnumpy(), masks[0])
    drop.set_train(False)
    assert np.array_equal(drop(x).asnumpy(), x.asnumpy())


def test_tensor_constant_attribute_does_not_leak_a_tracer():
    class WithConst(nn.Cell):
        def __init__(self):
            super().__init__()
            self.c = Tensor(np.array([4.0], np.float32))

        def construct(self, x):
            return x * self.c

    ms.set_context(mode=ms.GRAPH_MODE)
    net = WithConst()
    assert np.allclose(net(Tensor(np.array([2.0], np.float32))).asnumpy(), [8.0])
    assert np.allclose((net.c * 2).asnumpy(), [8.0])


def test_jit_decorator_forms():
    @ms.jit()
    def f(x):
        return x + 1

    assert np.allclose(f(Tensor(np.array([1.0], np.float32))).asnumpy(), [2.0])
    assert ms.jit(f) is f
    with pytest.raises(TypeError, match="'function' should be"):
        ms.jit(3)


GLOBAL_SCALE = Tensor(np.array([3.0], np.float32))


def test_global_tensor_constant_in_jit_function_does_not_leak():
    @ms.jit
    def f(x):
        return x * GLOBAL_SCALE

    assert np.allclose(f(Tensor(np.array([2.0], np.float32))).asnumpy(), [6.0])
    assert np.allclose((GLOBAL_SCALE + 1).asnumpy(), [4.0])


def test_snapshots_survive_buffer_donation():
    ms.set_context(mode=ms.GRAPH_MODE)
    net = Accumulate()
    x = Tensor(np.array([1.0, 1.0], np.float32))
    net(x)
    value, clone, wrapped = net.total.value(), net.total.clone(), Tensor(net.total)
    net(x)
    net(x)
    for snap in (value, clone, wrapped):
        assert np.allclose(snap.asnumpy(), [1.0, 1.0])
    assert np.allclose(net.total.asnumpy(), [3.0, 3.0])
    # an op that hands back its input, a copy, and a jax array taken from the parameter
    same = ms.ops.cast(net.total, ms.float32)
    copied, as_jax = net.total.copy(), jnp.asarray(net.total)
    net(x)
    for snap in (same, copied):
        assert np.allclose(snap.asnumpy(), [3.0, 3.0])
    assert np.allclose(np.asarray(as_jax), [3.0, 3.0])
    assert np.allclose(net.total.asnumpy(), [4.0, 4.0])


def test_unshared_state_is_donated_without_copies():
    from sporax.common.tensor import is_donatable

    ms.set_context(mode=ms.GRAPH_MODE)
    net = Accumulate()
    x = Tensor(np.array([1.0, 1.0], np.float32))
    net(x)
    assert is_donatable(net.total._value)  # the step's own output, held by the parameter alone
    net.total.value()
    assert not is_donatable(net.total._value)  # shared now: the next step donates a copy


def test_parameter_argument_is_state():
    p = Parameter(Tensor(np.array([1.0], np.float32)), name="counter")

    @ms.jit
    def bump(param, x):
        param.set_data(param + x)
        return param * 2

    for _ in range(3):
        out = bump(p, Tensor(np.array([1.0], np.float32)))
    assert np.allclose(p.asnumpy(), [4.0]) and np.allclose(out.asnumpy(), [8.0])


def test_structure_changes_between_compiled_calls_are_seen():
    import copy
    import pickle

    ms.set_context(mode=ms.GRAPH_MODE)
    seq = nn.SequentialCell([Scale()])
    x = Tensor(np.array([1.0, 1.0], np.float32))
    assert np.allclose(seq(x).asnumpy(), [2.0, 3.0])
    seq.append(Scale())  # a new child: its parameter joins the state
    assert np.allclose(seq(x).asnumpy(), [4.0, 9.0])
    seq[1].w = Parameter(Tensor(np.array([10.0, 10.0], np.float32)), name="w")
    assert np.allclose(seq(x).asnumpy(), [20.0, 30.0])
    seq[0].w.set_data(Tensor(np.array([1.0, 1.0], np.float32)))
    assert np.allclose(seq(x).asnumpy(), [10.0, 10.0])
    clone = copy.deepcopy(seq)
    assert np.allclose(clone(x).asnumpy(), [10.0, 10.0])
    assert isinstance(pickle.loads(pickle.dumps(seq[0]._params)), dict)


def test_deep_copied_compiled_cell_is_independent():
    import copy

    ms.set_context(mode=ms.GRAPH_MODE)
    drop_net = nn.SequentialCell([Scale(), nn.Dropout(p=0.5)])
    drop_net.set_train()
    x = Tensor(np.ones((2,), np.float32))
    drop_net(x)
    clone = copy.deepcopy(drop_net)
    clone.set_train(False)
    clone[0].w.set_data(Tensor(np.array([7.0, 7.0], np.float32)))
    assert np.allclose(clone(x).asnumpy(), [7.0, 7.0])  # eval mode: no dropout, the clone's weights
    assert np.allclose(drop_net[0].w.asnumpy(), [2.0, 3.0])
