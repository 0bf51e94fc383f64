"""Faster paths of the 10M-incident commands give what the former paths gave (issue 17, item 6).

City-wide KDE reads only the coordinates into NumPy (:func:`analysis.distributed.located_points`)
the store-wide daily counts are cached beside the store per store version, and beat planning's
default period comes from the store's latest month: each is checked against the plain read on
the bundled Chicago and Seattle data.
"""

import json
import shutil
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest

from analysis import hotspots, inputs
from analysis.cli import main
from analysis.distributed import located_points
from geodata import schema
from geodata.daycounts import store_last_day
from geodata.store import IncidentStore


@pytest.mark.parametrize("store_name", ["sample_store", "seattle_store"])
def test_located_points_are_the_located_incidents_in_order(request, store_name):
    store = request.getfixturevalue(store_name)
    frame = store.load_incidents(columns=[schema.X, schema.Y]).dropna(subset=[schema.X, schema.Y])
    x, y = located_points(store)
    np.testing.assert_array_equal(x, frame[schema.X].to_numpy())
    np.testing.assert_array_equal(y, frame[schema.Y].to_numpy())
    assert 0 < len(x) <= store.count()
    # a period: the same as the period's read
    start, end = pd.Timestamp("2018-01-01"), pd.Timestamp("2018-01-15")
    some = store.load_incidents(columns=[schema.X, schema.Y], start=start, end=end).dropna()
    x, y = located_points(store, start=start, end=end)
    np.testing.assert_array_equal(x, some[schema.X].to_numpy())
    assert len(x) == len(some) > 0


def test_city_wide_kde_command_equals_the_fit_on_all_incidents(sample_store, capsys):
    assert main(["hotspots", "--method", "kde", "--json", "--store", str(sample_store.root)]) == 0
    got = json.loads(capsys.readouterr().out)
    incidents = inputs.load_hotspot_incidents(sample_store)
    located, beats = hotspots.area_incidents(
        incidents, sample_store.read_layer("beats"), level=None, area_id=None
    )
    model, polygons = hotspots.fit_hotspots(located, beats, "kde")
    assert got["n_incidents"] == len(located)
    assert got["fitted"]["bandwidth_m_"] == pytest.approx(model.bandwidth_m_, rel=1e-12)
    assert got["n_hotspots"] == len(polygons) > 0
    densities = [h["density_per_km2"] for h in got["hotspots"]]
    assert densities == pytest.approx(polygons["density_per_km2"].tolist(), rel=1e-9)


def test_daily_counts_are_cached_per_store_version(sample_store, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root, ignore=shutil.ignore_patterns("cache"))
    store = IncidentStore(root)
    occurred = store.load_incidents(columns=[schema.OCCURRED_AT])[schema.OCCURRED_AT]
    expected = inputs.daily_counts(occurred)
    first = inputs.load_daily_counts(store)
    cached = list((root / "cache" / "daily-counts").glob("*.npy"))
    assert len(cached) == 1
    again = inputs.load_daily_counts(store)  # read from the cache
    pd.testing.assert_series_equal(first, expected, check_names=False)
    pd.testing.assert_series_equal(again, expected, check_names=False)
    # a change of the store (here its metadata) is another version: counted again, and the
    # former version's file is dropped
    store.update_meta(note="changed")
    pd.testing.assert_series_equal(inputs.load_daily_counts(store), expected, check_names=False)
    now = list((root / "cache" / "daily-counts").glob("*.npy"))
    assert len(now) == 1
    assert now != cached
    # a torn cache file is counted again, not trusted
    now[0].write_bytes(b"not an array")
    pd.testing.assert_series_equal(inputs.load_daily_counts(store), expected, check_names=False)


@pytest.mark.parametrize("store_name", ["sample_store", "seattle_store"])
def test_area_neighbours_from_nearby_beats_equal_the_whole_layers(request, store_name):
    # a profile measures only the borders near its area: the same neighbours as from the
    # pairs of the whole layer, for every sector and district
    from analysis.profiles import _neighbours
    from geodata.boundaries import beat_neighbours

    store = request.getfixturevalue(store_name)
    beats = store.read_layer("beats")
    pairs = beat_neighbours(beats)
    checked = 0
    for level in ("sector", "district"):
        if level not in beats.columns:
            continue
        for area in beats[level].dropna().unique():
            members = beats[beats[level] == area]
            assert _neighbours(beats, members, level, None) == _neighbours(
                beats, members, level, pairs
            )
            checked += 1
    for beat in beats[schema.BEAT].head(40):
        members = beats[beats[schema.BEAT] == beat]
        got = _neighbours(beats, members, "beat", None)
        assert got == _neighbours(beats, members, "beat", pairs)
        assert got[1]  # every beat has a neighbour
        checked += 1
    assert checked > 40


def test_city_wide_kde_binning_is_cached_per_store_version(sample_store, tmp_path, capsys):
    # the second estimate reads the binned counts kept beside the store and prints the same
    # answer; a change of the store is another version (binned again, the former file
    # dropped); a torn file is binned again, not trusted
    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root, ignore=shutil.ignore_patterns("cache"))
    argv = ["hotspots", "--method", "kde", "--json", "--store", str(root)]

    def run() -> dict:
        assert main(argv) == 0
        return json.loads(capsys.readouterr().out)

    first = run()
    cached = list((root / "cache" / "kde").glob("*.npz"))
    assert len(cached) == 1
    assert run() == first
    incidents = inputs.load_hotspot_incidents(sample_store)
    located, beats = hotspots.area_incidents(
        incidents, sample_store.read_layer("beats"), level=None, area_id=None
    )
    model, _ = hotspots.fit_hotspots(located, beats, "kde")
    assert first["n_incidents"] == len(located)
    assert first["fitted"]["bandwidth_m_"] == model.bandwidth_m_
    assert first["params"]["bandwidth_m"] == "auto"  # the parameters as given, not the fitted
    IncidentStore(root).update_meta(note="changed")
    assert run() == first
    now = list((root / "cache" / "kde").glob("*.npz"))
    assert len(now) == 1
    assert now != cached
    now[0].write_bytes(b"not an archive")
    assert run() == first
    # another bandwidth is another file of the same version; an empty period is no estimate
    assert main([*argv, "--bandwidth-m", "120"]) == 0
    other = json.loads(capsys.readouterr().out)
    assert other["fitted"]["bandwidth_m_"] == 120.0
    assert len(list((root / "cache" / "kde").glob("*.npz"))) == 2
    assert main([*argv, "--from", "1990-01-01", "--to", "1990-01-31"]) == 0
    assert json.loads(capsys.readouterr().out)["n_hotspots"] == 0


def test_kde_fit_counts_of_bin_equal_fit(dense_points):
    # bin() then fit_counts() with the bandwidth bin() chose is fit(), as the cache replays it
    x, y = dense_points
    frame = pd.DataFrame({schema.X: x, schema.Y: y})
    fitted = hotspots.KDEHotspots().fit(frame)
    model = hotspots.KDEHotspots()
    counts = model.bin(frame)
    replayed = hotspots.KDEHotspots().fit_counts(
        counts, model.grid_, n_incidents=model.n_incidents_, bandwidth_m=model.bandwidth_m_
    )
    assert replayed.bandwidth_m_ == fitted.bandwidth_m_
    np.testing.assert_array_equal(replayed.density_, fitted.density_)
    assert replayed.hotspots_["density_per_km2"].tolist() == (
        fitted.hotspots_["density_per_km2"].tolist()
    )
    with pytest.raises(ValueError, match="'auto' is estimated from the points"):
        hotspots.KDEHotspots().fit_counts(counts, model.grid_, n_incidents=len(x))


@pytest.fixture(scope="module")
def dense_points(sample_store):
    located = sample_store.load_incidents(columns=[schema.X, schema.Y]).dropna()
    return located[schema.X].to_numpy(), located[schema.Y].to_numpy()


def test_city_kde_equals_the_fit_and_has_the_stores_crs(sample_store, tmp_path):
    from analysis.distributed import city_kde

    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root, ignore=shutil.ignore_patterns("cache"))
    store = IncidentStore(root)
    x, y = located_points(store)
    fitted = hotspots.KDEHotspots().fit(pd.DataFrame({schema.X: x, schema.Y: y}))
    for _ in range(2):  # binned, then from the kept counts
        model = city_kde(store)
        np.testing.assert_array_equal(model.density_, fitted.density_)
        assert model.n_incidents_ == len(x)
        assert model.hotspots_.crs == store.analysis_crs
    assert city_kde(store, start=pd.Timestamp("1990-01-01"), end=pd.Timestamp("1990-02-01")) is None
    # with nothing kept for the store's version the files are read before the estimator's
    # modules load (another path): a period's estimate, and an empty period, the same way
    fresh = IncidentStore(tmp_path / "fresh")
    shutil.copytree(sample_store.root, fresh.root, ignore=shutil.ignore_patterns("cache"))
    assert city_kde(fresh, start=pd.Timestamp("1990-01-01"), end=pd.Timestamp("1990-02-01")) is None
    shutil.rmtree(fresh.root / "cache", ignore_errors=True)
    start, end = pd.Timestamp("2018-01-01"), pd.Timestamp("2018-01-15")
    x, y = located_points(fresh, start=start, end=end)
    fitted = hotspots.KDEHotspots().fit(pd.DataFrame({schema.X: x, schema.Y: y}))
    model = city_kde(fresh, start=start, end=end)
    np.testing.assert_array_equal(model.density_, fitted.density_)
    assert model.n_incidents_ == len(x) > 0


def test_the_kde_command_and_the_store_load_no_geometry_modules_at_import():
    # the city-wide KDE reads its 10M points while GeoPandas, SciPy and the binning kernel
    # load (analysis.distributed.city_kde): none of them may come with the command's modules
    import subprocess
    import sys
    from pathlib import Path

    code = (
        "import sys\n"
        "import analysis.cli.hotspots, analysis.distributed, analysis.hotspots, geodata.store\n"
        "print(sorted(m for m in ('geopandas', 'numba', 'scipy', 'rasterio') if m in sys.modules))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=Path(__file__).resolve().parents[2],
        capture_output=True,
        text=True,
        check=True,
        timeout=120,
    )
    assert done.stdout.strip() == "[]"


def test_located_drops_exactly_the_rows_missing_a_coordinate():
    # NaN and null are unlocated; infinities are kept (as before), also when +inf and -inf
    # make the sums' quick check NaN; a file without missing values is returned as read
    import pyarrow as pa

    from analysis.distributed import _located

    def table(x, y):
        return pa.table({schema.X: pa.array(x, pa.float64()), schema.Y: pa.array(y, pa.float64())})

    x, y = _located(table([1.0, 2.0, 3.0], [4.0, 5.0, 6.0]))
    assert x.tolist() == [1.0, 2.0, 3.0]
    assert y.tolist() == [4.0, 5.0, 6.0]
    x, y = _located(table([1.0, float("nan"), 3.0, None], [4.0, 5.0, float("nan"), 7.0]))
    assert x.tolist() == [1.0]
    assert y.tolist() == [4.0]
    x, y = _located(table([np.inf, -np.inf, 3.0], [4.0, 5.0, 6.0]))
    assert x.tolist() == [np.inf, -np.inf, 3.0]
    assert y.tolist() == [4.0, 5.0, 6.0]
    x, y = _located(table([], []))
    assert len(x) == len(y) == 0


def test_module_entry_point_runs_exit_handlers_and_keeps_the_exit_code(sample_store, tmp_path):
    # `python -m analysis` ends without the interpreter's teardown (analysis.__main__): the
    # exit handlers still run (the benchmarks' peak-memory hook is one), the output is whole
    # and the exit code is the command's
    from pathlib import Path

    from bench.measure import run_measured

    repo = Path(__file__).resolve().parents[2]
    flag = tmp_path / "handlers-ran"
    prelude = f"import atexit\natexit.register(lambda: open({str(flag)!r}, 'w').write('ran'))"
    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root, ignore=shutil.ignore_patterns("cache"))
    done = run_measured(
        ["-m", "analysis", "hotspots", "--method", "kde", "--json", "--store", str(root)],
        prelude=prelude,
        cwd=repo,
    )
    assert done.returncode == 0, done.stderr
    assert json.loads(done.stdout)["n_incidents"] == len(located_points(sample_store)[0])
    assert flag.read_text() == "ran"
    flag.unlink()
    bad = run_measured(
        ["-m", "analysis", "profile", "--beat", "9999", "--store", str(root)],
        prelude=prelude,
        cwd=repo,
    )
    assert bad.returncode == 2
    assert "no beat '9999'" in bad.stderr
    assert flag.read_text() == "ran"


def _last_local_day(store: IncidentStore) -> date:
    """Return the last local day of the store's incidents, from every loaded timestamp."""
    occurred = store.load_incidents(columns=[schema.OCCURRED_AT])[schema.OCCURRED_AT]
    return occurred.max().date()  # tz-aware in the store's zone: its local date


@pytest.mark.parametrize("store_name", ["sample_store", "seattle_store"])
def test_planning_period_from_the_latest_month_equals_the_daily_counts_one(
    request, store_name, tmp_path
):
    built = request.getfixturevalue(store_name)
    root = tmp_path / "store"
    shutil.copytree(built.root, root, ignore=shutil.ignore_patterns("cache"))
    store = IncidentStore(root)
    occurred = store.load_incidents(columns=[schema.OCCURRED_AT])[schema.OCCURRED_AT]
    last = _last_local_day(store)
    assert store_last_day(store) == (np.datetime64(last, "D") - np.datetime64(0, "D")).item().days
    expected = inputs.planning_period(inputs.daily_counts(occurred))
    assert inputs.load_planning_period(store) == expected
    assert expected is not None
    assert expected.last == last
    assert not (root / "cache" / "daily-counts").exists()  # nothing counted
    before = store.history()[0].version
    # an incident appended 40 days after the last one, late in the local evening: a later
    # month, and (west of Greenwich) a UTC date one day after its local date
    later = pd.Timestamp(last + timedelta(days=40)).tz_localize(store.timezone) + pd.Timedelta(
        hours=23, minutes=30
    )
    extra = (
        store.load_incidents()
        .head(1)
        .assign(**{schema.INCIDENT_ID: ["late-1"], schema.OCCURRED_AT: [later]})
    )
    assert store.upsert(extra) == (1, 0)
    assert _last_local_day(store) == later.date()
    assert inputs.load_planning_period(store) == inputs.Period(
        (pd.Timestamp(later.date()) - pd.DateOffset(months=12) + pd.Timedelta(days=1)).date(),
        later.date(),
    )
    assert inputs.load_planning_period(store) == inputs.planning_period(
        inputs.load_daily_counts(store)
    )
    # the same incident moved back into the former last month: that month ends the store again
    moved = extra.assign(**{schema.OCCURRED_AT: [pd.Timestamp(last).tz_localize(store.timezone)]})
    assert store.upsert(moved) == (0, 1)
    assert inputs.load_planning_period(store) == expected
    # a rollback to the version before the append, and to the append itself
    store.rollback(before + 1)
    assert _last_local_day(store) == later.date()
    assert inputs.load_planning_period(store).last == later.date()
    store.rollback(before)
    assert inputs.load_planning_period(store) == expected


def test_planning_period_of_a_store_without_incidents_is_none(tmp_path):
    assert store_last_day(IncidentStore(tmp_path / "none")) is None
    assert inputs.load_planning_period(IncidentStore(tmp_path / "none")) is None


def test_daily_counts_after_a_write_count_only_the_new_files(sample_store, tmp_path):
    root = tmp_path / "store"
    shutil.copytree(sample_store.root, root, ignore=shutil.ignore_patterns("cache"))
    store = IncidentStore(root)
    files = root / "cache" / "daily-counts" / "files"

    def plain() -> pd.Series:
        occurred = store.load_incidents(columns=[schema.OCCURRED_AT])[schema.OCCURRED_AT]
        return inputs.daily_counts(occurred)

    pd.testing.assert_series_equal(inputs.load_daily_counts(store), plain(), check_names=False)
    before = {p.name: p.read_bytes() for p in files.glob("*.npy")}
    assert len(before) == len(store.table.files())
    # one incident appended in a new month: one new data file, the others' counts kept as they were
    last = store.load_incidents(columns=[schema.OCCURRED_AT])[schema.OCCURRED_AT].max()
    later = last + pd.Timedelta(days=40)
    extra = (
        store.load_incidents()
        .head(1)
        .assign(**{schema.INCIDENT_ID: ["late-1"], schema.OCCURRED_AT: [later]})
    )
    store.upsert(extra)
    pd.testing.assert_series_equal(inputs.load_daily_counts(store), plain(), check_names=False)
    after = {p.name: p.read_bytes() for p in files.glob("*.npy")}
    assert len(after) == len(store.table.files()) == len(before) + 1
    assert {k: v for k, v in after.items() if k in before} == before
    # the kept counts are what the next count reads: a wrong one shows, a torn one is recounted
    new = next(p for p in files.glob("*.npy") if p.name not in before)
    np.save(new, np.array([np.datetime64(later.date(), "D").astype(np.int64), 5]))
    for whole in (root / "cache" / "daily-counts").glob("*.npy"):
        whole.unlink()
    assert inputs.load_daily_counts(store).iloc[-1] == 5
    new.write_bytes(b"torn")
    for whole in (root / "cache" / "daily-counts").glob("*.npy"):
        whole.unlink()
    pd.testing.assert_series_equal(inputs.load_daily_counts(store), plain(), check_names=False)
    # a rollback drops the appended file: its counts go, the others stay
    store.rollback(store.history()[0].version - 1)
    pd.testing.assert_series_equal(inputs.load_daily_counts(store), plain(), check_names=False)
    assert {p.name: p.read_bytes() for p in files.glob("*.npy")} == before
