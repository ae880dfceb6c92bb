"""Transforms of mindspore.dataset.transforms and .vision against hand-computed values, eager and in map."""

import importlib
import io

import numpy as np
import pytest
from PIL import Image

import sporax as ms
import sporax.dataset as ds
import sporax.dataset.transforms as T
import sporax.dataset.vision as vision

IMG = np.arange(2 * 3 * 3, dtype=np.uint8).reshape(2, 3, 3)


def test_general_transforms():
    np.testing.assert_array_equal(T.TypeCast(ms.int32)(np.array([1.7, -1.7])), [1, -1])
    assert T.TypeCast(ms.int32)(np.array([1.7])).dtype == np.int32
    assert T.TypeCast(np.float16)(np.array([1.7])).dtype == np.float16
    np.testing.assert_array_equal(T.OneHot(4)(np.array(2)), [0, 0, 1, 0])
    np.testing.assert_array_equal(T.OneHot(4)(np.array([1, 3], np.int32)), [[0, 1, 0, 0], [0, 0, 0, 1]])
    np.testing.assert_allclose(T.OneHot(4, 0.2)(np.array(2)), [0.05, 0.05, 0.85, 0.05])
    out = T.Fill(7)(np.array([1.5, 2.0]))
    np.testing.assert_array_equal(out, [7.0, 7.0]) and out.dtype == np.float64
    a, b = T.Duplicate()(np.array([1, 2]))
    np.testing.assert_array_equal(a, b)
    assert T.Compose([vision.Rescale(2.0, 0.0), vision.HWC2CHW()])(IMG).shape == (3, 2, 3)
    with pytest.raises(TypeError, match="'data_type'"):
        T.TypeCast("nonsense")
    with pytest.raises(RuntimeError, match="class index out of range"):
        T.OneHot(2)(np.array([3]))


def test_rescale_normalize_hwc2chw_totensor():
    out = vision.Rescale(2.0, 1.0)(np.array([1, 2], np.uint8))
    np.testing.assert_array_equal(out, [3.0, 5.0]) and out.dtype == np.float32
    n = vision.Normalize([1.0, 2.0, 3.0], [2.0, 2.0, 2.0])(IMG)
    np.testing.assert_allclose(n[0, 0], [(0 - 1) / 2, (1 - 2) / 2, (2 - 3) / 2])
    assert n.dtype == np.float32
    chw = vision.Normalize([1.0, 2.0], [1.0, 1.0], is_hwc=False)(np.ones((2, 2, 2), np.float32))
    np.testing.assert_array_equal(chw[:, 0, 0], [0.0, -1.0])
    np.testing.assert_array_equal(vision.HWC2CHW()(IMG)[:, 1, 2], IMG[1, 2])
    assert vision.HWC2CHW()(np.zeros((2, 3), np.uint8)).shape == (2, 3)
    t = vision.ToTensor()(IMG)
    assert t.shape == (3, 2, 3) and t.dtype == np.float32
    np.testing.assert_allclose(t[:, 1, 2], IMG[1, 2] / 255.0, rtol=1e-6)
    assert vision.ToTensor()(np.zeros((2, 3), np.uint8)).shape == (1, 2, 3)
    with pytest.raises(RuntimeError, match="C=2 channels"):
        vision.Normalize([1.0, 2.0], [1.0, 1.0])(IMG)


def test_crops_flips_resize():
    x = np.arange(16, dtype=np.uint8).reshape(4, 4)
    assert vision.CenterCrop(2)(x).tolist() == [[5, 6], [9, 10]]
    assert vision.CenterCrop((1, 2))(x).tolist() == [[5, 6]]
    big = vision.CenterCrop(6)(x)
    assert big.shape == (6, 6) and big[1:5, 1:5].tolist() == x.tolist() and big[0].sum() == 0
    assert vision.RandomHorizontalFlip(1.0)(np.arange(4, dtype=np.uint8).reshape(2, 2)).tolist() == [[1, 0], [3, 2]]
    assert vision.RandomVerticalFlip(1.0)(np.arange(4, dtype=np.uint8).reshape(2, 2)).tolist() == [[2, 3], [0, 1]]
    assert vision.RandomHorizontalFlip(0.0)(x).tolist() == x.tolist()
    crop = vision.RandomCrop(2)(x)
    assert crop.shape == (2, 2) and any(crop.tolist() == x[i:i + 2, j:j + 2].tolist()
                                        for i in range(3) for j in range(3))
    padded = vision.RandomCrop(4, padding=1)(np.ones((4, 4), np.uint8))
    assert padded.shape == (4, 4)
    with pytest.raises(RuntimeError, match="crop size is bigger than the image"):
        vision.RandomCrop(5)(x)
    assert vision.RandomCrop(5, pad_if_needed=True)(x).shape == (5, 5)
    assert vision.Resize((2, 3))(np.zeros((4, 6, 3), np.uint8)).shape == (2, 3, 3)
    assert vision.Resize(3)(np.zeros((4, 6, 3), np.uint8)).shape == (3, 4, 3)
    assert vision.Resize(5)(np.zeros((3, 7), np.uint8)).shape == (5, 11)
    # a constant image stays constant under any interpolation; float images resize per channel
    np.testing.assert_allclose(vision.Resize((3, 3), vision.Inter.BICUBIC)(np.full((6, 6, 2), 0.5, np.float32)),
                               np.full((3, 3, 2), 0.5), rtol=1e-6)
    up = vision.Resize((4, 4), vision.Inter.NEAREST)(np.array([[0, 255], [255, 0]], np.uint8))
    assert up.tolist() == [[0, 0, 255, 255], [0, 0, 255, 255], [255, 255, 0, 0], [255, 255, 0, 0]]
    rrc = vision.RandomResizedCrop(3)(np.ones((8, 8, 3), np.uint8))
    assert rrc.shape == (3, 3, 3) and (rrc == 1).all()
    assert [m.name for m in vision.Inter] == ["NEAREST", "ANTIALIAS", "BILINEAR", "BICUBIC", "AREA", "PILCUBIC"]
    assert vision.Inter.LINEAR is vision.Inter.BILINEAR


def test_decode_and_pil_path():
    buf = io.BytesIO()
    Image.fromarray(np.arange(4 * 5 * 3, dtype=np.uint8).reshape(4, 5, 3)).save(buf, format="PNG")
    data = np.frombuffer(buf.getvalue(), np.uint8)
    img = vision.Decode()(data)
    assert img.shape == (4, 5, 3) and img.dtype == np.uint8 and img[1, 2].tolist() == [21, 22, 23]
    pil = vision.Decode(to_pil=True)(data)
    assert isinstance(pil, Image.Image)
    assert isinstance(vision.CenterCrop(2)(pil), Image.Image)
    from sporax.dataset.vision import py_transforms as P

    chw = T.Compose([P.Decode(), P.Resize((2, 2)), P.ToTensor(), P.Normalize([0.5] * 3, [0.5] * 3)])(data)
    assert chw.shape == (3, 2, 2) and chw.dtype == np.float32
    with pytest.raises(RuntimeError, match="not a decodable image"):
        vision.Decode()(np.zeros(10, np.uint8))


def test_random_transforms_in_pipeline_are_seeded_per_row():
    def run():
        d = ds.NumpySlicesDataset(np.arange(16 * 16, dtype=np.uint8).reshape(1, 16, 16).repeat(6, 0), ["x"],
                                  shuffle=False)
        d = d.map([vision.RandomCrop(8), vision.RandomHorizontalFlip()], ["x"])
        return [r[0] for r in d.create_tuple_iterator(output_numpy=True)]

    ms.set_seed(7)
    a = run()
    ms.set_seed(7)
    b = run()
    assert all((x == y).all() for x, y in zip(a, b))
    assert len({x.tobytes() for x in a}) > 1  # rows get different crops
    ms.set_seed(8)
    assert any((x != y).any() for x, y in zip(a, run()))


def test_python_callable_and_pipeline_of_vision_ops():
    d = ds.NumpySlicesDataset(np.full((4, 28, 28, 1), 255, np.uint8), ["image"], shuffle=False)
    d = d.map([vision.Rescale(1 / 255, 0), vision.Normalize([0.5], [0.5]), vision.HWC2CHW()], "image")
    d = d.map(lambda x: x * 2, "image").batch(2)
    out = [r[0] for r in d.create_tuple_iterator(output_numpy=True)]
    assert out[0].shape == (2, 1, 28, 28) and np.allclose(out[0], 2.0)


@pytest.mark.parametrize("path,names", [
    ("mindspore.dataset.vision.c_transforms", ["Decode", "Resize", "Rescale", "Normalize", "HWC2CHW", "CenterCrop",
                                               "RandomCrop", "RandomHorizontalFlip", "RandomVerticalFlip",
                                               "RandomResizedCrop", "Inter"]),
    ("mindspore.dataset.vision.py_transforms", ["Decode", "ToTensor", "Normalize", "Resize", "CenterCrop"]),
    ("mindspore.dataset.transforms.c_transforms", ["TypeCast", "Compose", "OneHot", "Fill", "Duplicate"]),
    ("mindspore.dataset.transforms.py_transforms", ["Compose", "OneHotOp"]),
    ("mindspore.dataset.vision", ["Decode", "Resize", "Rescale", "Normalize", "HWC2CHW", "ToTensor", "Inter"]),
    ("mindspore.dataset.transforms", ["TypeCast", "Compose", "OneHot", "Fill", "Duplicate"]),
    ("mindspore.dataset", ["GeneratorDataset", "NumpySlicesDataset", "MnistDataset", "Cifar10Dataset",
                           "Cifar100Dataset", "ImageFolderDataset", "SequentialSampler", "RandomSampler",
                           "DistributedSampler", "SubsetRandomSampler"]),
])
def test_import_paths(path, names):
    from sporax import compat

    compat.install()
    try:
        mod = importlib.import_module(path)
        for n in names:
            assert getattr(mod, n).__module__.startswith("sporax.dataset"), n
    finally:
        compat.uninstall()


def test_mindspore_dataset_attribute_without_import():
    import sporax

    assert sporax.dataset.GeneratorDataset is ds.GeneratorDataset
