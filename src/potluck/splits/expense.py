"""How an expense is split between the members of a group: pure functions, no I/O.

``split_expense(amount, split, members)`` says who owes what of an expense: a list of
``(member id, minor units)`` in ``members`` order, zero shares left out, that always sums
exactly to ``amount``. Six methods:

- ``equal``: equally among the people listed in ``shares`` (no shares: every member);
- ``exact``: each listed person's amount; they must sum to the amount;
- ``percent``: basis points per person (2,500 = 25 %); they must sum to 10,000;
- ``shares``: integer weights (2:1:1);
- ``adjustment``: ``amount − Σ adjustments`` split equally among the listed people (no
  shares: every member, adjustment 0), then each person's ± adjustment added; nobody may
  end below zero;
- ``itemized``: each item split equally among its people; ``tax`` and ``tip`` together
  spread in proportion to each person's item subtotal; items + tax + tip must equal the
  amount. The subtotals are kept exact (fractions) and the whole amount is rounded once.

Rounding: every division goes through ``potluck.money.allocate`` (largest remainder) with
the people in ``members`` order, so the minor units left over go to the largest fractional
remainders and ties to the member listed first. The same input always gives the same output.

Every refusal is a ``SplitError`` (a ``DomainError``, 422) with a stable ``code`` and the
offending ``field`` (``split.shares.1.value``, ``paid_by.0.amount`` …). Integers only: a
bool or a float is refused, never rounded.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

from potluck.money import allocate
from potluck.splits.rules import SplitError

__all__ = [
    "MAX_AMOUNT",
    "METHODS",
    "ExpenseSplit",
    "Item",
    "Share",
    "SplitError",
    "check_payers",
    "split_expense",
]

METHODS = ("equal", "exact", "percent", "shares", "adjustment", "itemized")
MAX_AMOUNT = 10**15  # the ledger's largest transfer
MAX_BPS = 10_000  # 100 %
MAX_WEIGHT = 10**9  # a share weight; far beyond any real "2:1:1"


@dataclass(frozen=True, slots=True)
class Share:
    """One person in a split.

    ``value``: exact → minor units; percent → basis points; shares → weight; adjustment → ±
    minor units (None = 0); equal → unused (ignored).
    """

    user_id: str
    value: int | None = None


@dataclass(frozen=True, slots=True)
class Item:
    """Itemized: one line of the bill, split equally among ``user_ids``."""

    amount: int
    user_ids: tuple[str, ...]
    description: str = ""


@dataclass(frozen=True, slots=True)
class ExpenseSplit:
    method: str  # one of METHODS
    shares: tuple[Share, ...] = ()  # equal: who (empty = everyone); adjustment: ± (empty = all, 0)
    items: tuple[Item, ...] = ()  # itemized only
    tax: int = 0  # itemized only: spread in proportion to each person's items
    tip: int = 0  # itemized only: idem


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _n(value: int) -> str:
    return f"{value:,}"


def _off_by(total: int, target: int) -> str:
    diff = total - target
    return f"{_n(abs(diff))} {'short of' if diff < 0 else 'over'} {_n(target)}"


def _check_amount(amount: object) -> int:
    if not _is_int(amount) or not 0 < amount <= MAX_AMOUNT:  # type: ignore[operator]
        raise SplitError(
            "invalid_amount",
            f"amount must be a positive integer number of minor units, at most {_n(MAX_AMOUNT)}",
            field="amount",
        )
    return amount  # type: ignore[return-value]


def _index(members: Sequence[str]) -> dict[str, int]:
    index: dict[str, int] = {}
    for m in members:
        index.setdefault(m, len(index))
    return index


def _known(user_id: object, index: dict[str, int], field: str) -> int:
    if not isinstance(user_id, str) or user_id not in index:
        raise SplitError(
            "unknown_member", f"{user_id!r} is not a member of this group", field=field
        )
    return index[user_id]


def _people(
    split: ExpenseSplit, index: dict[str, int], *, values: bool, lo: int | None, hi: int
) -> list[tuple[int, int]]:
    """The listed shares as ``(member position, value)`` in members order.

    ``values``: a value is required and must be an integer in ``[lo, hi]`` (``lo`` None: any
    sign, bounded by ``hi`` in absolute value); otherwise values are ignored (0).
    """
    seen: set[int] = set()
    out: list[tuple[int, int]] = []
    for i, share in enumerate(split.shares):
        where = f"split.shares.{i}"
        if not isinstance(share, Share):
            raise SplitError("invalid_share", "a share names a user_id and a value", field=where)
        pos = _known(share.user_id, index, f"{where}.user_id")
        if pos in seen:
            raise SplitError(
                "duplicate_member",
                f"{share.user_id} is listed twice in the split",
                field=f"{where}.user_id",
            )
        seen.add(pos)
        value = 0
        if values:
            raw = share.value
            if split.method == "adjustment" and raw is None:
                raw = 0
            if not _is_int(raw):
                raise SplitError(
                    "invalid_share_value",
                    f"a {split.method} split needs an integer value for every person",
                    field=f"{where}.value",
                )
            value = raw  # type: ignore[assignment]
            if lo is not None and value < lo:
                raise SplitError(
                    "negative_share_value" if lo == 0 else "invalid_share_value",
                    f"a {split.method} value must be at least {_n(lo)}",
                    field=f"{where}.value",
                )
            if abs(value) > hi:
                raise SplitError(
                    "invalid_share_value",
                    f"a {split.method} value is at most {_n(hi)}",
                    field=f"{where}.value",
                )
        out.append((pos, value))
    out.sort()
    return out


def _everyone(index: dict[str, int]) -> list[tuple[int, int]]:
    if not index:
        raise SplitError("split_empty", "the group has no members to split with", field="split")
    return [(pos, 0) for pos in index.values()]


def _spread(amount: int, people: list[tuple[int, int]]) -> dict[int, int]:
    """``amount`` by the weights in ``people`` (member position, weight), members order."""
    parts = allocate(amount, [w for _, w in people])
    return {pos: part for (pos, _), part in zip(people, parts, strict=True)}


def _no_extras(split: ExpenseSplit) -> None:
    if split.items:
        raise SplitError(
            "split_field_not_allowed", "items are for an itemized split only", field="split.items"
        )
    for name in ("tax", "tip"):
        if getattr(split, name) != 0:
            raise SplitError(
                "split_field_not_allowed",
                f"{name} is for an itemized split only",
                field=f"split.{name}",
            )


def _equal(amount: int, split: ExpenseSplit, index: dict[str, int]) -> dict[int, int]:
    people = _people(split, index, values=False, lo=0, hi=0) if split.shares else _everyone(index)
    return _spread(amount, [(pos, 1) for pos, _ in people])


def _exact(amount: int, split: ExpenseSplit, index: dict[str, int]) -> dict[int, int]:
    people = _people(split, index, values=True, lo=0, hi=MAX_AMOUNT)
    total = sum(v for _, v in people)
    if total != amount:
        raise SplitError(
            "split_does_not_sum",
            f"exact amounts sum to {_n(total)}, {_off_by(total, amount)}",
            field="split.shares",
        )
    return dict(people)


def _percent(amount: int, split: ExpenseSplit, index: dict[str, int]) -> dict[int, int]:
    people = _people(split, index, values=True, lo=0, hi=MAX_BPS)
    total = sum(v for _, v in people)
    if total != MAX_BPS:
        raise SplitError(
            "split_does_not_sum",
            f"percentages sum to {_n(total)} basis points, {_off_by(total, MAX_BPS)} (100 %)",
            field="split.shares",
        )
    return _spread(amount, people)


def _shares(amount: int, split: ExpenseSplit, index: dict[str, int]) -> dict[int, int]:
    people = _people(split, index, values=True, lo=0, hi=MAX_WEIGHT)
    if sum(v for _, v in people) == 0:
        raise SplitError(
            "split_does_not_sum", "at least one person needs a weight above 0", field="split.shares"
        )
    return _spread(amount, people)


def _adjustment(amount: int, split: ExpenseSplit, index: dict[str, int]) -> dict[int, int]:
    if split.shares:
        people = _people(split, index, values=True, lo=None, hi=MAX_AMOUNT)
    else:
        people = _everyone(index)
    base = amount - sum(v for _, v in people)
    parts = _spread(base, [(pos, 1) for pos, _ in people])
    result = {pos: parts[pos] + adj for pos, adj in people}
    by_pos = {index[s.user_id]: i for i, s in enumerate(split.shares)}  # checked by _people
    names = list(index)
    for pos, part in result.items():
        if part < 0:
            field = f"split.shares.{by_pos[pos]}.value" if pos in by_pos else "split.shares"
            raise SplitError(
                "negative_share",
                f"the adjustments leave {names[pos]} with a share of {_n(part)}, below zero",
                field=field,
            )
    return result


def _itemized(amount: int, split: ExpenseSplit, index: dict[str, int]) -> dict[int, int]:
    if split.shares:
        raise SplitError(
            "split_field_not_allowed",
            "an itemized split names people in its items, not in shares",
            field="split.shares",
        )
    if not split.items:
        raise SplitError(
            "split_empty", "an itemized split needs at least one item", field="split.items"
        )
    for name in ("tax", "tip"):
        value = getattr(split, name)
        if not _is_int(value) or not 0 <= value <= MAX_AMOUNT:
            raise SplitError(
                "invalid_share_value",
                f"{name} must be a non-negative integer number of minor units",
                field=f"split.{name}",
            )
    lines: list[tuple[int, list[int]]] = []  # (amount, member positions)
    items_total = 0
    for i, item in enumerate(split.items):
        where = f"split.items.{i}"
        if not isinstance(item, Item):
            raise SplitError("invalid_item", "an item has an amount and user_ids", field=where)
        if not _is_int(item.amount) or not 0 < item.amount <= MAX_AMOUNT:
            raise SplitError(
                "invalid_share_value",
                "an item's amount must be a positive integer number of minor units",
                field=f"{where}.amount",
            )
        if not item.user_ids:
            raise SplitError(
                "split_empty", "an item needs at least one person", field=f"{where}.user_ids"
            )
        positions: list[int] = []
        for j, uid in enumerate(item.user_ids):
            pos = _known(uid, index, f"{where}.user_ids.{j}")
            if pos in positions:
                raise SplitError(
                    "duplicate_member",
                    f"{uid} is listed twice in the item",
                    field=f"{where}.user_ids.{j}",
                )
            positions.append(pos)
        lines.append((item.amount, positions))
        items_total += item.amount
    total = items_total + split.tax + split.tip
    if total != amount:
        raise SplitError(
            "split_does_not_sum",
            f"items ({_n(items_total)}) plus tax ({_n(split.tax)}) and tip ({_n(split.tip)}) "
            f"sum to {_n(total)}, {_off_by(total, amount)}",
            field="split.items",
        )
    # Each person's exact subtotal is Σ amount / len(people) over their items; scaled by the
    # lcm of those counts it is an integer weight. The whole amount (items, tax and tip) is
    # spread by these weights in one largest-remainder rounding, so tax and tip follow the
    # subtotals and everyone is within one minor unit of their exact share.
    scale = math.lcm(*(len(positions) for _, positions in lines))
    weight: dict[int, int] = {}
    for line_amount, positions in lines:
        for pos in positions:
            weight[pos] = weight.get(pos, 0) + line_amount * (scale // len(positions))
    return _spread(amount, sorted(weight.items()))


_METHODS = {
    "equal": _equal,
    "exact": _exact,
    "percent": _percent,
    "shares": _shares,
    "adjustment": _adjustment,
    "itemized": _itemized,
}


def split_expense(
    amount: int, split: ExpenseSplit, members: Sequence[str]
) -> list[tuple[str, int]]:
    """Who owes what of ``amount``: every member with a non-zero share, in ``members`` order.

    The shares always sum exactly to ``amount``. Raises ``SplitError`` (422) naming the field.
    """
    amount = _check_amount(amount)
    if not isinstance(split, ExpenseSplit):
        raise SplitError("invalid_split", "split must be an ExpenseSplit", field="split")
    compute = _METHODS.get(split.method) if isinstance(split.method, str) else None
    if compute is None:
        raise SplitError(
            "invalid_split_method",
            f"method must be one of {', '.join(METHODS)}",
            field="split.method",
        )
    if split.method != "itemized":
        _no_extras(split)
    if split.method in ("exact", "percent", "shares") and not split.shares:
        raise SplitError(
            "split_empty",
            f"a {split.method} split needs at least one person in shares",
            field="split.shares",
        )
    members = list(_index(members))
    parts = compute(amount, split, _index(members))
    result = [(members[pos], part) for pos, part in sorted(parts.items()) if part != 0]
    assert sum(p for _, p in result) == amount  # allocate() and the sum checks guarantee it
    return result


def check_payers(amount: int, paid_by: Sequence[tuple[str, int]], members: Sequence[str]) -> None:
    """Refuse payers that are not members, listed twice, not positive, or not summing to amount."""
    amount = _check_amount(amount)
    if not paid_by:
        raise SplitError("payers_empty", "at least one person must have paid", field="paid_by")
    index = _index(members)
    seen: set[str] = set()
    total = 0
    for i, entry in enumerate(paid_by):
        where = f"paid_by.{i}"
        try:
            user_id, paid = entry
        except (TypeError, ValueError):
            raise SplitError(
                "invalid_payer", "a payer is a user_id and an amount", field=where
            ) from None
        _known(user_id, index, f"{where}.user_id")
        if user_id in seen:
            raise SplitError(
                "duplicate_payer", f"{user_id} is listed twice in paid_by", field=f"{where}.user_id"
            )
        seen.add(user_id)
        if not _is_int(paid) or not 0 < paid <= MAX_AMOUNT:
            raise SplitError(
                "invalid_payer_amount",
                "a payer's amount must be a positive integer number of minor units",
                field=f"{where}.amount",
            )
        total += paid
    if total != amount:
        raise SplitError(
            "payers_do_not_sum",
            f"payers' amounts sum to {_n(total)}, {_off_by(total, amount)}",
            field="paid_by",
        )
