"""Admin pages in a real browser: system status, the risk review queue (a held payment with
its score and reasons, approved with its button), analytics charts (Chart.js). Screenshots
of each, the axe check on each (no serious or critical violation); a person who is not an
admin gets the 404 page."""

from __future__ import annotations

from potluck.identity.service import create_platform, promote_user, register_user
from potluck.ledger import service as ledger
from potluck.marketplace import service as marketplace
from potluck.wallets import service as wallets
from tests.e2e.browser.conftest import PASSWORD, axe_check, screenshot, sign_up, unique_email


def _held_payment(app):
    """A fresh account's first large payment to a merchant it never paid: the rules hold it
    for review."""
    payer = register_user(app, email=unique_email("mallory"), password=PASSWORD, name="Mallory")
    platform, _ = create_platform(app, name="Market")
    now = app.clock.now()
    with app.db.transaction() as s:
        shop = marketplace.create_party(
            s,
            platform_id=platform.id,
            name="Trent's Bikes",
            kind="merchant",
            currency="EUR",
            now=now,
        )
    with app.db.transaction() as s:
        source = ledger.create_account(s, currency="EUR", code="test_funding", now=now).id
        wallet = wallets.wallet_account(s, user_id=payer.id, currency="EUR", now=now)
        ledger.create_transfer(s, ledger.NewTransfer(source, wallet, 100_000), now=now)
    with app.db.transaction() as s:
        sent = wallets.send(
            s,
            app,
            payer_user_id=payer.id,
            to=shop.id,
            amount=60_000,
            currency="EUR",
            now=app.clock.now(),
        )
    assert sent.status == "in_review", sent
    return sent


def _no_violations(page):
    violations = axe_check(page)
    assert violations == [], violations


def test_admin_sees_status_reviews_and_analytics_and_nobody_else_does(page, server):
    email = sign_up(page, "Ada")
    page.goto("/admin")
    assert page.get_by_role("heading", name="Page not found").is_visible()  # not an admin yet
    promote_user(server.app, email=email)
    held = _held_payment(server.app)

    page.goto("/admin")
    page.get_by_test_id("overall-status").wait_for()
    assert page.get_by_role("heading", name="Dead letters").is_visible()
    screenshot(page, "admin-status")
    _no_violations(page)

    page.get_by_role("link", name="Risk reviews").click()
    page.wait_for_url("**/admin/reviews")
    review = page.locator("section.review", has_text="€600.00 from Mallory")
    assert review.locator(".score").inner_text().isdigit()
    assert review.get_by_text("(account_age)").is_visible()
    screenshot(page, "admin-reviews")
    _no_violations(page)
    review.get_by_role("button", name="Approve").click()
    page.get_by_text("approved: the payment goes through").wait_for()
    with server.app.db.read() as s:
        assert wallets.get_transfer(s, held.id).status == "completed"

    page.get_by_role("link", name="Analytics").click()
    page.wait_for_url("**/admin/analytics")
    page.get_by_test_id("fraud-rate").wait_for()
    drawn = page.evaluate(
        "() => ['chart-volume', 'chart-count', 'chart-fraud', 'chart-merchants']"
        ".map(id => Chart.getChart(id) !== undefined)"
    )
    assert drawn == [True, True, True, True]
    assert page.get_by_test_id("top-merchants").get_by_text("Trent's Bikes").count() == 1
    screenshot(page, "admin-analytics")
    _no_violations(page)
