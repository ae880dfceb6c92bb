"""Forward- and reverse-mode products of ``mindspore.ops``: ``jvp`` and ``vjp``.

``jvp`` runs ``jax.jvp`` over the function of arrays behind ``fn``. ``vjp`` evaluates ``fn``
once and returns a function that, for an output cotangent ``v``, computes the gradients
through the one differentiation mechanism of :mod:`sporax.ops.composite` (so ``weights``,
Cells and their state behave exactly as for ``ops.grad``); each call re-runs the forward pass.
"""

from __future__ import annotations

import jax

from sporax.common._validation import check_bool, msg
from sporax.common.tensor import Tensor

__all__ = ["jvp", "vjp"]


def _as_tuple(x, arg: str, where: str) -> tuple:
    items = (x,) if isinstance(x, Tensor) else tuple(x) if isinstance(x, (tuple, list)) else None
    if items is None or not all(isinstance(i, Tensor) for i in items):
        raise TypeError(msg(where, arg, "a Tensor or a tuple of Tensors", type(x).__name__))
    return items


def _arrays(tree):
    return jax.tree_util.tree_map(lambda t: t._jax() if isinstance(t, Tensor) else t, tree,
                                  is_leaf=lambda t: isinstance(t, Tensor))


def _tensors(tree):
    return jax.tree_util.tree_map(lambda a: Tensor._wrap(a) if hasattr(a, "dtype") else a, tree)


def jvp(fn, inputs, v, has_aux: bool = False):
    """``(outputs, jvp)`` of ``fn`` at ``inputs`` along tangents ``v`` (``(outputs, jvp, aux)`` with ``has_aux``).

    ``inputs`` and ``v`` are a Tensor or tuples of Tensors of matching shapes; with ``has_aux``
    ``fn`` returns ``(output, *aux)`` and only ``output`` is differentiated.
    """
    if not callable(fn):
        raise TypeError(msg("jvp", "fn", "a function or Cell", type(fn).__name__))
    check_bool(has_aux, "has_aux", "jvp")
    xs, vs = _as_tuple(inputs, "inputs", "jvp"), _as_tuple(v, "v", "jvp")
    if len(xs) != len(vs) or any(a.shape != b.shape for a, b in zip(xs, vs)):
        raise ValueError(f"For 'jvp', 'v' should match 'inputs' in number and shapes, but got "
                         f"{[t.shape for t in vs]} for {[t.shape for t in xs]}.")

    def pure(*arrays):
        out = fn(*(Tensor._wrap(a) for a in arrays))
        if has_aux:
            if not isinstance(out, (tuple, list)) or len(out) < 2:
                raise ValueError("For 'jvp', when has_aux is True, 'fn' should return (output, *aux).")
            return _arrays(out[0]), _arrays(out[1] if len(out) == 2 else tuple(out[1:]))
        return _arrays(out)

    primals = tuple(x._jax() for x in xs)
    tangents = tuple(t._jax().astype(x.dtype) for t, x in zip(vs, primals))
    if has_aux:
        out, tangent_out, aux = jax.jvp(pure, primals, tangents, has_aux=True)
        return _tensors(out), _tensors(tangent_out), _tensors(aux)
    out, tangent_out = jax.jvp(pure, primals, tangents)
    return _tensors(out), _tensors(tangent_out)


def vjp(fn, *inputs, weights=None, has_aux: bool = False):
    """``(outputs, vjp_fn)``; ``vjp_fn(v)`` gives the gradients of ``<outputs, v>`` with respect to ``inputs``.

    The gradients are a tuple over ``inputs`` (``(input grads, weight grads)`` when ``weights``
    is given). With ``has_aux`` ``fn`` returns ``(output, *aux)`` and the result is
    ``(output, vjp_fn, aux)``.
    """
    from sporax.ops.composite import _differentiate, _weights_list

    if not callable(fn):
        raise TypeError(msg("vjp", "fn", "a function or Cell", type(fn).__name__))
    check_bool(has_aux, "has_aux", "vjp")
    xs = _as_tuple(inputs, "inputs", "vjp")
    w_list, _ = _weights_list(weights, "vjp")
    out = fn(*xs)
    aux = None
    if has_aux:
        if not isinstance(out, (tuple, list)) or len(out) < 2:
            raise ValueError("For 'vjp', when has_aux is True, 'fn' should return (output, *aux).")
        out, aux = out[0], (out[1] if len(out) == 2 else tuple(out[1:]))

    def vjp_fn(v):
        target = (lambda *a: fn(*a)[0]) if has_aux else fn
        _, g_in, g_w = _differentiate(target, xs, {}, tuple(range(len(xs))), w_list, v, False)
        return (tuple(g_in), tuple(g_w)) if weights is not None else tuple(g_in)

    return (out, vjp_fn, aux) if has_aux else (out, vjp_fn)
