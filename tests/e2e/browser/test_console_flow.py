"""The platform console in a real browser: sign up, create a platform (its key shown once),
edit the split rules with the live preview, record an order and see its allocation (the split
runs in the embedded workers while the order page polls), payouts, ledger. Screenshots of each
page, and the axe check on each (no serious or critical violation)."""

from __future__ import annotations

import re

from potluck.marketplace import service as marketplace
from potluck.payouts import service as payouts
from tests.e2e.browser.conftest import axe_check, screenshot, sign_up

IBAN = "DE89 3704 0044 0532 0130 00"


def _parties(app, platform_id):
    now = app.clock.now()
    with app.db.transaction() as s:
        return {
            name: marketplace.create_party(
                s, platform_id=platform_id, name=name, kind=kind, currency="EUR", now=now
            )
            for name, kind in (
                ("Pizzeria Roma", "merchant"),
                ("Courier Co", "partner"),
                ("Eats", "platform"),
            )
        }


def _payout(app, platform_id, party, amount):
    now = app.clock.now()
    with app.db.transaction() as s:
        bank = payouts.add_bank_account(
            s,
            platform_id=platform_id,
            party_id=party.id,
            holder_name="Pizzeria Roma",
            account_number=IBAN,
            routing_type="iban",
            routing_value=None,
            now=now,
        )
        return payouts.create_payout(
            s,
            platform_id=platform_id,
            party_id=party.id,
            bank_account_id=bank.id,
            amount=amount,
            currency="EUR",
            now=now,
        )


def _no_violations(page):
    violations = axe_check(page)
    assert violations == [], violations


def test_owner_edits_rules_with_preview_records_an_order_and_sees_its_allocation(page, server):
    sign_up(page, "Olga")
    page.goto("/console")
    page.get_by_label("Platform name").fill("Eats")
    page.get_by_role("button", name="Create platform").click()
    secret = page.get_by_label("Secret key of Eats").input_value()
    assert secret.startswith("sk_")
    href = page.get_by_role("link", name="Done: go to the console").get_attribute("href")
    platform_id = href.rsplit("/", 1)[-1]
    parties = _parties(server.app, platform_id)

    page.goto(href)
    assert page.get_by_role("heading", name="Eats", exact=True).is_visible()
    assert secret not in page.content()
    screenshot(page, "console-home")
    _no_violations(page)

    # The rule editor: courier 10 %, the platform a 1.50 fee, the rest to the merchant.
    page.get_by_role("link", name="Split rules", exact=True).click()
    page.get_by_label("Row 1: party").select_option(parties["Courier Co"].id)
    page.get_by_label("Row 1: value").fill("10")
    page.get_by_label("Row 2: party").select_option(parties["Eats"].id)
    page.get_by_label("Row 2: kind").select_option("fixed")
    page.get_by_label("Row 2: value").fill("1.50")
    page.get_by_label("Whatever is left goes to").select_option(parties["Pizzeria Roma"].id)
    page.get_by_label(re.compile("Preview an order of")).fill("25.00")
    preview = page.get_by_test_id("preview-table")
    preview.get_by_text("€21.00").wait_for()  # the live preview (htmx), no save yet
    assert preview.get_by_text("€2.50").is_visible()
    assert preview.get_by_text("€1.50").is_visible()
    assert page.get_by_test_id("preview-total").inner_text() == "€25.00"
    screenshot(page, "console-rules")
    _no_violations(page)
    page.get_by_role("button", name="Save rules").click()
    page.get_by_text("Split rules saved: version 1 for EUR.").wait_for()

    # A test order, split by those rules: the order page shows the allocation when it is done.
    page.get_by_role("link", name="Orders", exact=True).click()
    page.get_by_label("Amount").fill("25.00")
    page.get_by_role("button", name="Record order").click()
    page.wait_for_url(re.compile(r".*/orders/ord_\w+$"))
    page.get_by_test_id("split-status").filter(has_text="completed").wait_for()
    allocations = page.get_by_test_id("allocations")
    amounts = {
        cell.get_attribute("data-party"): int(cell.get_attribute("data-amount"))
        for cell in allocations.locator("td[data-party]").all()
    }
    assert amounts == {
        parties["Courier Co"].id: 250,
        parties["Eats"].id: 150,
        parties["Pizzeria Roma"].id: 2100,
    }
    assert page.get_by_test_id("allocation-total").inner_text() == "€25.00"
    screenshot(page, "console-order")
    _no_violations(page)

    # A payout of the merchant's money, with its state history; the ledger's entries.
    _payout(server.app, platform_id, parties["Pizzeria Roma"], 2_000)
    page.get_by_role("link", name="Payouts", exact=True).click()
    page.get_by_role("heading", name=re.compile("€20.00 to Pizzeria Roma")).wait_for()
    screenshot(page, "console-payouts")
    _no_violations(page)
    page.goto(f"/console/{platform_id}/ledger?account={parties['Pizzeria Roma'].wallet_account_id}")
    entries = page.get_by_test_id("entries")
    assert entries.get_by_text(re.compile(r"^split-alc_")).count() == 1  # the order's credit
    assert entries.locator("tbody tr").count() >= 2  # and the payout's hold
    _no_violations(page)
