"""Edit meetings: create or change a series, cancel or move one meeting, with messages per field."""

from __future__ import annotations

from datetime import date, datetime, time

import streamlit as st

from dashboard import auth
from dashboard import meetings_data as md
from geodata import audit, meetings, settings
from geodata.meetings import ConflictError, MeetingError, VenueConflictError

LOADED_KEY = "editor_loaded"  # (series id, version read when the form was opened)
STALE_KEY = "editor_stale"  # series id whose save met a newer stored version
NEW = "New series"

db = md.engine(settings.database_url())
schedule = md.token(db)
series = md.series_table(db, schedule)
venues = md.venue_table(db, schedule)

st.title("Edit meetings")
st.caption(
    "Every save checks the version you opened: if someone else saved the series in the meantime "
    "nothing is overwritten and you are asked to reload."
)
f1, f2 = st.columns([1, 3])
districts = sorted(series["district"].dropna().unique())
district = f1.selectbox("District", ["All", *districts], key="editor_district")
listed = series if district == "All" else series[series["district"] == district]
labels = {
    int(r.id): f"#{r.id} {r.title} — {r.schedule}, {pd_time:%H:%M}"
    for r in listed.itertuples()
    for pd_time in [r.dtstart]
}
choice = f2.selectbox(
    "Series", [NEW, *labels], format_func=lambda v: labels.get(v, v), key="editor_series"
)
current = None if choice == NEW else series[series["id"] == choice].iloc[0]
sid = "new" if current is None else int(current["id"])
if current is not None and (st.session_state.get(LOADED_KEY) or (None,))[0] != sid:
    st.session_state[LOADED_KEY] = (sid, int(current["version"]))
loaded_version = st.session_state.get(LOADED_KEY, (None, None))[1]
if current is not None:
    st.caption(
        f"Version {loaded_version} opened (stored: {int(current['version'])})."
        + (" Illustrative series." if bool(current["illustrative"]) else "")
    )


def _reload(series_id: int) -> None:
    """Forget the opened version and the typed values of `series_id`: the form shows the DB."""
    st.session_state.pop(LOADED_KEY, None)
    st.session_state.pop(STALE_KEY, None)
    for key in [k for k in st.session_state if str(k).startswith("ed_")]:
        if str(key).endswith(f"_{series_id}"):
            del st.session_state[key]


def _value(column: str, default: object = "") -> object:
    if current is None:
        return default
    value = current[column]
    return default if value is None or value != value else value  # NaN -> default


venue_ids = venues["id"].astype(int).tolist()
venue_labels = dict(zip(venue_ids, venues["label"], strict=True))
with st.form(f"series_form_{sid}"):
    slots: dict[str, st.delta_generator.DeltaGenerator] = {}
    title = st.text_input("Title", value=str(_value("title")), key=f"ed_title_{sid}")
    slots["title"] = st.empty()
    a, b = st.columns(2)
    is_sector = _value("area_kind", "beat") == "sector"
    beats_text = a.text_input(
        "Beats served (comma-separated)",
        value="" if is_sector else str(_value("beats")),
        key=f"ed_beats_{sid}",
    )
    slots["beats"] = a.empty()
    sector_text = b.text_input(
        "…or a sector (serves all its beats)",
        value=str(_value("sector")) if is_sector else "",
        key=f"ed_sector_{sid}",
    )
    slots["sector"] = b.empty()
    options = [*venue_ids, "new"]
    venue_choice = st.selectbox(
        "Venue",
        options,
        index=options.index(int(current["venue_id"])) if current is not None else 0,
        format_func=lambda v: "New venue…" if v == "new" else venue_labels[v],
        key=f"ed_venue_{sid}",
    )
    slots["venue"] = st.empty()
    v1, v2, v3, v4, v5 = st.columns([2, 3, 1, 1, 1])
    new_venue = {
        "name": v1.text_input("New venue name", key=f"ed_vname_{sid}"),
        "address": v2.text_input("New venue address", key=f"ed_vaddr_{sid}"),
        "lat": v3.text_input("Lat", key=f"ed_vlat_{sid}"),
        "lon": v4.text_input("Lon", key=f"ed_vlon_{sid}"),
        "phone": v5.text_input("Phone", key=f"ed_vphone_{sid}"),
    }
    slots["venue_new"] = st.empty()
    t1, t2, t3 = st.columns(3)
    start_value = _value("dtstart", None)
    first_day = t1.date_input(
        "First meeting",
        value=start_value.date() if start_value is not None else date.today(),
        key=f"ed_date_{sid}",
    )
    first_time = t2.time_input(
        "Starts at (local time)",
        value=start_value.time() if start_value is not None else time(18, 30),
        key=f"ed_time_{sid}",
    )
    slots["start"] = t1.empty()
    duration = t3.number_input(
        "Minutes",
        min_value=1,
        max_value=480,
        value=int(_value("duration_min", 60)),
        key=f"ed_minutes_{sid}",
    )
    slots["duration_min"] = t3.empty()
    rrule = st.text_input(
        "Repeats (RFC 5545 RRULE)",
        value=str(_value("rrule", "FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU")),
        help="FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU = 2nd Tuesday of every other month; "
        "FREQ=MONTHLY;INTERVAL=3;BYDAY=1WE = quarterly; FREQ=MONTHLY;BYDAY=-1TH = last Thursday.",
        key=f"ed_rrule_{sid}",
    )
    slots["rrule"] = st.empty()
    reason = st.text_input(
        "Reason for a meeting over 60 minutes",
        value=str(_value("duration_reason")),
        key=f"ed_reason_{sid}",
    )
    slots["duration_reason"] = st.empty()
    contact = st.text_input("Contact", value=str(_value("contact")), key=f"ed_contact_{sid}")
    slots["contact"] = st.empty()
    notes = st.text_area("Notes", value=str(_value("notes")), key=f"ed_notes_{sid}")
    slots["notes"] = st.empty()
    link = st.text_input("Virtual link", value=str(_value("virtual_link")), key=f"ed_link_{sid}")
    illustrative = st.checkbox(
        "Illustrative (not a published schedule)",
        value=bool(_value("illustrative", False)),
        key=f"ed_illustrative_{sid}",
    )
    slots["virtual_link"] = st.empty()
    allow = st.checkbox(
        "Save even if the venue is booked at an overlapping time", key=f"ed_allow_{sid}"
    )
    slots["version"] = st.empty()
    submitted = st.form_submit_button("Create series" if current is None else "Save changes")

if submitted:
    fields = {
        "title": title,
        "beats": beats_text if beats_text.strip() else None,
        "sector": sector_text.strip() or None,
        "venue": new_venue if venue_choice == "new" else int(venue_choice),
        "start": datetime.combine(first_day, first_time),
        "rrule": rrule,
        "duration_min": int(duration),
        "duration_reason": reason or None,
        "contact": contact or None,
        "notes": notes or None,
        "virtual_link": link or None,
        "illustrative": illustrative,
    }
    try:
        if current is None:
            new_id = meetings.create_series(db, allow_conflicts=allow, **fields)
            auth.record(audit.MEETING_CREATE, f"series {new_id}", fields)
            st.success(f"Series #{new_id} created.")
        else:
            version = meetings.update_series(
                db, sid, expected_version=loaded_version, allow_conflicts=allow, **fields
            )
            st.session_state[LOADED_KEY] = (sid, version)
            before = {
                k: _value({"venue": "venue_id", "start": "dtstart"}.get(k, k), None) for k in fields
            }
            before["beats" if is_sector else "sector"] = None  # as the form showed them
            changed = {k: [before[k], v] for k, v in fields.items() if str(before[k]) != str(v)}
            auth.record(
                audit.MEETING_EDIT,
                f"series {sid}",
                {"version": [loaded_version, version], "changed": changed},
            )
            st.success(f"Saved: series #{sid} is now version {version}.")
    except VenueConflictError as err:
        slots["venue"].error(f"Venue: {err.errors['venue']}")
        st.dataframe(err.conflicts[["start", "end", "title", "beats"]], hide_index=True)
    except ConflictError as err:
        slots["version"].error(err.errors["version"])
        st.session_state[STALE_KEY] = sid
    except MeetingError as err:
        for name, text in err.errors.items():
            slot = slots.get(name) or (slots["venue_new"] if name.startswith("venue_") else None)
            (slot or st).error(f"{name.replace('_', ' ').capitalize()}: {text}")
        st.error("Nothing was saved; correct the fields marked above.")

if current is not None and st.session_state.get(STALE_KEY) == sid:
    # Outside `if submitted`: the click reruns the page with submitted False.
    st.button("Reload the latest version", on_click=_reload, args=(sid,), type="primary")

if current is not None:
    st.subheader("Cancel or move one meeting")
    occurrences = md.occurrence_choices(db, sid)
    if occurrences.empty:
        st.info("This series has no meetings in the next twelve months.")
    else:
        pick = st.selectbox(
            "Meeting",
            range(len(occurrences)),
            format_func=lambda i: occurrences["label"].iloc[i],
            key=f"oc_pick_{sid}",
        )
        with st.form(f"occurrence_form_{sid}"):
            action = st.radio(
                "Action", ["Cancel", "Move", "Restore"], horizontal=True, key=f"oc_action_{sid}"
            )
            o1, o2, o3 = st.columns(3)
            original = occurrences["start"].iloc[pick]  # the current time (moved or not)
            new_day = o1.date_input("New date", value=original.date(), key=f"oc_date_{sid}_{pick}")
            new_time = o2.time_input("New time", value=original.time(), key=f"oc_time_{sid}_{pick}")
            new_place = o3.selectbox(
                "New venue",
                ["same", *venue_ids],
                format_func=lambda v: "Same venue" if v == "same" else venue_labels[v],
                key=f"oc_venue_{sid}",
            )
            note = st.text_input("Note for residents", key=f"oc_note_{sid}")
            oc_slot = st.empty()
            applied = st.form_submit_button("Apply")
        if applied:
            when = occurrences["original_start"].iloc[pick].to_pydatetime()
            try:
                if action == "Cancel":
                    version = meetings.cancel_occurrence(
                        db, sid, when, note=note, expected_version=loaded_version
                    )
                elif action == "Move":
                    version = meetings.move_occurrence(
                        db,
                        sid,
                        when,
                        datetime.combine(new_day, new_time),
                        new_venue=None if new_place == "same" else int(new_place),
                        note=note,
                        expected_version=loaded_version,
                    )
                else:
                    version = meetings.restore_occurrence(
                        db, sid, when, expected_version=loaded_version
                    )
                st.session_state[LOADED_KEY] = (sid, version)
                auth.record(
                    {"Cancel": audit.MEETING_CANCEL, "Move": audit.MEETING_MOVE}.get(
                        action, audit.MEETING_RESTORE
                    ),
                    f"series {sid}",
                    {
                        "meeting": when.isoformat(),
                        "moved_to": datetime.combine(new_day, new_time).isoformat()
                        if action == "Move"
                        else None,
                        "venue": None if new_place == "same" else int(new_place),
                        "note": note,
                        "version": version,
                    },
                )
                st.success(f"{action}: {when:%Y-%m-%d %H:%M} done (version {version}).")
            except MeetingError as err:
                oc_slot.error(
                    "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in err.errors.items())
                )
