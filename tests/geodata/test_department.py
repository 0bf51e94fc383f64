"""Department profiles: reading, labels, id rules, the store's record (tiny and bundled cases)."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from geodata import settings
from geodata.department import (
    Department,
    department_from_dict,
    list_departments,
    load_department,
    store_department,
)
from geodata.errors import InputError
from geodata.store import IncidentStore


def test_bundled_departments_are_listed():
    assert {"chicago", "seattle"} <= set(list_departments())


def test_seattle_labels_are_its_own():
    seattle = load_department("seattle")
    assert seattle.timezone == "America/Los_Angeles"
    assert seattle.analysis_crs is None  # the UTM zone of its beats, decided at build time
    assert seattle.label("beat") == "beat"
    assert seattle.label("district") == "precinct"
    assert seattle.label("district", plural=True) == "precincts"
    assert seattle.label("sector", plural=True) == "sectors"
    assert seattle.offense_vocabulary == "nibrs"
    assert seattle.beats_file.exists()
    assert all(p.exists() for p in seattle.incident_files)


def test_chicago_labels_and_widths():
    chicago = load_department("chicago")
    assert chicago.label("district") == "district"
    assert chicago.normalize_id("beat", 925) == "0925"
    assert chicago.normalize_id("beat", "925.0") == "0925"
    assert chicago.normalize_id("district", "9") == "09"
    assert chicago.normalize_id("beat", None) is None
    assert chicago.stations_file.exists()


def test_text_ids_are_upper_cased_not_padded():
    seattle = load_department("seattle")
    assert seattle.normalize_id("beat", " k3 ") == "K3"
    assert seattle.normalize_id("district", "sw") == "SW"
    ids = pd.Series(["k3", None, "M1", "99"], index=[10, 11, 12, 13])
    out = seattle.normalize_ids("beat", ids)
    assert out.index.tolist() == [10, 11, 12, 13]
    assert out.dtype == "string"
    assert out.tolist()[0] == "K3"
    assert out.isna().tolist() == [False, True, False, False]
    assert out.tolist()[2:] == ["M1", "99"]


def test_vectorised_ids_match_the_scalar_rule():
    chicago = load_department("chicago")
    values = pd.Series(["1713", 925, "0111", 111.0, "  17 ", None])
    expected = [chicago.normalize_id("beat", v) for v in values]
    assert (
        chicago.normalize_ids("beat", values)
        .astype(object)
        .where(lambda s: s.notna(), None)
        .tolist()
        == expected
    )


def test_a_beat_zone_department_has_no_sector():
    dept = department_from_dict(
        {
            "key": "x",
            "name": "X",
            "timezone": "Europe/London",
            "levels": {"district": {"singular": "zone", "parent": "prefix", "length": 1}},
        }
    )
    assert not dept.has_level("sector")
    assert dept.label("district") == "zone"
    assert dept.label("district", plural=True) == "zones"
    with pytest.raises(KeyError, match="no 'sector' level"):
        dept.label("sector")


@pytest.mark.parametrize(
    ("config", "words"),
    [
        ({"name": "X", "timezone": "UTC"}, "key"),
        ({"key": "x", "name": "X", "timezone": "Mars/Olympus"}, "not an IANA time zone"),
        ({"key": "x", "name": "X", "timezone": "UTC", "analysis_crs": "EPSG:4326"}, "metres"),
        ({"key": "x", "name": "X", "timezone": "UTC", "levels": {"ward": {}}}, "unknown levels"),
        (
            {"key": "x", "name": "X", "timezone": "UTC", "meetings": {"duration_min": 90}},
            "must be 1 to 60",
        ),
        (
            {"key": "x", "name": "X", "timezone": "UTC", "levels": {"sector": {"parent": "ask"}}},
            "not one of",
        ),
        (
            {
                "key": "x",
                "name": "X",
                "timezone": "UTC",
                "levels": {"sector": {"parent": "prefix"}},
            },
            "length",
        ),
        (
            {"key": "x", "name": "X", "timezone": "UTC", "incidents": {"columns": {"when": "D"}}},
            "unknown roles",
        ),
        # an empty entry used to become None in the file list and fail later, far from the cause
        (
            {"key": "x", "name": "X", "timezone": "UTC", "incidents": {"files": ["a.csv", ""]}},
            "incidents.files: a file name is empty",
        ),
        (
            {"key": "x", "name": "X", "timezone": "UTC", "calls": {"files": [""]}},
            "calls.files: a file name is empty",
        ),
    ],
)
def test_bad_profiles_are_refused_with_the_key_named(config, words):
    with pytest.raises(InputError, match=words):
        department_from_dict(config, source="bad.toml")


def test_unknown_department_names_the_bundled_ones():
    with pytest.raises(InputError, match=r"chicago, .*seattle"):
        load_department("atlantis")


def test_profile_file_paths_are_relative_to_the_file(tmp_path):
    (tmp_path / "beats.geojson").write_text("{}", encoding="utf-8")
    profile = tmp_path / "mine.toml"
    profile.write_text(
        'key = "mine"\nname = "Mine PD"\ntimezone = "America/Denver"\n'
        '[beats]\nfile = "beats.geojson"\n',
        encoding="utf-8",
    )
    dept = load_department(profile)
    assert dept.beats_file == tmp_path / "beats.geojson"
    assert dept.source == str(profile)


def test_the_record_round_trips_through_a_store(tmp_path):
    seattle = load_department("seattle").with_analysis_crs("EPSG:26910")
    store = IncidentStore(tmp_path / "s")
    store.initialize(
        analysis_crs="EPSG:26910", timezone=seattle.timezone, department=seattle.to_dict()
    )
    back = store_department(IncidentStore(tmp_path / "s"))
    assert back == seattle
    assert isinstance(back, Department)
    assert json.loads(store.meta_path.read_text())["department"]["key"] == "seattle"


def test_a_store_without_a_record_reads_as_chicago_with_a_note(tmp_path):
    store = IncidentStore(tmp_path / "old")
    store.initialize(analysis_crs="EPSG:26916", timezone="America/Chicago")
    dept = store.department()
    assert dept.key == "chicago"
    assert any("records no department" in note for note in dept.notes)


def test_settings_choose_the_department(monkeypatch, tmp_path):
    monkeypatch.setenv("BEATS_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("BEATS_DEPARTMENT", raising=False)
    assert settings.department().key == "chicago"
    monkeypatch.setenv("BEATS_DEPARTMENT", "seattle")
    assert settings.department().key == "seattle"
    assert settings.department_name("chicago") == "chicago"


def test_the_store_records_its_department(seattle_store):
    meta = seattle_store.meta()
    assert meta["department"]["key"] == "seattle"
    assert meta["timezone"] == "America/Los_Angeles"
    dept = seattle_store.department()
    assert dept.label("district") == "precinct"
    # the UTM zone of Seattle's beats (NAD83 / UTM 10N), never Chicago's 16N
    assert dept.analysis_crs == meta["analysis_crs"] == "EPSG:26910"
    assert not dept.notes


def test_the_store_refuses_another_time_zone(tmp_path):
    store = IncidentStore(tmp_path / "s")
    store.initialize(analysis_crs="EPSG:26910", timezone="America/Los_Angeles")
    from geodata.errors import StoreError

    with pytest.raises(StoreError, match="holds times in America/Los_Angeles"):
        store.initialize(analysis_crs="EPSG:26910", timezone="America/New_York")


def test_today_is_the_departments_date():
    from datetime import UTC, datetime, timedelta

    seattle = load_department("seattle")
    now = datetime.now(UTC)
    expected = {(now + timedelta(hours=h)).date() for h in (-8, -7)}  # PST or PDT
    assert seattle.today() in expected
    assert seattle.zone.key == "America/Los_Angeles"
