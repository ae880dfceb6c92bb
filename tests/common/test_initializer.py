"""Initializers (spec §4): exact windows, formulas, patterns, errors, seeding."""

import math

import ml_dtypes
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import sporax as sp
from sporax.common import _rng
from sporax.common import dtype as mstype
from sporax.common.initializer import (
    Constant,
    Dirac,
    HeNormal,
    HeUniform,
    Identity,
    Initializer,
    Normal,
    One,
    Orthogonal,
    Sparse,
    TruncatedNormal,
    Uniform,
    VarianceScaling,
    XavierNormal,
    XavierUniform,
    Zero,
    initializer,
)
from sporax.common.tensor import Tensor

FLOATS = [mstype.float16, mstype.bfloat16, mstype.float32, mstype.float64]


def full(init, shape, dtype=mstype.float32, seed=11):
    return init.window(seed, shape, dtype, (0,) * len(shape), shape)


def cut(arr, offsets, sizes):
    return np.ascontiguousarray(arr[tuple(slice(o, o + s) for o, s in zip(offsets, sizes))])


# Initializer factories by the dimensions they accept.
ANY_NDIM = [
    Zero,
    One,
    lambda: Constant(2.5),
    lambda: Normal(0.5, 1.0),
    lambda: Uniform(0.3),
    lambda: TruncatedNormal(1.0, 0.0, -1.0, 0.5),
]
FAN_2D = [
    XavierUniform,
    XavierNormal,
    lambda: HeUniform(mode="fan_out", nonlinearity="relu"),
    HeNormal,
    lambda: VarianceScaling(2.0, "fan_avg", "uniform"),
    VarianceScaling,
    lambda: VarianceScaling(1.0, "fan_out", "untruncated_normal"),
    lambda: Orthogonal(0.5),
]
ONLY_2D = [Identity, lambda: Sparse(0.3, 1.0)]
CONV = [Dirac, lambda: Dirac(groups=2)]


@st.composite
def case(draw):
    family = draw(st.sampled_from(["any", "fan", "2d", "conv"]))
    if family == "any":
        make, shape = draw(st.sampled_from(ANY_NDIM)), draw(st.lists(st.integers(1, 9), max_size=4))
    elif family == "fan":
        make, shape = draw(st.sampled_from(FAN_2D)), draw(st.lists(st.integers(1, 8), min_size=2, max_size=4))
    elif family == "2d":
        make, shape = draw(st.sampled_from(ONLY_2D)), draw(st.lists(st.integers(1, 12), min_size=2, max_size=2))
    else:
        make = draw(st.sampled_from(CONV))
        shape = [2 * draw(st.integers(1, 4)), *draw(st.lists(st.integers(1, 5), min_size=2, max_size=4))]
    shape = tuple(shape)
    offsets = tuple(draw(st.integers(0, n - 1)) for n in shape)
    sizes = tuple(draw(st.integers(1, n - o)) for n, o in zip(shape, offsets))
    return make(), shape, offsets, sizes


@settings(max_examples=60, deadline=None)
@given(case(), st.sampled_from(FLOATS), st.integers(0, 2**64 - 1))
def test_window_is_bit_identical_to_the_full_cut(c, dtype, seed):
    init, shape, offsets, sizes = c
    whole = full(init, shape, dtype, seed)
    assert whole.shape == shape and whole.dtype == dtype.np_dtype
    part = init.window(seed, shape, dtype, offsets, sizes)
    assert part.shape == sizes and part.dtype == dtype.np_dtype
    assert part.tobytes() == cut(whole, offsets, sizes).tobytes()
    traced = np.asarray(init.window_jax(seed, shape, dtype, offsets, sizes))
    assert traced.dtype == dtype.np_dtype and traced.tobytes() == part.tobytes()


def test_every_slice_of_a_lazy_tensor_matches_the_full_tensor():
    sp.set_seed(3)
    t = initializer("normal", [8, 6])
    sp.set_seed(3)
    whole = initializer("normal", [8, 6]).init_data().asnumpy()
    assert np.array_equal(t.init_data(slice_index=3, shape=(2, 3)).asnumpy(), whole[2:4, 3:6])


@pytest.mark.parametrize("dtype", [mstype.float16, mstype.bfloat16, mstype.float64, mstype.int32, mstype.int8])
def test_values_are_drawn_in_float32_then_cast(dtype):
    init = Normal(sigma=20.0, mean=1.0)
    ref = full(init, (64, 33))
    got = full(init, (64, 33), dtype)
    assert np.array_equal(got, ref.astype(dtype.np_dtype))
    if dtype in mstype.int_type:
        assert np.array_equal(got, np.trunc(ref).astype(dtype.np_dtype))


def stats(init, shape=(512, 512), seed=5):
    v = full(init, shape, mstype.float32, seed).astype(np.float64)
    return v, v.mean(), v.std()


def test_normal_and_uniform_moments():
    v, m, s = stats(Normal(sigma=2.0, mean=3.0))
    assert abs(m - 3.0) < 0.02 and abs(s - 2.0) < 0.02
    v, m, s = stats(Uniform(scale=0.5))
    assert v.min() >= -0.5 and v.max() < 0.5 and abs(s - 0.5 / math.sqrt(3)) < 0.003
    assert v.min() < -0.499 and v.max() > 0.499
    v, m, s = stats(Normal())
    assert abs(s - 0.01) < 1e-4


def truncated_moments(mu, sigma, a, b):
    alpha, beta = (a - mu) / sigma, (b - mu) / sigma
    pdf = lambda x: math.exp(-x * x / 2) / math.sqrt(2 * math.pi)  # noqa: E731
    cdf = lambda x: 0.5 * (1 + math.erf(x / math.sqrt(2)))  # noqa: E731
    z = cdf(beta) - cdf(alpha)
    mean = mu + sigma * (pdf(alpha) - pdf(beta)) / z
    var = sigma**2 * (1 + (alpha * pdf(alpha) - beta * pdf(beta)) / z - ((pdf(alpha) - pdf(beta)) / z) ** 2)
    return mean, math.sqrt(var)


@pytest.mark.parametrize("sigma,mean,a,b", [(1.0, 0.0, -0.5, 1.5), (2.0, 1.0, 0.0, 10.0), (0.01, 0.0, -2.0, 2.0)])
def test_truncated_normal_bounds_and_moments(sigma, mean, a, b):
    v, m, s = stats(TruncatedNormal(sigma=sigma, mean=mean, a=a, b=b))
    em, es = truncated_moments(mean, sigma, a, b)
    assert v.min() >= a and v.max() <= b
    assert abs(m - em) < 0.01 * sigma and abs(s - es) < 0.01 * sigma


def test_xavier_and_he_bounds():
    shape = (300, 200, 3)  # fan_in = 600, fan_out = 900
    v, _, s = stats(XavierUniform(gain=2.0), shape)
    bound = 2.0 * math.sqrt(6.0 / 1500)
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.999 * bound
    v, _, s = stats(XavierNormal(), shape)
    assert abs(s - math.sqrt(2.0 / 1500)) < 0.01 * s
    v, _, s = stats(HeUniform(), shape)  # leaky_relu, slope 0: gain sqrt(2), fan_in 600
    bound = math.sqrt(3.0) * math.sqrt(2.0) / math.sqrt(600)
    assert np.abs(v).max() <= bound and np.abs(v).max() > 0.999 * bound
    v, _, s = stats(HeNormal(mode="FAN_OUT", nonlinearity="tanh"), shape)
    assert abs(s - (5 / 3) / math.sqrt(900)) < 0.01 * s


@pytest.mark.parametrize(
    "nonlinearity,slope,gain",
    [
        ("linear", 0, 1.0),
        ("conv2d", 0, 1.0),
        ("conv_transpose3d", 0, 1.0),
        ("sigmoid", 0, 1.0),
        ("tanh", 0, 5 / 3),
        ("relu", 0, math.sqrt(2)),
        ("leaky_relu", 0.2, math.sqrt(2 / 1.04)),
        ("leaky_relu", None, math.sqrt(2 / (1 + 0.01**2))),
        ("leaky_relu", 3, math.sqrt(2 / 10)),
    ],
)
def test_he_gain_rule(nonlinearity, slope, gain):
    kind, params = HeNormal(negative_slope=slope, nonlinearity=nonlinearity)._draw((4, 25))
    assert kind == "normal" and params[0] == np.float32(gain / 5)


@pytest.mark.parametrize("mode", ["fan_in", "fan_out", "fan_avg"])
@pytest.mark.parametrize("distribution", ["uniform", "truncated_normal", "untruncated_normal"])
def test_variance_scaling_variance(mode, distribution):
    shape = (200, 100, 2)
    fan = {"fan_in": 200, "fan_out": 400, "fan_avg": 300}[mode]
    v, _, s = stats(VarianceScaling(3.0, mode, distribution), shape)
    assert abs(s - math.sqrt(3.0 / fan)) < 0.015 * s
    if distribution == "truncated_normal":
        sigma = math.sqrt(3.0 / fan) / 0.87962566103423978
        assert np.abs(v).max() <= 2 * sigma * (1 + 1e-6)
    if distribution == "uniform":
        assert np.abs(v).max() <= math.sqrt(9.0 / fan)


@pytest.mark.parametrize("shape", [(6, 4), (4, 6), (3, 2, 2, 2), (5, 5)])
def test_orthogonal(shape):
    q = full(Orthogonal(gain=2.0), shape, mstype.float64).reshape(shape[0], -1)
    rows, cols = q.shape
    gram = q @ q.T if rows <= cols else q.T @ q
    assert np.allclose(gram, 4.0 * np.eye(min(rows, cols)), atol=1e-5)


def test_dirac_and_identity_patterns():
    d = full(Dirac(groups=2), (4, 3, 3, 5))
    expected = np.zeros((4, 3, 3, 5), np.float32)
    for g in range(2):
        for k in range(2):
            expected[g * 2 + k, k, 1, 2] = 1
    assert np.array_equal(d, expected)
    assert np.array_equal(full(Identity(), (3, 5)), np.eye(3, 5, dtype=np.float32))
    assert np.array_equal(Identity().window(0, (6, 4), mstype.float32, (2, 1), (3, 3)), np.eye(6, 4)[2:5, 1:4])


def test_sparse_zeros_per_column():
    v = full(Sparse(sparsity=0.3, sigma=2.0), (50, 40))
    assert ((v == 0).sum(axis=0) == math.ceil(0.3 * 50)).all()
    assert abs(v[v != 0].std() - 2.0) < 0.1
    assert not np.array_equal(full(Sparse(0.3, 2.0), (50, 40), seed=12) == 0, v == 0)
    assert (full(Sparse(0.0), (5, 4)) != 0).all()


def test_constants():
    assert np.array_equal(full(Constant(2.7), (2, 3), mstype.int32), np.full((2, 3), 2, np.int32))
    assert np.array_equal(full(Zero(), (2,)), [0, 0]) and np.array_equal(full(One(), (2,), mstype.bool_), [True] * 2)
    arr = np.arange(3, dtype=np.float64)
    assert np.array_equal(Constant(arr).window(0, (4, 3), mstype.float32, (1, 1), (2, 2)), [[1, 2], [1, 2]])
    with pytest.raises(ValueError, match="broadcastable"):
        initializer(Constant(arr), [4, 2])


def test_call_fills_in_place_with_fresh_seeds():
    a = np.zeros((4, 5), np.float32)
    assert Normal(1.0)(a) is None
    b = a.copy()
    Normal(1.0)(a)
    assert a.std() > 0.3 and not np.array_equal(a, b)
    with pytest.raises(TypeError, match="numpy"):
        Normal()([1.0, 2.0])


def test_base_initializer_is_abstract_and_subclasses_can_fill():
    with pytest.raises(NotImplementedError):
        Initializer()(np.zeros(3))
    with pytest.raises(NotImplementedError):
        initializer(Initializer(), [3]).init_data()

    class Arange(Initializer):
        def _initialize(self, arr):
            arr[...] = np.arange(arr.size).reshape(arr.shape)

    assert np.array_equal(initializer(Arange(), [2, 3]).init_data(slice_index=1, shape=(1, 3)).asnumpy(), [[3, 4, 5]])


# ------------------------------------------------------------------------------ spec §4.1 / §4.5
def test_spec_examples():
    assert str(initializer("identity", [2, 3]).init_data()) == "[[1. 0. 0.]\n [0. 1. 0.]]"
    assert str(initializer(2, [2], sp.float32).init_data()) == "[2. 2.]"
    assert str(initializer("ONES", 3, sp.int32).init_data()) == "[1 1 1]"
    assert str(initializer(Dirac(), [2, 2, 3]).init_data()) == (
        "[[[0. 1. 0.]\n  [0. 0. 0.]]\n\n [[0. 0. 0.]\n  [0. 1. 0.]]]"
    )
    sp.set_seed(42)
    a = initializer("normal", [3]).init_data().asnumpy()
    sp.set_seed(42)
    b = initializer("normal", [3]).init_data().asnumpy()
    c = initializer("normal", [3]).init_data().asnumpy()
    assert (a == b).all() and not (b == c).all() and abs(a).max() < 0.1


def test_initializer_returns_a_lazy_tensor():
    t = initializer("xavier_uniform", (4, 3), sp.float16)
    assert isinstance(t, Tensor) and t.has_init and t.shape == (4, 3) and t.dtype == sp.float16
    assert isinstance(t.init, XavierUniform)
    assert initializer(True, [2]).init.value is True
    assert initializer(Normal(), []).shape == ()


@pytest.mark.parametrize(
    "alias,cls",
    [
        ("zeros", Zero),
        ("Zero", Zero),
        ("ones", One),
        ("ONE", One),
        ("normal", Normal),
        ("uniform", Uniform),
        ("TruncatedNormal", TruncatedNormal),
        ("xavier_uniform", XavierUniform),
        ("XavierUniform", XavierUniform),
        ("xavier_normal", XavierNormal),
        ("xaviernormal", XavierNormal),
        ("he_uniform", HeUniform),
        ("heuniform", HeUniform),
        ("he_normal", HeNormal),
        ("HeNormal", HeNormal),
        ("identity", Identity),
        ("dirac", Dirac),
        ("orthogonal", Orthogonal),
        ("VarianceScaling", VarianceScaling),
    ],
)
def test_aliases(alias, cls):
    shape = (2, 2, 3) if cls is Dirac else (2, 3)
    assert type(initializer(alias, shape).init) is cls


def test_tensor_init_is_returned_as_is():
    t = Tensor(np.ones((2, 3), np.float32))
    assert initializer(t) is t and initializer(t, [2, 3], sp.int8) is t and initializer(t, (2, 3)) is t
    with pytest.raises(ValueError, match="shape"):
        initializer(t, [3, 2])


def test_initializer_errors():
    for bad in ([1, 2], None, {"a": 1}, np.ones(2)):
        with pytest.raises(TypeError, match="init"):
            initializer(bad, [2])
    with pytest.raises(AttributeError, match="shape"):
        initializer("ones")
    for shape in ([0], [-1], [2.0], (2, 0), [True]):
        with pytest.raises(ValueError, match="must be positive integer"):
            initializer("ones", shape)
    for alias in ("nope", "same", "truncated_normal"):
        with pytest.raises(ValueError, match="was not found"):
            initializer(alias, [2])
    with pytest.raises(TypeError):
        initializer("sparse", [2, 3])


@pytest.mark.parametrize(
    "init,shape,match",
    [
        (XavierUniform(), [3], "fewer than 2 dimensions"),
        (XavierNormal(), [], "fewer than 2 dimensions"),
        (HeUniform(), [5], "fewer than 2 dimensions"),
        (HeNormal(mode="fan"), [2, 3], "'mode'"),
        (HeNormal(mode=3), [2, 3], "'mode'"),
        (HeUniform(nonlinearity="gelu"), [2, 3], "nonlinearity"),
        (HeUniform(negative_slope=True), [2, 3], "negative_slope"),
        (HeUniform(negative_slope="0.1"), [2, 3], "negative_slope"),
        (VarianceScaling(), [4], "fewer than 2 dimensions"),
        (Identity(), [2, 2, 2], "2 dimensions"),
        (Identity(), [4], "2 dimensions"),
        (Dirac(), [2, 2], "3, 4 or 5"),
        (Dirac(), [2, 2, 2, 2, 2, 2], "3, 4 or 5"),
        (Dirac(groups=3), [4, 2, 3], "divisible"),
        (Dirac(groups=0), [4, 2, 3], "groups"),
        (Orthogonal(), [4], "at least 2"),
        (Sparse(0.1), [4], "2 dimensions"),
        (Sparse(0.1), [2, 2, 2], "2 dimensions"),
        (Sparse(1.5), [2, 2], "sparsity"),
    ],
)
def test_shape_and_argument_errors_at_creation(init, shape, match):
    with pytest.raises(ValueError, match=match):
        initializer(init, shape)
    with pytest.raises(ValueError, match=match):
        init(np.zeros(shape, np.float32))


def test_errors_when_drawing():
    t = initializer(Normal(sigma=-1.0), [3])
    with pytest.raises(ValueError, match="sigma"):
        t.init_data()
    with pytest.raises(ValueError, match="sigma"):
        initializer(TruncatedNormal(sigma=0.0), [3]).init_data()
    with pytest.raises(ValueError, match="a < b"):
        initializer(TruncatedNormal(a=1.0, b=1.0), [3]).init_data()


def test_variance_scaling_checks_at_construction():
    for kwargs, match in [
        (dict(scale=0), "scale"),
        (dict(scale=-1.0), "scale"),
        (dict(mode="fan"), "mode"),
        (dict(mode="FAN_IN"), "mode"),
        (dict(distribution="normal"), "distribution"),
    ]:
        with pytest.raises(ValueError, match=match):
            VarianceScaling(**kwargs)


def test_kwargs_and_repr():
    init = HeUniform(negative_slope=0.1)
    assert init._kwargs == {"negative_slope": 0.1, "mode": "fan_in", "nonlinearity": "leaky_relu"}
    assert repr(Normal(0.5)) == "Normal(sigma=0.5, mean=0.0)"


# ------------------------------------------------------------------------------ seeding
def test_same_seed_same_sequence_and_order_independence():
    def make():
        return [initializer(k, [16, 8]) for k in ("normal", "uniform", "xavier_uniform", "orthogonal")]

    sp.set_seed(9)
    first = [t.init_data().asnumpy() for t in make()]
    sp.set_seed(9)
    again = make()
    later = [t.init_data().asnumpy() for t in reversed(again)][::-1]
    for x, y in zip(first, later):
        assert np.array_equal(x, y)
    sp.set_seed(10)
    other = [t.init_data().asnumpy() for t in make()]
    assert not any(np.array_equal(x, y) for x, y in zip(first, other))


def test_reused_initializer_draws_fresh_values():
    init = Uniform()
    a, b = initializer(init, [64]), initializer(init, [64])
    assert not np.array_equal(a.init_data().asnumpy(), b.init_data().asnumpy())


def test_values_do_not_depend_on_the_layout():
    sp.set_seed(1)
    whole = initializer("normal", [32, 32]).init_data().asnumpy()
    for slice_shape in [(16, 32), (8, 16), (32, 4)]:
        sp.set_seed(1)
        t = initializer("normal", [32, 32])
        n = (32 // slice_shape[0]) * (32 // slice_shape[1])
        t.init_data(slice_index=n - 1, shape=slice_shape)
        assert np.array_equal(t.asnumpy(), whole[32 - slice_shape[0] :, 32 - slice_shape[1] :])


def test_bfloat16_dtype_roundtrip():
    got = full(Uniform(1.0), (5, 7), mstype.bfloat16)
    assert got.dtype == ml_dtypes.bfloat16
    assert np.array_equal(got, full(Uniform(1.0), (5, 7)).astype(ml_dtypes.bfloat16))
    _rng.set_seed(1234)


def test_initializers_pickle_and_deepcopy():
    import copy
    import pickle

    for init in (Normal(0.5), HeUniform(negative_slope=0.2), Dirac(2), Sparse(0.2), Constant(3), Zero()):
        for clone in (pickle.loads(pickle.dumps(init)), copy.deepcopy(init)):
            assert type(clone) is type(init) and clone._kwargs == init._kwargs


@pytest.mark.parametrize("init", [Normal(1.0), TruncatedNormal(1.0, 0.0, -1.0, 1.0), XavierUniform(), Identity()])
def test_window_jax_makes_sharded_arrays_equal_to_the_host_tensor(init):
    import jax
    from jax.sharding import NamedSharding

    from sporax.parallel.layout import to_mesh_and_spec

    if len(jax.devices()) < 8:
        pytest.skip("needs 8 devices")
    mesh, spec = to_mesh_and_spec(([2, 4], [1, 0], [16, 8]))
    shape = (32, 32)
    make = jax.jit(
        lambda: init.window_jax(3, shape, mstype.float32, (0, 0), shape), out_shardings=NamedSharding(mesh, spec)
    )
    arr = make()
    host = full(init, shape, seed=3)
    assert np.asarray(arr).tobytes() == host.tobytes()
    for shard in arr.addressable_shards:
        assert np.asarray(shard.data).tobytes() == np.ascontiguousarray(host[shard.index]).tobytes()
