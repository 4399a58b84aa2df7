"""The diagnostics page: who may see it, what it shows, and that it never shows a secret.

Providers are faked with ``responses`` (probes run on the page's own threads, which
``responses`` reaches too); waits are bounded by events, never by sleeps.
"""

from __future__ import annotations

import json
import threading
import time
from email.utils import formatdate
from pathlib import Path
from typing import Any
from urllib.parse import quote

import jwt
import pytest
import responses
import webtest
import yaml

from tests.conftest import base_config
from wsgiauth import diagnostics
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.diagnostics import MIN_TOKEN_LENGTH
from wsgiauth.diagnostics import render_html
from wsgiauth.errors import ConfigError
from wsgiauth.middleware import AuthMiddleware
from wsgiauth.types import CookieSettings

PAGE = "/api/auth/.diagnostics"
TOKEN = "diagnostics-token-" + "t" * 32
CLIENT_SECRET = "client-secret-never-shown-1234"
SESSION_SECRET = "session-secret-never-shown-5678"
ISSUER = "https://idp.example"
METADATA = f"{ISSUER}/.well-known/openid-configuration"
JWKS = f"{ISSUER}/jwks"
WAIT = 10


def _oidc(metadata_url: str = METADATA) -> dict[str, Any]:
    return {"metadataUrl": metadata_url, "clientId": "client-id", "clientSecret": CLIENT_SECRET}


def _config(*, environment: str = "development", providers: Any = None, **auth: Any) -> Config:
    config = base_config(
        providers=providers or {"oidc": {"development": _oidc()}, "guest": {}},
        keyStore={"provider": "memory"},
        session={"secret": SESSION_SECRET},
        **auth,
    )
    config["auth"]["environment"] = environment
    if environment != "development":
        config["auth"]["providers"]["guest"] = {"dangerouslyAllowOutsideDevelopment": True}
    return Config.from_dict(config)


def _client(config: Config, **kwargs: Any) -> webtest.TestApp:
    def no_app(environ: Any, start_response: Any) -> list[bytes]:  # pragma: no cover
        raise AssertionError("only auth routes are requested")

    return webtest.TestApp(AuthMiddleware(no_app, create_auth_app(config, **kwargs)))


def _discovery() -> dict[str, Any]:
    return {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": f"{ISSUER}/token",
        "jwks_uri": JWKS,
        "response_types_supported": ["code"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": ["RS256"],
    }


@pytest.fixture
def idp():
    """A fast, healthy OpenID provider with a ``Date`` header on every answer."""
    with responses.RequestsMock(assert_all_requests_are_fired=False) as mocked:
        date = {"Date": formatdate(usegmt=True)}
        mocked.get(METADATA, json=_discovery(), headers=date)
        mocked.get(JWKS, json={"keys": [{"kty": "RSA", "kid": "a"}, {"kty": "RSA", "kid": "b"}]})
        yield mocked


# --- who may see it -------------------------------------------------------------------


def test_in_development_it_is_served_without_a_token(idp):
    page = _client(_config()).get(PAGE)
    assert page.status_int == 200
    assert page.content_type == "text/html"
    assert "wsgiauth diagnostics" in page.text


def test_outside_development_it_is_not_served_unless_enabled(idp):
    missing = _client(_config(environment="production")).get(PAGE, expect_errors=True)
    assert missing.status_int == 404
    assert missing.json["error"]["name"] == "NotFoundError"


def test_development_can_turn_it_off(idp):
    client = _client(_config(diagnostics={"enabled": False}))
    assert client.get(PAGE, expect_errors=True).status_int == 404


@pytest.mark.parametrize(
    "authorization",
    [
        pytest.param(None, id="no-header"),
        pytest.param(f"Bearer {TOKEN[:-1]}", id="one-char-short"),
        pytest.param(f"Bearer {TOKEN}x", id="one-char-long"),
        pytest.param(f"Basic {TOKEN}", id="other-scheme"),
        pytest.param("Bearer ", id="empty"),
    ],
)
def test_outside_development_it_refuses_without_its_token(idp, authorization):
    client = _client(
        _config(environment="production", diagnostics={"enabled": True, "token": TOKEN})
    )
    headers = {"Authorization": authorization} if authorization else {}
    for query in ("", "?format=json"):
        refused = client.get(PAGE + query, headers=headers, expect_errors=True)
        assert refused.status_int == 401
        assert refused.json["error"]["name"] == "AuthenticationError"
        assert refused.json["response"] == {"statusCode": 401}
        assert "callback" not in refused.text.lower()


def test_outside_development_its_token_opens_it(idp):
    client = _client(
        _config(environment="production", diagnostics={"enabled": True, "token": TOKEN})
    )
    page = client.get(PAGE, headers={"Authorization": f"Bearer {TOKEN}"})
    assert page.status_int == 200
    assert "environment production" not in page.text  # the HTML says "Environment"
    assert "Environment <strong>production</strong>" in page.text


def test_a_token_set_in_development_is_required_there_too(idp):
    client = _client(_config(diagnostics={"token": TOKEN}))
    assert client.get(PAGE, expect_errors=True).status_int == 401
    assert client.get(PAGE, headers={"Authorization": f"bearer {TOKEN}"}).status_int == 200


def test_the_token_is_compared_in_constant_time(idp, monkeypatch):
    compared = []
    real = diagnostics.hmac.compare_digest

    def spy(a: bytes, b: bytes) -> bool:
        compared.append((a, b))
        return real(a, b)

    monkeypatch.setattr(diagnostics.hmac, "compare_digest", spy)
    client = _client(
        _config(environment="production", diagnostics={"enabled": True, "token": TOKEN})
    )
    client.get(PAGE, headers={"Authorization": "Bearer guess"}, expect_errors=True)
    assert compared == [(b"guess", TOKEN.encode())]


@pytest.mark.parametrize(
    ("diagnostics_config", "message"),
    [
        pytest.param({"enabled": True}, "required when", id="enabled-without-token"),
        pytest.param(
            {"enabled": True, "token": "short"}, f"at least {MIN_TOKEN_LENGTH}", id="short-token"
        ),
    ],
)
def test_a_bad_setup_outside_development_fails_at_startup(diagnostics_config, message):
    with pytest.raises(ConfigError, match=rf"auth\.diagnostics\.token.*{message}"):
        create_auth_app(_config(environment="production", diagnostics=diagnostics_config))


def test_only_get_is_allowed(idp):
    refused = _client(_config()).post(PAGE, expect_errors=True)
    assert refused.status_int == 405
    assert refused.headers["Allow"] == "GET"


# --- what it shows --------------------------------------------------------------------


def _report(client: webtest.TestApp, **headers: str) -> dict[str, Any]:
    return client.get(PAGE, params={"format": "json"}, headers=headers).json


def test_json_by_query_or_accept(idp):
    client = _client(_config())
    assert client.get(PAGE, params={"format": "json"}).content_type == "application/json"
    by_accept = client.get(PAGE, headers={"Accept": "application/json"})
    assert by_accept.content_type == "application/json"
    assert by_accept.json["environment"] == "development"


def test_the_callback_url_cookies_and_probes_of_each_provider(idp):
    report = _report(_client(_config()))
    oidc, guest = report["providers"]
    assert oidc["provider"] == "oidc" and oidc["environment"] == "development"
    assert oidc["callbackUrl"] == "http://localhost:7007/api/auth/oidc/handler/frame"
    cookies = oidc["cookies"]
    assert (cookies["sameSite"], cookies["secure"], cookies["path"]) == (
        "Lax",
        False,
        "/api/auth/oidc",
    )
    assert any("http" in reason and "not Secure" in reason for reason in cookies["why"])
    discovery, jwks = oidc["probes"]
    assert discovery["target"] == "discovery" and discovery["ok"] and discovery["status"] == 200
    assert isinstance(discovery["ms"], int)
    assert isinstance(discovery["clockSkewSeconds"], float)
    assert jwks["target"] == "jwks" and jwks["ok"] and jwks["keys"] == 2
    assert guest == {
        "provider": "guest",
        "kind": "proxy",
        "note": "Refresh only: the identity comes from the request, there is no callback",
    }


def test_cross_site_https_cookies_are_samesite_none_and_say_why(idp):
    raw = base_config(
        providers={"oidc": {"development": _oidc()}},
        keyStore={"provider": "memory"},
    )
    raw["backend"]["baseUrl"] = "https://auth.example.com"
    raw["app"]["baseUrl"] = "https://app.example.org"
    config = Config.from_dict(raw)
    cookies = _report(_client(config))["providers"][0]["cookies"]
    assert (cookies["sameSite"], cookies["secure"]) == ("None", True)
    assert any("another host" in reason for reason in cookies["why"])


def test_a_custom_cookie_configurer_is_named(idp):
    def configurer(provider_id, base_url, callback_url, app_origin):
        return CookieSettings(path="/", secure=False, same_site="strict")

    report = _report(_client(_config(), cookie_configurer=configurer))
    cookies = report["providers"][0]["cookies"]
    assert (cookies["sameSite"], cookies["path"]) == ("Strict", "/")
    assert cookies["why"] == ["set by the cookie_configurer passed to create_auth_app"]


def test_a_clock_off_the_providers_is_flagged(idp):
    app = create_auth_app(_config())
    page = app._extra_routes["/.diagnostics"]
    page._clock = lambda: time.time() + 120  # this server two minutes ahead
    report = page.report()
    discovery = report["providers"][0]["probes"][0]
    assert 100 < discovery["clockSkewSeconds"] < 140
    assert "clock is off" in discovery["warning"]


def test_a_provider_that_is_down_is_shown_down(idp):
    idp.replace(responses.GET, METADATA, status=502)
    discovery = _report(_client(_config()))["providers"][0]["probes"][0]
    assert discovery["ok"] is False
    assert "answered 502" in discovery["error"]


def test_a_token_endpoint_is_probed_for_providers_without_discovery(idp):
    idp.get("https://idp.example/token", status=405)
    oauth2 = {
        "clientId": "id",
        "clientSecret": CLIENT_SECRET,
        "authorizationUrl": "https://idp.example/authorize",
        "tokenUrl": "https://idp.example/token",
    }
    report = _report(_client(_config(providers={"oauth2": {"development": oauth2}})))
    (probe,) = report["providers"][0]["probes"]
    assert (probe["target"], probe["status"], probe["ok"]) == ("token endpoint", 405, True)


def test_probes_run_concurrently_and_a_stuck_one_does_not_hold_the_page(idp, monkeypatch):
    # Two providers whose discovery answers only once both were asked: run one after
    # the other, neither would answer. A third never answers at all.
    both_asked = threading.Barrier(2, timeout=WAIT)
    stuck = threading.Event()

    def meeting(request: Any) -> tuple[int, dict[str, str], str]:
        both_asked.wait()
        return 200, {}, json.dumps(_discovery())

    def never(request: Any) -> tuple[int, dict[str, str], str]:
        stuck.wait(WAIT)
        return 504, {}, ""

    for host in ("a", "b"):
        idp.add_callback(
            responses.GET,
            f"https://{host}.example/.well-known/openid-configuration",
            callback=meeting,
        )
    idp.add_callback(
        responses.GET, "https://c.example/.well-known/openid-configuration", callback=never
    )
    monkeypatch.setattr(diagnostics, "PROBE_BUDGET", 2.0)
    providers = {
        "oidc": {
            "development": _oidc("https://a.example/.well-known/openid-configuration"),
            "production": _oidc("https://b.example/.well-known/openid-configuration"),
            "staging": _oidc("https://c.example/.well-known/openid-configuration"),
        }
    }
    try:
        report = _report(_client(_config(providers=providers)))
    finally:
        stuck.set()
    probes = {p["environment"]: p["probes"][0] for p in report["providers"]}
    assert probes["development"]["ok"] and probes["production"]["ok"]
    assert probes["staging"] == {"target": "provider", "ok": False, "error": "no answer in 2 s"}


def test_the_key_store_lists_keys_with_age_and_next_rotation(idp):
    client = _client(_config())
    refresh = client.get("/api/auth/guest/refresh", headers={"X-Requested-With": "XMLHttpRequest"})
    kid = jwt.get_unverified_header(refresh.json["backstageIdentity"]["token"])["kid"]
    keys = _report(client)["keyStore"]
    assert keys["store"] == "MemoryKeyStore" and keys["ok"]
    assert [key["kid"] for key in keys["keys"]] == [kid]
    assert keys["keys"][0]["algorithm"] == "ES256"
    assert keys["keys"][0]["ageSeconds"] >= 0
    assert keys["nextRotation"] == keys["keys"][0]["signsUntil"]
    assert keys["keyLifetimeSeconds"] == 3600


def test_the_catalog_count_reload_and_last_error(idp, tmp_path: Path):
    users = tmp_path / "users.yaml"
    entities = [
        {"apiVersion": "backstage.io/v1alpha1", "kind": "User", "metadata": {"name": name}}
        for name in ("jane", "joe")
    ]
    users.write_text(yaml.safe_dump_all(entities))
    raw = base_config(providers={"guest": {}}, keyStore={"provider": "memory"})
    raw["catalog"] = {"locations": [{"type": "file", "target": str(users)}]}
    app = create_auth_app(Config.from_dict(raw))
    client = webtest.TestApp(AuthMiddleware(lambda e, s: [], app))
    catalog = _report(client)["catalog"]
    assert (catalog["kind"], catalog["entities"], catalog["lastError"]) == ("YamlCatalog", 2, None)
    assert catalog["lastReload"].endswith("Z")

    users.write_text("kind: User\nmetadata: [not, a, mapping\n")
    app._extra_routes["/.diagnostics"].catalog.reload()
    catalog = _report(client)["catalog"]
    assert catalog["entities"] == 2  # the last good catalog keeps serving
    assert "users.yaml" in catalog["lastError"]


def test_html_escapes_everything_it_shows():
    report = {
        "environment": "<b>dev</b>",
        "authBaseUrl": "http://x/api/auth",
        "appUrl": "http://x",
        "generatedAt": "now",
        "providers": [],
        "keyStore": {"store": "S", "ok": False, "error": "<script>alert(1)</script>"},
        "catalog": {"kind": "YamlCatalog", "entities": 1, "lastReload": "t", "lastError": "<img>"},
    }
    page = render_html(report)
    assert "<script>" not in page and "<img>" not in page and "<b>dev" not in page
    assert "&lt;script&gt;" in page


# --- it never shows a secret ----------------------------------------------------------


def test_no_configured_secret_appears_in_the_page(idp):
    userinfo_url = "https://probe-user:url-password-never-shown@idp.example/.well-known/openid-configuration?key=query-secret-never-shown"
    idp.get(
        userinfo_url.split("?")[0].replace("probe-user:url-password-never-shown@", ""),
        json=_discovery(),
    )
    providers = {
        "oidc": {
            "development": _oidc(),
            "production": _oidc(userinfo_url),
        },
        "guest": {},
    }
    client = _client(
        _config(
            environment="production",
            providers=providers,
            diagnostics={"enabled": True, "token": TOKEN},
        )
    )
    client.get("/api/auth/guest/refresh", headers={"X-Requested-With": "XMLHttpRequest"})
    auth = {"Authorization": f"Bearer {TOKEN}"}
    pages = [
        client.get(PAGE, headers=auth).text,
        client.get(PAGE, params={"format": "json"}, headers=auth).text,
    ]
    secrets = [
        CLIENT_SECRET,
        SESSION_SECRET,
        TOKEN,
        "url-password-never-shown",
        "query-secret-never-shown",
    ]
    for page in pages:
        assert "idp.example" in page  # the page does show the provider
        for secret in secrets:
            for form in (secret, quote(secret), json.dumps(secret)[1:-1]):
                assert form not in page, f"{secret!r} leaked"
