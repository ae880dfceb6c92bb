"""Losses against numpy, with MindSpore's reductions and argument checks."""

import numpy as np
import pytest

from sporax import Tensor, nn

RNG = np.random.default_rng(1)


def _t(shape):
    return RNG.standard_normal(shape).astype(np.float32)


def _log_softmax(x):
    m = x.max(-1, keepdims=True)
    return x - m - np.log(np.exp(x - m).sum(-1, keepdims=True))


@pytest.mark.parametrize("reduction", ["mean", "sum", "none"])
def test_mse_and_l1(reduction):
    x, y = _t((3, 4)), _t((3, 4))
    reduce = {"mean": np.mean, "sum": np.sum, "none": lambda a: a}[reduction]
    np.testing.assert_allclose(nn.MSELoss(reduction)(Tensor(x), Tensor(y)).asnumpy(), reduce((x - y) ** 2), rtol=1e-5)
    np.testing.assert_allclose(nn.L1Loss(reduction)(Tensor(x), Tensor(y)).asnumpy(), reduce(np.abs(x - y)), rtol=1e-5)


def test_loss_defaults_and_errors():
    assert nn.MSELoss().reduction == "mean"
    assert nn.SoftmaxCrossEntropyWithLogits().reduction == "none"
    with pytest.raises(ValueError, match="'reduction'"):
        nn.L1Loss("avg")
    with pytest.raises(TypeError, match="'logits'"):
        nn.MSELoss()(np.ones(2), Tensor(np.ones(2)))


def test_softmax_cross_entropy_dense_and_sparse():
    logits = _t((4, 5))
    labels = np.array([0, 3, 4, 1], np.int32)
    one_hot = np.eye(5, dtype=np.float32)[labels]
    ref = -(one_hot * _log_softmax(logits)).sum(-1)
    dense = nn.SoftmaxCrossEntropyWithLogits()(Tensor(logits), Tensor(one_hot)).asnumpy()
    assert dense.shape == (4,)
    np.testing.assert_allclose(dense, ref, rtol=1e-5)
    sparse = nn.SoftmaxCrossEntropyWithLogits(sparse=True)(Tensor(logits), Tensor(labels)).asnumpy()
    np.testing.assert_allclose(sparse, ref, rtol=1e-5)
    mean = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")(Tensor(logits), Tensor(labels))
    np.testing.assert_allclose(mean.asnumpy(), ref.mean(), rtol=1e-5)
    soft = RNG.dirichlet(np.ones(5), size=4).astype(np.float32)
    out = nn.SoftmaxCrossEntropyWithLogits(reduction="sum")(Tensor(logits), Tensor(soft)).asnumpy()
    np.testing.assert_allclose(out, -(soft * _log_softmax(logits)).sum(), rtol=1e-5)
    with pytest.raises(TypeError, match="class indices"):
        nn.SoftmaxCrossEntropyWithLogits(sparse=True)(Tensor(logits), Tensor(one_hot))


def test_bce_with_logits_weights_and_stability():
    x, y = _t((3, 4)) * 3, (RNG.random((3, 4)) > 0.5).astype(np.float32)
    w, pw = np.abs(_t((4,))), np.abs(_t((4,)))
    sig = 1 / (1 + np.exp(-x))
    ref = -w * (pw * y * np.log(sig) + (1 - y) * np.log(1 - sig))
    loss = nn.BCEWithLogitsLoss("none", weight=Tensor(w), pos_weight=Tensor(pw))
    np.testing.assert_allclose(loss(Tensor(x), Tensor(y)).asnumpy(), ref, rtol=1e-4, atol=1e-6)
    plain = -(y * np.log(sig) + (1 - y) * np.log(1 - sig))
    np.testing.assert_allclose(nn.BCEWithLogitsLoss()(Tensor(x), Tensor(y)).asnumpy(), plain.mean(), rtol=1e-5)
    big = nn.BCEWithLogitsLoss("none")(Tensor(np.array([100.0, -100.0], np.float32)), Tensor(np.array([0.0, 1.0], np.float32)))
    np.testing.assert_allclose(big.asnumpy(), [100.0, 100.0], rtol=1e-6)
    from sporax import Parameter

    with pytest.raises(TypeError, match="'weight'"):
        nn.BCEWithLogitsLoss(weight=Parameter(Tensor(w), name="w"))


def test_get_loss_weights_and_dtype():
    class Weighted(nn.LossBase):
        def construct(self, x, y):
            return self.get_loss(x - y, weights=Tensor(np.array([1.0, 2.0], np.float32)))

    x = Tensor(np.array([1.0, 1.0], np.float16))
    y = Tensor(np.array([0.0, 0.0], np.float16))
    out = Weighted("sum")(x, y)
    assert out.dtype == x.dtype
    np.testing.assert_allclose(out.asnumpy(), 3.0)
    assert Weighted().get_axis(Tensor(np.zeros((2, 3)))) == (0, 1)


def _ce_inputs():
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4)).astype(np.float32)
    x3 = rng.standard_normal((2, 4, 3)).astype(np.float32)
    y = np.array([0, 3, 1, -100, 2, 3], np.int32)
    y3 = rng.integers(0, 4, (2, 3)).astype(np.int32)
    p = rng.dirichlet(np.ones(4), 6).astype(np.float32)
    w = np.array([0.5, 1.0, 2.0, 1.5], np.float32)
    return x, x3, y, y3, p, w


def test_cross_entropy_matches_mindspore_values():
    x, x3, y, y3, p, w = _ce_inputs()
    W = Tensor(w)
    # Printed by MindSpore 2.10's nn.CrossEntropyLoss on these inputs (index -100 is ignored).
    cases = [
        (dict(), x, y, 1.530673),
        (dict(weight=W), x, y, 1.4757116),
        (dict(label_smoothing=0.2), x, y, 1.5356675),
        (dict(weight=W, label_smoothing=0.1), x, y, 1.4671109),
        (dict(reduction="sum"), x, y, 7.653365),
        (dict(), x, p, 1.7593042),
        (dict(weight=W, label_smoothing=0.1), x, p, 1.9506432),
        (dict(weight=W), x3, y3, 1.7359325),
    ]
    for kwargs, logits, labels, expected in cases:
        got = nn.CrossEntropyLoss(**kwargs)(Tensor(logits), Tensor(labels)).asnumpy()
        np.testing.assert_allclose(got, expected, rtol=2e-6, err_msg=str(kwargs))


def test_cross_entropy_and_nll_per_sample_against_numpy():
    x, _, y, _, p, w = _ce_inputs()
    lp = _log_softmax(x)
    valid = y != -100
    ref = np.where(valid, -lp[np.arange(6), np.where(valid, y, 0)] * w[np.where(valid, y, 0)], 0)
    got = nn.CrossEntropyLoss(weight=Tensor(w), reduction="none")(Tensor(x), Tensor(y)).asnumpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5)
    nll = nn.NLLLoss(weight=Tensor(w))(Tensor(lp), Tensor(y)).asnumpy()
    np.testing.assert_allclose(nll, ref.sum() / w[y[valid]].sum(), rtol=1e-5)
    soft = nn.CrossEntropyLoss(reduction="none")(Tensor(x), Tensor(p)).asnumpy()
    np.testing.assert_allclose(soft, -(p * lp).sum(1), rtol=1e-5)
    with pytest.raises(ValueError, match="label_smoothing"):
        nn.CrossEntropyLoss(label_smoothing=1.5)
    with pytest.raises(ValueError, match="shape of 'logits'"):
        nn.CrossEntropyLoss()(Tensor(x), Tensor(p[:, :3]))


def test_smooth_l1():
    x, y = _t((3, 4)), _t((3, 4))
    d = np.abs(x - y)
    ref = np.where(d < 0.5, 0.5 * d**2 / 0.5, d - 0.25)
    np.testing.assert_allclose(nn.SmoothL1Loss(beta=0.5)(Tensor(x), Tensor(y)).asnumpy(), ref, rtol=1e-5)
    assert nn.SmoothL1Loss()(Tensor(x), Tensor(y)).shape == (3, 4)  # default reduction 'none'
    with pytest.raises(ValueError, match="'beta'"):
        nn.SmoothL1Loss(beta=0.0)
