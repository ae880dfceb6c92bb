"""Gradient fidelity with MindSpore 2.10 (issue 11, items 2-4).

Expected values were produced with real MindSpore 2.10 (CPU, ``/work/ms-ref/bin/python``)
running the same networks, and are hard-coded here.
"""

import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, ParameterTuple, Tensor, nn, ops


class _TwoWeights(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = Parameter(Tensor(np.array([2.0], np.float32)), name="w")
        self.f = Parameter(Tensor(np.array([3.0], np.float32)), name="f", requires_grad=False)

    def construct(self, x):
        return (x * self.w * self.f).sum()


def _grads(g, x):
    return [t.asnumpy().tolist() for t in g(x)]


@pytest.mark.parametrize("mode", ["PYNATIVE_MODE", "GRAPH_MODE"])
def test_requires_grad_change_after_first_call_invalidates_cached_grads(mode):
    """MindSpore 2.10 PYNATIVE: [[9.], [0.]] while f is frozen, [[9.], [6.]] once unfrozen, and
    [[9.], [0.]] again after freezing it back. (MindSpore's GRAPH_MODE ignores requires_grad of
    listed weights and always gives 6.; sporax follows the flag in both modes.)"""
    ms.set_context(mode=getattr(ms, mode))
    net = _TwoWeights()
    x = Tensor(np.array([1.0, 2.0], np.float32))
    g = ops.GradOperation(get_by_list=True)(net, ParameterTuple(net.get_parameters()))
    assert _grads(g, x) == [[9.0], [0.0]]
    net.f.requires_grad = True
    assert _grads(g, x) == [[9.0], [6.0]]
    g2 = ops.GradOperation(get_by_list=True)(net, ParameterTuple(net.trainable_params()))
    assert _grads(g2, x) == [[9.0], [6.0]]
    net.f.requires_grad = False
    assert _grads(g2, x) == [[9.0], [0.0]]


def test_requires_grad_change_reaches_a_compiled_train_step():
    """A TrainOneStepCell compiled while a layer is frozen updates it once it is unfrozen."""
    ms.set_context(mode=ms.GRAPH_MODE)
    net = _TwoWeights()
    opt = nn.SGD(net.get_parameters(), learning_rate=0.1)
    step = nn.TrainOneStepCell(net, opt)
    x = Tensor(np.array([1.0, 2.0], np.float32))
    step(x)
    assert net.f.asnumpy().tolist() == [3.0]
    net.f.requires_grad = True
    step(x)
    assert net.f.asnumpy().tolist() != [3.0]


class _Sub(nn.Cell):
    def construct(self, x, y):
        return x - y


class _Mul(nn.Cell):
    def construct(self, x, y):
        return x * y


class _T(nn.Cell):
    def construct(self, x):
        return ops.transpose(x, (1, 0))


def _as_list(r):
    return [(str(t.dtype), t.asnumpy().tolist()) for t in (r if isinstance(r, tuple) else (r,))]


@pytest.mark.parametrize("mode", ["PYNATIVE_MODE", "GRAPH_MODE"])
def test_gradients_wrt_integer_tensors_as_mindspore_subgrad_transpose_grad(mode):
    """MindSpore's test_SubGrad / test_transpose_grad: integer inputs get real gradients, in
    their own dtype (goldens from MindSpore 2.10)."""
    ms.set_context(mode=getattr(ms, mode))
    x = Tensor(np.array([3, 5], np.int32))
    y = Tensor(np.array([1, 2], np.int32))
    assert _as_list(ops.GradOperation(get_all=True)(_Sub())(x, y)) == [("Int32", [1, 1]), ("Int32", [-1, -1])]
    assert _as_list(ops.GradOperation(get_all=True)(_Mul())(x, y)) == [("Int32", [1, 2]), ("Int32", [3, 5])]
    a, b = Tensor(np.array([3, 5], np.int64)), Tensor(np.array([2, 7], np.int64))
    assert _as_list(ops.GradOperation(get_all=True)(_Mul())(a, b)) == [("Int64", [2, 7]), ("Int64", [3, 5])]
    xi = Tensor(np.arange(6, dtype=np.int32).reshape(2, 3))
    assert _as_list(ops.GradOperation()(_T())(xi)) == [("Int32", [[1, 1, 1], [1, 1, 1]])]
    sens = Tensor(np.arange(6, dtype=np.int32).reshape(3, 2))
    assert _as_list(ops.GradOperation(sens_param=True)(_T())(xi, sens)) == [("Int32", [[0, 2, 4], [1, 3, 5]])]


def test_value_and_grad_integer_inputs_keeps_integer_outputs():
    """MindSpore 2.10: value_and_grad(lambda a, b: a * b, (0, 1)) on Int32 gives Int32 [3, 10]
    and Int32 gradients [1, 2], [3, 5]."""
    x = Tensor(np.array([3, 5], np.int32))
    y = Tensor(np.array([1, 2], np.int32))
    out, (gx, gy) = ops.value_and_grad(lambda a, b: a * b, (0, 1))(x, y)
    assert _as_list(out) == [("Int32", [3, 10])]
    assert _as_list((gx, gy)) == [("Int32", [1, 2]), ("Int32", [3, 5])]


def test_grad_inside_jit_accepts_python_int_inputs():
    """MindSpore 2.10 accepts Python ints as inputs of gradient functions inside jit, and drops
    them from grad_position: value_and_grad(fn, (0, 1))(x, 3) gives one Tensor [3., 3.]."""
    x = Tensor(np.array([1.0, 2.0], np.float32))

    def fn(a, n):
        return a * n

    class P(nn.Cell):
        def construct(self, a, n):
            return a * n

    g_all = ops.GradOperation(get_all=True)(P())

    @ms.jit
    def f1(a, n):
        return g_all(a, n)

    @ms.jit
    def f2(a, n):
        return ops.value_and_grad(fn, grad_position=(0, 1))(a, n)

    assert _as_list(f1(x, 3)) == [("Float32", [3.0, 3.0])]
    out, g = f2(x, 3)
    assert out.asnumpy().tolist() == [3.0, 6.0] and isinstance(g, Tensor) and g.asnumpy().tolist() == [3.0, 3.0]
    out, g = ops.value_and_grad(fn, grad_position=(0, 1))(x, 3)
    assert isinstance(g, Tensor) and g.asnumpy().tolist() == [3.0, 3.0]


class _SumSq(nn.Cell):
    def construct(self, x):
        return (x * x).sum()


class _Sq(nn.Cell):
    def construct(self, x):
        return x * x


def test_sens_of_another_shape_for_a_scalar_output_as_mindspore():
    """MindSpore 2.10, the tutorial's "gradient with sens": a scalar output with a (2, 3) sens of
    ones gives 24. everywhere (2x * sum(sens)); with arange(6) 60.; with a (5,) arange 40."""
    xs = Tensor(np.ones((2, 3), np.float32) * 2)
    g = ops.GradOperation(sens_param=True)(_SumSq())
    assert g(xs, Tensor(np.ones((2, 3), np.float32))).asnumpy().tolist() == [[24.0] * 3] * 2
    assert g(xs, Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))).asnumpy().tolist() == [[60.0] * 3] * 2
    assert g(xs, Tensor(np.arange(5, dtype=np.float32))).asnumpy().tolist() == [[40.0] * 3] * 2


@pytest.mark.parametrize("shape", [(3,), (2,), (3, 2), (1, 2, 3), ()])
def test_sens_shape_mismatch_raises_value_error_naming_sens(shape):
    """MindSpore 2.10 raises for a (2, 3) output with a sens of another shape (ValueError
    "The shape should be [2, 3]", RuntimeError for a 0-d sens); sporax raises ValueError naming sens."""
    xs = Tensor(np.ones((2, 3), np.float32))
    g = ops.GradOperation(sens_param=True)(_Sq())
    with pytest.raises(ValueError, match="'sens'.*shape"):
        g(xs, Tensor(np.ones(shape, np.float32)))


def test_sens_dtype_mismatch_raises_type_error_as_mindspore():
    """MindSpore 2.10: TypeError "The dtype should be Float32, but got Int32"."""
    xs = Tensor(np.ones((2, 3), np.float32))
    with pytest.raises(TypeError, match="'sens'.*Float32.*Int32"):
        ops.GradOperation(sens_param=True)(_Sq())(xs, Tensor(np.ones((2, 3), np.int32)))
