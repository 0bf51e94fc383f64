"""Sign-in, roles, sessions and audit in the analyst app (AppTest, real SQLite database)."""

from __future__ import annotations

import re
from datetime import date, time, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
from streamlit.testing.v1 import AppTest

from geodata import audit, meetings, users
from tests.auth_helpers import PASSWORD, ensure_user, sign_in, signed_in
from tests.helpers import folium_maps

VIEWS = Path(__file__).resolve().parents[2] / "dashboard" / "views"
#: The pages each role may open (the issue's roles; admin pages are the admin's only).
EXPECTED = {
    "analyst": {
        "overview",
        "beat_profile",
        "sector_review",
        "hotspots",
        "calls",
        "beat_planning",
        "meetings",
        "data_quality",
    },
    "commander": {
        "overview",
        "beat_profile",
        "sector_review",
        "hotspots",
        "calls",
        "beat_planning",
        "meetings",
    },
    "meetings": {"meetings", "meeting_editor"},
    "admin": {"admin_users", "admin_audit", "admin_publish", "admin_settings"},
}


@pytest.fixture
def db_url(app_env, tmp_path, monkeypatch):
    """A private database for the app (users, audit, meetings seeded on first use)."""
    url = f"sqlite:///{tmp_path / 'app.db'}"
    monkeypatch.setenv("DATABASE_URL", url)
    return url


@pytest.fixture
def engine(db_url):
    eng = users.open_database(db_url)
    yield eng
    eng.dispose()


def _registered_files(at: AppTest) -> set[str]:
    """Page files the router registered (refusal pages are functions: they have no file)."""
    return {
        Path(str(info["script_path"])).stem
        for info in at._registered_pages.values()  # AppTest's record of st.navigation
        if info.get("script_path") and Path(str(info["script_path"])).parent == VIEWS
    }


def _is_sign_in_form(at: AppTest) -> bool:
    return bool(at.title) and at.title[0].value == "Sign in"


def _button(at, label):
    (button,) = [b for b in at.button if b.label == label]
    return button


def test_signed_out_nothing_but_the_sign_in_form(app_env, db_url, engine):
    ensure_user(db_url, "analyst")  # accounts exist: no first-start admin
    at = AppTest.from_file(app_env, default_timeout=120).run()
    assert not at.exception
    assert _is_sign_in_form(at)
    assert not at.metric
    assert not at.dataframe
    assert not folium_maps(at)
    assert not _registered_files(at)  # no page registered, so none can run
    # signed out, no page file is registered: none can be switched to (the browser test
    # types the addresses)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/data_quality.py")


@pytest.mark.slow
def test_first_start_creates_an_admin_with_a_one_time_password(app_env, db_url, capsys):
    at = AppTest.from_file(app_env, default_timeout=120).run()
    printed = capsys.readouterr().err
    password = re.search(r"one-time password: (\S+)", printed).group(1)
    assert "username: admin" in printed
    sign_in(at, "admin", password)
    assert at.title[0].value == "Choose a new password"
    assert not at.metric  # no page before the password is changed
    boxes = {t.label: t for t in at.text_input}
    boxes["Current password"].input(password)
    boxes["New password"].input("my own long password")
    boxes["New password again"].input("my own long password")
    _button(at, "Change password").click().run()
    assert not at.exception
    assert at.title[0].value == "Incidents by beat"  # the demo is usable at once
    assert "admin_users" in _registered_files(at)
    engine = users.open_database(db_url)
    events = audit.read_events(engine)
    assert [(e.actor, e.action) for e in events.itertuples()][::-1] == [
        ("system:first-start", "user_add"),
        ("admin", "sign_in"),
        ("admin", "password_change"),
    ]
    engine.dispose()


@pytest.mark.parametrize("role", sorted(EXPECTED))
@pytest.mark.slow
def test_each_role_gets_exactly_its_pages(app_env, db_url, role):
    at = signed_in(app_env, role)
    assert _registered_files(at) == EXPECTED[role]
    (caption,) = [m.value for m in at.sidebar.markdown if m.value.startswith("Signed in as")]
    assert caption == f"Signed in as **test\\_{role}** ({role})"  # escaped Markdown
    forbidden = sorted({p.stem for p in VIEWS.glob("*.py")} - EXPECTED[role])
    for page in forbidden:  # not registered: the page's code cannot run for this role
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(f"views/{page}.py")


@pytest.mark.slow
def test_commander_reads_but_cannot_save_or_export(app_env, db_url, engine):
    at = signed_in(app_env, "commander")
    at.switch_page("views/sector_review.py").run()
    assert not at.exception
    assert at.title[0].value == "Sector review"
    labels = [b.proto.label for b in at.get("download_button")]
    assert labels == []  # the analyst sees the sector packets (HTML, PDF) here
    analyst = signed_in(app_env, "analyst")
    analyst.switch_page("views/sector_review.py").run()
    assert [b.proto.label for b in analyst.get("download_button")] == [
        "Printable sector packet (HTML)",
        "Sector packet (PDF, two pages)",
    ]


def test_wrong_password_then_lockout(app_env, db_url, engine, monkeypatch):
    monkeypatch.setenv("BEATS_LOCKOUT_FAILURES", "3")
    name = ensure_user(db_url, "analyst")
    at = AppTest.from_file(app_env, default_timeout=120).run()
    refusal = users.refusal_message(users.LockoutPolicy(max_failures=3))
    for _ in range(3):
        sign_in(at, name, "not the password")
        assert at.error[0].value == refusal
        assert at.error[0].value.startswith("Wrong username or password")
    sign_in(at, name, PASSWORD)  # the right password, too late
    assert at.error[0].value == refusal  # the lock does not tell that the account exists
    assert "After 3 failed sign-ins in a row an account is locked" in refusal
    assert _is_sign_in_form(at)
    events = audit.read_events(engine, action=audit.SIGN_IN_FAILED)
    assert [d["reason"] for d in events["detail"]][::-1] == ["wrong password"] * 3 + ["locked"]
    assert audit.read_events(engine, action=audit.SIGN_IN).empty


@pytest.mark.slow
def test_idle_session_is_signed_out_at_the_next_action(app_env, db_url, engine):
    at = signed_in(app_env, "commander")
    assert at.title[0].value == "Incidents by beat"
    _backdate_sessions(engine, minutes=31)  # 31 minutes pass without an action
    at.run()
    assert _is_sign_in_form(at)
    assert at.info[0].value == "You were signed out after 30 minutes of inactivity. Sign in again."
    assert not at.metric
    (event,) = audit.read_events(engine, action=audit.SESSION_ENDED).itertuples()
    assert event.actor == "test_commander"
    assert event.detail["reason"] == "idle"


def _backdate_sessions(engine, *, minutes: float) -> None:
    with engine.begin() as connection:
        rows = connection.execute(sa.select(users.sessions_table)).mappings().all()
        for row in rows:
            connection.execute(
                sa.update(users.sessions_table)
                .where(users.sessions_table.c.token_hash == row["token_hash"])
                .values(last_seen=row["last_seen"] - timedelta(minutes=minutes))
            )


@pytest.mark.slow
def test_disabled_user_is_refused_at_the_next_action(app_env, db_url, engine):
    at = signed_in(app_env, "analyst")
    at.switch_page("views/data_quality.py").run()
    assert at.title[0].value == "Data and import"
    users.set_active(engine, "test_analyst", False, actor="admin")
    at.run()
    assert _is_sign_in_form(at)
    assert at.info[0].value == "Your account has been disabled. Ask an administrator."
    assert not at.metric
    sign_in(at, "test_analyst")
    assert _is_sign_in_form(at)  # and cannot sign in again


@pytest.mark.slow
def test_sign_out(app_env, db_url, engine):
    at = signed_in(app_env, "meetings")
    _button(at, "Sign out").click().run()
    assert _is_sign_in_form(at)
    assert at.info[0].value == "You are signed out."
    assert [e.action for e in audit.read_events(engine).itertuples()][:2] == [
        "sign_out",
        "sign_in",
    ]
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/meeting_editor.py")


@pytest.mark.slow
def test_meeting_edits_are_audited_with_the_user(app_env, db_url, engine):
    meetings.open_database(db_url).dispose()  # seed the schedule
    at = signed_in(app_env, "meetings")
    at.switch_page("views/meeting_editor.py").run()
    at.text_input(key="ed_title_new").input("Block club")
    at.text_input(key="ed_beats_new").input("1713")
    at.date_input(key="ed_date_new").set_value(date(2027, 1, 13))
    at.time_input(key="ed_time_new").set_value(time(19, 0))
    at.selectbox(key="ed_rep_new").select("custom rule")
    at.text_input(key="ed_rrule_new").input("FREQ=MONTHLY;COUNT=3")
    at.checkbox(key="ed_allow_new").check()  # whatever else meets at the first venue
    _button(at, "Create series").click().run()
    assert not at.exception
    (created,) = audit.read_events(engine, action=audit.MEETING_CREATE).itertuples()
    sid = int(created.target.removeprefix("series "))
    assert created.actor == "test_meetings"
    assert created.detail["title"] == "Block club"
    assert created.detail["rrule"] == "FREQ=MONTHLY;COUNT=3"
    # edit it: the event names the field that changed, old and new
    # the editor opened the new series after the save
    at.text_input(key=f"ed_title_{sid}").input("Block club (north)")
    _button(at, "Save changes").click().run()
    assert not at.exception
    (edited,) = audit.read_events(engine, action=audit.MEETING_EDIT).itertuples()
    assert edited.actor == "test_meetings"
    assert edited.detail["changed"] == {"title": ["Block club", "Block club (north)"]}
    assert edited.detail["version"] == [1, 2]
    # cancel one meeting
    at.radio(key=f"oc_action_{sid}").set_value("Cancel")
    at.text_input(key=f"oc_note_{sid}").input("Holiday")
    _button(at, "Apply").click().run()
    assert not at.exception
    (cancelled,) = audit.read_events(engine, action=audit.MEETING_CANCEL).itertuples()
    assert (cancelled.actor, cancelled.target) == ("test_meetings", f"series {sid}")
    assert cancelled.detail["note"] == "Holiday"
    assert cancelled.detail["meeting"].startswith("2027-01-13T19:00")


def test_admin_adds_a_user_and_sees_the_audit_log(app_env, db_url, engine):
    at = signed_in(app_env, "admin")
    assert at.title[0].value == "Users"
    at.text_input[0].input("new.analyst")
    at.text_input[1].input("New Analyst")
    _button(at, "Add user").click().run()
    assert not at.exception
    password = re.search(r"`(\S+)`", at.success[0].value).group(1)
    added = users.authenticate(engine, "new.analyst", password)
    assert added.roles == ("analyst",)
    assert added.must_change_password
    at.switch_page("views/admin_audit.py").run()
    assert not at.exception
    shown = at.dataframe[0].value
    assert shown.iloc[0]["actor"] == "test_admin"
    assert shown.iloc[0]["action"] == "user_add"
    assert shown.iloc[0]["target"] == "new.analyst"
