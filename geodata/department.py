"""Department profiles: one TOML file per department, read into a frozen :class:`Department`.

API note (for the rest of the code base)
----------------------------------------
- ``load_department(name_or_path)`` reads ``geodata/departments/<name>.toml`` (``"chicago"``,
  ``"seattle"``) or any TOML file path and returns a :class:`Department`.
- The store keeps the canonical columns ``beat``, ``sector`` and ``district`` whatever the
  department calls its levels: ``district`` is always the top level under the department (a
  Seattle *precinct*, a Chicago *district*). Only the labels differ:
  ``dept.label("district")`` -> ``"precinct"``, ``dept.label("sector", plural=True)`` ->
  ``"sectors"``. ``dept.has_level("sector")`` is False for a beat/zone department.
- ``dept.normalize_id(level, value)`` and ``dept.normalize_ids(level, series)`` turn a typed or
  read id into the stored form (Chicago beat ``925`` -> ``"0925"``; Seattle ``"k3"`` -> ``"K3"``).
  Never pad ids with a literal width: ask the department.
- ``dept.timezone`` is the zone of every local time (day boundaries, display); ``dept.zone``
  is its ``ZoneInfo`` and ``dept.today()`` today's date there;
  ``dept.analysis_crs`` the projected CRS in metres (None in a profile: the UTM zone of the beat
  layer, see :func:`geodata.boundaries.analysis_crs_for`; a store always records the resolved one).
- ``store_department(store)`` returns the department a store was built for (its profile is
  recorded in the store's ``meta.json``); a store from before profiles reads as Chicago, with a
  note in ``Department.notes``.

Profile format (see ``geodata/departments/seattle.toml`` and ``docs/departments.md``)::

    key = "seattle"
    name = "Seattle Police Department"
    timezone = "America/Los_Angeles"
    # analysis_crs = "EPSG:32610"          # leave out: UTM zone of the beat layer
    offense_vocabulary = "nibrs"          # geodata/vocabularies/<name>.toml, or a path

    [levels.beat]                         # bottom level, always present
    singular = "beat"
    plural = "beats"
    case = "upper"                        # "upper" or "keep"
    # width = 4                           # zero-pad numeric ids to this width

    [levels.sector]                       # optional middle level
    singular = "sector"
    plural = "sectors"
    parent = "column"                     # column | layer | prefix
    column = "sector"                     # column of the beat layer

    [levels.district]                     # top level under the department
    singular = "precinct"
    plural = "precincts"
    parent = "column"
    column = "first_prec"

    [beats]
    file = "../samples/seattle/beats_2018.geojson"   # relative to this TOML file
    beat_column = "beat"

    [incidents]                           # the default column mapping (roles of ColumnMapping)
    files = ["../samples/seattle/spd_crime_2018.csv.gz"]
    [incidents.columns]
    offense = "offense"

A parent found by ``layer`` names a polygon layer (``layer = "precincts.geojson"``,
``layer_column = "PRECINCT"``): each beat gets the polygon that covers most of it. A parent found
by ``prefix`` takes the first ``length`` characters of the normalised beat id.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass, field, replace
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal, cast
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pandas as pd
import pyproj

from geodata import schema
from geodata.errors import InputError
from geodata.tomlfiles import read_toml

if TYPE_CHECKING:
    from geodata.readers import ColumnMapping
    from geodata.store import IncidentStore

__all__ = [
    "DEPARTMENTS_DIR",
    "LEGACY_DEPARTMENT",
    "LEVELS",
    "Department",
    "Level",
    "adhoc_department",
    "department_from_dict",
    "list_departments",
    "load_department",
    "store_department",
]

#: Where the bundled department profiles live.
DEPARTMENTS_DIR = Path(__file__).resolve().parent / "departments"
#: The canonical levels, bottom up; ``district`` is the top level under the department.
LEVELS = (schema.BEAT, schema.SECTOR, schema.DISTRICT)
#: Profile a store without a recorded department is read as (stores built before profiles).
LEGACY_DEPARTMENT = "chicago"

ParentRule = Literal["column", "layer", "prefix"]
_PARENT_RULES = ("column", "layer", "prefix")
_CASES = ("upper", "keep")
_MAX_MEETING_MIN = 60


@dataclass(frozen=True)
class Level:
    """One level of the hierarchy: its labels, id rule and how a beat's parent at it is found.

    Parameters
    ----------
    key
        Canonical level and store column: ``beat``, ``sector`` or ``district``.
    singular, plural
        The department's own words ("precinct", "precincts").
    width
        Numeric ids are zero-padded to this width (0: no padding).
    case
        ``upper`` upper-cases text ids; ``keep`` keeps them as written.
    parent
        How a beat's id at this level is found: ``column`` (a column of the beat layer),
        ``layer`` (a separate polygon layer), ``prefix`` (the first `length` characters of the
        beat id); None for the beat level.
    column
        Beat-layer column for ``column``; for ``layer``, the id column of the polygon layer is
        `layer_column`.
    layer, layer_column, name_column
        A polygon layer of this level (path relative to the profile), its id and name columns.
        A ``district`` layer is also stored as the store's district polygons.
    length
        Prefix length for ``prefix``.
    qualify
        Prefix the id with the id of the level above when the same id repeats under several
        parents (Chicago's sector ``1`` of every district becomes ``171`` in district ``17``).
    """

    key: str
    singular: str
    plural: str
    width: int = 0
    case: str = "upper"
    parent: ParentRule | None = None
    column: str | None = None
    layer: Path | None = None
    layer_column: str | None = None
    name_column: str | None = None
    length: int | None = None
    qualify: bool = False

    def normalize(self, value: object) -> str | None:
        """Return `value` as this level's canonical id (None when missing)."""
        text = schema.normalize_id(value, self.width)
        if text is None or self.case == "upper":
            return text
        # schema.normalize_id upper-cases text ids; "keep" restores the written case
        raw = str(value).strip()
        return raw if raw.upper() == text else text


@dataclass(frozen=True)
class Department:
    """A police department's settings, read from its profile (see :func:`load_department`).

    Attributes not described here mirror the profile's tables: `beats` (``file`` and the
    beat/sector/district columns of the beat layer), `stations` (``file`` and ``columns``),
    `incidents` (``files``, ``columns``: role -> source column, ``crs``, ``date_format``),
    `publish` (``policy``: a publish-policy TOML, or inline settings), `join`
    (``edge_tolerance_m``), `meetings` (``cadence``, ``duration_min`` <= 60, and for the
    seeded illustrative schedule ``sector_districts``, ``note``, ``contact``), `calls`
    (``files`` of CAD calls for service and the ``mapping`` TOML that reads them, see
    :class:`geodata.calls.CallMapping`).
    """

    key: str
    name: str
    timezone: str
    levels: tuple[Level, ...]
    analysis_crs: str | None = None
    offense_vocabulary: str | None = None
    beats_file: Path | None = None
    beat_column: str | None = None
    #: CRS of a beat layer that records none (a shapefile without its .prj); ignored otherwise.
    beats_crs: str | None = None
    stations_file: Path | None = None
    station_columns: Mapping[str, str] = field(default_factory=dict)
    incident_files: tuple[Path, ...] = ()
    incident_columns: Mapping[str, str] = field(default_factory=dict)
    incident_options: Mapping[str, str | int | tuple[str, ...]] = field(default_factory=dict)
    publish: Mapping[str, Any] = field(default_factory=dict)
    #: Points this close (metres) to two beats are edge cases the boundary rule decides.
    edge_tolerance_m: float = 1.0
    meeting_cadence: str = "monthly"
    meeting_duration_min: int = 60
    #: Top-level ids whose sectors meet (monthly) instead of their beats in the seeded schedule.
    meeting_sector_districts: tuple[str, ...] = ()
    #: The note and contact text of the seeded schedule (None: the generic ones).
    meeting_note: str | None = None
    meeting_contact: str | None = None
    source: str | None = None
    notes: tuple[str, ...] = ()
    #: True for a store installed without a profile: the beat layer's columns and id widths
    #: are detected from the layer (see :func:`adhoc_department`).
    detect_columns: bool = False
    call_files: tuple[Path, ...] = ()
    call_mapping: Path | None = None

    # --- levels ---------------------------------------------------------------------------
    def has_level(self, level: str) -> bool:
        """Return True when the department has `level` (``beat``, ``sector``, ``district``)."""
        return any(lv.key == level for lv in self.levels)

    def level(self, level: str) -> Level:
        """Return the :class:`Level` of canonical name `level`.

        Raises
        ------
        KeyError
            If the department has no such level (e.g. ``sector`` for a beat/zone department).
        """
        for lv in self.levels:
            if lv.key == level:
                return lv
        msg = f"{self.name} has no {level!r} level (its levels: {[lv.key for lv in self.levels]})"
        raise KeyError(msg)

    def label(self, level: str, plural: bool = False) -> str:
        """Return the department's word for `level` ("precinct" for Seattle's ``district``)."""
        lv = self.level(level)
        return lv.plural if plural else lv.singular

    def level_words(self) -> dict[str, str]:
        """Return canonical level -> the department's singular word (``district`` -> "precinct")."""
        return {lv.key: lv.singular for lv in self.levels}

    def normalize_id(self, level: str, value: object) -> str | None:
        """Return `value` as the canonical id of `level` (Chicago beat 925 -> ``"0925"``).

        A numeric id of a qualified level is its parent's id followed by its own, so it is
        padded to both widths (Chicago sector ``92`` or ``092`` -> ``"092"``: district 09, 2).
        """
        lv = self.level(level)
        text = lv.normalize(value)
        if lv.qualify and text is not None and text.isdigit() and self.has_level(schema.DISTRICT):
            text = text.zfill(self.level(schema.DISTRICT).width + max(lv.width, 1))
        return text

    def normalize_ids(self, level: str, values: pd.Series) -> pd.Series:
        """Return a string Series of canonical ids of `level`, aligned with `values`."""
        lv = self.level(level)
        index = values.index if isinstance(values, pd.Series) else None
        uniques = pd.unique(pd.Series(values, dtype=object))
        lookup = {v: self.normalize_id(lv.key, v) for v in uniques if not _is_missing(v)}
        out = pd.Series(values, index=index, dtype=object).map(lookup)
        return out.astype("string")

    # --- time -----------------------------------------------------------------------------
    @property
    def zone(self) -> ZoneInfo:
        """Return the department's time zone as a ``ZoneInfo``."""
        return ZoneInfo(self.timezone)

    def today(self) -> date:
        """Return today's date in the department's time zone (not the server's)."""
        return datetime.now(self.zone).date()

    # --- incidents ------------------------------------------------------------------------
    def column_mapping(self) -> ColumnMapping:
        """Return the profile's default incident column mapping (naive times in its zone).

        Roles the profile does not name are auto-detected when a file is read.
        """
        from geodata.readers import ColumnMapping

        # roles and options, as keyword fields of ColumnMapping
        columns: dict[str, Any] = dict(self.incident_columns)
        options: dict[str, Any] = dict(self.incident_options)
        return ColumnMapping(
            **columns,
            **options,
            timezone=self.timezone,
            roles_from_file=tuple(self.incident_columns),
            defaults=tuple(self.incident_columns),
        )

    # --- serialisation --------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Return the profile as JSON-ready data (what a store records in its metadata)."""
        data = asdict(self)
        return json.loads(json.dumps(data, default=str))

    def with_analysis_crs(self, crs: str) -> Department:
        """Return a copy with the analysis CRS set (a store records the resolved one)."""
        return replace(self, analysis_crs=crs)


def _is_missing(value: object) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and value != value)


def _problem(source: str, where: str, what: str) -> InputError:
    msg = f"{source}: {where}: {what}"
    return InputError(msg, path=source, column=where)


def _path(base: Path | None, value: object) -> Path | None:
    if value is None or value == "":
        return None
    path = Path(str(value)).expanduser()
    if not path.is_absolute() and base is not None:
        path = (base / path).resolve()
    return path


def _files(
    base: Path | None, values: Iterable[object], source: str, where: str
) -> tuple[Path, ...]:
    paths = []
    for value in values:
        path = _path(base, value)
        if path is None:
            raise _problem(source, where, "a file name is empty")
        paths.append(path)
    return tuple(paths)


def _level(key: str, table: Mapping[str, Any], base: Path | None, source: str) -> Level:
    if not isinstance(table, Mapping):
        raise _problem(source, f"levels.{key}", "must be a table")
    known = {
        "singular",
        "plural",
        "width",
        "case",
        "parent",
        "column",
        "layer",
        "layer_column",
        "name_column",
        "length",
        "qualify",
    }
    unknown = sorted(set(table) - known)
    if unknown:
        raise _problem(source, f"levels.{key}", f"unknown keys {unknown}; expected {sorted(known)}")
    singular = str(table.get("singular", key))
    plural = str(table.get("plural", singular + "s"))
    case = table.get("case", "upper")
    if case not in _CASES:
        raise _problem(source, f"levels.{key}.case", f"{case!r} is not one of {_CASES}")
    width = table.get("width", 0)
    if not isinstance(width, int) or width < 0:
        raise _problem(source, f"levels.{key}.width", f"{width!r} is not a whole number >= 0")
    parent = table.get("parent")
    if key == schema.BEAT:
        if parent is not None:
            raise _problem(source, "levels.beat.parent", "the beat level has no parent rule")
    else:
        if parent is None:
            parent = "layer" if table.get("layer") else "column"
        if parent not in _PARENT_RULES:
            raise _problem(
                source, f"levels.{key}.parent", f"{parent!r} is not one of {_PARENT_RULES}"
            )
        if parent == "layer" and not table.get("layer"):
            raise _problem(source, f"levels.{key}.layer", "parent = 'layer' needs a layer file")
        length = table.get("length")
        if parent == "prefix" and (not isinstance(length, int) or length < 1):
            raise _problem(
                source,
                f"levels.{key}.length",
                f"parent = 'prefix' needs length >= 1, got {length!r}",
            )
    return Level(
        key=key,
        singular=singular,
        plural=plural,
        width=width,
        case=case,
        parent=cast("ParentRule | None", parent),  # checked against _PARENT_RULES above
        column=table.get("column"),
        layer=_path(base, table.get("layer")),
        layer_column=table.get("layer_column"),
        name_column=table.get("name_column"),
        length=table.get("length"),
        qualify=bool(table.get("qualify", False)),
    )


def department_from_dict(
    config: Mapping[str, Any], *, base: Path | None = None, source: str = "department profile"
) -> Department:
    """Return the :class:`Department` described by parsed profile data.

    Parameters
    ----------
    config
        The profile's tables (as read from TOML, or as recorded in a store's metadata).
    base
        Directory that relative file paths in the profile are relative to.
    source
        Name of the profile in error messages (its path).

    Raises
    ------
    InputError
        If a required key is missing or a value is invalid; the message names the key.
    """
    missing = [k for k in ("key", "name", "timezone") if not config.get(k)]
    if missing:
        raise _problem(source, ", ".join(missing), "required key(s) missing")
    timezone = str(config["timezone"])
    try:
        ZoneInfo(timezone)
    except (ZoneInfoNotFoundError, ValueError) as err:
        raise _problem(source, "timezone", f"{timezone!r} is not an IANA time zone") from err
    crs = config.get("analysis_crs")
    if crs:
        try:
            parsed = pyproj.CRS.from_user_input(crs)
        except pyproj.exceptions.CRSError as err:
            raise _problem(source, "analysis_crs", f"{crs!r} is not a known CRS") from err
        if not parsed.is_projected or parsed.axis_info[0].unit_name not in {"metre", "meter"}:
            raise _problem(source, "analysis_crs", f"{crs!r} is not a projected CRS in metres")
    levels_table = config.get("levels") or {}
    if schema.BEAT not in levels_table:
        levels_table = {schema.BEAT: {}, **levels_table}
    unknown = sorted(set(levels_table) - set(LEVELS))
    if unknown:
        raise _problem(
            source, "levels", f"unknown levels {unknown}; the store's levels are {LEVELS}"
        )
    levels = tuple(_level(k, levels_table[k], base, source) for k in LEVELS if k in levels_table)
    meetings = config.get("meetings", {})
    duration = meetings.get("duration_min", 60)
    if not isinstance(duration, int) or not 1 <= duration <= _MAX_MEETING_MIN:
        raise _problem(
            source, "meetings.duration_min", f"{duration!r}: must be 1 to {_MAX_MEETING_MIN}"
        )
    beats = config.get("beats", {})
    stations = config.get("stations", {})
    incidents = config.get("incidents", {})
    # date_format: one format or a list; earliest_year: the department's first year of records
    options = {
        k: tuple(incidents[k]) if isinstance(incidents[k], list) else incidents[k]
        for k in ("crs", "date_format", "earliest_year")
        if incidents.get(k)
    }
    roles = _incident_roles()
    unknown = sorted(set(incidents.get("columns", {})) - roles) if roles else []
    if unknown:
        raise _problem(
            source,
            "incidents.columns",
            f"unknown roles {unknown}; expected some of {sorted(roles)}",
        )
    notes = tuple(config.get("notes", ()))
    tolerance = config.get("join", {}).get("edge_tolerance_m", 1.0)
    if not isinstance(tolerance, int | float) or not 0 <= tolerance <= 50:
        raise _problem(source, "join.edge_tolerance_m", f"{tolerance!r}: must be 0 to 50 metres")
    return Department(
        key=str(config["key"]),
        name=str(config["name"]),
        timezone=timezone,
        levels=levels,
        analysis_crs=str(crs) if crs else None,
        offense_vocabulary=config.get("offense_vocabulary"),
        beats_file=_path(base, beats.get("file")),
        beat_column=beats.get("beat_column"),
        beats_crs=str(beats["crs"]) if beats.get("crs") else None,
        stations_file=_path(base, stations.get("file")),
        station_columns=dict(stations.get("columns", {})),
        incident_files=_files(base, incidents.get("files", ()), source, "incidents.files"),
        incident_columns=dict(incidents.get("columns", {})),
        incident_options=options,
        publish=_publish(config.get("publish", {}), base),
        edge_tolerance_m=float(tolerance),
        meeting_cadence=str(meetings.get("cadence", "monthly")),
        meeting_duration_min=duration,
        meeting_sector_districts=tuple(str(d) for d in meetings.get("sector_districts", ())),
        meeting_note=meetings.get("note"),
        meeting_contact=meetings.get("contact"),
        source=source,
        notes=notes,
        call_files=_files(base, config.get("calls", {}).get("files", ()), source, "calls.files"),
        call_mapping=_path(base, config.get("calls", {}).get("mapping")),
    )


def _publish(table: Mapping[str, Any], base: Path | None) -> dict[str, Any]:
    """Return the ``[publish]`` table with its ``policy`` file resolved against the profile."""
    publish = dict(table)
    if publish.get("policy"):
        publish["policy"] = str(_path(base, publish["policy"]))
    return publish


def _incident_roles() -> set[str]:
    from geodata.readers import ColumnMapping

    return set(ColumnMapping.roles())


def _from_record(record: Mapping[str, Any]) -> Department:
    """Rebuild a Department from :meth:`Department.to_dict` output (a store's record)."""
    data = dict(record)
    levels = tuple(
        Level(**{**lv, "layer": Path(lv["layer"]) if lv.get("layer") else None})
        for lv in data.pop("levels")
    )
    for key in ("beats_file", "stations_file"):
        data[key] = Path(data[key]) if data.get(key) else None
    data["incident_files"] = tuple(Path(p) for p in data.get("incident_files", ()))
    data["call_files"] = tuple(Path(p) for p in data.get("call_files", ()))
    data["call_mapping"] = Path(data["call_mapping"]) if data.get("call_mapping") else None
    data["notes"] = tuple(data.get("notes", ()))
    data["meeting_sector_districts"] = tuple(data.get("meeting_sector_districts", ()))
    return Department(levels=levels, **data)


def adhoc_department(timezone: str, *, name: str = "department") -> Department:
    """Return a profile for a beat layer installed without one: canonical labels, detected columns.

    Used when ``ingest --beats`` is given a time zone but no profile; ``geodata department
    draft`` writes a real profile to edit instead.
    """
    dept = department_from_dict(
        {
            "key": "custom",
            "name": name,
            "timezone": timezone,
            "levels": {level: {} for level in LEVELS},
        },
        source=f"{name} (no department profile)",
    )
    return replace(dept, detect_columns=True)


def list_departments() -> list[str]:
    """Return the names of the bundled department profiles."""
    return sorted(p.stem for p in DEPARTMENTS_DIR.glob("*.toml"))


def load_department(name_or_path: Department | str | Path) -> Department:
    """Read a department profile by bundled name (``"seattle"``) or TOML file path.

    Raises
    ------
    InputError
        If no such profile exists, it cannot be parsed, or a value is invalid.
    """
    if isinstance(name_or_path, Department):
        return name_or_path
    text = str(name_or_path)
    path = Path(text).expanduser()
    if not path.suffix and not path.exists():
        path = DEPARTMENTS_DIR / f"{text.lower()}.toml"
        if not path.exists():
            msg = (
                f"{text!r} is neither a department profile file nor a bundled department "
                f"(bundled: {', '.join(list_departments())})"
            )
            raise InputError(msg, path=text)
    if not path.exists():
        msg = f"{path}: no such department profile"
        raise InputError(msg, path=str(path))
    config = read_toml(path, "the department profile")
    return department_from_dict(config, base=path.resolve().parent, source=str(path))


def store_department(store: IncidentStore) -> Department:
    """Return the department a store was built for.

    Parameters
    ----------
    store
        An :class:`~geodata.store.IncidentStore` (anything with ``meta()``).

    Returns
    -------
    Department
        The recorded profile with the store's analysis CRS and time zone; for a store built
        before department profiles, the bundled Chicago profile with a note saying so.
    """
    # meta.json alone (``_config``): what meta() adds from the table's history is not needed
    # here, and reading that history costs every command about 40 ms per call
    config = getattr(store, "_config", None)
    meta = config() if callable(config) else store.meta()
    record = meta.get("department")
    if record:
        dept = _from_record(record)
    else:
        dept = load_department(LEGACY_DEPARTMENT)
        note = (
            f"{getattr(store, 'root', 'the store')}: the store records no department; read as "
            f"{dept.name} (rebuild it with `python -m geodata init --department NAME`)"
        )
        dept = replace(dept, notes=(*dept.notes, note))
    if meta.get("analysis_crs") and dept.analysis_crs != meta["analysis_crs"]:
        dept = dept.with_analysis_crs(meta["analysis_crs"])
    if meta.get("timezone") and dept.timezone != meta["timezone"]:
        dept = replace(dept, timezone=meta["timezone"])
    return dept
