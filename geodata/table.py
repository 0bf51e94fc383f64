"""Versioned record tables: Delta Lake tables of Parquet files, one version per ingest.

A :class:`RecordTable` holds one record kind (incidents; calls for service use the same code
with their own :class:`TableSpec`) as a Delta Lake table partitioned by local ``year`` and
``month``. Every write is one Delta commit, so readers see a whole ingest or none of it, also
after ``kill -9`` at any moment:

1. the batches are sorted by month, many batches at a time, into staging files in
   ``<store>/.staging/<kind>-<txn>/`` (one LZ4 Arrow IPC stream per month);
2. each month the ingest touches is written again (its stored rows, less those replaced, and
   the new ones) into new data files of at most :data:`FILE_ROWS` rows, rows sorted by
   district, sector, beat and time so that area filters skip row groups by their Parquet
   statistics (a month that only loses replaced rows has only those files written again);
3. one commit removes the old files and adds the new ones, with the ingest summary in the
   commit's custom metadata (so what the store says about its sources cannot disagree with the
   rows it holds).

Files that were written but never committed are invisible to readers; the next writer deletes
them. Removed files are kept, so any version can be restored (:meth:`RecordTable.rollback`).
Reads do not go through Delta's reader: the active files and their partition values come from
the Delta log and are read with ``pyarrow.dataset`` (column projection, row-group pruning) or,
for counts, as Parquet dictionary codes.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import itertools
import json
import os
import shutil
import threading
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import TypeVar

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds
import pyarrow.parquet as pq
from deltalake import CommitProperties, DeltaTable
from deltalake.transaction import AddAction, RemoveAction

from geodata._idkernel import hash_strings
from geodata._idspill import SpilledIds
from geodata.cluster import Mapper, thread_mapper
from geodata.errors import StoreError

__all__ = [
    "BUFFER_BYTES",
    "FILE_ROWS",
    "HOLD_BYTES",
    "ID_HOLD",
    "METADATA_KEY",
    "ROW_GROUP_ROWS",
    "RecordTable",
    "TableSpec",
    "TableVersion",
    "fault_point",
]

#: Key of the product's entry in each Delta commit's custom metadata.
METADATA_KEY = "beatwise"
#: Rows per Parquet row group: small enough that a beat filter skips most of a month's file.
ROW_GROUP_ROWS = 16384
#: Rows per data file at most: a month with more rows is written in several files, so that
#: writing (and sorting) a month holds a bounded number of rows whatever its size.
FILE_ROWS = 250_000
#: Arrow bytes of incoming batches held in memory before they are sorted by month and staged,
#: once a write has outgrown :data:`HOLD_BYTES`.
BUFFER_BYTES = 32 << 20
#: Arrow bytes of one write kept in memory, unstaged: a write this small is sorted once, all
#: months together, and written without staging files (a larger one is staged from then on).
HOLD_BYTES = 256 << 20
#: Ids of one write kept in memory (about 25 bytes each, with their hashes); past them the
#: write's ids go to disk by hash partition (:mod:`geodata._idspill`), so that its memory does
#: not grow with the rows written.
ID_HOLD = 4_000_000
PARTITION_COLUMNS = ("year", "month")
#: What a function mapped over the data files returns.
_R = TypeVar("_R")
_STRING = pd.StringDtype("pyarrow")
_ARROW_TYPES = {
    "string": pa.string(),
    "bool": pa.bool_(),
    "boolean": pa.bool_(),
    "float64": pa.float64(),
    "int64": pa.int64(),
    "Int64": pa.int64(),
}

#: Called with the name of each write step (see :func:`fault_point`); None outside tests.
_FAULT_HOOK: Callable[[str], None] | None = None


def fault_point(name: str) -> None:
    """Mark a write step; the fault-injection tests install a hook that may kill the process here.

    Parameters
    ----------
    name
        The step (``staged``, ``partition-written``, ``before-commit``, ``committed``...).
    """
    if _FAULT_HOOK is not None:
        _FAULT_HOOK(name)


@dataclass(frozen=True)
class TableSpec:
    """The schema of one record kind and how its rows are keyed, partitioned and sorted.

    Parameters
    ----------
    kind
        Table name (``incidents``, ``calls``); also its directory under ``<store>/tables``.
    columns
        Column name -> pandas dtype name (``string``, ``bool``, ``boolean``, ``float64``,
        ``int64`` or a ``datetime64`` for `time_column`), in stored order.
    id_column
        The unique record id: a write replaces stored rows with the same id.
    time_column
        The tz-aware time that decides the row's local year/month partition.
    sort_columns
        Columns rows are sorted by inside each file (area columns first, then time), so that
        filters on them skip row groups.
    stats_columns
        String columns whose per-file min/max go into the Delta log (file pruning).
    count_sets
        Groupings whose per-file counts every write computes for its new files, so the first
        :meth:`RecordTable.count_by` after a write reads only cached counts (a summary kept up
        to date on write; any other grouping is counted and cached on first use).
    """

    kind: str
    columns: Mapping[str, str]
    id_column: str
    time_column: str
    sort_columns: tuple[str, ...] = ()
    stats_columns: tuple[str, ...] = ()
    count_sets: tuple[tuple[str, ...], ...] = ()

    def arrow_schema(self, timezone: str) -> pa.Schema:
        """Return the Arrow schema of the data files (times tz-aware in `timezone`)."""
        fields = []
        for name, dtype in self.columns.items():
            if name == self.time_column or dtype.startswith("datetime64"):
                fields.append(pa.field(name, pa.timestamp("us", tz=timezone)))
            else:
                fields.append(pa.field(name, _ARROW_TYPES[dtype]))
        return pa.schema(fields)

    @property
    def time_columns(self) -> tuple[str, ...]:
        """Return every tz-aware time column (the partitioning one first)."""
        others = [
            c
            for c, t in self.columns.items()
            if t.startswith("datetime64") and c != self.time_column
        ]
        return (self.time_column, *others)

    def delta_schema(self) -> pa.Schema:
        """Return the table schema as Delta sees it (UTC times, partition columns added)."""
        schema = self.arrow_schema("UTC")
        return schema.append(pa.field("year", pa.int32())).append(pa.field("month", pa.int32()))

    def pandas_dtypes(self, columns: Sequence[str], timezone: str) -> dict[str, object]:
        """Return the pandas dtypes that loaded `columns` have."""
        out: dict[str, object] = {}
        for column in columns:
            dtype = self.columns[column]
            if column in self.time_columns:
                out[column] = f"datetime64[ns, {timezone}]"
            elif dtype == "string":
                out[column] = _STRING
            elif dtype in ("bool", "boolean"):
                out[column] = "boolean"
            else:
                out[column] = dtype
        return out


@dataclass
class TableVersion:
    """One version of a table, as ``geodata history`` lists it."""

    version: int
    timestamp: pd.Timestamp
    operation: str
    rows: int | None = None
    rows_new: int | None = None
    rows_replaced: int | None = None
    file: str | None = None
    restored: int | None = None
    is_current: bool = False
    is_active: bool = True
    source: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        """Return the version as plain JSON-able values."""
        return {
            "version": self.version,
            "timestamp": self.timestamp.isoformat(),
            "operation": self.operation,
            "rows": self.rows,
            "rows_new": self.rows_new,
            "rows_replaced": self.rows_replaced,
            "file": self.file,
            "restored": self.restored,
            "is_current": self.is_current,
            "is_active": self.is_active,
        }


#: The counts of a data file per grouping of ``spec.count_sets`` (see :func:`_bincount`).
_Counts = dict[tuple[str, ...], pa.Table]


@dataclass(frozen=True)
class _File:
    path: Path
    year: int
    month: int
    rows: int
    size: int
    stats_min: Mapping[str, str | None]
    stats_max: Mapping[str, str | None]


class RecordTable:
    """A Delta Lake table of one record kind inside a store directory.

    Parameters
    ----------
    root
        The store directory; the table lives in ``root/tables/<kind>``.
    spec
        The record kind's schema, id, time and sort columns.
    timezone
        The store's local zone (partitions are local months).
    """

    def __init__(self, root: str | Path, spec: TableSpec, timezone: str) -> None:
        self.root = Path(root)
        self.spec = spec
        self.timezone = timezone

    @property
    def path(self) -> Path:
        """Return the table directory."""
        return self.root / "tables" / self.spec.kind

    @property
    def staging_dir(self) -> Path:
        """Return where writers stage batches before rewriting partitions."""
        return self.root / ".staging"

    def exists(self) -> bool:
        """Return True when the Delta table has been created."""
        return (self.path / "_delta_log").is_dir()

    # --- locking and recovery --------------------------------------------------------------
    @contextlib.contextmanager
    def lock(self) -> Iterator[None]:
        """Hold the table's exclusive write lock (writers queue; readers never wait)."""
        self.root.mkdir(parents=True, exist_ok=True)
        with open(self.root / f".{self.spec.kind}.lock", "w") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def _recover(self) -> list[str]:
        """Delete what writers killed before or after their commit left behind (hold the lock).

        Returns
        -------
        list of str
            The transactions cleaned up.
        """
        cleaned: list[str] = []
        prefix = f"{self.spec.kind}-"
        if not self.staging_dir.is_dir():
            return cleaned
        committed = set()
        if self.exists():
            for entry in DeltaTable(str(self.path)).history(limit=5):
                info = entry.get(METADATA_KEY) or {}
                if info.get("txn"):
                    committed.add(info["txn"])
        for staging in sorted(self.staging_dir.glob(f"{prefix}*")):
            txn = staging.name[len(prefix) :]
            if txn not in committed:
                for orphan in self.path.glob(f"year=*/month=*/part-{txn}-*.parquet"):
                    orphan.unlink()
            shutil.rmtree(staging, ignore_errors=True)
            cleaned.append(txn)
        return cleaned

    # --- creation ------------------------------------------------------------------------
    def create(self, *, metadata: Mapping[str, object] | None = None) -> None:
        """Create the empty table (version 0) unless it exists."""
        if self.exists():
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        info = {"kind": "create", "rows": 0, **(metadata or {})}
        try:
            DeltaTable.create(
                str(self.path),
                self.spec.delta_schema(),
                partition_by=list(PARTITION_COLUMNS),
                name=self.spec.kind,
                commit_properties=CommitProperties(custom_metadata={METADATA_KEY: info}),
            )
        except Exception:
            if not self.exists():  # not another process creating it at the same moment
                raise

    def _delta(self) -> DeltaTable:
        if not self.exists():
            msg = f"{self.root}: the store has no {self.spec.kind} table ({self.path})"
            raise StoreError(msg)
        return DeltaTable(str(self.path))

    # --- snapshot --------------------------------------------------------------------------
    def version(self) -> int:
        """Return the current version (-1 when the table does not exist)."""
        return self._delta().version() if self.exists() else -1

    def files(self) -> list[_File]:
        """Return the data files of the current version, oldest month first."""
        if not self.exists():
            return []
        actions = pa.table(self._delta().get_add_actions(flatten=True))
        names = set(actions.column_names)
        columns = {name: actions.column(name).to_pylist() for name in actions.column_names}
        out = []
        for i, rel in enumerate(columns["path"]):
            out.append(
                _File(
                    path=self.path / rel,
                    year=int(columns["partition.year"][i]),
                    month=int(columns["partition.month"][i]),
                    rows=int(columns["num_records"][i] or 0),
                    size=int(columns["size_bytes"][i]),
                    stats_min={
                        c: columns[f"min.{c}"][i]
                        for c in self.spec.stats_columns
                        if f"min.{c}" in names
                    },
                    stats_max={
                        c: columns[f"max.{c}"][i]
                        for c in self.spec.stats_columns
                        if f"max.{c}" in names
                    },
                )
            )
        return sorted(out, key=lambda f: (f.year, f.month, str(f.path)))

    def count(self) -> int:
        """Return the number of rows of the current version (from the Delta log)."""
        return sum(f.rows for f in self.files())

    # --- reading ---------------------------------------------------------------------------
    def select_files(
        self,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        where: Mapping[str, Sequence[str]] | None = None,
    ) -> list[_File]:
        """Return the files that may hold rows in ``[start, end)`` matching `where`."""
        chosen = []
        for f in self.files():
            if (start is not None or end is not None) and not _month_overlaps(
                f.year, f.month, start, end, self.timezone
            ):
                continue
            if where and not all(
                _stats_may_hold(f.stats_min.get(c), f.stats_max.get(c), values)
                for c, values in where.items()
            ):
                continue
            chosen.append(f)
        return chosen

    def filter_expression(
        self,
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        where: Mapping[str, Sequence[str]] | None = None,
    ) -> ds.Expression | None:
        """Return the row filter for a time range and column values (None for no filter)."""
        time_type = pa.timestamp("us", tz=self.timezone)
        parts = []
        if start is not None:
            parts.append(
                ds.field(self.spec.time_column) >= pa.scalar(start.to_pydatetime(), time_type)
            )
        if end is not None:
            parts.append(
                ds.field(self.spec.time_column) < pa.scalar(end.to_pydatetime(), time_type)
            )
        for column, values in (where or {}).items():
            values = sorted({str(v) for v in values})
            if len(values) == 1:
                parts.append(ds.field(column) == values[0])
            else:
                # a range bound lets Parquet statistics skip row groups; is_in does the rest
                parts.append(ds.field(column) >= values[0])
                parts.append(ds.field(column) <= values[-1])
                parts.append(ds.field(column).isin(values))
        if not parts:
            return None
        expression = parts[0]
        for part in parts[1:]:
            expression = expression & part
        return expression

    def read(
        self,
        columns: Sequence[str],
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        where: Mapping[str, Sequence[str]] | None = None,
    ) -> pa.Table:
        """Return `columns` of the rows in ``[start, end)`` matching `where`, as Arrow.

        Only the months overlapping the range are opened, and inside them only the row groups
        whose statistics can match the time range and `where`.
        """
        where = _check_where(where, self.spec)
        files = self.select_files(start=start, end=end, where=where)
        file_schema = self.spec.arrow_schema(self.timezone)
        if not files:
            return file_schema.empty_table().select(list(columns))
        read_columns = list(
            dict.fromkeys(
                [*columns, *(where or {})]
                + ([self.spec.time_column] if start is not None or end is not None else [])
            )
        )
        dataset = ds.dataset([str(f.path) for f in files], format="parquet", schema=file_schema)
        expression = self.filter_expression(start=start, end=end, where=where)
        table = dataset.to_table(columns=read_columns, filter=expression, use_threads=True)
        return table.select(list(columns))

    def map_files(
        self,
        function: Callable[[pa.Table], _R],
        columns: Sequence[str],
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        where: Mapping[str, Sequence[str]] | None = None,
        mapper: Mapper | None = None,
    ) -> list[_R]:
        """Return `function` applied to the matching rows of each data file, file by file.

        For additive work (binning points onto a grid, partial sums) that the caller reduces;
        each call sees `columns` of one file's rows in ``[start, end)`` matching `where`.
        """
        where = _check_where(where, self.spec)
        files = self.select_files(start=start, end=end, where=where)
        file_schema = self.spec.arrow_schema(self.timezone)
        expression = self.filter_expression(start=start, end=end, where=where)
        wanted = list(columns)

        def run(f: _File) -> _R:
            dataset = ds.dataset(str(f.path), format="parquet", schema=file_schema)
            return function(dataset.to_table(columns=wanted, filter=expression))

        return (mapper or thread_mapper(1))(run, files)

    def count_by(
        self,
        columns: Sequence[str],
        *,
        start: pd.Timestamp | None = None,
        end: pd.Timestamp | None = None,
        where: Mapping[str, Sequence[str]] | None = None,
        threads: int = 2,
        mapper: Mapper | None = None,
    ) -> pd.DataFrame:
        """Return row counts by partition year, month and string `columns`.

        Each file's `columns` are read as Parquet dictionary codes and counted with
        ``np.bincount``: no string is materialised. Row groups outside `where` are skipped.
        The files are counted by `mapper` (default: `threads` local threads; see
        :mod:`geodata.cluster` for a Dask cluster) and the counts added up here.

        Returns
        -------
        DataFrame
            ``year``, ``month``, the `columns` and ``incidents`` (only non-zero groups).
        """
        columns = list(columns)
        where = _check_where(where, self.spec)
        files = self.select_files(start=start, end=end, where=where)
        tz = self.timezone
        expression = self.filter_expression(where=where) if where else None

        def count(f: _File) -> pd.DataFrame:
            first = pd.Timestamp(year=f.year, month=f.month, day=1).tz_localize(tz)
            after = (
                pd.Timestamp(year=f.year, month=f.month, day=1) + pd.offsets.MonthBegin(1)
            ).tz_localize(tz)
            cut = (start is not None and start > first) or (end is not None and end < after)
            read = list(
                dict.fromkeys([*columns, *(where or {})] + ([self.spec.time_column] if cut else []))
            )
            whole = expression is None and not cut  # the file's own counts: cacheable
            if whole and (cached := self._cached_counts(f, columns)) is not None:
                return cached
            if expression is None:
                table = pq.read_table(f.path, columns=read, read_dictionary=columns)
            else:
                fmt = ds.ParquetFileFormat(read_options={"dictionary_columns": columns})
                table = ds.dataset(str(f.path), format=fmt).to_table(
                    columns=read, filter=expression
                )
            keep = None
            if cut:
                stamps = table.column(self.spec.time_column).to_pandas()
                keep = np.ones(len(stamps), dtype=bool)
                if start is not None:
                    keep &= (stamps >= start).to_numpy()
                if end is not None:
                    keep &= (stamps < end).to_numpy()
            counts = _bincount(table, columns, keep, f.year, f.month)
            if whole:
                self._cache_counts(f, columns, counts)
            return counts

        empty = pd.DataFrame(columns=["year", "month", *columns, "incidents"])
        if not files:
            return empty.astype({c: _STRING for c in columns} | {"incidents": "int64"})
        parts = (mapper or thread_mapper(threads))(count, files)
        # one Arrow table, then one conversion: strings become Arrow-backed without a copy
        frame = pa.concat_tables(parts).to_pandas(types_mapper=_string_mapper)
        months = Counter((f.year, f.month) for f in files)
        if max(months.values()) > 1:  # a month held in more than one file: add its groups up
            keys = ["year", "month", *columns]
            frame = frame.groupby(keys, dropna=False, sort=False, as_index=False)["incidents"].sum()
        return frame.astype({c: _STRING for c in columns} | {"incidents": "int64"})

    @property
    def counts_cache_dir(self) -> Path:
        """Return where per-file counts are cached (beside the table, outside its folder)."""
        return self.root / "cache" / f"{self.spec.kind}-counts"

    def _counts_path(self, f: _File | Path, columns: Sequence[str]) -> Path:
        # data files are immutable and uniquely named, so (file, columns) fixes the counts
        path = f if isinstance(f, Path) else f.path
        key = hashlib.sha1(_relative(path, self.path).encode()).hexdigest()[:20]
        return self.counts_cache_dir / ",".join(columns) / f"{key}.arrow"

    def _cached_counts(self, f: _File, columns: Sequence[str]) -> pa.Table | None:
        """Return the cached counts of one data file, or None (never cached, or unreadable)."""
        path = self._counts_path(f, columns)
        try:
            with pa.memory_map(str(path)) as source:
                return pa.ipc.open_file(source).read_all()
        except (OSError, pa.ArrowInvalid):
            return None

    def _cache_counts(self, f: _File | Path, columns: Sequence[str], counts: pa.Table) -> None:
        """Cache one data file's counts; written whole (temp + rename) or not at all."""
        path = self._counts_path(f, columns)
        try:
            path.parent.mkdir(parents=True, exist_ok=True)
            temporary = path.with_name(f"{path.stem}.{os.getpid()}.{threading.get_ident()}.tmp")
            with (
                pa.OSFile(str(temporary), "wb") as sink,
                pa.ipc.new_file(sink, counts.schema) as writer,
            ):
                writer.write_table(counts)
            os.replace(temporary, path)
        except OSError:  # a read-only store still counts, only without the cache
            return

    # --- writing ---------------------------------------------------------------------------
    @contextlib.contextmanager
    def _transaction(self) -> Iterator[tuple[str, Path]]:
        """Hold the write lock for one new version; yield its transaction id and staging folder.

        The staging folder marks the transaction while it runs: a writer killed before its
        commit leaves it behind, and the next writer (:meth:`_recover`) deletes the data files
        named after the transaction. A Python-level failure (not a kill) deletes them at once.
        """
        with self.lock():
            self._recover()
            self.create()
            txn = uuid.uuid4().hex[:16]
            staging = self.staging_dir / f"{self.spec.kind}-{txn}"
            staging.mkdir(parents=True)
            try:
                yield txn, staging
            except BaseException:
                if not self._committed(txn):
                    for orphan in self.path.glob(f"year=*/month=*/part-{txn}-*.parquet"):
                        orphan.unlink()
                raise
            finally:
                shutil.rmtree(staging, ignore_errors=True)

    def upsert_batches(
        self,
        batches: Iterable[pd.DataFrame | pa.Table],
        *,
        source: Mapping[str, object] | None = None,
    ) -> tuple[int, int, int]:
        """Write the batches of one ingest as one version; rows replace stored rows by id.

        Memory does not grow with the rows written: batches wait in memory up to
        :data:`BUFFER_BYTES`, then are sorted by month into LZ4 Arrow staging files; the ids
        are kept in memory up to :data:`ID_HOLD` (about 25 bytes each), then on disk by hash
        partition (:class:`geodata._idspill.SpilledIds`); each month is written in files of at
        most :data:`FILE_ROWS` rows.

        Parameters
        ----------
        batches
            Frames (or Arrow tables) with the spec's columns (a missing one is stored as null,
            others are left out); ids unique across all batches.
        source
            The ingest summary committed with the version. It is read after the last batch,
            so a streaming reader may fill it in while it yields batches.

        Returns
        -------
        tuple of int
            ``(new, replaced, version)``.

        Raises
        ------
        ValueError
            If an id occurs twice among the batches (nothing is written).
        """
        with self._transaction() as (txn, staging):
            months, incoming = self._stage(batches, staging)
            try:
                fault_point("staged")
                twice = incoming.repeated()
                if len(twice):
                    msg = (
                        f"{len(twice)} {self.spec.id_column} values occur more than once in "
                        f"one write (e.g. {twice[0].as_py()!r}); the reader rejects duplicates "
                        "first"
                    )
                    raise ValueError(msg)
                actions, replaced, rows, counted = self._rewrite(months, incoming, txn)
            finally:
                months.close()
            new = len(incoming) - replaced
            info = {
                "kind": "ingest",
                "txn": txn,
                "rows": rows,
                "rows_new": new,
                "rows_replaced": replaced,
                "source": _jsonable(dict(source or {}) | {"rows_new": new,
                                                           "rows_replaced": replaced}),
            }  # fmt: skip
            fault_point("before-commit")
            self._commit(actions, info)
            fault_point("committed")
        self._keep_counts(counted)
        return new, replaced, self.version()

    def warm_counts(self) -> None:
        """Cache the per-file counts of every grouping in ``spec.count_sets`` (new files only).

        Runs after a commit, outside the transaction: a crash here loses nothing but cache
        entries, which the next count recomputes.
        """
        for columns in self.spec.count_sets:
            self.count_by(list(columns))

    def _keep_counts(self, counted: Mapping[Path, Mapping[tuple[str, ...], pa.Table]]) -> None:
        """Cache the counts the writers made of the files just committed (see :meth:`_rewrite`).

        The counts of ``spec.count_sets`` that :meth:`count_by` would read back from each new
        file, made from its rows while they were in memory; after the commit, outside the
        transaction, as :meth:`warm_counts` (which counts any file still without them).
        """
        for path, sets in counted.items():
            for columns, counts in sets.items():
                self._cache_counts(path, columns, counts)
        if any(
            not self._counts_path(f, columns).exists()
            for f in self.files()
            for columns in self.spec.count_sets
        ):
            self.warm_counts()

    def _committed(self, txn: str) -> bool:
        return any(
            (entry.get(METADATA_KEY) or {}).get("txn") == txn
            for entry in self._delta().history(limit=3)
        )

    def _stage(
        self, batches: Iterable[pd.DataFrame | pa.Table], staging: Path
    ) -> tuple[_Months, _IdSet | SpilledIds]:
        """Sort the batches' rows into months (one sort per batch); return them and the ids."""
        file_schema = self.spec.arrow_schema(self.timezone)
        months = _Months(staging, file_schema, order=self._order_keys)
        ids = _IdLog(staging / "ids")
        try:
            for batch in batches:
                table = self._to_arrow(batch, file_schema)
                if table.num_rows == 0:
                    continue
                local = pc.local_timestamp(table.column(self.spec.time_column))
                if local.null_count:
                    msg = f"{self.spec.time_column} is missing in {local.null_count} rows"
                    raise ValueError(msg)
                key = pc.year(local).to_numpy().astype(np.int32) * 100 + pc.month(
                    local
                ).to_numpy().astype(np.int32)
                ids.add(table.column(self.spec.id_column).combine_chunks())
                months.add(table, key)
                fault_point("batch-staged")
        except BaseException:
            months.close()
            raise
        return months, ids.done()

    def _to_arrow(self, batch: pd.DataFrame | pa.Table, file_schema: pa.Schema) -> pa.Table:
        if isinstance(batch, pa.Table):
            return batch.select(file_schema.names).cast(file_schema)
        if not len(batch):
            return file_schema.empty_table()
        # column by column (a column the batch lacks is all null): no reindexed copy of the
        # frame, and a time column's instants are kept as they are (the schema names the zone)
        time_columns = set(self.spec.time_columns)
        arrays = []
        for column in file_schema:
            values = batch[column.name] if column.name in batch.columns else None
            zone = getattr(getattr(values, "dtype", None), "tz", None)
            if column.name in time_columns and zone is None:
                # missing or naive: stored as null only if it is not the table's time and is empty
                if column.name == self.spec.time_column or (
                    values is not None and values.notna().any()
                ):
                    msg = f"{column.name} must be tz-aware to be stored"
                    raise ValueError(msg)
                values = None
            if values is None:
                arrays.append(pa.nulls(len(batch), column.type))
                continue
            try:
                arrays.append(pa.array(values, type=column.type, from_pandas=True))
            except (pa.ArrowInvalid, pa.ArrowTypeError) as error:
                msg = f"column {column.name} cannot be stored as {column.type}: {error}"
                raise type(error)(msg) from error
        return pa.Table.from_arrays(arrays, schema=file_schema)

    def _rewrite(
        self, months: _Months, incoming: _IdSet | SpilledIds, txn: str
    ) -> tuple[list[AddAction | RemoveAction], int, int, dict[Path, _Counts]]:
        """Write the new files of every month that changes; return actions, replaced, rows.

        A month that receives rows is written again whole (its stored rows, less those
        replaced, then the new ones) in files of at most :data:`FILE_ROWS` rows; in a month
        that only loses replaced rows, only the files holding them are written again. Also
        returns the counts of ``spec.count_sets`` of each new file (see :meth:`_keep_counts`).

        When every changed month fits in one file and the new rows are held in memory, each
        month's new rows are gathered, sorted and written by the writer threads (one file's
        rows are the same whatever their order before the sort, which is total: the id is its
        last key); otherwise all held rows are sorted at once first, as the files are cut from
        the sorted rows.
        """
        file_schema = self.spec.arrow_schema(self.timezone)
        files = self.files()
        drops = self._replaced_rows(files, set(months.keys()), incoming)
        incoming.release()
        by_month: dict[tuple[int, int], list[_File]] = {}
        for f in files:
            by_month.setdefault((f.year, f.month), []).append(f)
        changed = set(months.keys()) | {(f.year, f.month) for f in files if f.path in drops}
        old_of = {
            key: [f for f in by_month.get(key, []) if key in months or f.path in drops]
            for key in changed
        }
        dropped_of = {
            key: sum(int(pc.sum(drops[f.path]).as_py() or 0) for f in old if f.path in drops)
            for key, old in old_of.items()
        }
        totals = {
            key: sum(f.rows for f in old) - dropped_of[key] + months.rows(key)
            for key, old in old_of.items()
        }
        now = int(time.time() * 1000)
        actions: list[AddAction | RemoveAction] = []
        removed: set[Path] = set()
        replaced = 0
        k = 0
        with _FileWriter(self._write_file) as writer:
            for key in sorted(changed):
                year, month = key
                old = old_of[key]
                dropped = dropped_of[key]
                replaced += dropped
                partition: dict[str, str | None] = {"year": str(year), "month": str(month)}
                for f in old:
                    actions.append(
                        RemoveAction(_relative(f.path, self.path), True, now, f.size, partition)
                    )
                    removed.add(f.path)

                def parts(old: list[_File] = old, key: tuple[int, int] = key) -> Iterator[pa.Table]:
                    yield from parts_of(old, drops, file_schema)
                    yield from months.take(key)

                total = totals[key]
                if months.groupable and 0 < total <= FILE_ROWS:
                    # one file: its rows are gathered (and sorted) by the writer thread
                    new = months.rows_of(key, sort=() if old else self._order_keys)
                    gathered = _Gathered([*parts_of(old, drops, file_schema)], new)
                    writer.submit(gathered, year, month, f"part-{txn}-{k:05d}", now, not old)
                    k += 1
                    fault_point("partition-written")
                    continue
                if months.groupable and not old:  # several files, cut from the sorted rows
                    held, ranked = months.order_of(key, sort=self._order_keys)
                    size = -(-total // -(-total // FILE_ROWS))  # as _chunks cuts them
                    for a in range(0, total, size):
                        piece = pa.array(ranked[a : a + size])
                        gathered = _Gathered([], partial(held.take, piece))
                        writer.submit(gathered, year, month, f"part-{txn}-{k:05d}", now, True)
                        k += 1
                    fault_point("partition-written")
                    continue
                if months.groupable:  # several files, cut from the month's sorted rows
                    sorted_new = months.rows_of(key, sort=self._order_keys)()
                    parts_of_month = [*parts_of(old, drops, file_schema), sorted_new]
                    for chunk in _chunks(parts_of_month, total, file_schema):
                        writer.submit(chunk, year, month, f"part-{txn}-{k:05d}", now, not old)
                        k += 1
                    fault_point("partition-written")
                    continue
                presorted = months.presorted and not old
                for chunk in _chunks(parts(), total, file_schema):
                    writer.submit(chunk, year, month, f"part-{txn}-{k:05d}", now, presorted)
                    k += 1
                fault_point("partition-written")
        actions.extend(writer.actions)
        rows = sum(f.rows for f in files if f.path not in removed) + sum(
            int(json.loads(a.stats)["numRecords"]) for a in actions if isinstance(a, AddAction)
        )
        counted = {
            self.path / a.path: writer.counts[a.path] for a in actions if a.path in writer.counts
        }
        return actions, replaced, rows, counted

    def _replaced_rows(
        self, files: Sequence[_File], months: set[tuple[int, int]], incoming: _IdSet | SpilledIds
    ) -> dict[Path, pa.Array]:
        """Return, per stored file holding an incoming id, the mask of its rows replaced.

        Files of months outside the write whose id statistics cannot hold an incoming id are
        not opened; the others' ids are read one file at a time and looked up by hash (ids in
        memory: :meth:`_IdSet.rows_in`; on disk, partition by partition:
        :meth:`SpilledIds.rows_in`).
        """
        if not len(incoming) or not files:
            return {}
        column = self.spec.id_column
        outside = [f for f in files if (f.year, f.month) not in months]
        ranges = [(f.stats_min.get(column), f.stats_max.get(column)) for f in outside]
        may_hold = incoming.may_hold(ranges) if outside else []
        chosen = [f.path for f in files if (f.year, f.month) in months] + [
            f.path for f, hold in zip(outside, may_hold, strict=True) if hold
        ]
        masks = incoming.rows_in(chosen, lambda p: pq.read_table(p, columns=[column]).column(0))
        return {path: pa.array(mask) for path, mask in masks.items()}

    @property
    def _order_keys(self) -> tuple[str, ...]:
        """Return the columns each data file is sorted by (area, time, then the id)."""
        return (*self.spec.sort_columns, self.spec.id_column)

    def _write_file(
        self,
        table: pa.Table | _Gathered,
        year: int,
        month: int,
        stem: str,
        now: int,
        presorted: bool = False,
    ) -> tuple[AddAction, _Counts]:
        """Write one data file of `table` (sorted first unless `presorted`).

        Returns its add action and its counts of ``spec.count_sets`` (:func:`_bincount` of
        its rows, what :meth:`count_by` reads back from the file).
        """
        if isinstance(table, _Gathered):
            table = table.table()
        if not presorted:
            table = table.sort_by([(c, "ascending") for c in self._order_keys])
        rel = f"year={year}/month={month}/{stem}.parquet"
        path = self.path / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(
            table,
            path,
            compression="zstd",
            row_group_size=ROW_GROUP_ROWS,
            **_encodings(table.schema),
        )
        with open(path, "rb") as handle:
            os.fsync(handle.fileno())
        stats: dict[str, object] = {
            "numRecords": table.num_rows,
            "minValues": {},
            "maxValues": {},
            "nullCount": {},
        }
        for column in self.spec.stats_columns:
            values = table.column(column)
            bounds = pc.min_max(values)
            if bounds["min"].is_valid:
                stats["minValues"][column] = bounds["min"].as_py()  # type: ignore[index]
                stats["maxValues"][column] = bounds["max"].as_py()  # type: ignore[index]
            stats["nullCount"][column] = values.null_count  # type: ignore[index]
        action = AddAction(
            rel,
            path.stat().st_size,
            {"year": str(year), "month": str(month)},
            now,
            True,
            json.dumps(stats),
        )
        counts = {
            tuple(columns): _bincount(table, columns, None, year, month)
            for columns in self.spec.count_sets
        }
        return action, counts

    def _commit(self, actions: list[AddAction | RemoveAction], info: Mapping) -> None:
        self._delta().create_write_transaction(
            actions,
            "append",
            self.spec.delta_schema(),
            partition_by=list(PARTITION_COLUMNS),
            commit_properties=CommitProperties(custom_metadata={METADATA_KEY: dict(info)}),
        )

    def replace_all(self, tables: Iterable[pa.Table], *, metadata: Mapping[str, object]) -> int:
        """Write `tables` as the whole content of a new version (used by the migration).

        Returns
        -------
        int
            The rows written.
        """
        with self._transaction() as (txn, staging):
            months, _ = self._stage(tables, staging)
            now = int(time.time() * 1000)
            actions: list[AddAction | RemoveAction] = [
                RemoveAction(
                    _relative(f.path, self.path),
                    True,
                    now,
                    f.size,
                    {"year": str(f.year), "month": str(f.month)},
                )
                for f in self.files()
            ]
            file_schema = self.spec.arrow_schema(self.timezone)
            rows = 0
            k = 0
            try:
                for year, month in sorted(months.keys()):
                    parts = months.take((year, month))
                    for chunk in _chunks(parts, months.rows((year, month)), file_schema):
                        rows += chunk.num_rows
                        stem = f"part-{txn}-{k:05d}"
                        written = self._write_file(chunk, year, month, stem, now, months.presorted)
                        actions.append(written[0])
                        k += 1
            finally:
                months.close()
            self._commit(actions, {"kind": "migrate", "txn": txn, "rows": rows, **metadata})
        self.warm_counts()
        return rows

    # --- versions ----------------------------------------------------------------------------
    def history(self) -> list[TableVersion]:
        """Return every version, newest first, marking those the current state is made of.

        A version is *active* when the current state includes it: a rollback to version k
        makes the versions after k (up to the rollback) inactive.
        """
        if not self.exists():
            return []
        entries = sorted(self._delta().history(), key=lambda e: -int(e["version"]))
        versions = []
        for entry in entries:
            info = entry.get(METADATA_KEY) or {}
            source = info.get("source") or {}
            kind = info.get("kind") or str(entry.get("operation", "")).lower()
            restored = info.get("to")
            if restored is None and entry.get("operation") == "RESTORE":
                with contextlib.suppress(KeyError, TypeError, ValueError):
                    restored = int(entry["operationParameters"]["version"])
            versions.append(
                TableVersion(
                    version=int(entry["version"]),
                    timestamp=pd.Timestamp(int(entry["timestamp"]), unit="ms", tz="UTC"),
                    operation=kind,
                    rows=info.get("rows"),
                    rows_new=info.get("rows_new"),
                    rows_replaced=info.get("rows_replaced"),
                    file=source.get("file") if isinstance(source, dict) else None,
                    restored=None if restored is None else int(restored),
                    source=source if isinstance(source, dict) else {},
                )
            )
        if versions:
            versions[0].is_current = True
        active = _lineage(versions)
        for v in versions:
            v.is_active = v.version in active
        return versions

    def active_sources(self) -> list[dict]:
        """Return the ingest summaries the current state is made of, oldest first."""
        out: list[dict] = []
        for v in reversed(self.history()):
            if not v.is_active:
                continue
            if v.operation == "migrate":
                out.extend(v.source.get("sources", []) if v.source else [])
            elif v.source:
                out.append(v.source)
        return out

    def rollback(self, version: int) -> TableVersion:
        """Make the table's content that of `version` again, as a new version.

        Raises
        ------
        StoreError
            If `version` does not exist or its files are gone.
        """
        with self.lock():
            self._recover()
            table = self._delta()
            current = table.version()
            if not 0 <= version <= current:
                msg = (
                    f"{self.root}: the {self.spec.kind} table has versions 0 to {current}, "
                    f"not {version} (see `python -m geodata history`)"
                )
                raise StoreError(msg)
            rows = _row_count(DeltaTable(str(self.path), version=version))
            fault_point("before-commit")
            try:
                table.restore(
                    version,
                    commit_properties=CommitProperties(
                        custom_metadata={
                            METADATA_KEY: {"kind": "rollback", "to": version, "rows": rows}
                        }
                    ),
                )
            except OSError as err:  # pragma: no cover - files deleted by hand
                msg = f"{self.root}: cannot restore version {version}: {err}"
                raise StoreError(msg) from err
            fault_point("committed")
        return self.history()[0]


class _Months:
    """Rows of one write by local month: held in memory while small, else staged to disk.

    While the rows held stay under `hold` bytes nothing is staged: :meth:`take` sorts them all
    once, by month and then in each file's own order (`order`), and hands each month's rows
    back already sorted (:attr:`presorted`), so they are written without another sort. A write
    that outgrows `hold` is staged from then on: batches wait in memory up to `budget` bytes,
    then all of them are sorted by month at once and each month's rows are appended to its LZ4
    Arrow IPC file; :meth:`take` gives a month's rows back in pieces.
    """

    def __init__(
        self,
        staging: Path,
        schema: pa.Schema,
        budget: int | None = None,
        *,
        hold: int | None = None,
        order: Sequence[str] = (),
    ) -> None:
        self._staging = staging
        self._schema = schema
        self._budget = BUFFER_BYTES if budget is None else budget
        self._hold = HOLD_BYTES if hold is None else hold
        self._order = tuple(order)
        self._held: list[pa.Table] = []
        self._keys: list[np.ndarray] = []
        self._bytes = 0
        self._spilled = False
        self._rows: dict[tuple[int, int], int] = {}
        self._writers: dict[tuple[int, int], pa.ipc.RecordBatchStreamWriter] = {}
        self._sorted: pa.Table | None = None
        self._cuts: dict[tuple[int, int], tuple[int, int]] = {}
        self._grouped: tuple[pa.Table, np.ndarray, dict[tuple[int, int], tuple[int, int]]] | None
        self._grouped = None

    @property
    def presorted(self) -> bool:
        """Whether :meth:`take` yields each month's rows sorted in the files' order."""
        return not self._spilled and bool(self._order)

    @property
    def groupable(self) -> bool:
        """Whether :meth:`rows_of` can give each month's rows (all are held in memory)."""
        return not self._spilled and self._sorted is None

    def rows_of(self, key: tuple[int, int], *, sort: Sequence[str] = ()) -> Callable[[], pa.Table]:
        """Return a function that gathers month `key`'s held rows, sorted by `sort` if given.

        Only while :attr:`groupable`. Months are found by one stable sort of the month keys;
        the rows are gathered when the function is called (on a writer thread), so that only
        the months being written are copied; without `sort` they come in the order they came.
        The sort is the one :meth:`take` gives a month's rows (each file's own order, whose
        last key, the id, makes it total).
        """
        held, _, spans = self._group()
        if key not in spans:
            return self._schema.empty_table

        def gather() -> pa.Table:
            _, rows = self.order_of(key, sort=sort)
            return held.take(pa.array(rows))

        return gather

    def order_of(
        self, key: tuple[int, int], *, sort: Sequence[str] = ()
    ) -> tuple[pa.Table, np.ndarray]:
        """Return the held rows (joined) and the positions of month `key`'s rows among them.

        In the order they came, or sorted by `sort` (see :meth:`rows_of`). Only while
        :attr:`groupable`.
        """
        held, order, spans = self._group()
        a, b = spans.get(key, (0, 0))
        rows = order[a:b]  # ascending: the stable sort kept the file's order
        if sort and len(rows):
            keys = held.select(list(sort)).take(pa.array(rows))
            rows = rows[_sort_indices(keys, sort).to_numpy()]
        return held, rows

    def _group(self) -> tuple[pa.Table, np.ndarray, dict[tuple[int, int], tuple[int, int]]]:
        """Join the held rows and find each month's among them, once (on the caller's thread)."""
        assert self.groupable
        if self._grouped is None:
            key_all = np.concatenate(self._keys) if self._keys else np.empty(0, np.int64)
            order = np.argsort(key_all, kind="stable")
            ordered = key_all[order]
            cuts = [0, *(np.flatnonzero(ordered[1:] != ordered[:-1]) + 1).tolist(), len(order)]
            spans = {
                divmod(int(ordered[a]), 100): (a, b) for a, b in itertools.pairwise(cuts) if b > a
            }
            self._grouped = (self._joined(), order, spans)
        return self._grouped

    def _joined(self) -> pa.Table:
        """Return the held rows as one table of one chunk per column, and hold nothing more.

        A take from a table of many chunks joins its chunks first, on every call; joined once,
        each month's rows are taken directly. Column by column, each column's batches released
        as it is joined, so that the rows are not held twice.
        """
        table = pa.concat_tables(self._held) if self._held else self._schema.empty_table()
        self._held, self._keys, self._bytes = [], [], 0
        columns = dict(zip(table.column_names, table.columns, strict=True))
        del table
        for name in list(columns):
            columns[name] = columns[name].combine_chunks()
        return pa.table(columns, schema=self._schema)

    def add(self, table: pa.Table, key: np.ndarray) -> None:
        """Hold `table`, whose rows fall in the months ``key = year * 100 + month``."""
        codes, counts = np.unique(key, return_counts=True)
        for code, count in zip(codes.tolist(), counts.tolist(), strict=True):
            month = divmod(int(code), 100)
            self._rows[month] = self._rows.get(month, 0) + int(count)
        self._held.append(table)
        self._keys.append(key)
        self._bytes += table.nbytes
        if self._spilled and self._bytes > self._budget:
            self._flush()
        elif not self._spilled and self._bytes > self._hold:
            # the rows held so far go to staging a budget's worth at a time, as later rows
            # will: a sorted copy of all of them beside them cost 500 MB more at that moment
            self._spilled = True
            held, keys = self._held, self._keys
            while held:
                size, n = 0, 0
                while n < len(held) and (n == 0 or size + held[n].nbytes <= self._budget):
                    size += held[n].nbytes
                    n += 1
                self._held, self._keys = held[:n], keys[:n]
                del held[:n], keys[:n]
                self._flush()

    def _flush(self) -> None:
        """Sort the held rows by month and append each month's rows to its staging file."""
        if not self._held:
            return
        key = np.concatenate(self._keys)
        order = np.argsort(key, kind="stable")
        key = key[order]
        table = self._take_held(pa.array(order))
        cuts = [0, *(np.flatnonzero(key[1:] != key[:-1]) + 1).tolist(), len(key)]
        for a, b in itertools.pairwise(cuts):
            month = divmod(int(key[a]), 100)
            writer = self._writers.get(month)
            if writer is None:
                options = pa.ipc.IpcWriteOptions(compression="lz4")
                writer = pa.ipc.new_stream(str(self._path(month)), self._schema, options=options)
                self._writers[month] = writer
            writer.write_table(table.slice(a, b - a))

    def _sort_held(self) -> None:
        """Sort every held row once, by month then `order`; keep each month's slice."""
        key = np.concatenate(self._keys) if self._keys else np.empty(0, np.int64)
        held = pa.concat_tables(self._held) if self._held else self._schema.empty_table()
        keys: dict[str, pa.Array | np.ndarray] = {"__month": key.astype(np.int64)}
        for name in self._order[:-1]:
            keys[name] = _sortable(held.column(name))
        for name in self._order[-1:]:  # the id: compared only between rows equal in the rest
            keys[name] = held.column(name).combine_chunks()
        del held
        order = pc.sort_indices(
            pa.table(keys), sort_keys=[(name, "ascending") for name in keys]
        ).to_numpy()
        self._sorted = self._take_held(pa.array(order))
        key = key[order]
        cuts = [0, *(np.flatnonzero(key[1:] != key[:-1]) + 1).tolist(), len(key)]
        for a, b in itertools.pairwise(cuts):
            if b > a:
                self._cuts[divmod(int(key[a]), 100)] = (a, b)

    def _take_held(self, indices: pa.Array) -> pa.Table:
        """Return the held rows in the order `indices`, and hold nothing more.

        Two columns at a time, on two threads (Arrow's take releases the GIL): each unsorted
        column is released as its sorted copy is made, so the rows are not held twice.
        """
        table = pa.concat_tables(self._held) if self._held else self._schema.empty_table()
        self._held, self._keys, self._bytes = [], [], 0
        columns = dict(zip(table.column_names, table.columns, strict=True))
        del table
        names = list(columns)
        with ThreadPoolExecutor(max_workers=2, thread_name_prefix="take") as pool:
            pending: list[tuple[str, Future[pa.ChunkedArray]]] = []
            for name in names:
                pending.append((name, pool.submit(columns[name].take, indices)))
                if len(pending) == 2:
                    done, future = pending.pop(0)
                    columns[done] = future.result()
            for done, future in pending:
                columns[done] = future.result()
        return pa.table(columns, schema=self._schema)

    def _path(self, month: tuple[int, int]) -> Path:
        return self._staging / f"{month[0]:04d}-{month[1]:02d}.arrows"

    def keys(self) -> list[tuple[int, int]]:
        """Return the months that received rows."""
        return sorted(self._rows)

    def __contains__(self, key: object) -> bool:
        return key in self._rows

    def rows(self, key: tuple[int, int]) -> int:
        """Return the rows of month `key`."""
        return self._rows.get(key, 0)

    def take(self, key: tuple[int, int]) -> Iterator[pa.Table]:
        """Yield the rows of month `key` in pieces (sorted when :attr:`presorted`)."""
        if not self._spilled:
            if self._sorted is None:
                self._sort_held()
            assert self._sorted is not None
            where = self._cuts.pop(key, None)
            if where is not None:
                yield self._sorted.slice(where[0], where[1] - where[0])
            if not self._cuts:
                self._sorted = None
            return
        self._flush()
        writer = self._writers.pop(key, None)
        if writer is None:
            return
        writer.close()
        path = self._path(key)
        with pa.ipc.open_stream(pa.OSFile(str(path))) as reader:
            for batch in reader:
                yield pa.Table.from_batches([batch], self._schema)
        path.unlink()

    def close(self) -> None:
        """Close the staging files (the transaction deletes them)."""
        for writer in self._writers.values():
            writer.close()
        self._writers.clear()
        self._held, self._keys = [], []
        self._sorted = None
        self._grouped = None


def _sort_indices(table: pa.Table, order: Sequence[str]) -> pa.Array:
    """Return the row order of `table` sorted by the columns `order` (as :meth:`_Months.take`).

    Text keys but the last are compared as their ranks (:func:`_sortable`); the last, the id,
    only breaks ties, as text.
    """
    keys: dict[str, pa.Array] = {name: _sortable(table.column(name)) for name in order[:-1]}
    keys |= {name: table.column(name).combine_chunks() for name in order[-1:]}
    return pc.sort_indices(pa.table(keys), sort_keys=[(name, "ascending") for name in keys])


def _sortable(values: pa.ChunkedArray) -> pa.Array:
    """Return `values` as something Arrow sorts fast in the same order (strings: their ranks)."""
    if not (pa.types.is_string(values.type) or pa.types.is_large_string(values.type)):
        return values.combine_chunks()
    encoded = pc.dictionary_encode(values.combine_chunks())
    rank = pc.rank(encoded.dictionary, sort_keys="ascending", tiebreaker="dense")
    codes = pc.take(rank, encoded.indices)  # nulls stay null, and sort last as strings do
    return codes


class _IdLog:
    """The ids of one write as its batches come: in memory up to :data:`ID_HOLD`, then on disk.

    Parameters
    ----------
    folder
        Where the ids go once they are too many (inside the write's staging folder).
    """

    def __init__(self, folder: Path) -> None:
        self._folder = folder
        self._ids: list[pa.Array] = []
        self._hashes: list[np.ndarray] = []
        self._n = 0
        self._spilled: SpilledIds | None = None

    def add(self, ids: pa.Array) -> None:
        """Keep the ids of one batch."""
        hashes = hash_strings(ids)
        if self._spilled is not None:
            self._spilled.add(ids, hashes)
            return
        self._ids.append(ids)
        self._hashes.append(hashes)
        self._n += len(ids)
        if self._n > ID_HOLD:
            self._spilled = SpilledIds(self._folder)
            for held, keys in zip(self._ids, self._hashes, strict=True):
                self._spilled.add(held, keys)
            self._ids, self._hashes = [], []

    def done(self) -> _IdSet | SpilledIds:
        """Return the ids, for the write's checks."""
        return self._spilled if self._spilled is not None else _IdSet(self._ids, self._hashes)


class _IdSet:
    """The ids of one write, looked up by 64-bit hash (see :mod:`geodata._idkernel`).

    Holds the ids as they came (Arrow chunks, not copied) and their hashes, sorted: about 25
    bytes an id. A hash match is confirmed on the text.
    """

    def __init__(self, ids: Sequence[pa.Array], hashes: Sequence[np.ndarray]) -> None:
        self.ids = pa.chunked_array(ids, pa.string())
        self._sorted = np.concatenate(hashes) if hashes else np.empty(0, np.uint64)
        self._sorted.sort()
        self._in_order: np.ndarray | None = None  # the hashes in id order, when first needed
        self._by_hash: np.ndarray | None = None  # their sorting order, when first needed
        self._released: int | None = None  # the number of ids, once they are let go

    @property
    def _hashes(self) -> np.ndarray:
        if self._in_order is None:
            self._in_order = hash_strings(self.ids)
        return self._in_order

    def __len__(self) -> int:
        return len(self.ids) if self._released is None else self._released

    def release(self) -> None:
        """Let the ids go (about 25 bytes an id), keeping their number.

        A write needs them until it knows which stored rows they replace, not while it writes
        its files.
        """
        if self._released is None:
            self._released = len(self.ids)
        self.ids = pa.chunked_array([], pa.string())
        self._sorted = np.empty(0, np.uint64)
        self._in_order = self._by_hash = None

    def repeated(self) -> pa.Array:
        """Return the ids that occur more than once (equal hashes are compared as text)."""
        same = np.flatnonzero(self._sorted[1:] == self._sorted[:-1])
        if not same.size:
            return pa.array([], pa.string())
        suspects = self.ids.filter(pa.array(_among(self._hashes, self._sorted[same])))
        counts = pc.value_counts(suspects)
        return counts.field("values").filter(pc.greater(counts.field("counts"), 1))

    def may_hold(self, ranges: Sequence[tuple[str | None, str | None]]) -> list[bool]:
        """Return, per id range ``(least, greatest)``, whether one of the ids may lie in it.

        True for a range not known (None); the others by a binary search of the sorted ids.
        """
        sorted_ids = self.sorted_ids()
        return [_sorted_may_hold(sorted_ids, low, high) for low, high in ranges]

    def rows_in(
        self, paths: Sequence[Path], read_ids: Callable[[Path], pa.Array | pa.ChunkedArray]
    ) -> dict[Path, np.ndarray]:
        """Return, per file holding one of the ids, the mask of its rows with one (by hash)."""
        out: dict[Path, np.ndarray] = {}
        for path in paths:
            mask = self.contains(read_ids(path))
            if mask.any():
                out[path] = mask
        return out

    def contains(self, values: pa.Array | pa.ChunkedArray) -> np.ndarray:
        """Return, per value, whether it is one of the ids."""
        keys = hash_strings(values)
        hit = _among(keys, self._sorted)
        if hit.any():  # confirm the hash hits on the text
            wanted = np.unique(keys[hit])
            left = np.searchsorted(self._sorted, wanted, "left")
            lengths = np.searchsorted(self._sorted, wanted, "right") - left
            starts = np.repeat(left - (np.cumsum(lengths) - lengths), lengths)
            rows = self._order[starts + np.arange(int(lengths.sum()))]
            matching = self.ids.take(pa.array(rows)).combine_chunks()
            found = pc.is_in(values.take(pa.array(np.flatnonzero(hit))), value_set=matching)
            hit[hit] = found.to_numpy(zero_copy_only=False)
        return hit

    @property
    def _order(self) -> np.ndarray:
        """Return the positions of the ids in the order of their sorted hashes."""
        if self._by_hash is None:
            self._by_hash = np.argsort(self._hashes, kind="stable")
        return self._by_hash

    def sorted_ids(self) -> pa.Array:
        """Return the ids in ascending order."""
        return self.ids.take(pc.sort_indices(self.ids)).combine_chunks()


def _among(keys: np.ndarray, ordered: np.ndarray) -> np.ndarray:
    """Return, per hash of `keys`, whether it is in the sorted hashes `ordered`."""
    if not len(ordered):
        return np.zeros(len(keys), dtype=bool)
    at = np.minimum(np.searchsorted(ordered, keys), len(ordered) - 1)
    return ordered[at] == keys


@dataclass
class _Gathered:
    """The rows of one data file, put together on the writer thread that writes it."""

    old: list[pa.Table]
    new: Callable[[], pa.Table]

    def table(self) -> pa.Table:
        return pa.concat_tables([*self.old, self.new()]).combine_chunks()


def parts_of(
    old: Sequence[_File], drops: Mapping[Path, pa.Array], file_schema: pa.Schema
) -> Iterator[pa.Table]:
    """Yield the rows of the stored files `old` that stay (less those `drops` replaces)."""
    for f in old:
        table = pq.read_table(f.path, schema=file_schema)
        drop = drops.get(f.path)
        yield table if drop is None else table.filter(pc.invert(drop))


class _FileWriter:
    """Write data files on other threads while the caller prepares the next one.

    Parquet encoding and compression release the GIL, and so does the ``fsync`` of each file,
    so cutting, encoding and syncing overlap on two cores: `threads` files are written at once
    and at most `ahead` wait (each a file of at most :data:`FILE_ROWS` rows). The actions come
    back in the order the files were submitted. Leaving the ``with`` block waits for every
    file (also after an error, so that no file is written after the transaction cleaned up).
    """

    def __init__(
        self,
        write: Callable[..., tuple[AddAction, _Counts]],
        ahead: int = 2,
        threads: int = 2,
    ) -> None:
        self._write = write
        self._ahead = ahead
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="parquet-writer")
        self._pending: list[Future[tuple[AddAction, _Counts]]] = []
        self.actions: list[AddAction] = []
        #: Per written file (its path in the table): the counts the write function returned.
        self.counts: dict[str, _Counts] = {}

    def _done(self, future: Future[tuple[AddAction, _Counts]]) -> None:
        action, counts = future.result()
        self.actions.append(action)
        self.counts[action.path] = counts

    def __enter__(self) -> _FileWriter:
        return self

    def submit(self, *args: object) -> None:
        """Write one file (arguments of the write function) once a slot is free."""
        # wait for any file in progress, not the oldest: a thread that finished a small month
        # takes the next one while another writes a large one (results are kept in order)
        while self._pending and self._pending[0].done():
            self._done(self._pending.pop(0))
        while True:
            running = [future for future in self._pending if not future.done()]
            if len(running) < self._ahead:
                break
            wait(running, return_when=FIRST_COMPLETED)
        for future in self._pending:
            if future.done() and future.exception() is not None:
                raise future.exception()  # type: ignore[misc]
        self._pending.append(self._pool.submit(self._write, *args))

    def __exit__(self, kind: type[BaseException] | None, *_: object) -> None:
        pending, self._pending = self._pending, []
        try:
            if kind is None:
                for future in pending:
                    self._done(future)
        finally:
            self._pool.shutdown(wait=True)  # after an error too: no file is left being written


def _chunks(parts: Iterable[pa.Table], total: int, schema: pa.Schema) -> Iterator[pa.Table]:
    """Regroup the tables `parts` (`total` rows) into about equal tables of <= FILE_ROWS rows."""
    if total <= 0:
        for _ in parts:  # drain (e.g. a staging file) without writing anything
            pass
        return
    n_files = -(-total // FILE_ROWS)
    size = -(-total // n_files)
    pending: list[pa.Table] = []
    held = 0
    for part in parts:
        while part.num_rows:
            take = min(size - held, part.num_rows)
            pending.append(part.slice(0, take))
            held += take
            part = part.slice(take)
            if held == size:
                yield pa.concat_tables(pending).combine_chunks()
                pending, held = [], 0
    if held:
        yield pa.concat_tables(pending).combine_chunks()


def _row_count(table: DeltaTable) -> int:
    actions = pa.table(table.get_add_actions(flatten=True))
    return int(sum(n or 0 for n in actions.column("num_records").to_pylist()))


def _lineage(versions: Sequence[TableVersion]) -> set[int]:
    """Return the versions the newest one is made of, following rollbacks back."""
    by_version = {v.version: v for v in versions}
    active: set[int] = set()
    current = max(by_version, default=-1)
    while current >= 0:
        v = by_version.get(current)
        if v is None:
            break
        active.add(current)
        if v.operation == "rollback" and v.restored is not None:
            current = v.restored
        else:
            current -= 1
    return active


def _bincount(
    table: pa.Table, columns: Sequence[str], keep: np.ndarray | None, year: int, month: int
) -> pa.Table:
    """Count `table`'s rows by the combined dictionary codes of `columns` (one file's month)."""
    code = np.zeros(table.num_rows, dtype=np.int64)
    dictionaries, sizes = [], []
    for column in columns:
        array = table.column(column)
        if not pa.types.is_dictionary(array.type):
            array = pc.dictionary_encode(array)
        array = array.unify_dictionaries().combine_chunks()
        size = len(array.dictionary) + 1  # the last code stands for a null
        indices = array.indices.to_numpy(zero_copy_only=False)
        indices = np.where(array.is_null().to_numpy(zero_copy_only=False), size - 1, indices)
        code = code * size + indices.astype(np.int64)
        with_null = pa.concat_arrays([array.dictionary, pa.nulls(1, array.dictionary.type)])
        dictionaries.append(with_null)
        sizes.append(size)
    if keep is not None:
        code = code[keep]
    counts = np.bincount(code, minlength=int(np.prod(sizes)))
    hit = np.flatnonzero(counts)
    out: dict[str, pa.Array] = {}
    remainder = hit
    for column, size, dictionary in reversed(list(zip(columns, sizes, dictionaries, strict=True))):
        out[column] = dictionary.take(pa.array(remainder % size)).cast(pa.string())
        remainder = remainder // size
    n = len(hit)
    return pa.table(
        {
            "year": pa.array(np.full(n, year, dtype=np.int64)),
            "month": pa.array(np.full(n, month, dtype=np.int64)),
            **{column: out[column] for column in columns},
            "incidents": pa.array(counts[hit].astype(np.int64)),
        }
    )


def _string_mapper(arrow_type: pa.DataType) -> object:
    return _STRING if pa.types.is_string(arrow_type) else None


def _encodings(schema: pa.Schema) -> dict[str, list[str]]:
    """Return the Parquet encodings of a data file: dictionaries for strings only.

    Codes, names and areas repeat and shrink to dictionary indices. Times and coordinates hardly
    repeat: a dictionary for them is built, overflows and is thrown away, and reads pay for it.
    Their bytes are split by significance instead (``BYTE_STREAM_SPLIT``), which zstd then
    compresses well: on 10M incidents a read of time and coordinates takes about half the CPU
    time of the default encoding and the files are 20% smaller (docs/benchmarks.md).
    """
    strings = [
        f.name for f in schema if pa.types.is_string(f.type) or pa.types.is_large_string(f.type)
    ]
    fixed = [
        f.name
        for f in schema
        if pa.types.is_floating(f.type)
        or pa.types.is_integer(f.type)
        or pa.types.is_timestamp(f.type)
    ]
    return {"use_dictionary": strings, "use_byte_stream_split": fixed}


def _check_where(
    where: Mapping[str, Sequence[str]] | None, spec: TableSpec
) -> dict[str, list[str]] | None:
    if not where:
        return None
    out = {}
    for column, values in where.items():
        if spec.columns.get(column) != "string":
            msg = f"filters apply to string columns of the {spec.kind} table, not {column!r}"
            raise ValueError(msg)
        if isinstance(values, str):
            values = [values]
        out[column] = [str(v) for v in values]
    return out


def _sorted_may_hold(sorted_ids: pa.Array, low: str | None, high: str | None) -> bool:
    """Return True unless no id of the sorted array lies in ``[low, high]`` (binary search)."""
    if low is None or high is None:
        return True
    lo, hi = 0, len(sorted_ids)
    while lo < hi:
        mid = (lo + hi) // 2
        if sorted_ids[mid].as_py() < low:
            lo = mid + 1
        else:
            hi = mid
    return lo < len(sorted_ids) and sorted_ids[lo].as_py() <= high


def _stats_may_hold(low: str | None, high: str | None, values: Sequence[str]) -> bool:
    if low is None or high is None:
        return True
    return any(low <= v <= high for v in values)


def _month_overlaps(
    year: int, month: int, start: pd.Timestamp | None, end: pd.Timestamp | None, tz: str
) -> bool:
    first = pd.Timestamp(year=year, month=month, day=1).tz_localize(tz)
    after = (pd.Timestamp(year=year, month=month, day=1) + pd.offsets.MonthBegin(1)).tz_localize(tz)
    return not ((end is not None and first >= end) or (start is not None and after <= start))


def _relative(path: Path, base: Path) -> str:
    return path.relative_to(base).as_posix()


def _jsonable(value: object) -> object:
    if isinstance(value, dict):
        return {str(k): _jsonable(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_jsonable(v) for v in value]
    if isinstance(value, float) and not np.isfinite(value):
        return None
    if isinstance(value, np.generic):
        return _jsonable(value.item())
    if isinstance(value, str | int | float | bool) or value is None:
        return value
    return str(value)
