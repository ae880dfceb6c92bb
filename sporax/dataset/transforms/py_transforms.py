"""The 1.x name ``mindspore.dataset.transforms.py_transforms``: the same transforms."""

from sporax.dataset.transforms.transforms import Compose, Duplicate, Fill, OneHot, PyTensorOperation, TypeCast

OneHotOp = OneHot

__all__ = ["Compose", "OneHotOp", "OneHot", "TypeCast", "Fill", "Duplicate", "PyTensorOperation"]
