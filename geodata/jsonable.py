"""Turn results (numpy scalars, NaN, dates, frames) into plain JSON values: the one converter."""

from __future__ import annotations

import math
from datetime import date, datetime, time

import numpy as np
import pandas as pd

__all__ = ["jsonable", "jsonable_records"]


def jsonable(value: object, *, digits: int | None = None) -> object:
    """Return `value` as plain JSON values.

    Dicts and lists are converted recursively (keys become strings); numpy scalars become
    Python ones; NaN, infinities, ``None``, ``pd.NA`` and ``NaT`` become None; dates, times and
    timestamps become ISO 8601 strings (a timestamp keeps its offset).

    Parameters
    ----------
    value
        A result, or a structure of them.
    digits
        Round floats to this many decimals (None: keep them as they are).
    """
    if isinstance(value, dict):
        return {str(k): jsonable(v, digits=digits) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [jsonable(v, digits=digits) for v in value]
    if value is None or value is pd.NA or value is pd.NaT:
        return None
    if isinstance(value, bool | np.bool_):
        return bool(value)
    if isinstance(value, np.integer):
        return int(value)
    if isinstance(value, float | np.floating):
        number = float(value)
        if not math.isfinite(number):
            return None
        return round(number, digits) if digits is not None else number
    if isinstance(value, datetime | date | time):  # pd.Timestamp is a datetime
        return value.isoformat()
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    return value


def jsonable_records(frame: pd.DataFrame, *, digits: int | None = None) -> list[dict[str, object]]:
    """Return the rows of `frame` as JSON-ready dicts (see :func:`jsonable`)."""
    return [jsonable(row, digits=digits) for row in frame.to_dict(orient="records")]  # type: ignore[misc]
