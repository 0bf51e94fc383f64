import math

import numpy as np
import pandas as pd
import pytest
import shapely
from sklearn.base import clone
from sklearn.cluster import DBSCAN
from sklearn.metrics import adjusted_rand_score

from analysis.hotspots import (
    BaseEstimator,
    DBSCANHotspots,
    GiStarHotspots,
    Grid,
    HDBSCANHotspots,
    KDEHotspots,
    TooManyIncidentsError,
    estimator_parameters,
    knox_table,
    scaled_min_samples,
    summarize_clusters,
    unique_locations,
)


def _frame(x, y, **extra):
    return pd.DataFrame({"x": np.asarray(x, float), "y": np.asarray(y, float), **extra})


@pytest.fixture(scope="module")
def dense_month(sample_store):
    incidents = sample_store.load_incidents(
        columns=["x", "y", "occurred_at", "category", "offense", "beat"],
        start="2018-01-01",
        end="2018-02-01",
    )
    return incidents.dropna(subset=["x", "y"]).reset_index(drop=True)


# --- DBSCAN ---------------------------------------------------------------------------------
def test_dbscan_hand_worked_clusters_and_noise():
    # A: 4 incidents within 10 m; B: 3 incidents at one address + 1 at 5 m; two lone points.
    x = [0, 5, 0, 5, 1000, 1000, 1000, 1005, 500, -700]
    y = [0, 0, 5, 5, 1000, 1000, 1000, 1000, 500, 300]
    model = DBSCANHotspots(eps_m=20.0, min_samples=3, buffer_m=0.0).fit(_frame(x, y))
    assert model.n_hotspots_ == 2
    assert model.n_noise_ == 2
    # hotspot 1 is the larger (4 incidents each: tie broken by cluster order, A first)
    assert list(model.labels_) == [0, 0, 0, 0, 1, 1, 1, 1, -1, -1]
    assert list(model.hotspots_["n_incidents"]) == [4, 4]
    assert model.exact_
    assert model.n_locations_ == 8  # the three incidents at one address count once
    # convex hull of A (buffer 0) is the 5 m square
    square = DBSCANHotspots(eps_m=20.0, min_samples=3, buffer_m=0.0, hull="convex").fit(
        _frame(x, y)
    )
    assert square.hotspots_["area_km2"].iloc[0] == pytest.approx(25 / 1e6)


def test_weighted_locations_equal_point_level_dbscan_with_duplicates():
    rng = np.random.default_rng(3)
    sites = rng.uniform(0, 3000, size=(400, 2))
    picks = rng.integers(0, 400, 6000) ** 2 // 400  # skewed multiplicities
    points = sites[picks]
    model = DBSCANHotspots(eps_m=120.0, min_samples=40).fit(_frame(points[:, 0], points[:, 1]))
    reference = DBSCAN(eps=120.0, min_samples=40).fit(points).labels_
    assert model.exact_
    assert adjusted_rand_score(reference, model.labels_) == pytest.approx(1.0)
    assert np.array_equal(reference == -1, model.labels_ == -1)


def test_dbscan_matches_sklearn_on_the_real_dense_month(dense_month):
    model = DBSCANHotspots(eps_m=150.0).fit(dense_month)
    points = dense_month[["x", "y"]].to_numpy()
    reference = DBSCAN(eps=150.0, min_samples=model.min_samples_).fit(points).labels_
    assert model.n_locations_ < 0.85 * len(dense_month)  # block geocoding: many duplicates
    assert adjusted_rand_score(reference, model.labels_) == pytest.approx(1.0)
    assert model.n_hotspots_ == reference.max() + 1


def test_snapping_is_reported_as_approximate():
    rng = np.random.default_rng(0)
    points = rng.normal(0, 50, size=(500, 2))
    model = DBSCANHotspots(eps_m=30.0, min_samples=10, max_locations=100, snap_m=5.0)
    model.fit(_frame(points[:, 0], points[:, 1]))
    assert not model.exact_
    assert model.snap_m_ == 5.0
    reference = DBSCAN(eps=30.0, min_samples=10).fit(points).labels_
    assert adjusted_rand_score(reference, model.labels_) > 0.8


def test_grid_dbscan_by_hand():
    from analysis._griddbscan import grid_dbscan

    # 10 m cells, eps 50 m: a 4 x 4 block of cells with 3 points each (core), a point 40 m to
    # its right (border: within eps of a core cell, not core itself) and one far away (noise)
    xs, ys = np.meshgrid(np.arange(4) * 10 + 5.0, np.arange(4) * 10 + 5.0)
    x = np.concatenate([np.repeat(xs.ravel(), 3), [75.0, 1000.0]])
    y = np.concatenate([np.repeat(ys.ravel(), 3), [5.0, 1000.0]])
    grid = grid_dbscan(x, y, eps_m=50.0, min_samples=10, cell_m=10.0)
    labels = grid.labels[grid.inverse]
    assert set(labels[:48]) == {0}
    assert labels[48] == 0  # border
    assert labels[49] == -1  # noise
    assert grid.weight.sum() == len(x)
    # cell centres from the lowest point (5 m) in 10 m steps: 10, 20, 30, 40, then 80 and 1000
    assert sorted(set(grid.ux)) == [10.0, 20.0, 30.0, 40.0, 80.0, 1000.0]
    assert sorted(set(grid.uy)) == [10.0, 20.0, 30.0, 40.0, 1000.0]
    with pytest.raises(ValueError, match="smaller than eps"):
        grid_dbscan(x, y, eps_m=50.0, min_samples=10, cell_m=50.0)


def test_cell_dbscan_needs_a_margin_as_wide_as_the_disc():
    from analysis._cellkernel import cell_dbscan, disc_margin, disc_offsets

    dy, dx = disc_offsets(2.0)  # radius 2 cells: offsets -2..2
    assert disc_margin(dy, dx) == 2
    index_of = np.full((5, 5), -1, np.int64)
    index_of[2, 2] = 0  # the centre of a 5 x 5 grid: two empty cells on every side
    labels = cell_dbscan(np.array([2]), np.array([2]), np.array([3]), index_of, dy, dx, 3)
    assert list(labels) == [0]  # core on its own weight
    edge = np.full((5, 5), -1, np.int64)
    edge[1, 2] = 0  # one row from the edge: an offset of -2 would leave the grid
    with pytest.raises(ValueError, match="margin of empty cells"):
        cell_dbscan(np.array([1]), np.array([2]), np.array([3]), edge, dy, dx, 3)


@pytest.mark.slow  # a large sklearn reference computation: CI runs it
def test_dbscan_on_exact_geocodes_matches_sklearn(dense_month):
    # points that are not block-snapped: the real month resampled with up to 10 m of jitter
    rng = np.random.default_rng(7)
    pick = rng.integers(0, len(dense_month), 60_000)
    x = dense_month["x"].to_numpy()[pick] + rng.uniform(-10, 10, len(pick))
    y = dense_month["y"].to_numpy()[pick] + rng.uniform(-10, 10, len(pick))
    model = DBSCANHotspots(eps_m=150.0, max_locations=20_000).fit(_frame(x, y))
    assert not model.exact_
    assert model.snap_m_ == 10.0
    reference = DBSCAN(eps=150.0, min_samples=model.min_samples_).fit(np.column_stack([x, y]))
    assert adjusted_rand_score(reference.labels_, model.labels_) > 0.95


def test_scaled_min_samples_by_hand():
    # 1,000 incidents over 1 km²: 1000 * pi * 100² / 1e6 = 31.4 expected within 100 m
    assert scaled_min_samples(1000, 1e6, 100.0, density_factor=2.0) == math.ceil(2 * 31.4159265)
    assert scaled_min_samples(10, 1e6, 100.0) == 5  # the floor
    big = scaled_min_samples(2_000_000, 600e6, 150.0)
    assert scaled_min_samples(4_000_000, 600e6, 150.0) in (2 * big - 1, 2 * big, 2 * big + 1)


def test_small_busy_beat_is_measured_against_the_city(sample_store, caplog):
    # Beat 0111 (downtown, 0.28 km²) is smaller than 5 eps-discs: against its own mean density
    # no cluster is possible (the threshold exceeds its incidents); against the city's it is a
    # hotspot, with the threshold computed from the city's incidents and area.
    from analysis.hotspots import HOTSPOT_COLUMNS, area_incidents, fit_hotspots

    incidents = sample_store.load_incidents(
        columns=list(HOTSPOT_COLUMNS), start="2018-01-01", end="2018-02-01"
    )
    beats = sample_store.read_layer("beats")
    located, area = area_incidents(incidents, beats, level="beat", area_id="0111")
    city, city_beats = area_incidents(incidents, beats, level=None, area_id=None)
    alone = DBSCANHotspots(area_m2=float(area.geometry.area.sum())).fit(located)
    assert alone.min_samples_ > len(located)
    assert len(alone.hotspots_) == 0
    assert "too small" in caplog.text
    model, polygons = fit_hotspots(located, area, "dbscan", reference=(city, city_beats))
    expected = math.ceil(5 * len(city) * math.pi * 150.0**2 / city_beats.geometry.area.sum())
    assert model.min_samples_ == max(5, expected)
    assert len(polygons) >= 1


@pytest.mark.parametrize(
    ("params", "match"),
    [
        ({"eps_m": 0}, "eps_m must be a number in \\(0, inf\\] m"),
        ({"eps_m": "far"}, "eps_m"),
        ({"min_samples": 0}, "min_samples"),
        ({"hull": "alpha"}, "hull must be one of"),
        ({"hull_ratio": 2.0}, "hull_ratio"),
    ],
)
def test_dbscan_validates_parameters_in_fit(params, match):
    model = DBSCANHotspots(**params)  # __init__ stores, never validates
    assert model.get_params()[next(iter(params))] == next(iter(params.values()))
    with pytest.raises(ValueError, match=match):
        model.fit(_frame([0, 1], [0, 1]))


def test_missing_coordinates_name_the_row():
    with pytest.raises(ValueError, match="X row 1"):
        DBSCANHotspots().fit(_frame([0, np.nan], [0, 1]))


def test_summary_of_a_hand_worked_cluster():
    tz = "America/Chicago"
    frame = _frame(
        [0, 10, 0, 500],
        [0, 0, 10, 500],
        occurred_at=pd.to_datetime(
            ["2018-01-01 22:10", "2018-01-03 22:40", "2018-01-08 09:00", "2018-01-02 01:00"]
        ).tz_localize(tz),
        category=["property", "property", "violent", "other"],
        offense=["THEFT", "THEFT", "BATTERY", "OTHER"],
        beat=["0111", "0112", "0111", "0999"],
    )
    table = summarize_clusters(frame, np.array([0, 0, 0, -1]), hull="convex", buffer_m=0.0)
    row = table.iloc[0]
    assert row["n_incidents"] == 3
    assert row["area_km2"] == pytest.approx(50 / 1e6)  # the right triangle 10 x 10 / 2
    assert row["density_per_km2"] == pytest.approx(3 / (50 / 1e6))
    assert row["top_categories"] == "property (2); violent (1)"
    assert row["top_offenses"] == "THEFT (2); BATTERY (1)"
    assert row["peak_hour"] == 22
    assert row["peak_day"] == "Mon"  # 2018-01-01 and 2018-01-08 are Mondays
    assert row["first_incident"] == pd.Timestamp("2018-01-01 22:10", tz=tz)
    assert row["last_incident"] == pd.Timestamp("2018-01-08 09:00", tz=tz)
    assert row["beats"] == "0111, 0112"
    # the same in whole seconds: local hours, weekdays and times do not depend on the unit
    coarse = frame.assign(occurred_at=frame["occurred_at"].dt.as_unit("s"))
    again = summarize_clusters(coarse, np.array([0, 0, 0, -1]), hull="convex").iloc[0]
    assert (again["peak_hour"], again["peak_day"]) == (22, "Mon")
    assert again["first_incident"] == pd.Timestamp("2018-01-01 22:10", tz=tz)
    assert again["last_incident"] == pd.Timestamp("2018-01-08 09:00", tz=tz)


def test_unique_locations_are_exact():
    ux, _, weight, inverse = unique_locations(
        np.array([1.0, 1.0, 1.0 + 1e-12, 2.0]), np.array([5.0, 5.0, 5.0, 5.0])
    )
    assert len(ux) == 3
    assert sorted(weight) == [1, 1, 2]
    assert np.allclose(ux[inverse], [1.0, 1.0, 1.0 + 1e-12, 2.0], rtol=0, atol=0)


def test_estimators_clone():
    for est in (DBSCANHotspots(eps_m=90.0), KDEHotspots(), GiStarHotspots(), HDBSCANHotspots()):
        assert clone(est).get_params() == est.get_params()


def test_estimator_parameters_are_keyword_only_and_stored_as_given():
    @estimator_parameters
    class Probe(BaseEstimator):
        sizes: tuple[float, ...] = ()
        alpha: float = 0.05

    sizes = (1.0, 2.0)
    probe = Probe(sizes=sizes)
    assert probe.sizes is sizes  # stored as given, never copied or validated
    assert probe.get_params() == {"alpha": 0.05, "sizes": (1.0, 2.0)}
    assert repr(probe) == "Probe(sizes=(1.0, 2.0))"  # BaseEstimator's repr: what differs
    assert probe != Probe(sizes=sizes)  # equality stays identity, as in scikit-learn
    with pytest.raises(TypeError, match="positional"):
        Probe(sizes)


# --- HDBSCAN --------------------------------------------------------------------------------
@pytest.mark.slow  # numba compiles fast_hdbscan on a fresh machine: CI runs it
def test_hdbscan_finds_two_constructed_clusters():
    rng = np.random.default_rng(1)
    a = rng.normal([0, 0], 30, size=(300, 2))
    b = rng.normal([2000, 500], 30, size=(200, 2))
    noise = rng.uniform(-3000, 5000, size=(60, 2))
    points = np.vstack([a, b, noise])
    truth = np.r_[np.zeros(300), np.ones(200), -np.ones(60)]
    model = HDBSCANHotspots(min_cluster_size=50).fit(_frame(points[:, 0], points[:, 1]))
    assert model.n_hotspots_ == 2
    assert list(model.hotspots_["n_incidents"][:2] >= 190) == [True, True]
    assert adjusted_rand_score(truth, model.labels_) > 0.9


def test_hdbscan_refuses_more_incidents_than_its_limit_in_words():
    rng = np.random.default_rng(2)
    frame = _frame(*rng.normal(0, 50, size=(2, 61)))
    with pytest.raises(TooManyIncidentsError, match=r"limited to 60 incidents .* hold 61") as err:
        HDBSCANHotspots(min_cluster_size=15, max_incidents=60).fit(frame)
    assert "DBSCAN, KDE or Gi*" in str(err.value)
    # at the limit it runs
    model = HDBSCANHotspots(min_cluster_size=15, max_incidents=61).fit(frame)
    assert len(model.labels_) == 61
    assert HDBSCANHotspots().get_params()["max_incidents"] == 200_000


def _lattice(cx, cy, radius, step, offset=0.0):
    """Points on a square lattice inside a disc: no random bumps to form spurious clusters."""
    g = np.arange(-radius, radius + 1, step) + offset
    xx, yy = np.meshgrid(g, g)
    keep = np.hypot(xx, yy) <= radius
    return np.column_stack([cx + xx[keep], cy + yy[keep]])


@pytest.mark.slow  # numba compiles fast_hdbscan on a fresh machine: CI runs it
def test_hdbscan_gives_the_same_hotspots_every_run_on_block_snapped_incidents(dense_month):
    # The dense month's incidents sit on block points, so many distances tie. With two numba
    # threads fast_hdbscan's Boruvka broke those ties in thread order: 6 runs in one process
    # gave 6 different labellings (min_cluster_size 15). One thread makes the run repeatable.
    import numba

    threads = numba.get_num_threads()
    runs = [HDBSCANHotspots(min_cluster_size=15).fit(dense_month) for _ in range(4)]
    assert numba.get_num_threads() == threads  # the caller's setting is restored
    first = runs[0]
    assert first.n_hotspots_ > 10
    for other in runs[1:]:
        np.testing.assert_array_equal(other.labels_, first.labels_)
        assert other.hotspots_["n_incidents"].tolist() == first.hotspots_["n_incidents"].tolist()


@pytest.mark.slow  # numba compiles fast_hdbscan on a fresh machine: CI runs it
def test_hdbscan_area_cap_replaces_a_sprawling_cluster_by_its_dense_parts():
    # A 600 m disc of incidents every 40 m (1.1 km², 7% of a 16 km² study area) holds two
    # dense groups (every 20 m, in holes of the disc); a small dense group lies far away.
    # Uncapped, HDBSCAN's excess-of-mass choice takes the whole disc as one hotspot (its
    # stability, ~700 points x 1/40 m, beats the two groups'); the 5% cap (0.8 km²) replaces
    # it by its two sub-clusters, each holding all of one dense group, and the sprawl is noise.
    disc = _lattice(2000, 2000, 600, 40)
    for cx in (1700, 2300):
        disc = disc[np.hypot(disc[:, 0] - cx, disc[:, 1] - 2000) > 80]
    west, east = _lattice(1700, 2000, 60, 20, 10), _lattice(2300, 2000, 60, 20, 10)
    far = _lattice(500, 3500, 150, 20)
    points = np.vstack([disc, west, east, far])
    part = np.repeat([0, 1, 2, 3], [len(disc), len(west), len(east), len(far)])
    X = _frame(points[:, 0], points[:, 1])
    params = {"min_cluster_size": 20, "min_samples": 5, "area_m2": 16e6}
    uncapped = HDBSCANHotspots(max_area_share=None, **params).fit(X)
    assert uncapped.n_hotspots_ == 2
    assert len(set(uncapped.labels_[part <= 2])) == 1  # disc and both groups: one hotspot
    assert uncapped.hotspots_["area_km2"].max() > 0.05 * 16  # over the cap
    capped = HDBSCANHotspots(**params).fit(X)
    assert capped.max_area_km2_ == pytest.approx(0.8)
    assert (capped.n_split_, capped.n_dropped_) == (1, 0)
    assert capped.n_hotspots_ == 3
    assert (capped.hotspots_["area_km2"] <= 0.8).all()
    labels = {k: set(capped.labels_[part == k]) for k in range(4)}
    assert len(labels[1]) == len(labels[2]) == len(labels[3]) == 1  # each group whole
    assert len(labels[1] | labels[2] | labels[3]) == 3  # in three different hotspots
    assert -1 not in labels[1] | labels[2] | labels[3]
    assert np.mean(capped.labels_[part == 0] == -1) > 0.85  # the sprawl is (mostly) noise
    # each hotspot polygon holds its group's centre; the group's hotspot has at most its points
    # plus the disc points around its hole
    for k, (cx, cy) in ((1, (1700, 2000)), (2, (2300, 2000))):
        (label,) = labels[k]
        polygon = capped.hotspots_.geometry.iloc[label]
        assert polygon.contains(shapely.Point(cx, cy))
        assert polygon.area / 1e6 < 0.8
    # a cluster over the cap with no sub-cluster is dropped, with the count said: the plain
    # disc (709 points) and a dense 709-point group, min_cluster_size 400, so neither can hold
    # two sub-clusters (a lattice's tied distances would otherwise let HDBSCAN cut the disc
    # anywhere, and which cut it takes depends only on the order it meets the ties)
    dense = _lattice(500, 3500, 150, 10)
    lone = np.vstack([_lattice(2000, 2000, 600, 40), dense])
    lone_params = {**params, "min_cluster_size": 400}
    dropped = HDBSCANHotspots(**lone_params).fit(_frame(lone[:, 0], lone[:, 1]))
    assert (dropped.n_split_, dropped.n_dropped_, dropped.n_hotspots_) == (0, 1, 1)
    assert dropped.hotspots_["n_incidents"].iloc[0] == len(dense) == 709
    assert (dropped.labels_[: len(lone) - len(dense)] == -1).all()  # the disc is noise
    with pytest.raises(ValueError, match="max_area_share"):
        HDBSCANHotspots(max_area_share=1.5).fit(X)


@pytest.mark.slow  # numba compiles fast_hdbscan on a fresh machine: CI runs it
def test_hdbscan_hotspots_of_sector_092_fit_the_area_cap(sample_store):
    # Issue 14: in sector 092 over the default (densest) 28 days, HDBSCAN called a 4.06 km²
    # polygon holding 149 of the 230 incidents a hotspot: a third of the 12.7 km² sector, at
    # twice the sector's mean density. With the 5% cap every hotspot fits in 0.63 km², sits
    # inside one uncapped cluster (a sub-cluster of HDBSCAN's own tree) and is denser.
    from analysis.hotspots import HOTSPOT_COLUMNS, area_incidents, fit_hotspots
    from analysis.inputs import default_period, load_daily_counts, load_incidents

    period = default_period(load_daily_counts(sample_store))
    incidents = load_incidents(sample_store, HOTSPOT_COLUMNS, period)
    beats = sample_store.read_layer("beats")
    located, area = area_incidents(incidents, beats, level="sector", area_id="092")
    area_km2 = float(area.geometry.area.sum()) / 1e6
    assert len(located) == 230
    assert area_km2 == pytest.approx(12.69, abs=0.01)
    uncapped = HDBSCANHotspots(max_area_share=None).fit(located)
    assert uncapped.hotspots_["n_incidents"].iloc[0] == 149
    assert uncapped.hotspots_["area_km2"].iloc[0] == pytest.approx(4.06, abs=0.01)
    model, polygons = fit_hotspots(located, area, "hdbscan")
    assert model.max_area_km2_ == pytest.approx(0.05 * area_km2)
    assert model.n_split_ >= 1
    assert len(polygons) >= 1
    assert (polygons["area_km2"] <= 0.05 * area_km2 + 1e-9).all()
    # polygon areas and densities recomputed from the geometry and the incidents inside it
    points = shapely.points(located["x"].to_numpy(), located["y"].to_numpy())
    mean_density = len(located) / area_km2
    for label, row in enumerate(polygons.itertuples()):
        assert row.geometry.area / 1e6 == pytest.approx(row.area_km2)
        members = model.labels_ == label
        assert members.sum() == row.n_incidents
        assert shapely.contains(row.geometry, points[members]).all()
        assert row.n_incidents / row.area_km2 > 3 * mean_density
        parents = set(uncapped.labels_[members])
        assert len(parents) == 1  # nested in one uncapped cluster
        assert -1 not in parents


# --- KDE ------------------------------------------------------------------------------------
@pytest.mark.slow  # a large sklearn reference computation: CI runs it
def test_binned_fft_kde_matches_sklearn_kernel_density():
    from sklearn.neighbors import KernelDensity

    rng = np.random.default_rng(7)
    points = np.vstack(
        [rng.normal([0, 0], 150, size=(300, 2)), rng.normal([600, 300], 80, size=(200, 2))]
    )
    model = KDEHotspots(bandwidth_m=100.0, cell_size_m=5.0).fit(_frame(points[:, 0], points[:, 1]))
    gx, gy = model.grid_.centres()
    exact = (
        np.exp(
            KernelDensity(bandwidth=100.0)
            .fit(points)
            .score_samples(np.column_stack([gx.ravel(), gy.ravel()]))
        ).reshape(gx.shape)
        * len(points)
        * 1e6
    )
    relevant = exact > 0.01 * exact.max()
    rel = np.abs(model.density_[relevant] - exact[relevant]) / exact[relevant]
    assert rel.max() < 0.005
    # mass: the density integrates to the number of points (incidents per km² x km² per cell)
    assert model.density_.sum() * (5.0**2) / 1e6 == pytest.approx(500, rel=1e-3)


def test_kde_auto_bandwidth_rule_by_hand():
    rng = np.random.default_rng(2)
    points = rng.normal(0, 1000, size=(4096, 2))
    model = KDEHotspots(max_bandwidth_m=10_000.0).fit(_frame(points[:, 0], points[:, 1]))
    spreads = [
        min(points[:, i].std(), np.subtract(*np.percentile(points[:, i], [75, 25])) / 1.349)
        for i in (0, 1)
    ]
    assert model.bandwidth_m_ == pytest.approx(np.mean(spreads) * 4096 ** (-1 / 6))
    assert model.bandwidth_m_ == pytest.approx(250, rel=0.05)  # sigma 1000, n^(-1/6) = 1/4


def test_kde_hotspots_cover_the_densest_cells():
    x = np.r_[np.zeros(50), np.full(5, 3000.0)]
    model = KDEHotspots(bandwidth_m=60.0, cell_size_m=20.0, coverage=0.02).fit(_frame(x, x))
    top = model.hotspots_.iloc[0].geometry
    assert top.contains(__import__("shapely").Point(0, 0))
    assert not top.contains(__import__("shapely").Point(3000, 3000))


# --- Gi* ------------------------------------------------------------------------------------
def test_gistar_z_scores_equal_esda_on_a_small_grid():
    import libpysal
    from esda.getisord import G_Local

    rng = np.random.default_rng(11)
    counts = rng.poisson(2.0, size=(8, 11)).astype(float)
    counts[3:5, 4:6] += 12  # a hot patch
    grid = Grid(0.0, 0.0, 100.0, 8, 11)
    gx, gy = grid.centres()
    # incidents at the cell centres, as many as the counts
    rows = np.repeat(np.arange(counts.size), counts.ravel().astype(int))
    frame = _frame(gx.ravel()[rows], gy.ravel()[rows])
    model = GiStarHotspots(cell_size_m=100.0, permutations=999, random_state=0).fit(
        frame, grid=grid
    )
    weights = libpysal.weights.DistanceBand(
        np.column_stack([gx.ravel(), gy.ravel()]),
        threshold=150.0,
        binary=True,
        silence_warnings=True,
    )
    reference = G_Local(counts.ravel(), weights, transform="B", star=True, permutations=0)
    assert np.allclose(model.z_.ravel(), reference.Zs, rtol=0, atol=1e-10)
    assert np.allclose(model.counts_, counts)
    # one-sided upper-tail p-values: the hot patch is significant after FDR; a cell with a
    # z-score near 0 has a permutation p-value near one half (esda's permutations need a
    # 30-second numba compile, so they are not rerun here)
    assert model.is_hotspot_[3:5, 4:6].all()
    assert (model.p_sim_[3:5, 4:6] <= 2 / 1000).all()
    assert model.p_norm_[3:5, 4:6].max() < 1e-6
    middle = np.unravel_index(np.argmin(np.abs(model.z_)), model.z_.shape)
    assert 0.25 < model.p_sim_[middle] < 0.8


def test_gistar_is_deterministic_with_a_seed_and_validates():
    frame = _frame(
        np.r_[np.zeros(30), np.arange(40) * 37.0], np.r_[np.zeros(30), np.arange(40) * 53.0]
    )
    a = GiStarHotspots(random_state=5, permutations=499).fit(frame)
    b = GiStarHotspots(random_state=5, permutations=499).fit(frame)
    assert np.array_equal(a.p_sim_, b.p_sim_)
    with pytest.raises(ValueError, match="alpha"):
        GiStarHotspots(alpha=0).fit(frame)


# --- Knox -----------------------------------------------------------------------------------
@pytest.mark.slow
def test_knox_observed_pairs_match_pointpats(dense_month):
    from pointpats.spacetime import Knox

    sample = dense_month.iloc[:1500]
    table = knox_table(sample, distance_bands_m=(200.0,), time_bands_days=(3.0,), permutations=19)
    days = (sample["occurred_at"] - sample["occurred_at"].min()).dt.total_seconds() / 86400
    reference = Knox(
        sample[["x", "y"]].to_numpy(), days.to_numpy().reshape(-1, 1), 200.0, 3.0, permutations=0
    )
    assert table["observed"].iloc[0] == reference.nst


def test_knox_table_by_hand():
    tz = "America/Chicago"
    times = pd.to_datetime(["2018-01-01", "2018-01-02", "2018-01-20", "2018-01-21"]).tz_localize(tz)
    frame = _frame([0, 50, 1000, 5000], [0, 0, 0, 0], occurred_at=times)
    table = knox_table(
        frame, distance_bands_m=(100.0,), time_bands_days=(1.0, 30.0), permutations=9
    )
    # pairs within 100 m: only (0, 1), 1 day apart
    assert list(table["observed"]) == [1, 1]
    assert list(table["time_days"]) == [1.0, 30.0]


def test_linear_binning_of_distinct_locations_equals_binning_every_point(dense_month):
    x, y = dense_month["x"].to_numpy(), dense_month["y"].to_numpy()
    grid = Grid.around(x, y, 15.0, pad_m=750.0)
    ux, uy, weight, _ = unique_locations(x, y)
    assert len(ux) < len(x)  # real block-level data: duplicated locations
    every = grid.linear_counts(x, y)
    weighted = grid.linear_counts(ux, uy, weight)
    assert np.allclose(weighted, every, rtol=1e-12, atol=1e-9)
    assert every.sum() == pytest.approx(len(x))  # nothing lost inside the padded grid


def test_linear_binning_shares_by_hand():
    grid = Grid(0.0, 0.0, 10.0, 5, 6)  # centres at 5, 15, 25...
    # (5, 5): on the centre of cell (0, 0); (12, 17): 0.7 of a cell right, 0.2 up from (1, 0);
    # (-3, 5): only its 0.2 share to (0, 0) is inside; (25.5, -8): no share inside
    counts = grid.linear_counts(np.array([5.0, 12.0, -3.0, 25.5]), np.array([5.0, 17.0, 5.0, -8.0]))
    expected = np.zeros((5, 6))
    expected[0, 0] = 1.0 + 0.2
    expected[1, 0], expected[1, 1] = 0.3 * 0.8, 0.7 * 0.8
    expected[2, 0], expected[2, 1] = 0.3 * 0.2, 0.7 * 0.2
    assert np.allclose(counts, expected, atol=1e-12)
    weighted = grid.linear_counts(np.array([12.0]), np.array([17.0]), np.array([3.0]))
    assert weighted[1, 1] == pytest.approx(3 * 0.56)


def test_fft_convolution_equals_direct_convolution_even_at_the_edges():
    from scipy import signal

    from analysis.hotspots import _fft_convolve_separable

    rng = np.random.default_rng(3)
    k1 = np.exp(-0.5 * (np.arange(-6, 7) / 2.5) ** 2)
    wide = np.exp(-0.5 * (np.arange(-50, 51) / 10.0) ** 2)  # spectrum pruned to a quarter
    sparse = np.zeros((150, 170))
    sparse[rng.integers(0, 150, 300), rng.integers(0, 170, 300)] = rng.integers(1, 50, 300)
    for counts, k in (
        (rng.random((40, 57)), k1),  # counts up to the edges
        (np.pad(rng.random((20, 31)), 6), k1),  # padded by the kernel's reach
        (sparse, wide),
        (np.pad(sparse, 50), wide),
    ):
        direct = signal.fftconvolve(counts, np.outer(k, k), mode="same")  # float64, unpruned
        fast = _fft_convolve_separable(counts, k, scale=2.0)
        assert fast.dtype == np.float32
        assert fast.shape == counts.shape
        assert np.allclose(fast, 2.0 * direct, rtol=1e-5, atol=1e-5 * direct.max())


def test_default_kde_within_half_a_percent_of_kernel_density_on_real_data(dense_month):
    from sklearn.neighbors import KernelDensity

    beat = dense_month["beat"].astype(str)
    busiest = dense_month[beat == beat.value_counts().index[0]]  # ~200 real incidents
    model = KDEHotspots().fit(busiest)  # default bandwidth rule and cell rule
    assert model.cell_size_m_ == pytest.approx(model.bandwidth_m_ / 10)
    gx, gy = model.grid_.centres()
    points = busiest[["x", "y"]].to_numpy()
    exact = (
        np.exp(
            KernelDensity(bandwidth=model.bandwidth_m_)
            .fit(points)
            .score_samples(np.column_stack([gx.ravel(), gy.ravel()]))
        ).reshape(gx.shape)
        * len(points)
        * 1e6
    )
    relevant = exact > 0.01 * exact.max()
    assert relevant.sum() > 1000
    rel = np.abs(model.density_[relevant] - exact[relevant]) / exact[relevant]
    assert rel.max() < 0.005


def test_auto_cell_is_a_tenth_of_the_bandwidth_and_capped_by_max_cells():
    from analysis.hotspots import auto_cell_size

    x = np.array([0.0, 1000.0])
    assert auto_cell_size(x, x, 100.0, pad_m=500.0, max_cells=10**6) == pytest.approx(10.0)
    # 2000 m padded span: (2000 / c + 1)² <= 10,000 cells needs c >= 2000 / 99
    cell = auto_cell_size(x, x, 100.0, pad_m=500.0, max_cells=10_000)
    assert cell == pytest.approx(2000 / 99, rel=1e-6)
    grid = Grid.around(x, x, cell, pad_m=500.0)
    assert grid.n_rows * grid.n_cols <= 10_000
    with pytest.raises(ValueError, match="cell_size_m"):
        KDEHotspots(cell_size_m="fine").fit(_frame(x, x))


def test_export_hotspots_geojson_and_csv():
    import io
    import json

    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    from analysis.hotspots import export_hotspots

    polygons = gpd.GeoDataFrame(
        {
            "n_incidents": [12, 7],
            "top_offense": ["=HYPERLINK(1)", "THEFT"],
            "first_seen": pd.to_datetime(["2018-01-02 10:00", "2018-01-05 23:30"]).tz_localize(
                "America/Chicago"
            ),
        },
        geometry=[
            box(440_000, 4_630_000, 440_100, 4_630_100),
            box(441_000, 4_631_000, 441_050, 4_631_050),
        ],
        crs="EPSG:26916",
    )
    geo = json.loads(export_hotspots(polygons, "geojson"))
    assert [f["properties"]["n_incidents"] for f in geo["features"]] == [12, 7]
    lon, lat = geo["features"][0]["geometry"]["coordinates"][0][0]
    assert -90 < lon < -85
    assert 41 < lat < 43
    table = pd.read_csv(io.BytesIO(export_hotspots(polygons, "csv")))
    assert list(table.columns) == ["n_incidents", "top_offense", "first_seen", "lon", "lat"]
    assert geo["features"][0]["properties"]["first_seen"] == "2018-01-02T10:00:00-06:00"
    assert table["top_offense"].tolist() == ["'=HYPERLINK(1)", "THEFT"]  # no formula
    centre = polygons.to_crs("EPSG:4326").geometry.iloc[1].centroid
    assert table["lon"].iloc[1] == pytest.approx(centre.x, abs=1e-6)
    with pytest.raises(ValueError, match="fmt must be"):
        export_hotspots(polygons, "kml")


def test_gistar_auto_cell_is_its_150_m_default(sample_store):
    # fit_hotspots took cell_size_m="auto" (KDE's word) straight into the Gi* grid, a TypeError;
    # for Gi* "auto" now means its documented 150 m cell, the same fit as passing 150.
    from analysis.hotspots import HOTSPOT_COLUMNS, area_incidents, fit_hotspots

    incidents = sample_store.load_incidents(
        columns=list(HOTSPOT_COLUMNS), start="2018-01-01", end="2018-02-01"
    )
    located, area = area_incidents(
        incidents, sample_store.read_layer("beats"), level=None, area_id=None
    )
    auto, auto_polygons = fit_hotspots(located, area, "gistar", cell_size_m="auto")
    fixed, fixed_polygons = fit_hotspots(located, area, "gistar", cell_size_m=150.0)
    assert auto.cell_size_m == 150.0
    np.testing.assert_array_equal(auto.z_, fixed.z_)
    assert len(auto_polygons) == len(fixed_polygons)


@pytest.mark.parametrize("n", [100_000, 250_001])
def test_binned_percentiles_equal_numpys(n):
    # the counting path (from 100,000 values) gives numpy's own percentiles, to the last bit,
    # on continuous values, on few distinct values (ties across bins) and on rounded ones
    from analysis.hotspots import percentiles

    rng = np.random.default_rng(n)
    cases = {
        "normal": rng.normal(440_000, 5_000, n),
        "ties": rng.integers(0, 50, n).astype(float),
        "rounded": np.round(rng.normal(0, 1_000, n)),
        "skewed": rng.lognormal(0, 3, n),
    }
    qs = [0, 0.1, 25, 33.3, 50, 75, 99.9, 100]
    for name, values in cases.items():
        assert np.array_equal(percentiles(values, qs), np.percentile(values, qs)), name
    assert np.array_equal(percentiles(np.full(n, 7.0), [25, 75]), [7.0, 7.0])


def test_kde_auto_bandwidth_on_many_points_equals_the_rule_with_numpy():
    # the counting percentiles give the rule's value computed with numpy's percentile and
    # std on 300,000 points (the fast path)
    from analysis.hotspots import _silverman_bandwidth

    rng = np.random.default_rng(3)
    x = rng.normal(0, 900, 300_000)
    y = rng.standard_t(3, 300_000) * 700
    spreads = [min(v.std(), np.subtract(*np.percentile(v, [75, 25])) / 1.349) for v in (x, y)]
    assert _silverman_bandwidth(x, y) == np.mean(spreads) * 300_000 ** (-1 / 6)


@pytest.mark.parametrize("scale", [10.0, 1_000.0, 20_000.0])
def test_clipped_auto_bandwidth_equals_the_clip_of_the_rule(scale):
    # the bounds that skip the exact quartiles give the clip of the exact rule, to the last
    # bit: far above the maximum (a city's 10M incidents), far below the minimum, near a clip
    # (the bounds cannot decide: the exact rule) and with ties and a degenerate axis
    from analysis.hotspots import _clipped_silverman, _silverman_bandwidth

    rng = np.random.default_rng(int(scale))
    n = 300_000
    factor = n ** (-1 / 6)
    cases = {
        "normal": (rng.normal(440_000, scale, n), rng.normal(4_600_000, scale, n)),
        "heavy tails": (rng.standard_t(3, n) * scale, rng.normal(0, scale, n)),
        "ties": (np.round(rng.normal(0, scale, n) / 50) * 50, rng.normal(0, scale, n)),
        "one value on an axis": (np.full(n, 7.0), rng.normal(0, scale, n)),
    }
    for name, (x, y) in cases.items():
        for low, high in [(50.0, 300.0), (1.0, 1e9), (300.0, 50.0)]:
            want = float(np.clip(_silverman_bandwidth(x, y), low, high))
            assert _clipped_silverman(x, y, low, high) == want, (name, low, high)
        # a clip just below and just above the rule's own value: the exact path decides
        exact = _silverman_bandwidth(x, y)
        assert _clipped_silverman(x, y, 1.0, exact * (1 - 1e-12)) == exact * (1 - 1e-12), name
        assert _clipped_silverman(x, y, exact * (1 + 1e-12), 1e9) == exact * (1 + 1e-12), name
    # the three scales put the rule below, inside and above [50, 300] m
    assert {10.0: 1.2, 1_000.0: 122.2, 20_000.0: 2444.4}[scale] == round(scale * factor, 1)


def test_linear_counts_on_two_threads_equal_one_pass():
    # from 1M points the binning runs in two halves on two threads: the same grid as the
    # compiled one-pass kernel over all points (sums in another order: equal to 1e-9)
    from analysis._binning import linear_binning

    rng = np.random.default_rng(4)
    x = rng.normal(0, 800, 1_200_000)
    y = rng.normal(0, 800, 1_200_000)
    grid = Grid.around(x, y, 40.0, pad_m=200.0)
    one = np.zeros((grid.n_rows, grid.n_cols))
    linear_binning(x, y, np.empty(0), grid.x0, grid.y0, grid.cell_size_m, one)
    two = grid.linear_counts(x, y)
    np.testing.assert_allclose(two, one, rtol=1e-9, atol=1e-9)
    assert two.sum() == pytest.approx(1_200_000)
    weights = rng.uniform(0, 2, 1_200_000)
    one[:] = 0
    linear_binning(x, y, weights, grid.x0, grid.y0, grid.cell_size_m, one)
    np.testing.assert_allclose(grid.linear_counts(x, y, weights), one, rtol=1e-9, atol=1e-9)


@pytest.mark.parametrize("bad", [np.nan, np.inf, -np.inf])
def test_points_missing_or_infinite_are_refused_with_their_row(bad):
    # the check looks at the extremes only (NaN propagates to them); the message names the
    # first bad row, in x or in y
    from analysis.hotspots import _xy

    x = np.array([1.0, 2.0, 3.0, 4.0])
    y = np.array([5.0, 6.0, 7.0, 8.0])
    got_x, got_y = _xy(pd.DataFrame({"x": x, "y": y}))
    assert got_x.tolist() == x.tolist()
    assert got_y.tolist() == y.tolist()
    for column, row in (("x", 2), ("y", 1)):
        frame = pd.DataFrame({"x": x, "y": y})
        frame.loc[row, column] = bad
        with pytest.raises(ValueError, match=f"X row {row}: coordinates are missing or not finite"):
            _xy(frame)
