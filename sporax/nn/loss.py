"""Losses of ``mindspore.nn``: ``LossBase`` and the everyday losses built on it.

``LossBase(reduction)`` reduces an elementwise loss with ``get_loss(x, weights)`` exactly as
MindSpore does: cast to float32, multiply by the weights, then mean / sum over every axis, or
leave it (``'none'``), and cast back to the input dtype.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from sporax.common._validation import check_bool, check_str_in, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor, unwrap
from sporax.nn.cell import Cell

__all__ = ["LossBase", "MSELoss", "L1Loss", "MAELoss", "HuberLoss", "SmoothL1Loss", "SoftmaxCrossEntropyWithLogits",
           "BCEWithLogitsLoss", "CrossEntropyLoss", "NLLLoss", "KLDivLoss", "CosineEmbeddingLoss"]

_REDUCTIONS = ("mean", "sum", "none")


def _check_tensor(value, arg: str, where: str):
    """The array inside ``value``, which must be a Tensor (MindSpore rejects plain arrays here)."""
    if not isinstance(value, Tensor):
        raise TypeError(msg(where, arg, "a Tensor", type(value).__name__))
    return value._jax()


class LossBase(Cell):
    """Base of the losses: holds ``reduction`` and reduces with :meth:`get_loss`."""

    def __init__(self, reduction: str = "mean") -> None:
        super().__init__()
        check_str_in(reduction, _REDUCTIONS, "reduction", self.cls_name)
        self.reduction = reduction
        self.average = reduction == "mean"
        self.reduce = reduction != "none"

    def get_axis(self, x) -> tuple:
        """Every axis of ``x``: ``(0, 1, ..., ndim - 1)``."""
        return tuple(range(len(x.shape)))

    def get_loss(self, x, weights=1.0) -> Tensor:
        """``x * weights`` reduced by ``reduction`` (computed in float32, returned in ``x``'s dtype)."""
        a = unwrap(x)
        out = a.astype(jnp.float32) * jnp.asarray(unwrap(weights), jnp.float32)
        if self.reduce:
            out = jnp.mean(out) if self.average else jnp.sum(out)
        return Tensor._wrap(out.astype(a.dtype))


class MSELoss(LossBase):
    """Mean squared error ``(logits - labels) ** 2``, reduced by ``reduction`` (default mean)."""

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "logits", "MSELoss")
        y = _check_tensor(labels, "labels", "MSELoss")
        return self.get_loss(Tensor._wrap(jnp.square(x - y)))


class L1Loss(LossBase):
    """Mean absolute error ``|logits - labels|``, reduced by ``reduction`` (default mean)."""

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "logits", "L1Loss")
        y = _check_tensor(labels, "labels", "L1Loss")
        return self.get_loss(Tensor._wrap(jnp.abs(x - y)))


class MAELoss(LossBase):
    """``MAELoss(reduction='mean')``: mean absolute error ``|logits - labels|`` (broadcast), reduced."""

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "logits", "MAELoss")
        y = _check_tensor(labels, "labels", "MAELoss")
        return self.get_loss(Tensor._wrap(jnp.abs(x - y.astype(x.dtype))))


class HuberLoss(LossBase):
    """``HuberLoss(reduction='mean', delta=1.0)``: ``0.5 d**2`` where ``|d| < delta``, else
    ``delta * (|d| - 0.5 * delta)``, with ``d = logits - labels``."""

    def __init__(self, reduction: str = "mean", delta: float = 1.0) -> None:
        super().__init__(reduction)
        if isinstance(delta, bool) or not isinstance(delta, (int, float)):
            raise TypeError(msg("HuberLoss", "delta", "a float", delta))
        if delta <= 0:
            raise ValueError(msg("HuberLoss", "delta", "a float > 0", delta))
        self.delta = float(delta)

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "logits", "HuberLoss")
        d = jnp.abs(x - _check_tensor(labels, "labels", "HuberLoss").astype(x.dtype))
        delta = jnp.asarray(self.delta, x.dtype)
        return self.get_loss(Tensor._wrap(jnp.where(d < delta, 0.5 * d * d, delta * (d - 0.5 * delta))))


class SmoothL1Loss(LossBase):
    """``0.5 * d**2 / beta`` where ``|d| < beta``, else ``|d| - 0.5 * beta`` (``d = logits - labels``).

    ``SmoothL1Loss(beta=1.0, reduction='none')`` (MindSpore's default reduction is ``'none'``).
    """

    def __init__(self, beta: float = 1.0, reduction: str = "none") -> None:
        super().__init__(reduction)
        if isinstance(beta, bool) or not isinstance(beta, (int, float)) or beta <= 0:
            raise ValueError(msg("SmoothL1Loss", "beta", "a float > 0", beta))
        self.beta = float(beta)

    def construct(self, logits, labels) -> Tensor:
        d = jnp.abs(_check_tensor(logits, "logits", "SmoothL1Loss") - _check_tensor(labels, "labels", "SmoothL1Loss"))
        return self.get_loss(Tensor._wrap(jnp.where(d < self.beta, 0.5 * d * d / self.beta, d - 0.5 * self.beta)))


class SoftmaxCrossEntropyWithLogits(LossBase):
    """Cross entropy between ``softmax(logits)`` and ``labels`` along the last axis.

    ``SoftmaxCrossEntropyWithLogits(sparse=False, reduction='none')``: with ``sparse=True``
    the labels are class indices (int), otherwise probabilities shaped like ``logits``.
    With ``reduction='none'`` the result has ``logits.shape[:-1]``.
    """

    def __init__(self, sparse: bool = False, reduction: str = "none") -> None:
        super().__init__(reduction)
        self.sparse = check_bool(sparse, "sparse", "SoftmaxCrossEntropyWithLogits")

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "logits", "SoftmaxCrossEntropyWithLogits")
        y = _check_tensor(labels, "labels", "SoftmaxCrossEntropyWithLogits")
        log_p = jax.nn.log_softmax(x.astype(jnp.promote_types(x.dtype, jnp.float32)), axis=-1)
        if self.sparse:
            if not jnp.issubdtype(y.dtype, jnp.integer):
                raise TypeError(
                    f"For 'SoftmaxCrossEntropyWithLogits', the 'labels' should be an int tensor of class indices "
                    f"when sparse=True, but got dtype {labels.dtype}."
                )
            picked = jnp.take_along_axis(log_p, y[..., None].astype(jnp.int32), axis=-1)[..., 0]
            loss = -picked
        else:
            loss = -jnp.sum(y.astype(log_p.dtype) * log_p, axis=-1)
        return self.get_loss(Tensor._wrap(loss.astype(x.dtype)))


class BCEWithLogitsLoss(LossBase):
    """Binary cross entropy on logits: ``-w [pw y log s(x) + (1 - y) log(1 - s(x))]``, computed stably.

    ``BCEWithLogitsLoss(reduction='mean', weight=None, pos_weight=None)``: ``weight`` rescales
    each element, ``pos_weight`` the positive term; both broadcast to the input.
    """

    def __init__(self, reduction: str = "mean", weight=None, pos_weight=None) -> None:
        super().__init__(reduction)
        for arg, value in (("weight", weight), ("pos_weight", pos_weight)):
            if isinstance(value, Parameter):
                raise TypeError(msg("BCEWithLogitsLoss", arg, "a Tensor or None, not a Parameter", value.name))
            if value is not None and not isinstance(value, Tensor):
                raise TypeError(msg("BCEWithLogitsLoss", arg, "a Tensor or None", type(value).__name__))
        self.weight = weight
        self.pos_weight = pos_weight

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "input", "BCEWithLogitsLoss")
        y = _check_tensor(labels, "target", "BCEWithLogitsLoss").astype(x.dtype)
        log_sig = jax.nn.log_sigmoid(x)
        log_one_minus = jax.nn.log_sigmoid(-x)
        pos = y * log_sig
        if self.pos_weight is not None:
            pos = pos * self.pos_weight._jax().astype(x.dtype)
        loss = -(pos + (1 - y) * log_one_minus)
        if self.weight is not None:
            loss = loss * self.weight._jax().astype(x.dtype)
        return self.get_loss(Tensor._wrap(loss))


def _class_weight(weight, where: str):
    if weight is None:
        return None
    if not isinstance(weight, Tensor) or isinstance(weight, Parameter):
        raise TypeError(msg(where, "weight", "a Tensor of per-class weights or None", type(weight).__name__))
    return weight


def _nll(log_p, labels, weight, ignore_index: int, reduction: str, label_smoothing: float = 0.0):
    """Negative log-likelihood of class-index ``labels`` under ``log_p`` (classes on axis 1).

    The weighted mean divides by the summed weights of the counted (not ignored) targets, and
    label smoothing mixes in the uniform target with the same weights, as PyTorch and
    MindSpore define it.
    """
    n_classes = log_p.shape[1]
    valid = labels != ignore_index
    safe = jnp.where(valid, labels, 0).astype(jnp.int32)
    w = jnp.ones((n_classes,), log_p.dtype) if weight is None else weight.astype(log_p.dtype)
    lp = jnp.moveaxis(log_p, 1, -1)  # (N, ..., C)
    picked = -jnp.take_along_axis(lp, safe[..., None], axis=-1)[..., 0] * w[safe]
    picked = jnp.where(valid, picked, 0.0)
    target_w = jnp.where(valid, w[safe], 0.0)
    loss = picked
    smooth = None
    if label_smoothing > 0:
        smooth = jnp.where(valid, -jnp.sum(lp * w, axis=-1), 0.0)
        loss = (1 - label_smoothing) * picked + label_smoothing / n_classes * smooth
    if reduction == "none":
        return loss
    if reduction == "sum":
        return jnp.sum(loss)
    return jnp.sum(loss) / jnp.sum(target_w)


class NLLLoss(LossBase):
    """``NLLLoss(weight=None, ignore_index=-100, reduction='mean')``: ``-logits[label]`` (logits are log-probabilities).

    ``logits`` is ``(N, C)`` or ``(N, C, d1, ...)``, ``labels`` the int class indices
    ``(N,)`` / ``(N, d1, ...)``; ``weight`` rescales each class; targets equal to
    ``ignore_index`` count for nothing.
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(msg("NLLLoss", "ignore_index", "an int", ignore_index))
        self.weight = _class_weight(weight, "NLLLoss")
        self.ignore_index = ignore_index

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "logits", "NLLLoss")
        y = _check_tensor(labels, "labels", "NLLLoss")
        w = None if self.weight is None else self.weight._jax()
        return Tensor._wrap(_nll(x, y, w, self.ignore_index, self.reduction).astype(x.dtype))


class CrossEntropyLoss(LossBase):
    """``CrossEntropyLoss(weight=None, ignore_index=-100, reduction='mean', label_smoothing=0.0)``.

    Cross entropy between ``softmax(logits)`` over axis 1 (``(N, C)`` or ``(N, C, d1, ...)``)
    and ``labels``: int class indices shaped like ``logits`` without axis 1, or class
    probabilities shaped like ``logits``. With probabilities the mean is over the samples.
    """

    def __init__(self, weight=None, ignore_index: int = -100, reduction: str = "mean",
                 label_smoothing: float = 0.0) -> None:
        super().__init__(reduction)
        if isinstance(ignore_index, bool) or not isinstance(ignore_index, int):
            raise TypeError(msg("CrossEntropyLoss", "ignore_index", "an int", ignore_index))
        if not isinstance(label_smoothing, float):
            raise TypeError(msg("CrossEntropyLoss", "label_smoothing", "a float", label_smoothing))
        if not 0.0 <= label_smoothing <= 1.0:
            raise ValueError(msg("CrossEntropyLoss", "label_smoothing", "in the range [0.0, 1.0]", label_smoothing))
        self.weight = _class_weight(weight, "CrossEntropyLoss")
        self.ignore_index = ignore_index
        self.label_smoothing = label_smoothing

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "logits", "CrossEntropyLoss")
        y = _check_tensor(labels, "labels", "CrossEntropyLoss")
        ct = jnp.promote_types(x.dtype, jnp.float32)
        log_p = jax.nn.log_softmax(x.astype(ct), axis=1)
        w = None if self.weight is None else self.weight._jax().astype(ct)
        if y.ndim != x.ndim:
            return Tensor._wrap(
                _nll(log_p, y, w, self.ignore_index, self.reduction, self.label_smoothing).astype(x.dtype)
            )
        if tuple(y.shape) != tuple(x.shape):
            raise ValueError(
                f"For 'CrossEntropyLoss', class-probability 'labels' should have the shape of 'logits' "
                f"{tuple(x.shape)}, but got {tuple(y.shape)}."
            )
        n_classes = x.shape[1]
        target = y.astype(ct)
        if self.label_smoothing > 0:
            target = target * (1 - self.label_smoothing) + self.label_smoothing / n_classes
        per_class = target * log_p
        if w is not None:
            per_class = per_class * jnp.reshape(w, (1, -1) + (1,) * (x.ndim - 2))
        loss = -jnp.sum(per_class, axis=1)
        if self.reduction == "mean":
            loss = jnp.sum(loss) / loss.size
        elif self.reduction == "sum":
            loss = jnp.sum(loss)
        return Tensor._wrap(loss.astype(x.dtype))


class KLDivLoss(LossBase):
    """``KLDivLoss(reduction='mean')``: ``labels * (log(labels) - logits)`` (``logits`` are log-probabilities).

    ``reduction`` is ``'mean'`` (over every element), ``'batchmean'`` (sum / batch size),
    ``'sum'`` or ``'none'``; where a label is 0 its term is 0.
    """

    def __init__(self, reduction: str = "mean") -> None:
        check_str_in(reduction, ("mean", "batchmean", "sum", "none"), "reduction", "KLDivLoss")
        super().__init__("mean" if reduction == "batchmean" else reduction)
        self.reduction = reduction

    def construct(self, logits, labels) -> Tensor:
        x = _check_tensor(logits, "logits", "KLDivLoss")
        y = _check_tensor(labels, "labels", "KLDivLoss").astype(x.dtype)
        loss = jnp.where(y > 0, y * (jnp.log(jnp.where(y > 0, y, 1)) - x), 0).astype(x.dtype)
        if self.reduction == "batchmean":
            return Tensor._wrap((jnp.sum(loss) / x.shape[0]).astype(x.dtype))
        if self.reduction == "none":
            return Tensor._wrap(loss)
        return Tensor._wrap((jnp.sum(loss) if self.reduction == "sum" else jnp.mean(loss)).astype(x.dtype))


class CosineEmbeddingLoss(LossBase):
    """``CosineEmbeddingLoss(margin=0.0, reduction='mean')(logits_x1, logits_x2, labels)``.

    With ``cos`` the cosine similarity of ``x1`` and ``x2`` along the last axis: ``1 - cos``
    where the label is 1, ``max(0, cos - margin)`` where it is -1. ``margin`` in [-1, 1].
    """

    def __init__(self, margin: float = 0.0, reduction: str = "mean") -> None:
        super().__init__(reduction)
        if isinstance(margin, bool) or not isinstance(margin, (int, float)):
            raise TypeError(msg("CosineEmbeddingLoss", "margin", "a float", margin))
        if not -1.0 <= margin <= 1.0:
            raise ValueError(msg("CosineEmbeddingLoss", "margin", "in the range [-1.0, 1.0]", margin))
        self.margin = float(margin)

    def construct(self, logits_x1, logits_x2, labels) -> Tensor:
        x1 = _check_tensor(logits_x1, "logits_x1", "CosineEmbeddingLoss")
        x2 = _check_tensor(logits_x2, "logits_x2", "CosineEmbeddingLoss")
        y = _check_tensor(labels, "labels", "CosineEmbeddingLoss")
        if x1.shape != x2.shape:
            raise ValueError(f"For 'CosineEmbeddingLoss', 'logits_x1' and 'logits_x2' should have one shape, but got "
                             f"{tuple(x1.shape)} and {tuple(x2.shape)}.")
        eps = jnp.asarray(1e-12, x1.dtype)
        cos = jnp.sum(x1 * x2, -1) / (jnp.sqrt(jnp.sum(x1 * x1, -1) * jnp.sum(x2 * x2, -1)) + eps)
        loss = jnp.where(y == 1, 1 - cos, jnp.maximum(cos - self.margin, 0)).astype(x1.dtype)
        return self.get_loss(Tensor._wrap(loss))
