"""``python -m analysis calls-areas``: approximate area polygons from the areas calls report.

For a department whose calls name a patrol area (a sector) that has no published polygons: the
parent polygons (precincts) are cut into grid units and each unit goes to the area most of its
located calls report (:func:`analysis.calls.areas_from_calls`). The result is a beat layer in
WGS84 with the canonical ``beat`` and ``district`` columns, ready for a department profile, and
the share of located calls it places in their own area is printed.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import geopandas as gpd
import pandas as pd

from analysis.calls import areas_from_calls
from geodata import schema
from geodata.errors import InputError

__all__ = ["add_commands"]


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register the ``calls-areas`` command."""
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
    crs = parents.estimate_utm_crs()
    parents = parents.to_crs(crs)
    parents[schema.DISTRICT] = parents[args.parent_column].astype(str)
    # coordinates that are not numbers (REDACTED, blank) are unlocated, not errors
    lon = pd.to_numeric(calls[args.lon], errors="coerce")
    lat = pd.to_numeric(calls[args.lat], errors="coerce")
    points = gpd.GeoSeries(gpd.points_from_xy(lon, lat), crs=schema.WGS84).to_crs(crs)
    frame = pd.DataFrame(
        {
            schema.X: points.x,
            schema.Y: points.y,
            "area": calls[args.area_column].replace("", pd.NA),
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
