"""Calls for service: an area's calls against the period before, response times and workload."""

from __future__ import annotations

import altair as alt
import streamlit as st

from analysis.compare import WINDOWS
from dashboard import calls_data, data
from dashboard.map_clicks import show_map
from geodata import schema

LABELS = {"7d": "Week (Mon-Sun)", "28d": "28 days", "ytd": "Year to date", "365d": "365 days"}

store = data.get_store()
root, token = str(store.root), data.store_token(store)
st.title("Calls for service")
if not calls_data.has_calls(root, token):
    st.info(
        "This department's data holds no calls for service. An analyst can import a CAD "
        "export on the Data and import page (choose Calls for service, and the export's column "
        "mapping unless the department has one); the profiles then show calls and response "
        "times."
    )
    st.stop()

department = data.department(root, token)
levels = [lv.key for lv in department.levels]
first, last = calls_data.calls_range(root, token)
left, mid, right, far = st.columns(4)
level = left.selectbox(
    "Area", [None, *levels], format_func=lambda lv: "Whole department" if lv is None else
    data.label(root, token, lv, title=True), key="calls_level",
)  # fmt: skip
area = None
if level is not None:
    ids = sorted(data.load_beats(root, token)[level].dropna().unique())
    area = mid.selectbox(data.label(root, token, level, title=True), ids, key="calls_area")
window = right.selectbox(
    "Window", WINDOWS, index=0, format_func=LABELS.__getitem__, key="calls_window"
)
as_of = far.date_input("As of", value=last, min_value=first, max_value=last)
target = st.number_input(
    "Response-time target (minutes)", min_value=1.0, max_value=120.0, value=10.0, step=1.0
)
review = calls_data.review(root, token, level, area, as_of, window, float(target))
place = department.name if level is None else f"{data.label(root, token, level)} {area}"
st.caption(
    f"{place}, {LABELS[window]}: {review.window.start} to {review.window.end}, against the "
    f"{review.window.days} days before. Response time: received to first unit on scene."
)
current = int(review.counts["current"].sum())
if current == 0:
    st.info(f"No calls in this period for {place}.")
    st.stop()
previous = int(review.counts["previous"].sum())
worse = review.response[review.response["worse"]]
a, b, c = st.columns(3)
a.metric("Calls", f"{current:,}", f"{current - previous:+,} on the period before")
b.metric(
    "Median response (min)",
    f"{review.by_priority['response_median_min'].median():.1f}"
    if review.by_priority["responded"].sum()
    else "n/a",
)
c.metric(f"{data.label(root, token, 'beat', plural=True, title=True)} responding slower",
         f"{len(worse)} of {len(review.response)}")  # fmt: skip
if len(worse):
    st.warning(
        "Response got slower (one-sided Mann-Whitney test, p < 0.05) in "
        + ", ".join(
            f"{data.label(root, token, 'beat')} {r[schema.BEAT]} (median "
            f"{r['previous_median_min']:.1f} -> {r['response_median_min']:.1f} min)"
            for _, r in worse.iterrows()
        )
        + "."
    )
map_col, side = st.columns([3, 2])
with map_col:
    show_map(
        calls_data.calls_map(root, token, review.window.start, review.window.end),
        height=440,
        key="calls_map",
    )
    st.caption("Officer-hours: time on task (arrival, else dispatch, to close) x officers sent.")
with side:
    st.markdown("**Calls by type**")
    st.dataframe(review.by_type.head(10), hide_index=True, width="stretch")
st.subheader("Response time by area")
st.dataframe(review.response.round(2), hide_index=True, width="stretch")
st.subheader("By priority")
st.dataframe(review.by_priority.round(2), hide_index=True, width="stretch")
st.subheader("By hour of the day")
st.altair_chart(
    alt.Chart(review.by_hour)
    .mark_bar()
    .encode(
        x=alt.X("hour:O", title="Hour of the day (local)"),
        y=alt.Y("response_median_min:Q", title="Median response (minutes)"),
        tooltip=["hour", "calls", "response_median_min", "response_p90_min"],
    ),
    width="stretch",
)
