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


#: The plugin of the commands whose start-up time matters: only it is imported to run them
#: (importing every plugin costs seconds). A command missing here loads every plugin.
_HOME = {
    "profile": "analysis.cli_profile",
    "hotspots": "analysis.cli_hotspots",
    "evaluate": "analysis.cli_hotspots",
    "plan": "analysis.cli_plan",
}


def build_parser(command: str | None = None) -> argparse.ArgumentParser:
    """Return the argument parser with every registered command.

    With `command` (the first argument), only its plugin is imported when :data:`_HOME` knows
    it and that plugin registers it; otherwise every plugin is.
    """
    if command in _HOME:
        parser, sub = _parser((_HOME[command],))
        if command in sub.choices:
            return parser
    return _parser(_PLUGINS)[0]


def _parser(plugins: Sequence[str]) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    parser = argparse.ArgumentParser(prog="python -m analysis", description=__doc__.split("\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    for name in plugins:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as err:
            if err.name != name:
                raise
            continue
        module.add_commands(sub)
    return parser, sub


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
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
