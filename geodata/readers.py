"""Read CAD/RMS incident exports in any common format into canonical, validated columns.

Reading is separate from joining: :func:`iter_incidents` streams a file in record batches and
returns, per batch, the accepted rows with coordinates in the analysis CRS plus a rejection table
(``source, line, column, value, reason``); :func:`read_incidents` gathers them. The counts always
reconcile: ``rows_read == len(accepted) + len(rejected)``, where a row is a *record* (a quoted
field spanning two lines is one record).

Every step is columnar (Arrow compute and NumPy; a Python call per distinct value at most, never
per row), so a file of any size is read in bounded memory.

Line numbers follow the file: in a CSV the header is line 1, so the first record is line 2 and a
record is numbered by the physical line it starts on; in other formats the first feature or row
is line 1.

Dates are never guessed row by row: the day/month order is decided once for the whole column
(see :class:`DateReader`), and a column that does not say which it is, or says both, stops the
import with a message naming example lines and the ``--date-format`` to pass.
"""

from __future__ import annotations

import contextlib
import csv
import functools
import gzip
import hashlib
import io
import queue
import re
import threading
import zlib
from collections.abc import Callable, Generator, Iterable, Iterator
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq
import pyproj

from geodata import schema
from geodata._idkernel import IdTable, hash_strings
from geodata._idspill import repeated_keys
from geodata.categories import OffenseCategories, load_categories
from geodata.dates import (
    DEFAULT_EARLIEST_YEAR,
    NAT,
    DateReader,
    dates_note,
    format_tuple,
)
from geodata.errors import CRSMismatchError, InputError, SchemaError
from geodata.tomlfiles import read_toml

__all__ = [
    "BLOCK_BYTES",
    "REASONS",
    "ColumnMapping",
    "RaggedRecords",
    "ReadOptions",
    "ReadResult",
    "categorize_distinct",
    "column_as_named",
    "decimal_commas",
    "detect_mapping",
    "duplicate_ids",
    "duplicate_value",
    "iter_incidents",
    "iter_records",
    "load_mapping",
    "merge_mapping",
    "prefetched",
    "read_incidents",
    "read_table",
    "rejection_frame",
]

#: Why a row can be rejected. Every rejected row carries exactly one of these.
REASONS = {
    "malformed": "malformed row (wrong number of fields)",
    "missing_coordinates": "missing coordinates",
    "bad_coordinates": "unparseable coordinates",
    "outside_jurisdiction": "outside the jurisdiction",
    "missing_date": "missing date",
    "bad_date": "unparseable date",
    "implausible_date": "date outside the plausible window",
    "missing_id": "missing incident id",
    "duplicate_id": "duplicate incident id",
    "missing_offense": "missing offense",
    "unclosed_quote": "unclosed quote (a field runs over the next lines)",
    "out_of_range": "longitude/latitude out of range",
}

REJECTION_COLUMNS = ("source", "line", "column", "value", "reason")

# fmt: off
_SYNONYMS: dict[str, tuple[str, ...]] = {
    "incident_id": (
        "incident_id", "id", "incidentid", "incident_number", "incident_no", "incident_num",
        "event_id", "event_number", "cad_event_number", "record_id", "report_id", "offense_id",
        "general_offense_number", "go_number",
    ),
    "case_number": (
        "case_number", "case_numbe", "casenumber", "case_no", "case", "case_num", "rd", "rd_no",
        "rd_number", "report_number", "report_no",
    ),
    "occurred_at": (
        "occurred_at", "date", "occurred", "occurred_on", "occurred_date_time",
        "occurred_datetime", "date_of_occurrence", "occurrence_date", "occurrence_datetime",
        "datetime", "date_time", "incident_date", "incident_datetime", "offense_date",
        "offense_start_datetime", "event_date", "from_date", "start_date", "occurred_date",
        "report_date", "reported_date", "call_date", "date_occurred", "occurreddate",
        "occurrencedate", "date_occ", "incidentdate", "time",
    ),
    # "time" last: a file whose only time column is "Time" reads it as occurred_at (above)
    "occurred_time": (
        "occurred_time", "occurrence_time", "time_of_occurrence", "incident_time",
        "time_occurred", "occurredtime", "occurrencetime", "incidenttime", "time_occ",
        "offense_time", "time",
    ),
    "offense": (
        "offense", "primary_type", "primary_ty", "primary_description", "primary_de",
        "primary_offense", "offense_type", "crime_type", "offense_category", "ucr_description",
        "nibrs_offense", "type", "incident_type", "call_type", "category", "crime",
    ),
    "description": (
        "description", "descriptio", "secondary_description", "secondary_", "offense_description",
        "sub_type", "subtype", "descript", "offense_subcategory", "ucr_subcategory",
        "iucr_description",
    ),
    "iucr": ("iucr", "iucr_code"),
    "fbi_code": ("fbi_code", "fbi_cd", "nibrs_code", "ucr_code", "nibrs", "ucr"),
    "location_desc": (
        "location_description", "location_d", "location_desc", "premise", "premise_type",
        "premise_description", "location_type", "place_type",
    ),
    "block": (
        "block", "block_address", "hundred_block", "address", "location_address", "street",
        "incident_address", "address_block",
    ),
    "domestic": ("domestic", "is_domestic", "domestic_flag", "domestic_violence"),
    "arrest": ("arrest", "arrest_made", "is_arrest"),
    "reported_beat": (
        "beat", "beat_of_occurrence", "police_beat", "beat_num", "beat_id", "zone_beat",
    ),
    "lat": ("latitude", "lat", "y_lat", "point_lat"),
    "lon": ("longitude", "lon", "lng", "long", "x_lon", "point_lon"),
    "x": (
        "x_coordinate", "x_coordina", "x_coord", "xcoord", "x", "easting", "point_x",
        "x_state_plane",
    ),
    "y": (
        "y_coordinate", "y_coordina", "y_coord", "ycoord", "y", "northing", "point_y",
        "y_state_plane",
    ),
}
# fmt: on

_REQUIRED_ROLES = ("occurred_at", "offense")
_TRUE = ["true", "t", "yes", "y", "1"]
_FALSE = ["false", "f", "no", "n", "0"]
_GEOMETRY_X = "__geometry_x"
_GEOMETRY_Y = "__geometry_y"
#: Bytes of CSV parsed per batch (about 30,000 Chicago-format records).
BLOCK_BYTES = 8 << 20
#: A file of more records than this (estimated from its size and first batch) has its ids read
#: once before it is streamed (0.65 s per million Chicago-format rows here), so that the
#: duplicate-id rule keeps only the ids that occur twice, not every id (16-32 bytes each, 200
#: MB at this size): the reader's memory then does not grow with the file.
PRESCAN_IDS_ROWS = 12_000_000
_NUMBER = r"^[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?$"
_STRING_TYPE = pd.StringDtype("pyarrow")


@dataclass(frozen=True)
class ReadOptions:
    """How the times of an export are read; the options every column mapping shares."""

    #: strptime format(s) of the time column(s), tried in order per value; None detects them
    #: (per column, see :class:`DateReader`).
    date_format: str | tuple[str, ...] | None = None
    #: Local time zone of naive timestamps; None: not given (the department's, see
    #: :func:`iter_incidents`; an ingest uses the store's).
    timezone: str | None = None
    #: Dates before 1 January of this year are rejected as implausible.
    earliest_year: int = DEFAULT_EARLIEST_YEAR
    roles_from_file: tuple[str, ...] = field(default=(), compare=False)

    @property
    def date_formats(self) -> tuple[str, ...]:
        """Return the explicit date formats as a tuple (empty when they are detected)."""
        return format_tuple(self.date_format)


@dataclass(frozen=True)
class ColumnMapping(ReadOptions):
    """Which source column plays each canonical role, plus how to read coordinates and dates.

    Role attributes hold the *source* column name, or None when the source has no such column.
    The options (date formats, time zone, earliest year) are :class:`ReadOptions`'.
    """

    incident_id: str | None = None
    case_number: str | None = None
    occurred_at: str | None = None
    occurred_time: str | None = None
    offense: str | None = None
    description: str | None = None
    iucr: str | None = None
    fbi_code: str | None = None
    location_desc: str | None = None
    block: str | None = None
    domestic: str | None = None
    arrest: str | None = None
    reported_beat: str | None = None
    lat: str | None = None
    lon: str | None = None
    x: str | None = None
    y: str | None = None
    #: CRS of ``x``/``y`` (e.g. a state plane, ``"EPSG:2926"``); when set, x/y are used even
    #: if lat/lon exist.
    crs: str | None = None
    #: Roles whose columns the department's profile names for all its exports, not this file's
    #: own mapping: a file without such a column is read without it (the role detected, if it
    #: can be) and a note says so, rather than refused.
    defaults: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def roles(cls) -> tuple[str, ...]:
        """Return the names of the column roles."""
        return tuple(_SYNONYMS)

    def used_columns(self) -> dict[str, str]:
        """Return role -> source column for every role that is mapped."""
        return {r: getattr(self, r) for r in self.roles() if getattr(self, r) is not None}


@dataclass
class ReadResult:
    """Accepted incidents (canonical columns, not yet joined) and rejected rows of one file."""

    incidents: pd.DataFrame
    rejected: pd.DataFrame
    rows_read: int
    mapping: ColumnMapping
    source: str
    notes: list[str] = field(default_factory=list)

    @property
    def rows_accepted(self) -> int:
        """Return the number of accepted rows."""
        return len(self.incidents)

    @property
    def rows_rejected(self) -> int:
        """Return the number of rejected rows."""
        return len(self.rejected)


def column_as_named(column: str) -> str:
    """Return a source column as the user knows it: ``geometry`` for a point layer's x or y."""
    return "geometry" if column in (_GEOMETRY_X, _GEOMETRY_Y) else column


def _normalize_header(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower().lstrip("\ufeff")).strip("_")


def rejection_frame(rows: list[dict[str, object]] | None = None) -> pd.DataFrame:
    """Return a rejection table (``source, line, column, value, reason``) from row dicts."""
    if not rows:  # most batches: a copy of the one empty table (building it costs 100x more)
        return _EMPTY_REJECTIONS.copy()
    return _rejection_dtypes(pd.DataFrame(rows, columns=list(REJECTION_COLUMNS)))


# --- reading the raw table ----------------------------------------------------------------


@dataclass
class _Batch:
    """Raw records of one batch: string columns (missing = ``""``) and their file lines."""

    table: pa.Table
    lines: np.ndarray
    malformed: list[dict[str, object]] = field(default_factory=list)
    crs: str | None = None
    #: What the reader had to decide or found about the file (its delimiter, quoting).
    notes: list[str] = field(default_factory=list)


class _RaggedFile(Exception):  # noqa: N818 - internal signal
    """Internal: a CSV has records with the wrong number of fields; read it again exactly."""


def _open_text(path: Path, errors: str = "strict") -> io.TextIOBase:
    """Open a CSV (or ``.csv.gz``) as UTF-8 text; `errors` as :func:`open` takes it."""
    if path.name.lower().endswith(".gz"):
        return io.TextIOWrapper(
            gzip.open(path, "rb"), encoding="utf-8-sig", errors=errors, newline=""
        )
    return open(path, encoding="utf-8-sig", errors=errors, newline="")


def _sniff_text(path: Path) -> None:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(8192)
    except (OSError, EOFError, gzip.BadGzipFile, zlib.error) as err:
        msg = f"{path}: cannot read the file: {err}"
        raise InputError(msg, path=str(path)) from err
    if not head.strip():
        msg = f"{path}: the file is empty (expected a header line and incident rows)"
        raise InputError(msg, path=str(path), line=1)
    if b"\x00" in head:
        msg = f"{path}: this is not a text CSV file (it contains binary data)"
        raise InputError(msg, path=str(path), line=1)
    try:
        head.decode("utf-8")
    except UnicodeDecodeError as err:
        # a multi-byte character cut at the 8 KiB boundary is fine
        if err.start < len(head) - 4:
            raise _not_utf8(path, head, err) from err


#: What to do about a file that is not UTF-8, in the users' words.
_SAVE_AS_UTF8 = (
    'In Excel, save the file as "CSV UTF-8 (Comma delimited)" (File > Save As), or convert it '
    "to UTF-8 (e.g. iconv -f WINDOWS-1252 -t UTF-8 in.csv > out.csv)."
)


def _not_utf8(path: Path, data: bytes, err: UnicodeDecodeError, before: int = 0) -> InputError:
    """Return the error for a byte that is not UTF-8: its line and column, and the fix.

    `data` holds the bytes from the start of a line (the file's start, or `before` bytes and
    lines into it: see :func:`_first_bad_byte`); `err` is the failed decoding of `data`.
    """
    line = before + data.count(b"\n", 0, err.start) + 1
    line_start = data.rfind(b"\n", 0, err.start) + 1
    bad = data[err.start]
    prefix = data[line_start : err.start].decode("utf-8", "replace")
    column = ""
    with contextlib.suppress(OSError, StopIteration, csv.Error, UnicodeDecodeError):
        with _open_text(path, errors="replace") as handle:  # a header for the message
            first = handle.readline()
        sep = _delimiter(path, first)[0]
        header = [h.strip() for h in next(csv.reader([first], delimiter=sep))]
        at = len(next(csv.reader([prefix], delimiter=sep), [""])) - 1
        if line > 1 and 0 <= at < len(header):
            column = header[at]
    where = f"line {line}" + (f", column {column!r}" if column else "")
    as_1252 = bytes([bad]).decode("cp1252", "replace")
    msg = (
        f"{path}: {where}: this is not a UTF-8 text CSV file (byte 0x{bad:02X} after "
        f"{prefix[-30:]!r}: {err.reason}; in Windows-1252, the usual encoding of Excel's "
        f'"CSV" files, it is {as_1252!r}); nothing was stored. {_SAVE_AS_UTF8}'
    )
    return InputError(msg, path=str(path), line=line, column=column or None)


def _first_bad_byte(path: Path) -> InputError | None:
    """Return the error naming the first byte of the file that is not UTF-8 (None: none is)."""
    lines = 0
    rest = b""
    opener = gzip.open if path.name.lower().endswith(".gz") else open
    with opener(path, "rb") as handle:
        while chunk := handle.read(4 << 20):
            data = rest + chunk
            cut = data.rfind(b"\n") + 1 or len(data)
            block, rest = data[:cut], data[cut:]
            try:
                block.decode("utf-8")
            except UnicodeDecodeError as err:
                return _not_utf8(path, block, err, lines)
            lines += block.count(b"\n")
    try:
        rest.decode("utf-8")
    except UnicodeDecodeError as err:
        return _not_utf8(path, rest, err, lines)
    return None


def _whole_file_error(path: Path, err: BaseException) -> InputError:
    """Return the one message for a file that breaks while being read."""
    text = str(err)
    compressed = path.name.lower().endswith(".gz")
    if compressed and isinstance(err, (EOFError, zlib.error, gzip.BadGzipFile, OSError)):
        msg = (
            f"{path}: the compressed file is truncated or corrupt ({text or type(err).__name__}); "
            "nothing was stored. Download or copy the export again."
        )
    elif "UTF8" in text or "utf-8" in text.lower():
        with contextlib.suppress(OSError, EOFError, zlib.error):
            found = _first_bad_byte(path)
            if found is not None:
                return found
        msg = (
            f"{path}: this is not a UTF-8 text CSV file ({text}); nothing was stored. "
            f"{_SAVE_AS_UTF8}"
        )
    else:
        msg = f"{path}: cannot read the file ({text}); nothing was stored"
    return InputError(msg, path=str(path))


def _csv_header(path: Path, sep: str) -> list[str]:
    try:
        with _open_text(path) as handle:
            header = next(csv.reader(handle, delimiter=sep), None)
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise _whole_file_error(path, err) from err
    if not header:
        msg = f"{path}: the file is empty (expected a header line and incident rows)"
        raise InputError(msg, path=str(path), line=1)
    return header


def _record_starts(
    path: Path, sep: str, names: list[str]
) -> tuple[np.ndarray, dict[int, str], dict[int, list[str]], dict[int, _Unclosed]]:
    """Return the start line of every record, the long ones, the short ones, the unclosed ones.

    Only used for files with ragged records (Python's csv module, one pass): the fast reader
    cannot say where a record it skipped was. A short record keeps its fields, padded with
    ``""`` (as pandas reads it: the fields it has stay in their columns); a record with too many
    fields cannot be placed and is rejected; so is a record with an unclosed quote
    (:func:`_unclosed_quote`), one rejection per line it swallowed.
    """
    n_columns = len(names)
    starts: list[int] = []
    long: dict[int, str] = {}
    short: dict[int, list[str]] = {}
    unclosed: dict[int, _Unclosed] = {}
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle, delimiter=sep)
            next(reader, None)
            line = 2
            for row in reader:
                if row:
                    found = None
                    if reader.line_num > line:  # a quoted line break: the record spans lines
                        found = _unclosed_quote(zip(names, row, strict=False), sep, n_columns)
                    if found is not None:
                        unclosed[len(starts)] = _Unclosed(line, reader.line_num, *found)
                    elif len(row) > n_columns:
                        long[len(starts)] = (
                            f"{len(row)} fields, expected {n_columns}: " + sep.join(row)[:160]
                        )
                    elif len(row) < n_columns:
                        short[len(starts)] = row + [""] * (n_columns - len(row))
                    starts.append(line)
                line = reader.line_num + 1
    except (OSError, EOFError, zlib.error, UnicodeDecodeError, csv.Error) as err:
        raise _whole_file_error(path, err) from err
    return np.asarray(starts, dtype=np.int64), long, short, unclosed


@dataclass(frozen=True)
class _Unclosed:
    """A record whose quoted field runs on over whole records: a quote left open."""

    start: int
    end: int
    column: str
    pieces: list[str]

    def rejections(self, source: str) -> list[dict[str, object]]:
        """Return one rejection per physical line of the record, each naming the quote's line."""
        rows: list[dict[str, object]] = []
        for k, line in enumerate(range(self.start, self.end + 1)):
            text = self.pieces[k].rstrip("\r") if k < len(self.pieces) else ""
            if k == 0:
                value = f"a quote opens here and closes only at line {self.end}: {text}"
            else:
                value = f"inside the quote opened at line {self.start}: {text}"
            rows.append(
                {
                    "source": source,
                    "line": line,
                    "column": self.column,
                    "value": value[:200],
                    "reason": REASONS["unclosed_quote"],
                }
            )
        return rows

    def note(self) -> str:
        """Return what the report says about this record."""
        return (
            f"a quote opened at line {self.start} (column {self.column!r}) is closed only at "
            f"line {self.end}: {self.end - self.start} lines were read as part of one field; "
            f"lines {self.start}-{self.end} were rejected: check for an unclosed quote"
        )


def _unclosed_quote(
    fields: Iterable[tuple[str, str]], sep: str, n_columns: int
) -> tuple[str, list[str]] | None:
    """Return the column and lines of the first field that swallowed whole records, or None.

    A quoted field may span lines (a narrative), but a line inside it with at least the
    header's number of delimiters is the shape of a whole record: a quote was left open and
    the records after it were read into the field until the next quote closed it. Whole lines
    inside a field (not its first or last piece) hold no quote, so a plain count is exact.
    """
    if n_columns < 3:  # one delimiter on a line of prose proves nothing
        return None
    for name, value in fields:
        if "\n" not in value:
            continue
        pieces = value.split("\n")
        if any(piece.count(sep) >= n_columns - 1 for piece in pieces[1:-1]):
            return name, pieces
    return None


def _take_unclosed(
    table: pa.Table, lines: np.ndarray, extra: np.ndarray, sep: str
) -> tuple[pa.Table, np.ndarray, list[_Unclosed]]:
    """Return the batch without its records that hold an unclosed quote, and those records.

    Only the records with a line break inside a field (`extra` > 0) are looked at, each field
    once in Python: files without quoted line breaks never come here.
    """
    rows = np.flatnonzero(extra)
    columns = [name for name in table.column_names if _has_newline(table.column(name))]
    taken = pa.array(rows)
    texts = {name: table.column(name).take(taken).to_pylist() for name in columns}
    found: list[_Unclosed] = []
    drop = np.zeros(table.num_rows, dtype=bool)
    for k, row in enumerate(rows.tolist()):
        fields = ((name, texts[name][k] or "") for name in columns)
        hit = _unclosed_quote(fields, sep, table.num_columns)
        if hit is not None:
            start = int(lines[row])
            found.append(_Unclosed(start, start + int(extra[row]), hit[0], hit[1]))
            drop[row] = True
    if not found:
        return table, lines, found
    keep = ~drop
    return table.filter(pa.array(keep)), lines[keep], found


@dataclass
class _Spans:
    """The records of a CSV that run over several lines, counted over its batches."""

    records: int = 0
    lines: int = 0
    longest: tuple[int, int] = (0, 0)
    unclosed: list[_Unclosed] = field(default_factory=list)

    def add(self, lines: np.ndarray, extra: np.ndarray | None) -> None:
        """Count the records of a batch (their start lines, the line breaks inside each)."""
        if extra is None or not len(extra):
            return
        spanning = extra > 0
        if not spanning.any():
            return
        self.records += int(spanning.sum())
        self.lines += int(extra.sum())
        at = int(np.argmax(extra))
        if int(extra[at]) > self.longest[1] - self.longest[0]:
            self.longest = (int(lines[at]), int(lines[at] + extra[at]))

    def notes(self) -> list[str]:
        """Return the notes that reconcile the file's lines with its records."""
        notes = [u.note() for u in self.unclosed[:_NAMED]]
        if len(self.unclosed) > _NAMED:
            notes.append(f"... and {len(self.unclosed) - _NAMED} more unclosed quotes")
        if self.records:
            start, end = self.longest
            notes.append(
                f"{self.records} records hold line breaks inside quoted fields, "
                f"{self.lines} line breaks in all (each such record is one row, numbered by "
                f"the line it starts on; the longest runs from line {start} to line {end})"
            )
        return notes


#: How many unclosed quotes the notes name one by one.
_NAMED = 3


def _has_newline(column: pa.ChunkedArray) -> bool:
    """Return whether any string of `column` holds a line break (one scan of its bytes)."""
    for chunk in column.chunks:
        if not len(chunk) or not pa.types.is_string(chunk.type):
            continue
        _, offsets_buf, data_buf = chunk.buffers()
        if data_buf is None:
            continue
        offsets = np.frombuffer(offsets_buf, dtype=np.int32)
        first, last = offsets[chunk.offset], offsets[chunk.offset + len(chunk)]
        if np.any(np.frombuffer(data_buf, dtype=np.uint8)[first:last] == 10):
            return True
    return False


def _embedded_newlines(table: pa.Table) -> np.ndarray | None:
    """Return, per record, the line breaks inside its quoted fields (None when there are none)."""
    total = None
    for column in table.columns:
        if not _has_newline(column):
            continue
        counts = pc.count_substring(column, "\n").to_numpy(zero_copy_only=False)
        total = counts.astype(np.int64) if total is None else total + counts
    return total


class _PacedInput(io.RawIOBase):
    """A (decompressed) file that Arrow's CSV reader may read only a few blocks ahead.

    Arrow's streaming CSV reader reads blocks on a background thread up to 40 blocks ahead of
    the batches taken from it (640 MB of 16 MB blocks), and faster than the ingest uses them;
    this stream makes that thread wait while it is more than `ahead` blocks ahead, so the
    reader's memory does not depend on the file size. A wait lasts at most a second, so a
    record longer than `ahead` blocks is still read (only more slowly).
    """

    def __init__(self, stream: pa.NativeFile, block_bytes: int, ahead: int = 2) -> None:
        super().__init__()
        self._stream = stream
        self._limit = block_bytes * ahead
        self._block_bytes = block_bytes
        self._read = 0
        self._taken = 0
        self._changed = threading.Condition()

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        with self._changed:
            self._changed.wait_for(lambda: self._read - self._taken <= self._limit, timeout=1.0)
        data = self._stream.read(size if size >= 0 else None)
        self._read += len(data)
        return data

    def readinto(self, buffer: bytearray | memoryview) -> int:  # type: ignore[override]
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)

    def took_batch(self) -> None:
        """Record that one more batch was taken from the reader."""
        with self._changed:
            self._taken += self._block_bytes
            self._changed.notify_all()

    def close(self) -> None:
        self._stream.close()
        super().close()


#: Delimiters a header line is tried with, the first winning ties.
_DELIMITERS = (",", ";", "\t", "|")


def _delimiter(path: Path, first_line: str) -> tuple[str, str | None]:
    """Return the delimiter of a CSV and a note when it is not the one the name says.

    A ``.tsv`` is tab-separated. Otherwise the header line is split with each of
    :data:`_DELIMITERS`; the one giving the most names wins (a comma on ties).
    """
    if ".tsv" in path.name.lower():
        return "\t", None
    counts = {
        c: len(next(csv.reader([first_line.rstrip("\r\n")], delimiter=c), [])) for c in _DELIMITERS
    }
    best = max(_DELIMITERS, key=lambda c: (counts[c], c == ","))
    if best == "," or counts[best] < 2 or counts[best] <= counts[","]:
        return ",", None
    shown = "tab" if best == "\t" else repr(best)
    note = (
        f"fields separated by {shown}, not commas: the header line splits into "
        f"{counts[best]} names at {shown} (and {counts[',']} at commas)"
    )
    return best, note


def _first_line(path: Path) -> str:
    try:
        with _open_text(path) as handle:
            return handle.readline()
    except (OSError, EOFError, zlib.error, UnicodeDecodeError) as err:
        raise _whole_file_error(path, err) from err


def _trimmed_names(header: list[str]) -> tuple[list[str], str | None]:
    """Return the header's names without surrounding spaces, and a note naming those trimmed.

    A name that would then repeat another keeps its spaces (two columns need two names).
    """
    names: list[str] = []
    trimmed: list[str] = []
    for raw in header:
        name = raw.lstrip("\ufeff")
        stripped = name.strip()
        if stripped != name and stripped not in header and stripped not in names:
            trimmed.append(f"{name!r} -> {stripped!r}")
            name = stripped
        names.append(name)
    if not trimmed:
        return names, None
    return names, "header names read without their surrounding spaces: " + ", ".join(trimmed)


def _csv_batches(path: Path, *, exact: bool, block_bytes: int) -> Iterator[_Batch]:
    _sniff_text(path)
    sep, sep_note = _delimiter(path, _first_line(path))
    header = _csv_header(path, sep)
    names, trim_note = _trimmed_names(header)
    first_notes = [n for n in (sep_note, trim_note) if n]
    starts = np.empty(0, np.int64)
    long: dict[int, str] = {}
    short: dict[int, list[str]] = {}
    unclosed: dict[int, _Unclosed] = {}
    if exact:
        starts, long, short, unclosed = _record_starts(path, sep, names)
    n_records = len(starts)
    skipped: list[str] = []
    spans = _Spans(unclosed=list(unclosed.values()))

    def on_bad_row(row: pa_csv.InvalidRow) -> str:
        skipped.append(row.text)
        return "skip"

    def placed(
        table: pa.Table, n_taken: int, record: int, until_all: bool
    ) -> tuple[pa.Table, np.ndarray, list[dict[str, object]], int]:
        """Put the batch's rows, its short records and its long ones in file order."""
        slots: list[int] = []  # >= 0: row of `table`; < 0: -(1 + index into `extra`)
        extra: list[list[str]] = []
        malformed: list[dict[str, object]] = []
        records: list[int] = []
        taken = 0
        dropped = False
        while taken < n_taken or (until_all and record < n_records):
            if record in unclosed:
                quote = unclosed[record]
                malformed.extend(quote.rejections(path.name))
                if taken < n_taken and _same_record(table, taken, quote):
                    taken += 1  # the fast reader kept it as a row: drop that row
                    dropped = True
            elif record in long:
                malformed.append(
                    {
                        "source": path.name,
                        "line": int(starts[record]),
                        "column": "",
                        "value": long[record],
                        "reason": REASONS["malformed"],
                    }
                )
            elif record in short:
                slots.append(-(1 + len(extra)))
                extra.append(short[record])
                records.append(record)
            else:
                slots.append(taken)
                records.append(record)
                taken += 1
            record += 1
        if extra or dropped:
            padded = pa.table(
                {
                    name: pa.array([row[i] for row in extra], pa.string())
                    for i, name in enumerate(names)
                }
            )
            order = np.asarray(slots, dtype=np.int64)
            order = np.where(order >= 0, order, table.num_rows + (-order - 1))
            table = pa.concat_tables([table, padded]).take(pa.array(order))
        lines = starts[np.asarray(records, dtype=np.int64)] if records else np.empty(0, np.int64)
        return table, lines, malformed, record

    try:
        paced = _PacedInput(pa.input_stream(str(path), compression="detect"), block_bytes)
        reader = pa_csv.open_csv(
            pa.PythonFile(paced, mode="r"),
            read_options=pa_csv.ReadOptions(
                block_size=block_bytes, column_names=names, skip_rows=1, use_threads=True
            ),
            parse_options=pa_csv.ParseOptions(
                delimiter=sep, newlines_in_values=True, invalid_row_handler=on_bad_row
            ),
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=False,
                quoted_strings_can_be_null=False,
            ),
        )
    except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as err:
        if "Empty CSV" not in str(err):
            raise _whole_file_error(path, err) from err
        reader = None
    record = 0  # records before this batch, malformed ones included
    next_line = 2
    empty = pa.table({name: pa.array([], pa.string()) for name in names})
    while reader is not None:
        try:
            batch = reader.read_next_batch()
        except StopIteration:
            break
        except (pa.ArrowInvalid, OSError, EOFError, zlib.error) as err:
            raise _whole_file_error(path, err) from err
        paced.took_batch()
        if skipped and not exact:
            raise _RaggedFile
        table = pa.Table.from_batches([batch])
        n = table.num_rows
        if exact:
            table, lines, malformed, record = placed(table, n, record, until_all=False)
            spans.add(lines, _embedded_newlines(table))
            yield _Batch(table, lines, malformed, notes=first_notes)
            first_notes = []
            continue
        extra_lines = _embedded_newlines(table)
        if extra_lines is None:  # the fast path: no quoted line breaks
            lines = np.arange(next_line, next_line + n, dtype=np.int64)
            next_line += n
            record += n
            yield _Batch(table, lines, notes=first_notes)
            first_notes = []
            continue
        step = 1 + extra_lines
        lines = next_line + np.concatenate([[0], np.cumsum(step)[:-1]]).astype(np.int64)
        next_line += int(step.sum())
        record += n
        table, kept_lines, found = _take_unclosed(table, lines, extra_lines, sep)
        if found:
            extra_lines = extra_lines[np.isin(lines, kept_lines)]
        spans.unclosed.extend(found)
        spans.add(kept_lines, extra_lines)
        rejected = [row for quote in found for row in quote.rejections(path.name)]
        yield _Batch(table, kept_lines, rejected, notes=first_notes)
        first_notes = []
    # the records after the last batch (short or long ones), or the header alone
    table, lines, malformed, record = placed(empty, 0, record, until_all=exact)
    yield _Batch(table, lines, malformed, notes=first_notes + spans.notes())


def _same_record(table: pa.Table, row: int, quote: _Unclosed) -> bool:
    """Return whether row `row` of the fast reader's `table` is the record `quote` (Python's)."""
    value = table.column(quote.column)[row].as_py() or ""
    return "\n" in value and value.split("\n", 1)[0] == quote.pieces[0]


def _strings(frame: pd.DataFrame) -> pa.Table:
    """Return a table of string columns (missing = ``""``) from any frame."""
    columns = {}
    for name in frame.columns:
        values = pa.array(frame[name].astype("string").fillna(""), type=pa.string())
        columns[str(name)] = values
    return pa.table(columns) if columns else pa.table({})


def _geoframe_batch(frame: pd.DataFrame, path: Path) -> _Batch:
    import geopandas as gpd

    crs = None
    table = (
        pd.DataFrame(frame.drop(columns=frame.geometry.name))
        if isinstance(frame, gpd.GeoDataFrame)
        else pd.DataFrame(frame)
    )
    if isinstance(frame, gpd.GeoDataFrame):
        geometry = frame.geometry
        if not geometry.isna().all():
            kinds = set(geometry.dropna().geom_type.unique())
            if not kinds <= {"Point"}:
                msg = f"{path}: incidents must be points, found {sorted(kinds)} geometries"
                raise InputError(msg, path=str(path))
            if frame.crs is None:
                msg = (
                    f"{path}: the point layer has no CRS: save it with its coordinate system, "
                    "or give the CRS (crs under [incidents] in the department profile, --crs "
                    "for the ingest command)"
                )
                raise InputError(msg, path=str(path))
            crs = frame.crs.to_string()
            table[_GEOMETRY_X] = geometry.x.astype("string")
            table[_GEOMETRY_Y] = geometry.y.astype("string")
    table.columns = _trimmed_names([str(c) for c in table.columns])[0]
    lines = np.arange(1, len(table) + 1, dtype=np.int64)
    return _Batch(_strings(table), lines, [], crs)


def _vector_batches(path: Path) -> Iterator[_Batch]:
    import geopandas as gpd
    import pyogrio

    try:
        frame = gpd.read_file(path)
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as err:
        msg = f"{path}: cannot read as a {path.suffix} vector file: {err}"
        raise InputError(msg, path=str(path)) from err
    yield _geoframe_batch(frame, path)


def _parquet_batches(path: Path, batch_rows: int) -> Iterator[_Batch]:
    import geopandas as gpd
    import pyarrow.parquet as pq

    try:
        parquet = pq.ParquetFile(path)
        metadata = parquet.schema_arrow.metadata or {}
    except Exception as err:  # pyarrow raises several types for a non-Parquet file
        msg = f"{path}: cannot read as Parquet: {err}"
        raise InputError(msg, path=str(path)) from err
    if b"geo" in metadata:
        yield _geoframe_batch(gpd.read_parquet(path), path)
        return
    first = 1
    for batch in parquet.iter_batches(batch_size=batch_rows):
        columns = {}
        names, _ = _trimmed_names(batch.schema.names)
        for name, column in zip(names, batch.columns, strict=True):
            text = column if pa.types.is_string(column.type) else pc.cast(column, pa.string())
            columns[name] = pc.fill_null(text, "")
        lines = np.arange(first, first + batch.num_rows, dtype=np.int64)
        first += batch.num_rows
        yield _Batch(pa.table(columns), lines)


def _batches(
    path: Path, *, exact: bool = False, block_bytes: int = BLOCK_BYTES
) -> Iterator[_Batch]:
    if not path.exists():
        msg = f"{path}: no such file"
        raise InputError(msg, path=str(path))
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")):
        return _csv_batches(path, exact=exact, block_bytes=block_bytes)
    if name.endswith((".parquet", ".geoparquet", ".pq")):
        return _parquet_batches(path, max(block_bytes // 256, 1024))
    if name.endswith((".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb")):
        return _vector_batches(path)
    msg = (
        f"{path}: unsupported file type; expected .csv, .csv.gz, .tsv, .geojson, .gpkg, .shp, "
        ".parquet or .geoparquet"
    )
    raise InputError(msg, path=str(path))


def read_table(path: str | Path) -> tuple[pd.DataFrame, pd.Series, str | None, list[dict]]:
    """Read any supported file into one table of strings (small files; ingest streams).

    Parameters
    ----------
    path
        CSV (optionally ``.gz``), TSV, GeoJSON, GeoPackage, Shapefile, Parquet or GeoParquet.

    Returns
    -------
    table
        One row per record, all values as strings (missing = ``""``); point geometries become
        the hidden columns ``__geometry_x`` and ``__geometry_y``.
    lines
        The file line (CSV) or record number of each row.
    crs
        The CRS of the geometry column, or None.
    malformed
        Rejection rows for records that could not be split into fields.

    Raises
    ------
    InputError
        If the file does not exist, is empty, or is not in the format its name says.
    """
    path = Path(path)
    try:
        batches = list(_batches(path))
    except _RaggedFile:
        batches = list(_batches(path, exact=True))
    if not batches:
        return pd.DataFrame(), pd.Series(dtype="int64"), None, []
    table = pa.concat_tables([b.table for b in batches])
    lines = np.concatenate([b.lines for b in batches])
    frame = table.to_pandas(types_mapper=lambda t: _STRING_TYPE if t == pa.string() else None)
    malformed = [m for b in batches for m in b.malformed]
    return frame, pd.Series(lines), batches[0].crs, malformed


def iter_records(
    path: str | Path,
    *,
    exact: bool = False,
    block_bytes: int = BLOCK_BYTES,
    notes: list[str] | None = None,
) -> Iterator[tuple[pa.Table, np.ndarray, pd.DataFrame]]:
    """Yield a file's records batch by batch: string columns, their lines, malformed records.

    The reading of :func:`iter_incidents` for other record kinds (CAD calls): the same formats,
    whole-file errors (empty, binary, not UTF-8, a truncated ``.gz``) and line numbers; records
    with too many fields come back as rejections (:data:`REJECTION_COLUMNS`), not as rows.
    What the reader found about the file (its delimiter, trimmed header names, an unclosed
    quote) is added to `notes`, when given, once each.

    Raises
    ------
    InputError
        If the file cannot be read (also when it breaks part-way).
    RaggedRecords
        When ragged CSV records are found after batches were yielded (read again with
        ``exact=True``; before the first batch this is done here).
    """
    path = Path(path)
    yielded = False
    try:
        for batch in _batches(path, exact=exact, block_bytes=block_bytes):
            yielded = True
            if notes is not None:
                notes.extend(n for n in batch.notes if n not in notes)
            yield batch.table, batch.lines, rejection_frame(batch.malformed)
    except _RaggedFile:
        if yielded:
            raise RaggedRecords(str(path)) from None
        yield from iter_records(path, exact=True, block_bytes=block_bytes, notes=notes)


# --- column mapping -------------------------------------------------------------------------


def detect_mapping(columns: list[str], *, base: ColumnMapping | None = None) -> ColumnMapping:
    """Return a mapping with every role not set in `base` auto-detected from `columns`.

    Parameters
    ----------
    columns
        Header of the source table.
    base
        Explicit choices (from a mapping file or arguments); these win over detection.

    Returns
    -------
    ColumnMapping
    """
    base = base or ColumnMapping()
    by_norm: dict[str, str] = {}
    for column in columns:
        by_norm.setdefault(_normalize_header(column), column)
    taken = {v for v in base.used_columns().values()}
    # role -> source column, passed to `replace` as keyword fields of ColumnMapping
    chosen: dict[str, Any] = {}
    for role, synonyms in _SYNONYMS.items():
        if getattr(base, role) is not None:
            continue
        for synonym in synonyms:
            found = by_norm.get(synonym)
            if found is not None and found not in taken:
                chosen[role] = found
                taken.add(found)
                break
    if _GEOMETRY_X in columns and base.x is None:
        chosen.setdefault("x", _GEOMETRY_X)
        chosen.setdefault("y", _GEOMETRY_Y)
    # A lone id-like "case" column doubles as the incident id.
    if "incident_id" not in chosen and base.incident_id is None and "case_number" in chosen:
        chosen["incident_id"] = chosen["case_number"]
    return replace(base, **chosen)


def load_mapping(path: str | Path) -> ColumnMapping:
    """Read an explicit column mapping from a TOML file.

    The file has a ``[columns]`` table (role = "source column") and an optional ``[options]``
    table with ``crs``, ``date_format`` (one strptime format, or a list tried in order),
    ``timezone`` and ``earliest_year``. See ``docs/mapping.example.toml``.

    Raises
    ------
    InputError
        If the file cannot be parsed or names an unknown role or option.
    """
    path = Path(path)
    config = read_toml(path, "the column mapping")
    roles = set(ColumnMapping.roles())
    columns = config.get("columns", {})
    unknown = sorted(set(columns) - roles)
    if unknown:
        msg = f"{path}: unknown column roles {unknown}; expected some of {sorted(roles)}"
        raise InputError(msg, path=str(path))
    options = dict(config.get("options", {}))
    allowed = {"crs", "date_format", "timezone", "earliest_year"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        msg = f"{path}: unknown options {unknown}; expected some of {sorted(allowed)}"
        raise InputError(msg, path=str(path))
    formats = options.get("date_format")
    if isinstance(formats, list):
        if not formats or not all(isinstance(f, str) for f in formats):
            msg = f"{path}: options.date_format must be a format or a list of formats"
            raise InputError(msg, path=str(path))
        options["date_format"] = tuple(formats)
    if "earliest_year" in options and not isinstance(options["earliest_year"], int):
        msg = f"{path}: options.earliest_year must be a year, e.g. 1995"
        raise InputError(msg, path=str(path))
    # a name copied with the spaces around it matches the header, whose names are trimmed too
    columns = {
        role: name.strip() if isinstance(name, str) else name for role, name in columns.items()
    }
    return ColumnMapping(**columns, **options, roles_from_file=tuple(columns))


def merge_mapping(base: ColumnMapping, path: str | Path) -> ColumnMapping:
    """Return `base` (a department's mapping) with the roles and options the file `path` names.

    What the file does not name stays as `base` has it (see :func:`load_mapping`).
    """
    explicit = load_mapping(path)
    options = read_toml(path, "the column mapping").get("options", {})
    changes: dict[str, Any] = {role: getattr(explicit, role) for role in explicit.roles_from_file}
    changes.update({option: getattr(explicit, option) for option in options})
    roles = tuple(dict.fromkeys((*base.roles_from_file, *explicit.roles_from_file)))
    defaults = tuple(r for r in base.defaults if r not in explicit.roles_from_file)
    return replace(base, **changes, roles_from_file=roles, defaults=defaults)


# --- values -----------------------------------------------------------------------------------

_NULL_STRING = pa.scalar(None, pa.string())


def _trim(values: pa.Array) -> pa.Array:
    """Return `values` without leading or trailing whitespace (``utf8_trim_whitespace``).

    `values` itself when no value starts or ends with a byte that could be whitespace (a
    control character, a space or any non-ASCII byte): one look at two bytes per value instead
    of a copy of the column, and export columns are rarely padded.
    """
    if not _may_need_trim(values):
        return values
    return pc.utf8_trim_whitespace(values)


def _may_need_trim(values: pa.Array) -> bool:
    """Return False only if no string of `values` starts or ends with a byte <= 0x20 or >= 0x80."""
    if not isinstance(values, pa.Array) or values.type not in (pa.string(), pa.large_string()):
        return True
    n = len(values)
    if n == 0:
        return False
    _, offsets_buf, data_buf = values.buffers()
    if offsets_buf is None:
        return True
    if data_buf is None:  # only empty strings
        return False
    width = np.int64 if values.type == pa.large_string() else np.int32
    raw = np.frombuffer(offsets_buf, dtype=width)[values.offset : values.offset + n + 1]
    bounds = raw.astype(np.int64, copy=False)
    data = np.frombuffer(data_buf, dtype=np.uint8)
    starts, ends = bounds[:-1], bounds[1:]
    filled = ends > starts  # empty strings (and nulls) have no bytes
    if not filled.all():
        starts, ends = starts[filled], ends[filled]
    if not starts.size:
        return False
    ends = ends - 1
    # a byte b is plain when 0x21 <= b <= 0x7F, i.e. b - 0x21 (wrapping) < 0x5F
    return bool(
        (np.take(data, starts) - np.uint8(0x21) >= np.uint8(0x5F)).any()
        or (np.take(data, ends) - np.uint8(0x21) >= np.uint8(0x5F)).any()
    )


def _to_float(values: pa.Array, *, words: bool = False) -> np.ndarray:
    """Return the numbers in trimmed strings (NaN where empty or not a number).

    `words`: `values` hold a word that is not a number (``REDACTED``), so a plain cast would
    fail: the words are set aside first, without trying it (0.04 s per million values).
    """
    nulled = pc.if_else(pc.equal(values, ""), _NULL_STRING, values)
    numbers = None
    if not words:
        with contextlib.suppress(pa.ArrowInvalid):
            numbers = pc.cast(nulled, pa.float64())
    if numbers is None:
        numbers = _words_as_null(nulled)
    if numbers is None:
        ok = pc.match_substring_regex(values, _NUMBER)
        numbers = pc.cast(pc.if_else(ok, values, _NULL_STRING), pa.float64())
    return numbers.to_numpy(zero_copy_only=False).astype(np.float64, copy=False)


#: A number written with a decimal comma (``1279978,3``, ``-122,3321``): European exports.
_DECIMAL_COMMA = r"^[+-]?\d+,\d+$"


def decimal_commas(
    text: pa.Array,
    numbers: np.ndarray,
    column: str,
    notes: list[str],
    *,
    skip: np.ndarray | None = None,
) -> np.ndarray:
    """Return `numbers` with the values written with a decimal comma read as decimals.

    Only the values no plain cast read (NaN), less those in `skip` (empty or withheld), are
    looked at, so a column of ordinary numbers pays one test. The first time a column has such
    values a note says so (a guess, reported).
    """
    unread = np.isnan(numbers)
    if skip is not None:
        unread &= ~skip
    if not unread.any():
        return numbers
    at = np.flatnonzero(unread)
    candidates = text.take(pa.array(at))
    comma = pc.match_substring_regex(candidates, _DECIMAL_COMMA).to_numpy(zero_copy_only=False)
    if not comma.any():
        return numbers
    written = candidates.filter(pa.array(comma))
    out = numbers.copy()
    out[at[comma]] = _to_float(pc.replace_substring(written, ",", "."))
    note = f"column {column!r} writes numbers with a decimal comma, read as decimals"
    if not any(n.startswith(note) for n in notes):
        example = str(written[0].as_py())
        notes.append(f"{note} (e.g. {example!r} as {float(example.replace(',', '.'))!r})")
    return out


def _words_as_null(values: pa.Array) -> pa.Array | None:
    """Return `values` as numbers when only words (``REDACTED``, ``NULL``) are not numbers.

    What the pattern :data:`_NUMBER` would give, without matching it on every value: a word
    (letters only) is never a number, so it becomes null and the rest is cast. None when
    something else fails the cast, or when the cast reads a value the pattern would not
    (``-inf``): the caller matches the pattern then.
    """
    words = pc.fill_null(pc.utf8_is_alpha(values), False)
    try:
        numbers = pc.cast(pc.if_else(words, _NULL_STRING, values), pa.float64())
    except pa.ArrowInvalid:
        return None
    if pc.all(pc.is_finite(numbers)).as_py() not in (True, None):
        return None
    return numbers


def _optional(values: pa.Array) -> pd.arrays.ArrowStringArray:
    """Return trimmed strings with ``""`` as missing, as a pandas string array."""
    text = _trim(values)
    return pd.arrays.ArrowStringArray(pc.if_else(pc.equal(text, ""), _NULL_STRING, text))


def _to_bool(values: pa.Array) -> pd.arrays.BooleanArray:
    text = pc.utf8_lower(_trim(values))
    true = pc.is_in(text, value_set=pa.array(_TRUE)).to_numpy(zero_copy_only=False)
    false = pc.is_in(text, value_set=pa.array(_FALSE)).to_numpy(zero_copy_only=False)
    return pd.arrays.BooleanArray(true, ~(true | false))


def _stable_ids(columns: list[pa.Array]) -> pa.Array:
    """Return ``h`` + 16 hex digits of SHA-1 of the joined raw values (ids of id-less files).

    The one per-row Python step left (SHA-1 keeps the ids of stores built before streaming).
    """
    joined = pc.binary_join_element_wise(*columns, "|").to_pylist()
    return pa.array(
        ["h" + hashlib.sha1(s.encode()).hexdigest()[:16] for s in joined], type=pa.string()
    )


def _categorize(
    categories: OffenseCategories,
    offense: pd.arrays.ArrowStringArray,
    description: pd.arrays.ArrowStringArray,
    domestic: pd.arrays.BooleanArray,
    codes: pd.arrays.ArrowStringArray,
    known: dict[tuple[object, ...], tuple[str, bool]] | None = None,
) -> tuple[pd.arrays.ArrowStringArray, np.ndarray]:
    """Categorise each distinct (offense, description, domestic, code) once; spread the result.

    `known` (the combinations categorised in earlier batches of the file, by `categories`) is
    looked up first and completed: a file repeats the same few thousand combinations, so later
    batches categorise next to nothing.
    """
    n = len(offense)
    if n == 0:
        return pd.arrays.ArrowStringArray(pa.array([], pa.string())), np.zeros(0, bool)
    arrays = [pa.array(values) for values in (offense, description, domestic, codes)]
    # one integer key per distinct combination (dictionary codes, NA kept as its own code)
    key = np.zeros(n, dtype=np.int64)
    for values in arrays:
        encoded = pc.dictionary_encode(values)
        code = pc.fill_null(encoded.indices, -1).to_numpy(zero_copy_only=False)
        key = key * (len(encoded.dictionary) + 1) + (code.astype(np.int64) + 1)
    _, first, inverse = np.unique(key, return_index=True, return_inverse=True)
    taken = pa.array(first)
    combos = list(zip(*(values.take(taken).to_pylist() for values in arrays), strict=True))
    known = {} if known is None else known
    new = [i for i, combo in enumerate(combos) if combo not in known]
    if new:
        rows = pa.array(first[new])
        offenses, descriptions, domestics, code_values = (
            values.take(rows).to_pandas(types_mapper=_arrow_dtype) for values in arrays
        )
        category, sensitive = categories.categorize(
            offenses, descriptions, domestics, codes=code_values
        )
        for i, name, flag in zip(
            new, category.astype(object).tolist(), np.asarray(sensitive, bool).tolist(), strict=True
        ):
            known[combos[i]] = (name, flag)
    names, flags = zip(*(known[combo] for combo in combos), strict=True)
    category_array = pa.array(names, type=pa.string())
    return (
        pd.arrays.ArrowStringArray(category_array.take(pa.array(inverse))),
        np.asarray(flags, dtype=bool)[inverse],
    )


def _arrow_dtype(kind: pa.DataType) -> object:
    """Return the pandas dtype of a reader column: Arrow-backed strings, nullable booleans."""
    if pa.types.is_string(kind):
        return _STRING_TYPE
    if pa.types.is_boolean(kind):
        return pd.BooleanDtype()
    return None


def categorize_distinct(
    categories: OffenseCategories, incidents: pd.DataFrame
) -> tuple[pd.arrays.ArrowStringArray, np.ndarray]:
    """Return the category and sensitive flag of canonical incidents, each combination once.

    The same as ``categories.categorize`` on the offense, description, domestic and FBI-code
    columns, with one call per distinct combination instead of per row.
    """
    return _categorize(
        categories,
        incidents[schema.OFFENSE],
        incidents[schema.DESCRIPTION],
        incidents[schema.DOMESTIC],
        incidents[schema.FBI_CODE],
    )


class _Verdict:
    """The first reason (if any) each row of a batch is rejected for, with column and value."""

    _KEYS = tuple(REASONS)

    def __init__(self, n: int) -> None:
        self.code = np.zeros(n, dtype=np.int8)
        self.which = np.zeros(n, dtype=np.int16)
        self.columns: list[str] = [""]
        self.values: list[pa.Array | dict[int, str] | None] = [None]

    @property
    def ok(self) -> np.ndarray:
        return self.code == 0

    def reject_empty(self, values: pa.Array, key: str, column: str) -> None:
        """Reject, for `key`, the rows whose trimmed text `values` of `column` is empty."""
        self.reject(pc.equal(values, "").to_numpy(zero_copy_only=False), key, column, values)

    def reject(
        self, mask: np.ndarray, key: str, column: str, values: pa.Array | dict[int, str] | None
    ) -> None:
        mask = np.asarray(mask, dtype=bool) & (self.code == 0)
        if not mask.any():
            return
        self.code[mask] = self._KEYS.index(key) + 1
        self.columns.append(column)
        self.values.append(values)
        self.which[mask] = len(self.columns) - 1

    def frame(self, source: str, lines: np.ndarray) -> pd.DataFrame:
        rows = np.flatnonzero(self.code)
        if not rows.size:
            return rejection_frame()
        values = np.full(rows.size, "", dtype=object)
        for which in np.unique(self.which[rows]):
            at = np.flatnonzero(self.which[rows] == which)
            source_values = self.values[which]
            if isinstance(source_values, dict):
                values[at] = [source_values.get(int(r), "") for r in rows[at]]
            elif source_values is not None:
                taken = source_values.take(pa.array(rows[at])).to_pylist()
                values[at] = [("" if v is None else str(v))[:200] for v in taken]
        frame = pd.DataFrame(
            {
                "source": source,
                "line": lines[rows].astype(np.int64),
                "column": np.asarray(self.columns, dtype=object)[self.which[rows]],
                "value": values,
                "reason": np.asarray([REASONS[k] for k in self._KEYS], dtype=object)[
                    self.code[rows] - 1
                ],
            }
        )
        return _rejection_dtypes(frame)


# --- reading ahead ----------------------------------------------------------------------------

_T = TypeVar("_T")
_DONE = object()


def prefetched(items: Iterator[_T], *, ahead: int = 1) -> Generator[_T, None, None]:
    """Yield the items of `items`, each made on a second thread while the previous one is used.

    A reader's batch (Arrow's CSV parser, Arrow and NumPy kernels, which release the GIL) is
    made while the caller joins and stores the one before, so an ingest uses both cores. At most
    `ahead` items are made before the caller asks for them. The first item is used alone: the
    thread reads on once the caller asks for the second, so what the caller settles on the
    first batch (the file's vocabulary, its notes) comes before anything the reader does later.

    An exception of `items` (:class:`RaggedRecords`, a broken file) is raised here at the item
    where it happened. When the caller stops early (an error, or it closes this generator), the
    thread stops after the item it is making and `items` is closed.
    """
    made: queue.Queue[tuple[object, BaseException | None]] = queue.Queue()
    may_make = threading.Semaphore(1)  # one credit per item the thread may make
    stop = threading.Event()

    def make() -> None:
        try:
            while True:
                while not may_make.acquire(timeout=0.1):
                    if stop.is_set():
                        return
                if stop.is_set():
                    return
                item = next(items, _DONE)
                made.put((item, None))
                if item is _DONE:
                    return
        except BaseException as err:  # handed to the caller's thread
            made.put((None, err))

    thread = threading.Thread(target=make, name="reader", daemon=True)
    thread.start()
    try:
        taken = 0
        while True:
            if taken == 1:
                may_make.release(1 + ahead)  # the second item, and the ones read ahead
            elif taken > 1:
                may_make.release()
            item, error = made.get()
            taken += 1
            if error is not None:
                raise error
            if item is _DONE:
                return
            yield item  # type: ignore[misc]
    finally:
        stop.set()
        thread.join()
        close = getattr(items, "close", None)
        if close is not None:
            close()


# --- reading incidents ------------------------------------------------------------------------


class RaggedRecords(Exception):  # noqa: N818 - a signal, not an error the user sees
    """Ragged CSV records found after batches were handed out: read again with ``exact=True``.

    The caller discards what it received (the store commits nothing before the file is read).
    """


@dataclass
class _Context:
    """What stays the same across the batches of one file."""

    path: Path
    source: str
    mapping: ColumnMapping
    categories: OffenseCategories
    x_col: str
    y_col: str
    crs: pyproj.CRS
    to_analysis: pyproj.Transformer
    to_wgs: pyproj.Transformer | None
    dates: DateReader
    ids: IdTable
    notes: list[str]
    #: What the column detection chose and warns about (reported after the dates note).
    detected: list[str] = field(default_factory=list)

    @property
    def x_name(self) -> str:
        """Return the x column as the user knows it (``geometry`` for a point layer's)."""
        return column_as_named(self.x_col)

    @property
    def y_name(self) -> str:
        """Return the y column as the user knows it (``geometry`` for a point layer's)."""
        return column_as_named(self.y_col)

    #: The offense combinations categorised so far (see `_categorize`).
    categorised: dict[tuple[object, ...], tuple[str, bool]] = field(default_factory=dict)


def _context(
    path: Path,
    columns: list[str],
    geometry_crs: str | None,
    table: pa.Table,
    mapping: ColumnMapping | None,
    analysis_crs: str,
    categories: OffenseCategories | None,
    now: datetime | None,
) -> _Context:
    base, absent = _without_absent_defaults(mapping or ColumnMapping(), columns)
    mapping = detect_mapping(columns, base=base)
    if mapping.timezone is None:  # iter_incidents sets the department's
        msg = f"{path}: no time zone for the times of the file"
        raise InputError(msg, path=str(path))
    _require_columns(mapping, columns, path)
    notes: list[str] = []
    detected: list[str] = []
    if base.occurred_time is None and mapping.occurred_time is not None:
        mapping = _checked_time_column(mapping, table, detected)
    detected[:0] = _detection_notes(base, mapping, columns) + absent
    use_xy = mapping.x is not None and (mapping.crs is not None or mapping.lat is None)
    if use_xy:
        x_col, y_col = mapping.x, mapping.y
        source_crs = mapping.crs or geometry_crs
        if source_crs is None:
            assert x_col is not None
            sample = np.abs(_to_float(_trim(table.column(x_col).combine_chunks())))
            if not np.any(sample > 180):
                source_crs = schema.WGS84
                notes.append(f"x/y columns {x_col!r}/{y_col!r} look like lon/lat; read as WGS84")
            else:
                msg = (
                    f"{path}: coordinates are projected x/y ({x_col!r}, {y_col!r}) but their "
                    "CRS is not given: set it to the EPSG code of the department's state plane "
                    "or UTM zone (e.g. EPSG:2926), as crs under [incidents] in the department "
                    "profile, --crs for the ingest command, or 'CRS of x/y columns' on the Data "
                    "and import page"
                )
                raise SchemaError(msg, path=str(path), column=x_col)
    else:
        x_col, y_col = mapping.lon, mapping.lat
        source_crs = schema.WGS84
    assert x_col is not None
    assert y_col is not None
    crs = _check_crs(source_crs, path)
    wgs = pyproj.CRS.from_user_input(schema.WGS84)
    assert mapping.occurred_at is not None
    return _Context(
        path=path,
        source=path.name,
        mapping=mapping,
        categories=categories or load_categories(),
        x_col=x_col,
        y_col=y_col,
        crs=crs,
        to_analysis=pyproj.Transformer.from_crs(crs, analysis_crs, always_xy=True),
        to_wgs=None if crs == wgs else pyproj.Transformer.from_crs(crs, wgs, always_xy=True),
        dates=DateReader(
            path=path,
            column=mapping.occurred_at,
            timezone=str(mapping.timezone),
            formats=mapping.date_formats,
            earliest_year=mapping.earliest_year,
            now=now,
        ),
        ids=IdTable(),
        notes=notes,
        detected=detected,
    )


_ID_ROLES = {"incident_id": "incident id", "case_number": "case number"}
#: A header naming a time of day (not a date, not a date and time).
_TIME_LIKE = re.compile(r"time")
_NOT_TIME = re.compile(r"date|stamp|updated|modified|entered|created")
#: A time of day in a date value (``10:00``), and one that is midnight, ending the value.
_CLOCK = r"\d:\d\d"
_MIDNIGHT = r"(?i)[ T](00:00(:00(\.0+)?)?|12:00(:00)? ?AM)\s*$"
#: Times written without a colon (``930``, ``2130``: HHMM, as CAD exports often hold them).
_HHMM = r"^\d{3,4}$"


def _without_absent_defaults(
    mapping: ColumnMapping, columns: list[str]
) -> tuple[ColumnMapping, list[str]]:
    """Return `mapping` without the department's columns this file lacks, and a note for each.

    A department's profile names the columns of its usual export (:attr:`ColumnMapping.defaults`);
    a file that lacks one of them (an export without the case number, the block or the reported
    beat) has that role detected instead, or read without it, and is not refused for it. A
    column named for this very file (a mapping file, ``--mapping``) must still be there.
    """
    absent = {
        role: getattr(mapping, role)
        for role in mapping.defaults
        if getattr(mapping, role) is not None and getattr(mapping, role) not in columns
    }
    if not absent:
        return mapping, []
    notes = [
        f"the department's column {column!r} ({role}) is not in this file: {role} is detected "
        "or left out"
        for role, column in absent.items()
    ]
    cleared: dict[str, Any] = dict.fromkeys(absent)
    return replace(mapping, **cleared), notes


def _detection_notes(base: ColumnMapping, mapping: ColumnMapping, columns: list[str]) -> list[str]:
    """Return the note naming each column role detection filled, and its warnings.

    Roles `base` names (a mapping file, the department's profile) are the user's and not
    listed. Warned: one column detected for both id roles, and a column that looks like a time
    of day but plays no role (the times would all be midnight if the date column holds none).
    """
    detected = {
        role: column
        for role, column in mapping.used_columns().items()
        if getattr(base, role) is None
    }
    shown = {
        r: column_as_named(c) if column_as_named(c) != c else repr(c) for r, c in detected.items()
    }
    notes = []
    if shown:
        pairs = ", ".join(f"{role} <- {column}" for role, column in shown.items())
        notes.append(f"columns detected: {pairs}")
    if (
        mapping.incident_id is not None
        and mapping.incident_id == mapping.case_number
        and ({"incident_id", "case_number"} & set(detected))
    ):
        notes.append(
            f"warning: column {mapping.incident_id!r} is both the incident id and the case "
            "number (no other id column was found); map incident_id in a mapping file if the "
            "file has a better one"
        )
    used = set(mapping.used_columns().values())
    for column in columns:
        norm = _normalize_header(column).replace("_", "")
        if column in used or not _TIME_LIKE.search(norm) or _NOT_TIME.search(norm):
            continue
        notes.append(
            f"warning: column {column!r} looks like a time of day but is not used: the times "
            f"come from {mapping.occurred_at!r} alone; if it holds dates only, map "
            f"{column!r} as occurred_time in a mapping file"
        )
    return notes


def _checked_time_column(
    mapping: ColumnMapping, table: pa.Table, notes: list[str]
) -> ColumnMapping:
    """Return `mapping` keeping a detected time column only if the dates hold no time of day.

    A date column whose values (of the first batch) carry times other than midnight already
    says when: adding the time column would make every value unreadable, so it is left out and
    a note says so. Times written without a colon (``2130``) are noted as read as HH:MM.
    """
    assert mapping.occurred_at is not None
    assert mapping.occurred_time is not None
    dates = _trim(table.column(mapping.occurred_at).combine_chunks())
    timed = pc.and_(
        pc.match_substring_regex(dates, _CLOCK),
        pc.invert(pc.match_substring_regex(dates, _MIDNIGHT)),
    )
    if pc.any(timed).as_py():
        notes.append(
            f"column {mapping.occurred_time!r} not combined with {mapping.occurred_at!r}: "
            f"the dates already hold times of day"
        )
        return replace(mapping, occurred_time=None)
    times = _trim(table.column(mapping.occurred_time).combine_chunks())
    hhmm = pc.match_substring_regex(times, _HHMM)
    if not mapping.date_formats and pc.any(hhmm).as_py():
        example = times.filter(hhmm)[0].as_py()
        notes.append(
            f"times in {mapping.occurred_time!r} without a colon (e.g. {example!r}) read as "
            f"hours and minutes ({_colon_time(pa.array([example]))[0].as_py()})"
        )
    return mapping


def _colon_time(times: pa.Array) -> pa.Array:
    """Return HHMM times (``930``, ``2130``) as ``09:30``, ``21:30``; other values as they are."""
    padded = pc.replace_substring_regex(times, r"^(\d)(\d\d)$", r"0\1\2")
    return pc.replace_substring_regex(padded, r"^(\d\d)(\d\d)$", r"\1:\2")


def _date_text(table: pa.Table, mapping: ColumnMapping) -> pa.Array:
    """Return the trimmed date (and time) text of each record."""
    assert mapping.occurred_at is not None
    text = _trim(table.column(mapping.occurred_at).combine_chunks())
    if mapping.occurred_time is not None:
        time = _trim(table.column(mapping.occurred_time).combine_chunks())
        if not mapping.date_formats:  # explicit formats read the values as they are
            # a date exported with a midnight time (``01/02/2018 12:00:00 AM``) takes the time's
            time = _colon_time(time)
            text = pc.replace_substring_regex(text, _MIDNIGHT, "")
        text = _trim(pc.binary_join_element_wise(text, time, " "))
    return text


def _date_column(
    path: Path, mapping: ColumnMapping, exact: bool, block_bytes: int
) -> Callable[[], Iterator[tuple[pa.Array, np.ndarray]]]:
    """Return a function that reads the whole date column again, batch by batch."""

    def read() -> Iterator[tuple[pa.Array, np.ndarray]]:
        for batch in _batches(path, exact=exact, block_bytes=block_bytes):
            yield _date_text(batch.table, mapping), batch.lines

    return read


def _record_ids(table: pa.Table, ctx: _Context) -> pa.Array:
    """Return each record's id: the id column trimmed, or a hash of the values that define it."""
    mapping = ctx.mapping
    if mapping.incident_id is not None:
        return _trim(table.column(mapping.incident_id).combine_chunks())
    defining = (
        mapping.occurred_at,
        mapping.offense,
        ctx.x_col,
        ctx.y_col,
        mapping.block,
        mapping.description,
    )
    return _stable_ids([table.column(c).combine_chunks() for c in defining if c])


def estimated_records(path: Path, first_rows: int, block_bytes: int) -> int:
    """Return about how many records `path` holds, from its first batch's `first_rows`.

    0 for the kinds that are read whole (GeoJSON, GeoPackage...); a Parquet file's count.
    """
    name = path.name.lower()
    if name.endswith((".parquet", ".geoparquet", ".pq")):
        return int(pq.ParquetFile(path).metadata.num_rows)
    if first_rows == 0 or not name.endswith((".csv", ".tsv", ".txt", ".gz")):
        return 0
    text_bytes = path.stat().st_size * (5 if name.endswith(".gz") else 1)  # gzip: ~5x
    return max(first_rows, int(text_bytes / block_bytes * first_rows))


def _file_ids(path: Path, ctx: _Context, exact: bool, block_bytes: int) -> Iterator[pa.Array]:
    """Yield the record ids of each batch of the file (read once more)."""
    for batch in _batches(path, exact=exact, block_bytes=block_bytes):
        yield _record_ids(batch.table, ctx)


def id_table(
    path: Path, first_rows: int, block_bytes: int, ids: Callable[[], Iterable[pa.Array]]
) -> IdTable:
    """Return the table of ids seen for the duplicate rule of file `path`.

    For a file of more than :data:`PRESCAN_IDS_ROWS` records (:func:`estimated_records`), the
    ids of every batch (`ids`, read once more) are scanned first and the table keeps only
    those that repeat; otherwise it keeps every id.
    """
    if estimated_records(path, first_rows, block_bytes) <= PRESCAN_IDS_ROWS:
        return IdTable()
    return IdTable(only=repeated_keys(hash_strings(batch) for batch in ids()))


def _read_batch(batch: _Batch, ctx: _Context) -> tuple[pd.DataFrame, pd.DataFrame]:
    table, lines, mapping = batch.table, batch.lines, ctx.mapping
    n = table.num_rows
    verdict = _Verdict(n)

    def raw(name: str) -> pa.Array:
        return table.column(name).combine_chunks()

    # --- coordinates
    raw_x, raw_y = raw(ctx.x_col), raw(ctx.y_col)
    text_x, text_y = _trim(raw_x), _trim(raw_y)
    x_missing = pc.equal(text_x, "").to_numpy(zero_copy_only=False)
    y_missing = pc.equal(text_y, "").to_numpy(zero_copy_only=False)
    x_name, y_name = ctx.x_name, ctx.y_name
    x = decimal_commas(text_x, _to_float(text_x), x_name, ctx.detected, skip=x_missing)
    y = decimal_commas(text_y, _to_float(text_y), y_name, ctx.detected, skip=y_missing)
    verdict.reject(x_missing | ((x == 0) & (y == 0)), "missing_coordinates", x_name, raw_x)
    verdict.reject(y_missing, "missing_coordinates", y_name, raw_y)
    verdict.reject(np.isnan(x) & ~x_missing, "bad_coordinates", x_name, raw_x)
    verdict.reject(np.isnan(y) & ~y_missing, "bad_coordinates", y_name, raw_y)
    if ctx.crs.is_geographic:
        with np.errstate(invalid="ignore"):
            verdict.reject(np.abs(x) > 180, "out_of_range", x_name, raw_x)
            verdict.reject(np.abs(y) > 90, "out_of_range", y_name, raw_y)
    ok = verdict.ok
    px, py = np.full(n, np.nan), np.full(n, np.nan)
    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
    if ok.any():
        px[ok], py[ok] = ctx.to_analysis.transform(x[ok], y[ok])
        if ctx.to_wgs is None:
            lon[ok], lat[ok] = x[ok], y[ok]
        else:
            lon[ok], lat[ok] = ctx.to_wgs.transform(x[ok], y[ok])
    verdict.reject(~np.isfinite(px) & ok, "bad_coordinates", x_name, raw_x)

    # --- date
    assert mapping.occurred_at is not None
    date_text = _date_text(table, mapping)
    utc, implausible = ctx.dates.read(date_text, lines)
    missing_date = pc.equal(date_text, "").to_numpy(zero_copy_only=False)
    verdict.reject(missing_date, "missing_date", mapping.occurred_at, date_text)
    verdict.reject((utc == NAT) & ~missing_date, "bad_date", mapping.occurred_at, date_text)
    verdict.reject(implausible, "implausible_date", mapping.occurred_at, date_text)

    # --- offense and id
    assert mapping.offense is not None
    offense = _trim(raw(mapping.offense))
    verdict.reject_empty(offense, "missing_offense", mapping.offense)
    ids = _record_ids(table, ctx)
    if mapping.incident_id is not None:
        verdict.reject_empty(ids, "missing_id", mapping.incident_id)
    ok = verdict.ok
    candidates = np.flatnonzero(ok)
    first = ctx.ids.add(hash_strings(ids.take(pa.array(candidates))), lines[candidates])
    repeated = candidates[first >= 0]
    if repeated.size:
        names = ids.take(pa.array(repeated)).to_pylist()
        values = {
            int(r): duplicate_value(name, int(line))
            for r, name, line in zip(repeated, names, first[first >= 0], strict=True)
        }
        mask = np.zeros(n, dtype=bool)
        mask[repeated] = True
        verdict.reject(mask, "duplicate_id", mapping.incident_id or "(derived id)", values)

    # --- assemble the accepted rows
    ok = verdict.ok
    keep = pa.array(ok)
    m = int(ok.sum())

    def column(role: str) -> pd.arrays.ArrowStringArray:
        name = getattr(mapping, role)
        if name is None:
            return pd.arrays.ArrowStringArray(pa.nulls(m, pa.string()))
        return _optional(raw(name).filter(keep))

    def flags(role: str) -> pd.arrays.BooleanArray:
        name = getattr(mapping, role)
        if name is None:
            return pd.arrays.BooleanArray(np.zeros(m, bool), np.ones(m, bool))
        return _to_bool(raw(name).filter(keep))

    offense_kept = pd.arrays.ArrowStringArray(pc.utf8_upper(offense.filter(keep)))
    description = column("description")
    domestic = flags("domestic")
    category, sensitive = _categorize(
        ctx.categories,
        offense_kept,
        description,
        domestic,
        column("fbi_code"),
        known=ctx.categorised,
    )
    occurred = pd.DatetimeIndex(utc[ok].view("datetime64[ns]")).tz_localize(UTC)
    incidents = pd.DataFrame(
        {
            schema.INCIDENT_ID: pd.arrays.ArrowStringArray(ids.filter(keep)),
            schema.CASE_NUMBER: column("case_number"),
            schema.OCCURRED_AT: occurred.tz_convert(mapping.timezone),
            schema.OFFENSE: offense_kept,
            schema.DESCRIPTION: description,
            schema.IUCR: column("iucr"),
            schema.FBI_CODE: column("fbi_code"),
            schema.CATEGORY: category,
            schema.IS_SENSITIVE: sensitive,
            schema.LOCATION_DESC: column("location_desc"),
            schema.BLOCK: column("block"),
            schema.DOMESTIC: domestic,
            schema.ARREST: flags("arrest"),
            schema.X: px[ok],
            schema.Y: py[ok],
            schema.LON: lon[ok],
            schema.LAT: lat[ok],
            schema.REPORTED_BEAT: column("reported_beat"),
            schema.SOURCE: pd.arrays.ArrowStringArray(
                pa.repeat(pa.scalar(ctx.source, pa.string()), m)
            ),
            schema.SOURCE_LINE: lines[ok].astype(np.int64),
        }
    )
    rejected = verdict.frame(ctx.source, lines)
    if batch.malformed:
        rejected = pd.concat([rejection_frame(batch.malformed), rejected], ignore_index=True)
    return incidents, rejected


def _department_defaults(
    mapping: ColumnMapping | None, analysis_crs: str | None
) -> tuple[ColumnMapping, str]:
    """Return `mapping` with a time zone, and the analysis CRS; unset: the department's."""
    mapping = mapping or ColumnMapping()
    if mapping.timezone is not None and analysis_crs is not None:
        return mapping, analysis_crs
    from geodata import settings

    department = settings.department()
    if mapping.timezone is None:
        mapping = replace(mapping, timezone=department.timezone)
    if analysis_crs is None:
        if department.analysis_crs is None:
            msg = f"{department.name}: no analysis CRS; give one (a projected CRS in metres)"
            raise CRSMismatchError(msg)
        analysis_crs = department.analysis_crs
    return mapping, analysis_crs


def iter_incidents(
    path: str | Path,
    *,
    mapping: ColumnMapping | None = None,
    analysis_crs: str | None = None,
    categories: OffenseCategories | None = None,
    exact: bool = False,
    block_bytes: int = BLOCK_BYTES,
    now: datetime | None = None,
    dates_from: str | Path | None = None,
) -> Iterator[ReadResult]:
    """Read an incident export batch by batch, validating every row; yield one result per batch.

    Parameters
    ----------
    path
        The export (see :func:`read_table` for formats).
    mapping
        Explicit column roles and options; roles left as None are auto-detected. Without a
        time zone, naive times are local to the selected department
        (:func:`geodata.settings.department`).
    analysis_crs
        Projected CRS (metres) for the ``x``/``y`` columns of the result (default: the
        selected department's).
    categories
        Offense-category mapping (default: the bundled ``offense_categories.toml``).
    exact
        Locate ragged CSV records first (one extra pass with Python's csv module). Needed only
        after :class:`RaggedRecords`.
    block_bytes
        Bytes of CSV per batch (memory is about four times this).
    now
        The present, for the plausible-date window (default: the clock).
    dates_from
        The file whose date column decides a day/month order that the first batch leaves
        open (default: `path`; a part of an export read on a Dask worker gives the export).

    Yields
    ------
    ReadResult
        Accepted rows and rejections of one batch; ``rows_read`` counts that batch's records.
        All results share one ``notes`` list, complete once the file is read.

    Raises
    ------
    InputError
        If the file cannot be read (also when it breaks part-way, e.g. a truncated ``.gz``),
        or its dates are ambiguous or conflicting.
    SchemaError
        If required columns are missing; the message lists all of them and the header found.
    RaggedRecords
        When ragged CSV records are found after batches were yielded.
    """
    path = Path(path)
    mapping, crs = _department_defaults(mapping, analysis_crs)
    ctx: _Context | None = None
    yielded = False
    batches = _batches(path, exact=exact, block_bytes=block_bytes)
    read_notes: list[str] = []  # the reader's, after the dates note (the first, for the report)
    try:
        for batch in batches:
            read_notes.extend(batch.notes)
            if ctx is None:
                ctx = _context(
                    path,
                    batch.table.column_names,
                    batch.crs,
                    batch.table,
                    mapping,
                    crs,
                    categories,
                    now,
                )
                whole = Path(dates_from or path)
                ctx.dates.prescan = _date_column(whole, ctx.mapping, exact, block_bytes)
                ctx.ids = id_table(
                    path,
                    batch.table.num_rows,
                    block_bytes,
                    functools.partial(_file_ids, path, ctx, exact, block_bytes),
                )
            incidents, rejected = _read_batch(batch, ctx)
            rows = batch.table.num_rows + len(batch.malformed)
            yielded = True
            yield ReadResult(incidents, rejected, rows, ctx.mapping, ctx.source, ctx.notes)
    except _RaggedFile:
        if yielded:
            raise RaggedRecords(str(path)) from None
        yield from iter_incidents(
            path,
            mapping=mapping,
            analysis_crs=crs,
            categories=categories,
            exact=True,
            block_bytes=block_bytes,
            now=now,
            dates_from=dates_from,
        )
        return
    if ctx is not None and ctx.dates.used_formats:
        ctx.notes.append(dates_note(ctx.dates.used_formats, ctx.mapping.timezone))
    if ctx is not None and ctx.mapping.incident_id is None:
        ctx.notes.append("no incident id column: ids are hashes of date, offense, place")
    if ctx is not None:
        ctx.notes.extend(ctx.detected)
        ctx.notes.extend(read_notes)


def read_incidents(
    path: str | Path,
    *,
    mapping: ColumnMapping | None = None,
    analysis_crs: str | None = None,
    categories: OffenseCategories | None = None,
    now: datetime | None = None,
) -> ReadResult:
    """Read a whole incident export, validate every row and return canonical columns.

    The batches of :func:`iter_incidents`, gathered (for files that fit in memory; the ingest
    streams).

    Returns
    -------
    ReadResult
        Accepted rows (not yet joined to beats, no duplicate ids) and rejections with reasons.

    Raises
    ------
    InputError
        If the file cannot be read at all, or its dates are ambiguous or conflicting.
    SchemaError
        If required columns are missing; the message lists all of them and the header found.
    """
    try:
        parts = list(
            iter_incidents(
                path, mapping=mapping, analysis_crs=analysis_crs, categories=categories, now=now
            )
        )
    except RaggedRecords:
        parts = list(
            iter_incidents(
                path,
                mapping=mapping,
                analysis_crs=analysis_crs,
                categories=categories,
                now=now,
                exact=True,
            )
        )
    if not parts:  # pragma: no cover - a CSV always yields its header batch
        msg = f"{path}: no records"
        raise InputError(msg, path=str(path))
    incidents = pd.concat([p.incidents for p in parts], ignore_index=True)
    rejected = pd.concat([p.rejected for p in parts], ignore_index=True)
    rejected = rejected.sort_values("line", kind="stable").reset_index(drop=True)
    rows_read = sum(p.rows_read for p in parts)
    return ReadResult(
        incidents,
        _rejection_dtypes(rejected),
        rows_read,
        parts[0].mapping,
        parts[0].source,
        parts[0].notes,
    )


def _rejection_dtypes(frame: pd.DataFrame) -> pd.DataFrame:
    """Return `frame` with the dtypes of :func:`rejection_frame`."""
    return frame.astype(
        {
            "line": "int64",
            "source": "string",
            "column": "string",
            "value": "string",
            "reason": "string",
        }
    )


_EMPTY_REJECTIONS = _rejection_dtypes(pd.DataFrame([], columns=list(REJECTION_COLUMNS)))


def _check_crs(crs: str, path: Path) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as err:
        msg = f"{path}: {crs!r} is not a known coordinate reference system (e.g. EPSG:2926)"
        raise CRSMismatchError(msg) from err


def _require_columns(mapping: ColumnMapping, columns: list[str], path: Path) -> None:
    missing: list[str] = []
    for role in _REQUIRED_ROLES:
        if getattr(mapping, role) is None:
            missing.append(f"{role} (e.g. {', '.join(repr(s) for s in _SYNONYMS[role][:4])})")
    has_latlon = mapping.lat is not None and mapping.lon is not None
    has_xy = mapping.x is not None and mapping.y is not None
    if not (has_latlon or has_xy):
        missing.append("coordinates: latitude/longitude columns, or x/y columns with --crs")
    named = [c for c in mapping.used_columns().values() if c not in columns]
    if named:
        missing.extend(f"column {c!r} named in the mapping" for c in named)
    if missing:
        header = ", ".join(repr(c) for c in columns if not c.startswith("__"))
        msg = f"{path}: required columns missing: {'; '.join(missing)}. Header found: {header}"
        raise SchemaError(msg, path=str(path), line=1, column=missing[0])


# --- two messages that other modules read back (geodata.ingest.PartOfFile) -----------------

_DUPLICATE_VALUE = re.compile(r"^(?P<id>.*) \(first at line (?P<line>\d+)\)$", re.DOTALL)


def duplicate_value(incident_id: str, first_line: int) -> str:
    """Return the value a ``duplicate incident id`` rejection shows: the id and its first line."""
    return f"{incident_id} (first at line {first_line})"


def duplicate_ids(values: pd.Series) -> pd.DataFrame:
    """Return the ``id`` and ``first_line`` that :func:`duplicate_value` values name, in order."""
    found = values.astype(object).str.extract(_DUPLICATE_VALUE)
    return pd.DataFrame(
        {"id": found["id"].astype(object), "first_line": found["line"].astype("int64")},
        index=values.index,
    )
