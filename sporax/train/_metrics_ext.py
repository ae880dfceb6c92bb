"""More evaluation metrics of ``mindspore.train``: ``MAE``, ``MSE``, ``Precision``, ``Recall`` and top-k accuracy.

Host-side numpy accumulation, with MindSpore 2.10's conventions (checked against it): MAE
and MSE divide the summed error by the number of samples (the first axis), not of elements;
Precision and Recall give one value per class (``eval(average=True)``: their mean), from
argmax predictions (``'classification'``) or 0/1 matrices (``'multilabel'``).
"""

from __future__ import annotations

import sys

import numpy as np

from sporax.common._validation import check_bool, check_str_in, msg
from sporax.train.metrics import _METRICS, Metric, _is_onehot

__all__ = ["MAE", "MSE", "Precision", "Recall", "TopKCategoricalAccuracy", "Top1CategoricalAccuracy",
           "Top5CategoricalAccuracy"]


def _empty(name: str) -> RuntimeError:
    return RuntimeError(f"The '{name}' can not be calculated, because the number of samples is 0, please check "
                        "whether your inputs (predicted value, true value) are empty, or has called update method "
                        "before calling eval method.")


def _two(name: str, inputs) -> None:
    if len(inputs) != 2:
        raise ValueError(f"For '{name}.update', it needs 2 inputs (predicted value, true value), but got {len(inputs)}.")


class _Error(Metric):
    _name = "MAE"

    def __init__(self) -> None:
        super().__init__()
        self.clear()

    def clear(self) -> None:
        self._error_sum = 0
        self._samples_num = 0

    @staticmethod
    def _error(d):
        return np.abs(d)

    def update(self, *inputs) -> None:
        _two(self._name, inputs)
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        self._error_sum += self._error(y.reshape(y_pred.shape) - y_pred).sum()
        self._samples_num += y.shape[0]

    def eval(self):
        if self._samples_num == 0:
            raise _empty(self._name)
        return self._error_sum / self._samples_num


class MAE(_Error):
    """Mean absolute error: ``sum(|y_pred - y|) / number of samples``."""


class MSE(_Error):
    """Mean squared error: ``sum((y_pred - y) ** 2) / number of samples``."""

    _name = "MSE"

    @staticmethod
    def _error(d):
        return np.power(d, 2)


class _PrecisionRecall(Metric):
    _name = "Precision"

    def __init__(self, eval_type: str = "classification") -> None:
        super().__init__()
        self._type = check_str_in(eval_type, ("classification", "multilabel"), "eval_type", self._name)
        self.eps = sys.float_info.min
        self.clear()

    def clear(self) -> None:
        self._class_num = 0
        multi = self._type == "multilabel"
        self._true_positives = np.empty(0) if multi else 0
        self._denominator = np.empty(0) if multi else 0
        self._tp_average = 0
        self._denominator_average = 0

    def _check(self, y_pred, y) -> None:
        if self._type == "classification":
            if y_pred.ndim != y.ndim + 1 or y.shape != (y_pred.shape[0],) + y_pred.shape[2:]:
                raise ValueError(f"For '{self._name}.update', in the classification case 'y' should have the shape "
                                 f"of 'y_pred' without axis 1, but got y_pred {y_pred.shape} and y {y.shape}.")
        elif y_pred.shape != y.shape:
            raise ValueError(f"For '{self._name}.update', in the multilabel case 'y_pred' and 'y' should have one "
                             f"shape, but got {y_pred.shape} and {y.shape}.")

    def update(self, *inputs) -> None:
        _two(self._name, inputs)
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if self._type == "classification" and y_pred.ndim == y.ndim and _is_onehot(y):
            y = y.argmax(axis=1)
        self._check(y_pred, y)
        if self._class_num == 0:
            self._class_num = y_pred.shape[1]
        elif y_pred.shape[1] != self._class_num:
            raise ValueError(f"For '{self._name}.update', class number not match, last input predicted data contain "
                             f"{self._class_num} classes, but current predicted data contain {y_pred.shape[1]} classes.")
        n = self._class_num
        if self._type == "classification":
            if y.max() + 1 > n:
                raise ValueError(f"For '{self._name}.update', the labels should be below the class number {n}, but got "
                                 f"{y.max()}.")
            y = np.eye(n)[y.reshape(-1)]
            y_pred = np.eye(n)[y_pred.argmax(axis=1).reshape(-1)]
        else:
            y_pred = y_pred.swapaxes(1, 0).reshape(n, -1)
            y = y.swapaxes(1, 0).reshape(n, -1)
        denominator = self._denominator_of(y_pred, y)
        true_positives = (y * y_pred).sum(axis=0)
        if self._type == "multilabel":
            self._tp_average += np.sum(true_positives / (denominator + self.eps))
            self._denominator_average += len(denominator)
            self._true_positives = np.concatenate((self._true_positives, true_positives), axis=0)
            self._denominator = np.concatenate((self._denominator, denominator), axis=0)
        else:
            self._true_positives = self._true_positives + true_positives
            self._denominator = self._denominator + denominator

    def eval(self, average: bool = False):
        """Per-class values (a numpy array), or their mean with ``average=True``."""
        if self._class_num == 0:
            raise _empty(self._name)
        check_bool(average, "average", self._name)
        result = self._true_positives / (self._denominator + self.eps)
        if average:
            if self._type == "multilabel":
                result = self._tp_average / (self._denominator_average + self.eps)
            return result.mean()
        return result


class Precision(_PrecisionRecall):
    """``Precision(eval_type='classification')``: true positives / predicted positives, per class."""

    @staticmethod
    def _denominator_of(y_pred, y):
        return y_pred.sum(axis=0)


class Recall(_PrecisionRecall):
    """``Recall(eval_type='classification')``: true positives / actual positives, per class."""

    _name = "Recall"

    @staticmethod
    def _denominator_of(y_pred, y):
        return y.sum(axis=0)


class TopKCategoricalAccuracy(Metric):
    """``TopKCategoricalAccuracy(k)``: the fraction of samples whose label is among the ``k`` highest scores."""

    def __init__(self, k: int) -> None:
        super().__init__()
        if isinstance(k, bool) or not isinstance(k, int):
            raise TypeError(msg(type(self).__name__, "k", "an int", k))
        if k < 1:
            raise ValueError(msg(type(self).__name__, "k", "an int >= 1", k))
        self.k = k
        self.clear()

    def clear(self) -> None:
        self._correct_num = 0
        self._samples_num = 0

    def update(self, *inputs) -> None:
        _two(type(self).__name__, inputs)
        y_pred, y = self._convert_data(inputs[0]), self._convert_data(inputs[1])
        if y_pred.ndim == y.ndim and _is_onehot(y):
            y = y.argmax(axis=1)
        top = np.argsort(-y_pred, axis=1, kind="stable")[:, : self.k]
        self._correct_num += np.equal(top, y.reshape(-1, 1)).sum()
        self._samples_num += y_pred.shape[0]

    def eval(self) -> float:
        if self._samples_num == 0:
            raise _empty(type(self).__name__)
        return self._correct_num / self._samples_num


class Top1CategoricalAccuracy(TopKCategoricalAccuracy):
    """Top-1 accuracy: :class:`TopKCategoricalAccuracy` with ``k=1``."""

    def __init__(self) -> None:
        super().__init__(1)


class Top5CategoricalAccuracy(TopKCategoricalAccuracy):
    """Top-5 accuracy: :class:`TopKCategoricalAccuracy` with ``k=5``."""

    def __init__(self) -> None:
        super().__init__(5)


_METRICS.update({
    "precision": Precision, "recall": Recall, "mae": MAE, "mse": MSE, "topk": TopKCategoricalAccuracy,
    "top_1_accuracy": Top1CategoricalAccuracy, "top_5_accuracy": Top5CategoricalAccuracy,
})
