"""``init`` on a store an earlier init left unfinished: rebuilt from the profile given now."""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geodata.calls import calls_table
from geodata.cli import main
from geodata.department import load_department
from geodata.ingest import install_department
from geodata.store import IncidentStore

SEATTLE = load_department("seattle")
ROWS = 400


@pytest.fixture(scope="module")
def state_plane_export(tmp_path_factory) -> Path:
    """400 located Seattle offenses whose coordinates are WA North state plane feet only."""
    raw = pd.read_csv(SEATTLE.incident_files[0], dtype=str, keep_default_na=False, nrows=2000)
    raw = raw[raw["longitude"].astype(float) < -100].head(ROWS)
    points = gpd.GeoSeries.from_xy(
        raw["longitude"].astype(float), raw["latitude"].astype(float), crs="EPSG:4326"
    ).to_crs("EPSG:2926")
    export = raw.drop(columns=["latitude", "longitude"]).assign(
        X=points.x.values, Y=points.y.values
    )
    path = tmp_path_factory.mktemp("export") / "offenses_2926.csv"
    export.to_csv(path, index=False)
    return path


def _profile(path: Path, export: Path, *, crs: str | None) -> Path:
    crs_line = f'crs = "{crs}"\n' if crs else ""
    path.write_text(
        f"""key = "emerald"
name = "Emerald Police Department"
timezone = "America/Los_Angeles"
offense_vocabulary = "nibrs"

[levels.beat]
singular = "beat"
plural = "beats"

[levels.district]
singular = "precinct"
plural = "precincts"
parent = "column"
column = "first_prec"

[beats]
file = "{SEATTLE.beats_file}"
beat_column = "beat"

[incidents]
files = ["{export}"]
{crs_line}[incidents.columns]
incident_id = "offense_id"
occurred_at = "offense_start_datetime"
offense = "offense"
reported_beat = "beat"
x = "X"
y = "Y"
""",
        encoding="utf-8",
    )
    return path


def test_a_failed_init_leaves_no_store_and_the_next_one_uses_the_fixed_profile(
    state_plane_export, tmp_path, capsys
):
    store = tmp_path / "store"
    profile = tmp_path / "emerald.toml"
    args = ["init", "--department", str(profile), "--store", str(store)]
    _profile(profile, state_plane_export, crs=None)
    assert main(args) != 0  # x/y in feet and no CRS: refused
    assert "CRS is not given" in capsys.readouterr().err
    assert not (store / "meta.json").exists()  # nothing half-built is left

    _profile(profile, state_plane_export, crs="EPSG:2926")
    assert main(args) == 0
    assert "read 400, accepted 400, rejected 0" in capsys.readouterr().out
    built = IncidentStore(store)
    assert built.count() == ROWS
    assert built.department().incident_options["crs"] == "EPSG:2926"


def test_init_rebuilds_a_store_that_holds_no_records(state_plane_export, tmp_path, capsys):
    # what an init killed after its boundaries leaves: the layers and the old profile, no records
    store = IncidentStore(tmp_path / "store")
    old = load_department(_profile(tmp_path / "old.toml", state_plane_export, crs=None))
    install_department(store, old)
    assert store.exists()
    assert store.count() == 0
    assert "crs" not in store.department().incident_options

    profile = _profile(tmp_path / "emerald.toml", state_plane_export, crs="EPSG:2926")
    args = ["init", "--department", str(profile), "--store", str(store.root)]
    assert main(args) == 0
    assert IncidentStore(store.root).department().incident_options["crs"] == "EPSG:2926"
    assert IncidentStore(store.root).count() == ROWS
    capsys.readouterr()
    assert main(args) == 0  # a store with records is kept, not rebuilt
    assert "store exists with 400 incidents and 0 calls" in capsys.readouterr().out


def test_init_of_a_calls_department_reports_its_calls_and_keeps_the_store(tmp_path, capsys):
    args = ["init", "--department", "minneapolis", "--store", str(tmp_path / "store")]
    assert main([*args, "--json"]) == 0
    (calls,) = json.loads(capsys.readouterr().out)  # Minneapolis has calls only
    assert calls["kind"] == "calls"
    # the real CAD export: 14,199 rows, 18 broken by the interval rules (SOURCE.md)
    assert (calls["rows_read"], calls["rows_accepted"], calls["rows_rejected"]) == (
        14_199,
        14_181,
        18,
    )
    assert main(args) == 0  # a store holding calls only is kept, not read again
    out = capsys.readouterr().out
    assert "store exists with 0 incidents and 14,181 calls" in out
    assert calls_table(IncidentStore(tmp_path / "store")).version() == 1


def test_init_text_names_each_calls_reason_and_the_date_format_read(tmp_path, capsys):
    assert main(["init", "--department", "minneapolis", "--store", str(tmp_path / "s")]) == 0
    out = capsys.readouterr().out
    assert "read 14,199, accepted 14,181, rejected 18" in out
    assert "rejected: dispatched before received: 7" in out
    assert "note: received_at read as %Y-%m-%d %H:%M:%S" in out
