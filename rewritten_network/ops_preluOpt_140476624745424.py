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
from mindspore.ops.auto_generate.gen_ops_def import prelu_op
from mindspore.train.amp import amp_cast

def prelu_opt(input, weight):
    input = amp_cast(input, mindspore.float16)
    weight = amp_cast(weight, mindspore.float16)
    prelu_op_var = prelu_op(input, weight)
    prelu_op_var = amp_cast(prelu_op_var, mindspore.float32)
    return prelu_op_var
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import ops_prelu

class ops_preluOpt(ops_prelu, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        prelu_var = prelu_opt(x4, alpha)
        return prelu_var
#