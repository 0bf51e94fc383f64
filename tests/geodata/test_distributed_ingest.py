"""An ingest on a two-worker Dask LocalCluster stores what the single-machine ingest stores.

Each export is ingested twice into copies of the same beats-only store, once by
:func:`geodata.ingest.ingest_file` and once by :func:`geodata.distributed_ingest.ingest_files`
with the file cut into several parts; the stored rows, the beat counts, the rejections (line,
column, value, reason), the disagreements and the report must be equal. The bad-row file of
the bad-input corpus is also checked against the counts and lines ``tests/data/bad/cases.toml``
gives for it.
"""

from __future__ import annotations

import argparse
import contextlib
import gzip
import itertools
import json
import logging
import pickle
import shutil
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from geodata.dates import dates_note, formats_of_dates_note
from geodata.department import load_department
from geodata.distributed_ingest import _owned, ingest_files, plan_parts
from geodata.errors import InputError
from geodata.ingest import (
    BatchTally,
    JoinedPart,
    PartOfFile,
    ingest_file,
    ingest_joined_parts,
    install_department,
)
from geodata.readers import (
    ColumnMapping,
    duplicate_ids,
    duplicate_value,
    iter_incidents,
)
from geodata.store import IncidentStore
from tests.conftest import reuse_beat_index

BAD = Path(__file__).resolve().parents[1] / "data" / "bad"
NOW = datetime(2026, 12, 1, tzinfo=UTC)
#: Report fields that name files written with a time stamp (their contents are compared).
PATHS = ("rejections_csv", "disagreements_csv")


def _beats_only(folder: Path, name: str, index_of: IncidentStore | None = None) -> IncidentStore:
    department = load_department(name)
    store = IncidentStore(folder / "store")
    install_department(store, department)
    if index_of is not None:  # the same beats: its saved index, not a new rasterisation
        reuse_beat_index(store, index_of)
    store.beat_index(tolerance_m=department.edge_tolerance_m)  # kept: copies read it
    return store


@pytest.fixture(scope="module")
def chicago(tmp_path_factory, sample_store) -> IncidentStore:
    return _beats_only(tmp_path_factory.mktemp("chicago"), "chicago", sample_store)


@pytest.fixture(scope="module")
def seattle(tmp_path_factory) -> IncidentStore:
    return _beats_only(tmp_path_factory.mktemp("seattle"), "seattle")


@pytest.fixture(scope="module")
def exports(tmp_path_factory, samples_dir) -> dict[str, Path]:
    """Plain CSV copies of bundled files (a ``.gz`` is read whole) and variants of them."""
    folder = tmp_path_factory.mktemp("exports")
    out = {}
    for name, source in [
        ("chicago.csv", samples_dir / "incidents_2018-01_dense.csv.gz"),
        ("seattle.csv", samples_dir.parent / "seattle" / "spd_crime_2018.csv.gz"),
    ]:
        with gzip.open(source, "rb") as packed, open(folder / name, "wb") as plain:
            shutil.copyfileobj(packed, plain)
        out[name] = folder / name
    raw = pd.read_csv(out["chicago.csv"], dtype=str, keep_default_na=False)
    state_plane = folder / "state_plane.csv"
    raw.drop(columns=["Latitude", "Longitude", "Location"]).to_csv(state_plane, index=False)
    out["state_plane.csv"] = state_plane
    # ids of the first rows again near the end: one twice, so the later copy is rejected
    # by its own part's reader and must point at the first part's line
    located = raw[raw["Latitude"] != ""].reset_index(drop=True)
    repeats = pd.concat(
        [located, located.iloc[[0, 3, 0]], located.iloc[[5]].assign(Date="")], ignore_index=True
    )
    repeated = folder / "repeated_ids.csv"
    repeats.to_csv(repeated, index=False)
    out["repeated_ids.csv"] = repeated
    return out


def _twice(store: IncidentStore, tmp_path: Path, client, path: Path, **options):
    """Ingest `path` on one machine and on the cluster; return both stores and reports.

    The cluster's ingest must not have fallen back to this machine (it logs when it does).
    """
    local = IncidentStore(tmp_path / "local")
    remote = IncidentStore(tmp_path / "remote")
    shutil.copytree(store.root, local.root)
    shutil.copytree(store.root, remote.root)
    part_bytes = options.pop("part_bytes")
    single = ingest_file(path, local, now=NOW, **options)
    with _no_fallback():
        (distributed,) = ingest_files(
            [path], remote, client, now=NOW, part_bytes=part_bytes, **options
        )
    return local, single, remote, distributed


@contextlib.contextmanager
def _no_fallback():
    """Fail if the distributed ingest read a file on this machine instead of the workers."""
    warnings: list[logging.LogRecord] = []
    handler = logging.Handler(logging.WARNING)
    handler.emit = warnings.append  # type: ignore[method-assign]
    logger = logging.getLogger("geodata.distributed_ingest")
    logger.addHandler(handler)
    try:
        yield
    finally:
        logger.removeHandler(handler)
    assert not warnings, [w.getMessage() for w in warnings]


def _assert_same(local, single, remote, distributed) -> None:
    """Assert equal reports, rejections, disagreements and stored rows."""
    expected = {k: v for k, v in single.as_dict().items() if k not in PATHS}
    got = {k: v for k, v in distributed.as_dict().items() if k not in PATHS}
    assert got == expected
    assert single.rows_read == single.rows_accepted + single.rows_rejected
    for key in PATHS:
        if getattr(single, key) is None:
            assert getattr(distributed, key) is None
            continue
        pd.testing.assert_frame_equal(
            pd.read_csv(getattr(distributed, key), dtype=str, keep_default_na=False),
            pd.read_csv(getattr(single, key), dtype=str, keep_default_na=False),
        )
    stored = remote.load_incidents().sort_values("incident_id").reset_index(drop=True)
    wanted = local.load_incidents().sort_values("incident_id").reset_index(drop=True)
    assert len(wanted) == single.rows_accepted
    pd.testing.assert_frame_equal(pd.DataFrame(stored), pd.DataFrame(wanted))
    assert stored["beat"].value_counts().to_dict() == wanted["beat"].value_counts().to_dict()
    assert remote.count() == local.count()


@pytest.mark.slow
@pytest.mark.parametrize(
    ("name", "part_bytes", "mapping"),
    [
        ("chicago.csv", 1 << 20, None),
        ("state_plane.csv", 1 << 20, ColumnMapping(crs="EPSG:3435")),
        ("repeated_ids.csv", 1 << 20, None),
    ],
)
def test_chicago_exports_on_the_cluster_equal_one_machine(
    name, part_bytes, mapping, exports, chicago, client, tmp_path
):
    path = exports[name]
    assert len(plan_parts(path, part_bytes=part_bytes)) >= 3  # really cut in parts
    if mapping is not None:
        base = chicago.department().column_mapping()
        mapping = ColumnMapping(
            **{**base.__dict__, **{k: v for k, v in mapping.__dict__.items() if v is not None}}
        )
    results = _twice(chicago, tmp_path, client, path, mapping=mapping, part_bytes=part_bytes)
    _assert_same(*results)
    single = results[1]
    assert single.rows_accepted > 10_000
    if name == "repeated_ids.csv":
        rejected = pd.read_csv(results[3].rejections_csv, dtype=str)
        repeated = rejected[rejected["reason"] == "duplicate incident id"]
        raw = pd.read_csv(path, dtype=str, keep_default_na=False)
        n = len(raw)
        # lines of the last four rows: n-2, n-1 and n repeat rows 0, 3, 0 (lines 2, 5, 2)
        first_id = raw["ID"].iloc[0]
        assert repeated["line"].astype(int).tolist() == [n - 2, n - 1, n]
        assert repeated["value"].tolist() == [
            duplicate_value(first_id, 2),
            duplicate_value(raw["ID"].iloc[3], 5),
            duplicate_value(first_id, 2),
        ]


@pytest.mark.slow
def test_the_bundled_gz_files_and_seattle_on_the_cluster_equal_one_machine(
    exports, samples_dir, seattle, chicago, client, tmp_path
):
    path = exports["seattle.csv"]
    assert len(plan_parts(path, part_bytes=4 << 20)) >= 3
    _assert_same(*_twice(seattle, tmp_path / "seattle", client, path, part_bytes=4 << 20))
    # several files in one call: each its own version, as one ingest after the other
    files = [
        samples_dir / "incidents_2023-2024_sample_a.csv.gz",
        samples_dir / "incidents_2024_sample_b.csv.gz",
    ]
    local = IncidentStore(tmp_path / "local")
    remote = IncidentStore(tmp_path / "remote")
    shutil.copytree(chicago.root, local.root)
    shutil.copytree(chicago.root, remote.root)
    singles = [ingest_file(f, local, now=NOW) for f in files]
    with _no_fallback():
        reports = ingest_files(files, remote, client, now=NOW)
    for single, distributed in zip(singles, reports, strict=True):
        assert {k: v for k, v in distributed.as_dict().items() if k not in PATHS} == {
            k: v for k, v in single.as_dict().items() if k not in PATHS
        }
    assert len(remote.history()) == len(local.history())
    stored = remote.load_incidents().sort_values("incident_id").reset_index(drop=True)
    wanted = local.load_incidents().sort_values("incident_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.DataFrame(stored), pd.DataFrame(wanted))


@pytest.mark.slow
def test_the_bad_row_file_of_the_corpus_in_parts(chicago, client, tmp_path):
    path = BAD / "bad_rows.csv"
    assert len(plan_parts(path, part_bytes=300)) >= 4
    results = _twice(chicago, tmp_path, client, path, part_bytes=300)
    _assert_same(*results)
    report = results[3]
    # tests/data/bad/cases.toml: 14 read, 5 accepted, these 9 lines rejected
    assert (report.rows_read, report.rows_accepted, report.rows_rejected) == (14, 5, 9)
    rejected = pd.read_csv(report.rejections_csv)
    assert rejected["line"].tolist() == [2, 3, 4, 5, 6, 8, 10, 11, 12]
    assert results[2].count() == 5


@pytest.mark.slow
def test_a_file_whose_parts_read_differently_is_ingested_on_this_machine(
    chicago, client, tmp_path, caplog, capsys
):
    # ISO dates in the first part, month-first US dates (days over 12) in the last: the parts
    # learn different formats, which only the whole file's batches order; the file is read
    # here, and the next file on the cluster again
    raw = pd.read_csv(BAD / "ok_chicago.csv", dtype=str, keep_default_na=False)
    dates = pd.to_datetime(raw["Date"], format="%m/%d/%Y %I:%M:%S %p")
    half = len(raw) // 2
    raw.loc[: half - 1, "Date"] = dates[:half].dt.strftime("%Y-%m-%d %H:%M")
    raw.loc[half:, "Date"] = (dates[half:] + pd.Timedelta(days=20)).dt.strftime(
        "%m/%d/%Y %I:%M:%S %p"
    )
    mixed = tmp_path / "mixed.csv"
    raw.to_csv(mixed, index=False)
    files = [mixed, BAD / "bad_rows.csv"]
    assert len(plan_parts(mixed, part_bytes=1000)) >= 3
    local = IncidentStore(tmp_path / "local")
    remote = IncidentStore(tmp_path / "remote")
    shutil.copytree(chicago.root, local.root)
    shutil.copytree(chicago.root, remote.root)
    singles = [ingest_file(f, local, now=NOW) for f in files]
    with caplog.at_level(logging.WARNING, logger="geodata.distributed_ingest"):
        reports = ingest_files(files, remote, client, now=NOW, part_bytes=1000)
    fallbacks = [r.getMessage() for r in caplog.records if "on this machine" in r.getMessage()]
    assert len(fallbacks) == 1
    assert fallbacks[0].startswith(f"{mixed}: ingested on this machine")
    assert "or" in singles[0].notes[0]  # two formats learnt
    # the report says so, in the user's words; the second file was read on the cluster
    assert reports[0].cluster_fallback is not None
    assert reports[0].cluster_fallback.startswith("parts of the file read differently")
    assert "date formats" in reports[0].cluster_fallback
    assert reports[1].cluster_fallback is None
    assert singles[0].cluster_fallback is None
    kept = (*PATHS, "cluster_fallback")
    for single, distributed in zip(singles, reports, strict=True):
        assert {k: v for k, v in distributed.as_dict().items() if k not in kept} == {
            k: v for k, v in single.as_dict().items() if k not in kept
        }
    assert reports[1].rows_read == 14
    # bad_rows.csv repeats ids of ok_chicago.csv: its 5 rows replace stored ones, both ways
    assert reports[1].rows_replaced == singles[1].rows_replaced == 5
    stored = remote.load_incidents().sort_values("incident_id").reset_index(drop=True)
    wanted = local.load_incidents().sort_values("incident_id").reset_index(drop=True)
    pd.testing.assert_frame_equal(pd.DataFrame(stored), pd.DataFrame(wanted))
    # the command's report (the file is one part at the command's part size, so the report
    # the cluster gave above is printed): a JSON field, and a line of the text report
    from geodata.cli.ingest import _print_report

    for as_json in (True, False):
        assert _print_report(reports[0], argparse.Namespace(json=as_json)) == 0
        out = capsys.readouterr().out
        if as_json:
            assert json.loads(out)["cluster_fallback"] == reports[0].cluster_fallback
        else:
            (line,) = [x for x in out.splitlines() if "not on the cluster" in x]
            assert line == (
                f"  read on this machine, not on the cluster: {reports[0].cluster_fallback}"
            )
            assert "--" not in line
            assert str(tmp_path) not in line
    assert _print_report(reports[1], argparse.Namespace(json=False)) == 0
    assert "not on the cluster" not in capsys.readouterr().out


@pytest.mark.slow
def test_a_missing_file_is_the_readers_error(chicago, client, tmp_path):
    store = IncidentStore(tmp_path / "store")
    shutil.copytree(chicago.root, store.root)
    missing = tmp_path / "missing.csv"
    with pytest.raises(InputError, match=f"{missing}: no such file"):
        ingest_files([missing], store, client)
    assert store.count() == 0


def test_a_file_joined_in_parts_with_the_public_api_is_stored_as_one_ingest(
    exports, chicago, tmp_path
):
    # no cluster: the file cut in three by lines, each part read as a file of its own with
    # the reader, placed in the whole file and joined; the store gets what one ingest stores
    header, *records = exports["repeated_ids.csv"].read_text().splitlines(keepends=True)
    records = records[:4] + records[4:-4:40] + records[-4:]  # the last repeat the first ids
    path = tmp_path / "repeated_ids.csv"
    path.write_text(header + "".join(records))
    cuts = [0, len(records) // 3, 2 * len(records) // 3, len(records)]
    pieces = []
    for k, (a, b) in enumerate(itertools.pairwise(cuts)):
        piece = tmp_path / f"part{k}" / path.name  # the export's name: rejections name it
        piece.parent.mkdir()
        piece.write_text(header + "".join(records[a:b]))
        pieces.append((a, piece))  # records before the part: its line offset
    store = IncidentStore(tmp_path / "parts")
    shutil.copytree(chicago.root, store.root)
    beats = store.read_layer("beats")
    index = store.beat_index(tolerance_m=store.department().edge_tolerance_m)

    def parts(whole: Path, *, exact: bool = False, **options) -> Iterator[JoinedPart]:
        seen: dict[int, int] = {}
        for offset, piece in pieces:
            tally = BatchTally(categories=options["categories"], keep_disagreements=True)
            place = PartOfFile(offset, dict(seen))
            rows = [
                tally.add(place.place(batch), beats, index, buffer_m=1000.0, prefer_reported=True)
                for batch in iter_incidents(piece, exact=exact, dates_from=whole, **options)
            ]
            for keys, lines in zip(place.keys, place.lines, strict=True):
                for key, line in zip(keys.tolist(), lines.tolist(), strict=True):
                    seen.setdefault(key, line)
            yield JoinedPart(tally, pd.concat(rows, ignore_index=True))

    local = IncidentStore(tmp_path / "local")
    shutil.copytree(chicago.root, local.root)
    single = ingest_file(path, local, now=NOW)
    joined = ingest_joined_parts(path, store, parts, now=NOW)
    _assert_same(local, single, store, joined)
    assert single.rejected_by_reason["duplicate incident id"] == 3
    # the two messages read back are the readers' own, in and out
    values = pd.Series([duplicate_value("JA 1 (x)", 12), duplicate_value("7", 3)])
    found = duplicate_ids(values)
    assert found["id"].tolist() == ["JA 1 (x)", "7"]
    assert found["first_line"].tolist() == [12, 3]
    note = dates_note(["%m/%d/%Y %I:%M:%S %p", "ISO8601"], "America/Chicago")
    assert formats_of_dates_note(note) == (["%m/%d/%Y %I:%M:%S %p", "ISO8601"], "America/Chicago")
    assert formats_of_dates_note("offense vocabulary detected: nibrs") is None
    assert formats_of_dates_note(single.notes[0]) is not None


def test_a_received_part_is_copied_into_arrows_pool():
    # a part comes back in buffers the network layer allocated; the store keeps each part's
    # ids to the end of the write, so the client copies the part first (else every part's
    # buffers stay pinned and the client's memory grows with the file)
    ids = pa.array([f"JA{i:06d}" for i in range(50_000)])
    received = pickle.loads(
        pickle.dumps(pa.table({"incident_id": ids, "x": np.arange(50_000.0)}), protocol=5)
    )
    received = pa.concat_tables([received.slice(0, 20_000), received.slice(20_000)])
    before = pa.total_allocated_bytes()
    owned = _owned(received)
    assert owned.equals(received)
    assert owned.schema == received.schema
    assert all(column.num_chunks == 1 for column in owned.columns)
    assert pa.total_allocated_bytes() - before >= received.nbytes  # new buffers, in the pool
    kept, sent = owned.column("incident_id").chunk(0), received.column("incident_id").chunk(0)
    assert kept.buffers()[2].address != sent.buffers()[2].address
    empty = _owned(received.schema.empty_table())
    assert empty.num_rows == 0
    assert empty.schema == received.schema


def test_parts_end_at_line_breaks_and_carry_their_lines(tmp_path):
    rows = [f'{i},"{"x" * (i % 7)}",{i * 2}' for i in range(1, 201)]
    path = tmp_path / "rows.csv"
    path.write_text("id,text,n\n" + "\n".join(rows) + "\n")
    data = path.read_bytes()
    parts = plan_parts(path, part_bytes=500)
    assert len(parts) > 3
    assert parts[0].start == parts[0].header_end == len("id,text,n\n")
    assert parts[-1].end == len(data)
    for part, following in itertools.pairwise(parts):
        assert part.end == following.start
        assert data[part.end - 1 : part.end] == b"\n"
    for part in parts:
        # the part's first record is line 2 of its file: line_offset + 2 of the export
        first = data[part.start : data.index(b"\n", part.start)].decode()
        assert first == rows[part.line_offset]
    # line breaks inside quotes, blank lines, lone carriage returns: read whole
    for text in ['a,b\n1,"x\ny"\n', "a,b\n1,2\n\n3,4\n", "a,b\r1,2\r3,4\r"]:
        odd = tmp_path / "odd.csv"
        odd.write_text(text * 100, newline="")
        assert len(plan_parts(odd, part_bytes=50)) == 1
    assert len(plan_parts(tmp_path / "missing.csv", part_bytes=50)) == 1


@pytest.mark.slow
def test_ingest_command_on_a_scheduler(exports, chicago, client, tmp_path, capsys):
    from geodata.cli import main

    store = tmp_path / "store"
    shutil.copytree(chicago.root, store)
    path = exports["chicago.csv"]
    args = ["ingest", str(path), "--store", str(store), "--json"]
    assert main([*args, "--scheduler", client.scheduler.address]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_read"] == report["rows_accepted"] + report["rows_rejected"] > 10_000
    assert IncidentStore(store).count() == report["rows_accepted"]
    versions = len(IncidentStore(store).history())
    # nobody there: one line naming the address, nothing stored
    assert main([*args, "--scheduler", "tcp://127.0.0.1:1"]) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err
    assert err.startswith("error: no Dask scheduler answered at tcp://127.0.0.1:1")
    assert len(IncidentStore(store).history()) == versions


@pytest.mark.slow
def test_several_files_on_the_command_line(chicago, client, tmp_path, capsys):
    from geodata.cli import main

    files = [str(BAD / "ok_chicago.csv"), str(BAD / "bad_rows.csv")]
    listed = {}
    for where, extra in [("here", []), ("cluster", ["--scheduler", client.scheduler.address])]:
        store = tmp_path / where
        shutil.copytree(chicago.root, store)
        assert main(["ingest", *files, "--store", str(store), "--json", *extra]) == 0
        reports = json.loads(capsys.readouterr().out)
        listed[where] = [{k: v for k, v in r.items() if k not in PATHS} for r in reports]
        assert len(IncidentStore(store).history()) == 1 + len(files)  # a version per file
    assert listed["cluster"] == listed["here"]
    assert [r["source"] for r in listed["here"]] == files
    assert listed["here"][1]["rows_read"] == 14  # tests/data/bad/cases.toml


@pytest.mark.slow
def test_calls_files_on_the_cluster_equal_one_machine(
    samples_dir, client, tmp_path, capsys, monkeypatch
):
    # the bundled Minneapolis CAD export cut in two overlapping files: the second replaces
    # the calls they share; each file is one version of the calls table, both ways
    from geodata.calls import calls_table, load_calls
    from geodata.cli import main

    base = _beats_only(tmp_path / "base", "minneapolis")
    source = samples_dir.parent / "minneapolis" / "mpd_cad_2020-06-21_to_2020-07-13.csv.gz"
    header, *records = gzip.decompress(source.read_bytes()).decode().splitlines(keepends=True)
    files = []
    for name, rows in [("first.csv", records[:9000]), ("second.csv", records[6000:])]:
        (tmp_path / name).write_text(header + "".join(rows))
        files.append(str(tmp_path / name))
    listed, stored = {}, {}
    for where, extra in [("here", []), ("cluster", ["--scheduler", client.scheduler.address])]:
        store = tmp_path / where
        shutil.copytree(base.root, store)
        args = ["ingest", *files, "--kind", "calls", "--store", str(store), "--json", *extra]
        assert main(args) == 0
        reports = json.loads(capsys.readouterr().out)
        listed[where] = [{k: v for k, v in r.items() if k != "rejections_csv"} for r in reports]
        for r in reports:
            rejected = pd.read_csv(r["rejections_csv"], dtype=str, keep_default_na=False)
            listed[where].append(rejected.to_dict("list"))
        held = IncidentStore(store)
        assert len(calls_table(held).history()) == 1 + len(files)  # created, a version per file
        stored[where] = pd.DataFrame(load_calls(held)).sort_values("call_id", ignore_index=True)
        assert not any((store / "cache" / "calls-read").glob("*"))  # the workers' files gone
    assert listed["cluster"] == listed["here"]
    pd.testing.assert_frame_equal(stored["cluster"], stored["here"])
    first, second = listed["here"][:2]
    assert first["rows_read"] == 9000
    assert second["rows_read"] == len(records) - 6000
    assert first["rows_read"] == first["rows_accepted"] + first["rows_rejected"]
    assert second["rows_replaced"] > 2900  # the 3,000 shared rows less rejected ones
    assert len(stored["here"]) == first["rows_new"] + second["rows_new"]
    # an export the reader refuses: the same one-line error both ways, its path as given
    monkeypatch.chdir(tmp_path)
    Path("no_times.csv").write_text(header.replace("Response_Date", "Responded") + records[0])
    errors = []
    for where, extra in [("here", []), ("cluster", ["--scheduler", client.scheduler.address])]:
        args = ["ingest", "no_times.csv", "--kind", "calls", "--store", where, *extra]
        assert main(args) == 2
        errors.append(capsys.readouterr().err.strip())
    assert errors[0] == errors[1]
    assert errors[0].startswith("error: no_times.csv")
