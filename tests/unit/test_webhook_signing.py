"""Webhook signatures: what Potluck signs, and what a receiving platform verifies."""

from __future__ import annotations

import hashlib
import hmac
from datetime import UTC, datetime

from potluck.notify.signing import (
    compute_signature,
    new_secret,
    parse_header,
    sign,
    verify_signature,
)

SECRET = "whsec_test_secret"
BODY = b'{"data":{"amount":1250,"currency":"EUR"},"id":"evt_1","type":"payout.completed"}'
T = 1_767_225_600  # 2026-01-01T00:00:00Z


def test_header_is_t_and_v1_hex_hmac_of_t_dot_body():
    header = sign(SECRET, BODY, timestamp=T)
    expected = hmac.new(SECRET.encode(), f"{T}.".encode() + BODY, hashlib.sha256).hexdigest()
    assert header == f"t={T},v1={expected}"
    assert compute_signature(SECRET, T, BODY.decode()) == expected  # str and bytes agree


def test_a_correct_signature_verifies_within_the_tolerance():
    header = sign(SECRET, BODY, timestamp=T)
    assert verify_signature(SECRET, header, BODY, now=T)
    assert verify_signature(SECRET, header, BODY, now=T + 300)
    assert verify_signature(SECRET, header, BODY, now=datetime(2026, 1, 1, 0, 4, tzinfo=UTC))


def test_tampered_body_fails():
    header = sign(SECRET, BODY, timestamp=T)
    assert not verify_signature(SECRET, header, BODY.replace(b"1250", b"9250"), now=T)
    assert not verify_signature(SECRET, header, BODY + b" ", now=T)


def test_wrong_secret_fails():
    header = sign(SECRET, BODY, timestamp=T)
    assert not verify_signature("whsec_other", header, BODY, now=T)


def test_old_or_future_timestamp_fails():
    header = sign(SECRET, BODY, timestamp=T)
    assert not verify_signature(SECRET, header, BODY, now=T + 301)
    assert not verify_signature(SECRET, header, BODY, now=T - 301)
    assert verify_signature(SECRET, header, BODY, tolerance_seconds=3600, now=T + 3000)


def test_changed_timestamp_fails_even_when_fresh():
    header = sign(SECRET, BODY, timestamp=T).replace(f"t={T}", f"t={T + 10}")
    assert not verify_signature(SECRET, header, BODY, now=T + 10)


def test_malformed_or_missing_headers_fail():
    for header in (None, "", "v1=abc", f"t={T}", f"t=soon,v1={'0' * 64}", "garbage", f"t={T},v0=x"):
        assert not verify_signature(SECRET, header, BODY, now=T), header


def test_any_of_several_v1_signatures_may_match():
    good = compute_signature(SECRET, T, BODY)
    header = f"t={T},v1={'0' * 64},v1={good}"
    assert parse_header(header) == (T, ["0" * 64, good])
    assert verify_signature(SECRET, header, BODY, now=T)


def test_new_secrets_are_prefixed_and_unique():
    a, b = new_secret(), new_secret()
    assert a.startswith("whsec_")
    assert b.startswith("whsec_")
    assert a != b
    assert len(a) > 40


def test_the_verification_snippet_in_the_api_docs_agrees_with_the_signer():
    import time
    from pathlib import Path

    docs = (Path(__file__).parents[2] / "docs" / "api.md").read_text()
    section = docs.split("## Webhooks", 1)[1]
    snippet = section.split("```python\n", 1)[1].split("```", 1)[0]
    namespace: dict = {}
    exec(snippet, namespace)  # noqa: S102 (our own documentation)
    documented = namespace["verify_signature"]
    now = int(time.time())
    header = sign(SECRET, BODY, timestamp=now)
    assert documented(SECRET, header, BODY)
    assert not documented("whsec_other", header, BODY)
    assert not documented(SECRET, header, BODY + b"x")
    assert not documented(SECRET, sign(SECRET, BODY, timestamp=now - 301), BODY)
