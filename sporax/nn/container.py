"""SequentialCell and CellList: cells whose children are named '0', '1', ... (spec §6.3)."""

from __future__ import annotations

from collections import OrderedDict

from sporax.nn.cell import Cell

__all__ = ["SequentialCell", "CellList"]


def _check_cell(cell, where: str) -> Cell:
    if not isinstance(cell, Cell):
        raise TypeError(f"For '{where}', each cell must be subclass of Cell, but got {type(cell).__name__}.")
    return cell


class _IndexedCells(Cell):
    """Children stored under their position; new children are named below this cell's prefix.

    Item assignment, deletion and insertion keep MindSpore 2.10's naming: the children are
    re-keyed ``'0'``, ``'1'``, ... and every parameter is renamed after its (new) position, below
    this cell's own prefix (``layers.1.weight``).
    """

    def _add(self, key: str, cell: Cell) -> None:
        if self._auto_prefix:
            cell.update_parameters_name(f"{self._param_prefix}{key}.")
        self.insert_child_to_cell(key, cell)

    def _rebuild(self, cells: list) -> None:
        """Re-key the children 0..n-1 (renaming their parameters after their new positions)."""
        self._cells.clear()
        for i, c in enumerate(cells):
            self._add(str(i), c)

    def _index(self, index) -> int:
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"For '{self.cls_name}', the type of 'index' must be int or slice, but got {type(index).__name__}.")
        n = len(self._cells)
        if not -n <= index < n:
            raise IndexError(f"For '{self.cls_name}', the value of 'index' must be a number in range [{-n}, {n}), but got {index}.")
        return index % n

    def __len__(self) -> int:
        return len(self._cells)

    def __iter__(self):
        return iter(self._cells.values())

    def __getitem__(self, index):
        if isinstance(index, slice):
            return self._slice(index)
        return list(self._cells.values())[self._index(index)]

    def __setitem__(self, index, cell) -> None:
        """Replace the child at ``index``; it takes that position's name."""
        i = self._index(index)
        self._add(list(self._cells)[i], _check_cell(cell, self.cls_name))

    def __delitem__(self, index) -> None:
        """Remove the child(ren) at ``index`` (an int or a slice, ``del seq[:]`` included)."""
        cells = list(self._cells.values())
        if isinstance(index, slice):
            del cells[index]
        else:
            del cells[self._index(index)]
        self._rebuild(cells)

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

    def _slice(self, index: slice) -> SequentialCell:
        """A SequentialCell of the sliced children under their own keys; no parameter is renamed."""
        out = SequentialCell()
        for key in list(self._cells)[index]:
            out.insert_child_to_cell(key, self._cells[key])
        return out

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

    def _slice(self, index: slice) -> CellList:
        """A CellList of the sliced children, named after their positions in it (as MindSpore does)."""
        return CellList(list(self._cells.values())[index])

    def extend(self, cells):
        """Append every cell of the list ``cells``."""
        if not isinstance(cells, (list, tuple)):
            raise TypeError(
                f"For 'CellList', the new cells wanted to append should be instance of list, but got {type(cells).__name__}."
            )
        for cell in cells:
            _check_cell(cell, "CellList")
        return super().extend(cells)

    def __iadd__(self, cells):
        return self.extend(cells)

    def insert(self, index: int, cell: Cell) -> None:
        """Insert ``cell`` before position ``index`` (list semantics); later children move up one."""
        if isinstance(index, bool) or not isinstance(index, int):
            raise TypeError(f"For 'CellList', the type of 'index' must be int, but got {type(index).__name__}.")
        cells = list(self._cells.values())
        cells.insert(index, _check_cell(cell, "CellList"))
        self._rebuild(cells)

    def construct(self, *inputs):
        raise RuntimeError("CellList is a container; call its cells, not the list.")
