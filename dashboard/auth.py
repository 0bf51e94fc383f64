"""Sign-in, sessions, permissions and audit calls of the analyst app (thin, over geodata.users).

The router (:mod:`dashboard.app`) calls :func:`signed_in_user` before anything else: it returns
the user of a live session, or shows the sign-in form (local account, or single sign-on through
``st.login`` when Streamlit secrets hold an ``[auth]`` section) and stops the run, so no page reads
data for someone signed out. Pages ask :func:`can` before showing an action and record what
they did with :func:`record`; :func:`download_button` audits every file handed out.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import Callable, Iterable, Mapping
from typing import Literal, NoReturn, TypedDict, Unpack

import streamlit as st
from sqlalchemy import Engine
from streamlit.delta_generator import DeltaGenerator
from streamlit.errors import StreamlitSecretNotFoundError

from dashboard.maps import plain
from geodata import audit, settings, users
from geodata.users import AccountError, SessionEnded, SignInError, User

__all__ = [
    "NEXT_KEY",
    "NOTICE_KEY",
    "TOKEN_KEY",
    "USER_KEY",
    "can",
    "current_user",
    "database",
    "download_button",
    "record",
    "refusal",
    "requested_page",
    "require_user",
    "sidebar",
    "signed_in_user",
    "sso_configured",
]

log = logging.getLogger(__name__)

#: Session-state key of the secret token of the signed-in session.
TOKEN_KEY = "auth_session_token"
#: Session-state key of the user this run was authorised for (re-read on every run).
USER_KEY = "auth_user"
#: Session-state key of a message for the sign-in form (why the last session ended).
NOTICE_KEY = "auth_notice"
#: Session-state key of the page address typed before signing in (opened right after).
NEXT_KEY = "auth_next_page"

_ENDED = {
    "idle": "You were signed out after {minutes} of inactivity. Sign in again.",
    "disabled": "Your account has been disabled. Ask an administrator.",
    "signed out": "You are signed out.",
}


def _minutes(seconds: float) -> str:
    return f"{seconds / 60:g} minutes" if seconds >= 60 else f"{seconds:g} seconds"


@st.cache_resource(show_spinner=False)
def _database(url: str) -> Engine:
    """Open and migrate the database once per process; create the first admin if none."""
    engine = users.open_database(url)
    password = users.ensure_first_admin(engine)
    if password is not None:
        banner = (
            "\n" + "=" * 72 + "\nBeatwise: no user accounts yet, so an administrator was created."
            f"\n  username: admin\n  one-time password: {password}\n"
            "Sign in with it and choose a new password. Add users on the Users page\n"
            "or with: python -m geodata users add NAME --role analyst\n" + "=" * 72 + "\n"
        )
        print(banner, file=sys.stderr, flush=True)  # the console of `streamlit run`
    return engine


def database() -> Engine:
    """Return the engine of the product database (users, sessions, audit, meetings, plans)."""
    return _database(settings.database_url())


def sso_configured() -> bool:
    """Return whether Streamlit secrets configure an OpenID Connect provider (``[auth]``)."""
    try:
        return bool(st.secrets.get("auth"))
    except (StreamlitSecretNotFoundError, FileNotFoundError):
        return False


def _sso_providers() -> list[str]:
    """Return the named providers of ``[auth.NAME]`` sections (empty: the default one)."""
    section = st.secrets.get("auth") or {}
    return [k for k, v in section.items() if isinstance(v, Mapping)]


def _sso_user_logged_in() -> bool:
    return sso_configured() and bool(getattr(st.user, "is_logged_in", False))


def _policy() -> users.LockoutPolicy:
    failures, minutes = settings.lockout()
    return users.LockoutPolicy(max_failures=failures, lock_minutes=minutes)


def _forget(reason: str | None = None) -> None:
    st.session_state.pop(TOKEN_KEY, None)
    st.session_state.pop(USER_KEY, None)
    if reason:
        message = _ENDED.get(reason, "Your session ended. Sign in again.")
        st.session_state[NOTICE_KEY] = message.format(minutes=_minutes(settings.idle_timeout_s()))


def current_user() -> User | None:
    """Return the user this run was authorised for (set by :func:`signed_in_user`), or None."""
    return st.session_state.get(USER_KEY)


def require_user() -> User:
    """Return the signed-in user; raise if nobody is (pages run only for a signed-in user).

    Raises
    ------
    PermissionError
        If this run was not authorised by :func:`signed_in_user`.
    """
    user = current_user()
    if user is None:
        msg = "this page needs a signed-in user"
        raise PermissionError(msg)
    return user


def can(permission: users.Permission) -> bool:
    """Return whether the signed-in user holds `permission` (False when signed out)."""
    user = current_user()
    return user is not None and user.can(permission)


def record(action: str, target: str = "", detail: Mapping[str, object] | None = None) -> int:
    """Write one audit event by the signed-in user; raise if nobody is signed in."""
    user = current_user()
    if user is None:
        msg = f"{action} needs a signed-in user"
        raise PermissionError(msg)
    return audit.record(database(), user.username, action, target=target, detail=detail)


def _resume() -> User | None:
    token = st.session_state.get(TOKEN_KEY)
    engine = database()
    if token is None and _sso_user_logged_in():
        try:
            user = users.sso_sign_in(engine, str(st.user.email or ""))
        except SignInError as err:
            st.session_state[NOTICE_KEY] = str(err)
            return None
        token = users.start_session(engine, user, method="oidc")
        st.session_state[TOKEN_KEY] = token
    if token is None:
        return None
    try:
        user = users.resume_session(engine, token, idle_timeout_s=settings.idle_timeout_s())
    except SessionEnded as ended:
        _forget(ended.reason)
        if _sso_user_logged_in():
            st.logout()  # else the provider's cookie would open a new session at once
        return None
    st.session_state[USER_KEY] = user
    return user


def _sign_in_form() -> None:
    st.title("Sign in")
    st.caption("Beatwise analyst app: incident data for authorised staff only.")
    if notice := st.session_state.pop(NOTICE_KEY, None):
        st.info(notice)
    if sso_configured():
        providers = _sso_providers()
        if providers:
            for provider in providers:
                if st.button(f"Sign in with {provider}", key=f"sso_{provider}", type="primary"):
                    st.login(provider)
        elif st.button("Sign in with your organisation account", type="primary"):
            st.login()
        if _sso_user_logged_in() and st.button("Sign out of the identity provider"):
            st.logout()
        st.caption("Or with a local account:")
    with st.form("sign_in"):
        username = st.text_input("Username", autocomplete="username")
        password = st.text_input("Password", type="password", autocomplete="current-password")
        submitted = st.form_submit_button("Sign in", type="primary")
    if submitted:
        engine = database()
        try:
            user = users.authenticate(engine, username, password, policy=_policy())
        except SignInError as err:
            st.error(str(err))
            return
        st.session_state[TOKEN_KEY] = users.start_session(engine, user)
        st.session_state[NEXT_KEY] = _requested_page()
        st.rerun()


def _requested_page() -> str:
    """Return the last segment of the address in the browser (a page's ``url_path``)."""
    url = st.context.url or ""
    return url.rstrip("/").rsplit("/", 1)[-1] if url.count("/") > 2 else ""


def requested_page() -> str:
    """Return, once, the page address the user typed before signing in ('' for none)."""
    return st.session_state.pop(NEXT_KEY, "") or ""


def _change_password_form(user: User) -> None:
    st.title("Choose a new password")
    st.info(
        f"Signed in as **{user.username}** with a one-time password: choose your own "
        f"(at least {users.MIN_PASSWORD_LENGTH} characters) before you continue."
    )
    with st.form("change_password"):
        old = st.text_input("Current password", type="password")
        new = st.text_input("New password", type="password", autocomplete="new-password")
        again = st.text_input("New password again", type="password", autocomplete="new-password")
        submitted = st.form_submit_button("Change password", type="primary")
    if submitted:
        if new != again:
            st.error("The two new passwords differ.")
            return
        try:
            users.change_password(database(), user.username, old, new)
        except (SignInError, AccountError) as err:
            st.error(str(err))
            return
        st.rerun()


def _sign_out() -> None:
    token = st.session_state.get(TOKEN_KEY)
    if token is not None:
        users.end_session(database(), token)
    _forget("signed out")
    if _sso_user_logged_in():
        st.logout()


def sidebar(user: User) -> None:
    """Show who is signed in, with which roles, and the sign-out button."""
    with st.sidebar:
        st.markdown(f"Signed in as **{plain(user.display_name)}** ({', '.join(user.roles)})")
        st.button("Sign out", on_click=_sign_out, key="auth_sign_out", icon=":material/logout:")


def _watch_idle() -> None:
    """End an idle session without waiting for the next click (runs as a timed fragment)."""
    token = st.session_state.get(TOKEN_KEY)
    if token is None:
        return
    try:
        users.resume_session(
            database(), token, idle_timeout_s=settings.idle_timeout_s(), touch=False
        )
    except SessionEnded:
        st.rerun(scope="app")  # the router then signs out and shows the sign-in form


def _only(body: Callable[[], None], title: str, page_paths: Iterable[str]) -> NoReturn:
    """Run `body` as the only page, under every page address, with no menu; stop the run."""
    pages = [st.Page(body, title=title, default=True)]
    pages += [st.Page(body, title=title, url_path=p, visibility="hidden") for p in page_paths]
    st.navigation(pages, position="hidden").run()  # replaces a menu shown before sign-out
    st.stop()


def _password_page() -> None:
    _change_password_form(require_user())
    st.button("Sign out", on_click=_sign_out, key="auth_sign_out_pw")


def signed_in_user(page_paths: Iterable[str] = ()) -> User:
    """Return the user of this session, or show sign-in (or password change) and stop the run.

    Checked on every run, before any page code: the session must exist, not be idle longer
    than ``BEATS_IDLE_TIMEOUT_S`` and belong to an active user; roles are read afresh.

    Parameters
    ----------
    page_paths
        The address of every page: signed out, each shows the sign-in form (and is opened
        after signing in).
    """
    user = _resume()
    if user is None:
        st.session_state.pop(USER_KEY, None)
        _only(_sign_in_form, "Sign in", page_paths)
    if user.must_change_password:
        _only(_password_page, "Choose a new password", page_paths)
    every_s = max(1.0, min(60.0, settings.idle_timeout_s() / 2))
    st.fragment(_watch_idle, run_every=every_s)()
    return user


def refusal(title: str) -> Callable[[], None]:
    """Return a page body that shows only a refusal (for a page the user's roles do not allow)."""

    def refused() -> None:
        user = current_user()
        roles = ", ".join(user.roles) if user else "none"
        st.error(
            f"You do not have access to {title}. Your roles: {roles}. "
            "Ask an administrator if you need it."
        )

    return refused


def _log_download(file_name: str, label: str) -> None:
    if current_user() is not None:
        record(audit.DOWNLOAD, file_name, {"button": label})


class _DownloadOptions(TypedDict, total=False):
    """The further keyword arguments of ``st.download_button`` (as Streamlit 1.67 takes them)."""

    help: str | None
    type: Literal["primary", "secondary", "tertiary"]
    icon: str | None
    icon_position: Literal["left", "right"]
    disabled: bool
    use_container_width: bool | None
    width: Literal["stretch", "content"] | int
    shortcut: str | None
    wrap: bool | None


def download_button(
    label: str,
    data: bytes | str,
    *,
    file_name: str,
    mime: str,
    key: str | None = None,
    permission: users.Permission = users.Permission.EXPORT,
    container: DeltaGenerator | None = None,
    **kwargs: Unpack[_DownloadOptions],
) -> bool:
    """Show ``st.download_button`` to users holding `permission`; audit every click.

    Returns False (and shows nothing) when the user may not download. The file is audited as
    ``download`` with its name and the button's label. `container` is where to draw it (a
    column; default: the page). Further keyword arguments go to ``st.download_button`` as they
    are.
    """
    if not can(permission):
        return False
    return (container or st).download_button(
        label,
        data,
        file_name=file_name,
        mime=mime,
        key=key,
        on_click=_log_download,
        args=(file_name, label),
        **kwargs,
    )
