"""Benchmark: ``geodata ingest --kind calls`` on the bundled Minneapolis CAD export and at 1M calls.

The large input is made by resampling the real rows of the bundled export
(``geodata/samples/minneapolis``) with new call ids, every time of a call moved by the same
whole number of days (0-364, so the calls fill a year of monthly partitions) and up to about
10 m of jitter on located calls (redacted ones stay redacted); it is written to a scratch folder,
never committed. Each ingest runs in its own process into a fresh copy of a store holding only
the Minneapolis sectors, so its wall time, CPU time and peak memory are its own
(:func:`bench.measure.run_measured`). The naive pipeline of the incident bench, done to calls
(``pandas.read_csv -> to_numeric -> points_from_xy -> to_crs -> sjoin -> to_parquet``: no dates,
no validation, redacted calls dropped), runs in the same way on each file (``--no-naive`` skips
it)::

    .venv/bin/python -m bench.calls                           # bundled file and 1M calls
    .venv/bin/python -m bench.calls --sizes 100000 1000000 --repeat 3 --scratch /tmp/calls-bench
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv

from bench import measure
from bench.ingest import write_resampled

__all__ = ["BUNDLED", "generate", "ingest_measured", "main", "naive_pipeline"]

_MINNEAPOLIS = Path(__file__).resolve().parents[1] / "geodata" / "samples" / "minneapolis"
#: The bundled CAD export (14,199 calls, 21 June - 13 July 2020).
BUNDLED = _MINNEAPOLIS / "mpd_cad_2020-06-21_to_2020-07-13.csv.gz"
_TIMES = (
    "Response_Date",
    "Time_PhonePickUp",
    "Time_CallEnteredQueue",
    "Time_CallTakingComplete",
    "Time_CallClosed",
    "Time_First_Unit_Assigned",
    "Time_First_Unit_Enroute",
    "Time_First_Unit_Arrived",
    "TimeFirstCallCleared",
)
_FORMAT = "%Y-%m-%d %H:%M:%S"
_CHUNK = 250_000


def _real_rows() -> pa.Table:
    table = pa_csv.read_csv(
        BUNDLED,
        convert_options=pa_csv.ConvertOptions(
            strings_can_be_null=False, quoted_strings_can_be_null=False
        ),
    )
    return table.cast(pa.schema([pa.field(n, pa.string()) for n in table.column_names]))


def _shifted(times: pa.Array, days: np.ndarray) -> pa.Array:
    """Return `times` (text, ``""`` = none) moved by `days`, as text in the same format."""
    parsed = pc.strptime(times, format=_FORMAT, unit="s", error_is_null=True)
    seconds = pc.fill_null(pc.cast(parsed, pa.int64()), 0).to_numpy(zero_copy_only=False)
    missing = ~parsed.is_valid().to_numpy(zero_copy_only=False)
    moved = pa.array(seconds + days * 86_400, type=pa.int64(), mask=missing)
    text = pc.strftime(pc.cast(moved, pa.timestamp("s")), format=_FORMAT)
    return pc.fill_null(text, "")


def generate(path: Path, n_rows: int, *, seed: int = 0) -> Path:
    """Write a Minneapolis-format CSV of `n_rows` resampled real calls (see the module)."""
    rng = np.random.default_rng(seed)
    real = _real_rows()
    names = real.column_names
    number = r"^-?\d+(\.\d*)?$"
    located = pc.and_(
        pc.match_substring_regex(real["Longitude"], number),
        pc.match_substring_regex(real["Latitude"], number),
    ).to_numpy(zero_copy_only=False)
    lon_f, lat_f = (
        pc.cast(pc.if_else(pa.array(located), real[c], "0"), pa.float64()).to_numpy()
        for c in ("Longitude", "Latitude")
    )

    def columns_of(chunk: pa.Table, pick: np.ndarray, done: int) -> dict[str, pa.Array]:
        n = len(pick)
        days = rng.integers(0, 365, n)
        columns = {name: chunk[name].combine_chunks() for name in names}
        columns["Master_Incident_Number"] = pc.cast(
            pa.array(np.arange(done, done + n) + 10_000_000), pa.string()
        )
        for name in _TIMES:
            columns[name] = _shifted(columns[name], days)
        here = located[pick]
        dx, dy = rng.uniform(-10, 10, n), rng.uniform(-10, 10, n)  # metres
        new_lon = pc.cast(pa.array(np.round(lon_f[pick] + dx / 78_000, 6)), pa.string())
        new_lat = pc.cast(pa.array(np.round(lat_f[pick] + dy / 111_000, 6)), pa.string())
        columns["Longitude"] = pc.if_else(pa.array(here), new_lon, columns["Longitude"])
        columns["Latitude"] = pc.if_else(pa.array(here), new_lat, columns["Latitude"])
        return columns

    return write_resampled(path, real, n_rows, rng, columns_of, chunk_rows=_CHUNK)


def _base_store(folder: Path) -> Path:
    from geodata.department import load_department
    from geodata.ingest import install_boundaries
    from geodata.store import IncidentStore

    store = IncidentStore(folder / "base-store")
    if not store.exists():
        install_boundaries(
            store,
            _MINNEAPOLIS / "sectors_from_calls.geojson",
            department=load_department("minneapolis"),
        )
    # the beat index is built by a store's first ingest and kept (IncidentStore.beat_index);
    # build it here so that every measured ingest is a later one, as in bench.ingest
    store.beat_index()
    return store.root


def ingest_measured(path: Path, store: Path) -> tuple[measure.Measured, dict[str, object]]:
    """Run ``python -m geodata ingest --kind calls PATH --store STORE --json``; return its report.

    Raises
    ------
    RuntimeError
        If the command fails.
    """
    argv = ["-m", "geodata", "ingest", "--kind", "calls", str(path), "--store", str(store)]
    measured = measure.run_checked([*argv, "--json"])
    return measured, json.loads(measured.stdout)


def naive_pipeline(path: Path, out: Path) -> int:
    """Read, place, join and write the calls of `path` the naive way; return the rows written."""
    import geopandas as gpd
    import pandas as pd

    from geodata import schema
    from geodata.boundaries import read_beats

    sectors = read_beats(_MINNEAPOLIS / "sectors_from_calls.geojson")
    sectors = sectors.to_crs(sectors.estimate_utm_crs())
    frame = pd.read_csv(path)
    lon = pd.to_numeric(frame["Longitude"], errors="coerce")
    lat = pd.to_numeric(frame["Latitude"], errors="coerce")
    located = lon.notna() & lat.notna()
    frame = frame[located]
    points = gpd.GeoDataFrame(
        frame, geometry=gpd.points_from_xy(lon[located], lat[located]), crs=schema.WGS84
    ).to_crs(sectors.crs)
    joined = gpd.sjoin(points, sectors[[schema.BEAT, "geometry"]], predicate="within", how="left")
    joined.to_parquet(out)
    return len(joined)


def main() -> None:
    """Run the benchmark and print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="*", default=[1_000_000])
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--scratch", type=Path, default=None)
    parser.add_argument("--no-naive", action="store_true", help="skip the naive pipeline")
    parser.add_argument("--naive", type=Path, help=argparse.SUPPRESS)  # the naive child run
    parser.add_argument("--out", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.naive:
        print(naive_pipeline(args.naive, args.out))
        return
    scratch = args.scratch or Path(tempfile.mkdtemp(prefix="calls-bench-"))
    scratch.mkdir(parents=True, exist_ok=True)
    base = _base_store(scratch)
    files = [BUNDLED]
    for n in args.sizes:
        csv_path = scratch / f"minneapolis-calls-{n}.csv"
        if not csv_path.exists():
            generate(csv_path, n)
        files.append(csv_path)
    measure.print_machine()
    print(
        "| file | calls read | accepted | wall (CPU) | calls/s wall (CPU) | peak memory "
        "| naive pipeline wall (CPU) | naive peak | speed-up wall (CPU) | load |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|")
    for path in files:
        for _ in range(args.repeat):
            store = measure.fresh_store(base, scratch)
            measured, report = ingest_measured(path, store)
            rows = int(report["rows_read"])  # type: ignore[call-overload]
            assert rows == int(report["rows_accepted"]) + int(report["rows_rejected"])  # type: ignore[call-overload]
            naive = measure.naive_measured("bench.calls", path, scratch, skip=args.no_naive)
            cells = [path.name, f"{rows:,}", f"{report['rows_accepted']:,}"]
            measure.print_result(cells, rows, measured, naive)
    shutil.rmtree(scratch / "store", ignore_errors=True)


if __name__ == "__main__":
    main()
