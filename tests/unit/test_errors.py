"""The last-resort answer to an exception: 503 when the database cannot be reached in time."""

from __future__ import annotations

import json

from sqlalchemy.exc import OperationalError
from sqlalchemy.exc import TimeoutError as PoolTimeout

from potluck.api.errors import unexpected_error_response


def answer(exc: BaseException) -> tuple[int, dict[str, object], str | None]:
    r = unexpected_error_response(exc)
    return r.status_code, json.loads(r.body), r.headers.get("retry-after")


def test_a_database_that_does_not_answer_is_503():
    status, body, retry = answer(OperationalError("SELECT 1", {}, Exception("gone")))
    assert (status, body["code"], retry) == (503, "database_unavailable", "2")


def test_no_free_connection_in_the_pool_is_503_not_500():
    # QueuePool gives up after pool_timeout with sqlalchemy.exc.TimeoutError, which is not
    # an OperationalError: the database is overloaded, the client should retry.
    exc = PoolTimeout("QueuePool limit of size 20 overflow 20 reached, connection timed out")
    status, body, retry = answer(exc)
    assert (status, body["code"], retry) == (503, "database_unavailable", "2")
    assert "QueuePool" not in json.dumps(body)


def test_anything_else_is_a_500_that_says_nothing_of_it():
    status, body, retry = answer(RuntimeError("secret internals"))
    assert (status, body["code"], retry) == (500, "internal_error", None)
    assert "secret" not in json.dumps(body)


def test_a_lost_uniqueness_race_is_409_and_not_kept_for_idempotent_replay():
    from sqlalchemy.exc import IntegrityError

    from potluck.api.idempotency import keep_response

    exc = IntegrityError("INSERT …", {}, Exception("duplicate key value violates unique"))
    status, body, retry = answer(exc)
    assert (status, body["code"], retry) == (409, "concurrent_conflict", "1")
    assert "duplicate key" not in json.dumps(body)  # no database internals in the answer
    raw = json.dumps(body).encode()
    assert keep_response(409, "application/problem+json", raw) is False
    other = json.dumps({"code": "order_exists"}).encode()
    assert keep_response(409, "application/problem+json", other) is True
