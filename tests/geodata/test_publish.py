"""The community extract: what it may hold, checked against the raw store and hand-built cases."""

from __future__ import annotations

import json
from collections import Counter
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pyproj
import pytest

from geodata import schema
from geodata.cli import main
from geodata.department import load_department
from geodata.errors import InputError, StoreError
from geodata.geocode import normalize_block
from geodata.publish import (
    EXTRACT_FILES,
    FINDER_FILES,
    PUBLIC_COLUMNS,
    PublishPolicy,
    build_extract,
    load_policy,
    public_block,
    publish_window,
    read_extract,
    read_finder,
)
from tests.community_helpers import EXCLUDED_OFFENSES, independently_excluded

CHICAGO = load_department("chicago")
CRS = str(CHICAGO.analysis_crs)
TZ = CHICAGO.timezone


@pytest.fixture(scope="module")
def raw(sample_store):
    return sample_store.load_incidents()


def _window_rows(raw, extract):
    meta = extract.metadata
    start = date.fromisoformat(meta["window_start"])
    end = date.fromisoformat(meta["window_end_exclusive"])
    day = raw[schema.OCCURRED_AT].dt.tz_convert(TZ).dt.date
    return raw[((day >= start) & (day < end)).to_numpy()]


def test_extract_holds_exactly_the_non_sensitive_rows(raw, published):
    _, extract = published
    window = _window_rows(raw, extract)
    keep = window[~independently_excluded(window)]
    keep = keep[keep[schema.BEAT] != schema.OUTSIDE]
    expected = Counter(
        zip(
            keep[schema.OCCURRED_AT].dt.tz_convert(TZ).dt.date,
            keep[schema.CATEGORY].astype(str),
            keep[schema.BEAT].astype(str),
            strict=True,
        )
    )
    public = extract.incidents
    got = Counter(
        zip(
            public["date"],
            public[schema.CATEGORY].astype(str),
            public[schema.BEAT].astype(str),
            strict=True,
        )
    )
    # every published row is matched by a non-excluded raw row of that day, category and beat
    assert not got - expected
    # and nothing safe is lost except rows without a hundred-block (none in the sample)
    assert got == expected
    assert len(public) == extract.metadata["rows_published"] > 10_000
    assert extract.metadata["rows_in_window"] == len(window)


def test_extract_withholds_every_excluded_offense(raw, published):
    _, extract = published
    window = _window_rows(raw, extract)
    excluded = window[window[schema.OFFENSE].isin(EXCLUDED_OFFENSES)]
    assert len(excluded) > 50  # the sample does hold sexual offenses etc. in the window
    # their (day, block) pairs appear in the extract only as far as safe rows share them
    safe = window[~independently_excluded(window)]
    blocks = safe[schema.BLOCK].astype(str).map(public_block)
    safe_pairs = Counter(zip(safe[schema.OCCURRED_AT].dt.date, blocks, strict=True))
    public_pairs = Counter(zip(extract.incidents["date"], extract.incidents["block"], strict=True))
    for pair, n in public_pairs.items():
        assert n <= safe_pairs[pair]


def test_extract_has_no_ids_and_no_free_text(raw, published):
    out, extract = published
    assert tuple(extract.incidents.columns) == PUBLIC_COLUMNS
    assert sorted(p.name for p in out.iterdir()) == sorted(
        [*EXTRACT_FILES.values(), *FINDER_FILES.values()]
    )
    ids = set(raw[schema.INCIDENT_ID].astype(str)) | set(raw[schema.CASE_NUMBER].astype(str))
    offenses = set(raw[schema.OFFENSE].astype(str)) | set(raw[schema.DESCRIPTION].astype(str))
    for frame in (extract.incidents, extract.beat_weekly, extract.beat_summary):
        for column in frame.columns:
            values = set(frame[column].dropna().astype(str))
            assert not values & ids, column
            assert not values & offenses, column
    assert set(extract.incidents[schema.CATEGORY]) <= set(schema.CATEGORIES)
    assert extract.incidents[schema.BLOCK].str.fullmatch(r"\d{3}XX [A-Z0-9 ]+").all()
    text = "".join(p.read_text(errors="ignore") for p in out.glob("*.json*"))
    assert "incident_id" not in text
    assert "case_number" not in text


def test_nothing_newer_than_the_delay_nor_older_than_the_window(raw, published):
    _, extract = published
    meta = extract.metadata
    as_of = date.fromisoformat(meta["as_of"])
    assert meta["delay_days"] == 7
    assert meta["window_days"] == 90
    days = extract.incidents["date"]
    assert days.max() < as_of - timedelta(days=7)
    assert days.min() >= as_of - timedelta(days=7 + 90)
    # the raw store does hold later incidents that were withheld by the delay
    local = raw[schema.OCCURRED_AT].dt.tz_convert(TZ).dt.date
    assert (local >= as_of - timedelta(days=7)).sum() > 1_000


def test_every_point_is_its_block_median_snapped_to_the_50m_grid(raw, published):
    _, extract = published
    public = extract.incidents
    # the rule, computed here from the raw store: median of every stored incident on the block
    # (blocks keyed as published: public_block is tested on hand-written cases below)
    lookup = {b: public_block(b) for b in raw[schema.BLOCK].dropna().astype(str).unique()}
    blocks = raw[schema.BLOCK].astype(str).map(lookup)
    medians = raw.assign(block=blocks).groupby("block")[[schema.X, schema.Y]].median()
    expected = medians.reindex(public[schema.BLOCK])
    snapped_x = (np.floor(expected[schema.X].to_numpy() / 50) + 0.5) * 50
    snapped_y = (np.floor(expected[schema.Y].to_numpy() / 50) + 0.5) * 50
    np.testing.assert_allclose(public[schema.X], snapped_x)
    np.testing.assert_allclose(public[schema.Y], snapped_y)
    # published points are grid-cell centres: (x / 50 - 0.5) is a whole number
    assert np.allclose((public[schema.X] / 50 - 0.5) % 1, 0)
    # lon/lat are the same cell centres, to 6 decimals
    lon, lat = pyproj.Transformer.from_crs(CRS, schema.WGS84, always_xy=True).transform(
        public[schema.X].to_numpy(), public[schema.Y].to_numpy()
    )
    np.testing.assert_allclose(public[schema.LON], lon, atol=1e-6)
    np.testing.assert_allclose(public[schema.LAT], lat, atol=1e-6)
    # one point per block, shared by all its incidents
    assert public.groupby(schema.BLOCK)[schema.X].nunique().max() == 1
    # no published point is an incident's position: no raw lon/lat pair (to 6 decimals, 0.1 m)
    # is published; a cell centre may still lie near some incident by chance (see below)
    raw_pairs = set(zip(raw[schema.LON].round(6), raw[schema.LAT].round(6), strict=True))
    public_pairs = set(zip(public[schema.LON], public[schema.LAT], strict=True))
    assert not raw_pairs & public_pairs
    # and the point is a block generalisation: within 36 m (half the cell diagonal) of the
    # block median, which for most incidents is within a block length (~200 m) of them
    shift = np.hypot(
        public[schema.X] - expected[schema.X].to_numpy(),
        public[schema.Y] - expected[schema.Y].to_numpy(),
    )
    assert shift.max() <= 25 * np.sqrt(2) + 1e-6


@pytest.mark.parametrize(
    ("text", "block"),
    [
        ("012XX W MADISON ST", "012XX W MADISON ST"),
        ("1234 w Madison Street", "012XX W MADISON ST"),
        ("0000X S STATE ST", "000XX S STATE ST"),
        ("079XX S SOUTH CHICAGO AVE", "079XX S S CHICAGO AVE"),
        ("<script>alert(1)</script>", None),
        ("MADISON ST & HALSTED ST", None),
        # full addresses from other sources: the unit and any description are never published
        ("1234 W Madison St Apt 3B", "012XX W MADISON ST"),
        ("1234 W MADISON ST (REAR) JANE DOE RESIDENCE", "012XX W MADISON ST"),
        ("1234 W Madison Unit 5", "012XX W MADISON"),
        # ... while street names that contain such words or a type first stay whole
        ("115XX S FRONT AVE", "115XX S FRONT AVE"),
        ("004XX N CITY FRONT PLAZA DR", "004XX N CITY FRONT PLAZA DR"),
        ("100XX S AVE M", "100XX S AVE M"),
        ("035XX N LAKE SHORE DR SB", "035XX N LAKE SHORE DR"),
        # a direction after the street type names another street: Seattle's 5TH AVE N and
        # 5TH AVE S are kilometres apart, Chicago's DOTY AVE E and W two roads
        ("1XX BLOCK OF 5TH AVE N", "001XX 5TH AVE N"),
        ("1XX BLOCK OF 5TH AVE S", "001XX 5TH AVE S"),
        ("35XX BLOCK OF 35TH AVE NE", "035XX 35TH AVE NE"),
        ("109XX S DOTY AVE W", "109XX S DOTY AVE W"),
        ("1234 5th Ave N Apt 3", "012XX 5TH AVE N"),
        ("1234 W MADISON ST N JANE DOE", "012XX W MADISON ST N"),
    ],
)
def test_public_block(text, block):
    assert public_block(text) == block


def _frame(rows):
    frame = pd.DataFrame(rows)
    frame[schema.OCCURRED_AT] = pd.to_datetime(frame[schema.OCCURRED_AT]).dt.tz_localize(TZ)
    defaults = {
        schema.DESCRIPTION: "SIMPLE",
        schema.CATEGORY: "property",
        schema.IS_SENSITIVE: False,
        schema.DOMESTIC: False,
        schema.BLOCK: "012XX W MADISON ST",
        schema.X: 445_010.0,
        schema.Y: 4_636_990.0,
        schema.BEAT: "1232",
        schema.SECTOR: "123",
        schema.DISTRICT: "12",
    }
    for column, value in defaults.items():
        if column not in frame:
            frame[column] = value
        else:
            frame[column] = frame[column].where(frame[column].notna(), value)
    return frame


def test_hand_built_exclusions_window_and_blocks():
    as_of = date(2024, 3, 31)
    policy = PublishPolicy(delay_days=7, window_days=10)
    start, end = publish_window(as_of, policy)
    assert (start, end) == (date(2024, 3, 14), date(2024, 3, 24))
    rows = [
        {schema.OCCURRED_AT: "2024-03-14 00:00", schema.OFFENSE: "THEFT"},  # first day: kept
        {schema.OCCURRED_AT: "2024-03-13 23:59", schema.OFFENSE: "THEFT"},  # before the window
        {schema.OCCURRED_AT: "2024-03-23 23:59", schema.OFFENSE: "BURGLARY"},  # last day: kept
        {schema.OCCURRED_AT: "2024-03-24 00:00", schema.OFFENSE: "THEFT"},  # inside the delay
        {schema.OCCURRED_AT: "2024-03-20 12:00", schema.OFFENSE: "CRIMINAL SEXUAL ASSAULT"},
        {schema.OCCURRED_AT: "2024-03-20 12:00", schema.OFFENSE: "BATTERY", schema.DOMESTIC: True},
        {
            schema.OCCURRED_AT: "2024-03-20 12:00",
            schema.OFFENSE: "BATTERY",
            schema.DESCRIPTION: "AGGRAVATED DOMESTIC BATTERY",
        },
        {
            schema.OCCURRED_AT: "2024-03-20 12:00",
            schema.OFFENSE: "OTHER OFFENSE",
            schema.DESCRIPTION: "MENTAL HEALTH TRANSPORT",
        },
        {
            schema.OCCURRED_AT: "2024-03-20 12:00",
            schema.OFFENSE: "OTHER OFFENSE",
            schema.DESCRIPTION: "DEATH INVESTIGATION",
        },
        {schema.OCCURRED_AT: "2024-03-20 12:00", schema.OFFENSE: "JUVENILE CURFEW"},
        {
            schema.OCCURRED_AT: "2024-03-20 12:00",
            schema.OFFENSE: "THEFT",
            schema.IS_SENSITIVE: True,
        },
        {
            schema.OCCURRED_AT: "2024-03-20 12:00",
            schema.OFFENSE: "BATTERY",
            schema.DESCRIPTION: "SIMPLE - NO / MINOR INJURY",  # "minor injury" is not a minor
        },
        {
            schema.OCCURRED_AT: "2024-03-20 12:00",
            schema.OFFENSE: "THEFT",
            schema.BLOCK: "<script>alert(1)</script>",  # no hundred-block: dropped
        },
        {
            schema.OCCURRED_AT: "2024-03-20 12:00",
            schema.OFFENSE: "THEFT",
            schema.BLOCK: "1234 w Madison <b>street</b>",  # an exact address: generalised
        },
        {
            schema.OCCURRED_AT: "2024-03-20 12:00",
            schema.OFFENSE: "THEFT",
            schema.BEAT: schema.OUTSIDE,
        },
    ]
    incidents = _frame(rows)
    extract = build_extract(
        incidents, as_of=as_of, policy=policy, crs=CRS, timezone=TZ, generated_at=None
    )
    public = extract.incidents
    assert list(public["date"].astype(str)) == [
        "2024-03-14",
        "2024-03-20",
        "2024-03-20",
        "2024-03-23",
    ]
    assert set(public[schema.BLOCK]) == {"012XX W MADISON ST", "012XX W MADISON B ST"}
    # one raw position for the Madison block: its point is that position's cell centre,
    # (445_010, 4_636_990) -> (445_025, 4_636_975), 21.2 m away
    madison = public[public[schema.BLOCK] == "012XX W MADISON ST"].iloc[0]
    assert (madison[schema.X], madison[schema.Y]) == (445_025.0, 4_636_975.0)
    assert extract.metadata["rows_in_window"] == 13
    assert extract.metadata["rows_withheld"] == 13 - 4
    assert "<" not in "".join(public[schema.BLOCK])


def test_a_point_carries_nothing_finer_than_its_cell():
    # one incident alone on its block, moved around inside its 50 m cell: the published point
    # stays the cell centre, so it reveals the cell and nothing more
    points = set()
    for dx, dy in [(0.0, 0.0), (3.7, -12.2), (-9.9, 9.9), (39.99, -39.99)]:
        incidents = _frame(
            [
                {
                    schema.OCCURRED_AT: "2024-03-20 12:00",
                    schema.OFFENSE: "THEFT",
                    schema.X: 445_010.0 + dx,
                    schema.Y: 4_636_990.0 + dy,
                }
            ]
        )
        extract = build_extract(
            incidents,
            as_of=date(2024, 3, 30),
            policy=PublishPolicy(),
            crs=CRS,
            timezone=TZ,
        )
        row = extract.incidents.iloc[0]
        points.add((row[schema.X], row[schema.Y], row[schema.LON], row[schema.LAT]))
    assert len(points) == 1
    x, y, _, _ = points.pop()
    assert (x, y) == (445_025.0, 4_636_975.0)


def test_policy_adds_groups_and_rejects_bad_values(tmp_path):
    path = tmp_path / "policy.toml"
    path.write_text('window_days = 30\n[exclusions]\n"graffiti" = ["GRAFFITI"]\n')
    policy = load_policy(path, delay_days=3)
    assert (policy.delay_days, policy.window_days) == (3, 30)
    assert "graffiti" in policy.exclusions
    assert "sexual offenses" in policy.exclusions  # defaults always stay
    incidents = _frame(
        [
            {schema.OCCURRED_AT: "2024-03-20 12:00", schema.OFFENSE: "CRIMINAL DAMAGE"},
            {
                schema.OCCURRED_AT: "2024-03-20 12:00",
                schema.OFFENSE: "CRIMINAL DAMAGE",
                schema.DESCRIPTION: "GRAFFITI ON PROPERTY",
            },
        ]
    )
    extract = build_extract(incidents, as_of=date(2024, 3, 25), policy=policy, crs=CRS, timezone=TZ)
    assert len(extract.incidents) == 1
    bad = tmp_path / "bad.toml"
    bad.write_text('[exclusions]\n"x" = ["(unclosed"]\n')
    with pytest.raises(InputError, match=r"bad.toml: exclusion group 'x': '\(unclosed'"):
        load_policy(bad)
    one = tmp_path / "one.toml"
    one.write_text('[exclusions]\nanimal = "CRUELTY"\n')  # a single pattern, no brackets
    assert load_policy(one).exclusions["animal"] == ("CRUELTY",)
    bad.write_text("[exclusions]\nanimal = 3\n")
    with pytest.raises(InputError, match=r"\[exclusions\] animal = 3 is not a list of regexes"):
        load_policy(bad)
    with pytest.raises(ValueError, match="delay_days must be a whole number of days >= 0"):
        PublishPolicy(delay_days=-1)
    with pytest.raises(ValueError, match="snap_m must be at least 10 metres"):
        PublishPolicy(snap_m=1.0)


def test_summary_counts_recent_and_previous_periods(published):
    _, extract = published
    meta = extract.metadata
    end = date.fromisoformat(meta["window_end_exclusive"])
    public = extract.incidents
    beat = public[schema.BEAT].value_counts().index[0]
    mine = public[public[schema.BEAT] == beat]
    recent = mine[mine["date"] >= end - timedelta(days=28)]
    summary = extract.beat_summary[extract.beat_summary[schema.BEAT] == beat]
    assert dict(zip(summary[schema.CATEGORY], summary["recent"], strict=True)) == dict(
        recent[schema.CATEGORY].value_counts()
    )
    # the sample has no data before January 2018: the previous period is unknown, not zero
    assert summary["previous"].isna().all()
    weekly = extract.beat_weekly[extract.beat_weekly[schema.BEAT] == beat]
    assert weekly["incidents"].sum() == len(mine)


def test_cli_publish_and_read_back(sample_store, tmp_path, capsys):
    out = tmp_path / "pub"
    code = main(
        [
            "publish",
            "--store",
            str(sample_store.root),
            "--out",
            str(out),
            "--as-of",
            "2018-02-10",
            "--delay-days",
            "3",
            "--window-days",
            "14",
            "--json",
        ]
    )
    assert code == 0
    summary = json.loads(capsys.readouterr().out)
    extract, beats, stations = read_extract(out)
    assert summary["window"] == ["2018-01-24", "2018-02-07"]
    assert summary["rows_published"] == len(extract.incidents)
    assert extract.incidents["date"].max() <= date(2018, 2, 6)
    assert extract.incidents["date"].min() >= date(2018, 1, 24)
    assert len(beats) == 275
    assert {"name", "address", "phone"} <= set(stations.columns)
    assert "incident_id" not in stations.columns
    code = main(["publish", "--store", str(sample_store.root), "--out", str(out), "--as-of", "x"])
    assert code == 2
    assert "error: --as-of: 'x' is not a date" in capsys.readouterr().err


def test_read_extract_refuses_a_tampered_block(published, tmp_path):
    import shutil

    out = tmp_path / "public"
    shutil.copytree(published[0], out)
    incidents = pd.read_parquet(out / EXTRACT_FILES["incidents"])
    incidents.loc[3, schema.BLOCK] = "<script>alert(1)</script>"
    incidents.to_parquet(out / EXTRACT_FILES["incidents"])
    with pytest.raises(StoreError, match=r"row 3, column 'block': '<script>alert\(1\)</script>'"):
        read_extract(out)
    (out / EXTRACT_FILES["metadata"]).unlink()
    with pytest.raises(StoreError, match=r"missing metadata\.json"):
        read_extract(out)


def test_find_my_beat_files_hold_block_positions_only(raw, published, sample_store):
    out, _ = published
    found = read_finder(out)
    assert found is not None
    gazetteer, beats = found
    table = gazetteer.to_frame()
    assert list(pd.read_parquet(out / FINDER_FILES["blocks"]).columns) == [
        "block",
        "lon",
        "lat",
        "x",
        "y",
    ]
    # blocks come only from incidents not flagged sensitive or domestic
    hidden = raw[schema.IS_SENSITIVE].to_numpy(bool) | raw[schema.DOMESTIC].fillna(False).to_numpy(
        bool
    )
    shown_blocks = set(raw.loc[~hidden, schema.BLOCK].dropna().astype(str).map(normalize_block))
    hidden_only = set(raw.loc[hidden, schema.BLOCK].dropna().astype(str).map(normalize_block))
    hidden_only -= shown_blocks
    assert hidden_only  # the sample has such blocks: they must not be published
    assert not hidden_only & set(table["block"])
    assert set(table["block"]) == shown_blocks - {None}
    # the exact beats, not the simplified map outlines
    stored = sample_store.read_layer("beats")
    assert len(beats) == len(stored)
    assert beats.crs == stored.crs
    assert beats.geometry.area.sum() == pytest.approx(stored.geometry.area.sum(), rel=1e-12)


@pytest.fixture(scope="module")
def seattle_publications(seattle_store, tmp_path_factory):
    """{as-of: extract} of the Seattle store, whose data run from 2018-01-01 to 2018-12-31."""
    from geodata.publish import publish_store

    root = tmp_path_factory.mktemp("seattle_publications")
    days = ("2018-12-31", "2019-01-22", "2019-02-10", "2030-01-01")
    return {d: publish_store(seattle_store, root / d, as_of=d) for d in days}


def test_coverage_ends_where_the_data_end(seattle_publications):
    # acceptance finding 7: the end of the data was not treated as "no data", so periods past
    # it were published as 0 incidents and "= same"
    full = seattle_publications["2018-12-31"]  # window 2018-09-25 .. 2018-12-23: all covered
    assert (full.metadata["data_covered_from"], full.metadata["data_covered_to"]) == (
        "2018-09-25",
        "2018-12-23",
    )
    assert full.beat_summary["change"].notna().all()
    # window to 2019-01-14: the last 28 days (Dec 18 - Jan 14) have data only to Dec 31
    part = seattle_publications["2019-01-22"]
    assert part.metadata["data_covered_to"] == "2018-12-31"
    assert part.metadata["data_last_date"] == "2018-12-31"
    public = part.incidents
    recent = public[public["date"] >= date(2018, 12, 18)]
    summary = part.beat_summary.set_index([schema.BEAT, schema.CATEGORY])
    counted = recent.groupby([schema.BEAT, schema.CATEGORY]).size()
    assert summary["recent"].reindex(counted.index).astype(int).equals(counted.astype(int))
    assert summary["previous"].notna().all()  # Nov 20 - Dec 17: covered
    assert summary["change"].isna().all()  # part of a period is not compared with a whole
    # window to 2019-02-02: the last 28 days hold no data at all, the 28 before only in part
    late = seattle_publications["2019-02-10"]
    assert late.metadata["data_covered_to"] == "2018-12-31"
    assert late.beat_summary[["recent", "previous", "change"]].isna().all().all()
    assert late.beat_summary["window"].sum() == len(late.incidents) > 0
    # no data in the window: no coverage claimed
    empty = seattle_publications["2030-01-01"]
    assert empty.metadata["data_covered_from"] is None
    assert empty.metadata["data_covered_to"] is None
    assert empty.metadata["data_first_date"] is None
    assert empty.beat_summary.empty
