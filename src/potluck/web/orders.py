"""Group order pages: my group orders, the create form, the group order page with its live
status partial, and the host's actions.

Every page calls the checkout service with the signed-in person's id, as the API does: a
group order the person neither hosts nor belongs to is a 404 page. The live part of the
order page is a partial polled by htmx; when the order changed (a payment, a new state) the
partial asks htmx to reload the whole page, so the actions and the history follow too.
"""

from __future__ import annotations

import hashlib
from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from potluck.checkout import catalog
from potluck.checkout import service as checkout
from potluck.checkout.service import GroupOrderView
from potluck.errors import DomainError
from potluck.marketplace import service as marketplace
from potluck.payments import service as payments
from potluck.web import orders_forms as of
from potluck.web.forms import run_once
from potluck.web.pages import CheckedForm, CurrentWebUser, app_of, redirect, render
from potluck.web.sessions import WebUser

router = APIRouter(include_in_schema=False)

GroupId = Annotated[str, Path(max_length=40)]
MemberId = Annotated[str, Path(max_length=40)]
POLL_SECONDS = 4


def _lists(form: FormData) -> dict[str, list[str]]:
    return {k: [v for v in form.getlist(k) if isinstance(v, str)] for k in form}


# ------------------------------------------------------------------ list


@router.get("/orders")
def my_orders(
    request: Request,
    user: CurrentWebUser,
    after: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        rows, more = checkout.list_group_orders(s, user_id=user.id, limit=20, starting_after=after)
        names = _merchant_names(s, rows)
    return render(
        request,
        "orders/list.html",
        orders=rows,
        more=more,
        next_after=rows[-1].id if rows and more else None,
        merchants=names,
        words=of.STATUS_WORDS,
        me=user,
    )


def _merchant_names(s: Session, rows: list[GroupOrderView]) -> dict[str, str]:
    names: dict[str, str] = {}
    for g in rows:
        if g.merchant_id not in names:
            try:
                names[g.merchant_id] = marketplace.get_party(
                    s, g.merchant_id, platform_id=g.platform_id
                ).name
            except DomainError:
                names[g.merchant_id] = g.merchant_id
    return names


# ------------------------------------------------------------------ create


def _create_context(
    s: Session, merchant_id: str
) -> tuple[list[catalog.MerchantView], catalog.MerchantView | None, list[Any]]:
    merchants = catalog.list_merchants(s)
    chosen = next((m for m in merchants if m.id == merchant_id), None)
    if chosen is None and len(merchants) == 1:
        chosen = merchants[0]
    items: list[Any] = []
    if chosen is not None:
        items, _ = catalog.list_merchant_items(
            s, merchant_id=chosen.id, limit=100, starting_after=None
        )
    return merchants, chosen, items


def _create_page(
    request: Request,
    form: of.CreateForm,
    *,
    errors: dict[str, str] | None = None,
    key: str | None = None,
    status_code: int = 200,
) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        merchants, chosen, items = _create_context(s, form.merchant)
    return render(
        request,
        "orders/new.html",
        status_code=status_code,
        form=form,
        merchants=merchants,
        merchant_options=[("", "Choose a merchant")] + [(m.id, m.name) for m in merchants],
        merchant=chosen,
        items=items,
        errors=errors or {},
        form_key_value=key,
        expiry_choices=of.EXPIRY_CHOICES,
        split_words=of.SPLIT_WORDS,
        fallback_words=of.FALLBACK_WORDS,
    )


@router.get("/orders/new")
def new_order(
    request: Request,
    user: CurrentWebUser,
    merchant: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    return _create_page(request, of.CreateForm(merchant=merchant))


def _create_effect(app: Any, user: WebUser, form: of.CreateForm, currency: str):  # type: ignore[no-untyped-def]
    """Validate the form, then create (and invite, and open) in ONE transaction."""
    lines = of.order_lines(form)
    expires = of.expiry_seconds(form)
    host_share = (
        of.parse_money(form.host_share or "0", currency, "host_share")
        if form.split == "custom"
        else None
    )
    invites = of.parse_invites(form.invites, split=form.split, currency=currency)

    def effect(s: Session) -> str:
        now = app.clock.now()
        group = checkout.create_group_order(
            s,
            host_user_id=user.id,
            merchant_id=form.merchant,
            items=lines,
            currency=currency,
            split=form.split,
            expires_in_seconds=expires,
            fallback=form.fallback,
            host_share=host_share,
            now=now,
        )
        for invite in invites:
            try:
                checkout.add_member(
                    s,
                    group_id=group.id,
                    host_user_id=user.id,
                    email=invite.email,
                    share=invite.share,
                    now=now,
                )
            except DomainError as exc:
                raise DomainError(
                    exc.code, f"{invite.email}: {exc.message}", field="invites"
                ) from None
        if form.open_now:
            checkout.open_group_order(s, app, group_id=group.id, host_user_id=user.id, now=now)
        return f"/orders/{group.id}"

    return effect


@router.post("/orders")
def create_order(request: Request, user: CurrentWebUser, form: CheckedForm) -> Response:
    app = app_of(request)
    values = of.read_create_form(_lists(form))
    key = form.get("idempotency_key")
    key = key if isinstance(key, str) else None
    try:
        with app.db.read() as s:
            merchants = {m.id: m for m in catalog.list_merchants(s)}
        merchant = merchants.get(values.merchant)
        if merchant is None:
            raise of.FormError("merchant", "choose a merchant")
        url = run_once(
            app,
            user_id=user.id,
            key=key,
            effect=_create_effect(app, user, values, merchant.currency),
        )
    except DomainError as exc:
        field = of.form_field(exc)
        return _create_page(request, values, errors={field: exc.message}, key=key, status_code=422)
    opened = "and invitations sent" if values.open_now else "as a draft"
    return redirect(url, flash=f"Group order created {opened}.")


# ------------------------------------------------------------------ the order page


def _fingerprint(g: GroupOrderView) -> str:
    parts = [g.status, str(g.paid)] + [f"{m.id}:{m.status}" for m in g.members]
    return hashlib.sha256("|".join(parts).encode()).hexdigest()[:16]


def _page_context(request: Request, user: WebUser, group_id: str) -> dict[str, Any]:
    app = app_of(request)
    with app.db.read() as s:
        group = checkout.get_group_order(s, group_id, user_id=user.id)
        try:
            merchant = marketplace.get_party(
                s, group.merchant_id, platform_id=group.platform_id
            ).name
        except DomainError:
            merchant = group.merchant_id
        rest_url = None
        is_host = group.host_user_id == user.id
        if is_host and group.status == "host_paying":
            for p in group.payments:
                if p.kind == "remainder" and p.status == "requires_payment":
                    rest_url = payments.get_intent(s, p.intent_id).payment_url
    now = app.clock.now()
    me = of.my_member(group, user.id, user.email)
    return {
        "group": group,
        "merchant_name": merchant,
        "is_host": is_host,
        "me_member": me,
        "rest_url": rest_url,
        "unpaid": of.unpaid(group),
        "time_left": of.time_left(group, now),
        "fallback_text": of.fallback_words(group),
        "status_words": of.STATUS_WORDS,
        "member_words": of.MEMBER_STATUS_WORDS,
        "split_words": of.SPLIT_WORDS,
        "terminal": group.status in of.TERMINAL,
        "fingerprint": _fingerprint(group),
        "poll_seconds": POLL_SECONDS,
    }


@router.get("/orders/{group_id}")
def order_page(request: Request, user: CurrentWebUser, group_id: GroupId) -> Response:
    return render(request, "orders/order.html", **_page_context(request, user, group_id))


@router.get("/orders/{group_id}/status")
def order_status(
    request: Request,
    user: CurrentWebUser,
    group_id: GroupId,
    v: Annotated[str | None, Query(max_length=40)] = None,
) -> Response:
    """The live part of the order page. When the order changed since the page was drawn
    (``v``, its fingerprint), htmx is asked to reload the page (actions, history)."""
    ctx = _page_context(request, user, group_id)
    headers = {}
    if v is not None and v != ctx["fingerprint"] and request.headers.get("hx-request"):
        headers["HX-Refresh"] = "true"
    return render(request, "orders/_live.html", headers=headers, **ctx)


# ------------------------------------------------------------------ host actions


def _back(group_id: str, exc: DomainError) -> Response:
    return redirect(f"/orders/{group_id}", flash=exc.message, kind="error")


@router.post("/orders/{group_id}/members")
def add_member(
    request: Request, user: CurrentWebUser, group_id: GroupId, form: CheckedForm
) -> Response:
    app = app_of(request)
    email = str(form.get("email") or "").strip()
    share_text = str(form.get("share") or "").strip()
    key = form.get("idempotency_key")
    errors: dict[str, str] = {}
    try:
        with app.db.read() as s:
            group = checkout.get_group_order(s, group_id, user_id=user.id)
        if group.host_user_id != user.id:
            raise DomainError("group_order_not_found", "not found", status=404)
        share = None
        if group.split == "custom":
            share = of.parse_money(share_text or "0", group.currency, "share")
        items = None
        if group.split == "by_items":
            items = []
            for i, line in enumerate(group.items):
                q = of.parse_quantity(str(form.get(f"claim.{i}") or "0"), f"claim.{i}")
                if q:
                    items.append((str(line["sku"]), q))
        if not email:
            raise of.FormError("email", "enter the person's email address")

        def effect(s: Session) -> str:
            checkout.add_member(
                s,
                group_id=group_id,
                host_user_id=user.id,
                email=email,
                share=share,
                items=items,
                now=app.clock.now(),
            )
            return f"/orders/{group_id}"

        url = run_once(app, user_id=user.id, key=key, effect=effect)
    except DomainError as exc:
        if exc.status == 404:
            raise
        name = exc.field or "email"
        if name.startswith("items."):
            name = "claim." + name.split(".")[1]
        errors[name] = exc.message
        ctx = _page_context(request, user, group_id)
        return render(
            request,
            "orders/order.html",
            status_code=422,
            errors=errors,
            values={"email": email, "share": share_text},
            **ctx,
        )
    return redirect(url, flash=f"{email} added.")


@router.post("/orders/{group_id}/members/{member_id}/remove")
def remove_member(
    request: Request,
    user: CurrentWebUser,
    group_id: GroupId,
    member_id: MemberId,
    form: CheckedForm,
) -> Response:
    app = app_of(request)
    try:
        with app.db.transaction() as s:
            checkout.remove_member(
                s, group_id=group_id, host_user_id=user.id, member=member_id, now=app.clock.now()
            )
    except DomainError as exc:
        if exc.status == 404 and exc.code != "member_not_found":
            raise
        return _back(group_id, exc)
    return redirect(f"/orders/{group_id}", flash="Removed.")


_ACTIONS = {
    "open": (checkout.open_group_order, "Opened: everyone has a payment link now."),
    "cancel": (
        checkout.cancel_group_order,
        "Cancelled. Everyone who paid gets their money back.",
    ),
    "pay-rest": (checkout.force_finalize, "You are paying the rest: use the button below."),
}


@router.post("/orders/{group_id}/{action}")
def host_action(
    request: Request,
    user: CurrentWebUser,
    group_id: GroupId,
    action: Annotated[str, Path(max_length=20)],
    form: CheckedForm,
) -> Response:
    if action not in _ACTIONS:
        raise DomainError("not_found", "no such action", status=404)
    fn, done = _ACTIONS[action]
    app = app_of(request)
    try:
        with app.db.transaction() as s:
            fn(s, app, group_id=group_id, host_user_id=user.id, now=app.clock.now())
    except DomainError as exc:
        if exc.status == 404:
            raise
        return _back(group_id, exc)
    return redirect(f"/orders/{group_id}", flash=done)
