"""The bad-input corpus (tests/data/bad/cases.toml) through the real command line.

Each case runs ``python -m geodata`` in a subprocess on a copy of a store holding the bundled
Chicago beats, and checks the exit code, a fragment of the message, the reconciled counts, what
the store holds afterwards, and that no traceback is ever printed.
"""

from __future__ import annotations

import csv
import json
import shutil
import subprocess
import sys
import tomllib
from pathlib import Path

import pytest

from geodata import schema
from geodata.calls import calls_table
from geodata.department import load_department
from geodata.ingest import install_boundaries
from geodata.store import IncidentStore

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
ROOT = Path(__file__).resolve().parents[2]
MINNEAPOLIS = ROOT / "geodata" / "samples" / "minneapolis"
CASES = tomllib.loads((BAD / "cases.toml").read_text(encoding="utf-8"))["case"]
RISKY = ("=", "+", "-", "@", "\t", "\r")


@pytest.fixture(scope="module")
def beats_store(chicago_beats_store) -> IncidentStore:
    """A store with the bundled beats and districts and no incidents (and its beat index)."""
    return chicago_beats_store


@pytest.fixture(scope="module")
def sectors_store(tmp_path_factory, samples_dir) -> IncidentStore:
    """A store of the bundled Minneapolis sectors (built from calls) and no calls yet."""
    store = IncidentStore(tmp_path_factory.mktemp("bad_calls") / "store")
    install_boundaries(
        store,
        MINNEAPOLIS / "sectors_from_calls.geojson",
        department=load_department("minneapolis"),
    )
    return store


def _state(store: IncidentStore) -> tuple[list[str], list[bytes], int, int]:
    """Return what a refused file must not change: the beat layer, incidents and calls."""
    beats = store.read_layer("beats")
    calls = calls_table(store)
    n_calls = calls.count() if calls.exists() else 0
    geometry = beats.geometry.to_wkb().tolist()
    return beats[schema.BEAT].astype(str).tolist(), geometry, store.count(), n_calls


def _stored(store: IncidentStore, case: dict) -> int:
    """Return the records of the case's kind that the store holds."""
    if "--kind" in case.get("args", []):
        return _state(store)[3]
    return store.count()


def _cells(path: str) -> list[str]:
    with open(path, newline="", encoding="utf-8") as handle:
        return [cell for row in csv.reader(handle) for cell in row]


def _is_number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True


def test_every_case_file_exists():
    missing = [c["file"] for c in CASES if not (BAD / c["file"]).exists()]
    assert missing == ["nowhere.csv"]  # the "no such file" case


#: Cases a local run keeps (faults in single rows of an incident file and of a calls file); the
#: others are marked slow: each ingests a file into a store copy, several seconds apiece.
QUICK_CASES = ("one fault per row", "calls: ragged rows, rejected one by one")


@pytest.mark.parametrize(
    "case",
    [
        pytest.param(c, id=c["name"], marks=() if c["name"] in QUICK_CASES else pytest.mark.slow)
        for c in CASES
    ],
)
def test_bad_input_case(case, beats_store, sectors_store, tmp_path):
    store = IncidentStore(tmp_path / "store")
    base = sectors_store if case.get("store") == "minneapolis" else beats_store
    shutil.copytree(base.root, store.root)
    before = _state(store)
    command = case.get("command", "ingest")
    args = [a.replace("{here}", str(BAD)) for a in case.get("args", [])]
    argv = [sys.executable, "-m", "geodata", command, str(BAD / case["file"]), *args]
    if command == "ingest":
        argv += ["--store", str(store.root), "--json"]
    done = subprocess.run(argv, capture_output=True, text=True, cwd=ROOT, timeout=600)
    output = done.stdout + done.stderr
    assert "Traceback" not in output, output
    assert done.returncode == case["exit"], output
    if "message" in case:
        assert case["message"] in done.stderr, done.stderr
    if "stdout" in case:
        assert case["stdout"] in done.stdout
    if case.get("store_unchanged"):
        assert _state(store) == before
    if "rows_read" not in case:
        return
    report = json.loads(done.stdout)
    assert report["rows_read"] == case["rows_read"]
    assert report["rows_accepted"] == case["accepted"]
    assert report["rows_rejected"] == case["rejected"]
    assert report["rows_read"] == report["rows_accepted"] + report["rows_rejected"]
    assert _stored(store, case) == case["stored"]
    for key in ("located", "location_withheld", "outside"):
        if key in case:
            assert report[key] == case[key], key
    if "reasons" in case:
        assert report["rejected_by_reason"] == case["reasons"]
    with open(report["rejections_csv"], newline="", encoding="utf-8") as handle:
        rejected = list(csv.DictReader(handle))
    assert len(rejected) == case["rejected"]
    if "lines" in case:
        assert [int(r["line"]) for r in rejected] == case["lines"]
    if case.get("csv_safe"):
        for path in (report["rejections_csv"], report["disagreements_csv"]):
            cells = _cells(path)
            unsafe = [c for c in cells if c.startswith(RISKY) and not _is_number(c)]
            assert unsafe == [], path
        assert "'=1+1" in _cells(report["rejections_csv"])
        assert "'-0111" in _cells(report["disagreements_csv"])
