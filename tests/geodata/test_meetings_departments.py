"""Meetings for any department: Seattle's beats, zone and profile defaults (issue 10)."""

from __future__ import annotations

import json
from datetime import date, timedelta

import geopandas as gpd
import pandas as pd
import pytest

from geodata import meetings, settings
from geodata.cli import main
from geodata.meetings import MeetingDefaults, MeetingError

SEATTLE_BEATS = settings.bundled_samples("seattle") / "beats_2018.geojson"
SEATTLE_STATIONS = settings.bundled_samples("seattle") / "police_stations.csv"


@pytest.fixture(scope="module")
def raw_beats() -> set[str]:
    """Beat ids straight from SPD's file (independent of the store)."""
    return set(gpd.read_file(SEATTLE_BEATS)["beat"].dropna().astype(str).str.upper())


@pytest.fixture
def seattle_db(seattle_store, tmp_path):
    url = f"sqlite:///{tmp_path / 'seattle_meetings.db'}"
    engine = meetings.open_for_store(url, seattle_store)
    yield url, engine
    engine.dispose()


def _no_overlaps(rows: pd.DataFrame) -> None:
    for _, at_venue in rows[rows["status"] != "cancelled"].groupby("venue_id"):
        at_venue = at_venue.sort_values("start")
        assert (at_venue["start"].iloc[1:].to_numpy() >= at_venue["end"].iloc[:-1].to_numpy()).all()


def test_seattle_store_gets_its_own_beats_zone_and_profile_cadence(seattle_db, raw_beats):
    _url, engine = seattle_db
    areas = meetings.list_areas(engine)
    assert set(areas["beat"]) == raw_beats  # 55 beats, "99" (no precinct) included
    assert len(areas) == 55
    assert {"M3", "K3"} <= set(areas["beat"])
    series = meetings.list_series(engine)
    assert set(",".join(series["beats"]).split(",")) == set(areas["beat"])
    assert set(series["tzid"]) == {"America/Los_Angeles"}
    assert meetings.schedule_zone(engine) == "America/Los_Angeles"
    # the Seattle profile: monthly, 60 minutes; its top level is called "precinct"
    assert all(r.startswith("FREQ=MONTHLY;BYDAY=") for r in series["rrule"])
    assert set(series["duration_min"]) == {60}
    assert "Beat M3 community meeting" in set(series["title"])
    # the five precinct stations of the bundled stations file are the venues, named as
    # Seattle names its level, and each precinct's beats meet at their own precinct's station
    venues = meetings.list_venues(engine)
    stations = pd.read_csv(SEATTLE_STATIONS, dtype=str, keep_default_na=False)
    assert sorted(venues["name"]) == sorted(f"{n} precinct station" for n in stations["NAME"])
    assert sorted(venues["station_id"]) == sorted(stations["PRECINCT"])
    assert len(venues) == areas["district"].nunique() == 5
    assert set(venues["kind"]) == {"station"}
    seeded = series.merge(venues[["id", "station_id"]], left_on="venue_id", right_on="id")
    by_beat = areas.set_index("beat")["district"]
    own = seeded[seeded["beats"].map(by_beat).notna()]
    assert (own["beats"].map(by_beat) == own["station_id"]).all()
    assert len(own) == by_beat.notna().sum() == 51  # 55 beats less H1-H3 and 99
    rows = meetings.upcoming_meetings(engine, start=date(2027, 1, 1), end=date(2027, 12, 31))
    assert len(rows) == 12 * len(series)  # monthly: 12 meetings a year each
    assert set(rows["start"].dt.strftime("%H:%M")) >= {"18:30"}
    assert str(rows["start"].dt.tz) == "America/Los_Angeles"
    # 18:30 Pacific: 02:30 UTC next day in winter (hand: UTC-8), 01:30 in summer (UTC-7)
    m3 = rows[rows["beats"] == "M3"]
    winter = m3[m3["start"].dt.month == 1].iloc[0]["start"]
    assert winter.utcoffset() == timedelta(hours=-8)
    _no_overlaps(rows)


def test_cli_lists_a_seattle_beat(seattle_db, seattle_store, capsys):
    url, engine = seattle_db
    for typed in ("M3", "m3"):
        code = main(
            ["meetings", "list", "--beat", typed, "--store", str(seattle_store.root),
             "--database", url, "--from", "2027-01-01", "--to", "2027-03-31", "--json"]
        )  # fmt: skip
        assert code == 0
        listed = json.loads(capsys.readouterr().out)
        assert len(listed) == 3
        assert {r["beats"] for r in listed} == {"M3"}
    expected = meetings.upcoming_meetings(
        engine, beat="M3", start=date(2027, 1, 1), end=date(2027, 3, 31)
    )
    assert [r["start"] for r in listed] == [t.isoformat() for t in expected["start"]]


def test_an_existing_database_learns_a_stores_beats(meetings_url, seattle_store):
    before = meetings.list_areas(meetings.open_database(meetings_url))
    engine = meetings.open_for_store(meetings_url, seattle_store)
    after = meetings.list_areas(engine)
    assert set(before["beat"]) < set(after["beat"])
    assert "M3" in set(after["beat"])
    assert "1713" in set(after["beat"])
    sid = meetings.create_series(
        engine,
        title="Queen Anne block watch",
        venue={"name": "Library", "address": "400 W Garfield St", "lat": 47.63, "lon": -122.36},
        start=pd.Timestamp("2027-02-09 18:00").to_pydatetime(),
        rrule=meetings.build_rule(meetings.RulePick("every other month", weekday="TU", week=2)),
        beats="q1, Q2",
        tzid="America/Los_Angeles",
    )
    assert meetings.list_series(engine).set_index("id").loc[sid, "beats"] == "Q1,Q2"
    engine.dispose()


def test_seed_follows_other_defaults(seattle_store, tmp_path):
    beats = seattle_store.read_layer("beats")
    quarterly = MeetingDefaults(
        cadence="quarterly", duration_min=45, timezone="America/Los_Angeles",
        beat_label="zone beat",
    )  # fmt: skip
    engine = meetings.open_database(
        f"sqlite:///{tmp_path / 'q.db'}", beats=beats, defaults=quarterly
    )
    series = meetings.list_series(engine)
    assert all(r.startswith("FREQ=MONTHLY;INTERVAL=3;BYDAY=") for r in series["rrule"])
    assert set(series["duration_min"]) == {45}
    assert series["title"].str.startswith("Zone beat ").all()
    rows = meetings.upcoming_meetings(engine, start=date(2027, 1, 1), end=date(2027, 12, 31))
    assert len(rows) == 4 * len(series)
    _no_overlaps(rows)
    engine.dispose()
    for bad in ({"cadence": "fortnightly"}, {"duration_min": 90}):
        with pytest.raises(MeetingError, match=next(iter(bad))):
            MeetingDefaults(**bad)


def test_defaults_come_from_the_department_profile(seattle_store):
    defaults = meetings.defaults_for(seattle_store.department())
    assert (defaults.cadence, defaults.duration_min, defaults.timezone) == (
        "monthly",
        60,
        "America/Los_Angeles",
    )
    assert defaults.district_label == "precinct"


def test_without_a_store_the_selected_departments_files_seed_the_database(
    tmp_path, monkeypatch, raw_beats
):
    # no store: the profile named by BEATS_DEPARTMENT gives beats, stations, zone and defaults
    monkeypatch.setenv("BEATS_DATA_DIR", str(tmp_path / "no_store"))
    monkeypatch.setenv("BEATS_DEPARTMENT", "seattle")
    engine = meetings.open_database(f"sqlite:///{tmp_path / 'fresh.db'}", seed=False)
    assert set(meetings.list_areas(engine)["beat"]) == raw_beats
    assert meetings.list_series(engine).empty
    assert meetings.schedule_zone(engine) == "America/Los_Angeles"  # an empty schedule
    stations = pd.read_csv(SEATTLE_STATIONS, dtype=str)
    assert sorted(meetings.list_venues(engine)["station_id"]) == sorted(stations["PRECINCT"])
    sid = meetings.create_series(  # no zone given: the schedule's, i.e. Seattle's
        engine,
        title="Beat K3 walk",
        venue="W",
        start=pd.Timestamp("2027-02-09 18:00").to_pydatetime(),
        rrule="FREQ=MONTHLY;BYDAY=2TU",
        beats="k3",
    )
    assert meetings.list_series(engine).set_index("id").loc[sid, "tzid"] == "America/Los_Angeles"
    engine.dispose()


def _seed_once(url: str, store) -> pd.DataFrame:
    """The series of a fresh database seeded for `store` (the expected seed)."""
    engine = meetings.open_for_store(url, store)
    series = meetings.list_series(engine)
    engine.dispose()
    return series


def test_a_database_seeded_for_another_department_gets_the_stores_schedule(
    meetings_url, seattle_store, raw_beats, tmp_path
):
    # acceptance finding 3: a database seeded with the bundled Chicago sample (e.g. by the
    # community app of a new department) must still get Seattle's schedule for Seattle's beats
    chicago = meetings.list_series(meetings.open_database(meetings_url))
    assert not set(",".join(chicago["beats"]).split(",")) & raw_beats
    engine = meetings.open_for_store(meetings_url, seattle_store)
    series = meetings.list_series(engine)
    kept = series[series["id"].isin(chicago["id"])]
    columns = ["id", "title", "rrule", "version", "venue_id", "beats", "dtstart"]
    assert kept[columns].reset_index(drop=True).equals(chicago[columns].reset_index(drop=True))
    added = series[~series["id"].isin(chicago["id"])]
    expected = _seed_once(f"sqlite:///{tmp_path / 'alone.db'}", seattle_store)
    shown = ["title", "rrule", "beats", "venue_name", "tzid", "duration_min"]
    assert sorted(map(tuple, added[shown].to_numpy().tolist())) == sorted(
        map(tuple, expected[shown].to_numpy().tolist())
    )
    assert set(",".join(added["beats"]).split(",")) == raw_beats
    m3 = meetings.upcoming_meetings(
        engine, beat="M3", start=date(2027, 1, 1), end=date(2027, 3, 31)
    )
    assert len(m3) == 3  # monthly, at the West precinct station, in Pacific time
    assert set(m3["venue_name"]) == {"West precinct station"}
    # the list is in the zone of most series (Chicago's here); the wall time is Seattle's
    assert set(m3["start"].dt.tz_convert("America/Los_Angeles").dt.strftime("%H:%M")) == {"18:30"}
    engine.dispose()
    again = meetings.list_series(meetings.open_for_store(meetings_url, seattle_store))
    assert len(again) == len(series)  # seeded once: opening it again adds nothing


def test_a_departments_own_meetings_are_never_seeded_over(seattle_store, tmp_path, monkeypatch):
    # a database that holds one (even archived) series for a Seattle beat is the department's
    # own schedule: opening it for the store adds no illustrative meetings
    monkeypatch.setenv("BEATS_DEPARTMENT", "seattle")
    monkeypatch.setenv("BEATS_DATA_DIR", str(tmp_path / "no_store"))
    url = f"sqlite:///{tmp_path / 'own.db'}"
    engine = meetings.open_database(url, seed=False)
    sid = meetings.create_series(
        engine,
        title="Beat K3 walk",
        venue="W",
        start=pd.Timestamp("2027-02-09 18:00").to_pydatetime(),
        rrule="FREQ=MONTHLY;BYDAY=2TU",
        beats="K3",
    )
    meetings.archive_series(engine, sid, expected_version=1)
    before = meetings.list_series(engine)
    engine.dispose()
    engine = meetings.open_for_store(url, seattle_store)
    after = meetings.list_series(engine)
    assert after.equals(before)
    assert meetings.upcoming_meetings(engine, beat="M3").empty
    engine.dispose()
