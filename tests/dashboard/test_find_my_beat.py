"""One find-my-beat: the same answer in the analyst app, the community app and the command.

200 queries drawn from the bundled data (typed addresses of known blocks, points on beat
boundaries and inside beats) are answered by the analyst app's loader, the community app's
loader (published extract only) and ``python -m geodata meetings find``; the three answers
must agree, and agree with an independent point-in-polygon test away from the edges.
"""

from __future__ import annotations

import json
from pathlib import Path

import geopandas as gpd
import numpy as np
import pandas as pd
import pytest
import shapely
from streamlit.testing.v1 import AppTest

from geodata import schema
from geodata.cli import main as geodata_main
from geodata.geocode import BlockGazetteer
from tests.helpers import folium_maps

#: README's example and the addresses the issue found answered differently by app.
NAMED = {
    "1234 W Madison St": "1224",
    "2400 N Clark St": None,
    "3510 S Michigan Ave": None,
    "1600 W 63rd St": None,
}


@pytest.fixture(scope="module")
def queries(sample_store):
    """200 typed queries: 4 named, 136 addresses of stored blocks, 60 "lat, lon" points."""
    rng = np.random.default_rng(14)
    gazetteer = BlockGazetteer.from_store(sample_store)
    blocks = gazetteer.blocks.index.to_numpy()
    chosen = rng.choice(blocks, size=136, replace=False)
    addresses = [f"{int(b[:3]) * 100 + int(rng.integers(0, 100))} {b[6:]}" for b in chosen]
    beats = sample_store.read_layer("beats").to_crs(schema.WGS84)
    # 30 points exactly on beat boundaries (vertices) and 30 inside or near beats
    vertices = shapely.get_coordinates(beats.geometry.boundary.to_numpy())
    on_edges = vertices[rng.choice(len(vertices), size=30, replace=False)]
    xmin, ymin, xmax, ymax = beats.total_bounds
    spread = np.column_stack([rng.uniform(xmin, xmax, 30), rng.uniform(ymin, ymax, 30)])
    points = [f"{lat:.7f}, {lon:.7f}" for lon, lat in np.vstack([on_edges, spread])]
    out = [*NAMED, *addresses, *points]
    assert len(out) == len(set(out)) == 200
    return out


def _analyst(sample_store, queries):
    from dashboard import data
    from dashboard import profile_data as pd_

    root, token = str(sample_store.root), data.store_token(sample_store)
    return {q: pd_.find_beat(root, token, q) for q in queries}


def _community(published, queries):
    from dashboard import community_data as cd

    root = str(published[0])
    token = cd.extract_token(root)
    return {q: cd.find_beat(root, token, q) for q in queries}


def _command(sample_store, meetings_url, queries, capsys):
    argv = ["meetings", "find", *queries, "--json", "--store", str(sample_store.root)]
    assert geodata_main([*argv, "--database", meetings_url]) == 0
    answers = json.loads(capsys.readouterr().out)
    return {a["query"]: a for a in answers}


@pytest.mark.slow
def test_every_app_and_command_gives_one_answer(
    sample_store, published, meetings_url, queries, capsys
):
    analyst = _analyst(sample_store, queries)
    community = _community(published, queries)
    command = _command(sample_store, meetings_url, queries, capsys)
    disagree = [
        (q, analyst[q].beat, community[q].beat, command[q].get("beat"))
        for q in queries
        if not (analyst[q].beat == community[q].beat == command[q].get("beat"))
    ]
    assert not disagree, disagree[:10]
    # the point each one placed the query on is the same too
    for q in queries:
        a, c = analyst[q].located, community[q].located
        assert a is not None, q
        assert c is not None, q
        assert (a.matched, a.how) == (c.matched, c.how)
        assert c.lat == pytest.approx(a.lat, abs=1e-9)
        if analyst[q].beat is None:  # the command refuses a point in no beat, in words
            assert "lies in no beat" in command[q]["error"]
        else:
            assert command[q]["lat"] == pytest.approx(a.lat, abs=1e-9)
    # README's example, and the addresses found answered differently before
    assert analyst["1234 W Madison St"].beat == "1224"
    assert all(analyst[q].beat is not None for q in NAMED)
    located = sum(analyst[q].beat is not None for q in queries)
    assert located >= 170  # random points may fall outside the city (lake, suburbs)


def test_answers_match_an_independent_point_in_polygon_test(sample_store, queries):
    analyst = _analyst(sample_store, queries)
    beats = sample_store.read_layer("beats")
    points = []
    for q in queries:
        where = analyst[q].located
        points.append((q, shapely.Point(where.lon, where.lat)))
    frame = gpd.GeoDataFrame(
        {"query": [q for q, _ in points]}, geometry=[p for _, p in points], crs=schema.WGS84
    ).to_crs(beats.crs)
    # away from edges (> 2 m from any boundary), sjoin "within" decides without a rule
    edges = shapely.union_all(beats.geometry.boundary.to_numpy())
    clear = frame[shapely.distance(frame.geometry.to_numpy(), edges) > 2.0]
    joined = gpd.sjoin(clear, beats[[schema.BEAT, "geometry"]], predicate="within", how="left")
    assert len(clear) >= 120
    for row in joined.itertuples():
        expected = None if pd.isna(row.beat) else str(row.beat)
        assert analyst[row.query].beat == expected, row.query


def test_community_page_shows_the_answer_and_a_pin(community_data_dir):
    at = AppTest.from_file(
        str(Path(__file__).resolve().parents[2] / "dashboard" / "community_app.py"),
        default_timeout=120,
    ).run()
    at.text_input[0].set_value("1234 W Madison St").run()
    assert not at.exception, at.exception
    assert at.selectbox[0].value == "1224"
    assert at.info[0].value.replace("\\", "") == "012XX W MADISON ST (block) is in beat 1224."
    (script,) = folium_maps(at)
    assert "found-pin" in script
    assert "Found: 012XX W MADISON ST" in script
