"""Sector review panel: each beat's expected incidents with a 90% interval, against the actual.

The expected counts are :func:`analysis.forecast.beat_forecast` (exponentially weighted beat
means, negative binomial interval), made at the start of the review week from the data before
it, so the week's actual count is a fair test; the next week's forecast is shown beside it.
"""

from __future__ import annotations

from datetime import date, timedelta

import pandas as pd
import streamlit as st

from analysis import forecast
from analysis.inputs import Period
from dashboard import data
from geodata import schema

__all__ = ["beat_week_table", "render_forecast_panel"]

#: Days of history the beat forecast reads.
HISTORY_DAYS = 365


@st.cache_data(show_spinner="Forecasting the beats...", max_entries=32)
def beat_week_table(
    root: str, token: str, sector: str, as_of: date, level: str = schema.SECTOR
) -> pd.DataFrame:
    """Return the sector's beats: the week to `as_of` expected vs actual, and the next week.

    `level` is ``district`` when `sector` names a precinct (a department without sectors).

    Columns: ``beat, expected, lower, upper, actual, outside`` ("above"/"below"/"") for the 7
    days ending on `as_of` (forecast from the data before them), then ``next_expected,
    next_lower, next_upper`` for the 7 days after `as_of`.
    """
    week_start = as_of - timedelta(days=6)
    incidents = data.load_incidents(
        root,
        token,
        (schema.OCCURRED_AT, schema.BEAT),
        Period(week_start - timedelta(days=HISTORY_DAYS), as_of),
    )
    beats = data.load_beats(root, token)
    ids = sorted(beats.loc[beats[level] == sector, schema.BEAT])
    known = incidents.dropna(subset=[schema.BEAT])
    columns = [schema.BEAT, "expected", "lower", "upper", "actual", "outside"]
    if known.empty or not ids:
        return pd.DataFrame(columns=columns)
    before = known[known[schema.OCCURRED_AT].dt.tz_localize(None) < pd.Timestamp(week_start)]
    if before.empty:
        return pd.DataFrame(columns=columns)
    week = forecast.beat_forecast(before, ids, cutoff=pd.Timestamp(week_start))
    in_week = known[known[schema.OCCURRED_AT].dt.tz_localize(None) >= pd.Timestamp(week_start)]
    actual = in_week[schema.BEAT].value_counts()
    week["actual"] = [int(actual.get(b, 0)) for b in week[schema.BEAT]]
    week["outside"] = [
        "above" if a > hi else "below" if a < lo else ""
        for a, lo, hi in zip(week["actual"], week["lower"], week["upper"], strict=True)
    ]
    nxt = forecast.beat_forecast(known, ids, cutoff=pd.Timestamp(as_of + timedelta(days=1)))
    week["next_expected"] = nxt["expected"].to_numpy()
    week["next_lower"] = nxt["lower"].to_numpy()
    week["next_upper"] = nxt["upper"].to_numpy()
    week.attrs = {}
    return week


def render_forecast_panel(
    root: str, token: str, sector: str, as_of: date, level: str = schema.SECTOR
) -> None:
    """Draw the panel: the table, beats outside their interval flagged, and how to read it."""
    st.subheader("Expected against actual (forecast, 90% interval)")
    table = beat_week_table(root, token, sector, as_of, level)
    week_start = as_of - timedelta(days=6)
    if table.empty:
        st.info(
            f"No incidents before {week_start} to forecast {data.label(root, token, level)} "
            f"{sector} from."
        )
        return
    flagged = table[table["outside"] != ""]
    listed = ", ".join(
        f"{b} {o}" for b, o in zip(flagged[schema.BEAT], flagged["outside"], strict=True)
    )
    st.caption(
        f"Week {week_start} to {as_of}: each beat's expected incidents, forecast from the year "
        "before the week, with a 90% prediction interval; the last columns forecast the next "
        f"7 days. {len(flagged)} of {len(table)} beats fell outside their interval"
        + (f" ({listed})." if listed else ".")
        + " On the Seattle 2018 backtest 92% of beat-weeks fell inside (docs/evaluation.md)."
    )
    shown = table.rename(
        columns={
            "expected": "expected",
            "lower": "interval low",
            "upper": "interval high",
            "outside": "outside interval",
            "next_expected": "next 7 days expected",
            "next_lower": "next low",
            "next_upper": "next high",
        }
    )
    st.dataframe(
        shown.style.format(precision=1).apply(
            lambda row: [
                "background-color: #fdd0a2" if row["outside interval"] else "" for _ in row
            ],
            axis=1,
        ),
        hide_index=True,
        width="stretch",
    )
