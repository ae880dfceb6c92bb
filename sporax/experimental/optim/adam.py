"""``experimental.optim.Adam`` and ``AdamW`` with MindSpore 2.10's state names and formulas.

State: ``exp_avg.<param>``, ``exp_avg_sq.<param>``, ``max_exp_avg_sq.<param>`` and the int32
``state_step`` (incremented before each step; ``t`` below).

Adam (MindSpore's ``Adam`` kernel; ``weight_decay`` is an L2 term added to the gradient)::

    g = g + weight_decay * param;  lr_t = lr * sqrt(1 - beta2**t) / (1 - beta1**t)
    m += (g - m) * (1 - beta1);  v += (g * g - v) * (1 - beta2);  param -= lr_t * m / (sqrt(v) + eps)

MindSpore 2.10's experimental Adam accepts ``amsgrad`` but does not use it (``max_exp_avg_sq``
stays zero); sporax does the same, so results and checkpoints agree.

AdamW (decoupled decay, PyTorch's rule; the bias-corrected moments come from Optax's
``scale_by_adam``)::

    param *= 1 - lr * weight_decay
    param -= lr * m_hat / (sqrt(v_hat) + eps)      (amsgrad: v_hat from max(max_exp_avg_sq, v))
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import optax

from sporax.common._validation import check_bool, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.experimental.optim.optimizer import Optimizer
from sporax.nn.optim.optimizer import write

__all__ = ["Adam", "AdamW"]


def _check(lr, betas, eps, weight_decay, amsgrad, maximize, where: str) -> None:
    if isinstance(lr, bool) or not isinstance(lr, (float, int, Tensor)):
        raise TypeError(msg(where, "lr", "a float or a Tensor", lr))
    if not isinstance(lr, Tensor) and lr < 0.0:
        raise ValueError(f"Invalid learning rate: {lr}")
    if not isinstance(betas, tuple) or len(betas) != 2 or not all(isinstance(b, float) for b in betas):
        raise TypeError(msg(where, "betas", "a tuple of 2 floats", betas))
    if not 0.0 <= betas[0] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 0: {betas[0]}")
    if not 0.0 <= betas[1] < 1.0:
        raise ValueError(f"Invalid beta parameter at index 1: {betas[1]}")
    if not isinstance(eps, float):
        raise TypeError(msg(where, "eps", "a float", eps))
    if eps < 0.0:
        raise ValueError(f"Invalid epsilon value: {eps}")
    if not isinstance(weight_decay, float):
        raise TypeError(msg(where, "weight_decay", "a float", weight_decay))
    if weight_decay < 0.0:
        raise ValueError(f"Invalid weight_decay value: {weight_decay}")
    check_bool(amsgrad, "amsgrad", where)
    check_bool(maximize, "maximize", where)


def adam_rule(p, g, state, lr, hyper, *, beta1, beta2, eps, weight_decay, maximize):
    m, v, vmax = state
    (t,) = hyper
    g = -g if maximize else g
    if weight_decay:
        g = g + weight_decay * p
    lr_t = lr * jnp.sqrt(1 - beta2 ** t) / (1 - beta1 ** t)
    m = m + (g - m) * (1 - beta1)
    v = v + (g * g - v) * (1 - beta2)
    return p - lr_t * m / (jnp.sqrt(v) + eps), (m, v, vmax)


def adamw_rule(p, g, state, lr, hyper, *, beta1, beta2, eps, weight_decay, amsgrad, maximize):
    m, v, vmax = state
    (t,) = hyper
    g = -g if maximize else g
    decayed = p * (1 - lr * weight_decay)
    adam = optax.scale_by_adam(b1=beta1, b2=beta2, eps=eps)
    count = (t - 1).astype(jnp.int32)
    update, st = adam.update(g, optax.ScaleByAdamState(count=count, mu=m, nu=v))
    m, v = st.mu, st.nu
    if amsgrad:
        vmax = jnp.maximum(vmax, v)
        update = m / (1 - beta1 ** t) / (jnp.sqrt(vmax) / jnp.sqrt(1 - beta2 ** t) + eps)
    return decayed - lr * update, (m, v, vmax)


class _AdamBase(Optimizer):
    _rule = staticmethod(adam_rule)
    _default_wd = 0.0

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps: float = 1e-8, weight_decay=None,
                 amsgrad: bool = False, *, maximize: bool = False) -> None:
        weight_decay = self._default_wd if weight_decay is None else weight_decay
        _check(lr, betas, eps, weight_decay, amsgrad, maximize, type(self).__name__)
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "amsgrad": amsgrad, "maximize": maximize})
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self.parameters.clone(prefix="exp_avg_sq", init="zeros")
        self.max_exp_avg_sq = self.parameters.clone(prefix="max_exp_avg_sq", init="zeros")
        self.state_step = Parameter(Tensor(jnp.int32(0)), name="state_step", requires_grad=False)
        self._rules: dict = {}

    def _rule_of(self, group):
        key = (group["betas"], group["eps"], group["weight_decay"], group["amsgrad"], group["maximize"])
        if key not in self._rules:
            kw = {"beta1": group["betas"][0], "beta2": group["betas"][1], "eps": group["eps"],
                  "weight_decay": group["weight_decay"], "maximize": group["maximize"]}
            if self._rule is adamw_rule:
                kw["amsgrad"] = group["amsgrad"]
            self._rules[key] = functools.partial(self._rule, **kw)
        return self._rules[key]

    def construct(self, gradients) -> bool:
        step = self.state_step._jax() + jnp.int32(1)
        write(self.state_step, step)
        t = step.astype(jnp.float32)
        return self._step_groups(gradients, self._rule_of, (self.exp_avg, self.exp_avg_sq, self.max_exp_avg_sq),
                                 (t,))


class Adam(_AdamBase):
    """``Adam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, amsgrad=False, *, maximize=False)``."""


class AdamW(_AdamBase):
    """``AdamW(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2, amsgrad=False, *, maximize=False)``."""

    _rule = staticmethod(adamw_rule)
    _default_wd = 1e-2
