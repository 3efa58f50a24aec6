"""sharing: groups, members, expenses and their history, comments, settlements, activity

Revision ID: 0006
Revises: 0005
Create Date: 2026-11-21
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "sharing_groups",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("direct_key", sa.String(length=600), nullable=True),
        sa.Column("expenses_account_id", sa.String(length=40), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["expenses_account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_sharing_groups_expenses_account_id_ledger_accounts"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_groups")),
        sa.UniqueConstraint("direct_key", name=op.f("uq_sharing_groups_direct_key")),
        sa.UniqueConstraint(
            "expenses_account_id", name=op.f("uq_sharing_groups_expenses_account_id")
        ),
    )
    op.create_table(
        "sharing_activity",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("type", sa.String(length=32), nullable=False),
        sa.Column("actor_member_id", sa.String(length=40), nullable=True),
        sa.Column("subject_id", sa.String(length=40), nullable=True),
        sa.Column(
            "data",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["sharing_groups.id"],
            name=op.f("fk_sharing_activity_group_id_sharing_groups"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_activity")),
    )
    with op.batch_alter_table("sharing_activity", schema=None) as batch_op:
        batch_op.create_index("ix_sharing_activity_group_id_id", ["group_id", "id"], unique=False)

    op.create_table(
        "sharing_expenses",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column(
            "posted_version", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=True
        ),
        sa.Column("description", sa.String(length=500), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("date", sa.Date(), nullable=False),
        sa.Column("category", sa.String(length=64), nullable=False),
        sa.Column("notes", sa.Text(), nullable=False),
        sa.Column(
            "paid_by",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "split",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column(
            "owed",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("deleted_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["sharing_groups.id"],
            name=op.f("fk_sharing_expenses_group_id_sharing_groups"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_expenses")),
    )
    with op.batch_alter_table("sharing_expenses", schema=None) as batch_op:
        batch_op.create_index("ix_sharing_expenses_group_id_id", ["group_id", "id"], unique=False)

    op.create_table(
        "sharing_members",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("user_id", sa.String(length=40), nullable=True),
        sa.Column("email", sa.String(length=254), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("account_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("removed_at", sa.DateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["account_id"],
            ["ledger_accounts.id"],
            name=op.f("fk_sharing_members_account_id_ledger_accounts"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["sharing_groups.id"],
            name=op.f("fk_sharing_members_group_id_sharing_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_sharing_members_user_id_users")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_members")),
        sa.UniqueConstraint("account_id", name=op.f("uq_sharing_members_account_id")),
        sa.UniqueConstraint("group_id", "email", name="uq_sharing_members_group_email"),
    )
    with op.batch_alter_table("sharing_members", schema=None) as batch_op:
        batch_op.create_index("ix_sharing_members_email", ["email"], unique=False)
        batch_op.create_index("ix_sharing_members_user_id", ["user_id"], unique=False)

    op.create_table(
        "sharing_comments",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("expense_id", sa.String(length=40), nullable=False),
        sa.Column("member_id", sa.String(length=40), nullable=False),
        sa.Column("text", sa.Text(), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["expense_id"],
            ["sharing_expenses.id"],
            name=op.f("fk_sharing_comments_expense_id_sharing_expenses"),
        ),
        sa.ForeignKeyConstraint(
            ["member_id"],
            ["sharing_members.id"],
            name=op.f("fk_sharing_comments_member_id_sharing_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_comments")),
    )
    with op.batch_alter_table("sharing_comments", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sharing_comments_expense_id_id", ["expense_id", "id"], unique=False
        )

    op.create_table(
        "sharing_expense_history",
        sa.Column("expense_id", sa.String(length=40), nullable=False),
        sa.Column("version", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("action", sa.String(length=16), nullable=False),
        sa.Column(
            "snapshot",
            sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql"),
            nullable=False,
        ),
        sa.Column("user_id", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["expense_id"],
            ["sharing_expenses.id"],
            name=op.f("fk_sharing_expense_history_expense_id_sharing_expenses"),
        ),
        sa.PrimaryKeyConstraint("expense_id", "version", name=op.f("pk_sharing_expense_history")),
    )
    op.create_table(
        "sharing_settlements",
        sa.Column("id", sa.String(length=40), nullable=False),
        sa.Column("group_id", sa.String(length=40), nullable=False),
        sa.Column("from_member_id", sa.String(length=40), nullable=False),
        sa.Column("to_member_id", sa.String(length=40), nullable=False),
        sa.Column("amount", sa.BigInteger().with_variant(sa.INTEGER(), "sqlite"), nullable=False),
        sa.Column("currency", sa.String(length=3), nullable=False),
        sa.Column("method", sa.String(length=16), nullable=False),
        sa.Column("created_by", sa.String(length=40), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["from_member_id"],
            ["sharing_members.id"],
            name=op.f("fk_sharing_settlements_from_member_id_sharing_members"),
        ),
        sa.ForeignKeyConstraint(
            ["group_id"],
            ["sharing_groups.id"],
            name=op.f("fk_sharing_settlements_group_id_sharing_groups"),
        ),
        sa.ForeignKeyConstraint(
            ["to_member_id"],
            ["sharing_members.id"],
            name=op.f("fk_sharing_settlements_to_member_id_sharing_members"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_sharing_settlements")),
    )
    with op.batch_alter_table("sharing_settlements", schema=None) as batch_op:
        batch_op.create_index(
            "ix_sharing_settlements_group_id_id", ["group_id", "id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("sharing_settlements", schema=None) as batch_op:
        batch_op.drop_index("ix_sharing_settlements_group_id_id")

    op.drop_table("sharing_settlements")
    op.drop_table("sharing_expense_history")
    with op.batch_alter_table("sharing_comments", schema=None) as batch_op:
        batch_op.drop_index("ix_sharing_comments_expense_id_id")

    op.drop_table("sharing_comments")
    with op.batch_alter_table("sharing_members", schema=None) as batch_op:
        batch_op.drop_index("ix_sharing_members_user_id")
        batch_op.drop_index("ix_sharing_members_email")

    op.drop_table("sharing_members")
    with op.batch_alter_table("sharing_expenses", schema=None) as batch_op:
        batch_op.drop_index("ix_sharing_expenses_group_id_id")

    op.drop_table("sharing_expenses")
    with op.batch_alter_table("sharing_activity", schema=None) as batch_op:
        batch_op.drop_index("ix_sharing_activity_group_id_id")

    op.drop_table("sharing_activity")
    op.drop_table("sharing_groups")
