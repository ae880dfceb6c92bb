"""A MindSpore semi-auto parallel script that reshards its checkpoint between runs.

Usage: reshard_train.py OUT_DIR save|load|standalone.

* ``save`` (8 devices over the processes): Megatron MLP (dp 2 x mp 4), 2 Adam steps, then every
  rank saves its part (``integrated_save=False``) to OUT_DIR/rank_<R>/net.ckpt and the strategy
  file OUT_DIR/strategy.ckpt is written at compile time.
* ``load``: the same MLP sharded differently (dp 4 x mp 2) loads those files with
  ``load_distributed_checkpoint`` (each process reads only its devices' windows: the bytes it
  reads are counted), trains 2 more steps and saves the full parameters (``integrated_save=True``)
  to OUT_DIR/after.rank<R>.ckpt, with the losses and bytes read in OUT_DIR/load.rank<R>.npz.
* ``standalone``: 4 steps on one device: the reference (OUT_DIR/ref.ckpt, OUT_DIR/ref.npz).
"""

import os
import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn
from mindspore.communication import get_rank, init

out, mode = sys.argv[1], sys.argv[2]
if mode != "standalone":
    init()
    ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.SEMI_AUTO_PARALLEL, device_num=8, full_batch=True)
if mode == "save":
    ms.set_auto_parallel_context(strategy_ckpt_config={"save_file": os.path.join(out, "strategy.ckpt"),
                                                       "only_trainable_params": False})
ms.set_seed(3)


class MLP(nn.Cell):
    def __init__(self):
        super().__init__()
        self.fc1 = nn.Dense(16, 32)
        self.fc2 = nn.Dense(32, 8)

    def construct(self, x):
        return self.fc2(self.fc1(x))


def shard(net, dp, mp):
    net.fc1.matmul.shard(((dp, 1), (mp, 1)))
    net.fc1.bias_add.shard(((dp, mp), (mp,)))
    net.fc2.matmul.shard(((dp, mp), (1, mp)))


net = MLP()
if mode == "save":
    shard(net, 2, 4)
elif mode == "load":
    shard(net, 4, 2)
train = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), nn.Adam(net.trainable_params(), 1e-2))
rng = np.random.default_rng(0)
batches = [(Tensor(rng.standard_normal((8, 16)).astype(np.float32)),
            Tensor(rng.standard_normal((8, 8)).astype(np.float32))) for _ in range(4)]
rank = get_rank() if mode != "standalone" else 0
if mode == "standalone":
    losses = [float(train(x, y).asnumpy()) for x, y in batches]
    ms.save_checkpoint(train, os.path.join(out, "ref.ckpt"))
    np.savez(os.path.join(out, "ref.npz"), losses=np.array(losses))
elif mode == "save":
    losses = [float(train(x, y).asnumpy()) for x, y in batches[:2]]
    os.makedirs(os.path.join(out, f"rank_{rank}"), exist_ok=True)
    ms.save_checkpoint(train, os.path.join(out, f"rank_{rank}", "net.ckpt"), integrated_save=False)
    np.savez(os.path.join(out, f"save.rank{rank}.npz"), losses=np.array(losses))
else:
    from sporax.train import _ckpt_format as ckf  # only to count the bytes read: MindSpore has no such API

    read = []
    real = ckf.CkptReader.read_window

    def counted(self, name, offsets, sizes):
        window = real(self, name, offsets, sizes)
        read.append(window.nbytes)
        return window

    ckf.CkptReader.read_window = counted
    train(*batches[0])  # compiled and placed; its values are overwritten by the load
    files = [os.path.join(out, f"rank_{r}", "net.ckpt") for r in range(2)]
    ms.load_distributed_checkpoint(train, files, train_strategy_filename=os.path.join(out, "strategy.ckpt"))
    losses = [float(train(x, y).asnumpy()) for x, y in batches[2:]]
    ms.save_checkpoint(train, os.path.join(out, f"after.rank{rank}.ckpt"))
    np.savez(os.path.join(out, f"load.rank{rank}.npz"), losses=np.array(losses), read=np.array(sum(read)))
print(f"rank {rank}: {mode} done")
