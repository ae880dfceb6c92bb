import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/composite')
import mindspore.ops as ops
from mindspore.ops._primitive_cache import _get_cache_prim
from mindspore.train.amp import amp_cast

def mm_opt_1(input, mat2):
    _get_cache_prim_var = _get_cache_prim(ops.MatMul)
    _matmul = _get_cache_prim_var()
    input = amp_cast(input, mindspore.float16)
    mat2 = amp_cast(mat2, mindspore.float16)
    out = _matmul(input, mat2)
    out = amp_cast(out, mindspore.float32)
    return out
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import ops_mm

class ops_mmOpt_1(ops_mm, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        mm_var = mm_opt_1(x, w)
        return mm_var
#