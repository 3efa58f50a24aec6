"""The add-expense form as a create request: every split method, from plain form fields.

Field names (``m`` is a member id):

- ``description``, ``amount`` (decimal, e.g. 12.50), ``date`` (YYYY-MM-DD), ``category``,
  ``notes``, ``paid_by`` (the member who paid all), ``method``;
- per member: ``include_<m>`` (a checkbox: equal and adjustment), ``value_<m>`` (exact: an
  amount; percent: a percentage such as 33.33; shares: a whole number; adjustment: ± amount);
- itemized: ``item_description_<i>``, ``item_amount_<i>``, ``item_<i>_<m>`` (checkboxes) for
  ``i`` in 0..ITEM_ROWS-1, and ``tax``, ``tip``.

``read_expense_form`` raises ``FormError`` (field → message) for what cannot be read; the
split itself is checked by ``potluck.splits.split_expense``, whose field names
(``split.shares.1.value`` …) ``form_field`` maps back to these.
"""

from __future__ import annotations

import datetime as dt
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from decimal import Decimal, InvalidOperation

from potluck.money import MoneyError, parse_amount
from potluck.sharing.groups import MemberView
from potluck.splits.expense import METHODS, ExpenseSplit, Item, Share
from potluck.web.pages import money, sentence

ITEM_ROWS = 4
METHOD_LABELS = {
    "equal": "Equally",
    "exact": "Exact amounts",
    "percent": "Percentages",
    "shares": "Shares (e.g. 2:1:1)",
    "adjustment": "Equally, with adjustments (±)",
    "itemized": "By item (with tax and tip)",
}
VALUE_HINTS = {
    "equal": "Tick who shares the expense.",
    "exact": "Each person's amount; they must add up to the total.",
    "percent": "Each person's percentage; they must add up to 100.",
    "shares": "Each person's number of shares (whole numbers).",
    "adjustment": "Tick who shares it; an amount (e.g. 5 or -5) is added to or taken from "
    "that person's equal share.",
    "itemized": "List the items and tick who had each; tax and tip are spread in proportion.",
}


class FormError(Exception):
    def __init__(self, errors: dict[str, str]) -> None:
        super().__init__("; ".join(f"{k}: {v}" for k, v in errors.items()))
        self.errors = errors


@dataclass(frozen=True, slots=True)
class ExpenseInput:
    description: str
    amount: int
    date: dt.date | None
    category: str | None
    notes: str
    paid_by: list[tuple[str, int]]
    split: ExpenseSplit


def _text(form: Mapping[str, object], name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _checked(form: Mapping[str, object], name: str) -> bool:
    return _text(form, name) not in ("", "0", "off")


def _money(raw: str, currency: str, field: str, errors: dict[str, str]) -> int | None:
    try:
        return parse_amount(raw, currency)
    except MoneyError as exc:
        errors[field] = sentence(str(exc))
        return None


def _percent_bps(raw: str) -> int:
    try:
        value = Decimal(raw.rstrip("%").strip()) * 100
    except InvalidOperation as exc:
        raise ValueError(f"'{raw}' is not a percentage (write it like 25 or 33.33)") from exc
    if value != value.to_integral_value():
        raise ValueError("use at most two decimals for a percentage")
    return int(value)


def read_expense_form(
    form: Mapping[str, object],
    *,
    members: Sequence[MemberView],
    currency: str,
    default_payer: str,
) -> ExpenseInput:
    errors: dict[str, str] = {}
    description = _text(form, "description")
    if not description:
        errors["description"] = "Say what the expense was for."
    raw_amount = _text(form, "amount")
    amount = None
    if not raw_amount:
        errors["amount"] = "Enter the amount, like 12.50."
    else:
        amount = _money(raw_amount, currency, "amount", errors)
        if amount is not None and amount <= 0:
            errors["amount"] = "The amount must be more than zero."
    when = None
    if raw_date := _text(form, "date"):
        try:
            when = dt.date.fromisoformat(raw_date)
        except ValueError:
            errors["date"] = "Write the date as YYYY-MM-DD."
    method = _text(form, "method") or "equal"
    if method not in METHODS:
        errors["method"] = "Choose how to split."
    payer = _text(form, "paid_by") or default_payer
    ids = {m.id for m in members}
    if payer not in ids:
        errors["paid_by"] = "Choose who paid."
    shares: list[Share] = []
    items: list[Item] = []
    tax = tip = 0
    if method in ("equal", "adjustment"):
        for m in members:
            if not _checked(form, f"include_{m.id}"):
                continue
            value = None
            if method == "adjustment" and (raw := _text(form, f"value_{m.id}")):
                value = _money(raw, currency, f"value_{m.id}", errors)
            shares.append(Share(m.id, value))
        if not shares:
            errors["method"] = "Tick at least one person to share the expense."
    elif method in ("exact", "percent", "shares"):
        for m in members:
            raw = _text(form, f"value_{m.id}")
            if not raw:
                continue
            value = None
            if method == "exact":
                value = _money(raw, currency, f"value_{m.id}", errors)
            elif method == "percent":
                try:
                    value = _percent_bps(raw)
                except ValueError as exc:
                    errors[f"value_{m.id}"] = sentence(str(exc))
            else:
                try:
                    value = int(raw)
                except ValueError:
                    errors[f"value_{m.id}"] = "Write a whole number of shares, like 2."
            if value is not None:
                shares.append(Share(m.id, value))
        if not shares and not errors:
            errors["method"] = "Enter a value for at least one person."
    elif method == "itemized":
        for i in range(ITEM_ROWS):
            raw = _text(form, f"item_amount_{i}")
            if not raw:
                continue
            value = _money(raw, currency, f"item_amount_{i}", errors)
            who = tuple(m.id for m in members if _checked(form, f"item_{i}_{m.id}"))
            if not who:
                errors[f"item_amount_{i}"] = "Tick who had this item."
            if value is not None and who:
                items.append(Item(value, who, _text(form, f"item_description_{i}")[:200]))
        if not items and not errors:
            errors["item_amount_0"] = "List at least one item."
        for name in ("tax", "tip"):
            if raw := _text(form, name):
                got = _money(raw, currency, name, errors)
                if got is not None:
                    if name == "tax":
                        tax = got
                    else:
                        tip = got
    if errors or amount is None:
        raise FormError(errors)
    split = ExpenseSplit(method=method, shares=tuple(shares), items=tuple(items), tax=tax, tip=tip)
    return ExpenseInput(
        description=description,
        amount=amount,
        date=when,
        category=_text(form, "category") or None,
        notes=_text(form, "notes"),
        paid_by=[(payer, amount)],
        split=split,
    )


_SHARE = re.compile(r"^split\.shares\.(\d+)(?:\.\w+)?$")
_ITEM = re.compile(r"^split\.items\.(\d+)(?:\.\w+)?$")


def form_field(field: str | None, split: ExpenseSplit | None) -> str:
    """The form field a service error's ``field`` is about."""
    if not field:
        return "__all__"
    if split is not None:
        if (m := _SHARE.match(field)) and int(m.group(1)) < len(split.shares):
            return f"value_{split.shares[int(m.group(1))].user_id}"
        if m := _ITEM.match(field):
            return f"item_amount_{m.group(1)}"
    if field.startswith("split.tax"):
        return "tax"
    if field.startswith("split.tip"):
        return "tip"
    if field.startswith("split"):
        return "method"
    if field.startswith("paid_by"):
        return "paid_by"
    return field


def plain_message(code: str, message: str, data: ExpenseInput, currency: str) -> str:
    """A service refusal in the words of the form (amounts as typed, not minor units)."""

    split = data.split
    total = sum(s.value or 0 for s in split.shares)
    if code == "split_does_not_sum" and split.method == "exact":
        return (
            f"The amounts add up to {money(total, currency)}, not {money(data.amount, currency)}."
        )
    if code == "split_does_not_sum" and split.method == "percent":
        return f"The percentages add up to {Decimal(total) / 100:g} %, not 100 %."
    if code == "split_does_not_sum" and split.method == "itemized":
        items = sum(i.amount for i in split.items) + split.tax + split.tip
        return (
            f"The items, tax and tip add up to {money(items, currency)}, "
            f"not {money(data.amount, currency)}."
        )
    return sentence(message)
