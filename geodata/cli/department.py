"""Command ``python -m geodata department draft``: a draft department profile from two files."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

__all__ = ["add_commands"]


def _cmd_department_draft(args: argparse.Namespace) -> int:
    from geodata.draft import inspect_files, render_profile

    out_dir = Path(args.out).parent if args.out else None
    if args.out and Path(args.out).exists() and not args.force:
        print(f"error: {args.out} exists (use --force to replace it)", file=sys.stderr)
        return 2
    draft = inspect_files(args.beats, args.incidents, name=args.name, date_format=args.date_format)
    text = render_profile(draft, args.beats, args.incidents, out_dir=out_dir)
    if args.out:
        out = Path(args.out)
        out.write_text(text, encoding="utf-8")
        print(f"wrote {out}: check every line marked 'guess', then run")
        print(f"  python -m geodata init --department {out} --store DIR")
    else:
        print(text, end="")
    if "date_order" in draft.comments:
        # the one guess init cannot get past: say it where it is seen, not only in the file
        print(
            f"note: {draft.comments['date_order']}. Set date_format under [incidents] "
            "(the draft offers both orders), or draft again with --date-format.",
            file=sys.stderr,
        )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``department draft``."""
    department = sub.add_parser("department", help="department profiles")
    department_sub = department.add_subparsers(dest="department_command", required=True)
    draft = department_sub.add_parser(
        "draft", help="inspect a beat layer and an incident export; write a draft profile"
    )
    draft.add_argument("--beats", required=True, help="the beat polygon layer")
    draft.add_argument("--incidents", required=True, help="an incident export (CSV, GeoJSON...)")
    draft.add_argument("--name", help="the department's name (default: from the file names)")
    draft.add_argument(
        "--date-format",
        action="append",
        help="strptime format of the export's dates, written into the draft "
        "(repeat to try several, in order)",
    )
    draft.add_argument("--out", help="write the draft here (default: print it)")
    draft.add_argument("--force", action="store_true", help="replace an existing --out file")
    draft.set_defaults(func=_cmd_department_draft)
