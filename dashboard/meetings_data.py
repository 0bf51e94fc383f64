"""Cached loaders and map/flyer builders for the meetings pages.

The engine is a shared resource (``st.cache_resource``); frames are cached with
``st.cache_data`` keyed by :func:`geodata.meetings.schedule_token`, which changes with every
edit, so an analyst's move shows on the map, in the list and in the .ics at the next rerun.
"""

from __future__ import annotations

from datetime import date, datetime, time, timedelta
from typing import TYPE_CHECKING, SupportsInt, cast
from zoneinfo import ZoneInfo

import folium
import pandas as pd
import streamlit as st
from sqlalchemy import Engine

from analysis import pdf
from analysis.flyer import Flyer, flyer_inputs, render_flyer
from dashboard import data, maps
from dashboard import profile_data as pd_
from geodata import meetings, schema, settings
from geodata.store import IncidentStore

if TYPE_CHECKING:
    from streamlit.elements.lib.column_types import ColumnConfig

__all__ = [
    "CUSTOM_RULE",
    "MAX_VENUE_POPUP_ROWS",
    "calendar",
    "column_config",
    "districts",
    "engine",
    "find",
    "flyer",
    "flyer_pdf",
    "form_values",
    "meetings_map",
    "occurrence_choices",
    "rule_fields",
    "series_table",
    "token",
    "upcoming",
    "venue_markers",
    "venue_table",
]

#: Meetings listed in one venue popup (the next ones; the list below the map has them all).
MAX_VENUE_POPUP_ROWS = 5
_STATUS = {"cancelled": "CANCELLED", "moved": "MOVED", "scheduled": ""}


def column_config(tzid: str) -> dict[str, ColumnConfig | str]:
    """Return how the meeting tables show their columns (times local to `tzid`)."""
    return {
        "start": st.column_config.DatetimeColumn(
            "Starts", format="ddd MMM D, YYYY HH:mm", timezone=tzid
        ),
        "end": st.column_config.DatetimeColumn("Ends", format="HH:mm", timezone=tzid),
        "status": "Status",
        "title": "Meeting",
        "beats": "Beats",
        "venue_name": "Venue",
        "address": "Address",
        "phone": "Phone",
        "note": "Note",
    }


@st.cache_resource(show_spinner="Opening the meetings database...")
def engine(url: str | None = None, root: str | None = None) -> Engine:
    """Return the migrated (and on first use seeded) meetings database engine.

    With `root` (the incident store) the database serves that store's beats and department
    (:func:`geodata.meetings.open_for_store`); without it, the bundled sample's.
    """
    if root is None:
        return meetings.open_database(settings.database_url(url))
    return meetings.open_for_store(settings.database_url(url), IncidentStore(root))


def token(db: Engine) -> str:
    """Return the cache key of the database and its schedule's current state."""
    return f"{db.url.render_as_string(hide_password=True)}|{meetings.schedule_token(db)}"


@st.cache_data(show_spinner=False, max_entries=64)
def upcoming(
    _db: Engine,
    schedule: str,
    start: date,
    end: date,
    district: str | None = None,
    beat: str | None = None,
    sector: str | None = None,
) -> pd.DataFrame:
    """Return meetings from `start` to `end` (inclusive days), optionally for one area."""
    del schedule
    return meetings.upcoming_meetings(
        _db, start=start, end=end, district=district, beat=beat, sector=sector
    )


@st.cache_data(show_spinner=False, max_entries=64)
def calendar(
    _db: Engine,
    schedule: str,
    beat: str | None = None,
    sector: str | None = None,
    district: str | None = None,
) -> bytes:
    """Return the .ics file of an area (every series when no area is given)."""
    del schedule
    return meetings.calendar_ics(_db, beat=beat, sector=sector, district=district)


def _when(row: pd.Series) -> str:
    return f"{row['start']:%a %b %d, %H:%M}–{row['end']:%H:%M}"


def venue_markers(occurrences: pd.DataFrame) -> pd.DataFrame:
    """Return one row per venue with meetings: position, counts and escaped popup HTML.

    The popup shows the venue, address and phone, then its next meeting and up to
    :data:`MAX_VENUE_POPUP_ROWS` meetings (moved and cancelled ones marked, with the note).

    Parameters
    ----------
    occurrences
        Rows of :func:`geodata.meetings.upcoming_meetings`.
    """
    columns = ["venue_id", "venue_name", "lat", "lon", "n_meetings", "next_start", "popup"]
    if occurrences.empty:
        return pd.DataFrame(columns=columns)
    rows = []
    for venue_id, group in occurrences.sort_values("start").groupby("venue_id", sort=False):
        first = group.iloc[0]
        live = group[group["status"] != "cancelled"]
        nxt = live.iloc[0] if len(live) else None
        items = []
        for _, m in group.head(MAX_VENUE_POPUP_ROWS).iterrows():
            flag = _STATUS.get(m["status"], "")
            note = f" — {maps.esc(m['note'])}" if m["note"] else ""
            label = f"<b>{flag}</b> " if flag else ""
            items.append(
                f"<li>{label}{maps.esc(_when(m))}: {maps.esc(m['title'])} "
                f"(beats {maps.esc(m['beats'])}){note}</li>"
            )
        more = len(group) - MAX_VENUE_POPUP_ROWS
        next_html = (
            f"<b>Next meeting:</b> {maps.esc(nxt['title'])}, {maps.esc(_when(nxt))}"
            + (" (moved here)" if nxt["status"] == "moved" else "")
            if nxt is not None
            else "<b>No meeting</b> in the period (all cancelled)"
        )
        popup = (
            f"<b>{maps.esc(first['venue_name'])}</b><br>{maps.esc(first['address'])}<br>"
            f"Phone: {maps.esc(first['phone']) or 'not listed'}<br>{next_html}"
            f"<ul style='padding-left:16px;margin:4px 0'>{''.join(items)}</ul>"
            + (f"and {more} more" if more > 0 else "")
            + ("<br><i>Illustrative schedule</i>" if bool(group["illustrative"].any()) else "")
        )
        rows.append(
            {
                "venue_id": int(venue_id),
                "venue_name": first["venue_name"],
                "lat": float(first["lat"]),
                "lon": float(first["lon"]),
                "n_meetings": len(live),
                "next_start": None if nxt is None else nxt["start"],
                "popup": popup,
            }
        )
    return pd.DataFrame(rows, columns=columns)


def meetings_map(
    root: str,
    store_token: str,
    occurrences: pd.DataFrame,
    *,
    district: str | None = None,
    home: tuple[float, float] | None = None,
    home_beat: str | None = None,
) -> folium.Map:
    """Return the map: beats (the district's, or all), one marker per venue, the found place.

    Venues are few (about one per district plus community venues), far below
    ``dashboard.maps.MAX_MARKERS``, so each gets its own marker.
    """
    beats = data.load_beats(root, store_token)
    shown = beats if district is None else beats[beats[schema.DISTRICT].astype(str) == district]
    fmap = maps.base_map(shown if len(shown) else None, zoom=11)
    maps.add_outlines(
        fmap, shown, name="Beats", color="#6baed6", weight=1, label_column=schema.BEAT
    )
    if home_beat:
        mine = beats[beats[schema.BEAT] == home_beat]
        maps.add_outlines(
            fmap, mine, name="Your beat", color="#08306b", weight=4, label_column=schema.BEAT
        )
    group = folium.FeatureGroup(name="Meeting venues")
    for row in venue_markers(occurrences).itertuples():
        folium.Marker(
            [row.lat, row.lon],
            popup=folium.Popup(row.popup, max_width=340),
            tooltip=maps.esc(f"{row.venue_name}: {row.n_meetings} meeting(s)"),
            icon=maps.station_icon(str(min(row.n_meetings, 99))),
        ).add_to(group)
    group.add_to(fmap)
    maps.add_legend(fmap, None, [("#08306b", "Meeting venue (number: meetings)", "badge")])
    if home is not None:
        maps.add_pin(fmap, home[0], home[1], "your address")
    return fmap


def find(
    root: str, store_token: str, db: Engine, query: str | tuple[float, float]
) -> meetings.MeetingLookup:
    """Return beat, sector, station and next three meetings of an address or (lat, lon)."""
    return meetings.find_my_meeting(
        db,
        query,
        gazetteer=pd_.gazetteer(root, store_token),
        beat_index=pd_.beat_index(root, store_token),
        n=3,
    )


def _flyer_inputs(root: str, store_token: str, db: Engine, beat: str, days: int) -> Flyer:
    today = datetime.now(tz=ZoneInfo(meetings.schedule_zone(db))).date()
    beats = data.load_beats(root, store_token)
    words = data.department(root, store_token).level_words()
    return flyer_inputs(db, beats, beat, today=today, days=days, level_words=words)


def flyer(root: str, store_token: str, db: Engine, beat: str, *, days: int = 183) -> str:
    """Return the printable HTML flyer of `beat`: map, next meetings, venue, station contact."""
    return render_flyer(_flyer_inputs(root, store_token, db, beat, days))


def flyer_pdf(
    root: str, store_token: str, db: Engine, beat: str, *, paper: str = "letter", days: int = 183
) -> bytes:
    """Return the one-page PDF flyer of `beat` (same content as :func:`flyer`)."""
    return pdf.flyer_pdf(_flyer_inputs(root, store_token, db, beat, days), paper=paper)


@st.cache_data(show_spinner=False, max_entries=16)
def series_table(_db: Engine, schedule: str) -> pd.DataFrame:
    """Return every series with venue and a readable schedule (for the editor)."""
    del schedule
    return meetings.list_series(_db)


@st.cache_data(show_spinner=False, max_entries=16)
def venue_table(_db: Engine, schedule: str) -> pd.DataFrame:
    """Return every venue with a display label ``name — address``."""
    del schedule
    venues = meetings.list_venues(_db)
    venues["label"] = venues["name"] + " — " + venues["address"]
    return venues


def occurrence_choices(db: Engine, series_id: int, *, days: int = 366) -> pd.DataFrame:
    """Return the series' meetings over the next `days` days (any status), for the editor."""
    today = datetime.now(tz=ZoneInfo(meetings.schedule_zone(db))).date()
    rows = meetings.upcoming_meetings(db, start=today, end=today + timedelta(days=days))
    rows = rows[rows["series_id"] == series_id].reset_index(drop=True)
    rows["label"] = [
        f"{r.original_start:%a %Y-%m-%d %H:%M}"
        + {"cancelled": " (cancelled)", "moved": f" (moved to {r.start:%a %Y-%m-%d %H:%M})"}.get(
            r.status, ""
        )
        for r in rows.itertuples()
    ]
    return rows


@st.cache_data(show_spinner=False, max_entries=16)
def districts(_db: Engine, schedule: str) -> list[str]:
    """Return the district ids the meetings database knows (its filter values)."""
    del schedule
    return sorted(meetings.list_areas(_db)["district"].dropna().unique())


def form_values(row: pd.Series | None, tzid: str) -> dict[str, object]:
    """Return the editor form's field values for a stored series (`row`), or a new one.

    Keys are the form's field names (the widget key is ``ed_<name>_<series id or new>``); the
    editor writes them into the session state when a series is opened or reloaded, so the
    browser shows exactly the stored values.

    Parameters
    ----------
    row
        A row of :func:`geodata.meetings.list_series`, or None for the "new series" form.
    tzid
        The schedule's zone (:func:`geodata.meetings.schedule_zone`): a new series' zone and
        the zone whose today starts its form.
    """

    def value(column: str, default: object = "") -> object:
        if row is None:
            return default
        stored = row[column]
        return default if stored is None or stored != stored else stored  # NaN -> default

    start = value("dtstart", None)
    start = pd.Timestamp(start).to_pydatetime() if start is not None else None
    is_sector = value("area_kind", "beat") == "sector"
    tzid = str(value("tzid", tzid))
    return {
        "title": str(value("title")),
        "beats": "" if is_sector else str(value("beats")),
        "sector": str(value("sector")) if is_sector else "",
        "venue": int(row["venue_id"]) if row is not None else None,
        "date": start.date() if start is not None else datetime.now(ZoneInfo(tzid)).date(),
        "time": start.time() if start is not None else time(18, 30),
        # the stored whole minutes, or the default
        "minutes": int(cast(SupportsInt, value("duration_min", meetings.DEFAULT_DURATION_MIN))),
        **rule_fields(str(value("rrule", "FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU")), tzid),
        "reason": str(value("duration_reason")),
        "contact": str(value("contact")),
        "notes": str(value("notes")),
        "link": str(value("virtual_link")),
        "illustrative": bool(value("illustrative", False)),
        "vname": "",
        "vaddr": "",
        "vlat": "",
        "vlon": "",
        "vphone": "",
        "allow": False,
    }


#: The picker's choice for a rule it cannot show: the rule is typed (RFC 5545 text).
CUSTOM_RULE = "custom rule"


def rule_fields(rule: str, tzid: str) -> dict[str, object]:
    """Return the recurrence picker's fields that show `rule` (typed text if it cannot).

    The fields are ``rep`` (a key of :data:`geodata.meetings.REPEATS` or :data:`CUSTOM_RULE`),
    ``week``, ``weekday``, ``skip`` (months without a meeting), ``until`` and ``rrule``.
    """
    pick = meetings.pick_from_rule(rule, tzid=tzid)
    if pick is None:
        return {
            "rep": CUSTOM_RULE,
            "week": 2,
            "weekday": "TU",
            "skip": [],
            "until": None,
            "rrule": rule,
        }
    return {
        "rep": pick.repeat,
        "week": pick.week,
        "weekday": pick.weekday,
        "skip": list(pick.skip_months),
        "until": pick.until,
        "rrule": rule,
    }
