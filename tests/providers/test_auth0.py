"""The ``auth0`` provider: profile, ID-token checks, the popup flow against a fake Auth0
tenant (reached through the HttpClient's reroute seam, as ``domain`` is a host name
Backstage puts after ``https://``), logout, check-config.
"""

from __future__ import annotations

import time
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from tests.conftest import APP_ORIGIN
from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.loopback_idp import query_of
from tests.providers.popup import FAULTS
from tests.providers.popup import XRW
from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import fault_error
from tests.providers.popup import logout
from tests.providers.popup import refresh
from tests.providers.popup import sign_in
from tests.providers.popup import user_entity
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ConfigError
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import ProfileInfo
from wsgiauth.providers.auth0 import Auth0Authenticator
from wsgiauth.providers.auth0 import auth0_profile
from wsgiauth.providers.auth0 import module

DOMAIN = "acme.eu.auth0.com"
ISSUER = f"https://{DOMAIN}/"
JANE = user_entity("jane", email="jane@acme.org")
USERINFO = {
    "sub": "auth0|123",
    "name": "Jane Doe",
    "nickname": "jane",
    "given_name": "Jane",
    "family_name": "Doe",
    "picture": "https://s.gravatar.com/jane.png",
    "email": "jane@acme.org",
    "email_verified": True,
}
AUTHENTICATOR = Auth0Authenticator(
    credentials=ClientCredentials("client-id", "secret", "client_secret_post"),
    callback_url="http://localhost:7007/api/auth/auth0/handler/frame",
    domain=DOMAIN,
    http=None,  # type: ignore[arg-type]  # the transform and the checks make no call
)


def token(alg: str = "HS256", **claims: Any) -> str:
    now = int(time.time())
    payload = {"iss": ISSUER, "sub": "auth0|123", "aud": "client-id", "iat": now, "exp": now + 60}
    return jwt.encode({**payload, **claims}, "k" * 64, algorithm=alg)


def transform(userinfo: dict[str, Any], id_token: str | None = None) -> ProfileInfo:
    result = OAuthAuthenticatorResult(
        full_profile=auth0_profile(userinfo),
        session=OAuthSession(access_token="at", id_token=id_token),
    )
    return AUTHENTICATOR.default_profile_transform(result)


# -- the passport profile and Backstage's transform -------------------------------------------


def test_passport_auth0_profile() -> None:
    profile = auth0_profile(USERINFO)
    assert profile["id"] == profile["user_id"] == "auth0|123"
    assert profile["provider"] == "auth0"
    assert profile["displayName"] == "Jane Doe"
    assert profile["emails"] == [{"value": "jane@acme.org"}]
    assert profile["nickname"] == "jane" and profile["_json"] == USERINFO


def test_the_picture_comes_from_the_id_token_only() -> None:
    # passport's transform reads avatarUrl/photos/photo; Auth0's profile has "picture".
    assert transform(USERINFO).picture is None
    assert transform(USERINFO, token(picture="https://id/p.png")) == ProfileInfo(
        email="jane@acme.org", display_name="Jane Doe", picture="https://id/p.png"
    )


def test_an_unverified_email_is_dropped() -> None:
    profile = transform({**USERINFO, "email_verified": False}, token(email="jane@acme.org"))
    assert profile.email is None


def test_display_name_falls_back_to_the_id() -> None:
    assert transform({"sub": "auth0|123"}).display_name == "auth0|123"


# -- ID-token checks (passport-auth0 lib/jwt.js) ----------------------------------------------


def test_a_good_id_token_passes() -> None:
    assert AUTHENTICATOR.check_id_token(token(nonce="n"), nonce="n")["sub"] == "auth0|123"


@pytest.mark.parametrize(
    ("claims", "reason"),
    [
        pytest.param({"iss": "https://evil.auth0.com/"}, "issuer", id="issuer"),
        pytest.param({"aud": "other"}, "Audience", id="audience"),
        pytest.param({"exp": 1}, "expired", id="expired"),
        pytest.param({"nonce": "other"}, "nonce", id="nonce"),
        pytest.param({"nonce": None}, "nonce", id="no-nonce"),
        pytest.param({"aud": ["client-id", "api"], "azp": "other"}, "azp", id="azp"),
    ],
)
def test_a_bad_id_token_fails(claims: dict[str, Any], reason: str) -> None:
    claims = {"nonce": "n", **claims}
    with pytest.raises(AuthenticationError, match=reason):
        AUTHENTICATOR.check_id_token(token(**{k: v for k, v in claims.items() if v}), nonce="n")


def test_an_id_token_must_be_rs256_or_hs256() -> None:
    with pytest.raises(AuthenticationError, match="RS256 or HS256"):
        AUTHENTICATOR.check_id_token(token("HS512", nonce="n"), nonce="n")


def test_only_the_common_resolvers() -> None:
    assert module.resolvers == {}


# -- the popup flow against a fake Auth0 ------------------------------------------------------


@pytest.fixture
def auth0():
    fake = LoopbackIdp(
        authorize_path="/authorize",
        token_path="/oauth/token",
        apis={"/userinfo": lambda grant, request: USERINFO},
        oidc_issuer_path="",  # ID tokens in token responses
    )
    fake.user = {"id_token": {"iss": ISSUER, "sub": "auth0|123", "picture": "https://id/p.png"}}
    with fake.serving():
        yield fake


def auth0_app(tmp_path, fake, **extra):
    env = {
        "clientId": fake.client_id,
        "clientSecret": fake.client_secret,
        "domain": DOMAIN,
        "signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]},
        **extra,
    }
    return build_app(
        tmp_path,
        {"auth0": {"development": env}},
        users=[JANE],
        reroute={f"https://{DOMAIN}": fake.base_url},
    )


def test_a_full_popup_flow(tmp_path, auth0) -> None:
    app = auth0_app(
        tmp_path,
        auth0,
        audience="https://api.acme.org",
        connection="github",
        connectionScope="read:org",
        organization="org_1",
        federatedLogout=True,
    )
    signed_in = sign_in(app, auth0, "auth0", scope="openid profile email offline_access")

    url = urlsplit(signed_in.authorize_url)
    assert (url.scheme, url.netloc, url.path) == ("https", DOMAIN, "/authorize")
    query = query_of(signed_in.authorize_url)
    assert query["client_id"] == auth0.client_id
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == "http://localhost:7007/api/auth/auth0/handler/frame"
    assert query["scope"] == "openid profile email offline_access"
    assert (query["audience"], query["connection"], query["connection_scope"]) == (
        "https://api.acme.org",
        "github",
        "read:org",
    )
    assert (query["prompt"], query["organization"]) == ("consent", "org_1")
    assert query["nonce"] and query["code_challenge_method"] == "S256"

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": "https://id/p.png",
    }
    info = response["providerInfo"]
    assert info["accessToken"] and info["idToken"] and info["expiresInSeconds"] == 3600
    assert info["scope"] == "openid profile email offline_access"
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    token_form = next(f for m, p, f, _ in auth0.requests if p == "/oauth/token")
    assert token_form["client_secret"] == auth0.client_secret  # client_secret_post

    refreshed = refresh(app, "auth0").json
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]

    out = app.post(
        "/api/auth/auth0/logout?env=development", headers={**XRW, "Origin": APP_ORIGIN}
    ).json
    assert out["logoutUrl"] == (
        f"https://{DOMAIN}/v2/logout?federated=&client_id={auth0.client_id}"
        "&returnTo=http%3A%2F%2Flocalhost%3A3000"
    )
    refresh(app, "auth0", status=401)


def test_start_passes_on_organization_invitation_and_hints(tmp_path, auth0) -> None:
    app = auth0_app(tmp_path, auth0, prompt="auto")
    start = app.get(
        "/api/auth/auth0/start?env=development&organization=org_2&invitation=inv"
        "&screen_hint=signup&login_hint=jane%40acme.org",
        status=302,
    )
    query = query_of(start.location)
    assert (query["organization"], query["invitation"]) == ("org_2", "inv")
    assert (query["screen_hint"], query["login_hint"]) == ("signup", "jane@acme.org")
    assert "prompt" not in query and "connection_scope" not in query


@pytest.mark.parametrize("name", ["organization", "invitation", "screen_hint", "login_hint"])
def test_start_caps_what_it_passes_on(tmp_path, auth0, name) -> None:
    """They reach the Location header: past 256 characters, 400 (hardening, issue 8)."""
    app = auth0_app(tmp_path, auth0)
    app.get(f"/api/auth/auth0/start?env=development&{name}={'x' * 256}", status=302)
    answer = app.get(f"/api/auth/auth0/start?env=development&{name}={'x' * 257}", status=400)
    assert answer.json["error"]["message"] == (
        f"Query parameter '{name}' is too long, at most 256 characters"
    )


def test_start_refuses_another_organization(tmp_path, auth0) -> None:
    app = auth0_app(tmp_path, auth0, organization="org_1")
    answer = app.get("/api/auth/auth0/start?env=development&organization=org_2", status=400)
    assert "Organization mismatch" in answer.text


def test_an_id_token_from_another_flow_is_refused(tmp_path, auth0) -> None:
    auth0.user = {"id_token": {**auth0.user["id_token"], "nonce": "replayed"}}
    app = auth0_app(tmp_path, auth0)
    error = sign_in(app, auth0, "auth0", scope="openid").message["error"]
    assert error["name"] == "AuthenticationError" and "nonce" in error["message"]


def test_logout_without_federation(tmp_path, auth0) -> None:
    app = auth0_app(tmp_path, auth0)
    sign_in(app, auth0, "auth0", scope="openid")
    assert logout(app, "auth0").json["logoutUrl"] == (
        f"https://{DOMAIN}/v2/logout?client_id={auth0.client_id}"
    )


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, auth0, fault, name, message) -> None:
    error = fault_error(
        auth0_app(tmp_path, auth0), auth0, "auth0", fault, query="env=development&scope=openid"
    )
    assert error["name"] == name
    assert message in error["message"]


# -- config -----------------------------------------------------------------------------------


def test_domain_is_a_host_name(tmp_path) -> None:
    env = {"clientId": "id", "clientSecret": "s", "domain": f"https://{DOMAIN}"}
    with pytest.raises(ConfigError, match="host name") as caught:
        build_app(tmp_path, {"auth0": {"development": env}})
    assert caught.value.path == "auth.providers.auth0.development.domain"


#: From https://backstage.io/docs/auth/auth0/provider.
DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    auth0:
      development:
        clientId: ${AUTH_AUTH0_CLIENT_ID}
        clientSecret: ${AUTH_AUTH0_CLIENT_SECRET}
        domain: ${AUTH_AUTH0_DOMAIN_ID}
        audience: ${AUTH_AUTH0_AUDIENCE}
        connection: ${AUTH_AUTH0_CONNECTION}
        connectionScope: ${AUTH_AUTH0_CONNECTION_SCOPE}
        ## uncomment to set lifespan of user session
        # sessionDuration: { hours: 24 }
  session:
    secret: ${AUTH_SESSION_SECRET}
"""
ENVIRON = {
    "AUTH_AUTH0_CLIENT_ID": "client-id",
    "AUTH_AUTH0_CLIENT_SECRET": "secret",
    "AUTH_AUTH0_DOMAIN_ID": DOMAIN,
    "AUTH_AUTH0_AUDIENCE": "https://api.acme.org",
    "AUTH_AUTH0_CONNECTION": "github",
    "AUTH_AUTH0_CONNECTION_SCOPE": "read:org",
    "AUTH_SESSION_SECRET": "supersecret",
}


def test_the_documented_config_passes_check_config(tmp_path) -> None:
    assert check_config_of(tmp_path, DOCS_CONFIG, environ=ENVIRON) == []


def test_a_misspelt_key_is_named_by_check_config(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, DOCS_CONFIG.replace("connectionScope:", "connectionScopes:"), environ=ENVIRON
    )
    assert [error.path for error in errors] == ["auth.providers.auth0.development.connectionScopes"]
