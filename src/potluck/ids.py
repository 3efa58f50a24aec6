"""Opaque, time-ordered identifiers: ``<prefix>_<26 chars>`` (ULID layout, Crockford base32).

Sorting ids sorts by creation time, which cursor pagination relies on.
"""

from __future__ import annotations

import base64
import os
import threading
import time

_CROCKFORD = "0123456789ABCDEFGHJKMNPQRSTVWXYZ"
_RFC4648 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567"
_TO_CROCKFORD = str.maketrans(_RFC4648, _CROCKFORD)
_RAND_BITS = 80
_lock = threading.Lock()
_last_ms = 0
_last_rand = 0


def _encode(value: int) -> str:
    """The 26 base32 characters of a 128-bit value (130 bits, the top two zero).

    b32encode works in 40-bit groups, so the value is written into 160 bits and the 26 low
    characters are kept; done in C, this is several times faster than a Python digit loop.
    """
    text = base64.b32encode(value.to_bytes(20, "big")).decode("ascii")
    return text[-26:].translate(_TO_CROCKFORD)


def ulid() -> str:
    """A monotonic ULID: within one millisecond the random part is incremented."""
    global _last_ms, _last_rand
    with _lock:
        ms = int(time.time() * 1000)
        if ms <= _last_ms:
            ms = _last_ms
            _last_rand = (_last_rand + 1) & ((1 << _RAND_BITS) - 1)
        else:
            # One bit short of 80, so that incrementing within a millisecond cannot overflow.
            _last_rand = int.from_bytes(os.urandom(10), "big") >> 1
        _last_ms = ms
        rand = _last_rand
    return _encode((ms << _RAND_BITS) | rand)


def new_id(prefix: str) -> str:
    return f"{prefix}_{ulid()}"
