"""Accounts, sign-in and lockout, sessions and the append-only audit log (SQLite, PostgreSQL)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pandas as pd
import pytest
import sqlalchemy as sa
from argon2 import PasswordHasher
from sqlalchemy.exc import DBAPIError

from geodata import audit, db, users
from geodata.users import AccountError, LockoutPolicy, SessionEnded, SignInError

PASSWORD = "correct horse battery"
T0 = datetime(2026, 12, 6, 9, 0, tzinfo=UTC)


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def engine(request, tmp_path):
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'auth.db'}"
    else:
        url = request.getfixturevalue("pg_url")
    eng = users.open_database(url)
    yield eng
    eng.dispose()


def _events(engine, action=None):
    return audit.read_events(engine, action=action)


def test_migration_adds_the_auth_branch(engine):
    assert "a0001_auth" in db.current_heads(engine)
    assert db.current_heads(engine) == db.latest_heads()


def test_add_user_hashes_with_argon2_and_audits(engine):
    user = users.add_user(
        engine, "Alice", roles="analyst commander", actor="cli:root", password=PASSWORD
    )
    assert user.username == "alice"  # case-insensitive names
    assert user.roles == ("analyst", "commander")
    assert user.must_change_password
    with engine.connect() as connection:
        stored = connection.execute(sa.text("SELECT password_hash FROM users")).scalar_one()
    assert stored.startswith("$argon2id$")
    assert PASSWORD not in stored
    assert PasswordHasher().verify(stored, PASSWORD)  # verified by the reference library
    (event,) = _events(engine).itertuples()
    assert (event.actor, event.action, event.target) == ("cli:root", "user_add", "alice")
    assert event.detail == {"password": True, "roles": ["analyst", "commander"], "sso": False}


@pytest.mark.parametrize(
    ("kwargs", "match"),
    [
        ({"username": "bob", "roles": "chief"}, "roles chief: choose from"),
        ({"username": "bob", "roles": ""}, r"roles \(none\)"),
        ({"username": "bob", "roles": "analyst", "password": "short"}, "at least 12"),
        ({"username": "bob smith", "roles": "analyst"}, "username 'bob smith'"),
        ({"username": "bob", "roles": "analyst", "password": None}, "needs a password"),
    ],
)
def test_add_user_rejects_bad_input(engine, kwargs, match):
    kwargs = {"password": PASSWORD, **kwargs}
    with pytest.raises(AccountError, match=match):
        users.add_user(engine, actor="admin", **kwargs)
    assert users.list_users(engine).empty
    assert _events(engine).empty


def test_duplicate_user_is_refused(engine):
    users.add_user(engine, "carol", roles="meetings", actor="admin", password=PASSWORD)
    with pytest.raises(AccountError, match="exists already"):
        users.add_user(engine, "CAROL", roles="analyst", actor="admin", password=PASSWORD)
    assert len(users.list_users(engine)) == 1


def test_an_audited_change_needs_an_actor(engine):
    with pytest.raises(ValueError, match="needs the user who does it"):
        users.add_user(engine, "dave", roles="analyst", actor="", password=PASSWORD)
    assert users.get_user(engine, "dave") is None  # nothing written without its audit event
    with pytest.raises(ValueError, match="needs the user who does it"):
        audit.record(engine, "  ", audit.IMPORT, target="x.csv")
    with pytest.raises(ValueError, match="unknown audit action"):
        audit.record(engine, "dave", "delete_everything")


def test_permissions_follow_roles():
    def user(*roles):
        return users.User(1, "u", "u", roles, True, False, False)

    assert user("commander").can(users.Permission.VIEW_ANALYSIS)
    assert not user("commander").can(users.Permission.EXPORT)
    assert not user("commander").can(users.Permission.IMPORT)
    assert not user("commander").can(users.Permission.EDIT_MEETINGS)
    assert not user("meetings").can(users.Permission.VIEW_ANALYSIS)
    assert not user("meetings").can(users.Permission.IMPORT)
    assert user("meetings").can(users.Permission.EDIT_MEETINGS)
    assert not user("admin").can(users.Permission.VIEW_ANALYSIS)
    assert user("admin").can(users.Permission.VIEW_AUDIT)
    assert user("analyst", "admin").permissions == (
        users.PERMISSIONS["analyst"] | users.PERMISSIONS["admin"]
    )


def test_sign_in_success_and_failure_are_audited(engine):
    users.add_user(engine, "erin", roles="analyst", actor="admin", password=PASSWORD)
    user = users.authenticate(engine, " Erin ", PASSWORD, now=T0)
    token = users.start_session(engine, user, now=T0)
    with pytest.raises(SignInError, match="Wrong username or password"):
        users.authenticate(engine, "erin", "wrong password!", now=T0)
    with pytest.raises(SignInError, match="Wrong username or password"):
        users.authenticate(engine, "nobody", PASSWORD, now=T0)  # same message: no enumeration
    users.end_session(engine, token, now=T0)
    events = _events(engine)
    assert list(events["action"])[::-1] == [
        "user_add",
        "sign_in",
        "sign_in_failed",
        "sign_in_failed",
        "sign_out",
    ]
    failed = events[events["action"] == "sign_in_failed"]
    assert [d["reason"] for d in failed["detail"]][::-1] == ["wrong password", "unknown user"]
    assert (events["at"].iloc[0] - T0) == timedelta(0)


def test_lockout_after_repeated_failures_then_expiry(engine):
    users.add_user(engine, "frank", roles="analyst", actor="admin", password=PASSWORD)
    policy = LockoutPolicy(max_failures=3, lock_minutes=10)
    for minute in range(3):
        with pytest.raises(SignInError, match="Wrong username"):
            users.authenticate(
                engine, "frank", "bad password!", policy=policy, now=T0 + timedelta(minutes=minute)
            )
    # locked: even the right password is refused (with the message of a wrong password, so
    # the lock does not tell that the account exists); the audit records the lock
    with pytest.raises(SignInError) as refused:
        users.authenticate(engine, "frank", PASSWORD, policy=policy, now=T0 + timedelta(minutes=5))
    assert str(refused.value) == users.refusal_message(policy)
    details = list(_events(engine, "sign_in_failed")["detail"])[::-1]
    assert [d["reason"] for d in details] == ["wrong password"] * 3 + ["locked"]
    assert details[-1]["locked_until"] == (T0 + timedelta(minutes=12)).isoformat()
    listed = users.list_users(engine).iloc[0]
    assert listed["failed_sign_ins"] == 3
    assert listed["locked_until"] == pd_ts(T0 + timedelta(minutes=12))
    # after the lock expires the right password works and resets the count
    user = users.authenticate(
        engine, "frank", PASSWORD, policy=policy, now=T0 + timedelta(minutes=13)
    )
    assert user.username == "frank"
    assert users.list_users(engine).iloc[0]["failed_sign_ins"] == 0


class _CountingHasher:
    """Stands in for ``users._hasher`` and counts the Argon2 verifications (the costly step)."""

    def __init__(self, hasher: PasswordHasher) -> None:
        self.hasher = hasher
        self.verified = 0

    def verify(self, password_hash: str, password: str) -> bool:
        self.verified += 1
        return self.hasher.verify(password_hash, password)

    def hash(self, password: str) -> str:
        return self.hasher.hash(password)


def test_a_locked_account_answers_like_an_unknown_one(engine, monkeypatch):
    """Neither the message nor the work done tells a locked account from an unknown name."""
    policy = LockoutPolicy(max_failures=3, lock_minutes=10)
    users.add_user(engine, "olive", roles="analyst", actor="admin", password=PASSWORD)
    users.add_user(engine, "pat", roles="analyst", actor="admin", password=PASSWORD)
    for _ in range(3):
        with pytest.raises(SignInError):
            users.authenticate(engine, "olive", "bad password!", policy=policy, now=T0)
    counting = _CountingHasher(users._hasher)
    monkeypatch.setattr(users, "_hasher", counting)
    attempts = {
        "locked, right password": ("olive", PASSWORD),
        "locked, wrong password": ("olive", "bad password!"),
        "unknown username": ("nobody", PASSWORD),
        "wrong password": ("pat", "bad password!"),
    }
    answers = {}
    for case, (name, password) in attempts.items():
        before = counting.verified
        with pytest.raises(SignInError) as refused:
            users.authenticate(engine, name, password, policy=policy, now=T0 + timedelta(minutes=1))
        answers[case] = (str(refused.value), counting.verified - before)
    expected = (users.refusal_message(policy), 1)  # one message, one Argon2 verification each
    assert answers == dict.fromkeys(attempts, expected)
    assert "locked" in expected[0]  # the real user still learns that a lock is possible
    # the audit knows the truth
    reasons = [d["reason"] for d in _events(engine, "sign_in_failed")["detail"]][::-1]
    assert reasons[-4:] == ["locked", "locked", "unknown user", "wrong password"]


def test_an_expired_lock_restarts_the_count(engine):
    """After the lock expires, the next lock needs max_failures new failures in a row."""
    users.add_user(engine, "quinn", roles="analyst", actor="admin", password=PASSWORD)
    policy = LockoutPolicy(max_failures=5, lock_minutes=15)
    for _ in range(5):
        with pytest.raises(SignInError):
            users.authenticate(engine, "quinn", "bad password!", policy=policy, now=T0)
    assert users.list_users(engine).iloc[0]["locked_until"] == pd_ts(T0 + timedelta(minutes=15))
    later = T0 + timedelta(minutes=16)  # the lock has expired
    for second in range(4):
        with pytest.raises(SignInError):
            users.authenticate(
                engine,
                "quinn",
                "bad password!",
                policy=policy,
                now=later + timedelta(seconds=second),
            )
    listed = users.list_users(engine).iloc[0]
    assert listed["failed_sign_ins"] == 4  # counted afresh, not 5 + 4
    assert listed["locked_until"] is pd.NaT
    failures = [d["failures"] for d in _events(engine, "sign_in_failed")["detail"]][::-1]
    assert failures == [1, 2, 3, 4, 5, 1, 2, 3, 4]
    fifth = later + timedelta(seconds=4)
    with pytest.raises(SignInError):
        users.authenticate(engine, "quinn", "bad password!", policy=policy, now=fifth)
    assert users.list_users(engine).iloc[0]["locked_until"] == pd_ts(fifth + timedelta(minutes=15))
    with pytest.raises(SignInError):  # locked again: the right password is refused
        users.authenticate(engine, "quinn", PASSWORD, policy=policy, now=fifth)
    assert _events(engine, "sign_in_failed")["detail"].iloc[0]["reason"] == "locked"


def test_four_failures_after_an_expired_lock_still_let_the_right_password_in(engine):
    users.add_user(engine, "rosa", roles="analyst", actor="admin", password=PASSWORD)
    policy = LockoutPolicy(max_failures=5, lock_minutes=15)
    for _ in range(5):
        with pytest.raises(SignInError):
            users.authenticate(engine, "rosa", "bad password!", policy=policy, now=T0)
    later = T0 + timedelta(minutes=16)
    for _ in range(4):
        with pytest.raises(SignInError):
            users.authenticate(engine, "rosa", "bad password!", policy=policy, now=later)
    assert users.authenticate(engine, "rosa", PASSWORD, policy=policy, now=later).username == "rosa"


def pd_ts(value):
    import pandas as pd

    return pd.Timestamp(value)


def test_reset_password_unlocks_and_forces_a_change(engine):
    users.add_user(engine, "gina", roles="analyst", actor="admin", password=PASSWORD)
    policy = LockoutPolicy(max_failures=1, lock_minutes=60)
    with pytest.raises(SignInError):
        users.authenticate(engine, "gina", "bad password!", policy=policy, now=T0)
    one_time = users.reset_password(engine, "gina", actor="admin")
    user = users.authenticate(engine, "gina", one_time, policy=policy, now=T0)
    assert user.must_change_password
    with pytest.raises(SignInError, match="current password is wrong"):
        users.change_password(engine, "gina", "not it at all", "a new long password")
    with pytest.raises(AccountError, match="at least 12"):
        users.change_password(engine, "gina", one_time, "short")
    changed = users.change_password(engine, "gina", one_time, "a new long password")
    assert not changed.must_change_password
    assert users.authenticate(engine, "gina", "a new long password", now=T0).username == "gina"
    actions = list(_events(engine)["action"])[::-1]
    assert actions == ["user_add", "sign_in_failed", "password_reset", "password_change"]


def test_idle_timeout_ends_the_session_once(engine):
    user = users.add_user(engine, "hal", roles="commander", actor="admin", password=PASSWORD)
    token = users.start_session(engine, user, now=T0)
    # activity within the timeout keeps it alive (each call moves last_seen)
    for minutes in (10, 20, 29):
        assert (
            users.resume_session(
                engine, token, idle_timeout_s=600, now=T0 + timedelta(minutes=minutes)
            ).username
            == "hal"
        )
    with pytest.raises(SessionEnded) as ended:
        users.resume_session(engine, token, idle_timeout_s=600, now=T0 + timedelta(minutes=40))
    assert ended.value.reason == "idle"
    with pytest.raises(SessionEnded) as again:  # stays ended, not re-audited
        users.resume_session(engine, token, idle_timeout_s=600, now=T0 + timedelta(minutes=41))
    assert again.value.reason == "idle"
    (event,) = _events(engine, "session_ended").itertuples()
    assert event.detail == {"idle_s": 660.0, "reason": "idle"}


def test_background_check_does_not_count_as_activity(engine):
    user = users.add_user(engine, "ivy", roles="commander", actor="admin", password=PASSWORD)
    token = users.start_session(engine, user, now=T0)
    users.resume_session(
        engine, token, idle_timeout_s=600, now=T0 + timedelta(minutes=9), touch=False
    )
    with pytest.raises(SessionEnded, match="idle"):
        users.resume_session(engine, token, idle_timeout_s=600, now=T0 + timedelta(minutes=11))


def test_disabled_user_is_refused_at_the_next_action(engine):
    user = users.add_user(engine, "jack", roles="analyst", actor="admin", password=PASSWORD)
    token = users.start_session(engine, user, now=T0)
    assert users.resume_session(engine, token, idle_timeout_s=600, now=T0).can(
        users.Permission.IMPORT
    )
    users.set_active(engine, "jack", False, actor="admin")
    with pytest.raises(SessionEnded, match="disabled"):
        users.resume_session(engine, token, idle_timeout_s=600, now=T0)
    with pytest.raises(SignInError):
        users.authenticate(engine, "jack", PASSWORD, now=T0)
    assert [d["reason"] for d in _events(engine, "sign_in_failed")["detail"]] == ["disabled"]
    users.set_active(engine, "jack", True, actor="admin")
    assert users.authenticate(engine, "jack", PASSWORD, now=T0).username == "jack"


def test_role_change_takes_effect_at_the_next_action(engine):
    user = users.add_user(engine, "kim", roles="analyst", actor="admin", password=PASSWORD)
    token = users.start_session(engine, user, now=T0)
    users.set_roles(engine, "kim", ["commander"], actor="admin")
    resumed = users.resume_session(engine, token, idle_timeout_s=600, now=T0)
    assert resumed.roles == ("commander",)
    assert not resumed.can(users.Permission.EXPORT)
    (event,) = _events(engine, "user_roles").itertuples()
    assert event.detail == {"new": ["commander"], "old": ["analyst"]}


def test_sign_out_ends_the_session(engine):
    user = users.add_user(engine, "lee", roles="analyst", actor="admin", password=PASSWORD)
    token = users.start_session(engine, user, now=T0)
    users.end_session(engine, token, now=T0)
    users.end_session(engine, token, now=T0)  # twice: audited once
    with pytest.raises(SessionEnded, match="signed out"):
        users.resume_session(engine, token, idle_timeout_s=600, now=T0)
    with pytest.raises(SessionEnded, match="unknown"):
        users.resume_session(engine, "forged-token", idle_timeout_s=600, now=T0)
    assert len(_events(engine, "sign_out")) == 1


def test_first_admin_is_created_once(engine):
    password = users.ensure_first_admin(engine)
    assert password is not None
    assert len(password) >= users.MIN_PASSWORD_LENGTH
    assert users.ensure_first_admin(engine) is None
    admin = users.authenticate(engine, "admin", password, now=T0)
    assert admin.must_change_password
    assert admin.can(users.Permission.MANAGE_USERS)
    assert admin.can(users.Permission.VIEW_ANALYSIS)  # the demo is usable at once
    assert list(users.list_users(engine)["username"]) == ["admin"]


def test_sso_accounts_sign_in_only_when_registered_and_active(engine):
    users.add_user(engine, "m.ortiz@pd.example", roles="commander", actor="admin", sso=True)
    users.add_user(engine, "local", roles="analyst", actor="admin", password=PASSWORD)
    assert users.sso_sign_in(engine, "M.Ortiz@pd.example").roles == ("commander",)
    for email in ("stranger@pd.example", "local"):
        with pytest.raises(SignInError, match="no active account"):
            users.sso_sign_in(engine, email)
    with pytest.raises(SignInError):  # an SSO-only account has no password to guess
        users.authenticate(engine, "m.ortiz@pd.example", "", now=T0)
    users.set_active(engine, "m.ortiz@pd.example", False, actor="admin")
    with pytest.raises(SignInError):
        users.sso_sign_in(engine, "m.ortiz@pd.example")
    reasons = [d["reason"] for d in _events(engine, "sign_in_failed")["detail"]][::-1]
    assert reasons == ["unknown user", "no single sign-on", "wrong password", "disabled"]


def test_audit_log_is_append_only(engine):
    event_id = audit.record(engine, "nina", audit.IMPORT, target="x.csv", detail={"rows": 3})
    for statement in (
        "UPDATE audit_log SET actor = 'someone else'",
        "DELETE FROM audit_log",
    ):
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text(statement))
    if engine.dialect.name == "postgresql":
        with pytest.raises(DBAPIError, match="append-only"), engine.begin() as connection:
            connection.execute(sa.text("TRUNCATE audit_log"))
    (event,) = _events(engine).itertuples()
    assert (event.id, event.actor, event.detail) == (event_id, "nina", {"rows": 3})


def test_read_events_filters_by_time_user_and_action(engine):
    audit.record(engine, "olga", audit.IMPORT, target="a.csv", at=T0)
    audit.record(engine, "Paul", audit.DOWNLOAD, target="b.html", at=T0 + timedelta(days=1))
    audit.record(engine, "olga", audit.DOWNLOAD, target="c.ics", at=T0 + timedelta(days=2))
    assert list(audit.read_events(engine)["target"]) == ["c.ics", "b.html", "a.csv"]
    since = audit.read_events(engine, since=(T0 + timedelta(days=1)).date())
    assert list(since["target"]) == ["c.ics", "b.html"]
    assert list(audit.read_events(engine, user="OLGA")["target"]) == ["c.ics", "a.csv"]
    assert list(audit.read_events(engine, user="paul")["target"]) == ["b.html"]
    assert list(audit.read_events(engine, action=audit.DOWNLOAD, limit=1)["target"]) == ["c.ics"]
    assert str(audit.read_events(engine)["at"].dt.tz) == "UTC"
