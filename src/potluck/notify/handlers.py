"""Event handlers of notify's two services.

- ``webhooks``: fan-out of platform-deliverable events into deliveries, and their sender.
- ``notify``: inbox messages for people (wallet payments, top-ups, payment requests, payments
  held for review, fraud alerts to admins), and the email sender (a poller).

A handler runs in its delivery's transaction with the inbox row, so each event leaves its
messages once; if it raises, the bus retries the event later and the product that published it
is not affected (it committed long before).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from sqlalchemy import bindparam, select

from potluck.bus.outbox import Event
from potluck.bus.registry import HandlerContext, HandlerRegistry
from potluck.identity.models import User
from potluck.money import format_money
from potluck.notify import email, sender, service
from potluck.notify.inbox import Message, notify, notify_many

SERVICE = "webhooks"
NOTIFY_SERVICE = "notify"


def on_deliverable_events(ctx: HandlerContext, events: list[Event]) -> None:
    """One delivery per matching endpoint and event, in the worker batch's transaction (the
    inbox makes it once per event)."""
    service.fan_out_many(ctx.session, events, settings=ctx.app.settings, now=ctx.now)


# ---------------------------------------------------------------------------- people


def _money(data: dict[str, Any]) -> str:
    return format_money(int(data["amount"]), str(data["currency"]))


_PEOPLE = select(User.id, User.name, User.email).where(
    User.id.in_(bindparam("ids", expanding=True))
)


def _people(ctx: HandlerContext, *user_ids: str | None) -> dict[str, tuple[str, str]]:
    """``{user id: (how they are named to another, their email)}`` for the known ones, in one
    read: the display name, else the email."""
    wanted = sorted({u for u in user_ids if u})
    if not wanted:
        return {}
    rows = ctx.session.connection().execute(_PEOPLE, {"ids": wanted}).all()
    return {r.id: (r.name or r.email, r.email) for r in rows}


def _name(ctx: HandlerContext, user_id: str | None) -> str:
    """How a person is named to another: their display name, else their email."""
    return _people(ctx, user_id).get(user_id or "", ("someone", ""))[0]


def _merchant(ctx: HandlerContext, party_id: str | None, platform_id: str | None) -> str:
    """A merchant party's name (through marketplace), else "the merchant"."""
    from potluck.errors import DomainError
    from potluck.marketplace.parties import get_party

    if not party_id or not platform_id:
        return "the merchant"
    try:
        return get_party(ctx.session, party_id, platform_id=platform_id).name
    except DomainError:
        return "the merchant"


def _tell(
    ctx: HandlerContext,
    user_id: str | None,
    *,
    kind: str,
    title: str,
    body: str,
    event: Event,
    data: dict[str, Any],
    address: str | None = None,
) -> None:
    """An inbox message; queued as an email too only while SMTP is configured (``address``:
    the person's email when the caller read it already)."""
    if not user_id:
        return
    notify(
        ctx.session,
        user_id=user_id,
        email=address,
        kind=kind,
        title=title,
        body=body,
        data={"event_id": event.id, **data},
        now=ctx.now,
        send_email=bool(ctx.app.settings.smtp_host),
    )


def _note(data: dict[str, Any]) -> str:
    note = data.get("note")
    return f' ("{note}")' if note else ""


def on_transfer_completed(ctx: HandlerContext, event: Event) -> None:
    """Both people told: one read of both, one insert of both messages."""
    d = event.data
    amount = _money(d)
    keep = {"event_id": event.id, **{k: d.get(k) for k in ("transfer_id", "amount", "currency")}}
    payer, payee = d.get("from_user_id"), d.get("to_user_id")
    known = _people(ctx, payer, payee)
    nobody: tuple[str, str | None] = ("someone", None)
    messages = []
    if payee:
        messages.append(
            Message(
                payee,
                known.get(payee, nobody)[1],
                "wallet.money_received",
                f"You received {amount}",
                f"{known.get(payer or '', nobody)[0]} sent you {amount}{_note(d)}. "
                "It is in your wallet.",
                keep,
            )
        )
        to = known.get(payee, nobody)[0]
    else:
        to = _merchant(ctx, d.get("to_party_id"), d.get("platform_id"))
    if payer:
        messages.append(
            Message(
                payer,
                known.get(payer, nobody)[1],
                "wallet.payment_sent",
                f"You paid {amount}",
                f"You paid {amount} to {to}{_note(d)}.",
                keep,
            )
        )
    notify_many(ctx.session, messages, now=ctx.now, send_email=bool(ctx.app.settings.smtp_host))


def on_transfer_in_review(ctx: HandlerContext, event: Event) -> None:
    d = event.data
    amount = _money(d)
    _tell(
        ctx,
        d.get("from_user_id"),
        kind="wallet.payment_in_review",
        title=f"Your payment of {amount} is being reviewed",
        body=f"We are checking your payment of {amount} before it goes through. The money is "
        "held in your wallet meanwhile; you will hear from us when the review is done.",
        event=event,
        data={k: d.get(k) for k in ("transfer_id", "amount", "currency")},
    )


def on_transfer_rejected(ctx: HandlerContext, event: Event) -> None:
    d = event.data
    amount = _money(d)
    _tell(
        ctx,
        d.get("from_user_id"),
        kind="wallet.payment_rejected",
        title=f"Your payment of {amount} was not approved",
        body=f"After review, your payment of {amount} was not made. The money held for it "
        "is available in your wallet again.",
        event=event,
        data={k: d.get(k) for k in ("transfer_id", "amount", "currency")},
    )


def on_topped_up(ctx: HandlerContext, event: Event) -> None:
    d = event.data
    amount = _money(d)
    _tell(
        ctx,
        d.get("user_id"),
        kind="wallet.topped_up",
        title=f"{amount} added to your wallet",
        body=f"Your top-up of {amount} was credited to your wallet.",
        event=event,
        data={k: d.get(k) for k in ("top_up_id", "amount", "currency")},
    )


def on_request_created(ctx: HandlerContext, event: Event) -> None:
    d = event.data
    amount = _money(d)
    _tell(
        ctx,
        d.get("payer_user_id"),
        kind="wallet.request_received",
        title=f"{_name(ctx, d.get('requester_user_id'))} asks you for {amount}",
        body=f"{_name(ctx, d.get('requester_user_id'))} asks you to pay {amount}{_note(d)}. "
        "Accept or decline it in your wallet.",
        event=event,
        data={k: d.get(k) for k in ("request_id", "amount", "currency")},
    )


def _request_answered(verb: str) -> Callable[[HandlerContext, Event], None]:
    def handler(ctx: HandlerContext, event: Event) -> None:
        d = event.data
        amount = _money(d)
        who = _name(ctx, d.get("payer_user_id"))
        _tell(
            ctx,
            d.get("requester_user_id"),
            kind=f"wallet.request_{verb}",
            title=f"{who} {verb} your request for {amount}",
            body=f"{who} {verb} your request for {amount}{_note(d)}.",
            event=event,
            data={k: d.get(k) for k in ("request_id", "amount", "currency")},
        )

    return handler


def on_fraud_flagged(ctx: HandlerContext, event: Event) -> None:
    """An inbox message to every admin."""
    d = event.data
    amount = _money(d)
    reasons = d.get("reasons") or []
    rules = ", ".join(str(r.get("rule")) for r in reasons if isinstance(r, dict)) or "none given"
    admins = ctx.session.scalars(select(User.id).where(User.role == "admin").order_by(User.id))
    for admin_id in admins:
        _tell(
            ctx,
            admin_id,
            kind="risk.fraud_flagged",
            title=f"Payment of {amount} flagged ({d.get('action')})",
            body=f"A payment of {amount} by {_name(ctx, d.get('payer_user_id'))} to "
            f"{d.get('recipient')} scored {d.get('score')} and was flagged for "
            f"{d.get('action')}. Rules: {rules}.",
            event=event,
            data={
                k: d.get(k)
                for k in ("decision_id", "subject_id", "amount", "currency", "score", "action")
            },
        )


PERSON_HANDLERS: dict[str, Callable[[HandlerContext, Event], None]] = {
    "transfer.completed": on_transfer_completed,
    "transfer.in_review": on_transfer_in_review,
    "transfer.rejected": on_transfer_rejected,
    "wallet.topped_up": on_topped_up,
    "wallet.request.created": on_request_created,
    "wallet.request.accepted": _request_answered("accepted"),
    "wallet.request.declined": _request_answered("declined"),
    "fraud.flagged": on_fraud_flagged,
}


def register(registry: HandlerRegistry) -> None:
    for event_type in service.DELIVERABLE_EVENTS:
        registry.register_batch(SERVICE, event_type, on_deliverable_events)
    registry.register_poller(SERVICE, sender.send_due)
    for event_type, handler in PERSON_HANDLERS.items():
        registry.register(NOTIFY_SERVICE, event_type, handler)
    registry.register_poller(NOTIFY_SERVICE, email.send_due)
