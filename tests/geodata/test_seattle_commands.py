"""The commands not covered elsewhere, each on the Seattle store (issue 10).

``init``, ``ingest``, ``info``, ``publish`` and ``department draft`` are in
``test_cli_department.py``, ``check-beats`` in ``test_hierarchy.py``, ``meetings list`` in
``test_meetings_departments.py``, ``profile`` in ``tests/dashboard/test_department_labels.py``,
``forecast`` in ``tests/analysis/test_forecast_cli.py``. Results are checked against independent
counts of the raw files (pandas, geopandas) or of the stored rows.
"""

from __future__ import annotations

import json
import shutil

import geopandas as gpd
import pandas as pd
import pypdf
import pytest
from shapely.geometry import Point

from analysis.cli import main as analysis_main
from geodata.cli import main as geodata_main
from geodata.department import load_department
from geodata.store import IncidentStore

SEATTLE = load_department("seattle")
#: A point at 12th Ave and Pine St (the East precinct station's block).
EAST = (47.6150, -122.3171)


@pytest.fixture(scope="module")
def raw_layer() -> gpd.GeoDataFrame:
    layer = gpd.read_file(SEATTLE.beats_file)
    layer["beat"] = layer["beat"].astype(str).str.upper()
    return layer


@pytest.fixture
def db(tmp_path) -> list[str]:
    return ["--database", f"sqlite:///{tmp_path / 'meetings.db'}"]


def _out(capsys) -> str:
    return capsys.readouterr().out


def test_counts_by_precinct_match_the_stored_rows(seattle_store, tmp_path, capsys):
    out = tmp_path / "counts.csv"
    args = ["counts", "--store", str(seattle_store.root), "--by", "district", "--out", str(out)]
    assert geodata_main([*args, "--json"]) == 0
    summary = json.loads(_out(capsys))
    table = pd.read_csv(out, dtype={"district": str})
    stored = seattle_store.load_incidents(columns=["occurred_at", "district"])
    local = stored["occurred_at"]  # store times are Seattle local
    keys = [local.dt.year, local.dt.month, stored["district"].astype(object).fillna("-")]
    expected = stored.groupby(keys).size()
    table["district"] = table["district"].fillna("-")  # rows without a precinct (beat 99)
    got = table.set_index(["year", "month", "district"])["incidents"]
    assert got.to_dict() == expected.to_dict()
    assert set(table["district"]) - {"-", "outside"} == {"N", "E", "S", "W", "SW"}
    assert summary["incidents"] == seattle_store.count()


def test_history_rollback_and_migrate(seattle_store, tmp_path, capsys):
    root = tmp_path / "store"
    shutil.copytree(seattle_store.root, root)
    copy = IncidentStore(root)
    assert geodata_main(["history", "--store", str(root), "--json"]) == 0
    versions = json.loads(_out(capsys))
    assert [(v["version"], v["operation"]) for v in versions] == [(1, "ingest"), (0, "create")]
    assert versions[0]["rows"] == copy.count() == seattle_store.count()
    assert geodata_main(["rollback", "0", "--store", str(root)]) == 0
    _out(capsys)
    assert copy.count() == 0  # version 0 held no incidents
    assert geodata_main(["rollback", "1", "--store", str(root)]) == 0
    assert copy.count() == seattle_store.count()
    _out(capsys)
    # a store of the current layout needs no migration: a clear refusal, nothing changed
    assert geodata_main(["migrate", "--store", str(root)]) == 2
    assert "already has the current layout" in capsys.readouterr().err
    assert copy.count() == seattle_store.count()


@pytest.mark.slow
def test_meetings_ics_feeds_and_find(seattle_store, raw_layer, db, tmp_path, capsys):
    store = ["--store", str(seattle_store.root)]
    ics = tmp_path / "east.ics"
    assert geodata_main(["meetings", "ics", "--district", "e", *store, *db, "--out", str(ics)]) == 0
    text = ics.read_text(encoding="utf-8").replace("\r\n ", "")
    served = {
        b.strip()
        for line in text.splitlines()
        if line.startswith("DESCRIPTION:Serves beat(s) ")
        for b in line.split("Serves beat(s) ")[1].split("\\n")[0].split("\\,")
    }
    assert served == set(raw_layer.loc[raw_layer["first_prec"] == "E", "beat"])
    assert "TZID=America/Los_Angeles" in text
    feeds = tmp_path / "feeds"
    assert geodata_main(["meetings", "feeds", *store, *db, "--out", str(feeds)]) == 0
    names = {p.name for p in feeds.iterdir()}
    assert {f"beat_{b}.ics" for b in raw_layer["beat"]} <= names
    assert len(names) == raw_layer["beat"].nunique() + raw_layer["sector"].nunique() + 1
    _out(capsys)
    assert geodata_main(["meetings", "find", f"{EAST[0]}, {EAST[1]}", *store, *db, "--json"]) == 0
    found = json.loads(_out(capsys))
    (beat,) = raw_layer[raw_layer.contains(Point(EAST[1], EAST[0]))]["beat"]
    assert found["beat"] == beat
    assert found["station"]["name"] == "East precinct station"
    assert found["station"]["address"].startswith("1519 12th Ave")
    assert found["meetings"][0]["start"].endswith("-08:00") or found["meetings"][0][
        "start"
    ].endswith("-07:00")


def test_users_and_audit_for_the_seattle_app(seattle_store, db, capsys):
    assert geodata_main(["users", "add", "k.wu", "--role", "analyst", "--sso", *db]) == 0
    assert geodata_main(["users", "list", "--json", *db]) == 0
    out = _out(capsys)
    listed = json.loads(out[out.index("[") :])
    assert [u["username"] for u in listed] == ["k.wu"]
    assert geodata_main(["audit", "--json", *db]) == 0
    trail = json.loads(_out(capsys))
    assert any(r["target"] == "k.wu" for r in trail)


def test_hotspots_in_a_precinct(seattle_store, capsys):
    args = ["hotspots", "--method", "dbscan", "--district", "w", "--from", "2018-06-01"]
    args += ["--to", "2018-06-30", "--store", str(seattle_store.root), "--json"]
    assert analysis_main(args) == 0
    out = json.loads(_out(capsys))
    stored = seattle_store.load_incidents(
        columns=["occurred_at", "district", "x", "y"], start="2018-06-01", end="2018-07-01"
    )
    in_w = stored[(stored["district"] == "W") & stored["x"].notna()]
    assert out["n_incidents"] == len(in_w)
    assert out["n_hotspots"] == len(out["hotspots"]) >= 1
    # the precinct as stored ("W", not as typed) and in Seattle's word for the level
    assert out["area"] == {"level": "district", "label": "precinct", "id": "W"}


def test_plan_and_evaluate_on_a_precinct(seattle_store, raw_layer, capsys):
    store = ["--store", str(seattle_store.root)]
    assert analysis_main(["plan", "evaluate", "--district", "w", *store, "--json"]) == 0
    summary = json.loads(_out(capsys))["summary"]
    west = raw_layer[raw_layer["first_prec"] == "W"]
    assert summary["n_beats"] == west["beat"].nunique() == 12
    assert sorted(summary["sector_sizes"]) == sorted(west["sector"].unique())
    assert summary["sector_sizes"] == west.groupby("sector")["beat"].nunique().to_dict()
    # the whole department holds beats with no incident (the harbour, the water beats): the
    # max/min ratio has no value, and the text says why instead of "inf"
    assert analysis_main(["plan", "evaluate", *store, "--json"]) == 0
    beats = json.loads(_out(capsys))["beats"]
    empty = sum(1 for b in beats if b["workload"] <= 0)
    assert empty > 0
    assert analysis_main(["plan", "evaluate", *store]) == 0
    assert f"max/min n/a ({empty} beats with no workload)" in _out(capsys)
    args = ["evaluate", "--methods", "naive", "--from", "2018-01-01", "--to", "2018-12-31"]
    assert analysis_main([*args, *store, "--json"]) == 0
    rows = json.loads(_out(capsys))["summary"]
    assert {r["method"] for r in rows} == {"naive"}
    assert all(r["cutoffs"] == 11 for r in rows)  # monthly cutoffs Feb..Dec of the full year


@pytest.mark.slow
def test_forecast_backtest_on_the_seattle_year(seattle_store, capsys):
    args = ["forecast-backtest", "--methods", "naive", "prospective", "--horizons", "7d"]
    args += ["--from", "2018-10-01", "--to", "2018-12-31", "--store", str(seattle_store.root)]
    assert analysis_main([*args, "--json"]) == 0
    out = json.loads(_out(capsys))
    rows = [r for r in out["comparison"] if r["method"] == "prospective"]
    assert rows
    assert {r["horizon_days"] for r in rows} == {7}


@pytest.mark.slow
def test_calls_commands_without_calls_and_with_seattle_points(
    seattle_store, raw_layer, tmp_path, capsys
):
    # the Seattle store holds no calls for service: a clear message, no traceback
    code = analysis_main(["calls-review", "--district", "w", "--store", str(seattle_store.root)])
    assert code == 2
    # calls-areas works from any point file with an area column: SPD offenses by reported beat
    out = tmp_path / "areas.geojson"
    args = ["calls-areas", "--calls", str(SEATTLE.incident_files[0]), "--parents"]
    args += [str(SEATTLE.beats_file), "--parent-column", "first_prec", "--area-column", "beat"]
    assert analysis_main([*args, "--lon", "longitude", "--lat", "latitude", "--out", str(out)]) == 0
    report = json.loads(_out(capsys))
    raw = pd.read_csv(SEATTLE.incident_files[0], dtype=str, keep_default_na=False)
    lon, lat = pd.to_numeric(raw["longitude"], "coerce"), pd.to_numeric(raw["latitude"], "coerce")
    placed = lon.notna() & lat.notna() & ~((lon == 0) & (lat == 0)) & (raw["beat"] != "")
    assert report["located_with_area"] == int(placed.sum()) < len(raw)  # (0, 0) is not a place
    areas = gpd.read_file(out)
    parent = raw_layer.dropna(subset=["first_prec"]).set_index("beat")["first_prec"]
    known = areas[areas["beat"].isin(parent.index)]  # besides SPD's UNKNOWN and empty beats
    assert len(known) >= 45
    assert (known["district"] == known["beat"].map(parent)).mean() > 0.9


def test_flyer_names_seattle_levels_and_its_station(seattle_store, db, tmp_path, capsys):
    flyer = tmp_path / "k3.pdf"
    args = ["flyer", "--beat", "k3", "--pdf", str(flyer), "--store", str(seattle_store.root)]
    assert analysis_main([*args, *db]) == 0
    text = pypdf.PdfReader(flyer).pages[0].extract_text()
    assert "Beat K3" in text
    assert "Sector K, precinct W" in text
    assert "district" not in text.lower()
    assert "West precinct station" in text


def test_gi_star_hotspots_of_a_sector_are_numbered_strongest_first(seattle_store, capsys):
    args = ["hotspots", "--method", "gistar", "--sector", "k", "--from", "2018-11-01"]
    args += ["--to", "2018-12-30", "--store", str(seattle_store.root), "--json"]
    assert analysis_main(args) == 0
    hotspots = json.loads(_out(capsys))["hotspots"]
    assert len(hotspots) >= 2  # three in downtown's sector K (measured)
    z = [h["z"] for h in hotspots]
    assert z == sorted(z, reverse=True)  # clipped to the sector, then ranked again
    assert [h["hotspot"] for h in hotspots] == list(range(1, len(z) + 1))


def test_dbscan_on_downtown_says_one_cluster_holds_most_incidents(seattle_store, capsys):
    args = ["hotspots", "--method", "dbscan", "--sector", "k", "--from", "2018-11-01"]
    args += ["--to", "2018-12-30", "--store", str(seattle_store.root)]
    assert analysis_main([*args, "--json"]) == 0
    out = json.loads(_out(capsys))
    biggest = max(h["n_incidents"] for h in out["hotspots"])
    share = biggest / out["n_incidents"]
    assert share > 0.5  # downtown is denser than the department's threshold
    assert analysis_main(args) == 0
    assert f"note: one hotspot holds {share:.0%} of the incidents" in _out(capsys)


def test_the_dominant_cluster_note_is_quiet_when_clusters_are_apart():
    from analysis.hotspots import dominant_cluster_note

    apart = pd.DataFrame({"n_incidents": [40, 30, 20]})
    assert dominant_cluster_note(apart, 100) is None  # 40% at most
    assert dominant_cluster_note(apart.iloc[:0], 0) is None
    one = pd.DataFrame({"n_incidents": [51, 10]})
    assert dominant_cluster_note(one, 100).startswith("one hotspot holds 51% of the incidents")


def test_an_export_without_the_departments_optional_columns_is_read_without_them(
    seattle_store, tmp_path, capsys
):
    from tests.conftest import copy_store

    store = copy_store(seattle_store, tmp_path / "store")
    raw = pd.read_csv(SEATTLE.incident_files[0], dtype=str, keep_default_na=False, nrows=300)
    # the profile names report_number (case number), _100_block_address and beat: an export
    # of the same offenses without them must still be read
    short = raw.drop(columns=["report_number", "_100_block_address", "beat"])
    path = tmp_path / "short.csv"
    short.to_csv(path, index=False)
    assert geodata_main(["ingest", str(path), "--store", str(store.root), "--json"]) == 0
    report = json.loads(_out(capsys))
    located = (raw["longitude"].astype(float) < -100).sum()
    assert report["rows_read"] == 300
    assert report["rows_accepted"] == located  # the rows without coordinates are rejected
    assert report["rows_new"] == 0  # the same offense ids: the stored copies are replaced
    notes = " ".join(report["notes"])
    for column, role in (("report_number", "case_number"), ("beat", "reported_beat")):
        assert f"the department's column {column!r} ({role}) is not in this file" in notes


def test_a_beat_in_no_precinct_is_placed_without_one():
    from analysis.flyer import place_line

    words = {"sector": "sector", "district": "precinct"}
    assert place_line("K", "W", words) == "Sector K, precinct W"
    for missing in (None, "", pd.NA, float("nan")):
        assert place_line("99", missing, words) == "Sector 99, no precinct"
    assert place_line("99", None, words, capitalize=False) == "sector 99, no precinct"
