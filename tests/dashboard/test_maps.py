"""Map helpers: size stays bounded at any data size, and data text is escaped."""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
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


@pytest.mark.slow
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


_TAGS = "{{ 123456789 * 9 }} {% for i in range(2) %}LOOPED{% endfor %} {# note #}"


def _map_with_tags_in_every_kind_of_text():
    """A map whose data carry Jinja2 tags: area ids, tooltips, stations, markers, a pin, labels."""
    areas = gpd.GeoDataFrame(
        {schema.BEAT: [f"B {_TAGS}"], "incidents": [3], schema.SECTOR: [f"S {_TAGS}"]},
        geometry=[shapely.box(0, 0, 100, 100)],
        crs="EPSG:26916",
    )
    stations = gpd.GeoDataFrame(
        {schema.STATION_NAME: [f"N {_TAGS}"], schema.STATION_ADDRESS: [f"A {_TAGS}"],
         schema.STATION_PHONE: ["312"]},
        geometry=[shapely.Point(50, 50)], crs="EPSG:26916",
    )  # fmt: skip
    fmap = maps.base_map(areas)
    maps.choropleth(fmap, areas, "incidents", fields=[(schema.SECTOR, "Sector")])
    maps.add_labels(fmap, areas, schema.BEAT)
    maps.add_stations(fmap, stations)
    incidents = pd.DataFrame({schema.LON: [-87.6], schema.LAT: [41.8], schema.X: [0.0],
                              schema.Y: [0.0], schema.OFFENSE: [f"O {_TAGS}"],
                              schema.BLOCK: [f"K {_TAGS}"]})  # fmt: skip
    maps.add_incidents(fmap, incidents)
    maps.add_pin(fmap, 41.8, -87.6, f"P {_TAGS}")
    return fmap


def test_jinja_tags_in_data_stay_text_and_are_not_run():
    # branca compiled every rendered piece of a map as a Jinja2 template: "{{ 7*7 }}" in a beat
    # name came out as 49 (and any Python could run). The text must come out as it went in.
    html = _map_with_tags_in_every_kind_of_text().get_root().render()
    assert "1111111101" not in html  # the expression was not evaluated
    assert "LOOPEDLOOPED" not in html  # nor the loop run
    # each of the seven texts is there with its tags as typed
    for tag in ("{{ 123456789 * 9 }}", "{% for i in range(2) %}", "{# note #}"):
        assert html.count(tag) >= 7, tag


def test_a_copied_map_keeps_its_text():
    import copy

    fmap = _map_with_tags_in_every_kind_of_text()
    fmap.get_root().render()  # the wrappers of rendered pieces exist now
    again = copy.deepcopy(fmap)  # as a cached map is copied: branca recompiles on unpickling
    html = again.get_root().render()
    assert "1111111101" not in html
    assert "LOOPEDLOOPED" not in html
    assert html.count("{{ 123456789 * 9 }}") >= 7


def test_maps_without_tags_render_byte_for_byte_as_branca_renders_them(sample_store, monkeypatch):
    import copy

    import branca.element

    beats = sample_store.read_layer("beats")
    areas = beats.assign(incidents=np.arange(len(beats)))
    fmap = maps.choropleth(maps.base_map(areas), areas, "incidents")
    maps.add_labels(fmap, areas, schema.BEAT)
    maps.add_stations(fmap, sample_store.read_layer("stations"))
    plain = copy.deepcopy(fmap)  # the same element ids: the two renders can be compared
    ours = fmap.get_root().render()
    patched = branca.element.Element.__init__
    monkeypatch.setattr(branca.element.Element, "__init__", patched.__wrapped__)
    theirs = plain.get_root().render()
    assert ours == theirs
    assert len(ours) > 100_000


def _hotspot_map_of_sector(sample_store, sector: str):
    from dashboard import hotspot_data

    beats = sample_store.read_layer("beats")
    area = beats[beats[schema.SECTOR] == sector]
    nothing = gpd.GeoDataFrame({"value": []}, geometry=gpd.GeoSeries(crs=area.crs))
    run = hotspot_data.HotspotRun(nothing, pd.DataFrame(), nothing, area, 0, "")
    layers = (sample_store.read_layer("districts"), sample_store.read_layer("stations"))
    context = (*layers, "District")
    fmap = hotspot_data.hotspot_map(run, label="Surface", context=context)
    html = fmap.get_root().render()
    # folium writes icon HTML as JSON strings: read them back as the browser does
    for code, char in (("\\u003c", "<"), ("\\u003e", ">"), ("\\u00b7", "·"), ('\\"', '"')):
        html = html.replace(code, char)
    return html, area


def test_map_without_tiles_carries_named_districts_stations_and_beat_labels(
    sample_store, monkeypatch
):
    monkeypatch.setenv("BEATS_TILE_URL", "none")
    assert not maps.has_tiles()
    html, area = _hotspot_map_of_sector(sample_store, "092")
    assert "tileLayer" not in html  # no background tiles at all
    assert "openstreetmap" not in html.lower()
    assert "bw-offline" in html  # the plain background
    # every district named after its station's neighbourhood (bundled police_stations.csv)
    stations = sample_store.read_layer("stations").dropna(subset=[schema.DISTRICT])
    districts = sample_store.read_layer("districts")
    named = dict(zip(stations[schema.DISTRICT], stations[schema.STATION_NAME], strict=True))
    assert named["09"] == "Deering"
    for district in districts[schema.DISTRICT]:
        text = f"District {district}" + (f" · {named[district]}" if district in named else "")
        assert f'<div class="bw-label-text bw-context-text">{maps.esc(text)}</div>' in html
    # without stations, the layer's "1ST"-style names name no place: the number alone is shown
    assert list(districts[schema.DISTRICT_NAME].iloc[:2]) == ["1ST", "2ND"]
    bare = maps.add_context(maps.base_map(districts), districts.iloc[:2], None, word="Precinct")
    bare_html = bare.get_root().render().replace("\\u003e", ">").replace("\\u003c", "<")
    assert ">Precinct 01<" in bare_html
    assert ">Precinct 02<" in bare_html
    assert "1ST" not in bare_html
    # a station the map already marks (the profile's own) still names its district, once drawn
    stations_all = sample_store.read_layer("stations")
    own = maps.add_context(maps.base_map(), districts, stations_all, drawn_station_ids=["01"])
    own_html = own.get_root().render().replace("\\u00b7", "·")
    assert "District 01 · Central" in own_html
    assert own_html.count('"className": "station-icon"') == len(stations_all) - 1
    assert html.count("station-icon") >= len(stations)  # every station marked
    # the sector's beat labels and the legend of the context
    for beat in area[schema.BEAT]:
        assert f'<div class="bw-label-text">{beat}</div>' in html
    assert "Place context (no map tiles)" in html
    assert "Police station" in html


def test_offline_map_sets_its_own_zoom_range_for_marker_clusters(sample_store, monkeypatch):
    # Without a tile layer Leaflet has no maxZoom, and the marker cluster plugin throws "Map has
    # no maxZoom specified", leaving the whole map blank (seen on the Beat profile offline).
    incidents = sample_store.load_incidents(
        columns=[schema.LON, schema.LAT, schema.X, schema.Y, schema.OFFENSE, schema.BLOCK],
        start="2018-01-01",
        end="2018-01-02",
    ).head(50)
    monkeypatch.setenv("BEATS_TILE_URL", "none")
    offline = maps.add_incidents(maps.base_map(), incidents).get_root().render()
    assert "markerClusterGroup" in offline
    assert f"map.setMaxZoom({maps.OFFLINE_MAX_ZOOM})" in offline
    assert offline.index("setMaxZoom") < offline.index("markerClusterGroup(")
    monkeypatch.setenv("BEATS_TILE_URL", "openstreetmap")
    online = maps.add_incidents(maps.base_map(), incidents).get_root().render()
    assert "setMaxZoom" not in online  # the tile layer sets it


def test_map_with_tiles_leaves_the_context_to_the_tiles(sample_store, monkeypatch):
    monkeypatch.setenv("BEATS_TILE_URL", "openstreetmap")
    assert maps.has_tiles()
    html, _ = _hotspot_map_of_sector(sample_store, "092")
    assert "tile.openstreetmap.org" in html
    assert "Place context" not in html
    assert "Deering" not in html


def test_map_control_places_escaped_html_and_labels_only_a_labelled_region():
    fmap = maps.base_map()
    fmap.add_child(
        maps.MapControl(
            "<b>plain</b></script>", name="Plain", position="bottomleft", css_class="plain-box"
        )
    )
    maps.add_legend(fmap, "Beats", [("#123456", "beat 1</script>", "box")])
    script = fmap.get_root().render()
    plain = script[script.index('"plain-box"') :]
    plain = plain[: plain.index("})();")]
    assert 'L.control({position: "bottomleft"})' in script
    assert 'box.innerHTML = "<b>plain<\\/b><\\/script>";' in plain  # no "</" closes the script
    assert "aria-label" not in plain
    assert "disableClickPropagation" not in plain
    legend = script[script.index('"bw-legend"') :]
    legend = legend[: legend.index("})();")]
    assert 'box.setAttribute("role", "region");' in legend
    assert 'box.setAttribute("aria-label", "Map legend");' in legend
    assert "L.DomEvent.disableClickPropagation(box);" in legend
    assert "beat 1&lt;/script&gt;" in legend  # the label is escaped as HTML text
    assert 'L.control({position: "bottomright"})' in script
