"""Benchmark: one large CSV ingested on this machine and on a two-worker Dask ``LocalCluster``.

Both runs start from a fresh copy of the same beats-only (or small) store and ingest the same
file. The single-machine run is ``python -m geodata ingest FILE --store S --json`` in its own
process; the cluster run is a child process that starts a ``LocalCluster`` (two worker
processes, one thread each, 4 GB each), then times :func:`geodata.distributed_ingest.
ingest_files` alone (the cluster's start is reported apart). Reported: wall seconds, CPU
seconds of the client and of each worker during the ingest, and each process's own peak
resident memory (``VmHWM``); the two runs' counts and stored rows must be equal. With
``--calls N --files K`` the same for calls for service: N calls resampled from the bundled
Minneapolis export (:func:`bench.calls.generate`) cut by records into K exports, ingested in one
command on one machine and with :func:`geodata.distributed_ingest.ingest_calls_files`. Usage::

    python -m bench.distributed_ingest --csv /tmp/dask5/chicago-1000000.csv \\
        --base-store /tmp/dask5/base-store --scratch /tmp/dask5/run
    python -m bench.distributed_ingest --calls 1000000 --files 4 --scratch /tmp/dask6/calls
"""

from __future__ import annotations

import argparse
import json
import resource
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from bench.measure import fresh_store, load_average, print_machine, run_checked
from bench.scale import _peak_mb

if TYPE_CHECKING:
    from collections.abc import Callable

    from distributed import Client

R = TypeVar("R")

ROOT = Path(__file__).resolve().parent.parent


def _cpu_s() -> float:
    """Return this process's user + system CPU seconds."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def _stored(store_root: Path) -> dict[str, object]:
    """Return what a store holds: rows and a digest of ids, beats and lines."""
    import hashlib

    from geodata.store import IncidentStore

    frame = IncidentStore(store_root).load_incidents(
        columns=["incident_id", "beat", "source_line", "occurred_at"]
    )
    frame = frame.sort_values("incident_id").reset_index(drop=True)
    text = frame.astype(str).to_csv(index=False).encode()
    return {"stored": len(frame), "digest": hashlib.sha256(text).hexdigest()[:16]}


def _on_cluster(work: Callable[[Client], list[R]]) -> tuple[list[R], dict[str, object]]:
    """Run `work` on a two-worker LocalCluster (4 GB each); return its result and measures.

    The measures: wall seconds of `work`, the cluster's start-up, CPU seconds of this process
    (the client) and of each worker during `work`, and every process's peak memory.
    """
    from geodata.cluster import local_cluster

    started = time.perf_counter()
    with local_cluster(2, memory_limit="4GB") as client:
        startup_s = time.perf_counter() - started
        workers_cpu = client.run(_cpu_s)
        start, cpu = time.perf_counter(), _cpu_s()
        result = work(client)
        seconds = time.perf_counter() - start
        client_cpu = _cpu_s() - cpu
        after = client.run(_cpu_s)
        peaks = client.run(_peak_mb)
    return result, {
        "seconds": round(seconds, 2),
        "cluster_start_s": round(startup_s, 2),
        "client_cpu_s": round(client_cpu, 2),
        "worker_cpu_s": sorted(round(after[w] - workers_cpu[w], 1) for w in after),
        "client_peak_mb": round(_peak_mb()),
        "worker_peak_mb": sorted(round(v) for v in peaks.values()),
    }


def _cluster_case(csv: Path, store_root: Path, part_bytes: int) -> dict[str, object]:
    """Start a LocalCluster, ingest `csv` on it and return the measures (run in a child)."""
    from geodata.distributed_ingest import ingest_files
    from geodata.store import IncidentStore

    store = IncidentStore(store_root)
    reports, measures = _on_cluster(
        lambda client: ingest_files([csv], store, client, part_bytes=part_bytes)
    )
    (report,) = reports
    return {
        **measures,
        "rows_read": report.rows_read,
        "rows_accepted": report.rows_accepted,
        "rows_rejected": report.rows_rejected,
    }


def _stored_calls(store_root: Path) -> dict[str, object]:
    """Return what a store's calls table holds: rows and a digest of ids, beats and times."""
    import hashlib

    from geodata.calls import load_calls
    from geodata.store import IncidentStore

    frame = load_calls(IncidentStore(store_root))
    frame = frame[["call_id", "beat", "received_at", "response_min"]]
    frame = frame.sort_values("call_id").reset_index(drop=True)
    text = frame.astype(str).to_csv(index=False).encode()
    return {"stored": len(frame), "digest": hashlib.sha256(text).hexdigest()[:16]}


def _calls_cluster_case(files: list[Path], store_root: Path) -> dict[str, object]:
    """Start a LocalCluster, ingest the CAD `files` on it; return the measures (in a child)."""
    from geodata.calls import CallMapping
    from geodata.distributed_ingest import ingest_calls_files
    from geodata.store import IncidentStore

    store = IncidentStore(store_root)
    mapping_file = store.department().call_mapping
    assert mapping_file is not None
    mapping = CallMapping.from_file(mapping_file)
    reports, measures = _on_cluster(
        lambda client: ingest_calls_files(files, store, client, mapping=mapping)
    )
    return {
        **measures,
        "rows_accepted": sum(r.rows_accepted for r in reports),
    }


def _cluster_child(
    options: list[str], store: Path, stored: Callable[[Path], dict[str, object]]
) -> dict[str, object]:
    """Run this bench's cluster case in a child process on `store`; print and return its row.

    The child (``--case STORE``) connects a two-worker LocalCluster, so its measured memory is
    the client's alone; `stored` digests what it stored.
    """
    done = subprocess.run(
        [sys.executable, "-m", "bench.distributed_ingest", *options, "--case", str(store)],
        cwd=ROOT, capture_output=True, text=True, check=True,
    )  # fmt: skip
    cluster: dict[str, object] = {"where": "2-worker LocalCluster", "load": load_average()}
    cluster.update(json.loads(done.stdout.strip().splitlines()[-1]))
    cluster.update(stored(store))
    print(cluster, flush=True)
    return cluster


def _calls(args: argparse.Namespace) -> int:
    """Ingest `--calls` resampled CAD calls in `--files` exports, on one machine and a cluster."""
    from bench.calls import _base_store, generate

    files = [args.scratch / f"calls-{args.calls}-{k}.csv" for k in range(args.files)]
    if not all(f.exists() for f in files):  # one resampled export cut in K by its records
        whole = generate(args.scratch / f"calls-{args.calls}.csv", args.calls)
        header, *records = whole.read_text().splitlines(keepends=True)
        step = -(-len(records) // args.files)
        for k, path in enumerate(files):
            path.write_text(header + "".join(records[k * step : (k + 1) * step]))
    base = _base_store(args.scratch)
    print_machine()
    print(f"{args.files} CAD exports of {args.calls // args.files:,} calls each")
    store = fresh_store(base, args.scratch / "single")
    argv = ["-m", "geodata", "ingest", "--kind", "calls", *map(str, files)]
    measured = run_checked([*argv, "--store", str(store), "--json"], cwd=ROOT)
    reports = json.loads(measured.stdout)
    reports = reports if isinstance(reports, list) else [reports]
    single = {
        "where": "single machine",
        "seconds": round(measured.seconds, 2),
        "client_cpu_s": round(measured.cpu_seconds, 2),
        "client_peak_mb": round(measured.peak_mb),
        "rows_accepted": sum(r["rows_accepted"] for r in reports),
        "load": load_average(),
        **_stored_calls(store),
    }
    print(single, flush=True)
    store = fresh_store(base, args.scratch / "cluster")
    options = ["--calls", str(args.calls), "--files", str(args.files)]
    cluster = _cluster_child([*options, "--scratch", str(args.scratch)], store, _stored_calls)
    same = all(single[k] == cluster[k] for k in ("rows_accepted", "stored", "digest"))
    print(f"same calls stored: {same}", flush=True)
    return 0


def main(argv: list[str] | None = None) -> int:
    """Run the single-machine and the cluster ingest of one file; print a Markdown table."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--csv", type=Path)
    parser.add_argument("--base-store", type=Path)
    parser.add_argument("--scratch", type=Path, required=True)
    parser.add_argument("--part-mb", type=int, default=64)
    parser.add_argument("--runs", type=int, default=1)
    parser.add_argument("--calls", type=int, help="CAD calls instead: this many, resampled")
    parser.add_argument("--files", type=int, default=4, help="in this many exports")
    parser.add_argument("--case", type=Path, help=argparse.SUPPRESS)  # the cluster child
    args = parser.parse_args(argv)
    part_bytes = args.part_mb << 20
    if args.calls and args.case:
        files = [args.scratch / f"calls-{args.calls}-{k}.csv" for k in range(args.files)]
        print(json.dumps(_calls_cluster_case(files, args.case)))
        return 0
    if args.calls:
        return _calls(args)
    if args.csv is None or args.base_store is None:
        parser.error("--csv and --base-store are required (or --calls N)")
    if args.case:
        print(json.dumps(_cluster_case(args.csv, args.case, part_bytes)))
        return 0
    print_machine()
    print(f"file: {args.csv} ({args.csv.stat().st_size / 1e6:,.0f} MB); parts of {args.part_mb} MB")
    rows = []
    for run in range(args.runs):
        store = fresh_store(args.base_store, args.scratch / "single")
        measured = run_checked(
            ["-m", "geodata", "ingest", str(args.csv), "--store", str(store), "--json"], cwd=ROOT
        )
        report = json.loads(measured.stdout)
        single = {
            "where": "single machine",
            "seconds": round(measured.seconds, 2),
            "client_cpu_s": round(measured.cpu_seconds, 2),
            "client_peak_mb": round(measured.peak_mb),
            "rows_accepted": report["rows_accepted"],
            "rows_rejected": report["rows_rejected"],
            "load": load_average(),
            **_stored(store),
        }
        print(single, flush=True)
        store = fresh_store(args.base_store, args.scratch / "cluster")
        options = ["--csv", str(args.csv), "--base-store", str(args.base_store)]
        options += ["--scratch", str(args.scratch), "--part-mb", str(args.part_mb)]
        cluster = _cluster_child(options, store, _stored)
        same = all(single[k] == cluster[k] for k in ("rows_accepted", "stored", "digest"))
        print(f"run {run + 1}: same rows stored: {same}", flush=True)
        rows += [single, cluster]
    shutil.rmtree(args.scratch / "single", ignore_errors=True)
    shutil.rmtree(args.scratch / "cluster", ignore_errors=True)
    print("| where | s | CPU s (client; workers) | peak MB (client; workers) | load |")
    print("|---|---|---|---|---|")
    for r in rows:
        workers = f"; {r['worker_cpu_s']}" if "worker_cpu_s" in r else ""
        peaks = f"; {r['worker_peak_mb']}" if "worker_peak_mb" in r else ""
        print(
            f"| {r['where']} | {r['seconds']} | {r['client_cpu_s']}{workers} | "
            f"{r['client_peak_mb']}{peaks} | {r['load']} |"
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
