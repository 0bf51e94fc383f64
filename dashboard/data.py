"""Cached loaders for the dashboard: every page gets its data through here.

Frames are cached with ``st.cache_data`` keyed by the store's version token, so an ingest
invalidates them; shared resources (the store handle) use ``st.cache_resource``.
"""

from __future__ import annotations

from datetime import date

import geopandas as gpd
import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from analysis import inputs, profiles
from analysis.inputs import Level, Period
from geodata import boundaries, schema, settings
from geodata.department import Department
from geodata.store import IncidentStore

__all__ = [
    "analysis_level",
    "as_of_input",
    "beat_counts",
    "daily_counts",
    "dataset_label",
    "default_period",
    "dense_date_range",
    "department",
    "get_store",
    "has_incidents",
    "incident_date_range",
    "label",
    "load_beats",
    "load_districts",
    "load_incidents",
    "load_sectors",
    "load_stations",
    "map_context",
    "period_input",
    "review_level",
    "store_token",
]


def get_store(root: str | None = None) -> IncidentStore:
    """Return the incident store (`root`, or the configured one, built from the sample if empty).

    The handle is cached per store directory, so changing ``BEATS_DATA_DIR`` picks another store.
    """
    return _store_at(str(settings.store_dir(root)), is_default=root is None)


@st.cache_resource(show_spinner="Preparing the bundled sample data (first run only)...")
def _store_at(path: str, *, is_default: bool) -> IncidentStore:
    return inputs.open_store(None if is_default else path)


def store_token(store: IncidentStore) -> str:
    """Return the cache key of the store's current contents."""
    return store.version_token()


@st.cache_resource(show_spinner=False)
def department(root: str, token: str) -> Department:
    """Return the department the store holds (its levels' names, time zone, CRS)."""
    del token
    return IncidentStore(root).department()


def label(root: str, token: str, level: str, *, plural: bool = False, title: bool = False) -> str:
    """Return the department's word for `level` ("precinct" for Seattle's districts).

    Parameters
    ----------
    level
        ``beat``, ``sector`` or ``district`` (the store's columns).
    plural
        The plural ("precincts").
    title
        Capitalised, for headings and labels ("Precinct").
    """
    word = department(root, token).label(level, plural=plural)
    return word.capitalize() if title else word


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
    layers = inputs.load_layers(IncidentStore(root))
    if layers.stations is None:
        return gpd.GeoDataFrame(
            columns=[*schema.STATION_COLUMNS, "geometry"],
            geometry="geometry",
            crs=layers.analysis_crs,
        )
    return layers.stations


@st.cache_data(show_spinner="Loading incidents...", max_entries=8)
def load_incidents(
    root: str,
    token: str,
    columns: tuple[str, ...] | None = None,
    period: Period | None = None,
) -> pd.DataFrame:
    """Return stored incidents: some columns, the days of `period` (None: all of them)."""
    del token
    return inputs.load_incidents(
        IncidentStore(root), columns or tuple(schema.INCIDENT_COLUMNS), period
    )


@st.cache_data(show_spinner=False)
def daily_counts(root: str, token: str) -> pd.Series:
    """Return incidents per local calendar day over the whole store (missing days = 0)."""
    del token
    return inputs.load_daily_counts(IncidentStore(root))


@st.cache_data(show_spinner=False)
def has_incidents(root: str, token: str) -> bool:
    """Return True when the store holds incident reports (a CAD-only store holds none)."""
    return bool(daily_counts(root, token).sum() > 0)


def analysis_level(level: str) -> Level:
    """Return `level` (a department level's key, or ``department``) as an analysis level.

    Raises
    ------
    ValueError
        If `level` is none of ``beat``, ``sector``, ``district`` and ``department`` (as
        :func:`analysis.inputs.area_beats` would).
    """
    match level:
        case "beat" | "sector" | "district" | "department":
            return level
    msg = f"level must be one of {inputs.LEVELS}, got {level!r}"
    raise ValueError(msg)


def review_level(root: str, token: str) -> str | None:
    """Return the level the Sector review page reviews: the first level above the beats.

    A department without sectors (Minneapolis: sector-as-beat, precinct) reviews its top level
    (``district``); a department of beats only has none (None).
    """
    levels = [lv.key for lv in department(root, token).levels if lv.key != schema.BEAT]
    return levels[0] if levels else None


@st.cache_data(show_spinner=False)
def incident_date_range(root: str, token: str) -> tuple[date, date]:
    """Return the first and last local days with incidents in the store."""
    daily = daily_counts(root, token)
    return daily.index[0].date(), daily.index[-1].date()


@st.cache_data(show_spinner=False)
def dense_date_range(root: str, token: str) -> tuple[date, date, str | None]:
    """Return the span of the date pickers (first dense day, last day) and a straggler note.

    Late-reported old incidents before :func:`analysis.profiles.dense_start` (or before the
    default period, if that starts earlier) are left out of the pickers' span and said in the
    note (None when there are none).
    """
    daily = daily_counts(root, token)
    # never after the default period's first day: the pickers' default must be offered
    first = min(profiles.dense_start(daily), default_period(root, token).first)
    older = daily[(daily.index < pd.Timestamp(first)) & (daily > 0)]
    note = None
    if len(older):
        note = (
            f"{int(older.sum()):,} older incidents ({older.index[0]:%Y-%m-%d} to "
            f"{older.index[-1]:%Y-%m-%d}) were reported late; the dates offered start on "
            f"{first}, where the data are dense."
        )
    return first, daily.index[-1].date(), note


@st.cache_data(show_spinner=False)
def beat_counts(root: str, token: str, period: Period, category: str | None = None) -> pd.DataFrame:
    """Return incidents per beat in `period` (all beats, zeros included)."""
    incidents = load_incidents(root, token, (schema.BEAT, schema.CATEGORY), period)
    if category:
        incidents = incidents[incidents[schema.CATEGORY] == category]
    beats = load_beats(root, token)[[schema.BEAT, schema.SECTOR, schema.DISTRICT]]
    counts = incidents.groupby(schema.BEAT).size().rename("incidents")
    out = beats.merge(counts, left_on=schema.BEAT, right_index=True, how="left")
    out["incidents"] = out["incidents"].fillna(0).astype(int)
    return pd.DataFrame(out)


@st.cache_data(show_spinner=False)
def default_period(root: str, token: str, days: int = inputs.DEFAULT_PERIOD_DAYS) -> Period:
    """Return the default period: :func:`analysis.inputs.default_period` of the store."""
    return inputs.default_period(daily_counts(root, token), days=days)


def as_of_input(container: DeltaGenerator, dates: tuple[date, date, str | None, date]) -> date:
    """Show the "As of" date picker in `container`; return the day picked.

    `dates` are an area page's (first, last, note, default), as
    :func:`dashboard.calls_data.page_dates` returns them; the note (late-reported old
    incidents, outside the offered dates) is the picker's help.
    """
    first, last, note, default = dates
    return container.date_input("As of", value=default, min_value=first, max_value=last, help=note)


def period_input(container: DeltaGenerator, root: str, token: str) -> Period | None:
    """Show the "Period" date picker in `container`; return the period, None while half picked.

    It offers the dense span of :func:`dense_date_range` (its note as help), starting on
    :func:`default_period`.
    """
    first, last, older_note = dense_date_range(root, token)
    default = default_period(root, token)
    picked = container.date_input(
        "Period",
        value=(default.first, default.last),
        min_value=first,
        max_value=last,
        help=older_note,  # late-reported old incidents, outside the offered dates
    )
    if not isinstance(picked, tuple) or len(picked) != 2:
        return None
    return Period.of(*picked)


def dataset_label(root: str, token: str, period: Period) -> str:
    """Return a warning when `period` is covered only sparsely (a sample), else ""."""
    return inputs.sample_note(daily_counts(root, token), period)


def map_context(root: str, token: str) -> tuple[gpd.GeoDataFrame, gpd.GeoDataFrame | None, str]:
    """Return the place context of a map without tiles: districts, stations, the district word.

    For :func:`dashboard.maps.add_context` (``maps.Context``); the layers are cached loaders.
    """
    stations = load_stations(root, token)
    return (
        load_districts(root, token),
        stations if len(stations) else None,
        label(root, token, "district", title=True),
    )
