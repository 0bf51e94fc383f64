"""The reader's shortcuts give what the direct computations give.

- :func:`geodata.readers._trim` skips the trim when no value can start or end with whitespace:
  checked against Arrow's ``utf8_trim_whitespace`` on awkward strings (Unicode spaces, control
  characters, empty strings, nulls, slices) and on every text column of the bundled samples;
- :class:`~geodata.dates.DateReader` parses each distinct value once after its first batch:
  checked against its row-by-row reading on the bundled samples' dates and on awkward values
  (the autumn hour that occurs twice, the spring gap, blanks, bad and implausible dates, a
  format or an ISO offset first seen in a later batch), and against hand-computed instants;
- ``DateReader._localize`` finds the zone's offset once per hour: checked against Arrow's
  ``assume_timezone`` on every value, in zones whose offsets change on the hour, on the half
  hour and at odd local times.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from geodata.dates import DateReader
from geodata.readers import _trim

_AWKWARD = [
    "plain",
    " leading",
    "trailing ",
    "\ttab",
    "newline\n",
    "\x1cfile separator",
    "unit separator\x1f",
    "\u00a0no-break space",
    "ideographic space\u3000",
    "caf\u00e9",
    "\u00e9t\u00e9",
    "",
    None,
    "   ",
    "in the middle is fine",
]


def _trimmed_as_arrow(values: pa.Array) -> list[object]:
    return pc.utf8_trim_whitespace(values).to_pylist()


@pytest.mark.parametrize("kind", [pa.string(), pa.large_string()])
def test_trim_equals_arrow_on_awkward_strings(kind):
    for value in _AWKWARD:
        # each awkward value alone among plain ones, at the start, the middle and the end
        for position in (0, 2, 4):
            texts = ["abc", "de", "f", "gh", "ij"]
            texts.insert(position, value)
            values = pa.array(texts, type=kind)
            assert _trim(values).to_pylist() == _trimmed_as_arrow(values), (value, position)
    every = pa.array(_AWKWARD, type=kind)
    assert _trim(every).to_pylist() == _trimmed_as_arrow(every)
    # a slice starts inside the buffers
    assert _trim(every.slice(1, 5)).to_pylist() == _trimmed_as_arrow(every.slice(1, 5))


def test_trim_returns_plain_columns_themselves():
    plain = pa.array(["031XX W MADISON ST", "", None, "0820", "x"])
    assert _trim(plain) is plain
    assert _trim(pa.array([], pa.string())).to_pylist() == []
    assert _trim(pa.array(["", None])).to_pylist() == ["", None]
    padded = pa.array(["0820", "0820 "])
    assert _trim(padded).to_pylist() == ["0820", "0820"]


@pytest.mark.parametrize(
    "sample",
    [
        "chicago/incidents_2023-2024_sample_a.csv.gz",
        "seattle/spd_crime_2018.csv.gz",
        "minneapolis/mpd_cad_2020-06-21_to_2020-07-13.csv.gz",
    ],
)
def test_trim_equals_arrow_on_every_sample_column(samples_dir, sample):
    frame = pd.read_csv(samples_dir.parent / sample, dtype=str, keep_default_na=False)
    for name in frame.columns:
        values = pa.array(frame[name].tolist(), type=pa.string())
        assert _trim(values).equals(pc.utf8_trim_whitespace(values)), name


def _reader(formats: tuple[str, ...] = ()) -> DateReader:
    return DateReader(
        path="x.csv",
        column="date",
        timezone="America/Chicago",
        formats=formats,
        now=datetime(2025, 6, 1, tzinfo=UTC),
    )


def _read_both(
    batches: list[list[str | None]], formats: tuple[str, ...] = (), *, distinct: bool = True
):
    """Read `batches` with the distinct-value path allowed and with rows only; return both."""
    fast, rows = _reader(formats), _reader(formats)
    rows._distinct_pays = False
    taken = []  # batches the distinct path read (the test is about that path)
    read_distinct = fast._read_distinct

    def spy(text: pa.Array):
        found = read_distinct(text)
        taken.append(found is not None)
        return found

    fast._read_distinct = spy  # type: ignore[method-assign]
    got, want = [], []
    line = 2
    for texts in batches:
        text = pa.array(texts, type=pa.string())
        lines = np.arange(line, line + len(texts))
        line += len(texts)
        got.append(fast.read(text, lines))
        want.append(rows.read(text, lines))
    assert fast.used_formats == rows.used_formats
    assert any(taken) == distinct
    return got, want


def _assert_same(got, want) -> None:
    for (utc, implausible), (utc_rows, implausible_rows) in zip(got, want, strict=True):
        assert np.array_equal(utc, utc_rows)
        assert np.array_equal(implausible, implausible_rows)


_NAT = np.iinfo(np.int64).min


def test_distinct_dates_equal_rows_on_awkward_values():
    first = ["01/15/2024 10:00:00 PM", "01/16/2024 11:30:00 AM", "12/31/2023 11:59:59 PM"] * 4
    later = [
        "11/03/2024 01:30:00 AM",  # the autumn hour that occurs twice: the first (CDT) reading
        "03/10/2024 02:30:00 AM",  # in the spring gap: the first valid instant (03:00 CDT)
        "",
        None,
        "01/01/1899 10:00:00 AM",  # implausible: before 1990
        "01/15/2024 10:00:00 PM",
        "01/15/2024 10:00:00 PM",
        "07/04/2030 09:00:00 AM",  # implausible: after now
    ] * 3
    got, want = _read_both([first, later])
    _assert_same(got, want)
    utc, implausible = got[1]
    # by hand: 01:30 CDT (UTC-5) = 06:30 UTC; 03:00 CDT = 08:00 UTC; 22:00 CST (UTC-6) = 04:00
    expect = [
        datetime(2024, 11, 3, 6, 30, tzinfo=UTC),
        datetime(2024, 3, 10, 8, 0, tzinfo=UTC),
    ]
    assert [pd.Timestamp(v, tz=UTC) for v in utc[:2]] == expect
    assert pd.Timestamp(utc[5], tz=UTC) == pd.Timestamp("2024-01-16 04:00", tz=UTC)
    assert utc[2] == _NAT
    assert utc[3] == _NAT
    assert implausible.tolist()[:8] == [False, False, False, False, True, False, False, True]


def test_distinct_dates_equal_rows_when_a_later_batch_brings_new_formats():
    first = ["2024-01-15 22:00:00", "2024-01-16 11:30:00"] * 5
    later = [
        "2024-01-15 22:00:00",
        "2024-01-15T22:00:00",  # a format first seen here
        "2024-01-15T22:00:00-05:00",  # ISO 8601 with an offset
        "not a date",
        "",
    ] * 2
    got, want = _read_both([first, later, first])
    _assert_same(got, want)
    utc = got[1][0]
    assert pd.Timestamp(utc[2], tz=UTC) == pd.Timestamp("2024-01-16 03:00", tz=UTC)
    assert utc[3] == _NAT


def test_distinct_dates_equal_rows_with_explicit_formats():
    batch = ["15.01.2024 22:00", "bad", "", "16.01.2024 11:30", "15.01.2024 22:00"] * 3
    got, want = _read_both([batch, batch], formats=("%d.%m.%Y %H:%M",))
    _assert_same(got, want)
    assert got[0][0][1] == _NAT


@pytest.mark.parametrize(
    ("sample", "column", "distinct"),
    [
        ("chicago/incidents_2023-2024_sample_a.csv.gz", "Date", True),
        # ISO 8601 with milliseconds: no strptime format, every batch read row by row
        ("seattle/spd_crime_2018.csv.gz", "offense_start_datetime", False),
        ("minneapolis/mpd_cad_2020-06-21_to_2020-07-13.csv.gz", "Response_Date", True),
        ("minneapolis/mpd_cad_2020-06-21_to_2020-07-13.csv.gz", "Time_First_Unit_Arrived", True),
    ],
)
def test_distinct_dates_equal_rows_on_sample_dates(samples_dir, sample, column, distinct):
    frame = pd.read_csv(samples_dir.parent / sample, dtype=str, keep_default_na=False)
    texts = [v.strip() for v in frame[column].tolist()]
    # batches of 1,000 values, each repeated so that the distinct path pays
    batches = [texts[i : i + 1000] * 3 for i in range(0, min(len(texts), 6000), 1000)]
    got, want = _read_both(batches, distinct=distinct)
    _assert_same(got, want)
    assert sum(int((utc != _NAT).sum()) for utc, _ in got) > 0


@pytest.mark.parametrize(
    "zone",
    [
        "America/Chicago",  # the autumn hour twice, the spring gap, on the hour
        "Australia/Lord_Howe",  # half-hour changes of offset
        "Asia/Kathmandu",  # a +05:45 offset
        "America/St_Johns",  # -03:30, changes at 02:00 local
        "Europe/London",
        "UTC",
    ],
)
def test_localize_by_hour_equals_arrow_on_every_value(zone):
    # wall times every 7 minutes over three years (each change of offset met at many minutes,
    # each hour repeated enough for the per-hour path), with missing values among them
    start = np.datetime64("2019-01-01T00:00", "ns").astype(np.int64)
    naive = np.arange(start, start + 3 * 365 * 86_400 * 10**9, 7 * 60 * 10**9)
    naive[::97] = np.iinfo(np.int64).min
    reader = _reader()
    reader.timezone = zone
    got = reader._localize(naive)
    valid = naive != np.iinfo(np.int64).min
    expected = pc.cast(
        pc.assume_timezone(
            pa.array(naive[valid], type=pa.timestamp("ns")),
            zone,
            ambiguous="earliest",
            nonexistent="latest",
        ),
        pa.int64(),
    ).to_numpy()
    assert (got[~valid] == np.iinfo(np.int64).min).all()
    assert np.array_equal(got[valid], expected)
    # a Chicago wall time in the autumn hour takes its first (daylight) reading, by hand
    if zone == "America/Chicago":
        at = np.datetime64("2020-11-01T01:30", "ns").astype(np.int64)
        assert reader._localize(np.full(3, at))[0] == at + 5 * 3_600 * 10**9
