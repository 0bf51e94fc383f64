"""Linear binning of points onto a regular grid, compiled with numba (one pass, no temporaries).

Imported lazily by :meth:`analysis.hotspots.Grid.linear_counts` so that importing the analysis
package does not import numba. The kernel is cached on disk (``cache=True``): the first call in
a fresh environment compiles it (about half a second), later processes load it.
"""

from __future__ import annotations

import math

import numba
import numpy as np


@numba.njit(cache=True, nogil=True)
def linear_binning(
    x: np.ndarray,
    y: np.ndarray,
    weights: np.ndarray,
    x0: float,
    y0: float,
    cell: float,
    out: np.ndarray,
) -> None:  # pragma: no cover - compiled
    """Add each point's weight to the four cell centres around it (bilinear shares) in `out`.

    `out` is the (rows, cols) float64 grid whose cell (r, c) has its centre at
    ``(x0 + (c + 0.5) * cell, y0 + (r + 0.5) * cell)``; shares falling outside it are dropped.
    An empty `weights` means weight 1 for every point.
    """
    n_rows, n_cols = out.shape
    inv = 1.0 / cell
    unit = weights.shape[0] == 0
    for i in range(x.shape[0]):
        fx = (x[i] - x0) * inv - 0.5
        fy = (y[i] - y0) * inv - 0.5
        if not (-1.0 < fx < n_cols and -1.0 < fy < n_rows):  # no share inside the grid
            continue
        cf = math.floor(fx)
        rf = math.floor(fy)
        wx = fx - cf
        wy = fy - rf
        w = 1.0 if unit else weights[i]
        c = int(cf)
        r = int(rf)
        if c >= 0 and c + 1 < n_cols and r >= 0 and r + 1 < n_rows:  # the usual case
            out[r, c] += w * (1.0 - wx) * (1.0 - wy)
            out[r, c + 1] += w * wx * (1.0 - wy)
            out[r + 1, c] += w * (1.0 - wx) * wy
            out[r + 1, c + 1] += w * wx * wy
            continue
        for dr in range(2):
            rr = r + dr
            if rr < 0 or rr >= n_rows:
                continue
            sy = wy if dr else 1.0 - wy
            for dc in range(2):
                cc = c + dc
                if cc < 0 or cc >= n_cols:
                    continue
                sx = wx if dc else 1.0 - wx
                out[rr, cc] += w * sx * sy
