"""Sharing API request and reply models."""

from __future__ import annotations

import datetime as dt
from datetime import datetime
from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

from potluck.api.types import Amount, CurrencyCode
from potluck.sharing import service as sharing
from potluck.splits.expense import ExpenseSplit, Item, Share

MemberId = Annotated[str, StringConstraints(min_length=1, max_length=40)]
StrictInt = Annotated[int, Field(strict=True)]
NonNegative = Annotated[int, Field(strict=True, ge=0, le=10**15)]
Method = Literal["equal", "exact", "percent", "shares", "adjustment", "itemized"]
Repeat = Literal["weekly", "fortnightly", "monthly", "yearly"]
# An exchange rate: a decimal STRING ("1.0834"); a JSON number is refused, as for amounts.
FxRateText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=40),
    Field(
        description="1 unit of `currency` = `fx_rate` units of the group's currency, a decimal "
        'string such as "1.0834" (at most 12 decimals; a JSON number is refused).',
        examples=["1.0834"],
    ),
]


class Strict(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --- groups and members ---


class GroupCreate(Strict):
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    currency: CurrencyCode
    members: list[Annotated[str, StringConstraints(max_length=320)]] = Field(
        default_factory=list,
        max_length=200,
        description="Emails of the other members; people not registered yet claim their "
        "place when they register with that email.",
    )


class MemberCreate(Strict):
    email: Annotated[str, StringConstraints(max_length=320)]


class MemberRead(BaseModel):
    id: str = Field(description="Member id (mbr_…), stable before the person registers.")
    user_id: str | None
    email: str
    name: str
    balance: int | None = Field(
        default=None, description="What the member is owed (positive) or owes (negative)."
    )

    @classmethod
    def of(cls, m: sharing.MemberView, balance: int | None = None) -> MemberRead:
        return cls(id=m.id, user_id=m.user_id, email=m.email, name=m.name, balance=balance)


class GroupRead(BaseModel):
    id: str
    name: str
    currency: str
    kind: Literal["group", "direct"]
    members: list[MemberRead]
    created_at: datetime

    @classmethod
    def of(cls, g: sharing.GroupView, balances: dict[str, int] | None = None) -> GroupRead:
        b = balances or {}
        return cls(
            id=g.id,
            name=g.name,
            currency=g.currency,
            kind=g.kind,  # type: ignore[arg-type]
            members=[
                MemberRead.of(m, b.get(m.id) if balances is not None else None) for m in g.members
            ],
            created_at=g.created_at,
        )


class GroupList(BaseModel):
    data: list[GroupRead]
    has_more: bool


# --- expenses ---


class ShareIn(Strict):
    user_id: MemberId
    value: StrictInt | None = Field(
        default=None,
        description="exact: minor units; percent: basis points; shares: weight; "
        "adjustment: ± minor units; equal: unused.",
    )


class ItemIn(Strict):
    amount: Amount
    user_ids: list[MemberId] = Field(min_length=1, max_length=200)
    description: Annotated[str, StringConstraints(max_length=200)] = ""


class SplitIn(Strict):
    method: Method = "equal"
    shares: list[ShareIn] = Field(default_factory=list, max_length=200)
    items: list[ItemIn] = Field(default_factory=list, max_length=500)
    tax: NonNegative = 0
    tip: NonNegative = 0

    def to_split(self) -> ExpenseSplit:
        return ExpenseSplit(
            method=self.method,
            shares=tuple(Share(s.user_id, s.value) for s in self.shares),
            items=tuple(Item(i.amount, tuple(i.user_ids), i.description) for i in self.items),
            tax=self.tax,
            tip=self.tip,
        )


class PaidByIn(Strict):
    user_id: MemberId = Field(description="Member id of the payer.")
    amount: Amount


class ExpenseCreate(Strict):
    description: Annotated[str, StringConstraints(min_length=1, max_length=500)]
    amount: Amount
    currency: CurrencyCode | None = Field(
        default=None,
        description="Default: the group's. Another currency is converted to the group's at "
        "`fx_rate`, else at the rates table's latest rate on or before `date`; `amount`, "
        "`paid_by` and exact/itemized values are then in this currency.",
    )
    fx_rate: FxRateText | None = None
    repeat: Repeat | None = Field(
        default=None, description="Makes this the first expense of a recurring series."
    )
    date: dt.date | None = Field(default=None, description="Default: today.")
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    notes: Annotated[str, StringConstraints(max_length=5000)] = ""
    paid_by: list[PaidByIn] | None = Field(
        default=None, max_length=200, description="Default: the caller paid all."
    )
    split: SplitIn | None = Field(default=None, description="Default: equal among everyone.")

    def payers(self) -> list[tuple[str, int]] | None:
        return None if self.paid_by is None else [(p.user_id, p.amount) for p in self.paid_by]


class DirectExpenseCreate(ExpenseCreate):
    with_: Annotated[str, StringConstraints(max_length=320)] = Field(
        alias="with", description="Email of the other person."
    )
    currency: CurrencyCode
    fx_rate: None = Field(default=None, description="Not here: the pair's group is in `currency`.")
    repeat: None = Field(default=None, description="Not for two-person expenses.")


class ExpenseUpdate(Strict):
    description: Annotated[str, StringConstraints(min_length=1, max_length=500)] | None = None
    amount: Amount | None = Field(
        default=None, description="In the expense's currency as entered (`original_currency`)."
    )
    currency: CurrencyCode | None = Field(
        default=None,
        description="Another currency needs `amount` in it; the group's ends the conversion.",
    )
    fx_rate: FxRateText | None = Field(
        default=None, description="A new rate; without it the stored rate is kept."
    )
    repeat: Repeat | None = Field(
        default=None, description="Change the series' period; null stops it (absent: no change)."
    )
    date: dt.date | None = None
    category: Annotated[str, StringConstraints(min_length=1, max_length=64)] | None = None
    notes: Annotated[str, StringConstraints(max_length=5000)] | None = None
    paid_by: list[PaidByIn] | None = Field(default=None, max_length=200)
    split: SplitIn | None = None


class MemberAmount(BaseModel):
    user_id: str = Field(description="Member id.")
    amount: int


class CommentCreate(Strict):
    text: Annotated[str, StringConstraints(min_length=1, max_length=2000)]


class CommentRead(BaseModel):
    id: str
    expense_id: str
    member_id: str
    text: str
    created_at: datetime

    @classmethod
    def of(cls, c: sharing.CommentView) -> CommentRead:
        return cls(
            id=c.id,
            expense_id=c.expense_id,
            member_id=c.member_id,
            text=c.text,
            created_at=c.created_at,
        )


class VersionRead(BaseModel):
    version: int
    action: Literal["created", "updated", "deleted", "restored"]
    user_id: str
    snapshot: dict[str, Any]
    created_at: datetime


class ExpenseRead(BaseModel):
    id: str
    group_id: str
    version: int
    description: str
    amount: int
    currency: str
    date: dt.date
    category: str
    notes: str
    paid_by: list[MemberAmount]
    split: dict[str, Any]
    owed: list[MemberAmount]
    deleted: bool
    deleted_at: datetime | None
    created_by: str
    created_at: datetime
    updated_at: datetime
    original_amount: int | None = Field(
        default=None, description="Entered in another currency: the amount as entered."
    )
    original_currency: str | None = None
    fx_rate: str | None = Field(
        default=None, description="The exact rate used: 1 original unit = fx_rate group units."
    )
    repeat: Repeat | None = Field(
        default=None, description="On the first expense of a running recurring series."
    )
    series_id: str | None = Field(
        default=None, description="The first expense of the recurring series it belongs to."
    )
    comments: list[CommentRead] | None = None
    history: list[VersionRead] | None = None

    @classmethod
    def of(
        cls,
        e: sharing.ExpenseView,
        *,
        comments: list[sharing.CommentView] | None = None,
        history: list[sharing.VersionView] | None = None,
    ) -> ExpenseRead:
        return cls(
            id=e.id,
            group_id=e.group_id,
            version=e.version,
            description=e.description,
            amount=e.amount,
            currency=e.currency,
            date=e.date,
            category=e.category,
            notes=e.notes,
            paid_by=[MemberAmount(user_id=m, amount=a) for m, a in e.paid_by],
            split=e.split,
            owed=[MemberAmount(user_id=m, amount=a) for m, a in e.owed],
            deleted=e.deleted_at is not None,
            deleted_at=e.deleted_at,
            created_by=e.created_by,
            created_at=e.created_at,
            updated_at=e.updated_at,
            original_amount=e.original_amount,
            original_currency=e.original_currency,
            fx_rate=e.fx_rate,
            repeat=e.repeat,  # type: ignore[arg-type]
            series_id=e.series_id,
            comments=None if comments is None else [CommentRead.of(c) for c in comments],
            history=None
            if history is None
            else [
                VersionRead(
                    version=v.version,
                    action=v.action,  # type: ignore[arg-type]
                    user_id=v.user_id,
                    snapshot=v.snapshot,
                    created_at=v.created_at,
                )
                for v in history
            ],
        )


class ExpenseList(BaseModel):
    data: list[ExpenseRead]
    has_more: bool


class DirectExpenseRead(ExpenseRead):
    kind: Literal["direct"] = "direct"


# --- balances, settle-up, settlements, friends, activity ---


class BalanceRead(BaseModel):
    member_id: str
    user_id: str | None
    name: str
    balance: int = Field(description="Positive = is owed.")


class BalanceList(BaseModel):
    currency: str
    data: list[BalanceRead]


class PaymentRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    from_: str = Field(alias="from", description="Member id of who pays.")
    to: str = Field(description="Member id of who receives.")
    amount: int


class SettleUpRead(BaseModel):
    currency: str
    simplify: bool
    payments: list[PaymentRead]


class SettlementCreate(Strict):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    from_: MemberId = Field(alias="from", description="Member id of who paid.")
    to: MemberId = Field(description="Member id of who received.")
    amount: Amount
    method: Literal["cash", "bank", "other", "wallet"] = Field(
        default="cash",
        description="wallet: the caller (who must be `from`) pays `to` from their Potluck "
        "wallet in the group's currency; the IOU is settled when the money has moved.",
    )


class SettlementRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True)

    id: str
    group_id: str
    from_: str = Field(alias="from")
    to: str
    amount: int
    currency: str
    method: str
    created_at: datetime
    wallet_transfer_id: str | None = Field(
        default=None, description="method wallet: the wallet payment that moved the money."
    )

    @classmethod
    def of(cls, st: sharing.SettlementView) -> SettlementRead:
        return cls.model_validate(
            {
                "id": st.id,
                "group_id": st.group_id,
                "from": st.from_member_id,
                "to": st.to_member_id,
                "amount": st.amount,
                "currency": st.currency,
                "method": st.method,
                "created_at": st.created_at,
            }
        )


class WalletSettlementPending(BaseModel):
    """202: the wallet payment is held for review; the IOU is settled if it is approved."""

    model_config = ConfigDict(populate_by_name=True)

    status: Literal["in_review"] = "in_review"
    group_id: str
    from_: str = Field(alias="from")
    to: str
    amount: int
    currency: str
    method: Literal["wallet"] = "wallet"
    wallet_transfer_id: str


class CurrencyAmount(BaseModel):
    currency: str
    amount: int = Field(description="Positive = the friend owes you.")


class FriendRead(BaseModel):
    user_id: str | None
    email: str
    name: str
    balances: list[CurrencyAmount]


class FriendList(BaseModel):
    data: list[FriendRead]


class ActivityRead(BaseModel):
    id: str
    type: str
    actor_member_id: str | None
    subject_id: str | None
    data: dict[str, Any]
    created_at: datetime


class ActivityList(BaseModel):
    data: list[ActivityRead]
    has_more: bool


# --- reports ---


class ReportRow(BaseModel):
    key: str = Field(description="The category, the member id, or the month (YYYY-MM).")
    amount: int = Field(description="Spent (category, month); the member's share (member).")
    name: str | None = Field(default=None, description="member: the member's name.")
    paid: int | None = Field(default=None, description="member: what they paid.")
    share: int | None = Field(default=None, description="member: their share of the spending.")
    net: int | None = Field(default=None, description="member: paid − share.")
    settlements_paid: int | None = Field(default=None, description="member: settle-ups paid.")
    settlements_received: int | None = Field(
        default=None, description="member: settle-ups received."
    )
    count: int = Field(description="How many expenses.")


class ReportRead(BaseModel):
    by: Literal["category", "member", "month"]
    currency: str
    rows: list[ReportRow]
    total: int = Field(description="Everything spent (not deleted expenses; no settlements).")


# --- exchange rates (admin) ---


class FxRateIn(Strict):
    date: dt.date
    base: CurrencyCode
    quote: CurrencyCode
    rate: FxRateText


class FxRatesPut(Strict):
    rates: list[FxRateIn] = Field(min_length=1, max_length=10_000)


class FxRateRead(BaseModel):
    date: dt.date
    base: str
    quote: str
    rate: str = Field(description="1 base = rate quote, an exact decimal string.")


class FxRatesWritten(BaseModel):
    count: int = Field(description="Rates written (inserted or replaced).")


class FxRateList(BaseModel):
    data: list[FxRateRead]
    has_more: bool


# --- export and Splitwise import ---

ColumnName = Annotated[str, StringConstraints(min_length=1, max_length=200)]


class GroupImportCreate(Strict):
    """A Splitwise CSV export to import into a new group (JSON; multipart: the same fields,
    the file in ``file``, ``members`` and ``rates`` as JSON text)."""

    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    csv: Annotated[str, StringConstraints(min_length=1, max_length=5_000_000)] = Field(
        description="The CSV text: Date, Description, Category, Cost, Currency, then one "
        "column per member holding that member's net for the row."
    )
    me: ColumnName = Field(description="The member column that is the caller.")
    members: dict[ColumnName, Annotated[str, StringConstraints(max_length=320)]] = Field(
        default_factory=dict,
        max_length=200,
        description="Every other member column → that person's email.",
    )
    currency: CurrencyCode | None = Field(
        default=None, description="The group's currency. Default: the one most rows use."
    )
    rates: dict[
        Annotated[str, StringConstraints(min_length=3, max_length=3)],
        Annotated[str, StringConstraints(min_length=1, max_length=40)],
    ] = Field(
        default_factory=dict,
        max_length=200,
        description='Rates to the group currency, e.g. {"USD": "0.92"} (1 USD = 0.92 of '
        "the group's currency); else the rates table's rate for each row's date.",
    )


class ImportCounts(BaseModel):
    expenses: int
    payments: int
    skipped: int = Field(description="Rows marked deleted, skipped.")


class GroupImportRead(BaseModel):
    group: GroupRead
    imported: ImportCounts
    warnings: list[str]


class GroupExportRead(BaseModel):
    """``?format=json``: the group with every detail."""

    format: Literal["potluck.group.v1"]
    group: dict[str, Any]
    members: list[dict[str, Any]]
    expenses: list[dict[str, Any]] = Field(
        description="Not deleted, oldest first: paid_by, owed, split, and original_amount, "
        "original_currency, fx_rate for an expense entered in another currency."
    )
    settlements: list[dict[str, Any]]
    balances: list[dict[str, Any]]
