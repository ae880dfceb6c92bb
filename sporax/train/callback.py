"""Callbacks of ``Model.train``/``Model.eval``: ``Callback``, ``RunContext``, ``LossMonitor``,
``TimeMonitor``, ``ProgressBar``, and the ``CallbackManager`` that fans calls out.

As in MindSpore 2.10, each stage has a new-style hook (``on_train_step_end``) whose default
calls the legacy one (``step_end``), so a callback may override either. ``cb_params`` is a
dict with attribute access (``cb_params.cur_step_num``); the fields Model fills are listed in
:class:`RunContext`. Printed lines match MindSpore's (``epoch: 1 step: 5, loss is 0.69...``).
"""

from __future__ import annotations

import math
import time

import numpy as np

from sporax.common._validation import check_bool, check_non_negative_int, msg
from sporax.common.tensor import Tensor

__all__ = ["Callback", "CallbackManager", "RunContext", "InternalCallbackParam", "LossMonitor", "TimeMonitor",
           "ProgressBar"]


class InternalCallbackParam(dict):
    """``cb_params``: a dict whose keys are also attributes."""

    def __getattr__(self, key):
        try:
            return self[key]
        except KeyError:
            raise AttributeError(f"'cb_params' has no field '{key}'.") from None

    def __setattr__(self, key, value) -> None:
        self[key] = value


class RunContext:
    """What a callback sees: ``original_args()`` (the ``cb_params``) and ``request_stop()``.

    Fields during training: ``train_network``, ``network``, ``optimizer``, ``loss_fn``,
    ``epoch_num``, ``batch_num``, ``cur_epoch_num``, ``cur_step_num`` (counted over all
    epochs), ``net_outputs`` (the loss of the last step), ``train_dataset``, ``mode``
    (``'train'``/``'eval'``), ``dataset_sink_mode``, ``list_callback``, ``parallel_mode``,
    ``device_number``; during eval also ``eval_network``, ``valid_dataset``, ``metrics``.
    """

    def __init__(self, original_args: dict) -> None:
        if not isinstance(original_args, dict):
            raise TypeError(msg("RunContext", "original_args", "a dict", type(original_args).__name__))
        self._original_args = original_args
        self._stop_requested = False

    def original_args(self) -> dict:
        return self._original_args

    def request_stop(self) -> None:
        """Ask ``Model.train``/``eval`` to stop after the current step."""
        self._stop_requested = True

    def get_stop_requested(self) -> bool:
        return self._stop_requested


class Callback:
    """Base class: override any stage hook. Usable as a context manager (no-op)."""

    def __enter__(self):
        return self

    def __exit__(self, *err) -> None:
        return None

    # legacy hooks
    def begin(self, run_context: RunContext) -> None:
        """Before training/eval starts."""

    def epoch_begin(self, run_context: RunContext) -> None:
        """Before each epoch."""

    def epoch_end(self, run_context: RunContext) -> None:
        """After each epoch."""

    def step_begin(self, run_context: RunContext) -> None:
        """Before each step."""

    def step_end(self, run_context: RunContext) -> None:
        """After each step."""

    def end(self, run_context: RunContext) -> None:
        """After training/eval ends."""

    # new-style hooks, defaulting to the legacy ones
    def on_train_begin(self, run_context: RunContext) -> None:
        self.begin(run_context)

    def on_train_epoch_begin(self, run_context: RunContext) -> None:
        self.epoch_begin(run_context)

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        self.epoch_end(run_context)

    def on_train_step_begin(self, run_context: RunContext) -> None:
        self.step_begin(run_context)

    def on_train_step_end(self, run_context: RunContext) -> None:
        self.step_end(run_context)

    def on_train_end(self, run_context: RunContext) -> None:
        self.end(run_context)

    def on_eval_begin(self, run_context: RunContext) -> None:
        self.begin(run_context)

    def on_eval_epoch_begin(self, run_context: RunContext) -> None:
        self.epoch_begin(run_context)

    def on_eval_epoch_end(self, run_context: RunContext) -> None:
        self.epoch_end(run_context)

    def on_eval_step_begin(self, run_context: RunContext) -> None:
        self.step_begin(run_context)

    def on_eval_step_end(self, run_context: RunContext) -> None:
        self.step_end(run_context)

    def on_eval_end(self, run_context: RunContext) -> None:
        self.end(run_context)


_HOOKS = ("begin", "epoch_begin", "epoch_end", "step_begin", "step_end", "end",
          "on_train_begin", "on_train_epoch_begin", "on_train_epoch_end", "on_train_step_begin",
          "on_train_step_end", "on_train_end", "on_eval_begin", "on_eval_epoch_begin", "on_eval_epoch_end",
          "on_eval_step_begin", "on_eval_step_end", "on_eval_end")


class CallbackManager(Callback):
    """Calls every hook on each callback of a list, in order."""

    def __init__(self, callbacks) -> None:
        if callbacks is None:
            callbacks = []
        elif isinstance(callbacks, Callback):
            callbacks = [callbacks]
        elif isinstance(callbacks, (list, tuple)):
            callbacks = list(callbacks)
        else:
            raise TypeError(msg("Model", "callbacks", "a Callback or a list of Callbacks", type(callbacks).__name__))
        for cb in callbacks:
            if not isinstance(cb, Callback):
                raise TypeError(msg("Model", "callbacks", "a Callback or a list of Callbacks",
                                    f"an element of type {type(cb).__name__}"))
        self._callbacks = callbacks

    def __bool__(self) -> bool:
        return bool(self._callbacks)


def _fan_out(name: str):
    def hook(self, run_context):
        for cb in self._callbacks:
            getattr(cb, name)(run_context)

    hook.__name__ = name
    return hook


for _hook in _HOOKS:
    setattr(CallbackManager, _hook, _fan_out(_hook))


def _handle_loss(loss):
    """The loss as LossMonitor prints it: a float for a Tensor, the first Tensor of a tuple."""
    if isinstance(loss, (tuple, list)):
        if loss and isinstance(loss[0], Tensor):
            loss = loss[0]  # (loss, overflow, scale) of a loss-scale train cell: the loss
    if isinstance(loss, Tensor):
        loss = float(np.mean(loss.asnumpy()))
    return loss


class LossMonitor(Callback):
    """Print ``epoch: E step: S, loss is L`` every ``per_print_times`` steps (0: never).

    Raises ValueError when the loss becomes NaN or infinite, which stops training.
    """

    def __init__(self, per_print_times: int = 1) -> None:
        super().__init__()
        self._per_print_times = check_non_negative_int(per_print_times, "per_print_times", "LossMonitor")
        self._last_print_time = 0

    def step_end(self, run_context: RunContext) -> None:
        cb_params = run_context.original_args()
        cur_epoch_num = cb_params.get("cur_epoch_num", 1)
        loss = _handle_loss(cb_params.net_outputs)
        cur_step_in_epoch = (cb_params.cur_step_num - 1) % cb_params.batch_num + 1
        if isinstance(loss, float) and (math.isnan(loss) or math.isinf(loss)):
            raise ValueError(
                f"In epoch: {cur_epoch_num} step: {cur_step_in_epoch}, loss is NAN or INF, training process "
                "cannot continue, terminating training."
            )
        if self._per_print_times != 0 and cb_params.cur_step_num <= self._last_print_time:
            self._last_print_time = 0  # a new train() call restarts the step count
        if self._per_print_times != 0 and (cb_params.cur_step_num - self._last_print_time) >= self._per_print_times:
            self._last_print_time = cb_params.cur_step_num
            print(f"epoch: {cur_epoch_num} step: {cur_step_in_epoch}, loss is {loss}", flush=True)

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        cb_params = run_context.original_args()
        metrics = cb_params.get("metrics")
        if metrics:
            print(f"Eval result: epoch {int(cb_params.cur_epoch_num)}, metrics: {metrics}", flush=True)


class TimeMonitor(Callback):
    """Print ``Train epoch time: T ms, per step time: S ms`` after each epoch."""

    def __init__(self, data_size: int | None = None, data_time: bool = False) -> None:
        super().__init__()
        if data_size is not None:
            check_non_negative_int(data_size, "data_size", "TimeMonitor")
        self.data_size = data_size
        self.data_time = check_bool(data_time, "data_time", "TimeMonitor")
        self.epoch_time = time.time()
        self.data_time_sum = 0.0
        self.data_time_start = 0.0

    def on_train_step_begin(self, run_context: RunContext) -> None:
        if self.data_time:
            self.data_time_sum += time.time() - self.data_time_start

    def on_train_step_end(self, run_context: RunContext) -> None:
        if self.data_time:
            self.data_time_start = time.time()

    def epoch_begin(self, run_context: RunContext) -> None:
        self.epoch_time = time.time()
        self.data_time_sum = 0.0
        self.data_time_start = time.time()

    def epoch_end(self, run_context: RunContext) -> None:
        epoch_ms = (time.time() - self.epoch_time) * 1000
        cb_params = run_context.original_args()
        steps = cb_params.get("batch_num") or self.data_size or 1
        line = "{} epoch time: {:5.3f} ms, per step time: {:5.3f} ms".format(
            str(cb_params.get("mode", "")).title(), epoch_ms, epoch_ms / steps)
        if self.data_time:
            line += f" (data time: {self.data_time_sum * 1000 / steps:5.3f} ms)"
        print(line, flush=True)


class ProgressBar(Callback):
    """A tqdm progress bar over the steps of each epoch, showing the current loss."""

    def __init__(self, leave: bool = False) -> None:
        super().__init__()
        self.leave = check_bool(leave, "leave", "ProgressBar")
        self._bar = None

    def on_train_epoch_begin(self, run_context: RunContext) -> None:
        from tqdm.auto import tqdm

        cb_params = run_context.original_args()
        total = cb_params.get("batch_num") or None
        self._bar = tqdm(total=total, desc=f"epoch {cb_params.cur_epoch_num}/{cb_params.epoch_num}",
                         leave=self.leave, unit="step")

    def on_train_step_end(self, run_context: RunContext) -> None:
        if self._bar is None:
            return
        loss = _handle_loss(run_context.original_args().net_outputs)
        self._bar.update(1)
        if isinstance(loss, float):
            self._bar.set_postfix(loss=f"{loss:.4f}", refresh=False)

    def on_train_epoch_end(self, run_context: RunContext) -> None:
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    on_train_end = on_train_epoch_end
