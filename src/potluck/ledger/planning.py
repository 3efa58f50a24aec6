"""Planning a batch of transfers: static checks, then each operation applied to the locked
accounts' in-memory totals under the balance rules, yielding the rows to write.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from potluck.clock import utc
from potluck.ids import new_id
from potluck.ledger.tables import _entry, _Totals
from potluck.ledger.types import (
    CLIENT_ID_PATTERN,
    MAX_AMOUNT,
    MAX_CODE_LENGTH,
    MAX_TIMEOUT_SECONDS,
    MAX_TOTAL,
    LedgerError,
    NewTransfer,
    Operation,
    PostPending,
    VoidPending,
)
from potluck.money import is_currency


@dataclass(slots=True)
class _Planned:
    values: dict[str, Any]
    entries: list[dict[str, Any]] = field(default_factory=list)


def _check_shapes(ops: Sequence[Operation]) -> list[str]:
    """Static checks that need no database; returns the client id of each operation."""
    ids: list[str] = []
    seen: set[str] = set()
    for index, op in enumerate(ops):
        if op.client_id is not None and not CLIENT_ID_PATTERN.match(op.client_id):
            raise LedgerError(
                "invalid_transfer_id",
                "a transfer id is 1–64 letters, digits, '_' or '-'",
                field="id",
                index=index,
            )
        if isinstance(op, NewTransfer):
            _check_amount(op.amount, index)
            if op.debit_account_id == op.credit_account_id:
                raise LedgerError(
                    "accounts_must_be_different",
                    "a transfer cannot debit and credit the same account",
                    field="credit_account",
                    index=index,
                )
            if op.timeout_seconds is not None:
                if not op.pending:
                    raise LedgerError(
                        "timeout_requires_pending",
                        "only a pending transfer can time out",
                        field="timeout_seconds",
                        index=index,
                    )
                t = op.timeout_seconds
                if (
                    isinstance(t, bool)
                    or not isinstance(t, int)
                    or not 0 < t <= MAX_TIMEOUT_SECONDS
                ):
                    raise LedgerError(
                        "invalid_timeout",
                        f"timeout_seconds must be a whole number from 1 to {MAX_TIMEOUT_SECONDS}",
                        field="timeout_seconds",
                        index=index,
                    )
            if not isinstance(op.code, str) or not 0 < len(op.code) <= MAX_CODE_LENGTH:
                raise LedgerError(
                    "invalid_code",
                    f"code must be 1–{MAX_CODE_LENGTH} characters",
                    field="code",
                    index=index,
                )
            if op.currency is not None and not is_currency(op.currency):
                raise LedgerError(
                    "unknown_currency",
                    f"'{op.currency}' is not an ISO 4217 currency code",
                    field="currency",
                    index=index,
                )
            client_id = op.client_id or new_id("tr")
        elif isinstance(op, PostPending):
            if op.amount is not None:
                _check_amount(op.amount, index)
            client_id = op.client_id or f"{op.pending_client_id}.post"
        else:
            client_id = op.client_id or f"{op.pending_client_id}.void"
        if client_id in seen:
            raise LedgerError(
                "duplicate_transfer_id",
                f"transfer id {client_id} appears twice in the batch",
                field="id",
                index=index,
            )
        seen.add(client_id)
        ids.append(client_id)
    return ids


def _check_amount(amount: int, index: int) -> None:
    if isinstance(amount, bool) or not isinstance(amount, int):
        raise LedgerError(
            "invalid_amount",
            "amount must be an integer of minor units",
            field="amount",
            index=index,
        )
    if amount <= 0:
        raise LedgerError(
            "amount_must_be_positive",
            "amount must be greater than zero",
            field="amount",
            index=index,
        )
    if amount > MAX_AMOUNT:
        raise LedgerError(
            "amount_too_large", f"amount must be at most {MAX_AMOUNT}", field="amount", index=index
        )


def _account(accounts: dict[str, _Totals], acc_id: str, field_name: str, index: int) -> _Totals:
    t = accounts.get(acc_id)
    if t is None:
        raise LedgerError(
            "account_not_found", f"no account {acc_id}", status=404, field=field_name, index=index
        )
    return t


def _plan_new(
    op: NewTransfer,
    client_id: str,
    accounts: dict[str, _Totals],
    scope: str,
    now: datetime,
    batch_id: str | None,
    index: int,
) -> _Planned:
    debit = _account(accounts, op.debit_account_id, "debit_account", index)
    credit = _account(accounts, op.credit_account_id, "credit_account", index)
    d, c = debit.row, credit.row
    if (d["book"], d["currency"]) != (c["book"], c["currency"]):
        raise LedgerError(
            "currency_mismatch" if d["currency"] != c["currency"] else "ledger_mismatch",
            f"accounts are in different ledgers ({d['book']}/{d['currency']} and "
            f"{c['book']}/{c['currency']}); a transfer never crosses ledgers",
            field="credit_account",
            index=index,
        )
    if op.currency is not None and op.currency != d["currency"]:
        raise LedgerError(
            "currency_mismatch",
            f"the accounts hold {d['currency']}, not {op.currency}",
            field="currency",
            index=index,
        )
    amount = op.amount
    # A hold is checked like a posted transfer: it must fit now, so that posting it can't fail.
    _check_debit(debit, amount, index)
    _check_credit(credit, amount, index)
    if op.pending:
        debit.debits_pending += amount
        credit.credits_pending += amount
        posted_delta, pending_delta = 0, amount
    else:
        debit.debits_posted += amount
        credit.credits_posted += amount
        posted_delta, pending_delta = amount, 0
    debit.changed = credit.changed = True
    _check_overflow(debit, index)
    _check_overflow(credit, index)
    # A generated client id is itself a fresh transfer id: one ULID instead of two.
    transfer_id = client_id if op.client_id is None else new_id("tr")
    timeout_at = now + timedelta(seconds=op.timeout_seconds) if op.timeout_seconds else None
    values = {
        "id": transfer_id,
        "scope": scope,
        "client_id": client_id,
        "kind": "pending" if op.pending else "posted",
        "status": "pending" if op.pending else "posted",
        "debit_account_id": op.debit_account_id,
        "credit_account_id": op.credit_account_id,
        "amount": amount,
        "book": d["book"],
        "currency": d["currency"],
        "code": op.code,
        "pending_id": None,
        "posted_amount": None,
        "timeout_at": timeout_at,
        "timeout_seconds": op.timeout_seconds,
        "batch_id": batch_id,
        "metadata": op.metadata,
        "created_at": now,
        "resolved_at": None,
    }
    return _Planned(
        values,
        [
            _entry(transfer_id, op.debit_account_id, "D", posted_delta, pending_delta, now),
            _entry(transfer_id, op.credit_account_id, "C", posted_delta, pending_delta, now),
        ],
    )


def _plan_resolution(
    op: PostPending | VoidPending,
    client_id: str,
    hold: dict[str, Any],
    accounts: dict[str, _Totals],
    scope: str,
    now: datetime,
    batch_id: str | None,
    index: int,
) -> _Planned:
    if hold["kind"] != "pending":
        raise LedgerError(
            "pending_transfer_not_pending",
            f"transfer {hold['client_id']} is not a pending transfer",
            status=409,
            field="pending_id",
            index=index,
        )
    status = hold["status"]
    if status != "pending":
        raise LedgerError(
            f"pending_transfer_already_{status}",
            f"pending transfer {hold['client_id']} is already {status}",
            status=409,
            field="pending_id",
            index=index,
        )
    if hold["timeout_at"] is not None and utc(hold["timeout_at"]) <= now:
        raise LedgerError(
            "pending_transfer_expired",
            f"pending transfer {hold['client_id']} timed out at {utc(hold['timeout_at'])}",
            status=409,
            field="pending_id",
            index=index,
        )
    debit = _account(accounts, hold["debit_account_id"], "debit_account", index)
    credit = _account(accounts, hold["credit_account_id"], "credit_account", index)
    amount = hold["amount"]
    if isinstance(op, PostPending):
        posted = amount if op.amount is None else op.amount
        if posted > amount:
            raise LedgerError(
                "exceeds_pending_transfer_amount",
                f"cannot post {posted}: the hold is for {amount}",
                field="amount",
                index=index,
            )
        debit.debits_pending -= amount
        credit.credits_pending -= amount
        debit.debits_posted += posted
        credit.credits_posted += posted
        hold["status"], hold["posted_amount"] = "posted", posted
        kind, posted_delta = "post_pending", posted
    else:
        debit.debits_pending -= amount
        credit.credits_pending -= amount
        hold["status"] = "voided"
        kind, posted, posted_delta = "void_pending", amount, 0
    hold["resolved_at"] = now
    debit.changed = credit.changed = True
    _check_overflow(debit, index)
    _check_overflow(credit, index)
    transfer_id = new_id("tr")
    values = {
        "id": transfer_id,
        "scope": scope,
        "client_id": client_id,
        "kind": kind,
        "status": "posted" if kind == "post_pending" else "voided",
        "debit_account_id": hold["debit_account_id"],
        "credit_account_id": hold["credit_account_id"],
        "amount": posted,
        "book": hold["book"],
        "currency": hold["currency"],
        "code": hold["code"],
        "pending_id": hold["id"],
        "posted_amount": None,
        "timeout_at": None,
        "timeout_seconds": None,
        "batch_id": batch_id,
        "metadata": op.metadata,
        "created_at": now,
        "resolved_at": None,
    }
    return _Planned(
        values,
        [
            _entry(transfer_id, hold["debit_account_id"], "D", posted_delta, -amount, now),
            _entry(transfer_id, hold["credit_account_id"], "C", posted_delta, -amount, now),
        ],
    )


def _check_debit(t: _Totals, amount: int, index: int) -> None:
    if t.row["debits_must_not_exceed_credits"] and (
        t.debits_posted + t.debits_pending + amount > t.credits_posted
    ):
        raise LedgerError(
            "insufficient_funds",
            f"account {t.row['id']} has {t.credits_posted - t.debits_posted - t.debits_pending} "
            f"available, {amount} needed",
            status=402,
            field="debit_account",
            index=index,
        )


def _check_credit(t: _Totals, amount: int, index: int) -> None:
    if t.row["credits_must_not_exceed_debits"] and (
        t.credits_posted + t.credits_pending + amount > t.debits_posted
    ):
        raise LedgerError(
            "credit_limit_exceeded",
            f"account {t.row['id']} may not be credited beyond its debits",
            status=402,
            field="credit_account",
            index=index,
        )


def _check_overflow(t: _Totals, index: int) -> None:
    if max(t.debits_posted + t.debits_pending, t.credits_posted + t.credits_pending) > MAX_TOTAL:
        raise LedgerError(
            "overflow", f"account {t.row['id']} would overflow", field="amount", index=index
        )
