"""The fixed-width date fast path reads exactly what Arrow's strptime reads, or leaves it.

What it leaves because it is no calendar date (31 February) Arrow's strptime rolls over into
the next month; :func:`geodata.dates._strptime` finds those readings (:func:`month_starts`) and
refuses them, so both read the same values the same way.
"""

from __future__ import annotations

import random
from datetime import date, timedelta

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from geodata._datekernel import fixed_format, month_starts, read_fixed
from geodata.dates import DATE_FORMATS, _strptime

FIELDS = {"Y": (0, 9999), "m": (0, 13), "d": (0, 32), "H": (0, 25), "I": (0, 13), "M": (0, 61)}


def _values(fmt: str, n: int, rng: random.Random) -> list[str]:
    """Render `n` timestamps in `fmt`, many invalid (out of range, a changed or extra byte)."""
    out = []
    for _ in range(n):
        parts = {f: f"{rng.randint(*span):0{4 if f == 'Y' else 2}d}" for f, span in FIELDS.items()}
        if rng.random() < 0.7:
            parts["Y"] = f"{rng.randint(1900, 2030):04d}"
        parts["S"] = f"{rng.randint(0, 61):02d}"
        parts["p"] = rng.choice(["AM", "PM", "AM", "PM", "am", "Pm", "XM"])
        text = ""
        i = 0
        while i < len(fmt):
            if fmt[i] == "%":
                text += parts[fmt[i + 1]]
                i += 2
            else:
                text += fmt[i]
                i += 1
        r = rng.random()
        if r < 0.1:
            j = rng.randrange(len(text))
            text = text[:j] + rng.choice("0a /:-T") + text[j + 1 :]
        elif r < 0.15:
            text += rng.choice([" ", "0", "Z"])
        elif r < 0.2:
            text = text[1:]
        out.append(text)
    return out


@pytest.mark.parametrize("fmt", [f for f in DATE_FORMATS if fixed_format(f) is not None])
def test_every_value_read_fast_is_what_strptime_reads(fmt: str) -> None:
    rng = random.Random(fmt)
    text = pa.array(_values(fmt, 4_000, rng))
    fixed = fixed_format(fmt)
    assert fixed is not None
    seconds, done = read_fixed(text, np.arange(len(text)), fixed)
    reference = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    valid = reference.is_valid().to_numpy(zero_copy_only=False)
    expected = pc.cast(pc.fill_null(reference, 0), pa.int64()).to_numpy()
    assert done.sum() > len(text) // 4  # the fast path reads most well-formed values
    assert valid[done].all()  # nothing strptime refuses
    np.testing.assert_array_equal(seconds[done], expected[done])
    # a slice of the array, and only some rows asked for
    rows = np.arange(0, len(text) - 5, 3)
    part_seconds, part_done = read_fixed(text.slice(5), rows, fixed)
    np.testing.assert_array_equal(part_done[rows], done[rows + 5])
    np.testing.assert_array_equal(
        part_seconds[rows][part_done[rows]], seconds[rows + 5][done[rows + 5]]
    )
    assert not np.delete(part_done, rows).any()


@pytest.mark.parametrize(
    ("value", "fmt", "expected"),
    [
        ("2024-02-29 23:59:59", "%Y-%m-%d %H:%M:%S", 1709251199),
        ("1969-12-31 23:59:59", "%Y-%m-%d %H:%M:%S", -1),
        ("2000-03-01", "%Y-%m-%d", 951868800),
        ("06/22/2021 12:31:12 AM", "%m/%d/%Y %I:%M:%S %p", 1624321872),
        ("06/22/2021 12:31:12 PM", "%m/%d/%Y %I:%M:%S %p", 1624365072),
        ("22.06.2021 01:02", "%d.%m.%Y %H:%M", 1624323720),
    ],
)
def test_known_instants(value: str, fmt: str, expected: int) -> None:
    fixed = fixed_format(fmt)
    assert fixed is not None
    seconds, done = read_fixed(pa.array([value]), np.zeros(1, dtype=np.int64), fixed)
    assert done[0]
    assert seconds[0] == expected


@pytest.mark.parametrize(
    ("value", "fmt"),
    [
        ("2021-02-29 10:00:00", "%Y-%m-%d %H:%M:%S"),  # no date (Arrow rolls it into March)
        ("2021-06-22 23:59:60", "%Y-%m-%d %H:%M:%S"),  # strptime reads a leap second
        ("2021-6-22 1:31:12", "%Y-%m-%d %H:%M:%S"),  # unpadded: strptime reads it
        ("06/22/2021 00:31:12 AM", "%m/%d/%Y %I:%M:%S %p"),
        ("06/22/2021 01:31:12 am", "%m/%d/%Y %I:%M:%S %p"),
        ("0000-01-01", "%Y-%m-%d"),
    ],
)
def test_values_left_to_strptime(value: str, fmt: str) -> None:
    fixed = fixed_format(fmt)
    assert fixed is not None
    _, done = read_fixed(pa.array([value]), np.zeros(1, dtype=np.int64), fixed)
    assert not done[0]


@pytest.mark.parametrize(
    "fmt", ["%d/%m/%y", "%d %b %Y", "%Y-%j", "%Y-%m-%d %Y", "%m/%d/%Y %I:%M", "%H:%M"]
)
def test_formats_without_a_fixed_width_reading(fmt: str) -> None:
    assert fixed_format(fmt) is None


def _render(fmt: str, when: tuple[int, int, int]) -> str:
    year, month, day = when
    parts = {"Y": f"{year:04d}", "m": f"{month:02d}", "d": f"{day:02d}", "H": "22", "I": "10"}
    parts.update({"M": "05", "S": "07", "p": "PM"})
    return "".join(parts.get(c, c) for c in fmt.replace("%", ""))


@pytest.mark.parametrize("fmt", [f for f in DATE_FORMATS if fixed_format(f) is not None])
def test_checked_strptime_reads_what_the_kernel_reads_at_month_ends(fmt: str) -> None:
    # days 27 to 31 of every month of common, leap and century years, and the first days
    when = [
        (year, month, day)
        for year in (1900, 2000, 2016, 2018, 2020, 2100)
        for month in range(1, 13)
        for day in (1, 2, 3, 27, 28, 29, 30, 31)
    ]
    text = pa.array([_render(fmt, w) for w in when])
    fixed = fixed_format(fmt)
    assert fixed is not None
    seconds, done = read_fixed(text, np.arange(len(text)), fixed)
    checked = _strptime(text, fmt)
    valid = checked.is_valid().to_numpy(zero_copy_only=False)
    real = np.array([_is_date(*w) for w in when])
    np.testing.assert_array_equal(done, real)  # the kernel reads exactly the real dates
    np.testing.assert_array_equal(valid, real)  # and so does the checked strptime
    read = pc.cast(pc.fill_null(checked, 0), pa.int64()).to_numpy()
    np.testing.assert_array_equal(read[real], seconds[real])
    # each year: 30 and 31 February, the 31st of 4 months; 29 February of 1900, 2018, 2100
    assert real.sum() == 6 * 12 * 8 - 6 * (2 + 4) - 3


def _is_date(year: int, month: int, day: int) -> bool:
    try:
        date(year, month, day)
    except ValueError:
        return False
    return True


def test_month_starts_flags_the_days_a_month_end_rolls_over_to() -> None:
    first = date(1890, 1, 1)
    days = [first + timedelta(days=i) for i in range(0, 80_000)]  # 1890 to 2108
    epoch = date(1970, 1, 1)
    seconds = np.array([(d - epoch).days * 86_400 + 3_599 for d in days], dtype=np.int64)
    valid = np.ones(seconds.size, dtype=bool)
    valid[::7] = False

    def narrow(d: date) -> bool:
        return (d.month == 3 and d.day <= 3) or (d.month in (5, 7, 10, 12) and d.day == 1)

    def wide(d: date) -> bool:
        return (
            (d.month == 2 and d.day >= 28)
            or (d.month == 3 and d.day <= 4)
            or (d.month in (4, 6, 9, 11) and d.day == 30)
            or (d.month in (5, 7, 10, 12) and d.day <= 2)
        )

    np.testing.assert_array_equal(
        month_starts(seconds, valid), np.array([narrow(d) for d in days]) & valid
    )
    flagged = month_starts(seconds, valid, wide=True)
    np.testing.assert_array_equal(flagged, np.array([wide(d) for d in days]) & valid)
    # the day either side of every narrow one is in the wide set
    near = np.array([any(narrow(d + timedelta(days=k)) for k in (-1, 0, 1)) for d in days])
    assert not (near & valid & ~flagged).any()
    # a span too wide to tabulate (the years 1000 and 9999) is worked out value by value
    far = np.array([(date(1000, 3, 2) - epoch).days, (date(9999, 12, 1) - epoch).days]) * 86_400
    assert month_starts(far, np.ones(2, dtype=bool)).tolist() == [True, True]
    assert month_starts(far + 86_400 * 3, np.ones(2, dtype=bool)).tolist() == [False, False]
