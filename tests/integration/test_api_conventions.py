"""API conventions over HTTP: request ids, logs, ops endpoints, metrics, problem+json, OpenAPI."""

from __future__ import annotations

import json
import logging
import re

import pytest
from fastapi.testclient import TestClient

from potluck.api.app import create_app
from potluck.bootstrap import bootstrap
from potluck.db import Database, make_engine
from potluck.identity import service as identity

PROBLEM = "application/problem+json"
ACCOUNT = {"currency": "EUR", "code": "wallet"}


@pytest.fixture
def app(potluck):
    return create_app(potluck)


@pytest.fixture
def client(app):
    with TestClient(app) as c:
        yield c


@pytest.fixture
def acme(potluck):
    _, secret = identity.create_platform(potluck, name="Acme")
    return {"Authorization": f"Bearer {secret}"}


def two_accounts(client, headers):
    return [client.post("/v1/accounts", json=ACCOUNT, headers=headers).json()["id"] for _ in "ab"]


def assert_problem(r, status, code):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == PROBLEM
    body = r.json()
    assert body["status"] == status
    assert body["code"] == code
    assert {"type", "title", "detail"} <= body.keys()
    return body


# --- request ids and access logs ---------------------------------------------------------


def test_request_id_is_made_echoed_or_replaced(client):
    made = client.get("/healthz").headers["X-Request-Id"]
    assert re.fullmatch(r"[0-9a-f]{32}", made)
    assert client.get("/healthz").headers["X-Request-Id"] != made
    sane = "trace-01HZX.abc:42"
    assert client.get("/healthz", headers={"X-Request-Id": sane}).headers["X-Request-Id"] == sane
    for insane in ("has space", "x" * 129, 'quote"d'):
        echoed = client.get("/healthz", headers={"X-Request-Id": insane}).headers["X-Request-Id"]
        assert echoed != insane
        assert re.fullmatch(r"[0-9a-f]{32}", echoed)


def test_errors_carry_the_request_id_too(client, acme):
    r = client.get("/v1/accounts/acc_missing", headers={**acme, "X-Request-Id": "req-404"})
    assert r.status_code == 404
    assert r.headers["X-Request-Id"] == "req-404"


def test_one_access_log_line_per_request(client, caplog):
    caplog.set_level(logging.INFO, logger="potluck.access")
    client.get("/healthz", headers={"X-Request-Id": "req-1"})
    lines = [r.msg for r in caplog.records if r.name == "potluck.access"]
    assert len(lines) == 1
    line = lines[0]
    assert line["event"] == "request"
    assert line["method"] == "GET"
    assert line["path"] == "/healthz"
    assert line["status"] == 200
    assert line["request_id"] == "req-1"
    assert isinstance(line["duration_ms"], float)


def test_json_logs_are_one_json_object_per_line(potluck, capsys):
    from potluck.api.observability import configure_logging

    settings = potluck.settings.model_copy(update={"log_json": True})
    try:
        configure_logging(settings)
        import structlog

        structlog.get_logger("potluck.test").info("hello", amount=1250)
        err = capsys.readouterr().err.strip().splitlines()
        record = json.loads(err[-1])
        assert record["event"] == "hello"
        assert record["amount"] == 1250
        assert record["level"] == "info"
        assert "timestamp" in record
    finally:
        configure_logging(potluck.settings)


def test_an_unhandled_exception_is_a_500_problem_with_the_request_id(app, caplog):
    def explode() -> None:
        raise RuntimeError("boom")

    app.add_api_route("/v1/test/explode", explode, methods=["GET"])
    with TestClient(app, raise_server_exceptions=False) as c:
        r = c.get("/v1/test/explode", headers={"X-Request-Id": "req-500"})
    assert_problem(r, 500, "internal_error")
    assert "boom" not in r.text
    assert r.headers["X-Request-Id"] == "req-500"
    errors = [x.msg for x in caplog.records if x.name == "potluck.errors"]
    assert errors
    assert errors[0]["request_id"] == "req-500"


# --- /healthz, /readyz, /metrics ---------------------------------------------------------


def test_healthz(client):
    r = client.get("/healthz")
    assert r.status_code == 200
    assert r.json() == {"status": "ok"}


def test_readyz_when_ready(client):
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["status"] == "ok"
    assert body["checks"]["database"]["status"] == "ok"
    # The in-process transport has no broker to ask; with RabbitMQ it must answer.
    expected = "ok" if client.app.state.potluck.settings.transport == "rabbitmq" else "skipped"
    assert body["checks"]["broker"]["status"] == expected


def test_readyz_includes_bus_stats_when_the_bus_has_them(potluck, client, monkeypatch):
    monkeypatch.setattr(potluck.bus, "stats", lambda: {"outbox_pending": 3}, raising=False)
    assert client.get("/readyz").json()["bus"] == {"outbox_pending": 3}


def test_readyz_is_503_when_the_database_is_unreachable(settings, clock):
    # Nothing listens on port 1; psycopg is refused at once.
    bogus = Database(make_engine("postgresql+psycopg://postgres@127.0.0.1:1/nope", pool_size=1))
    app = create_app(bootstrap(settings, db=bogus, clock=clock))
    with TestClient(app) as c:
        r = c.get("/readyz")
        assert c.get("/healthz").status_code == 200
    body = assert_problem(r, 503, "not_ready")
    assert body["checks"]["database"]["status"] == "error"
    assert r.headers["Retry-After"]
    bogus.dispose()


def test_readyz_checks_the_broker_only_with_the_rabbitmq_transport(potluck, client):
    # The bus reads the transport at bootstrap; readiness reads it per request.
    potluck.settings = potluck.settings.model_copy(
        update={"transport": "rabbitmq", "broker_url": "amqp://guest:guest@127.0.0.1:1/"}
    )
    body = assert_problem(client.get("/readyz"), 503, "not_ready")
    assert body["checks"]["broker"]["status"] == "error"
    assert body["checks"]["database"]["status"] == "ok"


def test_the_broker_check_speaks_amqp():
    from potluck.api.ops import check_broker

    try:
        check_broker("amqp://guest:guest@127.0.0.1:5672/")
    except ConnectionRefusedError:
        pytest.skip("RabbitMQ is not running on 127.0.0.1:5672 (rabbitmq-server -detached)")
    with pytest.raises(OSError):
        check_broker("amqp://guest:guest@127.0.0.1:1/")


def test_metrics_count_requests_by_route_template(client, acme):
    client.get("/healthz")
    client.get("/v1/accounts/acc_1", headers=acme)
    client.get("/v1/accounts/acc_2", headers=acme)
    r = client.get("/metrics")
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/plain")
    text = r.text
    assert 'potluck_http_requests_total{method="GET",route="/healthz",status="200"} 1.0' in text
    assert (
        'potluck_http_requests_total{method="GET",route="/v1/accounts/{account_id}",'
        'status="404"} 2.0'
    ) in text
    assert "potluck_http_request_duration_seconds_bucket" in text


def test_each_app_has_its_own_metrics(potluck):
    a, b = create_app(potluck), create_app(potluck)
    with TestClient(a) as ca, TestClient(b) as cb:
        ca.get("/healthz")
        assert 'route="/healthz"' not in cb.get("/metrics").text


def test_ops_endpoints_are_outside_v1(client):
    for path in ("/v1/healthz", "/v1/readyz", "/v1/metrics"):
        assert client.get(path).status_code == 404


# --- amounts, bodies, routes, pagination -------------------------------------------------


@pytest.mark.parametrize("amount", [12.5, 1250.0, "1250", "12.50"])
def test_amounts_must_be_integers(client, acme, amount):
    debit, credit = two_accounts(client, acme)
    body = {"debit_account": debit, "credit_account": credit, "amount": amount, "currency": "EUR"}
    r = client.post("/v1/transfers", json=body, headers=acme)
    problem = assert_problem(r, 422, "validation_error")
    assert [e["field"] for e in problem["errors"]] == ["amount"]
    assert "amount" in problem["detail"]


def test_malformed_json_is_422_malformed_json(client, acme):
    r = client.post(
        "/v1/accounts",
        content=b'{"currency": "EUR",',
        headers={**acme, "Content-Type": "application/json"},
    )
    problem = assert_problem(r, 422, "malformed_json")
    assert problem["errors"][0]["field"] == "body"


def test_a_body_that_is_not_utf8_is_422_malformed_json(client, acme):
    r = client.post(
        "/v1/accounts",
        content=b'{"currency": "\xff"}',
        headers={**acme, "Content-Type": "application/json"},
    )
    assert_problem(r, 422, "malformed_json")


def test_unknown_route_is_404_problem(client):
    assert_problem(client.get("/v1/nothing-here"), 404, "not_found")


def test_wrong_method_is_405_problem(client):
    assert_problem(client.delete("/healthz"), 405, "method_not_allowed")


@pytest.mark.parametrize("limit", [0, 101, "many"])
def test_pagination_limit_is_1_to_100(client, acme, limit):
    r = client.get("/v1/accounts", params={"limit": limit}, headers=acme)
    problem = assert_problem(r, 422, "validation_error")
    assert problem["errors"][0]["field"] == "limit"


def test_pagination_limit_100_is_fine(client, acme):
    r = client.get("/v1/accounts", params={"limit": 100}, headers=acme)
    assert r.status_code == 200
    assert r.json() == {"data": [], "has_more": False}


# --- the OpenAPI document ----------------------------------------------------------------


def test_openapi_documents_problem_json_and_nothing_we_never_send(client):
    spec = client.get("/openapi.json").json()
    text = json.dumps(spec)
    assert "HTTPValidationError" not in text
    assert "Problem" in spec["components"]["schemas"]
    for path, item in spec["paths"].items():
        for method, op in item.items():
            for status, response in op["responses"].items():
                if status.startswith(("4", "5")):
                    assert list(response["content"]) == [PROBLEM], (method, path, status)
            if method == "post":
                assert "422" in op["responses"], path
                assert "409" in op["responses"], path
                names = [p["name"] for p in op.get("parameters", [])]
                assert "Idempotency-Key" in names, path
    transfers = spec["paths"]["/v1/transfers"]["post"]["responses"]
    assert {"201", "200", "401", "402", "403", "404", "409", "422"} <= transfers.keys()
    assert "401" not in spec["paths"]["/healthz"]["get"]["responses"]
    assert "422" not in spec["paths"]["/healthz"]["get"]["responses"]
    assert "503" in spec["paths"]["/readyz"]["get"]["responses"]
    assert "404" in spec["paths"]["/v1/accounts/{account_id}"]["get"]["responses"]
    assert "/v1/healthz" not in spec["paths"]
