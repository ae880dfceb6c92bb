import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/auto_generate')
from mindspore.ops.auto_generate.gen_ops_prim import *
from mindspore.ops.auto_generate.pyboost_inner_prim import *
from mindspore.ops.operations.manually_defined.ops_def import *
from mindspore.ops.auto_generate.gen_ops_def import sigmoid_op

def sigmoid_opt_1(input):
    sigmoid_op_var = sigmoid_op(input)
    return sigmoid_op_var
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import ops_sigmoid

class ops_sigmoidOpt_1(ops_sigmoid, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        sigmoid_var = sigmoid_opt_1(x)
        return sigmoid_var
#