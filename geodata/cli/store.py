"""Commands ``python -m geodata history``, ``rollback`` and ``migrate``: the store's versions."""

from __future__ import annotations

import argparse
import json
from typing import TYPE_CHECKING

from geodata import settings

if TYPE_CHECKING:
    from geodata.store import IncidentStore
    from geodata.table import RecordTable

__all__ = ["add_commands"]

#: Record kinds with versions: incidents, and calls for service.
KINDS = ("incidents", "calls")


def _table(args: argparse.Namespace) -> tuple[IncidentStore, RecordTable]:
    from geodata.store import IncidentStore

    store = IncidentStore(settings.store_dir(args.store))
    store.meta()  # a missing or old store says so
    if args.kind == "calls":
        from geodata.calls import calls_table

        return store, calls_table(store)
    return store, store.table


def _cmd_history(args: argparse.Namespace) -> int:
    store, table = _table(args)
    versions = table.history()
    if args.json:
        print(json.dumps([v.as_dict() for v in versions], indent=2))
        return 0
    print(f"{store.root} ({args.kind}): {len(versions)} versions (newest first; * = current)")
    print(f"  {'version':>7}  {'when (UTC)':<19}  {'operation':<9}  {'rows':>11}  change")
    for v in versions:
        when = v.timestamp.strftime("%Y-%m-%d %H:%M:%S")
        if v.operation == "ingest":
            change = f"+{v.rows_new or 0:,} new, {v.rows_replaced or 0:,} replaced"
            if v.file:
                change += f"  {v.file}"
        elif v.operation == "rollback":
            change = f"content of version {v.restored}"
        else:
            change = ""
        if not v.is_active:
            change += "  (undone)"
        rows = "" if v.rows is None else f"{v.rows:,}"
        mark = "*" if v.is_current else " "
        print(f"{mark} {v.version:>7}  {when:<19}  {v.operation:<9}  {rows:>11}  {change}")
    return 0


def _cmd_rollback(args: argparse.Namespace) -> int:
    store, table = _table(args)
    version = table.rollback(args.version)
    print(
        f"{store.root}: version {version.version} restores the {args.kind} of version "
        f"{args.version} ({version.rows or 0:,} {args.kind}); "
        f"`python -m geodata rollback {version.version - 1}` undoes this"
    )
    return 0


def _cmd_migrate(args: argparse.Namespace) -> int:
    from geodata.store import IncidentStore

    store = IncidentStore(settings.store_dir(args.store))
    rows = store.migrate()
    print(f"{store.root}: converted to the versioned layout ({rows:,} incidents, version 1)")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``history``, ``rollback`` and ``migrate`` on the command parser."""
    store_help = "incident store directory (default: $BEATS_DATA_DIR/store)"
    history = sub.add_parser("history", help="list the store's versions (one per ingest)")
    history.add_argument("--store", help=store_help)
    history.add_argument("--json", action="store_true", help="print a JSON list")
    history.add_argument("--kind", choices=KINDS, default="incidents", help="record kind")
    history.set_defaults(func=_cmd_history)

    rollback = sub.add_parser(
        "rollback", help="restore the incidents of an earlier version (as a new version)"
    )
    rollback.add_argument("version", type=int, help="the version to restore (see `history`)")
    rollback.add_argument("--store", help=store_help)
    rollback.add_argument("--kind", choices=KINDS, default="incidents", help="record kind")
    rollback.set_defaults(func=_cmd_rollback)

    migrate = sub.add_parser(
        "migrate", help="convert a store of the old layout (plain Parquet) to versioned tables"
    )
    migrate.add_argument("--store", help=store_help)
    migrate.set_defaults(func=_cmd_migrate)
