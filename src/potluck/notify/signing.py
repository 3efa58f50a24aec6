"""Webhook signatures: ``Potluck-Signature: t=<unix>,v1=<hex HMAC-SHA256(secret, "t.body")>``.

``sign`` is what Potluck does before each attempt; ``verify_signature`` is what a receiving
platform does (it is also in docs/api.md). The HMAC key is the whole secret string
(``whsec_…``) as UTF-8; the message is the timestamp, a dot, and the raw request body bytes.
Signing the timestamp with the body lets the receiver refuse a replayed old request.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from datetime import datetime

HEADER = "Potluck-Signature"
SCHEME = "v1"
SECRET_PREFIX = "whsec_"  # noqa: S105 (a prefix, not a secret)
DEFAULT_TOLERANCE_SECONDS = 300


def new_secret() -> str:
    """A fresh endpoint secret: ``whsec_`` and 32 random bytes (base64url)."""
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def _as_bytes(body: bytes | str) -> bytes:
    return body.encode() if isinstance(body, str) else body


def compute_signature(secret: str, timestamp: int, body: bytes | str) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with ``secret``."""
    message = str(timestamp).encode() + b"." + _as_bytes(body)
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def sign(secret: str, body: bytes | str, *, timestamp: int) -> str:
    """The ``Potluck-Signature`` header value for ``body`` sent at ``timestamp``."""
    return f"t={timestamp},{SCHEME}={compute_signature(secret, timestamp, body)}"


def parse_header(header: str) -> tuple[int | None, list[str]]:
    """``(timestamp, [v1 signatures])``; several ``v1`` may appear (e.g. during a rotation)."""
    timestamp: int | None = None
    signatures: list[str] = []
    for part in header.split(","):
        key, sep, value = part.strip().partition("=")
        if not sep:
            continue
        if key == "t":
            try:
                timestamp = int(value)
            except ValueError:
                return None, []
        elif key == SCHEME:
            signatures.append(value)
    return timestamp, signatures


def verify_signature(
    secret: str,
    header: str | None,
    body: bytes | str,
    tolerance_seconds: int = DEFAULT_TOLERANCE_SECONDS,
    now: datetime | float | None = None,
) -> bool:
    """True if ``header`` signs exactly ``body`` with ``secret`` and its timestamp is within
    ``tolerance_seconds`` of ``now`` (default: the system clock).

    Verify the raw body as received, before parsing it: re-serialised JSON is not the same
    bytes. Comparison is constant time.
    """
    if not header:
        return False
    timestamp, signatures = parse_header(header)
    if timestamp is None or not signatures:
        return False
    if now is None:
        current = time.time()
    elif isinstance(now, datetime):
        current = now.timestamp()
    else:
        current = float(now)
    if abs(current - timestamp) > tolerance_seconds:
        return False
    expected = compute_signature(secret, timestamp, body)
    return any(hmac.compare_digest(expected, s) for s in signatures)
