"""Stripe adapter: PaymentIntents and Refunds over httpx, and ``Stripe-Signature`` webhooks.

Requests are form-encoded, authenticated with ``Authorization: Bearer <secret key>`` and pinned
to ``STRIPE_API_VERSION`` (the shape of every object we read depends on it, webhooks included:
set the webhook endpoint's version to the same one in the Stripe dashboard). Every POST carries
``Idempotency-Key`` = our own id (``intent_id``, ``refund_id``, ``cancel:<pi>``), so a retry
after a timeout never creates a second intent or refund. Stripe's types stay in this module:
callers get ``ProviderIntent`` / ``ProviderRefund`` / ``ProviderEvent`` or a ``ProviderError``.

Payments are confirmed client-side with the returned ``client_secret`` (Stripe.js / mobile
SDKs); the PaymentIntent uses automatic capture, so ``succeeded`` means captured.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import re
from collections.abc import Mapping
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

STRIPE_API_VERSION = "2025-08-27.basil"
SIGNATURE_HEADER = "stripe-signature"
DEFAULT_TOLERANCE_SECONDS = 300

# Stripe's minor unit differs from ISO 4217 for these (Stripe wants a two-decimal amount ending
# in 00 for a zero-decimal currency). We refuse them rather than send a wrong amount.
UNSUPPORTED_CURRENCIES = frozenset({"ISK", "UGX"})

_STATUS: dict[str, IntentStatus] = {
    "requires_payment_method": IntentStatus.REQUIRES_PAYMENT,
    "requires_confirmation": IntentStatus.REQUIRES_PAYMENT,
    "requires_action": IntentStatus.REQUIRES_PAYMENT,  # the payer must authenticate (3DS)
    "processing": IntentStatus.PROCESSING,
    "requires_capture": IntentStatus.PROCESSING,  # authorised, not yet captured
    "canceled": IntentStatus.CANCELED,
    "succeeded": IntentStatus.SUCCEEDED,
}

_REFUND_STATUS = {
    "succeeded": "succeeded",
    "pending": "pending",
    "requires_action": "pending",
    "failed": "failed",
    "canceled": "failed",
}

_PAYMENT_EVENTS = {
    "payment_intent.succeeded": "payment.succeeded",
    "payment_intent.payment_failed": "payment.failed",
    "payment_intent.processing": "payment.processing",
    "payment_intent.canceled": "payment.canceled",
}
_REFUND_EVENTS = frozenset({"refund.created", "refund.updated", "refund.failed"})

_ID = re.compile(r"^[A-Za-z0-9_]{1,255}$")


# --- webhook signatures ------------------------------------------------------------------------


def _signature(secret: str, timestamp: int, body: bytes) -> str:
    message = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign_stripe_payload(body: bytes, secret: str, *, timestamp: int) -> str:
    """The ``Stripe-Signature`` header Stripe would send for ``body`` at ``timestamp`` (tests)."""
    return f"t={timestamp},v1={_signature(secret, timestamp, body)}"


def _parse_signature_header(header: str) -> tuple[int, list[str]]:
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            raise WebhookSignatureError("malformed Stripe-Signature header")
        if key == "t":
            if timestamp is not None or not value.isdigit():
                raise WebhookSignatureError("malformed timestamp in Stripe-Signature header")
            timestamp = int(value)
        elif key == "v1":
            signatures.append(value)
        # v0 (test-mode legacy scheme) and unknown schemes are ignored, as Stripe advises.
    if timestamp is None:
        raise WebhookSignatureError("no timestamp in Stripe-Signature header")
    if not signatures:
        raise WebhookSignatureError("no v1 signature in Stripe-Signature header")
    return timestamp, signatures


def verify_stripe_signature(
    body: bytes,
    header: str | None,
    secret: str,
    *,
    now: datetime,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> None:
    """Raise ``WebhookSignatureError`` unless ``header`` signs exactly ``body`` with ``secret``
    and its timestamp is within ``tolerance`` seconds of ``now`` (either side: a replay of an old
    request and a clock far ahead are both refused).

    The signed message is ``f"{t}.{raw body}"``; any of several ``v1`` values may match (Stripe
    sends one per active secret while a secret is being rolled). Comparison is constant time.
    """
    if not header:
        raise WebhookSignatureError("missing Stripe-Signature header")
    timestamp, signatures = _parse_signature_header(header)
    expected = _signature(secret, timestamp, body).encode()
    matched = False
    for candidate in signatures:
        # compare every candidate (no early exit) and as bytes (non-ASCII input cannot raise)
        matched |= hmac.compare_digest(expected, candidate.encode("utf-8", "replace"))
    if not matched:
        raise WebhookSignatureError("Stripe-Signature does not match the body")
    if abs(now.timestamp() - timestamp) > tolerance:
        raise WebhookSignatureError("Stripe-Signature timestamp outside the tolerance")


# --- mapping ---------------------------------------------------------------------------------


def _str(obj: Mapping[str, Any], key: str) -> str:
    value = obj.get(key)
    if not isinstance(value, str):
        raise ProviderError(
            "bad_response", f"missing {key!r} in Stripe reply", retryable=True, provider="stripe"
        )
    return value


def _int(obj: Mapping[str, Any], key: str, default: int | None = None) -> int:
    value = obj.get(key, default)
    if value is None and default is not None:
        return default
    if not isinstance(value, int) or isinstance(value, bool):
        raise ProviderError(
            "bad_response", f"missing {key!r} in Stripe reply", retryable=True, provider="stripe"
        )
    return value


def _failure_reason(pi: Mapping[str, Any]) -> str | None:
    error = pi.get("last_payment_error")
    if isinstance(error, Mapping):
        reason = error.get("decline_code") or error.get("code")
        message = error.get("message")
        if reason and message:
            return f"{reason}: {message}"
        return str(reason or message or "payment_failed")
    if pi.get("status") == "canceled" and pi.get("cancellation_reason"):
        return str(pi["cancellation_reason"])
    return None


def intent_from_stripe(pi: Mapping[str, Any]) -> ProviderIntent:
    """A Stripe PaymentIntent object as our ``ProviderIntent``."""
    raw_status = _str(pi, "status")
    status = _STATUS.get(raw_status, IntentStatus.PROCESSING)  # unknown: never terminal
    return ProviderIntent(
        provider_ref=_str(pi, "id"),
        status=status,
        amount=_int(pi, "amount"),
        currency=_str(pi, "currency").upper(),
        captured_amount=_int(pi, "amount_received", 0),
        client_secret=pi.get("client_secret") if isinstance(pi.get("client_secret"), str) else None,
        failure_reason=_failure_reason(pi),
        raw_status=raw_status,
    )


def refund_from_stripe(refund: Mapping[str, Any]) -> ProviderRefund:
    """A Stripe Refund object as our ``ProviderRefund``."""
    return ProviderRefund(
        provider_ref=_str(refund, "id"),
        intent_provider_ref=_str(refund, "payment_intent"),
        amount=_int(refund, "amount"),
        currency=_str(refund, "currency").upper(),
        status=_REFUND_STATUS.get(_str(refund, "status"), "pending"),
    )


def event_from_stripe(event: Mapping[str, Any]) -> ProviderEvent:
    """A verified Stripe Event object as our ``ProviderEvent``.

    ``charge.refunded`` is ``ignored``: under the pinned API version a Charge no longer lists
    its refunds, so it cannot say which refund finished; subscribe the endpoint to
    ``refund.created`` / ``refund.updated`` / ``refund.failed``, which carry the Refund itself.
    """
    event_id = _str(event, "id")
    event_type = _str(event, "type")
    created = event.get("created")
    occurred_at = (
        datetime.fromtimestamp(created, UTC)
        if isinstance(created, int) and not isinstance(created, bool)
        else None
    )
    data = event.get("data")
    obj = data.get("object") if isinstance(data, Mapping) else None
    if not isinstance(obj, Mapping):
        raise WebhookSignatureError("Stripe event without data.object")

    if event_type in _PAYMENT_EVENTS:
        intent = intent_from_stripe(obj)
        kind = _PAYMENT_EVENTS[event_type]
        return ProviderEvent(
            event_id=event_id,
            kind=kind,
            intent_provider_ref=intent.provider_ref,
            amount=intent.captured_amount if kind == "payment.succeeded" else intent.amount,
            currency=intent.currency,
            occurred_at=occurred_at,
            failure_reason=intent.failure_reason if kind == "payment.failed" else None,
            raw=event,
        )
    if event_type in _REFUND_EVENTS:
        refund = refund_from_stripe(obj)
        kind = {"succeeded": "refund.succeeded", "failed": "refund.failed"}.get(
            refund.status,
            "ignored",  # still pending: the final refund.updated will follow
        )
        reason = obj.get("failure_reason")
        return ProviderEvent(
            event_id=event_id,
            kind=kind,
            intent_provider_ref=refund.intent_provider_ref,
            amount=refund.amount,
            currency=refund.currency,
            refund_provider_ref=refund.provider_ref,
            occurred_at=occurred_at,
            failure_reason=str(reason) if kind == "refund.failed" and reason else None,
            raw=event,
        )
    pi_ref = obj.get("payment_intent") if obj.get("object") != "payment_intent" else obj.get("id")
    return ProviderEvent(
        event_id=event_id,
        kind="ignored",
        intent_provider_ref=pi_ref if isinstance(pi_ref, str) else None,
        occurred_at=occurred_at,
        raw=event,
    )


def _error(response: httpx.Response) -> ProviderError:
    """A Stripe error reply (``{"error": {type, code, message, …}}``) as a ``ProviderError``."""
    status = response.status_code
    error = error_body(response)
    code = str(error.get("code") or error.get("type") or f"http_{status}")
    message = str(error.get("message") or response.reason_phrase or "Stripe error")
    if error.get("decline_code"):
        message = f"{message} (decline_code={error['decline_code']})"
    # Stripe says whether a retry can help; otherwise: 5xx, 429 and lock timeouts can.
    should_retry = response.headers.get("stripe-should-retry")
    if should_retry in ("true", "false"):
        retryable = should_retry == "true"
    else:
        retryable = status >= 500 or status == 429 or code == "lock_timeout"
    return ProviderError(code, message, retryable=retryable, provider="stripe", http_status=status)


def _flatten(prefix: str, values: Mapping[str, str]) -> dict[str, str]:
    return {f"{prefix}[{key}]": value for key, value in values.items()}


class StripeProvider:
    """``PaymentProvider`` for Stripe PaymentIntents (see the module docstring)."""

    name = "stripe"

    def __init__(
        self,
        *,
        api_key: str,
        webhook_secret: str,
        api_base: str = "https://api.stripe.com",
        transport: httpx.BaseTransport | None = None,
        timeout: float = 10.0,
    ) -> None:
        self._webhook_secret = webhook_secret
        self._client = httpx.Client(
            base_url=api_base.rstrip("/"),
            transport=transport,
            timeout=timeout,
            headers={
                "Authorization": f"Bearer {api_key}",
                "Stripe-Version": STRIPE_API_VERSION,
                "User-Agent": "potluck",
            },
        )

    def close(self) -> None:
        self._client.close()

    # --- HTTP ----------------------------------------------------------------------------------

    def _request(
        self,
        method: str,
        path: str,
        *,
        data: Mapping[str, str] | None = None,
        params: Mapping[str, str] | None = None,
        idempotency_key: str | None = None,
    ) -> dict[str, Any]:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        try:
            response = self._client.request(method, path, data=data, params=params, headers=headers)
        except httpx.TimeoutException as exc:
            raise ProviderError(
                "timeout", f"Stripe did not answer: {exc}", retryable=True, provider="stripe"
            ) from exc
        except httpx.HTTPError as exc:
            raise ProviderError(
                "network_error", f"Stripe unreachable: {exc}", retryable=True, provider="stripe"
            ) from exc
        if response.status_code >= 400:
            raise _error(response)
        try:
            body = response.json()
        except ValueError as exc:
            raise ProviderError(
                "bad_response", "Stripe reply is not JSON", retryable=True, provider="stripe"
            ) from exc
        if not isinstance(body, dict):
            raise ProviderError(
                "bad_response", "Stripe reply is not an object", retryable=True, provider="stripe"
            )
        return body

    @staticmethod
    def _ref(provider_ref: str) -> str:
        if not _ID.match(provider_ref):
            raise ProviderError(
                "invalid_reference",
                f"not a Stripe id: {provider_ref!r}",
                retryable=False,
                provider="stripe",
            )
        return provider_ref

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
        if currency.upper() in UNSUPPORTED_CURRENCIES:
            raise ProviderError(
                "currency_not_supported",
                f"{currency.upper()} amounts differ between ISO 4217 and Stripe",
                retryable=False,
                provider="stripe",
            )
        form = {
            "amount": str(amount),
            "currency": currency.lower(),
            "description": description,
            "automatic_payment_methods[enabled]": "true",
            **_flatten("metadata", {**metadata, "potluck_intent_id": intent_id}),
        }
        pi = self._request("POST", "/v1/payment_intents", data=form, idempotency_key=intent_id)
        return intent_from_stripe(pi)

    def retrieve_intent(self, provider_ref: str) -> ProviderIntent:
        return intent_from_stripe(
            self._request("GET", f"/v1/payment_intents/{self._ref(provider_ref)}")
        )

    def cancel_intent(self, provider_ref: str) -> ProviderIntent:
        """Cancel, or — when Stripe refuses because the intent is already past cancelling
        (``payment_intent_unexpected_state``: processing, succeeded, canceled) — return its
        current state. The caller must look at ``status``: it is ``canceled`` only if it is."""
        ref = self._ref(provider_ref)
        try:
            pi = self._request(
                "POST",
                f"/v1/payment_intents/{ref}/cancel",
                data={},
                idempotency_key=f"cancel:{ref}",
            )
        except ProviderError as exc:
            if exc.code != "payment_intent_unexpected_state":
                raise
            return self.retrieve_intent(ref)
        return intent_from_stripe(pi)

    def refund(
        self,
        *,
        refund_id: str,
        intent_provider_ref: str,
        amount: int,
        currency: str,
    ) -> ProviderRefund:
        form = {
            "payment_intent": self._ref(intent_provider_ref),
            "amount": str(amount),
            "metadata[potluck_refund_id]": refund_id,
        }
        # Stripe takes no currency for a refund (it is the payment's); the reply carries it.
        return refund_from_stripe(
            self._request("POST", "/v1/refunds", data=form, idempotency_key=refund_id)
        )

    def list_refunds(self, intent_provider_ref: str) -> list[ProviderRefund]:
        """Every refund of one PaymentIntent, oldest first (for reconciliation)."""
        ref = self._ref(intent_provider_ref)
        refunds: list[ProviderRefund] = []
        params = {"payment_intent": ref, "limit": "100"}
        while True:
            page = self._request("GET", "/v1/refunds", params=params)
            data = page.get("data")
            if not isinstance(data, list):
                raise ProviderError(
                    "bad_response", "Stripe list without data", retryable=True, provider="stripe"
                )
            refunds.extend(refund_from_stripe(r) for r in data if isinstance(r, Mapping))
            if not page.get("has_more") or not data:
                break
            params = {**params, "starting_after": _str(data[-1], "id")}
        return refunds[::-1]  # Stripe lists newest first

    def verify_webhook(
        self, *, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent:
        verify_stripe_signature(body, headers.get(SIGNATURE_HEADER), self._webhook_secret, now=now)
        try:
            event = json.loads(body)
        except ValueError as exc:
            raise WebhookSignatureError("Stripe webhook body is not JSON") from exc
        if not isinstance(event, dict):
            raise WebhookSignatureError("Stripe webhook body is not an object")
        try:
            return event_from_stripe(event)
        except ProviderError as exc:
            raise WebhookSignatureError(f"Stripe webhook body: {exc.message}") from exc
