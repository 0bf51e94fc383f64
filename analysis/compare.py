"""CompStat period comparison: 7-day, 28-day, year-to-date and 365-day windows with a Poisson test.

Windows end on a chosen *as-of* date and are whole local calendar days (the store's time zone):

``7d``
    The last complete Monday-Sunday week ending on or before the as-of date.
``28d``
    The 28 days ending on the as-of date.
``ytd``
    1 January of the as-of year to the as-of date.
``365d``
    The 365 days ending on the as-of date.

Each window is compared with the *previous equal period* (the same number of days immediately
before it; for ``ytd`` that is the last days of the previous year) and with the *same period
last year*: 52 weeks (364 days) earlier for ``7d`` and ``28d``, so weekdays line up, and the same
calendar dates a year earlier for ``ytd`` and ``365d`` (29 February maps to 28 February).

Change test
-----------
Two counts ``a`` (current, exposure ``t_a`` days) and ``b`` (comparison, ``t_b`` days) are taken as
Poisson. Conditional on ``n = a + b``, ``a`` is Binomial(``n``, ``t_a / (t_a + t_b)``) when the
rates are equal, so the exact two-sided binomial test (:func:`scipy.stats.binomtest`) gives the
p-value (the conditional "C-test" of Przyborowski and Wilenski, 1940; Wheeler 2016 uses the same
Poisson reasoning for crime counts). Small counts cannot reach significance (3 against 1 gives p =
0.625), so the flag does not cry wolf when a beat goes from 1 to 3 burglaries. The percent change
is ``None`` when the comparison count is 0 (an increase from nothing has no percentage).

Why a count changed
-------------------
:func:`change_breakdown` splits the difference between the current and previous period of one
area by offense category, location type and hour block (night 0-6, morning 6-12, afternoon
12-18, evening 18-24, local time): each part's own difference, and its share of the total
difference, largest contributors first (the parts' differences add up to the total).
:func:`explain_change` says the largest contributors in words, and :func:`chance_in_words`
says the p-value as odds ("as large a rise would happen by chance about 1 time in 6").
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date, timedelta

import numpy as np
import pandas as pd

from geodata import schema

__all__ = [
    "BREAKDOWNS",
    "CHANGE_COLUMNS",
    "HOUR_BLOCKS",
    "WINDOWS",
    "Window",
    "binomial_two_sided_p",
    "chance_in_words",
    "change_breakdown",
    "change_flag",
    "compare_counts",
    "compstat_windows",
    "count_text",
    "covered_counts",
    "daily_total",
    "daily_window_counts",
    "explain_change",
    "explain_flagged",
    "pct_change",
    "poisson_change_test",
    "window_counts",
]

#: Columns of :func:`compare_counts` that set a period against the previous one and last year.
CHANGE_COLUMNS = (
    "previous",
    "pct_change",
    "p_value",
    "flag",
    "last_year",
    "pct_change_last_year",
    "p_value_last_year",
    "flag_last_year",
)
#: Hour blocks of the breakdown: (first hour, hour after the last, words).
HOUR_BLOCKS = (
    (0, 6, "at night (0-6 h)"),
    (6, 12, "in the morning (6-12 h)"),
    (12, 18, "in the afternoon (12-18 h)"),
    (18, 24, "in the evening (18-24 h)"),
)
#: Dimensions of :func:`change_breakdown`: words -> column (``hour block`` is derived).
BREAKDOWNS = {
    "offense category": schema.CATEGORY,
    "location type": schema.LOCATION_DESC,
    "hour block": "hour_block",
}
#: Window names in display order.
WINDOWS = ("7d", "28d", "ytd", "365d")
_LABELS = {
    "7d": "Week (Mon-Sun)",
    "28d": "28 days",
    "ytd": "Year to date",
    "365d": "365 days",
}


@dataclass(frozen=True)
class Window:
    """A CompStat window and its two comparison periods (inclusive local dates)."""

    name: str
    label: str
    start: date
    end: date
    previous_start: date
    previous_end: date
    last_year_start: date
    last_year_end: date

    @property
    def days(self) -> int:
        """Return the length of the current period in days."""
        return (self.end - self.start).days + 1

    @property
    def previous_days(self) -> int:
        """Return the length of the previous period in days."""
        return (self.previous_end - self.previous_start).days + 1

    @property
    def last_year_days(self) -> int:
        """Return the length of the same period last year in days."""
        return (self.last_year_end - self.last_year_start).days + 1

    def periods(self) -> dict[str, tuple[date, date]]:
        """Return ``{"current"|"previous"|"last_year": (first day, last day)}``."""
        return {
            "current": (self.start, self.end),
            "previous": (self.previous_start, self.previous_end),
            "last_year": (self.last_year_start, self.last_year_end),
        }


def _year_earlier(day: date) -> date:
    try:
        return day.replace(year=day.year - 1)
    except ValueError:  # 29 February
        return day.replace(year=day.year - 1, day=28)


def _as_date(value: date | str | pd.Timestamp, name: str) -> date:
    try:
        stamp = pd.Timestamp(value)
    except (ValueError, TypeError) as err:
        msg = f"{name} must be a date (YYYY-MM-DD), got {value!r}"
        raise ValueError(msg) from err
    if pd.isna(stamp):
        msg = f"{name} must be a date (YYYY-MM-DD), got {value!r}"
        raise ValueError(msg)
    return stamp.date()


def compstat_windows(as_of: date | str | pd.Timestamp) -> list[Window]:
    """Return the four CompStat windows ending on `as_of` (see the module docstring).

    Parameters
    ----------
    as_of
        The last day of the reporting period (a local calendar date, included).

    Returns
    -------
    list of Window
        ``7d``, ``28d``, ``ytd``, ``365d`` in that order.

    Examples
    --------
    >>> w = compstat_windows("2018-01-24")  # a Wednesday
    >>> str(w[0].start), str(w[0].end)  # the last complete Monday-Sunday week
    ('2018-01-15', '2018-01-21')
    """
    day = _as_date(as_of, "as_of")
    windows = []
    week_end = day - timedelta(days=(day.weekday() + 1) % 7)  # Sunday on or before
    for name, start, end in (
        ("7d", week_end - timedelta(days=6), week_end),
        ("28d", day - timedelta(days=27), day),
        ("ytd", date(day.year, 1, 1), day),
        ("365d", day - timedelta(days=364), day),
    ):
        length = timedelta(days=(end - start).days + 1)
        if name in ("7d", "28d"):
            ly_start, ly_end = start - timedelta(days=364), end - timedelta(days=364)
        else:
            ly_start, ly_end = _year_earlier(start), _year_earlier(end)
        windows.append(
            Window(
                name=name,
                label=_LABELS[name],
                start=start,
                end=end,
                previous_start=start - length,
                previous_end=start - timedelta(days=1),
                last_year_start=ly_start,
                last_year_end=ly_end,
            )
        )
    return windows


def pct_change(current: float, previous: float) -> float | None:
    """Return the percent change from `previous` to `current`, or None when `previous` is 0."""
    if previous == 0 or previous is None or (isinstance(previous, float) and math.isnan(previous)):
        return None
    return 100.0 * (current - previous) / previous


def poisson_change_test(
    current: int, previous: int, *, current_days: float = 1.0, previous_days: float = 1.0
) -> float:
    """Return the two-sided p-value that two Poisson counts have the same daily rate.

    Conditional on the total, `current` is binomial with success probability
    ``current_days / (current_days + previous_days)`` under equal rates; the exact binomial test
    of :func:`scipy.stats.binomtest` gives the p-value. Both counts 0 gives 1.0.

    Parameters
    ----------
    current, previous
        Incident counts (non-negative integers).
    current_days, previous_days
        Exposure of each count in days (the periods may differ in length, e.g. 366-day years).

    Raises
    ------
    ValueError
        If a count is negative or not whole, or an exposure is not positive.
    """
    for name, value in (("current", current), ("previous", previous)):
        if value < 0 or int(value) != value:
            msg = f"{name} must be a non-negative whole count, got {value!r}"
            raise ValueError(msg)
    for name, days in (("current_days", current_days), ("previous_days", previous_days)):
        if not days > 0:
            msg = f"{name} must be > 0 days, got {days!r}"
            raise ValueError(msg)
    total = int(current) + int(previous)
    if total == 0:
        return 1.0
    share = current_days / (current_days + previous_days)
    return binomial_two_sided_p(int(current), total, share)


def binomial_two_sided_p(k: int, n: int, p: float) -> float:
    """Return the exact two-sided binomial p-value of `k` successes in `n` trials.

    The same test as :func:`scipy.stats.binomtest` (``alternative="two-sided"``): the sum of
    the probabilities of every outcome no more likely than `k` (with scipy's relative tolerance
    of 1e-7), the tail on `k`'s side of the mode in full. Computed with NumPy from log
    factorials, so that a profile does not import ``scipy.stats`` (about 1 s of start-up).

    Parameters
    ----------
    k
        Successes, ``0 <= k <= n``.
    n
        Trials (> 0).
    p
        Success probability, ``0 < p < 1``.
    """
    if k == p * n:
        return 1.0
    outcomes = np.arange(n + 1)
    log_fact = _log_factorials(n)
    log_pmf = (
        log_fact[n]
        - log_fact
        - log_fact[::-1]
        + outcomes * math.log(p)
        + (n - outcomes) * math.log1p(-p)
    )
    pmf = np.exp(log_pmf)
    bound = pmf[k] * (1 + 1e-7)
    if k < p * n:
        own, other = pmf[: k + 1], pmf[max(math.ceil(p * n), k + 1) :]
    else:
        own, other = pmf[k:], pmf[: min(math.floor(p * n), k - 1) + 1]
    return float(min(1.0, own.sum() + other[other <= bound].sum()))


def _log_factorials(n: int) -> np.ndarray:
    """Return ``log(j!)`` for j = 0..n (``math.lgamma`` below 20, Stirling's series above)."""
    small = min(n, 19)
    out = np.empty(n + 1)
    out[: small + 1] = [math.lgamma(j + 1) for j in range(small + 1)]
    if n > small:
        m = np.arange(small + 1, n + 1, dtype=np.float64) + 1.0  # log(j!) = lgamma(j + 1)
        inv = 1.0 / m
        inv2 = inv * inv
        series = inv * (1 / 12 - inv2 * (1 / 360 - inv2 * (1 / 1260 - inv2 / 1680)))
        out[small + 1 :] = (m - 0.5) * np.log(m) - m + 0.5 * math.log(2 * math.pi) + series
    return out


def change_flag(
    p_value: float | None, current: float, previous: float, *, alpha: float = 0.05
) -> str:
    """Return ``"up"`` or ``"down"`` for a significant change at level `alpha`, else ``""``.

    `current` and `previous` are counts, or daily rates when the periods differ in length.
    """
    if p_value is None or not p_value < alpha or current == previous:
        return ""
    return "up" if current > previous else "down"


def _local_day_numbers(occurred_at: pd.Series, timezone: str | None) -> np.ndarray:
    """Return local calendar days as integer day numbers (days since 1970-01-01)."""
    stamps = occurred_at
    if stamps.dt.tz is None:
        if timezone is None:
            return stamps.dt.floor("D").to_numpy("datetime64[D]").astype(np.int64)
        stamps = stamps.dt.tz_localize(timezone)
    elif timezone is not None:
        stamps = stamps.dt.tz_convert(timezone)
    local = stamps.dt.tz_localize(None)
    return local.to_numpy("datetime64[D]").astype(np.int64)


def _day_number(day: date) -> int:
    return int(np.datetime64(day, "D").astype(np.int64))


def window_counts(
    incidents: pd.DataFrame,
    windows: list[Window],
    *,
    by: str | None = None,
    timezone: str | None = None,
) -> pd.DataFrame:
    """Return incident counts in each window's three periods, in total or per `by` value.

    Parameters
    ----------
    incidents
        Incidents with ``occurred_at`` (tz-aware; converted to `timezone` when given, so local
        days are counted) and, if set, the `by` column.
    windows
        From :func:`compstat_windows`.
    by
        Column to count by (e.g. ``beat``); None counts all rows.
    timezone
        Local time zone that defines calendar days (default: the timestamps' own zone).

    Returns
    -------
    DataFrame
        One row per window (and `by` value): ``window``, [`by`], ``current``, ``previous``,
        ``last_year``.
    """
    if schema.OCCURRED_AT not in incidents:
        msg = f"incidents need an {schema.OCCURRED_AT!r} column"
        raise ValueError(msg)
    if by is not None and by not in incidents:
        msg = f"incidents have no column {by!r} to count by"
        raise ValueError(msg)
    days = _local_day_numbers(incidents[schema.OCCURRED_AT], timezone)
    keys = incidents[by].astype(str).to_numpy() if by is not None else None
    rows = []
    for window in windows:
        counts: dict[str, pd.Series | int] = {}
        for period, (first, last) in window.periods().items():
            inside = (days >= _day_number(first)) & (days <= _day_number(last))
            if keys is None:
                counts[period] = int(inside.sum())
            else:
                counts[period] = pd.Series(keys[inside]).value_counts()
        if keys is None:
            rows.append(pd.DataFrame([{"window": window.name, **counts}]))
        else:
            frame = pd.DataFrame(counts).fillna(0).astype(int)
            frame.index.name = by
            rows.append(frame.reset_index().assign(window=window.name))
    out = pd.concat(rows, ignore_index=True)
    columns = ["window", *([by] if by else []), "current", "previous", "last_year"]
    return out.reindex(columns=columns).fillna({"current": 0, "previous": 0, "last_year": 0})


def daily_total(daily: pd.Series, first: date, last: date) -> int:
    """Return the incidents from day `first` to day `last` (inclusive) of per-day counts."""
    days = daily.index.to_numpy("datetime64[D]")
    inside = (days >= np.datetime64(first, "D")) & (days <= np.datetime64(last, "D"))
    return int(daily.to_numpy(dtype=np.int64)[inside].sum())


def daily_window_counts(daily: pd.Series, windows: list[Window]) -> pd.DataFrame:
    """Return :func:`window_counts` of all incidents (no `by`) from incidents per local day.

    Summing a store's per-day counts gives the same whole-data-set counts as
    :func:`window_counts` of every incident, without loading the incidents of other areas
    (the coverage `reference` of :func:`compare_counts`).

    Parameters
    ----------
    daily
        Incidents per local calendar day (a naive daily index, as
        :func:`analysis.inputs.daily_counts`); missing days count zero.
    windows
        From :func:`compstat_windows`.
    """
    rows = [
        {
            "window": w.name,
            **{name: daily_total(daily, *span) for name, span in w.periods().items()},
        }
        for w in windows
    ]
    return pd.DataFrame(rows).reindex(columns=["window", "current", "previous", "last_year"])


def compare_counts(
    counts: pd.DataFrame,
    windows: list[Window],
    *,
    alpha: float = 0.05,
    reference: pd.DataFrame | None = None,
    min_coverage: float = 0.25,
) -> pd.DataFrame:
    """Add percent changes, p-values and flags to the output of :func:`window_counts`.

    Parameters
    ----------
    counts
        Rows with ``window``, ``current``, ``previous``, ``last_year``.
    windows
        The windows the counts were made for (their lengths are the exposures).
    alpha
        Significance level of the change flags.
    reference
        Whole-data-set counts of the same windows (:func:`window_counts` without `by`). A
        comparison period is *covered* when the data set's daily counts in it and in the
        current period are within a factor 1 / `min_coverage` of each other (4 by default);
        otherwise the store holds no data, or only a sample, in one of them, and the change,
        p-value and flag are left empty instead of reporting a rise from nothing. Without
        `reference` every period counts as covered.
    min_coverage
        See `reference`.

    Returns
    -------
    DataFrame
        A copy of `counts` with the window dates and ``pct_change``, ``p_value``, ``flag``
        (against the previous period), ``pct_change_last_year``, ``p_value_last_year``,
        ``flag_last_year``, and ``previous_covered``, ``last_year_covered``. Percent changes
        are None (NaN in numeric columns) when the comparison count is 0 or not covered.
    """
    if not 0 < alpha < 1:
        msg = f"alpha must be between 0 and 1, got {alpha!r}"
        raise ValueError(msg)
    by_name = {w.name: w for w in windows}
    covered = _coverage(reference, by_name, min_coverage)
    out = counts.copy()
    results: dict[str, list] = {
        k: []
        for k in (
            "start",
            "end",
            "pct_change",
            "p_value",
            "flag",
            "pct_change_last_year",
            "p_value_last_year",
            "flag_last_year",
            "previous_covered",
            "last_year_covered",
        )
    }
    for row in out.itertuples(index=False):
        window = by_name[row.window]
        current, previous, last_year = int(row.current), int(row.previous), int(row.last_year)
        has_prev, has_ly = covered[window.name]
        results["start"].append(window.start)
        results["end"].append(window.end)
        results["previous_covered"].append(has_prev)
        results["last_year_covered"].append(has_ly)
        for suffix, other, other_days, has_other in (
            ("", previous, window.previous_days, has_prev),
            ("_last_year", last_year, window.last_year_days, has_ly),
        ):
            p = poisson_change_test(
                current, other, current_days=window.days, previous_days=other_days
            )
            rates = (current / window.days, other / other_days)
            results[f"pct_change{suffix}"].append(pct_change(current, other) if has_other else None)
            results[f"p_value{suffix}"].append(p if has_other else None)
            results[f"flag{suffix}"].append(
                change_flag(p, *rates, alpha=alpha) if has_other else ""
            )
    for key, values in results.items():
        dtype: str | type[object]
        if key.endswith("covered"):
            dtype = "bool"
        elif "flag" in key or key in ("start", "end"):
            dtype = object
        else:
            dtype = "float64"
        out[key] = pd.Series(values, index=out.index, dtype=dtype)
    return out


def _comparable(rate: float, other: float, min_coverage: float) -> bool:
    return bool(rate > 0 and other > 0 and min(rate, other) >= min_coverage * max(rate, other))


def covered_counts(comparisons: pd.DataFrame) -> pd.DataFrame:
    """Return the ``previous`` and ``last_year`` counts of :func:`compare_counts`, as shown.

    A period the data set does not cover (``previous_covered``/``last_year_covered`` False:
    before the first data, or a gap) has no count to show: it is missing (``pd.NA``), not 0,
    which a reader would take for a period without incidents. Without the coverage columns
    every count is kept.
    """
    out = pd.DataFrame(index=comparisons.index)
    for column, covered in (("previous", "previous_covered"), ("last_year", "last_year_covered")):
        counts = comparisons[column].astype("Int64")
        if covered in comparisons:
            counts = counts.mask(~comparisons[covered].astype(bool))
        out[column] = counts
    return out


def count_text(value: float | None) -> str:
    """Return a count of :func:`covered_counts` as text: a dash where it is missing."""
    return "—" if value is None or pd.isna(value) else f"{int(value):d}"


def _coverage(
    reference: pd.DataFrame | None, windows: dict[str, Window], min_coverage: float
) -> dict[str, tuple[bool, bool]]:
    """Return ``{window: (previous covered, last year covered)}`` from whole-data-set counts."""
    if reference is None:
        return {name: (True, True) for name in windows}
    out = {}
    rows = reference.set_index("window")
    for name, window in windows.items():
        if name not in rows.index:
            out[name] = (True, True)
            continue
        row = rows.loc[name]
        rate = row["current"] / window.days
        prev_rate = row["previous"] / window.previous_days
        ly_rate = row["last_year"] / window.last_year_days
        out[name] = (
            _comparable(rate, prev_rate, min_coverage),
            _comparable(rate, ly_rate, min_coverage),
        )
    return out


def chance_in_words(p_value: float | None, current: float, previous: float) -> str:
    """Return the two-sided p-value as odds in words.

    Examples
    --------
    >>> chance_in_words(0.17, 12, 6)
    'as large a rise would happen by chance about 1 time in 6'
    >>> chance_in_words(0.0004, 23, 4)
    'as large a rise would happen by chance less than 1 time in 1,000'
    """
    if p_value is None or (isinstance(p_value, float) and math.isnan(p_value)):
        return "no comparable earlier period, so chance cannot be judged"
    change = "rise" if current > previous else ("fall" if current < previous else "difference")
    if p_value >= 0.5:
        return f"as large a {change} would happen by chance about every other time or more often"
    if p_value < 0.001:
        return f"as large a {change} would happen by chance less than 1 time in 1,000"
    return f"as large a {change} would happen by chance about 1 time in {round(1 / p_value):,}"


def _hour_block(occurred_at: pd.Series, timezone: str | None) -> pd.Series:
    stamps = occurred_at
    if timezone is not None:
        stamps = (
            stamps.dt.tz_localize(timezone)
            if stamps.dt.tz is None
            else stamps.dt.tz_convert(timezone)
        )
    hours = stamps.dt.hour.to_numpy()
    words = np.empty(len(hours), dtype=object)
    for first, last, text in HOUR_BLOCKS:
        words[(hours >= first) & (hours < last)] = text
    return pd.Series(words, index=occurred_at.index, dtype=object)


def change_breakdown(
    incidents: pd.DataFrame,
    window: Window,
    *,
    timezone: str | None = None,
) -> pd.DataFrame:
    """Return the change from the previous period to the current one, split three ways.

    Parameters
    ----------
    incidents
        One area's incidents with ``occurred_at``, ``category`` and ``location_desc`` (missing
        location types count as ``unknown``), covering both periods of `window`.
    window
        From :func:`compstat_windows`.
    timezone
        Local zone of days and hours (default: the timestamps' own zone).

    Returns
    -------
    DataFrame
        ``dimension`` (a key of :data:`BREAKDOWNS`), ``part``, ``current``, ``previous``,
        ``difference`` and ``share`` (of the total difference, None when it is 0); within a
        dimension the differences add up to the total difference, and rows come largest
        contribution in the direction of the change first.
    """
    needed = [schema.OCCURRED_AT, schema.CATEGORY, schema.LOCATION_DESC]
    missing = [c for c in needed if c not in incidents]
    if missing:
        msg = f"incidents need the columns {missing} for a change breakdown"
        raise ValueError(msg)
    days = _local_day_numbers(incidents[schema.OCCURRED_AT], timezone)
    periods = window.periods()
    masks = {
        name: (days >= _day_number(periods[name][0])) & (days <= _day_number(periods[name][1]))
        for name in ("current", "previous")
    }
    parts = pd.DataFrame(
        {
            "offense category": incidents[schema.CATEGORY].astype(object).fillna("unknown"),
            "location type": incidents[schema.LOCATION_DESC]
            .astype(object)
            .fillna("unknown")
            .map(lambda v: str(v).strip().lower() or "unknown"),
            "hour block": _hour_block(incidents[schema.OCCURRED_AT], timezone),
        }
    )
    total = int(masks["current"].sum()) - int(masks["previous"].sum())
    rows = []
    for dimension in BREAKDOWNS:
        current = parts.loc[masks["current"], dimension].astype(str).value_counts()
        previous = parts.loc[masks["previous"], dimension].astype(str).value_counts()
        frame = pd.DataFrame({"current": current, "previous": previous}).fillna(0).astype(int)
        frame["difference"] = frame["current"] - frame["previous"]
        frame = frame.rename_axis("part").reset_index()
        frame["share"] = frame["difference"] / total if total else None
        sign = 1 if total >= 0 else -1
        frame = frame.sort_values(
            ["difference", "part"], ascending=[sign < 0, True], kind="stable"
        ).assign(dimension=dimension)
        rows.append(frame)
    columns = ["dimension", "part", "current", "previous", "difference", "share"]
    return pd.concat(rows, ignore_index=True)[columns]


def explain_change(breakdown: pd.DataFrame, *, top: int = 2) -> str:
    """Return which parts added most to the change, in words, from :func:`change_breakdown`.

    Examples: ``"Most of the rise of 19: theft +9 and battery +5; on the street +8 and in a
    residence +4; in the evening (18-24 h) +10 and in the afternoon (12-18 h) +6."``
    """
    first = breakdown[breakdown["dimension"] == next(iter(BREAKDOWNS))]
    total = int(first["difference"].sum())
    if total == 0:
        return "No overall change; the parts moved by no more than they balanced out."
    sign = 1 if total > 0 else -1
    pieces = []
    for dimension in BREAKDOWNS:
        rows = breakdown[
            (breakdown["dimension"] == dimension) & (breakdown["difference"] * sign > 0)
        ]
        named = [f"{r.part} {r.difference:+d}" for r in rows.head(top).itertuples()]
        if named:
            pieces.append(f"{dimension}: " + " and ".join(named))
    word = "rise" if total > 0 else "fall"
    return f"Most of the {word} of {abs(total)} came from " + "; ".join(pieces) + "."


def explain_flagged(
    table: pd.DataFrame,
    incidents: pd.DataFrame,
    *,
    as_of: date,
    window: str,
    timezone: str | None = None,
) -> dict[str, tuple[str, str, pd.DataFrame]]:
    """Return, per flagged area of a review table, why: (parts in words, chance, breakdown).

    Parameters
    ----------
    table
        One row per area with ``beat``, ``flag`` (``up``/``down``/empty), ``p_value``,
        ``incidents`` (current count) and ``previous`` (e.g. a sector review's ``beats``).
    incidents
        Incidents with ``beat``, ``occurred_at``, ``category`` and ``location_desc`` covering
        the window's current and previous periods.
    as_of, window
        The review's last day and window name (:data:`WINDOWS`).
    """
    chosen = next(w for w in compstat_windows(as_of) if w.name == window)
    beats = incidents[schema.BEAT]
    out = {}
    for row in table.to_dict("records"):
        if not row["flag"]:
            continue
        beat = str(row[schema.BEAT])
        breakdown = change_breakdown(incidents[beats == beat], chosen, timezone=timezone)
        p_value = None if pd.isna(row["p_value"]) else float(row["p_value"])
        chance = chance_in_words(p_value, row["incidents"], row["previous"])
        out[beat] = (explain_change(breakdown), chance, breakdown)
    return out
