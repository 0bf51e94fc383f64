"""``python -m analysis plan``: evaluate beat plans and propose balanced, compact beats.

Examples
--------
``python -m analysis plan evaluate --json`` (the current beats of the store),
``python -m analysis plan evaluate --plan proposal.geojson``,
``python -m analysis plan propose --district 11 --beats 15 --json``,
``python -m analysis plan propose --district 11 --beats 15 --minimal-change --out plan.gpkg``.
"""

from __future__ import annotations

import argparse
import math
import sys
from datetime import date
from typing import TYPE_CHECKING, Any, Literal

from analysis import beatplan, inputs
from analysis.cli.common import area_id, day_argument, period_of, print_json
from geodata import schema
from geodata.boundaries import read_beats
from geodata.jsonable import jsonable_records

if TYPE_CHECKING:
    import pandas as pd
from geodata.store import IncidentStore

__all__ = [
    "PLANNING_WINDOW_MONTHS",
    "add_commands",
    "planning_period",
    "run_evaluate",
    "run_propose",
]

#: The workload period of ``plan evaluate`` and ``plan propose`` when none is given: the last 12
#: months of the store (the usual planning window; every record is ``--all``).
PLANNING_WINDOW_MONTHS = inputs.PLANNING_WINDOW_MONTHS


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``plan`` command with ``evaluate`` and ``propose``."""
    parser = subparsers.add_parser(
        "plan", help="evaluate or propose beat plans", description=__doc__.split("\n")[0]
    )
    sub = parser.add_subparsers(dest="plan_command", required=True)

    def common(p: argparse.ArgumentParser) -> None:
        p.add_argument("--store", help="incident store directory (default: the bundled data)")
        p.add_argument("--json", action="store_true", help="print JSON instead of text")
        p.add_argument(
            "--start",
            type=day_argument,
            help="first day of the workload period, YYYY-MM-DD (default: the last "
            f"{PLANNING_WINDOW_MONTHS} months the store holds)",
        )
        p.add_argument(
            "--end",
            type=day_argument,
            help="last day of the workload period, YYYY-MM-DD (default: the store's last day)",
        )
        p.add_argument(
            "--all",
            action="store_true",
            help="measure the workload over every stored record (default without --start/--end: "
            f"the last {PLANNING_WINDOW_MONTHS} months the store holds)",
        )
        p.add_argument(
            "--weights", help="workload weights TOML (default: analysis/workload_weights.toml)"
        )
        p.add_argument(
            "--workload",
            choices=["auto", "incidents", "calls"],
            default="auto",
            help="what to balance: officer-hours of calls for service, weighted incidents, or "
            "auto (calls when the store holds them)",
        )
        p.add_argument(
            "--allowance",
            type=float,
            default=0.0,
            help="with calls: self-initiated and administrative time as a share of call time",
        )

    ev = sub.add_parser("evaluate", help="measures of the current beats or of a plan file")
    ev.add_argument("--plan", help="plan file (GeoJSON/GeoPackage/Shapefile with a beat column)")
    ev.add_argument("--district", help="only this district")
    common(ev)
    ev.set_defaults(func=run_evaluate)

    pr = sub.add_parser("propose", help="propose K balanced, compact, contiguous beats")
    pr.add_argument(
        "--district", required=True, help="district id, e.g. 11, or 'all' (city-wide, nested)"
    )
    pr.add_argument(
        "--apportion",
        action="store_true",
        help="with --district all: share the beats among districts by workload",
    )
    pr.add_argument("--beats", type=int, help="K, the number of beats (default: as now)")
    pr.add_argument(
        "--minimal-change",
        action="store_true",
        help="start from the current beats and move only boundary units until --target-cv",
    )
    pr.add_argument(
        "--target-cv", type=float, default=0.10, help="balance target (workload CV, 0.10)"
    )
    pr.add_argument("--cell-size-m", type=float, default=300.0, help="unit grid cell (m)")
    pr.add_argument("--seed", type=int, default=0, help="random seed (same seed, same plan)")
    pr.add_argument("--out", help="write the proposed beats to .geojson or .gpkg")
    pr.add_argument("--save", metavar="NAME", help="save the proposal in the database")
    pr.add_argument("--author", default="", help="author stored with --save")
    pr.add_argument("--database", help="SQLAlchemy URL (default: DATABASE_URL or SQLite)")
    common(pr)
    pr.set_defaults(func=run_propose)


def _workload(store: IncidentStore, chosen: str) -> Literal["incidents", "calls"]:
    return inputs.resolve_workload(chosen, has_calls=chosen == "auto" and inputs.has_calls(store))


def planning_period(
    store: IncidentStore, first: date | None, last: date | None, *, every: bool = False
) -> tuple[inputs.Period | None, str]:
    """Return the incident workload period of ``plan evaluate``/``propose`` and how it was chosen.

    `first`/`last` as given (a missing side is the store's first or last day); neither
    given: :func:`analysis.inputs.planning_period`, the :data:`PLANNING_WINDOW_MONTHS` months
    ending on the last day the store holds (``"last 12 months"``: 2024-01-01 to 2024-12-31 for
    a store ending on 31 December 2024), or every record when `every` (``"all"``) or the store
    is empty. The Beat planning page uses the same default.
    """
    period = period_of(store, first, last)
    if period is not None:
        return period, "given"
    if every:
        return None, "all"
    default = inputs.load_planning_period(store)
    if default is None:
        return None, "all"
    return default, "last 12 months"


def _workload_period(
    args: argparse.Namespace, store: IncidentStore, workload: Literal["incidents", "calls"]
) -> tuple[inputs.Period | None, str]:
    """Return the command's workload period: calls keep every call unless a period is given."""
    period, basis = planning_period(store, args.start, args.end, every=args.all)
    if workload == "calls" and basis == "last 12 months":
        return None, "all"
    return period, basis


def _inputs(
    args: argparse.Namespace,
    workload: Literal["incidents", "calls"] | None = None,
    *,
    period: inputs.Period | None = None,
) -> tuple[IncidentStore, inputs.PlanningInputs]:
    store = inputs.open_store(args.store)
    if period is None:
        period = period_of(store, args.start, args.end)
    kind = workload or _workload(store, args.workload)
    loaded = inputs.load_planning_inputs(
        store, period, weights_path=args.weights, workload=kind, allowance=args.allowance
    )
    return store, loaded


def _print_json(data: object) -> None:
    print_json(data, digits=6)


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``plan evaluate``: print the measures of the current beats or of ``--plan``.

    Incident workload without ``--start``/``--end`` is measured over the last 12 months the
    store holds (:func:`planning_period`; ``--all`` for every record); calls for service keep
    every stored call unless a period is given.
    """
    store = inputs.open_store(args.store)
    workload = _workload(store, args.workload)
    period, basis = _workload_period(args, store, workload)
    store, loaded = _inputs(args, workload, period=period)
    beats = loaded.beats
    plan = read_beats(args.plan, analysis_crs=beats.crs.to_string()) if args.plan else beats
    incidents = loaded.incidents
    if args.district:
        district = area_id(store, "district", args.district)
        if schema.DISTRICT not in plan.columns or not (plan[schema.DISTRICT] == district).any():
            msg = f"no beats of district {district!r} in the plan"
            raise ValueError(msg)
        plan = plan[plan[schema.DISTRICT] == district]
        incidents = beatplan.district_incidents(beats, incidents, district)
    evaluation = beatplan.evaluate_plan(plan, incidents, stations=loaded.stations)
    # both measures when the store holds both kinds of record and none was chosen
    other = None
    if args.workload == "auto" and workload == "calls" and store.count():
        _, loaded_other = _inputs(args, "incidents", period=period)
        other_incidents = loaded_other.incidents
        if args.district:
            other_incidents = beatplan.district_incidents(beats, other_incidents, district)
        other = beatplan.evaluate_plan(plan, other_incidents, stations=loaded.stations).summary
    if args.json:
        _print_json(
            {
                "plan": args.plan or "current beats",
                "workload": workload,
                "period": _period_json(period, basis),
                "summary": evaluation.summary,
                "beats": jsonable_records(evaluation.beats, digits=6),
                **({"summary_incidents": other} if other is not None else {}),
            }
        )
        return 0
    s = evaluation.summary
    unit = "calls, officer-hours" if workload == "calls" else "incidents, workload"
    sys.stdout.write(
        f"plan: {args.plan or 'current beats'}  ({s['n_beats']} beats, "
        f"{s['incidents']:,} {unit} {s['workload_total']:.0f})\n"
        f"period: {_period_words(period, basis)}\n"
        f"workload CV {s['workload_cv']:.3f}   max/min "
        f"{_ratio_words(s['max_min_ratio'], evaluation.beats)}   Gini {s['gini']:.3f}\n"
        f"median Polsby-Popper {s['median_polsby_popper']:.3f}   median convex hull ratio "
        f"{s['median_convex_hull_ratio']:.3f}\n"
        f"contiguous: {'yes' if s['contiguous'] else 'no'} ({s['n_split_beats']} split)   "
        f"sectors: {s['n_sectors']}\n"
    )
    if other is not None:
        sys.stdout.write(
            f"weighted incidents instead: workload CV {other['workload_cv']:.3f}   "
            f"max/min {_ratio_words(other['max_min_ratio'])}\n"
        )
    return 0


def _ratio_words(ratio: object, beats: pd.DataFrame | None = None) -> str:
    """Return the max/min workload ratio, or why there is none (beats without workload)."""
    if isinstance(ratio, float) and math.isfinite(ratio):
        return f"{ratio:.2f}"
    if beats is None or "workload" not in beats:
        return "n/a (a beat has no workload)"
    empty = int((beats["workload"] <= 0).sum())
    return f"n/a ({empty} beat{'s' if empty != 1 else ''} with no workload)"


def _period_json(period: inputs.Period | None, basis: str) -> dict[str, Any]:
    return {
        "from": period.first if period else None,
        "to": period.last if period else None,
        "basis": basis,
    }


def _period_words(period: inputs.Period | None, basis: str) -> str:
    if period is None:
        return "every stored record"
    span = f"{period.first} to {period.last}"
    return f"{span} (the last 12 months the store holds)" if basis == "last 12 months" else span


def run_propose(args: argparse.Namespace) -> int:
    """Run ``plan propose``: print current and proposed measures; optionally write/save.

    The workload period is :func:`plan evaluate <run_evaluate>`'s: without ``--start``/``--end``
    the last 12 months the store holds (``--all``: every record), stated in the output.
    """
    store = inputs.open_store(args.store)
    workload = _workload(store, args.workload)
    period, basis = _workload_period(args, store, workload)
    store, loaded = _inputs(args, workload, period=period)
    search = beatplan.SearchOptions(  # the same for one district and for all
        cell_size_m=args.cell_size_m,
        minimal_change=args.minimal_change,
        target_cv=args.target_cv,
        random_state=args.seed,
    )
    if args.district.strip().lower() in {"all", "city"}:
        if args.beats is not None:
            msg = "--beats applies to one district; with --district all each keeps its count"
            raise ValueError(msg)
        proposal = beatplan.propose_city(
            loaded.beats,
            loaded.incidents,
            apportion=args.apportion,
            search=search,
            stations=loaded.stations,
        )
    else:
        proposal = beatplan.propose_beats(
            loaded.beats,
            loaded.incidents,
            district=area_id(store, "district", args.district),
            n_beats=args.beats,
            search=search,
            stations=loaded.stations,
        )
    out: dict[str, Any] = proposal.to_dict()  # JSON-shaped: see Proposal.to_dict
    out["period"] = _period_json(period, basis)
    if args.out:
        from geodata.plans import export_plan

        out["out"] = str(export_plan(proposal.proposed_plan, args.out))
    if args.save:
        from geodata import db, settings
        from geodata.plans import save_plan

        engine = db.make_engine(settings.database_url(args.database))
        db.upgrade(engine)
        out["saved_id"] = save_plan(
            engine,
            proposal.proposed_plan,
            name=args.save,
            author=args.author,
            parameters=proposal.parameters,
            measures=out["proposed"],
            assignments=dict(
                zip(
                    proposal.units[beatplan.UNIT].astype(str),
                    proposal.units["proposed"],
                    strict=False,
                )
            ),
        )
    if args.json:
        _print_json(out)
        return 0
    c, p = out["current"], out["proposed"]
    records = "calls" if workload == "calls" else "incidents"
    lines = [
        f"district {out['parameters']['district']}: {out['units']} units, "
        f"{out['units_moved']} moved, {out['incidents_changing_beat']} {records} change beat",
        f"period: {_period_words(period, basis)}",
    ]
    for key in (
        "workload_cv",
        "max_min_ratio",
        "gini",
        "median_polsby_popper",
        "contiguous",
        "seconds",
    ):
        lines.append(f"{key:22s} {c[key]!s:>10.10} -> {p[key]!s:>10.10}")
    cut = out["workload_cv_cut_pct"]
    lines.append(f"workload CV cut: {'n/a' if cut is None else f'{cut:.1f}%'}")
    sys.stdout.write("\n".join(lines) + "\n")
    return 0
