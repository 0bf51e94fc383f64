"""Every analyst page on the Minneapolis store: no sector level, no incidents, CAD calls only.

Pages that need incident reports say so and point to Calls for service (Beat planning plans on
the calls' officer-hours instead: tests/dashboard/test_beat_planning_calls.py); Beat profile and
Sector review (on precincts, the level above MPD's sectors) show the area's calls, checked
against an independent pandas computation on the stored calls.
"""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from geodata.calls import load_calls
from tests.auth_helpers import opened
from tests.conftest import APP
from tests.helpers import page_metrics

NO_INCIDENTS = "No incident reports in this store"


@pytest.fixture
def mpls_app(minneapolis_store, monkeypatch):
    monkeypatch.setenv("BEATS_DATA_DIR", str(minneapolis_store.root.parent))
    return APP


def _page(app: str, page: str) -> AppTest:
    return opened(app, page)


@pytest.fixture(scope="module")
def calls(minneapolis_store) -> pd.DataFrame:
    """The stored calls, each with its local day (received_at is in the store's zone)."""
    frame = load_calls(minneapolis_store)
    return frame.assign(day=frame["received_at"].dt.date)


@pytest.mark.parametrize("page", ["overview", "hotspots"])
def test_incident_pages_point_to_calls(mpls_app, page):
    at = _page(mpls_app, page)
    assert any(NO_INCIDENTS in i.value and "Calls for service" in i.value for i in at.info)


def test_calls_page_runs(mpls_app):
    at = _page(mpls_app, "calls")
    assert at.title[0].value == "Calls for service"


def test_data_page_counts_the_calls(mpls_app, calls):
    at = _page(mpls_app, "data_quality")
    metrics = page_metrics(at)
    assert metrics["Stored incidents"] == "0"
    assert metrics["Stored calls for service"] == f"{len(calls):,}" == "14,181"
    assert "No incident reports imported yet" in at.info[0].value


def test_meetings_page_names_precincts(mpls_app, minneapolis_store):
    at = _page(mpls_app, "meetings")
    assert at.title[0].value == "Neighborhood watch meetings"
    assert at.selectbox(key="meetings_district").label == "Precinct"
    # a point inside one of the stored sectors: the page names it as MPD does
    beats = minneapolis_store.read_layer("beats")
    inside = beats.iloc[[0]].to_crs(4326).geometry.iloc[0].representative_point()
    at.text_input(key="meetings_find").input(f"{inside.y:.6f}, {inside.x:.6f}").run()
    assert not at.exception
    sector, precinct = beats.iloc[0]["beat"], beats.iloc[0]["district"]
    assert f"is in sector **{sector}** (precinct {precinct})" in at.success[0].value


def test_beat_profile_shows_a_sectors_calls(mpls_app, calls):
    at = _page(mpls_app, "beat_profile")
    assert at.title[0].value == "Sector profile"  # MPD's sector plays the beat
    at.selectbox[0].select("P4 SEC 3N").run()
    assert not at.exception
    assert any(NO_INCIDENTS in i.value for i in at.info)
    as_of = calls["day"].max()
    mine = calls[
        (calls["beat"] == "P4 SEC 3N")
        & (calls["day"] >= as_of - timedelta(days=27))
        & (calls["day"] <= as_of)
    ]
    metrics = page_metrics(at)
    assert int(metrics["Calls in the window"].replace(",", "")) == len(mine)
    assert metrics["Median response (min)"] == f"{mine['response_min'].median():.1f}"
    assert metrics["Median time on task (min)"] == f"{mine['time_on_task_min'].median():.1f}"
    hours = (mine["time_on_task_min"] * mine["units"].astype("Float64").fillna(1)).sum() / 60
    assert metrics["Officer-hours on calls"] == f"{hours:,.1f}"
    # the 28 days start before the first stored call: no comparison with an uncovered period
    assert any("not covered" in c.value for c in at.caption)


def test_sector_review_reviews_precincts(mpls_app, calls, minneapolis_store):
    at = _page(mpls_app, "sector_review")
    assert at.title[0].value == "Precinct review"
    assert at.selectbox[0].label == "Precinct"
    at.selectbox[0].select("4").run()
    at.selectbox[1].select("7d").run()
    assert not at.exception
    beats = minneapolis_store.read_layer("beats")
    members = set(beats.loc[beats["district"].astype(str) == "4", "beat"])
    # the last complete Monday-Sunday week before the last stored day, and the week before it
    last = calls["day"].max()
    end = last - timedelta(days=(last.weekday() + 1) % 7)
    start = end - timedelta(days=6)
    mine = calls[calls["beat"].isin(members)]
    now = mine[(mine["day"] >= start) & (mine["day"] <= end)]
    before = mine[(mine["day"] >= start - timedelta(days=7)) & (mine["day"] < start)]
    metrics = page_metrics(at)
    assert int(metrics["Calls in the window"].replace(",", "")) == len(now)
    delta = next(m.delta for m in at.metric if m.label == "Calls in the window")
    assert f"({len(before):,})" in delta
    assert metrics["Median response (min)"] == f"{now['response_min'].median():.1f}"
    assert any(f"{start} to {end}" in c.value for c in at.caption)
