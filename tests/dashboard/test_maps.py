"""Map helpers: size stays bounded at any data size, and data text is escaped."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from dashboard import maps
from geodata import schema


def html_size(fmap) -> int:
    return len(fmap.get_root().render().encode())


def test_whole_city_choropleth_is_small(beats):
    areas = beats.assign(incidents=np.arange(len(beats)))
    fmap = maps.choropleth(maps.base_map(areas), areas, "incidents")
    # measured 2.4 MB with full geometry; simplified to 5 m it is about 0.4 MB
    assert html_size(fmap) < 1_000_000


def test_incident_layer_aggregates_above_the_marker_threshold(sample_store):
    incidents = sample_store.load_incidents(
        columns=[schema.LON, schema.LAT, schema.X, schema.Y, schema.OFFENSE, schema.BLOCK]
    )
    assert len(incidents) > 30_000
    fmap = maps.add_incidents(maps.base_map(), incidents)
    script = fmap.get_root().render()
    n_circles = script.count("L.circleMarker(")
    assert 0 < n_circles <= maps.MAX_CELLS
    assert "markerClusterGroup" not in script
    assert len(script.encode()) < 5_000_000
    # 50 times the data (1.8M points) still draws at most MAX_CELLS circles
    big = pd.concat([incidents] * 50, ignore_index=True)
    script = maps.add_incidents(maps.base_map(), big).get_root().render()
    assert script.count("L.circleMarker(") <= maps.MAX_CELLS
    assert len(script.encode()) < 5_000_000


def test_few_incidents_are_individual_clustered_markers(sample_store):
    incidents = sample_store.load_incidents(
        columns=[schema.LON, schema.LAT, schema.X, schema.Y, schema.OFFENSE, schema.BLOCK]
    ).head(50)
    script = maps.add_incidents(maps.base_map(), incidents).get_root().render()
    assert script.count("L.circleMarker(") == 50
    assert "markerClusterGroup" in script


def test_text_from_data_is_escaped_in_tooltips_and_popups():
    hostile = "<script>alert(1)</script>"
    areas = gpd.GeoDataFrame(
        {schema.BEAT: [hostile], "incidents": [3], schema.SECTOR: ["<b>x</b>"]},
        geometry=[shapely.box(0, 0, 100, 100)],
        crs="EPSG:26916",
    )
    stations = gpd.GeoDataFrame(
        {schema.STATION_NAME: [hostile], schema.STATION_ADDRESS: ["1 <img src=x onerror=1> St"],
         schema.STATION_PHONE: ["312"]},
        geometry=[shapely.Point(50, 50)], crs="EPSG:26916",
    )  # fmt: skip
    fmap = maps.base_map(areas)
    maps.choropleth(fmap, areas, "incidents", fields=[(schema.SECTOR, "Sector")])
    maps.add_stations(fmap, stations)
    incidents = pd.DataFrame({schema.LON: [-87.6], schema.LAT: [41.8], schema.X: [0.0],
                              schema.Y: [0.0], schema.OFFENSE: [hostile],
                              schema.BLOCK: ["<i>blk</i>"]})  # fmt: skip
    maps.add_incidents(fmap, incidents)
    html = fmap.get_root().render()
    assert "<script>alert(1)</script>" not in html
    assert "<img src=x" not in html
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
