"""Beat planning on officer-hours: the Minneapolis store (CAD calls only), checked on the raw file.

The page offers the workload basis as ``plan --workload`` does and, on a store of calls, balances
officer-hours: each call's time on task (arrival, else dispatch, to close) x the officers its
response plan sends, plus an allowance. The numbers shown are checked against a pandas and
geopandas computation on the raw CAD export (its own parsing, unit counting and spatial join).
"""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from analysis.__main__ import main
from geodata.calls import load_calls
from geodata.ingest import ingest_file
from geodata.readers import ColumnMapping
from geodata.store import IncidentStore
from tests.auth_helpers import opened
from tests.conftest import APP

MPLS = APP.replace("dashboard/app.py", "geodata/samples/minneapolis")
RAW = f"{MPLS}/mpd_cad_2020-06-21_to_2020-07-13.csv.gz"
PRECINCT = "1"


def _planning_page(store: IncidentStore, monkeypatch, database: str):
    """Return the Beat planning page of `store`, signed in as an analyst."""
    monkeypatch.setenv("BEATS_DATA_DIR", str(store.root.parent))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{database}")
    return opened(APP, "beat_planning", timeout=300)


@pytest.fixture
def page(minneapolis_store, monkeypatch, tmp_path):
    return _planning_page(minneapolis_store, monkeypatch, tmp_path / "plans.db")


def _officers(plan: str) -> int:
    """Officers a response plan sends, read word by word ("2 Officer+Sgt+CIT" -> 3)."""
    words = plan.replace("+", " + ").split()
    if "Officer" not in words:
        return 1  # no plan: one officer, as the model assumes
    officers = int(words[words.index("Officer") - 1])
    return officers + int("Sgt" in words or "Sergeant" in words)


@pytest.fixture(scope="module")
def expected_hours(minneapolis_store) -> pd.Series:
    """Officer-hours per sector of the raw export's accepted calls, computed independently."""
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    stored = load_calls(minneapolis_store, columns=["call_id"])["call_id"]
    raw = raw[raw["Master_Incident_Number"].isin(set(stored))].reset_index(drop=True)
    assert len(raw) == len(stored) == 14_181

    def when(column: str) -> pd.Series:
        return pd.to_datetime(raw[column].replace("", None), format="%Y-%m-%d %H:%M:%S")

    start = when("Time_First_Unit_Arrived").fillna(when("Time_First_Unit_Assigned"))
    on_task_h = (when("Time_CallClosed") - start).dt.total_seconds() / 3600
    officers = raw["Response_Plan"].map(_officers)
    hours = (on_task_h * officers).fillna(0.0)
    # the sector: the polygon that holds the call, else (location redacted) the one it reports
    sectors = minneapolis_store.read_layer("beats")  # the layer the page plans on

    lon = pd.to_numeric(raw["Longitude"], errors="coerce")
    lat = pd.to_numeric(raw["Latitude"], errors="coerce")
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(
        sectors.crs
    )
    located = lon.notna() & lat.notna()
    inside = gpd.sjoin(points[located], sectors[["beat", "geometry"]], predicate="within")
    inside = inside[~inside.index.duplicated()]["beat"]
    # just outside (within the profile's 1 m edge tolerance): the nearest; farther: no sector
    missing = points[located].index.difference(inside.index)
    near = gpd.sjoin_nearest(points.loc[missing], sectors[["beat", "geometry"]], max_distance=1.0)
    near = near[~near.index.duplicated()]["beat"]
    sector = pd.concat([inside, near]).reindex(raw.index)
    reported = raw["Battalion"].str.upper().where(~located)  # the profile's upper case
    sector = sector.str.upper().fillna(reported)
    return hours.groupby(sector).sum()


def test_the_page_balances_officer_hours_of_the_raw_calls(page, expected_hours):
    at = page
    assert [r for r in at.radio if r.label == "Workload"] == []  # calls only: nothing to choose
    at.selectbox[0].select(PRECINCT).run()
    assert not at.exception
    table = at.dataframe[-1].value.set_index("beat")
    assert list(table.index) == ["P1 SEC 1", "P1 SEC 2", "P1 SEC 3"]
    expected = expected_hours[table.index]
    # 1%: the ~25 calls (0.2%) within 1 m of two sectors go to the owner the store's join
    # rule picks (geopandas has no such rule); e.g. 8 such calls of P1 SEC 1, 7.4 of its 983 h
    assert table["officer_hours"].to_numpy() == pytest.approx(expected.to_numpy(), rel=0.01)
    metrics = {m.label: m.value for m in at.metric}
    cv = float(np.std(expected) / np.mean(expected))  # population CV, as docs/planning.md
    assert float(metrics["Workload CV"]) == pytest.approx(cv, abs=0.01)
    assert float(metrics["Max / min"]) == pytest.approx(expected.max() / expected.min(), rel=0.02)
    assert "officer-hours" in " ".join(c.value for c in at.caption)


def test_the_allowance_scales_every_sector_and_keeps_the_balance(page):
    at = page
    at.selectbox[0].select(PRECINCT).run()
    before = at.dataframe[-1].value.set_index("beat")["officer_hours"]
    cv = {m.label: m.value for m in at.metric}["Workload CV"]
    allowance = next(n for n in at.number_input if n.label.startswith("Allowance"))
    allowance.set_value(50.0).run()
    assert not at.exception
    after = at.dataframe[-1].value.set_index("beat")["officer_hours"]
    assert after.to_numpy() == pytest.approx(1.5 * before.to_numpy(), rel=1e-3)
    assert {m.label: m.value for m in at.metric}["Workload CV"] == cv


@pytest.fixture
def both_store(minneapolis_store, tmp_path) -> IncidentStore:
    """The Minneapolis store plus incident reports: the calls' own rows read as incidents.

    (MPD's incident reports are not bundled; the call types stand in for offenses, which is
    enough to have both kinds of record in one store.)
    """
    root = tmp_path / "data" / "store"
    shutil.copytree(minneapolis_store.root, root)
    store = IncidentStore(root)
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    raw.to_csv(tmp_path / "incidents.csv", index=False)
    mapping = ColumnMapping(
        incident_id="Master_Incident_Number", occurred_at="Response_Date", offense="Problem",
        lat="Latitude", lon="Longitude", date_format="%Y-%m-%d %H:%M:%S",
        timezone=store.timezone,
    )  # fmt: skip
    report = ingest_file(tmp_path / "incidents.csv", store, mapping=mapping)
    assert report.rows_accepted > 12_000  # the located calls
    return store


@pytest.mark.slow
def test_both_measures_when_the_store_holds_calls_and_incidents(both_store, monkeypatch, capsys):
    at = _planning_page(both_store, monkeypatch, both_store.root.parent / "plans.db")
    workload = next(r for r in at.radio if r.label == "Workload")
    assert workload.options == [
        "Automatic (calls when stored)", "Officer-hours of calls", "Weighted incidents"
    ]  # fmt: skip
    at.selectbox[0].select(PRECINCT).run()
    args = ["plan", "evaluate", "--district", PRECINCT, "--store", str(both_store.root), "--json"]
    assert main(args) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["workload"] == "calls"
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Workload CV"] == f"{out['summary']['workload_cv']:.3f}"
    incidents = out["summary_incidents"]
    assert metrics["Workload CV (weighted incidents)"] == f"{incidents['workload_cv']:.3f}"
    assert metrics["Max / min (weighted incidents)"] == f"{incidents['max_min_ratio']:.2f}"
    # choosing incidents: the main measure is the incidents', the other the officer-hours
    workload.set_value("incidents").run()
    assert not at.exception
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Workload CV"] == f"{incidents['workload_cv']:.3f}"
    assert metrics["Workload CV (officer-hours)"] == f"{out['summary']['workload_cv']:.3f}"


@pytest.mark.slow
def test_a_proposal_on_officer_hours_matches_the_cli(page, minneapolis_store, capsys):
    """Precinct 4 re-drawn on officer-hours: the page's proposal is the CLI's (same defaults)."""
    at = page
    at.selectbox[0].select("4").run()
    (propose,) = [b for b in at.button if b.label.startswith("Propose ")]
    propose.click().run()
    assert not at.exception, [e.message for e in at.exception]
    args = ["plan", "propose", "--district", "4", "--store", str(minneapolis_store.root)]
    assert main([*args, "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    measures = at.dataframe[-2].value.set_index("Measure")
    cv = measures.loc["Workload CV"]
    assert cv["Current"] == pytest.approx(
        out["current"]["workload_cv"], abs=1e-6
    )  # the CLI prints 6 digits
    assert cv["Proposed"] == pytest.approx(
        out["proposed"]["workload_cv"], abs=1e-6
    )  # the CLI prints 6 digits
    assert cv["Proposed"] < 0.5 * cv["Current"]  # officer-hours balanced: more than halved
    assert measures.loc["Contiguous (every beat one piece)", "Proposed"] == 1.0
    table = at.dataframe[-1].value
    assert "officer_hours" in table.columns
    assert table["officer_hours"].sum() == pytest.approx(
        out["proposed"]["workload_total"], abs=1e-3
    )
