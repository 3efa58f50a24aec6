"""Access tokens for people: HS256 JWTs whose times come from Potluck's clock.

PyJWT checks ``exp``/``iat``/``nbf`` against the machine's real time, which would make the
tokens ignore the injected clock (tests could not expire a token, and a server whose clock is
faked for a demo would disagree with itself). So PyJWT verifies the signature, the algorithm
(HS256 only: ``alg: none`` and every other algorithm are refused) and the presence of the
claims, and this module checks the times itself against the ``now`` it is given, with no
leeway: a token is valid while ``iat <= now < exp``.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import jwt

ALGORITHM = "HS256"
TOKEN_TYPE = "access"  # noqa: S105 - the typ claim, not a secret
MAX_TOKEN_LENGTH = 4096  # far above what we issue; don't parse arbitrarily large input
_REQUIRED = ["exp", "iat", "sub", "typ"]


def encode_access_token(*, key: str, user_id: str, now: datetime, ttl_seconds: int) -> str:
    """A signed access token for ``user_id``, valid from ``now`` for ``ttl_seconds``."""
    issued = int(now.timestamp())
    claims = {"sub": user_id, "typ": TOKEN_TYPE, "iat": issued, "exp": issued + ttl_seconds}
    return jwt.encode(claims, key, algorithm=ALGORITHM)


def _is_int(value: Any) -> bool:
    return type(value) is int  # bool is an int subclass; a float time is not ours either


def decode_access_token(token: str, *, key: str, now: datetime) -> str | None:
    """The user id of a valid access token, or None for anything else.

    Refused: another algorithm (including ``none``), a bad signature or another key, a
    missing or mistyped claim, a token of another ``typ``, an expired token (``now >= exp``)
    and a token issued in the future (``iat > now``, or ``nbf > now`` when present).
    """
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    try:
        claims = jwt.decode(
            token,
            key,
            algorithms=[ALGORITHM],
            leeway=0,
            options={
                "verify_signature": True,
                # times are checked below against the injected clock, not the machine's
                "verify_exp": False,
                "verify_iat": False,
                "verify_nbf": False,
                "require": _REQUIRED,
            },
        )
    except jwt.PyJWTError:
        return None
    exp, iat, nbf = claims["exp"], claims["iat"], claims.get("nbf", 0)
    sub = claims["sub"]
    if not (_is_int(exp) and _is_int(iat) and _is_int(nbf)):
        return None
    if claims.get("typ") != TOKEN_TYPE or not isinstance(sub, str) or not sub:
        return None
    at = now.timestamp()
    if at >= exp or iat > at or nbf > at:
        return None
    return sub
