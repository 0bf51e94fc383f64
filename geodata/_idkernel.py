"""Compiled helpers (numba) that find repeated incident ids across the batches of one file.

Ids are hashed to 64 bits straight from Arrow's string buffers (FNV-1a, then a splitmix64
finaliser) and kept in an open-addressing table with the line of their first occurrence, so a
file of any size is checked for duplicates without a Python object per row. Two different ids
sharing a 64-bit hash (probability about n^2 / 2^65: 3e-6 for 10M ids) would be reported as a
duplicate; the rejection names both lines, so such a case is visible.
"""

from __future__ import annotations

import contextlib
import functools
import threading
from collections.abc import Callable
from typing import TypeVar, cast

import numpy as np
import pyarrow as pa

__all__ = [
    "IdTable",
    "hash_strings",
    "in_background",
    "key_groups",
    "lazy_njit",
    "warm_up",
    "warm_up_soon",
]

_EMPTY = np.uint64(0)
_F = TypeVar("_F", bound=Callable[..., object])


def lazy_njit(*, cache: bool) -> Callable[[_F], _F]:
    """Compile with ``numba.njit`` on the first call, not at import.

    Importing numba costs about 0.7 s; every reader of the store imports this module (through
    :mod:`geodata.table`), but only writes call its kernels.
    """

    def wrap(function: _F) -> _F:
        compiled: list[Callable[..., object]] = []
        lock = threading.Lock()  # warm_up may load it on another thread

        @functools.wraps(function)
        def call(*args: object) -> object:
            if not compiled:
                with lock:
                    if not compiled:
                        from numba import njit as numba_njit

                        compiled.append(numba_njit(cache=cache)(function))
            return compiled[0](*args)

        return cast("_F", call)

    return wrap


#: Lines are kept as int32 (12 bytes a slot instead of 16).
_LAST_LINE = 2**31 - 1

#: An :class:`IdTable` is split by the top bits of the hash into this many tables, each
#: growing on its own: a growing table holds its old and new slots together for a moment, so
#: the moment costs a 64th of the table, not the whole (100 MB more at 6M ids otherwise).
_SEGMENT_BITS = 6


@lazy_njit(cache=True)
def _hash_kernel(offsets: np.ndarray, data: np.ndarray, out: np.ndarray) -> None:
    for i in range(out.size):
        h = np.uint64(14695981039346656037)
        for j in range(offsets[i], offsets[i + 1]):
            h ^= np.uint64(data[j])
            h *= np.uint64(1099511628211)
        # splitmix64 finaliser: spreads nearby ids over the table
        h ^= h >> np.uint64(30)
        h *= np.uint64(0xBF58476D1CE4E5B9)
        h ^= h >> np.uint64(27)
        h *= np.uint64(0x94D049BB133111EB)
        h ^= h >> np.uint64(31)
        if h == np.uint64(0):
            h = np.uint64(1)
        out[i] = h


def hash_strings(values: pa.Array | pa.ChunkedArray) -> np.ndarray:
    """Return a non-zero 64-bit hash of each string (nulls hash like ``""``)."""
    if isinstance(values, pa.ChunkedArray):
        values = values.combine_chunks()
    values = values.cast(pa.large_string())
    n = len(values)
    out = np.empty(n, dtype=np.uint64)
    if n == 0:
        return out
    _, offsets_buf, data_buf = values.buffers()
    offsets = np.frombuffer(offsets_buf, dtype=np.int64)[values.offset : values.offset + n + 1]
    data = (
        np.frombuffer(data_buf, dtype=np.uint8)
        if data_buf is not None
        else np.zeros(1, dtype=np.uint8)
    )
    _hash_kernel(offsets, data, out)
    return out


@lazy_njit(cache=True)
def _insert_kernel(
    keys: np.ndarray, lines: np.ndarray, table: np.ndarray, first: np.ndarray, out: np.ndarray
) -> int:
    mask = np.uint64(table.size - 1)
    added = 0
    for i in range(keys.size):
        key = keys[i]
        slot = key & mask
        while True:
            if table[slot] == _EMPTY:
                table[slot] = key
                first[slot] = lines[i]
                out[i] = -1
                added += 1
                break
            if table[slot] == key:
                out[i] = first[slot]
                break
            slot = (slot + np.uint64(1)) & mask
    return added


def key_groups(keys: np.ndarray, bits: int) -> tuple[np.ndarray, list[tuple[int, int, int]]]:
    """Return the order that groups hash keys by their top `bits` bits, and each group's span.

    The sort is stable (a radix sort on one byte), so the keys of a group keep their order. The
    spans are ``(group, start, end)`` positions in that order, empty groups left out.
    """
    group = (keys >> np.uint64(64 - bits)).astype(np.uint8)
    order = np.argsort(group, kind="stable")
    ends = np.cumsum(np.bincount(group, minlength=1 << bits)).tolist()
    starts = [0, *ends[:-1]]
    spans = [(g, a, b) for g, (a, b) in enumerate(zip(starts, ends, strict=True)) if b > a]
    return order, spans


def warm_up() -> None:
    """Load numba and the kernels (these and :mod:`geodata._datekernel`'s) on the calling thread.

    An ingest calls this on a thread of its own at the start (about 1 s), so the reader's first
    batch does not wait for it: the arguments have the types of the real calls, hence the same
    compiled code.
    """
    from geodata._datekernel import fixed_format, read_fixed

    hash_strings(pa.array(["warm"], pa.string()))
    fixed = fixed_format("%Y-%m-%d")
    assert fixed is not None
    read_fixed(pa.array(["2025-01-01"], pa.string()), np.zeros(1, dtype=np.int64), fixed)
    IdTable(16).add(np.ones(1, dtype=np.uint64), np.ones(1, dtype=np.int64))


def in_background(function: Callable[..., object], *args: object, name: str) -> threading.Thread:
    """Start ``function(*args)`` on a daemon thread named `name`; return the thread.

    For warm-ups that load compiled code ahead of its first use: an error is ignored here, as
    the real first call, on its own thread, raises it again.
    """

    def run() -> None:
        with contextlib.suppress(Exception):
            function(*args)

    thread = threading.Thread(target=run, name=name, daemon=True)
    thread.start()
    return thread


def warm_up_soon() -> threading.Thread:
    """Start :func:`warm_up` on a daemon thread; return the thread."""
    return in_background(warm_up, name="numba-warm-up")


class IdTable:
    """The ids seen so far in a file and the line where each first occurred.

    Open addressing on the 64-bit hashes, 12 bytes a slot, at most 3/4 full: 16-32 bytes an
    id. The slots are split into 64 tables by the hash's top bits, which grow one at a time.
    Given the keys that repeat in the file (`only`), it keeps just those: a large file's reader
    finds them first (:func:`geodata._idspill.repeated_keys`), so its memory stays small.
    """

    def __init__(self, capacity: int = 1 << 16, *, only: np.ndarray | None = None) -> None:
        #: When given, the sorted keys that may repeat (:func:`geodata._idspill.repeated_keys`
        #: of the whole file): the others are new by construction and are not kept.
        self._only = only
        segments = 1 << _SEGMENT_BITS
        size = 1 << max(4, int(capacity // segments - 1).bit_length())
        self._tables = [np.zeros(size, dtype=np.uint64) for _ in range(segments)]
        self._firsts = [np.zeros(size, dtype=np.int32) for _ in range(segments)]
        self._counts = [0] * segments

    def add(self, keys: np.ndarray, lines: np.ndarray) -> np.ndarray:
        """Insert ids (as :func:`hash_strings` keys); return, per id, the first line or -1 if new.

        An id repeated inside `keys` points at its first occurrence within `keys`.
        """
        if lines.size and int(lines.max()) > _LAST_LINE:
            msg = f"line {int(lines.max())}: files of more than {_LAST_LINE} lines are not read"
            raise ValueError(msg)
        keys = np.ascontiguousarray(keys, dtype=np.uint64)
        lines = np.ascontiguousarray(lines, dtype=np.int64)
        if self._only is not None:
            out = np.full(keys.size, -1, dtype=np.int64)
            if self._only.size:
                at = np.minimum(np.searchsorted(self._only, keys), self._only.size - 1)
                may = np.flatnonzero(self._only[at] == keys)
                if may.size:
                    out[may] = self._insert(keys[may], lines[may])
            return out
        return self._insert(keys, lines)

    def _insert(self, keys: np.ndarray, lines: np.ndarray) -> np.ndarray:
        # the keys of a table keep their order, so a repeat inside `keys` still finds its first
        # occurrence (equal keys share a table)
        order, spans = key_groups(keys, _SEGMENT_BITS)
        out = np.empty(keys.size, dtype=np.int64)
        for s, start, end in spans:
            at = order[start:end]
            self._grow(s, self._counts[s] + at.size)
            found = np.empty(at.size, dtype=np.int64)
            self._counts[s] += _insert_kernel(
                keys[at], lines[at], self._tables[s], self._firsts[s], found
            )
            out[at] = found
        return out

    def _grow(self, s: int, needed: int) -> None:
        # at most 3/4 full: linear probing stays short with well-spread hashes
        size = self._tables[s].size
        if needed * 4 <= size * 3:
            return
        while needed * 4 > size * 3:
            size *= 2
        old_keys, old_first = self._tables[s], self._firsts[s]
        table = np.zeros(size, dtype=np.uint64)
        first = np.zeros(size, dtype=np.int32)
        used = old_keys != _EMPTY
        if used.any():
            scratch = np.empty(int(used.sum()), dtype=np.int64)
            _insert_kernel(old_keys[used], old_first[used].astype(np.int64), table, first, scratch)
        self._tables[s], self._firsts[s] = table, first

    @property
    def nbytes(self) -> int:
        """Return the memory held by the table, in bytes."""
        return sum(t.nbytes + f.nbytes for t, f in zip(self._tables, self._firsts, strict=True))
