"""Read CAD/RMS incident exports in any common format into canonical, validated columns.

Reading is separate from joining: :func:`read_incidents` returns the accepted rows with
coordinates in the analysis CRS plus a rejection table (``source, line, column, value, reason``),
and the counts always reconcile: ``rows_read == len(accepted) + len(rejected)``.

Line numbers follow the file: in a CSV the header is line 1, so the first record is line 2; in
other formats the first feature or row is line 1.
"""

from __future__ import annotations

import gzip
import hashlib
import re
import tomllib
import warnings
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pyproj

from geodata import schema
from geodata.categories import OffenseCategories, load_categories
from geodata.errors import CRSMismatchError, InputError, SchemaError

__all__ = [
    "REASONS",
    "ColumnMapping",
    "ReadResult",
    "detect_mapping",
    "load_mapping",
    "parse_timestamps",
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
    "missing_id": "missing incident id",
    "duplicate_id": "duplicate incident id",
    "missing_offense": "missing offense",
}

REJECTION_COLUMNS = ("source", "line", "column", "value", "reason")

#: Timestamp formats tried, most specific first; the one that parses most values wins.
DATE_FORMATS = (
    "%m/%d/%Y %I:%M:%S %p",
    "%m/%d/%Y %I:%M %p",
    "%m/%d/%Y %H:%M:%S",
    "%m/%d/%Y %H:%M",
    "%m/%d/%Y",
    "%Y-%m-%d %H:%M:%S",
    "%Y-%m-%dT%H:%M:%S",
    "%Y-%m-%d %H:%M",
    "%Y-%m-%dT%H:%M",
    "%Y-%m-%d",
    "%Y/%m/%d %H:%M:%S",
    "%Y/%m/%d %H:%M",
    "%d/%m/%Y %H:%M:%S",
    "%d/%m/%Y %H:%M",
    "%d.%m.%Y %H:%M",
    "%Y%m%d%H%M%S",
    "%Y%m%d %H%M",
)

# Header synonyms after normalisation (lower case, non-alphanumerics -> "_"), best first.
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
        "report_date", "reported_date", "call_date", "time",
    ),
    "occurred_time": ("occurred_time", "occurrence_time", "time_of_occurrence", "incident_time"),
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
_TRUE = {"true", "t", "yes", "y", "1"}
_FALSE = {"false", "f", "no", "n", "0"}
_GEOMETRY_X = "__geometry_x"
_GEOMETRY_Y = "__geometry_y"


@dataclass(frozen=True)
class ColumnMapping:
    """Which source column plays each canonical role, plus how to read coordinates and dates.

    Role attributes hold the *source* column name, or None when the source has no such column.
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
    #: CRS of ``x``/``y`` (e.g. ``"EPSG:3435"``); when set, x/y are used even if lat/lon exist.
    crs: str | None = None
    #: A strptime format for ``occurred_at``; None tries :data:`DATE_FORMATS`.
    date_format: str | None = None
    #: Local time zone of naive timestamps.
    timezone: str = schema.DEFAULT_TIMEZONE
    roles_from_file: tuple[str, ...] = field(default=(), compare=False)

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


def _normalize_header(name: str) -> str:
    return re.sub(r"[^0-9a-z]+", "_", str(name).strip().lower().lstrip("\ufeff")).strip("_")


def rejection_frame(rows: list[dict[str, object]] | None = None) -> pd.DataFrame:
    """Return a rejection table (``source, line, column, value, reason``) from row dicts."""
    frame = pd.DataFrame(rows or [], columns=list(REJECTION_COLUMNS))
    return frame.astype(
        {
            "line": "int64",
            "source": "string",
            "column": "string",
            "value": "string",
            "reason": "string",
        }
    )


# --- reading the raw table ----------------------------------------------------------------


def _sniff_text(path: Path) -> None:
    opener = gzip.open if path.suffix.lower() == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            head = handle.read(8192)
    except (OSError, EOFError, gzip.BadGzipFile) as err:
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
            msg = f"{path}: this is not a UTF-8 text CSV file (byte {err.start}: {err.reason})"
            raise InputError(msg, path=str(path), line=1) from err


def _read_csv(path: Path) -> tuple[pd.DataFrame, pd.Series, list[dict[str, object]]]:
    _sniff_text(path)
    sep = "\t" if ".tsv" in path.name.lower() else ","
    options = {"dtype": str, "keep_default_na": False, "encoding": "utf-8-sig", "sep": sep}
    bad: list[dict[str, object]] = []
    try:
        table = pd.read_csv(path, **options)
    except pd.errors.EmptyDataError as err:
        msg = f"{path}: the file is empty (expected a header line and incident rows)"
        raise InputError(msg, path=str(path), line=1) from err
    except UnicodeDecodeError as err:
        msg = f"{path}: this is not a UTF-8 text CSV file: {err.reason}"
        raise InputError(msg, path=str(path)) from err
    except pd.errors.ParserError:
        # Ragged rows: read again with the python engine and keep each bad line as a rejection.
        def keep_bad(fields_: list[str]) -> None:
            bad.append({"fields": fields_})

        table = pd.read_csv(path, engine="python", on_bad_lines=keep_bad, **options)
    # Physical line numbers: header is line 1 (one record per line, the CAD/RMS norm).
    lines = pd.Series(np.arange(2, len(table) + 2, dtype=np.int64), index=table.index)
    rejected: list[dict[str, object]] = []
    if bad:
        lines = _line_numbers_with_bad_rows(path, len(table.columns), len(table))
        good = set(lines.tolist())
        for number in range(2, len(table) + len(bad) + 2):
            if number not in good:
                rejected.append(
                    {
                        "source": path.name,
                        "line": number,
                        "column": "",
                        "value": "",
                        "reason": REASONS["malformed"],
                    }
                )
    return table, lines, rejected


def _line_numbers_with_bad_rows(path: Path, n_columns: int, n_good: int) -> pd.Series:
    import csv

    opener = gzip.open if path.suffix.lower() == ".gz" else open
    good: list[int] = []
    with opener(path, "rt", encoding="utf-8-sig", newline="") as handle:
        reader = csv.reader(handle)
        next(reader, None)
        for row in reader:
            if len(row) == n_columns:
                good.append(reader.line_num)
    return pd.Series(np.asarray(good[:n_good], dtype=np.int64))


def _read_vector(path: Path) -> tuple[pd.DataFrame, pd.Series, str | None]:
    import geopandas as gpd
    import pyogrio

    try:
        frame = gpd.read_file(path) if path.suffix.lower() != ".parquet" else None
    except (pyogrio.errors.DataSourceError, pyogrio.errors.DataLayerError, ValueError) as err:
        msg = f"{path}: cannot read as a {path.suffix} vector file: {err}"
        raise InputError(msg, path=str(path)) from err
    assert frame is not None
    return _geoframe_to_table(frame, path)


def _geoframe_to_table(
    frame: pd.DataFrame, path: Path
) -> tuple[pd.DataFrame, pd.Series, str | None]:
    import geopandas as gpd

    crs = None
    table = (
        pd.DataFrame(frame.drop(columns=frame.geometry.name))
        if isinstance(frame, gpd.GeoDataFrame)
        else frame
    )
    if isinstance(frame, gpd.GeoDataFrame):
        geometry = frame.geometry
        if not geometry.isna().all():
            kinds = set(geometry.dropna().geom_type.unique())
            if not kinds <= {"Point"}:
                msg = f"{path}: incidents must be points, found {sorted(kinds)} geometries"
                raise InputError(msg, path=str(path))
            if frame.crs is None:
                msg = f"{path}: the point layer has no CRS; give one with --crs"
                raise InputError(msg, path=str(path))
            crs = frame.crs.to_string()
            table[_GEOMETRY_X] = geometry.x.astype("string")
            table[_GEOMETRY_Y] = geometry.y.astype("string")
    table = table.astype("string").fillna("")
    lines = pd.Series(np.arange(1, len(table) + 1, dtype=np.int64), index=table.index)
    return table, lines, crs


def _read_parquet(path: Path) -> tuple[pd.DataFrame, pd.Series, str | None]:
    import geopandas as gpd
    import pyarrow.parquet as pq

    try:
        metadata = pq.read_schema(path).metadata or {}
    except Exception as err:  # pyarrow raises several types for a non-Parquet file
        msg = f"{path}: cannot read as Parquet: {err}"
        raise InputError(msg, path=str(path)) from err
    if b"geo" in metadata:
        return _geoframe_to_table(gpd.read_parquet(path), path)
    table = pd.read_parquet(path)
    return _geoframe_to_table(table, path)


def read_table(path: str | Path) -> tuple[pd.DataFrame, pd.Series, str | None, list[dict]]:
    """Read any supported file into a table of strings.

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
    if not path.exists():
        msg = f"{path}: no such file"
        raise InputError(msg, path=str(path))
    name = path.name.lower()
    if name.endswith((".csv", ".csv.gz", ".tsv", ".tsv.gz", ".txt", ".txt.gz")):
        table, lines, malformed = _read_csv(path)
        return table, lines, None, malformed
    if name.endswith((".parquet", ".geoparquet", ".pq")):
        table, lines, crs = _read_parquet(path)
        return table, lines, crs, []
    if name.endswith((".geojson", ".json", ".gpkg", ".shp", ".zip", ".fgb")):
        table, lines, crs = _read_vector(path)
        return table, lines, crs, []
    msg = (
        f"{path}: unsupported file type; expected .csv, .csv.gz, .tsv, .geojson, .gpkg, .shp, "
        ".parquet or .geoparquet"
    )
    raise InputError(msg, path=str(path))


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
    table with ``crs``, ``date_format`` and ``timezone``. See ``docs/mapping.example.toml``.

    Raises
    ------
    InputError
        If the file cannot be parsed or names an unknown role or option.
    """
    path = Path(path)
    try:
        config = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as err:
        msg = f"{path}: cannot read the column mapping: {err}"
        raise InputError(msg, path=str(path)) from err
    roles = set(ColumnMapping.roles())
    columns = config.get("columns", {})
    unknown = sorted(set(columns) - roles)
    if unknown:
        msg = f"{path}: unknown column roles {unknown}; expected some of {sorted(roles)}"
        raise InputError(msg, path=str(path))
    options = config.get("options", {})
    allowed = {"crs", "date_format", "timezone"}
    unknown = sorted(set(options) - allowed)
    if unknown:
        msg = f"{path}: unknown options {unknown}; expected some of {sorted(allowed)}"
        raise InputError(msg, path=str(path))
    return ColumnMapping(**columns, **options, roles_from_file=tuple(columns))


# --- value parsing -------------------------------------------------------------------------


def parse_timestamps(
    values: pd.Series, *, timezone: str, date_format: str | None = None
) -> tuple[pd.Series, str | None]:
    """Parse timestamps as CAD/RMS exports write them and make them tz-aware.

    Without `date_format`, every format of :data:`DATE_FORMATS` is tried on the whole column and
    the one that parses the most values is used; values it cannot parse are tried with the
    others, then with ISO 8601 (offsets honoured). Naive times are local to `timezone`: in the
    autumn hour that occurs twice the first (daylight) reading is taken, and times in the spring
    gap are moved forward to the first valid instant, as CAD clocks do.

    Parameters
    ----------
    values
        Timestamp strings; empty strings are missing.
    timezone
        IANA zone of naive timestamps, e.g. ``"America/Chicago"``.
    date_format
        A strptime format that all values follow.

    Returns
    -------
    parsed
        Timestamps in `timezone` (NaT where missing or unparseable).
    used_format
        The dominant format, or None if nothing parsed.
    """
    text = values.astype("string").str.strip()
    present = text.notna() & (text != "")
    parsed = pd.Series(pd.NaT, index=values.index, dtype="datetime64[ns]")
    used: str | None = date_format
    todo = present.copy()
    formats: tuple[str, ...] = (date_format,) if date_format else DATE_FORMATS
    if not date_format:
        sample = text[present].head(2000)
        scores = {
            f: pd.to_datetime(sample, format=f, errors="coerce").notna().sum() for f in formats
        }
        ordered = sorted(formats, key=lambda f: -scores[f])
        used = ordered[0] if scores[ordered[0]] else None
        formats = tuple(ordered)
    for fmt in formats:
        if not todo.any():
            break
        attempt = pd.to_datetime(text[todo], format=fmt, errors="coerce")
        ok = attempt.notna()
        parsed.loc[attempt.index[ok]] = attempt[ok]
        todo.loc[attempt.index[ok]] = False
    aware = parsed.dt.tz_localize(
        timezone, ambiguous=np.ones(len(parsed), dtype=bool), nonexistent="shift_forward"
    ).copy()
    if todo.any() and not date_format:
        # ISO 8601: a time with an offset is converted; a naive one is local to `timezone`
        rest = text[todo]
        has_offset = rest.str.contains(r"(?:Z|[+-]\d{2}(?::?\d{2})?)$", regex=True)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            iso = pd.to_datetime(rest[has_offset], format="ISO8601", errors="coerce", utc=True)
            naive = pd.to_datetime(rest[~has_offset], format="ISO8601", errors="coerce")
        naive = naive.dt.tz_localize(
            timezone, ambiguous=np.ones(len(naive), dtype=bool), nonexistent="shift_forward"
        )
        for found in (iso.dt.tz_convert(timezone), naive):
            ok = found.notna()
            if ok.any():
                aware.loc[found.index[ok]] = found[ok]
                used = used or "ISO8601"
    return aware, used


def _parse_bool(values: pd.Series) -> pd.Series:
    text = values.astype("string").str.strip().str.lower()
    out = pd.Series(pd.NA, index=values.index, dtype="boolean")
    out[text.isin(_TRUE)] = True
    out[text.isin(_FALSE)] = False
    return out


def _stable_ids(table: pd.DataFrame, columns: list[str]) -> pd.Series:
    joined = table[columns].astype("string").fillna("").agg("|".join, axis=1)
    return joined.map(lambda s: "h" + hashlib.sha1(s.encode()).hexdigest()[:16]).astype("string")


def _check_crs(crs: str, path: Path) -> pyproj.CRS:
    try:
        return pyproj.CRS.from_user_input(crs)
    except pyproj.exceptions.CRSError as err:
        msg = f"{path}: {crs!r} is not a known coordinate reference system (e.g. EPSG:3435)"
        raise CRSMismatchError(msg) from err


def read_incidents(
    path: str | Path,
    *,
    mapping: ColumnMapping | None = None,
    analysis_crs: str = schema.DEFAULT_ANALYSIS_CRS,
    categories: OffenseCategories | None = None,
) -> ReadResult:
    """Read an incident export, validate every row and return canonical columns.

    Parameters
    ----------
    path
        The export (see :func:`read_table` for formats).
    mapping
        Explicit column roles and options; roles left as None are auto-detected.
    analysis_crs
        Projected CRS (metres) for the ``x``/``y`` columns of the result.
    categories
        Offense-category mapping (default: the bundled ``offense_categories.toml``).

    Returns
    -------
    ReadResult
        Accepted rows (not yet joined to beats, no duplicate ids) and rejections with reasons.

    Raises
    ------
    InputError
        If the file cannot be read at all.
    SchemaError
        If required columns are missing; the message lists all of them and the header found.
    """
    path = Path(path)
    table, lines, geometry_crs, rejected_rows = read_table(path)
    mapping = detect_mapping(list(table.columns), base=mapping)
    _require_columns(mapping, table, path)
    categories = categories or load_categories()
    source = path.name
    notes: list[str] = []
    n = len(table)
    reason = pd.Series(pd.NA, index=table.index, dtype="string")
    bad_column = pd.Series("", index=table.index, dtype="string")
    bad_value = pd.Series("", index=table.index, dtype="string")

    def reject(mask: pd.Series, key: str, column: str, values: pd.Series | None) -> None:
        mask = mask & reason.isna()
        reason[mask] = REASONS[key]
        bad_column[mask] = column
        if values is not None:
            bad_value[mask] = values[mask].astype("string").str.slice(0, 200)

    # --- coordinates
    use_xy = mapping.x is not None and (mapping.crs is not None or mapping.lat is None)
    if use_xy:
        x_col, y_col = mapping.x, mapping.y
        source_crs = mapping.crs or geometry_crs
        if source_crs is None:
            assert x_col is not None
            sample = pd.to_numeric(table[x_col], errors="coerce").abs()
            if sample.max() <= 180:
                source_crs = schema.WGS84
                notes.append(f"x/y columns {x_col!r}/{y_col!r} look like lon/lat; read as WGS84")
            else:
                msg = (
                    f"{path}: coordinates are projected x/y ({x_col!r}, {y_col!r}) but no CRS "
                    "was given; pass --crs (e.g. --crs EPSG:3435 for Illinois state-plane feet)"
                )
                raise SchemaError(msg, path=str(path), column=x_col)
    else:
        x_col, y_col = mapping.lon, mapping.lat
        source_crs = schema.WGS84
    assert x_col is not None
    assert y_col is not None
    crs = _check_crs(source_crs, path)
    raw_x, raw_y = table[x_col], table[y_col]
    x = pd.to_numeric(raw_x.str.strip(), errors="coerce")
    y = pd.to_numeric(raw_y.str.strip(), errors="coerce")
    x_missing = raw_x.str.strip() == ""
    y_missing = raw_y.str.strip() == ""
    zero = (x == 0) & (y == 0)
    reject(x_missing | zero, "missing_coordinates", x_col, raw_x)
    reject(y_missing, "missing_coordinates", y_col, raw_y)
    reject(x.isna() & ~x_missing, "bad_coordinates", x_col, raw_x)
    reject(y.isna() & ~y_missing, "bad_coordinates", y_col, raw_y)
    if crs.is_geographic:
        reject(~x.between(-180, 180) & x.notna(), "bad_coordinates", x_col, raw_x)
        reject(~y.between(-90, 90) & y.notna(), "bad_coordinates", y_col, raw_y)
    ok = reason.isna()
    to_analysis = pyproj.Transformer.from_crs(crs, analysis_crs, always_xy=True)
    to_wgs = pyproj.Transformer.from_crs(crs, schema.WGS84, always_xy=True)
    px = np.full(n, np.nan)
    py = np.full(n, np.nan)
    lon = np.full(n, np.nan)
    lat = np.full(n, np.nan)
    okv = ok.to_numpy()
    px[okv], py[okv] = to_analysis.transform(x[ok].to_numpy(), y[ok].to_numpy())
    lon[okv], lat[okv] = to_wgs.transform(x[ok].to_numpy(), y[ok].to_numpy())
    reject(pd.Series(~np.isfinite(px), index=table.index) & ok, "bad_coordinates", x_col, raw_x)

    # --- date
    assert mapping.occurred_at is not None
    date_text = table[mapping.occurred_at]
    if mapping.occurred_time is not None:
        date_text = date_text.str.strip() + " " + table[mapping.occurred_time].str.strip()
    occurred, used_format = parse_timestamps(
        date_text, timezone=mapping.timezone, date_format=mapping.date_format
    )
    if used_format:
        notes.append(f"dates read as {used_format} in {mapping.timezone}")
    missing_date = date_text.str.strip() == ""
    reject(missing_date, "missing_date", mapping.occurred_at, date_text)
    reject(occurred.isna() & ~missing_date, "bad_date", mapping.occurred_at, date_text)

    # --- offense and id
    assert mapping.offense is not None
    offense = table[mapping.offense].str.strip()
    reject(offense == "", "missing_offense", mapping.offense, offense)
    if mapping.incident_id is not None:
        ids = table[mapping.incident_id].str.strip().astype("string")
        reject(ids == "", "missing_id", mapping.incident_id, ids)
    else:
        id_columns = [
            c
            for c in (
                mapping.occurred_at,
                mapping.offense,
                x_col,
                y_col,
                mapping.block,
                mapping.description,
            )
            if c
        ]
        ids = _stable_ids(table, id_columns)
        notes.append("no incident id column: ids are hashes of date, offense, place")
    accepted_ids = ids.where(reason.isna())
    duplicate = accepted_ids.duplicated(keep="first") & accepted_ids.notna()
    if duplicate.any():
        first_line = pd.Series(lines.to_numpy(), index=ids.to_numpy())
        first_line = first_line[~first_line.index.duplicated(keep="first")]
        dup_values = (
            ids[duplicate]
            + " (first at line "
            + ids[duplicate].map(first_line).astype("string")
            + ")"
        )
        reject(
            duplicate,
            "duplicate_id",
            mapping.incident_id or "(derived id)",
            dup_values.reindex(table.index),
        )

    # --- assemble
    accepted = reason.isna()

    def column(role: str) -> pd.Series:
        name = getattr(mapping, role)
        if name is None:
            return pd.Series(pd.NA, index=table.index, dtype="string")
        values = table[name].str.strip()
        return values.mask(values == "").astype("string")

    description = column("description")
    domestic = (
        _parse_bool(table[mapping.domestic])
        if mapping.domestic
        else pd.Series(pd.NA, index=table.index, dtype="boolean")
    )
    category, sensitive = categories.categorize(
        offense, description, domestic, codes=column("fbi_code")
    )
    reported = column("reported_beat")
    incidents = pd.DataFrame(
        {
            schema.INCIDENT_ID: ids.astype("string"),
            schema.CASE_NUMBER: column("case_number"),
            schema.OCCURRED_AT: occurred,
            schema.OFFENSE: offense.str.upper().astype("string"),
            schema.DESCRIPTION: description,
            schema.IUCR: column("iucr"),
            schema.FBI_CODE: column("fbi_code"),
            schema.CATEGORY: category,
            schema.IS_SENSITIVE: sensitive,
            schema.LOCATION_DESC: column("location_desc"),
            schema.BLOCK: column("block"),
            schema.DOMESTIC: domestic,
            schema.ARREST: _parse_bool(table[mapping.arrest])
            if mapping.arrest
            else pd.Series(pd.NA, index=table.index, dtype="boolean"),
            schema.X: px,
            schema.Y: py,
            schema.LON: lon,
            schema.LAT: lat,
            schema.REPORTED_BEAT: reported,
            schema.SOURCE: source,
            schema.SOURCE_LINE: lines.to_numpy(),
        },
        index=table.index,
    )[accepted].reset_index(drop=True)
    rejected = pd.DataFrame(
        {
            "source": source,
            "line": lines.to_numpy(),
            "column": bad_column,
            "value": bad_value,
            "reason": reason,
        },
        index=table.index,
    )[~accepted]
    rejected = pd.concat(
        [rejection_frame(rejected_rows), rejection_frame(rejected.to_dict("records"))],
        ignore_index=True,
    )
    rows_read = n + len(rejected_rows)
    return ReadResult(incidents, rejected, rows_read, mapping, source, notes)


def _require_columns(mapping: ColumnMapping, table: pd.DataFrame, path: Path) -> None:
    missing: list[str] = []
    for role in _REQUIRED_ROLES:
        if getattr(mapping, role) is None:
            missing.append(f"{role} (e.g. {', '.join(repr(s) for s in _SYNONYMS[role][:4])})")
    has_latlon = mapping.lat is not None and mapping.lon is not None
    has_xy = mapping.x is not None and mapping.y is not None
    if not (has_latlon or has_xy):
        missing.append("coordinates: latitude/longitude columns, or x/y columns with --crs")
    named = [c for c in mapping.used_columns().values() if c not in table.columns]
    if named:
        missing.extend(f"column {c!r} named in the mapping" for c in named)
    if missing:
        header = ", ".join(repr(c) for c in table.columns if not c.startswith("__"))
        msg = f"{path}: required columns missing: {'; '.join(missing)}. Header found: {header}"
        raise SchemaError(msg, path=str(path), line=1, column=missing[0])
