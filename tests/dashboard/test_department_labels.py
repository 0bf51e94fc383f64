"""Pages and commands on the Seattle store: levels are named as Seattle names them (issue 10)."""

import json

import pandas as pd
import pytest

from analysis.cli import main
from tests.auth_helpers import opened
from tests.conftest import APP
from tests.helpers import folium_maps


@pytest.fixture
def seattle_env(seattle_store, monkeypatch):
    monkeypatch.setenv("BEATS_DATA_DIR", str(seattle_store.root.parent))
    return APP


def test_overview_names_seattle_precincts(seattle_env, seattle_store):
    at = opened(seattle_env, "overview")
    assert at.title[0].value == "Incidents by beat"
    assert "Seattle Police Department" in at.caption[0].value
    start, end = at.date_input[0].value
    incidents = seattle_store.load_incidents(columns=["occurred_at", "beat"])
    day = incidents["occurred_at"].dt.tz_localize(None).dt.normalize()
    in_period = (day >= pd.Timestamp(start)) & (day <= pd.Timestamp(end))
    expected = int((in_period & (incidents["beat"] != "outside")).sum())
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Incidents"] == f"{expected:,}"
    assert metrics["Beats"] == f"{len(seattle_store.read_layer('beats')):,}"
    (script,) = folium_maps(at)
    assert "Precincts" in script  # the outline layer's name
    assert "Districts" not in script
    assert "district" not in at.dataframe[0].value.columns
    assert "precinct" in at.dataframe[0].value.columns


def test_beat_profile_caption_says_precinct(seattle_env, seattle_store):
    at = opened(seattle_env, "beat_profile")
    beats = seattle_store.read_layer("beats").dropna(subset=["district"]).sort_values("beat")
    row = beats.iloc[0]
    at.selectbox[0].select(row["beat"]).run()
    assert not at.exception
    caption = next(c.value for c in at.caption if "America/Los_Angeles" in c.value)
    assert f"sector {row['sector']}, precinct {row['district']}" in caption
    assert "district" not in caption
    assert "America/Los_Angeles" in caption


@pytest.mark.slow
def test_sector_review_and_hotspots_levels(seattle_env):
    at = opened(seattle_env, "sector_review")
    assert at.title[0].value == "Sector review"
    at = opened(seattle_env, "hotspots")
    options = at.selectbox(key="hotspots_level").options
    assert "Precinct" in options
    assert "District" not in options


def test_profile_cli_labels_a_precinct(seattle_store, capsys):
    beats = seattle_store.read_layer("beats")
    precinct = sorted(beats["district"].dropna().unique())[0]
    typed = precinct.lower()  # typed ids are normalised with the department's rule
    args = ["profile", "--district", typed, "--store", str(seattle_store.root), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["area"]["id"] == precinct
    assert out["area"]["label"] == "precinct"
    assert out["period"]["timezone"] == "America/Los_Angeles"
    members = sorted(beats.loc[beats["district"] == precinct, "beat"])
    assert out["area"]["beats"] == members
    assert main([*args[:-1]]) == 0
    assert capsys.readouterr().out.startswith(f"Precinct {precinct}")
