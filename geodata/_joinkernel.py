"""Compiled kernel of the beat join (numba): grid lookup plus the exact test in boundary cells.

Kept apart from :mod:`geodata.join` so the algorithm there stays readable; see its docstring
for the rule. For a point in a boundary cell the kernel looks only at the beat-boundary segments
that touch that cell (grown by the tolerance):

* a beat is a *candidate* when one of its segments lies within the tolerance of the point, or
  when it contains the point;
* containment comes from the cell centre, whose beat is known exactly from the rasterisation
  (GDAL burns a cell when its centre is inside a polygon), by counting how many of each beat's
  segments the short line from the centre to the point crosses (odd = the point is on the other
  side of that beat's boundary than the centre).
"""

from __future__ import annotations

import types
from collections.abc import Callable

import numpy as np
from numba import njit, prange

# the grid's labels; geodata.join imports this module on its first lookup, so it is loaded
from geodata.join import MIXED, NEEDS_TEST, OUTSIDE, GridFrame

__all__ = [
    "MIXED",
    "NEEDS_TEST",
    "OUTSIDE",
    "exact_kernel",
    "exact_kernel_serial",
    "grid_kernel",
    "grid_kernel_serial",
]

_MAX_LOCAL = 32


@njit(cache=True, inline="always")
def _orient(ax: float, ay: float, bx: float, by: float, cx: float, cy: float) -> float:
    return (bx - ax) * (cy - ay) - (by - ay) * (cx - ax)


@njit(cache=True, inline="always")
def _segment_distance(px: float, py: float, ax: float, ay: float, bx: float, by: float) -> float:
    dx = bx - ax
    dy = by - ay
    length2 = dx * dx + dy * dy
    t = 0.0
    if length2 > 0.0:
        t = ((px - ax) * dx + (py - ay) * dy) / length2
        t = min(1.0, max(0.0, t))
    ex = ax + t * dx - px
    ey = ay + t * dy - py
    return np.sqrt(ex * ex + ey * ey)


@njit(cache=True, inline="always")
def _crosses(
    px: float, py: float, cx: float, cy: float, ax: float, ay: float, bx: float, by: float
) -> bool:
    # half-open at the segment's endpoints, so a path through a shared vertex counts once
    a_side = _orient(px, py, cx, cy, ax, ay) > 0.0
    b_side = _orient(px, py, cx, cy, bx, by) > 0.0
    if a_side == b_side:
        return False
    p_side = _orient(ax, ay, bx, by, px, py)
    c_side = _orient(ax, ay, bx, by, cx, cy)
    return (p_side > 0.0) != (c_side > 0.0)


@njit(cache=True, inline="always")
def _cell_of(px: float, py: float, frame: GridFrame) -> tuple[np.int64, np.int64]:
    """Return the (column, row) of the fine cell of `frame` holding the point."""
    x0, y1, cell = frame[0], frame[1], frame[2]
    return np.int64(np.floor((px - x0) / cell)), np.int64(np.floor((y1 - py) / cell))


@njit(cache=True)
def _band_cell(cell_ids: np.ndarray, linear: np.int64) -> np.intp | int:
    position = np.searchsorted(cell_ids, linear)
    if position < cell_ids.size and cell_ids[position] == linear:
        return position
    return -1


@njit(parallel=True, cache=True)
def grid_kernel(
    x: np.ndarray,
    y: np.ndarray,
    frame: GridFrame,
    coarse: np.ndarray,
    factor: int,
    grid: np.ndarray,
    out_beat: np.ndarray,
    out_status: np.ndarray,
) -> None:
    """First pass: the beat of every point whose cell no boundary touches.

    The coarse grid (``factor`` x ``factor`` fine cells, small enough to stay in cache) answers
    most points; the fine grid the rest. Points left with status -1 need the exact test.
    """
    nx, ny = frame[3], frame[4]
    for i in prange(x.size):
        px = x[i]
        py = y[i]
        out_beat[i] = OUTSIDE
        out_status[i] = 3
        if not (np.isfinite(px) and np.isfinite(py)):
            continue
        col, row = _cell_of(px, py, frame)
        if col < 0 or col >= nx or row < 0 or row >= ny:
            continue
        label = coarse[row // factor, col // factor]
        if label == MIXED:
            label = grid[row, col]
        if label == NEEDS_TEST:
            out_status[i] = -1
        elif label >= 0:
            out_beat[i] = label
            out_status[i] = 0


@njit(parallel=True, cache=True)
def exact_kernel(
    points: np.ndarray,
    x: np.ndarray,
    y: np.ndarray,
    frame: GridFrame,
    cell_ids: np.ndarray,
    cell_ptr: np.ndarray,
    cell_segs: np.ndarray,
    centre_beat: np.ndarray,
    seg_ax: np.ndarray,
    seg_ay: np.ndarray,
    seg_bx: np.ndarray,
    seg_by: np.ndarray,
    seg_beat: np.ndarray,
    tolerance: float,
    reported: np.ndarray,
    prefer_reported: bool,
    nearest_centroid: bool,
    centroid_x: np.ndarray,
    centroid_y: np.ndarray,
    out_beat: np.ndarray,
    out_status: np.ndarray,
) -> None:
    """Second pass: the exact rule for the points (indices `points`) in boundary cells.

    Statuses: 0 inside, 1 edge, 2 snapped, 3 outside.
    """
    x0, y1, cell, nx = frame[0], frame[1], frame[2], frame[3]
    n_chunks = 64
    chunk = (points.size + n_chunks - 1) // n_chunks
    for c in prange(n_chunks):
        local_beats = np.empty(_MAX_LOCAL, np.int64)
        parity = np.zeros(_MAX_LOCAL, np.bool_)
        near = np.zeros(_MAX_LOCAL, np.bool_)
        for q in range(c * chunk, min(points.size, (c + 1) * chunk)):
            i = points[q]
            px = x[i]
            py = y[i]
            col, row = _cell_of(px, py, frame)
            band = _band_cell(cell_ids, row * nx + col)
            cx = x0 + (col + 0.5) * cell
            cy = y1 - (row + 0.5) * cell
            centre = centre_beat[band]
            n_local = 0
            for k in range(cell_ptr[band], cell_ptr[band + 1]):
                s = cell_segs[k]
                beat = seg_beat[s]
                slot = -1
                for j in range(n_local):
                    if local_beats[j] == beat:
                        slot = j
                        break
                if slot < 0:
                    if n_local == _MAX_LOCAL:
                        continue
                    slot = n_local
                    local_beats[slot] = beat
                    parity[slot] = False
                    near[slot] = False
                    n_local += 1
                ax, ay, bx, by = seg_ax[s], seg_ay[s], seg_bx[s], seg_by[s]
                if not near[slot] and _segment_distance(px, py, ax, ay, bx, by) <= tolerance:
                    near[slot] = True
                if _crosses(px, py, cx, cy, ax, ay, bx, by):
                    parity[slot] = not parity[slot]
            containing = OUTSIDE
            centre_seen = False
            for j in range(n_local):
                if local_beats[j] == centre:
                    centre_seen = True
                inside = (local_beats[j] == centre) != parity[j]
                if inside and containing == OUTSIDE:
                    containing = local_beats[j]
            containing_is_local = containing != OUTSIDE
            if not centre_seen and centre >= 0:
                containing = centre  # no boundary of the centre's beat in this cell
                containing_is_local = False
            n_candidates = 0
            best = OUTSIDE
            best_score = np.inf
            for j in range(n_local + 1):
                if j < n_local:
                    beat = local_beats[j]
                    if not (near[j] or beat == containing):
                        continue
                else:
                    beat = containing
                    if beat == OUTSIDE or containing_is_local:
                        continue
                n_candidates += 1
                if prefer_reported and reported[i] == beat:
                    score = -np.inf
                elif nearest_centroid:
                    score = np.hypot(centroid_x[beat] - px, centroid_y[beat] - py)
                else:
                    score = np.float64(beat)
                if score < best_score or (score == best_score and beat < best):
                    best_score = score
                    best = beat
            out_beat[i] = best
            if n_candidates == 0:
                out_status[i] = 3
            elif n_candidates >= 2:
                out_status[i] = 1
            elif best == containing:
                out_status[i] = 0
            else:
                out_status[i] = 2


def _single_threaded(kernel: Callable[..., None]) -> Callable[..., None]:
    """Return `kernel` compiled for one thread (``prange`` runs as ``range``), GIL released.

    For batches of a few tens of thousands of points (an ingest's): the parallel kernel wakes
    its thread pool on every call (about 8 ms, longer on a loaded machine), and its threads spin
    after each call, taking the core from the CSV reader and the Parquet writer; loading it
    from numba's cache also takes longer. The copy gets its own name, hence its own cache file.
    """
    func = kernel.py_func  # type: ignore[attr-defined]
    name = f"{func.__name__}_serial"
    copy = types.FunctionType(
        func.__code__, func.__globals__, name, func.__defaults__, func.__closure__
    )
    copy.__qualname__ = f"{func.__qualname__}_serial"
    copy.__module__ = func.__module__
    copy.__doc__ = func.__doc__
    return njit(cache=True, nogil=True)(copy)


grid_kernel_serial = _single_threaded(grid_kernel)
exact_kernel_serial = _single_threaded(exact_kernel)
