"""The Razorpay adapter against recorded Razorpay replies (tests/data/providers/razorpay),
replayed through httpx.MockTransport: the exact requests we send, how orders and payments map
to our types, errors, and X-Razorpay-Signature verification. No network, no database."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx
import pytest

from potluck.payments.providers.base import (
    IntentStatus,
    PaymentProvider,
    ProviderError,
    WebhookSignatureError,
)
from potluck.payments.providers.razorpay import (
    RazorpayProvider,
    sign_razorpay_payload,
    verify_razorpay_signature,
)

DATA = Path(__file__).parent.parent / "data" / "providers" / "razorpay"
KEY_ID = "rzp_test_PQa1Bb2Cc3Dd4E"
KEY_SECRET = "Xk9vT2mQpL7sR4wZ8nB1cD6f"
SECRET = "potluck-razorpay-webhook-secret"
ORDER = "order_PQx7Lm2Kd9TbVe"
CAPTURED_PAYMENT = "pay_PQx9Jk5Lm6NoPq"
OUR_INTENT = "pi_01JDB3Y6Q0ZK4W8T2V5N7R9M1C"
OUR_REFUND = "rf_01JDB4A1B2C3D4E5F6G7H8J9K0"


def recorded(name: str) -> dict:
    return json.loads((DATA / f"{name}.json").read_text())


class Replay:
    """A MockTransport answering (method, path) with recorded bodies, in order, and keeping
    every request it saw."""

    def __init__(self, *answers: tuple[str, str, int, dict | str]):
        self.answers = list(answers)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        assert self.answers, f"unexpected request {request.method} {request.url}"
        method, path, status, body = self.answers.pop(0)
        assert (request.method, request.url.path) == (method, path)
        content = body if isinstance(body, str) else json.dumps(body)
        return httpx.Response(status, content=content.encode())

    def provider(self) -> RazorpayProvider:
        return RazorpayProvider(
            key_id=KEY_ID,
            key_secret=KEY_SECRET,
            webhook_secret=SECRET,
            transport=httpx.MockTransport(self),
        )


def answer(method, path, body, status=200):
    return (method, path, status, body)


BASIC = "Basic " + base64.b64encode(f"{KEY_ID}:{KEY_SECRET}".encode()).decode()


def test_the_adapter_satisfies_the_interface():
    provider: PaymentProvider = Replay().provider()
    assert provider.name == "razorpay"
    assert Replay().provider().key_id == KEY_ID


# --- create ----------------------------------------------------------------------------------


def create(provider: RazorpayProvider, amount: int = 49900, currency: str = "INR"):
    return provider.create_intent(
        intent_id=OUR_INTENT,
        amount=amount,
        currency=currency,
        description="Potluck order ord_01JDB3XZ1",
        metadata={"order_id": "ord_01JDB3XZ1"},
    )


def test_create_looks_the_receipt_up_then_posts_an_order_with_basic_auth():
    replay = Replay(
        answer("GET", "/v1/orders", recorded("orders_by_receipt_empty")),
        answer("POST", "/v1/orders", recorded("order_created")),
    )
    intent = create(replay.provider(), currency="inr")
    lookup, post = replay.requests
    assert str(lookup.url) == f"https://api.razorpay.com/v1/orders?receipt={OUR_INTENT}"
    assert lookup.headers["authorization"] == BASIC
    assert post.headers["authorization"] == BASIC
    assert post.headers["content-type"] == "application/json"
    assert json.loads(post.content) == {
        "amount": 49900,
        "currency": "INR",
        "receipt": OUR_INTENT,
        "notes": {
            "order_id": "ord_01JDB3XZ1",
            "description": "Potluck order ord_01JDB3XZ1",
            "potluck_intent_id": OUR_INTENT,
        },
    }
    assert intent.provider_ref == ORDER
    assert intent.status is IntentStatus.REQUIRES_PAYMENT
    assert (intent.amount, intent.currency, intent.captured_amount) == (49900, "INR", 0)
    assert intent.raw_status == "created"
    assert intent.payment_url is None


def test_a_retried_create_returns_the_order_already_made_for_the_receipt():
    replay = Replay(answer("GET", "/v1/orders", recorded("orders_by_receipt_found")))
    intent = create(replay.provider())
    assert [r.method for r in replay.requests] == ["GET"]  # no second order
    assert intent.provider_ref == ORDER
    assert intent.status is IntentStatus.REQUIRES_PAYMENT


def test_a_retried_create_of_an_order_already_paid_reports_it_paid():
    found = recorded("orders_by_receipt_found")
    found["items"][0] = recorded("order_paid")
    replay = Replay(
        answer("GET", "/v1/orders", found),
        answer("GET", f"/v1/orders/{ORDER}", recorded("order_paid")),
        answer("GET", f"/v1/orders/{ORDER}/payments", recorded("order_payments_captured")),
    )
    intent = create(replay.provider())
    assert intent.status is IntentStatus.SUCCEEDED
    assert intent.captured_amount == 49900


def test_a_receipt_reused_with_another_amount_is_refused():
    replay = Replay(answer("GET", "/v1/orders", recorded("orders_by_receipt_found")))
    with pytest.raises(ProviderError) as caught:
        create(replay.provider(), amount=50000)
    assert (caught.value.code, caught.value.retryable) == ("idempotency_conflict", False)
    assert len(replay.requests) == 1


def test_an_intent_id_longer_than_a_receipt_is_refused_before_any_request():
    replay = Replay()
    with pytest.raises(ProviderError) as caught:
        replay.provider().create_intent(
            intent_id="x" * 41, amount=100, currency="INR", description="", metadata={}
        )
    assert caught.value.code == "invalid_reference"
    assert replay.requests == []


# --- retrieve and cancel ------------------------------------------------------------------------


def test_retrieve_of_a_fresh_order_reads_only_the_order():
    replay = Replay(answer("GET", f"/v1/orders/{ORDER}", recorded("order_created")))
    intent = replay.provider().retrieve_intent(ORDER)
    assert len(replay.requests) == 1
    assert replay.requests[0].headers["authorization"] == BASIC
    assert intent.status is IntentStatus.REQUIRES_PAYMENT
    assert intent.failure_reason is None


@pytest.mark.parametrize(
    ("order", "payments", "status", "captured", "reason"),
    [
        (
            "order_attempted",
            "order_payments_failed",
            IntentStatus.REQUIRES_PAYMENT,
            0,
            "incorrect_pin: Payment was unsuccessful as you may have entered an incorrect UPI PIN.",
        ),
        ("order_attempted", "order_payments_authorized", IntentStatus.PROCESSING, 0, None),
        ("order_paid", "order_payments_captured", IntentStatus.SUCCEEDED, 49900, None),
    ],
)
def test_retrieve_reads_the_order_and_its_payments(order, payments, status, captured, reason):
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}", recorded(order)),
        answer("GET", f"/v1/orders/{ORDER}/payments", recorded(payments)),
    )
    intent = replay.provider().retrieve_intent(ORDER)
    assert (intent.status, intent.captured_amount, intent.failure_reason) == (
        status,
        captured,
        reason,
    )
    assert intent.raw_status == recorded(order)["status"]


def test_an_order_paid_and_since_refunded_is_still_succeeded():
    payments = recorded("order_payments_captured")
    payments["items"][0] |= {"status": "refunded", "amount_refunded": 49900}
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}", recorded("order_paid")),
        answer("GET", f"/v1/orders/{ORDER}/payments", payments),
    )
    intent = replay.provider().retrieve_intent(ORDER)
    assert (intent.status, intent.captured_amount) == (IntentStatus.SUCCEEDED, 49900)


def test_cancel_of_an_unpaid_order_is_local_and_sends_nothing_but_a_read():
    replay = Replay(answer("GET", f"/v1/orders/{ORDER}", recorded("order_created")))
    intent = replay.provider().cancel_intent(ORDER)
    assert intent.status is IntentStatus.CANCELED
    assert [r.method for r in replay.requests] == ["GET"]


def test_cancel_of_a_paid_order_returns_its_real_state():
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}", recorded("order_paid")),
        answer("GET", f"/v1/orders/{ORDER}/payments", recorded("order_payments_captured")),
    )
    intent = replay.provider().cancel_intent(ORDER)
    assert intent.status is IntentStatus.SUCCEEDED


def test_cancel_of_an_authorised_payment_is_not_canceled():
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}", recorded("order_attempted")),
        answer("GET", f"/v1/orders/{ORDER}/payments", recorded("order_payments_authorized")),
    )
    assert replay.provider().cancel_intent(ORDER).status is IntentStatus.PROCESSING


# --- refund ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status"), [("refund_processed", "succeeded"), ("refund_pending", "pending")]
)
def test_refund_finds_the_captured_payment_and_refunds_it_idempotently(name, status):
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}/payments", recorded("order_payments_captured")),
        answer("POST", f"/v1/payments/{CAPTURED_PAYMENT}/refund", recorded(name)),
    )
    refund = replay.provider().refund(
        refund_id=OUR_REFUND, intent_provider_ref=ORDER, amount=10000, currency="INR"
    )
    _, post = replay.requests
    assert post.headers["x-refund-idempotency"] == OUR_REFUND
    assert post.headers["authorization"] == BASIC
    assert json.loads(post.content) == {
        "amount": 10000,
        "receipt": OUR_REFUND,
        "notes": {"potluck_refund_id": OUR_REFUND},
    }
    assert refund.provider_ref == "rfnd_PQy1Rs7Tu8VwXy"
    assert refund.intent_provider_ref == ORDER
    assert (refund.amount, refund.currency, refund.status) == (10000, "INR", status)


def test_a_retried_refund_goes_to_the_same_payment_even_once_it_is_fully_refunded():
    payments = recorded("order_payments_captured")
    payments["items"][0] |= {"status": "refunded", "amount_refunded": 49900}
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}/payments", payments),
        answer("POST", f"/v1/payments/{CAPTURED_PAYMENT}/refund", recorded("refund_processed")),
    )
    replay.provider().refund(
        refund_id=OUR_REFUND, intent_provider_ref=ORDER, amount=49900, currency="INR"
    )
    assert replay.requests[1].headers["x-refund-idempotency"] == OUR_REFUND


def test_refund_of_an_order_without_a_captured_payment_is_refused_before_posting():
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}/payments", recorded("order_payments_authorized"))
    )
    with pytest.raises(ProviderError) as caught:
        replay.provider().refund(
            refund_id=OUR_REFUND, intent_provider_ref=ORDER, amount=100, currency="INR"
        )
    assert (caught.value.code, caught.value.retryable) == ("no_captured_payment", False)
    assert len(replay.requests) == 1


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "status", "code", "retryable", "message"),
    [
        (
            "error_bad_request",
            400,
            "BAD_REQUEST_ERROR",
            False,
            "The refund amount provided is greater than amount captured"
            " (reason=input_validation_failed)",
        ),
        ("error_auth", 401, "BAD_REQUEST_ERROR", False, "Authentication failed"),
        (
            "error_server",
            500,
            "SERVER_ERROR",
            True,
            "We are facing some trouble completing your request at the moment."
            " Please try again shortly.",
        ),
        ("error_server", 502, "SERVER_ERROR", True, None),
        ("error_bad_request", 429, "BAD_REQUEST_ERROR", True, None),
    ],
)
def test_razorpay_errors_become_typed_provider_errors(name, status, code, retryable, message):
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}/payments", recorded("order_payments_captured")),
        answer("POST", f"/v1/payments/{CAPTURED_PAYMENT}/refund", recorded(name), status),
    )
    with pytest.raises(ProviderError) as caught:
        replay.provider().refund(
            refund_id=OUR_REFUND, intent_provider_ref=ORDER, amount=60000, currency="INR"
        )
    error = caught.value
    assert (error.code, error.retryable, error.http_status, error.provider) == (
        code,
        retryable,
        status,
        "razorpay",
    )
    if message is not None:
        assert error.message == message


def test_an_unknown_order_is_a_non_retryable_error():
    replay = Replay(answer("GET", "/v1/orders/order_Nope", recorded("error_not_found"), 400))
    with pytest.raises(ProviderError) as caught:
        replay.provider().retrieve_intent("order_Nope")
    assert (caught.value.code, caught.value.retryable) == ("BAD_REQUEST_ERROR", False)
    assert "does not exist" in caught.value.message


@pytest.mark.parametrize(
    ("exc", "code"),
    [
        (httpx.ConnectTimeout("timed out"), "timeout"),
        (httpx.RemoteProtocolError("eof"), "network_error"),
    ],
)
def test_timeouts_and_network_errors_are_retryable(exc, code):
    def handler(request: httpx.Request) -> httpx.Response:
        raise exc

    provider = RazorpayProvider(
        key_id=KEY_ID,
        key_secret=KEY_SECRET,
        webhook_secret=SECRET,
        transport=httpx.MockTransport(handler),
    )
    with pytest.raises(ProviderError) as caught:
        create(provider)
    assert (caught.value.code, caught.value.retryable) == (code, True)


@pytest.mark.parametrize("ref", ["order_1/payments", "../v1/payments", "order 1", ""])
def test_a_reference_that_is_not_an_id_never_reaches_the_url(ref):
    replay = Replay()
    with pytest.raises(ProviderError) as caught:
        replay.provider().retrieve_intent(ref)
    assert caught.value.code == "invalid_reference"
    assert replay.requests == []


# --- webhook signatures ------------------------------------------------------------------------

BODY = (DATA / "event_payment_captured.json").read_bytes()
CREATED = json.loads(BODY)["created_at"]
NOW = datetime.fromtimestamp(CREATED, UTC)


def test_a_valid_signature_passes_and_is_the_hex_hmac_of_the_raw_body():
    signature = sign_razorpay_payload(BODY, SECRET)
    assert signature == hmac.new(SECRET.encode(), BODY, hashlib.sha256).hexdigest()
    verify_razorpay_signature(BODY, signature, SECRET, now=NOW)


def test_a_tampered_body_is_refused():
    signature = sign_razorpay_payload(BODY, SECRET)
    tampered = BODY.replace(b'"amount": 49900', b'"amount": 99900', 1)
    assert tampered != BODY
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_razorpay_signature(tampered, signature, SECRET, now=NOW)


def test_re_serialised_json_is_not_the_signed_body():
    signature = sign_razorpay_payload(BODY, SECRET)
    reserialised = json.dumps(json.loads(BODY)).encode()
    with pytest.raises(WebhookSignatureError):
        verify_razorpay_signature(reserialised, signature, SECRET, now=NOW)


def test_a_wrong_secret_is_refused():
    with pytest.raises(WebhookSignatureError, match="does not match"):
        verify_razorpay_signature(BODY, sign_razorpay_payload(BODY, "forged"), SECRET, now=NOW)


@pytest.mark.parametrize("header", [None, "", "not-hex", "0" * 64, "ü" * 64, "sha256=abc"])
def test_missing_or_malformed_signatures_are_refused(header):
    with pytest.raises(WebhookSignatureError):
        verify_razorpay_signature(BODY, header, SECRET, now=NOW)


@pytest.mark.parametrize(
    ("offset", "ok"), [(0, True), (300, True), (-300, True), (301, False), (-301, False)]
)
def test_created_at_must_be_within_300_seconds_either_side(offset, ok):
    signature = sign_razorpay_payload(BODY, SECRET)
    now = NOW + timedelta(seconds=offset)
    if ok:
        verify_razorpay_signature(BODY, signature, SECRET, now=now)
    else:
        with pytest.raises(WebhookSignatureError, match="tolerance"):
            verify_razorpay_signature(BODY, signature, SECRET, now=now)


@pytest.mark.parametrize(
    "body", [b"not json", b"[]", b'{"event": "payment.captured"}', b'{"created_at": "1795262605"}']
)
def test_a_signed_body_without_a_usable_created_at_is_refused(body):
    with pytest.raises(WebhookSignatureError):
        verify_razorpay_signature(body, sign_razorpay_payload(body, SECRET), SECRET, now=NOW)


# --- webhook events ------------------------------------------------------------------------------


def deliver(name: str, *, event_id: str | None = "evt_PQz9Hh8Gg7Ff6E", secret: str = SECRET):
    body = (DATA / f"{name}.json").read_bytes()
    headers = {"x-razorpay-signature": sign_razorpay_payload(body, secret)}
    if event_id is not None:
        headers["x-razorpay-event-id"] = event_id
    created = json.loads(body)["created_at"]
    return (
        Replay()
        .provider()
        .verify_webhook(body=body, headers=headers, now=datetime.fromtimestamp(created + 2, UTC))
    )


@pytest.mark.parametrize(
    ("name", "kind", "amount", "refund", "reason"),
    [
        ("event_payment_captured", "payment.succeeded", 49900, None, None),
        ("event_order_paid", "payment.succeeded", 49900, None, None),
        ("event_payment_authorized", "payment.processing", 49900, None, None),
        (
            "event_payment_failed",
            "payment.failed",
            49900,
            None,
            "incorrect_pin: Payment was unsuccessful as you may have entered an incorrect UPI PIN.",
        ),
        ("event_refund_processed", "refund.succeeded", 10000, "rfnd_PQy1Rs7Tu8VwXy", None),
        ("event_refund_failed", "refund.failed", 10000, "rfnd_PQy1Rs7Tu8VwXy", None),
        ("event_payment_dispute_created", "ignored", None, None, None),
    ],
)
def test_verified_events_are_parsed_into_our_kinds(name, kind, amount, refund, reason):
    event = deliver(name)
    raw = recorded(name)
    assert event.event_id == "evt_PQz9Hh8Gg7Ff6E"  # from the header, Razorpay's dedupe id
    assert event.kind == kind
    assert event.intent_provider_ref == ORDER  # the order id, not the payment id
    assert event.amount == amount
    assert event.currency == ("INR" if amount is not None else None)
    assert event.refund_provider_ref == refund
    assert event.failure_reason == reason
    assert event.occurred_at == datetime.fromtimestamp(raw["created_at"], UTC)
    assert event.raw == raw


def test_verify_webhook_refuses_forged_and_unidentified_events():
    with pytest.raises(WebhookSignatureError):
        deliver("event_payment_captured", secret="forged")
    with pytest.raises(WebhookSignatureError, match="Event-Id"):
        deliver("event_payment_captured", event_id=None)
    with pytest.raises(WebhookSignatureError, match="missing"):
        Replay().provider().verify_webhook(body=BODY, headers={}, now=NOW)


def test_verify_webhook_refuses_a_replay_after_300_seconds():
    headers = {
        "x-razorpay-signature": sign_razorpay_payload(BODY, SECRET),
        "x-razorpay-event-id": "evt_PQz9Hh8Gg7Ff6E",
    }
    provider = Replay().provider()
    assert provider.verify_webhook(body=BODY, headers=headers, now=NOW).kind == "payment.succeeded"
    with pytest.raises(WebhookSignatureError, match="tolerance"):
        provider.verify_webhook(body=BODY, headers=headers, now=NOW + timedelta(seconds=301))


# --- refunds listed for reconciliation ---------------------------------------------------------


def test_list_refunds_reads_the_captured_payments_refunds_oldest_first():
    replay = Replay(
        answer("GET", f"/v1/orders/{ORDER}/payments", recorded("order_payments_captured")),
        answer("GET", f"/v1/payments/{CAPTURED_PAYMENT}/refunds", recorded("payment_refunds")),
    )
    refunds = replay.provider().list_refunds(ORDER)
    assert len(replay.requests) == 2  # the failed payment has no refunds to ask about
    assert dict(replay.requests[1].url.params) == {"count": "100"}
    assert [(r.provider_ref, r.amount, r.status, r.intent_provider_ref) for r in refunds] == [
        ("rfnd_PQy2Ab3Cd4Ef5G", 5000, "succeeded", ORDER),
        ("rfnd_PQy1Rs7Tu8VwXy", 10000, "succeeded", ORDER),
    ]
