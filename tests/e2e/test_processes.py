"""`potluck relay` and `potluck worker --service …` as real processes sharing one database."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

from sqlalchemy import func, select

from potluck.bootstrap import bootstrap
from potluck.config import Settings
from potluck.identity.service import create_platform
from potluck.ledger import service as ledger
from potluck.marketplace import service as market
from potluck.marketplace.models import Order
from potluck.migrate import upgrade
from potluck.splits.rules import SplitRule, SplitRules


def _spawn(env: dict[str, str], log: Path, *args: str) -> subprocess.Popen[bytes]:
    return subprocess.Popen(
        [sys.executable, "-m", "potluck.cli", *args],
        env=env,
        stdout=log.open("w"),
        stderr=subprocess.STDOUT,
    )


def test_relay_and_worker_processes_split_orders_and_stop_cleanly(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'potluck.db'}"
    upgrade(url)
    env = os.environ | {"POTLUCK_DATABASE_URL": url, "POTLUCK_LOG_JSON": "true"}
    app = bootstrap(
        Settings(database_url=url, secret_key="e2e-secret-key-that-is-long-enough-0123456789")
    )
    platform, _ = create_platform(app, name="Acme")
    now = app.clock.now()
    with app.db.transaction() as s:
        a, b = (
            market.create_party(
                s, platform_id=platform.id, name=n, kind="merchant", currency="EUR", now=now
            ).id
            for n in ("A", "B")
        )
        market.put_split_rules(
            s,
            platform_id=platform.id,
            currency="EUR",
            split=SplitRules((SplitRule(a, "percent", 7000),), remainder_to=b),
            now=now,
        )
    processes = [
        _spawn(env, tmp_path / "relay.log", "relay"),
        _spawn(
            env,
            tmp_path / "worker.log",
            "worker",
            "--service",
            "splitter",
            "--service",
            "wallets",
            "--service",
            "webhooks",
        ),
    ]
    try:
        for i in range(20):
            with app.db.transaction() as s:
                market.record_order(
                    s,
                    platform_id=platform.id,
                    order_id=f"o-{i}",
                    amount=10_001,
                    currency="EUR",
                    now=app.clock.now(),
                )

        def completed() -> int:
            with app.db.read() as s:
                return int(
                    s.execute(
                        select(func.count()).where(Order.split_status == "completed")
                    ).scalar_one()
                )

        deadline = time.monotonic() + 60
        while completed() < 20:  # waiting for the other processes' work, not for a race
            assert time.monotonic() < deadline, "the worker processes did not split the orders"
            assert all(p.poll() is None for p in processes), "a process died"
            time.sleep(0.05)
    finally:
        for p in processes:
            p.send_signal(signal.SIGTERM)
        codes = [p.wait(timeout=30) for p in processes]
    assert codes == [0, 0], (tmp_path / "worker.log").read_text()
    with app.db.read() as s:
        wallets = {
            p.id: ledger.get_account(s, p.wallet_account_id).total
            for p in market.list_parties(s, platform_id=platform.id, limit=10)[0]
        }
        assert ledger.audit(s).ok
    assert wallets == {a: 20 * 7000, b: 20 * 3001}


def test_worker_refuses_an_unknown_service(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'potluck.db'}"
    upgrade(url)
    env = os.environ | {"POTLUCK_DATABASE_URL": url}
    result = subprocess.run(
        [sys.executable, "-m", "potluck.cli", "worker", "--service", "nope"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert "unknown service nope" in result.stderr
    assert "splitter" in result.stderr
