"""MnistDataset / Cifar10Dataset / Cifar100Dataset / ImageFolderDataset over small files in the real formats."""

import os
import struct

import numpy as np
import pytest
from PIL import Image

import sporax.dataset as ds


def write_mnist(d, prefix, images, labels):
    with open(os.path.join(d, f"{prefix}-images-idx3-ubyte"), "wb") as f:
        f.write(struct.pack(">IIII", 0x803, len(images), 28, 28) + images.tobytes())
    with open(os.path.join(d, f"{prefix}-labels-idx1-ubyte"), "wb") as f:
        f.write(struct.pack(">II", 0x801, len(labels)) + labels.tobytes())


def test_mnist_reads_idx_files(tmp_path):
    rng = np.random.default_rng(0)
    train = rng.integers(0, 256, (5, 28, 28), dtype=np.uint8)
    test = rng.integers(0, 256, (3, 28, 28), dtype=np.uint8)
    write_mnist(tmp_path, "train", train, np.array([0, 1, 2, 3, 4], np.uint8))
    write_mnist(tmp_path, "t10k", test, np.array([7, 8, 9], np.uint8))
    d = ds.MnistDataset(str(tmp_path), usage="train", shuffle=False)
    assert d.get_col_names() == ["image", "label"] and d.get_dataset_size() == 5
    rows = list(d.create_tuple_iterator(output_numpy=True))
    assert rows[2][0].shape == (28, 28, 1) and rows[2][0].dtype == np.uint8
    np.testing.assert_array_equal(rows[2][0][:, :, 0], train[2])
    assert [int(r[1]) for r in rows] == [0, 1, 2, 3, 4] and rows[0][1].dtype == np.uint32
    assert ds.MnistDataset(str(tmp_path)).get_dataset_size() == 8
    t = list(ds.MnistDataset(str(tmp_path), "test", shuffle=False).create_dict_iterator(output_numpy=True))
    assert [int(r["label"]) for r in t] == [7, 8, 9]
    shard = ds.MnistDataset(str(tmp_path), "train", num_shards=2, shard_id=1, shuffle=False)
    assert shard.get_dataset_size() == 3  # as MindSpore: 5 rows in 2 shards of 3, padded by wrapping
    assert [int(r[1]) for r in shard.create_tuple_iterator(output_numpy=True)] == [1, 3, 0]


def test_mnist_errors(tmp_path):
    with pytest.raises(ValueError, match="does not exist or is not a directory"):
        ds.MnistDataset(str(tmp_path / "nope"))
    with pytest.raises(RuntimeError, match="Check mnist file in directory"):
        ds.MnistDataset(str(tmp_path))
    with pytest.raises(ValueError, match="'usage'"):
        ds.MnistDataset(str(tmp_path), usage="val")


def test_cifar10_and_cifar100_binary_batches(tmp_path):
    rng = np.random.default_rng(1)
    images = rng.integers(0, 256, (6, 3, 32, 32), dtype=np.uint8)  # CHW on disk
    for i in range(1, 6):
        recs = [bytes([i]) + images[i].tobytes()]
        (tmp_path / f"data_batch_{i}.bin").write_bytes(b"".join(recs))
    (tmp_path / "test_batch.bin").write_bytes(bytes([9]) + images[0].tobytes())
    d = ds.Cifar10Dataset(str(tmp_path), usage="train", shuffle=False)
    rows = list(d.create_tuple_iterator(output_numpy=True))
    assert len(rows) == 5 and [int(r[1]) for r in rows] == [1, 2, 3, 4, 5]
    assert rows[0][0].shape == (32, 32, 3)
    np.testing.assert_array_equal(rows[0][0], images[1].transpose(1, 2, 0))
    assert ds.Cifar10Dataset(str(tmp_path)).get_dataset_size() == 6
    (tmp_path / "train.bin").write_bytes(bytes([3, 42]) + images[2].tobytes() + bytes([1, 7]) + images[3].tobytes())
    c = ds.Cifar100Dataset(str(tmp_path), usage="train", shuffle=False)
    assert c.get_col_names() == ["image", "coarse_label", "fine_label"]
    r = list(c.create_tuple_iterator(output_numpy=True))
    assert [(int(a), int(b)) for _, a, b in r] == [(3, 42), (1, 7)]
    np.testing.assert_array_equal(r[1][0], images[3].transpose(1, 2, 0))
    with pytest.raises(RuntimeError, match="test.bin"):
        ds.Cifar100Dataset(str(tmp_path), usage="test")


def test_image_folder(tmp_path):
    for cls, value in (("cat", 10), ("dog", 200)):
        (tmp_path / cls).mkdir()
        for k in range(2):
            Image.fromarray(np.full((4, 6, 3), value + k, np.uint8)).save(tmp_path / cls / f"{k}.png")
    (tmp_path / "dog" / "notes.txt").write_text("not an image")
    d = ds.ImageFolderDataset(str(tmp_path), shuffle=False, decode=True)
    rows = list(d.create_tuple_iterator(output_numpy=True))
    assert [int(r[1]) for r in rows] == [0, 0, 1, 1] and rows[0][1].dtype == np.int32
    assert rows[3][0].shape == (4, 6, 3) and (rows[3][0] == 201).all()
    raw = next(iter(ds.ImageFolderDataset(str(tmp_path), shuffle=False).create_tuple_iterator(output_numpy=True)))
    assert raw[0].ndim == 1 and raw[0].dtype == np.uint8
    from sporax.dataset import vision

    dec = ds.ImageFolderDataset(str(tmp_path), shuffle=False).map(vision.Decode(), "image")
    assert next(iter(dec.create_tuple_iterator(output_numpy=True)))[0].shape == (4, 6, 3)
    ci = ds.ImageFolderDataset(str(tmp_path), class_indexing={"dog": 5}, shuffle=False)
    assert ci.get_dataset_size() == 2 and ci.get_class_indexing() == {"dog": 5}
