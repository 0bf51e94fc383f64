import json
from datetime import date

import numpy as np
import pandas as pd
import pyproj
import pytest

from analysis.cli import main
from analysis.inputs import daily_counts, default_as_of
from tests.auth_helpers import opened, signed_in
from tests.helpers import folium_maps, page_metrics


def _cli_json(capsys, store, *args):
    assert main(["profile", *args, "--store", str(store.root), "--json"]) == 0
    return json.loads(capsys.readouterr().out)


@pytest.fixture
def beat_page(app_env):
    return opened(app_env, "beat_profile", timeout=120)


def test_beat_profile_page_matches_the_cli_json(beat_page, sample_store, capsys):
    at = beat_page
    assert at.title[0].value == "Beat profile"
    at.selectbox[0].select("0925").run()
    assert not at.exception
    as_of = at.date_input[0].value
    assert (as_of.year, as_of.month) == (2018, 1)  # default: the dense January 2018 data
    occurred = sample_store.load_incidents(columns=["occurred_at"])["occurred_at"]
    assert as_of == default_as_of(daily_counts(occurred))  # the CLI's default as-of is the page's
    out = _cli_json(capsys, sample_store, "--beat", "0925", "--as-of", as_of.isoformat())
    metrics = page_metrics(at)
    assert metrics["Incidents (28 days)"] == f"{out['n_incidents']:,}"
    assert metrics["Per km²"] == f"{out['density_per_km2']:.1f}"
    assert metrics["Station"] == out["area"]["station"]["name"]
    share = out["concentration"]["share"]
    assert metrics["On busiest 20% of blocks"] == f"{share:.0%}"
    table = at.dataframe[0].value
    for row, name in zip(table.to_dict("records"), ["7d", "28d", "ytd", "365d"], strict=True):
        expected = out["comparisons"][name]
        assert row["current"] == expected["current"]
        # a period the data do not cover shows no count (not 0)
        for column, key in (("previous", "previous"), ("last year", "last_year")):
            if expected[f"{key}_covered"]:
                assert row[column] == expected[key]
            else:
                assert pd.isna(row[column])
        if expected["p_value"] is None:
            assert np.isnan(row["p-value"])
            assert np.isnan(row["change %"])
        else:
            assert row["p-value"] == pytest.approx(expected["p_value"])
    (script,) = folium_maps(at)
    assert "L.marker" in script  # the station
    assert script.count("L.circleMarker") == out["n_incidents"]  # <= 2,000: one per incident
    for neighbour in out["area"]["neighbour_beats"]:
        assert f'"beat": "{neighbour}"' in script
    assert len(at.get("vega_lite_chart")) == 3  # trend, categories, hour x weekday
    labels = [b.label for b in at.get("download_button")]
    assert labels == ["Printable beat profile (HTML)", "Beat profile (PDF, one page)"]


@pytest.mark.slow
def test_find_my_beat_by_block_and_coordinates(beat_page, sample_store, beat_index):
    at = beat_page
    at.text_input[0].input("4915 s western avenue").run()
    assert not at.exception
    incidents = sample_store.load_incidents(columns=["block", "x", "y"])
    block = incidents[incidents["block"] == "049XX S WESTERN AVE"]
    found = beat_index.lookup([block["x"].median()], [block["y"].median()]).beat_index[0]
    expected = beat_index.beat_ids[found]
    assert at.selectbox[0].value == expected
    assert any("049XX S WESTERN AVE" in i.value and expected in i.value for i in at.info)

    at.text_input[0].input("41.8781, -87.6298").run()
    x, y = pyproj.Transformer.from_crs("EPSG:4326", "EPSG:26916", always_xy=True).transform(
        -87.6298, 41.8781
    )
    expected = beat_index.beat_ids[beat_index.lookup([x], [y]).beat_index[0]]
    assert at.selectbox[0].value == expected
    at.text_input[0].input("nowhere in particular").run()
    assert not at.exception
    assert any("No block or coordinates recognised" in i.value for i in at.info)
    assert at.selectbox[0].value == expected  # unchanged


def test_sample_period_is_labelled(beat_page):
    at = beat_page
    at.date_input[0].set_value(date(2024, 11, 30)).run()
    assert not at.exception
    assert any("sample" in w.value for w in at.warning)


@pytest.mark.slow
def test_sector_review_page_and_drill_down(app_env, sample_store, capsys):
    at = signed_in(app_env, "analyst")
    at.switch_page("views/sector_review.py")
    at.run()
    assert not at.exception
    assert at.title[0].value == "Sector review"
    at.selectbox[0].select("092").run()
    assert not at.exception
    as_of = at.date_input[0].value
    out = _cli_json(
        capsys,
        sample_store,
        "--sector",
        "092",
        "--as-of",
        as_of.isoformat(),
        "--review",
        "--window",
        "7d",
    )
    review = out["review"]
    metrics = page_metrics(at)
    assert metrics["Sector incidents"] == f"{review['total']['current']:,}"
    assert metrics["Previous period"] == f"{review['total']['previous']:,}"
    flagged = sum(1 for row in review["beats"] if row["flag"])
    assert metrics["Beats flagged"] == f"{flagged} of {len(review['beats'])}"
    shown = next(d.value for d in at.dataframe if "incidents" in d.value.columns)
    assert shown["beat"].tolist() == [row["beat"] for row in review["beats"]]
    assert shown["incidents"].tolist() == [row["incidents"] for row in review["beats"]]
    text = " ".join(m.value for m in at.markdown)
    for row in review["explanations"]:
        assert row["explanation"] in text
    for row in review["beats"]:  # every flagged beat says why, and the chance in words
        if row["flag"]:
            assert f"- Why: Most of the {'rise' if row['flag'] == 'up' else 'fall'}" in text
            assert "would happen by chance" in text
    (script,) = folium_maps(at)
    for row in review["beats"]:
        assert f'"beat": "{row["beat"]}"' in script
    assert script.count("L.circleMarker") == review["total"]["current"]  # the window's incidents
    at.selectbox[2].select("0924")
    at.button[0].click().run()
    assert not at.exception
    assert at.title[0].value == "Beat profile"
    assert at.selectbox[0].value == "0924"
