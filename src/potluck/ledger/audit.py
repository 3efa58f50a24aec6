"""The ledger audit: recompute every running total from the entries and check the books balance."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from sqlalchemy import case, func, select
from sqlalchemy.orm import Session

from potluck.ledger.tables import _ACCOUNTS, _ENTRIES, _TRANSFERS


@dataclass
class AuditReport:
    ledgers: int = 0
    accounts: int = 0
    transfers: int = 0
    entries: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.problems


def audit(session: Session) -> AuditReport:
    """Check, per ledger, that debits equal credits, and that every account's four running
    totals equal the sums of its entries."""
    report = AuditReport()
    a = _ACCOUNTS.c
    totals = session.execute(
        select(
            a.book,
            a.currency,
            func.count(),
            func.coalesce(func.sum(a.debits_posted), 0),
            func.coalesce(func.sum(a.credits_posted), 0),
            func.coalesce(func.sum(a.debits_pending), 0),
            func.coalesce(func.sum(a.credits_pending), 0),
        ).group_by(a.book, a.currency)
    ).all()
    for book, currency, count, dpo, cpo, dpe, cpe in totals:
        report.ledgers += 1
        report.accounts += count
        if dpo != cpo:
            report.problems.append(
                f"ledger {book}/{currency}: debits posted {dpo} != credits posted {cpo}"
            )
        if dpe != cpe:
            report.problems.append(
                f"ledger {book}/{currency}: debits pending {dpe} != credits pending {cpe}"
            )
    e = _ENTRIES.c

    def side_sum(side: str, column: Any) -> Any:
        return func.coalesce(func.sum(case((e.side == side, column), else_=0)), 0)

    sums = (
        select(
            e.account_id,
            side_sum("D", e.posted_delta).label("dpo"),
            side_sum("C", e.posted_delta).label("cpo"),
            side_sum("D", e.pending_delta).label("dpe"),
            side_sum("C", e.pending_delta).label("cpe"),
            func.count().label("n"),
        )
        .group_by(e.account_id)
        .subquery()
    )
    rows = session.execute(
        select(
            a.id,
            a.debits_must_not_exceed_credits,
            a.credits_must_not_exceed_debits,
            a.debits_posted,
            a.credits_posted,
            a.debits_pending,
            a.credits_pending,
            func.coalesce(sums.c.dpo, 0),
            func.coalesce(sums.c.cpo, 0),
            func.coalesce(sums.c.dpe, 0),
            func.coalesce(sums.c.cpe, 0),
            func.coalesce(sums.c.n, 0),
        ).outerjoin(sums, sums.c.account_id == a.id)
    ).all()
    for acc_id, d_limited, c_limited, dpo, cpo, dpe, cpe, s_dpo, s_cpo, s_dpe, s_cpe, n in rows:
        report.entries += n
        for name, stored, summed in (
            ("debits_posted", dpo, s_dpo),
            ("credits_posted", cpo, s_cpo),
            ("debits_pending", dpe, s_dpe),
            ("credits_pending", cpe, s_cpe),
        ):
            if stored != summed:
                report.problems.append(
                    f"account {acc_id}: {name} is {stored} but its entries sum to {summed}"
                )
        if min(dpo, cpo, dpe, cpe) < 0:
            report.problems.append(f"account {acc_id}: a running total is negative")
        if d_limited and dpo + dpe > cpo:
            report.problems.append(
                f"account {acc_id}: debits {dpo} + {dpe} pending exceed credits {cpo}"
            )
        if c_limited and cpo + cpe > dpo:
            report.problems.append(
                f"account {acc_id}: credits {cpo} + {cpe} pending exceed debits {dpo}"
            )
    report.transfers = session.execute(select(func.count()).select_from(_TRANSFERS)).scalar_one()
    orphans = session.execute(
        select(func.count())
        .select_from(_TRANSFERS)
        .where(~select(_ENTRIES.c.id).where(_ENTRIES.c.transfer_id == _TRANSFERS.c.id).exists())
    ).scalar_one()
    if orphans:
        report.problems.append(f"{orphans} transfers have no entries")
    return report
