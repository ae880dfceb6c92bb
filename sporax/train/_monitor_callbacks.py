"""Callbacks that watch a value: ``EarlyStopping``, ``ReduceLROnPlateau``; and ``History``,
``LambdaCallback``; ``SummaryCollector`` (out of scope: it says so).

``EarlyStopping`` and ``ReduceLROnPlateau`` act at the end of each training epoch on
``monitor``: ``"loss"`` (the last step's loss) or a key of ``cb_params.eval_results``, which
``Model.fit`` fills after validation (the metrics plus ``"eval_loss"``), as in MindSpore 2.10.
"""

from __future__ import annotations

import copy
import logging

import numpy as np

from sporax.common._validation import check_bool, check_non_negative_int, msg
from sporax.common.parameter import Parameter
from sporax.common.tensor import Tensor
from sporax.train.callback import Callback, RunContext, _handle_loss

__all__ = ["EarlyStopping", "ReduceLROnPlateau", "History", "LambdaCallback", "SummaryCollector"]

_log = logging.getLogger(__name__)

# Metrics for which smaller is better under mode="auto" (MindSpore's list).
_SMALLER_BETTER = ("hausdorff_distance", "mae", "mse", "loss", "perplexity", "mean_surface_distance",
                   "root_mean_square_distance", "eval_loss")


def _check_number(value, arg: str, where: str):
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise TypeError(msg(where, arg, "an int or float", value))
    return value


class _Monitor(Callback):
    """The shared part: which value, which direction, what counts as an improvement."""

    _where = "Callback"

    def _init_monitor(self, monitor, mode, min_delta) -> None:
        if not isinstance(monitor, str):
            raise TypeError(msg(self._where, "monitor", "a str", monitor))
        if not isinstance(mode, str):
            raise TypeError(msg(self._where, "mode", "a str", mode))
        if mode not in ("auto", "min", "max"):
            raise ValueError(f"mode should be 'auto', 'min' or 'max', but got {mode}.")
        self.monitor = monitor
        self.mode = mode
        self.min_delta = abs(_check_number(min_delta, "min_delta", self._where))
        self.best = self._initial_best()

    def _minimizing(self) -> bool:
        return self.mode == "min" or (self.mode == "auto" and self.monitor in _SMALLER_BETTER)

    def _initial_best(self) -> float:
        return np.inf if self._minimizing() else -np.inf

    def is_improvement(self, current, best) -> bool:
        if self._minimizing():
            return bool(np.less(current, best - self.min_delta))
        return bool(np.greater(current, best + self.min_delta))

    def _get_monitor_value(self, cb_params):
        candidates: dict = {}
        if self.monitor == "loss":
            value = _handle_loss(cb_params.get("net_outputs"))
            if isinstance(value, float) and not np.isfinite(value):
                _log.warning("Invalid %s.", self.monitor)
        else:
            candidates = cb_params.get("eval_results", {}) or {}
            value = candidates.get(self.monitor)
        if value is None:
            _log.warning("%s is conditioned on %s, which is not available. Available choices are: %s",
                         self._where, self.monitor, sorted({"loss", *candidates}))
            return None
        if isinstance(value, Tensor):
            value = value.asnumpy()
        if isinstance(value, np.ndarray) and value.shape != ():
            raise ValueError(f"{self._where} only supports scalar monitor now.")
        return np.array(value)


class EarlyStopping(_Monitor):
    """Stop training when ``monitor`` has not improved by ``min_delta`` for ``patience`` epochs.

    ``mode``: ``"min"``, ``"max"`` or ``"auto"`` (min for losses and error metrics).
    ``baseline``: stop unless the value beats it. ``restore_best_weights``: load the best
    epoch's parameters back into the train network when stopping.
    """

    _where = "EarlyStopping"

    def __init__(self, monitor: str = "eval_loss", min_delta=0, patience: int = 0, verbose: bool = False,
                 mode: str = "auto", baseline=None, restore_best_weights: bool = False) -> None:
        super().__init__()
        self._init_monitor(monitor, mode, min_delta)
        self.patience = check_non_negative_int(patience, "patience", "EarlyStopping")
        self.verbose = check_bool(verbose, "verbose", "EarlyStopping")
        self.baseline = None if baseline is None else _check_number(baseline, "baseline", "EarlyStopping")
        self.restore_best_weights = check_bool(restore_best_weights, "restore_best_weights", "EarlyStopping")
        self.wait = 0
        self.stopped_epoch = 0
        self.best_weights_param_dict = None

    def on_train_begin(self, run_context: RunContext) -> None:
        self.wait = 0
        self.stopped_epoch = 0
        self.best = self._initial_best()
        self.best_weights_param_dict = None

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        cb_params = run_context.original_args()
        current = self._get_monitor_value(cb_params)
        if current is None:
            return
        if self.restore_best_weights and self.best_weights_param_dict is None:
            self.best_weights_param_dict = copy.deepcopy(cb_params.train_network.parameters_dict())
        self.wait += 1
        if self.is_improvement(current, self.best):
            self.best = current
            if self.restore_best_weights:
                self.best_weights_param_dict = copy.deepcopy(cb_params.train_network.parameters_dict())
            if self.baseline is None or self.is_improvement(current, self.baseline):
                self.wait = 0
        if self.wait >= self.patience:
            self.stopped_epoch = cb_params.get("cur_epoch_num")
            run_context.request_stop()
            if self.restore_best_weights and self.best_weights_param_dict is not None:
                from sporax.train.serialization import load_param_into_net

                if self.verbose:
                    print("Restoring model weights from the end of the best epoch.")
                load_param_into_net(cb_params.train_network, self.best_weights_param_dict)

    def on_train_end(self, run_context: RunContext) -> None:
        if self.stopped_epoch > 0 and self.verbose:
            print(f"Epoch {self.stopped_epoch:05d}: early stopping")


class ReduceLROnPlateau(_Monitor):
    """Multiply the optimizer's learning rate by ``factor`` when ``monitor`` stops improving.

    After ``patience`` epochs without an improvement of ``min_delta``, ``lr = max(lr * factor,
    min_lr)``, then ``cooldown`` epochs pass before waiting starts again. The optimizer's
    ``learning_rate`` must be one Parameter (not a schedule or per-group rates).
    """

    _where = "ReduceLROnPlateau"

    def __init__(self, monitor: str = "eval_loss", factor: float = 0.1, patience: int = 10, verbose: bool = False,
                 mode: str = "auto", min_delta=1e-4, cooldown: int = 0, min_lr=0) -> None:
        super().__init__()
        _check_number(factor, "factor", "ReduceLROnPlateau")
        if not 0.0 < factor < 1.0:
            raise ValueError(msg("ReduceLROnPlateau", "factor", "a float in (0.0, 1.0)", factor))
        self.factor = factor
        self._init_monitor(monitor, mode, min_delta)
        self.patience = check_non_negative_int(patience, "patience", "ReduceLROnPlateau")
        self.verbose = check_bool(verbose, "verbose", "ReduceLROnPlateau")
        self.cooldown = check_non_negative_int(cooldown, "cooldown", "ReduceLROnPlateau")
        self.min_lr = _check_number(min_lr, "min_lr", "ReduceLROnPlateau")
        self.cooldown_counter = 0
        self.wait = 0

    def on_train_begin(self, run_context: RunContext) -> None:
        self.cooldown_counter = 0
        self.wait = 0
        self.best = self._initial_best()

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        cb_params = run_context.original_args()
        lr = getattr(cb_params.get("optimizer"), "learning_rate", None)
        if not isinstance(lr, Parameter) or lr.ndim != 0:
            raise ValueError("ReduceLROnPlateau does not support dynamic learning rate and group learning rate now.")
        current = self._get_monitor_value(cb_params)
        if current is None:
            return
        if self.cooldown_counter > 0:
            self.cooldown_counter -= 1
            self.wait = 0
        if self.is_improvement(current, self.best):
            self.best = current
            self.wait = 0
        elif self.cooldown_counter <= 0:
            self.wait += 1
            if self.wait >= self.patience:
                old = float(lr.asnumpy())
                if old > self.min_lr:
                    new = max(old * self.factor, self.min_lr)
                    lr.set_data(Tensor(np.array(new, lr.dtype.np_dtype)))
                    if self.verbose:
                        print(f"Epoch {cb_params.cur_epoch_num:05d}: ReduceLROnPlateau reducing learning rate to "
                              f"{new}.")
                self.cooldown_counter = self.cooldown
                self.wait = 0


class History(Callback):
    """Record each epoch's loss (``history['net_output']``) and metrics; ``epoch['epoch']`` lists epochs."""

    def __init__(self) -> None:
        super().__init__()
        self.history: dict = {}
        self.epoch = None

    def begin(self, run_context: RunContext) -> None:
        self.epoch = {"epoch": []}

    def epoch_end(self, run_context: RunContext) -> None:
        cb_params = run_context.original_args()
        if self.epoch is None:
            self.epoch = {"epoch": []}
        self.epoch["epoch"].append(cb_params.get("cur_epoch_num", 1))
        out = cb_params.get("net_outputs")
        if isinstance(out, (tuple, list)) and out and isinstance(out[0], Tensor):
            out = out[0]
        if isinstance(out, Tensor):
            out = np.mean(out.asnumpy())
        record = {"net_output": out}
        metrics = cb_params.get("metrics")
        if metrics:
            record.update(metrics)
        for k, v in record.items():
            self.history.setdefault(k, []).append(v)


_LAMBDA_HOOKS = ("on_train_epoch_begin", "on_train_epoch_end", "on_train_step_begin", "on_train_step_end",
                 "on_train_begin", "on_train_end", "on_eval_epoch_begin", "on_eval_epoch_end", "on_eval_step_begin",
                 "on_eval_step_end", "on_eval_begin", "on_eval_end")


class LambdaCallback(Callback):
    """A callback from plain functions: ``LambdaCallback(on_train_epoch_end=lambda run_context: ...)``."""

    def __init__(self, on_train_epoch_begin=None, on_train_epoch_end=None, on_train_step_begin=None,
                 on_train_step_end=None, on_train_begin=None, on_train_end=None, on_eval_epoch_begin=None,
                 on_eval_epoch_end=None, on_eval_step_begin=None, on_eval_step_end=None, on_eval_begin=None,
                 on_eval_end=None) -> None:
        super().__init__()
        given = dict(zip(_LAMBDA_HOOKS, (on_train_epoch_begin, on_train_epoch_end, on_train_step_begin,
                                         on_train_step_end, on_train_begin, on_train_end, on_eval_epoch_begin,
                                         on_eval_epoch_end, on_eval_step_begin, on_eval_step_end, on_eval_begin,
                                         on_eval_end)))
        for name, fn in given.items():
            if fn is not None and not callable(fn):
                raise TypeError(msg("LambdaCallback", name, "a callable or None", type(fn).__name__))
            setattr(self, name, fn if fn is not None else _noop)


def _noop(run_context) -> None:
    return None


class SummaryCollector(Callback):
    """Out of scope for sporax: MindSpore's summary files are for MindInsight, which sporax does not target.

    Constructing one raises RuntimeError saying so; use ``History``, ``LossMonitor`` or a
    ``LambdaCallback`` writing to the logger of your choice (e.g. TensorBoard) instead.
    """

    def __init__(self, summary_dir=None, *args, **kwargs) -> None:
        raise RuntimeError(
            "SummaryCollector is out of scope for sporax: it writes MindInsight summary files, which sporax does not "
            "produce. Use sporax.train.History, LossMonitor or a LambdaCallback that logs to your own tool instead."
        )
