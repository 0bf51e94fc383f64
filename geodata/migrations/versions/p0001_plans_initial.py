"""plans: saved beat plans (name, parameters, author, created, geometry, unit assignments).

Create Date: 2026-12-01 21:05:00
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "p0001_plans"
down_revision = None
branch_labels = ("plans",)


def upgrade() -> None:
    """Create the beat plan table."""
    op.create_table(
        "beat_plans",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("author", sa.String(200), nullable=False, server_default=""),
        sa.Column("created", sa.DateTime(timezone=True), nullable=False),
        sa.Column("district", sa.String(16), nullable=True, index=True),
        sa.Column("parameters", sa.JSON, nullable=False),
        sa.Column("measures", sa.JSON, nullable=False),
        sa.Column("crs", sa.String(64), nullable=False),
        sa.Column("geometry", sa.Text, nullable=False),
        sa.Column("assignments", sa.JSON, nullable=True),
    )


def downgrade() -> None:
    """Drop the beat plan table."""
    op.drop_table("beat_plans")
