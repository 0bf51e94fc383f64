"""meetings: archived series (hidden from the schedule, kept in the history).

Existing rows survive: the new column is nullable and every existing series stays active.

Create Date: 2026-12-06 07:00:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "m0003_meetings"
down_revision = "m0002_meetings"


def upgrade() -> None:
    """Add ``meeting_series.archived_at`` (NULL: the series is on the schedule)."""
    with op.batch_alter_table("meeting_series") as batch:
        batch.add_column(sa.Column("archived_at", sa.DateTime(timezone=True), nullable=True))


def downgrade() -> None:
    """Drop ``meeting_series.archived_at``."""
    with op.batch_alter_table("meeting_series") as batch:
        batch.drop_column("archived_at")
