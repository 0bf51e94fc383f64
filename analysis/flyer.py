"""Printable meeting flyer for one beat: one self-contained HTML page (no scripts, no network).

The map is the inline SVG of :func:`analysis.report.svg_map` (the beat filled, the other beats of
its sector outlined, the station as a star). Every text that came from a person or the data
(titles, notes, venue names, addresses) is HTML-escaped.
"""

from __future__ import annotations

import html
import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import TYPE_CHECKING

import geopandas as gpd
import pandas as pd
import pyproj

from analysis.report import svg_map
from geodata import schema

if TYPE_CHECKING:
    from sqlalchemy import Engine

__all__ = ["Flyer", "flyer_inputs", "place_line", "render_flyer"]

_CSS = """
body{font:15px/1.45 system-ui,sans-serif;margin:24px;color:#1a1a1a;max-width:820px}
h1{font-size:28px;margin:0 0 4px}
h2{font-size:18px;margin:18px 0 6px;border-bottom:2px solid #08306b}
table{border-collapse:collapse;width:100%}
td,th{border:1px solid #bbb;padding:4px 8px;text-align:left}
th{background:#eef3fa}.cancelled{text-decoration:line-through;color:#888}.moved{font-weight:bold}
.note{color:#555;font-size:13px}.grid{display:flex;gap:24px;flex-wrap:wrap;align-items:flex-start}
@media print{body{margin:10mm}}
"""


def _e(value: object) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)) or value is pd.NA:
        return ""
    return html.escape(str(value), quote=True)


def _clock(moment: pd.Timestamp) -> str:
    return f"{moment:%I:%M %p}".lstrip("0")


def place_line(
    sector: object,
    district: object,
    level_words: Mapping[str, str] | None = None,
    *,
    capitalize: bool = True,
) -> str:
    """Return "Sector K, precinct W" in the department's words (default: the canonical names).

    A beat in no top-level area gives "Sector 99, no precinct".

    Parameters
    ----------
    sector, district
        The ids of the beat's sector and top-level area.
    level_words
        Canonical level -> the department's word
        (:meth:`geodata.department.Department.level_words`).
    capitalize
        Start with a capital (a sentence), or not ("sector K, precinct W" inside one).
    """
    words = {schema.SECTOR: "sector", schema.DISTRICT: "district", **(level_words or {})}
    first = words[schema.SECTOR].capitalize() if capitalize else words[schema.SECTOR]
    if not schema.id_text(district):  # a beat in no top-level area (Seattle's 99, H1-H3)
        return f"{first} {sector}, no {words[schema.DISTRICT]}"
    return f"{first} {sector}, {words[schema.DISTRICT]} {district}"


@dataclass(frozen=True)
class Flyer:
    """What the flyer of one beat shows.

    Rendered as HTML by :func:`render_flyer`, as PDF by :func:`analysis.pdf.flyer_pdf`.

    Attributes
    ----------
    beat
        The beat id.
    meetings
        Its next meetings, as returned by :func:`geodata.meetings.upcoming_meetings`
        (cancelled ones are shown struck through, moved ones with their note).
    beats
        Canonical beats (projected CRS, metres) for the map: the beat and the rest of its sector.
    station
        The district station (``name``, ``address``, ``phone``), if known.
    station_xy
        The station's position in the beats' CRS.
    feed_name
        File name of the beat's calendar feed, printed as a hint.
    level_words
        The department's words for its levels (see :func:`place_line`).
    """

    beat: str
    meetings: pd.DataFrame
    beats: gpd.GeoDataFrame
    station: Mapping[str, object] | None = None
    station_xy: tuple[float, float] | None = None
    feed_name: str | None = None
    level_words: Mapping[str, str] = field(default_factory=dict)

    @property
    def sector(self) -> str | None:
        """The beat's sector (None when the beat is not in `beats`)."""
        return self._of(schema.SECTOR)

    @property
    def district(self) -> str | None:
        """The beat's top-level area (None when the beat is not in `beats`)."""
        return self._of(schema.DISTRICT)

    @property
    def place(self) -> str:
        """The place line, "Sector K, district W" in the department's words."""
        return place_line(self.sector, self.district, self.level_words)

    def _of(self, column: str) -> str | None:
        row = self.beats[self.beats[schema.BEAT] == self.beat]
        return str(row[column].iloc[0]) if len(row) else None


def flyer_inputs(
    db: Engine,
    beats: gpd.GeoDataFrame,
    beat: str,
    *,
    today: date,
    days: int = 183,
    level_words: Mapping[str, str] | None = None,
) -> Flyer:
    """Return the flyer of `beat`, for :func:`render_flyer` or :func:`analysis.pdf.flyer_pdf`.

    The next (at most six) meetings of the coming `days`, the district station from the
    meetings database's venues and its position in the beats' CRS, and `level_words` (the
    department's words for its levels, see :func:`place_line`).
    """
    from geodata import meetings

    upcoming = meetings.upcoming_meetings(
        db, beat=beat, start=today, end=today + timedelta(days=days)
    ).head(6)
    district = beats.loc[beats[schema.BEAT] == beat, schema.DISTRICT]
    venues = meetings.list_venues(db)
    station_rows = venues[venues["station_id"] == (str(district.iloc[0]) if len(district) else "")]
    station = station_rows.iloc[0].to_dict() if len(station_rows) else None
    station_xy = None
    if station is not None:
        to_xy = pyproj.Transformer.from_crs(schema.WGS84, beats.crs, always_xy=True)
        station_xy = to_xy.transform(station["lon"], station["lat"])
    return Flyer(
        beat,
        upcoming,
        beats,
        station=station,
        station_xy=station_xy,
        feed_name=f"beat_{beat}.ics",
        level_words=dict(level_words or {}),
    )


def render_flyer(flyer: Flyer) -> str:
    """Return `flyer` as an HTML document."""
    beat, meetings, beats, station = flyer.beat, flyer.meetings, flyer.beats, flyer.station
    sector = flyer.sector
    same_sector = (
        sorted(beats[schema.BEAT][beats[schema.SECTOR] == sector]) if sector is not None else []
    )
    area_map = svg_map(
        beats,
        [str(beat)],
        neighbours=[b for b in same_sector if b != str(beat)],
        station_xy=flyer.station_xy,
        size_px=380,
    )
    rows = []
    for m in meetings.itertuples():
        status = {"cancelled": "Cancelled", "moved": "Moved"}.get(m.status, "")
        note = f"{status}: {m.note}" if status and m.note else status
        rows.append(
            f'<tr class="{_e(m.status)}"><td>{m.start:%a %b %d, %Y}</td>'
            f"<td>{_clock(m.start)}–{_clock(m.end)}</td><td>{_e(m.title)}</td>"
            f"<td>{_e(m.venue_name)}<br>{_e(m.address)}</td><td>{_e(note)}</td></tr>"
        )
    table = (
        "<table><tr><th>Date</th><th>Time</th><th>Meeting</th><th>Where</th><th>Note</th></tr>"
        + "".join(rows)
        + "</table>"
        if rows
        else "<p>No meetings scheduled in the coming months.</p>"
    )
    first = meetings.iloc[0] if len(meetings) else None
    contact = ""
    if first is not None and first.get("contact"):
        contact = f"<p>Contact: {_e(first['contact'])}</p>"
    if first is not None and first.get("virtual_link"):
        contact += f"<p>Join online: {_e(first['virtual_link'])}</p>"
    station_html = ""
    if station:
        station_html = (
            f"<h2>Your police station</h2><p><b>{_e(station.get('name'))}</b><br>"
            f"{_e(station.get('address'))}<br>Phone: {_e(station.get('phone')) or 'not listed'}</p>"
        )
    illustrative = (
        '<p class="note">These dates follow an illustrative schedule, not a '
        "published one: confirm with the station before you go.</p>"
        if len(meetings) and bool(meetings["illustrative"].any())
        else ""
    )
    feed = (
        f'<p class="note">Calendar feed for your phone or computer: {_e(flyer.feed_name)}</p>'
        if flyer.feed_name
        else ""
    )
    return (
        '<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">'
        f"<title>Beat {_e(beat)} neighborhood watch meetings</title><style>{_CSS}</style></head>"
        f"<body><h1>Beat {_e(beat)} neighborhood watch meetings</h1>"
        f'<p class="note">{_e(flyer.place)}. Everyone who lives or '
        "works in the beat is welcome.</p>"
        f'<div class="grid"><div>{area_map}</div><div style="flex:1;min-width:260px">'
        f"{station_html}{contact}</div></div>"
        f"<h2>Next meetings</h2>{table}{illustrative}{feed}</body></html>"
    )
