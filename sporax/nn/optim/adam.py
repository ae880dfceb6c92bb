"""``nn.Adam`` and ``nn.AdamWeightDecay`` with MindSpore 2.10's state names and formulas.

Adam (state ``beta1_power``, ``beta2_power``, ``moment1.<param>``, ``moment2.<param>``); the
powers are multiplied by beta1/beta2 before each step, so at step t they hold beta**t::

    lr_t = lr * sqrt(1 - beta2_power) / (1 - beta1_power)
    m = m + (g - m) * (1 - beta1);  v = v + (g * g - v) * (1 - beta2)
    param = param - lr_t * m_hat / (sqrt(v) + eps),   m_hat = beta1 * m + (1 - beta1) * g if use_nesterov else m

With ``use_amsgrad=True`` (state ``vhat.<param>``) the denominator uses the running maximum
``vhat = max(vhat, v)`` instead of ``v``. Weight decay and loss scale act on the gradient first
(see ``Optimizer``). ``use_lazy``/``use_offload`` only change how MindSpore runs sparse or
host-side updates; for dense gradients the math is this same rule.

AdamWeightDecay (state ``adam_m.<param>``, ``adam_v.<param>``; no bias correction, decoupled
decay, no loss scale)::

    m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
    param = param - lr * (m / (sqrt(v) + eps) + weight_decay * param)
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from sporax.common._validation import check_bool, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.nn.optim.optimizer import Optimizer, write

__all__ = ["Adam", "AdamWeightDecay", "adam_rule", "amsgrad_rule", "adam_weight_decay_rule"]


def adam_rule(p, g, state, lr, wd, hyper, *, beta1: float, beta2: float, eps: float, nesterov: bool):
    """One Adam step for one parameter (``hyper`` = the updated beta powers)."""
    m, v = state
    beta1_power, beta2_power = hyper
    lr_t = lr * jnp.sqrt(1.0 - beta2_power) / (1.0 - beta1_power)
    m = m + (g - m) * (1.0 - beta1)
    v = v + (g * g - v) * (1.0 - beta2)
    m_hat = beta1 * m + (1.0 - beta1) * g if nesterov else m
    return p - lr_t * m_hat / (jnp.sqrt(v) + eps), (m, v)


def amsgrad_rule(p, g, state, lr, wd, hyper, *, beta1: float, beta2: float, eps: float):
    """One AMSGrad step (MindSpore's ``ApplyAdamWithAmsgradV2``): Adam with ``vhat = max(vhat, v)``."""
    m, v, vhat = state
    beta1_power, beta2_power = hyper
    lr_t = lr * jnp.sqrt(1.0 - beta2_power) / (1.0 - beta1_power)
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    vhat = jnp.maximum(vhat, v)
    return p - lr_t * m / (jnp.sqrt(vhat) + eps), (m, v, vhat)


def adam_weight_decay_rule(p, g, state, lr, wd, hyper, *, beta1: float, beta2: float, eps: float):
    """One AdamWeightDecay step for one parameter; ``wd`` is None where the parameter does not decay."""
    m, v = state
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    update = m / (jnp.sqrt(v) + eps)
    if wd is not None:
        update = update + wd * p
    return p - lr * update, (m, v)


def _check_betas(beta1, beta2, eps, where: str) -> None:
    for arg, value in (("beta1", beta1), ("beta2", beta2), ("eps", eps)):
        if not isinstance(value, float):
            raise TypeError(msg(where, arg, "a float", value))
    for arg, value in (("beta1", beta1), ("beta2", beta2)):
        if not 0.0 < value < 1.0:
            raise ValueError(msg(where, arg, "in the range (0.0, 1.0)", value))
    if eps <= 0.0:
        raise ValueError(msg(where, "eps", "a float > 0", eps))


class Adam(Optimizer):
    """``Adam(params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-8, use_locking=False,
    use_nesterov=False, weight_decay=0.0, loss_scale=1.0, use_amsgrad=False, use_lazy=False,
    use_offload=False)``."""

    _shard_rows = True  # row-wise update: the parallel optimizer may shard it (parallel/plan.py)

    def __init__(self, params, learning_rate=1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-8,
                 use_locking: bool = False, use_nesterov: bool = False, weight_decay=0.0,
                 loss_scale: float = 1.0, use_amsgrad: bool = False, **kwargs) -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        unknown = set(kwargs) - {"use_lazy", "use_offload"}
        if unknown:
            raise KeyError(f"For 'Adam', the extra keyword arguments should be 'use_lazy' or 'use_offload', "
                           f"but got {sorted(unknown)}.")
        _check_betas(beta1, beta2, eps, "Adam")
        self.use_locking = check_bool(use_locking, "use_locking", "Adam")
        self.use_nesterov = check_bool(use_nesterov, "use_nesterov", "Adam")
        self.use_amsgrad = check_bool(use_amsgrad, "use_amsgrad", "Adam")
        self.use_lazy = check_bool(kwargs.get("use_lazy", False), "use_lazy", "Adam")
        self.use_offload = check_bool(kwargs.get("use_offload", False), "use_offload", "Adam")
        if self.use_lazy and self.use_offload:
            raise ValueError("For 'Adam', 'use_lazy' and 'use_offload' can not both be True.")
        if use_amsgrad and (self.use_lazy or self.use_offload):
            raise ValueError("For 'Adam', 'use_amsgrad' can not be combined with 'use_lazy' or 'use_offload'.")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.beta1_power = Parameter(Tensor(np.float32(1.0)), name="beta1_power")
        self.beta2_power = Parameter(Tensor(np.float32(1.0)), name="beta2_power")
        self.moment1 = self._parameters.clone(prefix="moment1", init="zeros")
        self.moment2 = self._parameters.clone(prefix="moment2", init="zeros")
        self._states = (self.moment1, self.moment2)
        if use_amsgrad:
            self.vhat = self._parameters.clone(prefix="vhat", init="zeros")
            self._states += (self.vhat,)
            self._rule = functools.partial(amsgrad_rule, beta1=beta1, beta2=beta2, eps=eps)
        else:
            self._rule = functools.partial(adam_rule, beta1=beta1, beta2=beta2, eps=eps, nesterov=use_nesterov)

    def construct(self, gradients) -> bool:
        beta1_power = self.beta1_power._jax() * jnp.float32(self.beta1)
        beta2_power = self.beta2_power._jax() * jnp.float32(self.beta2)
        write(self.beta1_power, beta1_power)
        write(self.beta2_power, beta2_power)
        return self._apply_rule(gradients, self._rule, self._states, (beta1_power, beta2_power))


class AdamWeightDecay(Optimizer):
    """``AdamWeightDecay(params, learning_rate=1e-3, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0)``."""

    _shard_rows = True  # row-wise update: the parallel optimizer may shard it (parallel/plan.py)

    _decoupled_weight_decay = True

    def __init__(self, params, learning_rate=1e-3, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6,
                 weight_decay=0.0) -> None:
        super().__init__(learning_rate, params, weight_decay)
        _check_betas(beta1, beta2, eps, "AdamWeightDecay")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.moments1 = self._parameters.clone(prefix="adam_m", init="zeros")
        self.moments2 = self._parameters.clone(prefix="adam_v", init="zeros")
        self._rule = functools.partial(adam_weight_decay_rule, beta1=beta1, beta2=beta2, eps=eps)

    def construct(self, gradients) -> bool:
        return self._apply_rule(gradients, self._rule, (self.moments1, self.moments2))
