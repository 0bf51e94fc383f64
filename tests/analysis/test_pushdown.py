"""Reads pushed down into the store give what the unfiltered reads gave (issue 17, item 6).

A profile of an area reads only that area's beats, the store-wide calendar is counted per file
in Arrow, and plan evaluation assigns incidents with the product's beat lookup: each is checked
here against the unfiltered read or a reference library on the bundled data.
"""

from datetime import date

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest

from analysis import beatplan, compare, inputs, profiles
from geodata import schema
from geodata.boundaries import beat_neighbours


@pytest.mark.parametrize("store_name", ["sample_store", "seattle_store"])
def test_daily_counts_per_file_equal_the_pandas_count(request, store_name):
    store = request.getfixturevalue(store_name)
    occurred = store.load_incidents(columns=[schema.OCCURRED_AT])[schema.OCCURRED_AT]
    expected = inputs.daily_counts(occurred)
    got = inputs.load_daily_counts(store)
    pd.testing.assert_series_equal(got, expected, check_names=False)
    assert got.sum() == len(occurred) == store.count()


def test_window_counts_from_the_calendar_equal_counting_incidents(sample_store):
    incidents = sample_store.load_incidents(columns=[schema.OCCURRED_AT])
    windows = compare.compstat_windows(date(2018, 1, 27))
    expected = compare.window_counts(incidents, windows, timezone=sample_store.timezone)
    got = compare.daily_window_counts(inputs.load_daily_counts(sample_store), windows)
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    assert got["current"].sum() > 0


def _profile(loaded, level, area_id, *, daily):
    return profiles.profile_area(
        loaded.incidents,
        loaded.beats,
        level=level,
        area_id=area_id,
        as_of=loaded.as_of,
        stations=loaded.stations,
        neighbours=beat_neighbours(loaded.beats),
        timezone=loaded.timezone,
        daily=loaded.daily if daily else None,
    ).to_dict()


@pytest.mark.parametrize(
    ("level", "area_id"), [("beat", "0925"), ("sector", "092"), ("district", "11")]
)
def test_an_area_read_gives_the_profile_of_the_whole_read(sample_store, level, area_id):
    whole = inputs.load_profile_inputs(sample_store, "2018-01-27")
    area = inputs.load_profile_inputs(sample_store, "2018-01-27", level=level, area_id=area_id)
    members = whole.beats[whole.beats[inputs.LEVEL_COLUMNS[level]] == area_id][schema.BEAT]
    assert area.area == tuple(members)
    # only the area's incidents were read: all of them, and nothing else
    expected = whole.incidents[whole.incidents[schema.BEAT].isin(members)]
    assert len(area.incidents) == len(expected) > 0
    assert len(area.incidents) < len(whole.incidents)
    assert set(area.incidents[schema.BEAT]) <= set(members)
    assert _profile(area, level, area_id, daily=True) == _profile(
        whole, level, area_id, daily=False
    )


@pytest.mark.parametrize("window", ["7d", "28d", "ytd", "365d"])
def test_a_sector_read_gives_the_review_of_the_whole_read(sample_store, window):
    years = inputs.REVIEW_HISTORY_YEARS
    whole = inputs.load_profile_inputs(sample_store, "2018-01-27", years=years)
    area = inputs.load_profile_inputs(
        sample_store, "2018-01-27", years=years, level="sector", area_id="092"
    )
    common = {"sector": "092", "as_of": date(2018, 1, 27), "window": window}
    expected = profiles.review_sector(
        whole.incidents, whole.beats, timezone=whole.timezone, **common
    )
    got = profiles.review_sector(
        area.incidents, area.beats, timezone=area.timezone, daily=area.daily, **common
    )
    assert got.to_dict() == expected.to_dict()
    pd.testing.assert_frame_equal(got.unusual, expected.unusual)
    assert got.unusual_note == expected.unusual_note


def test_unusual_counts_judge_coverage_on_the_calendar(sample_store):
    loaded = inputs.load_profile_inputs(sample_store, "2018-01-27", years=6)
    window = compare.compstat_windows(date(2018, 1, 27))[0]
    beats = ["0921", "0922", "0925"]
    inside = loaded.incidents[loaded.incidents[schema.BEAT].isin(beats)]
    expected = profiles.unusual_counts(loaded.incidents, beats, window, timezone=loaded.timezone)
    got = profiles.unusual_counts(
        inside, beats, window, timezone=loaded.timezone, daily=loaded.daily
    )
    pd.testing.assert_frame_equal(got[0], expected[0])
    assert got[1] == expected[1]
    # the current counts, by hand
    local = inside[schema.OCCURRED_AT].dt.tz_convert(loaded.timezone).dt.date
    in_window = inside[(local >= window.start) & (local <= window.end)]
    assert got[0]["current"].tolist() == [int((in_window[schema.BEAT] == b).sum()) for b in beats]


def test_plan_points_are_assigned_as_a_geopandas_join_assigns_them(sample_store):
    beats = sample_store.read_layer("beats")
    plan = beats.dissolve(by=schema.BEAT, aggfunc="first", as_index=False)
    incidents = sample_store.load_incidents(columns=[schema.X, schema.Y]).dropna()
    # a few points outside every beat, and one on a vertex shared by beats
    vertex = np.asarray(plan.geometry.iloc[0].exterior.coords[0])
    extra = pd.DataFrame({schema.X: [0.0, vertex[0]], schema.Y: [0.0, vertex[1]]})
    incidents = pd.concat([incidents, extra], ignore_index=True)
    points = gpd.GeoDataFrame(
        geometry=gpd.points_from_xy(incidents[schema.X], incidents[schema.Y]), crs=plan.crs
    )
    joined = gpd.sjoin(points, plan[[schema.BEAT, "geometry"]], how="left", predicate="within")
    joined = joined[~joined.index.duplicated(keep="first")]
    within = joined[schema.BEAT].reindex(points.index).fillna("")
    got = beatplan._assign_points(plan, incidents)
    assert got.index.equals(incidents.index)
    # every point strictly inside a beat gets that beat; the origin is in none
    strict = within != ""
    assert (got[strict] == within[strict]).all()
    assert got.iloc[-2] == ""
    # the shared vertex goes to the lowest id of the beats it touches
    touching = plan[plan.geometry.intersects(points.geometry.iloc[-1])][schema.BEAT]
    assert got.iloc[-1] == min(touching)
    assert strict.sum() > len(incidents) // 2
