"""Neighborhood watch meetings: the one authoritative schedule, in a SQL database.

A *series* is a recurring meeting: the beat(s) or sector it serves, a venue (a police station or a
named community venue with address and location), a start (local wall time), an RFC 5545 RRULE,
a duration (60 minutes by default; longer needs a reason), contact, notes and an optional virtual
link. *Exceptions* cancel or move single occurrences. Times are stored as local wall time plus a
time zone name, so a series at 18:30 stays at 18:30 across daylight-saving changes; a start that
does not exist locally (in the spring-forward gap) is rejected.

Writes are transactional and use optimistic locking: every series has a ``version``; an edit names
the version it was based on and fails with :class:`ConflictError` when someone else saved first.
Invalid input raises :class:`MeetingError` naming the field at fault, and nothing is saved.

The seed schedule (:func:`seed_schedule`) is *illustrative*: it follows the pattern of Chicago's
CAPS beat meetings (every beat about every two months, evenings, at the district station; some
sectors monthly) but is not a published schedule, and every seeded series says so.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import icalendar
import numpy as np
import pandas as pd
import sqlalchemy as sa
from dateutil import rrule as du_rrule
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from geodata import db, schema, settings
from geodata.errors import InputError

if TYPE_CHECKING:
    from geodata.geocode import BlockGazetteer
    from geodata.join import BeatIndex

__all__ = [
    "DEFAULT_DURATION_MIN",
    "ILLUSTRATIVE_NOTE",
    "MAX_PLAIN_DURATION_MIN",
    "MEETING_COLUMNS",
    "SECTOR_MEETING_DISTRICTS",
    "ConflictError",
    "MeetingError",
    "MeetingLookup",
    "VenueConflictError",
    "calendar_ics",
    "cancel_occurrence",
    "create_series",
    "describe_rule",
    "expand_rule",
    "find_my_meeting",
    "list_areas",
    "list_series",
    "list_venues",
    "load_reference_data",
    "move_occurrence",
    "next_meetings",
    "open_database",
    "restore_occurrence",
    "schedule_token",
    "seed_schedule",
    "upcoming_meetings",
    "update_series",
    "validate_rrule",
    "venue_conflicts",
    "write_feeds",
]

log = logging.getLogger(__name__)

DEFAULT_DURATION_MIN = 60
#: Longest meeting without an explicit ``duration_reason``.
MAX_PLAIN_DURATION_MIN = 60
#: Longest meeting at all (8 hours).
MAX_DURATION_MIN = 480
#: Days ahead that conflict detection and gap checks look at.
HORIZON_DAYS = 730
#: Districts whose seeded schedule has monthly *sector* meetings instead of beat meetings.
SECTOR_MEETING_DISTRICTS = ("01", "12", "18", "19")
ILLUSTRATIVE_NOTE = (
    "Illustrative schedule following the CAPS pattern (beat meetings about every two months, in "
    "the evening, at the district station); not a published Chicago Police schedule. Confirm with "
    "the district's CAPS office."
)
_ALLOWED_PARTS = {
    "FREQ",
    "INTERVAL",
    "COUNT",
    "UNTIL",
    "BYDAY",
    "BYMONTHDAY",
    "BYMONTH",
    "BYSETPOS",
    "BYWEEKNO",
    "BYYEARDAY",
    "WKST",
}
_FREQS = ("DAILY", "WEEKLY", "MONTHLY", "YEARLY")
_STATUSES = ("scheduled", "cancelled", "moved")

#: Columns of :func:`upcoming_meetings`, in order.
MEETING_COLUMNS = (
    "series_id",
    "title",
    "start",
    "end",
    "original_start",
    "status",
    "note",
    "venue_id",
    "venue_name",
    "address",
    "phone",
    "lat",
    "lon",
    "station_id",
    "beats",
    "area_kind",
    schema.SECTOR,
    schema.DISTRICT,
    "contact",
    "virtual_link",
    "illustrative",
    "rrule",
    "version",
)

# --- tables (the head of the ``meetings`` migration branch) -----------------------------------
metadata = sa.MetaData()
areas_table = sa.Table(
    "meeting_areas",
    metadata,
    sa.Column("beat", sa.String(16), primary_key=True),
    sa.Column("sector", sa.String(16)),
    sa.Column("district", sa.String(16)),
)
venues_table = sa.Table(
    "meeting_venues",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(16)),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("address", sa.String(300), nullable=False),
    sa.Column("phone", sa.String(40), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
)
series_table = sa.Table(
    "meeting_series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("area_kind", sa.String(10), nullable=False),
    sa.Column("sector", sa.String(16)),
    sa.Column("district", sa.String(16)),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("meeting_venues.id"), nullable=False),
    sa.Column("dtstart", sa.DateTime(timezone=False), nullable=False),
    sa.Column("tzid", sa.String(64), nullable=False),
    sa.Column("rrule", sa.String(500), nullable=False),
    sa.Column("duration_min", sa.Integer, nullable=False),
    sa.Column("duration_reason", sa.String(500)),
    sa.Column("contact", sa.String(300)),
    sa.Column("notes", sa.Text),
    sa.Column("illustrative", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("virtual_link", sa.String(500)),
)
series_beats_table = sa.Table(
    "meeting_series_beats",
    metadata,
    sa.Column("series_id", sa.Integer, sa.ForeignKey("meeting_series.id"), primary_key=True),
    sa.Column("beat", sa.String(16), sa.ForeignKey("meeting_areas.beat"), primary_key=True),
)
exceptions_table = sa.Table(
    "meeting_exceptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("series_id", sa.Integer, sa.ForeignKey("meeting_series.id"), nullable=False),
    sa.Column("original_start", sa.DateTime(timezone=False), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("new_start", sa.DateTime(timezone=False)),
    sa.Column("new_venue_id", sa.Integer, sa.ForeignKey("meeting_venues.id")),
    sa.Column("new_duration_min", sa.Integer),
    sa.Column("note", sa.Text),
)


# --- errors -------------------------------------------------------------------------------
class MeetingError(InputError):
    """A meeting edit is invalid; ``field`` names the first field at fault, ``errors`` all."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        self.field = next(iter(self.errors), None)
        message = "; ".join(f"{name}: {text}" for name, text in self.errors.items())
        super().__init__(message, column=self.field)


class ConflictError(MeetingError):
    """Someone else saved the series since it was read (stale ``expected_version``)."""

    def __init__(self, series_id: int, expected: int, current: int | None) -> None:
        self.series_id = series_id
        self.expected_version = expected
        self.current_version = current
        if current is None:
            text = f"series {series_id} no longer exists (it was deleted by someone else)"
        else:
            text = (
                f"series {series_id} was changed by someone else since you opened it (you edited "
                f"version {expected}, it is now version {current}); reload it and apply your "
                "change again"
            )
        super().__init__({"version": text})


class VenueConflictError(MeetingError):
    """The meeting overlaps another meeting at the same venue; ``conflicts`` lists them."""

    def __init__(self, conflicts: pd.DataFrame) -> None:
        self.conflicts = conflicts
        first = conflicts.iloc[0]
        text = (
            f"overlaps {len(conflicts)} meeting(s) at the same venue, first "
            f"'{first['title']}' on {first['start']:%Y-%m-%d %H:%M}-{first['end']:%H:%M}"
        )
        super().__init__({"venue": text})


# --- time and recurrence ------------------------------------------------------------------
def _zone(tzid: str) -> ZoneInfo:
    return ZoneInfo(tzid)


def _is_gap(local: datetime, tz: ZoneInfo) -> bool:
    """Return True if the naive local time `local` does not exist in `tz` (spring forward)."""
    aware = local.replace(tzinfo=tz)
    back = aware.astimezone(UTC).astimezone(tz).replace(tzinfo=None)
    return back != local


def _to_local_naive(value: datetime | date, tz: ZoneInfo) -> datetime:
    if not isinstance(value, datetime):
        return datetime.combine(value, time())
    if value.tzinfo is not None:
        return value.astimezone(tz).replace(tzinfo=None)
    return value


def _aware(local: datetime, tz: ZoneInfo) -> datetime:
    return local.replace(tzinfo=tz)


def _parse_parts(rule: str) -> dict[str, str]:
    text = rule.strip()
    if text.upper().startswith("RRULE:"):
        text = text[6:]
    parts: dict[str, str] = {}
    for chunk in filter(None, text.split(";")):
        if "=" not in chunk:
            msg = f"'{chunk}' is not NAME=VALUE"
            raise ValueError(msg)
        name, value = chunk.split("=", 1)
        name = name.strip().upper()
        if name in parts:
            msg = f"{name} appears twice"
            raise ValueError(msg)
        parts[name] = value.strip().upper()
    return parts


def validate_rrule(rule: str, dtstart: datetime, tzid: str = schema.DEFAULT_TIMEZONE) -> str:
    """Return the canonical form of an RFC 5545 RRULE, or raise :class:`MeetingError`.

    The time of day comes from the start, so ``BYHOUR``/``BYMINUTE``/``BYSECOND`` and sub-daily
    frequencies are refused; ``UNTIL`` is converted to UTC (``...Z``), as RFC 5545 requires with
    a ``TZID`` start.

    Parameters
    ----------
    rule
        E.g. ``FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU`` (second Tuesday of every other month).
    dtstart
        The series start, naive local wall time.
    tzid
        IANA time zone of the start.
    """
    tz = _zone(tzid)
    try:
        parts = _parse_parts(rule)
    except ValueError as err:
        raise MeetingError({"rrule": f"'{rule}' is not a valid RRULE: {err}"}) from err
    unknown = sorted(set(parts) - _ALLOWED_PARTS)
    if unknown:
        text = f"'{rule}': {', '.join(unknown)} not allowed (the time of day comes from the start)"
        raise MeetingError({"rrule": text})
    if parts.get("FREQ") not in _FREQS:
        text = f"'{rule}': FREQ must be one of {', '.join(_FREQS)}"
        raise MeetingError({"rrule": text})
    if "COUNT" in parts and "UNTIL" in parts:
        raise MeetingError({"rrule": f"'{rule}': COUNT and UNTIL cannot both be given"})
    if "UNTIL" in parts:
        until = parts["UNTIL"]
        try:
            if until.endswith("Z"):
                until_utc = datetime.strptime(until, "%Y%m%dT%H%M%SZ").replace(tzinfo=UTC)
            elif "T" in until:
                local = datetime.strptime(until, "%Y%m%dT%H%M%S")
                until_utc = local.replace(tzinfo=tz).astimezone(UTC)
            else:
                day = datetime.strptime(until, "%Y%m%d")
                until_utc = (day + timedelta(days=1, seconds=-1)).replace(tzinfo=tz)
                until_utc = until_utc.astimezone(UTC)
        except ValueError as err:
            text = f"'{rule}': UNTIL={until} is not a date (YYYYMMDD or YYYYMMDDTHHMMSSZ)"
            raise MeetingError({"rrule": text}) from err
        if until_utc < _aware(dtstart, tz).astimezone(UTC):
            text = f"'{rule}': UNTIL {until_utc:%Y-%m-%d} is before the start {dtstart:%Y-%m-%d}"
            raise MeetingError({"rrule": text})
        parts["UNTIL"] = until_utc.strftime("%Y%m%dT%H%M%SZ")
    canonical = ";".join(f"{k}={v}" for k, v in parts.items())
    try:
        rule_obj = du_rrule.rrulestr(f"RRULE:{canonical}", dtstart=_aware(dtstart, tz))
        first = rule_obj[0] if rule_obj.count() else None
    except (ValueError, TypeError, IndexError, OverflowError) as err:
        raise MeetingError({"rrule": f"'{rule}' is not a valid RRULE: {err}"}) from err
    if first is None:
        raise MeetingError({"rrule": f"'{rule}' produces no meeting at all"})
    return canonical


def _rule(rule: str, dtstart: datetime, tz: ZoneInfo) -> du_rrule.rrule:
    return du_rrule.rrulestr(f"RRULE:{rule}", dtstart=_aware(dtstart, tz))


def expand_rule(
    rule: str,
    dtstart: datetime,
    start: datetime,
    end: datetime,
    *,
    tzid: str = schema.DEFAULT_TIMEZONE,
) -> list[datetime]:
    """Return the occurrence starts of a rule in ``[start, end)`` as tz-aware local datetimes.

    Occurrences keep the start's local wall time (18:30 stays 18:30 across daylight saving).

    Parameters
    ----------
    rule
        Canonical RRULE (see :func:`validate_rrule`).
    dtstart
        Naive local start of the series (its first occurrence).
    start, end
        Window; naive values are local times.
    """
    tz = _zone(tzid)
    lo = _aware(_to_local_naive(start, tz), tz)
    hi = _aware(_to_local_naive(end, tz), tz)
    hits = _rule(rule, dtstart, tz).between(lo, hi, inc=True)
    return [h for h in hits if lo <= h < hi]


def _first_occurrence(rule: str, dtstart: datetime, tz: ZoneInfo) -> datetime | None:
    hit = _rule(rule, dtstart, tz).after(_aware(dtstart, tz), inc=True)
    return None if hit is None else hit.replace(tzinfo=None)


_ORD = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", 5: "5th", -1: "last"}
_DAYS = {
    "MO": "Monday",
    "TU": "Tuesday",
    "WE": "Wednesday",
    "TH": "Thursday",
    "FR": "Friday",
    "SA": "Saturday",
    "SU": "Sunday",
}


def describe_rule(rule: str) -> str:
    """Return a short English description of a rule (``every 2 months, 2nd Tuesday``)."""
    try:
        parts = _parse_parts(rule)
    except ValueError:
        return rule
    unit = {"DAILY": "day", "WEEKLY": "week", "MONTHLY": "month", "YEARLY": "year"}.get(
        parts.get("FREQ", ""), "?"
    )
    interval = int(parts.get("INTERVAL", "1") or 1)
    if unit == "month" and interval == 3:
        text = "quarterly"
    elif unit == "month" and interval == 2:
        text = "every other month"
    else:
        text = f"every {unit}" if interval == 1 else f"every {interval} {unit}s"
    days = []
    for token in filter(None, parts.get("BYDAY", "").split(",")):
        n, day = token[:-2], token[-2:]
        name = _DAYS.get(day, day)
        days.append(f"{_ORD.get(int(n), n + 'th')} {name}" if n else name)
    if days:
        text += ", " + " and ".join(days)
    if "BYMONTHDAY" in parts:
        text += f", day {parts['BYMONTHDAY']}"
    if "UNTIL" in parts:
        text += f", until {parts['UNTIL'][:4]}-{parts['UNTIL'][4:6]}-{parts['UNTIL'][6:8]}"
    if "COUNT" in parts:
        text += f", {parts['COUNT']} times"
    return text


# --- database -----------------------------------------------------------------------------
def open_database(
    url: str | None = None, *, seed: bool = True, samples_dir: Path | None = None
) -> Engine:
    """Return an engine on the meetings database, migrated to the newest schema.

    On a new database the reference data (beats with sector and district, police stations as
    venues) is loaded from `samples_dir`, and with `seed` the illustrative CAPS-pattern schedule.

    Parameters
    ----------
    url
        SQLAlchemy URL; default :func:`geodata.settings.database_url` (SQLite in the data dir).
    seed
        Seed the illustrative schedule when the database holds no areas yet.
    samples_dir
        Directory with ``beats.geojson`` and ``police_stations.csv`` (default: bundled Chicago).
    """
    engine = db.make_engine(settings.database_url(url))
    db.upgrade(engine)
    with engine.connect() as connection:
        n_areas = connection.execute(sa.select(sa.func.count()).select_from(areas_table)).scalar()
    if not n_areas:
        try:
            load_reference_data(engine, samples_dir or settings.SAMPLES_DIR, seed=seed)
        except IntegrityError:  # another process seeded the database at the same time
            log.info("reference data was loaded concurrently; keeping the other copy")
    return engine


def _read_reference(samples_dir: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    from geodata.boundaries import read_beats, read_stations

    beats = read_beats(Path(samples_dir) / "beats.geojson")
    stations = read_stations(Path(samples_dir) / "police_stations.csv")
    centroids = beats.geometry.centroid
    areas = pd.DataFrame(
        {
            "beat": beats[schema.BEAT].astype(str),
            "sector": beats[schema.SECTOR].astype("string"),
            "district": beats[schema.DISTRICT].astype("string"),
            "x": centroids.x,
            "y": centroids.y,
        }
    )
    station_frame = pd.DataFrame(stations.drop(columns="geometry"))
    station_frame["x"] = stations.geometry.x.to_numpy()
    station_frame["y"] = stations.geometry.y.to_numpy()
    return areas, station_frame


def load_reference_data(engine: Engine, samples_dir: Path, *, seed: bool = True) -> None:
    """Load beats (areas) and stations (venues) in one transaction; with `seed`, the schedule.

    Parameters
    ----------
    engine
        The migrated database.
    samples_dir
        Directory with ``beats.geojson`` and ``police_stations.csv``.
    seed
        Also write the illustrative schedule (:func:`seed_schedule`).
    """
    areas, stations = _read_reference(samples_dir)
    with engine.begin() as connection:
        connection.execute(
            areas_table.insert(),
            [
                {"beat": r.beat, "sector": _none(r.sector), "district": _none(r.district)}
                for r in areas.itertuples()
            ],
        )
        connection.execute(
            venues_table.insert(),
            [
                {
                    "station_id": str(r.station_id),
                    "name": f"{r.name} ({'HQ' if r.station_id == 'HQ' else 'district'} station)"
                    if r.station_id == "HQ"
                    else f"{r.name} district station",
                    "address": ", ".join(
                        str(p) for p in (r.address, r.city, r.state, r.zip) if _none(p)
                    ),
                    "phone": str(r.phone or ""),
                    "lat": float(r.lat),
                    "lon": float(r.lon),
                    "kind": "station",
                }
                for r in stations.itertuples()
            ],
        )
        if seed:
            seed_schedule(connection, areas, stations)


def _none(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    return text or None


def _month_start(year: int, month: int) -> datetime:
    return datetime(year, month, 1, 18, 30)


def seed_schedule(
    connection: sa.Connection,
    areas: pd.DataFrame,
    stations: pd.DataFrame,
    *,
    first_year: int = 2025,
) -> int:
    """Write the illustrative CAPS-pattern schedule; return the number of series written.

    Every beat meets every other month at 18:30 at its district station (the nearest station
    where its district has none), on its own slot: odd or even months, 1st-4th week, Tuesday,
    Wednesday or Thursday, so no two meetings at a station overlap. In
    :data:`SECTOR_MEETING_DISTRICTS` the sectors meet monthly instead (one Wednesday each).
    Every series is flagged ``illustrative`` and carries :data:`ILLUSTRATIVE_NOTE`.
    """
    venues = pd.read_sql(sa.select(venues_table.c.id, venues_table.c.station_id), connection)
    venue_of = dict(zip(venues["station_id"], venues["id"], strict=True))
    district_stations = stations[stations["station_id"] != "HQ"].reset_index(drop=True)
    by_district = {str(r.district): r for r in district_stations.itertuples()}
    tz = _zone(schema.DEFAULT_TIMEZONE)
    now = datetime.now(UTC)
    series_rows: list[dict[str, Any]] = []
    served: list[list[str]] = []

    def add(
        title: str,
        kind: str,
        beats: list[str],
        sector: str | None,
        district: str,
        station: tuple,
        rule: str,
        month: int,
    ) -> None:
        first = _first_occurrence(rule, _month_start(first_year, month), tz)
        if first is None or _is_gap(first, tz):
            return
        contact = f"{station.name} District CAPS office" + (
            f", {station.phone}" if _none(station.phone) else ""
        )
        series_rows.append(
            {
                "title": title,
                "area_kind": kind,
                "sector": sector,
                "district": district,
                "venue_id": int(venue_of[str(station.station_id)]),
                "dtstart": first,
                "tzid": schema.DEFAULT_TIMEZONE,
                "rrule": rule,
                "duration_min": DEFAULT_DURATION_MIN,
                "duration_reason": None,
                "contact": contact,
                "notes": ILLUSTRATIVE_NOTE,
                "illustrative": True,
                "version": 1,
                "updated_at": now,
                "virtual_link": None,
            }
        )
        served.append(beats)

    for district, group in areas.groupby("district", sort=True):
        station = by_district.get(str(district))
        own_station = station is not None
        if station is None:  # e.g. Chicago's district 31 (airport): the nearest station
            centre = group[["x", "y"]].mean()
            d2 = (district_stations["x"] - centre["x"]) ** 2 + (
                district_stations["y"] - centre["y"]
            ) ** 2
            station = next(district_stations.iloc[[int(d2.idxmin())]].itertuples())
        if str(district) in SECTOR_MEETING_DISTRICTS:
            for i, (sector, members) in enumerate(group.groupby("sector", sort=True)):
                rule = f"FREQ=MONTHLY;BYDAY={i % 4 + 1}WE"
                add(
                    f"Sector {sector} community meeting",
                    "sector",
                    sorted(members["beat"]),
                    str(sector),
                    str(district),
                    station,
                    rule,
                    1,
                )
            continue
        for k, row in enumerate(group.sort_values("beat").itertuples()):
            weekday = ("TU", "WE", "TH")[(k // 8) % 3] if own_station else "MO"
            rule = f"FREQ=MONTHLY;INTERVAL=2;BYDAY={(k // 2) % 4 + 1}{weekday}"
            add(
                f"Beat {row.beat} community meeting",
                "beat",
                [row.beat],
                _none(row.sector),
                str(district),
                station,
                rule,
                1 + k % 2,
            )
    for row, beats in zip(series_rows, served, strict=True):
        series_id = connection.execute(
            series_table.insert().values(**row).returning(series_table.c.id)
        ).scalar_one()
        connection.execute(
            series_beats_table.insert(), [{"series_id": series_id, "beat": b} for b in beats]
        )
    return len(series_rows)


# --- reading ------------------------------------------------------------------------------
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


def _series_rows(connection: sa.Connection, ids: Iterable[int] | None = None) -> pd.DataFrame:
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
    series = pd.read_sql(query.order_by(series_table.c.id), connection)
    members = pd.read_sql(sa.select(beats), connection)
    joined = members.groupby("series_id")["beat"].agg(lambda b: ",".join(sorted(b)))
    series["beats"] = series["id"].map(joined).fillna("")
    return series


def list_series(engine: Engine) -> pd.DataFrame:
    """Return every series with its venue and the beats it serves (comma-joined)."""
    with engine.connect() as connection:
        series = _series_rows(connection)
        venues = pd.read_sql(sa.select(venues_table), connection)
    series = series.merge(
        venues.add_prefix("venue_"), left_on="venue_id", right_on="venue_id", how="left"
    )
    series["schedule"] = series["rrule"].map(describe_rule)
    return series


def _filtered_series_ids(
    connection: sa.Connection, beat: str | None, sector: str | None, district: str | None
) -> list[int] | None:
    if beat is None and sector is None and district is None:
        return None
    query = (
        sa.select(series_beats_table.c.series_id)
        .join(areas_table, areas_table.c.beat == series_beats_table.c.beat)
        .distinct()
    )
    for name, value, width in (("beat", beat, 4), ("sector", sector, 3), ("district", district, 2)):
        if value is None:
            continue
        key = schema.normalize_id(value, width)
        column = areas_table.c[name]
        known = connection.execute(sa.select(sa.func.count()).where(column == key)).scalar()
        if not known:
            raise MeetingError({name: f"{value!r} is not a known {name} id"})
        query = query.where(column == key)
    return [int(r[0]) for r in connection.execute(query)]


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
                    "end": (_aware(begin, tz) + timedelta(minutes=minutes)),
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


def _frame(rows: list[dict[str, Any]], tzid: str = schema.DEFAULT_TIMEZONE) -> pd.DataFrame:
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
    tz = _zone(schema.DEFAULT_TIMEZONE)
    lo, hi = _window(start, end, tz)
    with engine.connect() as connection:
        ids = _filtered_series_ids(connection, beat, sector, district)
        series = _series_rows(connection, ids)
        exceptions = pd.read_sql(
            sa.select(exceptions_table).where(
                exceptions_table.c.series_id.in_(series["id"].tolist())
            ),
            connection,
        )
        venues = pd.read_sql(sa.select(venues_table), connection)
    frame = _frame(_occurrences(series, exceptions, venues, lo, hi))
    return frame.head(limit) if limit is not None else frame


def next_meetings(
    engine: Engine, beat: str, *, n: int = 3, now: datetime | None = None
) -> pd.DataFrame:
    """Return the next `n` meetings (not cancelled) that serve `beat`, within 400 days."""
    tz = _zone(schema.DEFAULT_TIMEZONE)
    start = _to_local_naive(now, tz) if now is not None else datetime.now(tz).replace(tzinfo=None)
    upcoming = upcoming_meetings(engine, beat=beat, start=start, end=start + timedelta(days=400))
    return upcoming[upcoming["status"] != "cancelled"].head(n).reset_index(drop=True)


# --- writing ------------------------------------------------------------------------------
@dataclass
class _Draft:
    """A validated series, ready to write."""

    fields: dict[str, Any]
    beats: list[str]
    new_venue: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _check_text(
    errors: dict[str, str], name: str, value: object, *, required: bool, max_len: int
) -> str | None:
    text = None if value is None else str(value).strip()
    if not text:
        if required:
            errors[name] = "is required"
        return None
    if len(text) > max_len:
        errors[name] = f"is {len(text)} characters long; at most {max_len} allowed"
    return text


def _resolve_venue(
    connection: sa.Connection, venue: int | str | Mapping[str, Any] | None, errors: dict[str, str]
) -> tuple[int | None, dict[str, Any] | None]:
    if venue is None:
        errors["venue"] = "is required (a station id, a venue id or a new venue)"
        return None, None
    if isinstance(venue, Mapping):
        new: dict[str, Any] = {}
        name = _check_text(errors, "venue_name", venue.get("name"), required=True, max_len=200)
        address = _check_text(
            errors, "venue_address", venue.get("address"), required=True, max_len=300
        )
        phone = _check_text(errors, "venue_phone", venue.get("phone"), required=False, max_len=40)
        for key, low, high in (("lat", -90, 90), ("lon", -180, 180)):
            try:
                number = float(venue.get(key))  # type: ignore[arg-type]
                if not low <= number <= high:
                    raise ValueError
                new[key] = number
            except (TypeError, ValueError):
                errors[f"venue_{key}"] = f"{venue.get(key)!r} is not a {key} in [{low}, {high}]"
        new.update(name=name, address=address or "", phone=phone or "", kind="community")
        new["station_id"] = None
        return None, new
    if isinstance(venue, (int, np.integer)) and not isinstance(venue, bool):
        found = connection.execute(
            sa.select(venues_table.c.id).where(venues_table.c.id == int(venue))
        ).scalar()
    else:
        found = connection.execute(
            sa.select(venues_table.c.id).where(
                venues_table.c.station_id == schema.normalize_id(venue, 2)
            )
        ).scalar()
    if found is None:
        errors["venue"] = f"{venue!r} is not a known venue or station id"
    return found, None


def _draft(
    connection: sa.Connection,
    *,
    title: object,
    beats: Sequence[str] | str | None,
    sector: str | None,
    venue: int | str | Mapping[str, Any] | None,
    start: datetime | None,
    end: datetime | time | None,
    rrule: str | None,
    duration_min: int | None,
    duration_reason: str | None,
    contact: str | None,
    notes: str | None,
    virtual_link: str | None,
    tzid: str,
    illustrative: bool,
) -> _Draft:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"tzid": tzid, "illustrative": bool(illustrative)}
    values["title"] = _check_text(errors, "title", title, required=True, max_len=200)
    values["contact"] = _check_text(errors, "contact", contact, required=False, max_len=300)
    values["notes"] = _check_text(errors, "notes", notes, required=False, max_len=5000)
    link = _check_text(errors, "virtual_link", virtual_link, required=False, max_len=500)
    if link and not link.lower().startswith(("https://", "http://")):
        errors["virtual_link"] = f"{link!r} must start with https:// or http://"
    values["virtual_link"] = link
    # area
    if isinstance(beats, str):
        beats = [b for b in beats.replace(";", ",").split(",") if b.strip()]
    known = pd.read_sql(sa.select(areas_table), connection)
    served: list[str] = []
    if sector:
        sector_id = schema.normalize_id(sector, 3)
        members = known[known["sector"] == sector_id]
        if members.empty:
            errors["sector"] = f"{sector!r} is not a known sector"
        else:
            served = sorted(members["beat"])
            values.update(
                area_kind="sector", sector=sector_id, district=str(members["district"].iloc[0])
            )
        if beats:
            errors["beats"] = "give either beats or a sector, not both"
    elif beats:
        wanted = [schema.normalize_id(b, 4) for b in beats]
        unknown = [b for b in wanted if b not in set(known["beat"])]
        if unknown:
            errors["beats"] = f"unknown beat id(s): {', '.join(map(str, unknown))}"
        else:
            served = sorted(set(wanted))
            rows = known.set_index("beat").loc[served]
            sectors, districts = set(rows["sector"]), set(rows["district"])
            values.update(
                area_kind="beat",
                sector=sectors.pop() if len(sectors) == 1 else None,
                district=districts.pop() if len(districts) == 1 else None,
            )
    else:
        errors["beats"] = "give the beat(s) or the sector the meeting serves"
    venue_id, new_venue = _resolve_venue(connection, venue, errors)
    values["venue_id"] = venue_id
    # time
    tz = _zone(tzid)
    local = None
    if start is None:
        errors["start"] = "is required"
    else:
        local = _to_local_naive(start, tz).replace(second=0, microsecond=0)
        if _is_gap(local, tz):
            errors["start"] = (
                f"{local:%Y-%m-%d %H:%M} does not exist in {tzid} (clocks spring forward); "
                "pick another time"
            )
    minutes = duration_min
    if end is not None and local is not None and "start" not in errors:
        end_local = (
            datetime.combine(local.date(), end)
            if isinstance(end, time)
            else _to_local_naive(end, tz)
        )
        if end_local <= local:
            errors["end"] = f"the end {end_local:%H:%M} is not after the start {local:%H:%M}"
        else:
            minutes = round((end_local - local).total_seconds() / 60)
    minutes = DEFAULT_DURATION_MIN if minutes is None else minutes
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        errors["duration_min"] = f"{minutes!r} is not a whole number of minutes"
        minutes = DEFAULT_DURATION_MIN
    reason = _check_text(errors, "duration_reason", duration_reason, required=False, max_len=500)
    if not 1 <= minutes <= MAX_DURATION_MIN:
        errors["duration_min"] = f"{minutes} minutes; must be 1 to {MAX_DURATION_MIN}"
    elif minutes > MAX_PLAIN_DURATION_MIN and not reason:
        errors["duration_reason"] = (
            f"a meeting of {minutes} minutes (over {MAX_PLAIN_DURATION_MIN}) needs a reason"
        )
    values["duration_min"], values["duration_reason"] = minutes, reason
    if not rrule or not str(rrule).strip():
        errors["rrule"] = "is required (e.g. FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU)"
    elif local is not None and "start" not in errors:
        try:
            canonical = validate_rrule(str(rrule), local, tzid)
        except MeetingError as err:
            errors.update(err.errors)
        else:
            first = _first_occurrence(canonical, local, tz)
            if first is None:
                errors["rrule"] = f"'{rrule}' has no meeting on or after {local:%Y-%m-%d}"
            else:
                gaps = [
                    o
                    for o in expand_rule(
                        canonical, first, first, first + timedelta(days=HORIZON_DAYS), tzid=tzid
                    )
                    if _is_gap(o.replace(tzinfo=None), tz)
                ]
                if gaps:
                    errors["start"] = (
                        f"the meeting of {gaps[0]:%Y-%m-%d} at {first:%H:%M} falls in the "
                        "spring-forward gap; pick another time"
                    )
                values.update(rrule=canonical, dtstart=first)
    return _Draft(fields=values, beats=served, new_venue=new_venue, errors=errors)


def _bookings(
    connection: sa.Connection,
    venue_id: int,
    lo: datetime,
    hi: datetime,
    exclude_series: int | None,
) -> pd.DataFrame:
    """Return the occurrences (not cancelled) at `venue_id` in ``[lo, hi)``, other series only."""
    series_ids = [
        int(r[0])
        for r in connection.execute(
            sa.select(series_table.c.id).where(series_table.c.venue_id == venue_id)
        )
    ]
    moved_in = [
        int(r[0])
        for r in connection.execute(
            sa.select(exceptions_table.c.series_id).where(
                exceptions_table.c.new_venue_id == venue_id
            )
        )
    ]
    ids = sorted(set(series_ids) | set(moved_in))
    if exclude_series is not None:
        ids = [i for i in ids if i != exclude_series]
    if not ids:
        return _frame([])
    series = _series_rows(connection, ids)
    exceptions = pd.read_sql(
        sa.select(exceptions_table).where(exceptions_table.c.series_id.in_(ids)), connection
    )
    venues = pd.read_sql(sa.select(venues_table), connection)
    frame = _frame(_occurrences(series, exceptions, venues, lo, hi))
    return frame[(frame["venue_id"] == venue_id) & (frame["status"] != "cancelled")]


def _overlaps(candidates: list[tuple[datetime, datetime]], bookings: pd.DataFrame) -> pd.DataFrame:
    if bookings.empty or not candidates:
        return bookings.iloc[0:0]
    starts = np.array([c[0].timestamp() for c in candidates])
    ends = np.array([c[1].timestamp() for c in candidates])
    b_start = bookings["start"].map(lambda t: t.timestamp()).to_numpy()
    b_end = bookings["end"].map(lambda t: t.timestamp()).to_numpy()
    order = np.argsort(starts)
    starts, ends = starts[order], ends[order]
    # for each booking, the candidates starting before it ends; overlap if one ends after it starts
    idx = np.searchsorted(starts, b_end, side="left")
    hit = np.zeros(len(bookings), dtype=bool)
    running_max = np.maximum.accumulate(ends)
    hit = (idx > 0) & (running_max[np.maximum(idx - 1, 0)] > b_start)
    return bookings[hit]


def venue_conflicts(
    engine: Engine | sa.Connection,
    *,
    venue_id: int,
    start: datetime,
    rrule: str | None,
    duration_min: int,
    tzid: str = schema.DEFAULT_TIMEZONE,
    exclude_series: int | None = None,
    horizon_days: int = HORIZON_DAYS,
) -> pd.DataFrame:
    """Return the meetings at `venue_id` that overlap a planned series (or single meeting).

    Parameters
    ----------
    venue_id
        The venue.
    start
        First occurrence (naive local or aware).
    rrule
        Canonical rule; None for a single meeting.
    duration_min
        Length of each meeting.
    exclude_series
        The series being edited (its own occurrences do not conflict).
    horizon_days
        How far ahead of the start to look.
    """
    tz = _zone(tzid)
    local = _to_local_naive(start, tz)
    hi = local + timedelta(days=horizon_days)
    occurrences = expand_rule(rrule, local, local, hi, tzid=tzid) if rrule else [_aware(local, tz)]
    candidates = [(o, o + timedelta(minutes=duration_min)) for o in occurrences]
    if isinstance(engine, sa.Connection):
        bookings = _bookings(engine, venue_id, local - timedelta(days=1), hi, exclude_series)
    else:
        with engine.connect() as connection:
            bookings = _bookings(
                connection, venue_id, local - timedelta(days=1), hi, exclude_series
            )
    return _overlaps(candidates, bookings).reset_index(drop=True)


def _write_venue(connection: sa.Connection, venue: dict[str, Any]) -> int:
    return connection.execute(
        venues_table.insert().values(**venue).returning(venues_table.c.id)
    ).scalar_one()


def _place_at_venue(
    connection: sa.Connection,
    draft: _Draft,
    values: dict[str, Any],
    *,
    allow_conflicts: bool,
    tzid: str,
    exclude_series: int | None = None,
) -> None:
    """Write the draft's new venue into `values`, or refuse an existing venue's overlaps.

    Raises
    ------
    VenueConflictError
        If the venue is booked at an overlapping time and `allow_conflicts` is false.
    """
    if draft.new_venue is not None:
        values["venue_id"] = _write_venue(connection, draft.new_venue)
        return
    if allow_conflicts:
        return
    conflicts = venue_conflicts(
        connection,
        venue_id=values["venue_id"],
        start=values["dtstart"],
        rrule=values["rrule"],
        duration_min=values["duration_min"],
        tzid=tzid,
        exclude_series=exclude_series,
    )
    if len(conflicts):
        raise VenueConflictError(conflicts)


def create_series(
    engine: Engine,
    *,
    title: str,
    venue: int | str | Mapping[str, Any],
    start: datetime,
    rrule: str,
    beats: Sequence[str] | str | None = None,
    sector: str | None = None,
    end: datetime | time | None = None,
    duration_min: int | None = None,
    duration_reason: str | None = None,
    contact: str | None = None,
    notes: str | None = None,
    virtual_link: str | None = None,
    tzid: str = schema.DEFAULT_TIMEZONE,
    illustrative: bool = False,
    allow_conflicts: bool = False,
) -> int:
    """Validate and save a new meeting series; return its id.

    Parameters
    ----------
    title
        What residents see.
    venue
        A venue id (int), a station id (``"17"``) or a new venue ``{"name", "address", "lat",
        "lon", "phone"}``.
    start
        First meeting, naive local wall time (or aware). Snapped to the first occurrence of
        `rrule` on or after it.
    rrule
        RFC 5545 recurrence rule, e.g. ``FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU``.
    beats, sector
        The beat(s) served, or a sector (which serves all its beats).
    end
        End of the first meeting (datetime or time of day); alternative to `duration_min`.
    duration_min
        Length in minutes (default 60); over 60 needs `duration_reason`.
    allow_conflicts
        Save even if the venue is booked at an overlapping time.

    Raises
    ------
    MeetingError
        Invalid fields (all of them, in ``errors``); nothing is saved.
    VenueConflictError
        The venue is booked at an overlapping time (unless `allow_conflicts`).
    """
    with engine.begin() as connection:
        draft = _draft(
            connection,
            title=title,
            beats=beats,
            sector=sector,
            venue=venue,
            start=start,
            end=end,
            rrule=rrule,
            duration_min=duration_min,
            duration_reason=duration_reason,
            contact=contact,
            notes=notes,
            virtual_link=virtual_link,
            tzid=tzid,
            illustrative=illustrative,
        )
        if draft.errors:
            raise MeetingError(draft.errors)
        values = draft.fields
        _place_at_venue(connection, draft, values, allow_conflicts=allow_conflicts, tzid=tzid)
        values.update(version=1, updated_at=datetime.now(UTC))
        series_id = connection.execute(
            series_table.insert().values(**values).returning(series_table.c.id)
        ).scalar_one()
        connection.execute(
            series_beats_table.insert(),
            [{"series_id": series_id, "beat": b} for b in draft.beats],
        )
    return int(series_id)


def _current(connection: sa.Connection, series_id: int) -> dict[str, Any] | None:
    row = (
        connection.execute(sa.select(series_table).where(series_table.c.id == series_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _bump(
    connection: sa.Connection,
    series_id: int,
    expected_version: int | None,
    values: Mapping[str, Any] | None = None,
) -> int:
    """Apply `values` and increment the version iff it is still `expected_version`."""
    current = _current(connection, series_id)
    if current is None:
        raise ConflictError(series_id, expected_version or 0, None)
    expected = current["version"] if expected_version is None else int(expected_version)
    result = connection.execute(
        series_table.update()
        .where(series_table.c.id == series_id, series_table.c.version == expected)
        .values(**(values or {}), version=expected + 1, updated_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        now = connection.execute(
            sa.select(series_table.c.version).where(series_table.c.id == series_id)
        ).scalar()
        raise ConflictError(series_id, expected, now)
    return expected + 1


#: a move of one meeting may not go further than this from its original date (the listing
#: looks 366 days either side of its window for moved meetings)
MAX_MOVE_DAYS = 365


def _is_occurrence(rule: str, dtstart: datetime, local: datetime, tzid: str) -> bool:
    """Return True if the naive local time `local` is an occurrence of the schedule."""
    return bool(expand_rule(rule, dtstart, local, local + timedelta(minutes=1), tzid=tzid))


def _rekey_exceptions(
    connection: sa.Connection,
    series_id: int,
    current: Mapping[str, Any],
    dtstart: datetime,
    rule: str,
) -> tuple[dict[int, datetime], list[str]]:
    """Map the exceptions of a series onto its new schedule (`dtstart`, `rule`).

    Exceptions are keyed by the original local start, so a change of the start or the rule
    must carry them over. For each exception that was a meeting of the old schedule the new key
    is the same date at the new time of day if that is a meeting of the new schedule; else, when
    the rule changed or the start's date moved by less than a week (a meeting moved from
    Tuesday to Wednesday), the meeting of the new schedule nearest to the old key shifted like
    the start, less than a week from that date. A key already taken by another exception is not
    used twice. Exceptions that were already orphaned before the edit keep their key
    (:func:`restore_occurrence` removes them).

    Returns ``({exception id: new key}, [description of each exception that cannot be
    mapped])``; nothing is written.
    """
    tzid = current["tzid"]
    old_start = pd.Timestamp(current["dtstart"]).to_pydatetime()
    old_rule = current["rrule"]
    if old_start == dtstart and old_rule == rule:
        return {}, []
    rows = connection.execute(
        sa.select(
            exceptions_table.c.id, exceptions_table.c.original_start, exceptions_table.c.status
        )
        .where(exceptions_table.c.series_id == series_id)
        .order_by(exceptions_table.c.original_start, exceptions_table.c.id)
    ).all()
    shift = dtstart - old_start
    time_shift = datetime.combine(old_start.date(), dtstart.time()) - old_start
    mapping: dict[int, datetime] = {}
    taken: set[datetime] = set()
    pending: list[tuple[int, datetime, str]] = []
    for row in rows:
        key = pd.Timestamp(row.original_start).to_pydatetime()
        if _is_occurrence(old_rule, old_start, key, tzid):
            pending.append((int(row.id), key, str(row.status)))
        else:  # an orphan from before this edit: keeps its key
            taken.add(key)
    week = timedelta(days=7)
    nearby = old_rule != rule or abs(shift) < week
    # first the same date at the new time of day, for all of them; then the nearby meetings
    rest: list[tuple[int, datetime, str]] = []
    for exc_id, key, status in pending:
        same_day = key + time_shift
        if same_day not in taken and _is_occurrence(rule, dtstart, same_day, tzid):
            taken.add(same_day)
            if same_day != key:
                mapping[exc_id] = same_day
        else:
            rest.append((exc_id, key, status))
    lost: list[str] = []
    for exc_id, key, status in rest:
        same_day = key + time_shift
        new_key = None
        if nearby:
            target = key + shift if abs(shift) < week else same_day
            near = [
                h.replace(tzinfo=None)
                for h in expand_rule(rule, dtstart, same_day - week, same_day + week, tzid=tzid)
            ]
            near = [h for h in near if abs(h - same_day) < week and h not in taken]
            new_key = min(near, key=lambda h: (abs(h - target), h), default=None)
        if new_key is None:
            lost.append(f"{key:%Y-%m-%d %H:%M} ({status})")
        else:
            taken.add(new_key)
            mapping[exc_id] = new_key
    return mapping, lost


_EDITABLE = (
    "title",
    "venue",
    "start",
    "end",
    "rrule",
    "beats",
    "sector",
    "duration_min",
    "duration_reason",
    "contact",
    "notes",
    "virtual_link",
    "illustrative",
)


def update_series(
    engine: Engine,
    series_id: int,
    *,
    expected_version: int,
    allow_conflicts: bool = False,
    **changes: object,
) -> int:
    """Save changes to a series unless it changed since `expected_version`; return the version.

    Parameters
    ----------
    series_id
        The series.
    expected_version
        The ``version`` the editor read.
    allow_conflicts
        Save even if the venue is booked at an overlapping time.
    **changes
        Any of ``title``, ``venue``, ``start``, ``end``, ``rrule``, ``beats``, ``sector``,
        ``duration_min``, ``duration_reason``, ``contact``, ``notes``, ``virtual_link``,
        ``illustrative`` (meaning as in :func:`create_series`).

    Raises
    ------
    ConflictError
        The series was changed (or deleted) by someone else; nothing is saved.
    MeetingError
        Invalid fields; nothing is saved. Also (field ``rrule``, or ``start`` if the rule is
        unchanged) when a cancelled or moved meeting would not be a meeting of the new schedule.

    Notes
    -----
    Cancelled and moved meetings follow a change of the start or the rule, in the same
    transaction: each is re-keyed to the same date at the new time of day, or (when the start
    moved by less than a week) to its date shifted like the start, if that is a meeting of the
    new schedule. A moved meeting keeps the date and time it was moved to.
    """
    unknown = sorted(set(changes) - set(_EDITABLE))
    if unknown:
        raise MeetingError({unknown[0]: f"is not an editable field (editable: {_EDITABLE})"})
    with engine.begin() as connection:
        current = _current(connection, series_id)
        if current is None:
            raise ConflictError(series_id, expected_version, None)
        if current["version"] != expected_version:
            raise ConflictError(series_id, expected_version, current["version"])
        beats = (
            connection.execute(
                sa.select(series_beats_table.c.beat).where(
                    series_beats_table.c.series_id == series_id
                )
            )
            .scalars()
            .all()
        )
        merged: dict[str, Any] = {
            "title": current["title"],
            "venue": int(current["venue_id"]),
            "start": pd.Timestamp(current["dtstart"]).to_pydatetime(),
            "end": None,
            "rrule": current["rrule"],
            "beats": None if current["area_kind"] == "sector" else list(beats),
            "sector": current["sector"] if current["area_kind"] == "sector" else None,
            "duration_min": current["duration_min"],
            "duration_reason": current["duration_reason"],
            "contact": current["contact"],
            "notes": current["notes"],
            "virtual_link": current["virtual_link"],
            "illustrative": current["illustrative"],
        }
        if "beats" in changes and "sector" not in changes:
            merged["sector"] = None
        if "sector" in changes and "beats" not in changes:
            merged["beats"] = None
        if "end" in changes and "duration_min" not in changes:
            merged["duration_min"] = None
        merged.update(changes)
        draft = _draft(connection, tzid=current["tzid"], **merged)
        if draft.errors:
            raise MeetingError(draft.errors)
        values = draft.fields
        rekeyed, lost = _rekey_exceptions(
            connection, series_id, current, values["dtstart"], values["rrule"]
        )
        if lost:
            field = "rrule" if values["rrule"] != current["rrule"] else "start"
            raise MeetingError(
                {
                    field: (
                        f"{len(lost)} cancelled or moved meeting(s) would no longer be "
                        f"meetings of the new schedule: {', '.join(lost)}; restore or "
                        "re-apply these exceptions first"
                    )
                }
            )
        _place_at_venue(
            connection,
            draft,
            values,
            allow_conflicts=allow_conflicts,
            tzid=current["tzid"],
            exclude_series=series_id,
        )
        version = _bump(connection, series_id, expected_version, values)
        for exc_id, key in rekeyed.items():
            connection.execute(
                exceptions_table.update()
                .where(exceptions_table.c.id == exc_id)
                .values(original_start=key)
            )
        connection.execute(
            series_beats_table.delete().where(series_beats_table.c.series_id == series_id)
        )
        connection.execute(
            series_beats_table.insert(), [{"series_id": series_id, "beat": b} for b in draft.beats]
        )
    return version


def _check_occurrence(
    connection: sa.Connection, series_id: int, occurrence: datetime
) -> tuple[dict[str, Any], datetime]:
    current = _current(connection, series_id)
    if current is None:
        raise MeetingError({"series": f"series {series_id} does not exist"})
    tz = _zone(current["tzid"])
    local = _to_local_naive(occurrence, tz)
    dtstart = pd.Timestamp(current["dtstart"]).to_pydatetime()
    hits = expand_rule(
        current["rrule"], dtstart, local, local + timedelta(minutes=1), tzid=current["tzid"]
    )
    if not hits:
        text = (
            f"{local:%Y-%m-%d %H:%M} is not a meeting of series {series_id} "
            f"({describe_rule(current['rrule'])} at {dtstart:%H:%M})"
        )
        raise MeetingError({"occurrence": text})
    return current, local


def _set_exception(
    connection: sa.Connection, series_id: int, local: datetime, values: dict[str, Any]
) -> None:
    connection.execute(
        exceptions_table.delete().where(
            exceptions_table.c.series_id == series_id,
            exceptions_table.c.original_start == local,
        )
    )
    if values:
        connection.execute(
            exceptions_table.insert().values(series_id=series_id, original_start=local, **values)
        )


def cancel_occurrence(
    engine: Engine,
    series_id: int,
    occurrence: datetime,
    *,
    note: str = "",
    expected_version: int | None = None,
) -> int:
    """Cancel one meeting of a series (it stays listed as ``cancelled``); return the new version.

    Parameters
    ----------
    occurrence
        The meeting's original start (naive local or aware).
    note
        Why (shown to residents).
    expected_version
        The series version the editor read; None skips the check.
    """
    with engine.begin() as connection:
        _current_row, local = _check_occurrence(connection, series_id, occurrence)
        errors: dict[str, str] = {}
        text = _check_text(errors, "note", note, required=False, max_len=2000)
        if errors:
            raise MeetingError(errors)
        _set_exception(connection, series_id, local, {"status": "cancelled", "note": text})
        return _bump(connection, series_id, expected_version)


def move_occurrence(
    engine: Engine,
    series_id: int,
    occurrence: datetime,
    new_start: datetime,
    *,
    new_venue: int | str | Mapping[str, Any] | None = None,
    new_end: datetime | time | None = None,
    note: str = "",
    expected_version: int | None = None,
    allow_conflicts: bool = False,
) -> int:
    """Move one meeting to a new time (and optionally venue); return the new series version.

    Parameters
    ----------
    occurrence
        The meeting's original start.
    new_start
        New start (naive local or aware); must exist locally.
    new_venue
        New venue (as in :func:`create_series`); None keeps the series venue.
    new_end
        New end; None keeps the series duration.
    note
        Why (shown to residents).
    expected_version
        The series version the editor read; None skips the check.

    Raises
    ------
    MeetingError
        Not an occurrence, a time in the DST gap, end before start, unknown venue.
    VenueConflictError
        The venue is booked then (unless `allow_conflicts`).
    """
    with engine.begin() as connection:
        current, local = _check_occurrence(connection, series_id, occurrence)
        tz = _zone(current["tzid"])
        errors: dict[str, str] = {}
        text = _check_text(errors, "note", note, required=False, max_len=2000)
        target = _to_local_naive(new_start, tz).replace(second=0, microsecond=0)
        if _is_gap(target, tz):
            errors["new_start"] = (
                f"{target:%Y-%m-%d %H:%M} does not exist in {current['tzid']} (clocks spring "
                "forward); pick another time"
            )
        elif abs(target - local) > timedelta(days=MAX_MOVE_DAYS):
            errors["new_start"] = (
                f"{target:%Y-%m-%d %H:%M} is more than {MAX_MOVE_DAYS} days from the meeting "
                f"of {local:%Y-%m-%d %H:%M}; cancel it and add a meeting instead"
            )
        minutes = None
        if new_end is not None:
            end_local = (
                datetime.combine(target.date(), new_end)
                if isinstance(new_end, time)
                else _to_local_naive(new_end, tz)
            )
            if end_local <= target:
                errors["new_end"] = (
                    f"the end {end_local:%Y-%m-%d %H:%M} is not after the start "
                    f"{target:%Y-%m-%d %H:%M}"
                )
            else:
                minutes = round((end_local - target).total_seconds() / 60)
                if minutes > MAX_PLAIN_DURATION_MIN:
                    errors["new_end"] = (
                        f"{minutes} minutes is over {MAX_PLAIN_DURATION_MIN}; change the series "
                        "duration (with a reason) instead"
                    )
        venue_id, new = (
            _resolve_venue(connection, new_venue, errors) if new_venue is not None else (None, None)
        )
        if errors:
            raise MeetingError(errors)
        if new is not None:
            venue_id = _write_venue(connection, new)
        at_venue = venue_id if venue_id is not None else int(current["venue_id"])
        length = minutes or int(current["duration_min"])
        if not allow_conflicts and new is None:
            bookings = _bookings(
                connection,
                at_venue,
                target - timedelta(days=1),
                target + timedelta(days=1),
                series_id,
            )
            conflicts = _overlaps(
                [(_aware(target, tz), _aware(target, tz) + timedelta(minutes=length))], bookings
            )
            if len(conflicts):
                raise VenueConflictError(conflicts.reset_index(drop=True))
        _set_exception(
            connection,
            series_id,
            local,
            {
                "status": "moved",
                "new_start": target,
                "new_venue_id": venue_id,
                "new_duration_min": minutes,
                "note": text,
            },
        )
        return _bump(connection, series_id, expected_version)


def restore_occurrence(
    engine: Engine, series_id: int, occurrence: datetime, *, expected_version: int | None = None
) -> int:
    """Undo a cancellation or move of one meeting; return the new series version.

    An existing exception is removed even if its original start is no longer a meeting of the
    series (an orphan left by an older schedule change).
    """
    with engine.begin() as connection:
        current = _current(connection, series_id)
        if current is None:
            raise MeetingError({"series": f"series {series_id} does not exist"})
        local = _to_local_naive(occurrence, _zone(current["tzid"]))
        exists = connection.execute(
            sa.select(sa.func.count()).where(
                exceptions_table.c.series_id == series_id,
                exceptions_table.c.original_start == local,
            )
        ).scalar()
        if not exists:
            _row, local = _check_occurrence(connection, series_id, occurrence)
        _set_exception(connection, series_id, local, {})
        return _bump(connection, series_id, expected_version)


# --- iCalendar ----------------------------------------------------------------------------
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
        ids = _filtered_series_ids(connection, beat, sector, district)
        series = _series_rows(connection, ids)
        exceptions = pd.read_sql(
            sa.select(exceptions_table).where(
                exceptions_table.c.series_id.in_(series["id"].tolist())
            ),
            connection,
        )
        venues = pd.read_sql(sa.select(venues_table), connection).set_index("id")
    label = name or (
        f"Beat {beat} meetings"
        if beat
        else f"Sector {sector} meetings"
        if sector
        else f"District {district} meetings"
        if district
        else "Neighborhood watch meetings"
    )
    calendar = icalendar.Calendar()
    calendar.add("prodid", "-//Beatwise//Neighborhood watch meetings//EN")
    calendar.add("version", "2.0")
    calendar.add("calscale", "GREGORIAN")
    calendar.add("method", "PUBLISH")
    calendar.add("x-wr-calname", label)
    zones = sorted(set(series["tzid"])) or [schema.DEFAULT_TIMEZONE]
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
            s: tuple = s,
            stamp: pd.Timestamp = stamp,
            uid: str = uid,
            description: str = description,
        ) -> None:
            event.add("uid", uid)
            event.add("dtstamp", stamp.to_pydatetime())
            event.add("summary", s.title)
            event.add("dtstart", start)
            event.add("dtend", start + timedelta(minutes=minutes))
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
    jobs = [("all", {})]
    jobs += [(f"beat_{b}", {"beat": b}) for b in areas["beat"]]
    jobs += [(f"sector_{s}", {"sector": s}) for s in sorted(areas["sector"].dropna().unique())]
    for stem, area in jobs:
        path = directory / f"{stem}.ics"
        content = calendar_ics(engine, **area)
        if not path.exists() or path.read_bytes() != content:
            path.write_bytes(content)
        written.append(path)
    return written


# --- find my meeting ----------------------------------------------------------------------
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
        text = f"{query!r} was not found" + (
            f"; known blocks like it: {', '.join(hints)}"
            if hints
            else " (type a house number and street, e.g. 1234 W Madison St, or lat, lon)"
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


def escape(value: object) -> str:
    """Return `value` as HTML-escaped text (None -> empty)."""
    text = _none(value)
    return "" if text is None else html.escape(text, quote=True)
