"""The full-page redirect flow, chosen explicitly or as the fallback of a blocked popup.

The page leaves for the IdP and comes back to the URL it left from; then
``auth.restore`` (run by the page on load) finds the session with a silent
refresh, or reports the ``?error=`` the backend put on the URL.
"""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser.conftest import idp_login
from tests.e2e.browser.conftest import user_of

pytestmark = pytest.mark.e2e

JANE = "user:default/jane"


def leave_for_idp(frontend, starts: list[str]) -> None:
    """Click sign-in and wait for the page to arrive at the IdP (no popup)."""
    frontend.page.context.on(
        "request", lambda r: starts.append(r.url) if "/oidc/start" in r.url else None
    )
    frontend.run("signin", "oidc", "signIn")
    frontend.page.wait_for_url(f"{frontend.env.idp.issuer}/**")


@pytest.mark.parametrize(
    "flow, init_script",
    [
        pytest.param("redirect", None, id="redirect-flow"),
        pytest.param("auto", "window.open = () => null", id="blocked-popup-falls-back"),
    ],
)
def test_redirect_sign_in_end_to_end(frontend, context, flow, init_script):
    if init_script:
        frontend.page.add_init_script(init_script)
    frontend.open(flow=flow)
    page_url = frontend.page.url
    pages = []
    context.on("page", lambda page: pages.append(page))
    starts: list[str] = []

    leave_for_idp(frontend, starts)
    idp_login(frontend.page, frontend.env, "jane")
    frontend.page.wait_for_url(page_url)
    restored = frontend.wait("restore")

    assert pages == []  # no popup, ever
    (start,) = starts
    query = parse_qs(urlsplit(start).query)
    assert query["flow"] == ["redirect"]
    assert query["redirectUrl"] == [page_url]
    assert query["origin"] == [frontend.env.backend]
    assert restored["state"] == "resolved", f"{restored}\n{frontend.env.log_tail()}"
    assert user_of(restored["value"]) == JANE
    assert frontend.text("#user") == JANE
    assert frontend.page.evaluate("t.whoami()") == {"user": JANE}


def test_redirect_flow_error_comes_back_on_the_url_and_is_removed(frontend):
    frontend.open(flow="redirect")
    page_url = frontend.page.url

    leave_for_idp(frontend, [])
    frontend.page.wait_for_load_state("domcontentloaded")
    frontend.page.get_by_role("link", name="[ Cancel ]").click()
    frontend.page.wait_for_url(lambda url: url.startswith(page_url))
    restored = frontend.wait("restore")

    assert restored["state"] == "rejected"
    assert restored["isWsgiAuthError"]
    assert restored["message"] == "Authentication rejected, End-User aborted interaction"
    assert frontend.text("#error").endswith(restored["message"])
    # The error was taken off the address bar, so a reload does not show it again.
    assert frontend.page.url == page_url
    assert frontend.session() is None
