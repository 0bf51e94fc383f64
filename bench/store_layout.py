"""Benchmark: the store's file layout, A/B, on the same incidents under the same machine load.

Reads a store built by ``python -m bench.store --keep DIR`` and rewrites its incidents in
main's former layout (time-sorted, one row group per month) and area-sorted with several row
group sizes, then runs every case once per round, rounds interleaved, so that load from other
processes hits every layout alike: ten years of 8 analysis columns, beat + time, one beat's
incidents, and a count by beat x offense from dictionary codes. Usage::

    .venv/bin/python -m bench.store --rows 10000000 --keep /tmp/bs
    .venv/bin/python -m bench.store_layout --store /tmp/bs/big [--rounds 5]
"""

from __future__ import annotations

import argparse
import statistics
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from geodata import schema
from geodata.store import INCIDENTS, IncidentStore
from geodata.table import _bincount

ANALYSIS_COLUMNS = [schema.OCCURRED_AT, schema.BEAT, schema.SECTOR, schema.DISTRICT,
                    schema.CATEGORY, schema.OFFENSE, schema.X, schema.Y]  # fmt: skip
#: Layout name -> row group size (None: main's former layout, time-sorted, one group a month).
LAYOUTS = {"time-sorted (main before)": None, "area 8k": 8192, "area 16k": 16384,
           "area 32k": 32768}  # fmt: skip


def write_layouts(store: IncidentStore, out: Path) -> dict[str, list[Path]]:
    """Rewrite the store's current files once per layout under `out`; return the file lists."""
    file_schema = INCIDENTS.arrow_schema(store.timezone)
    paths: dict[str, list[Path]] = {name: [] for name in LAYOUTS}
    for f in store.table.files():
        table = pq.read_table(f.path, schema=file_schema)
        area = table.sort_by([(c, "ascending") for c in (*INCIDENTS.sort_columns,
                                                          schema.INCIDENT_ID)])  # fmt: skip
        for k, (name, rows) in enumerate(LAYOUTS.items()):
            path = out / f"layout{k}" / f"year={f.year}" / f"month={f.month}" / "data.parquet"
            path.parent.mkdir(parents=True, exist_ok=True)
            if rows is None:
                keys = [(schema.OCCURRED_AT, "ascending"), (schema.INCIDENT_ID, "ascending")]
                pq.write_table(table.sort_by(keys), path, compression="zstd")
            else:
                pq.write_table(area, path, compression="zstd", row_group_size=rows)
            paths[name].append(path)
    return paths


def _mapper(arrow_type: pa.DataType) -> object:
    return pd.StringDtype("pyarrow") if pa.types.is_string(arrow_type) else None


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--store", required=True, help="a store built by bench.store --keep")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--beat", default="0925")
    args = parser.parse_args()
    store = IncidentStore(args.store)
    file_schema = INCIDENTS.arrow_schema(store.timezone)
    paths = write_layouts(store, Path(args.store).parent / "layouts")

    def load(files: list[Path], columns: list[str], where: ds.Expression | None = None) -> None:
        dataset = ds.dataset([str(p) for p in files], format="parquet", schema=file_schema)
        dataset.to_table(columns=columns, filter=where).to_pandas(
            self_destruct=True, coerce_temporal_nanoseconds=True, types_mapper=_mapper
        )

    def count(files: list[Path]) -> None:
        keys = [schema.BEAT, schema.OFFENSE]
        for path in files:
            _bincount(pq.read_table(path, columns=keys, read_dictionary=keys), keys, None, 0, 0)

    one_beat = ds.field(schema.BEAT) == args.beat
    cases: dict[str, Callable[[], object]] = {}
    for name, files in paths.items():
        cases[f"{name}: 8 analysis columns"] = partial(load, files, ANALYSIS_COLUMNS)
        cases[f"{name}: beat + time"] = partial(load, files, [schema.BEAT, schema.OCCURRED_AT])
        cases[f"{name}: one beat, 8 columns"] = partial(load, files, ANALYSIS_COLUMNS, one_beat)
        cases[f"{name}: count beat x offense"] = partial(count, files)
    times: dict[str, list[float]] = {name: [] for name in cases}
    for _ in range(args.rounds):
        for name, fn in cases.items():
            t0 = time.perf_counter()
            fn()
            times[name].append(time.perf_counter() - t0)
    for name, files in paths.items():
        print(f"{name}: {sum(p.stat().st_size for p in files) / 1e6:.0f} MB")
    print("| case | best s | median s | runs |\n|---|---|---|---|")
    for name, runs in times.items():
        print(f"| {name} | {min(runs):.3f} | {statistics.median(runs):.3f} | "
              f"{', '.join(f'{t:.2f}' for t in runs)} |")  # fmt: skip


if __name__ == "__main__":
    main()
