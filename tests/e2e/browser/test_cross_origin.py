"""A frontend on another origin than the auth backend: CORS with credentials, and cookies.

The page is served from ``http://localhost:<other port>``, the backend from
``http://localhost:<port>``: different origins, same site, so the SameSite=Lax
refresh cookie travels on the page's credentialed ``fetch``. The backend allows
the page's origin in ``backend.cors.origin`` (CORS) and in
``auth.experimentalExtraAllowedOrigins`` (the popup's target origin).
"""

from __future__ import annotations

from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest

from tests.e2e.browser.conftest import idp_login
from tests.e2e.browser.conftest import user_of
from tests.e2e.browser.conftest import wait_closed

pytestmark = pytest.mark.e2e

JANE = "user:default/jane"


def test_sign_in_refresh_and_logout_from_another_origin(frontend, context, browser_env):
    traffic: list[tuple[str, str, dict[str, str]]] = []
    context.on(
        "response",
        lambda r: (
            traffic.append((r.request.method, r.url, r.headers))
            if r.url.startswith(browser_env.auth_base)
            else None
        ),
    )
    frontend.open(origin=browser_env.other)
    assert frontend.state("restore") == {"state": "resolved", "value": None}

    popup = frontend.start_popup("signin")
    idp_login(popup, browser_env, "jane")
    signed_in = frontend.outcome("signin")
    assert signed_in["state"] == "resolved", f"{signed_in}\n{browser_env.log_tail()}"
    assert user_of(signed_in["value"]) == JANE
    wait_closed(popup)
    (start,) = [url for method, url, _ in traffic if "/oidc/start" in url]
    assert parse_qs(urlsplit(start).query)["origin"] == [browser_env.other]

    # Refresh from the other origin: the cookie flows and the answer is readable.
    frontend.reload()
    restored = frontend.state("restore")
    assert restored["state"] == "resolved", restored
    assert user_of(restored["value"]) == JANE
    refresh = [h for m, url, h in traffic if m == "GET" and "/oidc/refresh" in url][-1]
    assert refresh["access-control-allow-origin"] == browser_env.other
    assert refresh["access-control-allow-credentials"] == "true"

    # Logout (a preflighted POST) clears the cookie; a reload stays signed out.
    frontend.run("signout", "oidc", "signOut")
    assert frontend.outcome("signout") == {"state": "resolved", "value": None}
    logout = [h for m, url, h in traffic if m == "POST" and "/oidc/logout" in url][-1]
    assert logout["access-control-allow-origin"] == browser_env.other
    # Playwright does not report preflights; the server's access log does.
    assert '"OPTIONS /api/auth/oidc/logout?env=development' in browser_env.log_tail(400)
    assert "oidc-refresh-token" not in {c["name"] for c in context.cookies()}
    frontend.reload()
    assert frontend.state("restore") == {"state": "resolved", "value": None}


def test_guest_from_another_origin(frontend, browser_env):
    frontend.open(origin=browser_env.other, restore="")
    frontend.run("guest", "guest", "signIn")
    outcome = frontend.outcome("guest")
    assert outcome["state"] == "resolved", outcome
    assert user_of(outcome["value"]) == "user:development/guest"
