"""Model.train/eval/predict, metrics, callbacks (LossMonitor's format), and the digits demo."""

import os
import re
import subprocess
import sys

import numpy as np
import pytest

import sporax as ms
from sporax import Tensor, nn
from sporax.train import Callback, LossMonitor, Model, TimeMonitor
from sporax.train.callback import ProgressBar, RunContext

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def _blobs(n=96, seed=0):
    """Three well separated Gaussian blobs in 4-D."""
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 3, n).astype(np.int32)
    centers = np.eye(3, 4, dtype=np.float32) * 4
    x = (centers[y] + rng.standard_normal((n, 4)).astype(np.float32) * 0.5).astype(np.float32)
    return x, y


class Batches:
    def __init__(self, x, y, bs):
        self.x, self.y, self.bs = x, y, bs

    def __len__(self):
        return len(self.x) // self.bs

    def __iter__(self):
        for i in range(len(self)):
            yield self.x[i * self.bs:(i + 1) * self.bs], self.y[i * self.bs:(i + 1) * self.bs]


def _model(metrics=None):
    net = nn.Dense(4, 3)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    return Model(net, loss_fn=loss, optimizer=opt, metrics=metrics or {"Accuracy": nn.Accuracy(), "Loss": nn.Loss()})


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_train_and_eval_on_a_small_dataset(mode):
    ms.set_context(mode=mode)
    x, y = _blobs()
    model = _model()
    before = model.eval(Batches(x, y, 16))
    model.train(3, Batches(x, y, 16))
    after = model.eval(Batches(x, y, 16))
    assert set(after) == {"Accuracy", "Loss"}
    assert after["Accuracy"] >= 0.95 and after["Loss"] < before["Loss"]
    pred = model.predict(Tensor(x[:5]))
    assert pred.shape == (5, 3)
    assert np.array_equal(pred.asnumpy().argmax(1), y[:5])


def test_metric_names_and_errors():
    x, y = _blobs(32)
    model = _model(metrics={"acc", "loss"})
    result = model.eval([(x, y)])
    assert set(result) == {"acc", "loss"}
    with pytest.raises(ValueError, match="'name' should be one of"):
        _model(metrics={"nope"})
    acc = nn.Accuracy()
    acc.update(Tensor(np.array([[0.1, 0.9], [0.8, 0.2]], np.float32)), Tensor(np.array([1, 1], np.int32)))
    assert acc.eval() == 0.5
    acc.clear()
    with pytest.raises(RuntimeError, match="number of samples is 0"):
        acc.eval()
    loss = nn.Loss()
    loss.update(Tensor(np.array(2.0, np.float32)))
    loss.update(Tensor(np.array([4.0], np.float32)))
    assert loss.eval() == pytest.approx(3.0)


def test_loss_monitor_format(capsys):
    x, y = _blobs(64)
    model = _model()
    model.train(2, Batches(x, y, 16), callbacks=LossMonitor(per_print_times=2))
    lines = capsys.readouterr().out.strip().splitlines()
    assert [re.sub(r"loss is .*", "", line) for line in lines] == [
        "epoch: 1 step: 2, ", "epoch: 1 step: 4, ", "epoch: 2 step: 2, ", "epoch: 2 step: 4, "]
    assert all(re.fullmatch(r"epoch: \d step: \d, loss is \d+\.\d+(e-\d+)?", line) for line in lines)


def test_callback_order_params_and_stop(capsys):
    events = []

    class Recorder(Callback):
        def on_train_begin(self, rc):
            events.append("begin")

        def on_train_epoch_begin(self, rc):
            events.append(f"epoch{rc.original_args().cur_epoch_num}")

        def step_end(self, rc):  # the legacy hook, reached through on_train_step_end
            p = rc.original_args()
            events.append((p.cur_step_num, p.batch_num, p.epoch_num, isinstance(p.net_outputs, Tensor)))
            if p.cur_step_num == 3:
                rc.request_stop()

        def on_train_end(self, rc):
            events.append("end")

    x, y = _blobs(64)
    model = _model()
    model.train(5, Batches(x, y, 16), callbacks=[Recorder(), TimeMonitor(), ProgressBar()])
    assert events == ["begin", "epoch1", (1, 4, 5, True), (2, 4, 5, True), (3, 4, 5, True), "end"]
    assert "Train epoch time:" in capsys.readouterr().out
    with pytest.raises(TypeError, match="'original_args' should be a dict"):
        RunContext([])
    with pytest.raises(TypeError, match="'callbacks' should be"):
        model.train(1, Batches(x, y, 16), callbacks=[object()])


def test_loss_monitor_stops_on_nan():
    class NaNNet(nn.Cell):
        def construct(self, x, y):
            return Tensor(np.array(np.nan, np.float32))

    model = Model(NaNNet())
    with pytest.raises(ValueError, match="loss is NAN or INF"):
        model.train(1, [(np.zeros(1, np.float32), np.zeros(1, np.float32))], callbacks=LossMonitor())


def test_train_digits_example_reaches_95_percent():
    env = dict(os.environ)
    env.pop("XLA_FLAGS", None)
    out = subprocess.run(
        [sys.executable, "-m", "sporax", "run", os.path.join(ROOT, "examples", "train_digits.py")],
        capture_output=True, text=True, timeout=120, env=env, cwd=ROOT,
    )
    assert out.returncode == 0, out.stderr[-3000:]
    match = re.search(r"Test accuracy: (\d\.\d+)", out.stdout)
    assert match, out.stdout
    assert float(match.group(1)) >= 0.95
    assert re.search(r"^epoch: 1 step: \d+, loss is ", out.stdout, re.M)
