"""Wallets' input checks and the client id taken from an Idempotency-Key (no I/O)."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from potluck.errors import DomainError
from potluck.ledger.service import CLIENT_ID_PATTERN, MAX_AMOUNT
from potluck.wallets import service
from potluck.wallets.api import _client_id


@pytest.mark.parametrize(
    ("amount", "currency", "code"),
    [
        (12.5, "EUR", "invalid_amount"),
        ("100", "EUR", "invalid_amount"),
        (True, "EUR", "invalid_amount"),
        (0, "EUR", "invalid_amount"),
        (-1, "EUR", "invalid_amount"),
        (MAX_AMOUNT + 1, "EUR", "invalid_amount"),
        (100, "XXX1", "invalid_currency"),
        (100, "eur", "invalid_currency"),
    ],
)
def test_bad_amounts_and_currencies_are_refused(amount, currency, code):
    with pytest.raises(DomainError) as e:
        service.check_amount(amount, currency)
    assert e.value.code == code


def test_good_amounts_pass():
    service.check_amount(1, "EUR")
    service.check_amount(MAX_AMOUNT, "JPY")


@given(st.text(min_size=1, max_size=300))
def test_any_idempotency_key_makes_a_valid_stable_client_id(key):
    client_id = _client_id(key)
    assert client_id is not None
    assert CLIENT_ID_PATTERN.match(client_id)
    assert client_id == _client_id(key)
    assert _client_id(key + "x") != client_id


def test_no_key_no_client_id():
    assert _client_id(None) is None
    assert _client_id("") is None
