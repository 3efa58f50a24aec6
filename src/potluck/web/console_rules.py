"""The split-rule editor's form: read it into ``SplitRules`` and preview the allocation.

Pure functions, no I/O. The preview runs the very functions the marketplace service runs
(``validate_rules`` then ``allocate_split``), so what the editor shows is what an order of
that amount will be split into. People type percentages ("12.5") and fixed parts as money
("2.50"); both become integers (basis points, minor units) without floats.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from potluck.errors import DomainError
from potluck.money import MoneyError, check_currency, format_money, parse_amount
from potluck.splits import MAX_BPS, SplitRule, SplitRules, allocate_split, validate_rules

EMPTY_ROWS = 2  # blank rows under the current rules, for adding parties
MIN_ROWS = 3
_PERCENT = re.compile(r"(?P<whole>[0-9]{1,3})(?:\.(?P<frac>[0-9]{1,2}))?")


@dataclass(slots=True)
class RuleRow:
    """One row of the editor as typed (kept as text, so a wrong value is shown back)."""

    party: str = ""
    type: str = "percent"
    value: str = ""


@dataclass(slots=True)
class RuleForm:
    currency: str
    rows: list[RuleRow]
    remainder_to: str
    sample_amount: str
    errors: dict[str, str] = field(default_factory=dict)
    rule_rows: list[int] = field(default_factory=list)  # rule position → row shown

    def error_for(self, service_field: str | None) -> str:
        """A service field name (``rules.3.party``) as the editor's (its row as shown)."""
        return shown_field(service_field, self.rule_rows)


@dataclass(frozen=True, slots=True)
class PreviewLine:
    party_id: str
    amount: int
    display: str


@dataclass(frozen=True, slots=True)
class Preview:
    amount: int
    currency: str
    lines: list[PreviewLine]
    total: int

    @property
    def display_total(self) -> str:
        return format_money(self.total, self.currency)


def percent_to_bps(text: str) -> int:
    """'12.5' or '12.5 %' → 1250; at most two decimals (a basis point), at most 100."""
    s = text.strip().removesuffix("%").strip()
    match = _PERCENT.fullmatch(s)
    if match is None:
        raise ValueError("write a percentage like 12.5 (at most two decimals)")
    bps = int(match.group("whole")) * 100 + int((match.group("frac") or "").ljust(2, "0"))
    if bps <= 0:
        raise ValueError("the percentage must be above zero")
    if bps > MAX_BPS:
        raise ValueError("the percentage must be at most 100")
    return bps


def bps_to_percent(bps: int) -> str:
    whole, frac = divmod(bps, 100)
    return f"{whole}.{frac:02d}".rstrip("0").rstrip(".")


def minor_to_text(amount: int, currency: str) -> str:
    """Minor units as a plain decimal a person can edit ('2.50'), no currency sign."""
    from potluck.money import exponent

    digits = exponent(currency)
    if digits == 0:
        return str(amount)
    whole, frac = divmod(amount, 10**digits)
    return f"{whole}.{frac:0{digits}d}"


def form_of_rules(
    split: SplitRules | None, *, currency: str, sample_amount: str = "100.00"
) -> RuleForm:
    """The editor pre-filled with ``split`` (the current version) plus blank rows."""
    rows: list[RuleRow] = []
    remainder = ""
    if split is not None:
        remainder = split.remainder_to
        for r in split.rules:
            text = (
                bps_to_percent(r.value) if r.type == "percent" else minor_to_text(r.value, currency)
            )
            rows.append(RuleRow(party=r.party, type=r.type, value=text))
    rows.extend(RuleRow() for _ in range(max(EMPTY_ROWS, MIN_ROWS - len(rows))))
    return RuleForm(
        currency=currency, rows=rows, remainder_to=remainder, sample_amount=sample_amount
    )


def read_form(data: Mapping[str, str], *, max_rows: int = 100) -> RuleForm:
    """The typed form: ``currency``, ``rules.N.party|type|value``, ``remainder_to`` and
    ``sample_amount``."""
    indexes = sorted(
        {
            int(m.group(1))
            for key in data
            if (m := re.fullmatch(r"rules\.([0-9]{1,3})\.(?:party|type|value)", key))
        }
    )[:max_rows]
    rows = [
        RuleRow(
            party=str(data.get(f"rules.{i}.party", "")).strip(),
            type=str(data.get(f"rules.{i}.type", "percent")).strip(),
            value=str(data.get(f"rules.{i}.value", "")).strip(),
        )
        for i in indexes
    ]
    return RuleForm(
        currency=str(data.get("currency", "")).strip().upper(),
        rows=rows,
        remainder_to=str(data.get("remainder_to", "")).strip(),
        sample_amount=str(data.get("sample_amount", "")).strip(),
    )


def to_rules(form: RuleForm) -> SplitRules | None:
    """The form's rules (blank rows skipped), or None with ``form.errors`` filled.

    Error keys are the service's field names (``rules.0.value``, ``remainder_to``, …), with
    row numbers counted over the rows as displayed, so each error sits next to its input.
    """
    try:
        check_currency(form.currency)
    except MoneyError as exc:
        form.errors["currency"] = str(exc)
        return None
    rules: list[SplitRule] = []
    shown_index = form.rule_rows
    shown_index.clear()
    for i, row in enumerate(form.rows):
        if not row.party and not row.value:
            continue
        if not row.party:
            form.errors[f"rules.{i}.party"] = "choose a party for this row"
            continue
        if row.type not in ("percent", "fixed"):
            form.errors[f"rules.{i}.type"] = "choose percent or fixed"
            continue
        try:
            if row.type == "percent":
                value = percent_to_bps(row.value)
            else:
                value = parse_amount(row.value, form.currency)
                if value <= 0:
                    raise ValueError("the amount must be above zero")
        except ValueError as exc:  # MoneyError is a ValueError
            form.errors[f"rules.{i}.value"] = str(exc)
            continue
        rules.append(SplitRule(row.party, row.type, value))  # type: ignore[arg-type]
        shown_index.append(i)
    if not form.remainder_to:
        form.errors["remainder_to"] = "choose who gets what is left"
    if form.errors:
        return None
    split = SplitRules(rules=tuple(rules), remainder_to=form.remainder_to)
    try:
        validate_rules(split)
    except DomainError as exc:
        form.errors[shown_field(exc.field, shown_index)] = exc.message
        return None
    return split


def shown_field(service_field: str | None, shown_index: list[int] | None = None) -> str:
    """A service field name (``rules.3.party``) as the editor's (its row as displayed)."""
    name = service_field or "rules"
    match = re.fullmatch(r"(?:split\.)?rules\.([0-9]+)\.(\w+)", name)
    if match and shown_index is not None:
        position = int(match.group(1))
        if position < len(shown_index):
            return f"rules.{shown_index[position]}.{match.group(2)}"
    return name.removeprefix("split.")


def preview(form: RuleForm, split: SplitRules) -> Preview | None:
    """The allocation of the sample amount by ``split`` (None with ``form.errors`` filled)."""
    try:
        amount = parse_amount(form.sample_amount, form.currency)
    except MoneyError as exc:
        form.errors["sample_amount"] = str(exc)
        return None
    try:
        parts = allocate_split(amount, split)
    except DomainError as exc:
        form.errors["sample_amount"] = exc.message
        return None
    lines = [
        PreviewLine(party, part, format_money(part, form.currency)) for party, part in parts.items()
    ]
    return Preview(amount=amount, currency=form.currency, lines=lines, total=sum(parts.values()))
