"""Every page of both apps on the Seattle store, its levels named as Seattle names them.

Seattle's levels are beat / sector / precinct: a page that says "district" (Chicago's word, the
store's canonical column name) or names Chicago anywhere is wrong. Page-specific values are
checked against the raw beat layer and the stored rows (issue 10).
"""

from __future__ import annotations

import re
from pathlib import Path

import geopandas as gpd
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from dashboard import navigation
from geodata.department import load_department
from geodata.publish import publish_store, read_extract
from tests.auth_helpers import signed_in
from tests.conftest import APP
from tests.helpers import _walk

SEATTLE = load_department("seattle")
VIEWS = [spec.file for spec in navigation.PAGE_SPECS]
COMMUNITY_APP = str(Path(APP).parent / "community_app.py")
ALL_ROLES = "admin analyst commander meetings"
#: Words that must not appear on a Seattle page.
CHICAGO_WORDS = re.compile(r"(?i)\bdistricts?\b|chicago|\bCAPS\b")


def visible_text(at: AppTest) -> list[str]:
    """Return the texts a user sees: bodies, labels, values, options, table headers."""
    texts: list[str] = []
    for root in (at.main, at.sidebar):
        for element in _walk(root):
            proto = getattr(element, "proto", None)
            for name in ("body", "label", "caption", "placeholder", "help"):
                value = getattr(proto, name, None)
                if isinstance(value, str) and value:
                    texts.append(value)
            options = getattr(proto, "options", None)
            if options is not None and not isinstance(options, str):
                texts.extend(str(o) for o in options)
            try:
                value = element.value
            except Exception:  # elements without a value
                continue
            if isinstance(value, pd.DataFrame):
                texts.extend(str(c) for c in value.columns)
                texts.extend(str(i) for i in value.index.names if i)
            elif isinstance(value, str):
                texts.append(value)
    return texts


@pytest.fixture
def seattle_env(seattle_store, tmp_path, monkeypatch):
    monkeypatch.setenv("BEATS_DATA_DIR", str(seattle_store.root.parent))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'seattle.db'}")
    monkeypatch.setenv("BEATS_PUBLIC_DIR", str(tmp_path / "public"))
    monkeypatch.setenv("BEATS_TILE_URL", "none")
    return APP


@pytest.fixture(scope="module")
def raw_layer() -> gpd.GeoDataFrame:
    return gpd.read_file(SEATTLE.beats_file)


@pytest.mark.parametrize(  # the home page locally, every page under --run-slow
    "view", [pytest.param(v, marks=() if n == 0 else pytest.mark.slow) for n, v in enumerate(VIEWS)]
)
def test_every_analyst_page_speaks_seattle(seattle_env, view):
    at = signed_in(seattle_env, ALL_ROLES, timeout=240)
    at.switch_page(f"views/{view}").run()
    assert not at.exception, [e.value for e in at.exception]
    assert not at.error, [e.value for e in at.error]
    texts = visible_text(at)
    assert texts, "the page showed nothing"
    wrong = [t for t in texts if CHICAGO_WORDS.search(t)]
    assert not wrong, wrong


def test_data_page_counts_seattle(seattle_env, seattle_store, raw_layer):
    at = signed_in(seattle_env, ALL_ROLES, timeout=240)
    at.switch_page("views/data_quality.py").run()
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Beats"] == f"{raw_layer['beat'].nunique():,}" == "55"
    assert metrics["Stored incidents"] == f"{seattle_store.count():,}"
    assert metrics["Analysis CRS"] == "EPSG:26910"


def test_beat_planning_offers_seattle_precincts(seattle_env, raw_layer):
    at = signed_in(seattle_env, ALL_ROLES, timeout=240)
    at.switch_page("views/beat_planning.py").run()
    assert not at.exception
    choices = [s for s in at.selectbox if "recinct" in s.label]
    assert choices, [s.label for s in at.selectbox]
    offered = {str(o) for o in choices[0].options}
    assert set(raw_layer["first_prec"].dropna()) <= offered


@pytest.fixture
def seattle_public(seattle_store, tmp_path, monkeypatch):
    """The Seattle store published to a public directory, and the community app pointed at it."""
    public = tmp_path / "public"
    publish_store(seattle_store, public, as_of="busiest")
    monkeypatch.setenv("BEATS_PUBLIC_DIR", str(public))
    monkeypatch.setenv("BEATS_DATA_DIR", str(tmp_path / "community"))
    monkeypatch.setenv("DATABASE_URL", f"sqlite:///{tmp_path / 'seattle_meetings.db'}")
    monkeypatch.setenv("BEATS_DEPARTMENT", "seattle")
    monkeypatch.setenv("BEATS_TILE_URL", "none")
    return public


def test_community_app_speaks_seattle_and_shows_each_precincts_station(seattle_public, raw_layer):
    extract, _, _ = read_extract(seattle_public)
    assert extract.metadata["levels"] == {
        "beat": "beat",
        "sector": "sector",
        "district": "precinct",
    }
    at = AppTest.from_file(COMMUNITY_APP, default_timeout=240).run()
    assert not at.exception, [e.value for e in at.exception]
    wrong = [t for t in visible_text(at) if CHICAGO_WORDS.search(t)]
    assert not wrong, wrong
    beats = raw_layer.dropna(subset=["first_prec"]).drop_duplicates("beat").set_index("beat")
    stations = pd.read_csv(SEATTLE.stations_file, dtype=str).set_index("PRECINCT")["NAME"]
    shown = set()
    for precinct, group in beats.groupby("first_prec"):
        beat = sorted(group.index)[0]
        if beat not in at.selectbox[0].options:
            continue  # a beat without published incidents is not offered
        at.selectbox[0].select(beat).run()
        assert not at.exception
        caption = next(c.value for c in at.caption if c.value.startswith(f"Beat {beat} "))
        assert f"sector {group.loc[beat, 'sector']}, precinct {precinct}" in caption
        assert {m.label: m.value for m in at.metric}["Your station"] == stations[precinct]
        wrong = [t for t in visible_text(at) if CHICAGO_WORDS.search(t)]
        assert not wrong, wrong
        shown.add(precinct)
    assert shown == {"N", "E", "S", "W", "SW"}
