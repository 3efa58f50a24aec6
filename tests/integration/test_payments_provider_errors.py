"""A provider that fails or refuses: a clear problem, nothing of ours changed, safe to retry."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from potluck.api.app import create_app
from potluck.payments.models import PaymentIntent
from potluck.payments.providers.base import ProviderError
from tests.integration.test_marketplace_helpers import platform_headers


class _FailingProvider:
    name = "sandbox"

    def __init__(self, error: ProviderError) -> None:
        self.error = error

    def __getattr__(self, _name: str) -> Any:
        def _fail(*_args: Any, **_kwargs: Any) -> Any:
            raise self.error

        return _fail


@pytest.mark.parametrize(
    ("error", "status", "code"),
    [
        (
            ProviderError("timeout", "no answer in 10 s", retryable=True, provider="stripe"),
            503,
            "provider_unavailable",
        ),
        (
            ProviderError("card_declined", "declined", retryable=False, provider="stripe"),
            502,
            "provider_refused",
        ),
    ],
)
def test_a_provider_failure_is_a_problem_and_stores_nothing(potluck, error, status, code):
    _, headers = platform_headers(potluck, "Acme")
    potluck.providers["sandbox"] = _FailingProvider(error)
    body = {"amount": 1_000, "currency": "EUR", "payer": "ann@example.com", "purpose": "order"}
    with TestClient(create_app(potluck), raise_server_exceptions=False) as client:
        r = client.post(
            "/v1/payment-intents", json=body, headers=headers | {"Idempotency-Key": "k-1"}
        )
        assert r.status_code == status, r.text
        assert r.headers["content-type"].startswith("application/problem+json")
        assert r.json()["code"] == code
        assert (r.headers.get("retry-after") == "5") is (status == 503)
        with potluck.db.read() as s:
            assert s.scalar(select(func.count()).select_from(PaymentIntent)) == 0
        # The failure was not kept for the key: once the provider answers, the retry works.
        del potluck.providers["sandbox"]
        from potluck.payments.providers import make_providers

        potluck.providers.update(make_providers(potluck.settings, potluck.db, potluck.clock))
        again = client.post(
            "/v1/payment-intents", json=body, headers=headers | {"Idempotency-Key": "k-1"}
        )
        assert again.status_code == 201, again.text
