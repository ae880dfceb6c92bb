"""Vision transforms of ``mindspore.dataset.vision`` on numpy (HWC or HW) and Pillow images.

Decoding and resizing use Pillow: resized values are Pillow's (MindSpore uses OpenCV, whose
bilinear filter differs in the last bits and, when shrinking, in its antialiasing). Geometric
transforms given a PIL image return a PIL image (the 1.x ``py_transforms`` style); given an
array they return an array. Random transforms draw from the per-row generator the pipeline
passes in, so their results are a function of the seed and the row only.
"""

from __future__ import annotations

import io
import numbers

import numpy as np

from sporax.common._validation import msg
from sporax.dataset.transforms.transforms import _is_pil, _OneToOne
from sporax.dataset.vision.utils import Border, Inter, pil_resample

__all__ = ["Decode", "Resize", "Rescale", "Normalize", "HWC2CHW", "CenterCrop", "RandomCrop",
           "RandomHorizontalFlip", "RandomVerticalFlip", "RandomResizedCrop", "ToTensor", "ToPIL"]


def _size2(size, where: str) -> tuple[int, int] | int:
    """``size`` as an int (shorter side) or an (h, w) pair, validated."""
    if isinstance(size, numbers.Integral) and not isinstance(size, bool):
        if size < 1:
            raise ValueError(msg(where, "size", "an int >= 1 or a sequence of 2 ints >= 1", size))
        return int(size)
    if isinstance(size, (list, tuple)) and len(size) in (1, 2) and all(
            isinstance(s, numbers.Integral) and not isinstance(s, bool) and s >= 1 for s in size):
        return (int(size[0]), int(size[-1]))
    raise TypeError(msg(where, "size", "an int >= 1 or a sequence of 2 ints >= 1", size))


def _hw(img) -> tuple[int, int]:
    if _is_pil(img):
        return img.size[1], img.size[0]
    if img.ndim not in (2, 3):
        raise RuntimeError(f"the input image should have shape <H, W> or <H, W, C>, but got shape {img.shape}.")
    return img.shape[0], img.shape[1]


def _check_inter(interpolation, where: str) -> Inter:
    try:
        return Inter(interpolation)
    except ValueError:
        raise TypeError(msg(where, "interpolation", "a vision.Inter mode", interpolation)) from None


def _resize(img, h: int, w: int, inter: Inter):
    from PIL import Image

    if _is_pil(img):
        return img.resize((w, h), pil_resample(inter))
    arr = np.asarray(img)
    resample = pil_resample(inter)
    if arr.dtype == np.uint8 and (arr.ndim == 2 or arr.shape[2] in (3, 4)):
        return np.asarray(Image.fromarray(arr).resize((w, h), resample))
    # Other dtypes/channel counts: channel by channel in float32 ('F' mode), cast back.
    chans = arr[..., None] if arr.ndim == 2 else arr
    out = np.stack([np.asarray(Image.fromarray(chans[..., c].astype(np.float32), mode="F").resize((w, h), resample))
                    for c in range(chans.shape[2])], axis=-1)
    if arr.dtype.kind in "iu":
        info = np.iinfo(arr.dtype)
        out = np.clip(np.rint(out), info.min, info.max)
    out = out.astype(arr.dtype)
    return out[..., 0] if arr.ndim == 2 else out


def _crop(img, top: int, left: int, h: int, w: int):
    if _is_pil(img):
        return img.crop((left, top, left + w, top + h))
    return img[top:top + h, left:left + w]


def _pad(img, top, bottom, left, right, fill, mode: Border):
    was_pil = _is_pil(img)
    arr = np.asarray(img)
    widths = [(top, bottom), (left, right)] + [(0, 0)] * (arr.ndim - 2)
    if mode == Border.CONSTANT:
        out = np.pad(arr, widths, mode="constant", constant_values=fill)
    else:
        out = np.pad(arr, widths, mode=Border(mode).value)
    if was_pil:
        from PIL import Image

        return Image.fromarray(out)
    return out


class Decode(_OneToOne):
    """Decode an encoded image (JPEG/PNG/BMP/... bytes as a 1-D uint8 array) to RGB HWC uint8.

    ``to_pil=True`` returns a PIL image instead.
    """

    def __init__(self, to_pil: bool = False) -> None:
        if not isinstance(to_pil, bool):
            raise TypeError(msg("Decode", "to_pil", "a bool", to_pil))
        self.to_pil = to_pil

    def _apply1(self, x, rng):
        from PIL import Image

        data = x.tobytes() if isinstance(x, np.ndarray) else bytes(x)
        if isinstance(x, np.ndarray) and (x.ndim != 1 or x.dtype != np.uint8):
            raise RuntimeError(f"Decode: the input should be a 1-D uint8 array of encoded image bytes, but got "
                               f"shape {x.shape} and dtype {x.dtype}.")
        try:
            img = Image.open(io.BytesIO(data)).convert("RGB")
        except Exception as e:  # Pillow raises several types for bad data
            raise RuntimeError(f"Decode: the data is not a decodable image ({e}).") from None
        return img if self.to_pil else np.asarray(img)


class Resize(_OneToOne):
    """Resize to ``size``: an int resizes the shorter side to it keeping the aspect ratio."""

    def __init__(self, size, interpolation: Inter = Inter.LINEAR) -> None:
        self.size = _size2(size, "Resize")
        self.interpolation = _check_inter(interpolation, "Resize")

    def _apply1(self, x, rng):
        h, w = _hw(x)
        if isinstance(self.size, int):
            if h <= w:
                nh, nw = self.size, int(w * self.size / h)
            else:
                nh, nw = int(h * self.size / w), self.size
        else:
            nh, nw = self.size
        return _resize(x, nh, nw, self.interpolation)


class Rescale(_OneToOne):
    """``x * rescale + shift`` in float32 (e.g. ``Rescale(1/255, 0)``)."""

    def __init__(self, rescale: float, shift: float) -> None:
        for name, v in (("rescale", rescale), ("shift", shift)):
            if not isinstance(v, numbers.Real) or isinstance(v, bool):
                raise TypeError(msg("Rescale", name, "a float", v))
        self.rescale = float(rescale)
        self.shift = float(shift)

    def _apply1(self, x, rng):
        out = np.array(x, dtype=np.float32)  # a fresh float32 copy, scaled in place
        out *= np.float32(self.rescale)
        if self.shift:
            out += np.float32(self.shift)
        return out

    _apply_batch = _apply1  # elementwise: a batch of rows at once (x[0] is a row)


class Normalize(_OneToOne):
    """``(x - mean) / std`` per channel, in float32; channels last unless ``is_hwc=False``."""

    def __init__(self, mean, std, is_hwc: bool = True) -> None:
        for name, v in (("mean", mean), ("std", std)):
            if not isinstance(v, (list, tuple)) or not v or not all(isinstance(e, numbers.Real) for e in v):
                raise TypeError(msg("Normalize", name, "a non-empty list of numbers", v))
        if len(mean) != len(std):
            raise ValueError(f"For 'Normalize', 'mean' and 'std' should have the same length, but got {len(mean)} "
                             f"and {len(std)}.")
        if any(s <= 0 for s in std):
            raise ValueError(msg("Normalize", "std", "a list of numbers > 0", std))
        if not isinstance(is_hwc, bool):
            raise TypeError(msg("Normalize", "is_hwc", "a bool", is_hwc))
        self.mean = list(mean)
        self.std = list(std)
        self.is_hwc = is_hwc
        self._mean = np.asarray(mean, np.float32)
        self._std = np.asarray(std, np.float32)

    def _apply1(self, x, rng):
        x = np.asarray(x, dtype=np.float32)
        c = len(self.mean)
        if x.ndim == 2:
            if c != 1:
                raise RuntimeError(f"Normalize: a <H, W> image needs 1 mean/std value, but got {c}.")
            return (x - self._mean[0]) / self._std[0]
        if x.ndim != 3 or x.shape[-1 if self.is_hwc else 0] != c:
            layout = "<H, W, C>" if self.is_hwc else "<C, H, W>"
            raise RuntimeError(f"Normalize: expected an image of shape {layout} with C={c} channels (the length of "
                               f"mean/std), but got shape {x.shape}.")
        if self.is_hwc:
            if c == 1:  # scalars broadcast faster than 1-element arrays
                out = np.subtract(x, self._mean[0])
                out /= self._std[0]
                return out
            out = np.subtract(x, self._mean)
            out /= self._std
            return out
        out = np.subtract(x, self._mean[:, None, None])
        out /= self._std[:, None, None]
        return out

    def _apply_batch(self, x, rng=None):
        """``_apply1`` on a stack of rows (axis 0): the same operations, so the same values row by row."""
        x = np.asarray(x, dtype=np.float32)
        c = len(self.mean)
        if x.ndim == 3 and c == 1:  # <H, W> rows
            return (x - self._mean[0]) / self._std[0]
        if x.ndim != 4 or x.shape[-1 if self.is_hwc else 1] != c:
            raise ValueError("not a batch of images this Normalize takes")  # the per-row path names the error
        if self.is_hwc:
            mean, std = (self._mean[0], self._std[0]) if c == 1 else (self._mean, self._std)
        else:
            mean, std = self._mean[:, None, None], self._std[:, None, None]
        out = np.subtract(x, mean)
        out /= std
        return out


class HWC2CHW(_OneToOne):
    """Transpose an <H, W, C> image to <C, H, W> (a <H, W> image is returned unchanged)."""

    def _apply1(self, x, rng):
        x = np.asarray(x)
        if x.ndim == 2:
            return x
        if x.ndim != 3:
            raise RuntimeError(f"HWC2CHW: the input should have shape <H, W, C> or <H, W>, but got {x.shape}.")
        return np.ascontiguousarray(x.transpose(2, 0, 1))

    def _apply_batch(self, x, rng=None):
        if x.ndim == 3:
            return x
        if x.ndim != 4:
            raise ValueError("not a batch of images")
        return np.ascontiguousarray(x.transpose(0, 3, 1, 2))


class CenterCrop(_OneToOne):
    """Crop the center ``size`` (int: square); pads with zeros where the image is smaller."""

    def __init__(self, size) -> None:
        self.size = _size2(size, "CenterCrop")

    def _apply1(self, x, rng):
        th, tw = (self.size, self.size) if isinstance(self.size, int) else self.size
        h, w = _hw(x)
        if th > h or tw > w:
            ph, pw = max(th - h, 0), max(tw - w, 0)
            x = _pad(x, ph // 2, ph - ph // 2, pw // 2, pw - pw // 2, 0, Border.CONSTANT)
            h, w = _hw(x)
        return _crop(x, (h - th) // 2, (w - tw) // 2, th, tw)


def _padding4(padding, where: str) -> tuple[int, int, int, int]:
    """(left, top, right, bottom) from an int or a sequence of 2 or 4 ints."""
    if isinstance(padding, numbers.Integral) and not isinstance(padding, bool) and padding >= 0:
        return (int(padding),) * 4
    if isinstance(padding, (list, tuple)) and len(padding) in (2, 4) and all(
            isinstance(p, numbers.Integral) and p >= 0 for p in padding):
        return tuple(int(p) for p in padding) * (2 if len(padding) == 2 else 1)
    raise TypeError(msg(where, "padding", "an int >= 0 or a sequence of 2 or 4 ints >= 0", padding))


class RandomCrop(_OneToOne):
    """Crop a random ``size`` window, after optional ``padding`` (left, top, right, bottom)."""

    random = True

    def __init__(self, size, padding=None, pad_if_needed: bool = False, fill_value=0,
                 padding_mode: Border = Border.CONSTANT) -> None:
        self.size = _size2(size, "RandomCrop")
        self.padding = None if padding is None else _padding4(padding, "RandomCrop")
        if not isinstance(pad_if_needed, bool):
            raise TypeError(msg("RandomCrop", "pad_if_needed", "a bool", pad_if_needed))
        self.pad_if_needed = pad_if_needed
        self.fill_value = fill_value
        try:
            self.padding_mode = Border(padding_mode)
        except ValueError:
            raise TypeError(msg("RandomCrop", "padding_mode", "a vision.Border mode", padding_mode)) from None

    def _apply1(self, x, rng):
        th, tw = (self.size, self.size) if isinstance(self.size, int) else self.size
        if self.padding is not None:
            left, top, right, bottom = self.padding
            x = _pad(x, top, bottom, left, right, self.fill_value, self.padding_mode)
        h, w = _hw(x)
        if self.pad_if_needed and (th > h or tw > w):
            ph, pw = max(th - h, 0), max(tw - w, 0)
            x = _pad(x, ph, ph, pw, pw, self.fill_value, self.padding_mode)
            h, w = _hw(x)
        if th > h or tw > w:
            raise RuntimeError(f"RandomCrop: invalid crop size, crop size is bigger than the image dimensions, "
                               f"got crop height: {th}, crop width: {tw} for an image of {h}x{w}; pass a smaller "
                               "size, padding, or pad_if_needed=True.")
        top = int(rng.integers(0, h - th + 1))
        left = int(rng.integers(0, w - tw + 1))
        return _crop(x, top, left, th, tw)


def _check_prob(prob, where: str) -> float:
    if not isinstance(prob, numbers.Real) or isinstance(prob, bool) or not 0.0 <= prob <= 1.0:
        raise ValueError(msg(where, "prob", "a float in [0.0, 1.0]", prob))
    return float(prob)


class RandomHorizontalFlip(_OneToOne):
    """Flip left-right with probability ``prob``."""

    random = True

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = _check_prob(prob, "RandomHorizontalFlip")

    def _apply1(self, x, rng):
        if rng.random() >= self.prob:
            return x
        if _is_pil(x):
            from PIL import Image

            return x.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
        return np.ascontiguousarray(x[:, ::-1])


class RandomVerticalFlip(_OneToOne):
    """Flip top-bottom with probability ``prob``."""

    random = True

    def __init__(self, prob: float = 0.5) -> None:
        self.prob = _check_prob(prob, "RandomVerticalFlip")

    def _apply1(self, x, rng):
        if rng.random() >= self.prob:
            return x
        if _is_pil(x):
            from PIL import Image

            return x.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
        return np.ascontiguousarray(x[::-1])


class RandomResizedCrop(_OneToOne):
    """Crop a random area fraction ``scale`` with aspect ratio in ``ratio``, resized to ``size``.

    Up to ``max_attempts`` draws; if none fits, a center crop clamped to ``ratio`` is used.
    """

    random = True

    def __init__(self, size, scale=(0.08, 1.0), ratio=(3.0 / 4.0, 4.0 / 3.0), interpolation: Inter = Inter.BILINEAR,
                 max_attempts: int = 10) -> None:
        self.size = _size2(size, "RandomResizedCrop")
        for name, v in (("scale", scale), ("ratio", ratio)):
            if (not isinstance(v, (list, tuple)) or len(v) != 2 or not all(isinstance(e, numbers.Real) for e in v)
                    or v[0] > v[1] or v[0] < 0 or (name == "ratio" and v[0] <= 0)):
                raise ValueError(msg("RandomResizedCrop", name, "a (min, max) pair with 0 <= min <= max", v))
        self.scale = (float(scale[0]), float(scale[1]))
        self.ratio = (float(ratio[0]), float(ratio[1]))
        self.interpolation = _check_inter(interpolation, "RandomResizedCrop")
        if not isinstance(max_attempts, int) or isinstance(max_attempts, bool) or max_attempts < 1:
            raise ValueError(msg("RandomResizedCrop", "max_attempts", "an int >= 1", max_attempts))
        self.max_attempts = max_attempts

    def _window(self, h: int, w: int, rng) -> tuple[int, int, int, int]:
        area = h * w
        log_r = (np.log(self.ratio[0]), np.log(self.ratio[1]))
        for _ in range(self.max_attempts):
            target = area * rng.uniform(self.scale[0], self.scale[1])
            aspect = float(np.exp(rng.uniform(log_r[0], log_r[1])))
            cw = int(round(np.sqrt(target * aspect)))
            ch = int(round(np.sqrt(target / aspect)))
            if 0 < cw <= w and 0 < ch <= h:
                return int(rng.integers(0, h - ch + 1)), int(rng.integers(0, w - cw + 1)), ch, cw
        in_ratio = w / h
        if in_ratio < self.ratio[0]:
            cw, ch = w, int(round(w / self.ratio[0]))
        elif in_ratio > self.ratio[1]:
            ch, cw = h, int(round(h * self.ratio[1]))
        else:
            cw, ch = w, h
        return (h - ch) // 2, (w - cw) // 2, ch, cw

    def _apply1(self, x, rng):
        h, w = _hw(x)
        top, left, ch, cw = self._window(h, w, rng)
        th, tw = (self.size, self.size) if isinstance(self.size, int) else self.size
        return _resize(_crop(x, top, left, ch, cw), th, tw, self.interpolation)


class ToTensor(_OneToOne):
    """A PIL image or <H, W, C> array to <C, H, W> ``output_type`` (float32) divided by 255."""

    def __init__(self, output_type=np.float32) -> None:
        from sporax.dataset.transforms.transforms import _to_np_dtype

        self.output_type = _to_np_dtype(output_type, "ToTensor")

    def _apply1(self, x, rng):
        arr = np.asarray(x)
        if arr.ndim == 2:
            arr = arr[:, :, None]
        if arr.ndim != 3:
            raise RuntimeError(f"ToTensor: the input should have shape <H, W, C> or <H, W>, but got {arr.shape}.")
        return (arr.transpose(2, 0, 1) / 255.0).astype(self.output_type)


class ToPIL(_OneToOne):
    """An <H, W, C>/<H, W> uint8 array to a PIL image."""

    def _apply1(self, x, rng):
        from PIL import Image

        return x if _is_pil(x) else Image.fromarray(np.asarray(x))
