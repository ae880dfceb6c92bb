"""``sporax.nn`` (``mindspore.nn``): Cell, containers, layers, losses, optimizers, wrappers, metrics."""

from sporax.nn import graph_cell, layer, loss, loss_scale, optim, wrap
from sporax.nn.cell import Cell
from sporax.nn.container import CellList, SequentialCell
from sporax.nn.grad import Jvp, Vjp
from sporax.nn.graph_cell import *  # noqa: F403
from sporax.nn.layer import *  # noqa: F403
from sporax.nn.loss import *  # noqa: F403
from sporax.nn.loss_scale import *  # noqa: F403
from sporax.nn.optim import *  # noqa: F403
from sporax.nn.optim.dynamic_lr import *  # noqa: F403
from sporax.nn.wrap import *  # noqa: F403
from sporax.parallel.grad_reducer import DistributedGradReducer  # noqa: E402  (needs nn.cell)
from sporax.train._metrics_ext import (
    MAE,
    MSE,
    Precision,
    Recall,
    Top1CategoricalAccuracy,
    Top5CategoricalAccuracy,
    TopKCategoricalAccuracy,
)
from sporax.train.metrics import Accuracy, Loss, Metric

__all__ = [
    "Cell", "CellList", "SequentialCell", "Jvp", "Vjp", *layer.__all__, *loss.__all__, *optim.__all__,
    *optim.dynamic_lr.__all__, *wrap.__all__, *loss_scale.__all__, *graph_cell.__all__, "Accuracy", "Loss", "Metric",
    "DistributedGradReducer",
    "MAE", "MSE", "Precision", "Recall", "TopKCategoricalAccuracy", "Top1CategoricalAccuracy",
    "Top5CategoricalAccuracy",
]
