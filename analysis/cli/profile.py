"""``python -m analysis profile``: the CompStat profile of a beat, sector, district or department.

Examples
--------
``python -m analysis profile --beat 0925`` (text), ``python -m analysis profile --sector 092
--as-of 2018-01-27 --json --review`` (JSON with the side-by-side sector review), ``python -m
analysis profile --beat 925 --html beat_0925.html`` (the printable packet).
"""

from __future__ import annotations

import argparse
import sys

import pandas as pd

from analysis import compare, inputs, profiles
from analysis.cli import common as cli_common
from analysis.cli.common import add_area_arguments, chosen_area, day_argument, print_json
from geodata.exports import prepare_output

__all__ = ["add_commands", "format_text", "run_profile"]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``profile`` command."""
    parser = subparsers.add_parser(
        "profile",
        help="profile of a beat, sector, district or the department",
        description=__doc__.split("\n")[0],
    )
    add_area_arguments(parser, required=True, department=True)
    parser.add_argument(
        "--as-of",
        dest="as_of",
        type=day_argument,
        help="last day of the period, YYYY-MM-DD "
        "(default: the end of the latest dense 28 days of data)",
    )
    parser.add_argument("--period-days", type=int, default=28, help="profile period (days)")
    parser.add_argument("--store", help="incident store directory (default: the bundled data)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.add_argument(
        "--review",
        action="store_true",
        help="with --sector: add the side-by-side review of its beats",
    )
    parser.add_argument(
        "--window",
        default="7d",
        choices=("7d", "28d", "ytd", "365d"),
        help="window of the sector review table (default 7d)",
    )
    parser.add_argument("--html", help="also write the printable HTML packet to this file")
    parser.add_argument(
        "--pdf", help="also write the PDF packet to this file (sector: at most two pages)"
    )
    parser.add_argument(
        "--paper", default="letter", choices=("letter", "a4"), help="PDF paper size"
    )
    parser.set_defaults(func=run_profile)


def _level(args: argparse.Namespace) -> tuple[inputs.Level, str | None]:
    level, typed = chosen_area(args)
    return (level, typed) if level is not None else ("department", None)


def _write_pdf(
    args: argparse.Namespace,
    profile: profiles.AreaProfile,
    review: profiles.SectorReview | None,
    loaded: inputs.ProfileInputs,
    note: str | None,
) -> None:
    from analysis import compare, pdf

    reasons = None
    if review is not None:
        reasons = compare.explain_flagged(
            review.beats,
            loaded.incidents,
            as_of=loaded.as_of,
            window=review.window,
            timezone=loaded.timezone,
        )
    document = pdf.packet_pdf(
        profile,
        loaded.beats,
        stations=loaded.stations,
        review=review,
        reasons=reasons,
        note=note or "",
        paper=args.paper,
    )
    with open(prepare_output(args.pdf), "wb") as handle:
        handle.write(document)


def run_profile(args: argparse.Namespace) -> int:
    """Run ``profile``: print the profile as text or JSON; return the exit code."""
    level, area_id = _level(args)
    if args.review and level != "sector":
        msg = "--review needs --sector"
        raise ValueError(msg)
    store = inputs.open_store(args.store)
    if area_id is not None:
        area_id = cli_common.area_id(store, level, area_id)
    years = inputs.REVIEW_HISTORY_YEARS if args.review else inputs.HISTORY_YEARS
    # the text and JSON profile use no coordinates: only the packets' maps read them
    columns = inputs.PROFILE_COLUMNS if args.html or args.pdf else inputs.PROFILE_REQUIRED
    loaded = inputs.load_profile_inputs(
        store, args.as_of, years=years, level=level, area_id=area_id, columns=columns
    )
    profile = profiles.profile_loaded(
        loaded,
        level=level,
        area_id=area_id,
        period_days=args.period_days,
        label=store.department().label(level) if level != "department" else None,
    )
    review = None
    if args.review:
        if area_id is None:  # --review needs --sector, checked above
            msg = "--review needs --sector"
            raise ValueError(msg)
        review = profiles.review_loaded(loaded, sector=area_id, window=args.window)
    note = (
        inputs.sample_note(loaded.daily, profile.period)
        if profile.n_incidents
        else profiles.no_incidents_note(profile)
    )
    if args.html:
        from analysis import report

        html = report.render_packet(
            profile,
            loaded.beats,
            loaded.incidents,
            stations=loaded.stations,
            review=review,
            note=note,
        )
        with open(prepare_output(args.html), "w", encoding="utf-8") as handle:
            handle.write(html)
    if args.pdf:
        _write_pdf(args, profile, review, loaded, note)
    out = profile.to_dict()
    out["data_note"] = note
    if review is not None:
        out["review"] = review.to_dict()
    if args.json:
        print_json(out)
    else:
        sys.stdout.write(format_text(profile, review))
        if note:
            sys.stdout.write(f"\nnote: {note}\n")
    return 0


def _fmt_pct(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:+.0f}%"


def _fmt_p(value: float | None) -> str:
    return "n/a" if value is None or pd.isna(value) else f"{value:.3f}"


def format_text(profile: profiles.AreaProfile, review: profiles.SectorReview | None = None) -> str:
    """Return the profile (and review) as plain text for the terminal."""
    lines = [
        f"{profile.title}  ({profile.start} to {profile.end}, {profile.timezone})",
        f"beats: {', '.join(profile.beats[:20])}{' ...' if len(profile.beats) > 20 else ''}",
        f"incidents: {profile.n_incidents}   area: {profile.area_km2:.2f} km²   density: "
        f"{(profile.density_per_km2 or 0):.1f} per km²",
    ]
    if profile.station:
        lines.append(f"station: {profile.station.get('name')} ({profile.station.get('address')})")
    if profile.neighbours:
        lines.append(f"neighbours: {', '.join(profile.neighbours)}")
    lines.append("")
    lines.append(
        "by category: " + ", ".join(f"{k} {int(v)}" for k, v in profile.counts_by_category.items())
    )
    lines.append("")
    lines.append(
        f"{'window':<16}{'period':<25}{'now':>6}{'prev':>6}{'chg':>7}{'p':>7}"
        f"{'last yr':>8}{'chg':>7}{'p':>7}"
    )
    shown = compare.covered_counts(profile.comparisons)
    for row, previous, last_year in zip(
        profile.comparisons.itertuples(index=False),
        shown["previous"].map(compare.count_text),
        shown["last_year"].map(compare.count_text),
        strict=True,
    ):
        lines.append(
            f"{row.label:<16}{f'{row.start}..{row.end}':<25}{row.current:>6}{previous:>6}"
            f"{_fmt_pct(row.pct_change):>7}{_fmt_p(row.p_value):>7}{last_year:>8}"
            f"{_fmt_pct(row.pct_change_last_year):>7}{_fmt_p(row.p_value_last_year):>7}"
            f" {row.flag}"
        )
    share = profile.concentration.get("share")
    lines.append("")
    if share is not None:
        lines.append(
            f"concentration: {share:.0%} of incidents on the busiest 20% of blocks "
            f"({profile.concentration['n_top_places']} of "
            f"{profile.concentration['n_places']})"
        )
    lines.append(
        "top blocks: "
        + "; ".join(f"{r.block} ({r.incidents})" for r in profile.top_blocks.head(5).itertuples())
    )
    if review is not None:
        lines.append("")
        lines.append(f"sector {review.sector} review, window {review.window}:")
        for row in review.beats.itertuples(index=False):
            lines.append(
                f"  {row.beat}  {row.incidents:>5}  prev {row.previous:>5}  "
                f"{_fmt_pct(row.pct_change):>6}  p {_fmt_p(row.p_value)}  {row.flag}"
                f"{'  UNUSUAL' if row.is_unusual else ''}"
            )
        lines.append(f"  {review.unusual_note}")
    return "\n".join(lines) + "\n"
