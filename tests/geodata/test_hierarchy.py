"""Parent levels declared by a profile: a beat-layer column, a polygon layer or an id prefix."""

from __future__ import annotations

import json

import geopandas as gpd
import pandas as pd
import pytest
import shapely

from geodata.boundaries import check_beats, read_beats
from geodata.cli import main
from geodata.department import department_from_dict, load_department
from geodata.errors import InputError

SEATTLE = load_department("seattle")


def _profile(levels: dict, **extra) -> object:
    return department_from_dict(
        {
            "key": "t",
            "name": "Test PD",
            "timezone": "America/Los_Angeles",
            "levels": levels,
            "beats": {"beat_column": "beat"},
            **extra,
        },
        source="test.toml",
    )


@pytest.fixture(scope="module")
def raw_layer() -> gpd.GeoDataFrame:
    return gpd.read_file(SEATTLE.beats_file)


def test_column_rule_reads_seattle_precincts(raw_layer):
    beats = read_beats(SEATTLE.beats_file, department=SEATTLE)
    expected = raw_layer.set_index("beat")["first_prec"]
    got = beats.set_index("beat")["district"]
    for beat, precinct in expected.items():
        assert (pd.isna(precinct) and pd.isna(got[beat])) or got[beat] == precinct, beat
    assert beats.crs.to_epsg() == 26910  # the UTM zone of the beats, not Chicago's


def test_prefix_rule_gives_seattle_sectors(raw_layer):
    dept = _profile(
        {"sector": {"parent": "prefix", "length": 1}, "district": {"column": "first_prec"}}
    )
    beats = read_beats(SEATTLE.beats_file, department=dept).set_index("beat")
    sector = raw_layer.set_index("beat")["sector"]
    letters = [b for b in beats.index if not b.isdigit()]
    assert len(letters) == 54
    assert all(beats.loc[b, "sector"] == sector[b] for b in letters)


def test_layer_rule_finds_the_precinct_polygon_covering_each_beat(raw_layer, tmp_path):
    precincts = raw_layer.dropna(subset=["first_prec"]).dissolve(by="first_prec").reset_index()
    path = tmp_path / "precincts.geojson"
    precincts[["first_prec", "geometry"]].rename(columns={"first_prec": "PREC"}).to_file(path)
    dept = _profile(
        {
            "sector": {"column": "sector"},
            "district": {"parent": "layer", "layer": str(path), "layer_column": "PREC"},
        }
    )
    beats = read_beats(SEATTLE.beats_file, department=dept).set_index("beat")
    expected = raw_layer.dropna(subset=["first_prec"]).set_index("beat")["first_prec"]
    got = beats.loc[expected.index, "district"].astype(object)
    assert got.tolist() == expected.tolist()


def test_a_missing_declared_column_is_named(tmp_path):
    dept = _profile({"district": {"column": "PRECINCT_NAME"}})
    with pytest.raises(InputError, match=r"'PRECINCT_NAME'.*not in the beat layer"):
        read_beats(SEATTLE.beats_file, department=dept)


def _box(x: float, y: float) -> shapely.Polygon:
    """A 100 m square near Seattle (UTM 10N)."""
    return shapely.box(550_000 + x, 5_270_000 + y, 550_100 + x, 5_270_100 + y)


@pytest.fixture
def duplicated(tmp_path):
    squares = [_box(0, 0), _box(100, 0), _box(0, 100)]
    layer = gpd.GeoDataFrame(
        {"beat": ["A1", "A1", "B1"], "sector": ["A", "A", "B"], "precinct": ["N", "S", "S"]},
        geometry=squares,
        crs="EPSG:32610",
    ).to_crs("EPSG:4326")
    path = tmp_path / "dupes.geojson"
    layer.to_file(path)
    return path


def test_check_beats_reports_one_id_with_two_parents(duplicated):
    report = check_beats(read_beats(duplicated))
    assert not report.is_clean
    # sector A repeats under two precincts, so it is qualified by them (as Chicago's are)
    assert report.duplicate_ids == [
        {"beat": "A1", "sectors": ["NA", "SA"], "districts": ["N", "S"]}
    ]


def test_the_same_id_in_two_pieces_of_one_parent_is_not_a_duplicate(tmp_path):
    squares = [_box(0, 0), _box(300, 0)]
    layer = gpd.GeoDataFrame(
        {"beat": ["A1", "A1"], "sector": ["A", "A"], "precinct": ["N", "N"]},
        geometry=squares,
        crs="EPSG:32610",
    )
    path = tmp_path / "pieces.geojson"
    layer.to_crs("EPSG:4326").to_file(path)
    report = check_beats(read_beats(path))
    assert report.duplicate_ids == []
    assert report.multipart == ["A1"]


def test_check_beats_cli_uses_the_profile_crs_and_reports_duplicates(duplicated, capsys):
    assert main(["check-beats", str(duplicated)]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["duplicate_ids"][0]["beat"] == "A1"
    assert out["analysis_crs"] == "EPSG:26910"  # UTM 10N from the layer, never 16N
    assert main(["check-beats", str(SEATTLE.beats_file), "--department", "seattle"]) == 1
    out = json.loads(capsys.readouterr().out)
    assert out["analysis_crs"] == "EPSG:26910"
    assert out["duplicate_ids"] == []
    assert out["without_district"] == ["99", "H1", "H2", "H3"]


def test_areas_are_measured_in_the_departments_crs(raw_layer):
    beats = read_beats(SEATTLE.beats_file, department=SEATTLE).set_index("beat")
    # st_area_sh is the City's own area in square US feet (WA state plane north)
    city = raw_layer.set_index("beat")["st_area_sh"] * 0.09290341161
    ratio = beats.geometry.area / city[beats.index]
    assert ratio.between(0.99, 1.01).all()
    # Chicago's zone, which the code used to apply everywhere, is off by far more
    wrong = read_beats(SEATTLE.beats_file, analysis_crs="EPSG:26916").set_index("beat")
    assert (wrong.geometry.area / city[wrong.index]).median() > 1.1
