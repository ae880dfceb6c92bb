"""2-D pooling: ``nn.MaxPool2d`` and ``nn.AvgPool2d`` over NCHW (or CHW) input, MindSpore 2.x arguments.

``pad_mode='valid'`` takes only full windows, ``'same'`` pads so that output = ceil(in / stride)
(padding is ignored by the max and not counted by the average), ``'pad'`` pads ``padding``
on both sides and then follows ``ceil_mode``, ``dilation`` (max), ``count_include_pad`` and
``divisor_override`` (average) as MindSpore (and PyTorch) define them.
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sporax.common._validation import check_bool, check_str_in, msg
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.nn.layer._utils import int_pair

__all__ = ["MaxPool2d", "AvgPool2d"]


def _pad_pair(padding, where: str) -> tuple[tuple[int, int], tuple[int, int]]:
    """``padding`` (int, (h, w) or (top, bottom, left, right)) as ((top, bottom), (left, right))."""
    if isinstance(padding, int) and not isinstance(padding, bool):
        pads = (padding,) * 4
    elif isinstance(padding, (tuple, list)) and len(padding) == 2:
        pads = (padding[0], padding[0], padding[1], padding[1])
    elif isinstance(padding, (tuple, list)) and len(padding) == 4:
        pads = tuple(padding)
    else:
        raise TypeError(msg(where, "padding", "an int or a tuple of 2 or 4 ints", padding))
    if any(not isinstance(p, int) or isinstance(p, bool) or p < 0 for p in pads):
        raise ValueError(msg(where, "padding", "made of ints >= 0", padding))
    return (pads[0], pads[1]), (pads[2], pads[3])


def _ceil_extra(size: int, pads: tuple[int, int], k: int, s: int, d: int) -> int:
    """Extra right padding that ``ceil_mode`` needs so the last partial window is kept."""
    ek = (k - 1) * d + 1
    span = size + pads[0] + pads[1] - ek
    out = math.ceil(span / s) + 1
    if (out - 1) * s >= size + pads[0]:  # the last window must start inside the input or left pad
        out -= 1
    return max((out - 1) * s + ek - (size + pads[0] + pads[1]), 0)


class _Pool2d(Cell):
    def __init__(self, kernel_size, stride, pad_mode: str, padding, data_format: str) -> None:
        super().__init__()
        where = self.cls_name
        self.kernel_size = int_pair(kernel_size, "kernel_size", where)
        self.stride = int_pair(stride, "stride", where)
        if not isinstance(pad_mode, str):
            raise TypeError(msg(where, "pad_mode", "a str", pad_mode))
        self.pad_mode = check_str_in(pad_mode.lower(), ("valid", "same", "pad"), "pad_mode", where)
        self.format = check_str_in(data_format, ("NCHW",), "data_format", where)
        self.padding = padding
        self._pads = _pad_pair(padding, where)

    def _check_plain(self, **non_default) -> None:
        if self.pad_mode != "pad" and (any(self._pads[0] + self._pads[1]) or any(non_default.values())):
            raise ValueError(
                f"For '{self.cls_name}', {['padding', *non_default]} can only take non-default values when "
                f"pad_mode is 'pad', but got pad_mode '{self.pad_mode}'."
            )

    def _padding(self, shape, dilation=(1, 1), ceil_mode=False):
        """(explicit pads, ceil-mode extra pads) per spatial axis, or 'SAME'/'VALID'."""
        if self.pad_mode != "pad":
            return self.pad_mode.upper(), None
        extra = [0, 0]
        if ceil_mode:
            extra = [_ceil_extra(shape[2 + i], self._pads[i], self.kernel_size[i], self.stride[i], dilation[i])
                     for i in range(2)]
        return self._pads, extra

    def construct(self, x) -> Tensor:
        a = unwrap(x)
        if a.ndim not in (3, 4):
            raise ValueError(f"For '{self.cls_name}', the input should be 3-D (C, H, W) or 4-D (N, C, H, W), "
                             f"but got shape {tuple(a.shape)}.")
        out = self._pool(a[None] if a.ndim == 3 else a)
        if a.ndim == 3:
            out = jax.tree_util.tree_map(lambda o: o[0], out)
        return jax.tree_util.tree_map(Tensor._wrap, out)


class MaxPool2d(_Pool2d):
    """``MaxPool2d(kernel_size=1, stride=1, pad_mode='valid', padding=0, dilation=1, return_indices=False,
    ceil_mode=False, data_format='NCHW')``; with ``return_indices`` also the argmax of each window as
    an int64 index into the flattened ``H * W`` input plane."""

    def __init__(self, kernel_size=1, stride=1, pad_mode: str = "valid", padding=0, dilation=1,
                 return_indices: bool = False, ceil_mode: bool = False, data_format: str = "NCHW") -> None:
        super().__init__(kernel_size, stride, pad_mode, padding, data_format)
        self.dilation = int_pair(dilation, "dilation", self.cls_name)
        self.return_indices = check_bool(return_indices, "return_indices", self.cls_name)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", self.cls_name)
        self._check_plain(dilation=self.dilation != (1, 1), return_indices=return_indices, ceil_mode=ceil_mode)

    def _pool(self, a):
        pads, extra = self._padding(a.shape, self.dilation, self.ceil_mode)
        if extra is not None:
            pads = ((0, 0), (0, 0), (pads[0][0], pads[0][1] + extra[0]), (pads[1][0], pads[1][1] + extra[1]))
        window = (1, 1, *self.kernel_size)
        strides = (1, 1, *self.stride)
        dil = (1, 1, *self.dilation)
        # A concrete numpy identity lets JAX pick its differentiable max-pool (a traced one would not).
        low = np.array(-np.inf if jnp.issubdtype(a.dtype, jnp.floating) else jnp.iinfo(a.dtype).min, a.dtype)
        out = lax.reduce_window(a, low, lax.max, window, strides, pads, window_dilation=dil)
        if not self.return_indices:
            return out
        h, w = a.shape[2], a.shape[3]
        index = jnp.broadcast_to(jnp.arange(h * w, dtype=jnp.int32).reshape(1, 1, h, w), a.shape)

        def pick(left, right):
            (lv, li), (rv, ri) = left, right
            take_right = (rv > lv) | ((rv == lv) & (ri < li) & (ri >= 0)) | (li < 0)
            return jnp.where(take_right, rv, lv), jnp.where(take_right, ri, li)

        # stop_gradient: indices carry no gradient, and variadic reduce_window has no JVP rule
        _, idx = lax.reduce_window((lax.stop_gradient(a), index), (low, np.int32(-1)), pick, window, strides, pads,
                                   window_dilation=dil)
        return out, idx.astype(jnp.int64)


class AvgPool2d(_Pool2d):
    """``AvgPool2d(kernel_size=1, stride=1, pad_mode='valid', padding=0, ceil_mode=False,
    count_include_pad=True, divisor_override=None, data_format='NCHW')``."""

    def __init__(self, kernel_size=1, stride=1, pad_mode: str = "valid", padding=0, ceil_mode: bool = False,
                 count_include_pad: bool = True, divisor_override: int | None = None,
                 data_format: str = "NCHW") -> None:
        super().__init__(kernel_size, stride, pad_mode, padding, data_format)
        self.ceil_mode = check_bool(ceil_mode, "ceil_mode", self.cls_name)
        self.count_include_pad = check_bool(count_include_pad, "count_include_pad", self.cls_name)
        if divisor_override is not None and (
            isinstance(divisor_override, bool) or not isinstance(divisor_override, int) or divisor_override <= 0
        ):
            raise ValueError(msg(self.cls_name, "divisor_override", "an int > 0 or None", divisor_override))
        self.divisor_override = divisor_override
        extras = dict(ceil_mode=ceil_mode, count_include_pad=not count_include_pad,
                      divisor_override=divisor_override is not None)
        if self.pad_mode == "valid" and (any(self._pads[0] + self._pads[1]) or any(extras.values())):
            self.pad_mode = "pad"  # MindSpore routes these options through its explicitly padded kernel
        self._check_plain(**extras)

    def _pool(self, a):
        window = (1, 1, *self.kernel_size)
        strides = (1, 1, *self.stride)
        af = a.astype(jnp.promote_types(a.dtype, jnp.float32))
        pads, extra = self._padding(a.shape, ceil_mode=self.ceil_mode)
        plane = jnp.ones((1, 1, a.shape[2], a.shape[3]), af.dtype)
        if extra is None:  # 'same' / 'valid': average over the real elements of each window
            total = lax.reduce_window(af, 0.0, lax.add, window, strides, pads)
            count = lax.reduce_window(plane, 0.0, lax.add, window, strides, pads)
        else:
            full = ((0, 0), (0, 0), (pads[0][0], pads[0][1] + extra[0]), (pads[1][0], pads[1][1] + extra[1]))
            total = lax.reduce_window(af, 0.0, lax.add, window, strides, full)
            # explicit padding counts when count_include_pad; ceil-mode overhang never does
            mask = jnp.pad(plane, ((0, 0), (0, 0), pads[0], pads[1]), constant_values=float(self.count_include_pad))
            mask = jnp.pad(mask, ((0, 0), (0, 0), (0, extra[0]), (0, extra[1])))
            count = lax.reduce_window(mask, 0.0, lax.add, window, strides, "VALID")
        if self.divisor_override is not None:
            count = jnp.asarray(float(self.divisor_override), af.dtype)
        return (total / count).astype(a.dtype)
