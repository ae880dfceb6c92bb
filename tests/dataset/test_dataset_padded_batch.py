"""padded_batch (and 1.x batch(pad_info=...)) against real MindSpore 2.10's outputs.

The goldens come from tests/dataset/fixtures/make_pad_golden.py (run under MindSpore 2.10): the
same source and pad_info cases, the batches MindSpore returned or the exception type it raised.
"""

import json
import os

import numpy as np
import pytest

import sporax.dataset as ds

HERE = os.path.dirname(os.path.abspath(__file__))
with open(os.path.join(HERE, "fixtures", "padded_batch_ms210.json")) as f:
    GOLDEN = json.load(f)


class Src:
    """Row i: a = 1..i+1 (int32), b = (i % 3 + 1, 2) filled with i + 1 (float32), c = i (int64 scalar)."""

    def __getitem__(self, i):
        return (np.arange(i + 1, dtype=np.int32) + 1, np.full((i % 3 + 1, 2), i + 1, np.float32),
                np.array(i, np.int64))

    def __len__(self):
        return 5


def as_pad_info(case):
    p = case["pad_info"]
    return None if p is None else {k: None if v is None else tuple(v) for k, v in p.items()}


def batches(d):
    return [[[list(v.shape), v.dtype.name, v.tolist()] for v in row]
            for row in d.create_tuple_iterator(num_epochs=1, output_numpy=True)]


@pytest.mark.parametrize("case", GOLDEN, ids=[json.dumps(c["pad_info"]) + f" b{c['batch']}" for c in GOLDEN])
def test_padded_batch_matches_mindspore(case):
    d = ds.GeneratorDataset(Src(), ["a", "b", "c"], shuffle=False)
    d = d.padded_batch(case["batch"], case["drop"], pad_info=as_pad_info(case))
    if "error" in case:
        with pytest.raises(getattr(__builtins__, case["error"], None) or RuntimeError):
            batches(d)
    else:
        assert batches(d) == case["batches"]


def test_1x_batch_pad_info_is_padded_batch():
    case = GOLDEN[0]
    d = ds.GeneratorDataset(Src(), ["a", "b", "c"], shuffle=False)
    assert batches(d.batch(2, pad_info=as_pad_info(case))) == case["batches"]


def test_strings_pad_with_empty_string_and_per_batch_map_output_is_padded():
    d = ds.NumpySlicesDataset({"s": ["ab", "c", "def"]}, shuffle=False)
    d = d.map(lambda s: np.array(list(str(s))), "s").padded_batch(2, pad_info={"s": (None, None)})
    assert [r[0].tolist() for r in d.create_tuple_iterator(output_numpy=True)] == [[["a", "b"], ["c", ""]],
                                                                                   [["d", "e", "f"]]]

    def grow(x, info):  # per_batch_map returns rows of different lengths; pad_info pads them
        return ([np.arange(v.item() + 1) for v in x],)

    d = ds.NumpySlicesDataset({"x": [0, 2, 1]}, shuffle=False).batch(3, per_batch_map=grow, pad_info={"x": ([4], 9)})
    assert [r[0].tolist() for r in d.create_tuple_iterator(output_numpy=True)] == [[[0, 9, 9, 9], [0, 1, 2, 9],
                                                                                    [0, 1, 9, 9]]]


def test_pad_info_bad_input():
    d = ds.GeneratorDataset(Src(), ["a", "b", "c"], shuffle=False)
    with pytest.raises(TypeError, match="pad_info .* is not of type"):
        d.padded_batch(2, pad_info=[("a", 1)])
    with pytest.raises(TypeError, match="shape in pad_info .* is not of type"):
        d.padded_batch(2, pad_info={"a": ((4,), 0)})
    with pytest.raises(ValueError, match=r"dim of shape in pad_info is not within the required interval"):
        d.padded_batch(2, pad_info={"a": ([0], 0)})
    with pytest.raises(RuntimeError, match="column name: zz does not exist"):
        d.padded_batch(2, pad_info={"zz": ([4], 0)})
    with pytest.raises(RuntimeError, match="rank of pad_shape must be equal to rank of specified column 'b'"):
        batches(d.padded_batch(2, pad_info={"a": (None, 0), "b": ([4], 0)}))
    with pytest.raises(RuntimeError, match="cannot pad column 'a' of dtype int32 with the value 'x'"):
        batches(d.padded_batch(2, pad_info={"a": ([4], "x")}))
