"""meetings: areas, venues, meeting series, beats served and occurrence exceptions.

Create Date: 2026-12-01 20:40:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "m0001_meetings"
down_revision = None
branch_labels = ("meetings",)


def upgrade() -> None:
    """Create the meeting tables."""
    op.create_table(
        "meeting_areas",
        sa.Column("beat", sa.String(16), primary_key=True),
        sa.Column("sector", sa.String(16), nullable=True, index=True),
        sa.Column("district", sa.String(16), nullable=True, index=True),
    )
    op.create_table(
        "meeting_venues",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("station_id", sa.String(16), nullable=True, unique=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("address", sa.String(300), nullable=False, server_default=""),
        sa.Column("phone", sa.String(40), nullable=False, server_default=""),
        sa.Column("lat", sa.Float, nullable=False),
        sa.Column("lon", sa.Float, nullable=False),
    )
    op.create_table(
        "meeting_series",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("title", sa.String(200), nullable=False),
        sa.Column("area_kind", sa.String(10), nullable=False),
        sa.Column("sector", sa.String(16), nullable=True, index=True),
        sa.Column("district", sa.String(16), nullable=True, index=True),
        sa.Column(
            "venue_id", sa.Integer, sa.ForeignKey("meeting_venues.id"), nullable=False, index=True
        ),
        sa.Column("dtstart", sa.DateTime(timezone=False), nullable=False),
        sa.Column("tzid", sa.String(64), nullable=False),
        sa.Column("rrule", sa.String(500), nullable=False),
        sa.Column("duration_min", sa.Integer, nullable=False, server_default="60"),
        sa.Column("duration_reason", sa.String(500), nullable=True),
        sa.Column("contact", sa.String(300), nullable=True),
        sa.Column("notes", sa.Text, nullable=True),
        sa.Column("illustrative", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("version", sa.Integer, nullable=False, server_default="1"),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "meeting_series_beats",
        sa.Column(
            "series_id",
            sa.Integer,
            sa.ForeignKey("meeting_series.id", ondelete="CASCADE"),
            primary_key=True,
        ),
        sa.Column(
            "beat", sa.String(16), sa.ForeignKey("meeting_areas.beat"), primary_key=True, index=True
        ),
    )
    op.create_table(
        "meeting_exceptions",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column(
            "series_id",
            sa.Integer,
            sa.ForeignKey("meeting_series.id", ondelete="CASCADE"),
            nullable=False,
            index=True,
        ),
        sa.Column("original_start", sa.DateTime(timezone=False), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("new_start", sa.DateTime(timezone=False), nullable=True),
        sa.Column("new_venue_id", sa.Integer, sa.ForeignKey("meeting_venues.id"), nullable=True),
        sa.Column("note", sa.Text, nullable=True),
        sa.UniqueConstraint("series_id", "original_start", name="uq_exception_occurrence"),
    )


def downgrade() -> None:
    """Drop the meeting tables."""
    for table in (
        "meeting_exceptions",
        "meeting_series_beats",
        "meeting_series",
        "meeting_venues",
        "meeting_areas",
    ):
        op.drop_table(table)
