import re

import pytest

from tests.browser.conftest import sign_in, wait_for_app

pytestmark = pytest.mark.browser


def test_hotspots_page_draws_polygons_on_the_map(page, dashboard_url, dashboard_db, artifacts):
    sign_in(page, dashboard_url, dashboard_db, "analyst")
    page.locator("[data-testid='stSidebar'] a", has_text="Hotspots").first.click()
    wait_for_app(page)
    page.get_by_role("heading", name="Hotspots").first.wait_for(timeout=90_000)
    page.get_by_text(re.compile(r"\d+ hotspots? from")).first.wait_for(timeout=90_000)
    assert page.locator("[data-testid='stException']").count() == 0
    caption = page.locator("[data-testid='stCaptionContainer']").first.inner_text()
    assert caption.startswith("DBSCAN (density clusters), sector")
    # Leaflet drew the beats and the hotspot polygons (canvas renderer) in the iframe
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']").first
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    frame.locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
    # the hotspot table is shown
    page.locator("[data-testid='stDataFrame']").first.wait_for(timeout=60_000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artifacts / "hotspots.png"), full_page=True)
