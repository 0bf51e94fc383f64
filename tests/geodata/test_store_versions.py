"""The store's versions (history, rollback, migration) and area filters pushed into the read."""

from __future__ import annotations

import itertools
import json
import subprocess
import sys
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest

from geodata import schema
from geodata.errors import StoreError
from geodata.store import STORE_VERSION, IncidentStore

REPO = Path(__file__).resolve().parents[2]
SAMPLE_FILES = [
    "incidents_2018-01_dense.csv.gz",
    "incidents_2023-2024_sample_a.csv.gz",
    "incidents_2024_sample_b.csv.gz",
]


def _ids(store: IncidentStore) -> set[str]:
    return set(store.load_incidents(columns=[schema.INCIDENT_ID])[schema.INCIDENT_ID])


def test_every_ingest_is_one_version_with_its_summary(sample_store):
    versions = sample_store.history()
    assert [v.operation for v in versions] == ["ingest", "ingest", "ingest", "create"]
    assert [v.version for v in versions] == [3, 2, 1, 0]
    assert versions[0].is_current
    assert all(v.is_active for v in versions)
    reports = sample_store.build_reports
    newest_first = list(reversed(reports))
    assert [Path(v.file).name for v in versions[:3]] == list(reversed(SAMPLE_FILES))
    assert [v.rows_new for v in versions[:3]] == [r.rows_new for r in newest_first]
    assert [v.rows_replaced for v in versions[:3]] == [r.rows_replaced for r in newest_first]
    # the 49 ids shared by the two 2023-2024 files are replaced by the last file
    assert versions[0].rows_replaced == 49
    assert [v.rows for v in versions] == [36_212, 36_212 - 9_681, 17_038, 0]
    meta = sample_store.meta()
    assert [Path(s["file"]).name for s in meta["sources"]] == SAMPLE_FILES
    assert meta["n_incidents"] == sample_store.count() == 36_212
    assert meta["sources"][0]["rows_read"] == 17_198


def test_rollback_restores_a_version_and_can_be_undone(writable_store):
    store = writable_store
    all_ids = _ids(store)
    after_first = _ids_at(store, 1)
    restored = store.rollback(1)
    assert restored.version == 4
    assert restored.operation == "rollback"
    assert restored.restored == 1
    assert store.count() == restored.rows == 17_038
    assert _ids(store) == after_first
    versions = store.history()
    assert [v.is_active for v in versions] == [True, False, False, True, True]
    assert [Path(s["file"]).name for s in store.meta()["sources"]] == SAMPLE_FILES[:1]
    # undo the rollback: back to the content of version 3
    store.rollback(3)
    assert _ids(store) == all_ids
    assert len(store.meta()["sources"]) == 3
    # a new ingest after a rollback builds on the restored state
    store.rollback(2)
    extra = store.load_incidents().head(2).assign(**{schema.INCIDENT_ID: ["x1", "x2"]})
    assert store.upsert(extra) == (2, 0)
    assert store.count() == 36_212 - 9_681 + 2
    with pytest.raises(StoreError, match="versions 0 to 7, not 99"):
        store.rollback(99)


def _ids_at(store: IncidentStore, version: int) -> set[str]:
    from deltalake import DeltaTable

    files = DeltaTable(str(store.incidents_dir), version=version).file_uris()
    return set(pq.read_table(files, columns=[schema.INCIDENT_ID]).column(0).to_pylist())


@pytest.mark.slow
def test_cli_history_and_rollback(writable_store):
    def run(*args: str) -> subprocess.CompletedProcess:
        cmd = [sys.executable, "-m", "geodata", *args, "--store", str(writable_store.root)]
        return subprocess.run(cmd, cwd=REPO, capture_output=True, text=True, check=False)

    listed = json.loads(run("history", "--json").stdout)
    assert [v["version"] for v in listed] == [3, 2, 1, 0]
    assert listed[0]["rows_new"] == 9_681
    assert listed[0]["rows_replaced"] == 49
    done = run("rollback", "2")
    assert done.returncode == 0, done.stderr
    assert "version 4 restores the incidents of version 2 (26,531 incidents)" in done.stdout
    calls = run("history", "--kind", "calls")
    assert "(calls): 0 versions" in calls.stdout
    text = run("history").stdout
    assert "* " in text
    assert "(undone)" in text
    assert "content of version 2" in text
    bad = run("rollback", "12")
    assert bad.returncode == 2
    assert "has versions 0 to 4, not 12" in bad.stderr


def test_duplicate_ids_across_batches_write_nothing(writable_store):
    before = writable_store.history()
    rows = writable_store.load_incidents().head(3)
    with pytest.raises(ValueError, match="occur more than once"):
        writable_store.upsert_batches([rows, rows.head(1)])
    assert len(writable_store.history()) == len(before)
    assert writable_store.count() == 36_212


@pytest.mark.slow
def test_old_parquet_layout_is_refused_then_migrated(sample_store, tmp_path):
    root = tmp_path / "old"
    tz = sample_store.timezone
    incidents = sample_store.load_incidents()
    local = incidents[schema.OCCURRED_AT]
    # the layout of store version 1: incidents/year=YYYY/month=MM/data.parquet + flat layers
    import pyarrow as pa

    from geodata.store import _arrow_schema

    for (year, month), part in incidents.groupby([local.dt.year, local.dt.month]):
        path = root / "incidents" / f"year={year:04d}" / f"month={month:02d}" / "data.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            pa.Table.from_pandas(part, schema=_arrow_schema(tz), preserve_index=False), path
        )
    (root / "boundaries").mkdir()
    sample_store.read_layer("beats").to_parquet(root / "boundaries" / "beats.parquet")
    sources = [{"file": "old.csv", "rows_read": 36_212}]
    meta = {"version": 1, "analysis_crs": sample_store.analysis_crs, "timezone": tz,
            "sources": sources, "department": {"name": "Test PD"}}  # fmt: skip
    (root / "meta.json").write_text(json.dumps(meta))
    old = IncidentStore(root)
    with pytest.raises(StoreError, match=r"old layout.*python -m geodata migrate"):
        old.load_incidents()
    done = subprocess.run(
        [sys.executable, "-m", "geodata", "migrate", "--store", str(root)],
        cwd=REPO, capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "36,212 incidents" in done.stdout
    store = IncidentStore(root)
    assert store.meta()["version"] == STORE_VERSION
    assert store.meta()["sources"] == sources
    assert store.meta()["department"] == {"name": "Test PD"}
    assert not (root / "incidents").exists()
    got = store.load_incidents().sort_values(schema.INCIDENT_ID).reset_index(drop=True)
    want = incidents.sort_values(schema.INCIDENT_ID).reset_index(drop=True)
    pd.testing.assert_frame_equal(got, want)
    assert len(store.read_layer("beats")) == len(sample_store.read_layer("beats"))
    with pytest.raises(StoreError, match="already has the current layout"):
        store.migrate()


def test_area_filters_equal_filtering_after_loading(sample_store):
    wanted = [schema.INCIDENT_ID, schema.BEAT, schema.SECTOR, schema.OCCURRED_AT]
    everything = sample_store.load_incidents(columns=wanted)
    busiest = everything[schema.BEAT].value_counts().index[:2].tolist()
    one = sample_store.load_incidents(columns=[schema.INCIDENT_ID, schema.BEAT], beats=busiest)
    expected = everything[everything[schema.BEAT].isin(busiest)]
    assert set(one[schema.INCIDENT_ID]) == set(expected[schema.INCIDENT_ID])
    assert len(one) == len(expected) > 0
    sector = busiest[0][:3]
    by_sector = sample_store.load_incidents(
        columns=[schema.INCIDENT_ID], where={schema.SECTOR: [sector]},
        start="2024-01-01", end="2024-07-01",
    )  # fmt: skip
    local = everything[schema.OCCURRED_AT].dt.tz_localize(None)
    mask = (everything[schema.SECTOR] == sector) & (local >= "2024-01-01") & (local < "2024-07-01")
    assert set(by_sector[schema.INCIDENT_ID]) == set(everything.loc[mask, schema.INCIDENT_ID])
    assert sample_store.load_incidents(beats=["no-such-beat"]).empty
    with pytest.raises(ValueError, match="string columns"):
        sample_store.load_incidents(where={schema.X: ["1"]})


def test_count_by_with_area_filter_equals_pandas(sample_store):
    frame = sample_store.load_incidents(columns=[schema.BEAT, schema.OFFENSE, schema.OCCURRED_AT])
    beats = frame[schema.BEAT].value_counts().index[:3].tolist()
    got = sample_store.count_by([schema.BEAT, schema.OFFENSE], beats=beats, start="2024-03-15")
    local = frame[schema.OCCURRED_AT]
    keep = frame[
        frame[schema.BEAT].isin(beats) & (local >= pd.Timestamp("2024-03-15", tz=local.dt.tz))
    ]
    want = (
        keep.groupby([keep[schema.OCCURRED_AT].dt.year.rename("year"),
                      keep[schema.OCCURRED_AT].dt.month.rename("month"),
                      keep[schema.BEAT].astype(str), keep[schema.OFFENSE].astype(str)])
        .size().rename("incidents").reset_index()
    )  # fmt: skip
    key = ["year", "month", schema.BEAT, schema.OFFENSE]
    got = got.astype({schema.BEAT: str, schema.OFFENSE: str}).sort_values(key)
    want = want.sort_values(key)
    assert got["incidents"].sum() == len(keep) > 0
    pd.testing.assert_frame_equal(
        got.reset_index(drop=True), want.reset_index(drop=True), check_dtype=False
    )


def test_rows_are_clustered_by_area_so_beat_filters_skip_row_groups(writable_store, monkeypatch):
    from geodata import table

    # small row groups, so that January 2018 (17,038 rows) is cut into many of them on rewrite
    monkeypatch.setattr(table, "ROW_GROUP_ROWS", 2000)
    store = writable_store
    january = store.load_incidents(start="2018-01-01", end="2018-02-01")
    assert store.upsert(january.head(1)) == (0, 1)  # rewrites the month
    path = next(f for f in store.incident_files() if "year=2018/month=1/" in f.as_posix())
    meta = pq.ParquetFile(path).metadata
    beat = meta.schema.to_arrow_schema().get_field_index(schema.BEAT)
    ranges = []
    for i in range(meta.num_row_groups):
        stats = meta.row_group(i).column(beat).statistics
        ranges.append((stats.min, stats.max))
    assert meta.num_row_groups == 9
    # sorted by district, sector, beat: the groups' beat ranges follow each other, so a beat
    # filter reads one or two of the nine groups
    assert all(a[1] <= b[0] for a, b in itertools.pairwise(ranges))
    one_beat = ranges[4][1]
    assert sum(low <= one_beat <= high for low, high in ranges) <= 2
    got = store.load_incidents(columns=[schema.INCIDENT_ID], beats=[one_beat],
                               start="2018-01-01", end="2018-02-01")  # fmt: skip
    assert len(got) == (january[schema.BEAT] == one_beat).sum() > 0


def test_layers_are_written_as_one_generation(writable_store):
    store = writable_store
    beats = store.read_layer("beats")
    token = store.version_token()
    store.write_layers({"beats": beats.head(10), "districts": store.read_layer("districts")})
    assert len(store.read_layer("beats")) == 10
    assert len(store.read_layer("stations")) > 0  # kept from the previous generation
    assert store.version_token() != token
    generations = [p for p in (store.root / "boundaries").iterdir() if p.is_dir()]
    assert len(generations) <= 2


def test_a_second_record_kind_is_a_second_table_with_the_same_code(tmp_path):
    """Calls for service (issue 16) as a table of their own: real Minneapolis CAD rows."""
    from geodata import calls
    from geodata.table import RecordTable, TableSpec

    raw = pd.read_csv(
        REPO / "geodata" / "samples" / "minneapolis" / "mpd_cad_2020-06-21_to_2020-07-13.csv.gz",
        dtype=str,
        nrows=3000,
    )
    tz = "America/Chicago"

    def when(column: str) -> pd.Series:
        return pd.to_datetime(raw[column]).dt.tz_localize(tz, ambiguous="NaT")

    frame = pd.DataFrame(
        {
            calls.CALL_ID: raw["Master_Incident_Number"],
            calls.CALL_TYPE: raw["Problem"],
            calls.PRIORITY: raw["Priority_Number"],
            calls.RECEIVED_AT: when("Time_PhonePickUp"),
            calls.DISPATCHED_AT: when("Time_First_Unit_Assigned"),
            calls.ARRIVED_AT: when("Time_First_Unit_Arrived"),
            calls.CLOSED_AT: when("TimeFirstCallCleared"),
            calls.UNITS: pd.array([1] * len(raw), dtype="Int64"),
            calls.DISPOSITION: raw["Call_Disposition"],
            schema.SECTOR: raw["Battalion"],
        }
    )
    frame, _ = calls.derive_intervals(frame)
    spec = TableSpec(
        kind="calls",
        columns={**calls.CALL_COLUMNS, schema.SECTOR: "string"},
        id_column=calls.CALL_ID,
        time_column=calls.RECEIVED_AT,
        sort_columns=(schema.SECTOR, calls.RECEIVED_AT),
        stats_columns=(calls.CALL_ID, schema.SECTOR),
    )
    table = RecordTable(tmp_path, spec, tz)
    half = len(frame) // 2
    assert table.upsert_batches([frame.iloc[:half]], source={"file": "a.csv"})[:2] == (half, 0)
    assert table.upsert_batches([frame.iloc[half - 10 :]], source={"file": "b.csv"})[:2] == (
        len(frame) - half,
        10,
    )
    assert (tmp_path / "tables" / "calls" / "_delta_log").is_dir()
    got = (
        table.read(list(spec.columns))
        .to_pandas(coerce_temporal_nanoseconds=True)
        .set_index(calls.CALL_ID)
    )
    assert len(got) == len(frame)
    want = frame.set_index(calls.CALL_ID).loc[got.index]
    for column in calls.CALL_TIMES:
        pd.testing.assert_series_equal(got[column], want[column])
    assert got[calls.UNITS].sum() == len(frame)
    assert got[calls.TIME_ON_TASK_MIN].astype(float).sum() == pytest.approx(
        want[calls.TIME_ON_TASK_MIN].sum()
    )
    sector = frame[schema.SECTOR].value_counts().index[0]
    counts = table.count_by([calls.CALL_TYPE], where={schema.SECTOR: [sector]})
    assert counts["incidents"].sum() == (frame[schema.SECTOR] == sector).sum()
    assert [v.operation for v in table.history()] == ["ingest", "ingest", "create"]
    table.rollback(1)
    assert table.count() == half
