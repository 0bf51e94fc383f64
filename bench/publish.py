"""Benchmark: ``python -m geodata publish`` on a store of 1M incidents (one year).

Builds the bundled sample store in a temporary directory, tiles its 36,212 real incidents (real
blocks, positions, offenses, descriptions, sensitive flags) to ``--rows`` incidents spread over
2024 (new ids, dates drawn uniformly; the mix of safe and sensitive rows is the sample's), writes
them through ``IncidentStore.upsert``, then times :func:`geodata.publish.publish_store` as of
2025-01-08 (7-day delay, 90-day window: about a quarter of the rows are in the window), and
checks the extract's invariants (columns, window, grid points). Usage::

    .venv/bin/python -m bench.publish [--rows 1000000] [--repeat 3]
"""

from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from geodata import schema, settings
from geodata.department import load_department
from geodata.ingest import build_sample_store
from geodata.publish import PUBLIC_COLUMNS, PublishPolicy, publish_store
from geodata.store import IncidentStore


def tile_store(root: Path, n_rows: int, *, seed: int = 0) -> IncidentStore:
    """Return a store at `root` holding `n_rows` incidents tiled from the bundled sample."""
    base = IncidentStore(root.parent / f"{root.name}-sample")
    build_sample_store(base, settings.bundled_samples("chicago"))
    sample = base.load_incidents()
    store = IncidentStore(root)
    store.initialize(
        analysis_crs=base.analysis_crs,
        timezone=base.timezone,
        department=base.meta().get("department"),
    )
    store.write_layers({name: base.read_layer(name) for name in ("beats", "districts", "stations")})
    rng = np.random.default_rng(seed)
    take = rng.integers(0, len(sample), n_rows)
    tiled = sample.iloc[take].reset_index(drop=True)
    start = pd.Timestamp("2024-01-01", tz=load_department("chicago").timezone)
    seconds = rng.integers(0, 366 * 86_400, n_rows)
    tiled[schema.OCCURRED_AT] = start + pd.to_timedelta(seconds, unit="s")
    tiled[schema.INCIDENT_ID] = pd.array([f"B{i}" for i in range(n_rows)], dtype="string")
    store.upsert(tiled)
    return store


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-publish-") as tmp:
        t0 = time.perf_counter()
        store = tile_store(Path(tmp) / "store", args.rows)
        build_s = time.perf_counter() - t0
        print(f"store: {store.count():,} incidents, built in {build_s:.1f} s")
        times = []
        extract = None
        for i in range(args.repeat):
            t0 = time.perf_counter()
            extract = publish_store(
                store, Path(tmp) / f"public{i}", policy=PublishPolicy(), as_of=date(2025, 1, 8)
            )
            times.append(time.perf_counter() - t0)
        assert extract is not None
        public = extract.incidents
        assert tuple(public.columns) == PUBLIC_COLUMNS
        assert public["date"].max() < date(2025, 1, 1)
        assert public["date"].min() >= date(2024, 10, 3)
        assert np.allclose((public[schema.X] / 50 - 0.5) % 1, 0)
        size = sum(p.stat().st_size for p in (Path(tmp) / "public0").iterdir())
        meta = extract.metadata
        print(
            f"publish: in window {meta['rows_in_window']:,}, published {meta['rows_published']:,}"
            f", withheld {meta['rows_withheld']:,}; extract {size / 1e6:.1f} MB"
        )
        first, best, median = times[0], min(times), float(np.median(times))
        print(f"publish_store seconds: first {first:.2f}, best {best:.2f}, median {median:.2f}")
        print(f"machine: {platform.machine()}, {os.cpu_count()} cores; load {os.getloadavg()}")


if __name__ == "__main__":
    main()
