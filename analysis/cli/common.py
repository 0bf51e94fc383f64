"""What every ``python -m analysis`` command shares: date arguments, the period, JSON output."""

from __future__ import annotations

import argparse
import json
import sys
from datetime import date

from analysis.inputs import Level, Period, load_daily_counts, parse_day
from geodata.errors import ParameterError
from geodata.jsonable import jsonable
from geodata.store import IncidentStore

__all__ = [
    "AREA_LEVELS",
    "add_area_arguments",
    "area_id",
    "chosen_area",
    "day_argument",
    "period_of",
    "print_json",
]

#: The levels a command's ``--beat``/``--sector``/``--district`` flags choose from.
AREA_LEVELS: tuple[Level, ...] = ("beat", "sector", "district")


def area_id(store: IncidentStore, level: str, typed: str) -> str:
    """Return a typed area id in the store's canonical form (its department's id rule).

    This is where a command's ids enter: ``925`` becomes Chicago's beat ``0925``, ``k3``
    Seattle's ``K3``; nothing downstream re-casts or pads ids.

    Raises
    ------
    ParameterError
        If the department has no such level (a beat/zone department has no sectors).
    """
    department = store.department()
    if not department.has_level(level):
        msg = f"{department.name} has no {level} level"
        raise ParameterError(msg, parameter=level)
    return department.normalize_id(level, typed) or typed


def add_area_arguments(
    parser: argparse.ArgumentParser,
    *,
    help_text: str = "{level} id, as the beat layer writes it",
    required: bool = False,
    department: bool = False,
) -> None:
    """Add the area flags ``--beat``, ``--sector``, ``--district``: at most one of them.

    Parameters
    ----------
    parser
        The command's parser.
    help_text
        The flags' help, with ``{level}`` for the level's name.
    required
        Whether one of them must be given.
    department
        Whether ``--department`` (the whole department) is offered as well.
    """
    group = parser.add_mutually_exclusive_group(required=required)
    for level in AREA_LEVELS:
        group.add_argument(f"--{level}", help=help_text.format(level=level))
    if department:
        group.add_argument("--department", action="store_true", help="the whole department")


def chosen_area(args: argparse.Namespace) -> tuple[Level | None, str | None]:
    """Return the level and the id as typed of the area flag given, or (None, None)."""
    for level in AREA_LEVELS:
        if getattr(args, level, None):
            return level, getattr(args, level)
    return None, None


def day_argument(text: str) -> date:
    """Parse a ``YYYY-MM-DD`` command-line value (argparse names the flag in its error)."""
    try:
        return parse_day(text)
    except ValueError as err:
        raise argparse.ArgumentTypeError(str(err)) from None


def period_of(store: IncidentStore, first: date | None, last: date | None) -> Period | None:
    """Return the period of ``--from``/``--to`` style arguments (None when neither is given).

    A missing side is the first or last day the store holds, so ``--from`` alone reads to the
    end of the data.
    """
    if first is None and last is None:
        return None
    if first is None or last is None:
        daily = load_daily_counts(store)
        if daily.empty:
            return None
        if first is None:
            first = min(daily.index[0].date(), last)
        if last is None:
            last = max(daily.index[-1].date(), first)
    return Period(first, last)


def print_json(data: object, *, digits: int | None = None) -> None:
    """Print `data` as indented JSON (numpy values, NaN and dates made plain)."""
    json.dump(jsonable(data, digits=digits), sys.stdout, indent=2)
    sys.stdout.write("\n")
