"""``python -m geodata meetings ...`` against a seeded database."""

from __future__ import annotations

import json
from datetime import date

import icalendar
import pytest

from geodata import meetings
from geodata.cli import main


@pytest.fixture
def cli_db(meetings_url, monkeypatch):
    monkeypatch.setenv("DATABASE_URL", meetings_url)
    return meetings_url


def test_list_json_by_sector_and_dates(cli_db, capsys):
    assert main(["meetings", "list", "--sector", "171", "--from", "2027-01-01", "--to",
                 "2027-02-28", "--json"]) == 0  # fmt: skip
    rows = json.loads(capsys.readouterr().out)
    engine = meetings.open_database(cli_db)
    expected = meetings.upcoming_meetings(
        engine, sector="171", start=date(2027, 1, 1), end=date(2027, 2, 28)
    )
    assert [r["start"] for r in rows] == [t.isoformat() for t in expected["start"]]
    assert {r["sector"] for r in rows} == {"171"}
    assert all(r["illustrative"] for r in rows)
    # every beat of sector 171 meets once in two months
    areas = meetings.list_areas(engine)
    assert len(rows) == int((areas["sector"] == "171").sum())


def test_list_text_marks_cancelled_and_illustrative(cli_db, capsys):
    engine = meetings.open_database(cli_db)
    first = meetings.upcoming_meetings(engine, beat="1713", start=date(2027, 1, 1)).iloc[0]
    meetings.cancel_occurrence(
        engine, int(first["series_id"]), first["start"].to_pydatetime(), note="Snow"
    )
    assert main(["meetings", "list", "--beat", "1713", "--from", "2027-01-01", "--to",
                 "2027-03-31"]) == 0  # fmt: skip
    out, err = capsys.readouterr()
    lines = out.strip().splitlines()
    assert lines[0].startswith("Tue 2027-01-12 18:30-19:30 [CANCELLED] Beat 1713")
    assert lines[0].endswith("(Snow)")
    assert lines[1].startswith("Tue 2027-03-09 18:30-19:30 Beat 1713 community meeting *")
    assert "illustrative" in err


def test_ics_needs_an_area_and_writes_a_calendar(cli_db, capsys, tmp_path):
    assert main(["meetings", "ics"]) == 2
    assert "give --beat, --sector, --district or --all" in capsys.readouterr().err
    out = tmp_path / "all.ics"
    assert main(["meetings", "ics", "--all", "--out", str(out)]) == 0
    parsed = icalendar.Calendar.from_ical(out.read_bytes())
    engine = meetings.open_database(cli_db)
    assert len(parsed.walk("VEVENT")) == len(meetings.list_series(engine))


def test_bad_dates_are_errors(cli_db, capsys):
    assert main(["meetings", "list", "--from", "2027-02-01", "--to", "2027-01-01"]) == 2
    assert "before the start" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        main(["meetings", "list", "--from", "31/31/2027"])
    assert "is not a date" in capsys.readouterr().err


def test_unknown_area_is_an_error(cli_db, capsys):
    assert main(["meetings", "list", "--beat", "9999"]) == 2
    assert "beat: '9999' is not a known beat id" in capsys.readouterr().err
    assert main(["meetings", "ics", "--sector", "999"]) == 2
    assert "sector: '999' is not a known sector id" in capsys.readouterr().err
    # ids are normalised as in the beat layer: district 7 is "07"
    assert main(["meetings", "list", "--district", "7", "--json", "--limit", "1"]) == 0
    assert json.loads(capsys.readouterr().out)[0]["district"] == "07"
