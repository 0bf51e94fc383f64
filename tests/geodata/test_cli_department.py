"""Every ``python -m geodata`` command on the Seattle store, and the time zone rules of a store."""

from __future__ import annotations

import json
import shutil

import pandas as pd
import pytest

from geodata.cli import main
from geodata.department import load_department
from geodata.errors import StoreError
from geodata.ingest import install_boundaries
from geodata.store import IncidentStore

SEATTLE = load_department("seattle")


@pytest.fixture
def seattle_copy(seattle_store, tmp_path) -> IncidentStore:
    root = tmp_path / "seattle"
    shutil.copytree(seattle_store.root, root)
    return IncidentStore(root)


@pytest.fixture(scope="module")
def raw_head() -> pd.DataFrame:
    return pd.read_csv(SEATTLE.incident_files[0], dtype=str, keep_default_na=False, nrows=3000)


def test_info_names_the_department_and_its_zone(seattle_store, capsys):
    assert main(["info", "--store", str(seattle_store.root)]) == 0
    info = json.loads(capsys.readouterr().out)
    assert info["department"] == "Seattle Police Department"
    assert info["levels"] == ["beat", "sector", "precinct"]
    assert info["areas"] == {"beats": 55, "sectors": 19, "precincts": 5}
    assert info["timezone"] == "America/Los_Angeles"
    assert info["analysis_crs"] == "EPSG:26910"
    assert info["incidents"] == seattle_store.count()
    assert "notes" not in info


def test_init_on_an_existing_store_keeps_it(seattle_copy, capsys):
    before = seattle_copy.count()
    assert main(["init", "--department", "seattle", "--store", str(seattle_copy.root)]) == 0
    assert "Seattle Police Department" in capsys.readouterr().out
    assert seattle_copy.count() == before


def test_ingest_json_reports_unmapped_offenses(seattle_copy, raw_head, tmp_path, capsys):
    part = raw_head.copy()
    part.loc[part.index[:40], "offense"] = "Loud Party"  # not a NIBRS offense
    part.loc[part.index[:40], "offense_code"] = "ZZZ"
    part.loc[part.index[40:45], "offense_code"] = "99Q"  # unknown code, known name
    path = tmp_path / "spd_part.csv"
    part.to_csv(path, index=False)
    assert main(["ingest", str(path), "--store", str(seattle_copy.root), "--json"]) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["rows_read"] == 3000
    assert report["rows_new"] == 0  # every row was already stored
    accepted = report["rows_accepted"]
    located = part[part["longitude"].astype(float) != 0]
    unknown = int((located["offense"] == "Loud Party").sum())
    unmapped = report["unmapped_offenses"]
    assert unmapped["vocabulary"] == "nibrs"
    assert unmapped["rows"] == unknown
    assert unmapped["share"] == pytest.approx(unknown / accepted)
    assert unmapped["top"] == [{"offense": "LOUD PARTY", "rows": unknown}]  # as stored
    stored = seattle_copy.load_incidents()
    by_id = stored.set_index("incident_id")
    known_name = [i for i in part["offense_id"].iloc[40:45] if i in by_id.index]
    assert known_name
    assert (by_id.loc[known_name, "category"] != "other").all()  # matched on the name


@pytest.mark.slow
def test_ingest_detects_the_vocabulary_without_a_profile(raw_head, tmp_path, capsys):
    path = tmp_path / "spd.csv"
    raw_head.to_csv(path, index=False)
    mapping = tmp_path / "mapping.toml"
    mapping.write_text(
        '[columns]\nincident_id = "offense_id"\noffense = "offense"\n'
        'fbi_code = "offense_code"\nreported_beat = "beat"\n',
        encoding="utf-8",
    )
    store = tmp_path / "s"
    args = ["ingest", str(path), "--beats", str(SEATTLE.beats_file), "--store", str(store)]
    args += ["--timezone", "America/Los_Angeles", "--mapping", str(mapping), "--json"]
    assert main(args) == 0
    report = json.loads(capsys.readouterr().out)
    assert "offense vocabulary detected: nibrs" in report["notes"]
    assert report["unmapped_offenses"]["rows"] == 0
    stored = IncidentStore(store).load_incidents()
    assert (stored["category"] != "other").mean() > 0.99
    assert IncidentStore(store).meta()["timezone"] == "America/Los_Angeles"


def test_ingest_without_a_zone_is_a_clear_error(tmp_path, capsys):
    path = tmp_path / "x.csv"
    path.write_text("id,date,offense,latitude,longitude\n", encoding="utf-8")
    args = ["ingest", str(path), "--beats", str(SEATTLE.beats_file), "--store", str(tmp_path / "s")]
    assert main(args) == 2
    err = capsys.readouterr().err
    assert "time zone of the incidents is unknown" in err
    assert "--department" in err
    assert not (tmp_path / "s" / "meta.json").exists()


def test_a_zone_that_conflicts_with_the_profile_is_refused(tmp_path):
    store = IncidentStore(tmp_path / "s")
    with pytest.raises(StoreError, match="keeps its times in America/Los_Angeles"):
        install_boundaries(
            store, SEATTLE.beats_file, department=SEATTLE, timezone="America/New_York"
        )


def test_times_with_an_offset_are_converted(seattle_copy, raw_head, tmp_path, capsys):
    part = raw_head.iloc[:200].copy()
    part = part[part["longitude"].astype(float) != 0]
    local = pd.to_datetime(part["offense_start_datetime"]).dt.tz_localize("America/Los_Angeles")
    part["offense_start_datetime"] = local.dt.tz_convert("UTC").dt.strftime("%Y-%m-%dT%H:%M:%SZ")
    path = tmp_path / "utc.csv"
    part.to_csv(path, index=False)
    assert main(["ingest", str(path), "--store", str(seattle_copy.root), "--json"]) == 0
    capsys.readouterr()
    stored = seattle_copy.load_incidents().set_index("incident_id")
    got = stored.loc[part["offense_id"], "occurred_at"]
    assert (got.to_numpy() == local.to_numpy()).all()
    assert str(got.dt.tz) == "America/Los_Angeles"


def test_publish_on_the_seattle_store(seattle_store, tmp_path, capsys):
    out = tmp_path / "public"
    args = ["publish", "--store", str(seattle_store.root), "--out", str(out)]
    assert main([*args, "--as-of", "busiest", "--json"]) == 0
    summary = json.loads(capsys.readouterr().out)
    assert summary["rows_published"] > 1000
    assert summary["rows_withheld"] > 0
    assert summary["rows_in_window"] == summary["rows_published"] + summary["rows_withheld"]
    published = list(out.rglob("*.parquet")) + list(out.rglob("*.csv"))
    assert published


def test_department_draft_onboards_seattle_without_code(tmp_path, capsys):
    out = tmp_path / "mine.toml"
    args = ["department", "draft", "--beats", str(SEATTLE.beats_file)]
    args += ["--incidents", str(SEATTLE.incident_files[0]), "--out", str(out)]
    assert main(args) == 0
    text = out.read_text(encoding="utf-8")
    assert "guess" in text
    draft = load_department(out)
    assert draft.beat_column == "beat"
    assert draft.level("district").column == "first_prec"
    assert draft.level("sector").column == "sector"
    assert draft.offense_vocabulary == "nibrs"
    assert "America/Los_Angeles" in text  # named as the zone with the same clock
    assert draft.incident_columns["reported_beat"] == "beat"
    assert draft.incident_files == SEATTLE.incident_files
    assert main(args) == 2  # no silent overwrite
    capsys.readouterr()


@pytest.mark.slow
def test_a_drafted_profile_builds_a_store(tmp_path, capsys):
    out = tmp_path / "mine.toml"
    args = ["department", "draft", "--beats", str(SEATTLE.beats_file)]
    assert main([*args, "--incidents", str(SEATTLE.incident_files[0]), "--out", str(out)]) == 0
    text = out.read_text(encoding="utf-8")
    zone_line = next(line for line in text.splitlines() if line.startswith("timezone ="))
    out.write_text(text.replace(zone_line, 'timezone = "America/Los_Angeles"'), encoding="utf-8")
    store = tmp_path / "s"
    assert main(["init", "--department", str(out), "--store", str(store)]) == 0
    capsys.readouterr()
    built = IncidentStore(store)
    beats = built.read_layer("beats")
    assert len(beats) == 55
    assert set(beats["district"].dropna()) == {"N", "E", "S", "W", "SW"}
    assert built.count() == 72_597


def test_a_mapping_without_a_zone_reads_times_in_the_stores(seattle_copy, raw_head, tmp_path):
    from geodata.ingest import ingest_file
    from geodata.readers import ColumnMapping

    part = raw_head.iloc[:300]
    path = tmp_path / "upload.csv"
    part.to_csv(path, index=False)
    # as the Data page uploads: a mapping that only names a CRS (here none)
    report = ingest_file(path, seattle_copy, mapping=ColumnMapping(incident_id="offense_id"))
    assert report.rows_accepted > 0
    stored = seattle_copy.load_incidents().set_index("incident_id")["occurred_at"]
    located = part[part["longitude"].astype(float) != 0].iloc[0]
    expected = pd.Timestamp(located["offense_start_datetime"]).tz_localize("America/Los_Angeles")
    assert stored[located["offense_id"]] == expected


def test_ingest_text_output_names_the_unmapped_offenses(seattle_copy, raw_head, tmp_path, capsys):
    part = raw_head.iloc[:500].copy()
    part["offense"] = "Loud Party"
    part["offense_code"] = "ZZZ"
    path = tmp_path / "party.csv"
    part.to_csv(path, index=False)
    assert main(["ingest", str(path), "--store", str(seattle_copy.root)]) == 0
    out = capsys.readouterr().out
    line = next(x for x in out.splitlines() if "offenses in no category" in x)
    located = int((part["longitude"].astype(float) != 0).sum())
    assert f"nibrs vocabulary: {located:,} rows (100.0%)" in line
    assert f"LOUD PARTY ({located:,})" in line


def test_beats_without_a_profile_keep_detected_widths(tmp_path):
    from geodata.department import LEGACY_DEPARTMENT

    chicago = load_department(LEGACY_DEPARTMENT)
    store = IncidentStore(tmp_path / "s")
    install_boundaries(store, chicago.beats_file, timezone=chicago.timezone)
    beats = store.read_layer("beats")
    # the widest beat id of the layer has 4 digits: 925 is stored as 0925, as the profile says
    assert "0925" in set(beats["beat"])
    assert store.department().detect_columns
    assert store.meta()["timezone"] == chicago.timezone
    install_boundaries(store, chicago.beats_file)  # again: the store's record is reused
    assert "0925" in set(store.read_layer("beats")["beat"])


def test_ingest_into_a_new_store_of_a_profile(raw_head, tmp_path, capsys):
    part = raw_head.iloc[:400]
    path = tmp_path / "first.csv"
    part.to_csv(path, index=False)
    store = tmp_path / "new"
    assert (
        main(["ingest", str(path), "--department", "seattle", "--store", str(store), "--json"]) == 0
    )
    report = json.loads(capsys.readouterr().out)
    located = int((part["longitude"].astype(float) != 0).sum())
    assert report["rows_read"] == 400
    assert report["rows_new"] == report["rows_accepted"] <= located
    built = IncidentStore(store)
    assert built.department().key == "seattle"
    assert len(built.read_layer("beats")) == 55
