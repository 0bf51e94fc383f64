"""Commands that build and inspect the store: ``init``, ``ingest``, ``check-beats``, ``info``.

``init`` builds the store from a department's bundled data (Chicago by default), ``ingest``
loads an incident export (calls for service: :mod:`geodata.cli.calls`), ``check-beats``
validates a beat layer and ``info`` says what the store holds.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from geodata import settings
from geodata.errors import StoreError

if TYPE_CHECKING:
    from geodata.department import Department
    from geodata.ingest import IngestReport
    from geodata.store import IncidentStore

__all__ = ["add_commands"]


def _add_store(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--store", help="incident store directory (default: $BEATS_DATA_DIR/store)")


def _cmd_init(args: argparse.Namespace) -> int:
    from geodata.cli.calls import print_calls_report
    from geodata.department import load_department
    from geodata.ingest import build_department_store
    from geodata.store import IncidentStore

    department = load_department(settings.department_name(args.department))
    store = IncidentStore(settings.store_dir(args.store))
    held = (store.count() + _n_calls(store)) if store.meta_path.exists() else 0
    if store.exists() and held and not args.force:
        print(
            f"{store.root}: store exists with {store.count():,} incidents and "
            f"{_n_calls(store):,} calls of {store.department().name} (use --force to rebuild)"
        )
        return 0
    # a store holding no records is what an init that did not finish leaves: it is rebuilt
    # from the profile given now, and removed again if this build fails too
    if store.meta_path.exists():
        _clear_store(store)
    try:
        built = build_department_store(store, department=department)
    except BaseException:
        if not held:
            _clear_store(store)
        raise
    if args.json:
        summary = [{"kind": "incidents", **r.as_dict()} for r in built.incidents]
        summary += [{"kind": "calls", **r.as_dict()} for r in built.calls]
        print(json.dumps(summary, indent=2, default=str))
        return 0
    print(f"{department.name} ({department.timezone}, {store.analysis_crs})")
    for r in built.incidents:
        agreement = "n/a" if r.join_agreement is None else f"{r.join_agreement:.2%}"
        print(
            f"{Path(r.source).name}: read {r.rows_read:,}, accepted {r.rows_accepted:,}, "
            f"rejected {r.rows_rejected:,}, join agreement {agreement}"
        )
        for reason, count in r.rejected_by_reason.items():
            print(f"  rejected: {reason}: {count:,}")
        for note in r.notes:
            print(f"  note: {note}")
    for c in built.calls:
        print_calls_report(c, as_json=False)
    print(f"store: {store.root} ({store.count():,} incidents, {_n_calls(store):,} calls)")
    return 0


def _n_calls(store: IncidentStore) -> int:
    """Return the calls for service the store holds (0 when it has none)."""
    from geodata.calls import calls_table

    table = calls_table(store)
    return table.count() if table.exists() else 0


def _clear_store(store: IncidentStore) -> None:
    """Remove a store's data before ``init --force`` rebuilds it (another department's, maybe)."""
    import shutil

    root = Path(store.root)
    if not (root / "meta.json").exists():
        return
    for child in root.iterdir():
        if child.name == ".lock":
            continue
        if child.is_dir():
            shutil.rmtree(child)
        else:
            child.unlink()


def _cmd_ingest(args: argparse.Namespace) -> int:
    if args.kind == "calls":
        from geodata.cli.calls import run_calls_ingest

        return run_calls_ingest(args)
    from geodata.categories import load_categories
    from geodata.department import load_department
    from geodata.ingest import ingest_file, install_boundaries, install_department
    from geodata.readers import ColumnMapping, merge_mapping
    from geodata.store import IncidentStore

    store = IncidentStore(settings.store_dir(args.store))
    department = load_department(args.department) if args.department else None
    if args.beats:
        boundary_report = install_boundaries(
            store,
            args.beats,
            stations_path=args.stations,
            districts_path=args.districts,
            timezone=args.timezone,
            department=department,
            beats_crs=args.beats_crs,
        )
        if not boundary_report.is_clean:
            problems = json.dumps(boundary_report.summary())
            print(f"warning: beat layer problems: {problems}", file=sys.stderr)
    elif not store.exists() and (department or Path(store.root) == settings.store_dir()):
        # a new store of a profile, or the default store of a fresh checkout: the profile's
        # (or the chosen department's) beat layer, districts and stations
        department = department or load_department(settings.department_name())
        if department.beats_file is None:
            msg = f"{department.source}: the profile names no beat layer; pass --beats BEATS"
            raise StoreError(msg)
        install_department(store, department)
    if store.meta_path.exists():
        department = store.department()
    mapping = department.column_mapping() if department else ColumnMapping()
    if args.mapping:
        mapping = merge_mapping(mapping, args.mapping)
    overrides = {}
    if args.crs:
        overrides["crs"] = args.crs
    if args.date_format:
        formats = tuple(args.date_format)
        overrides["date_format"] = formats[0] if len(formats) == 1 else formats
    if args.earliest_year is not None:
        overrides["earliest_year"] = args.earliest_year
    if args.timezone:
        overrides["timezone"] = args.timezone
    if overrides:
        from dataclasses import replace

        mapping = replace(mapping, **overrides)
    categories = load_categories(args.categories) if args.categories else None
    options: dict[str, Any] = {"mapping": mapping, "categories": categories}
    options.update(buffer_m=args.buffer_m, prefer_reported=not args.geometric)
    files = [args.file, *args.more]
    if args.scheduler:  # read and joined on a Dask cluster's workers; stored here
        from geodata.cluster import connect
        from geodata.distributed_ingest import ingest_files

        try:
            with connect(args.scheduler) as client:
                reports = ingest_files(files, store, client, **options)
        except ConnectionError as err:
            print(f"error: {err}", file=sys.stderr)
            return 2
    else:
        reports = [ingest_file(path, store, **options) for path in files]
    if args.json and len(reports) > 1:
        print(json.dumps([r.as_dict() for r in reports], indent=2, default=str))
        return 3 if any(r.rows_accepted == 0 for r in reports) else 0
    return max(_print_report(report, args) for report in reports)


def _print_report(report: IngestReport, args: argparse.Namespace) -> int:
    """Print one file's ingest report; return the exit code (3: nothing accepted)."""
    failed = report.rows_accepted == 0
    if failed:
        print(
            f"error: no row of {report.source} was accepted ({report.rows_read:,} read); "
            f"likely cause: {report.hint}",
            file=sys.stderr,
        )
    if args.json:
        print(json.dumps(report.as_dict(), indent=2, default=str))
        return 3 if failed else 0
    print(f"{report.source}")
    print(f"  rows read      {report.rows_read:>9,}")
    print(
        f"  accepted       {report.rows_accepted:>9,}  (new {report.rows_new:,}, "
        f"replaced {report.rows_replaced:,}; outside every beat {report.outside:,})"
    )
    print(f"  rejected       {report.rows_rejected:>9,}")
    for reason, count in report.rejected_by_reason.items():
        print(f"    {reason:<32} {count:>7,}")
    if report.join_agreement is not None:
        print(
            f"  join agreement with the reported beat: {report.join_agreement:.2%} "
            f"(purely geometric rule: {report.join_agreement_geometric:.2%})"
        )
    unmapped = report.unmapped_offenses
    if unmapped.get("rows"):
        # a list of {"offense", "rows"}, see geodata.categories.unmapped_offenses
        most = cast("list[dict[str, Any]]", unmapped["top"])
        top = ", ".join(f"{t['offense']} ({t['rows']:,})" for t in most[:5])
        print(
            f"  offenses in no category of the {unmapped['vocabulary']} vocabulary: "
            f"{unmapped['rows']:,} rows ({unmapped['share']:.1%}); most frequent: {top}"
        )
    if report.cluster_fallback:
        print(f"  read on this machine, not on the cluster: {report.cluster_fallback}")
    for note in report.notes:
        print(f"  note: {note}")
    print(f"  rejections: {report.rejections_csv}")
    if report.disagreements_csv:
        print(f"  disagreements: {report.disagreements_csv}")
    return 3 if failed else 0


def _cmd_check_beats(args: argparse.Namespace) -> int:
    from geodata.boundaries import check_beats, read_beats
    from geodata.department import load_department

    department = load_department(args.department) if args.department else None
    beats = read_beats(args.beats, department=department, layer_crs=args.crs)
    report = check_beats(beats)
    summary = {"analysis_crs": beats.crs.to_string(), **report.summary()}
    print(json.dumps(summary, indent=2, default=str))
    return 0 if report.is_clean else 1


def _cmd_info(args: argparse.Namespace) -> int:
    from geodata.store import IncidentStore

    store = IncidentStore(settings.store_dir(args.store))
    meta = store.meta()
    department = store.department()
    info = {
        "store": str(store.root),
        "department": department.name,
        "levels": [department.label(lv.key) for lv in department.levels],
        "areas": _area_counts(store, department),
        "incidents": store.count(),
        "calls": _n_calls(store),
        "analysis_crs": meta.get("analysis_crs"),
        "timezone": department.timezone,
        **{k: meta.get(k) for k in ("updated", "beats_source")},
    }
    if department.notes:
        info["notes"] = list(department.notes)
    print(json.dumps(info, indent=2, default=str))
    return 0


def _area_counts(store: IncidentStore, department: Department) -> dict[str, int]:
    """Return the number of areas of each level, under the department's own plural words."""
    if not store.has_layer("beats"):
        return {}
    beats = store.read_layer("beats")
    return {
        department.label(lv.key, plural=True): int(beats[lv.key].nunique())
        for lv in department.levels
    }


def add_commands(sub: argparse._SubParsersAction) -> None:
    """Register ``init``, ``ingest``, ``check-beats`` and ``info``."""
    init = sub.add_parser("init", help="build the store from a department's bundled data")
    init.add_argument(
        "--department",
        help="bundled department (chicago, seattle) or profile TOML "
        "(default: $BEATS_DEPARTMENT or chicago)",
    )
    _add_store(init)
    init.add_argument("--force", action="store_true", help="rebuild even if the store exists")
    init.add_argument("--json", action="store_true")
    init.set_defaults(func=_cmd_init)

    ingest = sub.add_parser("ingest", help="read, validate, join and store an incident export")
    ingest.add_argument("file", help="CSV(.gz), GeoJSON, GeoPackage, Shapefile or (Geo)Parquet")
    ingest.add_argument("more", nargs="*", metavar="FILE", help="further exports, one by one")
    ingest.add_argument(
        "--kind",
        choices=["incidents", "calls"],
        default="incidents",
        help="incident reports (default) or CAD calls for service",
    )
    ingest.add_argument("--beats", help="beat layer to install in the store first")
    ingest.add_argument(
        "--beats-crs", help="CRS of a beat layer that records none (a shapefile without .prj)"
    )
    ingest.add_argument(
        "--department", help="department profile of a new store (bundled name or TOML)"
    )
    ingest.add_argument("--districts", help="district layer (with --beats)")
    ingest.add_argument("--stations", help="police stations CSV (with --beats)")
    ingest.add_argument("--mapping", help="TOML column mapping (see docs/mapping.example.toml)")
    ingest.add_argument("--crs", help="CRS of x/y columns, e.g. EPSG:2926 (state-plane feet)")
    ingest.add_argument(
        "--date-format",
        action="append",
        help="strptime format of the date column (repeat to try several, in order)",
    )
    ingest.add_argument(
        "--earliest-year",
        type=int,
        help="reject dates before 1 January of this year (default 1990)",
    )
    ingest.add_argument(
        "--timezone", help="zone of naive times (default: the department's, e.g. Europe/London)"
    )
    ingest.add_argument("--categories", help="offense-category TOML (default: bundled)")
    ingest.add_argument(
        "--buffer-m",
        type=float,
        default=1000.0,
        help="reject points farther than this from every beat (default 1000)",
    )
    ingest.add_argument(
        "--geometric",
        action="store_true",
        help="decide edge points geometrically, ignoring the reported beat",
    )
    ingest.add_argument(
        "--scheduler",
        default=settings.scheduler_address(),
        help="read and join on the workers of this dask.distributed scheduler (default: "
        "BEATS_DASK_SCHEDULER; none: this machine)",
    )
    ingest.add_argument("--json", action="store_true", help="print one JSON object")
    _add_store(ingest)
    ingest.set_defaults(func=_cmd_ingest)

    check = sub.add_parser("check-beats", help="report invalid polygons, overlaps, gaps, sectors")
    check.add_argument("beats")
    check.add_argument(
        "--department", help="profile whose columns, ids and CRS apply (default: detected)"
    )
    check.add_argument("--crs", help="CRS of a layer that records none (a shapefile without .prj)")
    check.set_defaults(func=_cmd_check_beats)

    info = sub.add_parser("info", help="what the store holds")
    _add_store(info)
    info.set_defaults(func=_cmd_info)
