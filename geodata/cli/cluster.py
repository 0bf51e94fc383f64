"""``python -m geodata counts``: store-wide counts, on this machine or on a Dask cluster.

``--scheduler ADDRESS`` (or ``BEATS_DASK_SCHEDULER``) sends each data file's count to the
workers of a ``dask.distributed`` scheduler that can read the store at the same path; the
answer is the same as on one machine (``docs/scale.md``).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import sys
from collections.abc import Iterator
from typing import TYPE_CHECKING

from geodata import schema, settings

if TYPE_CHECKING:
    from geodata.cluster import Mapper

__all__ = ["add_commands", "mapper_for"]

_GROUPABLE = sorted(c for c, t in schema.INCIDENT_COLUMNS.items() if t == "string")


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the ``counts`` command."""
    counts = sub.add_parser(
        "counts", help="incidents by year, month and columns (optionally on a Dask cluster)"
    )
    counts.add_argument("--store", help="store directory (default: the data directory's)")
    counts.add_argument(
        "--by", nargs="+", default=[schema.BEAT, schema.OFFENSE], choices=_GROUPABLE,
        help="string columns to group by (default: beat offense)",
    )  # fmt: skip
    counts.add_argument("--start", help="first day, YYYY-MM-DD (local)")
    counts.add_argument("--end", help="day after the last, YYYY-MM-DD (local)")
    counts.add_argument(
        "--scheduler",
        default=settings.scheduler_address(),
        help="address of a dask.distributed scheduler (default: BEATS_DASK_SCHEDULER; none: "
        "this machine)",
    )
    counts.add_argument("--out", help="write the counts to this CSV file")
    counts.add_argument("--json", action="store_true", help="print a JSON summary")
    counts.set_defaults(func=_run)


@contextlib.contextmanager
def mapper_for(scheduler: str | None) -> Iterator[Mapper]:
    """Yield the mapper for `scheduler`: a Dask cluster's workers, or two local threads."""
    from geodata.cluster import connect, dask_mapper, thread_mapper

    if not scheduler:
        yield thread_mapper(2)
        return
    with connect(scheduler) as client:
        yield dask_mapper(client)


def _run(args: argparse.Namespace) -> int:
    from geodata import exports
    from geodata.store import IncidentStore

    store = IncidentStore(settings.store_dir(args.store))
    try:
        with mapper_for(args.scheduler) as mapper:
            counts = store.count_by(args.by, start=args.start, end=args.end, mapper=mapper)
    except ConnectionError as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    if args.out:
        exports.write_csv(counts, args.out)
    summary = {
        "groups": len(counts),
        "incidents": int(counts["incidents"].sum()),
        "by": ["year", "month", *args.by],
        "where": args.scheduler or "this machine",
        "out": args.out,
    }
    if args.json:
        print(json.dumps(summary))
    elif not args.out:
        counts.to_string(sys.stdout, index=False)
        print()
    else:
        print(f"{summary['groups']:,} groups, {summary['incidents']:,} incidents -> {args.out}")
    return 0
