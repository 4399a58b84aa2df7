"""The ``onelogin`` provider: transform, resolver, the popup flow against a fake OneLogin,
check-config.
"""

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
from wsgiauth.errors import NotFoundError
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import ProfileInfo
from wsgiauth.providers.onelogin import OneLoginAuthenticator
from wsgiauth.providers.onelogin import module
from wsgiauth.sign_in import SignInInfo

JANE = user_entity("jane", email="jane@acme.org")
ME = {
    "sub": 50001,
    "preferred_username": "jane",
    "name": "Jane Doe",
    "given_name": "Jane",
    "family_name": "Doe",
    "email": "jane@acme.org",
}
AUTHENTICATOR = OneLoginAuthenticator(
    credentials=ClientCredentials("client-id", "secret", "client_secret_post"),
    callback_url="http://localhost:7007/api/auth/onelogin/handler/frame",
    issuer="https://acme.onelogin.com/oidc/2",
    http=None,  # type: ignore[arg-type]  # the transform makes no call
)


def result(me: dict[str, Any], id_token: str | None = None) -> OAuthAuthenticatorResult:
    profile = {
        "id": str(me.get("sub")),
        "username": me.get("preferred_username"),
        "displayName": me.get("name"),
        "emails": [{"value": me.get("email")}],
        "_json": me,
    }
    return OAuthAuthenticatorResult(
        full_profile=profile, session=OAuthSession(access_token="at", id_token=id_token)
    )


def unsigned(**claims: Any) -> str:
    return jwt.encode(claims, "k" * 32, algorithm="HS256")


# -- the profile transform --------------------------------------------------------------------


def test_profile_from_me_and_the_picture_from_the_id_token() -> None:
    profile = AUTHENTICATOR.default_profile_transform(result(ME, unsigned(picture="https://p")))
    assert profile == ProfileInfo(
        email="jane@acme.org", display_name="Jane Doe", picture="https://p"
    )


def test_display_name_falls_back_to_username_then_id() -> None:
    assert AUTHENTICATOR.default_profile_transform(result({**ME, "name": None})).display_name == (
        "jane"
    )
    only_sub = result({"sub": 50001})
    assert AUTHENTICATOR.default_profile_transform(only_sub).display_name == "50001"


def test_unverified_email_is_dropped() -> None:
    unverified = result({**ME, "email_verified": False}, unsigned(email="jane@acme.org"))
    assert AUTHENTICATOR.default_profile_transform(unverified).email is None


def test_email_from_the_id_token_when_me_has_none() -> None:
    without = result({**ME, "email": None}, unsigned(email="jane@acme.org"))
    assert AUTHENTICATOR.default_profile_transform(without).email == "jane@acme.org"


def test_an_undecodable_id_token_fails() -> None:
    with pytest.raises(AuthenticationError, match="Failed to parse id token"):
        AUTHENTICATOR.default_profile_transform(result(ME, "garbage"))


# -- the resolver -----------------------------------------------------------------------------


def test_username_resolver_matches_the_entity_name() -> None:
    resolver = module.resolvers["usernameMatchingUserEntityName"](None)
    context = CatalogContext(found=False)
    with pytest.raises(NotFoundError):
        resolver(SignInInfo(profile=ProfileInfo(), result=result(ME)), context)  # type: ignore[arg-type]
    assert context.queries == [{"entityRef": {"name": "jane"}}]


def test_username_resolver_needs_a_username() -> None:
    resolver = module.resolvers["usernameMatchingUserEntityName"](None)
    info = SignInInfo(profile=ProfileInfo(), result=result({"sub": 1}))
    with pytest.raises(AuthenticationError, match="username"):
        resolver(info, CatalogContext(found=False))  # type: ignore[arg-type]


# -- the popup flow against a fake OneLogin ---------------------------------------------------


@pytest.fixture
def onelogin():
    fake = LoopbackIdp(
        authorize_path="/oidc/2/auth",
        token_path="/oidc/2/token",
        apis={"/oidc/2/me": lambda grant, request: ME},
        oidc_issuer_path="/oidc/2",  # ID tokens in token responses
    )
    fake.user = {"id_token": {"sub": "50001", "picture": "https://acme.onelogin.com/jane.png"}}
    with fake.serving():
        yield fake


def onelogin_app(tmp_path, fake, resolver="usernameMatchingUserEntityName"):
    env = {
        "clientId": fake.client_id,
        "clientSecret": fake.client_secret,
        "issuer": f"{fake.base_url}/oidc/2",
        "signIn": {"resolvers": [{"resolver": resolver}]},
    }
    return build_app(tmp_path, {"onelogin": {"development": env}}, users=[JANE])


def test_a_full_popup_flow(tmp_path, onelogin) -> None:
    app = onelogin_app(tmp_path, onelogin)
    signed_in = sign_in(app, onelogin, "onelogin", scope="email profile")

    url = urlsplit(signed_in.authorize_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{onelogin.base_url}/oidc/2/auth"
    query = query_of(signed_in.authorize_url)
    assert set(query) == {"client_id", "response_type", "redirect_uri", "scope", "state"}
    assert query["scope"] == "openid"  # whatever was requested, as Backstage
    assert query["redirect_uri"] == "http://localhost:7007/api/auth/onelogin/handler/frame"

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": "https://acme.onelogin.com/jane.png",
    }
    info = response["providerInfo"]
    assert info["accessToken"] and info["idToken"] and info["expiresInSeconds"] == 3600
    assert info["scope"] == "openid"
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    token_form = next(f for m, p, f, _ in onelogin.requests if p == "/oidc/2/token")
    assert token_form["client_secret"] == onelogin.client_secret  # POST, as Backstage's docs
    me = next(h for m, p, _, h in onelogin.requests if p == "/oidc/2/me")
    assert me["Authorization"].startswith("Bearer ")

    refreshed = refresh(app, "onelogin").json
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]
    refresh_form = [f for m, p, f, _ in onelogin.requests if f.get("grant_type") == "refresh_token"]
    assert refresh_form[-1]["scope"] == "openid"

    logout(app, "onelogin")
    refresh(app, "onelogin", status=401)


def test_the_common_email_resolver(tmp_path, onelogin) -> None:
    app = onelogin_app(tmp_path, onelogin, resolver="emailMatchingUserEntityProfileEmail")
    response = sign_in(app, onelogin, "onelogin").message["response"]
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, onelogin, fault, name, message):
    error = fault_error(onelogin_app(tmp_path, onelogin), onelogin, "onelogin", fault)
    assert error["name"] == name
    assert message in error["message"]


# -- config -----------------------------------------------------------------------------------

#: From https://backstage.io/docs/auth/onelogin/provider.
DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    onelogin:
      development:
        clientId: ${AUTH_ONELOGIN_CLIENT_ID}
        clientSecret: ${AUTH_ONELOGIN_CLIENT_SECRET}
        issuer: https://<company>.onelogin.com/oidc/2
        ## uncomment to set lifespan of user session
        # sessionDuration: { hours: 24 }
        signIn:
          resolvers:
            # See https://backstage.io/docs/auth/onelogin/provider#resolvers for more resolvers
            - resolver: usernameMatchingUserEntityName
"""
ENVIRON = {"AUTH_ONELOGIN_CLIENT_ID": "client-id", "AUTH_ONELOGIN_CLIENT_SECRET": "secret"}


def test_the_documented_config_passes_check_config(tmp_path) -> None:
    assert (
        check_config_of(tmp_path, DOCS_CONFIG.replace("<company>", "acme"), environ=ENVIRON) == []
    )


def test_a_misspelt_key_is_named_by_check_config(tmp_path) -> None:
    errors = check_config_of(
        tmp_path,
        DOCS_CONFIG.replace("<company>", "acme").replace("issuer:", "issuerUrl:"),
        environ=ENVIRON,
    )
    assert [error.path for error in errors] == ["auth.providers.onelogin.development.issuerUrl"]
