"""The sandbox provider's hosted payment page: ``GET /sandbox/pay/{intent_id}`` shows the
amount with Pay and Decline buttons; ``POST`` (form field ``action=pay|decline``) records the
payer's choice in the sandbox, which then sends its signed webhooks to our webhook handler
(at once, in this process) and shows the result."""

from __future__ import annotations

from html import escape
from typing import Annotated
from urllib.parse import parse_qs

import anyio.to_thread
from fastapi import APIRouter, Path, Request
from fastapi.responses import HTMLResponse, RedirectResponse
from sqlalchemy.orm import Session

from potluck.api.deps import AppDep
from potluck.bootstrap import Potluck
from potluck.errors import DomainError
from potluck.money import format_money
from potluck.payments.models import SandboxIntent
from potluck.payments.providers.sandbox import Script, sandbox_of

router = APIRouter(prefix="/sandbox", tags=["sandbox"], include_in_schema=False)

IntentId = Annotated[str, Path(max_length=40)]

_PAGE = """<!doctype html>
<html lang="en"><head><meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Sandbox payment: {amount}</title>
<style>
body {{ font-family: system-ui, sans-serif; max-width: 28rem; margin: 3rem auto; padding: 0 1rem; }}
.amount {{ font-size: 2.2rem; font-weight: 600; margin: .5rem 0 1.5rem; }}
.status {{ padding: .75rem; border-radius: .4rem; background: #f1f3f5; }}
form {{ display: inline; }}
button {{ font-size: 1rem; padding: .6rem 1.4rem; margin-right: .5rem; border-radius: .4rem;
  border: 1px solid #999; cursor: pointer; }}
button.pay {{ background: #1b7f3b; color: white; border-color: #1b7f3b; }}
small {{ color: #666; }}
</style></head>
<body>
<p><small>Potluck sandbox &mdash; a simulated payment provider. No real money moves.</small></p>
<h1>{description}</h1>
<div class="amount">{amount}</div>
{body}
<p><small>Payment {ref}</small></p>
</body></html>
"""

_BUTTONS = """<form method="post"><input type="hidden" name="action" value="pay">
<button class="pay" type="submit">Pay {amount}</button></form>
<form method="post"><input type="hidden" name="action" value="decline">
<button type="submit">Decline</button></form>"""

_RESULTS = {
    "succeeded": "Paid. Thank you!",
    "failed": "Declined: {reason}.",
    "canceled": "This payment was canceled.",
    "processing": "Processing&hellip;",
}


def _row(app: Potluck, s: Session, intent_id: str) -> SandboxIntent:
    return sandbox_of(app).find_by_intent(s, intent_id)


def render(row: SandboxIntent, locale: str = "en_US") -> str:
    amount = escape(format_money(row.amount, row.currency, locale))
    if row.status == "requires_payment":
        body = _BUTTONS.format(amount=amount)
    else:
        text = _RESULTS.get(row.status, escape(row.status))
        body = f'<p class="status">{text.format(reason=escape(row.failure_reason or ""))}</p>'
    return _PAGE.format(
        amount=amount, description=escape(row.description), body=body, ref=escape(row.ref)
    )


@router.get("/pay/{intent_id}", response_class=HTMLResponse)
def payment_page(intent_id: IntentId, app: AppDep) -> HTMLResponse:
    with app.db.read() as s:
        return HTMLResponse(render(_row(app, s, intent_id)))


@router.post("/pay/{intent_id}", response_class=HTMLResponse)
async def submit_payment(intent_id: IntentId, request: Request, app: AppDep) -> RedirectResponse:
    form = parse_qs((await request.body()).decode("utf-8", "replace"))
    action = (form.get("action") or [""])[0]
    outcomes = {"pay": "succeeded", "decline": "failed"}
    if action not in outcomes:
        raise DomainError("invalid_action", "action is pay or decline", field="action")

    def act() -> None:
        sandbox = sandbox_of(app)
        with app.db.transaction() as s:
            sandbox.act(s, intent_id, Script(outcome=outcomes[action]), now=app.clock.now())
        sandbox.deliver_due(app)  # embedded: the webhooks go out now (the poller would too)

    await anyio.to_thread.run_sync(act)
    return RedirectResponse(f"/sandbox/pay/{intent_id}", status_code=303)
