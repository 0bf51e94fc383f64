"""The Sector review's forecast panel: expected vs actual per beat, as beat_forecast computes it."""

from __future__ import annotations

from datetime import timedelta

import numpy as np
import pandas as pd

from analysis import forecast
from tests.auth_helpers import signed_in


def test_sector_review_forecast_panel(app_env, sample_store):
    at = signed_in(app_env, "analyst")
    at.switch_page("views/sector_review.py")
    at.run()
    at.selectbox[0].select("092").run()
    assert not at.exception
    as_of = at.date_input[0].value
    week_start = as_of - timedelta(days=6)
    panel = next(d.value for d in at.dataframe if "interval low" in getattr(d.value, "columns", []))
    panel = panel.data if hasattr(panel, "data") else panel  # a Styler shows its frame
    beats = sample_store.read_layer("beats")
    ids = sorted(beats.loc[beats["sector"] == "092", "beat"].astype(str))
    incidents = sample_store.load_incidents(columns=["occurred_at", "beat"]).dropna()
    before = incidents[incidents["occurred_at"].dt.tz_localize(None) < pd.Timestamp(week_start)]
    expected = forecast.beat_forecast(before, ids, cutoff=pd.Timestamp(week_start))
    assert panel["beat"].tolist() == ids
    # the page reads the last year only: the same weights up to rounding
    np.testing.assert_allclose(panel["expected"], expected["expected"], rtol=1e-6)
    in_week = incidents[
        (incidents["occurred_at"].dt.tz_localize(None) >= pd.Timestamp(week_start))
        & (incidents["occurred_at"].dt.tz_localize(None) < pd.Timestamp(as_of + timedelta(days=1)))
    ]
    actual = in_week["beat"].value_counts()
    assert panel["actual"].tolist() == [int(actual.get(b, 0)) for b in ids]
    outside = (panel["actual"] < panel["interval low"]) | (panel["actual"] > panel["interval high"])
    assert (panel["outside interval"] != "").tolist() == outside.tolist()
    caption = " ".join(c.value for c in at.caption)
    assert f"{int(outside.sum())} of {len(ids)} beats fell outside their interval" in caption
