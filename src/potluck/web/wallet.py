"""Wallet pages: balances, top-up (→ the provider's hosted page), send money (with its four
outcomes in plain words), payment requests (ask, accept, decline, cancel), history.

Pages call ``potluck.wallets.service`` with the signed-in person's id, like the API: a
transfer or request of somebody else is a 404 page. Creating forms go through ``run_once``
(a form sent twice does its thing once); a payment's ledger client id is derived from the
form's key too, so even a replay that got past the form table moves money once.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from potluck.errors import DomainError
from potluck.identity.service import find_user_in
from potluck.marketplace import service as marketplace
from potluck.money import MoneyError, check_currency, format_money, parse_amount
from potluck.wallets import service as wallets
from potluck.web.forms import run_once
from potluck.web.pages import CheckedForm, CurrentWebUser, app_of, redirect, render
from potluck.web.sessions import WebUser

router = APIRouter(include_in_schema=False)

ItemId = Annotated[str, Path(max_length=40)]
COMMON_CURRENCIES = ("EUR", "USD", "GBP", "INR", "CHF", "JPY")
PAGE_SIZE = 20

OUTCOME_WORDS = {
    wallets.COMPLETED: "Sent.",
    wallets.IN_REVIEW: (
        "In review: we are checking this payment. The money is set aside in your wallet "
        "(you cannot spend it) until a reviewer approves it, or gives it back if they do not."
    ),
    wallets.BLOCKED: "Blocked by our safety checks. Nothing was sent.",
    wallets.FAILED: "Not enough money in your wallet. Nothing was sent.",
    wallets.REJECTED: "Rejected after review. The money is back in your wallet.",
}
REQUEST_WORDS = {
    "pending": "Waiting for an answer",
    "accepted": "Paid",
    "declined": "Declined",
    "cancelled": "Cancelled",
}


def _text(form: FormData, name: str) -> str:
    value = form.get(name)
    return value.strip() if isinstance(value, str) else ""


def _money_form(form: FormData, *fields: str) -> tuple[dict[str, str], str | None]:
    """A money form as typed: ``fields`` (text), its amount and currency (upper case); and
    its idempotency key."""
    values = {name: _text(form, name) for name in fields}
    values |= {"amount": _text(form, "amount"), "currency": _text(form, "currency").upper()}
    return values, _text(form, "idempotency_key") or None


def _refused(
    page: Callable[..., Response],
    request: Request,
    user: WebUser,
    values: dict[str, str],
    key: str | None,
    exc: DomainError,
) -> Response:
    """The form's ``page`` again (422) as typed, under the same key, with the refusal on its
    field."""
    return page(
        request,
        user,
        values=values,
        errors={exc.field or "__all__": exc.message},
        form_key_value=key,
        status_code=422,
    )


def _currency_options(s: Session, user_id: str) -> list[tuple[str, str]]:
    mine = [b.currency for b in wallets.balances(s, user_id=user_id)]
    codes = mine + [c for c in COMMON_CURRENCIES if c not in mine]
    return [(c, c) for c in codes]


def _amount(text: str, currency: str, field: str = "amount") -> int:
    if not text:
        raise DomainError("invalid_amount", "enter an amount, like 12.50", field=field)
    try:
        check_currency(currency)
    except MoneyError as exc:
        raise DomainError("invalid_currency", str(exc), field="currency") from None
    try:
        amount = parse_amount(text, currency)
    except MoneyError as exc:
        raise DomainError("invalid_amount", str(exc), field=field) from None
    if amount <= 0:
        raise DomainError("invalid_amount", "the amount must be above zero", field=field)
    return amount


def _client_id(user: WebUser, key: str | None) -> str | None:
    if not key:
        return None
    return "web-" + hashlib.sha256(f"{user.id}:{key}".encode()).hexdigest()[:40]


class _Names:
    """People and merchants by id, for the lists (one lookup each)."""

    def __init__(self, s: Session) -> None:
        self.s = s
        self.cache: dict[str, str] = {}

    def user(self, user_id: str | None) -> str:
        if user_id is None:
            return "?"
        if user_id not in self.cache:
            u = find_user_in(self.s, user_id=user_id)
            self.cache[user_id] = u.email if u is not None else user_id
        return self.cache[user_id]

    def party(self, party_id: str | None, platform_id: str | None) -> str:
        if party_id is None or platform_id is None:
            return "a merchant"
        if party_id not in self.cache:
            try:
                self.cache[party_id] = marketplace.get_party(
                    self.s, party_id, platform_id=platform_id
                ).name
            except DomainError:
                self.cache[party_id] = party_id
        return self.cache[party_id]

    def counterparty(self, c: dict[str, Any] | None) -> str:
        if c is None:
            return ""
        # The wallet history names its counterparties already (a person by email).
        known = c.get("email") if c.get("type") == "user" else c.get("name")
        if known:
            return str(known)
        if c.get("type") == "party":
            return self.party(c.get("id"), c.get("platform_id"))
        return self.user(c.get("id"))


def _history_rows(s: Session, rows: list[wallets.Transaction]) -> list[dict[str, Any]]:
    names = _Names(s)
    out = []
    for t in rows:
        if t.kind == "top_up":
            what = "Top-up"
        elif t.direction == "out":
            what = f"To {names.counterparty(t.counterparty)}"
        else:
            what = f"From {names.counterparty(t.counterparty)}"
        sign = "−" if t.direction == "out" else "+"
        out.append(
            {
                "id": t.id,
                "when": t.created_at,
                "what": what,
                "note": t.note,
                "amount": f"{sign}{format_money(t.amount, t.currency)}",
                "direction": t.direction,
                "status": t.status.replace("_", " "),
            }
        )
    return out


# ------------------------------------------------------------------ wallet page


@router.get("/wallet")
def wallet_page(request: Request, user: CurrentWebUser) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        balances = wallets.balances(s, user_id=user.id)
        recent, more = wallets.list_transactions(s, user_id=user.id, limit=5)
        history = _history_rows(s, recent)
        asks, _ = wallets.list_requests(s, user_id=user.id, limit=50)
    waiting = [r for r in asks if r.status == "pending" and r.payer_user_id == user.id]
    return render(
        request,
        "wallet/wallet.html",
        balances=balances,
        history=history,
        more=more,
        waiting=len(waiting),
    )


@router.get("/wallet/history")
def history_page(
    request: Request,
    user: CurrentWebUser,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        rows, more = wallets.list_transactions(
            s, user_id=user.id, limit=PAGE_SIZE, starting_after=after
        )
        history = _history_rows(s, rows)
    return render(
        request,
        "wallet/history.html",
        history=history,
        next_after=rows[-1].id if rows and more else None,
        first_page=after is None,
    )


# ------------------------------------------------------------------ top-up


def _top_up_page(
    request: Request, user: WebUser, *, values: dict[str, str], errors: dict[str, str], **kw: Any
) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        options = _currency_options(s, user.id)
    return render(
        request, "wallet/top_up.html", values=values, errors=errors, currencies=options, **kw
    )


@router.get("/wallet/top-up")
def top_up_form(request: Request, user: CurrentWebUser) -> Response:
    return _top_up_page(request, user, values={}, errors={})


@router.post("/wallet/top-up")
def top_up(request: Request, user: CurrentWebUser, form: CheckedForm) -> Response:
    app = app_of(request)
    values, key = _money_form(form)
    try:
        amount = _amount(values["amount"], values["currency"])

        def effect(s: Session) -> str:
            view = wallets.create_top_up(
                s,
                app,
                user_id=user.id,
                amount=amount,
                currency=values["currency"],
                now=app.clock.now(),
            )
            return view.payment_url or "/wallet"

        url = run_once(app, user_id=user.id, key=key, effect=effect)
    except DomainError as exc:
        return _refused(_top_up_page, request, user, values, key, exc)
    return redirect(url)


# ------------------------------------------------------------------ send


def _send_page(
    request: Request, user: WebUser, *, values: dict[str, str], errors: dict[str, str], **kw: Any
) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        options = _currency_options(s, user.id)
        balances = {b.currency: b for b in wallets.balances(s, user_id=user.id)}
    return render(
        request,
        "wallet/send.html",
        values=values,
        errors=errors,
        currencies=options,
        balances=balances,
        **kw,
    )


@router.get("/wallet/send")
def send_form(
    request: Request,
    user: CurrentWebUser,
    to: Annotated[str, Query(max_length=320)] = "",
    retry: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The send form; ``retry`` is a payment that did not go through (shown with its reason
    next to the amount, the form filled in again for another try)."""
    values = {"to": to}
    errors: dict[str, str] = {}
    if retry is not None:
        app = app_of(request)
        with app.db.read() as s:
            t = wallets.get_transfer(s, retry, user_id=user.id)
            names = _Names(s)
            to_name = names.user(t.to_user_id) if t.to_user_id else (t.to_party_id or "")
            available = next(
                (
                    b.available
                    for b in wallets.balances(s, user_id=user.id)
                    if b.currency == t.currency
                ),
                0,
            )
        values = {
            "to": to_name,
            "amount": f"{parse_back(t.amount, t.currency)}",
            "currency": t.currency,
            "note": t.note or "",
        }
        if t.status == wallets.FAILED:
            errors["amount"] = (
                f"Not enough money in your wallet: {format_money(available, t.currency)} "
                "available. Nothing was sent; top up or send less."
            )
        elif t.status == wallets.BLOCKED:
            errors["__all__"] = OUTCOME_WORDS[wallets.BLOCKED]
    return _send_page(request, user, values=values, errors=errors)


def parse_back(amount: int, currency: str) -> str:
    from potluck.web.pages import money_input

    return money_input(amount, currency)


@router.post("/wallet/send")
def send(request: Request, user: CurrentWebUser, form: CheckedForm) -> Response:
    app = app_of(request)
    values, key = _money_form(form, "to", "note")
    try:
        if not values["to"]:
            raise DomainError("invalid_recipient", "enter the email of who to pay", field="to")
        amount = _amount(values["amount"], values["currency"])

        def effect(s: Session) -> str:
            t = wallets.send(
                s,
                app,
                payer_user_id=user.id,
                to=values["to"],
                amount=amount,
                currency=values["currency"],
                note=values["note"] or None,
                client_id=_client_id(user, key),
                now=app.clock.now(),
            )
            if t.status in (wallets.FAILED, wallets.BLOCKED):
                return f"/wallet/send?retry={t.id}"
            return f"/wallet/transfers/{t.id}"

        url = run_once(app, user_id=user.id, key=key, effect=effect)
    except DomainError as exc:
        return _refused(_send_page, request, user, values, key, exc)
    return redirect(url)


@router.get("/wallet/transfers/{transfer_id}")
def transfer_page(request: Request, user: CurrentWebUser, transfer_id: ItemId) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        t = wallets.get_transfer(s, transfer_id, user_id=user.id)
        names = _Names(s)
        sent = t.payer_user_id == user.id
        other = (
            (
                names.user(t.to_user_id)
                if t.to_user_id
                else names.party(t.to_party_id, t.platform_id)
            )
            if sent
            else names.user(t.payer_user_id)
        )
    return render(
        request,
        "wallet/transfer.html",
        t=t,
        sent=sent,
        other=other,
        outcome=OUTCOME_WORDS.get(t.status, t.status),
    )


# ------------------------------------------------------------------ requests


def _requests_page(
    request: Request,
    user: WebUser,
    *,
    values: dict[str, str] | None = None,
    errors: dict[str, str] | None = None,
    **kw: Any,
) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        rows, _ = wallets.list_requests(s, user_id=user.id, limit=100)
        names = _Names(s)
        incoming = [
            {"r": r, "who": names.user(r.requester_user_id)}
            for r in rows
            if r.payer_user_id == user.id
        ]
        outgoing = [
            {"r": r, "who": names.user(r.payer_user_id)}
            for r in rows
            if r.requester_user_id == user.id
        ]
        options = _currency_options(s, user.id)
    return render(
        request,
        "wallet/requests.html",
        incoming=incoming,
        outgoing=outgoing,
        currencies=options,
        values=values or {},
        errors=errors or {},
        words=REQUEST_WORDS,
        **kw,
    )


@router.get("/wallet/requests")
def requests_page(request: Request, user: CurrentWebUser) -> Response:
    return _requests_page(request, user)


@router.post("/wallet/requests")
def ask(request: Request, user: CurrentWebUser, form: CheckedForm) -> Response:
    app = app_of(request)
    values, key = _money_form(form, "from", "note")
    try:
        if not values["from"]:
            raise DomainError("invalid_recipient", "enter the email of who to ask", field="from")
        amount = _amount(values["amount"], values["currency"])

        def effect(s: Session) -> str:
            wallets.create_request(
                s,
                requester_user_id=user.id,
                payer=values["from"],
                amount=amount,
                currency=values["currency"],
                note=values["note"] or None,
                now=app.clock.now(),
            )
            return "/wallet/requests"

        url = run_once(app, user_id=user.id, key=key, effect=effect)
    except DomainError as exc:
        return _refused(_requests_page, request, user, values, key, exc)
    return redirect(url, flash=f"Asked {values['from']} for money.")


@router.post("/wallet/requests/{request_id}/{action}")
def answer(
    request: Request,
    user: CurrentWebUser,
    request_id: ItemId,
    action: Annotated[str, Path(max_length=20)],
    form: CheckedForm,
) -> Response:
    app = app_of(request)
    if action not in ("accept", "decline", "cancel"):
        raise DomainError("not_found", "no such action", status=404)
    now = app.clock.now()
    try:
        with app.db.transaction() as s:
            if action == "accept":
                _, t = wallets.accept_request(
                    s, app, request_id=request_id, user_id=user.id, now=now
                )
                status = t.status
            elif action == "decline":
                wallets.decline_request(s, request_id=request_id, user_id=user.id, now=now)
                status = "declined"
            else:
                wallets.cancel_request(s, request_id=request_id, user_id=user.id, now=now)
                status = "cancelled"
    except DomainError as exc:
        if exc.status == 404:
            raise
        return redirect("/wallet/requests", flash=exc.message, kind="error")
    if status == wallets.FAILED:
        return redirect(
            "/wallet/requests",
            flash="Not enough money in your wallet to pay this request. Nothing was sent; "
            "top up first.",
            kind="error",
        )
    if status == wallets.BLOCKED:
        return redirect("/wallet/requests", flash=OUTCOME_WORDS[status], kind="error")
    words = {
        wallets.COMPLETED: "Paid.",
        wallets.IN_REVIEW: OUTCOME_WORDS[wallets.IN_REVIEW],
        "declined": "Declined.",
        "cancelled": "Request cancelled.",
    }
    return redirect("/wallet/requests", flash=words.get(status, "Done."))
