"""amp O1 casts the white-listed Primitives however they are called, as MindSpore 2.10's O1 does.

Goldens (``fixtures/amp_o1_golden.npz``, from ``make_amp_o1_golden.py``): each case's output under
``auto_mixed_precision(net, "O1")`` in PYNATIVE and GRAPH mode, and its plain float32 output.
MindSpore casts cell attributes, inline instances and the functional ops built on a white-list
Primitive (``ops.relu``, ``ops.mm``, ``ops.conv2d``, ``ops.prelu``, ``ops.ger``); it leaves
``x @ w``, ``ops.matmul``, ``ops.dense`` and non-white-list ops in float32.
"""

import os
import sys

import jax.numpy as jnp
import numpy as np
import pytest

import sporax as ms
from sporax import Tensor, amp, nn, ops
from sporax.ops import _amp_scope

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures")
sys.path.insert(0, HERE)
from amp_o1_cases import ARGS, CASES, INPUTS, source  # noqa: E402

G = np.load(os.path.join(HERE, "amp_o1_golden.npz"))
NETS: dict = {}
exec(source("from sporax import nn, ops\nfrom sporax.ops import operations as P"), NETS)  # noqa: S102


def _args():
    return [Tensor(INPUTS[k]) for k in ARGS]


@pytest.mark.parametrize("mode", ["pynative", "graph"])
@pytest.mark.parametrize("name", list(CASES))
def test_o1_casts_white_list_ops_like_mindspore(name, mode):
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    want = G[f"{mode}::{name}"]
    net = amp.auto_mixed_precision(NETS[name](), "O1")
    got = net(*_args())
    assert str(got.dtype) == str(G[f"{mode}::{name}::dtype"])
    assert got.shape == want.shape
    cast_in_mindspore = not np.array_equal(want, G[f"fp32::{name}"])
    plain = NETS[name]()(*_args()).asnumpy()
    np.testing.assert_allclose(plain, G[f"fp32::{name}"], rtol=2e-6, atol=2e-6)
    # float16 results agree to a few float16 ulps (accumulation order differs); a cast must show
    np.testing.assert_allclose(got.asnumpy(), want, rtol=2e-3, atol=4e-3)
    assert (not np.array_equal(got.asnumpy(), plain)) == cast_in_mindspore, name


def test_scope_is_not_left_behind_and_skips_to_float_cells():
    class Inner(nn.Cell):
        def construct(self, x, w):
            assert _amp_scope.active() is None  # a cell with its own compute dtype is not entered
            return ops.MatMul()(x, w)

    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.inner = Inner().to_float(ms.float32)

        def construct(self, x, w):
            return self.inner(x, w), ops.MatMul()(x, w)

    net = amp.auto_mixed_precision(Net(), "O1")
    a, b = net(Tensor(INPUTS["x"]), Tensor(INPUTS["w"]))
    assert _amp_scope.active() is None
    plain = INPUTS["x"] @ INPUTS["w"]
    np.testing.assert_allclose(a.asnumpy(), plain, rtol=1e-5, atol=1e-5)
    half = np.asarray(jnp.matmul(INPUTS["x"].astype(np.float16), INPUTS["w"].astype(np.float16)), np.float32)
    np.testing.assert_allclose(b.asnumpy(), half, rtol=1e-3, atol=1e-3)
    assert b.dtype == ms.float32


def test_o1_gradients_flow_through_inline_casts():
    class Net(nn.Cell):
        def __init__(self):
            super().__init__()
            self.w = ms.Parameter(Tensor(INPUTS["w"]), name="w")

        def construct(self, x):
            return ops.relu(ops.MatMul()(x, self.w)).sum()

    net = amp.auto_mixed_precision(Net(), "O1")
    grads = ms.grad(net, grad_position=None, weights=net.trainable_params())(Tensor(INPUTS["x"]))
    assert grads[0].dtype == ms.float32 and net.w.dtype == ms.float32
    x, w = INPUTS["x"], INPUTS["w"]
    mask = (x @ w > 0).astype(np.float32)
    np.testing.assert_allclose(grads[0].asnumpy(), x.T @ mask, rtol=5e-3, atol=5e-3)


def test_custom_white_list_primitive_scope():
    class Net(nn.Cell):
        def construct(self, x):
            return ops.Sigmoid()(x), ops.Tanh()(x)

    net = amp.custom_mixed_precision(Net(), white_list=[ops.Sigmoid])
    a, b = net(Tensor(INPUTS["x"]))
    ref = 1 / (1 + np.exp(-INPUTS["x"]))
    assert a.dtype == b.dtype == ms.float32
    half = 1 / (1 + np.exp(-INPUTS["x"].astype(np.float16)))
    np.testing.assert_allclose(a.asnumpy(), half.astype(np.float32), rtol=2e-3, atol=2e-3)
    assert not np.array_equal(a.asnumpy(), ref.astype(np.float32))
    np.testing.assert_allclose(b.asnumpy(), np.tanh(INPUTS["x"]), rtol=1e-6)  # not on the list
