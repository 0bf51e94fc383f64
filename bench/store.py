"""Benchmark: loading N stored incidents from the versioned incident table.

Builds a synthetic store of N incidents (the bundled Chicago incidents resampled, jittered and
spread over 10 years x 12 monthly partitions, written as one version) in a temporary directory,
then times ``IncidentStore.load_incidents`` for the columns an analysis page needs, for all
columns, and for one beat's and one sector's incidents (area filters pushed into the read).
Usage::

    .venv/bin/python -m bench.store --rows 10000000
"""

from __future__ import annotations

import argparse
import tempfile
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pandas as pd

from analysis import inputs
from analysis.hotspots import HOTSPOT_COLUMNS
from geodata import schema, settings
from geodata.ingest import build_sample_store
from geodata.store import IncidentStore

ANALYSIS_COLUMNS = [schema.OCCURRED_AT, schema.BEAT, schema.SECTOR, schema.DISTRICT,
                    schema.CATEGORY, schema.OFFENSE, schema.X, schema.Y]  # fmt: skip


def build_synthetic_store(root: Path, rows: int, seed: int = 0) -> IncidentStore:
    """Write a store of `rows` incidents resampled from the bundled data, as one version."""
    base = IncidentStore(root / "base")
    build_sample_store(base, settings.bundled_samples("chicago"))
    sample = base.load_incidents()
    store = IncidentStore(root / "big")
    store.initialize(analysis_crs=base.analysis_crs, timezone=base.timezone)
    rng = np.random.default_rng(seed)
    tz = base.timezone
    months = [(y, m) for y in range(2015, 2025) for m in range(1, 13)]
    per_month = rows // len(months)

    def batches() -> Iterator[pd.DataFrame]:
        for k, (year, month) in enumerate(months):
            n = per_month if k < len(months) - 1 else rows - per_month * (len(months) - 1)
            pick = sample.iloc[rng.integers(0, len(sample), n)].reset_index(drop=True)
            start = pd.Timestamp(year=year, month=month, day=1, tz=tz)
            span = (start + pd.offsets.MonthBegin(1) - start).total_seconds()
            pick[schema.OCCURRED_AT] = start + pd.to_timedelta(
                np.floor(rng.uniform(0, span - 1, n)), unit="s"
            )
            pick[schema.INCIDENT_ID] = pd.array(
                [f"s{k:03d}{i:08d}" for i in range(n)], dtype="string"
            )
            pick[schema.X] = pick[schema.X] + rng.normal(0, 30, n)
            pick[schema.Y] = pick[schema.Y] + rng.normal(0, 30, n)
            yield pick

    store.upsert_batches(batches(), source={"file": "synthetic"})
    return store


def read_cases(store: IncidentStore) -> dict[str, Callable[[], object]]:
    """Return the timed reads of the whole store: columns, a year, an area, counts."""
    return {
        f"analysis columns ({len(ANALYSIS_COLUMNS)})":
            lambda: store.load_incidents(columns=ANALYSIS_COLUMNS),
        "beat + time only": lambda: store.load_incidents(
            columns=[schema.BEAT, schema.OCCURRED_AT]),
        "time + x + y (hotspots, KDE)": lambda: store.load_incidents(
            columns=[schema.OCCURRED_AT, schema.X, schema.Y]),
        "one year (2024), analysis columns": lambda: store.load_incidents(
            columns=ANALYSIS_COLUMNS, start="2024-01-01", end="2025-01-01"),
        f"all {len(schema.INCIDENT_COLUMNS)} columns": lambda: store.load_incidents(),
        "one beat (0925), analysis columns": lambda: store.load_incidents(
            columns=ANALYSIS_COLUMNS, beats=["0925"]),
        "one sector (092), analysis columns": lambda: store.load_incidents(
            columns=ANALYSIS_COLUMNS, where={schema.SECTOR: ["092"]}),
        "one beat, one year (2024)": lambda: store.load_incidents(
            columns=ANALYSIS_COLUMNS, beats=["0925"], start="2024-01-01", end="2025-01-01"),
        "count_by beat x offense, all": lambda: store.count_by([schema.BEAT, schema.OFFENSE]),
        "count_by offense, one beat": lambda: store.count_by(
            [schema.OFFENSE], beats=["0925"]),
    }  # fmt: skip


def page_reads(store: IncidentStore, base: IncidentStore) -> dict[str, Callable[[], object]]:
    """Return the reads the pages make, with their default periods and areas.

    Beat profile and Sector review read their area's beats over their history window, the
    Overview the beat and category of the default period, Hotspots its columns over the default
    period, Beat planning a year of workload points; every page first reads the store-wide
    calendar of daily counts. The areas are beat 0925 and sector 092 of the bundled sample.
    """
    daily = inputs.load_daily_counts(store)
    period = inputs.default_period(daily)
    as_of = period.last
    beats = inputs.load_layers(base).beats
    beat = ["0925"]
    sector = list(beats.loc[beats[schema.SECTOR] == "092", schema.BEAT])
    year = inputs.Period.ending(as_of, days=365)
    review = inputs.history(as_of, years=inputs.REVIEW_HISTORY_YEARS)
    return {
        "page: store-wide daily counts (every page)": lambda: inputs.load_daily_counts(store),
        f"page: Overview, beat + category, {period}": lambda: inputs.load_incidents(
            store, (schema.BEAT, schema.CATEGORY), period),
        "page: Beat profile, beat 0925, 2 years": lambda: inputs.load_incidents(
            store, inputs.PROFILE_COLUMNS, inputs.history(as_of), beats=beat),
        "page: Sector review, sector 092, 6 years": lambda: inputs.load_incidents(
            store, inputs.PROFILE_COLUMNS, review, beats=sector),
        f"page: Hotspots, {period}": lambda: inputs.load_incidents(
            store, HOTSPOT_COLUMNS, period),
        f"page: Beat planning, x + y + category + beat, {year}": lambda: inputs.load_incidents(
            store, (schema.X, schema.Y, schema.CATEGORY, schema.BEAT), year),
    }  # fmt: skip


def best_of(fn, repeat: int) -> tuple[float, list[float]]:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times), times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--keep", help="build the store here and keep it (reused when it exists)")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        t0 = time.perf_counter()
        workdir = Path(args.keep) if args.keep else Path(tmp)
        if args.keep and (workdir / "big" / "meta.json").exists():
            store = IncidentStore(workdir / "big")
        else:
            store = build_synthetic_store(workdir, args.rows)
        size = sum(f.stat().st_size for f in store.incident_files())
        print(f"built {store.count():,} incidents in {time.perf_counter() - t0:.0f} s, "
              f"{len(store.incident_files())} partitions, {size / 1e6:.0f} MB on disk")  # fmt: skip
        cases = read_cases(store)
        cases.update(page_reads(store, IncidentStore(workdir / "base")))
        print("| load | best | runs |")
        print("|---|---|---|")
        for name, fn in cases.items():
            best, times = best_of(fn, args.repeat)
            print(f"| {name} | {best:.3f} s | {', '.join(f'{t:.3f}' for t in times)} |")


if __name__ == "__main__":
    main()
