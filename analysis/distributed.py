"""Store-wide surfaces reduced file by file, on local threads or on a Dask cluster's workers.

Binning points onto a grid is additive: the counts of the whole store are the sum of each data
file's counts. :func:`grid_counts` bins each file where it lies (through
:meth:`geodata.store.IncidentStore.map_files` and a :mod:`geodata.cluster` mapper) and adds the
grids; :func:`kde_surface` smooths the sum. The results equal the single-process estimators on
the same points and grid (``tests/analysis/test_distributed.py``).
"""

from __future__ import annotations

import hashlib
import json
import os
from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd
import pyarrow as pa

from geodata import schema
from geodata.cluster import Mapper, thread_mapper
from geodata.store import IncidentStore

if TYPE_CHECKING:  # analysis.hotspots is imported where used: city_kde reads before loading it
    from analysis.hotspots import Grid, KDEHotspots

__all__ = ["city_kde", "grid_counts", "kde_surface", "located_points", "store_grid"]


def store_grid(store: IncidentStore, cell_size_m: float, *, pad_m: float = 0.0) -> Grid:
    """Return the grid of `cell_size_m` cells that covers the store's beat layer plus `pad_m`."""
    from analysis.hotspots import Grid

    xmin, ymin, xmax, ymax = store.read_layer("beats").total_bounds
    return Grid.around(np.array([xmin, xmax]), np.array([ymin, ymax]), cell_size_m, pad_m=pad_m)


def _located(table: pa.Table) -> tuple[np.ndarray, np.ndarray]:
    """Return the x and y of the rows of `table` with both coordinates (NaN or null: dropped)."""
    x = table.column(schema.X).to_numpy(zero_copy_only=False)  # nulls become NaN
    y = table.column(schema.Y).to_numpy(zero_copy_only=False)
    # a sum is NaN when a value is (or when +inf and -inf meet: then the mask decides): two
    # passes without temporaries instead of a mask, in the usual file with none
    with np.errstate(invalid="ignore", over="ignore"):  # inf - inf: NaN, then the mask
        total = np.add.reduce(x) + np.add.reduce(y)
    if not np.isnan(total):
        return x, y
    keep = ~(np.isnan(x) | np.isnan(y))
    return (x, y) if keep.all() else (x[keep], y[keep])


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
    parts = store.map_files(
        _located,
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
    from analysis.hotspots import KDEHotspots

    model = KDEHotspots(bandwidth_m=bandwidth_m, cell_size_m=cell_size_m, coverage=coverage)
    grid = store_grid(store, cell_size_m, pad_m=model.pad_bandwidths * bandwidth_m)
    counts, n = grid_counts(store, grid, start=start, end=end, where=where, mapper=mapper)
    if n == 0:
        msg = "no located incident in this period and area: nothing to estimate a density from"
        raise ValueError(msg)
    return model.fit_counts(counts, grid, n_incidents=n, crs=store.analysis_crs)


#: Bumped when the layout of the cached binned counts changes (older files are then ignored).
_KDE_CACHE_FORMAT = 1


def city_kde(
    store: IncidentStore,
    *,
    start: pd.Timestamp | None = None,
    end: pd.Timestamp | None = None,
    bandwidth_m: float | str = "auto",
    cell_size_m: float | str = "auto",
) -> KDEHotspots | None:
    """Return a fitted :class:`KDEHotspots` of every located stored incident of ``[start, end)``.

    The same estimate as ``KDEHotspots(...).fit`` on :func:`located_points` (the automatic
    bandwidth and cell from the points, the grid around them). When nothing is kept for the
    store's version, the coordinates are read file by file into NumPy (two threads) from the
    start, while another thread loads the binning kernel, SciPy, rasterio and GeoPandas (loading
    modules holds the GIL, the reading mostly does not). The binned counts (with
    the bandwidth, grid and number of incidents they were binned for) are kept beside the store,
    keyed on :meth:`IncidentStore.version_token`, the period and the parameters
    (``cache/kde/``): a later estimate of the same store version reads them instead of every
    point and smooths them again, with the same result. A store that cannot be written bins
    every time; the files of a former version are dropped when a new one is written.

    Parameters
    ----------
    store
        The incident store.
    start, end
        The period (as :meth:`IncidentStore.load_incidents`; None: every record).
    bandwidth_m, cell_size_m
        As :class:`KDEHotspots` (``"auto"``: its rules).

    Returns
    -------
    KDEHotspots or None
        Fitted, its ``hotspots_`` in the store's analysis CRS; None when no located incident
        matches (nothing to estimate a density from).
    """
    version = _version_key(store)
    reader = ThreadPoolExecutor(1)
    reading = None
    if not any((store.root / "cache" / "kde").glob(f"{version}-*.npz")):
        # nothing kept for this store version: the files are read (on two threads) from now,
        # while another thread loads the binning kernel and the polygons' modules
        reading = reader.submit(located_points, store, start=start, end=end)
    reader.shutdown(wait=False)
    from analysis.hotspots import KDEHotspots, prepare_binning

    model = KDEHotspots(bandwidth_m=bandwidth_m, cell_size_m=cell_size_m)
    path = _kde_cache_path(store, model, start, end, version=version)
    saved = None if reading is not None else _cached_binning(path)
    if saved is not None:
        counts, grid, n, h = saved
        return model.fit_counts(counts, grid, n_incidents=n, bandwidth_m=h, crs=store.analysis_crs)
    with ThreadPoolExecutor(1) as pool:  # the kernel and modules load while files are read
        prepared = pool.submit(prepare_binning)
        x, y = (
            reading.result() if reading is not None else located_points(store, start=start, end=end)
        )
        if len(x) == 0:
            return None
        # the bandwidth is computed while the kernel may still be loading; the binning waits
        # for it (numba's compiler lock)
        counts = model.bin(pd.DataFrame({schema.X: x, schema.Y: y}, copy=False))
        prepared.result()
    del x, y
    _cache_binning(path, counts, model.grid_, model.n_incidents_, model.bandwidth_m_)
    return model.fit_counts(
        counts,
        model.grid_,
        n_incidents=model.n_incidents_,
        bandwidth_m=model.bandwidth_m_,
        crs=store.analysis_crs,
    )


def _version_key(store: IncidentStore) -> str:
    """Return the store version's part of a cache file's name (:func:`_kde_cache_path`)."""
    return hashlib.sha256(store.version_token().encode()).hexdigest()[:16]


def _kde_cache_path(
    store: IncidentStore,
    model: KDEHotspots,
    start: pd.Timestamp | None,
    end: pd.Timestamp | None,
    *,
    version: str | None = None,
) -> Path:
    """Return the cache file of a city-wide binning: ``VERSION-QUERY.npz`` under cache/kde/.

    `version` is :func:`_version_key` of the store when the caller has it already.
    """
    version = version or _version_key(store)
    query = json.dumps(
        [_KDE_CACHE_FORMAT, str(start), str(end), model.get_params()], sort_keys=True, default=str
    )
    key = hashlib.sha256(query.encode()).hexdigest()[:16]
    return store.root / "cache" / "kde" / f"{version}-{key}.npz"


def _cached_binning(path: Path) -> tuple[np.ndarray, Grid, int, float] | None:
    """Return the cached (counts, grid, incidents, bandwidth) at `path`, or None."""
    from analysis.hotspots import Grid

    try:
        with np.load(path, allow_pickle=False) as saved:
            shape = (int(saved["shape"][0]), int(saved["shape"][1]))
            counts = np.zeros(shape[0] * shape[1])
            counts[saved["cells"]] = saved["values"]
            x0, y0, cell, h = (float(v) for v in saved["floats"])
            n = int(saved["n"])
    except (OSError, ValueError, KeyError, IndexError):  # never cached, or a torn file
        return None
    return counts.reshape(shape), Grid(x0, y0, cell, *shape), n, h


def _cache_binning(path: Path, counts: np.ndarray, grid: Grid, n: int, h: float) -> None:
    """Keep the binned counts beside the store (only the current version's files)."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        version = path.name.split("-")[0]
        for old in path.parent.glob("*.npz"):
            if not old.name.startswith(f"{version}-"):
                old.unlink(missing_ok=True)
        flat = counts.ravel()
        cells = np.flatnonzero(flat)
        scratch = path.with_name(f"{path.stem}.{os.getpid()}.tmp.npz")
        np.savez(
            scratch,
            shape=np.array([grid.n_rows, grid.n_cols], dtype=np.int64),
            cells=cells,
            values=flat[cells],
            floats=np.array([grid.x0, grid.y0, grid.cell_size_m, h]),
            n=np.array(n, dtype=np.int64),
        )
        scratch.replace(path)
    except OSError:  # a read-only store still estimates, only without the cache
        return
