"""``python -m analysis flyer``: the printable meeting flyer of a beat, as a one-page PDF.

Example: ``python -m analysis flyer --beat 1224 --pdf beat_1224_flyer.pdf --paper a4``. The
sector packet is ``python -m analysis profile --sector 092 --review --pdf FILE``.
"""

from __future__ import annotations

import argparse

from analysis import pdf
from analysis.cli import common as cli_common
from analysis.flyer import flyer_inputs
from analysis.inputs import open_store
from geodata import schema, settings
from geodata.errors import InputError

__all__ = ["add_commands", "run_flyer"]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``flyer`` command."""
    parser = subparsers.add_parser(
        "flyer", help="one-page PDF meeting flyer of a beat", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--beat", required=True, help="beat id, e.g. 1224")
    parser.add_argument("--pdf", required=True, help="PDF file to write")
    parser.add_argument("--paper", default="letter", choices=("letter", "a4"), help="paper size")
    parser.add_argument("--store", help="incident store directory (default: the bundled data)")
    parser.add_argument("--database", help="meetings database URL (default: $DATABASE_URL)")
    parser.add_argument("--days", type=int, default=183, help="meetings in the next N days")
    parser.set_defaults(func=run_flyer)


def run_flyer(args: argparse.Namespace) -> int:
    """Write the flyer PDF; return the exit code."""
    from geodata import meetings

    store = open_store(args.store)
    beats = store.read_layer("beats")
    beat = cli_common.area_id(store, "beat", args.beat)
    if beat not in set(beats[schema.BEAT]):
        msg = f"beat {args.beat!r} is not in the beat layer"
        raise InputError(msg)
    engine = meetings.open_for_store(settings.database_url(args.database), store)
    try:
        dept = store.department()
        flyer = flyer_inputs(
            engine, beats, beat, today=dept.today(), days=args.days, level_words=dept.level_words()
        )
    finally:
        engine.dispose()
    document = pdf.flyer_pdf(flyer, paper=args.paper)
    with open(args.pdf, "wb") as handle:
        handle.write(document)
    print(f"wrote {args.pdf} (beat {beat}, one page, {args.paper})")
    return 0
