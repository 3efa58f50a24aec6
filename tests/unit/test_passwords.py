"""Argon2 runs in a bounded number of slots per process (64 MiB each)."""

from __future__ import annotations

import os
import threading

from potluck.identity import passwords


class CountingSlots:
    """Stands in for the semaphore: counts who holds a slot."""

    def __init__(self):
        self.held = 0
        self.entered = 0
        self.lock = threading.Lock()

    def __enter__(self):
        with self.lock:
            self.held += 1
            self.entered += 1

    def __exit__(self, *exc):
        with self.lock:
            self.held -= 1


class SlotCheckingHasher:
    """A hasher that fails unless the caller holds a slot while it runs."""

    def __init__(self, slots):
        self.slots = slots

    def _check(self):
        assert self.slots.held == 1, "argon2 ran without holding a slot"

    def hash(self, password):
        self._check()
        return "$argon2id$fake$" + password

    def verify(self, password_hash, password):
        self._check()
        return password_hash == "$argon2id$fake$" + password


def test_every_argon2_call_holds_a_slot(monkeypatch):
    slots = CountingSlots()
    monkeypatch.setattr(passwords, "_slots", slots)
    monkeypatch.setattr(passwords, "_hasher", SlotCheckingHasher(slots))
    monkeypatch.setattr(passwords, "_dummy", None)

    stored = passwords.hash_password("correct horse battery")
    assert passwords.verify_password(stored, "correct horse battery")
    assert not passwords.verify_password(stored, "wrong password!")
    passwords.verify_dummy("anything at all")  # one hash (the dummy) and one verify
    assert slots.entered == 5
    assert slots.held == 0


def test_slots_are_bounded_by_the_cores():
    slots = passwords._slots
    assert isinstance(slots, threading.BoundedSemaphore)
    taken = 0
    while slots.acquire(blocking=False):
        taken += 1
    for _ in range(taken):
        slots.release()
    assert 1 <= taken <= (os.cpu_count() or 1)
