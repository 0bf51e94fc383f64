"""``python -m analysis hotspots`` and ``python -m analysis evaluate``: hotspots and their backtest.

Examples
--------
``python -m analysis hotspots --method dbscan --sector 011 --out hotspots.geojson``,
``python -m analysis hotspots --method gistar --from 2018-01-01 --to 2018-01-27 --json``,
``python -m analysis evaluate --methods kde dbscan --json``.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd

from analysis import evaluate, hotspots, inputs
from analysis.cli.common import (
    add_area_arguments,
    area_id,
    chosen_area,
    day_argument,
    period_of,
    print_json,
)
from geodata import schema
from geodata.exports import prepare_output
from geodata.jsonable import jsonable, jsonable_records

if TYPE_CHECKING:
    import geopandas as gpd

__all__ = [
    "add_commands",
    "format_evaluation",
    "run_evaluate",
    "run_hotspots",
    "to_geojson",
]


def add_commands(subparsers: argparse._SubParsersAction) -> None:
    """Register the ``hotspots`` and ``evaluate`` commands."""
    parser = subparsers.add_parser(
        "hotspots", help="hotspot polygons (DBSCAN, HDBSCAN, KDE, Gi*)", description=__doc__
    )
    methods = hotspots.HOTSPOT_METHODS
    parser.add_argument("--method", choices=methods, default=methods[0])
    add_area_arguments(parser)
    parser.add_argument("--from", dest="start", type=day_argument, help="first day, YYYY-MM-DD")
    parser.add_argument(
        "--to", dest="end", type=day_argument, help="last day (inclusive), YYYY-MM-DD"
    )
    parser.add_argument("--category", help="only this category (e.g. property)")
    parser.add_argument("--eps-m", type=float, default=150.0, help="DBSCAN radius (m)")
    parser.add_argument(
        "--min-samples",
        default="auto",
        type=_auto_or(int),
        help="DBSCAN core threshold or 'auto' (scaled rule)",
    )
    parser.add_argument(
        "--cell-size-m", type=float, help="KDE/Gi* cell (m; KDE default bandwidth / 10, Gi* 150)"
    )
    parser.add_argument(
        "--bandwidth-m", default="auto", type=_auto_or(float), help="KDE bandwidth (m) or 'auto'"
    )
    parser.add_argument("--store", help="incident store directory (default: the bundled data)")
    parser.add_argument("--out", help="write the hotspot polygons to FILE.geojson or FILE.csv")
    parser.add_argument("--json", action="store_true", help="print JSON instead of text")
    parser.set_defaults(func=run_hotspots)

    ev = subparsers.add_parser(
        "evaluate",
        help="rolling backtest: hit rate, PAI, PEI*, RRI per method and coverage",
        description="Rolling backtest of the hotspot methods against the naive baseline.",
    )
    ev.add_argument(
        "--methods", nargs="+", default=list(evaluate.METHODS), choices=evaluate.METHODS
    )
    ev.add_argument(
        "--coverages", nargs="+", type=float, default=list(evaluate.COVERAGES), help="area shares"
    )
    ev.add_argument("--cell-size-m", type=float, default=150.0, help="evaluation cell (m)")
    ev.add_argument(
        "--from", dest="start", type=day_argument, help="first day of data used, YYYY-MM-DD"
    )
    ev.add_argument(
        "--to",
        dest="end",
        type=day_argument,
        help="last day of data used (inclusive), YYYY-MM-DD",
    )
    ev.add_argument("--store", help="incident store directory (default: the bundled data)")
    ev.add_argument("--json", action="store_true", help="print JSON (summary and every cut-off)")
    ev.add_argument("--markdown", help="also write the summary table as Markdown to this file")
    ev.set_defaults(func=run_evaluate)


def _auto_or(kind: type) -> object:
    def parse(text: str) -> object:
        if text == "auto":
            return text
        try:
            return kind(text)
        except ValueError:
            msg = f"expected 'auto' or a number, got {text!r}"
            raise argparse.ArgumentTypeError(msg) from None

    return parse


def to_geojson(polygons: gpd.GeoDataFrame) -> str:
    """Return hotspot polygons as GeoJSON text in WGS84 (times as ISO 8601 strings)."""
    from analysis import export

    return export.layer_geojson(polygons)


def run_hotspots(args: argparse.Namespace) -> int:
    """Run ``python -m analysis hotspots``."""
    if args.out:
        from analysis import export  # GeoPandas: loaded only when a layer is written or read

        export.check_layer_path(args.out)
    store = inputs.open_store(args.store)
    level, typed = chosen_area(args)
    period = period_of(store, args.start, args.end)
    the_id = area_id(store, level, typed) if level and typed else None
    area = {  # the canonical level, the department's word for it and the id as stored
        "level": level or "department",
        "label": store.department().label(level) if level else "department",
        "id": the_id,
    }
    if args.method == "kde" and level is None and not args.category:
        # city-wide KDE: only the coordinates, read file by file into NumPy, and binned once
        # per store version (analysis.distributed.city_kde): the same estimate as the fit on
        # the incidents' located rows (GeoPandas loads while the points are read)
        from analysis.distributed import city_kde

        kde = city_kde(
            store,
            start=pd.Timestamp(period.first) if period else None,
            end=pd.Timestamp(period.end) if period else None,
            bandwidth_m=args.bandwidth_m,
            cell_size_m=args.cell_size_m or "auto",
        )
        if kde is None:
            return _no_incidents(args, area)
        model: hotspots.BaseEstimator = kde
        polygons = kde.hotspots_.set_crs(store.read_layer("beats").crs, allow_override=True)
        n_located = kde.n_incidents_
    else:
        all_beats = store.read_layer("beats")
        incidents = inputs.load_hotspot_incidents(store, period, columns=_columns(args, level))
        located, beats = hotspots.area_incidents(
            incidents, all_beats, level=level, area_id=the_id, category=args.category
        )
        if located.empty:
            return _no_incidents(args, area)
        model, polygons = hotspots.fit_hotspots(
            located,
            beats,
            args.method,
            eps_m=args.eps_m,
            min_samples=args.min_samples,
            cell_size_m=args.cell_size_m,
            bandwidth_m=args.bandwidth_m,
            reference=hotspots.area_incidents(
                incidents, all_beats, level=None, area_id=None, category=args.category
            )
            if level and args.method in {"gistar", "dbscan"}
            else None,
        )
        n_located = len(located)
    if args.out:
        from analysis import export

        export.write_layer(polygons, prepare_output(args.out))
    table = pd.DataFrame(polygons.drop(columns="geometry"))
    info = {
        "method": args.method,
        "area": area,
        "period": {"from": args.start, "to": args.end},
        "n_incidents": n_located,
        "n_hotspots": len(polygons),
        "params": jsonable(model.get_params()),
        "fitted": {
            k: jsonable(getattr(model, k))
            for k in (
                "min_samples_",
                "bandwidth_m_",
                "cell_size_m_",
                "exact_",
                "n_noise_",
                "min_cluster_size_",
            )
            if hasattr(model, k)
        },
        "hotspots": jsonable_records(table),
    }
    if args.json:
        print_json(info)
    else:
        print(
            f"{args.method}: {info['n_hotspots']} hotspots from {n_located:,} incidents "
            f"({area['label']} {area['id'] or ''}); {info['fitted']}"
        )
        if len(table):
            print(table.head(20).to_string(index=False))
        note = hotspots.dominant_cluster_note(table, n_located)
        if note:
            print(f"note: {note} (--min-samples, --eps-m, --method hdbscan or kde).")
        if args.out:
            print(f"wrote {args.out}")
    return 0


def _columns(args: argparse.Namespace, level: str | None) -> tuple[str, ...] | None:
    """Return the incident columns the method reads (None: :data:`hotspots.HOTSPOT_COLUMNS`).

    A KDE needs only the coordinates and the columns that choose the incidents: reading no
    other column of millions of incidents saves most of the command's time.
    """
    if args.method != "kde":
        return None
    chosen = [schema.X, schema.Y]
    if args.category:
        chosen.append(schema.CATEGORY)
    if level:
        chosen.append(inputs.LEVEL_COLUMNS[level])
    return tuple(chosen)


def _no_incidents(args: argparse.Namespace, area: dict[str, str | None]) -> int:
    """Report an empty period (no located incident in the area): no hotspots, not an error."""
    message = "No incidents in this period: no hotspots to find."
    if args.out:
        import geopandas as gpd

        from analysis import export

        empty = gpd.GeoDataFrame(geometry=[], crs=schema.WGS84)
        export.write_layer(empty, args.out)
    if args.json:
        print_json(
            {
                "method": args.method,
                "area": area,
                "period": {"from": args.start, "to": args.end},
                "n_incidents": 0,
                "n_hotspots": 0,
                "hotspots": [],
                "message": message,
            }
        )
    else:
        print(f"{args.method}: {message} ({area['label']} {area['id'] or ''})")
    return 0


def format_evaluation(summary: pd.DataFrame) -> str:
    """Return the summary as a Markdown table (means with standard deviations)."""
    lines = [
        "| segment | horizon | coverage | method | cut-offs | hit rate | PAI | PEI* | RRI |",
        "|---|---|---|---|---|---|---|---|---|",
    ]
    for row in summary.itertuples(index=False):
        cells = [
            f"{getattr(row, f'{m}_mean'):.3f} ± {getattr(row, f'{m}_sd'):.3f}"
            if m != "pai"
            else f"**{row.pai_mean:.2f}** ± {row.pai_sd:.2f}"
            for m in ("hit_rate", "pai", "pei_star", "rri")
        ]
        lines.append(
            f"| {row.segment} | {row.horizon} | {row.coverage:.0%} | {row.method} | "
            f"{row.cutoffs} | " + " | ".join(cells) + " |"
        )
    return "\n".join(lines) + "\n"


def run_evaluate(args: argparse.Namespace) -> int:
    """Run ``python -m analysis evaluate``."""
    store = inputs.open_store(args.store)
    incidents = inputs.load_hotspot_incidents(
        store,
        period_of(store, args.start, args.end),
        columns=(schema.X, schema.Y, schema.OCCURRED_AT),
    )
    results = evaluate.rolling_backtest(
        incidents,
        store.read_layer("beats"),
        methods=args.methods,
        coverages=args.coverages,
        cell_size_m=args.cell_size_m,
    )
    summary = evaluate.summarize_backtest(results)
    if args.markdown:
        Path(args.markdown).write_text(format_evaluation(summary), encoding="utf-8")
    if args.json:
        print_json({"summary": jsonable_records(summary), "cutoffs": jsonable_records(results)})
    else:
        print(format_evaluation(summary), end="")
    return 0


if __name__ == "__main__":  # pragma: no cover
    from analysis.cli import main

    sys.exit(main(["hotspots", *sys.argv[1:]]))
