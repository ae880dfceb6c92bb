import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/function')
from mindspore.ops.auto_generate import relu_op, inplace_relu_op
from mindspore.ops.function.nn_func import inplace_relu_op as inplace_relu_op_1
from mindspore.ops.function.nn_func import relu_op as relu_op_1
from mindspore.train.amp import amp_cast

def relu_opt(input, inplace=False):
    if inplace:
        inplace_relu_op_var = inplace_relu_op_1(input)
        return inplace_relu_op_var
    input = amp_cast(input, mindspore.float16)
    relu_op_var = relu_op_1(input)
    relu_op_var = amp_cast(relu_op_var, mindspore.float32)
    return relu_op_var
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import ops_relu

class ops_reluOpt(ops_relu, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        relu_var = relu_opt(x)
        return relu_var
#