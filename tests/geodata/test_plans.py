"""Saved beat plans on SQLite and PostgreSQL, and GeoJSON / GeoPackage export."""

import json
from datetime import UTC, datetime

import geopandas as gpd
import pytest
from shapely.geometry import box

from geodata import db
from geodata.errors import InputError, StoreError
from geodata.plans import export_plan, list_plans, load_plan, save_plan


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'plans.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    eng = db.make_engine(url)
    db.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def plan():
    return gpd.GeoDataFrame(
        {"beat": ["0111", "0112"], "sector": ["011", "011"], "district": ["01", "01"]},
        geometry=[box(447000, 4636000, 447500, 4636500), box(447500, 4636000, 448000, 4636500)],
        crs="EPSG:26916",
    )


def test_save_and_load_round_trip(engine, plan):
    created = datetime(2026, 12, 1, 20, 0, tzinfo=UTC)
    plan_id = save_plan(
        engine,
        plan,
        name="District 1 <draft>",
        author="O'Brien",
        parameters={"n_beats": 2, "seed": 0},
        measures={"workload_cv": 0.05},
        assignments={"0": "0111", "1": "0112"},
        created=created,
    )
    second = save_plan(engine, plan, name="second")
    saved = load_plan(engine, plan_id)
    assert (saved.name, saved.author, saved.district) == ("District 1 <draft>", "O'Brien", "01")
    assert saved.created == created
    assert saved.parameters == {"n_beats": 2, "seed": 0}
    assert saved.measures == {"workload_cv": 0.05}
    assert saved.assignments == {"0": "0111", "1": "0112"}
    assert saved.plan.crs == plan.crs
    assert saved.plan["beat"].tolist() == ["0111", "0112"]
    # geometry survives the trip through WGS84 to within millimetres
    assert saved.plan.geometry.area.tolist() == pytest.approx([250_000, 250_000], rel=1e-6)
    assert list_plans(engine)["id"].tolist() == [second, plan_id]  # newest first
    assert db.current_heads(engine) >= {"p0001_plans"}


def test_load_missing_and_save_without_name(engine, plan):
    with pytest.raises(StoreError, match="no saved plan with id 999"):
        load_plan(engine, 999)
    with pytest.raises(InputError, match="needs a name"):
        save_plan(engine, plan, name="  ")


def test_export_geojson_and_geopackage(plan, tmp_path):
    gj = export_plan(plan, tmp_path / "plan.geojson")
    features = json.loads(gj.read_text())["features"]
    assert [f["properties"]["beat"] for f in features] == ["0111", "0112"]
    lon, lat = features[0]["geometry"]["coordinates"][0][0]
    assert -88 < lon < -87
    assert 41 < lat < 42
    gpkg = gpd.read_file(export_plan(plan, tmp_path / "plan.gpkg"))
    assert gpkg["beat"].tolist() == ["0111", "0112"]
    assert gpkg.geometry.area.sum() == pytest.approx(500_000)
    with pytest.raises(InputError, match=r"plan\.shp: export to \.geojson or \.gpkg"):
        export_plan(plan, tmp_path / "plan.shp")
