"""Razorpay adapter: Orders, refunds and ``X-Razorpay-Signature`` webhooks over httpx.

A Potluck payment intent is a Razorpay **order** (``order_…``, the ``provider_ref``): the payer
pays it with Razorpay Checkout (given the order id and our key id); each attempt is a Razorpay
*payment* (``pay_…``) on the order. Requests are JSON with HTTP Basic auth ``key_id:key_secret``.
Razorpay's types stay in this module: callers get ``ProviderIntent`` / ``ProviderRefund`` /
``ProviderEvent`` or a ``ProviderError``.

Idempotency, by our own ids:
- create: ``receipt`` = our ``intent_id`` (Razorpay keeps receipts unique); before creating, we
  look the receipt up (``GET /v1/orders?receipt=…``) and return the existing order, so a retry
  after a timeout does not open a second order;
- refund: ``X-Refund-Idempotency`` and ``receipt`` = our ``refund_id``, always against the same
  payment (the order's first captured one), so a retry returns the same refund.

Cancel: a Razorpay order cannot be cancelled. ``cancel_intent`` returns the intent as
``canceled`` *locally* when nothing was paid or authorised, and its real state otherwise. The
order stays open at Razorpay, so a payer could still pay it later: the webhook handler must treat
a payment on a canceled intent as money to refund.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import httpx

from potluck.payments.providers.base import (
    IntentStatus,
    ProviderError,
    ProviderEvent,
    ProviderIntent,
    ProviderRefund,
    WebhookSignatureError,
    error_body,
)

SIGNATURE_HEADER = "x-razorpay-signature"
EVENT_ID_HEADER = "x-razorpay-event-id"
DEFAULT_TOLERANCE_SECONDS = 300
RECEIPT_MAX_LENGTH = 40  # Razorpay's limit on an order's receipt
NOTE_MAX_LENGTH = 256

_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")

_REFUND_STATUS = {"processed": "succeeded", "pending": "pending", "failed": "failed"}
# A payment that took money: captured, possibly refunded since (the money was received).
_TAKEN = frozenset({"captured", "refunded"})

_PAYMENT_EVENTS = {
    "payment.captured": "payment.succeeded",
    "payment.failed": "payment.failed",
    "payment.authorized": "payment.processing",
}
_REFUND_EVENTS = {"refund.processed": "refund.succeeded", "refund.failed": "refund.failed"}


# --- webhook signatures ----------------------------------------------------------------------


def _signature(secret: str, body: bytes) -> str:
    return hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def sign_razorpay_payload(body: bytes, secret: str) -> str:
    """The ``X-Razorpay-Signature`` header Razorpay would send for ``body`` (tests)."""
    return _signature(secret, body)


def _verified_event(
    body: bytes, header: str | None, secret: str, *, now: datetime, tolerance: int
) -> dict[str, Any]:
    if not header:
        raise WebhookSignatureError("missing X-Razorpay-Signature header")
    expected = _signature(secret, body).encode()
    if not hmac.compare_digest(expected, header.strip().encode("utf-8", "replace")):
        raise WebhookSignatureError("X-Razorpay-Signature does not match the body")
    try:
        event = json.loads(body)
    except ValueError as exc:
        raise WebhookSignatureError("Razorpay webhook body is not JSON") from exc
    if not isinstance(event, dict):
        raise WebhookSignatureError("Razorpay webhook body is not an object")
    created_at = event.get("created_at")
    if not isinstance(created_at, int) or isinstance(created_at, bool):
        raise WebhookSignatureError("Razorpay webhook without created_at")
    # The signature does not cover a timestamp of its own, so the event's created_at is what
    # stops a replay of a captured request. Razorpay's own redeliveries keep created_at: a
    # delivery missed for longer than the tolerance is picked up by reconciliation instead.
    if abs(now.timestamp() - created_at) > tolerance:
        raise WebhookSignatureError("Razorpay webhook created_at outside the tolerance")
    return event


def verify_razorpay_signature(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    now: datetime,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise ``WebhookSignatureError`` unless ``header`` is the hex HMAC-SHA256 of exactly
    ``body`` keyed with ``secret`` (constant-time compare) and the event's ``created_at`` is
    within ``tolerance`` seconds of ``now``."""
    _verified_event(body, header, secret, now=now, tolerance=tolerance)


# --- mapping ---------------------------------------------------------------------------------


def _bad(message: str) -> ProviderError:
    return ProviderError("bad_response", message, retryable=True, provider="razorpay")


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise _bad(f"missing {key!r} in Razorpay reply")
    return value


def _int(obj: Mapping[str, Any], key: str) -> int:
    value = obj.get(key)
    if not isinstance(value, int) or isinstance(value, bool):
        raise _bad(f"missing {key!r} in Razorpay reply")
    return value


def _entity(event: Mapping[str, Any], name: str) -> Mapping[str, Any] | None:
    payload = event.get("payload")
    part = payload.get(name) if isinstance(payload, Mapping) else None
    entity = part.get("entity") if isinstance(part, Mapping) else None
    return entity if isinstance(entity, Mapping) else None


def _payment_failure(payment: Mapping[str, Any]) -> str:
    reason = payment.get("error_reason") or payment.get("error_code")
    description = payment.get("error_description")
    if reason and description:
        return f"{reason}: {description}"
    return str(reason or description or "payment_failed")


def intent_from_order(
    order: Mapping[str, Any], payments: Sequence[Mapping[str, Any]] = ()
) -> ProviderIntent:
    """A Razorpay order (and the payments made on it) as our ``ProviderIntent``.

    ``paid`` or a captured payment → succeeded (captured amount = what the payments took);
    an authorised or pending payment → processing; otherwise the payer may still pay
    (requires_payment), with the latest failed attempt's reason if there was one.
    """
    raw_status = _str(order, "status")
    base = ProviderIntent(
        provider_ref=_str(order, "id"),
        status=IntentStatus.REQUIRES_PAYMENT,
        amount=_int(order, "amount"),
        currency=_str(order, "currency").upper(),
        raw_status=raw_status,
    )
    taken = [p for p in payments if p.get("status") in _TAKEN]
    if taken or raw_status == "paid":
        captured = sum(_int(p, "amount") for p in taken) or _int(order, "amount_paid")
        return replace(base, status=IntentStatus.SUCCEEDED, captured_amount=captured)
    if any(p.get("status") in ("authorized", "pending") for p in payments):
        return replace(base, status=IntentStatus.PROCESSING)
    failed = [p for p in payments if p.get("status") == "failed"]
    if failed:
        latest = max(failed, key=lambda p: p.get("created_at") or 0)
        return replace(base, failure_reason=_payment_failure(latest))
    return base


def refund_from_razorpay(refund: Mapping[str, Any], *, order_id: str) -> ProviderRefund:
    return ProviderRefund(
        provider_ref=_str(refund, "id"),
        intent_provider_ref=order_id,
        amount=_int(refund, "amount"),
        currency=_str(refund, "currency").upper(),
        status=_REFUND_STATUS.get(_str(refund, "status"), "pending"),
    )


def event_from_razorpay(event: Mapping[str, Any], *, event_id: str) -> ProviderEvent:
    """A verified Razorpay webhook as our ``ProviderEvent``.

    The intent's ``provider_ref`` is the order id, found in ``payload.payment.entity.order_id``
    (or ``payload.order.entity.id`` for ``order.paid``). ``payment.captured`` and ``order.paid``
    both report the same capture (two events, both ``payment.succeeded``).
    """
    event_type = _str(event, "event")
    created = event.get("created_at")
    occurred_at = datetime.fromtimestamp(created, UTC) if isinstance(created, int) else None
    payment = _entity(event, "payment")
    order_ref = payment.get("order_id") if payment is not None else None
    order_ref = order_ref if isinstance(order_ref, str) else None

    if event_type in _PAYMENT_EVENTS and payment is not None:
        kind = _PAYMENT_EVENTS[event_type]
        return ProviderEvent(
            event_id=event_id,
            kind=kind,
            intent_provider_ref=order_ref,
            amount=_int(payment, "amount"),
            currency=_str(payment, "currency").upper(),
            occurred_at=occurred_at,
            failure_reason=_payment_failure(payment) if kind == "payment.failed" else None,
            raw=event,
        )
    order = _entity(event, "order")
    if event_type == "order.paid" and order is not None:
        return ProviderEvent(
            event_id=event_id,
            kind="payment.succeeded",
            intent_provider_ref=_str(order, "id"),
            amount=_int(order, "amount_paid"),
            currency=_str(order, "currency").upper(),
            occurred_at=occurred_at,
            raw=event,
        )
    refund = _entity(event, "refund")
    if event_type in _REFUND_EVENTS and refund is not None:
        return ProviderEvent(
            event_id=event_id,
            kind=_REFUND_EVENTS[event_type],
            intent_provider_ref=order_ref,
            amount=_int(refund, "amount"),
            currency=_str(refund, "currency").upper(),
            refund_provider_ref=_str(refund, "id"),
            occurred_at=occurred_at,
            raw=event,
        )
    return ProviderEvent(
        event_id=event_id,
        kind="ignored",
        intent_provider_ref=order_ref,
        occurred_at=occurred_at,
        raw=event,
    )


def _error(response: httpx.Response) -> ProviderError:
    """A Razorpay error reply (``{"error": {code, description, reason, …}}``)."""
    status = response.status_code
    error = error_body(response)
    code = str(error.get("code") or f"http_{status}")
    message = str(error.get("description") or response.reason_phrase or "Razorpay error")
    reason = error.get("reason")
    if reason and reason != "NA":
        message = f"{message} (reason={reason})"
    retryable = status >= 500 or status == 429
    return ProviderError(
        code, message, retryable=retryable, provider="razorpay", http_status=status
    )


class RazorpayProvider:
    """``PaymentProvider`` for Razorpay Orders (see the module docstring)."""

    name = "razorpay"

    def __init__(
        self,
        *,
        key_id: str,
        key_secret: str,
        webhook_secret: str,
        api_base: str = "https://api.razorpay.com",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self.key_id = key_id  # public: Razorpay Checkout needs it with the order id
        self._webhook_secret = webhook_secret
        self._client = httpx.Client(
            base_url=api_base.rstrip("/"),
            transport=transport,
            timeout=timeout,
            auth=(key_id, key_secret),
            headers={"User-Agent": "potluck"},
        )

    def close(self) -> None:
        self._client.close()

    # --- HTTP ----------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        json_body: Mapping[str, Any] | None = None,
        params: Mapping[str, str] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> dict[str, Any]:
        try:
            response = self._client.request(
                method, path, json=json_body, params=params, headers=headers
            )
        except httpx.TimeoutException as exc:
            raise ProviderError(
                "timeout", f"Razorpay did not answer: {exc}", retryable=True, provider="razorpay"
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                "network_error", f"Razorpay unreachable: {exc}", retryable=True, provider="razorpay"
            ) from exc
        if response.status_code >= 400:
            raise _error(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise _bad("Razorpay reply is not JSON") from exc
        if not isinstance(body, dict):
            raise _bad("Razorpay reply is not an object")
        return body

    @staticmethod
    def _ref(provider_ref: str) -> str:
        if not _ID.match(provider_ref):
            raise ProviderError(
                "invalid_reference",
                f"not a Razorpay id: {provider_ref!r}",
                retryable=False,
                provider="razorpay",
            )
        return provider_ref

    @staticmethod
    def _items(collection: Mapping[str, Any]) -> list[Mapping[str, Any]]:
        items = collection.get("items")
        if not isinstance(items, list):
            raise _bad("Razorpay collection without items")
        return [item for item in items if isinstance(item, Mapping)]

    def _payments(self, order_id: str) -> list[Mapping[str, Any]]:
        return self._items(self._request("GET", f"/v1/orders/{order_id}/payments"))

    # --- PaymentProvider -----------------------------------------------------------------------

    def create_intent(
        self,
        *,
        intent_id: str,
        amount: int,
        currency: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderIntent:
        if len(intent_id) > RECEIPT_MAX_LENGTH:
            raise ProviderError(
                "invalid_reference",
                f"intent id longer than Razorpay's {RECEIPT_MAX_LENGTH}-character receipt",
                retryable=False,
                provider="razorpay",
            )
        existing = [
            order
            for order in self._items(
                self._request("GET", "/v1/orders", params={"receipt": intent_id})
            )
            if order.get("receipt") == intent_id
        ]
        if existing:
            order = existing[0]
            if _int(order, "amount") != amount or _str(order, "currency").upper() != (
                currency.upper()
            ):
                raise ProviderError(
                    "idempotency_conflict",
                    f"order {order.get('id')} for receipt {intent_id} has another amount",
                    retryable=False,
                    provider="razorpay",
                )
            if order.get("status") == "created":
                return intent_from_order(order)
            return self.retrieve_intent(_str(order, "id"))
        notes = {
            **metadata,
            "description": description[:NOTE_MAX_LENGTH],
            "potluck_intent_id": intent_id,
        }
        order = self._request(
            "POST",
            "/v1/orders",
            json_body={
                "amount": amount,
                "currency": currency.upper(),
                "receipt": intent_id,
                "notes": notes,
            },
        )
        return intent_from_order(order)

    def retrieve_intent(self, provider_ref: str) -> ProviderIntent:
        ref = self._ref(provider_ref)
        order = self._request("GET", f"/v1/orders/{ref}")
        if order.get("status") == "created":  # nothing attempted yet: no payments to read
            return intent_from_order(order)
        return intent_from_order(order, self._payments(ref))

    def cancel_intent(self, provider_ref: str) -> ProviderIntent:
        """Razorpay orders cannot be cancelled: canceled locally when nothing is paid or
        authorised, otherwise the real state (the caller must look at ``status``)."""
        intent = self.retrieve_intent(provider_ref)
        if intent.status is IntentStatus.REQUIRES_PAYMENT:
            return replace(intent, status=IntentStatus.CANCELED)
        return intent

    def refund(
        self,
        *,
        refund_id: str,
        intent_provider_ref: str,
        amount: int,
        currency: str,
    ) -> ProviderRefund:
        order_id = self._ref(intent_provider_ref)
        taken = [p for p in self._payments(order_id) if p.get("status") in _TAKEN]
        if not taken:
            raise ProviderError(
                "no_captured_payment",
                f"order {order_id} has no captured payment to refund",
                retryable=False,
                provider="razorpay",
            )
        # Always the same payment (an order takes at most one), so that a retry with the same
        # X-Refund-Idempotency key finds the refund it already made.
        payment = min(taken, key=lambda p: (p.get("created_at") or 0, str(p.get("id"))))
        payment_id = self._ref(_str(payment, "id"))
        refund = self._request(
            "POST",
            f"/v1/payments/{payment_id}/refund",
            json_body={
                "amount": amount,
                "receipt": refund_id,
                "notes": {"potluck_refund_id": refund_id},
            },
            headers={"X-Refund-Idempotency": refund_id},
        )
        return refund_from_razorpay(refund, order_id=order_id)

    def list_refunds(self, intent_provider_ref: str) -> list[ProviderRefund]:
        """Every refund of the order's captured payments, oldest first (for reconciliation)."""
        order_id = self._ref(intent_provider_ref)
        found: list[Mapping[str, Any]] = []
        for payment in self._payments(order_id):
            if payment.get("status") not in _TAKEN:
                continue
            payment_id = self._ref(_str(payment, "id"))
            collection = self._request(
                "GET", f"/v1/payments/{payment_id}/refunds", params={"count": "100"}
            )
            found.extend(self._items(collection))
        found.sort(key=lambda r: (r.get("created_at") or 0, str(r.get("id"))))
        return [refund_from_razorpay(r, order_id=order_id) for r in found]

    def verify_webhook(
        self, *, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent:
        event = _verified_event(
            body,
            headers.get(SIGNATURE_HEADER),
            self._webhook_secret,
            now=now,
            tolerance=DEFAULT_TOLERANCE_SECONDS,
        )
        event_id = headers.get(EVENT_ID_HEADER)
        if not event_id:
            raise WebhookSignatureError("missing X-Razorpay-Event-Id header")
        try:
            return event_from_razorpay(event, event_id=event_id)
        except ProviderError as exc:
            raise WebhookSignatureError(f"Razorpay webhook body: {exc.message}") from exc
