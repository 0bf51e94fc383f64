"""Seattle, the second bundled department: its store checked against the raw files.

Counts are checked against independent pandas/json counts of the raw files, the join against
plain ``geopandas.sjoin`` and against SPD's own reported beat.
"""

from __future__ import annotations

import json
import tomllib

import geopandas as gpd
import pandas as pd
import pytest

from geodata.department import load_department

SEATTLE = load_department("seattle")
RAW_CSV = SEATTLE.incident_files[0]
RAW_BEATS = SEATTLE.beats_file


@pytest.fixture(scope="module")
def raw() -> pd.DataFrame:
    return pd.read_csv(RAW_CSV, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def located(raw) -> pd.DataFrame:
    return raw[(raw["longitude"].astype(float) != 0) & (raw["latitude"].astype(float) != 0)]


@pytest.fixture(scope="module")
def stored(seattle_store) -> pd.DataFrame:
    return seattle_store.load_incidents()


def test_beat_sector_and_precinct_counts_match_the_raw_layer(seattle_store):
    features = json.loads(RAW_BEATS.read_text(encoding="utf-8"))["features"]
    props = pd.DataFrame([f["properties"] for f in features])
    beats = seattle_store.read_layer("beats")
    assert len(beats) == props["beat"].nunique() == 55
    assert beats["sector"].nunique() == props["sector"].nunique() == 19
    precincts = set(props["first_prec"].dropna())
    assert set(beats["district"].dropna()) == precincts == {"N", "E", "S", "W", "SW"}
    # beats without a precinct in the layer stay without one (H1-H3 and 99)
    assert sorted(beats.loc[beats["district"].isna(), "beat"]) == sorted(
        props.loc[props["first_prec"].isna(), "beat"]
    )
    districts = seattle_store.read_layer("districts")
    assert sorted(districts["district"]) == sorted(precincts)


def test_rows_reconcile_with_the_raw_file(seattle_store, raw, located):
    (report,) = seattle_store.build_reports
    assert report.rows_read == len(raw) == 75_281
    assert report.rows_read == report.rows_accepted + report.rows_rejected
    no_location = int((raw["longitude"].astype(float) == 0).sum())
    assert report.rejected_by_reason["missing coordinates"] == no_location == 2_677
    assert seattle_store.count() == report.rows_accepted
    assert report.rows_accepted == len(located) - report.rejected_by_reason.get(
        "outside the jurisdiction", 0
    )


def test_incidents_per_precinct_and_beat_match_spd_columns(stored, located):
    ours = stored["district"].value_counts()
    theirs = located["precinct"].value_counts()
    for precinct in ("N", "E", "S", "W", "SW"):
        assert ours[precinct] == pytest.approx(theirs[precinct], rel=0.005), precinct
    reported = set(located["beat"]) - {"UNKNOWN"}
    assert reported <= set(stored["beat"])
    per_beat = stored["beat"].value_counts()
    raw_per_beat = located["beat"].value_counts()
    for beat in reported:
        assert per_beat[beat] == pytest.approx(raw_per_beat[beat], rel=0.05, abs=10), beat


def test_plain_sjoin_agreement_matches_the_source(seattle_store, located):
    beats = seattle_store.read_layer("beats")
    points = gpd.GeoDataFrame(
        located[["beat"]],
        geometry=gpd.points_from_xy(
            located["longitude"].astype(float), located["latitude"].astype(float)
        ),
        crs="EPSG:4326",
    ).to_crs(beats.crs)
    joined = gpd.sjoin(
        points, beats[["beat", "geometry"]].rename(columns={"beat": "polygon"}), how="left"
    )
    joined = joined[~joined.index.duplicated()]
    agreement = float((joined["polygon"] == joined["beat"]).mean())
    # the figure of the download's SOURCE.md (92.72 %), measured there in EPSG:2926
    assert agreement == pytest.approx(0.9272, abs=5e-4)
    (report,) = seattle_store.build_reports
    # our geometric rule is at least as good; the reported-beat tie-break much better
    assert report.join_agreement_geometric >= agreement
    assert report.join_agreement_geometric == pytest.approx(0.9396, abs=5e-4)
    assert report.join_agreement == pytest.approx(0.9968, abs=5e-4)


def test_join_agreement_recomputed_from_the_raw_file(seattle_store, stored, raw):
    merged = stored[["incident_id", "beat"]].merge(
        raw[["offense_id", "beat"]].rename(columns={"offense_id": "incident_id", "beat": "spd"}),
        on="incident_id",
        how="left",
    )
    assert merged["spd"].notna().all()
    agreement = float((merged["beat"] == merged["spd"]).mean())
    (report,) = seattle_store.build_reports
    assert agreement == pytest.approx(report.join_agreement, abs=1e-9)


def test_times_are_seattle_local(seattle_store, stored, raw):
    assert seattle_store.timezone == "America/Los_Angeles"
    assert str(stored["occurred_at"].dt.tz) == "America/Los_Angeles"
    by_id = stored.set_index("incident_id")["occurred_at"]
    for when in ("2018-01-15", "2018-07-15"):  # standard and daylight time
        row = raw[raw["offense_start_datetime"].str.startswith(when)]
        row = row[row["offense_id"].isin(by_id.index)].iloc[0]
        expected = pd.Timestamp(row["offense_start_datetime"]).tz_localize("America/Los_Angeles")
        assert by_id[row["offense_id"]] == expected
        assert by_id[row["offense_id"]].utcoffset() == expected.utcoffset()
    assert stored["occurred_at"].min().year == 2018
    assert stored["occurred_at"].max() < pd.Timestamp("2019-01-01", tz="America/Los_Angeles")


def test_nibrs_categories_and_sensitive_flags(stored, raw):
    vocabulary = tomllib.loads(
        (RAW_CSV.parents[2] / "vocabularies" / "nibrs.toml").read_text(encoding="utf-8")
    )["offenses"]
    merged = stored[["incident_id", "category", "is_sensitive"]].merge(
        raw[["offense_id", "offense_code"]].rename(columns={"offense_id": "incident_id"}),
        on="incident_id",
    )
    expected = merged["offense_code"].map(lambda c: vocabulary[c]["category"])
    assert (merged["category"] == expected).all()
    flagged = merged["offense_code"].map(lambda c: vocabulary[c].get("sensitive", False))
    assert merged.loc[flagged, "is_sensitive"].all()
    assert flagged.sum() > 0
    assert merged.loc[merged["offense_code"] == "11A", "is_sensitive"].all()
    assert not merged.loc[merged["offense_code"] == "23F", "is_sensitive"].any()
    assert (merged["category"] != "other").mean() > 0.99


def test_each_station_lies_in_its_own_precinct(seattle_store):
    """The bundled stations, checked against the raw beat layer (not the store's join)."""
    beats = gpd.read_file(RAW_BEATS)
    precincts = beats.dropna(subset=["first_prec"]).dissolve("first_prec").to_crs("EPSG:26910")
    raw = pd.read_csv(SEATTLE.stations_file, dtype=str, keep_default_na=False)
    assert sorted(raw["PRECINCT"]) == sorted(precincts.index) == ["E", "N", "S", "SW", "W"]
    points = gpd.GeoDataFrame(
        raw,
        geometry=gpd.points_from_xy(raw["LONGITUDE"].astype(float), raw["LATITUDE"].astype(float)),
        crs="EPSG:4326",
    ).to_crs("EPSG:26910")
    for row in points.itertuples():
        assert precincts.geometry[row.PRECINCT].contains(row.geometry), row.NAME
        others = precincts.drop(index=row.PRECINCT).geometry.distance(row.geometry)
        assert others.min() > 500  # well inside: not a boundary case of an approximate point
    assert (raw["PHONE"] == "").all()  # never invented
    stored = seattle_store.read_layer("stations")
    assert sorted(stored["station_id"]) == sorted(stored["district"]) == sorted(raw["PRECINCT"])
