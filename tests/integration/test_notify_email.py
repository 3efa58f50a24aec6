"""Notification emails through a local SMTP server (aiosmtpd on a free port of 127.0.0.1):
what arrives, a refusing server retried later, and never a second copy."""

from __future__ import annotations

import socket
from dataclasses import dataclass, field
from email import message_from_bytes
from email.message import Message
from email.policy import default as default_policy
from typing import Any

import pytest
from aiosmtpd.controller import Controller
from argon2 import PasswordHasher
from sqlalchemy import select

from potluck.bus.outbox import publish
from potluck.identity import passwords
from potluck.notify import email
from potluck.notify.inbox import unread_count
from potluck.notify.models import EmailMessage
from tests.integration.test_checkout_helpers import person


@dataclass
class Mailbox:
    """An aiosmtpd handler: keeps what it accepts; refuses the next ``refuse`` messages."""

    refuse: int = 0
    received: list[Message] = field(default_factory=list)
    refused: int = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:  # noqa: N802
        if self.refuse > 0:
            self.refuse -= 1
            self.refused += 1
            return "451 4.3.0 try again later"
        self.received.append(message_from_bytes(envelope.content, policy=default_policy))
        return "250 OK"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(autouse=True)
def cheap_passwords(monkeypatch):
    monkeypatch.setattr(
        passwords, "_hasher", PasswordHasher(time_cost=1, memory_cost=1024, parallelism=1)
    )


@pytest.fixture
def mailbox():
    box = Mailbox()
    controller = Controller(box, hostname="127.0.0.1", port=free_port())
    controller.start()
    yield box, controller.port
    controller.stop()


@pytest.fixture
def app(potluck, mailbox):
    _, port = mailbox
    potluck.settings = potluck.settings.model_copy(
        update={
            "smtp_host": "127.0.0.1",
            "smtp_port": port,
            "smtp_starttls": False,
            "email_from": "Potluck <no-reply@potluck.test>",
            "email_backoff_base_seconds": 60.0,
        }
    )
    return potluck


def top_up(app, user_id, amount):
    with app.db.transaction() as s:
        publish(
            s,
            "wallet.topped_up",
            {"top_up_id": "wtu_1", "user_id": user_id, "intent_id": "pi_1",
             "amount": amount, "currency": "EUR"},
            now=app.clock.now(),
        )  # fmt: skip
    app.bus.drain()


def rows(app):
    with app.db.read() as s:
        found = s.execute(select(EmailMessage)).scalars().all()
        s.expunge_all()  # readable after the read transaction ends
        return found


def test_an_email_arrives_once_and_a_refusing_server_is_retried_later(app, mailbox):
    box, _ = mailbox
    ada, _ = person(app, "ada")
    top_up(app, ada, 2550)
    (msg,) = box.received
    assert msg["To"] == "ada@example.com"
    assert msg["From"] == "Potluck <no-reply@potluck.test>"
    assert msg["Subject"] == "€25.50 added to your wallet"
    assert "Your top-up of €25.50 was credited to your wallet." in msg.get_content()
    (row,) = rows(app)
    assert (row.status, row.attempts) == ("sent", 1)
    assert email.send_due(app) == 0  # another round sends nothing again

    box.refuse = 2
    top_up(app, ada, 700)
    (row,) = [r for r in rows(app) if r.status != "sent"]
    assert (row.status, row.attempts, len(box.received)) == ("pending", 1, 1)
    assert "451" in row.last_error
    assert email.send_due(app) == 0  # not due before its backoff
    app.clock.advance(60)
    assert email.send_due(app) == 1  # refused again: the backoff doubles
    app.clock.advance(60)
    assert email.send_due(app) == 0
    app.clock.advance(60)
    assert email.send_due(app) == 1
    row = next(r for r in rows(app) if r.id == row.id)
    assert (row.status, row.attempts, box.refused) == ("sent", 3, 2)
    assert [m["Subject"] for m in box.received] == [
        "€25.50 added to your wallet",
        "€7.00 added to your wallet",
    ]
    app.clock.advance(3600)
    assert email.send_due(app) == 0
    assert len(box.received) == 2


def test_a_server_that_is_down_only_marks_the_email_and_a_lease_is_kept(app, mailbox):
    box, _ = mailbox
    app.settings = app.settings.model_copy(update={"smtp_port": free_port()})  # nobody there
    ada, _ = person(app, "ada")
    top_up(app, ada, 100)
    (row,) = rows(app)
    assert (row.status, row.attempts) == ("pending", 1)
    assert row.last_error  # connection refused
    # The product's side committed regardless: the inbox message is there.
    with app.db.read() as s:
        assert unread_count(s, user_id=ada) == 1
    # Past the retry window the email is given up.
    app.settings = app.settings.model_copy(update={"email_retry_window_seconds": 120})
    app.clock.advance(120)
    email.send_due(app)
    assert rows(app)[0].status == "failed"

    # Leases: a claimed row is nobody else's until its lease ends.
    with app.db.transaction() as s:
        email.enqueue(s, notification_id="ntf_x", to="ada@example.com", subject="Hi",
                      body="Hello", now=app.clock.now())  # fmt: skip
    (first,) = email.claim_due(app)
    assert email.claim_due(app) == []  # a second sender gets nothing
    app.clock.advance(email.LEASE_SECONDS)
    (second,) = email.claim_due(app)  # the first sender died: the lease ran out
    assert email.record(app, second, None) == "sent"
    assert email.record(app, first, "late") == "sent"  # the stale lease changes nothing
    assert next(r for r in rows(app) if r.id == second.id).attempts == 1
    assert box.received == []
