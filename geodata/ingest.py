"""Ingest pipeline: read an export, validate, join to beats, store, and report what happened."""

from __future__ import annotations

import logging
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pandas as pd

from geodata import boundaries, schema, settings
from geodata.categories import (
    OffenseCategories,
    detect_vocabulary,
    load_vocabulary,
    unmapped_offenses,
)
from geodata.department import Department, adhoc_department, load_department
from geodata.errors import StoreError
from geodata.join import BeatIndex, assign_beats, join_agreement
from geodata.readers import REASONS, ColumnMapping, ReadResult, read_incidents, rejection_frame
from geodata.store import IncidentStore

__all__ = [
    "IngestReport",
    "build_sample_store",
    "ingest_file",
    "install_boundaries",
]

log = logging.getLogger(__name__)
#: ColumnMapping's default zone, which stands for "not given" (the store's zone applies).
_UNSET_TIMEZONE = ColumnMapping().timezone


@dataclass
class IngestReport:
    """What one ingest read, accepted, rejected and how well the join agreed."""

    source: str
    rows_read: int
    rows_accepted: int
    rows_rejected: int
    rejected_by_reason: dict[str, int]
    outside: int
    join_agreement: float | None
    join_agreement_geometric: float | None
    join_by_status: dict[str, list[float]]
    rows_new: int
    rows_replaced: int
    rejections_csv: str | None
    disagreements_csv: str | None
    notes: list[str] = field(default_factory=list)
    #: Rows whose offense no category names: ``vocabulary``, ``rows``, ``share``, ``top``.
    unmapped_offenses: dict[str, object] = field(default_factory=dict)

    def as_dict(self) -> dict[str, object]:
        """Return the report as a JSON-ready dict."""
        return dict(self.__dict__)

    def check(self) -> None:
        """Raise AssertionError unless read = accepted + rejected."""
        if self.rows_read != self.rows_accepted + self.rows_rejected:
            msg = (
                f"{self.source}: rows do not reconcile: read {self.rows_read} != accepted "
                f"{self.rows_accepted} + rejected {self.rows_rejected}"
            )
            raise AssertionError(msg)


def install_boundaries(
    store: IncidentStore,
    beats_path: str | Path,
    *,
    districts_path: str | Path | None = None,
    stations_path: str | Path | None = None,
    timezone: str | None = None,
    analysis_crs: str | None = None,
    department: Department | None = None,
) -> boundaries.BoundaryReport:
    """Read, check and store the beat layer (and districts and stations when given).

    The store records `department` (default: the store's own, for a store that has one) with
    its time zone and analysis CRS. Without a department, `timezone` is required and the
    layer's columns are auto-detected.

    Returns
    -------
    BoundaryReport
        The checks of the beat layer; problems are reported, never repaired.

    Raises
    ------
    StoreError
        If no time zone is known, or the store holds another zone or CRS.
    """
    if department is None and store.meta_path.exists() and store.meta().get("department"):
        department = store.department()
    if department is None:
        if timezone is None:
            timezone = store.meta().get("timezone") if store.meta_path.exists() else None
        if timezone is None:
            msg = (
                f"{store.root}: the time zone of the incidents is unknown; choose the "
                "department profile (--department, see docs/departments.md) or pass --timezone"
            )
            raise StoreError(msg)
        department = adhoc_department(timezone, name=Path(beats_path).stem)
        profile = None  # no profile: columns detected, numeric ids padded to the widest
    elif timezone is not None and timezone != department.timezone:
        msg = (
            f"{department.name} keeps its times in {department.timezone}, not {timezone}; "
            "leave out --timezone or change the department profile"
        )
        raise StoreError(msg)
    else:
        # a store installed without a profile keeps detecting its layer's columns and widths
        profile = None if department.detect_columns else department
    probe = boundaries.read_beats(beats_path, analysis_crs=analysis_crs, department=profile)
    crs = analysis_crs or (store.analysis_crs if store.meta_path.exists() else None)
    if crs is None:
        crs = boundaries.analysis_crs_for(probe, department)
    if probe.crs.to_string() != crs:
        probe = probe.to_crs(crs)
    record = department.with_analysis_crs(crs)
    store.initialize(analysis_crs=crs, timezone=record.timezone, department=record.to_dict())
    report = boundaries.check_beats(probe)
    layers = {"beats": probe}
    if districts_path is not None:
        layers["districts"] = boundaries.read_districts(
            districts_path, analysis_crs=crs, department=profile
        )
    else:
        layers["districts"] = boundaries.dissolve_districts(probe)
    if stations_path is not None:
        width = (
            profile.level(schema.DISTRICT).width
            if profile is not None and profile.has_level(schema.DISTRICT)
            else None
        )
        layers["stations"] = boundaries.read_stations(
            stations_path,
            district_width=width or None,
            analysis_crs=crs,
            columns=department.station_columns,
        )
    store.write_layers(layers)  # all layers or none
    meta = store.meta()
    meta["beats_source"] = str(beats_path)
    meta["boundary_report"] = report.summary()
    store._write_meta(meta)
    return report


def ingest_file(
    path: str | Path,
    store: IncidentStore,
    *,
    mapping: ColumnMapping | None = None,
    categories: OffenseCategories | None = None,
    buffer_m: float = 1000.0,
    prefer_reported: bool = True,
    index: BeatIndex | None = None,
) -> IngestReport:
    """Read an incident export, join it to the store's beats and upsert it into the store.

    Parameters
    ----------
    path
        The export (CSV, GeoJSON, GeoPackage, Shapefile, Parquet...).
    store
        A store with a beat layer (see :func:`install_boundaries`).
    mapping
        Explicit column roles/CRS/date format/time zone; unmapped roles are auto-detected.
        Default: the store's department profile's mapping.
    categories
        Offense-category mapping (default: the bundled one).
    buffer_m
        Points farther than this from every beat are rejected as outside the jurisdiction;
        points in no beat but within it are kept with beat ``outside``.
    prefer_reported
        Let the source's reported beat decide points on a shared beat edge.
    index
        A prebuilt BeatIndex of the store's beats.

    Returns
    -------
    IngestReport

    Raises
    ------
    InputError, SchemaError
        If the file cannot be read or lacks required columns.
    StoreError
        If the store has no beat layer.
    """
    if not store.exists():
        msg = (
            f"{store.root}: the store has no beat layer; pass --beats BEATS (or run "
            "`python -m geodata init` for the bundled Chicago data)"
        )
        raise StoreError(msg)
    path = Path(path)
    beats = store.read_layer("beats")
    department = store.department()
    if mapping is None:  # the department's own columns; naive times in its zone
        mapping = department.column_mapping()
    elif mapping.timezone == _UNSET_TIMEZONE and department.timezone != _UNSET_TIMEZONE:
        # a mapping that names no zone (the dataclass default): naive times are the store's
        mapping = replace(mapping, timezone=department.timezone)
    if categories is None and department.offense_vocabulary:
        categories = load_vocabulary(department.offense_vocabulary)
    result = read_incidents(
        path, mapping=mapping, analysis_crs=store.analysis_crs, categories=categories
    )
    categories = _settle_vocabulary(result, categories)
    if result.mapping.timezone != store.timezone:
        result.notes.append(
            f"timestamps read in {result.mapping.timezone}, stored in {store.timezone}"
        )
    index = index or BeatIndex(beats, tolerance_m=department.edge_tolerance_m)
    incidents = result.incidents
    rejected = result.rejected
    # far outside the jurisdiction: a rejected row, not "outside"
    lookup = index.lookup(incidents[schema.X].to_numpy(), incidents[schema.Y].to_numpy())
    candidates = np.flatnonzero(lookup.beat_index < 0)
    if candidates.size:
        distance = index.distance_to_jurisdiction(
            incidents[schema.X].to_numpy()[candidates], incidents[schema.Y].to_numpy()[candidates]
        )
        far = candidates[distance > buffer_m]
        if far.size:
            x_col = (
                result.mapping.x
                if result.mapping.crs or not result.mapping.lat
                else (result.mapping.lon)
            )
            far_rows = pd.DataFrame(
                {
                    "source": result.source,
                    "line": incidents[schema.SOURCE_LINE].to_numpy()[far],
                    "column": x_col or "",
                    "value": [
                        f"{d:,.0f} m from the nearest beat" for d in distance[distance > buffer_m]
                    ],
                    "reason": REASONS["outside_jurisdiction"],
                }
            )
            rejected = pd.concat(
                [rejected, rejection_frame(far_rows.to_dict("records"))], ignore_index=True
            )
            incidents = incidents.drop(index=incidents.index[far]).reset_index(drop=True)
    geometric = assign_beats(incidents, beats, index=index, prefer_reported=False)
    joined = assign_beats(incidents, beats, index=index, prefer_reported=prefer_reported)
    agreement = join_agreement(joined)
    agreement_geometric = join_agreement(geometric)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    store.reports_dir.mkdir(parents=True, exist_ok=True)
    stem = path.name.split(".")[0]
    rejections_csv = store.reports_dir / f"{stem}-{stamp}-rejected.csv"
    rejected.sort_values("line").to_csv(rejections_csv, index=False)
    disagreements_csv = None
    if agreement["n"]:
        differ = joined[
            joined[schema.REPORTED_BEAT].notna()
            & (joined[schema.BEAT] != joined[schema.REPORTED_BEAT])
        ]
        disagreements_csv = store.reports_dir / f"{stem}-{stamp}-disagreements.csv"
        differ[
            [
                schema.SOURCE_LINE,
                schema.INCIDENT_ID,
                schema.BLOCK,
                schema.REPORTED_BEAT,
                schema.BEAT,
                schema.JOIN_STATUS,
                schema.LON,
                schema.LAT,
            ]
        ].to_csv(disagreements_csv, index=False)
    unmapped = unmapped_offenses(
        joined[schema.OFFENSE], categories, joined[schema.FBI_CODE] if len(joined) else None
    )
    rejected_by_reason = {str(k): int(v) for k, v in rejected["reason"].value_counts().items()}
    # the summary is committed with the rows: one store version per ingest
    source = {
        "file": str(path),
        "ingested": stamp,
        "rows_read": result.rows_read,
        "rows_accepted": len(joined),
        "rows_rejected": len(rejected),
        "rejected_by_reason": rejected_by_reason,
        "outside": int((joined[schema.BEAT] == schema.OUTSIDE).sum()),
        "join_agreement": agreement["agreement"],
        "join_agreement_geometric": agreement_geometric["agreement"],
        "rejections_csv": str(rejections_csv),
        "disagreements_csv": str(disagreements_csv) if disagreements_csv else None,
    }
    new, replaced = store.upsert_batches([joined], source=source)
    report = IngestReport(
        source=str(path),
        rows_read=result.rows_read,
        rows_accepted=len(joined),
        rows_rejected=len(rejected),
        rejected_by_reason={str(k): int(v) for k, v in rejected["reason"].value_counts().items()},
        outside=int((joined[schema.BEAT] == schema.OUTSIDE).sum()),
        join_agreement=agreement["agreement"],
        join_agreement_geometric=agreement_geometric["agreement"],
        join_by_status=agreement["by_status"],
        rows_new=int(new),
        rows_replaced=int(replaced),
        rejections_csv=str(rejections_csv),
        disagreements_csv=str(disagreements_csv) if disagreements_csv else None,
        notes=result.notes,
        unmapped_offenses=unmapped,
    )
    report.check()
    log.info("ingested %s: %d read, %d accepted", path, report.rows_read, report.rows_accepted)
    return report


def _settle_vocabulary(
    result: ReadResult, categories: OffenseCategories | None
) -> OffenseCategories:
    """Return the vocabulary of `result`: the given one, else the bundled one its offenses fit.

    Without a given vocabulary the rows were categorised with the default one; when another
    bundled vocabulary names more of them (NIBRS codes, UCR names) they are categorised again.
    """
    if categories is not None:
        return categories
    incidents = result.incidents
    name = detect_vocabulary(incidents[schema.OFFENSE], incidents[schema.FBI_CODE])
    vocabulary = load_vocabulary(name)
    if name is not None and vocabulary.name != load_vocabulary(None).name:
        category, sensitive = vocabulary.categorize(
            incidents[schema.OFFENSE],
            incidents[schema.DESCRIPTION],
            incidents[schema.DOMESTIC],
            codes=incidents[schema.FBI_CODE],
        )
        incidents[schema.CATEGORY] = category
        incidents[schema.IS_SENSITIVE] = sensitive | incidents[schema.IS_SENSITIVE]
        result.notes.append(f"offense vocabulary detected: {name}")
    return vocabulary


def build_sample_store(
    store: IncidentStore,
    samples_dir: str | Path | None = None,
    *,
    department: Department | str | Path | None = None,
) -> list[IngestReport]:
    """Create a store from a department's bundled sample (beats, districts, stations, incidents).

    Parameters
    ----------
    store
        The store to fill.
    samples_dir
        A directory holding the profile's sample files under the same names (default: where the
        profile points).
    department
        A :class:`Department`, a bundled name or a profile path (default: the default
        department of :mod:`geodata.settings`, Chicago).

    Returns
    -------
    list of IngestReport
        One per incident file.
    """
    dept = load_department(department or settings.DEFAULT_DEPARTMENT)

    def located(path: Path) -> Path:
        return Path(samples_dir) / path.name if samples_dir else path

    def located_if_any(path: Path | None) -> Path | None:
        return None if path is None else located(path)

    if dept.beats_file is None:
        msg = f"{dept.source}: the department profile names no beat layer ([beats] file)"
        raise StoreError(msg)
    district_layer = dept.level(schema.DISTRICT).layer if dept.has_level(schema.DISTRICT) else None
    install_boundaries(
        store,
        located(dept.beats_file),
        districts_path=located_if_any(district_layer),
        stations_path=located_if_any(dept.stations_file),
        department=dept,
    )
    index = BeatIndex(store.read_layer("beats"), tolerance_m=dept.edge_tolerance_m)
    mapping = dept.column_mapping()
    reports = [
        ingest_file(located(path), store, index=index, mapping=mapping)
        for path in dept.incident_files
    ]
    if dept.call_files:  # calls for service, the second record kind
        from geodata.calls import CallMapping, ingest_calls

        if dept.call_mapping is None:
            msg = f"{dept.source}: [calls] names files but no mapping to read them"
            raise StoreError(msg)
        call_mapping = CallMapping.from_file(dept.call_mapping)
        for path in dept.call_files:
            ingest_calls(located(path), store, mapping=call_mapping)
    return reports
