"""Command line of the analysis layer: ``python -m analysis COMMAND``.

Commands register themselves from ``analysis.cli_profile`` (``profile``), ``analysis.cli_hotspots``
(``hotspots``, ``evaluate``), ``analysis.cli_plan`` (``plan``) and ``analysis.cli_forecast``
(``forecast``, ``forecast-backtest``). Every command takes
``--store DIR``; without it, the default store (built from the bundled data on first use).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from geodata.errors import (
    BoundaryError,
    CRSMismatchError,
    InputError,
    ParameterError,
    StoreError,
)

__all__ = ["main"]

_PLUGINS = (
    "analysis.cli_profile",
    "analysis.cli_hotspots",
    "analysis.cli_plan",
    "analysis.cli_calls",
    "analysis.cli_print",
    "analysis.cli_forecast",
)
#: The flag of each library parameter, to name it in errors (libraries speak of the parameter).
_FLAGS = {
    "beat": "--beat",
    "sector": "--sector",
    "district": "--district",
    "n_beats": "--beats",
    "as_of": "--as-of",
}


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every registered command."""
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in _PLUGINS:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.add_commands(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ParameterError as err:
        flag = _FLAGS.get(err.parameter, f"--{err.parameter.replace('_', '-')}")
        print(f"error: {flag}: {err}", file=sys.stderr)
        return 2
    except (InputError, StoreError, BoundaryError, CRSMismatchError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
