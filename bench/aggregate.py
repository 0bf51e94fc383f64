"""Benchmark: incidents by beat x month x offense over 10M stored incidents (target <= 0.3 s).

Synthesises an incident store (the versioned table of ``geodata.table``: one Parquet file per
local month, every canonical column, zstd, written as one version with
``IncidentStore.upsert_batches``) in a temporary directory, then times

* DuckDB over the current version's data files (``IncidentStore.incident_files()``), grouping
  by the hive partition month (the store partitions by *local* month) and by ``date_trunc`` on
  the local timestamp, and
* pandas on the same rows already in memory (Arrow-backed strings, as ``load_incidents`` gives).

* pyarrow: each partition's ``beat`` and ``offense`` read as dictionary codes and counted with
  ``np.bincount`` (no strings materialised), two threads.

All answers are checked to be identical. Usage::

    .venv/bin/python -m bench.aggregate [--rows 10000000] [--keep DIR]
"""

from __future__ import annotations

import argparse
import os
import platform
import shutil
import tempfile
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geodata import schema
from geodata.department import load_department
from geodata.store import INCIDENTS, IncidentStore

#: The bundled Chicago department: its zone and analysis CRS.
CHICAGO = load_department("chicago")
TZ = CHICAGO.timezone
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
    store.initialize(analysis_crs=str(CHICAGO.analysis_crs), timezone=TZ)
    arrow_schema = INCIDENTS.arrow_schema(TZ)
    months = [(y, m) for y in (2023, 2024) for m in range(1, 13)]
    per_month = np.full(len(months), n_rows // len(months))
    per_month[: n_rows % len(months)] += 1
    beat_arr = np.array(beats)
    sectors = np.array([b[:3] for b in beats])
    districts = np.array([b[:2] for b in beats])
    offenses = np.array(OFFENSES)
    weights = 1.0 / np.arange(1, len(OFFENSES) + 1)
    weights /= weights.sum()

    def batches() -> Iterator[pa.Table]:
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
            yield pa.table(columns, schema=arrow_schema)

    store.upsert_batches(batches(), source={"file": "synthetic"})
    return store


QUERY_HIVE = """
SELECT beat, year, month, offense, count(*) AS incidents
FROM read_parquet({files}, hive_partitioning = true)
GROUP BY ALL
"""
QUERY_TRUNC = """
SELECT beat, year(occurred_at) AS year, month(occurred_at) AS month, offense,
       count(*) AS incidents
FROM read_parquet({files})
GROUP BY ALL
"""
KEY = ["beat", "year", "month", "offense"]


def _partition(path: Path) -> tuple[int, int]:
    return int(path.parent.parent.name.split("=")[1]), int(path.parent.name.split("=")[1])


def duckdb_per_partition(con: duckdb.DuckDBPyConnection, files: list[Path]) -> pd.DataFrame:
    """Group each monthly partition by (beat, offense) in DuckDB; the month is the partition."""
    parts = []
    for path in files:
        year, month = _partition(path)
        parts.append(
            f"SELECT beat, {year} AS year, {month} AS month, offense, count(*) AS "
            f"incidents FROM read_parquet('{path}') GROUP BY ALL"
        )
    return con.sql(" UNION ALL ".join(parts)).df()


def _count_partition(path: Path) -> pd.DataFrame:
    table = pq.read_table(
        path, columns=[schema.BEAT, schema.OFFENSE], read_dictionary=[schema.BEAT, schema.OFFENSE]
    )
    beat = table.column(schema.BEAT).unify_dictionaries().combine_chunks()
    offense = table.column(schema.OFFENSE).unify_dictionaries().combine_chunks()
    n_off = len(offense.dictionary)
    codes = beat.indices.to_numpy().astype(np.int64) * n_off + offense.indices.to_numpy()
    counts = np.bincount(codes, minlength=len(beat.dictionary) * n_off)
    hit = np.flatnonzero(counts)
    year, month = _partition(path)
    return pd.DataFrame(
        {
            "beat": beat.dictionary.to_numpy(zero_copy_only=False)[hit // n_off],
            "year": year,
            "month": month,
            "offense": offense.dictionary.to_numpy(zero_copy_only=False)[hit % n_off],
            "incidents": counts[hit],
        }
    )


def arrow_dictionary_counts(files: list[Path], *, threads: int = 2) -> pd.DataFrame:
    """Count beat x offense per monthly partition from the Parquet dictionary codes.

    Strings are never materialised: each partition's ``beat`` and ``offense`` columns are read
    as dictionary arrays and their integer codes are combined and counted with ``np.bincount``;
    the month is the partition's. Partitions are independent, so this scales with files/cores.
    """
    with ThreadPoolExecutor(threads) as pool:
        return pd.concat(list(pool.map(_count_partition, files)), ignore_index=True)


def _timed(fn, repeat: int) -> tuple[float, float, float, object]:
    times, result = [], None
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return times[0], min(times), float(np.median(times)), result


def _canonical(frame: pd.DataFrame) -> pd.DataFrame:
    out = frame[[*KEY, "incidents"]].astype(
        {"beat": str, "offense": str, "year": int, "month": int, "incidents": int}
    )
    return out.sort_values(KEY).reset_index(drop=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--repeat", type=int, default=7)
    parser.add_argument(
        "--keep",
        help="write the synthetic store here and keep it (reused when "
        "it already holds --rows incidents)",
    )
    args = parser.parse_args()
    from geodata import settings
    from geodata.boundaries import read_beats

    beats = (
        read_beats(settings.bundled_samples("chicago") / "beats.geojson")[schema.BEAT]
        .astype(str)
        .tolist()
    )
    workdir = Path(args.keep) if args.keep else Path(tempfile.mkdtemp(prefix="beatwise_agg_"))
    try:
        store = IncidentStore(workdir / "store")
        if not (store.meta_path.exists() and store.count() == args.rows):
            shutil.rmtree(store.root, ignore_errors=True)
            t0 = time.perf_counter()
            synthesise(store.root, args.rows, beats)
            print(f"synthesised {args.rows:,} incidents in {time.perf_counter() - t0:.1f} s")
        files = store.incident_files()
        size_mb = sum(f.stat().st_size for f in files) / 1e6
        print(
            f"store: {store.count():,} incidents, {len(files)} monthly partitions, "
            f"{size_mb:.0f} MB of Parquet (all {len(schema.INCIDENT_COLUMNS)} columns, zstd)"
        )
        glob = "[" + ", ".join(f"'{f}'" for f in files) + "]"
        con = duckdb.connect()
        con.execute(f"SET TimeZone = '{TZ}'")
        results = {}
        runs = {
            "duckdb, glob, hive year/month": lambda: con.sql(QUERY_HIVE.format(files=glob)).df(),
            "duckdb, glob, month(occurred_at) local": lambda: con.sql(
                QUERY_TRUNC.format(files=glob)
            ).df(),
            "duckdb, one GROUP BY per partition": lambda: duckdb_per_partition(con, files),
            "pyarrow dictionary codes + bincount": lambda: arrow_dictionary_counts(files),
            "IncidentStore.count_by (the product)": lambda: store.count_by(
                [schema.BEAT, schema.OFFENSE]
            ),
        }
        for name, fn in runs.items():
            first, best, median, result = _timed(fn, args.repeat)
            results[name] = result
            print(f"{name:<42} first {first:.3f} s  best {best:.3f} s  median {median:.3f} s")

        t0 = time.perf_counter()
        frame = store.load_incidents(columns=[schema.OCCURRED_AT, schema.BEAT, schema.OFFENSE])
        print(
            f"pandas: load_incidents of 3 columns {time.perf_counter() - t0:.2f} s "
            f"({frame.memory_usage(deep=True).sum() / 1e6:.0f} MB)"
        )
        year = frame[schema.OCCURRED_AT].dt.year.rename("year")
        month = frame[schema.OCCURRED_AT].dt.month.rename("month")
        categorical = frame.astype({schema.BEAT: "category", schema.OFFENSE: "category"})

        def by_pandas(data: pd.DataFrame) -> pd.DataFrame:
            return (
                data.groupby([data[schema.BEAT], year, month, data[schema.OFFENSE]], observed=True)
                .size()
                .rename("incidents")
                .reset_index()
            )

        for name, data in (
            ("pandas in memory, Arrow strings", frame),
            ("pandas in memory, categoricals", categorical),
        ):
            first, best, median, result = _timed(lambda d=data: by_pandas(d), args.repeat)
            results[name] = result
            print(f"{name:<42} first {first:.3f} s  best {best:.3f} s  median {median:.3f} s")

        reference = _canonical(results["duckdb, glob, hive year/month"])
        assert int(reference["incidents"].sum()) == args.rows
        for name, result in results.items():
            pd.testing.assert_frame_equal(_canonical(result), reference, obj=name)
        print(f"all {len(results)} methods agree on every one of {len(reference):,} groups")
        print(
            f"machine: {platform.machine()}, {os.cpu_count()} cores, "
            f"{os.sysconf('SC_PAGE_SIZE') * os.sysconf('SC_PHYS_PAGES') / 2**30:.0f} GiB; "
            f"duckdb {duckdb.__version__}, pyarrow {pa.__version__}, pandas {pd.__version__}"
        )
    finally:
        if not args.keep:
            shutil.rmtree(workdir, ignore_errors=True)


if __name__ == "__main__":
    main()
