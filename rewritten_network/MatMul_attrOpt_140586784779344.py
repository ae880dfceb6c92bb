import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/tmp/tmp44hhhs1r')
from o1_case_nets import MatMul_attr
from mindspore.train.amp import amp_cast

class MatMul_attrOpt(MatMul_attr, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        x = amp_cast(x, mindspore.float16)
        w = amp_cast(w, mindspore.float16)
        mm_var = self.mm(x, w)
        mm_var = amp_cast(mm_var, mindspore.float32)
        return mm_var
#