import pytest

from tests.browser.conftest import wait_for_app

pytestmark = pytest.mark.browser


def test_overview_map_renders_in_chromium(page, dashboard_url, artifacts):
    page.goto(dashboard_url)
    wait_for_app(page)
    page.wait_for_selector("iframe", timeout=60_000)
    frame = page.frame_locator("iframe").first
    # Leaflet draws the beat polygons as SVG/canvas paths inside the map container
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    frame.locator(".leaflet-marker-icon").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    assert frame.locator(".leaflet-marker-icon").count() >= 20  # the stations
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)
