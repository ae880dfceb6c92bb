"""``sporax.train`` (``mindspore.train``): checkpoints, Model, callbacks and metrics."""

from sporax.train import amp, callback, loss_scale_manager, metrics, serialization
from sporax.train._ckpt_callback import CheckpointConfig, ModelCheckpoint
from sporax.train._export import export, load
from sporax.train._metrics_ext import (
    MAE,
    MSE,
    Precision,
    Recall,
    Top1CategoricalAccuracy,
    Top5CategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from sporax.train._monitor_callbacks import EarlyStopping, History, LambdaCallback, ReduceLROnPlateau, SummaryCollector
from sporax.train.amp import build_train_network
from sporax.train.callback import Callback, LossMonitor, ProgressBar, RunContext, TimeMonitor
from sporax.train.loss_scale_manager import DynamicLossScaleManager, FixedLossScaleManager, LossScaleManager
from sporax.train.metrics import Accuracy, Loss, Metric, get_metric_fn, names
from sporax.train.model import Model
from sporax.train.serialization import (
    async_ckpt_thread_status,
    build_searched_strategy,
    load_checkpoint,
    load_distributed_checkpoint,
    load_param_into_net,
    merge_checkpoints,
    merge_sliced_parameter,
    rank_list_for_transform,
    save_checkpoint,
    transform_checkpoint_by_rank,
    transform_checkpoints,
)

__all__ = [
    "save_checkpoint", "load_checkpoint", "load_param_into_net", "merge_checkpoints", "async_ckpt_thread_status",
    "build_searched_strategy", "merge_sliced_parameter", "load_distributed_checkpoint", "transform_checkpoints",
    "transform_checkpoint_by_rank", "rank_list_for_transform",
    "Model", "Callback", "LossMonitor", "ProgressBar", "RunContext", "TimeMonitor", "Accuracy", "Loss", "Metric", "names", "get_metric_fn", "MAE", "MSE", "Precision", "Recall",
    "TopKCategoricalAccuracy", "Top1CategoricalAccuracy", "Top5CategoricalAccuracy",
    "callback", "metrics", "serialization",
    "CheckpointConfig", "ModelCheckpoint", "EarlyStopping", "History", "LambdaCallback", "ReduceLROnPlateau",
    "SummaryCollector", "amp", "loss_scale_manager", "LossScaleManager", "FixedLossScaleManager",
    "DynamicLossScaleManager", "export", "load", "build_train_network",
]
