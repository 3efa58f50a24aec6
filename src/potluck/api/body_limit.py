"""A request body over ``settings.max_body_bytes`` is 413 ``payload_too_large``, for every route.

A pure ASGI middleware outside the ``Idempotency-Key`` layer (which reads whole bodies into
memory) and the routes, so that an oversized body is refused before anything is parsed or
stored:

- a ``Content-Length`` over the limit is refused before a byte of the body is read;
- a body without one (chunked) is counted as it streams in; the chunk that crosses the limit
  ends the request. Whoever was reading (the Idempotency-Key layer, FastAPI's body parsing)
  gets ``BodyTooLarge`` from ``receive``; whatever the app answers after that is replaced by
  the 413. The Idempotency-Key layer reads the body before claiming its key, so no key row is
  written for a refused request.

The 413 carries ``Connection: close``: the rest of the body is never read, so the connection
cannot carry another request.
"""

from __future__ import annotations

from starlette.datastructures import Headers
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from potluck.api.errors import problem_response


class BodyTooLarge(Exception):
    """Raised from ``receive`` when the body crosses the limit (answered with a 413)."""


class BodySizeLimitMiddleware:
    def __init__(self, app: ASGIApp, *, max_body_bytes: int) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit = self.max_body_bytes
        declared = Headers(scope=scope).get("content-length")
        if declared is not None and declared.strip().isdigit() and int(declared) > limit:
            await self._refuse(scope, receive, send)
            return

        received = 0
        exceeded = False
        started = False

        async def counted() -> Message:
            nonlocal received, exceeded
            if exceeded:
                raise BodyTooLarge
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    raise BodyTooLarge
            return message

        async def guarded(message: Message) -> None:
            nonlocal started
            if exceeded and not started:
                return  # the app's answer to a body it could not read: the 413 replaces it
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await self.app(scope, counted, guarded)
        except BodyTooLarge:
            pass
        except Exception:
            if not exceeded:
                raise
        if exceeded and not started:
            await self._refuse(scope, receive, send)

    async def _refuse(self, scope: Scope, receive: Receive, send: Send) -> None:
        response = problem_response(
            413,
            "payload_too_large",
            f"the request body is larger than {self.max_body_bytes} bytes",
            headers={"Connection": "close"},
        )
        await response(scope, receive, send)
