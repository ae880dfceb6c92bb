"""Dataset.shuffle(buffer_size): MindSpore's shuffle buffer, deterministic under the pipeline seed."""

import numpy as np
import pytest

import sporax as ms
import sporax.dataset as ds


class Src:
    def __init__(self, n):
        self.n = n

    def __getitem__(self, i):
        return (np.array(i, np.int64),)

    def __len__(self):
        return self.n


def epochs(d, num=2):
    it = d.create_tuple_iterator(num_epochs=num, output_numpy=True)
    return [[np.asarray(r[0]).tolist() for r in it] for _ in range(num)]


@pytest.mark.parametrize("buffer_size", [2, 4, 16])
def test_buffer_moves_rows_ahead_by_less_than_the_buffer(buffer_size):
    ms.set_seed(3)
    n = 400
    for order in epochs(ds.GeneratorDataset(Src(n), ["x"], shuffle=False).shuffle(buffer_size)):
        assert sorted(order) == list(range(n))
        ahead = np.arange(n) - np.array(order)  # how far ahead of its place a row comes out
        assert ahead.min() >= -(buffer_size - 1) and ahead.max() > buffer_size  # held back past one buffer
        # not a window shuffle: some row leaves its window of buffer_size rows
        assert any(sorted(order[w:w + buffer_size]) != list(range(w, w + buffer_size)) for w in range(0, n, buffer_size))


def test_same_seed_same_orders_new_order_each_epoch():
    def run(seed):
        ms.set_seed(seed)
        return epochs(ds.GeneratorDataset(Src(50), ["x"], shuffle=False).shuffle(8).batch(5), 3)

    a, b = run(7), run(7)
    assert a == b and a[0] != a[1] != a[2] and run(8) != a
    assert all(sorted(sum(e, [])) == list(range(50)) for e in a)


def test_buffer_holding_every_row_is_a_full_permutation_and_stays_random_access():
    ms.set_seed(1)
    d = ds.GeneratorDataset(Src(30), ["x"], shuffle=False).shuffle(30)
    e1, e2 = epochs(d)
    assert sorted(e1) == sorted(e2) == list(range(30)) and e1 != e2
    assert d.get_dataset_size() == 30 and d.split([10, 20], randomize=False)[0].get_dataset_size() == 10


def test_shuffle_of_a_stream_and_sizes_without_reading():
    reads = []

    class Counting(Src):
        def __getitem__(self, i):
            reads.append(i)
            return super().__getitem__(i)

    d = ds.GeneratorDataset(Counting(40), ["x"], shuffle=False).shuffle(4).batch(6)
    assert d.get_dataset_size() == 7 and reads == []  # known without a pass over the rows

    def gen():
        yield from ((np.array(i),) for i in range(20))

    ms.set_seed(2)
    e = epochs(ds.GeneratorDataset(gen, ["x"]).shuffle(5))
    assert sorted(e[0]) == sorted(e[1]) == list(range(20)) and e[0] != e[1]


def test_shuffle_bad_buffer_size():
    d = ds.GeneratorDataset(Src(4), ["x"])
    with pytest.raises(ValueError, match=r"buffer_size is not within the required interval of \[2, "):
        d.shuffle(1)
    with pytest.raises(TypeError, match="'buffer_size' should be an int"):
        d.shuffle(2.0)


def test_epoch_orders_read_by_several_threads_match_one_thread():
    def run(workers):
        ms.set_seed(9)
        d = ds.GeneratorDataset(Src(64), ["x"], shuffle=True, num_parallel_workers=workers,
                                python_multiprocessing=False)
        return epochs(d.map(lambda x: x * 2, "x", num_parallel_workers=workers).batch(4), 3)

    one, four = run(1), run(4)
    assert one == four and all(sorted(sum(e, [])) == list(range(0, 128, 2)) for e in one) and one[0] != one[1]


def test_distributed_sampler_offset_checked():
    with pytest.raises(ValueError, match="'offset' should be -1 or an int >= 0"):
        ds.DistributedSampler(2, 0, offset=-2)
