"""Evaluation metrics: ``Metric`` (clear/update/eval), ``Accuracy``, ``Loss``, and lookup by name.

Metrics accumulate on the host in numpy (they run once per eval step, outside any trace), as
MindSpore's do. ``Model(metrics={'acc'})`` and ``Model(metrics={'Accuracy': nn.Accuracy()})``
both work: :func:`get_metrics` turns names (``'acc'``/``'accuracy'``, ``'loss'``) into objects.
"""

from __future__ import annotations

import abc

import numpy as np

from sporax.common._validation import check_str_in, msg
from sporax.common.tensor import Tensor

__all__ = ["Metric", "Accuracy", "Loss", "get_metric_by_name", "get_metric_fn", "get_metrics", "names"]


class Metric(abc.ABC):
    """Base class: ``clear()`` resets, ``update(*inputs)`` accumulates a batch, ``eval()`` gives the value."""

    def __init__(self) -> None:
        self._indexes = None

    def _convert_data(self, data) -> np.ndarray:
        if isinstance(data, Tensor):
            return data.asnumpy()
        if isinstance(data, (list, np.ndarray, np.generic, int, float)):
            return np.asarray(data)
        raise TypeError(msg(f"{type(self).__name__}.update", "input", "a Tensor, list or numpy.ndarray", type(data).__name__))

    def set_indexes(self, indexes) -> Metric:
        """Which outputs of the eval network to feed ``update`` (MindSpore's ``indexes``)."""
        if not isinstance(indexes, list) or not all(isinstance(i, int) for i in indexes):
            raise ValueError(msg("Metric.set_indexes", "indexes", "a list of int", indexes))
        self._indexes = indexes
        return self

    @property
    def indexes(self):
        return self._indexes

    @abc.abstractmethod
    def clear(self) -> None:
        """Reset the accumulated state."""

    @abc.abstractmethod
    def update(self, *inputs) -> None:
        """Accumulate one batch."""

    @abc.abstractmethod
    def eval(self):
        """The metric over everything accumulated since ``clear``."""

    def __call__(self, *inputs):
        self.clear()
        self.update(*inputs)
        return self.eval()


def _is_onehot(y: np.ndarray) -> bool:
    if y.ndim > 1 and np.equal(y ** 2, y).all():
        return bool(np.equal(np.ones((y.shape[0],) + y.shape[2:]), y.sum(axis=1)).all())
    return False


class Accuracy(Metric):
    """Fraction of samples whose predicted class (argmax of ``y_pred``) equals the label.

    ``update(y_pred, y)``: ``y_pred`` of shape (N, C); ``y`` class indices (N,) or one-hot (N, C).
    ``eval_type='multilabel'`` compares 0/1 matrices row by row.
    """

    def __init__(self, eval_type: str = "classification") -> None:
        super().__init__()
        self._type = check_str_in(eval_type, ("classification", "multilabel"), "eval_type", "Accuracy")
        self.clear()

    def clear(self) -> None:
        self._correct_num = 0
        self._total_num = 0
        self._class_num = 0

    def update(self, *inputs) -> None:
        if len(inputs) != 2:
            raise ValueError(f"For 'Accuracy.update', it needs 2 inputs (predicted value, true value), but got {len(inputs)}.")
        y_pred = self._convert_data(inputs[0])
        y = self._convert_data(inputs[1])
        if self._type == "classification" and y_pred.ndim == y.ndim and _is_onehot(y):
            y = y.argmax(axis=1)
        if y_pred.ndim < 2:
            raise ValueError(msg("Accuracy.update", "y_pred", "of shape (N, C)", y_pred.shape))
        if self._class_num == 0:
            self._class_num = y_pred.shape[1]
        elif y_pred.shape[1] != self._class_num:
            raise ValueError(
                f"For 'Accuracy.update', class number not match, last input predicted data contain {self._class_num} "
                f"classes, but current predicted data contain {y_pred.shape[1]} classes."
            )
        if self._type == "classification":
            if y.shape[0] != y_pred.shape[0]:
                raise ValueError(
                    f"For 'Accuracy.update', y_pred has {y_pred.shape[0]} samples but y has {y.shape[0]}."
                )
            result = (np.equal(y_pred.argmax(axis=1), y.reshape(y_pred.shape[0], *y.shape[1:])) * 1).reshape(-1)
        else:
            result = np.equal(y_pred, y).reshape(y_pred.shape[0], -1).all(axis=1) * 1
        self._correct_num += int(result.sum())
        self._total_num += result.shape[0]

    def eval(self) -> np.float64:
        if self._total_num == 0:
            raise RuntimeError("The 'Accuracy' can not be calculated, because the number of samples is 0, please "
                               "check whether your inputs(predicted value, true value) are empty, or has called "
                               "update method before calling eval method.")
        return np.float64(self._correct_num / self._total_num)  # a numpy scalar, as MindSpore 2.10 returns


class Loss(Metric):
    """The mean of the losses given to ``update`` (each the mean over its batch)."""

    def __init__(self) -> None:
        super().__init__()
        self.clear()

    def clear(self) -> None:
        self._sum_loss = 0.0
        self._total_num = 0

    def update(self, *inputs) -> None:
        if len(inputs) != 1:
            raise ValueError(f"For 'Loss.update', it needs 1 input (loss), but got {len(inputs)}.")
        loss = self._convert_data(inputs[0])
        if loss.ndim == 0:
            loss = loss.reshape(1)
        if loss.ndim != 1:
            raise ValueError(f"For 'Loss.update', the dimension of your input (loss) must be 1, but got {loss.ndim}.")
        self._sum_loss += float(loss.mean(-1))
        self._total_num += 1

    def eval(self) -> np.float32:
        if self._total_num == 0:
            raise RuntimeError("The 'Loss' can not be calculated, because the number of samples is 0, please "
                               "check whether has called update method before calling eval method.")
        return np.float32(self._sum_loss / self._total_num)  # MindSpore 2.10: a numpy float32


_METRICS = {"accuracy": Accuracy, "acc": Accuracy, "loss": Loss}


def names() -> list:
    """The metric names ``get_metric_by_name`` knows."""
    return sorted(_METRICS)


def get_metric_by_name(name: str, *args, **kwargs) -> Metric:
    """A new metric object for ``name`` (one of :func:`names`: ``'accuracy'``, ``'mae'``, ``'top_5_accuracy'``, ...)."""
    check_str_in(name, tuple(_METRICS), "name", "get_metric_by_name")
    return _METRICS[name](*args, **kwargs)


get_metric_fn = get_metric_by_name


def get_metrics(metrics) -> dict:
    """``{name: Metric}`` from a dict of metrics or a set/list/tuple of names (None: empty)."""
    if metrics is None:
        return {}
    if isinstance(metrics, dict):
        out = {}
        for name, m in metrics.items():
            out[name] = get_metric_by_name(m) if isinstance(m, str) else m
            if not isinstance(out[name], Metric):
                raise TypeError(msg("Model", "metrics", "a dict of Metric objects", type(m).__name__))
        return out
    if isinstance(metrics, (set, list, tuple)):
        return {name: get_metric_by_name(name) for name in metrics}
    raise TypeError(msg("Model", "metrics", "a dict or set of metric names", type(metrics).__name__))


# The other metrics register their names in _METRICS when their module loads.
from sporax.train import _metrics_ext  # noqa: E402,F401
