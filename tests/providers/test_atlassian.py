"""The ``atlassian`` provider: profile, resolver, the popup flow against a fake Atlassian
Cloud (auth.atlassian.com and api.atlassian.com rerouted to loopback), and check-config."""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest
import yaml

from tests.catalog.conftest import catalog  # noqa: F401
from tests.catalog.conftest import context  # noqa: F401
from tests.catalog.conftest import issuer  # noqa: F401
from tests.catalog.fakes import claims_of
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
from wsgiauth.errors import AuthenticationError
from wsgiauth.http import create_http_client
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import ProfileInfo
from wsgiauth.providers.atlassian import AtlassianAuthenticator
from wsgiauth.providers.atlassian import atlassian_profile
from wsgiauth.providers.atlassian import module
from wsgiauth.sign_in import SignInInfo
from wsgiauth.sign_in import load_resolver_factories

ME = {
    "account_type": "atlassian",
    "account_id": "112233aa-bb",
    "email": "jane@acme.org",
    "email_verified": True,
    "name": "Jane Doe",
    "picture": "https://avatar-management.example/jane.png",
    "account_status": "active",
    "nickname": "jane",
}
SITES = [
    {
        "id": "1324a887-45db",
        "name": "acme",
        "url": "https://acme.atlassian.net",
        "scopes": ["read:jira-work"],
        "avatarUrl": "https://site-admin.example/a.png",
    }
]
REROUTE_HOSTS = ("https://auth.atlassian.com", "https://api.atlassian.com")


def transform(me, sites=()):
    result = OAuthAuthenticatorResult(
        full_profile=atlassian_profile(me, list(sites)), session=OAuthSession(access_token="at")
    )
    authenticator = AtlassianAuthenticator(
        credentials=ClientCredentials("id", "secret"), callback_url="", http=create_http_client()
    )
    return authenticator.default_profile_transform(result)


# -- profile ------------------------------------------------------------------------------


def test_profile_transform_reads_email_name_and_picture():
    assert transform(ME) == ProfileInfo(
        email="jane@acme.org",
        display_name="Jane Doe",
        picture="https://avatar-management.example/jane.png",
    )


def test_profile_transform_drops_an_unverified_email():
    assert transform({**ME, "email_verified": False}).email is None


def test_profile_transform_falls_back_to_the_account_id():
    profile = transform({"account_id": "112233aa-bb"})
    assert profile == ProfileInfo(display_name="112233aa-bb")


def test_the_strategy_profile_keeps_the_raw_answer_and_the_sites():
    profile = atlassian_profile(ME, SITES)
    assert profile["id"] == "112233aa-bb"
    assert profile["_json"] == ME
    assert profile["accessibleResources"] == SITES
    assert "username" not in profile  # passport-atlassian-oauth2 sets none


# -- resolvers ----------------------------------------------------------------------------


def resolver(name, options=None):
    return load_resolver_factories(module.resolvers)[name](options)


def info(full_profile, email=None):
    result = OAuthAuthenticatorResult(
        full_profile=full_profile, session=OAuthSession(access_token="at")
    )
    return SignInInfo(profile=ProfileInfo(email=email), result=result)


def test_username_matching_user_entity_name(context):  # noqa: F811
    signed_in = resolver("usernameMatchingUserEntityName")(info({"username": "jane"}), context)
    assert claims_of(signed_in.token)["sub"] == "user:default/jane"


def test_username_matching_user_entity_name_dangerous_fallback(context):  # noqa: F811
    options = {"dangerouslyAllowSignInWithoutUserInCatalog": True}
    signed_in = resolver("usernameMatchingUserEntityName", options)(
        info({"username": "ghost"}), context
    )
    assert claims_of(signed_in.token)["ent"] == ["user:default/ghost"]


def test_username_matching_fails_on_a_real_atlassian_profile(context):  # noqa: F811
    with pytest.raises(AuthenticationError, match="does not contain a username"):
        resolver("usernameMatchingUserEntityName")(info(atlassian_profile(ME, SITES)), context)


def test_the_common_resolvers_are_offered(context):  # noqa: F811
    signed_in = resolver("emailMatchingUserEntityProfileEmail")(
        info(atlassian_profile(ME, SITES), email="jane@acme.org"), context
    )
    assert claims_of(signed_in.token)["sub"] == "user:default/jane"


# -- the popup flow -----------------------------------------------------------------------


@pytest.fixture
def idp():
    fake = LoopbackIdp(
        authorize_path="/authorize",
        token_path="/oauth/token",
        apis={
            "/me": lambda grant, request: grant.user,
            "/oauth/token/accessible-resources": lambda grant, request: SITES,
        },
    )
    fake.user = ME
    with fake.serving():
        yield fake


def atlassian_app(tmp_path, idp, **extra):
    env = {
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]},
        **extra,
    }
    return build_app(
        tmp_path,
        {"atlassian": {"development": env}},
        users=[user_entity("jane", email="jane@acme.org")],
        reroute={host: idp.base_url for host in REROUTE_HOSTS},
    )


def test_a_full_popup_flow(tmp_path, idp):
    app = atlassian_app(tmp_path, idp, additionalScopes=["read:confluence-user"])
    signed_in = sign_in(app, idp, "atlassian", scope="write:jira-work")

    url = urlsplit(signed_in.authorize_url)
    assert (url.scheme, url.netloc, url.path) == ("https", "auth.atlassian.com", "/authorize")
    query = query_of(signed_in.authorize_url)
    assert query["audience"] == "api.atlassian.com"
    assert query["prompt"] == "consent"
    assert query["response_type"] == "code"
    assert query["client_id"] == idp.client_id
    assert query["redirect_uri"] == "http://localhost:7007/api/auth/atlassian/handler/frame"
    assert query["scope"].split(" ") == [
        "write:jira-work",
        "offline_access",
        "read:me",
        "read:jira-work",
        "read:jira-user",
        "read:confluence-user",
    ]
    assert "code_challenge" not in query  # passport sends no PKCE

    api_paths = [path for method, path, _, _ in idp.requests if method == "GET"]
    assert "/me" in api_paths
    assert "/oauth/token/accessible-resources" in api_paths
    token_form = next(form for _, path, form, _ in idp.requests if path == "/oauth/token")
    assert token_form["client_secret"] == idp.client_secret  # credentials in the form

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": "https://avatar-management.example/jane.png",
    }
    info = response["providerInfo"]
    assert info["scope"] == query["scope"]  # the token response's scope (not persisted)
    assert info["expiresInSeconds"] == 3600
    assert info["accessToken"]
    assert "idToken" not in info
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert "atlassian-granted-scope" not in app.cookies

    refreshed = refresh(app, "atlassian").json
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    refresh_form = [form for _, path, form, _ in idp.requests if path == "/oauth/token"][-1]
    assert refresh_form["grant_type"] == "refresh_token"
    assert refresh_form["scope"]  # passport passes the scope along
    # The fake rotates refresh tokens, as Atlassian does: the second refresh uses the new one.
    assert refresh(app, "atlassian").json["profile"]["email"] == "jane@acme.org"

    logout(app, "atlassian")
    refresh(app, "atlassian", status=401)


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message):
    error = fault_error(atlassian_app(tmp_path, idp), idp, "atlassian", fault)
    assert error["name"] == name
    assert message in error["message"]


# -- config -------------------------------------------------------------------------------

#: docs/auth/atlassian/provider.md, as a Backstage user has it.
DOCS_CONFIG = """
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    atlassian:
      development:
        clientId: ${AUTH_ATLASSIAN_CLIENT_ID}
        clientSecret: ${AUTH_ATLASSIAN_CLIENT_SECRET}
        audience: 'https://api.atlassian.com'
        callbackUrl: 'https://backstage.example.com/api/auth/atlassian/handler/frame'
        additionalScopes:
          - 'read:jira-user'
          - 'read:jira-work'
        sessionDuration: { hours: 24 }
        signIn:
          resolvers:
            - resolver: usernameMatchingUserEntityName
"""
ENV = {"AUTH_ATLASSIAN_CLIENT_ID": "id", "AUTH_ATLASSIAN_CLIENT_SECRET": "secret"}


def test_the_documented_config_passes_check_config(tmp_path):
    assert check_config_of(tmp_path, DOCS_CONFIG, environ=ENV) == []


@pytest.mark.parametrize("bad", ["clientSecrett", "scope"])
def test_a_wrong_key_is_named(tmp_path, bad):
    document = yaml.safe_load(DOCS_CONFIG)
    env = document["auth"]["providers"]["atlassian"]["development"]
    env[bad] = env.pop("clientSecret") if bad == "clientSecrett" else "read:me"
    errors = check_config_of(tmp_path, document, environ=ENV)
    assert errors
    assert errors[0].path.endswith(f"atlassian.development.{bad}")
