"""The rejected rows of one ingest: held in memory up to a limit, on disk past it.

An ingest rejects a row with its line, column, value and reason
(:data:`geodata.readers.REJECTION_COLUMNS`), and writes every rejected row to the report's
rejections file when the file has been read. Held as pandas rows they cost about 360 bytes
each, so a file whose rows are mostly rejected (a wrong date format, a wrong coordinate column)
would grow without bound: 3M rejected rows took the ingest to 1,655 MB. :class:`RejectionLog`
keeps at most :data:`REJECTED_HOLD` rows in memory; past that it writes them, in the order of
the rejections file, to Arrow files in the system's temporary folder, and writes the report
from them one file at a time. Below the limit it does exactly what the ingest did before:
one frame, sorted by line when the file's order is asked for.
"""

from __future__ import annotations

import shutil
import weakref
from collections.abc import Iterable, Iterator
from pathlib import Path

import pandas as pd
import pyarrow as pa

from geodata._scratch import scratch_folder
from geodata.exports import write_csv, write_csv_table
from geodata.readers import rejection_frame

__all__ = ["REJECTED_HOLD", "RejectionLog"]

#: Rejected rows held in memory before they go to disk (about 70 MB of pandas rows).
REJECTED_HOLD = 200_000


class RejectionLog:
    """The rejected rows of one file, in the rejections file's order.

    Parameters
    ----------
    by_line
        Order the rows by their line (stable; the incident ingest's rule). Otherwise they stay
        in the order they were added (the calls ingest's).
    hold
        Rows held in memory before they go to disk (default :data:`REJECTED_HOLD`).

    Notes
    -----
    Rows are added a batch at a time, and an ingest's batches come in the file's order, so the
    rows spilled to disk are already in the file's order one file after another; should a
    batch ever come back to an earlier line, the report is written from all rows sorted at
    once, as before (correct, but not bounded).
    """

    def __init__(self, *, by_line: bool, hold: int | None = None) -> None:
        self._reset(by_line, REJECTED_HOLD if hold is None else int(hold))

    def _reset(self, by_line: bool, hold: int) -> None:
        self.by_line = by_line
        self.hold = hold
        self._held: list[pd.DataFrame] = []
        self._held_rows = 0
        self._rows = 0
        #: The held rows as one frame in the file's order, once :meth:`frame` has made it.
        self._whole: pd.DataFrame | None = None
        self._folder: Path | None = None
        self._chunks: list[Path] = []
        self._last_line: int | None = None
        self._in_order = True
        #: Rows per reason of the spilled rows, in the order the reasons first appear.
        self._reasons: dict[str, int] = {}

    def __len__(self) -> int:
        """Return the number of rejected rows."""
        return self._rows

    def append(self, frame: pd.DataFrame) -> None:
        """Add the rejected rows of one batch (:data:`~geodata.readers.REJECTION_COLUMNS`)."""
        if not len(frame):
            return
        self._held.append(frame)
        self._whole = None
        self._held_rows += len(frame)
        self._rows += len(frame)
        if self._held_rows > self.hold:
            self._spill()

    def extend(self, frames: Iterable[pd.DataFrame]) -> None:
        """Add the rejected rows of several batches, in order."""
        for frame in frames:
            self.append(frame)

    @property
    def spilled(self) -> bool:
        """Whether some rows are on disk."""
        return bool(self._chunks)

    def frames(self) -> Iterator[pd.DataFrame]:
        """Yield the rows in the order they were added (the spilled ones read back)."""
        for chunk in self._chunks:
            with pa.OSFile(str(chunk)) as source:  # read into memory: nothing maps the file
                table = pa.ipc.open_file(source).read_all()
            yield table.to_pandas(types_mapper=_text_type)
        yield from self._held

    def frame(self) -> pd.DataFrame:
        """Return every rejected row as one frame, in the rejections file's order (in memory).

        Rows held in memory are put together once (the report, the counts and the hint all
        read them); rows on disk are read back at each call.
        """
        if self._whole is not None:
            return self._whole
        frames = [f for f in self.frames() if len(f)]
        if not frames:
            return rejection_frame()
        frame = pd.concat(frames, ignore_index=True)
        if self.by_line:
            frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
        if not self.spilled:
            self._whole = frame
        return frame

    def counts(self) -> pd.Series:
        """Return the rows per reason, most first, as ``frame()["reason"].value_counts()``."""
        if not self._streamed():
            return self.frame()["reason"].value_counts()
        # the counts in the order the reasons first appear, sorted as value_counts sorts them
        empty = rejection_frame()["reason"].value_counts()  # its dtypes and names
        counts = pd.Series(
            list(self._reasons.values()),
            index=pd.Index(list(self._reasons), dtype=empty.index.dtype, name=empty.index.name),
            dtype=empty.dtype,
            name=empty.name,
        )
        return counts.sort_values(ascending=False)

    def values(self, reason: str, n: int) -> pd.Series:
        """Return the first `n` values rejected for `reason`, in the rejections file's order."""
        if not self._streamed():
            frame = self.frame()
            return frame.loc[frame["reason"] == reason, "value"].head(n).reset_index(drop=True)
        found: list[pd.Series] = []
        taken = 0
        for frame in self.frames():
            if taken >= n:
                break
            part = frame.loc[frame["reason"] == reason, "value"].head(n - taken)
            found.append(part)
            taken += len(part)
        if not found:
            return pd.Series([], dtype="string", name="value")
        return pd.concat(found, ignore_index=True)

    def write_csv(self, path: str | Path) -> Path:
        """Write every rejected row to `path` (formulas neutralised); return the path.

        Byte for byte the file :func:`geodata.exports.write_csv` writes from :meth:`frame`.
        """
        if not self._streamed():
            return write_csv(self.frame(), path)
        out = Path(path)
        for i, frame in enumerate(self.frames()):
            table = pa.Table.from_pandas(frame, preserve_index=False)
            out = write_csv_table(table, out, append=i > 0)
        return out

    def close(self) -> None:
        """Delete the rows on disk and let go of those held; the log is empty afterwards.

        An ingest closes its log once the report is written; a log dropped without closing
        deletes its files when it is garbage-collected (or at exit).
        """
        if self._folder is not None:
            shutil.rmtree(self._folder, ignore_errors=True)
        self._reset(self.by_line, self.hold)

    # --- pickling (a Dask worker's log goes to the client): the rows travel, not the files

    def __getstate__(self) -> tuple[bool, int, list[pd.DataFrame]]:
        return self.by_line, self.hold, list(self.frames())

    def __setstate__(self, state: tuple[bool, int, list[pd.DataFrame]]) -> None:
        by_line, hold, frames = state
        self._reset(by_line, hold)
        self.extend(frames)

    # --- on disk

    def _streamed(self) -> bool:
        """Whether the answers are read from disk file by file (all rows spilled, in order).

        False when no row went to disk, or when a batch came back to an earlier line: then
        every row is put together in memory and sorted, as before.
        """
        if not self.spilled:
            return False
        self._spill()
        return self._in_order

    def _spill(self) -> None:
        """Write the held rows, in the file's order, to one more Arrow file."""
        if not self._held:
            return
        frame = pd.concat(self._held, ignore_index=True)
        if self.by_line:
            frame = frame.sort_values("line", kind="stable").reset_index(drop=True)
            lines = frame["line"].to_numpy()
            if self._last_line is not None and lines[0] < self._last_line:
                self._in_order = False
            self._last_line = int(lines[-1])
        for reason, count in frame["reason"].value_counts(sort=False).items():
            self._reasons[str(reason)] = self._reasons.get(str(reason), 0) + int(count)
        if self._folder is None:
            self._folder = scratch_folder("rejected")
            weakref.finalize(self, shutil.rmtree, self._folder, True)
        chunk = self._folder / f"{len(self._chunks):06d}.arrow"
        table = pa.Table.from_pandas(frame, preserve_index=False)
        with pa.OSFile(str(chunk), "wb") as sink, pa.ipc.new_file(sink, table.schema) as writer:
            writer.write_table(table)
        self._chunks.append(chunk)
        self._held = []
        self._whole = None
        self._held_rows = 0


def _text_type(arrow_type: pa.DataType) -> object:
    """Read Arrow text back as pandas' ``string`` dtype (what the rejection frames hold)."""
    if pa.types.is_string(arrow_type) or pa.types.is_large_string(arrow_type):
        return pd.StringDtype()
    return None
