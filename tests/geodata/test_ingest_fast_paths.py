"""The ingest's faster paths give what the direct ones give, on the bundled Chicago data.

- :meth:`BeatIndex.distance_to_jurisdiction` (an R-tree of boundary segments) against GEOS's
  distance to the beat polygons, point by point, and a hand-checked point;
- one :meth:`BeatIndex.lookup` per batch (:func:`with_beats`) against :func:`assign_beats`, and
  the geometric beats of edge points looked up again alone against a lookup of every point;
- the table's months gathered and sorted by the writer threads, and the counts the writers
  cache, against the files' own order and :meth:`RecordTable.count_by` recomputed from them.
"""

from __future__ import annotations

import itertools
import shutil

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
import shapely

from geodata import schema
from geodata.join import (
    STATUS_CODES,
    assign_beats,
    reported_beats,
    with_beats,
)
from geodata.readers import read_incidents


@pytest.fixture(scope="module")
def dense(samples_dir, beats):
    return read_incidents(
        samples_dir / "incidents_2018-01_dense.csv.gz", analysis_crs=beats.crs.to_string()
    ).incidents


def test_distance_to_jurisdiction_is_geos_distance_to_the_nearest_beat(beats, beat_index):
    polygons = beats.geometry.to_numpy()
    rng = np.random.default_rng(7)
    xmin, ymin, xmax, ymax = beats.total_bounds
    # points anywhere around the city, and points within a few metres of beat boundaries
    corners = shapely.get_coordinates(shapely.boundary(polygons))
    near = corners[rng.integers(0, len(corners), 300)] + rng.normal(0, 3, (300, 2))
    x = np.r_[rng.uniform(xmin - 5000, xmax + 5000, 300), near[:, 0], corners[:20, 0], np.nan]
    y = np.r_[rng.uniform(ymin - 5000, ymax + 5000, 300), near[:, 1], corners[:20, 1], 1.0]
    got = beat_index.distance_to_jurisdiction(x, y)
    points = shapely.points(x[:-1], y[:-1])
    # GEOS's own distance from each point to every beat polygon, the least of them
    want = shapely.distance(points[:, None], polygons[None, :]).min(axis=1)
    assert np.array_equal(got[:-1], want)  # to the last bit
    assert np.isnan(got[-1])
    assert (got[:-1] == 0).sum() > 100  # points inside (and on) beats are 0
    assert (got[:-1] > 1000).sum() > 50  # and far ones are measured too


def test_distance_west_of_the_westernmost_vertex_is_the_offset(beats, beat_index):
    corners = shapely.get_coordinates(beats.geometry.to_numpy())
    west = corners[np.argmin(corners[:, 0])]
    # nothing lies west of this vertex, so it is the nearest point of every beat
    got = beat_index.distance_to_jurisdiction(np.array([west[0] - 500.0]), np.array([west[1]]))
    assert got.tolist() == pytest.approx([500.0], abs=1e-9)


def test_one_lookup_gives_the_joined_and_the_geometric_beats(dense, beats, beat_index):
    incidents = dense.head(20_000).reset_index(drop=True)
    want = assign_beats(incidents, beats, index=beat_index, prefer_reported=True)
    x, y = incidents[schema.X].to_numpy(), incidents[schema.Y].to_numpy()
    reported = reported_beats(incidents, beat_index)
    assert reported is not None
    result = beat_index.lookup(x, y, reported=reported.array, prefer_reported=True)
    got = with_beats(incidents.copy(), beats, beat_index, result, reported)
    pd.testing.assert_frame_equal(got, want)
    # the reported beat decides only edge points: the rest are the geometric lookup's
    geometric = beat_index.lookup(x, y).beat_index
    edge = result.status == STATUS_CODES["edge"]
    assert edge.sum() > 100
    assert np.array_equal(result.beat_index[~edge], geometric[~edge])
    again = beat_index.lookup(x[edge], y[edge]).beat_index
    assert np.array_equal(again, geometric[edge])
    assert (again != result.beat_index[edge]).any()  # the reported beat did decide some


def _order(table, keys):
    return list(zip(*(table.column(k).to_pylist() for k in keys), strict=True))


def _rewritten(store, *, batch_rows):
    """Write the store's incidents again into a new table, `batch_rows` a batch; return them."""
    stored = store.load_incidents()
    shutil.rmtree(store.table.path)
    shutil.rmtree(store.table.counts_cache_dir, ignore_errors=True)
    batches = [stored.iloc[i : i + batch_rows] for i in range(0, len(stored), batch_rows)]
    assert store.upsert_batches(batches) == (len(stored), 0)
    return stored


@pytest.mark.parametrize("file_rows", [250_000, 4_000])
def test_months_written_by_the_writers_are_sorted_and_cut_as_before(
    writable_store, monkeypatch, file_rows
):
    """January 2018 (17,038 rows) is one file, or five of about 3,400 when files are small."""
    from geodata import table as table_module

    monkeypatch.setattr(table_module, "FILE_ROWS", file_rows)
    store = writable_store
    # a fresh table written by one ingest: every month gathered from the held batches
    stored = _rewritten(store, batch_rows=7_000)
    table = store.table
    keys = table._order_keys
    files = sorted(table.files(), key=lambda f: f.path.name)
    for _, group in itertools.groupby(files, key=lambda f: (f.year, f.month)):
        group = list(group)
        rows = [pq.read_table(f.path) for f in group]
        n = sum(t.num_rows for t in rows)
        n_files = -(-n // file_rows)
        assert len(group) == n_files
        size = -(-n // n_files)
        assert [t.num_rows for t in rows] == [min(size, n - i * size) for i in range(n_files)]
        ordered = [key for t in rows for key in _order(t, keys)]
        assert ordered == sorted(ordered, key=lambda k: tuple((v is None, v) for v in k))
    january = [f for f in files if (f.year, f.month) == (2018, 1)]
    assert len(january) == (1 if file_rows > 17_038 else 5)
    got = store.load_incidents().set_index(schema.INCIDENT_ID).sort_index()
    pd.testing.assert_frame_equal(got, stored.set_index(schema.INCIDENT_ID).sort_index())
    # the counts the writers cached are the counts of the files as read back
    columns = [schema.BEAT, schema.OFFENSE]
    cached = table.count_by(columns)
    assert all(table._counts_path(f, columns).exists() for f in table.files())
    shutil.rmtree(table.counts_cache_dir)
    pd.testing.assert_frame_equal(cached, table.count_by(columns))


def test_a_month_that_grows_keeps_its_rows_and_replaces_by_id(writable_store, monkeypatch):
    from geodata import table as table_module

    monkeypatch.setattr(table_module, "FILE_ROWS", 4_000)
    store = writable_store
    january = store.load_incidents(start="2018-01-01", end="2018-02-01")
    before = store.count()
    changed = january.head(50).assign(**{schema.BLOCK: "000XX W TEST ST"})
    assert store.upsert(changed) == (0, 50)
    assert store.count() == before
    again = store.load_incidents(start="2018-01-01", end="2018-02-01").set_index(schema.INCIDENT_ID)
    assert len(again) == len(january)
    assert (again.loc[changed[schema.INCIDENT_ID], schema.BLOCK] == "000XX W TEST ST").all()
    for f in store.table.files():
        ordered = _order(pq.read_table(f.path), store.table._order_keys)
        assert ordered == sorted(ordered, key=lambda k: tuple((v is None, v) for v in k))


@pytest.mark.parametrize(
    "texts",
    [
        ["-93.2512", "REDACTED", "44.98", ""],  # redacted CAD locations: words become missing
        ["1.5", "N/A", "x1", "REDACTED"],  # not only words: the pattern decides
        ["-inf", "REDACTED", "3"],  # Arrow reads -inf, the pattern does not
        ["+.5", "5.", "NULL", "1E+05", "nan"],
    ],
)
def test_coordinates_with_words_read_as_the_number_pattern_reads_them(texts):
    import pyarrow as pa
    import pyarrow.compute as pc

    from geodata.readers import _NUMBER, _to_float

    values = pa.array(texts)
    matches = pc.match_substring_regex(values, _NUMBER)
    want = [float(t) if ok else np.nan for t, ok in zip(texts, matches.to_pylist(), strict=True)]
    np.testing.assert_array_equal(_to_float(values), np.array(want))
    # told that a word is among them (the calls reader: a withheld location), the same numbers
    np.testing.assert_array_equal(_to_float(values, words=True), np.array(want))


def test_a_write_staged_to_disk_keeps_every_row_and_its_counts(writable_store, monkeypatch):
    """Past HOLD_BYTES the rows are staged by month on disk (the 10M-row path), not gathered."""
    from geodata import table as table_module

    monkeypatch.setattr(table_module, "HOLD_BYTES", 1 << 20)
    monkeypatch.setattr(table_module, "BUFFER_BYTES", 1 << 20)
    monkeypatch.setattr(table_module, "FILE_ROWS", 4_000)
    store = writable_store
    stored = _rewritten(store, batch_rows=5_000)
    table = store.table
    for f in table.files():
        assert pq.read_metadata(f.path).num_rows <= 4_000
        ordered = _order(pq.read_table(f.path), table._order_keys)
        assert ordered == sorted(ordered, key=lambda k: tuple((v is None, v) for v in k))
    got = store.load_incidents().set_index(schema.INCIDENT_ID).sort_index()
    pd.testing.assert_frame_equal(got, stored.set_index(schema.INCIDENT_ID).sort_index())
    columns = [schema.BEAT, schema.OFFENSE]
    cached = table.count_by(columns)
    shutil.rmtree(table.counts_cache_dir)
    pd.testing.assert_frame_equal(cached, table.count_by(columns))
