"""Crime forecasts on grid cells and beats: prospective near-repeat surface, Poisson boosting.

Every forecaster is a scikit-learn style estimator: ``__init__`` stores its keyword arguments,
``fit(X, *, grid, mask, cutoff)`` learns from the incidents strictly *before* ``cutoff`` (a local
midnight) and ``expected_`` holds the expected incidents per cell over the next
``horizon_days`` days. Internally all of them read one :class:`CountCube` (incidents per study
cell and calendar day), sliced at the cut-off, so nothing after the cut-off can leak in; the
backtest builds the cube once and calls :meth:`CellForecaster.fit_cube`.

Methods (see docs/evaluation.md for how they compare on a full year):

* ``naive``: the training counts per cell over the last ``lookback_days`` (the baseline).
* ``prospective``: a mix of a long-term density (the lookback's counts, optionally smoothed) and
  a near-repeat term (recent incidents, exponentially decayed in time and spread by a Gaussian
  in space), after Bowers, Johnson and Pease (2004). The near-repeat distance and time scales
  come from the Knox table (:func:`analysis.hotspots.knox_table`) of the last weeks before the
  cut-off; the mix weight and long-term smoothing are chosen by rolling validation on the last
  weeks of the training period.
* ``gbm``: scikit-learn's ``HistGradientBoostingRegressor(loss="poisson")`` on lagged counts of
  the cell and of its 450 m and 1,050 m neighbourhoods over 1 to 365 days, trained on earlier
  origins of the training period (after Flaxman et al. 2018); its size is chosen by rolling
  validation on the most recent training origin.

Beat-level expected counts with a 90% prediction interval (negative binomial, its dispersion
calibrated on the training weeks) come from :func:`beat_forecast`.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import geopandas as gpd
import numpy as np
import pandas as pd
from scipy import ndimage, optimize, stats
from sklearn.base import BaseEstimator
from sklearn.ensemble import HistGradientBoostingRegressor
from threadpoolctl import threadpool_limits

from analysis.evaluate import COVERAGES, evaluate_scores, study_grid
from analysis.hotspots import Grid, estimator_parameters, knox_table
from geodata import schema

__all__ = [
    "DEFAULT_METHOD",
    "FORECAST_METHODS",
    "CellForecaster",
    "CountCube",
    "NaiveForecaster",
    "PoissonGBMForecaster",
    "ProspectiveForecaster",
    "beat_forecast",
    "beat_interval_backtest",
    "compare_to_naive",
    "forecast_backtest",
    "forecast_cells",
    "knox_scales",
    "make_forecaster",
    "weekly_cutoffs",
]

logger = logging.getLogger(__name__)

#: Forecast methods, the baseline first.
FORECAST_METHODS = ("naive", "prospective", "gbm")
#: The method offered by default: the one that wins the year-long backtest (docs/evaluation.md).
DEFAULT_METHOD = "naive"


# --- the count cube ---------------------------------------------------------------------------
@dataclass
class CountCube:
    """Incidents per study cell and local calendar day.

    Attributes
    ----------
    grid, mask
        The grid and its study cells ((rows, cols) boolean).
    day0
        Local midnight (naive wall time) of day 0.
    counts
        (days, study cells) incidents of each day in each study cell.
    """

    grid: Grid
    mask: np.ndarray
    day0: pd.Timestamp
    counts: np.ndarray
    _csum: np.ndarray | None = field(default=None, repr=False)
    #: Results that depend only on the data before a day (e.g. Knox scales), shared by fits.
    cache: dict = field(default_factory=dict, repr=False)

    @classmethod
    def from_incidents(
        cls,
        incidents: pd.DataFrame,
        grid: Grid,
        mask: np.ndarray,
        *,
        day0: pd.Timestamp | None = None,
        n_days: int | None = None,
    ) -> CountCube:
        """Return the cube of located `incidents` (``x``, ``y``, ``occurred_at``) on `grid`.

        Parameters
        ----------
        incidents
            Incidents; those outside the study cells or the days are left out.
        grid, mask
            Grid and study cells.
        day0
            First day (default: the day of the first incident).
        n_days
            Number of days (default: up to the day of the last incident).
        """
        located = incidents.dropna(subset=[schema.X, schema.Y])
        local = _wall_days(located[schema.OCCURRED_AT])
        if day0 is None:
            if len(local) == 0:
                msg = "no located incidents: nothing to forecast from"
                raise ValueError(msg)
            day0 = local.min()
        day0 = pd.Timestamp(day0).normalize()
        day = ((local - day0) // pd.Timedelta(days=1)).to_numpy(dtype=np.int64)
        if n_days is None:
            n_days = int(day.max()) + 1 if len(day) else 1
        cells = np.flatnonzero(np.asarray(mask, bool).ravel())
        lookup = np.full(grid.n_rows * grid.n_cols, -1, np.int64)
        lookup[cells] = np.arange(len(cells))
        row, col = grid.cell_of(located[schema.X].to_numpy(), located[schema.Y].to_numpy())
        flat = np.where(row >= 0, row * grid.n_cols + col, 0)
        study = np.where(row >= 0, lookup[flat], -1)
        keep = (study >= 0) & (day >= 0) & (day < n_days)
        counts = np.bincount(
            day[keep] * len(cells) + study[keep], minlength=n_days * len(cells)
        ).reshape(n_days, len(cells))
        return cls(grid, np.asarray(mask, bool), day0, counts.astype(np.float64))

    @property
    def n_days(self) -> int:
        """Return the number of days."""
        return self.counts.shape[0]

    def day_of(self, when: pd.Timestamp) -> int:
        """Return the index of the local day starting at `when` (its wall-clock date)."""
        wall = pd.Timestamp(when)
        if wall.tzinfo is not None:
            wall = wall.tz_localize(None)
        return int((wall.normalize() - self.day0) // pd.Timedelta(days=1))

    def window(self, start: int, stop: int) -> np.ndarray:
        """Return the incidents per study cell over days ``[start, stop)`` (clipped to the cube)."""
        if self._csum is None:
            self._csum = np.vstack([np.zeros((1, self.counts.shape[1])), self.counts.cumsum(0)])
        a = min(max(start, 0), self.n_days)
        b = min(max(stop, 0), self.n_days)
        return self._csum[b] - self._csum[a] if b > a else np.zeros(self.counts.shape[1])

    def to_grid(self, values: np.ndarray) -> np.ndarray:
        """Return study-cell `values` as a (rows, cols) array (0 outside the study area)."""
        full = np.zeros(self.grid.n_rows * self.grid.n_cols)
        full[np.flatnonzero(self.mask.ravel())] = values
        return full.reshape(self.grid.n_rows, self.grid.n_cols)

    def from_grid(self, values: np.ndarray) -> np.ndarray:
        """Return the study cells of a (rows, cols) array."""
        return np.asarray(values).ravel()[np.flatnonzero(self.mask.ravel())]

    def smooth(self, values: np.ndarray, sigma_cells: float) -> np.ndarray:
        """Return study-cell `values` spread by a Gaussian of `sigma_cells` (mass kept in study)."""
        if sigma_cells <= 0:
            return np.asarray(values, dtype=float)
        spread = ndimage.gaussian_filter(self.to_grid(values), sigma_cells, mode="constant")
        return self.from_grid(spread)


def _wall_days(times: pd.Series) -> pd.Series:
    """Return the local calendar day (naive midnight) of each time."""
    when = pd.to_datetime(times)
    if getattr(when.dt, "tz", None) is not None:
        when = when.dt.tz_localize(None)
    return when.dt.normalize()


# --- forecasters ------------------------------------------------------------------------------
def _top_hits(
    score: np.ndarray, truth: np.ndarray, tiebreak: np.ndarray, shares: Sequence[float]
) -> float:
    """Return the share of `truth` caught by the top `shares` of cells, averaged over shares."""
    total = truth.sum()
    if total <= 0:
        return math.nan
    order = np.lexsort((np.arange(len(score)), -tiebreak, -score))
    caught = [truth[order[: max(1, round(s * len(score)))]].sum() / total for s in shares]
    return float(np.mean(caught))


class CellForecaster(BaseEstimator):
    """Base of the cell forecasters: ``fit`` builds the cube, ``fit_cube`` does the work.

    Attributes
    ----------
    expected_
        (rows, cols) expected incidents per cell over the horizon (0 outside the study area).
    grid_, mask_
        The grid and study cells.
    chosen_
        Hyperparameters chosen by validation (empty when none are tuned).
    """

    horizon_days: int
    lookback_days: int

    def fit(
        self,
        X: pd.DataFrame,
        y: None = None,
        *,
        grid: Grid | None = None,
        mask: np.ndarray | None = None,
        beats: gpd.GeoDataFrame | None = None,
        cutoff: pd.Timestamp | None = None,
    ) -> CellForecaster:
        """Fit on the incidents of `X` before `cutoff`; return self.

        Parameters
        ----------
        X
            Incidents with ``x``/``y`` (m) and ``occurred_at``.
        grid, mask
            Grid and study cells; or `beats`, whose 150 m study grid is used.
        beats
            Beat polygons (when `grid` is None).
        cutoff
            Local midnight that starts the forecast period (default: the day after the last
            incident). Incidents at or after it are ignored.
        """
        del y
        if grid is None:
            if beats is None:
                msg = "fit needs a grid and mask, or the beats"
                raise ValueError(msg)
            grid, mask = study_grid(beats, 150.0)
        if mask is None:
            mask = np.ones((grid.n_rows, grid.n_cols), bool)
        days = _wall_days(X[schema.OCCURRED_AT].dropna()) if len(X) else pd.Series([], "M8[ns]")
        if cutoff is None:
            if len(days) == 0:
                msg = "no incidents: nothing to forecast from"
                raise ValueError(msg)
            cutoff = days.max() + pd.Timedelta(days=1)
        cut = pd.Timestamp(cutoff)
        if cut.tzinfo is not None:
            cut = cut.tz_localize(None)
        cut = cut.normalize()
        day0 = cut - pd.Timedelta(days=int(self.lookback_days) + 91)  # + training origins
        n_days = int((cut - day0) // pd.Timedelta(days=1))
        before = X[_wall_days(X[schema.OCCURRED_AT]) < cut] if len(X) else X
        cube = CountCube.from_incidents(before, grid, mask, day0=day0, n_days=n_days)
        return self.fit_cube(cube, cube.n_days)

    def fit_cube(self, cube: CountCube, t: int) -> CellForecaster:
        """Fit on the days ``[0, t)`` of `cube` (never later ones); return self."""
        _check_positive("horizon_days", self.horizon_days)
        _check_positive("lookback_days", self.lookback_days)
        if t <= 0:
            msg = "the cut-off leaves no training days"
            raise ValueError(msg)
        self.grid_ = cube.grid
        self.mask_ = cube.mask
        self.chosen_: dict[str, object] = {}
        rate = self._fit(cube, t)
        self.study_expected_ = np.clip(rate, 0, None)
        self.expected_ = cube.to_grid(self.study_expected_)
        self.training_counts_ = cube.window(t - int(self.lookback_days), t)
        return self

    def _fit(self, cube: CountCube, t: int) -> np.ndarray:  # pragma: no cover - abstract
        raise NotImplementedError

    def predict(self, X: object = None) -> np.ndarray:
        """Return ``expected_`` (the forecast does not depend on `X`)."""
        del X
        return self.expected_


def _check_positive(name: str, value: object) -> None:
    if not isinstance(value, int | np.integer) or isinstance(value, bool) or value < 1:
        msg = f"{name} must be a whole number of days >= 1, got {value!r}"
        raise ValueError(msg)


@estimator_parameters
class NaiveForecaster(CellForecaster):
    """The baseline: the training counts per cell, scaled to the horizon.

    Parameters
    ----------
    horizon_days
        Forecast period (days).
    lookback_days
        Training days counted.
    """

    horizon_days: int = 7
    lookback_days: int = 365

    def _fit(self, cube: CountCube, t: int) -> np.ndarray:
        start = max(0, t - self.lookback_days)
        return cube.window(start, t) * self.horizon_days / max(t - start, 1)


def _decayed(cube: CountCube, t: int, tau_days: float, lookback_days: int) -> np.ndarray:
    """Return the incidents of days before `t`, weighted exp(-age / tau), per day of weight."""
    start = max(0, t - lookback_days)
    age = (t - 1 - np.arange(start, t)).astype(float)
    weight = np.ones_like(age) if math.isinf(tau_days) else np.exp(-age / tau_days)
    return weight @ cube.counts[start:t] / max(weight.sum(), 1e-12)


def knox_scales(
    incidents: pd.DataFrame | None,
    *,
    default_m: float = 200.0,
    default_days: float = 7.0,
) -> tuple[tuple[float, ...], tuple[float, ...]]:
    """Return the near-repeat distances (m) and times (days) the Knox table of `incidents` backs.

    Distances: the bands whose Knox ratio at the shortest time band is significantly above 1
    (p <= 0.05 and ratio >= 1.1); times: the bands significant at the shortest distance band.
    The defaults alone when nothing is significant or there are fewer than 50 incidents.
    """
    if incidents is None or len(incidents) < 50:
        return (default_m,), (default_days,)
    table = knox_table(incidents, permutations=19, random_state=0)
    significant = table[(table["p_value"] <= 0.05) & (table["ratio"] >= 1.1)]
    d_min, t_min = table["distance_m"].min(), table["time_days"].min()
    distances = sorted(significant.loc[significant["time_days"] == t_min, "distance_m"])
    times = sorted(significant.loc[significant["distance_m"] == d_min, "time_days"])
    return (
        tuple(float(d) for d in distances) or (default_m,),
        tuple(float(t) for t in times) or (default_days,),
    )


@estimator_parameters
class ProspectiveForecaster(CellForecaster):
    """Long-term density mixed with a time-decayed near-repeat term.

    rate = (1 - w) * long + w * short, both incidents per cell and day: ``long`` is the lookback's
    counts (exponentially decayed with `long_decay_days`, spread by a Gaussian of
    `long_sigma_m`); ``short`` the recent incidents weighted exp(-age / `near_days`), spread by a
    Gaussian of `near_m` / 2 (so most of the risk falls within `near_m`).

    Parameters
    ----------
    horizon_days, lookback_days
        Forecast period and training days (days).
    near_m, near_days
        Near-repeat distance (m) and time (days); ``"knox"`` tries every band the Knox table of
        the last `knox_days` of training finds significant (:func:`knox_scales`) and keeps the
        best on validation.
    weights
        Candidate mix weights w of the near-repeat term; the best on rolling validation wins.
    long_sigmas_m
        Candidate Gaussian spreads of the long-term density (m; 0 = none).
    long_decays_days
        Candidate long-term decays (days; ``inf`` = plain counts).
    validation_weeks
        Number of weekly validation origins (the last ones before the cut-off).
    knox_days
        Training days the Knox table is computed on.
    coverages
        Area shares the validation scores (mean share of incidents caught).
    """

    horizon_days: int = 7
    lookback_days: int = 365
    near_m: float | str = "knox"
    near_days: float | str = "knox"
    weights: tuple[float, ...] = (0.0, 0.1, 0.25, 0.5, 0.75)
    long_sigmas_m: tuple[float, ...] = (0.0, 75.0)
    long_decays_days: tuple[float, ...] = (math.inf, 120.0)
    validation_weeks: int = 4
    knox_days: int = 28
    coverages: tuple[float, ...] = COVERAGES

    def _scales(self, cube: CountCube, t: int) -> tuple[tuple[float, ...], tuple[float, ...]]:
        near_m, near_days = self.near_m, self.near_days
        distances: tuple[float, ...] = ()
        times: tuple[float, ...] = ()
        if near_m == "knox" or near_days == "knox":
            key = ("knox", t, self.knox_days)  # the horizons of a cut-off share the table
            if key not in cube.cache:
                cube.cache[key] = knox_scales(_recent_points(cube, t, self.knox_days))
            distances, times = cube.cache[key]
        if near_m != "knox":
            if not isinstance(near_m, int | float) or isinstance(near_m, bool) or near_m <= 0:
                msg = f"near_m must be > 0 m or 'knox', got {near_m!r}"
                raise ValueError(msg)
            distances = (float(near_m),)
        if near_days != "knox":
            if (
                not isinstance(near_days, int | float)
                or isinstance(near_days, bool)
                or near_days <= 0
            ):
                msg = f"near_days must be > 0 days or 'knox', got {near_days!r}"
                raise ValueError(msg)
            times = (float(near_days),)
        return distances, times

    def _rate(
        self, cube: CountCube, t: int, params: dict[str, float], memo: dict | None = None
    ) -> np.ndarray:
        memo = {} if memo is None else memo

        def term(tau: float, sigma_m: float) -> np.ndarray:
            key = (t, tau, sigma_m)
            if key not in memo:
                decayed = _decayed(cube, t, tau, self.lookback_days)
                memo[key] = cube.smooth(decayed, sigma_m / cube.grid.cell_size_m)
            return memo[key]

        long = term(params["long_decay_days"], params["long_sigma_m"])
        w = params["weight"]
        if w == 0:
            return long * self.horizon_days
        short = term(params["near_days"], params["near_m"] / 2)
        return ((1 - w) * long + w * short) * self.horizon_days

    def _fit(self, cube: CountCube, t: int) -> np.ndarray:
        distances, times = self._scales(cube, t)
        candidates = [
            {
                "weight": w,
                "long_sigma_m": s,
                "long_decay_days": d,
                "near_m": near_m,
                "near_days": near_days,
            }
            for w in self.weights
            for s in self.long_sigmas_m
            for d in self.long_decays_days
            for near_m in (distances if w else distances[:1])
            for near_days in (times if w else times[:1])
        ]
        origins = _origins(t, self.horizon_days, self.validation_weeks, step=7, min_history=7)
        best, best_score = candidates[0], -math.inf
        memo: dict = {}
        if len(candidates) > 1 and origins:
            truths = {s: cube.window(s, s + self.horizon_days) for s in origins}
            ties = {s: cube.window(s - self.lookback_days, s) for s in origins}
            for params in candidates:
                scores = [
                    _top_hits(self._rate(cube, s, params, memo), truths[s], ties[s], self.coverages)
                    for s in origins
                ]
                score = float(np.nanmean(scores)) if np.isfinite(scores).any() else -math.inf
                if score > best_score + 1e-12:
                    best, best_score = params, score
        self.chosen_ = dict(best)
        return self._rate(cube, t, best, memo)


def _recent_points(cube: CountCube, t: int, days: int) -> pd.DataFrame:
    """Return one pseudo-incident per recent incident (cell centre, midday of its day)."""
    start = max(0, t - days)
    block = cube.counts[start:t]
    d, c = np.nonzero(block)
    reps = block[d, c].astype(np.int64)
    d, c = np.repeat(d, reps), np.repeat(c, reps)
    xs, ys = cube.grid.centres()
    cells = np.flatnonzero(cube.mask.ravel())
    when = cube.day0 + pd.to_timedelta(start + d, unit="D") + pd.Timedelta(hours=12)
    return pd.DataFrame(
        {
            schema.X: xs.ravel()[cells[c]],
            schema.Y: ys.ravel()[cells[c]],
            schema.OCCURRED_AT: when,
        }
    )


def _origins(t: int, horizon: int, n: int, *, step: int, min_history: int) -> list[int]:
    """Return up to `n` training origins s (latest first) with ``s + horizon <= t``."""
    out: list[int] = []
    s = t - horizon
    while len(out) < n and s >= min_history:
        out.append(s)
        s -= step
    return out


#: Windows (days) of the lagged counts the boosting model reads.
GBM_WINDOWS = (1, 3, 7, 28, 91, 365)
#: Neighbourhood sizes (cells per side) of the lagged counts: the cell, 3x3, 7x7.
GBM_SCALES = (1, 3, 7)


@estimator_parameters
class PoissonGBMForecaster(CellForecaster):
    """Gradient boosting with a Poisson loss on lagged counts at several scales and lags.

    Features of a cell at an origin s: its incidents per day over the last 1, 3, 7, 28, 91 and
    365 days (those available), for the cell itself and the mean over its 3x3 and 7x7
    neighbourhoods. Training rows: every study cell at `n_origins` earlier origins (weekly
    apart, the latest ending at the cut-off), the target its incidents over the next
    `horizon_days`. Model size: the candidate in `candidates` that catches most incidents at
    `coverages` on the most recent origin when trained on the others.

    Parameters
    ----------
    horizon_days, lookback_days
        Forecast period and training days.
    n_origins
        Training origins.
    candidates
        ``HistGradientBoostingRegressor`` settings tried (max_iter, learning_rate,
        max_leaf_nodes, min_samples_leaf).
    coverages
        Area shares of the validation score.
    random_state
        Seed of the booster.
    n_threads
        OpenMP threads of the booster (None = all; 1 avoids oversubscription on a shared
        machine).
    """

    horizon_days: int = 7
    lookback_days: int = 365
    n_origins: int = 6
    candidates: tuple[tuple[int, float, int, int], ...] = (
        (60, 0.1, 15, 200),
        (120, 0.05, 31, 100),
    )
    coverages: tuple[float, ...] = COVERAGES
    random_state: int | None = 0
    n_threads: int | None = 1

    def features(self, cube: CountCube, s: int) -> np.ndarray:
        """Return the (study cells, features) lagged counts at origin `s` (days before s)."""
        columns = []
        for w in GBM_WINDOWS:
            w_eff = min(w, s, self.lookback_days)
            rate = cube.window(s - w_eff, s) / max(w_eff, 1)
            full = cube.to_grid(rate)
            for size in GBM_SCALES:
                spread = full if size == 1 else ndimage.uniform_filter(full, size, mode="constant")
                columns.append(cube.from_grid(spread))
        return np.column_stack(columns)

    def _model(
        self, candidate: tuple[int, float, int, int], n_rows: int
    ) -> HistGradientBoostingRegressor:
        max_iter, rate, leaves, leaf = candidate
        return HistGradientBoostingRegressor(
            loss="poisson",
            max_iter=max_iter,
            learning_rate=rate,
            max_leaf_nodes=leaves,
            min_samples_leaf=max(5, min(leaf, n_rows // 100)),  # small grids: smaller leaves
            early_stopping=False,
            random_state=self.random_state,
        )

    def _fit(self, cube: CountCube, t: int) -> np.ndarray:
        if self.n_threads is None:
            return self._fit_boosted(cube, t)
        with threadpool_limits(self.n_threads, user_api="openmp"):
            return self._fit_boosted(cube, t)

    def _fit_boosted(self, cube: CountCube, t: int) -> np.ndarray:
        h = int(self.horizon_days)
        origins = _origins(t, h, self.n_origins, step=7, min_history=7)
        current = self.features(cube, t)
        if not origins:  # too little history: fall back on the counts
            self.chosen_ = {"fallback": "counts"}
            return current[:, GBM_WINDOWS.index(28) * len(GBM_SCALES)] * h
        # training rows: cells with an incident within 7x7 cells in the lookback (the others
        # have all-zero features at every origin and are predicted alike)
        active = ndimage.uniform_filter(
            cube.to_grid(cube.window(t - self.lookback_days, t)), 7, mode="constant"
        )
        rows = np.flatnonzero(cube.from_grid(active) > 0)
        X = [self.features(cube, s)[rows] for s in origins]
        y = [cube.window(s, s + h)[rows] for s in origins]
        candidate = self.candidates[0]
        if len(self.candidates) > 1 and len(origins) > 2:
            best = -math.inf
            Xtr, ytr = np.vstack(X[1:4]), np.concatenate(y[1:4])  # the 3 origins before
            for cand in self.candidates:
                if ytr.sum() == 0:
                    break
                pred = self._model(cand, len(ytr)).fit(Xtr, ytr).predict(X[0])
                score = _top_hits(pred, y[0], X[0][:, -3], self.coverages)
                if score > best + 1e-12:
                    best, candidate = score, cand
        y_all = np.concatenate(y)
        if y_all.sum() == 0:
            self.chosen_ = {"fallback": "counts"}
            return current[:, GBM_WINDOWS.index(28) * len(GBM_SCALES)] * h
        model = self._model(candidate, len(y_all)).fit(np.vstack(X), y_all)
        self.model_ = model
        self.chosen_ = dict(
            zip(
                ("max_iter", "learning_rate", "max_leaf_nodes", "min_samples_leaf"),
                candidate,
                strict=False,
            )
        )
        return model.predict(current)


def make_forecaster(method: str, *, horizon_days: int = 7, **options: object) -> CellForecaster:
    """Return the forecaster of `method` (one of :data:`FORECAST_METHODS`)."""
    classes: dict[str, type[CellForecaster]] = {
        "naive": NaiveForecaster,
        "prospective": ProspectiveForecaster,
        "gbm": PoissonGBMForecaster,
    }
    if method not in classes:
        msg = f"method must be one of {list(FORECAST_METHODS)}, got {method!r}"
        raise ValueError(msg)
    return classes[method](horizon_days=horizon_days, **options)


# --- the backtest -----------------------------------------------------------------------------
def weekly_cutoffs(cube: CountCube, *, first_day: int = 28, horizon_days: int = 7) -> list[int]:
    """Return the day indices of weekly cut-offs from `first_day` while the horizon fits."""
    return list(range(first_day, cube.n_days - horizon_days + 1, 7))


def forecast_backtest(
    incidents: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    *,
    methods: Sequence[str] = FORECAST_METHODS,
    horizons_days: Sequence[int] = (1, 7),
    coverages: Sequence[float] = COVERAGES,
    cell_size_m: float = 150.0,
    first_day: int = 28,
    lookback_days: int = 365,
    progress: Callable[[float, str], None] | None = None,
) -> pd.DataFrame:
    """Return one row per (cut-off, horizon, method, coverage): hit rate, PAI, PEI*, RRI.

    Weekly cut-offs start `first_day` days after the first incident's day; every horizon uses
    the cut-offs at which its whole period lies in the data, so the last cut-off of the 7-day
    horizon is the last whole week. The tie-break of the ranking (training counts) and the
    measures are those of :func:`analysis.evaluate.evaluate_scores`.
    """
    unknown = sorted(set(methods) - set(FORECAST_METHODS))
    if unknown:
        msg = f"methods: unknown {unknown}; choose from {list(FORECAST_METHODS)}"
        raise ValueError(msg)
    methods = ["naive", *[m for m in methods if m != "naive"]]
    grid, mask = study_grid(beats, cell_size_m)
    cube = CountCube.from_incidents(incidents, grid, mask)
    plan = [
        (h, t)
        for h in horizons_days
        for t in weekly_cutoffs(cube, first_day=first_day, horizon_days=h)
    ]
    rows = []
    for i, (h, t) in enumerate(plan):
        truth = cube.to_grid(cube.window(t, t + h))
        train = cube.to_grid(cube.window(t - lookback_days, t))
        for method in methods:
            model = make_forecaster(method, horizon_days=h, lookback_days=lookback_days)
            model.fit_cube(cube, t)
            for row in evaluate_scores(model.expected_, train, truth, mask, coverages):
                rows.append(
                    {
                        "cutoff": (cube.day0 + pd.Timedelta(days=t)).date().isoformat(),
                        "horizon_days": h,
                        "method": method,
                        "chosen": repr(model.chosen_),
                        **row,
                    }
                )
        if progress is not None:
            progress((i + 1) / len(plan), f"cut-off day {t}, horizon {h} d")
    return pd.DataFrame(rows)


def compare_to_naive(
    results: pd.DataFrame, *, n_boot: int = 2000, random_state: int = 0
) -> pd.DataFrame:
    """Return each method against the naive baseline at the same cut-offs.

    One row per (horizon, coverage, method): mean PAI of both, the mean of the per-cut-off PAI
    ratio (over the cut-offs where the baseline's PAI is above 0; ``ratio_cutoffs`` of them)
    with a percentile bootstrap 95% interval (cut-offs resampled), the share of cut-offs
    where the method is higher, and the two-sided Wilcoxon signed-rank p-value of the paired
    PAIs (``scipy.stats.wilcoxon``; NaN when every pair is equal).
    """
    rng = np.random.default_rng(random_state)
    out = []
    keys = ["horizon_days", "coverage"]
    if results.empty:
        return pd.DataFrame(columns=[*keys, "method", "cutoffs", "ratio_mean", "wilcoxon_p"])
    for (h, cov), group in results.groupby(keys, sort=True):
        wide = group.pivot_table(index="cutoff", columns="method", values="pai", aggfunc="first")
        if "naive" not in wide:
            continue
        for method in [m for m in wide.columns if m != "naive"]:
            pair = wide[["naive", method]].dropna()
            a, b = pair[method].to_numpy(), pair["naive"].to_numpy()
            ratio = a[b > 0] / b[b > 0]  # cut-offs where the baseline caught nothing: no ratio
            boot = rng.integers(0, len(ratio), size=(n_boot, len(ratio)))
            means = ratio[boot].mean(axis=1) if len(ratio) else np.array([math.nan])
            diff = a - b
            p = float(stats.wilcoxon(a, b).pvalue) if len(diff) and np.any(diff != 0) else math.nan
            out.append(
                {
                    "horizon_days": int(h),
                    "coverage": float(cov),
                    "method": method,
                    "cutoffs": len(pair),
                    "pai_method": float(a.mean()) if len(a) else math.nan,
                    "pai_naive": float(b.mean()) if len(b) else math.nan,
                    "ratio_cutoffs": len(ratio),
                    "ratio_mean": float(ratio.mean()) if len(ratio) else math.nan,
                    "ratio_lo": float(np.percentile(means, 2.5)),
                    "ratio_hi": float(np.percentile(means, 97.5)),
                    "share_higher": float((diff > 0).mean()) if len(diff) else math.nan,
                    "wilcoxon_p": p,
                }
            )
    return pd.DataFrame(out)


# --- beats: expected counts with a prediction interval ----------------------------------------
def _beat_cube(incidents: pd.DataFrame, beat_ids: Sequence[str]) -> tuple[np.ndarray, pd.Timestamp]:
    days = _wall_days(incidents[schema.OCCURRED_AT])
    day0 = days.min()
    d = ((days - day0) // pd.Timedelta(days=1)).to_numpy(np.int64)
    ids = pd.Categorical(incidents[schema.BEAT], categories=list(beat_ids))
    code = np.asarray(ids.codes, np.int64)
    keep = code >= 0
    n_days = int(d.max()) + 1
    counts = np.bincount(
        d[keep] * len(beat_ids) + code[keep], minlength=n_days * len(beat_ids)
    ).reshape(n_days, len(beat_ids))
    return counts.astype(float), day0


def _nb_interval(mu: np.ndarray, size: float, level: float) -> tuple[np.ndarray, np.ndarray]:
    a = (1 - level) / 2
    if math.isinf(size):
        return stats.poisson.ppf(a, mu), stats.poisson.ppf(1 - a, mu)
    p = size / (size + np.maximum(mu, 1e-9))
    return stats.nbinom.ppf(a, size, p), stats.nbinom.ppf(1 - a, size, p)


def _fit_size(mu: np.ndarray, y: np.ndarray) -> float:
    """Return the negative binomial size (1/dispersion) by maximum likelihood (inf = Poisson)."""
    mu = np.maximum(mu, 1e-6)

    def nll(log_size: float) -> float:
        r = math.exp(log_size)
        return -float(stats.nbinom.logpmf(y, r, r / (r + mu)).sum())

    res = optimize.minimize_scalar(nll, bounds=(-2.0, 9.0), method="bounded")
    return math.inf if res.x > 8.9 else math.exp(res.x)


def _beat_means(counts: np.ndarray, t: int, half_life: float, horizon: int) -> np.ndarray:
    age = (t - 1 - np.arange(t)).astype(float)
    w = np.exp(-age * math.log(2) / half_life)
    return w @ counts[:t] / w.sum() * horizon


def beat_forecast(
    incidents: pd.DataFrame,
    beat_ids: Sequence[str],
    *,
    cutoff: pd.Timestamp | None = None,
    horizon_days: int = 7,
    level: float = 0.9,
    half_lives_days: tuple[float, ...] = (14.0, 28.0, 56.0, 112.0),
    validation_weeks: int = 12,
) -> pd.DataFrame:
    """Return each beat's expected incidents over the horizon with a `level` prediction interval.

    The expected count is the beat's exponentially weighted daily mean (the half-life with the
    smallest Poisson deviance over the last `validation_weeks` weekly origins before the
    cut-off) times `horizon_days`; the interval is negative binomial with its size fitted by
    maximum likelihood on the same validation weeks. Only incidents before the cut-off are read.

    Returns
    -------
    DataFrame
        ``beat, expected, lower, upper`` (interval bounds inclusive), with ``half_life_days``
        and ``nb_size`` in ``attrs``.
    """
    _check_positive("horizon_days", horizon_days)
    if not 0 < level < 1:
        msg = f"level must be in (0, 1), got {level!r}"
        raise ValueError(msg)
    beat_ids = [str(b) for b in beat_ids]
    if cutoff is not None:
        cut = pd.Timestamp(cutoff)
        cut = (cut.tz_localize(None) if cut.tzinfo else cut).normalize()
        incidents = incidents[_wall_days(incidents[schema.OCCURRED_AT]) < cut]
    if len(incidents) == 0:
        msg = "no incidents before the cut-off: nothing to forecast from"
        raise ValueError(msg)
    counts, day0 = _beat_cube(incidents, beat_ids)
    t = counts.shape[0] if cutoff is None else int((cut - day0) // pd.Timedelta(days=1))
    if t > counts.shape[0]:
        counts = np.vstack([counts, np.zeros((t - counts.shape[0], counts.shape[1]))])
    half_life, size = _tune_beats(counts, t, horizon_days, half_lives_days, validation_weeks)
    mu = _beat_means(counts, t, half_life, horizon_days)
    lower, upper = _nb_interval(mu, size, level)
    out = pd.DataFrame({schema.BEAT: beat_ids, "expected": mu, "lower": lower, "upper": upper})
    out.attrs.update({"half_life_days": half_life, "nb_size": size, "level": level})
    return out


def _tune_beats(
    counts: np.ndarray, t: int, h: int, half_lives: Sequence[float], weeks: int
) -> tuple[float, float]:
    origins = _origins(t, h, weeks, step=7, min_history=14)
    if not origins:
        return float(half_lives[-1]), math.inf
    best, best_dev = half_lives[0], math.inf
    for hl in half_lives:
        dev = 0.0
        for s in origins:
            mu = np.maximum(_beat_means(counts, s, hl, h), 1e-9)
            y = counts[s : s + h].sum(0)
            dev += float(np.sum(mu - y + np.where(y > 0, y * np.log(np.maximum(y, 1) / mu), 0)))
        if dev < best_dev:
            best, best_dev = hl, dev
    mu = np.concatenate([_beat_means(counts, s, best, h) for s in origins])
    y = np.concatenate([counts[s : s + h].sum(0) for s in origins])
    return float(best), _fit_size(mu, y)


def beat_interval_backtest(
    incidents: pd.DataFrame,
    beat_ids: Sequence[str],
    *,
    horizon_days: int = 7,
    level: float = 0.9,
    first_day: int = 28,
) -> pd.DataFrame:
    """Return, per weekly cut-off and beat, the forecast interval and the actual count.

    Columns ``cutoff, beat, expected, lower, upper, actual, inside``; the mean of ``inside`` is
    the interval's empirical coverage.
    """
    beat_ids = [str(b) for b in beat_ids]
    counts, day0 = _beat_cube(incidents, beat_ids)
    frames = []
    for t in range(first_day, counts.shape[0] - horizon_days + 1, 7):
        half_life, size = _tune_beats(counts, t, horizon_days, (14.0, 28.0, 56.0, 112.0), 12)
        mu = _beat_means(counts, t, half_life, horizon_days)
        lower, upper = _nb_interval(mu, size, level)
        actual = counts[t : t + horizon_days].sum(0)
        frames.append(
            pd.DataFrame(
                {
                    "cutoff": (day0 + pd.Timedelta(days=t)).date().isoformat(),
                    schema.BEAT: beat_ids,
                    "expected": mu,
                    "lower": lower,
                    "upper": upper,
                    "actual": actual,
                    "inside": (actual >= lower) & (actual <= upper),
                }
            )
        )
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


# --- the map ----------------------------------------------------------------------------------
def forecast_cells(
    incidents: pd.DataFrame,
    beats: gpd.GeoDataFrame,
    method: str,
    *,
    horizon_days: int = 7,
    cutoff: pd.Timestamp | None = None,
    cell_size_m: float = 150.0,
    coverages: Sequence[float] = COVERAGES,
) -> tuple[CellForecaster, gpd.GeoDataFrame]:
    """Fit `method` on the incidents and return it and the study cells with their forecast.

    Returns
    -------
    model, cells
        ``cells``: one polygon per study cell with ``expected`` incidents over the horizon,
        ``rank`` (1 = hottest) and ``top_share`` (the smallest of `coverages` whose top cells
        include it, else NaN), in the beats' CRS.
    """
    grid, mask = study_grid(beats, cell_size_m)
    model = make_forecaster(method, horizon_days=horizon_days)
    model.fit(incidents, grid=grid, mask=mask, cutoff=cutoff)
    cells = grid.cells(mask, beats.crs)
    expected = model.expected_[cells["row"], cells["col"]]
    tie = model.training_counts_
    order = np.lexsort((np.arange(len(expected)), -tie, -expected))
    rank = np.empty(len(order), np.int64)
    rank[order] = np.arange(1, len(order) + 1)
    cells["expected"] = expected
    cells["rank"] = rank
    top = np.full(len(cells), np.nan)
    for share in sorted(coverages, reverse=True):
        top[rank <= max(1, round(share * len(cells)))] = share
    cells["top_share"] = top
    return model, cells
