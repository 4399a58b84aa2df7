"""The ``oidc`` provider's popup flow for real: gunicorn, wsgiauth and oidc-provider.

The browser is a ``requests.Session`` (one cookie jar, as in a browser, where
cookies ignore ports); the IdP's login form is filled by the ``idp_login``
fixture. Everything is asserted on the wire: redirects, raw ``Set-Cookie``
headers, the postMessage payload decoded from the callback page and the JSON
of refresh and logout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from dataclasses import dataclass
from http.cookies import Morsel
from http.cookies import SimpleCookie
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import parse_qsl
from urllib.parse import unquote
from urllib.parse import urlencode
from urllib.parse import urlsplit
from urllib.parse import urlunsplit

import pytest
import requests

pytestmark = pytest.mark.e2e

TIMEOUT = 10
XHR = {"X-Requested-With": "XMLHttpRequest"}
COOKIE_PATH = "/api/auth/oidc"
REFRESH_COOKIE = "oidc-refresh-token"
NONCE_COOKIE = "oidc-nonce"


# --- wire helpers -----------------------------------------------------------


def set_cookies(response: requests.Response) -> dict[str, Morsel[str]]:
    """The raw ``Set-Cookie`` headers of one response, by cookie name (the last one wins)."""
    cookies: dict[str, Morsel[str]] = {}
    for header in response.raw.headers.getlist("Set-Cookie"):
        jar: SimpleCookie = SimpleCookie()
        jar.load(header)
        assert len(jar) == 1, f"unparsable Set-Cookie: {header!r}"
        cookies.update(jar)
    return cookies


def web_message(response: requests.Response) -> tuple[str, dict[str, Any]]:
    """The target origin and the message that the callback page posts (spec §5.2)."""
    assert response.status_code == 200, response.text
    assert response.headers["Content-Type"].startswith("text/html")
    encoded = re.findall(r"decodeURIComponent\('([^']*)'\)", response.text)
    assert len(encoded) == 2, response.text
    data, origin = (unquote(value) for value in encoded)
    message: dict[str, Any] = json.loads(data)
    return origin, message


def outcome(message: dict[str, Any]) -> object:
    """The signed-in email, or the error, of a callback message."""
    if "response" in message:
        return message["response"]["profile"]["email"]
    return message["error"]


def error_json(response: requests.Response, status: int) -> dict[str, Any]:
    """A Backstage error body (spec §6.3), checked for status and shape."""
    assert response.status_code == status, response.text
    assert response.headers["Content-Type"].startswith("application/json")
    body: dict[str, Any] = response.json()
    assert body["response"]["statusCode"] == status
    return body


@dataclass(frozen=True, slots=True)
class SignedIn:
    """The end of a successful popup login."""

    #: The origin the page posts to.
    target_origin: str
    message: dict[str, Any]
    #: The refresh-token cookie as set on the wire by ``handler/frame``.
    refresh_cookie: Morsel[str]


# --- fixtures ---------------------------------------------------------------


@pytest.fixture
def browser() -> Iterator[requests.Session]:
    with requests.Session() as session:
        yield session


@pytest.fixture(scope="module")
def discovery(oidc_provider) -> dict[str, Any]:
    document: dict[str, Any] = requests.get(oidc_provider.metadata_url, timeout=TIMEOUT).json()
    return document


@pytest.fixture
def auth(wsgiauth_server) -> str:
    """wsgiauth's base URL for the oidc provider."""
    return f"{wsgiauth_server.base_url}{COOKIE_PATH}"


def start(browser: requests.Session, server, *, scope: str = "openid") -> requests.Response:
    response = browser.get(
        f"{server.base_url}{COOKIE_PATH}/start",
        params={"env": "development", "origin": server.base_url, "scope": scope},
        allow_redirects=False,
        timeout=TIMEOUT,
    )
    assert response.status_code == 302, f"{response.text}\n{server.log_tail()}"
    return response


def finish(browser: requests.Session, callback_url: str) -> requests.Response:
    """The IdP's redirect to our callback, followed with the browser's cookies."""
    return browser.get(callback_url, allow_redirects=False, timeout=TIMEOUT)


def sign_in(browser, server, idp_login, login: str) -> SignedIn:
    response = finish(browser, idp_login(browser, start(browser, server), login=login))
    target_origin, message = web_message(response)
    assert "error" not in message, f"{message}\n{server.log_tail()}"
    cookies = set_cookies(response)
    assert REFRESH_COOKIE in cookies, response.headers
    return SignedIn(
        target_origin=target_origin, message=message, refresh_cookie=cookies[REFRESH_COOKIE]
    )


def refresh(browser: requests.Session, auth: str, **kwargs: Any) -> requests.Response:
    headers = {**XHR, **kwargs.pop("headers", {})}
    return browser.get(
        f"{auth}/refresh",
        params={"env": "development"},
        headers=headers,
        timeout=TIMEOUT,
        **kwargs,
    )


# --- tests ------------------------------------------------------------------


def test_start_redirects_to_idp_with_pkce_and_nonce_cookie(
    browser, wsgiauth_server, oidc_provider, discovery
):
    response = start(browser, wsgiauth_server)

    location = urlsplit(response.headers["Location"])
    assert (
        f"{location.scheme}://{location.netloc}{location.path}"
        == (discovery["authorization_endpoint"])
    )
    query = {key: values[0] for key, values in parse_qs(location.query).items()}
    assert query["client_id"] == oidc_provider.client_id
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == oidc_provider.redirect_uris[0]
    assert query["code_challenge_method"] == "S256"
    assert re.fullmatch(r"[A-Za-z0-9_-]{43}", query["code_challenge"])
    assert query["prompt"] == "login"
    assert {"openid", "profile", "email"} <= set(query["scope"].split())
    assert re.fullmatch(r"(?:[0-9a-f]{2})+", query["state"])
    state = parse_qs(bytes.fromhex(query["state"]).decode())
    assert state["env"] == ["development"]
    assert state["origin"] == [wsgiauth_server.base_url]
    nonce = set_cookies(response)[NONCE_COOKIE]
    assert unquote(nonce.value) == state["nonce"][0]
    assert nonce["path"] == f"{COOKIE_PATH}/handler"
    assert nonce["httponly"] is True
    assert nonce["max-age"] == "600"


def test_login_posts_profile_and_tokens_to_the_app(browser, wsgiauth_server, idp_login):
    signed_in = sign_in(browser, wsgiauth_server, idp_login, "alice")

    message = signed_in.message
    assert message["type"] == "authorization_response"
    assert signed_in.target_origin == wsgiauth_server.base_url
    response = message["response"]
    assert response["profile"]["email"] == "alice@example.com"
    assert response["profile"]["displayName"] == "Alice Example"
    provider_info = response["providerInfo"]
    assert provider_info["idToken"].count(".") == 2
    assert provider_info["accessToken"]
    assert "openid" in provider_info["scope"].split()
    assert 0 < provider_info["expiresInSeconds"] <= 3600
    cookie = signed_in.refresh_cookie
    assert cookie.value
    assert cookie["path"] == COOKIE_PATH
    assert cookie["httponly"] is True


def test_refresh_rotates_the_refresh_token_and_the_old_one_dies(
    browser, wsgiauth_server, idp_login, auth
):
    signed_in = sign_in(browser, wsgiauth_server, idp_login, "bob")
    old_value = signed_in.refresh_cookie.value

    response = refresh(browser, auth)

    assert response.status_code == 200, f"{response.text}\n{wsgiauth_server.log_tail()}"
    body = response.json()
    assert body["profile"]["email"] == "bob@example.com"
    first_access_token = signed_in.message["response"]["providerInfo"]["accessToken"]
    assert body["providerInfo"]["accessToken"] not in ("", first_access_token)
    rotated = set_cookies(response)[REFRESH_COOKIE]
    assert rotated.value not in ("", old_value)
    assert rotated["path"] == COOKIE_PATH
    assert rotated["httponly"] is True

    # The old token, put back by hand (an explicit Cookie header replaces the jar), as a
    # slower tab would send it. The IdP accepts each refresh token once; the worker that
    # rotated it hands racing tabs the same result for a short grace period, any other
    # worker sends the old token to the IdP and gets refused.
    replayed = refresh(browser, auth, headers={"Cookie": f"{REFRESH_COOKIE}={old_value}"})

    if replayed.status_code == 200:
        assert replayed.json()["providerInfo"]["accessToken"] == body["providerInfo"]["accessToken"]
        assert set_cookies(replayed)[REFRESH_COOKIE].value not in ("", old_value)  # sealed anew
    else:
        error = error_json(replayed, 401)
        assert error["error"]["name"] == "AuthenticationError"
        assert error["error"]["message"].startswith("Refresh failed")


def test_refresh_without_x_requested_with_is_refused(browser, wsgiauth_server, idp_login, auth):
    sign_in(browser, wsgiauth_server, idp_login, "mallory")

    response = browser.get(f"{auth}/refresh", params={"env": "development"}, timeout=TIMEOUT)

    body = error_json(response, 401)
    assert body["error"] == {
        "name": "AuthenticationError",
        "message": "Invalid X-Requested-With header",
    }


def test_logout_clears_the_cookie_and_revokes_the_token_at_the_idp(
    browser, wsgiauth_server, oidc_provider, discovery, idp_login, auth
):
    signed_in = sign_in(browser, wsgiauth_server, idp_login, "carol")
    refresh_token = unquote(signed_in.refresh_cookie.value)

    response = browser.post(
        f"{auth}/logout", params={"env": "development"}, headers=XHR, timeout=TIMEOUT
    )

    assert response.status_code == 200, f"{response.text}\n{wsgiauth_server.log_tail()}"
    cleared = set_cookies(response)[REFRESH_COOKIE]
    assert cleared.value == ""
    assert cleared["max-age"] == "0"
    assert cleared["path"] == COOKIE_PATH
    after = refresh(browser, auth)
    assert error_json(after, 401)["error"]["name"] == "AuthenticationError"
    # The IdP advertises a revocation endpoint, so logout must have revoked the token there.
    at_idp = requests.post(
        discovery["token_endpoint"],
        data={"grant_type": "refresh_token", "refresh_token": refresh_token},
        auth=(oidc_provider.client_id, oidc_provider.client_secret),
        timeout=TIMEOUT,
    )
    assert at_idp.status_code == 400
    assert at_idp.json()["error"] == "invalid_grant"


def test_two_tabs_log_in_at_once(browser, wsgiauth_server, idp_login):
    # Both logins start before either ends. Backstage keeps one nonce cookie
    # per provider, so the first tab would fail with "Invalid nonce"; wsgiauth
    # keeps one flow cookie per login.
    first = start(browser, wsgiauth_server)
    second = start(browser, wsgiauth_server)

    _, first_done = web_message(finish(browser, idp_login(browser, first, login="tab-one")))
    _, second_done = web_message(finish(browser, idp_login(browser, second, login="tab-two")))

    assert [outcome(first_done), outcome(second_done)] == [
        "tab-one@example.com",
        "tab-two@example.com",
    ]


def with_iss(callback_url: str, iss: str | None) -> str:
    """The callback URL with its ``iss`` replaced, or removed (None)."""
    parts = urlsplit(callback_url)
    query = [(key, value) for key, value in parse_qsl(parts.query) if key != "iss"]
    if iss is not None:
        query.append(("iss", iss))
    return urlunsplit(parts._replace(query=urlencode(query)))


def test_mixed_up_callbacks_are_refused_without_spending_the_code(
    browser, wsgiauth_server, discovery, idp_login
):
    # oidc-provider implements RFC 9207: it promises iss in its metadata and sends it.
    assert discovery["authorization_response_iss_parameter_supported"] is True
    callback_url = idp_login(browser, start(browser, wsgiauth_server), login="erin")
    query = dict(parse_qsl(urlsplit(callback_url).query))
    assert query["iss"] == discovery["issuer"]

    failed = "Authentication failed, the authorization response"
    for iss, reason in [
        ("https://evil.example", "is from another issuer"),
        (None, "has no issuer"),
    ]:
        _, message = web_message(finish(browser, with_iss(callback_url, iss)))
        assert message["error"] == {"name": "AuthenticationError", "message": f"{failed} {reason}"}

    # The refusals never sent the code to the token endpoint: the IdP still takes it once
    # (the flow cookie outlives a failed callback).
    _, message = web_message(finish(browser, callback_url))
    assert outcome(message) == "erin@example.com"
