"""Benchmark: where one machine ends. Aggregations over a large synthetic store, single process
against a two-worker Dask ``LocalCluster`` whose workers are capped at 4 GB each.

``--build`` writes a store of ``--rows`` synthetic incidents (default 100M; not committed): real
rows of the bundled Chicago sample resampled with new ids, up to 10 m of jitter and times spread
over ten years, generated in Arrow and written straight as the store's Delta table, one version,
by the store's own writer (``RecordTable.replace_all``; no CSV, no ingest).
Then each case runs in its own process so its peak memory is its own:

* ``count``: incidents by year x month x beat x offense (``IncidentStore.count_by``);
* ``kde``: a city-wide KDE (150 m bandwidth, 50 m cells) binned file by file
  (:func:`analysis.distributed.kde_surface`);

each with the single-process path (two threads) and on the cluster
(:func:`geodata.cluster.dask_mapper`), whose answers must be identical. Usage::

    python -m bench.scale --build --rows 100000000 --root /tmp/beatwise_scale
    python -m bench.scale --root /tmp/beatwise_scale
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa

ROOT = Path(__file__).resolve().parent.parent
YEARS = range(2015, 2025)


def _sample_store():
    from geodata import settings
    from geodata.ingest import build_sample_store
    from geodata.store import IncidentStore

    store = IncidentStore(Path(tempfile.mkdtemp(prefix="beatwise_scale_base_")) / "store")
    build_sample_store(store, settings.bundled_samples("chicago"))
    return store


def build(root: Path, n_rows: int, *, seed: int = 0) -> None:
    """Write `n_rows` resampled, jittered incidents over ten years into a store at `root`.

    The rows are generated month by month in Arrow (``take`` of random rows of the bundled
    sample, new ids, times spread over the month, up to 10 m of jitter) and written straight as
    the store's Delta table with :meth:`geodata.table.RecordTable.replace_all` (the store's own
    writer: its monthly partitions, files sorted by beat, one version): no CSV, no ingest, no
    per-row Python.
    """
    from geodata import schema
    from geodata.store import IncidentStore

    sample = _sample_store()
    frame = sample.load_incidents().dropna(subset=[schema.X, schema.Y]).reset_index(drop=True)
    file_schema = sample.table.spec.arrow_schema(sample.timezone)
    base = pa.Table.from_pandas(frame, preserve_index=False).select(file_schema.names)
    base = base.cast(file_schema)
    target = IncidentStore(root)
    # the department recorded as an ingest records it (a store without one is read as the
    # legacy Chicago profile, through the slower path of a profile file)
    target.initialize(
        analysis_crs=sample.analysis_crs,
        timezone=sample.timezone,
        department=sample.department().to_dict(),
    )
    target.write_layer("beats", sample.read_layer("beats"))
    tz = sample.timezone
    rng = np.random.default_rng(seed)
    months = [(y, m) for y in YEARS for m in range(1, 13)]
    per_month = np.full(len(months), n_rows // len(months))
    per_month[: n_rows % len(months)] += 1
    when_type = file_schema.field(schema.OCCURRED_AT).type

    def tables() -> Iterator[pa.Table]:
        next_id = 0
        for (year, month), n in zip(months, per_month, strict=True):
            rows = base.take(rng.integers(0, base.num_rows, n))
            start = pd.Timestamp(year=year, month=month, day=1, tz=tz)
            end = start + pd.offsets.MonthBegin(1)
            span_s = int((end - start).total_seconds())
            micros = start.value // 1000 + rng.integers(0, span_s, n) * 1_000_000
            ids = pa.array(np.arange(next_id, next_id + n)).cast(pa.string())
            next_id += n
            columns = {
                schema.OCCURRED_AT: pa.array(micros, pa.int64()).cast(when_type),
                schema.INCIDENT_ID: ids,
                schema.CASE_NUMBER: ids,
                schema.X: pa.array(rows.column(schema.X).to_numpy() + rng.uniform(-10, 10, n)),
                schema.Y: pa.array(rows.column(schema.Y).to_numpy() + rng.uniform(-10, 10, n)),
            }
            for name, values in columns.items():
                i = rows.schema.get_field_index(name)
                rows = rows.set_column(
                    i, file_schema.field(name), values.cast(file_schema.field(name).type)
                )
            yield rows
            if month == 12:
                print(f"{year}: {next_id:,} rows", file=sys.stderr, flush=True)

    target.table.replace_all(tables(), metadata={"source": {"file": f"synthetic {n_rows:,} rows"}})


def _peak_mb() -> float:
    """Return this process's own peak resident memory in MB (``VmHWM``).

    Not ``ru_maxrss``: a child started by a process keeps its parent's peak in it.
    """
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return float(line.split()[1]) / 1024
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # not Linux


def _case(root: Path, what: str, where: str) -> dict:
    """Run one case in this process; return time, peak memory and a digest of the answer."""
    from analysis.distributed import kde_surface
    from geodata.cluster import dask_mapper, thread_mapper
    from geodata.store import IncidentStore

    store = IncidentStore(root)
    cluster = client = None
    if where == "cluster":
        import distributed

        cluster = distributed.LocalCluster(
            n_workers=2,
            threads_per_worker=1,
            memory_limit="4GB",
            processes=True,
            dashboard_address=None,
        )
        client = distributed.Client(cluster)
        mapper = dask_mapper(client)
    else:
        mapper = thread_mapper(2)
    if what == "count":  # cold: the per-file count cache the writes keep is removed first
        import shutil

        shutil.rmtree(store.table.counts_cache_dir, ignore_errors=True)
    start, cpu = time.perf_counter(), time.process_time()
    digest: dict[str, int | float]
    if what == "count":
        counts = store.count_by(["beat", "offense"], mapper=mapper)
        digest = {"groups": len(counts), "incidents": int(counts["incidents"].sum())}
    else:
        model = kde_surface(store, bandwidth_m=150.0, cell_size_m=50.0, mapper=mapper)
        digest = {"incidents": model.n_incidents_, "density_sum": float(model.density_.sum())}
    seconds = time.perf_counter() - start
    out: dict[str, object] = {
        "what": what,
        "where": where,
        "seconds": round(seconds, 2),
        "client_cpu_s": round(time.process_time() - cpu, 2),
        "client_peak_mb": round(_peak_mb()),
        **digest,
    }
    if client is not None:
        peaks = client.run(_peak_mb)
        out["worker_peak_mb"] = sorted(round(v) for v in peaks.values())
        used = client.run(lambda: sum(resource.getrusage(resource.RUSAGE_SELF)[:2]))
        out["worker_cpu_s"] = sorted(round(v, 1) for v in used.values())  # whole worker lives
        client.close()
        cluster.close()  # type: ignore[union-attr]
    return out


#: Commands timed on the store as a user runs them (fresh process, ``bench.measure``).
COMMANDS: dict[str, list[str]] = {
    "profile --beat 0925 --json": ["profile", "--beat", "0925", "--json"],
    "hotspots --method kde (city-wide)": ["hotspots", "--method", "kde", "--json"],
    "hotspots --method kde (city-wide, cached binning)": ["hotspots", "--method", "kde", "--json"],
}
#: Commands timed cold: the binned counts a former KDE command kept beside the store
#: (``cache/kde``) are removed first; the next case then reads what this one kept.
COLD_KDE = {"hotspots --method kde (city-wide)"}


def _command_case(root: Path, name: str, command: list[str]) -> dict:
    """Run ``python -m analysis COMMAND --store ROOT``; return its time, CPU and peak memory."""
    from bench.measure import run_measured

    if name in COLD_KDE:
        shutil.rmtree(root / "cache" / "kde", ignore_errors=True)
    measured = run_measured(["-m", "analysis", *command, "--store", str(root)], cwd=ROOT)
    out = {
        "what": name,
        "where": "single (command)",
        "seconds": round(measured.seconds, 2),
        "client_cpu_s": round(measured.cpu_seconds, 2),
        "client_peak_mb": round(measured.peak_mb),
    }
    if measured.returncode:
        out["error"] = (measured.stderr.strip().splitlines() or ["killed"])[-1]
    print(out, flush=True)
    return out


def main(argv: list[str] | None = None) -> int:
    """Build the store if asked, run every case in a fresh process and print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--root", type=Path, default=Path("/tmp/beatwise_scale"))
    parser.add_argument("--rows", type=int, default=100_000_000)
    parser.add_argument("--build", action="store_true")
    parser.add_argument("--case", nargs=2, metavar=("WHAT", "WHERE"))
    args = parser.parse_args(argv)
    if args.case:
        print(json.dumps(_case(args.root, *args.case)))
        return 0
    if args.build:
        started = time.perf_counter()
        build(args.root, args.rows)
        print(f"built {args.rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    rows = [_command_case(args.root, name, command) for name, command in COMMANDS.items()]
    for what in ("count", "kde"):
        for where in ("single", "cluster"):
            done = subprocess.run(
                [sys.executable, "-m", "bench.scale", "--root", str(args.root), "--case",
                 what, where],
                cwd=ROOT, capture_output=True, text=True, check=False,
            )  # fmt: skip
            if done.returncode:
                rows.append({"what": what, "where": where, "error": done.stderr[-300:]})
            else:
                rows.append(json.loads(done.stdout.strip().splitlines()[-1]))
            print(rows[-1], flush=True)
    print(f"\nmachine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores")
    store_mb = sum(f.stat().st_size for f in args.root.rglob("*") if f.is_file()) / 1e6
    print(f"store: {store_mb:,.0f} MB on disk; load: {os.getloadavg()}")
    print(
        "| aggregation | where | seconds | CPU s (client; workers) | client peak MB "
        "| worker peaks MB | answer |"
    )
    print("|---|---|---|---|---|---|---|")
    for r in rows:
        answer = {k: v for k, v in r.items() if k in ("groups", "incidents", "density_sum")}
        cpu = f"{r.get('client_cpu_s', '')}" + (
            f"; {r['worker_cpu_s']}" if "worker_cpu_s" in r else ""
        )
        print(
            f"| {r['what']} | {r['where']} | {r.get('seconds', r.get('error'))} | {cpu} | "
            f"{r.get('client_peak_mb', '')} | {r.get('worker_peak_mb', '')} | {answer} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
