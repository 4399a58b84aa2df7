"""Popup sign-in, silent restore, scope upgrade, logout, guest and failures, in Chromium.

Every test drives ``wsgiauth.js`` in the test page (``pages.py``) against
wsgiauth under gunicorn and the real oidc-provider, filling the IdP's login
form inside the popup the client opened.
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
JANE_OWNS = [JANE, "group:default/platform"]
REFRESH_COOKIE = "oidc-refresh-token"


def sign_in_jane(frontend, key: str = "signin", arg: object = None) -> dict:
    """Popup sign-in as jane; the resolved session."""
    popup = frontend.start_popup(key, arg=arg)
    idp_login(popup, frontend.env, "jane")
    outcome = frontend.outcome(key)
    assert outcome["state"] == "resolved", f"{outcome}\n{frontend.env.log_tail()}"
    wait_closed(popup)
    return outcome["value"]


def token_of(session: dict) -> str:
    token: str = session["backstageIdentity"]["token"]
    return token


def cookie_names(context) -> set[str]:
    return {cookie["name"] for cookie in context.cookies()}


def test_popup_sign_in_through_oidc(frontend, context, browser_env):
    frontend.open()
    assert frontend.state("restore") == {"state": "resolved", "value": None}
    starts = []
    context.on("request", lambda r: starts.append(r.url) if "/oidc/start" in r.url else None)

    session = sign_in_jane(frontend)

    assert session["provider"] == "oidc"
    assert session["profile"]["email"] == "jane@example.com"
    assert session["backstageIdentity"]["identity"]["ownershipEntityRefs"] == JANE_OWNS
    assert set(session["scopes"]) >= {"openid", "profile", "email"}
    assert session["expiresAt"] > 0
    # The wire of spec §11: scope, origin, flow=popup, env last.
    (start,) = starts
    query = parse_qs(urlsplit(start).query, keep_blank_values=True)
    assert query == {
        "scope": ["openid profile email"],
        "origin": [browser_env.backend],
        "flow": ["popup"],
        "env": ["development"],
    }
    assert urlsplit(start).query.endswith("&env=development")
    # The page's view of it, and the bearer helper against the app's own API.
    assert frontend.session()["backstageIdentity"]["token"] == session["backstageIdentity"]["token"]
    assert frontend.text("#user") == JANE
    assert frontend.page.evaluate("t.changes") == [f"oidc:{JANE}"]
    assert frontend.page.evaluate("t.whoami()") == {"user": JANE}
    assert REFRESH_COOKIE in cookie_names(context)
    # Tokens live in memory only.
    assert frontend.page.evaluate("localStorage.length + sessionStorage.length") == 0


def test_reload_signs_in_silently_from_the_refresh_cookie(frontend, context):
    frontend.open()
    signed_in = sign_in_jane(frontend)
    popups = []
    context.on("page", lambda page: popups.append(page))

    frontend.reload()

    restored = frontend.state("restore")
    assert restored["state"] == "resolved"
    assert user_of(restored["value"]) == JANE
    assert restored["value"]["profile"]["email"] == "jane@example.com"
    # A new identity token from the refresh, no popup.
    assert (
        restored["value"]["backstageIdentity"]["token"] != signed_in["backstageIdentity"]["token"]
    )
    assert popups == []
    assert frontend.text("#user") == JANE
    assert frontend.page.evaluate("t.whoami()") == {"user": JANE}


def test_scope_upgrade_asks_the_provider_for_old_and_new_scopes(frontend, context):
    frontend.open()
    first = sign_in_jane(frontend, arg={"scopes": ["offline_access"]})
    assert set(first["scopes"]) == {"openid", "profile", "email", "offline_access"}
    # The refresh session is gone (signed out elsewhere, or expired), so the
    # upgrade cannot happen silently and must go through the provider.
    context.clear_cookies(name=REFRESH_COOKIE)
    context.clear_cookies(name="oidc-granted-scope")
    starts = []
    context.on("request", lambda r: starts.append(r.url) if "/oidc/start" in r.url else None)

    popup = frontend.start_popup("upgrade", "getSession", {"scopes": ["e2e:upgrade"]})
    idp_login(popup, frontend.env, "jane")
    upgraded = frontend.outcome("upgrade")

    assert upgraded["state"] == "resolved", upgraded
    (start,) = starts
    asked = parse_qs(urlsplit(start).query)["scope"][0].split(" ")
    assert set(asked) == {"openid", "profile", "email", "offline_access", "e2e:upgrade"}
    assert set(upgraded["value"]["scopes"]) >= set(asked)
    assert user_of(upgraded["value"]) == JANE
    # The cached session now has them: asking again needs no popup.
    frontend.run("again", "oidc", "getSession", {"scopes": ["e2e:upgrade", "offline_access"]})
    again = frontend.outcome("again")
    assert (
        again["value"]["backstageIdentity"]["token"]
        == upgraded["value"]["backstageIdentity"]["token"]
    )


def test_logout_then_reload_stays_signed_out(frontend, context):
    frontend.open()
    sign_in_jane(frontend)

    frontend.run("signout", "oidc", "signOut")
    assert frontend.outcome("signout") == {"state": "resolved", "value": None}
    assert frontend.session() is None
    assert frontend.text("#user") == ""
    assert REFRESH_COOKIE not in cookie_names(context)

    frontend.reload()
    assert frontend.state("restore") == {"state": "resolved", "value": None}
    assert frontend.session() is None
    assert frontend.page.evaluate("t.whoami()") == {"user": None}


def test_guest_sign_in(frontend, context):
    frontend.open(restore="")
    popups = []
    context.on("page", lambda page: popups.append(page))

    frontend.run("guest", "guest", "signIn")
    session = frontend.outcome("guest")["value"]

    assert session["provider"] == "guest"
    assert session["backstageIdentity"]["identity"] == {
        "type": "user",
        "userEntityRef": "user:development/guest",
        "ownershipEntityRefs": ["user:development/guest", "group:default/visitors"],
    }
    assert popups == []
    assert frontend.text("#user") == "user:development/guest"
    assert frontend.page.evaluate("t.whoami()") == {"user": "user:development/guest"}


def test_two_tabs_sign_in_at_the_same_moment(frontend, new_frontend):
    tabs = [frontend.open(), new_frontend().open()]
    # Both logins are in flight at once, each with its own nonce and flow cookie.
    popups = [tab.start_popup("signin") for tab in tabs]
    for popup in popups:
        popup.locator("input[name=login]").fill("jane")
        popup.locator("input[name=password]").fill("any-password")
    before = [popup.url for popup in popups]
    for popup in popups:
        popup.locator("button[type=submit]").click(no_wait_after=True)
    for popup, url in zip(popups, before, strict=True):
        if not popup.is_closed():
            popup.wait_for_url(lambda now, url=url: now != url, wait_until="commit")
    for popup in popups:
        idp_login(popup, frontend.env, "jane")

    outcomes = [tab.outcome("signin") for tab in tabs]
    assert [o["state"] for o in outcomes] == ["resolved", "resolved"], outcomes
    assert [user_of(o["value"]) for o in outcomes] == [JANE, JANE]


def test_user_unknown_to_the_catalog_sees_the_resolver_error(frontend):
    frontend.open()
    popup = frontend.start_popup("signin")
    idp_login(popup, frontend.env, "stranger")

    outcome = frontend.outcome("signin")
    assert outcome["state"] == "rejected"
    assert outcome["isWsgiAuthError"]
    assert outcome["name"] == "NotFoundError"
    assert outcome["message"].startswith("Failed to sign-in, unable to resolve user identity")
    assert frontend.text("#error") == f"NotFoundError: {outcome['message']}"
    assert frontend.session() is None


def test_access_denied_at_the_provider_is_a_clear_error(frontend):
    frontend.open()
    popup = frontend.start_popup("signin")
    popup.wait_for_load_state("domcontentloaded")
    # devInteractions' "[ Cancel ]" link answers error=access_denied.
    popup.get_by_role("link", name="[ Cancel ]").click()

    outcome = frontend.outcome("signin")
    assert outcome["state"] == "rejected"
    assert outcome["name"] == "AuthenticationError"
    assert outcome["message"] == "Authentication rejected, End-User aborted interaction"
    assert frontend.text("#error") == (
        "AuthenticationError: Authentication rejected, End-User aborted interaction"
    )
    wait_closed(popup)


def test_closing_the_popup_rejects_the_sign_in(frontend):
    frontend.open()
    popup = frontend.start_popup("signin")
    popup.close()

    outcome = frontend.outcome("signin")
    assert (outcome["state"], outcome["name"], outcome["message"]) == (
        "rejected",
        "PopupClosedError",
        "Login failed, popup was closed",
    )
