"""The meeting editor in a real headless Chromium, on SQLite and on PostgreSQL.

Two flows that AppTest cannot show (the browser keeps its own widget values):

* a version conflict, "Reload the latest version": the form shows the colleague's current
  values, and the next save keeps their change;
* a title change saved, then at once one meeting cancelled: the editor stays on the series and
  the meeting is cancelled.
"""

from __future__ import annotations

import shutil

import pytest

from geodata import meetings
from tests.browser.conftest import sign_in, wait_for_app

pytestmark = pytest.mark.browser


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def editor_app(request, start_streamlit, sample_store, meetings_template, tmp_path, samples_dir):
    if request.param == "sqlite":
        path = tmp_path / "meetings.db"
        shutil.copyfile(meetings_template, path)
        url = f"sqlite:///{path}"
    else:
        url = request.getfixturevalue("pg_url")
        meetings.open_database(url, samples_dir=samples_dir).dispose()
    env = {"BEATS_DATA_DIR": str(sample_store.root.parent), "DATABASE_URL": url}
    return start_streamlit("dashboard/app.py", env), url, request.param


def _settle(page) -> None:
    page.wait_for_timeout(700)
    wait_for_app(page)


def _no_exception(page) -> None:
    assert page.locator("[data-testid='stException']").count() == 0


def test_editor_reload_after_conflict_and_cancel_after_save(page, editor_app, artifacts):
    app_url, db_url, kind = editor_app
    engine = meetings.open_database(db_url)
    series = meetings.list_series(engine)
    sid = int(series.loc[series["beats"] == "1713", "id"].iloc[0])

    sign_in(page, app_url, db_url, "meetings")
    page.locator("[data-testid='stSidebar'] a", has_text="Edit meetings").first.click()
    wait_for_app(page)
    page.get_by_role("heading", name="Edit meetings").wait_for(timeout=90_000)
    chooser = page.locator("[data-testid='stSelectbox']").filter(has_text="Series")
    chooser.locator("input").click()
    chooser.locator("input").fill(f"#{sid} ")
    page.get_by_role("option", name=f"#{sid} Beat 1713").first.click()
    _settle(page)
    title = page.get_by_label("Title", exact=True)
    title.wait_for(timeout=30_000)
    assert title.input_value() == "Beat 1713 community meeting"

    # 1. a colleague saves while the form is open; my save is refused
    meetings.update_series(
        engine, sid, expected_version=1, title="Colleague's title", contact="Sgt. Colleague"
    )
    title.fill("My title")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text("was changed by someone else").first.wait_for(timeout=60_000)
    _settle(page)
    # 2. reload: the form shows the colleague's values
    page.get_by_role("button", name="Reload the latest version").click()
    _settle(page)
    page.get_by_role("button", name="Reload the latest version").wait_for(
        state="detached", timeout=30_000
    )
    assert title.input_value() == "Colleague's title"
    assert page.get_by_label("Contact", exact=True).input_value() == "Sgt. Colleague"
    # 3. my next change is saved on top of theirs
    page.get_by_label("Notes", exact=True).fill("Bring ID")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text(f"Saved: series #{sid} is now version 3.").wait_for(timeout=60_000)
    _settle(page)
    stored = meetings.list_series(engine).set_index("id").loc[sid]
    assert (stored["title"], stored["contact"], stored["notes"]) == (
        "Colleague's title",
        "Sgt. Colleague",
        "Bring ID",
    )

    # 4. a title change, then at once cancel the first listed meeting of the series
    title.fill("Beat 1713 meeting, new name")
    page.get_by_role("button", name="Save changes").click()
    page.get_by_text(f"Saved: series #{sid} is now version 4.").wait_for(timeout=60_000)
    _settle(page)
    rows = meetings.upcoming_meetings(engine, beat="1713")
    first = rows[rows["series_id"] == sid].iloc[0]["original_start"]
    page.get_by_label("Note for residents", exact=True).fill("Holiday")
    page.get_by_role("button", name="Apply").click()
    page.get_by_text(f"Cancel: {first:%Y-%m-%d %H:%M} done").wait_for(timeout=60_000)
    _settle(page)
    _no_exception(page)
    # still on the series (not "New series"): its form and version line are shown
    assert chooser.locator("input").input_value().startswith(f"#{sid} Beat 1713 meeting, new")
    page.get_by_text("Version 5 opened (stored: 5).").wait_for(timeout=30_000)
    assert title.input_value() == "Beat 1713 meeting, new name"
    rows = meetings.upcoming_meetings(engine, beat="1713")
    row = rows[(rows["series_id"] == sid) & (rows["original_start"] == first)].iloc[0]
    assert (row["status"], row["note"]) == ("cancelled", "Holiday")
    page.screenshot(path=str(artifacts / f"meeting_editor_{kind}.png"), full_page=True)
    engine.dispose()
