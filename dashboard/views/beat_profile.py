"""Beat profile: pick a beat (list, map click or "find my beat"), see its CompStat profile."""

from __future__ import annotations

import streamlit as st

from analysis.profiles import no_incidents_note
from dashboard import auth, calls_panel, data, map_clicks, state
from dashboard import profile_data as pd_
from geodata import schema

store = data.get_store()
root, token = str(store.root), data.store_token(store)
word = {lv.key: lv.singular for lv in data.department(root, token).levels}
st.title(f"{word['beat'].capitalize()} profile")
dates = calls_panel.page_dates_or_stop(root, token)
has_incidents = data.has_incidents(root, token)
beats = data.load_beats(root, token)
beat_ids = sorted(beats[schema.BEAT])
SELECT_KEY = "beat_profile_select"


def _find() -> None:  # runs before the script when the address box changes
    text = st.session_state.get(pd_.FIND_KEY, "").strip()
    if text:
        found = pd_.find_beat(root, token, text)
        st.session_state["beat_profile_find_message"] = found.message
        if found.located is not None:
            where = found.located
            st.session_state[pd_.PIN_KEY] = (where.lat, where.lon, where.matched)
        if found.beat:
            st.session_state[state.BEAT] = found.beat


def _picked() -> None:  # the user chose from the list: that is now the selected beat
    st.session_state[state.BEAT] = st.session_state[SELECT_KEY]


wanted = st.session_state.get(state.BEAT)
if wanted in beat_ids and st.session_state.get(SELECT_KEY) != wanted:
    st.session_state[SELECT_KEY] = wanted  # set by find, a map click or the sector review

left, mid, right = st.columns([1, 2, 1])
beat = left.selectbox(word["beat"].capitalize(), beat_ids, key=SELECT_KEY, on_change=_picked)
st.session_state[state.BEAT] = beat
if has_incidents:  # the block list is built from the incidents
    mid.text_input(
        "Find my beat: address, block or lat, lon",
        key=pd_.FIND_KEY,
        on_change=_find,
        placeholder="a street address, a hundred block as the reports write it, or lat, lon",
    )
as_of = data.as_of_input(right, dates)
if message := st.session_state.pop("beat_profile_find_message", None):
    st.info(message)

parents = beats.loc[beats[schema.BEAT] == beat].iloc[0]
above = ", ".join(f"{word[lv]} {parents[lv]}" for lv in word if lv != "beat")
if not has_incidents:
    st.caption(f"{word['beat'].capitalize()} {beat}: {above}.")
    st.info(calls_panel.no_incidents_message(root, token))
    calls_panel.render_calls_section(root, token, "beat", beat, as_of)
    st.stop()

profile = pd_.area_profile(root, token, "beat", beat, as_of)
is_empty = profile.n_incidents == 0
if is_empty:
    st.info(no_incidents_note(profile) + " Pick another date to see charts and tables.")
elif note := data.dataset_label(root, token, profile.period):
    st.warning(note)
st.caption(
    f"{profile.title}: {profile.start} to {profile.end} (28 days, {profile.timezone}); "
    f"{above}; neighbours: {', '.join(profile.neighbours) or 'none'}"
)

a, b, c, d = st.columns(4)
a.metric("Incidents (28 days)", f"{profile.n_incidents:,}")
b.metric("Per km²", f"{(profile.density_per_km2 or 0):.1f}", help=f"{profile.area_km2:.2f} km²")
share = profile.concentration["share"]
c.metric("On busiest 20% of blocks", "n/a" if share is None else f"{share:.0%}")
station = profile.station or {}
d.metric("Station", station.get("name") or "none", help=station.get("address"))

map_col, chart_col = st.columns([3, 2])
with map_col:
    click = map_clicks.new_click(
        pd_.profile_map(root, token, profile, pin=st.session_state.get(pd_.PIN_KEY)),
        key=f"beat_map_{beat}",
        click_key=pd_.CLICK_KEY,
    )
    if click:
        clicked = pd_.beat_at(root, token, click["lng"], click["lat"])
        if clicked and clicked != beat:
            st.session_state[state.BEAT] = clicked
            st.rerun()
    st.caption(
        "Click the map to open the beat there. Incidents: clustered markers up to 2,000, "
        "counts per grid cell above."
    )
with chart_col:
    if not is_empty:
        st.altair_chart(pd_.trend_chart(profile), width="stretch")
        st.altair_chart(pd_.category_chart(profile), width="stretch")

st.subheader("CompStat comparison")
st.dataframe(pd_.comparison_view(profile), hide_index=True, width="stretch")
st.caption(
    "Week = last complete Monday-Sunday week. p: exact test of two Poisson counts; "
    "flags at p < 0.05. Empty change: previous count 0, or no comparable data then."
)
if not is_empty:
    st.altair_chart(pd_.hour_weekday_chart(profile), width="stretch")
    t1, t2, t3 = st.columns(3)
    t1.dataframe(profile.counts_by_offense, hide_index=True, width="stretch")
    t2.dataframe(profile.location_types, hide_index=True, width="stretch")
    t3.dataframe(profile.top_blocks, hide_index=True, width="stretch")
calls_panel.render_calls_section(root, token, "beat", beat, as_of)
auth.download_button(
    f"Printable {word['beat']} profile (HTML)",
    pd_.packet_html(root, token, "beat", beat, as_of),
    file_name=f"beat_{beat}_{as_of}.html",
    mime="text/html",
)
auth.download_button(
    "Beat profile (PDF, one page)",
    pd_.packet_pdf(root, token, "beat", beat, as_of),
    file_name=f"beat_{beat}_{as_of}.pdf",
    mime="application/pdf",
)
