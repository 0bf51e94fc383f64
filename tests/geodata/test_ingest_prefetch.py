"""Reading ahead on a second thread: same items, same order, errors where they happened."""

from __future__ import annotations

import threading

import pytest

from geodata.readers import prefetched


def test_items_come_in_order_and_the_reader_runs_on_another_thread():
    threads: list[str] = []

    def numbers():
        for i in range(50):
            threads.append(threading.current_thread().name)
            yield i

    assert list(prefetched(numbers())) == list(range(50))
    assert set(threads) == {"reader"}


def test_an_error_is_raised_at_the_item_where_it_happened():
    def broken():
        yield 1
        yield 2
        msg = "line 3: broken"
        raise ValueError(msg)

    reading = prefetched(broken())
    assert [next(reading), next(reading)] == [1, 2]
    with pytest.raises(ValueError, match="line 3: broken"):
        next(reading)


def test_the_first_item_is_used_before_anything_more_is_read():
    # what the caller does with the first batch (the file's vocabulary, its notes) happens
    # before the reader makes the second item or runs the code after its last one
    events: list[str] = []

    def one_batch():
        events.append("made 0")
        yield 0
        events.append("made end")

    for item in prefetched(one_batch()):
        events.append(f"used {item}")
    assert events == ["made 0", "used 0", "made end"]


def test_at_most_one_item_is_read_ahead():
    made = []
    used = []

    def numbers():
        for i in range(10):
            made.append(i)
            yield i

    for item in prefetched(numbers(), ahead=1):
        if item >= 1:
            # the thread may be making item + 1, never item + 2
            assert len(made) <= item + 2
        used.append(item)
    assert used == list(range(10))


def test_stopping_early_stops_the_thread_and_closes_the_reader():
    closed = threading.Event()

    def endless():
        try:
            i = 0
            while True:
                yield i
                i += 1
        finally:
            closed.set()

    reading = prefetched(endless())
    assert [next(reading) for _ in range(3)] == [0, 1, 2]
    reading.close()
    assert closed.is_set()
    assert not [t for t in threading.enumerate() if t.name == "reader"]


def test_a_ragged_row_in_a_later_batch_reads_the_file_again(
    tmp_path, samples_dir, chicago_beats_store
):
    # the reader thread has handed out batches when the ragged record is found: the ingest
    # starts again in exact mode and stores the same rows as a clean read of the good records
    import pandas as pd

    from geodata.ingest import ingest_file
    from tests.conftest import copy_store

    raw = pd.read_csv(
        samples_dir / "incidents_2024_sample_b.csv.gz", dtype=str, keep_default_na=False
    ).head(600)
    lines = raw.to_csv(index=False).splitlines()
    lines[500] += ",AN EXTRA FIELD"  # file line 501
    ragged = tmp_path / "ragged.csv"
    ragged.write_text("\n".join(lines) + "\n", encoding="utf-8")
    clean = tmp_path / "clean.csv"
    clean.write_text("\n".join(lines[:500] + lines[501:]) + "\n", encoding="utf-8")
    stores = [copy_store(chicago_beats_store, tmp_path / name) for name in ("ragged", "clean")]
    report = ingest_file(ragged, stores[0], block_bytes=1 << 15)  # about ten batches
    reference = ingest_file(clean, stores[1], block_bytes=1 << 15)
    assert report.rows_read == 600 == report.rows_accepted + report.rows_rejected
    assert report.rejected_by_reason["malformed row (wrong number of fields)"] == 1
    rejected = pd.read_csv(report.rejections_csv, dtype=str).set_index("line")
    assert rejected.loc["501", "reason"] == "malformed row (wrong number of fields)"
    assert report.rows_accepted == reference.rows_accepted
    columns = ["incident_id", "beat", "occurred_at"]
    ours = stores[0].load_incidents(columns=columns).sort_values("incident_id")
    theirs = stores[1].load_incidents(columns=columns).sort_values("incident_id")
    pd.testing.assert_frame_equal(ours.reset_index(drop=True), theirs.reset_index(drop=True))
