"""The OAuth flow on the wire: start, handler/frame, refresh, logout (spec §1.3-§1.6)."""

from __future__ import annotations

import string
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from webob import Response

from tests.conftest import APP_ORIGIN
from tests.conftest import base_config
from tests.conftest import make_testapp
from tests.conftest import parse_web_message
from tests.conftest import set_cookies
from tests.conftest import state_of
from tests.conftest import web_message_origin
from wsgiauth.oauth.route_handlers import _s256_challenge
from wsgiauth.oauth.state import decode_oauth_state
from wsgiauth.oauth.state import encode_oauth_state

XRW = {"X-Requested-With": "XMLHttpRequest"}
START = f"/api/auth/fake/start?env=development&origin={APP_ORIGIN}"


def start(testapp, query: str = START):
    response = testapp.get(query)
    return response, state_of(response.location)


def callback(testapp, state: str, code: str = "jane@example.com", **kwargs):
    return testapp.get(f"/api/auth/fake/handler/frame?state={state}&code={code}", **kwargs)


def test_start_redirects_with_hex_state_and_nonce_cookie(testapp):
    response, state = start(testapp, START + "&scope=email%20profile&flow=popup")
    assert response.status_int == 302
    assert response.location.startswith("https://idp.example/authorize?")
    assert response.body == b""
    decoded = decode_oauth_state(state)
    assert list(decoded) == ["nonce", "env", "origin", "flow", "scope"]
    assert decoded["env"] == "development"
    assert decoded["origin"] == APP_ORIGIN
    assert decoded["scope"] == "email profile openid"
    cookie = set_cookies(response)["fake-nonce"]
    assert cookie.startswith("fake-nonce=")
    assert "Path=/api/auth/fake/handler;" in cookie
    assert "Max-Age=600" in cookie
    assert "HttpOnly" in cookie
    assert "SameSite=lax" in cookie
    assert "secure" not in cookie.lower().split("; ")
    assert (
        testapp.cookies["fake-nonce"].replace("%2B", "+").replace("%2F", "/").replace("%3D", "=")
        == decoded["nonce"]
    )


def test_start_sends_a_pkce_challenge_that_the_callback_verifier_matches(testapp):
    from oauthlib.oauth2 import WebApplicationClient

    response, state = start(testapp)
    challenge = parse_qs(urlsplit(response.location).query)["code_challenge"][0]
    callback(testapp, state)
    # The fake authenticator saw the verifier of this very flow.
    fake = testapp.auth_app.providers["fake"].handlers["development"].authenticator
    authenticate = [call for name, call in fake.calls if name == "authenticate"][-1]
    assert (
        WebApplicationClient("").create_code_challenge(authenticate.code_verifier, "S256")
        == challenge
    )
    assert len(authenticate.code_verifier) >= 43


@pytest.mark.parametrize(
    ("query", "status", "name", "message"),
    [
        pytest.param(
            "/api/auth/fake/start?env=development&origin=not%20a%20url",
            400,
            "InputError",
            "App origin is invalid, failed to parse",
            id="bad-origin",
        ),
        pytest.param(
            "/api/auth/fake/start?env=development&origin=https://evil.example",
            403,
            "NotAllowedError",
            "Origin 'https://evil.example' is not allowed",
            id="origin-not-allowed",
        ),
        pytest.param(
            "/api/auth/fake/start?env=development&flow=redirect&redirectUrl=https://evil.example/x",
            403,
            "NotAllowedError",
            "Redirect URL 'https://evil.example/x' is not allowed",
            id="open-redirect",
        ),
        pytest.param(
            "/api/auth/nope/start?env=development",
            404,
            "NotFoundError",
            "Unknown auth provider 'nope'",
            id="unknown-provider",
        ),
    ],
)
def test_start_rejects_bad_input(testapp, query, status, name, message):
    """A missing or unknown ``env`` is ``test_environment.py``'s."""
    response = testapp.get(query, status=status)
    assert response.content_type == "application/json"
    assert response.json["error"] == {"name": name, "message": message}
    assert response.json["response"] == {"statusCode": status}
    assert response.json["request"]["method"] == "GET"
    assert "Set-Cookie" not in response.headers


def test_popup_callback_posts_the_result_to_the_state_origin(testapp):
    _, state = start(testapp, START + "&scope=email")
    response = callback(testapp, state)
    assert response.status_int == 200
    assert response.headers["Content-Type"] == "text/html"
    assert response.headers["X-Frame-Options"] == "sameorigin"
    assert response.headers["Content-Security-Policy"].startswith("script-src 'sha256-")
    assert web_message_origin(response.text) == APP_ORIGIN
    message = parse_web_message(response.text)
    assert message == {
        "type": "authorization_response",
        "response": {
            "profile": {"email": "jane@example.com", "displayName": "Fake User"},
            "providerInfo": {
                "accessToken": "access-1",
                "scope": "email openid",
                "idToken": "id-token",
                "expiresInSeconds": 3600,
            },
        },
    }
    cookies = set_cookies(response)
    refresh = cookies["fake-refresh-token"]
    assert refresh.startswith("fake-refresh-token=refresh-1;")
    assert "Path=/api/auth/fake;" in refresh
    assert "Max-Age=86400000" in refresh
    assert "HttpOnly" in refresh
    assert cookies["fake-granted-scope"].startswith("fake-granted-scope=email%20openid;")
    flow = next(name for name in cookies if name.startswith("fake-flow-"))
    assert "Max-Age=0" in cookies[flow]


def test_callback_accepts_post_form(testapp):
    _, state = start(testapp)
    response = testapp.post(
        f"/api/auth/fake/handler/frame?state={state}", {"code": "post@example.com"}
    )
    assert parse_web_message(response.text)["response"]["profile"]["email"] == "post@example.com"


def test_two_logins_in_flight_both_complete(testapp):
    _, first = start(testapp)
    _, second = start(testapp)
    one = parse_web_message(callback(testapp, first, code="a@example.com").text)
    two = parse_web_message(callback(testapp, second, code="b@example.com").text)
    assert one["response"]["profile"]["email"] == "a@example.com"
    assert two["response"]["profile"]["email"] == "b@example.com"


def test_a_flow_cannot_be_finished_twice(testapp):
    _, state = start(testapp)
    callback(testapp, state)
    message = parse_web_message(callback(testapp, state).text)
    assert message["error"] == {"name": "NotAllowedError", "message": "Invalid nonce"}


def _error(response) -> dict:
    return parse_web_message(response.text)["error"]


def test_callback_without_nonce_cookie_is_refused(testapp):
    _, state = start(testapp)
    testapp.reset()
    assert _error(callback(testapp, state)) == {
        "name": "NotAllowedError",
        "message": "Auth response is missing cookie nonce",
    }


def test_callback_with_a_state_from_another_browser_is_refused(testapp):
    start(testapp)  # this browser has a nonce cookie of its own
    forged = encode_oauth_state({"nonce": "attacker", "env": "development"})
    assert _error(callback(testapp, forged)) == {
        "name": "NotAllowedError",
        "message": "Invalid nonce",
    }


def test_callback_rejects_a_state_origin_outside_the_allow_list(testapp):
    response, state = start(testapp)
    decoded = decode_oauth_state(state)
    decoded["origin"] = "https://evil.example"
    response = callback(testapp, encode_oauth_state(decoded))
    assert web_message_origin(response.text) == APP_ORIGIN
    assert _error(response) == {
        "name": "NotAllowedError",
        "message": "Origin 'https://evil.example' is not allowed",
    }


def test_access_denied_reaches_the_popup(testapp):
    _, state = start(testapp)
    response = testapp.get(f"/api/auth/fake/handler/frame?state={state}&error=access_denied")
    assert _error(response) == {
        "name": "AuthenticationError",
        "message": "Authentication rejected, access_denied",
    }
    assert "fake-refresh-token" not in set_cookies(response)


def test_missing_code_reaches_the_popup(testapp):
    _, state = start(testapp)
    response = testapp.get(f"/api/auth/fake/handler/frame?state={state}")
    assert _error(response)["name"] == "InputError"


@pytest.mark.parametrize(
    ("state", "message"),
    [
        pytest.param("zz", "OAuth state is invalid, missing env", id="not-hex"),
        pytest.param("ff", "OAuth state is invalid, missing env", id="not-utf8"),
        pytest.param(
            encode_oauth_state({"env": "development"}),
            "OAuth state is invalid, missing nonce",
            id="no-nonce",
        ),
    ],
)
def test_undecodable_state_is_a_json_403(testapp, state, message):
    response = testapp.get(f"/api/auth/fake/handler/frame?state={state}&code=x", status=403)
    assert response.json["error"] == {"name": "NotAllowedError", "message": message}


def test_redirect_flow_redirects_back_and_refresh_gets_the_session(testapp):
    target = f"{APP_ORIGIN}/catalog?tab=1"
    _, state = start(testapp, START + f"&flow=redirect&redirectUrl={target}")
    response = callback(testapp, state)
    assert response.status_int == 302
    assert response.location == target
    session = testapp.get("/api/auth/fake/refresh?env=development", headers=XRW)
    assert session.json["profile"]["email"] == "jane@example.com"


def test_redirect_flow_delivers_errors_in_the_query(testapp):
    target = f"{APP_ORIGIN}/catalog?tab=1"
    _, state = start(testapp, START + f"&flow=redirect&redirectUrl={target}")
    response = testapp.get(f"/api/auth/fake/handler/frame?state={state}&error=access_denied")
    assert response.status_int == 302
    query = parse_qs(urlsplit(response.location).query)
    assert query == {"tab": ["1"], "error": ["Authentication rejected, access_denied"]}


def test_redirect_flow_never_redirects_to_a_foreign_origin(testapp):
    forged = encode_oauth_state(
        {
            "nonce": "n",
            "env": "development",
            "flow": "redirect",
            "redirectUrl": "https://evil.example/steal",
        }
    )
    response = callback(testapp, forged)
    assert response.status_int == 200
    assert _error(response)["message"] == "Redirect URL 'https://evil.example/steal' is not allowed"


def signed_in(testapp):
    _, state = start(testapp)
    callback(testapp, state)
    return testapp


def test_refresh_rotates_the_refresh_token(testapp):
    signed_in(testapp)
    response = testapp.get("/api/auth/fake/refresh?env=development", headers=XRW)
    assert response.json["providerInfo"]["accessToken"] == "access-r1"
    assert response.json["providerInfo"]["scope"] == "openid"
    assert set_cookies(response)["fake-refresh-token"].startswith(
        "fake-refresh-token=refresh-1%2Br;"
    )
    assert testapp.cookies["fake-refresh-token"] == "refresh-1%2Br"


def test_refresh_via_post_works_too(testapp):
    signed_in(testapp)
    response = testapp.post("/api/auth/fake/refresh?env=development", headers=XRW)
    assert response.json["profile"]["email"] == "jane@example.com"


@pytest.mark.parametrize(
    "headers",
    [
        pytest.param({}, id="absent"),
        pytest.param({"X-Requested-With": "xmlhttprequest"}, id="wrong-case"),
        pytest.param({"X-Requested-With": "fetch"}, id="other"),
    ],
)
def test_refresh_and_logout_demand_x_requested_with(testapp, headers):
    signed_in(testapp)
    for method in (testapp.get, testapp.post):
        response = method("/api/auth/fake/refresh?env=development", headers=headers, status=401)
        assert response.json["error"] == {
            "name": "AuthenticationError",
            "message": "Invalid X-Requested-With header",
        }
    response = testapp.post("/api/auth/fake/logout?env=development", headers=headers, status=401)
    assert response.json["error"]["message"] == "Invalid X-Requested-With header"


def test_refresh_without_cookie(testapp):
    response = testapp.get("/api/auth/fake/refresh?env=development", headers=XRW, status=401)
    assert response.json["error"] == {
        "name": "AuthenticationError",
        "message": "Refresh failed; caused by InputError: Missing session cookie",
        "cause": {"name": "InputError", "message": "Missing session cookie"},
    }


def test_refresh_with_a_dead_token_is_401(testapp):
    testapp.set_cookie("fake-refresh-token", "revoked")
    response = testapp.get("/api/auth/fake/refresh?env=development", headers=XRW, status=401)
    assert response.json["error"]["message"] == (
        "Refresh failed; caused by AuthenticationError: invalid_grant"
    )


def test_logout_clears_cookies(testapp):
    signed_in(testapp)
    response = testapp.post("/api/auth/fake/logout?env=development", headers=XRW)
    assert response.status_int == 200
    assert response.body == b""
    cookies = set_cookies(response)
    for name in ("fake-refresh-token", "fake-granted-scope"):
        assert cookies[name].startswith(f"{name}=;")
        assert "Max-Age=0" in cookies[name]
        assert "Path=/api/auth/fake;" in cookies[name]
    testapp.get("/api/auth/fake/refresh?env=development", headers=XRW, status=401)


def test_logout_refuses_a_foreign_origin_header(testapp):
    signed_in(testapp)
    headers = {**XRW, "Origin": "https://evil.example"}
    response = testapp.post("/api/auth/fake/logout?env=development", headers=headers, status=403)
    assert response.json["error"]["message"] == "Origin 'https://evil.example' is not allowed"


@pytest.mark.parametrize(
    ("logout_url", "expected"),
    [
        pytest.param("https://idp.example/logout", {"logoutUrl": "https://idp.example/logout"}),
        pytest.param("http://localhost:8080/logout", {"logoutUrl": "http://localhost:8080/logout"}),
        pytest.param("http://idp.example/logout", None, id="plain-http-refused"),
        pytest.param("javascript:alert(1)", None, id="script-refused"),
    ],
)
def test_logout_offers_only_safe_logout_urls(logout_url, expected):
    config = base_config(providers={"fake": {"development": {"logoutUrl": logout_url}}})
    testapp = make_testapp(config)
    response = testapp.post("/api/auth/fake/logout?env=development", headers=XRW)
    if expected is None:
        assert response.body == b""
    else:
        assert response.json == expected


def test_https_callback_gives_secure_cookies_and_samesite_none_cross_site():
    config = base_config()
    config["backend"]["baseUrl"] = "https://auth.example"
    config["app"]["baseUrl"] = "https://portal.example"
    testapp = make_testapp(config)
    response = testapp.get("/api/auth/fake/start?env=development&origin=https://portal.example")
    cookie = set_cookies(response)["fake-nonce"].lower()
    assert "; secure" in cookie
    assert "samesite=none" in cookie


def test_session_secret_seals_the_refresh_token():
    testapp = make_testapp(base_config(session={"secret": ["new, with a comma", "old"]}))
    signed_in(testapp)
    assert "refresh-1" not in testapp.cookies["fake-refresh-token"]
    response = testapp.get("/api/auth/fake/refresh?env=development", headers=XRW)
    assert response.json["providerInfo"]["accessToken"] == "access-r1"


def test_secret_rotation_keeps_sessions_and_a_lost_secret_drops_them():
    old = make_testapp(base_config(session={"secret": "old"}))
    signed_in(old)
    sealed = old.cookies["fake-refresh-token"]
    rotated = make_testapp(base_config(session={"secret": ["new", "old"]}))
    rotated.set_cookie("fake-refresh-token", sealed)
    rotated.get("/api/auth/fake/refresh?env=development", headers=XRW, status=200)
    forgotten = make_testapp(base_config(session={"secret": "new"}))
    forgotten.set_cookie("fake-refresh-token", sealed)
    forgotten.get("/api/auth/fake/refresh?env=development", headers=XRW, status=401)


def test_mounted_under_another_base_path():
    config = base_config()
    config["backend"]["baseUrl"] = "http://localhost:7007/portal"
    testapp = make_testapp(config, base_path="/auth")
    response = testapp.get("/auth/fake/start?env=development")
    assert "Path=/portal/auth/fake/handler;" in set_cookies(response)["fake-nonce"]
    testapp.get("/api/auth/fake/start?env=development", status=200)  # not ours: passes through


def test_behind_a_tls_proxy_the_config_not_the_headers_decides():
    """The external URL is backend.baseUrl; X-Forwarded-* from a client change nothing."""
    config = base_config()
    config["backend"]["baseUrl"] = "https://auth.example/portal"
    config["app"]["baseUrl"] = "https://auth.example"
    testapp = make_testapp(config)
    spoofed = {
        "X-Forwarded-Proto": "http",
        "X-Forwarded-Host": "evil.example",
        "X-Forwarded-Prefix": "/elsewhere",
        "Forwarded": "host=evil.example;proto=http",
    }
    response = testapp.get(
        "/api/auth/fake/start?env=development&origin=https://auth.example", headers=spoofed
    )
    fake = testapp.auth_app.providers["fake"].handlers["development"].authenticator
    assert fake.callback_url == "https://auth.example/portal/api/auth/fake/handler/frame"
    cookie = set_cookies(response)["fake-nonce"]
    assert "Path=/portal/api/auth/fake/handler;" in cookie
    assert "; secure" in cookie


def test_refresh_cannot_widen_the_granted_scopes(testapp):
    _, state = start(testapp, START + "&scope=email")
    callback(testapp, state)
    url = "/api/auth/fake/refresh?env=development&scope=email%20admin"
    error = testapp.get(url, headers=XRW, status=401).json["error"]
    assert error["message"] == (
        "Refresh failed; caused by InputError: Session has not been granted the requested scope"
    )
    granted = testapp.get("/api/auth/fake/refresh?env=development&scope=email", headers=XRW)
    assert granted.json["providerInfo"]["scope"] == "email openid"


def test_two_tabs_refreshing_with_one_rotating_token_both_succeed(testapp, monkeypatch):
    """An IdP that accepts each refresh token once must not log out the slower tab."""
    from wsgiauth.errors import AuthenticationError
    from wsgiauth.oauth.types import OAuthAuthenticatorResult
    from wsgiauth.oauth.types import OAuthSession

    signed_in(testapp)
    fake = testapp.auth_app.providers["fake"].handlers["development"].authenticator
    used = []

    def rotating_refresh(input):
        if input.refresh_token in used:
            raise AuthenticationError("invalid_grant")
        used.append(input.refresh_token)
        return OAuthAuthenticatorResult(
            full_profile={"email": "jane@example.com"},
            session=OAuthSession(access_token=f"access-{len(used)}", refresh_token=f"r{len(used)}"),
        )

    monkeypatch.setattr(fake, "refresh", rotating_refresh)
    old = testapp.cookies["fake-refresh-token"]
    first = testapp.get("/api/auth/fake/refresh?env=development", headers=XRW)
    testapp.set_cookie("fake-refresh-token", old)  # the other tab still holds the old cookie
    second = testapp.get("/api/auth/fake/refresh?env=development", headers=XRW)
    assert first.json["providerInfo"]["accessToken"] == "access-1"
    assert second.json["providerInfo"]["accessToken"] == "access-1"
    assert set_cookies(second)["fake-refresh-token"].startswith("fake-refresh-token=r1;")
    assert used == [old]


def test_after_logout_the_old_token_gets_no_shared_refresh(testapp):
    signed_in(testapp)
    old = testapp.cookies["fake-refresh-token"]
    testapp.get("/api/auth/fake/refresh?env=development", headers=XRW)
    testapp.set_cookie("fake-refresh-token", old)
    testapp.post("/api/auth/fake/logout?env=development", headers=XRW)
    fake = testapp.auth_app.providers["fake"].handlers["development"].authenticator
    before = fake.refresh_counter
    testapp.set_cookie("fake-refresh-token", old)
    testapp.get("/api/auth/fake/refresh?env=development", headers=XRW)
    assert fake.refresh_counter == before + 1  # a real exchange, not the cached one


# -- hostile input (hardening) ------------------------------------------------------------


@pytest.mark.parametrize(
    "redirect_url",
    [
        pytest.param(f"{APP_ORIGIN}/x%0D%0ASet-Cookie:%20a=b", id="crlf"),
        pytest.param(f"{APP_ORIGIN}/x%00", id="nul"),
        pytest.param(f"{APP_ORIGIN}/x%09y", id="tab"),
        pytest.param(f"{APP_ORIGIN}/caf%C3%A9", id="non-ascii"),
        pytest.param("http://localhost%0A:3000/", id="newline-in-host"),
    ],
)
def test_start_refuses_a_redirect_url_that_is_not_printable_ascii(testapp, redirect_url):
    response = testapp.get(f"{START}&flow=redirect&redirectUrl={redirect_url}", status=400)
    assert response.json["error"] == {
        "name": "InputError",
        "message": "Redirect URL is invalid, it must be printable ASCII",
    }
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    ("name", "prefix", "limit"),
    [
        pytest.param("scope", "", 1024, id="scope"),
        pytest.param("origin", APP_ORIGIN + "/", 256, id="origin"),
        pytest.param("redirectUrl", APP_ORIGIN + "/", 1024, id="redirectUrl"),
        pytest.param("env", "", 64, id="env"),
        pytest.param("flow", "", 16, id="flow"),
    ],
)
def test_start_caps_every_parameter_that_reaches_a_header(testapp, name, prefix, limit):
    def query(length: int) -> str:
        value = (prefix + "x" * (limit + 1))[:length]
        env = "" if name == "env" else "&env=development"
        return f"/api/auth/fake/start?{name}={value}{env}"

    response = testapp.get(query(limit + 1), status=400)
    assert response.json["error"] == {
        "name": "InputError",
        "message": f"Query parameter '{name}' is too long, at most {limit} characters",
    }
    # At the limit it is taken: a redirect, or an env that long is merely unknown (404).
    at_limit = testapp.get(query(limit), expect_errors=True)
    assert at_limit.status_int in (302, 404), at_limit.text
    assert len(at_limit.headers.get("Location", "")) < 8192


def test_start_refuses_parameters_whose_state_would_not_come_back(testapp):
    """Each within its cap, together too large: refused at start, not after sign-in."""
    long_path = "/" * 1000  # each quoted as %2F inside the state, then hex-doubled
    response = testapp.get(
        f"{START}&flow=redirect&redirectUrl={APP_ORIGIN}{long_path}&scope={'s' * 1000}",
        status=400,
    )
    assert response.json["error"]["message"] == (
        "Request parameters are too long to fit the OAuth state"
    )


def test_refresh_caps_the_scope(testapp):
    signed_in(testapp)
    response = testapp.get(
        f"/api/auth/fake/refresh?env=development&scope={'s' * 1025}", headers=XRW, status=400
    )
    assert response.json["error"]["name"] == "InputError"


@pytest.mark.parametrize("origin", ["http://[", "http://", "null", "not a url"])
def test_refresh_refuses_a_malformed_origin_before_the_exchange(testapp, origin):
    """A rotated refresh token must never be spent on an answer that cannot be sent."""
    signed_in(testapp)
    authenticator = testapp.auth_app.providers["fake"].handlers["development"].authenticator
    before = len(authenticator.calls)
    response = testapp.get(
        "/api/auth/fake/refresh?env=development",
        headers={**XRW, "Origin": origin},
        status=400,
    )
    assert response.json["error"] == {
        "name": "InputError",
        "message": "Origin header is invalid, failed to parse",
    }
    assert authenticator.calls[before:] == []  # the provider was never asked
    assert "Set-Cookie" not in response.headers


def test_logout_refuses_a_malformed_origin(testapp):
    signed_in(testapp)
    response = testapp.post(
        "/api/auth/fake/logout?env=development", headers={**XRW, "Origin": "http://["}, status=400
    )
    assert response.json["error"]["name"] == "InputError"


@settings(max_examples=200)
@given(st.text(alphabet=string.ascii_letters + string.digits + "-._~", min_size=43, max_size=128))
def test_pkce_challenge_is_oauthlibs(verifier):
    from oauthlib.oauth2 import WebApplicationClient

    assert _s256_challenge(verifier) == WebApplicationClient("").create_code_challenge(
        verifier, "S256"
    )


def test_start_headers_are_those_webobs_setters_made(testapp):
    """The header list is written directly; it is what ``location``/``cache_control`` made."""
    response, _ = start(testapp)
    setters = Response(status=302, headerlist=[("Content-Type", "text/plain")])
    setters.location = response.location
    setters.cache_control = "no-store"
    names = [name for name, _ in response.headerlist]
    assert response.headerlist[: len(setters.headerlist)] == setters.headerlist
    assert names[len(setters.headerlist) :][:2] == ["Set-Cookie", "Set-Cookie"]
