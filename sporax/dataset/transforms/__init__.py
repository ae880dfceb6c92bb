"""``mindspore.dataset.transforms``: general transforms (see :mod:`.transforms`)."""

from sporax.dataset.transforms import c_transforms, py_transforms, transforms  # noqa: F401
from sporax.dataset.transforms.transforms import (
    Compose,
    Duplicate,
    Fill,
    OneHot,
    PyTensorOperation,
    TensorOperation,
    TypeCast,
)

__all__ = ["TypeCast", "Compose", "OneHot", "Fill", "Duplicate", "TensorOperation", "PyTensorOperation"]
