"""Forecasts: planted near-repeats, stationary data, leakage, hand-checked measures, intervals."""

from __future__ import annotations

import math

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from scipy import stats

from analysis import forecast
from analysis.evaluate import study_grid
from geodata import schema

TZ = "Europe/Berlin"  # deliberately neither Chicago nor Seattle
CELL = 150.0


def square_beats(n_cells: int = 10) -> gpd.GeoDataFrame:
    """One beat: a square of n x n 150 m cells in a UTM zone."""
    side = n_cells * CELL
    return gpd.GeoDataFrame(
        {schema.BEAT: ["A1"], schema.SECTOR: ["A"], schema.DISTRICT: ["1"]},
        geometry=[shapely.box(0, 0, side, side)],
        crs="EPSG:32633",
    )


def incidents_from(cells: list[int], days: list[int], rng: np.random.Generator) -> pd.DataFrame:
    """Incidents at random points inside cells (index r * 10 + c) on days since 2021-03-01."""
    cells_arr = np.asarray(cells, np.int64)
    row, col = cells_arr // 10, cells_arr % 10
    x = (col + rng.uniform(0.1, 0.9, len(cells_arr))) * CELL
    y = (row + rng.uniform(0.1, 0.9, len(cells_arr))) * CELL
    start = pd.Timestamp("2021-03-01", tz=TZ)
    when = [
        start + pd.Timedelta(days=int(d)) + pd.Timedelta(hours=float(h))
        for d, h in zip(days, rng.uniform(0, 23.9, len(cells_arr)), strict=True)
    ]
    return pd.DataFrame(
        {
            schema.X: x,
            schema.Y: y,
            schema.OCCURRED_AT: pd.DatetimeIndex(when),
            schema.BEAT: "A1",
        }
    )


def near_repeat_data(n_days: int = 150, seed: int = 0) -> tuple[pd.DataFrame, dict[int, int]]:
    """Chronic cells (0.4 a day) plus a new burst cell every 7 days (3 a day for 14 days)."""
    rng = np.random.default_rng(seed)
    chronic = [11, 22, 33, 44, 55]
    cells: list[int] = []
    days: list[int] = []
    bursts: dict[int, int] = {}
    others = [c for c in range(100) if c not in chronic]
    for day in range(n_days):
        for c in chronic:
            k = rng.poisson(0.4)
            cells += [c] * k
            days += [day] * k
        k = rng.poisson(3.0)  # background, anywhere
        cells += list(rng.integers(0, 100, k))
        days += [day] * k
        if day % 7 == 0:
            bursts[day] = int(rng.choice(others))
    for start, c in bursts.items():
        for day in range(start, min(start + 14, n_days)):
            k = rng.poisson(3.0)
            cells += [c] * k
            days += [day] * k
    return incidents_from(cells, days, rng), bursts


def stationary_data(n_days: int = 120, seed: int = 1) -> pd.DataFrame:
    """A fixed intensity per cell (a few hot cells, a gradient), no near-repeats."""
    rng = np.random.default_rng(seed)
    rate = np.linspace(0.01, 0.2, 100)
    rate[[7, 48, 93]] = 1.0
    rng.shuffle(rate)
    counts = rng.poisson(rate, size=(n_days, 100))
    day, cell = np.nonzero(counts)
    reps = counts[day, cell]
    return incidents_from(list(np.repeat(cell, reps)), list(np.repeat(day, reps)), rng)


def cutoff_of(day: int) -> pd.Timestamp:
    return pd.Timestamp("2021-03-01", tz=TZ) + pd.Timedelta(days=day)


def top_cells(model: forecast.CellForecaster, k: int) -> set[int]:
    """Return the flat index (r * 10 + c) of the k highest cells of a 10 x 10 forecast."""
    rows, cols = np.nonzero(model.mask_)
    xs, ys = model.grid_.centres()
    numbers = (ys[rows, cols] // CELL).astype(int) * 10 + (xs[rows, cols] // CELL).astype(int)
    values = model.expected_[rows, cols]
    return set(numbers[np.argsort(-values, kind="stable")[:k]].tolist())


# --- planted near-repeat cluster --------------------------------------------------------------
@pytest.mark.parametrize("method", ["prospective", "gbm"])
def test_planted_near_repeat_burst_is_the_hottest_cell(method):
    incidents, bursts = near_repeat_data()
    beats = square_beats()
    grid, mask = study_grid(beats, CELL)
    start = 140  # a burst started on day 140; the cut-off is 3 days into it
    options = {"n_origins": 16} if method == "gbm" else {}  # a small grid: more origins
    model = forecast.make_forecaster(method, horizon_days=7, **options)
    model.fit(incidents, grid=grid, mask=mask, cutoff=cutoff_of(start + 3))
    # the two running bursts (3 and 10 days in) are the two hottest cells
    assert top_cells(model, 2) == {bursts[start], bursts[start - 7]}, model.chosen_
    naive = forecast.make_forecaster("naive", horizon_days=7)
    naive.fit(incidents, grid=grid, mask=mask, cutoff=cutoff_of(start + 3))
    assert bursts[start] not in top_cells(naive, 3)  # the baseline misses it: chronic cells


@pytest.mark.slow
def test_backtest_on_planted_bursts_beats_naive():
    incidents, _ = near_repeat_data()
    results = forecast.forecast_backtest(
        incidents,
        square_beats(),
        methods=["naive", "prospective"],
        horizons_days=[7],
        first_day=31,  # cut-offs 3 days into a burst
    )
    comparison = forecast.compare_to_naive(results)
    one = comparison[comparison["coverage"] == 0.02].iloc[0]  # 2 cells: the 2 running bursts
    assert one["cutoffs"] >= 12
    assert one["ratio_lo"] > 1.0
    assert one["wilcoxon_p"] < 0.01


def test_knox_scales_find_the_planted_near_repeats():
    incidents, _ = near_repeat_data()
    beats = square_beats()
    grid, mask = study_grid(beats, CELL)
    cube = forecast.CountCube.from_incidents(incidents, grid, mask)
    recent = forecast._recent_points(cube, 140, 28)
    assert len(recent) == cube.window(112, 140).sum()
    distances, times = forecast.knox_scales(recent)
    assert 100.0 in distances  # same-cell pairs: the shortest band
    assert 7.0 in times  # bursts last 10 days
    assert forecast.knox_scales(recent.iloc[:10]) == ((200.0,), (7.0,))  # too few: defaults


# --- a stationary pattern ---------------------------------------------------------------------
@pytest.mark.slow
@pytest.mark.parametrize("method", ["prospective", "gbm"])
def test_stationary_pattern_no_worse_than_naive_beyond_noise(method):
    incidents = stationary_data()
    results = forecast.forecast_backtest(
        incidents, square_beats(), methods=["naive", method], horizons_days=[7], first_day=35
    )
    wide = results[results["coverage"] == 0.05].pivot_table(
        index="cutoff", columns="method", values="pai"
    )
    diff = (wide[method] - wide["naive"]).to_numpy()
    se = diff.std(ddof=1) / math.sqrt(len(diff))
    assert len(diff) >= 10
    assert diff.mean() >= -2 * se - 1e-9


# --- leakage ----------------------------------------------------------------------------------
@pytest.mark.parametrize("method", forecast.FORECAST_METHODS)
def test_shuffling_the_test_period_does_not_change_the_forecast(method):
    incidents, _ = near_repeat_data(n_days=120)
    grid, mask = study_grid(square_beats(), CELL)
    cut = cutoff_of(100)
    after = incidents[schema.OCCURRED_AT] >= cut
    rng = np.random.default_rng(5)
    shuffled = incidents.copy()
    shuffled.loc[after, schema.X] = rng.permutation(shuffled.loc[after, schema.X].to_numpy())
    shuffled.loc[after, schema.Y] = rng.uniform(0, 1500, int(after.sum()))
    extra = incidents_from([0] * 50, [101] * 50, rng)  # a burst after the cut-off
    shuffled = pd.concat([shuffled, extra], ignore_index=True)
    a = forecast.make_forecaster(method).fit(incidents, grid=grid, mask=mask, cutoff=cut)
    b = forecast.make_forecaster(method).fit(shuffled, grid=grid, mask=mask, cutoff=cut)
    np.testing.assert_array_equal(a.expected_, b.expected_)
    # and the data after the cut-off does change what the next cut-off sees
    c = forecast.make_forecaster(method).fit(shuffled, grid=grid, mask=mask, cutoff=cutoff_of(108))
    assert not np.array_equal(a.expected_, c.expected_)


# --- measures by hand on a tiny grid ----------------------------------------------------------
def test_backtest_measures_by_hand_on_a_tiny_grid():
    # 2 x 2 study cells (300 m square), 14 days: cell 0 has 2 a day, cell 1 one every other day,
    # day 7-13: cell 3 gets 3 incidents on day 8 only
    beats = gpd.GeoDataFrame(
        {schema.BEAT: ["B"]}, geometry=[shapely.box(0, 0, 300, 300)], crs="EPSG:32633"
    )
    rng = np.random.default_rng(0)
    cells, days = [], []
    for d in range(14):
        cells += [0, 0]
        days += [d, d]
        if d % 2 == 0:
            cells.append(1)
            days.append(d)
    cells += [11, 11, 11]  # cell (1, 1) in the 10-wide numbering
    days += [8, 8, 8]
    incidents = incidents_from(cells, days, rng)
    results = forecast.forecast_backtest(
        incidents,
        beats,
        methods=["naive"],
        horizons_days=[7],
        coverages=[0.25, 0.5],
        first_day=7,
    )
    assert results["cutoff"].tolist() == ["2021-03-08", "2021-03-08"]
    quarter, half = results.iloc[0], results.iloc[1]
    # training days 0-6: cell 0 has 14, cell 1 has 4; test days 7-13: cell 0 14, cell 1 3, cell 3 3
    assert quarter["cells"] == 1
    assert quarter["n_test"] == 20
    assert quarter["n_hits"] == 14
    assert quarter["pai"] == pytest.approx((14 / 20) / (1 / 4))
    assert quarter["pei_star"] == pytest.approx(1.0)
    assert quarter["rri"] == pytest.approx((14 / 14) / (20 / 18))
    assert half["n_hits"] == 17
    assert half["pai"] == pytest.approx((17 / 20) / (2 / 4))
    assert half["pei_star"] == pytest.approx(17 / 17)


def test_compare_to_naive_by_hand():
    cut = [f"2021-0{i}-01" for i in range(1, 7)]
    naive = [10.0, 10.0, 10.0, 10.0, 10.0, 10.0]
    other = [11.0, 12.0, 13.0, 11.5, 10.5, 12.5]
    results = pd.DataFrame(
        {
            "cutoff": cut * 2,
            "horizon_days": 7,
            "coverage": 0.01,
            "method": ["naive"] * 6 + ["gbm"] * 6,
            "pai": naive + other,
        }
    )
    row = forecast.compare_to_naive(results).iloc[0]
    ratios = np.array(other) / 10
    assert row["ratio_mean"] == pytest.approx(ratios.mean())
    assert row["share_higher"] == 1.0
    assert row["wilcoxon_p"] == pytest.approx(2 / 2**6)  # all 6 differences positive: exact
    assert ratios.min() <= row["ratio_lo"] <= ratios.mean() <= row["ratio_hi"] <= ratios.max()


# --- intervals --------------------------------------------------------------------------------
def test_interval_coverage_on_simulated_poisson_counts():
    rng = np.random.default_rng(3)
    rates = rng.uniform(1.0, 8.0, 40)  # incidents a day per beat
    n_days = 200
    counts = rng.poisson(rates, size=(n_days, 40))
    day, beat = np.nonzero(counts)
    reps = counts[day, beat]
    start = pd.Timestamp("2021-01-04", tz=TZ)
    incidents = pd.DataFrame(
        {
            schema.OCCURRED_AT: start + pd.to_timedelta(np.repeat(day, reps), unit="D"),
            schema.BEAT: [f"b{b:02d}" for b in np.repeat(beat, reps)],
        }
    )
    ids = [f"b{b:02d}" for b in range(40)]
    backtest = forecast.beat_interval_backtest(incidents, ids, horizon_days=7)
    coverage = backtest["inside"].mean()
    assert len(backtest) >= 40 * 20
    assert 0.86 <= coverage <= 0.94
    # the expected counts track the true weekly means
    last = backtest[backtest["cutoff"] == backtest["cutoff"].max()]
    np.testing.assert_allclose(last["expected"], 7 * rates, rtol=0.35)


def test_interval_is_poisson_quantiles_without_overdispersion():
    mu = np.array([3.0, 20.0, 55.0])
    lower, upper = forecast._nb_interval(mu, math.inf, 0.9)
    np.testing.assert_array_equal(lower, stats.poisson.ppf(0.05, mu))
    np.testing.assert_array_equal(upper, stats.poisson.ppf(0.95, mu))
    wide_lo, wide_hi = forecast._nb_interval(mu, 2.0, 0.9)  # overdispersed: wider
    assert (wide_hi - wide_lo >= upper - lower).all()


def test_beat_forecast_reads_nothing_after_the_cutoff():
    incidents, _ = near_repeat_data(n_days=120)
    incidents[schema.BEAT] = np.where(incidents[schema.X] < 750, "W1", "E1")
    cut = cutoff_of(100)
    a = forecast.beat_forecast(incidents, ["W1", "E1", "Z9"], cutoff=cut)
    before = incidents[incidents[schema.OCCURRED_AT] < cut]
    b = forecast.beat_forecast(before, ["W1", "E1", "Z9"], cutoff=cut)
    pd.testing.assert_frame_equal(a, b)
    z9 = a.set_index(schema.BEAT).loc["Z9"]
    assert (z9["expected"], z9["lower"], z9["upper"]) == (0, 0, 0)
    assert (a["lower"] <= a["expected"]).all()
    assert (a["expected"] <= a["upper"]).all()


# --- exports ----------------------------------------------------------------------------------
def test_parameters_are_checked():
    with pytest.raises(ValueError, match="horizon_days"):
        forecast.NaiveForecaster(horizon_days=0).fit(
            stationary_data(n_days=10), beats=square_beats()
        )
    with pytest.raises(ValueError, match="method must be one of"):
        forecast.make_forecaster("sepp")
