# Seed 000 (mindspore.Parameter API page), its example verbatim, full-width punctuation made ASCII.
import numpy as np
from mindspore import Parameter, Tensor
import mindspore.ops as ops
import mindspore.nn as nn
import mindspore


class Net(nn.Cell):
    def __init__(self):
        super(Net, self).__init__()
        self.matmul = ops.MatMul()
        self.weight = Parameter(Tensor(np.ones((1, 2)), mindspore.float32), name="w", requires_grad=True)

    def construct(self, x):
        out = self.matmul(self.weight, x)
        return out
net = Net()
x = Tensor(np.ones((2, 1)), mindspore.float32)
print(net(x))
net.weight.set_data(Tensor(np.zeros((1, 2)), mindspore.float32))
print(net(x))
