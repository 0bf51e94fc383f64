"""Meeting series: recurrence, time zones, exceptions, iCal, validation, locking, migrations."""

from __future__ import annotations

import calendar
import re
import threading
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import icalendar
import pandas as pd
import pytest
import recurring_ical_events
import sqlalchemy as sa

from geodata import db, meetings
from geodata.meetings import ConflictError, MeetingError, VenueConflictError

TZ = "America/Chicago"  # the seeded sample schedule is Chicago's
CHICAGO = ZoneInfo(TZ)


def _count(engine, table) -> int:
    with engine.connect() as connection:
        return connection.execute(sa.select(sa.func.count()).select_from(table)).scalar()


def _expand_ics(content: bytes, start: date, end: date) -> set[tuple[str, datetime]]:
    """Expand an .ics with the independent recurring_ical_events library."""
    parsed = icalendar.Calendar.from_ical(content)
    events = recurring_ical_events.of(parsed).between(start, end)
    return {(str(e["UID"]), e["DTSTART"].dt.astimezone(CHICAGO)) for e in events}


# --- recurrence, hand-computed --------------------------------------------------------------
def test_second_tuesday_every_other_month_matches_hand_computed_dates():
    got = meetings.expand_rule(
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU",
        datetime(2027, 1, 12, 18, 30),
        datetime(2027, 1, 1),
        datetime(2028, 1, 1),
        tzid=TZ,
    )
    # 2027: Jan 1 is a Friday -> Tuesdays 5, 12; Mar 1 Monday -> 2, 9; May 1 Saturday -> 4, 11;
    # Jul 1 Thursday -> 6, 13; Sep 1 Wednesday -> 7, 14; Nov 1 Monday -> 2, 9
    expected = [(1, 12), (3, 9), (5, 11), (7, 13), (9, 14), (11, 9)]
    assert [(d.month, d.day) for d in got] == expected
    assert all((d.hour, d.minute) == (18, 30) for d in got)


def test_fifth_tuesday_only_in_months_that_have_one():
    got = meetings.expand_rule(
        "FREQ=MONTHLY;BYDAY=5TU",
        datetime(2027, 1, 1, 19, 0),
        datetime(2027, 1, 1),
        date(2028, 1, 1),
        tzid=TZ,
    )
    expected = []
    for month in range(1, 13):  # oracle: the stdlib calendar
        tuesdays = [
            d for d in calendar.Calendar().itermonthdates(2027, month)
            if d.month == month and d.weekday() == calendar.TUESDAY
        ]  # fmt: skip
        if len(tuesdays) == 5:
            expected.append(tuesdays[4])
    assert [d.date() for d in got] == expected
    assert len(expected) == 4  # 2027: March, June, August, November


def test_series_across_dst_keeps_local_time(meetings_engine):
    sid = meetings.create_series(
        meetings_engine,
        title="Weekly across spring forward",
        venue={"name": "Library", "address": "1 Test St", "lat": 41.9, "lon": -87.7},
        start=datetime(2027, 3, 2, 18, 30),
        rrule="FREQ=WEEKLY;BYDAY=TU;COUNT=4",
        beats=["1713"],
    )
    rows = meetings.upcoming_meetings(
        meetings_engine, beat="1713", start=date(2027, 3, 1), end=date(2027, 3, 31)
    )
    rows = rows[rows["series_id"] == sid]
    assert [d.day for d in rows["start"]] == [2, 9, 16, 23]
    assert set(rows["start"].dt.strftime("%H:%M")) == {"18:30"}
    # clocks spring forward on 2027-03-14: CST (-6 h) before, CDT (-5 h) after
    offsets = [s.utcoffset() for s in rows["start"]]
    assert offsets == [timedelta(hours=-6)] * 2 + [timedelta(hours=-5)] * 2
    assert [s.tz_convert("UTC").hour for s in rows["start"]] == [0, 0, 23, 23]


# --- validation: clear errors, nothing saved -------------------------------------------------
GOOD = {
    "title": "Test meeting",
    "venue": "17",
    "start": datetime(2027, 1, 4, 10, 0),
    "rrule": "FREQ=MONTHLY;BYDAY=1MO",
    "beats": ["1713"],
}


@pytest.mark.parametrize(
    ("change", "field", "message"),
    [
        ({"rrule": "FREQ=SOMETIMES"}, "rrule", "FREQ must be one of"),
        ({"rrule": "FREQ=MONTHLY;BYDAY=9XY"}, "rrule", "not a valid RRULE"),
        ({"rrule": "FREQ=MONTHLY;BYHOUR=3"}, "rrule", "BYHOUR not allowed"),
        ({"rrule": "FREQ=MONTHLY;UNTIL=20260101"}, "rrule", "before the start"),
        ({"start": datetime(2027, 3, 14, 2, 30), "rrule": "FREQ=YEARLY"}, "start", "spring"),
        ({"end": time(9, 0)}, "end", "is not after the start 10:00"),
        ({"beats": ["1713", "9999"]}, "beats", "unknown beat id(s): 9999"),
        ({"beats": None, "sector": "999"}, "sector", "'999' is not a known sector"),
        ({"duration_min": 90}, "duration_reason", "90 minutes (over 60) needs a reason"),
        ({"title": "  "}, "title", "is required"),
        ({"venue": "77"}, "venue", "not a known venue"),
        ({"virtual_link": "javascript:alert(1)"}, "virtual_link", "must start with https://"),
    ],
)
def test_invalid_input_names_the_field_and_saves_nothing(meetings_engine, change, field, message):
    before = meetings.schedule_token(meetings_engine)
    with pytest.raises(MeetingError, match=re.escape(message)) as caught:
        meetings.create_series(meetings_engine, **{**GOOD, **change})
    assert caught.value.field == field
    assert meetings.schedule_token(meetings_engine) == before


def test_all_field_errors_are_reported_at_once(meetings_engine):
    with pytest.raises(MeetingError) as caught:
        meetings.create_series(
            meetings_engine, **{**GOOD, "title": "", "beats": ["0000"], "rrule": "nonsense"}
        )
    assert set(caught.value.errors) == {"title", "beats", "rrule"}


def test_long_meeting_with_reason_and_end_time_is_saved(meetings_engine):
    sid = meetings.create_series(
        meetings_engine,
        **{**GOOD, "end": time(11, 30), "duration_reason": "annual district summit"},
    )
    row = meetings.list_series(meetings_engine).set_index("id").loc[sid]
    assert row["duration_min"] == 90
    assert row["duration_reason"] == "annual district summit"


def test_start_is_snapped_to_the_rules_first_occurrence(meetings_engine):
    sid = meetings.create_series(meetings_engine, **{**GOOD, "start": datetime(2027, 1, 2, 10)})
    row = meetings.list_series(meetings_engine).set_index("id").loc[sid]
    assert pd.Timestamp(row["dtstart"]) == pd.Timestamp("2027-01-04 10:00")  # first Monday


def test_venue_conflict_is_detected_and_can_be_overridden(meetings_engine):
    # beat 1713's seeded series: 2nd Tuesday of odd months, 18:30-19:30 at the district 17 station
    clash = {**GOOD, "start": datetime(2027, 1, 12, 19, 0), "rrule": "FREQ=MONTHLY;COUNT=1"}
    with pytest.raises(VenueConflictError, match="Beat 1713 community meeting") as caught:
        meetings.create_series(meetings_engine, **clash)
    assert caught.value.field == "venue"
    assert caught.value.conflicts["start"].iloc[0] == pd.Timestamp("2027-01-12 18:30", tz=CHICAGO)
    # back to back (19:30) is not a conflict
    meetings.create_series(meetings_engine, **{**clash, "start": datetime(2027, 1, 12, 19, 30)})
    sid = meetings.create_series(meetings_engine, **clash, allow_conflicts=True)
    assert sid > 0


# --- exceptions ------------------------------------------------------------------------------
@pytest.fixture
def beat_1713(meetings_engine):
    rows = meetings.upcoming_meetings(
        meetings_engine, beat="1713", start=date(2027, 1, 1), end=date(2027, 12, 31)
    )
    assert len(rows) == 6
    return rows


def test_cancel_and_move_apply_to_the_list(meetings_engine, beat_1713):
    sid = int(beat_1713["series_id"].iloc[0])
    first, second = (t.to_pydatetime() for t in beat_1713["start"].iloc[:2])
    v = meetings.cancel_occurrence(meetings_engine, sid, first, note="Holiday", expected_version=1)
    v = meetings.move_occurrence(
        meetings_engine,
        sid,
        second,
        datetime(2027, 3, 11, 18, 0),
        new_venue={"name": "Park field house", "address": "2 Park Ave", "lat": 41.97, "lon": -87.7},
        note="Station under repair",
        expected_version=v,
    )
    assert v == 3
    rows = meetings.upcoming_meetings(
        meetings_engine, beat="1713", start=date(2027, 1, 1), end=date(2027, 12, 31)
    )
    assert len(rows) == 6  # the cancelled meeting is kept, with its status
    assert rows["status"].tolist()[:2] == ["cancelled", "moved"]
    assert rows["note"].tolist()[:2] == ["Holiday", "Station under repair"]
    moved = rows.iloc[1]
    assert moved["start"] == pd.Timestamp("2027-03-11 18:00", tz=CHICAGO)
    assert moved["original_start"] == pd.Timestamp("2027-03-09 18:30", tz=CHICAGO)
    assert moved["venue_name"] == "Park field house"
    assert (moved["lat"], moved["lon"]) == (41.97, -87.7)
    assert set(rows["status"].iloc[2:]) == {"scheduled"}
    meetings.restore_occurrence(meetings_engine, sid, first)
    again = meetings.upcoming_meetings(
        meetings_engine, beat="1713", start=date(2027, 1, 1), end=date(2027, 1, 31)
    )
    assert again["status"].tolist() == ["scheduled"]


def test_moving_into_another_window_and_bad_moves(meetings_engine, beat_1713):
    sid = int(beat_1713["series_id"].iloc[0])
    jan = beat_1713["start"].iloc[0].to_pydatetime()
    meetings.move_occurrence(meetings_engine, sid, jan, datetime(2026, 12, 30, 18, 30))
    december = meetings.upcoming_meetings(
        meetings_engine, beat="1713", start=date(2026, 12, 1), end=date(2026, 12, 31)
    )
    assert december["start"].tolist() == [pd.Timestamp("2026-12-30 18:30", tz=CHICAGO)]
    before = meetings.schedule_token(meetings_engine)
    with pytest.raises(MeetingError, match="not a meeting of series") as caught:
        meetings.cancel_occurrence(meetings_engine, sid, datetime(2027, 1, 13, 18, 30))
    assert caught.value.field == "occurrence"
    with pytest.raises(MeetingError, match="spring forward") as caught:
        meetings.move_occurrence(meetings_engine, sid, jan, datetime(2027, 3, 14, 2, 15))
    assert caught.value.field == "new_start"
    with pytest.raises(MeetingError, match="is not after the start") as caught:
        meetings.move_occurrence(
            meetings_engine, sid, jan, datetime(2027, 1, 14, 18), new_end=time(17, 0)
        )
    assert caught.value.field == "new_end"
    assert meetings.schedule_token(meetings_engine) == before


# --- iCal ------------------------------------------------------------------------------------
def test_ics_round_trip_expands_to_the_same_dates(meetings_engine):
    rows = meetings.upcoming_meetings(
        meetings_engine, district="17", start=date(2027, 1, 1), end=date(2027, 6, 30)
    )
    sid = int(rows["series_id"].iloc[0])
    starts = rows[rows["series_id"] == sid]["start"]
    meetings.cancel_occurrence(meetings_engine, sid, starts.iloc[0].to_pydatetime(), note="x")
    meetings.move_occurrence(
        meetings_engine, sid, starts.iloc[1].to_pydatetime(), datetime(2027, 6, 30, 17, 0)
    )
    content = meetings.calendar_ics(meetings_engine, district="17")
    parsed = icalendar.Calendar.from_ical(content)
    assert [tz["TZID"] for tz in parsed.walk("VTIMEZONE")] == ["America/Chicago"]
    main = [
        e for e in parsed.walk("VEVENT")
        if e["UID"] == f"meeting-series-{sid}@beatwise" and "RECURRENCE-ID" not in e
    ]  # fmt: skip
    assert len(main) == 1
    assert "RRULE" in main[0]
    assert [d.dt for d in main[0]["EXDATE"].dts] == [starts.iloc[0].to_pydatetime()]
    override = [e for e in parsed.walk("VEVENT") if "RECURRENCE-ID" in e]
    assert [e["RECURRENCE-ID"].dt for e in override] == [starts.iloc[1].to_pydatetime()]
    ours = meetings.upcoming_meetings(
        meetings_engine, district="17", start=date(2027, 1, 1), end=date(2027, 6, 30)
    )
    live = ours[ours["status"] != "cancelled"]
    expected = {
        (f"meeting-series-{s}@beatwise", t)
        for s, t in zip(live["series_id"], live["start"], strict=True)
    }
    assert _expand_ics(content, date(2027, 1, 1), date(2027, 7, 1)) == expected
    areas = meetings.list_areas(meetings_engine)
    n_beats = int((areas["district"] == "17").sum())
    assert len(expected) == 3 * n_beats - 1  # every other month over 6 months, one cancelled


@pytest.mark.slow
def test_ics_of_all_series_and_stable_feeds(meetings_engine, tmp_path):
    content = meetings.calendar_ics(meetings_engine)
    parsed = icalendar.Calendar.from_ical(content)
    assert len(parsed.walk("VEVENT")) == len(meetings.list_series(meetings_engine))
    paths = meetings.write_feeds(meetings_engine, tmp_path)
    names = {p.name for p in paths}
    assert {"all.ics", "beat_1713.ics", "sector_171.ics"} <= names
    stamp = {p: p.stat().st_mtime_ns for p in paths[:5]}
    assert meetings.write_feeds(meetings_engine, tmp_path) == paths
    assert {p: p.stat().st_mtime_ns for p in paths[:5]} == stamp  # unchanged schedule: untouched


# --- seed ------------------------------------------------------------------------------------
def test_seed_covers_every_beat_without_overlaps(meetings_engine):
    areas = meetings.list_areas(meetings_engine)
    series = meetings.list_series(meetings_engine)
    served = set(",".join(series["beats"]).split(","))
    assert served == set(areas["beat"])
    assert series["illustrative"].all()
    assert series["notes"].str.contains("Illustrative").all()
    by_kind = series.groupby("area_kind")["rrule"].agg(set)
    assert all("INTERVAL=2" in r for r in by_kind["beat"])  # beats: every other month
    assert all("INTERVAL" not in r for r in by_kind["sector"])  # sectors: monthly
    rows = meetings.upcoming_meetings(
        meetings_engine, start=date(2027, 1, 1), end=date(2027, 12, 31)
    )
    assert set(rows["start"].dt.strftime("%H:%M")) == {"18:30"}
    for _, at_venue in rows.groupby("venue_id"):
        assert not at_venue["start"].duplicated().any()


def test_open_database_twice_does_not_reseed(meetings_url):
    first = meetings.open_database(meetings_url)
    n = len(meetings.list_series(first))
    again = meetings.open_database(meetings_url)
    assert len(meetings.list_series(again)) == n


# --- optimistic locking (SQLite) ------------------------------------------------------------
def _locking_scenario(url_a: str, url_b: str, sid: int) -> None:
    a, b = db.make_engine(url_a), db.make_engine(url_b)
    # B read version 1; A saves first; B's save must fail and must not overwrite A's title
    meetings.update_series(a, sid, expected_version=1, title="Saved by A")
    with pytest.raises(ConflictError, match="changed by someone else") as caught:
        meetings.update_series(b, sid, expected_version=1, title="Saved by B")
    assert caught.value.field == "version"
    assert caught.value.current_version == 2
    with pytest.raises(ConflictError):
        meetings.cancel_occurrence(b, sid, datetime(2027, 1, 12, 18, 30), expected_version=1)
    # truly concurrent: A holds the row in an open transaction while B tries
    errors: list[Exception] = []
    with a.begin() as connection:
        connection.execute(
            meetings.series_table.update()
            .where(meetings.series_table.c.id == sid, meetings.series_table.c.version == 2)
            .values(title="A again", version=3)
        )

        def other() -> None:
            try:
                meetings.update_series(b, sid, expected_version=2, title="B again")
            except ConflictError as err:
                errors.append(err)

        thread = threading.Thread(target=other)
        thread.start()
        thread.join(timeout=1.0)
        assert thread.is_alive()  # B waits for A's transaction
    thread.join(timeout=30)
    assert len(errors) == 1
    titles = meetings.list_series(a).set_index("id")
    assert titles.loc[sid, "title"] == "A again"
    assert titles.loc[sid, "version"] == 3
    a.dispose()
    b.dispose()


def test_optimistic_locking_two_engines_sqlite(meetings_engine, meetings_url):
    sid = int(meetings.upcoming_meetings(meetings_engine, beat="1713").iloc[0]["series_id"])
    _locking_scenario(meetings_url, meetings_url, sid)


# --- migrations ------------------------------------------------------------------------------
def test_upgrade_from_previous_revision_keeps_data(tmp_path):
    engine = db.make_engine(f"sqlite:///{tmp_path / 'old.db'}")
    db.upgrade(engine, "m0001_meetings")
    assert db.current_heads(engine) == {"m0001_meetings"}
    now = datetime(2026, 1, 1)
    with engine.begin() as c:
        c.exec_driver_sql("INSERT INTO meeting_areas VALUES ('1713', '171', '17')")
        c.exec_driver_sql(
            "INSERT INTO meeting_venues (id, station_id, name, address, phone, lat, lon) "
            "VALUES (1, '17', 'Albany Park', '4650 N Pulaski Rd', '312', 41.96, -87.72), "
            "(2, NULL, 'Library', '1 Main St', '', 41.9, -87.7)"
        )
        c.execute(
            sa.text(
                "INSERT INTO meeting_series (id, title, area_kind, sector, district, venue_id, "
                "dtstart, tzid, rrule, duration_min, illustrative, version, updated_at) VALUES "
                "(1, 'Old', 'beat', '171', '17', 1, :d, 'America/Chicago', "
                "'FREQ=MONTHLY;BYDAY=2TU', 60, 0, 4, :u)"
            ),
            {"d": datetime(2026, 1, 13, 18, 30), "u": now},
        )
        c.exec_driver_sql("INSERT INTO meeting_series_beats VALUES (1, '1713')")
        c.execute(
            sa.text(
                "INSERT INTO meeting_exceptions (series_id, original_start, status, note) "
                "VALUES (1, :o, 'cancelled', 'kept')"
            ),
            {"o": datetime(2026, 2, 10, 18, 30)},
        )
    engine.dispose()
    upgraded = meetings.open_database(f"sqlite:///{tmp_path / 'old.db'}")
    assert db.current_heads(upgraded) == db.latest_heads()
    series = meetings.list_series(upgraded)
    assert series[["id", "title", "version"]].to_numpy().tolist() == [[1, "Old", 4]]
    assert series["virtual_link"].isna().all()
    venues = meetings.list_venues(upgraded).set_index("id")
    assert venues.loc[1, "kind"] == "station"
    assert venues.loc[2, "kind"] == "community"
    rows = meetings.upcoming_meetings(upgraded, start=date(2026, 1, 1), end=date(2026, 3, 31))
    assert rows["status"].tolist() == ["scheduled", "cancelled", "scheduled"]
    assert rows["note"].tolist()[1] == "kept"


def test_empty_database_migrates_to_head(tmp_path):
    engine = meetings.open_database(f"sqlite:///{tmp_path / 'new.db'}", seed=False)
    assert db.current_heads(engine) == db.latest_heads()
    assert _count(engine, meetings.series_table) == 0
    assert _count(engine, meetings.areas_table) == 275
    assert _count(engine, meetings.venues_table) == 23


def test_next_three_meetings_skip_cancelled_and_reach_past_six_months(meetings_engine):
    # beat 1713 meets every other month: three meetings need more than 4 months
    now = datetime(2027, 1, 13, 9, 0)  # the day after the January meeting
    upcoming = meetings.next_meetings(meetings_engine, "1713", now=now)
    assert [t.strftime("%Y-%m-%d") for t in upcoming["start"]] == [
        "2027-03-09",
        "2027-05-11",
        "2027-07-13",
    ]
    sid = int(upcoming["series_id"].iloc[0])
    meetings.cancel_occurrence(meetings_engine, sid, datetime(2027, 3, 9, 18, 30))
    after = meetings.next_meetings(meetings_engine, "1713", now=now)
    assert [t.strftime("%m-%d") for t in after["start"]] == ["05-11", "07-13", "09-14"]


# --- exceptions follow a change of the schedule ----------------------------------------------
def _series_1713(engine) -> tuple[int, datetime, int]:
    rows = meetings.upcoming_meetings(
        engine, beat="1713", start=date(2027, 1, 1), end=date(2027, 1, 31)
    )
    sid = int(rows["series_id"].iloc[0])
    row = meetings.list_series(engine).set_index("id").loc[sid]
    return sid, pd.Timestamp(row["dtstart"]).to_pydatetime(), int(row["version"])


def _exception_keys(engine, sid: int) -> list[datetime]:
    with engine.connect() as connection:
        keys = connection.execute(
            sa.select(meetings.exceptions_table.c.original_start)
            .where(meetings.exceptions_table.c.series_id == sid)
            .order_by(meetings.exceptions_table.c.original_start)
        ).scalars()
        return [pd.Timestamp(k).to_pydatetime() for k in keys]


def _rows_1713(engine, sid: int, start: date, end: date) -> pd.DataFrame:
    rows = meetings.upcoming_meetings(engine, beat="1713", start=start, end=end)
    return rows[rows["series_id"] == sid].reset_index(drop=True)


def test_cancelled_meeting_stays_cancelled_after_the_series_time_changes(meetings_engine):
    sid, dtstart, v = _series_1713(meetings_engine)
    v = meetings.cancel_occurrence(
        meetings_engine, sid, datetime(2027, 3, 9, 18, 30), note="Holiday", expected_version=v
    )
    v = meetings.update_series(
        meetings_engine, sid, expected_version=v, start=dtstart.replace(hour=19, minute=0)
    )
    assert v == 3
    rows = _rows_1713(meetings_engine, sid, date(2027, 3, 1), date(2027, 3, 31))
    assert rows["start"].tolist() == [pd.Timestamp("2027-03-09 19:00", tz=CHICAGO)]
    assert rows["status"].tolist() == ["cancelled"]
    assert rows["note"].tolist() == ["Holiday"]
    assert _exception_keys(meetings_engine, sid) == [datetime(2027, 3, 9, 19, 0)]
    # the .ics excludes the meeting at its new time
    content = meetings.calendar_ics(meetings_engine, beat="1713")
    main = [
        e for e in icalendar.Calendar.from_ical(content).walk("VEVENT")
        if e["UID"] == f"meeting-series-{sid}@beatwise" and "RECURRENCE-ID" not in e
    ]  # fmt: skip
    assert [d.dt for d in main[0]["EXDATE"].dts] == [datetime(2027, 3, 9, 19, 0, tzinfo=CHICAGO)]
    uid = f"meeting-series-{sid}@beatwise"
    assert not [t for u, t in _expand_ics(content, date(2027, 3, 1), date(2027, 4, 1)) if u == uid]
    # and it can be restored at its new time
    meetings.restore_occurrence(meetings_engine, sid, datetime(2027, 3, 9, 19, 0))
    rows = _rows_1713(meetings_engine, sid, date(2027, 3, 1), date(2027, 3, 31))
    assert rows["status"].tolist() == ["scheduled"]


def test_moved_meeting_follows_a_change_of_the_series_time(meetings_engine):
    sid, dtstart, v = _series_1713(meetings_engine)
    v = meetings.move_occurrence(
        meetings_engine,
        sid,
        datetime(2027, 5, 11, 18, 30),
        datetime(2027, 5, 13, 17, 0),
        note="Station closed",
        expected_version=v,
    )
    v = meetings.update_series(
        meetings_engine, sid, expected_version=v, start=dtstart.replace(hour=19, minute=0)
    )
    rows = _rows_1713(meetings_engine, sid, date(2027, 5, 1), date(2027, 5, 31))
    assert rows["status"].tolist() == ["moved"]
    # the moved meeting keeps the time it was moved to; its original is the new 19:00 slot
    assert rows["start"].tolist() == [pd.Timestamp("2027-05-13 17:00", tz=CHICAGO)]
    assert rows["original_start"].tolist() == [pd.Timestamp("2027-05-11 19:00", tz=CHICAGO)]
    content = meetings.calendar_ics(meetings_engine, beat="1713")
    override = [
        e for e in icalendar.Calendar.from_ical(content).walk("VEVENT") if "RECURRENCE-ID" in e
    ]
    assert [e["RECURRENCE-ID"].dt for e in override] == [
        datetime(2027, 5, 11, 19, 0, tzinfo=CHICAGO)
    ]
    uid = f"meeting-series-{sid}@beatwise"
    expanded = {t for u, t in _expand_ics(content, date(2027, 5, 1), date(2027, 6, 1)) if u == uid}
    assert expanded == {datetime(2027, 5, 13, 17, 0, tzinfo=CHICAGO)}


def test_moving_the_weekday_with_the_rule_carries_the_exceptions(meetings_engine):
    sid, dtstart, v = _series_1713(meetings_engine)
    assert dtstart.weekday() == calendar.TUESDAY
    v = meetings.cancel_occurrence(meetings_engine, sid, datetime(2027, 3, 9, 18, 30))
    # second Tuesday -> second Wednesday: 2027-03-09 (Tue) becomes 2027-03-10 (Wed)
    v = meetings.update_series(
        meetings_engine,
        sid,
        expected_version=v,
        start=dtstart + timedelta(days=1),
        rrule="FREQ=MONTHLY;INTERVAL=2;BYDAY=2WE",
    )
    rows = _rows_1713(meetings_engine, sid, date(2027, 3, 1), date(2027, 3, 31))
    assert rows["start"].tolist() == [pd.Timestamp("2027-03-10 18:30", tz=CHICAGO)]
    assert rows["status"].tolist() == ["cancelled"]


def test_rule_change_that_orphans_an_exception_is_refused(meetings_engine):
    sid, dtstart, v = _series_1713(meetings_engine)
    v = meetings.cancel_occurrence(meetings_engine, sid, datetime(2027, 3, 9, 18, 30))
    v = meetings.move_occurrence(
        meetings_engine, sid, datetime(2027, 5, 11, 18, 30), datetime(2027, 5, 12, 18, 30)
    )
    before = meetings.schedule_token(meetings_engine)
    # every third month from January: March and May are no longer meetings
    with pytest.raises(MeetingError, match="restore or re-apply these exceptions first") as caught:
        meetings.update_series(
            meetings_engine,
            sid,
            expected_version=v,
            start=dtstart.replace(hour=19),
            rrule="FREQ=MONTHLY;INTERVAL=3;BYDAY=2TU",
        )
    assert caught.value.field == "rrule"
    text = caught.value.errors["rrule"]
    assert "2027-03-09 18:30 (cancelled)" in text
    assert "2027-05-11 18:30 (moved)" in text
    assert meetings.schedule_token(meetings_engine) == before  # nothing saved
    assert meetings.list_series(meetings_engine).set_index("id").loc[sid, "version"] == v
    assert _exception_keys(meetings_engine, sid) == [
        datetime(2027, 3, 9, 18, 30),
        datetime(2027, 5, 11, 18, 30),
    ]
    # restoring them first lets the rule change through
    meetings.restore_occurrence(meetings_engine, sid, datetime(2027, 3, 9, 18, 30))
    v = meetings.restore_occurrence(meetings_engine, sid, datetime(2027, 5, 11, 18, 30))
    meetings.update_series(
        meetings_engine,
        sid,
        expected_version=v,
        rrule="FREQ=MONTHLY;INTERVAL=3;BYDAY=2TU",
        allow_conflicts=True,
    )


def test_start_change_that_orphans_an_exception_names_the_start(meetings_engine):
    sid, _dtstart, v = _series_1713(meetings_engine)
    v = meetings.cancel_occurrence(meetings_engine, sid, datetime(2027, 3, 9, 18, 30))
    # starting the series in February (even months) drops the March meeting
    with pytest.raises(MeetingError, match=r"2027-03-09 18:30 \(cancelled\)") as caught:
        meetings.update_series(
            meetings_engine, sid, expected_version=v, start=datetime(2027, 2, 1, 18, 30)
        )
    assert caught.value.field == "start"
    assert _exception_keys(meetings_engine, sid) == [datetime(2027, 3, 9, 18, 30)]


def test_restore_removes_an_orphaned_exception(meetings_engine):
    sid, dtstart, v = _series_1713(meetings_engine)
    # an exception left behind by an older version of update_series
    with meetings_engine.begin() as connection:
        connection.execute(
            meetings.exceptions_table.insert().values(
                series_id=sid,
                original_start=datetime(2027, 3, 9, 18, 0),
                status="cancelled",
                note="orphan",
            )
        )
    # edits of the series are not blocked by it
    v = meetings.update_series(meetings_engine, sid, expected_version=v, title="Renamed")
    v = meetings.update_series(
        meetings_engine, sid, expected_version=v, start=dtstart.replace(hour=19)
    )
    assert _exception_keys(meetings_engine, sid) == [datetime(2027, 3, 9, 18, 0)]
    v = meetings.restore_occurrence(
        meetings_engine, sid, datetime(2027, 3, 9, 18, 0), expected_version=v
    )
    assert _exception_keys(meetings_engine, sid) == []
    # without a row, a time that is not a meeting is still an error
    with pytest.raises(MeetingError, match="not a meeting of series") as caught:
        meetings.restore_occurrence(meetings_engine, sid, datetime(2027, 3, 9, 18, 0))
    assert caught.value.field == "occurrence"


def test_move_of_more_than_a_year_is_refused(meetings_engine):
    sid, _dtstart, _v = _series_1713(meetings_engine)
    before = meetings.schedule_token(meetings_engine)
    with pytest.raises(MeetingError, match="more than 365 days") as caught:
        meetings.move_occurrence(
            meetings_engine, sid, datetime(2027, 3, 9, 18, 30), datetime(2028, 3, 10, 18, 30)
        )
    assert caught.value.field == "new_start"
    with pytest.raises(MeetingError, match="more than 365 days"):
        meetings.move_occurrence(
            meetings_engine, sid, datetime(2027, 3, 9, 18, 30), datetime(2026, 3, 8, 18, 30)
        )
    assert meetings.schedule_token(meetings_engine) == before
    # a year to the day is allowed and listed
    meetings.move_occurrence(
        meetings_engine, sid, datetime(2027, 3, 9, 18, 30), datetime(2028, 3, 8, 18, 30)
    )
    rows = _rows_1713(meetings_engine, sid, date(2028, 3, 8), date(2028, 3, 8))
    assert rows["original_start"].tolist() == [pd.Timestamp("2027-03-09 18:30", tz=CHICAGO)]


# --- the editor's recurrence picker ----------------------------------------------------------
def _weekdays(year: int, month: int, weekday: int) -> list[date]:
    """Oracle: the dates of one weekday in a month, from the stdlib calendar."""
    return [
        d for d in calendar.Calendar().itermonthdates(year, month)
        if d.month == month and d.weekday() == weekday
    ]  # fmt: skip


def test_picker_rules_expand_to_hand_computed_dates():
    every_other = meetings.build_rule(meetings.RulePick("every other month", weekday="TU", week=2))
    assert every_other == "FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU"
    got = meetings.expand_rule(
        every_other,
        datetime(2027, 1, 12, 18, 30),
        datetime(2027, 1, 1),
        datetime(2028, 1, 1),
        tzid=TZ,
    )
    assert [(d.month, d.day) for d in got] == [(1, 12), (3, 9), (5, 11), (7, 13), (9, 14), (11, 9)]
    quarterly = meetings.build_rule(meetings.RulePick("quarterly", weekday="WE", week=1))
    got = meetings.expand_rule(
        quarterly, datetime(2027, 1, 6, 19, 0), datetime(2027, 1, 1), datetime(2028, 1, 1), tzid=TZ
    )
    assert [d.date() for d in got] == [
        _weekdays(2027, m, calendar.WEDNESDAY)[0] for m in (1, 4, 7, 10)
    ]
    assert [d.day for d in got] == [
        6,
        7,
        7,
        6,
    ]  # by hand: Jan 1 Fri, Apr 1 Thu, Jul 1 Thu, Oct 1 Fri
    # monthly on the last Thursday, with exceptions: no meeting in July and December
    pick = meetings.RulePick("monthly", weekday="TH", week=-1, skip_months=(7, 12))
    rule = meetings.validate_rrule(meetings.build_rule(pick), datetime(2027, 1, 28, 18, 30), TZ)
    got = meetings.expand_rule(
        rule, datetime(2027, 1, 28, 18, 30), datetime(2027, 1, 1), datetime(2028, 1, 1), tzid=TZ
    )
    months = [m for m in range(1, 13) if m not in (7, 12)]
    assert [d.date() for d in got] == [_weekdays(2027, m, calendar.THURSDAY)[-1] for m in months]


@pytest.mark.slow
def test_picker_reads_back_what_it_wrote_and_refuses_what_it_cannot_show():
    picks = [
        meetings.RulePick("every other month", weekday="TU", week=2),
        meetings.RulePick("quarterly", weekday="WE", week=-1, skip_months=(12,)),
        meetings.RulePick("weekly", weekday="MO", until=date(2027, 12, 31)),
        meetings.RulePick("monthly"),
    ]
    start = datetime(2027, 1, 4, 18, 30)
    for pick in picks:
        canonical = meetings.validate_rrule(meetings.build_rule(pick), start, TZ)
        assert meetings.pick_from_rule(canonical, tzid=TZ) == pick
    # UNTIL is stored in UTC (2028-01-01 05:59:59Z) and read back as the local last day
    assert "UNTIL=20280101T055959Z" in meetings.validate_rrule(
        meetings.build_rule(picks[2]), start, TZ
    )
    for rule in ("FREQ=MONTHLY;COUNT=3", "FREQ=MONTHLY;BYMONTHDAY=15", "FREQ=WEEKLY;BYDAY=MO,TH"):
        assert meetings.pick_from_rule(rule, tzid=TZ) is None
    with pytest.raises(MeetingError, match="cannot skip months"):
        meetings.build_rule(meetings.RulePick("monthly", skip_months=tuple(range(1, 13))))


# --- archived series -------------------------------------------------------------------------
@pytest.mark.slow
def test_archive_hides_a_series_from_the_schedule_and_feeds_but_keeps_it(meetings_engine, tmp_path):
    sid, _dtstart, v = _series_1713(meetings_engine)
    v = meetings.cancel_occurrence(meetings_engine, sid, datetime(2027, 3, 9, 18, 30), note="x")
    before = meetings.upcoming_meetings(
        meetings_engine, start=date(2027, 1, 1), end=date(2027, 12, 31)
    )
    v = meetings.archive_series(meetings_engine, sid, expected_version=v)
    after = meetings.upcoming_meetings(
        meetings_engine, start=date(2027, 1, 1), end=date(2027, 12, 31)
    )
    assert sid not in set(after["series_id"])
    assert len(after) == len(before) - 6  # its six meetings of 2027, nothing else
    assert meetings.next_meetings(meetings_engine, "1713", now=datetime(2027, 1, 1)).empty
    uid = f"meeting-series-{sid}@beatwise"
    assert uid.encode() not in meetings.calendar_ics(meetings_engine)
    meetings.write_feeds(meetings_engine, tmp_path)
    assert uid.encode() not in (tmp_path / "beat_1713.ics").read_bytes()
    # kept in the history, with its exception
    kept = meetings.list_series(meetings_engine).set_index("id").loc[sid]
    assert bool(kept["archived"])
    assert kept["version"] == v == 3
    assert _exception_keys(meetings_engine, sid) == [datetime(2027, 3, 9, 18, 30)]
    with pytest.raises(MeetingError, match="archived already"):
        meetings.archive_series(meetings_engine, sid, expected_version=v)
    # the venue is free at its times: another series takes the 2027-01-12 18:30 slot ...
    other = meetings.create_series(
        meetings_engine, **{**GOOD, "start": datetime(2027, 1, 12, 18, 30), "rrule": "FREQ=YEARLY"}
    )
    # ... so putting the archived one back is a venue conflict, unless allowed
    with pytest.raises(VenueConflictError, match="Test meeting"):
        meetings.unarchive_series(meetings_engine, sid, expected_version=v)
    with pytest.raises(ConflictError):
        meetings.unarchive_series(meetings_engine, sid, expected_version=v - 1)
    meetings.archive_series(
        meetings_engine,
        other,
        expected_version=1,
    )
    v = meetings.unarchive_series(meetings_engine, sid, expected_version=v)
    rows = _rows_1713(meetings_engine, sid, date(2027, 1, 1), date(2027, 12, 31))
    assert rows["status"].tolist() == ["scheduled", "cancelled", *["scheduled"] * 4]


@pytest.mark.parametrize(
    ("rule", "words"),
    [
        ("FREQ=WEEKLY;INTERVAL=0", "INTERVAL=0: must be a whole number from 1 up"),
        ("FREQ=WEEKLY;INTERVAL=-1", "INTERVAL=-1: must be a whole number from 1 up"),
        ("FREQ=MONTHLY;INTERVAL=two", "INTERVAL=TWO: must be a whole number from 1 up"),
        ("FREQ=MONTHLY;COUNT=0", "COUNT=0: must be whole numbers from 1 to 100000"),
        ("FREQ=YEARLY;BYMONTH=13", "BYMONTH=13: must be whole numbers from 1 to 12"),
        ("FREQ=MONTHLY;BYDAY=TU;BYSETPOS=0", "BYSETPOS=0: must be whole numbers from -366"),
        ("FREQ=MONTHLY;BYMONTHDAY=1,32", "BYMONTHDAY=1,32: must be whole numbers from -31"),
    ],
)
def test_a_rule_whose_numbers_make_no_schedule_is_refused_by_name(rule, words):
    # INTERVAL=0 never moved past its start: expanding it ran until memory ran out
    with pytest.raises(MeetingError) as refused:
        meetings.validate_rrule(rule, datetime(2027, 1, 5, 18, 30), TZ)
    assert words in refused.value.errors["rrule"]


def test_the_usual_rules_still_pass_the_number_checks():
    start = datetime(2027, 1, 12, 18, 30)
    for rule in (
        "FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU",
        "FREQ=MONTHLY;INTERVAL=3;BYDAY=TU;BYSETPOS=-1",
        "FREQ=YEARLY;BYMONTH=1,4,7,10;BYMONTHDAY=12;COUNT=8",
    ):
        assert meetings.validate_rrule(rule, start, TZ) == rule


def test_a_meeting_on_the_night_the_clocks_go_back_lasts_its_minutes(meetings_engine):
    # 2027-11-07 01:30 Chicago happens twice; the meeting starts at the first (CDT) and its
    # 60 minutes end at 01:30 CST, not at 02:30 CST (two real hours)
    sid = meetings.create_series(
        meetings_engine,
        title="On the fall-back night",
        venue={"name": "Hall", "address": "2 Test St", "lat": 41.9, "lon": -87.7},
        start=datetime(2027, 11, 7, 1, 30),
        rrule="FREQ=YEARLY;COUNT=2",
        beats=["1713"],
    )
    rows = meetings.upcoming_meetings(
        meetings_engine, beat="1713", start=date(2027, 11, 1), end=date(2027, 11, 30)
    )
    row = rows[rows["series_id"] == sid].iloc[0]
    assert (row["end"] - row["start"]) == pd.Timedelta(minutes=60)
    assert row["start"].utcoffset() == timedelta(hours=-5)
    assert row["end"].utcoffset() == timedelta(hours=-6)
    # the calendar gives a length (RFC 5545: DURATION is exact time), not a wall-clock end
    cal = icalendar.Calendar.from_ical(meetings.calendar_ics(meetings_engine, beat="1713"))
    (event,) = [e for e in cal.walk("VEVENT") if str(e.get("summary")) == "On the fall-back night"]
    assert event.decoded("duration") == timedelta(minutes=60)
    assert "DTEND" not in event


def test_the_calendar_names_the_beat_as_stored(meetings_engine):
    # typed without its leading zero, as a resident would
    cal = icalendar.Calendar.from_ical(meetings.calendar_ics(meetings_engine, beat="925"))
    assert str(cal.get("x-wr-calname")) == "Beat 0925 meetings"
    assert cal.walk("VEVENT")  # and the same beat's meetings
