"""Cached loaders and chart builders of the beat-profile and sector-review pages.

Profiles are computed by :mod:`analysis.profiles` on exactly the inputs the ``python -m analysis
profile`` command uses (:func:`analysis.inputs.load_profile_inputs`: the history before the as-of
date, the stored beats and stations, the time zone of the store), so the page and the CLI JSON
agree. Results are
cached per (store version, area, as-of date), so switching back to a beat is instant; the beat
index and the block gazetteer for "find my beat" are built once per store version.
"""

from __future__ import annotations

from datetime import date

import altair as alt
import folium
import geopandas as gpd
import pandas as pd
import streamlit as st

from analysis import compare, inputs, pdf, profiles, report
from analysis.inputs import Period
from dashboard import data, maps
from geodata import geocode, schema
from geodata.boundaries import beat_neighbours
from geodata.geocode import BlockGazetteer
from geodata.join import BeatIndex
from geodata.store import IncidentStore

__all__ = [
    "CLICK_KEY",
    "FIND_KEY",
    "PIN_KEY",
    "area_profile",
    "beat_at",
    "beat_index",
    "category_chart",
    "change_reasons",
    "comparison_view",
    "default_as_of",
    "find_beat",
    "gazetteer",
    "hour_weekday_chart",
    "incidents_in_period",
    "neighbours",
    "packet_html",
    "packet_pdf",
    "profile_inputs",
    "profile_map",
    "sector_fills",
    "sector_review",
    "trend_chart",
]

#: Session keys of the beat-profile page (page-local; shared keys live in dashboard.state).
CLICK_KEY = "beat_profile_last_click"
FIND_KEY = "beat_profile_find"
#: The last found address as ``(lat, lon, label)``: the map shows a pin there.
PIN_KEY = "beat_profile_pin"


def default_as_of(root: str, token: str) -> date:
    """Return the default as-of date: the last day of the default period (same as the CLI)."""
    return data.default_period(root, token).last


@st.cache_data(show_spinner="Loading incidents...", max_entries=8)
def profile_inputs(
    root: str,
    token: str,
    as_of: date,
    years: int,
    level: str = "department",
    area_id: str | None = None,
) -> inputs.ProfileInputs:
    """Return :func:`analysis.inputs.load_profile_inputs` of the store (what the CLI reads).

    Only the area's incidents are read (the whole store's for the department).
    """
    del token
    return inputs.load_profile_inputs(
        IncidentStore(root), as_of, years=years, level=data.analysis_level(level), area_id=area_id
    )


@st.cache_data(show_spinner=False)
def neighbours(root: str, token: str) -> pd.DataFrame:
    """Return the rook neighbour pairs of the beats."""
    return beat_neighbours(data.load_beats(root, token))


@st.cache_resource(show_spinner="Building the beat index (once)...")
def beat_index(root: str, token: str) -> BeatIndex:
    """Return the point-in-beat index of the stored beats (the one the store keeps)."""
    del token
    return IncidentStore(root).beat_index()


@st.cache_resource(show_spinner="Building the block list (once)...")
def gazetteer(root: str, token: str) -> BlockGazetteer:
    """Return the block gazetteer of the store (the one every app and command uses)."""
    del token
    return BlockGazetteer.from_store(IncidentStore(root))


def beat_at(root: str, token: str, lon: float, lat: float) -> str | None:
    """Return the beat containing the WGS84 point, or None outside every beat."""
    return beat_index(root, token).beat_at(lon, lat)


def find_beat(root: str, token: str, text: str) -> geocode.FoundBeat:
    """Return the beat of a typed address, block or "lat, lon" (:func:`geocode.find_beat`)."""
    return geocode.find_beat(text, gazetteer=gazetteer(root, token), index=beat_index(root, token))


@st.cache_data(show_spinner="Computing the profile...", max_entries=64)
def area_profile(
    root: str, token: str, level: str, area_id: str | None, as_of: date
) -> profiles.AreaProfile:
    """Return the profile of an area for the 28 days ending on `as_of` (same as the CLI)."""
    loaded = profile_inputs(root, token, as_of, inputs.HISTORY_YEARS, level, area_id)
    return profiles.profile_loaded(
        loaded,
        level=data.analysis_level(level),
        area_id=area_id,
        neighbours=neighbours(root, token),
        label=data.label(root, token, level) if level != "department" else None,
    )


@st.cache_data(show_spinner="Explaining the changes...", max_entries=32)
def change_reasons(
    root: str, token: str, sector: str, as_of: date, window: str, level: str = schema.SECTOR
) -> dict[str, tuple[str, str, pd.DataFrame]]:
    """Return, per flagged beat of the review, why: (parts in words, chance in words, table).

    The table is :func:`analysis.compare.change_breakdown` of the beat's incidents in the
    review window against the previous period.
    """
    review = sector_review(root, token, sector, as_of, window, level)
    return compare.explain_flagged(
        review.beats,
        profile_inputs(root, token, as_of, inputs.HISTORY_YEARS, level, sector).incidents,
        as_of=as_of,
        window=window,
        timezone=IncidentStore(root).timezone,
    )


@st.cache_data(show_spinner="Reviewing the sector...", max_entries=32)
def sector_review(
    root: str, token: str, sector: str, as_of: date, window: str, level: str = schema.SECTOR
) -> profiles.SectorReview:
    """Return the side-by-side review of a sector's beats (same as ``profile --review``).

    `level` is ``district`` for a department without sectors: its precincts are reviewed.
    Only the reviewed area's incidents are read.
    """
    loaded = profile_inputs(root, token, as_of, inputs.REVIEW_HISTORY_YEARS, level, sector)
    return profiles.review_loaded(
        loaded, sector=sector, window=window, level=data.analysis_level(level)
    )


@st.cache_data(show_spinner=False, max_entries=32)
def incidents_in_period(
    root: str, token: str, beats: tuple[str, ...], period: Period
) -> pd.DataFrame:
    """Return the incidents of `beats` on the days of `period` (only they are read)."""
    del token
    return inputs.load_incidents(
        IncidentStore(root), inputs.PROFILE_COLUMNS, period, beats=list(beats)
    ).reset_index(drop=True)


@st.cache_data(show_spinner="Preparing the printable packet...", max_entries=16)
def packet_html(
    root: str, token: str, level: str, area_id: str, as_of: date, window: str | None = None
) -> str:
    """Return the printable HTML packet (profile, plus the sector review for a sector)."""
    profile = area_profile(root, token, level, area_id, as_of)
    review = sector_review(root, token, area_id, as_of, window, level) if window else None
    stations = data.load_stations(root, token)
    note = (
        data.dataset_label(root, token, profile.period)
        if profile.n_incidents
        else profiles.no_incidents_note(profile)
    )
    return report.render_packet(
        profile,
        data.load_beats(root, token),
        incidents_in_period(root, token, tuple(profile.beats), profile.period),
        stations=stations if len(stations) else None,
        review=review,
        note=note,
    )


def packet_pdf(
    root: str,
    token: str,
    level: str,
    area_id: str,
    as_of: date,
    window: str | None = None,
    *,
    paper: str = "letter",
) -> bytes:
    """Return the PDF packet: the profile on page 1, the sector review (and why) on page 2."""
    profile = area_profile(root, token, level, area_id, as_of)
    review = sector_review(root, token, area_id, as_of, window, level) if window else None
    reasons = change_reasons(root, token, area_id, as_of, str(window), level) if review else None
    stations = data.load_stations(root, token)
    return pdf.packet_pdf(
        profile,
        data.load_beats(root, token),
        stations=stations if len(stations) else None,
        review=review,
        reasons=reasons,
        note=data.dataset_label(root, token, profile.period) or "",
        paper=paper,
    )


def profile_map(
    root: str,
    token: str,
    profile: profiles.AreaProfile,
    *,
    fills: gpd.GeoDataFrame | None = None,
    period: Period | None = None,
    pin: tuple[float, float, str] | None = None,
) -> folium.Map:
    """Return the folium map of an area: its beats, neighbours, station and incidents.

    `pin` (``lat, lon, label``) marks a found address.

    Incidents of `period` (default the profile's) are drawn as clustered
    markers up to ``dashboard.maps.MAX_MARKERS`` (2,000) and as grid-cell counts above that.
    """
    beats = data.load_beats(root, token)
    ids = beats[schema.BEAT]
    members = beats[ids.isin(profile.beats)]
    around = beats[ids.isin(profile.neighbour_beats)]
    stations = data.load_stations(root, token)
    station = stations.iloc[0:0]
    if profile.station and len(stations):
        station = stations[stations[schema.STATION_ID] == profile.station["station_id"]]
    frame = gpd.GeoDataFrame(
        geometry=[*members.geometry, *around.geometry, *station.geometry], crs=beats.crs
    )
    fmap = maps.base_map(frame, zoom=13)  # fitted to the area, its neighbours and its station
    districts, all_stations, word = data.map_context(root, token)
    maps.add_context(  # offline only: named districts, the other stations
        fmap,
        districts,
        all_stations,
        word=word,
        drawn_station_ids=station[schema.STATION_ID].tolist(),
    )
    if len(around):
        maps.add_outlines(
            fmap,
            around,
            name="Neighbouring beats",
            color="#737373",
            weight=1.5,
            label_column=schema.BEAT,
        )
    if fills is not None:
        maps.choropleth(
            fmap,
            fills,
            "incidents",
            name="Incidents in window",
            fields=[("change", "Change"), ("flag", "Flag")],
        )
    else:
        maps.add_outlines(
            fmap, members, name=profile.title, color="#08306b", weight=4, label_column=schema.BEAT
        )
    if len(station):
        maps.add_stations(fmap, station)
    incidents = incidents_in_period(root, token, tuple(profile.beats), period or profile.period)
    maps.add_incidents(fmap, incidents)
    if pin is not None:
        maps.add_pin(fmap, pin[0], pin[1], pin[2])
    return fmap


def sector_fills(root: str, token: str, review: profiles.SectorReview) -> gpd.GeoDataFrame:
    """Return the sector's beat polygons with ``incidents``, ``flag`` and a ``change`` label."""
    table = review.beats.set_index(schema.BEAT)
    fills = data.load_beats(root, token)
    fills = fills[fills[schema.BEAT].isin(table.index)].copy()
    rows = table.loc[fills[schema.BEAT]]
    fills["incidents"] = rows["incidents"].to_numpy()
    fills["flag"] = rows["flag"].to_numpy()
    fills["change"] = ["n/a" if pd.isna(v) else f"{v:+.0f}%" for v in rows["pct_change"].to_numpy()]
    return fills


def comparison_view(profile: profiles.AreaProfile) -> pd.DataFrame:
    """Return the CompStat table as displayed (same numbers as the CLI JSON ``comparisons``)."""
    table = profile.comparisons
    counts = compare.covered_counts(table)  # empty where the data do not cover the period
    return pd.DataFrame(
        {
            "window": table["label"],
            "period": [f"{a} – {b}" for a, b in zip(table["start"], table["end"], strict=True)],
            "current": table["current"].astype(int),
            "previous": counts["previous"],
            "change %": table["pct_change"].round(1),
            "p-value": table["p_value"],
            "flag": table["flag"],
            "last year": counts["last_year"],
            "change vs last year %": table["pct_change_last_year"].round(1),
            "p-value (last year)": table["p_value_last_year"],
            "flag (last year)": table["flag_last_year"],
        }
    )


def trend_chart(profile: profiles.AreaProfile) -> alt.Chart:
    """Return the daily incident counts of the period as a bar chart."""
    daily = profile.daily.assign(date=pd.to_datetime(profile.daily["date"]))
    return (
        alt.Chart(daily, title="Incidents per day")
        .mark_bar()
        .encode(
            x=alt.X("date:T", title=None),
            y=alt.Y("incidents:Q", title="incidents"),
            tooltip=["date:T", "incidents:Q"],
        )
    )


def category_chart(profile: profiles.AreaProfile) -> alt.Chart:
    """Return incidents by category as a horizontal bar chart."""
    counts = profile.counts_by_category.rename_axis("category").reset_index(name="incidents")
    return (
        alt.Chart(counts, title="By category")
        .mark_bar()
        .encode(
            y=alt.Y("category:N", sort=list(counts["category"]), title=None),
            x=alt.X("incidents:Q"),
            tooltip=["category:N", "incidents:Q"],
        )
    )


def hour_weekday_chart(profile: profiles.AreaProfile) -> alt.Chart:
    """Return the hour-of-day x weekday matrix as a heat map (white = none, whole counts)."""
    top = max(int(profile.hour_weekday.to_numpy().max(initial=0)), 1)
    long = (
        profile.hour_weekday.rename_axis("weekday")
        .reset_index()
        .melt(id_vars="weekday", var_name="hour", value_name="incidents")
    )
    return (
        alt.Chart(long, title="Hour of day × weekday")
        .mark_rect()
        .encode(
            x=alt.X("hour:O"),
            y=alt.Y("weekday:N", sort=list(profiles.WEEKDAYS), title=None),
            color=alt.Color(
                "incidents:Q",
                scale=alt.Scale(scheme="reds", domain=[0, top]),
                legend=alt.Legend(format="d", tickMinStep=1),
            ),
            tooltip=["weekday:N", "hour:O", "incidents:Q"],
        )
    )
