"""Maps right below a batch run inside it (vectorized where elementwise): same values, seeds and errors
as the row-by-row pipeline."""

import numpy as np
import pytest

import sporax as ms
import sporax.dataset as ds
import sporax.dataset.transforms as T
import sporax.dataset.vision as vision
import sporax.dataset.vision.transforms as vt


class Images:
    def __init__(self, shape, dtype=np.uint8, n=37):
        self.shape, self.dtype, self.n = shape, dtype, n

    def __getitem__(self, i):
        shape = self.shape(i) if callable(self.shape) else self.shape
        return np.random.default_rng(i).integers(0, 256, shape).astype(self.dtype), np.int64(i)

    def __len__(self):
        return self.n


def identity(x):
    return x


def batches(src, ops, per_row, batch=8, shuffle=False, **kw):
    d = ds.GeneratorDataset(src, ["image", "label"], shuffle=shuffle)
    d = d.map(ops + [identity] if per_row else ops, "image").map(T.TypeCast(ms.int32), "label")
    return [[a.copy() for a in r] for r in d.batch(batch, **kw).create_tuple_iterator(num_epochs=1, output_numpy=True)]


CHAINS = [
    ((5, 4, 1), [vision.Rescale(1 / 255, 0.1), vision.Normalize([0.13], [0.3]), vision.HWC2CHW()]),
    ((5, 4, 3), [vision.Rescale(1 / 255, 0), vision.Normalize([0.1, 0.2, 0.3], [0.3, 0.2, 0.1]), vision.HWC2CHW()]),
    ((3, 5, 4), [vision.Normalize([1, 2, 3], [3, 2, 1], is_hwc=False)]),
    ((5, 4), [vision.Rescale(2.0, 1), vision.Normalize([3.0], [2.0]), vision.HWC2CHW()]),
]


@pytest.mark.parametrize("dtype", [np.uint8, np.float64])
@pytest.mark.parametrize("shape,ops", CHAINS, ids=["hwc1", "hwc3", "chw", "hw"])
def test_vectorized_batch_equals_row_by_row(shape, ops, dtype, monkeypatch):
    calls = []
    for cls in (vt.Rescale, vt.Normalize, vt.HWC2CHW):
        orig = cls._apply_batch
        monkeypatch.setattr(cls, "_apply_batch", lambda self, x, rng=None, f=orig: (calls.append(1), f(self, x, rng))[1])
    fused = batches(Images(shape, dtype), ops, per_row=False)
    assert len(calls) == 5 * len(ops)  # once per batch and transform
    calls.clear()
    rowwise = batches(Images(shape, dtype), ops, per_row=True)
    assert calls == [] and len(fused) == len(rowwise) == 5
    for a, b in zip(fused, rowwise):
        for x, y in zip(a, b):
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y)
    assert fused[0][0].dtype == np.float32 and fused[-1][1].tolist() == [32, 33, 34, 35, 36]


def test_random_maps_in_a_batch_see_their_row_seeds():
    def run(batched):
        ms.set_seed(4)
        d = ds.GeneratorDataset(Images((6, 6, 1)), ["image", "label"], shuffle=True)
        d = d.map([vision.RandomCrop(4), vision.RandomHorizontalFlip()], "image")
        it = (d.batch(5) if batched else d).create_tuple_iterator(num_epochs=2, output_numpy=True)
        out = [[r[0].copy() for r in it] for _ in range(2)]
        return [np.concatenate(e) if batched else np.stack(e) for e in out]

    b, r = run(True), run(False)
    assert all(np.array_equal(x, y) for x, y in zip(b, r)) and not np.array_equal(b[0], b[1])


def test_ragged_rows_made_equal_by_the_map_and_errors_name_the_row():
    ragged = Images(lambda i: (4 + i % 3, 5, 3))
    d = ds.GeneratorDataset(ragged, ["image", "label"], shuffle=False).map(vision.Resize((4, 4)), "image")
    assert [r[0].shape for r in d.batch(4).create_tuple_iterator(output_numpy=True)][0] == (4, 4, 4, 3)
    bad = ds.GeneratorDataset(Images((5, 4, 1)), ["image", "label"], shuffle=False)
    bad = bad.map([vision.Rescale(1 / 255, 0), vision.Normalize([0.1, 0.2, 0.3], [1, 1, 1])], "image").batch(4)
    with pytest.raises(RuntimeError, match=r"Normalize.*column\(s\) \['image'\] at row 0 of epoch 0"):
        list(bad.create_tuple_iterator(output_numpy=True))
    mixed = ds.GeneratorDataset([(np.int32(1),), (np.int64(2),)], ["x"], shuffle=False)
    out = list(mixed.map(T.TypeCast(ms.float32), "x").batch(2).create_tuple_iterator(output_numpy=True))
    assert out[0][0].dtype == np.float32 and out[0][0].tolist() == [1.0, 2.0]


def test_project_and_rename_inside_the_batch():
    d = ds.GeneratorDataset(Images((2, 2, 1), n=6), ["image", "label"], shuffle=False)
    d = d.map(vision.Rescale(0.5, 0), "image").rename(["label"], ["y"]).project(["y", "image"]).batch(4)
    assert d.get_col_names() == ["y", "image"]
    out = list(d.create_tuple_iterator(output_numpy=True))
    assert [b[0].tolist() for b in out] == [[0, 1, 2, 3], [4, 5]] and out[1][1].shape == (2, 2, 2, 1)
    np.testing.assert_array_equal(out[0][1][1], Images((2, 2, 1))[1][0] * np.float32(0.5))
