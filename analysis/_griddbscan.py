"""DBSCAN on a fine grid: linear in the number of points, for exact (not block-snapped) geocodes.

Point-level DBSCAN costs a neighbour search per point and holds every neighbourhood in memory:
on 10M points that are not snapped to blocks it takes minutes and gigabytes. On a grid whose cell
is a small fraction of ``eps`` the same three steps run on the occupied cells, weighted by their
points (:func:`analysis._cellkernel.cell_dbscan`, numba), with the neighbour search done on the
grid itself (the cells within ``eps`` are a fixed disc of offsets, looked up in a dense grid of
cell numbers) rather than with a tree or stored neighbourhoods:

1. *density*: the points within ``eps`` of each occupied cell's centre;
2. *core cells* reach ``min_samples``; two core cells whose centres are within ``eps`` are in the
   same cluster (union-find over the core cells);
3. *border cells* (not core, within ``eps`` of a core cell) take the cluster of the nearest core
   cell; point-level DBSCAN gives such a point to whichever cluster reaches it first.

This is DBSCAN run on the cell centres as weighted points, the grid-based approach of
Gunawan's and de Berg et al.'s exact 2-D algorithms (a grid of cells of side below ``eps``, core
cells merged by neighbouring-cell search) with the cell as the unit instead of the point.
The work is (occupied cells) x (cells in a disc of radius ``eps``), whatever the number of
points; memory is one 32-bit cell number per grid cell and per point.

Every point takes its cell's label. Distances are measured between cell centres, so the result
approximates point-level DBSCAN with an error of the order of the cell size; with the cell of
``eps / 15`` that ``DBSCANHotspots`` uses by default the adjusted Rand index against
scikit-learn is above 0.95 on the benchmark's jittered data (``bench/hotspots.py``,
``docs/benchmarks.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from analysis._cellkernel import cell_dbscan, disc_margin, disc_offsets

__all__ = ["GridClusters", "grid_dbscan"]


@dataclass(frozen=True)
class GridClusters:
    """The occupied cells of a grid DBSCAN run and their clusters.

    Attributes
    ----------
    ux, uy
        Centres of the occupied cells (m).
    weight
        Points in each occupied cell.
    inverse
        For every input point, the index of its occupied cell.
    labels
        Cluster of each occupied cell (0..k-1, in no particular order), -1 for noise.
    """

    ux: np.ndarray
    uy: np.ndarray
    weight: np.ndarray
    inverse: np.ndarray
    labels: np.ndarray


def grid_dbscan(
    x: np.ndarray, y: np.ndarray, *, eps_m: float, min_samples: int, cell_m: float
) -> GridClusters:
    """Return a DBSCAN clustering of the points computed on a grid of `cell_m` cells.

    Parameters
    ----------
    x, y
        Projected coordinates (m), finite.
    eps_m
        Neighbourhood radius (m).
    min_samples
        Points within `eps_m` (the point itself included) that make a core cell.
    cell_m
        Side of the grid cells (m); `eps_m` / 15 or less keeps the result close to point-level
        DBSCAN.

    Returns
    -------
    GridClusters
        Occupied cells, each point's cell and each cell's cluster.

    Raises
    ------
    ValueError
        If `cell_m` is not smaller than `eps_m`.
    """
    if not 0 < cell_m < eps_m:
        msg = f"the grid cell ({cell_m} m) must be positive and smaller than eps ({eps_m} m)"
        raise ValueError(msg)
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    if len(x) == 0:
        empty = np.empty(0)
        return GridClusters(empty, empty, empty.astype(np.int64), empty.astype(np.int64),
                            empty.astype(np.int64))  # fmt: skip
    x0, y0 = x.min(), y.min()
    dy, dx = disc_offsets(eps_m / cell_m)
    margin = disc_margin(dy, dx)  # empty cells around the points: no offset leaves the grid
    n_cols = int((x.max() - x0) / cell_m) + 1 + 2 * margin
    n_rows = int((y.max() - y0) / cell_m) + 1 + 2 * margin
    # 32-bit cell numbers while the grid allows (4 bytes a point and a cell instead of 8)
    index_type = np.int32 if n_rows * n_cols < 2**31 else np.int64
    flat = ((y - y0) / cell_m).astype(index_type)
    flat += margin
    flat *= n_cols
    flat += ((x - x0) / cell_m).astype(index_type)
    flat += margin
    counts = np.bincount(flat, minlength=n_rows * n_cols)
    cells = np.flatnonzero(counts)
    weight = counts[cells]
    del counts
    index_of = np.full(n_rows * n_cols, -1, dtype=index_type)
    index_of[cells] = np.arange(len(cells), dtype=index_type)
    inverse = index_of[flat]
    del flat
    rows, cols = np.divmod(cells, n_cols)
    labels = cell_dbscan(
        rows, cols, weight, index_of.reshape(n_rows, n_cols), dy, dx, int(min_samples)
    )
    return GridClusters(
        ux=x0 + (cols - margin + 0.5) * cell_m,
        uy=y0 + (rows - margin + 0.5) * cell_m,
        weight=weight.astype(np.int64),
        inverse=inverse,
        labels=labels,
    )
