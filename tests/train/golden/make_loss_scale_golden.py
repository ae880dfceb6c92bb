"""Record REAL MindSpore 2.10's loss-scale update rules on a fixed overflow sequence.

Run with a Python that has MindSpore (never needed by the tests)::

    /work/ms-ref/bin/python tests/train/golden/make_loss_scale_golden.py

Writes ``loss_scale.json``: after each flag of ``OVERFLOWS``, the scale (and counters) of
``nn.DynamicLossScaleUpdateCell``, ``amp.DynamicLossScaler.adjust`` and
``amp.DynamicLossScaleManager.update_loss_scale``; and ``amp.all_finite`` on a few inputs.
"""

import json
import os

import mindspore as ms
import numpy as np
from mindspore import Parameter, Tensor, amp, nn

HERE = os.path.dirname(os.path.abspath(__file__))
OVERFLOWS = [False, False, False, True, False, False, False, False, True, True, False, False, False]
try:  # NumPy 2: the first op on a Python scalar may raise a spurious SystemError
    Tensor(1.0) + 1
except SystemError:
    pass

ms.set_context(mode=ms.PYNATIVE_MODE)
cell = nn.DynamicLossScaleUpdateCell(loss_scale_value=2 ** 10, scale_factor=2, scale_window=3)
scale = Parameter(Tensor(np.float32(2 ** 10)), name="scale_sense")
update_cell = []
for ov in OVERFLOWS:
    cell(scale, Tensor(np.array(ov)))
    update_cell.append([float(scale.asnumpy()), int(cell.cur_iter.asnumpy()), int(cell.last_overflow_iter.asnumpy())])

scaler = amp.DynamicLossScaler(scale_value=2 ** 10, scale_factor=2, scale_window=3)
scaler_seq = []
for ov in OVERFLOWS:
    scaler.adjust(Tensor(np.array(not ov)))
    scaler_seq.append([float(scaler.scale_value.asnumpy()), int(scaler.counter.asnumpy())])

manager = amp.DynamicLossScaleManager(init_loss_scale=2 ** 10, scale_factor=2, scale_window=3)
manager_seq = []
for ov in OVERFLOWS:
    manager.update_loss_scale(ov)
    manager_seq.append(float(manager.get_loss_scale()))

finite = {
    "finite": bool(amp.all_finite([Tensor(np.ones(3, np.float32)), Tensor(np.zeros(2, np.float16))]).asnumpy()),
    "inf": bool(amp.all_finite([Tensor(np.ones(3, np.float32)), Tensor(np.array([np.inf], np.float32))]).asnumpy()),
    "nan": bool(amp.all_finite((Tensor(np.array([np.nan], np.float16)),)).asnumpy()),
}
static = amp.StaticLossScaler(8)
scaled = [float(v.asnumpy()) for v in static.scale((Tensor(np.float32(1.5)), Tensor(np.float32(-2.0))))]
unscaled = [float(v.asnumpy()) for v in static.unscale((Tensor(np.float32(12.0)),))]

result = {"overflows": OVERFLOWS, "update_cell": update_cell, "scaler": scaler_seq, "manager": manager_seq,
          "all_finite": finite, "static_scale": scaled, "static_unscale": unscaled}
with open(os.path.join(HERE, "loss_scale.json"), "w") as f:
    json.dump(result, f, indent=1)
print(json.dumps(result))
