"""The `potluck` command line, run as a user runs it (a real process), on both backends."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest
from sqlalchemy import text

from potluck.ledger import service as ledger


def potluck_cli(database_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = os.environ | {"POTLUCK_DATABASE_URL": database_url, "POTLUCK_LOG_JSON": "false"}
    return subprocess.run(
        [sys.executable, "-m", "potluck.cli", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_db_upgrade_is_repeatable(database_url, db):
    result = potluck_cli(database_url, "db", "upgrade")
    assert result.returncode == 0, result.stderr
    assert "head" in result.stdout


def test_platforms_create_prints_the_key_once(database_url, db):
    result = potluck_cli(database_url, "platforms", "create", "Acme Deliveries")
    assert result.returncode == 0, result.stderr
    key_line = next(line for line in result.stdout.splitlines() if "secret_key" in line)
    secret = key_line.split()[-1]
    assert secret.startswith("sk_")
    with db.read() as s:
        stored = s.execute(text("SELECT key_hash FROM platforms")).scalars().all()
    assert len(stored) == 1
    assert secret not in stored[0]


def test_demo_loads_once_and_audit_passes(database_url, db):
    first = potluck_cli(database_url, "demo")
    assert first.returncode == 0, first.stderr
    assert "sk_" in first.stdout
    # The marketplace part: orders split, a payout paid, wallets shown.
    assert "split completed" in first.stdout
    assert "40.00 EUR to Trattoria Roma: completed" in first.stdout
    assert "Trattoria Roma 14.32 EUR" in first.stdout
    # The people part: friends, a sharing group, a wallet that paid Ana.
    assert "Lisbon trip" in first.stdout
    assert "Demo Person -€63.50, Ana -€137.00, Ben €200.50" in first.stdout
    assert "demo@potluck.test: €87.50" in first.stdout
    second = potluck_cli(database_url, "demo")
    assert second.returncode == 0, second.stderr
    assert "already exists" in second.stdout
    assert "Trattoria Roma 14.32 EUR" in second.stdout
    assert "demo@potluck.test: €87.50" in second.stdout
    with db.read() as s:
        assert s.execute(text("SELECT count(*) FROM platforms")).scalar_one() == 1
        assert s.execute(text("SELECT count(*) FROM users")).scalar_one() == 3
        assert s.execute(text("SELECT count(*) FROM sharing_groups")).scalar_one() == 1
        assert s.execute(text("SELECT count(*) FROM wallet_transfers")).scalar_one() == 1
        assert s.execute(text("SELECT count(*) FROM parties")).scalar_one() == 3
        assert s.execute(text("SELECT count(*) FROM payouts")).scalar_one() == 1
    audit = potluck_cli(database_url, "ledger", "audit")
    assert audit.returncode == 0, audit.stderr
    assert "audit passed" in audit.stdout


@pytest.mark.corrupts_ledger
def test_audit_fails_with_a_report_when_books_do_not_balance(database_url, db, clock):
    with db.transaction() as s:
        a = ledger.create_account(s, currency="EUR", code="a", now=clock.now())
        b = ledger.create_account(s, currency="EUR", code="b", now=clock.now())
        ledger.create_transfer(s, ledger.NewTransfer(a.id, b.id, 500), now=clock.now())
    with db.transaction() as s:
        s.execute(
            text("UPDATE ledger_accounts SET credits_posted = 400 WHERE id = :id"), {"id": b.id}
        )
    result = potluck_cli(database_url, "ledger", "audit")
    assert result.returncode == 1
    report = result.stderr + result.stdout
    assert "audit FAILED" in report
    assert b.id in report
    assert "credits posted" in report or "credits_posted" in report


def test_a_refusal_is_a_message_and_exit_code_not_a_traceback(database_url, db):
    result = potluck_cli(database_url, "users", "promote", "nobody@example.com")
    assert result.returncode == 1
    assert "no user with email nobody@example.com" in result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    empty = potluck_cli(database_url, "platforms", "create", "")
    assert empty.returncode == 1
    assert "Traceback" not in empty.stderr + empty.stdout


def test_demo_marketplace_is_split_paid_out_and_loaded_once(potluck):
    """In process: the demo's orders are split by the bus and its payout completed before
    ``load_demo`` returns; loading again adds nothing."""
    from sqlalchemy import func, select

    from potluck.demo import load_demo
    from potluck.marketplace import service as marketplace
    from potluck.marketplace.models import Order, Party
    from potluck.payouts.models import Payout

    first = load_demo(potluck)
    second = load_demo(potluck)
    assert "already exists" in second["platform"]
    assert second["wallets"] == first["wallets"]
    with potluck.db.read() as s:
        parties = {p.name: p for p in s.execute(select(Party)).scalars()}
        assert {p.kind for p in parties.values()} == {"merchant", "partner", "platform"}
        orders = s.execute(select(Order).order_by(Order.id)).scalars().all()
        assert [(o.order_id, o.amount, o.split_status) for o in orders] == [
            ("demo-order-1", 2590, "completed"),
            ("demo-order-2", 4200, "completed"),
        ]
        [payout] = s.execute(select(Payout)).scalars().all()
        assert (payout.amount, payout.status) == (4000, "completed")
        assert s.scalar(select(func.count()).select_from(Party)) == 3

        def total(name: str) -> tuple[int, int]:
            view = marketplace.get_party(s, parties[name].id, platform_id=parties[name].platform_id)
            wallet = marketplace.wallet_balance(s, view)
            return wallet.total, wallet.held

        # 80 % + 3.00 per order to the restaurant / courier, the rest to the platform;
        # the restaurant paid 40.00 out.
        assert total("Trattoria Roma") == (2072 + 3360 - 4000, 0)
        assert total("Speedy Couriers") == (600, 0)
        assert total("Demo Marketplace") == (218 + 540, 0)
