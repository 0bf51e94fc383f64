"""Meetings database: open (migrate), load the reference data and seed the illustrative schedule.

The reference data (the beats with their sector and district, the police stations as venues)
comes from a beat layer and a stations layer: an incident store's (any department: ids are
taken as the layer has them) or, without one, the bundled sample files. The illustrative seed
follows :class:`MeetingDefaults`, which a department profile supplies
(:func:`defaults_for`: cadence, length, time zone, level names).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from dataclasses import asdict, dataclass, fields, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import geopandas as gpd
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from geodata import db, schema, settings
from geodata.meetings.model import (
    DEFAULT_DURATION_MIN,
    MAX_PLAIN_DURATION_MIN,
    MeetingError,
    _none,
    areas_table,
    series_beats_table,
    series_table,
    venues_table,
)
from geodata.meetings.recurrence import (
    _first_occurrence,
    _is_gap,
    _zone,
)

if TYPE_CHECKING:
    from geodata.department import Department
    from geodata.store import IncidentStore

__all__ = [
    "CADENCES",
    "MeetingDefaults",
    "defaults_for",
    "load_reference_data",
    "open_database",
    "open_for_store",
    "seed_department",
    "seed_schedule",
    "serves_any",
    "sync_areas",
]

log = logging.getLogger(__name__)

#: A department profile's ``[meetings] cadence`` -> months between a beat's meetings.
CADENCES = {"monthly": 1, "every other month": 2, "bimonthly": 2, "quarterly": 3}


@dataclass(frozen=True)
class MeetingDefaults:
    """How the illustrative schedule is seeded; a department profile supplies most of it.

    Parameters
    ----------
    cadence
        A key of :data:`CADENCES`: how often each beat meets.
    duration_min
        Length of a meeting, at most :data:`~geodata.meetings.MAX_PLAIN_DURATION_MIN`.
    timezone
        IANA zone of the meetings' wall times (the department's; required to seed).
    sector_districts
        Districts (top-level ids) whose sectors meet monthly instead of their beats.
    beat_label, sector_label, district_label
        The department's words for its levels, used in titles ("Beat K3 community meeting").
    note
        The note every seeded series carries (says that it is illustrative).
    contact
        Contact text; ``{station}`` is replaced by the station's name.
    """

    cadence: str = "every other month"
    duration_min: int = DEFAULT_DURATION_MIN
    timezone: str | None = None
    sector_districts: tuple[str, ...] = ()
    beat_label: str = "beat"
    sector_label: str = "sector"
    district_label: str = "district"
    note: str = (
        "Illustrative schedule (beat meetings in the evening at the station); not a published "
        "schedule. Confirm with the station's community policing office."
    )
    contact: str = "{station} community policing office"

    def __post_init__(self) -> None:
        errors = {}
        if self.cadence not in CADENCES:
            errors["cadence"] = f"{self.cadence!r} is not one of {', '.join(CADENCES)}"
        if not 1 <= int(self.duration_min) <= MAX_PLAIN_DURATION_MIN:
            errors["duration_min"] = (
                f"{self.duration_min} minutes; a seeded meeting lasts 1 to "
                f"{MAX_PLAIN_DURATION_MIN} minutes"
            )
        if errors:
            raise MeetingError(errors)

    def to_record(self) -> dict[str, Any]:
        """Return the defaults as JSON-ready values (what a published extract records)."""
        record = asdict(self)
        record["sector_districts"] = list(self.sector_districts)
        return record

    @classmethod
    def from_record(cls, record: Mapping[str, Any]) -> MeetingDefaults:
        """Return the defaults :meth:`to_record` wrote; keys it does not know are left out."""
        known = {f.name for f in fields(cls)}
        given = {k: v for k, v in record.items() if k in known}
        given["sector_districts"] = tuple(given.get("sector_districts") or ())
        return cls(**given)


def defaults_for(department: Department) -> MeetingDefaults:
    """Return the meeting defaults of a department profile (its ``[meetings]`` table).

    Parameters
    ----------
    department
        A :class:`geodata.department.Department` (``meeting_cadence``,
        ``meeting_duration_min``, ``timezone``, the seed's sector districts, note and contact,
        and its level labels).
    """

    def label(level: str) -> str:
        return department.label(level) if department.has_level(level) else level

    texts = {
        k: v
        for k, v in (("note", department.meeting_note), ("contact", department.meeting_contact))
        if v
    }
    return MeetingDefaults(
        cadence=str(department.meeting_cadence),
        duration_min=int(department.meeting_duration_min),
        timezone=department.timezone,
        sector_districts=tuple(department.meeting_sector_districts),
        beat_label=label(schema.BEAT),
        sector_label=label(schema.SECTOR),
        district_label=label(schema.DISTRICT),
        **texts,
    )


def open_database(
    url: str | None = None,
    *,
    seed: bool = True,
    samples_dir: Path | None = None,
    beats: gpd.GeoDataFrame | None = None,
    stations: gpd.GeoDataFrame | None = None,
    defaults: MeetingDefaults | None = None,
    department: Department | str | Path | None = None,
) -> Engine:
    """Return an engine on the meetings database, migrated to the newest schema.

    On a new database the reference data (beats with sector and district, police stations as
    venues) is loaded, and with `seed` the illustrative schedule. With `beats` (a store's or a
    published extract's beat layer) an existing database also learns the beats it does not know
    yet (:func:`sync_areas`), so a department's own ids (``K3``, ``M3``) are accepted; and with
    `seed`, when no meeting series (archived ones included) serves any of these beats, the
    department's stations and illustrative schedule are added (:func:`seed_department`). A
    database that holds meetings for any of the department's beats is never seeded again, and
    seeding only ever adds rows: existing series, venues and beats are never changed.

    Parameters
    ----------
    url
        SQLAlchemy URL; default :func:`geodata.settings.database_url` (SQLite in the data dir).
    seed
        Seed the illustrative schedule when the database holds no areas yet or, with `beats`,
        no meeting series for any of them.
    samples_dir
        Without `beats`: a directory holding the department profile's beat and stations files
        under the same names (default: where the profile points).
    beats, stations
        A beat layer (``beat``, ``sector``, ``district``, polygons in a projected CRS) and a
        stations layer (:data:`geodata.schema.STATION_COLUMNS`, may be None or empty), e.g. an
        incident store's.
    defaults
        How to seed (default: the department's, :func:`defaults_for`); a missing time zone is
        the department's.
    department
        The department whose beats and defaults are used (a profile, bundled name or path;
        default :func:`geodata.settings.department_name`, e.g. ``BEATS_DEPARTMENT``).
    """
    engine = db.make_engine(settings.database_url(url))
    db.upgrade(engine)
    with engine.connect() as connection:
        n_areas = connection.execute(sa.select(sa.func.count()).select_from(areas_table)).scalar()
    if beats is None and n_areas:
        return engine
    if beats is None or defaults is None or defaults.timezone is None:
        from geodata.department import load_department

        dept = load_department(department or settings.department_name())
        defaults = defaults or defaults_for(dept)
        if defaults.timezone is None:
            defaults = replace(defaults, timezone=dept.timezone)
    if beats is not None:
        areas, station_frame = _reference_frames(beats, stations)
    else:
        areas, station_frame = _read_reference(dept, samples_dir)
    if not n_areas:
        try:
            _load(engine, areas, station_frame, seed=seed, defaults=defaults)
        except IntegrityError:  # another process seeded the database at the same time
            log.info("reference data was loaded concurrently; keeping the other copy")
    else:
        try:
            sync_areas(engine, areas)
        except IntegrityError:  # another process added the same beats at the same time
            log.info("beats were added concurrently; keeping the other copy")
        if seed:
            seed_department(engine, areas, station_frame, defaults=defaults)
    return engine


def _reference_frames(
    beats: gpd.GeoDataFrame, stations: gpd.GeoDataFrame | None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (areas, stations) frames from a beat layer and a stations layer."""
    centroids = beats.geometry.centroid
    lonlat = centroids.to_crs(schema.WGS84)
    areas = pd.DataFrame(
        {
            "beat": beats[schema.BEAT].to_numpy(),
            "sector": beats[schema.SECTOR].astype("string").to_numpy()
            if schema.SECTOR in beats
            else pd.NA,
            "district": beats[schema.DISTRICT].astype("string").to_numpy()
            if schema.DISTRICT in beats
            else pd.NA,
            "x": centroids.x.to_numpy(),
            "y": centroids.y.to_numpy(),
            "lon": lonlat.x.to_numpy(),
            "lat": lonlat.y.to_numpy(),
        }
    )
    if stations is None or stations.empty:
        columns = ["station_id", "name", "address", "city", "state", "zip", "phone", "lat", "lon"]
        return areas, pd.DataFrame(columns=[*columns, "x", "y"])
    station_frame = pd.DataFrame(stations.drop(columns=stations.geometry.name))
    projected = stations.to_crs(beats.crs).geometry
    station_frame["x"] = projected.x.to_numpy()
    station_frame["y"] = projected.y.to_numpy()
    for column in ("address", "city", "state", "zip", "phone"):
        if column not in station_frame:
            station_frame[column] = None
    return areas, station_frame


def _read_reference(
    department: Department, samples_dir: Path | None = None
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return (areas, stations) from a department profile's beat layer and stations file."""
    from geodata.boundaries import read_beats, read_stations

    def located(path: Path) -> Path:
        return Path(samples_dir) / path.name if samples_dir else path

    if department.beats_file is None:
        msg = f"{department.source}: the department profile names no beat layer ([beats] file)"
        raise MeetingError({"beats": msg})
    beats = read_beats(located(department.beats_file), department=department)
    stations = None
    if department.stations_file is not None:
        has = department.has_level(schema.DISTRICT)
        width = department.level(schema.DISTRICT).width if has else None
        stations = read_stations(
            located(department.stations_file),
            district_width=width or None,
            analysis_crs=beats.crs.to_string(),
            columns=department.station_columns,
        )
    return _reference_frames(beats, stations)


def sync_areas(engine: Engine, areas: pd.DataFrame) -> int:
    """Add the beats of `areas` the database does not know yet; return how many were added.

    Known beats are kept as they are (series refer to them), so a database can serve a store
    whose beat layer gained beats. Sector and district of a new beat come from `areas`.
    """
    with engine.begin() as connection:
        known = set(connection.execute(sa.select(areas_table.c.beat)).scalars())
        new = areas[~areas["beat"].isin(known)]
        if len(new):
            connection.execute(
                areas_table.insert(),
                [
                    {"beat": r.beat, "sector": _none(r.sector), "district": _none(r.district)}
                    for r in new.itertuples()
                ],
            )
    return len(new)


def load_reference_data(
    engine: Engine,
    department: Department,
    *,
    samples_dir: Path | None = None,
    seed: bool = True,
    defaults: MeetingDefaults | None = None,
) -> None:
    """Load beats (areas) and stations (venues) in one transaction; with `seed`, the schedule.

    Parameters
    ----------
    engine
        The migrated database.
    department
        The department whose beat layer and stations file are read.
    samples_dir
        A directory holding the profile's files under the same names (default: the profile's).
    seed
        Also write the illustrative schedule (:func:`seed_schedule`).
    defaults
        How to seed (default: :func:`defaults_for` the department).
    """
    areas, stations = _read_reference(department, samples_dir)
    _load(engine, areas, stations, seed=seed, defaults=defaults or defaults_for(department))


def _station_name(row: Any, district_label: str) -> str:  # noqa: ANN401 - an itertuples row
    if row.station_id == "HQ":
        return f"{row.name} (HQ station)"
    return f"{row.name} {district_label} station"


def _venue_row(row: Any, defaults: MeetingDefaults) -> dict[str, Any]:  # noqa: ANN401
    """Return the venue of a station (an itertuples row of a stations frame)."""
    return {
        "station_id": str(row.station_id),
        "name": _station_name(row, defaults.district_label),
        "address": ", ".join(
            str(p) for p in (row.address, row.city, row.state, row.zip) if _none(p)
        ),
        "phone": str(_none(row.phone) or ""),
        "lat": float(row.lat),
        "lon": float(row.lon),
        "kind": "station",
    }


def _lock_schedule(connection: sa.Connection) -> None:
    """Hold the schedule's write lock until the transaction ends (before checking what it holds).

    PostgreSQL locks the series table against other writers (readers are not blocked); SQLite
    takes its database write lock with a no-op ``UPDATE`` (the transaction begins with it, so no
    stale snapshot is read afterwards), and a second writer waits (``busy_timeout``).
    """
    if connection.dialect.name == "postgresql":
        connection.execute(sa.text(f"LOCK TABLE {series_table.name} IN SHARE ROW EXCLUSIVE MODE"))
    else:
        connection.execute(areas_table.update().where(sa.false()).values(beat=areas_table.c.beat))


def serves_any(connection: sa.Connection, beats: list[str]) -> bool:
    """Return True when a meeting series (archived ones included) serves one of `beats`."""
    if not beats:
        return False
    table = series_beats_table
    for i in range(0, len(beats), 500):
        found = connection.execute(
            sa.select(table.c.beat).where(table.c.beat.in_(beats[i : i + 500])).limit(1)
        ).first()
        if found is not None:
            return True
    return False


def seed_department(
    engine: Engine,
    areas: pd.DataFrame,
    stations: pd.DataFrame,
    *,
    defaults: MeetingDefaults,
) -> int:
    """Seed a department's illustrative schedule into a database that has none of its meetings.

    Nothing is written when a series (archived ones included) already serves one of the
    department's beats: a schedule someone has seeded or edited is never replaced or added to.
    Otherwise the department's stations become venues (a venue of the same station id and name
    is reused) and :func:`seed_schedule` writes its schedule; other departments' beats, venues
    and series are left as they are. The check and the writes hold the schedule's write lock,
    so two processes opening the database at once seed it once.

    Parameters
    ----------
    engine
        The migrated database; it already knows the beats of `areas` (:func:`sync_areas`).
    areas, stations
        The department's reference frames (:func:`_reference_frames`).
    defaults
        How to seed (with the department's time zone).

    Returns
    -------
    int
        The number of series written (0: the database already had the department's meetings).
    """
    beats = [str(b) for b in areas["beat"]]
    with engine.begin() as connection:
        _lock_schedule(connection)
        if serves_any(connection, beats):
            return 0
        venue_ids: dict[str, int] = {}
        if len(stations):
            known = pd.read_sql(
                sa.select(venues_table.c.id, venues_table.c.station_id, venues_table.c.name).where(
                    venues_table.c.kind == "station"
                ),
                connection,
            )
            for row in stations.itertuples():
                venue = _venue_row(row, defaults)
                same = known[
                    (known["station_id"] == venue["station_id"]) & (known["name"] == venue["name"])
                ]
                if len(same):
                    venue_ids[venue["station_id"]] = int(same["id"].iloc[-1])
                else:
                    venue_ids[venue["station_id"]] = int(
                        connection.execute(
                            venues_table.insert().values(**venue).returning(venues_table.c.id)
                        ).scalar_one()
                    )
        written = seed_schedule(
            connection, areas, stations, defaults=defaults, venue_ids=venue_ids or None
        )
    log.info("seeded %d illustrative meeting series for %d beats", written, len(beats))
    return written


def _load(
    engine: Engine,
    areas: pd.DataFrame,
    stations: pd.DataFrame,
    *,
    seed: bool,
    defaults: MeetingDefaults,
) -> None:
    with engine.begin() as connection:
        connection.execute(
            areas_table.insert(),
            [
                {"beat": r.beat, "sector": _none(r.sector), "district": _none(r.district)}
                for r in areas.itertuples()
            ],
        )
        if len(stations):
            connection.execute(
                venues_table.insert(), [_venue_row(r, defaults) for r in stations.itertuples()]
            )
        if seed:
            seed_schedule(connection, areas, stations, defaults=defaults)


def _month_start(year: int, month: int, minutes_after: int = 0) -> datetime:
    return datetime(year, month, 1, 18, 30) + timedelta(minutes=minutes_after)


def _placeholder_venues(
    connection: sa.Connection, areas: pd.DataFrame, defaults: MeetingDefaults
) -> pd.DataFrame:
    """Write one "to be confirmed" venue per district without a station; return them."""
    rows = []
    for district, group in areas.groupby("district", sort=True, dropna=True):
        name = f"{defaults.district_label.capitalize()} {district} meeting place (to be confirmed)"
        venue = {
            "station_id": None,
            "name": name,
            "address": "to be confirmed",
            "phone": "",
            "lat": float(group["lat"].mean()),
            "lon": float(group["lon"].mean()),
            "kind": "community",
        }
        venue_id = connection.execute(
            venues_table.insert().values(**venue).returning(venues_table.c.id)
        ).scalar_one()
        rows.append(
            {
                "venue_id": int(venue_id),
                "station_id": f"venue-{venue_id}",
                "district": str(district),
                "name": name,
                "phone": None,
                "x": float(group["x"].mean()),
                "y": float(group["y"].mean()),
            }
        )
    return pd.DataFrame(rows)


def seed_schedule(
    connection: sa.Connection,
    areas: pd.DataFrame,
    stations: pd.DataFrame,
    *,
    first_year: int = 2025,
    defaults: MeetingDefaults,
    venue_ids: Mapping[str, int] | None = None,
) -> int:
    """Write the illustrative schedule; return the number of series written.

    `venue_ids` maps the station ids of `stations` to their venues (default: the venues of
    the database by station id).

    Every beat meets at the cadence of `defaults` (every other month for the bundled sample)
    at 18:30 at its district station (the nearest station where its district has none; a
    "to be confirmed" venue per district when the department has no stations file), on its own
    slot: month phase x 1st-4th week x Tuesday, Wednesday or Thursday, and later in the evening
    when a station has more beats than slots, so no two meetings at a venue overlap. In
    ``defaults.sector_districts`` the sectors meet monthly instead (one Wednesday each). Every
    series is flagged ``illustrative`` and carries ``defaults.note``.
    """
    interval = CADENCES[defaults.cadence]
    tzid = defaults.timezone
    if tzid is None:
        raise MeetingError({"timezone": "the seed defaults name no time zone (the department's)"})
    tz = _zone(tzid)
    if len(stations) and venue_ids is not None:
        venue_of = dict(venue_ids)
        district_stations = stations[stations["station_id"] != "HQ"].reset_index(drop=True)
    elif len(stations):
        venues = pd.read_sql(sa.select(venues_table.c.id, venues_table.c.station_id), connection)
        venue_of = dict(zip(venues["station_id"], venues["id"], strict=True))
        district_stations = stations[stations["station_id"] != "HQ"].reset_index(drop=True)
    else:
        district_stations = _placeholder_venues(connection, areas, defaults)
        venue_of = dict(
            zip(district_stations["station_id"], district_stations["venue_id"], strict=True)
        )
    by_district = {str(r.district): r for r in district_stations.itertuples()}
    now = datetime.now(UTC)
    series_rows: list[dict[str, Any]] = []
    served: list[list[str]] = []
    rule_part = f"FREQ=MONTHLY;INTERVAL={interval}" if interval > 1 else "FREQ=MONTHLY"

    def add(
        title: str,
        kind: str,
        beats: list[str],
        sector: str | None,
        district: str | None,
        station: Any,  # noqa: ANN401 - an itertuples row
        rule: str,
        month: int,
        minutes_after: int = 0,
    ) -> None:
        first = _first_occurrence(rule, _month_start(first_year, month, minutes_after), tz)
        if first is None or _is_gap(first, tz):
            return
        contact = defaults.contact.format(station=station.name) + (
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
                "tzid": tzid,
                "rrule": rule,
                "duration_min": defaults.duration_min,
                "duration_reason": None,
                "contact": contact,
                "notes": defaults.note,
                "illustrative": True,
                "version": 1,
                "updated_at": now,
                "virtual_link": None,
            }
        )
        served.append(beats)

    beat_label = defaults.beat_label.capitalize()
    slots_per_time = interval * 4 * 3
    for district, group in areas.groupby("district", sort=True, dropna=False):
        district_id = None if pd.isna(district) else str(district)
        station = by_district.get(str(district_id))
        own_station = station is not None
        if station is None:  # e.g. Chicago's district 31 (airport): the nearest station
            centre = group[["x", "y"]].mean()
            d2 = (district_stations["x"] - centre["x"]) ** 2 + (
                district_stations["y"] - centre["y"]
            ) ** 2
            station = next(district_stations.iloc[[int(d2.idxmin())]].itertuples())
        if district_id in defaults.sector_districts:
            for i, (sector, members) in enumerate(group.groupby("sector", sort=True)):
                rule = f"FREQ=MONTHLY;BYDAY={i % 4 + 1}WE"
                add(
                    f"{defaults.sector_label.capitalize()} {sector} community meeting",
                    "sector",
                    sorted(members["beat"]),
                    str(sector),
                    str(district_id),
                    station,
                    rule,
                    1,
                )
            continue
        for k, row in enumerate(group.sort_values("beat").itertuples()):
            if own_station:
                weekday = ("TU", "WE", "TH")[(k // (interval * 4)) % 3]
                later = (k // slots_per_time) * (defaults.duration_min + 15)
            else:  # a guest at another district's station: Mondays
                weekday = "MO"
                later = (k // (interval * 4)) * (defaults.duration_min + 15)
            rule = f"{rule_part};BYDAY={(k // interval) % 4 + 1}{weekday}"
            add(
                f"{beat_label} {row.beat} community meeting",
                "beat",
                [row.beat],
                _none(row.sector),
                str(district_id) if district_id is not None else None,
                station,
                rule,
                1 + k % interval,
                later,
            )
    for row, beats in zip(series_rows, served, strict=True):
        series_id = connection.execute(
            series_table.insert().values(**row).returning(series_table.c.id)
        ).scalar_one()
        connection.execute(
            series_beats_table.insert(), [{"series_id": series_id, "beat": b} for b in beats]
        )
    return len(series_rows)


def open_for_store(url: str | None, store: IncidentStore) -> Engine:
    """Return the meetings database of an incident store's department.

    The store's beat layer (and stations layer, if any) is the reference data and its
    department profile gives the seed defaults (:func:`defaults_for`), so a Seattle store's
    meetings serve beats ``K3`` or ``M3``. A store without a beat layer falls back to the
    bundled sample (:func:`open_database`).

    Parameters
    ----------
    url
        SQLAlchemy URL (default: :func:`geodata.settings.database_url`).
    store
        An :class:`geodata.store.IncidentStore`.
    """
    if not store.exists() or not store.has_layer("beats"):
        return open_database(url)
    stations = store.read_layer("stations") if store.has_layer("stations") else None
    dept = store.department()
    return open_database(
        url,
        beats=store.read_layer("beats"),
        stations=stations,
        defaults=defaults_for(dept),
        department=dept,
    )
