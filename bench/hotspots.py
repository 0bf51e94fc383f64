"""Benchmark: point-level scikit-learn DBSCAN against ``DBSCANHotspots``, KDE and Gi* at scale.

``python -m bench.hotspots [--sizes 100000 500000 1000000 10000000] [--out FILE.md]``

Every case runs in its own subprocess, so peak memory (``ru_maxrss``, the whole process with its
imports) and time are measured separately; the wall time covers the fit only (data generation and
imports excluded). Peak memory is the process's resident peak *during the fit* (the peak counter
is reset after the data are loaded, so the transient of reading Parquet is excluded; imports
and the data frame itself are included). Data: incidents drawn with replacement from the real
located incidents of the bundled Chicago store (block-level locations, so realistic
duplication), with their real times,
categories, offenses and beats. A second data set jitters every point uniformly within 10 m
(no duplicates at all) to measure the snapped (approximate) path. ARI is computed against
point-level scikit-learn DBSCAN with the same ``eps`` and the same ``min_samples``.
"""

from __future__ import annotations

import argparse
import contextlib
import gc
import json
import platform
import resource
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path("/tmp/beatwise_bench_hotspots")
EPS_M = 150.0


def _base() -> pd.DataFrame:
    from analysis._store import open_store

    columns = ["x", "y", "occurred_at", "category", "offense", "beat"]
    incidents = open_store(None).load_incidents(columns=columns).dropna(subset=["x", "y"])
    for column in ("category", "offense", "beat"):
        incidents[column] = incidents[column].astype(str).astype("category")
    return incidents.reset_index(drop=True)


def _data(n: int, jitter: bool) -> pd.DataFrame:
    path = CACHE / f"{'jitter' if jitter else 'block'}_{n}.parquet"
    if path.exists():
        import pyarrow as pa
        import pyarrow.parquet as pq

        frame = pq.read_table(path).to_pandas(self_destruct=True, split_blocks=True)
        pa.default_memory_pool().release_unused()  # give Arrow's freed read buffers back
        return frame
    base = _base()
    rng = np.random.default_rng(n)
    sample = base.iloc[rng.integers(0, len(base), n)].reset_index(drop=True)
    if jitter:
        sample["x"] = sample["x"] + rng.uniform(-10, 10, n)
        sample["y"] = sample["y"] + rng.uniform(-10, 10, n)
    CACHE.mkdir(parents=True, exist_ok=True)
    sample.to_parquet(path)
    return sample


def _case(kind: str, n: int, jitter: bool) -> dict:
    """Run one case in this process and return its measurements."""
    from analysis.hotspots import DBSCANHotspots, KDEHotspots, scaled_min_samples

    frame = _data(n, jitter)
    gc.collect()
    data_mb = _reset_peak()
    area = 606.1e6  # the bundled beat layer's area (m²)
    min_samples = scaled_min_samples(n, area, EPS_M)
    out: dict = {"kind": kind, "n": n, "jitter": jitter, "min_samples": min_samples}
    start = time.perf_counter()
    if kind == "sklearn":
        from sklearn.cluster import DBSCAN

        labels = (
            DBSCAN(eps=EPS_M, min_samples=min_samples).fit(frame[["x", "y"]].to_numpy()).labels_
        )
        out["seconds"] = time.perf_counter() - start
        np.save(CACHE / f"sk_{n}_{jitter}.npy", labels)
    elif kind == "ours":
        model = DBSCANHotspots(eps_m=EPS_M, area_m2=area).fit(frame)
        out["seconds"] = time.perf_counter() - start
        out.update(
            exact=bool(model.exact_),
            locations=int(model.n_locations_),
            hotspots=int(model.n_hotspots_),
            noise=int(model.n_noise_),
        )
        np.save(CACHE / f"ours_{n}_{jitter}.npy", model.labels_)
    elif kind == "kde":
        model = KDEHotspots(bandwidth_m=150.0, cell_size_m=20.0).fit(frame)
        out["seconds"] = time.perf_counter() - start
        # exactness: 200 random cells with real density, against the brute-force sum
        from sklearn.neighbors import KernelDensity

        rng = np.random.default_rng(0)
        gx, gy = model.grid_.centres()
        dense = np.flatnonzero(model.density_.ravel() > 0.01 * model.density_.max())
        cells = rng.choice(dense, 200, replace=False)
        points = frame[["x", "y"]].to_numpy()
        sub = points[rng.choice(n, min(n, 200_000), replace=False)]
        exact = np.exp(
            KernelDensity(bandwidth=150.0)
            .fit(sub)
            .score_samples(np.column_stack([gx.ravel()[cells], gy.ravel()[cells]]))
        )
        # same sample on the binned path, so only the binning/FFT error is measured
        binned = KDEHotspots(bandwidth_m=150.0, cell_size_m=20.0).fit(
            pd.DataFrame({"x": sub[:, 0], "y": sub[:, 1]}), grid=model.grid_
        )
        approx = binned.density_.ravel()[cells] / 1e6 / len(sub)
        out["max_rel_error"] = float(np.max(np.abs(approx - exact) / exact))
    out["peak_mb"] = _peak_mb()
    out["data_mb"] = data_mb
    return out


def _reset_peak() -> float:
    """Reset the process's peak RSS (Linux clear_refs) and return the current RSS in MB."""
    with contextlib.suppress(OSError):  # not Linux: the peak then includes loading the data
        Path("/proc/self/clear_refs").write_text("5")
    return _status("VmRSS")


def _peak_mb() -> float:
    """Return the peak RSS since the last reset (VmHWM), in MB."""
    value = _status("VmHWM")
    return value if value else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def _status(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return float(line.split()[1]) / 1024
    return 0.0


def _run(kind: str, n: int, jitter: bool) -> dict:
    cmd = [sys.executable, "-m", "bench.hotspots", "--case", kind, str(n), str(int(jitter))]
    done = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True, check=False)
    if done.returncode != 0:
        tail = (done.stderr or "").strip().splitlines()[-1:] or ["killed"]
        return {
            "kind": kind,
            "n": n,
            "jitter": jitter,
            "error": f"exit {done.returncode}: {tail[0]}",
        }
    return json.loads(done.stdout.strip().splitlines()[-1])


def main(argv: list[str] | None = None) -> int:
    """Run the benchmark and write the Markdown report."""
    parser = argparse.ArgumentParser()
    parser.add_argument("--case", nargs=3)
    parser.add_argument(
        "--sizes", nargs="+", type=int, default=[100_000, 500_000, 1_000_000, 10_000_000]
    )
    parser.add_argument("--sklearn-sizes", nargs="+", type=int, default=[100_000, 500_000])
    parser.add_argument("--out", default=str(ROOT / "docs" / "bench" / "hotspots.md"))
    args = parser.parse_args(argv)
    if args.case:
        kind, n, jitter = args.case
        print(json.dumps(_case(kind, int(n), bool(int(jitter)))))
        return 0
    from sklearn.metrics import adjusted_rand_score

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rows = []
    for n in sorted(set(args.sizes) | set(args.sklearn_sizes)):
        _data(n, False)
    for jitter in (False, True):
        sizes = args.sizes if not jitter else args.sklearn_sizes
        for n in sizes:
            ours = _run("ours", n, jitter)
            ref = _run("sklearn", n, jitter) if n in args.sklearn_sizes else None
            if ref and "error" not in ref and "error" not in ours:
                a = np.load(CACHE / f"sk_{n}_{jitter}.npy")
                b = np.load(CACHE / f"ours_{n}_{jitter}.npy")
                ours["ari"] = float(adjusted_rand_score(a, b))
            rows.append((ours, ref))
            print(ours, ref, flush=True)
    kde = [_run("kde", n, False) for n in (1_000_000, 10_000_000) if n in args.sizes]
    for k in kde:
        print(k, flush=True)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    _write(args.out, rows, kde, load_before, load_after)
    return 0


def _fmt(case: dict | None, key: str, spec: str = "{:.2f}") -> str:
    if not case:
        return "not run"
    if "error" in case:
        return f"failed ({case['error']})"
    return spec.format(case[key]) if key in case else ""


def _write(path: str, rows: list, kde: list, before: list, after: list) -> None:
    cpu = platform.processor() or platform.machine()
    lines = [
        "# Hotspots benchmark (`python -m bench.hotspots`)",
        "",
        f"Machine: {cpu}, 2 cores, {platform.python_version()}; "
        f"load average before {' '.join(before)}, after {' '.join(after)} "
        "(4 helpers share 2 cores: times are pessimistic).",
        "",
        "DBSCAN with eps = 150 m and the scaled `min_samples` rule (5x the mean density of the "
        "606 km² of beats; both sides use the same value). Peak memory: resident peak of the "
        "subprocess during the fit (Python + imports + the incident frame + the fit; the "
        "counter is reset after loading the data, `/proc/self/clear_refs`). Times: the fit only, "
        "including the hotspot polygons and summaries (categories, offenses, hours, days, beats).",
        "",
        "| data | N | min_samples | sklearn point-level s | sklearn peak MB | ours s "
        "| ours peak MB "
        "| of which before the fit | exact | distinct locations | hotspots | ARI |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for ours, ref in rows:
        data = "jittered 10 m (no duplicates)" if ours.get("jitter") else "block-level (real)"
        lines.append(
            f"| {data} | {ours['n']:,} | {ours.get('min_samples', '')} | {_fmt(ref, 'seconds')} | "
            f"{_fmt(ref, 'peak_mb', '{:.0f}')} | {_fmt(ours, 'seconds')} | "
            f"{_fmt(ours, 'peak_mb', '{:.0f}')} | {_fmt(ours, 'data_mb', '{:.0f}')} | "
            f"{ours.get('exact', '')} | "
            f"{ours.get('locations', ''):,} | {ours.get('hotspots', '')} | "
            f"{_fmt(ours, 'ari', '{:.4f}') if 'ari' in ours else 'n/a'} |"
        )
    lines += [
        "",
        "KDE (bandwidth 150 m, 20 m cells, linear binning + FFT, padded by 5 bandwidths); error: "
        "200 random cells above 1% of the peak, against scikit-learn `KernelDensity` on a "
        "200,000-point subsample binned on the same grid.",
        "",
        "| N | seconds | peak MB | max relative error |",
        "|---|---|---|---|",
    ]
    for k in kde:
        lines.append(
            f"| {k['n']:,} | {_fmt(k, 'seconds')} | {_fmt(k, 'peak_mb', '{:.0f}')} | "
            f"{_fmt(k, 'max_rel_error', '{:.4%}')} |"
        )
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
