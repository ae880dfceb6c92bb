"""``sporax.experimental`` (``mindspore.experimental``): the PyTorch-style optimizers of ``experimental.optim``."""

from sporax.experimental import optim

__all__ = ["optim"]
