"""Every page of both apps: an axe-core scan with no serious or critical violation, a screenshot.

axe-core is vendored (tests/browser/vendor/axe-core, see its README) and injected into the page
and each of its frames (the maps), so the scan covers the maps too. Screenshots of every page go
to ``tests/artifacts/screenshots/`` (kept by CI as an artifact; git-ignored): the analyst pages
after signing in as a user holding every role (so each page shows itself, not the sign-in form),
the sign-in form itself, and the community app before and after finding a beat.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from dashboard import navigation
from tests.browser.conftest import sign_in, wait_for_app

pytestmark = pytest.mark.browser

AXE = Path(__file__).resolve().parent / "vendor" / "axe-core" / "axe.min.js"
#: Analyst pages: name -> the address typed ("" for the first page, the home page).
ANALYST_PAGES = {path: "" if n == 0 else path for n, path in enumerate(navigation.url_paths())}
#: Page titles (headings) by URL path, to check that the page itself is on the screen.
TITLES = {
    "overview": "Incidents by beat",
    "beat_profile": "Beat profile",
    "sector_review": "Sector review",
    "hotspots": "Hotspots",
    "calls": "Calls for service",
    "beat_planning": "Beat planning",
    "meetings": "Neighborhood watch meetings",
    "meeting_editor": "Edit meetings",
    "data_quality": "Data and import",
    "admin_users": "Users",
    "admin_audit": "Audit log",
    "admin_publish": "Publish the community extract",
    "admin_settings": "Settings",
}
#: Every role, so every page of the analyst app opens.
ALL_ROLES = "analyst commander meetings admin"
_SCAN = """async () => {
    const result = await axe.run(document, {resultTypes: ["violations"]});
    return result.violations
        .filter(v => v.impact === "serious" || v.impact === "critical")
        .map(v => ({id: v.id, impact: v.impact, help: v.help,
                    nodes: v.nodes.slice(0, 3).map(n => n.target.join(" "))}));
}"""


@pytest.fixture(scope="module")
def screenshots(artifacts) -> Path:
    folder = artifacts / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


def _settle(page) -> None:
    wait_for_app(page, timeout_ms=240_000)
    if page.locator("iframe").count():  # a map: wait for Leaflet inside it
        page.frame_locator("iframe").first.locator(".leaflet-container").wait_for(timeout=120_000)
    page.wait_for_timeout(1_500)


def _scan(page) -> list[dict]:
    for frame in page.frames:
        frame.add_script_tag(path=str(AXE))
    return page.evaluate(_SCAN)


def test_sign_in_form_passes_axe(page, dashboard_url, screenshots):
    page.set_viewport_size({"width": 1400, "height": 1000})
    page.goto(dashboard_url)
    _settle(page)
    page.get_by_role("heading", name="Sign in").first.wait_for(timeout=60_000)
    page.screenshot(path=str(screenshots / "analyst_sign_in.png"), full_page=True)
    violations = _scan(page)
    assert violations == [], violations


@pytest.mark.parametrize("name", list(ANALYST_PAGES))
def test_analyst_page_passes_axe(page, dashboard_url, dashboard_db, screenshots, name):
    page.set_viewport_size({"width": 1400, "height": 1600})  # the screenshot shows the page
    sign_in(page, dashboard_url, dashboard_db, ALL_ROLES, path=ANALYST_PAGES[name])
    _settle(page)
    assert page.locator("[data-testid='stException']").count() == 0
    # the page itself, not the sign-in form
    assert page.get_by_label("Password", exact=True).count() == 0
    page.get_by_role("heading", name=TITLES[name]).first.wait_for(timeout=60_000)
    page.screenshot(path=str(screenshots / f"analyst_{name}.png"), full_page=True)
    violations = _scan(page)
    assert violations == [], violations


@pytest.fixture(scope="module")
def community_url(start_streamlit, published, tmp_path_factory):
    data = tmp_path_factory.mktemp("community_a11y") / "data"
    shutil.copytree(published[0], data / "public")
    return start_streamlit(
        "dashboard/community_app.py",
        {
            "BEATS_DATA_DIR": str(data),
            "BEATS_PUBLIC_DIR": str(data / "public"),
            "DATABASE_URL": f"sqlite:///{data / 'meetings.db'}",
        },
    )


def test_community_page_passes_axe_and_works_from_the_keyboard(page, community_url, screenshots):
    page.set_viewport_size({"width": 1400, "height": 1600})
    page.goto(community_url)
    _settle(page)
    page.screenshot(path=str(screenshots / "community.png"), full_page=True)
    violations = _scan(page)
    assert violations == [], violations
    # keyboard only: Tab to the address box, type, Enter; the found beat opens
    box = page.get_by_role("textbox", name="Find your beat")
    for _ in range(20):
        page.keyboard.press("Tab")
        if box.evaluate("element => element === document.activeElement"):
            break
    assert box.evaluate("element => element === document.activeElement")
    page.keyboard.type("1234 W Madison St")
    page.keyboard.press("Enter")
    page.get_by_text("012XX W MADISON ST (block) is in beat 1224.").wait_for(timeout=120_000)
    _settle(page)
    # the download reachable by Tab: focus moves on to the beat list and onwards
    page.keyboard.press("Tab")
    focused = page.evaluate("() => document.activeElement && document.activeElement.tagName")
    assert focused in ("INPUT", "BUTTON", "A", "IFRAME", "DIV")
    page.screenshot(path=str(screenshots / "community_found.png"), full_page=True)
    violations = _scan(page)
    assert violations == [], violations
