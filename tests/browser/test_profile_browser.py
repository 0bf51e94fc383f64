import re

import pytest

from tests.browser.conftest import sign_in, wait_for_app

pytestmark = pytest.mark.browser


def _open(page, url: str, db_url: str, title: str) -> None:
    """Sign in at the app's root and follow the router's sidebar link (as a user does)."""
    sign_in(page, url, db_url, "analyst")
    page.locator("[data-testid='stSidebar'] a", has_text=title).first.click()
    wait_for_app(page)
    page.get_by_role("heading", name=title).first.wait_for(timeout=90_000)


def _selected_beat(page) -> str:
    text = page.locator("[data-testid='stCaptionContainer']").first.inner_text()
    match = re.match(r"Beat (\d{4}):", text)
    assert match, text
    return match.group(1)


def test_beat_profile_renders_map_and_charts_and_map_click_picks_a_beat(
    page, dashboard_url, dashboard_db, artifacts
):
    _open(page, dashboard_url, dashboard_db, "Beat profile")
    page.get_by_text("CompStat comparison").wait_for(timeout=90_000)
    assert page.locator("[data-testid='stException']").count() == 0
    first = _selected_beat(page)

    # the map: Leaflet drew the beat and neighbour outlines, the station and the incidents
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']").first
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    frame.locator(".station-icon").first.wait_for(timeout=60_000)
    # polygons and incident circles are drawn on Leaflet's canvas renderer (prefer_canvas)
    frame.locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
    frame.locator(".marker-cluster, .leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
    # the browser tests run without tiles: the beat's station, and as place context every other
    # station of the bundled police_stations.csv (23) and each district's name (docs/maps.md)
    assert frame.locator(".station-icon").count() == 23
    assert frame.locator(".bw-context-text", has_text="District 01 · Central").count() == 1

    # the three Altair/Vega charts rendered (vega-embed draws a canvas or an svg)
    charts = page.locator("[data-testid='stVegaLiteChart']")
    charts.nth(2).wait_for(timeout=60_000)
    assert charts.count() == 3
    for i in range(3):
        charts.nth(i).locator("canvas, svg").first.wait_for(timeout=60_000)
    page.screenshot(path=str(artifacts / "beat_profile.png"), full_page=True)

    # clicking the map near its western edge opens the beat there (a neighbour)
    box = frame.locator(".leaflet-container").bounding_box()
    assert box is not None
    frame.locator(".leaflet-container").click(
        position={"x": box["width"] * 0.08, "y": box["height"] * 0.5}
    )
    page.wait_for_timeout(1500)
    wait_for_app(page)
    page.wait_for_function(
        """(first) => { const el = document.querySelector("[data-testid='stCaptionContainer']");
                        return el && el.innerText.startsWith("Beat ")
                               && !el.innerText.startsWith("Beat " + first); }""",
        arg=first,
        timeout=60_000,
    )
    assert page.locator("[data-testid='stException']").count() == 0
    assert _selected_beat(page) != first
    page.wait_for_timeout(5000)
    page.screenshot(path=str(artifacts / "beat_profile_after_click.png"), full_page=True)


def test_sector_review_renders_map_and_explanations(page, dashboard_url, dashboard_db, artifacts):
    _open(page, dashboard_url, dashboard_db, "Sector review")
    page.get_by_text("What changed").wait_for(timeout=90_000)
    assert page.locator("[data-testid='stException']").count() == 0
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']").first
    frame.locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
    frame.locator(".station-icon").first.wait_for(timeout=60_000)
    # one explained sentence per beat of the sector
    assert page.get_by_text("in the week before").count() >= 2
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artifacts / "sector_review.png"), full_page=True)
