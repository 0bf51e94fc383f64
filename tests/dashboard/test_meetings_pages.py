"""The meetings pages (AppTest), map popups and flyer escaping, and the issue's "Done when" path."""

from __future__ import annotations

import json
from datetime import date, datetime, time, timedelta
from zoneinfo import ZoneInfo

import geopandas as gpd
import icalendar
import pandas as pd
import pyproj
import pytest
import recurring_ical_events
from streamlit.testing.v1 import AppTest

from analysis.flyer import Flyer, render_flyer
from dashboard.meetings_data import venue_markers
from geodata import meetings
from geodata.cli import main
from tests.auth_helpers import opened
from tests.conftest import APP as APP_PATH
from tests.helpers import folium_maps

CHICAGO = ZoneInfo("America/Chicago")
XSS = "<script>alert(1)</script>"
ADDRESS = "1234 W Madison St"


@pytest.fixture
def meetings_env(app_env, meetings_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", meetings_url)
    return app_env


def _page(app, page: str) -> AppTest:
    return opened(app, page, "meetings", timeout=120)


def _button(at, label: str):
    (button,) = [b for b in at.button if b.label == label]
    return button


def _xss_series(engine) -> int:
    return meetings.create_series(
        engine,
        title=XSS,
        venue={
            "name": "<img src=x onerror=alert(2)>",
            "address": "1 <b>Main</b> St",
            "lat": 41.95,
            "lon": -87.70,
        },
        start=datetime.now(CHICAGO).replace(tzinfo=None, hour=18, minute=0) + timedelta(days=2),
        rrule="FREQ=WEEKLY;COUNT=3",
        beats=["1713"],
        notes=XSS,
    )


# --- escaping --------------------------------------------------------------------------------
def test_popups_escape_titles_notes_and_venues(meetings_engine):
    sid = _xss_series(meetings_engine)
    rows = meetings.upcoming_meetings(meetings_engine, beat="1713")
    first = rows[rows["series_id"] == sid]["start"].iloc[0].to_pydatetime()
    meetings.cancel_occurrence(meetings_engine, sid, first, note=XSS)
    markers = venue_markers(meetings.upcoming_meetings(meetings_engine, beat="1713"))
    popup = markers[markers["venue_name"].str.startswith("<img")]["popup"].iloc[0]
    assert "<script>" not in popup
    assert "<img" not in popup
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in popup
    assert "&lt;img src=x onerror=alert(2)&gt;" in popup
    assert "CANCELLED" in popup


def test_flyer_escapes_and_lists_next_meetings(meetings_engine, beats):
    sid = _xss_series(meetings_engine)
    rows = meetings.upcoming_meetings(meetings_engine, beat="1713").head(4)
    assert sid in set(rows["series_id"])
    html = render_flyer(
        Flyer("1713", rows, beats, station={"name": XSS, "address": "a", "phone": "1"})
    )
    assert "<script>" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    assert "&lt;img src=x onerror=alert(2)&gt;" in html
    assert html.count("<tr class=") == 4
    assert 'data-beat="1713"' in html  # the beat is drawn on the map


# --- pages -----------------------------------------------------------------------------------
def test_meetings_page_map_list_and_escaping(meetings_env, meetings_url):
    engine = meetings.open_database(meetings_url)
    _xss_series(engine)
    at = _page(meetings_env, "meetings")
    assert at.title[0].value == "Neighborhood watch meetings"
    table = at.dataframe[0].value
    today = datetime.now(CHICAGO).date()
    expected = meetings.upcoming_meetings(engine, start=today, end=today + timedelta(days=60))
    assert len(table) == len(expected)
    (script,) = folium_maps(at)
    labels = script.count("bw-label bw-label-")  # beat labels are text markers too
    assert script.count("L.marker(") - labels == expected["venue_id"].nunique()
    assert labels > 0
    assert "<script>alert(1)" not in script
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in script
    at.selectbox(key="meetings_district").select("17").run()
    assert not at.exception
    in_17 = meetings.upcoming_meetings(
        engine, district="17", start=today, end=today + timedelta(days=60)
    )
    assert len(at.dataframe[0].value) == len(in_17)
    at.text_input(key="meetings_find").input("no such street 99").run()
    assert not at.exception
    assert "was not found" in at.warning[0].value


def test_editor_shows_field_errors_and_saves_nothing(meetings_env, meetings_url):
    engine = meetings.open_database(meetings_url)
    before = meetings.schedule_token(engine)
    at = _page(meetings_env, "meeting_editor")
    at.text_input(key="ed_title_new").input("Spring meeting")
    at.text_input(key="ed_beats_new").input("1713, 9999")
    at.date_input(key="ed_date_new").set_value(date(2027, 3, 14))
    at.time_input(key="ed_time_new").set_value(time(2, 30))
    at.selectbox(key="ed_rep_new").select("custom rule")
    at.text_input(key="ed_rrule_new").input("FREQ=YEARLY")
    _button(at, "Create series").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert "Beats: unknown beat id(s): 9999" in errors
    assert any(e.startswith("Start: 2027-03-14 02:30 does not exist") for e in errors)
    assert "Nothing was saved; correct the fields marked above." in errors
    assert meetings.schedule_token(engine) == before


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def editor_db(request, app_env, meetings_url, samples_dir, sample_store, monkeypatch):
    """The editor's database, seeded: a private SQLite copy, or the PostgreSQL test database."""
    if request.param == "sqlite":
        url = meetings_url
    else:
        url = request.getfixturevalue("pg_url")
        meetings.open_database(url, samples_dir=samples_dir).dispose()
    monkeypatch.setenv("DATABASE_URL", url)
    yield url
    # the pages keep their engine in Streamlit's resource cache: close its connections
    from dashboard import meetings_data as md

    md.engine(url, str(sample_store.root)).dispose()
    md.engine.clear()


def _chooser(at):
    (box,) = [s for s in at.selectbox if s.label == "Series"]
    return box


def _series_of(engine, beat: str) -> int:
    series = meetings.list_series(engine)
    return int(series.loc[series["beats"] == beat, "id"].iloc[0])


@pytest.mark.slow
def test_editor_conflict_reload_shows_their_values_and_the_save_keeps_them(app_env, editor_db):
    engine = meetings.open_database(editor_db)
    sid = _series_of(engine, "1713")
    at = _page(app_env, "meeting_editor")
    _chooser(at).select(sid).run()
    assert at.text_input(key=f"ed_title_{sid}").value == "Beat 1713 community meeting"
    # a colleague saves a new title and contact while this form is open
    meetings.update_series(
        engine, sid, expected_version=1, title="Colleague's title", contact="Sgt. Colleague"
    )
    at.text_input(key=f"ed_title_{sid}").input("My title")
    _button(at, "Save changes").click().run()
    assert not at.exception
    assert any("changed by someone else" in e.value for e in at.error)
    stored = meetings.list_series(engine).set_index("id").loc[sid]
    assert (stored["title"], stored["contact"], stored["version"]) == (
        "Colleague's title",
        "Sgt. Colleague",
        2,
    )
    # reload: the form shows the colleague's current values, not the ones typed or first read
    _button(at, "Reload the latest version").click().run()
    assert not at.exception
    assert at.text_input(key=f"ed_title_{sid}").value == "Colleague's title"
    assert at.text_input(key=f"ed_contact_{sid}").value == "Sgt. Colleague"
    assert not any("changed by someone else" in e.value for e in at.error)
    # my next change (the notes) is saved on top of theirs: their title and contact survive
    at.text_area(key=f"ed_notes_{sid}").input("Bring ID")
    _button(at, "Save changes").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    stored = meetings.list_series(engine).set_index("id").loc[sid]
    assert (stored["title"], stored["contact"], stored["notes"], stored["version"]) == (
        "Colleague's title",
        "Sgt. Colleague",
        "Bring ID",
        3,
    )
    engine.dispose()


@pytest.mark.slow
def test_editor_cancels_one_meeting_right_after_a_title_change(app_env, editor_db):
    engine = meetings.open_database(editor_db)
    sid = _series_of(engine, "1713")
    at = _page(app_env, "meeting_editor")
    _chooser(at).select(sid).run()
    at.text_input(key=f"ed_title_{sid}").input("Beat 1713 meeting, new name")
    _button(at, "Save changes").click().run()
    assert not at.exception
    assert any(s.value == f"Saved: series #{sid} is now version 2." for s in at.success)
    # the very next action: cancel the first listed meeting of the same series
    first = meetings.upcoming_meetings(engine, beat="1713")
    first = first[first["series_id"] == sid].iloc[0]["original_start"]
    at.radio(key=f"oc_action_{sid}").set_value("Cancel")
    at.text_input(key=f"oc_note_{sid}").input("Holiday")
    _button(at, "Apply").click().run()
    assert not at.exception
    assert _chooser(at).value == sid  # still on the series, not "New series"
    assert any(s.value.startswith(f"Cancel: {first:%Y-%m-%d %H:%M} done") for s in at.success)
    rows = meetings.upcoming_meetings(engine, beat="1713")
    row = rows[(rows["series_id"] == sid) & (rows["original_start"] == first)].iloc[0]
    assert (row["status"], row["note"], row["title"]) == (
        "cancelled",
        "Holiday",
        "Beat 1713 meeting, new name",
    )
    assert meetings.list_series(engine).set_index("id").loc[sid, "version"] == 3
    engine.dispose()


@pytest.mark.slow
def test_editor_reports_a_stale_version(meetings_env, meetings_url):
    engine = meetings.open_database(meetings_url)
    series = meetings.list_series(engine)
    sid = int(series.loc[series["beats"] == "1713", "id"].iloc[0])
    at = _page(meetings_env, "meeting_editor")
    _chooser(at).select(sid).run()
    assert at.text_input(key=f"ed_title_{sid}").value == "Beat 1713 community meeting"
    meetings.update_series(engine, sid, expected_version=1, title="Changed by a colleague")
    at.text_input(key=f"ed_title_{sid}").input("My change")
    _button(at, "Save changes").click().run()
    assert not at.exception
    assert any("changed by someone else" in e.value for e in at.error)
    current = meetings.list_series(engine).set_index("id").loc[sid]
    assert (current["title"], current["version"]) == ("Changed by a colleague", 2)
    # reload: the form shows the stored version, and a save on top of it goes through
    _button(at, "Reload the latest version").click().run()
    assert not at.exception
    assert at.text_input(key=f"ed_title_{sid}").value == "Changed by a colleague"
    at.text_input(key=f"ed_title_{sid}").input("My change, on version 2")
    _button(at, "Save changes").click().run()
    assert not at.exception
    assert not any("changed by someone else" in e.value for e in at.error)
    current = meetings.list_series(engine).set_index("id").loc[sid]
    assert (current["title"], current["version"]) == ("My change, on version 2", 3)


# --- Done when -------------------------------------------------------------------------------
def _cli(capsys, *args) -> dict | list:
    assert main(["meetings", *args]) == 0
    return json.loads(capsys.readouterr().out)


def _expand(content: bytes, start: datetime, days: int) -> list[datetime]:
    parsed = icalendar.Calendar.from_ical(content)
    events = recurring_ical_events.of(parsed).between(start, start + timedelta(days=days))
    return sorted(e["DTSTART"].dt.astimezone(CHICAGO) for e in events)


@pytest.mark.slow
def test_done_when_resident_and_analyst_path(
    meetings_env, meetings_url, sample_store, beats, tmp_path, capsys
):
    # a resident types a Chicago block address ...
    found = _cli(capsys, "find", ADDRESS, "--store", str(sample_store.root), "--json")
    # ... beat by an independent point-in-polygon join of the matched block position
    point = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy([found["lon"]], [found["lat"]]), crs="EPSG:4326"
    ).to_crs(beats.crs)
    assert found["beat"] == gpd.sjoin(point, beats, predicate="within")["beat"].iloc[0] == "1224"
    assert found["station"]["name"] == "Near West district station"
    assert found["station"]["phone"] == "312-746-8396"  # police_stations.csv, district 12
    assert len(found["meetings"]) == 3
    starts = [pd.Timestamp(m["start"]) for m in found["meetings"]]
    assert all(s > pd.Timestamp.now(tz=CHICAGO) for s in starts)
    # the page shows the same beat and meetings
    at = _page(meetings_env, "meetings")
    at.text_input(key="meetings_find").input(ADDRESS).run()
    assert not at.exception
    assert "beat **1224**" in at.success[0].value
    page_rows = at.dataframe[0].value
    assert [pd.Timestamp(s) for s in page_rows["start"]] == starts
    # ... downloads the .ics: it expands to the same dates
    ics = tmp_path / "beat.ics"
    assert main(["meetings", "ics", "--beat", "1224", "--out", str(ics)]) == 0
    now = datetime.now(CHICAGO)
    assert _expand(ics.read_bytes(), now, 120)[:3] == starts
    # an analyst moves one meeting (the second) to the next day at 19:00 ...
    engine = meetings.open_database(meetings_url)
    sid = found["meetings"][1]["series_id"]
    original = starts[1].to_pydatetime()
    new_start = (original + timedelta(days=1)).replace(hour=19, minute=0)
    meetings.move_occurrence(engine, sid, original, new_start.replace(tzinfo=None), note="Moved")
    # ... and the list, the map and the .ics all show it
    listed = _cli(capsys, "list", "--beat", "1224", "--json", "--limit", "3")
    assert [pd.Timestamp(m["start"]) for m in listed][1] == pd.Timestamp(new_start)
    assert listed[1]["status"] == "moved"
    at.run()  # the page reruns: its caches are keyed by the schedule's state
    assert not at.exception
    (script,) = folium_maps(at)
    assert f"<b>MOVED</b> {new_start:%a %b %d, %H:%M}" in script
    assert main(["meetings", "ics", "--beat", "1224", "--out", str(ics)]) == 0
    expanded = _expand(ics.read_bytes(), now, 120)
    assert new_start in expanded
    assert starts[1] not in expanded
    parsed = icalendar.Calendar.from_ical(ics.read_bytes())
    (override,) = [e for e in parsed.walk("VEVENT") if "RECURRENCE-ID" in e]
    assert override["RECURRENCE-ID"].dt == original


@pytest.mark.slow
def test_typed_coordinates_find_the_beat(meetings_env, sample_store):
    at = _page(meetings_env, "meetings")
    # an interior point of beat 1713, typed as "lat, lon" (a map click takes the same path)
    beats_layer = sample_store.read_layer("beats")
    inner = beats_layer[beats_layer["beat"] == "1713"].geometry.representative_point().iloc[0]
    lon, lat = pyproj.Transformer.from_crs(beats_layer.crs, "EPSG:4326", always_xy=True).transform(
        inner.x, inner.y
    )
    at.text_input(key="meetings_find").input(f"{lat:.6f}, {lon:.6f}").run()
    assert not at.exception
    assert "beat **1713**" in at.success[0].value


@pytest.mark.slow
def test_editor_moves_one_meeting_and_the_list_shows_it(meetings_env, meetings_url):
    engine = meetings.open_database(meetings_url)
    series = meetings.list_series(engine)
    sid = int(series.loc[series["beats"] == "1713", "id"].iloc[0])
    at = _page(meetings_env, "meeting_editor")
    _chooser(at).select(sid).run()
    assert not at.exception
    (pick,) = [s for s in at.selectbox if s.label == "Meeting"]
    first_label = pick.options[0]
    at.radio(key=f"oc_action_{sid}").set_value("Move")
    original = meetings.upcoming_meetings(engine, beat="1713")
    original = original[original["series_id"] == sid].iloc[0]["start"]
    target = (original + timedelta(days=2)).date()
    at.date_input(key=f"oc_date_{sid}_0").set_value(target)
    at.time_input(key=f"oc_time_{sid}_0").set_value(time(19, 0))
    at.text_input(key=f"oc_note_{sid}").input("Station closed")
    _button(at, "Apply").click().run()
    assert not at.exception
    assert any(s.value.startswith("Move: ") for s in at.success)
    rows = meetings.upcoming_meetings(engine, beat="1713")
    moved = rows[(rows["series_id"] == sid) & (rows["status"] == "moved")].iloc[0]
    assert moved["start"] == pd.Timestamp(datetime.combine(target, time(19, 0)), tz=CHICAGO)
    assert moved["original_start"] == original
    assert moved["note"] == "Station closed"
    assert first_label.startswith(f"{original:%a %Y-%m-%d %H:%M}")


@pytest.mark.slow
def test_editor_shows_a_venue_conflict_and_can_save_anyway(meetings_env, meetings_url):
    engine = meetings.open_database(meetings_url)
    venues = meetings.list_venues(engine)
    station_17 = int(venues.loc[venues["station_id"] == "17", "id"].iloc[0])
    at = _page(meetings_env, "meeting_editor")
    at.text_input(key="ed_title_new").input("Block club")
    at.text_input(key="ed_beats_new").input("1713")
    at.selectbox(key="ed_venue_new").select(station_17)
    at.date_input(key="ed_date_new").set_value(date(2027, 1, 12))
    at.time_input(key="ed_time_new").set_value(time(19, 0))
    at.selectbox(key="ed_rep_new").select("custom rule")
    at.text_input(key="ed_rrule_new").input("FREQ=MONTHLY;COUNT=1")
    _button(at, "Create series").click().run()
    assert not at.exception
    (message,) = [e.value for e in at.error]
    # beat 1713 meets at the district 17 station on 2027-01-12, 18:30-19:30 (seed)
    assert message.startswith("Venue: overlaps 1 meeting(s) at the same venue")
    assert "'Beat 1713 community meeting' on 2027-01-12 18:30-19:30" in message
    n = len(meetings.list_series(engine))
    at.checkbox(key="ed_allow_new").check()
    _button(at, "Create series").click().run()
    assert any(s.value.startswith("Series #") for s in at.success)
    assert len(meetings.list_series(engine)) == n + 1


@pytest.mark.slow
def test_typed_hostile_text_is_shown_literally(meetings_env):
    at = _page(meetings_env, "meetings")
    hostile = "<b>x</b> ![x](http://example.invalid/p.png) [link](http://example.invalid)"
    at.text_input(key="meetings_find").input(hostile).run()
    assert not at.exception
    (message,) = [w.value for w in at.warning]
    # Markdown and HTML characters escaped: no image, no link, no markup is rendered
    assert "\\<b\\>" in message
    assert "\\!\\[x\\]\\(" in message
    assert "\\[link\\]\\(" in message


@pytest.mark.slow
def test_editor_recurrence_picker_shows_and_writes_rules(meetings_env, meetings_url):
    engine = meetings.open_database(meetings_url)
    sid = _series_of(engine, "1713")
    at = _page(meetings_env, "meeting_editor")
    # a stored rule is shown in the picker: 2nd Tuesday of every other month
    _chooser(at).select(sid).run()
    assert at.selectbox(key=f"ed_rep_{sid}").value == "every other month"
    assert at.selectbox(key=f"ed_week_{sid}").value == 2
    assert at.selectbox(key=f"ed_weekday_{sid}").value == "TU"
    # a new series from the picker: quarterly on the last Wednesday, none in December
    _chooser(at).select("New series").run()
    at.text_input(key="ed_title_new").input("Quarterly block club")
    at.text_input(key="ed_beats_new").input("1713")
    at.selectbox(key="ed_venue_new").select("new")
    at.text_input(key="ed_vname_new").input("Park hall")
    at.text_input(key="ed_vaddr_new").input("2 Park Ave")
    at.text_input(key="ed_vlat_new").input("41.97")
    at.text_input(key="ed_vlon_new").input("-87.71")
    at.date_input(key="ed_date_new").set_value(date(2027, 1, 1))
    at.time_input(key="ed_time_new").set_value(time(19, 0))
    at.selectbox(key="ed_rep_new").select("quarterly")
    at.selectbox(key="ed_week_new").select(-1)
    at.selectbox(key="ed_weekday_new").select("WE")
    at.multiselect(key="ed_skip_new").select(12)
    _button(at, "Create series").click().run()
    assert not at.exception
    assert not at.error, [e.value for e in at.error]
    created = meetings.list_series(engine).set_index("title").loc["Quarterly block club"]
    assert created["rrule"] == "FREQ=MONTHLY;INTERVAL=3;BYDAY=-1WE;BYMONTH=1,2,3,4,5,6,7,8,9,10,11"
    rows = meetings.upcoming_meetings(
        engine, beat="1713", start=date(2027, 1, 1), end=date(2027, 12, 31)
    )
    dates = rows.loc[rows["series_id"] == created["id"], "start"].dt.strftime("%Y-%m-%d").tolist()
    # last Wednesdays of Jan, Apr, Jul, Oct 2027 (by hand: Jan 27, Apr 28, Jul 28, Oct 27)
    assert dates == ["2027-01-27", "2027-04-28", "2027-07-28", "2027-10-27"]
    assert _chooser(at).value == int(created["id"])  # the new series is opened


@pytest.mark.slow
def test_editor_archives_a_series_and_the_meetings_page_hides_it(meetings_env, meetings_url):
    engine = meetings.open_database(meetings_url)
    sid = _series_of(engine, "1713")
    at = _page(meetings_env, "meeting_editor")
    _chooser(at).select(sid).run()
    _button(at, "Archive series").click().run()
    assert not at.exception
    assert any(s.value.startswith(f"Series #{sid} archived") for s in at.success)
    stored = meetings.list_series(engine).set_index("id").loc[sid]
    assert bool(stored["archived"])
    assert any("Archived on" in i.value for i in at.info)
    assert any(o.startswith(f"#{sid} [archived] ") for o in _chooser(at).options)
    listing = _page(meetings_env, "meetings")
    shown = listing.dataframe[0].value
    assert "Beat 1713 community meeting" not in set(shown["title"])
    _button(at, "Put back on the schedule").click().run()
    assert not at.exception
    assert not bool(meetings.list_series(engine).set_index("id").loc[sid, "archived"])


@pytest.mark.slow
def test_meetings_pages_on_a_seattle_store(seattle_store, tmp_path, monkeypatch):
    # a fresh database for the Seattle store: its beats, Pacific times, precinct venues
    monkeypatch.setenv("BEATS_DATA_DIR", str(seattle_store.root.parent))
    url = f"sqlite:///{tmp_path / 'seattle.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    at = _page(APP_PATH, "meetings")
    engine = meetings.open_database(url)
    assert "M3" in set(meetings.list_areas(engine)["beat"])
    today = datetime.now(ZoneInfo("America/Los_Angeles")).date()
    expected = meetings.upcoming_meetings(engine, start=today, end=today + timedelta(days=60))
    table = at.dataframe[0].value
    assert len(table) == len(expected) > 0
    assert set(table["beats"]) <= set(meetings.list_areas(engine)["beat"])
    precincts = sorted(meetings.list_areas(engine)["district"].dropna().unique())
    assert at.selectbox(key="meetings_district").options == ["All", *precincts]
    editor = _page(APP_PATH, "meeting_editor")
    sid = _series_of(engine, "M3")
    _chooser(editor).select(sid).run()
    assert not editor.exception
    assert editor.text_input(key=f"ed_title_{sid}").value == "Beat M3 community meeting"
    assert editor.selectbox(key=f"ed_rep_{sid}").value == "monthly"
    engine.dispose()
