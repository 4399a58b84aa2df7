"""One wire contract, every host: plain WSGI, Pyramid, Bottle, Flask and Django.

The same requests go through each host (see ``hosts.py``): the OAuth popup flow
(start, callback, refresh with and without the CSRF header, logout), the guest
sign-in, the identity on a public and a protected view of the host app, and the
host's own routes, which must come out exactly as without wsgiauth. The auth
app's answers must arrive byte for byte as the plain WSGI mount gives them, with
each framework's debug mode and its own HTML error pages on.
"""

from __future__ import annotations

import re
from wsgiref.validate import validator

import pytest
import webtest
import yaml

from tests.adapters.conftest import HOSTS
from tests.adapters.conftest import auth_config
from tests.conftest import APP_ORIGIN
from tests.conftest import parse_web_message
from tests.conftest import set_cookies
from tests.conftest import state_of
from wsgiauth import ConfigError

XRW = {"X-Requested-With": "XMLHttpRequest"}
START = f"/api/auth/fake/start?env=development&origin={APP_ORIGIN}"


def sign_in(host, email: str = "jane@example.com"):
    state = state_of(host.get(START).location)
    return host.get(f"/api/auth/fake/handler/frame?state={state}&code={email}")


def guest_token(host) -> str:
    return host.get("/api/auth/guest/refresh").json["backstageIdentity"]["token"]


def reference(host) -> webtest.TestApp:
    """The plain WSGI mount of the same auth app: what every host must answer."""
    from tests.adapters.hosts import build_wsgi

    return webtest.TestApp(validator(build_wsgi(host.auth_app)))


def wire(response) -> tuple[str, list[tuple[str, str]], bytes]:
    """Status, headers and body; header names compared case-insensitively, as HTTP does
    (Bottle writes ``ETag`` as ``Etag``)."""
    headers = sorted((name.lower(), value) for name, value in response.headerlist)
    return response.status, headers, response.body


def test_start_redirects_with_a_hex_state_and_a_nonce_cookie(host):
    response = host.get(START)
    assert response.status_int == 302
    assert response.location.startswith("https://idp.example/authorize?")
    assert re.fullmatch(r"[0-9a-f]+", state_of(response.location))
    nonce = set_cookies(response)["fake-nonce"]
    assert "Path=/api/auth/fake/handler;" in nonce
    assert "HttpOnly" in nonce


def test_callback_posts_the_session_to_the_opener(host):
    response = sign_in(host)
    assert response.status_int == 200
    assert response.content_type == "text/html"
    message = parse_web_message(response.text)
    assert message["type"] == "authorization_response"
    assert message["response"]["profile"] == {
        "email": "jane@example.com",
        "displayName": "Fake User",
    }
    assert message["response"]["providerInfo"]["accessToken"] == "access-1"
    assert "Path=/api/auth/fake;" in set_cookies(response)["fake-refresh-token"]


def test_refresh_needs_the_csrf_header(host):
    sign_in(host)
    refused = host.get("/api/auth/fake/refresh?env=development", status=401)
    assert refused.json["error"] == {
        "name": "AuthenticationError",
        "message": "Invalid X-Requested-With header",
    }
    response = host.get("/api/auth/fake/refresh?env=development", headers=XRW)
    assert response.json["providerInfo"]["accessToken"] == "access-r1"
    assert response.json["profile"]["email"] == "jane@example.com"


def test_logout_clears_the_session(host):
    sign_in(host)
    response = host.post("/api/auth/fake/logout?env=development", headers=XRW)
    assert response.status_int == 200
    assert response.body == b""
    assert "Max-Age=0" in set_cookies(response)["fake-refresh-token"]
    host.get("/api/auth/fake/refresh?env=development", headers=XRW, status=401)


def test_guest_refresh_gives_an_identity_token(host):
    body = host.get("/api/auth/guest/refresh").json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:development/guest"
    assert host.auth_app.verifier.verify(body["backstageIdentity"]["token"]).user_entity_ref == (
        "user:development/guest"
    )


def test_protected_view_needs_a_valid_identity_token(host):
    missing = host.get("/private", status=401)
    assert missing.json == {
        "error": {"name": "AuthenticationError", "message": "Missing credentials"},
        "request": {"method": "GET", "url": "/private"},
        "response": {"statusCode": 401},
    }
    assert missing.headers["WWW-Authenticate"] == "Bearer"
    bad = host.get("/private", headers={"Authorization": "Bearer nope"}, status=401)
    assert bad.json["error"]["message"].startswith("Invalid identity token")
    assert bad.headers["WWW-Authenticate"] == 'Bearer error="invalid_token"'
    token = guest_token(host)
    response = host.get("/private", headers={"Authorization": f"Bearer {token}"})
    assert response.json == {
        "user": "user:development/guest",
        "ownership": ["user:development/guest"],
    }


@pytest.mark.parametrize(
    ("origin", "allowed"),
    [pytest.param(APP_ORIGIN, True, id="app-origin"), pytest.param("https://evil.example", False)],
)
def test_a_forged_preflight_never_reaches_a_protected_view(host, origin, allowed):
    """A preflight carries no token: the view must not run (and answer with its data)."""
    headers = {"Access-Control-Request-Method": "GET", "Origin": origin}
    response = host.options("/private", headers=headers, status=204)
    assert response.body == b""
    assert ("Access-Control-Allow-Origin" in response.headers) is allowed
    if allowed:
        assert response.headers["Access-Control-Allow-Origin"] == origin
        assert response.headers["Access-Control-Allow-Credentials"] == "true"


def test_the_401_of_a_protected_view_is_the_core_one(host):
    ours = host.get("/private?x=1", headers={"Authorization": "Bearer nope"}, status=401)
    core = reference(host).get("/private?x=1", headers={"Authorization": "Bearer nope"}, status=401)
    assert ours.body == core.body
    assert ours.headers["Content-Type"] == core.headers["Content-Type"]


@pytest.mark.parametrize(
    ("headers", "user"),
    [
        pytest.param({}, None, id="no-token"),
        pytest.param({"Authorization": "Bearer nope"}, None, id="bad-token"),
        pytest.param({"Authorization": "Basic dTpw"}, None, id="other-scheme"),
        pytest.param("guest", "user:development/guest", id="guest-token"),
    ],
)
def test_public_view_sees_the_identity_or_none(host, headers, user):
    if headers == "guest":
        headers = {"Authorization": f"Bearer {guest_token(host)}"}
    assert host.get("/whoami", headers=headers).json["user"] == user


@pytest.mark.parametrize(
    ("method", "path", "status", "headers"),
    [
        pytest.param("GET", "/api/auth/nope/start?env=development", 404, {}, id="unknown-provider"),
        pytest.param("GET", "/api/auth/fake/nope", 404, {}, id="unknown-route"),
        pytest.param("GET", "/api/auth/fake/refresh?env=development", 401, {}, id="no-csrf"),
        pytest.param("GET", "/api/auth/fake/logout?env=development", 405, XRW, id="bad-method"),
        pytest.param("GET", "/api/auth/fake/start", 400, {}, id="no-env"),
        pytest.param("GET", "/api/auth/.well-known/jwks.json", 200, {}, id="jwks"),
    ],
)
def test_auth_answers_arrive_byte_identical(host, method, path, status, headers):
    ours = host.request(path, method=method, headers=headers, status=status)
    core = reference(host).request(path, method=method, headers=headers, status=status)
    assert wire(ours) == wire(core)
    if status >= 400:
        assert ours.json["response"] == {"statusCode": status}


def test_host_routes_pass_through_untouched(host, build_host):
    plain = webtest.TestApp(validator(build_host(host.name, None, plain=True)))
    token = guest_token(host)
    for request in (
        {"url_or_req": "/hello"},
        {"url_or_req": "/hello", "headers": {"Authorization": f"Bearer {token}"}},
        {"url_or_req": "/echo?a=1&b=%2F", "method": "POST", "body": b"x=1&y=\xff"},
        {
            "url_or_req": "/echo",
            "method": "POST",
            "body": b"",
            "headers": {"Authorization": "Bearer x"},
        },
    ):
        ours = host.request(**request)
        theirs = plain.request(**request)
        assert wire(ours) == wire(theirs)
    assert host.get("/hello").body == b"hello from the host app"
    assert host.get("/hello").headers["X-Host"] == "kept"
    echoed = host.post("/echo?a=1", b"payload").json
    assert echoed["path"] == "/echo"
    assert echoed["script_name"] == ""
    assert echoed["body"] == "payload"


def _misconfigurations():
    for name in HOSTS:
        yield pytest.param(name, "unknown-provider", id=f"{name}-unknown-provider")
        if name != "wsgi":  # plain WSGI has no setting to miss and no routes to check
            yield pytest.param(name, "missing", id=f"{name}-missing-config")
            yield pytest.param(name, "clash", id=f"{name}-base-path-clash")


@pytest.mark.parametrize(("name", "problem"), list(_misconfigurations()))
def test_misconfiguration_fails_at_startup_naming_the_setting(build_host, tmp_path, name, problem):
    config = auth_config()
    config["auth"]["providers"] = {"guest": {}}
    if problem == "unknown-provider":
        config["auth"]["providers"]["nope"] = {}
    path = tmp_path / "app-config.yaml"
    path.write_text(yaml.safe_dump(config))
    source = None if problem == "missing" else str(path)
    with pytest.raises(Exception) as caught:
        build_host(name, source, clash=problem == "clash")
    missing = {
        "pyramid": "wsgiauth.config",
        "bottle": "WsgiAuthPlugin",
        "flask": "WSGIAUTH_CONFIG",
        "django": "WSGIAUTH.CONFIG",
    }
    expected = {
        "missing": missing.get(name),
        "unknown-provider": "auth.providers.nope",
        "clash": "auth.basePath",
    }[problem]
    assert _config_error(caught.value).path == expected
    assert expected in str(caught.value)


def _config_error(error: BaseException) -> ConfigError:
    """The ConfigError, also when Pyramid wraps it in a ConfigurationExecutionError."""
    while not isinstance(error, ConfigError):
        cause = error.__cause__ or error.__context__
        assert cause is not None, repr(error)
        error = cause
    return error
