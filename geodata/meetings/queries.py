"""Reading the schedule: areas, venues, series, occurrences with exceptions, find my meeting."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from geodata import schema
from geodata.meetings.model import (
    MEETING_COLUMNS,
    MeetingError,
    _match_id,
    _none,
    areas_table,
    exceptions_table,
    series_beats_table,
    series_table,
    venues_table,
)
from geodata.meetings.recurrence import (
    _aware,
    _to_local_naive,
    _zone,
    describe_rule,
    expand_rule,
    meeting_end,
)

if TYPE_CHECKING:
    from geodata.geocode import BlockGazetteer
    from geodata.join import BeatIndex

__all__ = [
    "MeetingLookup",
    "find_my_meeting",
    "list_areas",
    "list_series",
    "list_venues",
    "next_meetings",
    "schedule_token",
    "schedule_zone",
    "upcoming_meetings",
]


def schedule_token(engine: Engine) -> str:
    """Return a short token that changes whenever any series, exception or venue changes.

    Every edit bumps a series ``version`` (and ``updated_at``), so the sum of versions with the
    counts of series, exceptions and venues identifies the schedule's state; caches key on it.
    """
    query = sa.select(
        sa.select(sa.func.count()).select_from(series_table).scalar_subquery(),
        sa.select(sa.func.coalesce(sa.func.sum(series_table.c.version), 0)).scalar_subquery(),
        sa.select(sa.func.count()).select_from(exceptions_table).scalar_subquery(),
        sa.select(sa.func.count()).select_from(venues_table).scalar_subquery(),
    )
    with engine.connect() as connection:
        row = connection.execute(query).one()
    return "-".join(str(int(v)) for v in row)


def list_areas(engine: Engine) -> pd.DataFrame:
    """Return the known beats with their sector and district."""
    with engine.connect() as connection:
        return pd.read_sql(sa.select(areas_table).order_by(areas_table.c.beat), connection)


def list_venues(engine: Engine) -> pd.DataFrame:
    """Return every venue (stations first, then community venues by name)."""
    query = sa.select(venues_table).order_by(venues_table.c.kind.desc(), venues_table.c.name)
    with engine.connect() as connection:
        return pd.read_sql(query, connection)


def _series_rows(
    connection: sa.Connection, ids: Iterable[int] | None = None, *, include_archived: bool = False
) -> pd.DataFrame:
    """Return series rows with their beats; archived series only with `include_archived`."""
    beats = (
        sa.select(
            series_beats_table.c.series_id,
            series_beats_table.c.beat,
        )
        .order_by(series_beats_table.c.series_id, series_beats_table.c.beat)
        .subquery()
    )
    query = sa.select(series_table)
    if ids is not None:
        query = query.where(series_table.c.id.in_(list(ids)))
    if not include_archived:
        query = query.where(series_table.c.archived_at.is_(None))
    series = pd.read_sql(query.order_by(series_table.c.id), connection)
    members = pd.read_sql(sa.select(beats), connection)
    joined = members.groupby("series_id")["beat"].agg(lambda b: ",".join(sorted(b)))
    series["beats"] = series["id"].map(joined).fillna("")
    return series


def list_series(engine: Engine) -> pd.DataFrame:
    """Return every series with its venue and the beats it serves (comma-joined).

    Archived series are included (the history), with ``archived`` True; the schedule itself
    (:func:`upcoming_meetings`, the calendars) leaves them out.
    """
    with engine.connect() as connection:
        series = _series_rows(connection, include_archived=True)
        venues = pd.read_sql(sa.select(venues_table), connection)
    series = series.merge(
        venues.add_prefix("venue_"), left_on="venue_id", right_on="venue_id", how="left"
    )
    series["schedule"] = series["rrule"].map(describe_rule)
    series["archived"] = series["archived_at"].notna()
    return series


def _area_ids(
    connection: sa.Connection, beat: str | None, sector: str | None, district: str | None
) -> dict[str, str]:
    """Return the areas asked for, level -> id as the schedule stores it (``k3`` typed: ``K3``).

    Raises
    ------
    MeetingError
        For an id the schedule does not know (field: the level).
    """
    areas: dict[str, str] = {}
    for level, value in (("beat", beat), ("sector", sector), ("district", district)):
        if value is None:
            continue
        column = areas_table.c[level]
        key = _match_id(value, connection.execute(sa.select(column).distinct()).scalars())
        if key is None:
            raise MeetingError({level: f"{value!r} is not a known {level} id"})
        areas[level] = str(key)
    return areas


def _area_series(
    connection: sa.Connection, areas: dict[str, str]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the live series serving `areas` (:func:`_area_ids`; all when empty), exceptions."""
    ids = None
    if areas:
        query = (
            sa.select(series_beats_table.c.series_id)
            .join(areas_table, areas_table.c.beat == series_beats_table.c.beat)
            .distinct()
        )
        for level, key in areas.items():
            query = query.where(areas_table.c[level] == key)
        ids = [int(r[0]) for r in connection.execute(query)]
    series = _series_rows(connection, ids)
    exceptions = pd.read_sql(
        sa.select(exceptions_table).where(exceptions_table.c.series_id.in_(series["id"].tolist())),
        connection,
    )
    return series, exceptions


def _occurrences(
    series: pd.DataFrame,
    exceptions: pd.DataFrame,
    venues: pd.DataFrame,
    start: datetime,
    end: datetime,
) -> list[dict[str, Any]]:
    venue_by_id = venues.set_index("id")
    exc_by_key = {
        (int(r.series_id), pd.Timestamp(r.original_start).to_pydatetime()): r
        for r in exceptions.itertuples()
    }
    rows: list[dict[str, Any]] = []
    for s in series.itertuples():
        tz = _zone(s.tzid)
        dtstart = pd.Timestamp(s.dtstart).to_pydatetime()
        lo = _to_local_naive(start, tz)
        hi = _to_local_naive(end, tz)
        # moved occurrences may come into (or leave) the window: look a year either side
        originals = expand_rule(
            s.rrule, dtstart, lo - timedelta(days=366), hi + timedelta(days=366), tzid=s.tzid
        )
        for original in originals:
            key = original.replace(tzinfo=None)
            exc = exc_by_key.get((int(s.id), key))
            status, note, venue_id = "scheduled", "", int(s.venue_id)
            begin, minutes = key, int(s.duration_min)
            if exc is not None:
                status, note = exc.status, exc.note or ""
                if exc.status == "moved":
                    begin = pd.Timestamp(exc.new_start).to_pydatetime()
                    if not pd.isna(exc.new_venue_id):
                        venue_id = int(exc.new_venue_id)
                    if not pd.isna(exc.new_duration_min):
                        minutes = int(exc.new_duration_min)
            if not lo <= begin < hi:
                continue
            venue = venue_by_id.loc[venue_id]
            rows.append(
                {
                    "series_id": int(s.id),
                    "title": s.title,
                    "start": _aware(begin, tz),
                    "end": meeting_end(_aware(begin, tz), minutes),
                    "original_start": _aware(key, tz),
                    "status": status,
                    "note": note,
                    "venue_id": venue_id,
                    "venue_name": venue["name"],
                    "address": venue["address"],
                    "phone": venue["phone"],
                    "lat": float(venue["lat"]),
                    "lon": float(venue["lon"]),
                    "station_id": _none(venue["station_id"]),
                    "beats": s.beats,
                    "area_kind": s.area_kind,
                    schema.SECTOR: _none(s.sector),
                    schema.DISTRICT: _none(s.district),
                    "contact": _none(s.contact),
                    "virtual_link": _none(s.virtual_link),
                    "illustrative": bool(s.illustrative),
                    "rrule": s.rrule,
                    "version": int(s.version),
                }
            )
    return rows


def _frame(rows: list[dict[str, Any]], tzid: str) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=list(MEETING_COLUMNS))
    for column in ("start", "end", "original_start"):
        frame[column] = pd.to_datetime(
            [v.astimezone(UTC) for v in frame[column]], utc=True
        ).tz_convert(tzid)
    frame["illustrative"] = frame["illustrative"].astype(bool)
    frame = frame.sort_values(["start", "series_id"], kind="stable").reset_index(drop=True)
    return frame


def _window(
    start: date | datetime | None, end: date | datetime | None, tz: ZoneInfo
) -> tuple[datetime, datetime]:
    lo = _to_local_naive(start, tz) if start is not None else datetime.now(tz).replace(tzinfo=None)
    if end is None:
        hi = lo + timedelta(days=183)
    elif isinstance(end, datetime):
        hi = _to_local_naive(end, tz)
    else:  # a date: the whole day is included
        hi = datetime.combine(end, time()) + timedelta(days=1)
    if hi <= lo:
        raise MeetingError(
            {"end": f"the end {hi:%Y-%m-%d %H:%M} is before the start {lo:%Y-%m-%d}"}
        )
    return lo, hi


def upcoming_meetings(
    engine: Engine,
    *,
    beat: str | None = None,
    sector: str | None = None,
    district: str | None = None,
    start: date | datetime | None = None,
    end: date | datetime | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Return one row per meeting occurrence in a window, exceptions applied.

    Cancelled occurrences are kept with status ``cancelled``; moved ones appear at their new
    time and venue with status ``moved`` (and their ``original_start``).

    Parameters
    ----------
    engine
        The meetings database.
    beat, sector, district
        Only series serving this beat / a beat of this sector / of this district (a sector
        meeting serves all beats of its sector).
    start, end
        Window; naive times are local, a date `end` includes that day. Default: now to 183
        days ahead.
    limit
        At most this many rows (the earliest).

    Returns
    -------
    DataFrame
        :data:`MEETING_COLUMNS`, ``start``/``end`` tz-aware in the series' zone, sorted by start.
    """
    with engine.connect() as connection:
        tzid = _schedule_zone(connection)
        lo, hi = _window(start, end, _zone(tzid))
        areas = _area_ids(connection, beat, sector, district)
        series, exceptions = _area_series(connection, areas)
        venues = pd.read_sql(sa.select(venues_table), connection)
    frame = _frame(_occurrences(series, exceptions, venues, lo, hi), tzid)
    return frame.head(limit) if limit is not None else frame


def _schedule_zone(connection: sa.Connection) -> str:
    zones = connection.execute(
        sa.select(series_table.c.tzid, sa.func.count())
        .group_by(series_table.c.tzid)
        .order_by(sa.func.count().desc(), series_table.c.tzid)
    ).first()
    if zones:
        return str(zones[0])
    from geodata import settings  # an empty schedule: the selected department's zone

    return settings.department().timezone


def schedule_zone(engine: Engine) -> str:
    """Return the time zone of the schedule: that of most series (a department has one zone).

    Lists and windows (a date `end` includes that day) are in it; an empty database gives the
    zone of the selected department (:func:`geodata.settings.department`).
    """
    with engine.connect() as connection:
        return _schedule_zone(connection)


def next_meetings(
    engine: Engine, beat: str, *, n: int = 3, now: datetime | None = None
) -> pd.DataFrame:
    """Return the next `n` meetings (not cancelled) that serve `beat`, within 400 days."""
    tz = _zone(schedule_zone(engine))
    start = _to_local_naive(now, tz) if now is not None else datetime.now(tz).replace(tzinfo=None)
    upcoming = upcoming_meetings(engine, beat=beat, start=start, end=start + timedelta(days=400))
    return upcoming[upcoming["status"] != "cancelled"].head(n).reset_index(drop=True)


@dataclass(frozen=True)
class MeetingLookup:
    """Where a resident is and the meetings that serve them."""

    beat: str | None
    sector: str | None
    district: str | None
    matched: str
    how: str
    lat: float
    lon: float
    station: dict[str, Any] | None
    meetings: pd.DataFrame


def find_my_meeting(
    engine: Engine,
    query: str | tuple[float, float],
    *,
    gazetteer: BlockGazetteer,
    beat_index: BeatIndex,
    n: int = 3,
    now: datetime | None = None,
) -> MeetingLookup:
    """Return the beat, sector, district, station and next `n` meetings for an address or point.

    Parameters
    ----------
    query
        A block address (``1234 W Madison St``), ``"lat, lon"`` text, or a ``(lat, lon)`` pair
        (a map click).
    gazetteer
        A :class:`geodata.geocode.BlockGazetteer` (its CRS must equal the beat index's).
    beat_index
        A :class:`geodata.join.BeatIndex`.
    now
        Meetings after this moment (default: now).

    Raises
    ------
    MeetingError
        The address is not found (field ``address``) or lies in no beat.
    """
    from geodata.geocode import find_beat

    found = find_beat(query, gazetteer=gazetteer, index=beat_index)
    if found.located is None:
        hints = gazetteer.suggestions(str(query), limit=3)
        # the example is an address of this department's own blocks (none when it has none)
        example = f", e.g. {found.example}" if found.example else ""
        text = f"{query!r} was not found" + (
            f"; known blocks like it: {', '.join(hints)}"
            if hints
            else f" (type a house number and street{example}, or lat, lon)"
        )
        raise MeetingError({"address": text})
    located = found.located
    lat, lon, matched, how = located.lat, located.lon, located.matched, located.how
    if found.beat is None:
        raise MeetingError({"address": f"{matched} lies in no beat of the jurisdiction"})
    beat = found.beat
    areas = list_areas(engine).set_index("beat")
    sector = _none(areas.loc[beat, "sector"]) if beat in areas.index else None
    district = _none(areas.loc[beat, "district"]) if beat in areas.index else None
    venues = list_venues(engine)
    station_rows = venues[venues["station_id"] == district]
    meetings = next_meetings(engine, beat, n=n, now=now)
    if station_rows.empty and len(meetings):
        station_rows = venues[venues["id"] == meetings["venue_id"].iloc[0]]
    station = None if station_rows.empty else station_rows.iloc[0].to_dict()
    return MeetingLookup(beat, sector, district, matched, how, lat, lon, station, meetings)
