"""Linear-algebra, window and random operator classes of ``ops.operations`` (``ops.Cholesky``, ``ops.Qr``,
``ops.MatrixSolve``, ``ops.HammingWindow``, ``ops.StandardNormal``, ``ops.Multinomial``, ...).

Linear algebra is ``jax.numpy.linalg``/``jax.scipy.linalg``, checked against MindSpore 2.10 in
``tests/ops/test_op_families.py``. Random ops draw from sporax's one run-time key
(:func:`sporax.common._random_state.next_key`): a seeded program (``set_seed``) is reproducible
and a compiled step draws new values each call, but the values are not MindSpore's (its Philox
streams are not reproduced); ``seed``/``seed2`` are recorded as attributes only. Their dtypes and
shapes match MindSpore's.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import jax.scipy.linalg as jsl
import numpy as np

from sporax.common import dtype as mstype
from sporax.common._random_state import next_key
from sporax.common._validation import check_bool, msg
from sporax.common.tensor import Tensor
from sporax.ops.operations._prim_util import arr, pyint_tuple, scalar_of, wrap
from sporax.ops.primitive import Primitive, prim_attr_register


def _square(a, where: str, arg: str = "x"):
    if a.ndim < 2 or a.shape[-1] != a.shape[-2]:
        raise ValueError(f"For '{where}', the '{arg}' should be a (batch of) square matrix, but got shape {a.shape}.")
    return a


def _adj(a):
    return jnp.conj(jnp.swapaxes(a, -1, -2))


class Cholesky(Primitive):
    """``ops.Cholesky(upper=False)(input_x)``: the Cholesky factor (lower ``L``, or upper ``L^T``)."""

    @prim_attr_register
    def __init__(self, upper: bool = False) -> None:
        check_bool(upper, "upper", "Cholesky")

    def __call__(self, input_x) -> Tensor:
        a = _square(arr(input_x, "Cholesky", "input_x", "f"), "Cholesky", "input_x")
        low = jnp.linalg.cholesky(a)
        return wrap(_adj(low) if self.upper else low)


class CholeskyInverse(Primitive):
    """``ops.CholeskyInverse(upper=False)(x)``: the inverse of ``A`` from its Cholesky factor ``x``."""

    @prim_attr_register
    def __init__(self, upper: bool = False) -> None:
        check_bool(upper, "upper", "CholeskyInverse")

    def __call__(self, x) -> Tensor:
        u = _square(arr(x, "CholeskyInverse", "x", "f"), "CholeskyInverse")
        full = _adj(u) @ u if self.upper else u @ _adj(u)
        return wrap(jnp.linalg.inv(full))


class CholeskySolve(Primitive):
    """``ops.CholeskySolve(upper=False)(x1, x2)``: solves ``A X = x1`` given ``A``'s Cholesky factor ``x2``."""

    @prim_attr_register
    def __init__(self, upper: bool = False) -> None:
        check_bool(upper, "upper", "CholeskySolve")

    def __call__(self, x1, x2) -> Tensor:
        b = arr(x1, "CholeskySolve", "x1", "f")
        c = _square(arr(x2, "CholeskySolve", "x2", "f"), "CholeskySolve", "x2")
        return wrap(jsl.cho_solve((c, not self.upper), b))


class MatrixInverse(Primitive):
    """``ops.MatrixInverse(adjoint=False)(x)``: the inverse (of the adjoint with ``adjoint``)."""

    @prim_attr_register
    def __init__(self, adjoint: bool = False) -> None:
        check_bool(adjoint, "adjoint", "MatrixInverse")

    def __call__(self, x) -> Tensor:
        a = _square(arr(x, "MatrixInverse", "x", "fc"), "MatrixInverse")
        return wrap(jnp.linalg.inv(_adj(a) if self.adjoint else a))


class MatrixDeterminant(Primitive):
    """``ops.MatrixDeterminant()(x)``: the determinant of each square matrix."""

    def __call__(self, x) -> Tensor:
        return wrap(jnp.linalg.det(_square(arr(x, "MatrixDeterminant", "x", "fc"), "MatrixDeterminant")))


class LogMatrixDeterminant(Primitive):
    """``ops.LogMatrixDeterminant()(x)``: ``(sign, log|det|)``."""

    def __call__(self, x) -> tuple:
        sign, logdet = jnp.linalg.slogdet(_square(arr(x, "LogMatrixDeterminant", "x", "fc"), "LogMatrixDeterminant"))
        return wrap(sign), wrap(logdet)


class MatrixSolve(Primitive):
    """``ops.MatrixSolve(adjoint=False)(matrix, rhs)``: ``X`` with ``matrix @ X = rhs`` (``matrix`` adjointed)."""

    @prim_attr_register
    def __init__(self, adjoint: bool = False) -> None:
        check_bool(adjoint, "adjoint", "MatrixSolve")

    def __call__(self, matrix, rhs) -> Tensor:
        m = _square(arr(matrix, "MatrixSolve", "matrix", "fc"), "MatrixSolve", "matrix")
        return wrap(jnp.linalg.solve(_adj(m) if self.adjoint else m, arr(rhs, "MatrixSolve", "rhs", "fc")))


class MatrixTriangularSolve(Primitive):
    """``ops.MatrixTriangularSolve(lower=True, adjoint=False)(matrix, rhs)``: triangular ``matrix @ X = rhs``."""

    @prim_attr_register
    def __init__(self, lower: bool = True, adjoint: bool = False) -> None:
        check_bool(lower, "lower", "MatrixTriangularSolve")
        check_bool(adjoint, "adjoint", "MatrixTriangularSolve")

    def __call__(self, matrix, rhs) -> Tensor:
        m = _square(arr(matrix, "MatrixTriangularSolve", "matrix", "fc"), "MatrixTriangularSolve", "matrix")
        b = arr(rhs, "MatrixTriangularSolve", "rhs", "fc")
        return wrap(jsl.solve_triangular(m, b, lower=self.lower, trans="C" if self.adjoint else 0))


class Qr(Primitive):
    """``ops.Qr(full_matrices=False)(x)``: ``(Q, R)``."""

    @prim_attr_register
    def __init__(self, full_matrices: bool = False) -> None:
        check_bool(full_matrices, "full_matrices", "Qr")

    def __call__(self, x) -> tuple:
        q, r = jnp.linalg.qr(arr(x, "Qr", "x", "fc"), mode="complete" if self.full_matrices else "reduced")
        return wrap(q), wrap(r)


class Svd(Primitive):
    """``ops.Svd(full_matrices=False, compute_uv=True)(input_x)``: ``(s, u, v)``; without ``compute_uv`` ``u`` and
    ``v`` are 1-element zero Tensors, as in MindSpore."""

    @prim_attr_register
    def __init__(self, full_matrices: bool = False, compute_uv: bool = True) -> None:
        check_bool(full_matrices, "full_matrices", "Svd")
        check_bool(compute_uv, "compute_uv", "Svd")

    def __call__(self, input_x) -> tuple:
        a = arr(input_x, "Svd", "input_x", "fc")
        if not self.compute_uv:
            s = jnp.linalg.svd(a, compute_uv=False)
            return wrap(s), wrap(jnp.zeros(1, a.dtype)), wrap(jnp.zeros(1, a.dtype))
        u, s, vh = jnp.linalg.svd(a, full_matrices=self.full_matrices)
        return wrap(s), wrap(u), wrap(_adj(vh))


class MatrixExp(Primitive):
    """``ops.MatrixExp()(x)``: the matrix exponential."""

    def __call__(self, x) -> Tensor:
        return wrap(jsl.expm(_square(arr(x, "MatrixExp", "x", "fc"), "MatrixExp")))


class MatrixPower(Primitive):
    """``ops.MatrixPower(n)(x)``: ``x`` to the integer power ``n`` (negative: of the inverse)."""

    @prim_attr_register
    def __init__(self, n: int) -> None:
        if isinstance(n, bool) or not isinstance(n, int):
            raise TypeError(msg("MatrixPower", "n", "an int", n))

    def __call__(self, x) -> Tensor:
        return wrap(jnp.linalg.matrix_power(_square(arr(x, "MatrixPower", "x", "f"), "MatrixPower"), self.n))


class TridiagonalMatMul(Primitive):
    """``ops.TridiagonalMatMul()(superdiag, maindiag, subdiag, rhs)``: the tridiagonal matrix times ``rhs``;
    the diagonals have shape ``(..., 1, M)`` (``superdiag[-1]`` and ``subdiag[0]`` unused)."""

    def __call__(self, superdiag, maindiag, subdiag, rhs) -> Tensor:
        names = ("superdiag", "maindiag", "subdiag")
        diags = [arr(t, "TridiagonalMatMul", n, "fc") for t, n in zip((superdiag, maindiag, subdiag), names)]
        for n, d in zip(names, diags):
            if d.ndim < 2:
                raise ValueError(f"For primitive[TridiagonalMatMul], the dimension of '{n}' must be greater than or "
                                 f"equal to 2 , but got {d.ndim}.")
        b = arr(rhs, "TridiagonalMatMul", "rhs", "fc")
        sup, main, sub = (d[..., 0, :, None] for d in diags)
        zero = jnp.zeros_like(b[..., :1, :])
        below = jnp.concatenate([b[..., 1:, :], zero], axis=-2)
        above = jnp.concatenate([zero, b[..., :-1, :]], axis=-2)
        return wrap(main * b + sup * below + sub * above)


# ---------------------------------------------------------------------------------- windows
def _window_length(window_length, where: str, ndim_ok: tuple) -> int:
    a = arr(window_length, where, "window_length", "i")
    if a.ndim not in ndim_ok:
        raise ValueError(f"For '{where}', the dim of window_length must be {ndim_ok[0]}, but got: {a.ndim}.")
    n = int(np.asarray(a).reshape(-1)[0])
    if n < 0:
        raise ValueError(f"For '{where}', the window_length should be >= 0, but got {n}.")
    return n


class _Window(Primitive):
    _ndim: tuple = (0,)

    def _values(self, k, n):
        raise RuntimeError("a window defines _values")

    def __call__(self, window_length) -> Tensor:
        n = _window_length(window_length, self.name, self._ndim)
        if n == 1:
            return wrap(jnp.ones(1, self.dtype.np_dtype))
        denom = n if self.periodic else n - 1
        k = jnp.arange(n, dtype=jnp.float64 if self.dtype == mstype.float64 else jnp.float32)
        return wrap(self._values(k, denom).astype(self.dtype.np_dtype))


class BartlettWindow(_Window):
    """``ops.BartlettWindow(periodic=True, dtype=float32)(window_length)``: the triangular window (0-d length)."""

    @prim_attr_register
    def __init__(self, periodic: bool = True, dtype=mstype.float32) -> None:
        check_bool(periodic, "periodic", "BartlettWindow")

    def _values(self, k, n):
        return 1 - jnp.abs(2 * k / n - 1)


class BlackmanWindow(_Window):
    """``ops.BlackmanWindow(periodic=True, dtype=float32)(window_length)``: the Blackman window (0-d length)."""

    @prim_attr_register
    def __init__(self, periodic: bool = True, dtype=mstype.float32) -> None:
        check_bool(periodic, "periodic", "BlackmanWindow")

    def _values(self, k, n):
        return 0.42 - 0.5 * jnp.cos(2 * jnp.pi * k / n) + 0.08 * jnp.cos(4 * jnp.pi * k / n)


class HammingWindow(_Window):
    """``ops.HammingWindow(periodic=True, alpha=0.54, beta=0.46, dtype=float32)(length)``: (1-d length)."""

    _ndim = (1,)

    @prim_attr_register
    def __init__(self, periodic: bool = True, alpha: float = 0.54, beta: float = 0.46, dtype=mstype.float32) -> None:
        check_bool(periodic, "periodic", "HammingWindow")

    def _values(self, k, n):
        return self.alpha - self.beta * jnp.cos(2 * jnp.pi * k / n)


# ---------------------------------------------------------------------------------- random
def _shape(shape, where: str) -> tuple:
    if isinstance(shape, Tensor):
        a = shape._jax()
        if isinstance(a, jax.core.Tracer):
            raise ValueError(f"For '{where}', the 'shape' must be known when tracing: pass a tuple of ints.")
        return tuple(int(v) for v in np.asarray(a).reshape(-1))
    out = pyint_tuple(shape, where, "shape")
    if any(v < 0 for v in out):
        raise ValueError(msg(where, "shape", "a tuple of ints >= 0", shape))
    return out


class _Seeded(Primitive):
    @prim_attr_register
    def __init__(self, seed: int = 0, seed2: int = 0) -> None:
        for arg, value in (("seed", seed), ("seed2", seed2)):
            if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                raise ValueError(msg(self.name, arg, "an int >= 0", value))


class StandardNormal(_Seeded):
    """``ops.StandardNormal(seed=0, seed2=0)(shape)``: float32 samples of N(0, 1)."""

    def __call__(self, shape) -> Tensor:
        return wrap(jax.random.normal(next_key(), _shape(shape, "StandardNormal"), jnp.float32))


class StandardLaplace(_Seeded):
    """``ops.StandardLaplace(seed=0, seed2=0)(shape)``: float32 samples of Laplace(0, 1)."""

    def __call__(self, shape) -> Tensor:
        return wrap(jax.random.laplace(next_key(), _shape(shape, "StandardLaplace"), jnp.float32))


class UniformReal(_Seeded):
    """``ops.UniformReal(seed=0, seed2=0)(shape)``: float32 samples of U[0, 1)."""

    def __call__(self, shape) -> Tensor:
        return wrap(jax.random.uniform(next_key(), _shape(shape, "UniformReal"), jnp.float32))


class UniformInt(_Seeded):
    """``ops.UniformInt(seed=0, seed2=0)(shape, minval, maxval)``: int32 samples of U[minval, maxval)."""

    def __call__(self, shape, minval, maxval) -> Tensor:
        lo, hi = arr(minval, "UniformInt", "minval", "i"), arr(maxval, "UniformInt", "maxval", "i")
        return wrap(jax.random.randint(next_key(), _shape(shape, "UniformInt"), lo, hi, jnp.int32))


class TruncatedNormal(Primitive):
    """``ops.TruncatedNormal(dtype=float32, seed=0, seed2=0)(shape)``: N(0, 1) samples truncated to [-2, 2]."""

    @prim_attr_register
    def __init__(self, dtype=mstype.float32, seed: int = 0, seed2: int = 0) -> None:
        pass

    def __call__(self, shape) -> Tensor:
        return wrap(jax.random.truncated_normal(next_key(), -2.0, 2.0, _shape(shape, "TruncatedNormal"),
                                                self.dtype.np_dtype))


class Bernoulli(Primitive):
    """``ops.Bernoulli(seed=-1, offset=0)(x, p)``: 0/1 samples with probability ``p``, in ``x``'s shape and dtype."""

    @prim_attr_register
    def __init__(self, seed: int = -1, offset: int = 0) -> None:
        pass

    def __call__(self, x, p=0.5) -> Tensor:
        a = arr(x, "Bernoulli", "x")
        prob = arr(p, "Bernoulli", "p", "f") if isinstance(p, Tensor) else jnp.asarray(p, jnp.float32)
        return wrap(jax.random.bernoulli(next_key(), prob, a.shape).astype(a.dtype))


class Gamma(_Seeded):
    """``ops.Gamma(seed=0, seed2=0)(shape, alpha, beta)``: Gamma(alpha, rate=beta) samples of shape
    ``shape + broadcast(alpha, beta).shape``."""

    def __call__(self, shape, alpha, beta) -> Tensor:
        a, b = arr(alpha, "Gamma", "alpha", "f"), arr(beta, "Gamma", "beta", "f")
        ab = jnp.broadcast_shapes(a.shape, b.shape)
        s = _shape(shape, "Gamma") + ab
        return wrap((jax.random.gamma(next_key(), jnp.broadcast_to(a, s)) / b).astype(a.dtype))


class RandomGamma(_Seeded):
    """``ops.RandomGamma(seed=0, seed2=0)(shape, alpha)``: Gamma(alpha) samples of shape ``shape + alpha.shape``."""

    def __call__(self, shape, alpha) -> Tensor:
        a = arr(alpha, "RandomGamma", "alpha", "f")
        s = _shape(shape, "RandomGamma") + a.shape
        return wrap(jax.random.gamma(next_key(), jnp.broadcast_to(a, s)).astype(a.dtype))


class Poisson(_Seeded):
    """``ops.Poisson(seed=0, seed2=0)(shape, mean)``: int32 Poisson samples of shape ``shape + mean.shape``."""

    def __call__(self, shape, mean) -> Tensor:
        m = arr(mean, "Poisson", "mean", "f")
        s = _shape(shape, "Poisson") + m.shape
        return wrap(jax.random.poisson(next_key(), jnp.broadcast_to(m, s), s).astype(jnp.int32))


class RandomPoisson(Primitive):
    """``ops.RandomPoisson(seed=0, seed2=0, dtype=int64)(shape, rate)``: samples of shape ``shape + rate.shape``."""

    @prim_attr_register
    def __init__(self, seed: int = 0, seed2: int = 0, dtype=mstype.int64) -> None:
        pass

    def __call__(self, shape, rate) -> Tensor:
        r = arr(rate, "RandomPoisson", "rate", "f")
        s = _shape(shape, "RandomPoisson") + r.shape
        return wrap(jax.random.poisson(next_key(), jnp.broadcast_to(r, s), s).astype(self.dtype.np_dtype))


class Multinomial(Primitive):
    """``ops.Multinomial(seed=0, seed2=0, dtype=int32)(x, num_samples)``: class indices drawn from each row's
    (unnormalized) probabilities ``x``, with replacement."""

    @prim_attr_register
    def __init__(self, seed: int = 0, seed2: int = 0, dtype=mstype.int32) -> None:
        pass

    def __call__(self, x, num_samples) -> Tensor:
        p = arr(x, "Multinomial", "x", "f")
        n = int(scalar_of(num_samples, "Multinomial", "num_samples"))
        logits = jnp.log(p)
        out = jax.random.categorical(next_key(), logits, axis=-1, shape=(n,) + p.shape[:-1])
        return wrap(jnp.moveaxis(out, 0, -1).astype(self.dtype.np_dtype))


class RandomCategorical(Primitive):
    """``ops.RandomCategorical(dtype=int64)(logits, num_sample, seed=0)``: ``num_sample`` class indices per row."""

    @prim_attr_register
    def __init__(self, dtype=mstype.int64) -> None:
        pass

    def __call__(self, logits, num_sample, seed=0) -> Tensor:
        lg = arr(logits, "RandomCategorical", "logits", "f")
        n = int(scalar_of(num_sample, "RandomCategorical", "num_sample"))
        out = jax.random.categorical(next_key(), lg, axis=-1, shape=(n,) + lg.shape[:-1])
        return wrap(jnp.moveaxis(out, 0, -1).astype(self.dtype.np_dtype))


class Randperm(Primitive):
    """``ops.Randperm(max_length=1, pad=-1, dtype=int32)(n)``: a random permutation of ``range(n)`` padded with
    ``pad`` to ``max_length``."""

    @prim_attr_register
    def __init__(self, max_length: int = 1, pad: int = -1, dtype=mstype.int32) -> None:
        if isinstance(max_length, bool) or not isinstance(max_length, int) or max_length < 1:
            raise ValueError(msg("Randperm", "max_length", "an int >= 1", max_length))

    def __call__(self, n) -> Tensor:
        k = int(scalar_of(n, "Randperm", "n"))
        if not 0 <= k <= self.max_length:
            raise ValueError(f"For 'Randperm', the 'n' should be in [0, max_length={self.max_length}], but got {k}.")
        perm = jax.random.permutation(next_key(), k)
        out = jnp.full(self.max_length, self.pad).at[:k].set(perm)
        return wrap(out.astype(self.dtype.np_dtype))


class RandomShuffle(_Seeded):
    """``ops.RandomShuffle(seed=0, seed2=0)(x)``: ``x`` with its first axis permuted at random."""

    def __call__(self, x) -> Tensor:
        a = arr(x, "RandomShuffle", "x")
        return wrap(jax.random.permutation(next_key(), a, axis=0) if a.ndim else a)


class Cauchy(Primitive):
    """``ops.Cauchy(size, median=0.0, sigma=1.0)()``: float32 Cauchy samples of shape ``size``."""

    @prim_attr_register
    def __init__(self, size, median: float = 0.0, sigma: float = 1.0) -> None:
        pyint_tuple(size, "Cauchy", "size")

    def __call__(self) -> Tensor:
        s = pyint_tuple(self.size, "Cauchy", "size")
        return wrap(self.median + self.sigma * jax.random.cauchy(next_key(), s, jnp.float32))


class LogNormalReverse(Primitive):
    """``ops.LogNormalReverse(mean=1.0, std=2.0)(input)``: ``exp(N(mean, std))`` samples in ``input``'s shape/dtype."""

    @prim_attr_register
    def __init__(self, mean: float = 1.0, std: float = 2.0) -> None:
        pass

    def __call__(self, input) -> Tensor:  # noqa: A002
        a = arr(input, "LogNormalReverse", "input", "f")
        z = jax.random.normal(next_key(), a.shape, jnp.float32)
        return wrap(jnp.exp(self.mean + self.std * z).astype(a.dtype))


class ParameterizedTruncatedNormal(_Seeded):
    """``ops.ParameterizedTruncatedNormal(seed=0, seed2=0)(shape, mean, stdevs, min, max)``: per batch row,
    N(mean, stdev) truncated to ``[min, max]``."""

    def __call__(self, shape, mean, stdevs, min, max) -> Tensor:  # noqa: A002
        s = _shape(shape, "ParameterizedTruncatedNormal")
        m, sd, lo, hi = (arr(t, "ParameterizedTruncatedNormal", n, "f") for t, n in
                         ((mean, "mean"), (stdevs, "stdevs"), (min, "min"), (max, "max")))
        col = (-1,) + (1,) * (len(s) - 1)
        m, sd, lo, hi = (t.reshape(col) for t in (m, sd, lo, hi))
        z = jax.random.truncated_normal(next_key(), (lo - m) / sd, (hi - m) / sd, s, m.dtype)
        return wrap(m + sd * z)


class RandomChoiceWithMask(_Seeded):
    """``ops.RandomChoiceWithMask(count=256, seed=0, seed2=0)(input_x)``: ``count`` random coordinates of the
    True elements of a bool Tensor (int32, ``(count, ndim)``) and a bool mask of which rows are real."""

    @prim_attr_register
    def __init__(self, count: int = 256, seed: int = 0, seed2: int = 0) -> None:
        if isinstance(count, bool) or not isinstance(count, int) or count < 1:
            raise ValueError(msg("RandomChoiceWithMask", "count", "an int >= 1", count))

    def __call__(self, input_x) -> tuple:
        a = arr(input_x, "RandomChoiceWithMask", "input_x", "b")
        flat = a.reshape(-1)
        noise = jax.random.uniform(next_key(), flat.shape)
        order = jnp.argsort(jnp.where(flat, noise, 2.0))[: self.count]
        valid = flat[order] if flat.size >= self.count else jnp.concatenate(
            [flat[order], jnp.zeros(self.count - flat.size, bool)])
        order = jnp.pad(order, (0, self.count - order.shape[0]))
        coords = jnp.stack(jnp.unravel_index(order, a.shape), axis=-1).astype(jnp.int32)
        return wrap(jnp.where(valid[:, None], coords, 0)), wrap(valid)


__all__ = ["Cholesky", "CholeskyInverse", "CholeskySolve", "MatrixInverse", "MatrixDeterminant",
           "LogMatrixDeterminant", "MatrixSolve", "MatrixTriangularSolve", "Qr", "Svd", "MatrixExp", "MatrixPower",
           "TridiagonalMatMul", "BartlettWindow", "BlackmanWindow", "HammingWindow", "StandardNormal",
           "StandardLaplace", "UniformReal", "UniformInt", "TruncatedNormal", "Bernoulli", "Gamma", "RandomGamma",
           "Poisson", "RandomPoisson", "Multinomial", "RandomCategorical", "Randperm", "RandomShuffle", "Cauchy",
           "LogNormalReverse", "ParameterizedTruncatedNormal", "RandomChoiceWithMask"]
