"""``Idempotency-Key`` for POST requests, as a pure ASGI middleware.

A client that sends ``Idempotency-Key: <key>`` on a POST gets exactly one effect however many
times it retries:

- The key is scoped per caller (``platform:<id>``, ``user:<id>``, or ``anon:<address>`` when the
  request carries no valid credentials) and kept for ``settings.idempotency_ttl_seconds``
  (24 h); after that it is forgotten and may be used again.
- The first request claims the key with an ``in_progress`` row (its lease, ``locked_until``, is
  ``LEASE_SECONDS`` ahead), runs, then records its status and body as ``completed``. Every
  database step is its own short transaction; none is held open while the route runs.
- While the route runs, the lease is renewed every third of ``LEASE_SECONDS`` (``renew``), so
  a request that runs longer than the lease keeps its key: only a request whose process died
  (or stalled for a whole lease) can be taken over. The lease value is the fence: ``renew``,
  ``complete`` and ``release`` change the row only if it still holds the lease this request
  last set, so a request that lost its key to a takeover cannot overwrite the new owner.
- A replay with the same request (sha256 of method, path, query and raw body) answers the stored
  status and body with ``Idempotent-Replayed: true``; another request under the same key is 409
  ``idempotency_key_reused``.
- The body is read whole before the key is claimed; ``api.body_limit`` (outside this layer)
  refuses one over ``settings.max_body_bytes`` first, so a 413 never claims a key.
- A concurrent request with the same key polls the row for up to
  ``settings.idempotency_wait_seconds`` and then replays the first one's answer, or gives up with
  409 ``idempotency_key_in_use`` (``Retry-After: 1``).
- An ``in_progress`` row whose lease has run out (its process died mid-request) may be taken
  over by a retry; the key's lifetime then starts again, as for a first request. The route
  ran in a transaction of its own, so a crash after that commit and before the response was
  recorded can let a retry run it again after the lease: ledger transfers additionally carry
  client ids.

Which outcomes are kept (Stripe's rule: keep what the endpoint decided, forget what says "this
did not run, try again"):

- kept: 2xx, 3xx, and 4xx outcomes of the endpoint (402 insufficient funds, 404, 409, a 422 from
  a business rule, …), replayed for the key's lifetime;
- not kept (the row is deleted, so a retry with the same key runs afresh): every 5xx (and an
  exception escaping the app), 401 (no valid credentials: nothing was attempted), 408, 425, 429
  (rate limited: the retry after ``Retry-After`` must run), and a 422 ``validation_error``,
  ``malformed_json`` (the request was refused before the endpoint started, so a corrected body
  may reuse the key) or ``unstorable_value`` (the database refused a value and the endpoint's
  transaction rolled back);
- also not kept: a 409 ``concurrent_conflict`` (a constraint refused a write because a
  concurrent request won a race; nothing was written, so a retry with the key runs again);
- a response marked ``Cache-Control: no-store`` (one carrying a secret: an access token, a
  platform's secret key) is recorded without its body, so the secret never lands in this table;
  a replay of it answers 409 ``idempotent_replay_unavailable`` rather than running again.
"""

from __future__ import annotations

import hashlib
import json
import re
import time
from dataclasses import dataclass
from datetime import datetime, timedelta
from functools import partial
from typing import TYPE_CHECKING, Any, Literal, cast

import anyio
import structlog
from sqlalchemy import Table, delete, insert, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.exc import IntegrityError
from starlette.datastructures import Headers
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from potluck.api.deps import Principal, bearer_token
from potluck.api.errors import problem_response
from potluck.api.models import IdempotencyKey
from potluck.clock import utc

if TYPE_CHECKING:
    from sqlalchemy import Row
    from sqlalchemy.orm import Session

    from potluck.bootstrap import Potluck

log = structlog.get_logger("potluck.idempotency")

HEADER = "idempotency-key"
REPLAYED_HEADER = "Idempotent-Replayed"
MAX_KEY_LENGTH = 255
# A key is 1–255 printable ASCII characters (a UUID is the usual choice).
_KEY_RE = re.compile(r"^[\x20-\x7e]{1,255}$")
LEASE_SECONDS = 60.0

_T = cast(Table, IdempotencyKey.__table__)
# Statuses that mean "nothing was attempted, try again": never replayed.
_NOT_KEPT = frozenset({401, 408, 425, 429})
_REFUSED_BEFORE_RUNNING = frozenset({"validation_error", "malformed_json", "unstorable_value"})


@dataclass(frozen=True, slots=True)
class Stored:
    status: int
    body: bytes | None
    content_type: str | None


@dataclass(frozen=True, slots=True)
class Decision:
    action: Literal["run", "replay", "reused", "wait", "claimable"]
    lease: datetime | None = None
    stored: Stored | None = None


def request_hash(scope: str, key: str, method: str, path: str, query: bytes, body: bytes) -> str:
    """sha256 over the request, length-prefixed so that no two requests share an input.

    The caller's scope and key salt the hash: a body can carry a password (sign-in), and an
    unsalted digest of it would be a dictionary attack away from the password.
    """
    h = hashlib.sha256()
    for part in (scope.encode(), key.encode(), method.encode(), path.encode(), query, body):
        h.update(len(part).to_bytes(8, "big"))
        h.update(part)
    return h.hexdigest()


def keep_response(status: int, content_type: str | None, body: bytes) -> bool:
    """Whether an outcome is replayed for the key's lifetime (see the module docstring)."""
    if status >= 500 or status in _NOT_KEPT:
        return False
    if status == 409 and content_type and "json" in content_type:
        try:
            if json.loads(body).get("code") == "concurrent_conflict":
                return False  # nothing ran to the end: a retry with the key must run again
        except (ValueError, AttributeError):
            return True
    if status == 422 and content_type and "json" in content_type:
        try:
            code = json.loads(body).get("code")
        except (ValueError, AttributeError):
            return True
        return code not in _REFUSED_BEFORE_RUNNING
    return True


def _is_no_store(headers: Headers) -> bool:
    directives = headers.get("cache-control", "").lower().replace(" ", "").split(",")
    return "no-store" in directives


# --- the rows ----------------------------------------------------------------------------


def _decide(row: Row[Any] | None, h: str, now: datetime) -> Decision:
    """What a request may do given the key's current row (without writing anything)."""
    if row is None or utc(row.expires_at) <= now:
        return Decision("claimable")
    if row.request_hash != h:
        return Decision("reused")
    if row.status == "completed":
        return Decision(
            "replay",
            stored=Stored(row.response_status, row.response_body, row.response_content_type),
        )
    if utc(row.locked_until) <= now:
        return Decision("claimable")  # the first request's lease ran out: take it over
    return Decision("wait")


def _key_filter(scope: str, key: str) -> Any:
    return (_T.c.scope == scope) & (_T.c.key == key)


def peek(app: Potluck, scope: str, key: str, h: str) -> Decision:
    """Read-only look at the key (what a waiting request polls)."""
    with app.db.read() as s:
        row = s.execute(select(_T).where(_key_filter(scope, key))).first()
    return _decide(row, h, app.clock.now())


def claim(app: Potluck, scope: str, key: str, h: str, *, lease_seconds: float) -> Decision:
    """Claim the key for this request in one short transaction, or say why not."""
    for _ in range(5):
        try:
            with app.db.transaction() as s:
                return _claim(s, app, scope, key, h, lease_seconds)
        except IntegrityError:
            # A concurrent first request inserted the row between our read and our insert.
            continue
    return Decision("wait")


def _claim(
    s: Session, app: Potluck, scope: str, key: str, h: str, lease_seconds: float
) -> Decision:
    now = app.clock.now()
    lease = now + timedelta(seconds=lease_seconds)
    # Every claim starts a run, a takeover included, so the key's lifetime starts again: a key
    # taken over just before it expired must not expire under the running request (a retry
    # would then claim it and run it again) nor right after its answer is stored.
    values = {
        "request_hash": h,
        "status": "in_progress",
        "response_status": None,
        "response_body": None,
        "response_content_type": None,
        "locked_until": lease,
        "created_at": now,
        "expires_at": now + timedelta(seconds=app.settings.idempotency_ttl_seconds),
    }
    # A new key (the usual case) is claimed by one statement: the insert that does nothing
    # when the key has a row already (then read and decided on, under its row lock).
    dialect_insert = pg_insert if s.get_bind().dialect.name == "postgresql" else sqlite_insert
    claimed = s.execute(
        dialect_insert(_T)
        .values(scope=scope, key=key, **values)
        .on_conflict_do_nothing(index_elements=["scope", "key"])
        .returning(_T.c.key)
    ).first()
    if claimed is not None:
        return Decision("run", lease=lease)
    row = s.execute(select(_T).where(_key_filter(scope, key)).with_for_update()).first()
    decision = _decide(row, h, now)
    if decision.action != "claimable":
        return decision
    if row is None:  # deleted (released) since the insert: claim it again
        s.execute(insert(_T).values(scope=scope, key=key, **values))
    else:
        s.execute(update(_T).where(_key_filter(scope, key)).values(**values))
    return Decision("run", lease=lease)


def complete(app: Potluck, scope: str, key: str, lease: datetime, stored: Stored) -> bool:
    """Record the outcome, if this request still holds the key (its lease is the fence)."""
    with app.db.transaction() as s:
        result = s.execute(
            update(_T)
            .where(
                _key_filter(scope, key),
                _T.c.status == "in_progress",
                _T.c.locked_until == lease,
            )
            .values(
                status="completed",
                response_status=stored.status,
                response_body=stored.body,
                response_content_type=stored.content_type,
            )
        )
    return bool(getattr(result, "rowcount", 0))


def renew(
    app: Potluck, scope: str, key: str, lease: datetime, *, lease_seconds: float
) -> datetime | None:
    """Extend a running request's lease; the new lease, or None if the key is no longer its.

    Fenced like ``complete``: only the row still holding ``lease`` is extended.
    """
    renewed = app.clock.now() + timedelta(seconds=lease_seconds)
    with app.db.transaction() as s:
        result = s.execute(
            update(_T)
            .where(
                _key_filter(scope, key),
                _T.c.status == "in_progress",
                _T.c.locked_until == lease,
            )
            .values(locked_until=renewed)
        )
    return renewed if getattr(result, "rowcount", 0) else None


def release(app: Potluck, scope: str, key: str, lease: datetime) -> None:
    """Forget the claim so that a retry with the same key runs again."""
    with app.db.transaction() as s:
        s.execute(
            delete(_T).where(
                _key_filter(scope, key),
                _T.c.status == "in_progress",
                _T.c.locked_until == lease,
            )
        )


def purge_expired_keys(app: Potluck) -> int:
    """Delete keys past their lifetime (and not held by a running request); returns how many."""
    with app.db.transaction() as s:
        return purge_expired_keys_in(s, now=app.clock.now())


def purge_expired_keys_in(session: Session, *, now: datetime) -> int:
    """``purge_expired_keys`` inside the caller's transaction (the maintenance timer)."""
    result = session.execute(delete(_T).where(_T.c.expires_at <= now, _T.c.locked_until <= now))
    return int(getattr(result, "rowcount", 0) or 0)


# --- the middleware ----------------------------------------------------------------------


async def _read_body(receive: Receive) -> tuple[bytes, bool]:
    chunks: list[bytes] = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return b"".join(chunks), True
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks), False


def _replay_receive(body: bytes, receive: Receive) -> Receive:
    sent = False

    async def replay() -> Message:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay


async def _send_stored(send: Send, stored: Stored) -> None:
    headers = [(REPLAYED_HEADER.lower().encode(), b"true")]
    if stored.content_type:
        headers.append((b"content-type", stored.content_type.encode("latin-1")))
    body = stored.body or b""
    headers.append((b"content-length", str(len(body)).encode()))
    await send({"type": "http.response.start", "status": stored.status, "headers": headers})
    await send({"type": "http.response.body", "body": body})


class IdempotencyMiddleware:
    """Applies to every POST that carries an ``Idempotency-Key`` header."""

    def __init__(
        self,
        app: ASGIApp,
        *,
        potluck: Potluck,
        lease_seconds: float = LEASE_SECONDS,
        renew_every_seconds: float | None = None,
        poll_initial_seconds: float = 0.02,
        poll_max_seconds: float = 0.25,
    ) -> None:
        self.app = app
        self.potluck = potluck
        self.lease_seconds = lease_seconds
        # A third: two renewals can be late or fail before the lease runs out.
        self.renew_every = renew_every_seconds or lease_seconds / 3
        self.poll_initial = poll_initial_seconds
        self.poll_max = poll_max_seconds

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or scope["method"] != "POST":
            await self.app(scope, receive, send)
            return
        headers = Headers(scope=scope)
        key = headers.get(HEADER)
        if key is None:
            await self.app(scope, receive, send)
            return
        if not _KEY_RE.match(key):
            response = problem_response(
                422,
                "invalid_idempotency_key",
                f"Idempotency-Key must be 1–{MAX_KEY_LENGTH} printable ASCII characters",
                errors=[
                    {
                        "field": "Idempotency-Key",
                        "code": "invalid_idempotency_key",
                        "message": f"1–{MAX_KEY_LENGTH} printable ASCII characters",
                    }
                ],
            )
            await response(scope, receive, send)
            return

        body, disconnected = await _read_body(receive)
        if disconnected:
            return
        caller, decision = await self._caller_and_claim(scope, key, body)
        if decision.action == "replay":
            assert decision.stored is not None
            await self._replay(scope, receive, send, decision.stored)
            return
        if decision.action == "reused":
            response = problem_response(
                409,
                "idempotency_key_reused",
                "this Idempotency-Key was already used for a different request; "
                "use a new key for a new request",
            )
            await response(scope, receive, send)
            return
        if decision.action == "wait":
            response = problem_response(
                409,
                "idempotency_key_in_use",
                "a request with this Idempotency-Key is still running; retry shortly",
                headers={"Retry-After": "1"},
            )
            await response(scope, receive, send)
            return
        assert decision.lease is not None
        await self._run(scope, _replay_receive(body, receive), send, caller, key, decision.lease)

    async def _caller_and_claim(self, scope: Scope, key: str, body: bytes) -> tuple[str, Decision]:
        """The caller's scope and the key's decision. The principal is left in the request
        state for the routes. A caller that is not in this process's cache is looked up in
        the same thread-pool hop as the claim (one hop, not two)."""
        from potluck.identity.service import cached_principal, principal_from_token

        app = self.potluck
        token = bearer_token(Request(scope))
        principal = cached_principal(app, token) if token else None

        def hashed(caller: str) -> str:
            query = scope.get("query_string", b"")
            return request_hash(caller, key, scope["method"], scope["path"], query, body)

        if principal is not None or not token:
            caller = self._scope_of(scope, principal)
            h = hashed(caller)
            return caller, await self._claim_or_wait(caller, key, h)

        def lookup_and_claim() -> tuple[str, str, Decision]:
            caller = self._scope_of(scope, principal_from_token(app, token))
            h = hashed(caller)
            return caller, h, claim(app, caller, key, h, lease_seconds=self.lease_seconds)

        caller, h, first = await anyio.to_thread.run_sync(lookup_and_claim)
        return caller, await self._claim_or_wait(caller, key, h, first=first)

    @staticmethod
    def _scope_of(scope: Scope, principal: Principal | None) -> str:
        if principal is not None:
            scope.setdefault("state", {})["principal"] = principal
            return principal.scope
        client = scope.get("client")
        host = client[0] if client else "unknown"
        return f"anon:{host}"

    async def _claim_or_wait(
        self, caller: str, key: str, h: str, *, first: Decision | None = None
    ) -> Decision:
        app = self.potluck
        decision = first
        if decision is None:
            decision = await anyio.to_thread.run_sync(
                lambda: claim(app, caller, key, h, lease_seconds=self.lease_seconds)
            )
        deadline = time.monotonic() + app.settings.idempotency_wait_seconds
        interval = self.poll_initial
        while decision.action == "wait" and time.monotonic() < deadline:
            await anyio.sleep(min(interval, max(deadline - time.monotonic(), 0)))
            interval = min(interval * 1.5, self.poll_max)
            decision = await anyio.to_thread.run_sync(peek, app, caller, key, h)
            if decision.action == "claimable":
                decision = await anyio.to_thread.run_sync(
                    lambda: claim(app, caller, key, h, lease_seconds=self.lease_seconds)
                )
        return decision

    async def _replay(self, scope: Scope, receive: Receive, send: Send, stored: Stored) -> None:
        if stored.body is None:
            response = problem_response(
                409,
                "idempotent_replay_unavailable",
                "the request with this Idempotency-Key was already processed and its response "
                "held a secret that is not kept; use a new key to repeat the request",
            )
            await response(scope, receive, send)
            return
        await _send_stored(send, stored)

    async def _run(
        self, scope: Scope, receive: Receive, send: Send, caller: str, key: str, lease: datetime
    ) -> None:
        app = self.potluck
        start: Message | None = None
        chunks: list[bytes] = []

        async def capture(message: Message) -> None:
            nonlocal start
            if message["type"] == "http.response.start":
                start = message
            elif message["type"] == "http.response.body":
                chunks.append(message.get("body", b""))

        current = lease  # the fence: the lease this request last set

        async def keep_renewing() -> None:
            nonlocal current
            while True:
                await anyio.sleep(self.renew_every)
                # Shielded: a renewal that committed must also update the fence, or the
                # request would lose its own key when it completes.
                with anyio.CancelScope(shield=True):
                    try:
                        renewed = await anyio.to_thread.run_sync(
                            partial(
                                renew, app, caller, key, current, lease_seconds=self.lease_seconds
                            )
                        )
                    except Exception:
                        log.exception("idempotency_renew_failed", key=key, scope=caller)
                        continue  # try again; the lease still has two thirds left
                    if renewed is None:
                        log.warning("idempotency_lease_lost", key=key, scope=caller)
                        return
                    current = renewed

        failure: Exception | None = None
        async with anyio.create_task_group() as renewals:
            renewals.start_soon(keep_renewing)
            try:
                await self.app(scope, receive, capture)
            except Exception as exc:
                failure = exc
            finally:
                renewals.cancel_scope.cancel()
        lease = current
        if failure is not None:
            # A failure is a 5xx: forget the claim so that a retry runs.
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(release, app, caller, key, lease)
            raise failure
        # Cancelled (shutdown): whether the route committed is unknown, so the claim stays
        # until its lease runs out rather than inviting an immediate second run.
        if start is None:
            await anyio.to_thread.run_sync(release, app, caller, key, lease)
            return

        body = b"".join(chunks)
        status: int = start["status"]
        headers = Headers(raw=start.get("headers", []))
        content_type = headers.get("content-type")
        if keep_response(status, content_type, body):
            stored = Stored(status, None if _is_no_store(headers) else body, content_type)
            try:
                with anyio.CancelScope(shield=True):
                    kept = await anyio.to_thread.run_sync(complete, app, caller, key, lease, stored)
            except Exception:
                # The effect happened; answer it. A retry can only run again after the lease.
                log.exception("idempotency_store_failed", key=key, scope=caller)
            else:
                if not kept:
                    log.warning("idempotency_lease_lost", key=key, scope=caller)
        else:
            with anyio.CancelScope(shield=True):
                await anyio.to_thread.run_sync(release, app, caller, key, lease)

        await send(start)
        await send({"type": "http.response.body", "body": body, "more_body": False})
