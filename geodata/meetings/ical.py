"""iCalendar output: one calendar per area and stable per-beat/per-sector feeds."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import icalendar
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from geodata.meetings.model import (
    _none,
    venues_table,
)
from geodata.meetings.queries import (
    _area_ids,
    _area_series,
    list_areas,
)
from geodata.meetings.recurrence import (
    _aware,
    _zone,
)

__all__ = [
    "calendar_ics",
    "write_feeds",
]


def _location(name: object, address: object) -> str:
    return ", ".join(str(p) for p in (name, address) if _none(p))


def calendar_ics(
    engine: Engine,
    *,
    beat: str | None = None,
    sector: str | None = None,
    district: str | None = None,
    name: str | None = None,
) -> bytes:
    """Return an RFC 5545 calendar of the series serving an area (all series without a filter).

    One VEVENT per series with ``RRULE``; cancelled meetings as ``EXDATE``; moved meetings as
    extra VEVENTs with the same ``UID`` and a ``RECURRENCE-ID``; a ``VTIMEZONE`` for every zone
    used. ``DTSTAMP`` is the series' last change, so the file only changes when the schedule does
    (a stable feed).
    """
    with engine.connect() as connection:
        areas = _area_ids(connection, beat, sector, district)
        series, exceptions = _area_series(connection, areas)
        venues = pd.read_sql(sa.select(venues_table), connection).set_index("id")
    # the calendar's name gives the area as stored ("Beat K3"), whatever was typed
    label = name or next(
        (f"{level.capitalize()} {areas[level]} meetings" for level in areas),
        "Neighborhood watch meetings",
    )
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Beatwise//Neighborhood watch meetings//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", label)
    zones = sorted(set(series["tzid"]))  # an empty calendar needs no VTIMEZONE
    first_year = int(pd.Timestamp(series["dtstart"].min()).year) if len(series) else 2025
    for tzid in zones:
        calendar.add_component(
            icalendar.Timezone.from_tzid(
                tzid, first_date=date(first_year - 1, 1, 1), last_date=date(first_year + 15, 1, 1)
            )
        )
    by_series = {k: v for k, v in exceptions.groupby("series_id")} if len(exceptions) else {}
    for s in series.itertuples():
        tz = _zone(s.tzid)
        dtstart = _aware(pd.Timestamp(s.dtstart).to_pydatetime(), tz)
        venue = venues.loc[int(s.venue_id)]
        stamp = pd.Timestamp(s.updated_at)
        stamp = stamp.tz_localize(UTC) if stamp.tzinfo is None else stamp.tz_convert(UTC)
        uid = f"meeting-series-{int(s.id)}@beatwise"
        description = "\n".join(
            p
            for p in (
                f"Serves beat(s) {s.beats.replace(',', ', ')}",
                _none(s.notes),
                f"Contact: {s.contact}" if _none(s.contact) else None,
                f"Online: {s.virtual_link}" if _none(s.virtual_link) else None,
            )
            if p
        )

        def base(
            event: icalendar.Event,
            venue_row: pd.Series,
            start: datetime,
            minutes: int,
            s: Any = s,  # noqa: ANN401 - an itertuples row
            stamp: pd.Timestamp = stamp,
            uid: str = uid,
            description: str = description,
        ) -> None:
            event.add("uid", uid)
            event.add("dtstamp", stamp.to_pydatetime())
            event.add("summary", s.title)
            event.add("dtstart", start)
            # a length, not an end: an exact one on the night the clocks go back too (RFC 5545)
            event.add("duration", timedelta(minutes=minutes))
            event.add("location", _location(venue_row["name"], venue_row["address"]))
            event.add("geo", (float(venue_row["lat"]), float(venue_row["lon"])))
            event.add("description", description)
            event.add("sequence", int(s.version))
            if _none(s.virtual_link):
                event.add("url", s.virtual_link)

        event = icalendar.Event()
        base(event, venue, dtstart, int(s.duration_min))
        event.add("rrule", icalendar.vRecur.from_ical(s.rrule))
        own = by_series.get(s.id)
        overrides = []
        if own is not None:
            cancelled = sorted(
                _aware(pd.Timestamp(t).to_pydatetime(), tz)
                for t in own.loc[own["status"] == "cancelled", "original_start"]
            )
            if cancelled:
                event.add("exdate", cancelled)
            for exc in own[own["status"] == "moved"].sort_values("original_start").itertuples():
                moved = icalendar.Event()
                venue_row = (
                    venues.loc[int(exc.new_venue_id)] if not pd.isna(exc.new_venue_id) else venue
                )
                minutes = (
                    int(s.duration_min)
                    if pd.isna(exc.new_duration_min)
                    else int(exc.new_duration_min)
                )
                base(
                    moved,
                    venue_row,
                    _aware(pd.Timestamp(exc.new_start).to_pydatetime(), tz),
                    minutes,
                )
                moved.add(
                    "recurrence-id", _aware(pd.Timestamp(exc.original_start).to_pydatetime(), tz)
                )
                if exc.note:
                    moved["description"] = f"Moved: {exc.note}\n{description}"
                overrides.append(moved)
        calendar.add_component(event)
        for moved in overrides:
            calendar.add_component(moved)
    return calendar.to_ical()


def write_feeds(engine: Engine, directory: Path) -> list[Path]:
    """Write stable per-beat and per-sector feeds plus ``all.ics`` into `directory`.

    Files are named ``beat_<id>.ics``, ``sector_<id>.ics`` and ``all.ics``; an unchanged schedule
    gives byte-identical files. Returns the paths written.
    """
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    areas = list_areas(engine)
    written = []
    jobs: list[tuple[str, dict[str, str]]] = [("all", {})]
    jobs += [(f"beat_{b}", {"beat": b}) for b in areas["beat"]]
    jobs += [(f"sector_{s}", {"sector": s}) for s in sorted(areas["sector"].dropna().unique())]
    for stem, area in jobs:
        path = directory / f"{stem}.ics"
        content = calendar_ics(engine, **area)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
        written.append(path)
    return written
