"""Calls for service (CAD records): canonical columns, derived intervals and validation.

A CAD export holds one row per call with the times it went through: received, dispatched (first
unit assigned), arrived (first unit on scene) and closed (all units cleared). This module turns
such rows, once their columns are mapped and their times parsed, into the canonical calls frame
with two derived intervals in minutes, and rejects rows whose times cannot be right, each with
its reason, so that ``rows read = rows accepted + rows rejected`` holds as for incidents.

Rules (see ``docs/planning.md``):

* ``received_at`` is required; a call without it cannot be placed in time.
* A time earlier than the step before it is rejected (a close before a dispatch, an arrival
  before a dispatch, a dispatch before the call was received).
* An interval longer than ``max_interval_h`` (default 24 h) is rejected as absurd.
* Missing later times are kept: 15% of real calls never see an arrival (cancelled, gone on
  arrival), and their time on task counts from dispatch.

``response_min`` is received -> arrived; ``time_on_task_min`` is arrived -> closed, or
dispatched -> closed when no arrival was recorded.
"""

from __future__ import annotations

import pandas as pd

__all__ = [
    "ARRIVED_AT",
    "CALL_COLUMNS",
    "CALL_ID",
    "CALL_TIMES",
    "CALL_TYPE",
    "CLOSED_AT",
    "DISPATCHED_AT",
    "DISPOSITION",
    "PRIORITY",
    "RECEIVED_AT",
    "RESPONSE_MIN",
    "TIME_ON_TASK_MIN",
    "UNITS",
    "derive_intervals",
    "units_from_plan",
]

CALL_ID = "call_id"
CALL_TYPE = "call_type"
PRIORITY = "priority"
RECEIVED_AT = "received_at"
DISPATCHED_AT = "dispatched_at"
ARRIVED_AT = "arrived_at"
CLOSED_AT = "closed_at"
UNITS = "units"
DISPOSITION = "disposition"
RESPONSE_MIN = "response_min"
TIME_ON_TASK_MIN = "time_on_task_min"

#: The call's times in the order a call goes through them.
CALL_TIMES = (RECEIVED_AT, DISPATCHED_AT, ARRIVED_AT, CLOSED_AT)

#: Canonical call columns and their dtypes (times are tz-aware in the store's zone).
CALL_COLUMNS: dict[str, str] = {
    CALL_ID: "string",
    CALL_TYPE: "string",
    PRIORITY: "string",
    RECEIVED_AT: "datetime64[ns, UTC]",
    DISPATCHED_AT: "datetime64[ns, UTC]",
    ARRIVED_AT: "datetime64[ns, UTC]",
    CLOSED_AT: "datetime64[ns, UTC]",
    UNITS: "Int64",
    DISPOSITION: "string",
    RESPONSE_MIN: "float64",
    TIME_ON_TASK_MIN: "float64",
}

_LABELS = {
    RECEIVED_AT: "received",
    DISPATCHED_AT: "dispatched",
    ARRIVED_AT: "arrived",
    CLOSED_AT: "closed",
}


def units_from_plan(plans: pd.Series) -> pd.Series:
    """Return the number of officers a response plan sends (``"P4 2 Officer Response"`` -> 2).

    The first number before ``Officer`` counts the officers; a sergeant (``Sgt``/``Sergeant``)
    adds one. A plan that names no number of officers gives a missing value, not a guess.

    Parameters
    ----------
    plans
        Response-plan text as the CAD system writes it.

    Returns
    -------
    Series
        Nullable integers aligned with `plans`.
    """
    text = plans.astype("string")
    officers = pd.to_numeric(
        text.str.extract(r"(\d+)\s*Officer", expand=False), errors="coerce"
    ).astype("Int64")
    sergeant = text.str.contains(r"\bSgt\b|Sergeant", case=False, regex=True).fillna(False)
    return (officers + sergeant.astype("Int64")).astype("Int64")


def derive_intervals(
    calls: pd.DataFrame, *, max_interval_h: float = 24.0
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Return the valid calls with ``response_min`` and ``time_on_task_min``, and the rejects.

    Parameters
    ----------
    calls
        Calls with tz-aware ``received_at``, ``dispatched_at``, ``arrived_at`` and ``closed_at``
        (missing times are NaT) and any other columns, which are kept.
    max_interval_h
        Longest plausible interval between two of a call's times, in hours.

    Returns
    -------
    accepted
        A copy of the valid rows with the two derived columns, in minutes.
    rejected
        One row per rejected call: its index label in ``row``, the ``column`` at fault and the
        ``reason``. ``len(accepted) + len(rejected) == len(calls)``.

    Raises
    ------
    ValueError
        If a time column is missing or `max_interval_h` is not positive.
    """
    missing = [c for c in CALL_TIMES if c not in calls.columns]
    if missing:
        msg = f"calls need the time columns {missing} (mapped from the export)"
        raise ValueError(msg)
    if not max_interval_h > 0:
        msg = f"max_interval_h must be a positive number of hours, got {max_interval_h}"
        raise ValueError(msg)
    times = {c: calls[c] for c in CALL_TIMES}
    reason = pd.Series(pd.NA, index=calls.index, dtype="string")
    column = pd.Series(pd.NA, index=calls.index, dtype="string")

    def flag(mask: pd.Series, col: str, text: str) -> None:
        new = mask.fillna(False).to_numpy() & reason.isna().to_numpy()
        reason[new] = text
        column[new] = col

    flag(times[RECEIVED_AT].isna(), RECEIVED_AT, "no received time")
    limit = pd.Timedelta(hours=max_interval_h)
    # each later time is checked against the latest earlier time that is present
    for later_pos, later in enumerate(CALL_TIMES[1:], start=1):
        for earlier in reversed(CALL_TIMES[:later_pos]):
            gap = times[later] - times[earlier]
            both = times[later].notna() & times[earlier].notna()
            flag(
                both & (gap < pd.Timedelta(0)),
                later,
                f"{_LABELS[later]} before {_LABELS[earlier]}",
            )
            flag(
                both & (gap > limit),
                later,
                f"{_LABELS[earlier]} to {_LABELS[later]} longer than {max_interval_h:g} h",
            )
    bad = reason.notna()
    rejected = pd.DataFrame(
        {"row": calls.index[bad], "column": column[bad].to_numpy(), "reason": reason[bad]}
    ).reset_index(drop=True)
    accepted = calls.loc[~bad].copy()
    minutes = pd.Timedelta(minutes=1)
    accepted[RESPONSE_MIN] = (accepted[ARRIVED_AT] - accepted[RECEIVED_AT]) / minutes
    start = accepted[ARRIVED_AT].fillna(accepted[DISPATCHED_AT])
    accepted[TIME_ON_TASK_MIN] = (accepted[CLOSED_AT] - start) / minutes
    return accepted, rejected
