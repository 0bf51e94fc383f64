"""Benchmark: every command and page at 10M incidents (issue 17, item 6).

Builds (or reuses, ``--data DIR``) a store of ``--rows`` incidents over ten years at
``DIR/store``: real rows of the bundled Chicago sample resampled with new ids and jitter
(:func:`bench.scale.build`). Then each command runs three times, each time in a fresh process,
and its wall time and peak RSS (``os.wait4``) are reported:

* ``analysis profile --beat 0925 --json`` (target <= 1 s, <= 500 MB);
* ``analysis profile --sector 092 --review`` (<= 2 s);
* ``analysis plan evaluate --json`` (<= 5 s), each run the first after a store change (the
  store-wide daily counts a former command cached removed before each run);
* ``analysis hotspots --method kde`` city-wide (<= 2 s), with the binned counts that the
  command keeps beside the store removed before each run (``cold``: every point read and
  binned) and kept from a former run (``cached binning``: what a later command of the same
  store version does);

and the Overview, Beat profile and Sector review pages are timed with Streamlit's AppTest,
first run and warm rerun, in a fresh process per page (<= 3 s warm).

``--before REPO`` runs the same cases with the code of another checkout (e.g. the ``main``
branch) in the same run, so a before/after ratio is measured under the same machine load.

Each measured checkout's ``analysis``, ``geodata`` and ``dashboard`` are byte-compiled first
(``compileall``, as an installed package is): with ``PYTHONDONTWRITEBYTECODE`` set, as on the
development machines, a source checkout would compile its own modules again in every fresh
process (about 0.1 s of every command). ``--no-compile`` measures without it.
Usage::

    python -m bench.commands --data /tmp/beatwise_commands --rows 10000000 --before /work/main
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path

from bench.measure import run_measured

ROOT = Path(__file__).resolve().parent.parent
RUNS = 3

#: name -> (arguments of ``python -m analysis`` before ``--store``, target seconds, target MB)
COMMANDS: dict[str, tuple[list[str], float, float | None]] = {
    "profile --beat 0925 --json": (["profile", "--beat", "0925", "--json"], 1.0, 500.0),
    "profile --sector 092 --review": (["profile", "--sector", "092", "--review"], 2.0, None),
    "plan evaluate --json": (["plan", "evaluate", "--json"], 5.0, None),
    "hotspots --method kde": (["hotspots", "--method", "kde"], 2.0, None),
    "hotspots --method kde (cached binning)": (["hotspots", "--method", "kde"], 2.0, None),
}
#: Cases run without the caches a former command left beside the store (the first run after a
#: store change), and those caches (folders under ``store/cache``).
COLD: dict[str, tuple[str, ...]] = {
    "plan evaluate --json": ("daily-counts",),
    "hotspots --method kde": ("kde",),
}
#: page title -> (page file under dashboard/, the select box to set and its value, or None)
PAGES: dict[str, tuple[str | None, tuple[int, str] | None]] = {
    "Overview": (None, None),
    "Beat profile": ("views/beat_profile.py", (0, "0925")),
    "Sector review": ("views/sector_review.py", (0, "092")),
}
PAGE_TARGET_S = 3.0
#: Warm reruns timed per page (the median is reported).
WARM_RERUNS = 3


def compile_code(code: Path) -> None:
    """Byte-compile the product's packages of the checkout `code` (``__pycache__``, not in git)."""
    packages = [name for name in ("analysis", "geodata", "dashboard") if (code / name).is_dir()]
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", *packages],
        cwd=code,
        capture_output=True,
        check=True,
    )


def run_command(code: Path, store: Path, args: list[str]) -> dict:
    """Run ``python -m analysis ARGS --store STORE`` with the code of `code`; time and peak."""
    env = dict(os.environ, PYTHONPATH=str(code))
    measured = run_measured(["-m", "analysis", *args, "--store", str(store)], cwd=code, env=env)
    out = {
        "seconds": measured.seconds,
        "cpu_seconds": measured.cpu_seconds,  # less sensitive than wall time to a shared machine
        "peak_mb": measured.peak_mb,
    }
    return out | _failure(measured.returncode, measured.stderr)


def _page_case(page: str) -> dict:
    """Time one page with AppTest in this process: the first run and a warm rerun."""
    from streamlit.testing.v1 import AppTest

    from geodata import settings
    from tests.auth_helpers import ensure_user, sign_in  # the app's real sign-in form

    path, select = PAGES[page]
    at = AppTest.from_file(str(Path.cwd() / "dashboard" / "app.py"), default_timeout=600)
    at.run()
    user = ensure_user(settings.database_url(), "commander")
    start, cpu = time.perf_counter(), time.process_time()
    sign_in(at, user)  # the first run of the home page (the Overview)
    if path:
        at.switch_page(path)
        start, cpu = time.perf_counter(), time.process_time()
        at.run()
    if select is not None:
        at.selectbox[select[0]].select(select[1]).run()
    first, first_cpu = time.perf_counter() - start, time.process_time() - cpu
    if at.exception:
        return {"error": str(at.exception[0].value)[:200]}
    warm, warm_cpu = [], []
    for _ in range(WARM_RERUNS):
        start, cpu = time.perf_counter(), time.process_time()
        at.run()
        warm.append(time.perf_counter() - start)
        warm_cpu.append(time.process_time() - cpu)
        if at.exception:
            return {"error": str(at.exception[0].value)[:200]}
    return {
        "first": first,
        "first_cpu": first_cpu,
        "warm": statistics.median(warm),
        "warm_cpu": statistics.median(warm_cpu),
    }


def run_page(code: Path, data: Path, page: str) -> dict:
    """Time `page` in a fresh process with the code of `code` on the store under `data`."""
    env = dict(os.environ, PYTHONPATH=str(code), BEATS_DATA_DIR=str(data))
    done = subprocess.run(  # as a script: the other checkout may have no bench/commands.py
        [sys.executable, str(Path(__file__).resolve()), "--page-case", page],
        cwd=code,
        env=env,
        capture_output=True,
        text=True,
        check=False,
    )
    failure = _failure(done.returncode, done.stderr)
    return failure or json.loads(done.stdout.strip().splitlines()[-1])


def _failure(returncode: int, stderr: str) -> dict[str, str]:
    """Return ``{"error": ...}`` for a child that failed: its last line of stderr, else ``killed``.

    An empty dict when it succeeded.
    """
    if not returncode:
        return {}
    return {"error": (stderr.strip().splitlines() or ["killed"])[-1]}


def _span(values: list[float], spec: str = "{:.2f}") -> str:
    if not values:
        return "-"
    return f"{spec.format(min(values))}-{spec.format(max(values))}"


def _set_aside(data: Path, caches: tuple[str, ...]) -> list[str]:
    """Move the store's `caches` to ``DATA/kept-caches``; return those moved."""
    moved = []
    for cache in caches:
        folder = data / "store" / "cache" / cache
        if folder.exists():
            shutil.rmtree(data / "kept-caches" / cache, ignore_errors=True)
            (data / "kept-caches").mkdir(exist_ok=True)
            shutil.move(folder, data / "kept-caches" / cache)
            moved.append(cache)
    return moved


def _put_back(data: Path, caches: list[str]) -> None:
    """Restore the caches :func:`_set_aside` moved, unless the runs made them again.

    So a cold case leaves the caches the next cases found before it (a cache the new code no
    longer makes, e.g. the daily counts after ``plan evaluate``, would else be missing from
    the pages' first runs).
    """
    for cache in caches:
        folder = data / "store" / "cache" / cache
        if folder.exists():
            shutil.rmtree(data / "kept-caches" / cache)
        else:
            shutil.move(data / "kept-caches" / cache, folder)


def measure(code: Path, data: Path, runs: int, page_runs: int | None = None) -> dict[str, dict]:
    """Return every command's runs and every page's timings with the code of `code`."""
    results: dict[str, dict] = {}
    for name, (args, _, _) in COMMANDS.items():
        done = []
        kept = _set_aside(data, COLD.get(name, ()))
        for _ in range(runs):
            for cache in COLD.get(name, ()):
                shutil.rmtree(data / "store" / "cache" / cache, ignore_errors=True)
            done.append(run_command(code, data / "store", args))
        _put_back(data, kept)
        results[name] = {"runs": done}
        print(name, code, done, file=sys.stderr, flush=True)
    for page in PAGES:
        done = [run_page(code, data, page) for _ in range(page_runs or runs)]
        results[f"page: {page}"] = {"runs": done}
        print(page, code, done, file=sys.stderr, flush=True)
    return results


def _cells(result: dict | None, page: bool) -> tuple[str, str, list[float]]:
    """Return the time span, the peak span and the times of one case's runs."""
    if result is None:
        return "-", "-", []
    ok = [r for r in result["runs"] if "error" not in r]
    errors = [r["error"] for r in result["runs"] if "error" in r]
    times = [r["warm" if page else "seconds"] for r in ok]
    text = _span(times)
    if page and ok:
        firsts = _span([r["first"] for r in ok], "{:.1f}")
        warm_cpu = _span([r.get("warm_cpu", 0) for r in ok])
        first_cpu = _span([r.get("first_cpu", 0) for r in ok])
        text = f"{text} (warm CPU {warm_cpu}; first run {firsts}, CPU {first_cpu})"
    if errors:
        text += f" ({len(errors)} failed: {errors[0][:80]})"
    peaks = "-" if page else _span([r["peak_mb"] for r in ok], "{:.0f}")
    if not page and ok:
        text = f"{text} (CPU {_span([r['cpu_seconds'] for r in ok])})"
    return text, peaks, times


def table(after: dict[str, dict], before: dict[str, dict] | None) -> str:
    """Return the Markdown table of the results (with the before/after ratio of medians)."""
    lines = [
        "| case | target | after: seconds | after: peak MB | before: seconds | before: peak MB "
        "| speed-up (median) |",
        "|---|---|---|---|---|---|---|",
    ]
    for name, result in after.items():
        page = name.startswith("page: ")
        if page:
            target = f"<= {PAGE_TARGET_S:g} s warm"
        else:
            _, seconds, mb = COMMANDS[name]
            target = f"<= {seconds:g} s" + (f", <= {mb:g} MB" if mb else "")
        a_text, a_peak, a_times = _cells(result, page)
        b_text, b_peak, b_times = _cells(before.get(name) if before else None, page)
        ratio = (
            f"{statistics.median(b_times) / statistics.median(a_times):.1f}x"
            if a_times and b_times
            else "-"
        )
        lines.append(f"| {name} | {target} | {a_text} | {a_peak} | {b_text} | {b_peak} | {ratio} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    """Build the store if needed, measure after (and before), print a Markdown table."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/tmp/beatwise_commands"))
    parser.add_argument("--rows", type=int, default=10_000_000)
    parser.add_argument("--runs", type=int, default=RUNS)
    parser.add_argument("--before", type=Path, help="a checkout whose code gives 'before'")
    parser.add_argument(
        "--before-page-runs", type=int, help="runs of each page with the 'before' code"
    )
    parser.add_argument(
        "--after", type=Path, default=ROOT, help="the code measured as 'after' (default: this)"
    )
    parser.add_argument("--only", choices=("commands", "pages"), help="measure only these")
    parser.add_argument(
        "--no-compile", action="store_true", help="do not byte-compile the checkouts first"
    )
    parser.add_argument("--page-case", help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    if args.page_case:
        print(json.dumps(_page_case(args.page_case)))
        return 0
    if not (args.data / "store" / "meta.json").exists():
        from bench.scale import build

        started = time.perf_counter()
        build(args.data / "store", args.rows)
        print(f"built {args.rows:,} rows in {time.perf_counter() - started:.0f} s", flush=True)
    if args.only == "commands":
        PAGES.clear()
    elif args.only == "pages":
        COMMANDS.clear()
    if not args.no_compile:
        for code in (args.after, args.before):
            if code is not None:
                compile_code(code)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    print(f"load before: {uptime.strip()}", flush=True)
    before = (
        measure(args.before, args.data, args.runs, args.before_page_runs) if args.before else None
    )
    after = measure(args.after, args.data, args.runs)
    uptime = subprocess.run(["uptime"], capture_output=True, text=True, check=False).stdout
    print(f"load after: {uptime.strip()}")
    print(f"machine: {platform.machine()}, {os.cpu_count()} cores; {args.runs} runs per case")
    print(table(after, before))
    return 0


if __name__ == "__main__":
    sys.exit(main())
