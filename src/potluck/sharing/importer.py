"""Import a Splitwise CSV export into a new group.

The file (what Splitwise's "Export as spreadsheet" writes, see ``export.py``): a header whose
first five columns are Date, Description, Category, Cost, Currency (taken by position:
Splitwise translates them, e.g. ``Catégorie``, ``Devise``) and then one column per member;
one row per expense or payment, each member's cell holding the row's NET effect on that
member (paid − owed, so a row sums to zero); blank lines; ``Total balance`` rows (one per
currency). What we do with it:

* blank lines and ``Total balance`` rows are skipped (the totals are kept for the reply);
* a row whose Description starts with ``(deleted)`` is skipped and counted: Splitwise's own
  export leaves deleted expenses out, so a file that keeps them marks them that way;
* a row with Category ``Payment`` becomes a settlement: the member with the positive net
  paid the member with the negative net (both equal to the cost in size);
* every other row becomes an expense whose per-member nets equal the CSV's exactly. The file
  gives nets only, so who paid is reconstructed, deterministically: every member with a
  negative net owes exactly that much; the members with a positive net paid; the rest of the
  cost (cost − the sum of positive nets: what the payers spent on themselves) is owed by the
  payers in proportion to their nets (``allocate``, largest remainder), and each payer paid
  their net plus that share. Members with a zero net neither paid nor owe;
* a row in another currency than the group's is converted by ``create_expense`` at the rate
  the request gives for that currency (``rates``), else at the rates table's rate for the
  row's date (422 ``fx_rate_missing`` otherwise).

Everything is validated before anything is written: a bad row is 422 ``invalid_csv_row`` with
its line number (``line``) and nothing is created. The import is one transaction.
"""

from __future__ import annotations

import csv
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date, datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.orm import Session

from potluck.errors import DomainError
from potluck.money import MoneyError, allocate, check_currency, parse_amount
from potluck.sharing import fx
from potluck.sharing.balances import record_settlement
from potluck.sharing.expenses import CATEGORY_MAX, DESCRIPTION_MAX, create_expense
from potluck.sharing.groups import MAX_MEMBERS, NAME_MAX, check_emails, create_group, user_email
from potluck.sharing.models import SharingMember
from potluck.splits.expense import MAX_AMOUNT, ExpenseSplit, Share

PAYMENT_CATEGORY = "payment"
TOTAL_BALANCE = "total balance"
DELETED_PREFIX = "(deleted)"
FIXED_COLUMNS = 5
MAX_ROWS = 20_000
MAX_CSV_CHARS = 5_000_000

Progress = Callable[[int, int], None]  # (rows done, rows to do)


class CsvRowError(DomainError):
    """A line of the file that cannot be imported (nothing was created)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__("invalid_csv_row", f"line {line}: {message}", field="csv")
        self.line = line

    def problem_extra(self) -> dict[str, Any]:
        return {"line": self.line}


@dataclass(frozen=True, slots=True)
class CsvRow:
    line: int  # 1-based line number in the file
    date: date
    description: str
    category: str
    cost: int  # minor units of ``currency``
    currency: str
    nets: tuple[int, ...]  # one per member column, minor units of ``currency``
    payment: bool


@dataclass(slots=True)
class SplitwiseFile:
    columns: list[str]  # member column names, in file order
    rows: list[CsvRow] = field(default_factory=list)
    deleted: int = 0
    totals: dict[str, tuple[int, ...]] = field(default_factory=dict)  # the Total balance rows


@dataclass(frozen=True, slots=True)
class ImportResult:
    group_id: str
    expenses: int
    payments: int
    skipped: int
    warnings: list[str]


# --- reading the file (no I/O, no database) ---


def _cell(row: list[str], i: int) -> str:
    return row[i].strip() if i < len(row) else ""


def _amount(text: str, currency: str, line: int, what: str) -> int:
    if not text:
        return 0
    try:
        value = parse_amount(text, currency)
    except MoneyError as exc:
        raise CsvRowError(line, f"{what}: {exc}") from exc
    if abs(value) > MAX_AMOUNT:
        raise CsvRowError(line, f"{what}: {text} is too large")
    return value


def parse_splitwise(text: str) -> SplitwiseFile:
    """Read and check a Splitwise CSV export; raises ``CsvRowError`` at the first bad line."""
    if len(text) > MAX_CSV_CHARS:
        raise CsvRowError(1, f"the file is larger than {MAX_CSV_CHARS} characters")
    text = text.removeprefix("\ufeff")
    try:
        lines = list(csv.reader(text.splitlines()))
    except csv.Error as exc:
        raise CsvRowError(1, f"not a CSV file: {exc}") from exc
    numbered = [(i + 1, r) for i, r in enumerate(lines) if any(c.strip() for c in r)]
    if not numbered:
        raise CsvRowError(1, "the file is empty")
    header_line, header = numbered[0]
    columns = [c.strip() for c in header[FIXED_COLUMNS:]]
    while columns and not columns[-1]:
        columns.pop()
    if len(header) < FIXED_COLUMNS + 1 or not columns:
        raise CsvRowError(
            header_line,
            "the header must be Date, Description, Category, Cost, Currency and then one "
            "column per member",
        )
    if len(columns) > MAX_MEMBERS:
        raise CsvRowError(header_line, f"a group has at most {MAX_MEMBERS} members")
    seen: set[str] = set()
    for name in columns:
        if not name:
            raise CsvRowError(header_line, "a member column has no name")
        if name.lower() in seen:
            raise CsvRowError(header_line, f"two member columns are named {name!r}")
        if len(name) > NAME_MAX:
            raise CsvRowError(header_line, f"a member name has more than {NAME_MAX} characters")
        seen.add(name.lower())
    out = SplitwiseFile(columns=columns)
    width = FIXED_COLUMNS + len(columns)
    for line, row in numbered[1:]:
        if len(row) > width and any(c.strip() for c in row[width:]):
            raise CsvRowError(line, f"{len(row)} columns, the header has {width}")
        description = _cell(row, 1)
        if description.lower() == TOTAL_BALANCE and not _cell(row, 0):
            currency = _currency(_cell(row, 4), line)
            out.totals[currency] = tuple(
                _amount(_cell(row, FIXED_COLUMNS + i), currency, line, columns[i])
                for i in range(len(columns))
            )
            continue
        if description.lower().startswith(DELETED_PREFIX):
            out.deleted += 1
            continue
        out.rows.append(_row(row, line, columns))
        if len(out.rows) > MAX_ROWS:
            raise CsvRowError(line, f"a file has at most {MAX_ROWS} rows")
    return out


def _currency(text: str, line: int) -> str:
    try:
        return check_currency(text.upper())
    except MoneyError as exc:
        raise CsvRowError(line, f"Currency: {exc}") from exc


def _row(row: list[str], line: int, columns: list[str]) -> CsvRow:
    try:
        day = date.fromisoformat(_cell(row, 0))
    except ValueError as exc:
        raise CsvRowError(line, f"Date: {_cell(row, 0)!r} is not a YYYY-MM-DD date") from exc
    description = _cell(row, 1)
    if not description or len(description) > DESCRIPTION_MAX:
        raise CsvRowError(line, f"Description must have 1 to {DESCRIPTION_MAX} characters")
    category = _cell(row, 2) or "General"
    if len(category) > CATEGORY_MAX:
        raise CsvRowError(line, f"Category must have at most {CATEGORY_MAX} characters")
    currency = _currency(_cell(row, 4), line)
    cost = _amount(_cell(row, 3), currency, line, "Cost")
    if cost <= 0:
        raise CsvRowError(line, "Cost must be more than zero")
    nets = tuple(
        _amount(_cell(row, FIXED_COLUMNS + i), currency, line, columns[i])
        for i in range(len(columns))
    )
    if sum(nets) != 0:
        raise CsvRowError(line, f"the member columns sum to {sum(nets)} minor units, not zero")
    credit = sum(n for n in nets if n > 0)
    if credit == 0:
        raise CsvRowError(line, "no member has a positive amount (nobody paid)")
    if credit > cost:
        raise CsvRowError(line, "the positive member amounts add up to more than the Cost")
    payment = category.lower() == PAYMENT_CATEGORY
    if payment:
        movers = [n for n in nets if n]
        if len(movers) != 2 or credit != cost:
            raise CsvRowError(
                line, "a Payment row moves its Cost from one member (+) to one other (−)"
            )
    return CsvRow(line, day, description, category, cost, currency, nets, payment)


def totals_mismatch(parsed: SplitwiseFile) -> list[str]:
    """Warnings for the file's own Total balance rows that differ from the sum of its rows
    (a hand-edited file); the rows are what is imported."""
    sums: dict[str, list[int]] = {}
    for r in parsed.rows:
        per = sums.setdefault(r.currency, [0] * len(parsed.columns))
        for i, n in enumerate(r.nets):
            per[i] += n
    out = []
    for currency, total in sorted(parsed.totals.items()):
        got = sums.get(currency, [0] * len(parsed.columns))
        off = [c for c, a, b in zip(parsed.columns, total, got, strict=True) if a != b]
        if off:
            out.append(
                f"the file's Total balance in {currency} differs from the sum of its rows for "
                + ", ".join(off)
            )
    return out


def reconstruct(cost: int, nets: tuple[int, ...]) -> tuple[list[int], list[int]]:
    """(paid, owed) per column whose differences are ``nets`` (see the module docstring)."""
    credit = sum(n for n in nets if n > 0)
    owed = [-n if n < 0 else 0 for n in nets]
    payers = [i for i, n in enumerate(nets) if n > 0]
    own = allocate(cost - credit, [nets[i] for i in payers])
    paid = [0] * len(nets)
    for i, share in zip(payers, own, strict=True):
        owed[i] = share
        paid[i] = nets[i] + share
    return paid, owed


# --- the use case ---


def import_splitwise(
    session: Session,
    *,
    user_id: str,
    name: str,
    text: str,
    me: str,
    members: dict[str, str],
    currency: str | None = None,
    rates: dict[str, str] | None = None,
    now: datetime,
    progress: Progress | None = None,
) -> ImportResult:
    """A new group from a Splitwise export, with the caller as the member in column ``me``
    and every other column mapped to an email by ``members``. One transaction: the caller
    commits; any refusal (raised before the first write) leaves nothing behind."""
    parsed = parse_splitwise(text)
    by_lower = {c.lower(): c for c in parsed.columns}
    me_column = by_lower.get(me.strip().lower())
    if me_column is None:
        raise DomainError(
            "unknown_member_column",
            f"me: {me!r} is not a member column of the file ({', '.join(parsed.columns)})",
            field="me",
        )
    mapping: dict[str, str] = {}
    for raw_name, email in members.items():
        column = by_lower.get(raw_name.strip().lower())
        if column is None:
            raise DomainError(
                "unknown_member_column",
                f"members: {raw_name!r} is not a member column of the file",
                field="members",
            )
        (mapping[column],) = check_emails([email], field=f"members.{raw_name}")
    mine = user_email(session, user_id)
    mapping[me_column] = mine
    unmapped = [c for c in parsed.columns if c not in mapping]
    if unmapped:
        raise DomainError(
            "unmapped_members",
            "give an email for every member column (members: {name: email}); missing: "
            + ", ".join(unmapped),
            field="members",
        )
    emails = [mapping[c] for c in parsed.columns]
    if len(set(emails)) != len(emails):
        raise DomainError(
            "validation_error", "two member columns are mapped to the same email", field="members"
        )
    used = [r.currency for r in parsed.rows]
    if currency is None:
        currency = max(dict.fromkeys(used), key=used.count) if used else "EUR"
    try:
        check_currency(currency)
    except MoneyError as exc:
        raise DomainError("validation_error", str(exc), field="currency") from exc
    given = {
        c.strip().upper(): fx.parse_rate(v, field=f"rates.{c}") for c, v in (rates or {}).items()
    }
    # each row's rate: the request's for its currency, else the table's for its date
    row_rates: list[Decimal | None] = []
    missing: set[str] = set()
    for r in parsed.rows:
        rate: Decimal | None = None
        if r.currency != currency:
            rate = given.get(r.currency)
            if rate is None:
                try:
                    rate = fx.lookup_rate(session, r.currency, currency, r.date)
                except DomainError:
                    missing.add(r.currency)
            if rate is not None:
                converted = fx.convert(r.cost, rate, from_currency=r.currency, to_currency=currency)
                if not 0 < converted <= MAX_AMOUNT:
                    raise CsvRowError(
                        r.line,
                        f"converted at {r.currency} {rate} the cost is {converted} minor units",
                    )
        row_rates.append(rate)
    if missing:
        raise DomainError(
            "fx_rate_missing",
            f"no rate to {currency} for {', '.join(sorted(missing))}: pass rates, e.g. "
            f'{{"{min(missing)}": "1.1"}}',
            field="rates",
        )
    # everything checked: write
    group = create_group(
        session,
        user_id=user_id,
        name=name,
        currency=currency,
        emails=emails,
        now=now,
    )
    member_of = {m.email: m.id for m in group.members}
    ids = [member_of[mapping[c]] for c in parsed.columns]
    # people not registered yet are shown by their name in the file until they register
    for column, member_id in zip(parsed.columns, ids, strict=True):
        place = session.get(SharingMember, member_id)
        if place is not None and place.user_id is None:
            place.name = column
    warnings: list[str] = []
    expenses = payments = 0
    for done, (row, rate) in enumerate(zip(parsed.rows, row_rates, strict=True), start=1):
        try:
            if row.payment:
                _payment(session, row, ids, user_id, group.id, currency, rate, now)
                payments += 1
            else:
                _expense(session, row, ids, user_id, group.id, rate, now)
                expenses += 1
        except DomainError as exc:  # the caller's transaction rolls back: nothing is kept
            raise CsvRowError(row.line, exc.message) from exc
        if progress is not None:
            progress(done, len(parsed.rows))
    if parsed.deleted:
        warnings.append(f"{parsed.deleted} deleted row(s) skipped")
    warnings += totals_mismatch(parsed)
    return ImportResult(group.id, expenses, payments, parsed.deleted, warnings)


def _expense(
    session: Session,
    row: CsvRow,
    ids: list[str],
    user_id: str,
    group_id: str,
    rate: Decimal | None,
    now: datetime,
) -> None:
    paid, owed = reconstruct(row.cost, row.nets)
    create_expense(
        session,
        user_id=user_id,
        group_id=group_id,
        description=row.description,
        amount=row.cost,
        currency=row.currency,
        fx_rate=rate,
        date=row.date,
        category=row.category,
        paid_by=[(ids[i], a) for i, a in enumerate(paid) if a],
        split=ExpenseSplit("exact", tuple(Share(ids[i], a) for i, a in enumerate(owed) if a)),
        now=now,
    )


def _payment(
    session: Session,
    row: CsvRow,
    ids: list[str],
    user_id: str,
    group_id: str,
    currency: str,
    rate: Decimal | None,
    now: datetime,
) -> None:
    frm = next(i for i, n in enumerate(row.nets) if n > 0)
    to = next(i for i, n in enumerate(row.nets) if n < 0)
    amount = row.cost
    if rate is not None:
        amount = fx.check_converted(
            fx.convert(row.cost, rate, from_currency=row.currency, to_currency=currency)
        )
    record_settlement(
        session,
        user_id=user_id,
        group_id=group_id,
        from_member_id=ids[frm],
        to_member_id=ids[to],
        amount=amount,
        method="other",
        now=now,
    )
