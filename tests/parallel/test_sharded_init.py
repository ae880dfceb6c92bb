"""Exact sharded initialization through the public API (issue 3): every slice is the window
of the full tensor, however and whenever it is materialized, on 1, 2, 4 or 8 devices."""

import jax
import numpy as np
import pytest

import sporax as sp
from sporax import Parameter, Tensor
from sporax.common.initializer import initializer

INITS = ["normal", "uniform", "truncatednormal", "xavier_uniform", "he_normal", "orthogonal", "identity", "ones"]


def _full(init: str, shape, dtype=sp.float32) -> np.ndarray:
    sp.set_seed(7)
    return Parameter(initializer(init, shape, dtype), name="w").init_data().asnumpy()


@pytest.mark.parametrize("init", INITS)
def test_init_data_with_layout_is_the_window_of_the_full_tensor(init):
    full = _full(init, [32, 16])
    sp.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8)
    for rank in range(8):
        sp.set_auto_parallel_context(global_rank=rank)
        sp.set_seed(7)
        w = Parameter(initializer(init, [32, 16], sp.float32), name="w")
        got = w.init_data(layout=([2, 4], [0, 1], [8, 8]), set_sliced=True).asnumpy()
        r0, c0 = 8 * (rank % 4), 8 * (rank // 4)
        np.testing.assert_array_equal(got, full[r0:r0 + 8, c0:c0 + 8])
        assert w.sliced and w.shape == (8, 8)


def test_rank_keyword_and_optimizer_shard_six_element_layout():
    full = _full("normal", [32, 32])
    sp.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, enable_parallel_optimizer=True)
    for rank, rows in [(5, slice(20, 24)), (0, slice(0, 4)), (7, slice(28, 32))]:
        sp.set_seed(7)
        w = Parameter(initializer("normal", [32, 32], sp.float32), name="w")
        got = w.init_data(layout=([2, 4], [1, -1], [16, 32], 0, True, "group0"), rank=rank).asnumpy()
        np.testing.assert_array_equal(got, full[rows])  # spec §3.4 example D


def test_slice_shape_mismatch_is_value_error():
    sp.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8)
    w = Parameter(initializer("normal", [32, 32], sp.float32), name="w")
    with pytest.raises(ValueError, match=r"slice shape \(8, 32\) does not match"):
        w.init_data(layout=([2, 4], [1, -1], [8, 32]))
    assert w.has_init  # nothing was materialized


def test_tensor_init_data_opt_shard_group_matches_parameter():
    from sporax import communication

    full = _full("uniform", [32, 32])
    sp.set_auto_parallel_context(device_num=8, global_rank=5)
    communication.create_group("opt", [4, 5, 6, 7])
    sp.set_seed(7)
    t = initializer("uniform", [32, 32], sp.float32)
    t.init_data(slice_index=1, shape=(16, 32), opt_shard_group="opt")
    np.testing.assert_array_equal(t.asnumpy(), full[20:24])


def test_materialization_order_does_not_matter():
    sp.set_seed(3)
    a = Parameter(initializer("normal", [6, 5], sp.float32), name="a")
    b = Parameter(initializer("normal", [6, 5], sp.float32), name="b")
    a_first, b_second = a.asnumpy(), b.asnumpy()
    sp.set_seed(3)
    a2 = Parameter(initializer("normal", [6, 5], sp.float32), name="a")
    b2 = Parameter(initializer("normal", [6, 5], sp.float32), name="b")
    b_first, a_second = b2.asnumpy(), a2.asnumpy()
    np.testing.assert_array_equal(a_first, a_second)
    np.testing.assert_array_equal(b_second, b_first)
    assert not np.array_equal(a_first, b_second)


@pytest.mark.parametrize("ndev", [1, 2, 4, 8])
@pytest.mark.parametrize("init", ["normal", "xavier_uniform", "orthogonal"])
def test_global_sharded_array_equals_unsharded(ndev, init):
    full = _full(init, [64, 32])
    devices = jax.devices()[:ndev]
    layout = ([ndev], [0, -1], [64 // ndev, 32])
    sp.set_seed(7)
    w = Parameter(initializer(init, [64, 32], sp.float32), name="w")
    arr = w.to_global(layout, devices=devices)
    assert isinstance(arr.sharding, jax.sharding.NamedSharding)
    assert len(arr.addressable_shards) == ndev and not w.has_init
    for shard in arr.addressable_shards:
        assert shard.data.shape == (64 // ndev, 32)
        np.testing.assert_array_equal(np.asarray(shard.data), full[shard.index])
    np.testing.assert_array_equal(w.asnumpy(), full)


def test_global_array_two_dimensional_mesh_and_replicas():
    full = _full("normal", [32, 32])
    sp.set_seed(7)
    w = Parameter(initializer("normal", [32, 32], sp.float32), name="w")
    arr = w.to_global(([2, 4], [0, -1], [8, 32]))  # dim 0 split 4 ways, replicated over the other axis
    assert len(arr.addressable_shards) == 8
    for shard in arr.addressable_shards:
        np.testing.assert_array_equal(np.asarray(shard.data), full[shard.index])
    concrete = Parameter(Tensor(full), name="c")
    carr = concrete.to_global(([8], [-1, 0], [32, 4]))
    np.testing.assert_array_equal(np.asarray(carr), full)


def test_global_array_from_a_jax_sharding():
    from jax.sharding import Mesh, NamedSharding, PartitionSpec

    full = _full("uniform", [16, 8])
    mesh = Mesh(np.array(jax.devices()[:4]), ("x",))
    sp.set_seed(7)
    w = Parameter(initializer("uniform", [16, 8], sp.float32), name="w")
    arr = w.to_global(NamedSharding(mesh, PartitionSpec("x", None)))
    np.testing.assert_array_equal(np.asarray(arr), full)
