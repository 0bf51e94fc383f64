import math

import numpy as np
import pandas as pd
import pytest

from analysis.evaluate import (
    backtest_schedule,
    evaluate_scores,
    hit_rate,
    pai,
    pei_star,
    rolling_backtest,
    rri,
    summarize_backtest,
)


def test_measures_by_hand():
    # 30 of 120 incidents in 2 of 40 cells
    assert hit_rate(30, 120) == 0.25
    assert pai(30, 120, 2, 40) == pytest.approx(0.25 / 0.05)
    assert pei_star(30, 40) == 0.75
    # training: 50 of 200 in the area; test 30 of 120: (30 / 50) / (120 / 200) = 1.0
    assert rri(30, 120, 50, 200) == pytest.approx(1.0)
    assert math.isnan(pai(0, 0, 1, 10))
    assert math.isnan(rri(3, 10, 0, 20))


def test_evaluate_scores_on_a_tiny_grid():
    # 2 x 5 grid, 10 study cells; coverage 10% = 1 cell, 20% = 2 cells
    scores = np.array([[5.0, 1.0, 0.0, 0.0, 0.0], [4.0, 0.0, 0.0, 0.0, 0.0]])
    train = np.array([[6, 2, 1, 0, 0], [5, 0, 0, 0, 1]], dtype=float)  # 15 in all
    test = np.array([[3, 0, 0, 0, 0], [1, 4, 0, 0, 2]], dtype=float)  # 10 in all
    mask = np.ones((2, 5), bool)
    one, two = evaluate_scores(scores, train, test, mask, coverages=(0.1, 0.2))
    # 10%: cell (0,0): 3 hits of 10; PAI 0.3 / 0.1 = 3; best single cell has 4 -> PEI* 0.75;
    # RRI (3 / 6) / (10 / 15) = 0.75
    assert one["cells"] == 1
    assert one["hit_rate"] == pytest.approx(0.3)
    assert one["pai"] == pytest.approx(3.0)
    assert one["pei_star"] == pytest.approx(0.75)
    assert one["rri"] == pytest.approx(0.75)
    # 20%: cells (0,0) and (1,0): 4 hits; best two cells 4 + 3 = 7
    assert two["hit_rate"] == pytest.approx(0.4)
    assert two["pai"] == pytest.approx(2.0)
    assert two["pei_star"] == pytest.approx(4 / 7)
    assert two["rri"] == pytest.approx((4 / 11) / (10 / 15))


def test_ties_are_broken_by_training_counts_then_cell_order():
    scores = np.zeros((1, 4))
    train = np.array([[0, 2, 2, 5]], dtype=float)
    test = np.array([[9, 1, 0, 0]], dtype=float)
    (row,) = evaluate_scores(scores, train, test, np.ones((1, 4), bool), coverages=(0.5,))
    assert row["n_hits"] == 1  # cells 3 (train 5) then 1 (train 2, before cell 2)


def test_mask_limits_the_study_area():
    scores = np.array([[9.0, 1.0, 0.0, 0.0]])
    test = np.array([[5, 1, 0, 0]], dtype=float)
    mask = np.array([[False, True, True, True]])
    (row,) = evaluate_scores(scores, test, test, mask, coverages=(1 / 3,))
    assert row["n_test"] == 1  # the masked cell's incidents are outside the study area
    assert row["pai"] == pytest.approx(1.0 / (1 / 3))


def test_schedule_daily_for_a_dense_month_and_monthly_for_a_year():
    tz = "America/Chicago"
    month = pd.Series(pd.date_range("2018-01-01", "2018-01-27 23:00", freq="h", tz=tz))
    cuts = backtest_schedule(month)
    one_day = [c for c in cuts if c.horizon == "1 day"]
    three = [c for c in cuts if c.horizon == "3 days"]
    assert len(one_day) == 20  # cut-offs on Jan 8 ... Jan 27
    assert len(three) == 18  # the last one ends on Jan 28 00:00
    assert one_day[0].cutoff == pd.Timestamp("2018-01-08", tz=tz)
    assert one_day[0].train_start == pd.Timestamp("2018-01-01", tz=tz)
    assert three[-1].end == pd.Timestamp("2018-01-28", tz=tz)
    year = pd.Series(pd.date_range("2023-01-01", "2023-12-31 23:00", freq="6h", tz=tz))
    monthly = backtest_schedule(year)
    assert [c.cutoff.month for c in monthly] == list(range(2, 13))
    assert all(c.horizon == "1 month" for c in monthly)
    assert monthly[-1].end == pd.Timestamp("2024-01-01", tz=tz)


@pytest.mark.slow
def test_rolling_backtest_on_the_dense_month(sample_store):
    incidents = sample_store.load_incidents(
        columns=["x", "y", "occurred_at"], start="2018-01-01", end="2018-02-01"
    )
    beats = sample_store.read_layer("beats")
    results = rolling_backtest(incidents, beats, methods=("dbscan",), coverages=(0.01, 0.05))
    assert set(results["method"]) == {"naive", "dbscan"}  # the baseline is always in
    assert set(results["horizon"]) == {"1 day", "3 days"}
    assert len(results) == (20 + 18) * 2 * 2
    # the naive baseline by hand for the first cut-off: 1% of the study cells, last week's counts
    first = results[(results["cutoff"] == "2018-01-08") & (results["horizon"] == "1 day")]
    naive = first[(first["method"] == "naive") & (first["coverage"] == 0.01)].iloc[0]
    assert (
        naive["n_train"]
        == (
            (incidents["occurred_at"] < pd.Timestamp("2018-01-08", tz="America/Chicago"))
            & incidents["x"].notna()
        ).sum()
    )
    assert 0 < naive["hit_rate"] < 1
    assert naive["pai"] == pytest.approx(
        naive["hit_rate"] / (naive["cells"] / (naive["cells"] / 0.01)), rel=0.02
    )
    summary = summarize_backtest(results)
    assert set(summary["cutoffs"]) == {20, 18}
    assert {"pai_mean", "pai_sd", "pei_star_mean", "rri_mean", "hit_rate_sd"} <= set(
        summary.columns
    )


def test_unknown_method_is_named():
    with pytest.raises(ValueError, match="unknown \\['svm'\\]"):
        rolling_backtest(
            pd.DataFrame({"x": [], "y": [], "occurred_at": []}), None, methods=("svm",)
        )


@pytest.mark.parametrize("month", [3, 11])  # spring forward (10 Mar 2024), fall back (3 Nov)
def test_daily_cutoffs_stay_at_local_midnight_across_dst(month):
    times = pd.Series(
        pd.date_range(f"2024-{month:02d}-01", f"2024-{month:02d}-20 23:00", freq="37min",
                      tz="America/Chicago")
    )  # fmt: skip
    cutoffs = backtest_schedule(times)
    # by hand: cut-offs on days 8..20 of the month; 1-day horizons for all 13, 3-day for 11
    assert len(cutoffs) == 13 + 11
    for c in cutoffs:
        assert (c.cutoff.hour, c.cutoff.minute, c.end.hour) == (0, 0, 0)
    days = sorted({c.cutoff.day for c in cutoffs})
    assert days == list(range(8, 21))
