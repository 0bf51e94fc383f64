"""Local accounts, roles, sign-in with lockout, and server-side sessions with an idle timeout.

Accounts live in the product's SQL database (table ``users``, migration branch ``auth``);
passwords are hashed with Argon2id (``argon2-cffi``). A user holds one or more roles; a role
grants permissions (:data:`PERMISSIONS`), and the dashboard shows a page or an action only to a
user holding its permission. Sessions are rows of ``sessions`` keyed by the SHA-256 of a random
token: :func:`resume_session` checks, on every request, that the session was not ended, is not
idle longer than the timeout and that its user is still active. Every change here writes an
:mod:`geodata.audit` event in the same transaction, so none happens without its actor.
"""

from __future__ import annotations

import hashlib
import logging
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum, auto
from typing import overload

import pandas as pd
import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from sqlalchemy import Connection, Engine
from sqlalchemy.exc import IntegrityError

from geodata import audit, db
from geodata.errors import InputError

__all__ = [
    "MIN_PASSWORD_LENGTH",
    "PERMISSIONS",
    "ROLES",
    "AccountError",
    "LockoutPolicy",
    "Permission",
    "SessionEnded",
    "SignInError",
    "User",
    "add_user",
    "authenticate",
    "change_password",
    "end_session",
    "ensure_first_admin",
    "get_user",
    "list_users",
    "normalize_username",
    "open_database",
    "refusal_message",
    "reset_password",
    "resume_session",
    "set_active",
    "set_roles",
    "sso_sign_in",
    "start_session",
]

log = logging.getLogger(__name__)


# --- roles and permissions -----------------------------------------------------------------
class Permission(StrEnum):
    """What a role may do; the value is the member's name in lower case (``view_analysis``)."""

    VIEW_ANALYSIS = auto()
    SAVE_PLAN = auto()
    IMPORT = auto()
    EXPORT = auto()
    VIEW_MEETINGS = auto()
    EDIT_MEETINGS = auto()
    MANAGE_USERS = auto()
    PUBLISH = auto()
    SETTINGS = auto()
    VIEW_AUDIT = auto()


#: The roles, in the order they are shown.
ROLES = ("analyst", "commander", "meetings", "admin")
#: What each role may do (least privilege: a user with several roles gets the union).
PERMISSIONS: dict[str, frozenset[Permission]] = {
    "analyst": frozenset(
        {
            Permission.VIEW_ANALYSIS,
            Permission.SAVE_PLAN,
            Permission.IMPORT,
            Permission.EXPORT,
            Permission.VIEW_MEETINGS,
        }
    ),
    "commander": frozenset({Permission.VIEW_ANALYSIS, Permission.VIEW_MEETINGS}),
    "meetings": frozenset({Permission.VIEW_MEETINGS, Permission.EDIT_MEETINGS}),
    "admin": frozenset(
        {Permission.MANAGE_USERS, Permission.PUBLISH, Permission.SETTINGS, Permission.VIEW_AUDIT}
    ),
}
#: Shortest password accepted.
MIN_PASSWORD_LENGTH = 12
#: Roles of the administrator created on first start, so the demo is usable at once.
FIRST_ADMIN_ROLES = ("admin", "analyst", "meetings")

_USERNAME = re.compile(r"^[a-z0-9][a-z0-9._@+-]{0,199}$")
_hasher = PasswordHasher()
#: Verified against when the username is unknown, so a miss costs as long as a wrong password.
_DUMMY_HASH = _hasher.hash(secrets.token_urlsafe(16))

_metadata = sa.MetaData()
users_table = sa.Table(
    "users",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("username", sa.String(200), nullable=False, unique=True),
    sa.Column("display_name", sa.String(200), nullable=False),
    sa.Column("roles", sa.String(200), nullable=False),
    sa.Column("password_hash", sa.String(400), nullable=True),
    sa.Column("sso", sa.Boolean, nullable=False),
    sa.Column("is_active", sa.Boolean, nullable=False),
    sa.Column("must_change_password", sa.Boolean, nullable=False),
    sa.Column("failed_sign_ins", sa.Integer, nullable=False),
    sa.Column("locked_until", sa.DateTime(timezone=True), nullable=True),
    sa.Column("created", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_sign_in", sa.DateTime(timezone=True), nullable=True),
)
sessions_table = sa.Table(
    "sessions",
    _metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user_id", sa.Integer, sa.ForeignKey("users.id"), nullable=False),
    sa.Column("method", sa.String(16), nullable=False),
    sa.Column("started", sa.DateTime(timezone=True), nullable=False),
    sa.Column("last_seen", sa.DateTime(timezone=True), nullable=False),
    sa.Column("ended", sa.DateTime(timezone=True), nullable=True),
    sa.Column("end_reason", sa.String(32), nullable=True),
)


class AccountError(InputError):
    """An account operation cannot be done as asked (unknown user, bad role, weak password)."""


class SignInError(ValueError):
    """A sign-in was refused; the message never says whether the username exists."""


class SessionEnded(Exception):  # noqa: N818 - a state, not a programming error
    """The session is over: signed out, idle too long, unknown, or its user was disabled."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True)
class LockoutPolicy:
    """How many failed sign-ins in a row lock an account, and for how long."""

    max_failures: int = 5
    lock_minutes: float = 15.0


@dataclass(frozen=True)
class User:
    """An account as the application sees it (never its password hash)."""

    id: int
    username: str
    display_name: str
    roles: tuple[str, ...]
    is_active: bool
    must_change_password: bool
    sso: bool

    @property
    def permissions(self) -> frozenset[Permission]:
        """Return the union of the permissions of the user's roles."""
        return frozenset().union(*(PERMISSIONS[r] for r in self.roles if r in PERMISSIONS))

    def can(self, permission: Permission) -> bool:
        """Return whether one of the user's roles grants `permission`."""
        return permission in self.permissions


def _now(now: datetime | None = None) -> datetime:
    value = now or datetime.now(UTC)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


@overload
def _aware(value: datetime) -> datetime: ...
@overload
def _aware(value: None) -> None: ...
def _aware(value: datetime | None) -> datetime | None:
    """Return `value` in UTC (SQLite gives the stored UTC time back without a zone)."""
    return None if value is None else _now(value)


def normalize_username(username: str) -> str:
    """Return `username` trimmed and lower-cased, or raise :class:`AccountError` if unusable."""
    name = str(username or "").strip().lower()
    if not _USERNAME.match(name):
        msg = (
            f"username {username!r}: use 1-200 letters, digits or . _ @ + - "
            "(starting with a letter or digit)"
        )
        raise AccountError(msg)
    return name


def _roles(roles: Iterable[str] | str) -> str:
    items = roles.replace(",", " ").split() if isinstance(roles, str) else list(roles)
    chosen = sorted({r.strip().lower() for r in items if r.strip()}, key=_role_order)
    unknown = [r for r in chosen if r not in ROLES]
    if unknown or not chosen:
        msg = f"roles {', '.join(unknown) or '(none)'}: choose from {', '.join(ROLES)}"
        raise AccountError(msg)
    return " ".join(chosen)


def _role_order(role: str) -> int:
    return ROLES.index(role) if role in ROLES else len(ROLES)


def _check_password(password: str) -> None:
    if len(password or "") < MIN_PASSWORD_LENGTH:
        msg = f"the password must have at least {MIN_PASSWORD_LENGTH} characters"
        raise AccountError(msg)


def _user(row: sa.RowMapping) -> User:
    return User(
        id=int(row["id"]),
        username=row["username"],
        display_name=row["display_name"],
        roles=tuple(row["roles"].split()),
        is_active=bool(row["is_active"]),
        must_change_password=bool(row["must_change_password"]),
        sso=bool(row["sso"]),
    )


def _row(connection: Connection, username: str) -> sa.RowMapping | None:
    query = sa.select(users_table).where(users_table.c.username == username)
    return connection.execute(query).mappings().first()


def _require(connection: Connection, username: str) -> sa.RowMapping:
    row = _row(connection, normalize_username(username))
    if row is None:
        msg = f"no user {username!r}"
        raise AccountError(msg)
    return row


def open_database(url: str) -> Engine:
    """Return an engine on the database at `url`, migrated to the newest schema."""
    engine = db.make_engine(url)
    db.upgrade(engine)
    return engine


def one_time_password() -> str:
    """Return a random password for a first sign-in (changed by the user at once)."""
    return secrets.token_urlsafe(15)


# --- accounts --------------------------------------------------------------------------------
def add_user(
    engine: Engine,
    username: str,
    *,
    roles: Iterable[str] | str,
    actor: str,
    password: str | None = None,
    display_name: str = "",
    sso: bool = False,
    must_change_password: bool = True,
) -> User:
    """Create an account and return it.

    Parameters
    ----------
    engine
        The database (migrated).
    username
        Unique, case-insensitive; for single sign-on the e-mail address the identity provider
        reports.
    roles
        One or more of :data:`ROLES`.
    actor
        Who creates the account (audited).
    password
        Initial password (at least :data:`MIN_PASSWORD_LENGTH` characters); none for an
        account that only signs in through single sign-on (`sso`).
    display_name
        Name shown in the app.
    sso
        The account may sign in through the configured OpenID Connect provider.
    must_change_password
        The user must choose a new password at the first sign-in.

    Raises
    ------
    AccountError
        Bad username, role or password, or the username is taken.
    """
    name = normalize_username(username)
    chosen = _roles(roles)
    if password is None and not sso:
        msg = f"user {name!r} needs a password, or single sign-on"
        raise AccountError(msg)
    if password is not None:
        _check_password(password)
    values = {
        "username": name,
        "display_name": display_name.strip() or name,
        "roles": chosen,
        "password_hash": None if password is None else _hasher.hash(password),
        "sso": sso,
        "is_active": True,
        "must_change_password": must_change_password and password is not None,
        "failed_sign_ins": 0,
        "created": _now(),
    }
    try:
        with engine.begin() as connection:
            connection.execute(users_table.insert().values(**values))
            audit.record(
                connection,
                actor,
                audit.USER_ADD,
                target=name,
                detail={"roles": chosen.split(), "sso": sso, "password": password is not None},
            )
            return _user(_require(connection, name))
    except IntegrityError as err:
        msg = f"user {name!r} exists already"
        raise AccountError(msg) from err


def get_user(engine: Engine, username: str) -> User | None:
    """Return the account `username`, or None."""
    with engine.connect() as connection:
        row = _row(connection, str(username or "").strip().lower())
    return None if row is None else _user(row)


def list_users(engine: Engine) -> pd.DataFrame:
    """Return every account (no password hashes), by username."""
    columns = [
        "username",
        "display_name",
        "roles",
        "is_active",
        "sso",
        "must_change_password",
        "failed_sign_ins",
        "locked_until",
        "created",
        "last_sign_in",
    ]
    query = sa.select(*(users_table.c[c] for c in columns)).order_by(users_table.c.username)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    frame = pd.DataFrame([dict(r) for r in rows], columns=columns)
    for column in ("locked_until", "created", "last_sign_in"):
        frame[column] = pd.to_datetime(frame[column], utc=True)
    return frame


def set_roles(engine: Engine, username: str, roles: Iterable[str] | str, *, actor: str) -> User:
    """Replace the roles of `username` (audited with the old and new roles)."""
    chosen = _roles(roles)
    with engine.begin() as connection:
        row = _require(connection, username)
        connection.execute(
            users_table.update().where(users_table.c.id == row["id"]).values(roles=chosen)
        )
        audit.record(
            connection,
            actor,
            audit.USER_ROLES,
            target=row["username"],
            detail={"old": row["roles"].split(), "new": chosen.split()},
        )
        return _user(_require(connection, row["username"]))


def set_active(engine: Engine, username: str, active: bool, *, actor: str) -> User:
    """Enable or disable `username`; disabling ends the user's open sessions at once."""
    now = _now()
    with engine.begin() as connection:
        row = _require(connection, username)
        values: dict[str, object] = {"is_active": active}
        if active:
            values.update(failed_sign_ins=0, locked_until=None)
        connection.execute(
            users_table.update().where(users_table.c.id == row["id"]).values(**values)
        )
        if not active:
            connection.execute(
                sessions_table.update()
                .where(sessions_table.c.user_id == row["id"], sessions_table.c.ended.is_(None))
                .values(ended=now, end_reason="disabled")
            )
        audit.record(
            connection,
            actor,
            audit.USER_ENABLE if active else audit.USER_DISABLE,
            target=row["username"],
        )
        return _user(_require(connection, row["username"]))


def reset_password(
    engine: Engine, username: str, *, actor: str, password: str | None = None
) -> str:
    """Set a one-time password for `username` (to change at next sign-in), unlock, return it."""
    new = password or one_time_password()
    _check_password(new)
    with engine.begin() as connection:
        row = _require(connection, username)
        connection.execute(
            users_table.update()
            .where(users_table.c.id == row["id"])
            .values(
                password_hash=_hasher.hash(new),
                must_change_password=True,
                failed_sign_ins=0,
                locked_until=None,
            )
        )
        audit.record(connection, actor, audit.PASSWORD_RESET, target=row["username"])
    return new


def change_password(engine: Engine, username: str, old: str, new: str) -> User:
    """Change the password of `username` after checking `old`; clears "must change".

    Raises
    ------
    SignInError
        `old` is wrong.
    AccountError
        `new` is too short or equals `old`.
    """
    _check_password(new)
    if new == old:
        msg = "choose a password different from the current one"
        raise AccountError(msg)
    with engine.begin() as connection:
        row = _require(connection, username)
        if not _verify(row["password_hash"], old):
            msg = "the current password is wrong"
            raise SignInError(msg)
        connection.execute(
            users_table.update()
            .where(users_table.c.id == row["id"])
            .values(password_hash=_hasher.hash(new), must_change_password=False)
        )
        audit.record(connection, row["username"], audit.PASSWORD_CHANGE, target=row["username"])
        return _user(_require(connection, row["username"]))


def ensure_first_admin(engine: Engine, *, username: str = "admin") -> str | None:
    """Create the first administrator when the database has no account; return its password.

    The account gets :data:`FIRST_ADMIN_ROLES` and a one-time password that must be changed at
    the first sign-in. Returns None when accounts exist (or another process just created one).
    """
    with engine.connect() as connection:
        count = connection.execute(sa.select(sa.func.count()).select_from(users_table)).scalar()
    if count:
        return None
    password = one_time_password()
    try:
        add_user(
            engine,
            username,
            roles=FIRST_ADMIN_ROLES,
            actor="system:first-start",
            password=password,
            display_name="Administrator",
        )
    except AccountError:  # created concurrently by another session
        return None
    return password


# --- sign-in ---------------------------------------------------------------------------------
def _verify(password_hash: str | None, password: str) -> bool:
    try:
        return _hasher.verify(password_hash or _DUMMY_HASH, password) and bool(password_hash)
    except (VerificationError, InvalidHashError):
        return False


def authenticate(
    engine: Engine,
    username: str,
    password: str,
    *,
    policy: LockoutPolicy | None = None,
    now: datetime | None = None,
) -> User:
    """Check a password sign-in; return the user, or raise :class:`SignInError`.

    Each failure is audited (``sign_in_failed`` with the reason) and counted; after
    ``policy.max_failures`` failures in a row the account is locked for ``policy.lock_minutes``,
    during which even the right password is refused. When a lock has expired the count starts
    again from zero. A success resets the count (the caller starts a session with
    :func:`start_session`, which audits the sign-in).

    Every refusal -- unknown username, wrong password, locked or disabled account -- has the
    same message (:func:`refusal_message`) and costs one Argon2 verification, so neither the
    answer nor its time tells whether the username exists; only the audit trail records why.

    Parameters
    ----------
    engine
        The database (migrated).
    username
        As typed (trimmed and lower-cased here).
    password
        As typed.
    policy
        The lockout policy (default :class:`LockoutPolicy`).
    now
        The current time (default: now).

    Raises
    ------
    SignInError
        The sign-in is refused, with :func:`refusal_message`.
    """
    policy = policy or LockoutPolicy()
    moment = _now(now)
    name = str(username or "").strip().lower()
    with engine.begin() as connection:  # failures are committed, then raised
        user = _authenticate(connection, name, password, policy, moment)
    if user is None:
        raise SignInError(refusal_message(policy))
    return user


def refusal_message(policy: LockoutPolicy | None = None) -> str:
    """Return the one message of every refused password sign-in under `policy`.

    It names every cause the person can act on (a typo, a lock, a disabled account) without
    saying which one applies, so an unknown username cannot be told from a locked account.
    """
    policy = policy or LockoutPolicy()
    return (
        "Wrong username or password, or the account cannot sign in. "
        f"After {policy.max_failures} failed sign-ins in a row an account is locked for "
        f"{policy.lock_minutes:g} minutes: try again later, or ask an administrator to "
        "unlock it."
    )


def _authenticate(
    connection: Connection, name: str, password: str, policy: LockoutPolicy, moment: datetime
) -> User | None:
    """Return the user, or None after auditing why the sign-in is refused.

    Every path verifies one Argon2 hash (the account's, or a dummy one), so an unknown, a
    locked and a known account cost the same.
    """
    row = _row(connection, name) if name else None
    if row is None:
        _verify(None, password)
        audit.record(
            connection,
            name or "(empty)",
            audit.SIGN_IN_FAILED,
            target=name,
            detail={"reason": "unknown user"},
            at=moment,
        )
        return None
    good = _verify(row["password_hash"], password)  # also while locked: the same cost
    locked_until = _aware(row["locked_until"])
    if locked_until is not None and locked_until > moment:
        audit.record(
            connection,
            name,
            audit.SIGN_IN_FAILED,
            target=name,
            detail={"reason": "locked", "locked_until": locked_until.isoformat()},
            at=moment,
        )
        return None
    if good and row["is_active"]:
        connection.execute(
            users_table.update()
            .where(users_table.c.id == row["id"])
            .values(failed_sign_ins=0, locked_until=None, last_sign_in=moment)
        )
        return _user(row)
    # an expired lock is served: the count starts again from zero
    previous = 0 if locked_until is not None else int(row["failed_sign_ins"])
    failures = previous + (0 if good else 1)
    lock = (
        moment + timedelta(minutes=policy.lock_minutes) if failures >= policy.max_failures else None
    )
    connection.execute(
        users_table.update()
        .where(users_table.c.id == row["id"])
        .values(failed_sign_ins=failures, locked_until=lock)
    )
    detail: dict[str, object] = {
        "reason": "disabled" if good else "wrong password",
        "failures": failures,
    }
    if lock is not None:
        detail["locked_until"] = lock.isoformat()
    audit.record(connection, name, audit.SIGN_IN_FAILED, target=name, detail=detail, at=moment)
    return None


def sso_sign_in(engine: Engine, email: str, *, now: datetime | None = None) -> User:
    """Return the active single-sign-on account of `email` (the identity provider vouched).

    The provider proves who the person is; the local account decides what they may do. An
    unknown, disabled or non-SSO account is refused and audited.
    """
    name = str(email or "").strip().lower()
    refused = None
    with engine.begin() as connection:  # a refusal is committed, then raised
        row = _row(connection, name) if name else None
        if row is None or not row["sso"] or not row["is_active"]:
            reason = (
                "unknown user"
                if row is None
                else ("disabled" if not row["is_active"] else "no single sign-on")
            )
            audit.record(
                connection,
                name or "(empty)",
                audit.SIGN_IN_FAILED,
                target=name,
                detail={"reason": reason, "method": "oidc"},
            )
            refused = f"{email or 'This account'} has no active account for single sign-on here."
        else:
            connection.execute(
                users_table.update()
                .where(users_table.c.id == row["id"])
                .values(last_sign_in=_now(now))
            )
    if refused is not None or row is None:  # a missing account is refused above
        raise SignInError(refused)
    return _user(row)


# --- sessions --------------------------------------------------------------------------------
def _token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def start_session(
    engine: Engine, user: User, *, method: str = "password", now: datetime | None = None
) -> str:
    """Open a session for `user` (audited as ``sign_in``) and return its secret token."""
    token = secrets.token_urlsafe(32)
    moment = _now(now)
    with engine.begin() as connection:
        connection.execute(
            sessions_table.insert().values(
                token_hash=_token_hash(token),
                user_id=user.id,
                method=method,
                started=moment,
                last_seen=moment,
            )
        )
        audit.record(
            connection,
            user.username,
            audit.SIGN_IN,
            target=user.username,
            detail={"method": method},
            at=moment,
        )
    return token


def resume_session(
    engine: Engine,
    token: str,
    *,
    idle_timeout_s: float,
    now: datetime | None = None,
    touch: bool = True,
) -> User:
    """Return the user of a live session and mark it active now; raise :class:`SessionEnded`.

    The session ends (and the end is audited once) when it was idle longer than
    `idle_timeout_s` or its user was disabled; the user is read from the database on every
    call, so role changes and disabling take effect at the next action.

    Parameters
    ----------
    engine
        The database.
    token
        The secret from :func:`start_session`.
    idle_timeout_s
        Longest pause between two actions, in seconds.
    now
        The current time (default: now).
    touch
        Record this call as activity (False for a background check).
    """
    moment = _now(now)
    with engine.begin() as connection:  # an ended session is committed, then raised
        user, reason = _resume(connection, token, idle_timeout_s, moment, touch=touch)
    if user is None:
        raise SessionEnded(reason)
    return user


def _resume(
    connection: Connection, token: str, idle_timeout_s: float, moment: datetime, *, touch: bool
) -> tuple[User | None, str]:
    query = (
        sa.select(sessions_table, users_table)
        .join(users_table, users_table.c.id == sessions_table.c.user_id)
        .where(sessions_table.c.token_hash == _token_hash(token or ""))
    )
    row = connection.execute(query).mappings().first()
    if row is None:
        return None, "unknown"
    if row["ended"] is not None:
        return None, row["end_reason"] or "ended"
    idle_s = (moment - _aware(row["last_seen"])).total_seconds()
    reason = "disabled" if not row["is_active"] else ("idle" if idle_s > idle_timeout_s else None)
    if reason is not None:
        _close(connection, row["token_hash"], moment, reason)
        audit.record(
            connection,
            row["username"],
            audit.SESSION_ENDED,
            target=row["username"],
            detail={"reason": reason, "idle_s": round(idle_s, 1)},
            at=moment,
        )
        return None, reason
    if touch:
        connection.execute(
            sessions_table.update()
            .where(sessions_table.c.token_hash == row["token_hash"])
            .values(last_seen=moment)
        )
    return _user(row), ""


def _close(connection: Connection, token_hash: str, moment: datetime, reason: str) -> None:
    connection.execute(
        sessions_table.update()
        .where(sessions_table.c.token_hash == token_hash, sessions_table.c.ended.is_(None))
        .values(ended=moment, end_reason=reason)
    )


def end_session(engine: Engine, token: str, *, now: datetime | None = None) -> None:
    """Sign out: end the session of `token` (audited as ``sign_out``); unknown tokens pass."""
    moment = _now(now)
    with engine.begin() as connection:
        query = (
            sa.select(sessions_table.c.token_hash, sessions_table.c.ended, users_table.c.username)
            .join(users_table, users_table.c.id == sessions_table.c.user_id)
            .where(sessions_table.c.token_hash == _token_hash(token or ""))
        )
        row = connection.execute(query).mappings().first()
        if row is None or row["ended"] is not None:
            return
        _close(connection, row["token_hash"], moment, "signed out")
        audit.record(connection, row["username"], audit.SIGN_OUT, target=row["username"], at=moment)
