"""The one error type use cases raise when they refuse: ``DomainError``.

A service holds no HTTP, but it knows how bad a refusal is; ``status`` says it in the terms
the API answers with, and ``api/errors.py`` renders every ``DomainError`` as problem+json.
Products subclass it to add what their refusals carry (a batch index, a retry delay).
"""

from __future__ import annotations

from typing import Any


class DomainError(Exception):
    """A refused operation. Nothing was written.

    ``code`` is stable (clients match on it), ``message`` is for people, ``status`` is the
    HTTP status, ``field`` names the offending input when there is one.
    """

    def __init__(
        self, code: str, message: str, *, status: int = 422, field: str | None = None
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.field = field

    def problem_field(self) -> str | None:
        """The input to name in the problem's ``errors`` (None: no field-level error)."""
        return self.field

    def problem_extra(self) -> dict[str, Any]:
        """Members added to the problem document."""
        return {}

    def problem_headers(self) -> dict[str, str] | None:
        return None
