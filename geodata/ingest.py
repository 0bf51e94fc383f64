"""Ingest pipeline: read an export, validate, join to beats, store, and report what happened."""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyproj

from geodata import boundaries, schema, settings
from geodata._idkernel import hash_strings, in_background, warm_up_soon
from geodata.categories import (
    OffenseCategories,
    detect_vocabulary,
    load_vocabulary,
)
from geodata.dates import EPOCH_SECONDS, TWO_DIGIT_YEAR
from geodata.department import Department, adhoc_department, load_department
from geodata.errors import BoundaryError, StoreError
from geodata.exports import write_csv, write_csv_table
from geodata.join import (
    STATUS_CODES,
    BeatIndex,
    JoinResult,
    reported_beats,
    with_beats,
)
from geodata.readers import (
    BLOCK_BYTES,
    REASONS,
    ColumnMapping,
    RaggedRecords,
    ReadResult,
    categorize_distinct,
    column_as_named,
    duplicate_ids,
    duplicate_value,
    iter_incidents,
    prefetched,
)
from geodata.rejections import RejectionLog
from geodata.store import IncidentStore

if TYPE_CHECKING:
    from geodata.calls import CallsReport

__all__ = [
    "BatchTally",
    "IngestReport",
    "JoinedPart",
    "PartOfFile",
    "StoreBuild",
    "build_department_store",
    "build_sample_store",
    "ingest_file",
    "ingest_joined_parts",
    "install_boundaries",
    "install_department",
    "write_incident_batches",
]

log = logging.getLogger(__name__)
#: ColumnMapping's default zone, which stands for "not given" (the store's zone applies).
_UNSET_TIMEZONE = ColumnMapping().timezone
_STRING = pd.StringDtype("pyarrow")


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
    #: When no row was accepted: the likely cause, read from the rejected rows.
    hint: str | None = None
    #: When an ingest on a Dask cluster read this file on this machine instead: why.
    cluster_fallback: str | None = None

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
    beats_crs: str | None = None,
) -> boundaries.BoundaryReport:
    """Read, check and store the beat layer (and districts and stations when given).

    The store records `department` (default: the store's own, for a store that has one) with
    its time zone and analysis CRS. Without a department, `timezone` is required and the
    layer's columns are auto-detected. `beats_crs` is the beat layer's CRS when its file records
    none (default: the department's ``[beats] crs``).

    Every layer is read and checked before anything in the store changes: a layer that cannot
    serve as beats (empty, not polygons, features without geometry, invalid polygons) raises and
    leaves an existing store's layers as they were.

    Returns
    -------
    BoundaryReport
        The checks of the beat layer; overlaps and gaps are reported, never repaired.

    Raises
    ------
    StoreError
        If no time zone is known, or the store holds another zone or CRS.
    BoundaryError
        If the layer holds invalid polygons (the message lists them with GEOS's reason).
    InputError
        If a layer cannot be read or is not a polygon layer.
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
    probe = boundaries.read_beats(
        beats_path,
        analysis_crs=analysis_crs,
        department=profile,
        layer_crs=beats_crs or department.beats_crs,
    )
    crs = analysis_crs or (store.analysis_crs if store.meta_path.exists() else None)
    if crs is None:
        crs = boundaries.analysis_crs_for(probe, department)
    if probe.crs.to_string() != crs:
        probe = probe.to_crs(crs)
    report = boundaries.check_beats(probe)
    if not report.invalid.empty:
        listed = "; ".join(
            f"beat {row.beat}: {row.reason}" for row in report.invalid.head(10).itertuples()
        )
        more = f" (and {len(report.invalid) - 10} more)" if len(report.invalid) > 10 else ""
        msg = (
            f"{beats_path}: {len(report.invalid)} beat polygon(s) are invalid, so the layer "
            f"cannot be used and nothing in the store was changed: {listed}{more}. Repair them "
            "(e.g. QGIS 'Fix geometries') and check with `python -m geodata check-beats`."
        )
        raise BoundaryError(msg)
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
    record = department.with_analysis_crs(crs)
    store.initialize(analysis_crs=crs, timezone=record.timezone, department=record.to_dict())
    store.write_layers(layers)  # all layers or none
    meta = store.meta()
    meta["beats_source"] = str(beats_path)
    meta["boundary_report"] = report.summary()
    store._write_meta(meta)
    return report


def install_department(store: IncidentStore, department: Department) -> None:
    """Install a department profile's own boundaries into `store`.

    Its beat layer, the district level's layer (when the profile has one) and its stations,
    through :func:`install_boundaries`; the profile must name a beat layer.
    """
    assert department.beats_file is not None, "the profile names no beat layer"
    layer = department.level("district").layer if department.has_level("district") else None
    install_boundaries(
        store,
        department.beats_file,
        districts_path=layer,
        stations_path=department.stations_file,
        department=department,
    )


def write_incident_batches(
    store: IncidentStore, batches: Iterable[pd.DataFrame], *, source: dict | None = None
) -> tuple[int, int]:
    """Commit joined incident batches to `store` as one version; return ``(new, replaced)``.

    The store consumes the batches one at a time inside one transaction
    (``IncidentStore.upsert_batches``); `source`, the ingest summary committed with them, may be
    filled in while the batches are produced.
    """
    return store.upsert_batches(batches, source=source)


_DISAGREEMENT_COLUMNS = [
    schema.SOURCE_LINE,
    schema.INCIDENT_ID,
    schema.BLOCK,
    schema.REPORTED_BEAT,
    schema.BEAT,
    schema.JOIN_STATUS,
    schema.LON,
    schema.LAT,
]
_SAMPLE = 200


@dataclass
class _Tally:
    """What the batches of one file add up to: counts, rejections, agreement, disagreements."""

    rows_read: int = 0
    rows_accepted: int = 0
    outside: int = 0
    rejected: RejectionLog = field(default_factory=lambda: RejectionLog(by_line=True))
    #: Where the rows whose reported beat differs go, batch by batch (None: not yet written).
    disagreements_csv: Path | None = None
    disagreements_path: Path | None = None
    n_reported: int = 0
    same: int = 0
    same_geometric: int = 0
    by_status: dict[str, list[int]] = field(default_factory=dict)
    far_lon: list[np.ndarray] = field(default_factory=list)
    far_lat: list[np.ndarray] = field(default_factory=list)
    first: ReadResult | None = None
    #: The offense vocabulary: given, or settled on the first batch (see `_settle_vocabulary`).
    categories: OffenseCategories | None = None
    recategorize: bool = False
    unmapped_rows: int = 0
    unmapped_top: dict[str, int] = field(default_factory=dict)
    #: Per (offense, code) seen: the offense as reported when no category names it, else None.
    unmapped_of: dict[tuple[str | None, str | None], str | None] = field(default_factory=dict)

    def add(
        self,
        part: ReadResult,
        beats: pd.DataFrame,
        index: BeatIndex,
        *,
        buffer_m: float,
        prefer_reported: bool,
    ) -> pd.DataFrame:
        """Join one batch, count it, and return the rows to store."""
        if self.first is None:
            self.first = part
            self.categories, self.recategorize = _settle_vocabulary(part, self.categories)
        assert self.categories is not None
        self.rows_read += part.rows_read
        incidents = part.incidents
        if self.recategorize and len(incidents):
            category, sensitive = categorize_distinct(self.categories, incidents)
            incidents[schema.CATEGORY] = category
            incidents[schema.IS_SENSITIVE] = sensitive | incidents[schema.IS_SENSITIVE].to_numpy()
        rejected = [part.rejected]
        x = incidents[schema.X].to_numpy()
        y = incidents[schema.Y].to_numpy()
        # one lookup decides the stored beats; the geometric rule's beats (for the agreement
        # figure) differ only on edge points the reported beat decided, looked up again alone
        reported = reported_beats(incidents, index)
        result = index.lookup(
            x,
            y,
            reported=None if reported is None else reported.array,
            prefer_reported=prefer_reported,
        )
        geometric = result.beat_index
        if reported is not None and prefer_reported:
            edge = np.flatnonzero(result.status == STATUS_CODES["edge"])
            if edge.size:
                geometric = geometric.copy()
                geometric[edge] = index.lookup(x[edge], y[edge]).beat_index
        candidates = np.flatnonzero(geometric < 0)
        keep = np.ones(len(incidents), dtype=bool)
        if candidates.size:
            distance = index.distance_to_jurisdiction(x[candidates], y[candidates])
            far = candidates[distance > buffer_m]
            if far.size:
                keep[far] = False
                mapping = part.mapping
                column = mapping.x if mapping.crs or not mapping.lat else mapping.lon
                metres = np.round(distance[distance > buffer_m]).astype(np.int64)
                rejected.append(
                    _rejected_frame(
                        part.source,
                        incidents[schema.SOURCE_LINE].to_numpy()[far],
                        column_as_named(column or ""),
                        pd.Series(metres).map("{:,} m from the nearest beat".format).to_numpy(),
                        REASONS["outside_jurisdiction"],
                    )
                )
                if sum(len(a) for a in self.far_lon) < _SAMPLE:
                    self.far_lon.append(incidents[schema.LON].to_numpy()[far][:_SAMPLE])
                    self.far_lat.append(incidents[schema.LAT].to_numpy()[far][:_SAMPLE])
                incidents = incidents[keep].reset_index(drop=True)
                result = JoinResult(result.beat_index[keep], result.status[keep], result.n_exact)
                geometric = geometric[keep]
                if reported is not None:
                    reported = reported[keep].reset_index(drop=True)
        self.rejected.extend(r for r in rejected if len(r))
        # the part's frame is the ingest's own: the beats are set on it, not on a copy
        joined = with_beats(incidents, beats, index, result, reported)
        self.rows_accepted += len(joined)
        if len(joined):
            self._count_unmapped(joined)
        beat = joined[schema.BEAT].array.__arrow_array__()  # the Arrow data, not copied
        self.outside += int(pc.sum(pc.equal(beat, schema.OUTSIDE)).as_py() or 0)
        if reported is not None and len(joined):
            reported_text = reported.array.__arrow_array__()
            has = reported_text.is_valid().to_numpy(zero_copy_only=False)
            same = pc.fill_null(pc.equal(beat, reported_text), False)
            same = same.to_numpy(zero_copy_only=False)
            beat_ids = self._beat_ids(index)
            at = np.where(geometric >= 0, geometric, len(beat_ids) - 1)
            geometric_beat = beat_ids.take(pa.array(at))
            same_geometric = pc.fill_null(pc.equal(geometric_beat, reported_text), False)
            self.n_reported += int(has.sum())
            self.same += int(same[has].sum())
            self.same_geometric += int(same_geometric.to_numpy(zero_copy_only=False)[has].sum())
            status = result.status
            for name in schema.JOIN_STATUSES:
                mask = has & (status == STATUS_CODES[name])
                if mask.any():
                    counts = self.by_status.setdefault(name, [0, 0])
                    counts[0] += int(mask.sum())
                    counts[1] += int(same[mask].sum())
            differ = has & ~same
            if differ.any():
                # the rows as Arrow columns, filtered there (not a pandas .loc, then Arrow)
                columns = {
                    name: pa.array(joined[name], from_pandas=True) for name in _DISAGREEMENT_COLUMNS
                }
                self._add_disagreements(pa.table(columns).filter(pa.array(differ)))
        return joined

    def _beat_ids(self, index: BeatIndex) -> pa.Array:
        """Return the index's beat ids then ``outside``, as Arrow strings (made once)."""
        cached = getattr(self, "_ids_of", None)
        if cached is None or cached[0] is not index:
            cached = self._ids_of = (
                index,
                pa.array([*map(str, index.beat_ids), schema.OUTSIDE], pa.string()),
            )
        return cached[1]

    def _count_unmapped(self, joined: pd.DataFrame) -> None:
        """Count the rows whose offense no category names, once per distinct (offense, code).

        The rule of ``categories.unmapped_offenses``; each pair is looked up in the vocabulary
        once per file (`unmapped_of`), its rows counted with Arrow's group-by.
        """
        pairs = (
            pa.table(
                {
                    "offense": pa.array(joined[schema.OFFENSE].array, pa.string()),
                    "code": pa.array(joined[schema.FBI_CODE].array, pa.string()),
                }
            )
            .group_by(["offense", "code"], use_threads=False)
            .aggregate([([], "count_all")])
        )
        offenses = pairs.column("offense").to_pylist()
        codes = pairs.column("code").to_pylist()
        rows = pairs.column("count_all").to_pylist()
        new = [
            (o, c) for o, c in dict.fromkeys(zip(offenses, codes, strict=True))
            if (o, c) not in self.unmapped_of
        ]  # fmt: skip
        if new and self.categories is not None:
            offense = pd.Series([o for o, _ in new], dtype=_STRING)
            keys = self.categories.keys(offense, pd.Series([c for _, c in new], dtype=_STRING))
            named = keys.isin(self.categories.category_of.keys())
            unmapped = ~named.to_numpy(dtype=bool, na_value=False)
            values = offense.str.strip().fillna("").tolist()
            for pair, missing, value in zip(new, unmapped, values, strict=True):
                self.unmapped_of[pair] = str(value) if missing else None
        for pair, n in zip(zip(offenses, codes, strict=True), rows, strict=True):
            value = self.unmapped_of[pair]
            if value is not None:
                self.unmapped_rows += int(n)
                self.unmapped_top[value] = self.unmapped_top.get(value, 0) + int(n)

    def _add_disagreements(self, table: pa.Table) -> None:
        """Append rows to the disagreements file (so that memory does not hold them)."""
        if self.disagreements_path is None:
            return
        if self.disagreements_csv is None:
            self.disagreements_csv = write_csv_table(table, self.disagreements_path)
        else:
            write_csv_table(table, self.disagreements_csv, append=True)

    def unmapped(self) -> dict[str, object]:
        """Return the unmapped offenses of the whole file, as ``unmapped_offenses`` does."""
        top = sorted(self.unmapped_top.items(), key=lambda item: (-item[1], item[0]))[:10]
        return {
            "vocabulary": self.categories.name if self.categories is not None else None,
            "rows": self.unmapped_rows,
            "share": self.unmapped_rows / self.rows_accepted if self.rows_accepted else 0.0,
            "top": [{"offense": k, "rows": v} for k, v in top],
        }


def _rejected_frame(
    source: str, lines: np.ndarray, column: str, values: np.ndarray, reason: str
) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "source": pd.array([source] * len(lines), dtype="string"),
            "line": np.asarray(lines, dtype=np.int64),
            "column": pd.array([column] * len(lines), dtype="string"),
            "value": pd.array(values.astype(object), dtype="string"),
            "reason": pd.array([reason] * len(lines), dtype="string"),
        }
    )


def _settle_vocabulary(
    part: ReadResult, categories: OffenseCategories | None
) -> tuple[OffenseCategories, bool]:
    """Return the vocabulary of a file and whether its batches must be categorised again.

    A given vocabulary is used as it is. Without one the reader categorised with the default;
    when another bundled vocabulary names more of the first batch's offenses (NIBRS codes, UCR
    names), that one is used for every batch.
    """
    if categories is not None:
        return categories, False
    incidents = part.incidents
    name = detect_vocabulary(incidents[schema.OFFENSE], incidents[schema.FBI_CODE])
    vocabulary = load_vocabulary(name)
    if name is not None and vocabulary.name != load_vocabulary(None).name:
        part.notes.append(f"offense vocabulary detected: {name}")
        return vocabulary, True
    return vocabulary, False


def _run(
    path: Path,
    store: IncidentStore,
    beats: pd.DataFrame,
    index: BeatIndex,
    parts: Iterator[ReadResult],
    categories: OffenseCategories | None,
    buffer_m: float,
    prefer_reported: bool,
    tally_type: Callable[..., _Tally] = _Tally,
) -> tuple[_Tally, dict[str, object], int, int]:
    """Join and store the batches `parts` of `path` as one version; return what they added up to."""
    tally = tally_type(categories=categories)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%S")
    stem = path.name.split(".")[0]
    source: dict[str, object] = {"file": str(path), "ingested": stamp}
    tally.disagreements_path = store.reports_dir / f"{stem}-{stamp}-disagreements.csv"

    def joined() -> Iterator[pd.DataFrame]:
        for part in parts:
            batch = tally.add(
                part, beats, index, buffer_m=buffer_m, prefer_reported=prefer_reported
            )
            if len(batch):
                yield batch
        # the whole file is read: write its reports and the summary the store commits
        rejected = tally.rejected
        rejections_csv = rejected.write_csv(store.reports_dir / f"{stem}-{stamp}-rejected.csv")
        disagreements_csv = tally.disagreements_csv
        if tally.n_reported and disagreements_csv is None:  # none differed: the header alone
            assert tally.disagreements_path is not None
            empty = pd.DataFrame(columns=_DISAGREEMENT_COLUMNS)
            disagreements_csv = write_csv(empty, tally.disagreements_path)
        n = tally.n_reported
        source.update(
            {
                "rows_read": tally.rows_read,
                "rows_accepted": tally.rows_accepted,
                "rows_rejected": len(rejected),
                "rejected_by_reason": {str(k): int(v) for k, v in rejected.counts().items()},
                "outside": tally.outside,
                "join_agreement": tally.same / n if n else None,
                "join_agreement_geometric": tally.same_geometric / n if n else None,
                "rejections_csv": str(rejections_csv),
                "disagreements_csv": str(disagreements_csv) if disagreements_csv else None,
            }
        )

    try:
        new, replaced = write_incident_batches(store, joined(), source=source)
    except BaseException:  # a ragged record (read again with a new tally) or a failure
        tally.rejected.close()  # the rows on disk go now, not when the traceback is collected
        raise
    return tally, source, int(new), int(replaced)


def ingest_file(
    path: str | Path,
    store: IncidentStore,
    *,
    mapping: ColumnMapping | None = None,
    categories: OffenseCategories | None = None,
    buffer_m: float = 1000.0,
    prefer_reported: bool = True,
    index: BeatIndex | None = None,
    now: datetime | None = None,
    block_bytes: int = BLOCK_BYTES,
    reader: Callable[..., Iterator[Any]] = iter_incidents,
    tally_type: Callable[..., _Tally] = _Tally,
) -> IngestReport:
    """Read an incident export batch by batch, join it to the store's beats and upsert it.

    The file is streamed: each record batch is validated, joined and handed to the store, which
    commits the whole file, with its summary, as one version (nothing is stored when the file
    breaks part-way).

    Parameters
    ----------
    path
        The export (CSV, GeoJSON, GeoPackage, Shapefile, Parquet...).
    store
        A store with a beat layer (see :func:`install_boundaries`).
    mapping
        Explicit column roles/CRS/date formats/time zone/earliest year; unmapped roles are
        auto-detected. Default: the store's department profile's mapping.
    categories
        Offense-category mapping (default: the department's vocabulary, else detected).
    buffer_m
        Points farther than this from every beat are rejected as outside the jurisdiction;
        points in no beat but within it are kept with beat ``outside``.
    prefer_reported
        Let the source's reported beat decide points on a shared beat edge.
    index
        A prebuilt BeatIndex of the store's beats.
    now
        The present, for the plausible-date window (default: the clock).
    block_bytes
        Bytes of CSV per batch; memory is bounded by a few batches, whatever the file size.
    reader, tally_type
        What reads the file's batches (called as :func:`iter_incidents`) and what joins and
        counts each of them (a :class:`_Tally`); :mod:`geodata.distributed_ingest` gives its
        own, which read and join on a Dask cluster's workers.

    Returns
    -------
    IngestReport
        With ``hint`` set when no row was accepted.

    Raises
    ------
    InputError, SchemaError
        If the file cannot be read, lacks required columns or has ambiguous dates.
    StoreError
        If the store has no beat layer.
    """
    if not store.exists():
        msg = (
            f"{store.root}: the store has no beat layer; pass --beats BEATS (or run "
            "`python -m geodata init` for the bundled Chicago data)"
        )
        raise StoreError(msg)
    # numba (about 1 s) loads beside the first batch's read instead of inside it
    warm_up_soon()
    path = Path(path)
    department = store.department()
    if mapping is None:  # the department's own columns; naive times in its zone
        mapping = department.column_mapping()
    elif mapping.timezone == _UNSET_TIMEZONE and department.timezone != _UNSET_TIMEZONE:
        # a mapping that names no zone (the dataclass default): naive times are the store's
        mapping = replace(mapping, timezone=department.timezone)
    if categories is None and department.offense_vocabulary:
        categories = load_vocabulary(department.offense_vocabulary)

    # the reader's options, the same for both passes (a ragged file is read again exactly)
    given: dict[str, Any] = {"mapping": mapping, "categories": categories, "now": now}
    given["block_bytes"] = block_bytes
    read = partial(reader, path, analysis_crs=store.analysis_crs, **given)
    # each batch is read and validated on a second thread while the one before is joined and
    # stored; the first batch is read while the beat layer and its index load
    parts = prefetched(read(exact=False))
    try:
        beats = store.read_layer("beats")
        index = index or store.beat_index(tolerance_m=department.edge_tolerance_m)
        in_background(index.warm_up, name="join-warm-up")
        try:
            tally, source, new, replaced = _run(
                path, store, beats, index, parts, categories, buffer_m, prefer_reported, tally_type
            )
        except RaggedRecords:
            parts.close()
            parts = prefetched(read(exact=True))
            tally, source, new, replaced = _run(
                path, store, beats, index, parts, categories, buffer_m, prefer_reported, tally_type
            )
    finally:
        parts.close()
    first = tally.first
    assert first is not None  # every file yields at least its header batch
    notes = list(first.notes)
    if first.mapping.timezone != store.timezone:
        notes.append(f"timestamps read in {first.mapping.timezone}, stored in {store.timezone}")
    rejected = tally.rejected
    n = tally.n_reported
    report = IngestReport(
        source=str(path),
        rows_read=tally.rows_read,
        rows_accepted=tally.rows_accepted,
        rows_rejected=len(rejected),
        rejected_by_reason=source["rejected_by_reason"],  # type: ignore[arg-type]
        outside=tally.outside,
        join_agreement=tally.same / n if n else None,
        join_agreement_geometric=tally.same_geometric / n if n else None,
        join_by_status={s: [c[0], c[1] / c[0]] for s, c in tally.by_status.items()},
        rows_new=new,
        rows_replaced=replaced,
        rejections_csv=str(source["rejections_csv"]),
        disagreements_csv=source["disagreements_csv"],  # type: ignore[arg-type]
        notes=notes,
        unmapped_offenses=tally.unmapped(),
    )
    try:
        report.check()
        if report.rows_accepted == 0:
            report.hint = _hint(report, rejected, tally, first.mapping, index, buffer_m)
    finally:
        rejected.close()  # written to the report: the rows on disk go now
    log.info("ingested %s: %d read, %d accepted", path, report.rows_read, report.rows_accepted)
    return report


# --- why nothing was accepted ---------------------------------------------------------------

_SERIAL = re.compile(r"^\d{5}(\.\d+)?$")


def _share_inside(index: BeatIndex, x: np.ndarray, y: np.ndarray, buffer_m: float) -> float:
    finite = np.isfinite(x) & np.isfinite(y)
    if not finite.any():
        return 0.0
    distance = index.distance_to_jurisdiction(x[finite], y[finite])
    return float((distance <= buffer_m).sum() / len(x))


def _crs_candidates(index: BeatIndex) -> list[pyproj.CRS]:
    """Return projected EPSG systems whose area of use covers the beats."""
    from pyproj.aoi import AreaOfInterest
    from pyproj.database import query_crs_info
    from pyproj.enums import PJType

    to_wgs = pyproj.Transformer.from_crs(index.crs, schema.WGS84, always_xy=True)
    xs = [index.x0, index.x0 + index.nx * index.cell_size_m]
    ys = [index.y1 - index.ny * index.cell_size_m, index.y1]
    lon, lat = to_wgs.transform(np.array(xs), np.array(ys))
    area = AreaOfInterest(float(lon.min()), float(lat.min()), float(lon.max()), float(lat.max()))
    infos = query_crs_info(
        auth_name="EPSG", pj_types=PJType.PROJECTED_CRS, area_of_interest=area, contains=True
    )
    out = []
    for info in infos[:400]:
        try:
            out.append(pyproj.CRS.from_authority(info.auth_name, info.code))
        except pyproj.exceptions.CRSError:
            continue
    return out


def _coordinate_hint(
    tally: _Tally, mapping: ColumnMapping, index: BeatIndex, buffer_m: float
) -> str | None:
    lon = np.concatenate(tally.far_lon)[:_SAMPLE]
    lat = np.concatenate(tally.far_lat)[:_SAMPLE]
    from_wgs = pyproj.Transformer.from_crs(schema.WGS84, index.crs, always_xy=True)
    sx, sy = from_wgs.transform(lat, lon)
    if _share_inside(index, np.asarray(sx), np.asarray(sy), buffer_m) >= 0.8:
        return (
            "latitude and longitude look swapped: read the other way round, the points fall "
            f"inside the beats. Map the columns explicitly (lat = {mapping.lon!r}, lon = "
            f"{mapping.lat!r}) in a mapping file, or fix the export."
        )
    given = pyproj.CRS.from_user_input(mapping.crs or schema.WGS84)
    to_source = pyproj.Transformer.from_crs(schema.WGS84, given, always_xy=True)
    raw_x, raw_y = (np.asarray(v) for v in to_source.transform(lon, lat))
    fits = []
    for candidate in _crs_candidates(index):
        if candidate == given:
            continue
        try:
            to_analysis = pyproj.Transformer.from_crs(candidate, index.crs, always_xy=True)
            x, y = to_analysis.transform(raw_x, raw_y)
        except pyproj.exceptions.ProjError:
            continue
        if _share_inside(index, np.asarray(x), np.asarray(y), buffer_m) >= 0.8:
            fits.append(f"EPSG:{candidate.to_epsg()} ({candidate.name})")
        if len(fits) == 3:
            break
    distance = index.distance_to_jurisdiction(*from_wgs.transform(lon, lat))
    where = f"the points lie {np.nanmedian(distance) / 1000:,.0f} km (median) from the beats"
    if fits:
        return (
            f"wrong coordinate system? {where} read as {given.name}; read as "
            f"{' or '.join(fits)} they fall inside the beats: pass that --crs."
        )
    return (
        f"{where} read as {given.name}: check --crs (the EPSG code of the x/y columns) and the "
        "column mapping."
    )


def _hint(
    report: IngestReport,
    rejected: RejectionLog,
    tally: _Tally,
    mapping: ColumnMapping,
    index: BeatIndex,
    buffer_m: float,
) -> str:
    """Return the likely reason no row was accepted, read from what the rejected rows show."""
    if report.rows_read == 0:
        return "the file has a header but no records."
    top = next(iter(report.rejected_by_reason))  # the most frequent reason (value_counts' order)
    if top == REASONS["outside_jurisdiction"] and tally.far_lon:
        hint = _coordinate_hint(tally, mapping, index, buffer_m)
        if hint:
            return hint
    if top in (REASONS["bad_date"], REASONS["implausible_date"]):
        values = rejected.values(top, _SAMPLE).astype(str)
        serial = values[values.str.match(_SERIAL)]
        if len(serial) >= 0.5 * len(values):
            example = serial.iloc[0]
            day = pd.Timestamp("1899-12-30") + pd.Timedelta(days=float(example))
            return (
                f"the dates look like Excel serial day numbers ({example!r} is "
                f"{day:%Y-%m-%d %H:%M}): format the date column as text (e.g. 2024-01-31 "
                "14:05) in the spreadsheet before exporting it."
            )
        epoch = values[values.str.match(EPOCH_SECONDS)]
        if len(epoch) >= 0.5 * len(values):
            example = epoch.iloc[0]
            instant = pd.Timestamp(int(example), unit="s", tz="UTC")
            return (
                f"the dates look like Unix epoch seconds ({example!r} is "
                f"{instant:%Y-%m-%d %H:%M} UTC): pass --date-format %s."
            )
        short = values[values.str.match(TWO_DIGIT_YEAR)]
        if len(short) >= 0.5 * len(values):
            return (
                f"the years have two digits (e.g. {short.iloc[0]!r}): pass a format with %y, "
                "e.g. --date-format '%m/%d/%y %H:%M' (month first) or '%d/%m/%y %H:%M' (day "
                "first), with the time as the file writes it."
            )
    if top == REASONS["implausible_date"]:
        return (
            f"every date falls outside {mapping.earliest_year}-01-01 .. tomorrow: check the "
            "date column and its format (--date-format), or the earliest year of the "
            "department's records (earliest_year in the mapping)."
        )
    if top == REASONS["bad_date"]:
        example = rejected.values(top, 1).iloc[0]
        return (
            f"no date could be read (e.g. {example!r}): pass the format with --date-format "
            "(strptime codes, e.g. '%d.%m.%Y %H:%M')."
        )
    if top == REASONS["missing_coordinates"]:
        return (
            "the rows have no coordinates: geocode the addresses first, or map the columns "
            "that hold them."
        )
    if top == REASONS["bad_coordinates"]:
        return "the coordinate columns do not hold numbers: check the column mapping."
    if top == REASONS["out_of_range"]:
        example = rejected.values(top, 1).iloc[0]
        return (
            f"the coordinates are not longitudes and latitudes (e.g. {example!r} is out of "
            "range): if the columns hold projected x/y, map them as x and y and pass their "
            "--crs; if latitude and longitude are swapped, map them the other way round."
        )
    if top == REASONS["malformed"]:
        return (
            "the records do not have the header's number of fields: check the delimiter and "
            "the quoting of the export."
        )
    return f"every row was rejected, most as {top!r}: see the rejections file."


def build_sample_store(
    store: IncidentStore,
    samples_dir: str | Path | None = None,
    *,
    department: Department | str | Path | None = None,
) -> list[IngestReport]:
    """Create a store from a department's bundled sample; return the incident files' reports.

    :func:`build_department_store` without the calls reports (see there).
    """
    return build_department_store(store, samples_dir, department=department).incidents


@dataclass(frozen=True)
class StoreBuild:
    """What :func:`build_department_store` read: a report per incident file and per calls file."""

    incidents: list[IngestReport]
    calls: list[CallsReport]


def build_department_store(
    store: IncidentStore,
    samples_dir: str | Path | None = None,
    *,
    department: Department | str | Path | None = None,
) -> StoreBuild:
    """Create a store from a department's files (beats, districts, stations, incidents, calls).

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
    StoreBuild
        One report per incident file and one per calls file, in the profile's order.
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
    index = store.beat_index(tolerance_m=dept.edge_tolerance_m)
    mapping = dept.column_mapping()
    reports = [
        ingest_file(located(path), store, index=index, mapping=mapping)
        for path in dept.incident_files
    ]
    calls: list[CallsReport] = []
    if dept.call_files:  # calls for service, the second record kind
        from geodata.calls import CallMapping, ingest_calls

        if dept.call_mapping is None:
            msg = f"{dept.source}: [calls] names files but no mapping to read them"
            raise StoreError(msg)
        call_mapping = CallMapping.from_file(dept.call_mapping)
        calls = [
            ingest_calls(located(path), store, mapping=call_mapping) for path in dept.call_files
        ]
    return StoreBuild(reports, calls)


# --- a file read in parts elsewhere (geodata.distributed_ingest) ------------------------------


@dataclass
class BatchTally(_Tally):
    """What the joined batches of one file add up to: the tally :func:`ingest_file` keeps.

    :meth:`add` joins one batch to the beats, counts it and returns the rows to store. A file
    read in parts elsewhere (on the workers of a Dask cluster) has a tally per part, made with
    `keep_disagreements` (the rows whose reported beat differs are kept in `disagreements`
    instead of written to the file's report); :meth:`merge` adds them up in file order.
    """

    keep_disagreements: bool = False
    disagreements: list[pa.Table] = field(default_factory=list)

    def merge(self, other: BatchTally) -> None:
        """Add `other`, the tally of the next part of the same file (lines of the whole file)."""
        if self.first is None:
            self.first, self.categories = other.first, other.categories
        self.rows_read += other.rows_read
        self.rows_accepted += other.rows_accepted
        self.outside += other.outside
        self.rejected.extend(other.rejected.frames())
        self.n_reported += other.n_reported
        self.same += other.same
        self.same_geometric += other.same_geometric
        for status, (count, same) in other.by_status.items():
            counts = self.by_status.setdefault(status, [0, 0])
            counts[0] += count
            counts[1] += same
        self.far_lon.extend(other.far_lon)
        self.far_lat.extend(other.far_lat)
        self.unmapped_rows += other.unmapped_rows
        for offense, rows in other.unmapped_top.items():
            self.unmapped_top[offense] = self.unmapped_top.get(offense, 0) + rows
        for rows in other.disagreements:
            self._add_disagreements(rows)

    def _add_disagreements(self, rows: pa.Table) -> None:
        if self.keep_disagreements:
            self.disagreements.append(rows)
        else:
            super()._add_disagreements(rows)

    def __getstate__(self) -> dict[str, object]:
        """Return the fields alone: a tally sent between processes leaves its caches behind."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


@dataclass
class PartOfFile:
    """Where a part of a file lies in the whole file, so that it reads as the file would.

    A part is read as a file of its own (its header, then its records: its first record is
    its line 2). :meth:`place` gives each of its batches the whole file's lines and rejects,
    as the reader rejects a repeated id, the ids that earlier parts hold.

    Attributes
    ----------
    line_offset
        Added to the part's own lines.
    earlier
        Ids of earlier parts (as :func:`geodata._idkernel.hash_strings` keys) -> the line of
        the whole file where each first occurred.
    keys, lines
        Per batch placed: the keys of the ids it accepted and their lines (for the next parts).
    """

    line_offset: int = 0
    earlier: dict[int, int] = field(default_factory=dict)
    keys: list[np.ndarray] = field(default_factory=list)
    lines: list[np.ndarray] = field(default_factory=list)

    def place(self, batch: ReadResult) -> ReadResult:
        """Return `batch` with the whole file's lines, the ids of earlier parts rejected."""
        incidents = batch.incidents
        lines = incidents[schema.SOURCE_LINE].to_numpy(dtype=np.int64) + self.line_offset
        rejected = self._placed(batch.rejected)
        keys = hash_strings(pa.array(incidents[schema.INCIDENT_ID].array))
        repeated = np.isin(keys, np.fromiter(self.earlier, np.uint64, len(self.earlier)))
        if repeated.any():
            ids = incidents[schema.INCIDENT_ID].to_numpy(dtype=object)[repeated]
            firsts = [self.earlier[int(k)] for k in keys[repeated]]
            values = [duplicate_value(i, f) for i, f in zip(ids, firsts, strict=True)]
            column = batch.mapping.incident_id or "(derived id)"
            duplicates = _rejected_frame(
                batch.source, lines[repeated], column, np.asarray(values), REASONS["duplicate_id"]
            )
            rejected = pd.concat([rejected, duplicates], ignore_index=True)
        kept = ~repeated
        self.keys.append(keys[kept])
        self.lines.append(lines[kept])
        incidents = incidents[kept].assign(**{schema.SOURCE_LINE: lines[kept]})
        return replace(batch, incidents=incidents.reset_index(drop=True), rejected=rejected)

    def _placed(self, rejected: pd.DataFrame) -> pd.DataFrame:
        """Return rejections with the file's lines, repeated ids pointing at their first line."""
        if not len(rejected) or not (self.line_offset or self.earlier):
            return rejected
        rejected = rejected.assign(line=rejected["line"] + self.line_offset)
        repeated = (rejected["reason"] == REASONS["duplicate_id"]).to_numpy()
        if repeated.any():
            found = duplicate_ids(rejected.loc[repeated, "value"])
            keys = hash_strings(pa.array(found["id"].to_numpy(), pa.string()))
            first = found["first_line"].to_numpy() + self.line_offset
            rejected.loc[repeated, "value"] = [
                duplicate_value(i, self.earlier.get(int(k), int(f)))
                for i, k, f in zip(found["id"], keys, first, strict=True)
            ]
        return rejected


@dataclass
class JoinedPart:
    """A part of a file read, validated and joined elsewhere: its tally and rows to store."""

    tally: BatchTally
    #: The accepted rows, joined, with the whole file's lines (an Arrow table in the store's
    #: schema, or a frame, as ``IncidentStore.upsert_batches`` takes them).
    rows: pa.Table | pd.DataFrame


def ingest_joined_parts(
    path: str | Path,
    store: IncidentStore,
    parts: Callable[..., Iterator[JoinedPart]],
    **options: Any,  # noqa: ANN401 - ingest_file's keyword arguments
) -> IngestReport:
    """Store a file read and joined in parts elsewhere, as :func:`ingest_file` stores it.

    Parameters
    ----------
    path
        The file.
    store
        A store with a beat layer.
    parts
        Called as :func:`geodata.readers.iter_incidents` is (the file, then the reader's
        options); yields the file's parts in file order, with no id twice across them.
    **options
        As :func:`ingest_file` (`mapping`, `categories`, `buffer_m`, `now`...).

    Returns
    -------
    IngestReport
        The report :func:`ingest_file` gives for the whole file.
    """
    return ingest_file(path, store, reader=parts, tally_type=_PartsTally, **options)


@dataclass
class _PartsTally(BatchTally):
    """The tally of a file joined in parts elsewhere: each part's tally is merged."""

    def add(  # type: ignore[override]
        self, part: JoinedPart, *_join: object, **_options: object
    ) -> pa.Table | pd.DataFrame:
        """Merge a joined part's tally; return its rows (the join is done elsewhere)."""
        self.merge(part.tally)
        return part.rows
