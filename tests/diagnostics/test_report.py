"""What the diagnostics page shows (callback URLs, cookies, keys, catalog), and never a secret."""

from __future__ import annotations

import json
from pathlib import Path
from urllib.parse import quote

import jwt
import webtest
import yaml

from tests.conftest import base_config
from tests.diagnostics.conftest import CLIENT_SECRET
from tests.diagnostics.conftest import PAGE
from tests.diagnostics.conftest import SESSION_SECRET
from tests.diagnostics.conftest import TOKEN
from tests.diagnostics.conftest import discovery_document
from tests.diagnostics.conftest import json_report
from tests.diagnostics.conftest import make_client
from tests.diagnostics.conftest import make_config
from tests.diagnostics.conftest import oidc_settings
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.middleware import AuthMiddleware
from wsgiauth.types import CookieSettings


def test_the_callback_url_cookies_and_probes_of_each_provider(idp):
    report = json_report(make_client(make_config()))
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
        providers={"oidc": {"development": oidc_settings()}},
        keyStore={"provider": "memory"},
    )
    raw["backend"]["baseUrl"] = "https://auth.example.com"
    raw["app"]["baseUrl"] = "https://app.example.org"
    config = Config.from_dict(raw)
    cookies = json_report(make_client(config))["providers"][0]["cookies"]
    assert (cookies["sameSite"], cookies["secure"]) == ("None", True)
    assert any("another host" in reason for reason in cookies["why"])


def test_a_custom_cookie_configurer_is_named(idp):
    def configurer(provider_id, base_url, callback_url, app_origin):
        return CookieSettings(path="/", secure=False, same_site="strict")

    report = json_report(make_client(make_config(), cookie_configurer=configurer))
    cookies = report["providers"][0]["cookies"]
    assert (cookies["sameSite"], cookies["path"]) == ("Strict", "/")
    assert cookies["why"] == ["set by the cookie_configurer passed to create_auth_app"]


def test_the_key_store_lists_keys_with_age_and_next_rotation(idp):
    client = make_client(make_config())
    refresh = client.get("/api/auth/guest/refresh", headers={"X-Requested-With": "XMLHttpRequest"})
    kid = jwt.get_unverified_header(refresh.json["backstageIdentity"]["token"])["kid"]
    keys = json_report(client)["keyStore"]
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
    catalog = json_report(client)["catalog"]
    assert (catalog["kind"], catalog["entities"], catalog["lastError"]) == ("YamlCatalog", 2, None)
    assert catalog["lastReload"].endswith("Z")

    users.write_text("kind: User\nmetadata: [not, a, mapping\n")
    app._extra_routes["/.diagnostics"].catalog.reload()
    catalog = json_report(client)["catalog"]
    assert catalog["entities"] == 2  # the last good catalog keeps serving
    assert "users.yaml" in catalog["lastError"]


def test_no_configured_secret_appears_in_the_page(idp):
    userinfo_url = "https://probe-user:url-password-never-shown@idp.example/.well-known/openid-configuration?key=query-secret-never-shown"
    idp.get(
        userinfo_url.split("?")[0].replace("probe-user:url-password-never-shown@", ""),
        json=discovery_document(),
    )
    providers = {
        "oidc": {
            "development": oidc_settings(),
            "production": oidc_settings(userinfo_url),
        },
        "guest": {},
    }
    client = make_client(
        make_config(
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
