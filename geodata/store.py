"""The incident store: partitioned Parquet with beats assigned at ingest, plus boundary layers.

Layout of a store directory::

    meta.json                          version, analysis CRS, time zone, department, sources
    boundaries/beats.parquet           GeoParquet, analysis CRS (also districts, stations)
    incidents/year=YYYY/month=MM/data.parquet
    reports/                           rejections and join disagreements of each ingest

Coordinates are plain ``x``/``y`` (analysis CRS) and ``lon``/``lat`` columns, so loading needs no
geometry decoding; the hive-style partitions can be read by DuckDB, Dask or pyarrow directly.
Incidents are unique by ``incident_id``: importing an export again replaces the stored copies
(the newer export wins) instead of duplicating them.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import tempfile
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING

import geopandas as gpd
import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.dataset as ds
import pyarrow.parquet as pq

from geodata import schema
from geodata.errors import StoreError

if TYPE_CHECKING:
    from geodata.department import Department

__all__ = ["STORE_VERSION", "IncidentStore"]

STORE_VERSION = 1
_STRING = pd.StringDtype("pyarrow")


def _arrow_schema(timezone: str) -> pa.Schema:
    types = {
        "string": pa.string(),
        "bool": pa.bool_(),
        "boolean": pa.bool_(),
        "float64": pa.float64(),
        "int64": pa.int64(),
    }
    fields = []
    for name, dtype in schema.INCIDENT_COLUMNS.items():
        if name == schema.OCCURRED_AT:
            fields.append(pa.field(name, pa.timestamp("us", tz=timezone)))
        else:
            fields.append(pa.field(name, types[dtype]))
    return pa.schema(fields)


class IncidentStore:
    """A directory holding incidents (partitioned by year and month) and boundary layers.

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
    def incidents_dir(self) -> Path:
        """Return the directory of the incident partitions."""
        return self.root / "incidents"

    @property
    def reports_dir(self) -> Path:
        """Return the directory where ingest reports (rejections, disagreements) go."""
        return self.root / "reports"

    def exists(self) -> bool:
        """Return True when the store has metadata and a beat layer."""
        return self.meta_path.exists() and (self.root / "boundaries" / "beats.parquet").exists()

    def meta(self) -> dict:
        """Return the store metadata.

        Raises
        ------
        StoreError
            If the store does not exist or was written by another store version.
        """
        if not self.meta_path.exists():
            msg = (
                f"{self.root}: no incident store here (no meta.json); create one with "
                "`python -m geodata init` or `python -m geodata ingest FILE --beats BEATS`"
            )
            raise StoreError(msg)
        meta = json.loads(self.meta_path.read_text(encoding="utf-8"))
        if meta.get("version") != STORE_VERSION:
            msg = f"{self.root}: store version {meta.get('version')} is not {STORE_VERSION}"
            raise StoreError(msg)
        return meta

    @property
    def analysis_crs(self) -> str:
        """Return the projected CRS of the stored ``x``/``y`` columns."""
        return self.meta()["analysis_crs"]

    @property
    def timezone(self) -> str:
        """Return the local time zone of the store."""
        return self.meta()["timezone"]

    def version_token(self) -> str:
        """Return a string that changes whenever the store changes (for caches)."""
        if not self.meta_path.exists():
            return "empty"
        return str(self.meta().get("updated", "")) + str(self.meta_path.stat().st_mtime_ns)

    def _write_meta(self, meta: dict) -> None:
        meta["version"] = STORE_VERSION
        meta["updated"] = datetime.now(UTC).isoformat(timespec="microseconds")
        self.root.mkdir(parents=True, exist_ok=True)
        _atomic_write_text(self.meta_path, json.dumps(meta, indent=2, sort_keys=True))

    def initialize(
        self, *, analysis_crs: str, timezone: str, department: dict | None = None
    ) -> None:
        """Create the store's metadata if it has none (an existing store is kept as it is).

        `department` is the profile the store is built for (``Department.to_dict()``); it is
        recorded once. An existing store with another CRS or time zone is an error.
        """
        if self.meta_path.exists():
            meta = self.meta()
            if meta["analysis_crs"] != analysis_crs:
                msg = (
                    f"{self.root}: the store's analysis CRS is {meta['analysis_crs']}, "
                    f"not {analysis_crs}"
                )
                raise StoreError(msg)
            if meta.get("timezone") and meta["timezone"] != timezone:
                msg = (
                    f"{self.root}: the store holds times in {meta['timezone']}, not {timezone}; "
                    "build a new store for this department"
                )
                raise StoreError(msg)
            if not meta.get("timezone") or (department and not meta.get("department")):
                meta["timezone"] = timezone
                if department:
                    meta["department"] = department
                self._write_meta(meta)
            return
        meta = {"analysis_crs": analysis_crs, "timezone": timezone, "sources": []}
        if department:
            meta["department"] = department
        self._write_meta(meta)

    def department(self) -> Department:
        """Return the department the store was built for (see ``geodata.department``)."""
        from geodata.department import store_department

        return store_department(self)

    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold an exclusive write lock on the store (one writer at a time)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / ".lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # --- boundaries -------------------------------------------------------------------
    def write_layer(self, name: str, layer: gpd.GeoDataFrame) -> None:
        """Store a boundary layer (``beats``, ``districts``, ``stations``) as GeoParquet."""
        target = self.root / "boundaries" / f"{name}.parquet"
        target.parent.mkdir(parents=True, exist_ok=True)
        tmp = target.with_suffix(".tmp")
        layer.to_parquet(tmp)
        tmp.replace(target)

    def read_layer(self, name: str) -> gpd.GeoDataFrame:
        """Return a stored boundary layer in the analysis CRS.

        Raises
        ------
        StoreError
            If the layer is not in the store.
        """
        path = self.root / "boundaries" / f"{name}.parquet"
        if not path.exists():
            msg = f"{self.root}: the store has no {name} layer ({path} is missing)"
            raise StoreError(msg)
        layer = gpd.read_parquet(path)
        for column in layer.columns:
            if column != layer.geometry.name and layer[column].dtype == object:
                with contextlib.suppress(TypeError, ValueError):
                    layer[column] = layer[column].astype("string")
        return layer

    def has_layer(self, name: str) -> bool:
        """Return True when the boundary layer `name` is stored."""
        return (self.root / "boundaries" / f"{name}.parquet").exists()

    # --- incidents --------------------------------------------------------------------
    def incident_files(self) -> list[Path]:
        """Return the partition files, oldest month first."""
        return sorted(self.incidents_dir.glob("year=*/month=*/*.parquet"))

    def incidents_glob(self) -> str:
        """Return a glob over all partition files (for DuckDB ``read_parquet``)."""
        return str(self.incidents_dir / "year=*" / "month=*" / "*.parquet")

    def load_incidents(
        self,
        *,
        columns: Sequence[str] | None = None,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
    ) -> pd.DataFrame:
        """Return stored incidents, optionally only some columns and a time range.

        Parameters
        ----------
        columns
            Canonical columns to load (default all). Loading only what is needed is faster.
        start, end
            Keep incidents with ``start <= occurred_at < end`` (local time when naive); whole
            partitions outside the range are not read.

        Returns
        -------
        DataFrame
            Canonical columns; ``occurred_at`` tz-aware in the store's zone; strings are
            Arrow-backed.
        """
        timezone = self.timezone
        files = self.incident_files()
        wanted = list(columns) if columns is not None else list(schema.INCIDENT_COLUMNS)
        unknown = sorted(set(wanted) - set(schema.INCIDENT_COLUMNS))
        if unknown:
            msg = f"unknown incident columns {unknown}; see geodata.schema.INCIDENT_COLUMNS"
            raise ValueError(msg)
        if not files:
            return schema.empty_incidents()[wanted].astype(_pandas_dtypes(wanted, timezone))
        start_ts = _local(start, timezone)
        end_ts = _local(end, timezone)
        if start_ts is not None or end_ts is not None:
            files = [f for f in files if _partition_overlaps(f, start_ts, end_ts)]
        read_columns = list(dict.fromkeys([*wanted, schema.OCCURRED_AT]))
        dataset = ds.dataset(files, format="parquet", schema=_arrow_schema(timezone))
        expression = None
        if start_ts is not None:
            expression = ds.field(schema.OCCURRED_AT) >= pa.scalar(
                start_ts.to_pydatetime(), pa.timestamp("us", tz=timezone)
            )
        if end_ts is not None:
            upper = ds.field(schema.OCCURRED_AT) < pa.scalar(
                end_ts.to_pydatetime(), pa.timestamp("us", tz=timezone)
            )
            expression = upper if expression is None else expression & upper
        table = dataset.to_table(columns=read_columns, filter=expression, use_threads=True)
        # select before converting (no pandas copy) and convert times to ns in the same pass
        return table.select(wanted).to_pandas(
            types_mapper=_types_mapper, self_destruct=True, coerce_temporal_nanoseconds=True
        )

    def count_by(
        self,
        columns: Sequence[str],
        *,
        start: pd.Timestamp | str | None = None,
        end: pd.Timestamp | str | None = None,
        threads: int = 2,
    ) -> pd.DataFrame:
        """Return incident counts by year, month and `columns` without loading incidents.

        Each partition's string columns are read as Parquet dictionary codes and counted with
        ``np.bincount``: no string is materialised, so a count by beat x month x offense over
        10M stored incidents takes a fraction of a second (``bench/aggregate.py``).

        Parameters
        ----------
        columns
            String columns to group by (e.g. ``["beat", "offense"]``).
        start, end
            Count incidents with ``start <= occurred_at < end`` only (local time when naive).
        threads
            Partitions counted in parallel.

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
        start_ts, end_ts = _local(start, timezone), _local(end, timezone)
        files = [
            f
            for f in self.incident_files()
            if (start_ts is None and end_ts is None) or _partition_overlaps(f, start_ts, end_ts)
        ]

        def count(path: Path) -> pd.DataFrame:
            year = int(path.parent.parent.name.split("=")[1])
            month = int(path.parent.name.split("=")[1])
            first = pd.Timestamp(year=year, month=month, day=1).tz_localize(timezone)
            after = first + pd.offsets.MonthBegin(1)
            cut = (start_ts is not None and start_ts > first) or (
                end_ts is not None and end_ts < after
            )
            read = [*columns, schema.OCCURRED_AT] if cut else columns
            table = pq.read_table(path, columns=read, read_dictionary=columns)
            keep = None
            if cut:
                stamps = table.column(schema.OCCURRED_AT).to_pandas()
                keep = np.ones(len(stamps), dtype=bool)
                if start_ts is not None:
                    keep &= (stamps >= start_ts).to_numpy()
                if end_ts is not None:
                    keep &= (stamps < end_ts).to_numpy()
            code = np.zeros(table.num_rows, dtype=np.int64)
            dictionaries, sizes = [], []
            for column in columns:
                array = table.column(column).unify_dictionaries().combine_chunks()
                size = len(array.dictionary) + 1  # the last code stands for a null
                indices = array.indices.to_numpy(zero_copy_only=False)
                indices = np.where(
                    array.is_null().to_numpy(zero_copy_only=False), size - 1, indices
                ).astype(np.int64)
                code = code * size + indices
                dictionaries.append(
                    np.append(array.dictionary.to_numpy(zero_copy_only=False), None)
                )
                sizes.append(size)
            if keep is not None:
                code = code[keep]
            counts = np.bincount(code, minlength=int(np.prod(sizes)))
            hit = np.flatnonzero(counts)
            out = {"year": year, "month": month}
            remainder = hit
            for column, size, dictionary in reversed(
                list(zip(columns, sizes, dictionaries, strict=True))
            ):
                out[column] = dictionary[remainder % size]
                remainder = remainder // size
            frame = pd.DataFrame(out | {"incidents": counts[hit]})
            return frame[["year", "month", *columns, "incidents"]]

        from concurrent.futures import ThreadPoolExecutor

        empty = pd.DataFrame(columns=["year", "month", *columns, "incidents"])
        if not files:
            return empty
        with ThreadPoolExecutor(threads) as pool:
            parts = list(pool.map(count, files))
        frame = pd.concat(parts, ignore_index=True)
        return frame.astype({c: _STRING for c in columns} | {"incidents": "int64"})

    def count(self) -> int:
        """Return the number of stored incidents without loading them."""
        return sum(pq.ParquetFile(f).metadata.num_rows for f in self.incident_files())

    def upsert_batches(
        self, batches: Iterable[pd.DataFrame], *, source: dict | None = None
    ) -> tuple[int, int]:
        """Add the batches of one ingest as one version of the store (all or nothing).

        Parameters
        ----------
        batches
            Canonical, joined incidents; ``incident_id`` unique across all batches.
        source
            The ingest summary recorded with this version (see :meth:`record_source`).

        Returns
        -------
        tuple of int
            ``(new, replaced)`` row counts.
        """
        frames = [b for b in batches if len(b)]
        result = self.upsert(pd.concat(frames, ignore_index=True)) if frames else (0, 0)
        if source is not None:
            self.record_source(source)
        return result

    def upsert(self, incidents: pd.DataFrame) -> tuple[int, int]:
        """Add incidents; an ``incident_id`` already stored is replaced by the new row.

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
        timezone = self.timezone
        frame = incidents.reindex(columns=list(schema.INCIDENT_COLUMNS)).copy()
        local = frame[schema.OCCURRED_AT].dt.tz_convert(timezone)
        frame["_year"] = local.dt.year.to_numpy()
        frame["_month"] = local.dt.month.to_numpy()
        incoming_ids = set(frame[schema.INCIDENT_ID].astype(str))
        with self.lock():
            stored_parts = self._partitions_holding(incoming_ids)
            affected = stored_parts | set(zip(frame["_year"], frame["_month"], strict=True))
            replaced = 0
            for year, month in sorted(affected):
                path = (
                    self.incidents_dir / f"year={year:04d}" / f"month={month:02d}" / "data.parquet"
                )
                parts = []
                if path.exists():
                    old = pq.read_table(path, schema=_arrow_schema(timezone)).to_pandas(
                        types_mapper=_types_mapper
                    )
                    drop = old[schema.INCIDENT_ID].astype(str).isin(incoming_ids)
                    replaced += int(drop.sum())
                    parts.append(old[~drop])
                new = frame[(frame["_year"] == year) & (frame["_month"] == month)]
                parts.append(new.drop(columns=["_year", "_month"]))
                merged = pd.concat([p for p in parts if len(p)], ignore_index=True)
                if merged.empty:
                    path.unlink(missing_ok=True)
                    continue
                merged = merged.sort_values([schema.OCCURRED_AT, schema.INCIDENT_ID])
                self._write_partition(path, merged, timezone)
            meta = self.meta()
            meta["n_incidents"] = self.count()
            self._write_meta(meta)
        return len(frame) - replaced, replaced

    def _partitions_holding(self, ids: set[str]) -> set[tuple[int, int]]:
        found: set[tuple[int, int]] = set()
        for path in self.incident_files():
            column = pq.read_table(path, columns=[schema.INCIDENT_ID]).column(0).to_pylist()
            if not ids.isdisjoint(column):
                year = int(path.parent.parent.name.split("=")[1])
                month = int(path.parent.name.split("=")[1])
                found.add((year, month))
        return found

    @staticmethod
    def _write_partition(path: Path, frame: pd.DataFrame, timezone: str) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        frame = frame.copy()
        frame[schema.OCCURRED_AT] = frame[schema.OCCURRED_AT].dt.tz_convert(timezone)
        table = pa.Table.from_pandas(frame, schema=_arrow_schema(timezone), preserve_index=False)
        tmp = path.with_suffix(".tmp")
        pq.write_table(table, tmp, compression="zstd")
        tmp.replace(path)

    def record_source(self, entry: dict) -> None:
        """Append an ingest summary to the store's list of sources."""
        meta = self.meta()
        meta.setdefault("sources", []).append(entry)
        self._write_meta(meta)


def _types_mapper(arrow_type: pa.DataType) -> object:
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return _STRING
    if pa.types.is_boolean(arrow_type):
        return pd.BooleanDtype()
    return None


def _pandas_dtypes(columns: Sequence[str], timezone: str) -> dict[str, object]:
    out: dict[str, object] = {}
    for column in columns:
        dtype = schema.INCIDENT_COLUMNS[column]
        if column == schema.OCCURRED_AT:
            out[column] = f"datetime64[ns, {timezone}]"
        elif dtype == "string":
            out[column] = _STRING
        elif dtype in ("bool", "boolean"):
            out[column] = "boolean"
        else:
            out[column] = dtype
    return out


def _local(value: pd.Timestamp | str | None, timezone: str) -> pd.Timestamp | None:
    if value is None:
        return None
    ts = pd.Timestamp(value)
    return ts.tz_localize(timezone) if ts.tzinfo is None else ts.tz_convert(timezone)


def _partition_overlaps(path: Path, start: pd.Timestamp | None, end: pd.Timestamp | None) -> bool:
    year = int(path.parent.parent.name.split("=")[1])
    month = int(path.parent.name.split("=")[1])
    tz = (start or end).tz  # type: ignore[union-attr]
    first = pd.Timestamp(year=year, month=month, day=1).tz_localize(tz)
    after = first + pd.offsets.MonthBegin(1)
    return not ((end is not None and first >= end) or (start is not None and after <= start))


def _atomic_write_text(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=path.name, suffix=".tmp")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(text)
    os.replace(tmp, path)
