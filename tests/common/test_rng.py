"""The counter-based generator: Threefry vectors, seeding, exact windows, chunking."""

import subprocess
import sys
import time

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sporax.common import _rng

# Known-answer vectors of Threefry-2x32, 20 rounds (Random123): (key, counter) -> output.
KAT = [
    ((0, 0), (0, 0), (0x6B200159, 0x99BA4EFE)),
    ((0xFFFFFFFF, 0xFFFFFFFF), (0xFFFFFFFF, 0xFFFFFFFF), (0x1CB996FC, 0xBB002BE7)),
    ((0x13198A2E, 0x03707344), (0x243F6A88, 0x85A308D3), (0xC4923A9C, 0x483DF7A0)),
]


@pytest.mark.parametrize("key,counter,expected", KAT)
def test_threefry_known_answers(key, counter, expected):
    assert _rng.threefry2x32_py(*key, *counter) == expected
    y = _rng.threefry2x32(np.uint32(key[0]), np.uint32(key[1]), np.uint32(counter[0]), np.uint32(counter[1]))
    assert (int(y[0]), int(y[1])) == expected


def test_threefry_jax_matches_reference():
    rng = np.random.default_rng(0)
    k0, k1 = (int(v) for v in rng.integers(0, 2**32, 2))
    x0, x1 = rng.integers(0, 2**32, (2, 64), dtype=np.uint32)
    y0, y1 = _rng.threefry2x32(np.uint32(k0), np.uint32(k1), x0, x1)
    ref = [_rng.threefry2x32_py(k0, k1, int(a), int(b)) for a, b in zip(x0, x1)]
    assert list(zip(np.asarray(y0).tolist(), np.asarray(y1).tolist())) == ref


def test_set_seed_validation():
    for bad in ("1", 1.0, True, None):
        with pytest.raises(TypeError, match="seed"):
            _rng.set_seed(bad)
    with pytest.raises(ValueError, match=">= 0"):
        _rng.set_seed(-1)
    with pytest.raises(ValueError, match="2\\*\\*32-1"):
        _rng.set_seed(2**32)
    _rng.set_seed(0)
    assert _rng.get_seed() == 0
    _rng.set_seed(2**32 - 1)
    assert _rng.get_seed() == 2**32 - 1


def test_next_seed_sequence_restarts_with_set_seed():
    _rng.set_seed(7)
    a = [_rng.next_seed() for _ in range(3)]
    _rng.set_seed(7)
    b = [_rng.next_seed() for _ in range(3)]
    _rng.set_seed(8)
    c = [_rng.next_seed() for _ in range(3)]
    assert a == b and len(set(a)) == 3 and not set(a) & set(c)
    assert all(0 <= s < 2**64 for s in a + c)


def test_next_seed_is_cheap():
    n = 200_000
    t = time.perf_counter()
    for _ in range(n):
        _rng.next_seed()
    assert (time.perf_counter() - t) / n < 2e-6  # well under a microsecond on an idle core


def test_unseeded_runs_differ_and_get_seed_is_none():
    code = "from sporax.common import _rng; print(_rng.get_seed(), _rng.next_seed())"
    procs = [subprocess.Popen([sys.executable, "-c", code], stdout=subprocess.PIPE, text=True) for _ in range(2)]
    outs = [p.communicate(timeout=120)[0].split() for p in procs]
    assert outs[0][0] == outs[1][0] == "None"
    assert outs[0][1] != outs[1][1]


def test_neighbouring_seeds_get_unrelated_keys():
    diffs = []
    for s in range(200):
        a, b = _rng.derive_key(s), _rng.derive_key(s + 1)
        diffs.append(bin((a[0] ^ b[0]) << 32 | (a[1] ^ b[1])).count("1"))
    assert 28 < np.mean(diffs) < 36 and min(diffs) > 12
    assert _rng.derive_key(5, stream=1) != _rng.derive_key(5)


def reference_bits(seed, flat_index):
    k0, k1 = _rng.derive_key(seed)
    out = []
    for i in flat_index:
        p = int(i) >> 1
        out.append(_rng.threefry2x32_py(k0, k1, p >> 32, p & 0xFFFFFFFF)[int(i) & 1])
    return np.array(out, np.uint32)


def test_bits_follow_the_element_counter_past_two_to_the_32():
    full = (2**20, 2**14)  # 2**34 elements: flat indices need the high counter word
    offsets, sizes = (2**20 - 3, 2**14 - 5), (3, 5)
    got = _rng.sample_window("bits", _rng.transform_params("bits"), 99, full, np.uint32, offsets, sizes)
    rows = np.arange(offsets[0], offsets[0] + 3)[:, None] * full[1] + np.arange(offsets[1], offsets[1] + 5)
    assert np.array_equal(got, reference_bits(99, rows.ravel()).reshape(sizes))
    jax_got = np.asarray(
        _rng.sample_window_jax("bits", _rng.transform_params("bits"), 99, full, np.uint32, offsets, sizes)
    )
    assert np.array_equal(jax_got, got)


KIND_PARAMS = {
    "uniform": dict(bound=1.5),
    "normal": dict(sigma=2.0, mean=1.0),
    "truncated_normal": dict(sigma=1.0, mean=0.5, a=-0.5, b=1.0),
    "bits": {},
}


@st.composite
def windows(draw, max_dim=9):
    full = tuple(draw(st.lists(st.integers(1, max_dim), min_size=0, max_size=4)))
    offsets = tuple(draw(st.integers(0, n - 1)) for n in full)
    sizes = tuple(draw(st.integers(1, n - o)) for n, o in zip(full, offsets))
    return full, offsets, sizes


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(sorted(KIND_PARAMS)), windows(), st.integers(0, 2**64 - 1))
def test_window_equals_the_full_tensor_cut(kind, win, seed):
    full, offsets, sizes = win
    dt = np.uint32 if kind == "bits" else np.float32
    params = _rng.transform_params(kind, **KIND_PARAMS[kind])
    whole = _rng.sample_window(kind, params, seed, full, dt, (0,) * len(full), full)
    part = _rng.sample_window(kind, params, seed, full, dt, offsets, sizes)
    cut = whole[tuple(slice(o, o + s) for o, s in zip(offsets, sizes))]
    assert part.shape == sizes and part.tobytes() == np.ascontiguousarray(cut).tobytes()
    traced = np.asarray(_rng.sample_window_jax(kind, params, seed, full, dt, offsets, sizes))
    assert traced.tobytes() == part.tobytes()


def test_chunking_does_not_change_values(monkeypatch):
    params = _rng.transform_params("normal", sigma=1.0, mean=0.0)
    full = (37, 41, 3)
    ref = _rng.sample_window("normal", params, 5, full, np.float32, (0, 0, 0), full)
    monkeypatch.setattr(_rng, "CHUNK", 64)
    monkeypatch.setattr(_rng, "_SMALL", 32)
    for offsets, sizes in [
        ((0, 0, 0), full),
        ((3, 5, 1), (30, 33, 2)),
        ((1, 0, 0), (36, 41, 3)),
        ((0, 7, 0), (37, 1, 3)),
    ]:
        got = _rng.sample_window("normal", params, 5, full, np.float32, offsets, sizes)
        assert (
            got.tobytes() == np.ascontiguousarray(ref[tuple(slice(o, o + s) for o, s in zip(offsets, sizes))]).tobytes()
        )


def test_uniform_bits_are_balanced():
    bits = _rng.sample_window("bits", _rng.transform_params("bits"), 3, (1 << 16,), np.uint32, (0,), (1 << 16,))
    ones = np.unpackbits(bits.view(np.uint8)).reshape(-1, 32).mean(axis=0)
    assert np.all(np.abs(ones - 0.5) < 0.02)
    assert len(np.unique(bits)) > (1 << 16) - 5


def test_window_errors_and_empty_windows():
    params = _rng.transform_params("uniform", bound=1.0)
    with pytest.raises(ValueError, match="inside"):
        _rng.sample_window("uniform", params, 1, (4, 4), np.float32, (2, 0), (3, 4))
    with pytest.raises(ValueError, match="one offset and one size"):
        _rng.sample_window("uniform", params, 1, (4, 4), np.float32, (0,), (4,))
    with pytest.raises(ValueError, match="kind"):
        _rng.transform_params("poisson")
    assert _rng.sample_window("uniform", params, 1, (4, 4), np.float32, (1, 1), (0, 3)).shape == (0, 3)


def test_host_windows_are_computed_eagerly_inside_a_trace():
    import jax

    params = _rng.transform_params("normal", sigma=1.0, mean=0.0)
    ref = _rng.sample_window("normal", params, 1, (4, 5), np.float32, (0, 0), (4, 5))

    def f(x):
        return x + _rng.sample_window("normal", params, 1, (4, 5), np.float32, (0, 0), (4, 5))

    assert np.array_equal(np.asarray(jax.jit(f)(0.0)), ref)
    assert float(jax.grad(lambda x: f(x).sum())(1.0)) == 20.0


@settings(max_examples=40, deadline=None)
@given(st.sampled_from(["uniform", "bits"]), windows(), st.integers(0, 2**64 - 1),
       st.sampled_from([np.float32, np.float16, np.int32]), st.integers(0, 3))
def test_small_exact_windows_from_numpy_equal_the_kernel(kind, win, seed, dt, stream):
    """Small uniform/bits windows are computed in numpy (no kernel per shape): the same bits as the XLA kernel."""
    full, offsets, sizes = win
    if kind == "bits" and dt is np.float16:  # uint32 bits overflow float16: a wide integer instead
        dt = np.int64
    params = _rng.transform_params(kind, **KIND_PARAMS[kind])
    assert kind in _rng._HOST_KINDS and np.prod(sizes) <= _rng._HOST_MAX
    host = _rng.sample_window(kind, params, seed, full, dt, offsets, sizes, stream)
    saved = _rng._HOST_MAX
    _rng._HOST_MAX = -1  # force the kernel
    try:
        kernel = _rng.sample_window(kind, params, seed, full, dt, offsets, sizes, stream)
    finally:
        _rng._HOST_MAX = saved
    assert host.dtype == kernel.dtype and host.tobytes() == kernel.tobytes()
