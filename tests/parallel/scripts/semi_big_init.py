"""One rank of 8 (one device each): a 4 GiB weight split 8 ways by a MatMul strategy is
initialized by the first step; this rank's peak RSS grows by about its 1/8 share (512 MiB),
and its shard is exactly that window of the unsharded Identity initialization.

Usage: semi_big_init.py OUT_PREFIX. Writes OUT_PREFIX.rank<R>.npz (rss growth, checks).
"""

import resource
import sys

import mindspore as ms
import numpy as np
from mindspore import Tensor, nn, ops
from mindspore.common.initializer import initializer
from mindspore.communication import get_rank, init

N = 32768  # float32 (N, N): 4 GiB


def peak_mib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


init()
ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, full_batch=True)
rank = get_rank()


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.w = ms.Parameter(initializer("identity", [N, N], ms.float32), name="w")
        self.matmul = ops.MatMul(transpose_b=True).shard(((1, 1), (8, 1)))

    def construct(self, x):
        return self.matmul(x, self.w)


x = Tensor(np.arange(N, dtype=np.float32)[None] / N)
warm = Net()  # the same program on a small weight first, so compilation is not counted
warm.w = ms.Parameter(initializer("identity", [64, N], ms.float32), name="w")
warm(x)
before = peak_mib()
net = Net()
out = net(x)
after = peak_mib()
(shard,) = net.w._value.addressable_shards
data = np.asarray(shard.data)
row0 = shard.index[0].start or 0
rows, cols = np.nonzero(data)
eye_window = (len(rows) == data.shape[0] and np.array_equal(cols, rows + row0)
              and np.all(data[rows, cols] == 1.0) and data.shape == (N // 8, N))
local = np.asarray(out.asnumpy()) if out._value.is_fully_addressable else None
np.savez(f"{sys.argv[1]}.rank{rank}.npz", growth=after - before, eye_window=eye_window, row0=row0,
         shape=np.array(data.shape), layout_slice=np.array(net.parameter_layout_dict["w"][2]),
         out_ok=np.array(local is None or np.allclose(local, np.asarray(x.asnumpy()))))
print(f"rank {rank}: grew {after - before:.0f} MiB, eye window {eye_window}")
