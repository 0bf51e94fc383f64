"""Command line of the analysis layer: ``python -m analysis COMMAND``.

Each module of this package registers its commands through ``add_commands(subparsers)``:
:mod:`~analysis.cli.profile` (``profile``), :mod:`~analysis.cli.hotspots` (``hotspots``,
``evaluate``), :mod:`~analysis.cli.plan` (``plan``), :mod:`~analysis.cli.calls` (``calls``),
:mod:`~analysis.cli.flyer` (``flyer``) and :mod:`~analysis.cli.forecast` (``forecast``,
``forecast-backtest``); :mod:`~analysis.cli.common` holds what they share (dates, ids, JSON).
Every command takes ``--store DIR``; without it, the default store (built from the bundled data
on first use). A new command goes in a module here, listed in :data:`_PLUGINS`.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence

from geodata.cli import command_parser, flag_of
from geodata.errors import (
    BoundaryError,
    CRSMismatchError,
    InputError,
    ParameterError,
    StoreError,
)

__all__ = ["main"]

_PLUGINS = (
    "analysis.cli.profile",
    "analysis.cli.hotspots",
    "analysis.cli.plan",
    "analysis.cli.calls",
    "analysis.cli.flyer",
    "analysis.cli.forecast",
)
#: The flag of each library parameter, to name it in errors (libraries speak of the parameter).
_FLAGS = {
    "beat": "--beat",
    "sector": "--sector",
    "district": "--district",
    "n_beats": "--beats",
    "as_of": "--as-of",
    "period_days": "--period-days",
}


#: The plugin of each command: only it is imported to run the command (importing every plugin
#: costs 2-3 s: scikit-learn, SciPy, reportlab). A command missing here, ``--help`` and a
#: mistyped command load every plugin (tests/analysis/test_profile_cli.py checks the map).
_HOME = {
    "profile": "analysis.cli.profile",
    "hotspots": "analysis.cli.hotspots",
    "evaluate": "analysis.cli.hotspots",
    "plan": "analysis.cli.plan",
    "calls-review": "analysis.cli.calls",
    "calls-areas": "analysis.cli.calls",
    "flyer": "analysis.cli.flyer",
    "forecast": "analysis.cli.forecast",
    "forecast-backtest": "analysis.cli.forecast",
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
    return command_parser("python -m analysis", __doc__.split("\n")[0], plugins)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser(argv[0] if argv else None).parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ParameterError as err:
        print(f"error: {flag_of(err, _FLAGS)}: {err}", file=sys.stderr)
        return 2
    except (InputError, StoreError, BoundaryError, CRSMismatchError, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
