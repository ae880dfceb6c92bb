import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/function')
from array_func import ger_
from mindspore.train.amp import amp_cast

def ger_opt_1(input, vec2):
    input = amp_cast(input, mindspore.float16)
    vec2 = amp_cast(vec2, mindspore.float16)
    ger__var = ger_(input, vec2)
    ger__var = amp_cast(ger__var, mindspore.float32)
    return ger__var
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import ops_ger

class ops_gerOpt_1(ops_ger, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        ger_var = ger_opt_1(a1, a1)
        return ger_var
#