"""Cached loaders for the dashboard: every page gets its data through here.

Frames are cached with ``st.cache_data`` keyed by the store's version token, so an ingest
invalidates them; shared resources (the store handle) use ``st.cache_resource``.
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import pandas as pd
import streamlit as st

from analysis import profiles
from geodata import boundaries, schema, settings
from geodata.ingest import build_sample_store
from geodata.store import IncidentStore

__all__ = [
    "beat_counts",
    "daily_counts",
    "dataset_label",
    "default_period",
    "dense_date_range",
    "get_store",
    "incident_date_range",
    "load_beats",
    "load_districts",
    "load_incidents",
    "load_sectors",
    "load_stations",
    "store_token",
]


@st.cache_resource(show_spinner="Preparing the bundled Chicago data (first run only)...")
def get_store(root: str | None = None) -> IncidentStore:
    """Return the incident store, building it from the bundled sample on first use."""
    store = IncidentStore(settings.store_dir(root))
    if not store.exists() or not store.incident_files():
        build_sample_store(store, settings.SAMPLES_DIR)
    return store


def store_token(store: IncidentStore) -> str:
    """Return the cache key of the store's current contents."""
    return store.version_token()


@st.cache_data(show_spinner=False)
def load_beats(root: str, token: str) -> gpd.GeoDataFrame:
    """Return the beats (analysis CRS)."""
    del token
    return IncidentStore(root).read_layer("beats")


@st.cache_data(show_spinner=False)
def load_sectors(root: str, token: str) -> gpd.GeoDataFrame:
    """Return sector polygons dissolved from the beats."""
    return boundaries.dissolve_sectors(load_beats(root, token))


@st.cache_data(show_spinner=False)
def load_districts(root: str, token: str) -> gpd.GeoDataFrame:
    """Return district polygons (the stored layer, else dissolved from the beats)."""
    del token
    store = IncidentStore(root)
    if store.has_layer("districts"):
        return store.read_layer("districts")
    return boundaries.dissolve_districts(store.read_layer("beats"))


@st.cache_data(show_spinner=False)
def load_stations(root: str, token: str) -> gpd.GeoDataFrame:
    """Return police stations (empty frame if the store has none)."""
    del token
    store = IncidentStore(root)
    if not store.has_layer("stations"):
        return gpd.GeoDataFrame(columns=[*schema.STATION_COLUMNS, "geometry"], geometry="geometry")
    return store.read_layer("stations")


@st.cache_data(show_spinner="Loading incidents...", max_entries=8)
def load_incidents(
    root: str,
    token: str,
    columns: tuple[str, ...] | None = None,
    start: date | None = None,
    end: date | None = None,
) -> pd.DataFrame:
    """Return stored incidents (some columns, a date range: end exclusive)."""
    del token
    return IncidentStore(root).load_incidents(
        columns=list(columns) if columns else None,
        start=pd.Timestamp(start) if start else None,
        end=pd.Timestamp(end) if end else None,
    )


@st.cache_data(show_spinner=False)
def incident_date_range(root: str, token: str) -> tuple[date, date]:
    """Return the first and last incident dates in the store."""
    occurred = load_incidents(root, token, (schema.OCCURRED_AT,))[schema.OCCURRED_AT]
    return occurred.min().date(), occurred.max().date()


@st.cache_data(show_spinner=False)
def dense_date_range(root: str, token: str) -> tuple[date, date, str | None]:
    """Return the span of the date pickers (first dense day, last day) and a straggler note.

    Late-reported old incidents before :func:`analysis.profiles.dense_start` (or before the
    default period, if that starts earlier) are left out of the pickers' span and said in the
    note (None when there are none).
    """
    occurred = load_incidents(root, token, (schema.OCCURRED_AT,))[schema.OCCURRED_AT]
    # never after the default period's first day: the pickers' default must be offered
    first = min(profiles.dense_start(occurred), default_period(root, token)[0])
    local = occurred.dt.tz_localize(None) if occurred.dt.tz is not None else occurred
    older = local[local < pd.Timestamp(first)]
    note = None
    if len(older):
        note = (
            f"{len(older):,} older incidents ({older.min():%Y-%m-%d} to {older.max():%Y-%m-%d}) "
            f"were reported late; the dates offered start on {first}, where the data are dense."
        )
    return first, local.max().date(), note


@st.cache_data(show_spinner=False)
def beat_counts(
    root: str, token: str, start: date, end: date, category: str | None = None
) -> pd.DataFrame:
    """Return incidents per beat in ``[start, end)`` (all beats, zeros included)."""
    incidents = load_incidents(root, token, (schema.BEAT, schema.CATEGORY), start, end)
    if category:
        incidents = incidents[incidents[schema.CATEGORY] == category]
    beats = load_beats(root, token)[[schema.BEAT, schema.SECTOR, schema.DISTRICT]]
    counts = incidents.groupby(schema.BEAT).size().rename("incidents")
    out = beats.merge(counts, left_on=schema.BEAT, right_index=True, how="left")
    out["incidents"] = out["incidents"].fillna(0).astype(int)
    return pd.DataFrame(out)


@st.cache_data(show_spinner=False)
def default_period(root: str, token: str, days: int = 28) -> tuple[date, date]:
    """Return the default period (inclusive dates).

    The latest `days` days with data, unless the store is sparse there; then its densest
    `days`-day window (for the bundled data: January 2018).
    """
    daily = daily_counts(root, token)
    window = daily.rolling(days, min_periods=1).sum()
    latest_end = daily.index[-1]
    best_end = window.idxmax()
    end = latest_end if window.iloc[-1] >= 0.5 * window.max() else best_end
    return (end - pd.Timedelta(days=days - 1)).date(), end.date()


@st.cache_data(show_spinner=False)
def daily_counts(root: str, token: str) -> pd.Series:
    """Return incidents per local calendar day over the whole store (missing days = 0)."""
    occurred = load_incidents(root, token, (schema.OCCURRED_AT,))[schema.OCCURRED_AT]
    daily = occurred.dt.floor("D").dt.tz_localize(None).value_counts().sort_index()
    return daily.asfreq("D", fill_value=0)


def dataset_label(root: str, token: str, start: date, end: date) -> str:
    """Return a warning when ``[start, end)`` is covered only sparsely (a sample), else "".

    A period is called a sample when its mean daily count is under a quarter of the densest
    28 days of the store: the bundled 2023-2024 files hold a few percent of all incidents.
    """
    daily = daily_counts(root, token)
    densest = daily.rolling(28, min_periods=1).sum().max() / 28
    period = daily[(daily.index >= pd.Timestamp(start)) & (daily.index < pd.Timestamp(end))]
    if densest == 0 or period.empty or period.mean() >= 0.25 * densest:
        return ""
    return (
        f"This period averages {period.mean():.1f} incidents a day, against {densest:.0f} in the "
        "densest four weeks of the data: it is covered by a *sample* of incidents. Compare beats "
        "with each other, not with real-world totals."
    )
