"""The sandbox: a built-in simulated payment provider (the default; works offline).

It behaves like a real provider from the outside. It keeps its own records (``sandbox_*``
tables, shared by every process like a real provider's), shows a hosted payment page
(``/sandbox/pay/{intent_id}``, routes in ``payments/sandbox_pages.py``) where a person pays or
declines, and tells us what happened with SIGNED webhooks (``Sandbox-Signature: t=<unix>,
v1=<hex HMAC-SHA256 of "t.body">``) that go through exactly the code path of
``POST /v1/webhooks/sandbox``: a queue of pending webhooks (``sandbox_webhooks``) delivered
by a poller of the ``payments`` service, or at once by ``deliver_due`` (the hosted page's POST
and ``sandbox_control`` do that).

Scripting (tests, demos; ``potluck.payments.sandbox_control``): an outcome (succeeded or
failed), a delay on the clock, a duplicate of every webhook, or out-of-order delivery
(``succeeded`` before ``processing``).
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any, cast

import structlog
from sqlalchemy import select
from sqlalchemy.orm import Session

from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.notify.signing import sign, verify_signature
from potluck.payments.models import SandboxIntent, SandboxRefund, SandboxWebhook
from potluck.payments.providers import current_session
from potluck.payments.providers.base import (
    IntentStatus,
    ProviderEvent,
    ProviderIntent,
    ProviderRefund,
    WebhookSignatureError,
)

if TYPE_CHECKING:
    from potluck.bootstrap import Potluck
    from potluck.clock import Clock
    from potluck.config import Settings
    from potluck.db import Database

log = structlog.get_logger()

NAME = "sandbox"
HEADER = "Sandbox-Signature"
TOLERANCE_SECONDS = 300
REF_PREFIX = "sbx_"
_SECRET_CONTEXT = b"potluck sandbox webhooks v1"
_OPEN = (IntentStatus.REQUIRES_PAYMENT.value, IntentStatus.PROCESSING.value)


@dataclass(frozen=True, slots=True)
class Script:
    """How the sandbox reports one payment: its ``outcome``, ``delay_seconds`` before the
    webhooks are due, every webhook twice (``duplicate``), ``succeeded``/``failed`` before
    ``processing`` (``out_of_order``)."""

    outcome: str = "succeeded"  # succeeded | failed
    delay_seconds: float = 0.0
    duplicate: bool = False
    out_of_order: bool = False
    failure_reason: str = "card_declined"


@dataclass
class _KeyOwner:
    """What ``identity.service.signing_key`` reads (the generated key lives in the database)."""

    settings: Settings
    db: Database
    clock: Clock


def ref_for(intent_id: str) -> str:
    return REF_PREFIX + intent_id.partition("_")[2] if "_" in intent_id else REF_PREFIX + intent_id


class SandboxProvider:
    name = NAME

    def __init__(self, settings: Settings, db: Database, clock: Clock) -> None:
        self.settings = settings
        self.db = db
        self.clock = clock
        self._secret: str | None = None

    # ------------------------------------------------------------ the secret

    def secret(self) -> str:
        """``sandbox_webhook_secret``, or an HMAC of the installation's secret key (every
        process of one installation derives the same)."""
        if self._secret is None:
            configured = self.settings.sandbox_webhook_secret
            if configured is not None:
                self._secret = configured.get_secret_value()
            else:
                from potluck.identity.service import signing_key

                key = signing_key(cast("Potluck", _KeyOwner(self.settings, self.db, self.clock)))
                digest = hmac.new(key.encode(), _SECRET_CONTEXT, hashlib.sha256).hexdigest()
                self._secret = "whsec_sbx_" + digest
        return self._secret

    def sign(self, body: bytes, *, now: datetime) -> dict[str, str]:
        """The headers the sandbox sends ``body`` with at ``now``."""
        return {
            HEADER.lower(): sign(self.secret(), body, timestamp=int(now.timestamp())),
            "content-type": "application/json",
        }

    # ------------------------------------------------------------ storage

    @contextmanager
    def _session(self) -> Iterator[Session]:
        """The caller's transaction when one is bound, else a transaction of our own."""
        bound = current_session()
        if bound is not None:
            yield bound
            return
        with self.db.transaction() as s:
            yield s

    def _find(self, s: Session, ref: str, *, lock: bool = False) -> SandboxIntent:
        query = select(SandboxIntent).where(SandboxIntent.ref == ref)
        if lock:
            query = query.with_for_update()
        row = s.execute(query).scalar_one_or_none()
        if row is None:
            raise DomainError("sandbox_intent_not_found", f"no sandbox payment {ref}", status=404)
        return row

    def _view(self, row: SandboxIntent) -> ProviderIntent:
        return ProviderIntent(
            provider_ref=row.ref,
            status=IntentStatus(row.status),
            amount=row.amount,
            currency=row.currency,
            captured_amount=row.captured_amount,
            payment_url=self.payment_url(row.intent_id),
            failure_reason=row.failure_reason,
            raw_status=row.status,
        )

    def payment_url(self, intent_id: str) -> str:
        return f"{self.settings.public_base_url.rstrip('/')}/sandbox/pay/{intent_id}"

    # ------------------------------------------------------------ the provider interface

    def create_intent(
        self,
        *,
        intent_id: str,
        amount: int,
        currency: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderIntent:
        ref = ref_for(intent_id)
        with self._session() as s:
            row = s.get(SandboxIntent, ref)
            if row is None:  # idempotent by our intent id
                now = self.clock.now()
                row = SandboxIntent(
                    ref=ref,
                    intent_id=intent_id,
                    amount=amount,
                    currency=currency,
                    description=description[:500],
                    status=IntentStatus.REQUIRES_PAYMENT.value,
                    captured_amount=0,
                    refunded_amount=0,
                    created_at=now,
                    updated_at=now,
                )
                s.add(row)
                s.flush()
            return self._view(row)

    def retrieve_intent(self, provider_ref: str) -> ProviderIntent:
        bound = current_session()
        if bound is not None:
            return self._view(self._find(bound, provider_ref))
        with self.db.read() as s:
            return self._view(self._find(s, provider_ref))

    def cancel_intent(self, provider_ref: str) -> ProviderIntent:
        with self._session() as s:
            row = self._find(s, provider_ref, lock=True)
            if row.status in _OPEN:
                row.status = IntentStatus.CANCELED.value
                row.updated_at = self.clock.now()
            return self._view(row)

    def refund(
        self, *, refund_id: str, intent_provider_ref: str, amount: int, currency: str
    ) -> ProviderRefund:
        with self._session() as s:
            existing = s.execute(
                select(SandboxRefund).where(SandboxRefund.refund_id == refund_id)
            ).scalar_one_or_none()
            if existing is not None:  # idempotent by our refund id
                return self._refund_view(existing)
            row = self._find(s, intent_provider_ref, lock=True)
            now = self.clock.now()
            ok = (
                row.status == IntentStatus.SUCCEEDED.value
                and currency == row.currency
                and 0 < amount <= row.captured_amount - row.refunded_amount
            )
            refund = SandboxRefund(
                ref="sbxre_" + refund_id.partition("_")[2],
                refund_id=refund_id,
                intent_ref=row.ref,
                amount=amount,
                currency=currency,
                status="succeeded" if ok else "failed",
                created_at=now,
            )
            s.add(refund)
            if ok:
                row.refunded_amount += amount
                row.updated_at = now
            s.flush()
            self._enqueue(
                s,
                "refund.succeeded" if ok else "refund.failed",
                row,
                now=now,
                deliver_after=now,
                extra={"refund": refund.ref, "amount": amount},
            )
            return self._refund_view(refund)

    def _refund_view(self, r: SandboxRefund) -> ProviderRefund:
        return ProviderRefund(
            provider_ref=r.ref,
            intent_provider_ref=r.intent_ref,
            amount=r.amount,
            currency=r.currency,
            status=r.status,
        )

    def list_refunds(self, intent_provider_ref: str) -> list[ProviderRefund]:
        """The sandbox's refunds of one payment (reconciliation)."""
        with self.db.read() as s:
            rows = s.execute(
                select(SandboxRefund)
                .where(SandboxRefund.intent_ref == intent_provider_ref)
                .order_by(SandboxRefund.ref)
            ).scalars()
            return [self._refund_view(r) for r in rows]

    def verify_webhook(
        self, *, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent:
        header = headers.get(HEADER.lower())
        if not header:
            raise WebhookSignatureError(f"missing {HEADER} header")
        if not verify_signature(self.secret(), header, body, TOLERANCE_SECONDS, now):
            raise WebhookSignatureError(
                f"{HEADER} does not sign this body, or is more than {TOLERANCE_SECONDS} s old"
            )
        try:
            raw = json.loads(body)
            data = raw["data"]
            return ProviderEvent(
                event_id=str(raw["id"]),
                kind=str(raw["type"]),
                intent_provider_ref=data.get("intent"),
                amount=data.get("amount"),
                currency=data.get("currency"),
                refund_provider_ref=data.get("refund"),
                occurred_at=datetime.fromtimestamp(int(raw["created"]), UTC),
                failure_reason=data.get("failure_reason"),
                raw=raw,
            )
        except (ValueError, KeyError, TypeError, AttributeError) as exc:
            # Signed by us yet unreadable: refuse it like a bad signature (nothing stored).
            raise WebhookSignatureError(f"malformed sandbox event: {exc}") from None

    # ------------------------------------------------------------ the simulated payer

    def find_by_intent(self, s: Session, intent_id: str, *, lock: bool = False) -> SandboxIntent:
        return self._find(s, ref_for(intent_id), lock=lock)

    def act(self, s: Session, intent_id: str, script: Script, *, now: datetime) -> SandboxIntent:
        """The payer pays (or the card is declined): the sandbox records the outcome and
        queues its webhooks as ``script`` says. 409 ``sandbox_payment_closed`` if the payment
        is no longer open."""
        if script.outcome not in ("succeeded", "failed"):
            raise DomainError("invalid_outcome", "outcome is succeeded or failed", field="outcome")
        row = self.find_by_intent(s, intent_id, lock=True)
        if row.status not in _OPEN:
            raise DomainError(
                "sandbox_payment_closed",
                f"this payment is already {row.status}",
                status=409,
            )
        row.status = script.outcome
        row.updated_at = now
        if script.outcome == "succeeded":
            row.captured_amount = row.amount
        else:
            row.failure_reason = script.failure_reason
        due = now + timedelta(seconds=script.delay_seconds)
        kinds = ["payment.processing", f"payment.{script.outcome}"]
        if script.out_of_order:
            kinds.reverse()
        for kind in kinds:
            extra: dict[str, Any] = {"amount": row.amount}
            if kind == "payment.failed":
                extra["failure_reason"] = script.failure_reason
            self._enqueue(
                s, kind, row, now=now, deliver_after=due, extra=extra, copies=1 + script.duplicate
            )
        return row

    def _enqueue(
        self,
        s: Session,
        kind: str,
        row: SandboxIntent,
        *,
        now: datetime,
        deliver_after: datetime,
        extra: dict[str, Any],
        copies: int = 1,
    ) -> str:
        event_id = new_id("sbxevt")
        body = json.dumps(
            {
                "id": event_id,
                "type": kind,
                "created": int(now.timestamp()),
                "data": {"intent": row.ref, "currency": row.currency, **extra},
            },
            separators=(",", ":"),
        )
        for _ in range(copies):
            s.add(
                SandboxWebhook(
                    event_id=event_id, body=body, deliver_after=deliver_after, created_at=now
                )
            )
        s.flush()
        return event_id

    def deliver_due(self, app: Potluck, *, limit: int = 100) -> int:
        """Send the due webhooks (oldest first) through our webhook handler, each signed at
        the moment it is sent; returns how many were sent. Run outside any transaction."""
        from potluck.payments.webhooks import receive_webhook

        now = self.clock.now()
        with self.db.read() as s:
            due = s.execute(
                select(SandboxWebhook.id, SandboxWebhook.body)
                .where(SandboxWebhook.delivered_at.is_(None), SandboxWebhook.deliver_after <= now)
                .order_by(SandboxWebhook.id)
                .limit(limit)
            ).all()
        sent = 0
        for webhook_id, body in due:
            with self.db.transaction() as s:
                # Claim it first: two pollers never send the same row (a duplicate would be
                # harmless, but the sandbox sends each queued copy once).
                claimed = s.execute(
                    select(SandboxWebhook)
                    .where(SandboxWebhook.id == webhook_id, SandboxWebhook.delivered_at.is_(None))
                    .with_for_update(skip_locked=True)
                ).scalar_one_or_none()
                if claimed is None:
                    continue
                claimed.delivered_at = now
            raw = body.encode()
            try:
                status = receive_webhook(
                    app, NAME, raw, self.sign(raw, now=self.clock.now())
                ).status
            except DomainError as exc:  # refused (e.g. the secret changed): as a 4xx reply
                status = exc.status
            except Exception:
                # Our side failed (the database): send it again on the next round.
                with self.db.transaction() as s:
                    row = s.get(SandboxWebhook, webhook_id)
                    if row is not None:
                        row.delivered_at = None
                raise
            with self.db.transaction() as s:
                row = s.get(SandboxWebhook, webhook_id)
                if row is not None:
                    row.response_status = status
            sent += 1
        return sent


def sandbox_of(app: Potluck) -> SandboxProvider:
    provider = app.providers.get(NAME)
    if not isinstance(provider, SandboxProvider):
        raise DomainError("unknown_provider", "the sandbox provider is not configured", status=404)
    return provider


def deliver_sandbox_webhooks(app: Potluck) -> int:
    """The ``payments`` service's poller: deliver the sandbox's due webhooks."""
    provider = app.providers.get(NAME)
    if not isinstance(provider, SandboxProvider):
        return 0
    return provider.deliver_due(app)
