"""Benchmark: BeatIndex.lookup against geopandas.sjoin on the same points, in one run.

Points are synthesised uniformly inside the real Chicago beats (bundled data), so every point
has a beat. Usage::

    .venv/bin/python -m bench.join                # 1M and 10M points
    .venv/bin/python -m bench.join --sizes 1000000
"""

from __future__ import annotations

import argparse
import gc
import platform
import time
import tracemalloc

import geopandas as gpd
import numpy as np
import shapely

from geodata import schema, settings
from geodata.boundaries import read_beats
from geodata.join import BeatIndex


def synth_points(beats: gpd.GeoDataFrame, n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Return `n` points uniformly inside the union of `beats`."""
    rng = np.random.default_rng(seed)
    union = shapely.union_all(beats.geometry.to_numpy())
    shapely.prepare(union)
    xmin, ymin, xmax, ymax = union.bounds
    xs, ys, have = [], [], 0
    while have < n:
        x = rng.uniform(xmin, xmax, 2 * (n - have) + 1000)
        y = rng.uniform(ymin, ymax, 2 * (n - have) + 1000)
        keep = shapely.contains_xy(union, x, y)
        xs.append(x[keep])
        ys.append(y[keep])
        have += int(keep.sum())
    return np.concatenate(xs)[:n], np.concatenate(ys)[:n]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000])
    parser.add_argument("--repeat", type=int, default=3)
    args = parser.parse_args()
    beats = read_beats(settings.bundled_samples("chicago") / "beats.geojson")
    t0 = time.perf_counter()
    index = BeatIndex(beats)
    build_s = time.perf_counter() - t0
    print(f"machine: {platform.processor() or platform.machine()}, {platform.python_version()}")
    print(
        f"index build: {build_s:.2f} s, grid {index.grid.shape}, {index.nbytes / 1e6:.0f} MB, "
        f"boundary cells {index.boundary_cell_share:.1%}"
    )
    print(
        "| points | BeatIndex.lookup (best of runs) | extra memory | exact tests | "
        "sjoin (points built + join) | speed-up vs sjoin join | identical to sjoin |"
    )
    print("|---|---|---|---|---|---|---|")
    for n in args.sizes:
        x, y = synth_points(beats, n)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            result = index.lookup(x, y)
            times.append(time.perf_counter() - t0)
        tracemalloc.start()
        index.lookup(x, y)
        _, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        t0 = time.perf_counter()
        points = gpd.GeoDataFrame(geometry=gpd.points_from_xy(x, y), crs=beats.crs)
        build_points_s = time.perf_counter() - t0
        t0 = time.perf_counter()
        joined = gpd.sjoin(points, beats[[schema.BEAT, "geometry"]], predicate="within", how="left")
        sjoin_s = time.perf_counter() - t0
        joined = joined[~joined.index.duplicated()]
        expected = joined[schema.BEAT].fillna("outside").to_numpy()
        ours = np.where(result.beat_index >= 0, index.beat_ids[result.beat_index], "outside")
        away = result.status != 1  # not decided by the edge rule
        identical = (ours[away] == expected[away]).mean()
        print(
            f"| {n:,} | {min(times):.3f} s (runs: {', '.join(f'{t:.3f}' for t in times)}) "
            f"| {peak / 1e6:.0f} MB | {result.n_exact:,} ({result.n_exact / n:.2%}) "
            f"| {build_points_s:.1f} + {sjoin_s:.1f} s | {sjoin_s / min(times):.0f}x "
            f"| {identical:.6f} of {away.sum():,} non-edge points |"
        )
        del points, joined
        gc.collect()


if __name__ == "__main__":
    main()
