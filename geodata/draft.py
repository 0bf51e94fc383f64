"""Draft a department profile from a beat layer and an incident export, every guess commented.

``python -m geodata department draft --beats BEATS --incidents FILE --out mine.toml`` writes
the draft; the department edits what the comments flag and builds its store with
``python -m geodata init --department mine.toml``. See ``docs/departments.md``.
"""

from __future__ import annotations

import importlib.resources
import math
import re
import textwrap
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj
import shapely

from geodata import boundaries, schema
from geodata.categories import detect_vocabulary
from geodata.dates import DATE_FORMATS, NAT, DateReader, format_tuple
from geodata.errors import InputError
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
#: Beats closer than this (metres) touch: slivers between neighbours do not split an area.
_TOUCH_M = 2.0
#: Separate areas per value above which a column's values are scattered over the map (a number
#: repeated in every district, such as a sector 1 in each) rather than areas of their own.
_SCATTERED = 1.5
#: Share of projected x/y points that must fall within the beats for the beat layer's CRS to be
#: proposed as the export's.
_CRS_FITS = 0.5


@dataclass
class Draft:
    """What :func:`inspect_files` found: chosen values and a comment for each guess.

    `levels` holds each level's profile keys; a comment on one key of a level is
    ``comments["levels.<level>.<key>"]``. `date_formats` are the formats given with
    ``--date-format`` (written as ``date_format``); `date_choices` the month-first and day-first
    formats offered when the dates do not decide their order; `incident_crs` the CRS proposed
    for projected x/y columns.
    """

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
    date_formats: tuple[str, ...] = ()
    date_choices: tuple[str, ...] = ()
    #: The formats that read the export when its values decided a day/month order: written out,
    #: so that a later export whose days are all 12 or less is read in the same order.
    read_formats: tuple[str, ...] = ()
    incident_crs: str | None = None


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


def _id_text(values: pd.Series) -> pd.Series:
    """Return the ids of `values` as stripped text, missing and empty ones left out."""
    values = values.dropna()
    if pd.api.types.is_float_dtype(values) and bool((values % 1 == 0).all()):
        values = values.astype("int64")  # 925.0 is the id 925
    text = values.astype(str).str.strip()
    return text[text != ""]


def _id_rule(values: pd.Series) -> tuple[int, str]:
    """Return (width, comment) for the ids in `values`: a width when numeric ids are padded.

    The ids are numeric only when every one is written in digits: Seattle's beats (``K3``...
    and one ``99``) are text ids.
    """
    text = _id_text(values)
    digits = text.str.fullmatch(r"\d+")
    if text.empty or not digits.all():
        some = text[digits]
        note = f" ({len(some)} written in digits, such as {some.iloc[0]!r})" if len(some) else ""
        return 0, f"text ids{note}: upper-cased, not padded"
    padded = text[text.str.startswith("0") & (text.str.len() > 1)]
    if len(padded):
        width = int(text.str.len().max())
        return width, f"guess: ids written with leading zeros ({padded.iloc[0]!r}): width {width}"
    return 0, "numeric ids without leading zeros: not padded"


def _case_rule(values: pd.Series) -> tuple[str | None, str]:
    """Return the ``case`` rule of the ids in `values` and its comment (None: the default).

    Ids written in lower case (``k3``) are stored upper-cased, as the profile's default does,
    and the draft says so; ids that differ only in case (``b1`` and ``B1``) keep their case.
    """
    text = _id_text(values)
    letters = text[text.str.contains(r"[^\W\d_]", regex=True)]
    if letters.empty:
        return None, ""
    if letters.str.upper().nunique() < letters.nunique():
        same = letters[letters.str.upper().duplicated(keep=False)].drop_duplicates().iloc[:2]
        shown = " and ".join(repr(v) for v in same)
        return "keep", f"guess: ids differ only in case ({shown}): kept as written"
    if bool((letters == letters.str.lower()).all()):
        example = letters.iloc[0]
        return "upper", (
            f"the ids are written in lower case ({example!r}): stored upper-cased "
            f"({example.upper()!r}), so a report's {example.upper()!r} or {example!r} is the "
            'same beat; case = "keep" stores them as written'
        )
    return None, ""


def _grouping_columns(layer: gpd.GeoDataFrame, beat_col: str) -> list[str]:
    """Return columns that group beats (2 to n-1 distinct values), fewest values first.

    Names that say what they are (``precinct``, ``district``, ``zone``, ``sector``...) come
    before other columns with the same number of values; measures such as areas never group,
    nor does a column giving one beat id two values.
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
        if 2 <= distinct < n and _one_per_beat(layer, beat_col, column):
            named = bool(re.search(r"prec|dist|zone|area|div|sect|command", column.lower()))
            out.append((distinct, not named, column))
    return [column for _, _, column in sorted(out)]


def _one_per_beat(layer: gpd.GeoDataFrame, beat_col: str, column: str) -> bool:
    """Return True when every beat (a beat in two pieces too) has at most one value of `column`."""
    pairs = layer[[beat_col, column]].dropna()
    return not len(pairs) or int(pairs.groupby(beat_col)[column].nunique().max()) <= 1


def _nested(layer: gpd.GeoDataFrame, child: str, parent: str) -> bool:
    pairs = layer[[child, parent]].dropna()
    return bool(len(pairs)) and int(pairs.groupby(child)[parent].nunique().max()) == 1


def _qualified(layer: gpd.GeoDataFrame, child: str, parent: str) -> pd.Series:
    """Return the ids of `child` prefixed by those of `parent` (missing where either is)."""
    both = layer[child].notna() & layer[parent].notna()
    joined = layer[parent].astype(str) + "\x1f" + layer[child].astype(str)
    return joined.where(both)


def _parts_per_value(metric: gpd.GeoDataFrame, keys: pd.Series) -> float:
    """Return how many separate areas the beats of each value of `keys` make, on average.

    `metric` is the beat layer in metres; beats within ``_TOUCH_M`` of each other touch.
    """
    keep = keys.notna().to_numpy()
    if not keep.any():
        return math.inf
    grown = shapely.buffer(metric.geometry.to_numpy()[keep], _TOUCH_M)
    frame = gpd.GeoDataFrame({"key": keys.to_numpy()[keep]}, geometry=grown, crs=metric.crs)
    merged = frame.dissolve(by="key")
    return float(np.mean(shapely.get_num_geometries(merged.geometry.to_numpy())))


@dataclass
class _Hierarchy:
    """The levels found in a beat layer: top column, sector column, and whether it is qualified."""

    top: str | None = None
    sector: str | None = None
    qualify: bool = False
    #: Mean number of separate areas per value, by column (``_parts_per_value``).
    parts: dict[str, float] = field(default_factory=dict)


def _hierarchy(layer: gpd.GeoDataFrame, beat_col: str, metric: gpd.GeoDataFrame) -> _Hierarchy:
    """Return the district and sector columns of a beat layer (see :func:`inspect_files`).

    A parent level contains its children. A column whose values each make one area (allowing
    a few detached pieces) can be the top level; the coarsest such column with a child wins.
    Its child is a column each of whose values lies within one parent (Seattle's sectors in
    their precincts) or, failing one, a column whose values repeat under several parents and
    are scattered over the map but make one area with the parent's id before them (Chicago's
    sector 1 of every district: ``qualify``). A layer with no such pair keeps the coarsest
    area column as its top level.
    """
    groups = _grouping_columns(layer, beat_col)
    if not groups:
        return _Hierarchy()
    parts = {g: _parts_per_value(metric, layer[g]) for g in groups}
    tops = [g for g in groups if parts[g] <= _SCATTERED] or groups
    n_beats = layer[beat_col].nunique()
    for top in tops:
        n_top = layer[top].nunique()
        plain = [
            c for c in groups if c != top and layer[c].nunique() > n_top and _nested(layer, c, top)
        ]
        if plain:
            return _Hierarchy(top, plain[0], False, parts)
        for child in groups:
            if child == top or parts[child] <= _SCATTERED:
                continue  # a child that is an area of its own needs no parent's id
            pairs = _qualified(layer, child, top)
            if not n_top < pairs.nunique() < n_beats:
                continue
            parts[f"{top}+{child}"] = pair_parts = _parts_per_value(metric, pairs)
            if pair_parts <= _SCATTERED:
                return _Hierarchy(top, child, True, parts)
    return _Hierarchy(tops[0], None, False, parts)


def _level_from_column(
    layer: gpd.GeoDataFrame, column: str
) -> tuple[dict[str, object], str, dict[str, str]]:
    """Return a level's keys, its comment and comments on single keys (``case``)."""
    width, rule = _id_rule(layer[column])
    level: dict[str, object] = {"parent": "column", "column": column}
    notes: dict[str, str] = {}
    if width:
        level["width"] = width
    case, notes["case"] = _case_rule(layer[column])
    if case:
        level["case"] = case
    n = layer[column].nunique()
    return level, f"guess: column {column!r} ({n} distinct values); ids: {rule}", notes


def _levels(
    layer: gpd.GeoDataFrame, beat_col: str, metric: gpd.GeoDataFrame, comments: dict[str, str]
) -> dict[str, dict[str, object]]:
    """Return the profile's ``levels`` tables of a beat layer, commenting each in `comments`."""
    width, rule = _id_rule(layer[beat_col])
    levels: dict[str, dict[str, object]] = {
        schema.BEAT: {"singular": "beat", "plural": "beats", **({"width": width} if width else {})}
    }
    comments["levels.beat"] = rule
    case, note = _case_rule(layer[beat_col])
    if case:
        levels[schema.BEAT]["case"] = case
        comments["levels.beat.case"] = note
    found = _hierarchy(layer, beat_col, metric)
    if found.top is None:
        return levels
    level, comment, notes = _level_from_column(layer, found.top)
    levels[schema.DISTRICT] = {"singular": "district", "plural": "districts", **level}
    comments["levels.district"] = comment + "; write the department's words as labels"
    comments.update({f"levels.district.{k}": v for k, v in notes.items() if v})
    if found.sector is None:
        return levels
    level, comment, notes = _level_from_column(layer, found.sector)
    levels[schema.SECTOR] = {"singular": "sector", "plural": "sectors", **level}
    comments.update({f"levels.sector.{k}": v for k, v in notes.items() if v})
    if not found.qualify:
        comments["levels.sector"] = comment + f", each within one {found.top!r}"
        return levels
    pairs = layer[[found.top, found.sector]].dropna()
    repeated = pairs.groupby(found.sector)[found.top].nunique()
    value = str(repeated.idxmax()).strip()
    shared = int(repeated.max())
    comments["levels.sector"] = (
        f"{comment}; {found.sector} {value!r} recurs under {shared} values of {found.top}, so "
        f"each is named with its {found.top} first"
    )
    levels[schema.SECTOR]["qualify"] = True
    parent = levels[schema.DISTRICT]
    top_ids = _id_text(layer[found.top])
    if top_ids.str.fullmatch(r"\d+").all() and not parent.get("width"):
        # fixed-width parent ids keep the qualified ids apart (1 + 11 and 11 + 1 are not 111)
        width = int(top_ids.str.len().max())
        parent["width"] = width
        short = pairs.loc[_id_text(pairs[found.top]).str.len().idxmin()]
        top_id, own = str(short[found.top]).strip(), str(short[found.sector]).strip()
        comments["levels.district.width"] = (
            f"guess: so that each qualified {found.sector} id is the {found.top} id padded to "
            f"{width} digits then its own ({top_id!r} and {own!r} make "
            f"{top_id.rjust(width, '0') + own!r})"
        )
    comments["levels.sector.qualify"] = (
        f"guess: a {found.sector} is known by its {found.top} and its own id; "
        f"{found.top} alone makes one area per value, {found.sector} alone "
        f"{found.parts[found.sector]:.0f} areas per value"
    )
    return levels


def _crs_name(crs: pyproj.CRS) -> str:
    """Return a CRS as ``EPSG:<code>`` when it has one, else as pyproj writes it."""
    code = crs.to_epsg(min_confidence=25)
    return f"EPSG:{code}" if code else str(crs.to_string())


def _xy_crs(
    table: pd.DataFrame, mapping: ColumnMapping, layer: gpd.GeoDataFrame
) -> tuple[str | None, str]:
    """Return the CRS proposed for projected x/y columns (from the beat layer) and a comment.

    Nothing is proposed when the incidents have lat/lon, when the x/y values look like lon/lat
    (ingest reads those as WGS84), or when the beat layer is in lon/lat itself; a proposal
    says how many of the points fall within the beats in that CRS.
    """
    if mapping.x is None or mapping.y is None or mapping.lat is not None:
        return None, ""
    if mapping.x.startswith("__") or layer.crs is None:
        return None, ""
    x = pd.to_numeric(table[mapping.x], errors="coerce")
    y = pd.to_numeric(table[mapping.y], errors="coerce")
    located = x.notna() & y.notna() & ((x != 0) | (y != 0))
    x, y = x[located], y[located]
    if x.empty or not bool((x.abs() > 180).any()):
        return None, ""
    layer_crs = _crs_name(layer.crs)
    if layer.crs.is_geographic:
        return None, (
            f"the x/y columns hold projected coordinates but the beat layer is in lon/lat "
            f"({layer_crs}): write the export's CRS (its state plane or UTM zone) as crs"
        )
    x0, y0, x1, y1 = layer.total_bounds
    inside = float(((x >= x0) & (x <= x1) & (y >= y0) & (y <= y1)).mean())
    comment = (
        f"guess: taken from the beat layer ({layer_crs}); {inside:.1%} of the {len(x):,} x/y "
        "points fall within the beats' extent in it. Check it is the export's CRS"
    )
    if inside < _CRS_FITS:
        return None, comment + ": it is probably not, write the export's CRS"
    return layer_crs, comment


def _date_choices(text: pa.Array) -> tuple[str, ...]:
    """Return the month-first and day-first forms of the format that reads most of `text`."""
    sample = text.filter(pc.not_equal(text, "")).slice(0, 20_000)
    order = re.compile(r"^%([md])[/-]%([md])")
    best, most = None, 0
    for fmt in DATE_FORMATS:
        if not order.match(fmt):
            continue
        parsed = pc.strptime(sample, format=fmt, unit="s", error_is_null=True)
        read = len(sample) - parsed.null_count
        if read > most:
            best, most = fmt, read
    if best is None:
        return ()
    month_first = best if best.startswith("%m") else _swap_day_month(best)
    return month_first, _swap_day_month(month_first)


def _swap_day_month(fmt: str) -> str:
    return fmt.replace("%m", "\0").replace("%d", "%m").replace("\0", "%d")


@dataclass
class _Dates:
    """How the date column reads: formats in use, or why its order is undecided."""

    formats: list[str]
    comment: str
    choices: tuple[str, ...] = ()
    #: ``"mdy"``/``"dmy"`` when the values decided the day/month order (None: no order to decide).
    order: str | None = None


def _inspect_dates(
    values: pd.Series,
    lines: pd.Series,
    *,
    path: Path,
    column: str,
    timezone: str,
    formats: tuple[str, ...],
) -> _Dates:
    """Read a whole date column as ingest does; say which format(s) read it, or why none can.

    :func:`geodata.dates.parse_timestamps` would name no file and number the values from 1, so
    the column is read with its :class:`~geodata.dates.DateReader`, given the file and the file
    line of each value: the day/month order is decided by the whole column, as ingest decides
    it (an export sorted by date starts with days 1 to 12 only). A column that does not decide
    its order is not an error here: the comment says so and the choices are offered.
    """
    reader = DateReader(path=path, column=column, timezone=timezone, formats=formats)
    text = pc.utf8_trim_whitespace(pa.array(values.astype("string").fillna(""), type=pa.string()))
    given = "given with --date-format; " if formats else ""
    try:
        utc, _ = reader.read(text, lines.to_numpy(dtype=np.int64))
    except InputError as err:
        reason = str(err).split(" Pass --date-format", 1)[0].rstrip(".")
        return _Dates([], reason, () if formats else _date_choices(text))
    filled = int(pc.sum(pc.not_equal(text, "")).as_py() or 0)
    unread = filled - int((utc != NAT).sum())
    used = reader.used_formats
    if not used:
        return _Dates([], f"{given}no date of column {column!r} matches a known format", ())
    order = {"mdy": " (month first)", "dmy": " (day first)"}.get(reader.order or "", "")
    comment = f"{given}dates read as {' or '.join(used)}{order}"
    if unread:
        comment += f"; {unread:,} of {filled:,} dates match none of these: ingest rejects them"
    return _Dates(used, comment, (), reader.order)


def inspect_files(
    beats: str | Path,
    incidents: str | Path,
    *,
    name: str | None = None,
    date_format: str | Sequence[str] | None = None,
) -> Draft:
    """Inspect a beat layer and an incident export; return the guesses for a profile.

    Parameters
    ----------
    beats, incidents
        The beat polygon layer and an incident export of the department.
    name
        The department's name (default: from the beat file's name).
    date_format
        The strptime format(s) of the export's dates, when known (``--date-format``): they are
        written into the draft, and the dates are read with them only.

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
    crs = boundaries.analysis_crs_for(layer)
    levels = _levels(layer, beat_col, layer.to_crs(crs), comments)
    wgs84 = layer.to_crs(schema.WGS84)
    centre = wgs84.geometry.union_all().centroid
    zone, comments["timezone"] = guess_timezone(centre.x, centre.y)
    comments["analysis_crs"] = (
        f"the UTM zone of the beats' centroid ({crs}); leave it out to keep this default"
    )

    table, lines, geometry_crs, _ = read_table(incidents)
    mapping = detect_mapping(list(table.columns))
    comments["mapping"] = "guess: detected from the header; check every line"
    if geometry_crs and mapping.x == "__geometry_x":
        # role -> source column, as keyword fields of ColumnMapping
        roles: dict[str, Any] = {
            k: v for k, v in mapping.used_columns().items() if k not in {"x", "y"}
        }
        mapping = ColumnMapping(**roles)
        comments["mapping"] += "; coordinates come from the file's point geometry"
    incident_crs, crs_comment = _xy_crs(table, mapping, layer)
    if crs_comment:
        comments["crs"] = crs_comment
    formats = format_tuple(date_format)
    choices: tuple[str, ...] = ()
    read_formats: tuple[str, ...] = ()
    if mapping.occurred_at:
        # the zone only places the times; any zone decides the formats and the day/month order
        dates = _inspect_dates(
            table[mapping.occurred_at],
            lines,
            path=incidents,
            column=mapping.occurred_at,
            timezone=zone or "UTC",
            formats=formats,
        )
        comments["date_format"] = dates.comment
        choices = dates.choices
        if dates.order and not formats:
            read_formats = tuple(dates.formats)
        if not dates.formats and not formats:
            comments["date_order"] = dates.comment
            del comments["date_format"]
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
        ids = set(schema.normalize_ids(layer[beat_col]).dropna())
        reported = schema.normalize_ids(table[mapping.reported_beat])
        written = reported.dropna()
        share = float(written.isin(ids).mean()) if len(written) else 0.0
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
        date_formats=formats,
        date_choices=choices,
        read_formats=read_formats,
        incident_crs=incident_crs,
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
    date_format: str | Sequence[str] | None = None,
) -> str:
    """Return the text of a draft department profile (TOML) with every guess commented.

    Parameters
    ----------
    beats, incidents, name, date_format
        As for :func:`inspect_files`, which makes the guesses.
    out_dir
        Directory the profile will be written to; file paths are written relative to it.
    """
    draft = inspect_files(beats, incidents, name=name, date_format=date_format)
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


def _comment_lines(text: str, *, width: int = 96) -> list[str]:
    """Return `text` as ``# `` comment lines of at most about `width` characters."""
    return ["# " + line for line in textwrap.wrap(text, width - 2, break_on_hyphens=False)]


def _option_lines(draft: Draft) -> list[str]:
    """Return the ``crs`` and ``date_format`` lines of the incidents (profile and mapping)."""
    c = draft.comments
    lines = []
    if draft.incident_crs:
        lines.append(f"crs = {_toml(draft.incident_crs)}  # {c['crs']}")
    elif "crs" in c:
        lines.append(f'# crs = "EPSG:...."  # {c["crs"]}')
    if draft.date_formats:
        formats = draft.date_formats
        value = _toml(formats[0]) if len(formats) == 1 else f"[{', '.join(map(_toml, formats))}]"
        lines.append(f"date_format = {value}  # {c.get('date_format', 'given with --date-format')}")
    elif draft.read_formats:
        formats = draft.read_formats
        value = _toml(formats[0]) if len(formats) == 1 else f"[{', '.join(map(_toml, formats))}]"
        lines += _comment_lines(
            f"guess: {c['date_format']}. Written out so that a later export whose days are all "
            "12 or less is read in the same order (ingest refuses a file whose dates do not say "
            "their order); remove the line to detect the formats of each file."
        )
        lines.append(f"date_format = {value}")
    elif "date_format" in c:
        lines.append(f'# {c["date_format"]}; set date_format = "%..." if that is wrong')
    elif "date_order" in c:
        lines += _comment_lines(f"guess needed: {c['date_order']}.")
        if draft.date_choices:
            month_first, day_first = draft.date_choices
            lines += [
                "# Set the one that is right (ingest refuses the file until one is set):",
                f"# date_format = {_toml(month_first)}  # month first: 03/04 is 4 March",
                f"# date_format = {_toml(day_first)}  # day first: 03/04 is 3 April",
            ]
        else:
            lines.append('# Set date_format = "%..." (a strptime format) for the dates')
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
            note = c.get(f"levels.{key}.{field_name}")
            lines.append(f"{field_name} = {_toml(value)}" + (f"  # {note}" if note else ""))
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
    lines += _option_lines(draft)
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

    The same roles as the profile's ``[incidents.columns]``, with the guessed time zone, the
    CRS of projected x/y columns and the date format(s) as options, readable by
    :func:`geodata.readers.load_mapping`.
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
    lines += _option_lines(draft)
    lines.append("")
    return "\n".join(lines)
