"""Calls for service: response times, time on task and officer-hours of workload by area.

The functions take the canonical calls frame (``geodata.calls``) and return small frames. The
workload model is the one the field's staffing studies use: the officer time that calls take
(time on task x officers sent), plus an allowance for self-initiated and administrative work
expressed as a share of that committed time (``docs/planning.md``).
"""

from __future__ import annotations

from collections.abc import Sequence

import geopandas as gpd
import numpy as np
import pandas as pd

from analysis.beatplan import build_units, plan_from_units
from analysis.workload import WORKLOAD
from geodata import schema
from geodata.calls import RECEIVED_AT, RESPONSE_MIN, TIME_ON_TASK_MIN, UNITS

__all__ = [
    "OFFICER_HOURS",
    "areas_from_calls",
    "officer_hours",
    "response_summary",
]

#: Column of officer-hours in :func:`officer_hours`.
OFFICER_HOURS = "officer_hours"


def response_summary(
    calls: pd.DataFrame,
    by: Sequence[str],
    *,
    target_min: float | None = None,
) -> pd.DataFrame:
    """Return the count, median and 90th percentile of response time and time on task by group.

    Parameters
    ----------
    calls
        Calls with ``response_min`` and ``time_on_task_min`` (NaN where a time is missing).
    by
        Columns to group by, e.g. ``["beat"]`` or ``["beat", "hour"]``; ``"hour"`` is derived
        from ``received_at`` (local hour of day) when the frame has no such column.
    target_min
        The department's response-time target in minutes; when given, ``share_within_target``
        is the share of calls with a response time that arrived within it.

    Returns
    -------
    DataFrame
        One row per group: ``calls``, ``responded`` (calls with a response time),
        ``response_median_min``, ``response_p90_min``, ``time_on_task_median_min``,
        ``time_on_task_p90_min`` (and ``share_within_target``). Percentiles use linear
        interpolation (numpy's default).
    """
    by = list(by)
    frame = _with_hour(calls, by)
    grouped = frame.groupby(by, observed=True, sort=True)
    out = pd.DataFrame(
        {
            "calls": grouped.size(),
            "responded": grouped[RESPONSE_MIN].count(),
            "response_median_min": grouped[RESPONSE_MIN].median(),
            "response_p90_min": grouped[RESPONSE_MIN].quantile(0.9),
            "time_on_task_median_min": grouped[TIME_ON_TASK_MIN].median(),
            "time_on_task_p90_min": grouped[TIME_ON_TASK_MIN].quantile(0.9),
        }
    )
    if target_min is not None:
        within = frame[RESPONSE_MIN].le(target_min).where(frame[RESPONSE_MIN].notna())
        out["share_within_target"] = within.groupby([frame[c] for c in by]).mean()
    return out.reset_index()


def officer_hours(
    calls: pd.DataFrame,
    by: Sequence[str],
    *,
    allowance: float = 0.0,
    default_units: int = 1,
) -> pd.DataFrame:
    """Return the officer-hours that calls took by group, with an allowance for other work.

    One call's officer time is its time on task times the officers sent (``units``; missing
    values count as `default_units`). Calls without a time on task (never closed) add nothing
    and are counted in ``calls_without_time``, so nothing is silently dropped.

    Parameters
    ----------
    calls
        Calls with ``time_on_task_min`` and optionally ``units``.
    by
        Columns to group by (``"hour"`` is derived from ``received_at`` when absent).
    allowance
        Self-initiated and administrative time as a share of committed time (0.5 adds half).
    default_units
        Officers assumed for a call whose plan names none.

    Returns
    -------
    DataFrame
        ``by`` columns, ``calls``, ``calls_without_time``, ``committed_hours`` and
        ``officer_hours`` (= committed x (1 + allowance)).

    Raises
    ------
    ValueError
        If `allowance` is negative or `default_units` is below 1.
    """
    if allowance < 0:
        msg = f"the allowance is a share of committed time and cannot be negative: {allowance}"
        raise ValueError(msg)
    if default_units < 1:
        msg = f"default_units must be at least 1, got {default_units}"
        raise ValueError(msg)
    by = list(by)
    frame = _with_hour(calls, by)
    if UNITS in frame.columns:
        units = frame[UNITS].astype("Float64").fillna(default_units).astype("float64")
    else:
        units = pd.Series(float(default_units), index=frame.index)
    minutes = frame[TIME_ON_TASK_MIN].astype("float64")
    frame = frame.assign(
        _hours=(minutes * units / 60.0).fillna(0.0), _missing=minutes.isna().astype(np.int64)
    )
    grouped = frame.groupby(by, observed=True, sort=True)
    out = pd.DataFrame(
        {
            "calls": grouped.size(),
            "calls_without_time": grouped["_missing"].sum(),
            "committed_hours": grouped["_hours"].sum(),
        }
    )
    out[OFFICER_HOURS] = out["committed_hours"] * (1.0 + allowance)
    return out.reset_index()


def _with_hour(calls: pd.DataFrame, by: list[str]) -> pd.DataFrame:
    missing = [c for c in by if c not in calls.columns and c != "hour"]
    if missing:
        msg = f"calls have no column {missing}; group by one of {list(calls.columns)}"
        raise ValueError(msg)
    if "hour" in by and "hour" not in calls.columns:
        return calls.assign(hour=calls[RECEIVED_AT].dt.hour)
    return calls


def areas_from_calls(
    parents: gpd.GeoDataFrame,
    calls: pd.DataFrame,
    *,
    area_column: str,
    cell_size_m: float = 300.0,
) -> tuple[gpd.GeoDataFrame, float]:
    """Return an approximate polygon layer of the areas that calls report, and its fit.

    Departments often report a patrol area (MPD's sector) on every call without publishing the
    area's polygons. This builds them: the parent polygons (precincts) are cut into grid units
    (:func:`analysis.beatplan.build_units`), each unit goes to the area most of its located calls
    report, and a unit without calls takes the area most of its labelled neighbours hold. It is
    an approximation, and its fit is returned with it.

    Parameters
    ----------
    parents
        Parent polygons (e.g. precincts) with a ``district`` column, in a projected CRS (m).
    calls
        Calls with ``x``/``y`` in the same CRS (NaN when redacted) and `area_column`.
    area_column
        The column naming each call's reported area.
    cell_size_m
        Side of the grid units, in metres.

    Returns
    -------
    layer
        One row per area: ``beat`` (the area id), ``sector`` (empty), ``district``, geometry.
    match_share
        Share of located calls whose own reported area is the area of the unit they fall in.

    Raises
    ------
    ValueError
        If no located call reports an area.
    """
    located = calls.dropna(subset=[schema.X, schema.Y, area_column])
    if located.empty:
        msg = f"no located call reports a {area_column!r}; the areas cannot be approximated"
        raise ValueError(msg)
    seeds = parents[[schema.DISTRICT, "geometry"]].assign(**{schema.BEAT: parents[schema.DISTRICT]})
    units = build_units(seeds, located.assign(**{WORKLOAD: 1.0}), cell_size_m=cell_size_m)
    frame = units.frame
    points = gpd.points_from_xy(located[schema.X], located[schema.Y])
    point_idx, unit_idx = frame.sindex.query(points, predicate="intersects")
    first = ~pd.Series(point_idx).duplicated().to_numpy()
    point_idx, unit_idx = point_idx[first], unit_idx[first]
    reported = located[area_column].astype(str).to_numpy()
    votes = pd.crosstab(unit_idx, reported[point_idx])
    labels = pd.Series(pd.NA, index=frame.index, dtype="object")
    labels[votes.index] = votes.idxmax(axis=1).to_numpy()
    labels = _fill_from_neighbours(labels, units.edges, frame[schema.DISTRICT])
    layer = plan_from_units(units, labels.to_numpy())
    unit_label = labels.to_numpy()[unit_idx]
    match_share = float(np.mean(unit_label == reported[point_idx])) if len(point_idx) else 0.0
    return layer.set_crs(parents.crs, allow_override=True), match_share


def _fill_from_neighbours(labels: pd.Series, edges: pd.DataFrame, district: pd.Series) -> pd.Series:
    """Give each unlabelled unit the label most of its labelled same-district neighbours hold."""
    labels = labels.copy()
    pairs = pd.concat(
        [edges[["i", "j"]], edges[["j", "i"]].set_axis(["i", "j"], axis=1)], ignore_index=True
    )
    same = district.to_numpy()[pairs["i"]] == district.to_numpy()[pairs["j"]]
    pairs = pairs[same]
    while labels.isna().any():
        known = labels.notna().to_numpy()
        todo = pairs[~known[pairs["i"]] & known[pairs["j"]]]
        if todo.empty:  # a district whose units got no call at all: nothing to copy from
            labels = labels.fillna(district.astype(str) + " (no calls)")
            break
        fill = (
            todo.assign(label=labels.to_numpy()[todo["j"]])
            .groupby("i")["label"]
            .agg(lambda s: s.value_counts().index[0])
        )
        labels[fill.index] = fill.to_numpy()
    return labels
