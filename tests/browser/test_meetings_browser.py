"""The meetings map in a real headless Chromium: venue markers, popups, a click finds the beat."""

from __future__ import annotations

import shutil
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import numpy as np
import pyproj
import pytest

from geodata import meetings
from tests.browser.conftest import sign_in, wait_for_app

pytestmark = pytest.mark.browser


@pytest.fixture(scope="module")
def meetings_app(start_streamlit, sample_store, meetings_template, tmp_path_factory):
    path = tmp_path_factory.mktemp("browser_meetings") / "meetings.db"
    shutil.copyfile(meetings_template, path)
    url = f"sqlite:///{path}"
    env = {"BEATS_DATA_DIR": str(sample_store.root.parent), "DATABASE_URL": url}
    return start_streamlit("dashboard/app.py", env), url


def _clear_point(store, engine) -> tuple[str, float, float]:
    beats = store.read_layer("beats")
    inner = beats.geometry.representative_point()
    venues = meetings.list_venues(engine)
    to_xy = pyproj.Transformer.from_crs("EPSG:4326", beats.crs, always_xy=True)
    vx, vy = to_xy.transform(venues["lon"].to_numpy(), venues["lat"].to_numpy())
    gap = [np.hypot(vx - p.x, vy - p.y).min() for p in inner]
    best = int(np.argmax(gap))
    lon, lat = to_xy.transform(inner.iloc[best].x, inner.iloc[best].y, direction="INVERSE")
    return str(beats["beat"].iloc[best]), lat, lon


def test_meetings_map_renders_markers_and_a_click_finds_the_beat(
    page, meetings_app, sample_store, artifacts
):
    app_url, db_url = meetings_app
    sign_in(page, app_url, db_url, "meetings")
    page.locator("[data-testid='stSidebar'] a", has_text="Meetings").first.click()
    wait_for_app(page)
    page.get_by_role("heading", name="Neighborhood watch meetings").wait_for(timeout=90_000)
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']").first
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    frame.locator(".station-icon").first.wait_for(timeout=60_000)
    today = datetime.now(ZoneInfo("America/Chicago")).date()
    engine = meetings.open_database(db_url)
    expected = meetings.upcoming_meetings(engine, start=today, end=today + timedelta(days=60))
    assert frame.locator(".station-icon").count() == expected["venue_id"].nunique()
    assert page.locator("[data-testid='stException']").count() == 0
    page.wait_for_timeout(2000)
    # a marker's popup shows the venue, its phone and the next meeting
    frame.locator(".station-icon").first.click()
    popup = frame.locator(".leaflet-popup-content")
    popup.wait_for(timeout=30_000)
    text = popup.inner_text()
    assert "Next meeting" in text
    assert "Phone" in text
    page.screenshot(path=str(artifacts / "meetings_map.png"), full_page=True)
    frame.locator(".leaflet-popup-close-button").click()
    page.wait_for_timeout(500)
    # a click on the map inside the beat farthest from every venue marker finds that beat
    beat, lat, lon = _clear_point(sample_store, engine)
    leaflet = next(f for f in page.frames if "st_folium" in f.url)
    point = leaflet.evaluate(
        """([lat, lon]) => { const key = Object.keys(window).find(k => k.startsWith("map_")
                              && window[k] instanceof L.Map);
                             const p = window[key].latLngToContainerPoint([lat, lon]);
                             return {x: p.x, y: p.y}; }""",
        [lat, lon],
    )
    frame.locator(".leaflet-container").click(position=point)
    page.wait_for_timeout(1500)
    # the first lookup builds the beat index and block list (cached afterwards)
    wait_for_app(page, timeout_ms=300_000)
    try:
        page.get_by_text(f"is in beat {beat}").first.wait_for(timeout=120_000)
    finally:
        page.screenshot(path=str(artifacts / "meetings_after_click.png"), full_page=True)
    assert page.locator("[data-testid='stException']").count() == 0
