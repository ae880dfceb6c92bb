"""The 1.x name ``mindspore.dataset.vision.c_transforms``: the same transforms on numpy arrays."""

from sporax.dataset.vision.transforms import (
    HWC2CHW,
    CenterCrop,
    Decode,
    Normalize,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomVerticalFlip,
    Rescale,
    Resize,
)
from sporax.dataset.vision.utils import Border, Inter

__all__ = ["Decode", "Resize", "Rescale", "Normalize", "HWC2CHW", "CenterCrop", "RandomCrop", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomResizedCrop", "Inter", "Border"]
