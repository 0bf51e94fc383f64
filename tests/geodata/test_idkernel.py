"""The id table that finds repeated ids in a file agrees with a plain dict, batch by batch."""

from __future__ import annotations

from itertools import pairwise

import numpy as np
import pyarrow as pa
import pytest

from geodata._idkernel import IdTable, hash_strings


def _reference(batches: list[tuple[np.ndarray, np.ndarray]]) -> list[np.ndarray]:
    """Per batch, the line where each key first occurred (-1 when new), with a dict."""
    first: dict[int, int] = {}
    out = []
    for keys, lines in batches:
        answer = np.empty(keys.size, dtype=np.int64)
        for i, (key, line) in enumerate(zip(keys.tolist(), lines.tolist(), strict=True)):
            answer[i] = first.get(key, -1)
            first.setdefault(key, line)
        out.append(answer)
    return out


def test_repeats_across_and_within_batches_point_at_their_first_line() -> None:
    rng = np.random.default_rng(7)
    # 200,000 ids drawn from 120,000: many repeats, inside a batch and across batches; a
    # capacity of 16 makes every one of the 64 tables grow many times
    ids = rng.integers(0, 120_000, size=200_000)
    keys = hash_strings(pa.array([f"JA{i:06d}" for i in ids.tolist()]))
    lines = np.arange(2, ids.size + 2, dtype=np.int64)
    cuts = [0, 1, 17, 5_000, 5_001, 60_000, 140_000, 200_000]
    batches = [(keys[a:b], lines[a:b]) for a, b in pairwise(cuts)]
    table = IdTable(16)
    got = [table.add(k, n) for k, n in batches]
    expected = _reference(batches)
    for g, e in zip(got, expected, strict=True):
        np.testing.assert_array_equal(g, e)
    new = int(sum((g == -1).sum() for g in got))
    assert new == np.unique(ids).size
    # at most 3/4 full, at least 3/16 full (a table doubles when it passes 3/4)
    assert new * 12 / 0.75 <= table.nbytes <= new * 12 / (0.75 / 4)


def test_a_line_beyond_the_int32_range_is_refused_by_name() -> None:
    table = IdTable()
    keys = np.array([1, 2], dtype=np.uint64)
    with pytest.raises(ValueError, match="line 2147483648: files of more than"):
        table.add(keys, np.array([5, 2**31], dtype=np.int64))
