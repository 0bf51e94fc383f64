"""Assign incidents to beats: a fast lookup grid plus an exact, documented rule at beat edges.

The boundary rule
-----------------
Chicago (like most departments) publishes incident locations moved to the block, which puts them
on street centre lines, and its beat boundaries *are* street centre lines: 17% of the bundled
located incidents lie within 0.5 m of a boundary. A point-in-polygon test decides their side by
floating-point noise. So every point is classified by its distance to the beats:

``inside``
    Within exactly one beat and farther than ``tolerance_m`` from any other: the beat that
    contains it. This is, by construction, identical to ``geopandas.sjoin(predicate="within")``.
``edge``
    Within ``tolerance_m`` of two or more beats (on or next to a shared edge). The owner is the
    department's reported beat when ``prefer_reported`` and it is one of the candidates; else the
    ``tie_rule``: ``"lowest_id"`` (default; deterministic, documented) or ``"nearest_centroid"``.
``snapped``
    Within ``tolerance_m`` of exactly one beat (inside it near the city edge, or just outside
    it): that beat.
``outside``
    In no beat and farther than ``tolerance_m`` from all of them: beat ``"outside"``. Points
    farther than ``buffer_m`` from every beat are not joined at all: the reader rejects them as
    outside the jurisdiction (see :meth:`BeatIndex.distance_to_jurisdiction`).

Speed
-----
:class:`BeatIndex` rasterises the beats once onto a fine grid (``cell_size_m``, default 5 m).
A cell that no boundary (grown by the tolerance) touches lies wholly inside one beat or wholly
outside all, so its points take the cell's label by array indexing; only points in boundary cells
(a few percent of uniformly spread points) get the exact shapely test. Coordinates are raw arrays:
no per-point shapely object is built except for those few.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely
from rasterio import features
from rasterio.transform import from_origin
from scipy import ndimage

from geodata import schema
from geodata.errors import BoundaryError, CRSMismatchError

__all__ = ["STATUS_CODES", "BeatIndex", "JoinResult", "assign_beats", "join_agreement"]

TieRule = Literal["lowest_id", "nearest_centroid"]

_OUTSIDE = -1
_NEEDS_TEST = -2
#: Integer codes of :data:`geodata.schema.JOIN_STATUSES`, as returned by BeatIndex.lookup.
STATUS_CODES = {name: code for code, name in enumerate(schema.JOIN_STATUSES)}


@dataclass
class JoinResult:
    """Beat index (into ``BeatIndex.beat_ids``, -1 = outside) and status code of each point."""

    beat_index: np.ndarray
    status: np.ndarray
    n_exact: int


class BeatIndex:
    """A lookup grid over a beat layer that assigns raw x/y arrays to beats.

    Parameters
    ----------
    beats
        Canonical beats (one row per beat id) in a projected CRS in metres.
    cell_size_m
        Edge of a grid cell. Smaller cells mean fewer exact tests and more memory
        (Chicago at 5 m: 8,400 x 9,700 cells, 163 MB as int16).
    tolerance_m
        Distance from a beat boundary within which the boundary rule applies. The default of
        1 m covers block-level points on street centre lines (measured at <= 0.16 m off the
        line after projection) without reaching real addresses off the street.
    """

    def __init__(
        self,
        beats: gpd.GeoDataFrame,
        *,
        cell_size_m: float = 5.0,
        tolerance_m: float = 1.0,
    ) -> None:
        if beats.crs is None or not beats.crs.is_projected:
            msg = "BeatIndex needs beats in a projected CRS in metres; see read_beats()"
            raise CRSMismatchError(msg)
        if not cell_size_m > 0:
            msg = f"cell_size_m must be > 0 metres, got {cell_size_m!r}"
            raise ValueError(msg)
        if not tolerance_m >= 0:
            msg = f"tolerance_m must be >= 0 metres, got {tolerance_m!r}"
            raise ValueError(msg)
        if beats[schema.BEAT].duplicated().any():
            dupes = sorted(beats.loc[beats[schema.BEAT].duplicated(), schema.BEAT])
            msg = f"beat ids must be unique (dissolve multi-part beats first): {dupes[:5]}"
            raise BoundaryError(msg)
        self.crs = beats.crs
        self.cell_size_m = float(cell_size_m)
        self.tolerance_m = float(tolerance_m)
        self.beat_ids = beats[schema.BEAT].astype(str).to_numpy()
        self.geometries = beats.geometry.to_numpy()
        self.centroids = shapely.centroid(self.geometries)
        self.tree = shapely.STRtree(self.geometries)
        self._union = shapely.union_all(self.geometries)
        shapely.prepare(self._union)
        self._build_grid()

    def _build_grid(self) -> None:
        cell = self.cell_size_m
        margin = self.tolerance_m + 2 * cell
        xmin, ymin, xmax, ymax = shapely.total_bounds(self.geometries)
        self.x0 = math.floor((xmin - margin) / cell) * cell
        self.y1 = math.ceil((ymax + margin) / cell) * cell
        self.nx = math.ceil((xmax + margin - self.x0) / cell)
        self.ny = math.ceil((self.y1 - (ymin - margin)) / cell)
        dtype = np.int16 if len(self.beat_ids) < 32000 else np.int32
        transform = from_origin(self.x0, self.y1, cell, cell)
        shape = (self.ny, self.nx)
        grid = features.rasterize(
            ((g, i) for i, g in enumerate(self.geometries)),
            out_shape=shape,
            transform=transform,
            fill=_OUTSIDE,
            dtype=dtype,
        )
        edges = features.rasterize(
            ((shapely.boundary(g), 1) for g in self.geometries),
            out_shape=shape,
            transform=transform,
            fill=0,
            dtype=np.uint8,
            all_touched=True,
        ).astype(bool)
        # grow by the tolerance plus one cell, so that a cell outside the mask is farther than
        # the tolerance from every boundary whatever GDAL does with lines along cell edges
        reach = math.ceil(self.tolerance_m / cell) + 1
        edges = ndimage.binary_dilation(edges, structure=np.ones((3, 3), bool), iterations=reach)
        grid[edges] = _NEEDS_TEST
        self.grid = grid
        self.boundary_cell_share = float(edges.mean())

    @property
    def nbytes(self) -> int:
        """Return the memory held by the lookup grid, in bytes."""
        return int(self.grid.nbytes)

    def lookup(
        self,
        x: np.ndarray,
        y: np.ndarray,
        *,
        reported: np.ndarray | None = None,
        prefer_reported: bool = False,
        tie_rule: TieRule = "lowest_id",
    ) -> JoinResult:
        """Assign points to beats.

        Parameters
        ----------
        x, y
            Coordinates in the index's CRS (metres); NaN points come back ``outside``.
        reported
            The source's own beat id per point (strings, normalised like the beat layer); used
            only for ``edge`` points and only when `prefer_reported`.
        prefer_reported
            Let the reported beat decide edge points when it is one of the candidates.
        tie_rule
            Geometric rule for edge points not decided by the reported beat.

        Returns
        -------
        JoinResult
        """
        if tie_rule not in ("lowest_id", "nearest_centroid"):
            msg = f"tie_rule must be 'lowest_id' or 'nearest_centroid', got {tie_rule!r}"
            raise ValueError(msg)
        x = np.asarray(x, dtype=np.float64)
        y = np.asarray(y, dtype=np.float64)
        col = np.floor((x - self.x0) / self.cell_size_m)
        row = np.floor((self.y1 - y) / self.cell_size_m)
        in_grid = (col >= 0) & (col < self.nx) & (row >= 0) & (row < self.ny)
        label = np.full(x.shape, _OUTSIDE, dtype=np.int32)
        label[in_grid] = self.grid[row[in_grid].astype(np.intp), col[in_grid].astype(np.intp)]
        status = np.where(label >= 0, STATUS_CODES["inside"], STATUS_CODES["outside"]).astype(
            np.int8
        )
        exact = np.flatnonzero(label == _NEEDS_TEST)
        if exact.size:
            beat, code = self._exact(x[exact], y[exact], reported, exact, prefer_reported, tie_rule)
            label[exact] = beat
            status[exact] = code
        return JoinResult(beat_index=label, status=status, n_exact=int(exact.size))

    def _exact(
        self,
        x: np.ndarray,
        y: np.ndarray,
        reported: np.ndarray | None,
        positions: np.ndarray,
        prefer_reported: bool,
        tie_rule: TieRule,
    ) -> tuple[np.ndarray, np.ndarray]:
        points = shapely.points(x, y)
        point_i, beat_i = self.tree.query(points, predicate="dwithin", distance=self.tolerance_m)
        n = len(points)
        counts = np.bincount(point_i, minlength=n)
        beat = np.full(n, _OUTSIDE, dtype=np.int32)
        status = np.full(n, STATUS_CODES["outside"], dtype=np.int8)
        # rank candidates: the reported beat first, then by the tie rule
        score = beat_i.astype(np.float64)
        if tie_rule == "nearest_centroid":
            score = shapely.distance(points[point_i], self.centroids[beat_i])
        if prefer_reported and reported is not None:
            rep = np.asarray(reported, dtype=object)[positions][point_i]
            is_reported = rep == self.beat_ids[beat_i]
            score = np.where(is_reported, -np.inf, score)
        order = np.lexsort((beat_i, score, point_i))
        first = order[np.r_[True, point_i[order][1:] != point_i[order][:-1]]]
        beat[point_i[first]] = beat_i[first]
        single = counts == 1
        inside_single = np.zeros(n, dtype=bool)
        if single.any():
            idx = np.flatnonzero(single)
            inside_single[idx] = shapely.contains_xy(
                self.geometries[beat[idx]], x[idx], y[idx]
            ) | shapely.intersects_xy(self.geometries[beat[idx]], x[idx], y[idx])
        status[counts >= 2] = STATUS_CODES["edge"]
        status[single & inside_single] = STATUS_CODES["inside"]
        status[single & ~inside_single] = STATUS_CODES["snapped"]
        # no candidate within the tolerance: in no beat (a point inside a beat is at distance 0)
        return beat, status

    def distance_to_jurisdiction(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return each point's distance in metres to the nearest beat (0 inside a beat)."""
        points = shapely.points(np.asarray(x, float), np.asarray(y, float))
        return shapely.distance(points, self._union)

    def beat_attributes(self, beats: gpd.GeoDataFrame, beat_index: np.ndarray) -> pd.DataFrame:
        """Return ``beat``, ``sector``, ``district`` for each beat index (``outside`` for -1)."""
        table = beats.set_index(schema.BEAT)[[schema.SECTOR, schema.DISTRICT]]
        ids = np.where(beat_index >= 0, self.beat_ids[np.maximum(beat_index, 0)], schema.OUTSIDE)
        out = pd.DataFrame({schema.BEAT: pd.array(ids, dtype="string")})
        joined = table.reindex(ids)
        out[schema.SECTOR] = joined[schema.SECTOR].to_numpy()
        out[schema.DISTRICT] = joined[schema.DISTRICT].to_numpy()
        outside = beat_index < 0
        out.loc[outside, [schema.SECTOR, schema.DISTRICT]] = schema.OUTSIDE
        return out.astype("string")


def assign_beats(
    incidents: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    *,
    index: BeatIndex | None = None,
    prefer_reported: bool = True,
    tie_rule: TieRule = "lowest_id",
) -> pd.DataFrame:
    """Return a copy of `incidents` with ``beat``, ``sector``, ``district`` and ``join_status``.

    Parameters
    ----------
    incidents
        Canonical incidents with ``x``/``y`` in the beats' CRS and, optionally,
        ``reported_beat``.
    beats
        Canonical beats (see :func:`geodata.boundaries.read_beats`).
    index
        A prebuilt :class:`BeatIndex` for `beats` (built if None).
    prefer_reported
        Let the reported beat decide points on a shared edge (see the module docstring).
    tie_rule
        Geometric rule for edge points otherwise.

    Returns
    -------
    DataFrame
    """
    index = index or BeatIndex(beats)
    reported = None
    if schema.REPORTED_BEAT in incidents:
        width = max((len(b) for b in index.beat_ids if b.isdigit()), default=0)
        reported = np.asarray(
            [schema.normalize_id(v, width) for v in incidents[schema.REPORTED_BEAT]], dtype=object
        )
    result = index.lookup(
        incidents[schema.X].to_numpy(),
        incidents[schema.Y].to_numpy(),
        reported=reported,
        prefer_reported=prefer_reported,
        tie_rule=tie_rule,
    )
    out = incidents.copy()
    attributes = index.beat_attributes(beats, result.beat_index)
    for column in (schema.BEAT, schema.SECTOR, schema.DISTRICT):
        out[column] = attributes[column].to_numpy()
    out[schema.JOIN_STATUS] = pd.array(
        np.asarray(schema.JOIN_STATUSES, dtype=object)[result.status], dtype="string"
    )
    if reported is not None:
        out[schema.REPORTED_BEAT] = pd.array(reported, dtype="string")
    return out


def join_agreement(incidents: pd.DataFrame) -> dict[str, object]:
    """Return how often the assigned beat equals the source's reported beat.

    Returns
    -------
    dict
        ``n`` (incidents with a reported beat), ``agreement`` (fraction or None),
        ``by_status`` (status -> [n, agreement]) and ``disagreements`` (count).
    """
    if schema.REPORTED_BEAT not in incidents or incidents[schema.REPORTED_BEAT].isna().all():
        return {"n": 0, "agreement": None, "by_status": {}, "disagreements": 0}
    has = incidents[schema.REPORTED_BEAT].notna()
    sub = incidents[has]
    same = (sub[schema.BEAT] == sub[schema.REPORTED_BEAT]).fillna(False).to_numpy(bool)
    by_status = {
        str(status): [int(mask.sum()), float(same[mask.to_numpy()].mean())]
        for status, mask in ((s, sub[schema.JOIN_STATUS] == s) for s in schema.JOIN_STATUSES)
        if mask.any()
    }
    return {
        "n": len(sub),
        "agreement": float(same.mean()) if len(sub) else None,
        "by_status": by_status,
        "disagreements": int((~same).sum()),
    }
