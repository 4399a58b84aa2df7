"""The legacy portal in a real browser: its own "Sign in as guest" button reaches the admin page."""

from __future__ import annotations

import pytest

from tests.test_legacy_portal import served_portal  # noqa: F401


@pytest.mark.e2e
def test_sign_in_button_opens_the_admin_page_in_a_browser(browser, served_portal):  # noqa: F811
    page = browser.new_page()
    try:
        errors = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(f"{served_portal}/admin")
        assert "Sign in first" in page.inner_text("main")

        page.click("#sign-in")
        page.wait_for_selector("main h1:text-is('Administration')", timeout=10_000)
        assert "carol" in page.inner_text("main")
        page.click("a[href='/profile']")
        page.wait_for_selector("main h1:text-is('My profile')", timeout=10_000)
        assert "Alice Admin (alice)" in page.inner_text("main")
        assert errors == []
    finally:
        page.close()
