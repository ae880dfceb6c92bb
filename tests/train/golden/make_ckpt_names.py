"""Record REAL MindSpore 2.10's ModelCheckpoint file names, rotation and key sets.

Run with a Python that has MindSpore (never needed by the tests)::

    /work/ms-ref/bin/python tests/train/golden/make_ckpt_names.py

Writes ``ckpt_names.json``: for each scenario, the ``.ckpt`` files left in the directory after
each ``Model.train`` call (in order), and the key sets of checkpoints of a loss-scale
training cell.
"""

import json
import os
import tempfile

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn
from mindspore.train import CheckpointConfig, Model, ModelCheckpoint

HERE = os.path.dirname(os.path.abspath(__file__))
ms.set_seed(0)
try:  # NumPy 2: the first op on a Python scalar may raise a spurious SystemError
    Tensor(1.0) + 1
except SystemError:
    pass


class _EpochIterator:
    """What a MindSpore dataset's ``create_tuple_iterator(num_epochs)`` gives: StopIteration at the
    end of each epoch, then the next epoch from the start (mindspore.dataset itself fails under
    NumPy 2 in this environment, so the protocol is reproduced here)."""

    def __init__(self, batches):
        self.batches, self.i = batches, 0

    def __iter__(self):
        return self

    def __next__(self):
        if self.i == len(self.batches):
            self.i = 0
            raise StopIteration
        self.i += 1
        return list(self.batches[self.i - 1])


class Batches:
    def __init__(self, n):
        rng = np.random.default_rng(0)
        x = rng.standard_normal((n * 4, 4)).astype(np.float32)
        y = rng.integers(0, 3, n * 4).astype(np.int32)
        self.batches = [(Tensor(x[i * 4:(i + 1) * 4]), Tensor(y[i * 4:(i + 1) * 4])) for i in range(n)]

    def get_dataset_size(self):
        return len(self.batches)

    def create_tuple_iterator(self, num_epochs=-1, do_copy=True, output_numpy=False):
        return _EpochIterator(self.batches)

    def reset(self):
        pass


def ckpts(d):
    return sorted(f for f in os.listdir(d) if f.endswith(".ckpt"))


def others(d):
    return sorted(f for f in os.listdir(d) if not f.endswith(".ckpt"))


def model():
    net = nn.Dense(4, 3)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
    return Model(net, loss, opt)


def scenario(config_kwargs, runs, epochs, steps, prefix="net", mode=ms.PYNATIVE_MODE):
    ms.set_context(mode=mode)
    out = []
    with tempfile.TemporaryDirectory() as d:
        for _ in range(runs):
            cb = ModelCheckpoint(prefix=prefix, directory=d, config=CheckpointConfig(**config_kwargs))
            model().train(epochs, Batches(steps), callbacks=[cb], dataset_sink_mode=False)
            out.append({"ckpt": ckpts(d), "other": others(d), "latest": os.path.basename(cb.latest_ckpt_file_name)})
    return out


result = {
    "steps2_keep3": scenario(dict(save_checkpoint_steps=2, keep_checkpoint_max=3), 1, 2, 5),
    "steps2_keep3_graph": scenario(dict(save_checkpoint_steps=2, keep_checkpoint_max=3), 1, 2, 5, mode=ms.GRAPH_MODE),
    "steps3_keep10_three_runs": scenario(dict(save_checkpoint_steps=3, keep_checkpoint_max=10), 3, 1, 4),
    "steps1_keep2": scenario(dict(save_checkpoint_steps=1, keep_checkpoint_max=2), 1, 1, 4),
    "append_info": None,
}

# append_info: the extra keys MindSpore writes
ms.set_context(mode=ms.PYNATIVE_MODE)
with tempfile.TemporaryDirectory() as d:
    cfg = CheckpointConfig(save_checkpoint_steps=2, keep_checkpoint_max=1, append_info=["epoch_num", "step_num", {"lr": 0.5}])
    cb = ModelCheckpoint(prefix="app", directory=d, config=cfg)
    model().train(1, Batches(4), callbacks=[cb], dataset_sink_mode=False)
    files = ckpts(d)
    data = ms.load_checkpoint(os.path.join(d, files[-1]))
    result["append_info"] = {"files": files, "keys": sorted(data), "epoch_num": int(data["epoch_num"].asnumpy()),
                             "step_num": int(data["step_num"].asnumpy()), "lr": float(data["lr"].asnumpy())}

# key sets of loss-scale training cells (what ModelCheckpoint saves: cb_params.train_network)
keys = {}
net = nn.Dense(4, 3)
loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
cell = nn.TrainOneStepWithLossScaleCell(nn.WithLossCell(net, loss), opt,
                                        scale_sense=nn.DynamicLossScaleUpdateCell(2 ** 12, 2, 1000))
keys["dynamic_update_cell"] = [p.name for p in cell.get_parameters()]
net = nn.Dense(4, 3)
opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
cell = nn.TrainOneStepWithLossScaleCell(nn.WithLossCell(net, loss), opt, scale_sense=nn.FixedLossScaleUpdateCell(128.0))
keys["fixed_update_cell"] = [p.name for p in cell.get_parameters()]
net = nn.Dense(4, 3)
opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
cell = nn.TrainOneStepWithLossScaleCell(nn.WithLossCell(net, loss), opt, scale_sense=Tensor(64.0, ms.float32))
keys["tensor_sense"] = [p.name for p in cell.get_parameters()]
net = nn.Dense(4, 3)
opt = nn.Momentum(net.trainable_params(), 0.1, 0.9)
m = Model(net, loss, opt, amp_level="O2", loss_scale_manager=ms.amp.FixedLossScaleManager(128.0, drop_overflow_update=False))
keys["model_O2_fixed_no_drop"] = [p.name for p in m.train_network.get_parameters()]
with tempfile.TemporaryDirectory() as d:
    ms.save_checkpoint(cell, os.path.join(d, "c.ckpt"))
    keys["tensor_sense_saved"] = sorted(ms.load_checkpoint(os.path.join(d, "c.ckpt")))
result["loss_scale_keys"] = keys
try:
    Model(nn.Dense(4, 3), loss, nn.Momentum(nn.Dense(4, 3).trainable_params(), 0.1, 0.9), amp_level="O2")
    result["O2_cpu_default"] = "ok"
except Exception as e:  # noqa: BLE001
    result["O2_cpu_default"] = f"{type(e).__name__}: {e}"

with open(os.path.join(HERE, "ckpt_names.json"), "w") as f:
    json.dump(result, f, indent=1, sort_keys=True)
print(json.dumps(result, indent=1, sort_keys=True))
