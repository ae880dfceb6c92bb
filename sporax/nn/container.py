"""SequentialCell and CellList: cells whose children are named '0', '1', ... (spec §6.3)."""

from __future__ import annotations

from collections import OrderedDict

from sporax.nn.cell import Cell

__all__ = ["SequentialCell", "CellList"]


def _check_cell(cell, where: str) -> Cell:
    if not isinstance(cell, Cell):
        raise TypeError(f"For '{where}', each element should be a Cell, but got {type(cell).__name__}.")
    return cell


class _IndexedCells(Cell):
    """Children stored under their position; new children are named below this cell's prefix."""

    def _add(self, key: str, cell: Cell) -> None:
        if self._auto_prefix:
            cell.update_parameters_name(f"{self._param_prefix}{key}.")
        self.insert_child_to_cell(key, cell)

    def __len__(self) -> int:
        return len(self._cells)

    def __iter__(self):
        return iter(self._cells.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return type(self)(list(self._cells.values())[index])
        if not isinstance(index, int):
            raise TypeError(f"For '{self.cls_name}', the index should be an int or slice, but got {type(index).__name__}.")
        values = list(self._cells.values())
        if not -len(values) <= index < len(values):
            raise IndexError(f"For '{self.cls_name}', index {index} is out of range for length {len(values)}.")
        return values[index]

    def append(self, cell: Cell):
        self._add(str(len(self)), _check_cell(cell, self.cls_name))
        return self

    def extend(self, cells):
        for cell in cells:
            self.append(cell)
        return self


class SequentialCell(_IndexedCells):
    """Runs its cells in order, each one's output feeding the next."""

    def __init__(self, *args) -> None:
        super().__init__()
        if len(args) == 1 and isinstance(args[0], OrderedDict):
            for key, cell in args[0].items():
                self._add(key, _check_cell(cell, "SequentialCell"))
            return
        if len(args) == 1 and isinstance(args[0], list):
            args = tuple(args[0])
        for cell in args:
            self.append(cell)

    def construct(self, x):
        for cell in self._cells.values():
            x = cell(x)
        return x


class CellList(_IndexedCells):
    """A list of cells, registered so that their parameters belong to the network."""

    def __init__(self, *args, **kwargs) -> None:
        auto_prefix = kwargs.pop("auto_prefix", True)
        super().__init__(auto_prefix=auto_prefix)
        if len(args) == 1 and isinstance(args[0], (list, tuple)):
            args = tuple(args[0])
        for cell in args:
            self.append(cell)

    def insert(self, index: int, cell: Cell) -> None:
        cells = list(self._cells.values())
        cells.insert(index, _check_cell(cell, "CellList"))
        self._cells.clear()
        for i, c in enumerate(cells):
            self._add(str(i), c)

    def construct(self, *inputs):
        raise RuntimeError("CellList is a container; call its cells, not the list.")
