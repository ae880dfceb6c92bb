"""A tour of the Parameter features of the seed documents, written as a MindSpore script.

Run it with ``python -m sporax run examples/parameter_tour.py``: ``import mindspore`` then
resolves to sporax.
"""

import mindspore as ms
import numpy as np
from mindspore import Parameter, ParameterTuple, Tensor, nn, ops
from mindspore import dtype as mstype
from mindspore.common.initializer import initializer

ms.set_seed(0)

# Lazy: a 16 GiB parameter costs nothing until it is used.
table = Parameter(initializer("normal", [1 << 20, 1 << 12], mstype.float32), name="table")
print("lazy:", table, "has_init =", table.has_init)


class Net(nn.Cell):
    def __init__(self):
        super().__init__()
        self.matmul = ops.MatMul()
        self.weight = Parameter(Tensor(np.ones((1, 2)), mstype.float32), name="w", requires_grad=True)
        self.scale = Parameter(initializer("ones", [1], mstype.float32), requires_grad=False)

    def construct(self, x):
        return self.matmul(self.weight, x) * self.scale


net = Net()
x = Tensor(np.ones((2, 1)), mstype.float32)
print("net(x) =", net(x))
net.weight.set_data(Tensor(np.zeros((1, 2)), mstype.float32))
print("after set_data:", net(x))
print("names:", [p.name for p in net.get_parameters()], "trainable:", [p.name for p in net.trainable_params()])

# Clones and optimizer-style state.
params = ParameterTuple(net.trainable_params())
moments = params.clone("moments", init="zeros")
print("moments:", moments)

# Sliced initialization: this rank's window of the full tensor, identical to slicing it.
ms.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, global_rank=5)
w = Parameter(initializer("normal", [32, 32], mstype.float32), name="w")
full = w.clone().init_data().asnumpy()
w.init_data(layout=([2, 4], [1, -1], [16, 32]), set_sliced=True)
print("rank 5 holds", w.shape, "sliced =", w.sliced, "equal to rows 16..31:", bool((w.asnumpy() == full[16:]).all()))
