"""Group order pages: reading their forms, and the plain words the pages show.

No HTTP and no database here: the routes (``orders.py``) parse a form with these functions,
call the checkout service, and render what these functions say about the result.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from potluck.checkout.service import HOST_DEADLINE_SECONDS, GroupOrderView, MemberView
from potluck.errors import DomainError
from potluck.money import MoneyError, format_money, parse_amount

# What the expiry select offers (seconds → words); the service takes 60 s .. 7 days.
EXPIRY_CHOICES: tuple[tuple[int, str], ...] = (
    (15 * 60, "15 minutes"),
    (30 * 60, "30 minutes"),
    (60 * 60, "1 hour"),
    (2 * 3600, "2 hours"),
    (6 * 3600, "6 hours"),
    (24 * 3600, "1 day"),
    (3 * 24 * 3600, "3 days"),
)
DEFAULT_EXPIRY = 60 * 60

SPLIT_WORDS = {
    "equal": "Equally: everyone pays the same (the host too)",
    "custom": "Custom amounts: you say what each person pays",
    "by_items": "By items: each person pays for what they pick; the rest is the host's",
}

FALLBACK_WORDS = {
    "host_pays": "The host pays what is still unpaid, and the order goes ahead",
    "cancel": "The order is cancelled and everyone who paid gets their money back",
}

STATUS_WORDS = {
    "draft": "The host is still adding people. Nobody can pay yet.",
    "open": "Waiting for everyone to pay their share.",
    "pending": "Some shares are paid; waiting for the rest.",
    "host_paying": "The host is paying what is still unpaid.",
    "paid": "Everyone has paid: the order is being placed with the merchant.",
    "confirmed": "The merchant has the order.",
    "expired": "Not everyone paid in time.",
    "cancelled": "The order will not happen; everyone who paid gets their money back.",
}

MEMBER_STATUS_WORDS = {
    "invited": "Invited",
    "due": "Not paid yet",
    "paid": "Paid",
    "failed": "Payment failed: a new payment link was sent",
    "covered": "Covered by the host",
}

TERMINAL = frozenset({"confirmed", "expired", "cancelled"})


class FormError(DomainError):
    """A form value we refused before calling any service (422, next to ``field``)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__("invalid_form", message, field=field)


@dataclass
class Invite:
    email: str
    share: int | None = None


@dataclass
class CreateForm:
    """The create form, as typed (to show it again after an error) and as parsed."""

    merchant: str = ""
    skus: list[str] = field(default_factory=list)
    quantities: list[str] = field(default_factory=list)
    split: str = "equal"
    host_share: str = ""
    expires_in: str = str(DEFAULT_EXPIRY)
    fallback: str = "cancel"
    invites: str = ""
    open_now: bool = True

    def quantity_of(self, sku: str) -> str:
        for s, q in zip(self.skus, self.quantities, strict=False):
            if s == sku:
                return q
        return "0"


def read_create_form(form: dict[str, list[str]]) -> CreateForm:
    def one(name: str, default: str = "") -> str:
        values = form.get(name) or [default]
        return values[0].strip()

    return CreateForm(
        merchant=one("merchant"),
        skus=[s.strip() for s in form.get("sku", [])],
        quantities=[q.strip() for q in form.get("qty", [])],
        split=one("split", "equal"),
        host_share=one("host_share"),
        expires_in=one("expires_in", str(DEFAULT_EXPIRY)),
        fallback=one("fallback", "cancel"),
        invites=(form.get("invites") or [""])[0],
        open_now=bool(form.get("open_now")),
    )


def parse_quantity(text: str, field: str) -> int:
    value = text.strip() or "0"
    if not value.isascii() or not value.isdigit():
        raise FormError(field, f"'{text}' is not a whole number")
    quantity = int(value)
    if quantity > 10_000:
        raise FormError(field, "at most 10,000 of one item")
    return quantity


def parse_money(text: str, currency: str, field: str) -> int:
    try:
        amount = parse_amount(text, currency)
    except MoneyError as exc:
        raise FormError(field, str(exc)) from None
    if amount < 0:
        raise FormError(field, "an amount cannot be negative")
    return amount


def order_lines(f: CreateForm) -> list[tuple[str, int]]:
    """The (sku, quantity) lines with a quantity above zero; an error names the item's box."""
    lines = []
    for i, sku in enumerate(f.skus):
        quantity = parse_quantity(f.quantities[i] if i < len(f.quantities) else "0", f"qty.{i}")
        if quantity:
            lines.append((sku, quantity))
    if not lines:
        raise FormError("items", "choose at least one item (a quantity above zero)")
    return lines


def expiry_seconds(f: CreateForm) -> int:
    allowed = {seconds for seconds, _ in EXPIRY_CHOICES}
    try:
        seconds = int(f.expires_in)
    except ValueError:
        raise FormError("expires_in", "choose how long people have to pay") from None
    if seconds not in allowed:
        raise FormError("expires_in", "choose how long people have to pay")
    return seconds


def parse_invites(text: str, *, split: str, currency: str) -> list[Invite]:
    """One person a line: ``email`` (``email amount`` for custom amounts)."""
    invites: list[Invite] = []
    for n, raw in enumerate(text.splitlines(), start=1):
        line = raw.replace(",", " ").strip() if split != "custom" else raw.strip()
        if not line:
            continue
        parts = line.split()
        if split == "custom":
            if len(parts) != 2:
                raise FormError(
                    "invites",
                    f"line {n}: write an email and an amount, like 'ann@example.com 12.50'",
                )
            invites.append(Invite(parts[0], parse_money(parts[1], currency, "invites")))
        else:
            invites.extend(Invite(p) for p in parts)
    seen: set[str] = set()
    for invite in invites:
        key = invite.email.lower()
        if key in seen:
            raise FormError("invites", f"{invite.email} is listed twice")
        seen.add(key)
    return invites


def form_field(exc: DomainError) -> str:
    """Where a service's refusal goes on the create form."""
    name = exc.field or ""
    if name.startswith("items.") and name.endswith(".quantity"):
        return "qty." + name.split(".")[1]
    if name.startswith("items"):
        return "items"
    if name in ("email", "share", "members"):
        return "invites"
    if name in ("merchant", "split", "fallback", "host_share", "expires_in", "currency"):
        return "merchant" if name == "currency" else name
    return name or "form"


# ------------------------------------------------------------------ what the page says


def money(amount: int | None, currency: str) -> str:
    return "" if amount is None else format_money(amount, currency)


def duration_words(seconds: float) -> str:
    """'2 days 3 h', '1 h 5 min', '4 min 20 s', '12 s'."""
    s = max(0, int(seconds))
    days, s = divmod(s, 86400)
    hours, s = divmod(s, 3600)
    minutes, s = divmod(s, 60)
    if days:
        return f"{days} day{'s' if days != 1 else ''}" + (f" {hours} h" if hours else "")
    if hours:
        return f"{hours} h" + (f" {minutes} min" if minutes else "")
    if minutes:
        return f"{minutes} min" + (f" {s} s" if s else "")
    return f"{s} s"


def time_left(group: GroupOrderView, now: datetime) -> str | None:
    """The countdown line, or None once the group no longer waits for anybody."""
    if group.status == "host_paying" and group.host_deadline_at is not None:
        left = (group.host_deadline_at - now).total_seconds()
        return (
            f"The host has {duration_words(left)} left to pay the rest."
            if left > 0
            else "The host's time to pay is up."
        )
    if group.status in ("draft", "open", "pending"):
        left = (group.expires_at - now).total_seconds()
        return f"{duration_words(left)} left to pay." if left > 0 else "Time is up."
    return None


def fallback_words(group: GroupOrderView) -> str:
    deadline = duration_words(HOST_DEADLINE_SECONDS)
    if group.fallback == "host_pays":
        return (
            "If not everyone has paid when time is up, the host pays what is still unpaid "
            f"(within {deadline}) and the order goes ahead; if the host does not, the order "
            "is cancelled and everyone who paid gets their money back."
        )
    return (
        "If not everyone has paid when time is up, the order is cancelled and everyone who "
        "paid gets their money back."
    )


def my_member(group: GroupOrderView, user_id: str, email: str | None) -> MemberView | None:
    for m in group.members:
        if m.user_id == user_id or (email is not None and m.email == email.lower()):
            return m
    return None


def unpaid(group: GroupOrderView) -> int:
    return sum(m.share or 0 for m in group.members if m.status in ("due", "failed"))


def expires_label(seconds: int) -> str:
    return dict(EXPIRY_CHOICES).get(seconds, duration_words(seconds))


def deadline_after(now: datetime, seconds: int) -> datetime:
    return now + timedelta(seconds=seconds)
