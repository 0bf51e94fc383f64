"""``python -m analysis COMMAND``: runs :func:`analysis.cli.main` (commands: analysis/cli/).

When the command is done the process exits without the interpreter's teardown: the exit
handlers run (:mod:`atexit`) and the standard streams are flushed, then :func:`os._exit`.
Tearing down the modules a city-wide KDE loads (numba, SciPy, GeoPandas, Arrow) took 0.4-0.5 s
after the answer was printed (docs/benchmarks.md, "Commands at 10M"); nothing of it is work
the command needs: its files are closed when written.
"""

from __future__ import annotations

import atexit
import contextlib
import os
import sys

from analysis.cli import main

__all__ = ["exit_now", "main"]


def exit_now(code: int) -> None:
    """Run the exit handlers, flush stdout and stderr, and end the process with `code`."""
    atexit._run_exitfuncs()
    for stream in (sys.stdout, sys.stderr):
        with contextlib.suppress(OSError, ValueError):  # a closed pipe: nothing to deliver
            stream.flush()
    os._exit(code)


if __name__ == "__main__":
    try:
        code = main()
    except SystemExit as stop:  # argparse's --help and usage errors
        if stop.code is not None and not isinstance(stop.code, int):
            raise  # a message to print: the interpreter's own exit prints it
        code = stop.code or 0
    exit_now(code)
