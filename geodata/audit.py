"""The audit trail: an append-only table of who did what, when, and what changed.

Every sign-in, failed sign-in, sign-out, import, publication, plan save, meeting edit, download
and account change writes one row. Rows are never updated or deleted: the table refuses it with a
trigger (see the ``auth`` migration), and this module offers no such function. Writing requires a
non-empty actor, so an action without a user cannot be recorded, and callers record before they
report success.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import UTC, date, datetime

import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Connection, Engine

from geodata.errors import StoreError

__all__ = [
    "ACTIONS",
    "DOWNLOAD",
    "IMPORT",
    "MEETING_CANCEL",
    "MEETING_CREATE",
    "MEETING_EDIT",
    "MEETING_MOVE",
    "MEETING_RESTORE",
    "PASSWORD_CHANGE",
    "PASSWORD_RESET",
    "PLAN_SAVE",
    "PUBLISH",
    "SESSION_ENDED",
    "SIGN_IN",
    "SIGN_IN_FAILED",
    "SIGN_OUT",
    "USER_ADD",
    "USER_DISABLE",
    "USER_ENABLE",
    "USER_ROLES",
    "audit_table",
    "changes",
    "events_csv",
    "read_events",
    "record",
]

SIGN_IN = "sign_in"
SIGN_IN_FAILED = "sign_in_failed"
SIGN_OUT = "sign_out"
#: A session ended by the server: idle timeout, or the account was disabled.
SESSION_ENDED = "session_ended"
IMPORT = "import"
PUBLISH = "publish"
PLAN_SAVE = "plan_save"
MEETING_CREATE = "meeting_create"
MEETING_EDIT = "meeting_edit"
MEETING_CANCEL = "meeting_cancel"
MEETING_MOVE = "meeting_move"
MEETING_RESTORE = "meeting_restore"
#: A file handed to the user (export, printable packet, calendar, rejected rows, audit CSV).
DOWNLOAD = "download"
USER_ADD = "user_add"
USER_DISABLE = "user_disable"
USER_ENABLE = "user_enable"
USER_ROLES = "user_roles"
PASSWORD_RESET = "password_reset"
PASSWORD_CHANGE = "password_change"
#: Every action the log knows.
ACTIONS = (
    SIGN_IN,
    SIGN_IN_FAILED,
    SIGN_OUT,
    SESSION_ENDED,
    IMPORT,
    PUBLISH,
    PLAN_SAVE,
    MEETING_CREATE,
    MEETING_EDIT,
    MEETING_CANCEL,
    MEETING_MOVE,
    MEETING_RESTORE,
    DOWNLOAD,
    USER_ADD,
    USER_DISABLE,
    USER_ENABLE,
    USER_ROLES,
    PASSWORD_RESET,
    PASSWORD_CHANGE,
)

_metadata = sa.MetaData()
audit_table = sa.Table(
    "audit_log",
    _metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(40), nullable=False),
    sa.Column("target", sa.String(400), nullable=False),
    sa.Column("detail", sa.Text, nullable=False),
)
_COLUMNS = ["id", "at", "actor", "action", "target", "detail"]


def _utc(value: datetime) -> datetime:
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def record(
    bind: Engine | Connection,
    actor: str,
    action: str,
    *,
    target: str = "",
    detail: Mapping[str, object] | None = None,
    at: datetime | None = None,
) -> int:
    """Append one event to the audit log and return its id.

    Parameters
    ----------
    bind
        The database, or an open connection whose transaction the event joins (so the event and
        the change it records are committed together or not at all).
    actor
        Who did it: a username, ``cli:<os user>`` for the command line. Must not be empty.
    action
        One of :data:`ACTIONS`.
    target
        What it was done to (a file name, ``series 12``, a username).
    detail
        What changed, as JSON-serialisable values (non-JSON values are written as text).
    at
        When (default: now, UTC).

    Raises
    ------
    ValueError
        If `actor` is empty or `action` is not one of :data:`ACTIONS`.
    """
    if not isinstance(actor, str) or not actor.strip():
        msg = f"an audited action ({action}) needs the user who does it; got {actor!r}"
        raise ValueError(msg)
    if action not in ACTIONS:
        msg = f"unknown audit action {action!r}; expected one of {', '.join(ACTIONS)}"
        raise ValueError(msg)
    row = {
        "at": _utc(at or datetime.now(UTC)),
        "actor": actor.strip()[:200],
        "action": action,
        "target": str(target)[:400],
        "detail": json.dumps(dict(detail or {}), default=str, ensure_ascii=False, sort_keys=True),
    }
    statement = audit_table.insert().values(**row)
    if isinstance(bind, Connection):
        key = bind.execute(statement).inserted_primary_key
    else:
        with bind.begin() as connection:
            key = connection.execute(statement).inserted_primary_key
    if key is None:  # every supported database returns the new row's id
        msg = "the database did not return the audit entry's id"
        raise StoreError(msg)
    return int(key[0])


def read_events(
    engine: Engine,
    *,
    since: datetime | date | None = None,
    user: str | None = None,
    action: str | None = None,
    limit: int | None = None,
) -> pd.DataFrame:
    """Return audit events, newest first, as a frame with ``detail`` decoded to dicts.

    Parameters
    ----------
    engine
        The database.
    since
        Only events at or after this time (a date means its midnight, UTC).
    user
        Only events of this actor (case-insensitive).
    action
        Only events of this action.
    limit
        At most this many events.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, at`` (UTC), ``actor, action, target, detail``.
    """
    query = sa.select(audit_table).order_by(audit_table.c.id.desc())
    if since is not None:
        start = (
            since if isinstance(since, datetime) else datetime.combine(since, datetime.min.time())
        )
        query = query.where(audit_table.c.at >= _utc(start))
    if user:
        query = query.where(sa.func.lower(audit_table.c.actor) == user.strip().lower())
    if action:
        query = query.where(audit_table.c.action == action)
    if limit is not None:
        query = query.limit(limit)
    with engine.connect() as connection:
        rows = connection.execute(query).mappings().all()
    events = pd.DataFrame([dict(r) for r in rows], columns=_COLUMNS)
    events["at"] = pd.to_datetime(events["at"], utc=True)
    events["detail"] = events["detail"].map(json.loads)
    return events


_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def _cell(value: object) -> object:
    text = value if isinstance(value, str) else None
    return "'" + text if text and text.startswith(_FORMULA_START) else value


def events_csv(events: pd.DataFrame) -> bytes:
    """Return `events` (from :func:`read_events`) as UTF-8 CSV, safe to open in a spreadsheet.

    ``detail`` is written as JSON; a cell that a spreadsheet would run as a formula (starting
    with ``= + - @``, tab or carriage return) is prefixed with an apostrophe.
    """
    out = events.assign(
        at=events["at"].map(lambda t: t.isoformat()),
        detail=events["detail"].map(lambda d: json.dumps(d, ensure_ascii=False, sort_keys=True)),
    )
    for column in ("actor", "action", "target", "detail"):
        out[column] = out[column].map(_cell)
    return out.to_csv(index=False).encode("utf-8")


def changes(
    before: Mapping[str, object], after: Mapping[str, object], *, ignore: tuple[str, ...] = ()
) -> dict[str, list[object]]:
    """Return ``{field: [old, new]}`` for the fields of `after` whose value differs in `before`.

    Values are compared as text (a stored timestamp and the typed time agree); missing values
    (None, NaN) compare equal to each other.
    """

    def text(value: object) -> str | None:
        return None if value is None or value != value else str(value)

    return {
        key: [text(before.get(key)), text(value)]
        for key, value in after.items()
        if key not in ignore and text(before.get(key)) != text(value)
    }
