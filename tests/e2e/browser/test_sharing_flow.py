"""The sharing flow in a browser: sign up, create a group with two members, add an expense by
typing it (the previewed parse is what is saved), settle up, and everyone is settled.
Screenshots of the main pages go to test-artifacts/screenshots/."""

from __future__ import annotations

import re

from potluck.identity.service import register_user
from tests.e2e.browser.conftest import PASSWORD, screenshot, sign_up, unique_email


def test_sign_up_create_group_type_an_expense_and_settle_up(page, server):
    # Bob and Ann have accounts (emails of their own: other tests share this database)
    bob, ann = unique_email("bob"), unique_email("ann")
    register_user(server.app, email=bob, password=PASSWORD, name="Bob")
    register_user(server.app, email=ann, password=PASSWORD, name="Ann")
    page.goto("/signin")
    screenshot(page, "signin")
    sign_up(page, "Cara")
    screenshot(page, "dashboard")

    page.get_by_role("link", name="Groups", exact=True).click()
    page.get_by_label("Group name").fill("Trip")
    page.get_by_label("Members' emails").fill(f"{bob}, {ann}")
    page.get_by_role("button", name="Create group").click()
    page.wait_for_url(re.compile(r"/groups/grp_\w+$"))
    group_url = page.url
    assert page.get_by_role("heading", name="Trip").is_visible()
    page.get_by_role("link", name="Groups", exact=True).click()
    screenshot(page, "groups")

    page.goto(group_url)
    page.get_by_role("link", name="Add an expense").click()
    page.get_by_label("Say what happened").fill(
        "I paid 90 for dinner with Bob and Ann, Bob had wine for 20"
    )
    page.get_by_role("button", name="Preview").click()
    parsed = page.locator("#parsed")
    parsed.wait_for()
    # 90 - 20 of wine = 70 shared by three; Bob also had the wine.
    shares = {
        row.locator("td").first.inner_text(): row.locator("td").last.inner_text()
        for row in parsed.locator("tbody tr").all()
    }
    assert shares == {"Cara": "€23.34", "Bob": "€43.33", "Ann": "€23.33"}, shares
    # The form's live preview (htmx): equal shares of what is typed, before anything is saved.
    page.get_by_label("What was it for?").fill("Taxi")
    page.get_by_label("Amount (EUR)").fill("30")
    page.wait_for_selector("#preview table")
    assert page.locator("#preview td.num").all_inner_texts() == ["€10.00"] * 3
    screenshot(page, "add-expense")
    parsed.get_by_role("button", name="Save this expense").click()
    page.wait_for_url(group_url)
    assert page.get_by_text("added.").is_visible()
    assert page.locator("#expenses").get_by_text("dinner").count() >= 1
    screenshot(page, "group")

    # Settle up: record each suggested payment until none is left.
    for _ in range(3):
        buttons = page.get_by_role("button", name=re.compile("^Record payment"))
        if buttons.count() == 0:
            break
        buttons.first.click()
        page.wait_for_load_state()
        assert page.get_by_text("Payment recorded.").is_visible()
    assert page.get_by_text("Everyone is settled up.").is_visible()
    balances = page.locator("section[aria-labelledby=balances-heading] tbody td.num")
    assert balances.all_inner_texts() == ["settled up"] * 3
