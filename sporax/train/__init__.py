"""``sporax.train`` (``mindspore.train``): checkpoints (and, later, Model and callbacks)."""

from sporax.train.serialization import (
    async_ckpt_thread_status,
    load_checkpoint,
    load_param_into_net,
    merge_checkpoints,
    save_checkpoint,
)

__all__ = ["save_checkpoint", "load_checkpoint", "load_param_into_net", "merge_checkpoints", "async_ckpt_thread_status"]
from sporax.train import callback, metrics  # noqa: E402,F401
from sporax.train.callback import Callback, LossMonitor, ProgressBar, RunContext, TimeMonitor  # noqa: E402,F401
from sporax.train.metrics import Accuracy, Loss, Metric  # noqa: E402,F401
from sporax.train.model import Model  # noqa: E402,F401
