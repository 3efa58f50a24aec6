"""payments: payment intents, provider events, refunds, reconciliation

Revision ID: 0007
Revises: 0006
Create Date: 2026-11-22
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "payment_provider_events",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=True),
        sa.Column("outcome", sa.String(length=32), nullable=False),
        sa.Column(
            "payload",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("received_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_provider_events")),
        sa.UniqueConstraint(
            "provider", "event_id", name=op.f("uq_payment_provider_events_provider_event_id")
        ),
    )
    op.create_table(
        "reconciliation_reports",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("day", sa.Date(), nullable=False),
        sa.Column("intents_checked", sa.Integer(), nullable=False),
        sa.Column("refunds_checked", sa.Integer(), nullable=False),
        sa.Column("mismatch_count", sa.Integer(), nullable=False),
        sa.Column(
            "mismatches",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_reconciliation_reports")),
    )
    op.create_index(
        "ix_reconciliation_reports_day", "reconciliation_reports", ["day"], unique=False
    )
    op.create_table(
        "sandbox_intents",
        sa.Column("ref", sa.String(length=100), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column(
            "captured_amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False
        ),
        sa.Column(
            "refunded_amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False
        ),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_sandbox_intents")),
        sa.UniqueConstraint("intent_id", name=op.f("uq_sandbox_intents_intent_id")),
    )
    op.create_table(
        "sandbox_webhooks",
        sa.Column(
            "id",
            sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"),
            autoincrement=True,
            nullable=False,
        ),
        sa.Column("event_id", sa.String(length=100), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("deliver_after", sa.DateTime(timezone=True), nullable=False),
        sa.Column("delivered_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sandbox_webhooks")),
    )
    op.create_index(
        "ix_sandbox_webhooks_delivered_at_deliver_after",
        "sandbox_webhooks",
        ["delivered_at", "deliver_after"],
        unique=False,
    )
    op.create_table(
        "payment_accounts",
        sa.Column("book", sa.String(length=64), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_payment_accounts_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint(
            "book", "currency", "code", "provider", name=op.f("pk_payment_accounts")
        ),
    )
    op.create_table(
        "sandbox_refunds",
        sa.Column("ref", sa.String(length=100), nullable=False),
        sa.Column("refund_id", sa.String(length=40), nullable=False),
        sa.Column("intent_ref", sa.String(length=100), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_ref"],
            ["sandbox_intents.ref"],
            name=op.f("fk_sandbox_refunds_intent_ref_sandbox_intents"),
        ),
        sa.PrimaryKeyConstraint("ref", name=op.f("pk_sandbox_refunds")),
        sa.UniqueConstraint("refund_id", name=op.f("uq_sandbox_refunds_refund_id")),
    )
    op.create_table(
        "payment_intents",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("platform_id", sa.String(length=40), nullable=True),
        sa.Column("client_id", sa.String(length=100), nullable=True),
        sa.Column("amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("payer_user_id", sa.String(length=40), nullable=True),
        sa.Column("payer_email", sa.String(length=320), nullable=True),
        sa.Column("status", sa.String(length=20), nullable=False),
        sa.Column("provider", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=100), nullable=True),
        sa.Column("payment_url", sa.String(length=500), nullable=True),
        sa.Column("destination_account_id", sa.String(length=40), nullable=False),
        sa.Column("clearing_account_id", sa.String(length=40), nullable=False),
        sa.Column("ledger_scope", sa.String(length=64), nullable=False),
        sa.Column(
            "captured_amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False
        ),
        sa.Column(
            "refunded_amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False
        ),
        sa.Column(
            "metadata",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("failure_reason", sa.String(length=500), nullable=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["clearing_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_payment_intents_clearing_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["destination_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_payment_intents_destination_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_payment_intents_platform_id_platforms")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_intents")),
        sa.UniqueConstraint("client_id", name=op.f("uq_payment_intents_client_id")),
        sa.UniqueConstraint(
            "provider", "provider_ref", name=op.f("uq_payment_intents_provider_provider_ref")
        ),
    )
    op.create_index(
        "ix_payment_intents_created_at", "payment_intents", ["created_at"], unique=False
    )
    op.create_index(
        "ix_payment_intents_platform_id_id", "payment_intents", ["platform_id", "id"], unique=False
    )
    op.create_index(
        "ix_payment_intents_status_updated_at",
        "payment_intents",
        ["status", "updated_at"],
        unique=False,
    )
    op.create_table(
        "payment_refunds",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=100), nullable=True),
        sa.Column("amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("provider_ref", sa.String(length=100), nullable=True),
        sa.Column("reason", sa.String(length=500), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["intent_id"],
            ["payment_intents.id"],
            name=op.f("fk_payment_refunds_intent_id_payment_intents"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_payment_refunds")),
        sa.UniqueConstraint(
            "intent_id", "client_id", name=op.f("uq_payment_refunds_intent_id_client_id")
        ),
    )
    op.create_index(
        "ix_payment_refunds_created_at", "payment_refunds", ["created_at"], unique=False
    )
    op.create_index(
        "ix_payment_refunds_intent_id_id", "payment_refunds", ["intent_id", "id"], unique=False
    )
