"""Beat planning on calls for service: officer-hours, checked against pandas on the raw file."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest

from analysis.cli import main
from geodata.calls import TIME_ON_TASK_MIN, UNITS, load_calls
from tests.analysis.test_calls import RAW


def _json(capsys, *args):
    assert main(list(args)) == 0
    return json.loads(capsys.readouterr().out)


def test_minneapolis_store_holds_the_calls(minneapolis_store):
    assert minneapolis_store.department().label("beat") == "sector"
    assert minneapolis_store.department().label("district") == "precinct"
    calls = load_calls(minneapolis_store)
    assert len(calls) == 14_181  # 14,199 read, 18 rejected by the interval rules
    assert minneapolis_store.count() == 0  # no incident reports: calls only


def test_evaluate_balances_officer_hours(minneapolis_store, capsys):
    out = _json(capsys, "plan", "evaluate", "--store", str(minneapolis_store.root), "--json")
    assert out["workload"] == "calls"
    assert "summary_incidents" not in out  # no incidents in this store
    # independent: officer-hours from the raw export (first unit's planned officers)
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    stored = load_calls(minneapolis_store)
    # the calls the plan holds: located ones inside a sector polygon (geopandas, not our
    # beat index), and withheld ones that report a known sector (placed inside it)
    beats = minneapolis_store.read_layer("beats")
    points = gpd.GeoDataFrame(
        stored[["call_id"]], geometry=gpd.points_from_xy(stored["x"], stored["y"]), crs=beats.crs
    )
    inside = gpd.sjoin(points, beats[["geometry"]], predicate="intersects")["call_id"]
    withheld = stored["x"].isna() & stored["beat"].isin(beats["beat"])
    placed = stored[stored["call_id"].isin(inside) | withheld]
    raw = raw.set_index("Master_Incident_Number").loc[placed["call_id"]]
    closed = pd.to_datetime(raw["Time_CallClosed"].replace("", None))
    start = pd.to_datetime(raw["Time_First_Unit_Arrived"].replace("", None)).fillna(
        pd.to_datetime(raw["Time_First_Unit_Assigned"].replace("", None))
    )
    officers = raw["Response_Plan"].str.extract(r"(\d+)\s*Officer", expand=False).astype(float)
    officers = officers + raw["Response_Plan"].str.contains("Sgt|Sergeant").astype(float)
    hours = ((closed - start).dt.total_seconds() / 3600 * officers.fillna(1)).sum()
    assert out["summary"]["workload_total"] == pytest.approx(hours, rel=1e-9)
    assert placed[TIME_ON_TASK_MIN].notna().sum() > 0.9 * len(placed)
    assert placed[UNITS].notna().mean() > 0.95  # plans that name no officers count as one


@pytest.mark.slow
def test_propose_balanced_sectors_on_call_workload(minneapolis_store, capsys):
    out = _json(
        capsys,
        "plan", "propose", "--store", str(minneapolis_store.root), "--district", "4",
        "--json", "--seed", "0",
    )  # fmt: skip
    current, proposed = out["current"], out["proposed"]
    assert proposed["contiguous"]
    assert proposed["n_beats"] == current["n_beats"] == 4
    # measured: CV 0.690 -> 0.094 (an 86% cut) on precinct 4's four sectors
    assert proposed["workload_cv"] < 0.5 * current["workload_cv"]


def test_calls_review_against_pandas(minneapolis_store, capsys):
    from datetime import date

    from scipy import stats

    out = _json(
        capsys,
        "calls-review", "--store", str(minneapolis_store.root), "--district", "4",
        "--window", "7d", "--as-of", "2020-07-13", "--target-min", "10", "--json",
    )  # fmt: skip
    assert out["area"] == "precinct 4"
    assert (out["window"]["start"], out["window"]["end"]) == ("2020-07-06", "2020-07-12")
    calls = load_calls(minneapolis_store)
    calls = calls[calls["district"] == "4"]
    day = calls["received_at"].dt.date
    now = calls[(day >= date(2020, 7, 6)) & (day <= date(2020, 7, 12))]
    before = calls[(day >= date(2020, 6, 29)) & (day <= date(2020, 7, 5))]
    counts = {r["beat"]: r for r in out["counts"]}
    response = {r["beat"]: r for r in out["response"]}
    assert set(counts) == set(now["beat"]) | set(before["beat"])
    for beat, row in counts.items():
        assert row["current"] == (now["beat"] == beat).sum()
        assert row["previous"] == (before["beat"] == beat).sum()
        assert row["p_value_last_year"] is None  # no calls a year earlier: not a rise from 0
        a = now.loc[now["beat"] == beat, "response_min"].dropna()
        b = before.loc[before["beat"] == beat, "response_min"].dropna()
        assert response[beat]["response_median_min"] == pytest.approx(a.median(), abs=1e-4)
        assert response[beat]["share_within_target"] == pytest.approx((a <= 10).mean(), abs=1e-4)
        p = stats.mannwhitneyu(a, b, alternative="greater").pvalue
        assert response[beat]["p_value"] == pytest.approx(p, abs=1e-4)
        assert response[beat]["worse"] == (p < 0.05)
    # measured: sector 3N's median rose from 11.6 to 17.7 minutes, significantly
    assert response["P4 SEC 3N"]["worse"]
