"""Beat plan measures on hand-built polygons, the solver on grids with known optima."""

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from shapely.geometry import Point, box

from analysis import beatplan as bp
from geodata.errors import InputError

CRS = "EPSG:26916"


def _plan(rows):
    return gpd.GeoDataFrame(
        pd.DataFrame([{k: v for k, v in r.items() if k != "geometry"} for r in rows]),
        geometry=[r["geometry"] for r in rows],
        crs=CRS,
    )


def _incidents(points, workload=None):
    xy = np.asarray(points, dtype=float)
    return pd.DataFrame(
        {"x": xy[:, 0], "y": xy[:, 1], "workload": workload if workload is not None else 1.0}
    )


# --- measures -----------------------------------------------------------------------------
def test_polsby_popper_of_square_circle_and_rectangle():
    shapes = gpd.GeoSeries(
        [box(0, 0, 100, 100), Point(0, 0).buffer(100, quad_segs=256), box(0, 0, 100, 400)]
    )
    pp = bp.polsby_popper(shapes)
    assert pp[0] == pytest.approx(math.pi / 4)
    assert pp[1] == pytest.approx(1.0, abs=1e-4)
    assert pp[2] == pytest.approx(4 * math.pi * 40_000 / 1000**2)  # 4πA/P², P = 1000


def test_shape_measures_equal_esda_on_the_real_beats(sample_store):
    # the shapely formulas that replaced esda (no libpysal at start-up) give esda's values
    import esda.shape

    beats = sample_store.read_layer("beats")
    assert bp.polsby_popper(beats.geometry) == pytest.approx(
        np.asarray(esda.shape.isoperimetric_quotient(beats.geometry), float), rel=1e-12
    )
    assert bp.convex_hull_ratio(beats.geometry) == pytest.approx(
        np.asarray(esda.shape.convex_hull_ratio(beats.geometry), float), rel=1e-12
    )


def test_balance_measures_by_hand():
    assert bp.coefficient_of_variation([1, 2, 3]) == pytest.approx(math.sqrt(2 / 3) / 2)
    assert bp.coefficient_of_variation([5, 5, 5]) == 0.0
    assert bp.max_min_ratio([2, 4, 3]) == 2.0
    assert bp.max_min_ratio([0, 4]) == math.inf
    assert bp.gini([1, 1, 1]) == pytest.approx(0.0)
    assert bp.gini([0, 0, 1]) == pytest.approx(2 / 3)  # one of three holds everything
    assert bp.gini([1, 3]) == pytest.approx(0.25)  # mean abs diff 1 / (2 * mean 2)


def test_evaluate_plan_on_hand_built_beats_with_a_split_beat():
    l_shape = shapely.union_all(
        [box(0, 100, 100, 200), box(0, 200, 100, 300), box(100, 200, 200, 300)]
    )
    plan = _plan(
        [
            {"beat": "A", "sector": "S1", "district": "01", "geometry": box(0, 0, 100, 100)},
            {"beat": "B", "sector": "S1", "district": "01", "geometry": box(100, 0, 200, 100)},
            # beat C in two pieces that do not touch
            {"beat": "C", "sector": "S2", "district": "01", "geometry": box(300, 0, 400, 100)},
            {"beat": "C", "sector": "S2", "district": "01", "geometry": box(500, 0, 600, 100)},
            {"beat": "D", "sector": "S2", "district": "01", "geometry": l_shape},
        ]
    )
    incidents = _incidents(
        [(50, 50), (50, 50), (20, 80), (150, 50), (350, 50), (550, 50), (50, 150)],
        workload=[1.0, 1.0, 2.0, 4.0, 1.0, 1.0, 2.0],
    )
    stations = gpd.GeoDataFrame({"district": ["01"]}, geometry=[Point(0, 0)], crs=CRS)
    ev = bp.evaluate_plan(plan, incidents, stations=stations)
    beats = ev.beats.set_index("beat")
    assert beats["workload"].to_dict() == {"A": 4.0, "B": 4.0, "C": 2.0, "D": 2.0}
    assert beats["incidents"].to_dict() == {"A": 3, "B": 1, "C": 2, "D": 1}
    assert beats.loc["A", "share"] == pytest.approx(4 / 12)
    assert beats["contiguous"].to_dict() == {"A": True, "B": True, "C": False, "D": True}
    assert beats.loc["C", "n_parts"] == 2
    assert beats.loc["A", "polsby_popper"] == pytest.approx(math.pi / 4)
    assert beats.loc["D", "convex_hull_ratio"] == pytest.approx(30_000 / 35_000)  # L: 3 of 3.5
    assert beats.loc["A", "area_km2"] == pytest.approx(0.01)
    # A's centre is (50, 50): distances 0, 0 and hypot(30, 30)
    assert beats.loc["A", "mean_dist_centre_m"] == pytest.approx(math.hypot(30, 30) / 3)
    assert beats.loc["B", "mean_dist_station_m"] == pytest.approx(math.hypot(150, 50))
    s = ev.summary
    assert s["contiguous"] is False
    assert s["n_split_beats"] == 1
    assert s["workload_cv"] == pytest.approx(bp.coefficient_of_variation([4, 4, 2, 2]))
    assert s["max_min_ratio"] == 2.0
    assert s["sector_sizes"] == {"S1": 2, "S2": 2}
    assert s["sector_workload_cv"] == pytest.approx(bp.coefficient_of_variation([8, 4]))


def test_compare_plans_counts_incidents_that_change_beat():
    before = _plan(
        [
            {"beat": "A", "geometry": box(0, 0, 100, 100)},
            {"beat": "B", "geometry": box(100, 0, 200, 100)},
        ]
    )
    after = _plan(
        [
            {"beat": "A", "geometry": box(0, 0, 160, 100)},
            {"beat": "B", "geometry": box(160, 0, 200, 100)},
        ]
    )
    incidents = _incidents([(50, 50), (60, 50), (120, 50), (180, 50)])
    table = bp.compare_plans(
        bp.evaluate_plan(before, incidents), bp.evaluate_plan(after, incidents)
    )
    row = table.set_index("measure")
    assert row.loc["incidents_changing_beat", "after"] == 1  # (120, 50) moves from B to A
    assert row.loc["workload_cv", "before"] == 0.0
    assert row.loc["workload_cv", "after"] == pytest.approx(0.5)  # 3 vs 1
    assert row.loc["workload_cv", "change"] == pytest.approx(0.5)


def test_evaluate_plan_rejects_unprojected_or_beatless_plans():
    plan = _plan([{"beat": "A", "geometry": box(0, 0, 1, 1)}]).set_crs(
        "EPSG:4326", allow_override=True
    )
    with pytest.raises(InputError, match="projected CRS"):
        bp.evaluate_plan(plan, _incidents([(0.5, 0.5)]))
    with pytest.raises(InputError, match="no 'beat' column"):
        bp.evaluate_plan(plan.rename(columns={"beat": "zone"}).to_crs(CRS), _incidents([(0, 0)]))


# --- units --------------------------------------------------------------------------------
def test_build_units_assigns_current_beat_by_largest_overlap():
    beats = _plan(
        [
            {"beat": "A", "district": "01", "geometry": box(0, 0, 160, 300)},
            {"beat": "B", "district": "01", "geometry": box(160, 0, 300, 300)},
        ]
    )
    incidents = _incidents([(50, 50), (120, 250), (170, 150), (250, 250)], workload=[1, 2, 3, 4])
    units = bp.build_units(beats, incidents, cell_size_m=100)
    frame = units.frame.sort_values(["cy", "cx"]).reset_index(drop=True)
    assert len(frame) == 9
    # columns x in [100, 200]: 60 m in A, 40 m in B -> A
    assert frame["beat"].tolist() == ["A", "A", "B"] * 3
    assert frame["workload"].sum() == 10.0
    assert frame["area_m2"].sum() == pytest.approx(90_000)
    assert len(units.edges) == 12  # rook neighbours of a 3 x 3 grid
    assert units.edges["shared_m"].tolist() == pytest.approx([100.0] * 12)


def _grid(nx_, ny_, workload=None, cell=100.0):
    beats = _plan([{"beat": "X", "district": "01", "geometry": box(0, 0, nx_ * cell, ny_ * cell)}])
    centres = [((i + 0.5) * cell, (j + 0.5) * cell) for i in range(nx_) for j in range(ny_)]
    w = np.ones(len(centres)) if workload is None else np.asarray(workload, dtype=float)
    return beats, _incidents(centres, workload=w)


def _solve(units, k, **kw):
    f = units.frame
    return bp.BalancedBeats(
        f["workload"].to_numpy(),
        f["area_m2"].to_numpy(),
        f["perimeter_m"].to_numpy(),
        f[["cx", "cy"]].to_numpy(),
        units.edges[["i", "j", "shared_m"]].to_numpy(),
        k,
        **kw,
    ).solve()


def test_chain_with_a_unique_balanced_split():
    beats, incidents = _grid(4, 1, workload=[3, 1, 1, 3])
    units = bp.build_units(beats, incidents, cell_size_m=100)
    solver = _solve(units, 2, random_state=3)
    order = np.argsort(units.frame["cx"].to_numpy())
    labels = solver.labels_[order]
    assert labels[0] == labels[1] != labels[2] == labels[3]  # the only 4 | 4 split
    assert solver.workload_cv_ == 0.0


def test_grid_proposal_reaches_the_known_optimum_of_2x3_rectangles():
    beats, incidents = _grid(6, 4)
    units = bp.build_units(beats, incidents, cell_size_m=100)
    solver = _solve(units, 4, random_state=0)
    assert np.bincount(solver.labels_).tolist() == [6, 6, 6, 6]
    plan = bp.plan_from_units(units, solver.labels_)
    ev = bp.evaluate_plan(plan, incidents)
    assert ev.summary["workload_cv"] == 0.0
    assert ev.summary["contiguous"] is True
    # the most compact hexomino is the 2 x 3 rectangle: PP = 4π·60,000 / 1,000²
    assert ev.beats["polsby_popper"].to_numpy() == pytest.approx([0.24 * math.pi] * 4)


@pytest.mark.slow
def test_same_seed_same_plan():
    rng = np.random.default_rng(7)
    beats, incidents = _grid(8, 6, workload=rng.integers(0, 6, 48))
    units = bp.build_units(beats, incidents, cell_size_m=100)
    first = _solve(units, 5, random_state=11).labels_
    again = _solve(units, 5, random_state=11).labels_
    assert np.array_equal(first, again)


def test_minimal_change_moves_only_the_boundary_unit_needed():
    beats, incidents = _grid(6, 1)
    units = bp.build_units(beats, incidents, cell_size_m=100)
    order = np.argsort(units.frame["cx"].to_numpy())
    initial = np.empty(6, dtype=int)
    initial[order] = [0, 0, 0, 0, 1, 1]  # 4 vs 2
    solver = _solve(units, 2, initial=initial, minimal_change=True, target_cv=0.05)
    moved = np.flatnonzero(solver.labels_ != initial)
    assert moved.tolist() == [order[3]]  # the boundary unit of the heavy beat
    assert solver.workload_cv_ == 0.0


def test_minimal_change_never_splits_a_beat():
    # beat 0 is a U around beat 1; its bottom-middle unit is an articulation point
    beats, incidents = _grid(3, 2, workload=[1, 1, 5, 1, 1, 1])
    units = bp.build_units(beats, incidents, cell_size_m=100)
    f = units.frame
    initial = np.where((f["cx"] == 150) & (f["cy"] == 150), 1, 0)
    solver = _solve(units, 2, initial=initial, minimal_change=True, target_cv=0.0)
    plan = bp.plan_from_units(units, solver.labels_)
    assert bp.evaluate_plan(plan, incidents).summary["contiguous"] is True


def test_group_sectors_of_a_chain_of_eight_beats():
    adjacency = {i: {j for j in (i - 1, i + 1) if 0 <= j < 8} for i in range(8)}
    groups = bp.group_sectors(adjacency, dict.fromkeys(range(8), 1.0), random_state=0)
    sizes = np.bincount(list(groups.values()))
    assert sorted(sizes.tolist()) == [4, 4]
    for sector in set(groups.values()):  # contiguous: consecutive beats on the chain
        members = sorted(b for b, g in groups.items() if g == sector)
        assert members == list(range(members[0], members[0] + len(members)))


def test_proposal_on_a_synthetic_district_keeps_names_and_sectors():
    beats = _plan(
        [
            {
                "beat": f"01{i}",
                "sector": "011",
                "district": "01",
                "geometry": box(i * 200, 0, (i + 1) * 200, 600),
            }
            for i in range(1, 7)
        ]
    )
    rng = np.random.default_rng(1)
    pts = np.column_stack([rng.uniform(200, 1400, 600), rng.uniform(0, 600, 600)])
    pts = np.vstack([pts, np.column_stack([rng.uniform(200, 400, 300), rng.uniform(0, 600, 300)])])
    incidents = _incidents(pts)
    prop = bp.propose_beats(
        beats, incidents, district="01", n_beats=6, search=bp.SearchOptions(cell_size_m=100)
    )
    out = prop.to_dict()
    assert out["current"]["workload_cv"] > 0.3
    assert out["proposed"]["workload_cv"] < 0.57 * out["current"]["workload_cv"]
    assert out["proposed"]["contiguous"] is True
    assert set(prop.proposed_plan["beat"]) == set(beats["beat"])  # matched to current names
    assert sorted(out["proposed"]["sector_sizes"].values()) == [3, 3]
    assert out["units_moved"] == int((prop.units["proposed"] != prop.units["beat"]).sum())
    with pytest.raises(InputError, match="minimal change keeps the district's 6 beats"):
        bp.propose_beats(
            beats,
            incidents,
            district="01",
            n_beats=5,
            search=bp.SearchOptions(minimal_change=True, cell_size_m=100),
        )


def test_group_sectors_keeps_a_requested_count_and_balances_workload():
    # a chain of 9 beats: 3 sectors of 3 by default would be round(9/4) = 2; ask for 3
    adjacency = {i: {j for j in (i - 1, i + 1) if 0 <= j < 9} for i in range(9)}
    workload = dict.fromkeys(range(9), 1.0)
    groups = bp.group_sectors(adjacency, workload, n_sectors=3, random_state=0)
    assert sorted(np.bincount(list(groups.values())).tolist()) == [3, 3, 3]
    two = bp.group_sectors(adjacency, workload, random_state=0)
    assert sorted(np.bincount(list(two.values())).tolist()) == [4, 5]


def test_apportion_beats_by_largest_remainder():
    workload = pd.Series({"A": 50.0, "B": 30.0, "C": 20.0})
    # 10 beats, 1 each first; the other 7 shared 3.5 / 2.1 / 1.4 -> 3, 2, 1 + largest remainder A
    assert bp.apportion_beats(workload, 10).to_dict() == {"A": 5, "B": 3, "C": 2}
    assert bp.apportion_beats(workload, 3).to_dict() == {"A": 1, "B": 1, "C": 1}
    with pytest.raises(ValueError, match="2 beats cannot give 3 districts"):
        bp.apportion_beats(workload, 2)
    # an empty period (no workload anywhere): 9 beats, 3 each; 10: the first gets the extra one
    idle = pd.Series({"A": 0.0, "B": 0.0, "C": 0.0})
    assert bp.apportion_beats(idle, 9).to_dict() == {"A": 3, "B": 3, "C": 3}
    assert sorted(bp.apportion_beats(idle, 10).tolist()) == [3, 3, 4]


def test_city_wide_proposal_is_nested_in_districts_and_apportions_beats():
    beats = _plan(
        [
            {"beat": "0111", "sector": "011", "district": "01", "geometry": box(0, 0, 300, 600)},
            {"beat": "0112", "sector": "011", "district": "01", "geometry": box(300, 0, 600, 600)},
            {"beat": "0211", "sector": "021", "district": "02", "geometry": box(600, 0, 900, 600)},
            {"beat": "0212", "sector": "021", "district": "02", "geometry": box(900, 0, 1200, 600)},
        ]
    )
    rng = np.random.default_rng(5)
    # district 01 carries three times the workload of district 02
    pts = np.vstack(
        [
            np.column_stack([rng.uniform(0, 600, 900), rng.uniform(0, 600, 900)]),
            np.column_stack([rng.uniform(600, 1200, 300), rng.uniform(0, 600, 300)]),
        ]
    )
    incidents = _incidents(pts)
    search = bp.SearchOptions(cell_size_m=100, n_starts=4)
    prop = bp.propose_city(beats, incidents, apportion=True, search=search)
    assert prop.parameters["beats_per_district"] == {"01": 3, "02": 1}
    units = prop.units
    # nested: every proposed beat lies in one district
    assert units.groupby("proposed")["district"].nunique().max() == 1
    assert units.groupby("district")["proposed"].nunique().to_dict() == {"01": 3, "02": 1}
    out = prop.to_dict()
    assert out["current"]["workload_cv"] == pytest.approx(0.5, abs=0.1)  # 450/450/150/150
    assert out["proposed"]["workload_cv"] < 0.15
    assert out["proposed"]["contiguous"] is True
