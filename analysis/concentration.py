"""Crime concentration at places: top places and the 80/20 share (incidents in the top 20%)."""

from __future__ import annotations

import math

import pandas as pd

__all__ = ["concentration_share", "top_places"]


def top_places(incidents: pd.DataFrame, column: str, *, top_n: int = 10) -> pd.DataFrame:
    """Return the `top_n` most frequent values of `column` with counts and shares.

    Ties are broken by the value itself (alphabetically), so the result is deterministic.
    Missing values are left out.

    Returns
    -------
    DataFrame
        Columns `column`, ``incidents``, ``share`` (of all rows with a value).
    """
    if column not in incidents:
        msg = f"incidents have no column {column!r}"
        raise ValueError(msg)
    if top_n < 1:
        msg = f"top_n must be >= 1, got {top_n!r}"
        raise ValueError(msg)
    values = incidents[column].dropna().astype(str)
    counts = values.value_counts().rename("incidents").rename_axis(column).reset_index()
    counts = counts.sort_values(["incidents", column], ascending=[False, True], kind="stable")
    total = int(counts["incidents"].sum())
    counts["share"] = counts["incidents"] / total if total else 0.0
    return counts.head(top_n).reset_index(drop=True)


def concentration_share(
    incidents: pd.DataFrame, column: str, *, top_fraction: float = 0.2
) -> dict[str, float | int | None]:
    """Return the share of incidents at the busiest `top_fraction` of places.

    Places are the distinct values of `column` (e.g. Chicago's hundred-blocks) with at least one
    incident; the busiest ``ceil(top_fraction * places)`` of them are taken. The "80/20 rule"
    says that about 20% of places have about 80% of the incidents; a share near `top_fraction`
    means incidents are spread evenly.

    Returns
    -------
    dict
        ``n_places``, ``n_top_places``, ``n_incidents``, ``top_fraction``, ``share`` (None when
        there are no incidents).
    """
    if not 0 < top_fraction <= 1:
        msg = f"top_fraction must be in (0, 1], got {top_fraction!r}"
        raise ValueError(msg)
    if column not in incidents:
        msg = f"incidents have no column {column!r}"
        raise ValueError(msg)
    counts = incidents[column].dropna().astype(str).value_counts().sort_values(ascending=False)
    n_places = len(counts)
    n_incidents = int(counts.sum())
    n_top = math.ceil(top_fraction * n_places)
    share = float(counts.iloc[:n_top].sum() / n_incidents) if n_incidents else None
    return {
        "n_places": n_places,
        "n_top_places": n_top,
        "n_incidents": n_incidents,
        "top_fraction": top_fraction,
        "share": share,
    }
