"""Admin analytics: movements of several products over several days (FakeClock), figures equal
to sums computed here from the seed, fraud counts, top merchants, and exports read back."""

from __future__ import annotations

import csv
from collections import defaultdict
from datetime import UTC, datetime, time, timedelta

import pyarrow.parquet as pq
import pytest
import typer
from argon2 import PasswordHasher
from fastapi.testclient import TestClient
from typer.testing import CliRunner

from potluck.analytics.cli import analytics_app
from potluck.analytics.export import export
from potluck.api.app import create_app
from potluck.identity import passwords
from potluck.identity.service import promote_user
from potluck.ids import new_id
from potluck.ledger import service as ledger
from potluck.risk.models import RiskDecision
from tests.integration.test_checkout_helpers import person
from tests.integration.test_marketplace_helpers import make_party, pct, platform_headers, put_rules
from tests.integration.test_marketplace_helpers import record as record_order

# (day, code, amount, currency, book, metadata, product it must count as; None: not counted)
SEED = [
    (-1, "wallet_transfer", 111, "EUR", "money", None, None),  # before the range
    (0, "wallet_transfer", 1000, "EUR", "money", None, "wallets"),
    (0, "wallet_transfer", 250, "EUR", "money", None, "wallets"),
    (0, "payment", 2500, "EUR", "money", {"purpose": "group_order"}, "checkout"),
    (0, "payment", 5000, "EUR", "money", {"purpose": "wallet_top_up"}, "payments"),
    (0, "iou_paid", 3000, "EUR", "iou", None, "sharing"),
    (0, "iou_owed", 3000, "EUR", "iou", None, None),
    (1, "wallet_payment", 700, "EUR", "money", {"purpose": "transfer"}, "wallets"),
    (1, "wallet_payment", 700, "EUR", "platform:x", {"purpose": "transfer"}, None),
    (1, "order_payment", 9999, "USD", "money", None, "marketplace"),
    (1, "iou_settlement", 1200, "EUR", "iou", None, "sharing"),
    (2, "payment", 123, "USD", "money", None, "payments"),
    (2, "refund", 50, "EUR", "money", None, "refunds"),
    (2, "mystery", 77, "EUR", "money", None, "other"),
    (3, "wallet_transfer", 999, "EUR", "money", None, None),  # after the range
]
# A payout hold made on day 1 and posted on day 2 counts once, on day 2.
PAYOUT = 400
# A marketplace order recorded on day 1 through the API: 10000 EUR, 10 % to the courier.
ORDER = 10_000


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def client(potluck):
    with TestClient(create_app(potluck)) as c:
        yield c


def seed(potluck, client):
    clock = potluck.clock
    day0 = clock.now().date() + timedelta(days=1)

    def noon(day):
        return datetime.combine(day0 + timedelta(days=day), time(12), tzinfo=UTC)

    accounts: dict[tuple[str, str], tuple[str, str]] = {}

    def pair(book, currency):
        if (book, currency) not in accounts:
            with potluck.db.transaction() as s:
                a, b = (
                    ledger.create_account(
                        s, currency=currency, code="test", book=book, now=clock.now()
                    ).id
                    for _ in range(2)
                )
            accounts[(book, currency)] = (a, b)
        return accounts[(book, currency)]

    platform_id, headers = platform_headers(potluck, "Eats")
    merchant = make_party(client, headers, "Pizzeria")
    courier = make_party(client, headers, "Courier", kind="partner")
    put_rules(client, headers, [pct(courier, 1000)], remainder_to=merchant)

    for day in range(-1, 4):
        moves = [m for m in SEED if m[0] == day]
        now = noon(day)
        for i, (_, code, amount, currency, book, meta, _p) in enumerate(moves):
            debit, credit = pair(book, currency)
            with potluck.db.transaction() as s:
                ledger.create_transfer(
                    s,
                    ledger.NewTransfer(
                        debit, credit, amount, client_id=f"seed-{day}-{i}", code=code,
                        metadata=meta,
                    ),
                    now=now,
                )  # fmt: skip
        if day == 1:
            debit, credit = pair("money", "EUR")
            with potluck.db.transaction() as s:
                ledger.create_transfer(
                    s,
                    ledger.NewTransfer(debit, credit, PAYOUT, client_id="po", code="payout",
                                       pending=True),
                    now=now,
                )  # fmt: skip
            clock.advance((now - clock.now()).total_seconds())
            assert record_order(client, headers, "o-1", ORDER).status_code == 201
            potluck.bus.drain()
        if day == 2:
            with potluck.db.transaction() as s:
                ledger.create_transfer(
                    s, ledger.PostPending(pending_client_id="po", client_id="po-post"), now=now
                )
    with potluck.db.transaction() as s:
        for i, (day, action) in enumerate(
            [(0, "allow"), (0, "allow"), (1, "review"), (2, "block"), (3, "block")]
        ):
            s.add(
                RiskDecision(
                    id=new_id("rsk"), subject_id=f"wtr_{i}", payer_user_id="usr_x",
                    recipient="user:usr_y", amount=100, currency="EUR", device_id=None,
                    score=90 if action != "allow" else 5, action=action, reasons=[],
                    created_at=noon(day),
                )
            )  # fmt: skip
    return day0, merchant, platform_id


def expected(day0):
    """Daily (date, product, currency) -> [count, volume], from the seed alone."""
    out: dict[tuple[str, str, str], list[int]] = defaultdict(lambda: [0, 0])
    for day, _code, amount, currency, _book, _meta, product in SEED:
        if product is not None and 0 <= day <= 2:
            slot = out[((day0 + timedelta(days=day)).isoformat(), product, currency)]
            slot[0] += 1
            slot[1] += amount
    out[((day0 + timedelta(days=2)).isoformat(), "payouts", "EUR")] = [1, PAYOUT]
    out[((day0 + timedelta(days=1)).isoformat(), "marketplace", "EUR")] = [1, ORDER]
    return {k: v for k, v in out.items()}


def test_figures_equal_the_seeded_sums_and_exports_read_back(
    potluck, client, tmp_path, monkeypatch
):
    day0, merchant, platform_id = seed(potluck, client)
    _, admin_h = person(potluck, "root")
    promote_user(potluck, email="root@example.com")
    start, end = day0.isoformat(), (day0 + timedelta(days=2)).isoformat()

    r = client.get("/v1/admin/analytics", params={"from": start, "to": end}, headers=admin_h)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["from"], body["to"]) == (start, end)
    got = {(d["date"], d["product"], d["currency"]): [d["count"], d["volume"]]
           for d in body["daily"]}  # fmt: skip
    assert got == expected(day0)
    totals = {(t["product"], t["currency"]): t["volume"] for t in body["totals"]}
    assert totals[("wallets", "EUR")] == 1000 + 250 + 700
    assert totals[("sharing", "EUR")] == 3000 + 1200
    assert body["fraud"] == {
        "scored": 4, "flagged": 2, "blocked": 1, "in_review": 1, "flagged_rate": 0.5,
    }  # fmt: skip
    assert body["top_merchants"] == [
        {"party_id": merchant, "name": "Pizzeria", "platform_id": platform_id,
         "currency": "EUR", "count": 1, "volume": ORDER * 9 // 10},
    ]  # fmt: skip

    # Exports: the daily rows equal the API's, in CSV and Parquet; transfers-level rows add up.
    api_rows = sorted((d["date"], d["product"], d["currency"], d["count"], d["volume"])
                      for d in body["daily"])  # fmt: skip
    first, last = day0, day0 + timedelta(days=2)
    n = export(potluck, start=first, end=last, fmt="csv", out=tmp_path / "d.csv", chunk=3)
    with (tmp_path / "d.csv").open() as f:
        csv_rows = sorted((r["date"], r["product"], r["currency"], int(r["count"]),
                           int(r["volume"])) for r in csv.DictReader(f))  # fmt: skip
    assert csv_rows == api_rows
    assert n == len(api_rows)
    export(potluck, start=first, end=last, fmt="parquet", out=tmp_path / "d.parquet", chunk=3)
    table = pq.read_table(tmp_path / "d.parquet").to_pylist()
    assert sorted(tuple(r.values()) for r in table) == api_rows
    export(potluck, start=first, end=last, fmt="parquet", out=tmp_path / "t.parquet",
           level="transfers", chunk=4)  # fmt: skip
    transfers = pq.read_table(tmp_path / "t.parquet").to_pylist()
    by_product: dict[tuple[str, str], int] = defaultdict(int)
    for t in transfers:
        by_product[(t["product"], t["currency"])] += t["amount"]
    for (product, currency), volume in totals.items():
        assert by_product[(product, currency)] == volume

    # The command (in-process, on this test's app: a process start costs seconds).
    monkeypatch.setattr("potluck.bootstrap.bootstrap", lambda: potluck)
    out = tmp_path / "cli.csv"
    cli = typer.Typer()
    cli.add_typer(analytics_app, name="analytics")
    done = CliRunner().invoke(
        cli,
        ["analytics", "export", "--from", start, "--to", end, "--format", "csv", "--out", str(out)],
    )
    assert done.exit_code == 0, done.output
    assert out.read_text() == (tmp_path / "d.csv").read_text()
    bad = CliRunner().invoke(cli, ["analytics", "export", "--from", end, "--to", start,
                                             "--out", str(out)])  # fmt: skip
    assert bad.exit_code == 2


def test_admins_only_range_checked_and_real_wallet_payments_count_once(potluck, client):
    ada, user_h = person(potluck, "ada")
    _, admin_h = person(potluck, "root")
    promote_user(potluck, email="root@example.com")
    params = {"from": "2026-01-01", "to": "2026-01-31"}
    r = client.get("/v1/admin/analytics", params=params, headers=user_h)
    assert r.status_code == 403
    assert r.json()["code"] == "admin_required"
    assert client.get("/v1/admin/analytics", params=params).status_code == 401
    r = client.get("/v1/admin/analytics", params=params, headers=admin_h)
    assert r.status_code == 200
    assert r.json()["daily"] == []
    assert r.json()["fraud"]["flagged_rate"] == 0.0
    for bad in (
        {"from": "2026-02-01", "to": "2026-01-01"},
        {"from": "2020-01-01", "to": "2026-01-01"},
        {"from": "2026-1-1", "to": "2026-01-02"},
        {"to": "2026-01-02"},
    ):
        r = client.get("/v1/admin/analytics", params=bad, headers=admin_h)
        assert r.status_code == 422, (bad, r.text)

    # Through the wallets product itself: a payment to a person is one transfer, one to a
    # merchant two legs (money book, platform book), counted once.
    from potluck.wallets import service as wallets
    from tests.integration.test_wallets_helpers import fund

    person(potluck, "bob")
    _, headers = platform_headers(potluck, "Eats")
    merchant = make_party(client, headers, "Pizzeria")
    fund(potluck, ada, 10_000)
    with potluck.db.transaction() as s:
        for i, to in enumerate(("bob@example.com", merchant)):
            wallets.send(s, potluck, payer_user_id=ada, to=to, amount=1000 + i,
                         currency="EUR", client_id=f"t{i}", now=potluck.clock.now())  # fmt: skip
    today = potluck.clock.now().date().isoformat()
    r = client.get("/v1/admin/analytics", params={"from": today, "to": today}, headers=admin_h)
    daily = {d["product"]: (d["count"], d["volume"]) for d in r.json()["daily"]}
    assert daily["wallets"] == (2, 1000 + 1001)
    (top,) = r.json()["top_merchants"]
    assert (top["party_id"], top["volume"]) == (merchant, 1001)
