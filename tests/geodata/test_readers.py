"""Readers: formats, column mapping, coordinates, dates, and every class of bad input."""

from __future__ import annotations

import gzip
import io
import warnings
from datetime import UTC, datetime

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geodata import schema
from geodata.dates import parse_timestamps
from geodata.errors import CRSMismatchError, InputError, SchemaError
from geodata.readers import (
    REASONS,
    ColumnMapping,
    detect_mapping,
    iter_incidents,
    iter_records,
    load_mapping,
    read_incidents,
)

DENSE = "incidents_2018-01_dense.csv.gz"
#: The portal's format, given explicitly for small extracts whose dates do not say their order.
CHICAGO = ColumnMapping(date_format="%m/%d/%Y %I:%M:%S %p")


@pytest.fixture(scope="module")
def dense_raw(samples_dir) -> pd.DataFrame:
    return pd.read_csv(samples_dir / DENSE, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def dense_read(samples_dir):
    return read_incidents(samples_dir / DENSE)


def write_csv(frame: pd.DataFrame, path) -> None:
    frame.to_csv(path, index=False)


# --- the real bundled file -----------------------------------------------------------------


def test_dense_file_reconciles_and_rejects_exactly_the_rows_without_coordinates(
    dense_raw, dense_read
):
    blank = (dense_raw["Latitude"] == "") | (dense_raw["Longitude"] == "")
    assert dense_read.rows_read == len(dense_raw) == 17_198
    assert dense_read.rows_accepted + dense_read.rows_rejected == dense_read.rows_read
    assert dense_read.rows_rejected == int(blank.sum()) == 160
    assert set(dense_read.rejected["reason"]) == {REASONS["missing_coordinates"]}
    # line numbers point at the file's lines (header = line 1)
    expected_lines = sorted((np.flatnonzero(blank.to_numpy()) + 2).tolist())
    assert sorted(dense_read.rejected["line"].tolist()) == expected_lines


def test_auto_detected_mapping_of_the_chicago_portal_schema(dense_read):
    mapping = dense_read.mapping
    assert mapping.incident_id == "ID"
    assert mapping.case_number == "Case Number"
    assert mapping.occurred_at == "Date"
    assert mapping.offense == "Primary Type"
    assert mapping.description == "Description"
    assert mapping.location_desc == "Location Description"
    assert mapping.reported_beat == "Beat"
    assert (mapping.lat, mapping.lon) == ("Latitude", "Longitude")
    assert (mapping.x, mapping.y) == ("X Coordinate", "Y Coordinate")


def test_timestamps_are_local_chicago_time(dense_raw, dense_read):
    first = dense_read.incidents.iloc[0]
    raw = dense_raw.set_index("ID").loc[first[schema.INCIDENT_ID], "Date"]
    expected = pd.Timestamp(pd.to_datetime(raw, format="%m/%d/%Y %I:%M:%S %p")).tz_localize(
        "America/Chicago"
    )
    assert first[schema.OCCURRED_AT] == expected
    assert str(dense_read.incidents[schema.OCCURRED_AT].dt.tz) == "America/Chicago"


def test_categories_and_sensitive_flag(dense_raw, dense_read):
    incidents = dense_read.incidents.set_index(schema.INCIDENT_ID)
    raw = dense_raw.set_index("ID").loc[incidents.index]
    theft = raw["Primary Type"] == "THEFT"
    assert (incidents.loc[theft.to_numpy(), schema.CATEGORY] == "property").all()
    sexual = raw["Primary Type"].isin(["CRIM SEXUAL ASSAULT", "CRIMINAL SEXUAL ASSAULT"])
    assert sexual.any()
    assert incidents.loc[sexual.to_numpy(), schema.IS_SENSITIVE].all()
    domestic = raw["Domestic"] == "true"
    assert incidents.loc[domestic.to_numpy(), schema.IS_SENSITIVE].all()
    # an ordinary non-domestic theft is not sensitive
    plain = theft & ~domestic & ~raw["Description"].str.contains("CHILD|SEX")
    assert not incidents.loc[plain.to_numpy(), schema.IS_SENSITIVE].any()


def test_state_plane_read_gives_the_same_points(dense_raw, dense_read, tmp_path):
    only_xy = dense_raw.drop(columns=["Latitude", "Longitude", "Location"])
    path = tmp_path / "xy.csv"
    write_csv(only_xy, path)
    result = read_incidents(path, mapping=ColumnMapping(crs="EPSG:3435"))
    assert result.rows_accepted == dense_read.rows_accepted
    a = result.incidents.set_index(schema.INCIDENT_ID)
    b = dense_read.incidents.set_index(schema.INCIDENT_ID).loc[a.index]
    # the portal's lat/lon were computed from its state-plane x/y: same place within 1 cm
    distance = np.hypot(a[schema.X] - b[schema.X], a[schema.Y] - b[schema.Y])
    assert distance.max() < 0.01


def test_projected_xy_without_crs_is_a_schema_error(dense_raw, tmp_path):
    path = tmp_path / "xy.csv"
    write_csv(dense_raw.drop(columns=["Latitude", "Longitude", "Location"]).head(5), path)
    with pytest.raises(SchemaError, match=r"but their CRS is not given"):
        read_incidents(path)


def test_unknown_crs_is_reported(dense_raw, tmp_path):
    path = tmp_path / "xy.csv"
    write_csv(dense_raw.head(5), path)
    with pytest.raises(CRSMismatchError, match="EPSG:999999"):
        read_incidents(path, mapping=ColumnMapping(crs="EPSG:999999"))


# --- every file format ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".shp", ".parquet", ".geo.parquet"])
def test_vector_and_parquet_formats_read_like_the_csv(dense_raw, tmp_path, suffix):
    # rows spread over the month, so the dates say they are month-first
    sample = dense_raw[dense_raw["Latitude"] != ""].sample(300, random_state=1).copy()
    path = tmp_path / f"incidents{suffix}"
    if suffix == ".parquet":
        sample.to_parquet(path)
    else:
        points = gpd.GeoDataFrame(
            sample.drop(
                columns=["Latitude", "Longitude", "Location", "X Coordinate", "Y Coordinate"]
            ),
            geometry=gpd.points_from_xy(
                sample["Longitude"].astype(float), sample["Latitude"].astype(float)
            ),
            crs="EPSG:4326",
        )
        if suffix == ".geo.parquet":
            points.to_parquet(path)
        elif suffix == ".shp":  # shapefiles cut names to 10 characters: the reader copes
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # GDAL warns about each truncated name
                points.to_file(path)
        else:
            points.to_file(path)
    result = read_incidents(path)
    assert result.rows_read == 300
    assert result.rows_accepted == 300
    expected_lon = sample["Longitude"].astype(float).to_numpy()
    assert np.allclose(np.sort(result.incidents[schema.LON]), np.sort(expected_lon), atol=1e-9)
    assert set(result.incidents[schema.OFFENSE]) == set(sample["Primary Type"])


def test_explicit_toml_mapping_for_renamed_columns(tmp_path):
    frame = pd.DataFrame(
        {
            "EventNo": ["A1", "A2"],
            "When": ["2024-03-05 21:15", "2024-03-06 08:00"],
            "What": ["THEFT", "BATTERY"],
            "Easting": ["1175476", "1155768"],
            "Northing": ["1873816", "1875006"],
        }
    )
    data = tmp_path / "cad.csv"
    write_csv(frame, data)
    mapping_file = tmp_path / "map.toml"
    mapping_file.write_text(
        '[columns]\nincident_id = "EventNo"\noccurred_at = "When"\noffense = "What"\n'
        'x = "Easting"\ny = "Northing"\n[options]\ncrs = "EPSG:3435"\n'
        'date_format = "%Y-%m-%d %H:%M"\n'
    )
    result = read_incidents(data, mapping=load_mapping(mapping_file))
    assert result.rows_accepted == 2
    assert result.incidents[schema.OCCURRED_AT].iloc[0] == pd.Timestamp(
        "2024-03-05 21:15", tz="America/Chicago"
    )
    # the state-plane point of the first row is at lat 41.8091, lon -87.6319 (portal values)
    assert result.incidents[schema.LAT].iloc[0] == pytest.approx(41.809125265, abs=1e-6)
    assert result.incidents[schema.LON].iloc[0] == pytest.approx(-87.631906508, abs=1e-6)


def test_mapping_file_with_unknown_role_is_rejected(tmp_path):
    mapping_file = tmp_path / "map.toml"
    mapping_file.write_text('[columns]\nwhen = "Date"\n')
    with pytest.raises(InputError, match=r"unknown column roles \['when'\]"):
        load_mapping(mapping_file)


def test_detect_mapping_prefers_explicit_roles():
    mapping = detect_mapping(
        ["ID", "Date", "Primary Type", "Lat", "Lon", "Beat"],
        base=ColumnMapping(reported_beat=None, offense="Primary Type"),
    )
    assert mapping.lat == "Lat"
    assert mapping.lon == "Lon"
    assert mapping.reported_beat == "Beat"


# --- bad input: each class with its exact count and reason ----------------------------------


@pytest.fixture
def faulty_csv(dense_raw, tmp_path):
    """Twelve real located rows, with one fault planted per row in rows 2..10 (file lines)."""
    rows = dense_raw[dense_raw["Latitude"] != ""].head(12).copy().reset_index(drop=True)
    rows.loc[0, ["Latitude", "Longitude"]] = ""  # line 2: missing coordinates
    rows.loc[1, "Latitude"] = "forty-one"  # line 3: unparseable
    rows.loc[2, ["Latitude", "Longitude"]] = ["48.8566", "2.3522"]  # line 4: Paris
    rows.loc[3, "Date"] = "31/31/2024 10:00"  # line 5: not a date
    rows.loc[4, "Date"] = ""  # line 6: missing date
    rows.loc[5, "ID"] = rows.loc[6, "ID"]  # line 7 duplicates line 8's id... see below
    rows.loc[8, "ID"] = ""  # line 10: missing id
    rows.loc[9, "Primary Type"] = ""  # line 11: missing offense
    path = tmp_path / "faulty.csv"
    write_csv(rows, path)
    return path, rows


def test_each_bad_row_is_rejected_with_line_column_and_reason(faulty_csv, sample_store, tmp_path):
    from geodata.ingest import ingest_file
    from geodata.store import IncidentStore

    path, _ = faulty_csv
    store = IncidentStore(tmp_path / "store")
    import shutil

    shutil.copytree(sample_store.root / "boundaries", store.root / "boundaries")
    shutil.copy(sample_store.meta_path, store.meta_path)
    report = ingest_file(path, store, mapping=CHICAGO)
    rejected = pd.read_csv(report.rejections_csv).set_index("line")
    assert report.rows_read == 12
    assert report.rows_accepted + report.rows_rejected == 12
    assert rejected.loc[2, "reason"] == REASONS["missing_coordinates"]
    assert rejected.loc[3, "reason"] == REASONS["bad_coordinates"]
    assert rejected.loc[3, "column"] == "Latitude"
    assert rejected.loc[3, "value"] == "forty-one"
    assert rejected.loc[4, "reason"] == REASONS["outside_jurisdiction"]
    assert rejected.loc[5, "reason"] == REASONS["bad_date"]
    assert rejected.loc[5, "value"] == "31/31/2024 10:00"
    assert rejected.loc[6, "reason"] == REASONS["missing_date"]
    assert rejected.loc[8, "reason"] == REASONS["duplicate_id"]  # the second copy is rejected
    assert "first at line 7" in rejected.loc[8, "value"]
    assert rejected.loc[10, "reason"] == REASONS["missing_id"]
    assert rejected.loc[11, "reason"] == REASONS["missing_offense"]
    assert report.rows_rejected == 8
    assert report.rejected_by_reason == {
        REASONS[k]: 1
        for k in (
            "missing_coordinates",
            "bad_coordinates",
            "outside_jurisdiction",
            "bad_date",
            "missing_date",
            "duplicate_id",
            "missing_id",
            "missing_offense",
        )
    }


def test_point_just_outside_the_city_is_kept_as_outside_not_rejected(
    dense_raw, sample_store, tmp_path
):
    from geodata.ingest import ingest_file
    from geodata.store import IncidentStore

    rows = dense_raw[dense_raw["Latitude"] != ""].head(2).copy()
    # 200 m east of the lake shore at Navy Pier's latitude: within the 1 km buffer, in no beat
    rows.iloc[0, rows.columns.get_loc("Latitude")] = "41.8917"
    rows.iloc[0, rows.columns.get_loc("Longitude")] = "-87.5950"
    path = tmp_path / "edge.csv"
    write_csv(rows, path)
    store = IncidentStore(tmp_path / "store")
    import shutil

    shutil.copytree(sample_store.root / "boundaries", store.root / "boundaries")
    shutil.copy(sample_store.meta_path, store.meta_path)
    report = ingest_file(path, store, mapping=CHICAGO)
    assert report.rows_rejected == 0
    assert report.outside == 1


def test_ragged_rows_are_rejected_as_malformed(tmp_path):
    path = tmp_path / "ragged.csv"
    path.write_text(
        "ID,Date,Primary Type,Latitude,Longitude\n"
        "1,01/02/2018 10:00:00 AM,THEFT,41.88,-87.63\n"
        "2,01/02/2018 11:00:00 AM,THEFT,41.88,-87.63,EXTRA,FIELDS\n"
        "3,01/02/2018 12:00:00 PM,BATTERY,41.89,-87.64\n"
    )
    result = read_incidents(path, mapping=CHICAGO)
    assert result.rows_read == 3
    assert result.rows_accepted == 2
    assert result.rejected[["line", "reason"]].to_dict("records") == [
        {"line": 3, "reason": REASONS["malformed"]}
    ]


def test_iter_records_gives_every_record_its_line_or_a_rejection(tmp_path):
    """The raw reading other record kinds (calls) share: a quoted line break, a ragged row."""
    path = tmp_path / "records.csv"
    path.write_text(
        "id,note,when\n"
        '1,"two\nlines",2020-06-21 10:00:00\n'  # lines 2-3
        "2,short\n"  # line 4: one field short, padded
        "3,long,2020-06-21 10:00:00,EXTRA\n"  # line 5: rejected
        "4,last,2020-06-21 11:00:00\n",
        encoding="utf-8",
    )
    parts = list(iter_records(path))
    ids = [i for table, _, _ in parts for i in table.column("id").to_pylist()]
    lines = [int(n) for _, found, _ in parts for n in found]
    rejected = pd.concat([r for _, _, r in parts], ignore_index=True)
    assert ids == ["1", "2", "4"]
    assert lines == [2, 4, 6]
    assert rejected[["line", "reason"]].to_dict("records") == [
        {"line": 5, "reason": REASONS["malformed"]}
    ]
    assert sum(t.num_rows + len(r) for t, _, r in parts) == 4  # records read


def test_missing_required_column_is_named(dense_raw, tmp_path):
    path = tmp_path / "nodate.csv"
    write_csv(dense_raw.drop(columns=["Date", "Updated On"]).head(3), path)
    with pytest.raises(SchemaError, match=r"nodate.csv: required columns missing: occurred_at"):
        read_incidents(path)


def test_missing_coordinate_columns_are_named(dense_raw, tmp_path):
    path = tmp_path / "nocoords.csv"
    cols = ["Latitude", "Longitude", "Location", "X Coordinate", "Y Coordinate"]
    write_csv(dense_raw.drop(columns=cols).head(3), path)
    with pytest.raises(SchemaError, match="coordinates: latitude/longitude columns"):
        read_incidents(path)


def test_empty_file(tmp_path):
    path = tmp_path / "empty.csv"
    path.write_text("")
    with pytest.raises(InputError, match=r"empty\.csv: the file is empty"):
        read_incidents(path)


def test_header_only_file_reads_zero_rows(tmp_path):
    path = tmp_path / "header.csv"
    path.write_text("ID,Date,Primary Type,Latitude,Longitude\n")
    result = read_incidents(path)
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (0, 0, 0)


def test_binary_file_renamed_csv(tmp_path):
    path = tmp_path / "photo.csv"
    path.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(InputError, match=r"photo\.csv: this is not a text CSV file"):
        read_incidents(path)


def test_gzip_renamed_csv(tmp_path):
    path = tmp_path / "packed.csv"
    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb") as handle:
        handle.write(b"ID,Date\n1,2\n")
    path.write_bytes(buffer.getvalue())
    with pytest.raises(InputError, match=r"packed\.csv: this is not a"):
        read_incidents(path)


def test_missing_file(tmp_path):
    with pytest.raises(InputError, match=r"nowhere\.csv: no such file"):
        read_incidents(tmp_path / "nowhere.csv")


def test_unsupported_extension(tmp_path):
    path = tmp_path / "report.xlsx"
    path.write_bytes(b"PK")
    with pytest.raises(InputError, match="unsupported file type"):
        read_incidents(path)


# --- timestamps -------------------------------------------------------------------------------


def test_timestamp_formats_and_iso_offsets():
    values = pd.Series(["2024-03-05T21:15:00-06:00", "2024-07-04T12:00:00Z", ""])
    parsed, _ = parse_timestamps(values, timezone="America/Chicago")
    assert parsed.iloc[0] == pd.Timestamp("2024-03-05 21:15", tz="America/Chicago")
    assert parsed.iloc[1] == pd.Timestamp("2024-07-04 07:00", tz="America/Chicago")
    assert pd.isna(parsed.iloc[2])


def test_a_column_mixing_month_first_and_day_first_is_refused_with_lines_and_advice():
    values = pd.Series(
        ["01/20/2018 10:00", "02/25/2018 11:00", "03/04/2018 09:00", "13/01/2018 09:00"]
    )
    with pytest.raises(InputError) as caught:
        parse_timestamps(values, timezone="America/Chicago")
    message = str(caught.value)
    assert "mix month-first and day-first" in message
    assert "line 1 '01/20/2018 10:00'" in message
    assert "line 4 '13/01/2018 09:00'" in message
    assert "--date-format '%m/%d/%Y %H:%M'" in message
    # with the format given, the day-first value is a bad date, never read day-first
    parsed, used = parse_timestamps(
        values, timezone="America/Chicago", date_format="%m/%d/%Y %H:%M"
    )
    assert used == "%m/%d/%Y %H:%M"
    assert (parsed.iloc[2].month, parsed.iloc[2].day) == (3, 4)
    assert pd.isna(parsed.iloc[3])


def test_us_dates_with_one_day_first_typo_are_refused_not_misdated():
    # issue 12: 299 values read either way and one that only reads day-first
    values = pd.Series(["02/12/2025 10:00"] * 299 + ["13/02/2025 10:00"])
    with pytest.raises(InputError, match=r"do not say whether.*too few to decide \(a typo\?\)"):
        parse_timestamps(values, timezone="America/Chicago")


def test_day_first_column_is_read_day_first_when_its_days_say_so():
    values = pd.Series([f"{d:02d}/02/2025 10:00" for d in range(1, 29)])
    parsed, used = parse_timestamps(values, timezone="Europe/London")
    assert used == "%d/%m/%Y %H:%M"
    assert [(t.month, t.day) for t in parsed.iloc[[0, 12, 27]]] == [(2, 1), (2, 13), (2, 28)]


def test_month_dash_day_dash_year_is_detected():
    values = pd.Series(["02-13-2025 10:00", "03-01-2025 23:59", "12-31-2024 00:05"])
    parsed, used = parse_timestamps(values, timezone="America/Chicago")
    assert used == "%m-%d-%Y %H:%M"
    assert parsed.iloc[0] == pd.Timestamp("2025-02-13 10:00", tz="America/Chicago")
    assert parsed.iloc[2] == pd.Timestamp("2024-12-31 00:05", tz="America/Chicago")


def test_a_mapping_may_list_several_formats():
    values = pd.Series(["2024-03-05 21:15", "03/06/2024 08:00:00 AM", "yesterday"])
    parsed, _ = parse_timestamps(
        values,
        timezone="America/Chicago",
        date_format=("%Y-%m-%d %H:%M", "%m/%d/%Y %I:%M:%S %p"),
    )
    assert parsed.iloc[0] == pd.Timestamp("2024-03-05 21:15", tz="America/Chicago")
    assert parsed.iloc[1] == pd.Timestamp("2024-03-06 08:00", tz="America/Chicago")
    assert pd.isna(parsed.iloc[2])


def test_load_mapping_reads_a_list_of_date_formats_and_the_earliest_year(tmp_path):
    mapping_file = tmp_path / "map.toml"
    mapping_file.write_text(
        '[options]\ndate_format = ["%Y-%m-%d %H:%M", "%m/%d/%Y"]\nearliest_year = 2005\n'
    )
    mapping = load_mapping(mapping_file)
    assert mapping.date_formats == ("%Y-%m-%d %H:%M", "%m/%d/%Y")
    assert mapping.earliest_year == 2005


def test_dates_outside_the_plausible_window_are_rejected_with_their_own_reason(tmp_path):
    path = tmp_path / "years.csv"
    path.write_text(
        "ID,Date,Primary Type,Latitude,Longitude\n"
        "1,2024-05-01 10:00,THEFT,41.88,-87.63\n"
        "2,2031-05-01 10:00,THEFT,41.88,-87.63\n"
        "3,2099-05-01 10:00,THEFT,41.88,-87.63\n"
        "4,1850-05-01 10:00,THEFT,41.88,-87.63\n"
        "5,1899-12-30 00:00,THEFT,41.88,-87.63\n"
        "6,1994-05-01 10:00,THEFT,41.88,-87.63\n"
    )
    now = datetime(2026, 1, 1, tzinfo=UTC)
    result = read_incidents(path, now=now)
    assert result.rows_accepted == 2
    assert result.rejected["line"].tolist() == [3, 4, 5, 6]
    assert set(result.rejected["reason"]) == {REASONS["implausible_date"]}
    # a department whose records start in 1995 rejects 1994 as well
    later = read_incidents(path, mapping=ColumnMapping(earliest_year=1995), now=now)
    assert later.rejected["line"].tolist() == [3, 4, 5, 6, 7]


def test_dst_gap_and_repeated_hour():
    values = pd.Series(["03/10/2024 02:30:00 AM", "11/03/2024 01:30:00 AM"])
    parsed, _ = parse_timestamps(
        values, timezone="America/Chicago", date_format="%m/%d/%Y %I:%M:%S %p"
    )
    # 02:30 does not exist on 10 March 2024 in Chicago: moved to the first valid instant
    assert parsed.iloc[0] == pd.Timestamp("2024-03-10 03:00", tz="America/Chicago")
    # 01:30 happens twice on 3 November 2024: the first (daylight, UTC-5) reading is taken
    assert parsed.iloc[1].utcoffset() == pd.Timedelta(hours=-5)


def test_a_first_batch_of_early_days_does_not_decide_alone(tmp_path):
    # sorted by date: the first batches hold 1-12 January only; the whole column decides
    rows = [f"{i},01/{1 + i // 400:02d}/2018 10:00,THEFT,41.88,-87.63" for i in range(8000)]
    path = tmp_path / "sorted.csv"
    path.write_text("ID,Date,Primary Type,Latitude,Longitude\n" + "\n".join(rows) + "\n")
    parts = list(iter_incidents(path, block_bytes=16 << 10))
    assert len(parts) > 5
    incidents = pd.concat([p.incidents for p in parts], ignore_index=True)
    assert len(incidents) == 8000
    days = incidents[schema.OCCURRED_AT].dt.day
    assert (days.iloc[0], days.iloc[-1]) == (1, 20)
    assert (incidents[schema.OCCURRED_AT].dt.month == 1).all()
