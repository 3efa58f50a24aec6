"""A short-lived, in-process cache of who a bearer token belongs to.

Every authenticated request starts by finding its caller: a database read (plus, on the
request path, a thread-pool hop). With many requests per second from the same platform key,
remembering the answer for a second or two removes that work from the hot path.

What it costs: a key revoked or rotated in *another* process keeps working there for at most
``ttl`` seconds (``POTLUCK_AUTH_CACHE_SECONDS``; 0 turns the cache off). In the process that
revokes, rotates or changes a role, the cache is cleared at once. Only successful lookups are
remembered: a new key works immediately, and a wrong one always reaches the database.

A person's access token is checked every time (signature and times, against the app's clock:
no I/O); only the person behind it (name and role) is remembered, by user id, so an expired
token is refused at once and a role change in another process applies within ``ttl``.
"""

from __future__ import annotations

import hashlib
import threading
import time
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from potluck.api.deps import Principal

_MAX_ENTRIES = 10_000


class PrincipalCache:
    def __init__(self, ttl_seconds: float) -> None:
        self.ttl = ttl_seconds
        self._entries: dict[bytes, tuple[float, Principal]] = {}
        self._lock = threading.Lock()

    @staticmethod
    def _key(token: str) -> bytes:
        return hashlib.sha256(token.encode()).digest()

    def get(self, token: str) -> Principal | None:
        if self.ttl <= 0:
            return None
        entry = self._entries.get(self._key(token))
        if entry is None or entry[0] < time.monotonic():
            return None
        return entry[1]

    def put(self, token: str, principal: Principal) -> None:
        if self.ttl <= 0:
            return
        with self._lock:
            if len(self._entries) >= _MAX_ENTRIES:
                self._entries.clear()  # bounded memory; the next lookups refill it
            self._entries[self._key(token)] = (time.monotonic() + self.ttl, principal)

    def get_user(self, user_id: str) -> Principal | None:
        """The person behind a verified access token, if seen within ``ttl``."""
        return self.get("user:" + user_id)

    def put_user(self, user_id: str, principal: Principal) -> None:
        self.put("user:" + user_id, principal)

    def clear(self) -> None:
        with self._lock:
            self._entries.clear()
