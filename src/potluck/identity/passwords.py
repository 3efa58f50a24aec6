"""Password hashing with argon2id (argon2-cffi's recommended parameters)."""

from __future__ import annotations

import os
import secrets
import threading
from collections.abc import Iterator
from contextlib import contextmanager

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError, VerifyMismatchError

# Module state so that tests can swap in cheaper parameters (see tests/integration).
_hasher = PasswordHasher()
_dummy_lock = threading.Lock()
_dummy: tuple[PasswordHasher, str] | None = None
# Each argon2 call takes 64 MiB and a core for tens of milliseconds. Rate limits bound the
# calls per client, not per process: without this, 40 simultaneous registrations or sign-ins
# would take 2.5 GiB at once. With one slot per core the rest queue (in their worker threads)
# and the process's memory for hashing stays at cores x 64 MiB.
_slots = threading.BoundedSemaphore(os.cpu_count() or 1)


@contextmanager
def _slot() -> Iterator[None]:
    with _slots:
        yield


def hash_password(password: str) -> str:
    with _slot():
        return _hasher.hash(password)


def verify_password(password_hash: str, password: str) -> bool:
    """True when ``password`` matches; False on a mismatch or an unreadable hash."""
    try:
        with _slot():
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
            dummy = _dummy = (_hasher, hash_password(secrets.token_urlsafe(16)))
    verify_password(dummy[1], password)
