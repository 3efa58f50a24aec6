"""The one interface every payment provider adapter implements, in Potluck's own types.

A provider SDK's or HTTP API's types never leave its adapter; the provider's API version is
pinned inside the adapter. Calls are made outside our database transactions where possible
and are idempotent by our own ids (``intent_id``, ``refund_id``), which adapters pass to the
provider as its idempotency key, so retrying a call never charges or refunds twice.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from enum import StrEnum
from typing import Any, Protocol

import httpx


class IntentStatus(StrEnum):
    """Our statuses (the provider's are mapped onto these by each adapter)."""

    REQUIRES_PAYMENT = "requires_payment"
    PROCESSING = "processing"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELED = "canceled"


class WebhookSignatureError(Exception):
    """The webhook's signature is missing, malformed, wrong or too old (→ 400, nothing stored)."""


class ProviderError(Exception):
    """A provider call failed, in our terms.

    ``retryable`` means the same call with the same ids may succeed later and is safe to
    repeat (network errors, timeouts, 5xx, rate limits: the provider may or may not have acted,
    and our idempotency key makes the repeat harmless). ``retryable=False`` is a refusal that a
    repeat will not change (card declined, invalid request, unknown id). ``code`` is the
    provider's own error code where it gives one (``card_declined``, ``resource_missing``,
    ``BAD_REQUEST_ERROR``) or ours (``timeout``, ``network_error``, ``bad_response``,
    ``currency_not_supported``, ``invalid_reference``).
    """

    def __init__(
        self,
        code: str,
        message: str,
        *,
        retryable: bool,
        provider: str = "",
        http_status: int | None = None,
    ) -> None:
        super().__init__(f"{provider or 'provider'}: {code}: {message}")
        self.code = code
        self.message = message
        self.retryable = retryable
        self.provider = provider
        self.http_status = http_status


@dataclass(frozen=True, slots=True)
class ProviderIntent:
    """What the provider says about one payment intent."""

    provider_ref: (
        str  # the provider's id (Stripe ``pi_…``, Razorpay ``order_…``, sandbox ``sbx_…``)
    )
    status: IntentStatus
    amount: int  # minor units
    currency: str
    captured_amount: int = 0  # what was actually taken (0 until succeeded)
    payment_url: str | None = None  # where the payer pays (hosted page), if the provider has one
    client_secret: str | None = None  # for a provider's client-side SDK, if any
    failure_reason: str | None = None
    raw_status: str | None = None  # the provider's own status word, for logs and reports


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    provider_ref: str
    intent_provider_ref: str
    amount: int
    currency: str
    status: str  # "succeeded" | "pending" | "failed"


@dataclass(frozen=True, slots=True)
class ProviderEvent:
    """A verified webhook, parsed into our terms.

    ``kind`` is one of ``payment.processing``, ``payment.succeeded``, ``payment.failed``,
    ``payment.canceled``, ``refund.succeeded``, ``refund.failed``, or ``ignored`` (a provider
    event type we do not act on; it is still stored once).
    """

    event_id: str  # the provider's unique event id (the dedupe key, with the provider name)
    kind: str
    intent_provider_ref: str | None
    amount: int | None = None
    currency: str | None = None
    refund_provider_ref: str | None = None
    occurred_at: datetime | None = None
    failure_reason: str | None = None
    raw: Mapping[str, Any] = field(default_factory=dict)


class PaymentProvider(Protocol):
    """A payment provider adapter."""

    name: str  # "sandbox" | "stripe" | "razorpay"

    def create_intent(
        self,
        *,
        intent_id: str,  # our id, the idempotency key
        amount: int,
        currency: str,
        description: str,
        metadata: Mapping[str, str],
    ) -> ProviderIntent: ...

    def retrieve_intent(self, provider_ref: str) -> ProviderIntent: ...

    def cancel_intent(self, provider_ref: str) -> ProviderIntent: ...

    def refund(
        self,
        *,
        refund_id: str,  # our id, the idempotency key
        intent_provider_ref: str,
        amount: int,
        currency: str,
    ) -> ProviderRefund: ...

    def verify_webhook(
        self, *, body: bytes, headers: Mapping[str, str], now: datetime
    ) -> ProviderEvent:
        """Check the signature on the raw body first (raise ``WebhookSignatureError``), then
        parse. ``headers`` keys are lower-case."""
        ...


def error_body(response: httpx.Response) -> Mapping[str, Any]:
    """The ``error`` object of a provider's JSON error reply, or ``{}`` when there is none
    (Stripe and Razorpay both answer ``{"error": {…}}``)."""
    try:
        error = response.json().get("error") or {}
    except (ValueError, AttributeError):
        return {}
    return error if isinstance(error, Mapping) else {}
