"""``sporax.experimental.optim`` (``mindspore.experimental.optim``): PyTorch-style optimizers and schedulers."""

from sporax.experimental.optim import lr_scheduler
from sporax.experimental.optim.adam import Adam, AdamW
from sporax.experimental.optim.optimizer import Optimizer
from sporax.experimental.optim.sgd import SGD

__all__ = ["Optimizer", "Adam", "AdamW", "SGD", "lr_scheduler"]
