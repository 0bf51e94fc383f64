"""Benchmark: incidents by beat x month x offense over 10M stored incidents (target <= 0.3 s).

Synthesises a partitioned Parquet store with the incident store's schema
(``incidents/year=YYYY/month=MM/data.parquet``, every canonical column, zstd) in a temporary
directory, then times

* DuckDB over the store's parquet glob (``IncidentStore.incidents_glob()``), grouping by the
  hive partition month (the store partitions by *local* month) and by ``date_trunc`` on the
  local timestamp, and
* pandas on the same rows already in memory (Arrow-backed strings, as ``load_incidents`` gives).

Both answers are checked to be identical. Usage::

    /work/main/.venv/bin/python bench/aggregate.py [--rows 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geodata import schema
from geodata.store import IncidentStore, _arrow_schema

TZ = schema.DEFAULT_TIMEZONE
OFFENSES = [
    "THEFT",
    "BATTERY",
    "CRIMINAL DAMAGE",
    "ASSAULT",
    "DECEPTIVE PRACTICE",
    "OTHER OFFENSE",
    "MOTOR VEHICLE THEFT",
    "BURGLARY",
    "ROBBERY",
    "NARCOTICS",
    "WEAPONS VIOLATION",
    "CRIMINAL TRESPASS",
    "OFFENSE INVOLVING CHILDREN",
    "PUBLIC PEACE VIOLATION",
    "SEX OFFENSE",
    "HOMICIDE",
    "ARSON",
    "STALKING",
    "INTERFERENCE WITH PUBLIC OFFICER",
    "LIQUOR LAW VIOLATION",
    "KIDNAPPING",
    "PROSTITUTION",
    "GAMBLING",
    "OBSCENITY",
    "HUMAN TRAFFICKING",
]


def synthesise(root: Path, n_rows: int, beats: list[str], *, seed: int = 0) -> IncidentStore:
    """Write `n_rows` random incidents over 2023-2024 into a store at `root`."""
    rng = np.random.default_rng(seed)
    store = IncidentStore(root)
    store.initialize(analysis_crs=schema.DEFAULT_ANALYSIS_CRS, timezone=TZ)
    arrow_schema = _arrow_schema(TZ)
    months = [(y, m) for y in (2023, 2024) for m in range(1, 13)]
    per_month = np.full(len(months), n_rows // len(months))
    per_month[: n_rows % len(months)] += 1
    beat_arr = np.array(beats)
    sectors = np.array([b[:3] for b in beats])
    districts = np.array([b[:2] for b in beats])
    offenses = np.array(OFFENSES)
    weights = 1.0 / np.arange(1, len(OFFENSES) + 1)
    weights /= weights.sum()
    next_id = 0
    for (year, month), n in zip(months, per_month, strict=True):
        first = pd.Timestamp(year=year, month=month, day=1).tz_localize(TZ)
        after = (
            pd.Timestamp(year=year, month=month, day=1) + pd.offsets.MonthBegin(1)
        ).tz_localize(TZ)
        span_us = int((after - first).total_seconds() * 1e6)
        stamps = np.sort(first.value // 1000 + rng.integers(0, span_us, n))
        b = rng.integers(0, len(beats), n)
        o = rng.choice(len(OFFENSES), n, p=weights)
        ids = pa.array(np.arange(next_id, next_id + n).astype(str))
        next_id += n
        x = 440_000 + rng.random(n) * 20_000
        y = 4_620_000 + rng.random(n) * 40_000
        columns = {
            schema.INCIDENT_ID: ids,
            schema.CASE_NUMBER: ids,
            schema.OCCURRED_AT: pa.array(stamps, pa.timestamp("us", tz=TZ)),
            schema.OFFENSE: pa.array(offenses[o]),
            schema.DESCRIPTION: pa.array(np.full(n, "SIMPLE")),
            schema.IUCR: pa.array(np.full(n, "0820")),
            schema.FBI_CODE: pa.array(np.full(n, "06")),
            schema.CATEGORY: pa.array(np.full(n, "property")),
            schema.IS_SENSITIVE: pa.array(np.zeros(n, bool)),
            schema.LOCATION_DESC: pa.array(np.full(n, "STREET")),
            schema.BLOCK: pa.array(np.full(n, "012XX W MADISON ST")),
            schema.DOMESTIC: pa.array(np.zeros(n, bool)),
            schema.ARREST: pa.array(np.zeros(n, bool)),
            schema.X: pa.array(x),
            schema.Y: pa.array(y),
            schema.LON: pa.array(-87.9 + (x - 440_000) / 83_000),
            schema.LAT: pa.array(41.7 + (y - 4_620_000) / 111_000),
            schema.BEAT: pa.array(beat_arr[b]),
            schema.SECTOR: pa.array(sectors[b]),
            schema.DISTRICT: pa.array(districts[b]),
            schema.REPORTED_BEAT: pa.array(beat_arr[b]),
            schema.JOIN_STATUS: pa.array(np.full(n, "inside")),
            schema.SOURCE: pa.array(np.full(n, "synthetic")),
            schema.SOURCE_LINE: pa.array(np.arange(n, dtype=np.int64)),
        }
        table = pa.table(columns, schema=arrow_schema)
        path = store.incidents_dir / f"year={year:04d}" / f"month={month:02d}" / "data.parquet"
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, path, compression="zstd")
    return store


QUERY_PARTITION = """
SELECT beat, year, month, offense, count(*) AS incidents
FROM read_parquet('{glob}', hive_partitioning = true)
GROUP BY ALL
"""
QUERY_TRUNC = """
SELECT beat, date_trunc('month', occurred_at) AS month, offense, count(*) AS incidents
FROM read_parquet('{glob}')
GROUP BY ALL
"""


def _best(fn, repeat: int) -> tuple[float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times[0], min(times), result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--keep", help="write the synthetic store here and keep it")
    args = parser.parse_args()
    from geodata import settings
    from geodata.boundaries import read_beats

    beats = read_beats(settings.SAMPLES_DIR / "beats.geojson")[schema.BEAT].astype(str).tolist()
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="beatwise_agg_"))
    try:
        t0 = time.perf_counter()
        store = synthesise(workdir / "store", args.rows, beats)
        size_mb = sum(f.stat().st_size for f in store.incident_files()) / 1e6
        print(
            f"synthesised {store.count():,} incidents in {time.perf_counter() - t0:.1f} s "
            f"({size_mb:.0f} MB of Parquet, {len(store.incident_files())} partitions)"
        )
        glob = store.incidents_glob()
        con = duckdb.connect()
        con.execute(f"SET TimeZone = '{TZ}'")
        first, best, duck = _best(
            lambda: con.sql(QUERY_PARTITION.format(glob=glob)).df(), args.repeat
        )
        print(
            f"duckdb, by partition month: first {first:.3f} s, best of {args.repeat} "
            f"{best:.3f} s, {len(duck):,} groups"
        )
        first_t, best_t, duck_t = _best(
            lambda: con.sql(QUERY_TRUNC.format(glob=glob)).df(), args.repeat
        )
        print(
            f"duckdb, date_trunc on local time: first {first_t:.3f} s, best {best_t:.3f} s, "
            f"{len(duck_t):,} groups"
        )

        t0 = time.perf_counter()
        frame = store.load_incidents(columns=[schema.OCCURRED_AT, schema.BEAT, schema.OFFENSE])
        load_s = time.perf_counter() - t0
        print(
            f"pandas: load_incidents of 3 columns {load_s:.2f} s "
            f"({frame.memory_usage(deep=True).sum() / 1e6:.0f} MB)"
        )

        def by_pandas() -> pd.DataFrame:
            month = frame[schema.OCCURRED_AT].dt.month
            year = frame[schema.OCCURRED_AT].dt.year
            return (
                frame.groupby(
                    [
                        frame[schema.BEAT],
                        year.rename("year"),
                        month.rename("month"),
                        frame[schema.OFFENSE],
                    ],
                    observed=True,
                )
                .size()
                .rename("incidents")
                .reset_index()
            )

        first_p, best_p, pandas_counts = _best(by_pandas, args.repeat)
        print(f"pandas in memory: first {first_p:.3f} s, best {best_p:.3f} s")

        key = ["beat", "year", "month", "offense"]
        left = duck.astype({"beat": str, "offense": str, "year": int, "month": int})
        right = pandas_counts.astype({"beat": str, "offense": str, "year": int, "month": int})
        left = left.sort_values(key).reset_index(drop=True)
        right = right.sort_values(key).reset_index(drop=True)
        pd.testing.assert_frame_equal(
            left[[*key, "incidents"]].astype({"incidents": int}),
            right[[*key, "incidents"]].astype({"incidents": int}),
        )
        assert int(duck_t["incidents"].sum()) == args.rows == int(duck["incidents"].sum())
        print("duckdb and pandas agree on every group")
        print(
            f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, "
            f"duckdb {duckdb.__version__}, pandas {pd.__version__}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
