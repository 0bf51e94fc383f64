import pytest

from tests.browser.conftest import sign_in

pytestmark = pytest.mark.browser


def test_overview_map_renders_in_chromium(page, dashboard_url, dashboard_db, artifacts):
    sign_in(page, dashboard_url, dashboard_db, "commander")
    page.wait_for_selector("iframe", timeout=60_000)
    frame = page.frame_locator("iframe").first
    # Leaflet draws the beat polygons as SVG/canvas paths inside the map container
    frame.locator(".leaflet-container").wait_for(timeout=60_000)
    frame.locator(".leaflet-marker-icon.station-icon").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    assert frame.locator(".leaflet-marker-icon.station-icon").count() >= 20  # the stations
    assert frame.locator(".bw-legend").count() == 1  # the legend box
    page.screenshot(path=str(artifacts / "overview.png"), full_page=True)


@pytest.mark.parametrize("path", ["sector_review", "beat_planning"])
def test_direct_page_url_goes_through_the_router(page, dashboard_url, dashboard_db, path):
    # A bookmarked page URL must open that page inside the app's navigation (grouped sidebar
    # with icons), not Streamlit's automatic one-entry-per-file navigation.
    sign_in(page, dashboard_url, dashboard_db, "analyst", path=path)  # then the page opens
    nav = page.locator("[data-testid='stSidebar']")
    nav.wait_for(timeout=60_000)
    nav_text = nav.inner_text()
    for group in ("Analysis", "Planning", "Community", "Data"):
        assert group in nav_text
    assert "app" not in nav_text.split()  # the router script itself is never a page
    title = {"sector_review": "Sector review", "beat_planning": "Beat planning"}[path]
    page.get_by_role("heading", name=title).first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
