"""Layers: MindSpore 2.10 parameter names, shapes and defaults; outputs against numpy."""

import math

import jax
import numpy as np
import pytest

import sporax as ms
from sporax import Parameter, Tensor, nn

RNG = np.random.default_rng(0)


def _t(shape, dtype=np.float32):
    return RNG.standard_normal(shape).astype(dtype)


def _names(cell):
    return [(p.name, tuple(p.shape), p.requires_grad) for p in cell.get_parameters()]


# ---------------------------------------------------------------------------------- names and shapes
class _Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.conv = nn.Conv2d(3, 8, 3)
        self.bn = nn.BatchNorm2d(8)
        self.flatten = nn.Flatten()
        self.dense = nn.Dense(8, 4)
        self.embed = nn.Embedding(10, 4)
        self.ln = nn.LayerNorm((4,))


def test_parameter_names_shapes_and_order_match_mindspore():
    assert _names(_Net()) == [
        ("conv.weight", (8, 3, 3, 3), True),
        ("bn.moving_mean", (8,), False),
        ("bn.moving_variance", (8,), False),
        ("bn.gamma", (8,), True),
        ("bn.beta", (8,), True),
        ("dense.weight", (4, 8), True),
        ("dense.bias", (4,), True),
        ("embed.embedding_table", (10, 4), True),
        ("ln.gamma", (4,), True),
        ("ln.beta", (4,), True),
    ]


def test_standalone_names_are_the_constructor_names():
    bn = nn.BatchNorm1d(3)
    assert [p.name for p in bn.get_parameters()] == ["mean", "variance", "gamma", "beta"]
    assert [p.name for p in nn.Dense(2, 3).get_parameters()] == ["weight", "bias"]


def test_defaults_of_mindspore_2x():
    conv = nn.Conv2d(2, 4, (3, 5))
    assert conv.has_bias is False and conv.pad_mode == "same" and conv.bias is None
    assert conv.kernel_size == (3, 5) and conv.stride == (1, 1)
    assert nn.Conv2d(2, 4, 3, has_bias=True).bias.shape == (4,)
    d = nn.Dense(3, 2, has_bias=False)
    assert d.bias is None and [p.name for p in d.get_parameters()] == ["weight"]
    bn = nn.BatchNorm2d(3)
    np.testing.assert_array_equal(bn.moving_mean.asnumpy(), 0)
    np.testing.assert_array_equal(bn.moving_variance.asnumpy(), 1)
    np.testing.assert_array_equal(bn.gamma.asnumpy(), 1)
    np.testing.assert_array_equal(bn.beta.asnumpy(), 0)
    assert nn.BatchNorm2d(3, affine=False).gamma.requires_grad is False
    assert bn.momentum == pytest.approx(0.1)  # MindSpore stores 1 - momentum (the batch statistic's weight)
    assert nn.Dropout().keep_prob == 0.5 and nn.Dropout(p=0.2).keep_prob == pytest.approx(0.8)
    assert nn.GELU().approximate is True


def test_default_initializers_have_mindspore_bounds():
    d = nn.Dense(50, 40)
    w = d.weight.asnumpy()
    # HeUniform(a=sqrt(5)) on fan_in=50: bound = sqrt(6 / ((1 + a^2) * fan_in)) = 1 / sqrt(fan_in)
    bound = math.sqrt(6 / (6 * 50))
    assert np.abs(w).max() <= bound and np.abs(w).max() > 0.8 * bound
    b = d.bias.asnumpy()
    assert np.abs(b).max() <= 1 / math.sqrt(50)
    table = nn.Embedding(200, 50).embedding_table.asnumpy()
    assert abs(table.std() - 0.01) < 0.001  # 'normal' is N(0, 0.01)


def test_dense_is_lazy_until_used():
    d = nn.Dense(4, 3)
    assert d.weight.has_init
    d(Tensor(_t((2, 4))))
    assert not d.weight.has_init


# ---------------------------------------------------------------------------------- outputs
def test_dense_matches_numpy_with_activation_and_batch_dims():
    d = nn.Dense(4, 3, activation="relu")
    x = _t((2, 5, 4))
    ref = np.maximum(x @ d.weight.asnumpy().T + d.bias.asnumpy(), 0)
    np.testing.assert_allclose(d(Tensor(x)).asnumpy(), ref, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValueError, match="in_channels=4"):
        d(Tensor(_t((2, 3))))
    with pytest.raises(TypeError, match="'activation'"):
        nn.Dense(2, 2, activation=3)


def test_dense_accepts_tensor_init_and_checks_its_shape():
    w = _t((3, 2))
    d = nn.Dense(2, 3, weight_init=Tensor(w), bias_init="zeros")
    np.testing.assert_array_equal(d.weight.asnumpy(), w)
    np.testing.assert_array_equal(d.bias.asnumpy(), 0)
    with pytest.raises(ValueError, match="weight_init"):
        nn.Dense(2, 3, weight_init=Tensor(_t((2, 3))))


def _conv_ref(x, w, stride, pads, dilation, group):
    """Direct NCHW convolution in numpy (pads = top, bottom, left, right)."""
    x = np.pad(x, ((0, 0), (0, 0), (pads[0], pads[1]), (pads[2], pads[3])))
    n, c, h, wd = x.shape
    o, cg, kh, kw = w.shape
    ekh, ekw = (kh - 1) * dilation[0] + 1, (kw - 1) * dilation[1] + 1
    oh, ow = (h - ekh) // stride[0] + 1, (wd - ekw) // stride[1] + 1
    out = np.zeros((n, o, oh, ow), np.float64)
    per = o // group
    for oc in range(o):
        g = oc // per
        xs = x[:, g * cg:(g + 1) * cg]
        for i in range(oh):
            for j in range(ow):
                patch = xs[:, :, i * stride[0]:i * stride[0] + ekh:dilation[0], j * stride[1]:j * stride[1] + ekw:dilation[1]]
                out[:, oc, i, j] = (patch * w[oc]).sum(axis=(1, 2, 3))
    return out


def _same_pads(size, k, s, d):
    ek = (k - 1) * d + 1
    out = -(-size // s)
    total = max((out - 1) * s + ek - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=3),
        dict(kernel_size=(2, 3), stride=2),
        dict(kernel_size=3, pad_mode="valid", stride=(1, 2)),
        dict(kernel_size=3, pad_mode="pad", padding=(1, 0, 2, 1), has_bias=True),
        dict(kernel_size=3, pad_mode="pad", padding=1, dilation=2, group=2),
        dict(kernel_size=2, stride=(1, 1, 2, 2), dilation=(1, 1, 1, 1)),
    ],
)
def test_conv2d_matches_numpy(kwargs):
    conv = nn.Conv2d(4, 6, **kwargs)
    x = _t((2, 4, 7, 6))
    w = conv.weight.asnumpy()
    k, s, d = conv.kernel_size, conv.stride, conv.dilation
    if conv.pad_mode == "same":
        pads = (*_same_pads(7, k[0], s[0], d[0]), *_same_pads(6, k[1], s[1], d[1]))
    elif conv.pad_mode == "valid":
        pads = (0, 0, 0, 0)
    else:
        p = conv.padding
        pads = (p,) * 4 if isinstance(p, int) else p
    ref = _conv_ref(x, w, s, pads, d, conv.group)
    if conv.has_bias:
        ref = ref + conv.bias.asnumpy().reshape(1, -1, 1, 1)
    np.testing.assert_allclose(conv(Tensor(x)).asnumpy(), ref, rtol=1e-4, atol=1e-5)


def test_conv2d_argument_errors():
    with pytest.raises(ValueError, match="'padding' should be 0"):
        nn.Conv2d(2, 2, 3, padding=1)
    with pytest.raises(ValueError, match="divisible by 'group'"):
        nn.Conv2d(3, 4, 3, group=2)
    with pytest.raises(ValueError, match="pad_mode"):
        nn.Conv2d(2, 2, 3, pad_mode="full")
    with pytest.raises(ValueError, match=r"\(N, 2, H, W\)"):
        nn.Conv2d(2, 2, 3)(Tensor(_t((1, 3, 4, 4))))


def test_embedding_lookup_one_hot_and_padding_idx():
    emb = nn.Embedding(6, 3, padding_idx=2)
    table = emb.embedding_table.asnumpy()
    np.testing.assert_array_equal(table[2], 0)
    ids = np.array([[0, 2, 5], [1, 1, 3]], np.int32)
    np.testing.assert_allclose(emb(Tensor(ids)).asnumpy(), table[ids])
    one_hot = nn.Embedding(6, 3, use_one_hot=True, embedding_table=Tensor(table))
    np.testing.assert_allclose(one_hot(Tensor(ids)).asnumpy(), table[ids], rtol=1e-6)
    with pytest.raises(ValueError, match="padding_idx"):
        nn.Embedding(4, 2, padding_idx=4)


def test_layernorm_matches_numpy():
    x = _t((2, 3, 4))
    ln = nn.LayerNorm((3, 4), begin_norm_axis=1, begin_params_axis=1, gamma_init="normal", beta_init="normal")
    g, b = ln.gamma.asnumpy(), ln.beta.asnumpy()
    mean = x.mean(axis=(1, 2), keepdims=True)
    var = x.var(axis=(1, 2), keepdims=True)
    ref = (x - mean) / np.sqrt(var + 1e-7) * g + b
    np.testing.assert_allclose(ln(Tensor(x)).asnumpy(), ref, rtol=1e-5, atol=1e-5)
    last = nn.LayerNorm((4,), epsilon=1e-5)
    ref = (x - x.mean(-1, keepdims=True)) / np.sqrt(x.var(-1, keepdims=True) + 1e-5)
    np.testing.assert_allclose(last(Tensor(x)).asnumpy(), ref, rtol=1e-5, atol=1e-5)
    with pytest.raises(TypeError, match="normalized_shape"):
        nn.LayerNorm(4)


def test_activations_match_numpy():
    x = _t((3, 5))
    sig = 1 / (1 + np.exp(-x))
    cases = {
        nn.ReLU(): np.maximum(x, 0),
        nn.Sigmoid(): sig,
        nn.Tanh(): np.tanh(x),
        nn.GELU(): 0.5 * x * (1 + np.tanh(np.sqrt(2 / np.pi) * (x + 0.044715 * x**3))),
        nn.GELU(approximate=False): 0.5 * x * (1 + np.vectorize(math.erf)(x / np.sqrt(2))),
        nn.Softmax(): np.exp(x) / np.exp(x).sum(-1, keepdims=True),
        nn.Softmax(axis=0): np.exp(x) / np.exp(x).sum(0, keepdims=True),
        nn.LogSoftmax(): x - np.log(np.exp(x).sum(-1, keepdims=True)),
        nn.SiLU(): x * sig,
        nn.LeakyReLU(): np.where(x >= 0, x, 0.2 * x),
        nn.ReLU6(): np.clip(x, 0, 6),
    }
    for cell, ref in cases.items():
        np.testing.assert_allclose(cell(Tensor(x)).asnumpy(), ref, rtol=1e-5, atol=1e-6, err_msg=cell.cls_name)
    assert isinstance(nn.get_activation("gelu"), nn.GELU)
    assert nn.get_activation(None) is None
    with pytest.raises(KeyError, match="'name' must be in"):
        nn.get_activation("nope")


def test_flatten():
    x = _t((2, 3, 4, 5))
    assert nn.Flatten()(Tensor(x)).shape == (2, 60)
    assert nn.Flatten(0, 1)(Tensor(x)).shape == (6, 4, 5)
    assert nn.Flatten(start_dim=2)(Tensor(x)).shape == (2, 3, 20)
    with pytest.raises(ValueError, match="start_dim"):
        nn.Flatten(4)(Tensor(x))


# ---------------------------------------------------------------------------------- batch norm
def test_batchnorm_training_updates_moving_stats_like_mindspore():
    bn = nn.BatchNorm2d(3, momentum=0.9)
    x = _t((4, 3, 2, 2))
    bn.set_train(False)
    y_eval = bn(Tensor(x)).asnumpy()
    np.testing.assert_allclose(y_eval, x / np.sqrt(1 + 1e-5), rtol=1e-5)
    np.testing.assert_array_equal(bn.moving_mean.asnumpy(), 0)  # eval mode leaves them alone

    bn.set_train(True)
    y = bn(Tensor(x)).asnumpy()
    mean, var = x.mean((0, 2, 3)), x.var((0, 2, 3))
    ref = (x - mean.reshape(1, -1, 1, 1)) / np.sqrt(var.reshape(1, -1, 1, 1) + 1e-5)
    np.testing.assert_allclose(y, ref, rtol=1e-4, atol=1e-5)
    # MindSpore 2.10: moving = momentum * moving + (1 - momentum) * batch, unbiased batch variance
    np.testing.assert_allclose(bn.moving_mean.asnumpy(), 0.1 * mean, rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(bn.moving_variance.asnumpy(), 0.9 + 0.1 * x.var((0, 2, 3), ddof=1), rtol=1e-5)

    bn.set_train(False)
    mm, mv = bn.moving_mean.asnumpy(), bn.moving_variance.asnumpy()
    out = bn(Tensor(x)).asnumpy()
    ref = (x - mm.reshape(1, -1, 1, 1)) / np.sqrt(mv.reshape(1, -1, 1, 1) + 1e-5)
    np.testing.assert_allclose(out, ref, rtol=1e-5, atol=1e-6)
    np.testing.assert_array_equal(bn.moving_mean.asnumpy(), mm)


def test_batchnorm1d_and_use_batch_statistics():
    x = _t((5, 3))
    bn = nn.BatchNorm1d(3, use_batch_statistics=True)  # eval mode, but batch statistics forced
    y = bn(Tensor(x)).asnumpy()
    np.testing.assert_allclose(y, (x - x.mean(0)) / np.sqrt(x.var(0) + 1e-5), rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bn.moving_mean.asnumpy(), 0.1 * x.mean(0), rtol=1e-5, atol=1e-7)
    frozen = nn.BatchNorm1d(3, use_batch_statistics=False).set_train(True)
    np.testing.assert_allclose(frozen(Tensor(x)).asnumpy(), x / np.sqrt(1 + 1e-5), rtol=1e-5)
    np.testing.assert_array_equal(frozen.moving_mean.asnumpy(), 0)
    assert nn.BatchNorm1d(3)(Tensor(_t((2, 3, 4)))).shape == (2, 3, 4)
    with pytest.raises(ValueError, match="rank 2 or 3"):
        nn.BatchNorm1d(3)(Tensor(_t((2, 3, 4, 4))))
    with pytest.raises(ValueError, match="'momentum'"):
        nn.BatchNorm2d(3, momentum=1.5)


def test_batchnorm_update_is_captured_as_state_under_a_binding():
    """The moving-stat write goes through set_data, so a binding (jit) carries it out."""
    from sporax.common import _binding

    bn = nn.BatchNorm1d(2).set_train(True)
    params = list(bn.get_parameters())
    x = _t((4, 2))

    def step(values, xv):
        with _binding.bind(params, values):
            out = bn(Tensor._wrap(xv))
            new = _binding.read_values(params)
        return out._jax(), new

    values = [p._jax() for p in params]
    _, new = jax.jit(step)(values, x)
    np.testing.assert_allclose(np.asarray(new[0]), 0.1 * x.mean(0), rtol=1e-5, atol=1e-7)
    np.testing.assert_array_equal(bn.moving_mean.asnumpy(), 0)  # restored after the binding


# ---------------------------------------------------------------------------------- dropout
def test_dropout_identity_in_eval_and_masks_in_training():
    x = np.ones((200, 50), np.float32)
    drop = nn.Dropout(p=0.25)
    assert drop(Tensor(x)).asnumpy() is not None
    np.testing.assert_array_equal(drop(Tensor(x)).asnumpy(), x)
    drop.set_train(True)
    a = drop(Tensor(x)).asnumpy()
    b = drop(Tensor(x)).asnumpy()
    assert set(np.unique(a)) <= {0.0, np.float32(1 / 0.75)}
    assert abs((a == 0).mean() - 0.25) < 0.02
    assert not np.array_equal(a, b)  # a fresh key per call
    ms.set_seed(7)
    c = drop(Tensor(x)).asnumpy()
    ms.set_seed(7)
    np.testing.assert_array_equal(drop(Tensor(x)).asnumpy(), c)
    keep_all = nn.Dropout(keep_prob=1.0).set_train(True)
    np.testing.assert_array_equal(keep_all(Tensor(x)).asnumpy(), x)
    with pytest.raises(ValueError, match="'p'"):
        nn.Dropout(p=1.0)
    with pytest.raises(ValueError, match="'keep_prob'"):
        nn.Dropout(keep_prob=0.0)


def test_layers_are_traceable_under_jit():
    net = nn.SequentialCell([nn.Dense(4, 8, activation="gelu"), nn.LayerNorm((8,)), nn.Dense(8, 2)])
    params = list(net.get_parameters())
    from sporax.common import _binding

    def fwd(values, xv):
        with _binding.bind(params, values):
            return net(Tensor._wrap(xv))._jax()

    x = _t((3, 4))
    out = jax.jit(fwd)([p._jax() for p in params], x)
    np.testing.assert_allclose(np.asarray(out), net(Tensor(x)).asnumpy(), rtol=1e-5, atol=1e-6)


def test_parameters_are_parameters():
    for p in _Net().get_parameters():
        assert isinstance(p, Parameter)


# ---------------------------------------------------------------------------------- pooling
def _pool_ref(x, k, s, pads, reduce, d=(1, 1), ceil=False, include_pad=True, divisor=None):
    """Direct pooling in numpy; pads = ((top, bottom), (left, right)); ceil mode PyTorch-style."""
    n, c, h, w = x.shape
    ek = [(k[i] - 1) * d[i] + 1 for i in range(2)]
    size = (h, w)
    outs = []
    for i in range(2):
        span = size[i] + sum(pads[i]) - ek[i]
        o = (-(-span // s[i]) if ceil else span // s[i]) + 1
        if ceil and (o - 1) * s[i] >= size[i] + pads[i][0]:
            o -= 1
        outs.append(o)
    out = np.zeros((n, c, *outs), np.float64)
    for oi in range(outs[0]):
        for oj in range(outs[1]):
            hs = [oi * s[0] - pads[0][0] + a * d[0] for a in range(k[0])]
            ws = [oj * s[1] - pads[1][0] + b * d[1] for b in range(k[1])]
            vals = [x[:, :, a, b] for a in hs for b in ws if 0 <= a < h and 0 <= b < w]
            stacked = np.stack(vals, -1)
            if reduce == "max":
                out[:, :, oi, oj] = stacked.max(-1)
            else:
                if divisor is not None:
                    cnt = divisor
                elif include_pad:
                    cnt = sum(1 for a in hs if a < h + pads[0][1]) * sum(1 for b in ws if b < w + pads[1][1])
                else:
                    cnt = len(vals)
                out[:, :, oi, oj] = stacked.sum(-1) / cnt
    return out


def _same(size, k, s):
    total = max((-(-size // s) - 1) * s + k - size, 0)
    return total // 2, total - total // 2


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2, stride=2),
        dict(kernel_size=3, stride=2, pad_mode="same"),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=1),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=(1, 0), ceil_mode=True),
        dict(kernel_size=2, stride=1, pad_mode="pad", padding=1, dilation=2),
    ],
)
def test_maxpool2d_matches_numpy(kwargs):
    x = _t((2, 3, 7, 6))
    pool = nn.MaxPool2d(**kwargs)
    k, s = pool.kernel_size, pool.stride
    if pool.pad_mode == "same":
        pads = (_same(7, k[0], s[0]), _same(6, k[1], s[1]))
    else:
        pads = pool._pads
    ref = _pool_ref(x, k, s, pads, "max", pool.dilation, pool.ceil_mode)
    np.testing.assert_allclose(pool(Tensor(x)).asnumpy(), ref, rtol=1e-6)


@pytest.mark.parametrize(
    "kwargs",
    [
        dict(kernel_size=2, stride=2),
        dict(kernel_size=3, stride=2, pad_mode="same"),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=1),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=1, count_include_pad=False),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=1, ceil_mode=True),
        dict(kernel_size=3, stride=2, pad_mode="pad", padding=1, divisor_override=4),
    ],
)
def test_avgpool2d_matches_numpy(kwargs):
    x = _t((2, 3, 7, 6))
    pool = nn.AvgPool2d(**kwargs)
    k, s = pool.kernel_size, pool.stride
    if pool.pad_mode == "same":  # 'same' averages over the real elements only
        ref = _pool_ref(x, k, s, (_same(7, k[0], s[0]), _same(6, k[1], s[1])), "avg", include_pad=False)
    else:
        ref = _pool_ref(x, k, s, pool._pads, "avg", ceil=pool.ceil_mode, include_pad=pool.count_include_pad,
                        divisor=pool.divisor_override)
    np.testing.assert_allclose(pool(Tensor(x)).asnumpy(), ref, rtol=1e-5, atol=1e-6)


def test_maxpool_indices_and_chw_input():
    x = _t((3, 5, 4))
    out, idx = nn.MaxPool2d(3, 2, pad_mode="pad", padding=1, return_indices=True)(Tensor(x))
    assert str(idx.dtype) == "Int64" and out.shape == idx.shape == (3, 3, 2)
    flat = x.reshape(3, -1)
    np.testing.assert_array_equal(np.take_along_axis(flat, idx.asnumpy().reshape(3, -1), 1).reshape(out.shape),
                                  out.asnumpy())
    with pytest.raises(ValueError, match="pad_mode is 'pad'"):
        nn.MaxPool2d(2, padding=1)
    with pytest.raises(ValueError, match="pad_mode is 'pad'"):
        nn.AvgPool2d(2, pad_mode="same", ceil_mode=True)
    with pytest.raises(ValueError, match="3-D"):
        nn.AvgPool2d(2)(Tensor(_t((2, 3))))


def test_pooling_is_differentiable_under_jit():
    mp = nn.MaxPool2d(3, 2, pad_mode="pad", padding=1, return_indices=True)
    ap = nn.AvgPool2d(3, 2, pad_mode="same")

    def loss(a):
        out, _ = mp(Tensor._wrap(a))
        return jax.numpy.sum(out._jax() ** 2) + jax.numpy.sum(ap(Tensor._wrap(a))._jax())

    x = _t((1, 2, 5, 5))
    g = np.asarray(jax.jit(jax.grad(loss))(x))
    eps = 1e-2
    e = np.zeros_like(x)
    e[0, 1, 2, 3] = eps
    numeric = (float(loss(x + e)) - float(loss(x - e))) / (2 * eps)
    assert abs(g[0, 1, 2, 3] - numeric) < 1e-2 * max(1.0, abs(numeric))
