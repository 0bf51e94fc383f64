"""Calls for service: response times, time on task and officer-hours of workload by area.

The functions take the canonical calls frame (``geodata.calls``) and return small frames. The
workload model is the one the field's staffing studies use: the officer time that calls take
(time on task x officers sent), plus an allowance for self-initiated and administrative work
expressed as a share of that committed time (``docs/planning.md``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import stats

from analysis.beatplan import build_units, plan_from_units
from analysis.compare import Window, compare_counts, compstat_windows, window_counts
from analysis.workload import WORKLOAD
from geodata import schema
from geodata.calls import (
    CALL_TYPE,
    PRIORITY,
    RECEIVED_AT,
    RESPONSE_MIN,
    TIME_ON_TASK_MIN,
    UNITS,
)

__all__ = [
    "OFFICER_HOURS",
    "CallsReview",
    "areas_from_calls",
    "call_workload",
    "officer_hours",
    "response_summary",
    "review_calls",
    "review_days",
    "review_window",
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


def call_workload(
    calls: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    *,
    allowance: float = 0.0,
    default_units: int = 1,
) -> pd.DataFrame:
    """Return one row per call with its place (``x``, ``y``) and its ``workload`` in officer-hours.

    The workload of a call is its time on task times the officers sent, times ``1 +
    allowance`` (self-initiated and administrative time, see :func:`officer_hours`); a call
    never closed adds nothing. A call whose location is withheld (redacted) is placed at a
    point inside the beat it reports, so its officer time still counts where it was spent.

    Parameters
    ----------
    calls
        Calls with ``x``, ``y`` (NaN when withheld), ``beat``, ``time_on_task_min`` and
        optionally ``units``.
    beats
        The beat layer (``beat``, geometry) in the calls' CRS.
    allowance, default_units
        As in :func:`officer_hours`.

    Returns
    -------
    DataFrame
        ``x``, ``y``, ``beat``, ``workload``; calls with neither a location nor a known beat are
        left out (they cannot be placed).
    """
    hours = officer_hours(
        calls.assign(_row=np.arange(len(calls))),
        ["_row"],
        allowance=allowance,
        default_units=default_units,
    )[OFFICER_HOURS].to_numpy()
    frame = pd.DataFrame(
        {
            schema.X: calls[schema.X].to_numpy(dtype=float),
            schema.Y: calls[schema.Y].to_numpy(dtype=float),
            schema.BEAT: calls[schema.BEAT].to_numpy(dtype=object),
            WORKLOAD: hours,
        }
    )
    anchors = beats.drop_duplicates(schema.BEAT).set_index(schema.BEAT).representative_point()
    withheld = frame[schema.X].isna() & frame[schema.BEAT].isin(anchors.index)
    placed = anchors.reindex(frame.loc[withheld, schema.BEAT])
    frame.loc[withheld, schema.X] = placed.x.to_numpy()
    frame.loc[withheld, schema.Y] = placed.y.to_numpy()
    return frame.dropna(subset=[schema.X, schema.Y]).reset_index(drop=True)


@dataclass
class CallsReview:
    """Calls for service of an area over a CompStat window, against the period before.

    Attributes
    ----------
    window
        The CompStat window compared (:func:`analysis.compare.compstat_windows`).
    counts
        Per `by` value: calls in the current, previous and last-year periods with percent
        changes, exact Poisson p-values and flags (:func:`analysis.compare.compare_counts`).
    response
        Per `by` value: median and 90th-percentile response time now and before, the share
        answered within the target, and ``worse``: the one-sided Mann-Whitney test says this
        period's response times are longer (p < 0.05).
    by_type, by_priority, by_hour
        This period's calls by call type, and response summaries by priority and hour of day.
    """

    window: Window
    counts: pd.DataFrame
    response: pd.DataFrame
    by_type: pd.DataFrame
    by_priority: pd.DataFrame
    by_hour: pd.DataFrame


def review_window(as_of: date, window: str) -> Window:
    """Return the CompStat window named `window` that ends on `as_of`.

    Parameters
    ----------
    as_of
        Last day of the reporting period (local).
    window
        ``7d``, ``28d``, ``ytd`` or ``365d``.

    Raises
    ------
    ValueError
        If `window` is not one of the four CompStat windows.
    """
    windows = {w.name: w for w in compstat_windows(as_of)}
    if window not in windows:
        msg = f"window must be one of {list(windows)}, got {window!r}"
        raise ValueError(msg)
    return windows[window]


def review_days(as_of: date, window: str) -> tuple[date, date]:
    """Return the first and last local day of the calls a review of `window` reads.

    That is the window, the period before it and the same period last year, up to `as_of` (a
    ``7d`` window ends the day before), so that loading the calls received from the first day to
    the end of the last one is enough for :func:`review_calls`.

    Raises
    ------
    ValueError
        If `window` is not one of the four CompStat windows.
    """
    chosen = review_window(as_of, window)
    return min(chosen.previous_start, chosen.last_year_start), max(chosen.end, as_of)


def review_calls(
    calls: pd.DataFrame,
    *,
    as_of: date,
    window: str = "28d",
    by: str = schema.BEAT,
    target_min: float | None = None,
    timezone: str | None = None,
    alpha: float = 0.05,
) -> CallsReview:
    """Return the calls review of `calls` (one area's) for the `window` ending on `as_of`.

    Parameters
    ----------
    calls
        Calls with ``received_at``, ``response_min``, ``time_on_task_min``, ``call_type``,
        ``priority`` and the `by` column, covering the window and the period before it.
    as_of
        Last day of the reporting period (local).
    window
        ``7d``, ``28d``, ``ytd`` or ``365d``.
    by
        The area column compared (``beat``, ``sector``...).
    target_min
        The department's response-time target (minutes), for ``share_within_target``.
    timezone
        Zone of the local days (default: the times' own).
    alpha
        Significance level of the count and response flags.

    Raises
    ------
    ValueError
        If `window` is not one of the four CompStat windows.
    """
    chosen = review_window(as_of, window)
    as_incidents = calls.rename(columns={RECEIVED_AT: schema.OCCURRED_AT})
    # the whole area's counts tell a covered period from one the store holds no calls for
    counts = compare_counts(
        window_counts(as_incidents, [chosen], by=by, timezone=timezone),
        [chosen],
        alpha=alpha,
        reference=window_counts(as_incidents, [chosen], timezone=timezone),
    )
    local = calls[RECEIVED_AT].dt.tz_convert(timezone) if timezone else calls[RECEIVED_AT]
    day = local.dt.date
    current = calls[(day >= chosen.start) & (day <= chosen.end)]
    previous = calls[(day >= chosen.previous_start) & (day <= chosen.previous_end)]
    rows = []
    for area in sorted(set(current[by].dropna()) | set(previous[by].dropna())):
        now = current.loc[current[by] == area, RESPONSE_MIN].dropna().to_numpy()
        before = previous.loc[previous[by] == area, RESPONSE_MIN].dropna().to_numpy()
        p_value = (
            float(stats.mannwhitneyu(now, before, alternative="greater").pvalue)
            if len(now) and len(before)
            else None
        )
        rows.append(
            {
                by: area,
                "responded": len(now),
                "response_median_min": float(np.median(now)) if len(now) else None,
                "response_p90_min": float(np.percentile(now, 90)) if len(now) else None,
                "previous_median_min": float(np.median(before)) if len(before) else None,
                "share_within_target": (
                    float(np.mean(now <= target_min)) if len(now) and target_min else None
                ),
                "p_value": p_value,
                "worse": bool(p_value is not None and p_value < alpha),
            }
        )
    response = pd.DataFrame(rows, columns=[by, "responded", "response_median_min",
                                           "response_p90_min", "previous_median_min",
                                           "share_within_target", "p_value", "worse"])  # fmt: skip
    by_type = (
        current[CALL_TYPE].value_counts().rename_axis(CALL_TYPE).reset_index(name="calls")
        if len(current)
        else pd.DataFrame(columns=[CALL_TYPE, "calls"])
    )
    return CallsReview(
        window=chosen,
        counts=counts,
        response=response,
        by_type=by_type,
        by_priority=response_summary(current, [PRIORITY], target_min=target_min),
        by_hour=response_summary(
            current.assign(hour=local.loc[current.index].dt.hour), ["hour"], target_min=target_min
        ),
    )
