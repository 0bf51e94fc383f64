"""Rolling backtests of hotspot methods with the field's measures: hit rate, PAI, PEI*, RRI.

Each method scores the cells of one grid (the study area: cells whose centre is in a beat) from
the incidents *before* a cut-off; the top ``coverage`` share of the study cells is the predicted
hotspot area, measured on the incidents of the next period. Ties (e.g. cells outside every
cluster) are broken by the training count per cell, then by cell order, for every method alike.
The naive baseline ranks cells by their training counts alone.

Schedules come from the data (:func:`backtest_schedule`): the incidents are split into segments
at gaps of two weeks or more; a segment spanning at most 62 days (the dense January 2018 month) is
cut daily from its eighth day (fit on the days before, predict the next day and the next three
days); a longer one (the 2023-2024 samples, a full year) is cut monthly (fit on up to 365 days
before the first of a month, predict that month). Nothing is specific to the bundled files.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from analysis.hotspots import (
    DBSCANHotspots,
    GiStarHotspots,
    Grid,
    HDBSCANHotspots,
    KDEHotspots,
    grid_mask,
)
from geodata import schema

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "COVERAGES",
    "METHODS",
    "Cutoff",
    "backtest_schedule",
    "evaluate_scores",
    "hit_rate",
    "method_scores",
    "pai",
    "pei_star",
    "rolling_backtest",
    "rri",
    "study_grid",
    "summarize_backtest",
]

logger = logging.getLogger(__name__)

METHODS = ("naive", "kde", "gistar", "dbscan", "hdbscan")
COVERAGES = (0.01, 0.02, 0.05)


# --- the measures -----------------------------------------------------------------------------
def hit_rate(n_hits: float, n_total: float) -> float:
    """Return the share of the period's incidents inside the hotspot area (n / N); NaN if N = 0."""
    return float(n_hits) / n_total if n_total else math.nan


def pai(n_hits: float, n_total: float, area: float, total_area: float) -> float:
    """Return the Predictive Accuracy Index (n / N) / (a / A); NaN if N or a is 0."""
    return _ratio_of_ratios(n_hits, n_total, area, total_area)


def pei_star(n_hits: float, n_best: float) -> float:
    """Return PEI*: hits over the most any area of the same size could have caught; NaN if 0."""
    return float(n_hits) / n_best if n_best else math.nan


def rri(n_test_in: float, n_test_total: float, n_train_in: float, n_train_total: float) -> float:
    """Return the Recapture Rate Index (n_test / n_train in the area) / (N_test / N_train)."""
    return _ratio_of_ratios(n_test_in, n_train_in, n_test_total, n_train_total)


def _ratio_of_ratios(a: float, b: float, c: float, d: float) -> float:
    """Return (a / b) / (c / d), the ratio of two shares; NaN if b, c or d is 0."""
    if not b or not c or not d:
        return math.nan
    return (float(a) / b) / (float(c) / d)


# --- the grid and the methods -----------------------------------------------------------------
def study_grid(beats: gpd.GeoDataFrame, cell_size_m: float = 150.0) -> tuple[Grid, np.ndarray]:
    """Return the evaluation grid over the beats and its study mask (cell centres in a beat)."""
    if cell_size_m <= 0:
        msg = f"cell_size_m must be > 0 m, got {cell_size_m!r}"
        raise ValueError(msg)
    xmin, ymin, xmax, ymax = beats.total_bounds
    grid = Grid.around(np.array([xmin, xmax]), np.array([ymin, ymax]), cell_size_m, cell_size_m)
    return grid, grid_mask(grid, beats)


def _kde_scores(train: pd.DataFrame, grid: Grid, mask: np.ndarray) -> np.ndarray:
    del mask
    fine = 5  # KDE on a grid 5 times finer, summed back to the evaluation cells
    fine_grid = Grid(
        grid.x0, grid.y0, grid.cell_size_m / fine, grid.n_rows * fine, grid.n_cols * fine
    )
    density = KDEHotspots(coverage=0.05).fit(train, grid=fine_grid).density_
    return density.reshape(grid.n_rows, fine, grid.n_cols, fine).sum(axis=(1, 3))


def _gistar_scores(train: pd.DataFrame, grid: Grid, mask: np.ndarray) -> np.ndarray:
    return (
        GiStarHotspots(cell_size_m=grid.cell_size_m, permutations=0)
        .fit(train, grid=grid, mask=mask)
        .z_
    )


def _cluster_scores(model: DBSCANHotspots | HDBSCANHotspots) -> Callable[..., np.ndarray]:
    def score(train: pd.DataFrame, grid: Grid, mask: np.ndarray) -> np.ndarray:
        del mask
        labels = model.fit(train).labels_
        keep = labels >= 0
        return grid.counts(train[schema.X].to_numpy()[keep], train[schema.Y].to_numpy()[keep])

    return score


def method_scores(method: str, train: pd.DataFrame, grid: Grid, mask: np.ndarray) -> np.ndarray:
    """Return the (rows, cols) cell scores of `method` fitted on `train` (higher = hotter).

    ``naive``: training count; ``kde``: kernel density summed over the cell; ``gistar``: Gi*
    z-score; ``dbscan``/``hdbscan``: training incidents of the cell that belong to a cluster.
    """
    if method == "naive":
        return grid.counts(train[schema.X].to_numpy(), train[schema.Y].to_numpy())
    scorers: dict[str, Callable[..., np.ndarray]] = {
        "kde": _kde_scores,
        "gistar": _gistar_scores,
        "dbscan": _cluster_scores(DBSCANHotspots()),
        "hdbscan": _cluster_scores(HDBSCANHotspots()),
    }
    if method not in scorers:
        msg = f"method must be one of {list(METHODS)}, got {method!r}"
        raise ValueError(msg)
    return scorers[method](train, grid, mask)


def evaluate_scores(
    scores: np.ndarray,
    train_counts: np.ndarray,
    test_counts: np.ndarray,
    mask: np.ndarray,
    coverages: Sequence[float] = COVERAGES,
) -> list[dict[str, float]]:
    """Return hit rate, PAI, PEI* and RRI of the top-scoring cells for each coverage.

    Parameters
    ----------
    scores, train_counts, test_counts, mask
        (rows, cols) arrays: method scores, training and test incidents per cell, study cells.
    coverages
        Shares of the study cells selected (0.01 = 1%).
    """
    study = np.flatnonzero(np.asarray(mask).ravel())
    score = np.asarray(scores, dtype=float).ravel()[study]
    score = np.nan_to_num(score, nan=-np.inf)
    train = np.asarray(train_counts, dtype=float).ravel()[study]
    test = np.asarray(test_counts, dtype=float).ravel()[study]
    # rank: score, then training count, then cell order (lexsort: last key first)
    order = np.lexsort((np.arange(len(study)), -train, -score))
    best = np.sort(test)[::-1]
    n_cells = len(study)
    rows = []
    for coverage in coverages:
        k = max(1, round(coverage * n_cells))
        chosen = order[:k]
        n_hits = test[chosen].sum()
        rows.append(
            {
                "coverage": float(coverage),
                "cells": k,
                "n_test": float(test.sum()),
                "n_hits": float(n_hits),
                "hit_rate": hit_rate(n_hits, test.sum()),
                "pai": pai(n_hits, test.sum(), k, n_cells),
                "pei_star": pei_star(n_hits, best[:k].sum()),
                "rri": rri(n_hits, test.sum(), train[chosen].sum(), train.sum()),
            }
        )
    return rows


# --- schedules --------------------------------------------------------------------------------
@dataclass(frozen=True)
class Cutoff:
    """One fit/predict split: fit on ``[train_start, cutoff)``, measure on ``[cutoff, end)``."""

    segment: str
    train_start: pd.Timestamp
    cutoff: pd.Timestamp
    end: pd.Timestamp
    horizon: str


def backtest_schedule(
    occurred: pd.Series,
    *,
    gap_days: int = 14,
    daily_max_days: int = 62,
    first_day: int = 8,
    day_horizons: Sequence[int] = (1, 3),
    lookback_days: int = 365,
    min_incidents: int = 200,
) -> list[Cutoff]:
    """Return the cut-offs of a rolling backtest over the times `occurred`.

    Parameters
    ----------
    occurred
        Incident times (tz-aware or naive, local).
    gap_days
        A gap this long splits the data into segments.
    daily_max_days
        Segments up to this long get daily cut-offs; longer ones monthly.
    first_day
        First daily cut-off: the start of this day of the segment (8 = the second week).
    day_horizons
        Daily schedule: predicted periods, in days.
    lookback_days
        Monthly schedule: at most this many days before the cut-off are fitted.
    min_incidents
        Segments with fewer incidents are skipped.
    """
    if occurred.empty:
        return []
    days = pd.DatetimeIndex(occurred).floor("D").unique().sort_values()
    breaks = np.flatnonzero(np.diff(days.asi8) > gap_days * 86_400e9)
    starts = [0, *(breaks + 1)]
    stops = [*(breaks + 1), len(days)]
    times = pd.DatetimeIndex(occurred)
    cutoffs: list[Cutoff] = []
    for a, b in zip(starts, stops, strict=True):
        first, last = days[a], days[b - 1]
        end_all = last + pd.DateOffset(days=1)
        n = int(((times >= first) & (times < end_all)).sum())
        if n < min_incidents:
            continue
        span = (end_all.date() - first.date()).days  # calendar days, DST-proof
        name = f"{first.date()} to {last.date()}"
        if span <= daily_max_days:
            for day in range(first_day - 1, span):
                cut = first + pd.DateOffset(days=day)  # local midnight, also after DST
                for h in day_horizons:
                    end = cut + pd.DateOffset(days=h)
                    if end <= end_all:
                        label = f"{h} day" + ("s" if h > 1 else "")
                        cutoffs.append(Cutoff(f"daily {name}", first, cut, end, label))
        else:
            month = (first + pd.offsets.MonthBegin(1)).normalize()
            while month + pd.offsets.MonthBegin(1) <= end_all:
                start = max(first, month - pd.DateOffset(days=lookback_days))
                nxt = month + pd.offsets.MonthBegin(1)
                cutoffs.append(Cutoff(f"monthly {name}", start, month, nxt, "1 month"))
                month = nxt
    return cutoffs


def rolling_backtest(
    incidents: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    *,
    methods: Sequence[str] = METHODS,
    coverages: Sequence[float] = COVERAGES,
    cell_size_m: float = 150.0,
    schedule: Sequence[Cutoff] | None = None,
    progress: Callable[[float, str], None] | None = None,
) -> pd.DataFrame:
    """Return one row per (cut-off, horizon, method, coverage) with the four measures.

    Parameters
    ----------
    incidents
        Incidents with ``x``/``y`` (m) and ``occurred_at``.
    beats
        Beat polygons: the study area.
    methods
        Any of :data:`METHODS`; the naive baseline is always added.
    coverages
        Shares of the study area (0.01 = 1%).
    cell_size_m
        Evaluation grid cell (m).
    schedule
        Cut-offs (default: :func:`backtest_schedule` of the incidents).
    progress
        Called with (share done, message) after each cut-off.
    """
    unknown = sorted(set(methods) - set(METHODS))
    if unknown:
        msg = f"methods: unknown {unknown}; choose from {list(METHODS)}"
        raise ValueError(msg)
    for c in coverages:
        if not 0 < c <= 1:
            msg = f"coverages must be in (0, 1], got {c!r}"
            raise ValueError(msg)
    methods = ["naive", *[m for m in methods if m != "naive"]]
    located = incidents.dropna(subset=[schema.X, schema.Y]).reset_index(drop=True)
    times = pd.DatetimeIndex(located[schema.OCCURRED_AT])
    if schedule is None:
        schedule = backtest_schedule(located[schema.OCCURRED_AT])
    grid, mask = study_grid(beats, cell_size_m)
    x = located[schema.X].to_numpy()
    y = located[schema.Y].to_numpy()
    rows = []
    cached: dict[tuple, dict[str, np.ndarray]] = {}
    for i, cut in enumerate(schedule):
        tz = times.tz
        train_sel = (times >= _tz(cut.train_start, tz)) & (times < _tz(cut.cutoff, tz))
        test_sel = (times >= _tz(cut.cutoff, tz)) & (times < _tz(cut.end, tz))
        train = located[train_sel]
        if len(train) == 0:
            continue
        train_counts = grid.counts(x[train_sel], y[train_sel])
        test_counts = grid.counts(x[test_sel], y[test_sel])
        key = (cut.train_start, cut.cutoff)
        if key not in cached:  # horizons of one cut-off share the fitted scores
            cached = {key: {m: method_scores(m, train, grid, mask) for m in methods}}
        for method in methods:
            for row in evaluate_scores(
                cached[key][method], train_counts, test_counts, mask, coverages
            ):
                rows.append(
                    {
                        "segment": cut.segment,
                        "cutoff": cut.cutoff.date().isoformat(),
                        "horizon": cut.horizon,
                        "method": method,
                        "n_train": len(train),
                        **row,
                    }
                )
        if progress is not None:
            progress((i + 1) / len(schedule), f"cut-off {cut.cutoff.date()} ({cut.horizon})")
    return pd.DataFrame(rows)


def _tz(value: pd.Timestamp, tz: object) -> pd.Timestamp:
    return value.tz_localize(tz) if tz is not None and value.tzinfo is None else value


def summarize_backtest(results: pd.DataFrame) -> pd.DataFrame:
    """Return mean and standard deviation of each measure over the cut-offs.

    One row per (segment, horizon, coverage, method), with ``cutoffs`` (how many), ``<m>_mean``
    and ``<m>_sd`` for hit rate, PAI, PEI* and RRI (NaNs, e.g. RRI with no training hits,
    are skipped).
    """
    measures = ["hit_rate", "pai", "pei_star", "rri"]
    keys = ["segment", "horizon", "coverage", "method"]
    if results.empty:
        return pd.DataFrame(columns=[*keys, "cutoffs"])
    grouped = results.groupby(keys, sort=False)
    out = grouped.size().rename("cutoffs").to_frame()
    for m in measures:
        out[f"{m}_mean"] = grouped[m].mean()
        out[f"{m}_sd"] = grouped[m].std(ddof=1)
    out = out.reset_index()
    return out.sort_values(
        ["segment", "horizon", "coverage", "pai_mean"], ascending=[True, True, True, False]
    ).reset_index(drop=True)
