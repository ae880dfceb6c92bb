"""``experimental.optim.Optimizer``: PyTorch-style parameter groups on sporax Parameters.

``Optimizer(params, defaults)``: ``params`` is a list of Parameters or of group dicts
(``{'params': [...], 'lr': ..., ...}``); each group gets the defaults it does not set, and
``param_groups`` holds them as MindSpore (and PyTorch) do. State lives in Parameters named as
MindSpore 2.10 names them (``exp_avg.<param>``, ``state_step``, ...). Each group's learning
rate is also kept in a Parameter ``learning_rate_group_<i>`` so a scheduler's change reaches a
compiled step; MindSpore keeps that Parameter outside the Cell's parameters, sporax registers
it, so a sporax checkpoint of the optimizer carries these extra keys (loading either way works).
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import jax
import numpy as np

from sporax.common._validation import msg
from sporax.common.parameter import Parameter, ParameterTuple
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.nn.optim.optimizer import write

__all__ = ["Optimizer"]


@functools.partial(jax.jit, static_argnums=(0,))
def _group_update(rule: Callable, params, grads, states, lr, hyper):
    new_p, new_s = [], []
    for i, (p, g) in enumerate(zip(params, grads)):
        np_, ns = rule(p, g.astype(p.dtype), tuple(s[i] for s in states), lr.astype(p.dtype), hyper)
        new_p.append(np_.astype(p.dtype))
        new_s.append(tuple(n.astype(s[i].dtype) for n, s in zip(ns, states)))
    return new_p, [list(c) for c in zip(*new_s)] if new_s else [[] for _ in states]


class Optimizer(Cell):
    """Base class: owns ``param_groups``, ``parameters`` and per-group learning-rate Parameters."""

    def __init__(self, params, defaults: dict) -> None:
        super().__init__(auto_prefix=False)
        where = self.cls_name
        if isinstance(params, (Parameter, Tensor)) or params is None:
            raise TypeError(msg(where, "params", "an iterable of Parameters or of group dicts", type(params).__name__))
        groups = list(params)
        if not groups:
            raise ValueError(f"For '{where}', the 'params' should not be empty.")
        if not isinstance(groups[0], dict):
            groups = [{"params": groups}]
        self.defaults = dict(defaults)
        self.param_groups: list = []
        all_params: list = []
        self.group_start_id = [0]
        seen: set = set()
        for group in groups:
            if not isinstance(group, dict) or "params" not in group:
                raise TypeError(msg(where, "params", "group dicts with a 'params' key", group))
            members = [group["params"]] if isinstance(group["params"], Parameter) else list(group["params"])
            for p in members:
                if not isinstance(p, Parameter):
                    raise TypeError(msg(where, "params", "Parameters", type(p).__name__))
                if id(p) in seen:
                    raise ValueError(f"For '{where}', the parameter '{p.name}' appears in more than one group.")
                seen.add(id(p))
            full = {**self.defaults, **group, "params": members}
            self.param_groups.append(full)
            all_params.extend(members)
            self.group_start_id.append(len(all_params))
        self.parameters = ParameterTuple(all_params)
        self.lrs = ParameterTuple([
            Parameter(Tensor(np.float32(g["lr"])), name=f"learning_rate_group_{i}", requires_grad=False)
            for i, g in enumerate(self.param_groups)
        ])

    def _sync_lr(self, group_id: int) -> None:
        """Write ``param_groups[group_id]['lr']`` into its Parameter when a user or scheduler changed it."""
        lr = self.param_groups[group_id]["lr"]
        p = self.lrs[group_id]
        if not isinstance(p._value, jax.core.Tracer) and float(np.asarray(p._value)) != np.float32(lr):
            p.set_data(Tensor(np.float32(lr)))

    def _grads(self, gradients) -> list:
        if not isinstance(gradients, (tuple, list)) or len(gradients) != len(self.parameters):
            raise ValueError(f"For '{self.cls_name}', the 'gradients' should be a tuple of one gradient per parameter "
                             f"({len(self.parameters)}).")
        out = []
        for p, g in zip(self.parameters, gradients):
            a = unwrap(g)
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(f"For '{self.cls_name}', the gradient of '{p.name}' should have shape "
                                 f"{tuple(p.shape)}, but got {tuple(a.shape)}.")
            out.append(a)
        return out

    def _step_groups(self, gradients, rule_of: Callable, states: tuple, hyper: tuple = ()) -> bool:
        """Apply ``rule_of(group)`` (a cached pure rule) to every group's parameters and ``states``."""
        grads = self._grads(gradients)
        for gid, group in enumerate(self.param_groups):
            self._sync_lr(gid)
            lo, hi = self.group_start_id[gid], self.group_start_id[gid + 1]
            params = [self.parameters[i]._jax() for i in range(lo, hi)]
            st = [[s[i]._jax() for i in range(lo, hi)] for s in states]
            new_p, new_s = _group_update(rule_of(group), params, grads[lo:hi], st, self.lrs[gid]._jax(), hyper)
            for i, v in zip(range(lo, hi), new_p):
                write(self.parameters[i], v)
            for s, values in zip(states, new_s):
                for i, v in zip(range(lo, hi), values):
                    write(s[i], v)
        return True
