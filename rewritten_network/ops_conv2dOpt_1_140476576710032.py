import sys
import mindspore
from mindspore import nn
from mindspore.nn import Cell
from mindspore.ops import functional as F
#
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/function')
from mindspore.ops import operations as P
from mindspore.ops._primitive_cache import _get_cache_prim

def bias_add_1(input_x, bias):
    _get_cache_prim_var_1 = _get_cache_prim(P.BiasAdd)
    bias_add_op = _get_cache_prim_var_1(data_format='NCHW')
    bias_add_op_var = bias_add_op(input_x, bias)
    return bias_add_op_var
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/function')

def _manipulate_padding_1(padding, dim):
    ms_padding = ()
    tuple_var_3 = (tuple, list)
    isinstance_var_4 = isinstance(padding, tuple_var_3)
    not_var_2 = not isinstance_var_4
    if not_var_2:
        raise TypeError(f"For 'conv{dim}d', 'padding' must be a tuple, list or int, but got {type(padding)}.")
    len_var = len(padding)
    compare_var_3 = len_var != dim
    if compare_var_3:
        raise ValueError(f"For 'conv{dim}d', 'padding' must be a tuple or list of {dim} integers, but got {padding}.")
    range_var = range(dim)
    for i in range_var:
        ms_padding += (padding[i], padding[i])
    return ms_padding
#
sys.path.insert(0, '/work/ms-ref/lib/python3.11/site-packages/mindspore/ops/function')
from mindspore.common.tensor import Tensor
from nn_func import _check_conv_iterable_lengths
from mindspore.train.amp import amp_cast

def conv2d_opt_1(input, weight, bias=None, stride=1, pad_mode='valid', padding=0, dilation=1, groups=1):
    tuple_var_2 = (tuple, list)
    isinstance_var_3 = isinstance(stride, tuple_var_2)
    if isinstance_var_3:
        _check_conv_iterable_lengths(stride, dim=2, iter_name='stride')
    tuple_var_1 = (tuple, list)
    isinstance_var_2 = isinstance(dilation, tuple_var_1)
    if isinstance_var_2:
        _check_conv_iterable_lengths(dilation, dim=2, iter_name='dilation')
    tuple_var = (tuple, list)
    isinstance_var_1 = isinstance(padding, tuple_var)
    if isinstance_var_1:
        padding = _manipulate_padding_1(padding, dim=2)
    weight_shape = weight.shape
    out_channel = weight_shape[0]
    kernel_size = weight_shape[2:4]
    input_shape = input.shape
    in_channel = input_shape[1]
    mod_var = in_channel % groups
    compare_var_2 = mod_var == 0
    and_var = compare_var_2 and out_channel % groups == 0
    not_var_1 = not and_var
    if not_var_1:
        raise ValueError(f"The argument 'groups' should be divisible by 'in_channel' and 'out_channel', but got group:{groups}, in_channel:{in_channel}, out_channel:{out_channel}.")
    _get_cache_prim_var = _get_cache_prim(P.Conv2D)
    conv = _get_cache_prim_var(out_channel, kernel_size, 1, pad_mode, padding, stride, dilation, groups, 'NCHW')
    compare_var_1 = bias is None
    if compare_var_1:
        input_var = amp_cast(input, mindspore.float16)
        weight_var = amp_cast(weight, mindspore.float16)
        conv_var = conv(input_var, weight_var)
        conv_var = amp_cast(conv_var, mindspore.float32)
        return conv_var
    isinstance_var = isinstance(bias, Tensor)
    not_var = not isinstance_var
    if not_var:
        raise TypeError(f"For 'conv2d', the 'bias' must be a Tensor, but got {type(bias)}.")
    subscript_var = bias.shape[0]
    compare_var = subscript_var != out_channel
    if compare_var:
        raise ValueError(f"For 'conv2d', Given weight of size {weight_shape}, expected bias to be 1-dimensional with {out_channel} elements, but got bias of size {bias.shape[0]} instead.")
    input = amp_cast(input, mindspore.float16)
    weight = amp_cast(weight, mindspore.float16)
    conv_result = conv(input, weight)
    conv_result = amp_cast(conv_result, mindspore.float32)
    output = bias_add_1(conv_result, bias)
    return output
#
sys.path.insert(0, '/tmp/tmpbzjp7u33')
from o1_case_nets import ops_conv2d

class ops_conv2dOpt_1(ops_conv2d, nn.Cell):

    def __init__(self, obj):
        nn.Cell.__init__(self)
        for key, value in obj.__dict__.items():
            setattr(self, key, value)

    def construct(self, x, w, x3, w3, x4, w4, alpha, wt, a1):
        conv2d_var = conv2d_opt_1(x4, w4)
        return conv2d_var
#