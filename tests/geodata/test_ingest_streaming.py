"""The streaming ingest stores what the whole-file ingest stored, and stays in bounded memory.

``tests/data/ingest_before.json`` was written by :func:`digest` (below) from the ingest as it was
before streaming (commit 1d68da1: pandas reading of the whole file, one upsert): per file, the
counts, every rejected line with its reason, the beat counts and a SHA-256 of every stored row
(id, time, offense, category, sensitive flag, beat, sector, district, status, reported beat,
line, x/y to the centimetre). The streaming ingest must reproduce it exactly, also when the file
is cut into many small batches (duplicates and line numbers across batch boundaries).
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from pathlib import Path

import pandas as pd
import pytest

from geodata.department import load_department
from geodata.ingest import ingest_file, install_boundaries
from geodata.readers import ColumnMapping
from geodata.store import IncidentStore

BEFORE = json.loads(
    (Path(__file__).resolve().parents[1] / "data" / "ingest_before.json").read_text()
)
COLUMNS = [
    "incident_id",
    "occurred_at",
    "offense",
    "category",
    "is_sensitive",
    "beat",
    "sector",
    "district",
    "join_status",
    "reported_beat",
    "source_line",
    "x",
    "y",
]
CHICAGO = "%m/%d/%Y %I:%M:%S %p"


def digest(store: IncidentStore) -> tuple[str, dict[str, int]]:
    """Return a SHA-256 of every stored row and the count of incidents per beat."""
    frame = store.load_incidents(columns=COLUMNS).sort_values("incident_id")
    frame = frame.reset_index(drop=True)
    frame["occurred_at"] = (
        frame["occurred_at"].dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%S")
    )
    frame["x"] = frame["x"].round(2)
    frame["y"] = frame["y"].round(2)
    text = frame.astype(str).to_csv(index=False)
    beats = frame["beat"].astype(str).value_counts().sort_index()
    return hashlib.sha256(text.encode()).hexdigest(), {k: int(v) for k, v in beats.items()}


@pytest.fixture(scope="module")
def beats_only(chicago_beats_store) -> IncidentStore:
    return chicago_beats_store


@pytest.fixture(scope="module")
def variants(tmp_path_factory, samples_dir) -> dict[str, tuple[Path, ColumnMapping | None]]:
    """The bundled files, a state-plane-only copy and a copy with one fault per row."""
    folder = tmp_path_factory.mktemp("variants")
    names = [
        "incidents_2018-01_dense.csv.gz",
        "incidents_2023-2024_sample_a.csv.gz",
        "incidents_2024_sample_b.csv.gz",
    ]
    out: dict[str, tuple[Path, ColumnMapping | None]] = {n: (samples_dir / n, None) for n in names}
    raw = pd.read_csv(samples_dir / names[0], dtype=str, keep_default_na=False)
    state_plane = folder / "state_plane.csv"
    raw.drop(columns=["Latitude", "Longitude", "Location"]).to_csv(state_plane, index=False)
    out["state_plane"] = (state_plane, ColumnMapping(crs="EPSG:3435"))
    rows = raw[raw["Latitude"] != ""].head(40).copy().reset_index(drop=True)
    rows.loc[0, ["Latitude", "Longitude"]] = ""
    rows.loc[1, "Latitude"] = "forty-one"
    rows.loc[2, ["Latitude", "Longitude"]] = ["48.8566", "2.3522"]
    rows.loc[3, "Date"] = "31/31/2024 10:00"
    rows.loc[4, "Date"] = ""
    rows.loc[5, "ID"] = rows.loc[6, "ID"]
    rows.loc[8, "ID"] = ""
    rows.loc[9, "Primary Type"] = ""
    bad_rows = folder / "bad_rows.csv"
    rows.to_csv(bad_rows, index=False)
    out["bad_rows"] = (bad_rows, ColumnMapping(date_format=CHICAGO))
    return out


def _ingest(name, variants, beats_only, tmp_path, **options):
    path, mapping = variants[name]
    store = IncidentStore(tmp_path / "store")
    shutil.copytree(beats_only.root, store.root)
    if mapping is not None:
        base = store.department().column_mapping()
        mapping = ColumnMapping(
            **{**base.__dict__, **{k: v for k, v in mapping.__dict__.items() if v is not None}}
        )
    report = ingest_file(path, store, mapping=mapping, **options)
    return store, report


@pytest.mark.parametrize("name", list(BEFORE))
@pytest.mark.slow
def test_streaming_ingest_stores_what_the_whole_file_ingest_stored(
    name, variants, beats_only, tmp_path
):
    expected = BEFORE[name]
    store, report = _ingest(name, variants, beats_only, tmp_path)
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (
        expected["rows_read"],
        expected["rows_accepted"],
        expected["rows_rejected"],
    )
    assert report.outside == expected["outside"]
    assert report.join_agreement == pytest.approx(expected["join_agreement"])
    rejected = pd.read_csv(report.rejections_csv)
    lines = sorted(
        [int(a), str(b)] for a, b in zip(rejected["line"], rejected["reason"], strict=True)
    )
    assert lines == expected["rejections"]
    stored_digest, beat_counts = digest(store)
    assert beat_counts == expected["beat_counts"]
    assert stored_digest == expected["digest"]


@pytest.mark.parametrize("name", ["incidents_2018-01_dense.csv.gz", "bad_rows"])
@pytest.mark.slow
def test_small_batches_store_the_same_rows(name, variants, beats_only, tmp_path):
    # 64 KiB batches: the dense file arrives in about 70 batches, bad_rows in one or two
    store, report = _ingest(name, variants, beats_only, tmp_path, block_bytes=64 << 10)
    assert report.rows_read == BEFORE[name]["rows_read"]
    rejected = pd.read_csv(report.rejections_csv)
    lines = sorted(
        [int(a), str(b)] for a, b in zip(rejected["line"], rejected["reason"], strict=True)
    )
    assert lines == BEFORE[name]["rejections"]
    assert digest(store)[0] == BEFORE[name]["digest"]


@pytest.mark.slow
def test_a_duplicate_id_in_a_later_batch_is_rejected_with_the_first_line(
    variants, beats_only, tmp_path
):
    path, _ = variants["incidents_2018-01_dense.csv.gz"]
    raw = pd.read_csv(path, dtype=str, keep_default_na=False)
    located = raw[raw["Latitude"] != ""].reset_index(drop=True)
    copy = pd.concat([located, located.iloc[[0]]], ignore_index=True)  # last row repeats row 0
    twice = tmp_path / "twice.csv"
    copy.to_csv(twice, index=False)
    variants = {"twice": (twice, None)}
    _store, report = _ingest("twice", variants, beats_only, tmp_path, block_bytes=64 << 10)
    rejected = pd.read_csv(report.rejections_csv)
    assert rejected["line"].tolist() == [len(copy) + 1]
    assert rejected["value"].iloc[0] == f"{located['ID'].iloc[0]} (first at line 2)"
    assert report.rows_accepted == len(located)


ROWS = int(os.environ.get("INGEST_MEMORY_ROWS", "5000000"))
LIMIT_MB = 1536


@pytest.mark.slow
def test_a_generated_file_is_ingested_in_bounded_memory(samples_dir, tmp_path):
    """Ingest a generated Chicago-format file in a child process capped at 1.5 GB resident."""
    from bench.ingest import generate
    from bench.measure import run_measured

    csv_path = generate(tmp_path / "big.csv", ROWS)
    store = tmp_path / "store"
    # a new store: the child also builds the beat index, as a first real ingest does
    install_boundaries(
        IncidentStore(store),
        samples_dir / "beats.geojson",
        districts_path=samples_dir / "districts.geojson",
        department=load_department("chicago"),
    )
    cap = f"import resource; resource.setrlimit(resource.RLIMIT_AS, ({8 << 30}, {8 << 30}))"
    ingest = ["-m", "geodata", "ingest", str(csv_path), "--store", str(store), "--json"]
    measured = run_measured(ingest, prelude=cap)
    assert measured.returncode == 0, measured.stderr[-2000:]
    report = json.loads(measured.stdout)
    assert report["rows_read"] == ROWS
    assert report["rows_accepted"] + report["rows_rejected"] == ROWS
    peak_mb = measured.peak_mb
    assert peak_mb <= LIMIT_MB, f"peak {peak_mb:.0f} MB for {ROWS:,} rows"
    assert IncidentStore(store).count() == report["rows_accepted"]
