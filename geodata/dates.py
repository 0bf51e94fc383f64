"""Dates of an export: the formats tried, the day/month order decided for a whole column.

:class:`DateReader` reads one date column batch after batch (the incident and the calls readers
use it); :func:`parse_timestamps` reads a column of values at once.
Every format reads real calendar dates only: Arrow's ``strptime``, which rolls 31 February over
into March, is checked (:func:`_strptime`).
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from zoneinfo import ZoneInfo

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from geodata._datekernel import fixed_format, month_starts, read_fixed
from geodata.errors import InputError

__all__ = [
    "DATE_FORMATS",
    "DEFAULT_EARLIEST_YEAR",
    "EPOCH_SECONDS",
    "MIN_EVIDENCE_SHARE",
    "NAT",
    "TWO_DIGIT_YEAR",
    "DateReader",
    "dates_note",
    "format_tuple",
    "formats_of_dates_note",
    "parse_timestamps",
]

#: Dates before 1 January of this year are rejected unless a department says otherwise.
DEFAULT_EARLIEST_YEAR = 1990

#: Timestamp formats detected, most specific first. Month-first (``%m`` before ``%d``) and
#: day-first formats are never mixed in one column: see :class:`DateReader`.
DATE_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%m-%d-%Y %I:%M:%S %p",
    "%m-%d-%Y %I:%M %p",
    "%m-%d-%Y %H:%M:%S",
    "%m-%d-%Y %H:%M",
    "%m-%d-%Y",
    "%d/%m/%Y %I:%M:%S %p",
    "%d/%m/%Y %I:%M %p",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d/%m/%Y",
    "%d-%m-%Y %I:%M:%S %p",
    "%d-%m-%Y %I:%M %p",
    "%d-%m-%Y %H:%M:%S",
    "%d-%m-%Y %H:%M",
    "%d-%m-%Y",
    "%d.%m.%Y %H:%M:%S",
    "%d.%m.%Y %H:%M",
    "%d.%m.%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%Y/%m/%d",
    "%Y%m%d%H%M%S",
    "%Y%m%d %H%M",
)

# Header synonyms after normalisation (lower case, non-alphanumerics -> "_"), best first.

#: A missing timestamp (NaT) as int64 nanoseconds, as :class:`DateReader` returns it.
NAT = np.iinfo(np.int64).min
_HOUR_NS = 3_600_000_000_000
_DAY_MONTH = re.compile(r"^%([md])([/-])%([md])")
_EVIDENCE = r"^(?P<a>\d{1,2})[/-](?P<b>\d{1,2})[/-]\d{4}"
_ISO = r"^\d{4}-\d{2}-\d{2}[T ]\d{2}:\d{2}"
_OFFSET = r"(Z|[+-]\d{2}(:?\d{2})?)$"
#: Share of dates that must be readable one way only before that order is taken.
MIN_EVIDENCE_SHARE = 0.05


def _order(fmt: str) -> str | None:
    """Return ``"mdy"``/``"dmy"`` for a month-first/day-first format, None otherwise."""
    match = _DAY_MONTH.match(fmt)
    if match is None or match.group(1) == match.group(3):
        return None
    return "mdy" if match.group(1) == "m" else "dmy"


def _swap(fmt: str) -> str:
    return fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")


#: Compound strptime directives, spelt out before a format's fields are looked at.
_COMPOUND = {"D": "%m/%d/%y", "F": "%Y-%m-%d", "T": "%H:%M:%S", "R": "%H:%M"}
_DIRECTIVE = re.compile(r"%(.)")
#: Seconds kept from a reading: beyond them (years before 1678 or after 2261) nanoseconds
#: overflow; a date clipped to them is outside every plausible window.
_SECONDS_LIMIT = 9_200_000_000
#: 1000-01-01 in seconds since 1970: a ``%Y`` year before it was written with under 4 digits.
_YEAR_1000 = -30_610_224_000
#: Unix epoch seconds (1973-03-03 to 5138): 9 to 11 digits.
EPOCH_SECONDS = r"^\d{9,11}$"
#: A slash, dash or dot date whose year has two digits: ``1/1/18 2:16 AM``, ``01.01.18``.
TWO_DIGIT_YEAR = r"^\d{1,2}[/.-]\d{1,2}[/.-]\d{2}(?:[ T]|$)"
_EVIDENCE_TWO_DIGIT = r"^(?P<a>\d{1,2})[/-](?P<b>\d{1,2})[/-]\d{2}(?:[ T]|$)"


@functools.lru_cache(maxsize=256)
def _fields(fmt: str) -> tuple[str, frozenset[str]]:
    """Return `fmt` with its compound directives spelt out, and the directives it holds."""
    spelt = _DIRECTIVE.sub(lambda m: _COMPOUND.get(m.group(1), m.group(0)), fmt)
    return spelt, frozenset(_DIRECTIVE.findall(spelt))


def _instant(fmt: str) -> bool:
    """Return whether `fmt` reads instants (``%s`` epoch seconds, ``%z`` an offset)."""
    return bool(_fields(fmt)[1] & {"s", "z"})


def _strptime(text: pa.Array, fmt: str) -> pa.Array:
    """Return `text` read with `fmt` (seconds; null where unread), real calendar dates only.

    Arrow's ``strptime`` reads ``31/02/2018`` as 3 March and ``18`` for ``%Y`` as the year 18;
    such values are null here, as every value `fmt` does not read. Instant formats (``%s``,
    ``%z``) give UTC seconds.
    """
    parsed = pc.strptime(text, format=fmt, unit="s", error_is_null=True)
    spelt, fields = _fields(fmt)
    short_year, days = "Y" in fields, bool(fields & {"d", "e"})
    if parsed.null_count == len(parsed) or not (short_year or days):
        return parsed
    valid = parsed.is_valid().to_numpy(zero_copy_only=False)
    filled = pc.fill_null(parsed, pa.scalar(0, parsed.type))
    seconds = np.asarray(pc.cast(filled, pa.int64()).to_numpy(zero_copy_only=False))
    bad = np.zeros(len(parsed), dtype=bool)
    if short_year:  # a year read from fewer than four digits
        bad |= valid & (seconds < _YEAR_1000)
    if days:
        _rolled_over(text, parsed, seconds, valid & ~bad, spelt, fields, bad)
    if not bad.any():
        return parsed
    return pc.if_else(pa.array(bad), pa.scalar(None, parsed.type), parsed)


def _rolled_over(
    text: pa.Array,
    parsed: pa.Array,
    seconds: np.ndarray,
    valid: np.ndarray,
    fmt: str,
    fields: frozenset[str],
    out: np.ndarray,
) -> None:
    """Set `out` where `parsed` (`seconds`, read from `text` with `fmt`) passed a month's end.

    A day past the month's end (30 February, 31 April) is read as the first days of the next
    month: only those readings are checked (:func:`~geodata._datekernel.month_starts`). `fmt`
    reads them again with its month read as an hour (``%I``: the same digits, 1 to 12), which
    leaves the month January, so the day comes out as written and differs from the day read
    when it rolled over. Formats naming the month otherwise (``%b``) or reading an offset
    (``%z``: the instant's UTC day may be a day off the written one, so the days around are
    checked) are checked by Python's ``strptime``, which refuses such days.
    """
    offset = "z" in fields
    idx = np.flatnonzero(month_starts(seconds, valid, wide=offset))
    if not idx.size:
        return
    values = text.take(pa.array(idx))
    unknown = np.ones(idx.size, dtype=bool)
    if "m" in fields and not offset and not fields & {"b", "B", "h", "j", "U", "W", "c", "x"}:
        as_hour = _DIRECTIVE.sub(lambda m: "%I" if m.group(1) == "m" else m.group(0), fmt)
        written = pc.day(pc.strptime(values, format=as_hour, unit="s", error_is_null=True))
        known = written.is_valid().to_numpy(zero_copy_only=False)
        written_day = np.asarray(pc.fill_null(written, 0).to_numpy(zero_copy_only=False))
        read_day = np.asarray(pc.day(parsed.take(pa.array(idx))).to_numpy(zero_copy_only=False))
        out[idx[known]] = written_day[known] != read_day[known]
        unknown = ~known
    if unknown.any():
        rest = values.filter(pa.array(unknown)).to_pylist()
        for i, value in zip(idx[unknown], rest, strict=True):
            out[i] = _python_refuses_day(value, fmt)


@functools.lru_cache(maxsize=4096)
def _python_refuses_day(value: str, fmt: str) -> bool:
    """Return whether Python's ``strptime`` finds the day of `value` past its month's end."""
    try:
        datetime.strptime(value, fmt)
    except ValueError as err:
        return "day is out of range" in str(err)
    return False


def _seconds_ns(seconds: np.ndarray) -> np.ndarray:
    """Return `seconds` as nanoseconds, far years clipped (see :data:`_SECONDS_LIMIT`)."""
    seconds = np.clip(seconds.astype(np.int64, copy=False), -_SECONDS_LIMIT, _SECONDS_LIMIT)
    return seconds * 1_000_000_000


class DateReader:
    """Read one date column, batch after batch, with its format(s) decided for the whole column.

    Without explicit formats, the formats of :data:`DATE_FORMATS` that parse the values are
    found; where values could be month-first or day-first (``02/12/2025``) the order is decided
    from the values that can only be read one way (a day above 12). The column is refused
    (:class:`~geodata.errors.InputError`) when it has values that can only be month-first and
    others that can only be day-first (conflicting), or when nothing decides the order, or only
    a handful of values (under :data:`MIN_EVIDENCE_SHARE`; likely typos) do (ambiguous). Values
    that match none of the formats fall back to ISO 8601 with an offset. Naive times are local to
    `timezone`: in the autumn hour that occurs twice the first (daylight) reading is taken; times
    in the spring gap move to the first valid instant, as CAD clocks do; ``%s`` (epoch seconds)
    and ``%z`` values are instants. Dates before 1 January of `earliest_year` or after now plus
    one day are flagged as implausible.

    Only real calendar dates are read (``31/02/2018`` is unparseable, never 3 March), and a
    ``%Y`` year has four digits. A column of which no format reads a single value as a plausible
    date is refused, naming the format to pass, when its values look like Unix epoch seconds
    (``--date-format %s``) or dates with two-digit years (``%y``): neither is read unasked.

    Parameters
    ----------
    path, column
        Where the values come from (for messages).
    timezone
        IANA zone of naive timestamps.
    formats
        Explicit strptime formats, tried in order for each value; values matching none are bad.
    earliest_year
        First plausible year.
    now
        The present (default: the clock), for the upper bound.
    """

    def __init__(
        self,
        *,
        path: Path | str,
        column: str,
        timezone: str,
        formats: tuple[str, ...] = (),
        earliest_year: int = DEFAULT_EARLIEST_YEAR,
        now: datetime | None = None,
    ) -> None:
        self.path = Path(path)
        self.column = column
        self.timezone = timezone
        self.explicit = tuple(formats)
        self.formats: list[str] = list(self.explicit)
        self.order: str | None = None
        self.used_iso = False
        #: Yields ``(date text, lines)`` of the whole column, batch by batch: read when the
        #: first batch cannot decide the day/month order (a file sorted by date may start with
        #: days 1-12 only).
        self.prescan: Callable[[], Iterator[tuple[pa.Array, np.ndarray]]] | None = None
        # a zoneinfo zone: pandas looks a zone name up in pytz, whose first lookup of a zone
        # checks the files of all 600 zones (0.2 s)
        low = pd.Timestamp(year=earliest_year, month=1, day=1).tz_localize(ZoneInfo(timezone))
        high = pd.Timestamp(now or datetime.now(UTC)) + pd.Timedelta(days=1)
        if high.tzinfo is None:
            high = high.tz_localize(UTC)
        self.low_ns = int(low.tz_convert(UTC).value)
        self.high_ns = int(high.tz_convert(UTC).value)
        self.earliest_year = earliest_year
        #: Whether the values repeat enough to be parsed once each (see `_read_distinct`).
        self._distinct_pays = True

    @property
    def used_formats(self) -> list[str]:
        """Return the formats in use (plus ``ISO8601`` when offsets were read)."""
        return self.formats + (["ISO8601"] if self.used_iso else [])

    def read(self, text: pa.Array, lines: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Return UTC nanoseconds (``NAT`` where missing or unparseable) and implausible flags.

        Parameters
        ----------
        text
            Trimmed date strings (``""`` = missing).
        lines
            File line of each value (for messages).

        Raises
        ------
        InputError
            If the day/month order of the column is ambiguous or conflicting, or the column
            looks like epoch seconds or two-digit years that no format reads.
        """
        if self.formats and self._distinct_pays:
            found = self._read_distinct(text)
            if found is not None:
                return found
        n = len(text)
        naive = np.full(n, NAT, dtype=np.int64)
        instant = np.zeros(n, dtype=bool)
        todo = np.flatnonzero(pc.not_equal(text, "").to_numpy(zero_copy_only=False))
        todo = self._parse(text, todo, self.formats, naive, instant)
        if todo.size and not self.explicit:
            added = self._learn(text.take(pa.array(todo)), lines[todo])
            todo = self._parse(text, todo, added, naive, instant)
        utc = self._to_utc(naive, instant)  # an array of its own (or `naive`): writable
        if todo.size and not self.explicit:
            self._iso(text, todo, utc)
        return utc, self._implausible(utc)

    def _read_distinct(self, text: pa.Array) -> tuple[np.ndarray, np.ndarray] | None:
        """Return what :meth:`read` does, parsing and localising each distinct value once.

        Exports repeat their timestamps (1M Chicago-format rows hold about 20,000 distinct
        ones), so this reads a batch several times faster. None when a value needs more than
        the formats already learnt (a new format, ISO 8601, or a check of the day/month order):
        :meth:`read` then reads the rows themselves, as it does the first batch. Also None,
        from then on, when the values hardly repeat (the encoding would not pay).
        """
        encoded = pc.dictionary_encode(text)
        distinct = encoded.dictionary
        if len(distinct) * 2 > len(text):
            self._distinct_pays = False
            return None
        naive = np.full(len(distinct), NAT, dtype=np.int64)
        instant = np.zeros(len(distinct), dtype=bool)
        todo = np.flatnonzero(pc.not_equal(distinct, "").to_numpy(zero_copy_only=False))
        todo = self._parse(distinct, todo, self.formats, naive, instant)
        if todo.size and not self.explicit:
            return None
        utc_distinct = np.append(self._to_utc(naive, instant), NAT)  # the last: null values
        codes = pc.fill_null(encoded.indices, len(distinct)).to_numpy(zero_copy_only=False)
        utc = utc_distinct[codes]
        return utc, self._implausible(utc)

    def _implausible(self, utc: np.ndarray) -> np.ndarray:
        """Return which read instants (NaT excluded) fall outside the plausible window."""
        return (utc != NAT) & ((utc < self.low_ns) | (utc > self.high_ns))

    def _parse(
        self,
        text: pa.Array,
        todo: np.ndarray,
        formats: list[str],
        out: np.ndarray,
        instant: np.ndarray,
    ) -> np.ndarray:
        """Read the values at `todo` with `formats`, in order; return the indices left unread.

        `out` gets nanoseconds: wall times, or UTC where `instant` is set (``%s``, ``%z``).
        """
        for fmt in formats:
            fixed = fixed_format(fmt)
            if fixed is not None and todo.size:
                # the values of the format's exact width and shape, read without strptime
                seconds, done = read_fixed(text, todo, fixed)
                hit = done[todo]
                out[todo[hit]] = _seconds_ns(seconds[todo[hit]])
                todo = todo[~hit]
            if not todo.size:
                break
            subset = text if todo.size == len(text) else text.take(pa.array(todo))
            parsed = _strptime(subset, fmt)
            ok = parsed.is_valid().to_numpy(zero_copy_only=False)
            if ok.any():
                seconds = pc.cast(parsed, pa.int64()).to_numpy(zero_copy_only=False)
                out[todo[ok]] = _seconds_ns(seconds[ok])
                if _instant(fmt):
                    instant[todo[ok]] = True
                todo = todo[~ok]
        return todo

    def _to_utc(self, naive: np.ndarray, instant: np.ndarray) -> np.ndarray:
        """Return UTC instants (ns, writable): wall times `naive` localised, `instant` ones kept."""
        if not instant.any():
            return self._localize(naive)
        utc = self._localize(np.where(instant, NAT, naive))
        utc[instant] = naive[instant]
        return utc

    def _learn(self, text: pa.Array, lines: np.ndarray) -> list[str]:
        """Find the formats of values no known format reads; decide or check the order."""
        sample = text.slice(0, 20_000)
        candidates = [f for f in DATE_FORMATS if f not in self.formats]
        scores = {f: len(sample) - _strptime(sample, f).null_count for f in candidates}
        if not self.formats and not self.used_iso:  # nothing of the column read yet
            self._refuse_unreadable(sample, lines[: len(sample)], scores)
        day_month = [f for f in candidates if _order(f) and scores[f]]
        if day_month and _order(day_month[0]) is not None:
            self._decide(text, lines, day_month, scores)
        added = [
            f
            for f in sorted(candidates, key=lambda f: -scores[f])
            if scores[f] and _order(f) in (None, self.order)
        ]
        self.formats.extend(added)
        return added

    def _plausible(self, text: pa.Array, fmt: str) -> bool:
        """Return whether `fmt` reads any of `text` as a date inside the plausible window."""
        parsed = _strptime(text, fmt)
        if parsed.null_count == len(parsed):
            return False
        seconds = pc.cast(parsed.drop_null(), pa.int64()).to_numpy(zero_copy_only=False)
        day = 86_400  # a wall time is within a day of its instant
        low, high = self.low_ns // 1_000_000_000 - day, self.high_ns // 1_000_000_000 + day
        return bool(((seconds >= low) & (seconds <= high)).any())

    def _refuse_unreadable(
        self, sample: pa.Array, lines: np.ndarray, scores: dict[str, int]
    ) -> None:
        """Refuse a column that looks like Unix epoch seconds or two-digit years.

        Only when at least half the values (none blank) have that shape and no format reads a
        single one as a plausible date: the message names the ``--date-format`` to pass; the
        column is never read that way unasked.

        Raises
        ------
        InputError
            If the column is refused.
        """
        for pattern in (EPOCH_SECONDS, TWO_DIGIT_YEAR):
            looks = pc.match_substring_regex(sample, pattern).to_numpy(zero_copy_only=False)
            if not looks.any() or looks.sum() * 2 < len(sample):
                continue
            if any(self._plausible(sample, f) for f, score in scores.items() if score):
                return
            values, at = sample.filter(pa.array(looks)), lines[looks]
            where = f"{self.path}, column {self.column!r}"
            example = f"line {int(at[0])} {values[0].as_py()!r}"
            mapping = "or list it under [options] date_format in a mapping file"
            if pattern == EPOCH_SECONDS:
                when = datetime.fromtimestamp(int(values[0].as_py()), UTC)
                msg = (
                    f"{where}: the dates look like Unix epoch seconds ({example} is "
                    f"{when:%Y-%m-%d %H:%M} UTC), which no date format reads. Pass --date-format "
                    f"%s (seconds since 1970-01-01 UTC, shown in {self.timezone}), {mapping}."
                )
            else:
                advice = self._two_digit_advice(values, at)
                msg = (
                    f"{where}: the dates look like two-digit years ({example}), which no date "
                    f"format with a four-digit year (%Y) reads. {advice}, {mapping}; %y reads "
                    "00-68 as 2000-2068 and 69-99 as 1969-1999."
                )
            raise InputError(msg, path=str(self.path), column=self.column)

    @classmethod
    def _two_digit_advice(cls, values: pa.Array, lines: np.ndarray) -> str:
        """Return the ``Pass --date-format ...`` advice for dates with two-digit years."""
        forms = [f.replace("%Y", "%y") for f in DATE_FORMATS if f.startswith(("%m", "%d"))]
        scores = {f: len(values) - _strptime(values, f).null_count for f in forms}
        best = max(forms, key=lambda f: scores[f])  # the first of the best
        if not scores[best]:
            return "Pass --date-format with %y for the year (e.g. '%m/%d/%y %H:%M')"
        if _order(best) is None:
            return f"Pass --date-format '{best}'"
        month_first = best if _order(best) == "mdy" else _swap(best)
        day_first = _swap(month_first)
        evidence = cls._evidence(values, lines, _EVIDENCE_TWO_DIGIT)
        n_m, n_d = evidence["m"][0], evidence["d"][0]
        if n_m and not n_d:
            return f"Pass --date-format '{month_first}' (month first: {n_m:,} can only be read so)"
        if n_d and not n_m:
            return f"Pass --date-format '{day_first}' (day first: {n_d:,} can only be read so)"
        return (
            f"Pass --date-format '{month_first}' (month first) or --date-format '{day_first}' "
            "(day first)"
        )

    @staticmethod
    def _evidence(text: pa.Array, lines: np.ndarray, pattern: str = _EVIDENCE) -> dict[str, list]:
        """Count values only month-first (``m``), only day-first (``d``) or both (``e``) read.

        Each count comes with up to three example ``(line, value)``; `pattern` finds the two
        numbers (``a``, ``b``) that could be the month or the day.
        """
        parts = pc.extract_regex(text, pattern)
        a = pc.cast(pc.struct_field(parts, "a"), pa.int16()).to_numpy(zero_copy_only=False)
        b = pc.cast(pc.struct_field(parts, "b"), pa.int16()).to_numpy(zero_copy_only=False)
        a = np.nan_to_num(np.asarray(a, dtype=np.float64), nan=0)
        b = np.nan_to_num(np.asarray(b, dtype=np.float64), nan=0)
        month_a, month_b = (a >= 1) & (a <= 12), (b >= 1) & (b <= 12)
        masks = {
            "m": month_a & (b > 12) & (b <= 31),
            "d": month_b & (a > 12) & (a <= 31),
            "e": month_a & month_b,
        }
        out: dict[str, list] = {}
        for key, mask in masks.items():
            idx = np.flatnonzero(mask)
            values = text.take(pa.array(idx[:3])).to_pylist()
            out[key] = [
                int(idx.size),
                [(int(lines[i]), v) for i, v in zip(idx[:3], values, strict=True)],
            ]
        return out

    def _whole_column(self, first: dict[str, list]) -> dict[str, list]:
        """Return the evidence of the whole column (the first batch could not decide)."""
        assert self.prescan is not None
        total = {k: [0, []] for k in first}
        for text, lines in self.prescan():
            found = self._evidence(text, lines)
            for key, (count, examples) in found.items():
                total[key][0] += count
                total[key][1] = (total[key][1] + examples)[:3]
            if total["m"][0] and total["d"][0]:
                break  # conflicting: nothing more to learn
        return total

    def _decide(
        self, text: pa.Array, lines: np.ndarray, day_month: list[str], scores: dict[str, int]
    ) -> None:
        evidence = self._evidence(text, lines)
        best = max(day_month, key=lambda f: scores[f])
        month_first = best if _order(best) == "mdy" else _swap(best)
        day_first = _swap(month_first)

        def examples(key: str) -> str:
            return ", ".join(f"line {line} {value!r}" for line, value in evidence[key][1])

        advice = (
            f"Pass --date-format '{month_first}' (month first) or --date-format '{day_first}' "
            "(day first), or list the format(s) under [options] date_format in a mapping "
            "file; values that match none are then rejected one by one."
        )
        where = f"{self.path}, column {self.column!r}"
        n_m, n_d, n_e = evidence["m"][0], evidence["d"][0], evidence["e"][0]
        if self.order is not None:
            other, key = (n_d, "d") if self.order == "mdy" else (n_m, "m")
            if other:
                first = "month-first" if self.order == "mdy" else "day-first"
                msg = (
                    f"{where}: the dates mix month-first and day-first values: the column "
                    f"was read {first}, but {other:,} later values can only be read the other "
                    f"way ({examples(key)}). {advice}"
                )
                raise InputError(msg, path=str(self.path), column=self.column)
            return

        def undecided() -> bool:
            found = max(n_m, n_d)
            return bool(n_e) and found < MIN_EVIDENCE_SHARE * (found + n_e)

        if not (n_m and n_d) and undecided() and self.prescan is not None:
            # this batch cannot decide: look at the whole column before refusing
            evidence = self._whole_column(evidence)
            self.prescan = None
            n_m, n_d, n_e = evidence["m"][0], evidence["d"][0], evidence["e"][0]
        if n_m and n_d:
            msg = (
                f"{where}: the dates mix month-first and day-first values: {n_m:,} can only "
                f"be month-first ({examples('m')}) and {n_d:,} only day-first "
                f"({examples('d')}). {advice}"
            )
            raise InputError(msg, path=str(self.path), column=self.column)
        if undecided():
            found = max(n_m, n_d)
            few = ""
            if found:
                key, kind = ("m", "month-first") if n_m else ("d", "day-first")
                few = (
                    f"; only {found:,} can only be read {kind} ({examples(key)}), too few "
                    "to decide (a typo?)"
                )
            msg = (
                f"{where}: the dates do not say whether they are month-first or day-first: "
                f"{n_e:,} values read either way ({examples('e')}){few}. {advice}"
            )
            raise InputError(msg, path=str(self.path), column=self.column)
        if n_m or n_d:
            self.order = "mdy" if n_m else "dmy"

    def _localize(self, naive: np.ndarray) -> np.ndarray:
        """Return the UTC instants (ns) of local wall times `naive` (ns; ``NAT`` kept), writable.

        The zone's offset is found once per hour of the values' range, at each hour boundary;
        the values of an hour whose two boundaries have the same offset are shifted by it, the
        others (an hour with a change of offset: the autumn hour that occurs twice, the spring
        gap) are localised one by one, as all are when the range holds more hours than values.
        Same result as Arrow's ``assume_timezone`` on every value, at a fifth of its cost for a
        batch of CAD times.
        """
        valid = naive != NAT
        if not valid.any():
            return naive
        values = naive[valid]
        hours = np.floor_divide(values, _HOUR_NS)
        first, last = int(hours.min()), int(hours.max())
        safe = np.iinfo(np.int64).max // _HOUR_NS - 2  # hour ends stay in range
        if last - first + 2 > len(values) or last > safe or first < -safe:
            utc = self._assume(values)  # hours hardly repeat (or the range is extreme)
        else:
            # the offset at every hour boundary of the batch's range: no sort of the values
            edges = np.arange(first, last + 2, dtype=np.int64) * _HOUR_NS
            offset = edges - self._assume(edges)
            at = hours - first
            utc = values - offset[at]
            moved = offset[at] != offset[at + 1]
            if moved.any():
                utc[moved] = self._assume(values[moved])
        out = np.full_like(naive, NAT)
        out[valid] = utc
        return out

    def _assume(self, naive: np.ndarray) -> np.ndarray:
        """Return the UTC instants of local wall times `naive` (ns, none missing), by Arrow."""
        local = pc.assume_timezone(
            pa.array(naive, type=pa.timestamp("ns")),
            self.timezone,
            ambiguous="earliest",
            nonexistent="latest",
        )
        return pc.cast(local, pa.int64()).to_numpy(zero_copy_only=False)

    def _iso(self, text: pa.Array, todo: np.ndarray, out: np.ndarray) -> None:
        subset = text.take(pa.array(todo))
        iso = pc.match_substring_regex(subset, _ISO).to_numpy(zero_copy_only=False)
        if not iso.any():
            return
        idx = todo[iso]
        values = subset.filter(pa.array(iso))
        has_offset = pc.match_substring_regex(values, _OFFSET).to_numpy(zero_copy_only=False)
        series = pd.Series(values.to_numpy(zero_copy_only=False))
        aware = pd.to_datetime(
            series.where(has_offset), format="ISO8601", utc=True, errors="coerce"
        )
        naive = pd.to_datetime(series.where(~has_offset), format="ISO8601", errors="coerce")
        naive_ns = naive.to_numpy(dtype="datetime64[ns]").view(np.int64)
        local = self._localize(np.where(naive.notna().to_numpy(), naive_ns, NAT))
        utc = np.where(has_offset, aware.to_numpy(dtype="datetime64[ns]").view(np.int64), local)
        utc = np.where(pd.isna(aware).to_numpy() & has_offset, NAT, utc)
        ok = utc != NAT
        out[idx[ok]] = utc[ok]
        self.used_iso = self.used_iso or bool(ok.any())


def parse_timestamps(
    values: pd.Series,
    *,
    timezone: str,
    date_format: str | tuple[str, ...] | None = None,
    earliest_year: int = DEFAULT_EARLIEST_YEAR,
) -> tuple[pd.Series, str | None]:
    """Parse a column of timestamps as :class:`DateReader` does; return them and the format.

    Returns
    -------
    parsed
        Timestamps in `timezone` (NaT where missing or unparseable; implausible dates kept).
    used_format
        The first format in use, or None if nothing parsed.

    Raises
    ------
    InputError
        If the day/month order is ambiguous or conflicting.
    """
    formats = (date_format,) if isinstance(date_format, str) else tuple(date_format or ())
    reader = DateReader(
        path="(values)",
        column=str(values.name or "date"),
        timezone=timezone,
        formats=formats,
        earliest_year=earliest_year,
    )
    text = pc.utf8_trim_whitespace(pa.array(values.astype("string").fillna(""), type=pa.string()))
    utc, _ = reader.read(text, np.arange(1, len(values) + 1))
    stamps = pd.to_datetime(pd.Series(utc, index=values.index).where(utc != NAT), utc=True)
    used = reader.used_formats[0] if reader.used_formats else None
    return stamps.dt.tz_convert(timezone), used


def format_tuple(date_format: str | Sequence[str] | None) -> tuple[str, ...]:
    """Return a mapping's ``date_format`` (one format, several, or None) as a tuple."""
    if date_format is None:
        return ()
    if isinstance(date_format, str):
        return (date_format,)
    return tuple(date_format)


_DATES_NOTE = re.compile(r"^dates read as (?P<formats>.+) in (?P<zone>\S+)$")


def dates_note(formats: Sequence[str], timezone: str | None) -> str:
    """Return the note saying in which formats (in this order) and zone a file's dates were read."""
    return f"dates read as {' or '.join(formats)} in {timezone}"


def formats_of_dates_note(note: str) -> tuple[list[str], str] | None:
    """Return the formats and zone a :func:`dates_note` names; None for any other note."""
    found = _DATES_NOTE.match(note)
    if found is None:
        return None
    return found["formats"].split(" or "), found["zone"]
