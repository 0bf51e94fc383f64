"""Boundary layers: canonical ids, sectors, checks that report instead of repairing."""

from __future__ import annotations

import geopandas as gpd
import pytest
import shapely

from geodata import schema
from geodata.boundaries import (
    beat_neighbours,
    check_beats,
    dissolve_sectors,
    read_beats,
    read_stations,
)


def test_chicago_beats_ids_sectors_and_districts(beats):
    assert len(beats) == 275  # 277 polygons, beat 3100 in three pieces -> one row
    row = beats.set_index(schema.BEAT).loc["1713"]
    assert (row[schema.SECTOR], row[schema.DISTRICT]) == ("171", "17")
    assert beats.set_index(schema.BEAT).loc["0925", schema.SECTOR] == "092"
    assert beats[schema.SECTOR].nunique() == 68
    assert beats[schema.DISTRICT].nunique() == 23
    assert beats.crs.to_epsg() == 26916


def test_sectors_have_three_to_five_beats(beats):
    sectors = dissolve_sectors(beats)
    assert len(sectors) == 68
    sizes = sectors.set_index(schema.SECTOR)["n_beats"]
    # SOURCE.md: 68 sectors of 3 to 5 beats, mean 4.1 (district 31's lone beat 3100 aside)
    assert sizes.drop("310").between(3, 5).all()
    assert round(sizes.mean(), 1) == 4.0


def test_real_beat_layer_is_clean(beats):
    report = check_beats(beats)
    assert report.is_clean
    assert report.multipart == ["3100"]


def test_checks_report_overlap_gap_invalid_and_missing_sector():
    polygons = [
        shapely.box(0, 0, 100, 100),
        shapely.box(90, 0, 200, 100),  # overlaps the first by 10 x 100 m
        shapely.Polygon([(0, 100), (200, 100), (0, 200), (200, 200)]),  # bow tie: invalid
        shapely.box(0, 200, 200, 300).difference(shapely.box(50, 220, 60, 230)),  # 100 m2 hole
    ]
    layer = gpd.GeoDataFrame(
        {
            schema.BEAT: ["1", "2", "3", "4"],
            schema.SECTOR: ["S", "S", None, "S"],
            schema.DISTRICT: ["D"] * 4,
        },
        geometry=polygons,
        crs="EPSG:26916",
    )
    report = check_beats(layer)
    assert not report.is_clean
    assert report.invalid["beat"].tolist() == ["3"]
    assert "Self-intersection" in report.invalid["reason"].iloc[0]
    overlap = report.overlaps.set_index(["beat", "other"])["area_m2"]
    assert overlap.loc[("1", "2")] == 1000.0
    assert report.gaps["area_m2"].tolist() == [100.0]
    assert report.without_sector == ["3"]


def test_neighbours_share_an_edge_not_a_corner():
    layer = gpd.GeoDataFrame(
        {schema.BEAT: ["a", "b", "c", "d"]},
        geometry=[
            shapely.box(0, 0, 1, 1),
            shapely.box(1, 0, 2, 1),
            shapely.box(0, 1, 1, 2),
            shapely.box(1, 1, 2, 2),
        ],
        crs="EPSG:26916",
    ).assign(geometry=lambda g: g.geometry.scale(100, 100, origin=(0, 0)))
    pairs = beat_neighbours(layer)
    got = {(a, b) for a, b in zip(pairs["beat"], pairs["neighbour"], strict=True)}
    assert got == {
        ("a", "b"),
        ("b", "a"),
        ("a", "c"),
        ("c", "a"),
        ("b", "d"),
        ("d", "b"),
        ("c", "d"),
        ("d", "c"),
    }
    assert pairs["shared_m"].round(0).eq(100).all()


def test_real_neighbours_of_beat_1713(beats):
    pairs = beat_neighbours(beats)
    mine = set(pairs.loc[pairs["beat"] == "1713", "neighbour"])
    touching = beats[
        beats.geometry.intersection(
            beats.set_index(schema.BEAT).loc["1713", "geometry"].buffer(1)
        ).length
        > 10
    ]
    assert mine == set(touching[schema.BEAT]) - {"1713"}
    assert len(mine) >= 3


def test_stations_have_addresses_and_phones(samples_dir):
    stations = read_stations(samples_dir / "police_stations.csv")
    assert len(stations) == 23
    row = stations.set_index(schema.STATION_ID).loc["18"]
    assert row[schema.STATION_ADDRESS] == "1160 N Larrabee St"
    assert row[schema.STATION_PHONE] == "312-742-5870"
    assert stations.set_index(schema.STATION_ID).loc["HQ", schema.STATION_PHONE] == ""


def test_read_beats_names_the_missing_column(tmp_path):
    import pytest

    from geodata.errors import InputError

    path = tmp_path / "zones.geojson"
    gpd.GeoDataFrame(
        {"colour": ["red"]}, geometry=[shapely.box(0, 0, 1, 1)], crs="EPSG:4326"
    ).to_file(path)
    with pytest.raises(InputError, match=r"zones.geojson: no beat id column found"):
        read_beats(path)


def test_a_shapefile_without_its_prj_is_read_with_the_crs_given(samples_dir, tmp_path, capsys):
    import json

    from geodata.cli import main

    raw = gpd.read_file(samples_dir / "beats.geojson").to_crs("EPSG:3435")  # Illinois East ft
    raw.to_file(tmp_path / "beats.shp")
    (tmp_path / "beats.prj").unlink()  # as a layer often arrives: no coordinate system
    path = str(tmp_path / "beats.shp")
    assert main(["check-beats", path]) == 2
    err = capsys.readouterr().err
    assert "no CRS" in err
    assert "beats.prj" in err
    assert "--crs for check-beats" in err
    assert main(["check-beats", path, "--crs", "EPSG:3435"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["analysis_crs"] == "EPSG:26916"  # the layer's UTM zone, as from the .geojson
    got = read_beats(path, layer_crs="EPSG:3435")
    want = read_beats(samples_dir / "beats.geojson")
    assert got[schema.BEAT].tolist() == want[schema.BEAT].tolist()
    assert got.geometry.area.sum() == pytest.approx(want.geometry.area.sum(), rel=1e-6)
