"""What an analysis reads from a store: the period, the default as-of date and the loaders.

This is the one place that turns "this area, this period" into frames read from an
:class:`~geodata.store.IncidentStore`. The command line and the dashboard both call it, so a
page and a command given the same store, area and period compute on the same rows.

A :class:`Period` is a run of whole local days, ``first`` to ``last`` *inclusive*, in the
store's time zone; its :attr:`Period.end` is the day after ``last`` (exclusive), which is what
the store's ``load_incidents(start=..., end=...)`` takes. No caller adds a day by hand.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Literal, TypeAlias

import numpy as np
import pandas as pd

from analysis.workload import read_weights
from geodata import schema, settings
from geodata.daycounts import store_day_counts, store_last_day
from geodata.errors import UnknownAreaError
from geodata.store import IncidentStore

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "DEFAULT_PERIOD_DAYS",
    "HISTORY_YEARS",
    "LEVELS",
    "LEVEL_COLUMNS",
    "PLANNING_WINDOW_MONTHS",
    "PROFILE_COLUMNS",
    "PROFILE_REQUIRED",
    "REVIEW_HISTORY_YEARS",
    "Period",
    "PlanningInputs",
    "ProfileInputs",
    "StoreLayers",
    "area_beats",
    "daily_counts",
    "default_as_of",
    "default_period",
    "has_calls",
    "history",
    "load_daily_counts",
    "load_hotspot_incidents",
    "load_incidents",
    "load_layers",
    "load_planning_inputs",
    "load_planning_period",
    "load_profile_inputs",
    "open_store",
    "parse_day",
    "planning_period",
    "resolve_workload",
    "sample_note",
]

#: Length of a profile period and of the default period of the pages (days).
DEFAULT_PERIOD_DAYS = 28
#: Years of history a profile reads before its as-of date (the 365-day window of last year).
HISTORY_YEARS = 2
#: Years of history the sector review reads (its unusual-count check looks five years back).
REVIEW_HISTORY_YEARS = 6
#: Months of records beat planning measures workload over by default (:func:`planning_period`).
PLANNING_WINDOW_MONTHS = 12

#: Incident columns a profile computes on (:func:`analysis.profiles.profile_area` needs them).
PROFILE_REQUIRED = (
    schema.OCCURRED_AT,
    schema.BEAT,
    schema.CATEGORY,
    schema.OFFENSE,
    schema.LOCATION_DESC,
    schema.BLOCK,
)
#: Incident columns a profile, its map and its packet use (load only these from the store).
PROFILE_COLUMNS = (*PROFILE_REQUIRED, schema.X, schema.Y, schema.LON, schema.LAT)

DayLike: TypeAlias = date | datetime | pd.Timestamp | str
Level: TypeAlias = Literal["beat", "sector", "district", "department"]
#: Levels of the hierarchy an analysis can cover, smallest first.
LEVELS: tuple[str, ...] = ("beat", "sector", "district", "department")
#: The beat-layer column that names each level's areas.
LEVEL_COLUMNS = {"beat": schema.BEAT, "sector": schema.SECTOR, "district": schema.DISTRICT}


def parse_day(text: DayLike) -> date:
    """Return the calendar day of `text` (``YYYY-MM-DD``, a date or a timestamp).

    Raises
    ------
    ValueError
        If `text` is not a date, in words a user can act on.
    """
    if isinstance(text, pd.Timestamp | datetime):
        return text.date()
    if isinstance(text, date):
        return text
    try:
        return date.fromisoformat(str(text).strip())
    except ValueError:
        msg = f"{text!r} is not a date in YYYY-MM-DD form (e.g. 2018-01-27)"
        raise ValueError(msg) from None


@dataclass(frozen=True, order=True)
class Period:
    """Whole local days from `first` to `last`, both included, in the store's time zone.

    Examples
    --------
    >>> p = Period.of("2018-01-01", "2018-01-28")
    >>> p.days, p.end
    (28, datetime.date(2018, 1, 29))
    """

    first: date
    last: date

    def __post_init__(self) -> None:
        if self.last < self.first:
            msg = f"the period ends on {self.last} before it starts on {self.first}"
            raise ValueError(msg)

    @classmethod
    def of(cls, first: DayLike, last: DayLike) -> Period:
        """Return the period from `first` to `last` (inclusive; dates, timestamps or strings)."""
        return cls(parse_day(first), parse_day(last))

    @classmethod
    def ending(cls, last: DayLike, days: int = DEFAULT_PERIOD_DAYS) -> Period:
        """Return the `days` days that end on `last` (included)."""
        if days < 1:
            msg = f"a period has at least one day, got {days}"
            raise ValueError(msg)
        end = parse_day(last)
        return cls(end - timedelta(days=days - 1), end)

    @property
    def end(self) -> date:
        """Return the day after :attr:`last`: the exclusive end the store reads up to."""
        return self.last + timedelta(days=1)

    @property
    def days(self) -> int:
        """Return the number of days in the period."""
        return (self.last - self.first).days + 1

    def dates(self) -> pd.DatetimeIndex:
        """Return every day of the period (naive midnights)."""
        return pd.date_range(self.first, self.last, freq="D")

    def contains(self, occurred_at: pd.Series) -> np.ndarray:
        """Return which timestamps fall on a day of the period (their own local day)."""
        stamps = occurred_at.dt.tz_localize(None) if occurred_at.dt.tz is not None else occurred_at
        day = stamps.to_numpy("datetime64[D]")
        return (day >= np.datetime64(self.first, "D")) & (day <= np.datetime64(self.last, "D"))

    def __str__(self) -> str:
        return f"{self.first} to {self.last}"


def history(as_of: DayLike, *, years: int = HISTORY_YEARS) -> Period:
    """Return the days an analysis ending on `as_of` reads: `years` years and a week back.

    Two years cover every CompStat comparison (the 365-day window of last year); the sector
    review's unusual-count check needs six (:data:`REVIEW_HISTORY_YEARS`).
    """
    last = parse_day(as_of)
    return Period(last - timedelta(days=366 * years + 7), last)


def area_beats(beats: gpd.GeoDataFrame, *, level: Level, area_id: str | None) -> gpd.GeoDataFrame:
    """Return the beats that make up an area (membership comes from the beat layer).

    Parameters
    ----------
    beats
        Canonical beats with ``beat``, ``sector``, ``district``.
    level
        ``beat``, ``sector``, ``district`` or ``department`` (all beats).
    area_id
        The area's canonical id, as stored (``"0925"``, ``"092"``, ``"09"``); ignored for
        ``department``. Ids typed by a user are normalised once, where they enter a command
        or a page, with the department's rule (:meth:`geodata.department.Department.normalize_id`).

    Raises
    ------
    ValueError
        If `level` is unknown.
    UnknownAreaError
        If no beat belongs to `area_id` (the message shows a few valid ids).
    """
    if level not in LEVELS:
        msg = f"level must be one of {LEVELS}, got {level!r}"
        raise ValueError(msg)
    if level == "department":
        return beats.copy()
    column = LEVEL_COLUMNS[level]
    members = beats[beats[column] == area_id]
    if members.empty:
        examples = ", ".join(sorted(beats[column].dropna().unique())[:5])
        msg = f"no {level} {area_id!r} in the beat layer (ids look like {examples}, ...)"
        raise UnknownAreaError(msg, parameter=level)
    return members.copy()


# --- the data's calendar ----------------------------------------------------------------------
def daily_counts(occurred_at: pd.Series) -> pd.Series:
    """Return incidents per local calendar day, from the first to the last day (missing = 0).

    Parameters
    ----------
    occurred_at
        Timestamps, tz-aware in the store's zone (their local day counts) or naive local.
    """
    stamps = occurred_at.dt.tz_localize(None) if occurred_at.dt.tz is not None else occurred_at
    daily = stamps.dt.floor("D").value_counts().sort_index()
    if daily.empty:
        return pd.Series(dtype="int64", index=pd.DatetimeIndex([], freq="D"))
    return daily.asfreq("D", fill_value=0)


def default_as_of(daily: pd.Series, *, days: int = DEFAULT_PERIOD_DAYS) -> date:
    """Return the default as-of date: the last day with data, unless the data are sparse there.

    When the latest `days` days hold less than half as many incidents as the densest `days`-day
    window (the bundled data: a dense January 2018 and thin 2023-2024 samples), the end of the
    densest window is returned instead.

    Parameters
    ----------
    daily
        Incidents per day, from :func:`daily_counts`.

    Raises
    ------
    ValueError
        If there are no incidents.
    """
    if daily.empty or daily.sum() == 0:
        msg = "the store holds no incidents yet, so there is no default date: choose one"
        raise ValueError(msg)
    window = daily.rolling(days, min_periods=1).sum()
    end = daily.index[-1] if window.iloc[-1] >= 0.5 * window.max() else window.idxmax()
    return end.date()


def default_period(daily: pd.Series, *, days: int = DEFAULT_PERIOD_DAYS) -> Period:
    """Return the `days` days ending on :func:`default_as_of`."""
    return Period.ending(default_as_of(daily, days=days), days)


def planning_period(daily: pd.Series, *, months: int = PLANNING_WINDOW_MONTHS) -> Period | None:
    """Return beat planning's default workload period: the last `months` months of the store.

    The months end on the last day the store holds (2024-01-01 to 2024-12-31 for a store whose
    last record is of 31 December 2024). ``plan evaluate``, ``plan propose`` and the Beat
    planning page all default to it; every record is their ``--all`` (the page: *Every stored
    record*).

    Parameters
    ----------
    daily
        Incidents per day, from :func:`daily_counts` or :func:`load_daily_counts`.
    months
        Length of the period.

    Returns
    -------
    Period or None
        None when the store holds no dated record (then there is nothing to plan with).
    """
    if daily.empty:
        return None
    return _months_ending(daily.index[-1].date(), months)


def _months_ending(last: date, months: int) -> Period:
    """Return the `months` months ending on `last` (2024-01-01 to 2024-12-31 for 12)."""
    first = pd.Timestamp(last) - pd.DateOffset(months=months) + pd.Timedelta(days=1)
    return Period(first.date(), last)


def sample_note(daily: pd.Series, period: Period) -> str:
    """Return a warning when `period` is covered only sparsely (a sample), else "".

    The period is called a sample when its mean daily count is under a quarter of that of the
    densest 28 days of `daily` (the whole data set). The bundled 2023-2024 files hold a few
    percent of all incidents. A period with no incident at all gets no note: the pages and
    commands say "no incidents in this period" instead.
    """
    if daily.empty:
        return ""
    densest = daily.rolling(28, min_periods=1).sum().max() / 28
    mean = float(daily.reindex(period.dates(), fill_value=0).mean())
    if densest == 0 or mean == 0 or mean >= 0.25 * densest:
        return ""
    return (
        f"This period averages {mean:.1f} incidents a day, against {densest:.0f} in the densest "
        "four weeks of the data: it is covered by a sample of incidents. Compare areas with "
        "each other, not with real-world totals."
    )


# --- the store --------------------------------------------------------------------------------
def open_store(root: str | Path | None = None) -> IncidentStore:
    """Return the store at `root`, or the default store (built from the bundled data if empty).

    Parameters
    ----------
    root
        A store directory; None means the configured default (``geodata.settings``), which is
        built on first use from the bundled sample of the chosen department
        (``BEATS_DEPARTMENT``, default Chicago).
    """
    store = IncidentStore(settings.store_dir(root))
    # only a store that does not exist yet: one without incidents may hold calls for service,
    # or be a department's freshly installed beats, and must not get another's sample
    if root is None and not store.exists():
        from geodata.ingest import build_sample_store  # heavy (the beat join): only to build

        build_sample_store(store, department=settings.department_name())
    return store


def load_daily_counts(store: IncidentStore) -> pd.Series:
    """Return the store's incidents per local day (the same as :func:`daily_counts`).

    Counted in Arrow and cached beside the store by :func:`geodata.daycounts.store_day_counts`,
    so a command after the first one reads a few kilobytes instead of every timestamp.
    """
    first, counts = store_day_counts(store)
    if not len(counts):
        return daily_counts(pd.Series(pd.DatetimeIndex([]), name=schema.OCCURRED_AT))
    index = pd.date_range(
        np.datetime64(first, "D"), periods=len(counts), freq="D", name=schema.OCCURRED_AT
    )
    daily = pd.Series(counts, index=index, name="count")
    nonzero = np.flatnonzero(counts)  # the first and last files may start or end on empty days
    return daily.iloc[nonzero[0] : nonzero[-1] + 1].asfreq("D")


def load_planning_period(
    store: IncidentStore, *, months: int = PLANNING_WINDOW_MONTHS
) -> Period | None:
    """Return :func:`planning_period` of the store's daily counts, without counting them.

    The same period, from the last day the store holds (:func:`geodata.daycounts.store_last_day`
    reads only the latest month's times), so the first command after a store change does not
    count every stored timestamp. None when the store holds no incident.
    """
    last = store_last_day(store)
    if last is None:
        return None
    return _months_ending(np.datetime64(last, "D").astype(date), months)


def load_incidents(
    store: IncidentStore,
    columns: tuple[str, ...] | list[str],
    period: Period | None,
    *,
    beats: Sequence[str] | None = None,
) -> pd.DataFrame:
    """Return the `columns` of the incidents on the days of `period` (None: every day).

    Parameters
    ----------
    store
        The incident store.
    columns
        Incident columns to read.
    period
        The days to read (None: every day).
    beats
        Read only these beats' incidents (None: every incident, with or without a beat).
        The store skips the months and row groups that cannot hold them.
    """
    if period is None:
        return store.load_incidents(columns=list(columns), beats=beats)
    return store.load_incidents(
        columns=list(columns),
        start=pd.Timestamp(period.first),
        end=pd.Timestamp(period.end),
        beats=beats,
    )


@dataclass(frozen=True)
class StoreLayers:
    """The polygon and point layers of a store, and how it measures time and distance."""

    beats: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame | None
    timezone: str | None
    analysis_crs: str


def load_layers(store: IncidentStore) -> StoreLayers:
    """Return the store's beats, stations (None without a stations layer), zone and CRS."""
    stations = store.read_layer("stations") if store.has_layer("stations") else None
    return StoreLayers(
        beats=store.read_layer("beats"),
        stations=stations,
        timezone=store.timezone,
        analysis_crs=store.analysis_crs,
    )


@dataclass(frozen=True)
class ProfileInputs:
    """What a profile or a sector review reads: the history up to `as_of` and the layers."""

    as_of: date
    incidents: pd.DataFrame
    layers: StoreLayers
    daily: pd.Series
    #: The beats whose incidents were read (None: every incident of the history).
    area: tuple[str, ...] | None = None

    @property
    def beats(self) -> gpd.GeoDataFrame:
        """Return the beat layer."""
        return self.layers.beats

    @property
    def stations(self) -> gpd.GeoDataFrame | None:
        """Return the stations layer (None without one)."""
        return self.layers.stations

    @property
    def timezone(self) -> str | None:
        """Return the store's time zone."""
        return self.layers.timezone

    def period(self, days: int = DEFAULT_PERIOD_DAYS) -> Period:
        """Return the `days` days ending on the as-of date."""
        return Period.ending(self.as_of, days)


def load_profile_inputs(
    store: IncidentStore,
    as_of: DayLike | None = None,
    *,
    years: int = HISTORY_YEARS,
    columns: tuple[str, ...] | None = None,
    level: Level = "department",
    area_id: str | None = None,
) -> ProfileInputs:
    """Return what a profile needs: incidents of :func:`history` before `as_of`, and layers.

    Parameters
    ----------
    store
        The incident store.
    as_of
        Last day of the period; None picks :func:`default_as_of` of the store.
    years
        Years of history read (:data:`HISTORY_YEARS` for profiles,
        :data:`REVIEW_HISTORY_YEARS` for the sector review).
    columns
        Incident columns (default :data:`PROFILE_COLUMNS`).
    level, area_id
        The area profiled (see :func:`area_beats`): only its beats' incidents are read, and
        the profile judges coverage on :attr:`ProfileInputs.daily` (pass it as ``daily=`` to
        :func:`analysis.profiles.profile_area` and :func:`analysis.profiles.review_sector`).
        The default, the department, reads every incident of the history.

    Raises
    ------
    UnknownAreaError
        If no beat belongs to `area_id`.
    """
    daily = load_daily_counts(store)
    day = default_as_of(daily) if as_of is None else parse_day(as_of)
    layers = load_layers(store)
    area = None
    if level != "department":
        area = tuple(area_beats(layers.beats, level=level, area_id=area_id)[schema.BEAT])
    incidents = load_incidents(
        store, columns or PROFILE_COLUMNS, history(day, years=years), beats=area
    )
    return ProfileInputs(as_of=day, incidents=incidents, layers=layers, daily=daily, area=area)


@dataclass(frozen=True)
class PlanningInputs:
    """What beat planning reads: beats, stations and incidents with their workload."""

    beats: gpd.GeoDataFrame
    stations: gpd.GeoDataFrame | None
    incidents: pd.DataFrame


def load_planning_inputs(
    store: IncidentStore,
    period: Period | None = None,
    *,
    weights_path: str | Path | None = None,
    workload: Literal["incidents", "calls"] = "incidents",
    allowance: float = 0.0,
) -> PlanningInputs:
    """Return the beats, stations and the workload points of `store` over `period`.

    Parameters
    ----------
    store
        The incident store.
    period
        The workload period (None: every stored record).
    weights_path
        Workload weights TOML for incidents (default: ``analysis/workload_weights.toml``).
    workload
        ``"incidents"``: weighted incident counts; ``"calls"``: officer-hours of the calls for
        service (time on task x officers, :func:`analysis.calls.call_workload`).
    allowance
        With calls: self-initiated and administrative time as a share of committed time.
    """
    layers = load_layers(store)
    if workload == "calls":
        from analysis.calls import call_workload
        from geodata.calls import TIME_ON_TASK_MIN, UNITS, load_calls

        calls = load_calls(
            store,
            columns=[schema.X, schema.Y, schema.BEAT, TIME_ON_TASK_MIN, UNITS],
            start=pd.Timestamp(period.first) if period else None,
            end=pd.Timestamp(period.end) if period else None,
        )
        placed = call_workload(calls, layers.beats, allowance=allowance)
        return PlanningInputs(beats=layers.beats, stations=layers.stations, incidents=placed)
    incidents = load_incidents(store, (schema.X, schema.Y, schema.CATEGORY, schema.BEAT), period)
    from analysis import beatplan  # beatplan's own imports are heavy: only when planning

    incidents = beatplan.with_workload(
        incidents, read_weights(str(weights_path) if weights_path else None)
    )
    return PlanningInputs(beats=layers.beats, stations=layers.stations, incidents=incidents)


def resolve_workload(chosen: str, *, has_calls: bool) -> Literal["incidents", "calls"]:
    """Return the workload basis `chosen` names (``auto``: calls when the store holds them).

    Parameters
    ----------
    chosen
        ``"auto"``, ``"calls"`` or ``"incidents"`` (``plan --workload``, the planning page).
    has_calls
        Whether the store holds calls for service (:func:`has_calls`).

    Raises
    ------
    ValueError
        If `chosen` is none of the three.
    """
    if chosen not in ("auto", "calls", "incidents"):
        msg = f"the workload is 'auto', 'calls' or 'incidents', got {chosen!r}"
        raise ValueError(msg)
    if chosen == "auto":
        return "calls" if has_calls else "incidents"
    return "calls" if chosen == "calls" else "incidents"


def has_calls(store: IncidentStore) -> bool:
    """Return True when the store holds calls for service (its ``calls`` table has rows)."""
    from geodata.calls import calls_table

    table = calls_table(store)
    return table.exists() and table.count() > 0


def load_hotspot_incidents(
    store: IncidentStore, period: Period | None = None, *, columns: tuple[str, ...] | None = None
) -> pd.DataFrame:
    """Return the incidents hotspot methods read over `period` (None: every stored one)."""
    from analysis.hotspots import HOTSPOT_COLUMNS  # hotspots imports this module

    return load_incidents(store, columns or HOTSPOT_COLUMNS, period)
