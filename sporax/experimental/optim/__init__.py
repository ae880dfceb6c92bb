"""``sporax.experimental.optim`` (``mindspore.experimental.optim``): PyTorch-style optimizers and schedulers."""

try:  # before any submodule, so that a missing optax leaves no half-imported module behind
    import optax as _optax  # noqa: F401
except ImportError as _e:
    raise ModuleNotFoundError(
        "mindspore.experimental.optim (sporax.experimental.optim) needs optax, which is not installed: "
        "pip install 'sporax[train]' (or pip install 'optax>=0.2,<0.3').", name="optax") from _e

from sporax.experimental.optim import lr_scheduler
from sporax.experimental.optim.adagrad import Adagrad
from sporax.experimental.optim.adam import Adam, AdamW
from sporax.experimental.optim.adaptive import ASGD, Adadelta, Adamax, NAdam, RAdam, Rprop
from sporax.experimental.optim.optimizer import Optimizer
from sporax.experimental.optim.rmsprop import RMSprop
from sporax.experimental.optim.sgd import SGD

__all__ = ["Optimizer", "ASGD", "Adadelta", "Adagrad", "Adamax", "NAdam", "RAdam", "Rprop", "Adam", "AdamW", "RMSprop", "SGD", "lr_scheduler"]
