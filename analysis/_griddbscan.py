"""DBSCAN on a fine grid: linear in the number of points, for exact (not block-snapped) geocodes.

Point-level DBSCAN costs a neighbour search per point and holds every neighbourhood in memory:
on 10M points that are not snapped to blocks it takes minutes and gigabytes. On a grid whose cell
is a small fraction of ``eps`` the same three steps are array operations on the cells:

1. *density*: the points within ``eps`` of each cell centre are the cell counts convolved with a
   disc of radius ``eps`` (an overlap-add convolution);
2. *core cells* reach ``min_samples``; two core cells are density-connected when their centres are
   within ``eps``: the cells within half that radius of a core cell (one Euclidean distance
   transform), labelled as connected regions, give the clusters;
3. *border cells* (not core, within ``eps`` of a core cell) take the cluster of the nearest core
   cell (the same distance transform); point-level DBSCAN gives such a point to whichever
   cluster reaches it first.

Every point takes its cell's label. Distances are measured between cell centres, so the result
approximates point-level DBSCAN with an error of the order of the cell size; with the cell of
``eps / 15`` that ``DBSCANHotspots`` uses by default the adjusted Rand index against
scikit-learn is above 0.95 on the benchmark's jittered data (``bench/hotspots.py``,
``docs/benchmarks.md``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal

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


def _disc(radius_cells: float) -> np.ndarray:
    r = int(np.floor(radius_cells))
    offsets = np.arange(-r, r + 1)
    return (offsets[:, None] ** 2 + offsets[None, :] ** 2) <= radius_cells**2 + 1e-9


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
    ix = ((x - x0) / cell_m).astype(np.int64)
    iy = ((y - y0) / cell_m).astype(np.int64)
    n_cols, n_rows = int(ix.max()) + 1, int(iy.max()) + 1
    flat = iy * n_cols + ix
    del ix, iy
    counts = np.bincount(flat, minlength=n_rows * n_cols).reshape(n_rows, n_cols)
    radius = eps_m / cell_m
    near = signal.oaconvolve(counts.astype(np.float32), _disc(radius).astype(np.float32), "same")
    occupied = counts > 0
    core = occupied & (near >= min_samples - 0.5)
    del near
    # one Euclidean distance transform gives, for every cell, the nearest core cell and its
    # distance (in cells): core cells within eps of each other are joined by the discs of half
    # that radius around them (4-connectivity adds one cell between two discs, hence the -1);
    # a border cell (not core, within eps of a core cell) takes its nearest core cell's cluster
    distance, nearest = ndimage.distance_transform_edt(~core, return_indices=True)
    regions, _ = ndimage.label(distance <= max((radius - 1.0) / 2.0, 0.5))
    cluster = np.where(core, regions, 0)
    border = occupied & ~core & (distance <= radius)
    cluster[border] = cluster[nearest[0][border], nearest[1][border]]
    del distance, nearest, regions
    cells = np.flatnonzero(occupied.ravel())
    index_of = np.full(n_rows * n_cols, -1, dtype=np.int64)
    index_of[cells] = np.arange(len(cells))
    inverse = index_of[flat]
    rows, cols = np.divmod(cells, n_cols)
    labels = cluster.ravel()[cells].astype(np.int64)
    # renumber the region labels that hold a cluster to 0..k-1
    present, labels = np.unique(labels, return_inverse=True)
    labels = labels - 1 if present[0] == 0 else labels
    return GridClusters(
        ux=x0 + (cols + 0.5) * cell_m,
        uy=y0 + (rows + 0.5) * cell_m,
        weight=counts.ravel()[cells],
        inverse=inverse,
        labels=labels.astype(np.int64),
    )
