"""Layout math (spec §3): worked examples, tiling of windows, optimizer shards, Mesh conversion."""

import math

import jax
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from jax.sharding import NamedSharding, PartitionSpec

from sporax.parallel import layout as L
from sporax.parallel.layout import Layout, to_mesh_and_spec

DEV = [2, 4]
FULL = (32, 32)


def rows_cols(tensor_map, rank):
    (o0, o1), (s0, s1) = L.rank_window(DEV, tensor_map, FULL, rank)
    return (o0, o0 + s0 - 1), (o1, o1 + s1 - 1)


def test_rank_to_coord_is_row_major():
    assert L.rank_to_coord([2, 4], 5) == (1, 1)
    assert [L.rank_to_coord([2, 3, 2], r) for r in (0, 1, 2, 11)] == [(0, 0, 0), (0, 0, 1), (0, 1, 0), (1, 2, 1)]


def test_example_a():
    assert L.strategy(DEV, [1, -1]) == (2, 1)
    assert L.slice_shape(FULL, DEV, [1, -1]) == (16, 32)
    for r in range(8):
        assert L.slice_index(DEV, [1, -1], r) == r // 4
        assert rows_cols([1, -1], r) == (((0, 15) if r < 4 else (16, 31)), (0, 31))


def test_example_b():
    assert L.strategy(DEV, [0, -1]) == (4, 1)
    assert L.slice_shape(FULL, DEV, [0, -1]) == (8, 32)
    for r in range(8):
        assert L.slice_index(DEV, [0, -1], r) == r % 4
        assert rows_cols([0, -1], r) == ((8 * (r % 4), 8 * (r % 4) + 7), (0, 31))
    assert [L.replica_group(DEV, [0, -1], r) for r in range(4)] == [[0, 4], [1, 5], [2, 6], [3, 7]]


def test_example_c():
    assert L.strategy(DEV, [0, 1]) == (4, 2)
    assert L.slice_shape(FULL, DEV, [0, 1]) == (8, 16)
    assert [L.slice_index(DEV, [0, 1], r) for r in range(8)] == [0, 2, 4, 6, 1, 3, 5, 7]
    rows = [(0, 7), (8, 15), (16, 23), (24, 31)] * 2
    cols = [(0, 15)] * 4 + [(16, 31)] * 4
    assert [rows_cols([0, 1], r) for r in range(8)] == list(zip(rows, cols))


def test_example_c_swapped_map():
    assert L.slice_shape(FULL, DEV, [1, 0]) == (16, 8)
    assert [L.slice_index(DEV, [1, 0], r) for r in range(8)] == list(range(8))
    assert rows_cols([1, 0], 5) == ((16, 31), (8, 15))


def test_example_d_optimizer_shard():
    lay = Layout([2, 4], [1, -1], [16, 32], opt_shard_group="g")
    assert lay.replica_group(5) == [4, 5, 6, 7]
    assert lay.window(FULL, 5, opt_shard=True) == ((20, 0), (4, 32))
    assert lay.window(FULL, 0, opt_shard=True) == ((0, 0), (4, 32))
    assert lay.window(FULL, 7, opt_shard=True) == ((28, 0), (4, 32))
    assert lay.window(FULL, 5) == ((16, 0), (16, 32))
    assert L.opt_shard_window(((16, 0), (16, 32)), 4, 1) == ((20, 0), (4, 32))


def test_opt_shard_errors():
    with pytest.raises(ValueError, match="not divisible by 3"):
        L.opt_shard_window(((0, 0), (16, 32)), 3, 0)
    with pytest.raises(ValueError, match="member"):
        L.opt_shard_window(((0, 0), (16, 32)), 4, 4)
    with pytest.raises(ValueError, match="group_size"):
        L.opt_shard_window(((0, 0), (16, 32)), 0, 0)
    with pytest.raises(ValueError, match="0-d"):
        L.opt_shard_window(((), ()), 1, 0)


def test_tuple_entry_splits_over_several_axes():
    # dim 0 over axes 0 and 1 of dev_mat [2, 4] (k = 1 then 0): 8 ways, axis 0 major.
    assert L.strategy(DEV, [(1, 0), -1]) == (8, 1)
    assert [L.slice_index(DEV, [(1, 0), -1], r) for r in range(8)] == list(range(8))
    assert [L.slice_index(DEV, [(0, 1), -1], r) for r in range(8)] == [0, 2, 4, 6, 1, 3, 5, 7]


def test_validation_errors():
    with pytest.raises(ValueError, match=r"tensor_map.*dimension 0"):
        L.slice_shape(FULL, DEV, [2, -1])
    with pytest.raises(ValueError, match="tensor_map"):
        L.slice_shape(FULL, DEV, [-2, -1])
    with pytest.raises(ValueError, match="one entry per tensor dimension"):
        L.slice_shape(FULL, DEV, [1])
    with pytest.raises(ValueError, match="rank"):
        L.rank_window(DEV, [1, -1], FULL, 8)
    with pytest.raises(ValueError, match="rank"):
        L.rank_to_coord(DEV, -1)
    with pytest.raises(ValueError, match=r"Dimension 0 .*size 30.* split 4 ways"):
        L.slice_shape((30, 32), DEV, [0, -1])
    with pytest.raises(ValueError, match="twice"):
        L.strategy(DEV, [0, 0])
    with pytest.raises(ValueError, match="dev_mat"):
        L.strategy([2, 0], [0, -1])


def test_slice_index_window():
    assert L.slice_index_window((4, 2), (2, 2), 1) == ((2, 0), (2, 2))
    assert L.slice_index_window(FULL, (8, 16), 5) == ((16, 16), (8, 16))
    with pytest.raises(ValueError, match="slice_index"):
        L.slice_index_window((4, 2), (2, 2), 2)
    with pytest.raises(ValueError, match="multiple of the slice size"):
        L.slice_index_window((4, 2), (3, 2), 0)
    with pytest.raises(ValueError, match="as many dimensions"):
        L.slice_index_window((4, 2), (2,), 0)


@st.composite
def layouts(draw):
    dev_mat = draw(st.lists(st.integers(1, 3), min_size=1, max_size=3))
    d = len(dev_mat)
    ndim = draw(st.integers(1, 3))
    axes = draw(st.permutations(range(d)))
    tensor_map, pos = [], 0
    for _ in range(ndim):
        take = draw(st.integers(0, min(2, d - pos)))
        ks = axes[pos : pos + take]
        pos += take
        tensor_map.append(-1 if not ks else ks[0] if len(ks) == 1 else tuple(ks))
    slice_shape = draw(st.lists(st.integers(1, 3), min_size=ndim, max_size=ndim))
    return dev_mat, tensor_map, slice_shape


@settings(max_examples=60, deadline=None)
@given(layouts())
def test_windows_tile_the_tensor_once_per_replica(lay):
    dev_mat, tensor_map, sshape = lay
    strat = L.strategy(dev_mat, tensor_map)
    full = tuple(n * s for n, s in zip(sshape, strat))
    size = math.prod(dev_mat)
    count = np.zeros(full, int)
    by_index = {}
    for r in range(size):
        offsets, sizes = L.rank_window(dev_mat, tensor_map, full, r)
        assert sizes == tuple(sshape)
        idx = L.slice_index(dev_mat, tensor_map, r)
        assert L.slice_index_window(full, sizes, idx) == (offsets, sizes)
        group = L.replica_group(dev_mat, tensor_map, r)
        assert r in group and group == sorted(group)
        assert all(L.slice_index(dev_mat, tensor_map, g) == idx for g in group)
        by_index.setdefault(idx, offsets)
        assert by_index[idx] == offsets  # replicas hold the same window
        count[tuple(slice(o, o + s) for o, s in zip(offsets, sizes))] += 1
    replicas = size // math.prod(strat)
    assert (count == replicas).all()
    assert sorted(by_index) == list(range(math.prod(strat)))


@settings(max_examples=40, deadline=None)
@given(layouts())
def test_optimizer_shards_tile_each_slice(lay):
    dev_mat, tensor_map, sshape = lay
    strat = L.strategy(dev_mat, tensor_map)
    group_size = math.prod(dev_mat) // math.prod(strat)
    sshape = [sshape[0] * group_size, *sshape[1:]]
    lay = Layout(dev_mat, tensor_map, sshape, 0, True, "group")
    full = lay.full_shape
    count = np.zeros(full, int)
    for r in range(math.prod(dev_mat)):
        offsets, sizes = lay.window(full, r, opt_shard=True)
        assert sizes[0] == sshape[0] // group_size
        count[tuple(slice(o, o + s) for o, s in zip(offsets, sizes))] += 1
    assert (count == 1).all()


def test_layout_record_round_trip_and_validation():
    lay = Layout.from_mindspore(([2, 4], [1, -1], [16, 32]))
    assert lay.dev_mat == (2, 4) and lay.tensor_map == (1, -1) and lay.slice_shape == (16, 32)
    assert (lay.field_size, lay.uniform_split, lay.opt_shard_group) == (0, True, "")
    assert lay.to_mindspore() == ([2, 4], [1, -1], [16, 32], 0, True, "")
    six = ([2, 4], [[1, 0], -1], [4, 32], 0, True, "g0")
    assert Layout.from_mindspore(six).to_mindspore() == six
    assert Layout.from_mindspore(six).tensor_map == ((1, 0), -1)
    assert lay.full_shape == (32, 32) and lay.strategy == (2, 1)
    assert hash(lay) == hash(Layout((2, 4), (1, -1), (16, 32)))
    with pytest.raises(TypeError, match="tuple"):
        Layout.from_mindspore("bad")
    with pytest.raises(ValueError, match="3 to 6"):
        Layout.from_mindspore(([2, 4], [1, -1]))
    with pytest.raises(ValueError, match="same length"):
        Layout([2, 4], [1, -1], [16])
    with pytest.raises(ValueError, match="tensor_map"):
        Layout([2, 4], [5, -1], [16, 32])
    with pytest.raises(ValueError, match="does not match"):
        lay.window((64, 32), 0)
    with pytest.raises(AttributeError):
        lay.dev_mat = (8,)


@pytest.mark.parametrize("tensor_map", [[1, -1], [0, -1], [0, 1], [1, 0], [-1, -1], [(1, 0), -1], [-1, (0, 1)]])
def test_mesh_and_spec_place_rank_windows_on_devices(tensor_map):
    devices = jax.devices()
    if len(devices) < 8:
        pytest.skip("needs 8 devices")
    sshape = L.slice_shape(FULL, DEV, tensor_map)
    mesh, spec = to_mesh_and_spec(Layout(DEV, tensor_map, sshape))
    assert mesh.axis_names == ("d0", "d1") and mesh.devices.shape == (2, 4)
    assert isinstance(spec, PartitionSpec)
    placed = NamedSharding(mesh, spec).devices_indices_map(FULL)
    for r in range(8):
        offsets, sizes = L.rank_window(DEV, tensor_map, FULL, r)
        got = placed[devices[r]]
        assert tuple((s.start or 0, (s.stop or n) - (s.start or 0)) for s, n in zip(got, FULL)) == tuple(
            zip(offsets, sizes)
        )


def test_mesh_spec_entries_and_device_errors():
    mesh, spec = to_mesh_and_spec(([2, 4], [0, 1], [8, 16]))
    assert spec == PartitionSpec("d1", "d0")
    _, spec = to_mesh_and_spec(([2, 4], [(1, 0), -1], [4, 32]))
    assert spec == PartitionSpec(("d0", "d1"), None)
    with pytest.raises(ValueError, match="needs 8 devices"):
        to_mesh_and_spec(([2, 4], [1, -1], [16, 32]), devices=jax.devices()[:1])
