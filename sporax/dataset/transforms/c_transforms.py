"""The 1.x name ``mindspore.dataset.transforms.c_transforms``: the same transforms."""

from sporax.dataset.transforms.transforms import Compose, Duplicate, Fill, OneHot, TensorOperation, TypeCast

__all__ = ["TypeCast", "Compose", "OneHot", "Fill", "Duplicate", "TensorOperation"]
