"""``python -m geodata meetings ...``: list meetings, write iCal files and feeds, find my meeting.

Registered by :mod:`geodata.cli` through :func:`add_commands`. Every command takes
``--database URL`` (default ``$DATABASE_URL`` or SQLite in the data directory); the database is
created, migrated and seeded on first use.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any

from geodata import settings

if TYPE_CHECKING:
    import pandas as pd
    from sqlalchemy import Engine

    from geodata import meetings

__all__ = ["add_commands"]


def _date(text: str) -> date | datetime:
    try:
        return (
            datetime.fromisoformat(text) if "T" in text or " " in text else date.fromisoformat(text)
        )
    except ValueError as err:
        msg = f"{text!r} is not a date (YYYY-MM-DD) or local time (YYYY-MM-DDTHH:MM)"
        raise argparse.ArgumentTypeError(msg) from err


def _area(args: argparse.Namespace) -> dict[str, str]:
    return {k: getattr(args, k) for k in ("beat", "sector", "district") if getattr(args, k, None)}


def _records(frame: pd.DataFrame) -> list[dict[str, object]]:
    out = frame.copy()
    for column in ("start", "end", "original_start"):
        out[column] = out[column].map(lambda t: t.isoformat())
    return json.loads(out.to_json(orient="records"))


def _open(args: argparse.Namespace) -> Engine:
    """Open the meetings database for the incident store's department (its beats, stations)."""
    from geodata import meetings
    from geodata.store import IncidentStore

    return meetings.open_for_store(args.database, IncidentStore(settings.store_dir(args.store)))


def _cmd_list(args: argparse.Namespace) -> int:
    from geodata import meetings

    engine = _open(args)
    frame = meetings.upcoming_meetings(
        engine, start=args.start, end=args.end, limit=args.limit, **_area(args)
    )
    if args.json:
        print(json.dumps(_records(frame), indent=2, ensure_ascii=False))
        return 0
    if frame.empty:
        print("no meetings in that period")
        return 0
    for row in frame.itertuples():
        status = "" if row.status == "scheduled" else f" [{row.status.upper()}]"
        note = f" ({row.note})" if row.note else ""
        flag = " *" if row.illustrative else ""
        print(
            f"{row.start:%a %Y-%m-%d %H:%M}-{row.end:%H:%M}{status} {row.title}{flag} — "
            f"{row.venue_name}, {row.address}; beats {row.beats}{note}"
        )
    if frame["illustrative"].any():
        print("* illustrative schedule, not one the department published", file=sys.stderr)
    return 0


def _cmd_ics(args: argparse.Namespace) -> int:
    area = _area(args)
    if not area and not args.all:
        print("error: give --beat, --sector, --district or --all", file=sys.stderr)
        return 2
    from geodata import meetings
    from geodata.exports import prepare_output

    engine = _open(args)
    content = meetings.calendar_ics(engine, **area)
    if args.out:
        prepare_output(args.out).write_bytes(content)
        print(f"wrote {args.out} ({len(content):,} bytes)", file=sys.stderr)
    else:
        sys.stdout.buffer.write(content)
        sys.stdout.flush()
    return 0


def _cmd_feeds(args: argparse.Namespace) -> int:
    from geodata import meetings

    engine = _open(args)
    out = Path(args.out) if args.out else settings.public_dir() / "meetings"
    paths = meetings.write_feeds(engine, out)
    print(f"{len(paths)} feeds in {out} (beat_<id>.ics, sector_<id>.ics, all.ics)")
    return 0


def _cmd_find(args: argparse.Namespace) -> int:
    from geodata import meetings
    from geodata.geocode import BlockGazetteer
    from geodata.ingest import build_sample_store
    from geodata.store import IncidentStore

    store = IncidentStore(settings.store_dir(args.store))
    if not store.exists():
        print(f"building the sample store in {store.root} (first run)...", file=sys.stderr)
        build_sample_store(store, department=settings.department_name())
    gazetteer = BlockGazetteer.from_store(store)
    index = store.beat_index()  # kept in the store: built once, not for every command
    engine = _open(args)
    answers: list[dict[str, Any]] = []
    for address in args.address:
        try:
            found = meetings.find_my_meeting(
                engine, address, gazetteer=gazetteer, beat_index=index, n=args.n
            )
        except meetings.MeetingError as err:
            if len(args.address) == 1:
                raise
            answers.append({"query": address, "error": str(err)})
            if not args.json:
                print(f"{address!r}: {err}")
            continue
        if args.json:
            answers.append(_found_payload(address, found))
        else:
            _print_found(address, found)
    if args.json:
        payload: object = answers[0] if len(args.address) == 1 else answers
        print(json.dumps(payload, indent=2, default=str, ensure_ascii=False))
    return 0


def _found_payload(address: str, found: meetings.MeetingLookup) -> dict[str, Any]:
    return {
        "query": address,
        "matched": found.matched,
        "how": found.how,
        "lat": found.lat,
        "lon": found.lon,
        "beat": found.beat,
        "sector": found.sector,
        "district": found.district,
        "station": found.station,
        "meetings": _records(found.meetings),
    }


def _print_found(address: str, found: meetings.MeetingLookup) -> None:
    print(f"{address!r} -> {found.matched} ({found.how})")
    print(f"beat {found.beat}, sector {found.sector}, district {found.district}")
    if found.station:
        station = found.station
        print(f"station: {station['name']}, {station['address']}, phone {station['phone'] or '-'}")
    for row in found.meetings.itertuples():
        status = "" if row.status == "scheduled" else f" [{row.status.upper()}]"
        print(
            f"  {row.start:%a %Y-%m-%d %H:%M}-{row.end:%H:%M}{status} {row.title}, {row.venue_name}"
        )
    if found.meetings.empty:
        print("  no upcoming meetings")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``meetings list|ics|feeds|find`` on the ``python -m geodata`` parser."""
    parser = sub.add_parser("meetings", help="neighborhood watch meetings: list, iCal, find")
    commands = parser.add_subparsers(dest="meetings_command", required=True)

    def common(p: argparse.ArgumentParser, *, area: bool = True) -> None:
        p.add_argument("--database", help="SQLAlchemy URL (default: $DATABASE_URL or SQLite)")
        p.add_argument("--store", help="incident store directory (its beats and department)")
        if area:
            group = p.add_mutually_exclusive_group()
            group.add_argument("--beat", help="beat id, as the beat layer has it")
            group.add_argument("--sector", help="sector id")
            group.add_argument("--district", help="district (precinct, zone) id")
            return

    listing = commands.add_parser("list", help="upcoming meetings (exceptions applied)")
    common(listing)
    listing.add_argument("--from", dest="start", type=_date, help="first day (default: now)")
    listing.add_argument("--to", dest="end", type=_date, help="last day, included (default +183)")
    listing.add_argument("--limit", type=int, help="at most this many meetings")
    listing.add_argument("--json", action="store_true", help="print a JSON array")
    listing.set_defaults(func=_cmd_list)

    ics = commands.add_parser("ics", help="write an iCalendar (.ics) file to stdout or --out")
    common(ics)
    ics.add_argument("--all", action="store_true", help="every series")
    ics.add_argument("--out", help="file to write (default: stdout)")
    ics.set_defaults(func=_cmd_ics)

    feeds = commands.add_parser("feeds", help="write stable per-beat and per-sector .ics feeds")
    common(feeds, area=False)
    feeds.add_argument("--out", help="directory (default: $BEATS_PUBLIC_DIR/meetings)")
    feeds.set_defaults(func=_cmd_feeds)

    find = commands.add_parser("find", help="find my meeting: address or 'lat, lon' -> meetings")
    common(find, area=False)
    find.add_argument(
        "address",
        nargs="+",
        help="e.g. '1234 W Madison St' or '41.88, -87.63' (several: --json prints an array)",
    )
    find.add_argument("-n", type=int, default=3, help="how many meetings (default 3)")
    find.add_argument("--json", action="store_true", help="print one JSON object")
    find.set_defaults(func=_cmd_find)
