import math
from datetime import date, timedelta

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
from shapely.geometry import Point, box

from analysis import compare
from analysis.inputs import daily_counts, default_as_of
from analysis.profiles import (
    WEEKDAYS,
    area_beats,
    profile_area,
    review_sector,
    unusual_counts,
)
from analysis.report import render_packet
from geodata.boundaries import beat_neighbours

TZ = "America/Chicago"
CRS = "EPSG:26916"
X0, Y0 = 440_000.0, 4_630_000.0


@pytest.fixture(scope="module")
def squares():
    """Four 1 km squares: 0111 | 0112 side by side, 0121 above 0111, 0211 far away."""
    return gpd.GeoDataFrame(
        {
            "beat": pd.array(["0111", "0112", "0121", "0211"], dtype="string"),
            "sector": pd.array(["011", "011", "012", "021"], dtype="string"),
            "district": pd.array(["01", "01", "01", "02"], dtype="string"),
        },
        geometry=[
            box(X0, Y0, X0 + 1000, Y0 + 1000),
            box(X0 + 1000, Y0, X0 + 2000, Y0 + 1000),
            box(X0, Y0 + 1000, X0 + 1000, Y0 + 2000),
            box(X0 + 5000, Y0, X0 + 6000, Y0 + 1000),
        ],
        crs=CRS,
    )


@pytest.fixture(scope="module")
def stations():
    return gpd.GeoDataFrame(
        {
            "station_id": ["01", "HQ"],
            "district": pd.array(["01", None], dtype="string"),
            "name": ["Central <b>", "Headquarters"],
            "address": ["1 Main St", "3510 S Michigan Ave"],
            "phone": ["312-555-0101", ""],
            "lon": [-87.7, -87.62],
            "lat": [41.8, 41.83],
        },
        geometry=[Point(X0 + 500, Y0 + 1500), Point(X0 + 3000, Y0 + 3000)],
        crs=CRS,
    )


# local time, beat, offense, category, location, block
ROWS = [
    ("2017-12-27 23:59", "0111", "THEFT", "property", "STREET", "001XX A ST"),  # day before
    ("2017-12-28 00:00", "0111", "NARCOTICS", "drugs", "STREET", "003XX A ST"),  # first day
    ("2018-01-02 13:15", "0111", "THEFT", "property", "STREET", "001XX A ST"),
    ("2018-01-15 08:00", "0111", "THEFT", "property", "STREET", "002XX A ST"),
    ("2018-01-21 23:30", "0111", "THEFT", "property", "STREET", "001XX A ST"),  # Sunday night
    ("2018-01-22 00:30", "0111", "BATTERY", "violent", "APARTMENT", "001XX A ST"),
    ("2018-01-24 23:59", "0111", "ASSAULT", "violent", "SIDEWALK", "004XX A ST"),  # last minute
    ("2018-01-25 00:00", "0111", "THEFT", "property", "STREET", "001XX A ST"),  # after as-of
    ("2018-01-20 10:00", "0112", "ROBBERY", "violent", "STREET", "009XX B ST"),
]


# background: one incident a day in far-away beat 0211, so the data set covers every period
BACKGROUND = [
    (f"{day.date()} 12:00", "0211", "THEFT", "property", "STREET", "001XX Z ST")
    for day in pd.date_range("2017-12-01", "2018-01-24")
]


def _frame(rows):
    frame = pd.DataFrame(
        rows, columns=["local", "beat", "offense", "category", "location_desc", "block"]
    )
    local = pd.to_datetime(frame.pop("local")).dt.tz_localize(TZ)
    frame.insert(0, "occurred_at", local.dt.tz_convert("UTC"))  # stored in UTC on purpose
    frame["x"] = X0 + 500.0
    frame["y"] = Y0 + 500.0
    return frame


@pytest.fixture(scope="module")
def hand_profile(squares, stations):
    return profile_area(
        _frame(ROWS + BACKGROUND),
        squares,
        level="beat",
        area_id="0111",
        as_of="2018-01-24",
        stations=stations,
        timezone=TZ,
    )


def test_hand_worked_profile_counts(hand_profile):
    p = hand_profile
    assert (p.area_id, p.beats, p.district) == ("0111", ["0111"], "01")
    assert (p.start, p.end) == (date(2017, 12, 28), date(2018, 1, 24))
    assert p.n_incidents == 6  # 27 Dec 23:59 and 25 Jan 00:00 are outside; 0112 is another beat
    assert p.counts_by_category.to_dict() == {
        "violent": 2,
        "property": 3,
        "drugs": 1,
        "weapons": 0,
        "disorder": 0,
        "traffic": 0,
        "other": 0,
    }
    assert p.area_km2 == pytest.approx(1.0)
    assert p.density_per_km2 == pytest.approx(6.0)
    offenses = dict(
        zip(p.counts_by_offense["offense"], p.counts_by_offense["incidents"], strict=True)
    )
    assert offenses == {"THEFT": 3, "ASSAULT": 1, "BATTERY": 1, "NARCOTICS": 1}
    assert p.top_blocks.iloc[0].to_dict() == {"block": "001XX A ST", "incidents": 3, "share": 0.5}
    assert p.location_types["incidents"].tolist() == [4, 1, 1]
    # 4 blocks; the busiest 20% is ceil(0.8) = 1 block holding 3 of 6 incidents
    assert p.concentration == {
        "n_places": 4,
        "n_top_places": 1,
        "n_incidents": 6,
        "top_fraction": 0.2,
        "share": 0.5,
    }
    assert p.daily["incidents"].sum() == 6
    assert len(p.daily) == 28


def test_hand_worked_hour_weekday_uses_local_time(hand_profile):
    m = hand_profile.hour_weekday
    assert m.shape == (7, 24)
    assert list(m.index) == list(WEEKDAYS)
    expected = {
        ("Sunday", 23): 1,
        ("Monday", 0): 1,
        ("Monday", 8): 1,
        ("Tuesday", 13): 1,
        ("Thursday", 0): 1,
        ("Wednesday", 23): 1,
    }
    for (day, hour), n in expected.items():
        assert m.loc[day, hour] == n, (day, hour)
    assert int(m.to_numpy().sum()) == 6


def test_hand_worked_comparisons(hand_profile):
    cmp = hand_profile.comparisons.set_index("window")
    # week 15-21 Jan: Monday 08:00 and Sunday 23:30 local (05:30 Monday in UTC)
    assert cmp.loc["7d", "current"] == 2
    assert cmp.loc["7d", "previous"] == 0
    assert np.isnan(cmp.loc["7d", "pct_change"])  # previous 0 -> null
    assert cmp.loc["7d", "p_value"] == pytest.approx(0.5)  # 2 vs 0: P(X=2) + P(X=0) = 1/4 + 1/4
    # YTD 1-24 Jan 2018 against 8-31 Dec 2017 (the same 24 days before 1 January)
    assert (cmp.loc["ytd", "start"], cmp.loc["ytd", "end"]) == (date(2018, 1, 1), date(2018, 1, 24))
    assert cmp.loc["ytd", "current"] == 5
    assert cmp.loc["ytd", "previous"] == 2
    assert cmp.loc["ytd", "pct_change"] == pytest.approx(150.0)
    assert cmp.loc["28d", "current"] == 6
    assert cmp.loc["28d", "previous"] == 1
    assert cmp.loc["28d", "pct_change"] == pytest.approx(500.0)


def test_comparisons_without_data_in_the_store_are_not_judged(squares):
    # without the background the whole data set is empty in the week before: no verdict
    p = profile_area(
        _frame(ROWS), squares, level="beat", area_id="0111", as_of="2018-01-24", timezone=TZ
    )
    cmp = p.comparisons.set_index("window")
    assert not cmp.loc["7d", "previous_covered"]
    assert np.isnan(cmp.loc["7d", "p_value"])
    assert cmp.loc["7d", "flag"] == ""
    assert cmp.loc["ytd", "previous_covered"]  # 6 against 2 in the data set: comparable


def test_neighbours_station_and_json(hand_profile):
    assert hand_profile.neighbour_beats == ["0112", "0121"]  # rook: shared edges only
    assert hand_profile.station["name"] == "Central <b>"
    out = hand_profile.to_dict()
    assert out["comparisons"]["7d"]["pct_change"] is None
    assert out["hour_weekday"]["counts"][6][23] == 1  # Sunday 23:00
    assert out["counts_by_category"]["property"] == 3
    assert out["period"] == {
        "start": "2017-12-28",
        "end": "2018-01-24",
        "as_of": "2018-01-24",
        "days": 28,
        "timezone": TZ,
    }


def test_sector_district_and_department_levels(squares, stations):
    sector = profile_area(
        _frame(ROWS),
        squares,
        level="sector",
        area_id="011",
        as_of="2018-01-24",
        stations=stations,
        timezone=TZ,
    )
    assert sector.beats == ["0111", "0112"]
    assert sector.n_incidents == 7
    assert sector.area_km2 == pytest.approx(2.0)
    assert sector.neighbours == ["012"]  # sector 012 borders 0111
    dept = profile_area(
        _frame(ROWS + BACKGROUND),
        squares,
        level="department",
        as_of="2018-01-24",
        stations=stations,
        timezone=TZ,
    )
    assert dept.n_incidents == 7 + 28
    assert dept.station["station_id"] == "HQ"
    assert dept.area_km2 == pytest.approx(4.0)


def test_unknown_area_and_bad_input_are_named(squares):
    with pytest.raises(ValueError, match="no beat '9999'"):
        area_beats(squares, level="beat", area_id="9999")
    with pytest.raises(ValueError, match="level must be one of"):
        area_beats(squares, level="precinct", area_id="1")
    with pytest.raises(ValueError, match=r"lack the columns \['block'\]"):
        profile_area(
            _frame(ROWS).drop(columns="block"),
            squares,
            level="beat",
            area_id="0111",
            as_of="2018-01-24",
        )


def test_review_sector_hand_worked(squares):
    review = review_sector(
        _frame(ROWS + BACKGROUND),
        squares,
        sector="011",
        as_of="2018-01-24",
        window="7d",
        timezone=TZ,
    )
    table = review.beats.set_index("beat")
    assert list(table.index) == ["0111", "0112"]
    assert table.loc["0111", "incidents"] == 2
    assert table.loc["0112", "incidents"] == 1
    assert table.loc["0112", "violent"] == 1
    assert review.total["current"] == 3
    assert "History too thin" in review.unusual_note
    assert not review.beats["is_unusual"].any()
    assert len(review.explain()) == 2


def test_review_precinct_of_a_department_without_sectors(squares):
    # beats directly under precincts (Minneapolis-like): the review runs on the level above
    extra = [("2018-01-16 09:00", "0121", "THEFT", "property", "STREET", "001XX C ST")]
    review = review_sector(
        _frame(ROWS + BACKGROUND + extra),
        squares.drop(columns="sector"),
        sector="01",
        as_of="2018-01-24",
        window="7d",
        timezone=TZ,
        level="district",
    )
    table = review.beats.set_index("beat")
    assert review.sector == "01"
    assert list(table.index) == ["0111", "0112", "0121"]  # by hand: week 15-21 January
    assert table["incidents"].tolist() == [2, 1, 1]
    assert review.total["current"] == 4


def test_unusual_counts_against_prior_years():
    window = compare.compstat_windows("2018-01-24")[1]  # 28 days
    rows = []
    for years, n in ((1, 2), (2, 3), (3, 2)):
        day = window.start - timedelta(days=364 * years) + timedelta(days=3)
        rows += [(f"{day} 12:00", "0111")] * n
    rows += [(f"{window.start + timedelta(days=5)} 12:00", "0111")] * 6
    rows += [(f"{window.end} 09:00", "0112")]
    frame = pd.DataFrame(rows, columns=["local", "beat"])
    frame["occurred_at"] = pd.to_datetime(frame.pop("local")).dt.tz_localize(TZ)
    out, note = unusual_counts(frame, ["0111", "0112"], window, timezone=TZ)
    out = out.set_index("beat")
    history = [2, 3, 2]
    mean, sd = np.mean(history), max(np.std(history, ddof=1), math.sqrt(np.mean(history)))
    assert out.loc["0111", "mean"] == pytest.approx(mean)
    assert out.loc["0111", "threshold"] == pytest.approx(mean + 2 * sd)
    assert out.loc["0111", "current"] == 6
    assert out.loc["0111", "is_unusual"]
    # no history, one incident: the Poisson floor (sd >= 1) keeps it from being flagged
    assert out.loc["0112", "threshold"] == pytest.approx(2.0)
    assert not out.loc["0112", "is_unusual"]
    assert "3 prior years" in note
    assert len([c for c in out.columns if c[:2] == "20"]) == 3  # the history is shown


def test_profile_on_real_data_matches_plain_pandas(sample_store):
    incidents = sample_store.load_incidents()
    beats = sample_store.read_layer("beats")
    as_of = date(2018, 1, 27)
    p = profile_area(
        incidents,
        beats,
        level="beat",
        area_id="0925",
        as_of=as_of,
        stations=sample_store.read_layer("stations"),
        neighbours=beat_neighbours(beats),
        timezone=TZ,
    )
    local = incidents["occurred_at"].dt.tz_convert(TZ)
    day = local.dt.strftime("%Y-%m-%d")
    mine = incidents["beat"] == "0925"
    period = incidents[mine & (day >= "2017-12-31") & (day <= "2018-01-27")]
    assert p.n_incidents == len(period) > 0
    assert p.counts_by_category[p.counts_by_category > 0].to_dict() == (
        period.groupby("category").size().to_dict()
    )
    by_offense = period.groupby("offense").size().sort_values(ascending=False)
    assert p.counts_by_offense["incidents"].tolist() == by_offense.head(10).tolist()
    matrix = pd.crosstab(
        period["occurred_at"].dt.tz_convert(TZ).dt.dayofweek,
        period["occurred_at"].dt.tz_convert(TZ).dt.hour,
    )
    for (weekday, hour), n in matrix.stack().items():  # noqa: PD013 - a Series of cells
        assert p.hour_weekday.iloc[weekday][hour] == n
    # the whole week: every hour a column, every day a row, zeros where crosstab has no cell
    assert p.hour_weekday.shape == (7, 24)
    assert p.hour_weekday.columns.tolist() == list(range(24))
    assert p.hour_weekday.dtypes.eq("int64").all()
    assert int(p.hour_weekday.to_numpy().sum()) == len(period)
    area = float(beats.loc[beats["beat"] == "0925"].geometry.area.iloc[0]) / 1e6
    assert p.density_per_km2 == pytest.approx(len(period) / area)
    blocks = period["block"].value_counts()
    assert p.top_blocks["incidents"].tolist() == blocks.head(10).tolist()
    n_top = math.ceil(0.2 * len(blocks))
    assert p.concentration["share"] == pytest.approx(blocks.head(n_top).sum() / len(period))
    assert p.station["station_id"] == "09"
    assert "0924" in p.neighbour_beats
    cmp = p.comparisons.set_index("window")
    week = mine & (day >= "2018-01-15") & (day <= "2018-01-21")
    before = mine & (day >= "2018-01-08") & (day <= "2018-01-14")
    assert cmp.loc["7d", "current"] == week.sum()
    assert cmp.loc["7d", "previous"] == before.sum()
    assert cmp.loc["7d", "p_value"] == pytest.approx(
        compare.poisson_change_test(int(week.sum()), int(before.sum()))
    )
    # the bundled data hold (almost) nothing in December 2017: no judgement on 28 days
    assert not cmp.loc["28d", "previous_covered"]
    assert np.isnan(cmp.loc["28d", "p_value"])


def test_sector_review_on_real_data(sample_store):
    incidents = sample_store.load_incidents(columns=["occurred_at", "beat", "category"])
    beats = sample_store.read_layer("beats")
    review = review_sector(incidents, beats, sector="092", as_of="2018-01-27", window="7d")
    members = sorted(beats.loc[beats["sector"] == "092", "beat"])
    assert review.beats["beat"].tolist() == members
    day = incidents["occurred_at"].dt.strftime("%Y-%m-%d")
    week = incidents[(day >= "2018-01-15") & (day <= "2018-01-21")]
    expected = week.groupby("beat").size().reindex(members, fill_value=0)
    assert review.beats["incidents"].tolist() == expected.tolist()
    assert review.total["current"] == int(expected.sum())
    flagged = review.beats[review.beats["flag"] != ""]["beat"].tolist()
    assert set(flagged) <= set(review.significant["beat"])


def test_default_as_of_is_the_end_of_the_dense_january(sample_store):
    occurred = sample_store.load_incidents(columns=["occurred_at"])["occurred_at"]
    as_of = default_as_of(daily_counts(occurred))
    assert (as_of.year, as_of.month) == (2018, 1)


def test_packet_is_self_contained_and_escaped(squares, stations):
    rows = [
        *ROWS,
        ("2018-01-23 10:00", "0111", "THEFT", "property", "STREET", "<script>alert(1)</script>"),
    ]
    frame = _frame(rows)
    profile = profile_area(
        frame,
        squares,
        level="beat",
        area_id="0111",
        as_of="2018-01-24",
        stations=stations,
        timezone=TZ,
    )
    html = render_packet(profile, squares, frame, stations=stations, note="a <sample>")
    assert "<script>" not in html
    assert "&lt;script&gt;" in html
    assert "Central &lt;b&gt;" in html
    assert "a &lt;sample&gt;" in html
    assert "http://" not in html.replace('xmlns="http://www.w3.org/2000/svg"', "")
    assert html.count('class="incident"') == profile.n_incidents == 7
    assert html.count("data-beat=") == 3  # the beat and its two neighbours
