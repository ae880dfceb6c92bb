"""``nn.Optimizer``: a thin Cell that owns optimizer state as Parameters and applies a pure update.

The split follows Optax: the math of each optimizer is a small pure function
``rule(param, grad, state, lr, wd, hyper) -> (new_param, new_state)`` over arrays; this Cell
only (1) owns the state Parameters (``ParameterTuple.clone(prefix, init='zeros')``), named as
MindSpore names them so checkpoints carry them, (2) works out the learning rate and weight
decay of the current step, and (3) writes the results back with ``Parameter.set_data``.

All trainable parameters are updated by ONE ``jax.jit``-compiled function: eagerly that is one
dispatch per step whatever the parameter count, and inside the engine's jitted train step it
inlines into the same XLA program (the per-parameter loop runs only at trace time).

MindSpore semantics kept here (checked against MindSpore 2.10):

* ``params``: a list of Parameters, or group dicts with keys ``params``, ``lr``,
  ``weight_decay``, ``grad_centralization`` and ``order_params``.
* Weight decay is added to the gradient, ``g + wd * loss_scale * w``, before the gradient is
  divided by ``loss_scale``. Without groups it skips parameters whose name contains ``'beta'``
  or ``'gamma'``; with groups it applies to every parameter of a group whose decay is > 0.
* The learning rate is read for the current ``global_step`` *before* the step is incremented.
  A float becomes the Parameter ``learning_rate``; a list/1-D Tensor the 1-D Parameter
  ``learning_rate`` indexed by the step; a ``LearningRateSchedule`` is called with the step.
  Group learning rates are Parameters ``learning_rate_group_<i>``.
* ``global_step`` is an int32 Parameter of shape ``(1,)``.
* Parameters with ``requires_grad=False`` are never updated (their state is still created).
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Iterable
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common._validation import msg
from sporax.common.parameter import Parameter, ParameterTuple
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell
from sporax.nn.container import CellList
from sporax.nn.optim.learning_rate_schedule import LearningRateSchedule

__all__ = ["Optimizer", "write"]

_GROUP_KEYS = ("params", "lr", "weight_decay", "order_params", "grad_centralization")


class _Config(NamedTuple):
    """The static part of one fused update (hashable: it keys the jit cache)."""

    loss_scale: float
    decoupled: bool  # True: the rule applies weight decay itself (AdamWeightDecay)
    decay: tuple  # per updated parameter: index into the weight-decay values, or -1 for none
    lr: tuple  # per updated parameter: index into the learning-rate values
    centralize: tuple  # per updated parameter: apply gradient centralization


def _preprocess(cfg: _Config, i: int, p, g, wds):
    """Weight decay, centralization and loss-scale division of one gradient, as MindSpore orders them."""
    g = g.astype(p.dtype)
    if not cfg.decoupled and cfg.decay[i] >= 0:
        g = g + p * wds[cfg.decay[i]].astype(p.dtype)
    if cfg.centralize[i] and g.ndim > 1 and g.shape[1] % 16 == 0:
        g = g - jnp.mean(g, axis=tuple(range(1, g.ndim)), keepdims=True)
    if cfg.loss_scale != 1.0:
        g = g * jnp.asarray(1.0 / cfg.loss_scale, g.dtype)
    return g


@functools.partial(jax.jit, static_argnums=(0, 1))
def _fused_update(rule: Callable, cfg: _Config, params, grads, states, lrs, wds, hyper):
    """Apply ``rule`` to every (param, grad, state) triple; returns new params and new states."""
    new_params, new_states = [], []
    for i, (p, g) in enumerate(zip(params, grads)):
        g = _preprocess(cfg, i, p, g, wds)
        wd = wds[cfg.decay[i]] if (cfg.decoupled and cfg.decay[i] >= 0) else None
        new_p, new_s = rule(p, g, tuple(s[i] for s in states), lrs[cfg.lr[i]], wd, hyper)
        new_params.append(new_p.astype(p.dtype))
        new_states.append(tuple(n.astype(s[i].dtype) for n, s in zip(new_s, states)))
    return new_params, [list(col) for col in zip(*new_states)] if new_states else [[] for _ in states]


class _ParamLR(LearningRateSchedule):
    """A fixed or per-step (1-D) learning-rate Parameter inside a list of group schedules."""

    def __init__(self, learning_rate: Parameter) -> None:
        super().__init__()
        self.learning_rate = learning_rate

    def construct(self, global_step) -> Tensor:
        return Tensor._wrap(_lookup_lr(self.learning_rate, unwrap(global_step)))


def _lookup_lr(param: Parameter, step):
    """The value of a learning-rate Parameter at ``step``: itself, or element ``step`` of a 1-D list."""
    value = param._jax()
    if value.ndim == 0:
        return value
    n = value.shape[0]
    index = jnp.reshape(step, ())
    if not isinstance(index, jax.core.Tracer) and int(index) >= n:
        raise RuntimeError(
            f"For 'Optimizer', the dynamic learning rate '{param.name}' has {n} values, but the optimizer is at "
            f"step {int(index)}: give a longer list or a LearningRateSchedule."
        )
    # Under jit a step past the end cannot raise; it keeps the last value.
    return value[jnp.clip(index, 0, n - 1)]


class Optimizer(Cell):
    """Base class of the optimizers: ``Optimizer(learning_rate, parameters, weight_decay=0.0, loss_scale=1.0)``.

    Subclasses either define ``construct(gradients)`` with the helpers below (``get_lr``,
    ``decay_weight``, ``scale_grad``, ...), as in MindSpore, or call :meth:`_apply_rule` with a
    pure update rule and their state ParameterTuples, which is how the built-in optimizers work.
    """

    # True when the update of each parameter treats its rows (dimension 0) independently, so the
    # parallel optimizer may run it on a shard of rows (sporax/parallel/plan.py); subclasses opt in.
    _shard_rows = False

    _decoupled_weight_decay = False

    def __init__(self, learning_rate, parameters, weight_decay=0.0, loss_scale: float = 1.0) -> None:
        super().__init__(auto_prefix=False)
        where = self.cls_name
        parameters = self._check_parameters(parameters, "parameters")
        if isinstance(loss_scale, bool) or not isinstance(loss_scale, (int, float)):
            raise TypeError(msg(where, "loss_scale", "a float", loss_scale))
        if loss_scale <= 0:
            raise ValueError(msg(where, "loss_scale", "a float > 0", loss_scale))
        self.loss_scale = float(loss_scale)
        self.dynamic_lr = False
        self.dynamic_weight_decay = False
        self.is_group = isinstance(parameters[0], dict)
        self.is_group_lr = False
        self.is_group_params_ordered = False
        self.global_step = Parameter(Tensor(np.zeros((1,), np.int32)), name="global_step")
        default_lr = self._build_lr(learning_rate, "learning_rate")
        if self.is_group:
            params, lrs, wds, gcs = self._parse_groups(parameters, default_lr, weight_decay)
        else:
            if not all(isinstance(p, Parameter) for p in parameters):
                raise TypeError(
                    f"For '{where}', the 'parameters' should all be Parameters or all be group dicts, "
                    f"but got {[type(p).__name__ for p in parameters]}."
                )
            params = parameters
            lrs = [default_lr] * len(params)
            wds = [self._preprocess_weight_decay(weight_decay)] * len(params)
            gcs = [False] * len(params)
        self._lr_sources = _unique(lrs)
        self._lr_index = tuple(_index_of(self._lr_sources, lr) for lr in lrs)
        self.dynamic_lr = any(not isinstance(s, Parameter) or s.ndim == 1 for s in self._lr_sources)
        self._register_lr(default_lr)
        self.parameters = ParameterTuple(params)
        self._parameters = self.parameters
        self._init_weight_decay(wds)
        self.grad_centralization_flags = tuple(gcs)
        self.param_length = len(self._parameters)

    # ------------------------------------------------------------------ construction helpers
    @staticmethod
    def _check_parameters(parameters, arg: str) -> list:
        if parameters is None:
            raise ValueError(f"For 'Optimizer', the argument '{arg}' can not be None.")
        if isinstance(parameters, (Parameter, dict)) or not isinstance(parameters, Iterable):
            raise TypeError(msg("Optimizer", arg, "an iterable of Parameters or group dicts", type(parameters).__name__))
        parameters = list(parameters)
        if not parameters:
            raise ValueError(f"For 'Optimizer', the argument '{arg}' must not be empty.")
        return parameters

    def _build_lr(self, learning_rate, name: str):
        """A learning-rate source: a scalar or 1-D Parameter named ``name``, or a schedule Cell."""
        where = self.cls_name
        if isinstance(learning_rate, LearningRateSchedule):
            return learning_rate
        if isinstance(learning_rate, (int, float)) and not isinstance(learning_rate, bool):
            if learning_rate < 0:
                raise ValueError(msg(where, "learning_rate", "a float >= 0", learning_rate))
            return Parameter(Tensor(np.float32(learning_rate)), name=name)
        if isinstance(learning_rate, Tensor):
            values = learning_rate.asnumpy().astype(np.float32)
        elif isinstance(learning_rate, Iterable) and not isinstance(learning_rate, (str, dict)):
            values = np.asarray(list(learning_rate), dtype=np.float32)
        else:
            raise TypeError(
                msg(where, "learning_rate", "an int, float, Tensor, list of float or LearningRateSchedule",
                    type(learning_rate).__name__)
            )
        if values.ndim > 1:
            raise ValueError(msg(where, "learning_rate", "a scalar or a 1-D list/Tensor", f"shape {values.shape}"))
        return Parameter(Tensor(values), name=name)

    def _parse_groups(self, groups: list, default_lr, weight_decay):
        where = self.cls_name
        params, lrs, wds, gcs, order = [], [], [], [], None
        seen: set[str] = set()
        for number, group in enumerate(groups):
            if not isinstance(group, dict):
                raise TypeError(msg(where, "parameters", "all group dicts when one is a dict", type(group).__name__))
            unknown = [k for k in group if k not in _GROUP_KEYS]
            if unknown:
                raise KeyError(f"For '{where}', the keys of a parameter group should be in {list(_GROUP_KEYS)}, "
                               f"but got {unknown}.")
            if "order_params" in group:
                if len(group) > 1:
                    raise ValueError(f"For '{where}', the 'order_params' group should hold only 'order_params', "
                                     f"but got keys {list(group)}.")
                order = list(group["order_params"])
                continue
            members = self._check_parameters(group.get("params"), "group `params`")
            if "lr" in group:
                self.is_group_lr = True
                lr = self._build_lr(group["lr"], f"learning_rate_group_{number}")
            else:
                lr = default_lr
            wd = self._preprocess_weight_decay(group.get("weight_decay", weight_decay))
            gc = group.get("grad_centralization", False)
            if not isinstance(gc, bool):
                raise TypeError(msg(where, "grad_centralization", "a bool", gc))
            for p in members:
                if not isinstance(p, Parameter):
                    raise TypeError(msg(where, "group params", "Parameters", type(p).__name__))
                if p.name in seen:
                    raise RuntimeError(f"For '{where}', the parameter '{p.name}' is in more than one group.")
                seen.add(p.name)
                params.append(p)
                lrs.append(lr)
                wds.append(wd)
                gcs.append(gc)
        if order is not None:
            self.is_group_params_ordered = True
            params, lrs, wds, gcs = self._reorder(order, params, lrs, wds, gcs)
        return params, lrs, wds, gcs

    def _reorder(self, order, params, lrs, wds, gcs):
        names = [p.name for p in order]
        if sorted(names) != sorted(p.name for p in params):
            raise ValueError(f"For '{self.cls_name}', 'order_params' should hold exactly the grouped parameters "
                             f"({len(params)}), but got {len(order)} that do not match.")
        pos = {p.name: i for i, p in enumerate(params)}
        idx = [pos[n] for n in names]
        return ([params[i] for i in idx], [lrs[i] for i in idx], [wds[i] for i in idx], [gcs[i] for i in idx])

    def _preprocess_weight_decay(self, weight_decay):
        """A float (already multiplied by ``loss_scale``, as MindSpore stores it) or a schedule Cell."""
        if isinstance(weight_decay, Cell):
            self.dynamic_weight_decay = True
            return weight_decay
        if isinstance(weight_decay, bool) or not isinstance(weight_decay, (int, float)):
            raise TypeError(msg(self.cls_name, "weight_decay", "an int, float or Cell", weight_decay))
        if weight_decay < 0:
            raise ValueError(msg(self.cls_name, "weight_decay", "a float >= 0", weight_decay))
        return float(weight_decay) * self.loss_scale

    def _register_lr(self, default_lr) -> None:
        if not self.is_group_lr:
            self.learning_rate = default_lr
        elif all(isinstance(s, Parameter) for s in self._lr_sources):
            self.learning_rate = ParameterTuple(self._lr_sources)
        else:
            cells = [s if isinstance(s, Cell) else _ParamLR(s) for s in self._lr_sources]
            self.learning_rate = CellList(cells, auto_prefix=False)

    def _init_weight_decay(self, wds: list) -> None:
        if self.is_group:
            flags = tuple(isinstance(w, Cell) or w > 0 for w in wds)
        else:
            flags = tuple("beta" not in p.name and "gamma" not in p.name for p in self._parameters)
        self.decay_flags = flags
        self._wd_sources = _unique(wds)
        self._wd_index = tuple(_index_of(self._wd_sources, w) for w in wds)
        if self.is_group:
            self.weight_decay = tuple(wds)
            self.exec_weight_decay = any(flags)
        else:
            self.weight_decay = wds[0] if wds else 0.0
            self.exec_weight_decay = isinstance(self.weight_decay, Cell) or self.weight_decay > 0

    # ------------------------------------------------------------------ current hyper-parameters
    def _lr_values(self) -> tuple:
        """The learning rate of every source at the current global step (arrays of shape ())."""
        step = self.global_step._jax()
        out = []
        for source in self._lr_sources:
            if isinstance(source, Parameter):
                out.append(jnp.asarray(_lookup_lr(source, step), jnp.float32))
            else:
                value = unwrap(source(Tensor._wrap(step)))
                out.append(jnp.reshape(jnp.asarray(value, jnp.float32), ()))
        return tuple(out)

    def _wd_values(self) -> tuple:
        step = self.global_step._jax()
        out = []
        for source in self._wd_sources:
            if isinstance(source, Cell):
                value = unwrap(source(Tensor._wrap(step))) * self.loss_scale
                out.append(jnp.reshape(jnp.asarray(value, jnp.float32), ()))
            else:
                out.append(jnp.float32(source))
        return tuple(out)

    def get_lr(self):
        """The learning rate of the current step: a scalar Tensor, or a tuple per parameter with group lrs."""
        values = self._lr_values()
        if self.is_group_lr:
            return tuple(Tensor._wrap(values[i]) for i in self._lr_index)
        return Tensor._wrap(values[0])

    def get_weight_decay(self):
        """The weight decay of the current step (times ``loss_scale``), per parameter when grouped."""
        values = self._wd_values()
        if self.is_group:
            return tuple(Tensor._wrap(values[i]) for i in self._wd_index)
        return Tensor._wrap(values[0])

    def get_lr_parameter(self, param):
        """The learning-rate Parameter (or schedule) used by ``param`` (or by each of a list of them)."""
        index = {id(p): i for i, p in enumerate(self._parameters)}

        def one(p):
            if not isinstance(p, Parameter) or id(p) not in index:
                raise ValueError(f"For 'get_lr_parameter', the parameter {p!r} is not updated by this optimizer.")
            return self._lr_sources[self._lr_index[index[id(p)]]]

        return [one(p) for p in param] if isinstance(param, (list, tuple)) else one(param)

    # ------------------------------------------------------------------ gradient helpers (MindSpore API)
    def _config(self, indices) -> _Config:
        decay = tuple(self._wd_index[i] if (self.exec_weight_decay and self.decay_flags[i]) else -1 for i in indices)
        return _Config(
            self.loss_scale,
            self._decoupled_weight_decay,
            decay,
            tuple(self._lr_index[i] for i in indices),
            tuple(self.grad_centralization_flags[i] for i in indices),
        )

    def _map_gradients(self, gradients, cfg: _Config):
        arrays = self._grad_arrays(gradients)
        wds = self._wd_values()
        return tuple(
            Tensor._wrap(_preprocess(cfg, i, p._jax(), g, wds))
            for i, (p, g) in enumerate(zip(self._parameters, arrays))
        )

    def decay_weight(self, gradients) -> tuple:
        """``g + weight_decay * w`` for each parameter that decays (weight decay already times loss_scale)."""
        n = len(self._parameters)
        cfg = self._config(range(n))._replace(loss_scale=1.0, decoupled=False, centralize=(False,) * n)
        return self._map_gradients(gradients, cfg)

    def gradients_centralization(self, gradients) -> tuple:
        """Subtract each gradient's mean over its non-leading axes where the group asks for it."""
        n = len(self._parameters)
        cfg = self._config(range(n))._replace(loss_scale=1.0, decay=(-1,) * n)
        return self._map_gradients(gradients, cfg)

    def scale_grad(self, gradients) -> tuple:
        """Divide every gradient by ``loss_scale``."""
        n = len(self._parameters)
        cfg = self._config(range(n))._replace(decay=(-1,) * n, centralize=(False,) * n)
        return self._map_gradients(gradients, cfg)

    def flatten_gradients(self, gradients):
        """Kept for MindSpore compatibility: gradients are never flattened here."""
        return gradients

    def _grad_arrays(self, gradients) -> list:
        if isinstance(gradients, (Tensor, jax.Array)) or not isinstance(gradients, (tuple, list)):
            raise TypeError(msg(self.cls_name, "gradients", "a tuple of Tensors aligned with the parameters",
                                type(gradients).__name__))
        if len(gradients) != len(self._parameters):
            raise ValueError(
                f"For '{self.cls_name}', the 'gradients' should hold one gradient per parameter "
                f"({len(self._parameters)}), but got {len(gradients)}."
            )
        arrays = []
        for p, g in zip(self._parameters, gradients):
            if g is None:  # not updated here (a parameter-server parameter on a worker)
                arrays.append(None)
                continue
            a = unwrap(g)
            if tuple(a.shape) != tuple(p.shape):
                raise ValueError(
                    f"For '{self.cls_name}', the gradient of '{p.name}' should have shape {tuple(p.shape)}, "
                    f"but got {tuple(a.shape)}."
                )
            arrays.append(a)
        return arrays

    # ------------------------------------------------------------------ the fused update
    def _apply_rule(self, gradients, rule: Callable, states: tuple, hyper: tuple = ()) -> bool:
        """Update every trainable parameter and its ``states`` with the pure ``rule``; step += 1.

        ``rule(p, g, state_i, lr, wd, hyper) -> (new_p, new_state_i)`` where ``state_i`` holds this
        parameter's entry of each ParameterTuple in ``states``. ``rule`` must be the same object
        from call to call (it keys the jit cache), e.g. a ``functools.partial`` made once in
        ``__init__``. A gradient given as ``None`` leaves that parameter and its state untouched
        (parameter-server mode: a server updates it, see :mod:`sporax.ps`).
        """
        grads = self._grad_arrays(gradients)
        active = tuple(i for i, p in enumerate(self._parameters) if p.requires_grad and grads[i] is not None)
        lrs = self._lr_values()
        wds = self._wd_values()
        params = [self._parameters[i]._jax() for i in active]
        state_arrays = [[s[i]._jax() for i in active] for s in states]
        new_params, new_states = _fused_update(
            rule, self._config(active), params, [grads[i] for i in active], state_arrays, lrs, wds, tuple(hyper)
        )
        for i, value in zip(active, new_params):
            write(self._parameters[i], value)
        for s, values in zip(states, new_states):
            for i, value in zip(active, values):
                write(s[i], value)
        self._increase_step()
        return True

    def _increase_step(self) -> None:
        write(self.global_step, self.global_step._jax() + jnp.int32(1))

    def construct(self, *hyper_params):
        """The update; subclasses define it (MindSpore raises NotImplementedError here too)."""
        raise NotImplementedError(f"For '{type(self).__name__}', the optimizer does not implement 'construct'.")


def write(param: Parameter, value) -> None:
    """Store ``value`` (an array or tracer) into ``param`` through ``set_data``.

    ``set_data`` is the write path the state binding captures under ``jit``/``grad``;
    ``slice_shape=param.sliced`` keeps a sharded parameter's ``sliced`` flag, which a plain
    ``set_data`` would reset on every step.
    """
    param.set_data(Tensor._wrap(value), slice_shape=param.sliced)


def _unique(items: list) -> list:
    """``items`` without repeats (by identity for objects, by value for numbers), first-seen order."""
    out: list = []
    for item in items:
        if _index_of(out, item) < 0:
            out.append(item)
    return out


def _index_of(items: list, item) -> int:
    for i, x in enumerate(items):
        if x is item or (isinstance(x, float) and isinstance(item, float) and x == item):
            return i
    return -1

