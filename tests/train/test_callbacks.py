"""ModelCheckpoint (names and rotation as MindSpore 2.10 writes them), CheckpointConfig, Model.fit,
EarlyStopping, ReduceLROnPlateau, History, LambdaCallback, SummaryCollector.

The expected file names come from ``golden/ckpt_names.json``, written by real MindSpore with
``golden/make_ckpt_names.py`` on the same scenarios.
"""

import json
import os
import re

import numpy as np
import pytest

import sporax as ms
from sporax import nn
from sporax.train import (
    Callback,
    CheckpointConfig,
    EarlyStopping,
    History,
    LambdaCallback,
    Model,
    ModelCheckpoint,
    ReduceLROnPlateau,
    SummaryCollector,
    TimeMonitor,
)

GOLDEN = json.load(open(os.path.join(os.path.dirname(__file__), "golden", "ckpt_names.json")))


class Batches:
    """``n`` batches of 4 rows, re-iterable (one pass per epoch)."""

    def __init__(self, n, seed=0, separable=False):
        rng = np.random.default_rng(seed)
        self.y = rng.integers(0, 3, n * 4).astype(np.int32)
        if separable:
            self.x = (np.eye(3, 4, dtype=np.float32)[self.y] * 4 + rng.standard_normal((n * 4, 4)) * 0.3)
            self.x = self.x.astype(np.float32)
        else:
            self.x = rng.standard_normal((n * 4, 4)).astype(np.float32)
        self.n = n

    def __len__(self):
        return self.n

    def __iter__(self):
        for i in range(self.n):
            yield self.x[i * 4:(i + 1) * 4], self.y[i * 4:(i + 1) * 4]


def _model(lr=0.1, metrics=None):
    net = nn.Dense(4, 3)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), lr, 0.9)
    return Model(net, loss, opt, metrics=metrics)


def _ckpts(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".ckpt"))


def _scenario(tmp_path, config_kwargs, runs, epochs, steps):
    out = []
    for _ in range(runs):
        cb = ModelCheckpoint(prefix="net", directory=str(tmp_path), config=CheckpointConfig(**config_kwargs))
        _model().train(epochs, Batches(steps), callbacks=[cb])
        out.append({"ckpt": _ckpts(tmp_path), "latest": os.path.basename(cb.latest_ckpt_file_name)})
    return out


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
@pytest.mark.parametrize("name,cfg,runs,epochs,steps", [
    ("steps2_keep3", dict(save_checkpoint_steps=2, keep_checkpoint_max=3), 1, 2, 5),
    ("steps3_keep10_three_runs", dict(save_checkpoint_steps=3, keep_checkpoint_max=10), 3, 1, 4),
    ("steps1_keep2", dict(save_checkpoint_steps=1, keep_checkpoint_max=2), 1, 1, 4),
])
def test_model_checkpoint_names_and_rotation_match_mindspore(tmp_path, mode, name, cfg, runs, epochs, steps):
    ms.set_context(mode=mode)
    got = _scenario(tmp_path, cfg, runs, epochs, steps)
    want = [{"ckpt": r["ckpt"], "latest": r["latest"]} for r in GOLDEN[name]]
    assert got == want


def test_checkpoint_contents_and_append_info_match_mindspore_keys(tmp_path):
    g = GOLDEN["append_info"]
    cfg = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=1,
                           append_info=["epoch_num", "step_num", {"lr": 0.5}])
    cb = ModelCheckpoint(prefix="app", directory=str(tmp_path), config=cfg)
    model = _model()
    model.train(1, Batches(4), callbacks=[cb])
    assert _ckpts(tmp_path) == g["files"]
    data = ms.load_checkpoint(cb.latest_ckpt_file_name)
    assert sorted(data) == g["keys"]
    assert int(data["epoch_num"].asnumpy()) == g["epoch_num"] and int(data["step_num"].asnumpy()) == g["step_num"]
    assert float(data["lr"].asnumpy()) == g["lr"]
    np.testing.assert_array_equal(data["weight"].asnumpy(), model.predict_network.weight.asnumpy())


def test_checkpoint_config_policies_and_errors(tmp_path):
    cfg = CheckpointConfig(save_checkpoint_steps=0, save_checkpoint_seconds=5, keep_checkpoint_max=0,
                           keep_checkpoint_per_n_minutes=2)
    assert cfg.get_checkpoint_policy() == {"save_checkpoint_steps": 0, "save_checkpoint_seconds": 5,
                                           "keep_checkpoint_max": 0, "keep_checkpoint_per_n_minutes": 2,
                                           "saved_network": None}
    cfg = CheckpointConfig(save_checkpoint_steps=3, save_checkpoint_seconds=5)
    assert cfg.save_checkpoint_seconds is None and cfg.keep_checkpoint_per_n_minutes is None
    assert CheckpointConfig(keep_checkpoint_max=0, save_checkpoint_steps=1).keep_checkpoint_max == 1
    with pytest.raises(ValueError, match="can't be all None or 0"):
        CheckpointConfig(0, 0, 0, 0)
    with pytest.raises(ValueError, match="'save_checkpoint_steps' should be an int >= 0"):
        CheckpointConfig(save_checkpoint_steps=-1)
    with pytest.raises(ValueError, match="append_info"):
        CheckpointConfig(append_info=["epoch"])
    with pytest.raises(TypeError, match="append_info"):
        CheckpointConfig(append_info="epoch_num")
    with pytest.raises(TypeError, match="saved_network"):
        CheckpointConfig(saved_network=3)
    with pytest.raises(ValueError, match="exception_save"):
        CheckpointConfig(exception_save=True)
    with pytest.raises(ValueError, match="'prefix'"):
        ModelCheckpoint(prefix="a/b", directory=str(tmp_path))
    with pytest.raises(TypeError, match="'config'"):
        ModelCheckpoint(directory=str(tmp_path), config={"save_checkpoint_steps": 1})


def test_seconds_policy_callable_prefix_saved_network_and_safetensors(tmp_path):
    # save_checkpoint_seconds: no step policy; only the forced save at the end happens in a fast run
    d1 = tmp_path / "sec"
    cb = ModelCheckpoint("s", str(d1), CheckpointConfig(save_checkpoint_steps=0, save_checkpoint_seconds=3600))
    _model().train(1, Batches(3), callbacks=cb)
    assert _ckpts(d1) == ["s-1_3.ckpt"]
    # a callable prefix names the file itself; saved_network saves just that cell
    d2 = tmp_path / "fn"
    model = _model()
    cfg = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=5, saved_network=model.predict_network)
    cb = ModelCheckpoint(lambda p: f"step{p.cur_step_num}", str(d2), cfg)
    model.train(1, Batches(4), callbacks=[cb])
    assert _ckpts(d2) == ["step2.ckpt", "step4.ckpt"]
    assert sorted(ms.load_checkpoint(str(d2 / "step4.ckpt"))) == ["bias", "weight"]
    d3 = tmp_path / "st"
    cb = ModelCheckpoint("t", str(d3), CheckpointConfig(save_checkpoint_steps=2, format="safetensors"))
    _model().train(1, Batches(2), callbacks=[cb])
    assert sorted(os.listdir(d3)) == ["t-1_2.safetensors"]


def test_async_save_and_a_loss_scale_train_network(tmp_path, capsys):
    from sporax.train import LossMonitor

    net = nn.Dense(4, 3)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    model = Model(net, loss, nn.Momentum(net.trainable_params(), 0.1, 0.9), amp_level="O2")
    cfg = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=2, async_save=True)
    cb = ModelCheckpoint("ls", str(tmp_path), cfg)
    model.train(1, Batches(4), callbacks=[cb, LossMonitor(2)])
    assert _ckpts(tmp_path) == ["ls-1_2.ckpt", "ls-1_4.ckpt"]
    keys = set(ms.load_checkpoint(cb.latest_ckpt_file_name))
    assert {"scale_sense", "current_iterator_step", "last_overflow_iterator_step", "weight"} <= keys
    # LossMonitor prints the loss of the (loss, overflow, scale) outputs as a number
    assert re.findall(r"epoch: 1 step: (\d), loss is \d+\.\d+", capsys.readouterr().out) == ["2", "4"]


def test_keep_checkpoint_per_n_minutes_keeps_one_recent_file(tmp_path):
    cfg = CheckpointConfig(save_checkpoint_steps=1, keep_checkpoint_max=0, keep_checkpoint_per_n_minutes=10)
    cb = ModelCheckpoint("m", str(tmp_path), cfg)
    _model().train(1, Batches(4), callbacks=[cb])
    # each save thins the files of the last 10 minutes to the oldest one, then writes its own
    assert _ckpts(tmp_path) == ["m-1_1.ckpt", "m-1_4.ckpt"]


class Recorder(Callback):
    def __init__(self):
        self.events = []

    def on_train_epoch_end(self, run_context):
        p = run_context.original_args()
        self.events.append(("epoch_end", p.cur_epoch_num, sorted(p.get("eval_results", {}))))

    def on_eval_end(self, run_context):
        self.events.append(("eval_end", run_context.original_args().mode))


@pytest.mark.parametrize("mode", [ms.PYNATIVE_MODE, ms.GRAPH_MODE])
def test_fit_validates_at_the_requested_epochs(mode):
    ms.set_context(mode=mode)
    rec = Recorder()
    hist = History()
    model = _model(metrics={"acc"})
    model.fit(4, Batches(6, separable=True), Batches(3, seed=1, separable=True), valid_frequency=2,
              callbacks=[rec, hist, TimeMonitor()])
    assert rec.events == [("epoch_end", 1, []), ("eval_end", "eval"), ("epoch_end", 2, ["acc", "eval_loss"]),
                          ("epoch_end", 3, []), ("eval_end", "eval"), ("epoch_end", 4, ["acc", "eval_loss"])]
    assert hist.epoch == {"epoch": [1, 2, 3, 4]}
    assert len(hist.history["net_output"]) == 4 and len(hist.history["acc"]) == 2
    assert hist.history["acc"][-1] >= 0.9
    rec2 = Recorder()
    _model(metrics={"acc"}).fit(3, Batches(2), Batches(1), valid_frequency=[1, 3], callbacks=rec2)
    assert [e[1] for e in rec2.events if e[0] == "epoch_end" and e[2]] == [1, 3]
    with pytest.raises(ValueError, match="'metrics' can not be"):
        _model().fit(1, Batches(2), Batches(1))
    with pytest.raises(TypeError, match="valid_frequency"):
        _model(metrics={"acc"}).fit(1, Batches(2), Batches(1), valid_frequency=1.5)


def test_early_stopping_stops_and_restores_best_weights():
    model = _model(lr=0.0, metrics={"acc"})  # lr 0: the loss never improves after the first epoch
    es = EarlyStopping(monitor="eval_loss", patience=2, restore_best_weights=True)
    rec = Recorder()
    model.fit(10, Batches(2), Batches(1), callbacks=[es, rec])
    assert es.stopped_epoch == 3 and len([e for e in rec.events if e[0] == "epoch_end"]) == 3
    # on the training loss, mode max: the first epoch improves on -inf, the second cannot beat it by 1e9
    es2 = EarlyStopping(monitor="loss", patience=1, mode="max", min_delta=1e9)
    _model().train(5, Batches(2), callbacks=es2)
    assert es2.stopped_epoch == 2
    # restore_best_weights: the weights come back from the best epoch
    model = _model(lr=0.5, metrics={"acc"})
    seen = []
    cb = LambdaCallback(on_train_epoch_end=lambda rc: seen.append(model.predict_network.weight.asnumpy().copy()))
    es3 = EarlyStopping(monitor="acc", mode="max", patience=1, baseline=2.0, restore_best_weights=True)
    model.fit(3, Batches(2, separable=True), Batches(2, separable=True), callbacks=[cb, es3])
    assert es3.stopped_epoch == 1 and len(seen) == 1
    np.testing.assert_array_equal(model.predict_network.weight.asnumpy(), seen[0])
    with pytest.raises(ValueError, match="mode should be"):
        EarlyStopping(mode="up")
    with pytest.raises(TypeError, match="'monitor'"):
        EarlyStopping(monitor=1)


def test_reduce_lr_on_plateau_multiplies_the_learning_rate():
    model = _model(lr=0.0, metrics={"acc"})
    opt = model._optimizer
    opt.learning_rate.set_data(ms.Tensor(np.float32(0.4)))
    cb = ReduceLROnPlateau(monitor="eval_loss", factor=0.5, patience=1, min_delta=10.0, cooldown=1, min_lr=0.06)
    model.fit(6, Batches(1), Batches(1), callbacks=cb)
    # epochs 1..6: best set at 1; reduce at 2 (0.2); cooldown 3; reduce at 4 (0.1); cooldown 5; reduce at 6 (min 0.06)
    assert float(opt.learning_rate.asnumpy()) == pytest.approx(0.06)
    with pytest.raises(ValueError, match="'factor'"):
        ReduceLROnPlateau(factor=1.0)
    sched = nn.Momentum(nn.Dense(4, 3).trainable_params(), [0.1, 0.2], 0.9)
    m = Model(nn.Dense(4, 3), nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean"), sched)
    with pytest.raises(ValueError, match="dynamic learning rate"):
        m.train(1, Batches(1), callbacks=ReduceLROnPlateau(monitor="loss"))


def test_lambda_callback_and_summary_collector():
    calls = []
    cb = LambdaCallback(on_train_begin=lambda rc: calls.append("begin"),
                        on_train_step_end=lambda rc: calls.append(rc.original_args().cur_step_num),
                        on_train_end=lambda rc: calls.append("end"))
    _model().train(1, Batches(3), callbacks=[cb])
    assert calls == ["begin", 1, 2, 3, "end"]
    with pytest.raises(TypeError, match="on_train_end"):
        LambdaCallback(on_train_end=3)
    with pytest.raises(RuntimeError, match="out of scope for sporax"):
        SummaryCollector("./summary")
