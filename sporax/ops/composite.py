"""Gradient operations: ``GradOperation``, ``grad``, ``value_and_grad``, ``stop_gradient``.

All of them go through one function, :func:`_differentiate`, which runs ``jax.vjp`` over
the user's function with the one state-threading mechanism (:mod:`sporax.common._binding`):
the differentiated inputs become Tensors around vjp tracers, the ``weights`` Parameters are
bound to vjp tracers, and every other parameter of a Cell (plus the random key state) is
bound to its current value so that writes during the forward pass (a BatchNorm's moving
statistics, a Dropout key) are carried out and stored after the transformation. Parameters
written by a plain function without being bound are adopted by the grad frame and stored
the same way.

Conventions follow MindSpore 2.10 (checked against it):

- a function with several outputs is differentiated with respect to all of them (each gets
  a cotangent of ones), unless ``has_aux=True``, where only the first output is;
- a Parameter with ``requires_grad=False`` listed in ``weights`` gets a zero gradient;
- ``grad_position`` given as an int or a one-element tuple gives a single Tensor, a longer
  tuple a tuple; ``weights`` given as one Parameter gives one Tensor, a list/tuple a tuple.

In GRAPH_MODE, a gradient function called outside any trace is compiled (with its state)
like a cell, through :func:`sporax.common.api.run_compiled`.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np

from sporax.common import _binding
from sporax.common._random_state import key_state
from sporax.common._validation import check_bool, msg
from sporax.common.parameter import Parameter, ParameterTuple
from sporax.common.tensor import Tensor
from sporax.parallel import opt_shard

__all__ = ["GradOperation", "grad", "value_and_grad", "stop_gradient"]


# ---------------------------------------------------------------------------------- core
def _as_array(x):
    return x._jax() if isinstance(x, Tensor) else x


def _is_float(dtype) -> bool:
    return jnp.issubdtype(dtype, jnp.inexact)


def _ones_like_cotangent(x):
    x = jnp.asarray(x) if not hasattr(x, "dtype") else x
    if _is_float(x.dtype):
        return jnp.ones(x.shape, x.dtype)
    return np.zeros(x.shape, jax.dtypes.float0)


def _zero_cotangent(x):
    if _is_float(x.dtype):
        return jnp.zeros(x.shape, x.dtype)
    return np.zeros(x.shape, jax.dtypes.float0)


def _store(target, value) -> None:
    """Write a value computed by the transformation back into a Parameter (or the key state)."""
    if isinstance(target, Parameter):
        target._assign(value)
    else:
        _binding.check_write(target, value)
        target._value = value


def _shadow_dtype(dtype):
    """The float dtype that holds an integer (or Bool) input's values exactly while differentiating."""
    return jnp.float64 if np.dtype(dtype).itemsize >= 4 else jnp.float32


def _int_grad(g, like):
    """The float gradient of an integer input, in the input's dtype (rounded, as integer math gives)."""
    if getattr(g, "dtype", None) == jax.dtypes.float0:
        return jnp.zeros(like.shape, like.dtype)
    if like.dtype == np.bool_:
        return g.astype(like.dtype)
    return jnp.round(g).astype(like.dtype)


def _int_outputs(fn, args, kwargs, positions, orig_in, bound, values, out_arrays):
    """``out_arrays`` (computed on float shadows) cast to the dtypes the integer inputs give.

    The dtypes come from an abstract trace of ``fn`` on the original inputs (no compile, no
    state change); if ``fn`` cannot be traced so, the float outputs are returned as they are.
    """

    def original(d_in, vals):
        call_args = list(args)
        for pos, a in zip(positions, d_in):
            call_args[pos] = Tensor._wrap(a)
        with _binding.bind(bound, vals, kind="grad"):
            out = fn(*call_args, **kwargs)
        return [_as_array(x) for x in jax.tree_util.tree_leaves(out)]

    try:
        shapes = jax.eval_shape(original, orig_in, values)
    except Exception:  # noqa: BLE001 - only a refinement of the dtypes
        return out_arrays
    if len(shapes) != len(out_arrays):
        return out_arrays
    return [o.astype(s.dtype) if hasattr(o, "dtype") and o.dtype != s.dtype else o for o, s in zip(out_arrays, shapes)]


_MAX_BPROP_ENTRIES = 16

_TRACE_ERRORS = (jax.errors.ConcretizationTypeError, jax.errors.TracerBoolConversionError,
                 jax.errors.TracerIntegerConversionError, jax.errors.TracerArrayConversionError)


def _differentiate(fn, args: tuple, kwargs: dict, positions: tuple, weights: list, sens, has_aux: bool):
    """(outputs, input gradients, weight gradients) of ``fn(*args, **kwargs)``.

    ``positions``: indices of ``args`` to differentiate; ``weights``: Parameters to
    differentiate; ``sens``: the output cotangent (None for ones); ``has_aux``: differentiate
    only the first output.

    Eagerly (PYNATIVE_MODE, no trace active) a Cell is differentiated as MindSpore's PyNative
    does with its backward-graph cache: the forward pass runs eagerly (real values, real
    state writes), and the gradients come from a compiled forward+backward of the same cell,
    cached per signature, fed the state as it was before the forward pass (same Dropout key,
    same statistics). The cache key includes the cell tree's Python attributes
    (:func:`_binding.attribute_fingerprint`), so changing ``net.scale`` re-traces. A cell
    whose Python code branches on tensor values cannot be traced, and one whose attributes
    change on every call would re-trace forever: both fall back, once and for all, to an
    eager ``jax.vjp``. (Known limit: module globals read by construct are not in the key.)
    """
    if not _binding._frames and _binding._is_cell(fn):
        result = _differentiate_cached(fn, args, kwargs, positions, weights, sens, has_aux)
        if result is not None:
            return result
    return _differentiate_eager(fn, args, kwargs, positions, weights, sens, has_aux)


def _differentiate_cached(fn, args, kwargs, positions, weights, sens, has_aux):
    """Eager forward + cached compiled gradients (see :func:`_differentiate`); None to fall back."""
    from sporax.common.api import run_compiled

    cache = fn.__dict__["_jit_cache"].setdefault("bprop", {})
    if cache.get("eager_only"):
        return None
    params, training = _binding.walk_cell(fn)
    ids = {id(p) for p in params}
    state = params + [w for w in weights if id(w) not in ids]

    def gradients(sens_arg, *a, **kw):
        _, g_in, g_w = _differentiate_eager(fn, a, kw, positions, weights, sens_arg, has_aux)
        return tuple(g_in), tuple(g_w)

    extra = (training, tuple(positions), tuple(map(id, weights)), has_aux, _binding.attribute_fingerprint(fn))
    if len(cache) > _MAX_BPROP_ENTRIES:  # attributes or shapes change on every call: stop compiling
        cache.clear()
        cache["eager_only"] = True
        return None
    try:
        g_in, g_w = run_compiled(cache, gradients, state, (sens, *args), kwargs, extra, readonly=True)
    except _TRACE_ERRORS:
        cache.clear()
        cache["eager_only"] = True
        return None
    return fn(*args, **kwargs), list(g_in), list(g_w)


def _differentiate_eager(fn, args: tuple, kwargs: dict, positions: tuple, weights: list, sens, has_aux: bool):
    """Run ``fn`` once under ``jax.vjp``; return (outputs, input gradients, weight gradients)."""
    args = list(args)
    for pos in positions:
        if not isinstance(args[pos], (Tensor, jax.Array, np.ndarray, jax.core.Tracer)):
            raise TypeError(msg("grad", f"input {pos}", "a Tensor to differentiate", type(args[pos]).__name__))
    diff_in = [_as_array(args[pos]) for pos in positions]
    # MindSpore differentiates integer inputs as real numbers (its test_SubGrad, test_transpose_grad):
    # JAX has no integer tangents, so they are differentiated as a float shadow of the same values,
    # and the gradient is rounded back to the input's dtype.
    int_pos = {i for i, a in enumerate(diff_in) if not _is_float(a.dtype)}
    orig_in = list(diff_in)
    for i in int_pos:
        diff_in[i] = jnp.asarray(diff_in[i]).astype(_shadow_dtype(diff_in[i].dtype))
    w_vals = _binding.materialize(weights)
    w_ids = {id(p) for p in weights}
    others = [p for p in (_binding.cell_parameters(fn) if _binding._is_cell(fn) else []) if id(p) not in w_ids]
    others.append(key_state)
    other_vals = _binding.materialize(others)
    bound = [*weights, *others]
    side: dict = {}

    def inner(d_in, w_in):
        call_args = list(args)
        for pos, a in zip(positions, d_in):
            call_args[pos] = Tensor._wrap(a)
        inputs = opt_shard.forward_views(bound, [*w_in, *other_vals])  # parallel optimizer: gathered weights
        with _binding.bind(bound, inputs, kind="grad") as frame:
            out = fn(*call_args, **kwargs)
            new = _binding.read_values(bound)
            side["adopted"] = _binding.adopted(frame)
            adopted_vals = _binding.read_values(side["adopted"])
        changed = [i for i, (n, a) in enumerate(zip(new, inputs)) if n is not a]
        side["changed"] = changed
        if has_aux:
            if not isinstance(out, (tuple, list)) or len(out) < 2:
                raise ValueError("When has_aux is True, origin fn requires more than one outputs.")
            target = out[0]
        else:
            target = out
        leaves, tree = jax.tree_util.tree_flatten(out)
        side["tree"] = tree
        side["kinds"] = [isinstance(x, Tensor) for x in leaves]
        out_arrays = [_as_array(x) for x in leaves]
        target_arrays = jax.tree_util.tree_map(_as_array, target)
        return target_arrays, (out_arrays, [new[i] for i in changed], adopted_vals)

    fwd = opt_shard.remat(inner, bound)  # comm recompute: gathered weights not kept for the backward pass
    primal, vjp_fn, (out_arrays, new_vals, adopted_vals) = jax.vjp(fwd, diff_in, w_vals, has_aux=True)
    if sens is None:
        ct = jax.tree_util.tree_map(_ones_like_cotangent, primal)
    else:
        ct = _sens_cotangent(sens, primal, shadowed=bool(int_pos))
    g_in, g_w = vjp_fn(ct)
    for i, v in zip(side["changed"], new_vals):
        _store(bound[i], v)
    for p, v in zip(side["adopted"], adopted_vals):
        _store(p, v)
    g_in = [_int_grad(g, a) if i in int_pos else g for i, (g, a) in enumerate(zip(g_in, orig_in))]
    g_w = [g if p.requires_grad else jnp.zeros_like(g) for p, g in zip(weights, g_w)]
    if int_pos:  # outputs as the integer inputs would have given them
        out_arrays = _int_outputs(fn, args, kwargs, positions, orig_in, bound, [*w_vals, *other_vals], out_arrays)
    leaves = [Tensor._wrap(a) if is_t else a for a, is_t in zip(out_arrays, side["kinds"])]
    outputs = side["tree"].unflatten(leaves)
    return outputs, [Tensor._wrap(g) for g in g_in], [Tensor._wrap(g) for g in g_w]


def _sens_cotangent(sens, primal, shadowed: bool = False):
    """The user's sensitivity as a cotangent of the output's structure and dtypes (MindSpore's rule).

    Each sens must have its output's shape and dtype (ValueError / TypeError naming ``sens``),
    except for a scalar (0-d) output, whose sens may have any shape: the output is taken as
    broadcast to it, so the cotangent is the sum of the sens (MindSpore 2.10's result for the
    tutorial's "gradient with sens" on a scalar loss). ``shadowed``: the outputs were computed
    on float shadows of integer inputs, whose sens has the integer dtype.
    """
    sens_tree = jax.tree_util.tree_map(_as_array, sens)
    s_leaves = jax.tree_util.tree_leaves(sens_tree)
    p_leaves, p_tree = jax.tree_util.tree_flatten(primal)
    if len(s_leaves) != len(p_leaves):
        raise ValueError(
            f"For 'GradOperation', the 'sens' should have one Tensor per network output ({len(p_leaves)}), "
            f"but got {len(s_leaves)}."
        )
    ct = []
    for i, (s, p) in enumerate(zip(s_leaves, p_leaves)):
        if not _is_float(p.dtype):
            ct.append(np.zeros(p.shape, jax.dtypes.float0))
            continue
        where = "'sens'" if len(p_leaves) == 1 else f"'sens' element {i}"
        s_shape = tuple(np.shape(s))
        if tuple(p.shape) == ():
            ct.append(jnp.sum(jnp.asarray(s, p.dtype)))
            continue
        if s_shape != tuple(p.shape):
            raise ValueError(
                f"For 'GradOperation', the {where} should have the network output's shape {tuple(p.shape)}, "
                f"but got shape {s_shape}."
            )
        s_dtype = getattr(s, "dtype", None)
        # (an output computed on the float shadow of integer inputs takes the integer sens as is)
        if s_dtype is not None and s_dtype != p.dtype and not shadowed:
            from sporax.common import dtype as mstype

            raise TypeError(
                f"For 'GradOperation', the {where} should have the network output's dtype "
                f"{mstype.from_numpy(p.dtype)}, but got {mstype.from_numpy(s_dtype)}."
            )
        ct.append(jnp.asarray(s, p.dtype))
    return p_tree.unflatten(ct)


def _graph_mode() -> bool:
    from sporax import context

    return context._state.execution.mode == context.GRAPH_MODE


def _weights_list(weights, where: str) -> tuple[list, bool]:
    """(list of Parameters, whether the caller gave a single Parameter)."""
    if weights is None:
        return [], False
    if isinstance(weights, Parameter):
        return [weights], True
    if isinstance(weights, (ParameterTuple, list, tuple)):
        for w in weights:
            if not isinstance(w, Parameter):
                raise TypeError(msg(where, "weights", "a Parameter, a ParameterTuple or a list of Parameters",
                                    f"an element of type {type(w).__name__}"))
        return list(weights), False
    raise TypeError(msg(where, "weights", "a Parameter, a ParameterTuple or a list of Parameters", type(weights).__name__))


class _GradFunction:
    """The callable that a gradient operation returns; compiled in GRAPH_MODE at top level."""

    def __init__(self, fn, weights: list, finish) -> None:
        self.fn = fn
        self.weights = weights
        self._finish = finish  # (args, kwargs) -> result, running _differentiate
        self._cache: dict = {}

    def _sporax_state_roots(self) -> tuple:
        return (self.fn, self.weights)

    def __call__(self, *args, **kwargs):
        if _graph_mode() and not _binding._frames:
            from sporax.common.api import run_compiled

            params, cells = _binding.discover_with_cells(self, args, kwargs)
            training = tuple(_binding.walk_cell_cached(c)[1] for c in cells)
            return run_compiled(self._cache, self._finish, params, args, kwargs, training)
        return self._finish(*args, **kwargs)


# ---------------------------------------------------------------------------------- GradOperation
class GradOperation:
    """MindSpore's ``GradOperation``: ``GradOperation(get_all, get_by_list, sens_param)(net, weights)``.

    The returned function takes the network's inputs (plus the sensitivity, the output
    cotangent, last when ``sens_param=True``) and returns the gradient with respect to the
    first input; with ``get_all`` a tuple over all inputs; with ``get_by_list`` a tuple over
    ``weights`` (default: ``net.trainable_params()``); with both, ``(inputs, weights)``.
    """

    def __init__(self, get_all: bool = False, get_by_list: bool = False, sens_param: bool = False) -> None:
        self.get_all = check_bool(get_all, "get_all", "GradOperation")
        self.get_by_list = check_bool(get_by_list, "get_by_list", "GradOperation")
        self.sens_param = check_bool(sens_param, "sens_param", "GradOperation")

    def __call__(self, fn, weights=None) -> _GradFunction:
        if not callable(fn):
            raise TypeError(msg("GradOperation", "fn", "a Cell or function", type(fn).__name__))
        if self.get_by_list:
            if weights is None:
                if not _binding._is_cell(fn):
                    raise ValueError(
                        "For 'GradOperation', 'get_by_list=True' needs 'weights' when 'fn' is not a Cell."
                    )
                weights = fn.trainable_params()
            w_list, _ = _weights_list(weights, "GradOperation")
        else:
            w_list = []
        get_all, get_by_list, sens_param = self.get_all, self.get_by_list, self.sens_param

        def finish(*args, **kwargs):
            sens = None
            if sens_param:
                if not args:
                    raise TypeError("For 'GradOperation' with 'sens_param=True', the last input should be the sens.")
                args, sens = args[:-1], args[-1]
            if get_all:
                positions = tuple(i for i, a in enumerate(args) if isinstance(a, Tensor))
            elif get_by_list:
                positions = ()
            else:
                if not args:
                    raise TypeError("For 'GradOperation', the network needs at least one input to differentiate.")
                positions = (0,)
            _, g_in, g_w = _differentiate(fn, args, kwargs, positions, w_list, sens, False)
            if get_all and get_by_list:
                return tuple(g_in), tuple(g_w)
            if get_all:
                return tuple(g_in)
            if get_by_list:
                return tuple(g_w)
            return g_in[0]

        return _GradFunction(fn, w_list, finish)


# ---------------------------------------------------------------------------------- functional
_DIFFERENTIABLE = (Tensor, jax.Array, np.ndarray, jax.core.Tracer)


def _positions(grad_position, n_args: int, where: str) -> tuple[tuple, bool]:
    """(positions, whether one Tensor is returned) for ``grad_position``."""
    if grad_position is None:
        return (), False
    if isinstance(grad_position, int) and not isinstance(grad_position, bool):
        pos, single = (grad_position,), True
    elif isinstance(grad_position, tuple) and grad_position and all(
        isinstance(p, int) and not isinstance(p, bool) for p in grad_position
    ):
        pos, single = grad_position, len(grad_position) == 1
    else:
        raise TypeError(msg(where, "grad_position", "an int, a non-empty tuple of int or None", grad_position))
    for p in pos:
        if not 0 <= p < n_args:
            raise ValueError(msg(where, "grad_position", f"indices in range [0, {n_args})", grad_position))
    return pos, single


def _make(fn, grad_position, weights, has_aux: bool, with_value: bool, where: str,
          return_ids: bool = False) -> _GradFunction:
    if not callable(fn):
        raise TypeError(msg(where, "fn", "a Cell or function", type(fn).__name__))
    check_bool(has_aux, "has_aux", where)
    if grad_position is None and weights is None:
        raise ValueError("`grad_position` and `weight` can not be None at the same time.")
    w_list, single_w = _weights_list(weights, where)

    def finish(*args, **kwargs):
        positions, single_pos = _positions(grad_position, len(args), where)
        kept = tuple(p for p in positions if isinstance(args[p], _DIFFERENTIABLE))
        if kept != positions:  # MindSpore drops Python-number positions (jit or not)
            positions, single_pos = kept, len(kept) == 1
        out, g_in, g_w = _differentiate(fn, args, kwargs, positions, w_list, None, has_aux)
        if return_ids:  # MindSpore pairs each gradient with its input index or parameter name
            g_in = [(pos, g) for pos, g in zip(positions, g_in)]
            g_w = [(p.name, g) for p, g in zip(w_list, g_w)]
        g_pos = g_in[0] if single_pos else tuple(g_in)
        g_wts = g_w[0] if single_w else tuple(g_w)
        if grad_position is None:
            grads = g_wts
        elif weights is None:
            grads = g_pos
        else:
            grads = (g_pos, g_wts)
        if with_value:
            return out, grads
        if has_aux:
            return grads, tuple(out[1:])
        return grads

    return _GradFunction(fn, w_list, finish)


def grad(fn, grad_position=0, weights=None, has_aux: bool = False, return_ids: bool = False) -> _GradFunction:
    """A function computing the gradient of ``fn`` with respect to inputs and/or ``weights``.

    ``grad_position``: an int, a tuple of ints, or None (weights only). ``weights``: a
    Parameter, ParameterTuple or list (e.g. ``net.trainable_params()``). ``has_aux``: ``fn``
    returns ``(loss, *aux)``; only ``loss`` is differentiated and ``(grads, aux)`` returned.

    ``return_ids``: each gradient comes as ``(input index or parameter name, gradient)``.

    Example: ``ops.grad(net, None, net.trainable_params())(x, y)`` is a tuple of Tensors.
    """
    check_bool(return_ids, "return_ids", "grad")
    return _make(fn, grad_position, weights, has_aux, False, "grad", return_ids)


def value_and_grad(fn, grad_position=0, weights=None, has_aux: bool = False) -> _GradFunction:
    """Like :func:`grad`, but returns ``(outputs, grads)``; ``outputs`` is all of ``fn``'s outputs."""
    return _make(fn, grad_position, weights, has_aux, True, "value_and_grad")


def stop_gradient(value):
    """``value`` (a Tensor, or a tuple/list of them) with its gradient blocked."""
    if isinstance(value, (tuple, list)):
        return type(value)(stop_gradient(v) for v in value)
    if isinstance(value, Tensor):
        return Tensor._wrap(jax.lax.stop_gradient(value._jax()))
    return jax.lax.stop_gradient(value)
