"""``python -m geodata users ...`` and ``python -m geodata audit``: accounts and the audit trail.

Registered by :mod:`geodata.cli` through :func:`add_commands`. Every command takes
``--database URL`` (default ``$DATABASE_URL`` or SQLite in the data directory). Changes are
audited with the actor ``cli:<operating-system user>``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from typing import TYPE_CHECKING

from geodata import settings
from geodata.cli import LazyChoices

if TYPE_CHECKING:
    from sqlalchemy import Engine

#: The roles and audit actions, read from their (heavy) modules only when argparse needs them.
_ROLES = LazyChoices("geodata.users", "ROLES")
_ACTIONS = LazyChoices("geodata.audit", "ACTIONS")

__all__ = ["add_commands"]


def _engine(args: argparse.Namespace) -> Engine:
    from geodata import users

    return users.open_database(settings.database_url(args.database))


def _actor() -> str:
    return f"cli:{settings.operator()}"


def _password(args: argparse.Namespace) -> str | None:
    if getattr(args, "password_stdin", False):
        return sys.stdin.readline().rstrip("\n")
    return None


def _cmd_add(args: argparse.Namespace) -> int:
    from geodata import users

    engine = _engine(args)
    password = _password(args)
    if password is None and not args.sso:
        password = users.one_time_password()
        generated = True
    else:
        generated = False
    user = users.add_user(
        engine,
        args.username,
        roles=args.role,
        actor=_actor(),
        password=password,
        display_name=args.name or "",
        sso=args.sso,
    )
    print(f"user {user.username} added with roles {', '.join(user.roles)}")
    if generated:
        print(f"one-time password (to change at first sign-in): {password}")
    return 0


def _cmd_list(args: argparse.Namespace) -> int:
    from geodata import users

    frame = users.list_users(_engine(args))
    if args.json:
        out = frame.astype(object).where(frame.notna(), None)
        for column in ("locked_until", "created", "last_sign_in"):
            out[column] = out[column].map(lambda t: None if t is None else t.isoformat())
        print(json.dumps(out.to_dict(orient="records"), indent=2))
        return 0
    if frame.empty:
        print("no users")
        return 0
    for row in frame.itertuples():
        flags = [] if row.is_active else ["DISABLED"]
        if row.sso:
            flags.append("sso")
        if row.locked_until is not None and row.locked_until == row.locked_until:
            flags.append(f"locked until {row.locked_until:%Y-%m-%d %H:%M} UTC")
        last = "never" if row.last_sign_in != row.last_sign_in else f"{row.last_sign_in:%Y-%m-%d}"
        print(
            f"{row.username:<24} {row.roles.replace(' ', ','):<28} last sign-in {last}"
            + (f"  [{'; '.join(flags)}]" if flags else "")
        )
    return 0


def _cmd_disable(args: argparse.Namespace) -> int:
    from geodata import users

    user = users.set_active(_engine(args), args.username, args.enable, actor=_actor())
    print(f"user {user.username} {'enabled' if user.is_active else 'disabled'}")
    return 0


def _cmd_set_role(args: argparse.Namespace) -> int:
    from geodata import users

    user = users.set_roles(_engine(args), args.username, args.role, actor=_actor())
    print(f"user {user.username} now has roles {', '.join(user.roles)}")
    return 0


def _cmd_reset(args: argparse.Namespace) -> int:
    from geodata import users

    password = users.reset_password(
        _engine(args), args.username, actor=_actor(), password=_password(args)
    )
    if not args.password_stdin:
        print(f"one-time password for {args.username} (to change at next sign-in): {password}")
    else:
        print(f"password of {args.username} reset (to change at next sign-in)")
    return 0


def _since(text: str) -> date | datetime:
    try:
        return datetime.fromisoformat(text) if "T" in text else date.fromisoformat(text)
    except ValueError as err:
        msg = f"{text!r} is not a date (YYYY-MM-DD) or time (YYYY-MM-DDTHH:MM, UTC)"
        raise argparse.ArgumentTypeError(msg) from err


def _cmd_audit(args: argparse.Namespace) -> int:
    from geodata import audit

    events = audit.read_events(
        _engine(args), since=args.since, user=args.user, action=args.action, limit=args.limit
    )
    if args.json:
        records = events.assign(at=events["at"].map(lambda t: t.isoformat()))
        print(json.dumps(records.to_dict(orient="records"), indent=2, ensure_ascii=False))
        return 0
    if events.empty:
        print("no audit events")
        return 0
    for row in events.itertuples():
        detail = json.dumps(row.detail, ensure_ascii=False) if row.detail else ""
        print(f"{row.at:%Y-%m-%d %H:%M:%S}Z {row.actor:<20} {row.action:<16} {row.target} {detail}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``users add|list|disable|enable|set-role|reset-password`` and ``audit``."""
    parser = sub.add_parser("users", help="accounts of the analyst app: add, list, disable, ...")
    commands = parser.add_subparsers(dest="users_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--database", help="SQLAlchemy URL (default: $DATABASE_URL or SQLite)")

    roles = "one or more of %(choices)s"
    add = commands.add_parser("add", help="create an account (prints a one-time password)")
    common(add)
    add.add_argument("username", help="user name, or the e-mail address for single sign-on")
    add.add_argument("--role", nargs="+", required=True, choices=_ROLES, metavar="ROLE", help=roles)
    add.add_argument("--name", help="display name")
    add.add_argument(
        "--sso", action="store_true", help="signs in through the identity provider only"
    )
    add.add_argument(
        "--password-stdin", action="store_true", help="read the initial password from stdin"
    )
    add.set_defaults(func=_cmd_add)

    listing = commands.add_parser("list", help="every account, its roles and state")
    common(listing)
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(func=_cmd_list)

    for name, enable in (("disable", False), ("enable", True)):
        toggle = commands.add_parser(
            name, help=f"{name} an account ({'ends its sessions at once' if not enable else ''})"
        )
        common(toggle)
        toggle.add_argument("username")
        toggle.set_defaults(func=_cmd_disable, enable=enable)

    set_role = commands.add_parser("set-role", help="replace the roles of an account")
    common(set_role)
    set_role.add_argument("username")
    set_role.add_argument("role", nargs="+", choices=_ROLES, metavar="ROLE", help=roles)
    set_role.set_defaults(func=_cmd_set_role)

    reset = commands.add_parser(
        "reset-password", help="set a one-time password (and unlock the account)"
    )
    common(reset)
    reset.add_argument("username")
    reset.add_argument(
        "--password-stdin", action="store_true", help="read the new password from stdin"
    )
    reset.set_defaults(func=_cmd_reset)

    trail = sub.add_parser("audit", help="the audit trail: who did what and when")
    common(trail)
    trail.add_argument("--since", type=_since, help="from this day or UTC time (YYYY-MM-DD)")
    trail.add_argument("--user", help="only this user")
    trail.add_argument(
        "--action", choices=_ACTIONS, metavar="ACTION", help="only this action: %(choices)s"
    )
    trail.add_argument("--limit", type=int, help="at most this many events (newest first)")
    trail.add_argument("--json", action="store_true", help="print a JSON array")
    trail.set_defaults(func=_cmd_audit)
