"""Command ``python -m geodata publish``: write the community extract from the analyst store."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from geodata import settings

__all__ = ["add_commands"]


def _cmd_publish(args: argparse.Namespace) -> int:
    from geodata.categories import load_categories, load_vocabulary
    from geodata.publish import load_policy, publish_store
    from geodata.store import IncidentStore

    store = IncidentStore(settings.store_dir(args.store))
    # the --policy file, else the department profile's [publish] policy (else the defaults)
    policy_path = args.policy or store.department().publish.get("policy")
    policy = load_policy(policy_path, delay_days=args.delay_days, window_days=args.window_days)
    out = settings.public_dir(args.out)
    # the current offense rules: the --categories file, else the store's department vocabulary
    categories = (
        load_categories(args.categories)
        if args.categories
        else load_vocabulary(store.department().offense_vocabulary)
    )
    extract = publish_store(store, out, policy=policy, as_of=args.as_of, categories=categories)
    meta = extract.metadata
    summary = {
        "out": str(out),
        "as_of": meta["as_of"],
        "window": [meta["window_start"], meta["window_end_exclusive"]],
        "delay_days": meta["delay_days"],
        "window_days": meta["window_days"],
        "rows_in_window": meta["rows_in_window"],
        "rows_published": meta["rows_published"],
        "rows_withheld": meta["rows_withheld"],
        "beats": int(extract.beat_summary["beat"].nunique()) if len(extract.beat_summary) else 0,
    }
    if args.json:
        print(json.dumps(summary, indent=2))
    else:
        print(f"community extract: {out}")
        print(
            f"  as of {meta['as_of']}: days {meta['window_start']} to before "
            f"{meta['window_end_exclusive']} ({meta['window_days']}-day window, "
            f"{meta['delay_days']}-day delay)"
        )
        print(f"  incidents in the window {meta['rows_in_window']:>9,}")
        print(f"  published               {meta['rows_published']:>9,}")
        print(
            f"  withheld (sensitive, domestic, excluded groups, no block) {meta['rows_withheld']:,}"
        )
        print(f"  locations: {meta['masking']['rule']}")
    if meta["rows_in_window"] == 0:
        print(
            "note: the store has no incidents in this window; for the bundled historic sample "
            "use --as-of busiest (or a date such as --as-of 2018-02-04)"
        )
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``publish`` on the ``python -m geodata`` sub-command parser."""
    publish = sub.add_parser(
        "publish", help="write the community extract (masked, delayed, sensitive rows excluded)"
    )
    publish.add_argument(
        "--store", help="incident store directory (default: $BEATS_DATA_DIR/store)"
    )
    publish.add_argument(
        "--out", help="public directory (default: $BEATS_PUBLIC_DIR or $BEATS_DATA_DIR/public)"
    )
    publish.add_argument(
        "--delay-days", type=int, default=None, help="posting delay in days (default 7)"
    )
    publish.add_argument(
        "--window-days", type=int, default=None, help="rolling window in days (default 90)"
    )
    publish.add_argument(
        "--as-of",
        default="today",
        help="publication day: YYYY-MM-DD, 'today' (default) or 'busiest' (for historic data)",
    )
    publish.add_argument(
        "--policy", type=Path, help="TOML adding exclusion groups/patterns (see docs/community.md)"
    )
    publish.add_argument(
        "--categories", help="offense-category TOML (default: the department's vocabulary)"
    )
    publish.add_argument("--json", action="store_true", help="print one JSON object")
    publish.set_defaults(func=_cmd_publish)
