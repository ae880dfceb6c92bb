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
from mindspore.ops.auto_generate.gen_ops_def import dense_op

def dense_opt(input, weight, bias=None):
    dense_op_var = dense_op(input, weight, bias)
    return dense_op_var
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import ops_dense

class ops_denseOpt(ops_dense, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        dense_var = dense_opt(x, wt)
        return dense_var
#