"""Block keys and the block gazetteer ("find my beat") on the bundled Chicago and Seattle data."""

import numpy as np
import pandas as pd
import pytest

from geodata import schema, settings
from geodata.geocode import (
    BlockGazetteer,
    FoundBeat,
    block_as_address,
    find_beat,
    normalize_block,
    parse_coordinates,
)

SEATTLE_CSV = settings.bundled_samples("seattle") / "spd_crime_2018.csv.gz"


@pytest.mark.parametrize(
    ("text", "key"),
    [
        ("1234 W Madison St", "012XX W MADISON ST"),
        ("1234 west madison street", "012XX W MADISON ST"),
        ("012XX W MADISON ST", "012XX W MADISON ST"),
        ("12XX W Madison", "012XX W MADISON"),
        ("5 N State St", "000XX N STATE ST"),
        ("0000X S STATE ST", "000XX S STATE ST"),  # Chicago's zero-hundred block, one X
        ("10045 S Halsted St", "100XX S HALSTED ST"),
        ("W Madison St", None),
        ("", None),
        # Chicago's street named Northwest keeps its name (as before)
        ("060XX N NORTHWEST HWY", "060XX N NORTHWEST HWY"),
        ("6012 N Northwest Highway", "060XX N NORTHWEST HWY"),
        ("079XX S SOUTH CHICAGO AVE", "079XX S S CHICAGO AVE"),
        ("1400 Block St", "014XX BLOCK ST"),  # a street named Block is no filler
    ],
)
def test_normalize_block(text, key):
    assert normalize_block(text) == key


def test_parse_coordinates_orders():
    assert parse_coordinates("41.88, -87.63") == (41.88, -87.63)
    assert parse_coordinates("-122.4, 37.8") == (37.8, -122.4)  # first value is no latitude
    assert parse_coordinates("-87.63 41.88") == (-87.63, 41.88)  # ambiguous: lat, lon assumed
    assert parse_coordinates("1234 W Madison St") is None


@pytest.fixture(scope="module")
def incidents(sample_store):
    columns = [schema.BLOCK, schema.X, schema.Y, schema.LON, schema.LAT, schema.REPORTED_BEAT]
    return sample_store.load_incidents(columns=columns)


@pytest.fixture(scope="module")
def gazetteer(incidents, sample_store):
    return BlockGazetteer.from_incidents(incidents, sample_store.analysis_crs)


def test_every_stored_block_is_found_at_its_incidents_median(incidents, gazetteer):
    blocks = incidents.dropna(subset=[schema.BLOCK, schema.LON])
    zero_hundred = blocks[blocks[schema.BLOCK].str.match(r"^\d+X ")]
    assert len(zero_hundred) > 0  # the bundled data has 0000X blocks; they must be keyed too
    block = zero_hundred[schema.BLOCK].iloc[0]
    located = gazetteer.locate(block)
    assert located is not None
    assert located.how == "block"
    same = blocks[blocks[schema.BLOCK].map(normalize_block) == normalize_block(block)]
    assert located.lon == pytest.approx(float(np.median(same[schema.LON])))
    assert located.lat == pytest.approx(float(np.median(same[schema.LAT])))
    # every block string of the data is understood (no block silently unfindable)
    keys = blocks[schema.BLOCK].drop_duplicates().map(normalize_block)
    assert keys.notna().all(), keys[keys.isna()].index.tolist()[:5]


def test_house_number_finds_its_block_and_a_missing_block_the_nearest_on_the_street(gazetteer):
    exact = gazetteer.locate("1234 W Madison St")
    assert exact is not None
    assert exact.matched == "012XX W MADISON ST"
    assert exact.how == "block"
    known = sorted(b for b in gazetteer.blocks.index if b.endswith(" W MADISON ST"))
    hundreds = {int(b[:3]) for b in known}
    missing = next(h for h in range(1, 200) if h not in hundreds)
    nearest = min(hundreds, key=lambda h: (abs(h - missing), h))
    found = gazetteer.locate(f"{missing * 100 + 10} W Madison St")
    assert found is not None
    assert found.how == "street"
    assert abs(int(found.matched[:3]) - missing) == abs(nearest - missing)
    assert gazetteer.locate("999 Nowhere Blvd") is None


def test_coordinates_typed_lon_first_are_swapped_only_when_that_lands_in_the_area(gazetteer):
    lat_first = gazetteer.locate("41.8815, -87.6597")
    lon_first = gazetteer.locate("-87.6597, 41.8815")
    assert lat_first is not None
    assert lon_first is not None
    assert (lon_first.lon, lon_first.lat) == (lat_first.lon, lat_first.lat) == (-87.6597, 41.8815)


@pytest.mark.parametrize(
    ("text", "key"),
    [
        # Seattle's blocks, as SPD's export writes them (spd_crime_2018.csv.gz)
        ("8XX BLOCK OF NW 95TH ST", "008XX NW 95TH ST"),
        ("86XX BLOCK OF ISLAND DR S", "086XX ISLAND DR S"),
        ("110XX BLOCK OF 35TH AVE NE", "110XX 35TH AVE NE"),
        ("25XX BLOCK 14TH AVE S", "025XX 14TH AVE S"),  # a few rows lack the "OF"
        ("5XX BLOCK OF NORTHEAST NORTHGATE DR W", "005XX NE NORTHGATE DR W"),
        # ... and the same blocks typed as addresses
        ("812 NW 95th St", "008XX NW 95TH ST"),
        ("812 Northwest 95th Street", "008XX NW 95TH ST"),
        ("812 N.W. 95th St.", "008XX NW 95TH ST"),
        ("800 blk of NW 95th St", "008XX NW 95TH ST"),
        ("8612 Island Dr S", "086XX ISLAND DR S"),
        ("8612 Island Drive South", "086XX ISLAND DR S"),
        ("11012 35th Ave Northeast", "110XX 35TH AVE NE"),
        ("2010 Southwest Webster St", "020XX SW WEBSTER ST"),
        ("PIKE ST / 3RD AVE", None),  # an intersection has no block
    ],
)
def test_normalize_block_seattle(text, key):
    assert normalize_block(text) == key


@pytest.fixture(scope="module")
def seattle_blocks():
    """SPD's own block texts and beats, read from the bundled file (not through the store)."""
    raw = pd.read_csv(
        SEATTLE_CSV, usecols=["_100_block_address", "beat"], dtype=str, keep_default_na=False
    )
    return raw[raw["_100_block_address"] != ""]


@pytest.fixture(scope="module")
def seattle_gazetteer(seattle_store):
    return BlockGazetteer.from_store(seattle_store)


def test_seattle_blocks_are_keyed_without_the_block_words(seattle_blocks, seattle_gazetteer):
    texts = pd.Series(seattle_blocks["_100_block_address"].unique())
    blocks = texts[texts.str.contains("BLOCK")]
    keys = blocks.map(normalize_block)
    assert keys.notna().all()
    # only the one garbled text of SPD's export keeps the words, inside its street name
    kept = blocks[keys.str.contains(r"\b(?:BLOCK|BLK|OF)\b")].tolist()
    assert kept == ["1XX BLOCK OF N 1XX BLOCK OFND ST"]
    index = seattle_gazetteer.blocks.index
    assert index[index.str.contains(r"\bBLOCK\b")].tolist() == ["001XX N 1XX BLOCK OFND ST"]
    assert "008XX NW 95TH ST" in seattle_gazetteer.blocks.index


@pytest.mark.parametrize(
    ("address", "block"),
    [
        ("812 NW 95th St", "8XX BLOCK OF NW 95TH ST"),
        ("812 Northwest 95th Street", "8XX BLOCK OF NW 95TH ST"),
        ("8612 Island Dr S", "86XX BLOCK OF ISLAND DR S"),
    ],
)
def test_seattle_address_finds_the_beat_spd_gives_its_block(
    address, block, seattle_blocks, seattle_gazetteer, seattle_store
):
    beats = seattle_blocks.loc[seattle_blocks["_100_block_address"] == block, "beat"]
    assert (beats == beats.iloc[0]).all()  # J1 and S2: every incident of the block agrees
    found = find_beat(address, gazetteer=seattle_gazetteer, index=seattle_store.beat_index())
    assert found.located is not None
    assert found.located.how == "block"
    assert found.located.matched == normalize_block(block)
    assert found.beat == beats.iloc[0]


def test_block_as_address_gives_back_the_block(gazetteer, seattle_gazetteer):
    assert block_as_address("086XX ISLAND DR S") == "8600 Island Dr S"
    assert block_as_address("008XX NW 95TH ST") == "800 NW 95th St"
    assert block_as_address("000XX S STATE ST") == "1 S State St"
    for known in (gazetteer, seattle_gazetteer):
        keys = known.blocks.index.to_series()
        assert (keys.map(block_as_address).map(normalize_block) == keys).all()


def test_not_found_hint_gives_an_address_of_the_departments_own_data(
    gazetteer, seattle_gazetteer, seattle_store, beat_index
):
    for known, index in ((gazetteer, beat_index), (seattle_gazetteer, seattle_store.beat_index())):
        example = known.example_address()
        assert example is not None
        located = known.locate(example)
        assert located is not None
        assert located.how == "block"
        # the published copy (no counts) gives the same example
        assert BlockGazetteer.from_frame(known.to_frame(), known.crs).example_address() == example
        found = find_beat("nowhere at all", gazetteer=known, index=index)
        assert found.located is None
        assert f"(e.g. {example})" in found.message
    assert "Madison" not in seattle_gazetteer.example_address()
    empty = BlockGazetteer.from_frame(gazetteer.to_frame().iloc[:0], gazetteer.crs)
    assert empty.example_address() is None
    assert "e.g." not in FoundBeat("nowhere", None, None).message
