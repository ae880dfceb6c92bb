"""``OptaxOptimizer``: any Optax ``GradientTransformation`` as a sporax optimizer Cell.

Optax keeps an optimizer's math as ``(init, update)`` over pytrees; this adapter keeps the
resulting state in Parameters, so it is saved in checkpoints, threaded through the engine's
``jit`` like every other state, and restored by ``load_param_into_net``. The transform sees
the parameters as a dict keyed by parameter name, so each state leaf has a readable, unique
name: ``optax.adamw(1e-3)`` gives ``optax.0.count``, ``optax.0.mu.fc.weight``,
``optax.0.nu.fc.weight``, ... (``<prefix>.<path in the optax state>``).

The step is ``param + learning_rate * update`` with ``learning_rate`` a sporax learning rate
(float, list or ``LearningRateSchedule``, read at ``global_step``; default 1.0, since a full
Optax optimizer such as ``optax.adam(1e-3)`` already scales and negates its updates). Weight
decay and loss scale act on the gradients first, exactly as for the built-in optimizers.
"""

from __future__ import annotations

import functools

import jax
import jax.numpy as jnp

from sporax.common._validation import msg
from sporax.common.parameter import Parameter, ParameterTuple
from sporax.common.tensor import Tensor
from sporax.nn.optim.optimizer import Optimizer, _preprocess, write

__all__ = ["OptaxOptimizer"]

_NAME_CHARS = str.maketrans({c: "_" for c in " /[]()'\""})


def _key_text(key) -> str:
    for attr in ("key", "name", "idx"):
        if hasattr(key, attr):
            return str(getattr(key, attr)).translate(_NAME_CHARS)
    return str(key).translate(_NAME_CHARS)


def _owner(path, names: set):
    """The parameter name a state leaf belongs to (a dict key of the params tree), or None."""
    for key in path:
        if isinstance(key, jax.tree_util.DictKey) and key.key in names:
            return key.key
    return None


@functools.partial(jax.jit, static_argnums=(0, 1, 2, 3))
def _optax_step(transform, cfg, names: tuple, treedef, params, grads, leaves, lrs, wds):
    """Preprocess the gradients, run ``transform.update`` and apply the updates (pure)."""
    grads = [_preprocess(cfg, i, p, g, wds) for i, (p, g) in enumerate(zip(params, grads))]
    p_tree = dict(zip(names, params))
    updates, new_state = transform.update(dict(zip(names, grads)), treedef.unflatten(leaves), p_tree)
    new_params = [
        (p + lrs[cfg.lr[i]].astype(p.dtype) * updates[n].astype(p.dtype)).astype(p.dtype)
        for i, (n, p) in enumerate(zip(names, params))
    ]
    new_leaves = [n.astype(o.dtype) for n, o in zip(jax.tree_util.tree_leaves(new_state), leaves)]
    return new_params, new_leaves


class OptaxOptimizer(Optimizer):
    """``OptaxOptimizer(params, transform, learning_rate=1.0, weight_decay=0.0, loss_scale=1.0, prefix='optax')``.

    >>> import optax
    >>> opt = OptaxOptimizer(net.trainable_params(), optax.adamw(1e-3, weight_decay=1e-2))  # doctest: +SKIP

    The state is initialized from the parameters' current values (lazy parameters are
    materialized here). Parameters with ``requires_grad=False`` and their own state entries
    are never updated; shared entries (such as Adam's ``count``) advance every step.
    """

    def __init__(self, params, transform, learning_rate=1.0, weight_decay=0.0, loss_scale: float = 1.0,
                 prefix: str = "optax") -> None:
        super().__init__(learning_rate, params, weight_decay, loss_scale)
        if not (callable(getattr(transform, "init", None)) and callable(getattr(transform, "update", None))):
            raise TypeError(msg("OptaxOptimizer", "transform", "an optax GradientTransformation", transform))
        self.transform = transform
        self._names = tuple(p.name for p in self._parameters)
        state = transform.init({p.name: p._jax() for p in self._parameters})
        flat, self._treedef = jax.tree_util.tree_flatten_with_path(state)
        names = set(self._names)
        leaves, owners = [], []
        for path, leaf in flat:
            name = ".".join([prefix, *(_key_text(k) for k in path)]) if path else prefix
            leaves.append(Parameter(Tensor._wrap(jnp.asarray(leaf)), name=name, requires_grad=False))
            owners.append(_owner(path, names))
        self._leaf_owner = tuple(owners)
        self.optax_state = ParameterTuple(leaves)  # registered: saved in checkpoints, threaded by jit

    def construct(self, gradients) -> bool:
        grads = self._grad_arrays(gradients)
        params = [p._jax() for p in self._parameters]
        leaves = [leaf._jax() for leaf in self.optax_state]
        cfg = self._config(range(len(params)))
        new_params, new_leaves = _optax_step(
            self.transform, cfg, self._names, self._treedef, params, grads, leaves, self._lr_values(),
            self._wd_values(),
        )
        frozen = {p.name for p in self._parameters if not p.requires_grad}
        for p, value in zip(self._parameters, new_params):
            if p.name not in frozen:
                write(p, value)
        for leaf, owner, value in zip(self.optax_state, self._leaf_owner, new_leaves):
            if owner not in frozen:
                write(leaf, value)
        self._increase_step()
        return True
