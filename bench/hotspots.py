"""Benchmark: point-level scikit-learn DBSCAN against ``DBSCANHotspots``, KDE and Gi* at scale.

``python -m bench.hotspots [--sizes 100000 500000 1000000 10000000] [--out FILE.md]``
``python -m bench.hotspots --only kde [--sizes 1000000 10000000]`` (only the KDE table)
``python -m bench.hotspots --only methods [--sizes 100000 1000000 10000000]`` (KDE, Gi* and
HDBSCAN on exact geocodes, to ``docs/bench/methods.md``)

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

KDE (``kind == "kde"``): ``KDEHotspots`` with a 150 m bandwidth and the default cell, timed over
``KDE_REPEATS`` fits after a small warm-up fit (the compiled binning kernel's load is reported
apart); its error is measured against the exact KDE of the same points at every cell above 1%
of the exact peak (:func:`kde_error`, :func:`exact_density`).
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
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

if TYPE_CHECKING:  # imported where used: their import time is measured on its own
    from analysis.hotspots import Grid, KDEHotspots

ROOT = Path(__file__).resolve().parent.parent
CACHE = Path("/tmp/beatwise_bench_hotspots")
EPS_M = 150.0
KDE_BANDWIDTH_M = 150.0
KDE_REPEATS = 7  # fits timed per size (the machine is shared: report the median)


def _base() -> pd.DataFrame:
    from analysis.inputs import load_incidents, open_store

    columns = ("x", "y", "occurred_at", "category", "offense", "beat")
    incidents = load_incidents(open_store(None), columns, None).dropna(subset=["x", "y"])
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
    from analysis.hotspots import DBSCANHotspots, scaled_min_samples

    frame = _data(n, jitter)
    gc.collect()
    data_mb = _reset_peak()
    area = 606.1e6  # the bundled beat layer's area (m²)
    min_samples = scaled_min_samples(n, area, EPS_M)
    out: dict = {"kind": kind, "n": n, "jitter": jitter, "min_samples": min_samples}
    cpu = time.process_time()  # CPU seconds of the fit: steadier than wall time under load
    start = time.perf_counter()
    if kind == "sklearn":
        from sklearn.cluster import DBSCAN

        labels = (
            DBSCAN(eps=EPS_M, min_samples=min_samples).fit(frame[["x", "y"]].to_numpy()).labels_
        )
        out["seconds"] = time.perf_counter() - start
        out["cpu_seconds"] = time.process_time() - cpu
        np.save(CACHE / f"sk_{n}_{jitter}.npy", labels)
    elif kind == "ours":
        model = DBSCANHotspots(eps_m=EPS_M, area_m2=area).fit(frame)
        out["seconds"] = time.perf_counter() - start
        out["cpu_seconds"] = time.process_time() - cpu
        out.update(
            exact=bool(model.exact_),
            locations=int(model.n_locations_),
            hotspots=int(model.n_hotspots_),
            noise=int(model.n_noise_),
        )
        np.save(CACHE / f"ours_{n}_{jitter}.npy", model.labels_)
    elif kind == "kde":
        out.update(_kde_case(frame, n, start))
    elif kind in ("gistar", "hdbscan"):
        out.update(_method_case(kind, frame, start))
    out.setdefault("peak_mb", _peak_mb())
    out["data_mb"] = data_mb
    return out


def _kde_case(frame: pd.DataFrame, n: int, start: float) -> dict:
    """Time ``KDEHotspots`` (default cell rule) on `frame` and measure its error honestly."""
    from analysis.hotspots import KDEHotspots

    # the numba binning kernel is compiled once per environment and loaded once per process
    # (a cache on disk): pay that on a tiny fit first, and report it separately
    KDEHotspots(bandwidth_m=KDE_BANDWIDTH_M).fit(frame.iloc[:1000])
    warmup = time.perf_counter() - start
    times = []
    for _ in range(KDE_REPEATS):
        begin = time.perf_counter()
        model = KDEHotspots(bandwidth_m=KDE_BANDWIDTH_M).fit(frame)
        times.append(time.perf_counter() - begin)
    out = {
        "seconds": float(np.median(times)),
        "seconds_min": float(min(times)),
        "seconds_all": times,
        "first_call_overhead": warmup,
        "cell_m": model.cell_size_m_,
        "grid_cells": int(model.density_.size),
        "peak_mb": _peak_mb(),  # of the fits (before the error measurement)
    }
    out.update(kde_error(frame["x"].to_numpy(), frame["y"].to_numpy(), model))
    return out


def _method_case(kind: str, frame: pd.DataFrame, start: float) -> dict:
    """Time one fit of ``GiStarHotspots`` or ``HDBSCANHotspots`` (defaults) on `frame`.

    A 2,000-point fit first loads the compiled kernels (reported apart, as for the KDE).
    """
    from analysis.hotspots import GiStarHotspots, HDBSCANHotspots

    method = {"gistar": GiStarHotspots, "hdbscan": HDBSCANHotspots}[kind]
    method().fit(frame.iloc[:2000])
    warmup = time.perf_counter() - start
    cpu = time.process_time()
    begin = time.perf_counter()
    model = method().fit(frame)
    return {
        "seconds": time.perf_counter() - begin,
        "cpu_seconds": time.process_time() - cpu,
        "first_call_overhead": warmup,
        "hotspots": len(model.hotspots_),
    }


def exact_density(
    ux: np.ndarray, uy: np.ndarray, weight: np.ndarray, grid: Grid, h: float
) -> np.ndarray:
    """Return the exact Gaussian KDE (incidents per km²) at every cell centre of `grid`.

    ``sum_i w_i exp(-((gx - x_i)² + (gy - y_i)²) / 2h²) / (2 pi h²)``, with no truncation and no
    binning: the Gaussian is separable, so on a grid of cell centres the sum over the locations
    is the matrix product ``Ey @ diag(w) @ Ex.T`` (Ey: rows x locations, Ex: columns x
    locations), computed in float64 over blocks of locations.
    """
    ys = grid.y0 + (np.arange(grid.n_rows) + 0.5) * grid.cell_size_m
    xs = grid.x0 + (np.arange(grid.n_cols) + 0.5) * grid.cell_size_m
    out = np.zeros((grid.n_rows, grid.n_cols))
    for i in range(0, len(ux), 4096):
        ey = np.exp(-0.5 * ((ys[:, None] - uy[None, i : i + 4096]) / h) ** 2)
        ex = np.exp(-0.5 * ((xs[:, None] - ux[None, i : i + 4096]) / h) ** 2)
        out += (ey * weight[None, i : i + 4096]) @ ex.T
    return out / (2 * np.pi * h * h) * 1e6


def kde_error(x: np.ndarray, y: np.ndarray, model: KDEHotspots, *, seed: int = 0) -> dict:
    """Return the relative error of the binned `model` against the exact estimate of x, y.

    The exact estimate is the sum of Gaussians over the *same* points that were binned, at the
    centre of every cell of the grid (:func:`exact_density`); the error is taken over every
    cell whose exact density is above 1% of the exact peak. Points at the same location are
    summed once with their multiplicity (the same sum: bit-for-bit equal coordinates); if more
    than 300,000 locations are distinct, a random subsample of 200,000 points is binned on the
    same grid and both sides use that subsample. 300 random cells are cross-checked against
    scikit-learn's ``KernelDensity``.
    """
    from sklearn.neighbors import KernelDensity

    from analysis.hotspots import KDEHotspots, unique_locations

    rng = np.random.default_rng(seed)
    h = model.bandwidth_m_
    ux, uy, weight, _ = unique_locations(x, y)
    binned = model.density_
    basis = f"all {len(x):,} points ({len(ux):,} distinct locations)"
    if len(ux) > 300_000:
        pick = rng.choice(len(x), 200_000, replace=False)
        sub = pd.DataFrame({"x": x[pick], "y": y[pick]})
        binned = KDEHotspots(bandwidth_m=h).fit(sub, grid=model.grid_).density_
        ux, uy, weight, _ = unique_locations(x[pick], y[pick])
        basis = "a 200,000-point subsample (binned on the same grid)"
    begin = time.perf_counter()
    exact = exact_density(ux, uy, weight.astype(np.float64), model.grid_, h).ravel()
    exact_seconds = time.perf_counter() - begin
    dense = np.flatnonzero(exact > 0.01 * exact.max())
    rel = np.abs(binned.ravel()[dense].astype(np.float64) - exact[dense]) / exact[dense]
    check = rng.choice(dense, min(300, len(dense)), replace=False)
    gx, gy = model.grid_.centres()
    reference = (
        np.exp(
            KernelDensity(bandwidth=h)
            .fit(np.column_stack([ux, uy]), sample_weight=weight)
            .score_samples(np.column_stack([gx.ravel()[check], gy.ravel()[check]]))
        )
        * weight.sum()
        * 1e6
    )
    return {
        "error_basis": basis,
        "dense_cells": len(dense),
        "max_rel_error": float(rel.max()),
        "p99_rel_error": float(np.percentile(rel, 99)),
        "median_rel_error": float(np.median(rel)),
        "sklearn_check": float(np.max(np.abs(reference - exact[check]) / exact[check])),
        "exact_seconds": exact_seconds,
    }


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


def _run(kind: str, n: int, jitter: bool, timeout: float | None = None) -> dict:
    cmd = [sys.executable, "-m", "bench.hotspots", "--case", kind, str(n), str(int(jitter))]
    try:
        done = subprocess.run(
            cmd, cwd=ROOT, capture_output=True, text=True, check=False, timeout=timeout
        )
    except subprocess.TimeoutExpired:
        return {"kind": kind, "n": n, "jitter": jitter, "error": f"not done in {timeout:.0f} s"}
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
    parser.add_argument(
        "--only",
        choices=["kde", "methods"],
        help="kde: run only the KDE part and rewrite only its table in --out (the rest is "
        "kept); methods: KDE, Gi* and HDBSCAN on exact geocodes, written to --methods-out",
    )
    parser.add_argument("--methods-out", default=str(ROOT / "docs" / "bench" / "methods.md"))
    parser.add_argument(
        "--timeout", type=float, default=600.0, help="seconds a --only methods case may take"
    )
    args = parser.parse_args(argv)
    if args.case:
        kind, n, jitter = args.case
        print(json.dumps(_case(kind, int(n), bool(int(jitter)))))
        return 0
    if args.only == "kde":
        return _main_kde(args)
    if args.only == "methods":
        return _main_methods(args)
    from sklearn.metrics import adjusted_rand_score

    load_before = Path("/proc/loadavg").read_text().split()[:3]
    rows = []
    for n in sorted(set(args.sizes) | set(args.sklearn_sizes)):
        _data(n, False)
    for jitter in (False, True):
        for n in args.sizes:
            ours = _run("ours", n, jitter)
            ref = _run("sklearn", n, jitter) if n in args.sklearn_sizes else None
            if ref and "error" not in ref and "error" not in ours:
                a = np.load(CACHE / f"sk_{n}_{jitter}.npy")
                b = np.load(CACHE / f"ours_{n}_{jitter}.npy")
                ours["ari"] = float(adjusted_rand_score(a, b))
            rows.append((ours, ref))
            print(ours, ref, flush=True)
    kde = [_run("kde", n, False) for n in args.sizes if n >= 1_000_000]
    for k in kde:
        print(k, flush=True)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    _write(args.out, rows, kde, load_before, load_after)
    return 0


KDE_HEADING = "## KDE"


def _kde_lines(
    kde: list, before: list, after: list, command: str = "python -m bench.hotspots --only kde"
) -> list[str]:
    """Return the Markdown of the KDE section (`command`: how it was run)."""
    cpu = platform.processor() or platform.machine()
    lines = [
        KDE_HEADING,
        "",
        f"`{command}`. Machine: {cpu}, 2 cores, Python "
        f"{platform.python_version()}; load average before {' '.join(before)}, after "
        f"{' '.join(after)}.",
        "",
        f"`KDEHotspots(bandwidth_m={KDE_BANDWIDTH_M:g})` with the default cell rule (bandwidth / "
        "10) on block-level data drawn from the real incidents: one-pass linear binning "
        "(numba) with the binning-variance correction, single-precision FFTs pruned to the "
        "kernel's band, grid = the points' bounds padded by 5 bandwidths. Seconds: median "
        f"of {KDE_REPEATS} fits in one process (the whole `fit`, hotspot polygons included; "
        "min-max in brackets), after a 1,000-point "
        "warm-up fit that loads the compiled binning kernel (its cost, the numba import "
        "included, in the last column). Error: binned density against the exact sum of "
        "Gaussians of the same points (distinct locations x multiplicity, no truncation, no "
        "binning; a separable matrix product) at the centre of every cell whose exact density "
        "is above 1% of the exact peak; the exact sums agree with scikit-learn "
        "`KernelDensity` (sample_weight) to the value in the sklearn column on 300 of those "
        "cells.",
        "",
        "| N | cell m | grid cells | seconds | peak MB | max rel. error | 99th pct "
        "| median | cells above 1% | error on | sklearn check | warm-up s |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for k in kde:
        if "error" in k:
            lines.append(f"| {k['n']:,} | failed ({k['error']}) |" + " |" * 10)
            continue
        lines.append(
            f"| {k['n']:,} | {k['cell_m']:g} | {k['grid_cells']:,} | {k['seconds']:.3f} "
            f"({k['seconds_min']:.3f}-{max(k['seconds_all']):.3f}) | {k['peak_mb']:.0f} | "
            f"{k['max_rel_error']:.3%} | "
            f"{k['p99_rel_error']:.3%} | {k['median_rel_error']:.3%} | {k['dense_cells']:,} | "
            f"{k['error_basis']} | {k['sklearn_check']:.1e} | {k['first_call_overhead']:.2f} |"
        )
    return lines


def _main_kde(args: argparse.Namespace) -> int:
    """Run only the KDE cases and replace the KDE section of ``args.out``."""
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    sizes = [n for n in args.sizes if n >= 1_000_000] or args.sizes
    kde = []
    for n in sizes:
        _data(n, False)
        kde.append(_run("kde", n, False))
        print(kde[-1], flush=True)
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    section = "\n".join(_kde_lines(kde, load_before, load_after)) + "\n"
    path = Path(args.out)
    text = path.read_text(encoding="utf-8") if path.exists() else ""
    for marker in ("\n" + KDE_HEADING + "\n", "\nKDE (bandwidth"):  # (older reports)
        if marker in text:
            text = text[: text.index(marker) + 1]
            break
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text + section if text else section, encoding="utf-8")
    return 0


METHODS = ("kde", "gistar", "hdbscan")


def _main_methods(args: argparse.Namespace) -> int:
    """Time KDE, Gi* and HDBSCAN (their defaults) on exact geocodes; write ``--methods-out``.

    Each method at each of ``--sizes``, smallest first; a method stops growing after a case
    that fails or takes longer than ``--timeout``.
    """
    load_before = Path("/proc/loadavg").read_text().split()[:3]
    cases = []
    for kind in METHODS:
        for n in sorted(args.sizes):
            _data(n, True)
            cases.append(_run(kind, n, True, timeout=args.timeout))
            print(cases[-1], flush=True)
            if "error" in cases[-1]:
                break
    load_after = Path("/proc/loadavg").read_text().split()[:3]
    cpu = platform.processor() or platform.machine()
    names = {
        "kde": f"KDE ({KDE_BANDWIDTH_M:g} m bandwidth)",
        "gistar": "Gi* (150 m cells)",
        "hdbscan": "HDBSCAN",
    }
    lines = [
        "# Hotspot methods on exact geocodes (`python -m bench.hotspots --only methods`)",
        "",
        f"Machine: {cpu}, 2 cores, Python {platform.python_version()}; load average before "
        f"{' '.join(load_before)}, after {' '.join(load_after)}. Data: the real Chicago "
        "incidents resampled and jittered within 10 m (no two at the same place, as a "
        "department's own geocodes). Each case in its own process: seconds of one fit with the "
        "method's defaults (KDE: median of its repeated fits), after a small warm-up fit that "
        "loads the compiled kernels (its time apart); peak: resident memory during the fit, "
        f"data and imports included; a case stops after {args.timeout:.0f} s.",
        "",
        "| method | N | seconds | CPU s | peak MB | of which data and imports | hotspots "
        "| warm-up s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for case in cases:
        if "error" in case:
            lines.append(f"| {names[case['kind']]} | {case['n']:,} | {case['error']} |||||| ")
            continue
        lines.append(
            f"| {names[case['kind']]} | {case['n']:,} | {case['seconds']:.2f} | "
            f"{_fmt(case, 'cpu_seconds')} | {case['peak_mb']:.0f} | {case['data_mb']:.0f} | "
            f"{case.get('hotspots', '')} | {_fmt(case, 'first_call_overhead')} |"
        )
    path = Path(args.methods_out)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
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
        f"load average before {' '.join(before)}, after {' '.join(after)}.",
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
    lines += ["", *_kde_lines(kde, before, after, "python -m bench.hotspots")]
    Path(path).parent.mkdir(parents=True, exist_ok=True)
    Path(path).write_text("\n".join(lines) + "\n", encoding="utf-8")


if __name__ == "__main__":
    sys.exit(main())
