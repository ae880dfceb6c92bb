"""Record REAL MindSpore 2.10's mixed-precision training losses (O0, O2, O3) on a fixed MLP.

Run with a Python that has MindSpore (never needed by the tests)::

    /work/ms-ref/bin/python tests/train/golden/make_amp_golden.py

The weights and data are a pure function of numpy's seeded generator (``amp_case.make_case``,
shared with ``tests/train/test_amp.py``). On CPU MindSpore only allows
``FixedLossScaleManager(drop_overflow_update=False)`` with O2, so every run uses a fixed scale
of 1024 that the optimizer (``loss_scale=1024``) divides back out. Writes ``amp_losses.json``.
"""

import json
import os
import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn
from mindspore.train import Model

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)
from amp_case import LR, MOMENTUM, SCALE, SIZES, STEPS, make_case  # noqa: E402

try:  # NumPy 2: the first op on a Python scalar may raise a spurious SystemError
    Tensor(1.0) + 1
except SystemError:
    pass


class MLP(nn.Cell):
    def __init__(self, weights, bn=False):
        super().__init__()
        self.fc1 = nn.Dense(SIZES[0], SIZES[1], weight_init=Tensor(weights[0][0]), bias_init=Tensor(weights[0][1]))
        self.fc2 = nn.Dense(SIZES[1], SIZES[2], weight_init=Tensor(weights[1][0]), bias_init=Tensor(weights[1][1]))
        self.fc3 = nn.Dense(SIZES[2], SIZES[3], weight_init=Tensor(weights[2][0]), bias_init=Tensor(weights[2][1]))
        self.relu = nn.ReLU()
        self.bn = nn.BatchNorm1d(SIZES[1]) if bn else None

    def construct(self, x):
        x = self.relu(self.fc1(x))
        if self.bn is not None:
            x = self.bn(x)
        x = self.relu(self.fc2(x))
        return self.fc3(x)


def run(level, bn=False):
    weights, batches = make_case()
    net = MLP(weights, bn)
    loss = nn.SoftmaxCrossEntropyWithLogits(sparse=True, reduction="mean")
    opt = nn.Momentum(net.trainable_params(), LR, MOMENTUM, loss_scale=SCALE)
    lsm = ms.amp.FixedLossScaleManager(SCALE, drop_overflow_update=False)
    model = Model(net, loss, opt, amp_level=level, loss_scale_manager=lsm)
    step = model.train_network
    losses = []
    for i in range(STEPS):
        x, y = batches[i % len(batches)]
        out = step(Tensor(x), Tensor(y))
        losses.append(float(out.asnumpy()))
    logits = model.predict(Tensor(batches[0][0]))
    return {"losses": losses, "predict_dtype": str(logits.dtype), "weight_dtype": str(net.fc1.weight.dtype),
            "fc1_weight_sum": float(net.fc1.weight.asnumpy().astype(np.float64).sum())}


ms.set_context(mode=ms.GRAPH_MODE)
result = {"O0": run("O0"), "O2": run("O2"), "O3": run("O3"), "O2_bn": run("O2", bn=True), "O0_bn": run("O0", bn=True)}
with open(os.path.join(HERE, "amp_losses.json"), "w") as f:
    json.dump(result, f, indent=1)
for k, v in result.items():
    print(k, v["predict_dtype"], v["weight_dtype"], [round(x, 5) for x in v["losses"][:5]], v["losses"][-1])
