"""Functional ops, jvp/vjp, Print, ms_function and the optimizer primitives inside compiled steps."""

import json
import os
import warnings

import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, nn, ops

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
GOLD = json.load(open(os.path.join(HERE, "ops_golden.json")))
ARRAYS = np.load(os.path.join(HERE, "ops_golden.npz"))
IN = {k.split("::", 1)[1]: ARRAYS[k] for k in ARRAYS.files if k.startswith("input::")}


def _check(got, meta):
    from test_ops_golden import check_output

    check_output(got, meta)


def T(key):
    return Tensor(IN[key])


def test_functional_ops_match_mindspore():
    x, y, lbl = T("f32"), T("f32b"), T("lbl")
    _check(ops.pow(T("pos32"), 2.5), GOLD["F/pow"]["out"])
    _check(ops.pow(T("pos32"), y), GOLD["F/pow_tt"]["out"])
    _check(ops.depend(x, y), GOLD["F/depend"]["out"])
    _check(ops.binary_cross_entropy_with_logits(x, lbl), GOLD["F/bce_mean"]["out"])
    _check(ops.binary_cross_entropy_with_logits(x, lbl, T("pos32"), Tensor(np.array([1.0, 2.0, 0.5], np.float32)),
                                                "none"), GOLD["F/bce_w_none"]["out"])
    _check(ops.binary_cross_entropy_with_logits(x, lbl, reduction="sum"), GOLD["F/bce_sum"]["out"])
    _check(ops.conv2d(T("x4"), T("w4"), T("bias6"), stride=2, pad_mode="pad", padding=1), GOLD["F/conv2d"]["out"])
    _check(ops.gather(x, T("idx1"), 1), GOLD["F/gather"]["out"])
    with pytest.raises(ValueError, match="reduction"):
        ops.binary_cross_entropy_with_logits(x, lbl, reduction="avg")


def _f(a, b):
    return a * b + ops.sin(a)


def _g(a):
    return a * a, ops.cos(a)


class _Net(nn.Cell):
    def construct(self, a, b):
        return a * b + ops.sin(a)


def test_jvp_vjp_match_mindspore():
    x, y = T("f32"), T("f32b")
    ones = Tensor(np.ones((2, 3), np.float32))
    _check(ops.jvp(_f, (x, y), (ones, y)), GOLD["F/jvp"]["out"])
    _check(ops.jvp(ops.sin, x, y), GOLD["F/jvp_single"]["out"])
    _check(ops.jvp(_g, x, y, has_aux=True), GOLD["F/jvp_aux"]["out"])
    out, fn = ops.vjp(_f, x, y)
    _check((out, fn(T("f32"))), GOLD["F/vjp"]["out"])
    out, fn = ops.vjp(ops.sin, x)
    _check((out, fn(y)), GOLD["F/vjp_single"]["out"])
    out, fn, aux = ops.vjp(_g, x, has_aux=True)
    _check((out, fn(y), aux), GOLD["F/vjp_aux"]["out"])
    _check(nn.Jvp(_Net())(x, y, (ones, y)), GOLD["F/nn_jvp"]["out"])
    _check(nn.Vjp(_Net())(x, y, T("f32")), GOLD["F/nn_vjp"]["out"])
    with pytest.raises(ValueError, match="'v' should match"):
        ops.jvp(_f, (x, y), (ones,))
    with pytest.raises(TypeError, match="'inputs'"):
        ops.vjp(_f, IN["f32"], y)


def test_vjp_with_weights():
    w = Parameter(Tensor(np.array([1.0, 2.0, 3.0], np.float32)), name="w")

    def f(a):
        return a * w

    out, fn = ops.vjp(f, Tensor(np.ones(3, np.float32)), weights=[w])
    g_in, g_w = fn(Tensor(np.array([1.0, 1.0, 2.0], np.float32)))
    np.testing.assert_allclose(g_in[0].asnumpy(), [1.0, 2.0, 6.0])
    np.testing.assert_allclose(g_w[0].asnumpy(), [1.0, 1.0, 2.0])


def test_print_matches_mindspore_format(capsys):
    ops.Print()("loss:", Tensor(np.array([1.5, -2.0], np.float32)), Tensor(np.array([[1, 2], [3, 4]], np.int32)))
    got = capsys.readouterr().out
    # MindSpore separates elements with ", " and uses numpy's float formatting; compare the structure.
    want = GOLD["Print/stdout"]
    assert got.splitlines()[0] == want.splitlines()[0] == "loss:"
    assert "Tensor(shape=[2], dtype=Float32" in got and "Tensor(shape=[2, 2], dtype=Int32" in got
    assert ops.Print()("x") is None
    with pytest.raises(TypeError, match="'input 0'"):
        ops.Print()(object())


def test_print_inside_jit_prints_at_run_time(capfd):
    @ms.jit
    def step(a):
        ops.Print()("value:", a)
        return a + 1

    step(Tensor(np.array([3.0], np.float32)))
    import jax

    jax.effects_barrier()
    out = capfd.readouterr().out
    assert "value:" in out and "Tensor(shape=[1], dtype=Float32" in out


def test_ms_function_is_jit_with_a_warning():
    with pytest.warns(DeprecationWarning, match="jit"):
        f = ms.ms_function(lambda a: a * 2)
    np.testing.assert_allclose(f(Tensor(np.ones(2, np.float32))).asnumpy(), [2.0, 2.0])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")

        @ms.ms_function
        def g(a):
            return a + 1

    assert g(Tensor(np.zeros(1, np.float32))).asnumpy()[0] == 1.0


def test_apply_momentum_updates_parameters_inside_jit_and_grad_free_calls():
    var = Parameter(Tensor(IN["var"].copy()), name="var")
    acc = Parameter(Tensor(IN["acc"].copy()), name="acc")
    op = ops.ApplyMomentum()

    @ms.jit
    def step(g):
        return op(var, acc, 0.1, g, 0.9)

    out = step(T("grad"))
    np.testing.assert_allclose(var.asnumpy(), ARRAYS["ApplyMomentum/basic::param::var"], rtol=1e-6)
    np.testing.assert_allclose(acc.asnumpy(), ARRAYS["ApplyMomentum/basic::param::acc"], rtol=1e-6)
    np.testing.assert_allclose(out.asnumpy(), var.asnumpy())


def test_apply_ops_errors_leave_parameters_unchanged():
    var = Parameter(Tensor(IN["var"].copy()), name="var")
    acc = Parameter(Tensor(np.zeros((3,), np.float32)), name="acc")
    with pytest.raises(ValueError, match="'accumulation'"):
        ops.ApplyMomentum()(var, acc, 0.1, T("grad"), 0.9)
    with pytest.raises(TypeError, match="'variable'"):
        ops.ApplyMomentum()(T("var"), acc, 0.1, T("grad"), 0.9)
    with pytest.raises(TypeError, match="'use_nesterov'"):
        ops.ApplyMomentum(use_nesterov=1)
    np.testing.assert_array_equal(var.asnumpy(), IN["var"])


def test_lars_update_and_ftrl_follow_their_formulas():
    w, g = IN["var"], IN["grad"]
    wd, lr = 0.01, 0.1
    wn, gn = np.sqrt((w ** 2).sum()), np.sqrt((g ** 2).sum())
    ratio = 0.001 * wn / (gn + wd * wn + 1e-5)
    out = ops.LARSUpdate()(T("var"), T("grad"), T("wsq"), T("gsq"), T("wd1"), T("lr1"))
    np.testing.assert_allclose(out.asnumpy(), ratio * (g + wd * w), rtol=1e-5)
    out = ops.LARSUpdate(use_clip=True)(T("var"), T("grad"), T("wsq"), T("gsq"), T("wd1"), T("lr1"))
    np.testing.assert_allclose(out.asnumpy(), min(ratio / lr, 1.0) * (g + wd * w), rtol=1e-5)
    var, acc, lin = (Parameter(Tensor(IN[k].copy()), name=k) for k in ("var", "acc", "lin"))
    ops.ApplyFtrl()(var, acc, lin, T("grad"), 0.1, 0.01, 0.02, -0.5)
    a_new = IN["acc"] + g * g
    l_new = IN["lin"] + g - (np.sqrt(a_new) - np.sqrt(IN["acc"])) / 0.1 * w
    quad = np.sqrt(a_new) / 0.1 + 2 * 0.02
    want = np.where(np.abs(l_new) > 0.01, (np.sign(l_new) * 0.01 - l_new) / quad, 0.0)
    np.testing.assert_allclose(var.asnumpy(), want, rtol=1e-5)
    # MindSpore's accum and linear agree with the same formula
    np.testing.assert_allclose(acc.asnumpy(), ARRAYS["ApplyFtrl/basic::param::acc"], rtol=1e-5)
    np.testing.assert_allclose(lin.asnumpy(), ARRAYS["ApplyFtrl/basic::param::lin"], rtol=1e-5)


def test_sparse_gather_is_gather_and_attrs():
    np.testing.assert_array_equal(ops.SparseGatherV2()(T("f32"), T("idx1s"), 0).asnumpy(), IN["f32"][[1, 0, 1]])
    conv = ops.Conv2D(4, (3, 2), pad_mode="pad", pad=(1, 1, 0, 0), stride=2)
    assert conv.stride == (1, 1, 2, 2) and conv.dilation == (1, 1, 1, 1) and conv.pad == (1, 1, 0, 0)
    assert conv.kernel_size == (3, 2) and conv.out_channel == 4 and conv.attrs["pad_mode"] == "pad"
    assert repr(ops.Add()) == "Prim[Add]"
    assert ops.Squeeze(0).axis == (0,) and ops.Softmax().axis == (-1,)
    assert ops.ReduceSum(True).get_attr_dict() == {"keep_dims": True, "skip_mode": False}
    assert ops.DType()(T("f16")) is ms.float16


def test_operations_module_paths_and_compat():
    from sporax import compat

    compat.install()
    try:
        import mindspore.ops.operations as P  # noqa: N812
        from mindspore.ops import operations
        from mindspore.ops.operations import nn_ops

        assert P is operations and nn_ops.Conv2D is ops.Conv2D and P.ApplyMomentum is ops.ApplyMomentum
        import mindspore

        assert mindspore.ops.P is operations and mindspore.ms_function is ms.ms_function
    finally:
        compat.uninstall()
