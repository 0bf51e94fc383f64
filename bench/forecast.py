"""Benchmark: a city-wide forecast on 150 m cells from one year, and the whole weekly backtest.

``python -m bench.forecast [--store DIR] [--backtest] [--out FILE.md]``

Without ``--store``, a Seattle 2018 store is built once under ``/tmp/beatwise_bench_seattle``
from the shared SPD file (``--csv``, ``--beats``; see :func:`build_seattle_store`): 75,281
offenses, 72,597 located. Each method's forecast (fit on the year, 7-day horizon, every study
cell) is timed ``REPEATS`` times and the median reported; ``--backtest`` also times
``analysis.forecast.forecast_backtest`` over the whole store (weekly cut-offs, horizons 1 and 7
days, every method) and writes its tables with ``--markdown``.
"""

from __future__ import annotations

import argparse
import platform
import statistics
import time
from pathlib import Path

SEATTLE_CSV = Path("/work/shared/data/seattle/spd_crime_2018.csv.gz")
SEATTLE_BEATS = Path("/work/shared/data/seattle/beats_2018.geojson")
STORE = Path("/tmp/beatwise_bench_seattle")
REPEATS = 3


def build_seattle_store(root: Path, csv: Path = SEATTLE_CSV, beats: Path = SEATTLE_BEATS) -> Path:
    """Build (once) a store of the SPD 2018 offenses at `root` with the documented mapping.

    Mapping: ``offense_id`` (id), ``report_number``, ``offense_start_datetime`` (Seattle local
    time), ``offense``, ``_100_block_address``, the reported ``beat``, ``longitude``/``latitude``
    (0 = missing: rejected as missing coordinates). Analysis CRS: the layer's UTM zone.
    """
    from geodata.ingest import ingest_file, install_boundaries
    from geodata.readers import ColumnMapping
    from geodata.store import IncidentStore

    store = IncidentStore(root)
    if store.exists() and store.incident_files():
        return root
    install_boundaries(store, beats, timezone="America/Los_Angeles", analysis_crs=None)
    mapping = ColumnMapping(
        incident_id="offense_id",
        case_number="report_number",
        occurred_at="offense_start_datetime",
        offense="offense",
        block="_100_block_address",
        reported_beat="beat",
        lat="latitude",
        lon="longitude",
        timezone="America/Los_Angeles",
    )
    ingest_file(csv, store, mapping=mapping)
    return root


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark; print (and optionally write) a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", help="an existing store (default: Seattle 2018, built once)")
    parser.add_argument("--csv", default=str(SEATTLE_CSV))
    parser.add_argument("--beats", default=str(SEATTLE_BEATS))
    parser.add_argument("--backtest", action="store_true", help="also time the whole backtest")
    parser.add_argument("--markdown", help="write the backtest tables to this file")
    parser.add_argument("--out", help="write the timing table to this file")
    args = parser.parse_args(argv)

    from analysis import forecast
    from analysis.cli_forecast import format_comparison, summarize
    from analysis.evaluate import study_grid
    from geodata import schema
    from geodata.store import IncidentStore

    root = (
        Path(args.store)
        if args.store
        else build_seattle_store(STORE, Path(args.csv), Path(args.beats))
    )
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
