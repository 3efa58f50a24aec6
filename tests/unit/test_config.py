"""Settings validation: refuse to start on a configuration that is unsafe."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from potluck.config import Settings

SECRET_KEY_MIN_BYTES = 32


def test_a_short_secret_key_is_refused_naming_the_variable(monkeypatch):
    monkeypatch.setenv("POTLUCK_SECRET_KEY", "x" * (SECRET_KEY_MIN_BYTES - 1))
    with pytest.raises(ValidationError) as refused:
        Settings()
    message = str(refused.value)
    assert "POTLUCK_SECRET_KEY" in message
    assert "at least 32 bytes" in message
    assert "x" * (SECRET_KEY_MIN_BYTES - 1) not in message  # the secret is not echoed


def test_the_length_is_counted_in_bytes():
    with pytest.raises(ValidationError, match="POTLUCK_SECRET_KEY"):
        Settings(secret_key="é" * 15)  # 15 characters, 30 bytes
    assert Settings(secret_key="é" * 16).secret_key == "é" * 16  # 32 bytes


def test_a_long_enough_or_unset_secret_key_is_accepted(monkeypatch):
    monkeypatch.delenv("POTLUCK_SECRET_KEY", raising=False)
    assert Settings().secret_key is None
    assert Settings(secret_key="k" * SECRET_KEY_MIN_BYTES).secret_key == "k" * 32
    # an empty variable (as compose files often set) means unset: the generated key
    assert Settings(secret_key="").secret_key is None
