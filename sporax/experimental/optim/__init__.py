"""``sporax.experimental.optim`` (``mindspore.experimental.optim``): PyTorch-style optimizers and schedulers."""

from sporax.experimental.optim import lr_scheduler
from sporax.experimental.optim.adagrad import Adagrad
from sporax.experimental.optim.adam import Adam, AdamW
from sporax.experimental.optim.optimizer import Optimizer
from sporax.experimental.optim.rmsprop import RMSprop
from sporax.experimental.optim.sgd import SGD

__all__ = ["Optimizer", "Adagrad", "Adam", "AdamW", "RMSprop", "SGD", "lr_scheduler"]
