import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/function')
from mindspore.ops.auto_generate import relu_op, inplace_relu_op
from nn_func import inplace_relu_op as inplace_relu_op_1
from nn_func import relu_op as relu_op_1
from mindspore.train.amp import amp_cast

def relu_opt_1(input, inplace=False):
    if inplace:
        inplace_relu_op_var = inplace_relu_op_1(input)
        return inplace_relu_op_var
    input = amp_cast(input, mindspore.float16)
    relu_op_var = relu_op_1(input)
    relu_op_var = amp_cast(relu_op_var, mindspore.float32)
    return relu_op_var
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import relu_of_matmul

class relu_of_matmulOpt(relu_of_matmul, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        subscript_var = x[:, :1]
        x = amp_cast(x, mindspore.float16)
        w = amp_cast(w, mindspore.float16)
        mm_var = self.mm(x, w)
        mm_var = amp_cast(mm_var, mindspore.float32)
        mult_var = mm_var * 1.0001
        relu_var = relu_opt_1(mult_var)
        add_var = relu_var + subscript_var
        return add_var
#