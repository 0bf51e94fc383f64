"""Ids on disk (geodata._idspill) decide what ids in memory decide, on real incidents.

A write whose ids pass :data:`geodata.table.ID_HOLD` keeps them on disk by hash partition; a
reader that reads a large file keeps in its id table only the ids that occur twice in the file.
Both are run here with tiny thresholds on the bundled Chicago store and exports, and must give
the same store, counts and rejections as the in-memory path.
"""

from __future__ import annotations

import shutil
from collections.abc import Iterable
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from geodata import _idspill, readers, schema
from geodata import table as table_module
from geodata._idkernel import IdTable
from geodata._idspill import SpilledIds, repeated_keys
from geodata.ingest import ingest_file
from geodata.store import IncidentStore
from tests.conftest import SAMPLES, copy_store


def test_repeated_keys_are_the_keys_seen_twice() -> None:
    rng = np.random.default_rng(3)
    keys = rng.integers(1, 2**63, size=50_000, dtype=np.int64).astype(np.uint64)
    keys[rng.integers(0, keys.size, 700)] = keys[rng.integers(0, keys.size, 700)]
    keys[:10] = keys[10]  # one key eleven times
    chunks = np.array_split(keys, 7)
    values, counts = np.unique(keys, return_counts=True)
    np.testing.assert_array_equal(repeated_keys(chunks), values[counts > 1])
    assert repeated_keys([]).size == 0


def _the_ingest(store: IncidentStore) -> list[pd.DataFrame]:
    """New rows, stored rows with a new offense, and stored rows moved to another month."""
    incidents = store.load_incidents()
    local = incidents[schema.OCCURRED_AT]
    january = incidents[(local.dt.year == 2018) & (local.dt.month == 1)]
    recent = incidents[local.dt.year >= 2024]
    renamed = january.iloc[:40].assign(**{schema.OFFENSE: "REPLACED"})
    moved = recent.iloc[:30].copy()
    moved[schema.OCCURRED_AT] = moved[schema.OCCURRED_AT] - pd.Timedelta(days=400)
    new = january.iloc[40:240].copy()
    new[schema.INCIDENT_ID] = new[schema.INCIDENT_ID].astype(str) + "-new"
    return [new.iloc[:120], renamed, moved, new.iloc[120:]]


def test_a_write_with_its_ids_on_disk_stores_what_one_in_memory_stores(
    sample_store: IncidentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    memory = copy_store(sample_store, tmp_path / "memory")
    disk = copy_store(sample_store, tmp_path / "disk")
    batches = _the_ingest(sample_store)
    expected = memory.upsert_batches(batches, source={"file": "mixed.csv"})
    assert expected == (200, 70)

    calls = []
    rows_in = SpilledIds.rows_in

    def spy(self: SpilledIds, *args: object, **kwargs: object) -> object:
        calls.append(len(self))
        return rows_in(self, *args, **kwargs)

    monkeypatch.setattr(SpilledIds, "rows_in", spy)
    monkeypatch.setattr(table_module, "ID_HOLD", 50)
    assert disk.upsert_batches(batches, source={"file": "mixed.csv"}) == expected
    assert calls == [270]  # the write's 270 ids were on disk
    assert not any(disk.root.rglob("ids-*.arrows"))  # nothing left behind

    def rows(store: IncidentStore) -> pd.DataFrame:
        frame = store.load_incidents()
        return frame.sort_values(schema.INCIDENT_ID).reset_index(drop=True)

    pd.testing.assert_frame_equal(rows(disk), rows(memory))
    assert (rows(disk)[schema.OFFENSE] == "REPLACED").sum() == 40


def test_an_id_twice_in_a_write_with_its_ids_on_disk_writes_nothing(
    writable_store: IncidentStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(table_module, "ID_HOLD", 1)
    before = writable_store.history()
    rows = writable_store.load_incidents().head(3)
    with pytest.raises(ValueError, match="occur more than once"):
        writable_store.upsert_batches([rows, rows.head(1)])
    assert len(writable_store.history()) == len(before)


def _prescan_every_file(monkeypatch: pytest.MonkeyPatch) -> list[int]:
    """Make every reader find its repeated ids first; return, per file, how many it found."""
    prescans: list[int] = []
    original = _idspill.repeated_keys

    def counted(chunks: Iterable[np.ndarray], scratch: Path | None = None) -> np.ndarray:
        found = original(chunks, scratch)
        prescans.append(found.size)
        return found

    monkeypatch.setattr(readers, "repeated_keys", counted)  # readers.id_table's, for both kinds
    monkeypatch.setattr(readers, "PRESCAN_IDS_ROWS", 0)
    return prescans


def test_a_large_file_read_with_its_repeated_ids_found_first_is_read_the_same(
    sample_store: IncidentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundled exports and the bad-row corpus (with repeated ids), in small batches."""
    bad = Path(__file__).resolve().parents[1] / "data" / "bad"
    files = [
        *sorted(SAMPLES.glob("incidents_*.csv.gz")),
        *(bad / name for name in ("bad_rows.csv", "multiline_quoted.csv", "ragged_rows.csv")),
    ]
    base = tmp_path / "base"
    shutil.copytree(sample_store.root, base)

    def ingest_all(name: str) -> tuple[list[tuple[int, int, int, str]], pd.DataFrame]:
        store = IncidentStore(shutil.copytree(base, tmp_path / name))
        out = []
        for path in files:
            try:
                report = ingest_file(path, store, block_bytes=1 << 16)
            except Exception as err:  # a refused file is refused the same way
                out.append((-1, -1, -1, type(err).__name__))
                continue
            rejected = pd.read_csv(report.rejections_csv)
            out.append(
                (
                    report.rows_read,
                    report.rows_accepted,
                    report.rows_rejected,
                    rejected.to_csv(index=False),
                )
            )
        frame = store.load_incidents().sort_values(schema.INCIDENT_ID).reset_index(drop=True)
        return out, frame

    expected = ingest_all("memory")
    prescans = _prescan_every_file(monkeypatch)
    got = ingest_all("disk")
    assert len(prescans) >= len(files)
    assert any(prescans)  # some file repeats ids
    assert got[0] == expected[0]
    pd.testing.assert_frame_equal(got[1], expected[1])
    assert any("duplicate" in text for *_, text in expected[0])


def test_an_id_table_limited_to_the_repeated_ids_answers_as_the_whole_one() -> None:
    rng = np.random.default_rng(11)
    keys = rng.integers(1, 2**63, size=20_000, dtype=np.int64).astype(np.uint64)
    keys[rng.integers(0, keys.size, 300)] = keys[rng.integers(0, keys.size, 300)]
    lines = np.arange(2, keys.size + 2)
    whole, limited = IdTable(16), IdTable(16, only=repeated_keys([keys]))
    for a in range(0, keys.size, 3_000):
        np.testing.assert_array_equal(
            limited.add(keys[a : a + 3_000], lines[a : a + 3_000]),
            whole.add(keys[a : a + 3_000], lines[a : a + 3_000]),
        )
    assert limited.nbytes < whole.nbytes / 10


def test_a_large_cad_export_read_with_its_repeated_ids_found_first_is_stored_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundled CAD export with 25 calls given twice, in small batches, ids on disk too."""
    from geodata.boundaries import read_beats
    from geodata.calls import CallMapping, ingest_calls, load_calls
    from tests.analysis.test_calls import MPLS, RAW

    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False).head(3_000)
    export = tmp_path / "calls.csv"
    pd.concat([raw, raw.iloc[100:125]]).to_csv(export, index=False)
    beats = read_beats(MPLS / "sectors_from_calls.geojson")
    crs = beats.estimate_utm_crs()
    mapping = CallMapping.from_file(MPLS / "calls_mapping.toml")

    def ingest(name: str) -> tuple[tuple[int, int, int, int], str, pd.DataFrame]:
        store = IncidentStore(tmp_path / name)
        store.initialize(analysis_crs=crs.to_string(), timezone="America/Chicago")
        store.write_layer("beats", beats.to_crs(crs))
        report = ingest_calls(export, store, mapping=mapping, block_bytes=1 << 16)
        counts = (report.rows_read, report.rows_accepted, report.rows_rejected, report.rows_new)
        stored = load_calls(store).sort_values("call_id").reset_index(drop=True)
        return counts, Path(report.rejections_csv).read_text(), stored

    expected = ingest("memory")
    read, accepted, rejected, new = expected[0]
    assert (read, accepted + rejected, new) == (3_025, 3_025, accepted)
    assert expected[1].count("duplicate call id") == 25
    prescans = _prescan_every_file(monkeypatch)
    monkeypatch.setattr(table_module, "ID_HOLD", 500)
    got = ingest("disk")
    assert prescans == [25]
    assert got[0] == expected[0]
    assert got[1] == expected[1]
    pd.testing.assert_frame_equal(got[2], expected[2])
