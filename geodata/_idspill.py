"""The ids of a large file on disk: partitioned by hash, checked one partition at a time.

An ingest keeps every id it reads, for two rules: a repeated id is rejected with the line it
repeats (the reader), and a stored row whose id comes again is replaced (the write). In memory
that costs 40-60 bytes a row (a file of 15M rows passed 1.5 GB). Past a number of ids, this
module keeps them on disk instead, in :data:`PARTITIONS` files by the top bits of their 64-bit
hash (:func:`geodata._idkernel.hash_strings`): equal ids share a partition, so each rule can be
decided partition by partition, with one partition in memory at a time.

- :func:`repeated_keys`: the hashes that occur more than once among the ids of a file (the
  reader reads the id column once before it streams a large file, then keeps in its id table
  only the ids that can repeat).
- :class:`SpilledIds`: the ids of one write, for the store's two checks (an id twice in one
  write; the stored rows that an incoming id replaces).
"""

from __future__ import annotations

import shutil
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from geodata._idkernel import hash_strings, key_groups
from geodata._scratch import scratch_folder

__all__ = ["PARTITIONS", "SpilledIds", "repeated_keys"]

#: Partitions of the ids on disk: a partition holds 1/128 of them (1.5 MB per million ids).
PARTITIONS = 128
_BITS = PARTITIONS.bit_length() - 1  # a hash's top bits name its partition


def repeated_keys(chunks: Iterable[np.ndarray], scratch: Path | None = None) -> np.ndarray:
    """Return, sorted, the hashes that occur more than once in `chunks` (any number of them).

    The hashes are written to :data:`PARTITIONS` files in a temporary folder (under `scratch`
    if given), then each file is read and sorted on its own: memory holds one chunk, one
    partition and the answer.
    """
    folder = scratch_folder("ids", scratch)
    try:
        files = [open(folder / f"{p:03d}.u64", "wb") for p in range(PARTITIONS)]  # noqa: SIM115
        try:
            for chunk in chunks:
                keys = np.ascontiguousarray(chunk, dtype=np.uint64)
                order, spans = key_groups(keys, _BITS)
                grouped = keys[order]
                for p, start, end in spans:
                    grouped[start:end].tofile(files[p])
        finally:
            for handle in files:
                handle.close()
        found = []
        for p in range(PARTITIONS):
            keys = np.fromfile(folder / f"{p:03d}.u64", dtype=np.uint64)
            keys.sort()
            found.append(np.unique(keys[1:][keys[1:] == keys[:-1]]))
        return np.concatenate(found)
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _write_spans(
    writers: Sequence[pa.ipc.RecordBatchStreamWriter],
    table: pa.Table,
    spans: Sequence[tuple[int, int, int]],
) -> None:
    """Append each span of `table` (rows grouped by :func:`key_groups`) to its partition."""
    for p, start, end in spans:
        writers[p].write_table(table.slice(start, end - start))


class SpilledIds:
    """The ids of one write on disk, by hash partition (see the module's docstring).

    Parameters
    ----------
    folder
        An empty folder for the partition files (the write's staging folder).
    """

    _SCHEMA = pa.schema([("hash", pa.uint64()), ("id", pa.string())])

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        folder.mkdir(parents=True, exist_ok=True)
        self._writers: list[pa.ipc.RecordBatchStreamWriter] | None = [
            pa.ipc.new_stream(str(self._path(p)), self._SCHEMA) for p in range(PARTITIONS)
        ]
        self._n = 0

    def _path(self, p: int) -> Path:
        return self.folder / f"ids-{p:03d}.arrows"

    def add(self, ids: pa.Array, hashes: np.ndarray) -> None:
        """Append ids (Arrow strings) and their hashes."""
        assert self._writers is not None, "no ids are added once they are read"
        order, spans = key_groups(hashes, _BITS)
        table = pa.table({"hash": pa.array(hashes[order]), "id": ids.take(pa.array(order))})
        _write_spans(self._writers, table, spans)
        self._n += len(ids)

    def __len__(self) -> int:
        return self._n

    def _partitions(self) -> Iterable[pa.Table]:
        """Yield each partition's ids and hashes (the files are closed when first iterated)."""
        if self._writers is not None:
            for writer in self._writers:
                writer.close()
            self._writers = None
        for p in range(PARTITIONS):
            with pa.OSFile(str(self._path(p))) as source:
                yield pa.ipc.open_stream(source).read_all()

    def repeated(self) -> pa.Array:
        """Return the ids that occur more than once (equal hashes are compared as text)."""
        out = []
        for part in self._partitions():
            keys = part.column("hash").to_numpy()
            ordered = np.sort(keys)
            same = np.unique(ordered[1:][ordered[1:] == ordered[:-1]])
            if same.size:
                suspects = part.column("id").filter(pa.array(np.isin(keys, same)))
                counts = pc.value_counts(suspects)
                out.append(counts.field("values").filter(pc.greater(counts.field("counts"), 1)))
        return pa.concat_arrays(out) if out else pa.array([], pa.string())

    def release(self) -> None:
        """Delete the partition files (their number stays)."""
        if self._writers is not None:
            for writer in self._writers:
                writer.close()
            self._writers = None
        shutil.rmtree(self.folder, ignore_errors=True)

    def rows_in(
        self, paths: Sequence[Path], read_ids: Callable[[Path], pa.Array | pa.ChunkedArray]
    ) -> dict[Path, np.ndarray]:
        """Return, per stored file holding an incoming id, the mask of its rows with one.

        The files' ids (`read_ids`) are read one file at a time and written by hash partition
        beside the incoming ones; then each partition's stored ids are looked up among its
        incoming ids, by hash and then by text.
        """
        chosen = list(paths)
        if not chosen:
            return {}
        schema = pa.schema(
            [("hash", pa.uint64()), ("file", pa.int32()), ("row", pa.int64()), ("id", pa.string())]
        )
        old = self.folder / "stored"
        old.mkdir(exist_ok=True)
        writers = [
            pa.ipc.new_stream(str(old / f"{p:03d}.arrows"), schema) for p in range(PARTITIONS)
        ]
        sizes: list[int] = []
        try:
            for k, path in enumerate(chosen):
                ids = read_ids(path)
                if isinstance(ids, pa.ChunkedArray):
                    ids = ids.combine_chunks()
                sizes.append(len(ids))
                keys = hash_strings(ids)
                order, spans = key_groups(keys, _BITS)
                rows = pa.array(order.astype(np.int64))
                table = pa.table(
                    {
                        "hash": pa.array(keys[order]),
                        "file": pa.array(np.full(len(keys), k, dtype=np.int32)),
                        "row": rows,
                        "id": ids.cast(pa.string()).take(rows),
                    },
                    schema=schema,
                )
                _write_spans(writers, table, spans)
        finally:
            for writer in writers:
                writer.close()
        masks: dict[int, np.ndarray] = {}
        for p, incoming in enumerate(self._partitions()):
            with pa.OSFile(str(old / f"{p:03d}.arrows")) as source:
                stored = pa.ipc.open_stream(source).read_all()
            keys = incoming.column("hash").to_numpy()
            stored_keys = stored.column("hash").to_numpy()
            hit = np.isin(stored_keys, keys)
            if not hit.any():
                continue
            # a hash hit is confirmed on the text
            wanted = incoming.column("id").filter(pa.array(np.isin(keys, stored_keys[hit])))
            candidates = stored.filter(pa.array(hit))
            same = pc.is_in(candidates.column("id"), value_set=wanted.combine_chunks())
            found = candidates.filter(same)
            files = found.column("file").to_numpy()
            rows = found.column("row").to_numpy()
            for k in np.unique(files).tolist():
                mask = masks.setdefault(k, np.zeros(sizes[k], dtype=bool))
                mask[rows[files == k]] = True
        shutil.rmtree(old, ignore_errors=True)
        return {chosen[k]: mask for k, mask in masks.items()}

    def may_hold(self, ranges: Sequence[tuple[str | None, str | None]]) -> list[bool]:
        """Return, per id range ``(least, greatest)``, whether an incoming id may lie in it.

        True for a range not known (None); the others are checked one partition at a time.
        """
        out = [lo is None or hi is None for lo, hi in ranges]
        todo = [k for k, keep in enumerate(out) if not keep]
        if not todo:
            return out
        lows = np.array([ranges[k][0] for k in todo], dtype=object)
        highs = np.array([ranges[k][1] for k in todo], dtype=object)
        for part in self._partitions():
            ids = part.column("id")
            if not len(ids):
                continue
            ordered = np.array(ids.take(pc.sort_indices(ids)).to_pylist(), dtype=object)
            at = np.searchsorted(ordered, lows)
            inside = at < len(ordered)
            inside[inside] = ordered[at[inside]] <= highs[inside]
            for j in np.flatnonzero(inside).tolist():
                out[todo[j]] = True
        return out
