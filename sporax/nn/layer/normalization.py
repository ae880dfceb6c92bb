"""Normalization layers: ``nn.BatchNorm1d``, ``nn.BatchNorm2d`` and ``nn.LayerNorm`` (MindSpore 2.x).

BatchNorm keeps four Parameters, registered in MindSpore's order: ``moving_mean`` and
``moving_variance`` (``requires_grad=False``), ``gamma`` and ``beta`` (trainable iff ``affine``).
In training mode (or with ``use_batch_statistics=True``) it normalizes with the batch's biased
variance and updates the moving statistics as MindSpore does (verified against 2.10)::

    moving_mean     = momentum * moving_mean     + (1 - momentum) * batch_mean
    moving_variance = momentum * moving_variance + (1 - momentum) * unbiased_batch_variance

The update goes through ``Parameter.set_data``, so under ``jit`` it is captured as state.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sporax.common import dtype as mstype
from sporax.common._validation import check_int, msg
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.nn.layer._utils import check_dtype, check_float, make_param

__all__ = ["BatchNorm1d", "BatchNorm2d", "LayerNorm"]


def _compute_dtype(a):
    """float32, or wider when the input is wider: half-precision inputs are normalized in float32."""
    return jnp.promote_types(a.dtype, jnp.float32)


class _BatchNorm(Cell):
    """Batch normalization over axis 1 (channels) of an input whose rank is in ``_ranks``."""

    _ranks: tuple[int, ...] = ()

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.9, affine: bool = True,
                 gamma_init="ones", beta_init="zeros", moving_mean_init="zeros", moving_var_init="ones",
                 use_batch_statistics: bool | None = None, data_format: str = "NCHW",
                 dtype=mstype.float32) -> None:
        super().__init__()
        where = self.cls_name
        check_int(num_features, "num_features", where)
        if num_features < 1:
            raise ValueError(msg(where, "num_features", "an int >= 1", num_features))
        # MindSpore keeps 1 - momentum in this attribute (the weight of the new batch statistic).
        self.momentum = 1.0 - check_float(momentum, "momentum", where, 0.0, 1.0)
        self.eps = check_float(eps, "eps", where, 0.0, low_inclusive=False)
        if affine is not True and affine is not False:
            raise TypeError(msg(where, "affine", "a bool", affine))
        if use_batch_statistics is not None and not isinstance(use_batch_statistics, bool):
            raise ValueError(msg(where, "use_batch_statistics", "a bool or None", use_batch_statistics))
        if data_format != "NCHW":
            raise ValueError(msg(where, "data_format", "'NCHW' (the only layout on this backend)", data_format))
        check_dtype(dtype, where)
        self.num_features = num_features
        self.affine = affine
        self.use_batch_statistics = use_batch_statistics
        self.format = data_format
        self.moving_mean = make_param(moving_mean_init, (num_features,), dtype, "mean", requires_grad=False)
        self.moving_variance = make_param(moving_var_init, (num_features,), dtype, "variance", requires_grad=False)
        self.gamma = make_param(gamma_init, (num_features,), dtype, "gamma", requires_grad=affine)
        self.beta = make_param(beta_init, (num_features,), dtype, "beta", requires_grad=affine)

    def _check_input(self, a) -> None:
        if a.ndim not in self._ranks or a.shape[1] != self.num_features:
            ranks = " or ".join(str(r) for r in self._ranks)
            raise ValueError(
                f"For '{self.cls_name}', the input should have rank {ranks} with {self.num_features} channels "
                f"on axis 1, but got shape {tuple(a.shape)}."
            )

    def construct(self, x) -> Tensor:
        a = unwrap(x)
        self._check_input(a)
        bshape = (1, -1) + (1,) * (a.ndim - 2)
        use_batch = self.training if self.use_batch_statistics is None else self.use_batch_statistics
        ct = _compute_dtype(a)
        if use_batch:
            mean, var = self._batch_stats(a, ct)
        else:
            mean = self.moving_mean._jax().astype(ct)
            var = self.moving_variance._jax().astype(ct)
        inv = jax.lax.rsqrt(var + self.eps) * self.gamma._jax().astype(ct)
        shift = self.beta._jax().astype(ct) - mean * inv
        y = a.astype(ct) * jnp.reshape(inv, bshape) + jnp.reshape(shift, bshape)
        return Tensor._wrap(y.astype(a.dtype))

    def _batch_stats(self, a, ct):
        """Batch mean and biased variance per channel; also moves the running statistics."""
        axes = (0,) + tuple(range(2, a.ndim))
        af = a.astype(ct)
        mean = jnp.mean(af, axis=axes)
        var = jnp.mean(jnp.square(af - jnp.reshape(mean, (1, -1) + (1,) * (a.ndim - 2))), axis=axes)
        n = a.size // a.shape[1]
        unbiased = jax.lax.stop_gradient(var * (n / max(n - 1, 1)))
        w = self.momentum  # weight of the batch statistic, 1 - the constructor's momentum
        for param, stat in ((self.moving_mean, jax.lax.stop_gradient(mean)), (self.moving_variance, unbiased)):
            old = param._jax()
            new = ((1.0 - w) * old.astype(ct) + w * stat).astype(old.dtype)
            param.set_data(Tensor._wrap(new), slice_shape=param.sliced)  # keep a sharded stat's flag
        return mean, var

    def extend_repr(self) -> str:
        return (
            f"num_features={self.num_features}, eps={self.eps}, momentum={1.0 - self.momentum}, gamma={self.gamma}, "
            f"beta={self.beta}, moving_mean={self.moving_mean}, moving_variance={self.moving_variance}"
        )


class BatchNorm1d(_BatchNorm):
    """Batch normalization of ``(N, C)`` or ``(N, C, L)`` input over all axes but the channel axis."""

    _ranks = (2, 3)


class BatchNorm2d(_BatchNorm):
    """Batch normalization of ``(N, C, H, W)`` input over all axes but the channel axis."""

    _ranks = (4,)


class LayerNorm(Cell):
    """``LayerNorm(normalized_shape, begin_norm_axis=-1, begin_params_axis=-1, gamma_init='ones',
    beta_init='zeros', epsilon=1e-7, dtype=mstype.float32)``.

    Normalizes over the axes from ``begin_norm_axis`` to the last (biased variance), then scales
    by ``gamma`` and shifts by ``beta`` (both of shape ``normalized_shape``), which align with the
    input's axes from ``begin_params_axis`` on.
    """

    def __init__(self, normalized_shape, begin_norm_axis: int = -1, begin_params_axis: int = -1,
                 gamma_init="ones", beta_init="zeros", epsilon: float = 1e-7, dtype=mstype.float32) -> None:
        super().__init__()
        if not isinstance(normalized_shape, (tuple, list)):
            raise TypeError(msg("LayerNorm", "normalized_shape", "a tuple or list of int", normalized_shape))
        if not normalized_shape:
            raise ValueError(msg("LayerNorm", "normalized_shape", "at least 1-dimensional", normalized_shape))
        self.normalized_shape = normalized_shape
        self.begin_norm_axis = check_int(begin_norm_axis, "begin_norm_axis", "LayerNorm")
        self.begin_params_axis = check_int(begin_params_axis, "begin_params_axis", "LayerNorm")
        self.epsilon = check_float(epsilon, "epsilon", "LayerNorm", 0.0)
        check_dtype(dtype, "LayerNorm")
        self.gamma = make_param(gamma_init, tuple(normalized_shape), dtype, "gamma")
        self.beta = make_param(beta_init, tuple(normalized_shape), dtype, "beta")

    def construct(self, x) -> Tensor:
        a = unwrap(x)
        nd = a.ndim
        norm_axis = self.begin_norm_axis % nd
        params_axis = self.begin_params_axis % nd
        pshape = tuple(a.shape[params_axis:])
        if pshape != tuple(self.gamma.shape):
            raise ValueError(
                f"For 'LayerNorm', the input's shape from begin_params_axis={self.begin_params_axis} on should be "
                f"{tuple(self.gamma.shape)} (normalized_shape), but got {pshape} (input shape {tuple(a.shape)})."
            )
        axes = tuple(range(norm_axis, nd))
        ct = _compute_dtype(a)
        af = a.astype(ct)
        mean = jnp.mean(af, axis=axes, keepdims=True)
        var = jnp.mean(jnp.square(af - mean), axis=axes, keepdims=True)
        y = (af - mean) * jax.lax.rsqrt(var + self.epsilon)
        y = y * self.gamma._jax().astype(ct) + self.beta._jax().astype(ct)
        return Tensor._wrap(y.astype(a.dtype))

    def extend_repr(self) -> str:
        return (
            f"normalized_shape={self.normalized_shape}, begin_norm_axis={self.begin_norm_axis}, "
            f"begin_params_axis={self.begin_params_axis}, gamma{self.gamma}, beta={self.beta}"
        )
