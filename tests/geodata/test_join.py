"""The beat join: the edge rule on hand-built squares, and agreement on the real data."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely

from geodata import schema
from geodata.errors import BoundaryError, CRSMismatchError
from geodata.join import STATUS_CODES, BeatIndex, assign_beats, join_agreement, reported_beats
from geodata.readers import read_incidents


@pytest.fixture(scope="module")
def squares() -> gpd.GeoDataFrame:
    """Beats A | B side by side (100 m squares sharing the edge x = 100), C above both."""
    return gpd.GeoDataFrame(
        {
            schema.BEAT: ["A", "B", "C"],
            schema.SECTOR: ["S1", "S1", "S2"],
            schema.DISTRICT: ["1", "1", "1"],
        },
        geometry=[
            shapely.box(0, 0, 100, 100),
            shapely.box(100, 0, 200, 100),
            shapely.box(0, 100, 200, 200),
        ],
        crs="EPSG:26916",
    )


@pytest.fixture(scope="module")
def square_index(squares) -> BeatIndex:
    return BeatIndex(squares, cell_size_m=5.0, tolerance_m=1.0)


def lookup(index, points, **kw):
    x, y = np.array(points, dtype=float).T
    result = index.lookup(x, y, **kw)
    beats = [index.beat_ids[i] if i >= 0 else "outside" for i in result.beat_index]
    statuses = [schema.JOIN_STATUSES[s] for s in result.status]
    return beats, statuses


def test_interior_points_take_their_beat(square_index):
    beats, statuses = lookup(square_index, [(50, 50), (150, 50), (100, 150), (98.5, 50)])
    assert beats == ["A", "B", "C", "A"]
    assert statuses == ["inside"] * 4


def test_points_on_a_shared_edge_go_to_the_lowest_id(square_index):
    # exactly on the A|B edge, 0.4 m either side of it, and the A/B/C corner
    beats, statuses = lookup(square_index, [(100, 50), (99.6, 50), (100.4, 50), (100, 100)])
    assert beats == ["A", "A", "A", "A"]
    assert statuses == ["edge"] * 4


def test_nearest_centroid_rule(square_index):
    # on the B|C edge near B's centre: B's centroid (150, 50) is nearer than C's (100, 150)
    beats, _ = lookup(square_index, [(150, 100)], tie_rule="nearest_centroid")
    assert beats == ["B"]


def test_reported_beat_breaks_ties_only_within_the_tolerance(square_index):
    points = [(100, 50), (100, 50), (50, 50)]
    reported = np.array(["B", "C", "B"], dtype=object)  # C is not a candidate for (100, 50)
    beats, statuses = lookup(square_index, points, reported=reported, prefer_reported=True)
    assert beats == ["B", "A", "A"]  # the interior point keeps its geometric beat
    assert statuses == ["edge", "edge", "inside"]


def test_a_reported_beat_names_the_layers_id_however_either_writes_it():
    layer = gpd.GeoDataFrame(
        {schema.BEAT: ["7", "112", "k3"], schema.SECTOR: ["1"] * 3, schema.DISTRICT: ["1"] * 3},
        geometry=[shapely.box(i * 100, 0, i * 100 + 100, 100) for i in range(3)],
        crs="EPSG:26916",
    )
    raw = pd.DataFrame({schema.REPORTED_BEAT: ["007", "0112", 112.0, " K3 ", "k3", "99", None]})
    got = reported_beats(raw, BeatIndex(layer))
    assert got is not None
    # ids the layer has come back as the layer writes them; the one it lacks is padded to its
    # numeric width (3), as before
    assert got.tolist()[:6] == ["7", "112", "112", "k3", "k3", "099"]
    assert got.isna().tolist() == [False] * 6 + [True]


def test_outer_edge_snaps_and_far_points_are_outside(square_index):
    beats, statuses = lookup(square_index, [(-0.5, 50), (-5, 50), (np.nan, 1.0), (1e7, 1e7)])
    assert beats == ["A", "outside", "outside", "outside"]
    assert statuses == ["snapped", "outside", "outside", "outside"]


def test_distance_to_jurisdiction(square_index):
    distance = square_index.distance_to_jurisdiction(
        np.array([-30.0, 50.0]), np.array([50.0, 50.0])
    )
    assert distance.tolist() == [30.0, 0.0]


def test_index_rejects_geographic_crs_and_duplicate_ids(squares):
    with pytest.raises(CRSMismatchError, match="projected CRS"):
        BeatIndex(squares.to_crs("EPSG:4326"))
    doubled = pd.concat([squares, squares.iloc[[0]]])
    with pytest.raises(BoundaryError, match=r"beat ids must be unique.*'A'"):
        BeatIndex(doubled)
    with pytest.raises(ValueError, match="cell_size_m must be > 0"):
        BeatIndex(squares, cell_size_m=0)


def test_identical_to_sjoin_away_from_the_edges_on_real_beats(beats, beat_index):
    rng = np.random.default_rng(42)
    xmin, ymin, xmax, ymax = beats.total_bounds
    x = rng.uniform(xmin, xmax, 200_000)
    y = rng.uniform(ymin, ymax, 200_000)
    result = beat_index.lookup(x, y)
    points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=beats.crs)
    joined = gpd.sjoin(points, beats[[schema.BEAT, "geometry"]], predicate="within", how="left")
    joined = joined[~joined.index.duplicated()]
    expected = joined[schema.BEAT].fillna("outside").to_numpy()
    ours = np.where(result.beat_index >= 0, beat_index.beat_ids[result.beat_index], "outside")
    decided_away = np.isin(result.status, [STATUS_CODES["inside"], STATUS_CODES["outside"]])
    assert decided_away.mean() > 0.99  # the 1 m band holds under 1% of uniform points
    assert (ours[decided_away] == expected[decided_away]).all()
    # and the grid answered most points without an exact test
    assert result.n_exact < 0.05 * len(x)


@pytest.fixture(scope="module")
def dense(samples_dir):
    return read_incidents(samples_dir / "incidents_2018-01_dense.csv.gz").incidents


def test_agreement_with_chicagos_reported_beat_on_the_dense_month(dense, beats, beat_index):
    geometric = join_agreement(assign_beats(dense, beats, index=beat_index, prefer_reported=False))
    tiebreak = join_agreement(assign_beats(dense, beats, index=beat_index, prefer_reported=True))
    assert geometric["n"] == tiebreak["n"] == 17_038
    # measured 92.2%: a plain point-in-polygon join gets 91.45% (the edge points are a coin flip)
    assert 0.915 <= geometric["agreement"] <= 0.93
    # measured 99.81%: the rest are interior points Chicago reports in another beat
    assert tiebreak["agreement"] >= 0.997
    assert tiebreak["by_status"]["edge"][1] == 1.0
    # 2,800 points (16.4%) lie within 1 m of two beats: the boundary rule is the heart of the join
    assert tiebreak["by_status"]["edge"][0] == 2_800


def test_the_tie_break_holds_when_the_layer_writes_beats_without_leading_zeros(
    dense, beats, beat_index
):
    # a department whose layer stores Chicago's beat 0112 as 112 (integer ids, no padding),
    # while its export still writes 0112: the reported beat must break ties all the same
    padded = assign_beats(dense, beats, index=beat_index, prefer_reported=True)
    unpadded_beats = beats.assign(**{schema.BEAT: beats[schema.BEAT].str.lstrip("0")})
    unpadded = assign_beats(dense, unpadded_beats, prefer_reported=True)
    assert dense[schema.REPORTED_BEAT].str.startswith("0").sum() > 1_000
    assert unpadded[schema.BEAT].tolist() == padded[schema.BEAT].str.lstrip("0").tolist()
    assert join_agreement(unpadded)["agreement"] == join_agreement(padded)["agreement"]


def test_state_plane_read_gives_the_same_beats(dense, beats, beat_index, samples_dir, tmp_path):
    raw = pd.read_csv(
        samples_dir / "incidents_2018-01_dense.csv.gz", dtype=str, keep_default_na=False
    )
    path = tmp_path / "xy.csv"
    raw.drop(columns=["Latitude", "Longitude", "Location"]).to_csv(path, index=False)
    from geodata.readers import ColumnMapping

    xy = read_incidents(path, mapping=ColumnMapping(crs="EPSG:3435")).incidents
    for prefer in (False, True):
        a = assign_beats(xy, beats, index=beat_index, prefer_reported=prefer)
        b = assign_beats(dense, beats, index=beat_index, prefer_reported=prefer)
        merged = a.merge(b, on=schema.INCIDENT_ID, suffixes=("_xy", "_ll"))
        assert len(merged) == 17_038
        assert (merged["beat_xy"] == merged["beat_ll"]).all()


def test_assign_beats_returns_a_copy_with_sector_and_district(dense, beats, beat_index):
    before = dense.copy()
    out = assign_beats(dense.head(100), beats, index=beat_index)
    pd.testing.assert_frame_equal(dense, before)
    inside = out[out[schema.BEAT] != schema.OUTSIDE]
    lookup_table = beats.set_index(schema.BEAT)
    assert (
        inside[schema.SECTOR].to_numpy()
        == lookup_table.loc[inside[schema.BEAT], schema.SECTOR].to_numpy()
    ).all()
    # Chicago's convention: the sector is the first three digits of the beat
    assert (inside[schema.SECTOR] == inside[schema.BEAT].str[:3]).all()
    assert (inside[schema.DISTRICT] == inside[schema.BEAT].str[:2]).all()


def test_exact_test_matches_shapely_candidates_on_real_points(dense, beat_index):
    x, y = dense[schema.X].to_numpy(), dense[schema.Y].to_numpy()
    result = beat_index.lookup(x, y)
    points = shapely.points(x, y)
    point_i, beat_i = beat_index.tree.query(points, predicate="dwithin", distance=1.0)
    n_candidates = np.bincount(point_i, minlength=len(x))
    assert ((result.status == STATUS_CODES["edge"]) == (n_candidates >= 2)).all()
    assert ((result.status == STATUS_CODES["outside"]) == (n_candidates == 0)).all()
    chosen = set(zip(np.arange(len(x)), result.beat_index, strict=True))
    pairs = set(zip(point_i, beat_i, strict=True))
    assert {c for c in chosen if c[1] >= 0} <= pairs
    # lowest id among the candidates for every edge point
    lowest = pd.Series(beat_i).groupby(point_i).min()
    edge = np.flatnonzero(result.status == STATUS_CODES["edge"])
    assert (result.beat_index[edge] == lowest.loc[edge].to_numpy()).all()


def test_parallel_and_single_threaded_kernels_agree_on_real_points(dense, beat_index, monkeypatch):
    # a small lookup runs the single-threaded kernels, a large one (PARALLEL_POINTS) the
    # parallel ones: both must give every point the same beat and status, with each rule
    x, y = dense[schema.X].to_numpy(), dense[schema.Y].to_numpy()
    reported = dense[schema.REPORTED_BEAT].astype(object).to_numpy()
    options = [
        {},
        {"reported": reported, "prefer_reported": True},
        {"tie_rule": "nearest_centroid"},
    ]
    for kw in options:
        monkeypatch.setattr("geodata.join.PARALLEL_POINTS", len(x) + 1)
        serial = beat_index.lookup(x, y, **kw)
        monkeypatch.setattr("geodata.join.PARALLEL_POINTS", 0)
        parallel = beat_index.lookup(x, y, **kw)
        assert serial.n_exact == parallel.n_exact > 0
        np.testing.assert_array_equal(serial.beat_index, parallel.beat_index)
        np.testing.assert_array_equal(serial.status, parallel.status)
    assert (serial.status == STATUS_CODES["edge"]).any()


def _saved_arrays(index: BeatIndex) -> dict[str, np.ndarray]:
    arrays = {name.lstrip("_"): getattr(index, name) for name in BeatIndex._SAVED}
    return arrays | {f"seg{i}": values for i, values in enumerate(index._seg)}


def test_a_saved_index_loads_back_the_same_and_older_files_still_load(
    dense, beats, beat_index, tmp_path
):
    x, y = dense[schema.X].to_numpy(), dense[schema.Y].to_numpy()
    expected = beat_index.lookup(x, y)
    # this version's file (each array Zstandard-compressed in a plain npz)
    beat_index.save(tmp_path / "index.npz")
    with np.load(tmp_path / "index.npz") as saved:
        assert "zstd_grid" in saved.files
        assert "grid" not in saved.files
    loaded = BeatIndex.load(tmp_path / "index.npz", beats)
    # a file written before (every array in the npz's own zlib)
    scalars = np.array(
        [beat_index.cell_size_m, beat_index.tolerance_m, beat_index.x0, beat_index.y1,
         beat_index.nx, beat_index.ny, beat_index.boundary_cell_share],
    )  # fmt: skip
    np.savez_compressed(
        tmp_path / "older.npz",
        scalars=scalars,
        beat_ids=beat_index.beat_ids.astype(str),
        **_saved_arrays(beat_index),
    )
    older = BeatIndex.load(tmp_path / "older.npz", beats)
    for index in (loaded, older):
        assert index is not None
        got = _saved_arrays(index)
        for name, want in _saved_arrays(beat_index).items():
            np.testing.assert_array_equal(got[name], want)
            assert got[name].dtype == want.dtype
            assert got[name].flags.writeable
        result = index.lookup(x, y)
        np.testing.assert_array_equal(result.beat_index, expected.beat_index)
        np.testing.assert_array_equal(result.status, expected.status)
    # another layer's ids: not this layer's index
    assert BeatIndex.load(tmp_path / "index.npz", beats.iloc[::-1]) is None
