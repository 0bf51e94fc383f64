import json
import math

import pandas as pd
import pytest

from analysis.cli import main
from analysis.hotspots import DBSCANHotspots, area_incidents


def test_hotspots_json_and_geojson_for_a_sector(sample_store, capsys, tmp_path):
    out_file = tmp_path / "hotspots.geojson"
    args = ["hotspots", "--method", "dbscan", "--sector", "11", "--from", "2018-01-01"]
    args += ["--to", "2018-01-27", "--store", str(sample_store.root), "--json"]
    assert main([*args, "--out", str(out_file)]) == 0
    out = json.loads(capsys.readouterr().out)
    # independently: the sector's located incidents of the period and the same estimator
    incidents = sample_store.load_incidents(
        columns=["x", "y", "occurred_at", "category", "offense", "beat", "sector", "district"],
        start="2018-01-01",
        end="2018-01-28",
    )
    beats = sample_store.read_layer("beats")
    located, area = area_incidents(incidents, beats, level="sector", area_id="011")
    # a sector is measured against the city: 5x the city's mean density in an eps-disc
    city = incidents.dropna(subset=["x", "y"])
    threshold = math.ceil(5 * len(city) * math.pi * 150.0**2 / beats.area.sum())
    model = DBSCANHotspots(min_samples=max(5, threshold)).fit(located)
    assert out["area"] == {"level": "sector", "label": "sector", "id": "011"}  # as stored
    assert out["n_incidents"] == len(located)
    assert out["n_hotspots"] == model.n_hotspots_ >= 1
    assert out["fitted"]["min_samples_"] == model.min_samples_
    assert out["fitted"]["exact_"] is True
    assert [h["n_incidents"] for h in out["hotspots"]] == list(model.hotspots_["n_incidents"])
    geo = json.loads(out_file.read_text())
    assert geo["type"] == "FeatureCollection"
    assert len(geo["features"]) == out["n_hotspots"]
    lon, lat = geo["features"][0]["geometry"]["coordinates"][0][0]
    assert -88 < lon < -87.5  # WGS84
    assert 41.6 < lat < 42.1
    first = geo["features"][0]["properties"]
    assert pd.Timestamp(first["first_incident"]) >= pd.Timestamp("2018-01-01", tz="America/Chicago")
    assert set(first["beats"].split(", ")) <= set(area["beat"])


@pytest.mark.parametrize("method", ["kde", "gistar"])
def test_hotspots_grid_methods_json(sample_store, capsys, method):
    args = ["hotspots", "--method", method, "--district", "1", "--from", "2018-01-01"]
    assert main([*args, "--to", "2018-01-27", "--store", str(sample_store.root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["method"] == method
    assert out["n_hotspots"] == len(out["hotspots"]) >= 1
    assert all(h["area_km2"] > 0 for h in out["hotspots"])
    # hotspot 1 is the strongest (the highest density or z)
    score = "z" if method == "gistar" else "density_per_km2"
    scores = [h[score] for h in out["hotspots"]]
    assert [h["hotspot"] for h in out["hotspots"]] == list(range(1, len(scores) + 1))
    assert scores == sorted(scores, reverse=True)


def test_hotspots_unknown_area_is_a_clear_error(sample_store, capsys):
    assert main(["hotspots", "--beat", "9999", "--store", str(sample_store.root)]) == 2
    err = capsys.readouterr().err
    assert "error: --beat: no beat '9999' in the beat layer (ids look like 0111," in err


@pytest.mark.slow
def test_evaluate_json_on_the_dense_month(sample_store, capsys, tmp_path):
    md = tmp_path / "eval.md"
    args = ["evaluate", "--methods", "kde", "--coverages", "0.01", "0.05"]
    args += ["--from", "2018-01-01", "--to", "2018-01-27", "--store", str(sample_store.root)]
    assert main([*args, "--json", "--markdown", str(md)]) == 0
    out = json.loads(capsys.readouterr().out)
    summary = pd.DataFrame(out["summary"])
    assert set(summary["method"]) == {"naive", "kde"}
    assert set(summary["coverage"]) == {0.01, 0.05}
    assert set(summary["horizon"]) == {"1 day", "3 days"}
    cutoffs = pd.DataFrame(out["cutoffs"])
    naive = cutoffs[(cutoffs["method"] == "naive") & (cutoffs["coverage"] == 0.01)]
    one_day = naive[naive["horizon"] == "1 day"]
    row = summary[
        (summary["method"] == "naive")
        & (summary["coverage"] == 0.01)
        & (summary["horizon"] == "1 day")
    ].iloc[0]
    assert row["cutoffs"] == len(one_day) == 20
    assert row["pai_mean"] == pytest.approx(one_day["pai"].mean())
    assert row["pai_sd"] == pytest.approx(one_day["pai"].std(ddof=1))
    assert "| naive |" in md.read_text()


def test_bad_min_samples_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["hotspots", "--min-samples", "many"])
    assert exit_info.value.code == 2
    assert "expected 'auto' or a number, got 'many'" in capsys.readouterr().err
