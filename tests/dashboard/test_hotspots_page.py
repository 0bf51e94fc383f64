import json
import re

import pytest

from analysis.hotspots import KDEHotspots, area_incidents, knox_table
from tests.auth_helpers import opened
from tests.helpers import folium_maps


def _run_caption(at) -> str:
    """Return the caption that describes the run (the page may show a data note above it)."""
    return next(c.value for c in at.caption if " hotspot" in c.value and " from " in c.value)


def _page(app_env):
    return opened(app_env, "hotspots", timeout=60)


@pytest.mark.slow
def test_hotspots_page_for_a_sector_and_each_method(app_env, sample_store):
    at = _page(app_env)
    at.selectbox(key="hotspots_area").select("092").run()
    assert not at.exception
    incidents = sample_store.load_incidents(
        columns=["x", "y", "occurred_at", "sector", "beat", "district", "category"],
        start="2017-12-31",
        end="2018-01-28",
    )
    located, _ = area_incidents(
        incidents, sample_store.read_layer("beats"), level="sector", area_id="092"
    )
    caption = _run_caption(at)
    assert "sector 092, 2017-12-31 to 2018-01-27" in caption
    assert f"from {len(located):,} incidents" in caption
    scripts = folium_maps(at)
    assert len(scripts) == 1
    table = at.dataframe[0].value
    assert len(table) >= 1  # sector 092 has DBSCAN hotspots in the dense month
    assert "Hotspots" in scripts[0]
    assert f"{table['top_offenses'].iloc[0].split(' (')[0]}" in scripts[0]
    for label in ("Kernel density (KDE)", "Getis-Ord Gi*", "HDBSCAN (fast_hdbscan)"):
        at.radio(key="hotspots_method").set_value(label).run()
        assert not at.exception, label
        assert _run_caption(at).startswith(label)
        assert len(at.dataframe) == 2  # hotspots, Knox
    # HDBSCAN (chosen last): its 149-incident, 4.06 km² cluster is over the 5% cap of the
    # 12.69 km² sector and the caption says it was replaced (docs/hotspots.md)
    assert (
        "1 cluster larger than 0.63 km² (5% of the area) was replaced by the denser clusters"
        in _run_caption(at)
    )
    assert (at.dataframe[0].value["area_km2"] <= 0.635).all()
    # the KDE surface is drawn, aggregated to at most MAX_CELLS cells
    at.radio(key="hotspots_method").set_value("Kernel density (KDE)").run()
    assert "Density (incidents/km" in folium_maps(at)[0]
    # default cell rule: a tenth of the automatic bandwidth, as KDEHotspots fits it directly
    kde = KDEHotspots().fit(located)
    assert kde.cell_size_m_ == kde.bandwidth_m_ / 10
    assert f"cell size m {kde.cell_size_m_:.0f}" in _run_caption(at)
    # the Knox table of the sector, as knox_table computes it
    knox = at.dataframe[1].value
    assert list(knox["distance_m"].unique()) == [100.0, 200.0, 400.0]
    expected = knox_table(located, permutations=9)
    assert list(knox["observed"]) == list(expected["observed"])


@pytest.mark.slow
def test_hotspots_page_backtest_table(app_env):
    at = _page(app_env)
    at.multiselect[0].set_value(["dbscan"]).run()
    at.button(key="hotspots_backtest").click().run()
    assert not at.exception
    table = at.dataframe[-1].value
    assert set(table["method"]) == {"naive", "dbscan"}
    assert {"pai_mean", "pai_sd", "pei_star_mean", "rri_mean"} <= set(table.columns)


def test_hotspot_map_draws_at_most_max_hotspots_the_largest_first(beats):
    import geopandas as gpd
    import pandas as pd
    from shapely.geometry import box

    from dashboard import hotspot_data as hd

    area = beats[beats["district"] == "01"]
    x0, y0, _, _ = area.total_bounds
    n = hd.MAX_HOTSPOTS + 100
    polygons = gpd.GeoDataFrame(
        {"hotspot": range(1, n + 1), "n_incidents": range(n)},  # hotspot k has k - 1 incidents
        geometry=[box(x0 + 20 * i, y0, x0 + 20 * i + 10, y0 + 10) for i in range(n)],
        crs=area.crs,
    )
    run = hd.HotspotRun(polygons, pd.DataFrame(polygons.drop(columns="geometry")),
                        polygons.iloc[:0], area, n, "")  # fmt: skip
    html = hd.hotspot_map(run, label="test").get_root().render()
    tag = r"\\u003cb\\u003ehotspot\\u003c/b\\u003e: (\d+)"  # "<b>hotspot</b>: k", JSON-escaped
    shown = {int(m) for m in re.findall(tag, html)}
    assert len(shown) == hd.MAX_HOTSPOTS
    assert shown == set(range(n - hd.MAX_HOTSPOTS + 1, n + 1))  # the largest ones


@pytest.mark.slow
def test_hotspots_page_forecast_layer_and_exports(app_env, sample_store):

    from analysis import forecast

    at = _page(app_env)
    at.selectbox(key="hotspots_area").select("092").run()
    at.checkbox(key="hotspots_forecast").check().run()
    assert not at.exception
    script = folium_maps(at)[0]
    assert "forecast-legend" in script  # the legend of the layer
    assert "top 1% of the city" in script
    # the forecast's cells are those forecast_cells ranks in the city's top 5%
    beats = sample_store.read_layer("beats")
    incidents = sample_store.load_incidents(
        columns=["x", "y", "occurred_at"], start="2017-01-01", end="2018-01-28"
    )
    _, cells = forecast.forecast_cells(
        incidents, beats, forecast.DEFAULT_METHOD, cutoff="2018-01-28"
    )
    area = beats[beats["sector"] == "092"].union_all()
    inside = cells[cells.geometry.representative_point().within(area).to_numpy()]
    n_top = int(inside["top_share"].notna().sum())
    captions = " ".join(c.value for c in at.caption)
    assert f"{n_top} of its {len(inside):,} cells are in the city's top 5%" in captions
    labels = [b.label for b in at.get("download_button")]
    assert labels[-2:] == ["Forecast (GeoJSON)", "Forecast (CSV)"]


def test_export_files_are_geojson_and_formula_safe_csv(beats):
    import geopandas as gpd
    from shapely.geometry import box

    from dashboard import hotspot_data as hd

    x0, y0, _, _ = beats.total_bounds
    layer = gpd.GeoDataFrame(
        {"cell": [1], "note": ["=cmd|' /C calc'!A0"]},
        geometry=[box(x0, y0, x0 + 100, y0 + 100)],
        crs=beats.crs,
    )
    files = hd.export_files(layer, "x")
    geo = json.loads(files["GeoJSON"][0])
    assert geo["features"][0]["properties"]["note"].startswith("=")  # data, not a cell
    csv_text = files["CSV"][0]
    assert "'=cmd" in csv_text
    assert files["CSV"][1] == "x.csv"
