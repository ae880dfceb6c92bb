import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from mindspore.ops import operations as P
from o1_case_nets import P_MatMul_inline
from mindspore.train.amp import amp_cast

class P_MatMul_inlineOpt_1(P_MatMul_inline, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        MatMul_var = P.MatMul()
        x = amp_cast(x, mindspore.float16)
        w = amp_cast(w, mindspore.float16)
        function_var = MatMul_var(x, w)
        function_var = amp_cast(function_var, mindspore.float32)
        return function_var
#