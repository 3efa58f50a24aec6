"""Admin analytics: money moved per day and product, fraud rates, top merchants, computed by
SQL aggregation over the ledger's transfers (the source of truth for money movements).

Days are UTC calendar days; ``start``/``end`` are inclusive dates. Every figure is a sum of
integer minor units per currency (currencies are never added together).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any

from sqlalchemy import Case, ColumnElement, String, and_, case, cast, func, literal, select
from sqlalchemy.orm import Session

from potluck.analytics.products import CODE_RULES, MOVING_KINDS, OTHER
from potluck.errors import DomainError
from potluck.ledger.models import Account, Transfer

MAX_DAYS = 366
TOP_MERCHANTS = 10


class AnalyticsError(DomainError):
    """A refused analytics request."""


def check_range(start: date, end: date) -> tuple[datetime, datetime]:
    """The [from, to] dates as a half-open UTC datetime interval."""
    if end < start:
        raise AnalyticsError("invalid_range", "to must not be before from", field="to")
    if (end - start).days + 1 > MAX_DAYS:
        raise AnalyticsError("invalid_range", f"a range covers at most {MAX_DAYS} days", field="to")
    lo = datetime.combine(start, time.min, tzinfo=UTC)
    return lo, datetime.combine(end + timedelta(days=1), time.min, tzinfo=UTC)


def day_of(column: Any, dialect: str) -> ColumnElement[str]:
    """The UTC calendar day of a timestamp column as 'YYYY-MM-DD' text, on either database
    (SQLite keeps UTC text and has date(); PostgreSQL has timestamptz and to_char)."""
    if dialect == "postgresql":
        return func.to_char(func.timezone("UTC", column), "YYYY-MM-DD")
    return cast(func.date(column), String)


def product_of() -> Case[Any]:
    """CASE over CODE_RULES (first match wins): a transfer's product, NULL when it is a second
    leg that is not counted, 'other' for a code no rule knows."""
    purpose = Transfer.metadata_["purpose"].as_string()
    whens: list[tuple[ColumnElement[bool], Any]] = []
    for rule in CODE_RULES:
        cond: list[ColumnElement[bool]] = [Transfer.code == rule.code]
        if rule.purpose is not None:
            cond.append(purpose == rule.purpose)
        if rule.book is not None:
            cond.append(Transfer.book == rule.book)
        whens.append((and_(*cond), literal(rule.product) if rule.product else None))
    return case(*whens, else_=literal(OTHER))


def _moving(start_at: datetime, end_at: datetime) -> tuple[ColumnElement[bool], ...]:
    return (
        Transfer.kind.in_(MOVING_KINDS),
        Transfer.created_at >= start_at,
        Transfer.created_at < end_at,
    )


@dataclass(frozen=True, slots=True)
class DailyRow:
    date: str
    product: str
    currency: str
    count: int
    volume: int


def daily(session: Session, *, start: date, end: date) -> list[DailyRow]:
    """Count and volume per day, product and currency, in one GROUP BY."""
    start_at, end_at = check_range(start, end)
    dialect = session.get_bind().dialect.name
    day = day_of(Transfer.created_at, dialect).label("day")
    product = product_of().label("product")
    inner = select(day, product, Transfer.currency, Transfer.amount).where(
        *_moving(start_at, end_at)
    )
    sub = inner.subquery()
    query = (
        select(
            sub.c.day,
            sub.c.product,
            sub.c.currency,
            func.count().label("n"),
            func.sum(sub.c.amount).label("volume"),
        )
        .where(sub.c.product.is_not(None))
        .group_by(sub.c.day, sub.c.product, sub.c.currency)
        .order_by(sub.c.day, sub.c.product, sub.c.currency)
    )
    return [
        DailyRow(
            date=str(r.day),
            product=r.product,
            currency=r.currency,
            count=int(r.n),
            volume=int(r.volume or 0),
        )
        for r in session.execute(query)
    ]


@dataclass(frozen=True, slots=True)
class TotalRow:
    product: str
    currency: str
    count: int
    volume: int


def totals(rows: list[DailyRow]) -> list[TotalRow]:
    acc: dict[tuple[str, str], list[int]] = {}
    for r in rows:
        slot = acc.setdefault((r.product, r.currency), [0, 0])
        slot[0] += r.count
        slot[1] += r.volume
    return [
        TotalRow(product=p, currency=c, count=n, volume=v) for (p, c), (n, v) in sorted(acc.items())
    ]


@dataclass(frozen=True, slots=True)
class MerchantRow:
    party_id: str
    name: str
    platform_id: str
    currency: str
    count: int
    volume: int


def top_merchants(
    session: Session, *, start: date, end: date, limit: int = TOP_MERCHANTS
) -> list[MerchantRow]:
    """Merchants by money received into their wallets (order splits, wallet payments), the
    ``limit`` largest per currency."""
    from potluck.marketplace.models import Party

    start_at, end_at = check_range(start, end)
    volume = func.sum(Transfer.amount).label("volume")
    query = (
        select(
            Party.id,
            Party.name,
            Party.platform_id,
            Transfer.currency,
            func.count().label("n"),
            volume,
        )
        .join(Account, Account.id == Transfer.credit_account_id)
        .join(Party, Party.id == Account.owner)
        .where(*_moving(start_at, end_at), Account.code == "wallet", Party.kind == "merchant")
        .group_by(Party.id, Party.name, Party.platform_id, Transfer.currency)
        .order_by(Transfer.currency, volume.desc(), Party.id)
    )
    out: list[MerchantRow] = []
    per_currency: dict[str, int] = {}
    for r in session.execute(query):
        if per_currency.get(r.currency, 0) >= limit:
            continue
        per_currency[r.currency] = per_currency.get(r.currency, 0) + 1
        out.append(
            MerchantRow(
                party_id=r.id,
                name=r.name,
                platform_id=r.platform_id,
                currency=r.currency,
                count=int(r.n),
                volume=int(r.volume or 0),
            )
        )
    return out


@dataclass(frozen=True, slots=True)
class FraudFigures:
    scored: int
    flagged: int
    blocked: int
    in_review: int

    @property
    def flagged_rate(self) -> float:
        return round(self.flagged / self.scored, 4) if self.scored else 0.0


def fraud(session: Session, *, start: date, end: date) -> FraudFigures:
    """Through the risk product's ``decision_counts`` (or this package's stand-in)."""
    from potluck.analytics import risk_counts

    start_at, end_at = check_range(start, end)
    counts = risk_counts.decision_counts(session, start_at, end_at)
    return FraudFigures(
        scored=counts.get("scored", 0),
        flagged=counts.get("flagged", 0),
        blocked=counts.get("blocked", 0),
        in_review=counts.get("in_review", 0),
    )


@dataclass(frozen=True, slots=True)
class Report:
    start: date
    end: date
    daily: list[DailyRow]
    totals: list[TotalRow]
    fraud: FraudFigures
    top_merchants: list[MerchantRow]


def report(session: Session, *, start: date, end: date) -> Report:
    rows = daily(session, start=start, end=end)
    return Report(
        start=start,
        end=end,
        daily=rows,
        totals=totals(rows),
        fraud=fraud(session, start=start, end=end),
        top_merchants=top_merchants(session, start=start, end=end),
    )


# ---------------------------------------------------------------------------- exports

TRANSFER_COLUMNS = ("id", "created_at", "date", "product", "code", "kind", "book", "currency",
                    "amount")  # fmt: skip


def transfer_rows(
    session: Session, *, start: date, end: date, chunk: int = 5000
) -> Iterator[list[dict[str, Any]]]:
    """Every counted-or-not money movement of the range, oldest first, in chunks of ``chunk``
    rows (keyset pagination on the id: memory stays flat however large the range)."""
    start_at, end_at = check_range(start, end)
    dialect = session.get_bind().dialect.name
    day = day_of(Transfer.created_at, dialect).label("day")
    product = func.coalesce(product_of(), literal("(second leg)")).label("product")
    after = ""
    while True:
        query = (
            select(
                Transfer.id,
                Transfer.created_at,
                day,
                product,
                Transfer.code,
                Transfer.kind,
                Transfer.book,
                Transfer.currency,
                Transfer.amount,
            )
            .where(*_moving(start_at, end_at), Transfer.id > after)
            .order_by(Transfer.id)
            .limit(chunk)
        )
        rows = session.execute(query).all()
        if not rows:
            return
        yield [
            {
                "id": r.id,
                "created_at": r.created_at.isoformat(),
                "date": str(r.day),
                "product": r.product,
                "code": r.code,
                "kind": r.kind,
                "book": r.book,
                "currency": r.currency,
                "amount": int(r.amount),
            }
            for r in rows
        ]
        if len(rows) < chunk:
            return
        after = rows[-1].id
