"""Split rules: validation and allocation (pure: no database, no clock)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from potluck.errors import DomainError

MAX_BPS = 10_000  # 100 %
MAX_RULES = 100
MAX_VALUE = 10**15  # the ledger's largest transfer
RuleType = Literal["percent", "fixed"]


class SplitError(DomainError):
    """A rule set or an allocation that cannot be used (422, naming the field)."""


@dataclass(frozen=True, slots=True)
class SplitRule:
    party: str
    type: RuleType
    value: int  # basis points for "percent", minor units for "fixed"

    def to_dict(self) -> dict[str, Any]:
        return {"party": self.party, "type": self.type, "value": self.value}


@dataclass(frozen=True, slots=True)
class SplitRules:
    rules: tuple[SplitRule, ...]
    remainder_to: str

    @property
    def parties(self) -> list[str]:
        """Every party named, rules first, in order, without repeats."""
        seen: dict[str, None] = {}
        for r in self.rules:
            seen.setdefault(r.party, None)
        seen.setdefault(self.remainder_to, None)
        return list(seen)

    def to_dict(self) -> dict[str, Any]:
        return {"rules": [r.to_dict() for r in self.rules], "remainder_to": self.remainder_to}

    @classmethod
    def from_dict(cls, raw: dict[str, Any]) -> SplitRules:
        return cls(
            rules=tuple(SplitRule(r["party"], r["type"], int(r["value"])) for r in raw["rules"]),
            remainder_to=raw["remainder_to"],
        )


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def validate_rules(split: SplitRules, *, field: str = "") -> None:
    """Refuse a rule set that could never be used, naming the offending field.

    ``field`` prefixes field names (``"split."`` for an order's own rules). A party may have
    one percent and one fixed rule (a commission plus a flat fee); the same type twice for one
    party is refused as ambiguous. Whether the parties exist is the caller's check.
    """
    if not split.rules:
        raise SplitError(
            "split_rules_empty", "rules must name at least one party", field=f"{field}rules"
        )
    if len(split.rules) > MAX_RULES:
        raise SplitError("too_many_rules", f"at most {MAX_RULES} rules", field=f"{field}rules")
    if not split.remainder_to:
        raise SplitError(
            "remainder_to_missing", "remainder_to must name a party", field=f"{field}remainder_to"
        )
    seen: set[tuple[str, str]] = set()
    bps = 0
    for i, rule in enumerate(split.rules):
        where = f"{field}rules.{i}"
        if rule.type not in ("percent", "fixed"):
            raise SplitError(
                "invalid_rule_type", "type must be 'percent' or 'fixed'", field=f"{where}.type"
            )
        if not _is_int(rule.value) or rule.value <= 0:
            raise SplitError(
                "invalid_rule_value",
                "value must be a positive integer (basis points or minor units)",
                field=f"{where}.value",
            )
        if rule.type == "percent" and rule.value > MAX_BPS:
            raise SplitError(
                "percent_above_100",
                f"a percent value is in basis points, at most {MAX_BPS} (100 %)",
                field=f"{where}.value",
            )
        if rule.type == "fixed" and rule.value > MAX_VALUE:
            raise SplitError(
                "invalid_rule_value",
                f"a fixed value is at most {MAX_VALUE}",
                field=f"{where}.value",
            )
        if (rule.party, rule.type) in seen:
            raise SplitError(
                "duplicate_rule",
                f"party {rule.party} already has a {rule.type} rule",
                field=f"{where}.party",
            )
        seen.add((rule.party, rule.type))
        if rule.type == "percent":
            bps += rule.value
    if bps > MAX_BPS:
        raise SplitError(
            "percent_above_100",
            f"percentages sum to {bps} basis points, above {MAX_BPS} (100 %)",
            field=f"{field}rules",
        )


def allocate_split(amount: int, split: SplitRules) -> dict[str, int]:
    """Each party's part of ``amount``: parties in ``split.parties`` order, zero parts left out.

    Fixed parts first, each percent part is floor(amount × bps / 10000) of the whole amount,
    and everything left goes to ``remainder_to``. Several rules of one party add up to one
    part. Fixed plus percent parts above the amount → ``split_exceeds_amount``.
    """
    if not _is_int(amount) or amount <= 0:
        raise SplitError("invalid_amount", "amount must be a positive integer", field="amount")
    parts: dict[str, int] = dict.fromkeys(split.parties, 0)
    for rule in split.rules:
        if rule.type == "fixed":
            parts[rule.party] += rule.value
    for rule in split.rules:
        if rule.type == "percent":
            parts[rule.party] += amount * rule.value // MAX_BPS
    assigned = sum(parts.values())
    if assigned > amount:
        raise SplitError(
            "split_exceeds_amount",
            f"the split's fixed and percent parts ({assigned}) exceed the amount ({amount})",
            field="amount",
        )
    parts[split.remainder_to] += amount - assigned
    return {party: part for party, part in parts.items() if part > 0}
