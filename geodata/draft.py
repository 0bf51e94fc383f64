"""Draft a department profile from a beat layer and an incident export, every guess commented.

``python -m geodata department draft --beats BEATS --incidents FILE --out mine.toml`` writes
the draft; the department edits what the comments flag and builds its store with
``python -m geodata init --department mine.toml``. See ``docs/departments.md``.
"""

from __future__ import annotations

import importlib.resources
import math
import re
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import pandas as pd

from geodata import boundaries, schema
from geodata.categories import detect_vocabulary
from geodata.dates import parse_timestamps
from geodata.readers import ColumnMapping, detect_mapping, read_table

__all__ = [
    "Draft",
    "draft_department",
    "guess_timezone",
    "inspect_files",
    "render_mapping",
    "render_profile",
]

#: Who wrote a draft: named in its first comment line.
CLI_ORIGIN = "`python -m geodata department draft`"

_SYSTEM_ZONES = Path("/usr/share/zoneinfo/zone1970.tab")
_SAME_CLOCK_KM = 2500.0


@dataclass
class Draft:
    """What :func:`inspect_files` found: chosen values and a comment for each guess."""

    name: str
    key: str
    timezone: str | None
    analysis_crs: str
    beat_column: str
    levels: dict[str, dict[str, object]]
    mapping: ColumnMapping
    vocabulary: str | None
    comments: dict[str, str] = field(default_factory=dict)
    unused_columns: list[str] = field(default_factory=list)


def _zone_table() -> list[tuple[str, float, float]]:
    """Return (zone, lat, lon) of each zone's principal city from tzdata's zone1970.tab."""
    try:
        text = (
            importlib.resources.files("tzdata")
            .joinpath("zoneinfo", "zone1970.tab")
            .read_text(encoding="utf-8")
        )
    except (ModuleNotFoundError, FileNotFoundError):
        text = _SYSTEM_ZONES.read_text(encoding="utf-8") if _SYSTEM_ZONES.exists() else ""
    zones = []
    for line in text.splitlines():
        if line.startswith("#") or not line.strip():
            continue
        parts = line.split("\t")
        match = re.fullmatch(r"([+-]\d{2})(\d{2})(\d{2})?([+-]\d{3})(\d{2})(\d{2})?", parts[1])
        if match is None:
            continue
        lat_d, lat_m, lat_s, lon_d, lon_m, lon_s = match.groups()

        def degrees(d: str, m: str, s: str | None) -> float:
            sign = -1.0 if d.startswith("-") else 1.0
            return sign * (abs(int(d)) + int(m) / 60 + int(s or 0) / 3600)

        zones.append((parts[2], degrees(lat_d, lat_m, lat_s), degrees(lon_d, lon_m, lon_s)))
    return zones


def _km(lat1: float, lon1: float, lat2: float, lon2: float) -> float:
    p1, p2 = math.radians(lat1), math.radians(lat2)
    dp, dl = p2 - p1, math.radians(lon2 - lon1)
    a = math.sin(dp / 2) ** 2 + math.cos(p1) * math.cos(p2) * math.sin(dl / 2) ** 2
    return 2 * 6371.0 * math.asin(math.sqrt(a))


def _same_clock(a: str, b: str) -> bool:
    """Return True when zones `a` and `b` keep the same UTC offsets in January and July."""
    days = (datetime(2024, 1, 15, 12), datetime(2024, 7, 15, 12))
    return all(
        d.replace(tzinfo=ZoneInfo(a)).utcoffset() == d.replace(tzinfo=ZoneInfo(b)).utcoffset()
        for d in days
    )


def guess_timezone(lon: float, lat: float) -> tuple[str | None, str]:
    """Return the zone whose principal city is nearest (lon, lat), and a comment naming others.

    The nearest zone city may be across a border (Seattle is nearer Vancouver than Los
    Angeles), so the comment names the other zones within 2,500 km that keep the same clock.
    """
    zones = _zone_table()
    if not zones:
        return None, "no time zone table found: write the department's IANA zone"
    ranked = sorted((_km(lat, lon, z[1], z[2]), z[0]) for z in zones)
    best_km, best = ranked[0]
    others = [
        f"{zone} ({km:,.0f} km)"
        for km, zone in ranked[1:]
        if km < _SAME_CLOCK_KM and _same_clock(zone, best)
    ][:3]
    comment = f"guess: the zone whose principal city is nearest the beats ({best_km:,.0f} km)"
    if others:
        comment += "; the same clock is kept by " + ", ".join(others) + ": choose your country's"
    return best, comment


def _id_rule(values: pd.Series) -> tuple[int, str]:
    """Return (width, comment) for the ids in `values`: a width when numeric ids are padded."""
    text = values.dropna().astype(str).str.strip()
    digits = text[text.str.fullmatch(r"\d+")]
    if digits.empty:
        return 0, "text ids: upper-cased, not padded"
    padded = digits[digits.str.startswith("0") & (digits.str.len() > 1)]
    if len(padded):
        width = int(digits.str.len().max())
        return width, f"guess: ids written with leading zeros ({padded.iloc[0]!r}): width {width}"
    return 0, "numeric ids without leading zeros: not padded"


def _grouping_columns(layer: gpd.GeoDataFrame, beat_col: str) -> list[str]:
    """Return columns that group beats (2 to n-1 distinct values), fewest values first.

    Names that say what they are (``precinct``, ``district``, ``zone``, ``sector``...) come
    before other columns with the same number of values; measures such as areas never group.
    """
    n = layer[beat_col].nunique()
    out = []
    for column in layer.columns:
        if column in {beat_col, layer.geometry.name}:
            continue
        values = layer[column]
        if values.isna().all() or pd.api.types.is_float_dtype(values):
            continue
        distinct = values.nunique()
        if 2 <= distinct < n:
            named = bool(re.search(r"prec|dist|zone|area|div|sect|command", column.lower()))
            out.append((distinct, not named, column))
    return [column for _, _, column in sorted(out)]


def _nested(layer: gpd.GeoDataFrame, child: str, parent: str) -> bool:
    pairs = layer[[child, parent]].dropna()
    return bool(len(pairs)) and int(pairs.groupby(child)[parent].nunique().max()) == 1


def _level_from_column(layer: gpd.GeoDataFrame, column: str) -> tuple[dict[str, object], str]:
    width, rule = _id_rule(layer[column])
    level: dict[str, object] = {"parent": "column", "column": column}
    if width:
        level["width"] = width
    n = layer[column].nunique()
    return level, f"guess: column {column!r} ({n} distinct values); ids: {rule}"


def inspect_files(beats: str | Path, incidents: str | Path, *, name: str | None = None) -> Draft:
    """Inspect a beat layer and an incident export; return the guesses for a profile.

    Raises
    ------
    InputError
        If either file cannot be read or the beat layer has no id column.
    """
    beats, incidents = Path(beats), Path(incidents)
    layer = boundaries._read_layer(beats)
    columns = [c for c in layer.columns if c != layer.geometry.name]
    comments: dict[str, str] = {}
    beat_col = boundaries._find(columns, boundaries._BEAT_COLUMNS, None)
    if beat_col is None:  # the column whose values are (nearly) all distinct, short text
        unique = [c for c in columns if layer[c].nunique() >= 0.9 * len(layer)]
        beat_col = unique[0] if unique else columns[0]
        comments["beat_column"] = f"guess: {beat_col!r} has a distinct value per polygon. Check it"
    else:
        comments["beat_column"] = f"found by its name ({layer[beat_col].nunique()} beats)"
    width, rule = _id_rule(layer[beat_col])
    levels: dict[str, dict[str, object]] = {
        schema.BEAT: {"singular": "beat", "plural": "beats", **({"width": width} if width else {})}
    }
    comments["levels.beat"] = rule
    groups = _grouping_columns(layer, beat_col)
    if groups:  # the coarsest grouping is the top level; a finer one nested in it, the sector
        top = groups[0]
        level, comment = _level_from_column(layer, top)
        levels[schema.DISTRICT] = {"singular": "district", "plural": "districts", **level}
        comments["levels.district"] = comment + "; write the department's words as labels"
        finer = [g for g in groups[1:] if _nested(layer, g, top)]
        if finer:
            level, comment = _level_from_column(layer, finer[0])
            levels[schema.SECTOR] = {"singular": "sector", "plural": "sectors", **level}
            comments["levels.sector"] = comment
    wgs84 = layer.to_crs(schema.WGS84)
    centre = wgs84.geometry.union_all().centroid
    zone, comments["timezone"] = guess_timezone(centre.x, centre.y)
    crs = boundaries.analysis_crs_for(layer)
    comments["analysis_crs"] = (
        f"the UTM zone of the beats' centroid ({crs}); leave it out to keep this default"
    )

    table, _, geometry_crs, _ = read_table(incidents)
    mapping = detect_mapping(list(table.columns))
    comments["mapping"] = "guess: detected from the header; check every line"
    if geometry_crs and mapping.x == "__geometry_x":
        # role -> source column, as keyword fields of ColumnMapping
        roles: dict[str, Any] = {
            k: v for k, v in mapping.used_columns().items() if k not in {"x", "y"}
        }
        mapping = ColumnMapping(**roles)
        comments["mapping"] += "; coordinates come from the file's point geometry"
    if mapping.occurred_at and zone:
        sample = table[mapping.occurred_at].head(500)
        _, used = parse_timestamps(sample, timezone=zone)
        if used:
            comments["date_format"] = f"dates read as {used}"
    vocabulary = None
    if mapping.offense:
        codes = table[mapping.fbi_code] if mapping.fbi_code else None
        vocabulary = detect_vocabulary(table[mapping.offense].replace("", pd.NA), codes)
        comments["offense_vocabulary"] = (
            f"guess: most offenses are in the bundled {vocabulary!r} vocabulary"
            if vocabulary
            else "no bundled vocabulary names most offenses: copy geodata/vocabularies/"
            "nibrs.toml, map your offenses and give its path"
        )
    if mapping.reported_beat:
        ids = set(layer[beat_col].astype(str).str.strip().str.upper())
        reported = table[mapping.reported_beat].str.strip().str.upper()
        share = float(reported[reported != ""].isin(ids).mean()) if len(reported) else 0.0
        comments["reported_beat"] = f"{share:.1%} of reported beats are ids of the beat layer"
    label = name or beats.stem.replace("_", " ").title()
    key = re.sub(r"[^a-z0-9]+", "_", label.lower()).strip("_") or "department"
    return Draft(
        name=label,
        key=key,
        timezone=zone,
        analysis_crs=crs,
        beat_column=beat_col,
        levels=levels,
        mapping=mapping,
        vocabulary=vocabulary,
        comments=comments,
        unused_columns=[
            c
            for c in table.columns
            if c not in set(mapping.used_columns().values()) and not c.startswith("__")
        ],
    )


def _toml(value: object) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'


def _relative(path: Path, out_dir: Path | None) -> str:
    path = path.resolve()
    if out_dir is None:
        return str(path)
    try:
        return str(path.relative_to(out_dir.resolve()))
    except ValueError:
        return str(path)


def draft_department(
    beats: str | Path,
    incidents: str | Path,
    *,
    name: str | None = None,
    out_dir: str | Path | None = None,
) -> str:
    """Return the text of a draft department profile (TOML) with every guess commented.

    Parameters
    ----------
    beats, incidents
        The beat polygon layer and an incident export of the department.
    name
        The department's name (default: from the beat file's name).
    out_dir
        Directory the profile will be written to; file paths are written relative to it.
    """
    draft = inspect_files(beats, incidents, name=name)
    return render_profile(draft, beats, incidents, out_dir=out_dir)


def _column_lines(draft: Draft) -> list[str]:
    """Return the ``role = "column"`` lines of the mapping, and the roles not found."""
    lines = []
    for role, column in draft.mapping.used_columns().items():
        note = f"  # {draft.comments['reported_beat']}" if role == "reported_beat" else ""
        lines.append(f"{role} = {_toml(column)}{note}")
    missing = [r for r in ColumnMapping.roles() if getattr(draft.mapping, r) is None]
    if missing:
        lines.append(f"# roles not found (add the ones the file has): {', '.join(missing)}")
    return lines


def render_profile(
    draft: Draft,
    beats: str | Path,
    incidents: str | Path,
    *,
    out_dir: str | Path | None = None,
    origin: str = CLI_ORIGIN,
) -> str:
    """Return the text of the draft profile of `draft` (see :func:`draft_department`).

    Parameters
    ----------
    draft
        What :func:`inspect_files` found in `beats` and `incidents`.
    beats, incidents
        The inspected files; written relative to `out_dir`.
    out_dir
        Directory the profile will be written to.
    origin
        Who wrote the draft, for its first comment line.
    """
    base = Path(out_dir) if out_dir is not None else None
    c = draft.comments
    lines = [
        f"# Draft department profile written by {origin}.",
        "# Every line marked 'guess' was inferred from the files: check it, then build the store:",
        "#   python -m geodata init --department THIS_FILE --store DIR",
        "# See docs/departments.md.",
        f"key = {_toml(draft.key)}",
        f"name = {_toml(draft.name)}  # guess: from the file name; write the department's name",
        f"timezone = {_toml(draft.timezone or '')}  # {c['timezone']}",
        f"# analysis_crs = {_toml(draft.analysis_crs)}  # {c['analysis_crs']}",
    ]
    if draft.vocabulary:
        lines.append(f"offense_vocabulary = {_toml(draft.vocabulary)}  # {c['offense_vocabulary']}")
    elif "offense_vocabulary" in c:
        lines.append(f'# offense_vocabulary = "mine.toml"  # {c["offense_vocabulary"]}')
    for key in (schema.BEAT, schema.SECTOR, schema.DISTRICT):
        if key not in draft.levels:
            continue
        lines.append("")
        lines.append(f"[levels.{key}]  # {c.get(f'levels.{key}', '')}")
        for field_name, value in draft.levels[key].items():
            lines.append(f"{field_name} = {_toml(value)}")
    if schema.DISTRICT not in draft.levels:
        lines += [
            "",
            "# No precinct/district column was found. Declare the top level if there is one:",
            "# [levels.district]",
            '# singular = "precinct"',
            '# parent = "prefix"     # the first `length` characters of the beat id, or',
            "# length = 1",
            '# parent = "layer"      # a polygon layer: layer = "precincts.geojson"',
        ]
    lines += [
        "",
        "[beats]",
        f"file = {_toml(_relative(Path(beats), base))}",
        f"beat_column = {_toml(draft.beat_column)}  # {c['beat_column']}",
        "",
        "# [stations]  # police stations CSV with LATITUDE/LONGITUDE (optional)",
        '# file = "stations.csv"',
        "",
        "[incidents]",
        f"files = [{_toml(_relative(Path(incidents), base))}]",
    ]
    if "date_format" in c:
        lines.append(f'# {c["date_format"]}; set date_format = "%..." if that is wrong')
    lines.append(f"[incidents.columns]  # {c['mapping']}")
    lines += _column_lines(draft)
    if draft.unused_columns:
        lines.append(f"# columns not used: {', '.join(draft.unused_columns)}")
    lines += [
        "",
        "[meetings]",
        'cadence = "monthly"',
        "duration_min = 60  # at most 60",
        "",
    ]
    return "\n".join(lines)


def render_mapping(draft: Draft, incidents: str | Path, *, origin: str = CLI_ORIGIN) -> str:
    """Return the column mapping of `draft` as a mapping file (see ``docs/mapping.example.toml``).

    The same roles as the profile's ``[incidents.columns]``, with the guessed time zone as an
    option, readable by :func:`geodata.readers.load_mapping`.
    """
    c = draft.comments
    lines = [
        f"# Draft column mapping of {Path(incidents).name}, written by {origin}.",
        f"# {c['mapping']}.",
        "[columns]",
    ]
    lines += _column_lines(draft)
    lines += ["", "[options]"]
    if draft.timezone:
        lines.append(f"timezone = {_toml(draft.timezone)}  # {c['timezone']}")
    else:
        lines.append(f'# timezone = "Area/City"  # {c["timezone"]}')
    if "date_format" in c:
        lines.append(f'# {c["date_format"]}; set date_format = "%..." if that is wrong')
    lines.append("")
    return "\n".join(lines)
