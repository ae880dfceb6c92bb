"""The 1.x name ``mindspore.dataset.vision.py_transforms``: the PIL-style variants.

As in 1.x, ``Decode`` gives a PIL image, geometric transforms keep PIL images, ``ToTensor``
makes <C, H, W> float32 in [0, 1], and ``Normalize`` then works on <C, H, W>.
"""

from sporax.dataset.vision import transforms as _t
from sporax.dataset.vision.transforms import (
    HWC2CHW,
    CenterCrop,
    RandomCrop,
    RandomHorizontalFlip,
    RandomResizedCrop,
    RandomVerticalFlip,
    Resize,
    ToPIL,
    ToTensor,
)
from sporax.dataset.vision.utils import Border, Inter

__all__ = ["Decode", "ToTensor", "ToPIL", "Resize", "Normalize", "HWC2CHW", "CenterCrop", "RandomCrop",
           "RandomHorizontalFlip", "RandomVerticalFlip", "RandomResizedCrop", "Inter", "Border"]


class Decode(_t.Decode):
    """Decode image bytes to a PIL RGB image."""

    def __init__(self) -> None:
        super().__init__(to_pil=True)


class Normalize(_t.Normalize):
    """Normalize a <C, H, W> image (the output of ``ToTensor``)."""

    def __init__(self, mean, std) -> None:
        super().__init__(mean, std, is_hwc=False)
