"""``python -m analysis forecast`` / ``forecast-backtest`` on the bundled data and on Seattle."""

from __future__ import annotations

import csv
import io
import json

import numpy as np
import pandas as pd
import pytest

from analysis import forecast
from analysis.cli import main
from analysis.evaluate import study_grid


@pytest.mark.slow
def test_forecast_json_geojson_and_csv_for_a_sector(sample_store, capsys, tmp_path):
    base = ["forecast", "--method", "naive", "--sector", "092", "--as-of", "2018-01-28"]
    base += ["--store", str(sample_store.root), "--json"]
    assert main([*base, "--out", str(tmp_path / "f.geojson")]) == 0
    out = json.loads(capsys.readouterr().out)
    assert main([*base, "--out", str(tmp_path / "f.csv")]) == 0
    capsys.readouterr()
    # independently: the naive forecast is the year's counts per cell scaled to 7 days
    incidents = sample_store.load_incidents(
        columns=["x", "y", "occurred_at"], start="2017-01-28", end="2018-01-28"
    ).dropna()
    beats = sample_store.read_layer("beats")
    grid, _ = study_grid(beats, 150.0)
    counts = grid.counts(incidents["x"].to_numpy(), incidents["y"].to_numpy())
    assert out["first_day"] == "2018-01-28"
    assert out["area"] == {"level": "sector", "id": "092"}
    geo = json.loads((tmp_path / "f.geojson").read_text())
    assert len(geo["features"]) == out["n_cells"]
    props = pd.DataFrame([f["properties"] for f in geo["features"]])
    np.testing.assert_allclose(
        props["expected"], counts[props["row"], props["col"]] * 7 / 365, rtol=1e-9
    )
    assert out["expected_total"] == pytest.approx(props["expected"].sum())
    rows = list(csv.DictReader(io.StringIO((tmp_path / "f.csv").read_text())))
    assert len(rows) == out["n_cells"]
    assert {"expected", "rank", "top_share", "lon", "lat", "wkt"} <= set(rows[0])
    assert -88 < float(rows[0]["lon"]) < -87.5
    sector_beats = set(beats.loc[beats["sector"] == "092", "beat"])
    assert {b["beat"] for b in out["beats"]} == sector_beats
    assert all(b["lower"] <= b["expected"] <= b["upper"] for b in out["beats"])


def test_forecast_rejects_an_unknown_output_and_area(sample_store, capsys):
    store = ["--store", str(sample_store.root)]
    assert main(["forecast", *store, "--out", "forecast.txt"]) == 2
    assert (
        "error: --out: 'forecast.txt': use a .geojson or .csv file name" in capsys.readouterr().err
    )
    assert main(["forecast", *store, "--sector", "999"]) == 2
    assert "no sector '999'" in capsys.readouterr().err


def test_hotspots_command_writes_csv(sample_store, tmp_path):
    out = tmp_path / "h.csv"
    args = ["hotspots", "--method", "dbscan", "--from", "2018-01-01", "--to", "2018-01-27"]
    assert main([*args, "--store", str(sample_store.root), "--out", str(out)]) == 0
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert rows
    assert {"hotspot", "n_incidents", "top_offenses", "wkt"} <= set(rows[0])
    assert not any(r["top_offenses"].startswith(("=", "+", "-", "@")) for r in rows)


@pytest.mark.slow
def test_forecast_backtest_command_matches_the_function(sample_store, capsys, tmp_path):
    args = ["forecast-backtest", "--methods", "naive", "prospective", "--horizons", "1d"]
    args += ["--first-day", "14"]
    args += ["--from", "2017-12-31", "--to", "2018-01-27", "--store", str(sample_store.root)]
    assert main([*args, "--json", "--markdown", str(tmp_path / "b.md")]) == 0
    out = json.loads(capsys.readouterr().out)
    incidents = sample_store.load_incidents(
        columns=["x", "y", "occurred_at", "beat"], start="2017-12-31", end="2018-01-28"
    )
    results = forecast.forecast_backtest(
        incidents,
        sample_store.read_layer("beats"),
        methods=["naive", "prospective"],
        horizons_days=[1],
        first_day=14,
    )
    assert len(results) == 2 * 3 * 2  # cut-offs 14 and 21, 3 coverages, 2 methods
    assert [r["pai"] for r in out["cutoffs"]] == pytest.approx(results["pai"].tolist())
    assert {r["method"] for r in out["comparison"]} == {"prospective"}
    assert "Wilcoxon p" in (tmp_path / "b.md").read_text()
    args[args.index("14")] = "40"  # no cut-off fits: a clear error
    assert main(args) == 2
    assert "no weekly cut-off" in capsys.readouterr().err


@pytest.mark.slow
def test_forecast_runs_unchanged_on_seattle(seattle_store, capsys, tmp_path):
    """A department the code knows nothing about: letter sectors, UTM 10N, Pacific time."""
    out_file = tmp_path / "seattle.geojson"
    args = ["forecast", "--method", "prospective", "--sector", "K", "--as-of", "2018-07-01"]
    assert main([*args, "--store", str(seattle_store.root), "--json", "--out", str(out_file)]) == 0
    out = json.loads(capsys.readouterr().out)
    beats = seattle_store.read_layer("beats")
    assert {b["beat"] for b in out["beats"]} == set(beats.loc[beats["sector"] == "K", "beat"])
    geo = json.loads(out_file.read_text())
    lon, lat = geo["features"][0]["geometry"]["coordinates"][0][0]
    assert -122.5 < lon < -122.2
    assert 47.4 < lat < 47.8
    # a dense week follows: a forecast of a real week, not an empty one
    incidents = seattle_store.load_incidents(
        columns=["x", "y", "occurred_at"], start="2018-07-01", end="2018-07-08"
    ).dropna()
    assert len(incidents) > 1000
    assert out["expected_total"] > 0


@pytest.mark.slow
def test_seattle_beat_intervals_cover_about_90_percent(seattle_store):
    incidents = seattle_store.load_incidents(columns=["occurred_at", "beat"]).dropna()
    beats = seattle_store.read_layer("beats")
    backtest = forecast.beat_interval_backtest(incidents, beats["beat"].astype(str))
    assert backtest["cutoff"].nunique() >= 45
    real = backtest[backtest["expected"] >= 1]
    assert 0.86 <= real["inside"].mean() <= 0.94
    assert 0.86 <= backtest["inside"].mean() <= 0.94
