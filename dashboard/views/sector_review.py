"""Sector review for watch commanders: every beat of a sector side by side, changes and flags."""

from __future__ import annotations

from datetime import timedelta

import streamlit as st
from streamlit_folium import st_folium

from analysis.compare import WINDOWS
from dashboard import auth, data, state
from dashboard import profile_data as pd_
from geodata import schema

store = data.get_store()
root, token = str(store.root), data.store_token(store)
first, last = data.incident_date_range(root, token)
sectors = data.load_sectors(root, token)
sector_ids = sorted(sectors[schema.SECTOR].astype(str))
LABELS = {"7d": "Week (Mon-Sun)", "28d": "28 days", "ytd": "Year to date", "365d": "365 days"}

st.title("Sector review")
remembered = st.session_state.get(state.SECTOR) or str(st.session_state.get(state.BEAT) or "")[:3]
left, mid, right = st.columns([1, 1, 1])
sector = left.selectbox(
    "Sector", sector_ids, index=sector_ids.index(remembered) if remembered in sector_ids else 0
)
st.session_state[state.SECTOR] = sector
window = mid.selectbox("Window", WINDOWS, format_func=LABELS.get)
as_of = right.date_input(
    "As of", value=pd_.default_as_of(root, token), min_value=first, max_value=last
)

review = pd_.sector_review(root, token, sector, as_of, window)
profile = pd_.area_profile(root, token, "sector", sector, as_of)
total = review.total
if note := data.dataset_label(root, token, total["start"], total["end"] + timedelta(days=1)):
    st.warning(note)
st.caption(
    f"{LABELS[window]}: {total['start']} to {total['end']}, against the previous "
    f"{(total['end'] - total['start']).days + 1} days and the same period last year. "
    f"Beats of sector {sector} (from the beat layer): {', '.join(profile.beats)}."
)
a, b, c, d = st.columns(4)
a.metric(
    "Sector incidents",
    f"{total['current']:,}",
    None if total["pct_change"] is None else f"{total['pct_change']:+.0f}%",
    delta_color="inverse",
)
b.metric("Previous period", f"{total['previous']:,}")
c.metric("p-value", "n/a" if total["p_value"] is None else f"{total['p_value']:.3f}")
d.metric("Beats flagged", f"{int((review.beats['flag'] != '').sum())} of {len(review.beats)}")

map_col, side = st.columns([3, 2])
with map_col:
    st_folium(
        pd_.profile_map(
            root,
            token,
            profile,
            fills=pd_.sector_fills(root, token, review),
            period=(total["start"], total["end"]),
        ),
        height=480,
        width="stretch",
        returned_objects=[],
        key=f"sector_map_{sector}",
    )
    st.caption(
        "Beats coloured by incidents in the window (tooltip: change and flag); markers: "
        "the window's incidents; outlines: neighbouring beats."
    )
with side:
    st.markdown("**What changed**")
    for row in review.explain().itertuples(index=False):
        st.markdown(f"- **{row.beat}**: {row.explanation}")

st.subheader("Beats side by side")
st.dataframe(
    review.beats.round({"area_km2": 2, "per_km2": 1, "pct_change": 1, "pct_change_last_year": 1}),
    hide_index=True,
    width="stretch",
)
st.subheader("Unusual counts against prior years")
st.caption(review.unusual_note)
st.dataframe(review.unusual.round(1), hide_index=True, width="stretch")

drill, download = st.columns(2)
target = drill.selectbox("Open the profile of beat", list(review.beats[schema.BEAT]))
if drill.button("Open beat profile"):
    st.session_state[state.BEAT] = target
    st.switch_page("views/beat_profile.py")
auth.download_button(
    "Printable sector packet (HTML)",
    pd_.packet_html(root, token, "sector", sector, as_of, window),
    file_name=f"sector_{sector}_{as_of}.html",
    mime="text/html",
    container=download,
)
