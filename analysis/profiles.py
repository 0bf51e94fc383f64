"""Profiles of beats, sectors, districts or the department, and the CompStat sector review.

A profile covers the period of `period_days` (default 28) local calendar days ending on an as-of
date: incidents by category and offense, density per km², an hour-of-day x weekday matrix, top
location types, top blocks and the 80/20 concentration, the serving station, the neighbouring
areas, and the CompStat comparisons of :mod:`analysis.compare`.
Areas are made of beats: an incident belongs to an area when its ``beat`` is one of the area's
beats (incidents outside every beat only count for no area).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import shapely

from analysis import compare
from analysis.concentration import concentration_share, top_places
from analysis.inputs import (
    LEVEL_COLUMNS,
    LEVELS,
    PROFILE_COLUMNS,
    PROFILE_REQUIRED,
    Level,
    Period,
    ProfileInputs,
    area_beats,
)
from geodata import schema
from geodata.boundaries import beat_neighbours
from geodata.errors import ParameterError
from geodata.jsonable import jsonable, jsonable_records
from geodata.stations import station_of

__all__ = [
    "LEVELS",
    "PROFILE_COLUMNS",
    "WEEKDAYS",
    "AreaProfile",
    "SectorReview",
    "area_beats",
    "dense_start",
    "no_incidents_note",
    "profile_area",
    "profile_loaded",
    "review_loaded",
    "review_sector",
    "unusual_counts",
]

WEEKDAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")


@dataclass
class AreaProfile:
    """The profile of one area for one period; :meth:`to_dict` gives the JSON form."""

    level: str
    area_id: str
    beats: list[str]
    district: str | None
    as_of: date
    start: date
    end: date
    timezone: str | None
    area_km2: float
    n_incidents: int
    counts_by_category: pd.Series
    counts_by_offense: pd.DataFrame
    hour_weekday: pd.DataFrame
    location_types: pd.DataFrame
    top_blocks: pd.DataFrame
    concentration: dict
    comparisons: pd.DataFrame
    daily: pd.DataFrame
    station: dict | None
    neighbours: list[str] = field(default_factory=list)
    neighbour_beats: list[str] = field(default_factory=list)
    label: str | None = None

    @property
    def period(self) -> Period:
        """Return the profile period (:attr:`start` to :attr:`end`, both included)."""
        return Period(self.start, self.end)

    @property
    def density_per_km2(self) -> float | None:
        """Return incidents per square kilometre in the period (None without an area)."""
        return self.n_incidents / self.area_km2 if self.area_km2 > 0 else None

    @property
    def title(self) -> str:
        """Return a heading such as ``Beat 0925`` (``Precinct N`` where the department says so)."""
        if self.level == "department":
            return "Department"
        return f"{(self.label or self.level).capitalize()} {self.area_id}"

    def to_dict(self) -> dict:
        """Return the profile as JSON-ready plain values (NaN becomes None)."""
        comparisons = {}
        for row in self.comparisons.to_dict("records"):
            name = row.pop("window")
            comparisons[name] = {k: jsonable(v) for k, v in row.items()}
        return {
            "area": {
                "level": self.level,
                "label": self.label or self.level,
                "id": self.area_id,
                "beats": self.beats,
                "district": self.district,
                "area_km2": round(self.area_km2, 4),
                "neighbours": self.neighbours,
                "neighbour_beats": self.neighbour_beats,
                "station": self.station,
            },
            "period": {
                "start": self.start.isoformat(),
                "end": self.end.isoformat(),
                "as_of": self.as_of.isoformat(),
                "days": (self.end - self.start).days + 1,
                "timezone": self.timezone,
            },
            "n_incidents": self.n_incidents,
            "density_per_km2": jsonable(self.density_per_km2),
            "counts_by_category": {k: int(v) for k, v in self.counts_by_category.items()},
            "counts_by_offense": jsonable_records(self.counts_by_offense),
            "comparisons": comparisons,
            "hour_weekday": {
                "weekdays": list(WEEKDAYS),
                "hours": list(range(24)),
                "counts": self.hour_weekday.astype(int).to_numpy().tolist(),
            },
            "location_types": jsonable_records(self.location_types),
            "top_blocks": jsonable_records(self.top_blocks),
            "concentration": {k: jsonable(v) for k, v in self.concentration.items()},
            "daily": jsonable_records(self.daily),
        }


def no_incidents_note(profile: AreaProfile) -> str:
    """Return the sentence shown instead of charts when the profile period has no incident."""
    title = profile.title[:1].lower() + profile.title[1:]  # "beat K3": the id as stored
    return (
        f"No incidents in this period: {title} has none recorded from {profile.start} to "
        f"{profile.end}."
    )


def _check_incidents(incidents: pd.DataFrame, required: tuple[str, ...] = PROFILE_REQUIRED) -> None:
    missing = [c for c in required if c not in incidents]
    if missing:
        msg = f"incidents lack the columns {missing}; load them with IncidentStore.load_incidents"
        raise ValueError(msg)


def _local(occurred_at: pd.Series, timezone: str | None) -> pd.Series:
    if timezone is None:
        return occurred_at
    if occurred_at.dt.tz is None:
        return occurred_at.dt.tz_localize(timezone)
    return occurred_at.dt.tz_convert(timezone)


def _station(stations: gpd.GeoDataFrame | None, district: str | None, level: str) -> dict | None:
    if level != "department" and district is None:
        return None  # an area spread over several districts has no one station
    row = station_of(stations, None if level == "department" else district)
    if row is None:
        return None
    keys = (
        schema.STATION_ID,
        schema.DISTRICT,
        schema.STATION_NAME,
        schema.STATION_ADDRESS,
        schema.STATION_PHONE,
        schema.LON,
        schema.LAT,
    )
    return {k: jsonable(row[k]) if k in row and not pd.isna(row[k]) else None for k in keys}


def _neighbours(
    beats: gpd.GeoDataFrame, members: gpd.GeoDataFrame, level: str, pairs: pd.DataFrame | None
) -> tuple[list[str], list[str]]:
    if level == "department":
        return [], []
    if pairs is None:
        # only the beats within reach of the area's: the same pairs for its beats as the whole
        # layer's (each pair is measured on its own), without measuring every border of the city
        near = shapely.STRtree(beats.geometry.to_numpy()).query(
            members.geometry.to_numpy(), predicate="dwithin", distance=0.5
        )[1]
        pairs = beat_neighbours(beats.iloc[np.unique(near)])
    inside = set(members[schema.BEAT])
    touching = pairs[pairs["beat"].isin(inside)]["neighbour"]
    outside_beats = sorted(set(touching) - inside)
    column = LEVEL_COLUMNS[level]
    ids = beats[beats[schema.BEAT].isin(outside_beats)][column].dropna()
    return sorted(set(ids)), outside_beats


def _reference(
    incidents: pd.DataFrame,
    windows: list[compare.Window],
    timezone: str | None,
    daily: pd.Series | None,
) -> pd.DataFrame:
    """Return the whole data set's counts in the windows (from `daily` when given)."""
    if daily is None:
        return compare.window_counts(incidents, windows, timezone=timezone)
    return compare.daily_window_counts(daily, windows)


def profile_area(
    incidents: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    *,
    level: Level,
    area_id: str | None = None,
    as_of: date | str,
    period_days: int = 28,
    stations: gpd.GeoDataFrame | None = None,
    neighbours: pd.DataFrame | None = None,
    timezone: str | None = None,
    top_n: int = 10,
    alpha: float = 0.05,
    label: str | None = None,
    daily: pd.Series | None = None,
) -> AreaProfile:
    """Return the profile of an area for the `period_days` days ending on `as_of`.

    Parameters
    ----------
    incidents
        Canonical incidents with ``occurred_at``, ``beat``, ``category``, ``offense``,
        ``location_desc`` and ``block``; for the comparisons they must reach back two years
        before `as_of` (the 365-day window of last year).
    beats
        Canonical beats in a projected CRS in metres (areas and densities come from them).
    level, area_id
        The area (see :func:`area_beats`).
    as_of
        Last day of the period (local date, included).
    period_days
        Length of the profile period in days.
    stations
        Police stations with ``station_id`` and ``district``; the area's station is the one
        whose district is the area's (``HQ`` for the department).
    neighbours
        Precomputed :func:`geodata.boundaries.beat_neighbours` pairs (computed when None).
    timezone
        Local zone that defines days and hours (default: that of the timestamps).
    top_n
        Rows in the offense, location-type and block tables.
    alpha
        Significance level of the change flags.
    label
        The department's word for `level` ("precinct" for Seattle's districts); default the
        level's own name.
    daily
        Incidents per local day over the *whole store* (:func:`analysis.inputs.load_daily_counts`).
        When given, the coverage of each comparison period is judged on it, so `incidents`
        need only hold the area's beats (what :func:`analysis.inputs.load_profile_inputs`
        reads for an area); None judges it on `incidents`.

    Returns
    -------
    AreaProfile
    """
    _check_incidents(incidents)
    if period_days < 1:
        msg = f"a period is at least one day long, not {period_days!r}"
        raise ParameterError(msg, parameter="period_days")
    if beats.crs is None or not beats.crs.is_projected:
        msg = "beats must be in a projected CRS in metres to measure densities"
        raise ValueError(msg)
    days_of = Period.ending(compare._as_date(as_of, "as_of"), period_days)
    start, end = days_of.first, days_of.last
    members = area_beats(beats, level=level, area_id=area_id)
    member_ids = members[schema.BEAT].tolist()
    districts = sorted(members[schema.DISTRICT].dropna().unique())
    district = districts[0] if len(districts) == 1 else None
    area = incidents[incidents[schema.BEAT].isin(member_ids)].copy()
    area[schema.OCCURRED_AT] = _local(area[schema.OCCURRED_AT], timezone)
    period = area[days_of.contains(area[schema.OCCURRED_AT])]

    by_category = period[schema.CATEGORY].astype(str).value_counts()
    extra = [c for c in by_category.index if c not in schema.CATEGORIES]
    counts_by_category = by_category.reindex([*schema.CATEGORIES, *sorted(extra)], fill_value=0)
    by_offense = (
        period.groupby([schema.OFFENSE, schema.CATEGORY], observed=True)
        .size()
        .rename("incidents")
        .reset_index()
        .sort_values(["incidents", schema.OFFENSE], ascending=[False, True], kind="stable")
        .head(top_n)
        .reset_index(drop=True)
    )
    for column in (schema.OFFENSE, schema.CATEGORY):
        by_offense[column] = by_offense[column].astype(str)
    local = period[schema.OCCURRED_AT].dropna()
    # incidents by weekday x hour: a count of the 168 hours of the week (pd.crosstab gave the
    # same table; its first call costs a command 0.05-0.1 s)
    hour_of_week = local.dt.weekday.to_numpy(np.int64) * 24 + local.dt.hour.to_numpy(np.int64)
    matrix = pd.DataFrame(
        np.bincount(hour_of_week, minlength=7 * 24).reshape(7, 24).astype(int),
        index=list(WEEKDAYS),
        columns=list(range(24)),
    )

    windows = compare.compstat_windows(end)
    counts = compare.window_counts(area, windows)
    reference = _reference(incidents, windows, timezone, daily)
    comparisons = compare.compare_counts(counts, windows, alpha=alpha, reference=reference)
    comparisons.insert(1, "label", [w.label for w in windows])

    days = days_of.dates()
    daily_counts = local.dt.tz_localize(None).dt.normalize().value_counts() if len(local) else None
    daily = pd.DataFrame(
        {
            "date": [d.date() for d in days],
            "incidents": [
                int(daily_counts.get(d, 0)) if daily_counts is not None else 0 for d in days
            ],
        }
    )
    neighbour_ids, neighbour_beats = _neighbours(beats, members, level, neighbours)
    return AreaProfile(
        level=level,
        area_id="all" if level == "department" else str(members.iloc[0][LEVEL_COLUMNS[level]]),
        beats=member_ids,
        district=district,
        as_of=end,
        start=start,
        end=end,
        timezone=timezone or (str(local.dt.tz) if local.dt.tz is not None else None),
        area_km2=float(members.geometry.area.sum() / 1e6),
        n_incidents=len(period),
        counts_by_category=counts_by_category,
        counts_by_offense=by_offense,
        hour_weekday=matrix,
        location_types=top_places(period, schema.LOCATION_DESC, top_n=top_n),
        top_blocks=top_places(period, schema.BLOCK, top_n=top_n),
        concentration=concentration_share(period, schema.BLOCK),
        comparisons=comparisons,
        daily=daily,
        station=_station(stations, district, level),
        neighbours=neighbour_ids,
        neighbour_beats=neighbour_beats,
        label=label,
    )


def _shift_years(window: compare.Window, years: int) -> tuple[date, date]:
    if window.name in ("7d", "28d"):
        shift = timedelta(days=364 * years)
        return window.start - shift, window.end - shift
    start, end = window.start, window.end
    for _ in range(years):
        start, end = compare._year_earlier(start), compare._year_earlier(end)
    return start, end


def unusual_counts(
    incidents: pd.DataFrame,
    beat_ids: list[str],
    window: compare.Window,
    *,
    max_years: int = 5,
    min_years: int = 2,
    min_coverage: float = 0.25,
    n_sd: float = 2.0,
    timezone: str | None = None,
    daily: pd.Series | None = None,
) -> tuple[pd.DataFrame, str]:
    """Flag beats whose count in `window` is far above the same window in prior years.

    A prior year is used only when the *whole data set* has at least `min_coverage` times the
    current window's total in it (so years the store does not cover, or covers with a thin
    sample, are not read as "zero crime"). A beat is unusual when its count exceeds
    ``mean + n_sd * sd`` of its counts in the usable prior years, where ``sd`` is the sample
    standard deviation floored at the Poisson value ``sqrt(max(mean, 1))``, so a history of
    zeros does not flag a single incident. With fewer than `min_years` usable years nothing is
    flagged and the note says so.

    Parameters
    ----------
    incidents
        All incidents (every beat: coverage is judged on the whole data set).
    beat_ids
        Beats to assess.
    window
        The current window (its prior-year copies are 52 weeks apart for ``7d``/``28d`` and
        calendar years apart otherwise).
    daily
        Incidents per local day over the whole data set; when given, coverage is judged on it
        and `incidents` need only hold the beats of `beat_ids`.

    Returns
    -------
    tuple
        A frame with ``beat``, ``current``, one column per usable prior year (named by the
        first day of that window), ``mean``, ``sd``, ``threshold``, ``is_unusual``; and a note.
    """
    _check_incidents(incidents, (schema.OCCURRED_AT, schema.BEAT))
    local = _local(incidents[schema.OCCURRED_AT], timezone)
    beat = incidents[schema.BEAT].fillna("").to_numpy()
    chosen = np.isin(beat, beat_ids)

    def in_days(first: date, last: date) -> tuple[np.ndarray, int]:
        """Return which incidents fall in the days, and the data set's total in them."""
        mask = Period(first, last).contains(local)
        if daily is None:
            return mask, int(mask.sum())
        return mask, compare.daily_total(daily, first, last)

    def per_beat(mask: np.ndarray) -> np.ndarray:
        counts = pd.Series(beat[mask & chosen]).value_counts()
        return counts.reindex(beat_ids, fill_value=0).to_numpy(dtype=int)

    current_mask, total_now = in_days(window.start, window.end)
    out = pd.DataFrame({"beat": beat_ids})
    out["current"] = per_beat(current_mask)
    used: list[str] = []
    skipped = 0
    for years in range(1, max_years + 1):
        first, last = _shift_years(window, years)
        mask, total = in_days(first, last)
        if total_now == 0 or total < min_coverage * total_now:
            skipped += 1
            continue
        name = first.isoformat()
        out[name] = per_beat(mask)
        used.append(name)
    if used:
        history = out[used].to_numpy(dtype=float)
        out["mean"] = history.mean(axis=1)
        sample_sd = history.std(axis=1, ddof=1) if len(used) > 1 else np.zeros(len(out))
        out["sd"] = np.maximum(sample_sd, np.sqrt(np.maximum(out["mean"], 1.0)))
        out["threshold"] = out["mean"] + n_sd * out["sd"]
    else:
        out["mean"] = np.nan
        out["sd"] = np.nan
        out["threshold"] = np.nan
    enough = len(used) >= min_years
    out["is_unusual"] = (out["current"] > out["threshold"]) if enough else False
    out["is_unusual"] = out["is_unusual"].astype(bool)
    if enough:
        note = (
            f"Compared with the same {window.label.lower()} window in {len(used)} prior "
            f"years; unusual = more than mean + {n_sd:g} SD of those years."
        )
    else:
        note = (
            f"History too thin to judge unusual counts: {len(used)} of {max_years} prior years "
            f"have data for this window (at least {min_years} needed; a year counts when the "
            f"data set holds at least {min_coverage:.0%} of this window's incidents in it)."
        )
    return out, note


@dataclass
class SectorReview:
    """All beats of a sector side by side, the sector total and what changed."""

    sector: str
    district: str | None
    as_of: date
    window: str
    beats: pd.DataFrame
    total: dict
    comparisons: pd.DataFrame
    significant: pd.DataFrame
    unusual: pd.DataFrame
    unusual_note: str

    def explain(self) -> pd.DataFrame:
        """Return one plain-language sentence per beat on its change in the review window.

        Returns
        -------
        DataFrame
            ``beat`` and ``explanation``.
        """
        sentences = []
        for row in self.beats.to_dict("records"):
            sentences.append(_explain(row, self.window))
        return pd.DataFrame({schema.BEAT: self.beats[schema.BEAT], "explanation": sentences})

    def to_dict(self) -> dict:
        """Return the review as JSON-ready plain values."""
        return {
            "sector": self.sector,
            "district": self.district,
            "as_of": self.as_of.isoformat(),
            "window": self.window,
            "beats": jsonable_records(self.beats),
            "total": {k: jsonable(v) for k, v in self.total.items()},
            "comparisons": jsonable_records(self.comparisons),
            "significant": jsonable_records(self.significant),
            "unusual": jsonable_records(self.unusual),
            "unusual_note": self.unusual_note,
            "explanations": jsonable_records(self.explain()),
        }


_WINDOW_WORDS = {
    "7d": "the week before",
    "28d": "the 28 days before",
    "ytd": "the same number of days before 1 January",
    "365d": "the 365 days before",
}


def _p_text(p_value: float) -> str:
    return "< 0.001" if p_value < 0.001 else f"= {p_value:.3f}"


def _explain(row: dict, window: str) -> str:
    """Return a sentence on one beat's change (current vs previous period and last year)."""
    current, previous = (
        int(row["current"] if "current" in row else row["incidents"]),
        row["previous"],
    )
    text = f"{current} incidents"
    if pd.isna(row["p_value"]):
        text += (
            f" against {int(previous)} in {_WINDOW_WORDS[window]}: no comparable data for "
            "that period, so no change is judged"
        )
    else:
        pct = row["pct_change"]
        change = (
            "no change"
            if current == previous
            else ("up from none" if pd.isna(pct) else f"{pct:+.0f}%")
        )
        verdict = {"up": "a significant rise", "down": "a significant fall"}.get(
            row["flag"], "within normal chance variation"
        )
        text += (
            f" against {int(previous)} in {_WINDOW_WORDS[window]} ({change}, "
            f"p {_p_text(row['p_value'])}): {verdict}"
        )
    if not pd.isna(row.get("p_value_last_year")):
        verdict = {"up": "significantly more", "down": "significantly fewer"}.get(
            row["flag_last_year"], "no significant difference"
        )
        text += (
            f"; last year {int(row['last_year'])} in the same period "
            f"(p {_p_text(row['p_value_last_year'])}, {verdict})"
        )
    if row.get("is_unusual"):
        text += "; UNUSUAL against prior years"
    return text + "."


def profile_loaded(
    loaded: ProfileInputs,
    *,
    level: Level,
    area_id: str | None = None,
    period_days: int = 28,
    neighbours: pd.DataFrame | None = None,
    label: str | None = None,
) -> AreaProfile:
    """Return :func:`profile_area` of what :func:`analysis.inputs.load_profile_inputs` read.

    The command line and the pages both profile this way, so they compute on the same rows:
    the history, beats, stations, zone and daily counts of `loaded`, as of its day.
    """
    return profile_area(
        loaded.incidents,
        loaded.beats,
        level=level,
        area_id=area_id,
        as_of=loaded.as_of,
        period_days=period_days,
        stations=loaded.stations,
        neighbours=neighbours,
        timezone=loaded.timezone,
        label=label,
        daily=loaded.daily,
    )


def review_loaded(
    loaded: ProfileInputs, *, sector: str, window: str = "7d", level: Level = "sector"
) -> SectorReview:
    """Return :func:`review_sector` of what :func:`analysis.inputs.load_profile_inputs` read."""
    return review_sector(
        loaded.incidents,
        loaded.beats,
        sector=sector,
        as_of=loaded.as_of,
        window=window,
        timezone=loaded.timezone,
        daily=loaded.daily,
        level=level,
    )


def review_sector(
    incidents: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    *,
    sector: str,
    as_of: date | str,
    window: str = "7d",
    timezone: str | None = None,
    alpha: float = 0.05,
    daily: pd.Series | None = None,
    level: Level = "sector",  # schema.SECTOR
) -> SectorReview:
    """Return the CompStat review of every beat of `sector` for the windows ending on `as_of`.

    Parameters
    ----------
    incidents
        All incidents (at least two years back from `as_of` for every comparison).
    beats
        Canonical beats; sector membership comes from their ``sector`` column.
    sector
        Sector id (e.g. ``"092"``).
    as_of
        Last day of the review (local date).
    window
        Window of the side-by-side table and the unusual-count check (``7d``, ``28d``,
        ``ytd``, ``365d``); the long `comparisons` table has all of them.
    timezone
        Local zone that defines days (default: that of the timestamps).
    alpha
        Significance level of the change flags.
    daily
        Incidents per local day over the whole store, as for :func:`profile_area` (then
        `incidents` need only hold the sector's beats).
    level
        The level `sector` is an id of: ``sector``, or ``district`` for a department without
        sectors (its beats are reviewed under their precinct or district).

    Returns
    -------
    SectorReview
        ``beats``: one row per beat with area, counts by category in the window and the
        changes against the previous period and last year; ``total``: the same for the
        sector; ``significant``: rows of `comparisons` flagged at `alpha`.
    """
    _check_incidents(incidents, (schema.OCCURRED_AT, schema.BEAT, schema.CATEGORY))
    if window not in compare.WINDOWS:
        msg = f"window must be one of {compare.WINDOWS}, got {window!r}"
        raise ValueError(msg)
    members = area_beats(beats, level=level, area_id=sector)
    member_ids = sorted(members[schema.BEAT])
    end = compare._as_date(as_of, "as_of")
    windows = compare.compstat_windows(end)
    chosen = next(w for w in windows if w.name == window)
    inside = incidents[incidents[schema.BEAT].isin(member_ids)].copy()
    inside[schema.OCCURRED_AT] = _local(inside[schema.OCCURRED_AT], timezone)
    counts = compare.window_counts(inside, windows, by=schema.BEAT)
    counts = (
        counts.set_index(["window", schema.BEAT])
        .reindex(
            pd.MultiIndex.from_product(
                [list(compare.WINDOWS), member_ids], names=["window", schema.BEAT]
            ),
            fill_value=0,
        )
        .reset_index()
    )
    reference = _reference(incidents, windows, timezone, daily)
    comparisons = compare.compare_counts(counts, windows, alpha=alpha, reference=reference)
    totals = counts.groupby("window", sort=False)[["current", "previous", "last_year"]].sum()
    total_cmp = compare.compare_counts(
        totals.reset_index(), windows, alpha=alpha, reference=reference
    )

    in_window = inside[Period(chosen.start, chosen.end).contains(inside[schema.OCCURRED_AT])]
    by_category = pd.crosstab(in_window[schema.BEAT], in_window[schema.CATEGORY].astype(str))
    by_category = by_category.reindex(
        index=member_ids, columns=list(schema.CATEGORIES), fill_value=0
    )
    area_km2 = members.set_index(members[schema.BEAT]).geometry.area / 1e6
    table = comparisons[comparisons["window"] == window].set_index(schema.BEAT)
    side = pd.DataFrame({schema.BEAT: member_ids})
    side["area_km2"] = area_km2.reindex(member_ids).to_numpy()
    side["incidents"] = table.loc[member_ids, "current"].to_numpy().astype(int)
    side["per_km2"] = side["incidents"] / side["area_km2"]
    for category in schema.CATEGORIES:
        side[category] = by_category[category].to_numpy().astype(int)
    for column in compare.CHANGE_COLUMNS:
        side[column] = table.loc[member_ids, column].to_numpy()
    unusual, note = unusual_counts(
        incidents if daily is None else inside, member_ids, chosen, timezone=timezone, daily=daily
    )
    side["is_unusual"] = unusual["is_unusual"].to_numpy()
    total_row = total_cmp[total_cmp["window"] == window].iloc[0].to_dict()
    total = {k: None if isinstance(v, float) and math.isnan(v) else v for k, v in total_row.items()}
    total["area_km2"] = float(side["area_km2"].sum())
    total["per_km2"] = total["current"] / total["area_km2"] if total["area_km2"] else None
    significant = comparisons[(comparisons["flag"] != "") | (comparisons["flag_last_year"] != "")]
    districts = sorted(members[schema.DISTRICT].dropna().unique())
    return SectorReview(
        sector=str(members.iloc[0][level]),
        district=districts[0] if len(districts) == 1 else None,
        as_of=end,
        window=window,
        beats=side,
        total=total,
        comparisons=comparisons,
        significant=significant.reset_index(drop=True),
        unusual=unusual,
        unusual_note=note,
    )


def dense_start(daily: pd.Series, *, straggler_share: float = 0.005) -> date:
    """Return the first day of the month in which the data become dense.

    Records systems keep late-reported old incidents (the bundled data: 64 incidents from
    2004-2017 before a dense January 2018). The first month is the one in which more than
    `straggler_share` of all incidents have occurred, so at most that share lie before it, and
    a store that is dense from its first day loses nothing. Date pickers start here; the
    stragglers before it are noted, not hidden from analyses.

    Parameters
    ----------
    daily
        Incidents per local day (a date index, as ``analysis.inputs.load_daily_counts``).

    Raises
    ------
    ValueError
        If there are no incidents.
    """
    if not 0 <= straggler_share < 1:
        msg = f"straggler_share must be in [0, 1), got {straggler_share!r}"
        raise ValueError(msg)
    total = float(daily.sum()) if len(daily) else 0.0
    if total <= 0:
        msg = "no incidents: the store holds no dates"
        raise ValueError(msg)
    cumulative = daily.sort_index().cumsum()
    first = int(np.argmax(cumulative.to_numpy() > straggler_share * total))
    cut = pd.Timestamp(cumulative.index[first])
    return date(cut.year, cut.month, 1)
