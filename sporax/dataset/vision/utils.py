"""Enums of ``mindspore.dataset.vision``: ``Inter`` (interpolation) and ``Border`` (padding)."""

from __future__ import annotations

import enum

__all__ = ["Inter", "Border", "pil_resample"]


class Inter(enum.IntEnum):
    """Interpolation modes (MindSpore's values)."""

    NEAREST = 0
    ANTIALIAS = 1
    BILINEAR = LINEAR = 2
    BICUBIC = CUBIC = 3
    AREA = 4
    PILCUBIC = 5


class Border(str, enum.Enum):
    """Padding modes, as ``numpy.pad`` names them."""

    CONSTANT = "constant"
    EDGE = "edge"
    REFLECT = "reflect"
    SYMMETRIC = "symmetric"


def pil_resample(inter: Inter) -> int:
    """The Pillow resampling filter of an ``Inter`` mode."""
    from PIL import Image

    return {
        Inter.NEAREST: Image.Resampling.NEAREST,
        Inter.ANTIALIAS: Image.Resampling.LANCZOS,
        Inter.BILINEAR: Image.Resampling.BILINEAR,
        Inter.BICUBIC: Image.Resampling.BICUBIC,
        Inter.AREA: Image.Resampling.BOX,
        Inter.PILCUBIC: Image.Resampling.BICUBIC,
    }[Inter(inter)]
