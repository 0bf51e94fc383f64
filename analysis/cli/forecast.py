"""``python -m analysis forecast`` and ``forecast-backtest``: where the next incidents will be.

Examples
--------
``python -m analysis forecast --method prospective --horizon 7d --out forecast.geojson``,
``python -m analysis forecast --sector 011 --out forecast.csv --json``,
``python -m analysis forecast-backtest --markdown /tmp/forecast.md``.
"""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date, timedelta
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import export, forecast, inputs
from analysis.cli.common import add_area_arguments, area_id, chosen_area
from analysis.evaluate import COVERAGES
from geodata import schema

__all__ = [
    "add_commands",
    "format_comparison",
    "parse_horizon",
    "run_backtest",
    "run_forecast",
]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``forecast`` and ``forecast-backtest`` commands."""
    parser = subparsers.add_parser(
        "forecast",
        help="expected incidents per 150 m cell and per beat over the next days",
        description=__doc__.split("\n")[0],
    )
    parser.add_argument(
        "--method", choices=forecast.FORECAST_METHODS, default=forecast.DEFAULT_METHOD
    )
    add_area_arguments(parser, help_text="only the cells of this {level}")
    parser.add_argument("--horizon", default="7d", type=parse_horizon, help="1d, 7d, ... (days)")
    parser.add_argument(
        "--as-of", help="first forecast day, YYYY-MM-DD (default: the day after the last data)"
    )
    parser.add_argument("--store", help="incident store directory (default: the bundled data)")
    parser.add_argument("--out", help="write the cells to FILE.geojson or FILE.csv")
    parser.add_argument("--top", type=int, default=20, help="cells listed (text and JSON)")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run_forecast)

    bt = subparsers.add_parser(
        "forecast-backtest",
        help="weekly backtest of the forecasts against the naive baseline, paired tests",
        description="Weekly cut-offs over the store, horizons 1 and 7 days, every method "
        "against the naive baseline (Wilcoxon signed-rank, bootstrap ratio interval).",
    )
    bt.add_argument(
        "--methods",
        nargs="+",
        default=list(forecast.FORECAST_METHODS),
        choices=forecast.FORECAST_METHODS,
    )
    bt.add_argument("--horizons", nargs="+", type=parse_horizon, default=[1, 7])
    bt.add_argument("--coverages", nargs="+", type=float, default=list(COVERAGES))
    bt.add_argument(
        "--first-day", type=int, default=28, help="days of data before the first cut-off"
    )
    bt.add_argument("--from", dest="start", help="first day of data used, YYYY-MM-DD")
    bt.add_argument("--to", dest="end", help="last day of data used (inclusive), YYYY-MM-DD")
    bt.add_argument("--store", help="incident store directory (default: the bundled data)")
    bt.add_argument("--json", action="store_true", help="print JSON (comparison, every cut-off)")
    bt.add_argument("--markdown", help="also write the tables as Markdown to this file")
    bt.set_defaults(func=run_backtest)


def parse_horizon(text: str) -> int:
    """Return the days of a horizon written ``7d``, ``7`` or ``1d``."""
    value = text.strip().lower().removesuffix("d")
    if not value.isdigit() or int(value) < 1:
        msg = f"horizon must be a whole number of days such as 1d or 7d, got {text!r}"
        raise argparse.ArgumentTypeError(msg)
    return int(value)


def _day(text: str | None, flag: str) -> date | None:
    if text is None:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError:
        msg = f"{flag} {text!r} is not a date in YYYY-MM-DD format"
        raise ValueError(msg) from None


def run_forecast(args: argparse.Namespace) -> int:
    """Run ``python -m analysis forecast``."""
    if args.out:
        export.check_layer_path(args.out)
    store = inputs.open_store(args.store)
    as_of = _day(args.as_of, "--as-of")
    lookback = timedelta(days=365 + 91)
    end = as_of or None
    incidents = store.load_incidents(
        columns=[
            schema.X,
            schema.Y,
            schema.OCCURRED_AT,
            schema.BEAT,
            schema.SECTOR,
            schema.DISTRICT,
        ],
        start=pd.Timestamp(end - lookback) if end else None,
        end=pd.Timestamp(end) if end else None,
    )
    beats = store.read_layer("beats")
    located = incidents.dropna(subset=[schema.X, schema.Y])
    if located.empty:
        msg = "no located incidents before the forecast day: nothing to forecast from"
        raise ValueError(msg)
    model, cells = forecast.forecast_cells(
        located, beats, args.method, horizon_days=args.horizon, cutoff=as_of
    )
    level, typed = chosen_area(args)
    if level and typed:
        ident = area_id(store, level, typed)
        area = inputs.area_beats(beats, level=level, area_id=ident)
        inside = cells.geometry.representative_point().within(area.union_all())
        cells = cells[inside.to_numpy()].reset_index(drop=True)
    first_day = as_of or (
        pd.Timestamp(located[schema.OCCURRED_AT].max()).date() + timedelta(days=1)
    )
    cells["first_day"] = first_day.isoformat()
    cells["horizon_days"] = args.horizon
    beat_table = forecast.beat_forecast(
        incidents.dropna(subset=[schema.BEAT]),
        beats[schema.BEAT],
        cutoff=pd.Timestamp(first_day),
        horizon_days=args.horizon,
    )
    if level:
        beat_table = beat_table[beat_table[schema.BEAT].isin(set(area[schema.BEAT]))]
    if args.out:
        export.write_layer(cells, args.out)
    top = cells.sort_values("rank").head(args.top)
    centre = top.geometry.centroid.to_crs(schema.WGS84)
    listed = pd.DataFrame(
        {
            "rank": top["rank"].to_numpy(),
            "expected": top["expected"].round(3).to_numpy(),
            schema.LON: centre.x.round(6).to_numpy(),
            schema.LAT: centre.y.round(6).to_numpy(),
        }
    )
    info = {
        "method": args.method,
        "area": {"level": level or "department", "id": typed},
        "first_day": first_day.isoformat(),
        "horizon_days": args.horizon,
        "n_cells": len(cells),
        "expected_total": float(cells["expected"].sum()),
        "chosen": {k: _plain(v) for k, v in model.chosen_.items()},
        "top_cells": listed.to_dict("records"),
        "beats": json.loads(beat_table.to_json(orient="records")),
    }
    if args.json:
        print(json.dumps(info, indent=2, default=str))
    else:
        print(
            f"{args.method}: {args.horizon}-day forecast from {first_day} over {len(cells):,} "
            f"cells ({info['area']['level']} {info['area']['id'] or ''}); chosen {info['chosen']}"
        )
        print(listed.to_string(index=False))
        print(beat_table.round(1).to_string(index=False))
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _plain(value: object) -> object:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, float) and not np.isfinite(value):
        return str(value)
    return value


def format_comparison(comparison: pd.DataFrame, summary: pd.DataFrame) -> str:
    """Return the backtest as Markdown: mean PAI per method, then each method against naive."""
    lines = [
        "| horizon | coverage | method | cut-offs | hit rate | PAI | PEI* | RRI |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        lines.append(
            f"| {row.horizon_days} d | {row.coverage:.0%} | {row.method} | {row.cutoffs} | "
            f"{row.hit_rate_mean:.3f} ± {row.hit_rate_sd:.3f} | **{row.pai_mean:.2f}** ± "
            f"{row.pai_sd:.2f} | {row.pei_star_mean:.3f} ± {row.pei_star_sd:.3f} | "
            f"{row.rri_mean:.3f} ± {row.rri_sd:.3f} |"
        )
    lines += [
        "",
        "| horizon | coverage | method | cut-offs | PAI | naive PAI | mean ratio [95% CI] "
        "| higher in | Wilcoxon p |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in comparison.itertuples(index=False):
        lines.append(
            f"| {row.horizon_days} d | {row.coverage:.0%} | {row.method} | {row.cutoffs} | "
            f"{row.pai_method:.2f} | {row.pai_naive:.2f} | **{row.ratio_mean:.3f}** "
            f"[{row.ratio_lo:.3f}, {row.ratio_hi:.3f}] | {row.share_higher:.0%} | "
            f"{row.wilcoxon_p:.2g} |"
        )
    return "\n".join(lines) + "\n"


def summarize(results: pd.DataFrame) -> pd.DataFrame:
    """Return mean and standard deviation of each measure per (horizon, coverage, method)."""
    keys = ["horizon_days", "coverage", "method"]
    grouped = results.groupby(keys, sort=False)
    out = grouped.size().rename("cutoffs").to_frame()
    for m in ("hit_rate", "pai", "pei_star", "rri"):
        out[f"{m}_mean"] = grouped[m].mean()
        out[f"{m}_sd"] = grouped[m].std(ddof=1)
    return (
        out.reset_index()
        .sort_values(["horizon_days", "coverage", "pai_mean"], ascending=[True, True, False])
        .reset_index(drop=True)
    )


def run_backtest(args: argparse.Namespace) -> int:
    """Run ``python -m analysis forecast-backtest``."""
    store = inputs.open_store(args.store)
    start, end = _day(args.start, "--from"), _day(args.end, "--to")
    incidents = store.load_incidents(
        columns=[schema.X, schema.Y, schema.OCCURRED_AT, schema.BEAT],
        start=pd.Timestamp(start) if start else None,
        end=pd.Timestamp(end + timedelta(days=1)) if end else None,
    )
    beats = store.read_layer("beats")
    results = forecast.forecast_backtest(
        incidents,
        beats,
        methods=args.methods,
        horizons_days=args.horizons,
        coverages=args.coverages,
        first_day=args.first_day,
    )
    if results.empty:
        msg = (
            f"no weekly cut-off leaves {args.first_day} days of data before it and a whole "
            "horizon after it: use a longer period or a smaller --first-day"
        )
        raise ValueError(msg)
    comparison = forecast.compare_to_naive(results)
    summary = summarize(results)
    intervals = forecast.beat_interval_backtest(
        incidents.dropna(subset=[schema.BEAT]),
        beats[schema.BEAT],
        horizon_days=7,
        first_day=args.first_day,
    )
    coverage = {
        "beat_weeks": len(intervals),
        "coverage": float(intervals["inside"].mean()) if len(intervals) else None,
        "beat_weeks_expected_ge_1": int((intervals["expected"] >= 1).sum())
        if len(intervals)
        else 0,
        "coverage_expected_ge_1": float(intervals.loc[intervals["expected"] >= 1, "inside"].mean())
        if len(intervals)
        else None,
    }
    text = format_comparison(comparison, summary) + (
        f"\n90% beat-week intervals (7 days): {coverage['coverage']:.1%} of "
        f"{coverage['beat_weeks']:,} beat-weeks inside; {coverage['coverage_expected_ge_1']:.1%} "
        f"of the {coverage['beat_weeks_expected_ge_1']:,} with at least 1 expected.\n"
        if len(intervals)
        else ""
    )
    if args.markdown:
        Path(args.markdown).write_text(text, encoding="utf-8")
    if args.json:
        out = {
            "comparison": json.loads(comparison.to_json(orient="records")),
            "summary": json.loads(summary.to_json(orient="records")),
            "intervals": coverage,
            "cutoffs": json.loads(results.to_json(orient="records")),
        }
        print(json.dumps(out, indent=2))
    else:
        print(text, end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from analysis.cli import main

    sys.exit(main(["forecast", *sys.argv[1:]]))
