"""Sources, operations, iterators and metadata of mindspore.dataset, through the public API."""

import collections
import json
import os

import numpy as np
import pytest

import sporax as ms
import sporax.dataset as ds
from sporax.common.tensor import Tensor


def rows(d, **kw):
    return [tuple(v.tolist() for v in r) for r in d.create_tuple_iterator(output_numpy=True, **kw)]


class Src:
    """Random-access source: row i = ([i] int32, 2i float32)."""

    def __init__(self, n=10):
        self.n = n

    def __getitem__(self, i):
        return np.array([i], np.int32), np.array(i * 2.0, np.float32)

    def __len__(self):
        return self.n


def nums(n=3, name="a"):
    return ds.NumpySlicesDataset(list(range(1, n + 1)), [name], shuffle=False)


# ------------------------------------------------------------------ sources
def test_generator_random_access_sequential_and_types():
    d = ds.GeneratorDataset(Src(4), ["a", "b"], shuffle=False)
    assert rows(d) == [([0], 0.0), ([1], 2.0), ([2], 4.0), ([3], 6.0)]
    assert d.get_col_names() == ["a", "b"]
    assert d.get_dataset_size() == 4
    assert d.output_shapes() == [[1], []]
    assert d.output_types() == [np.int32, np.float32]
    first = next(iter(d))
    assert isinstance(first, list) and all(isinstance(t, Tensor) for t in first)
    assert first[0].dtype == ms.int32 and first[1].dtype == ms.float32


def test_generator_default_shuffles_random_access_sources():
    d = ds.GeneratorDataset(Src(20), ["a", "b"])
    order = [r[0][0] for r in rows(d)]
    assert sorted(order) == list(range(20)) and order != list(range(20))


def test_generator_iterable_and_callable_sources():
    def gen():
        for i in range(3):
            yield (np.array(i),)

    assert rows(ds.GeneratorDataset(gen, ["x"])) == [(0,), (1,), (2,)]
    assert rows(ds.GeneratorDataset([1, 2, 3], ["x"], shuffle=False)) == [(1,), (2,), (3,)]
    assert rows(ds.GeneratorDataset([[1, 2], [3, 4]], ["x", "y"], shuffle=False)) == [(1, 2), (3, 4)]
    assert rows(ds.GeneratorDataset([1, 2, 3], ["x"], shuffle=False, num_samples=2)) == [(1,), (2,)]
    assert ds.GeneratorDataset([(1.5,)], ["x"]).output_types() == [np.float64]
    assert ds.GeneratorDataset([(1,)], ["x"]).output_types() == [np.int64]
    typed = ds.GeneratorDataset([(1,)], ["x"], column_types=[ms.float32])
    assert typed.output_types() == [np.float32]
    # each epoch re-reads the generator function
    it = ds.GeneratorDataset(gen, ["x"]).create_tuple_iterator(num_epochs=2, output_numpy=True)
    assert [r[0].item() for r in it] == [0, 1, 2] and [r[0].item() for r in it] == [0, 1, 2]


def test_numpy_slices_shapes_of_data():
    d = ds.NumpySlicesDataset({"a": [1, 2], "b": [[1.0, 2.0], [3.0, 4.0]]}, shuffle=False)
    assert d.get_col_names() == ["a", "b"] and rows(d) == [(1, [1.0, 2.0]), (2, [3.0, 4.0])]
    d = ds.NumpySlicesDataset(([1, 2], [3, 4]), shuffle=False)
    assert d.get_col_names() == ["column_0", "column_1"] and rows(d) == [(1, 3), (2, 4)]
    d = ds.NumpySlicesDataset([1, 2, 3], shuffle=False)
    assert d.get_col_names() == ["column_0"] and d.output_types() == [np.int64]
    d = ds.NumpySlicesDataset(np.arange(6.0).reshape(3, 2), ["x"], shuffle=False)
    assert rows(d) == [([0.0, 1.0],), ([2.0, 3.0],), ([4.0, 5.0],)]


# ------------------------------------------------------------------ operations
def test_map_columns_and_order():
    d = ds.NumpySlicesDataset({"a": [1], "b": [2], "c": [3]}, shuffle=False)
    m = d.map(lambda x: (x, x * 10), ["b"], ["p", "q"])
    assert m.get_col_names() == ["p", "q", "a", "c"] and rows(m) == [(2, 20, 1, 3)]
    m = d.map(lambda x, y: x + y, ["a", "c"], ["s"])
    assert m.get_col_names() == ["s", "b"] and rows(m) == [(4, 2)]
    m = d.map([lambda x: x + 1, lambda x: x * 10])  # default: first column, list of ops in order
    assert rows(m) == [(20, 2, 3)]


def test_batch_drop_remainder_and_per_batch_map():
    assert rows(nums(5).batch(2)) == [([1, 2],), ([3, 4],), ([5],)]
    assert rows(nums(5).batch(2, drop_remainder=True)) == [([1, 2],), ([3, 4],)]
    assert nums(5).batch(2).get_dataset_size() == 3 and nums(5).batch(2, True).get_dataset_size() == 2

    def pbm(x, info):
        return [v * 2 for v in x], [np.array(info.get_batch_num()) for _ in x]

    b = nums(3).batch(2, per_batch_map=pbm, input_columns=["a"], output_columns=["a", "n"])
    assert b.get_col_names() == ["a", "n"] and rows(b) == [([2, 4], [0, 0]), ([6], [1])]
    assert b.get_batch_size() == 2


def test_shuffle_repeat_take_skip():
    s = nums(10).shuffle(4)
    assert sorted(r[0] for r in rows(s)) == list(range(1, 11)) and s.get_dataset_size() == 10
    assert rows(nums().repeat(2)) == [(1,), (2,), (3,), (1,), (2,), (3,)]
    assert nums().repeat(2).get_dataset_size() == 6 and nums().batch(2).repeat(3).get_repeat_count() == 3
    assert rows(nums().take(2)) == [(1,), (2,)] and rows(nums().take(-1)) == [(1,), (2,), (3,)]
    assert rows(nums().skip(1)) == [(2,), (3,)] and nums().skip(5).get_dataset_size() == 0
    assert nums().take(5).get_dataset_size() == 3


def test_project_rename_zip_concat():
    d = ds.NumpySlicesDataset({"a": [1, 2], "b": [3, 4]}, shuffle=False)
    assert rows(d.project(["b", "a"])) == [(3, 1), (4, 2)]
    assert d.rename(["a"], ["c"]).get_col_names() == ["c", "b"]
    z = ds.zip((nums(3, "a"), nums(2, "b")))
    assert z.get_col_names() == ["a", "b"] and rows(z) == [(1, 1), (2, 2)] and z.get_dataset_size() == 2
    assert rows(nums(2, "a").zip(nums(2, "b"))) == [(1, 1), (2, 2)]
    c = nums(2) + nums(3)
    assert rows(c) == [(1,), (2,), (1,), (2,), (3,)] and c.get_dataset_size() == 5


def test_filter_then_batch_and_sizes():
    f = nums(10).filter(lambda x: x % 2 == 1, ["a"])
    assert rows(f) == [(1,), (3,), (5,), (7,), (9,)] and f.get_dataset_size() == 5
    fb = f.batch(2)
    assert rows(fb) == [([1, 3],), ([5, 7],), ([9],)] and fb.get_dataset_size() == 3
    assert rows(nums(5).filter(lambda x: x > 3).take(1)) == [(4,)]
    assert rows(nums(5).filter(lambda x: x > 1).skip(2)) == [(4,), (5,)]
    assert rows(nums(2).filter(lambda x: x > 1).concat(nums(1))) == [(2,), (1,)]


def test_split_absolute_fractions_and_random():
    parts = nums(10).split([0.8, 0.2], randomize=False)
    assert [rows(p) for p in parts] == [[(i,) for i in range(1, 9)], [(9,), (10,)]]
    parts = nums(10).split([3, 7], randomize=False)
    assert [p.get_dataset_size() for p in parts] == [3, 7]
    a, b = nums(10).split([3, 7])
    got = sorted(r[0] for r in rows(a) + rows(b))
    assert got == list(range(1, 11)) and [r[0] for r in rows(a)] != [1, 2, 3]


def test_iterators_epochs_dict_and_eof():
    d = nums(3)
    it = d.create_tuple_iterator(num_epochs=2)
    assert [int(r[0].asnumpy()) for r in it] == [1, 2, 3]
    assert [int(r[0].asnumpy()) for r in it] == [1, 2, 3]
    with pytest.raises(RuntimeError, match="beyond the specified number of epochs"):
        next(it)
    dct = next(iter(d.create_dict_iterator(output_numpy=True)))
    assert list(dct) == ["a"] and dct["a"] == 1
    cols = next(d.map(lambda x: (x, x), ["a"], ["a", "b"]).create_tuple_iterator(columns=["b"], output_numpy=True))
    assert len(cols) == 1


def test_shuffle_differs_per_epoch_and_repeats_per_iterator():
    d = ds.GeneratorDataset(Src(12), ["a", "b"], shuffle=True)
    it = d.create_tuple_iterator(num_epochs=2, output_numpy=True)
    e1, e2 = [r[0][0] for r in it], [r[0][0] for r in it]
    assert sorted(e1) == sorted(e2) == list(range(12)) and e1 != e2
    assert [r[0][0] for r in d.create_tuple_iterator(output_numpy=True)] == e1  # a fresh iterator starts over


# ------------------------------------------------------------------ samplers and shards
@pytest.mark.parametrize("shuffle", [False, True])
@pytest.mark.parametrize("k", [3, 4])
def test_shards_disjoint_and_covering(k, shuffle):
    """Every element exactly once over all shards (a count that the shards divide, as MindSpore pads otherwise)."""
    seen = []
    for shard in range(k):
        d = ds.GeneratorDataset(Src(12), ["a", "b"], shuffle=shuffle, num_shards=k, shard_id=shard)
        got = [r[0][0] for r in rows(d)]
        assert d.get_dataset_size() == len(got) == 12 // k
        assert shuffle or got == list(range(shard, 12, k))  # unshuffled: shard s reads s, s + k, ...
        seen += got
    assert sorted(seen) == list(range(12))


with open(os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixtures", "shards_ms210.json")) as f:
    SHARDS = json.load(f)


@pytest.mark.parametrize("case", SHARDS, ids=[f"n{c['n']}k{c['k']}{'s' if c['shuffle'] else ''}"
                                              f"{'' if c['offset'] is None else 'o'}{c['num_samples'] or ''}"
                                              for c in SHARDS])
def test_shards_match_mindspore(case):
    """MindSpore 2.10's shard sizes and rows (fixtures/make_shard_golden.py): shards are padded by
    wrapping to ceil(n / k) rows, so when k does not divide n some rows are read twice per epoch."""
    n, k = case["n"], case["k"]
    got = []
    for s in range(k):
        if case["offset"] is None:
            d = ds.GeneratorDataset(Src(n), ["a", "b"], shuffle=case["shuffle"], num_shards=k, shard_id=s,
                                    num_samples=case["num_samples"])
        else:
            d = ds.GeneratorDataset(Src(n), ["a", "b"],
                                    sampler=ds.DistributedSampler(k, s, shuffle=False, offset=case["offset"]))
        got.append({"size": d.get_dataset_size(), "rows": [r[0][0] for r in rows(d)]})
    if not case["shuffle"]:
        assert got == case["shards"]
    else:  # MindSpore's permutation is its own; the sizes and how often each row is read are the same
        assert [g["size"] for g in got] == [c["size"] for c in case["shards"]]
        def counts(shards):
            return sorted(collections.Counter(v for c in shards for v in c["rows"]).values())
        assert counts(got) == counts(case["shards"]) and {v for g in got for v in g["rows"]} == set(range(n))


def test_samplers():
    def order(sampler, n=8):
        return [r[0][0] for r in rows(ds.GeneratorDataset(Src(n), ["a", "b"], sampler=sampler))]

    assert order(ds.SequentialSampler(start_index=2, num_samples=3)) == [2, 3, 4]
    r = order(ds.RandomSampler())
    assert sorted(r) == list(range(8)) and r != list(range(8))
    assert len(order(ds.RandomSampler(replacement=True, num_samples=20))) == 20
    assert sorted(order(ds.SubsetRandomSampler([1, 5, 6]))) == [1, 5, 6]
    assert order(ds.SubsetSampler([4, 0])) == [4, 0]
    assert order([3, 1]) == [3, 1]
    assert order(ds.DistributedSampler(2, 1, shuffle=False)) == [1, 3, 5, 7]


# ------------------------------------------------------------------ errors
def test_errors_name_the_problem():
    with pytest.raises(RuntimeError, match="size of column_names is:1 and number of returned NumPy array is:2"):
        rows(ds.GeneratorDataset(Src(), ["a"], shuffle=False))
    with pytest.raises(RuntimeError, match="column 'zz' does not exist"):
        nums().map(lambda x: x, input_columns=["zz"])
    with pytest.raises(RuntimeError, match="column 'zz' does not exist"):
        nums().project(["zz"])
    with pytest.raises(ValueError, match="batch_size is not within the required interval"):
        nums().batch(0)
    with pytest.raises(TypeError, match="'batch_size' should be an int"):
        nums().batch(2.0)
    with pytest.raises(ValueError, match="buffer_size"):
        nums().shuffle(1)

    def bad(x):
        if x == 3:
            raise ValueError("boom")
        return x

    with pytest.raises(RuntimeError, match=r"column\(s\) \['a'\] at row 2 of epoch 0: ValueError: boom"):
        rows(nums(4).map(bad, ["a"]))
    with pytest.raises(RuntimeError, match=r"different shapes in column 'x'"):
        rows(ds.GeneratorDataset([(np.zeros(i + 1),) for i in range(4)], ["x"], shuffle=False).batch(2))
    with pytest.raises(RuntimeError, match="duplicate column"):
        nums().zip(nums())
    with pytest.raises(RuntimeError, match="column order"):
        nums(2, "a").concat(nums(2, "b"))
    with pytest.raises(ValueError, match="num_shards is not supported"):
        ds.GeneratorDataset(lambda: iter([1]), ["x"], num_shards=2, shard_id=0)
    with pytest.raises(ValueError, match="'shard_id' should be an int in"):
        ds.GeneratorDataset(Src(), ["a", "b"], num_shards=2, shard_id=2)
    with pytest.raises(ValueError, match="passed in together"):
        ds.GeneratorDataset(Src(), ["a", "b"], num_shards=2)
    with pytest.raises(RuntimeError, match="number of columns returned in 'map'"):
        rows(nums().map(lambda x: (x, x), ["a"]))


def test_map_keeps_column_places_when_counts_match():
    d = ds.NumpySlicesDataset({"a": [1], "b": [2], "c": [3]}, shuffle=False)
    assert rows(d.map(lambda x: x * 10, ["b"])) == [(1, 20, 3)]
    assert d.map(lambda x, y: (x, y), ["c", "a"]).get_col_names() == ["a", "b", "c"]
    assert d.map(lambda x: x, ["b"], ["a"]).get_col_names() == ["a", "c"]
    assert d.map(lambda x: (x, x), ["b"], ["b", "z"]).get_col_names() == ["b", "z", "a", "c"]


def test_1x_column_order_and_unknown_kwargs():
    d = ds.NumpySlicesDataset({"a": [1], "b": [2]}, shuffle=False)
    m = d.map(lambda x: (x, x + 1), ["a"], ["p", "q"], column_order=["q", "b"])
    assert m.get_col_names() == ["q", "b"] and rows(m) == [(2, 2)]
    assert d.batch(1, column_order=["b", "a"]).get_col_names() == ["b", "a"]
    with pytest.raises(TypeError, match="unexpected keyword"):
        d.map(lambda x: x, ["a"], bogus=1)
    v = ds.NumpySlicesDataset({"a": [[1]], "b": [2]}, shuffle=False)
    assert rows(v.batch(1, pad_info={"a": ([2], 0)})) == [([[1, 0]], [2])]  # 1.x pad_info: padded_batch
