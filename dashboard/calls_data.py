"""Cached loaders of the Calls for service page: the store's calls, their review, the map."""

from __future__ import annotations

from datetime import date, timedelta

import folium
import pandas as pd
import streamlit as st

from analysis.calls import CallsReview, officer_hours, review_calls
from analysis.compare import compstat_windows
from dashboard import data, maps
from geodata import schema
from geodata.calls import RECEIVED_AT, calls_table, load_calls
from geodata.store import IncidentStore

__all__ = ["calls_map", "calls_range", "has_calls", "review"]


@st.cache_data(show_spinner=False)
def has_calls(root: str, token: str) -> bool:
    """Return True when the store holds calls for service."""
    del token
    table = calls_table(IncidentStore(root))
    return table.exists() and table.count() > 0


@st.cache_data(show_spinner=False)
def calls_range(root: str, token: str) -> tuple[date, date]:
    """Return the first and last local day with calls."""
    del token
    received = load_calls(IncidentStore(root), columns=[RECEIVED_AT])[RECEIVED_AT]
    return received.min().date(), received.max().date()


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
    store = IncidentStore(root)
    chosen = {w.name: w for w in compstat_windows(as_of)}[window]
    beats = data.load_beats(root, token)
    if level is not None:
        beats = beats[beats[level].astype(str) == str(area)]
    calls = load_calls(
        store,
        start=str(min(chosen.previous_start, chosen.last_year_start)),
        end=str(as_of + timedelta(days=1)),
        beats=sorted(beats[schema.BEAT]) if level else None,
    )
    return review_calls(
        calls,
        as_of=as_of,
        window=window,
        target_min=target_min,
        timezone=data.department(root, token).timezone,
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
    return maps.choropleth(
        fmap,
        layer,
        "officer_hours",
        fields=[("calls", "Calls")],
        name="Officer-hours on calls",
        unit=f"hours per {word}",
    )
