"""The azureEasyAuth provider: the tokens Azure App Service passes, through the real auth app.

Checked against ``@backstage/plugin-auth-backend-module-azure-easyauth-provider`` 0.2.24
(``dist/authenticator.cjs.js``, ``dist/resolvers.cjs.js``, ``dist/module.cjs.js``).
App Service validated the ID token and sets its header itself, so, as in Backstage, the
token is decoded, not verified, and there is no key endpoint; the refusals are a missing
or malformed token, one that is not version 2.0, a profile without an id, and (at
startup) a process that is not on App Service with Easy Auth.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from webob import Request

from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import user_entity
from tests.providers.proxy_flow import refusal_of
from wsgiauth import Config
from wsgiauth.errors import ConfigError
from wsgiauth.providers import azure_easy_auth
from wsgiauth.providers.azure_easy_auth import AzureEasyAuthAuthenticator
from wsgiauth.providers.azure_easy_auth import AzureEasyAuthResult
from wsgiauth.registry import BUILTIN_PROVIDERS
from wsgiauth.types import ProfileInfo

REFRESH = "/api/auth/azureEasyAuth/refresh"
ID = "x-ms-token-aad-id-token"
OID = "00000000-0000-0000-66f3-3332eca7ea81"
JANE = user_entity("jane", email="jane@example.com", **{"graph.microsoft.com/user-id": OID})
#: What App Service sets for a site with Easy Auth, Entra ID and the token store.
APP_SERVICE = {
    "WEBSITE_SKU": "Basic",
    "WEBSITE_AUTH_ENABLED": "True",
    "WEBSITE_AUTH_DEFAULT_PROVIDER": "AzureActiveDirectory",
    "WEBSITE_AUTH_TOKEN_STORE": "true",
}


@pytest.fixture(autouse=True)
def _on_app_service(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in APP_SERVICE.items():
        monkeypatch.setenv(name, value)


def id_token(key: Any, **claims: Any) -> str:
    """An Entra ID v2.0 ID token, as App Service passes it."""
    now = int(time.time())
    body = {
        "ver": "2.0",
        "iss": "https://login.microsoftonline.com/tenant/v2.0",
        "aud": "client-id",
        "iat": now,
        "exp": now + 3600,
        "oid": OID,
        "name": "Jane Doe",
        "email": "jane@example.com",
        "preferred_username": "jane@example.onmicrosoft.com",
    }
    return jwt.encode({**body, **claims}, key, algorithm="RS256")


def easy_auth_app(tmp_path: Path, resolver: str = "idMatchingUserEntityAnnotation", **options):
    block: dict[str, Any] = {"resolver": resolver, **options}
    providers = {"azureEasyAuth": {"signIn": {"resolvers": [block]}}}
    return build_app(tmp_path, providers, users=[JANE])


refusal = refusal_of(REFRESH)


def test_registered_under_backstages_id() -> None:
    assert BUILTIN_PROVIDERS["azureEasyAuth"] == "wsgiauth.providers.azure_easy_auth:module"
    assert azure_easy_auth.module.provider_id == "azureEasyAuth"
    assert set(azure_easy_auth.module.resolvers) == {"idMatchingUserEntityAnnotation"}


# -- /refresh through the auth app -----------------------------------------------------------


def test_refresh_signs_in_the_user_of_the_id_token(tmp_path, rsa_key) -> None:
    app = easy_auth_app(tmp_path)
    headers = {"X-MS-TOKEN-AAD-ID-TOKEN": id_token(rsa_key), "X-MS-TOKEN-AAD-ACCESS-TOKEN": "at"}
    # Like Backstage's proxy refresh (and guest), no X-Requested-With is needed.
    body = app.get(REFRESH, headers=headers).json
    assert set(body) == {"profile", "providerInfo", "backstageIdentity"}
    assert body["profile"] == {"email": "jane@example.com", "displayName": "Jane Doe"}
    assert body["providerInfo"] == {"accessToken": "at"}
    identity = body["backstageIdentity"]
    assert identity["identity"] == {
        "type": "user",
        "userEntityRef": "user:default/jane",
        "ownershipEntityRefs": ["user:default/jane"],
    }
    jwks = app.get("/api/auth/.well-known/jwks.json").json
    claims = jwt.decode(
        identity["token"],
        jwt.PyJWKSet.from_dict(jwks).keys[0].key,
        algorithms=["ES256"],
        audience="backstage",
    )
    assert claims["sub"] == "user:default/jane"


def test_without_an_access_token_provider_info_is_empty(tmp_path, rsa_key) -> None:
    app = easy_auth_app(tmp_path)
    body = app.get(REFRESH, headers={ID: id_token(rsa_key)}).json
    assert body["providerInfo"] == {}


def test_common_email_resolver(tmp_path, rsa_key) -> None:
    app = easy_auth_app(tmp_path, "emailMatchingUserEntityProfileEmail")
    body = app.get(REFRESH, headers={ID: id_token(rsa_key, oid="other")}).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_user_not_in_the_catalog_is_404(tmp_path, rsa_key) -> None:
    app = easy_auth_app(tmp_path)
    response = app.get(REFRESH, headers={ID: id_token(rsa_key, oid="other")}, status=404)
    assert response.json["error"]["name"] == "NotFoundError"


def test_dangerous_fallback_signs_in_as_the_object_id(tmp_path, rsa_key) -> None:
    app = easy_auth_app(tmp_path, dangerouslyAllowSignInWithoutUserInCatalog=True)
    body = app.get(REFRESH, headers={ID: id_token(rsa_key, oid="other")}).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/other"


@pytest.mark.parametrize("route", ["start", "handler/frame"])
def test_no_popup(tmp_path, route) -> None:
    response = easy_auth_app(tmp_path).get(f"/api/auth/azureEasyAuth/{route}", status=501)
    assert response.json["error"]["name"] == "NotImplementedError"


# -- refusals (each one fails if its check is removed) ---------------------------------------


def test_refuses_a_missing_id_token(tmp_path) -> None:
    app = easy_auth_app(tmp_path)
    # The x-ms-client-principal-* headers alone are not enough, as in Backstage.
    headers = {"X-MS-CLIENT-PRINCIPAL-ID": OID, "X-MS-CLIENT-PRINCIPAL-NAME": "jane"}
    refusal(app.get(REFRESH, headers=headers, status=401), f"Missing {ID} header")


def test_refuses_an_id_token_that_does_not_decode(tmp_path) -> None:
    app = easy_auth_app(tmp_path)
    response = app.get(REFRESH, headers={ID: "not.a-jwt.at-all"}, status=401)
    refusal(response, f"Authentication failed, malformed {ID}")


@pytest.mark.parametrize("ver", ["1.0", None])
def test_refuses_an_id_token_that_is_not_version_2(tmp_path, rsa_key, ver) -> None:
    app = easy_auth_app(tmp_path)
    response = app.get(REFRESH, headers={ID: id_token(rsa_key, ver=ver)}, status=401)
    refusal(response, "id_token is not version 2.0")


def test_id_resolver_refuses_a_token_without_an_object_id(tmp_path, rsa_key) -> None:
    app = easy_auth_app(tmp_path)
    response = app.get(REFRESH, headers={ID: id_token(rsa_key, oid=None)}, status=401)
    refusal(response, "User profile contained no id")


# -- the authenticator, as Backstage's ----------------------------------------------------------


def test_the_id_token_is_decoded_without_verification(other_rsa_key) -> None:
    """As Backstage (jose ``decodeJwt``): App Service checked it; any signer, any expiry."""
    token = id_token(other_rsa_key, exp=1)
    authenticator = AzureEasyAuthAuthenticator.from_config(
        Config.from_dict({}),
        http=None,  # type: ignore[arg-type]
    )
    result = authenticator.authenticate(Request.blank("/refresh", headers={ID: token}))
    easy: AzureEasyAuthResult = result.result
    assert easy.full_profile == {
        "id": OID,
        "displayName": "Jane Doe",
        "provider": "easyauth",
        "emails": [{"value": "jane@example.com"}],
        "username": "jane@example.onmicrosoft.com",
    }
    assert easy.access_token is None
    profile = authenticator.default_profile_transform(result)
    assert profile == ProfileInfo(email="jane@example.com", display_name="Jane Doe")


# -- startup -----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "value", "message"),
    [
        ("WEBSITE_SKU", None, "Backstage is not running on Azure App Services"),
        ("WEBSITE_AUTH_ENABLED", None, "Azure App Services does not have authentication enabled"),
        ("WEBSITE_AUTH_ENABLED", "false", "does not have authentication enabled"),
        ("WEBSITE_AUTH_DEFAULT_PROVIDER", "Google", "Authentication provider is not Entra ID"),
        ("WEBSITE_AUTH_DEFAULT_PROVIDER", None, "Authentication provider is not Entra ID"),
        ("WEBSITE_AUTH_TOKEN_STORE", "false", "Token Store is not enabled"),
        ("WEBSITE_AUTH_TOKEN_STORE", None, "Token Store is not enabled"),
    ],
)
def test_refuses_to_start_outside_app_service_with_easy_auth(
    tmp_path, monkeypatch, name, value, message
) -> None:
    if value is None:
        monkeypatch.delenv(name)
    else:
        monkeypatch.setenv(name, value)
    with pytest.raises(ConfigError, match=message) as info:
        easy_auth_app(tmp_path)
    assert info.value.path == "auth.providers.azureEasyAuth"
    assert "it runs only on App Service with authentication on" in str(info.value)


def test_the_checks_ignore_case(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("WEBSITE_AUTH_ENABLED", "TRUE")
    monkeypatch.setenv("WEBSITE_AUTH_DEFAULT_PROVIDER", "azureactivedirectory")
    monkeypatch.setenv("WEBSITE_AUTH_TOKEN_STORE", "True")
    easy_auth_app(tmp_path)


def test_unknown_key_fails_at_startup(tmp_path) -> None:
    resolvers = [{"resolver": "idMatchingUserEntityAnnotation"}]
    providers = {"azureEasyAuth": {"development": {}, "signIn": {"resolvers": resolvers}}}
    with pytest.raises(ConfigError, match=r"auth\.providers\.azureEasyAuth\.development") as info:
        build_app(tmp_path, providers)
    assert "unknown key (known: signIn)" in str(info.value)


def test_a_resolver_is_required(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"auth\.providers\.azureEasyAuth\.signIn"):
        build_app(tmp_path, {"azureEasyAuth": {}})


#: From https://backstage.io/docs/auth/microsoft/easy-auth (Configuration).
BACKSTAGE_DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  providers:
    azureEasyAuth:
      signIn:
        resolvers:
          # See https://backstage.io/docs/auth/microsoft/easy-auth#resolvers for more resolvers
          - resolver: idMatchingUserEntityAnnotation
"""


def test_backstages_documented_config_passes_check_config(tmp_path) -> None:
    assert check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG) == []
    fuller = BACKSTAGE_DOCS_CONFIG.replace(
        "          - resolver: idMatchingUserEntityAnnotation",
        "          - resolver: emailMatchingUserEntityProfileEmail\n"
        "          - resolver: emailLocalPartMatchingUserEntityName\n"
        "          - resolver: idMatchingUserEntityAnnotation",
    )
    assert check_config_of(tmp_path, fuller) == []


def test_check_config_names_a_misspelt_key(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, BACKSTAGE_DOCS_CONFIG.replace("      signIn:", "      sigIn: {}\n      signIn:")
    )
    assert [error.path for error in errors] == ["auth.providers.azureEasyAuth.sigIn"]


def test_check_config_outside_app_service_says_so(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("WEBSITE_SKU")
    [error] = check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG)
    assert error.path == "auth.providers.azureEasyAuth"
    assert "Backstage is not running on Azure App Services" in str(error)
