"""Calls for service on the area pages: a compact section, and the notice of a calls-only store.

Beat profile and Sector review show an area's calls (:func:`dashboard.calls_data.area_calls`)
beside its incidents; a page that needs incident reports tells a store without any where its
calls are (:func:`stop_without_incidents`).
"""

from __future__ import annotations

from datetime import date

import streamlit as st

from dashboard import calls_data, data

__all__ = [
    "CALLS_PAGE",
    "no_incidents_message",
    "page_dates_or_stop",
    "render_calls_section",
    "stop_without_incidents",
]

#: The Calls for service page (as ``st.page_link`` and ``st.switch_page`` name it).
CALLS_PAGE = "views/calls.py"

_LABELS = {"7d": "week (Mon-Sun)", "28d": "28 days", "ytd": "year to date", "365d": "365 days"}


def _minutes(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.1f}"


def no_incidents_message(root: str, token: str) -> str:
    """Return what a page that needs incident reports says on a store without any."""
    name = data.department(root, token).name
    if calls_data.has_calls(root, token):
        return (
            f"No incident reports in this store ({name} holds calls for service only): "
            "see Calls for service."
        )
    return (
        f"No incident reports in this store ({name}). An analyst can import them on the "
        "Data and import page."
    )


def stop_without_incidents(root: str, token: str) -> None:
    """Say so and stop the page when the store holds no incident reports (else do nothing)."""
    if data.has_incidents(root, token):
        return
    _say_no_incidents(root, token)
    st.stop()


def page_dates_or_stop(root: str, token: str) -> tuple[date, date, str | None, date]:
    """Return the as-of dates an area page offers (:func:`calls_data.page_dates`).

    With neither incidents nor calls in the store, say so and stop the page.
    """
    dates = calls_data.page_dates(root, token)
    if dates is None:
        _say_no_incidents(root, token)
        st.stop()
    return dates


def _say_no_incidents(root: str, token: str) -> None:
    st.info(no_incidents_message(root, token))
    if calls_data.has_calls(root, token):
        st.page_link(CALLS_PAGE, label="Open Calls for service", icon=":material/call:")


def render_calls_section(
    root: str, token: str, level: str, area: str, as_of: date, window: str = "28d"
) -> None:
    """Show an area's calls: the window against the period before, response, time on task.

    Nothing is shown when the store holds no calls.

    Parameters
    ----------
    level
        ``beat``, ``sector`` or ``district`` (the store's column).
    area
        The area's id at `level`.
    as_of
        Last local day of the window.
    window
        CompStat window: ``7d``, ``28d``, ``ytd`` or ``365d``.
    """
    if not calls_data.has_calls(root, token):
        return
    first, last = calls_data.calls_range(root, token)
    word = data.label(root, token, level)
    st.subheader("Calls for service")
    if not first <= as_of <= last:
        st.info(f"The calls stored run from {first} to {last}; pick a date in that span.")
        return
    summary = calls_data.area_calls(root, token, level, area, as_of, window)
    st.caption(
        f"{word.capitalize()} {area}, {_LABELS[window]}: {summary.start} to {summary.end}, "
        "against the period as long just before. Response: received to first unit on scene; "
        "time on task: arrival (else dispatch) to close."
    )
    if summary.calls == 0:
        st.info(f"No calls for service in this period for {word} {area}.")
        return
    # the period before is compared only when the store holds calls for all of it
    is_covered = summary.previous_start >= first
    if not is_covered:
        st.caption(
            f"The stored calls start on {first}: the period before this window is not covered, "
            "so it is not compared."
        )
    a, b, c, d = st.columns(4)
    a.metric(
        "Calls in the window",
        f"{summary.calls:,}",
        f"{summary.calls - summary.previous:+,} on the period before ({summary.previous:,})"
        if is_covered
        else None,
        delta_color="off",
    )
    gap = (
        None
        if not is_covered
        or summary.response_median_min is None
        or summary.previous_median_min is None
        else summary.response_median_min - summary.previous_median_min
    )
    b.metric(
        "Median response (min)",
        _minutes(summary.response_median_min),
        None if gap is None else f"{gap:+.1f} min (before: {summary.previous_median_min:.1f})",
        delta_color="inverse",
    )
    c.metric("Median time on task (min)", _minutes(summary.time_on_task_median_min))
    d.metric("Officer-hours on calls", f"{summary.officer_hours:,.1f}")
    if is_covered and summary.response_worse:
        st.warning(
            f"Response got slower in {word} {area}: median "
            f"{summary.previous_median_min:.1f} -> {summary.response_median_min:.1f} min "
            "(one-sided Mann-Whitney test, p < 0.05)."
        )
    elif is_covered:
        st.caption("Response time: no significant slowdown on the period before.")
    st.page_link(CALLS_PAGE, label="More on Calls for service", icon=":material/call:")
