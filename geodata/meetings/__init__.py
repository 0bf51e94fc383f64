"""Neighborhood watch meetings: the one authoritative schedule, in a SQL database.

A *series* is a recurring meeting: the beat(s) or sector it serves, a venue (a police station or a
named community venue with address and location), a start (local wall time), an RFC 5545 RRULE,
a duration (60 minutes by default; longer needs a reason), contact, notes and an optional virtual
link. *Exceptions* cancel or move single occurrences. Times are stored as local wall time plus a
time zone name, so a series at 18:30 stays at 18:30 across daylight-saving changes; a start that
does not exist locally (in the spring-forward gap) is rejected.

Writes are transactional and use optimistic locking: every series has a ``version``; an edit names
the version it was based on and fails with :class:`ConflictError` when someone else saved first.
Invalid input raises :class:`MeetingError` naming the field at fault, and nothing is saved.

The seed schedule (:func:`seed_schedule`) is *illustrative*: it follows the department profile's
``[meetings]`` table (Chicago's follows its CAPS beat meetings: every beat about every two months,
evenings, at the district station, some sectors monthly) but is not a published schedule, and
every seeded series says so.

The package is split by responsibility; import from here (``from geodata import meetings``):

========================  ===========================================================
:mod:`.model`             constants, tables (head of the ``meetings`` migration branch), errors
:mod:`.recurrence`        local wall times and RFC 5545 rules
:mod:`.seeding`           open/migrate the database, reference data, the illustrative seed
:mod:`.queries`           areas, venues, series, occurrences, find my meeting
:mod:`.editing`           create/update a series, cancel/move/restore one meeting, conflicts
:mod:`.ical`              iCalendar files and feeds
========================  ===========================================================
"""

from __future__ import annotations

from geodata.meetings.editing import (
    MAX_MOVE_DAYS,
    archive_series,
    cancel_occurrence,
    create_series,
    move_occurrence,
    restore_occurrence,
    unarchive_series,
    update_series,
    venue_conflicts,
)
from geodata.meetings.ical import calendar_ics, write_feeds
from geodata.meetings.model import (
    DEFAULT_DURATION_MIN,
    HORIZON_DAYS,
    MAX_DURATION_MIN,
    MAX_PLAIN_DURATION_MIN,
    MEETING_COLUMNS,
    ConflictError,
    MeetingError,
    VenueConflictError,
    areas_table,
    exceptions_table,
    metadata,
    series_beats_table,
    series_table,
    venues_table,
)
from geodata.meetings.queries import (
    MeetingLookup,
    find_my_meeting,
    list_areas,
    list_series,
    list_venues,
    next_meetings,
    schedule_token,
    schedule_zone,
    upcoming_meetings,
)
from geodata.meetings.recurrence import (
    REPEATS,
    WEEKDAYS,
    RulePick,
    build_rule,
    describe_rule,
    expand_rule,
    pick_from_rule,
    validate_rrule,
)
from geodata.meetings.seeding import (
    CADENCES,
    MeetingDefaults,
    defaults_for,
    load_reference_data,
    open_database,
    open_for_store,
    seed_schedule,
    sync_areas,
)

__all__ = [
    "CADENCES",
    "DEFAULT_DURATION_MIN",
    "HORIZON_DAYS",
    "MAX_DURATION_MIN",
    "MAX_MOVE_DAYS",
    "MAX_PLAIN_DURATION_MIN",
    "MEETING_COLUMNS",
    "REPEATS",
    "WEEKDAYS",
    "ConflictError",
    "MeetingDefaults",
    "MeetingError",
    "MeetingLookup",
    "RulePick",
    "VenueConflictError",
    "archive_series",
    "areas_table",
    "build_rule",
    "calendar_ics",
    "cancel_occurrence",
    "create_series",
    "defaults_for",
    "describe_rule",
    "exceptions_table",
    "expand_rule",
    "find_my_meeting",
    "list_areas",
    "list_series",
    "list_venues",
    "load_reference_data",
    "metadata",
    "move_occurrence",
    "next_meetings",
    "open_database",
    "open_for_store",
    "pick_from_rule",
    "restore_occurrence",
    "schedule_token",
    "schedule_zone",
    "seed_schedule",
    "series_beats_table",
    "series_table",
    "sync_areas",
    "unarchive_series",
    "upcoming_meetings",
    "update_series",
    "validate_rrule",
    "venue_conflicts",
    "venues_table",
    "write_feeds",
]
