"""Benchmark: a city-wide forecast on 150 m cells from one year, and the whole weekly backtest.

``python -m bench.forecast [--store DIR] [--backtest] [--markdown FILE.md] [--out FILE.md]``

Without ``--store``, the bundled Seattle 2018 department (``geodata/samples/seattle``) is built
once under ``/tmp/beatwise_bench_seattle``: 75,281 offenses, 72,597 located. Each method's
forecast (fit on the year, 7-day horizon, every study cell) is timed ``REPEATS`` times and the
median reported; ``--backtest`` also times ``analysis.forecast.forecast_backtest`` over the
whole store (weekly cut-offs, horizons 1 and 7 days, every method) and writes its tables with
``--markdown``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

STORE = Path("/tmp/beatwise_bench_seattle")
REPEATS = 3


def build_seattle_store(root: Path) -> Path:
    """Build (once) the bundled Seattle 2018 department's store at `root`; return `root`."""
    from geodata.ingest import build_sample_store
    from geodata.store import IncidentStore

    store = IncidentStore(root)
    if not (store.exists() and store.incident_files()):
        build_sample_store(store, department="seattle")
    return root


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print (and optionally write) a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="an existing store (default: Seattle 2018, built once)")
    parser.add_argument("--backtest", action="store_true", help="also time the whole backtest")
    parser.add_argument("--markdown", help="write the backtest tables to this file")
    parser.add_argument("--out", help="write the timing table to this file")
    args = parser.parse_args(argv)

    from analysis import forecast
    from analysis.cli.forecast import format_comparison, summarize
    from analysis.evaluate import study_grid
    from geodata import schema
    from geodata.store import IncidentStore

    root = Path(args.store) if args.store else build_seattle_store(STORE)
    store = IncidentStore(root)
    incidents = store.load_incidents(columns=[schema.X, schema.Y, schema.OCCURRED_AT, schema.BEAT])
    beats = store.read_layer("beats")
    located = incidents.dropna(subset=[schema.X, schema.Y])
    _, mask = study_grid(beats, 150.0)
    lines = [
        f"Machine: {platform.processor() or platform.machine()}, store {root} "
        f"({len(located):,} located incidents, {int(mask.sum()):,} study cells of 150 m).",
        "",
        "| case | seconds (median of runs) | runs |",
        "|---|---|---|",
    ]
    for method in forecast.FORECAST_METHODS:
        times = []
        for _ in range(REPEATS):
            start = time.perf_counter()
            forecast.forecast_cells(located, beats, method, horizon_days=7)
            times.append(time.perf_counter() - start)
        lines.append(
            f"| forecast {method}, 7 days, one year | {statistics.median(times):.2f} | {REPEATS} |"
        )
        print(lines[-1], flush=True)
    if args.backtest:
        start = time.perf_counter()
        results = forecast.forecast_backtest(located, beats)
        elapsed = time.perf_counter() - start
        n_cut = results.groupby("horizon_days")["cutoff"].nunique().to_dict()
        lines.append(
            f"| backtest, weekly cut-offs {n_cut}, 3 methods, 3 coverages | {elapsed:.0f} | 1 |"
        )
        print(lines[-1], flush=True)
        comparison = forecast.compare_to_naive(results)
        text = format_comparison(comparison, summarize(results))
        intervals = forecast.beat_interval_backtest(
            incidents.dropna(subset=[schema.BEAT]), beats[schema.BEAT].astype(str)
        )
        real = intervals["expected"] >= 1
        text += (
            f"\n90% beat-week intervals (7 days): {intervals['inside'].mean():.1%} of "
            f"{len(intervals):,} beat-weeks inside; {intervals.loc[real, 'inside'].mean():.1%} "
            f"of the {int(real.sum()):,} with at least 1 expected.\n"
        )
        print(text)
        if args.markdown:
            Path(args.markdown).write_text(text, encoding="utf-8")
            results.to_csv(Path(args.markdown).with_suffix(".csv"), index=False)
    table = "\n".join(lines) + "\n"
    if args.out:
        Path(args.out).write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
