"""Meetings database: open (migrate), load the reference data and seed the illustrative schedule."""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine
from sqlalchemy.exc import IntegrityError

from geodata import db, schema, settings
from geodata.meetings.model import (
    DEFAULT_DURATION_MIN,
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

__all__ = [
    "ILLUSTRATIVE_NOTE",
    "SECTOR_MEETING_DISTRICTS",
    "load_reference_data",
    "open_database",
    "seed_schedule",
]

log = logging.getLogger(__name__)

#: Districts whose seeded schedule has monthly *sector* meetings instead of beat meetings.
SECTOR_MEETING_DISTRICTS = ("01", "12", "18", "19")
ILLUSTRATIVE_NOTE = (
    "Illustrative schedule following the CAPS pattern (beat meetings about every two months, in "
    "the evening, at the district station); not a published Chicago Police schedule. Confirm with "
    "the district's CAPS office."
)


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
