"""One pass in headless Chromium over every page of both apps on the Seattle store (issue 10).

Each analyst page is opened from the sidebar in one signed-in session; none may fail or say
"district" (Seattle's top level is the precinct) or name Chicago. The community app runs on the
published Seattle extract and names the beat's precinct and its station.
"""

from __future__ import annotations

import re

import pytest

from dashboard import navigation
from geodata.publish import publish_store
from tests.browser.conftest import sign_in, wait_for_app

pytestmark = pytest.mark.browser

#: Every page of the analyst app, by its sidebar title.
TITLES = navigation.titles()
WRONG = re.compile(r"(?i)\bdistricts?\b|chicago")


@pytest.fixture(scope="module")
def seattle_apps(start_streamlit, seattle_store, tmp_path_factory) -> tuple[str, str, str]:
    """(analyst URL, community URL, database URL) of servers on the Seattle store."""
    work = tmp_path_factory.mktemp("seattle_browser")
    db_url = f"sqlite:///{work / 'seattle.db'}"
    public = work / "public"
    publish_store(seattle_store, public, as_of="busiest")
    env = {
        "BEATS_DATA_DIR": str(seattle_store.root.parent),
        "DATABASE_URL": db_url,
        "BEATS_PUBLIC_DIR": str(public),
        "BEATS_DEPARTMENT": "seattle",
        "BEATS_TILE_URL": "none",
    }
    analyst = start_streamlit("dashboard/app.py", env)
    community = start_streamlit("dashboard/community_app.py", env)
    return analyst, community, db_url


def test_every_page_of_both_apps_on_seattle(page, seattle_apps, artifacts):
    analyst, community, db_url = seattle_apps
    sign_in(page, analyst, db_url, "admin analyst commander meetings")
    nav = page.locator("[data-testid='stSidebar']")
    for title in TITLES:
        link = nav.get_by_role("link", name=title).first
        slug = link.get_attribute("href").rstrip("/").rsplit("/", 1)[-1]
        link.click()
        page.wait_for_url(re.compile(f"/{slug}$"), timeout=60_000)
        wait_for_app(page)
        main = page.locator("[data-testid='stMain']")
        main.locator("h1").first.wait_for(timeout=90_000)
        page.wait_for_timeout(1000)  # let the rerun the click started begin, then end
        wait_for_app(page)
        assert page.locator("[data-testid='stException']").count() == 0, title
        text = main.inner_text()
        wrong = WRONG.findall(text)
        assert not wrong, (title, wrong)
        if title == "Beat profile":  # its caption: "sector K, precinct W"
            assert re.search(r"sector \S+, precinct", text), text[:1500]
            page.screenshot(path=str(artifacts / "seattle_beat_profile.png"), full_page=True)
    # the community app: find the East precinct station's block; its beat, precinct and station
    page.goto(community)
    wait_for_app(page)
    finder = page.get_by_label("Find your beat: type a block address (or lat, lon)")
    finder.fill("47.6150, -122.3171")
    finder.press("Enter")
    wait_for_app(page)
    caption = page.get_by_text(re.compile(r"^Beat E\w+ · sector E, precinct E\."))
    caption.first.wait_for(timeout=90_000)
    page.get_by_text("East station").first.wait_for(timeout=60_000)
    assert page.locator("[data-testid='stException']").count() == 0
    assert not WRONG.findall(page.locator("[data-testid='stMain']").inner_text())
    page.screenshot(path=str(artifacts / "seattle_community.png"), full_page=True)
