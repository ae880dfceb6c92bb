"""More math operator classes of ``ops.operations``: elementwise special functions, bitwise ops,
comparisons and reductions (``ops.Addcdiv``, ``ops.BitwiseAnd``, ``ops.Cummax``, ``ops.ReduceStd``, ...).

Each is a :class:`Primitive` over ``jax.numpy`` / ``jax.scipy.special`` with MindSpore 2.10's
attributes, output dtypes and exception types (``tests/ops/test_op_families.py`` checks them
against MindSpore on the same inputs).
"""

from __future__ import annotations

import math

import jax
import jax.numpy as jnp
import jax.scipy.special as jsp
import numpy as np

from sporax.common._validation import check_bool, msg
from sporax.common.tensor import Tensor
from sporax.ops.function import math_func as M
from sporax.ops.operations._prim_util import arr, floatify, int_kinds, scalar_of, wrap
from sporax.ops.primitive import Primitive, prim_attr_register

_BIN = M._binary


def _elementwise(name: str, fn, allowed: str = "f", int_to_float: bool = False, doc: str = ""):
    def __call__(self, x) -> Tensor:
        a = arr(x, name, "x", allowed)
        return wrap(fn(floatify(a) if int_to_float else a))

    return type(name, (Primitive,), {"__call__": __call__, "__module__": __name__,
                                     "__doc__": doc or f"``ops.{name}()(x)``: elementwise, on float Tensors."})


def _binary_float(name: str, fn, doc: str = ""):
    def __call__(self, x1, x2) -> Tensor:
        return _BIN(fn, x1, x2)

    return type(name, (Primitive,), {"__call__": __call__, "__module__": __name__,
                                     "__doc__": doc or f"``ops.{name}()(x1, x2)``: elementwise, broadcasting."})


def _sinc(a):
    return jnp.sinc(a)


Sinc = _elementwise("Sinc", _sinc, "fib", True, "``ops.Sinc()(x)``: ``sin(pi x) / (pi x)`` (1 at 0); ints give float32.")
Lgamma = _elementwise("Lgamma", jsp.gammaln)
Digamma = _elementwise("Digamma", jsp.digamma)
BesselI0 = _elementwise("BesselI0", jsp.i0)
BesselI0e = _elementwise("BesselI0e", jsp.i0e)
BesselI1 = _elementwise("BesselI1", jsp.i1)
BesselI1e = _elementwise("BesselI1e", jsp.i1e)
def _bessel_j(n: int):
    """``J_n`` from Bessel's integral ``(1/2pi) * integral of cos(n t - x sin t)`` over a period: the
    trapezoid rule on a periodic integrand is exact to float precision for ``|x| < ~N/2``; beyond
    that, the large-argument asymptotic form."""
    def fn(a):
        taus = jnp.arange(256) * (2 * math.pi / 256)  # not at import: no JAX call may precede distributed init
        x = a.astype(jnp.float32)
        series = jnp.mean(jnp.cos(n * taus - x[..., None] * jnp.sin(taus)), axis=-1)
        big = jnp.abs(x) > 100
        ax = jnp.where(big, jnp.abs(x), 1.0)
        asym = jnp.sqrt(2 / (math.pi * ax)) * jnp.cos(ax - n * math.pi / 2 - math.pi / 4) * jnp.where(
            (x < 0) & (n % 2 == 1), -1.0, 1.0)
        return jnp.where(big, asym, series).astype(a.dtype)

    return fn


BesselJ0 = _elementwise("BesselJ0", _bessel_j(0))
BesselJ1 = _elementwise("BesselJ1", _bessel_j(1))
Hypot = _binary_float("Hypot", jnp.hypot)
NextAfter = _binary_float("NextAfter", jnp.nextafter)
Igamma = _binary_float("Igamma", jsp.gammainc, "``ops.Igamma()(a, x)``: the regularized lower incomplete gamma.")
Igammac = _binary_float("Igammac", jsp.gammaincc, "``ops.Igammac()(a, x)``: the regularized upper incomplete gamma.")
Heaviside = _binary_float("Heaviside", lambda x, v: jnp.where(x == 0, v, (x > 0).astype(x.dtype)),
                          "``ops.Heaviside()(x, values)``: 0 below 0, 1 above, ``values`` at 0.")
MulNoNan = _binary_float("MulNoNan", lambda x, y: jnp.where(y == 0, jnp.zeros_like(x * y), x * y),
                         "``ops.MulNoNan()(x, y)``: ``x * y``, 0 where ``y`` is 0 (even if ``x`` is nan/inf).")
Fmax = _binary_float("Fmax", jnp.fmax, "``ops.Fmax()(x1, x2)``: the maximum, ignoring nan.")
Fmin = _binary_float("Fmin", jnp.fmin, "``ops.Fmin()(x1, x2)``: the minimum, ignoring nan.")


class TensorAdd(Primitive):
    """``ops.TensorAdd()(x, y)``: MindSpore 1.x's name of ``ops.Add``."""

    def __call__(self, x, y) -> Tensor:
        from sporax.ops import functional as F

        return F.add(x, y)


class Addcdiv(Primitive):
    """``ops.Addcdiv()(input_data, x1, x2, value)``: ``input_data + value * x1 / x2``."""

    def __call__(self, input_data, x1, x2, value) -> Tensor:
        return _BIN(jnp.add, input_data, _BIN(jnp.multiply, value, _BIN(jnp.divide, x1, x2)))


class Addcmul(Primitive):
    """``ops.Addcmul()(input_data, x1, x2, value)``: ``input_data + value * x1 * x2``."""

    def __call__(self, input_data, x1, x2, value) -> Tensor:
        return _BIN(jnp.add, input_data, _BIN(jnp.multiply, value, _BIN(jnp.multiply, x1, x2)))


class Lerp(Primitive):
    """``ops.Lerp()(start, end, weight)``: ``start + weight * (end - start)``; ``weight`` a float or Tensor."""

    def __call__(self, start, end, weight) -> Tensor:
        s = arr(start, "Lerp", "start", "f")
        e = arr(end, "Lerp", "end", "f")
        w = arr(weight, "Lerp", "weight", "f") if isinstance(weight, Tensor) else jnp.asarray(weight, s.dtype)
        return wrap((s + w * (e - s)).astype(s.dtype))


def _gcd_like(name, fn):
    def __call__(self, x1, x2) -> Tensor:
        a, b = arr(x1, name, "x1"), arr(x2, name, "x2")
        for t in (a, b):
            if str(t.dtype) not in ("int16", "int32", "int64"):
                raise TypeError(f"For Primitive[{name}], the type of the input tensor must be [Int16, Int32, Int64], "
                                f"but got {Tensor._wrap(t).dtype}!")
        dt = jnp.promote_types(a.dtype, b.dtype)
        return wrap(fn(a.astype(dt), b.astype(dt)))

    return type(name, (Primitive,), {"__call__": __call__, "__module__": __name__,
                                     "__doc__": f"``ops.{name}()(x1, x2)``: elementwise on int16/32/64 Tensors."})


Gcd = _gcd_like("Gcd", jnp.gcd)
Lcm = _gcd_like("Lcm", jnp.lcm)


class Polygamma(Primitive):
    """``ops.Polygamma()(a, x)``: the ``a``-th derivative of digamma (``a`` an int Tensor)."""

    def __call__(self, a, x) -> Tensor:
        n = arr(a, "Polygamma", "a", "i")
        v = arr(x, "Polygamma", "x", "f")
        return wrap(jsp.polygamma(jnp.broadcast_to(n, v.shape).astype(jnp.int32), v).astype(v.dtype))


class Logit(Primitive):
    """``ops.Logit(eps=-1.0)(x)``: ``log(x / (1 - x))``, ``x`` clipped to ``[eps, 1 - eps]`` when ``eps >= 0``."""

    @prim_attr_register
    def __init__(self, eps: float = -1.0) -> None:
        if isinstance(eps, bool) or not isinstance(eps, float):
            raise TypeError(msg("Logit", "eps", "a float", eps))

    def __call__(self, x) -> Tensor:
        a = arr(x, "Logit", "x", "f")
        if self.eps >= 0:
            a = jnp.clip(a, self.eps, 1 - self.eps)
        return wrap(jnp.log(a / (1 - a)).astype(a.dtype))


class NanToNum(Primitive):
    """``ops.NanToNum(nan=None, posinf=None, neginf=None)(x)``: nan/inf replaced (defaults 0, the dtype's max/min)."""

    @prim_attr_register
    def __init__(self, nan=None, posinf=None, neginf=None) -> None:
        for arg, value in (("nan", nan), ("posinf", posinf), ("neginf", neginf)):
            if value is not None and (isinstance(value, bool) or not isinstance(value, (int, float))):
                raise TypeError(msg("NanToNum", arg, "a float or None", value))

    def __call__(self, x) -> Tensor:
        a = arr(x, "NanToNum", "x", "f")
        return wrap(jnp.nan_to_num(a, nan=0.0 if self.nan is None else self.nan, posinf=self.posinf,
                                   neginf=self.neginf))


class IsClose(Primitive):
    """``ops.IsClose(rtol=1e-05, atol=1e-08, equal_nan=False)(input, other)``: ``|a - b| <= atol + rtol * |b|``."""

    @prim_attr_register
    def __init__(self, rtol: float = 1e-05, atol: float = 1e-08, equal_nan: bool = False) -> None:
        check_bool(equal_nan, "equal_nan", "IsClose")

    def __call__(self, input, other) -> Tensor:  # noqa: A002
        a, b = arr(input, "IsClose", "input"), arr(other, "IsClose", "other")
        return wrap(jnp.isclose(a, b, rtol=self.rtol, atol=self.atol, equal_nan=self.equal_nan))


class ApproximateEqual(Primitive):
    """``ops.ApproximateEqual(tolerance=1e-05)(x, y)``: ``|x - y| < tolerance``."""

    @prim_attr_register
    def __init__(self, tolerance: float = 1e-05) -> None:
        if isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)):
            raise TypeError(msg("ApproximateEqual", "tolerance", "a float", tolerance))

    def __call__(self, x, y) -> Tensor:
        a, b = arr(x, "ApproximateEqual", "x", "f"), arr(y, "ApproximateEqual", "y", "f")
        return wrap(jnp.abs(a - b) < self.tolerance)


class Betainc(Primitive):
    """``ops.Betainc()(a, b, x)``: the regularized incomplete beta function."""

    def __call__(self, a, b, x) -> Tensor:
        va, vb, vx = arr(a, "Betainc", "a", "f"), arr(b, "Betainc", "b", "f"), arr(x, "Betainc", "x", "f")
        return wrap(jsp.betainc(va, vb, vx).astype(vx.dtype))


class Mvlgamma(Primitive):
    """``ops.Mvlgamma(p)(x)``: the multivariate log-gamma of dimension ``p``."""

    @prim_attr_register
    def __init__(self, p: int) -> None:
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ValueError(msg("Mvlgamma", "p", "an int >= 1", p))

    def __call__(self, x) -> Tensor:
        a = arr(x, "Mvlgamma", "x", "f")
        if bool(jnp.any(a <= (self.p - 1) / 2)) if not isinstance(a, jax.core.Tracer) else False:
            raise ValueError(f"For 'Mvlgamma', all elements of 'x' must be greater than (p-1)/2 = {(self.p - 1) / 2}.")
        return wrap(jsp.multigammaln(a, self.p).astype(a.dtype))


class Real(Primitive):
    """``ops.Real()(input)``: the real part (a real Tensor is returned as it is)."""

    def __call__(self, input) -> Tensor:  # noqa: A002
        return wrap(jnp.real(arr(input, "Real", "input")))


class Imag(Primitive):
    """``ops.Imag()(input)``: the imaginary part (zeros for a real Tensor)."""

    def __call__(self, input) -> Tensor:  # noqa: A002
        return wrap(jnp.imag(arr(input, "Imag", "input")))


class Conj(Primitive):
    """``ops.Conj()(input)``: the complex conjugate."""

    def __call__(self, input) -> Tensor:  # noqa: A002
        return wrap(jnp.conj(arr(input, "Conj", "input")))


class Complex(Primitive):
    """``ops.Complex()(real, imag)``: a complex64 (float32 parts) or complex128 (float64) Tensor."""

    def __call__(self, real, imag) -> Tensor:
        r, i = arr(real, "Complex", "real", "f"), arr(imag, "Complex", "imag", "f")
        if r.dtype != i.dtype:
            raise TypeError("For 'Complex', 'real' and 'imag' should have the same dtype.")
        return wrap(jax.lax.complex(r, i))


class Angle(Primitive):
    """``ops.Angle()(input)``: the argument of a complex Tensor."""

    def __call__(self, input) -> Tensor:  # noqa: A002
        return wrap(jnp.angle(arr(input, "Angle", "input", "c")))


class ComplexAbs(Primitive):
    """``ops.ComplexAbs()(x)``: the modulus of a complex Tensor."""

    def __call__(self, x) -> Tensor:
        return wrap(jnp.abs(arr(x, "ComplexAbs", "x", "c")))


class Polar(Primitive):
    """``ops.Polar()(abs, angle)``: ``abs * (cos(angle) + i sin(angle))``."""

    def __call__(self, abs, angle) -> Tensor:  # noqa: A002
        r, t = arr(abs, "Polar", "abs", "f"), arr(angle, "Polar", "angle", "f")
        return wrap(jax.lax.complex(r * jnp.cos(t), r * jnp.sin(t)))


# ---------------------------------------------------------------------------------- bitwise
_BITWISE_TYPES = ("bool", "int16", "int32", "int64", "int8", "uint16", "uint32", "uint64", "uint8")


def _bitwise(name: str, fn):
    def __call__(self, x, y) -> Tensor:
        a, b = arr(x, name, "x"), arr(y, name, "y")
        int_kinds(a, name, "x", _BITWISE_TYPES)
        int_kinds(b, name, "y", _BITWISE_TYPES)
        dt = jnp.promote_types(a.dtype, b.dtype)
        return wrap(fn(a.astype(dt), b.astype(dt)))

    return type(name, (Primitive,), {"__call__": __call__, "__module__": __name__,
                                     "__doc__": f"``ops.{name}()(x, y)``: elementwise on bool/int Tensors."})


BitwiseAnd = _bitwise("BitwiseAnd", jnp.bitwise_and)
BitwiseOr = _bitwise("BitwiseOr", jnp.bitwise_or)
BitwiseXor = _bitwise("BitwiseXor", jnp.bitwise_xor)
LeftShift = _bitwise("LeftShift", jnp.left_shift)
RightShift = _bitwise("RightShift", jnp.right_shift)


class PopulationCount(Primitive):
    """``ops.PopulationCount()(input_x)``: the number of set bits per element (uint8)."""

    def __call__(self, input_x) -> Tensor:
        a = arr(input_x, "PopulationCount", "input_x")
        int_kinds(a, "PopulationCount", "input_x", ("int16", "int32", "int64", "int8", "uint16", "uint32", "uint64",
                                                    "uint8"))
        return wrap(jax.lax.population_count(a).astype(jnp.uint8))


# ---------------------------------------------------------------------------------- reductions
class EqualCount(Primitive):
    """``ops.EqualCount()(x, y)``: the number of equal elements, as a 1-element Tensor of ``x``'s dtype."""

    def __call__(self, x, y) -> Tensor:
        a, b = arr(x, "EqualCount", "x"), arr(y, "EqualCount", "y")
        if a.shape != b.shape:
            raise ValueError(f"For 'EqualCount', 'x' and 'y' should have the same shape, but got {a.shape} and "
                             f"{b.shape}.")
        return wrap(jnp.sum(a == b).astype(a.dtype).reshape(1))


class ReduceStd(Primitive):
    """``ops.ReduceStd(axis=[], unbiased=True, keep_dims=False)(input_x)``: ``(std, mean)``."""

    @prim_attr_register
    def __init__(self, axis=[], unbiased: bool = True, keep_dims: bool = False) -> None:  # noqa: B006
        check_bool(unbiased, "unbiased", "ReduceStd")
        check_bool(keep_dims, "keep_dims", "ReduceStd")

    def __call__(self, input_x) -> tuple:
        a = arr(input_x, "ReduceStd", "input_x", "f")
        ax = M.norm_axis(self.axis, a.ndim, "ReduceStd")
        std = jnp.std(a, axis=ax, ddof=1 if self.unbiased else 0, keepdims=self.keep_dims)
        return wrap(std.astype(a.dtype)), wrap(jnp.mean(a, axis=ax, keepdims=self.keep_dims).astype(a.dtype))


class CountNonZero(Primitive):
    """``ops.CountNonZero(dims=None)(x)``: the number of non-zero elements (int64) over ``dims``."""

    @prim_attr_register
    def __init__(self, dims=None) -> None:
        if dims is not None and not isinstance(dims, (int, list, tuple)):
            raise TypeError(msg("CountNonZero", "dims", "an int, a list or a tuple of ints", dims))

    def __call__(self, x) -> Tensor:
        a = arr(x, "CountNonZero", "x")
        ax = M.norm_axis(self.dims, a.ndim, "CountNonZero")
        return wrap(jnp.sum(a != 0, axis=ax).astype(jnp.int64))


def _cum_extreme(name: str, better, index_dtype):
    @prim_attr_register
    def __init__(self, axis: int) -> None:
        if isinstance(axis, bool) or not isinstance(axis, int):
            raise TypeError(msg(name, "axis", "an int", axis))

    def __call__(self, x) -> tuple:
        a = arr(x, name, "x", "fi")
        ax = self.axis % max(a.ndim, 1)
        n = a.shape[ax]
        idx = jnp.broadcast_to(jnp.arange(n).reshape([n if i == ax else 1 for i in range(a.ndim)]), a.shape)

        def step(c, y):
            take = better(y[0], c[0]) | (y[0] == c[0])
            return (jnp.where(take, y[0], c[0]), jnp.where(take, y[1], c[1]))

        vals, ids = jax.lax.associative_scan(step, (a, idx), axis=ax)
        return wrap(vals), wrap(ids.astype(index_dtype))

    doc = f"``ops.{name}(axis)(x)``: running extreme along ``axis`` and its (last) index ({index_dtype.__name__})."
    return type(name, (Primitive,), {"__init__": __init__, "__call__": __call__, "__module__": __name__,
                                     "__doc__": doc})


Cummax = _cum_extreme("Cummax", jnp.greater, jnp.int64)
Cummin = _cum_extreme("Cummin", jnp.less, jnp.int32)  # MindSpore 2.10: int64 indices for Cummax, int32 for Cummin


class CumulativeLogsumexp(Primitive):
    """``ops.CumulativeLogsumexp(exclusive=False, reverse=False)(x, axis)``: running ``log(sum(exp))``."""

    @prim_attr_register
    def __init__(self, exclusive: bool = False, reverse: bool = False) -> None:
        check_bool(exclusive, "exclusive", "CumulativeLogsumexp")
        check_bool(reverse, "reverse", "CumulativeLogsumexp")

    def __call__(self, x, axis) -> Tensor:
        a = arr(x, "CumulativeLogsumexp", "x", "f")
        if not isinstance(axis, Tensor):
            raise TypeError("For Primitive[CumulativeLogsumexp], the type of input argument[axis] must be Tensor but "
                            f"got {type(axis).__name__}.")
        ax = int(scalar_of(axis, "CumulativeLogsumexp", "axis")) % max(a.ndim, 1)
        b = jnp.flip(a, ax) if self.reverse else a
        out = jax.lax.cumlogsumexp(b, axis=ax)
        if self.exclusive:
            # MindSpore fills the first position with the dtype's lowest value, not -inf
            pad = jnp.full_like(jax.lax.slice_in_dim(out, 0, 1, axis=ax), jnp.finfo(a.dtype).min)
            out = jnp.concatenate([pad, jax.lax.slice_in_dim(out, 0, out.shape[ax] - 1, axis=ax)], axis=ax)
        return wrap(jnp.flip(out, ax) if self.reverse else out)


class SquareSumAll(Primitive):
    """``ops.SquareSumAll()(x, y)``: ``(sum(x ** 2), sum(y ** 2))`` as 0-d Tensors."""

    def __call__(self, x, y) -> tuple:
        a, b = arr(x, "SquareSumAll", "x", "f"), arr(y, "SquareSumAll", "y", "f")
        return wrap(jnp.sum(a * a)), wrap(jnp.sum(b * b))


def _segment(name: str, fn, empty):
    def __call__(self, input_x, segment_ids) -> Tensor:
        a = arr(input_x, name, "input_x", "fi")
        s = arr(segment_ids, name, "segment_ids", "i")
        if isinstance(s, jax.core.Tracer):
            raise ValueError(f"For '{name}', the output shape depends on the values of 'segment_ids'; call it "
                             "eagerly (PYNATIVE_MODE) or use the unsorted_segment ops with a fixed num_segments.")
        ids = np.asarray(s)
        if ids.size and (np.any(np.diff(ids) < 0) or ids[0] < 0):
            raise ValueError(f"For '{name}', 'segment_ids' should be sorted and non-negative.")
        n = int(ids[-1]) + 1 if ids.size else 0
        out = fn(a, jnp.asarray(ids), num_segments=n)
        counts = jnp.zeros(n).at[jnp.asarray(ids)].add(1).reshape((n,) + (1,) * (a.ndim - 1))
        return wrap(jnp.where(counts > 0, out, jnp.asarray(empty, a.dtype)).astype(a.dtype))

    return type(name, (Primitive,), {"__call__": __call__, "__module__": __name__,
                                     "__doc__": f"``ops.{name}()(input_x, segment_ids)``: per sorted segment "
                                                "(empty segments give 0)."})


def _segment_mean(a, ids, num_segments):
    total = jax.ops.segment_sum(a, ids, num_segments=num_segments)
    cnt = jax.ops.segment_sum(jnp.ones(a.shape[0], a.dtype), ids, num_segments=num_segments)
    return total / jnp.maximum(cnt, 1).reshape((-1,) + (1,) * (a.ndim - 1))


SegmentSum = _segment("SegmentSum", jax.ops.segment_sum, 0)
SegmentMax = _segment("SegmentMax", jax.ops.segment_max, 0)
SegmentMin = _segment("SegmentMin", jax.ops.segment_min, 0)
SegmentProd = _segment("SegmentProd", jax.ops.segment_prod, 1)
SegmentMean = _segment("SegmentMean", _segment_mean, 0)


class LpNorm(Primitive):
    """``ops.LpNorm(axis, p=2, keep_dims=False, epsilon=1e-12)(input)``: the p-norm over ``axis``."""

    @prim_attr_register
    def __init__(self, axis, p: int = 2, keep_dims: bool = False, epsilon: float = 1e-12) -> None:
        check_bool(keep_dims, "keep_dims", "LpNorm")

    def __call__(self, input) -> Tensor:  # noqa: A002
        a = arr(input, "LpNorm", "input", "f")
        ax = M.norm_axis(self.axis, a.ndim, "LpNorm")
        if self.p == 0:
            out = jnp.sum(a != 0, axis=ax, keepdims=self.keep_dims).astype(a.dtype)
        elif self.p == 1:
            out = jnp.sum(jnp.abs(a), axis=ax, keepdims=self.keep_dims)
        else:
            out = jnp.sum(jnp.abs(a) ** self.p, axis=ax, keepdims=self.keep_dims) ** (1.0 / self.p)
        return wrap(out.astype(a.dtype))


class EuclideanNorm(Primitive):
    """``ops.EuclideanNorm(keep_dims=False)(x, axes)``: ``sqrt(sum(x ** 2))`` over ``axes`` (an int Tensor)."""

    @prim_attr_register
    def __init__(self, keep_dims: bool = False) -> None:
        check_bool(keep_dims, "keep_dims", "EuclideanNorm")

    def __call__(self, x, axes) -> Tensor:
        a = arr(x, "EuclideanNorm", "x", "fi")
        ax = tuple(int(i) % a.ndim for i in np.asarray(arr(axes, "EuclideanNorm", "axes", "i")).reshape(-1))
        return wrap(jnp.sqrt(jnp.sum(a * a, axis=ax, keepdims=self.keep_dims)).astype(a.dtype))


class Renorm(Primitive):
    """``ops.Renorm(p, dim, maxnorm)(input)``: each slice along ``dim`` rescaled to p-norm at most ``maxnorm``."""

    @prim_attr_register
    def __init__(self, p: int, dim: int, maxnorm: float) -> None:
        if isinstance(p, bool) or not isinstance(p, int) or p < 1:
            raise ValueError(msg("Renorm", "p", "an int >= 1", p))

    def __call__(self, input) -> Tensor:  # noqa: A002
        a = arr(input, "Renorm", "input", "f")
        dim = self.dim % a.ndim
        others = tuple(i for i in range(a.ndim) if i != dim)
        norm = jnp.sum(jnp.abs(a) ** self.p, axis=others, keepdims=True) ** (1.0 / self.p)
        scale = jnp.where(norm > self.maxnorm, self.maxnorm / (norm + 1e-7), 1.0)
        return wrap((a * scale).astype(a.dtype))


class Trace(Primitive):
    """``ops.Trace()(x)``: the sum of a 2-D Tensor's diagonal (0-d)."""

    def __call__(self, x) -> Tensor:
        a = arr(x, "Trace", "x")
        if a.ndim != 2:
            raise ValueError(f"For 'Trace', the 'x' should be 2-D, but got {a.ndim}-D.")
        return wrap(jnp.trace(a).astype(a.dtype))


class InTopK(Primitive):
    """``ops.InTopK(k)(x1, x2)``: whether each row's target ``x2[i]`` is among the ``k`` largest of ``x1[i]``."""

    @prim_attr_register
    def __init__(self, k: int) -> None:
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(msg("InTopK", "k", "an int", k))

    def __call__(self, x1, x2) -> Tensor:
        a = arr(x1, "InTopK", "x1", "f")
        t = arr(x2, "InTopK", "x2", "i")
        target = jnp.take_along_axis(a, t[:, None].astype(jnp.int32), axis=1)
        return wrap(jnp.sum(a > target, axis=1) < self.k)


class Quantile(Primitive):
    """``ops.Quantile(dim=None, keep_dims=False, ignore_nan=False)(input, q)``: linear-interpolated quantiles."""

    @prim_attr_register
    def __init__(self, dim=None, keep_dims: bool = False, ignore_nan: bool = False) -> None:
        check_bool(keep_dims, "keep_dims", "Quantile")
        check_bool(ignore_nan, "ignore_nan", "Quantile")

    def __call__(self, input, q) -> Tensor:  # noqa: A002
        a = arr(input, "Quantile", "input", "f")
        qa = arr(q, "Quantile", "q", "f") if isinstance(q, Tensor) else jnp.asarray(q, a.dtype)
        fn = jnp.nanquantile if self.ignore_nan else jnp.quantile
        return wrap(fn(a, qa, axis=self.dim, keepdims=self.keep_dims).astype(a.dtype))


__all__ = ["Sinc", "Lgamma", "Digamma", "BesselI0", "BesselI0e", "BesselI1", "BesselI1e", "BesselJ0", "BesselJ1",
           "Hypot", "NextAfter", "Igamma", "Igammac", "Heaviside", "MulNoNan", "Fmax", "Fmin", "TensorAdd", "Addcdiv",
           "Addcmul", "Lerp", "Gcd", "Lcm", "Polygamma", "Logit", "NanToNum", "IsClose", "ApproximateEqual",
           "Betainc", "Mvlgamma", "Real", "Imag", "Conj", "Complex", "Angle", "ComplexAbs", "Polar", "BitwiseAnd",
           "BitwiseOr", "BitwiseXor", "LeftShift", "RightShift", "PopulationCount", "EqualCount", "ReduceStd",
           "CountNonZero", "Cummax", "Cummin", "CumulativeLogsumexp", "SquareSumAll", "SegmentSum", "SegmentMax",
           "SegmentMin", "SegmentProd", "SegmentMean", "LpNorm", "EuclideanNorm", "Renorm", "Trace", "InTopK",
           "Quantile"]
_ = math
