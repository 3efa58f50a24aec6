"""bus_heartbeats: worker and relay heartbeats

Revision ID: 0010
Revises: 0009
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bigint() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")


def upgrade() -> None:
    op.create_table(
        "bus_heartbeats",
        sa.Column("id", sa.String(length=200), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("services", sa.String(length=1000), nullable=False),
        sa.Column("host", sa.String(length=255), nullable=False),
        sa.Column("pid", sa.Integer(), nullable=False),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("last_seen_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("published", _bigint(), nullable=False),
        sa.Column("processed", _bigint(), nullable=False),
        sa.Column("errors", _bigint(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_bus_heartbeats")),
    )
    op.create_index(
        "ix_bus_heartbeats_last_seen_at", "bus_heartbeats", ["last_seen_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_bus_heartbeats_last_seen_at", table_name="bus_heartbeats")
    op.drop_table("bus_heartbeats")
