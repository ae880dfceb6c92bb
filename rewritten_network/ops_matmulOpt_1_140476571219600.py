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
from mindspore.ops.auto_generate.gen_ops_def import matmul_ext_op

def matmul_ext_opt_1(input, other):
    matmul_ext_op_var = matmul_ext_op(input, other)
    return matmul_ext_op_var
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/function')

def matmul_opt_1(input, other):
    matmul_ext_var = matmul_ext_opt_1(input, other)
    return matmul_ext_var
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import ops_matmul

class ops_matmulOpt_1(ops_matmul, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        matmul_var = matmul_opt_1(x, w)
        return matmul_var
#