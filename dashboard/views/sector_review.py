"""Sector review for watch commanders: every beat of a sector side by side, changes and flags."""

from __future__ import annotations

import streamlit as st

from analysis.compare import WINDOWS
from analysis.inputs import Period
from dashboard import auth, calls_panel, data, state
from dashboard import profile_data as pd_
from dashboard.forecast_panel import render_forecast_panel
from dashboard.map_clicks import show_map
from geodata import schema

store = data.get_store()
root, token = str(store.root), data.store_token(store)
word = {lv.key: lv.singular for lv in data.department(root, token).levels}
level = data.review_level(root, token)  # the sector, or the level above beats there is
if level is None:
    st.title("Sector review")
    st.info(
        f"This department has no level above its {data.label(root, token, 'beat', plural=True)}:"
        f" see the {word['beat']} profiles."
    )
    st.stop()
st.title(f"{word[level].capitalize()} review")
dates = calls_panel.page_dates_or_stop(root, token)
beats = data.load_beats(root, token)
area_ids = sorted(beats[level].dropna().unique())
LABELS = {"7d": "Week (Mon-Sun)", "28d": "28 days", "ytd": "Year to date", "365d": "365 days"}
REMEMBER = {schema.SECTOR: state.SECTOR, schema.DISTRICT: state.DISTRICT}[level]

beat_parent = beats.loc[beats[schema.BEAT] == st.session_state.get(state.BEAT), level]
remembered = st.session_state.get(REMEMBER) or (beat_parent.iloc[0] if len(beat_parent) else None)
left, mid, right = st.columns([1, 1, 1])
sector = left.selectbox(
    word[level].capitalize(),
    area_ids,
    index=area_ids.index(remembered) if remembered in area_ids else 0,
)
st.session_state[REMEMBER] = sector
window = mid.selectbox("Window", WINDOWS, format_func=LABELS.__getitem__)
as_of = data.as_of_input(right, dates)
if not data.has_incidents(root, token):
    members = sorted(beats.loc[beats[level] == sector, schema.BEAT])
    st.caption(
        f"{data.label(root, token, 'beat', plural=True, title=True)} of {word[level]} "
        f"{sector}: {', '.join(members)}."
    )
    st.info(calls_panel.no_incidents_message(root, token))
    calls_panel.render_calls_section(root, token, level, sector, as_of, window)
    st.stop()

review = pd_.sector_review(root, token, sector, as_of, window, level)
profile = pd_.area_profile(root, token, level, sector, as_of)
total = review.total
window_period = Period(total["start"], total["end"])
if total["current"] == 0:
    st.info(
        f"No incidents in this period: {word[level]} {sector} has none recorded from "
        f"{window_period}. The comparisons below still show the earlier periods."
    )
elif note := data.dataset_label(root, token, window_period):
    st.warning(note)
st.caption(
    f"{LABELS[window]}: {total['start']} to {total['end']}, against the previous "
    f"{(total['end'] - total['start']).days + 1} days and the same period last year. "
    f"{word['beat'].capitalize()}s of {word[level]} {sector} (from the beat layer): "
    f"{', '.join(profile.beats)}."
)
a, b, c, d = st.columns(4)
a.metric(
    f"{word[level].capitalize()} incidents",
    f"{total['current']:,}",
    None if total["pct_change"] is None else f"{total['pct_change']:+.0f}%",
    delta_color="inverse",
)
b.metric("Previous period", f"{total['previous']:,}")
c.metric("p-value", "n/a" if total["p_value"] is None else f"{total['p_value']:.3f}")
d.metric(
    f"{data.label(root, token, 'beat', plural=True, title=True)} flagged",
    f"{int((review.beats['flag'] != '').sum())} of {len(review.beats)}",
)

map_col, side = st.columns([3, 2])
with map_col:
    show_map(
        pd_.profile_map(
            root,
            token,
            profile,
            fills=pd_.sector_fills(root, token, review),
            period=window_period,
        ),
        height=480,
        key=f"sector_map_{sector}",
    )
    st.caption(
        f"{data.label(root, token, 'beat', plural=True, title=True)} coloured by incidents in "
        "the window (tooltip: change and flag); markers: the window's incidents; outlines: "
        f"neighbouring {data.label(root, token, 'beat', plural=True)}."
    )
with side:
    st.markdown("**What changed**")
    reasons = pd_.change_reasons(root, token, sector, as_of, window, level)
    for row in review.explain().itertuples(index=False):
        st.markdown(f"- **{row.beat}**: {row.explanation}")
        if row.beat in reasons:  # a flagged beat: why, and how likely by chance
            parts, chance, table = reasons[row.beat]
            st.markdown(f"  - Why: {parts} In words: {chance}.")
            with st.expander(f"Beat {row.beat}: the change part by part"):
                st.dataframe(table.round({"share": 2}), hide_index=True, width="stretch")

st.subheader(f"{data.label(root, token, 'beat', plural=True, title=True)} side by side")
st.dataframe(
    review.beats.round({"area_km2": 2, "per_km2": 1, "pct_change": 1, "pct_change_last_year": 1}),
    hide_index=True,
    width="stretch",
)
render_forecast_panel(root, token, sector, as_of, level)
calls_panel.render_calls_section(root, token, level, sector, as_of, window)
st.subheader("Unusual counts against prior years")
st.caption(review.unusual_note)
st.dataframe(review.unusual.round(1), hide_index=True, width="stretch")

drill, download = st.columns(2)
target = drill.selectbox(f"Open the profile of {word['beat']}", list(review.beats[schema.BEAT]))
if drill.button(f"Open {word['beat']} profile"):
    st.session_state[state.BEAT] = target
    st.switch_page("views/beat_profile.py")
for label, packet, suffix, mime in (
    (f"Printable {word[level]} packet (HTML)", pd_.packet_html, "html", "text/html"),
    (
        f"{word[level].capitalize()} packet (PDF, two pages)",
        pd_.packet_pdf,
        "pdf",
        "application/pdf",
    ),
):
    auth.download_button(
        label,
        packet(root, token, level, sector, as_of, window),
        file_name=f"{level}_{sector}_{as_of}.{suffix}",
        mime=mime,
        container=download,
    )
