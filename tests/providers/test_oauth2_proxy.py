"""The oauth2Proxy provider: the headers oauth2-proxy sets, through the real auth app.

Checked against ``@backstage/plugin-auth-backend-module-oauth2-proxy-provider`` 0.3.3
(``dist/authenticator.cjs.js``, ``dist/resolvers.cjs.js``). oauth2-proxy signs nothing
the app could check, so there is no key endpoint here: the ID token is decoded, not
verified, exactly as Backstage does; the refusals are the missing headers and a token
that does not decode.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import jwt
import pytest
from cryptography.hazmat.primitives.asymmetric import ec
from webob import Request

from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import user_entity
from tests.providers.proxy_flow import ec_key_fixture
from tests.providers.proxy_flow import refusal_of
from wsgiauth import Config
from wsgiauth.errors import ConfigError
from wsgiauth.providers import oauth2_proxy
from wsgiauth.providers.oauth2_proxy import OAuth2ProxyAuthenticator
from wsgiauth.providers.oauth2_proxy import OAuth2ProxyResult
from wsgiauth.registry import BUILTIN_PROVIDERS
from wsgiauth.types import ProfileInfo

REFRESH = "/api/auth/oauth2Proxy/refresh"
JANE = user_entity("jane", email="jane@example.com")
PROXY_HEADERS = {
    "X-Forwarded-User": "jane",
    "X-Forwarded-Email": "jane@example.com",
    "X-Forwarded-Preferred-Username": "jane.doe",
}


#: The key of the IdP behind oauth2-proxy (the app never sees its public half).
idp_key = ec_key_fixture()


def id_token(key: Any, **claims: Any) -> str:
    now = int(time.time())
    body = {"iss": "https://idp.example", "sub": "1234", "aud": "proxy", "iat": now}
    return jwt.encode({**body, "exp": now + 300, **claims}, key, algorithm="ES256")


def proxy_app(tmp_path: Path, resolver: str = "forwardedUserMatchingUserEntityName", **options):
    block: dict[str, Any] = {"resolver": resolver, **options}
    providers = {"oauth2Proxy": {"signIn": {"resolvers": [block]}}}
    return build_app(tmp_path, providers, users=[JANE, user_entity("jane.doe")])


refusal = refusal_of(REFRESH)


def test_registered_under_backstages_id() -> None:
    assert BUILTIN_PROVIDERS["oauth2Proxy"] == "wsgiauth.providers.oauth2_proxy:module"
    assert oauth2_proxy.module.provider_id == "oauth2Proxy"
    assert set(oauth2_proxy.module.resolvers) == {
        "forwardedUserMatchingUserEntityName",
        "forwardedPreferredUsernameMatchingUserEntityName",
    }


# -- /refresh through the auth app -----------------------------------------------------------


def test_refresh_signs_in_the_forwarded_user(tmp_path, idp_key) -> None:
    app = proxy_app(tmp_path)
    token = id_token(idp_key, email="jane@example.com")
    headers = {**PROXY_HEADERS, "X-OAUTH2-PROXY-ID-TOKEN": f"Bearer {token}"}
    # Like Backstage's proxy refresh (and guest), no X-Requested-With is needed.
    body = app.get(REFRESH, headers=headers).json
    assert set(body) == {"profile", "providerInfo", "backstageIdentity"}
    assert body["profile"] == {"email": "jane@example.com", "displayName": "jane.doe"}
    assert body["providerInfo"] == {"accessToken": token}
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


def test_without_an_id_token_the_access_token_is_empty(tmp_path) -> None:
    app = proxy_app(tmp_path)
    body = app.get(REFRESH, headers={"X-Forwarded-User": "jane"}).json
    assert body["providerInfo"] == {"accessToken": ""}
    # displayName falls back to the user; no email header, no email.
    assert body["profile"] == {"displayName": "jane"}


def test_post_is_answered_too(tmp_path) -> None:
    app = proxy_app(tmp_path)
    body = app.post(REFRESH, headers=PROXY_HEADERS).json
    assert body["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_preferred_username_resolver(tmp_path) -> None:
    app = proxy_app(tmp_path, "forwardedPreferredUsernameMatchingUserEntityName")
    identity = app.get(REFRESH, headers=PROXY_HEADERS).json["backstageIdentity"]["identity"]
    assert identity["userEntityRef"] == "user:default/jane.doe"


def test_common_email_resolver_reads_the_forwarded_email(tmp_path) -> None:
    app = proxy_app(tmp_path, "emailMatchingUserEntityProfileEmail")
    headers = {"X-Forwarded-User": "someone-else", "X-Forwarded-Email": "jane@example.com"}
    identity = app.get(REFRESH, headers=headers).json["backstageIdentity"]["identity"]
    assert identity["userEntityRef"] == "user:default/jane"


def test_user_not_in_the_catalog_is_404(tmp_path) -> None:
    app = proxy_app(tmp_path)
    response = app.get(REFRESH, headers={"X-Forwarded-User": "mallory"}, status=404)
    assert response.json["error"]["name"] == "NotFoundError"


def test_dangerous_fallback_signs_in_without_a_catalog_user(tmp_path) -> None:
    app = proxy_app(tmp_path, dangerouslyAllowSignInWithoutUserInCatalog=True)
    identity = app.get(REFRESH, headers={"X-Forwarded-User": "mallory"}).json["backstageIdentity"][
        "identity"
    ]
    assert identity["userEntityRef"] == "user:default/mallory"
    assert identity["ownershipEntityRefs"] == ["user:default/mallory"]


@pytest.mark.parametrize("route", ["start", "handler/frame"])
def test_no_popup(tmp_path, route) -> None:
    response = proxy_app(tmp_path).get(f"/api/auth/oauth2Proxy/{route}", status=501)
    assert response.json["error"]["name"] == "NotImplementedError"


# -- refusals (each one fails if its check is removed) ---------------------------------------


def test_refuses_a_request_that_did_not_come_through_the_proxy(tmp_path) -> None:
    app = proxy_app(tmp_path, "emailMatchingUserEntityProfileEmail")
    refusal(app.get(REFRESH, status=401), oauth2_proxy.NOT_THROUGH_PROXY)
    # Empty headers prove nothing either.
    empty = {"X-Forwarded-User": "", "X-Forwarded-Email": ""}
    refusal(app.get(REFRESH, headers=empty, status=401), oauth2_proxy.NOT_THROUGH_PROXY)


def test_refuses_an_id_token_that_does_not_decode(tmp_path) -> None:
    app = proxy_app(tmp_path)
    headers = {**PROXY_HEADERS, "X-OAUTH2-PROXY-ID-TOKEN": "Bearer not.a-jwt.at-all"}
    refusal(app.get(REFRESH, headers=headers, status=401), "Authentication failed")


def test_forwarded_user_resolver_refuses_a_missing_user(tmp_path) -> None:
    app = proxy_app(tmp_path)
    headers = {"X-Forwarded-Email": "jane@example.com"}
    refusal(app.get(REFRESH, headers=headers, status=401), "Request did not contain a user")


def test_preferred_username_resolver_refuses_a_missing_preferred_username(tmp_path) -> None:
    app = proxy_app(tmp_path, "forwardedPreferredUsernameMatchingUserEntityName")
    headers = {"X-Forwarded-User": "jane"}
    response = app.get(REFRESH, headers=headers, status=401)
    refusal(response, "Request did not contain a preferred username")


# -- the authenticator, as Backstage's ----------------------------------------------------------


def authenticate(headers: dict[str, str]) -> Any:
    request = Request.blank("/refresh", headers=headers)
    authenticator = OAuth2ProxyAuthenticator.from_config(
        Config.from_dict({}),
        http=None,  # type: ignore[arg-type]
    )
    return authenticator, authenticator.authenticate(request)


def test_the_id_token_is_decoded_without_verification(idp_key) -> None:
    """As Backstage (jose ``decodeJwt``): any signer, even an expired token, is read."""
    forged = ec.generate_private_key(ec.SECP256R1())
    token = id_token(forged, exp=1, groups=["admins"])
    _, result = authenticate({**PROXY_HEADERS, "X-OAUTH2-PROXY-ID-TOKEN": f"bearer  {token}"})
    proxy: OAuth2ProxyResult = result.result
    assert proxy.access_token == token
    assert proxy.full_profile["groups"] == ["admins"]
    assert proxy.full_profile["exp"] == 1


@pytest.mark.parametrize(
    "value", ["Token abc.def.ghi", "Bearer", "Bearer a b", "abc.def.ghi"], ids=str
)
def test_a_header_that_is_not_bearer_jwt_is_ignored(value) -> None:
    """Backstage's ``/^Bearer[ ]+(\\S+)$/i``: anything else is no token at all."""
    _, result = authenticate({**PROXY_HEADERS, "X-OAUTH2-PROXY-ID-TOKEN": value})
    assert result.result.access_token == ""
    assert result.result.full_profile == {}
    assert result.provider_info == {"accessToken": ""}


def test_every_header_reaches_the_resolver() -> None:
    authenticator, result = authenticate({**PROXY_HEADERS, "X-Forwarded-Groups": "a,b"})
    assert result.result.get_header("X-FORWARDED-GROUPS") == "a,b"
    assert result.result.headers["x-forwarded-user"] == "jane"
    assert result.result.get_header("x-missing") is None
    profile = authenticator.default_profile_transform(result)
    assert profile == ProfileInfo(email="jane@example.com", display_name="jane.doe")


# -- config ------------------------------------------------------------------------------------


def test_unknown_key_fails_at_startup(tmp_path) -> None:
    # The old documentation's env level is not a key of a proxy provider.
    resolvers = [{"resolver": "forwardedUserMatchingUserEntityName"}]
    providers = {"oauth2Proxy": {"development": {}, "signIn": {"resolvers": resolvers}}}
    with pytest.raises(ConfigError, match=r"auth\.providers\.oauth2Proxy\.development") as info:
        build_app(tmp_path, providers)
    assert "unknown key (known: signIn)" in str(info.value)


def test_a_resolver_is_required(tmp_path) -> None:
    with pytest.raises(ConfigError, match=r"auth\.providers\.oauth2Proxy\.signIn"):
        build_app(tmp_path, {"oauth2Proxy": {}})


#: From https://backstage.io/docs/auth/oauth2-proxy/provider (Configuration).
BACKSTAGE_DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    oauth2Proxy:
      signIn:
        resolvers:
          # See https://backstage.io/docs/auth/oauth2-proxy/provider#resolvers for more resolvers
          - resolver: forwardedUserMatchingUserEntityName
"""


def test_backstages_documented_config_passes_check_config(tmp_path) -> None:
    assert check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG) == []
    fuller = BACKSTAGE_DOCS_CONFIG.replace(
        "          - resolver: forwardedUserMatchingUserEntityName",
        "          - resolver: emailMatchingUserEntityProfileEmail\n"
        "          - resolver: emailLocalPartMatchingUserEntityName\n"
        "          - resolver: forwardedUserMatchingUserEntityName",
    )
    assert check_config_of(tmp_path, fuller) == []


def test_check_config_names_a_misspelt_key(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, BACKSTAGE_DOCS_CONFIG.replace("      signIn:", "      sigIn: {}\n      signIn:")
    )
    assert [error.path for error in errors] == ["auth.providers.oauth2Proxy.sigIn"]
