"""Faster paths of the 10M-incident commands give what the former paths gave (issue 17, item 6).

City-wide KDE reads only the coordinates into NumPy (:func:`analysis.distributed.located_points`)
and the store-wide daily counts are cached beside the store per store version: each is checked
against the plain read on the bundled Chicago and Seattle data.
"""

import json
import shutil

import numpy as np
import pandas as pd
import pytest

from analysis import hotspots, inputs
from analysis.cli import main
from analysis.distributed import located_points
from geodata import schema
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
