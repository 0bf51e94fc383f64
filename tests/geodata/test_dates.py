"""Dates: impossible calendar dates, Unix epoch seconds and two-digit years.

- a day past its month's end (31 February, 31 April, 29 February of a common year) is an
  unparseable date in every path (detected and given formats, the fast kernel and
  ``strptime``, ISO 8601 with and without an offset, the incident and the calls readers), and
  29 February of a leap year is still read;
- ``%s`` reads instants (UTC seconds), ``%z`` values are instants too: neither is shifted by the
  zone; a column of epoch seconds read with no format is refused with ``--date-format %s``;
- a ``%Y`` year written with two digits is never read as the year 18, and a column of two-digit
  years is refused with the ``%y`` format(s) to pass.

The expected instants are written out by hand (Chicago is UTC-6 in winter, UTC-5 in summer).
"""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from geodata import schema
from geodata.calls import CallMapping, read_calls
from geodata.dates import NAT, DateReader, dates_note, parse_timestamps
from geodata.errors import InputError
from geodata.readers import REASONS, ColumnMapping, read_incidents

ZONE = "America/Chicago"
NOW = datetime(2026, 1, 1, tzinfo=UTC)
MPLS = Path(__file__).resolve().parents[2] / "geodata" / "samples" / "minneapolis"
CAD = MPLS / "mpd_cad_2020-06-21_to_2020-07-13.csv.gz"


def _local(text: str) -> pd.Timestamp:
    return pd.Timestamp(text, tz=ZONE)


def _parsed(values: list[str], date_format: str | tuple[str, ...] | None = None) -> list:
    parsed, _ = parse_timestamps(pd.Series(values), timezone=ZONE, date_format=date_format)
    return [None if pd.isna(t) else t for t in parsed]


def _reader(formats: tuple[str, ...] = ()) -> DateReader:
    return DateReader(path="x.csv", column="date", timezone=ZONE, formats=formats, now=NOW)


# --- impossible calendar dates ----------------------------------------------------------------


@pytest.mark.parametrize(
    ("values", "expected"),
    [
        # day-first, 12-hour clock (the kernel's format): 31 February is no date
        (
            ["31/02/2018 10:00 AM", "13/02/2018 10:00 AM"],
            [None, _local("2018-02-13 10:00")],
        ),
        (["02/31/2018", "02/13/2018"], [None, _local("2018-02-13")]),
        # ISO dates: 29 February of a common year, 31 April; leap days of 2016 and 2020 stay
        (
            ["2018-02-29", "2018-04-31", "2016-02-29", "2020-02-29", "2018-03-01", "2018-05-01"],
            [
                None,
                None,
                _local("2016-02-29"),
                _local("2020-02-29"),
                _local("2018-03-01"),
                _local("2018-05-01"),
            ],
        ),
        (
            ["2018-02-30T10:00:00", "2018-02-28T10:00:00"],
            [None, _local("2018-02-28 10:00")],
        ),
        # unpadded: strptime reads these, not the kernel
        (
            ["2/30/2018 1:00 PM", "3/1/2018 1:00 PM", "2/13/2018 1:00 PM", "6/31/2018 1:00 PM"],
            [None, _local("2018-03-01 13:00"), _local("2018-02-13 13:00"), None],
        ),
        # ISO 8601 with an offset (read by pandas): 30 February is no instant either
        (
            ["2018-02-30T10:00:00-06:00", "2018-02-28T10:00:00-06:00"],
            [None, _local("2018-02-28 10:00")],
        ),
    ],
)
def test_impossible_dates_are_unread_when_detected(values, expected):
    assert _parsed(values) == expected


@pytest.mark.parametrize(
    ("fmt", "values", "expected"),
    [
        (
            "%d/%m/%Y %H:%M",
            ["31/2/2018 10:00", "31/4/2018 10:00", "1/3/2018 10:00", "29/2/2016 10:00"],
            [None, None, _local("2018-03-01 10:00"), _local("2016-02-29 10:00")],
        ),
        (
            "%Y-%m-%d",
            ["2018-02-29", "2019-02-29", "2000-02-29"],
            [None, None, _local("2000-02-29")],
        ),
        # a compound directive (%F = %Y-%m-%d)
        ("%F %H:%M", ["2018-09-31 10:00", "2018-10-01 10:00"], [None, _local("2018-10-01 10:00")]),
        # month names: checked by Python's strptime
        (
            "%d %b %Y",
            ["30 Feb 2018", "1 Mar 2018", "31 Nov 2018"],
            [None, _local("2018-03-01"), None],
        ),
        # an offset: the UTC day is not the written one; 23:30 at -01:00 on 28 February is
        # 00:30 UTC on 1 March, a real date
        (
            "%Y-%m-%dT%H:%M:%S%z",
            ["2018-02-30T10:00:00+0100", "2018-02-28T23:30:00-0100"],
            [None, pd.Timestamp("2018-03-01 00:30", tz=UTC).tz_convert(ZONE)],
        ),
    ],
)
def test_impossible_dates_are_unread_with_a_given_format(fmt, values, expected):
    assert _parsed(values, fmt) == expected


def test_impossible_dates_are_unread_by_the_distinct_value_path():
    first = ["02/13/2018 10:00:00 AM", "02/14/2018 11:00:00 AM"] * 5
    later = ["02/29/2018 10:00:00 AM", "2/30/2018 10:00:00 AM", "02/29/2016 10:00:00 AM"] * 4
    # with the format given (a detected one would read unread values row by row, for ISO 8601)
    fast, rows = _reader(("%m/%d/%Y %I:%M:%S %p",)), _reader(("%m/%d/%Y %I:%M:%S %p",))
    rows._distinct_pays = False
    for reader in (fast, rows):
        reader.read(pa.array(first), np.arange(2, 12))
    assert fast._read_distinct(pa.array(later)) is not None  # the path under test
    utc, implausible = fast.read(pa.array(later), np.arange(12, 24))
    utc_rows, _ = rows.read(pa.array(later), np.arange(12, 24))
    assert np.array_equal(utc, utc_rows)
    leap = int(pd.Timestamp("2016-02-29 16:00", tz=UTC).value)  # 10:00 CST
    assert utc[:3].tolist() == [NAT, NAT, leap]
    assert not implausible.any()


def _incidents_csv(path: Path, dates: list[str]) -> Path:
    rows = [f"{i},{d},THEFT,41.88,-87.63" for i, d in enumerate(dates, start=1)]
    path.write_text("ID,Date,Primary Type,Latitude,Longitude\n" + "\n".join(rows) + "\n")
    return path


def test_incident_reader_rejects_impossible_dates_with_their_lines(tmp_path):
    path = _incidents_csv(
        tmp_path / "impossible.csv",
        [
            "02/13/2018 10:00:00 AM",  # line 2
            "02/29/2018 10:00:00 AM",  # line 3: 2018 is no leap year
            "02/29/2016 10:00:00 AM",  # line 4: 2016 is
            "04/31/2018 11:00:00 PM",  # line 5
            "2/30/2018 1:00:00 PM",  # line 6: unpadded (strptime)
            "3/1/2018 1:00:00 PM",  # line 7
            "31/02/2018 10:00:00 AM",  # line 8: day-first, in a month-first column
        ],
    )
    result = read_incidents(path, mapping=ColumnMapping(date_format="%m/%d/%Y %I:%M:%S %p"))
    assert result.rows_read == 7
    assert result.rows_accepted + result.rows_rejected == result.rows_read
    rejected = result.rejected.set_index("line")
    assert rejected.index.tolist() == [3, 5, 6, 8]
    assert set(rejected["reason"]) == {REASONS["bad_date"]}
    assert rejected.loc[3, "value"] == "02/29/2018 10:00:00 AM"
    assert set(rejected["column"]) == {"Date"}
    stored = result.incidents.set_index(schema.INCIDENT_ID)[schema.OCCURRED_AT]
    assert stored["3"] == _local("2016-02-29 10:00")
    assert stored["6"] == _local("2018-03-01 13:00")
    # detected rather than given: the same rows
    detected = read_incidents(
        _incidents_csv(
            tmp_path / "detected.csv",
            ["02/13/2018 10:00:00 AM", "02/29/2018 10:00:00 AM", "02/29/2016 10:00:00 AM"],
        )
    )
    assert detected.rejected["line"].tolist() == [3]
    assert detected.rejected["reason"].tolist() == [REASONS["bad_date"]]


def test_calls_reader_rejects_impossible_dates(tmp_path):
    with gzip.open(CAD, "rt", encoding="utf-8") as handle:
        frame = pd.read_csv(handle, dtype=str, keep_default_na=False, nrows=6)
    time_columns = [c for c in frame.columns if c.startswith(("Time_", "Response_Date"))]
    # line 3: every time of the call on 31 June (read as 1 July by strptime before)
    frame.loc[1, time_columns] = frame.loc[1, time_columns].str.replace("2020-06-21", "2020-06-31")
    path = tmp_path / "calls.csv"
    frame.to_csv(path, index=False)
    mapping = CallMapping.from_file(MPLS / "calls_mapping.toml")
    parts = list(read_calls(path, mapping, timezone=ZONE, analysis_crs="EPSG:26915", now=NOW))
    accepted = pd.concat([a for a, _, _ in parts])
    rejected = pd.concat([r for _, r, _ in parts])
    assert sum(n for _, _, n in parts) == 6 == len(accepted) + len(rejected)
    assert rejected["line"].tolist() == [3]
    assert rejected["reason"].tolist() == [REASONS["bad_date"]]
    assert rejected["value"].tolist() == [frame.loc[1, "Response_Date"]]
    assert frame.loc[1, "Response_Date"].startswith("2020-06-31")


# --- Unix epoch seconds -----------------------------------------------------------------------


def test_epoch_seconds_are_instants_not_local_wall_times():
    # 1514764800 is 2018-01-01 00:00 UTC: 2017-12-31 18:00 in Chicago (CST, UTC-6)
    parsed, used = parse_timestamps(
        pd.Series(["1514764800", "1530403200", ""]), timezone=ZONE, date_format="%s"
    )
    assert used == "%s"
    assert parsed.iloc[0] == _local("2017-12-31 18:00")
    assert parsed.iloc[1] == _local("2018-06-30 19:00")  # 2018-07-01 00:00 UTC, CDT
    assert pd.isna(parsed.iloc[2])
    # mixed with wall times in one column: each read as what it is
    reader = _reader(("%m/%d/%Y %H:%M", "%s"))
    utc, _ = reader.read(pa.array(["01/01/2018 00:00", "1514764800"]), np.array([2, 3]))
    assert utc.tolist() == [1514786400 * 10**9, 1514764800 * 10**9]  # 00:00 CST = 06:00 UTC


def test_offsets_read_by_a_given_format_are_instants():
    parsed = _parsed(["2018-01-01T10:00:00+0100", "2018-07-01T10:00:00Z"], "%Y-%m-%dT%H:%M:%S%z")
    assert parsed == [_local("2018-01-01 03:00"), _local("2018-07-01 05:00")]


def test_epoch_seconds_by_distinct_values_equal_rows():
    batch = ["1514764800", "1514768400", "", "not a time"] * 5
    fast, rows = _reader(("%s",)), _reader(("%s",))
    rows._distinct_pays = False
    for _ in range(2):
        got = fast.read(pa.array(batch), np.arange(len(batch)))
        want = rows.read(pa.array(batch), np.arange(len(batch)))
        assert np.array_equal(got[0], want[0])
    assert got[0][:4].tolist() == [1514764800 * 10**9, 1514768400 * 10**9, NAT, NAT]


def test_a_column_of_epoch_seconds_is_refused_with_the_format_to_pass(tmp_path):
    path = _incidents_csv(tmp_path / "epoch.csv", ["1514764800", "1514768400", "1514772000"])
    with pytest.raises(InputError) as caught:
        read_incidents(path, now=NOW)
    message = str(caught.value)
    assert f"{path}, column 'Date'" in message
    assert "look like Unix epoch seconds (line 2 '1514764800' is 2018-01-01 00:00 UTC)" in message
    assert "Pass --date-format %s" in message
    # given the format, every row is read, in the department's zone
    read = read_incidents(path, mapping=ColumnMapping(date_format="%s"), now=NOW)
    assert (read.rows_read, read.rows_accepted) == (3, 3)
    assert read.incidents[schema.OCCURRED_AT].iloc[0] == _local("2017-12-31 18:00")
    assert dates_note(["%s"], ZONE) in read.notes


def test_an_integer_parquet_column_of_epoch_seconds(tmp_path):
    table = pa.table(
        {
            "ID": ["1", "2"],
            "Date": pa.array([1514764800, 1530403200], type=pa.int64()),
            "Primary Type": ["THEFT", "BATTERY"],
            "Latitude": [41.88, 41.89],
            "Longitude": [-87.63, -87.64],
        }
    )
    path = tmp_path / "epoch.parquet"
    pq.write_table(table, path)
    with pytest.raises(InputError, match=r"Unix epoch seconds .*line 1 '1514764800'"):
        read_incidents(path, now=NOW)
    read = read_incidents(path, mapping=ColumnMapping(date_format="%s"), now=NOW)
    assert read.incidents[schema.OCCURRED_AT].tolist() == [
        _local("2017-12-31 18:00"),
        _local("2018-06-30 19:00"),
    ]


def test_compact_dates_are_not_taken_for_epoch_seconds():
    # 14 digits: %Y%m%d%H%M%S, read as before
    assert _parsed(["20180101100000", "20180102113000"]) == [
        _local("2018-01-01 10:00"),
        _local("2018-01-02 11:30"),
    ]


# --- two-digit years --------------------------------------------------------------------------


def test_a_year_of_two_digits_is_not_read_by_a_four_digit_year_format():
    assert _parsed(["1/1/18", "01/01/2018"], "%m/%d/%Y") == [None, _local("2018-01-01")]
    # a year strptime reads but nanoseconds cannot hold (2586) is implausible, never another date
    utc, implausible = _reader(("%Y-%m-%d",)).read(
        pa.array(["2586-01-01", "2018-01-01"]), np.array([2, 3])
    )
    assert implausible.tolist() == [True, False]
    assert utc[1] == 1514786400 * 10**9


@pytest.mark.parametrize(
    ("values", "advice"),
    [
        (
            ["01/01/18 02:16", "01/02/18 03:00"],
            "Pass --date-format '%m/%d/%y %H:%M' (month first) or --date-format "
            "'%d/%m/%y %H:%M' (day first)",
        ),
        (
            ["1/1/18 2:16 AM", "1/13/18 3:00 PM"],
            "Pass --date-format '%m/%d/%y %I:%M %p' (month first: 1 can only be read so)",
        ),
        (["13.01.18"], "Pass --date-format '%d.%m.%y'"),
    ],
)
def test_two_digit_years_are_refused_with_the_y_format(values, advice):
    with pytest.raises(InputError) as caught:
        parse_timestamps(pd.Series(values), timezone=ZONE)
    message = str(caught.value)
    assert f"look like two-digit years (line 1 {values[0]!r})" in message
    assert advice in message


def test_two_digit_years_in_a_file_name_the_line_and_read_with_the_format(tmp_path):
    path = _incidents_csv(tmp_path / "yy.csv", ["1/1/18 2:16 AM", "1/13/18 3:00 PM"])
    with pytest.raises(InputError) as caught:
        read_incidents(path, now=NOW)
    assert f"{path}, column 'Date'" in str(caught.value)
    assert "line 2 '1/1/18 2:16 AM'" in str(caught.value)
    read = read_incidents(path, mapping=ColumnMapping(date_format="%m/%d/%y %I:%M %p"), now=NOW)
    assert read.incidents[schema.OCCURRED_AT].tolist() == [
        _local("2018-01-01 02:16"),
        _local("2018-01-13 15:00"),
    ]


def test_four_digit_years_among_a_few_two_digit_ones_are_read():
    # the column's format is found; the odd two-digit value is one unparseable date
    values = ["01/13/2018 10:00", "01/14/2018 10:00", "01/15/2018 10:00", "1/1/18 10:00"]
    parsed, used = parse_timestamps(pd.Series(values), timezone=ZONE)
    assert used == "%m/%d/%Y %H:%M"
    assert parsed.iloc[0] == _local("2018-01-13 10:00")
    assert pd.isna(parsed.iloc[3])
