"""Fault injection: an ingest killed with SIGKILL at any moment leaves the store before or after.

A child process runs one ingest (several batches of real Chicago incidents: a new month, rows
of stored months and replacements of stored incidents) into a copy of a small store. The
store's named write steps (:func:`geodata.table.fault_point`) are listed by a first run; then
the child is killed with SIGKILL at each step, and at random moments over many more runs.
Afterwards the store must load and equal either the state before or the state after the
ingest (rows, versions, sources), and the next write must clean up what the killed one left.
Two writers started at once must both land (the write lock), losing nothing.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from deltalake import DeltaTable

from geodata import schema
from geodata.store import IncidentStore

REPO = Path(__file__).resolve().parents[2]
#: Random kill moments tried (on top of every named step); docs/data.md reports the figures.
RANDOM_KILLS = 12

CHILD = r"""
import json, os, signal, sys
import pandas as pd
from geodata import table
from geodata.store import IncidentStore

store_dir, work, kill_at, occurrence = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
seen = {}
trace = []

def hook(name):
    seen[name] = seen.get(name, 0) + 1
    trace.append([name, seen[name]])
    if name == kill_at and seen[name] == occurrence:
        os.kill(os.getpid(), signal.SIGKILL)

table._FAULT_HOOK = hook
store = IncidentStore(store_dir)
operation = json.loads(open(os.path.join(work, "operation.json")).read())
if operation["kind"] == "ingest":
    batches = (pd.read_parquet(os.path.join(work, name)) for name in operation["batches"])
    store.upsert_batches(batches, source={"file": "faulty.csv", "rows_read": 0})
elif operation["kind"] == "rollback":
    store.rollback(operation["version"])
elif operation["kind"] == "layers":
    beats = store.read_layer("beats")
    beats["beat"] = beats["beat"].astype(str) + "X"
    store.write_layers({"beats": beats, "districts": store.read_layer("districts")})
print(json.dumps(trace))
"""


def _state(store: IncidentStore) -> dict:
    """Return what a reader sees: rows (sorted by id), versions, sources, beat ids."""
    rows = store.load_incidents().sort_values(schema.INCIDENT_ID).reset_index(drop=True)
    return {
        "rows": rows,
        "versions": [(v.version, v.operation, v.rows) for v in store.history()],
        "sources": store.meta()["sources"],
        "beats": sorted(store.read_layer("beats")[schema.BEAT].astype(str)),
    }


def _same(a: dict, b: dict) -> bool:
    if a["versions"] != b["versions"] or a["sources"] != b["sources"]:
        return False
    if a["beats"] != b["beats"] or len(a["rows"]) != len(b["rows"]):
        return False
    try:
        pd.testing.assert_frame_equal(a["rows"], b["rows"])
    except AssertionError:
        return False
    return True


def _unreferenced_files(store: IncidentStore) -> list[Path]:
    """Data files in the table directory that no version of the table refers to."""
    table = DeltaTable(str(store.incidents_dir))
    referenced = set()
    for version in range(table.version() + 1):
        referenced |= {Path(p) for p in DeltaTable(str(store.incidents_dir), version=version)
                       .file_uris()}  # fmt: skip
    return [p for p in store.incidents_dir.glob("year=*/month=*/*.parquet") if p not in referenced]


@pytest.fixture(scope="module")
def fault_case(sample_store, tmp_path_factory):
    """A small store of real rows (two versions) and an ingest of four batches."""
    root = tmp_path_factory.mktemp("faults")
    incidents = sample_store.load_incidents()
    local = incidents[schema.OCCURRED_AT]
    jan = incidents[(local.dt.year == 2018) & (local.dt.month == 1)]
    later = incidents[local.dt.year >= 2024]
    base = IncidentStore(root / "base")
    base.initialize(analysis_crs=sample_store.analysis_crs, timezone=sample_store.timezone)
    base.write_layers({"beats": sample_store.read_layer("beats"),
                       "districts": sample_store.read_layer("districts")})  # fmt: skip
    base.upsert_batches([jan.iloc[:3000]], source={"file": "jan-a.csv"})
    base.upsert_batches([later.iloc[:2000]], source={"file": "later-a.csv"})
    # the ingest: new January rows, 50 replaced January rows (new offense), new later rows
    replaced = jan.iloc[:50].assign(**{schema.OFFENSE: "REPLACED"})
    batches = [jan.iloc[3000:4000], replaced, later.iloc[2000:3000], later.iloc[3000:3500]]
    work = root / "work"
    work.mkdir()
    names = []
    for k, batch in enumerate(batches):
        name = f"batch{k}.parquet"
        batch.to_parquet(work / name)
        names.append(name)
    before = _state(base)
    # the "after" state, by running the ingest once without faults
    done = _copy(base, root / "after")
    trace = _run_child(done, work, {"kind": "ingest", "batches": names})
    assert trace, "the child reported no write steps"
    after = _state(done)
    assert len(after["rows"]) == len(before["rows"]) + 1000 + 1500
    assert (after["rows"][schema.OFFENSE] == "REPLACED").sum() == 50
    return {"base": base, "work": work, "names": names, "before": before, "after": after,
            "trace": trace, "root": root}  # fmt: skip


def _copy(store: IncidentStore, target: Path) -> IncidentStore:
    shutil.rmtree(target, ignore_errors=True)
    shutil.copytree(store.root, target)
    return IncidentStore(target)


def _run_child(
    store: IncidentStore,
    work: Path,
    operation: dict,
    *,
    kill_at: str = "",
    occurrence: int = 0,
    kill_after_s: float | None = None,
) -> list | None:
    (work / "operation.json").write_text(json.dumps(operation))
    cmd = [sys.executable, "-c", CHILD, str(store.root), str(work), kill_at, str(occurrence)]
    child = subprocess.Popen(cmd, cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    if kill_after_s is not None:
        try:
            child.wait(timeout=kill_after_s)
        except subprocess.TimeoutExpired:
            child.send_signal(signal.SIGKILL)
    out, err = child.communicate(timeout=300)
    if child.returncode == -signal.SIGKILL:
        return None
    assert child.returncode == 0, err.decode()
    return json.loads(out.decode().strip().splitlines()[-1])


def _check_recovered(store: IncidentStore, fault_case: dict, label: str) -> str:
    state = _state(store)
    if _same(state, fault_case["before"]):
        outcome = "before"
    elif _same(state, fault_case["after"]):
        outcome = "after"
    else:
        pytest.fail(f"{label}: the store is neither the state before nor after the ingest")
    # the next writer cleans up whatever the killed one left, and its own write lands
    extra = fault_case["before"]["rows"].iloc[:1].assign(**{schema.INCIDENT_ID: "fault-extra"})
    store.upsert_batches([extra], source={"file": "extra.csv"})
    assert store.count() == len(state["rows"]) + 1, label
    assert not list((store.root / ".staging").glob("*")), label
    assert _unreferenced_files(store) == [], label
    return outcome


@pytest.mark.slow
def test_kill_at_every_write_step_leaves_before_or_after(fault_case):
    steps = [tuple(step) for step in fault_case["trace"]]
    names = {name for name, _ in steps}
    assert {"batch-staged", "staged", "partition-written", "before-commit", "committed"} <= names
    outcomes = {}
    for name, occurrence in steps:
        store = _copy(fault_case["base"], fault_case["root"] / "killed")
        result = _run_child(
            store,
            fault_case["work"],
            {"kind": "ingest", "batches": fault_case["names"]},
            kill_at=name,
            occurrence=occurrence,
        )
        assert result is None, f"the child was not killed at {name} #{occurrence}"
        outcomes[f"{name}#{occurrence}"] = _check_recovered(store, fault_case, name)
    # killed before the commit: nothing; killed after it: everything
    assert outcomes["before-commit#1"] == "before"
    assert outcomes["committed#1"] == "after"
    assert all(v == "before" for k, v in outcomes.items() if not k.startswith("committed"))
    counts = {o: list(outcomes.values()).count(o) for o in ("before", "after")}
    print(f"kill points tried: {len(outcomes)}; store equal to before {counts['before']}, "
          f"after {counts['after']}; rows lost: 0")  # fmt: skip


@pytest.mark.slow
def test_kill_at_random_moments_leaves_before_or_after(fault_case):
    # how long one ingest takes here, child start included, to spread the kills over it
    store = _copy(fault_case["base"], fault_case["root"] / "timing")
    t0 = time.perf_counter()
    _run_child(store, fault_case["work"], {"kind": "ingest", "batches": fault_case["names"]})
    duration = time.perf_counter() - t0
    rng = np.random.default_rng(12)
    outcomes = []
    for k in range(RANDOM_KILLS):
        store = _copy(fault_case["base"], fault_case["root"] / "random")
        delay = float(rng.uniform(0.3, 1.1) * duration)
        _run_child(
            store,
            fault_case["work"],
            {"kind": "ingest", "batches": fault_case["names"]},
            kill_after_s=delay,
        )
        outcomes.append(_check_recovered(store, fault_case, f"random kill {k} at {delay:.2f} s"))
    assert set(outcomes) <= {"before", "after"}
    print(f"random kills: {len(outcomes)} ({outcomes.count('before')} before, "
          f"{outcomes.count('after')} after); rows lost: 0")  # fmt: skip


@pytest.mark.slow
def test_kill_during_rollback_and_layer_write(fault_case):
    for kind, operation in (
        ("rollback", {"kind": "rollback", "version": 1}),
        ("layers", {"kind": "layers"}),
    ):
        points = ["before-commit", "committed"] if kind == "rollback" else [
            "layers-written", "layers-switched"]  # fmt: skip
        for point in points:
            store = _copy(fault_case["base"], fault_case["root"] / "killed-other")
            before = _state(store)
            assert (
                _run_child(store, fault_case["work"], operation, kill_at=point, occurrence=1)
                is None
            )
            state = _state(store)  # loads: the store is usable
            changed = not _same(state, before)
            assert changed == (point in ("committed", "layers-switched")), (kind, point)
            if kind == "layers" and changed:
                assert all(b.endswith("X") for b in state["beats"])
                # the districts of the same generation are there too
                assert len(store.read_layer("districts")) == len(
                    fault_case["base"].read_layer("districts")
                )


def test_two_writers_at_once_lose_nothing(fault_case):
    store = _copy(fault_case["base"], fault_case["root"] / "concurrent")
    rows = fault_case["before"]["rows"]
    works = []
    for k in range(2):
        work = fault_case["root"] / f"writer{k}"
        work.mkdir(exist_ok=True)
        batch = rows.iloc[:300].assign(**{schema.INCIDENT_ID: [f"w{k}-{i}" for i in range(300)]})
        batch.to_parquet(work / "batch.parquet")
        (work / "operation.json").write_text(
            json.dumps({"kind": "ingest", "batches": ["batch.parquet"]})
        )
        works.append(work)
    children = [
        subprocess.Popen(
            [sys.executable, "-c", CHILD, str(store.root), str(work), "", "0"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
        )
        for work in works
    ]
    for child in children:
        _, err = child.communicate(timeout=300)
        assert child.returncode == 0, err.decode()
    ids = set(store.load_incidents(columns=[schema.INCIDENT_ID])[schema.INCIDENT_ID])
    assert {f"w{k}-{i}" for k in range(2) for i in range(300)} <= ids
    assert store.count() == len(rows) + 600
    versions = store.history()
    assert [v.operation for v in versions[:2]] == ["ingest", "ingest"]
    assert sorted(v.rows_new for v in versions[:2]) == [300, 300]
    assert os.path.exists(store.root / ".incidents.lock")
