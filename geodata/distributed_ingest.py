"""Ingest incident exports on the workers of a Dask cluster, storing what one machine stores.

The client cuts each export into parts: a plain CSV larger than ``part_bytes`` into byte
ranges that end at a line break (each range read as the header plus its records), any other
file (``.gz``, GeoJSON, Parquet...) whole. Each worker reads, validates, maps and joins its part
with the product's own reader (:func:`geodata.readers.iter_incidents`) and per-batch join
(:class:`geodata.ingest.BatchTally`, each batch placed in the whole file by
:class:`geodata.ingest.PartOfFile`), against the beat layer and index it reads from the store
at the same path, and returns an Arrow table of the accepted rows in the store's schema, its
rejections and its counts, with the line numbers of the whole file. The client does what must
be global, through :func:`geodata.ingest.ingest_joined_parts` (which is ``ingest_file``
itself): ids repeated across parts (a part holding ids of an earlier part is read again with
them marked, so every count stays the reader's), the reconciliation, the reports and the one
transactional write. It holds a bounded number of parts whatever the file's size: at most
`ahead` are on the cluster, and a part is fetched only when the store takes it, then copied
into Arrow's memory pool (:func:`_owned`). The stored rows, beats, rejections and report
equal the single-machine ingest's (``tests/geodata/test_distributed_ingest.py``).

Where a part cannot be read the way the whole file is (its detected date formats, columns or
offense vocabulary differ from the first part's, or it raises a whole-file error of its own,
such as dates whose day/month order only other parts decide), the file is ingested on this
machine instead, so the answer, or the error, is the single-machine one. The workers must
reach the exports and the store at the same paths as the client (``docs/scale.md``).

Examples
--------
>>> from geodata.cluster import connect
>>> with connect("tcp://10.0.0.5:8786") as client:  # doctest: +SKIP
...     reports = ingest_files(["/shared/exports/2024.csv"], store, client)
"""

from __future__ import annotations

import contextlib
import logging
import shutil
import uuid
from collections import deque
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from functools import partial
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pyarrow as pa

from geodata._idkernel import IdTable
from geodata._scratch import scratch_folder
from geodata.dates import dates_note, formats_of_dates_note
from geodata.errors import CRSMismatchError, InputError
from geodata.ingest import (
    BatchTally,
    IngestReport,
    JoinedPart,
    PartOfFile,
    ingest_file,
    ingest_joined_parts,
)
from geodata.readers import (
    BLOCK_BYTES,
    RaggedRecords,
    ReadResult,
    iter_incidents,
)
from geodata.rejections import RejectionLog
from geodata.store import IncidentStore

if TYPE_CHECKING:
    from distributed import Client, Future

    from geodata.calls import CallMapping, CallsReport
    from geodata.categories import OffenseCategories
    from geodata.join import BeatIndex
    from geodata.readers import ColumnMapping

__all__ = ["PART_BYTES", "Part", "ingest_calls_files", "ingest_files", "plan_parts"]

log = logging.getLogger(__name__)

#: Bytes of CSV per part: a 1M-row Chicago export (280 MB) is five parts.
PART_BYTES = 64 << 20
_SCAN_BYTES = 16 << 20


@dataclass(frozen=True)
class Part:
    """One piece of an export that one worker reads."""

    #: The export, at the path the workers see too.
    path: str
    #: Byte range of the part's records; ``(0, -1)``: the whole file, read as it is.
    start: int = 0
    end: int = -1
    #: Bytes of the header line, written above the range.
    header_end: int = 0
    #: Added to the part's own line numbers (its first record is its line 2).
    line_offset: int = 0

    @property
    def is_whole(self) -> bool:
        """Return whether the part is the whole file."""
        return self.end < 0


def plan_parts(path: str | Path, *, part_bytes: int = PART_BYTES) -> list[Part]:
    """Return the parts of `path` for the workers: byte ranges of a large CSV, else the file.

    A plain (uncompressed) CSV or TSV of more than `part_bytes` is cut after the first line
    break at or past every multiple of `part_bytes`. A file is read whole when it is smaller,
    compressed or not a CSV, or when line numbers could not be carried across a cut: line
    breaks inside quoted values, blank lines or lone carriage returns (the reader counts
    those differently from the file's line breaks).

    Parameters
    ----------
    path
        The export.
    part_bytes
        About how many bytes of records each part holds.
    """
    path = Path(path)
    whole = [Part(str(path))]
    if not path.name.lower().endswith((".csv", ".tsv", ".txt")) or not path.is_file():
        return whole
    size = path.stat().st_size
    if size <= part_bytes:
        return whole
    found = _record_breaks(path, part_bytes)
    if found is None:
        return whole
    header_end, cuts = found
    starts = [(header_end, 2), *cuts]
    ends = [start for start, _ in cuts] + [size]
    return [
        Part(str(path), start, end, header_end, line - 2)
        for (start, line), end in zip(starts, ends, strict=True)
        if end > start
    ]


def _record_breaks(path: Path, step: int) -> tuple[int, list[tuple[int, int]]] | None:
    """Return the end of the header and, past every `step` bytes, a record start and its line.

    None when a line break lies inside quotes (an odd number of ``"`` before it), or the file
    has a blank line or a carriage return not followed by a line feed.
    """
    quotes = 0  # quotes before the chunk
    breaks = 0  # line breaks before the chunk
    offset = 0  # bytes before the chunk
    header_end: int | None = None
    cuts: list[tuple[int, int]] = []
    target = step
    tail = b""
    with open(path, "rb") as handle:
        while chunk := handle.read(_SCAN_BYTES):
            if chunk.endswith(b"\r"):
                chunk += handle.read(1)
            window = tail + chunk
            if (
                b"\n\n" in window
                or b"\n\r\n" in window
                or window.count(b"\r") != window.count(b"\r\n")
            ):
                return None
            tail = chunk[-2:]
            data = np.frombuffer(chunk, dtype=np.uint8)
            at_break = np.flatnonzero(data == 10)
            quoted = quotes + np.searchsorted(np.flatnonzero(data == 34), at_break)
            if np.any(quoted & 1):
                return None
            quotes += int(np.count_nonzero(data == 34))
            if header_end is None and at_break.size:
                header_end = offset + int(at_break[0]) + 1
            while at_break.size and target <= offset + int(at_break[-1]):
                k = int(np.searchsorted(at_break, target - offset))
                cuts.append((offset + int(at_break[k]) + 1, breaks + k + 2))
                target = max(target + step, cuts[-1][0] + 1)
            breaks += at_break.size
            offset += len(chunk)
    if header_end is None:
        return None
    return header_end, [(start, line) for start, line in cuts if header_end < start < offset]


@contextlib.contextmanager
def _part_file(part: Part) -> Iterator[Path]:
    """Yield a file holding the part: the export itself, or its header and byte range."""
    if part.is_whole:
        yield Path(part.path)
        return
    folder = scratch_folder("part")
    local = folder / Path(part.path).name  # the same name: rows and rejections name it
    try:
        with open(part.path, "rb") as source, open(local, "wb") as out:
            out.write(source.read(part.header_end))
            source.seek(part.start)
            left = part.end - part.start
            while left > 0:
                block = source.read(min(left, _SCAN_BYTES))
                if not block:
                    break
                out.write(block)
                left -= len(block)
        yield local
    finally:
        shutil.rmtree(folder, ignore_errors=True)


# --- on a worker ------------------------------------------------------------------------


@dataclass
class _PartRead:
    """What a worker returns for one part: its tally, rows and the ids it accepted."""

    tally: BatchTally
    #: The accepted rows in the store's schema.
    rows: pa.Table
    #: Keys of the accepted ids and their lines in the whole file.
    keys: np.ndarray
    lines: np.ndarray


@dataclass(frozen=True)
class _Task:
    """What a worker needs to read and join one part."""

    part: Part
    store_root: str
    reader_options: dict[str, Any]
    buffer_m: float
    prefer_reported: bool
    tolerance_m: float
    earlier: dict[int, int] = field(default_factory=dict)


_LAYERS: dict[tuple[str, str, float], tuple[pd.DataFrame, BeatIndex]] = {}


def _beats_and_index(store: IncidentStore, tolerance_m: float) -> tuple[pd.DataFrame, BeatIndex]:
    """Return the store's beat layer and index, read once per layer in each worker process."""
    key = (str(store.root), str(store._layer_dir()), tolerance_m)
    if key not in _LAYERS:
        _LAYERS.clear()
        _LAYERS[key] = (store.read_layer("beats"), store.beat_index(tolerance_m=tolerance_m))
    return _LAYERS[key]


def _read_part(task: _Task) -> _PartRead:
    """Read, validate and join one part on a worker; return its tally and Arrow rows."""
    store = IncidentStore(task.store_root)
    for needed in (Path(task.part.path), store.meta_path):
        if not needed.exists():
            msg = f"a Dask worker cannot read {needed}"
            raise FileNotFoundError(msg)
    beats, index = _beats_and_index(store, task.tolerance_m)
    file_schema = store.table.spec.arrow_schema(store.timezone)
    with _part_file(task.part) as local:
        # a part whose first batch leaves the day/month order open decides it as the whole
        # file does: on the whole file's date column
        read = partial(iter_incidents, local, dates_from=task.part.path, **task.reader_options)

        def run(exact: bool) -> _PartRead:
            tally = BatchTally(categories=task.reader_options["categories"])
            tally.keep_disagreements = True
            place = PartOfFile(task.part.line_offset, task.earlier)
            tables = []
            for batch in read(exact=exact):
                joined = tally.add(
                    place.place(batch),
                    beats,
                    index,
                    buffer_m=task.buffer_m,
                    prefer_reported=task.prefer_reported,
                )
                if len(joined):
                    tables.append(store.table._to_arrow(joined, file_schema))
            rows = pa.concat_tables(tables) if tables else file_schema.empty_table()
            keys = np.concatenate(place.keys) if place.keys else np.empty(0, np.uint64)
            lines = np.concatenate(place.lines) if place.lines else np.empty(0, np.int64)
            return _PartRead(tally, rows, keys, lines)

        try:
            done = run(exact=False)
        except RaggedRecords:
            done = run(exact=True)
    first = done.tally.first
    assert first is not None  # every file yields at least its header batch
    done.tally.first = replace(
        first, incidents=first.incidents.iloc[:0], rejected=first.rejected[:0]
    )
    return done


# --- on the client ----------------------------------------------------------------------


class _NotAsOneFile(Exception):  # noqa: N818 - internal signal: ingest on this machine
    """A part was not read as the whole file would be: the file is ingested on one machine.

    Its message, in the user's words, is the report's ``cluster_fallback``.
    """


_READ_DIFFERENTLY = (
    "parts of the file read differently from the whole file (their date formats, columns or "
    "offense vocabulary differ), so the whole file was read here; what is stored is what one "
    "machine stores"
)
_NOT_ALONE = (
    "a part of the file could not be read on its own (its dates, for example, may need the "
    "rest of the file to be read), so the whole file was read here; what is stored is what one "
    "machine stores"
)


_ISO = "ISO8601"


def _merged_notes(first: list[str], other: list[str]) -> list[str] | None:
    """Return the notes of two parts read as one file would be; None if they cannot be.

    A part learns the date formats its own values need (the reader's ``dates read as A or B
    in ZONE`` note). Parts that parsed dates must have learnt the same formats in the same
    order (the reader orders formats learnt from one batch by how many values they read, so
    other lists could not be put in the single-machine order); ISO 8601 (offsets read) comes
    last if any part used it. Every other note must be the same.
    """

    def split(notes: list[str]) -> tuple[list[str], list[str] | None, str | None]:
        rest, formats, zone = [], None, None
        for note in notes:
            found = formats_of_dates_note(note)
            if found and formats is None:
                formats, zone = found
                rest.append("")  # where the note goes
            else:
                rest.append(note)
        return rest, formats, zone

    rest_a, formats_a, zone_a = split(first)
    rest_b, formats_b, zone_b = split(other)
    if [n for n in rest_a if n] != [n for n in rest_b if n]:
        return None
    if formats_b is None:
        return list(first)
    if formats_a is None:
        return list(other)
    learnt = [f for f in formats_a if f != _ISO]
    if zone_a != zone_b or learnt != [f for f in formats_b if f != _ISO]:
        return None
    if _ISO in formats_a or _ISO in formats_b:
        learnt.append(_ISO)
    assert zone_a is not None
    note = dates_note(learnt, zone_a)
    return [n or note for n in rest_a]


class _OnCluster:
    """The reader :func:`ingest_file` calls: the parts of the files, read on the workers.

    Parts are sent in file order, at most `ahead` at a time (two per worker thread by
    default): a worker keeps a finished part until the client takes it, so the workers'
    memory stays bounded whatever the files' sizes, and they read the next parts (of the next
    file too) while the client stores one.
    """

    def __init__(
        self,
        client: Client,
        store: IncidentStore,
        paths: Sequence[Path],
        *,
        buffer_m: float,
        prefer_reported: bool,
        part_bytes: int,
        ahead: int | None = None,
    ) -> None:
        self.client = client
        self.store = store
        self.paths = list(paths)
        self.buffer_m = buffer_m
        self.prefer_reported = prefer_reported
        self.part_bytes = part_bytes
        self.tolerance_m = store.department().edge_tolerance_m
        store.beat_index(tolerance_m=self.tolerance_m)  # built and kept here, read by workers
        self.ahead = ahead or max(2, 2 * sum(client.nthreads().values()))
        self.options: dict[str, object] | None = None
        #: The offense vocabulary the file's first part settled on.
        self.categories: OffenseCategories | None = None
        #: Which of `paths` is read next.
        self.turn = 0
        #: Files not cut yet, parts not sent yet, parts sent (with their futures), in order,
        #: each by the file's place in `paths`.
        self.unplanned: deque[int] = deque(range(len(self.paths)))
        self.waiting: deque[tuple[int, _Task]] = deque()
        self.sent: deque[tuple[int, _Task, Future]] = deque()

    def read(self, path: Path, *, exact: bool = False, **options: object) -> Iterator[JoinedPart]:
        """Yield the parts of `path`, read and joined on the workers, in file order.

        `options` are :func:`iter_incidents`' as :func:`ingest_file` gives them (the same for
        every file of one :func:`ingest_files`, which reads the files in the order given).
        A part holding ids of earlier parts is read again with them rejected; the date formats
        the parts learnt are merged into the first part's note.

        Raises
        ------
        _NotAsOneFile
            When a part does not read as the whole file would.
        """
        del exact  # a worker reads a ragged part again itself
        turn = self.turn
        self.turn += 1
        if self.options is None:
            self.options = options
        if options != self.options or turn >= len(self.paths) or self.paths[turn] != path:
            self.cancel()  # not the expected file: start again from this one
            self.options = options
            self.paths[turn:] = [path]
            self.unplanned.append(turn)
        while self.sent and self.sent[0][0] < turn:  # the rest of a file given up
            self.sent.popleft()
        while self.waiting and self.waiting[0][0] < turn:
            self.waiting.popleft()
        ids = IdTable()  # the ids of the file's parts so far, and their first lines
        first: ReadResult | None = None
        while True:
            self._send()
            if not self.sent or self.sent[0][0] != turn:
                return
            _, task, future = self.sent.popleft()
            part = self._result(future, task)
            repeated = ids.add(part.keys, part.lines)
            held = repeated >= 0
            if held.any():  # read again, those ids rejected as the reader does
                earlier = zip(part.keys[held].tolist(), repeated[held].tolist(), strict=True)
                again = replace(task, earlier=dict(earlier))
                part = self._result(self.client.submit(_read_part, again, pure=False), task)
            assert part.tally.first is not None
            if first is None:
                first = part.tally.first  # the file's first batch: its notes are the report's
            else:
                notes = _merged_notes(first.notes, part.tally.first.notes)
                if notes is None or (part.tally.first.mapping, part.tally.categories) != (
                    first.mapping,
                    self.categories,
                ):
                    raise _NotAsOneFile(_READ_DIFFERENTLY)
                first.notes[:] = notes
            self.categories = part.tally.categories
            yield JoinedPart(part.tally, part.rows)

    def cancel(self) -> None:
        """Let go of the parts not yet taken (the scheduler forgets them)."""
        self.unplanned.clear()
        self.waiting.clear()
        self.sent.clear()

    def _tasks(self, path: Path) -> list[_Task]:
        assert self.options is not None
        return [
            _Task(
                part,
                str(self.store.root.absolute()),  # a worker may start elsewhere
                self.options,
                self.buffer_m,
                self.prefer_reported,
                self.tolerance_m,
            )
            for part in plan_parts(path.absolute(), part_bytes=self.part_bytes)
        ]

    def _send(self) -> None:
        """Send parts until `ahead` are on the cluster (a file is cut when its turn comes)."""
        while len(self.sent) < self.ahead:
            if not self.waiting:
                if not self.unplanned:
                    return
                turn = self.unplanned.popleft()
                self.waiting.extend((turn, task) for task in self._tasks(self.paths[turn]))
                continue
            turn, task = self.waiting.popleft()
            self.sent.append((turn, task, self.client.submit(_read_part, task, pure=False)))

    def _result(self, future: Future, task: _Task) -> _PartRead:
        try:
            part = future.result()
        except FileNotFoundError as err:
            if not Path(task.part.path).exists():  # nowhere: the reader's own error
                raise _NotAsOneFile(_NOT_ALONE) from err
            msg = (
                f"{err}: the workers must reach the exports and the store at the same paths "
                "as this machine (a shared file system; see docs/scale.md)"
            )
            raise InputError(msg, path=task.part.path) from err
        except (InputError, CRSMismatchError) as err:
            log.info("%s: a part could not be read on its own: %s", task.part.path, err)
            raise _NotAsOneFile(_NOT_ALONE) from err
        part.rows = _owned(part.rows)
        return part


def _owned(table: pa.Table) -> pa.Table:
    """Return `table` copied into Arrow's memory pool, one chunk per column.

    The columns of a table received from a worker live in the buffers the network layer
    allocated with the C library's allocator; the store keeps the ids of every row to the end
    of the write, and those kept slices would pin each received part's buffers and leave the
    heap fragmented, so the client's memory grew with the file. A copy costs one pass over the
    part and lets each received buffer go as soon as its part is copied.
    """
    columns = [
        pa.concat_arrays(column.chunks) if column.num_chunks else column.combine_chunks()
        for column in table.columns
    ]
    return pa.Table.from_arrays(columns, schema=table.schema)


def ingest_files(
    paths: Sequence[str | Path],
    store: IncidentStore,
    client: Client,
    *,
    mapping: ColumnMapping | None = None,
    categories: OffenseCategories | None = None,
    buffer_m: float = 1000.0,
    prefer_reported: bool = True,
    now: datetime | None = None,
    block_bytes: int = BLOCK_BYTES,
    part_bytes: int = PART_BYTES,
) -> list[IngestReport]:
    """Ingest each export in turn, its parts read and joined on the workers of `client`.

    Each file is one version of the store, as :func:`geodata.ingest.ingest_file` makes it,
    with the same rows, beats, rejections and report. Parts are sent a few ahead of the one
    being stored, the next file's after the last of one file, so the workers keep reading
    while the client stores.

    Parameters
    ----------
    paths
        The exports, at paths the workers reach too.
    store
        A store with a beat layer, at a path the workers reach too.
    client
        A connected ``distributed.Client`` (see :func:`geodata.cluster.connect`).
    mapping, categories, buffer_m, prefer_reported, block_bytes
        As :func:`geodata.ingest.ingest_file`.
    now
        The present, for the plausible-date window of every part (default: the clock, once).
    part_bytes
        Bytes of CSV per part (see :func:`plan_parts`).

    Returns
    -------
    list of IngestReport
        One per file, in order.

    Raises
    ------
    InputError, SchemaError, StoreError
        As :func:`geodata.ingest.ingest_file`; an ``InputError`` also when a worker cannot
        read a file or the store.
    """
    files = [Path(p) for p in paths]
    now = now or datetime.now(UTC)
    cluster = _OnCluster(
        client,
        store,
        files,
        buffer_m=buffer_m,
        prefer_reported=prefer_reported,
        part_bytes=part_bytes,
    )
    options: dict[str, Any] = {
        "mapping": mapping,
        "categories": categories,
        "buffer_m": buffer_m,
        "prefer_reported": prefer_reported,
        "now": now,
        "block_bytes": block_bytes,
    }
    reports = []
    try:
        for path in files:
            try:
                report = ingest_joined_parts(path, store, cluster.read, **options)
            except _NotAsOneFile as why:
                log.warning("%s: ingested on this machine (%s)", path, why)
                report = ingest_file(path, store, **options)
                report.cluster_fallback = str(why)
            reports.append(report)
    finally:
        cluster.cancel()
    return reports


# --- calls for service: one export per worker ----------------------------------------------

#: Where a worker writes the joined calls of one export for the client (under the store).
_CALLS_SCRATCH = Path("cache") / "calls-read"


@dataclass(frozen=True)
class _CallsTask:
    """What a worker needs to read and join one CAD export."""

    path: str
    store_root: str
    mapping: CallMapping
    block_bytes: int
    now: datetime | None


@dataclass
class _CallsRead:
    """What a worker returns for one CAD export: its counts, rejections and where its rows are."""

    report: CallsReport
    rejected: RejectionLog
    #: The joined calls: an LZ4 Arrow stream under the store, read and deleted by the client.
    rows: str


def _read_calls_file(task: _CallsTask) -> _CallsRead:
    """Read and join one CAD export on a worker; stream its calls to a file beside the store."""
    from geodata.calls import CallsReport, calls_table, join_calls

    store = IncidentStore(task.store_root)
    for needed in (Path(task.path), store.meta_path):
        if not needed.exists():
            msg = f"a Dask worker cannot read {needed}"
            raise FileNotFoundError(msg)
    table = calls_table(store)
    file_schema = table.spec.arrow_schema(store.timezone)
    folder = store.root / _CALLS_SCRATCH
    folder.mkdir(parents=True, exist_ok=True)
    out = folder / f"{uuid.uuid4().hex}.arrow"

    def run(exact: bool) -> _CallsRead:
        report = CallsReport(source=Path(task.path).name)
        rejected = RejectionLog(by_line=False)
        batches = join_calls(
            Path(task.path),
            store,
            task.mapping,
            report,
            rejected,
            exact=exact,
            block_bytes=task.block_bytes,
            now=task.now,
        )
        options = pa.ipc.IpcWriteOptions(compression="lz4")
        with pa.ipc.new_stream(str(out), file_schema, options=options) as writer:
            for batch in batches:
                writer.write_table(table._to_arrow(batch, file_schema))
        return _CallsRead(report, rejected, str(out))

    try:
        try:
            return run(exact=False)
        except RaggedRecords:  # found after batches were written: read again, exactly
            return run(exact=True)
    except BaseException:
        out.unlink(missing_ok=True)
        raise


def _streamed(path: str) -> Iterator[pa.Table]:
    """Yield the tables of an Arrow stream file one record batch at a time."""
    with pa.ipc.open_stream(path) as reader:
        for batch in reader:
            yield pa.Table.from_batches([batch])


def ingest_calls_files(
    paths: Sequence[str | Path],
    store: IncidentStore,
    client: Client,
    *,
    mapping: CallMapping,
    block_bytes: int = BLOCK_BYTES,
    now: datetime | None = None,
) -> list[CallsReport]:
    """Ingest CAD exports in turn, each read and joined on a worker of `client`.

    Each export is read whole by one worker with the product's calls reader and join
    (:func:`geodata.calls.join_calls`), which streams the joined calls to an Arrow file under
    the store (``cache/calls-read/``: the workers reach the store at the same path); the client
    stores them as :func:`geodata.calls.ingest_calls` does, one version per file, and deletes
    the file. The workers read the next exports while the client stores one; memory on both
    sides is a batch (then the store's write buffers), whatever the file's size.

    Parameters
    ----------
    paths
        The exports, at paths the workers reach too.
    store
        A store with a beat layer, at a path the workers reach (and may write a file under).
    client
        A connected ``distributed.Client``.
    mapping, block_bytes, now
        As :func:`geodata.calls.ingest_calls`.

    Returns
    -------
    list of CallsReport
        One per file, in order: what :func:`geodata.calls.ingest_calls` reports.

    Raises
    ------
    InputError, SchemaError
        As :func:`geodata.calls.ingest_calls` (also when a worker cannot read a file).
    """
    from geodata.calls import ingest_calls, store_joined_calls

    files = [Path(p) for p in paths]
    tasks = deque(
        _CallsTask(str(p.absolute()), str(store.root.absolute()), mapping, block_bytes, now)
        for p in files
    )
    ahead = max(1, sum(client.nthreads().values()))
    sent: deque[Future] = deque()
    reports = []
    try:
        for path in files:
            while tasks and len(sent) < ahead:
                sent.append(client.submit(_read_calls_file, tasks.popleft(), pure=False))
            future = sent.popleft()
            try:
                done = future.result()
            except InputError:  # the file fails: read here, for the error one machine gives
                reports.append(ingest_calls(path, store, mapping=mapping, now=now))
                continue
            except FileNotFoundError as err:
                if not path.exists():  # nowhere: the reader's own error
                    reports.append(ingest_calls(path, store, mapping=mapping, now=now))
                    continue
                msg = (
                    f"{err}: the workers must reach the exports and the store at the same "
                    "paths as this machine (a shared file system; see docs/scale.md)"
                )
                raise InputError(msg, path=str(path)) from err
            try:
                report = store_joined_calls(
                    path, store, _streamed(done.rows), done.report, done.rejected
                )
            finally:
                Path(done.rows).unlink(missing_ok=True)
            reports.append(report)
    finally:
        for future in sent:  # parts read ahead of a failure: their files go too
            with contextlib.suppress(Exception):
                Path(future.result().rows).unlink(missing_ok=True)
    return reports
