"""``nn.Conv2d``: 2-D convolution over NCHW input, with MindSpore 2.x's arguments and defaults.

The weight is ``(out_channels, in_channels // group, kh, kw)`` drawn from ``HeUniform(sqrt(5))``;
the optional bias (``has_bias=False`` by default in 2.x) from ``Uniform(1/sqrt(fan_in))``.
``pad_mode='same'`` pads so that output = ceil(input / stride), with any odd excess on the
bottom/right (XLA's ``SAME``, which is also MindSpore's rule).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp

from sporax.common import dtype as mstype
from sporax.common._validation import check_bool, check_positive_int, check_str_in, msg
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.nn.layer._utils import check_dtype, int_pair, make_param

__all__ = ["Conv2d"]


def _padding(padding, where: str) -> tuple[int, int, int, int]:
    """``padding`` as (top, bottom, left, right)."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        pads = (padding,) * 4
    elif isinstance(padding, tuple) and len(padding) == 4:
        pads = padding
    else:
        raise TypeError(msg(where, "padding", "an int or a tuple of 4 ints", padding))
    for v in pads:
        if not isinstance(v, int) or isinstance(v, bool) or v < 0:
            raise ValueError(msg(where, "padding", "made of ints >= 0", padding))
    return pads


class Conv2d(Cell):
    """2-D convolution: ``Conv2d(in_channels, out_channels, kernel_size, stride=1, pad_mode='same',
    padding=0, dilation=1, group=1, has_bias=False, weight_init=None, bias_init=None,
    data_format='NCHW', dtype=mstype.float32)``. Input ``(N, C_in, H, W)``, output ``(N, C_out, H', W')``.
    """

    def __init__(self, in_channels: int, out_channels: int, kernel_size, stride=1, pad_mode: str = "same",
                 padding=0, dilation=1, group: int = 1, has_bias: bool = False, weight_init=None,
                 bias_init=None, data_format: str = "NCHW", dtype=mstype.float32) -> None:
        super().__init__()
        from sporax.common.initializer import HeUniform, Uniform

        where = "Conv2d"
        self.in_channels = check_positive_int(in_channels, "in_channels", where)
        self.out_channels = check_positive_int(out_channels, "out_channels", where)
        self.kernel_size = int_pair(kernel_size, "kernel_size", where)
        self.stride = int_pair(stride, "stride", where, allow_four=True)
        self.dilation = int_pair(dilation, "dilation", where, allow_four=True)
        self.pad_mode = check_str_in(pad_mode, ("same", "valid", "pad"), "pad_mode", where)
        self.padding = padding
        pads = _padding(padding, where)
        if self.pad_mode != "pad" and any(pads):
            raise ValueError(
                f"For '{where}', the 'padding' should be 0 when 'pad_mode' is '{self.pad_mode}', but got "
                f"{padding!r}; use pad_mode='pad' for explicit padding."
            )
        self._pads = ((pads[0], pads[1]), (pads[2], pads[3]))
        self.group = check_positive_int(group, "group", where)
        if in_channels % group or out_channels % group:
            raise ValueError(
                f"For '{where}', 'in_channels' ({in_channels}) and 'out_channels' ({out_channels}) should both "
                f"be divisible by 'group' ({group})."
            )
        self.has_bias = check_bool(has_bias, "has_bias", where)
        self.data_format = check_str_in(data_format, ("NCHW",), "data_format", where)
        check_dtype(dtype, where)
        shape = (out_channels, in_channels // group, *self.kernel_size)
        self.weight_init = HeUniform(math.sqrt(5)) if weight_init is None else weight_init
        self.weight = make_param(self.weight_init, shape, dtype, "weight")
        self.bias = None
        self.bias_init = bias_init
        if self.has_bias:
            if bias_init is None:
                fan_in = (in_channels // group) * self.kernel_size[0] * self.kernel_size[1]
                self.bias_init = Uniform(1 / math.sqrt(fan_in))
            self.bias = make_param(self.bias_init, (out_channels,), dtype, "bias")

    def construct(self, x) -> Tensor:
        a = unwrap(x)
        if a.ndim != 4 or a.shape[1] != self.in_channels:
            raise ValueError(
                f"For 'Conv2d', the input should have shape (N, {self.in_channels}, H, W), but got {tuple(a.shape)}."
            )
        padding = {"same": "SAME", "valid": "VALID"}.get(self.pad_mode, self._pads)
        y = jax.lax.conv_general_dilated(
            a,
            self.weight._jax().astype(a.dtype),
            window_strides=self.stride,
            padding=padding,
            rhs_dilation=self.dilation,
            dimension_numbers=("NCHW", "OIHW", "NCHW"),
            feature_group_count=self.group,
        )
        if self.bias is not None:
            y = y + jnp.reshape(self.bias._jax().astype(y.dtype), (1, -1, 1, 1))
        return Tensor._wrap(y)

    def extend_repr(self) -> str:
        return (
            f"input_channels={self.in_channels}, output_channels={self.out_channels}, kernel_size={self.kernel_size}, "
            f"stride={self.stride}, pad_mode={self.pad_mode}, padding={self.padding}, dilation={self.dilation}, "
            f"group={self.group}, has_bias={self.has_bias}, weight_init={self.weight_init}, "
            f"bias_init={self.bias_init}, format={self.data_format}"
        )
