"""Calls for service (CAD records): canonical columns, derived intervals and validation.

A CAD export holds one row per call with the times it went through: received, dispatched (first
unit assigned), arrived (first unit on scene) and closed (all units cleared). This module turns
such rows, once their columns are mapped and their times parsed, into the canonical calls frame
with two derived intervals in minutes, and rejects rows whose times cannot be right, each with
its reason, so that ``rows read = rows accepted + rows rejected`` holds as for incidents.

Rules (see ``docs/planning.md``):

* ``received_at`` is required; a call without it cannot be placed in time.
* A time earlier than the step before it is rejected (a close before a dispatch, an arrival
  before a dispatch, a dispatch before the call was received).
* An interval longer than ``max_interval_h`` (default 24 h) is rejected as absurd.
* Missing later times are kept: 15% of real calls never see an arrival (cancelled, gone on
  arrival), and their time on task counts from dispatch.

``response_min`` is received -> arrived; ``time_on_task_min`` is arrived -> closed, or
dispatched -> closed when no arrival was recorded.

:func:`ingest_calls` reads a CAD export batch by batch with a :class:`CallMapping` through the
incident reader's own machinery (:func:`geodata.readers.iter_records`: the same formats, line
numbers, malformed-row and whole-file errors; :class:`geodata.dates.DateReader`: the same date
detection, day/month decision and plausible window), rejects repeated call ids across the whole
file, applies these rules and the store's beat join, and writes the calls to the store's
``calls`` table as one version (the same Delta Lake table code as incidents: all or nothing,
listable, undoable). Located calls get the beat that holds them; a call whose location is
redacted (``REDACTED``, blank or 0,0) keeps the area it reports, with ``join_status``
``reported``, or, reporting none the layer knows, is kept outside every beat (``unlocated``): it
still counts in the department's response times.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj

from geodata import schema
from geodata._idkernel import IdTable, hash_strings, in_background, warm_up_soon
from geodata.dates import DEFAULT_EARLIEST_YEAR, NAT, DateReader
from geodata.errors import InputError, SchemaError
from geodata.readers import (
    BLOCK_BYTES,
    REASONS,
    RaggedRecords,
    ReadOptions,
    _to_float,
    decimal_commas,
    id_table,
    iter_records,
    prefetched,
    rejection_frame,
)
from geodata.rejections import RejectionLog
from geodata.table import RecordTable, TableSpec
from geodata.tomlfiles import read_toml

__all__ = [
    "ARRIVED_AT",
    "CALLS",
    "CALL_COLUMNS",
    "CALL_ID",
    "CALL_REASONS",
    "CALL_TABLE_COLUMNS",
    "CALL_TIMES",
    "CALL_TYPE",
    "CLOSED_AT",
    "DISPATCHED_AT",
    "DISPOSITION",
    "PRIORITY",
    "RECEIVED_AT",
    "RESPONSE_MIN",
    "TIME_ON_TASK_MIN",
    "UNITS",
    "CallMapping",
    "CallsReport",
    "calls_table",
    "derive_intervals",
    "ingest_calls",
    "join_calls",
    "load_calls",
    "read_calls",
    "store_joined_calls",
    "units_from_plan",
]

CALL_ID = "call_id"
CALL_TYPE = "call_type"
PRIORITY = "priority"
RECEIVED_AT = "received_at"
DISPATCHED_AT = "dispatched_at"
ARRIVED_AT = "arrived_at"
CLOSED_AT = "closed_at"
UNITS = "units"
DISPOSITION = "disposition"
RESPONSE_MIN = "response_min"
TIME_ON_TASK_MIN = "time_on_task_min"

#: The call's times in the order a call goes through them.
CALL_TIMES = (RECEIVED_AT, DISPATCHED_AT, ARRIVED_AT, CLOSED_AT)

#: Canonical call columns and their dtypes (times are tz-aware in the store's zone).
CALL_COLUMNS: dict[str, str] = {
    CALL_ID: "string",
    CALL_TYPE: "string",
    PRIORITY: "string",
    RECEIVED_AT: "datetime64[ns, UTC]",
    DISPATCHED_AT: "datetime64[ns, UTC]",
    ARRIVED_AT: "datetime64[ns, UTC]",
    CLOSED_AT: "datetime64[ns, UTC]",
    UNITS: "float64",
    DISPOSITION: "string",
    RESPONSE_MIN: "float64",
    TIME_ON_TASK_MIN: "float64",
}

_LABELS = {
    RECEIVED_AT: "received",
    DISPATCHED_AT: "dispatched",
    ARRIVED_AT: "arrived",
    CLOSED_AT: "closed",
}


def units_from_plan(plans: pd.Series) -> pd.Series:
    """Return the number of officers a response plan sends (``"P4 2 Officer Response"`` -> 2).

    The first number before ``Officer`` counts the officers; a sergeant (``Sgt``/``Sergeant``)
    adds one. A plan that names no number of officers gives a missing value, not a guess.

    Parameters
    ----------
    plans
        Response-plan text as the CAD system writes it.

    Returns
    -------
    Series
        Nullable integers aligned with `plans`.
    """
    # a CAD system has a few dozen plans: read each distinct text once, not every row
    given = plans if isinstance(plans.dtype, pd.StringDtype) else plans.astype("string")
    codes, distinct = pd.factorize(given, use_na_sentinel=True)
    text = pd.Series(distinct, dtype="string")
    officers = pd.to_numeric(
        text.str.extract(r"(\d+)\s*Officer", expand=False), errors="coerce"
    ).astype("Int64")
    sergeant = text.str.contains(r"\bSgt\b|Sergeant", case=False, regex=True).fillna(False)
    per_plan = (officers + sergeant.astype("Int64")).astype("Int64")
    units = per_plan.reindex(codes).set_axis(plans.index)  # code -1 (missing) -> <NA>
    return units.astype("Int64")


def derive_intervals(
    calls: pd.DataFrame, *, max_interval_h: float = 24.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the valid calls with ``response_min`` and ``time_on_task_min``, and the rejects.

    Parameters
    ----------
    calls
        Calls with tz-aware ``received_at``, ``dispatched_at``, ``arrived_at`` and ``closed_at``
        (missing times are NaT) and any other columns, which are kept.
    max_interval_h
        Longest plausible interval between two of a call's times, in hours.

    Returns
    -------
    accepted
        A copy of the valid rows with the two derived columns, in minutes.
    rejected
        One row per rejected call: its index label in ``row``, the ``column`` at fault and the
        ``reason``. ``len(accepted) + len(rejected) == len(calls)``.

    Raises
    ------
    ValueError
        If a time column is missing or `max_interval_h` is not positive.
    """
    missing = [c for c in CALL_TIMES if c not in calls.columns]
    if missing:
        msg = f"calls need the time columns {missing} (mapped from the export)"
        raise ValueError(msg)
    if not max_interval_h > 0:
        msg = f"max_interval_h must be a positive number of hours, got {max_interval_h}"
        raise ValueError(msg)
    times = {c: _nanoseconds(calls[c]) for c in CALL_TIMES}
    rule = _interval_faults(times, max_interval_h)
    bad = rule >= 0
    rules = _interval_rules(max_interval_h)
    rejected = pd.DataFrame(
        {
            "row": calls.index[bad],
            "column": np.asarray([rules[k][0] for k in rule[bad]], dtype=object),
            "reason": pd.array([rules[k][1] for k in rule[bad]], dtype="string"),
        }
    )
    accepted = calls.loc[~bad].copy()
    response, on_task = _minutes({c: t[~bad] for c, t in times.items()})
    accepted[RESPONSE_MIN] = response
    accepted[TIME_ON_TASK_MIN] = on_task
    return accepted, rejected


def _nanoseconds(times: pd.Series) -> np.ndarray:
    """Return tz-aware times as UTC nanoseconds (``NAT`` where missing)."""
    utc = pd.to_datetime(times, utc=True)
    return utc.to_numpy(dtype="datetime64[ns]").view(np.int64)


def _interval_rules(max_interval_h: float) -> list[tuple[str, str]]:
    """Return the interval rules as ``(column at fault, reason)``, in the order they apply."""
    rules = [(RECEIVED_AT, "no received time")]
    for later_pos, later in enumerate(CALL_TIMES[1:], start=1):
        for earlier in reversed(CALL_TIMES[:later_pos]):
            rules.append((later, f"{_LABELS[later]} before {_LABELS[earlier]}"))
            rules.append(
                (later, f"{_LABELS[earlier]} to {_LABELS[later]} longer than {max_interval_h:g} h")
            )
    return rules


def _interval_faults(times: dict[str, np.ndarray], max_interval_h: float) -> np.ndarray:
    """Return, per call, the first rule of :func:`_interval_rules` it breaks (-1: none).

    `times` holds each of :data:`CALL_TIMES` as UTC nanoseconds (``NAT`` where missing). Each
    later time is checked against every earlier time present, the latest first.
    """
    n = len(times[RECEIVED_AT])
    rule = np.full(n, -1, dtype=np.int16)
    limit = pd.Timedelta(hours=max_interval_h).value
    masks = [times[RECEIVED_AT] == NAT]
    for later_pos, later in enumerate(CALL_TIMES[1:], start=1):
        for earlier in reversed(CALL_TIMES[:later_pos]):
            a, b = times[later], times[earlier]
            both = (a != NAT) & (b != NAT)
            gap = np.where(both, a - np.where(both, b, 0), 0)
            masks.append(both & (gap < 0))
            masks.append(both & (gap > limit))
    for k, mask in enumerate(masks):
        rule[mask & (rule < 0)] = k
    return rule


def _minutes(times: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Return response and time on task in minutes (NaN where a time is missing).

    Response is received -> arrived; time on task is arrived (else dispatched) -> closed.
    """

    def between(start: np.ndarray, end: np.ndarray) -> np.ndarray:
        both = (start != NAT) & (end != NAT)
        out = np.full(len(start), np.nan)
        out[both] = (end[both] - start[both]) / 60e9
        return out

    arrived = times[ARRIVED_AT]
    start = np.where(arrived != NAT, arrived, times[DISPATCHED_AT])
    return between(times[RECEIVED_AT], arrived), between(start, times[CLOSED_AT])


#: Columns of the store's ``calls`` table: the call, its place and the join.
CALL_TABLE_COLUMNS: dict[str, str] = {
    **CALL_COLUMNS,
    schema.X: "float64",
    schema.Y: "float64",
    schema.LON: "float64",
    schema.LAT: "float64",
    schema.BEAT: "string",
    schema.SECTOR: "string",
    schema.DISTRICT: "string",
    schema.REPORTED_BEAT: "string",
    schema.JOIN_STATUS: "string",
    schema.SOURCE: "string",
    schema.SOURCE_LINE: "int64",
}

#: The store's calls table: keyed by call id, partitioned by the local month received.
CALLS = TableSpec(
    kind="calls",
    columns=CALL_TABLE_COLUMNS,
    id_column=CALL_ID,
    time_column=RECEIVED_AT,
    sort_columns=(schema.DISTRICT, schema.SECTOR, schema.BEAT, RECEIVED_AT),
    stats_columns=(CALL_ID, schema.DISTRICT, schema.SECTOR, schema.BEAT),
)

#: A call's join status: the incidents' four (:data:`geodata.schema.JOIN_STATUSES`), then
#: ``reported`` (location withheld, the reported area is a beat of the layer) and
#: ``unlocated`` (location withheld, no such area).
CALL_JOIN_STATUSES = (*schema.JOIN_STATUSES, "reported", "unlocated")
_REPORTED, _UNLOCATED = len(schema.JOIN_STATUSES), len(schema.JOIN_STATUSES) + 1

#: Values of a coordinate column that mean "location withheld", not a bad value.
_WITHHELD = ["", "REDACTED", "NULL", "NONE", "NA", "N/A"]

#: Why a call's row can be rejected before its intervals are checked (those reasons are
#: written by :func:`derive_intervals`). The reasons the incident reader shares are its words.
CALL_REASONS = {
    "malformed": REASONS["malformed"],
    "bad_date": REASONS["bad_date"],
    "implausible_date": REASONS["implausible_date"],
    "missing_id": "missing call id",
    "duplicate_id": "duplicate call id",
    "bad_units": "a negative number of units",
    "bad_coordinates": "unparseable coordinates",
    "out_of_range": "longitude/latitude out of range",
}


@dataclass(frozen=True)
class CallMapping(ReadOptions):
    """Which column of a CAD export plays each role (None: the export has no such column).

    ``units`` is a number of officers; ``response_plan`` a plan text such as ``"P4 2 Officer
    Response"`` read with :func:`units_from_plan` when there is no ``units`` column. The
    options are :class:`~geodata.readers.ReadOptions`': date formats (for every time column;
    None decides per column from the data), the time zone of naive times (None: the store's)
    and the earliest plausible year.
    """

    call_id: str | None = None
    call_type: str | None = None
    priority: str | None = None
    received_at: str | None = None
    dispatched_at: str | None = None
    arrived_at: str | None = None
    closed_at: str | None = None
    units: str | None = None
    response_plan: str | None = None
    disposition: str | None = None
    reported_beat: str | None = None
    lon: str | None = None
    lat: str | None = None
    #: Projected coordinates (a state plane, a UTM zone), read in `crs` when lon/lat are not
    #: given.
    x: str | None = None
    y: str | None = None
    #: CRS of ``x``/``y`` (e.g. ``"EPSG:26915"``); an option, not a column.
    crs: str | None = None

    @classmethod
    def roles(cls) -> tuple[str, ...]:
        """Return the names of the column roles."""
        options = {f.name for f in fields(ReadOptions)} | {"crs"}
        return tuple(f.name for f in fields(cls) if f.name not in options)

    def used_columns(self) -> dict[str, str]:
        """Return role -> source column for the roles the export has."""
        return {r: getattr(self, r) for r in self.roles() if getattr(self, r)}

    @classmethod
    def from_file(cls, path: str | Path) -> CallMapping:
        """Read a mapping TOML: ``[columns]`` role = source column, ``[options]`` as named.

        The options are ``date_format``, ``timezone``, ``earliest_year`` and ``crs`` (of the
        ``x``/``y`` columns).

        Raises
        ------
        InputError
            If the file is not TOML or names an unknown role (the message lists the roles).
        """
        path = Path(path)
        raw = read_toml(path, "the calls mapping")
        columns = dict(raw.get("columns", {}))
        unknown = sorted(set(columns) - set(cls.roles()))
        if unknown:
            msg = f"{path}: unknown call roles {unknown}; the roles are {list(cls.roles())}"
            raise InputError(msg, path=str(path))
        options = raw.get("options", {})
        date_format = options.get("date_format")
        if isinstance(date_format, list):
            date_format = tuple(str(f) for f in date_format)
        earliest_year = options.get("earliest_year", DEFAULT_EARLIEST_YEAR)
        if not isinstance(earliest_year, int):
            msg = f"{path}: options.earliest_year must be a year, e.g. 1995"
            raise InputError(msg, path=str(path))
        timezone = options.get("timezone")
        crs = options.get("crs")
        return cls(
            **{k: str(v) for k, v in columns.items()},
            crs=None if crs is None else str(crs),
            date_format=date_format,
            timezone=None if timezone is None else str(timezone),
            earliest_year=earliest_year,
            roles_from_file=tuple(columns),
        )


@dataclass
class CallsReport:
    """What one calls ingest did: counts that reconcile, rejections, and where they went."""

    source: str
    rows_read: int = 0
    rows_accepted: int = 0
    rows_rejected: int = 0
    rows_new: int = 0
    rows_replaced: int = 0
    rejected_by_reason: dict[str, int] = field(default_factory=dict)
    located: int = 0
    location_withheld: int = 0
    outside: int = 0
    date_formats: dict[str, str] = field(default_factory=dict)
    #: What the reader found about the file (its delimiter, an unclosed quote, ...).
    notes: list[str] = field(default_factory=list)
    version: int | None = None
    rejections_csv: str | None = None

    def as_dict(self) -> dict[str, object]:
        """Return the report as JSON-ready values."""
        return dict(self.__dict__)


_STRING = pd.StringDtype("pyarrow")
_REJECTION_DTYPES = rejection_frame().dtypes.to_dict()


def _text(
    table: pa.Table, source: str | None, *, upper: bool = False
) -> pd.arrays.ArrowStringArray:
    """Return a column's trimmed text (upper-cased if `upper`), ``""`` as missing."""
    if source is None:
        return pd.arrays.ArrowStringArray(pa.nulls(table.num_rows, pa.string()))
    text = pc.utf8_trim_whitespace(table.column(source).combine_chunks())
    if upper:
        text = pc.utf8_upper(text)
    return pd.arrays.ArrowStringArray(pc.if_else(pc.equal(text, ""), None, text))


class _Columns:
    """A batch's source columns as pandas Series (text Arrow-backed), each made when first used.

    A call's reading needs few of them as pandas (the units, the location, a rejected row's
    value); the others are read from the Arrow table itself.
    """

    def __init__(self, table: pa.Table) -> None:
        self._table = table
        self._made: dict[str, pd.Series] = {}

    def __len__(self) -> int:
        return self._table.num_rows

    def __contains__(self, name: object) -> bool:
        return name in self._table.column_names

    def __getitem__(self, name: str) -> pd.Series:
        if name not in self._made:
            column = self._table.column(name)
            self._made[name] = (
                pd.Series(pd.arrays.ArrowStringArray(column), name=name)  # the same data
                if column.type == pa.string()
                else self._table.select([name]).to_pandas()[name]
            )
        return self._made[name]


class _CallReader:
    """What stays the same across the batches of one CAD export: date readers, ids seen, CRS."""

    def __init__(
        self,
        path: Path,
        mapping: CallMapping,
        *,
        timezone: str,
        analysis_crs: str,
        exact: bool,
        block_bytes: int,
        now: datetime | None,
    ) -> None:
        if mapping.received_at is None:
            msg = f"{path}: the calls mapping names no received_at column (when the call came in)"
            raise SchemaError(msg, path=str(path))
        self.path = path
        self.mapping = mapping
        self.used = mapping.used_columns()
        self.timezone = timezone
        self.to_xy = pyproj.Transformer.from_crs(schema.WGS84, analysis_crs, always_xy=True)
        #: From the export's x/y to lon/lat and to the analysis CRS (None: lon/lat columns).
        self.projected: tuple[pyproj.Transformer, pyproj.Transformer] | None = None
        if not (self.used.get("lon") and self.used.get("lat")) and self.used.get("x"):
            if not (self.used.get("y") and mapping.crs):
                msg = (
                    f"{path}: the calls mapping gives projected x/y coordinates but "
                    + ("no y column" if not self.used.get("y") else "not their CRS")
                    + "; name both columns and set crs under [options] (the EPSG code of the "
                    'state plane or UTM zone, e.g. crs = "EPSG:26915")'
                )
                raise SchemaError(msg, path=str(path), column=self.used["x"])
            try:
                given = pyproj.CRS.from_user_input(mapping.crs)
            except pyproj.exceptions.CRSError as err:
                msg = f"{path}: the calls mapping's crs {mapping.crs!r} is not a CRS ({err})"
                raise SchemaError(msg, path=str(path)) from err
            self.projected = (
                pyproj.Transformer.from_crs(given, schema.WGS84, always_xy=True),
                pyproj.Transformer.from_crs(given, analysis_crs, always_xy=True),
            )
        self.ids = IdTable()
        self.header_checked = False
        #: What the reader found about the file (see :func:`~geodata.readers.iter_records`).
        self.notes: list[str] = []
        self.dates: dict[str, DateReader] = {}
        for role in CALL_TIMES:
            source = self.used.get(role)
            if source is None:
                continue
            reader = DateReader(
                path=path,
                column=source,
                timezone=timezone,
                formats=mapping.date_formats,
                earliest_year=mapping.earliest_year,
                now=now,
            )
            reader.prescan = self._column_text(source, exact, block_bytes)
            self.dates[role] = reader

    def _column_text(
        self, source: str, exact: bool, block_bytes: int
    ) -> Callable[[], Iterator[tuple[pa.Array, np.ndarray]]]:
        """Return a function that reads one column again, batch by batch (for DateReader)."""

        def read() -> Iterator[tuple[pa.Array, np.ndarray]]:
            for table, lines, _ in iter_records(self.path, exact=exact, block_bytes=block_bytes):
                yield pc.utf8_trim_whitespace(table.column(source).combine_chunks()), lines

        return read

    @property
    def date_formats(self) -> dict[str, str]:
        """Return, per time role, the format(s) its column was read in."""
        return {
            role: " or ".join(reader.used_formats)
            for role, reader in self.dates.items()
            if reader.used_formats
        }

    def check_header(self, columns: list[str]) -> None:
        """Raise :class:`SchemaError` naming every mapped column the header lacks."""
        missing = sorted(set(self.used.values()) - set(columns))
        if missing:
            header = ", ".join(repr(c) for c in columns)
            msg = (
                f"{self.path}: mapped columns {missing} are not in the file's header "
                f"(line 1: {header})"
            )
            raise SchemaError(msg, path=str(self.path), line=1, column=missing[0])
        self.header_checked = True

    def record_ids(self, table: pa.Table) -> pd.arrays.ArrowStringArray:
        """Return each record's call id (trimmed; missing as null), or a hash of its values."""
        source = self.used.get(CALL_ID)
        if source is not None:
            return _text(table, source)
        everything = table.to_pandas().astype(str).agg("|".join, axis=1)  # the file's own values
        hashed = pd.util.hash_pandas_object(everything, index=False).astype(str).astype(_STRING)
        return hashed.array

    def read(self, table: pa.Table, lines: np.ndarray) -> tuple[pd.DataFrame, pd.DataFrame]:
        """Return one batch's accepted calls (canonical columns, intervals, x/y) and rejects."""
        if not self.header_checked:
            self.check_header(table.column_names)
        used, n = self.used, table.num_rows
        chunk = _Columns(table.select(sorted(set(used.values()))))
        rejected_at = np.zeros(n, dtype=bool)
        reason = np.full(n, None, dtype=object)
        column = np.full(n, "", dtype=object)
        value = np.full(n, "", dtype=object)

        def flag(mask: pd.Series | np.ndarray, source: str, text: str, values: object) -> None:
            if isinstance(mask, pd.Series):  # nullable booleans: missing is "no"
                mask = mask.to_numpy(dtype=bool, na_value=False)
            new = np.asarray(mask, dtype=bool) & ~rejected_at
            if new.any():
                at = np.flatnonzero(new)
                rejected_at[at] = True
                reason[at] = text
                column[at] = source
                if isinstance(values, pd.Series):
                    values = values.array
                if isinstance(values, (pa.Array, pd.api.extensions.ExtensionArray)):
                    value[at] = np.asarray(values.take(at), dtype=object)
                else:
                    value[at] = np.asarray(values, dtype=object)[at]

        # the columns, in order, made into one frame at the end (inserting them one by one into
        # a frame costs more than reading them)
        columns: dict[str, object] = {
            schema.SOURCE: pd.array(np.full(n, self.path.name, dtype=object), dtype=_STRING),
            schema.SOURCE_LINE: lines.astype(np.int64),
        }
        times: dict[str, np.ndarray] = {}
        for role in CALL_TIMES:
            reader = self.dates.get(role)
            if reader is None:
                times[role] = np.full(n, NAT, dtype=np.int64)
                continue
            raw = table.column(reader.column).combine_chunks()
            text = pc.utf8_trim_whitespace(raw)
            utc, implausible = reader.read(text, lines)
            given = pc.not_equal(text, "").to_numpy(zero_copy_only=False)
            flag(given & (utc == NAT), reader.column, CALL_REASONS["bad_date"], raw)
            flag(implausible, reader.column, CALL_REASONS["implausible_date"], raw)
            times[role] = utc
        for role in CALL_TIMES:
            stamps = pd.DatetimeIndex(times[role].view("datetime64[ns]")).tz_localize(UTC)
            columns[role] = stamps.tz_convert(self.timezone)
        for role in (CALL_TYPE, PRIORITY, DISPOSITION):
            columns[role] = _text(table, used.get(role))
        columns[CALL_ID] = self.record_ids(table)
        if used.get(CALL_ID) is not None:
            source = used[CALL_ID]
            missing = pd.isna(columns[CALL_ID])
            flag(np.asarray(missing, dtype=bool), source, CALL_REASONS["missing_id"], chunk[source])
        if used.get(UNITS):
            units = pd.to_numeric(chunk[used[UNITS]].str.strip(), errors="coerce")
            flag(units < 0, used[UNITS], CALL_REASONS["bad_units"], chunk[used[UNITS]])
            columns[UNITS] = units.astype("float64")
        elif used.get("response_plan"):
            plans = units_from_plan(chunk[used["response_plan"]])
            columns[UNITS] = plans.astype("Float64").astype("float64")
        else:
            columns[UNITS] = np.nan
        reported = used.get(schema.REPORTED_BEAT)
        columns[schema.REPORTED_BEAT] = _text(table, reported, upper=True)
        self._locate(chunk, columns, flag)
        # the interval rules, on the rows that passed so far (derive_intervals' rules)
        rule = _interval_faults(times, 24.0)
        broken = (rule >= 0) & ~rejected_at
        rules = _interval_rules(24.0)
        for k in np.unique(rule[broken]):
            role, text = rules[int(k)]
            source = used.get(role, role)
            raw = chunk[source] if source in chunk else np.full(n, "", dtype=object)
            flag(broken & (rule == k), source, text, raw)
        columns[RESPONSE_MIN], columns[TIME_ON_TASK_MIN] = _minutes(times)
        frame = pd.DataFrame(columns, index=pd.RangeIndex(n))
        # ids last: a row rejected for another reason does not claim its id
        ok = np.flatnonzero(~rejected_at)
        ids = pa.array(frame[CALL_ID].array).take(pa.array(ok))
        first = self.ids.add(hash_strings(ids), lines[ok])
        repeated = ok[first >= 0]
        if repeated.size:
            mask = np.zeros(n, dtype=bool)
            mask[repeated] = True
            shown = np.full(n, "", dtype=object)
            names = frame[CALL_ID].to_numpy(dtype=object)[repeated]
            shown[repeated] = [
                f"{name} (first at line {int(line)})"
                for name, line in zip(names, first[first >= 0], strict=True)
            ]
            flag(mask, used.get(CALL_ID, "(derived id)"), CALL_REASONS["duplicate_id"], shown)
        accepted = frame.loc[~rejected_at] if rejected_at.any() else frame
        rejected = pd.DataFrame(
            {
                "source": self.path.name,
                "line": lines[rejected_at],
                "column": column[rejected_at],
                "value": [str(v)[:200] for v in value[rejected_at]],
                "reason": reason[rejected_at],
            }
        ).astype(_REJECTION_DTYPES)
        return accepted, rejected

    def _locate(
        self,
        chunk: _Columns,
        out: dict[str, object],
        flag: Callable[[pd.Series | np.ndarray, str, str, object], None],
    ) -> None:
        """Add lon/lat and x/y to the batch's columns `out` (NaN where the location is withheld).

        The location is read from lon/lat, or from projected x/y in the mapping's CRS. Bad
        coordinates are flagged.
        """
        n = len(chunk)
        columns = {
            name: np.full(n, np.nan) for name in (schema.LON, schema.LAT, schema.X, schema.Y)
        }
        a_col, b_col = ("x", "y") if self.projected else ("lon", "lat")
        a_col, b_col = self.used.get(a_col, ""), self.used.get(b_col, "")
        if a_col and b_col:
            raw_a, raw_b = pa.array(chunk[a_col].array), pa.array(chunk[b_col].array)
            a, a_withheld = _coordinates(raw_a, a_col, self.notes)
            b, b_withheld = _coordinates(raw_b, b_col, self.notes)
            withheld = a_withheld | b_withheld | ((a == 0) & (b == 0))
            with np.errstate(invalid="ignore"):
                flag(~withheld & np.isnan(a), a_col, CALL_REASONS["bad_coordinates"], raw_a)
                flag(~withheld & np.isnan(b), b_col, CALL_REASONS["bad_coordinates"], raw_b)
                parsed = ~withheld & ~np.isnan(a) & ~np.isnan(b)
                if self.projected:
                    lon, lat = np.full(n, np.nan), np.full(n, np.nan)
                    if parsed.any():
                        lon[parsed], lat[parsed] = self.projected[0].transform(a[parsed], b[parsed])
                else:
                    lon, lat = a, b
                lon_out = parsed & ~(np.abs(lon) <= 180)
                lat_out = parsed & ~(np.abs(lat) <= 90)
                flag(lon_out, a_col, CALL_REASONS["out_of_range"], raw_a)
                flag(lat_out & ~lon_out, b_col, CALL_REASONS["out_of_range"], raw_b)
                ok = parsed & ~lon_out & ~lat_out
            if ok.any():
                columns[schema.LON][ok] = lon[ok]
                columns[schema.LAT][ok] = lat[ok]
                if self.projected:
                    xy = self.projected[1].transform(a[ok], b[ok])
                else:
                    xy = self.to_xy.transform(lon[ok], lat[ok])
                columns[schema.X][ok], columns[schema.Y][ok] = xy
        out.update(columns)


def _coordinates(raw: pa.Array, column: str, notes: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """Return a coordinate column as floats (NaN where unreadable) and where it is withheld.

    A word that withholds a location (``REDACTED``, ``NULL``, ...) or an empty value withholds
    it; such words are read as NaN without counting as unreadable. Numbers written with a
    decimal comma are read as decimals, with a note (:func:`geodata.readers.decimal_commas`).
    """
    text = pc.utf8_trim_whitespace(raw)
    withheld = pc.is_in(pc.utf8_upper(text), value_set=pa.array(_WITHHELD)).to_numpy(
        zero_copy_only=False
    )
    # a word that withholds a location (not an empty value) fails a plain cast anyway
    words = withheld & pc.not_equal(text, "").to_numpy(zero_copy_only=False)
    numbers = _to_float(text, words=bool(words.any()))
    return decimal_commas(text, numbers, column, notes, skip=withheld), withheld


def read_calls(
    path: str | Path,
    mapping: CallMapping,
    *,
    timezone: str,
    analysis_crs: str,
    exact: bool = False,
    block_bytes: int = BLOCK_BYTES,
    now: datetime | None = None,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, int]]:
    """Yield ``(accepted, rejected, rows_read)`` for each batch of a CAD export.

    The file is read as incidents are (:func:`geodata.readers.iter_records`: CSV, ``.gz``,
    Parquet, ...) and its time columns with :class:`~geodata.dates.DateReader` (formats
    decided for the whole column; an ambiguous day/month order stops the import). Accepted calls
    carry the canonical columns with tz-aware times, the derived intervals and ``x``/``y`` in
    `analysis_crs` (NaN where the location is withheld). Rejected rows carry ``source, line,
    column, value, reason``; in a CSV line 1 is the header.

    Parameters
    ----------
    path
        The export.
    mapping
        Which columns hold the call's roles, and the date format(s) if known.
    timezone
        IANA zone of the export's naive times.
    analysis_crs
        Projected CRS (metres) of ``x``/``y``.
    exact
        Locate ragged CSV records first (after :class:`~geodata.readers.RaggedRecords`).
    block_bytes
        Bytes of CSV per batch.
    now
        The present, for the plausible-date window (default: the clock).

    Raises
    ------
    SchemaError
        If a mapped column is missing or ``received_at`` is not mapped.
    InputError
        If the file cannot be read (also part-way), or a time column's day/month order is
        ambiguous or conflicting.
    RaggedRecords
        When ragged CSV records are found after batches were yielded.
    """
    calls = _CallReader(
        Path(path),
        mapping,
        timezone=timezone,
        analysis_crs=analysis_crs,
        exact=exact,
        block_bytes=block_bytes,
        now=now,
    )
    yield from _read_with(calls, exact=exact, block_bytes=block_bytes)


def _read_with(
    calls: _CallReader, *, exact: bool, block_bytes: int
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, int]]:
    first = True
    batches = iter_records(calls.path, exact=exact, block_bytes=block_bytes, notes=calls.notes)
    for table, lines, malformed in batches:
        if first:  # a large file's repeated ids are found first (readers.id_table)
            calls.check_header(table.column_names)
            calls.ids = id_table(
                calls.path,
                table.num_rows,
                block_bytes,
                lambda: (
                    pa.array(calls.record_ids(t))
                    for t, _, _ in iter_records(calls.path, exact=exact, block_bytes=block_bytes)
                ),
            )
            first = False
        accepted, rejected = calls.read(table, lines)
        if len(malformed):
            rejected = pd.concat([malformed, rejected], ignore_index=True)
            rejected = rejected.sort_values("line", kind="stable", ignore_index=True)
        yield accepted, rejected, table.num_rows + len(malformed)


def calls_table(store: object) -> RecordTable:
    """Return the store's ``calls`` table (a second record kind beside incidents)."""
    return RecordTable(store.root, CALLS, store.timezone)  # type: ignore[attr-defined]


def ingest_calls(
    path: str | Path,
    store: object,
    *,
    mapping: CallMapping,
    block_bytes: int = BLOCK_BYTES,
    now: datetime | None = None,
) -> CallsReport:
    """Read a CAD export, join each call to the store's beats and store the calls as one version.

    Parameters
    ----------
    path
        The export (CSV, optionally ``.gz``, or any format :func:`read_calls` reads).
    store
        An :class:`~geodata.store.IncidentStore` with a beat layer.
    mapping
        Which columns hold the call's roles; its ``timezone`` (None: the store's) is the zone
        of the export's naive times (they are stored in the store's zone).
    block_bytes
        Bytes of CSV read at a time (memory is bounded by a batch, then by a month when
        writing).
    now
        The present, for the plausible-date window (default: the clock).

    Returns
    -------
    CallsReport
        ``rows_read == rows_accepted + rows_rejected``; rejected rows are written with their
        line, column, value and reason to ``reports/`` in the store (formulas neutralised).

    Raises
    ------
    InputError
        If the file cannot be read (nothing is stored), or its dates are ambiguous.
    SchemaError
        If a mapped column is missing.
    """
    path = Path(path)
    try:
        return _ingest(path, store, mapping, exact=False, block_bytes=block_bytes, now=now)
    except RaggedRecords:  # found after batches were staged: nothing was committed
        return _ingest(path, store, mapping, exact=True, block_bytes=block_bytes, now=now)


def _ingest(
    path: Path,
    store: object,
    mapping: CallMapping,
    *,
    exact: bool,
    block_bytes: int,
    now: datetime | None,
) -> CallsReport:
    report = CallsReport(source=path.name)
    rejected_parts = RejectionLog(by_line=False)
    batches = join_calls(
        path,
        store,
        mapping,
        report,
        rejected_parts,
        exact=exact,
        block_bytes=block_bytes,
        now=now,
    )
    try:
        return store_joined_calls(path, store, batches, report, rejected_parts)
    finally:  # also when the file fails (a ragged record: read again with a new log)
        rejected_parts.close()


def join_calls(
    path: Path,
    store: object,
    mapping: CallMapping,
    report: CallsReport,
    rejected_parts: RejectionLog,
    *,
    exact: bool = False,
    block_bytes: int = BLOCK_BYTES,
    now: datetime | None = None,
) -> Iterator[pd.DataFrame]:
    """Yield the joined batches of a CAD export, counting them in `report` as they go.

    The reading and join half of :func:`ingest_calls`, which a Dask worker runs on its own
    (:func:`geodata.distributed_ingest.ingest_calls_files`): each batch's rejected rows are
    appended to `rejected_parts`, and the report's ``date_formats`` are set after the last.
    A batch holds the calls table's columns and may hold others, which the store leaves out.

    Raises
    ------
    InputError, SchemaError, RaggedRecords
        As :func:`read_calls`.
    """
    from geodata.join import lookup_incidents, with_beats

    warm_up_soon()  # numba loads while the beats and the first batch are read
    beats = store.read_layer("beats")  # type: ignore[attr-defined]
    # the store's kept index (BeatIndex's defaults), not the beats rasterised again
    index = store.beat_index()  # type: ignore[attr-defined]
    in_background(index.warm_up, name="join-warm-up")  # while the first batch is read
    calls = _CallReader(
        path,
        mapping,
        timezone=mapping.timezone or store.timezone,  # type: ignore[attr-defined]
        analysis_crs=store.analysis_crs,  # type: ignore[attr-defined]
        exact=exact,
        block_bytes=block_bytes,
        now=now,
    )

    def batches() -> Iterator[pd.DataFrame]:
        # each batch is read on a second thread while the one before is joined and stored
        reading = prefetched(_read_with(calls, exact=exact, block_bytes=block_bytes))
        try:
            for accepted, rejected, rows in reading:
                report.rows_read += rows
                rejected_parts.append(rejected)
                located = accepted[schema.X].notna().to_numpy()
                # every call through the join (a withheld location, NaN, comes back outside),
                # then the withheld ones take their reported area if the layer has it
                result, reported = lookup_incidents(accepted, index)
                assert reported is not None  # the reader gives every call its reported area
                if not located.all():
                    withheld = ~located
                    area = index.positions(reported.array[withheld])
                    result.beat_index[withheld] = area
                    result.status[withheld] = np.where(area >= 0, _REPORTED, _UNLOCATED)
                # the reader's frame is the ingest's own: the beats are set on it, not a copy
                batch = with_beats(
                    accepted, beats, index, result, reported, statuses=CALL_JOIN_STATUSES
                )
                report.rows_accepted += len(batch)
                report.located += int(located.sum())
                report.location_withheld += int((~located).sum())
                report.outside += int((batch[schema.BEAT] == schema.OUTSIDE).sum())
                yield batch
            report.date_formats = calls.date_formats
            report.notes = list(calls.notes)
        finally:
            reading.close()

    return batches()


def store_joined_calls(
    path: Path,
    store: object,
    batches: Iterable[pd.DataFrame | pa.Table],
    report: CallsReport,
    rejected_parts: RejectionLog,
) -> CallsReport:
    """Store joined calls as one version and write the rejections; return the full report.

    The storing half of :func:`ingest_calls`: `batches` are :func:`join_calls`' (or the same
    rows as Arrow tables) and fill in `report` and `rejected_parts` while they are consumed.
    """
    summary: dict[str, object] = {"file": path.name, "kind": "calls"}
    table = calls_table(store)
    new, replaced, version = table.upsert_batches(batches, source=summary)
    report.rows_rejected = len(rejected_parts)
    report.rows_new, report.rows_replaced, report.version = new, replaced, version
    if len(rejected_parts):
        report.rejected_by_reason = {str(k): int(v) for k, v in rejected_parts.counts().items()}
    stem = path.name.split(".")[0]  # "calls.csv.gz" -> "calls"
    # one file per ingest, named by its time as the incidents' are: an earlier one is kept
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    reports: Path = store.reports_dir  # type: ignore[attr-defined]
    out = reports / f"{stem}-{stamp}-calls-rejected.csv"
    taken = 1
    while out.exists():  # a second ingest of the file within the same second
        taken += 1
        out = reports / f"{stem}-{stamp}-{taken}-calls-rejected.csv"
    report.rejections_csv = str(rejected_parts.write_csv(out))
    rejected_parts.close()  # written to the report: the rows on disk go now
    summary.update(report.as_dict())
    return report


def load_calls(
    store: object,
    *,
    columns: list[str] | None = None,
    start: pd.Timestamp | str | None = None,
    end: pd.Timestamp | str | None = None,
    beats: list[str] | None = None,
) -> pd.DataFrame:
    """Return the stored calls (all columns by default) received in ``[start, end)``.

    Times are tz-aware in the store's zone; an empty frame when the store has no calls.
    """
    table = calls_table(store)
    wanted = columns or list(CALL_TABLE_COLUMNS)
    tz = store.timezone  # type: ignore[attr-defined]
    if not table.exists():
        return pd.DataFrame({c: pd.Series(dtype=t) for c, t in
                             CALLS.pandas_dtypes(wanted, tz).items()})  # fmt: skip

    def local(value: pd.Timestamp | str | None) -> pd.Timestamp | None:
        if value is None:
            return None
        ts = pd.Timestamp(value)
        return ts.tz_localize(tz) if ts.tzinfo is None else ts.tz_convert(tz)

    arrow = table.read(
        wanted, start=local(start), end=local(end), where={schema.BEAT: beats} if beats else None
    )
    frame = arrow.to_pandas(coerce_temporal_nanoseconds=True)
    for column, dtype in CALLS.pandas_dtypes(wanted, tz).items():
        if str(dtype).startswith("datetime64"):
            frame[column] = pd.to_datetime(frame[column]).dt.tz_convert(tz)
        elif dtype == "boolean" or str(dtype).startswith("string"):
            frame[column] = frame[column].astype(dtype)
    return frame
