import pandas as pd

from tests.auth_helpers import signed_in
from tests.helpers import folium_maps


def test_home_page_runs_and_shows_the_beat_map(app_env, sample_store):
    at = signed_in(app_env, "commander")  # the home page of an analysis role
    assert not at.exception
    assert at.title[0].value == "Incidents by beat"
    start, end = at.date_input[0].value
    # the default period is the dense January 2018 data, not the sparse 2024 sample
    assert (start.year, start.month, end.year, end.month) in {
        (2017, 12, 2018, 1),
        (2018, 1, 2018, 1),
    }
    incidents = sample_store.load_incidents(columns=["occurred_at", "beat"])
    day = incidents["occurred_at"].dt.tz_localize(None).dt.normalize()
    in_period = (day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))
    expected = int((in_period & (incidents["beat"] != "outside")).sum())
    assert expected > 16_000
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Beats"] == "275"
    assert metrics["Incidents"] == f"{expected:,}"
    (script,) = folium_maps(at)
    assert script.count('"beat": "') >= 275  # every beat drawn in the choropleth
    assert "L.marker" in script  # station markers


def test_overview_rerun_reuses_the_map_and_draws_the_same(app_env, sample_store):
    # the map is built once per inputs (a cached resource) and a warm rerun draws exactly the
    # same map; another category draws another one
    at = signed_in(app_env, "commander")
    (first,) = folium_maps(at)
    at.run()
    assert not at.exception
    (again,) = folium_maps(at)
    assert again == first
    at.selectbox[0].select("violent").run()
    assert not at.exception
    (violent,) = folium_maps(at)
    assert violent != first
    assert violent.count('"beat": "') >= 275
