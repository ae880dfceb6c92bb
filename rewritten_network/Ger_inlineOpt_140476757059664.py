import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from mindspore import nn, ops
from o1_case_nets import Ger_inline
from mindspore.train.amp import amp_cast

class Ger_inlineOpt(Ger_inline, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        Ger_var = ops.Ger()
        a1_var = amp_cast(a1, mindspore.float16)
        a1_var_1 = amp_cast(a1, mindspore.float16)
        function_var = Ger_var(a1_var, a1_var_1)
        function_var = amp_cast(function_var, mindspore.float32)
        return function_var
#