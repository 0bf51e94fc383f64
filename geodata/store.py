"""The incident store: a versioned Delta Lake table of incidents, plus boundary layers.

Layout of a store directory::

    meta.json                              store version, analysis CRS, time zone, department,
                                           beat-layer source, current boundary generation
    tables/incidents/_delta_log/           the Delta log: one commit per ingest or rollback,
                                           each carrying its ingest summary
    tables/incidents/year=YYYY/month=M/    Parquet data files (local year and month)
    boundaries/<generation>/beats.parquet  GeoParquet, analysis CRS (also districts, stations)
    reports/                               rejections and join disagreements of each ingest

An ingest is one Delta version: readers see all of it or none of it, also after ``kill -9``
at any moment, and every version can be listed and restored (:meth:`IncidentStore.history`,
:meth:`IncidentStore.rollback`; ``python -m geodata history`` / ``rollback``). The store's list
of sources is read from the commits of the versions that make up the current state, so it
always agrees with the rows. Boundary layers are written into a new generation directory and
switched to by one atomic replace of ``meta.json``.

Coordinates are plain ``x``/``y`` (analysis CRS) and ``lon``/``lat`` columns, so loading needs no
geometry decoding. Incidents are unique by ``incident_id``: importing an export again replaces
the stored copies (the newer export wins) instead of duplicating them. The record table itself
is :class:`geodata.table.RecordTable`; a second record kind is a second table with its own
:class:`geodata.table.TableSpec`.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import shutil
import tempfile
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from geodata import schema
from geodata.cluster import Mapper
from geodata.errors import StoreError
from geodata.table import RecordTable, TableSpec, TableVersion, fault_point

if TYPE_CHECKING:
    import geopandas as gpd

    from geodata.department import Department
    from geodata.join import BeatIndex

__all__ = ["INCIDENTS", "STORE_VERSION", "IncidentStore"]

STORE_VERSION = 2
#: Store version of the old layout: plain Parquet partitions ``incidents/year=/month=/``.
_PARQUET_LAYOUT = 1
#: What a function mapped over the data files returns.
_R = TypeVar("_R")
_STRING = pd.StringDtype("pyarrow")
#: Keys of :meth:`IncidentStore.meta` that are derived from the table, never written.
_DERIVED = ("sources", "n_incidents", "table_version")

#: The incident table: id, time partitioning and the area sort that lets beat filters prune.
INCIDENTS = TableSpec(
    kind="incidents",
    columns=schema.INCIDENT_COLUMNS,
    id_column=schema.INCIDENT_ID,
    time_column=schema.OCCURRED_AT,
    sort_columns=(schema.DISTRICT, schema.SECTOR, schema.BEAT, schema.OCCURRED_AT),
    stats_columns=(schema.INCIDENT_ID, schema.DISTRICT, schema.SECTOR, schema.BEAT),
    count_sets=((schema.BEAT, schema.OFFENSE),),  # counts by beat x month x offense
)


def _arrow_schema(timezone: str) -> pa.Schema:
    return INCIDENTS.arrow_schema(timezone)


class IncidentStore:
    """A directory holding the incident table (versioned, by year and month) and boundary layers.

    Parameters
    ----------
    root
        The store directory; created on first write.
    """

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)

    # --- metadata ----------------------------------------------------------------------
    @property
    def meta_path(self) -> Path:
        """Return the path of ``meta.json``."""
        return self.root / "meta.json"

    @property
    def table(self) -> RecordTable:
        """Return the incident table."""
        return RecordTable(self.root, INCIDENTS, self.timezone)

    @property
    def incidents_dir(self) -> Path:
        """Return the directory of the incident table."""
        return self.root / "tables" / INCIDENTS.kind

    @property
    def reports_dir(self) -> Path:
        """Return the directory where ingest reports (rejections, disagreements) go."""
        return self.root / "reports"

    def exists(self) -> bool:
        """Return True when the store has metadata and a beat layer."""
        return self.meta_path.exists() and self.has_layer("beats")

    def _config(self) -> dict:
        """Return ``meta.json`` as stored (no derived keys)."""
        if not self.meta_path.exists():
            msg = (
                f"{self.root}: no incident store here (no meta.json); create one with "
                "`python -m geodata init` or `python -m geodata ingest FILE --beats BEATS`"
            )
            raise StoreError(msg)
        meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        if meta.get("version") == _PARQUET_LAYOUT:
            msg = (
                f"{self.root}: this store has the old layout (plain Parquet partitions, store "
                f"version 1) without versions or transactions; convert it once with "
                f"`python -m geodata migrate --store {self.root}` (the incidents, layers and "
                "sources are kept)"
            )
            raise StoreError(msg)
        if meta.get("version") != STORE_VERSION:
            msg = f"{self.root}: store version {meta.get('version')} is not {STORE_VERSION}"
            raise StoreError(msg)
        return meta

    def meta(self) -> dict:
        """Return the store metadata, with the sources of the current version.

        ``sources`` (the ingest summaries of the versions the current state is made of, oldest
        first), ``n_incidents`` and ``table_version`` come from the table's commits.

        Raises
        ------
        StoreError
            If the store does not exist or was written by another store version.
        """
        meta = self._config()
        table = RecordTable(self.root, INCIDENTS, meta["timezone"])
        meta["sources"] = table.active_sources()
        meta["n_incidents"] = table.count()
        meta["table_version"] = table.version()
        return meta

    @property
    def analysis_crs(self) -> str:
        """Return the projected CRS of the stored ``x``/``y`` columns."""
        return self._config()["analysis_crs"]

    @property
    def timezone(self) -> str:
        """Return the local time zone of the store."""
        return self._config()["timezone"]

    def version_token(self) -> str:
        """Return a string that changes whenever the store changes (for caches)."""
        if not self.meta_path.exists():
            return "empty"
        config = self._config()
        version = RecordTable(self.root, INCIDENTS, config["timezone"]).version()
        return f"{version}:{config.get('updated', '')}:{config.get('boundaries', '')}"

    def _write_meta(self, meta: Mapping[str, object]) -> None:
        """Replace ``meta.json`` atomically (derived keys are dropped); hold :meth:`lock`."""
        meta = {k: v for k, v in meta.items() if k not in _DERIVED}
        meta["version"] = STORE_VERSION
        meta["updated"] = datetime.now(UTC).isoformat(timespec="microseconds")
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(self.meta_path, json.dumps(meta, indent=2, sort_keys=True))

    def update_meta(self, **entries: object) -> None:
        """Set store-level metadata entries (e.g. ``department``) under the write lock."""
        with self.lock():
            meta = self._config()
            meta.update(entries)
            self._write_meta(meta)

    def initialize(
        self, *, analysis_crs: str, timezone: str, department: dict | None = None
    ) -> None:
        """Create the store's metadata and empty table unless they exist (a store is kept).

        `department` is the profile the store is built for (``Department.to_dict()``); it is
        recorded once. An existing store with another CRS or time zone is an error.
        """
        with self.lock():
            if self.meta_path.exists():
                meta = self._config()
                if meta["analysis_crs"] != analysis_crs:
                    msg = (
                        f"{self.root}: the store's analysis CRS is {meta['analysis_crs']}, "
                        f"not {analysis_crs}"
                    )
                    raise StoreError(msg)
                if meta.get("timezone") and meta["timezone"] != timezone:
                    msg = (
                        f"{self.root}: the store holds times in {meta['timezone']}, not "
                        f"{timezone}; build a new store for this department"
                    )
                    raise StoreError(msg)
                if not meta.get("timezone") or (department and not meta.get("department")):
                    meta["timezone"] = timezone
                    if department:
                        meta["department"] = department
                    self._write_meta(meta)
            else:
                meta = {"analysis_crs": analysis_crs, "timezone": timezone}
                if department:
                    meta["department"] = department
                self._write_meta(meta)
        self.table.create()

    def department(self) -> Department:
        """Return the department the store was built for (see ``geodata.department``)."""
        from geodata.department import store_department

        return store_department(self)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the exclusive lock on the store's metadata and layers (one writer at a time)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- boundaries -------------------------------------------------------------------
    def _layer_dir(self) -> Path:
        generation = ""
        if self.meta_path.exists():
            generation = json.loads(self.meta_path.read_text(encoding="utf-8")).get(
                "boundaries", ""
            )
        return self.root / "boundaries" / generation if generation else self.root / "boundaries"

    def write_layer(self, name: str, layer: gpd.GeoDataFrame) -> None:
        """Store a boundary layer (``beats``, ``districts``, ``stations``) as GeoParquet."""
        self.write_layers({name: layer})

    def write_layers(self, layers: Mapping[str, gpd.GeoDataFrame]) -> None:
        """Store several boundary layers at once: readers see all of them or none.

        The layers (and the unchanged ones, hard-linked) go into a new generation directory;
        one atomic replace of ``meta.json`` switches to it. A crash before that leaves the
        store on its previous layers.
        """
        if not self.meta_path.exists():
            msg = f"{self.root}: initialise the store before writing layers"
            raise StoreError(msg)
        with self.lock():
            meta = self._config()
            old_dir = self._layer_dir()
            old_generation = meta.get("boundaries", "")
            generation = datetime.now(UTC).strftime("%Y%m%dT%H%M%S") + "-" + uuid.uuid4().hex[:8]
            new_dir = self.root / "boundaries" / generation
            new_dir.mkdir(parents=True)
            if old_dir.is_dir():
                for path in old_dir.glob("*.parquet"):
                    if path.stem not in layers:
                        os.link(path, new_dir / path.name)
            for name, layer in layers.items():
                target = new_dir / f"{name}.parquet"
                layer.to_parquet(target)
                with open(target, "rb") as handle:
                    os.fsync(handle.fileno())
            fault_point("layers-written")
            meta["boundaries"] = generation
            self._write_meta(meta)
            fault_point("layers-switched")
            self._drop_old_generations(keep={generation, old_generation})

    def _drop_old_generations(self, keep: set[str]) -> None:
        for path in (self.root / "boundaries").iterdir():
            if path.is_dir() and path.name not in keep:
                shutil.rmtree(path, ignore_errors=True)

    def read_layer(self, name: str) -> gpd.GeoDataFrame:
        """Return a stored boundary layer in the analysis CRS.

        Raises
        ------
        StoreError
            If the layer is not in the store.
        """
        path = self._layer_dir() / f"{name}.parquet"
        if not path.exists():
            msg = f"{self.root}: the store has no {name} layer ({path} is missing)"
            raise StoreError(msg)
        import geopandas as gpd  # here: a reader of incidents alone does not load GeoPandas

        layer = gpd.read_parquet(path)
        for column in layer.columns:
            if column != layer.geometry.name and layer[column].dtype == object:
                with contextlib.suppress(TypeError, ValueError):
                    layer[column] = layer[column].astype("string")
        return layer

    def beat_index(self, *, tolerance_m: float = 1.0, cell_size_m: float = 5.0) -> BeatIndex:
        """Return the lookup index of the stored beat layer, built once per layer and kept.

        The index is saved next to the layer (``beat-index-*.npz``) the first time; later
        calls read it instead of rasterising the beats again. A new beat layer is a new
        generation directory, so an index never outlives its layer.

        Parameters
        ----------
        tolerance_m, cell_size_m
            As in :class:`geodata.join.BeatIndex`.
        """
        from geodata.join import BeatIndex

        beats = self.read_layer("beats")
        path = self._layer_dir() / f"beat-index-{cell_size_m:g}m-{tolerance_m:g}m.npz"
        index = BeatIndex.load(path, beats)
        if index is None:
            index = BeatIndex(beats, cell_size_m=cell_size_m, tolerance_m=tolerance_m)
            with contextlib.suppress(OSError):  # a store we may not write to: no cache
                index.save(path)
        return index

    def has_layer(self, name: str) -> bool:
        """Return True when the boundary layer `name` is stored."""
        return (self._layer_dir() / f"{name}.parquet").exists()

    # --- incidents --------------------------------------------------------------------
    def incident_files(self) -> list[Path]:
        """Return the data files of the current version, oldest month first."""
        if not self.meta_path.exists():
            return []
        return [f.path for f in self.table.files()]

    def load_incidents(
        self,
        *,
        columns: Sequence[str] | None = None,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        beats: Sequence[str] | None = None,
        where: Mapping[str, Sequence[str]] | None = None,
    ) -> pd.DataFrame:
        """Return stored incidents, optionally only some columns, a time range and some areas.

        Parameters
        ----------
        columns
            Canonical columns to load (default all). Loading only what is needed is faster.
        start, end
            Keep incidents with ``start <= occurred_at < end`` (local time when naive); months
            outside the range are not read.
        beats
            Keep incidents of these beats only (``where={"beat": beats}``).
        where
            Keep incidents whose string column has one of the values, e.g.
            ``{"sector": ["092"]}`` or ``{"district": ["09", "10"]}``. Rows are stored sorted
            by district, sector and beat, so only the row groups that can match are read.

        Returns
        -------
        DataFrame
            Canonical columns; ``occurred_at`` tz-aware in the store's zone; strings are
            Arrow-backed.
        """
        timezone = self.timezone
        wanted = list(columns) if columns is not None else list(schema.INCIDENT_COLUMNS)
        unknown = sorted(set(wanted) - set(schema.INCIDENT_COLUMNS))
        if unknown:
            msg = f"unknown incident columns {unknown}; see geodata.schema.INCIDENT_COLUMNS"
            raise ValueError(msg)
        table = self.table.read(
            wanted,
            start=_local(start, timezone),
            end=_local(end, timezone),
            where=_areas(beats, where),
        )
        if table.num_rows == 0:
            return schema.empty_incidents()[wanted].astype(
                INCIDENTS.pandas_dtypes(wanted, timezone)
            )
        # convert times to ns in the same pass, without a pandas copy
        return table.to_pandas(
            types_mapper=_types_mapper, self_destruct=True, coerce_temporal_nanoseconds=True
        )

    def count_by(
        self,
        columns: Sequence[str],
        *,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        threads: int = 2,
        beats: Sequence[str] | None = None,
        where: Mapping[str, Sequence[str]] | None = None,
        mapper: Mapper | None = None,
    ) -> pd.DataFrame:
        """Return incident counts by year, month and `columns` without loading incidents.

        Each data file's string columns are read as Parquet dictionary codes and counted with
        ``np.bincount``: no string is materialised, so a count by beat x month x offense over
        10M stored incidents takes a fraction of a second (``bench/aggregate.py``).

        Parameters
        ----------
        columns
            String columns to group by (e.g. ``["beat", "offense"]``).
        start, end
            Count incidents with ``start <= occurred_at < end`` only (local time when naive).
        threads
            Files counted in parallel.
        beats, where
            Count only these beats / rows whose string columns have these values (see
            :meth:`load_incidents`); row groups that cannot match are skipped.
        mapper
            Runs the per-file counts (default: `threads` local threads); a
            :func:`geodata.cluster.dask_mapper` runs them on a Dask cluster's workers.

        Returns
        -------
        DataFrame
            ``year``, ``month``, the `columns` and ``incidents`` (only non-zero groups).
        """
        columns = list(columns)
        bad = [c for c in columns if schema.INCIDENT_COLUMNS.get(c) != "string"]
        if bad or not columns:
            msg = f"count_by groups by string columns of the store, got {bad or columns}"
            raise ValueError(msg)
        timezone = self.timezone
        return self.table.count_by(
            columns,
            start=_local(start, timezone),
            end=_local(end, timezone),
            where=_areas(beats, where),
            threads=threads,
            mapper=mapper,
        )

    def map_files(
        self,
        function: Callable[[pa.Table], _R],
        columns: Sequence[str],
        *,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        beats: Sequence[str] | None = None,
        where: Mapping[str, Sequence[str]] | None = None,
        mapper: Mapper | None = None,
    ) -> list[_R]:
        """Return `function` applied to each data file's matching incidents (Arrow tables).

        The building block of additive store-wide work that a caller reduces, on local threads
        or, with a :func:`geodata.cluster.dask_mapper`, on a Dask cluster's workers: binning
        points onto a grid for a KDE or Gi* surface, partial sums.

        Parameters
        ----------
        function
            Called once per data file with the `columns` of its rows that match.
        columns
            Canonical columns to read.
        start, end, beats, where
            As in :meth:`load_incidents`.
        mapper
            Runs the calls (default: one after the other in this process).
        """
        unknown = sorted(set(columns) - set(schema.INCIDENT_COLUMNS))
        if unknown:
            msg = f"unknown incident columns {unknown}; see geodata.schema.INCIDENT_COLUMNS"
            raise ValueError(msg)
        timezone = self.timezone
        return self.table.map_files(
            function,
            columns,
            start=_local(start, timezone),
            end=_local(end, timezone),
            where=_areas(beats, where),
            mapper=mapper,
        )

    def count(self) -> int:
        """Return the number of stored incidents without loading them."""
        if not self.meta_path.exists():
            return 0
        return self.table.count()

    def upsert_batches(
        self,
        batches: Iterable[pd.DataFrame | pa.Table],
        *,
        source: dict | None = None,
    ) -> tuple[int, int]:
        """Add the batches of one ingest as one version of the store (all or nothing).

        Stored incidents with an ``incident_id`` of the batches are replaced. Only the months
        the batches touch (and months holding a replaced id) are rewritten; memory holds one
        batch, then one month, at a time.

        Parameters
        ----------
        batches
            Canonical, joined incidents (frames or Arrow tables); ``incident_id`` unique
            across all batches.
        source
            The ingest summary committed with this version (``file``, ``rows_read``...); the
            store adds ``rows_new`` and ``rows_replaced``. It is read after the last batch
            has been consumed, so a streaming reader may fill it in while yielding batches.

        Returns
        -------
        tuple of int
            ``(new, replaced)`` row counts.

        Raises
        ------
        ValueError
            If an ``incident_id`` occurs twice among the batches (nothing is written).
        """
        self._config()
        new, replaced, _ = self.table.upsert_batches(batches, source=source)
        return new, replaced

    def upsert(self, incidents: pd.DataFrame) -> tuple[int, int]:
        """Add incidents as one version; an ``incident_id`` already stored is replaced.

        Parameters
        ----------
        incidents
            Canonical, joined incidents with unique ``incident_id``.

        Returns
        -------
        tuple of int
            ``(new, replaced)`` row counts.
        """
        if incidents[schema.INCIDENT_ID].duplicated().any():
            msg = "upsert needs unique incident ids; the reader rejects duplicates first"
            raise ValueError(msg)
        return self.upsert_batches([incidents])

    def record_source(self, entry: dict) -> None:
        """Record an ingest summary as a version of its own (prefer ``upsert_batches(source=)``)."""
        self.upsert_batches([], source=entry)

    # --- versions ---------------------------------------------------------------------
    def history(self) -> list[TableVersion]:
        """Return the incident table's versions, newest first (see :class:`TableVersion`)."""
        self._config()
        return self.table.history()

    def rollback(self, version: int) -> TableVersion:
        """Make the incidents those of `version` again, as a new version; return it.

        Raises
        ------
        StoreError
            If the version does not exist.
        """
        self._config()
        return self.table.rollback(version)

    def migrate(self) -> int:
        """Convert a store of the old layout (plain Parquet partitions) in place.

        The incidents become version 1 of the table, carrying the old list of sources; the
        layers are kept. Running it again after a crash finishes the job.

        Returns
        -------
        int
            The incidents migrated.

        Raises
        ------
        StoreError
            If there is no store, or it already has the current layout.
        """
        if not self.meta_path.exists():
            msg = f"{self.root}: no incident store here (no meta.json)"
            raise StoreError(msg)
        with self.lock():
            meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
            if meta.get("version") == STORE_VERSION:
                msg = f"{self.root}: the store already has the current layout"
                raise StoreError(msg)
            if meta.get("version") != _PARQUET_LAYOUT:
                msg = f"{self.root}: store version {meta.get('version')} cannot be migrated"
                raise StoreError(msg)
            timezone = meta["timezone"]
            old_dir = self.root / "incidents"
            files = sorted(old_dir.glob("year=*/month=*/*.parquet"))
            table = RecordTable(self.root, INCIDENTS, timezone)
            done = [v for v in table.history() if v.operation == "migrate" and v.is_current]
            rows = done[0].rows or 0 if done else 0
            if not done:
                file_schema = INCIDENTS.arrow_schema(timezone)
                rows = table.replace_all(
                    (pq.read_table(f, schema=file_schema) for f in files),
                    metadata={"source": {"sources": meta.get("sources", [])}},
                )
            fault_point("migrated")
            meta["version"] = STORE_VERSION
            meta["boundaries"] = ""
            self._write_meta(meta)
        shutil.rmtree(old_dir, ignore_errors=True)
        return rows


def _types_mapper(arrow_type: pa.DataType) -> object:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return _STRING
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _local(value: pd.Timestamp | str | None, timezone: str) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize(timezone) if ts.tzinfo is None else ts.tz_convert(timezone)


def _areas(
    beats: Sequence[str] | None, where: Mapping[str, Sequence[str]] | None
) -> dict[str, Sequence[str]] | None:
    out = dict(where or {})
    if beats is not None:
        out[schema.BEAT] = [str(b) for b in beats]
    return out or None


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(tmp, path)
