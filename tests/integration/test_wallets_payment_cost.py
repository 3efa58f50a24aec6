"""What one wallet payment over HTTP costs the database (SQLite and PostgreSQL): the
statements SQLAlchemy sends for ``POST /v1/wallet/transfers`` with an Idempotency-Key (auth,
the key's claim and completion, the payment with its risk scoring, ledger batch and event),
then for the event's handlers (notify's inbox messages, the webhooks fan-out). The budget
keeps the count from silently growing back (docs/benchmarks.md, wallets)."""

from __future__ import annotations

import os

from fastapi.testclient import TestClient
from sqlalchemy import event, select

from potluck.api.app import create_app
from potluck.notify.models import EmailMessage, Notification
from tests.integration.test_wallets_helpers import count, fund, person

# Statements per payment (SQLAlchemy's before_cursor_execute; the ledger's driver-level
# writes are not seen there and did not change). "handlers" is one drain of the bus after the
# payment: relay, both services' deliveries and one round of the pollers. Before the wallets
# performance work: request 14 on both, handlers 30 (SQLite) / 36 (PostgreSQL): the auth's
# users read, the key's read before its insert, risk's read of the payer (wallets reads the
# same row), and notify's four users reads, two email_outbox inserts (SMTP off) and a second
# notifications insert.
MAX_REQUEST = {"sqlite": 11, "postgresql": 11}
MAX_HANDLERS = {"sqlite": 24, "postgresql": 30}


def test_one_wallet_payment_over_http_stays_within_its_statement_budget(potluck, backend):
    ann, ah = person(potluck, "ann")
    bob, _ = person(potluck, "bob")
    fund(potluck, ann, 10_000)
    seen: list[str] = []

    def counted(conn, cursor, statement, parameters, context, executemany):
        seen.append(" ".join(statement.split()))

    with TestClient(create_app(potluck)) as client:
        headers = {**ah, "Idempotency-Key": "warm"}
        body = {"to": bob, "amount": 100, "currency": "EUR"}
        assert client.post("/v1/wallet/transfers", json=body, headers=headers).status_code == 201
        potluck.bus.drain()
        event.listen(potluck.db.engine, "before_cursor_execute", counted)
        try:
            headers = {**ah, "Idempotency-Key": "pay-1"}
            r = client.post("/v1/wallet/transfers", json={**body, "amount": 250}, headers=headers)
            request = list(seen)
            seen.clear()
            potluck.bus.drain()
            handlers = list(seen)
        finally:
            event.remove(potluck.db.engine, "before_cursor_execute", counted)
        assert r.status_code == 201, r.text
        assert r.json()["status"] == "completed"
        again = client.post("/v1/wallet/transfers", json={**body, "amount": 250}, headers=headers)
        assert again.headers.get("Idempotent-Replayed") == "true"
        assert again.json() == r.json()

    if os.environ.get("SHOW_STATEMENTS"):
        print(f"\n{backend} request {len(request)}:\n" + "\n".join(request))
        print(f"{backend} handlers {len(handlers)}:\n" + "\n".join(handlers))
    # the work is all done: both people told, with each other's names
    with potluck.db.read() as s:
        told = s.execute(
            select(Notification.user_id, Notification.title, Notification.body).order_by(
                Notification.created_at, Notification.id
            )
        ).all()
    mine = [t for t in told if "2.50" in t.title]
    assert sorted(t.user_id for t in mine) == sorted([ann, bob]), told
    assert count(potluck, Notification) == 4
    assert count(potluck, EmailMessage) == 0  # SMTP is not configured: no email rows
    assert len(request) <= MAX_REQUEST[backend], "\n".join(request)
    assert len(handlers) <= MAX_HANDLERS[backend], "\n".join(handlers)
