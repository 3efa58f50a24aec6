"""Split rules: versioned per platform and currency; the newest version is current."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from potluck.clock import utc
from potluck.errors import DomainError
from potluck.ids import new_id
from potluck.marketplace.common import currency_field
from potluck.marketplace.models import (
    Party,
    SplitRuleSet,
)
from potluck.splits import SplitError, SplitRules, validate_rules

# ---------------------------------------------------------------- split rules


@dataclass(frozen=True, slots=True)
class RuleSetView:
    id: str
    platform_id: str
    currency: str
    version: int
    split: SplitRules
    created_at: datetime


def _rule_set_view(r: SplitRuleSet) -> RuleSetView:
    return RuleSetView(
        id=r.id,
        platform_id=r.platform_id,
        currency=r.currency,
        version=r.version,
        split=SplitRules.from_dict({"rules": r.rules, "remainder_to": r.remainder_to}),
        created_at=utc(r.created_at),
    )


def check_split_parties(
    session: Session, split: SplitRules, *, platform_id: str, currency: str, field: str = ""
) -> None:
    """Every party of ``split`` is the platform's and holds ``currency`` (one query)."""
    rows = session.execute(
        select(Party.id, Party.currency).where(
            Party.platform_id == platform_id, Party.id.in_(split.parties)
        )
    ).all()
    currencies = {pid: cur for pid, cur in rows}
    named = [(f"{field}rules.{i}.party", r.party) for i, r in enumerate(split.rules)]
    named.append((f"{field}remainder_to", split.remainder_to))
    for where, party_id in named:
        if party_id not in currencies:
            raise SplitError("unknown_party", f"no party {party_id}", field=where)
        if currencies[party_id] != currency:
            raise SplitError(
                "currency_mismatch",
                f"party {party_id} holds {currencies[party_id]}, not {currency}",
                field=where,
            )


def put_split_rules(
    session: Session, *, platform_id: str, currency: str, split: SplitRules, now: datetime
) -> RuleSetView:
    """A new version of the platform's rules for ``currency`` (versions start at 1).

    Idempotent: rules identical to the current version (same rules in the same order,
    same ``remainder_to``) return the current version unchanged, so a retried PUT adds
    no version. Two identical concurrent PUTs add one version at most: the loser of the
    race on the unique version number re-reads the current version and finds its rules.
    """
    currency_field(currency)
    validate_rules(split)
    check_split_parties(session, split, platform_id=platform_id, currency=currency)
    postgres = session.get_bind().dialect.name == "postgresql"
    for _ in range(10):
        current = session.execute(
            select(SplitRuleSet)
            .where(SplitRuleSet.platform_id == platform_id, SplitRuleSet.currency == currency)
            .order_by(SplitRuleSet.version.desc())
            .limit(1)
        ).scalar_one_or_none()
        if current is not None:
            view = _rule_set_view(current)
            if view.split.to_dict() == split.to_dict():
                return view
        row = SplitRuleSet(
            id=new_id("srs"),
            platform_id=platform_id,
            currency=currency,
            version=(current.version if current is not None else 0) + 1,
            rules=[r.to_dict() for r in split.rules],
            remainder_to=split.remainder_to,
            created_at=now,
        )
        savepoint = session.begin_nested() if postgres else None
        try:
            session.add(row)
            session.flush()
        except IntegrityError:
            # A concurrent PUT took this version number; take the next one.
            if savepoint is None:
                raise
            savepoint.rollback()
            continue
        if savepoint is not None:
            savepoint.commit()
        return _rule_set_view(row)
    raise DomainError("split_rules_busy", "too many concurrent rule changes; retry", status=409)


def current_split_rules(session: Session, *, platform_id: str, currency: str) -> RuleSetView:
    """The platform's newest rules for ``currency``, or 404 ``split_rules_not_found``."""
    row = session.execute(
        select(SplitRuleSet)
        .where(SplitRuleSet.platform_id == platform_id, SplitRuleSet.currency == currency)
        .order_by(SplitRuleSet.version.desc())
        .limit(1)
    ).scalar_one_or_none()
    if row is None:
        raise DomainError(
            "split_rules_not_found", f"no split rules for {currency}", status=404, field="currency"
        )
    return _rule_set_view(row)
