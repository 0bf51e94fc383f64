"""Command line of the data layer: ``python -m geodata COMMAND``.

Each module of this package registers its commands through ``add_commands(subparsers)``:
:mod:`~geodata.cli.ingest` (``init``, ``ingest``, ``check-beats``, ``info``; calls for service
through :mod:`~geodata.cli.calls`), :mod:`~geodata.cli.department` (``department draft``),
:mod:`~geodata.cli.meetings` (``meetings``), :mod:`~geodata.cli.publish` (``publish``),
:mod:`~geodata.cli.store` (``history``, ``rollback``, ``migrate``), :mod:`~geodata.cli.cluster`
(``counts``) and :mod:`~geodata.cli.users` (``users``, ``audit``). Every command takes
``--store DIR``. A new command goes in a module here, listed in :data:`_PLUGINS`.

Building the parser imports every module listed, so a module here imports at its top only what
registering its arguments needs (argparse, :mod:`geodata.settings`): each command imports its
implementation inside its handler, and choices that live in a heavy module are given as
:class:`LazyChoices`. ``python -m geodata ingest`` thus loads neither the meetings nor the
accounts code (``tests/geodata/test_cli_imports.py``).
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Iterator, Mapping, Sequence

from geodata.errors import (
    BoundaryError,
    CRSMismatchError,
    InputError,
    ParameterError,
    StoreError,
)

__all__ = ["LazyChoices", "build_parser", "command_parser", "flag_of", "main"]

#: The modules that register commands, in the order ``--help`` lists them.
_PLUGINS = (
    "geodata.cli.ingest",
    "geodata.cli.department",
    "geodata.cli.meetings",
    "geodata.cli.publish",
    "geodata.cli.store",
    "geodata.cli.cluster",
    "geodata.cli.users",
)


class LazyChoices(Sequence[str]):
    """The choices of an argument, read from ``module.name`` only when argparse needs them.

    argparse reads choices when it checks a value of that argument or prints its help, never
    while the parser is built, provided the argument has a ``metavar``. Its help may say
    ``%(choices)s``.
    """

    def __init__(self, module: str, name: str) -> None:
        self._module = module
        self._name = name
        self._values: tuple[str, ...] | None = None

    @property
    def values(self) -> tuple[str, ...]:
        """Return the choices (importing their module on first use)."""
        if self._values is None:
            module = importlib.import_module(self._module)
            self._values = tuple(getattr(module, self._name))
        return self._values

    def __getitem__(self, index: int) -> str:  # type: ignore[override]
        return self.values[index]

    def __len__(self) -> int:
        return len(self.values)

    def __iter__(self) -> Iterator[str]:
        return iter(self.values)

    def __contains__(self, value: object) -> bool:
        return value in self.values


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every command, plugins included."""
    return command_parser("python -m geodata", __doc__.split("\n")[0], _PLUGINS)[0]


def command_parser(
    prog: str, description: str, plugins: Sequence[str]
) -> tuple[argparse.ArgumentParser, argparse._SubParsersAction]:
    """Return a parser and its subparsers, with the commands each module of `plugins` registers.

    Each module has ``add_commands(subparsers)``; a module that is not installed is skipped
    (a missing dependency inside one is raised). The analysis command line shares this.
    """
    parser = argparse.ArgumentParser(prog=prog, description=description)
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


def flag_of(error: ParameterError, flags: Mapping[str, str] | None = None) -> str:
    """Return the command-line flag of a library parameter: `flags` says, else ``--name``.

    Libraries raise :class:`~geodata.errors.ParameterError` naming their parameter
    (``as_of``); only the command line knows it as a flag (``--as-of``).
    """
    return (flags or {}).get(error.parameter, f"--{error.parameter.replace('_', '-')}")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except ParameterError as err:
        print(f"error: {flag_of(err)}: {err}", file=sys.stderr)
        return 2
    except (InputError, StoreError, BoundaryError, CRSMismatchError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
