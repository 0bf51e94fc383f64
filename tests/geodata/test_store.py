"""The Parquet store: partitions, loading, idempotent re-import and append."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest

from geodata import schema
from geodata.errors import StoreError
from geodata.ingest import ingest_file
from geodata.store import IncidentStore

REPO = __import__("pathlib").Path(__file__).resolve().parents[2]


def test_sample_store_holds_every_accepted_incident_once(sample_store):
    reports = sample_store.build_reports
    assert [r.rows_read for r in reports] == [17_198, 9_746, 10_000]
    for report in reports:
        assert report.rows_read == report.rows_accepted + report.rows_rejected
    # the two 2023-2024 files share 49 incident ids (SOURCE.md): stored once
    assert sample_store.count() == sum(r.rows_accepted for r in reports) - 49 == 36_212
    ids = sample_store.load_incidents(columns=[schema.INCIDENT_ID])[schema.INCIDENT_ID]
    assert ids.is_unique


def test_partitions_are_hive_style_by_local_year_and_month(sample_store):
    files = sample_store.incident_files()
    january = [f for f in files if "year=2018/month=1/" in f.as_posix()]
    assert len(january) == 1
    incidents = sample_store.load_incidents(columns=[schema.OCCURRED_AT])
    local = incidents[schema.OCCURRED_AT]
    assert str(local.dt.tz) == "America/Chicago"
    jan = pd.read_parquet(january[0])
    stamps = jan[schema.OCCURRED_AT].dt.tz_convert("America/Chicago")
    assert (stamps.dt.year == 2018).all()
    assert (stamps.dt.month == 1).all()


def test_load_with_time_range_and_columns(sample_store):
    start, end = pd.Timestamp("2018-01-08"), pd.Timestamp("2018-01-15")
    week = sample_store.load_incidents(
        columns=[schema.BEAT, schema.OCCURRED_AT], start=start, end=end
    )
    everything = sample_store.load_incidents(columns=[schema.OCCURRED_AT])
    local = everything[schema.OCCURRED_AT].dt.tz_localize(None)
    assert len(week) == int(((local >= start) & (local < end)).sum())
    assert list(week.columns) == [schema.BEAT, schema.OCCURRED_AT]
    assert week[schema.OCCURRED_AT].min() >= start.tz_localize("America/Chicago")


def test_unknown_column_is_named(sample_store):
    with pytest.raises(ValueError, match=r"unknown incident columns \['colour'\]"):
        sample_store.load_incidents(columns=["colour"])


def test_missing_store_says_how_to_create_one(tmp_path):
    with pytest.raises(StoreError, match="python -m geodata init"):
        IncidentStore(tmp_path / "nothing").load_incidents()


def test_reimport_is_idempotent_and_next_export_appends(writable_store, samples_dir, tmp_path):
    before = writable_store.count()
    again = ingest_file(samples_dir / "incidents_2024_sample_b.csv.gz", writable_store)
    assert (again.rows_new, again.rows_replaced) == (0, again.rows_accepted)
    assert writable_store.count() == before
    # "next month's export": 3 new incidents, one an update of a stored incident
    raw = pd.read_csv(
        samples_dir / "incidents_2024_sample_b.csv.gz",
        dtype=str,
        keep_default_na=False,
        encoding="utf-8-sig",
    )
    nxt = raw[raw["Latitude"] != ""].head(3).copy()
    nxt.loc[nxt.index[:2], "ID"] = ["99000001", "99000002"]
    nxt.loc[nxt.index[2], "Primary Type"] = "BURGLARY"  # the updated record
    path = tmp_path / "next.csv"
    nxt.to_csv(path, index=False)
    report = ingest_file(path, writable_store)
    assert (report.rows_new, report.rows_replaced) == (2, 1)
    assert writable_store.count() == before + 2
    stored = writable_store.load_incidents(columns=[schema.INCIDENT_ID, schema.OFFENSE])
    updated = stored.set_index(schema.INCIDENT_ID).loc[nxt["ID"].iloc[2], schema.OFFENSE]
    assert updated == "BURGLARY"


@pytest.mark.slow
def test_cli_ingest_json_and_state_plane(writable_store, samples_dir, tmp_path):
    raw = pd.read_csv(
        samples_dir / "incidents_2018-01_dense.csv.gz", dtype=str, keep_default_na=False
    )
    xy = tmp_path / "dense_xy.csv"
    raw.drop(columns=["Latitude", "Longitude", "Location"]).to_csv(xy, index=False)
    cmd = [
        sys.executable,
        "-m",
        "geodata",
        "ingest",
        str(xy),
        "--crs",
        "EPSG:3435",
        "--store",
        str(writable_store.root),
        "--json",
    ]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=True)
    report = json.loads(done.stdout)
    assert report["rows_read"] == 17_198
    assert report["rows_accepted"] == 17_038
    assert report["rows_rejected"] == 160
    assert report["rejected_by_reason"] == {"missing coordinates": 160}
    assert report["outside"] == 1
    assert report["join_agreement"] == pytest.approx(0.9981, abs=5e-4)
    assert report["rows_new"] == 0  # already stored from the lat/lon file
    rejected = pd.read_csv(report["rejections_csv"])
    assert len(rejected) == 160
    assert set(rejected.columns) == {"source", "line", "column", "value", "reason"}


@pytest.mark.slow
def test_cli_fails_clearly_on_an_unreadable_file(tmp_path):
    bad = tmp_path / "bad.csv"
    bad.write_bytes(b"\x00\x01\x02binary")
    cmd = [
        sys.executable,
        "-m",
        "geodata",
        "ingest",
        str(bad),
        "--store",
        str(tmp_path / "s"),
        "--beats",
        str(REPO / "geodata" / "samples" / "chicago" / "beats.geojson"),
        "--department",
        "chicago",
    ]
    done = subprocess.run(cmd, cwd=REPO, capture_output=True, text=True)
    assert done.returncode == 2
    assert "bad.csv: this is not a text CSV file" in done.stderr
