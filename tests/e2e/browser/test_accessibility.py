"""axe-core (vendored) on the main pages: no serious or critical violations, and the pages
fit a 375 px wide phone screen without sideways scrolling.

To check another page, add its path to PAGES (``{group}`` is a group of the signed-in person
with one expense), or write a test of your own with ``axe_check(page)``.
"""

from __future__ import annotations

from sqlalchemy import select

from potluck.identity.models import User
from potluck.sharing import service as sharing
from potluck.splits.expense import ExpenseSplit
from tests.e2e.browser.conftest import axe_check, screenshot, sign_up

PAGES = [
    ("signin", "/signin"),
    ("dashboard", "/dashboard"),
    ("groups", "/groups"),
    ("group", "{group}"),
    ("add-expense", "{group}/expenses/new"),
    ("import", "/groups/import"),
]


def _group_with_an_expense(server, email: str) -> str:
    app = server.app
    now = app.clock.now()
    with app.db.transaction() as s:
        user_id = s.scalar(select(User.id).where(User.email == email))
        group = sharing.create_group(
            s, user_id=user_id, name="Flat", currency="EUR", emails=["eve@example.com"], now=now
        )
        sharing.create_expense(
            s,
            user_id=user_id,
            group_id=group.id,
            description="Groceries",
            amount=4250,
            category="food",
            split=ExpenseSplit(method="equal"),
            now=now,
        )
    return f"/groups/{group.id}"


def test_main_pages_have_no_serious_accessibility_violations(page, server):
    page.goto("/signin")
    found = {"signin": axe_check(page)}
    email = sign_up(page, "Axel")
    group = _group_with_an_expense(server, email)
    for name, path in PAGES[1:]:
        page.goto(path.format(group=group))
        found[name] = axe_check(page)
    assert not any(found.values()), found

    page.set_viewport_size({"width": 375, "height": 800})
    for name, path in PAGES[1:]:
        page.goto(path.format(group=group))
        width = page.evaluate("() => document.documentElement.scrollWidth")
        assert width <= 375, f"{name} is {width} px wide on a 375 px screen"
    screenshot(page, "add-expense-phone")
