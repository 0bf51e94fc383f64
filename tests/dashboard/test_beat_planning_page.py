import json
from datetime import date

import geopandas as gpd
import pytest
from sqlalchemy import create_engine

from analysis.cli import main
from dashboard import plan_data, state
from geodata import audit, db
from geodata.plans import list_plans, load_plan
from tests.auth_helpers import opened
from tests.helpers import folium_maps, page_metrics


@pytest.fixture
def planning_page(app_env, tmp_path, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'plans.db'}")
    return opened(app_env, "beat_planning")


def test_page_shows_current_measures_like_the_cli(planning_page, sample_store, capsys):
    at = planning_page
    assert at.title[0].value == "Beat planning"
    at.selectbox[0].select("11").run()
    assert not at.exception
    # the page's default period is the commands' default: the last 12 months the store holds
    args = ["plan", "evaluate", "--district", "11", "--store", str(sample_store.root)]
    assert main([*args, "--json"]) == 0
    got = json.loads(capsys.readouterr().out)
    assert got["period"]["basis"] == "last 12 months"
    assert at.date_input[0].value == (
        date.fromisoformat(got["period"]["from"]),
        date.fromisoformat(got["period"]["to"]),
    )
    out = got["summary"]
    metrics = page_metrics(at)
    assert metrics["Current beats"] == str(out["n_beats"])
    assert metrics["Workload CV"] == f"{out['workload_cv']:.3f}"
    assert metrics["Median Polsby-Popper"] == f"{out['median_polsby_popper']:.3f}"
    assert len(folium_maps(at)) == 1
    # "Every stored record" is `plan evaluate --all`
    at.checkbox(key="plan_every_record").check().run()
    assert not at.exception
    assert at.date_input[0].disabled
    assert main([*args, "--all", "--json"]) == 0
    every = json.loads(capsys.readouterr().out)["summary"]
    assert every["workload_cv"] != out["workload_cv"]  # the period matters
    assert page_metrics(at)["Workload CV"] == f"{every['workload_cv']:.3f}"


@pytest.mark.slow
def test_workload_period_matches_the_cli(planning_page, sample_store, capsys):
    at = planning_page
    at.selectbox[0].select("11").run()
    at.date_input[0].set_value((date(2018, 1, 1), date(2018, 1, 27))).run()  # the dense month
    assert not at.exception
    args = ["plan", "evaluate", "--district", "11", "--store", str(sample_store.root)]
    assert main([*args, "--start", "2018-01-01", "--end", "2018-01-27", "--json"]) == 0
    month = json.loads(capsys.readouterr().out)["summary"]
    assert main([*args, "--all", "--json"]) == 0
    everything = json.loads(capsys.readouterr().out)["summary"]
    assert month["workload_cv"] != everything["workload_cv"]  # the period matters
    assert page_metrics(at)["Workload CV"] == f"{month['workload_cv']:.3f}"


@pytest.mark.slow
def test_propose_compare_save_and_export(planning_page, tmp_path):
    at = planning_page
    at.selectbox[0].select("11").run()
    at.button[0].click().run()  # "Propose beats"
    assert not at.exception
    scripts = folium_maps(at)
    assert len(scripts) == 2  # current and proposed side by side
    assert all("#d7191c" in s for s in scripts)  # moved units outlined on both maps
    table = at.dataframe[1].value.set_index("Measure")
    cv_now, cv_new = table.loc["Workload CV", ["Current", "Proposed"]]
    assert cv_new < 0.57 * cv_now  # the 43% cut on this district
    assert table.loc["Contiguous (every beat one piece)", "Proposed"] == 1.0
    # save to the database
    at.text_input[0].set_value("District 11 balanced")  # form: applied on submit
    assert at.text_input[1].disabled  # the author is the signed-in user, not typed
    at.button[1].click().run()  # the form's "Save plan"
    assert not at.exception
    assert any("Saved as plan" in s.value for s in at.success)
    listed = at.dataframe[0].value  # "Saved plans" lists it at once, without a reload
    assert listed["name"].tolist() == ["District 11 balanced"]
    engine = create_engine(f"sqlite:///{tmp_path / 'plans.db'}")
    plans = list_plans(engine)
    assert plans["name"].tolist() == ["District 11 balanced"]
    saved = load_plan(engine, int(plans["id"].iloc[0]))
    assert saved.author == "test_analyst"
    events = audit.read_events(engine, action=audit.PLAN_SAVE)
    assert [(e.actor, e.target) for e in events.itertuples()] == [
        ("test_analyst", f"plan {saved.id}")
    ]
    assert events["detail"].iloc[0]["name"] == "District 11 balanced"
    assert len(saved.plan) == saved.parameters["n_beats"] == 15
    assert db.current_heads(engine) >= {"p0001_plans"}
    # the page offers both downloads; their bytes hold the proposed beats
    proposal = at.session_state[state.PLAN_PROPOSAL]
    geojson = json.loads(plan_data.export(proposal, "geojson"))
    assert len(geojson["features"]) == 15
    gpkg = tmp_path / "p.gpkg"
    gpkg.write_bytes(plan_data.export(proposal, "gpkg"))
    assert sorted(gpd.read_file(gpkg)["beat"]) == sorted(proposal.proposed_plan["beat"])


@pytest.mark.slow
def test_impossible_requests_are_refused_in_words_and_clear_the_proposal(planning_page):
    at = planning_page
    at.selectbox[0].select("11").run()
    at.button[0].click().run()  # a proposal on screen
    assert not at.exception
    assert at.session_state[state.PLAN_PROPOSAL] is not None
    n_current = int(page_metrics(at)["Current beats"])
    # minimal change with another number of beats: impossible
    at.number_input[0].set_value(n_current - 1)
    at.radio[0].set_value("Minimal change")
    at.button[0].click().run()
    assert not at.exception
    (error,) = at.error
    assert error.value == (
        f"“Minimal change” keeps the district's {n_current} beats and you asked for "
        f"{n_current - 1}: choose {n_current} beats, or switch the mode to “Redraw” to draw a "
        "new number of beats."
    )
    assert "--" not in error.value
    assert state.PLAN_PROPOSAL not in at.session_state  # the old proposal is gone
    assert len(folium_maps(at)) == 1  # the current beats only
    # one beat: refused with a reason, before any work
    at.radio[0].set_value("Redraw")
    at.number_input[0].set_value(1)
    at.button[0].click().run()
    assert not at.exception
    assert at.error[0].value.startswith("One beat would be the whole district")


@pytest.mark.slow
def test_planning_dates_start_where_the_data_are_dense(planning_page):
    from datetime import date

    at = planning_page
    picker = at.date_input[0]
    # not 2004: 64 late-reported incidents are noted; the default 28 days start on 2017-12-31
    assert picker.min == date(2017, 12, 31)
    note = " ".join(c.value for c in at.caption)
    assert "older incidents (2004-" in note
    assert "the dates offered start on 2017-12-31" in note
