"""Losses and metrics against MindSpore 2.10's results (``fixtures/loss_metric_golden.npz``)."""

import os

import numpy as np
import pytest

from sporax import Tensor, nn, train
from sporax.train import Model

G = np.load(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "loss_metric_golden.npz"))
IN = {k.split("::", 1)[1]: G[k] for k in G.files if k.startswith("input::")}


def t(k):
    return Tensor(IN[k])


def same(got, cid, tol=2e-5):
    want = G[cid]
    got = got.asnumpy() if isinstance(got, Tensor) else np.asarray(got)
    assert got.shape == want.shape, cid
    assert got.dtype == want.dtype, (cid, got.dtype, want.dtype)
    np.testing.assert_allclose(got.astype(np.float64), want.astype(np.float64), rtol=tol, atol=tol, err_msg=cid)


@pytest.mark.parametrize("red", ["mean", "sum", "none"])
def test_losses_match_mindspore(red):
    same(nn.MAELoss(red)(t("x"), t("y")), f"MAELoss/{red}")
    same(nn.HuberLoss(red, delta=0.7)(t("x"), t("y")), f"HuberLoss/{red}")
    same(nn.SmoothL1Loss(0.5, red)(t("x"), t("y")), f"SmoothL1Loss/{red}")
    same(nn.KLDivLoss(red)(t("logp"), t("prob")), f"KLDivLoss/{red}")
    same(nn.CosineEmbeddingLoss(0.1, red)(t("x1"), t("x2"), t("pm1")), f"CosineEmbeddingLoss/{red}")
    same(nn.CrossEntropyLoss(t("w5"), reduction=red)(t("x"), t("cls")), f"CrossEntropyLoss/{red}")
    same(nn.NLLLoss(t("w5"), reduction=red)(t("logp"), t("cls")), f"NLLLoss/{red}")


def test_loss_variants_match_mindspore():
    same(nn.KLDivLoss("batchmean")(t("logp"), t("prob")), "KLDivLoss/batchmean")
    same(nn.MAELoss()(t("x16"), t("y16")), "MAELoss/f16", 2e-3)
    same(nn.HuberLoss()(t("x16"), t("y16")), "HuberLoss/f16", 2e-3)
    same(nn.CrossEntropyLoss(label_smoothing=0.2)(t("x"), t("cls_ign")), "CrossEntropyLoss/ignore_smooth")
    same(nn.CrossEntropyLoss()(t("x"), t("prob")), "CrossEntropyLoss/probs")
    same(nn.CrossEntropyLoss()(t("img"), t("img_cls")), "CrossEntropyLoss/img")
    same(nn.NLLLoss(ignore_index=-100)(t("logp"), t("cls_ign")), "NLLLoss/ignore")


def test_loss_argument_errors():
    with pytest.raises(ValueError, match="'reduction'"):
        nn.HuberLoss("avg")
    with pytest.raises(ValueError, match="'margin'"):
        nn.CosineEmbeddingLoss(margin=2.0)
    # MindSpore accepts these at construction and fails later; sporax says so at once.
    with pytest.raises(ValueError, match="'delta'"):
        nn.HuberLoss(delta=-1.0)
    with pytest.raises(ValueError, match="'reduction'"):
        nn.KLDivLoss("avg")
    with pytest.raises(TypeError, match="'logits'"):
        nn.MAELoss()(IN["x"], t("y"))


def _metric(m, batches, **kw):
    m.clear()
    for p, y in batches:
        m.update(t(p), t(y))
    return m.eval(**kw)


def test_metrics_match_mindspore():
    reg = [("reg_p", "reg_y"), ("x1", "x2")]
    cls = [("pred", "lab"), ("pred2", "lab2")]
    same(_metric(train.MAE(), reg), "MAE")
    same(_metric(train.MSE(), reg), "MSE")
    same(_metric(train.Precision(), cls), "Precision")
    same(_metric(train.Precision(), cls, average=True), "Precision/avg")
    same(_metric(train.Recall(), cls), "Recall")
    same(_metric(train.Recall(), cls, average=True), "Recall/avg")
    same(_metric(train.Precision("multilabel"), [("ml_p", "ml_y")]), "Precision/multilabel")
    same(_metric(train.Recall("multilabel"), [("ml_p", "ml_y")], average=True), "Recall/multilabel_avg")
    same(_metric(train.Top1CategoricalAccuracy(), cls), "Top1")
    same(_metric(train.TopKCategoricalAccuracy(2), cls), "Top2")
    same(_metric(train.Top5CategoricalAccuracy(), [("x", "cls")]), "Top5")
    assert nn.MAE is train.MAE and nn.Precision is train.Precision
    with pytest.raises(RuntimeError, match="number of samples is 0"):
        train.MAE().eval()
    with pytest.raises(ValueError, match="'k'"):
        train.TopKCategoricalAccuracy(0)
    ms_names = set(G["names"].tolist())
    ours = set(train.names())
    assert ours <= ms_names
    assert {"mae", "mse", "accuracy", "precision", "recall", "top_1_accuracy", "top_5_accuracy", "loss"} <= ours


class _Linear(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc = nn.Dense(4, 4)

    def construct(self, x):
        return self.fc(x)


def test_model_accepts_mindspore_metric_names():
    net = _Linear()
    names = {"accuracy", "precision", "recall", "top_1_accuracy", "top_5_accuracy", "loss"}
    model = Model(net, nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), metrics=names)
    data = [(t("pred"), t("lab")), (t("pred2"), t("lab2"))]
    res = model.eval(data)
    assert set(res) == names
    outs = [(net(x).asnumpy(), y.asnumpy()) for x, y in data]
    top1 = train.Top1CategoricalAccuracy()
    acc = train.Accuracy()
    for o, y in outs:
        top1.update(o, y)
        acc.update(o, y)
    assert res["top_1_accuracy"] == pytest.approx(top1.eval()) == pytest.approx(res["accuracy"])
    assert isinstance(res["precision"], np.ndarray) and res["precision"].shape == (4,)
    assert res["top_5_accuracy"] == 1.0  # 4 classes: every label is within the top 5


def test_model_regression_metric_names():
    net = nn.Dense(2, 2)
    model = Model(net, nn.MSELoss(), metrics={"mae", "mse", "loss"})
    data = [(t("reg_p"), t("reg_y")), (t("x1")[:, :2], t("x2")[:, :2])]
    res = model.eval(data)
    mae, mse = train.MAE(), train.MSE()
    for x, y in data:
        mae.update(net(x), y)
        mse.update(net(x), y)
    assert res["mae"] == pytest.approx(mae.eval(), rel=1e-5) and res["mse"] == pytest.approx(mse.eval(), rel=1e-5)
