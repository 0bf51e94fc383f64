"""The community app, run by AppTest on a data dir that holds only the published extract."""

from __future__ import annotations

import itertools
import json
import re
from datetime import date, datetime, timedelta
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from geodata import schema
from geodata.department import load_department
from geodata.geocode import BlockGazetteer
from geodata.publish import EXTRACT_FILES, FINDER_FILES, public_block
from tests.community_helpers import independently_excluded
from tests.helpers import folium_maps, page_metrics

APP = str(Path(__file__).resolve().parents[2] / "dashboard" / "community_app.py")
TZ = load_department("chicago").timezone
HOSTILE = "<script>alert(1)</script>"


def _run(timeout: int = 120) -> AppTest:
    at = AppTest.from_file(APP, default_timeout=timeout).run()
    assert not at.exception, at.exception
    return at


_PAIR = re.compile(r"\[\s*(-?\d+\.\d+)\s*,\s*(-?\d+\.\d+)\s*\]")


def coordinate_pairs(text: str) -> set[tuple[float, float]]:
    """Return every ``[a, b]`` number pair in `text` as (lon, lat), both orders, to 6 decimals."""
    pairs = set()
    for a, b in _PAIR.findall(text):
        a, b = round(float(a), 6), round(float(b), 6)
        pairs |= {(a, b), (b, a)}
    return pairs


def raw_pairs(raw) -> set[tuple[float, float]]:
    """Return every raw incident position as (lon, lat) to 6 decimals."""
    return set(zip(raw[schema.LON].round(6), raw[schema.LAT].round(6), strict=True))


def _html_bodies(at) -> str:
    """Return the raw HTML the page renders (st.html and Markdown that allows HTML)."""
    bodies = []

    def walk(node):
        proto = getattr(node, "proto", None)
        body = getattr(proto, "body", None)
        is_html = getattr(node, "type", "") == "html" or getattr(proto, "allow_html", False)
        if isinstance(body, str) and is_html:
            bodies.append(body)
        for child in getattr(node, "children", {}).values():
            walk(child)

    walk(at.main)
    return "\n".join(bodies)


@pytest.fixture(scope="module")
def safe_window(sample_store, published):
    """The raw incidents a public view may count, in the published window (independent rule)."""
    meta = published[1].metadata
    raw = sample_store.load_incidents()
    day = raw[schema.OCCURRED_AT].dt.tz_convert(TZ).dt.date
    start = date.fromisoformat(meta["window_start"])
    end = date.fromisoformat(meta["window_end_exclusive"])
    window = raw[((day >= start) & (day < end)).to_numpy()].assign(day=day)
    return window[~independently_excluded(window)], end, raw


def test_app_runs_without_the_analyst_store(community_data_dir, safe_window):
    safe, end, _ = safe_window
    at = _run()
    assert at.title[0].value == "Your beat: community safety map"
    beat = at.selectbox[0].value
    assert beat == "0111"
    recent = safe[(safe[schema.BEAT] == beat) & (safe["day"] >= end - timedelta(days=28))]
    metrics = page_metrics(at)
    assert metrics["Incidents, last 28 days"] == f"{len(recent):,}"
    assert metrics["The 28 days before"] == "no data"  # the sample starts on 1 January 2018
    assert metrics["Your station"] == "Central"  # district 01's station
    counts = next(t.value for t in at.table if t.value.index.name == "Category").reset_index()
    by_category = dict(zip(counts["Category"].str.lower(), counts["Last 28 days"], strict=True))
    assert by_category == {c: int((recent[schema.CATEGORY] == c).sum()) for c in schema.CATEGORIES}
    # the app did not create (or read) an analyst store, and left the extract as it was
    assert not (community_data_dir / "store").exists()
    assert sorted(p.name for p in (community_data_dir / "public").iterdir()) == sorted(
        [*EXTRACT_FILES.values(), *FINDER_FILES.values()]
    )


@pytest.mark.slow
def test_find_beat_from_a_block_address(community_data_dir, safe_window, sample_store, beat_index):
    safe, end, _ = safe_window
    blocks = safe[schema.BLOCK].astype(str).map(public_block)
    block = "047XX S WESTERN AVE"
    assert (blocks == block).sum() > 3
    # the block's gazetteer point, in the beat that the incident join would give it
    where = BlockGazetteer.from_store(sample_store).locate(block)
    expected = beat_index.beat_at(where.lon, where.lat)
    at = _run()
    at.text_input[0].set_value("4712 s Western Avenue").run()
    assert not at.exception
    assert at.selectbox[0].value == expected
    assert at.info[0].value.replace("\\", "") == f"{block} (block) is in beat {expected}."
    mine = safe[(safe[schema.BEAT] == expected) & (safe["day"] >= end - timedelta(days=28))]
    assert page_metrics(at)["Incidents, last 28 days"] == f"{len(mine):,}"
    assert len(mine) > 0


def test_map_is_aggregated_and_carries_no_incident_location(community_data_dir, safe_window):
    _, _, raw = safe_window
    at = _run()
    (script,) = folium_maps(at)
    assert "L.geoJson" in script  # the beat choropleth
    assert "circle_marker" not in script
    assert "L.circleMarker" not in script
    assert "markerClusterGroup" not in script
    assert not coordinate_pairs(script) & raw_pairs(raw)
    excluded = raw[independently_excluded(raw)]
    for offense in set(excluded[schema.OFFENSE].astype(str)):
        assert offense not in script


def test_hostile_text_is_escaped(community_data_dir):
    public = community_data_dir / "public"
    stations = json.loads((public / EXTRACT_FILES["stations"]).read_text())
    for station in stations:
        if station["district"] == "01":
            station["name"] = HOSTILE
            station["address"] = f"1 {HOSTILE} St"
    (public / EXTRACT_FILES["stations"]).write_text(json.dumps(stations))
    from geodata import meetings

    engine = meetings.open_database(f"sqlite:///{community_data_dir / 'meetings.db'}")
    tomorrow = datetime.combine(date.today() + timedelta(days=1), datetime.min.time())
    meetings.create_series(
        engine,
        title=f"Beat 0111 {HOSTILE}",
        venue={"name": HOSTILE, "address": f"2 {HOSTILE} Ave", "lat": 41.88, "lon": -87.63},
        start=tomorrow.replace(hour=18, minute=30),
        rrule="FREQ=DAILY;COUNT=60",
        beats=["0111"],
        allow_conflicts=True,
    )
    engine.dispose()
    at = _run()
    html_text = _html_bodies(at)
    assert "&lt;script&gt;alert(1)&lt;/script&gt; station" in html_text
    assert HOSTILE not in html_text
    (script,) = folium_maps(at)
    assert HOSTILE not in script
    assert "&lt;script&gt;" in script  # the station popup
    table = at.table[0].value  # meetings: shown as text by st.table
    assert f"{HOSTILE}, 2 {HOSTILE} Ave" in set(table["Where"])
    from dashboard import community_data as cd

    root = str(public)
    handout = cd.handout_html(root, cd.extract_token(root), "0111", cd.next_meetings("0111"))
    assert HOSTILE not in handout
    assert handout.count("&lt;script&gt;alert(1)&lt;/script&gt;") >= 3  # station, venue, title
    assert "<svg" in handout
    assert "Beat 0111" in handout


@pytest.mark.slow
def test_first_run_publishes_the_bundled_sample_without_a_store(tmp_path, monkeypatch):
    data = tmp_path / "empty"
    data.mkdir()
    monkeypatch.setenv("BEATS_DATA_DIR", str(data))
    monkeypatch.delenv("BEATS_PUBLIC_DIR", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    at = _run(timeout=240)
    assert at.selectbox[0].value == "0111"
    assert sorted(p.name for p in (data / "public").iterdir()) == sorted(
        [*EXTRACT_FILES.values(), *FINDER_FILES.values()]
    )
    assert not (data / "store").exists()
    meta = json.loads((data / "public" / EXTRACT_FILES["metadata"]).read_text())
    assert meta["data_last_date"] == "2018-01-27"
    assert meta["note"].startswith("Demonstration data")
    assert meta["demo"] is True
    assert at.warning[0].value.replace("\\", "").startswith("Demonstration data")
    from dashboard import community_data as cd

    captions = [c.value for c in at.caption]
    assert cd.ILLUSTRATIVE_DEMO in captions  # the bundled demo's seeded schedule says so


@pytest.mark.postgres
def test_next_meetings_from_postgresql(community_data_dir, pg_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", pg_url)
    at = _run()
    from geodata import meetings

    engine = meetings.open_database(pg_url)
    expected = meetings.upcoming_meetings(engine, beat="0111", limit=3)
    engine.dispose()
    table = at.table[0].value.reset_index()
    assert len(expected) == 3
    assert list(table["Meeting"]) == list(expected["title"])
    assert [w[:22] for w in table["When"]] == [f"{t:%a %d %b %Y, %H:%M}" for t in expected["start"]]
    assert at.get("download_button")[0].label == "Add to my calendar (.ics)"


def test_page_stays_up_when_the_meetings_database_is_down(community_data_dir, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", "postgresql+psycopg://nobody:x@127.0.0.1:9/none")
    at = _run()
    assert "The meeting schedule is not available." in [m.value for m in at.markdown]
    assert page_metrics(at)["Your station"] == "Central"


def test_typed_hostile_text_is_shown_as_text(community_data_dir):
    at = _run()
    at.text_input[0].set_value(f"![x](http://example.invalid/x.png) {HOSTILE}").run()
    assert not at.exception
    (message,) = [i.value for i in at.info]
    assert message.startswith("No block or coordinates recognised in")
    assert "\\<script\\>" in message  # Markdown-escaped: shown literally, never as markup
    assert "\\!\\[x\\]\\(" in message
    assert at.selectbox[0].value == "0111"


@pytest.mark.slow
def test_previous_period_and_trend_when_the_data_covers_it(sample_store, tmp_path, monkeypatch):
    from geodata.publish import publish_store

    data = tmp_path / "data"
    extract = publish_store(sample_store, data / "public", as_of=date(2024, 12, 31))
    monkeypatch.setenv("BEATS_DATA_DIR", str(data))
    monkeypatch.delenv("BEATS_PUBLIC_DIR", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    end = date(2024, 12, 24)
    assert extract.metadata["window_end_exclusive"] == end.isoformat()
    raw = sample_store.load_incidents()
    day = raw[schema.OCCURRED_AT].dt.tz_convert(TZ).dt.date
    safe = raw[~independently_excluded(raw)].assign(day=day)
    beat = (
        safe[safe["day"].between(end - timedelta(days=56), end - timedelta(days=1))][schema.BEAT]
        .value_counts()
        .index[0]
    )
    mine = safe[safe[schema.BEAT] == beat]
    recent = int(mine["day"].between(end - timedelta(days=28), end - timedelta(days=1)).sum())
    previous = int(mine["day"].between(end - timedelta(days=56), end - timedelta(days=29)).sum())
    at = _run()
    at.selectbox[0].select(beat).run()
    assert not at.exception
    metrics = {m.label: m for m in at.metric}
    assert metrics["Incidents, last 28 days"].value == f"{recent:,}"
    assert metrics["The 28 days before"].value == f"{previous:,}"
    assert metrics["The 28 days before"].proto.delta == f"{recent - previous:,}"


def test_find_beat_from_coordinates(community_data_dir):
    import geopandas as gpd

    beats = gpd.read_file(community_data_dir / "public" / EXTRACT_FILES["beats"])
    target = beats[beats[schema.BEAT] == "1232"].geometry.iloc[0].representative_point()
    at = _run()
    at.text_input[0].set_value(f"{target.y:.5f}, {target.x:.5f}").run()
    assert not at.exception
    assert at.selectbox[0].value == "1232"
    assert at.info[0].value.replace("\\", "").endswith("(point) is in beat 1232.")


@pytest.mark.slow
def test_an_empty_extract_says_no_data(sample_store, tmp_path, monkeypatch):
    # A publication whose window holds no incident (e.g. a quiet feed, or a wrong --as-of):
    # the page must still work, and say "no data" rather than 0 incidents (finding 7).
    from geodata.publish import publish_store

    data = tmp_path / "data"
    extract = publish_store(sample_store, data / "public", as_of=date(2030, 1, 1))
    assert extract.metadata["rows_published"] == 0
    assert extract.metadata["data_covered_from"] is None
    monkeypatch.setenv("BEATS_DATA_DIR", str(data))
    monkeypatch.delenv("BEATS_PUBLIC_DIR", raising=False)
    monkeypatch.delenv("DATABASE_URL", raising=False)
    at = _run()
    assert page_metrics(at)["Incidents, last 28 days"] == "no data"
    assert at.warning[0].value.startswith("The published data hold no records for 2029-09-26")


def test_weekly_chart_has_week_bars_and_the_banner_no_command(community_data_dir):
    import pandas as pd

    from dashboard import community_data as cd

    root = str(community_data_dir / "public")
    token = cd.extract_token(root)
    spec = cd.trend_chart(root, token, "1224").to_dict()
    x = spec["encoding"]["x"]
    assert x["type"] == "ordinal"  # one band per week: bars as wide as a week, not hairlines
    assert x["title"] == "Week starting (Monday)"
    (values,) = spec["datasets"].values()
    weeks = sorted({pd.Timestamp(v["week"]).date() for v in values})
    assert all(w.weekday() == 0 for w in weeks)  # Mondays
    assert all((b - a).days == 7 for a, b in itertools.pairwise(weeks))
    assert x["sort"] == [f"{w:%d %b %Y}" for w in weeks]
    extract, _, _ = cd.load_extract(root, token)
    weekly = extract.beat_weekly[extract.beat_weekly["beat"].astype(str) == "1224"]
    assert sum(v["incidents"] for v in values) == int(weekly["incidents"].sum())
    assert "`" not in cd.SAMPLE_NOTE
    assert "python -m" not in cd.SAMPLE_NOTE


@pytest.fixture(scope="module")
def seattle_public(seattle_store, tmp_path_factory) -> Path:
    """The Seattle store published as of the last day of its 2018 data."""
    from geodata.publish import publish_store

    out = tmp_path_factory.mktemp("seattle_public") / "public"
    publish_store(seattle_store, out, as_of=date(2018, 12, 31))
    return out


def _seattle_app_dir(seattle_public, tmp_path, monkeypatch) -> tuple[Path, str]:
    """A data dir holding only Seattle's extract; (its path, the meetings database URL)."""
    import shutil

    data = tmp_path / "seattle_data"
    shutil.copytree(seattle_public, data / "public")
    url = f"sqlite:///{data / 'meetings.db'}"
    monkeypatch.setenv("BEATS_DATA_DIR", str(data))
    monkeypatch.setenv("DATABASE_URL", url)
    monkeypatch.delenv("BEATS_PUBLIC_DIR", raising=False)
    monkeypatch.delenv("BEATS_DEPARTMENT", raising=False)  # Chicago by default
    return data, url


def test_a_new_departments_meetings_database_gets_its_own_schedule(
    seattle_public, tmp_path, monkeypatch
):
    # acceptance finding 3: the first run with a new meetings database seeded Chicago's beats
    # and every render ended in "beat '99' is not a known beat id"
    meta = json.loads((seattle_public / EXTRACT_FILES["metadata"]).read_text())
    assert meta["department"] == load_department("seattle").name
    assert meta["meetings"]["timezone"] == "America/Los_Angeles"
    data, url = _seattle_app_dir(seattle_public, tmp_path, monkeypatch)
    at = _run()
    assert at.selectbox[0].value == "99"
    table = at.table[0].value.reset_index()
    assert set(table["Meeting"]) == {"Beat 99 community meeting"}
    assert all(w.startswith("West precinct station, 810 Virginia St") for w in table["Where"])
    at.selectbox[0].select("K3").run()
    assert not at.exception
    assert set(at.table[0].value["Meeting"]) == {"Beat K3 community meeting"}
    from geodata import meetings

    engine = meetings.open_database(url, seed=False)
    beats = set(meetings.list_areas(engine)["beat"])
    series = meetings.list_series(engine)
    engine.dispose()
    assert "0111" not in beats  # no Chicago beat, no Chicago meeting
    assert {"99", "K3", "M3", "H1"} <= beats
    assert set(series["tzid"]) == {"America/Los_Angeles"}
    assert set(",".join(series["beats"]).split(",")) == beats
    assert not (data / "store").exists()


def test_a_beat_without_meetings_says_so(seattle_public, tmp_path, monkeypatch):
    # a schedule the department keeps itself (one series, for K3): it is not seeded over, and
    # a beat it has no meetings for, or does not know at all, says so instead of failing
    data, url = _seattle_app_dir(seattle_public, tmp_path, monkeypatch)
    from geodata import meetings

    monkeypatch.setenv("BEATS_DEPARTMENT", "seattle")
    engine = meetings.open_database(url, seed=False)
    monkeypatch.delenv("BEATS_DEPARTMENT")
    tomorrow = datetime.combine(date.today() + timedelta(days=1), datetime.min.time())
    meetings.create_series(
        engine,
        title="Beat K3 walk",
        venue="W",
        start=tomorrow.replace(hour=18),
        rrule="FREQ=MONTHLY;COUNT=12",
        beats="K3",
    )
    engine.dispose()
    at = _run()
    assert at.selectbox[0].value == "99"
    markdown = [m.value for m in at.markdown]
    assert "No upcoming meetings are scheduled for this beat." in markdown
    at.selectbox[0].select("K3").run()
    assert not at.exception
    assert set(at.table[0].value["Meeting"]) == {"Beat K3 walk"}
    from dashboard import community_data as cd

    root = str(data / "public")
    unknown = cd.next_meetings("NO SUCH BEAT", root=root)
    assert unknown is not None
    assert unknown.empty
    assert cd.meetings_ics("NO SUCH BEAT", root=root) is None
    engine = meetings.open_database(url, seed=False)
    assert list(meetings.list_series(engine)["title"]) == ["Beat K3 walk"]
    engine.dispose()


@pytest.mark.parametrize(
    ("as_of", "recent", "trend", "note"),
    [
        # the last 28 days (Dec 18 - Jan 14) hold data only to Dec 31: counted, not compared
        ("2019-01-22", None, "data end 2018-12-31", "are counted only up to that day"),
        # the last 28 days (Jan 6 - Feb 2) hold no data at all
        ("2019-02-10", "no data", "no data", "there are no counts for the last 28 days"),
    ],
)
def test_periods_past_the_end_of_the_data_are_not_zero(
    seattle_store, tmp_path, monkeypatch, as_of, recent, trend, note
):
    # acceptance finding 7: Seattle's data end on 2018-12-31; published later, the page said
    # "0 incidents" and "= same" for days the data do not cover
    from geodata.publish import publish_store

    data = tmp_path / "data"
    extract = publish_store(seattle_store, data / "public", as_of=as_of)
    monkeypatch.setenv("BEATS_DATA_DIR", str(data))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'm.db'}")
    monkeypatch.delenv("BEATS_PUBLIC_DIR", raising=False)
    at = _run()
    at.selectbox[0].select("M3").run()
    assert not at.exception
    warning = at.warning[0].value
    assert warning.startswith("The data end on 2018-12-31")
    assert note in warning
    metrics = {m.label: m for m in at.metric}
    public = extract.incidents
    end = date.fromisoformat(extract.metadata["window_end_exclusive"])
    mine = public[(public[schema.BEAT] == "M3") & (public["date"] >= end - timedelta(days=28))]
    assert metrics["Incidents, last 28 days"].value == (recent or f"{len(mine):,}")
    assert len(mine) > 0 or recent == "no data"
    assert not metrics["The 28 days before"].proto.delta  # never compared
    counts = next(t.value for t in at.table if t.value.index.name == "Category")
    assert set(counts["Trend"]) == {trend}
    from dashboard import community_data as cd

    root = str(data / "public")
    handout = cd.handout_html(root, cd.extract_token(root), "M3", None)
    assert "The data end on 2018-12-31" in handout
    assert "= same" not in handout


def test_a_beat_outside_every_precinct_and_a_departments_illustrative_schedule(
    seattle_public, tmp_path, monkeypatch
):
    # acceptance finding 13.1 and 13.2: Seattle's beat 99 belongs to no precinct ("precinct
    # None" was shown), and Seattle's seeded schedule was called the "demo data"'s
    data, _ = _seattle_app_dir(seattle_public, tmp_path, monkeypatch)
    at = _run()
    assert at.selectbox[0].value == "99"
    captions = [c.value for c in at.caption]
    assert captions[0].startswith("Beat 99 · sector 99, no precinct. Published 7 days")
    assert any(c.startswith("Beats without a precinct coloured by incidents") for c in captions)
    assert not [c for c in captions if "None" in c or "demo" in c]
    from dashboard import community_data as cd

    assert cd.ILLUSTRATIVE in captions
    assert "police department has published" in cd.ILLUSTRATIVE
    assert "demo" not in cd.ILLUSTRATIVE
    (script,) = folium_maps(at)
    assert script.count('"beat": "H') >= 3  # the map shows the other beats without a precinct
    root = str(data / "public")
    token = cd.extract_token(root)
    handout = cd.handout_html(root, token, "99", None)
    assert "Sector 99, no precinct." in handout
    assert "None" not in handout
    from io import BytesIO

    from pypdf import PdfReader

    paper = PdfReader(BytesIO(cd.handout_pdf(root, token, "99", None)))
    text = " ".join(page.extract_text() for page in paper.pages)
    assert "Sector 99, no precinct" in text
    assert "None" not in text
    at.selectbox[0].select("M3").run()
    assert at.caption[0].value.startswith("Beat M3 · sector M, precinct W.")
