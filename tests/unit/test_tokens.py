"""Access tokens: only HS256 with our key, only within [iat, exp) of the given clock."""

import base64
import json
from datetime import UTC, datetime, timedelta

import jwt
import pytest

from potluck.identity.tokens import decode_access_token, encode_access_token

KEY = "unit-test-key-" + "k" * 64  # long enough for every HMAC size
NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def _b64(data: dict) -> str:
    return base64.urlsafe_b64encode(json.dumps(data).encode()).rstrip(b"=").decode()


def _token(**overrides):
    return encode_access_token(key=KEY, user_id="usr_1", now=NOW, ttl_seconds=60, **overrides)


def _claims(**extra):
    base = {"sub": "usr_1", "typ": "access", "iat": int(NOW.timestamp())}
    base["exp"] = base["iat"] + 60
    base.update(extra)
    return base


def test_round_trip_within_lifetime():
    token = _token()
    assert decode_access_token(token, key=KEY, now=NOW) == "usr_1"
    assert decode_access_token(token, key=KEY, now=NOW + timedelta(seconds=59)) == "usr_1"


def test_expires_exactly_at_exp_with_no_leeway():
    token = _token()
    assert decode_access_token(token, key=KEY, now=NOW + timedelta(seconds=60)) is None
    assert decode_access_token(token, key=KEY, now=NOW + timedelta(days=1)) is None


def test_time_comes_from_the_given_clock_not_the_machine():
    # issued in 2026 with a 60 s lifetime: real time does not matter, only ``now``
    old = encode_access_token(
        key=KEY, user_id="usr_1", now=datetime(2001, 1, 1, tzinfo=UTC), ttl_seconds=60
    )
    assert decode_access_token(old, key=KEY, now=datetime(2001, 1, 1, 0, 0, 30, tzinfo=UTC))
    assert decode_access_token(old, key=KEY, now=NOW) is None


def test_issued_in_the_future_is_refused():
    assert decode_access_token(_token(), key=KEY, now=NOW - timedelta(seconds=1)) is None


def test_alg_none_is_refused():
    unsigned = f"{_b64({'alg': 'none', 'typ': 'JWT'})}.{_b64(_claims())}."
    assert decode_access_token(unsigned, key=KEY, now=NOW) is None


@pytest.mark.parametrize("alg", ["HS384", "HS512"])
def test_other_algorithms_are_refused(alg):
    token = jwt.encode(_claims(), KEY, algorithm=alg)
    assert decode_access_token(token, key=KEY, now=NOW) is None


def test_wrong_key_is_refused():
    token = jwt.encode(_claims(), "another-key-that-is-long-enough-for-hs256", algorithm="HS256")
    assert decode_access_token(token, key=KEY, now=NOW) is None


def test_tampered_payload_is_refused():
    header, _, signature = _token().split(".")
    forged = f"{header}.{_b64(_claims(sub='usr_admin'))}.{signature}"
    assert decode_access_token(forged, key=KEY, now=NOW) is None


def test_tampered_signature_is_refused():
    token = _token()
    last = "A" if token[-1] != "A" else "B"
    assert decode_access_token(token[:-1] + last, key=KEY, now=NOW) is None


@pytest.mark.parametrize("missing", ["exp", "iat", "sub", "typ"])
def test_every_claim_is_required(missing):
    claims = _claims()
    del claims[missing]
    assert decode_access_token(jwt.encode(claims, KEY, algorithm="HS256"), key=KEY, now=NOW) is None


@pytest.mark.parametrize(
    "bad",
    [
        {"typ": "refresh"},
        {"sub": 42},
        {"sub": ""},
        {"exp": "tomorrow"},
        {"exp": True},
        {"exp": float(NOW.timestamp() + 60)},
        {"nbf": int(NOW.timestamp()) + 10},
    ],
)
def test_mistyped_or_foreign_claims_are_refused(bad):
    token = jwt.encode(_claims(**bad), KEY, algorithm="HS256")
    assert decode_access_token(token, key=KEY, now=NOW) is None


@pytest.mark.parametrize("garbage", ["", "x", "a.b.c", "sk_nope", "e30.e30.", "a" * 5000])
def test_garbage_is_refused(garbage):
    assert decode_access_token(garbage, key=KEY, now=NOW) is None
