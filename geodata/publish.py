"""Publish a community extract that protects victims by construction.

The public extract is built from the analyst store by one pure function,
:func:`build_extract`, and written by :func:`write_extract`. What it can hold is fixed by
construction, not by a filter a caller might forget:

* **columns**: only ``date`` (local day, no time), ``category`` (violent, property, ...),
  ``block`` (re-normalised hundred-block such as ``012XX W MADISON ST``), ``beat``, ``sector``,
  ``district`` and the block point (``x``/``y`` in the analysis CRS, ``lon``/``lat``). No
  incident id, case number, offense, description, location type, arrest or domestic flag;
* **rows**: never a sensitive one. A row is dropped when the store marked it sensitive, when the
  current offense rules (``geodata/vocabularies/``) mark it sensitive, when its
  ``domestic`` flag is set, or when its offense or description matches one of the exclusion
  groups (sexual offenses, domestic incidents, juvenile and child-related, mental-health calls,
  death investigations, trafficking/stalking/kidnapping). A configuration can add groups and
  patterns, never remove the defaults. Rows without a parseable hundred-block, or outside
  every beat, are dropped too;
* **time**: a posting delay and a rolling window on local dates. With as-of day ``A``, delay
  ``d`` and window ``w`` the extract holds days ``[A - d - w, A - d)``;
* **place**: every row of one block gets the same *block point*: the median position of all
  stored incidents on that block (every category and date), snapped to the centre of a
  ``snap_m`` grid cell (50 m by default) in the analysis CRS. A published coordinate is thus
  always the centre of a grid cell, never an incident's position, and at most
  ``snap_m / sqrt(2)`` from the block's median.

"Find my beat" files (:data:`FINDER_FILES`) are written beside them: the block gazetteer of the
store (:meth:`geodata.geocode.BlockGazetteer.from_store`: block names and positions, built from
incidents not flagged sensitive or domestic, no counts) and the exact beat outlines in the
analysis CRS, so the community app answers "which beat am I in" exactly as the analyst app and
``geodata meetings find`` do, without ever reading the published grid points.

Per-beat aggregates (weekly counts by category, and a summary of the last 28 days against the
28 before) and a ``metadata.json`` stating all of the above are written next to the incidents.
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyproj

from geodata import schema
from geodata.categories import OffenseCategories, load_categories
from geodata.errors import InputError, ParameterError, StoreError
from geodata.geocode import BlockGazetteer, normalize_block
from geodata.store import IncidentStore
from geodata.tomlfiles import read_toml

if TYPE_CHECKING:
    pass

__all__ = [
    "DEFAULT_EXCLUSIONS",
    "EXTRACT_FILES",
    "FINDER_FILES",
    "PUBLIC_COLUMNS",
    "PublicExtract",
    "PublishPolicy",
    "beat_summary",
    "block_points",
    "build_extract",
    "busiest_as_of",
    "exclusion_mask",
    "load_policy",
    "public_block",
    "publish_store",
    "publish_window",
    "read_extract",
    "read_finder",
    "snap_to_grid",
    "write_extract",
]

logger = logging.getLogger(__name__)

DATE = "date"
WEEK = "week"
#: Length of the recent period that the summary compares with the one before it.
RECENT_DAYS = 28
#: Columns of the published incidents, in order: nothing else can reach the extract.
PUBLIC_COLUMNS = (
    DATE,
    schema.CATEGORY,
    schema.BLOCK,
    schema.BEAT,
    schema.SECTOR,
    schema.DISTRICT,
    schema.X,
    schema.Y,
    schema.LON,
    schema.LAT,
)
#: Files of an extract directory.
EXTRACT_FILES = {
    "incidents": "incidents.parquet",
    "beat_weekly": "beat_weekly.parquet",
    "beat_summary": "beat_summary.parquet",
    "beats": "beats.geojson",
    "stations": "stations.json",
    "metadata": "metadata.json",
}
#: Files of "find my beat" beside the extract. Optional, so an extract published before they
#: existed still opens (the app then asks for a new publish to find addresses).
FINDER_FILES = {
    "blocks": "find_blocks.parquet",
    "beats": "find_beats.parquet",
}

#: Exclusion groups: label -> regular expressions matched (case-insensitively) against the
#: offense and the description of every row. Safe defaults; a policy file can only add.
DEFAULT_EXCLUSIONS: dict[str, tuple[str, ...]] = {
    "sexual offenses": (
        r"SEX",
        r"RAPE",
        r"PROSTITUT",
        r"OBSCEN",
        r"INDECEN",
        r"PORNOGRAPH",
    ),
    "domestic incidents": (r"DOMESTIC", r"ORDER OF PROTECTION"),
    "juvenile and child-related": (r"CHILD", r"JUVENILE", r"\bMINORS?\b(?!\s*INJURY)", r"TRUAN"),
    "mental-health calls": (r"MENTAL", r"PSYCH"),
    "death investigations": (r"DEATH", r"SUICIDE", r"DECEASED", r"CORONER"),
    "trafficking, stalking and kidnapping": (r"TRAFFICKING", r"STALKING", r"KIDNAP"),
}

#: Store columns the publish step reads.
_READ_COLUMNS = [
    schema.OCCURRED_AT,
    schema.OFFENSE,
    schema.DESCRIPTION,
    schema.CATEGORY,
    schema.IS_SENSITIVE,
    schema.DOMESTIC,
    schema.BLOCK,
    schema.X,
    schema.Y,
    schema.BEAT,
    schema.SECTOR,
    schema.DISTRICT,
]


@dataclass(frozen=True)
class PublishPolicy:
    """What the community extract may show.

    Parameters
    ----------
    delay_days
        Posting delay: nothing from the last `delay_days` days before the as-of day.
    window_days
        Rolling window: days published, ending where the delay begins.
    snap_m
        Grid cell size (analysis CRS metres) to which block points are snapped.
    exclusions
        Exclusion groups (label -> regexes); always a superset of :data:`DEFAULT_EXCLUSIONS`.
    """

    delay_days: int = 7
    window_days: int = 90
    snap_m: float = 50.0
    exclusions: Mapping[str, tuple[str, ...]] = field(
        default_factory=lambda: dict(DEFAULT_EXCLUSIONS)
    )

    def __post_init__(self) -> None:
        if not isinstance(self.delay_days, int) or self.delay_days < 0:
            msg = f"delay_days must be a whole number of days >= 0, got {self.delay_days!r}"
            raise ValueError(msg)
        if not isinstance(self.window_days, int) or self.window_days < 1:
            msg = f"window_days must be a whole number of days >= 1, got {self.window_days!r}"
            raise ValueError(msg)
        if not self.snap_m >= 10.0:
            msg = f"snap_m must be at least 10 metres (a block generalisation), got {self.snap_m}"
            raise ValueError(msg)
        merged = {k: tuple(v) for k, v in DEFAULT_EXCLUSIONS.items()}
        for label, patterns in self.exclusions.items():
            merged[label] = tuple(dict.fromkeys([*merged.get(label, ()), *patterns]))
        for label, patterns in merged.items():
            for pattern in patterns:
                try:
                    re.compile(pattern)
                except re.error as err:
                    msg = f"exclusion group {label!r}: {pattern!r} is not a valid regex: {err}"
                    raise ValueError(msg) from err
        object.__setattr__(self, "exclusions", merged)


def load_policy(
    path: str | Path | None = None,
    *,
    delay_days: int | None = None,
    window_days: int | None = None,
) -> PublishPolicy:
    """Return the publish policy of a TOML file (defaults when `path` is None).

    The file may set ``delay_days``, ``window_days``, ``snap_m`` and add groups or patterns under
    ``[exclusions]`` (label = list of regexes); the default groups always stay. Explicit
    `delay_days`/`window_days` (the command-line options) win over the file.

    Raises
    ------
    InputError
        If the file cannot be read or holds a bad value.
    """
    config: dict = {}
    if path is not None:
        config = read_toml(path, "the publish policy")
    table = config.get("exclusions", {})
    if not isinstance(table, dict):
        msg = f"{path}: [exclusions] must be a table of label = [regex, ...]"
        raise InputError(msg, path=str(path), column="exclusions")
    exclusions = {}
    for label, patterns in table.items():
        if isinstance(patterns, str):  # one pattern written without brackets
            patterns = [patterns]
        if not isinstance(patterns, list) or not all(isinstance(p, str) for p in patterns):
            msg = f"{path}: [exclusions] {label} = {patterns!r} is not a list of regexes"
            raise InputError(msg, path=str(path), column=f"exclusions.{label}")
        exclusions[str(label)] = tuple(patterns)
    try:
        return PublishPolicy(
            delay_days=delay_days if delay_days is not None else config.get("delay_days", 7),
            window_days=window_days if window_days is not None else config.get("window_days", 90),
            snap_m=float(config.get("snap_m", 50.0)),
            exclusions=exclusions,
        )
    except ValueError as err:
        msg = f"{path or 'publish policy'}: {err}"
        raise InputError(msg, path=str(path) if path else None) from err


@dataclass(frozen=True)
class PublicExtract:
    """The published incidents, their per-beat aggregates and the metadata that describes them."""

    incidents: pd.DataFrame
    beat_weekly: pd.DataFrame
    beat_summary: pd.DataFrame
    metadata: dict


def publish_window(as_of: date, policy: PublishPolicy) -> tuple[date, date]:
    """Return the published days ``[start, end)`` for an as-of day (local dates)."""
    end = as_of - timedelta(days=policy.delay_days)
    return end - timedelta(days=policy.window_days), end


def busiest_as_of(incidents: pd.DataFrame, policy: PublishPolicy) -> date:
    """Return the as-of day whose published window holds the most incidents.

    The window is placed so that its last :data:`RECENT_DAYS` days are the busiest such run of
    days. Used to publish the bundled sample for a first run, whose data ends years ago; a real
    deployment publishes as of today.
    """
    days = pd.Series(
        1, index=pd.DatetimeIndex(incidents[schema.OCCURRED_AT].dt.tz_localize(None).dt.normalize())
    )
    if days.empty:
        msg = "no incidents to publish"
        raise ValueError(msg)
    daily = days.groupby(level=0).sum().asfreq("D", fill_value=0)
    recent_days = min(policy.window_days, RECENT_DAYS)
    rolling = daily.rolling(recent_days, min_periods=1).sum()
    last_day = rolling.idxmax().date()
    return last_day + timedelta(days=1 + policy.delay_days)


def snap_to_grid(values: np.ndarray, cell_m: float) -> np.ndarray:
    """Return the centre of the `cell_m` grid cell holding each coordinate value."""
    return (np.floor(np.asarray(values, dtype=float) / cell_m) + 0.5) * cell_m


def block_points(incidents: pd.DataFrame, *, snap_m: float, crs: str) -> pd.DataFrame:
    """Return one point per hundred-block: its incidents' median position snapped to a grid.

    Parameters
    ----------
    incidents
        Incidents with ``block``, ``x``, ``y`` (analysis CRS); use every stored incident, so a
        block point does not move with the window and is rarely set by one incident.
    snap_m
        Grid cell size in metres.
    crs
        The analysis CRS of ``x``/``y``.

    Returns
    -------
    DataFrame
        ``block`` (normalised), ``x``, ``y`` (cell centre), ``lon``, ``lat`` (6 decimals).
    """
    located = incidents.dropna(subset=[schema.BLOCK, schema.X, schema.Y])
    keys = _normalized_blocks(located[schema.BLOCK])
    frame = pd.DataFrame(
        {
            schema.BLOCK: keys.to_numpy(),
            schema.X: located[schema.X].to_numpy(float),
            schema.Y: located[schema.Y].to_numpy(float),
        }
    ).dropna(subset=[schema.BLOCK])
    medians = frame.groupby(schema.BLOCK, sort=True)[[schema.X, schema.Y]].median()
    x = snap_to_grid(medians[schema.X].to_numpy(), snap_m)
    y = snap_to_grid(medians[schema.Y].to_numpy(), snap_m)
    to_wgs = pyproj.Transformer.from_crs(crs, schema.WGS84, always_xy=True)
    lon, lat = to_wgs.transform(x, y)
    return pd.DataFrame(
        {
            schema.BLOCK: medians.index.astype(str),
            schema.X: x,
            schema.Y: y,
            schema.LON: np.round(lon, 6),
            schema.LAT: np.round(lat, 6),
        }
    )


#: What a published block looks like (``012XX W MADISON ST``): nothing else is read back.
_PUBLIC_BLOCK = r"\d{3}XX [A-Z0-9 ]+"


def public_block(text: str) -> str | None:
    """Return the hundred-block of a block or address, or None when it has none.

    The rule of :func:`geodata.geocode.normalize_block` (which also turns Chicago's
    zero-hundred block ``0000X S STATE ST`` into ``000XX S STATE ST``), cut where the street
    name ends: at its street type (``1234 W Madison St Apt 3B`` and ``... ST REAR JANE DOE``
    -> ``012XX W MADISON ST``) or at a unit word, so a source with full addresses cannot publish
    unit numbers or descriptions.
    """
    key = normalize_block(text or "")
    if key is None:
        return None
    number, *words = key.split()
    kept: list[str] = []
    for i, word in enumerate(words):
        if word in _UNIT_WORDS and not _STREET_SUFFIXES.intersection(words[i + 1 :]):
            break  # "MADISON UNIT 5": nothing after it is published ("FRONT AVE" is a street)
        kept.append(word)
        named = [w for w in kept[:-1] if w not in _DIRECTION_WORDS]
        if word in _STREET_SUFFIXES and named:  # "W MADISON ST": the street ends here
            # ... but for a direction after it, part of the name ("5TH AVE N" and "5TH AVE S"
            # are two streets kilometres apart, as Seattle writes them)
            after = words[i + 1 : i + 2]
            if after and after[0] in _DIRECTION_WORDS:
                kept.append(after[0])
            break
    return " ".join([number, *kept]) if kept else None


#: Words after which an address carries a unit or a description, never published.
_UNIT_WORDS = frozenset(
    {"APT", "APARTMENT", "UNIT", "STE", "SUITE", "FL", "FLOOR", "RM", "ROOM", "REAR", "FRONT",
     "BSMT", "BASEMENT", "BLDG", "LOT", "NO", "NUM"}
)  # fmt: skip
_DIRECTION_WORDS = frozenset({"N", "S", "E", "W", "NE", "NW", "SE", "SW"})
#: Street types that end a street name (``S AVE M``: a type before any name does not).
_STREET_SUFFIXES = frozenset(
    {"ST", "AVE", "BLVD", "RD", "DR", "PL", "CT", "PKWY", "TER", "LN", "HWY", "EXPY", "SQ",
     "CIR", "WAY", "PLZ"}
)  # fmt: skip


def _normalized_blocks(blocks: pd.Series) -> pd.Series:
    unique = pd.unique(blocks.astype("string").dropna())
    lookup = {b: public_block(str(b)) for b in unique}
    return blocks.astype("string").map(lookup).astype("string")


def exclusion_mask(
    incidents: pd.DataFrame,
    policy: PublishPolicy,
    categories: OffenseCategories | None = None,
) -> pd.Series:
    """Return True for every row the community view must never show.

    A row is excluded when its stored ``is_sensitive`` or ``domestic`` flag is set, when
    `categories` mark it sensitive, or when its offense or description matches a pattern of
    any exclusion group of `policy`. Missing offense and description do not make a row safe
    by themselves, but they match no pattern.
    """
    n = len(incidents)
    excluded = np.zeros(n, dtype=bool)
    if schema.IS_SENSITIVE in incidents:
        excluded |= incidents[schema.IS_SENSITIVE].astype("boolean").to_numpy(bool, na_value=True)
    if schema.DOMESTIC in incidents:
        excluded |= incidents[schema.DOMESTIC].astype("boolean").to_numpy(bool, na_value=False)
    offense = incidents.get(schema.OFFENSE, pd.Series(pd.NA, index=incidents.index))
    description = incidents.get(schema.DESCRIPTION, pd.Series(pd.NA, index=incidents.index))
    offense = offense.astype("string")
    description = description.astype("string")
    if categories is not None:
        _, sensitive = categories.categorize(offense, description, incidents.get(schema.DOMESTIC))
        excluded |= sensitive.to_numpy(bool)
    pattern = re.compile(
        "|".join(f"(?:{p})" for ps in policy.exclusions.values() for p in ps), re.IGNORECASE
    )
    for text in (offense, description):  # few distinct texts: match each once
        matching = [v for v in pd.unique(text.dropna()) if pattern.search(str(v))]
        excluded |= text.isin(matching).to_numpy(bool, na_value=False)
    return pd.Series(excluded, index=incidents.index)


def build_extract(
    incidents: pd.DataFrame,
    *,
    as_of: date,
    policy: PublishPolicy,
    crs: str,
    timezone: str,
    anchors: pd.DataFrame | None = None,
    categories: OffenseCategories | None = None,
    source: Mapping[str, object] | None = None,
    generated_at: datetime | None = None,
    data_span: tuple[date, date] | None = None,
) -> PublicExtract:
    """Return the public extract of `incidents` as of a day.

    Parameters
    ----------
    incidents
        Canonical incidents (at least the window), with ``occurred_at`` tz-aware.
    as_of
        The publication day (local); the delay and the window count back from it.
    policy
        Delay, window, snapping and exclusions.
    crs
        Analysis CRS of ``x``/``y``.
    timezone
        Local zone of the dates.
    anchors
        Incidents (``block``, ``x``, ``y``) whose medians place the block points (default
        `incidents`; pass every stored incident for stable points).
    categories
        Offense rules whose sensitive flag is re-applied (default: the bundled rules).
    source
        Facts about the source store for the metadata (e.g. its update time).
    generated_at
        Timestamp written to the metadata (default now).
    data_span
        The first and last local day the source holds data for (default: the first and last
        day of `incidents`, withheld rows included; pass the window and the delay after it, so
        a last window day without incidents still counts as covered when later days have
        data). The window is *covered* from ``max(window start, first)`` to ``min(last window
        day, last)``: ``data_covered_from`` and ``data_covered_to`` in the metadata, both None
        when the data cover no day of the window. A period outside the coverage has no count
        (NA), never 0.

    Returns
    -------
    PublicExtract
    """
    missing = [c for c in _READ_COLUMNS if c not in incidents]
    if missing:
        msg = f"build_extract needs the incident columns {missing}"
        raise ValueError(msg)
    categories = categories if categories is not None else load_categories()
    start, end = publish_window(as_of, policy)
    local_day = incidents[schema.OCCURRED_AT].dt.tz_convert(timezone).dt.normalize()
    day = local_day.dt.tz_localize(None).dt.date
    in_window = ((day >= start) & (day < end)).to_numpy(bool)
    window = incidents[in_window]
    excluded = exclusion_mask(window, policy, categories).to_numpy()
    block = _normalized_blocks(window[schema.BLOCK])
    beat = window[schema.BEAT].astype("string")
    placeable = (
        block.notna().to_numpy()
        & beat.notna().to_numpy()
        & (beat != schema.OUTSIDE).fillna(False).to_numpy(bool)
        & window[schema.X].notna().to_numpy()
        & window[schema.Y].notna().to_numpy()
    )
    keep = ~excluded & placeable
    kept = window[keep]
    points = block_points(
        anchors if anchors is not None else incidents, snap_m=policy.snap_m, crs=crs
    )
    public = pd.DataFrame(
        {
            DATE: pd.to_datetime(pd.Series(day[in_window][keep].to_numpy())).dt.date,
            schema.CATEGORY: kept[schema.CATEGORY].astype("string").to_numpy(),
            schema.BLOCK: block[keep].to_numpy(),
            schema.BEAT: kept[schema.BEAT].astype("string").to_numpy(),
            schema.SECTOR: kept[schema.SECTOR].astype("string").to_numpy(),
            schema.DISTRICT: kept[schema.DISTRICT].astype("string").to_numpy(),
        }
    )
    public = public.merge(points, on=schema.BLOCK, how="left", validate="many_to_one")
    public = public.dropna(subset=[schema.X, schema.Y])
    public = public.sort_values([DATE, schema.BEAT, schema.BLOCK, schema.CATEGORY])
    public = public[list(PUBLIC_COLUMNS)].reset_index(drop=True)
    for column in (schema.CATEGORY, schema.BLOCK, schema.BEAT, schema.SECTOR, schema.DISTRICT):
        public[column] = public[column].astype("string")
    weekly = _beat_weekly(public)
    if data_span is None and len(day):
        data_span = (min(day), max(day))
    covered_from, covered_to = _coverage(start, end, data_span)
    summary = beat_summary(public, end=end, covered_from=covered_from, covered_to=covered_to)
    generated = generated_at or datetime.now(UTC)
    metadata = {
        "title": "Community crime map extract",
        "generated_at": generated.isoformat(timespec="seconds"),
        "as_of": as_of.isoformat(),
        "timezone": timezone,
        "delay_days": policy.delay_days,
        "window_days": policy.window_days,
        "window_start": start.isoformat(),
        "window_end_exclusive": end.isoformat(),
        "data_first_date": public[DATE].min().isoformat() if len(public) else None,
        "data_covered_from": covered_from.isoformat() if covered_from else None,
        "data_covered_to": covered_to.isoformat() if covered_to else None,
        "recent_days": RECENT_DAYS,
        "data_last_date": public[DATE].max().isoformat() if len(public) else None,
        "rows_in_window": int(in_window.sum()),
        "rows_published": len(public),
        "rows_withheld": int(in_window.sum()) - len(public),
        "masking": {
            "method": "block point",
            "rule": (
                "every incident on a hundred-block is shown at one point: the median position "
                f"of all stored incidents on that block, snapped to the centre of a "
                f"{policy.snap_m:g} m grid cell; dates only, no time of day"
            ),
            "snap_m": policy.snap_m,
            "crs": crs,
            "columns": list(PUBLIC_COLUMNS),
        },
        "exclusions": {
            "groups": {k: list(v) for k, v in policy.exclusions.items()},
            "also_excluded": [
                "rows flagged sensitive by the offense-category rules",
                "rows flagged domestic",
                "rows without a hundred-block or outside every beat",
            ],
        },
        "categories": list(schema.CATEGORIES),
        "source": dict(source or {}),
    }
    return PublicExtract(public, weekly, summary, metadata)


def _coverage(
    start: date, end: date, span: tuple[date, date] | None
) -> tuple[date | None, date | None]:
    """Return the first and last day of ``[start, end)`` the data cover (None, None: none)."""
    if span is None:
        return None, None
    first, last = span
    if first >= end or last < start:
        return None, None
    return max(start, first), min(end - timedelta(days=1), last)


def _beat_weekly(public: pd.DataFrame) -> pd.DataFrame:
    columns = [schema.BEAT, WEEK, schema.CATEGORY, "incidents"]
    if public.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    days = pd.to_datetime(public[DATE])
    week = (days - pd.to_timedelta(days.dt.weekday, unit="D")).dt.date
    out = (
        public.assign(**{WEEK: week})
        .groupby([schema.BEAT, WEEK, schema.CATEGORY], observed=True)
        .size()
        .rename("incidents")
        .reset_index()
    )
    return out[columns]


def beat_summary(
    public: pd.DataFrame,
    *,
    end: date,
    days: int = RECENT_DAYS,
    covered_from: date | None = None,
    covered_to: date | None = None,
) -> pd.DataFrame:
    """Return per beat and category the incidents of the window, last `days` and the `days` before.

    Parameters
    ----------
    public
        Published incidents (``date``, ``beat``, ``category``).
    end
        First day after the published window.
    days
        Length of the recent period compared with the one before it.
    covered_from
        First day the source has data for; when the previous period starts earlier, its count
        is unknown (NA), not zero.
    covered_to
        Last day the source has data for; a period that starts later has no count (NA), and the
        previous period's count is NA unless it ends by then. The recent period's count is kept
        when it is only partly covered (up to `covered_to`), but its change is then NA: a part
        is not compared with a whole.

    Returns
    -------
    DataFrame
        ``beat``, ``category``, ``window``, ``recent``, ``previous``, ``change`` (recent minus
        previous; NA when previous is); one row per beat and category with at least one
        incident in the window.
    """
    columns = [schema.BEAT, schema.CATEGORY, "window", "recent", "previous", "change"]
    if public.empty:
        return pd.DataFrame({c: pd.Series(dtype="object") for c in columns})
    recent_start = end - timedelta(days=days)
    previous_start = recent_start - timedelta(days=days)
    day = public[DATE]
    frame = public.assign(
        window=1,
        recent=(day >= recent_start).astype(int),
        previous=((day >= previous_start) & (day < recent_start)).astype(int),
    )
    out = (
        frame.groupby([schema.BEAT, schema.CATEGORY], observed=True)[
            ["window", "recent", "previous"]
        ]
        .sum()
        .reset_index()
    )
    out = out.astype({"window": "Int64", "recent": "Int64", "previous": "Int64"})
    unknown = pd.array([pd.NA] * len(out), dtype="Int64")
    if covered_from is not None and previous_start < covered_from:
        out["previous"] = unknown
    if covered_to is not None and covered_to < recent_start - timedelta(days=1):
        out["previous"] = unknown
    if covered_to is not None and covered_to < recent_start:
        out["recent"] = unknown
    out["change"] = out["recent"] - out["previous"]
    if covered_to is not None and covered_to < end - timedelta(days=1):
        out["change"] = unknown
    return out[columns]


def write_extract(
    extract: PublicExtract,
    out_dir: str | Path,
    *,
    beats: gpd.GeoDataFrame,
    stations: pd.DataFrame | None = None,
    gazetteer: BlockGazetteer | None = None,
) -> Path:
    """Write the extract, the beat outlines and the stations to `out_dir`; return it.

    With a `gazetteer`, the "find my beat" files (:data:`FINDER_FILES`) are written too: its
    blocks and the exact (unsimplified) beats in their analysis CRS.

    Every file is written to a temporary name and renamed, ``metadata.json`` last, so a reader
    never sees a half-written extract.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    _atomic(out / EXTRACT_FILES["incidents"], lambda p: extract.incidents.to_parquet(p))
    _atomic(out / EXTRACT_FILES["beat_weekly"], lambda p: extract.beat_weekly.to_parquet(p))
    _atomic(out / EXTRACT_FILES["beat_summary"], lambda p: extract.beat_summary.to_parquet(p))
    outlines = beats[[schema.BEAT, schema.SECTOR, schema.DISTRICT, "geometry"]].copy()
    if gazetteer is not None:
        blocks = gazetteer.to_frame()
        _atomic(out / FINDER_FILES["blocks"], lambda p: blocks.to_parquet(p))
        _atomic(out / FINDER_FILES["beats"], lambda p: outlines.to_parquet(p))
    if outlines.crs is not None and outlines.crs.is_projected:
        outlines["geometry"] = outlines.geometry.simplify(5.0, preserve_topology=True)
    outlines = outlines.to_crs(schema.WGS84)
    _atomic(out / EXTRACT_FILES["beats"], lambda p: Path(p).write_text(outlines.to_json()))
    public_stations = []
    if stations is not None:
        keep = [schema.STATION_ID, schema.DISTRICT, schema.STATION_NAME, schema.STATION_ADDRESS]
        keep += ["city", "state"]
        keep += ["zip", schema.STATION_PHONE, schema.LON, schema.LAT]
        frame = pd.DataFrame(stations).drop(columns="geometry", errors="ignore")
        frame = frame.reindex(columns=keep)
        public_stations = json.loads(frame.to_json(orient="records"))
    _atomic(
        out / EXTRACT_FILES["stations"],
        lambda p: Path(p).write_text(json.dumps(public_stations, indent=1)),
    )
    _atomic(
        out / EXTRACT_FILES["metadata"],
        lambda p: Path(p).write_text(json.dumps(extract.metadata, indent=2, sort_keys=True)),
    )
    return out


def _atomic(path: Path, write: object) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}", suffix=".tmp")
    os.close(fd)
    try:
        write(tmp)  # type: ignore[operator]
        os.chmod(tmp, 0o644)  # a public file: readable by the web server's user
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def read_extract(
    public_dir: str | Path,
) -> tuple[PublicExtract, gpd.GeoDataFrame, pd.DataFrame]:
    """Read a published extract: ``(extract, beats in WGS84, stations)``.

    Raises
    ------
    StoreError
        If the directory holds no complete extract (names the missing file).
    """
    root = Path(public_dir)
    missing = [name for name in EXTRACT_FILES.values() if not (root / name).exists()]
    if missing:
        msg = (
            f"{root}: no complete community extract (missing {', '.join(missing)}); "
            "publish one with `python -m geodata publish`"
        )
        raise StoreError(msg)
    metadata = json.loads((root / EXTRACT_FILES["metadata"]).read_text(encoding="utf-8"))
    incidents = pd.read_parquet(root / EXTRACT_FILES["incidents"])
    unexpected = sorted(set(incidents.columns) - set(PUBLIC_COLUMNS))
    if unexpected:
        msg = f"{root / EXTRACT_FILES['incidents']}: unexpected columns {unexpected}"
        raise StoreError(msg)
    blocks = incidents[schema.BLOCK].astype("string")
    bad = ~blocks.str.fullmatch(_PUBLIC_BLOCK).fillna(False)
    if bad.any():
        row = int(np.flatnonzero(bad.to_numpy())[0])
        msg = (
            f"{root / EXTRACT_FILES['incidents']}, row {row}, column 'block': "
            f"{blocks.iloc[row]!r} is not a hundred-block such as '012XX W MADISON ST'"
        )
        raise StoreError(msg)
    extract = PublicExtract(
        incidents=incidents,
        beat_weekly=pd.read_parquet(root / EXTRACT_FILES["beat_weekly"]),
        beat_summary=pd.read_parquet(root / EXTRACT_FILES["beat_summary"]),
        metadata=metadata,
    )
    beats = gpd.read_file(root / EXTRACT_FILES["beats"])
    for column in (schema.BEAT, schema.SECTOR, schema.DISTRICT):
        beats[column] = beats[column].astype(str)
    stations = pd.DataFrame(
        json.loads((root / EXTRACT_FILES["stations"]).read_text(encoding="utf-8"))
    )
    return extract, beats, stations


def read_finder(public_dir: str | Path) -> tuple[BlockGazetteer, gpd.GeoDataFrame] | None:
    """Return the published block gazetteer and exact beats, or None when not published."""
    root = Path(public_dir)
    paths = {key: root / name for key, name in FINDER_FILES.items()}
    if not all(p.exists() for p in paths.values()):
        return None
    beats = gpd.read_parquet(paths["beats"])
    for column in (schema.BEAT, schema.SECTOR, schema.DISTRICT):
        beats[column] = beats[column].astype(str)
    blocks = pd.read_parquet(paths["blocks"])
    return BlockGazetteer.from_frame(blocks, beats.crs.to_string()), beats


def publish_store(
    store: IncidentStore,
    out_dir: str | Path,
    *,
    policy: PublishPolicy | None = None,
    as_of: date | str | None = None,
    categories: OffenseCategories | None = None,
    note: str | None = None,
    demo: bool = False,
) -> PublicExtract:
    """Publish the community extract of an :class:`~geodata.store.IncidentStore`.

    Parameters
    ----------
    store
        The analyst store (read only).
    out_dir
        The public directory to write.
    policy
        Delay, window, snapping and exclusions (default :class:`PublishPolicy`).
    as_of
        Publication day: a date, ``"today"`` (default; in the store's zone) or ``"busiest"``
        (the day whose window holds the most incidents: for the bundled, historic sample).
    categories
        Offense rules whose sensitive flag is re-applied (default: the bundled rules).
    note
        A sentence for readers stored in the metadata (e.g. that the data is a demo sample).
    demo
        The store is the bundled sample (``"demo": true`` in the metadata): the community app
        then calls an illustrative meeting schedule the demo's.

    Returns
    -------
    PublicExtract
    """
    if not isinstance(store, IncidentStore):
        msg = f"publish_store needs an IncidentStore, got {type(store).__name__}"
        raise TypeError(msg)
    policy = policy or PublishPolicy()
    meta = store.meta()
    if not store.has_layer("beats"):
        msg = f"{store.root}: the store has no beat layer to publish"
        raise StoreError(msg)
    timezone, crs = meta["timezone"], meta["analysis_crs"]
    anchors = store.load_incidents(columns=[schema.BLOCK, schema.X, schema.Y])
    if as_of is None or as_of == "today":
        day = pd.Timestamp.now(tz=timezone).date()
    elif as_of == "busiest":
        day = busiest_as_of(store.load_incidents(columns=[schema.OCCURRED_AT]), policy)
    else:
        try:
            day = pd.Timestamp(as_of).date()
        except ValueError as err:
            msg = f"{as_of!r} is not a date (YYYY-MM-DD), 'today' or 'busiest'"
            raise ParameterError(msg, parameter="as_of") from err
    start = publish_window(day, policy)[0]
    # the window and the delay after it: data in the delay show the window is covered to its end
    incidents = store.load_incidents(
        columns=_READ_COLUMNS, start=str(start), end=str(day + timedelta(days=1))
    )
    token = store.version_token()
    source = {
        "store_updated": meta.get("updated"),
        "store_version": hashlib.sha256(token.encode()).hexdigest()[:16],
        "store_incidents": int(meta.get("n_incidents") or 0),
        "sources": [
            Path(str(s.get("file") or s.get("source") or "")).name for s in meta.get("sources", [])
        ],
    }
    extract = build_extract(
        incidents,
        as_of=day,
        policy=policy,
        crs=crs,
        timezone=timezone,
        anchors=anchors,
        categories=categories,
        source=source,
    )
    if note:
        extract.metadata["note"] = note
    department = store.department()
    # the department's words for its levels ("precinct"): the community app names areas so
    extract.metadata["levels"] = department.level_words()
    extract.metadata["department"] = department.name
    from geodata.meetings.seeding import defaults_for  # only this step needs the meetings

    # how its illustrative meeting schedule is seeded, so the community app seeds this
    # department's meetings database, never the bundled sample's
    extract.metadata["meetings"] = defaults_for(department).to_record()
    if demo:
        extract.metadata["demo"] = True
    stations = store.read_layer("stations") if store.has_layer("stations") else None
    write_extract(
        extract,
        out_dir,
        beats=store.read_layer("beats"),
        stations=stations,
        gazetteer=BlockGazetteer.from_store(store),
    )
    logger.info("published %d incidents to %s", len(extract.incidents), out_dir)
    return extract
