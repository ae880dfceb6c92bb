"""``nn.Lamb`` and ``nn.LARS``: layer-wise adaptive optimizers, with MindSpore 2.10's state names.

Lamb (state ``lamb_m.<param>``, ``lamb_v.<param>``), at step ``t`` (1 for the first step)::

    m = beta1 * m + (1 - beta1) * g;  v = beta2 * v + (1 - beta2) * g * g
    r = (m / (1 - beta1**t)) / (sqrt(v / (1 - beta2**t)) + eps) + weight_decay * param
    ratio = ||param|| / ||r||   (1 where either norm is 0)
    param -= lr * ratio * r

Weight decay is decoupled (in ``r``) and skips parameters whose name holds 'beta' or 'gamma'.

LARS wraps another optimizer: each gradient (except LayerNorm and bias parameters, by default)
is replaced by ``LARSUpdate``'s layer-wise scaled gradient (with the wrapped optimizer's weight
decay folded in), then the wrapped optimizer steps. MindSpore 2.10 has no CPU kernel for
``Lamb`` or ``LARSUpdate``; both are checked against these formulas.
"""

from __future__ import annotations

import functools

import jax.numpy as jnp

from sporax.common._validation import check_bool, msg
from sporax.common.tensor import Tensor
from sporax.nn.cell import Cell
from sporax.nn.optim.adam import _check_betas
from sporax.nn.optim.optimizer import Optimizer
from sporax.ops.operations._optim_ops import LARSUpdate

__all__ = ["Lamb", "LARS", "lamb_rule"]


def lamb_rule(p, g, state, lr, wd, hyper, *, beta1: float, beta2: float, eps: float):
    m, v = state
    (t,) = hyper
    m = beta1 * m + (1.0 - beta1) * g
    v = beta2 * v + (1.0 - beta2) * g * g
    m_hat = m / (1.0 - jnp.power(beta1, t))
    v_hat = v / (1.0 - jnp.power(beta2, t))
    r = m_hat / (jnp.sqrt(v_hat) + eps)
    if wd is not None:
        r = r + wd * p
    w_norm, r_norm = jnp.linalg.norm(p), jnp.linalg.norm(r)
    ratio = jnp.where((w_norm > 0) & (r_norm > 0), w_norm / jnp.where(r_norm > 0, r_norm, 1.0), 1.0)
    return p - lr * ratio * r, (m, v)


class Lamb(Optimizer):
    """``Lamb(params, learning_rate, beta1=0.9, beta2=0.999, eps=1e-6, weight_decay=0.0)``."""

    _decoupled_weight_decay = True

    def __init__(self, params, learning_rate, beta1: float = 0.9, beta2: float = 0.999, eps: float = 1e-6,
                 weight_decay=0.0) -> None:
        super().__init__(learning_rate, params, weight_decay)
        _check_betas(beta1, beta2, eps, "Lamb")
        self.beta1, self.beta2, self.eps = beta1, beta2, eps
        self.params = self._parameters
        self.moments1 = self._parameters.clone(prefix="lamb_m", init="zeros")
        self.moments2 = self._parameters.clone(prefix="lamb_v", init="zeros")
        self._rule = functools.partial(lamb_rule, beta1=beta1, beta2=beta2, eps=eps)

    def construct(self, gradients) -> bool:
        t = (self.global_step._jax()[0] + 1).astype(jnp.float32)
        return self._apply_rule(gradients, self._rule, (self.moments1, self.moments2), (t,))


def _default_lars_filter(param) -> bool:
    return "LayerNorm" not in param.name and "bias" not in param.name


class LARS(Cell):
    """``LARS(optimizer, epsilon=1e-5, coefficient=0.001, use_clip=False, lars_filter=...)``: layer-wise
    adaptive rate scaling around ``optimizer``; the checkpoint keys are the wrapped optimizer's."""

    def __init__(self, optimizer, epsilon: float = 1e-5, coefficient: float = 0.001, use_clip: bool = False,
                 lars_filter=_default_lars_filter) -> None:
        super().__init__(auto_prefix=False)
        if not isinstance(optimizer, Optimizer):
            raise TypeError(msg("LARS", "optimizer", "an Optimizer", type(optimizer).__name__))
        if optimizer.dynamic_weight_decay:
            raise TypeError("For 'LARS', the wrapped optimizer's weight decay should be a float, not a schedule.")
        for arg, value in (("epsilon", epsilon), ("coefficient", coefficient)):
            if not isinstance(value, float):
                raise TypeError(msg("LARS", arg, "a float", value))
        self.use_clip = check_bool(use_clip, "use_clip", "LARS")
        if use_clip and optimizer.is_group_lr and optimizer.dynamic_lr:
            raise ValueError("For 'LARS', if 'use_clip' is True, the dynamic learning rate and group learning rate "
                             "cannot both be true.")
        self.opt = optimizer
        self.parameters = optimizer.parameters
        self.lars_flag = tuple(bool(lars_filter(p)) for p in self.parameters)
        self.lars = LARSUpdate(epsilon, coefficient, use_clip)
        # Weight decay moves into the LARS update: the wrapped optimizer no longer applies it.
        n = len(self.parameters)
        wds = optimizer.weight_decay if optimizer.is_group else (optimizer.weight_decay,) * n
        self._decay = tuple(float(w) / optimizer.loss_scale if (f and optimizer.exec_weight_decay) else 0.0
                            for w, f in zip(wds, optimizer.decay_flags))
        optimizer.exec_weight_decay = False
        optimizer.decay_flags = (False,) * n

    def construct(self, gradients) -> bool:
        lrs = self.opt.get_lr()
        new = []
        for i, (p, g) in enumerate(zip(self.parameters, gradients)):
            if not self.lars_flag[i]:
                new.append(g)
                continue
            w, ga = p._jax(), g._jax() if isinstance(g, Tensor) else jnp.asarray(g)
            lr = lrs[i] if isinstance(lrs, tuple) else lrs
            new.append(self.lars(Tensor._wrap(w), Tensor._wrap(ga), Tensor._wrap(jnp.sum(w * w)),
                                 Tensor._wrap(jnp.sum(ga * ga)), Tensor._wrap(jnp.float32(self._decay[i])), lr))
        return self.opt(tuple(new))
