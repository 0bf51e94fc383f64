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

:func:`ingest_calls` reads a CAD export in chunks with a :class:`CallMapping`, applies these
rules and the store's beat join, and writes the calls to the store's ``calls`` table as one
version (the same Delta Lake table code as incidents: all or nothing, listable, undoable).
Located calls get the beat that holds them; a call whose location is redacted (``REDACTED``,
blank or 0,0) keeps the area it reports, with ``join_status`` ``reported``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Iterator
from dataclasses import dataclass, field, fields
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from geodata import schema
from geodata.errors import InputError, SchemaError
from geodata.table import RecordTable, TableSpec

__all__ = [
    "ARRIVED_AT",
    "CALLS",
    "CALL_COLUMNS",
    "CALL_ID",
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
    "load_calls",
    "read_calls",
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
    text = plans.astype("string")
    officers = pd.to_numeric(
        text.str.extract(r"(\d+)\s*Officer", expand=False), errors="coerce"
    ).astype("Int64")
    sergeant = text.str.contains(r"\bSgt\b|Sergeant", case=False, regex=True).fillna(False)
    return (officers + sergeant.astype("Int64")).astype("Int64")


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
    times = {c: calls[c] for c in CALL_TIMES}
    reason = pd.Series(pd.NA, index=calls.index, dtype="string")
    column = pd.Series(pd.NA, index=calls.index, dtype="string")

    def flag(mask: pd.Series, col: str, text: str) -> None:
        new = mask.fillna(False).to_numpy() & reason.isna().to_numpy()
        reason[new] = text
        column[new] = col

    flag(times[RECEIVED_AT].isna(), RECEIVED_AT, "no received time")
    limit = pd.Timedelta(hours=max_interval_h)
    # each later time is checked against the latest earlier time that is present
    for later_pos, later in enumerate(CALL_TIMES[1:], start=1):
        for earlier in reversed(CALL_TIMES[:later_pos]):
            gap = times[later] - times[earlier]
            both = times[later].notna() & times[earlier].notna()
            flag(
                both & (gap < pd.Timedelta(0)),
                later,
                f"{_LABELS[later]} before {_LABELS[earlier]}",
            )
            flag(
                both & (gap > limit),
                later,
                f"{_LABELS[earlier]} to {_LABELS[later]} longer than {max_interval_h:g} h",
            )
    bad = reason.notna()
    rejected = pd.DataFrame(
        {"row": calls.index[bad], "column": column[bad].to_numpy(), "reason": reason[bad]}
    ).reset_index(drop=True)
    accepted = calls.loc[~bad].copy()
    minutes = pd.Timedelta(minutes=1)
    accepted[RESPONSE_MIN] = (accepted[ARRIVED_AT] - accepted[RECEIVED_AT]) / minutes
    start = accepted[ARRIVED_AT].fillna(accepted[DISPATCHED_AT])
    accepted[TIME_ON_TASK_MIN] = (accepted[CLOSED_AT] - start) / minutes
    return accepted, rejected


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

#: Formats tried, whole column at a time, when a mapping names none.
DATE_FORMATS = (
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %H:%M",
)
#: Values of a coordinate column that mean "location withheld", not a bad value.
_WITHHELD = {"", "REDACTED", "NULL", "NONE", "NA", "N/A"}
_EARLIEST_YEAR = 1990


@dataclass(frozen=True)
class CallMapping:
    """Which column of a CAD export plays each role (None: the export has no such column).

    ``units`` is a number of officers; ``response_plan`` a plan text such as ``"P4 2 Officer
    Response"`` read with :func:`units_from_plan` when there is no ``units`` column.
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
    #: strptime format of every time column; None decides per column from the data.
    date_format: str | None = None
    roles_from_file: tuple[str, ...] = field(default=(), compare=False)

    @classmethod
    def roles(cls) -> tuple[str, ...]:
        """Return the names of the column roles."""
        return tuple(
            f.name for f in fields(cls) if f.name not in ("date_format", "roles_from_file")
        )

    @classmethod
    def from_file(cls, path: str | Path) -> CallMapping:
        """Read a mapping TOML (``[columns]`` role = source column, ``[options]`` date_format).

        Raises
        ------
        InputError
            If the file is not TOML or names an unknown role (the message lists the roles).
        """
        path = Path(path)
        try:
            raw = tomllib.loads(path.read_text(encoding="utf-8"))
        except (OSError, tomllib.TOMLDecodeError) as err:
            msg = f"{path}: cannot read the calls mapping ({err})"
            raise InputError(msg, path=str(path)) from err
        columns = dict(raw.get("columns", {}))
        unknown = sorted(set(columns) - set(cls.roles()))
        if unknown:
            msg = f"{path}: unknown call roles {unknown}; the roles are {list(cls.roles())}"
            raise InputError(msg, path=str(path))
        options = raw.get("options", {})
        return cls(
            **{k: str(v) for k, v in columns.items()},
            date_format=options.get("date_format"),
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
    version: int | None = None
    rejected_file: str | None = None

    def as_dict(self) -> dict[str, object]:
        """Return the report as JSON-ready values."""
        return dict(self.__dict__)


def _decide_format(values: pd.Series, column: str, path: Path) -> str:
    present = values[values.str.strip() != ""].head(5000)
    if present.empty:
        return DATE_FORMATS[0]
    for fmt in DATE_FORMATS:
        if pd.to_datetime(present, format=fmt, errors="coerce").notna().all():
            return fmt
    sample = present.iloc[0]
    msg = (
        f"{path}, column {column!r}: the times ({sample!r}, ...) follow none of the known "
        f"formats {list(DATE_FORMATS)}; give the format as date_format in the calls mapping"
    )
    raise InputError(msg, path=str(path), column=column)


def read_calls(
    path: str | Path,
    mapping: CallMapping,
    *,
    timezone: str,
    analysis_crs: str,
    chunk_rows: int = 200_000,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, int]]:
    """Yield ``(accepted, rejected, rows_read)`` for each chunk of a CAD export (CSV).

    Accepted calls carry the canonical columns with tz-aware times, the derived intervals and
    ``x``/``y`` in `analysis_crs` (NaN where the location is withheld). Rejected rows carry
    ``source, line, column, value, reason``; line 1 is the header.

    Raises
    ------
    SchemaError
        If a mapped column is missing or ``received_at`` is not mapped.
    InputError
        If the file cannot be read or a time column follows no known format.
    """
    path = Path(path)
    if mapping.received_at is None:
        msg = f"{path}: the calls mapping names no received_at column (when the call came in)"
        raise SchemaError(msg, path=str(path))
    used = {r: getattr(mapping, r) for r in mapping.roles() if getattr(mapping, r)}
    try:
        with pd.read_csv(
            path, dtype=str, keep_default_na=False, chunksize=chunk_rows, on_bad_lines="error"
        ) as reader:
            yield from _read_chunks(reader, path, mapping, used, timezone, analysis_crs)
    except pd.errors.ParserError as err:
        msg = f"{path}: the file is not a well-formed CSV ({err})"
        raise InputError(msg, path=str(path)) from err
    except (OSError, EOFError, UnicodeDecodeError) as err:
        msg = f"{path}: cannot read the file ({err})"
        raise InputError(msg, path=str(path)) from err


def _read_chunks(
    reader: Iterator[pd.DataFrame],
    path: Path,
    mapping: CallMapping,
    used: dict[str, str],
    timezone: str,
    analysis_crs: str,
) -> Iterator[tuple[pd.DataFrame, pd.DataFrame, int]]:
    import pyproj

    to_xy = pyproj.Transformer.from_crs(schema.WGS84, analysis_crs, always_xy=True)
    formats: dict[str, str] = {}
    first_line = 2
    for chunk in reader:
        missing = sorted(set(used.values()) - set(chunk.columns))
        if missing:
            msg = f"{path}: mapped columns {missing} are not in the file's header"
            raise SchemaError(msg, path=str(path))
        lines = np.arange(first_line, first_line + len(chunk))
        first_line += len(chunk)
        frame, rejected = _canonical(chunk, used, lines, path, timezone, mapping, formats)
        located = frame[schema.LON].notna()
        x, y = to_xy.transform(
            frame.loc[located, schema.LON].to_numpy(), frame.loc[located, schema.LAT].to_numpy()
        )
        frame[schema.X] = np.nan
        frame[schema.Y] = np.nan
        frame.loc[located, schema.X] = x
        frame.loc[located, schema.Y] = y
        accepted, bad = derive_intervals(frame)
        interval_rejects = pd.DataFrame(
            {
                "source": path.name,
                "line": frame.loc[bad["row"], schema.SOURCE_LINE].to_numpy(),
                "column": [used.get(c, c) for c in bad["column"]],
                "value": [
                    str(chunk.loc[r, used[c]]) if c in used else ""
                    for r, c in zip(bad["row"], bad["column"], strict=True)
                ],
                "reason": bad["reason"].to_numpy(),
            }
        )
        parts = [r for r in (rejected, interval_rejects) if len(r)]
        yield accepted, (pd.concat(parts, ignore_index=True) if parts else rejected), len(chunk)


def _canonical(
    chunk: pd.DataFrame,
    used: dict[str, str],
    lines: np.ndarray,
    path: Path,
    timezone: str,
    mapping: CallMapping,
    formats: dict[str, str],
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the chunk in canonical columns and its rejected rows (bad times, coordinates)."""
    reason = pd.Series(pd.NA, index=chunk.index, dtype="object")
    column = pd.Series(pd.NA, index=chunk.index, dtype="object")

    def flag(mask: pd.Series | np.ndarray, source_column: str, text: str) -> None:
        new = np.asarray(mask, dtype=bool) & reason.isna().to_numpy()
        reason[new] = text
        column[new] = source_column

    frame = pd.DataFrame(index=chunk.index)
    frame[schema.SOURCE] = path.name
    frame[schema.SOURCE_LINE] = lines
    now = pd.Timestamp(datetime.now(UTC)) + pd.Timedelta(days=1)
    for role in CALL_TIMES:
        source = used.get(role)
        if source is None:
            frame[role] = pd.Series(pd.NaT, index=chunk.index, dtype=f"datetime64[ns, {timezone}]")
            continue
        text = chunk[source].str.strip()
        fmt = mapping.date_format or formats.get(role) or _decide_format(text, source, path)
        formats[role] = fmt
        naive = pd.to_datetime(text, format=fmt, errors="coerce")
        flag((text != "") & naive.isna(), source, f"not a time in the format {fmt}")
        aware = naive.dt.tz_localize(
            timezone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
        )
        implausible = aware.notna() & (
            (aware.dt.year < _EARLIEST_YEAR) | (aware.dt.tz_convert("UTC") > now)
        )
        flag(implausible, source, f"a time before {_EARLIEST_YEAR} or in the future")
        frame[role] = aware
    for role in (CALL_ID, CALL_TYPE, PRIORITY, DISPOSITION):
        source = used.get(role)
        frame[role] = (
            chunk[source].str.strip().replace("", pd.NA).astype("string")
            if source
            else pd.Series(pd.NA, index=chunk.index, dtype="string")
        )
    if used.get(CALL_ID) is None:  # a stable id from the file's own values
        key = chunk.astype(str).agg("|".join, axis=1)
        frame[CALL_ID] = pd.util.hash_pandas_object(key, index=False).astype(str).astype("string")
    else:
        flag(frame[CALL_ID].isna(), used[CALL_ID], "no call id")
        flag(frame[CALL_ID].duplicated(keep="first"), used[CALL_ID], "the call id occurs twice")
    if used.get(UNITS):
        units = pd.to_numeric(chunk[used[UNITS]].str.strip(), errors="coerce")
        flag(units.notna() & (units < 0), used[UNITS], "a negative number of units")
        frame[UNITS] = units.astype("float64")
    elif used.get("response_plan"):
        frame[UNITS] = (
            units_from_plan(chunk[used["response_plan"]]).astype("Float64").astype("float64")
        )
    else:
        frame[UNITS] = np.nan
    reported = used.get(schema.REPORTED_BEAT)
    frame[schema.REPORTED_BEAT] = (
        chunk[reported].str.strip().str.upper().replace("", pd.NA).astype("string")
        if reported
        else pd.Series(pd.NA, index=chunk.index, dtype="string")
    )
    frame[schema.LON] = np.nan
    frame[schema.LAT] = np.nan
    if used.get("lon") and used.get("lat"):
        lon_text = chunk[used["lon"]].str.strip()
        lat_text = chunk[used["lat"]].str.strip()
        lon = pd.to_numeric(lon_text, errors="coerce")
        lat = pd.to_numeric(lat_text, errors="coerce")
        withheld = lon_text.str.upper().isin(_WITHHELD) | lat_text.str.upper().isin(_WITHHELD)
        withheld |= (lon == 0) & (lat == 0)
        flag(~withheld & (lon.isna() | lat.isna()), used["lon"], "not a longitude/latitude")
        out_of_range = ~withheld & ((lon.abs() > 180) | (lat.abs() > 90))
        flag(out_of_range, used["lat"], "longitude/latitude out of range")
        ok = ~withheld & lon.notna() & lat.notna()
        frame.loc[ok, schema.LON] = lon[ok]
        frame.loc[ok, schema.LAT] = lat[ok]
    bad = reason.notna()
    rejected = pd.DataFrame(
        {
            "source": path.name,
            "line": lines[bad.to_numpy()],
            "column": column[bad].to_numpy(),
            "value": [
                str(chunk.loc[i, c]) if c in chunk.columns else ""
                for i, c in zip(chunk.index[bad], column[bad], strict=True)
            ],
            "reason": reason[bad].to_numpy(),
        }
    )
    return frame.loc[~bad], rejected


def calls_table(store: object) -> RecordTable:
    """Return the store's ``calls`` table (a second record kind beside incidents)."""
    return RecordTable(store.root, CALLS, store.timezone)  # type: ignore[attr-defined]


def ingest_calls(
    path: str | Path,
    store: object,
    *,
    mapping: CallMapping,
    chunk_rows: int = 200_000,
) -> CallsReport:
    """Read a CAD export, join each call to the store's beats and store the calls as one version.

    Parameters
    ----------
    path
        The export (CSV).
    store
        An :class:`~geodata.store.IncidentStore` with a beat layer.
    mapping
        Which columns hold the call's roles.
    chunk_rows
        Rows read at a time (memory is bounded by a chunk, then by a month when writing).

    Returns
    -------
    CallsReport
        ``rows_read == rows_accepted + rows_rejected``; rejected rows are written with their
        line, column, value and reason to ``reports/`` in the store (formulas neutralised).
    """
    from geodata.exports import write_csv
    from geodata.join import BeatIndex, assign_beats

    path = Path(path)
    beats = store.read_layer("beats")  # type: ignore[attr-defined]
    index = BeatIndex(beats)
    known = set(index.beat_ids)
    report = CallsReport(source=path.name)
    rejected_parts: list[pd.DataFrame] = []

    def batches() -> Iterator[pd.DataFrame]:
        for accepted, rejected, rows in read_calls(
            path,
            mapping,
            timezone=store.timezone,  # type: ignore[attr-defined]
            analysis_crs=store.analysis_crs,  # type: ignore[attr-defined]
            chunk_rows=chunk_rows,
        ):
            report.rows_read += rows
            rejected_parts.append(rejected)
            located = accepted[schema.X].notna()
            joined = assign_beats(accepted[located], beats, index=index)
            withheld = accepted[~located].copy()
            area = withheld[schema.REPORTED_BEAT]
            attrs = beats.drop_duplicates(schema.BEAT).set_index(schema.BEAT)
            in_layer = area.isin(known)
            withheld[schema.BEAT] = area.where(in_layer, schema.OUTSIDE)
            for level in (schema.SECTOR, schema.DISTRICT):
                values = (
                    area.map(attrs[level])
                    if level in attrs.columns
                    else pd.Series(pd.NA, area.index)
                )
                withheld[level] = values.where(in_layer, schema.OUTSIDE).astype("string")
            withheld[schema.JOIN_STATUS] = np.where(in_layer, "reported", "unlocated")
            parts = [p for p in (joined, withheld) if len(p)]
            batch = pd.concat(parts).sort_index() if len(parts) > 1 else (parts or [joined])[0]
            report.rows_accepted += len(batch)
            report.located += int(located.sum())
            report.location_withheld += int((~located).sum())
            report.outside += int((batch[schema.BEAT] == schema.OUTSIDE).sum())
            yield batch.reindex(columns=list(CALL_TABLE_COLUMNS))

    summary: dict[str, object] = {"file": path.name, "kind": "calls"}
    table = calls_table(store)
    new, replaced, version = table.upsert_batches(batches(), source=summary)
    rejected_parts = [r for r in rejected_parts if len(r)]
    rejected = pd.concat(rejected_parts, ignore_index=True) if rejected_parts else pd.DataFrame()
    report.rows_rejected = len(rejected)
    report.rows_new, report.rows_replaced, report.version = new, replaced, version
    if len(rejected):
        report.rejected_by_reason = {
            str(k): int(v) for k, v in rejected["reason"].value_counts().items()
        }
        out = store.reports_dir / f"{path.stem}_calls_rejected.csv"  # type: ignore[attr-defined]
        report.rejected_file = str(write_csv(rejected, out))
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
