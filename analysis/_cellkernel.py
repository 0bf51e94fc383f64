"""Compiled DBSCAN of weighted grid cells (numba): neighbour search on the grid, union-find.

Only the occupied cells are visited. Each looks at the cells whose centres lie within ``eps``
(a disc of integer offsets) through a dense grid of cell numbers, so the work is
``occupied cells x disc cells`` whatever the number of points, and no neighbourhood list is
ever stored (point-level DBSCAN stores every neighbourhood). The grid has a margin of empty
cells as wide as the disc, so no offset of an occupied cell leaves it: the three neighbour loops
read the grid with no bounds test.
"""

from __future__ import annotations

import numpy as np
from numba import njit

__all__ = ["cell_dbscan", "disc_margin", "disc_offsets"]


def disc_offsets(radius_cells: float) -> tuple[np.ndarray, np.ndarray]:
    """Return the (row, col) offsets of the cells whose centres are within `radius_cells`."""
    r = int(np.floor(radius_cells))
    dy, dx = np.mgrid[-r : r + 1, -r : r + 1]
    inside = dy**2 + dx**2 <= radius_cells**2 + 1e-9
    return dy[inside].astype(np.int64), dx[inside].astype(np.int64)


@njit(cache=True)
def disc_margin(dy: np.ndarray, dx: np.ndarray) -> int:
    """Return the width (cells) of the empty margin the grid needs around the occupied cells."""
    return max(np.abs(dy).max(), np.abs(dx).max()) if dy.size else 0


@njit(cache=True)
def _find(parent: np.ndarray, k: int) -> int:
    root = k
    while parent[root] != root:
        root = parent[root]
    while parent[k] != root:  # path compression
        parent[k], k = root, parent[k]
    return root


@njit(cache=True)
def cell_dbscan(
    rows: np.ndarray,
    cols: np.ndarray,
    weight: np.ndarray,
    index_of: np.ndarray,
    dy: np.ndarray,
    dx: np.ndarray,
    min_samples: int,
) -> np.ndarray:
    """Return the cluster of each occupied cell (0..k-1, numbered by first cell), -1 for noise.

    Parameters
    ----------
    rows, cols
        Grid position of each occupied cell.
    weight
        Points in each occupied cell.
    index_of
        (rows, cols) grid: the number of the occupied cell there, -1 where empty, with a margin
        of empty cells at least as wide as the disc (:func:`disc_margin`).
    dy, dx
        Offsets of the cells within ``eps`` (:func:`disc_offsets`).
    min_samples
        Points within ``eps`` of a cell's centre (its own included) that make it a core cell.

    Raises
    ------
    ValueError
        If an occupied cell is closer to the grid's edge than the disc's radius.
    """
    n = rows.size
    n_rows, n_cols = index_of.shape
    margin = disc_margin(dy, dx)
    if n and (
        rows.min() < margin
        or cols.min() < margin
        or rows.max() >= n_rows - margin
        or cols.max() >= n_cols - margin
    ):
        msg = "index_of needs a margin of empty cells as wide as the disc"
        raise ValueError(msg)
    # flat cell numbers and offsets; unsigned indices (never negative, thanks to the margin)
    # spare numba's negative-index wraparound in the inner loops
    cell_at = index_of.reshape(n_rows * n_cols)
    step = dy * n_cols + dx
    core = np.zeros(n, dtype=np.bool_)
    for k in range(n):
        total = 0
        base = rows[k] * n_cols + cols[k]
        for o in range(dy.size):
            j = cell_at[np.uint64(base + step[o])]
            if j >= 0:
                total += weight[j]
        core[k] = total >= min_samples
    # core cells within eps of each other are one cluster
    parent = np.arange(n)
    for k in range(n):
        if not core[k]:
            continue
        base = rows[k] * n_cols + cols[k]
        for o in range(dy.size):
            j = cell_at[np.uint64(base + step[o])]
            if j > k and core[j]:
                a = _find(parent, k)
                b = _find(parent, j)
                if a != b:
                    parent[max(a, b)] = min(a, b)
    labels = np.full(n, -1, dtype=np.int64)
    number = np.full(n, -1, dtype=np.int64)
    clusters = 0
    for k in range(n):
        if core[k]:
            root = _find(parent, k)
            if number[root] < 0:
                number[root] = clusters
                clusters += 1
            labels[k] = number[root]
    # a border cell (not core, within eps of a core cell) joins its nearest core cell's cluster
    for k in range(n):
        if core[k]:
            continue
        best = -1
        best_d2 = 0
        base = rows[k] * n_cols + cols[k]
        for o in range(dy.size):
            j = cell_at[np.uint64(base + step[o])]
            if j >= 0 and core[j]:
                d2 = dy[o] * dy[o] + dx[o] * dx[o]
                if best < 0 or d2 < best_d2:
                    best, best_d2 = j, d2
        if best >= 0:
            labels[k] = labels[best]
    return labels
