"""MindSpore's optimizer primitives (``ApplyMomentum``, ``Adam``, ``ApplyRMSProp``, ...).

Each one updates its Parameter inputs (``var`` and its slots) in place through
``Parameter.set_data`` (the write path that ``jit``/``grad`` capture) and returns what
MindSpore returns: the updated ``var``, or a tuple of the updated Parameters' values.
Formulas follow MindSpore 2.10's documentation and CPU kernels (checked against them).
Hyper-parameters may be Python numbers or Tensors; they are cast to ``var``'s dtype.
"""

from __future__ import annotations

import jax.numpy as jnp

from sporax.common._validation import check_bool, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, unwrap
from sporax.ops.primitive import Primitive, prim_attr_register

__all__ = ["ApplyMomentum", "Adam", "AdamWeightDecay", "ApplyAdaMax", "ApplyAdadelta", "ApplyAdagrad",
           "ApplyAdagradV2", "ApplyRMSProp", "ApplyCenteredRMSProp", "ApplyFtrl", "ApplyProximalAdagrad",
           "ApplyGradientDescent", "ApplyProximalGradientDescent", "ApplyAddSign", "ApplyPowerSign",
           "ApplyAdamWithAmsgrad", "LARSUpdate"]


class _ApplyBase(Primitive):
    """Shared checks and the in-place write of the optimizer primitives."""

    _slots: tuple = ()  # names of the Parameter inputs, in call order

    def _params(self, values) -> list:
        arrays = []
        var = values[0]
        for name, p in zip(self._slots, values):
            if not isinstance(p, Parameter):
                raise TypeError(msg(self.name, name, "a Parameter", type(p).__name__))
            if tuple(p.shape) != tuple(var.shape):
                raise ValueError(f"For '{self.name}', the '{name}' should have the shape of '{self._slots[0]}' "
                                 f"{tuple(var.shape)}, but got {tuple(p.shape)}.")
            if p.dtype != var.dtype:
                raise TypeError(f"For '{self.name}', the '{name}' should have the dtype of '{self._slots[0]}' "
                                f"({var.dtype}), but got {p.dtype}.")
            arrays.append(p._jax())
        return arrays

    def _scalar(self, value, arg: str, dtype):
        if isinstance(value, Tensor):
            if value.size != 1:
                raise ValueError(f"For '{self.name}', the '{arg}' should be a scalar or a 1-element Tensor, but got "
                                 f"shape {tuple(value.shape)}.")
            return jnp.reshape(value._jax(), ()).astype(dtype)
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise TypeError(msg(self.name, arg, "a float or a Tensor", type(value).__name__))
        return jnp.asarray(value, dtype)

    def _grad(self, grad, var, arg: str = "grad"):
        if not isinstance(grad, Tensor):
            raise TypeError(msg(self.name, arg, "a Tensor", type(grad).__name__))
        if tuple(grad.shape) != tuple(var.shape):
            raise ValueError(f"For '{self.name}', the '{arg}' should have the shape of 'var' {tuple(var.shape)}, "
                             f"but got {tuple(grad.shape)}.")
        return grad._jax().astype(var.dtype.np_dtype)

    @staticmethod
    def _write(params, values):
        out = []
        for p, v in zip(params, values):
            v = v.astype(p.dtype.np_dtype)
            p.set_data(Tensor._wrap(v), slice_shape=p.sliced)
            out.append(Tensor._wrap(v))
        return out


class ApplyMomentum(_ApplyBase):
    """``ApplyMomentum(use_nesterov=False, use_locking=False, gradient_scale=1.0)(variable, accumulation,
    learning_rate, gradient, momentum)``::

        accumulation = momentum * accumulation + gradient
        variable -= learning_rate * accumulation                         (plain)
        variable -= learning_rate * (gradient + momentum * accumulation)  (use_nesterov)

    Returns the updated ``variable``.
    """

    _slots = ("variable", "accumulation")

    @prim_attr_register
    def __init__(self, use_nesterov: bool = False, use_locking: bool = False, gradient_scale: float = 1.0) -> None:
        check_bool(use_nesterov, "use_nesterov", "ApplyMomentum")
        check_bool(use_locking, "use_locking", "ApplyMomentum")
        self.init_prim_io_names(["variable", "accumulation", "learning_rate", "gradient", "momentum"], ["output"])

    def __call__(self, variable, accumulation, learning_rate, gradient, momentum) -> Tensor:
        var, acc = self._params((variable, accumulation))
        dt = var.dtype
        lr, mom = self._scalar(learning_rate, "learning_rate", dt), self._scalar(momentum, "momentum", dt)
        g = self._grad(gradient, variable, "gradient") * jnp.asarray(self.gradient_scale, dt)
        acc = mom * acc + g
        var = var - lr * (g + mom * acc) if self.use_nesterov else var - lr * acc
        return self._write((variable, accumulation), (var, acc))[0]


class Adam(_ApplyBase):
    """``Adam(use_locking=False, use_nesterov=False)(var, m, v, beta1_power, beta2_power, lr, beta1, beta2,
    epsilon, grad)``: one Adam step; returns ``(var, m, v)``::

        lr_t = lr * sqrt(1 - beta2_power) / (1 - beta1_power)
        m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2)
        var -= lr_t * m / (sqrt(v) + epsilon)     (use_nesterov: (m * beta1 + (1 - beta1) * g) instead of m)
    """

    _slots = ("var", "m", "v")

    @prim_attr_register
    def __init__(self, use_locking: bool = False, use_nesterov: bool = False) -> None:
        check_bool(use_locking, "use_locking", "Adam")
        check_bool(use_nesterov, "use_nesterov", "Adam")

    def __call__(self, var, m, v, beta1_power, beta2_power, lr, beta1, beta2, epsilon, grad) -> tuple:
        w, m_, v_ = self._params((var, m, v))
        dt = w.dtype
        b1p, b2p, lr_, b1, b2, eps = (self._scalar(x, n, dt) for x, n in (
            (beta1_power, "beta1_power"), (beta2_power, "beta2_power"), (lr, "lr"), (beta1, "beta1"),
            (beta2, "beta2"), (epsilon, "epsilon")))
        g = self._grad(grad, var)
        lr_t = lr_ * jnp.sqrt(1 - b2p) / (1 - b1p)
        m_ = m_ + (g - m_) * (1 - b1)
        v_ = v_ + (g * g - v_) * (1 - b2)
        num = m_ * b1 + (1 - b1) * g if self.use_nesterov else m_
        w = w - lr_t * num / (jnp.sqrt(v_) + eps)
        return tuple(self._write((var, m, v), (w, m_, v_)))


class AdamWeightDecay(_ApplyBase):
    """``AdamWeightDecay(use_locking=False)(var, m, v, lr, beta1, beta2, epsilon, decay, gradient)``::

        m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
        var -= lr * (m / (sqrt(v) + epsilon) + decay * var)
    """

    _slots = ("var", "m", "v")

    @prim_attr_register
    def __init__(self, use_locking: bool = False) -> None:
        check_bool(use_locking, "use_locking", "AdamWeightDecay")

    def __call__(self, var, m, v, lr, beta1, beta2, epsilon, decay, gradient) -> tuple:
        w, m_, v_ = self._params((var, m, v))
        dt = w.dtype
        lr_, b1, b2, eps, wd = (self._scalar(x, n, dt) for x, n in (
            (lr, "lr"), (beta1, "beta1"), (beta2, "beta2"), (epsilon, "epsilon"), (decay, "decay")))
        g = self._grad(gradient, var, "gradient")
        m_ = b1 * m_ + (1 - b1) * g
        v_ = b2 * v_ + (1 - b2) * g * g
        w = w - lr_ * (m_ / (jnp.sqrt(v_) + eps) + wd * w)
        return tuple(self._write((var, m, v), (w, m_, v_)))


class ApplyAdaMax(_ApplyBase):
    """``ApplyAdaMax()(var, m, v, beta1_power, lr, beta1, beta2, epsilon, grad)``; returns ``(var, m, v)``::

        m = beta1 * m + (1 - beta1) * g;  v = max(beta2 * v, |g|)
        var -= lr / (1 - beta1_power) * m / (v + epsilon)
    """

    _slots = ("var", "m", "v")

    def __call__(self, var, m, v, beta1_power, lr, beta1, beta2, epsilon, grad) -> tuple:
        w, m_, v_ = self._params((var, m, v))
        dt = w.dtype
        b1p, lr_, b1, b2, eps = (self._scalar(x, n, dt) for x, n in (
            (beta1_power, "beta1_power"), (lr, "lr"), (beta1, "beta1"), (beta2, "beta2"), (epsilon, "epsilon")))
        g = self._grad(grad, var)
        m_ = b1 * m_ + (1 - b1) * g
        v_ = jnp.maximum(b2 * v_, jnp.abs(g))
        w = w - lr_ / (1 - b1p) * m_ / (v_ + eps)
        return tuple(self._write((var, m, v), (w, m_, v_)))


class ApplyAdadelta(_ApplyBase):
    """``ApplyAdadelta()(var, accum, accum_update, lr, rho, epsilon, grad)``; returns ``(var, accum, accum_update)``."""

    _slots = ("var", "accum", "accum_update")

    def __call__(self, var, accum, accum_update, lr, rho, epsilon, grad) -> tuple:
        w, a, u = self._params((var, accum, accum_update))
        dt = w.dtype
        lr_, rho_, eps = (self._scalar(x, n, dt) for x, n in ((lr, "lr"), (rho, "rho"), (epsilon, "epsilon")))
        g = self._grad(grad, var)
        a = rho_ * a + (1 - rho_) * g * g
        update = jnp.sqrt(u + eps) / jnp.sqrt(a + eps) * g
        u = rho_ * u + (1 - rho_) * update * update
        w = w - lr_ * update
        return tuple(self._write((var, accum, accum_update), (w, a, u)))


class ApplyAdagrad(_ApplyBase):
    """``ApplyAdagrad(update_slots=True)(var, accum, lr, grad)``: ``accum += g * g``;
    ``var -= lr * g / sqrt(accum)``; returns ``(var, accum)``."""

    _slots = ("var", "accum")
    _eps = None

    @prim_attr_register
    def __init__(self, update_slots: bool = True) -> None:
        check_bool(update_slots, "update_slots", "ApplyAdagrad")

    def __call__(self, var, accum, lr, grad) -> tuple:
        w, a = self._params((var, accum))
        lr_ = self._scalar(lr, "lr", w.dtype)
        g = self._grad(grad, var)
        if self.update_slots:
            a = a + g * g
        denom = jnp.sqrt(a) if self._eps is None else jnp.sqrt(a) + jnp.asarray(self._eps, w.dtype)
        w = w - lr_ * g / denom
        return tuple(self._write((var, accum), (w, a)))


class ApplyAdagradV2(ApplyAdagrad):
    """``ApplyAdagradV2(epsilon, update_slots=True)(var, accum, lr, grad)``: ``var -= lr * g / (sqrt(accum) + epsilon)``."""

    @prim_attr_register
    def __init__(self, epsilon: float, update_slots: bool = True) -> None:
        if not isinstance(epsilon, float):
            raise TypeError(msg("ApplyAdagradV2", "epsilon", "a float", epsilon))
        check_bool(update_slots, "update_slots", "ApplyAdagradV2")
        self._eps = epsilon


class ApplyRMSProp(_ApplyBase):
    """``ApplyRMSProp(use_locking=False)(var, mean_square, moment, learning_rate, grad, decay, momentum, epsilon)``::

        mean_square = decay * mean_square + (1 - decay) * g * g
        moment = momentum * moment + learning_rate * g / sqrt(mean_square + epsilon)
        var -= moment

    Returns the updated ``var``.
    """

    _slots = ("var", "mean_square", "moment")

    @prim_attr_register
    def __init__(self, use_locking: bool = False) -> None:
        check_bool(use_locking, "use_locking", "ApplyRMSProp")

    def __call__(self, var, mean_square, moment, learning_rate, grad, decay, momentum, epsilon) -> Tensor:
        w, ms, mom = self._params((var, mean_square, moment))
        dt = w.dtype
        lr_, rho, mu, eps = (self._scalar(x, n, dt) for x, n in (
            (learning_rate, "learning_rate"), (decay, "decay"), (momentum, "momentum"), (epsilon, "epsilon")))
        g = self._grad(grad, var)
        ms = rho * ms + (1 - rho) * g * g
        mom = mu * mom + lr_ * g / jnp.sqrt(ms + eps)
        w = w - mom
        return self._write((var, mean_square, moment), (w, ms, mom))[0]


class ApplyCenteredRMSProp(_ApplyBase):
    """``ApplyCenteredRMSProp(use_locking=False)(var, mean_gradient, mean_square, moment, grad, learning_rate,
    decay, momentum, epsilon)``: RMSProp with the variance ``mean_square - mean_gradient ** 2``; returns ``var``."""

    _slots = ("var", "mean_gradient", "mean_square", "moment")

    @prim_attr_register
    def __init__(self, use_locking: bool = False) -> None:
        check_bool(use_locking, "use_locking", "ApplyCenteredRMSProp")

    def __call__(self, var, mean_gradient, mean_square, moment, grad, learning_rate, decay, momentum,
                 epsilon) -> Tensor:
        w, mg, ms, mom = self._params((var, mean_gradient, mean_square, moment))
        dt = w.dtype
        lr_, rho, mu, eps = (self._scalar(x, n, dt) for x, n in (
            (learning_rate, "learning_rate"), (decay, "decay"), (momentum, "momentum"), (epsilon, "epsilon")))
        g = self._grad(grad, var)
        mg = rho * mg + (1 - rho) * g
        ms = rho * ms + (1 - rho) * g * g
        mom = mu * mom + lr_ * g / jnp.sqrt(ms - mg * mg + eps)
        w = w - mom
        return self._write((var, mean_gradient, mean_square, moment), (w, mg, ms, mom))[0]


def ftrl_update(w, a, lin, g, lr, l1, l2, lr_power):
    """One FTRL-proximal step (MindSpore's ``ApplyFtrl``); returns the new (var, accum, linear)."""
    a_new = a + g * g
    lin = lin + g - (jnp.power(a_new, -lr_power) - jnp.power(a, -lr_power)) / lr * w
    quadratic = jnp.power(a_new, -lr_power) / lr + 2 * l2
    w = jnp.where(jnp.abs(lin) > l1, (jnp.sign(lin) * l1 - lin) / quadratic, jnp.zeros_like(w))
    return w, a_new, lin


class ApplyFtrl(_ApplyBase):
    """``ApplyFtrl(use_locking=False)(var, accum, linear, grad, lr, l1, l2, lr_power)``: FTRL-proximal; returns ``var``."""

    _slots = ("var", "accum", "linear")

    @prim_attr_register
    def __init__(self, use_locking: bool = False) -> None:
        check_bool(use_locking, "use_locking", "ApplyFtrl")

    def __call__(self, var, accum, linear, grad, lr, l1, l2, lr_power) -> Tensor:
        w, a, lin = self._params((var, accum, linear))
        dt = w.dtype
        lr_, l1_, l2_, p = (self._scalar(x, n, dt) for x, n in (
            (lr, "lr"), (l1, "l1"), (l2, "l2"), (lr_power, "lr_power")))
        w, a, lin = ftrl_update(w, a, lin, self._grad(grad, var), lr_, l1_, l2_, p)
        return self._write((var, accum, linear), (w, a, lin))[0]


def proximal(prox_v, lr, l1, l2):
    """``sign(v) / (1 + lr * l2) * max(|v| - lr * l1, 0)``: the proximal step of L1/L2 regularization."""
    return jnp.sign(prox_v) / (1 + lr * l2) * jnp.maximum(jnp.abs(prox_v) - lr * l1, 0)


class ApplyProximalAdagrad(_ApplyBase):
    """``ApplyProximalAdagrad(use_locking=False)(var, accum, lr, l1, l2, grad)``; returns ``(var, accum)``::

        accum += g * g;  lr_t = lr / sqrt(accum);  prox_v = var - lr_t * g
        var = sign(prox_v) / (1 + lr_t * l2) * max(|prox_v| - lr_t * l1, 0)
    """

    _slots = ("var", "accum")

    @prim_attr_register
    def __init__(self, use_locking: bool = False) -> None:
        check_bool(use_locking, "use_locking", "ApplyProximalAdagrad")

    def __call__(self, var, accum, lr, l1, l2, grad) -> tuple:
        w, a = self._params((var, accum))
        dt = w.dtype
        lr_, l1_, l2_ = (self._scalar(x, n, dt) for x, n in ((lr, "lr"), (l1, "l1"), (l2, "l2")))
        g = self._grad(grad, var)
        a = a + g * g
        lr_t = lr_ / jnp.sqrt(a)
        w = proximal(w - lr_t * g, lr_t, l1_, l2_)
        return tuple(self._write((var, accum), (w, a)))


class ApplyGradientDescent(_ApplyBase):
    """``ApplyGradientDescent()(var, alpha, delta)``: ``var -= alpha * delta``; returns ``var``."""

    _slots = ("var",)

    def __call__(self, var, alpha, delta) -> Tensor:
        (w,) = self._params((var,))
        w = w - self._scalar(alpha, "alpha", w.dtype) * self._grad(delta, var, "delta")
        return self._write((var,), (w,))[0]


class ApplyProximalGradientDescent(_ApplyBase):
    """``ApplyProximalGradientDescent()(var, alpha, l1, l2, delta)``: a proximal gradient step; returns ``var``."""

    _slots = ("var",)

    def __call__(self, var, alpha, l1, l2, delta) -> Tensor:
        (w,) = self._params((var,))
        dt = w.dtype
        a, l1_, l2_ = (self._scalar(x, n, dt) for x, n in ((alpha, "alpha"), (l1, "l1"), (l2, "l2")))
        w = proximal(w - a * self._grad(delta, var, "delta"), a, l1_, l2_)
        return self._write((var,), (w,))[0]


class ApplyAddSign(_ApplyBase):
    """``ApplyAddSign()(var, m, lr, alpha, sign_decay, beta, grad)``; returns ``(var, m)``::

        m = beta * m + (1 - beta) * g;  var -= lr * (alpha + sign_decay * sign(g) * sign(m)) * g
    """

    _slots = ("var", "m")
    _power = False

    def __call__(self, var, m, lr, alpha, sign_decay, beta, grad) -> tuple:
        w, m_ = self._params((var, m))
        dt = w.dtype
        lr_, al, sd, b = (self._scalar(x, n, dt) for x, n in (
            (lr, "lr"), (alpha, "logbase" if self._power else "alpha"), (sign_decay, "sign_decay"), (beta, "beta")))
        g = self._grad(grad, var)
        m_ = b * m_ + (1 - b) * g
        agree = sd * jnp.sign(g) * jnp.sign(m_)
        w = w - lr_ * (jnp.exp(al * agree) if self._power else al + agree) * g
        return tuple(self._write((var, m), (w, m_)))


class ApplyPowerSign(ApplyAddSign):
    """``ApplyPowerSign()(var, m, lr, logbase, sign_decay, beta, grad)``: ``var -= lr * exp(logbase * sign_decay *
    sign(g) * sign(m)) * g``; returns ``(var, m)``."""

    _power = True


class ApplyAdamWithAmsgrad(_ApplyBase):
    """``ApplyAdamWithAmsgrad(beta1=0.9, beta2=0.999, epsilon=1e-8, use_locking=False)(var, m, v, vhat,
    beta1_power, beta2_power, lr, grad)``; returns ``(var, m, v, vhat)``."""

    _slots = ("var", "m", "v", "vhat")

    @prim_attr_register
    def __init__(self, beta1: float = 0.9, beta2: float = 0.999, epsilon: float = 1e-8,
                 use_locking: bool = False) -> None:
        check_bool(use_locking, "use_locking", "ApplyAdamWithAmsgrad")

    def __call__(self, var, m, v, vhat, beta1_power, beta2_power, lr, grad) -> tuple:
        w, m_, v_, vh = self._params((var, m, v, vhat))
        dt = w.dtype
        b1p, b2p, lr_ = (self._scalar(x, n, dt) for x, n in (
            (beta1_power, "beta1_power"), (beta2_power, "beta2_power"), (lr, "lr")))
        b1, b2, eps = (jnp.asarray(x, dt) for x in (self.beta1, self.beta2, self.epsilon))
        g = self._grad(grad, var)
        lr_t = lr_ * jnp.sqrt(1 - b2p) / (1 - b1p)
        m_ = b1 * m_ + (1 - b1) * g
        v_ = b2 * v_ + (1 - b2) * g * g
        vh = jnp.maximum(vh, v_)
        w = w - lr_t * m_ / (jnp.sqrt(vh) + eps)
        return tuple(self._write((var, m, v, vhat), (w, m_, v_, vh)))


class LARSUpdate(Primitive):
    """``LARSUpdate(epsilon=1e-5, hyperpara=0.001, use_clip=False)(weight, gradient, norm_weight, norm_gradient,
    weight_decay, learning_rate)``: the layer-wise scaled gradient (nothing is updated in place)::

        w_norm, g_norm = sqrt(norm_weight), sqrt(norm_gradient)      (the inputs are sums of squares)
        ratio = hyperpara * w_norm / (g_norm + weight_decay * w_norm + epsilon)  if both norms > 0, else 1
        ratio = min(ratio / learning_rate, 1) if use_clip
        return ratio * (gradient + weight_decay * weight)
    """

    @prim_attr_register
    def __init__(self, epsilon: float = 1e-5, hyperpara: float = 0.001, use_clip: bool = False) -> None:
        for arg, value in (("epsilon", epsilon), ("hyperpara", hyperpara)):
            if not isinstance(value, float):
                raise TypeError(msg("LARSUpdate", arg, "a float", value))
        check_bool(use_clip, "use_clip", "LARSUpdate")

    def __call__(self, weight, gradient, norm_weight, norm_gradient, weight_decay, learning_rate) -> Tensor:
        for arg, value in (("weight", weight), ("gradient", gradient)):
            if not isinstance(value, Tensor):
                raise TypeError(msg("LARSUpdate", arg, "a Tensor", type(value).__name__))
        w, g = weight._jax(), gradient._jax()
        dt = g.dtype
        wn = jnp.sqrt(jnp.reshape(jnp.asarray(unwrap(norm_weight), dt), ()))
        gn = jnp.sqrt(jnp.reshape(jnp.asarray(unwrap(norm_gradient), dt), ()))
        wd = jnp.reshape(jnp.asarray(unwrap(weight_decay), dt), (-1,))[0]
        lr = jnp.reshape(jnp.asarray(unwrap(learning_rate), dt), (-1,))[0]
        ratio = jnp.where((wn > 0) & (gn > 0), self.hyperpara * wn / (gn + wd * wn + self.epsilon), 1.0)
        if self.use_clip:
            ratio = jnp.minimum(ratio / lr, 1.0)
        return Tensor._wrap((ratio * (g + wd * w)).astype(dt))
