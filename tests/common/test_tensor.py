"""Tensor construction, dtype inference, laziness, printing and operators (spec §1)."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sporax as sp
from sporax import Tensor
from sporax.common.initializer import initializer


def test_dtype_inference_rules():
    assert Tensor([1, 2, 3]).dtype is sp.int64
    assert Tensor(1).dtype is sp.int64
    assert Tensor(1.5).dtype is sp.float32
    assert Tensor(True).dtype is sp.bool_
    assert Tensor(np.array([1.0, 2.0])).dtype is sp.float64
    assert Tensor(np.array([1, 2], np.int32)).dtype is sp.int32
    assert Tensor([True, 2]).dtype is sp.int64
    assert Tensor([1, 2.5]).dtype is sp.float32
    assert Tensor(np.float32(2)).dtype is sp.float32
    assert Tensor(np.int8(3)).dtype is sp.int8
    assert Tensor((1, 2)).dtype is sp.int64


def test_explicit_dtype_converts_and_truncates_toward_zero():
    t = Tensor([1.7, -2.7], sp.int32)
    assert t.dtype is sp.int32
    np.testing.assert_array_equal(t.asnumpy(), [1, -2])
    assert Tensor(Tensor([1, 2]), sp.float16).dtype is sp.float16


def test_64_bit_types_are_real_64_bit():
    big = 2**40 + 3
    t = Tensor([big]) + 1
    assert t.dtype is sp.int64
    assert t.asnumpy()[0] == big + 1
    d = Tensor(np.array([1e-300]), sp.float64) * 2
    assert d.dtype is sp.float64 and d.asnumpy()[0] == 2e-300


@pytest.mark.parametrize(
    "bad",
    [None, "abc", {1: 2}, object(), [[1, 2], [3]], np.array([object()], dtype=object)],
)
def test_bad_input_data_raises_type_error(bad):
    with pytest.raises(TypeError, match="Tensor"):
        Tensor(bad)


def test_bad_dtype_and_shape_arguments():
    with pytest.raises(TypeError, match="dtype"):
        Tensor([1], dtype=np.float32)
    with pytest.raises(ValueError, match="shape"):
        Tensor([1], shape=(1,))
    with pytest.raises(ValueError, match="init, dtype and shape must have values at the same time"):
        Tensor(shape=(2,), init=sp.common.initializer.One())


def test_lazy_tensor_and_init_data_slice():
    t = initializer("ones", [4, 2], sp.float32)
    assert t.has_init and t.shape == (4, 2)
    assert str(t) == "Tensor(shape=[4, 2], dtype=Float32, value=<uninitialized>)"
    assert repr(t) == str(t) and t.has_init  # printing never materializes
    out = t.init_data(slice_index=1, shape=(2, 2))
    assert out is t and not t.has_init and t.shape == (2, 2)
    assert str(t) == "[[1. 1.]\n [1. 1.]]"
    with pytest.raises(TypeError, match="init_data must be set Tensor.init, init can't be None"):
        t.init_data()


def test_lazy_slice_is_window_of_full_tensor():
    import pickle

    full = initializer("normal", [8, 6], sp.float32)
    part = pickle.loads(pickle.dumps(full))
    assert part.has_init
    whole = full.init_data().asnumpy()
    np.testing.assert_array_equal(part.init_data(slice_index=3, shape=(2, 6)).asnumpy(), whole[6:8])


def test_asnumpy_materializes_lazy_tensor_in_place():
    t = initializer("zeros", [3], sp.int32)
    assert t.asnumpy().tolist() == [0, 0, 0]
    assert not t.has_init


def test_printing():
    assert str(Tensor([1, 2, 3])) == "[1 2 3]"
    assert str(Tensor(1.5)) == "1.5"
    assert str(Tensor(np.ones((2, 3)), sp.float32)) == "[[1. 1. 1.]\n [1. 1. 1.]]"
    assert repr(Tensor([1, 2])) == "Tensor(shape=[2], dtype=Int64, value= [1, 2])"
    assert repr(Tensor(1.0 / 3)) == "Tensor(shape=[], dtype=Float32, value= 0.333333)"
    assert repr(Tensor(7)) == "Tensor(shape=[], dtype=Int64, value= 7)"
    r = repr(Tensor(np.ones((2, 2)), sp.float32))
    assert r.startswith("Tensor(shape=[2, 2], dtype=Float32, value=\n[[")


def test_operators_and_methods():
    a = Tensor(np.arange(6, dtype=np.float32).reshape(2, 3))
    b = Tensor(np.ones((3, 2), np.float32))
    np.testing.assert_allclose((a @ b).asnumpy(), np.arange(6).reshape(2, 3) @ np.ones((3, 2)))
    np.testing.assert_allclose((a + 1).asnumpy(), np.arange(6).reshape(2, 3) + 1)
    np.testing.assert_allclose((2 * a - a / 2).asnumpy(), 1.5 * np.arange(6).reshape(2, 3))
    assert (a > 2).dtype is sp.bool_
    assert (a == a).asnumpy().all()
    assert a[1, 2].item() == 5.0 and a[0].shape == (3,)
    assert a.reshape(3, 2).shape == (3, 2) and a.reshape((6,)).shape == (6,)
    assert a.astype(sp.int32).dtype is sp.int32
    assert a.sum().item() == 15.0 and a.mean(axis=0).shape == (3,)
    assert a.max().item() == 5.0 and a.min().item() == 0.0
    assert a.T.shape == (3, 2) and a.ndim == 2 and a.size == 6
    assert np.asarray(a).shape == (2, 3)
    assert (-a).asnumpy()[1, 2] == -5.0 and abs(-a).asnumpy()[1, 2] == 5.0
    a[0, 0] = 10.0
    assert a.asnumpy()[0, 0] == 10.0


def test_tensor_converts_to_jax_and_numpy_explicitly():
    import jax.numpy as jnp

    a = Tensor(np.ones(3, np.float32))
    assert float(jnp.sum(jnp.asarray(a))) == 3.0
    assert float(np.asarray(a).sum()) == 3.0


def test_tensor_is_hashable_by_identity():
    a, b = Tensor([1]), Tensor([1])
    assert len({a, b}) == 2 and {a: 1}[a] == 1


def test_host_data_is_copied():
    src = np.ones(3, np.float32)
    t = Tensor(src)
    src[0] = 5
    assert t.asnumpy()[0] == 1
    out = t.asnumpy()
    out[1] = 7
    assert t.asnumpy()[1] == 1


DTYPES = [sp.bool_, sp.int8, sp.int16, sp.int32, sp.int64, sp.uint8, sp.uint16, sp.uint32, sp.uint64,
          sp.float16, sp.float32, sp.float64]


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_roundtrip_through_asnumpy(data):
    dtype = data.draw(st.sampled_from(DTYPES))
    arr = data.draw(hnp.arrays(dtype.np_dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
    t = Tensor(arr)
    assert t.dtype is dtype and t.shape == arr.shape
    np.testing.assert_array_equal(t.asnumpy(), arr)
    assert t.asnumpy().dtype == arr.dtype


def test_dtype_names_and_reprs():
    names = {sp.bool_: "Bool", sp.int8: "Int8", sp.int64: "Int64", sp.uint8: "UInt8", sp.float16: "Float16",
             sp.bfloat16: "BFloat16", sp.float32: "Float32", sp.float64: "Float64", sp.complex64: "Complex64"}
    for t, name in names.items():
        assert str(t) == name
    assert repr(sp.float32) == "sporax.float32"
    assert sp.dtype.float32 is sp.float32
    bf = Tensor(np.array([1.5], np.float32), sp.bfloat16)
    assert bf.dtype is sp.bfloat16 and float(bf.asnumpy()[0]) == 1.5
