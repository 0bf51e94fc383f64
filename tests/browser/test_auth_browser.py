"""Sign-in, roles, sessions and audit of the analyst app in headless Chromium.

Signed out, everything the browser receives (documents, responses and every websocket frame) is
scanned for incident positions, blocks and offenses, as the community-app test does. Signed in,
each role sees exactly its pages; every action leaves one audit entry; lockout, the idle timeout
and disabling work in a real session; and the same runs on PostgreSQL.
"""

from __future__ import annotations

import gzip
import shutil
from pathlib import Path
from urllib.parse import urlparse

import pytest
from playwright.sync_api import expect

from dashboard import navigation
from geodata import audit, schema, settings, users
from tests.auth_helpers import ensure_user
from tests.browser.conftest import fill_sign_in, sign_in, wait_for_app
from tests.dashboard.test_community_app import coordinate_pairs, raw_pairs

pytestmark = pytest.mark.browser

#: Menu entries per role (titles in dashboard/navigation.py).
MENU = {
    "analyst": [
        "Overview",
        "Beat profile",
        "Sector review",
        "Hotspots",
        "Calls for service",
        "Beat planning",
        "Meetings",
        "Data and import",
    ],
    "commander": [
        "Overview",
        "Beat profile",
        "Sector review",
        "Hotspots",
        "Calls for service",
        "Beat planning",
        "Meetings",
    ],
    "meetings": ["Meetings", "Edit meetings"],
    "admin": ["Users", "Audit log", "Publish", "Settings"],
}
#: A page each role may not open, typed as an address.
FORBIDDEN = {
    "analyst": ("admin_audit", "Audit log"),
    "commander": ("data_quality", "Data and import"),
    "meetings": ("overview", "Overview"),
    "admin": ("beat_profile", "Beat profile"),
}
#: Every address of the analyst app ("" is the home page).
PAGE_PATHS = ["", *navigation.url_paths()]


def _start_app(start_streamlit, sample_store, meetings_template, root: Path, **env) -> tuple:
    """Start the analyst app on private copies of the store and the database."""
    data = root / "data"
    shutil.copytree(sample_store.root, data / "store")
    url = env.pop("DATABASE_URL", None)
    if url is None:
        shutil.copyfile(meetings_template, data / "app.db")
        url = f"sqlite:///{data / 'app.db'}"
    full = {"BEATS_DATA_DIR": str(data), "DATABASE_URL": url, **env}
    return start_streamlit("dashboard/app.py", full), url


@pytest.fixture(scope="module")
def auth_app(start_streamlit, sample_store, meetings_template, tmp_path_factory):
    """(URL, database URL) of an analyst app with its own store and database."""
    root = tmp_path_factory.mktemp("auth_app")
    return _start_app(start_streamlit, sample_store, meetings_template, root)


def _capture(page):
    frames: list[str] = []
    responses = []

    def on_socket(socket):
        socket.on(
            "framereceived",
            lambda payload: frames.append(
                payload if isinstance(payload, str) else payload.decode("utf-8", "ignore")
            ),
        )

    page.on("websocket", on_socket)
    page.on("response", lambda response: responses.append(response))
    return frames, responses


def _payload(page, responses, frames) -> str:
    documents = [page.content(), *(r.url for r in responses)]
    documents += [frame.content() for frame in page.frames if frame != page.main_frame]
    for response in responses:
        kind = response.headers.get("content-type", "")
        if response.ok and ("html" in kind or "json" in kind or "csv" in kind):
            documents.append(response.text())
    return "\n".join(documents + frames)


def _menu(page) -> list[str]:
    nav = page.locator("[data-testid='stSidebar']")
    nav.wait_for(timeout=60_000)
    links = nav.locator("a")
    return [links.nth(i).inner_text().splitlines()[-1].strip() for i in range(links.count())]


def test_signed_out_nothing_the_browser_receives_holds_incident_data(
    browser, auth_app, sample_store
):
    app_url, _ = auth_app
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    frames, responses = _capture(page)
    seen: list[str] = []
    served: list[str] = []
    for path in PAGE_PATHS:
        page.goto(f"{app_url}/{path}")
        wait_for_app(page)
        page.get_by_role("heading", name="Sign in").first.wait_for(timeout=60_000)
        assert page.locator("iframe").count() == 0
        assert page.locator("[data-testid='stSidebar'] a").count() == 0
        assert page.locator("[data-testid='stMetric']").count() == 0
        assert page.locator("[data-testid='stDataFrame']").count() == 0
        assert page.locator("[data-testid='stDownloadButton']").count() == 0
        seen.append(_payload(page, responses, []))  # bodies are gone after the next goto
        served += [urlparse(r.url).path for r in responses]
        responses.clear()
    payload = "\n".join([*seen, *frames])
    assert "Sign in" in payload  # the capture holds what was shown
    assert len(frames) >= len(PAGE_PATHS)
    raw = sample_store.load_incidents()
    assert not coordinate_pairs(payload) & raw_pairs(raw)
    assert not coordinate_pairs(payload)  # no map, no geometry at all
    blocks = raw[schema.BLOCK].dropna().astype(str).value_counts().index[:200]
    assert [b for b in blocks if b in payload] == []
    offenses = {o for o in raw[schema.OFFENSE].dropna().astype(str) if len(o) >= 8}
    assert sorted(o for o in offenses if o in payload) == []
    ids = raw[schema.INCIDENT_ID].astype(str).head(500)
    assert [i for i in ids if len(i) >= 6 and i in payload] == []
    assert [p for p in served if p.startswith("/media/")] == []  # no download, no image
    assert any(p.endswith("/_stcore/health") or p == "/" for p in served)
    context.close()


@pytest.mark.parametrize("role", sorted(MENU))
def test_each_role_sees_exactly_its_pages_and_actions(page, auth_app, role):
    app_url, db_url = auth_app
    sign_in(page, app_url, db_url, role)
    assert _menu(page) == MENU[role]
    assert page.locator("[data-testid='stException']").count() == 0
    if role == "commander":  # reads, but neither exports nor imports
        page.locator("[data-testid='stSidebar'] a", has_text="Sector review").first.click()
        wait_for_app(page)
        page.get_by_role("button", name="Open beat profile").wait_for(timeout=90_000)
        wait_for_app(page)  # the page ran to its end: the packet button would be there
        assert page.locator("[data-testid='stDownloadButton']").count() == 0
    if role == "analyst":
        page.locator("[data-testid='stSidebar'] a", has_text="Sector review").first.click()
        wait_for_app(page)
        packet = page.get_by_role("button", name="Printable sector packet (HTML)")
        packet.wait_for(timeout=90_000)
        assert packet.count() == 1
    # a page the role may not use, typed as an address: after signing in, only a refusal
    path, title = FORBIDDEN[role]
    sign_in(page, app_url, db_url, role, path=path)
    page.get_by_text(f"You do not have access to {title}.").wait_for(timeout=60_000)
    main = page.locator("[data-testid='stMain']")
    assert page.locator("iframe").count() == 0
    assert main.locator("[data-testid='stMetric']").count() == 0
    assert main.locator("[data-testid='stDataFrame']").count() == 0
    assert _menu(page) == MENU[role]  # the refused page is not listed


def _small_export(tmp_path) -> Path:
    """The first 20 incidents of a bundled Chicago file, as a CSV an analyst would upload."""
    source = settings.bundled_samples("chicago") / "incidents_2024_sample_b.csv.gz"
    with gzip.open(source, "rt", encoding="utf-8-sig") as handle:
        lines = [next(handle) for _ in range(21)]
    path = tmp_path / "upload_20.csv"
    path.write_text("".join(lines), encoding="utf-8")
    return path


def test_every_action_leaves_one_audit_entry(page, auth_app, tmp_path):
    app_url, db_url = auth_app
    name = sign_in(page, app_url, db_url, "analyst")
    # import
    page.locator("[data-testid='stSidebar'] a", has_text="Data and import").first.click()
    wait_for_app(page)
    page.get_by_role("heading", name="Import an export").wait_for(timeout=60_000)
    importer = page.get_by_role("region", name="CSV (.csv, .csv.gz), GeoJSON")  # not the drafts'
    importer.locator("input[type='file']").set_input_files(str(_small_export(tmp_path)))
    # the upload runs in the background: submitting before it ends sends no file ("Choose a
    # file first"), so wait until its chip stops spinning rather than for a fixed time
    chip = page.locator("[data-testid='stFileChip']", has_text="upload_20.csv")
    chip.wait_for(timeout=60_000)
    chip.locator("[data-testid='stFileChipIconSpinner']").wait_for(state="detached", timeout=60_000)
    assert chip.locator("[data-testid='stFileChipIconError']").count() == 0
    page.get_by_role("button", name="Validate and import").click()
    page.get_by_text("20 rows read").wait_for(timeout=120_000)
    wait_for_app(page)
    # download
    page.locator("[data-testid='stSidebar'] a", has_text="Beat profile").first.click()
    wait_for_app(page)
    button = page.get_by_role("button", name="Printable beat profile (HTML)")
    button.wait_for(timeout=90_000)
    with page.expect_download(timeout=60_000) as info:
        button.click()
    file_name = info.value.suggested_filename
    assert file_name.startswith("beat_")
    wait_for_app(page)
    # sign out
    page.get_by_role("button", name="Sign out").click()
    page.get_by_text("You are signed out.").wait_for(timeout=60_000)
    engine = users.open_database(db_url)
    events = audit.read_events(engine, user=name)
    engine.dispose()
    mine = [(e.action, e.target) for e in events.itertuples()][::-1]
    assert mine[-4:] == [
        ("sign_in", name),
        ("import", "upload_20.csv"),
        ("download", file_name),
        ("sign_out", name),
    ]
    detail = events[events["action"] == "import"]["detail"].iloc[0]
    assert detail["rows_read"] == 20
    assert detail["rows_read"] == detail["rows_accepted"] + detail["rows_rejected"]
    assert events["at"].is_monotonic_decreasing


def test_lockout_after_repeated_failures(page, auth_app):
    app_url, db_url = auth_app
    name = ensure_user(db_url, "commander", username="locked_out")
    failures, _ = settings.lockout()  # the server's policy (default 5)
    page.goto(app_url)
    wait_for_app(page)
    engine = users.open_database(db_url)

    def refusals() -> list[str]:
        events = audit.read_events(engine, user=name, action=audit.SIGN_IN_FAILED)
        return [d["reason"] for d in events["detail"]][::-1]

    for attempt in range(1, failures + 1):
        fill_sign_in(page, name, "not the password at all")
        _wait_until(page, lambda n=attempt: len(refusals()) == n)
        page.get_by_text("Wrong username or password").first.wait_for(timeout=30_000)
    fill_sign_in(page, name)  # the right password, too late
    _wait_until(page, lambda: len(refusals()) == failures + 1)
    # the same words as a wrong password, so the lock does not tell that the account exists
    page.get_by_text("Wrong username or password").first.wait_for(timeout=30_000)
    page.get_by_text(f"After {failures} failed sign-ins in a row").first.wait_for(timeout=30_000)
    assert page.locator("[data-testid='stSidebar'] a").count() == 0
    assert refusals() == ["wrong password"] * failures + ["locked"]
    engine.dispose()


def _wait_until(page, condition, timeout_s: float = 60) -> None:
    """Poll `condition` (a database check) while the browser works; fail after `timeout_s`."""
    for _ in range(int(timeout_s * 4)):
        if condition():
            return
        page.wait_for_timeout(250)
    msg = "condition not met in time"
    raise AssertionError(msg)


def test_disabled_user_is_refused_at_the_next_action(page, auth_app):
    app_url, db_url = auth_app
    name = ensure_user(db_url, "commander", username="soon_disabled")
    page.goto(app_url)
    wait_for_app(page)
    fill_sign_in(page, name)
    page.get_by_role("button", name="Sign out").wait_for(timeout=90_000)
    wait_for_app(page)
    engine = users.open_database(db_url)
    users.set_active(engine, name, False, actor="test-admin")
    engine.dispose()
    page.locator("[data-testid='stSidebar'] a", has_text="Beat profile").first.click()
    page.get_by_text("Your account has been disabled").wait_for(timeout=60_000)
    wait_for_app(page)  # the run finished: what the page showed before is gone
    assert page.locator("[data-testid='stSidebar'] a").count() == 0
    assert page.locator("iframe").count() == 0


def test_idle_timeout_signs_out_without_a_click(
    browser, start_streamlit, sample_store, meetings_template, tmp_path_factory
):
    app_url, db_url = _start_app(
        start_streamlit,
        sample_store,
        meetings_template,
        tmp_path_factory.mktemp("idle_app"),
        BEATS_IDLE_TIMEOUT_S="6",
    )
    name = ensure_user(db_url, "meetings")
    context = browser.new_context()
    page = context.new_page()
    page.goto(app_url)
    wait_for_app(page)
    fill_sign_in(page, name)
    # no action: the idle check (every 3 s) ends the session and shows the sign-in form
    page.get_by_text("You were signed out after 6 seconds of inactivity").wait_for(timeout=90_000)
    # the signed-out run may still be replacing the page: wait (up to 10 s) for its sidebar
    # to hold no page link rather than reading the count at one instant
    expect(page.locator("[data-testid='stSidebar'] a")).to_have_count(0, timeout=10_000)
    engine = users.open_database(db_url)
    events = audit.read_events(engine, user=name)
    engine.dispose()
    assert list(events["action"])[:2] == ["session_ended", "sign_in"]
    assert events["detail"].iloc[0]["reason"] == "idle"
    context.close()


@pytest.mark.postgres
def test_the_same_on_postgresql(
    browser, pg_url, start_streamlit, sample_store, meetings_template, tmp_path_factory
):
    app_url, db_url = _start_app(
        start_streamlit,
        sample_store,
        meetings_template,
        tmp_path_factory.mktemp("pg_app"),
        DATABASE_URL=pg_url,
    )
    name = ensure_user(db_url, "analyst")
    context = browser.new_context(viewport={"width": 1400, "height": 1000})
    page = context.new_page()
    page.goto(f"{app_url}/beat_profile")
    wait_for_app(page)
    fill_sign_in(page, "no_such_user")
    page.get_by_text("Wrong username or password").first.wait_for(timeout=30_000)
    fill_sign_in(page, name)
    button = page.get_by_role("button", name="Printable beat profile (HTML)")
    button.wait_for(timeout=120_000)
    with page.expect_download(timeout=60_000) as info:
        button.click()
    file_name = info.value.suggested_filename
    wait_for_app(page)
    engine = users.open_database(db_url)
    users.set_active(engine, name, False, actor="test-admin")
    page.locator("[data-testid='stSidebar'] a", has_text="Sector review").first.click()
    page.get_by_text("Your account has been disabled").wait_for(timeout=60_000)
    events = audit.read_events(engine)
    engine.dispose()
    assert engine.dialect.name == "postgresql"
    assert [(e.actor, e.action, e.target) for e in events.itertuples()][::-1] == [
        ("test-setup", "user_add", name),
        ("no_such_user", "sign_in_failed", "no_such_user"),
        (name, "sign_in", name),
        (name, "download", file_name),
        ("test-admin", "user_disable", name),
    ]
    context.close()
