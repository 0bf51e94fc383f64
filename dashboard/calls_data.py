"""Cached loaders of the Calls for service page: the store's calls, their review, the map."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date, timedelta
from typing import SupportsFloat, cast

import folium
import pandas as pd
import streamlit as st

from analysis.calls import (
    CallsReview,
    officer_hours,
    response_summary,
    review_calls,
    review_days,
    review_window,
)
from dashboard import data, maps, profile_data
from geodata import schema
from geodata.calls import RECEIVED_AT, calls_table, load_calls
from geodata.store import IncidentStore

__all__ = [
    "AreaCalls",
    "area_calls",
    "call_count",
    "calls_map",
    "calls_range",
    "has_calls",
    "page_dates",
    "review",
]

#: Column naming the reviewed area in :func:`area_calls` (one area: one row).
_AREA = "area"


@st.cache_data(show_spinner=False)
def call_count(root: str, token: str) -> int:
    """Return the number of calls for service the store holds (0 without a calls table)."""
    del token
    table = calls_table(IncidentStore(root))
    return int(table.count()) if table.exists() else 0


def has_calls(root: str, token: str) -> bool:
    """Return True when the store holds calls for service."""
    return call_count(root, token) > 0


@st.cache_data(show_spinner=False)
def calls_range(root: str, token: str) -> tuple[date, date]:
    """Return the first and last local day with calls."""
    del token
    received = load_calls(IncidentStore(root), columns=[RECEIVED_AT])[RECEIVED_AT]
    return received.min().date(), received.max().date()


def page_dates(root: str, token: str) -> tuple[date, date, str | None, date] | None:
    """Return the as-of dates an area page offers: (first, last, note, default).

    The incidents' dense span and default as-of date (:func:`dashboard.data.dense_date_range`);
    for a store of calls only, the calls' span, ending on its last day; None when the store
    holds neither.
    """
    if data.has_incidents(root, token):
        first, last, note = data.dense_date_range(root, token)
        return first, last, note, profile_data.default_as_of(root, token)
    if has_calls(root, token):
        first, last = calls_range(root, token)
        return first, last, None, last
    return None


def _calls_of(
    root: str, token: str, level: str | None, area: str | None, first: date, last: date
) -> pd.DataFrame:
    """Return the calls of an area (None: the department) received from `first` to `last`."""
    beats = data.load_beats(root, token)
    if level is not None:
        beats = beats[beats[level].astype(str) == str(area)]
    return load_calls(
        IncidentStore(root),
        start=str(first),
        end=str(last + timedelta(days=1)),
        beats=sorted(beats[schema.BEAT]) if level else None,
    )


@st.cache_data(show_spinner="Reviewing the calls...", max_entries=16)
def review(
    root: str,
    token: str,
    level: str | None,
    area: str | None,
    as_of: date,
    window: str,
    target_min: float | None,
) -> CallsReview:
    """Return :func:`analysis.calls.review_calls` of an area (None: the department)."""
    calls = _calls_of(root, token, level, area, *review_days(as_of, window))
    return review_calls(
        calls,
        as_of=as_of,
        window=window,
        target_min=target_min,
        timezone=data.department(root, token).timezone,
    )


@dataclass(frozen=True)
class AreaCalls:
    """One area's calls for service over a CompStat window, against the period before.

    Attributes
    ----------
    start, end
        The window's first and last local day.
    previous_start
        First local day of the period before (as long as the window).
    calls, previous
        Calls received in the window and in the as long period just before it.
    p_value
        Exact Poisson test of the two counts (None when not comparable).
    response_median_min, previous_median_min
        Median response time (received to first unit on scene) now and before.
    response_worse
        True when the one-sided Mann-Whitney test says responses got slower (p < 0.05).
    time_on_task_median_min
        Median time on task of the window's calls (arrival, else dispatch, to close).
    officer_hours
        Time on task x officers sent, summed over the window's calls.
    """

    start: date
    end: date
    previous_start: date
    calls: int
    previous: int
    p_value: float | None
    response_median_min: float | None
    previous_median_min: float | None
    response_worse: bool
    time_on_task_median_min: float | None
    officer_hours: float


def _number(value: object) -> float | None:
    # a value that is not missing (None, NaN, NA) is a number
    return None if value is None or pd.isna(value) else float(cast(SupportsFloat, value))


@st.cache_data(show_spinner="Summarising the calls...", max_entries=32)
def area_calls(
    root: str, token: str, level: str, area: str, as_of: date, window: str = "28d"
) -> AreaCalls:
    """Return the calls summary of one area (a beat, sector or precinct) for a window.

    The counts and the response test are :func:`analysis.calls.review_calls` of the area as a
    whole; time on task and officer-hours are :func:`analysis.calls.response_summary` and
    :func:`analysis.calls.officer_hours` of the window's calls.
    """
    chosen = review_window(as_of, window)
    calls = _calls_of(root, token, level, area, *review_days(as_of, window)).assign(
        **{_AREA: str(area)}
    )
    whole = review_calls(
        calls,
        as_of=as_of,
        window=window,
        by=_AREA,
        timezone=data.department(root, token).timezone,
    )
    day = calls[RECEIVED_AT].dt.date  # local days: the store's zone
    current = calls[(day >= chosen.start) & (day <= chosen.end)]
    counts = whole.counts.iloc[0] if len(whole.counts) else pd.Series(dtype=object)
    response = whole.response.iloc[0] if len(whole.response) else pd.Series(dtype=object)
    on_task = response_summary(current, [_AREA])
    hours = officer_hours(current, [_AREA])
    return AreaCalls(
        start=chosen.start,
        end=chosen.end,
        previous_start=chosen.previous_start,
        calls=len(current),
        previous=int(_number(counts.get("previous")) or 0),
        p_value=_number(counts.get("p_value")),
        response_median_min=_number(response.get("response_median_min")),
        previous_median_min=_number(response.get("previous_median_min")),
        response_worse=bool(response.get("worse", False)),
        time_on_task_median_min=(
            _number(on_task["time_on_task_median_min"].iloc[0]) if len(on_task) else None
        ),
        officer_hours=float(hours["officer_hours"].sum()),
    )


@st.cache_data(show_spinner=False, max_entries=16)
def _hours(root: str, token: str, first: date, last: date) -> pd.DataFrame:
    calls = load_calls(IncidentStore(root), start=str(first), end=str(last + timedelta(days=1)))
    return officer_hours(calls, [schema.BEAT])


def calls_map(root: str, token: str, first: date, last: date) -> folium.Map:
    """Return the beats coloured by the officer-hours their calls took from `first` to `last`."""
    beats = data.load_beats(root, token)
    hours = _hours(root, token, first, last).set_index(schema.BEAT)
    layer = beats.assign(
        officer_hours=beats[schema.BEAT].map(hours["officer_hours"]).fillna(0.0).round(1),
        calls=beats[schema.BEAT].map(hours["calls"]).fillna(0).astype(int),
    )
    word = data.label(root, token, "beat")
    fmap = maps.base_map(layer)
    maps.choropleth(
        fmap,
        layer,
        "officer_hours",
        fields=[("calls", "Calls")],
        name="Officer-hours on calls",
        unit=f"hours per {word}",
    )
    districts, stations, district_word = data.map_context(root, token)
    return maps.add_context(fmap, districts, stations, word=district_word)  # offline only
