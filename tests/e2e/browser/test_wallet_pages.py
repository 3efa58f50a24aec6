"""The wallet in a real browser: top up on the sandbox's hosted page, the balance shows it;
send more than the wallet holds (the error next to the amount, nothing sent), then send a
part (completed). Screenshots of the wallet page and the send form; the axe check on the
wallet, send and requests pages (no serious or critical violation)."""

from __future__ import annotations

import re

from playwright.sync_api import expect

from potluck.identity.service import register_user
from tests.e2e.browser.conftest import PASSWORD, axe_check, screenshot, sign_up, unique_email


def test_top_up_then_send_too_much_then_send(page, server):
    friend = unique_email("Wren")
    register_user(server.app, email=friend, password=PASSWORD, name="Wren")
    sign_up(page, "Ola")

    page.goto("/wallet")
    page.get_by_role("link", name="Top up").click()
    page.get_by_label("Amount").fill("20")
    page.get_by_role("button", name="Continue to payment").click()
    page.wait_for_url("**/sandbox/pay/**")
    page.get_by_role("button", name="Pay €20.00").click()
    expect(page.get_by_text("Paid. Thank you!")).to_be_visible()

    page.goto("/wallet")
    expect(page.locator(".balance-available")).to_have_text("€20.00")
    screenshot(page, "wallet")
    assert axe_check(page) == []

    page.get_by_role("link", name="Send money").click()
    page.get_by_label("To (email)").fill(friend)
    page.get_by_label("Amount").fill("50")
    page.get_by_label("Note (optional)").fill("concert tickets")
    page.get_by_role("button", name="Send").click()
    amount = page.get_by_label("Amount")
    expect(amount).to_have_attribute("aria-invalid", "true")
    error = page.locator("#amount-error")
    expect(error).to_contain_text("Not enough money in your wallet: €20.00 available")
    assert "amount-error" in (amount.get_attribute("aria-describedby") or "")
    screenshot(page, "wallet-send")
    assert axe_check(page) == []

    amount.fill("12.50")
    page.get_by_role("button", name="Send").click()
    page.wait_for_url(re.compile(r".*/wallet/transfers/wtr_.*"))
    expect(page.locator("#transfer-status")).to_have_text("Sent.")
    page.goto("/wallet")
    expect(page.locator(".balance-available")).to_have_text("€7.50")

    page.goto("/wallet/requests")
    assert axe_check(page) == []
