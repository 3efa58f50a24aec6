"""Password hashing with argon2id (argon2-cffi's recommended parameters)."""

from __future__ import annotations

import secrets
import threading

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Module state so that tests can swap in cheaper parameters (see tests/integration).
_hasher = PasswordHasher()
_dummy_lock = threading.Lock()
_dummy: tuple[PasswordHasher, str] | None = None


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; False on a mismatch or an unreadable hash."""
    try:
        return _hasher.verify(password_hash, password)
    except (VerifyMismatchError, VerificationError, InvalidHashError):
        return False


def needs_rehash(password_hash: str) -> bool:
    """True when the hash was made with weaker parameters than today's."""
    try:
        return _hasher.check_needs_rehash(password_hash)
    except InvalidHashError:
        return True


def verify_dummy(password: str) -> None:
    """Spend the same time as a real verification (for unknown emails): no timing oracle."""
    global _dummy
    dummy = _dummy
    if dummy is None or dummy[0] is not _hasher:  # made with today's parameters
        with _dummy_lock:
            dummy = _dummy = (_hasher, _hasher.hash(secrets.token_urlsafe(16)))
    verify_password(dummy[1], password)
