"""Helpers shared by the marketplace's use cases."""

from __future__ import annotations

from typing import Any, cast

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session

from potluck.errors import DomainError
from potluck.ledger import service as ledger
from potluck.money import MoneyError, check_currency


def table_of(model: type[Any]) -> Table:
    return cast(Table, model.__table__)


def dialect_insert(session: Session) -> Any:
    if session.get_bind().dialect.name == "postgresql":
        return postgresql.insert
    return sqlite.insert


def check_amount(amount: int, field: str = "amount") -> None:
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise DomainError("invalid_amount", "amount must be a positive integer", field=field)
    if amount > ledger.MAX_AMOUNT:
        raise DomainError("invalid_amount", f"amount is at most {ledger.MAX_AMOUNT}", field=field)


def currency_field(currency: str) -> str:
    try:
        return check_currency(currency)
    except MoneyError as exc:
        raise DomainError(exc.code, str(exc), field="currency") from None
