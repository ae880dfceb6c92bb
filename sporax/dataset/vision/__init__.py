"""``mindspore.dataset.vision``: image transforms (numpy and Pillow) and their enums."""

from sporax.dataset.vision import c_transforms, py_transforms, transforms, utils  # noqa: F401
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
    ToPIL,
    ToTensor,
)
from sporax.dataset.vision.utils import Border, Inter

__all__ = ["Decode", "Resize", "Rescale", "Normalize", "HWC2CHW", "CenterCrop", "RandomCrop", "RandomHorizontalFlip",
           "RandomVerticalFlip", "RandomResizedCrop", "ToTensor", "ToPIL", "Inter", "Border"]
