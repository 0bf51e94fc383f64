"""``department draft`` on real exports: date order, hierarchy, x/y CRS and id rules.

Every file here is the bundled real data (Chicago's portal export of January 2018, its Dec-2012
beat layer, Seattle's 2018 beats), cut, renamed or re-projected as a department's own export
would be. Expected values come from the files' SOURCE.md or from pandas on the raw files.
"""

from __future__ import annotations

import json
import tomllib
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest

from geodata import settings
from geodata.cli import main
from geodata.department import load_department
from geodata.draft import _case_rule, _id_rule, inspect_files
from geodata.store import IncidentStore

CHICAGO = settings.bundled_samples("chicago")
CHICAGO_BEATS = CHICAGO / "beats.geojson"
#: Chicago's portal export of 1-27 January 2018, sorted by date (SOURCE.md).
CHICAGO_JANUARY = CHICAGO / "incidents_2018-01_dense.csv.gz"
SEATTLE = load_department("seattle")
MONTH_FIRST = "%m/%d/%Y %I:%M:%S %p"
DAY_FIRST = "%d/%m/%Y %I:%M:%S %p"


@pytest.fixture(scope="module")
def january() -> pd.DataFrame:
    """The raw January 2018 export, every value as written."""
    return pd.read_csv(CHICAGO_JANUARY, dtype=str, keep_default_na=False)


@pytest.fixture(scope="module")
def first_twelve_days(january, tmp_path_factory) -> Path:
    """The export's rows of 1-12 January: every date reads month-first and day-first."""
    day = january["Date"].str.slice(3, 5).astype(int)
    path = tmp_path_factory.mktemp("cut") / "first_days.csv"
    january[day <= 12].iloc[:3000].to_csv(path, index=False)
    return path


@pytest.fixture(scope="module")
def state_plane_beats(tmp_path_factory) -> Path:
    """Chicago's beats as a shapefile in EPSG:3435 with integer BEAT_NO, DIST and SECT.

    Sector numbers restart in every district (sector 1 of district 17, of district 9...).
    """
    layer = gpd.read_file(CHICAGO_BEATS).to_crs("EPSG:3435")
    layer = layer.rename(columns={"BEAT_NUM": "BEAT_NO", "DISTRICT": "DIST", "SECTOR": "SECT"})
    layer = layer[["BEAT_NO", "DIST", "SECT", "geometry"]]
    for column in ("BEAT_NO", "DIST", "SECT"):
        layer[column] = layer[column].astype("int64")
    path = tmp_path_factory.mktemp("shp") / "beats_3435.shp"
    layer.to_file(path)
    return path


@pytest.fixture(scope="module")
def xy_export(january, tmp_path_factory) -> Path:
    """Every 6th row of the January export (2,867), with only the state-plane X/Y coordinates."""
    part = january.iloc[::6].drop(columns=["Latitude", "Longitude", "Location"])
    path = tmp_path_factory.mktemp("xy") / "xy_only.csv"
    part.to_csv(path, index=False)
    return path


def _draft(tmp_path: Path, beats: Path, incidents: Path, *extra: str) -> tuple[int, str]:
    out = tmp_path / "draft.toml"
    args = ["department", "draft", "--beats", str(beats), "--incidents", str(incidents)]
    code = main([*args, "--out", str(out), "--force", *extra])
    return code, out.read_text(encoding="utf-8") if out.exists() else ""


# --- 1. the day/month order of the dates ------------------------------------------------------


def test_an_export_sorted_by_date_is_read_month_first(january, tmp_path, capsys):
    day = january["Date"].str.slice(3, 5).astype(int)
    assert (day.iloc[:500] <= 12).all()  # the head alone cannot decide the order
    assert (day > 12).sum() > 5000  # the whole column can
    code, text = _draft(tmp_path, CHICAGO_BEATS, CHICAGO_JANUARY)
    assert code == 0, capsys.readouterr().err
    assert f"# guess: dates read as {MONTH_FIRST} (month first)." in text
    assert "note:" not in capsys.readouterr().err
    # the order the whole column decided is written out: a later export of 1-12 January only
    # (which decides nothing) is read in it rather than refused
    dept = load_department(tmp_path / "draft.toml")
    assert dept.incident_options["date_format"] == MONTH_FIRST


@pytest.mark.slow
def test_a_store_drafted_from_a_month_reads_a_later_export_of_days_1_to_12(
    first_twelve_days, tmp_path, capsys
):
    code, text = _draft(tmp_path, CHICAGO_BEATS, CHICAGO_JANUARY)
    assert code == 0
    profile = tmp_path / "draft.toml"
    # the draft's own timezone guess is a comment to check: Chicago's is the one to keep
    zone = next(line for line in text.splitlines() if line.startswith("timezone ="))
    profile.write_text(text.replace(zone, 'timezone = "America/Chicago"'), encoding="utf-8")
    store = tmp_path / "store"
    assert main(["init", "--department", str(profile), "--store", str(store)]) == 0
    capsys.readouterr()
    # 3,000 rows whose dates read either way: refused by a store that knows no order
    assert main(["ingest", str(first_twelve_days), "--store", str(store), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_read"] == report["rows_accepted"] + report["rows_rejected"] == 3000
    assert report["rows_new"] == 0  # the same incidents: read on the same days, replaced


def test_an_undecided_order_is_a_guess_with_both_formats(first_twelve_days, tmp_path, capsys):
    code, text = _draft(tmp_path, CHICAGO_BEATS, first_twelve_days)
    assert code == 0
    err = capsys.readouterr().err
    lines = text.splitlines()
    assert f'# date_format = "{MONTH_FIRST}"  # month first: 03/04 is 4 March' in lines
    assert f'# date_format = "{DAY_FIRST}"  # day first: 03/04 is 3 April' in lines
    assert any(line.startswith("# guess needed:") for line in lines)
    # the note names the file and the file's own lines (the header is line 1)
    assert f"note: {first_twelve_days}, column 'Date':" in err
    assert "3,000 values read either way (line 2 '01/01/2018 12:00:00 AM'" in err
    assert "(values)" not in err + text
    dept = load_department(tmp_path / "draft.toml")  # still a valid profile
    assert "date_format" not in dept.incident_options
    chosen = text.replace(f'# date_format = "{MONTH_FIRST}"', f'date_format = "{MONTH_FIRST}"')
    assert tomllib.loads(chosen)["incidents"]["date_format"] == MONTH_FIRST


def test_the_undecided_order_names_the_file_in_the_draft(first_twelve_days):
    draft = inspect_files(CHICAGO_BEATS, first_twelve_days)
    reason = draft.comments["date_order"]
    assert reason.startswith(f"{first_twelve_days}, column 'Date': the dates do not say")
    assert "line 2 '01/01/2018 12:00:00 AM', line 3 " in reason
    assert draft.date_choices == (MONTH_FIRST, DAY_FIRST)
    assert "date_format" not in draft.comments


def test_date_format_given_to_the_draft_is_written(first_twelve_days, tmp_path, capsys):
    code, text = _draft(tmp_path, CHICAGO_BEATS, first_twelve_days, "--date-format", MONTH_FIRST)
    assert code == 0
    assert "note:" not in capsys.readouterr().err
    assert f'date_format = "{MONTH_FIRST}"  # given with --date-format; dates read as' in text
    dept = load_department(tmp_path / "draft.toml")
    assert dept.incident_options["date_format"] == MONTH_FIRST
    assert dept.column_mapping().date_format == MONTH_FIRST


def test_rows_no_format_reads_are_counted(january, tmp_path):
    part = january.iloc[::17].copy()  # 1,012 rows of the 27 days
    part.loc[part.index[:7], "Date"] = "yesterday"
    path = tmp_path / "typos.csv"
    part.to_csv(path, index=False)
    draft = inspect_files(CHICAGO_BEATS, path)
    assert draft.comments["date_format"].endswith(
        "; 7 of 1,012 dates match none of these: ingest rejects them"
    )


@pytest.mark.slow
def test_the_draft_of_chicagos_own_export_builds_its_store(tmp_path, capsys):
    code, _ = _draft(tmp_path, CHICAGO_BEATS, CHICAGO_JANUARY)
    assert code == 0
    store = tmp_path / "s"
    assert main(["init", "--department", str(tmp_path / "draft.toml"), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    assert "read 17,198, accepted 17,038" in out  # SOURCE.md: 17,198 rows, 17,038 located
    beats = IncidentStore(store).read_layer("beats")
    # SOURCE.md: 275 beats in 68 sectors; 23 districts have beats in the Dec-2012 layer
    assert (len(beats), beats["sector"].nunique(), beats["district"].nunique()) == (275, 68, 23)


# --- 2. the hierarchy when sector numbers repeat across districts ----------------------------


def test_repeated_sector_numbers_are_qualified_by_the_district(state_plane_beats, xy_export):
    raw = gpd.read_file(state_plane_beats)
    assert raw.crs.to_epsg() == 3435
    assert raw["SECT"].nunique() < raw["DIST"].nunique()  # the fewest values: not the top
    assert raw.groupby("SECT")["DIST"].nunique().max() > 1
    draft = inspect_files(state_plane_beats, xy_export)
    district, sector = draft.levels["district"], draft.levels["sector"]
    assert (district["column"], sector["column"]) == ("DIST", "SECT")
    assert sector["qualify"] is True
    assert district["width"] == 2  # the two digits of district 25
    assert draft.beat_column == "BEAT_NO"


def test_the_bundled_beats_are_drafted_district_then_sector(xy_export):
    # the Dec-2012 layer has SECTOR and BEAT (both 5 values, the sector digit): neither is a top
    draft = inspect_files(CHICAGO_BEATS, xy_export)
    assert draft.levels["district"]["column"] == "DISTRICT"
    assert draft.levels["sector"]["column"] == "SECTOR"
    assert draft.levels["sector"]["qualify"] is True


def test_a_qualified_draft_builds_chicagos_sectors(state_plane_beats, xy_export, tmp_path):
    from geodata.ingest import install_boundaries

    code, _ = _draft(tmp_path, state_plane_beats, xy_export)
    assert code == 0
    dept = load_department(tmp_path / "draft.toml")
    store = IncidentStore(tmp_path / "s")
    install_boundaries(store, dept.beats_file, department=dept, timezone="America/Chicago")
    beats = store.read_layer("beats").set_index("beat")
    # SOURCE.md: 275 beats, 68 sectors, districts 1-25 and 31 (23 of them in the beat layer)
    assert len(beats) == 275
    assert beats["sector"].nunique() == 68
    assert beats["district"].nunique() == 23
    # beat 1713 = district 17, sector 1, beat 3; beat 925 is in sector 2 of district 9
    assert tuple(beats.loc["1713", ["sector", "district"]]) == ("171", "17")
    assert tuple(beats.loc["925", ["sector", "district"]]) == ("092", "09")


def test_seattles_sectors_nest_without_qualifying():
    draft = inspect_files(SEATTLE.beats_file, SEATTLE.incident_files[0])
    assert draft.levels["district"]["column"] == "first_prec"
    assert draft.levels["sector"]["column"] == "sector"
    assert "qualify" not in draft.levels["sector"]


# --- 3. the CRS of projected x/y columns ---------------------------------------------------


def test_projected_xy_get_the_beat_layers_crs_as_a_guess(state_plane_beats, xy_export, tmp_path):
    code, text = _draft(tmp_path, state_plane_beats, xy_export)
    assert code == 0
    line = next(x for x in text.splitlines() if x.startswith("crs ="))
    assert line.startswith('crs = "EPSG:3435"  # guess: taken from the beat layer (EPSG:3435)')
    assert "Check it is the export's CRS" in line
    incidents = tomllib.loads(text)["incidents"]
    assert incidents["crs"] == "EPSG:3435"
    assert (incidents["columns"]["x"], incidents["columns"]["y"]) == (
        "X Coordinate",
        "Y Coordinate",
    )
    assert "lat" not in incidents["columns"]


def test_lon_lat_beats_do_not_lend_their_crs_to_projected_xy(xy_export, tmp_path):
    code, text = _draft(tmp_path, CHICAGO_BEATS, xy_export)
    assert code == 0
    assert "crs" not in tomllib.loads(text)["incidents"]
    line = next(x for x in text.splitlines() if x.startswith("# crs ="))
    assert "the beat layer is in lon/lat (EPSG:4326)" in line


def test_lat_lon_exports_get_no_crs(tmp_path):
    code, text = _draft(tmp_path, SEATTLE.beats_file, SEATTLE.incident_files[0])
    assert code == 0
    assert "crs" not in tomllib.loads(text)["incidents"]


@pytest.mark.slow
def test_a_drafted_xy_department_ingests(state_plane_beats, xy_export, january, tmp_path, capsys):
    code, _ = _draft(tmp_path, state_plane_beats, xy_export)
    assert code == 0
    store = tmp_path / "s"
    assert main(["init", "--department", str(tmp_path / "draft.toml"), "--store", str(store)]) == 0
    out = capsys.readouterr().out
    part = january.iloc[::6]
    x = pd.to_numeric(part["X Coordinate"], errors="coerce")
    located = int((x.notna() & (x != 0)).sum())
    assert f"read {len(part):,}, accepted {located:,}" in out
    stored = IncidentStore(store).load_incidents()
    reported = stored["reported_beat"].astype(str).str.lstrip("0")
    # SOURCE.md: 91.4-92.0% by a plain sjoin; the boundary rule settles the edge points
    assert (stored["beat"].astype(str) == reported).mean() > 0.97


# --- 4. id rules ------------------------------------------------------------------------------


def test_one_id_in_digits_does_not_make_text_ids_numeric():
    ids = gpd.read_file(SEATTLE.beats_file)["beat"]
    assert (ids == "99").sum() == 1
    assert ids.str.fullmatch(r"[A-Z]\d").sum() == 54
    assert _id_rule(ids) == (
        0,
        "text ids (1 written in digits, such as '99'): upper-cased, not padded",
    )
    assert _id_rule(pd.Series([111, 925, 2535])) == (
        0,
        "numeric ids without leading zeros: not padded",
    )
    assert _id_rule(pd.Series(["0111", "0925", "2535"]))[0] == 4


def test_lower_case_ids_get_a_case_rule(tmp_path):
    layer = gpd.read_file(SEATTLE.beats_file)
    layer["beat"] = layer["beat"].str.lower()
    path = tmp_path / "beats_lower.geojson"
    layer.to_file(path)
    code, text = _draft(tmp_path, path, SEATTLE.incident_files[0])
    assert code == 0
    beat_table = tomllib.loads(text)["levels"]["beat"]
    assert beat_table["case"] == "upper"
    assert "the ids are written in lower case ('" in text
    assert "numeric ids" not in text.split("[levels.sector]")[0]
    dept = load_department(tmp_path / "draft.toml")
    assert dept.normalize_id("beat", "k3") == "K3"


def test_ids_differing_only_in_case_keep_it():
    assert _case_rule(pd.Series(["b1", "B1", "c2"]))[0] == "keep"
    assert _case_rule(pd.Series(["B1", "C2", "99"])) == (None, "")
    assert _case_rule(pd.Series(["111", "925"])) == (None, "")
