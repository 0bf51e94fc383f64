"""Meetings data model: constants, tables (head of the ``meetings`` Alembic branch), errors."""

from __future__ import annotations

from collections.abc import Iterable, Mapping

import numpy as np
import pandas as pd
import sqlalchemy as sa

from geodata import schema
from geodata.errors import InputError

__all__ = [
    "DEFAULT_DURATION_MIN",
    "HORIZON_DAYS",
    "MAX_DURATION_MIN",
    "MAX_PLAIN_DURATION_MIN",
    "MEETING_COLUMNS",
    "ConflictError",
    "MeetingError",
    "VenueConflictError",
    "areas_table",
    "exceptions_table",
    "metadata",
    "series_beats_table",
    "series_table",
    "venues_table",
]

DEFAULT_DURATION_MIN = 60
#: Longest meeting without an explicit ``duration_reason``.
MAX_PLAIN_DURATION_MIN = 60
#: Longest meeting at all (8 hours).
MAX_DURATION_MIN = 480
#: Days ahead that conflict detection and gap checks look at.
HORIZON_DAYS = 730

#: Columns of :func:`upcoming_meetings`, in order.
MEETING_COLUMNS = (
    "series_id",
    "title",
    "start",
    "end",
    "original_start",
    "status",
    "note",
    "venue_id",
    "venue_name",
    "address",
    "phone",
    "lat",
    "lon",
    "station_id",
    "beats",
    "area_kind",
    schema.SECTOR,
    schema.DISTRICT,
    "contact",
    "virtual_link",
    "illustrative",
    "rrule",
    "version",
)

# --- tables (the head of the ``meetings`` migration branch) -----------------------------------
metadata = sa.MetaData()
areas_table = sa.Table(
    "meeting_areas",
    metadata,
    sa.Column("beat", sa.String(16), primary_key=True),
    sa.Column("sector", sa.String(16)),
    sa.Column("district", sa.String(16)),
)
venues_table = sa.Table(
    "meeting_venues",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("station_id", sa.String(16)),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("address", sa.String(300), nullable=False),
    sa.Column("phone", sa.String(40), nullable=False),
    sa.Column("lat", sa.Float, nullable=False),
    sa.Column("lon", sa.Float, nullable=False),
    sa.Column("kind", sa.String(16), nullable=False),
)
series_table = sa.Table(
    "meeting_series",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("title", sa.String(200), nullable=False),
    sa.Column("area_kind", sa.String(10), nullable=False),
    sa.Column("sector", sa.String(16)),
    sa.Column("district", sa.String(16)),
    sa.Column("venue_id", sa.Integer, sa.ForeignKey("meeting_venues.id"), nullable=False),
    sa.Column("dtstart", sa.DateTime(timezone=False), nullable=False),
    sa.Column("tzid", sa.String(64), nullable=False),
    sa.Column("rrule", sa.String(500), nullable=False),
    sa.Column("duration_min", sa.Integer, nullable=False),
    sa.Column("duration_reason", sa.String(500)),
    sa.Column("contact", sa.String(300)),
    sa.Column("notes", sa.Text),
    sa.Column("illustrative", sa.Boolean, nullable=False),
    sa.Column("version", sa.Integer, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("virtual_link", sa.String(500)),
    #: set when the series is archived: hidden from lists and feeds, kept in the history
    sa.Column("archived_at", sa.DateTime(timezone=True)),
)
series_beats_table = sa.Table(
    "meeting_series_beats",
    metadata,
    sa.Column("series_id", sa.Integer, sa.ForeignKey("meeting_series.id"), primary_key=True),
    sa.Column("beat", sa.String(16), sa.ForeignKey("meeting_areas.beat"), primary_key=True),
)
exceptions_table = sa.Table(
    "meeting_exceptions",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("series_id", sa.Integer, sa.ForeignKey("meeting_series.id"), nullable=False),
    sa.Column("original_start", sa.DateTime(timezone=False), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("new_start", sa.DateTime(timezone=False)),
    sa.Column("new_venue_id", sa.Integer, sa.ForeignKey("meeting_venues.id")),
    sa.Column("new_duration_min", sa.Integer),
    sa.Column("note", sa.Text),
)


# --- errors -------------------------------------------------------------------------------
class MeetingError(InputError):
    """A meeting edit is invalid; ``field`` names the first field at fault, ``errors`` all."""

    def __init__(self, errors: Mapping[str, str]) -> None:
        self.errors = dict(errors)
        self.field = next(iter(self.errors), None)
        message = "; ".join(f"{name}: {text}" for name, text in self.errors.items())
        super().__init__(message, column=self.field)


class ConflictError(MeetingError):
    """Someone else saved the series since it was read (stale ``expected_version``)."""

    def __init__(self, series_id: int, expected: int, current: int | None) -> None:
        self.series_id = series_id
        self.expected_version = expected
        self.current_version = current
        if current is None:
            text = f"series {series_id} no longer exists (it was deleted by someone else)"
        else:
            text = (
                f"series {series_id} was changed by someone else since you opened it (you edited "
                f"version {expected}, it is now version {current}); reload it and apply your "
                "change again"
            )
        super().__init__({"version": text})


class VenueConflictError(MeetingError):
    """The meeting overlaps another meeting at the same venue; ``conflicts`` lists them."""

    def __init__(self, conflicts: pd.DataFrame) -> None:
        self.conflicts = conflicts
        first = conflicts.iloc[0]
        text = (
            f"overlaps {len(conflicts)} meeting(s) at the same venue, first "
            f"'{first['title']}' on {first['start']:%Y-%m-%d %H:%M}-{first['end']:%H:%M}"
        )
        super().__init__({"venue": text})


def _none(value: object) -> str | None:
    if value is None or value is pd.NA or (isinstance(value, float) and np.isnan(value)):
        return None
    text = str(value)
    return text or None


def _match_id(value: object, known: Iterable[object]) -> str | None:
    """Return the stored id that a typed `value` names, or None.

    Ids are matched against those stored (which come from the beat layer, in whatever form the
    department's profile gave them): as typed, in any letter case, or, for a number, with or
    without zero-padding (``925`` -> ``0925``, ``k3`` -> ``K3``). No id width is assumed.
    """
    text = _none(value)
    if text is None:
        return None
    text = text.strip()
    ids = {str(k) for k in known if _none(k) is not None}
    if text in ids:
        return text
    by_upper = {k.upper(): k for k in ids}
    if text.upper() in by_upper:
        return by_upper[text.upper()]
    if text.isdigit():
        hits = [k for k in ids if k.isdigit() and int(k) == int(text)]
        if len(hits) == 1:
            return hits[0]
    return None
