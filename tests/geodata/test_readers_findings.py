"""The acceptance tester's findings on the incident reader, each on a small file of real rows.

Every file is built in ``tmp_path`` from rows of the bundled Chicago sample, with one fault
planted at a known line; the assertions compare with what was planted (the lines, the raw
hours), never with what the reader itself says.
"""

from __future__ import annotations

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from geodata import schema
from geodata.errors import InputError
from geodata.readers import (
    REASONS,
    ColumnMapping,
    iter_records,
    load_mapping,
    read_incidents,
)
from tests.geodata.test_readers import CHICAGO, DENSE


@pytest.fixture(scope="module")
def plain_rows(samples_dir) -> pd.DataFrame:
    """Located rows of the dense month whose fields hold no comma and no quote (no quoting)."""
    raw = pd.read_csv(samples_dir / DENSE, dtype=str, keep_default_na=False)
    raw = raw.drop(columns=["Location"])
    plain = ~raw.apply(lambda c: c.str.contains('[,"]', regex=True)).any(axis=1)
    rows = raw[plain & (raw["Latitude"] != "")].drop_duplicates("ID")
    return rows.reset_index(drop=True)


def _lines(rows: pd.DataFrame, sep: str = ",") -> list[str]:
    """Return the header and record lines of `rows` (no field needs quoting)."""
    return [sep.join(rows.columns), *(sep.join(r) for r in rows.to_numpy().tolist())]


def _with_field(line: str, rows: pd.DataFrame, column: str, value: str) -> str:
    """Return the record `line` of `rows` with the field `column` replaced by `value` (raw)."""
    fields = line.split(",")
    fields[list(rows.columns).index(column)] = value
    return ",".join(fields)


# --- 1. an unclosed quote ----------------------------------------------------------------------


def _unclosed_file(rows: pd.DataFrame, path, *, ragged_line: int | None = None):
    """Write 100 records; line 12 opens a quote ``"STOLEN 12 INCH TV``, line 22 holds ``12" TV``."""
    rows = rows.head(100)
    lines = _lines(rows)
    lines[11] = _with_field(lines[11], rows, "Description", '"STOLEN 12 INCH TV')
    lines[21] = _with_field(lines[21], rows, "Description", '12" TV')
    if ragged_line is not None:
        lines[ragged_line - 1] += ",EXTRA"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return rows


@pytest.mark.parametrize("ragged", [False, True], ids=["fast reader", "exact reader"])
def test_an_unclosed_quote_rejects_every_line_it_swallowed(plain_rows, tmp_path, ragged):
    path = tmp_path / "unclosed.csv"
    # a ragged record elsewhere (line 40) makes the reader take its exact, Python path
    rows = _unclosed_file(plain_rows, path, ragged_line=40 if ragged else None)
    result = read_incidents(path, mapping=CHICAGO)
    planted = list(range(12, 23))
    expected_rejected = planted + ([40] if ragged else [])
    assert result.rows_read == 100  # one row per line of the file again
    assert result.rows_rejected == len(expected_rejected)
    assert result.rows_accepted == 100 - len(expected_rejected)
    rejected = result.rejected.set_index("line")
    assert sorted(rejected.index) == expected_rejected
    assert set(rejected.loc[planted, "reason"]) == {REASONS["unclosed_quote"]}
    assert set(rejected.loc[planted, "column"]) == {"Description"}
    assert "closes only at line 22" in rejected.loc[12, "value"]
    assert rejected.loc[12, "value"].endswith(
        "STOLEN 12 INCH TV," + ",".join(rows.iloc[10, 7:].tolist())
    )
    # the swallowed lines are shown as they are in the file, so nothing is lost from sight
    assert rejected.loc[15, "value"].startswith("inside the quote opened at line 12: ")
    assert ",".join(rows.iloc[13].tolist())[:100] in rejected.loc[15, "value"]
    # every other record is stored as it is in the file, on its own line
    stored = result.incidents.set_index(schema.SOURCE_LINE)
    kept = [line for line in range(2, 102) if line not in expected_rejected]
    assert sorted(stored.index) == kept
    expected_ids = rows["ID"].to_numpy()[np.asarray(kept) - 2]
    assert stored.loc[kept, schema.INCIDENT_ID].tolist() == expected_ids.tolist()
    assert stored[schema.DESCRIPTION].str.len().max() < 100
    note = next(n for n in result.notes if "quote opened at line 12" in n)
    assert "closed only at line 22" in note
    assert "check for an unclosed quote" in note


def test_a_quote_that_closes_far_away_is_caught_too(plain_rows, tmp_path):
    rows = plain_rows.head(60)
    lines = _lines(rows)
    lines[4] = _with_field(lines[4], rows, "Description", '"BROKEN WINDOW')  # line 5
    lines[50] = _with_field(lines[50], rows, "Description", 'SIZE 12"')  # line 51
    path = tmp_path / "far.csv"
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    result = read_incidents(path, mapping=CHICAGO)
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (60, 13, 47)
    assert sorted(result.rejected["line"]) == list(range(5, 52))


def test_narratives_over_several_lines_are_kept_and_reconciled_in_a_note(plain_rows, tmp_path):
    rows = plain_rows.head(20).copy()
    narrative = "CALLER STATES THE DOOR WAS OPEN,\nNOTHING TAKEN.\nOFFICER CHECKED, ALL CLEAR"
    rows.loc[5, "Description"] = narrative  # record 6: file lines 7-9
    path = tmp_path / "narrative.csv"
    rows.to_csv(path, index=False)
    result = read_incidents(path, mapping=CHICAGO)
    assert (result.rows_read, result.rows_accepted, result.rows_rejected) == (20, 20, 0)
    stored = result.incidents.set_index(schema.INCIDENT_ID)
    assert stored.loc[rows.loc[5, "ID"], schema.DESCRIPTION] == narrative
    assert stored.loc[rows.loc[6, "ID"], schema.SOURCE_LINE] == 10  # after the 3 lines
    note = next(n for n in result.notes if "line breaks inside quoted fields" in n)
    assert note.startswith("1 records hold line breaks inside quoted fields, 2 line breaks")
    assert "from line 7 to line 9" in note


def test_a_file_without_quoted_line_breaks_has_no_line_notes(plain_rows, tmp_path):
    path = tmp_path / "plain.csv"
    plain_rows.head(30).to_csv(path, index=False)
    result = read_incidents(path, mapping=CHICAGO)
    assert result.rows_accepted == 30
    assert not [n for n in result.notes if "quote" in n or "line breaks" in n]


def test_iter_records_rejects_an_unclosed_quote_line_by_line(plain_rows, tmp_path):
    """The raw reading the calls ingest shares counts the swallowed lines too."""
    path = tmp_path / "records.csv"
    _unclosed_file(plain_rows, path)
    parts = list(iter_records(path))
    rejected = pd.concat([r for _, _, r in parts], ignore_index=True)
    assert sum(t.num_rows + len(r) for t, _, r in parts) == 100
    assert sorted(rejected["line"]) == list(range(12, 23))
    lines = sorted(int(n) for _, found, _ in parts for n in found)
    assert lines == [n for n in range(2, 102) if not 12 <= n <= 22]


# --- 2 and 3. the column mapping is reported; a separate time column is used ---------------


def _timed_rows(plain_rows: pd.DataFrame, n: int = 40) -> tuple[pd.DataFrame, pd.Series]:
    """Return `n` rows whose time is not midnight, and their raw local times (parsed apart)."""
    when = pd.to_datetime(plain_rows["Date"], format="%m/%d/%Y %I:%M:%S %p")
    timed = plain_rows[(when.dt.hour != 0) | (when.dt.minute != 0)]
    rows = timed.iloc[:: max(len(timed) // n, 1)].head(n).reset_index(drop=True)
    return rows, pd.to_datetime(rows["Date"], format="%m/%d/%Y %I:%M:%S %p")


@pytest.mark.parametrize(
    ("date", "time", "clock", "day"),
    [
        ("Date", "Time", "%H:%M", "%Y-%m-%d"),
        ("Date Occurred", "Time Occurred", "%H:%M", "%Y-%m-%d"),
        ("OccurredDate", "OccurredTime", "%H:%M:%S", "%Y-%m-%d"),
        ("Occurred Date", "Occurred Time", "%I:%M %p", "%m/%d/%Y"),
        ("Date", "Time", "%H%M", "%Y-%m-%d"),  # CAD's 2130
    ],
)
def test_a_separate_time_column_gives_the_hours(plain_rows, tmp_path, date, time, clock, day):
    rows, when = _timed_rows(plain_rows)
    frame = pd.DataFrame(
        {
            "Incident ID": rows["ID"],
            date: when.dt.strftime(day),
            time: when.dt.strftime(clock),
            "Crime": rows["Primary Type"],
            "Beat": rows["Beat"],
            "Latitude": rows["Latitude"],
            "Longitude": rows["Longitude"],
        }
    )
    path = tmp_path / "timed.csv"
    frame.to_csv(path, index=False)
    result = read_incidents(path)
    assert result.rows_accepted == len(rows) == 40
    stored = result.incidents.set_index(schema.INCIDENT_ID).loc[rows["ID"]]
    local = stored[schema.OCCURRED_AT].dt.tz_localize(None)
    assert (local.dt.hour.to_numpy() == when.dt.hour.to_numpy()).all()
    assert (local.dt.minute.to_numpy() == when.dt.minute.to_numpy()).all()
    assert (local.dt.date.to_numpy() == when.dt.date.to_numpy()).all()
    assert (local.dt.hour != 0).any()
    note = next(n for n in result.notes if n.startswith("columns detected: "))
    assert f"occurred_at <- {date!r}" in note
    assert f"occurred_time <- {time!r}" in note
    assert "incident_id <- 'Incident ID'" in note
    assert "offense <- 'Crime'" in note
    assert "lat <- 'Latitude', lon <- 'Longitude'" in note
    assert not [n for n in result.notes if n.startswith("warning")]
    if clock == "%H%M":
        assert any("without a colon" in n for n in result.notes)


def test_a_date_column_with_midnight_times_takes_the_time_columns_hours(plain_rows, tmp_path):
    rows, when = _timed_rows(plain_rows)
    frame = rows[["ID", "Primary Type", "Latitude", "Longitude"]].assign(
        Date=when.dt.strftime("%m/%d/%Y 12:00:00 AM"), Time=when.dt.strftime("%H:%M")
    )
    path = tmp_path / "midnight.csv"
    frame.to_csv(path, index=False)
    result = read_incidents(path, mapping=ColumnMapping(timezone="America/Chicago"))
    stored = result.incidents.set_index(schema.INCIDENT_ID).loc[rows["ID"]]
    local = stored[schema.OCCURRED_AT].dt.tz_localize(None)
    assert (local.to_numpy() == when.dt.floor("min").to_numpy()).all()


def test_a_time_column_is_not_added_to_dates_that_hold_times(plain_rows, tmp_path):
    rows, when = _timed_rows(plain_rows)
    frame = rows[["ID", "Date", "Primary Type", "Latitude", "Longitude"]].assign(
        Time=when.dt.strftime("%H:%M")
    )
    path = tmp_path / "both.csv"
    frame.to_csv(path, index=False)
    result = read_incidents(path, mapping=CHICAGO)
    assert result.rows_accepted == 40
    assert result.mapping.occurred_time is None
    local = result.incidents.set_index(schema.INCIDENT_ID).loc[rows["ID"], schema.OCCURRED_AT]
    assert (local.dt.tz_localize(None).to_numpy() == when.to_numpy()).all()
    assert any("'Time' not combined with 'Date'" in n for n in result.notes)


def test_one_column_for_both_ids_and_an_unused_time_column_are_warned(plain_rows, tmp_path):
    rows = plain_rows.head(10)
    frame = pd.DataFrame(
        {
            "Report Number": rows["Case Number"],
            "Date": rows["Date"],
            "Time Reported": "10:00",
            "Primary Type": rows["Primary Type"],
            "Latitude": rows["Latitude"],
            "Longitude": rows["Longitude"],
        }
    )
    path = tmp_path / "warned.csv"
    frame.to_csv(path, index=False)
    result = read_incidents(path, mapping=CHICAGO)
    note = next(n for n in result.notes if n.startswith("columns detected: "))
    assert "incident_id <- 'Report Number', case_number <- 'Report Number'" in note
    assert "occurred_at <- 'Date'" in note
    warnings = [n for n in result.notes if n.startswith("warning")]
    assert len(warnings) == 2
    assert "'Report Number' is both the incident id and the case number" in warnings[0]
    assert "'Time Reported' looks like a time of day but is not used" in warnings[1]
    # the dates note stays first: the cluster ingest compares it apart
    assert result.notes[0].startswith("dates read as")


def test_roles_given_in_a_mapping_are_not_listed_as_detected(plain_rows, tmp_path):
    path = tmp_path / "mapped.csv"
    plain_rows.head(5).to_csv(path, index=False)
    result = read_incidents(path, mapping=replace_offense(CHICAGO))
    note = next(n for n in result.notes if n.startswith("columns detected: "))
    assert "offense" not in note.replace("incident_id", "")
    assert "incident_id <- 'ID', case_number <- 'Case Number'" in note


def replace_offense(mapping: ColumnMapping) -> ColumnMapping:
    from dataclasses import replace

    return replace(mapping, offense="Primary Type")


# --- 4. header names with spaces around them ---------------------------------------------------


def test_header_names_are_trimmed_and_match_a_mapping(plain_rows, tmp_path):
    rows = plain_rows.head(12).copy()
    rows.loc[4, "Latitude"] = "forty-one"  # line 6
    frame = rows[["ID", "Date", "Primary Type", "Latitude", "Longitude"]]
    frame.columns = ["ID", " Date Occurred ", "Primary Type ", " Latitude", "Longitude"]
    path = tmp_path / "spaced.csv"
    frame.to_csv(path, index=False)
    toml = tmp_path / "map.toml"
    toml.write_text(
        '[columns]\noccurred_at = "Date Occurred"\noffense = " Primary Type "\n'
        '[options]\ndate_format = "%m/%d/%Y %I:%M:%S %p"\n'
    )
    result = read_incidents(path, mapping=load_mapping(toml))
    assert (result.rows_read, result.rows_accepted) == (12, 11)
    assert result.rejected[["line", "column", "value"]].to_dict("records") == [
        {"line": 6, "column": "Latitude", "value": "forty-one"}
    ]
    assert result.mapping.occurred_at == "Date Occurred"
    note = next(n for n in result.notes if n.startswith("header names read without"))
    assert "' Date Occurred ' -> 'Date Occurred'" in note


# --- 5. a semicolon-, tab- or pipe-separated .csv ----------------------------------------------


@pytest.mark.parametrize(("sep", "shown"), [(";", "';'"), ("\t", "tab"), ("|", "'|'")])
def test_the_delimiter_is_found_from_the_header_and_reported(plain_rows, tmp_path, sep, shown):
    rows = plain_rows.head(15).copy()
    rows.loc[2, "Description"] = "OVER $500, FROM A CAR"  # a comma inside a field
    rows.loc[6, "Date"] = ""  # line 8
    path = tmp_path / "europe.csv"
    rows.to_csv(path, index=False, sep=sep)
    result = read_incidents(path, mapping=CHICAGO)
    assert (result.rows_read, result.rows_accepted) == (15, 14)
    assert result.rejected[["line", "column"]].to_dict("records") == [{"line": 8, "column": "Date"}]
    stored = result.incidents.set_index(schema.INCIDENT_ID)
    assert stored.loc[rows.loc[2, "ID"], schema.DESCRIPTION] == "OVER $500, FROM A CAR"
    assert any(n.startswith(f"fields separated by {shown}, not commas") for n in result.notes)


def test_a_comma_file_gets_no_delimiter_note(plain_rows, tmp_path):
    path = tmp_path / "commas.csv"
    plain_rows.head(5).to_csv(path, index=False)
    result = read_incidents(path, mapping=CHICAGO)
    assert not [n for n in result.notes if "separated" in n]


# --- 6. a Windows-1252 file --------------------------------------------------------------------


@pytest.mark.parametrize("bad_line", [5, 300], ids=["in the first 8 KiB", "further on"])
def test_a_windows_1252_file_names_the_line_column_and_the_fix(plain_rows, tmp_path, bad_line):
    rows = plain_rows.head(320).copy()
    rows.loc[bad_line - 2, "Block"] = "CAF\u00c9 \u2122 ST"  # É and ™ in Windows-1252
    path = tmp_path / "excel.csv"
    path.write_bytes("\n".join(_lines(rows)).encode("cp1252") + b"\n")
    assert path.stat().st_size > 8192
    with pytest.raises(InputError) as caught:
        read_incidents(path, mapping=CHICAGO)
    message = str(caught.value)
    assert f"line {bad_line}, column 'Block': this is not a UTF-8 text CSV file" in message
    assert "byte 0xC9" in message
    assert "'\u00c9'" in message
    assert 'save the file as "CSV UTF-8' in message
    assert caught.value.line == bad_line


# --- 7. coordinates out of range ---------------------------------------------------------------


def test_coordinates_out_of_range_are_not_called_unparseable(plain_rows, tmp_path):
    rows = plain_rows.head(10).copy()
    rows.loc[2, ["Latitude", "Longitude"]] = ["-122.3321", "47.6062"]  # line 4: swapped (Seattle)
    rows.loc[5, "Longitude"] = "-876.2"  # line 7: a lost decimal point
    rows.loc[7, "Latitude"] = "forty-one"  # line 9: not a number
    path = tmp_path / "range.csv"
    rows.to_csv(path, index=False)
    result = read_incidents(path, mapping=CHICAGO)
    rejected = result.rejected.set_index("line")
    assert sorted(rejected.index) == [4, 7, 9]
    assert rejected.loc[4, "reason"] == REASONS["out_of_range"] == "longitude/latitude out of range"
    assert (rejected.loc[4, "column"], rejected.loc[4, "value"]) == ("Latitude", "-122.3321")
    assert rejected.loc[7, "reason"] == REASONS["out_of_range"]
    assert (rejected.loc[7, "column"], rejected.loc[7, "value"]) == ("Longitude", "-876.2")
    assert rejected.loc[9, "reason"] == REASONS["bad_coordinates"]


# --- 8. point layers: the geometry is called geometry ------------------------------------------


@pytest.mark.parametrize("suffix", [".geojson", ".gpkg", ".geo.parquet"])
def test_point_layer_rejections_name_the_geometry(plain_rows, tmp_path, suffix):
    rows = plain_rows.iloc[::50].head(12).reset_index(drop=True)
    points = gpd.GeoDataFrame(
        rows.drop(columns=["Latitude", "Longitude", "X Coordinate", "Y Coordinate"]),
        geometry=gpd.points_from_xy(
            rows["Longitude"].astype(float), rows["Latitude"].astype(float)
        ),
        crs="EPSG:4326",
    )
    points.loc[3, "geometry"] = None  # record 4: no point
    points.loc[6, "geometry"] = gpd.points_from_xy([200.0], [41.88])[0]  # record 7
    path = tmp_path / f"points{suffix}"
    if suffix == ".geo.parquet":
        points.to_parquet(path)
    else:
        points.to_file(path)
    result = read_incidents(path, mapping=CHICAGO)
    rejected = result.rejected.set_index("line")
    assert sorted(rejected.index) == [4, 7]
    assert set(rejected["column"]) == {"geometry"}
    assert rejected.loc[4, "reason"] == REASONS["missing_coordinates"]
    assert rejected.loc[7, "reason"] == REASONS["out_of_range"]
    note = next(n for n in result.notes if n.startswith("columns detected: "))
    assert "x <- geometry, y <- geometry" in note
    assert "__geometry" not in " ".join(result.notes)


def test_a_point_layer_point_outside_the_jurisdiction_is_named_geometry(
    plain_rows, writable_store, tmp_path
):
    from geodata.ingest import ingest_file

    rows = plain_rows.iloc[::50].head(6).reset_index(drop=True)
    points = gpd.GeoDataFrame(
        rows.drop(columns=["Latitude", "Longitude", "X Coordinate", "Y Coordinate"]),
        geometry=gpd.points_from_xy(
            rows["Longitude"].astype(float), rows["Latitude"].astype(float)
        ),
        crs="EPSG:4326",
    )
    points.loc[2, "geometry"] = gpd.points_from_xy([-87.0], [41.0])[0]  # Indiana, ~90 km off
    path = tmp_path / "points.geojson"
    points.to_file(path)
    report = ingest_file(path, writable_store, mapping=CHICAGO)
    rejected = pd.read_csv(report.rejections_csv, dtype=str)
    assert (report.rows_read, report.rows_accepted) == (6, 5)
    assert rejected["reason"].tolist() == [REASONS["outside_jurisdiction"]]
    assert rejected["column"].tolist() == ["geometry"]
    assert rejected["line"].tolist() == ["3"]


def test_coordinates_with_a_decimal_comma_are_read_and_reported(plain_rows, tmp_path):
    rows = plain_rows.head(20).drop(columns=["X Coordinate", "Y Coordinate"]).copy()
    want_lat = rows["Latitude"].astype(float).to_numpy()
    want_lon = rows["Longitude"].astype(float).to_numpy()
    rows["Latitude"] = rows["Latitude"].str.replace(".", ",", regex=False)
    rows["Longitude"] = rows["Longitude"].str.replace(".", ",", regex=False)
    rows.loc[rows.index[3], "Latitude"] = "41,8,8"  # not a number either way
    path = tmp_path / "european.csv"
    rows.to_csv(path, index=False, sep=";")
    result = read_incidents(path, mapping=CHICAGO)
    assert (result.rows_read, len(result.incidents)) == (20, 19)
    assert result.rejected["reason"].tolist() == [REASONS["bad_coordinates"]]
    got = result.incidents.set_index(schema.SOURCE_LINE)
    keep = np.arange(20) != 3
    lines = np.arange(2, 22)[keep]
    assert np.allclose(got.loc[lines, schema.LAT], want_lat[keep], atol=1e-9)
    assert np.allclose(got.loc[lines, schema.LON], want_lon[keep], atol=1e-9)
    notes = " ".join(result.notes)
    assert "column 'Latitude' writes numbers with a decimal comma, read as decimals" in notes
    assert "column 'Longitude' writes numbers with a decimal comma" in notes
