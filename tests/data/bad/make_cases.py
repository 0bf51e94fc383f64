"""Write the bad-input corpus of ``cases.toml`` from real rows of the bundled Chicago sample.

Run once (``python tests/data/bad/make_cases.py``); the files are committed. Each case plants
one fault of issue 12 or docs/data.md in a small file.
"""

from __future__ import annotations

import gzip
import io
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj
from shapely.geometry import Polygon

HERE = Path(__file__).resolve().parent
SAMPLES = HERE.parents[2] / "geodata" / "samples" / "chicago"
MINNEAPOLIS = HERE.parents[2] / "geodata" / "samples" / "minneapolis"


def rows(n: int, seed: int = 0) -> pd.DataFrame:
    raw = pd.read_csv(SAMPLES / "incidents_2018-01_dense.csv.gz", dtype=str, keep_default_na=False)
    located = raw[(raw["Latitude"] != "") & (raw["Beat"] != "")]
    keep = ["ID", "Case Number", "Date", "Block", "Primary Type", "Description", "Beat"]
    keep += ["Domestic", "X Coordinate", "Y Coordinate", "Latitude", "Longitude"]
    return located.sample(n, random_state=seed)[keep].reset_index(drop=True)


def write(frame: pd.DataFrame, name: str) -> None:
    frame.to_csv(HERE / name, index=False)


def main() -> None:
    base = rows(40)
    write(base, "ok_chicago.csv")

    typo = base.head(31).copy()
    typo["Date"] = "02/12/2025 10:00"
    typo.loc[30, "Date"] = "13/02/2025 10:00"
    write(typo, "us_dates_day_first_typo.csv")

    mixed = base.head(20).copy()
    mixed["Date"] = [f"02/{d}/2025 10:00" for d in range(13, 23)] + [
        f"{d}/02/2025 10:00" for d in range(13, 23)
    ]
    write(mixed, "mixed_day_month.csv")

    ambiguous = base.head(20).copy()
    ambiguous["Date"] = [f"0{1 + i % 9}/0{1 + i % 7}/2025 10:00" for i in range(20)]
    write(ambiguous, "ambiguous_dates.csv")

    two = base.head(20).copy()
    two.loc[:9, "Date"] = [f"2025-02-{d:02d} 10:15" for d in range(1, 11)]
    two.loc[10:, "Date"] = [f"02/0{d}/2025 10:15:00 PM" for d in range(1, 11) if d < 10] + [
        "02/10/2025 10:15:00 PM"
    ]
    write(two, "two_date_formats.csv")
    (HERE / "two_date_formats.toml").write_text(
        '[options]\ndate_format = ["%Y-%m-%d %H:%M", "%m/%d/%Y %I:%M:%S %p"]\n'
    )

    dashes = base.head(10).copy()
    dashes["Date"] = [f"02-{d}-2025 1{d % 10}:05" for d in range(13, 23)]
    write(dashes, "mm-dd-yyyy.csv")

    years = base.head(8).copy()
    years["Date"] = [
        "2091-05-01 10:00",
        "2099-05-01 10:00",
        "1850-05-01 10:00",
        "1899-12-30 00:00",
        "2018-05-01 10:00",
        "2018-05-02 10:00",
        "2018-05-03 10:00",
        "1989-12-31 23:59",
    ]
    write(years, "implausible_years.csv")

    swapped = base.head(20).copy()
    swapped[["Latitude", "Longitude"]] = swapped[["Longitude", "Latitude"]].to_numpy()
    write(swapped.drop(columns=["X Coordinate", "Y Coordinate"]), "swapped_latlon.csv")

    write(base.head(20).drop(columns=["Latitude", "Longitude"]), "state_plane_xy.csv")

    serial = base.head(20).copy()
    serial["Date"] = [f"{43101 + i}.{i:02d}" for i in range(20)]
    write(serial, "excel_serial_dates.csv")

    epoch = base.head(20).copy()
    local = pd.to_datetime(epoch["Date"], format="%m/%d/%Y %I:%M:%S %p")
    instants = local.dt.tz_localize("America/Chicago").dt.tz_convert("UTC")
    epoch["Date"] = (instants.astype("int64") // 10**9).astype(str)
    write(epoch, "epoch_seconds.csv")

    short = base.head(20).copy()
    short["Date"] = local.dt.strftime("%m/%d/%y %H:%M")
    write(short, "two_digit_years.csv")

    projected = base.head(20).copy()  # state plane feet in the latitude/longitude columns
    projected["Longitude"], projected["Latitude"] = (
        projected["X Coordinate"],
        projected["Y Coordinate"],
    )
    write(projected.drop(columns=["X Coordinate", "Y Coordinate"]), "xy_in_latlon_columns.csv")

    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(rows(600, seed=1).to_csv(index=False).encode())
    data = buffer.getvalue()
    (HERE / "truncated.csv.gz").write_bytes(data[: len(data) // 2])

    text = base.head(12).to_csv(index=False).splitlines()
    text[3] = text[3] + ",EXTRA,FIELDS"  # line 4: too many fields
    text[7] = text[7] + ",ONE MORE"  # line 8
    (HERE / "ragged_rows.csv").write_text("\n".join(text) + "\n")

    multi = base.head(12).copy()
    multi.loc[2, "Description"] = "FROM BUILDING\nSECOND LINE OF THE NOTE"  # record 4, lines 4-5
    multi.loc[6, ["Latitude", "Longitude", "X Coordinate", "Y Coordinate"]] = ""  # line 9
    write(multi, "multiline_quoted.csv")

    (HERE / "header_only.csv").write_text(",".join(base.columns) + "\n")
    (HERE / "empty.csv").write_text("")
    (HERE / "binary.csv").write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    (HERE / "not_utf8.csv").write_bytes(
        base.head(3).assign(Block="CAF\xc9 ST").to_csv(index=False).encode("latin-1")
    )
    write(base.head(5).drop(columns=["Date", "Primary Type"]), "missing_columns.csv")
    (HERE / "spreadsheet.xlsx").write_bytes(b"PK\x03\x04")

    bad = base.head(14).copy()
    bad.loc[0, ["Latitude", "Longitude"]] = ""  # line 2: missing coordinates
    bad.loc[1, "Latitude"] = "forty-one"  # line 3: unparseable
    bad.loc[2, ["Latitude", "Longitude"]] = ["48.8566", "2.3522"]  # line 4: Paris
    bad.loc[3, "Date"] = "31/31/2018 10:00"  # line 5: not a date
    bad.loc[4, "Date"] = ""  # line 6: missing date
    bad.loc[6, "ID"] = bad.loc[5, "ID"]  # line 8 repeats line 7's id
    bad.loc[8, "ID"] = ""  # line 10: missing id
    bad.loc[9, "Primary Type"] = ""  # line 11: missing offense
    bad.loc[10, ["Latitude", "Longitude"]] = ["0", "0"]  # line 12: null island
    write(bad.drop(columns=["X Coordinate", "Y Coordinate"]), "bad_rows.csv")

    formulas = base.head(6).copy()
    formulas.loc[0, "Block"] = '=HYPERLINK("http://example.invalid","click")'
    formulas.loc[1, "Latitude"] = "=1+1"  # rejected: the value lands in the rejections CSV
    formulas.loc[2, "Longitude"] = "@SUM(A1:A9)"
    formulas.loc[3, "Date"] = "+cmd|' /C calc'!A0"
    formulas.loc[4, "Beat"] = "-0111"  # a reported beat that disagrees: disagreements CSV
    write(formulas.drop(columns=["X Coordinate", "Y Coordinate"]), "formula_values.csv")

    beats = gpd.read_file(SAMPLES / "beats.geojson")
    small = beats[beats["DISTRICT"].astype(str) == "1"].copy()
    small["geometry"] = small.geometry.simplify(0.0001)
    small.to_file(HERE / "beats_district_1.geojson")
    bowtie = small.copy()
    x0, y0, x1, y1 = bowtie.geometry.iloc[0].bounds
    geoms = list(bowtie.geometry)
    geoms[0] = Polygon([(x0, y0), (x1, y1), (x1, y0), (x0, y1), (x0, y0)])
    bowtie["geometry"] = geoms
    bowtie.to_file(HERE / "beats_self_intersecting.geojson")
    null = small.copy()
    null.loc[null.index[1], "geometry"] = None
    null.to_file(HERE / "beats_null_geometry.geojson")
    points = small.copy()
    points["geometry"] = points.geometry.representative_point()
    points.to_file(HERE / "beats_points.geojson")
    small.iloc[:0].to_file(HERE / "beats_empty.geojson")
    _ = (np, pyproj)


def calls(n: int, seed: int = 0) -> pd.DataFrame:
    """Return `n` real Minneapolis CAD calls with all four times, a location and a sector."""
    raw = pd.read_csv(
        MINNEAPOLIS / "mpd_cad_2020-06-21_to_2020-07-13.csv.gz", dtype=str, keep_default_na=False
    )
    times = ["Response_Date", "Time_First_Unit_Assigned", "Time_First_Unit_Arrived"]
    times.append("Time_CallClosed")
    parsed = raw[times].apply(pd.to_datetime, errors="coerce")
    ordered = (parsed.diff(axis=1).iloc[:, 1:] >= pd.Timedelta(0)).all(axis=1)
    short = (parsed["Time_CallClosed"] - parsed["Response_Date"]) < pd.Timedelta(hours=6)
    located = raw["Longitude"].str.match(r"^-\d") & (raw["Battalion"] != "")
    keep = ["Master_Incident_Number", "Response_Date", "Battalion", "Problem", "Priority_Number"]
    keep += ["Response_Plan", "Time_CallClosed", "Time_First_Unit_Assigned"]
    keep += ["Time_First_Unit_Arrived", "Call_Disposition", "Longitude", "Latitude"]
    good = raw[ordered & short & located]
    return (
        good.sample(n, random_state=seed)[keep].sort_values("Response_Date").reset_index(drop=True)
    )


def calls_cases() -> None:
    """Write the calls-for-service cases (issue 16) from real rows of the Minneapolis sample."""
    base = calls(30)
    write(base, "calls_ok.csv")

    bad = base.head(16).copy()
    bad.loc[0, "Time_CallClosed"] = "2020-01-01 00:00:00"  # line 2: closed before dispatched
    bad.loc[0, "Time_First_Unit_Arrived"] = ""
    bad.loc[1, "Response_Date"] = ""  # line 3: no received time
    arrived = pd.Timestamp(bad.loc[2, "Time_First_Unit_Arrived"])
    bad.loc[2, "Time_CallClosed"] = f"{arrived - pd.Timedelta(minutes=10):%Y-%m-%d %H:%M:%S}"
    # line 4: closed 10 minutes before the arrival (a negative time on task)
    bad.loc[3, "Time_CallClosed"] = "2020-09-30 12:00:00"  # line 5: absurd, months later
    bad.loc[4, "Response_Date"] = "21/06/2020 10:00"  # line 6: not the mapping's format
    bad.loc[5, "Response_Date"] = "2091-06-21 10:00:00"  # line 7: implausible
    bad.loc[6, "Master_Incident_Number"] = ""  # line 8: no call id
    bad.loc[8, "Master_Incident_Number"] = bad.loc[7, "Master_Incident_Number"]  # line 10
    bad.loc[9, "Latitude"] = "forty-four"  # line 11
    bad.loc[10, "Latitude"] = "144.98"  # line 12: out of range
    bad.loc[11, ["Longitude", "Latitude"]] = "REDACTED"  # line 13: kept with its sector
    bad.loc[12, ["Longitude", "Latitude", "Battalion"]] = ""  # line 14: kept, outside
    bad.loc[13, "Time_First_Unit_Arrived"] = "2020-01-01 00:00:00"  # line 15: before dispatch
    write(bad, "calls_bad_rows.csv")

    text = base.head(12).to_csv(index=False).splitlines()
    text[3] = text[3] + ",EXTRA,FIELDS"  # line 4: too many fields
    text[7] = text[7] + ",ONE MORE"  # line 8
    (HERE / "calls_ragged_rows.csv").write_text("\n".join(text) + "\n")

    buffer = io.BytesIO()
    with gzip.GzipFile(fileobj=buffer, mode="wb", mtime=0) as handle:
        handle.write(calls(600, seed=1).to_csv(index=False).encode())
    data = buffer.getvalue()
    (HERE / "calls_truncated.csv.gz").write_bytes(data[: len(data) // 2])

    ambiguous = base.head(20).copy()
    for column in ["Response_Date", "Time_First_Unit_Assigned", "Time_First_Unit_Arrived"]:
        ambiguous[column] = [f"0{1 + i % 9}/0{1 + i % 7}/2020 10:{10 + i}" for i in range(20)]
    ambiguous["Time_CallClosed"] = [
        f"0{1 + i % 9}/0{1 + i % 7}/2020 11:{10 + i}" for i in range(20)
    ]
    write(ambiguous, "calls_ambiguous_dates.csv")
    mapping = (MINNEAPOLIS / "calls_mapping.toml").read_text(encoding="utf-8")
    columns = mapping.split("[options]")[0]
    (HERE / "calls_mapping_no_format.toml").write_text(
        "# The bundled Minneapolis calls mapping without its date format (make_cases.py).\n"
        + columns.rstrip()
        + "\n",
        encoding="utf-8",
    )

    (HERE / "calls_header_only.csv").write_text(",".join(base.columns) + "\n")
    write(base.head(5).drop(columns=["Response_Date"]), "calls_missing_columns.csv")


if __name__ == "__main__":
    import sys

    if sys.argv[1:] == ["calls"]:
        calls_cases()
    else:
        main()
        calls_cases()
