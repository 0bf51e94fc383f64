import json

import pytest

from tests.browser.conftest import sign_in, wait_for_app

pytestmark = pytest.mark.browser


def test_propose_compare_save_and_download_in_a_browser(
    page, dashboard_url, dashboard_db, artifacts, tmp_path
):
    sign_in(page, dashboard_url, dashboard_db, "analyst")
    page.locator("[data-testid='stSidebar'] a", has_text="Beat planning").first.click()
    wait_for_app(page)
    page.get_by_role("heading", name="Beat planning").first.wait_for(timeout=90_000)
    frame = page.frame_locator("iframe[title='streamlit_folium.st_folium']").first
    frame.locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
    frame.locator(".station-icon").first.wait_for(timeout=60_000)

    page.get_by_role("button", name="Propose beats").click()
    page.get_by_text("Proposal ready").wait_for(timeout=120_000)
    wait_for_app(page)
    assert page.locator("[data-testid='stException']").count() == 0
    maps = page.frame_locator("iframe[title='streamlit_folium.st_folium']")
    for i in range(2):  # current and proposed, side by side, both drawn
        maps.nth(i).locator(".leaflet-overlay-pane canvas").first.wait_for(timeout=60_000)
    page.get_by_text("Units that change beat").first.wait_for(timeout=30_000)
    page.wait_for_timeout(2000)
    page.screenshot(path=str(artifacts / "beat_planning.png"), full_page=True)

    page.get_by_label("Plan name").fill("Browser plan")
    page.get_by_role("button", name="Save plan").click()
    page.get_by_text("Saved as plan").wait_for(timeout=60_000)
    wait_for_app(page)
    page.wait_for_timeout(1000)
    assert page.get_by_role("button", name="Download GeoJSON").count() == 1

    with page.expect_download(timeout=60_000) as info:
        page.get_by_role("button", name="Download GeoJSON").click()
    path = tmp_path / "plan.geojson"
    info.value.save_as(path)
    features = json.loads(path.read_text())["features"]
    assert len(features) == 11  # district 01 (the first in the list) keeps its 11 beats
    assert {f["properties"]["district"] for f in features} == {"01"}
