"""``python -m analysis plan``: JSON of evaluate and propose on the bundled data."""

import json
from datetime import date

import geopandas as gpd
import pandas as pd
import pytest

from analysis import beatplan
from analysis.cli import main
from analysis.inputs import Period, load_daily_counts, planning_period

KEYS = {"workload_cv", "max_min_ratio", "contiguous", "median_polsby_popper", "seconds"}


def _json(capsys, *args):
    assert main(["plan", *args, "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.mark.slow
def test_propose_json_meets_the_target_on_district_11(sample_store, tmp_path, capsys):
    out = tmp_path / "p.geojson"
    got = _json(
        capsys, "propose", "--district", "11", "--store", str(sample_store.root), "--out", str(out)
    )
    assert set(got["current"]) >= KEYS
    assert set(got["proposed"]) >= KEYS
    cur, new = got["current"], got["proposed"]
    assert new["workload_cv"] <= 0.57 * cur["workload_cv"]  # >= 43% cut
    assert new["contiguous"] is True
    assert new["median_polsby_popper"] >= cur["median_polsby_popper"]
    assert got["workload_cv_cut_pct"] == pytest.approx(
        (cur["workload_cv"] - new["workload_cv"]) / cur["workload_cv"] * 100, abs=0.01
    )
    # the written file is the proposed plan, and evaluating it gives the same balance
    written = gpd.read_file(out)
    assert len(written) == new["n_beats"] == 15
    # propose and evaluate share the default workload period: the last 12 months
    assert got["period"] == {"from": "2024-01-01", "to": "2024-12-31", "basis": "last 12 months"}
    again = _json(capsys, "evaluate", "--plan", str(out), "--store", str(sample_store.root))
    assert again["period"] == got["period"]
    assert again["summary"]["workload_cv"] == pytest.approx(new["workload_cv"], abs=1e-6)
    # the per-beat workloads add up to the plan's total
    assert sum(b["workload"] for b in got["beats"]) == pytest.approx(new["workload_total"])


@pytest.mark.slow
def test_minimal_change_moves_few_units(sample_store, capsys):
    got = _json(
        capsys, "propose", "--district", "11", "--minimal-change", "--store",
        str(sample_store.root),
    )  # fmt: skip
    assert got["proposed"]["workload_cv"] <= 0.10
    assert got["proposed"]["contiguous"] is True
    assert 0 < got["units_moved"] < 0.25 * got["units"]


def test_evaluate_current_beats(sample_store, capsys):
    got = _json(capsys, "evaluate", "--store", str(sample_store.root))
    s = got["summary"]
    assert s["n_beats"] == 275
    assert len(got["beats"]) == 275
    # beat 3100 (O'Hare) is drawn in three pieces in Chicago's own layer
    split = [b["beat"] for b in got["beats"] if not b["contiguous"]]
    assert "3100" in split
    assert s["workload_cv"] == pytest.approx(
        beatplan.coefficient_of_variation([b["workload"] for b in got["beats"]])
    )


def test_bad_district_is_a_clear_error(sample_store, capsys):
    code = main(["plan", "propose", "--district", "99", "--store", str(sample_store.root)])
    assert code == 2
    assert "no beats in district(s) ['99']" in capsys.readouterr().err


def test_evaluate_defaults_to_the_last_12_months(sample_store, capsys):
    # the default window is the 12 months ending on the last stored day, stated in the
    # output, and gives the same answer as that period given explicitly
    daily = load_daily_counts(sample_store)
    last = daily.index[-1].date()
    assert last == date(2024, 12, 31)  # the bundled sample's last day
    first = date(2024, 1, 1)
    got = _json(capsys, "evaluate", "--store", str(sample_store.root))
    assert got["period"] == {"from": str(first), "to": str(last), "basis": "last 12 months"}
    given = _json(
        capsys, "evaluate", "--start", str(first), "--end", str(last),
        "--store", str(sample_store.root),
    )  # fmt: skip
    assert given["period"]["basis"] == "given"
    assert given["summary"] == got["summary"]
    assert given["beats"] == got["beats"]
    # located incidents in a beat: at most the window's stored incidents, most of them
    window = int(daily.loc[str(first) : str(last)].sum())
    assert 0.9 * window < got["summary"]["incidents"] <= window
    # --all is every stored incident (the former default)
    every = _json(capsys, "evaluate", "--all", "--store", str(sample_store.root))
    assert every["period"] == {"from": None, "to": None, "basis": "all"}
    assert 0.9 * daily.sum() < every["summary"]["incidents"] <= daily.sum()
    assert every["summary"]["incidents"] > got["summary"]["incidents"]


def test_evaluate_text_names_the_period(sample_store, capsys):
    assert main(["plan", "evaluate", "--store", str(sample_store.root)]) == 0
    assert "(the last 12 months the store holds)" in capsys.readouterr().out


def test_planning_period_by_hand():
    # the 12 months ending on the last stored day, whatever the first day; none for no data
    days = pd.date_range("2023-03-01", "2024-02-29", freq="D")
    daily = pd.Series(1, index=days)
    assert planning_period(daily) == Period.of("2023-03-01", "2024-02-29")
    assert planning_period(daily.iloc[-40:]) == Period.of("2023-03-01", "2024-02-29")
    assert planning_period(daily, months=1) == Period.of("2024-01-30", "2024-02-29")
    assert planning_period(daily.iloc[:0]) is None


def test_propose_all_and_given_period(sample_store, capsys):
    # --all is every stored record, and a given period is stated as given; the current
    # measures of propose --all equal those of propose with the store's whole span given
    # (minimal change: one quick solve; the periods and current measures are what is checked)
    store = str(sample_store.root)
    every = _json(
        capsys, "propose", "--district", "11", "--all", "--minimal-change", "--store", store
    )
    assert every["period"] == {"from": None, "to": None, "basis": "all"}
    daily = load_daily_counts(sample_store)
    first, last = daily.index[0].date(), daily.index[-1].date()
    given = _json(
        capsys, "propose", "--district", "11", "--start", str(first), "--end", str(last),
        "--minimal-change", "--store", store,
    )  # fmt: skip
    assert given["period"] == {"from": str(first), "to": str(last), "basis": "given"}
    assert given["current"]["workload_total"] == pytest.approx(every["current"]["workload_total"])
    default = _json(capsys, "propose", "--district", "11", "--minimal-change", "--store", store)
    assert default["current"]["workload_total"] < every["current"]["workload_total"]
