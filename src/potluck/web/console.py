"""The platform console: a platform owner's pages at ``/console/{platform_id}/…``.

Every page first asks the identity service for the platform *as its owner* (``get_platform``
with ``owner_user_id``): another person's platform, or one that does not exist, is the same
404 page, exactly as ``GET /v1/platforms/{id}`` answers. Everything after that calls the
products' service functions with that platform id, the same scoping the API applies to the
platform's secret key, so a page can show nothing the platform's API could not.

Secrets (a platform's API key, a webhook endpoint's signing secret) are shown once, in the
answer to the form that created them, never stored by a page and never in a redirect.
"""

from __future__ import annotations

import secrets
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response
from sqlalchemy.orm import Session
from starlette.datastructures import FormData

from potluck.errors import DomainError
from potluck.identity import service as identity
from potluck.identity.service import PlatformView
from potluck.ledger import service as ledger
from potluck.marketplace import service as marketplace
from potluck.money import MoneyError, check_currency, parse_amount
from potluck.notify import service as notify
from potluck.payouts import service as payouts
from potluck.payouts import states as payout_states
from potluck.splits import SplitRules
from potluck.web import console_rules
from potluck.web.forms import form_values, run_once, submit_once
from potluck.web.pages import (
    CheckedForm,
    CurrentWebUser,
    app_of,
    field_errors,
    redirect,
    render,
    templates,
)
from potluck.web.sessions import WebUser

router = APIRouter(include_in_schema=False)

templates.env.filters["bps"] = console_rules.bps_to_percent  # 1250 → "12.5" (percent)

PAGE_SIZE = 20
PARTY_READ_LIMIT = 1000  # the editor's party choices; far above any platform's hand-made set
DESCRIPTION_MAX = 500


# ---------------------------------------------------------------- helpers


def owned_platform(request: Request, user: WebUser, platform_id: str) -> PlatformView:
    """The platform if ``user`` owns it; otherwise the 404 page (``IdentityError`` 404)."""
    return identity.get_platform(
        app_of(request), platform_id=platform_id[:40], owner_user_id=user.id
    )


def _page(
    request: Request,
    template: str,
    platform: PlatformView,
    section: str,
    *,
    status_code: int = 200,
    **context: Any,
) -> Response:
    return render(
        request, template, status_code=status_code, platform=platform, section=section, **context
    )


def _after(request: Request) -> str | None:
    value = request.query_params.get("after")
    return value[:64] if value else None


def all_parties(s: Session, platform_id: str) -> list[marketplace.PartyView]:
    parties: list[marketplace.PartyView] = []
    after: str | None = None
    while len(parties) < PARTY_READ_LIMIT:
        rows, more = marketplace.list_parties(
            s, platform_id=platform_id, limit=100, starting_after=after
        )
        parties.extend(rows)
        if not more or not rows:
            break
        after = rows[-1].id
    return parties


def party_names(parties: list[marketplace.PartyView]) -> dict[str, str]:
    return {p.id: p.name for p in parties}


def _text(form: FormData, name: str, limit: int = 500) -> str:
    value = form.get(name)
    return value.strip()[:limit] if isinstance(value, str) else ""


def _claim(request: Request, user: WebUser, form: FormData, url: str) -> tuple[bool, str]:
    """Claim the form's idempotency key for an effect that runs in its own transaction
    (the identity service opens one per use case). True: this submission is the first and
    must do the thing now; False: the form was sent before, go to ``url``."""
    ran: list[bool] = []

    def effect(_: Session) -> str:
        ran.append(True)
        return url

    result = run_once(
        app_of(request), user_id=user.id, key=form.get("idempotency_key"), effect=effect
    )
    return bool(ran), result


# ---------------------------------------------------------------- platforms


@router.get("/console")
def console_index(request: Request, user: CurrentWebUser) -> Response:
    rows, more = identity.list_platforms(
        app_of(request), owner_user_id=user.id, limit=100, starting_after=_after(request)
    )
    return render(request, "console/index.html", platforms=rows, has_more=more)


@router.post("/console/platforms")
def create_platform(request: Request, user: CurrentWebUser, form: CheckedForm) -> Response:
    app = app_of(request)
    name = _text(form, "name", 300)
    try:
        identity.clean_name(name)
    except ValueError as exc:
        rows, more = identity.list_platforms(app, owner_user_id=user.id, limit=100)
        return render(
            request,
            "console/index.html",
            status_code=422,
            platforms=rows,
            has_more=more,
            errors={"name": str(exc)},
            values=form_values(form),
        )
    first, url = _claim(request, user, form, "/console")
    if not first:
        return redirect(url, flash="That form was already sent: the platform exists below.")
    platform, secret_key = identity.create_platform(app, name=name, owner_user_id=user.id)
    return _page(
        request, "console/key_issued.html", platform, "keys", secret_key=secret_key, created=True
    )


@router.get("/console/{platform_id}")
def console_home(request: Request, user: CurrentWebUser, platform_id: str) -> Response:
    platform = owned_platform(request, user, platform_id)
    app = app_of(request)
    with app.db.read() as s:
        parties = all_parties(s, platform.id)
        currencies = sorted({p.currency for p in parties})
        rules = [r for c in currencies if (r := _current_rules(s, platform.id, c)) is not None]
        orders, more_orders = marketplace.list_orders(s, platform_id=platform.id, limit=PAGE_SIZE)
        payout_rows, more_payouts = payouts.list_payouts(
            s, platform_id=platform.id, limit=PAGE_SIZE
        )
        endpoints, _ = notify.list_endpoints(s, platform_id=platform.id, limit=100)
    return _page(
        request,
        "console/home.html",
        platform,
        "home",
        parties=parties,
        currencies=currencies,
        rule_sets=rules,
        orders=orders,
        more_orders=more_orders,
        payouts=payout_rows,
        more_payouts=more_payouts,
        endpoints=endpoints,
    )


# ---------------------------------------------------------------- API keys


@router.get("/console/{platform_id}/keys")
def keys_page(request: Request, user: CurrentWebUser, platform_id: str) -> Response:
    platform = owned_platform(request, user, platform_id)
    return _page(request, "console/keys.html", platform, "keys")


@router.post("/console/{platform_id}/keys/rotate")
def rotate_key(
    request: Request, user: CurrentWebUser, platform_id: str, form: CheckedForm
) -> Response:
    platform = owned_platform(request, user, platform_id)
    first, url = _claim(request, user, form, f"/console/{platform.id}/keys")
    if not first:
        return redirect(
            url,
            flash="That form was already sent: a new key was issued then and is shown only "
            "once. Rotate again if you did not copy it.",
            kind="info",
        )
    platform, secret_key = identity.rotate_platform_key(
        app_of(request), platform_id=platform.id, owner_user_id=user.id
    )
    return _page(request, "console/key_issued.html", platform, "keys", secret_key=secret_key)


@router.post("/console/{platform_id}/keys/revoke")
def revoke_key(
    request: Request, user: CurrentWebUser, platform_id: str, form: CheckedForm
) -> Response:
    platform = owned_platform(request, user, platform_id)
    identity.revoke_platform_key(app_of(request), platform_id=platform.id, owner_user_id=user.id)
    return redirect(
        f"/console/{platform.id}/keys",
        flash="The secret key is revoked: it no longer authenticates. Rotate to get a new one.",
    )


# ---------------------------------------------------------------- parties


def _parties_page(
    request: Request, platform: PlatformView, *, status_code: int = 200, **context: Any
) -> Response:
    app = app_of(request)
    with app.db.read() as s:
        rows, more = marketplace.list_parties(
            s, platform_id=platform.id, limit=PAGE_SIZE, starting_after=_after(request)
        )
        wallets = {p.id: marketplace.wallet_balance(s, p) for p in rows}
    return _page(
        request,
        "console/parties.html",
        platform,
        "parties",
        status_code=status_code,
        parties=rows,
        wallets=wallets,
        has_more=more,
        kinds=marketplace.PARTY_KINDS,
        **context,
    )


@router.get("/console/{platform_id}/parties")
def parties_page(request: Request, user: CurrentWebUser, platform_id: str) -> Response:
    return _parties_page(request, owned_platform(request, user, platform_id))


@router.post("/console/{platform_id}/parties")
def create_party(
    request: Request, user: CurrentWebUser, platform_id: str, form: CheckedForm
) -> Response:
    platform = owned_platform(request, user, platform_id)
    app = app_of(request)
    name = _text(form, "name", 300)
    errors: dict[str, str] = {}
    try:
        name = identity.clean_name(name)
    except ValueError as exc:
        errors["name"] = str(exc)
    currency = _text(form, "currency", 8).upper()
    try:
        check_currency(currency)
    except MoneyError as exc:
        errors["currency"] = str(exc)
    kind = _text(form, "kind", 20)

    def effect(s: Session) -> str:
        marketplace.create_party(
            s, platform_id=platform.id, name=name, kind=kind, currency=currency, now=app.clock.now()
        )
        return f"/console/{platform.id}/parties"

    if errors:
        return _parties_page(
            request, platform, status_code=422, errors=errors, values=form_values(form)
        )
    url = submit_once(app, user_id=user.id, form=form, effect=effect)
    if isinstance(url, DomainError):
        return _parties_page(
            request, platform, status_code=422, errors=field_errors(url), values=form_values(form)
        )
    return redirect(url, flash=f"Party {name} added.")


# ---------------------------------------------------------------- split rules


def _editor(
    request: Request,
    platform: PlatformView,
    form: console_rules.RuleForm,
    *,
    status_code: int = 200,
    preview: console_rules.Preview | None = None,
    current: marketplace.RuleSetView | None = None,
) -> Response:
    with app_of(request).db.read() as s:
        parties = all_parties(s, platform.id)
        if current is None:
            current = _current_rules(s, platform.id, form.currency)
    currencies = sorted({p.currency for p in parties} | {form.currency})
    return _page(
        request,
        "console/rules.html",
        platform,
        "rules",
        status_code=status_code,
        form=form,
        errors=form.errors,
        parties=parties,
        names=party_names(parties),
        currencies=currencies,
        preview=preview,
        current=current,
    )


def _current_rules(s: Session, platform_id: str, currency: str) -> marketplace.RuleSetView | None:
    try:
        return marketplace.current_split_rules(s, platform_id=platform_id, currency=currency)
    except DomainError:
        return None


def _default_currency(s: Session, platform_id: str) -> str:
    parties, _ = marketplace.list_parties(s, platform_id=platform_id, limit=1)
    return parties[0].currency if parties else "EUR"


@router.get("/console/{platform_id}/rules")
def rules_page(request: Request, user: CurrentWebUser, platform_id: str) -> Response:
    platform = owned_platform(request, user, platform_id)
    with app_of(request).db.read() as s:
        currency = (request.query_params.get("currency") or "").upper()[:3]
        try:
            check_currency(currency)
        except MoneyError:
            currency = _default_currency(s, platform.id)
        current = _current_rules(s, platform.id, currency)
    form = console_rules.form_of_rules(current.split if current else None, currency=currency)
    preview = None
    if current is not None:
        preview = console_rules.preview(form, current.split)
    return _editor(request, platform, form, preview=preview, current=current)


def _checked_preview(
    request: Request, platform: PlatformView, form: console_rules.RuleForm
) -> tuple[SplitRules | None, console_rules.Preview | None]:
    """The form's rules checked as the service checks them (shape, then parties and their
    currency, read-only) and the sample amount's allocation; errors land in ``form.errors``."""
    split = console_rules.to_rules(form)
    if split is None:
        return None, None
    try:
        with app_of(request).db.read() as s:
            marketplace.check_split_parties(
                s, split, platform_id=platform.id, currency=form.currency
            )
    except DomainError as exc:
        form.errors[form.error_for(exc.field)] = exc.message
        return None, None
    return split, console_rules.preview(form, split)


@router.post("/console/{platform_id}/rules/preview")
def rules_preview(
    request: Request, user: CurrentWebUser, platform_id: str, form: CheckedForm
) -> Response:
    """The live preview (htmx partial): the allocation of the sample amount. No writes."""
    platform = owned_platform(request, user, platform_id)
    typed = console_rules.read_form(form_values(form))
    with app_of(request).db.read() as s:
        names = party_names(all_parties(s, platform.id))
    _, preview = _checked_preview(request, platform, typed)
    return render(
        request,
        "console/_rules_preview.html",
        form=typed,
        errors=typed.errors,
        preview=preview,
        names=names,
        partial=True,
    )


@router.post("/console/{platform_id}/rules")
def save_rules(
    request: Request, user: CurrentWebUser, platform_id: str, form: CheckedForm
) -> Response:
    """Save the rules (a new version when they changed); ``action=preview`` only previews
    (the editor without JavaScript)."""
    platform = owned_platform(request, user, platform_id)
    app = app_of(request)
    typed = console_rules.read_form(form_values(form))
    split, preview = _checked_preview(request, platform, typed)
    if split is None or form.get("action") == "preview":
        return _editor(
            request, platform, typed, status_code=422 if typed.errors else 200, preview=preview
        )
    versions: list[marketplace.RuleSetView] = []

    def effect(s: Session) -> str:
        versions.append(
            marketplace.put_split_rules(
                s,
                platform_id=platform.id,
                currency=typed.currency,
                split=split,
                now=app.clock.now(),
            )
        )
        return f"/console/{platform.id}/rules?currency={typed.currency}"

    url = submit_once(app, user_id=user.id, form=form, effect=effect)
    if isinstance(url, DomainError):
        typed.errors[typed.error_for(url.field)] = url.message
        return _editor(request, platform, typed, status_code=422, preview=preview)
    message = "Split rules saved."
    if versions:
        message = f"Split rules saved: version {versions[0].version} for {typed.currency}."
    return redirect(url, flash=message)


# ---------------------------------------------------------------- orders


def _orders_page(
    request: Request, platform: PlatformView, *, status_code: int = 200, **context: Any
) -> Response:
    with app_of(request).db.read() as s:
        rows, more = marketplace.list_orders(
            s, platform_id=platform.id, limit=PAGE_SIZE, starting_after=_after(request)
        )
        parties = all_parties(s, platform.id)
        rule_currencies = [
            c
            for c in sorted({p.currency for p in parties})
            if _current_rules(s, platform.id, c) is not None
        ]
    values = context.pop("values", None) or {
        "order_id": "test-" + secrets.token_hex(4),
        "currency": rule_currencies[0] if rule_currencies else "EUR",
    }
    return _page(
        request,
        "console/orders.html",
        platform,
        "orders",
        status_code=status_code,
        orders=rows,
        has_more=more,
        names=party_names(parties),
        rule_currencies=rule_currencies,
        values=values,
        **context,
    )


@router.get("/console/{platform_id}/orders")
def orders_page(request: Request, user: CurrentWebUser, platform_id: str) -> Response:
    return _orders_page(request, owned_platform(request, user, platform_id))


@router.post("/console/{platform_id}/orders")
def record_order(
    request: Request, user: CurrentWebUser, platform_id: str, form: CheckedForm
) -> Response:
    """Record a test order, split by the platform's current rules for its currency."""
    platform = owned_platform(request, user, platform_id)
    app = app_of(request)
    values = form_values(form)
    order_id = _text(form, "order_id", 100)
    currency = _text(form, "currency", 8).upper()
    errors: dict[str, str] = {}
    if not order_id or len(order_id) > 64 or not all("!" <= ch <= "~" for ch in order_id):
        errors["order_id"] = "the order id is 1 to 64 printable characters, without spaces"
    amount = 0
    try:
        check_currency(currency)
    except MoneyError as exc:
        errors["currency"] = str(exc)
    else:
        try:
            amount = parse_amount(_text(form, "amount", 80), currency)
            if amount <= 0:
                errors["amount"] = "the amount must be above zero"
        except MoneyError as exc:
            errors["amount"] = str(exc)
    if errors:
        return _orders_page(request, platform, status_code=422, errors=errors, values=values)

    def effect(s: Session) -> str:
        order = marketplace.record_order(
            s,
            platform_id=platform.id,
            order_id=order_id,
            amount=amount,
            currency=currency,
            now=app.clock.now(),
        )
        return f"/console/{platform.id}/orders/{order.id}"

    url = submit_once(app, user_id=user.id, form=form, effect=effect)
    if isinstance(url, DomainError):
        found = field_errors(url)
        if "split" in found:
            found["__all__"] = found.pop("split")
        return _orders_page(request, platform, status_code=422, errors=found, values=values)
    return redirect(url, flash=f"Order {order_id} recorded; it is split among the parties now.")


def _order(request: Request, user: WebUser, platform_id: str, order_pk: str) -> dict[str, Any]:
    platform = owned_platform(request, user, platform_id)
    with app_of(request).db.read() as s:
        order = marketplace.get_order(s, order_pk[:40], platform_id=platform.id)
        names = party_names(all_parties(s, platform.id))
    return {"platform": platform, "order": order, "names": names}


@router.get("/console/{platform_id}/orders/{order_pk}")
def order_page(request: Request, user: CurrentWebUser, platform_id: str, order_pk: str) -> Response:
    ctx = _order(request, user, platform_id, order_pk)
    return render(request, "console/order.html", section="orders", **ctx)


@router.get("/console/{platform_id}/orders/{order_pk}/split")
def order_split(
    request: Request, user: CurrentWebUser, platform_id: str, order_pk: str
) -> Response:
    """The order's split (htmx partial, polled while the split is still running)."""
    ctx = _order(request, user, platform_id, order_pk)
    return render(request, "console/_order_split.html", **ctx)


# ---------------------------------------------------------------- payouts


@router.get("/console/{platform_id}/payouts")
def payouts_page(request: Request, user: CurrentWebUser, platform_id: str) -> Response:
    platform = owned_platform(request, user, platform_id)
    status = request.query_params.get("status") or None
    if status not in payout_states.STATUSES:
        status = None
    with app_of(request).db.read() as s:
        rows, more = payouts.list_payouts(
            s,
            platform_id=platform.id,
            limit=PAGE_SIZE,
            starting_after=_after(request),
            status=status,
        )
        names = party_names(all_parties(s, platform.id))
    return _page(
        request,
        "console/payouts.html",
        platform,
        "payouts",
        payouts=rows,
        has_more=more,
        names=names,
        status=status,
        statuses=payout_states.STATUSES,
    )


# ---------------------------------------------------------------- ledger


@router.get("/console/{platform_id}/ledger")
def ledger_page(request: Request, user: CurrentWebUser, platform_id: str) -> Response:
    """The platform's ledger accounts and, for the chosen one, its entries (paginated)."""
    platform = owned_platform(request, user, platform_id)
    scope = marketplace.platform_scope(platform.id)
    chosen = (request.query_params.get("account") or "")[:40] or None
    with app_of(request).db.read() as s:
        accounts: list[ledger.AccountView] = []
        after: str | None = None
        while len(accounts) < PARTY_READ_LIMIT:
            rows, more = ledger.list_accounts(s, scope=scope, limit=100, starting_after=after)
            accounts.extend(rows)
            if not more or not rows:
                break
            after = rows[-1].id
        names = party_names(all_parties(s, platform.id))
        account = None
        entries: list[dict[str, Any]] = []
        more_entries = False
        if chosen is not None:
            # get_account with the scope: another platform's account is a 404 page.
            account = ledger.get_account(s, chosen, scope=scope)
        elif accounts:
            account = accounts[0]
        if account is not None:
            entries, more_entries = ledger.list_entries(
                s, account.id, limit=PAGE_SIZE, starting_after=_after(request)
            )
    return _page(
        request,
        "console/ledger.html",
        platform,
        "ledger",
        accounts=accounts,
        account=account,
        entries=entries,
        has_more=more_entries,
        names=names,
    )


# ---------------------------------------------------------------- webhooks


def _webhooks_page(
    request: Request, platform: PlatformView, *, status_code: int = 200, **context: Any
) -> Response:
    with app_of(request).db.read() as s:
        rows, more = notify.list_endpoints(
            s, platform_id=platform.id, limit=PAGE_SIZE, starting_after=_after(request)
        )
    return _page(
        request,
        "console/webhooks.html",
        platform,
        "webhooks",
        status_code=status_code,
        endpoints=rows,
        has_more=more,
        event_types=notify.DELIVERABLE_EVENTS,
        **context,
    )


@router.get("/console/{platform_id}/webhooks")
def webhooks_page(request: Request, user: CurrentWebUser, platform_id: str) -> Response:
    return _webhooks_page(request, owned_platform(request, user, platform_id))


@router.post("/console/{platform_id}/webhooks")
def create_webhook(
    request: Request, user: CurrentWebUser, platform_id: str, form: CheckedForm
) -> Response:
    platform = owned_platform(request, user, platform_id)
    app = app_of(request)
    url = _text(form, "url", 3000)
    description = _text(form, "description", 2000) or None
    events = [e for e in form.getlist("events") if isinstance(e, str)]
    values = form_values(form)
    errors: dict[str, str] = {}
    if not url:
        errors["url"] = "enter the address Potluck should send events to"
    if description is not None and len(description) > DESCRIPTION_MAX:
        errors["description"] = f"the description has at most {DESCRIPTION_MAX} characters"
    if not events:
        errors["events"] = "choose at least one event (or all events)"
    if errors:
        return _webhooks_page(
            request, platform, status_code=422, errors=errors, values=values, chosen=events
        )
    created: list[tuple[notify.EndpointView, str]] = []

    def effect(s: Session) -> str:
        endpoint, secret = notify.create_endpoint(
            s,
            platform_id=platform.id,
            url=url,
            events=events,
            description=description,
            settings=app.settings,
            now=app.clock.now(),
        )
        created.append((endpoint, secret))
        return f"/console/{platform.id}/webhooks/{endpoint.id}"

    target = submit_once(app, user_id=user.id, form=form, effect=effect)
    if isinstance(target, DomainError):
        return _webhooks_page(
            request,
            platform,
            status_code=422,
            errors=field_errors(target),
            values=values,
            chosen=events,
        )
    if not created:
        return redirect(
            target,
            flash="That form was already sent: the endpoint exists. Its signing secret was "
            "shown once, when it was created.",
            kind="info",
        )
    endpoint, secret = created[0]
    return _page(
        request,
        "console/webhook.html",
        platform,
        "webhooks",
        endpoint=endpoint,
        secret=secret,
        deliveries=[],
        has_more=False,
    )


@router.get("/console/{platform_id}/webhooks/{endpoint_id}")
def webhook_page(
    request: Request, user: CurrentWebUser, platform_id: str, endpoint_id: str
) -> Response:
    platform = owned_platform(request, user, platform_id)
    with app_of(request).db.read() as s:
        endpoint = notify.get_endpoint(s, endpoint_id[:40], platform_id=platform.id)
        deliveries, more = notify.list_deliveries(
            s,
            endpoint.id,
            platform_id=platform.id,
            limit=PAGE_SIZE,
            starting_after=_after(request),
        )
    return _page(
        request,
        "console/webhook.html",
        platform,
        "webhooks",
        endpoint=endpoint,
        deliveries=deliveries,
        has_more=more,
    )


@router.post("/console/{platform_id}/webhooks/{endpoint_id}/disable")
def disable_webhook(
    request: Request, user: CurrentWebUser, platform_id: str, endpoint_id: str, form: CheckedForm
) -> Response:
    platform = owned_platform(request, user, platform_id)
    app = app_of(request)
    with app.db.transaction() as s:
        endpoint = notify.disable_endpoint(
            s, endpoint_id[:40], platform_id=platform.id, now=app.clock.now()
        )
    return redirect(
        f"/console/{platform.id}/webhooks/{endpoint.id}",
        flash="The endpoint is disabled: nothing more is sent to it.",
    )
