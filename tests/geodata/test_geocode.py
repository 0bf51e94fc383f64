"""Block keys and the block gazetteer ("find my beat") on the bundled Chicago incidents."""

import numpy as np
import pytest

from geodata import schema
from geodata.geocode import BlockGazetteer, normalize_block, parse_coordinates


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
