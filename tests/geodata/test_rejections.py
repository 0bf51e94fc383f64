"""Rejected rows on disk (geodata.rejections) give the reports rejected rows in memory give.

Past :data:`geodata.rejections.REJECTED_HOLD` rows a log writes its rows to disk. Here the
limit is made tiny and the ingest of real files (the bundled Chicago exports, the bad-row
corpus, a Chicago export whose every date is unreadable, the Minneapolis CAD export) must
write the same rejections file byte for byte, the same counts and the same hint.
"""

from __future__ import annotations

import gc
import pickle
import shutil
import tempfile
from pathlib import Path

import pandas as pd
import pytest

from geodata import rejections
from geodata.exports import write_csv
from geodata.ingest import ingest_file
from geodata.readers import rejection_frame
from geodata.rejections import RejectionLog
from geodata.store import IncidentStore
from tests.conftest import SAMPLES

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"


def _rows(lines: list[int], reasons: list[str]) -> pd.DataFrame:
    """Rejected rows as a reader gives them (the rejection frame's columns and dtypes)."""
    return rejection_frame(
        [
            {"source": "f.csv", "line": line, "column": "date", "value": f"v{line}", "reason": r}
            for line, r in zip(lines, reasons, strict=True)
        ]
    )


def _batches() -> list[pd.DataFrame]:
    """Five batches in file order, rows out of order within a batch; three reasons, 4 rows each.

    The tie makes the order of the counts depend on where each reason first appears: ``a, b,
    c`` by line, ``b, a, c`` as added.
    """
    return [
        _rows([3, 2], ["b", "a"]),
        _rows([5, 4, 6], ["c", "c", "a"]),
        _rows([8], ["b"]),
        _rows([9, 10, 11], ["c", "c", "b"]),
        _rows([12, 13, 14], ["a", "b", "a"]),
    ]


@pytest.mark.parametrize("by_line", [True, False])
@pytest.mark.parametrize("hold", [0, 2, 5, 1_000])
def test_a_log_on_disk_answers_as_the_rows_in_memory(
    by_line: bool, hold: int, tmp_path: Path
) -> None:
    batches = _batches()
    expected = pd.concat(batches, ignore_index=True)
    if by_line:
        expected = expected.sort_values("line", kind="stable").reset_index(drop=True)
    log = RejectionLog(by_line=by_line, hold=hold)
    log.extend(batches)
    assert len(log) == 12
    assert log.spilled == (hold < 12)
    pd.testing.assert_frame_equal(log.frame(), expected)
    counts = log.counts()
    pd.testing.assert_series_equal(counts, expected["reason"].value_counts())
    assert counts.to_dict() == {"a": 4, "b": 4, "c": 4}
    assert log.values("b", 3).tolist() == ["v3", "v8", "v11"]
    assert log.values("a", 9).tolist() == ["v2", "v6", "v12", "v14"]
    written = log.write_csv(tmp_path / "rejected.csv").read_bytes()
    assert written == write_csv(expected, tmp_path / "reference.csv").read_bytes()
    assert written.count(b"\n") == 13


def test_a_batch_that_comes_back_to_an_earlier_line_is_still_written_in_line_order(
    tmp_path: Path,
) -> None:
    log = RejectionLog(by_line=True, hold=1)
    log.extend([_rows([10, 11], ["a", "a"]), _rows([2, 3], ["b", "a"]), _rows([12], ["b"])])
    assert log.frame()["line"].tolist() == [2, 3, 10, 11, 12]
    assert log.counts().to_dict() == {"a": 3, "b": 2}
    assert log.values("b", 5).tolist() == ["v2", "v12"]
    text = log.write_csv(tmp_path / "r.csv").read_text().splitlines()
    assert [row.split(",")[1] for row in text[1:]] == ["2", "3", "10", "11", "12"]


def test_a_log_travels_with_its_rows_and_leaves_no_files_behind() -> None:
    log = RejectionLog(by_line=True, hold=2)
    log.extend(_batches())
    folder = log._folder
    assert folder is not None
    assert len(list(folder.iterdir())) >= 2
    copy = pickle.loads(pickle.dumps(log))  # a Dask worker's log reaching the client
    pd.testing.assert_frame_equal(copy.frame(), log.frame())
    assert copy._folder != folder
    del log
    assert not folder.exists()
    copy_folder = copy._folder
    assert copy_folder is not None
    assert copy_folder.exists()
    copy.close()  # as an ingest does once its report is written
    assert not copy_folder.exists()
    assert len(copy) == 0
    empty = RejectionLog(by_line=True)
    pd.testing.assert_frame_equal(empty.frame(), rejection_frame())
    assert empty.counts().empty


def _unreadable_dates(path: Path) -> Path:
    """The bundled 2018 export with every date replaced by text no format reads."""
    raw = pd.read_csv(SAMPLES / "incidents_2018-01_dense.csv.gz", dtype=str, keep_default_na=False)
    raw["Date"] = "31/31/2018 25:61"
    raw.to_csv(path, index=False)
    return path


def test_an_ingest_with_its_rejected_rows_on_disk_reports_what_one_in_memory_reports(
    sample_store: IncidentStore, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    files = [
        *sorted(SAMPLES.glob("incidents_*.csv.gz")),
        BAD / "bad_rows.csv",
        BAD / "multiline_quoted.csv",
        BAD / "ragged_rows.csv",  # read again once its ragged records are found
        _unreadable_dates(tmp_path / "unreadable_dates.csv"),
    ]
    base = tmp_path / "base"
    shutil.copytree(sample_store.root, base)

    def ingest_all(name: str) -> list[tuple[object, ...]]:
        store = IncidentStore(shutil.copytree(base, tmp_path / name))
        out = []
        for path in files:
            report = ingest_file(path, store, block_bytes=1 << 16)
            out.append(
                (
                    report.rows_read,
                    report.rows_accepted,
                    report.rows_rejected,
                    list(report.rejected_by_reason.items()),
                    report.hint,
                    Path(report.rejections_csv or "").read_bytes(),
                )
            )
        return out

    expected = ingest_all("memory")
    monkeypatch.setattr(rejections, "REJECTED_HOLD", 3)
    scratch = tmp_path / "tmp"
    scratch.mkdir()
    monkeypatch.setattr(tempfile, "tempdir", str(scratch))  # where the rows wait
    gc.disable()  # a log left to the garbage collector would be found below
    try:
        got = ingest_all("disk")
    finally:
        gc.enable()
    assert got == expected
    left = list(scratch.glob("beatwise-rejected-*"))
    assert not left, left  # every ingest deleted its rows on disk when it ended
    read, accepted, rejected, reasons, hint, text = expected[-1]
    assert (accepted, rejected) == (0, read)
    assert read > 3
    assert reasons[0][0] == "unparseable date"
    assert sum(n for _, n in reasons) == read
    assert hint is not None
    assert "31/31/2018 25:61" in hint
    assert text.count(b"\n") == read + 1


def test_a_cad_export_with_its_rejected_rows_on_disk_is_reported_the_same(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The bundled CAD export, whose 18 rejected calls come in several batches."""
    from geodata.boundaries import read_beats
    from geodata.calls import CallMapping, ingest_calls
    from tests.analysis.test_calls import MPLS, RAW

    beats = read_beats(MPLS / "sectors_from_calls.geojson")
    crs = beats.estimate_utm_crs()
    mapping = CallMapping.from_file(MPLS / "calls_mapping.toml")

    def ingest(name: str) -> tuple[int, int, dict[str, int], bytes]:
        store = IncidentStore(tmp_path / name)
        store.initialize(analysis_crs=crs.to_string(), timezone="America/Chicago")
        store.write_layer("beats", beats.to_crs(crs))
        report = ingest_calls(RAW, store, mapping=mapping, block_bytes=1 << 16)
        text = Path(report.rejections_csv).read_bytes()
        return report.rows_read, report.rows_rejected, report.rejected_by_reason, text

    expected = ingest("memory")
    monkeypatch.setattr(rejections, "REJECTED_HOLD", 2)
    assert ingest("disk") == expected
    assert expected[1] == 18
    assert expected[3].count(b"\n") == 19
