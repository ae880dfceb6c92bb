"""A MindSpore semi-auto parallel script: a Dense MLP, column-parallel fc1 and row-parallel fc2
over a "model" axis of 4 devices (2-way data parallel), 4 Momentum steps on the full batch.

Usage: semi_train.py OUT_PREFIX [semi|semi_split|standalone]. ``semi_split``: full_batch=False,
each process feeds its half of the batch (the global batch is their concatenation). Writes OUT_PREFIX.rank<R>.npz with the losses
and, for every parameter, the shards this process's devices hold (key ``name|r0:r1,c0:c1``) and
the layout dict (sporax internals are read only to list the shards: MindSpore has no such API).
"""

import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.communication import get_rank, init

out_prefix = sys.argv[1]
how = sys.argv[2] if len(sys.argv) > 2 else "semi"
semi = how != "standalone"
if semi:
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.SEMI_AUTO_PARALLEL, device_num=8,
                                 full_batch=how == "semi")
ms.set_seed(3)


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(16, 32)
        self.relu = ops.ReLU()
        self.fc2 = nn.Dense(32, 8)

    def construct(self, x):
        return self.fc2(self.relu(self.fc1(x)))


net = MLP()
net.fc1.matmul.shard(((2, 1), (4, 1)))
net.fc1.bias_add.shard(((2, 4), (4,)))
net.relu.shard(((2, 4),))
net.fc2.matmul.shard(((2, 4), (1, 4)))
train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Momentum(net.trainable_params(), 0.1, 0.9))
rng = np.random.default_rng(0)
x = rng.standard_normal((8, 16)).astype(np.float32)
y = rng.standard_normal((8, 8)).astype(np.float32)
if how == "semi_split":
    x, y = x[4 * get_rank():4 * get_rank() + 4], y[4 * get_rank():4 * get_rank() + 4]
x, y = Tensor(x), Tensor(y)
losses = [float(train(x, y).asnumpy()) for _ in range(4)]
result = {"losses": np.array(losses)}
rank = get_rank() if semi else 0
for p in train.get_parameters():
    value = p._value
    if semi:
        for shard in value.addressable_shards:
            key = ",".join(f"{s.start or 0}:{s.stop if s.stop is not None else n}" for s, n in zip(shard.index, p.shape))
            result[f"{p.name}|{key}"] = np.asarray(shard.data)
            result[f"{p.name}|{key}|layout_slice"] = np.array(train.parameter_layout_dict[p.name][2])
    else:
        result[p.name] = p.asnumpy()
np.savez(f"{out_prefix}.rank{rank}.npz", **result)
print(f"rank {rank}: done, losses {losses}")
