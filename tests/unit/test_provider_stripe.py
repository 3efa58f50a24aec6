"""The Stripe adapter against recorded Stripe replies (tests/data/providers/stripe), replayed
through httpx.MockTransport: the exact requests we send, how replies map to our types, errors,
and Stripe-Signature verification. No network, no database."""

from __future__ import annotations

import json
import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from urllib.parse import parse_qsl

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from potluck.payments.providers.base import (
    IntentStatus,
    PaymentProvider,
    ProviderError,
    WebhookSignatureError,
)
from potluck.payments.providers.stripe import (
    STRIPE_API_VERSION,
    StripeProvider,
    sign_stripe_payload,
    verify_stripe_signature,
)

DATA = Path(__file__).parent.parent / "data" / "providers" / "stripe"
API_KEY = "sk_test_51QmZ8kLkdIwHu7ixPotluck"
SECRET = "whsec_test_b9c1d2e3f4a5b6c7d8e9f0"
PI = "pi_3QmZ8kLkdIwHu7ix1Xb4TqRe"
OUR_INTENT = "pi_01JDB3Y6Q0ZK4W8T2V5N7R9M1C"
OUR_REFUND = "rf_01JDB4A1B2C3D4E5F6G7H8J9K0"


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


class Replay:
    """A MockTransport answering (method, path) with recorded bodies, in order, and keeping
    every request it saw."""

    def __init__(self, *answers: tuple[str, str, int, dict | str, dict[str, str] | None]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.answers, f"unexpected request {request.method} {request.url}"
        method, path, status, body, headers = self.answers.pop(0)
        assert (request.method, request.url.path) == (method, path)
        content = body if isinstance(body, str) else json.dumps(body)
        return httpx.Response(status, content=content.encode(), headers=headers or {})

    def provider(self) -> StripeProvider:
        return StripeProvider(
            api_key=API_KEY, webhook_secret=SECRET, transport=httpx.MockTransport(self)
        )


def answer(method, path, body, status=200, headers=None):
    return (method, path, status, body, headers)


def form(request: httpx.Request) -> dict[str, str]:
    return dict(parse_qsl(request.content.decode(), keep_blank_values=True))


def test_the_adapter_satisfies_the_interface():
    provider: PaymentProvider = Replay().provider()
    assert provider.name == "stripe"


# --- requests and recorded replies ----------------------------------------------------------


def test_create_intent_sends_a_pinned_form_encoded_idempotent_request():
    replay = Replay(answer("POST", "/v1/payment_intents", recorded("payment_intent_created")))
    intent = replay.provider().create_intent(
        intent_id=OUR_INTENT,
        amount=2550,
        currency="EUR",
        description="Potluck order ord_01JDB3XZ1",
        metadata={"order_id": "ord_01JDB3XZ1"},
    )
    (request,) = replay.requests
    assert str(request.url) == "https://api.stripe.com/v1/payment_intents"
    assert request.headers["authorization"] == f"Bearer {API_KEY}"
    assert request.headers["stripe-version"] == STRIPE_API_VERSION
    assert re.fullmatch(r"20\d\d-\d\d-\d\d(\.[a-z]+)?", STRIPE_API_VERSION)
    assert request.headers["idempotency-key"] == OUR_INTENT
    assert request.headers["content-type"] == "application/x-www-form-urlencoded"
    assert form(request) == {
        "amount": "2550",
        "currency": "eur",
        "description": "Potluck order ord_01JDB3XZ1",
        "automatic_payment_methods[enabled]": "true",
        "metadata[order_id]": "ord_01JDB3XZ1",
        "metadata[potluck_intent_id]": OUR_INTENT,
    }
    assert intent.provider_ref == PI
    assert intent.status is IntentStatus.REQUIRES_PAYMENT
    assert (intent.amount, intent.currency, intent.captured_amount) == (2550, "EUR", 0)
    assert intent.client_secret == f"{PI}_secret_Vq8fXcNd2LuRb3Hs9KjPwYt0a"
    assert intent.raw_status == "requires_payment_method"
    assert intent.failure_reason is None


@pytest.mark.parametrize(
    ("name", "status", "captured", "reason"),
    [
        ("payment_intent_created", IntentStatus.REQUIRES_PAYMENT, 0, None),
        (
            "payment_intent_declined",
            IntentStatus.REQUIRES_PAYMENT,
            0,
            "insufficient_funds: Your card has insufficient funds.",
        ),
        ("payment_intent_processing", IntentStatus.PROCESSING, 0, None),
        ("payment_intent_succeeded", IntentStatus.SUCCEEDED, 2550, None),
        ("payment_intent_canceled", IntentStatus.CANCELED, 0, "requested_by_customer"),
    ],
)
def test_retrieve_intent_maps_recorded_intents(name, status, captured, reason):
    replay = Replay(answer("GET", f"/v1/payment_intents/{PI}", recorded(name)))
    intent = replay.provider().retrieve_intent(PI)
    (request,) = replay.requests
    assert request.content == b""
    assert "idempotency-key" not in request.headers
    assert request.headers["stripe-version"] == STRIPE_API_VERSION
    assert (intent.status, intent.captured_amount, intent.failure_reason) == (
        status,
        captured,
        reason,
    )


@pytest.mark.parametrize(
    ("stripe_status", "ours"),
    [
        ("requires_payment_method", IntentStatus.REQUIRES_PAYMENT),
        ("requires_confirmation", IntentStatus.REQUIRES_PAYMENT),
        ("requires_action", IntentStatus.REQUIRES_PAYMENT),
        ("processing", IntentStatus.PROCESSING),
        ("requires_capture", IntentStatus.PROCESSING),
        ("canceled", IntentStatus.CANCELED),
        ("succeeded", IntentStatus.SUCCEEDED),
        ("some_future_status", IntentStatus.PROCESSING),  # unknown: never a terminal state
    ],
)
def test_every_stripe_status_maps_to_ours(stripe_status, ours):
    body = recorded("payment_intent_created") | {"status": stripe_status}
    replay = Replay(answer("GET", f"/v1/payment_intents/{PI}", body))
    intent = replay.provider().retrieve_intent(PI)
    assert intent.status is ours
    assert intent.raw_status == stripe_status


def test_cancel_posts_to_cancel_with_an_idempotency_key():
    replay = Replay(
        answer("POST", f"/v1/payment_intents/{PI}/cancel", recorded("payment_intent_canceled"))
    )
    intent = replay.provider().cancel_intent(PI)
    (request,) = replay.requests
    assert request.headers["idempotency-key"] == f"cancel:{PI}"
    assert intent.status is IntentStatus.CANCELED


def test_cancel_of_a_succeeded_intent_returns_its_real_state():
    replay = Replay(
        answer(
            "POST",
            f"/v1/payment_intents/{PI}/cancel",
            recorded("error_unexpected_state"),
            status=400,
        ),
        answer("GET", f"/v1/payment_intents/{PI}", recorded("payment_intent_succeeded")),
    )
    intent = replay.provider().cancel_intent(PI)
    assert intent.status is IntentStatus.SUCCEEDED
    assert intent.captured_amount == 2550
    assert len(replay.requests) == 2


@pytest.mark.parametrize(
    ("name", "status"),
    [("refund_succeeded", "succeeded"), ("refund_pending", "pending"), ("refund_failed", "failed")],
)
def test_refund_posts_the_intent_and_amount_keyed_by_our_refund_id(name, status):
    replay = Replay(answer("POST", "/v1/refunds", recorded(name)))
    refund = replay.provider().refund(
        refund_id=OUR_REFUND, intent_provider_ref=PI, amount=1000, currency="EUR"
    )
    (request,) = replay.requests
    assert request.headers["idempotency-key"] == OUR_REFUND
    assert request.headers["stripe-version"] == STRIPE_API_VERSION
    assert form(request) == {
        "payment_intent": PI,
        "amount": "1000",
        "metadata[potluck_refund_id]": OUR_REFUND,
    }
    assert refund.provider_ref == "re_3QmZ8kLkdIwHu7ix1Ro9Kd2F"
    assert refund.intent_provider_ref == PI
    assert (refund.amount, refund.currency, refund.status) == (1000, "EUR", status)


def test_api_base_is_configurable():
    seen: list[httpx.Request] = []

    def handler(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(200, json=recorded("payment_intent_created"))

    provider = StripeProvider(
        api_key=API_KEY,
        webhook_secret=SECRET,
        api_base="http://stripe-mock.test:12111/",
        transport=httpx.MockTransport(handler),
    )
    provider.retrieve_intent(PI)
    assert str(seen[0].url) == f"http://stripe-mock.test:12111/v1/payment_intents/{PI}"


# --- errors ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "headers", "code", "retryable"),
    [
        ("error_card_declined", 402, None, "card_declined", False),
        ("error_resource_missing", 404, None, "resource_missing", False),
        ("error_idempotency", 400, None, "idempotency_error", False),
        ("error_api", 500, None, "api_error", True),
        ("error_rate_limit", 429, None, "rate_limit", True),
        # Stripe's own verdict wins over the status code
        ("error_api", 500, {"Stripe-Should-Retry": "false"}, "api_error", False),
        ("error_resource_missing", 409, {"Stripe-Should-Retry": "true"}, "resource_missing", True),
    ],
)
def test_stripe_errors_become_typed_provider_errors(name, status, headers, code, retryable):
    replay = Replay(answer("POST", "/v1/payment_intents", recorded(name), status, headers))
    with pytest.raises(ProviderError) as caught:
        replay.provider().create_intent(
            intent_id=OUR_INTENT, amount=2550, currency="EUR", description="x", metadata={}
        )
    error = caught.value
    assert (error.code, error.retryable, error.http_status, error.provider) == (
        code,
        retryable,
        status,
        "stripe",
    )
    assert error.message == recorded(name)["error"]["message"] + (
        " (decline_code=generic_decline)" if name == "error_card_declined" else ""
    )


def test_a_non_json_error_page_is_still_typed():
    replay = Replay(answer("GET", f"/v1/payment_intents/{PI}", "<html>Bad Gateway</html>", 502))
    with pytest.raises(ProviderError) as caught:
        replay.provider().retrieve_intent(PI)
    assert (caught.value.code, caught.value.retryable) == ("http_502", True)


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx.ReadTimeout("read timed out"), "timeout"),
        (httpx.ConnectError("refused"), "network_error"),
    ],
)
def test_timeouts_and_network_errors_are_retryable(exc, code):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    provider = StripeProvider(
        api_key=API_KEY, webhook_secret=SECRET, transport=httpx.MockTransport(handler)
    )
    with pytest.raises(ProviderError) as caught:
        provider.refund(refund_id=OUR_REFUND, intent_provider_ref=PI, amount=1, currency="EUR")
    assert (caught.value.code, caught.value.retryable) == (code, True)


def test_a_200_that_is_not_a_payment_intent_is_a_bad_response():
    replay = Replay(answer("GET", f"/v1/payment_intents/{PI}", {"object": "list"}))
    with pytest.raises(ProviderError) as caught:
        replay.provider().retrieve_intent(PI)
    assert caught.value.code == "bad_response"


@pytest.mark.parametrize("currency", ["ISK", "UGX", "isk"])
def test_currencies_whose_stripe_minor_unit_differs_are_refused_before_any_request(currency):
    replay = Replay()
    with pytest.raises(ProviderError) as caught:
        replay.provider().create_intent(
            intent_id=OUR_INTENT, amount=1000, currency=currency, description="x", metadata={}
        )
    assert (caught.value.code, caught.value.retryable) == ("currency_not_supported", False)
    assert replay.requests == []


@pytest.mark.parametrize("ref", ["../v1/customers", "pi_1?expand=x", "", "pi 1"])
def test_a_reference_that_is_not_an_id_never_reaches_the_url(ref):
    replay = Replay()
    with pytest.raises(ProviderError) as caught:
        replay.provider().retrieve_intent(ref)
    assert caught.value.code == "invalid_reference"
    assert replay.requests == []


# --- webhook signatures ------------------------------------------------------------------------

BODY = (DATA / "event_payment_intent_succeeded.json").read_bytes()
T = 1795262460
NOW = datetime.fromtimestamp(T, UTC)


def test_a_valid_signature_passes():
    verify_stripe_signature(BODY, sign_stripe_payload(BODY, SECRET, timestamp=T), SECRET, now=NOW)


def test_the_signature_is_the_hmac_of_t_dot_body():
    import hashlib
    import hmac

    digest = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert sign_stripe_payload(BODY, SECRET, timestamp=T) == f"t={T},v1={digest}"


def test_a_tampered_body_is_refused():
    header = sign_stripe_payload(BODY, SECRET, timestamp=T)
    tampered = BODY.replace(b'"amount_received": 2550', b'"amount_received": 9550')
    assert tampered != BODY
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_stripe_signature(tampered, header, SECRET, now=NOW)


def test_a_wrong_secret_is_refused():
    header = sign_stripe_payload(BODY, "whsec_someone_else", timestamp=T)
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_stripe_signature(BODY, header, SECRET, now=NOW)


def test_a_changed_timestamp_is_refused():
    header = sign_stripe_payload(BODY, SECRET, timestamp=T).replace(f"t={T}", f"t={T + 1}")
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_stripe_signature(BODY, header, SECRET, now=NOW)


def test_any_of_several_v1_signatures_may_match_and_v0_is_ignored():
    good = sign_stripe_payload(BODY, SECRET, timestamp=T).split(",")[1]
    old = sign_stripe_payload(BODY, "whsec_old_secret", timestamp=T).split(",")[1]
    header = (
        f"t={T}, {old}, {good}, v0=6ffbb59b2300aae63f272406069a9788598b792a944a07aba816edb039989a39"
    )
    verify_stripe_signature(BODY, header, SECRET, now=NOW)
    # a matching v0 alone is not enough: only v1 is the live scheme
    v0_only = good.replace("v1=", "v0=")
    with pytest.raises(WebhookSignatureError, match="no v1"):
        verify_stripe_signature(BODY, f"t={T},{v0_only}", SECRET, now=NOW)


@pytest.mark.parametrize(
    ("offset", "ok"), [(0, True), (300, True), (-300, True), (301, False), (-301, False)]
)
def test_the_timestamp_must_be_within_300_seconds_either_side(offset, ok):
    """offset > 0: the request is old (a replay); offset < 0: it claims to be from the future."""
    header = sign_stripe_payload(BODY, SECRET, timestamp=T)
    now = NOW + timedelta(seconds=offset)
    if ok:
        verify_stripe_signature(BODY, header, SECRET, now=now)
    else:
        with pytest.raises(WebhookSignatureError, match="tolerance"):
            verify_stripe_signature(BODY, header, SECRET, now=now)


@pytest.mark.parametrize(
    "header",
    [
        "",
        None,
        "garbage",
        f"t={T}",
        "v1=abc",
        f"t=abc,v1={'0' * 64}",
        f"t={T},t={T},v1={'0' * 64}",
        f"t=-{T},v1={'0' * 64}",
        f"t={T},v1=ü{'0' * 63}",
        f"t={T};v1={'0' * 64}",
    ],
)
def test_malformed_or_missing_headers_are_refused(header):
    with pytest.raises(WebhookSignatureError):
        verify_stripe_signature(BODY, header, SECRET, now=NOW)


@settings(max_examples=60, deadline=None)
@given(position=st.integers(min_value=0, max_value=len(BODY) - 1), flip=st.integers(1, 255))
def test_changing_any_byte_of_the_body_breaks_the_signature(position, flip):
    header = sign_stripe_payload(BODY, SECRET, timestamp=T)
    changed = bytearray(BODY)
    changed[position] ^= flip
    with pytest.raises(WebhookSignatureError):
        verify_stripe_signature(bytes(changed), header, SECRET, now=NOW)


# --- webhook events ------------------------------------------------------------------------------


def deliver(name: str, *, secret: str = SECRET, headers: dict[str, str] | None = None):
    body = (DATA / f"{name}.json").read_bytes()
    created = json.loads(body)["created"]
    sent = {"stripe-signature": sign_stripe_payload(body, secret, timestamp=created)}
    return (
        Replay()
        .provider()
        .verify_webhook(
            body=body,
            headers=sent if headers is None else headers,
            now=datetime.fromtimestamp(created + 5, UTC),
        )
    )


@pytest.mark.parametrize(
    ("name", "kind", "intent", "amount", "refund", "reason"),
    [
        ("event_payment_intent_succeeded", "payment.succeeded", PI, 2550, None, None),
        (
            "event_payment_intent_payment_failed",
            "payment.failed",
            PI,
            2550,
            None,
            "insufficient_funds: Your card has insufficient funds.",
        ),
        ("event_payment_intent_processing", "payment.processing", PI, 2550, None, None),
        ("event_payment_intent_canceled", "payment.canceled", PI, 2550, None, None),
        ("event_refund_updated", "refund.succeeded", PI, 1000, "re_3QmZ8kLkdIwHu7ix1Ro9Kd2F", None),
        (
            "event_refund_failed",
            "refund.failed",
            PI,
            1000,
            "re_3QmZ8kLkdIwHu7ix1Ro9Kd2F",
            "expired_or_canceled_card",
        ),
        # a refund still pending is not acted on: its final refund.updated follows
        ("event_refund_created_pending", "ignored", PI, 1000, "re_3QmZ8kLkdIwHu7ix1Ro9Kd2F", None),
        ("event_charge_refunded", "ignored", PI, None, None, None),
        ("event_customer_created", "ignored", None, None, None, None),
    ],
)
def test_verified_events_are_parsed_into_our_kinds(name, kind, intent, amount, refund, reason):
    event = deliver(name)
    raw = recorded(name)
    assert event.event_id == raw["id"]
    assert event.kind == kind
    assert event.intent_provider_ref == intent
    assert event.amount == amount
    assert event.currency == ("EUR" if amount is not None else None)
    assert event.refund_provider_ref == refund
    assert event.failure_reason == reason
    assert event.occurred_at == datetime.fromtimestamp(raw["created"], UTC)
    assert event.raw == raw


def test_verify_webhook_refuses_a_missing_header_and_a_wrong_secret():
    with pytest.raises(WebhookSignatureError, match="missing"):
        deliver("event_payment_intent_succeeded", headers={})
    with pytest.raises(WebhookSignatureError):
        deliver("event_payment_intent_succeeded", secret="whsec_forged")


def test_verify_webhook_refuses_a_replay_after_300_seconds():
    body = (DATA / "event_payment_intent_succeeded.json").read_bytes()
    headers = {"stripe-signature": sign_stripe_payload(body, SECRET, timestamp=T)}
    provider = Replay().provider()
    assert provider.verify_webhook(body=body, headers=headers, now=NOW).kind == "payment.succeeded"
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        provider.verify_webhook(body=body, headers=headers, now=NOW + timedelta(seconds=301))


@pytest.mark.parametrize("body", [b"not json", b"[1, 2]", b'{"id": "evt_1", "type": "x"}'])
def test_a_signed_body_that_is_not_an_event_is_refused(body):
    headers = {"stripe-signature": sign_stripe_payload(body, SECRET, timestamp=T)}
    with pytest.raises(WebhookSignatureError):
        Replay().provider().verify_webhook(body=body, headers=headers, now=NOW)


# --- refunds listed for reconciliation ---------------------------------------------------------


def test_list_refunds_follows_pages_and_returns_oldest_first():
    replay = Replay(
        answer("GET", "/v1/refunds", recorded("refund_list_page1")),
        answer("GET", "/v1/refunds", recorded("refund_list_page2")),
    )
    refunds = replay.provider().list_refunds(PI)
    first, second = replay.requests
    assert dict(first.url.params) == {"payment_intent": PI, "limit": "100"}
    assert dict(second.url.params) == {
        "payment_intent": PI,
        "limit": "100",
        "starting_after": "re_3QmZ8kLkdIwHu7ix1Ro9Kd2F",
    }
    assert [(r.provider_ref, r.amount, r.status) for r in refunds] == [
        ("re_3QmZ8kLkdIwHu7ix1Ab1Cd2E", 300, "succeeded"),
        ("re_3QmZ8kLkdIwHu7ix1Ro9Kd2F", 1000, "succeeded"),
        ("re_3QmZ8kLkdIwHu7ix1Sx2Lm7G", 500, "pending"),
    ]
    assert {r.intent_provider_ref for r in refunds} == {PI}
