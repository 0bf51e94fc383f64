from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from scipy import stats

from analysis import compare
from analysis.compare import (
    change_flag,
    compare_counts,
    compstat_windows,
    pct_change,
    poisson_change_test,
    window_counts,
)

TZ = "America/Chicago"


def _by_name(as_of):
    return {w.name: w for w in compstat_windows(as_of)}


@pytest.mark.parametrize(
    ("as_of", "week"),
    [
        (date(2018, 1, 24), (date(2018, 1, 15), date(2018, 1, 21))),  # Wednesday
        (date(2018, 1, 21), (date(2018, 1, 15), date(2018, 1, 21))),  # Sunday: its own week
        (date(2018, 1, 22), (date(2018, 1, 15), date(2018, 1, 21))),  # Monday: week not over
        (date(2018, 1, 20), (date(2018, 1, 8), date(2018, 1, 14))),  # Saturday
    ],
)
def test_week_window_is_the_last_complete_monday_to_sunday_week(as_of, week):
    w = _by_name(as_of)["7d"]
    assert (w.start, w.end) == week
    assert w.start.weekday() == 0
    assert w.end.weekday() == 6
    assert (w.previous_start, w.previous_end) == (week[0] - timedelta(7), week[0] - timedelta(1))
    # last year: 52 weeks earlier, so it is also Monday to Sunday
    assert w.last_year_start == week[0] - timedelta(364)
    assert w.last_year_start.weekday() == 0
    assert w.last_year_end.weekday() == 6


def test_ytd_across_a_year_change():
    w = _by_name(date(2018, 1, 10))
    ytd = w["ytd"]
    assert (ytd.start, ytd.end) == (date(2018, 1, 1), date(2018, 1, 10))
    # the previous equal period is the last ten days of 2017
    assert (ytd.previous_start, ytd.previous_end) == (date(2017, 12, 22), date(2017, 12, 31))
    assert (ytd.last_year_start, ytd.last_year_end) == (date(2017, 1, 1), date(2017, 1, 10))
    assert ytd.days == ytd.previous_days == 10
    d28 = w["28d"]
    assert (d28.start, d28.end) == (date(2017, 12, 14), date(2018, 1, 10))
    assert (d28.previous_start, d28.previous_end) == (date(2017, 11, 16), date(2017, 12, 13))
    d365 = w["365d"]
    assert d365.days == d365.previous_days == 365
    assert d365.previous_end == d365.start - timedelta(1)


def test_leap_day_maps_to_28_february_last_year():
    ytd = _by_name("2024-02-29")["ytd"]
    assert (ytd.last_year_start, ytd.last_year_end) == (date(2023, 1, 1), date(2023, 2, 28))
    assert ytd.last_year_days == 59
    assert ytd.days == 60


def test_bad_as_of_names_the_parameter():
    with pytest.raises(ValueError, match="as_of must be a date"):
        compstat_windows("31/31/2018")


def test_pct_change_is_none_when_previous_is_zero():
    assert pct_change(5, 0) is None
    assert pct_change(0, 0) is None
    assert pct_change(15, 10) == pytest.approx(50.0)
    assert pct_change(5, 10) == pytest.approx(-50.0)


@pytest.mark.parametrize(
    ("current", "previous", "days_a", "days_b"),
    [
        (3, 1, 7, 7),
        (10, 0, 7, 7),
        (26, 8, 28, 28),
        (5, 5, 7, 14),
        (120, 95, 365, 366),
        (0, 4, 1, 1),
    ],
)
def test_poisson_test_equals_scipys_exact_binomial_test(current, previous, days_a, days_b):
    expected = stats.binomtest(current, current + previous, days_a / (days_a + days_b)).pvalue
    got = poisson_change_test(current, previous, current_days=days_a, previous_days=days_b)
    assert got == pytest.approx(expected, rel=1e-12)


def test_poisson_test_hand_worked_values():
    # 3 vs 1: P(X>=3)+P(X<=1) for Binomial(4, 1/2) = 5/16 + 5/16
    assert poisson_change_test(3, 1) == pytest.approx(0.625)
    # 10 vs 0: 2 * (1/2)^10
    assert poisson_change_test(10, 0) == pytest.approx(2 * 0.5**10)
    assert poisson_change_test(0, 0) == 1.0


def test_poisson_test_agrees_with_scipys_e_test_on_clear_cases():
    # scipy's poisson_means_test (E-test) is a different exact-ish test; on clear cases the
    # conclusions must agree
    for a, b in [(60, 30), (12, 10), (3, 1), (40, 10)]:
        ours = poisson_change_test(a, b, current_days=28, previous_days=28)
        e_test = stats.poisson_means_test(a, 28, b, 28).pvalue
        assert (ours < 0.05) == (e_test < 0.05), (a, b, ours, e_test)


def test_small_counts_do_not_cry_wolf():
    p = poisson_change_test(3, 1)
    assert change_flag(p, 3, 1) == ""  # +200% but chance
    p = poisson_change_test(30, 10)
    assert p < 0.01
    assert change_flag(p, 30, 10) == "up"
    assert change_flag(poisson_change_test(2, 20), 2, 20) == "down"


def test_poisson_test_rejects_bad_counts():
    with pytest.raises(ValueError, match="current must be a non-negative whole count"):
        poisson_change_test(-1, 3)
    with pytest.raises(ValueError, match="previous_days must be > 0"):
        poisson_change_test(1, 3, previous_days=0)


def _incidents(local_times, beats=None):
    stamps = pd.to_datetime(pd.Series(local_times)).dt.tz_localize(TZ)
    frame = pd.DataFrame({"occurred_at": stamps.dt.tz_convert("UTC")})
    if beats is not None:
        frame["beat"] = beats
    return frame


def test_sunday_night_local_belongs_to_sunday_not_utc_monday():
    # 23:30 on Sunday 21 January 2018 in Chicago is 05:30 on Monday in UTC
    incidents = _incidents(["2018-01-21 23:30", "2018-01-22 00:30", "2018-01-15 00:10"])
    assert incidents["occurred_at"].iloc[0].weekday() == 0  # UTC Monday
    windows = compstat_windows("2018-01-24")
    local = window_counts(incidents, windows, timezone=TZ).set_index("window")
    assert local.loc["7d", "current"] == 2  # Sunday night and Monday 15th
    as_utc = window_counts(incidents, windows, timezone="UTC").set_index("window")
    assert as_utc.loc["7d", "current"] == 1  # would wrongly move Sunday night to Monday


def test_window_counts_by_beat_match_a_groupby():
    rng = np.random.default_rng(3)
    days = pd.Timestamp("2016-01-01") + pd.to_timedelta(rng.integers(0, 800, 3000), unit="D")
    times = days + pd.to_timedelta(rng.integers(0, 24 * 60, 3000), unit="min")
    beats = rng.choice(["0111", "0112", "0113"], 3000)
    incidents = _incidents(times, beats)
    windows = compstat_windows("2018-01-24")
    counts = window_counts(incidents, windows, by="beat", timezone=TZ)
    local_day = incidents["occurred_at"].dt.tz_convert(TZ).dt.tz_localize(None).dt.normalize()
    for window in windows:
        for period, (first, last) in window.periods().items():
            inside = (local_day >= pd.Timestamp(first)) & (local_day <= pd.Timestamp(last))
            expected = incidents[inside].groupby("beat").size()
            got = counts[counts["window"] == window.name].set_index("beat")[period]
            for beat in ["0111", "0112", "0113"]:
                assert got.get(beat, 0) == expected.get(beat, 0), (window.name, period, beat)


def test_compare_counts_nulls_and_coverage():
    windows = compstat_windows("2018-01-24")
    counts = pd.DataFrame(
        {
            "window": list(compare.WINDOWS),
            "current": [9, 30, 20, 100],
            "previous": [0, 10, 20, 100],
            "last_year": [3, 10, 0, 100],
        }
    )
    out = compare_counts(counts, windows).set_index("window")
    assert np.isnan(out.loc["7d", "pct_change"])  # previous 0 -> null change
    assert out.loc["7d", "p_value"] == pytest.approx(poisson_change_test(9, 0))
    assert out.loc["28d", "pct_change"] == pytest.approx(200.0)
    assert out.loc["28d", "flag"] == "up"
    assert np.isnan(out.loc["ytd", "pct_change_last_year"])
    assert out.loc["ytd", "flag"] == ""
    # the whole data set has nothing in the 28 days before: no judgement on that comparison
    reference = counts.assign(
        current=[500, 2000, 1500, 9000],
        previous=[480, 0, 1500, 9000],
        last_year=[500, 1900, 1400, 100],
    )
    covered = compare_counts(counts, windows, reference=reference).set_index("window")
    assert not covered.loc["28d", "previous_covered"]
    assert np.isnan(covered.loc["28d", "p_value"])
    assert covered.loc["28d", "flag"] == ""
    assert covered.loc["28d", "last_year_covered"]
    assert not covered.loc["365d", "last_year_covered"]  # 100 against 9000: a thin sample
    assert covered.loc["7d", "previous_covered"]


# --- why a count changed -------------------------------------------------------------------


@pytest.mark.parametrize(
    ("p_value", "current", "previous", "words"),
    [
        (0.17, 12, 6, "as large a rise would happen by chance about 1 time in 6"),
        (0.0004, 23, 4, "as large a rise would happen by chance less than 1 time in 1,000"),
        (0.02, 2, 14, "as large a fall would happen by chance about 1 time in 50"),
        (0.75, 21, 18, "as large a rise would happen by chance about every other time or more"),
        (None, 5, 0, "no comparable earlier period, so chance cannot be judged"),
    ],
)
def test_chance_in_words(p_value, current, previous, words):
    assert compare.chance_in_words(p_value, current, previous).startswith(words)


def _incident(day: str, hour: int, category: str, location: str | None) -> dict:
    return {
        "occurred_at": pd.Timestamp(f"{day} {hour:02d}:30", tz=TZ),
        "category": category,
        "location_desc": location,
    }


def test_change_breakdown_by_hand():
    window = _by_name(date(2024, 1, 14))["7d"]  # week 8-14 Jan against 1-7 Jan
    incidents = pd.DataFrame(
        [
            _incident("2024-01-08", 20, "property", "STREET"),
            _incident("2024-01-09", 21, "property", "STREET"),
            _incident("2024-01-10", 19, "property", "STREET"),
            _incident("2024-01-11", 9, "violent", "RESIDENCE"),
            _incident("2024-01-12", 3, "violent", None),
            _incident("2024-01-03", 22, "property", "STREET"),
            _incident("2024-01-04", 2, "violent", "RESIDENCE"),
            _incident("2023-12-20", 12, "violent", "RESIDENCE"),  # in neither period
        ]
    )
    table = compare.change_breakdown(incidents, window, timezone=TZ).set_index(
        ["dimension", "part"]
    )
    # current 5, previous 2: a rise of 3, split by hand
    assert table.loc[("offense category", "property"), "difference"] == 2
    assert table.loc[("offense category", "violent"), "difference"] == 1
    assert table.loc[("location type", "street"), "difference"] == 2
    assert table.loc[("location type", "residence"), "difference"] == 0
    assert table.loc[("location type", "unknown"), "difference"] == 1
    assert table.loc[("hour block", "in the evening (18-24 h)"), "difference"] == 2
    assert table.loc[("hour block", "at night (0-6 h)"), "difference"] == 0
    assert table.loc[("hour block", "in the morning (6-12 h)"), "difference"] == 1
    assert table.loc[("offense category", "property"), "share"] == pytest.approx(2 / 3)
    for dimension in compare.BREAKDOWNS:
        assert table.loc[dimension, "difference"].sum() == 3
    text = compare.explain_change(table.reset_index())
    assert text.startswith("Most of the rise of 3 came from offense category: property +2")
    assert "location type: street +2 and unknown +1" in text
    assert "hour block: in the evening (18-24 h) +2 and in the morning (6-12 h) +1" in text


def test_change_breakdown_of_a_flagged_beat_adds_up(sample_store):
    from analysis import profiles

    incidents = sample_store.load_incidents(columns=list(profiles.PROFILE_COLUMNS))
    beats = sample_store.read_layer("beats")
    as_of = date(2018, 1, 27)
    review = profiles.review_sector(
        incidents, beats, sector="092", as_of=as_of, window="7d", timezone=sample_store.timezone
    )
    row = review.beats.set_index("beat").loc["0924"]
    assert (row["incidents"], row["previous"], row["flag"]) == (23, 4, "up")
    window = _by_name(as_of)["7d"]
    mine = incidents[incidents["beat"] == "0924"]
    table = compare.change_breakdown(mine, window, timezone=sample_store.timezone)
    for dimension in compare.BREAKDOWNS:
        part = table[table["dimension"] == dimension]
        assert part["current"].sum() == 23
        assert part["previous"].sum() == 4
    # independent count of the largest category contribution
    local = mine["occurred_at"].dt.tz_convert(sample_store.timezone).dt.date
    now = mine[(local >= window.start) & (local <= window.end)]
    before = mine[(local >= window.previous_start) & (local <= window.previous_end)]
    diff = now["category"].value_counts().sub(before["category"].value_counts(), fill_value=0)
    top = table[table["dimension"] == "offense category"].iloc[0]
    assert top["difference"] == int(diff.max())
    assert top["part"] == diff.idxmax()
    words = compare.chance_in_words(row["p_value"], 23, 4)
    assert words == "as large a rise would happen by chance less than 1 time in 1,000"


def test_binomial_p_equals_scipys_binomtest_on_random_cases():
    # the NumPy two-sided test (no scipy.stats at start-up) against scipy's, many shapes
    from analysis.compare import binomial_two_sided_p

    rng = np.random.default_rng(17)
    for _ in range(400):
        n = int(rng.integers(1, 5000))
        k = int(rng.integers(0, n + 1))
        p = 0.5 if rng.random() < 0.3 else float(rng.uniform(0.01, 0.99))
        expected = stats.binomtest(k, n, p).pvalue
        assert binomial_two_sided_p(k, n, p) == pytest.approx(expected, rel=1e-9, abs=1e-300)
