"""Sign up, sign out, a refused sign-in (the error next to the field), sign in again."""

from __future__ import annotations

from tests.e2e.browser.conftest import PASSWORD, screenshot, sign_out, sign_up


def test_sign_up_out_and_in_again_with_the_error_next_to_the_field(page):
    page.goto("/signup")
    page.keyboard.press("Tab")  # keyboard first: the skip link, visible when focused
    skip = page.get_by_role("link", name="Skip to content")
    assert skip.evaluate("el => el === document.activeElement")
    assert skip.is_visible()
    email = sign_up(page, "Dana")
    assert page.get_by_role("heading", name="Hello, Dana").is_visible()
    sign_out(page)
    assert page.get_by_text("You are signed out.").is_visible()

    page.goto("/dashboard")  # not signed in: to the sign-in page, coming back afterwards
    page.wait_for_url("**/signin?next=/dashboard")
    page.get_by_label("Email").fill(email)
    page.get_by_label("Password").fill("not the password")
    page.get_by_role("button", name="Sign in").click()
    password = page.get_by_label("Password")
    assert password.get_attribute("aria-invalid") == "true"
    error = page.locator("#" + password.get_attribute("aria-describedby"))
    assert error.inner_text() == "The email or password is not correct."
    screenshot(page, "signin-error")

    page.get_by_label("Password").fill(PASSWORD)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/dashboard")
    assert page.get_by_role("heading", name="Hello, Dana").is_visible()
