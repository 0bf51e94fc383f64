"""Hotspot estimators: density clusters (DBSCAN, HDBSCAN), kernel density, Getis-Ord Gi*, Knox.

Every estimator follows the scikit-learn conventions: ``__init__`` only stores its keyword
arguments, ``fit(X)`` validates them and returns ``self``, results end in ``_``. ``X`` is a frame of
incidents with projected coordinates in metres (``x``/``y`` columns of the store, or a point
GeoDataFrame in a projected CRS); optional columns (``occurred_at``, ``category``, ``offense``,
``beat``) feed the hotspot summaries.

Conventions (see docs/hotspots.md):

* Density clusters run on the *unique locations* with ``sample_weight`` = the number of incidents
  at each location. For DBSCAN this is exactly point-level DBSCAN (a location's neighbourhood weight
  is the number of incidents within ``eps_m``, duplicates included), and block-level geocoding makes
  unique locations few. When there are more than ``max_locations`` unique locations (data without
  duplicates), locations are snapped to a fine grid first (approximate; ``exact_`` says which).
* ``min_samples="auto"`` scales the density threshold with the data: a core point needs
  ``density_factor`` times the incidents a uniform spread over the study area would put in its
  ``eps_m`` disc, and at least ``min_samples_floor``.
* Hotspot polygons are concave hulls (``shapely.concave_hull``, ``hull_ratio``) or convex hulls of
  the cluster's locations, buffered by ``buffer_m`` so that clusters along one street have an area.
"""

from __future__ import annotations

import importlib
import inspect
import logging
import math
import numbers
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import TYPE_CHECKING, TypeAlias, TypeVar, dataclass_transform

import numpy as np
import pandas as pd
import shapely

from analysis.inputs import LEVEL_COLUMNS, Level, area_beats
from geodata import schema

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "DAY_NAMES",
    "DOMINANT_SHARE",
    "HOTSPOT_COLUMNS",
    "HOTSPOT_METHODS",
    "DBSCANHotspots",
    "GiStarHotspots",
    "Grid",
    "HDBSCANHotspots",
    "HotspotModel",
    "KDEHotspots",
    "TooManyIncidentsError",
    "area_incidents",
    "dominant_cluster_note",
    "estimator_parameters",
    "export_hotspots",
    "fit_hotspots",
    "grid_mask",
    "knox_table",
    "percentiles",
    "prepare_binning",
    "scaled_min_samples",
    "study_area_m2",
    "summarize_clusters",
    "unique_locations",
]

logger = logging.getLogger(__name__)


class BaseEstimator:
    """Parameters kept as scikit-learn's estimators keep them, without importing scikit-learn.

    ``get_params``, ``set_params`` and the constructor's keyword arguments follow scikit-learn's
    convention (so :func:`sklearn.base.clone` and grid searches work), while a command that only
    draws a KDE does not pay scikit-learn's import (about 1.4 s, it loads ``scipy.stats``).
    """

    @classmethod
    def _get_param_names(cls) -> list[str]:
        signature = inspect.signature(cls.__init__)
        return sorted(
            name
            for name, p in signature.parameters.items()
            if name != "self" and p.kind not in (p.VAR_POSITIONAL, p.VAR_KEYWORD)
        )

    def get_params(self, deep: bool = True) -> dict[str, object]:
        """Return the constructor's parameters and their values (`deep` as in scikit-learn)."""
        del deep  # no parameter is itself an estimator
        return {name: getattr(self, name) for name in self._get_param_names()}

    def set_params(self, **params: object) -> BaseEstimator:
        """Set constructor parameters; return self.

        Raises
        ------
        ValueError
            If a name is not a parameter of the estimator.
        """
        valid = set(self._get_param_names())
        for name, value in params.items():
            if name not in valid:
                msg = f"{name!r} is not a parameter of {type(self).__name__}: {sorted(valid)}"
                raise ValueError(msg)
            setattr(self, name, value)
        return self

    def __repr__(self) -> str:
        """Return ``Name(param=value, ...)`` with the parameters that differ from the defaults."""
        defaults = inspect.signature(type(self).__init__).parameters
        changed = [
            f"{name}={value!r}"
            for name, value in self.get_params().items()
            if not (value is defaults[name].default or value == defaults[name].default)
        ]
        return f"{type(self).__name__}({', '.join(changed)})"


_E = TypeVar("_E")


@dataclass_transform(kw_only_default=True, eq_default=False)
def estimator_parameters(cls: type[_E]) -> type[_E]:
    """Return `cls` with the ``__init__`` of its parameters, declared once as class fields.

    The fields become a keyword-only dataclass's: the ``__init__`` written from them only
    stores the parameters, as scikit-learn asks (so ``get_params``, ``set_params``, ``clone``
    and grid searches see them), while equality stays identity and the repr stays
    :class:`BaseEstimator`'s.
    """
    return dataclass(kw_only=True, eq=False, repr=False)(cls)


DAY_NAMES = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
#: The methods :func:`fit_hotspots` knows, the default first.
HOTSPOT_METHODS = ("dbscan", "hdbscan", "kde", "gistar")

#: Incident columns a hotspot run reads (shared by the CLI and the dashboard).
HOTSPOT_COLUMNS = (
    schema.X,
    schema.Y,
    schema.OCCURRED_AT,
    schema.CATEGORY,
    schema.OFFENSE,
    schema.BEAT,
    schema.SECTOR,
    schema.DISTRICT,
)


# --- validation -------------------------------------------------------------------------------
def _check_number(
    name: str,
    value: object,
    *,
    low: float,
    high: float = math.inf,
    unit: str = "",
    integer: bool = False,
    low_open: bool = True,
) -> None:
    kind = numbers.Integral if integer else numbers.Real
    bad = not isinstance(value, kind) or isinstance(value, bool)
    if not bad:
        number = float(value)  # type: ignore[arg-type]
        bad = (
            (not math.isfinite(number) and high != math.inf)
            or not (low < number if low_open else low <= number)
            or number > high
        )
    if bad:
        what = "an integer" if integer else "a number"
        bracket = "(" if low_open else "["
        msg = f"{name} must be {what} in {bracket}{low:g}, {high:g}]{unit}, got {value!r}"
        raise ValueError(msg)


def _check_choice(name: str, value: object, choices: tuple[str, ...]) -> None:
    if value not in choices:
        msg = f"{name} must be one of {list(choices)}, got {value!r}"
        raise ValueError(msg)


def _xy(X: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
    """Return the projected coordinates of `X` (x/y columns, else point geometry)."""
    if isinstance(X, pd.DataFrame) and schema.X in X.columns and schema.Y in X.columns:
        x = np.asarray(X[schema.X], dtype=np.float64)
        y = np.asarray(X[schema.Y], dtype=np.float64)
    else:
        import geopandas as gpd  # loaded where a layer is built: not at start-up

        if not isinstance(X, gpd.GeoDataFrame):
            msg = (
                f"X must be a DataFrame with '{schema.X}' and '{schema.Y}' columns (metres) "
                f"or a projected point GeoDataFrame, got {type(X).__name__}"
            )
            raise TypeError(msg)
        if X.crs is not None and not X.crs.is_projected:
            msg = f"X is in {X.crs.to_string()}, a geographic CRS: project it to metres first"
            raise ValueError(msg)
        x = np.asarray(X.geometry.x, dtype=np.float64)
        y = np.asarray(X.geometry.y, dtype=np.float64)
    # every value is finite when the extremes are (NaN propagates to them): no N-sized mask
    if len(x) and not np.isfinite([x.min(), x.max(), y.min(), y.max()]).all():
        bad = int(np.flatnonzero(~(np.isfinite(x) & np.isfinite(y)))[0])
        msg = f"X row {bad}: coordinates are missing or not finite; drop unlocated incidents"
        raise ValueError(msg)
    return x, y


# --- shared helpers ---------------------------------------------------------------------------
def unique_locations(
    x: np.ndarray, y: np.ndarray
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Return the distinct locations, their multiplicities and each point's location index.

    Exact: two points share a location only when both coordinates are bit-for-bit equal.

    Returns
    -------
    ux, uy
        Coordinates of the distinct locations.
    weight
        Number of points at each location.
    inverse
        For every input point, the index of its location.
    """
    x = np.asarray(x, np.float64)
    y = np.asarray(y, np.float64)
    # fast path: hash x only, then check that every x value has a single y (true of block
    # geocodes, where distinct x values almost always mean distinct locations)
    inverse, ux = pd.factorize(x)
    uy = np.empty(len(ux))
    uy[inverse] = y
    step = 1 << 20  # compare in chunks: no second N-sized temporary
    same = all(
        np.array_equal(uy[inverse[i : i + step]], y[i : i + step]) for i in range(0, len(y), step)
    )
    if not same:  # exact pairs: one hash pass over x + iy
        pairs = np.empty(len(x), np.complex128)
        pairs.real = x
        pairs.imag = y
        inverse, levels = pd.factorize(pairs)
        ux = np.ascontiguousarray(levels.real)
        uy = np.ascontiguousarray(levels.imag)
    ux = np.asarray(ux, np.float64)
    weight = np.bincount(inverse, minlength=len(ux))
    return ux, uy, weight, inverse


def _mostly_distinct(x: np.ndarray, y: np.ndarray, max_locations: int) -> bool:
    """Return True when most points have a location of their own (exact geocodes).

    Judged on an evenly spaced sample of 100,000 points, so that a point-level pass over
    millions of distinct locations is not paid only to find that there are too many.
    """
    if len(x) <= max_locations:
        return False
    pick = np.linspace(0, len(x) - 1, 100_000).astype(np.int64)
    return len(unique_locations(x[pick], y[pick])[0]) > 50_000


def study_area_m2(x: np.ndarray, y: np.ndarray) -> float:
    """Return the area of the convex hull of the points (m²), at least 1 m²."""
    if len(x) < 3:
        return 1.0
    ux, uy, _, _ = unique_locations(x, y)
    hull = shapely.convex_hull(shapely.multipoints(np.column_stack([ux, uy])))
    return max(float(hull.area), 1.0)


def scaled_min_samples(
    n_incidents: int,
    area_m2: float,
    eps_m: float,
    *,
    density_factor: float = 5.0,
    floor: int = 5,
) -> int:
    """Return the DBSCAN core threshold that scales with the number of incidents.

    A uniform spread of `n_incidents` over `area_m2` puts ``n * pi * eps² / A`` incidents in a
    disc of radius `eps_m`; a core point needs `density_factor` times that, and at least `floor`.
    A window twice as long (twice the incidents) doubles the threshold, so a cluster means "this
    many times denser than average" whatever the window.

    Parameters
    ----------
    n_incidents
        Number of incidents clustered.
    area_m2
        Study area (m²): the jurisdiction, or the convex hull of the incidents.
    eps_m
        DBSCAN neighbourhood radius (m).
    density_factor
        How many times the mean density a core neighbourhood must hold.
    floor
        Smallest threshold returned.

    Examples
    --------
    >>> scaled_min_samples(1_000_000, 600e6, 150.0)
    590
    """
    expected = n_incidents * math.pi * eps_m**2 / max(area_m2, 1.0)
    return max(int(floor), math.ceil(density_factor * expected))


def _hull(
    ux: np.ndarray, uy: np.ndarray, *, kind: str, ratio: float, buffer_m: float
) -> shapely.Geometry:
    points = shapely.multipoints(np.column_stack([ux, uy]))
    hull = shapely.concave_hull(points, ratio=ratio) if kind == "concave" else points.convex_hull
    return shapely.buffer(hull, buffer_m, quad_segs=4) if buffer_m > 0 else hull


def _top_values(
    codes: np.ndarray, labels: np.ndarray, levels: np.ndarray, n_clusters: int, k: int
) -> list[str]:
    """Return, per cluster, the `k` most frequent values with counts ("THEFT (12); ...")."""
    out = ["" for _ in range(n_clusters)]
    ok = (labels >= 0) & (codes >= 0)
    if not ok.any() or len(levels) == 0:
        return out
    table = np.bincount(
        labels[ok].astype(np.int64) * len(levels) + codes[ok], minlength=n_clusters * len(levels)
    ).reshape(n_clusters, len(levels))
    order = np.argsort(-table, axis=1, kind="stable")[:, :k]
    for c in range(n_clusters):
        parts = [f"{levels[j]} ({table[c, j]})" for j in order[c] if table[c, j] > 0]
        out[c] = "; ".join(parts)
    return out


def _codes(values: pd.Series) -> tuple[np.ndarray, np.ndarray]:
    """Return integer codes (-1 = missing) and levels; categoricals keep their own codes."""
    if isinstance(values.dtype, pd.CategoricalDtype):
        return np.asarray(values.cat.codes, dtype=np.int64), np.asarray(values.cat.categories)
    codes, levels = pd.factorize(values)
    return codes, np.asarray(levels)


#: Share of the incidents above which one cluster is reported as covering most of the area.
DOMINANT_SHARE = 0.5


def dominant_cluster_note(hotspots: pd.DataFrame, n_incidents: int) -> str | None:
    """Return a warning when one cluster holds most incidents (None: the clusters are apart).

    In an area denser than the density threshold assumes (a downtown sector read with the
    department's threshold), DBSCAN joins nearly every incident into one cluster that covers
    much of the area: no place to send a patrol. `hotspots` are :func:`summarize_clusters`'
    (``n_incidents`` per hotspot); `n_incidents` all the incidents clustered.
    """
    if n_incidents <= 0 or "n_incidents" not in hotspots or hotspots.empty:
        return None
    share = float(hotspots["n_incidents"].max()) / n_incidents
    if share <= DOMINANT_SHARE:
        return None
    return (
        f"one hotspot holds {share:.0%} of the incidents: the area is denser than the "
        "clustering threshold assumes, so most of it is one cluster. A larger minimum "
        "cluster size, a smaller radius, or HDBSCAN or KDE separate its hot places"
    )


def summarize_clusters(
    X: pd.DataFrame,
    labels: np.ndarray,
    *,
    hull: str = "concave",
    hull_ratio: float = 0.3,
    buffer_m: float = 25.0,
    crs: object = None,
    top: int = 3,
    locations: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None,
) -> gpd.GeoDataFrame:
    """Return one polygon per cluster label (>= 0) with its counts and time profile.

    Parameters
    ----------
    X
        The clustered incidents (``x``/``y`` metres; optional ``occurred_at``, ``category``,
        ``offense``, ``beat``).
    labels
        Cluster of each incident, -1 for noise.
    hull
        ``"concave"`` (shapely concave hull with `hull_ratio`) or ``"convex"``.
    hull_ratio
        Concave hull ratio: 0 hugs the points, 1 is the convex hull.
    buffer_m
        Buffer added around each hull (m).
    crs
        CRS of the result (the analysis CRS).
    top
        How many dominant categories/offenses to list.
    locations
        ``(ux, uy, location_labels)``: the distinct locations and their cluster, when known
        (`labels` must then be ``location_labels[inverse]``).

    Returns
    -------
    GeoDataFrame
        ``hotspot, n_incidents, area_km2, density_per_km2, top_categories, top_offenses,
        peak_hour, peak_day, first_incident, last_incident, beats, geometry``, ordered by
        incident count (hotspot 1 = the largest).
    """
    import geopandas as gpd  # loaded where a layer is built: not at start-up

    labels = np.asarray(labels)
    columns = [
        "hotspot",
        "n_incidents",
        "area_km2",
        "density_per_km2",
        "top_categories",
        "top_offenses",
        "peak_hour",
        "peak_day",
        "first_incident",
        "last_incident",
        "beats",
    ]
    n_clusters = int(labels.max()) + 1 if len(labels) and labels.max() >= 0 else 0
    if n_clusters == 0:
        return gpd.GeoDataFrame(
            {c: pd.Series(dtype=object) for c in columns}, geometry=gpd.GeoSeries(crs=crs)
        )
    counts = np.bincount(labels[labels >= 0], minlength=n_clusters)
    # hulls from the distinct locations of each cluster
    if locations is None:
        ux, uy, _, inverse = unique_locations(*_xy(X))
        loc_label = np.full(len(ux), -1, dtype=np.int64)
        loc_label[inverse[labels >= 0]] = labels[labels >= 0]
    else:
        ux, uy, loc_label = locations
        loc_label = np.asarray(loc_label, dtype=np.int64)
    order = np.argsort(loc_label, kind="stable")
    bounds = np.searchsorted(loc_label[order], np.arange(n_clusters + 1))
    geoms = []
    for c in range(n_clusters):
        idx = order[bounds[c] : bounds[c + 1]]
        geoms.append(_hull(ux[idx], uy[idx], kind=hull, ratio=hull_ratio, buffer_m=buffer_m))
    area_km2 = np.array([g.area for g in geoms]) / 1e6
    out = pd.DataFrame(
        {
            "hotspot": np.arange(n_clusters),
            "n_incidents": counts,
            "area_km2": area_km2,
            "density_per_km2": counts / np.maximum(area_km2, 1e-9),
        }
    )
    member = np.flatnonzero(labels >= 0)  # attributes of clustered incidents only
    wanted = [
        c for c in (schema.CATEGORY, schema.OFFENSE, schema.OCCURRED_AT, schema.BEAT) if c in X
    ]
    X = pd.DataFrame({c: X[c].iloc[member] for c in wanted})  # clustered rows only, no full copy
    labels = labels[member]
    for column, name in ((schema.CATEGORY, "top_categories"), (schema.OFFENSE, "top_offenses")):
        if column in X.columns:
            codes, levels = _codes(X[column])
            out[name] = _top_values(codes, labels, levels, n_clusters, top)
        else:
            out[name] = ""
    if schema.OCCURRED_AT in X.columns:
        when = pd.DatetimeIndex(X[schema.OCCURRED_AT])
        # hour and weekday from the local wall-clock nanoseconds, converted once (pandas'
        # .hour and .dayofweek each convert the zone again: 0.4 s of a 10M-point fit)
        wall = (when.tz_localize(None) if when.tz else when).to_numpy()
        local = wall.astype("datetime64[h]").view(np.int64)  # hours since 1970, any unit
        del wall
        hour = local % 24
        local //= 24
        local += 3
        day = np.remainder(local, 7, out=local)  # 1 January 1970 was a Thursday (Monday = 0)
        inside = labels >= 0
        by_hour = np.bincount(labels[inside] * 24 + hour[inside], minlength=n_clusters * 24)
        by_day = np.bincount(labels[inside] * 7 + day[inside], minlength=n_clusters * 7)
        out["peak_hour"] = by_hour.reshape(n_clusters, 24).argmax(axis=1)
        out["peak_day"] = [DAY_NAMES[d] for d in by_day.reshape(n_clusters, 7).argmax(axis=1)]
        ns = when.as_unit("ns").asi8  # nanoseconds whatever the column's unit
        first = np.full(n_clusters, np.iinfo(np.int64).max)
        last = np.full(n_clusters, np.iinfo(np.int64).min)
        np.minimum.at(first, labels[inside], ns[inside])
        np.maximum.at(last, labels[inside], ns[inside])
        tz = when.tz
        out["first_incident"] = (
            pd.to_datetime(first, utc=True).tz_convert(tz) if tz else (pd.to_datetime(first))
        )
        out["last_incident"] = (
            pd.to_datetime(last, utc=True).tz_convert(tz) if tz else (pd.to_datetime(last))
        )
    else:
        out["peak_hour"] = -1
        out["peak_day"] = ""
        out["first_incident"] = pd.NaT
        out["last_incident"] = pd.NaT
    if schema.BEAT in X.columns:
        codes, levels = _codes(X[schema.BEAT])
        inside = (labels >= 0) & (codes >= 0)
        pair_of = labels[inside].astype(np.int64) * len(levels) + codes[inside]
        if n_clusters * len(levels) <= 10_000_000:  # a count per pair beats a sort of rows
            pairs = np.flatnonzero(np.bincount(pair_of, minlength=n_clusters * len(levels)))
        else:
            pairs = np.unique(pair_of)
        beats: list[list[str]] = [[] for _ in range(n_clusters)]
        for pair in pairs:
            beats[pair // len(levels)].append(str(levels[pair % len(levels)]))
        out["beats"] = [", ".join(sorted(b)) for b in beats]
    else:
        out["beats"] = ""
    frame = gpd.GeoDataFrame(out, geometry=geoms, crs=crs)
    # number hotspots by size (1 = most incidents), deterministic on ties
    frame = frame.sort_values(["n_incidents", "hotspot"], ascending=[False, True])
    frame["cluster_label"] = frame["hotspot"]
    frame["hotspot"] = np.arange(1, n_clusters + 1)
    return frame.reset_index(drop=True)


# --- density clusters -------------------------------------------------------------------------
class _ClusterBase(BaseEstimator):
    """Shared fit logic of the density-cluster estimators (not public)."""

    hull: str
    hull_ratio: float
    buffer_m: float
    _ux: np.ndarray | None
    _uy: np.ndarray | None
    _weight: np.ndarray | None
    _inverse: np.ndarray

    def _validate_common(self) -> None:
        _check_choice("hull", self.hull, ("concave", "convex"))
        _check_number("hull_ratio", self.hull_ratio, low=0.0, high=1.0, low_open=False)
        _check_number("buffer_m", self.buffer_m, low=0.0, unit=" m", low_open=False)

    def _finish(self, X: pd.DataFrame, location_labels: np.ndarray, crs: object) -> None:
        # number clusters by size (0 = the most incidents, ties by label) at the location level,
        # then broadcast to the incidents once
        loc = np.asarray(location_labels, dtype=np.int64)
        n_clusters = int(loc.max()) + 1 if len(loc) and loc.max() >= 0 else 0
        if n_clusters:
            inside = loc >= 0
            weight = self._weight[inside] if self._weight is not None else None
            sizes = np.bincount(loc[inside], weights=weight, minlength=n_clusters)
            order = np.lexsort((np.arange(n_clusters), -sizes))
            remap = np.empty(n_clusters, dtype=np.int64)
            remap[order] = np.arange(n_clusters)
            loc = np.where(inside, remap[np.maximum(loc, 0)], -1)
        self.labels_ = loc[self._inverse]
        self.hotspots_ = summarize_clusters(
            X,
            self.labels_,
            hull=self.hull,
            hull_ratio=self.hull_ratio,
            buffer_m=self.buffer_m,
            crs=crs,
            locations=(self._ux, self._uy, loc)
            if self._ux is not None and self._uy is not None
            else None,
        ).drop(columns="cluster_label", errors="ignore")
        self.n_hotspots_ = len(self.hotspots_)
        self.n_noise_ = int(len(self.labels_) - np.count_nonzero(self.labels_ >= 0))
        del self._ux, self._uy, self._weight, self._inverse


@estimator_parameters
class DBSCANHotspots(_ClusterBase):
    """DBSCAN hotspots in projected metres, exact on duplicated (block-geocoded) locations.

    Parameters
    ----------
    eps_m
        Neighbourhood radius (m).
    min_samples
        Incidents (the point itself included) within `eps_m` that make a core point, or
        ``"auto"`` for :func:`scaled_min_samples` (grows with the number of incidents).
    density_factor, min_samples_floor
        The ``"auto"`` rule's multiple of the mean density, and its smallest value.
    area_m2
        Study area for the ``"auto"`` rule (m²); None uses the convex hull of the incidents.
    hull, hull_ratio, buffer_m
        Hotspot polygon: concave or convex hull of the cluster's locations, buffered.
    max_locations
        Above this many distinct locations (exact geocodes rather than blocks), cluster on a
        grid of `snap_m` cells instead (:func:`analysis._griddbscan.grid_dbscan`, approximate).
    snap_m
        Grid cell (m) of the approximate path; None is `eps_m` / 15 (adjusted Rand index
        above 0.95 against point-level DBSCAN, ``docs/benchmarks.md``).

    Attributes
    ----------
    labels_
        Hotspot of each incident (0 = hotspot 1, the largest), -1 for noise.
    hotspots_
        GeoDataFrame of hotspot polygons (see :func:`summarize_clusters`).
    n_hotspots_, n_noise_
        Number of hotspots and of noise incidents.
    min_samples_
        The core threshold used.
    exact_
        True when the clustering equals point-level DBSCAN (no grid was needed).
    snap_m_
        The grid cell of the approximate path (0 when exact).
    n_locations_
        Distinct locations (or occupied grid cells) clustered.
    """

    eps_m: float = 150.0
    min_samples: int | str = "auto"
    density_factor: float = 5.0
    min_samples_floor: int = 5
    area_m2: float | None = None
    hull: str = "concave"
    hull_ratio: float = 0.3
    buffer_m: float = 25.0
    max_locations: int = 300_000
    snap_m: float | None = None

    def _resolve_min_samples(self, x: np.ndarray, y: np.ndarray) -> int:
        if self.min_samples == "auto":
            area = self.area_m2 if self.area_m2 is not None else study_area_m2(x, y)
            threshold = scaled_min_samples(
                len(x),
                area,
                self.eps_m,
                density_factor=self.density_factor,
                floor=self.min_samples_floor,
            )
            if threshold > len(x):
                logger.warning(
                    "min_samples %d exceeds the %d incidents: the area (%.2f km²) is too small "
                    "for eps %.0f m to find a cluster; measure it against a larger area "
                    "(fit_hotspots with reference=) or give min_samples",
                    threshold,
                    len(x),
                    area / 1e6,
                    self.eps_m,
                )
            return threshold
        return int(self.min_samples)

    def _validate(self) -> None:
        _check_number("eps_m", self.eps_m, low=0.0, unit=" m")
        if self.min_samples != "auto":
            _check_number("min_samples", self.min_samples, low=1, integer=True, low_open=False)
        _check_number("density_factor", self.density_factor, low=0.0)
        _check_number(
            "min_samples_floor", self.min_samples_floor, low=1, integer=True, low_open=False
        )
        if self.area_m2 is not None:
            _check_number("area_m2", self.area_m2, low=0.0, unit=" m²")
        if self.snap_m is not None:
            _check_number("snap_m", self.snap_m, low=0.0, high=self.eps_m, unit=" m")
        _check_number("max_locations", self.max_locations, low=1, integer=True, low_open=False)
        self._validate_common()

    def fit(self, X: pd.DataFrame, y: None = None) -> DBSCANHotspots:
        """Cluster the incidents of `X`; return self.

        Raises
        ------
        ValueError
            If a parameter is out of range (the message names it) or coordinates are missing.
        """
        del y
        self._validate()
        x, yy = _xy(X)
        self.min_samples_ = self._resolve_min_samples(x, yy)
        located = None if _mostly_distinct(x, yy, self.max_locations) else unique_locations(x, yy)
        if located is not None and len(located[0]) <= self.max_locations:
            self.exact_, self.snap_m_ = True, 0.0
            self._ux, self._uy, self._weight, self._inverse = located
            from sklearn.cluster import DBSCAN  # imported here: ~1 s of start-up

            model = DBSCAN(eps=self.eps_m, min_samples=self.min_samples_, algorithm="kd_tree")
            loc_labels = (
                model.fit(np.column_stack([self._ux, self._uy]), sample_weight=self._weight).labels_
                if len(self._ux)
                else np.empty(0, dtype=np.int64)
            )
        else:  # exact geocodes: too many distinct locations for a neighbour search
            self.exact_ = False
            self.snap_m_ = float(self.snap_m) if self.snap_m is not None else self.eps_m / 15
            from analysis._griddbscan import grid_dbscan

            grid = grid_dbscan(
                x, yy, eps_m=self.eps_m, min_samples=self.min_samples_, cell_m=self.snap_m_
            )
            self._ux, self._uy, self._weight = grid.ux, grid.uy, grid.weight
            self._inverse, loc_labels = grid.inverse, grid.labels
        self.n_locations_ = len(self._ux)
        self._finish(X, loc_labels, getattr(X, "crs", None))
        return self


class TooManyIncidentsError(ValueError):
    """A hotspot method was asked to run on more incidents than it can take in good time."""


@estimator_parameters
class HDBSCANHotspots(_ClusterBase):
    """HDBSCAN hotspots with ``fast_hdbscan`` (Boruvka MST, numba) on the incidents.

    Parameters
    ----------
    min_cluster_size
        Smallest hotspot (incidents), or ``"auto"``: 0.25% of the incidents, at least 15.
    min_samples
        Core-distance neighbours (incidents); None = half of `min_cluster_size`.
    max_area_share
        Largest share of the study area one hotspot polygon may cover (default 5%), or None
        for no cap. A cluster HDBSCAN selects above it is replaced by its own sub-clusters in
        the condensed tree (the denser parts it splits into), recursively; a cluster with no
        sub-cluster is dropped (its incidents become noise). See docs/hotspots.md.
    area_m2
        Study area (m²) of the cap; None uses the convex hull of the incidents.
    hull, hull_ratio, buffer_m
        As in :class:`DBSCANHotspots`.
    max_incidents
        The most incidents HDBSCAN is run on (None: no limit); more raise
        :class:`TooManyIncidentsError`. Its time and memory grow faster than the incidents: measured
        on exact geocodes (docs/bench/methods.md), 100,000 in 8 s and 0.9 GB, 1,000,000 in
        4 minutes and 10 GB, 10,000,000 out of memory; DBSCAN, KDE and Gi* took 10,000,000
        in 0.2-1.4 s and under 1 GB.

    Attributes
    ----------
    labels_, hotspots_, n_hotspots_, n_noise_
        As in :class:`DBSCANHotspots`.
    exact_
        Always False: fast_hdbscan, not scikit-learn's HDBSCAN (see docs/hotspots.md).
    min_cluster_size_
        The size used.
    max_area_km2_
        The largest hotspot area allowed (km²; inf without a cap).
    n_split_, n_dropped_
        Clusters over the cap that were replaced by their sub-clusters, and clusters over the
        cap without sub-clusters that were dropped.
    """

    min_cluster_size: int | str = "auto"
    min_samples: int | None = None
    max_area_share: float | None = 0.05
    area_m2: float | None = None
    hull: str = "concave"
    hull_ratio: float = 0.3
    buffer_m: float = 25.0
    max_incidents: int | None = 200_000

    def fit(self, X: pd.DataFrame, y: None = None) -> HDBSCANHotspots:
        """Cluster the incidents of `X`; return self.

        Raises
        ------
        TooManyIncidentsError
            If `X` holds more than `max_incidents`.
        """
        del y
        if self.min_cluster_size != "auto":
            _check_number(
                "min_cluster_size", self.min_cluster_size, low=2, integer=True, low_open=False
            )
        if self.min_samples is not None:
            _check_number("min_samples", self.min_samples, low=1, integer=True, low_open=False)
        if self.max_area_share is not None:
            _check_number("max_area_share", self.max_area_share, low=0.0, high=1.0)
        if self.area_m2 is not None:
            _check_number("area_m2", self.area_m2, low=0.0, unit=" m²")
        if self.max_incidents is not None:
            _check_number("max_incidents", self.max_incidents, low=1, integer=True, low_open=False)
        self._validate_common()
        x, yy = _xy(X)
        if self.max_incidents is not None and len(x) > self.max_incidents:
            msg = (
                f"HDBSCAN is limited to {self.max_incidents:,} incidents and this area and "
                f"period hold {len(x):,}: on that many it would take minutes and gigabytes of "
                "memory. Choose DBSCAN, KDE or Gi*, a smaller area or a shorter period"
            )
            raise TooManyIncidentsError(msg)
        self.n_split_ = self.n_dropped_ = 0
        self.max_area_km2_ = math.inf
        if self.max_area_share is not None:
            area = self.area_m2 if self.area_m2 is not None else study_area_m2(x, yy)
            self.max_area_km2_ = float(self.max_area_share) * area / 1e6
        size = (
            max(15, math.ceil(0.0025 * len(x)))
            if self.min_cluster_size == "auto"
            else int(self.min_cluster_size)
        )
        self.min_cluster_size_ = size
        # fast_hdbscan on the points themselves: its sample_weights on distinct locations do not
        # reproduce point-level HDBSCAN (ARI 0.02 on the dense month), unlike DBSCAN's
        self.exact_ = False  # fast_hdbscan, not sklearn's HDBSCAN (ARI measured in the docs)
        self.snap_m_ = 0.0
        self.n_locations_ = len(x)
        self._inverse = np.arange(len(x))
        self._ux = self._uy = self._weight = None
        if len(x) >= size and len(x) > 1:
            import numba
            from fast_hdbscan import fast_hdbscan  # numba compile on first use

            data = np.column_stack([x - x.mean(), yy - yy.mean()])
            # One numba thread: the parallel Boruvka breaks ties between equal distances in
            # whichever order its threads finish, and block-snapped incidents are full of such
            # ties, so two runs on the same incidents drew different hotspots (6 different
            # labellings in 6 runs on the bundled dense month; fast_hdbscan's own
            # `reproducible=True` still differed). The setting is per thread, so concurrent
            # pages keep theirs. See docs/hotspots.md.
            threads = numba.get_num_threads()
            numba.set_num_threads(1)
            try:
                loc_labels, _, _, tree, *_ = fast_hdbscan(
                    data,
                    min_samples=self.min_samples or max(1, size // 2),
                    min_cluster_size=size,
                    return_trees=True,
                )
            finally:
                numba.set_num_threads(threads)
            if math.isfinite(self.max_area_km2_):
                loc_labels = self._cap(x, yy, np.asarray(loc_labels, dtype=np.int64), tree)
        else:
            loc_labels = np.full(len(x), -1, dtype=np.int64)
        self._finish(X, loc_labels, getattr(X, "crs", None))
        return self

    def _area_km2(self, x: np.ndarray, y: np.ndarray) -> float:
        """Return the area of the hotspot polygon that `summarize_clusters` would draw."""
        ux, uy, _, _ = unique_locations(x, y)
        hull = _hull(ux, uy, kind=self.hull, ratio=self.hull_ratio, buffer_m=self.buffer_m)
        return float(hull.area) / 1e6

    def _cap(self, x: np.ndarray, y: np.ndarray, labels: np.ndarray, tree: object) -> np.ndarray:
        """Return `labels` with every cluster over the area cap replaced by its sub-clusters."""
        condensed = _CondensedTree(tree, len(x))
        out = np.full(len(x), -1, dtype=np.int64)
        next_label = 0
        for label in range(int(labels.max()) + 1 if len(labels) else 0):
            members = labels == label
            if not members.any():
                continue
            pending = [(condensed.node_of(members), members)]
            split = False
            while pending:
                node, inside = pending.pop()
                if self._area_km2(x[inside], y[inside]) <= self.max_area_km2_:
                    out[inside] = next_label
                    next_label += 1
                    continue
                children = condensed.children(node) if node >= 0 else []
                if not children:
                    self.n_dropped_ += 1
                    continue
                split = True
                pending.extend((child, condensed.members(child)) for child in children)
            self.n_split_ += int(split)
        return out


class _CondensedTree:
    """The clusters of an HDBSCAN condensed tree (``parent, child, child_size`` rows)."""

    def __init__(self, tree: object, n_points: int) -> None:
        parent = np.asarray(tree.parent, dtype=np.int64)  # type: ignore[attr-defined]
        child = np.asarray(tree.child, dtype=np.int64)  # type: ignore[attr-defined]
        size = np.asarray(tree.child_size, dtype=np.int64)  # type: ignore[attr-defined]
        is_point = child < n_points
        top = int(max(parent.max(initial=n_points), child.max(initial=n_points))) + 1
        self.point_parent = np.full(n_points, -1, dtype=np.int64)
        self.point_parent[child[is_point]] = parent[is_point]
        self.up = np.full(top, -1, dtype=np.int64)
        self.up[child[~is_point]] = parent[~is_point]
        self.size = np.zeros(top, dtype=np.int64)
        self.size[n_points] = n_points  # the root
        self.size[child[~is_point]] = size[~is_point]
        self._children: dict[int, list[int]] = {}
        for p, c in zip(parent[~is_point], child[~is_point], strict=True):
            self._children.setdefault(int(p), []).append(int(c))

    def children(self, node: int) -> list[int]:
        """Return the sub-clusters `node` splits into (empty for a leaf)."""
        return self._children.get(node, [])

    def members(self, node: int) -> np.ndarray:
        """Return a boolean mask of the points under `node`."""
        current = self.point_parent.copy()
        inside = current == node
        while (current >= 0).any():
            current = np.where(current >= 0, self.up[np.maximum(current, 0)], -1)
            inside |= current == node
        return inside

    def node_of(self, members: np.ndarray) -> int:
        """Return the cluster whose points are exactly `members` (-1 if none is)."""
        count = int(np.count_nonzero(members))
        node = int(self.point_parent[np.flatnonzero(members)[0]])
        while node >= 0 and self.size[node] < count:
            node = int(self.up[node])
        if node >= 0 and self.size[node] == count and np.array_equal(self.members(node), members):
            return node
        return -1


# --- grids: KDE and Gi* -----------------------------------------------------------------------
@dataclass(frozen=True)
class Grid:
    """A regular grid in the analysis CRS: lower-left corner, cell size, shape (rows, cols)."""

    x0: float
    y0: float
    cell_size_m: float
    n_rows: int
    n_cols: int

    @classmethod
    def around(cls, x: np.ndarray, y: np.ndarray, cell_size_m: float, pad_m: float = 0.0) -> Grid:
        """Return the grid aligned on multiples of the cell size that covers the points + pad."""
        x0 = math.floor((float(np.min(x)) - pad_m) / cell_size_m) * cell_size_m
        y0 = math.floor((float(np.min(y)) - pad_m) / cell_size_m) * cell_size_m
        n_cols = math.floor((float(np.max(x)) + pad_m - x0) / cell_size_m) + 1
        n_rows = math.floor((float(np.max(y)) + pad_m - y0) / cell_size_m) + 1
        return cls(x0, y0, cell_size_m, n_rows, n_cols)

    def cell_of(self, x: np.ndarray, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return (row, col) of each point; -1 outside the grid."""
        col = np.floor((np.asarray(x) - self.x0) / self.cell_size_m).astype(np.int64)
        row = np.floor((np.asarray(y) - self.y0) / self.cell_size_m).astype(np.int64)
        out = (col < 0) | (col >= self.n_cols) | (row < 0) | (row >= self.n_rows)
        col[out] = -1
        row[out] = -1
        return row, col

    def counts(self, x: np.ndarray, y: np.ndarray) -> np.ndarray:
        """Return the (rows, cols) array of points per cell (points outside are dropped)."""
        row, col = self.cell_of(x, y)
        ok = row >= 0
        flat = np.bincount(row[ok] * self.n_cols + col[ok], minlength=self.n_rows * self.n_cols)
        return flat.reshape(self.n_rows, self.n_cols).astype(np.float64)

    def linear_counts(
        self, x: np.ndarray, y: np.ndarray, weights: np.ndarray | None = None
    ) -> np.ndarray:
        """Return points per cell with linear binning (shared among the 4 nearest centres).

        Each point's weight goes to the four nearest cell centres in proportion to its
        closeness (bilinear shares), which makes the binned KDE second-order accurate. Shares
        that fall outside the grid are dropped. One compiled pass over the points
        (``analysis._binning``, numba): no sort, no hashing, no N-sized temporaries.
        """
        from analysis._binning import linear_binning

        x = np.ascontiguousarray(x, dtype=np.float64)
        y = np.ascontiguousarray(y, dtype=np.float64)
        if weights is None:
            w = np.empty(0)
        else:
            w = np.ascontiguousarray(weights, dtype=np.float64)
            if w.shape != x.shape:
                msg = f"weights has shape {w.shape}, the points {x.shape}"
                raise ValueError(msg)
        args = (float(self.x0), float(self.y0), float(self.cell_size_m))
        out = np.zeros((self.n_rows, self.n_cols))
        if len(x) < _THREADED_BINNING_MIN:
            linear_binning(x, y, w, *args, out)
            return out
        # the compiled kernel releases the GIL: two halves on two threads, each its own grid
        # (the sums of the two grids are the one-pass sums up to the order of additions)
        half = len(x) // 2
        other = np.zeros_like(out)
        parts = [(slice(0, half), out), (slice(half, None), other)]
        with ThreadPoolExecutor(2) as pool:
            list(
                pool.map(
                    lambda part: linear_binning(
                        x[part[0]], y[part[0]], w[part[0]] if len(w) else w, *args, part[1]
                    ),
                    parts,
                )
            )
        out += other
        return out

    def centres(self) -> tuple[np.ndarray, np.ndarray]:
        """Return the x and y of every cell centre, as (rows, cols) arrays."""
        xs = self.x0 + (np.arange(self.n_cols) + 0.5) * self.cell_size_m
        ys = self.y0 + (np.arange(self.n_rows) + 0.5) * self.cell_size_m
        return np.meshgrid(xs, ys)

    def cells(self, mask: np.ndarray | None = None, crs: object = None) -> gpd.GeoDataFrame:
        """Return cells (all, or where `mask`) as square polygons with ``row``/``col``."""
        import geopandas as gpd  # loaded where a layer is built: not at start-up

        rows, cols = np.nonzero(np.ones((self.n_rows, self.n_cols), bool) if mask is None else mask)
        x = self.x0 + cols * self.cell_size_m
        y = self.y0 + rows * self.cell_size_m
        geoms = shapely.box(x, y, x + self.cell_size_m, y + self.cell_size_m)
        return gpd.GeoDataFrame({"row": rows, "col": cols}, geometry=geoms, crs=crs)


#: Points from which :meth:`Grid.linear_counts` bins on two threads.
_THREADED_BINNING_MIN = 1_000_000
#: Values from which :func:`percentiles` counts in bins instead of partitioning a copy.
_BINNED_PERCENTILE_MIN = 100_000
_PERCENTILE_BINS = 1 << 16
_PERCENTILE_CHUNK = 1 << 20  # fewer, larger NumPy calls: less waiting for the GIL


def prepare_binning() -> None:
    """Load the compiled linear-binning kernel, then the FFT, labelling and polygon modules.

    A fresh process pays about half a second to import numba and load the cached kernel, and
    as much for SciPy, rasterio and GeoPandas; a caller that is about to read many points calls
    this on one other thread first, so that the loading overlaps the reading (``analysis
    hotspots --method kde`` does). One thread loads them all, one after the other: two threads
    loading modules at once only wait for each other (the GIL).
    """
    from analysis._binning import linear_binning

    out = np.zeros((2, 2))
    linear_binning(np.zeros(1), np.zeros(1), np.empty(0), -1.0, -1.0, 1.0, out)
    # then what the smoothing and the polygons import, in the order they are used
    for name in ("scipy.fft", "scipy.ndimage", "rasterio.features", "geopandas"):
        importlib.import_module(name)


class _Histogram:
    """Values counted in :data:`_PERCENTILE_BINS` equal bins between their minimum and maximum.

    Chunk by chunk (no temporary the size of the values). The bin of a value is monotone in the
    value, so the k-th smallest value lies in the bin where the cumulative count passes k.
    `extent` is the values' (minimum, maximum) when the caller has it.
    """

    def __init__(self, values: np.ndarray, extent: np.ndarray | None = None) -> None:
        self.values = values
        lo, hi = (values.min(), values.max()) if extent is None else extent
        self.lo, self.hi = float(lo), float(hi)
        self.scale = _PERCENTILE_BINS / (self.hi - self.lo) if self.hi > self.lo else 0.0
        self._scaled = np.empty(_PERCENTILE_CHUNK)
        self._bins = np.empty(_PERCENTILE_CHUNK, dtype=np.intp)
        if self.scale:
            self.counts = np.zeros(_PERCENTILE_BINS, dtype=np.intp)
            for first in range(0, values.size, _PERCENTILE_CHUNK):
                part = values[first : first + _PERCENTILE_CHUNK]
                self.counts += np.bincount(self.bin_of(part), minlength=_PERCENTILE_BINS)
            self.ends = np.cumsum(self.counts)  # ends[b]: values in bins 0..b

    def bin_of(self, part: np.ndarray) -> np.ndarray:
        """Return the bin of each value of `part` (at most :data:`_PERCENTILE_CHUNK` values)."""
        m = len(part)
        scaled, bins = self._scaled[:m], self._bins[:m]
        np.subtract(part, self.lo, out=scaled)
        scaled *= self.scale
        bins[:] = scaled  # truncation: the values are >= lo
        np.minimum(bins, _PERCENTILE_BINS - 1, out=bins)
        return bins

    def ranks(self, q: Sequence[float]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Return numpy's (below, above, gamma) of the linear method for percentiles `q`."""
        n = self.values.size
        virtual = (n - 1) * np.true_divide(np.asarray(q, dtype=np.float64), 100)
        below = np.floor(virtual).astype(np.intp)
        return below, np.minimum(below + 1, n - 1), virtual - below

    def bin_bounds(self, rank: int) -> tuple[float, float]:
        """Return bounds of the `rank`-th smallest value: its bin widened by a bin each side.

        The margin covers the rounding of :meth:`bin_of` (the same margin
        :func:`percentiles` gathers the values of a bin with).
        """
        b = int(np.searchsorted(self.ends, rank, side="right"))
        return self.lo + (b - 1) / self.scale, self.lo + (b + 2) / self.scale

    def order_statistics(self, ranks: np.ndarray) -> dict[int, float]:
        """Return the exact `ranks`-th smallest values (0-based), sorting only their bins."""
        v = self.values
        in_bin = np.searchsorted(self.ends, ranks, side="right")
        order: dict[int, float] = {}
        for b in np.unique(in_bin):
            # the values near the bin (a margin of a bin each side for rounding), then exactly
            # the bin's values, binned by the same arithmetic as the counts
            near = v[(v >= self.lo + (b - 1) / self.scale) & (v <= self.lo + (b + 2) / self.scale)]
            chunks = _chunks(near, _PERCENTILE_CHUNK)
            members = np.sort(np.concatenate([p[self.bin_of(p) == b] for p in chunks]))
            first = int(self.ends[b] - self.counts[b])
            for rank in ranks[in_bin == b]:
                order[int(rank)] = float(members[int(rank) - first])
        return order


def percentiles(values: np.ndarray, q: Sequence[float]) -> np.ndarray:
    """Return ``np.percentile(values, q)`` (linear method), equal to it, faster on many values.

    From :data:`_BINNED_PERCENTILE_MIN` values on, the values are counted in
    :data:`_PERCENTILE_BINS` equal bins between their minimum and maximum (:class:`_Histogram`);
    only the values of the bins holding the needed order statistics are then sorted, instead of
    partitioning a copy of all of them. The interpolation between the two order statistics is
    numpy's own (``a + (b - a) t``, or ``b - (b - a)(1 - t)`` from ``t = 0.5``). `values` must
    hold no NaN.
    """
    v = np.asarray(values, dtype=np.float64)
    if v.size < _BINNED_PERCENTILE_MIN:
        return np.asarray(np.percentile(v, q), dtype=np.float64)
    histogram = _Histogram(v)
    below, above, gamma = histogram.ranks(q)
    if not histogram.scale:
        return np.full(gamma.shape, histogram.lo)
    order = histogram.order_statistics(np.unique(np.concatenate([below, above])))
    a = np.array([order[int(r)] for r in below])
    b_ = np.array([order[int(r)] for r in above])
    diff = b_ - a
    return np.where(gamma >= 0.5, b_ - diff * (1 - gamma), a + diff * gamma)


def _chunks(values: np.ndarray, size: int) -> list[np.ndarray]:
    return [values[i : i + size] for i in range(0, max(len(values), 1), size)]


def _silverman_bandwidth(x: np.ndarray, y: np.ndarray) -> float:
    """2-D normal-reference bandwidth: sigma * n^(-1/6), sigma robust (IQR/1.349), per axis mean."""
    n = len(x)
    spreads = []
    for v in (x, y):  # one axis at a time: two threads gained nothing on 2 loaded cores
        iqr = float(np.subtract(*percentiles(v, [75, 25]))) / 1.349
        sd = float(np.std(v))
        spreads.append(min(sd, iqr) if iqr > 0 else sd)
    return float(np.mean(spreads)) * n ** (-1.0 / 6.0)


#: Relative margin by which a bound of the bandwidth must clear a clip to be trusted (the bounds
#: are computed in floating point: far more than their round-off, far less than a bin).
_CLIP_MARGIN = 1e-9


def _clipped_silverman(
    x: np.ndarray,
    y: np.ndarray,
    low: float,
    high: float,
    *,
    extents: tuple[np.ndarray, np.ndarray] | None = None,
) -> float:
    """Return ``float(np.clip(_silverman_bandwidth(x, y), low, high))``, the same value.

    On many points the rule's value is usually far outside ``[low, high]`` (10M incidents of a
    city give well over the 300 m default maximum). Its bounds are then enough: each axis's
    spread is at most its standard deviation, and at least ``min(sd, IQR_low / 1.349)`` where
    ``IQR_low`` comes from the bins of a :class:`_Histogram` that hold the quartiles' order
    statistics (no sorting, no gathering of the values near them). When a bound clears a clip
    by :data:`_CLIP_MARGIN` the clip is the answer; otherwise the exact rule is computed.
    `extents` are each axis's (minimum, maximum) when the caller has them.
    """
    n = len(x)
    if n < _BINNED_PERCENTILE_MIN or not low <= high:
        return float(np.clip(_silverman_bandwidth(x, y), low, high))
    factor = n ** (-1.0 / 6.0)
    sds, lows = [], []
    for axis, v in enumerate((x, y)):
        sd = float(np.std(v))
        sds.append(sd)
        histogram = _Histogram(
            np.asarray(v, dtype=np.float64), extent=None if extents is None else extents[axis]
        )
        if not histogram.scale:
            lows.append(sd)  # every value equal: the IQR is 0 and the rule takes the sd
            continue
        below, above, _ = histogram.ranks([25, 75])
        q25_high = histogram.bin_bounds(int(above[0]))[1]  # the 25th percentile is at most
        q75_low = histogram.bin_bounds(int(below[1]))[0]  # the 75th at least
        iqr_low = (q75_low - q25_high) / 1.349
        lows.append(min(sd, iqr_low) if iqr_low > 0 else 0.0)  # a spread is never negative
    if float(np.mean(lows)) * factor > high * (1 + _CLIP_MARGIN):
        return float(high)
    if float(np.mean(sds)) * factor < low * (1 - _CLIP_MARGIN):
        return float(low)
    return float(np.clip(_silverman_bandwidth(x, y), low, high))


@estimator_parameters
class KDEHotspots(BaseEstimator):
    """Gaussian kernel density on a grid, by linear binning and FFT convolution.

    Points are counted in `cell_size_m` cells (linear binning: each point shared among the four
    nearest cell centres, one compiled pass, no sort or hashing) on a grid around the points
    padded by `pad_bandwidths` bandwidths, and the counts are convolved (real FFTs in single
    precision, ``scipy.fft`` on all cores) with a Gaussian truncated at `pad_bandwidths`
    bandwidths. The density of a cell is the estimate at its centre, in incidents per km²
    (``KernelDensity`` density x n x 1e6).

    **Binning correction.** Linear binning of a point that falls anywhere in a cell spreads it,
    on average, by a tent function of variance ``cell² / 6`` per axis. The kernel convolved with
    the counts therefore has variance ``h² - cell² / 6`` (when the cell is at most the
    bandwidth), so that the whole estimate has the requested variance ``h²``. This removes the
    leading O((cell/h)²) bias of linear binning; what remains is each point's interpolation
    fluctuation, which averages out over many locations (see docs/hotspots.md).

    Parameters
    ----------
    bandwidth_m
        Gaussian standard deviation (m), or ``"auto"``: the 2-D normal-reference rule
        ``sigma * n^(-1/6)`` (sigma = mean over axes of min(sd, IQR/1.349)), clipped to
        [`min_bandwidth_m`, `max_bandwidth_m`].
    cell_size_m
        Grid cell (m), or ``"auto"``: the bandwidth / 10 (measured error well under 0.5% of the
        exact estimate), enlarged if the padded grid would exceed `max_cells` cells.
    pad_bandwidths
        Padding and kernel truncation, in bandwidths (at least 5: edge errors reach 10% with
        less).
    coverage
        Share of the grid's study cells flagged as hotspots in ``hotspots_``.
    min_bandwidth_m, max_bandwidth_m
        Clip of the automatic bandwidth.
    max_cells
        Largest automatic grid (cells); bounds the memory (about 20 bytes per cell).

    Attributes
    ----------
    density_
        (rows, cols) incidents per km² (float32).
    grid_
        The :class:`Grid`.
    bandwidth_m_
        The bandwidth used.
    cell_size_m_
        The cell used.
    hotspots_
        Polygons of the densest cells covering `coverage` of the area with incidents' hull.
    """

    bandwidth_m: float | str = "auto"
    cell_size_m: float | str = "auto"
    pad_bandwidths: float = 5.0
    coverage: float = 0.05
    min_bandwidth_m: float = 50.0
    max_bandwidth_m: float = 300.0
    max_cells: int = 16_000_000

    def fit(self, X: pd.DataFrame, y: None = None, *, grid: Grid | None = None) -> KDEHotspots:
        """Estimate the density of `X` (on `grid` when given); return self."""
        del y
        counts = self.bin(X, grid=grid)
        self._smooth(counts, self.n_incidents_, getattr(X, "crs", None))
        return self

    def bin(self, X: pd.DataFrame, *, grid: Grid | None = None) -> np.ndarray:
        """Return the linear-binned counts of `X`: :meth:`fit` before the smoothing.

        Validates the parameters and sets ``bandwidth_m_``, ``cell_size_m_``, ``grid_`` and
        ``n_incidents_`` as :meth:`fit` does; :meth:`fit_counts` with the same bandwidth
        finishes the estimate (what a cache of the binned counts replays).
        """
        if self.bandwidth_m != "auto":
            _check_number("bandwidth_m", self.bandwidth_m, low=0.0, unit=" m")
        if self.cell_size_m != "auto":
            _check_number("cell_size_m", self.cell_size_m, low=0.0, unit=" m")
        _check_number("pad_bandwidths", self.pad_bandwidths, low=0.0)
        _check_number("coverage", self.coverage, low=0.0, high=1.0)
        _check_number("min_bandwidth_m", self.min_bandwidth_m, low=0.0, unit=" m")
        _check_number("max_bandwidth_m", self.max_bandwidth_m, low=0.0, unit=" m")
        _check_number("max_cells", self.max_cells, low=1, integer=True, low_open=False)
        x, yy = _xy(X)
        if len(x) == 0:
            msg = "X has no incidents: nothing to estimate a density from"
            raise ValueError(msg)
        # each axis's extent once (the rules below take only the minimum and maximum)
        xs, ys = np.array([x.min(), x.max()]), np.array([yy.min(), yy.max()])
        if self.bandwidth_m == "auto":
            h = _clipped_silverman(
                x, yy, self.min_bandwidth_m, self.max_bandwidth_m, extents=(xs, ys)
            )
        else:
            h = float(self.bandwidth_m)
        self.bandwidth_m_ = h
        reach = self.pad_bandwidths * h
        if grid is not None:
            cell = grid.cell_size_m
        elif self.cell_size_m == "auto":
            cell = auto_cell_size(xs, ys, h, pad_m=reach, max_cells=self.max_cells)
        else:
            cell = float(self.cell_size_m)
        self.cell_size_m_ = cell
        self.grid_ = grid if grid is not None else Grid.around(xs, ys, cell, pad_m=reach)
        self.n_incidents_ = len(x)
        return self.grid_.linear_counts(x, yy)

    def fit_counts(
        self,
        counts: np.ndarray,
        grid: Grid,
        *,
        n_incidents: int,
        crs: object = None,
        bandwidth_m: float | None = None,
    ) -> KDEHotspots:
        """Estimate the density from points already binned on `grid`; return self.

        The binning is additive, so it can be done file by file where the data lie (see
        :func:`analysis.distributed.kde_surface`) and summed; the result equals :meth:`fit` on
        the same points and grid. Needs a numeric `bandwidth_m`.

        Parameters
        ----------
        counts
            The (rows, cols) linear-binned counts (:meth:`Grid.linear_counts`).
        grid
            The grid of `counts`.
        n_incidents
            How many incidents were binned.
        crs
            CRS of the hotspot polygons.
        bandwidth_m
            The bandwidth the counts were binned for when the parameter is ``"auto"`` (the
            ``bandwidth_m_`` that :meth:`bin` chose from the points); default: the parameter.

        Raises
        ------
        ValueError
            If the bandwidth is ``"auto"`` and none is given (it needs the points) or `counts`
            does not fit `grid`.
        """
        h = self.bandwidth_m if bandwidth_m is None else bandwidth_m
        if h == "auto":
            msg = "fit_counts needs a bandwidth in metres: 'auto' is estimated from the points"
            raise ValueError(msg)
        _check_number("bandwidth_m", h, low=0.0, unit=" m")
        if counts.shape != (grid.n_rows, grid.n_cols):
            msg = f"counts have shape {counts.shape}, the grid {(grid.n_rows, grid.n_cols)}"
            raise ValueError(msg)
        self.bandwidth_m_ = float(h)
        self.cell_size_m_ = grid.cell_size_m
        self.grid_ = grid
        self._smooth(counts, n_incidents, crs)
        return self

    def _smooth(self, counts: np.ndarray, n_incidents: int, crs: object) -> None:
        h, cell = self.bandwidth_m_, self.cell_size_m_
        reach = self.pad_bandwidths * h
        # binning correction: the tent of linear binning adds cell²/6 of variance per axis
        h_kernel = math.sqrt(h * h - cell * cell / 6.0) if cell <= h else h
        half = math.ceil(reach / cell)
        offsets = np.arange(-half, half + 1) * cell
        k1 = np.exp(-0.5 * (offsets / h_kernel) ** 2) / (math.sqrt(2 * math.pi) * h_kernel)
        self.density_ = _fft_convolve_separable(counts, k1, scale=1e6)  # per m² -> per km²
        self.n_incidents_ = n_incidents
        self.hotspots_ = _top_cells_polygons(
            self.density_, self.grid_, self.coverage, crs, "density_per_km2"
        )


#: Default cell of the KDE grid, as a fraction of the bandwidth (``cell_size_m="auto"``).
AUTO_CELL_FRACTION = 0.1


def auto_cell_size(
    x: np.ndarray, y: np.ndarray, bandwidth_m: float, *, pad_m: float, max_cells: int
) -> float:
    """Return the default KDE cell: ``AUTO_CELL_FRACTION`` x the bandwidth, within `max_cells`.

    If the grid around the points (padded by `pad_m`) would have more than `max_cells` cells at
    that size, the cell grows to the smallest size that fits (and the binning error grows
    about as (cell / bandwidth)²; a warning is logged).
    """
    cell = AUTO_CELL_FRACTION * bandwidth_m
    width = float(np.max(x) - np.min(x)) + 2 * pad_m
    height = float(np.max(y) - np.min(y)) + 2 * pad_m
    if (width / cell + 1) * (height / cell + 1) > max_cells:
        # smallest cell with (w/c + 1)(h/c + 1) <= max_cells: c solves M c² - (w+h) c - wh = 0
        m = float(max_cells) - 1.0
        cell = ((width + height) + math.sqrt((width + height) ** 2 + 4 * m * width * height)) / (
            2 * m
        )
        cell *= 1.0 + 1e-9
        logger.warning(
            "KDE grid capped at %d cells: cell %.1f m for a %.0f m bandwidth "
            "(binning error grows as (cell/bandwidth)²)",
            max_cells,
            cell,
            bandwidth_m,
        )
    return cell


#: Spectrum pruning: frequencies where the kernel's 1-D spectrum is below this share of its
#: peak are dropped (a Gaussian of h cells keeps |w| < 7.4 / h rad per cell, a quarter of the
#: band at h = 10 cells). Far below single-precision round-off.
_SPECTRUM_TOL = 1e-12


def _fft_convolve_separable(counts: np.ndarray, k1: np.ndarray, scale: float = 1.0) -> np.ndarray:
    """Return ``scale`` x `counts` convolved ("same" size) with the kernel ``outer(k1, k1)``.

    `k1` is symmetric with odd length ``2 * half + 1``. FFTs in single precision on a fast
    length (``scipy.fft``, all cores). The transform is only as long as needed for the circular
    convolution to equal the linear one on the output: when the non-zero counts lie at least
    `half` cells inside the grid (a grid padded by the kernel's reach), no padding at all.

    The kernel is separable and smooth, so its spectrum is the outer product of two real 1-D
    spectra (symmetric about index 0) that vanish outside low frequencies: after the real FFT
    along the columns only the columns' frequencies where the kernel's spectrum exceeds
    ``_SPECTRUM_TOL`` of its peak are kept, so the transforms along the rows (forward and
    inverse) run on that band only. The result is float32 and clipped at 0 (round-off).
    """
    from scipy import fft

    half = (len(k1) - 1) // 2
    single = counts.astype(np.float32)
    lengths = []
    for axis, n in enumerate(counts.shape):
        occupied = np.flatnonzero(single.any(axis=1 - axis))
        first, last = (int(occupied[0]), int(occupied[-1])) if len(occupied) else (0, 0)
        # no wrap-around onto outputs [0, n): L >= last + half + 1 and L >= n - first + half
        need = max(n, last + half + 1, n - first + half)
        lengths.append(fft.next_fast_len(need, real=True))
    spectra = []
    for length in lengths:
        circular = np.zeros(length)  # tap at offset o goes to index o mod L (0 = centre)
        np.add.at(circular, np.arange(-half, half + 1) % length, k1)
        spectra.append(fft.fft(circular).real)  # real: the kernel is symmetric about 0
    rows, cols = counts.shape
    n_rows, n_cols = lengths
    col_spectrum = spectra[1][: n_cols // 2 + 1]
    above = np.flatnonzero(np.abs(col_spectrum) > _SPECTRUM_TOL * np.abs(col_spectrum).max())
    band = int(above[-1]) + 1 if len(above) else 1
    f = fft.rfft(single, n=n_cols, axis=1, workers=-1)[:, :band]
    f *= col_spectrum[:band].astype(np.float32)[None, :]
    f = fft.fft(f, n=n_rows, axis=0, workers=-1, overwrite_x=True)
    f *= (spectra[0] * scale).astype(np.float32)[:, None]
    f = fft.ifft(f, axis=0, workers=-1, overwrite_x=True)[:rows]
    full = fft.irfft(f, n=n_cols, axis=1, workers=-1)
    out = np.ascontiguousarray(full[:, :cols])
    np.maximum(out, 0.0, out=out)
    return out


def _top_cells_polygons(
    score: np.ndarray, grid: Grid, coverage: float, crs: object, name: str
) -> gpd.GeoDataFrame:
    """Return polygons of the top `coverage` share of the cells with a positive score."""
    import geopandas as gpd  # loaded where a layer is built: not at start-up

    positive = score > 1e-3 * score.max() if score.size and score.max() > 0 else score > 0
    n_keep = max(1, round(coverage * int(positive.sum()))) if positive.any() else 0
    if n_keep == 0:
        return gpd.GeoDataFrame(
            {"hotspot": [], name: [], "area_km2": []}, geometry=gpd.GeoSeries(crs=crs)
        )
    values = score[positive]  # the n_keep largest scores are all positive
    threshold = np.partition(values, values.size - n_keep)[values.size - n_keep]
    mask = (score >= threshold) & positive
    from rasterio import features
    from rasterio.transform import Affine

    # polygonise only the bounding box of the kept cells (the scan costs per cell of the image)
    kept = np.flatnonzero(mask)
    row0, row1 = int(kept[0]) // score.shape[1], int(kept[-1]) // score.shape[1]
    cols = kept % score.shape[1]
    col0, col1 = int(cols.min()), int(cols.max())
    box = np.s_[row0 : row1 + 1, col0 : col1 + 1]
    mask, score = mask[box], score[box]
    x0 = grid.x0 + col0 * grid.cell_size_m
    y0 = grid.y0 + row0 * grid.cell_size_m
    from scipy import ndimage

    labels, _ = ndimage.label(mask)
    geoms, ids = [], []
    cell = grid.cell_size_m
    for label, (rs, cs) in enumerate(ndimage.find_objects(labels), start=1):
        patch = (labels[rs, cs] == label).astype(np.uint8)  # each patch on its own bounding box
        transform = Affine(cell, 0, x0 + cs.start * cell, 0, cell, y0 + rs.start * cell)
        for geom, _ in features.shapes(patch, mask=patch.view(bool), transform=transform):
            geoms.append(shapely.geometry.shape(geom))
            ids.append(label)
    patch_ids = np.asarray(ids, dtype=np.int64)
    peaks = np.zeros(int(labels.max()) + 1)  # per-patch maximum over the kept cells only
    np.maximum.at(peaks, labels[mask], score[mask])
    peak = peaks[patch_ids]
    patches = gpd.GeoDataFrame({name: np.asarray(peak, dtype=float)}, geometry=geoms, crs=crs)
    if len(patch_ids) != len(set(patch_ids)):
        patches = patches.dissolve(by=patch_ids, aggfunc="max")
    patches["area_km2"] = patches.geometry.area / 1e6
    patches = patches.sort_values(name, ascending=False).reset_index(drop=True)
    patches["hotspot"] = np.arange(1, len(patches) + 1)
    return patches[["hotspot", name, "area_km2", "geometry"]]


def grid_mask(grid: Grid, areas: gpd.GeoDataFrame) -> np.ndarray:
    """Return the (rows, cols) cells of `grid` whose centre lies in one of `areas` (polygons)."""
    from rasterio import features
    from rasterio.transform import Affine

    transform = Affine(grid.cell_size_m, 0, grid.x0, 0, grid.cell_size_m, grid.y0)
    return features.rasterize(
        ((g, 1) for g in areas.geometry if g is not None and not g.is_empty),
        out_shape=(grid.n_rows, grid.n_cols),
        transform=transform,
        fill=0,
        dtype="uint8",
    ).astype(bool)


def _disc(radius_cells: float) -> np.ndarray:
    r = math.floor(radius_cells + 1e-9)
    off = np.arange(-r, r + 1)
    dx, dy = np.meshgrid(off, off)
    return (dx * dx + dy * dy <= radius_cells * radius_cells + 1e-9).astype(np.float64)


@estimator_parameters
class GiStarHotspots(BaseEstimator):
    """Getis-Ord Gi* on grid counts with binary distance weights, permutations and FDR.

    Cells are `cell_size_m` squares; cell j is a neighbour of cell i when their centres are at
    most `distance_m` apart (binary weights, the cell itself included: Gi*). z-scores are esda's
    ``G_Local(star=True, transform="B")`` computed as a convolution. Inference is one-sided (upper
    tail): a hotspot is a cell whose neighbourhood sum is improbably *high*. Pseudo p-values come
    from conditional randomisation (the cell's own count fixed, its neighbours drawn at random
    from all cells' counts, `permutations` times, shared by cells with as many neighbours), and
    Benjamini-Hochberg controls the false discovery rate at `alpha`.

    Parameters
    ----------
    cell_size_m
        Grid cell (m).
    distance_m
        Neighbour distance between cell centres (m); default ``1.5 * cell_size_m`` (queen).
    permutations
        Random draws for the pseudo p-values. The null is shared by all cells with the same
        number of neighbours, so many draws are cheap; they are needed, because the smallest
        pseudo p-value is 1 / (permutations + 1) and the FDR correction over tens of thousands
        of cells rejects nothing with 999.
    alpha
        False discovery rate.
    random_state
        Seed of the permutations.

    Attributes
    ----------
    counts_, z_, p_sim_, p_norm_, is_hotspot_
        (rows, cols) arrays over ``grid_``: counts, z-scores, permutation and normal one-sided
        p-values, and FDR-significant hot cells (z > 0 and BH-adjusted p_sim <= alpha).
    study_
        (rows, cols) boolean: the cells of the study area (``mask`` in ``fit``, else all).
    hotspots_
        Polygons of contiguous significant cells.
    """

    cell_size_m: float = 150.0
    distance_m: float | None = None
    permutations: int = 99_999
    alpha: float = 0.05
    random_state: int | None = 0

    def fit(
        self,
        X: pd.DataFrame,
        y: None = None,
        *,
        grid: Grid | None = None,
        mask: np.ndarray | None = None,
    ) -> GiStarHotspots:
        """Compute Gi* on the cell counts of `X`; return self.

        Parameters
        ----------
        X
            Incidents (metres).
        grid
            Grid to count on (default: around the incidents).
        mask
            (rows, cols) boolean study area: cells outside are not part of the statistic.
        """
        del y
        _check_number("cell_size_m", self.cell_size_m, low=0.0, unit=" m")
        if self.distance_m is not None:
            _check_number("distance_m", self.distance_m, low=0.0, unit=" m")
        _check_number("permutations", self.permutations, low=0, integer=True, low_open=False)
        _check_number("alpha", self.alpha, low=0.0, high=1.0)
        x, yy = _xy(X)
        if len(x) == 0 and grid is None:
            msg = "X has no incidents: nothing to count"
            raise ValueError(msg)
        self.grid_ = grid if grid is not None else Grid.around(x, yy, float(self.cell_size_m))
        counts = self.grid_.counts(x, yy)
        study = np.ones(counts.shape, bool) if mask is None else np.asarray(mask, bool)
        if study.shape != counts.shape:
            msg = f"mask has shape {study.shape}, the grid {counts.shape}"
            raise ValueError(msg)
        counts = np.where(study, counts, 0.0)
        distance = 1.5 * self.grid_.cell_size_m if self.distance_m is None else self.distance_m
        kernel = _disc(distance / self.grid_.cell_size_m)
        from scipy import signal, stats

        lag = np.rint(signal.fftconvolve(counts, kernel, mode="same"))
        card = np.rint(signal.fftconvolve(study.astype(float), kernel, mode="same"))
        values = counts[study]
        n = values.size
        total = values.sum()
        z = np.zeros(counts.shape)
        p_norm = np.ones(counts.shape)
        p_sim = np.ones(counts.shape)
        if n > 1 and total > 0:
            mean = total / n
            var = (values**2).mean() - mean**2
            g = lag / total
            expected = card / n
            variance = card * (n - card) / (n - 1) / n**2 * var / mean**2
            with np.errstate(invalid="ignore", divide="ignore"):
                z = np.where(study & (variance > 0), (g - expected) / np.sqrt(variance), 0.0)
            p_norm = np.where(study, stats.norm.sf(z), 1.0)
            if self.permutations > 0:
                p_sim = self._permute(values, counts, lag, card, study)
        self.counts_ = counts
        self.study_ = study
        self.z_ = z
        self.p_norm_ = p_norm
        self.p_sim_ = p_sim
        adjusted = np.ones(counts.shape)
        if n:
            adjusted[study] = stats.false_discovery_control(p_sim[study], method="bh")
        self.p_fdr_ = adjusted
        self.is_hotspot_ = study & (z > 0) & (adjusted <= self.alpha)
        score = np.where(self.is_hotspot_, z, 0.0)
        self.hotspots_ = _top_cells_polygons(score, self.grid_, 1.0, getattr(X, "crs", None), "z")
        return self

    def _permute(
        self,
        values: np.ndarray,
        counts: np.ndarray,
        lag: np.ndarray,
        card: np.ndarray,
        study: np.ndarray,
    ) -> np.ndarray:
        rng = np.random.default_rng(self.random_state)
        p = np.ones(counts.shape)
        neighbours = np.where(study, card - 1, -1).astype(np.int64)
        observed = lag - counts  # the neighbours' sum (the cell's own count is fixed)
        for k in np.unique(neighbours[study]):
            cells = study & (neighbours == k)
            if k <= 0:
                continue
            # k neighbours drawn from all study cells' counts (with replacement: with n cells
            # the chance of a repeated draw in one permutation is about k^2 / 2n, under 0.2%)
            draws = np.empty(self.permutations)
            for start in range(0, self.permutations, 4096):
                stop = min(start + 4096, self.permutations)
                idx = rng.integers(0, values.size, size=(stop - start, int(k)))
                draws[start:stop] = values[idx].sum(axis=1)
            draws.sort()
            larger = self.permutations - np.searchsorted(draws, observed[cells], side="left")
            p[cells] = (larger + 1) / (self.permutations + 1)
        return p


# --- near repeat ------------------------------------------------------------------------------
def knox_table(
    X: pd.DataFrame,
    *,
    distance_bands_m: tuple[float, ...] = (100.0, 200.0, 400.0),
    time_bands_days: tuple[float, ...] = (1.0, 3.0, 7.0, 14.0),
    permutations: int = 99,
    random_state: int | None = 0,
) -> pd.DataFrame:
    """Return the Knox near-repeat table: pairs close in space and time, observed vs expected.

    For each cumulative band (distance <= d metres and time apart <= t days), the number of
    incident pairs, the number expected if times were independent of places (mean over
    `permutations` random shuffles of the times), their ratio, and the Monte Carlo p-value
    (one-sided: as many or more pairs under the null). Pairs are counted once; points at the same
    place and time count as close.

    Parameters
    ----------
    X
        Incidents with ``x``/``y`` (m) and ``occurred_at``.
    distance_bands_m, time_bands_days
        Upper limits of the bands (inclusive).
    permutations
        Random shuffles of the times.
    random_state
        Seed.

    Returns
    -------
    DataFrame
        ``distance_m, time_days, observed, expected, ratio, p_value``.
    """
    _check_number("permutations", permutations, low=1, integer=True, low_open=False)
    if not distance_bands_m or not time_bands_days:
        msg = "distance_bands_m and time_bands_days must not be empty"
        raise ValueError(msg)
    for d in distance_bands_m:
        _check_number("distance_bands_m", d, low=0.0, unit=" m")
    for t in time_bands_days:
        _check_number("time_bands_days", t, low=0.0, unit=" days")
    if schema.OCCURRED_AT not in X.columns:
        msg = f"X has no '{schema.OCCURRED_AT}' column: the Knox test needs times"
        raise ValueError(msg)
    x, y = _xy(X)
    when = pd.DatetimeIndex(X[schema.OCCURRED_AT])
    days = (when.asi8 - when.asi8.min()) / 86_400e9 if len(when) else np.empty(0)
    from scipy.spatial import cKDTree

    tree = cKDTree(np.column_stack([x, y]))
    pairs = tree.query_pairs(max(distance_bands_m), output_type="ndarray")
    i, j = pairs[:, 0], pairs[:, 1]
    dist = np.hypot(x[i] - x[j], y[i] - y[j])
    rng = np.random.default_rng(random_state)
    dist_bands = np.asarray(sorted(distance_bands_m))
    time_bands = np.asarray(sorted(time_bands_days))

    def table(t: np.ndarray) -> np.ndarray:
        dt = np.abs(t[i] - t[j])
        return np.array(
            [[np.count_nonzero((dist <= d) & (dt <= tb)) for tb in time_bands] for d in dist_bands]
        )

    observed = table(days)
    sims = np.stack([table(rng.permutation(days)) for _ in range(permutations)])
    expected = sims.mean(axis=0)
    p_value = ((sims >= observed).sum(axis=0) + 1) / (permutations + 1)
    rows = []
    for a, d in enumerate(dist_bands):
        for b, tb in enumerate(time_bands):
            rows.append(
                {
                    "distance_m": float(d),
                    "time_days": float(tb),
                    "observed": int(observed[a, b]),
                    "expected": float(expected[a, b]),
                    "ratio": float(observed[a, b] / expected[a, b]) if expected[a, b] else np.nan,
                    "p_value": float(p_value[a, b]),
                }
            )
    return pd.DataFrame(rows)


# --- areas ------------------------------------------------------------------------------------
def area_incidents(
    incidents: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    *,
    level: Level | None,
    area_id: str | None,
    category: str | None = None,
) -> tuple[pd.DataFrame, gpd.GeoDataFrame]:
    """Return the located incidents and the beats of an area (all when `level` is None).

    Raises
    ------
    UnknownAreaError
        If the area id is unknown (the message lists a few valid ids).
    """
    located = incidents.dropna(subset=[schema.X, schema.Y])
    if level is not None:
        beats = area_beats(beats, level=level, area_id=area_id)
        column = LEVEL_COLUMNS[level]
        located = located[located[column].isin(beats[column])]
    if category:
        located = located[located[schema.CATEGORY].astype(str) == category]
    return located.reset_index(drop=True), beats


#: What :func:`fit_hotspots` fits: one of the four estimators, by its method.
HotspotModel: TypeAlias = DBSCANHotspots | HDBSCANHotspots | KDEHotspots | GiStarHotspots


def fit_hotspots(
    incidents: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    method: str,
    *,
    eps_m: float = 150.0,
    min_samples: int | str = "auto",
    cell_size_m: float | str | None = None,
    bandwidth_m: float | str = "auto",
    reference: tuple[pd.DataFrame, gpd.GeoDataFrame] | None = None,
) -> tuple[HotspotModel, gpd.GeoDataFrame]:
    """Fit `method` on `incidents` (area `beats`); return the estimator and its hotspot polygons.

    Hotspots of an area are measured against the jurisdiction when `reference` (all incidents
    of the period and all beats) is given. DBSCAN's scaled ``min_samples`` then uses the
    jurisdiction's mean density (a core point needs 5x the city's density, not 5x the area's: in
    a small, busy downtown beat the area's own mean would demand more incidents than it has);
    without `reference`, the area of `beats`. Gi* is computed on the jurisdiction's cells and
    its hotspots clipped to `beats`; without `reference`, on the cells whose centre is in
    `beats`.
    """
    import geopandas as gpd  # loaded where a layer is built: not at start-up

    area_m2 = float(beats.geometry.area.sum()) if len(beats) else None
    if len(incidents) == 0:
        msg = "no located incidents in this area and period"
        raise ValueError(msg)
    if method == "dbscan":
        if min_samples == "auto" and reference is not None and len(reference[1]):
            ref_incidents, ref_beats = reference
            min_samples = scaled_min_samples(
                len(ref_incidents), float(ref_beats.geometry.area.sum()), eps_m
            )
        model: HotspotModel = DBSCANHotspots(
            eps_m=eps_m, min_samples=min_samples, area_m2=area_m2
        ).fit(incidents)
    elif method == "hdbscan":
        model = HDBSCANHotspots(area_m2=area_m2).fit(incidents)
    elif method == "kde":
        model = KDEHotspots(bandwidth_m=bandwidth_m, cell_size_m=cell_size_m or "auto")
        model.fit(incidents)
    elif method == "gistar":
        # Gi* has no rule for its cell: "auto" (as for KDE) means the default 150 m
        cell = 150.0 if not cell_size_m or cell_size_m == "auto" else float(cell_size_m)
        fit_on, study = reference if reference is not None else (incidents, beats)
        xmin, ymin, xmax, ymax = study.total_bounds
        grid = Grid.around(np.array([xmin, xmax]), np.array([ymin, ymax]), cell, cell)
        gistar = GiStarHotspots(cell_size_m=cell)
        model = gistar.fit(fit_on, grid=grid, mask=grid_mask(grid, study))
        if reference is not None:
            clipped = gpd.clip(gistar.hotspots_.set_crs(beats.crs, allow_override=True), beats)
            clipped = clipped[~clipped.geometry.is_empty]
            # clip returns its rows in space order: number them strongest first, as fit does
            clipped = clipped.sort_values("z", ascending=False, kind="stable")
            clipped = clipped.reset_index(drop=True)
            clipped["area_km2"] = clipped.geometry.area / 1e6
            clipped["hotspot"] = np.arange(1, len(clipped) + 1)
            return model, clipped
    else:
        msg = f"method must be one of {', '.join(HOTSPOT_METHODS)}, got {method!r}"
        raise ValueError(msg)
    return model, model.hotspots_.set_crs(beats.crs, allow_override=True)


_CSV_FORMULA = ("=", "+", "-", "@", "\t", "\r")


def export_hotspots(hotspots: gpd.GeoDataFrame, fmt: str) -> bytes:
    """Return hotspot polygons as GeoJSON (WGS84) or CSV bytes, for download.

    Parameters
    ----------
    hotspots
        Polygons with their attributes (a fitted estimator's ``hotspots_``), in any CRS.
    fmt
        ``"geojson"`` or ``"csv"``. The CSV holds the attributes and each polygon's centre as
        ``lon``/``lat`` (no geometry); text that a spreadsheet would run as a formula
        (``=``, ``+``, ``-``, ``@``) is prefixed with ``'``.

    Raises
    ------
    ValueError
        For another `fmt`.
    """
    if fmt not in ("geojson", "csv"):
        msg = f"fmt must be 'geojson' or 'csv', got {fmt!r}"
        raise ValueError(msg)
    shown = hotspots.to_crs(schema.WGS84) if hotspots.crs is not None else hotspots
    shown = shown.copy()
    for column in shown.columns:  # dates and times as ISO text (JSON has no date type)
        if column != "geometry" and pd.api.types.is_datetime64_any_dtype(shown[column]):
            shown[column] = shown[column].map(lambda v: None if pd.isna(v) else v.isoformat())
        elif column != "geometry" and shown[column].dtype == object:
            shown[column] = shown[column].map(
                lambda v: v.isoformat() if isinstance(v, (pd.Timestamp, date)) else v
            )
    if fmt == "geojson":
        return shown.to_json(drop_id=True).encode("utf-8")
    table = pd.DataFrame(shown.drop(columns="geometry"))
    if len(shown):
        centres = hotspots.geometry.representative_point()
        if hotspots.crs is not None:
            centres = centres.to_crs(schema.WGS84)
        table["lon"], table["lat"] = centres.x.to_numpy(), centres.y.to_numpy()
    for column in table.columns:
        if table[column].dtype == object or str(table[column].dtype) == "string":
            table[column] = [
                f"'{v}" if isinstance(v, str) and v.startswith(_CSV_FORMULA) else v
                for v in table[column]
            ]
    return table.to_csv(index=False).encode("utf-8")
