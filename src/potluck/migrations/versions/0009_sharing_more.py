"""sharing_more: exchange rates, recurring expenses, imports

Revision ID: 0009
Revises: 0008
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
_BIGINT = sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")


def upgrade() -> None:
    # --- currencies: the rates table and the original amount of a converted expense ---
    op.create_table(
        "sharing_fx_rates",
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("base", sa.String(length=3), nullable=False),
        sa.Column("quote", sa.String(length=3), nullable=False),
        sa.Column("rate", sa.String(length=40), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("date", "base", "quote", name=op.f("pk_sharing_fx_rates")),
    )
    with op.batch_alter_table("sharing_fx_rates", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sharing_fx_rates_pair_date", ["base", "quote", "date"], unique=False
        )
    op.add_column("sharing_expenses", sa.Column("original_amount", _BIGINT, nullable=True))
    op.add_column(
        "sharing_expenses", sa.Column("original_currency", sa.String(length=3), nullable=True)
    )
    op.add_column("sharing_expenses", sa.Column("fx_rate", sa.String(length=40), nullable=True))
    op.add_column("sharing_expenses", sa.Column("original_paid_by", _JSON, nullable=True))

    # --- recurring expenses ---
    op.add_column("sharing_expenses", sa.Column("series_id", sa.String(length=40), nullable=True))
    op.add_column("sharing_expenses", sa.Column("repeat", sa.String(length=16), nullable=True))
    with op.batch_alter_table("sharing_expenses", schema=None) as batch_op:
        batch_op.create_index("ix_sharing_expenses_series_id", ["series_id"], unique=False)
    op.create_table(
        "sharing_recurrences",
        sa.Column("expense_id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("repeat", sa.String(length=16), nullable=False),
        sa.Column("anchor_date", sa.Date(), nullable=False),
        sa.Column("generation", _BIGINT, nullable=False),
        sa.Column("seq", _BIGINT, nullable=False),
        sa.Column("next_date", sa.Date(), nullable=False),
        sa.Column("stopped_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["expense_id"],
            ["sharing_expenses.id"],
            name=op.f("fk_sharing_recurrences_expense_id_sharing_expenses"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["sharing_groups.id"],
            name=op.f("fk_sharing_recurrences_group_id_sharing_groups"),
        ),
        sa.PrimaryKeyConstraint("expense_id", name=op.f("pk_sharing_recurrences")),
    )
