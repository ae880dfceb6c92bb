"""A MindSpore data-parallel script with the parallel optimizer: 3 Adam steps on each rank's shard.

Usage: popt_train.py OUT_PREFIX. Writes OUT_PREFIX.rank<R>.npz with the losses, the full trained
weights (gathered over the processes) and the shapes of this process's shards of them.
"""

import sys

import jax
import mindspore as ms
import numpy as np
from jax.experimental import multihost_utils
from mindspore import Tensor, nn
from mindspore.communication import get_group_size, get_rank, init

out_prefix = sys.argv[1]
init()
ms.set_auto_parallel_context(parallel_mode=ms.ParallelMode.DATA_PARALLEL, gradients_mean=True,
                             enable_parallel_optimizer=True, parallel_optimizer_config={"parallel_optimizer_threshold": 1})
ms.set_context(mode=ms.GRAPH_MODE)
rank, size = get_rank(), get_group_size()
rng = np.random.default_rng(7)
x, y = rng.normal(size=(32, 16)).astype(np.float32), rng.normal(size=(32, 4)).astype(np.float32)
per = len(x) // size
ms.set_seed(3)
net = nn.SequentialCell([nn.Dense(16, 64), nn.ReLU(), nn.Dense(64, 4)])
opt = nn.Adam(net.trainable_params(), 1e-2)
step = nn.TrainOneStepCell(nn.WithLossCell(net, nn.MSELoss()), opt)
losses = [float(step(Tensor(x[rank * per:(rank + 1) * per]), Tensor(y[rank * per:(rank + 1) * per])).asnumpy())
          for _ in range(3)]
result = {"size": np.array(size), "losses": np.array(losses, np.float32), "devices": np.array(jax.device_count())}
for p in [*net.trainable_params(), opt.moment1[0]]:
    v = p._value
    result["full." + p.name] = np.asarray(multihost_utils.process_allgather(v, tiled=True))
    result["shard." + p.name] = np.array([s.data.shape for s in v.addressable_shards])
np.savez(f"{out_prefix}.rank{rank}.npz", **result)
print(f"rank {rank} of {size}: done, losses {losses}")
