"""Store-wide surfaces reduced file by file, on local threads or on a Dask cluster's workers.

Binning points onto a grid is additive: the counts of the whole store are the sum of each data
file's counts. :func:`grid_counts` bins each file where it lies (through
:meth:`geodata.store.IncidentStore.map_files` and a :mod:`geodata.cluster` mapper) and adds the
grids; :func:`kde_surface` smooths the sum. The results equal the single-process estimators on
the same points and grid (``tests/analysis/test_distributed.py``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd
import pyarrow as pa

from analysis.hotspots import Grid, KDEHotspots
from geodata import schema
from geodata.cluster import Mapper, thread_mapper
from geodata.store import IncidentStore

__all__ = ["grid_counts", "kde_surface", "located_points", "store_grid"]


def store_grid(store: IncidentStore, cell_size_m: float, *, pad_m: float = 0.0) -> Grid:
    """Return the grid of `cell_size_m` cells that covers the store's beat layer plus `pad_m`."""
    xmin, ymin, xmax, ymax = store.read_layer("beats").total_bounds
    return Grid.around(np.array([xmin, xmax]), np.array([ymin, ymax]), cell_size_m, pad_m=pad_m)


def located_points(
    store: IncidentStore,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    where: Mapping[str, Sequence[str]] | None = None,
    mapper: Mapper | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Return the x and y of the located stored incidents, in the store's order.

    Only the two coordinate columns are read, file by file, straight into NumPy (no data
    frame of every incident, no copy to drop the unlocated ones): what a city-wide KDE needs.
    The points are those of ``load_incidents(columns=["x", "y"], ...)`` without missing
    coordinates, in the same order.

    Parameters
    ----------
    store
        The incident store.
    start, end, where
        Which incidents (as :meth:`IncidentStore.load_incidents`).
    mapper
        Runs the per-file reads (default: two local threads).
    """

    def located(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
        x = table.column(schema.X).to_numpy(zero_copy_only=False)
        y = table.column(schema.Y).to_numpy(zero_copy_only=False)
        keep = ~(np.isnan(x) | np.isnan(y))
        return (x, y) if keep.all() else (x[keep], y[keep])

    parts = store.map_files(
        located,
        [schema.X, schema.Y],
        start=start,
        end=end,
        where=where,
        mapper=mapper or thread_mapper(2),
    )
    if not parts:
        return np.empty(0), np.empty(0)
    return np.concatenate([p[0] for p in parts]), np.concatenate([p[1] for p in parts])


def grid_counts(
    store: IncidentStore,
    grid: Grid,
    *,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    where: Mapping[str, Sequence[str]] | None = None,
    linear: bool = True,
    mapper: Mapper | None = None,
) -> tuple[np.ndarray, int]:
    """Return the stored incidents binned on `grid` and how many were binned.

    Parameters
    ----------
    store
        The incident store.
    grid
        The grid (analysis CRS).
    start, end, where
        Which incidents (as :meth:`IncidentStore.load_incidents`).
    linear
        Linear binning (for KDE) rather than simple counts (for Gi*).
    mapper
        Runs the per-file binning (default: in this process).

    Returns
    -------
    counts
        The (rows, cols) grid of counts.
    n_incidents
        Located incidents binned (points outside the grid included in the count, as
        :meth:`KDEHotspots.fit` counts them).
    """

    def binned(table: pa.Table) -> tuple[np.ndarray, np.ndarray, int]:
        x = table.column(schema.X).to_numpy(zero_copy_only=False)
        y = table.column(schema.Y).to_numpy(zero_copy_only=False)
        located = np.isfinite(x) & np.isfinite(y)
        x, y = x[located], y[located]
        counts = (grid.linear_counts(x, y) if linear else grid.counts(x, y)).ravel()
        # only the cells with points: a file covers a small part of a city's grid, and the
        # caller holds every file's result before adding them up (120 dense grids of 50 m
        # cells over a city were 800 MB)
        cells = np.flatnonzero(counts)
        return cells, counts[cells], int(located.sum())

    parts = store.map_files(
        binned, [schema.X, schema.Y], start=start, end=end, where=where, mapper=mapper
    )
    total = np.zeros(grid.n_rows * grid.n_cols)
    n = 0
    for cells, values, located in parts:
        total[cells] += values  # cells are distinct within a part: the same sums as dense grids
        n += located
    return total.reshape(grid.n_rows, grid.n_cols), n


def kde_surface(
    store: IncidentStore,
    *,
    bandwidth_m: float,
    cell_size_m: float,
    coverage: float = 0.05,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    where: Mapping[str, Sequence[str]] | None = None,
    mapper: Mapper | None = None,
) -> KDEHotspots:
    """Return a fitted :class:`KDEHotspots` of the stored incidents, binned file by file.

    The grid covers the store's beat layer padded by the kernel's reach, so every worker bins
    onto the same grid without seeing the others' points.

    Raises
    ------
    ValueError
        If no incident matches (nothing to estimate a density from).
    """
    model = KDEHotspots(bandwidth_m=bandwidth_m, cell_size_m=cell_size_m, coverage=coverage)
    grid = store_grid(store, cell_size_m, pad_m=model.pad_bandwidths * bandwidth_m)
    counts, n = grid_counts(store, grid, start=start, end=end, where=where, mapper=mapper)
    if n == 0:
        msg = "no located incident in this period and area: nothing to estimate a density from"
        raise ValueError(msg)
    return model.fit_counts(counts, grid, n_incidents=n, crs=store.analysis_crs)
