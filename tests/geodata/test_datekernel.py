"""The fixed-width date fast path reads exactly what Arrow's strptime reads, or leaves it."""

from __future__ import annotations

import random

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pytest

from geodata._datekernel import fixed_format, read_fixed
from geodata.dates import DATE_FORMATS

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
        ("2021-02-29 10:00:00", "%Y-%m-%d %H:%M:%S"),  # strptime rolls it over into March
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
