"""Benchmark: the streaming ingest against the naive pandas/geopandas pipeline, in one run.

The inputs are Chicago-format CSV exports made by resampling the real rows of the bundled
sample (``geodata/samples/chicago``) with new ids and a small jitter (up to about 15 m); they are
written to a scratch folder, never committed. Each pipeline runs in its own process, so its
wall time and peak memory (maximum resident set size) are its own::

    .venv/bin/python -m bench.ingest                         # 1M and 10M rows
    .venv/bin/python -m bench.ingest --sizes 1000000 --repeat 3 --scratch /tmp/ingest-bench
    .venv/bin/python -m bench.ingest --sizes 3000000 --rejected    # every row rejected

With ``--rejected`` every row's date is text no format reads, so every row is rejected: the
memory of an ingest whose report holds millions of rejected rows (the naive pipeline is not
run, and the ingest's exit code 3, nothing imported, is expected).

The naive pipeline is ``pandas.read_csv -> geopandas.points_from_xy -> to_crs -> sjoin ->
to_parquet`` with no validation, rejection or reconciliation.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from bench import measure
from geodata import schema, settings

__all__ = ["generate", "main", "naive_pipeline", "write_resampled"]

_SAMPLES = (
    "incidents_2018-01_dense.csv.gz",
    "incidents_2023-2024_sample_a.csv.gz",
    "incidents_2024_sample_b.csv.gz",
)
_CHUNK = 500_000


def _real_rows() -> pa.Table:
    from geodata.readers import read_table

    tables = []
    for name in _SAMPLES:
        frame, _, _, _ = read_table(settings.bundled_samples("chicago") / name)
        tables.append(pa.Table.from_pandas(frame, preserve_index=False))
    table = pa.concat_tables(tables)
    table = table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))
    located = pc.and_(pc.not_equal(table["Latitude"], ""), pc.not_equal(table["X Coordinate"], ""))
    return table.filter(located)


#: The date of every row with ``--rejected``: no format reads it.
UNREADABLE_DATE = "31/31/2018 25:61"


def generate(path: Path, n_rows: int, *, seed: int = 0, date: str | None = None) -> Path:
    """Write a Chicago-format CSV of `n_rows` resampled real rows with new ids and jitter.

    With `date`, every row's ``Date`` is that text.
    """
    rng = np.random.default_rng(seed)
    real = _real_rows()
    lat = pc.cast(real["Latitude"], pa.float64()).to_numpy()
    lon = pc.cast(real["Longitude"], pa.float64()).to_numpy()
    x = pc.cast(real["X Coordinate"], pa.float64()).to_numpy()
    y = pc.cast(real["Y Coordinate"], pa.float64()).to_numpy()

    def columns_of(chunk: pa.Table, pick: np.ndarray, done: int) -> dict[str, pa.Array]:
        n = len(pick)
        dx, dy = rng.uniform(-10, 10, n), rng.uniform(-10, 10, n)  # metres
        ids = pa.array(np.arange(done, done + n) + 100_000_000).cast(pa.string())
        columns = {name: chunk[name] for name in real.column_names}
        columns["ID"] = ids
        if date is not None:
            columns["Date"] = pa.array([date] * n, pa.string())
        columns["Latitude"] = pc.cast(pa.array(np.round(lat[pick] + dy / 111_000, 9)), pa.string())
        columns["Longitude"] = pc.cast(pa.array(np.round(lon[pick] + dx / 83_000, 9)), pa.string())
        columns["X Coordinate"] = pc.cast(pa.array(np.round(x[pick] + dx * 3.28)), pa.string())
        columns["Y Coordinate"] = pc.cast(pa.array(np.round(y[pick] + dy * 3.28)), pa.string())
        return columns

    return write_resampled(path, real, n_rows, rng, columns_of, chunk_rows=_CHUNK)


def write_resampled(
    path: Path,
    real: pa.Table,
    n_rows: int,
    rng: np.random.Generator,
    columns_of: Callable[[pa.Table, np.ndarray, int], dict[str, pa.Array]],
    *,
    chunk_rows: int,
) -> Path:
    """Write `n_rows` rows drawn from `real` (with replacement) to the CSV `path`; return it.

    Chunk by chunk, `chunk_rows` row numbers are drawn with `rng`, then ``columns_of(chunk,
    pick, done)`` (the drawn rows, their numbers in `real` and the rows written before) returns
    the columns to write (new ids, jitter).
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    options = pa_csv.WriteOptions(quoting_style="needed")
    with pa_csv.CSVWriter(path, real.schema, write_options=options) as writer:
        done = 0
        while done < n_rows:
            n = min(chunk_rows, n_rows - done)
            pick = rng.integers(0, real.num_rows, n)
            writer.write_table(pa.table(columns_of(real.take(pa.array(pick)), pick, done)))
            done += n
    return path


def naive_pipeline(path: Path, out: Path) -> int:
    """Read, place, join and write `path` the naive way; return the rows written."""
    import geopandas as gpd

    from geodata.boundaries import read_beats

    beats = read_beats(settings.bundled_samples("chicago") / "beats.geojson")
    frame = pd.read_csv(path)
    frame = frame.dropna(subset=["Latitude", "Longitude"])
    points = gpd.GeoDataFrame(
        frame,
        geometry=gpd.points_from_xy(frame["Longitude"], frame["Latitude"]),
        crs=schema.WGS84,
    ).to_crs(beats.crs)
    joined = gpd.sjoin(points, beats[[schema.BEAT, "geometry"]], predicate="within", how="left")
    joined.to_parquet(out)
    return len(joined)


def _base_store(folder: Path) -> Path:
    from geodata.department import load_department
    from geodata.ingest import install_boundaries
    from geodata.store import IncidentStore

    store = IncidentStore(folder / "base-store")
    if not store.exists():
        install_boundaries(
            store,
            settings.bundled_samples("chicago") / "beats.geojson",
            districts_path=settings.bundled_samples("chicago") / "districts.geojson",
            department=load_department("chicago"),
        )
    # the beat index is built by a store's first ingest and kept (IncidentStore.beat_index);
    # build it here so that every measured ingest is a later one
    store.beat_index(tolerance_m=store.department().edge_tolerance_m)
    return store.root


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive pipeline")
    parser.add_argument(
        "--rejected", action="store_true", help="every row's date unreadable: all rejected"
    )
    parser.add_argument("--naive", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:  # the child process of the naive run
        print(naive_pipeline(args.naive, args.out))
        return
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="ingest-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    base = _base_store(scratch)
    measure.print_machine()
    print(
        "| rows | `geodata ingest` wall (CPU) | rows/s wall (per CPU s) | peak memory | per row | "
        "naive pipeline wall (CPU) | naive peak | speed-up wall (CPU) | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|")
    for n in args.sizes:
        csv_path = scratch / (f"chicago-rejected-{n}.csv" if args.rejected else f"chicago-{n}.csv")
        if not csv_path.exists():
            generate(csv_path, n, date=UNREADABLE_DATE if args.rejected else None)
        for _ in range(args.repeat):
            store = measure.fresh_store(base, scratch)
            ingest = ["-m", "geodata", "ingest", str(csv_path), "--store", str(store), "--json"]
            run = measure.run_measured(ingest)
            if run.returncode != (3 if args.rejected else 0):  # 3: nothing imported
                msg = f"ingest failed ({run.returncode}): {run.stderr[-2000:]}"
                raise RuntimeError(msg)
            report = json.loads(run.stdout)
            assert report["rows_read"] == n, report
            assert report["rows_read"] == report["rows_accepted"] + report["rows_rejected"]
            assert not args.rejected or report["rows_rejected"] == n, report
            skip = args.no_naive or args.rejected
            naive = measure.naive_measured("bench.ingest", csv_path, scratch, skip=skip)
            measure.print_result([f"{n:,}"], n, run, naive, per_row=True)
        shutil.rmtree(scratch / "store", ignore_errors=True)


if __name__ == "__main__":
    main()
