"""meetings: a virtual link per series, a venue kind, and a new length for moved meetings.

Existing rows survive: the new columns are nullable or have a server default, and existing
venues with a station id are marked ``station``.

Create Date: 2026-12-01 20:45:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "m0002_meetings"
down_revision = "m0001_meetings"


def upgrade() -> None:
    """Add ``meeting_series.virtual_link``, ``meeting_venues.kind``, ``new_duration_min``."""
    with op.batch_alter_table("meeting_series") as batch:
        batch.add_column(sa.Column("virtual_link", sa.String(500), nullable=True))
    with op.batch_alter_table("meeting_venues") as batch:
        batch.add_column(
            sa.Column("kind", sa.String(16), nullable=False, server_default="community")
        )
    with op.batch_alter_table("meeting_exceptions") as batch:
        batch.add_column(sa.Column("new_duration_min", sa.Integer, nullable=True))
    op.execute("UPDATE meeting_venues SET kind = 'station' WHERE station_id IS NOT NULL")


def downgrade() -> None:
    """Drop the three columns."""
    with op.batch_alter_table("meeting_exceptions") as batch:
        batch.drop_column("new_duration_min")
    with op.batch_alter_table("meeting_venues") as batch:
        batch.drop_column("kind")
    with op.batch_alter_table("meeting_series") as batch:
        batch.drop_column("virtual_link")
