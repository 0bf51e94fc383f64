"""Meetings: the map of venues over the beats, find my meeting, the list and the .ics files."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

import streamlit as st

from dashboard import auth, data, map_clicks, state
from dashboard import meetings_data as md
from dashboard.maps import plain
from geodata import meetings, settings, users
from geodata.meetings import MeetingError

FIND_KEY = "meetings_find"
CLICK_KEY = "meetings_last_click"
FOUND_KEY = "meetings_found"

store = data.get_store()
root, token = str(store.root), data.store_token(store)
db = md.engine(settings.database_url(), root)
schedule = md.token(db)
zone = meetings.schedule_zone(db)
columns = md.column_config(zone)
today = datetime.now(ZoneInfo(zone)).date()
districts = md.districts(db, schedule)
word = {lv.key: lv.singular for lv in data.department(root, token).levels}


def _lookup(query: str | tuple[float, float]) -> None:
    try:
        st.session_state[FOUND_KEY] = md.find(root, token, db, query)
    except MeetingError as err:
        st.session_state[FOUND_KEY] = str(err.errors.get("address", err))


def _find() -> None:  # runs before the script when the address box changes
    text = st.session_state.get(FIND_KEY, "").strip()
    if text:
        _lookup(text)


st.title("Neighborhood watch meetings")
st.caption(
    f"One schedule for every {word['beat']}. Seeded dates follow the department's meeting "
    f"pattern and are *illustrative* (marked as such) until a {word['district']} publishes its "
    "own."
)
left, mid, right = st.columns([1, 2, 2])
district = left.selectbox(
    word["district"].capitalize(), ["All", *districts], key="meetings_district"
)
period = mid.date_input(
    "Dates", value=(today, today + timedelta(days=60)), key="meetings_period", format="YYYY-MM-DD"
)
right.text_input(
    "Find my meeting: address, block or lat, lon",
    key=FIND_KEY,
    on_change=_find,
    placeholder="e.g. 1234 W Madison St, 047XX S Western Ave, 41.88, -87.63",
)
start, end = (period[0], period[-1]) if isinstance(period, tuple) and period else (today, today)
chosen = None if district == "All" else district

found = st.session_state.get(FOUND_KEY)
if isinstance(found, str):
    st.warning(plain(found))
    found = None
elif found is not None:
    st.session_state[state.BEAT] = found.beat
    above = [(word[lv], getattr(found, lv)) for lv in word if lv != "beat"]
    st.success(
        f"{plain(found.matched)} is in {word['beat']} **{plain(found.beat)}** ("
        + ", ".join(f"{name} {plain(value)}" for name, value in above)
        + ")."
    )
    a, b = st.columns([1, 2])
    if found.station:
        a.markdown(
            f"**Station:** {plain(found.station['name'])}  \n"
            f"{plain(found.station['address'])}  \n"
            f"Phone: {plain(found.station['phone'] or 'not listed')}"
        )
    if found.meetings.empty:
        b.info("No upcoming meetings for this beat.")
    else:
        b.dataframe(
            found.meetings[["start", "end", "status", "title", "venue_name", "address", "note"]],
            hide_index=True,
            width="stretch",
            column_config=columns,
        )
    beat = found.beat
    # label, content, file name, MIME type, widget key
    downloads: tuple[tuple[str, bytes | str, str, str, str], ...] = (
        (
            f"Beat {beat} calendar (.ics)",
            md.calendar(db, schedule, beat=beat),
            f"beat_{beat}.ics",
            "text/calendar",
            "meetings_found_ics",
        ),
        (
            f"Printable flyer for beat {beat}",
            md.flyer(root, token, db, beat),
            f"beat_{beat}_meetings.html",
            "text/html",
            "meetings_found_flyer",
        ),
        (
            f"Flyer for beat {beat} (PDF, one page)",
            md.flyer_pdf(root, token, db, beat),
            f"beat_{beat}_meetings.pdf",
            "application/pdf",
            "meetings_found_flyer_pdf",
        ),
    )
    for column, (label, content, file_name, mime, key) in zip(
        st.columns(len(downloads)), downloads, strict=True
    ):
        auth.download_button(
            label,
            content,
            file_name=file_name,
            mime=mime,
            key=key,
            permission=users.Permission.VIEW_MEETINGS,
            container=column,
        )

occurrences = md.upcoming(db, schedule, start, end, district=chosen)
click = map_clicks.new_click(
    md.meetings_map(
        root,
        token,
        occurrences,
        district=chosen,
        home=(found.lat, found.lon) if found is not None else None,
        home_beat=found.beat if found is not None else None,
    ),
    key=f"meetings_map_{chosen}",
    click_key=CLICK_KEY,
)
if click:
    _lookup((click["lat"], click["lng"]))
    st.rerun()
st.caption(
    "Markers: meeting venues (number = meetings in the period). Click anywhere on the map to "
    "find the meetings of the beat there."
)

st.subheader(f"{len(occurrences):,} meetings, {start} to {end}")
st.dataframe(
    occurrences[
        ["start", "end", "status", "title", "beats", "venue_name", "address", "phone", "note"]
    ],
    hide_index=True,
    width="stretch",
    column_config=columns,
)
label = (
    f"{word['district']} {chosen}"
    if chosen
    else f"all {data.label(root, token, 'district', plural=True)}"
)
auth.download_button(
    f"Calendar for {label} (.ics)",
    md.calendar(db, schedule, district=chosen),
    file_name=f"meetings_{'district_' + chosen if chosen else 'all'}.ics",
    mime="text/calendar",
    key="meetings_area_ics",
    permission=users.Permission.VIEW_MEETINGS,
)
