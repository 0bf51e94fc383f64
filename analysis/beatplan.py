"""Beat plans: evaluate any plan, and propose balanced, compact, contiguous beats and sectors.

A *plan* is a GeoDataFrame of beats (``beat``, ``sector``, ``district``, geometry in the
analysis CRS). :func:`evaluate_plan` measures workload balance, compactness, contiguity, a
response proxy and sector sizes; :func:`compare_plans` puts two evaluations side by side.

Proposals work on *units*: grid cells of a few hundred metres clipped to the districts
(:func:`build_units`), each with its workload and current beat (largest overlap).
:class:`BalancedBeats` grows K contiguous beats from seeds and improves them by moving boundary
units under a contiguity check (networkx articulation points), minimising an explicit balance
objective plus a compactness term (the Polsby-Popper perimeter of the unit unions). Its
minimal-change mode starts from the current beats and moves only boundary units until the
balance target is met. :func:`group_sectors` groups beats into sectors of 3-5 contiguous beats
with balanced workload. Everything is deterministic given ``random_state``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Sequence
from dataclasses import KW_ONLY, dataclass, field
from typing import Any, cast

import geopandas as gpd
import networkx as nx
import numpy as np
import pandas as pd
import shapely

from analysis.workload import WORKLOAD, WorkloadWeights, incident_workload
from geodata import schema
from geodata.errors import InputError, ParameterError
from geodata.join import BeatIndex
from geodata.jsonable import jsonable, jsonable_records

__all__ = [
    "UNIT",
    "BalancedBeats",
    "PlanEvaluation",
    "Proposal",
    "SearchOptions",
    "Units",
    "apportion_beats",
    "build_units",
    "coefficient_of_variation",
    "compare_plans",
    "convex_hull_ratio",
    "district_incidents",
    "evaluate_district",
    "evaluate_plan",
    "gini",
    "group_sectors",
    "max_min_ratio",
    "plan_from_units",
    "polsby_popper",
    "propose_beats",
    "propose_city",
    "with_workload",
]

logger = logging.getLogger(__name__)

UNIT = "unit"
#: Workload CVs that cost as much as the mean 1/PP of square beats; the free mode cycles
#: through them over its starts (a heavier balance weight balances better, a lighter one keeps
#: beats more compact) and keeps the most compact plan that meets the balance target.
_BALANCE_CV_REFS = (0.15, 0.25, 0.10, 0.35)
Progress = Callable[[str, float], None]


# --- measures -----------------------------------------------------------------------------
def coefficient_of_variation(values: Sequence[float] | np.ndarray) -> float:
    """Return the population coefficient of variation (std / mean) of `values` (0 if mean 0)."""
    arr = np.asarray(values, dtype="float64")
    if arr.size == 0 or arr.mean() == 0:
        return 0.0
    return float(arr.std() / arr.mean())


def max_min_ratio(values: Sequence[float] | np.ndarray) -> float:
    """Return max / min of `values` (inf when the smallest is 0)."""
    arr = np.asarray(values, dtype="float64")
    if arr.size == 0:
        return float("nan")
    return float("inf") if arr.min() <= 0 else float(arr.max() / arr.min())


def gini(values: Sequence[float] | np.ndarray) -> float:
    """Return the Gini coefficient of `values` (0 = all equal), from the sorted-values formula."""
    arr = np.sort(np.asarray(values, dtype="float64"))
    n = arr.size
    if n == 0 or arr.sum() == 0:
        return 0.0
    ranks = np.arange(1, n + 1)
    return float((2 * (ranks * arr).sum()) / (n * arr.sum()) - (n + 1) / n)


def polsby_popper(geometries: gpd.GeoSeries) -> np.ndarray:
    """Return the Polsby-Popper score 4πA/P² of each geometry (1 for a disc, π/4 for a square).

    The quantity of ``esda.shape.isoperimetric_quotient`` (checked against it by test),
    computed with shapely: importing esda (and libpysal) costs seconds of start-up.
    """
    geoms = np.asarray(geometries.array if hasattr(geometries, "array") else geometries)
    return np.asarray(4 * np.pi * shapely.area(geoms) / shapely.length(geoms) ** 2, "float64")


def convex_hull_ratio(geometries: gpd.GeoSeries) -> np.ndarray:
    """Return each geometry's area over the area of its convex hull (1 for a convex shape).

    The quantity of ``esda.shape.convex_hull_ratio`` (checked against it by test).
    """
    geoms = np.asarray(geometries.array if hasattr(geometries, "array") else geometries)
    return np.asarray(shapely.area(geoms) / shapely.area(shapely.convex_hull(geoms)), "float64")


def _n_parts(geometries: gpd.GeoSeries, tolerance_m: float = 0.5) -> np.ndarray:
    """Return the number of connected pieces of each geometry (gaps under `tolerance_m` closed)."""
    closed = geometries.buffer(tolerance_m / 2, join_style="mitre").buffer(
        -tolerance_m / 2, join_style="mitre"
    )
    closed = closed.where(~closed.is_empty, geometries)
    return shapely.get_num_geometries(closed.values).astype(int)


def with_workload(incidents: pd.DataFrame, weights: WorkloadWeights | None = None) -> pd.DataFrame:
    """Return `incidents` (located rows only) with a ``workload`` column (kept if present)."""
    located = incidents.dropna(subset=[schema.X, schema.Y])
    if WORKLOAD in located.columns:
        return located
    return located.assign(**{WORKLOAD: incident_workload(located, weights).to_numpy()})


@dataclass
class PlanEvaluation:
    """The measures of one plan.

    Attributes
    ----------
    beats
        One row per beat: workload, share, incidents, area, compactness, pieces, distances.
    summary
        Plan-level measures (see :func:`evaluate_plan`).
    incident_beats
        The beat of each evaluated incident (index of the incidents frame; "" when outside).
    """

    beats: pd.DataFrame
    summary: dict[str, object]
    incident_beats: pd.Series = field(repr=False)


#: Cell of the lookup grid that assigns incidents to a plan's beats (metres): coarse cells
#: build fast, and points in cells that cross a boundary are tested exactly anyway.
ASSIGN_CELL_M = 25.0


def _assign_points(plan: gpd.GeoDataFrame, incidents: pd.DataFrame) -> pd.Series:
    """Return the beat of `plan` (one row per beat) holding each incident ("" in none).

    The product's point-in-beat lookup (:class:`geodata.join.BeatIndex`) with no edge
    tolerance: a point inside a beat gets that beat and a point exactly on a shared edge the
    lowest beat id, as a ``geopandas.sjoin`` with ``intersects`` keeping the first match does,
    in a fraction of the time (no geometry object per incident).
    """
    if incidents.empty:
        return pd.Series("", index=incidents.index, dtype=object)
    index = BeatIndex(plan, cell_size_m=ASSIGN_CELL_M, tolerance_m=0.0)
    found = index.lookup(
        incidents[schema.X].to_numpy(dtype=float), incidents[schema.Y].to_numpy(dtype=float)
    ).beat_index
    ids = np.where(found >= 0, index.beat_ids[np.maximum(found, 0)], "")
    return pd.Series(ids, index=incidents.index, dtype=object)


def evaluate_plan(
    plan: gpd.GeoDataFrame,
    incidents: pd.DataFrame,
    *,
    stations: gpd.GeoDataFrame | None = None,
) -> PlanEvaluation:
    """Return the measures of `plan` for the workload of `incidents`.

    Parameters
    ----------
    plan
        Beats (one row, or several pieces, per ``beat``) with optional ``sector`` and
        ``district``, in a projected CRS in metres.
    incidents
        Incidents with ``x``/``y`` in the plan's CRS and a ``workload`` column (else one is
        computed from ``category`` with the default weights).
    stations
        Police stations with ``district`` (the response proxy measures the distance from each
        incident to its beat's district station); None skips that measure.

    Returns
    -------
    PlanEvaluation
        Per beat: ``workload``, ``share``, ``incidents``, ``area_km2``, ``polsby_popper``,
        ``convex_hull_ratio``, ``n_parts``, ``contiguous``, ``mean_dist_centre_m``,
        ``mean_dist_station_m``. Summary: ``n_beats``, ``workload_total``, ``workload_cv``,
        ``max_min_ratio``, ``gini``, ``median_polsby_popper``, ``median_convex_hull_ratio``,
        ``contiguous`` (every beat one piece), ``n_split_beats``, ``mean_dist_centre_m``,
        ``mean_dist_station_m``, ``n_sectors``, ``sector_sizes``, ``sector_workload_cv``,
        ``incidents``, ``incidents_outside`` (in the plan's bounding box but in no beat).

    Raises
    ------
    InputError
        If `plan` has no ``beat`` column or is not in a projected CRS.
    """
    if schema.BEAT not in plan.columns:
        msg = f"the plan has no {schema.BEAT!r} column (columns: {list(plan.columns)})"
        raise InputError(msg, column=schema.BEAT)
    if plan.crs is None or not plan.crs.is_projected:
        msg = "the plan must be in a projected CRS in metres (reproject it to the analysis CRS)"
        raise InputError(msg)
    incidents = with_workload(incidents)
    xmin, ymin, xmax, ymax = plan.total_bounds  # incidents far from the plan are not its business
    incidents = incidents[
        incidents[schema.X].between(xmin, xmax) & incidents[schema.Y].between(ymin, ymax)
    ]
    keep = [c for c in (schema.SECTOR, schema.DISTRICT) if c in plan.columns]
    beats = plan.dissolve(by=schema.BEAT, aggfunc="first", as_index=False)[
        [schema.BEAT, *keep, "geometry"]
    ]
    beat_of = _assign_points(beats, incidents)
    inside = beat_of != ""
    per = (
        incidents[inside]
        .assign(_beat=beat_of[inside])
        .groupby("_beat")[WORKLOAD]
        .agg(["sum", "size"])
    )
    out = pd.DataFrame(beats.drop(columns="geometry"))
    out["workload"] = out[schema.BEAT].map(per["sum"]).fillna(0.0).astype(float)
    out["incidents"] = out[schema.BEAT].map(per["size"]).fillna(0).astype(int)
    total = float(out["workload"].sum())
    out["share"] = out["workload"] / total if total > 0 else 0.0
    out["area_km2"] = beats.area.to_numpy() / 1e6
    out["polsby_popper"] = polsby_popper(beats.geometry)
    out["convex_hull_ratio"] = convex_hull_ratio(beats.geometry)
    out["n_parts"] = _n_parts(beats.geometry)
    out["contiguous"] = out["n_parts"] == 1
    # response proxy: incidents to the beat centre and to the district's station
    centres = beats.set_index(schema.BEAT).geometry.centroid
    xy = incidents.loc[inside, [schema.X, schema.Y]].to_numpy()
    cx = centres.x.reindex(beat_of[inside]).to_numpy()
    cy = centres.y.reindex(beat_of[inside]).to_numpy()
    d_centre = pd.Series(np.hypot(xy[:, 0] - cx, xy[:, 1] - cy), index=beat_of[inside].to_numpy())
    out["mean_dist_centre_m"] = out[schema.BEAT].map(d_centre.groupby(level=0).mean())
    out["mean_dist_station_m"] = np.nan
    d_station = pd.Series(dtype=float)
    if stations is not None and len(stations) and schema.DISTRICT in out.columns:
        st = stations.to_crs(plan.crs).drop_duplicates(schema.DISTRICT).set_index(schema.DISTRICT)
        district_of = out.set_index(schema.BEAT)[schema.DISTRICT].astype(str)
        dist = district_of.reindex(beat_of[inside]).to_numpy()
        sx = st.geometry.x.reindex(dist).to_numpy()
        sy = st.geometry.y.reindex(dist).to_numpy()
        d_station = pd.Series(
            np.hypot(xy[:, 0] - sx, xy[:, 1] - sy), index=beat_of[inside].to_numpy()
        )
        out["mean_dist_station_m"] = out[schema.BEAT].map(d_station.groupby(level=0).mean())
    sector_sizes: dict[str, int] = {}
    sector_cv = None
    if schema.SECTOR in out.columns and out[schema.SECTOR].notna().all():
        sector_sizes = {str(k): int(v) for k, v in out.groupby(schema.SECTOR).size().items()}
        sector_cv = coefficient_of_variation(out.groupby(schema.SECTOR)["workload"].sum())
    workloads = out["workload"].to_numpy()
    summary: dict[str, object] = {
        "n_beats": len(out),
        "workload_total": total,
        "workload_cv": coefficient_of_variation(workloads),
        "max_min_ratio": max_min_ratio(workloads),
        "gini": gini(workloads),
        "median_polsby_popper": float(out["polsby_popper"].median()),
        "median_convex_hull_ratio": float(out["convex_hull_ratio"].median()),
        "contiguous": bool(out["contiguous"].all()),
        "n_split_beats": int((~out["contiguous"]).sum()),
        "mean_dist_centre_m": float(d_centre.mean()) if len(d_centre) else None,
        "mean_dist_station_m": float(d_station.mean()) if len(d_station) else None,
        "n_sectors": len(sector_sizes),
        "sector_sizes": sector_sizes,
        "sector_workload_cv": sector_cv,
        "incidents": int(inside.sum()),
        "incidents_outside": int((~inside).sum()),
    }
    return PlanEvaluation(beats=out.reset_index(drop=True), summary=summary, incident_beats=beat_of)


#: Plan-level measures compared by :func:`compare_plans`, in display order.
COMPARED = (
    "n_beats",
    "workload_cv",
    "max_min_ratio",
    "gini",
    "median_polsby_popper",
    "median_convex_hull_ratio",
    "n_split_beats",
    "mean_dist_centre_m",
    "mean_dist_station_m",
    "n_sectors",
    "sector_workload_cv",
)


def evaluate_district(
    beats: gpd.GeoDataFrame,
    incidents: pd.DataFrame,
    district: str,
    *,
    stations: gpd.GeoDataFrame | None = None,
) -> PlanEvaluation:
    """Return the evaluation of one district's current beats.

    The incidents are those the join stored in the district's beats, so an incident on the
    district's edge counts where it was stored, not in a neighbouring district's beat.

    Parameters
    ----------
    beats
        The beat layer (``beat``, ``district``, polygons).
    incidents
        Incidents with ``beat``, ``x``, ``y`` and workload (:func:`with_workload`).
    district
        Canonical district id.
    stations
        Station points for the distance-to-station proxy.
    """
    mine = beats[beats[schema.DISTRICT] == district]
    return evaluate_plan(mine, district_incidents(beats, incidents, district), stations=stations)


def district_incidents(
    beats: gpd.GeoDataFrame, incidents: pd.DataFrame, district: str
) -> pd.DataFrame:
    """Return the incidents the join stored in a beat of `district` (of the `beats` layer)."""
    mine = beats.loc[beats[schema.DISTRICT] == district, schema.BEAT]
    return incidents[incidents[schema.BEAT].isin(mine)]


def compare_plans(before: PlanEvaluation, after: PlanEvaluation) -> pd.DataFrame:
    """Return the change in each measure from `before` to `after`, and the incidents that move.

    Returns
    -------
    DataFrame
        ``measure``, ``before``, ``after``, ``change`` (after - before) and ``change_pct``,
        plus a last row ``incidents_changing_beat`` (incidents whose beat id differs; beat ids
        are compared as given, so a renamed beat counts as a change).
    """
    rows = []
    for name in COMPARED:
        # the compared measures are numbers or None (see `evaluate_plan`)
        a_value = cast("float | None", before.summary.get(name))
        b_value = cast("float | None", after.summary.get(name))
        a = float(a_value) if a_value is not None else np.nan
        b = float(b_value) if b_value is not None else np.nan
        pct = (b - a) / a * 100 if a not in (0.0,) and np.isfinite(a) else np.nan
        rows.append({"measure": name, "before": a, "after": b, "change": b - a, "change_pct": pct})
    common = before.incident_beats.index.intersection(after.incident_beats.index)
    moved = int((before.incident_beats[common] != after.incident_beats[common]).sum())
    rows.append(
        {
            "measure": "incidents_changing_beat",
            "before": float(len(common)),
            "after": float(moved),
            "change": float(moved),
            "change_pct": moved / len(common) * 100 if len(common) else np.nan,
        }
    )
    return pd.DataFrame(rows)


# --- units --------------------------------------------------------------------------------
@dataclass
class Units:
    """Planning units and their adjacency.

    Attributes
    ----------
    frame
        One row per unit: ``unit`` (0..n-1), ``district``, ``beat`` (current beat by largest
        overlap), ``workload``, ``incidents``, ``area_m2``, ``perimeter_m``, ``cx``, ``cy``,
        geometry (a grid cell clipped to its district, one connected piece).
    edges
        ``i``, ``j`` (i < j), ``shared_m`` (length of the common boundary) and ``bridge`` (True
        for the links added between parts of a district that touch nowhere, e.g. across water).
    cell_size_m
        Side of the grid cells.
    """

    frame: gpd.GeoDataFrame
    edges: pd.DataFrame
    cell_size_m: float

    def subset(self, mask: np.ndarray | pd.Series) -> Units:
        """Return the units where `mask` holds, renumbered 0..m-1, with their edges."""
        mask = np.asarray(mask, dtype=bool)
        old = np.flatnonzero(mask)
        new_of = np.full(len(self.frame), -1)
        new_of[old] = np.arange(len(old))
        frame = self.frame.iloc[old].copy()
        frame[UNIT] = np.arange(len(old))
        frame = frame.reset_index(drop=True)
        e = self.edges
        keep = mask[e["i"].to_numpy()] & mask[e["j"].to_numpy()]
        edges = e[keep].assign(i=new_of[e["i"][keep]], j=new_of[e["j"][keep]])
        return Units(frame=frame, edges=edges.reset_index(drop=True), cell_size_m=self.cell_size_m)


def build_units(
    beats: gpd.GeoDataFrame,
    incidents: pd.DataFrame,
    *,
    cell_size_m: float = 300.0,
    districts: Sequence[str] | None = None,
) -> Units:
    """Return grid-cell units clipped to the districts, with workload and current beat.

    Parameters
    ----------
    beats
        The current beats (``beat``, ``district``), projected CRS in metres.
    incidents
        Incidents with ``x``/``y`` and ``workload`` (or ``category``).
    cell_size_m
        Side of the grid cells in metres (a few hundred).
    districts
        Only these districts (None: all).

    Raises
    ------
    InputError
        If `cell_size_m` is not positive or a named district has no beats.
    """
    if not cell_size_m > 0:
        msg = f"cell_size_m must be > 0 metres, got {cell_size_m}"
        raise InputError(msg)
    if schema.DISTRICT not in beats.columns:
        msg = f"the beats have no {schema.DISTRICT!r} column"
        raise InputError(msg, column=schema.DISTRICT)
    beats = beats[[schema.BEAT, schema.DISTRICT, "geometry"]].copy()
    beats[schema.DISTRICT] = beats[schema.DISTRICT].astype(str)  # a missing one is "<NA>"
    if districts is not None:
        wanted = {str(d) for d in districts}
        missing = wanted - set(beats[schema.DISTRICT])
        if missing:
            known = sorted(d for d in beats[schema.DISTRICT].unique() if schema.id_text(d))
            msg = f"no beats in district(s) {sorted(missing)}; districts are {known}"
            raise InputError(msg, column=schema.DISTRICT)
        beats = beats[beats[schema.DISTRICT].isin(wanted)]
    xmin, ymin, xmax, ymax = beats.total_bounds
    x0 = np.floor(xmin / cell_size_m) * cell_size_m
    y0 = np.floor(ymin / cell_size_m) * cell_size_m
    nx_, ny_ = int(np.ceil((xmax - x0) / cell_size_m)), int(np.ceil((ymax - y0) / cell_size_m))
    gx, gy = (g.ravel() for g in np.meshgrid(np.arange(nx_), np.arange(ny_), indexing="ij"))
    cells = gpd.GeoDataFrame(
        {"cell": np.arange(gx.size)},
        geometry=shapely.box(
            x0 + gx * cell_size_m,
            y0 + gy * cell_size_m,
            x0 + (gx + 1) * cell_size_m,
            y0 + (gy + 1) * cell_size_m,
        ),
        crs=beats.crs,
    )
    pieces = gpd.overlay(cells, beats, how="intersection", keep_geom_type=True)
    pieces["_area"] = pieces.area
    pieces = pieces[pieces["_area"] > 1.0]
    # the current beat of a (cell, district) unit: the beat with the largest overlap
    main = pieces.sort_values(["cell", schema.DISTRICT, "_area"], ascending=[True, True, False])
    main = main.drop_duplicates(["cell", schema.DISTRICT]).set_index(["cell", schema.DISTRICT])
    units = pieces.dissolve(by=["cell", schema.DISTRICT], as_index=False)[
        ["cell", schema.DISTRICT, "geometry"]
    ]
    keys = pd.MultiIndex.from_arrays([units["cell"], units[schema.DISTRICT]])
    units[schema.BEAT] = main[schema.BEAT].reindex(keys).to_numpy()
    units = units.explode(index_parts=False, ignore_index=True)
    units = units[units.geom_type == "Polygon"].reset_index(drop=True)
    units[UNIT] = np.arange(len(units))
    units["area_m2"] = units.area
    units["perimeter_m"] = units.length
    cent = units.geometry.centroid
    units["cx"], units["cy"] = cent.x.to_numpy(), cent.y.to_numpy()
    # workload per unit
    incidents = with_workload(incidents)
    points = gpd.GeoDataFrame(
        {WORKLOAD: incidents[WORKLOAD].to_numpy()},
        geometry=gpd.points_from_xy(incidents[schema.X], incidents[schema.Y]),
        crs=beats.crs,
    )
    hit = gpd.sjoin(points, units[[UNIT, "geometry"]], how="inner", predicate="intersects")
    hit = hit[~hit.index.duplicated(keep="first")]
    per = hit.groupby(UNIT)[WORKLOAD].agg(["sum", "size"])
    units["workload"] = units[UNIT].map(per["sum"]).fillna(0.0).astype(float)
    units["incidents"] = units[UNIT].map(per["size"]).fillna(0).astype(int)
    edges = _unit_edges(units)
    units = units[
        [UNIT, schema.DISTRICT, schema.BEAT, "cell", "workload", "incidents", "area_m2",
         "perimeter_m", "cx", "cy", "geometry"]
    ]  # fmt: skip
    return Units(frame=units, edges=edges, cell_size_m=float(cell_size_m))


def _unit_edges(units: gpd.GeoDataFrame, *, min_shared_m: float = 1.0) -> pd.DataFrame:
    left, right = units.sindex.query(units.geometry, predicate="intersects")
    keep = left < right
    left, right = left[keep], right[keep]
    geoms = units.geometry.to_numpy()
    shared = shapely.length(
        shapely.intersection(shapely.boundary(geoms[left]), shapely.boundary(geoms[right]))
    )
    ok = shared >= min_shared_m
    edges = pd.DataFrame({"i": left[ok], "j": right[ok], "shared_m": shared[ok], "bridge": False})
    # link the pieces of each district that touch nowhere (islands, across water), nearest first
    extra = []
    district = units[schema.DISTRICT].to_numpy()
    for d in np.unique(district):
        idx = np.flatnonzero(district == d)
        graph = nx.Graph()
        graph.add_nodes_from(idx.tolist())
        sub = edges[np.isin(edges["i"], idx)]
        graph.add_edges_from(zip(sub["i"].tolist(), sub["j"].tolist(), strict=True))
        comps = sorted(nx.connected_components(graph), key=len, reverse=True)
        main = list(comps[0])
        for comp in comps[1:]:
            comp_idx = np.array(sorted(comp))
            dist = shapely.distance(geoms[comp_idx][:, None], geoms[np.array(main)][None, :])
            a, b = np.unravel_index(np.argmin(dist), dist.shape)
            i, j = sorted((int(comp_idx[a]), int(main[b])))
            extra.append({"i": i, "j": j, "shared_m": 0.0, "bridge": True})
            main.extend(comp_idx.tolist())
    if extra:
        edges = pd.concat([edges, pd.DataFrame(extra)], ignore_index=True)
    return edges.astype({"i": int, "j": int, "shared_m": float, "bridge": bool})


def plan_from_units(
    units: Units, labels: Sequence[object] | np.ndarray, *, sectors: dict | None = None
) -> gpd.GeoDataFrame:
    """Return the plan whose beat ``labels[i]`` holds unit ``i`` (beats dissolved from units).

    Parameters
    ----------
    units
        The units.
    labels
        Beat id of each unit.
    sectors
        Optional ``{beat: sector}``; the ``sector`` column is empty without it.
    """
    frame = units.frame[[schema.DISTRICT, "geometry"]].assign(
        **{schema.BEAT: np.asarray(labels).astype(str)}
    )
    plan = frame.dissolve(by=schema.BEAT, aggfunc="first", as_index=False)
    plan[schema.SECTOR] = plan[schema.BEAT].map(sectors or {})
    return plan[[schema.BEAT, schema.SECTOR, schema.DISTRICT, "geometry"]]


# --- the solver ---------------------------------------------------------------------------
@dataclass(eq=False, repr=False)
class BalancedBeats:
    """Partition units into K contiguous, workload-balanced, compact beats.

    A balanced power diagram of the unit centres (capacitated k-means from a seeded k-means
    start; cut-off pieces repaired so each beat is connected) followed by a local search that
    moves boundary units between neighbouring beats while every beat stays connected (a unit
    that is an articulation point of its beat's unit graph never moves).
    The objective to minimise is

        ``balance_weight * sum_k ((W_k - T) / T)^2 + mean_k 1 / PP_k``

    with ``W_k`` the beat's workload, ``T`` the mean and ``PP_k`` its Polsby-Popper score on the
    union of its units (kept exactly, incrementally, from unit areas, perimeters and shared
    boundary lengths). A start whose CV meets `target_cv` is then polished: boundary moves that
    only make beats more compact, accepted while the CV stays within the target. With
    ``minimal_change``, the search starts from `initial` (the current beats) and repeatedly makes
    the boundary move that most lowers the whole objective among those that improve balance,
    stopping as soon as the workload CV is at most `target_cv`.

    Parameters
    ----------
    workload, area_m2, perimeter_m, xy
        Per unit: workload, area, perimeter (m) and centre coordinates (n x 2, m).
    edges
        ``(i, j, shared_m)`` rows: adjacent units and the length of their common boundary.
    n_beats
        K, the number of beats.
    initial
        Starting labels 0..K-1 (minimal-change mode; optional otherwise).
    minimal_change
        Start from `initial` and move only boundary units until `target_cv` is met.
    target_cv
        The balance target: minimal-change mode stops as soon as the workload CV is at most
        this; the free mode keeps the most compact start that meets it.
    balance_weight
        Weight of the balance term; None cycles over the starts through weights at which a
        workload CV of 15%, 25%, 10% or 35% costs as much as the mean 1/PP of square beats
        (4/π), and keeps the most compact result (median Polsby-Popper) whose CV meets
        `target_cv` (else the best balanced). Measured on Chicago districts, this keeps the CV
        near 0.03-0.06 while the beats stay about as compact as the current ones.
    n_starts
        Region-growing restarts (the best after local search is kept).
    max_passes
        Passes of the local search per start.
    time_limit_s
        Stop restarting after this many seconds (the current start always finishes).
    random_state
        Seed of every random choice.
    """

    workload: np.ndarray
    area_m2: np.ndarray
    perimeter_m: np.ndarray
    xy: np.ndarray
    edges: np.ndarray
    n_beats: int
    _: KW_ONLY
    initial: np.ndarray | None = None
    minimal_change: bool = False
    target_cv: float = 0.10
    balance_weight: float | None = None
    n_starts: int = 16
    max_passes: int = 60
    time_limit_s: float = 40.0
    random_state: int = 0

    # -- set-up -------------------------------------------------------------------------
    def _prepare(self) -> None:
        n = len(self.workload)
        k = int(self.n_beats)
        if k < 1 or k > n:
            msg = f"n_beats must be between 1 and the number of units ({n}), got {k}"
            raise ValueError(msg)
        self._n, self._k = n, k
        self._w = np.asarray(self.workload, dtype=float)
        self._a = np.asarray(self.area_m2, dtype=float)
        self._p = np.asarray(self.perimeter_m, dtype=float)
        self._nbrs: list[dict[int, float]] = [{} for _ in range(n)]
        for i, j, s in np.asarray(self.edges, dtype=float).reshape(-1, 3):
            i, j = int(i), int(j)
            self._nbrs[i][j] = self._nbrs[i].get(j, 0.0) + s
            self._nbrs[j][i] = self._nbrs[j].get(i, 0.0) + s
        graph = nx.Graph()
        graph.add_nodes_from(range(n))
        graph.add_edges_from((i, j) for i in range(n) for j in self._nbrs[i] if i < j)
        if not nx.is_connected(graph):
            msg = "the units are not connected: every unit needs a path to every other"
            raise ValueError(msg)
        self._graph = graph
        self._target = self._w.sum() / k if self._w.sum() > 0 else 1.0
        bw = self.balance_weight
        self._bw = bw if bw is not None else (4 / np.pi) / (k * 0.15**2)

    def _stats(self, labels: np.ndarray) -> None:
        k = self._k
        self._W = np.bincount(labels, weights=self._w, minlength=k).astype(float)
        self._A = np.bincount(labels, weights=self._a, minlength=k).astype(float)
        inner = np.zeros(k)
        for i in range(self._n):
            for j, s in self._nbrs[i].items():
                if labels[j] == labels[i]:
                    inner[labels[i]] += s
        # each internal boundary counted twice above: perimeter = sum(p) - 2 * shared
        self._P = np.bincount(labels, weights=self._p, minlength=k) - inner
        self._members = [set(np.flatnonzero(labels == c).tolist()) for c in range(k)]
        self._art: list[set[int] | None] = [None] * k

    def _compact(self, area: float, perim: float) -> float:
        return perim * perim / (4 * np.pi * area) if area > 0 else 0.0

    def _objective(self) -> float:
        dev = (self._W - self._target) / self._target
        comp = np.mean([self._compact(a, p) for a, p in zip(self._A, self._P, strict=True)])
        return float(self._bw * (dev**2).sum() + comp)

    def _articulation(self, c: int) -> set[int]:
        art = self._art[c]
        if art is None:
            art = set(nx.articulation_points(self._graph.subgraph(self._members[c])))
            self._art[c] = art
        return art

    def _delta(self, labels: np.ndarray, i: int, b: int) -> tuple[float, float, float]:
        a = labels[i]
        to_a = sum(s for j, s in self._nbrs[i].items() if labels[j] == a)
        to_b = sum(s for j, s in self._nbrs[i].items() if labels[j] == b)
        pa = self._P[a] - self._p[i] + 2 * to_a
        pb = self._P[b] + self._p[i] - 2 * to_b
        aa, ab = self._A[a] - self._a[i], self._A[b] + self._a[i]
        t = self._target
        wa, wb = self._W[a] - self._w[i], self._W[b] + self._w[i]
        d_bal = (
            (wa - t) ** 2 + (wb - t) ** 2 - (self._W[a] - t) ** 2 - (self._W[b] - t) ** 2
        ) / t**2
        d_comp = (
            self._compact(aa, pa)
            + self._compact(ab, pb)
            - self._compact(self._A[a], self._P[a])
            - self._compact(self._A[b], self._P[b])
        ) / self._k
        return self._bw * d_bal + d_comp, d_bal, pa - self._P[a] + pb - self._P[b]

    def _move(self, labels: np.ndarray, i: int, b: int) -> None:
        a = labels[i]
        to_a = sum(s for j, s in self._nbrs[i].items() if labels[j] == a)
        to_b = sum(s for j, s in self._nbrs[i].items() if labels[j] == b)
        self._P[a] += -self._p[i] + 2 * to_a
        self._P[b] += self._p[i] - 2 * to_b
        self._A[a] -= self._a[i]
        self._A[b] += self._a[i]
        self._W[a] -= self._w[i]
        self._W[b] += self._w[i]
        self._members[a].discard(i)
        self._members[b].add(i)
        self._art[a] = self._art[b] = None
        labels[i] = b

    def _movable(self, labels: np.ndarray, i: int) -> bool:
        a = labels[i]
        return len(self._members[a]) > 1 and i not in self._articulation(a)

    # -- construction and search --------------------------------------------------------
    def _grow(self, rng: np.random.Generator) -> np.ndarray:
        """Return a starting partition: a balanced power diagram of the unit centres.

        Units go to the centre minimising ``|x - c_k|^2 - lambda_k``; the offsets ``lambda_k``
        grow for underloaded beats until the workloads even out (capacitated k-means), which
        gives compact, nearly convex beats. Pieces cut off from their beat are then given to
        the neighbouring beat they share most boundary with, so every beat is connected.
        """
        k = self._k
        xy = np.asarray(self.xy, dtype=float)
        weight = self._w + 1e-3 * self._a / max(self._a.mean(), 1.0)
        from sklearn.cluster import KMeans  # imported here: ~1 s of start-up

        km = KMeans(n_clusters=k, n_init=1, random_state=int(rng.integers(2**31 - 1)))
        km.fit(xy, sample_weight=weight)
        centres = km.cluster_centers_.copy()
        offsets = np.zeros(k)
        scale = float(np.sum(self._a)) / k / np.pi  # squared radius of a disc-shaped beat
        best, best_cv = None, np.inf
        for step in range(150):
            d2 = ((xy[:, None, :] - centres[None, :, :]) ** 2).sum(axis=2) - offsets[None, :]
            labels = d2.argmin(axis=1)
            load = np.bincount(labels, weights=self._w, minlength=k)
            cv = coefficient_of_variation(load)
            if cv < best_cv and np.all(np.bincount(labels, minlength=k) > 0):
                best, best_cv = labels.copy(), cv
            offsets += 0.5 * scale * (self._target - load) / self._target / (1 + step / 30)
            for c in range(k):
                members = labels == c
                if members.any():
                    w = self._a[members]
                    centres[c] = (xy[members] * w[:, None]).sum(axis=0) / w.sum()
        labels = best if best is not None else km.labels_.astype(int)
        return self._repair(labels)

    def _repair(self, labels: np.ndarray) -> np.ndarray:
        """Give every piece cut off from its beat's largest piece to a neighbouring beat."""
        labels = labels.copy()
        for _ in range(self._n):
            changed = False
            present = np.unique(labels)
            for c in present:
                members = np.flatnonzero(labels == c).tolist()
                comps = sorted(
                    nx.connected_components(self._graph.subgraph(members)),
                    key=lambda comp: (-len(comp), min(comp)),
                )
                for comp in comps[1:]:
                    shared: dict[int, float] = {}
                    for u in comp:
                        for j, s in self._nbrs[u].items():
                            if labels[j] != c:
                                shared[int(labels[j])] = shared.get(int(labels[j]), 0.0) + s + 1e-6
                    if shared:
                        target = max(sorted(shared), key=lambda b: shared[b])
                        for u in comp:
                            labels[u] = target
                        changed = True
            if not changed:
                break
        # a beat that vanished gets the unit farthest from its own beat's core (rare)
        for c in range(self._k):
            if not np.any(labels == c):
                sizes = np.bincount(labels, minlength=self._k)
                big = int(sizes.argmax())
                big_units = np.flatnonzero(labels == big)
                leaf = [u for u in big_units if sum(labels[j] == big for j in self._nbrs[u]) <= 1]
                labels[leaf[0] if leaf else big_units[0]] = c
        return labels

    def _boundary(self, labels: np.ndarray) -> list[int]:
        """Return the units with a neighbour in another beat, in unit order."""
        return [i for i in range(self._n) if any(labels[j] != labels[i] for j in self._nbrs[i])]

    def _sweep(
        self,
        labels: np.ndarray,
        rng: np.random.Generator,
        deadline: float,
        change: Callable[[np.ndarray, int, int], float | None],
    ) -> None:
        """Move boundary units, in random order, to the neighbouring beat of least `change`.

        ``change(labels, unit, beat)`` is what moving `unit` to `beat` does to the quantity
        minimised (None: the move is not allowed); a unit moves only when it falls. Passes
        repeat until one moves nothing or `deadline` (:func:`time.perf_counter`) is past.
        """
        for _ in range(self.max_passes):
            improved = 0
            for i in rng.permutation(self._boundary(labels)):
                i = int(i)
                cands = sorted({int(labels[j]) for j in self._nbrs[i]} - {int(labels[i])})
                if not cands or not self._movable(labels, i):
                    continue
                best, best_b = -1e-9, -1
                for b in cands:
                    d = change(labels, i, b)
                    if d is not None and d < best:
                        best, best_b = d, b
                if best_b >= 0:
                    self._move(labels, i, best_b)
                    improved += 1
            if not improved or time.perf_counter() > deadline:
                break

    def _search(self, labels: np.ndarray, rng: np.random.Generator, deadline: float) -> None:
        """Move boundary units while the objective falls."""
        self._sweep(labels, rng, deadline, lambda labels, i, b: self._delta(labels, i, b)[0])

    def _polish(self, labels: np.ndarray, rng: np.random.Generator, deadline: float) -> None:
        """Move boundary units that make beats more compact while the CV stays on target."""
        self._sweep(labels, rng, deadline, self._compactness_change)

    def _compactness_change(self, labels: np.ndarray, i: int, b: int) -> float | None:
        """Return the compactness change of moving unit `i` to beat `b`; None off the CV target."""
        d_all, d_bal, _ = self._delta(labels, i, b)
        d_comp = d_all - self._bw * d_bal
        if d_comp >= -1e-9:  # no gain: the CV need not be checked
            return None
        loads = self._W.copy()
        loads[int(labels[i])] -= self._w[i]
        loads[b] += self._w[i]
        return d_comp if loads.std() / self._target <= self.target_cv else None

    def _cv(self) -> float:
        return coefficient_of_variation(self._W)

    def _minimal(self, labels: np.ndarray) -> None:
        """Make balance-improving boundary moves, best objective first, until the CV target."""
        while self._cv() > self.target_cv:
            best = (0.0, -1, -1)  # (objective change, unit, beat)
            for i in range(self._n):
                a = labels[i]
                cands = {int(labels[j]) for j in self._nbrs[i]} - {int(a)}
                if not cands or not self._movable(labels, i):
                    continue
                for b in sorted(cands):
                    d_all, d_bal, _ = self._delta(labels, i, b)
                    if d_bal < -1e-12 and d_all < best[0]:
                        best = (d_all, i, b)
            if best[1] < 0:
                break
            self._move(labels, best[1], best[2])

    def solve(self, progress: Progress | None = None) -> BalancedBeats:
        """Find the beats; sets ``labels_`` (beat 0..K-1 of each unit) and ``objective_``.

        Parameters
        ----------
        progress
            Called with a message and the fraction done (0-1) after each start.
        """
        self._prepare()
        started = time.perf_counter()
        deadline = started + float(self.time_limit_s)
        rng = np.random.default_rng(self.random_state)
        if self.minimal_change:
            if self.initial is None:
                msg = "minimal_change needs the initial (current) labels"
                raise ValueError(msg)
            labels = np.asarray(self.initial, dtype=int).copy()
            self._stats(labels)
            self._minimal(labels)
            self.labels_ = labels
            self.objective_ = self._objective()
            self.n_starts_done_ = 1
        else:
            best_labels, best_obj, best_key = None, np.inf, (2, 0.0)
            done = 0
            refs = _BALANCE_CV_REFS if self.balance_weight is None else (None,)
            for start in range(max(1, int(self.n_starts))):
                ref = refs[start % len(refs)]
                if ref is not None:
                    self._bw = (4 / np.pi) / (self._k * ref**2)
                labels = self._grow(rng)
                self._stats(labels)
                self._search(labels, rng, deadline)
                if self._cv() <= self.target_cv:
                    self._polish(labels, rng, deadline)
                obj = self._objective()
                cv = self._cv()
                pp = float(np.median(4 * np.pi * self._A / np.maximum(self._P, 1e-9) ** 2))
                # the most compact plan that meets the balance target, else the best balanced
                key = (0, -pp) if cv <= self.target_cv else (1, cv)
                done += 1
                if key < best_key:
                    best_labels, best_obj, best_key = labels.copy(), obj, key
                if progress:
                    progress(
                        f"start {start + 1}: workload CV {cv:.3f}, median Polsby-Popper {pp:.3f}",
                        done / self.n_starts,
                    )
                if time.perf_counter() > deadline:
                    break
            if best_labels is None:  # the first start always beats the initial key
                msg = "no start finished"
                raise RuntimeError(msg)
            self.labels_ = best_labels
            self.objective_ = best_obj
            self.n_starts_done_ = done
        self._stats(self.labels_)
        self.workload_cv_ = self._cv()
        self.seconds_ = time.perf_counter() - started
        return self


def apportion_beats(workload: pd.Series, total: int, *, minimum: int = 1) -> pd.Series:
    """Return how many of `total` beats each district gets, in proportion to its workload.

    Largest-remainder (Hamilton) apportionment with at least `minimum` beats per district, so
    a city-wide plan nested in districts can balance beats across districts too.

    Parameters
    ----------
    workload
        Workload per district (index: district id).
    total
        Beats to share out.
    minimum
        Fewest beats a district gets.

    Without any workload (an empty period) the beats are shared out evenly.

    Raises
    ------
    ValueError
        If `total` is smaller than ``minimum * len(workload)``.
    """
    n = len(workload)
    if total < minimum * n:
        msg = f"{total} beats cannot give {n} districts at least {minimum} each"
        raise ValueError(msg)
    weight = workload.astype(float).clip(lower=0.0)
    if not float(weight.sum()) > 0.0:  # no workload at all (or NaN): share out evenly
        weight = pd.Series(1.0, index=workload.index)
    share = weight / float(weight.sum()) * (total - minimum * n)
    seats = np.floor(share).astype(int) + minimum
    left = total - int(seats.sum())
    order = (share - np.floor(share)).sort_values(ascending=False, kind="stable").index
    seats.loc[order[:left]] += 1
    return seats


# --- sectors ------------------------------------------------------------------------------
def group_sectors(
    adjacency: dict[object, set[object]],
    workload: dict[object, float],
    *,
    min_size: int = 3,
    max_size: int = 5,
    n_sectors: int | None = None,
    n_tries: int = 300,
    random_state: int = 0,
) -> dict[object, int]:
    """Group beats into contiguous sectors of `min_size`-`max_size` beats, balancing workload.

    Random region growing (sizes capped) repeated `n_tries` times; the grouping with every
    sector connected, every size in range and the smallest sector-workload CV wins. Fewer than
    `min_size` beats make one sector.

    Parameters
    ----------
    adjacency
        ``{beat: set of neighbouring beats}``.
    workload
        ``{beat: workload}``.
    min_size, max_size
        Fewest and most beats in a sector.
    n_sectors
        The number of sectors (e.g. the district's current count); None or a count that the
        size limits do not allow picks about one sector per four beats.
    n_tries
        Random restarts.
    random_state
        Seed.

    Returns
    -------
    dict
        ``{beat: sector number 0..S-1}``.
    """
    beats = sorted(adjacency, key=str)
    n = len(beats)
    if n <= max_size or n < 2 * min_size:
        return dict.fromkeys(beats, 0)
    lowest, highest = int(np.ceil(n / max_size)), n // min_size
    if n_sectors is None or not lowest <= n_sectors <= highest:
        n_sectors = max(lowest, min(round(n / 4), highest))
    rng = np.random.default_rng(random_state)
    best: tuple[float, dict[object, int]] | None = None
    for _ in range(n_tries):
        seeds = list(rng.choice(n, size=n_sectors, replace=False))
        label = {beats[s]: c for c, s in enumerate(seeds)}
        size = [1] * n_sectors
        load = [workload.get(beats[s], 0.0) for s in seeds]
        stuck = False
        while len(label) < n:
            options = [
                (load[c] + rng.random() * 1e-9, c, b)
                for b in beats
                if b not in label
                for c in {label[x] for x in adjacency[b] if x in label}
                if size[c] < max_size
            ]
            if not options:
                stuck = True
                break
            _, c, b = min(options, key=lambda o: (o[0], o[1], str(o[2])))
            label[b] = c
            size[c] += 1
            load[c] += workload.get(b, 0.0)
        if stuck or min(size) < min_size:
            continue
        cv = coefficient_of_variation(load)
        if best is None or cv < best[0]:
            best = (cv, label)
    if best is None:  # no valid grouping found: nearest to valid, in one sector per ~4 beats
        return {b: i * n_sectors // n for i, b in enumerate(beats)}
    return best[1]


# --- the whole proposal ---------------------------------------------------------------------
@dataclass(frozen=True)
class SearchOptions:
    """How a proposal searches: grid, mode, balance target, seed and budget.

    One value serves :func:`propose_beats` and :func:`propose_city` (which passes it on to each
    district), the command line and the Beat planning page.

    Attributes
    ----------
    cell_size_m
        Side of the grid cells (m).
    minimal_change
        Start from the current beats and move only boundary units until `target_cv`.
    target_cv
        The balance target of minimal-change mode.
    random_state
        Seed; the same seed gives the same plan.
    n_starts, time_limit_s
        Restarts of the free mode and its time budget (s).
    """

    cell_size_m: float = 300.0
    minimal_change: bool = False
    target_cv: float = 0.10
    random_state: int = 0
    n_starts: int = 16
    time_limit_s: float = 40.0

    def parameters(self, cell_size_m: float) -> dict[str, Any]:
        """Return the options a proposal reports, with the `cell_size_m` its units used."""
        return {
            "cell_size_m": cell_size_m,
            "minimal_change": bool(self.minimal_change),
            "target_cv": self.target_cv,
            "random_state": self.random_state,
            "n_starts": self.n_starts,
        }


@dataclass
class Proposal:
    """A proposed plan for one district (or several), with the current plan rebuilt from units.

    Attributes
    ----------
    units
        The units with ``beat`` (current), ``proposed`` and ``moved``.
    current_plan, proposed_plan
        Both dissolved from the same units, so they are measured alike.
    current, proposed
        Their evaluations.
    comparison
        :func:`compare_plans` of the two.
    parameters
        The parameters of the run (stored with a saved plan).
    seconds
        ``{"units": ..., "current": ..., "proposed": ...}`` wall-clock seconds.
    """

    units: gpd.GeoDataFrame
    current_plan: gpd.GeoDataFrame
    proposed_plan: gpd.GeoDataFrame
    current: PlanEvaluation
    proposed: PlanEvaluation
    comparison: pd.DataFrame
    parameters: dict[str, object]
    seconds: dict[str, float]

    @classmethod
    def of(
        cls,
        units: gpd.GeoDataFrame,
        plans: tuple[gpd.GeoDataFrame, gpd.GeoDataFrame],
        evaluations: tuple[PlanEvaluation, PlanEvaluation],
        parameters: dict[str, object],
        seconds: dict[str, float],
    ) -> Proposal:
        """Return the proposal of `plans` (current, proposed) with their `evaluations` compared."""
        current, proposed = evaluations
        return cls(
            units=units,
            current_plan=plans[0],
            proposed_plan=plans[1],
            current=current,
            proposed=proposed,
            comparison=compare_plans(current, proposed),
            parameters=parameters,
            seconds=seconds,
        )

    def to_dict(self) -> dict[str, object]:
        """Return the JSON output of ``plan propose`` (``current``, ``proposed``, changes)."""
        seconds_current = self.seconds["units"] + self.seconds["current"]
        current = dict(self.current.summary, seconds=seconds_current)
        proposed = dict(self.proposed.summary, seconds=self.seconds["proposed"])
        return {
            "parameters": self.parameters,
            "current": jsonable(current, digits=6),
            "proposed": jsonable(proposed, digits=6),
            "units": len(self.units),
            "units_moved": int(self.units["moved"].sum()),
            "incidents_changing_beat": int(
                self.comparison.set_index("measure").loc["incidents_changing_beat", "after"]
            ),
            "workload_cv_cut_pct": _cut(current["workload_cv"], proposed["workload_cv"]),
            "beats": jsonable_records(self.proposed.beats, digits=6),
        }


def _cut(before: object, after: object) -> float | None:
    b, a = float(before), float(after)  # type: ignore[arg-type]
    return None if b == 0 else round((b - a) / b * 100, 2)


def _relabel(units: Units, labels: np.ndarray, district: str) -> np.ndarray:
    """Name proposed beats after the current beat they overlap most (by workload+area)."""
    current = units.frame[schema.BEAT].to_numpy()
    names = np.unique(current)
    k = int(labels.max()) + 1
    score = np.zeros((k, len(names)))
    col = {b: c for c, b in enumerate(names)}
    share = units.frame["area_m2"].to_numpy() / units.frame["area_m2"].sum()
    for lab, cur, s in zip(labels, current, share, strict=True):
        score[lab, col[cur]] += s
    from scipy.optimize import linear_sum_assignment

    rows, cols = linear_sum_assignment(-score)
    name = {int(r): str(names[c]) for r, c in zip(rows, cols, strict=True)}
    extra = 1
    for lab in range(k):
        if lab not in name:
            name[lab] = f"{district}N{extra}"
            extra += 1
    return np.array([name[int(v)] for v in labels], dtype=object)


def _beat_adjacency(units: Units, labels: np.ndarray) -> dict[object, set[object]]:
    adj: dict[object, set[object]] = {b: set() for b in np.unique(labels)}
    e = units.edges
    for i, j in zip(e["i"].to_numpy(), e["j"].to_numpy(), strict=True):
        a, b = labels[i], labels[j]
        if a != b:
            adj[a].add(b)
            adj[b].add(a)
    return adj


def _sector_names(
    units: Units, labels: np.ndarray, district: str, random_state: int, n_sectors: int | None
) -> dict[str, str]:
    workload = pd.Series(units.frame["workload"].to_numpy()).groupby(labels).sum().to_dict()
    groups = group_sectors(
        _beat_adjacency(units, labels), workload, n_sectors=n_sectors, random_state=random_state
    )
    return {str(b): f"{district}{g + 1}" for b, g in groups.items()}


def _done(proposal: Proposal, progress: Progress | None) -> Proposal:
    """Return `proposal` after telling `progress` the search is done."""
    if progress:
        progress("done", 1.0)
    return proposal


def propose_beats(
    beats: gpd.GeoDataFrame,
    incidents: pd.DataFrame,
    *,
    district: str,
    n_beats: int | None = None,
    search: SearchOptions | None = None,
    stations: gpd.GeoDataFrame | None = None,
    units: Units | None = None,
    progress: Progress | None = None,
) -> Proposal:
    """Propose `n_beats` contiguous, balanced, compact beats (and sectors) for one district.

    The beats are grouped into sectors of 3-5 contiguous beats with balanced workload, as many
    sectors as the district has now when the size limits allow it.

    The current plan is rebuilt from the same units (each unit in the beat it overlaps most),
    so the two plans are measured alike: same workload per unit, same staircase cell edges.

    Parameters
    ----------
    beats
        The current beats with ``beat``, ``sector``, ``district``.
    incidents
        Incidents with ``x``/``y`` and ``workload`` (or ``category``) over the chosen period.
    district
        The district id (e.g. ``"11"``).
    n_beats
        K; None keeps the district's current number of beats.
    search
        Grid, mode, balance target, seed and budget (default: ``SearchOptions()``).
    stations
        Police stations (for the distance-to-station measure).
    units
        Prebuilt units for this district (e.g. cached by the dashboard); built when None.
    progress
        Called with a message and the fraction done.

    Raises
    ------
    InputError
        If the district has no beats or `n_beats` is out of range.
    """
    search = search or SearchOptions()
    minimal_change, random_state = search.minimal_change, search.random_state
    t0 = time.perf_counter()
    if progress:
        progress("building units", 0.0)
    if units is None:
        units = build_units(beats, incidents, cell_size_m=search.cell_size_m, districts=[district])
    if not (units.frame[schema.DISTRICT] == district).all():
        units = units.subset(units.frame[schema.DISTRICT] == district)
    frame = units.frame
    current_labels = frame[schema.BEAT].to_numpy()
    k_current = len(np.unique(current_labels))
    n_beats_now = int((beats[schema.DISTRICT] == district).sum())
    if k_current < n_beats_now:
        logger.warning(
            "district %s: %d of its %d beats overlap no unit most; use smaller cells than %s m",
            district,
            n_beats_now - k_current,
            n_beats_now,
            units.cell_size_m,
        )
    k = int(n_beats) if n_beats is not None else k_current
    if k < 1 or k > len(frame):
        msg = (
            f"the number of beats must be between 1 and {len(frame)} for district {district}, "
            f"got {k}"
        )
        raise ParameterError(msg, parameter="n_beats")
    if minimal_change and k != k_current:
        msg = (
            f"minimal change keeps the district's {k_current} beats, and {k} beats were asked "
            "for: redraw the district instead to change their number"
        )
        raise ParameterError(msg, parameter="n_beats")
    t_units = time.perf_counter() - t0
    t1 = time.perf_counter()
    beats_d = beats[beats[schema.DISTRICT].astype(str) == district]
    current_sectors = (
        dict(zip(beats_d[schema.BEAT], beats_d[schema.SECTOR].astype(str), strict=True))
        if schema.SECTOR in beats_d.columns
        else {}
    )
    current_plan = plan_from_units(units, current_labels, sectors=current_sectors)
    current = evaluate_plan(current_plan, incidents, stations=stations)
    t_current = time.perf_counter() - t1
    t2 = time.perf_counter()
    names, initial = np.unique(current_labels, return_inverse=True)
    solver = BalancedBeats(
        frame["workload"].to_numpy(),
        frame["area_m2"].to_numpy(),
        frame["perimeter_m"].to_numpy(),
        frame[["cx", "cy"]].to_numpy(),
        units.edges[["i", "j", "shared_m"]].to_numpy(),
        k,
        initial=initial,
        minimal_change=minimal_change,
        target_cv=search.target_cv,
        n_starts=search.n_starts,
        time_limit_s=search.time_limit_s,
        random_state=random_state,
    )

    def _step(message: str, fraction: float) -> None:
        if progress:
            progress(message, 0.1 + 0.8 * fraction)

    solver.solve(progress=_step)
    if minimal_change:
        labels = names[solver.labels_].astype(object)
    else:
        labels = _relabel(units, solver.labels_, district)
    if progress:
        progress("grouping sectors and evaluating", 0.9)
    n_sectors = beats_d[schema.SECTOR].nunique() if schema.SECTOR in beats_d.columns else None
    sectors = _sector_names(units, labels, district, random_state, n_sectors)
    proposed_plan = plan_from_units(units, labels, sectors=sectors)
    proposed = evaluate_plan(proposed_plan, incidents, stations=stations)
    t_prop = time.perf_counter() - t2
    proposed_ids = labels.astype(str)  # the solver's labels as beat ids
    moved = proposed_ids != frame[schema.BEAT].to_numpy()
    out_units = frame.assign(proposed=proposed_ids, moved=moved)
    parameters = {
        "district": district,
        "n_beats": k,
        **search.parameters(units.cell_size_m),
        "objective": "balance_weight*sum(((W-T)/T)^2) + mean(1/PP)",
    }
    seconds = {"units": t_units, "current": t_current, "proposed": t_prop}
    plans = (current_plan, proposed_plan)
    return _done(Proposal.of(out_units, plans, (current, proposed), parameters, seconds), progress)


def propose_city(
    beats: gpd.GeoDataFrame,
    incidents: pd.DataFrame,
    *,
    apportion: bool = False,
    search: SearchOptions | None = None,
    stations: gpd.GeoDataFrame | None = None,
    progress: Progress | None = None,
) -> Proposal:
    """Propose beats for every district (a city-wide plan nested in districts).

    Each district is proposed with :func:`propose_beats`; a district with a single beat is kept
    as it is. With `apportion`, the city's beats are first shared among districts by workload
    (:func:`apportion_beats`), so beats are balanced across districts too; otherwise each
    district keeps its number of beats.

    Parameters
    ----------
    beats, incidents, search, stations, progress
        As for :func:`propose_beats`; each district is searched with the same `search`.
    apportion
        Share the beats among districts in proportion to workload (not in minimal-change mode).

    Raises
    ------
    InputError
        If `apportion` and ``search.minimal_change`` are both asked for.
    """
    search = search or SearchOptions()
    if apportion and search.minimal_change:
        msg = "minimal-change mode keeps every district's beats; it cannot apportion them"
        raise InputError(msg)
    t0 = time.perf_counter()
    units = build_units(beats, incidents, cell_size_m=search.cell_size_m)
    frame = units.frame
    districts = sorted(frame[schema.DISTRICT].unique())
    k_now = frame.groupby(schema.DISTRICT)[schema.BEAT].nunique()
    quota = (
        apportion_beats(frame.groupby(schema.DISTRICT)["workload"].sum(), int(k_now.sum()))
        if apportion
        else k_now
    )
    t_units = time.perf_counter() - t0
    parts: list[Proposal] = []
    kept: list[pd.DataFrame] = []
    for n, district in enumerate(districts):
        if progress:
            progress(f"district {district}", n / len(districts))
        mask = (frame[schema.DISTRICT] == district).to_numpy()
        if int(quota[district]) < 2 and int(k_now[district]) < 2:
            kept.append(frame[mask].assign(proposed=frame.loc[mask, schema.BEAT]))
            continue
        part = propose_beats(
            beats,
            incidents,
            district=district,
            n_beats=int(quota[district]),
            search=search,
            stations=stations,
            units=units.subset(mask),
        )
        part.units[UNIT] = frame.loc[mask, UNIT].to_numpy()
        parts.append(part)
    t1 = time.perf_counter()
    out_units = pd.concat([p.units for p in parts] + kept, ignore_index=True)
    out_units["moved"] = out_units["proposed"].to_numpy() != out_units[schema.BEAT].to_numpy()
    out_units = gpd.GeoDataFrame(out_units, geometry="geometry", crs=beats.crs)
    sectors = (
        dict(zip(beats[schema.BEAT], beats[schema.SECTOR], strict=True))
        if schema.SECTOR in beats.columns
        else {}
    )
    kept_units = Units(
        frame=gpd.GeoDataFrame(pd.concat(kept), crs=beats.crs) if kept else frame.iloc[:0],
        edges=units.edges.iloc[:0],
        cell_size_m=units.cell_size_m,
    )
    kept_plan = plan_from_units(
        kept_units, kept_units.frame[schema.BEAT].to_numpy(), sectors=sectors
    )
    current_plan = gpd.GeoDataFrame(
        pd.concat([p.current_plan for p in parts] + [kept_plan], ignore_index=True), crs=beats.crs
    )
    proposed_plan = gpd.GeoDataFrame(
        pd.concat([p.proposed_plan for p in parts] + [kept_plan], ignore_index=True),
        crs=beats.crs,
    )
    current = evaluate_plan(current_plan, incidents, stations=stations)
    t_current = time.perf_counter() - t1
    t2 = time.perf_counter()
    proposed = evaluate_plan(proposed_plan, incidents, stations=stations)
    solve_s = sum(p.seconds["proposed"] for p in parts)
    proposal = Proposal.of(
        out_units,
        (current_plan, proposed_plan),
        (current, proposed),
        {
            "district": "all",
            "n_beats": int(quota.sum()),
            "beats_per_district": {str(k): int(v) for k, v in quota.items()},
            "apportion": bool(apportion),
            **search.parameters(units.cell_size_m),
        },
        seconds={
            "units": t_units,
            "current": t_current,
            "proposed": solve_s + time.perf_counter() - t2,
        },
    )
    return _done(proposal, progress)
