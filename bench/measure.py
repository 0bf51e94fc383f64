"""Run a Python command in a child process and measure its time and its own peak memory.

The peak is the child's ``VmHWM`` (``/proc/self/status``), written by the child as it exits.
``ru_maxrss`` from ``wait4`` is not used for it: on Linux a child started by ``vfork`` (how
:mod:`subprocess` starts one) keeps its parent's peak across ``exec``, so a child of a 3 GB test
process reports at least 3 GB whatever it uses itself. ``ru_maxrss`` remains the fallback where
``/proc`` is missing (not Linux); it can only overstate the peak, never hide one.
"""

from __future__ import annotations

import os
import platform
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TypedDict, Unpack

__all__ = [
    "Measured",
    "fresh_store",
    "load_average",
    "naive_measured",
    "print_machine",
    "print_result",
    "run_checked",
    "run_measured",
]

#: Code run before the command in the child: at exit it writes its own VmHWM (kB) to a file.
_PRELUDE = """\
import atexit as _bench_atexit, os as _bench_os
def _bench_write_peak():
    target = _bench_os.environ.get("BENCH_PEAK_FILE")
    if not target:
        return
    try:
        with open("/proc/self/status") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    with open(target, "w") as out:
                        out.write(line.split()[1])
    except OSError:
        pass
_bench_atexit.register(_bench_write_peak)
"""


@dataclass(frozen=True)
class Measured:
    """What :func:`run_measured` measured of one command.

    Attributes
    ----------
    seconds : float
        Wall time.
    cpu_seconds : float
        User + system CPU seconds of the child, all threads: on a loaded machine they say more
        about the code than the wall time.
    peak_mb : float
        The child's peak resident memory in MB (its own, see the module's docstring).
    stdout, stderr : str
        What the child printed.
    returncode : int
        Its exit code.
    """

    seconds: float
    cpu_seconds: float
    peak_mb: float
    stdout: str
    stderr: str
    returncode: int


def python_argv(args: list[str], prelude: str = "") -> list[str]:
    """Return the argv running ``python -m MOD ARGS`` or ``-c CODE ARGS`` after `prelude`.

    Parameters
    ----------
    args : list of str
        ``["-m", module, *arguments]`` or ``["-c", code, *arguments]``.
    prelude : str, optional
        Python code to run first (e.g. a memory cap).

    Returns
    -------
    list of str
        The argv for :func:`subprocess.Popen`, starting with :data:`sys.executable`.
    """
    head = _PRELUDE + prelude + "\n"
    if args[:1] == ["-m"]:
        module, rest = args[1], args[2:]
        code = f"import runpy\nrunpy.run_module({module!r}, run_name='__main__', alter_sys=True)"
        return [sys.executable, "-c", head + code, *rest]
    if args[:1] == ["-c"]:
        return [sys.executable, "-c", head + args[1], *args[2:]]
    msg = f"expected ['-m', module, ...] or ['-c', code, ...], got {args[:2]}"
    raise ValueError(msg)


def run_measured(
    args: list[str],
    *,
    prelude: str = "",
    cwd: Path | None = None,
    env: dict[str, str] | None = None,
) -> Measured:
    """Run ``python ARGS`` (see :func:`python_argv`) and measure it.

    Output goes to files, not pipes: a child writing more than a pipe holds would block before
    it exits, and ``os.wait4`` waits for the exit.

    Parameters
    ----------
    args : list of str
        ``["-m", module, *arguments]`` or ``["-c", code, *arguments]``.
    prelude : str, optional
        Python code run in the child before the command.
    cwd : Path, optional
        Working folder of the child.
    env : dict, optional
        Its environment (default: this process's).

    Returns
    -------
    Measured
        Time, CPU time, the child's own peak memory and its output; the caller checks
        ``returncode``.
    """
    with (
        tempfile.TemporaryDirectory() as scratch,
        tempfile.TemporaryFile("w+") as out,
        tempfile.TemporaryFile("w+") as err,
    ):
        peak_file = Path(scratch) / "peak"
        child_env = dict(os.environ if env is None else env, BENCH_PEAK_FILE=str(peak_file))
        start = time.perf_counter()
        process = subprocess.Popen(
            python_argv(args, prelude), stdout=out, stderr=err, text=True, cwd=cwd, env=child_env
        )
        _, status, usage = os.wait4(process.pid, 0)
        seconds = time.perf_counter() - start
        process.returncode = os.waitstatus_to_exitcode(status)  # reaped here, not by Popen
        out.seek(0)
        err.seek(0)
        stdout, stderr = out.read(), err.read()
        written = peak_file.read_text().strip() if peak_file.exists() else ""
    peak_mb = int(written) / 1024 if written else usage.ru_maxrss / 1024
    return Measured(
        seconds=seconds,
        cpu_seconds=usage.ru_utime + usage.ru_stime,
        peak_mb=peak_mb,
        stdout=stdout,
        stderr=stderr,
        returncode=process.returncode,
    )


class _RunOptions(TypedDict, total=False):
    """The keyword options of :func:`run_measured`, which :func:`run_checked` passes on."""

    prelude: str
    cwd: Path | None
    env: dict[str, str] | None


def run_checked(args: list[str], **options: Unpack[_RunOptions]) -> Measured:
    """Run and measure ``python ARGS`` as :func:`run_measured` does; raise if it fails.

    Parameters
    ----------
    args, **options
        As for :func:`run_measured`.

    Raises
    ------
    RuntimeError
        If the command exits with a non-zero code (the message ends with its stderr).
    """
    measured = run_measured(args, **options)
    if measured.returncode != 0:
        msg = f"{args[:2]} ... failed ({measured.returncode}): {measured.stderr[-2000:]}"
        raise RuntimeError(msg)
    return measured


def load_average() -> str:
    """Return the 1-minute load average, for a row measured on a shared machine."""
    return f"{os.getloadavg()[0]:.1f}"


def print_machine() -> None:
    """Print the machine (architecture, cores, Python) and its load average, for a table's head."""
    load = os.getloadavg()
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    print(f"load average at start: {load[0]:.1f} {load[1]:.1f} {load[2]:.1f}")


def fresh_store(base: Path, scratch: Path) -> Path:
    """Return ``scratch/store``, a fresh copy of the store folder `base` (any old one removed)."""
    store = scratch / "store"
    shutil.rmtree(store, ignore_errors=True)
    shutil.copytree(base, store)
    return store


def naive_measured(module: str, source: Path, scratch: Path, *, skip: bool) -> Measured | None:
    """Run the naive pipeline of the bench `module` on `source` in a child; None when `skip`.

    The child is ``python -m module --naive source --out scratch/naive.parquet``.
    """
    if skip:
        return None
    out = scratch / "naive.parquet"
    return run_checked(["-m", module, "--naive", str(source), "--out", str(out)])


def print_result(
    cells: Sequence[str],
    rows: int,
    product: Measured,
    naive: Measured | None,
    *,
    per_row: bool = False,
) -> None:
    """Print the table row of an ingest of `rows` rows measured as `product`.

    The row is `cells`, then the product's wall (CPU) time, rows per second and peak memory (and
    its peak per row with `per_row`), the naive pipeline's cells, and the load average.
    """
    per_row_cells = [f"{product.peak_mb * 2**20 / rows:,.0f} B"] if per_row else []
    _print_row(
        *cells,
        *_speed_cells(rows, product),
        f"{product.peak_mb:,.0f} MB",
        *per_row_cells,
        *_naive_cells(product, naive),
        load_average(),
    )


def _speed_cells(rows: int, run: Measured) -> tuple[str, str]:
    """Return a row's cells for a run over `rows` rows: wall (CPU) time, rows per second."""
    return (
        f"{run.seconds:.1f} s ({run.cpu_seconds:.1f} s)",
        f"{rows / run.seconds:,.0f} ({rows / run.cpu_seconds:,.0f})",
    )


def _naive_cells(product: Measured, naive: Measured | None) -> tuple[str, str, str]:
    """Return a row's cells for the naive pipeline: wall (CPU) time, peak, and the speed-up.

    Dashes when the naive pipeline was not run (`naive` is None).
    """
    if naive is None:
        return "-", "-", "-"
    ratio = naive.seconds / product.seconds
    cpu_ratio = naive.cpu_seconds / product.cpu_seconds
    return (
        f"{naive.seconds:.1f} s ({naive.cpu_seconds:.1f} s)",
        f"{naive.peak_mb:,.0f} MB",
        f"{ratio:.1f}x ({cpu_ratio:.1f}x)",
    )


def _print_row(*cells: str) -> None:
    """Print one row of a Markdown table (and flush, so a long run shows its rows as they come)."""
    print("| " + " | ".join(cells) + " |", flush=True)
