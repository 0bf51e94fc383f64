"""``python -m geodata ingest --kind calls FILE...``: store CAD exports of calls for service.

The calls are read with a calls mapping (``--mapping``, else the store's department's), checked
by the interval rules of :mod:`geodata.calls`, joined to the store's beats and written to its
``calls`` table as one version (``geodata history --kind calls``, ``rollback``).
"""

from __future__ import annotations

import argparse
import json
import sys
from dataclasses import replace
from typing import TYPE_CHECKING

from geodata import settings
from geodata.errors import StoreError

if TYPE_CHECKING:
    from geodata.calls import CallsReport

__all__ = ["print_calls_report", "run_calls_ingest"]


def run_calls_ingest(args: argparse.Namespace) -> int:
    """Run ``ingest --kind calls``; return 0, or 3 when no call was accepted."""
    from geodata.calls import CallMapping, ingest_calls
    from geodata.store import IncidentStore

    store = IncidentStore(settings.store_dir(args.store))
    if not store.exists():
        msg = (
            f"{store.root}: the store has no beat layer yet; build it first "
            "(python -m geodata init --department NAME, or ingest incidents with --beats)"
        )
        raise StoreError(msg)
    if args.mapping:
        mapping = CallMapping.from_file(args.mapping)
    else:
        profile_mapping = store.department().call_mapping
        if profile_mapping is None:
            msg = (
                f"{args.file}: no calls mapping: pass --mapping FILE.toml (roles received_at, "
                "dispatched_at, arrived_at, closed_at, ...; see docs/planning.md)"
            )
            raise StoreError(msg)
        mapping = CallMapping.from_file(profile_mapping)
    if args.date_format:  # the command line wins over the mapping, as for incidents
        mapping = replace(mapping, date_format=tuple(args.date_format))
    if args.earliest_year is not None:
        mapping = replace(mapping, earliest_year=args.earliest_year)
    if args.timezone:  # naive times in this zone (stored in the store's zone), as for incidents
        mapping = replace(mapping, timezone=args.timezone)
    files = [args.file, *getattr(args, "more", [])]  # each its own version, in order
    scheduler = getattr(args, "scheduler", None)
    if scheduler:  # each export read and joined on a Dask cluster's worker; stored here
        from geodata.cluster import connect
        from geodata.distributed_ingest import ingest_calls_files

        try:
            with connect(scheduler) as client:
                reports = ingest_calls_files(files, store, client, mapping=mapping)
        except ConnectionError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    else:
        reports = [ingest_calls(path, store, mapping=mapping) for path in files]
    if args.json and len(reports) > 1:
        print(json.dumps([r.as_dict() for r in reports], indent=2, default=str))
        return 3 if any(not r.rows_accepted for r in reports) else 0
    return max(print_calls_report(report, as_json=args.json) for report in reports)


def print_calls_report(report: CallsReport, *, as_json: bool) -> int:
    """Print one export's calls report; return the exit code (3: no call accepted)."""
    if as_json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
    else:
        print(
            f"{report.source}: read {report.rows_read:,}, accepted {report.rows_accepted:,}, "
            f"rejected {report.rows_rejected:,} (location withheld {report.location_withheld:,}"
            f", outside {report.outside:,}); version {report.version}"
        )
        for reason, n in report.rejected_by_reason.items():
            print(f"  rejected: {reason}: {n:,}")
        for role, fmt in report.date_formats.items():
            print(f"  note: {role} read as {fmt}")
        for note in report.notes:
            print(f"  note: {note}")
    if not report.rows_accepted:
        why = (
            "the file has a header but no records"
            if not report.rows_read
            else (f"see the rejected rows in {report.rejections_csv}")
        )
        print(f"error: no call was accepted in {report.source}: {why}", file=sys.stderr)
        return 3
    return 0
