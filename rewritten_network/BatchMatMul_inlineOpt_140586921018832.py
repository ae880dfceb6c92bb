import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/tmp/tmp44hhhs1r')
from mindspore import nn, ops
from o1_case_nets import BatchMatMul_inline
from mindspore.train.amp import amp_cast

class BatchMatMul_inlineOpt(BatchMatMul_inline, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        BatchMatMul_var = ops.BatchMatMul()
        x3 = amp_cast(x3, mindspore.float16)
        w3 = amp_cast(w3, mindspore.float16)
        function_var = BatchMatMul_var(x3, w3)
        function_var = amp_cast(function_var, mindspore.float32)
        return function_var
#