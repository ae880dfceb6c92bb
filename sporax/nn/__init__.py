"""``sporax.nn`` (``mindspore.nn``): Cell, containers, layers, losses, optimizers, wrappers."""

from sporax.nn.cell import Cell
from sporax.nn.container import CellList, SequentialCell

__all__ = ["Cell", "CellList", "SequentialCell"]
