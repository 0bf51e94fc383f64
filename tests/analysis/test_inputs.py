"""analysis.inputs: the period, the data's calendar and the loaders shared by CLI and pages."""

import json
from datetime import date

import pandas as pd
import pytest

from analysis import inputs
from analysis.cli import main
from analysis.inputs import Period


def test_period_is_inclusive_with_an_exclusive_end():
    p = Period.of("2018-01-01", "2018-01-28")
    assert (p.first, p.last, p.end, p.days) == (
        date(2018, 1, 1),
        date(2018, 1, 28),
        date(2018, 1, 29),
        28,
    )
    assert Period.ending("2018-01-28", 28) == p
    assert Period.ending(pd.Timestamp("2018-01-28 23:00"), 1) == Period.of(
        "2018-01-28", "2018-01-28"
    )
    assert str(p) == "2018-01-01 to 2018-01-28"
    assert len(p.dates()) == 28
    with pytest.raises(ValueError, match="ends on 2018-01-01 before it starts on 2018-01-02"):
        Period.of("2018-01-02", "2018-01-01")
    with pytest.raises(ValueError, match="'1/2/2018' is not a date in YYYY-MM-DD form"):
        Period.of("1/2/2018", "2018-01-03")


def test_period_contains_uses_the_local_day():
    stamps = pd.Series(
        pd.to_datetime(
            ["2018-01-01 00:00", "2018-01-28 23:59", "2018-01-29 00:00", "2017-12-31 23:59"]
        )
    ).dt.tz_localize("America/Chicago")
    assert Period.of("2018-01-01", "2018-01-28").contains(stamps).tolist() == [
        True,
        True,
        False,
        False,
    ]


def test_default_as_of_and_sample_note_on_a_hand_made_calendar():
    # 40 dense days (10 a day) then a gap, then 30 thin days (1 a day)
    dense = pd.date_range("2020-01-01", periods=40, freq="D").repeat(10)
    thin = pd.date_range("2021-01-01", periods=30, freq="D")
    occurred = pd.Series(dense.append(thin)).dt.tz_localize("America/Chicago")
    daily = inputs.daily_counts(occurred)
    assert daily.index[0] == pd.Timestamp("2020-01-01")
    assert daily.index[-1] == pd.Timestamp("2021-01-30")
    assert daily[pd.Timestamp("2020-06-01")] == 0  # missing days are zeros
    # the last 28 days hold 28 incidents, the densest 280: 28 < 0.5 * 280, so the dense end wins
    # (the rolling maximum is first reached on day 28 of the dense run)
    assert inputs.default_as_of(daily) == date(2020, 1, 28)
    assert inputs.default_period(daily) == Period.of("2020-01-01", "2020-01-28")
    # thin days average 1 a day, under a quarter of 10: a sample; dense days are not
    assert "averages 1.0 incidents a day, against 10" in inputs.sample_note(
        daily, Period.of("2021-01-01", "2021-01-28")
    )
    assert inputs.sample_note(daily, Period.of("2020-01-01", "2020-01-28")) == ""
    # an empty period gets no sample note: the pages say "no incidents" instead
    assert inputs.sample_note(daily, Period.of("2020-06-01", "2020-06-28")) == ""
    with pytest.raises(ValueError, match="no incidents yet"):
        inputs.default_as_of(inputs.daily_counts(occurred.iloc[:0]))


def test_history_reaches_two_years_and_a_week_back():
    h = inputs.history("2018-01-27")
    assert h.last == date(2018, 1, 27)
    assert (h.last - h.first).days == 366 * 2 + 7


def test_profile_inputs_match_an_independent_read(sample_store):
    loaded = inputs.load_profile_inputs(sample_store, "2018-01-27")
    assert loaded.as_of == date(2018, 1, 27)
    raw = sample_store.load_incidents(columns=["occurred_at"])["occurred_at"]
    day = raw.dt.strftime("%Y-%m-%d")
    first = inputs.history("2018-01-27").first.isoformat()
    assert len(loaded.incidents) == int(((day >= first) & (day <= "2018-01-27")).sum())
    assert loaded.timezone == sample_store.timezone
    assert len(loaded.beats) == 275
    assert loaded.daily.sum() == len(raw)


def test_planning_inputs_period_is_inclusive(sample_store):
    period = Period.of("2018-01-10", "2018-01-12")
    loaded = inputs.load_planning_inputs(sample_store, period)
    raw = sample_store.load_incidents(columns=["occurred_at", "x"])
    day = raw["occurred_at"].dt.strftime("%Y-%m-%d")
    located = raw["x"].notna() & (day >= "2018-01-10") & (day <= "2018-01-12")
    assert len(loaded.incidents) == int(located.sum())
    assert "workload" in loaded.incidents


def test_hotspots_cli_empty_period_is_not_an_error(sample_store, capsys):
    args = ["hotspots", "--sector", "011", "--from", "2017-12-01", "--to", "2017-12-20"]
    assert main([*args, "--store", str(sample_store.root), "--json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["n_incidents"] == 0
    assert out["hotspots"] == []
    assert out["message"].startswith("No incidents in this period")
    assert out["period"] == {"from": "2017-12-01", "to": "2017-12-20"}


def test_library_errors_are_in_users_words_and_the_cli_names_the_flag(sample_store, capsys):
    beats = sample_store.read_layer("beats")
    with pytest.raises(ValueError, match="no sector '999' in the beat layer") as info:
        inputs.area_beats(beats, level="sector", area_id="999")
    assert "--" not in str(info.value)
    assert main(["profile", "--sector", "999", "--store", str(sample_store.root)]) == 2
    assert "error: --sector: no sector '999'" in capsys.readouterr().err
