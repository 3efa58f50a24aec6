"""Field types shared by every API schema."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, Field, StringConstraints

from potluck.ledger.service import MAX_AMOUNT
from potluck.money import is_currency


def _currency(code: str) -> str:
    if not is_currency(code):
        raise ValueError(f"'{code}' is not an ISO 4217 currency code")
    return code


# Integers of minor units only: a float (12.5) or a string ("12.50") is a 422 naming the field.
Amount = Annotated[
    int,
    Field(
        strict=True,
        gt=0,
        le=MAX_AMOUNT,
        description="Integer minor units (1250 = 12.50 EUR). Floats and strings are refused.",
        examples=[1250],
    ),
]
CurrencyCode = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Z]{3}$"),
    AfterValidator(_currency),
    Field(description="ISO 4217 code", examples=["EUR"]),
]
ClientId = Annotated[
    str,
    StringConstraints(pattern=r"^[A-Za-z0-9_\-]{1,64}$"),
    Field(description="Your own id: 1–64 letters, digits, '_' or '-'."),
]
Metadata = Annotated[
    dict[str, str | int | bool | None] | None,
    Field(description="Up to 20 keys of your own data.", max_length=20),
]
