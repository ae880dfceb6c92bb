"""``experimental.optim`` ``Adadelta``, ``Adamax``, ``NAdam``, ``RAdam``, ``Rprop`` and ``ASGD`` with MindSpore
2.10's state names and formulas (checked against MindSpore after three steps in
``tests/nn/test_experimental_optim.py``). ``t`` is ``step_t`` after its increment at the start of a step.

- Adadelta (``accum``, ``accum_update``; MindSpore's ``ApplyAdadelta``):
  ``accum = rho accum + (1 - rho) g^2; u = sqrt(accum_update + eps) g / sqrt(accum + eps);
  accum_update = rho accum_update + (1 - rho) u^2; param -= lr u``.
- Adamax (``exp_avg``, ``exp_inf``, ``step_t``): ``exp_inf = max(beta2 exp_inf, |g| + eps)``,
  ``param -= lr / (1 - beta1^t) * exp_avg / exp_inf``.
- NAdam (``exp_avg``, ``exp_avg_sq``, ``mu_product_<param>``, ``step_t``): momentum ``mu_t = beta1 (1 - 0.5 *
  0.96^(t momentum_decay))``, the two-term Nesterov step of PyTorch's NAdam.
- RAdam (``exp_avg``, ``exp_avg_sq``, ``step_t``): rectified when ``rho_t > 5``, else the bias-corrected SGD step.
- Rprop (``prev``, ``step_size``, ``step_t``): per-element step sizes grown by ``etas[1]`` / shrunk by ``etas[0]``
  on gradient sign agreement, clipped to ``step_sizes``; a sign change skips that element's step.
- ASGD (``eta_<param>``, ``mu_<param>``, ``ax``, ``step_t``): ``param = param (1 - lambd eta) - eta g``, the
  average ``ax`` and the decaying ``eta = lr / (1 + lambd lr t)^alpha``, ``mu = 1 / max(1, t - t0)``.

MindSpore keeps NAdam's ``mu_product_<param>`` and ASGD's ``eta_<param>``/``mu_<param>`` in plain lists, outside
the optimizer's parameters; sporax registers them (like the ``learning_rate_group_<i>`` Parameters) so a
compiled step carries them, so a sporax checkpoint has these extra keys (loading either way works).

``weight_decay`` adds ``weight_decay * param`` to the gradient; ``maximize`` negates it (not in NAdam/RAdam,
as in MindSpore). Where MindSpore's rule branches on a traced value, ``jnp.where`` selects.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp
import numpy as np

from sporax.common.parameter import Parameter, ParameterTuple
from sporax.common.tensor import Tensor
from sporax.experimental.optim._checks import check_at_least, check_positive
from sporax.experimental.optim.optimizer import Optimizer
from sporax.nn.optim.optimizer import write

__all__ = ["Adadelta", "Adamax", "NAdam", "RAdam", "Rprop", "ASGD"]


def _in_range(value, name: str, where: str, lo: float, hi: float, lo_closed: bool, hi_closed: bool) -> None:
    ok = (value >= lo if lo_closed else value > lo) and (value <= hi if hi_closed else value < hi)
    if not ok:
        left, right = "[" if lo_closed else "(", "]" if hi_closed else ")"
        raise ValueError(f"For '{where}', the '{name}' should be in range of {left}{lo}, {hi}{right}, but got "
                         f"{value}.")


def _grad(p, g, weight_decay, maximize):
    g = -g if maximize else g
    return g + weight_decay * p if weight_decay else g


def _scalars(params, prefix: str, value: float) -> ParameterTuple:
    return ParameterTuple([Parameter(Tensor(np.float32(value)), name=f"{prefix}_{p.name}", requires_grad=False)
                           for p in params])


class _Stepped(Optimizer):
    """An optimizer with an int32 ``step_t`` incremented at the start of each step."""

    def _init_step(self) -> None:
        self.step_t = Parameter(Tensor(jnp.int32(0)), name="step_t", requires_grad=False)
        self._rules: dict = {}

    def _cached(self, key, fn):
        if key not in self._rules:
            self._rules[key] = fn()
        return self._rules[key]

    def _advance(self):
        step = self.step_t._jax() + jnp.int32(1)
        write(self.step_t, step)
        return step.astype(jnp.float32)


def adadelta_rule(p, g, state, lr, hyper, *, rho, eps, weight_decay, maximize):
    acc, acc_up = state
    g = _grad(p, g, weight_decay, maximize)
    acc = rho * acc + (1 - rho) * g * g
    update = jnp.sqrt(acc_up + eps) * g / jnp.sqrt(acc + eps)
    acc_up = rho * acc_up + (1 - rho) * update * update
    return p - lr * update, (acc, acc_up)


class Adadelta(Optimizer):
    """``Adadelta(params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize=False)``."""

    def __init__(self, params, lr=1.0, rho=0.9, eps=1e-6, weight_decay=0.0, *, maximize: bool = False) -> None:
        check_positive(lr, "lr", "Adadelta")
        check_positive(eps, "eps", "Adadelta")
        check_at_least(weight_decay, "weight_decay", "Adadelta")
        _in_range(rho, "rho", "Adadelta", 0.0, 1.0, True, True)
        super().__init__(params, {"lr": lr, "rho": rho, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize})
        self.accum = self.parameters.clone(prefix="accum", init="zeros")
        self.accum_update = self.parameters.clone(prefix="accum_update", init="zeros")
        self._rules: dict = {}

    def _rule_of(self, g):
        key = (float(g["rho"]), float(g["eps"]), float(g["weight_decay"]), bool(g["maximize"]))
        if key not in self._rules:
            self._rules[key] = functools.partial(adadelta_rule, rho=key[0], eps=key[1], weight_decay=key[2],
                                                 maximize=key[3])
        return self._rules[key]

    def construct(self, gradients) -> bool:
        return self._step_groups(gradients, self._rule_of, (self.accum, self.accum_update))


def _check_betas(betas, where: str) -> None:
    _in_range(betas[0], "betas[0]", where, 0.0, 1.0, True, False)
    _in_range(betas[1], "betas[1]", where, 0.0, 1.0, True, False)


def adamax_rule(p, g, state, lr, hyper, *, beta1, beta2, eps, weight_decay, maximize):
    m, u = state
    (t,) = hyper
    g = _grad(p, g, weight_decay, maximize)
    m = m * beta1 + g * (1 - beta1)
    u = jnp.maximum(u * beta2, jnp.abs(g) + eps)
    return p - lr / (1 - beta1 ** t) * m / u, (m, u)


class Adamax(_Stepped):
    """``Adamax(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *, maximize=False)``."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, *,
                 maximize: bool = False) -> None:
        check_positive(lr, "lr", "Adamax")
        check_at_least(weight_decay, "weight_decay", "Adamax")
        check_positive(eps, "eps", "Adamax")
        _check_betas(betas, "Adamax")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "maximize": maximize})
        self._init_step()
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_inf = self.parameters.clone(prefix="exp_inf", init="zeros")

    def construct(self, gradients) -> bool:
        t = self._advance()

        def rule(g):
            key = (tuple(g["betas"]), float(g["eps"]), float(g["weight_decay"]), bool(g["maximize"]))
            return self._cached(key, lambda: functools.partial(adamax_rule, beta1=key[0][0], beta2=key[0][1],
                                                               eps=key[1], weight_decay=key[2], maximize=key[3]))

        return self._step_groups(gradients, rule, (self.exp_avg, self.exp_inf), (t,))


def nadam_rule(p, g, state, lr, hyper, *, beta1, beta2, eps, weight_decay, momentum_decay):
    m, v, mu_prod = state
    (t,) = hyper
    g = _grad(p, g, weight_decay, False)
    bc2 = 1 - beta2 ** t
    mu = beta1 * (1.0 - 0.5 * 0.96 ** (t * momentum_decay))
    mu_next = beta1 * (1.0 - 0.5 * 0.96 ** ((t + 1) * momentum_decay))
    mu_prod = mu_prod * mu
    m = m * beta1 + g * (1 - beta1)
    v = v * beta2 + g * g * (1 - beta2)
    denom = jnp.sqrt(v / bc2) + eps
    p = p - lr * (1.0 - mu) / (1.0 - mu_prod) * g / denom
    p = p - lr * mu_next / (1.0 - mu_prod * mu_next) * m / denom
    return p, (m, v, mu_prod)


class NAdam(_Stepped):
    """``NAdam(params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0, momentum_decay=4e-3)``."""

    def __init__(self, params, lr=2e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 momentum_decay=4e-3) -> None:
        check_positive(lr, "lr", "NAdam")
        check_positive(eps, "eps", "NAdam")
        check_at_least(weight_decay, "weight_decay", "NAdam")
        check_at_least(momentum_decay, "momentum_decay", "NAdam")
        _check_betas(betas, "NAdam")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay,
                                  "momentum_decay": momentum_decay})
        self._init_step()
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self.parameters.clone(prefix="exp_avg_sq", init="zeros")
        self.mu_product = _scalars(self.parameters, "mu_product", 1.0)

    def construct(self, gradients) -> bool:
        t = self._advance()

        def rule(g):
            key = (tuple(g["betas"]), float(g["eps"]), float(g["weight_decay"]), float(g["momentum_decay"]))
            return self._cached(key, lambda: functools.partial(nadam_rule, beta1=key[0][0], beta2=key[0][1],
                                                               eps=key[1], weight_decay=key[2],
                                                               momentum_decay=key[3]))

        return self._step_groups(gradients, rule, (self.exp_avg, self.exp_avg_sq, self.mu_product), (t,))


def radam_rule(p, g, state, lr, hyper, *, beta1, beta2, eps, weight_decay):
    m, v = state
    (t,) = hyper
    g = _grad(p, g, weight_decay, False)
    bc1, bc2 = 1 - beta1 ** t, 1 - beta2 ** t
    rho_inf = 2 / (1 - beta2) - 1
    rho_t = rho_inf - 2 * t * beta2 ** t / bc2
    m = m * beta1 + g * (1 - beta1)
    v = v * beta2 + g * g * (1 - beta2)
    corrected = m / bc1
    safe = jnp.maximum(rho_t, 5.0 + 1e-3)
    rect = jnp.sqrt((safe - 4) * (safe - 2) * rho_inf / ((rho_inf - 4) * (rho_inf - 2) * safe))
    adaptive = p - corrected * lr * jnp.sqrt(bc2) / (jnp.sqrt(v) + eps) * rect
    return jnp.where(rho_t > 5.0, adaptive, p - corrected * lr), (m, v)


class RAdam(_Stepped):
    """``RAdam(params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0)``."""

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0) -> None:
        check_positive(lr, "lr", "RAdam")
        check_at_least(weight_decay, "weight_decay", "RAdam")
        check_positive(eps, "eps", "RAdam")
        _check_betas(betas, "RAdam")
        super().__init__(params, {"lr": lr, "betas": betas, "eps": eps, "weight_decay": weight_decay})
        self._init_step()
        self.exp_avg = self.parameters.clone(prefix="exp_avg", init="zeros")
        self.exp_avg_sq = self.parameters.clone(prefix="exp_avg_sq", init="zeros")

    def construct(self, gradients) -> bool:
        t = self._advance()

        def rule(g):
            key = (tuple(g["betas"]), float(g["eps"]), float(g["weight_decay"]))
            return self._cached(key, lambda: functools.partial(radam_rule, beta1=key[0][0], beta2=key[0][1],
                                                               eps=key[1], weight_decay=key[2]))

        return self._step_groups(gradients, rule, (self.exp_avg, self.exp_avg_sq), (t,))


def rprop_rule(p, g, state, lr, hyper, *, etaminus, etaplus, step_min, step_max, maximize):
    prev, step_size = state
    (t,) = hyper
    g = -g if maximize else g
    step_size = jnp.where(t == 1, jnp.ones_like(step_size) * lr, step_size)
    s = jnp.sign(g * prev)
    factor = jnp.where(s > 0, etaplus, jnp.where(s < 0, etaminus, 1.0)).astype(p.dtype)
    step_size = jnp.clip(step_size * factor, step_min, step_max)
    g = jnp.where(factor == etaminus, jnp.zeros_like(g), g)
    return p - jnp.sign(g) * step_size, (g, step_size)


class Rprop(_Stepped):
    """``Rprop(params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, maximize=False)``."""

    def __init__(self, params, lr=1e-2, etas=(0.5, 1.2), step_sizes=(1e-6, 50), *, maximize: bool = False) -> None:
        check_positive(lr, "lr", "Rprop")
        check_positive(etas[1], "etas[1]", "Rprop", 1.0)
        _in_range(etas[0], "etas[0]", "Rprop", 0.0, 1.0, False, False)
        super().__init__(params, {"lr": lr, "etas": etas, "step_sizes": step_sizes, "maximize": maximize})
        self.prev = self.parameters.clone(prefix="prev", init="zeros")
        self.step_size = self.parameters.clone(prefix="step_size", init="zeros")
        self._init_step()

    def construct(self, gradients) -> bool:
        t = self._advance()

        def rule(g):
            key = (tuple(g["etas"]), tuple(g["step_sizes"]), bool(g["maximize"]))
            return self._cached(key, lambda: functools.partial(
                rprop_rule, etaminus=float(key[0][0]), etaplus=float(key[0][1]), step_min=float(key[1][0]),
                step_max=float(key[1][1]), maximize=key[2]))

        return self._step_groups(gradients, rule, (self.prev, self.step_size), (t,))


def asgd_rule(p, g, state, lr, hyper, *, lambd, alpha, t0, weight_decay, maximize):
    eta, mu, ax = state
    (t,) = hyper
    g = _grad(p, g, weight_decay, maximize)
    eta = jnp.where(t == 1, lr, eta)
    p = p * (1.0 - lambd * eta) - eta * g
    ax = jnp.where(mu != 1, ax + (p - ax) * mu, p)
    eta = lr / (1.0 + lambd * lr * t) ** alpha
    mu = 1.0 / jnp.maximum(1.0, t - t0)
    return p, (eta, mu, ax)


class ASGD(_Stepped):
    """``ASGD(params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0, maximize=False)``."""

    def __init__(self, params, lr=1e-2, lambd=1e-4, alpha=0.75, t0=1e6, weight_decay=0.0,
                 maximize: bool = False) -> None:
        check_positive(lr, "lr", "ASGD")
        check_at_least(weight_decay, "weight_decay", "ASGD")
        if not isinstance(lambd, float):
            raise TypeError(f"For 'ASGD', the type of lambd must be float, but got {type(lambd)}.")
        if not isinstance(t0, float):
            raise TypeError(f"For 'ASGD', the type of t0 must be float, but got {type(t0)}.")
        super().__init__(params, {"lr": lr, "lambd": lambd, "alpha": alpha, "t0": t0, "weight_decay": weight_decay,
                                  "maximize": maximize})
        self.mu = _scalars(self.parameters, "mu", 1.0)
        self.eta = _scalars(self.parameters, "eta", 0.0)
        self.ax = self.parameters.clone(prefix="ax", init="zeros")
        self._init_step()

    def construct(self, gradients) -> bool:
        t = self._advance()

        def rule(g):
            key = (float(g["lambd"]), float(g["alpha"]), float(g["t0"]), float(g["weight_decay"]), bool(g["maximize"]))
            return self._cached(key, lambda: functools.partial(asgd_rule, lambd=key[0], alpha=key[1], t0=key[2],
                                                               weight_decay=key[3], maximize=key[4]))

        return self._step_groups(gradients, rule, (self.eta, self.mu, self.ax), (t,))
