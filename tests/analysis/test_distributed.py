"""The store's per-file work on a two-worker Dask LocalCluster equals the single-process path."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from analysis.distributed import grid_counts, kde_surface, store_grid
from analysis.hotspots import KDEHotspots
from geodata.cluster import dask_mapper, thread_mapper


@pytest.mark.slow
def test_count_by_on_the_cluster_equals_one_machine(sample_store, client):
    keys = ["year", "month", "beat", "offense"]
    local = sample_store.count_by(["beat", "offense"]).sort_values(keys).reset_index(drop=True)
    remote = (
        sample_store.count_by(["beat", "offense"], mapper=dask_mapper(client))
        .sort_values(keys)
        .reset_index(drop=True)
    )
    pd.testing.assert_frame_equal(local, remote)
    assert local["incidents"].sum() == sample_store.count()
    # a period and an area: pushed down the same way on the workers
    window = {"start": "2018-01-08", "end": "2018-01-15", "beats": ["1834", "0111"]}
    assert (
        sample_store.count_by(["beat"], mapper=dask_mapper(client), **window)["incidents"].sum()
        == sample_store.count_by(["beat"], **window)["incidents"].sum()
        > 0
    )


@pytest.mark.slow
def test_kde_binned_on_the_cluster_equals_kde_of_the_points(sample_store, client):
    frame = sample_store.load_incidents(
        columns=["x", "y"], start="2018-01-01", end="2018-02-01"
    ).dropna()
    remote = kde_surface(
        sample_store,
        bandwidth_m=200.0,
        cell_size_m=50.0,
        start="2018-01-01",
        end="2018-02-01",
        mapper=dask_mapper(client),
    )
    grid = store_grid(sample_store, 50.0, pad_m=KDEHotspots().pad_bandwidths * 200.0)
    local = KDEHotspots(bandwidth_m=200.0, cell_size_m=50.0).fit(frame, grid=grid)
    assert remote.n_incidents_ == len(frame)
    np.testing.assert_allclose(remote.density_, local.density_, rtol=1e-9, atol=1e-12)
    assert len(remote.hotspots_) == len(local.hotspots_)


def test_grid_counts_add_up(sample_store):
    grid = store_grid(sample_store, 500.0)
    counts, n = grid_counts(sample_store, grid, linear=False, mapper=thread_mapper(2))
    located = sample_store.load_incidents(columns=["x", "y"]).dropna()
    assert n == len(located)
    assert counts.sum() == pytest.approx(len(located))  # the grid covers every beat


def test_fit_counts_needs_a_bandwidth(sample_store):
    grid = store_grid(sample_store, 100.0)
    with pytest.raises(ValueError, match="needs a bandwidth"):
        KDEHotspots().fit_counts(np.zeros((grid.n_rows, grid.n_cols)), grid, n_incidents=0)


@pytest.mark.slow
def test_counts_command_on_a_scheduler_equals_this_machine(sample_store, client, capsys, tmp_path):
    from geodata.cli import main

    args = ["counts", "--store", str(sample_store.root), "--by", "district", "--json"]
    assert main(args) == 0
    local = json.loads(capsys.readouterr().out)
    out = tmp_path / "counts" / "by_district.csv"
    assert main([*args, "--scheduler", client.scheduler.address, "--out", str(out)]) == 0
    remote = json.loads(capsys.readouterr().out)
    assert remote["incidents"] == local["incidents"] == sample_store.count()
    assert remote["groups"] == local["groups"]
    assert remote["where"] == client.scheduler.address
    written = pd.read_csv(out, dtype={"district": str})
    assert written["incidents"].sum() == sample_store.count()
    assert main([*args, "--scheduler", "tcp://127.0.0.1:1"]) == 2  # nobody there: a clear error
    assert "no Dask scheduler answered at tcp://127.0.0.1:1" in capsys.readouterr().err
