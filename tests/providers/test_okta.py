"""The ``okta`` provider: transform, resolver, the popup flow against a fake Okta, check-config."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.loopback_idp import query_of
from tests.providers.popup import FAULTS
from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import fault_error
from tests.providers.popup import logout
from tests.providers.popup import refresh
from tests.providers.popup import sign_in
from tests.providers.popup import user_entity
from tests.providers.resolver_context import CatalogContext
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ConfigError
from wsgiauth.errors import NotFoundError
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import ProfileInfo
from wsgiauth.providers.okta import OktaAuthenticator
from wsgiauth.providers.okta import module
from wsgiauth.sign_in import SignInInfo

ANNOTATION = "okta.com/email"
JANE = user_entity("jane", email="jane@acme.org", **{ANNOTATION: "jane@acme.org"})
USERINFO = {
    "sub": "00u1",
    "name": "Jane Doe",
    "preferred_username": "jane@acme.org",
    "given_name": "Jane",
    "family_name": "Doe",
    "email": "jane@acme.org",
    "email_verified": True,
}


def unsigned(**claims: Any) -> str:
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


def result(userinfo: dict[str, Any], id_token: str | None = None) -> OAuthAuthenticatorResult:
    """What ``authenticate`` returns for a userinfo answer."""
    profile = {
        "provider": "okta",
        "id": userinfo.get("sub"),
        "displayName": userinfo.get("name"),
        "username": userinfo.get("preferred_username"),
        "emails": [{"value": userinfo.get("email")}],
        "_json": userinfo,
    }
    return OAuthAuthenticatorResult(
        full_profile=profile, session=OAuthSession(access_token="at", id_token=id_token)
    )


AUTHENTICATOR = OktaAuthenticator(
    credentials=ClientCredentials(client_id="id", client_secret="secret"),
    callback_url="http://localhost:7007/api/auth/okta/handler/frame",
    base_url="https://company.okta.com/oauth2/v1",
    http=None,  # type: ignore[arg-type]  # the transform makes no call
)


def transform(userinfo: dict[str, Any], id_token: str | None = None) -> ProfileInfo:
    return AUTHENTICATOR.default_profile_transform(result(userinfo, id_token))


# -- the profile transform (PassportHelpers.transformProfile over the okta profile) ---------


def test_profile_from_userinfo_and_picture_from_the_id_token() -> None:
    token = unsigned(sub="00u1", picture="https://okta.example/jane.png")
    assert transform(USERINFO, token) == ProfileInfo(
        email="jane@acme.org", display_name="Jane Doe", picture="https://okta.example/jane.png"
    )


def test_unverified_email_is_dropped_and_not_taken_from_the_id_token() -> None:
    token = unsigned(email="jane@acme.org", email_verified=True)
    profile = transform({**USERINFO, "email_verified": False}, token)
    assert profile.email is None


def test_missing_fields_come_from_the_id_token() -> None:
    token = unsigned(email="jane@acme.org", name="Jane From Token")
    profile = transform({"sub": "00u1"}, token)
    assert profile == ProfileInfo(email="jane@acme.org", display_name="00u1")
    assert transform({}, token).display_name == "Jane From Token"


def test_display_name_falls_back_to_username_then_id() -> None:
    assert transform({"sub": "00u1", "preferred_username": "jane"}).display_name == "jane"
    assert transform({"sub": "00u1"}).display_name == "00u1"


def test_an_undecodable_id_token_fails() -> None:
    with pytest.raises(AuthenticationError, match="Failed to parse id token"):
        transform(USERINFO, "not-a-jwt")


# -- the resolver ---------------------------------------------------------------------------


def test_resolver_matches_the_okta_annotation() -> None:
    resolver = module.resolvers["emailMatchingUserEntityAnnotation"](None)
    context = CatalogContext(found=False)
    info = SignInInfo(profile=ProfileInfo(email="jane@acme.org"), result=result(USERINFO))
    with pytest.raises(NotFoundError):
        resolver(info, context)  # type: ignore[arg-type]
    assert context.queries == [{"annotations": {ANNOTATION: "jane@acme.org"}}]


def test_resolver_needs_an_email() -> None:
    resolver = module.resolvers["emailMatchingUserEntityAnnotation"](None)
    info = SignInInfo(profile=ProfileInfo(), result=result({}))
    with pytest.raises(AuthenticationError, match="email"):
        resolver(info, CatalogContext(found=False))  # type: ignore[arg-type]


# -- the popup flow against a fake Okta -------------------------------------------------------


@pytest.fixture
def okta():
    """A fake Okta custom authorization server ``default``, at the documented paths."""
    fake = LoopbackIdp(
        authorize_path="/oauth2/default/v1/authorize",
        token_path="/oauth2/default/v1/token",
        apis={"/oauth2/default/v1/userinfo": lambda grant, request: grant.user["userinfo"]},
        oidc_issuer_path="/oauth2/default",  # Okta's issuer; ID tokens in token responses
    )
    fake.user = {
        "userinfo": USERINFO,
        "id_token": {"sub": "00u1", "picture": "https://okta.example/jane.png"},
    }
    with fake.serving():
        yield fake


def okta_app(tmp_path, fake, **extra):
    env = {
        "clientId": fake.client_id,
        "clientSecret": fake.client_secret,
        "audience": fake.base_url,
        "authServerId": "default",
        "signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityAnnotation"}]},
        **extra,
    }
    return build_app(tmp_path, {"okta": {"development": env}}, users=[JANE])


def test_a_full_popup_flow(tmp_path, okta) -> None:
    app = okta_app(tmp_path, okta, idp="0oa-idp", additionalScopes=["groups"])
    signed_in = sign_in(app, okta, "okta", scope="okta.users.read.self")

    url = urlsplit(signed_in.authorize_url)
    assert (
        f"{url.scheme}://{url.netloc}{url.path}" == f"{okta.base_url}/oauth2/default/v1/authorize"
    )
    query = query_of(signed_in.authorize_url)
    assert query["client_id"] == okta.client_id
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == "http://localhost:7007/api/auth/okta/handler/frame"
    assert query["idp"] == "0oa-idp"
    assert query["scope"].split() == [
        "okta.users.read.self",
        "openid",
        "email",
        "profile",
        "offline_access",
        "groups",
    ]
    assert query["code_challenge_method"] == "S256"
    assert "prompt" not in query and "nonce" not in query

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": "https://okta.example/jane.png",
    }
    info = response["providerInfo"]
    assert info["accessToken"] and info["idToken"] and info["expiresInSeconds"] == 3600
    assert info["scope"] == query["scope"]  # as Okta answered it (not persisted)
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"

    methods = {(method, path) for method, path, _, _ in okta.requests}
    assert ("POST", "/oauth2/default/v1/userinfo") in methods  # as passport-okta-oauth
    token_headers = next(h for m, p, _, h in okta.requests if p.endswith("/v1/token"))
    assert token_headers["Authorization"].startswith("Basic ")

    refreshed = refresh(app, "okta").json
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]
    refresh_form = [f for m, p, f, _ in okta.requests if f.get("grant_type") == "refresh_token"]
    assert refresh_form[-1]["scope"].split() == [  # required + additional, as Backstage
        "openid",
        "email",
        "profile",
        "offline_access",
        "groups",
    ]

    logout(app, "okta")
    refresh(app, "okta", status=401)


def test_the_org_authorization_server_without_auth_server_id(tmp_path) -> None:
    fake = LoopbackIdp(
        authorize_path="/oauth2/v1/authorize",
        token_path="/oauth2/v1/token",
        apis={"/oauth2/v1/userinfo": lambda grant, request: USERINFO},
    )
    with fake.serving():
        env = {
            "clientId": fake.client_id,
            "clientSecret": fake.client_secret,
            "audience": fake.base_url,
        }
        app = build_app(tmp_path, {"okta": {"development": env}})
        signed_in = sign_in(app, fake, "okta")
        assert signed_in.authorize_url.startswith(f"{fake.base_url}/oauth2/v1/authorize?")
        response = signed_in.message["response"]
        assert response["profile"] == {"email": "jane@acme.org", "displayName": "Jane Doe"}
        assert "backstageIdentity" not in response  # no resolver configured


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, okta, fault, name, message) -> None:
    error = fault_error(okta_app(tmp_path, okta), okta, "okta", fault)
    assert error["name"] == name
    assert message in error["message"]


def test_a_user_missing_from_the_catalog_is_an_error_in_the_popup(tmp_path, okta) -> None:
    okta.user = {**okta.user, "userinfo": {**USERINFO, "email": "joe@acme.org"}}
    app = okta_app(tmp_path, okta)
    error = sign_in(app, okta, "okta").message["error"]
    assert error["name"] == "NotFoundError"


# -- config -----------------------------------------------------------------------------------


def test_audience_must_be_a_url(tmp_path) -> None:
    env = {"clientId": "id", "clientSecret": "s", "audience": "company.okta.com"}
    with pytest.raises(ConfigError, match="not a valid URL") as caught:
        build_app(tmp_path, {"okta": {"development": env}})
    assert caught.value.path == "auth.providers.okta.development.audience"


def test_audience_defaults_to_okta_com(tmp_path) -> None:
    app = build_app(tmp_path, {"okta": {"development": {"clientId": "id", "clientSecret": "s"}}})
    start = app.get("/api/auth/okta/start?env=development", status=302)
    assert start.location.startswith("https://okta.com/oauth2/v1/authorize?")


#: From https://backstage.io/docs/auth/okta/provider (``additionalScopes`` and
#: ``signIn`` as the module's config schema has them).
DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    okta:
      development:
        clientId: ${AUTH_OKTA_CLIENT_ID}
        clientSecret: ${AUTH_OKTA_CLIENT_SECRET}
        audience: ${AUTH_OKTA_DOMAIN}
        authServerId: ${AUTH_OKTA_AUTH_SERVER_ID} # Optional
        idp: ${AUTH_OKTA_IDP} # Optional
        additionalScopes: ${AUTH_OKTA_ADDITIONAL_SCOPES} # Optional
        signIn:
          resolvers:
            - resolver: emailMatchingUserEntityAnnotation
"""
ENVIRON = {
    "AUTH_OKTA_CLIENT_ID": "0oa1",
    "AUTH_OKTA_CLIENT_SECRET": "secret",
    "AUTH_OKTA_DOMAIN": "https://company.okta.com",
    "AUTH_OKTA_AUTH_SERVER_ID": "default",
    "AUTH_OKTA_IDP": "0oaulob4BFVa4zQvt0g3",
    "AUTH_OKTA_ADDITIONAL_SCOPES": "groups",
}


def test_the_documented_config_passes_check_config(tmp_path) -> None:
    assert check_config_of(tmp_path, DOCS_CONFIG, environ=ENVIRON) == []


def test_a_misspelt_key_is_named_by_check_config(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, DOCS_CONFIG.replace("authServerId:", "authServerID:"), environ=ENVIRON
    )
    assert [error.path for error in errors] == ["auth.providers.okta.development.authServerID"]
