"""An unmodified MindSpore data-parallel script: each rank trains 3 Momentum steps on its shard.

Usage: dp_train.py FIXTURE.npz OUT_PREFIX [graph|pynative|both]. Writes OUT_PREFIX.rank<R>.npz.
"""

import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn
from mindspore.communication import get_group_size, get_rank, init

fixture, out_prefix = sys.argv[1], sys.argv[2]
modes = ["graph", "pynative"] if len(sys.argv) < 4 or sys.argv[3] == "both" else [sys.argv[3]]

init()
ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True)
rank, size = get_rank(), get_group_size()
d = np.load(fixture)
per = len(d["X"]) // size
x_local, y_local = d["X"][rank * per:(rank + 1) * per], d["Y"][rank * per:(rank + 1) * per]
result = {"size": np.array(size)}
for mode in modes:
    ms.set_context(mode=ms.GRAPH_MODE if mode == "graph" else ms.PYNATIVE_MODE)
    net = nn.SequentialCell([nn.Dense(6, 5), nn.ReLU(), nn.Dense(5, 3)])
    params = net.trainable_params()
    for p, k in zip(params, ("w1", "b1", "w2", "b2")):
        p.set_data(Tensor(d[k]))
    opt = nn.Momentum(params, 0.1, 0.9)
    step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
    losses = [float(step(Tensor(x_local), Tensor(y_local)).asnumpy()) for _ in range(3)]
    for p, k in zip(params, ("w1", "b1", "w2", "b2")):
        result[f"{mode}_{k}"] = p.asnumpy()
    result[f"{mode}_losses"] = np.array(losses, np.float32)
np.savez(f"{out_prefix}.rank{rank}.npz", **result)
print(f"rank {rank} of {size}: done, losses {losses}")
