"""Sign in to the analyst app in tests: a real account in the test database, the real form.

Page tests open the app with :func:`signed_in`, which creates (once) a user holding the given
roles in the database the app will use (``settings.database_url()`` after the fixtures set the
environment) and fills the sign-in form like a person would: no bypass exists in the app.
"""

from __future__ import annotations

from streamlit.testing.v1 import AppTest

from geodata import settings, users

#: Password of every test account.
PASSWORD = "test password 2026"


def ensure_user(url: str, roles: str, *, username: str | None = None) -> str:
    """Create an active account with `roles` (space-separated) unless it exists; return its name."""
    name = username or "test_" + "_".join(roles.split())
    engine = users.open_database(url)
    try:
        if users.get_user(engine, name) is None:
            users.add_user(
                engine,
                name,
                roles=roles,
                actor="test-setup",
                password=PASSWORD,
                must_change_password=False,
            )
    finally:
        engine.dispose()
    return name


def sign_in(at: AppTest, username: str, password: str = PASSWORD) -> AppTest:
    """Fill and submit the sign-in form of `at` (which must show it); return `at` after the run."""
    (user_box,) = [t for t in at.text_input if t.label == "Username"]
    (password_box,) = [t for t in at.text_input if t.label == "Password"]
    user_box.input(username)
    password_box.input(password)
    (submit,) = [b for b in at.button if b.label == "Sign in"]
    return submit.click().run()


def signed_in(app: str, roles: str = "analyst", *, timeout: float = 120) -> AppTest:
    """Return an AppTest of `app` signed in as a user with `roles`, showing its home page."""
    username = ensure_user(settings.database_url(), roles)
    at = AppTest.from_file(app, default_timeout=timeout)
    at.run()
    sign_in(at, username)
    assert not at.exception, [e.value for e in at.exception]
    assert not [t for t in at.text_input if t.label == "Password"], "sign-in failed"
    return at


def opened(app: str, page: str, roles: str = "analyst", *, timeout: float = 180) -> AppTest:
    """Return an AppTest of `app` signed in with `roles`, on ``views/<page>.py``, run cleanly."""
    at = signed_in(app, roles, timeout=timeout)
    at.switch_page(f"views/{page}.py")
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at
