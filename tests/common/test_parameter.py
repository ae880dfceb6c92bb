"""Parameter and ParameterTuple (spec §2, §5)."""

import copy
import pickle

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import sporax as sp
from sporax import Parameter, ParameterTuple, Tensor
from sporax.common.initializer import initializer


def test_constructor_dtypes_and_shapes():
    assert Parameter(3).dtype is sp.int32 and Parameter(3).shape == ()
    assert Parameter(2.0).dtype is sp.float32
    assert Parameter([1, 2]).dtype is sp.int64
    assert Parameter([1.0, 2]).dtype is sp.float32
    assert Parameter(np.ones(2)).dtype is sp.float64
    assert Parameter(Tensor(np.ones((2, 3)), sp.float16)).shape == (2, 3)
    assert isinstance(Parameter(1), Tensor) and type(Parameter(1)) is Parameter


def test_constructor_errors():
    with pytest.raises(ValueError, match="can not be `bool`"):
        Parameter(True)
    for bad in [(1, 2), np.float32(1), "x", None]:
        with pytest.raises(TypeError, match="default_input"):
            Parameter(bad)
    with pytest.raises(ValueError, match="'name'"):
        Parameter(1, name=5)
    with pytest.raises(ValueError, match="length of 'name'"):
        Parameter(1, name="a" * 1025)
    for flag in ["requires_grad", "layerwise_parallel", "parallel_optimizer"]:
        with pytest.raises(TypeError, match=flag):
            Parameter(1, **{flag: 1})


def test_default_name_and_stripping():
    assert Parameter(1).name == "Parameter"
    assert Parameter(1, name="   ").name == "Parameter"
    assert Parameter(1, name="  w ").name == "w"


def test_data_is_copied_from_sources():
    src = np.ones(3, np.float32)
    p = Parameter(src)
    src[0] = 9
    assert p.asnumpy()[0] == 1
    t = Tensor([1.0, 2.0])
    p2 = Parameter(t)
    t[0] = 5.0
    assert p2.asnumpy()[0] == 1.0


def test_default_attributes_and_setters():
    x = Parameter(Tensor(np.arange(6).reshape((2, 3))))
    assert (x.comm_fusion, x.parallel_optimizer, x.parallel_optimizer_comm_recompute) == (1, True, False)
    assert (x.cache_enable, x.cache_shape, x.unique, x.sliced, x.is_init, x.inited_param, x.key) == (
        False, [], False, False, False, None, -1)
    assert x.data is x
    with pytest.raises(ValueError, match="comm_fusion"):
        x.comm_fusion = -1
    with pytest.raises(TypeError, match="comm_fusion"):
        x.comm_fusion = True
    with pytest.raises(TypeError, match="comm_fusion"):
        x.comm_fusion = 1.5
    x.cache_shape = (3, 4)
    assert x.cache_shape == [3, 4]
    with pytest.raises(TypeError, match="cache_shape"):
        x.cache_shape = 3
    with pytest.raises(TypeError, match="cache_enable"):
        x.cache_enable = 1
    with pytest.raises(TypeError, match="parallel_optimizer_comm_recompute"):
        x.parallel_optimizer_comm_recompute = "yes"
    with pytest.raises(TypeError, match="key"):
        x.key = "a"
    with pytest.raises(AttributeError):
        x.data = 3
    with pytest.raises(ValueError, match="name"):
        x.name = 3


def test_lazy_parameter_and_methods():
    x = Parameter(initializer("ones", [1, 2, 3], sp.float32))
    assert x.has_init and x.init_mode is not None and x.is_default_input_init
    assert str(x) == "Parameter (name=Parameter, shape=(1, 2, 3), dtype=Float32, requires_grad=True)"
    c = x.clone()
    c.name = "x_clone"
    assert x.name == "Parameter" and c.has_init
    assert x.init_data() is x and not x.has_init and x.init_mode is None
    assert x.init_data() is x
    assert x.set_data(data=Tensor(np.arange(6).reshape((1, 2, 3)))) is x
    assert x.dtype is sp.float32
    np.testing.assert_array_equal(x.asnumpy(), np.arange(6, dtype=np.float32).reshape(1, 2, 3))
    np.testing.assert_array_equal(c.asnumpy(), np.ones((1, 2, 3), np.float32))


def test_set_data_rules():
    x = Parameter(np.zeros((1, 2, 3), np.float32), name="x")
    with pytest.raises(ValueError, match="Can not change the shape of Parameter"):
        x.set_data(Tensor(np.zeros((2, 3)), sp.float32))
    assert x.set_data(Tensor(np.zeros((2, 3)), sp.float32), slice_shape=True).shape == (2, 3)
    assert x.sliced
    q = Parameter(Tensor([1, 2], sp.int32), name="q")
    with pytest.raises(TypeError, match="can not be converted to current dtype implicitly"):
        q.set_data(1.5)
    np.testing.assert_array_equal(q.set_data(Tensor([1.7, -2.7])).asnumpy(), [1, -2])
    assert q.dtype is sp.int32
    with pytest.raises(TypeError, match="data"):
        q.set_data([1, 2])
    s = Parameter(1.0)
    assert s.set_data(3).asnumpy() == 3.0 and s.dtype is sp.float32


def test_set_data_lazy_into_lazy_stays_lazy_and_into_concrete_materializes():
    lazy = Parameter(initializer("normal", [3, 3], sp.float32))
    src = initializer("ones", [3, 3], sp.float32)
    lazy.set_data(src)
    assert lazy.has_init
    assert lazy.asnumpy().sum() == 9.0
    concrete = Parameter(np.zeros((3, 3), np.float32))
    concrete.set_data(initializer("ones", [3, 3], sp.float32))
    assert not concrete.has_init and concrete.asnumpy().sum() == 9.0


def test_clone_copies_flags_and_resets_others():
    p = Parameter(Tensor([1.0, 2.0]), name="w", requires_grad=False, layerwise_parallel=True, parallel_optimizer=False)
    p.comm_fusion = 3
    p.cache_enable = True
    p.cache_shape = [4, 2]
    p.sliced = True
    p.unique = True
    p.is_init = True
    p.set_param_fl(push_to_server=True, requires_aggr=False)
    c = p.clone()
    assert c is not p and c.name == "w"
    assert (c.requires_grad, c.layerwise_parallel, c.parallel_optimizer, c.comm_fusion) == (False, True, False, 3)
    assert (c.cache_enable, c.cache_shape, c.requires_aggr) == (True, [4, 2], False)
    assert (c.sliced, c.unique, c.is_init, c.push_weight_to_server) == (False, False, False, False)
    c.set_data(Tensor([5.0, 6.0]))
    assert p.asnumpy().tolist() == [1.0, 2.0]
    assert p.clone(init="zeros").asnumpy().sum() == 0.0
    assert p.clone(init=3).asnumpy().max() == 3.0
    assert p.clone(init=Tensor([7, 8])).asnumpy().tolist() == [7.0, 8.0]
    assert p.copy().asnumpy().tolist() == [1.0, 2.0]
    with pytest.raises(ValueError, match="was not found"):
        p.clone(init="nope")
    with pytest.raises(TypeError, match="init"):
        p.clone(init=[1, 2])
    with pytest.raises(ValueError):
        p.clone(init=Tensor([1.0, 2.0, 3.0]))


def test_value_is_a_snapshot():
    p = Parameter(Tensor([1.0]))
    v = p.value()
    assert type(v) is Tensor
    p.set_data(Tensor([2.0]))
    assert v.asnumpy()[0] == 1.0


def test_deepcopy_copy_and_pickle():
    p = Parameter(Tensor([1.0, 2.0]), name="w", requires_grad=False, layerwise_parallel=True)
    p.comm_fusion = 5
    d = copy.deepcopy(p)
    assert d is not p and d.name == "w" and d.requires_grad is False
    assert d.layerwise_parallel is False and d.comm_fusion == 1
    c = copy.copy(p)
    assert c is not p and c.layerwise_parallel is True
    u = pickle.loads(pickle.dumps(p))
    assert (u.name, u.requires_grad, u.layerwise_parallel, u.asnumpy().tolist()) == ("w", False, True, [1.0, 2.0])
    lazy = Parameter(initializer("normal", [4], sp.float32), name="n")
    v = pickle.loads(pickle.dumps(lazy))
    assert v.has_init
    np.testing.assert_array_equal(v.asnumpy(), lazy.asnumpy())


def test_set_param_ps_requires_ps_mode(monkeypatch):
    p = Parameter(1.0)
    with pytest.raises(RuntimeError, match=r"set_ps_context\(enable_ps=True\).*MS_ROLE"):
        p.set_param_ps()
    sp.set_ps_context(enable_ps=True)
    monkeypatch.setenv("MS_ROLE", "MS_WORKER")
    p.set_param_ps(init_in_server=True)
    assert p.is_param_ps and p.init_in_server


def test_set_param_fl_only_moves_flags_off_defaults():
    p = Parameter(1.0)
    p.set_param_fl(True, True, False)
    p.set_param_fl()
    assert (p.push_weight_to_server, p.pull_weight_from_server, p.requires_aggr) == (True, True, False)


def test_init_data_layout_errors_and_parallel_mode_change():
    sp.set_auto_parallel_context(parallel_mode="semi_auto_parallel", device_num=8, global_rank=5)
    w = Parameter(initializer("ones", [32, 32], sp.float32), name="w")
    assert w.has_init and w.inited_param is None
    with pytest.raises(TypeError, match="layout"):
        w.init_data(layout=[[2, 4], [1, -1], [16, 32]])
    with pytest.raises(ValueError, match="layout"):
        w.init_data(layout=([2, 4], [1, -1]))
    r = w.init_data(layout=([2, 4], [1, -1], [16, 32]), set_sliced=True)
    assert (r is w, w.shape, w.sliced, w.has_init) == (True, (16, 32), True, False)
    sp.reset_auto_parallel_context()
    v = Parameter(initializer("normal", [4], sp.float32))
    sp.set_auto_parallel_context(parallel_mode="auto_parallel")
    with pytest.raises(RuntimeError, match="parallel mode"):
        v.init_data()


def test_parameter_tuple_rules():
    x = Parameter(Tensor(np.arange(6).reshape((2, 3))), name="x")
    y = Parameter(initializer("ones", [1, 2, 3], sp.float32), name="y")
    z = Parameter(2.0, name="z")
    params = ParameterTuple((x, y, z))
    assert isinstance(params, tuple) and ParameterTuple(iter([x, x]))
    copies = params.clone("params_copy")
    assert [p.name for p in copies] == ["params_copy.x", "params_copy.y", "params_copy.z"]
    assert [p.name for p in copies.clone("a")] == ["a.params_copy.x", "a.params_copy.y", "a.params_copy.z"]
    assert type(params[0:2]) is tuple
    with pytest.raises(ValueError, match="its name 'x' already exists"):
        ParameterTuple([x, Parameter(Tensor([1.0]), name="x")])
    with pytest.raises(TypeError, match="ParameterTuple input should be 'Parameter' collection"):
        ParameterTuple([x, Tensor([1.0])])
    with pytest.raises(TypeError):
        ParameterTuple(5)
    for bad in ["", "a-b", "a b"]:
        with pytest.raises(ValueError, match="prefix"):
            params.clone(bad)
    assert params.clone("1abc") and params.clone("x.y")
    with pytest.raises(TypeError, match="prefix"):
        params.clone(3)
    with pytest.raises(ValueError, match="already exists"):
        ParameterTuple([x, x]).clone("c")
    moments = params.clone("moments", init="zeros")
    assert all(m.asnumpy().sum() == 0 for m in moments)


@settings(max_examples=40, deadline=None)
@given(
    arr=hnp.arrays(np.float32, hnp.array_shapes(min_dims=1, max_dims=3, max_side=4), elements=st.floats(-5, 5, width=32)),
    bad=st.sampled_from(["shape", "type", "float_into_int", "list"]),
)
def test_failed_set_data_leaves_parameter_unchanged(arr, bad):
    target_dtype = sp.int32 if bad == "float_into_int" else sp.float32
    p = Parameter(Tensor(arr, target_dtype), name="keep")
    before = (p.asnumpy().copy(), p.shape, p.dtype, p.name, p.sliced)
    incoming = {
        "shape": Tensor(np.zeros(arr.shape + (1,), np.float32)),
        "type": "not a tensor",
        "float_into_int": 1.5,
        "list": arr.tolist(),
    }[bad]
    with pytest.raises((TypeError, ValueError)):
        p.set_data(incoming)
    np.testing.assert_array_equal(p.asnumpy(), before[0])
    assert (p.shape, p.dtype, p.name, p.sliced) == before[1:]


@settings(max_examples=30, deadline=None)
@given(arrs=st.lists(hnp.arrays(np.float32, hnp.array_shapes(max_dims=2, max_side=3)), min_size=1, max_size=4))
def test_parameter_tuple_clone_never_aliases(arrs):
    params = ParameterTuple(Parameter(Tensor(a), name=f"p{i}") for i, a in enumerate(arrs))
    clones = params.clone("c")
    for p, c, a in zip(params, clones, arrs):
        assert c is not p
        c.set_data(Tensor(np.full(a.shape, 42.0, np.float32)))
        np.testing.assert_array_equal(p.asnumpy(), a)


@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_parameter_roundtrip_through_asnumpy(data):
    dtype = data.draw(st.sampled_from([np.int8, np.int32, np.int64, np.uint8, np.float16, np.float32, np.float64]))
    arr = data.draw(hnp.arrays(dtype, hnp.array_shapes(min_dims=0, max_dims=3, max_side=4)))
    p = Parameter(arr)
    np.testing.assert_array_equal(p.asnumpy(), arr)
    assert p.asnumpy().dtype == arr.dtype and p.shape == arr.shape
