"""wallets: person wallets, wallet transfers, payment requests

Revision ID: 0011
Revises: 0010
Create Date: 2026-11-22
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _bigint() -> sa.types.TypeEngine[int]:
    return sa.BigInteger().with_variant(sa.INTEGER(), "sqlite")


def _json() -> sa.types.TypeEngine[Any]:
    return sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")


def _at(name: str, nullable: bool = False) -> sa.Column[object]:
    return sa.Column(name, sa.DateTime(timezone=True), nullable=nullable)


def _user_fk(table: str, column: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint([column], ["users.id"], name=op.f(f"fk_{table}_{column}_users"))


def upgrade() -> None:
    op.create_table(
        "wallet_accounts",
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        _at("created_at"),
        _user_fk("wallet_accounts", "user_id"),
        sa.PrimaryKeyConstraint("user_id", "currency", name=op.f("pk_wallet_accounts")),
        sa.UniqueConstraint("account_id", name=op.f("uq_wallet_accounts_account_id")),
    )
    op.create_table(
        "wallet_bridges",
        sa.Column("platform_id", sa.String(length=40), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("code", sa.String(length=32), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.ForeignKeyConstraint(
            ["platform_id"], ["platforms.id"], name=op.f("fk_wallet_bridges_platform_id_platforms")
        ),
        sa.PrimaryKeyConstraint("platform_id", "currency", "code", name=op.f("pk_wallet_bridges")),
        sa.UniqueConstraint("account_id", name=op.f("uq_wallet_bridges_account_id")),
    )
    op.create_table(
        "wallet_transfers",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("client_id", sa.String(length=64), nullable=True),
        sa.Column("payer_user_id", sa.String(length=40), nullable=False),
        sa.Column("to_user_id", sa.String(length=40), nullable=True),
        sa.Column("to_party_id", sa.String(length=40), nullable=True),
        sa.Column("platform_id", sa.String(length=40), nullable=True),
        sa.Column("amount", _bigint(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("note", sa.String(length=280), nullable=True),
        sa.Column("purpose", sa.String(length=32), nullable=False),
        sa.Column("reference", _json(), nullable=True),
        sa.Column("device_id", sa.String(length=64), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("failure_reason", sa.String(length=200), nullable=True),
        sa.Column("risk_decision_id", sa.String(length=40), nullable=True),
        sa.Column("risk_score", sa.Integer(), nullable=True),
        sa.Column("risk_reasons", _json(), nullable=True),
        sa.Column("from_account_id", sa.String(length=40), nullable=False),
        sa.Column("to_account_id", sa.String(length=40), nullable=False),
        sa.Column("reviewer_id", sa.String(length=40), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _user_fk("wallet_transfers", "payer_user_id"),
        _user_fk("wallet_transfers", "to_user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_transfers")),
        sa.UniqueConstraint("payer_user_id", "client_id", name=op.f("uq_wallet_transfers_client")),
    )
    op.create_index(
        "ix_wallet_transfers_payer_id", "wallet_transfers", ["payer_user_id", "id"], unique=False
    )
    op.create_index(
        "ix_wallet_transfers_to_user_id", "wallet_transfers", ["to_user_id", "id"], unique=False
    )
    op.create_table(
        "wallet_top_ups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("intent_id", sa.String(length=40), nullable=False),
        sa.Column("amount", _bigint(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("status", sa.String(length=16), nullable=False),
        _at("created_at"),
        _at("updated_at"),
        _user_fk("wallet_top_ups", "user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_top_ups")),
        sa.UniqueConstraint("intent_id", name=op.f("uq_wallet_top_ups_intent_id")),
    )
    op.create_index("ix_wallet_top_ups_user_id", "wallet_top_ups", ["user_id", "id"], unique=False)
    op.create_table(
        "wallet_requests",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("requester_user_id", sa.String(length=40), nullable=False),
        sa.Column("payer_user_id", sa.String(length=40), nullable=False),
        sa.Column("amount", _bigint(), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("note", sa.String(length=280), nullable=True),
        sa.Column("status", sa.String(length=16), nullable=False),
        sa.Column("transfer_id", sa.String(length=40), nullable=True),
        _at("created_at"),
        _at("updated_at"),
        _user_fk("wallet_requests", "requester_user_id"),
        _user_fk("wallet_requests", "payer_user_id"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_wallet_requests")),
    )
    op.create_index(
        "ix_wallet_requests_requester",
        "wallet_requests",
        ["requester_user_id", "id"],
        unique=False,
    )
    op.create_index(
        "ix_wallet_requests_payer", "wallet_requests", ["payer_user_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_wallet_requests_payer", table_name="wallet_requests")
    op.drop_index("ix_wallet_requests_requester", table_name="wallet_requests")
    op.drop_table("wallet_requests")
    op.drop_index("ix_wallet_top_ups_user_id", table_name="wallet_top_ups")
    op.drop_table("wallet_top_ups")
    op.drop_index("ix_wallet_transfers_to_user_id", table_name="wallet_transfers")
    op.drop_index("ix_wallet_transfers_payer_id", table_name="wallet_transfers")
    op.drop_table("wallet_transfers")
    op.drop_table("wallet_bridges")
    op.drop_table("wallet_accounts")
