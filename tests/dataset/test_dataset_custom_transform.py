import numpy as np
import pytest

from sporax import dataset as ds
from sporax.dataset import transforms


class AddOne(transforms.PyTensorOperation):
    """A user's custom transform written as in MindSpore: it defines __call__ only."""

    def __call__(self, x):
        return x + 1


def test_user_subclass_with_call_runs_in_map_and_eagerly():
    data = ds.NumpySlicesDataset({"x": np.arange(4, dtype=np.int32)}, shuffle=False).map(AddOne(), input_columns="x")
    assert [int(r[0]) for r in data.create_tuple_iterator(output_numpy=True)] == [1, 2, 3, 4]
    assert int(AddOne()(np.int32(5))) == 6


def test_subclass_without_call_or_apply_is_a_type_error():
    class Empty(transforms.PyTensorOperation):
        pass

    with pytest.raises(TypeError, match="must define '__call__"):
        Empty()(np.zeros(2))
