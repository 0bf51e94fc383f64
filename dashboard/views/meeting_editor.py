"""Edit meetings: create or change a series, cancel or move one meeting, with messages per field."""

from __future__ import annotations

import calendar
import hashlib
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, TypedDict, TypeVar

import pandas as pd
import streamlit as st
from streamlit.delta_generator import DeltaGenerator

from dashboard import auth, data
from dashboard import meetings_data as md
from geodata import audit, meetings, settings
from geodata.meetings import ConflictError, MeetingError, VenueConflictError

LOADED_KEY = "editor_loaded"  # (series id, version) whose stored values fill the form
STALE_KEY = "editor_stale"  # series id whose save met a newer stored version
SELECTED_KEY = "editor_selected"  # the chosen series (id or NEW), kept when its label changes
DONE_KEY = "editor_done"  # the message of the last successful save, shown after the rerun
NEW = "New series"
FIELD_LABELS = {"rrule": "Repeats", "duration_min": "Minutes", "virtual_link": "Virtual link"}
WEEKS = {1: "1st", 2: "2nd", 3: "3rd", 4: "4th", -1: "last"}
DAYS = dict(zip(meetings.WEEKDAYS, calendar.day_name, strict=True))

db = md.engine(settings.database_url(), str(data.get_store().root))
schedule = md.token(db)
series = md.series_table(db, schedule)
venues = md.venue_table(db, schedule)
venue_ids = venues["id"].astype(int).tolist()
venue_labels = dict(zip(venue_ids, venues["label"], strict=True))

T = TypeVar("T")


class _SeriesFields(TypedDict):
    """The series form's values, as :func:`geodata.meetings.create_series` takes them."""

    title: str
    beats: str | None
    sector: str | None
    venue: int | dict[str, str]
    start: datetime
    rrule: str
    duration_min: int
    duration_reason: str | None
    contact: str | None
    notes: str | None
    virtual_link: str | None
    illustrative: bool


def _stable_selectbox(
    container: DeltaGenerator | None,
    label: str,
    options: Sequence[T],
    labels: Mapping[Any, str],
    *,
    key: str,
    remember: str,
) -> T:
    """Return the choice of a selectbox whose option labels may change between reruns.

    The browser sends back the *label* of the selection; when an edit changes that label (a
    series' new title, a meeting now marked cancelled) Streamlit no longer finds it and falls
    back to the first option ("New series"). The choice is therefore kept under `remember` and
    the widget's key changes with its labels, so the same option stays chosen. `labels` name
    the options (one without a label shows as itself); `container` is where to draw it (None:
    the page).
    """
    chosen = st.session_state.get(remember, options[0])
    index = options.index(chosen) if chosen in options else 0
    digest = hashlib.sha1("\n".join(map(str, labels.values())).encode()).hexdigest()[:10]
    choice = (container or st).selectbox(
        label, options, index=index, format_func=lambda v: labels.get(v, v), key=f"{key}_{digest}"
    )
    st.session_state[remember] = choice
    return choice


def _fill_form(sid: int | str, row: pd.Series | None, *, overwrite: bool) -> None:
    """Put the stored values of series `sid` (`row`; None: a new series) into the form."""
    values = md.form_values(row, meetings.schedule_zone(db))
    if values["venue"] is None:
        values["venue"] = venue_ids[0] if venue_ids else "new"
    for name, value in values.items():
        key = f"ed_{name}_{sid}"
        if overwrite or key not in st.session_state:
            st.session_state[key] = value
    if row is not None and overwrite:
        st.session_state[LOADED_KEY] = (sid, int(row["version"]))


def _audit_edit(series_id: int, before: pd.Series, detail: dict[str, object]) -> None:
    """Audit a saved change of `series_id`: the stored fields that changed, old and new."""
    fresh = md.series_table(db, md.token(db))
    after = fresh[fresh["id"] == series_id].iloc[0]
    changed = audit.changes(before, after, ignore=("version", "updated_at", "label"))
    auth.record(audit.MEETING_EDIT, f"series {series_id}", {"changed": changed, **detail})


def _done(message: str) -> None:
    """Rerun the page after a save, so every label and list shows it, then say what was done."""
    st.session_state[DONE_KEY] = message
    st.rerun()


def _set_archived(series_id: int, before: pd.Series, *, archived: bool) -> None:
    """Archive `series_id` (or put it back on the schedule), audit it and say so."""
    change = meetings.archive_series if archived else meetings.unarchive_series
    version = change(db, series_id, expected_version=loaded_version)
    st.session_state[LOADED_KEY] = (series_id, version)
    _audit_edit(series_id, before, {"archived": archived, "version": version})
    done = "archived" if archived else "is back on the schedule"
    _done(f"Series #{series_id} {done} (version {version}).")


def _reload(series_id: int) -> None:
    """Fill the form with the series as stored now (someone else saved it first)."""
    fresh = md.series_table(db, md.token(db))
    rows = fresh[fresh["id"] == series_id]
    st.session_state.pop(STALE_KEY, None)
    if len(rows):
        _fill_form(series_id, rows.iloc[0], overwrite=True)


st.title("Edit meetings")
st.caption(
    "Every save checks the version you opened: if someone else saved the series in the meantime "
    "nothing is overwritten and you are asked to reload."
)
if DONE_KEY in st.session_state:
    st.success(st.session_state.pop(DONE_KEY))
f1, f2 = st.columns([1, 3])
districts = sorted(series["district"].dropna().unique())
top_level = data.label(
    str(data.get_store().root), data.store_token(data.get_store()), "district", title=True
)
district = f1.selectbox(top_level, ["All", *districts], key="editor_district")
listed = series if district == "All" else series[series["district"] == district]
labels = {
    int(r.id): f"#{r.id} {'[archived] ' if r.archived else ''}{r.title} — {r.schedule}, "
    f"{pd_time:%H:%M}"
    for r in listed.itertuples()
    for pd_time in [r.dtstart]
}
choice = _stable_selectbox(
    f2, "Series", [NEW, *labels], labels, key="editor_series", remember=SELECTED_KEY
)
current = None if choice == NEW else series[series["id"] == choice].iloc[0]
sid = "new" if current is None else int(current["id"])
if current is None:
    st.session_state.pop(LOADED_KEY, None)
    _fill_form(sid, None, overwrite=False)
else:  # opening a series shows its stored values
    _fill_form(sid, current, overwrite=st.session_state.get(LOADED_KEY, (None,))[0] != sid)
loaded_version = st.session_state.get(LOADED_KEY, (None, None))[1]
if current is not None:
    st.caption(
        f"Version {loaded_version} opened (stored: {int(current['version'])})."
        + (" Illustrative series." if bool(current["illustrative"]) else "")
    )

with st.form(f"series_form_{sid}"):
    slots: dict[str, st.delta_generator.DeltaGenerator] = {}
    title = st.text_input("Title", key=f"ed_title_{sid}")
    slots["title"] = st.empty()
    a, b = st.columns(2)
    beats_text = a.text_input("Beats served (comma-separated)", key=f"ed_beats_{sid}")
    slots["beats"] = a.empty()
    sector_text = b.text_input("…or a sector (serves all its beats)", key=f"ed_sector_{sid}")
    slots["sector"] = b.empty()
    venue_choice = st.selectbox(
        "Venue",
        [*venue_ids, "new"],
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
    first_day = t1.date_input("First meeting", key=f"ed_date_{sid}")
    first_time = t2.time_input("Starts at (local time)", key=f"ed_time_{sid}")
    slots["start"] = t1.empty()
    duration = t3.number_input("Minutes", min_value=1, max_value=480, key=f"ed_minutes_{sid}")
    slots["duration_min"] = t3.empty()
    r1, r2, r3 = st.columns(3)
    repeat = r1.selectbox(
        "Repeats",
        [*meetings.REPEATS, md.CUSTOM_RULE],
        format_func=str.capitalize,
        key=f"ed_rep_{sid}",
    )
    week = r2.selectbox(
        "On the",
        [1, 2, 3, 4, -1, None],
        format_func=lambda w: WEEKS.get(w, "same date each time"),
        help="For monthly, every-other-month and quarterly meetings; weekly ones ignore it.",
        key=f"ed_week_{sid}",
    )
    weekday = r3.selectbox(
        "Weekday",
        [*meetings.WEEKDAYS, None],
        format_func=lambda d: DAYS.get(d, "the first meeting's weekday"),
        key=f"ed_weekday_{sid}",
    )
    r4, r5 = st.columns([3, 1])
    skip = r4.multiselect(
        "No meeting in (exceptions)",
        list(range(1, 13)),
        format_func=lambda m: calendar.month_name[m],
        help="Single meetings are cancelled or moved below, after saving.",
        key=f"ed_skip_{sid}",
    )
    until = r5.date_input("Last meeting by (optional)", key=f"ed_until_{sid}")
    rrule = st.text_input(
        "Custom rule (RFC 5545 RRULE; only with Repeats: Custom rule)",
        help="FREQ=MONTHLY;BYDAY=-1TH = last Thursday; FREQ=MONTHLY;BYMONTHDAY=15 = the 15th.",
        key=f"ed_rrule_{sid}",
    )
    slots["rrule"] = st.empty()
    reason = st.text_input("Reason for a meeting over 60 minutes", key=f"ed_reason_{sid}")
    slots["duration_reason"] = st.empty()
    contact = st.text_input("Contact", key=f"ed_contact_{sid}")
    slots["contact"] = st.empty()
    notes = st.text_area("Notes", key=f"ed_notes_{sid}")
    slots["notes"] = st.empty()
    link = st.text_input("Virtual link", key=f"ed_link_{sid}")
    illustrative = st.checkbox(
        "Illustrative (not a published schedule)", key=f"ed_illustrative_{sid}"
    )
    slots["virtual_link"] = st.empty()
    allow = st.checkbox(
        "Save even if the venue is booked at an overlapping time", key=f"ed_allow_{sid}"
    )
    slots["version"] = st.empty()
    submitted = st.form_submit_button("Create series" if current is None else "Save changes")

rule: str | None = None
if submitted:
    try:
        rule = (
            rrule
            if repeat == md.CUSTOM_RULE
            else meetings.build_rule(meetings.RulePick(repeat, weekday, week, tuple(skip), until))
        )
    except MeetingError as err:
        rule = None
        slots["rrule"].error(f"Repeats: {err.errors['rrule']}")
        st.error("Nothing was saved; correct the fields marked above.")
if submitted and rule is not None:
    fields: _SeriesFields = {
        "title": title,
        "beats": beats_text if beats_text.strip() else None,
        "sector": sector_text.strip() or None,
        "venue": new_venue if venue_choice == "new" else int(venue_choice),
        "start": datetime.combine(first_day, first_time),
        "rrule": rule,
        "duration_min": int(duration),
        "duration_reason": reason or None,
        "contact": contact or None,
        "notes": notes or None,
        "virtual_link": link or None,
        "illustrative": illustrative,
    }
    try:
        if current is None:
            new_id = meetings.create_series(
                db, allow_conflicts=allow, tzid=meetings.schedule_zone(db), **fields
            )
            auth.record(audit.MEETING_CREATE, f"series {new_id}", fields)
            st.session_state[SELECTED_KEY] = new_id  # open it after the rerun
            _done(f"Series #{new_id} created.")
        else:
            series_id = int(current["id"])  # `sid`, known to be a stored series' id here
            version = meetings.update_series(
                db, series_id, expected_version=loaded_version, allow_conflicts=allow, **fields
            )
            st.session_state[LOADED_KEY] = (sid, version)
            _audit_edit(series_id, current, {"version": [loaded_version, version]})
            _done(f"Saved: series #{sid} is now version {version}.")
    except VenueConflictError as err:
        slots["venue"].error(f"Venue: {err.errors['venue']}")
        st.dataframe(err.conflicts[["start", "end", "title", "beats"]], hide_index=True)
    except ConflictError as err:
        slots["version"].error(err.errors["version"])
        st.session_state[STALE_KEY] = sid
    except MeetingError as err:
        for name, text in err.errors.items():
            slot = slots.get(name) or (slots["venue_new"] if name.startswith("venue_") else None)
            label = FIELD_LABELS.get(name, name.replace("_", " ").capitalize())
            (slot or st).error(f"{label}: {text}")
        st.error("Nothing was saved; correct the fields marked above.")

if current is not None and st.session_state.get(STALE_KEY) == sid:
    # Outside `if submitted`: the click reruns the page with submitted False.
    st.button("Reload the latest version", on_click=_reload, args=(sid,), type="primary")

archived = current is not None and bool(current["archived"])
if current is not None:
    series_id = int(current["id"])  # `sid`, known to be a stored series' id here
    try:
        if archived:
            st.info(
                f"Archived on {current['archived_at']:%Y-%m-%d}: not in the meeting lists, on "
                "the map or in the calendar feeds; kept here with its history."
            )
            if st.button("Put back on the schedule", key=f"unarchive_{sid}"):
                _set_archived(series_id, current, archived=False)
        else:
            with st.expander("Archive this series"):
                st.write(
                    "Archiving takes the series off the meeting lists, the map and the calendar "
                    "feeds, and frees its venue. Nothing is deleted: it stays here, with its "
                    "cancelled and moved meetings, and can be put back."
                )
                if st.button("Archive series", key=f"archive_{sid}"):
                    _set_archived(series_id, current, archived=True)
    except VenueConflictError as err:
        st.error(f"Venue: {err.errors['venue']}")
        st.dataframe(err.conflicts[["start", "end", "title", "beats"]], hide_index=True)
    except ConflictError as err:
        st.error(err.errors["version"])
        st.session_state[STALE_KEY] = sid
        st.button("Reload the latest version", on_click=_reload, args=(sid,), key="ar_reload")
    except MeetingError as err:
        st.error("; ".join(err.errors.values()))

if current is not None and not archived:
    st.subheader("Cancel or move one meeting")
    occurrences = md.occurrence_choices(db, series_id)
    if occurrences.empty:
        st.info("This series has no meetings in the next twelve months.")
    else:
        pick = int(
            _stable_selectbox(
                None,
                "Meeting",
                list(range(len(occurrences))),
                dict(enumerate(occurrences["label"])),
                key=f"oc_pick_{sid}",
                remember=f"oc_picked_{sid}",
            )
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
                        db, series_id, when, note=note, expected_version=loaded_version
                    )
                elif action == "Move":
                    version = meetings.move_occurrence(
                        db,
                        series_id,
                        when,
                        datetime.combine(new_day, new_time),
                        new_venue=None if new_place == "same" else int(new_place),
                        note=note,
                        expected_version=loaded_version,
                    )
                else:
                    version = meetings.restore_occurrence(
                        db, series_id, when, expected_version=loaded_version
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
                _done(f"{action}: {when:%Y-%m-%d %H:%M} done (version {version}).")
            except ConflictError as err:
                oc_slot.error(err.errors["version"])
                st.session_state[STALE_KEY] = sid
                st.button(
                    "Reload the latest version",
                    on_click=_reload,
                    args=(sid,),
                    type="primary",
                    key="oc_reload",
                )
            except MeetingError as err:
                oc_slot.error(
                    "; ".join(f"{k.replace('_', ' ')}: {v}" for k, v in err.errors.items())
                )
