"""A group order in a real browser: the host creates it from a merchant's menu for two
members (the host and an invited friend), each signs in and pays their share on the sandbox's
hosted page, and the order page shows "Confirmed" once the embedded workers have applied the
payments (its live partial polls; we wait on it, no fixed sleeps). Screenshots of the create
form and the order page (open, confirmed); the axe check on each (no serious or critical)."""

from __future__ import annotations

import itertools
import os

from playwright.sync_api import expect

from potluck.checkout import catalog
from potluck.identity.service import create_platform
from potluck.marketplace import service as marketplace
from tests.e2e.browser.conftest import axe_check, screenshot, sign_up, unique_email

_shops = itertools.count(1)


def _shop(app) -> str:
    """A merchant with a menu (pizza 12.50, soda 3.00); returns its name."""
    name = f"Trattoria {next(_shops)}-{os.getpid()}"
    platform, _ = create_platform(app, name="Eats")
    now = app.clock.now()
    with app.db.transaction() as s:
        merchant = marketplace.create_party(
            s, platform_id=platform.id, name=name, kind="merchant", currency="EUR", now=now
        )
        for sku, item, price in (("pizza", "Pizza", 1250), ("soda", "Soda", 300)):
            catalog.put_item(
                s,
                platform_id=platform.id,
                merchant_id=merchant.id,
                sku=sku,
                name=item,
                unit_price=price,
                stock=50,
                now=now,
            )
    return name


def _pay_my_share(page, order_url: str) -> None:
    page.goto(order_url)
    page.get_by_role("link", name="Pay my share").click()
    page.wait_for_url("**/sandbox/pay/**")
    page.get_by_role("button", name="Pay €14.00").click()
    expect(page.get_by_text("Paid. Thank you!")).to_be_visible()
    page.goto(order_url)


def test_two_members_pay_and_the_order_page_shows_confirmed(page, browser, server):
    merchant = _shop(server.app)
    friend = unique_email("Femi")
    sign_up(page, "Hana")

    page.goto("/orders/new")
    page.get_by_label("Order from").select_option(label=merchant)
    page.get_by_role("button", name="Show the menu").click()
    page.get_by_label("How many Pizza").fill("2")
    page.get_by_label("How many Soda").fill("1")
    page.get_by_label("Who pays with you (emails)").fill(friend)
    page.get_by_label("The host pays what is still unpaid", exact=False).check()
    screenshot(page, "group-order-create")
    assert axe_check(page) == []
    page.get_by_role("button", name="Create the group order").click()
    page.wait_for_url("**/orders/grp_*")
    order_url = page.url
    expect(page.locator("#order-status")).to_have_text("Open")
    expect(page.get_by_text("the host pays what is still unpaid", exact=False)).to_be_visible()
    screenshot(page, "group-order-open")
    assert axe_check(page) == []

    _pay_my_share(page, order_url)
    expect(page.locator("#order-status")).to_have_text("Pending")

    other = browser.new_context(base_url=server.url, viewport={"width": 390, "height": 844})
    other.set_default_timeout(10_000)
    try:
        friend_page = other.new_page()
        sign_up(friend_page, "Femi", email=friend)
        _pay_my_share(friend_page, order_url)
        expect(friend_page.locator("#order-status")).to_have_text("Confirmed", timeout=20_000)
        screenshot(friend_page, "group-order-confirmed-phone")  # 390 px wide
    finally:
        other.close()

    # The host's page was left open: its live partial notices and reloads the page.
    expect(page.locator("#order-status")).to_have_text("Confirmed", timeout=20_000)
    expect(page.locator("#history")).to_contain_text("merchant order placed")
    screenshot(page, "group-order-confirmed")
    assert axe_check(page) == []
    page.goto("/orders")
    expect(page.get_by_role("link", name=merchant)).to_be_visible()
    assert axe_check(page) == []
