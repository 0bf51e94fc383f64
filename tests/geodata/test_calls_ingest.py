"""Calls ingest on the real Minneapolis CAD export: reconciliation, rules, join, versions."""

from __future__ import annotations

from dataclasses import replace

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geodata import schema
from geodata.boundaries import read_beats
from geodata.calls import (
    RESPONSE_MIN,
    TIME_ON_TASK_MIN,
    CallMapping,
    calls_table,
    ingest_calls,
    load_calls,
)
from geodata.errors import InputError, SchemaError
from geodata.store import IncidentStore
from tests.analysis.test_calls import MPLS, RAW

ZONE = "America/Chicago"  # Minneapolis local time


@pytest.fixture(scope="module")
def mpls_store(tmp_path_factory) -> IncidentStore:
    beats = read_beats(MPLS / "sectors_from_calls.geojson")
    crs = beats.estimate_utm_crs()
    store = IncidentStore(tmp_path_factory.mktemp("mpls") / "store")
    store.initialize(analysis_crs=crs.to_string(), timezone=ZONE)
    store.write_layer("beats", beats.to_crs(crs))
    return store


@pytest.fixture(scope="module")
def ingested(mpls_store):
    mapping = CallMapping.from_file(MPLS / "calls_mapping.toml")
    return ingest_calls(RAW, mpls_store, mapping=mapping, block_bytes=1 << 18)


def test_every_row_is_accounted_for(ingested, mpls_store):
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    assert ingested.rows_read == len(raw) == 14_199
    assert ingested.rows_accepted + ingested.rows_rejected == ingested.rows_read
    assert ingested.rows_rejected == 18  # the interval rules (SOURCE.md lists them)
    assert ingested.rejected_by_reason["dispatched before received"] == 7
    stored = load_calls(mpls_store)
    assert len(stored) == ingested.rows_accepted == ingested.rows_new
    assert stored["call_id"].is_unique
    # REDACTED locations are kept with the sector they report
    redacted = (raw["Longitude"] == "REDACTED").sum()
    assert ingested.location_withheld >= redacted - 18
    reported = stored[stored[schema.JOIN_STATUS] == "reported"]
    assert len(reported) > 0.99 * redacted - 18
    assert (reported[schema.BEAT] == reported[schema.REPORTED_BEAT]).all()
    rejected = pd.read_csv(ingested.rejections_csv, dtype=str)
    assert len(rejected) == 18
    assert {"line", "column", "value", "reason"} <= set(rejected.columns)


def test_medians_per_sector_against_pandas_on_the_raw_file(ingested, mpls_store):
    stored = load_calls(mpls_store)
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    raw = raw[raw["Master_Incident_Number"].isin(stored["call_id"])]
    received = pd.to_datetime(raw["Response_Date"])
    arrived = pd.to_datetime(raw["Time_First_Unit_Arrived"].replace("", None))
    closed = pd.to_datetime(raw["Time_CallClosed"].replace("", None))
    assigned = pd.to_datetime(raw["Time_First_Unit_Assigned"].replace("", None))
    expected_response = ((arrived - received).dt.total_seconds() / 60).groupby(
        raw["Battalion"].str.upper()
    )
    on_task = (closed - arrived.fillna(assigned)).dt.total_seconds() / 60
    # by the sector the call reports (independent of the spatial join)
    by_reported = stored.groupby(schema.REPORTED_BEAT)
    for sector in ["P4 SEC 2N", "P1 SEC 1", "P5 SEC 3"]:
        assert by_reported.size()[sector] == (raw["Battalion"].str.upper() == sector).sum()
        assert by_reported[RESPONSE_MIN].median()[sector] == pytest.approx(
            expected_response.median()[sector]
        )
        mine = raw["Battalion"].str.upper() == sector
        assert by_reported[TIME_ON_TASK_MIN].median()[sector] == pytest.approx(
            np.nanmedian(on_task[mine])
        )


def test_spatial_join_agrees_with_the_reported_sector(ingested, mpls_store):
    stored = load_calls(mpls_store)
    located = stored[stored[schema.JOIN_STATUS].isin(["inside", "edge", "snapped"])]
    agree = (located[schema.BEAT] == located[schema.REPORTED_BEAT]).mean()
    assert agree > 0.93  # the approximate sector layer places 95.3% in their own sector


def test_ingesting_again_replaces_and_is_a_new_version(ingested, mpls_store):
    table = calls_table(mpls_store)
    before = table.version()
    again = ingest_calls(
        RAW, mpls_store, mapping=CallMapping.from_file(MPLS / "calls_mapping.toml")
    )
    assert again.rows_new == 0
    assert again.rows_replaced == ingested.rows_accepted
    assert table.version() == before + 1
    assert len(load_calls(mpls_store)) == ingested.rows_accepted
    # each ingest writes its own rejections file: the first one's is still there
    assert again.rejections_csv != ingested.rejections_csv
    assert len(pd.read_csv(ingested.rejections_csv, dtype=str)) == 18
    assert len(pd.read_csv(again.rejections_csv, dtype=str)) == 18


def test_bad_calls_are_rejected_with_reasons(tmp_path, mpls_store):
    bad = tmp_path / "bad_calls.csv"
    bad.write_text(
        "id,received,dispatched,arrived,closed,lon,lat,sector\n"
        "1,2020-06-21 10:00:00,2020-06-21 10:05:00,2020-06-21 10:10:00,2020-06-21 10:40:00,"
        "-93.27,44.98,P1 Sec 1\n"
        "2,2020-06-21 10:00:00,2020-06-21 10:05:00,,2020-06-21 10:01:00,-93.27,44.98,P1 Sec 1\n"
        "3,,2020-06-21 10:05:00,,2020-06-21 10:40:00,-93.27,44.98,P1 Sec 1\n"
        "4,2031-06-21 10:00:00,,,,-93.27,44.98,P1 Sec 1\n"
        "5,2020-06-21 10:00:00,2020-06-21 10:05:00,,2020-06-21 10:40:00,-193.27,44.98,P1\n"
        "6,21/06/2020 10:00,2020-06-21 10:05:00,,2020-06-21 10:40:00,REDACTED,REDACTED,P1 Sec 1\n"
        "1,2020-06-21 11:00:00,,,,,,P1 Sec 1\n",
        encoding="utf-8",
    )
    mapping = CallMapping(
        call_id="id", received_at="received", dispatched_at="dispatched", arrived_at="arrived",
        closed_at="closed", lon="lon", lat="lat", reported_beat="sector",
        date_format="%Y-%m-%d %H:%M:%S",
    )  # fmt: skip
    report = ingest_calls(bad, mpls_store, mapping=mapping)
    assert report.rows_read == 7
    assert report.rows_accepted == 1
    rejected = pd.read_csv(report.rejections_csv, dtype=str).set_index("line")
    assert rejected.loc["3", "reason"] == "closed before dispatched"
    assert rejected.loc["4", "reason"] == "no received time"
    assert rejected.loc["5", "reason"] == "date outside the plausible window"
    assert rejected.loc["6", "reason"] == "longitude/latitude out of range"
    assert rejected.loc["7", "reason"] == "unparseable date"
    assert rejected.loc["8", "reason"] == "duplicate call id"
    assert rejected.loc["8", "value"] == "1 (first at line 2)"
    with pytest.raises(SchemaError, match="received_at"):
        ingest_calls(bad, mpls_store, mapping=CallMapping(call_id="id"))
    with pytest.raises(SchemaError, match=r"\['when'\]"):
        ingest_calls(bad, mpls_store, mapping=CallMapping(received_at="when"))
    (tmp_path / "m.toml").write_text('[columns]\nreceived = "x"\n', encoding="utf-8")
    with pytest.raises(InputError, match="unknown call roles"):
        CallMapping.from_file(tmp_path / "m.toml")


def _empty_sectors_store(root) -> IncidentStore:
    beats = read_beats(MPLS / "sectors_from_calls.geojson")
    crs = beats.estimate_utm_crs()
    store = IncidentStore(root)
    store.initialize(analysis_crs=crs.to_string(), timezone=ZONE)
    store.write_layer("beats", beats.to_crs(crs))
    return store


def test_a_repeated_id_or_a_ragged_row_in_a_later_batch_is_a_rejection(tmp_path):
    """Ids are checked across batches, and a ragged record found late reads the file again."""
    rows = pd.read_csv(RAW, dtype=str, keep_default_na=False, nrows=400)
    rows.loc[399, "Master_Incident_Number"] = rows.loc[0, "Master_Incident_Number"]
    lines = rows.to_csv(index=False).splitlines()
    lines[380] += ",AN EXTRA FIELD"  # file line 381
    path = tmp_path / "late_faults.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    store = _empty_sectors_store(tmp_path / "store")
    mapping = CallMapping.from_file(MPLS / "calls_mapping.toml")
    report = ingest_calls(path, store, mapping=mapping, block_bytes=1 << 14)  # ~10 batches
    assert report.rows_read == 400
    assert report.rows_accepted + report.rows_rejected == 400
    assert report.rejected_by_reason["duplicate call id"] == 1
    assert report.rejected_by_reason["malformed row (wrong number of fields)"] == 1
    rejected = pd.read_csv(report.rejections_csv, dtype=str).set_index("line")
    first = rows.loc[0, "Master_Incident_Number"]
    assert rejected.loc["401", "value"] == f"{first} (first at line 2)"
    assert rejected.loc["381", "reason"] == "malformed row (wrong number of fields)"
    assert len(load_calls(store)) == report.rows_accepted


def test_timezone_option_shifts_the_local_times_as_pandas_does(tmp_path, mpls_store):
    """``ingest --kind calls --timezone ZONE`` reads naive times in ZONE, as incidents do."""
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[2]
    zone = "America/New_York"  # one hour ahead of the store's zone all summer
    store = IncidentStore(tmp_path / "store")
    store.initialize(analysis_crs=mpls_store.analysis_crs, timezone=ZONE)
    store.write_layer("beats", mpls_store.read_layer("beats"))
    command = [sys.executable, "-m", "geodata", "ingest", "--kind", "calls", str(RAW)]
    options = ["--store", str(store.root), "--mapping", str(MPLS / "calls_mapping.toml")]
    done = subprocess.run(
        [*command, *options, "--timezone", zone, "--json"],
        cwd=repo,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    stored = load_calls(store).set_index("call_id")
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False).drop_duplicates(
        "Master_Incident_Number"
    )
    raw = raw.set_index("Master_Incident_Number").loc[stored.index]
    expected = (
        pd.to_datetime(raw["Response_Date"], format="%Y-%m-%d %H:%M:%S")
        .dt.tz_localize(zone)
        .dt.tz_convert(ZONE)
    )
    assert len(stored) == 14_181
    received = stored["received_at"].dt.tz_convert(ZONE)
    assert (received.to_numpy() == expected.to_numpy()).all()
    # the same wall-clock text read in the store's own zone is one hour later
    default = load_calls(mpls_store).set_index("call_id").loc[stored.index]
    shift = default["received_at"].to_numpy() - stored["received_at"].to_numpy()
    assert (shift == np.timedelta64(1, "h")).all()


def test_a_batch_of_withheld_locations_only_is_stored(tmp_path, mpls_store):
    """Every call of a batch can be redacted: the batch's calls are kept, counts reconcile."""
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    redacted = raw[raw["Longitude"] == "REDACTED"]
    path = tmp_path / "redacted.csv"
    redacted.to_csv(path, index=False)
    store = IncidentStore(tmp_path / "store")
    store.initialize(analysis_crs=mpls_store.analysis_crs, timezone=ZONE)
    store.write_layer("beats", mpls_store.read_layer("beats"))
    mapping = CallMapping.from_file(MPLS / "calls_mapping.toml")
    report = ingest_calls(path, store, mapping=mapping, block_bytes=1 << 16)
    assert report.rows_read == len(redacted) > 1_000
    assert report.located == 0
    assert report.rows_accepted + report.rows_rejected == report.rows_read
    assert report.rows_accepted == report.location_withheld == len(load_calls(store))


def test_a_withheld_location_takes_its_numeric_area_normalised_like_the_layer(tmp_path, mpls_store):
    """A redacted call's reported area "7" is the layer's "07", as for a located call."""
    beats = mpls_store.read_layer("beats").reset_index(drop=True)
    beats[schema.BEAT] = [f"{i:02d}" for i in range(1, len(beats) + 1)]
    store = IncidentStore(tmp_path / "store")
    store.initialize(analysis_crs=mpls_store.analysis_crs, timezone=ZONE)
    store.write_layer("beats", beats)
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    redacted = raw[raw["Longitude"] == "REDACTED"].head(3).copy()
    redacted["Battalion"] = ["7", "07", "99"]  # unpadded, as the layer, not in the layer
    path = tmp_path / "redacted.csv"
    redacted.to_csv(path, index=False)
    mapping = CallMapping.from_file(MPLS / "calls_mapping.toml")
    report = ingest_calls(path, store, mapping=mapping)
    assert report.rows_accepted == report.location_withheld == 3
    calls = load_calls(store).sort_values("source_line")
    assert calls[schema.REPORTED_BEAT].tolist() == ["07", "07", "99"]
    assert calls[schema.BEAT].tolist() == ["07", "07", schema.OUTSIDE]
    assert calls[schema.JOIN_STATUS].tolist() == ["reported", "reported", "unlocated"]
    district = beats.set_index(schema.BEAT).loc["07", schema.DISTRICT]
    assert calls[schema.DISTRICT].tolist() == [district, district, schema.OUTSIDE]


def test_projected_x_y_give_the_same_calls_as_lon_lat(tmp_path, ingested, mpls_store):
    # the real export with its WGS84 points rewritten as UTM 15N metres (MPD's own zone);
    # REDACTED and empty locations stay as they are
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    lon = pd.to_numeric(raw["Longitude"], errors="coerce")
    lat = pd.to_numeric(raw["Latitude"], errors="coerce")
    located = lon.notna() & lat.notna() & (lon != 0)
    points = gpd.GeoSeries.from_xy(lon[located], lat[located], crs="EPSG:4326").to_crs("EPSG:26915")
    raw["X"], raw["Y"] = raw["Longitude"], raw["Latitude"]
    raw.loc[located, "X"] = [f"{v:.3f}" for v in points.x]
    raw.loc[located, "Y"] = [f"{v:.3f}" for v in points.y]
    path = tmp_path / "calls_utm.csv"
    raw.drop(columns=["Longitude", "Latitude"]).to_csv(path, index=False)
    base = CallMapping.from_file(MPLS / "calls_mapping.toml")
    mapping = replace(base, lon=None, lat=None, x="X", y="Y", crs="EPSG:26915")

    store = IncidentStore(tmp_path / "store")
    store.initialize(analysis_crs=mpls_store.analysis_crs, timezone=ZONE)
    store.write_layer("beats", mpls_store.read_layer("beats"))
    report = ingest_calls(path, store, mapping=mapping)
    assert (report.rows_accepted, report.rows_rejected) == (
        ingested.rows_accepted,
        ingested.rows_rejected,
    )
    want = load_calls(mpls_store)  # other tests add their own calls to this store
    want = want[want["source"] == RAW.name].set_index("call_id").sort_index()
    got = load_calls(store).set_index("call_id").sort_index()
    assert got.index.equals(want.index)
    assert (got[schema.BEAT] == want[schema.BEAT]).all()
    assert got[schema.JOIN_STATUS].tolist() == want[schema.JOIN_STATUS].tolist()
    # millimetres written, so the points agree to about a millimetre
    assert np.nanmax(np.abs(got[schema.X] - want[schema.X])) < 0.01
    assert np.nanmax(np.abs(got[schema.LAT] - want[schema.LAT])) < 1e-7


def test_projected_x_y_without_their_crs_is_refused_in_the_mappings_words(tmp_path, mpls_store):
    path = tmp_path / "calls.csv"
    path.write_text("id,received,X,Y\n1,2020-06-21 10:00:00,478000,4980000\n", encoding="utf-8")
    mapping = CallMapping(call_id="id", received_at="received", x="X", y="Y")
    with pytest.raises(SchemaError, match=r"set crs under \[options\]"):
        ingest_calls(path, mpls_store, mapping=mapping)


def test_a_european_export_is_read_and_its_delimiter_and_decimals_reported(tmp_path, mpls_store):
    head = pd.read_csv(RAW, dtype=str, keep_default_na=False, nrows=300)
    mapping = CallMapping.from_file(MPLS / "calls_mapping.toml")
    reports = {}
    european = head.copy()  # as a European export writes it: decimal commas, semicolons
    for column in ("Longitude", "Latitude"):
        european[column] = european[column].str.replace(".", ",", regex=False)
    for name, sep in (("comma", ","), ("semicolon", ";")):
        path = tmp_path / f"{name}.csv"
        (head if sep == "," else european).to_csv(path, index=False, sep=sep)
        store = IncidentStore(tmp_path / name)
        store.initialize(analysis_crs=mpls_store.analysis_crs, timezone=ZONE)
        store.write_layer("beats", mpls_store.read_layer("beats"))
        reports[name] = ingest_calls(path, store, mapping=mapping)
    comma, semicolon = reports["comma"], reports["semicolon"]
    assert semicolon.rows_read == comma.rows_read == 300
    assert semicolon.rows_accepted == comma.rows_accepted > 290
    assert not comma.notes
    assert any("fields separated by ';'" in note for note in semicolon.notes)
    assert any("'Longitude' writes numbers with a decimal comma" in n for n in semicolon.notes)
    assert semicolon.located == comma.located > 200
    assert semicolon.outside == comma.outside
