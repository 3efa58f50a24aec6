"""Merchant settlement: the daily timer sweeps each merchant's available balance into one
payout, keeps a report per merchant and day, and never pays a day twice (timer fired twice,
CLI rerun, concurrent runs). On SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from datetime import date, timedelta

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from typer.testing import CliRunner

from potluck.api.app import create_app
from potluck.bus.models import OutboxEvent
from potluck.bus.outbox import publish
from potluck.cli import app as cli_app
from potluck.clock import utc
from potluck.marketplace import service as marketplace
from potluck.payouts.models import Payout
from potluck.wallets import settlement
from potluck.wallets.settlement_models import MerchantSettlement
from tests.integration.test_payouts_helpers import (
    add_bank_account,
    count,
    fund,
    make_party,
    make_platform,
    request_payout,
    wallet,
)

DAY = date(2026, 1, 1)  # the FakeClock starts at 2026-01-01 00:00 UTC


def reports(potluck, day=DAY):
    with potluck.db.read() as s:
        rows = s.execute(select(MerchantSettlement).where(MerchantSettlement.day == day))
        return {r.party_id: settlement._view(r) for r in rows.scalars()}


def payouts_of(potluck, party):
    with potluck.db.read() as s:
        rows = s.execute(
            select(Payout.id, Payout.amount, Payout.bank_account_id).where(
                Payout.party_id == party.id
            )
        )
        return [tuple(r) for r in rows]


def ticks(potluck):
    with potluck.db.read() as s:
        rows = s.execute(select(OutboxEvent).where(OutboxEvent.type == settlement.TICK))
        return sorted((r.data["date"], utc(r.deliver_after)) for r in rows.scalars())


@pytest.fixture
def merchants(potluck):
    """Acme's merchants on 2026-01-01 at 03:00: ``paid`` (10,000 in, 3,000 held by a pending
    payout, a bank account), ``nobank`` (5,000, no bank account), ``empty`` (a bank account,
    nothing in); a partner (not a merchant) with money."""
    potluck.clock.advance(3 * 3600)
    platform_id, headers = make_platform(potluck)
    paid = make_party(potluck, platform_id, name="Paid")
    fund(potluck, platform_id, paid, 10_000)
    bank = add_bank_account(potluck, platform_id, paid)
    add_bank_account(potluck, platform_id, paid)  # a later one: not the default
    request_payout(potluck, platform_id, paid, bank, 3_000)
    nobank = make_party(potluck, platform_id, name="No bank")
    fund(potluck, platform_id, nobank, 5_000)
    empty = make_party(potluck, platform_id, name="Empty")
    add_bank_account(potluck, platform_id, empty)
    with potluck.db.transaction() as s:
        partner = marketplace.create_party(
            s,
            platform_id=platform_id,
            name="Courier",
            kind="partner",
            currency="EUR",
            now=potluck.clock.now(),
        )
    fund(potluck, platform_id, partner, 700)
    return {
        "platform_id": platform_id,
        "headers": headers,
        "paid": paid,
        "bank": bank,
        "nobank": nobank,
        "empty": empty,
        "partner": partner,
    }


def test_the_daily_timer_sweeps_each_merchant_once_and_reschedules(potluck, merchants):
    paid, nobank, empty = merchants["paid"], merchants["nobank"], merchants["empty"]
    settlement.ensure_scheduled(potluck)
    settlement.ensure_scheduled(potluck)  # a second process starting: still one tick
    first = ticks(potluck)
    assert [(d, when.isoformat()) for d, when in first] == [
        ("2026-01-01", "2026-01-02T02:00:00+00:00")
    ]

    potluck.clock.advance(22 * 3600)  # 2026-01-02 01:00: not due yet
    potluck.bus.drain()
    assert reports(potluck) == {}

    potluck.clock.advance(3600)  # 02:00
    potluck.bus.drain()
    got = reports(potluck)
    assert set(got) == {paid.id, nobank.id, empty.id}  # merchants only
    r = got[paid.id]
    # 3,000 is held by the pending payout: only the 7,000 still available is swept.
    assert (r.status, r.opening_available, r.credits_received, r.amount_swept) == (
        "paid_out",
        7_000,
        10_000,
        7_000,
    )
    assert r.bank_account_id == merchants["bank"].id  # the earliest bank account
    assert (r.payout_id, 7_000, merchants["bank"].id) in payouts_of(potluck, paid)
    assert wallet(potluck, paid)[2] == 0  # available
    assert (got[nobank.id].status, got[nobank.id].amount_swept) == ("no_bank_account", 0)
    assert wallet(potluck, nobank) == (5_000, 0, 5_000)  # nothing moved
    assert got[empty.id].status == "nothing_to_settle"
    assert wallet(potluck, merchants["partner"])[2] == 700
    # the chain goes on: tomorrow's tick (for 2026-01-02) is scheduled
    assert [(d, when.isoformat()) for d, when in ticks(potluck)][-1] == (
        "2026-01-02",
        "2026-01-03T02:00:00+00:00",
    )

    # The same day's timer fired again (a duplicated event) and the CLI rerun: no new payout.
    with potluck.db.transaction() as s:
        publish(s, settlement.TICK, {"date": DAY.isoformat()}, now=potluck.clock.now())
    potluck.bus.drain()
    again = settlement.run(potluck, DAY)
    assert {v.party_id: v.id for v in again} == {p: row.id for p, row in got.items()}
    assert len(payouts_of(potluck, paid)) == 2  # the manual one and the sweep
    assert count(potluck, MerchantSettlement) == 3

    # The next day: new money is swept by the rescheduled tick.
    fund(potluck, merchants["platform_id"], paid, 2_500)
    potluck.clock.advance(24 * 3600)
    potluck.bus.drain()
    next_day = reports(potluck, DAY + timedelta(days=1))[paid.id]
    assert (next_day.status, next_day.amount_swept, next_day.credits_received) == (
        "paid_out",
        2_500,
        2_500,
    )
    assert len(payouts_of(potluck, paid)) == 3
    with potluck.db.read() as s:
        settled = s.execute(select(OutboxEvent).where(OutboxEvent.type == settlement.SETTLED))
        assert sorted(e.data["status"] for e in settled.scalars()) == [
            "no_bank_account",
            "no_bank_account",
            "nothing_to_settle",
            "nothing_to_settle",
            "paid_out",
            "paid_out",
        ]


def test_api_lists_a_partys_reports_and_cli_settles_a_date(potluck, merchants, monkeypatch):
    paid, headers = merchants["paid"], merchants["headers"]
    monkeypatch.setattr("potluck.bootstrap.bootstrap", lambda: potluck)
    monkeypatch.setenv("COLUMNS", "200")  # Rich would shorten the statuses to fit 80
    runner = CliRunner()
    out = runner.invoke(cli_app, ["wallets", "settle", "--date", "2025-12-30"])
    assert out.exit_code == 0, out.output
    assert "paid_out" in out.output
    assert "no_bank_account" in out.output
    again = runner.invoke(cli_app, ["wallets", "settle", "--date", "2025-12-30"])
    assert again.exit_code == 0, again.output
    assert len(payouts_of(potluck, paid)) == 2  # the manual one and one sweep
    fund(potluck, merchants["platform_id"], paid, 100)
    settlement.run(potluck, date(2025, 12, 31))
    bad = runner.invoke(cli_app, ["wallets", "settle", "--date", "31/12/2025"])
    assert bad.exit_code == 2

    with TestClient(create_app(potluck)) as client:
        url = f"/v1/parties/{paid.id}/settlements"
        page = client.get(url, headers=headers, params={"limit": 1})
        assert page.status_code == 200, page.text
        body = page.json()
        assert body["has_more"] is True
        assert [(r["date"], r["amount_swept"], r["status"]) for r in body["data"]] == [
            ("2025-12-31", 100, "paid_out")
        ]
        rest = client.get(
            url, headers=headers, params={"starting_after": body["data"][0]["id"]}
        ).json()
        assert [r["date"] for r in rest["data"]] == ["2025-12-30"]
        assert rest["has_more"] is False
        ranged = client.get(url, headers=headers, params={"from": "2025-12-30", "to": "2025-12-30"})
        assert [r["amount_swept"] for r in ranged.json()["data"]] == [7_000]
        # another platform's key: the party does not exist for it
        _, other = make_platform(potluck, "Other")
        assert client.get(url, headers=other).status_code == 404
        assert client.get(url).status_code == 401


@pytest.mark.postgres_only
def test_concurrent_runs_for_one_day_pay_once(potluck, merchants):
    barrier = threading.Barrier(2)
    results = []

    def run():
        barrier.wait()
        results.append(settlement.run(potluck, DAY))

    threads = [threading.Thread(target=run) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(results) == 2
    assert len(payouts_of(potluck, merchants["paid"])) == 2  # the manual one and one sweep
    assert count(potluck, MerchantSettlement) == 3
    assert {r.status for r in results[0]} == {"paid_out", "no_bank_account", "nothing_to_settle"}
