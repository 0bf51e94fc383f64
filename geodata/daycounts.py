"""Incidents per local day of a store, counted in Arrow and cached beside the store.

The counts are kept in ``cache/daily-counts/`` of the store, beside the per-file counts of
:class:`geodata.table.RecordTable` (``cache/incidents-counts/``), keyed on
:meth:`geodata.store.IncidentStore.version_token`: a command after the first one reads a few
kilobytes instead of every timestamp. Each data file's own counts are kept too
(``cache/daily-counts/files/``), so the first command after a write counts only the files the
write added. A store that cannot be written counts every time.
:func:`analysis.inputs.load_daily_counts` turns the counts into a daily Series.
"""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.dataset as ds

from geodata import schema
from geodata.cluster import thread_mapper
from geodata.store import IncidentStore

__all__ = ["daily_cache_dir", "store_day_counts", "store_last_day"]


def daily_cache_dir(store: IncidentStore) -> Path:
    """Return the folder of the store's cached daily counts (one file, of its current version)."""
    return store.root / "cache" / "daily-counts"


def _day_numbers(table: pa.Table) -> np.ndarray:
    """Return the local day numbers of a file's dated incidents (days since 1970-01-01)."""
    stamps = table.column(schema.OCCURRED_AT)
    if stamps.null_count:
        stamps = pc.drop_null(stamps)
    if len(stamps) == 0:
        return np.zeros(0, dtype=np.int64)
    if stamps.type.tz is not None:
        stamps = pc.local_timestamp(stamps)
    return stamps.cast(pa.timestamp("us")).to_numpy().astype("datetime64[D]").astype(np.int64)


def _local_days(table: pa.Table) -> tuple[int, np.ndarray]:
    """Return the first local day number of a file's incidents and their counts per day."""
    days = _day_numbers(table)
    if len(days) == 0:
        return 0, np.zeros(0, dtype=np.int64)
    first = int(days.min())
    return first, np.bincount(days - first)


def _cache_path(store: IncidentStore) -> Path:
    """Return the file of the store's cached daily counts at its current version."""
    key = hashlib.sha256(store.version_token().encode()).hexdigest()[:24]
    return daily_cache_dir(store) / f"{key}.npy"


def _cached(store: IncidentStore) -> tuple[int, np.ndarray] | None:
    """Return the cached (first day number, counts per day) of the store, or None."""
    return _load(_cache_path(store))  # None: never cached, or a torn file (count again)


def _cache(store: IncidentStore, first: int, counts: np.ndarray) -> None:
    """Keep the daily counts of the store's current version (only that one) beside it."""
    path = _cache_path(store)
    try:  # the folder is made by _save
        for old in path.parent.glob("*.npy"):
            old.unlink(missing_ok=True)
    except OSError:  # a read-only store still counts, only without the cache
        return
    _save(path, first, counts)


def _save(path: Path, first: int, counts: np.ndarray) -> None:
    """Write (first day number, counts) to `path` whole (temp + rename), or not at all."""
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        scratch = path.with_suffix(f".{os.getpid()}.tmp")
        with scratch.open("wb") as handle:
            np.save(handle, np.concatenate([[first], counts]).astype(np.int64))
        scratch.replace(path)
    except OSError:  # a read-only store still counts, only without the cache
        return


def _load(path: Path) -> tuple[int, np.ndarray] | None:
    """Return the (first day number, counts) saved at `path`, or None (absent or torn)."""
    try:
        saved = np.load(path, allow_pickle=False)
    except (OSError, ValueError):
        return None
    return int(saved[0]), saved[1:]


def _file_days(store: IncidentStore) -> list[tuple[int, np.ndarray]]:
    """Return (first day number, counts per day) of each data file of the current version.

    Data files are immutable and uniquely named, so each file's counts are cached once
    (``cache/daily-counts/files/``): after a write only the files it added are counted (an
    append rewrites only the months it touches). Counts of files no longer in the table are
    dropped (a later rollback counts the files it brings back again).
    """
    table = store.table
    files = [f.path for f in table.files()]
    folder = daily_cache_dir(store) / "files"
    keys = {
        f: hashlib.sha256(str(f.relative_to(table.path)).encode()).hexdigest()[:24] for f in files
    }
    file_schema = table.spec.arrow_schema(table.timezone)

    def run(f: Path) -> tuple[int, np.ndarray]:
        path = folder / f"{keys[f]}.npy"
        if (saved := _load(path)) is not None:
            return saved
        dataset = ds.dataset(str(f), format="parquet", schema=file_schema)
        first, counts = _local_days(dataset.to_table(columns=[schema.OCCURRED_AT]))
        _save(path, first, counts)
        return first, counts

    found = thread_mapper(2)(run, files)
    kept = set(keys.values())
    try:
        for old in folder.glob("*.npy") if folder.is_dir() else ():
            if old.stem not in kept:
                old.unlink(missing_ok=True)
    except OSError:  # a read-only store: nothing was cached either
        pass
    return found


def store_day_counts(store: IncidentStore) -> tuple[int, np.ndarray]:
    """Return the store's incidents per local day: (first day number, counts from that day).

    Day numbers count days since 1970-01-01 in the store's local time. Counted file by file
    from the timestamps in Arrow (``pyarrow.compute.local_timestamp``, then ``np.bincount``),
    without a pandas column of every stored timestamp, and cached (see the module docstring).
    A store without incidents gives ``(0, empty array)``.
    """
    cached = _cached(store)
    if cached is not None:
        return cached
    found = _file_days(store)
    parts = [p for p in found if len(p[1])]
    if not parts:
        return 0, np.zeros(0, dtype=np.int64)
    first = min(start for start, _ in parts)
    counts = np.zeros(max(start + len(c) for start, c in parts) - first, dtype=np.int64)
    for start, part in parts:
        counts[start - first : start - first + len(part)] += part
    _cache(store, first, counts)
    return first, counts


def store_last_day(store: IncidentStore) -> int | None:
    """Return the last local day holding an incident (a day number, as :func:`store_day_counts`).

    The last day of :func:`store_day_counts` without counting every timestamp: the incident
    table is partitioned by each incident's local month (:class:`geodata.table.RecordTable`),
    so the last day lies in the latest month whose files hold rows (the Delta log's row
    counts), and only that month's times are read (a hundredth of ten years). None when the
    store holds no incident.
    """
    if not store.meta_path.exists():
        return None
    table = store.table
    files = [f for f in table.files() if f.rows]
    file_schema = table.spec.arrow_schema(table.timezone)
    for month in sorted({(f.year, f.month) for f in files}, reverse=True):
        paths = [str(f.path) for f in files if (f.year, f.month) == month]
        dataset = ds.dataset(paths, format="parquet", schema=file_schema)
        days = _day_numbers(dataset.to_table(columns=[schema.OCCURRED_AT]))
        if len(days):  # always in the latest month: every stored row has its time
            return int(days.max())
    return None
