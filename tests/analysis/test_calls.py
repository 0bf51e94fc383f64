"""Calls for service: interval rules by hand, and measures against the raw Minneapolis export."""

from __future__ import annotations

from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from analysis.calls import officer_hours, response_summary, review_days, review_window
from analysis.inputs import resolve_workload
from geodata.calls import (
    ARRIVED_AT,
    CLOSED_AT,
    DISPATCHED_AT,
    RECEIVED_AT,
    RESPONSE_MIN,
    TIME_ON_TASK_MIN,
    UNITS,
    derive_intervals,
    units_from_plan,
)

MPLS = Path(__file__).resolve().parents[2] / "geodata" / "samples" / "minneapolis"
RAW = MPLS / "mpd_cad_2020-06-21_to_2020-07-13.csv.gz"
ZONE = "America/Chicago"  # Minneapolis's own zone (the department's, not a default)


def _t(text: str | None) -> pd.Timestamp:
    return pd.Timestamp(text, tz=ZONE) if text else pd.NaT


def _calls(rows: list[tuple]) -> pd.DataFrame:
    frame = pd.DataFrame(rows, columns=["beat", RECEIVED_AT, DISPATCHED_AT, ARRIVED_AT, CLOSED_AT])
    for column in (RECEIVED_AT, DISPATCHED_AT, ARRIVED_AT, CLOSED_AT):
        frame[column] = pd.to_datetime(frame[column].map(_t))
    return frame


def test_interval_rules_by_hand():
    calls = _calls(
        [
            ("A", "2020-06-21 10:00", "2020-06-21 10:02", "2020-06-21 10:10", "2020-06-21 10:40"),
            ("A", "2020-06-21 11:00", "2020-06-21 11:05", None, "2020-06-21 11:35"),  # no arrival
            ("B", "2020-06-21 12:00", "2020-06-21 12:30", "2020-06-21 12:20", "2020-06-21 13:00"),
            ("B", None, "2020-06-21 12:30", "2020-06-21 12:40", "2020-06-21 13:00"),
            ("B", "2020-06-21 12:00", "2020-06-21 12:05", "2020-06-21 12:10", "2020-06-23 12:10"),
            ("C", "2020-06-21 12:00", "2020-06-21 12:05", None, "2020-06-21 12:01"),
        ]
    )
    accepted, rejected = derive_intervals(calls)
    assert len(accepted) + len(rejected) == len(calls)
    assert accepted.index.tolist() == [0, 1]
    # received -> arrived; arrived (else dispatched) -> closed, in minutes
    assert accepted[RESPONSE_MIN].iloc[0] == 10.0
    assert np.isnan(accepted[RESPONSE_MIN].iloc[1])
    assert accepted[TIME_ON_TASK_MIN].tolist() == [30.0, 30.0]
    reasons = dict(zip(rejected["row"], rejected["reason"], strict=True))
    assert reasons == {
        2: "arrived before dispatched",
        3: "no received time",
        4: "arrived to closed longer than 24 h",
        5: "closed before dispatched",
    }
    assert rejected.set_index("row").loc[5, "column"] == CLOSED_AT


def test_units_from_plan():
    plans = pd.Series(
        ["P4 2 Officer Response", "P1 1 Officer Response", "2 Officer + Sergeant", "Other", None]
    )
    assert units_from_plan(plans).tolist() == [2, 1, 3, pd.NA, pd.NA]


def test_officer_hours_by_hand():
    calls = pd.DataFrame(
        {
            "beat": ["A", "A", "B", "B"],
            TIME_ON_TASK_MIN: [30.0, 90.0, 60.0, np.nan],
            UNITS: pd.array([2, pd.NA, 1, 2], dtype="Int64"),
        }
    )
    out = officer_hours(calls, ["beat"], allowance=0.5).set_index("beat")
    # A: 30 min x 2 officers + 90 min x 1 (default) = 150 min = 2.5 h; B: 1 h, one call untimed
    assert out.loc["A", "committed_hours"] == pytest.approx(2.5)
    assert out.loc["B", "committed_hours"] == pytest.approx(1.0)
    assert out.loc["B", "calls_without_time"] == 1
    assert out.loc["A", "officer_hours"] == pytest.approx(3.75)
    with pytest.raises(ValueError, match="cannot be negative"):
        officer_hours(calls, ["beat"], allowance=-0.1)


@pytest.fixture(scope="module")
def mpls_calls() -> tuple[pd.DataFrame, pd.DataFrame]:
    raw = pd.read_csv(RAW, dtype=str, keep_default_na=False)
    frame = pd.DataFrame(
        {
            "sector": raw["Battalion"].replace("", pd.NA),
            RECEIVED_AT: raw["Response_Date"],
            DISPATCHED_AT: raw["Time_First_Unit_Assigned"],
            ARRIVED_AT: raw["Time_First_Unit_Arrived"],
            CLOSED_AT: raw["Time_CallClosed"],
            UNITS: units_from_plan(raw["Response_Plan"]),
        }
    )
    for column in (RECEIVED_AT, DISPATCHED_AT, ARRIVED_AT, CLOSED_AT):
        frame[column] = pd.to_datetime(frame[column].replace("", pd.NA)).dt.tz_localize(ZONE)
    return raw, frame


def test_minneapolis_reconciles_and_matches_source(mpls_calls):
    raw, frame = mpls_calls
    accepted, rejected = derive_intervals(frame)
    assert len(raw) == 14_199
    assert len(accepted) + len(rejected) == len(raw)
    # SOURCE.md: dispatch -> arrival median 5.1 min, arrival -> close median 14.1 min
    dispatch_to_arrival = (accepted[ARRIVED_AT] - accepted[DISPATCHED_AT]).dt.total_seconds() / 60
    assert dispatch_to_arrival.median() == pytest.approx(5.1, abs=0.05)
    arrived = accepted[accepted[ARRIVED_AT].notna()]
    assert arrived[TIME_ON_TASK_MIN].median() == pytest.approx(14.1, abs=0.1)


def test_response_by_sector_against_independent_numpy(mpls_calls):
    raw, frame = mpls_calls
    accepted, _ = derive_intervals(frame)
    summary = response_summary(accepted, ["sector"], target_min=10).set_index("sector")
    # independent: straight from the raw strings, with numpy
    received = pd.to_datetime(raw["Response_Date"])
    arrived = pd.to_datetime(raw["Time_First_Unit_Arrived"].replace("", None))
    keep = raw.index.isin(accepted.index)
    for sector in ["P4 Sec 2N", "P3 Sec 1", "P5 Sec 3"]:
        rows = keep & (raw["Battalion"] == sector).to_numpy()
        minutes = ((arrived[rows] - received[rows]).dt.total_seconds() / 60).dropna().to_numpy()
        assert summary.loc[sector, "calls"] == rows.sum()
        assert summary.loc[sector, "responded"] == len(minutes)
        assert summary.loc[sector, "response_median_min"] == pytest.approx(np.median(minutes))
        assert summary.loc[sector, "response_p90_min"] == pytest.approx(np.percentile(minutes, 90))
        assert summary.loc[sector, "share_within_target"] == pytest.approx(np.mean(minutes <= 10))


def test_officer_hours_by_hour_sums_to_total(mpls_calls):
    _, frame = mpls_calls
    accepted, _ = derive_intervals(frame)
    by_hour = officer_hours(accepted, ["hour"])
    total = officer_hours(accepted.assign(all="all"), ["all"])
    assert len(by_hour) == 24
    assert by_hour["officer_hours"].sum() == pytest.approx(total["officer_hours"].iloc[0])
    units = accepted[UNITS].astype("Float64").fillna(1).astype(float)
    expected = np.nansum(accepted[TIME_ON_TASK_MIN].to_numpy() * units.to_numpy()) / 60
    assert total["officer_hours"].iloc[0] == pytest.approx(expected)


def test_areas_from_calls_by_hand():
    import geopandas as gpd
    from shapely.geometry import box

    from analysis.calls import areas_from_calls

    # one 1 km x 600 m precinct; calls in the west half say "W", in the east half "E";
    # one mislabelled call in the east; the middle column of units gets no call
    parents = gpd.GeoDataFrame(
        {"district": ["1"]}, geometry=[box(0, 0, 900, 600)], crs="EPSG:32615"
    )
    calls = pd.DataFrame(
        {
            "x": [50, 150, 250, 50, 650, 750, 850, 850, 750],
            "y": [50, 350, 150, 450, 50, 350, 150, 450, 250],
            "sector": ["W", "W", "W", "W", "E", "E", "E", "E", "W"],
        }
    )
    layer, share = areas_from_calls(parents, calls, area_column="sector", cell_size_m=300)
    assert sorted(layer["beat"]) == ["E", "W"]
    assert (layer["district"] == "1").all()
    # units are 300 m cells: west column W, east column E; the middle column takes its
    # labelled neighbours' majority, and the whole precinct is covered
    assert layer.area.sum() == pytest.approx(900 * 600)
    assert share == pytest.approx(8 / 9)
    with pytest.raises(ValueError, match="no located call"):
        areas_from_calls(parents, calls.assign(x=np.nan), area_column="sector")


def test_minneapolis_sector_layer_from_calls(mpls_calls):
    import geopandas as gpd

    from analysis.calls import areas_from_calls

    raw, _ = mpls_calls
    precincts = gpd.read_file(MPLS / "mpd_precincts.geojson")
    crs = precincts.estimate_utm_crs()
    precincts = precincts.to_crs(crs).assign(district=lambda f: f["PRECINCT"].astype(str))
    lon = pd.to_numeric(raw["Longitude"], errors="coerce")
    lat = pd.to_numeric(raw["Latitude"], errors="coerce")
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs="EPSG:4326").to_crs(crs)
    calls = pd.DataFrame(
        {"x": points.x, "y": points.y, "sector": raw["Battalion"].replace("", pd.NA)}
    )
    layer, share = areas_from_calls(precincts, calls, area_column="sector")
    assert len(layer) == raw["Battalion"].replace("", pd.NA).nunique() == 16
    # each approximated sector lies in the precinct its name says (P4 Sec 2N -> 4)
    assert (layer["beat"].str[1] == layer["district"]).all()
    assert share > 0.93  # measured 0.953 with 300 m units


@pytest.mark.slow
def test_calls_areas_command_rebuilds_the_bundled_layer(tmp_path):
    import json
    import subprocess
    import sys

    import geopandas as gpd

    out = tmp_path / "sectors.geojson"
    done = subprocess.run(
        [
            sys.executable, "-m", "analysis", "calls-areas",
            "--calls", str(RAW), "--parents", str(MPLS / "mpd_precincts.geojson"),
            "--parent-column", "PRECINCT", "--area-column", "Battalion", "--out", str(out),
        ],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    report = json.loads(done.stdout)
    assert report["areas"] == 16
    assert report["match_share"] > 0.93
    built = gpd.read_file(out)
    bundled = gpd.read_file(MPLS / "sectors_from_calls.geojson")
    assert sorted(built["beat"]) == sorted(bundled["beat"])
    assert built.to_crs(built.estimate_utm_crs()).area.sum() == pytest.approx(
        bundled.to_crs(bundled.estimate_utm_crs()).area.sum(), rel=1e-4
    )
    missing = subprocess.run(
        [sys.executable, "-m", "analysis", "calls-areas", "--calls", str(RAW),
         "--parents", str(MPLS / "mpd_precincts.geojson"), "--parent-column", "PRECINCT",
         "--area-column", "Sector", "--out", str(out)],
        capture_output=True, text=True, check=False,
    )  # fmt: skip
    assert missing.returncode == 2
    assert "no column ['Sector']" in missing.stderr


def test_calls_areas_ids_follow_the_department_rules(tmp_path, capsys):
    import json

    import geopandas as gpd

    from analysis.cli import main as analysis_main

    # MPD's precincts written "01".."05" and 3,000 real calls: the precinct ids take the
    # department's rule (Minneapolis: no padding), so P4's sectors lie in precinct "4", not "04"
    parents = gpd.read_file(MPLS / "mpd_precincts.geojson")
    parents["PRECINCT"] = parents["PRECINCT"].str.zfill(2)
    parents.to_file(tmp_path / "precincts.geojson", driver="GeoJSON")
    calls = pd.read_csv(RAW, dtype=str, keep_default_na=False, nrows=3000)
    calls.to_csv(tmp_path / "calls.csv", index=False)
    args = ["calls-areas", "--calls", str(tmp_path / "calls.csv"), "--parents"]
    args += [str(tmp_path / "precincts.geojson"), "--parent-column", "PRECINCT"]
    args += ["--area-column", "Battalion", "--cell-size", "600", "--out"]
    profile = ["--department", "minneapolis"]
    assert analysis_main([*args, str(tmp_path / "mpls.geojson"), *profile]) == 0
    report = json.loads(capsys.readouterr().out)
    layer = gpd.read_file(tmp_path / "mpls.geojson")
    reported = calls["Battalion"].replace("", pd.NA).dropna()
    assert report["areas"] == len(layer) == reported.nunique()
    assert sorted(layer["district"].unique()) == ["1", "2", "3", "4", "5"]
    # the areas take the department's beat rule (upper case), as its store reads the calls
    assert set(layer["beat"]) == set(reported.str.upper())
    assert (layer["beat"].str[1] == layer["district"]).all()
    # without a profile: the generic rule for precincts, the areas as the calls write them
    assert analysis_main([*args, str(tmp_path / "any.geojson")]) == 0
    capsys.readouterr()
    plain = gpd.read_file(tmp_path / "any.geojson")
    assert set(plain["beat"]) == set(reported)
    assert (plain["beat"].str[1] == plain["district"]).all()
    # a profile that does not exist: a clear error, no traceback
    assert analysis_main([*args, str(tmp_path / "x.geojson"), "--department", "nowhere"]) == 2
    assert "nowhere" in capsys.readouterr().err


def test_review_days_cover_the_window_the_period_before_and_last_year():
    # 28 days to 13 July 2020: 16 June - 13 July; before: 19 May - 15 June; a year earlier the
    # same weekdays, 18 June - 15 July 2019 (364 days back)
    assert review_window(date(2020, 7, 13), "28d").start == date(2020, 6, 16)
    assert review_days(date(2020, 7, 13), "28d") == (date(2019, 6, 18), date(2020, 7, 13))
    # the 7-day window ends the day before as_of; the calls read still reach as_of
    assert review_days(date(2020, 7, 13), "7d")[1] == date(2020, 7, 13)
    with pytest.raises(ValueError, match="window must be one of"):
        review_days(date(2020, 7, 13), "30d")


def test_the_workload_basis_is_resolved_as_plan_workload_says():
    assert resolve_workload("auto", has_calls=True) == "calls"
    assert resolve_workload("auto", has_calls=False) == "incidents"
    assert resolve_workload("incidents", has_calls=True) == "incidents"
    assert resolve_workload("calls", has_calls=False) == "calls"  # asked for: then no calls
    with pytest.raises(ValueError, match="'auto', 'calls' or 'incidents'"):
        resolve_workload("hours", has_calls=True)
