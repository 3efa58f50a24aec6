"""risk: decisions, reviews, blocklist

Revision ID: 0012
Revises: 0011
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "risk_decisions",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("payer_user_id", sa.String(length=40), nullable=False),
        sa.Column("recipient", sa.String(length=80), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("device_id", sa.String(length=128), nullable=True),
        sa.Column("score", sa.Integer(), nullable=False),
        sa.Column("action", sa.String(length=8), nullable=False),
        sa.Column(
            "reasons",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("outcome", sa.String(length=16), nullable=True),
        sa.Column("outcome_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_decisions")),
    )
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.create_index(
            "ix_risk_decisions_payer_created", ["payer_user_id", "created_at"], unique=False
        )
        batch_op.create_index(
            "ix_risk_decisions_payer_recipient", ["payer_user_id", "recipient"], unique=False
        )
        batch_op.create_index(
            "ix_risk_decisions_recipient_created", ["recipient", "created_at"], unique=False
        )
        batch_op.create_index("ix_risk_decisions_subject_id", ["subject_id"], unique=False)
        batch_op.create_index("ix_risk_decisions_created_at", ["created_at"], unique=False)

    op.create_table(
        "risk_reviews",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("decision_id", sa.String(length=40), nullable=False),
        sa.Column("subject_id", sa.String(length=64), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("reviewer_id", sa.String(length=40), nullable=True),
        sa.Column("note", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("resolved_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["decision_id"],
            ["risk_decisions.id"],
            name=op.f("fk_risk_reviews_decision_id_risk_decisions"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_reviews")),
        sa.UniqueConstraint("decision_id", name=op.f("uq_risk_reviews_decision_id")),
    )
    with op.batch_alter_table("risk_reviews", schema=None) as batch_op:
        batch_op.create_index("ix_risk_reviews_status_id", ["status", "id"], unique=False)

    op.create_table(
        "risk_blocklist",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("kind", sa.String(length=8), nullable=False),
        sa.Column("value", sa.String(length=320), nullable=False),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_risk_blocklist")),
        sa.UniqueConstraint("kind", "value", name="uq_risk_blocklist_kind_value"),
    )


def downgrade() -> None:
    op.drop_table("risk_blocklist")
    with op.batch_alter_table("risk_reviews", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_reviews_status_id")
    op.drop_table("risk_reviews")
    with op.batch_alter_table("risk_decisions", schema=None) as batch_op:
        batch_op.drop_index("ix_risk_decisions_created_at")
        batch_op.drop_index("ix_risk_decisions_subject_id")
        batch_op.drop_index("ix_risk_decisions_recipient_created")
        batch_op.drop_index("ix_risk_decisions_payer_recipient")
        batch_op.drop_index("ix_risk_decisions_payer_created")
    op.drop_table("risk_decisions")
