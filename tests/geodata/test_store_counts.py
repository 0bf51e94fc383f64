"""IncidentStore.count_by against a plain pandas groupby of the loaded incidents."""

from __future__ import annotations

import pandas as pd
import pytest

from geodata import schema


def expected_counts(store, columns, start=None, end=None):
    incidents = store.load_incidents(columns=[schema.OCCURRED_AT, *columns], start=start, end=end)
    local = incidents[schema.OCCURRED_AT]
    frame = incidents.assign(year=local.dt.year, month=local.dt.month)
    counts = frame.groupby(["year", "month", *columns], dropna=False).size()
    return counts.rename("incidents").reset_index()


def canonical(frame, columns):
    frame = frame.astype({c: "object" for c in columns}).fillna({c: "<NA>" for c in columns})
    frame = frame.astype({"year": int, "month": int, "incidents": int})
    return frame.sort_values(["year", "month", *columns]).reset_index(drop=True)


@pytest.mark.parametrize(
    ("columns", "start", "end"),
    [
        ([schema.BEAT, schema.OFFENSE], None, None),
        ([schema.DISTRICT], None, None),
        # a range that cuts partitions in the middle of a month
        ([schema.SECTOR, schema.CATEGORY], "2018-01-08", "2018-01-15 12:00"),
        ([schema.BEAT, schema.LOCATION_DESC], "2024-02-10", "2024-07-01"),
    ],
)
def test_count_by_equals_a_pandas_groupby(sample_store, columns, start, end):
    got = sample_store.count_by(columns, start=start, end=end)
    want = expected_counts(sample_store, columns, start, end)
    pd.testing.assert_frame_equal(canonical(got, columns), canonical(want, columns))


def test_count_by_rejects_non_string_columns(sample_store):
    with pytest.raises(ValueError, match="string columns"):
        sample_store.count_by([schema.X])


def test_cached_counts_follow_every_new_version(sample_store, tmp_path):
    """Per-file counts are cached; an upsert, a rollback or a broken cache entry never go stale."""
    import shutil

    from geodata.store import IncidentStore

    shutil.copytree(sample_store.root, tmp_path / "store")
    store = IncidentStore(tmp_path / "store")
    columns = [schema.BEAT, schema.OFFENSE]

    def check() -> None:
        got = store.count_by(columns)
        pd.testing.assert_frame_equal(
            canonical(got, columns), canonical(expected_counts(store, columns), columns)
        )

    check()  # fills the cache
    cached = sorted((store.table.counts_cache_dir / ",".join(columns)).glob("*.arrow"))
    assert {store.table._counts_path(f, columns) for f in store.table.files()} <= set(cached)
    before = store.table.version()
    check()  # from the cache

    # a new version: one month gains 40 incidents (copies of stored ones with new ids)
    more = store.load_incidents().iloc[:40].copy()
    more[schema.INCIDENT_ID] = [f"cache-test-{i}" for i in range(40)]
    store.upsert(more)
    # the write itself cached the new files' counts by beat x offense (INCIDENTS.count_sets)
    cached = sorted((store.table.counts_cache_dir / ",".join(columns)).glob("*.arrow"))
    keys = {store.table._counts_path(f, columns) for f in store.table.files()}
    assert keys <= set(cached)
    assert store.count_by(columns)["incidents"].sum() == store.count()
    check()

    store.rollback(before)
    check()
    assert store.count_by(columns)["incidents"].sum() == store.count()

    for entry in store.table.counts_cache_dir.rglob("*.arrow"):
        entry.write_bytes(b"not an Arrow file")  # e.g. a disk error or an interrupted copy
    check()
