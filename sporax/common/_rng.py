"""The one random number generator of sporax: counter-based Threefry-2x32 (20 rounds).

Every random tensor is a pure function of a 64-bit seed and each element's row-major index in
its FULL shape: element ``i`` reads word ``i & 1`` of ``threefry(key(seed), (p >> 32, p & M))``
with ``p = i >> 1``. One Threefry block feeds two neighbouring elements (the host kernel returns
them as one complex64 so that XLA computes the block once: about 1.2-1.3x less CPU than a block
per element). So any rectangular window is computed alone, in memory proportional to the
window, bit-identical to the same window of the full tensor, whatever the layout, device count
or order of materialization (DESIGN.md, "One random number generator"). Host windows are
computed on the CPU device; ``sample_window_jax`` runs the same ops wherever it is traced, and
only uniform/raw bits are guaranteed identical on another backend (normal values can differ by
an ulp where that backend's ``erf_inv`` does).

Seeds. ``next_seed()`` hands each lazy tensor its seed at creation: the global seed (``set_seed``)
in the high 32 bits plus a creation counter that ``set_seed`` resets. As in MindSpore, ``set_seed(s)``
also seeds numpy's global RNG, and without ``set_seed`` each seed is drawn from numpy's global RNG
(53 bits, one ``random_sample``), so ``np.random.seed(0)`` alone makes a script's initialization
reproducible and an unseeded run differs from the next. Keys are derived from seeds lazily, with
one Threefry pass under a fixed key, which decorrelates neighbouring seeds.

Values. Bits become float32 (spec §4.2: draw in float32, then cast to the target dtype):
uniform from the top 24 bits, normal by the inverse CDF ``sqrt(2) * erfinv(v)`` with ``v`` in the
open interval (-1, 1), truncated normal by the inverse CDF restricted to ``[Phi(a), Phi(b)]``. One
uniform per element, so windows stay exact.
"""

from __future__ import annotations

import collections
import functools
import itertools
import math
import os

import jax
import jax.numpy as jnp
import numpy as np
from jax import lax

from sporax._jax_setup import eager

__all__ = [
    "set_seed",
    "get_seed",
    "next_seed",
    "derive_key",
    "threefry2x32",
    "threefry2x32_py",
    "transform_params",
    "sample_window",
    "sample_window_jax",
    "KINDS",
]

_MASK32 = 0xFFFFFFFF
_MASK64 = (1 << 64) - 1
_SEED_MAX = 2**32 - 1

# ---------------------------------------------------------------------------------- seeding
_seed: int | None = None
_base: int = int.from_bytes(os.urandom(8), "little")
_counter = itertools.count()


def set_seed(seed: int) -> None:
    """Set the global seed and restart the sequence of random materializations (spec §4.4).

    ``seed`` must be an int (not a bool) in ``[0, 2**32 - 1]``.
    """
    global _seed, _base, _counter
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise TypeError(f"For 'set_seed', the 'seed' should be an int, but got {seed!r} of type {type(seed).__name__}.")
    if seed < 0:
        raise ValueError(f"For 'set_seed', the 'seed' should be >= 0, but got {seed}.")
    if seed > _SEED_MAX:
        raise ValueError(f"For 'set_seed', the 'seed' should be <= 2**32-1 ({_SEED_MAX}), but got {seed}.")
    _seed = seed
    _base = seed << 32
    _counter = itertools.count()
    np.random.seed(seed)  # MindSpore's set_seed seeds numpy's global RNG too


def get_seed() -> int | None:
    """The global seed, or ``None`` if ``set_seed`` was never called."""
    return _seed


def next_seed() -> int:
    """A fresh 64-bit seed for one lazy tensor: global seed (high word) + creation counter.

    Plain integer arithmetic (about 0.1 microsecond), because every lazy Parameter calls it.
    Without ``set_seed``, one draw from numpy's global RNG (about 0.3 microsecond), as MindSpore's
    default initialization follows numpy's global seed.
    """
    if _seed is None:
        return int(_np_random_sample() * _TWO53) ^ _UNSEEDED_TAG
    return (_base + next(_counter)) & _MASK64


_np_random_sample = np.random.random_sample
_TWO53 = float(2**53)
_UNSEEDED_TAG = 0x5EE << 53  # top 11 bits: keeps numpy-drawn seeds apart from most ``set_seed`` ones


# ---------------------------------------------------------------------------------- threefry
_ROT = (13, 15, 26, 6, 17, 29, 16, 24)
_PARITY = 0x1BD11BDA
# Fixed key under which a seed is hashed into its key ("SPORAX!!" in ASCII).
_KEY_OF_SEEDS = (0x53504F52, 0x41582121)


def threefry2x32_py(k0: int, k1: int, x0: int, x1: int) -> tuple[int, int]:
    """Threefry-2x32, 20 rounds, on Python ints (the reference for scalars and key derivation)."""
    ks = (k0 & _MASK32, k1 & _MASK32, (k0 ^ k1 ^ _PARITY) & _MASK32)
    x0 = (x0 + ks[0]) & _MASK32
    x1 = (x1 + ks[1]) & _MASK32
    for r in range(20):
        rot = _ROT[r % 8]
        x0 = (x0 + x1) & _MASK32
        x1 = ((x1 << rot) | (x1 >> (32 - rot))) & _MASK32
        x1 ^= x0
        if r % 4 == 3:
            j = (r + 1) // 4
            x0 = (x0 + ks[j % 3]) & _MASK32
            x1 = (x1 + ks[(j + 1) % 3] + j) & _MASK32
    return x0, x1


def threefry2x32(k0, k1, x0, x1):
    """Threefry-2x32, 20 rounds, in uint32 ops (traceable, broadcasting).

    Written with ``lax`` primitives on operands broadcast once: ``jax.numpy`` operators would
    each be traced as a small jitted function, which made tracing this kernel a visible part of
    a first training step (the values are the same integer operations either way).
    """
    x0 = jnp.asarray(x0, jnp.uint32)
    x1 = jnp.asarray(x1, jnp.uint32)
    shape = jnp.broadcast_shapes(jnp.shape(k0), jnp.shape(k1), x0.shape, x1.shape)

    def full(v):
        return lax.broadcast_in_dim(jnp.asarray(v, jnp.uint32), shape, tuple(range(len(shape) - jnp.ndim(v), len(shape))))

    k0, k1 = full(k0), full(k1)
    ks = (k0, k1, lax.bitwise_xor(lax.bitwise_xor(k0, k1), full(np.uint32(_PARITY))))
    x0 = lax.add(full(x0), ks[0])
    x1 = lax.add(full(x1), ks[1])
    rots = {r: (full(np.uint32(r)), full(np.uint32(32 - r))) for r in set(_ROT)}
    for r in range(20):
        left, right = rots[_ROT[r % 8]]
        x0 = lax.add(x0, x1)
        x1 = lax.bitwise_or(lax.shift_left(x1, left), lax.shift_right_logical(x1, right))
        x1 = lax.bitwise_xor(x1, x0)
        if r % 4 == 3:
            j = (r + 1) // 4
            x0 = lax.add(x0, ks[j % 3])
            x1 = lax.add(lax.add(x1, ks[(j + 1) % 3]), full(np.uint32(j)))
    return x0, x1


@functools.lru_cache(maxsize=4096)
def derive_key(seed: int, stream: int = 0) -> tuple[int, int]:
    """The Threefry key of a 64-bit ``seed``; ``stream`` selects an independent sub-stream.

    One Threefry pass of the seed under a fixed key: neighbouring seeds get unrelated keys.
    """
    if not 0 <= seed <= _MASK64:
        raise ValueError(f"For 'derive_key', the 'seed' should be in [0, 2**64-1], but got {seed}.")
    return threefry2x32_py(_KEY_OF_SEEDS[0], _KEY_OF_SEEDS[1] ^ stream, seed >> 32, seed & _MASK32)


def _pair_words(k0, k1, row_hi, row_lo, npairs: int):
    """Both Threefry words of ``npairs`` consecutive pairs from each row start's pair.

    A row start is an element index ``s`` (64 bits as uint32 hi/lo); its first pair is
    ``s >> 1``. Word 0 of pair ``p`` is element ``2p``, word 1 is element ``2p + 1``.
    """
    p_lo0 = ((row_lo >> np.uint32(1)) | (row_hi << np.uint32(31)))[:, None]
    p_hi0 = (row_hi >> np.uint32(1))[:, None]
    lo = p_lo0 + lax.broadcasted_iota(jnp.uint32, (1, npairs), 1)
    hi = p_hi0 + (lo < p_lo0).astype(jnp.uint32)
    return threefry2x32(k0, k1, hi, lo)


# ---------------------------------------------------------------------------------- transforms
def _symmetric_unit(bits):
    """(-1, 1) open, exactly: ((2m + 1) - 2**24) / 2**24 for the top 24 bits m (odd numerator)."""
    m = (bits >> np.uint32(8)).astype(jnp.int32)
    return (m * 2 + (1 - (1 << 24))).astype(jnp.float32) * np.float32(2.0**-24)


def _uniform(bits, p):
    """U[-p0, p0): the top 24 bits as (2m - 2**24) / 2**24 in [-1, 1), times the bound."""
    m = (bits >> np.uint32(8)).astype(jnp.int32)
    w = (m * 2 - (1 << 24)).astype(jnp.float32) * np.float32(2.0**-24)
    return w * p[0]


def _normal(bits, p):
    """N(p1, p0**2) by the inverse CDF."""
    z = lax.erf_inv(_symmetric_unit(bits)) * np.float32(math.sqrt(2.0))
    return z * p[0] + p[1]


def _truncated_normal(bits, p):
    """N(p1, p0**2) restricted to [p6, p7] by the inverse CDF between Phi(a) and Phi(b).

    p2/p3 are the midpoint and half-width of [erf(za/sqrt2), erf(zb/sqrt2)], p4/p5 are
    ``za``/``zb`` (the standardized bounds): clips guard float32 rounding at the ends.
    """
    x = _symmetric_unit(bits) * p[3] + p[2]
    z = jnp.clip(lax.erf_inv(x) * np.float32(math.sqrt(2.0)), p[4], p[5])
    return jnp.clip(z * p[0] + p[1], p[6], p[7])


def _raw(bits, p):
    return bits


_TRANSFORMS = {"uniform": _uniform, "normal": _normal, "truncated_normal": _truncated_normal, "bits": _raw}
KINDS = tuple(_TRANSFORMS)
_N_PARAMS = 8


def transform_params(kind: str, **kw: float) -> np.ndarray:
    """The float32 parameter vector of ``kind``.

    ``uniform(bound)``: U[-bound, bound). ``normal(sigma, mean)``. ``truncated_normal(sigma,
    mean, a, b)`` with absolute bounds ``a < b``. ``bits()``: the raw uint32 bits.
    """
    p = np.zeros(_N_PARAMS, np.float64)
    if kind == "uniform":
        p[0] = kw["bound"]
    elif kind == "normal":
        p[0], p[1] = kw["sigma"], kw["mean"]
    elif kind == "truncated_normal":
        sigma, mean, a, b = kw["sigma"], kw["mean"], kw["a"], kw["b"]
        za, zb = (a - mean) / sigma, (b - mean) / sigma
        ea, eb = math.erf(za / math.sqrt(2.0)), math.erf(zb / math.sqrt(2.0))
        p[:] = (sigma, mean, (ea + eb) / 2, (eb - ea) / 2, za, zb, a, b)
    elif kind != "bits":
        raise ValueError(f"For 'transform_params', the 'kind' should be one of {KINDS}, but got {kind!r}.")
    return p.astype(np.float32)


def _pairs_block(key, params, row_hi, row_lo, *, kind: str, npairs: int):
    """Values of ``npairs`` pairs per row, as one array whose memory is the element order.

    Float kinds return complex64 (real = even element, imaginary = odd element): XLA then
    computes each Threefry block once for both words (it would compute it twice for two
    outputs or a stack), about 1.3x faster. ``bits`` returns uint32 of shape (rows, 2*npairs).
    """
    y0, y1 = _pair_words(key[0], key[1], row_hi, row_lo, npairs)
    transform = _TRANSFORMS[kind]
    if kind == "bits":
        return jnp.stack([y0, y1], axis=-1).reshape(row_lo.shape[0], 2 * npairs)
    return lax.complex(transform(y0, params), transform(y1, params))


_pairs_block_jit = jax.jit(_pairs_block, static_argnames=("kind", "npairs"))


def _rows_block(key, params, row_hi, row_lo, *, kind: str, length: int):
    """``length`` values from each row start: the traceable form of ``_pairs_block``.

    Rows are at least 16 pairs wide, like the host kernel: XLA rounds a 1-element computation
    differently from a vectorized one.
    """
    npairs = max(16, length // 2 + 1)
    y0, y1 = _pair_words(key[0], key[1], row_hi, row_lo, npairs)
    transform = _TRANSFORMS[kind]
    vals = jnp.stack([transform(y0, params), transform(y1, params)], axis=-1)
    vals = vals.reshape(row_lo.shape[0], 2 * npairs)
    odd = (row_lo & np.uint32(1)).astype(bool)[:, None]
    return jnp.where(odd, vals[:, 1 : length + 1], vals[:, :length])


# Jitted even when called eagerly: op-by-op execution rounds differently from the fused kernel.
_rows_block_jit = jax.jit(_rows_block, static_argnames=("kind", "length"))


# ---------------------------------------------------------------------------------- windows
# Elements per kernel call. Two calls are in flight at a time (async dispatch overlaps the
# copy of one chunk with the generation of the next), so the transient memory is a few of
# these: 1M float32 elements = 4 MiB. Chunks that stay in cache while being copied out cost
# about 1.3x less CPU than 8 MiB ones (measured); smaller ones pay more dispatch overhead.
CHUNK = 1 << 20
_SMALL = 1 << 12


def _bucket(n: int) -> int:
    """A kernel length >= n from few sizes (2**k times 1, 1.25, 1.5, 1.75): bounded recompiles."""
    if n <= 16:
        return 16
    k = (n - 1).bit_length() - 1
    for f in (4, 5, 6, 7, 8):
        size = (f << k) // 4
        if size >= n:
            return size
    raise AssertionError("unreachable")


def _check_window(full_shape: tuple, offsets: tuple, sizes: tuple) -> None:
    if len(offsets) != len(full_shape) or len(sizes) != len(full_shape):
        raise ValueError(
            f"The window should have one offset and one size per dimension of the full shape {full_shape}, "
            f"but got offsets {offsets} and sizes {sizes}."
        )
    for d, (n, o, s) in enumerate(zip(full_shape, offsets, sizes)):
        if o < 0 or s < 0 or o + s > n:
            raise ValueError(
                f"The window [{o}:{o + s}] of dimension {d} should lie inside [0:{n}] (full shape "
                f"{full_shape}), but got offsets {offsets} and sizes {sizes}."
            )


def _runs(full_shape: tuple, offsets: tuple, sizes: tuple):
    """The window as ``rows`` contiguous runs of ``length`` elements of the flat full tensor.

    Returns ``(rows, length, starts)`` where ``starts(r0, r1)`` gives the flat start index of
    runs ``r0..r1-1`` as uint64. Trailing dimensions that the window covers fully merge into
    the run, so a dim-0 slice is a single run.
    """
    nd = len(full_shape)
    if nd == 0:
        return 1, 1, lambda r0, r1: np.zeros(r1 - r0, np.uint64)
    strides = [1] * nd
    for d in range(nd - 2, -1, -1):
        strides[d] = strides[d + 1] * full_shape[d + 1]
    k = nd - 1
    length = sizes[k]
    while k > 0 and sizes[k] == full_shape[k]:
        k -= 1
        length *= sizes[k]
    base = offsets[k] * strides[k]
    outer_sizes = tuple(sizes[:k])
    rows = math.prod(outer_sizes)

    def starts(r0: int, r1: int) -> np.ndarray:
        s = np.full(r1 - r0, base, np.uint64)
        if k:
            idx = np.unravel_index(np.arange(r0, r1, dtype=np.int64), outer_sizes)
            for d in range(k):
                s += (idx[d] + offsets[d]).astype(np.uint64) * np.uint64(strides[d])
        return s

    return rows, length, starts


def _tasks(rows: int, length: int, starts):
    """Kernel calls covering the window: ``(row0, row1, col0, ncols, run_starts)``."""
    if length >= CHUNK // 2 or rows == 1:
        # Long runs: cut each run into pieces of CHUNK elements, one kernel row per piece.
        for r in range(rows):
            s0 = int(starts(r, r + 1)[0])
            for c0 in range(0, length, CHUNK):
                yield r, r + 1, c0, min(CHUNK, length - c0), np.array([s0 + c0], np.uint64)
        return
    per_call = max(1, (CHUNK if rows * length > _SMALL else _SMALL) // _bucket(length))
    per_call = 1 << (per_call.bit_length() - 1)
    for r0 in range(0, rows, per_call):
        r1 = min(rows, r0 + per_call)
        yield r0, r1, 0, length, starts(r0, r1)


def _split64(s: np.ndarray, pad_to: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """uint64 run starts as (hi, lo) uint32 words, zero-padded to ``pad_to`` rows."""
    if pad_to > s.shape[0]:
        s = np.concatenate([s, np.zeros(pad_to - s.shape[0], np.uint64)])
    return (s >> np.uint64(32)).astype(np.uint32), (s & np.uint64(_MASK32)).astype(np.uint32)


@functools.lru_cache(maxsize=1)
def _host_device():
    """The CPU device: host windows are computed there even when an accelerator is the default,
    so their values do not depend on which accelerator (if any) the machine has."""
    try:  # local: in a multi-process run jax.devices() lists every process's devices
        return jax.local_devices(backend="cpu")[0]
    except RuntimeError:  # CPU platform not initialized (JAX_PLATFORMS excludes it)
        return None


def _copy_rows(dst: np.ndarray, vals: np.ndarray, odd: np.ndarray) -> None:
    """Rows of ``vals`` (element ``2*(start >> 1)`` first) into ``dst``, shifted by the start parity."""
    n = dst.shape[1]
    if not odd.any():
        np.copyto(dst, vals[:, :n], casting="unsafe")
    elif odd.all():
        np.copyto(dst, vals[:, 1 : n + 1], casting="unsafe")
    else:
        dst[~odd] = vals[~odd, :n]
        dst[odd] = vals[odd, 1 : n + 1]


# Windows of at most this many elements of an exact kind ("uniform", "bits": integer ops and
# one float32 multiply, so numpy and XLA round alike) are computed in numpy on the host (about
# 13 ms at the bound, as long as loading one kernel from the persistent cache). A
# small parameter then needs no kernel of its own shape: a first training step otherwise
# traces, compiles or loads one kernel per distinct small shape (about 20 ms each from the
# persistent cache), which was most of a small model's first-step time.
_HOST_MAX = 1 << 18
_HOST_KINDS = ("uniform", "bits")


def _threefry2x32_np(k0: int, k1: int, x0: np.ndarray, x1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Threefry-2x32, 20 rounds, on numpy uint32 arrays (wrapping, as the lax kernel)."""
    u = np.uint32
    ks = (u(k0), u(k1), u((k0 ^ k1 ^ _PARITY) & _MASK32))
    with np.errstate(over="ignore"):
        x0 = x0 + ks[0]
        x1 = x1 + ks[1]
        for r in range(20):
            rot = _ROT[r % 8]
            x0 = x0 + x1
            x1 = (x1 << u(rot)) | (x1 >> u(32 - rot))
            x1 ^= x0
            if r % 4 == 3:
                j = (r + 1) // 4
                x0 = x0 + ks[j % 3]
                x1 = x1 + ks[(j + 1) % 3] + u(j)
    return x0, x1


def _sample_host(kind: str, params: np.ndarray, key: tuple, rows: int, length: int, starts) -> np.ndarray:
    """The window's (rows, length) values in float32 (uint32 for ``bits``), computed in numpy."""
    e = starts(0, rows)[:, None] + np.arange(length, dtype=np.uint64)[None, :]
    pair = e >> np.uint64(1)
    y0, y1 = _threefry2x32_np(key[0], key[1], (pair >> np.uint64(32)).astype(np.uint32),
                              (pair & np.uint64(_MASK32)).astype(np.uint32))
    bits = np.where((e & np.uint64(1)).astype(bool), y1, y0)
    if kind == "bits":
        return bits
    m = (bits >> np.uint32(8)).astype(np.int32)
    w = (m * 2 - (1 << 24)).astype(np.float32) * np.float32(2.0**-24)
    return w * np.float32(params[0])


def sample_window(
    kind: str,
    params: np.ndarray,
    seed: int,
    full_shape: tuple,
    np_dtype,
    offsets: tuple,
    sizes: tuple,
    stream: int = 0,
) -> np.ndarray:
    """The window ``[offsets : offsets + sizes]`` of the random tensor (kind, params, seed).

    Bit-identical to that window of the full tensor. Computed in bounded chunks into a
    preallocated array of ``np_dtype`` (float32 values cast as numpy casts: ints truncate
    toward zero), so memory is the window plus a few chunks. Two chunks are in flight, so
    the copy of one overlaps the generation of the next; XLA spreads a chunk over the cores.
    """
    full_shape, offsets, sizes = tuple(full_shape), tuple(offsets), tuple(sizes)
    _check_window(full_shape, offsets, sizes)
    if kind not in _TRANSFORMS:
        raise ValueError(f"For 'sample_window', the 'kind' should be one of {KINDS}, but got {kind!r}.")
    out = np.empty(sizes, np_dtype)
    if out.size == 0:
        return out
    rows, length, starts = _runs(full_shape, offsets, sizes)
    out2 = out.reshape(rows, length)
    params = np.asarray(params, np.float32)
    if kind in _HOST_KINDS and out.size <= _HOST_MAX:
        np.copyto(out2, _sample_host(kind, params, derive_key(seed, stream), rows, length, starts), casting="unsafe")
        return out
    key = np.array(derive_key(seed, stream), np.uint32)
    pending: collections.deque = collections.deque()
    device = _host_device()

    def drain_one() -> None:
        r0, r1, c0, n, odd, result = pending.popleft()
        vals = np.asarray(result)
        if vals.dtype == np.complex64:
            vals = vals.view(np.float32)
        _copy_rows(out2[r0:r1, c0 : c0 + n], vals[: r1 - r0], odd)

    for r0, r1, c0, n, s in _tasks(rows, length, starts):
        odd = (s & np.uint64(1)).astype(bool)
        npairs = _bucket((n + 1 + int(odd.any())) // 2)
        hi, lo = _split64(s, 1 << (s.shape[0] - 1).bit_length())
        # Eager even inside a user's jit/grad trace: a lazy tensor may be materialized there.
        with jax.default_device(device), eager():
            result = _pairs_block_jit(key, params, hi, lo, kind=kind, npairs=npairs)
        pending.append((r0, r1, c0, n, odd, result))
        if len(pending) > 1:
            drain_one()
    while pending:
        drain_one()
    return out


def sample_window_jax(
    kind: str,
    params,
    seed: int,
    full_shape: tuple,
    dtype,
    offsets: tuple,
    sizes: tuple,
    stream: int = 0,
) -> jax.Array:
    """``sample_window`` as a traceable JAX computation (e.g. one device's shard under ``jit``).

    Same ops as the host path, so equal bits; transcendental functions may differ by an ulp on
    another backend (GPU). The run starts are baked in as a constant of one uint64 per run.
    """
    full_shape, offsets, sizes = tuple(full_shape), tuple(offsets), tuple(sizes)
    _check_window(full_shape, offsets, sizes)
    if math.prod(sizes) == 0:
        return jnp.zeros(sizes, dtype)
    rows, length, starts = _runs(full_shape, offsets, sizes)
    hi, lo = _split64(starts(0, rows))
    key = jnp.asarray(np.array(derive_key(seed, stream), np.uint32))
    params = jnp.asarray(params, jnp.float32)
    vals = _rows_block_jit(key, params, jnp.asarray(hi), jnp.asarray(lo), kind=kind, length=length)
    return vals.reshape(sizes).astype(dtype)
