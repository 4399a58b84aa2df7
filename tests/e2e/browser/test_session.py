"""The client's session cache: one refresh for concurrent callers, refresh before expiry."""

from __future__ import annotations

import pytest

from tests.e2e.browser.conftest import idp_login
from tests.e2e.browser.conftest import user_of

pytestmark = pytest.mark.e2e

JANE = "user:default/jane"


def refreshes(context) -> list[str]:
    """Collects the URLs of oidc refresh requests made from now on."""
    urls: list[str] = []
    context.on("request", lambda r: urls.append(r.url) if "/oidc/refresh" in r.url else None)
    return urls


def sign_in(frontend) -> dict:
    popup = frontend.start_popup("signin")
    idp_login(popup, frontend.env, "jane")
    outcome = frontend.outcome("signin")
    assert outcome["state"] == "resolved", outcome
    return outcome["value"]


def test_concurrent_get_session_calls_share_one_refresh(frontend, context):
    frontend.open()
    sign_in(frontend)
    frontend.open(restore="")  # a new page: signed in on the server, nothing in memory
    urls = refreshes(context)

    frontend.page.evaluate(
        "() => ['a', 'b', 'c'].forEach((k) => t.run(k, 'oidc', 'getSession', {optional: true}))"
    )
    outcomes = [frontend.outcome(key) for key in ("a", "b", "c")]

    assert [user_of(o["value"]) for o in outcomes] == [JANE] * 3
    assert len({o["value"]["backstageIdentity"]["token"] for o in outcomes}) == 1
    assert len(urls) == 1, urls
    assert urls[0].split("?", 1)[1] == "optional&scope=openid%20profile%20email&env=development"


def test_a_session_near_expiry_is_refreshed_before_use(frontend, context):
    # A margin longer than any token's life: every session is "near expiry".
    frontend.open(margin="86400")
    session = sign_in(frontend)
    urls = refreshes(context)

    assert frontend.page.evaluate("t.whoami()") == {"user": JANE}

    assert len(urls) == 1, urls
    fresh = frontend.session()
    assert user_of(fresh) == JANE
    assert fresh["backstageIdentity"]["token"] != session["backstageIdentity"]["token"]
