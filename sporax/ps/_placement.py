"""Where each parameter-server parameter lives: pure functions of names, shapes and server count.

A parameter goes to server ``crc32(name) % n_servers`` (a stable hash: the same on every
process and every run, unlike Python's ``hash``). A row-sliced table (an embedding table with
sparse row access, or any parameter of at least ``ROW_SLICE_MIN`` elements) is cut into
``n_servers`` contiguous row blocks, block ``k`` on server ``k``.
"""

from __future__ import annotations

import math
import zlib
from typing import NamedTuple

import numpy as np

__all__ = ["Piece", "ROW_SLICE_MIN", "place", "row_blocks", "split_rows"]

ROW_SLICE_MIN = 1 << 20


class Piece(NamedTuple):
    """One server's part of a parameter: rows ``[row_start, row_stop)`` (the whole of it if unsliced)."""

    name: str
    server: int
    row_start: int
    row_stop: int
    sliced: bool


def stable_server(name: str, n_servers: int) -> int:
    """The server of an unsliced parameter."""
    return zlib.crc32(name.encode("utf-8")) % n_servers


def row_blocks(rows: int, n_servers: int) -> list[tuple[int, int]]:
    """``n_servers`` contiguous ``(start, stop)`` blocks covering ``rows`` (the last ones may be empty)."""
    per = max(1, math.ceil(rows / n_servers))
    return [(min(k * per, rows), min((k + 1) * per, rows)) for k in range(n_servers)]


def place(name: str, shape: tuple, n_servers: int, row_sparse: bool) -> list[Piece]:
    """The pieces of one parameter, one per server that holds part of it."""
    size = int(np.prod(shape)) if shape else 1
    if len(shape) >= 1 and shape[0] >= n_servers > 1 and (row_sparse or size >= ROW_SLICE_MIN):
        return [Piece(name, k, a, b, True) for k, (a, b) in enumerate(row_blocks(shape[0], n_servers)) if b > a]
    rows = shape[0] if shape else 1
    return [Piece(name, stable_server(name, n_servers), 0, rows, False)]


def split_rows(pieces: list[Piece], ids: np.ndarray) -> list[tuple[Piece, np.ndarray]]:
    """For sorted unique row ``ids``: each piece with the positions (into ``ids``) of its rows."""
    out = []
    for piece in pieces:
        lo = np.searchsorted(ids, piece.row_start, "left")
        hi = np.searchsorted(ids, piece.row_stop, "left")
        if hi > lo:
            out.append((piece, np.arange(lo, hi)))
    return out
