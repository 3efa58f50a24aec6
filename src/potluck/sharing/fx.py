"""Exchange rates for sharing: exact decimal rates, conversion to the group currency, and
the rates table (``potluck fx load FILE`` and ``PUT /v1/admin/fx-rates``).

A rate says 1 ``base`` = ``rate`` ``quote``; it is an exact decimal (a string such as
``"1.0834"``, never a float), at most 12 decimals and 40 characters, greater than zero. An
expense in ``base`` in a group keeping ``quote`` is converted ONCE, in minor units:

    group minor units = round_half_even(original minor units × rate × 10^(e_quote − e_base))

with each currency's own exponent (JPY 0, EUR 2, KWD 3). Parts of the expense entered in the
original currency (what each payer paid, exact shares, items, tax, tip) are then spread over
the converted total with ``potluck.money.allocate`` (largest remainder), so they still sum
exactly. Only the pair as loaded is used (a EUR→USD rate does not give USD→EUR): an inverse
would not be an exact decimal.
"""

from __future__ import annotations

import csv
import io
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import date, datetime
from decimal import ROUND_HALF_EVEN, Decimal, localcontext

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from potluck.errors import DomainError
from potluck.money import allocate, exponent, is_currency
from potluck.sharing.models import FxRate

MAX_DECIMALS = 12
MAX_RATE_CHARS = 40
MAX_ROWS = 10_000  # per load / PUT
MAX_AMOUNT = 10**15  # the ledger's largest transfer
_RATE = re.compile(r"[0-9]{1,27}(?:\.[0-9]{1,12})?")


@dataclass(frozen=True, slots=True)
class RateView:
    date: date
    base: str
    quote: str
    rate: str


def _bad_rate(message: str, field: str) -> DomainError:
    return DomainError("invalid_fx_rate", message, field=field)


def parse_rate(value: Decimal | str, *, field: str = "fx_rate") -> Decimal:
    """An exact positive decimal rate; a float, a bool, exponents or junk are refused."""
    if isinstance(value, Decimal):
        if not value.is_finite():
            raise _bad_rate("the rate must be a finite decimal", field)
        text = format(value, "f")
    elif isinstance(value, str):
        text = value.strip()
    else:
        raise _bad_rate(
            'the rate must be a decimal string such as "1.0834" (numbers are refused, as '
            "for amounts: no floats)",
            field,
        )
    if len(text) > MAX_RATE_CHARS or not _RATE.fullmatch(text):
        raise _bad_rate(
            f'"{text[:50]}" is not a rate: write a plain decimal such as 1.0834 '
            f"(at most {MAX_DECIMALS} decimals)",
            field,
        )
    rate = Decimal(text)
    if rate <= 0:
        raise _bad_rate("the rate must be greater than zero", field)
    return rate


def rate_text(rate: Decimal) -> str:
    """The canonical text of a rate: no exponent, no trailing zeros ("1.08340" → "1.0834")."""
    text = format(rate, "f")
    if "." in text:
        text = text.rstrip("0").rstrip(".")
    return text


def convert(amount: int, rate: Decimal, *, from_currency: str, to_currency: str) -> int:
    """``amount`` minor units of ``from_currency`` in minor units of ``to_currency``,
    rounded once, half to even."""
    shift = exponent(to_currency) - exponent(from_currency)
    with localcontext() as ctx:
        ctx.prec = 200  # exact: 15 digits × 40 digits × 10^shift fits with room to spare
        value = Decimal(amount) * rate * Decimal(10) ** shift
        return int(value.quantize(Decimal(1), rounding=ROUND_HALF_EVEN))


def spread(total: int, parts: Sequence[int]) -> list[int]:
    """Converted ``parts`` (non-negative, in the original currency) as shares of the converted
    ``total`` (largest remainder), summing exactly to ``total``."""
    if not parts:
        return []
    if sum(parts) == 0:
        return [0 for _ in parts]
    return allocate(total, list(parts))


def check_converted(amount: int, *, field: str = "amount") -> int:
    if not 0 < amount <= MAX_AMOUNT:
        raise DomainError(
            "fx_amount_out_of_range",
            f"converted at this rate the amount is {amount:,} minor units; it must be "
            f"between 1 and {MAX_AMOUNT:,}",
            field=field,
        )
    return amount


# --- the rates table ---


def _check_pair(base: str, quote: str, *, where: str, prefix: str = "") -> None:
    for code, name in ((base, "base"), (quote, "quote")):
        if not is_currency(code):
            raise DomainError(
                "unknown_currency",
                f"{where}: '{code}' is not an ISO 4217 currency code",
                field=f"{prefix}{name}",
            )
    if base == quote:
        raise DomainError(
            "invalid_fx_rate",
            f"{where}: base and quote are both {base}",
            field=f"{prefix}quote",
        )


def upsert_rates(session: Session, rows: Iterable[RateView], *, now: datetime) -> int:
    """Insert or replace rates (same day and pair → the new rate); returns how many rows.

    One ``INSERT … ON CONFLICT DO UPDATE`` per 500 rows, so concurrent loads of the same rates
    cannot collide; the caller validated the rows (``check_rows``/``parse_csv``).
    """
    items = [
        {"date": r.date, "base": r.base, "quote": r.quote, "rate": r.rate, "updated_at": now}
        for r in rows
    ]
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    for i in range(0, len(items), 500):
        stmt = insert(FxRate).values(items[i : i + 500])
        stmt = stmt.on_conflict_do_update(
            index_elements=["date", "base", "quote"],
            set_={"rate": stmt.excluded.rate, "updated_at": stmt.excluded.updated_at},
            where=FxRate.rate != stmt.excluded.rate,
        )
        session.execute(stmt)
    return len(items)


def check_rows(rows: Iterable[tuple[date, str, str, Decimal | str]]) -> list[RateView]:
    """Validate (date, base, quote, rate) rows; the error names the row (``rates.<i>``)."""
    out: dict[tuple[date, str, str], RateView] = {}
    for i, (day, base, quote, rate) in enumerate(rows):
        where = f"rates.{i}"
        _check_pair(base, quote, where=where, prefix=f"{where}.")
        text = rate_text(parse_rate(rate, field=f"{where}.rate"))
        out[(day, base, quote)] = RateView(day, base, quote, text)
        if len(out) > MAX_ROWS:
            raise DomainError("too_many_rates", f"at most {MAX_ROWS:,} rates at once")
    return list(out.values())


class CsvError(ValueError):
    """A bad line in a rates file; ``line`` is 1-based (the header is line 1)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def parse_csv(text: str) -> list[RateView]:
    """Rows of a ``date,base,quote,rate`` file (header row first). Any bad line: CsvError
    naming it, and nothing is returned."""
    reader = csv.reader(io.StringIO(text))
    header = next(reader, None)
    if header is None or [h.strip().lower() for h in header] != ["date", "base", "quote", "rate"]:
        raise CsvError(1, "the header must be: date,base,quote,rate")
    out: dict[tuple[date, str, str], RateView] = {}
    for row in reader:
        line = reader.line_num
        if not row or all(not c.strip() for c in row):
            continue
        if len(row) != 4:
            raise CsvError(line, f"expected 4 fields (date,base,quote,rate), got {len(row)}")
        day_text, base, quote, rate = (c.strip() for c in row)
        try:
            day = date.fromisoformat(day_text)
        except ValueError:
            raise CsvError(line, f"'{day_text}' is not a date (YYYY-MM-DD)") from None
        try:
            _check_pair(base, quote, where="the pair")
            value = rate_text(parse_rate(rate))
        except DomainError as exc:
            raise CsvError(line, exc.message) from None
        out[(day, base, quote)] = RateView(day, base, quote, value)
    return list(out.values())


def lookup_rate(session: Session, base: str, quote: str, on: date) -> Decimal:
    """The latest rate of base→quote on or before ``on``; 422 ``fx_rate_missing`` if none."""
    text = session.scalar(
        select(FxRate.rate)
        .where(FxRate.base == base, FxRate.quote == quote, FxRate.date <= on)
        .order_by(FxRate.date.desc())
        .limit(1)
    )
    if text is None:
        raise DomainError(
            "fx_rate_missing",
            f"no {base}→{quote} rate on or before {on.isoformat()}: give fx_rate in the "
            "request or load rates (potluck fx load, PUT /v1/admin/fx-rates)",
            field="fx_rate",
        )
    return Decimal(text)


def list_rates(
    session: Session, *, base: str | None = None, quote: str | None = None, limit: int = 100
) -> tuple[list[RateView], bool]:
    """Rates, by pair then newest day first."""
    query = select(FxRate)
    if base is not None:
        query = query.where(FxRate.base == base)
    if quote is not None:
        query = query.where(FxRate.quote == quote)
    rows = (
        session.execute(
            query.order_by(FxRate.base, FxRate.quote, FxRate.date.desc()).limit(limit + 1)
        )
        .scalars()
        .all()
    )
    return [RateView(r.date, r.base, r.quote, r.rate) for r in rows[:limit]], len(rows) > limit


__all__ = [
    "CsvError",
    "RateView",
    "check_converted",
    "check_rows",
    "convert",
    "list_rates",
    "lookup_rate",
    "parse_csv",
    "parse_rate",
    "rate_text",
    "spread",
    "upsert_rates",
]
