"""Editing the schedule: validation, venue conflicts, optimistic locking, exceptions."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, time, timedelta
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import Engine

from geodata.meetings.model import (
    DEFAULT_DURATION_MIN,
    HORIZON_DAYS,
    MAX_DURATION_MIN,
    MAX_PLAIN_DURATION_MIN,
    ConflictError,
    MeetingError,
    VenueConflictError,
    _match_id,
    areas_table,
    exceptions_table,
    series_beats_table,
    series_table,
    venues_table,
)
from geodata.meetings.queries import (
    _frame,
    _occurrences,
    _schedule_zone,
    _series_rows,
)
from geodata.meetings.recurrence import (
    _aware,
    _first_occurrence,
    _is_gap,
    _to_local_naive,
    _zone,
    describe_rule,
    expand_rule,
    meeting_end,
    validate_rrule,
)

__all__ = [
    "MAX_MOVE_DAYS",
    "archive_series",
    "cancel_occurrence",
    "create_series",
    "move_occurrence",
    "restore_occurrence",
    "unarchive_series",
    "update_series",
    "venue_conflicts",
]


@dataclass
class _Draft:
    """A validated series, ready to write."""

    fields: dict[str, Any]
    beats: list[str]
    new_venue: dict[str, Any] | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _check_text(
    errors: dict[str, str], name: str, value: object, *, required: bool, max_len: int
) -> str | None:
    text = None if value is None else str(value).strip()
    if not text:
        if required:
            errors[name] = "is required"
        return None
    if len(text) > max_len:
        errors[name] = f"is {len(text)} characters long; at most {max_len} allowed"
    return text


def _resolve_venue(
    connection: sa.Connection, venue: int | str | Mapping[str, Any] | None, errors: dict[str, str]
) -> tuple[int | None, dict[str, Any] | None]:
    if venue is None:
        errors["venue"] = "is required (a station id, a venue id or a new venue)"
        return None, None
    if isinstance(venue, Mapping):
        new: dict[str, Any] = {}
        name = _check_text(errors, "venue_name", venue.get("name"), required=True, max_len=200)
        address = _check_text(
            errors, "venue_address", venue.get("address"), required=True, max_len=300
        )
        phone = _check_text(errors, "venue_phone", venue.get("phone"), required=False, max_len=40)
        for key, low, high in (("lat", -90, 90), ("lon", -180, 180)):
            try:
                number = float(venue.get(key))  # type: ignore[arg-type]
                if not low <= number <= high:
                    raise ValueError
                new[key] = number
            except (TypeError, ValueError):
                errors[f"venue_{key}"] = f"{venue.get(key)!r} is not a {key} in [{low}, {high}]"
        new.update(name=name, address=address or "", phone=phone or "", kind="community")
        new["station_id"] = None
        return None, new
    if isinstance(venue, (int, np.integer)) and not isinstance(venue, bool):
        found = connection.execute(
            sa.select(venues_table.c.id).where(venues_table.c.id == int(venue))
        ).scalar()
    else:
        stations = connection.execute(
            sa.select(venues_table.c.station_id).where(venues_table.c.station_id.is_not(None))
        ).scalars()
        station_id = _match_id(venue, stations)
        found = connection.execute(
            sa.select(venues_table.c.id).where(venues_table.c.station_id == station_id)
        ).scalar()
    if found is None:
        errors["venue"] = f"{venue!r} is not a known venue or station id"
    return found, None


def _draft(
    connection: sa.Connection,
    *,
    title: object,
    beats: Sequence[str] | str | None,
    sector: str | None,
    venue: int | str | Mapping[str, Any] | None,
    start: datetime | None,
    end: datetime | time | None,
    rrule: str | None,
    duration_min: int | None,
    duration_reason: str | None,
    contact: str | None,
    notes: str | None,
    virtual_link: str | None,
    tzid: str,
    illustrative: bool,
) -> _Draft:
    errors: dict[str, str] = {}
    values: dict[str, Any] = {"tzid": tzid, "illustrative": bool(illustrative)}
    values["title"] = _check_text(errors, "title", title, required=True, max_len=200)
    values["contact"] = _check_text(errors, "contact", contact, required=False, max_len=300)
    values["notes"] = _check_text(errors, "notes", notes, required=False, max_len=5000)
    link = _check_text(errors, "virtual_link", virtual_link, required=False, max_len=500)
    if link and not link.lower().startswith(("https://", "http://")):
        errors["virtual_link"] = f"{link!r} must start with https:// or http://"
    values["virtual_link"] = link
    # area
    if isinstance(beats, str):
        beats = [b for b in beats.replace(";", ",").split(",") if b.strip()]
    known = pd.read_sql(sa.select(areas_table), connection)
    served: list[str] = []
    if sector:
        sector_id = _match_id(sector, known["sector"].dropna().unique())
        members = known[known["sector"] == sector_id]
        if members.empty:
            errors["sector"] = f"{sector!r} is not a known sector"
        else:
            served = sorted(members["beat"])
            values.update(
                area_kind="sector", sector=sector_id, district=str(members["district"].iloc[0])
            )
        if beats:
            errors["beats"] = "give either beats or a sector, not both"
    elif beats:
        matched = {str(b).strip(): _match_id(b, known["beat"]) for b in beats}
        wanted = [m for m in matched.values() if m is not None]
        unknown = [typed for typed, m in matched.items() if m is None]
        if unknown:
            errors["beats"] = f"unknown beat id(s): {', '.join(map(str, unknown))}"
        else:
            served = sorted(set(wanted))
            rows = known.set_index("beat").loc[served]
            sectors, districts = set(rows["sector"]), set(rows["district"])
            values.update(
                area_kind="beat",
                sector=sectors.pop() if len(sectors) == 1 else None,
                district=districts.pop() if len(districts) == 1 else None,
            )
    else:
        errors["beats"] = "give the beat(s) or the sector the meeting serves"
    venue_id, new_venue = _resolve_venue(connection, venue, errors)
    values["venue_id"] = venue_id
    # time
    tz = _zone(tzid)
    local = None
    if start is None:
        errors["start"] = "is required"
    else:
        local = _to_local_naive(start, tz).replace(second=0, microsecond=0)
        if _is_gap(local, tz):
            errors["start"] = (
                f"{local:%Y-%m-%d %H:%M} does not exist in {tzid} (clocks spring forward); "
                "pick another time"
            )
    minutes = duration_min
    if end is not None and local is not None and "start" not in errors:
        end_local = (
            datetime.combine(local.date(), end)
            if isinstance(end, time)
            else _to_local_naive(end, tz)
        )
        if end_local <= local:
            errors["end"] = f"the end {end_local:%H:%M} is not after the start {local:%H:%M}"
        else:
            minutes = round((end_local - local).total_seconds() / 60)
    minutes = DEFAULT_DURATION_MIN if minutes is None else minutes
    try:
        minutes = int(minutes)
    except (TypeError, ValueError):
        errors["duration_min"] = f"{minutes!r} is not a whole number of minutes"
        minutes = DEFAULT_DURATION_MIN
    reason = _check_text(errors, "duration_reason", duration_reason, required=False, max_len=500)
    if not 1 <= minutes <= MAX_DURATION_MIN:
        errors["duration_min"] = f"{minutes} minutes; must be 1 to {MAX_DURATION_MIN}"
    elif minutes > MAX_PLAIN_DURATION_MIN and not reason:
        errors["duration_reason"] = (
            f"a meeting of {minutes} minutes (over {MAX_PLAIN_DURATION_MIN}) needs a reason"
        )
    values["duration_min"], values["duration_reason"] = minutes, reason
    if not rrule or not str(rrule).strip():
        errors["rrule"] = "is required (e.g. FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU)"
    elif local is not None and "start" not in errors:
        try:
            canonical = validate_rrule(str(rrule), local, tzid)
        except MeetingError as err:
            errors.update(err.errors)
        else:
            first = _first_occurrence(canonical, local, tz)
            if first is None:
                errors["rrule"] = f"'{rrule}' has no meeting on or after {local:%Y-%m-%d}"
            else:
                try:
                    upcoming = expand_rule(
                        canonical, first, first, first + timedelta(days=HORIZON_DAYS), tzid=tzid
                    )
                except (ValueError, OverflowError) as err:  # dateutil's own limits
                    errors["rrule"] = f"'{rrule}' cannot be expanded into meetings ({err})"
                    upcoming = []
                gaps = [o for o in upcoming if _is_gap(o.replace(tzinfo=None), tz)]
                if gaps:
                    errors["start"] = (
                        f"the meeting of {gaps[0]:%Y-%m-%d} at {first:%H:%M} falls in the "
                        "spring-forward gap; pick another time"
                    )
                values.update(rrule=canonical, dtstart=first)
    return _Draft(fields=values, beats=served, new_venue=new_venue, errors=errors)


def _bookings(
    connection: sa.Connection,
    venue_id: int,
    lo: datetime,
    hi: datetime,
    exclude_series: int | None,
    tzid: str,
) -> pd.DataFrame:
    """Return the occurrences (not cancelled) at `venue_id` in ``[lo, hi)``, other series only.

    Their ``start`` and ``end`` are in `tzid` (the zone conflicts are reported in).
    """
    series_ids = [
        int(r[0])
        for r in connection.execute(
            sa.select(series_table.c.id).where(series_table.c.venue_id == venue_id)
        )
    ]
    moved_in = [
        int(r[0])
        for r in connection.execute(
            sa.select(exceptions_table.c.series_id).where(
                exceptions_table.c.new_venue_id == venue_id
            )
        )
    ]
    ids = sorted(set(series_ids) | set(moved_in))
    if exclude_series is not None:
        ids = [i for i in ids if i != exclude_series]
    if not ids:
        return _frame([], tzid)
    series = _series_rows(connection, ids)
    exceptions = pd.read_sql(
        sa.select(exceptions_table).where(exceptions_table.c.series_id.in_(ids)), connection
    )
    venues = pd.read_sql(sa.select(venues_table), connection)
    frame = _frame(_occurrences(series, exceptions, venues, lo, hi), tzid)
    return frame[(frame["venue_id"] == venue_id) & (frame["status"] != "cancelled")]


def _overlaps(candidates: list[tuple[datetime, datetime]], bookings: pd.DataFrame) -> pd.DataFrame:
    if bookings.empty or not candidates:
        return bookings.iloc[0:0]
    starts = np.array([c[0].timestamp() for c in candidates])
    ends = np.array([c[1].timestamp() for c in candidates])
    b_start = bookings["start"].map(lambda t: t.timestamp()).to_numpy()
    b_end = bookings["end"].map(lambda t: t.timestamp()).to_numpy()
    order = np.argsort(starts)
    starts, ends = starts[order], ends[order]
    # for each booking, the candidates starting before it ends; overlap if one ends after it starts
    idx = np.searchsorted(starts, b_end, side="left")
    hit = np.zeros(len(bookings), dtype=bool)
    running_max = np.maximum.accumulate(ends)
    hit = (idx > 0) & (running_max[np.maximum(idx - 1, 0)] > b_start)
    return bookings[hit]


def _zone_of(engine: Engine | sa.Connection) -> str:
    if isinstance(engine, sa.Connection):
        return _schedule_zone(engine)
    with engine.connect() as connection:
        return _schedule_zone(connection)


def venue_conflicts(
    engine: Engine | sa.Connection,
    *,
    venue_id: int,
    start: datetime,
    rrule: str | None,
    duration_min: int,
    tzid: str | None = None,
    exclude_series: int | None = None,
    horizon_days: int = HORIZON_DAYS,
) -> pd.DataFrame:
    """Return the meetings at `venue_id` that overlap a planned series (or single meeting).

    Parameters
    ----------
    venue_id
        The venue.
    start
        First occurrence (naive local or aware).
    rrule
        Canonical rule; None for a single meeting.
    duration_min
        Length of each meeting.
    tzid
        IANA zone of `start` (default: the schedule's, :func:`schedule_zone`).
    exclude_series
        The series being edited (its own occurrences do not conflict).
    horizon_days
        How far ahead of the start to look.
    """
    if tzid is None:
        tzid = _zone_of(engine)
    tz = _zone(tzid)
    local = _to_local_naive(start, tz)
    hi = local + timedelta(days=horizon_days)
    occurrences = expand_rule(rrule, local, local, hi, tzid=tzid) if rrule else [_aware(local, tz)]
    candidates = [(o, meeting_end(o, duration_min)) for o in occurrences]
    if isinstance(engine, sa.Connection):
        bookings = _bookings(engine, venue_id, local - timedelta(days=1), hi, exclude_series, tzid)
    else:
        with engine.connect() as connection:
            bookings = _bookings(
                connection, venue_id, local - timedelta(days=1), hi, exclude_series, tzid
            )
    return _overlaps(candidates, bookings).reset_index(drop=True)


def _write_venue(connection: sa.Connection, venue: dict[str, Any]) -> int:
    return connection.execute(
        venues_table.insert().values(**venue).returning(venues_table.c.id)
    ).scalar_one()


def _lock_venue(connection: sa.Connection, venue_id: int) -> None:
    """Hold the write lock on `venue_id` until the transaction ends (before checking bookings).

    Double booking is a race between reading a venue's bookings and writing a new one; this
    serialises every writer of one venue, in the database itself. The statement is a no-op
    ``UPDATE`` of the venue row, which works alike on both databases: PostgreSQL locks the row
    (``FOR NO KEY UPDATE``: foreign-key checks of other rows are not blocked) until commit, and a
    second writer's later reads (READ COMMITTED) see the first writer's meetings; SQLite takes
    its database write lock (the reads before it ran outside a transaction, so no stale snapshot
    is upgraded), and a second writer waits for it (``busy_timeout``). Every write that can add
    a booking to a venue (a new or changed series, a moved meeting) calls this first.
    """
    connection.execute(
        venues_table.update()
        .where(venues_table.c.id == int(venue_id))
        .values(kind=venues_table.c.kind)
    )


def _place_at_venue(
    connection: sa.Connection,
    draft: _Draft,
    values: dict[str, Any],
    *,
    allow_conflicts: bool,
    tzid: str,
    exclude_series: int | None = None,
) -> None:
    """Write the draft's new venue into `values`, or refuse an existing venue's overlaps.

    Raises
    ------
    VenueConflictError
        If the venue is booked at an overlapping time and `allow_conflicts` is false.
    """
    if draft.new_venue is not None:
        values["venue_id"] = _write_venue(connection, draft.new_venue)
        return
    _lock_venue(connection, values["venue_id"])
    if allow_conflicts:
        return
    conflicts = venue_conflicts(
        connection,
        venue_id=values["venue_id"],
        start=values["dtstart"],
        rrule=values["rrule"],
        duration_min=values["duration_min"],
        tzid=tzid,
        exclude_series=exclude_series,
    )
    if len(conflicts):
        raise VenueConflictError(conflicts)


def create_series(
    engine: Engine,
    *,
    title: str,
    venue: int | str | Mapping[str, Any],
    start: datetime,
    rrule: str,
    beats: Sequence[str] | str | None = None,
    sector: str | None = None,
    end: datetime | time | None = None,
    duration_min: int | None = None,
    duration_reason: str | None = None,
    contact: str | None = None,
    notes: str | None = None,
    virtual_link: str | None = None,
    tzid: str | None = None,
    illustrative: bool = False,
    allow_conflicts: bool = False,
) -> int:
    """Validate and save a new meeting series; return its id.

    Parameters
    ----------
    title
        What residents see.
    venue
        A venue id (int), a station id (``"17"``) or a new venue ``{"name", "address", "lat",
        "lon", "phone"}``.
    start
        First meeting, naive local wall time (or aware). Snapped to the first occurrence of
        `rrule` on or after it.
    rrule
        RFC 5545 recurrence rule, e.g. ``FREQ=MONTHLY;INTERVAL=2;BYDAY=2TU``.
    beats, sector
        The beat(s) served, or a sector (which serves all its beats).
    end
        End of the first meeting (datetime or time of day); alternative to `duration_min`.
    duration_min
        Length in minutes (default 60); over 60 needs `duration_reason`.
    tzid
        IANA zone of the wall times (default: the schedule's, :func:`schedule_zone`).
    allow_conflicts
        Save even if the venue is booked at an overlapping time.

    Raises
    ------
    MeetingError
        Invalid fields (all of them, in ``errors``); nothing is saved.
    VenueConflictError
        The venue is booked at an overlapping time (unless `allow_conflicts`).
    """
    with engine.begin() as connection:
        if tzid is None:
            tzid = _schedule_zone(connection)
        draft = _draft(
            connection,
            title=title,
            beats=beats,
            sector=sector,
            venue=venue,
            start=start,
            end=end,
            rrule=rrule,
            duration_min=duration_min,
            duration_reason=duration_reason,
            contact=contact,
            notes=notes,
            virtual_link=virtual_link,
            tzid=tzid,
            illustrative=illustrative,
        )
        if draft.errors:
            raise MeetingError(draft.errors)
        values = draft.fields
        _place_at_venue(connection, draft, values, allow_conflicts=allow_conflicts, tzid=tzid)
        values.update(version=1, updated_at=datetime.now(UTC))
        series_id = connection.execute(
            series_table.insert().values(**values).returning(series_table.c.id)
        ).scalar_one()
        connection.execute(
            series_beats_table.insert(),
            [{"series_id": series_id, "beat": b} for b in draft.beats],
        )
    return int(series_id)


def _current(connection: sa.Connection, series_id: int) -> dict[str, Any] | None:
    row = (
        connection.execute(sa.select(series_table).where(series_table.c.id == series_id))
        .mappings()
        .first()
    )
    return dict(row) if row else None


def _current_at(connection: sa.Connection, series_id: int, expected_version: int) -> dict[str, Any]:
    """Return the series row; raise :class:`ConflictError` unless it is at `expected_version`."""
    current = _current(connection, series_id)
    if current is None or current["version"] != expected_version:
        version = None if current is None else int(current["version"])
        raise ConflictError(series_id, expected_version, version)
    return current


def _bump(
    connection: sa.Connection,
    series_id: int,
    expected_version: int | None,
    values: Mapping[str, Any] | None = None,
) -> int:
    """Apply `values` and increment the version iff it is still `expected_version`."""
    current = _current(connection, series_id)
    if current is None:
        raise ConflictError(series_id, expected_version or 0, None)
    expected = current["version"] if expected_version is None else int(expected_version)
    result = connection.execute(
        series_table.update()
        .where(series_table.c.id == series_id, series_table.c.version == expected)
        .values(**(values or {}), version=expected + 1, updated_at=datetime.now(UTC))
    )
    if result.rowcount != 1:
        now = connection.execute(
            sa.select(series_table.c.version).where(series_table.c.id == series_id)
        ).scalar()
        raise ConflictError(series_id, expected, now)
    return expected + 1


#: a move of one meeting may not go further than this from its original date (the listing
#: looks 366 days either side of its window for moved meetings)
MAX_MOVE_DAYS = 365


def _is_occurrence(rule: str, dtstart: datetime, local: datetime, tzid: str) -> bool:
    """Return True if the naive local time `local` is an occurrence of the schedule."""
    return bool(expand_rule(rule, dtstart, local, local + timedelta(minutes=1), tzid=tzid))


def _rekey_exceptions(
    connection: sa.Connection,
    series_id: int,
    current: Mapping[str, Any],
    dtstart: datetime,
    rule: str,
) -> tuple[dict[int, datetime], list[str]]:
    """Map the exceptions of a series onto its new schedule (`dtstart`, `rule`).

    Exceptions are keyed by the original local start, so a change of the start or the rule
    must carry them over. For each exception that was a meeting of the old schedule the new key
    is the same date at the new time of day if that is a meeting of the new schedule; else, when
    the rule changed or the start's date moved by less than a week (a meeting moved from
    Tuesday to Wednesday), the meeting of the new schedule nearest to the old key shifted like
    the start, less than a week from that date. A key already taken by another exception is not
    used twice. Exceptions that were already orphaned before the edit keep their key
    (:func:`restore_occurrence` removes them).

    Returns ``({exception id: new key}, [description of each exception that cannot be
    mapped])``; nothing is written.
    """
    tzid = current["tzid"]
    old_start = pd.Timestamp(current["dtstart"]).to_pydatetime()
    old_rule = current["rrule"]
    if old_start == dtstart and old_rule == rule:
        return {}, []
    rows = connection.execute(
        sa.select(
            exceptions_table.c.id, exceptions_table.c.original_start, exceptions_table.c.status
        )
        .where(exceptions_table.c.series_id == series_id)
        .order_by(exceptions_table.c.original_start, exceptions_table.c.id)
    ).all()
    shift = dtstart - old_start
    time_shift = datetime.combine(old_start.date(), dtstart.time()) - old_start
    mapping: dict[int, datetime] = {}
    taken: set[datetime] = set()
    pending: list[tuple[int, datetime, str]] = []
    for row in rows:
        key = pd.Timestamp(row.original_start).to_pydatetime()
        if _is_occurrence(old_rule, old_start, key, tzid):
            pending.append((int(row.id), key, str(row.status)))
        else:  # an orphan from before this edit: keeps its key
            taken.add(key)
    week = timedelta(days=7)
    nearby = old_rule != rule or abs(shift) < week
    # first the same date at the new time of day, for all of them; then the nearby meetings
    rest: list[tuple[int, datetime, str]] = []
    for exc_id, key, status in pending:
        same_day = key + time_shift
        if same_day not in taken and _is_occurrence(rule, dtstart, same_day, tzid):
            taken.add(same_day)
            if same_day != key:
                mapping[exc_id] = same_day
        else:
            rest.append((exc_id, key, status))
    lost: list[str] = []
    for exc_id, key, status in rest:
        same_day = key + time_shift
        new_key = None
        if nearby:
            target = key + shift if abs(shift) < week else same_day
            near = [
                h.replace(tzinfo=None)
                for h in expand_rule(rule, dtstart, same_day - week, same_day + week, tzid=tzid)
            ]
            near = [h for h in near if abs(h - same_day) < week and h not in taken]
            new_key = min(near, key=lambda h: (abs(h - target), h), default=None)
        if new_key is None:
            lost.append(f"{key:%Y-%m-%d %H:%M} ({status})")
        else:
            taken.add(new_key)
            mapping[exc_id] = new_key
    return mapping, lost


_EDITABLE = (
    "title",
    "venue",
    "start",
    "end",
    "rrule",
    "beats",
    "sector",
    "duration_min",
    "duration_reason",
    "contact",
    "notes",
    "virtual_link",
    "illustrative",
)


def update_series(
    engine: Engine,
    series_id: int,
    *,
    expected_version: int,
    allow_conflicts: bool = False,
    **changes: object,
) -> int:
    """Save changes to a series unless it changed since `expected_version`; return the version.

    Parameters
    ----------
    series_id
        The series.
    expected_version
        The ``version`` the editor read.
    allow_conflicts
        Save even if the venue is booked at an overlapping time.
    **changes
        Any of ``title``, ``venue``, ``start``, ``end``, ``rrule``, ``beats``, ``sector``,
        ``duration_min``, ``duration_reason``, ``contact``, ``notes``, ``virtual_link``,
        ``illustrative`` (meaning as in :func:`create_series`).

    Raises
    ------
    ConflictError
        The series was changed (or deleted) by someone else; nothing is saved.
    MeetingError
        Invalid fields; nothing is saved. Also (field ``rrule``, or ``start`` if the rule is
        unchanged) when a cancelled or moved meeting would not be a meeting of the new schedule.

    Notes
    -----
    Cancelled and moved meetings follow a change of the start or the rule, in the same
    transaction: each is re-keyed to the same date at the new time of day, or (when the start
    moved by less than a week) to its date shifted like the start, if that is a meeting of the
    new schedule. A moved meeting keeps the date and time it was moved to.
    """
    unknown = sorted(set(changes) - set(_EDITABLE))
    if unknown:
        raise MeetingError({unknown[0]: f"is not an editable field (editable: {_EDITABLE})"})
    with engine.begin() as connection:
        current = _current(connection, series_id)
        if current is None:
            raise ConflictError(series_id, expected_version, None)
        if current["version"] != expected_version:
            raise ConflictError(series_id, expected_version, current["version"])
        beats = (
            connection.execute(
                sa.select(series_beats_table.c.beat).where(
                    series_beats_table.c.series_id == series_id
                )
            )
            .scalars()
            .all()
        )
        merged: dict[str, Any] = {
            "title": current["title"],
            "venue": int(current["venue_id"]),
            "start": pd.Timestamp(current["dtstart"]).to_pydatetime(),
            "end": None,
            "rrule": current["rrule"],
            "beats": None if current["area_kind"] == "sector" else list(beats),
            "sector": current["sector"] if current["area_kind"] == "sector" else None,
            "duration_min": current["duration_min"],
            "duration_reason": current["duration_reason"],
            "contact": current["contact"],
            "notes": current["notes"],
            "virtual_link": current["virtual_link"],
            "illustrative": current["illustrative"],
        }
        if "beats" in changes and "sector" not in changes:
            merged["sector"] = None
        if "sector" in changes and "beats" not in changes:
            merged["beats"] = None
        if "end" in changes and "duration_min" not in changes:
            merged["duration_min"] = None
        merged.update(changes)
        draft = _draft(connection, tzid=current["tzid"], **merged)
        if draft.errors:
            raise MeetingError(draft.errors)
        values = draft.fields
        rekeyed, lost = _rekey_exceptions(
            connection, series_id, current, values["dtstart"], values["rrule"]
        )
        if lost:
            field = "rrule" if values["rrule"] != current["rrule"] else "start"
            raise MeetingError(
                {
                    field: (
                        f"{len(lost)} cancelled or moved meeting(s) would no longer be "
                        f"meetings of the new schedule: {', '.join(lost)}; restore or "
                        "re-apply these exceptions first"
                    )
                }
            )
        _place_at_venue(
            connection,
            draft,
            values,
            allow_conflicts=allow_conflicts,
            tzid=current["tzid"],
            exclude_series=series_id,
        )
        version = _bump(connection, series_id, expected_version, values)
        for exc_id, key in rekeyed.items():
            connection.execute(
                exceptions_table.update()
                .where(exceptions_table.c.id == exc_id)
                .values(original_start=key)
            )
        connection.execute(
            series_beats_table.delete().where(series_beats_table.c.series_id == series_id)
        )
        connection.execute(
            series_beats_table.insert(), [{"series_id": series_id, "beat": b} for b in draft.beats]
        )
    return version


def _check_occurrence(
    connection: sa.Connection, series_id: int, occurrence: datetime
) -> tuple[dict[str, Any], datetime]:
    current = _current(connection, series_id)
    if current is None:
        raise MeetingError({"series": f"series {series_id} does not exist"})
    tz = _zone(current["tzid"])
    local = _to_local_naive(occurrence, tz)
    dtstart = pd.Timestamp(current["dtstart"]).to_pydatetime()
    hits = expand_rule(
        current["rrule"], dtstart, local, local + timedelta(minutes=1), tzid=current["tzid"]
    )
    if not hits:
        text = (
            f"{local:%Y-%m-%d %H:%M} is not a meeting of series {series_id} "
            f"({describe_rule(current['rrule'])} at {dtstart:%H:%M})"
        )
        raise MeetingError({"occurrence": text})
    return current, local


def _set_exception(
    connection: sa.Connection, series_id: int, local: datetime, values: dict[str, Any]
) -> None:
    connection.execute(
        exceptions_table.delete().where(
            exceptions_table.c.series_id == series_id,
            exceptions_table.c.original_start == local,
        )
    )
    if values:
        connection.execute(
            exceptions_table.insert().values(series_id=series_id, original_start=local, **values)
        )


def cancel_occurrence(
    engine: Engine,
    series_id: int,
    occurrence: datetime,
    *,
    note: str = "",
    expected_version: int | None = None,
) -> int:
    """Cancel one meeting of a series (it stays listed as ``cancelled``); return the new version.

    Parameters
    ----------
    occurrence
        The meeting's original start (naive local or aware).
    note
        Why (shown to residents).
    expected_version
        The series version the editor read; None skips the check.
    """
    with engine.begin() as connection:
        _current_row, local = _check_occurrence(connection, series_id, occurrence)
        errors: dict[str, str] = {}
        text = _check_text(errors, "note", note, required=False, max_len=2000)
        if errors:
            raise MeetingError(errors)
        _set_exception(connection, series_id, local, {"status": "cancelled", "note": text})
        return _bump(connection, series_id, expected_version)


def move_occurrence(
    engine: Engine,
    series_id: int,
    occurrence: datetime,
    new_start: datetime,
    *,
    new_venue: int | str | Mapping[str, Any] | None = None,
    new_end: datetime | time | None = None,
    note: str = "",
    expected_version: int | None = None,
    allow_conflicts: bool = False,
) -> int:
    """Move one meeting to a new time (and optionally venue); return the new series version.

    Parameters
    ----------
    occurrence
        The meeting's original start.
    new_start
        New start (naive local or aware); must exist locally.
    new_venue
        New venue (as in :func:`create_series`); None keeps the series venue.
    new_end
        New end; None keeps the series duration.
    note
        Why (shown to residents).
    expected_version
        The series version the editor read; None skips the check.

    Raises
    ------
    MeetingError
        Not an occurrence, a time in the DST gap, end before start, unknown venue.
    VenueConflictError
        The venue is booked then (unless `allow_conflicts`).
    """
    with engine.begin() as connection:
        current, local = _check_occurrence(connection, series_id, occurrence)
        tz = _zone(current["tzid"])
        errors: dict[str, str] = {}
        text = _check_text(errors, "note", note, required=False, max_len=2000)
        target = _to_local_naive(new_start, tz).replace(second=0, microsecond=0)
        if _is_gap(target, tz):
            errors["new_start"] = (
                f"{target:%Y-%m-%d %H:%M} does not exist in {current['tzid']} (clocks spring "
                "forward); pick another time"
            )
        elif abs(target - local) > timedelta(days=MAX_MOVE_DAYS):
            errors["new_start"] = (
                f"{target:%Y-%m-%d %H:%M} is more than {MAX_MOVE_DAYS} days from the meeting "
                f"of {local:%Y-%m-%d %H:%M}; cancel it and add a meeting instead"
            )
        minutes = None
        if new_end is not None:
            end_local = (
                datetime.combine(target.date(), new_end)
                if isinstance(new_end, time)
                else _to_local_naive(new_end, tz)
            )
            if end_local <= target:
                errors["new_end"] = (
                    f"the end {end_local:%Y-%m-%d %H:%M} is not after the start "
                    f"{target:%Y-%m-%d %H:%M}"
                )
            else:
                minutes = round((end_local - target).total_seconds() / 60)
                if minutes > MAX_PLAIN_DURATION_MIN:
                    errors["new_end"] = (
                        f"{minutes} minutes is over {MAX_PLAIN_DURATION_MIN}; change the series "
                        "duration (with a reason) instead"
                    )
        venue_id, new = (
            _resolve_venue(connection, new_venue, errors) if new_venue is not None else (None, None)
        )
        if errors:
            raise MeetingError(errors)
        if new is not None:
            venue_id = _write_venue(connection, new)
        at_venue = venue_id if venue_id is not None else int(current["venue_id"])
        length = minutes or int(current["duration_min"])
        _lock_venue(connection, at_venue)
        if not allow_conflicts and new is None:
            bookings = _bookings(
                connection,
                at_venue,
                target - timedelta(days=1),
                target + timedelta(days=1),
                series_id,
                current["tzid"],
            )
            conflicts = _overlaps(
                [(_aware(target, tz), _aware(target, tz) + timedelta(minutes=length))], bookings
            )
            if len(conflicts):
                raise VenueConflictError(conflicts.reset_index(drop=True))
        _set_exception(
            connection,
            series_id,
            local,
            {
                "status": "moved",
                "new_start": target,
                "new_venue_id": venue_id,
                "new_duration_min": minutes,
                "note": text,
            },
        )
        return _bump(connection, series_id, expected_version)


def restore_occurrence(
    engine: Engine, series_id: int, occurrence: datetime, *, expected_version: int | None = None
) -> int:
    """Undo a cancellation or move of one meeting; return the new series version.

    An existing exception is removed even if its original start is no longer a meeting of the
    series (an orphan left by an older schedule change).
    """
    with engine.begin() as connection:
        current = _current(connection, series_id)
        if current is None:
            raise MeetingError({"series": f"series {series_id} does not exist"})
        local = _to_local_naive(occurrence, _zone(current["tzid"]))
        exists = connection.execute(
            sa.select(sa.func.count()).where(
                exceptions_table.c.series_id == series_id,
                exceptions_table.c.original_start == local,
            )
        ).scalar()
        if not exists:
            _row, local = _check_occurrence(connection, series_id, occurrence)
        _set_exception(connection, series_id, local, {})
        return _bump(connection, series_id, expected_version)


def archive_series(engine: Engine, series_id: int, *, expected_version: int) -> int:
    """Archive a series: off the schedule, lists and feeds, kept in the history; return version.

    Nothing is deleted: the series, its beats and its cancelled or moved meetings stay in the
    database (:func:`~geodata.meetings.list_series` shows it with ``archived``) and
    :func:`unarchive_series` puts it back. Its venue is free again for other meetings.

    Raises
    ------
    ConflictError
        The series was changed (or deleted) by someone else since `expected_version`.
    MeetingError
        It is archived already (field ``series``).
    """
    with engine.begin() as connection:
        current = _current_at(connection, series_id, expected_version)
        if current["archived_at"] is not None:
            raise MeetingError({"series": f"series {series_id} is archived already"})
        return _bump(connection, series_id, expected_version, {"archived_at": datetime.now(UTC)})


def unarchive_series(
    engine: Engine, series_id: int, *, expected_version: int, allow_conflicts: bool = False
) -> int:
    """Put an archived series back on the schedule; return the new version.

    Its meetings book the venue again, so they are checked against the venue's other meetings
    (as a new series is) under the venue's lock.

    Raises
    ------
    ConflictError
        The series was changed (or deleted) by someone else since `expected_version`.
    MeetingError
        It is not archived (field ``series``).
    VenueConflictError
        Its meetings now overlap others at the venue (unless `allow_conflicts`).
    """
    with engine.begin() as connection:
        current = _current_at(connection, series_id, expected_version)
        if current["archived_at"] is None:
            raise MeetingError({"series": f"series {series_id} is not archived"})
        _lock_venue(connection, int(current["venue_id"]))
        if not allow_conflicts:
            conflicts = venue_conflicts(
                connection,
                venue_id=int(current["venue_id"]),
                start=pd.Timestamp(current["dtstart"]).to_pydatetime(),
                rrule=current["rrule"],
                duration_min=int(current["duration_min"]),
                tzid=current["tzid"],
                exclude_series=series_id,
            )
            if len(conflicts):
                raise VenueConflictError(conflicts)
        return _bump(connection, series_id, expected_version, {"archived_at": None})
