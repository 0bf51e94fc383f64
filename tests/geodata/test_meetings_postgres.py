"""The meetings database on a real PostgreSQL server: migrations, seed and optimistic locking."""

from __future__ import annotations

from datetime import date, datetime

import pytest
import sqlalchemy as sa

from geodata import db, meetings
from tests.geodata.test_meetings import _expand_ics, _locking_scenario

pytestmark = pytest.mark.postgres


def test_seed_list_and_ics_on_postgres(pg_url, samples_dir):
    engine = meetings.open_database(pg_url, samples_dir=samples_dir)
    assert db.current_heads(engine) == db.latest_heads()
    rows = meetings.upcoming_meetings(
        engine, beat="1713", start=date(2027, 1, 1), end=date(2027, 12, 31)
    )
    assert [t.strftime("%m-%d %H:%M") for t in rows["start"]] == [
        "01-12 18:30", "03-09 18:30", "05-11 18:30", "07-13 18:30", "09-14 18:30", "11-09 18:30",
    ]  # fmt: skip
    content = meetings.calendar_ics(engine, beat="1713")
    expected = {
        (f"meeting-series-{s}@beatwise", t)
        for s, t in zip(rows["series_id"], rows["start"], strict=True)
    }
    assert _expand_ics(content, date(2027, 1, 1), date(2028, 1, 1)) == expected
    engine.dispose()


def test_optimistic_locking_two_engines_postgres(pg_url, samples_dir):
    engine = meetings.open_database(pg_url, samples_dir=samples_dir)
    sid = int(
        meetings.upcoming_meetings(engine, beat="1713", start=date(2027, 1, 1)).iloc[0]["series_id"]
    )
    engine.dispose()
    _locking_scenario(pg_url, pg_url, sid)


def test_invalid_edit_saves_nothing_on_postgres(pg_url, samples_dir):
    engine = meetings.open_database(pg_url, samples_dir=samples_dir)
    before = meetings.schedule_token(engine)
    with pytest.raises(meetings.MeetingError, match="spring forward"):
        meetings.create_series(
            engine,
            title="x",
            venue={"name": "New hall", "address": "1 St", "lat": 41.9, "lon": -87.7},
            start=datetime(2027, 3, 14, 2, 30),
            rrule="FREQ=YEARLY",
            beats=["1713"],
        )
    assert meetings.schedule_token(engine) == before
    engine.dispose()


def test_upgrade_from_previous_revision_on_postgres(pg_url):
    engine = db.make_engine(pg_url)
    db.upgrade(engine, "m0001_meetings")
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO meeting_areas VALUES ('1713', '171', '17')")
        c.exec_driver_sql(
            "INSERT INTO meeting_venues (station_id, name, lat, lon) "
            "VALUES ('17', 'AP', 41.9, -87.7)"
        )
    db.upgrade(engine)
    with engine.connect() as c:
        kind = c.execute(sa.text("SELECT kind FROM meeting_venues")).scalar_one()
    assert kind == "station"
    assert db.current_heads(engine) == db.latest_heads()
    engine.dispose()


def test_a_chicago_seeded_database_gets_a_stores_schedule_once_on_postgres(
    pg_url, samples_dir, seattle_store
):
    engine = meetings.open_database(pg_url, samples_dir=samples_dir)
    chicago = len(meetings.list_series(engine))
    engine.dispose()
    for _ in range(2):  # the second open finds Seattle's meetings and adds none
        engine = meetings.open_for_store(pg_url, seattle_store)
        series = meetings.list_series(engine)
        engine.dispose()
        seattle = series[series["tzid"] == "America/Los_Angeles"]
        assert len(series) == chicago + len(seattle)
        assert {"Beat M3 community meeting", "Beat 99 community meeting"} <= set(seattle["title"])
