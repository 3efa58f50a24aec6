"""Money: integer minor units plus an ISO 4217 currency, and the one allocation function.

No float ever touches an amount. ``allocate`` splits a total by integer weights with the
largest-remainder method; the parts always sum to the total.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from decimal import Decimal, localcontext
from functools import lru_cache

from babel.numbers import format_currency, get_currency_precision, list_currencies

# Codes Babel knows that are not money one can hold.
_NOT_MONEY = {
    "XXX",
    "XTS",
    "XAU",
    "XAG",
    "XPD",
    "XPT",
    "XBA",
    "XBB",
    "XBC",
    "XBD",
    "XDR",
    "XSU",
    "XUA",
}


class MoneyError(ValueError):
    """A bad amount or currency; ``code`` says what was wrong."""

    def __init__(self, message: str, *, code: str = "invalid_amount") -> None:
        super().__init__(message)
        self.code = code


@lru_cache(maxsize=1)
def _currencies() -> frozenset[str]:
    return frozenset(c for c in list_currencies() if len(c) == 3 and c not in _NOT_MONEY)


def is_currency(code: str) -> bool:
    return code in _currencies()


def check_currency(code: str) -> str:
    if not isinstance(code, str) or not is_currency(code):
        raise MoneyError(f"'{code}' is not an ISO 4217 currency code", code="unknown_currency")
    return code


@lru_cache(maxsize=512)
def exponent(currency: str) -> int:
    """Digits after the decimal point: JPY 0, EUR 2, KWD 3."""
    return int(get_currency_precision(check_currency(currency)))


@dataclass(frozen=True, slots=True)
class Money:
    """An amount in minor units (cents, yen, fils) of one currency."""

    amount: int
    currency: str

    def __post_init__(self) -> None:
        if isinstance(self.amount, bool) or not isinstance(self.amount, int):
            raise MoneyError("amount must be an integer number of minor units")
        check_currency(self.currency)

    @classmethod
    def parse(cls, text: str, currency: str) -> Money:
        return cls(parse_amount(text, currency), currency)

    def _same(self, other: Money) -> None:
        if self.currency != other.currency:
            raise MoneyError(
                f"cannot combine {self.currency} with {other.currency}", code="currency_mismatch"
            )

    def __add__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount + other.amount, self.currency)

    def __sub__(self, other: Money) -> Money:
        self._same(other)
        return Money(self.amount - other.amount, self.currency)

    def __neg__(self) -> Money:
        return Money(-self.amount, self.currency)

    def __lt__(self, other: Money) -> bool:
        self._same(other)
        return self.amount < other.amount

    def __le__(self, other: Money) -> bool:
        self._same(other)
        return self.amount <= other.amount

    def allocate(self, weights: Sequence[int]) -> list[Money]:
        return [Money(p, self.currency) for p in allocate(self.amount, weights)]

    def to_decimal(self) -> Decimal:
        return _to_decimal(self.amount, self.currency)

    def format(self, locale: str = "en_US") -> str:
        return format_money(self.amount, self.currency, locale)

    def __str__(self) -> str:
        return f"{self.to_decimal():f} {self.currency}"


def allocate(total: int, weights: Sequence[int]) -> list[int]:
    """Split ``total`` in proportion to non-negative integer ``weights``.

    Largest remainder: everyone gets the floor of their exact share, and the minor units left
    over go one each to the largest fractional remainders; ties go to the earlier position.
    The parts always sum to ``total``. A negative total is split as the mirror image of its
    absolute value, so ``allocate(-t, w) == [-p for p in allocate(t, w)]``.
    """
    if isinstance(total, bool) or not isinstance(total, int):
        raise MoneyError("total must be an integer number of minor units")
    if not weights:
        raise MoneyError("allocate needs at least one weight", code="invalid_weights")
    for w in weights:
        if isinstance(w, bool) or not isinstance(w, int) or w < 0:
            raise MoneyError("weights must be non-negative integers", code="invalid_weights")
    weight_sum = sum(weights)
    if weight_sum == 0:
        raise MoneyError("weights must not all be zero", code="invalid_weights")
    if total < 0:
        return [-p for p in allocate(-total, weights)]
    parts = []
    remainders = []
    for i, w in enumerate(weights):
        q, r = divmod(total * w, weight_sum)
        parts.append(q)
        remainders.append((-r, i))
    left = total - sum(parts)
    for _, i in sorted(remainders)[:left]:
        parts[i] += 1
    return parts


# ASCII digits only: ``\d`` would also accept Arabic-Indic or full-width digits.
_GROUPED = re.compile(r"[0-9]{1,3}(?:,[0-9]{3})+(?:\.[0-9]+)?")
_PLAIN = re.compile(r"[0-9]+(?:\.[0-9]+)?")
_MAX_TEXT = 64  # far beyond any real amount; keeps int() away from huge strings


def parse_amount(text: str, currency: str) -> int:
    """Parse a decimal string typed by a person ("12.50", "1,234.56", "-3") into minor units.

    Refuses more decimals than the currency has (no silent rounding) and anything that is
    not a plain number. The conversion is exact integer arithmetic: ``Decimal`` would round
    to its 28-digit context precision.
    """
    digits = exponent(currency)
    s = text.strip() if isinstance(text, str) else ""
    sign = 1
    if s.startswith("-"):
        sign, s = -1, s[1:].strip()
    elif s.startswith("+"):
        s = s[1:].strip()
    if len(s) > _MAX_TEXT:
        raise MoneyError(f"'{text[:20]}…' is too long to be an amount")
    if _GROUPED.fullmatch(s):
        s = s.replace(",", "")
    elif not _PLAIN.fullmatch(s):
        raise MoneyError(f"'{text}' is not an amount (write it like 12.50 or 1,234.56)")
    whole, _, fraction = s.partition(".")
    fraction = fraction.rstrip("0")
    if len(fraction) > digits:
        raise MoneyError(f"{currency} has {digits} decimal places; '{text}' has more")
    minor = int(whole) * 10**digits + int(fraction.ljust(digits, "0") or "0")
    return sign * minor


def _to_decimal(amount: int, currency: str) -> Decimal:
    """Exactly ``amount`` minor units as a decimal number of major units (no rounding)."""
    sign, digits, _ = Decimal(amount).as_tuple()
    return Decimal((sign, digits, -exponent(currency)))


def format_money(amount: int, currency: str, locale: str = "en_US") -> str:
    """Format minor units for people, e.g. 123456 EUR → '€1,234.56' (en_US)."""
    value = _to_decimal(amount, currency)
    # Babel quantizes in the current decimal context; give it room for any integer.
    with localcontext() as ctx:
        ctx.prec = max(ctx.prec, len(value.as_tuple().digits) + 4)
        return str(format_currency(value, currency, locale=locale))
