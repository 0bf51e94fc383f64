"""Benchmark: the store's Parquet encodings against Parquet's defaults, on the same rows.

Copies a store built by ``python -m bench.store --keep DIR`` to ``DIR-defaults`` and rewrites
each incident data file there with Parquet's default encodings (a dictionary for every column),
keeping its rows and row groups, then times the same reads on both in one process, rounds
interleaved (best wall time and best CPU time of each). Usage::

    .venv/bin/python -m bench.store --rows 10000000 --keep /tmp/store_bss
    .venv/bin/python -m bench.store_encodings --keep /tmp/store_bss --rounds 5
"""

from __future__ import annotations

import argparse
import shutil
import time
from collections.abc import Callable
from pathlib import Path

import pyarrow.parquet as pq

from bench.store import ANALYSIS_COLUMNS, page_reads, read_cases
from geodata.store import IncidentStore
from geodata.table import ROW_GROUP_ROWS


def defaults_copy(root: Path) -> Path:
    """Return a copy of the store at `root` whose data files use Parquet's default encodings."""
    copy = root.with_name(root.name + "-defaults")
    if not (copy / "big" / "meta.json").exists():
        shutil.rmtree(copy, ignore_errors=True)
        shutil.copytree(root, copy)
        shutil.rmtree(copy / "big" / "cache", ignore_errors=True)
        for path in sorted((copy / "big" / "tables" / "incidents").rglob("*.parquet")):
            table = pq.read_table(path)
            pq.write_table(table, path, compression="zstd", row_group_size=ROW_GROUP_ROWS)
    return copy


#: The reads of :func:`bench.store.read_cases` compared (the whole-store reads a page could make).
COMPARED = (
    f"analysis columns ({len(ANALYSIS_COLUMNS)})",
    "beat + time only",
    "time + x + y (hotspots, KDE)",
    "one year (2024), analysis columns",
    "one beat (0925), analysis columns",
)


def reads(root: Path) -> dict[str, Callable[[], object]]:
    """Return the timed reads of the store at `root` (the big store and its base)."""
    store = IncidentStore(root / "big")
    cases = {name: read for name, read in read_cases(store).items() if name in COMPARED}
    cases.update(page_reads(store, IncidentStore(root / "base")))
    return cases


def size_mb(root: Path) -> float:
    """Return the size of the incident data files under `root`, in MB."""
    files = (root / "big" / "tables" / "incidents").rglob("*.parquet")
    return sum(f.stat().st_size for f in files) / 1e6


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--keep", required=True, help="the store folder of bench.store --keep")
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    ours = Path(args.keep)
    defaults = defaults_copy(ours)
    print(f"MB on disk: Parquet defaults {size_mb(defaults):.0f}, ours {size_mb(ours):.0f}")
    cases = {"defaults": reads(defaults), "ours": reads(ours)}
    runs: dict[tuple[str, str], list[tuple[float, float]]] = {}
    for _ in range(args.rounds):
        for tag, named in cases.items():
            for name, read in named.items():
                t0, c0 = time.perf_counter(), time.process_time()
                read()
                runs.setdefault((name, tag), []).append(
                    (time.perf_counter() - t0, time.process_time() - c0)
                )
    print("| read | Parquet defaults: best wall s (best CPU s) | ours: best wall s (best CPU s) |")
    print("|---|---|---|")
    for name in cases["ours"]:
        cells = [
            f"{min(w for w, _ in runs[(name, tag)]):.3f} "
            f"({min(c for _, c in runs[(name, tag)]):.3f})"
            for tag in cases
        ]
        print(f"| {name} | {' | '.join(cells)} |")


if __name__ == "__main__":
    main()
