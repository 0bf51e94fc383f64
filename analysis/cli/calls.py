"""``python -m analysis calls-areas`` and ``calls-review``: calls for service on the command line.

``calls-review`` compares an area's calls over a CompStat window with the period before: counts
with the exact Poisson test, response times by beat (which got worse), by priority and by hour,
and time on task. ``calls-areas``: approximate area polygons from the areas calls report.

For a department whose calls name a patrol area (a sector) that has no published polygons: the
parent polygons (precincts) are cut into grid units and each unit goes to the area most of its
located calls report (:func:`analysis.calls.areas_from_calls`). The result is a beat layer in
WGS84 with the canonical ``beat`` and ``district`` columns, ready for a department profile, and
the share of located calls it places in their own area is printed.
"""

from __future__ import annotations

import argparse
import json
from datetime import timedelta
from pathlib import Path

import geopandas as gpd
import pandas as pd

from analysis import inputs
from analysis.calls import areas_from_calls, review_calls, review_days
from analysis.cli.common import (
    add_area_arguments,
    area_id,
    chosen_area,
    day_argument,
    print_json,
)
from geodata import schema
from geodata.calls import RECEIVED_AT, load_calls
from geodata.department import adhoc_department, load_department
from geodata.errors import InputError

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the ``calls-areas`` and ``calls-review`` commands."""
    review = sub.add_parser("calls-review", help="an area's calls for service against before")
    add_area_arguments(review, help_text="the {level} to review (default: everywhere)")
    review.add_argument("--as-of", type=day_argument, help="last day (default: the latest call)")
    review.add_argument("--window", default="28d", choices=["7d", "28d", "ytd", "365d"])
    review.add_argument("--target-min", type=float, help="response-time target (minutes)")
    review.add_argument("--store", help="store directory (default: the data directory's)")
    review.add_argument("--json", action="store_true", help="print JSON")
    review.set_defaults(func=_run_review)

    areas = sub.add_parser(
        "calls-areas", help="approximate area polygons from the areas calls report"
    )
    areas.add_argument("--calls", required=True, type=Path, help="CAD export (CSV)")
    areas.add_argument("--parents", required=True, type=Path, help="parent polygons (precincts)")
    areas.add_argument("--parent-column", required=True, help="parent id column of --parents")
    areas.add_argument("--area-column", required=True, help="the calls' reported area column")
    areas.add_argument("--lon", default="Longitude", help="longitude column of the calls")
    areas.add_argument("--lat", default="Latitude", help="latitude column of the calls")
    areas.add_argument("--cell-size", type=float, default=300.0, help="unit side (m)")
    areas.add_argument(
        "--department",
        help="bundled department or profile file whose id rules the precinct and area ids "
        "follow (default: numbers without leading zeros, text upper-cased, areas as written)",
    )
    areas.add_argument("--out", required=True, type=Path, help="GeoJSON to write")
    areas.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    calls = pd.read_csv(args.calls, dtype=str, keep_default_na=False)
    missing = [c for c in (args.lon, args.lat, args.area_column) if c not in calls.columns]
    if missing:
        msg = f"{args.calls}: no column {missing}; the columns are {list(calls.columns)}"
        raise InputError(msg, path=args.calls)
    parents = gpd.read_file(args.parents)
    if args.parent_column not in parents.columns:
        msg = f"{args.parents}: no column {args.parent_column!r}"
        raise InputError(msg, path=args.parents)
    department = load_department(args.department) if args.department else None
    # ids enter here, by the department's rules: a parent with no id is no parent
    rules = department or adhoc_department("UTC")
    parents = parents.assign(
        **{schema.DISTRICT: rules.normalize_ids(schema.DISTRICT, parents[args.parent_column])}
    )
    parents = parents[parents[schema.DISTRICT].notna()]
    crs = parents.estimate_utm_crs()
    parents = parents.to_crs(crs)
    # coordinates that are not numbers (REDACTED, blank) are unlocated, not errors
    lon = pd.to_numeric(calls[args.lon], errors="coerce")
    lat = pd.to_numeric(calls[args.lat], errors="coerce")
    null_island = (lon == 0) & (lat == 0)  # a blank geocode written as 0, 0: not a place
    lon, lat = lon.mask(null_island), lat.mask(null_island)
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=schema.WGS84).to_crs(crs)
    frame = pd.DataFrame(
        {
            schema.X: points.x,
            schema.Y: points.y,
            "area": department.normalize_ids(schema.BEAT, calls[args.area_column])
            if department
            else calls[args.area_column].replace("", pd.NA),
        }
    )
    layer, share = areas_from_calls(parents, frame, area_column="area", cell_size_m=args.cell_size)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    layer.drop(columns=[schema.SECTOR]).to_crs(schema.WGS84).to_file(
        args.out, driver="GeoJSON", COORDINATE_PRECISION=6
    )
    located = int(frame[[schema.X, schema.Y, "area"]].notna().all(axis=1).sum())
    print(
        json.dumps(
            {
                "areas": len(layer),
                "calls": len(calls),
                "located_with_area": located,
                "match_share": round(share, 4),
                "out": str(args.out),
            }
        )
    )
    return 0


def _run_review(args: argparse.Namespace) -> int:
    store = inputs.open_store(args.store)
    department = store.department()
    level, typed = chosen_area(args)
    beats = store.read_layer("beats")
    chosen = None
    if level is not None and typed is not None:
        chosen = area_id(store, level, typed)
        beats = beats[beats[inputs.LEVEL_COLUMNS[level]] == chosen]
    latest = load_calls(store, columns=[RECEIVED_AT])[RECEIVED_AT]
    if latest.empty:
        msg = f"{store.root}: the store holds no calls for service (ingest them with --kind calls)"
        raise InputError(msg)
    as_of = args.as_of or latest.max().date()
    first, last = review_days(as_of, args.window)
    calls = load_calls(
        store,
        start=str(first),
        end=str(last + timedelta(days=1)),
        beats=sorted(beats[schema.BEAT]) if level else None,
    )
    by = schema.BEAT
    review = review_calls(
        calls, as_of=as_of, window=args.window, by=by, target_min=args.target_min,
        timezone=department.timezone,
    )  # fmt: skip
    area = f"{department.label(level)} {chosen}" if level else department.name
    if args.json:
        print_json(
            {
                "area": area,
                "window": {"name": review.window.name, "start": review.window.start,
                           "end": review.window.end},
                "counts": review.counts.to_dict(orient="records"),
                "response": review.response.to_dict(orient="records"),
                "by_type": review.by_type.head(10).to_dict(orient="records"),
                "by_priority": review.by_priority.to_dict(orient="records"),
                "by_hour": review.by_hour.to_dict(orient="records"),
            },
            digits=4,
        )  # fmt: skip
        return 0
    print(f"{area}: calls for service, {review.window.label} ({review.window.start} to "
          f"{review.window.end})")  # fmt: skip
    if review.response.empty:
        print("no calls in this period")
        return 0
    for row in review.response.itertuples(index=False):
        worse = "  <- response got worse" if row.worse else ""
        median = "-" if row.response_median_min is None else f"{row.response_median_min:.1f}"
        before = "-" if row.previous_median_min is None else f"{row.previous_median_min:.1f}"
        print(f"  {department.label('beat')} {getattr(row, by)}: {row.responded} responses, "
              f"median {median} min (before {before}){worse}")  # fmt: skip
    return 0
