"""The one page of the community app (see ``dashboard/community_app.py``)."""

from __future__ import annotations

import logging

import streamlit as st

from dashboard import community_data as cd
from dashboard import map_clicks
from dashboard.maps import esc
from geodata import schema, settings
from geodata.errors import StoreError

BEAT_KEY = "community_beat"
CLICK_KEY = "community_last_click"
WANTED_KEY = "community_clicked_beat"
MESSAGE_KEY = "community_find_message"
PIN_KEY = "community_pin"

try:
    root = cd.ensure_extract(str(settings.public_dir()))
    token = cd.extract_token(root)
    extract, beats, stations = cd.load_extract(root, token)
except StoreError as err:  # the details are for the administrator's log, not the public
    logging.getLogger(__name__).error("community extract not available: %s", err)
    st.error("The community figures are not published yet. Please check back later.")
    st.stop()
meta = extract.metadata
beat_ids = sorted(beats[schema.BEAT])


def _find() -> None:  # runs before the script when the address box changes
    text = st.session_state.get(cd.FIND_KEY, "").strip()
    if text:
        try:
            found = cd.find_beat(root, token, text)
        except StoreError as err:
            st.session_state[MESSAGE_KEY] = (str(err), None)
            return
        st.session_state[MESSAGE_KEY] = (found.message, found.beat)
        if found.located is not None:
            where = found.located  # the pin is drawn to about 10 m: it marks a block, no more
            st.session_state[PIN_KEY] = (round(where.lat, 4), round(where.lon, 4), where.matched)
        if found.beat:
            st.session_state[BEAT_KEY] = found.beat


st.title("Your beat: community safety map")
left, right = st.columns([2, 1])
left.text_input(
    "Find your beat: type a block address (or lat, lon)",
    key=cd.FIND_KEY,
    on_change=_find,
    placeholder="e.g. 1200 Main St, or 47.61, -122.33",
)
if wanted := st.session_state.pop(WANTED_KEY, None):  # a map click on the previous run
    st.session_state[BEAT_KEY] = wanted
if BEAT_KEY not in st.session_state:
    st.session_state[BEAT_KEY] = beat_ids[0]
beat = right.selectbox("Beat", beat_ids, key=BEAT_KEY)
found = st.session_state.get(MESSAGE_KEY)
if found and found[1] in (None, beat):  # shown while the found beat is the one on screen
    st.info(cd.plain(found[0]))

if meta.get("note"):
    st.warning(cd.plain(meta["note"]))
view = cd.beat_view(root, token, beat)
recent_days = int(meta.get("recent_days", 28))
place = cd.place_text(view, capitalize=False)
st.caption(
    f"Beat {beat} · {place}. "
    f"Published {meta['delay_days']} days after the fact; locations shown only as whole beats."
)

if gap := cd.coverage_note(view):  # days past the end of the data are not "0 incidents"
    st.warning(gap)
covered = view.coverage
recent_whole = covered.covers(covered.recent_start, covered.window_end) == "all"
a, b, c = st.columns(3)
a.metric(
    f"Incidents, last {recent_days} days",
    "no data" if view.total_recent is None else f"{view.total_recent:,}",
    help=None if recent_whole else f"The data end on {covered.last}.",
)
if view.total_previous is None:
    b.metric(f"The {recent_days} days before", "no data")
elif view.total_recent is None or not recent_whole:  # a part is not compared with a whole
    b.metric(f"The {recent_days} days before", f"{view.total_previous:,}")
else:
    b.metric(
        f"The {recent_days} days before",
        f"{view.total_previous:,}",
        delta=view.total_recent - view.total_previous,
        delta_color="inverse",
    )
station = view.station
c.metric("Your station", f"{station.get('name') or 'not listed'}")

map_col, side_col = st.columns([3, 2])
with map_col:
    st.subheader("Map: incidents per beat")
    click = map_clicks.new_click(
        cd.beat_map(root, token, beat, pin=st.session_state.get(PIN_KEY)),
        key=f"community_map_{beat}",
        click_key=CLICK_KEY,
        height=560,
    )
    if click:
        clicked = cd.beat_at(root, token, click["lng"], click["lat"])
        if clicked and clicked != beat:
            st.session_state[WANTED_KEY] = clicked
            st.rerun()
    st.caption(
        f"{cd.area_caption(view)} coloured by incidents in the last {recent_days} "
        "days; your beat has the thick outline. Click a beat to open it."
        + (
            f" The data do not cover the last {recent_days} days, so the map has no counts."
            if view.total_recent is None
            else ""
        )
    )
with side_col:
    st.subheader("Your police station")
    if station:
        st.html(
            f'<div class="card"><b>{esc(station.get("name"))} station</b><br>'
            f"{esc(station.get('address'))}, {esc(station.get('city'))} "
            f"{esc(station.get('zip'))}<br>Phone: "
            f"<b>{esc(station.get('phone')) or 'not listed'}</b></div>"
        )
    else:
        st.write(f"No station listed for this {cd.level_word(meta, 'district')}.")
    st.subheader("Next meetings")
    upcoming = cd.next_meetings(beat, root=root)
    if upcoming is None:
        st.write("The meeting schedule is not available.")
    elif upcoming.empty:
        st.write("No upcoming meetings are scheduled for this beat.")
    else:
        st.table(cd.meetings_display(upcoming).set_index("When"))
        if upcoming["illustrative"].fillna(False).astype(bool).any():
            st.caption(cd.ILLUSTRATIVE_DEMO if meta.get("demo") else cd.ILLUSTRATIVE)
        ics = cd.meetings_ics(beat, root=root)
        if ics:
            st.download_button(
                "Add to my calendar (.ics)",
                ics,
                file_name=f"beat_{beat}_meetings.ics",
                mime="text/calendar",
            )

st.subheader("Incidents by category")
st.table(cd.counts_display(view).set_index("Category"))
st.altair_chart(cd.trend_chart(root, token, beat), width="stretch")

paper_col, pdf_col, html_col = st.columns([1, 2, 2])
paper = paper_col.radio("Paper", ["Letter", "A4"], horizontal=True, key="community_paper")
pdf_col.download_button(
    "Printable one-page handout (PDF)",
    cd.handout_pdf(root, token, beat, upcoming, paper=paper.lower()),
    file_name=f"beat_{beat}_handout.pdf",
    mime="application/pdf",
)
html_col.download_button(
    "Handout as a web page (HTML)",
    cd.handout_html(root, token, beat, upcoming),
    file_name=f"beat_{beat}_handout.html",
    mime="text/html",
)

with st.expander("About this data", expanded=False):
    groups = ", ".join(esc(g) for g in meta["exclusions"]["groups"])
    items = [
        f"<b>Published:</b> {esc(meta['window_start'])} to before "
        f"{esc(meta['window_end_exclusive'])} (as of {esc(meta['as_of'])}): a rolling "
        f"{esc(meta['window_days'])}-day window with a {esc(meta['delay_days'])}-day "
        "posting delay.",
        f"<b>Data available:</b> {esc(cd.coverage_text(view.coverage))}.",
        "<b>Locations:</b> generalised to the block; this app shows whole beats only.",
        f"<b>Never shown:</b> {groups}; any incident flagged sensitive or domestic.",
        f"<b>Incidents published:</b> {int(meta['rows_published']):,} of "
        f"{int(meta['rows_in_window']):,} in the window.",
        f"<b>Generated:</b> {esc(meta['generated_at'])}.",
    ]
    st.html('<ul class="about">' + "".join(f"<li>{i}</li>" for i in items) + "</ul>")
