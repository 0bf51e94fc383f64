"""Every analysis page says "no incidents in this period" for an empty period (issue 12).

June 2019 lies inside the dates the pages offer (dense data from January 2018 to 2024) but holds
no incident (the issue's beat 0111 / sector 011 as of 2017-12-20 is now before the first date
offered); the counts are checked against the store first.
"""

from datetime import date

import pytest

from tests.auth_helpers import opened, signed_in
from tests.conftest import APP
from tests.helpers import folium_maps


def _count(store, first, last, column=None, value=None):
    incidents = store.load_incidents(columns=["occurred_at", "beat", "sector"])
    day = incidents["occurred_at"].dt.strftime("%Y-%m-%d")
    keep = (day >= first) & (day <= last)
    if column:
        keep &= incidents[column] == value
    return int(keep.sum())


def _texts(elements):
    return " ".join(e.value for e in elements)


@pytest.mark.slow
def test_overview_of_an_empty_period_names_no_busiest_beat(app_env, sample_store):
    assert _count(sample_store, "2019-06-01", "2019-06-10") == 0
    at = opened(app_env, "overview", timeout=120)
    at.date_input[0].set_value((date(2019, 6, 1), date(2019, 6, 10))).run()
    assert not at.exception
    assert "No incidents in this period (2019-06-01 to 2019-06-10)" in _texts(at.info)
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Incidents"] == "0"
    assert metrics["Busiest beat"] == "none"
    assert not at.warning  # no "sample" note for a period with nothing in it
    assert len(folium_maps(at)) == 1  # the beats are still drawn


@pytest.mark.slow
def test_beat_profile_of_an_empty_period(app_env, sample_store):
    assert _count(sample_store, "2019-06-01", "2019-06-28", "beat", "0111") == 0
    at = opened(app_env, "beat_profile", timeout=120)
    at.selectbox[0].select("0111").run()
    at.date_input[0].set_value(date(2019, 6, 28)).run()
    assert not at.exception
    info = _texts(at.info)
    assert (
        "No incidents in this period: beat 0111 has none recorded from 2019-06-01 to 2019-06-28"
        in info
    )
    assert {m.label: m.value for m in at.metric}["Incidents (28 days)"] == "0"
    assert len(at.get("vega_lite_chart")) == 0  # no empty charts, no solid-red heat map
    assert "sector 011," in _texts(at.caption)  # the sector from the beat layer
    downloads = [b.label for b in at.get("download_button")]
    assert any("HTML" in label for label in downloads)  # the packet still renders
    assert any("PDF" in label for label in downloads)


@pytest.mark.slow
def test_sector_review_of_an_empty_period(app_env, sample_store):
    at = opened(app_env, "sector_review", timeout=120)
    at.selectbox[0].select("011").run()
    at.date_input[0].set_value(date(2019, 6, 28)).run()
    assert not at.exception
    first, last = "2019-06-17", "2019-06-23"  # the last complete Monday-Sunday week
    assert _count(sample_store, first, last, "sector", "011") == 0
    assert f"No incidents in this period: sector 011 has none recorded from {first} to {last}" in (
        _texts(at.info)
    )
    assert {m.label: m.value for m in at.metric}["Sector incidents"] == "0"


@pytest.mark.parametrize("method", ["DBSCAN (density clusters)", "Kernel density (KDE)"])
@pytest.mark.slow
def test_hotspots_of_an_empty_period(app_env, sample_store, method):
    assert _count(sample_store, "2019-06-01", "2019-06-10", "sector", "092") == 0
    at = opened(app_env, "hotspots", timeout=120)
    at.selectbox(key="hotspots_area").select("092").run()
    at.radio(key="hotspots_method").set_value(method).run()
    at.date_input[0].set_value((date(2019, 6, 1), date(2019, 6, 10))).run()
    assert not at.exception
    assert not at.error
    assert "No incidents in this period (2019-06-01 to 2019-06-10) in sector 092" in _texts(at.info)


@pytest.mark.slow
def test_planning_with_an_empty_workload_period(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'plans.db'}")
    at = signed_in(app_env, "analyst", timeout=180)
    at.switch_page("views/beat_planning.py")
    at.run()
    at.date_input[0].set_value((date(2019, 6, 1), date(2019, 6, 10))).run()
    assert not at.exception
    assert "No incidents in this period" in _texts(at.info)


# Beat planning plans a calls-only store on officer-hours (test_beat_planning_calls.py)
@pytest.mark.parametrize("page", ["overview", "beat_profile", "sector_review", "hotspots"])
def test_incident_pages_of_a_store_without_incidents(
    minneapolis_store, monkeypatch, tmp_path, page
):
    """Regression (found by tests/test_properties.py): the incident pages of a calls-only store
    (Minneapolis) raised "no incidents: the store holds no dates" (fixed on main too)."""
    assert minneapolis_store.count() == 0
    monkeypatch.setenv("BEATS_DATA_DIR", str(minneapolis_store.root.parent))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'app.db'}")
    at = signed_in(APP, "analyst", timeout=180)
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception
    assert at.info  # the page says why it shows nothing
