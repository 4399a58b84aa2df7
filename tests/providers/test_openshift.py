"""The ``openshift`` provider: profile, resolver, the popup flow against a fake OpenShift
(OAuth server and API server on loopback, as the config's URLs name them), and check-config."""

from __future__ import annotations

import base64
import hashlib

import pytest
import yaml
from webob import Response

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
from wsgiauth.errors import NotFoundError
from wsgiauth.http import create_http_client
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import ProfileInfo
from wsgiauth.providers.openshift import OpenShiftAuthenticator
from wsgiauth.providers.openshift import access_token_name
from wsgiauth.providers.openshift import module
from wsgiauth.sign_in import SignInInfo
from wsgiauth.sign_in import load_resolver_factories

USER_PATH = "/apis/user.openshift.io/v1/users/~"
TOKENS_PATH = "/apis/oauth.openshift.io/v1/oauthaccesstokens/"
#: What ``oc get user '~' -o json`` answers.
JANE = {
    "kind": "User",
    "apiVersion": "user.openshift.io/v1",
    "metadata": {"name": "jane", "uid": "4c7a2c1e-0000", "resourceVersion": "1234"},
    "fullName": "Jane Doe",
    "identities": ["htpasswd:jane"],
    "groups": ["system:authenticated", "system:authenticated:oauth"],
}


# -- profile ------------------------------------------------------------------------------


def transform(full_profile):
    authenticator = OpenShiftAuthenticator(
        credentials=ClientCredentials("id", "secret"),
        callback_url="",
        authorization_url="https://oauth.example/oauth/authorize",
        token_url="https://oauth.example/oauth/token",
        api_server_url="https://api.example:6443",
        http=create_http_client(),
    )
    result = OAuthAuthenticatorResult(
        full_profile=full_profile, session=OAuthSession(access_token="at")
    )
    return authenticator.default_profile_transform(result)


def test_profile_transform_is_the_user_name_only():
    assert transform({"displayName": "jane"}) == ProfileInfo(display_name="jane")
    assert transform({}) == ProfileInfo()


def test_access_token_name_is_sha256_of_the_token_body():
    digest = hashlib.sha256(b"abc123").digest()
    expected = "sha256~" + base64.urlsafe_b64encode(digest).rstrip(b"=").decode()
    assert access_token_name("sha256~abc123") == expected


# -- resolvers ----------------------------------------------------------------------------


def resolve(display_name, options=None, context=None):  # noqa: F811
    factory = load_resolver_factories(module.resolvers)["displayNameMatchingUserEntityName"]
    result = OAuthAuthenticatorResult(full_profile={}, session=OAuthSession(access_token="at"))
    info = SignInInfo(profile=ProfileInfo(display_name=display_name), result=result)
    return claims_of(factory(options)(info, context).token)


def test_display_name_matching_user_entity_name(context):  # noqa: F811
    claims = resolve("jane", context=context)
    assert claims["sub"] == "user:default/jane"
    assert "group:default/team-a" in claims["ent"]


def test_display_name_matching_not_found_and_fallback(context):  # noqa: F811
    with pytest.raises(NotFoundError):
        resolve("ghost", context=context)
    dangerous = {"dangerouslyAllowSignInWithoutUserInCatalog": True}
    assert resolve("ghost", dangerous, context)["ent"] == ["user:default/ghost"]


def test_display_name_missing(context):  # noqa: F811
    with pytest.raises(AuthenticationError, match="does not contain a displayName"):
        resolve(None, context=context)


# -- the popup flow -----------------------------------------------------------------------


class OpenShiftFake(LoopbackIdp):
    """The OAuth server plus the two API-server calls: the user, and deleting a token."""

    def __init__(self) -> None:
        super().__init__(
            authorize_path="/oauth/authorize",
            token_path="/oauth/token",
            refresh_tokens=False,  # OpenShift issues none
            expires_in=86400,
            apis={USER_PATH: lambda grant, request: grant.user},
        )
        self.deleted: list[str] = []

    def _route(self, request, form):
        if request.method == "DELETE" and request.path.startswith(TOKENS_PATH):
            grant = self._bearer(request)
            if grant is None:
                return Response(status=401)
            token = request.headers["Authorization"].partition(" ")[2]
            if request.path != TOKENS_PATH + access_token_name(token):
                return Response(status=404)
            self.revoke(token)
            self.deleted.append(request.path)
            return Response(status=200, json={"kind": "Status", "status": "Success"})
        return super()._route(request, form)

    def revoke(self, token: str) -> None:
        self._access.pop(token, None)


@pytest.fixture
def idp():
    fake = OpenShiftFake()
    fake.user = JANE
    with fake.serving():
        yield fake


def openshift_app(tmp_path, idp, **extra):
    env = {
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "authorizationUrl": f"{idp.base_url}/oauth/authorize",
        "tokenUrl": f"{idp.base_url}/oauth/token",
        "openshiftApiServerUrl": idp.base_url,
        "signIn": {"resolvers": [{"resolver": "displayNameMatchingUserEntityName"}]},
        **extra,
    }
    return build_app(tmp_path, {"openshift": {"development": env}}, users=[user_entity("jane")])


def test_a_full_popup_flow(tmp_path, idp):
    app = openshift_app(tmp_path, idp)
    signed_in = sign_in(app, idp, "openshift")

    assert signed_in.authorize_url.startswith(f"{idp.base_url}/oauth/authorize?")
    query = query_of(signed_in.authorize_url)
    assert query == {
        "response_type": "code",
        "client_id": idp.client_id,
        "redirect_uri": "http://localhost:7007/api/auth/openshift/handler/frame",
        "scope": "user:full",
        "state": query["state"],
    }
    token_form = next(form for _, path, form, _ in idp.requests if path == "/oauth/token")
    assert token_form["client_secret"] == idp.client_secret

    response = signed_in.message["response"]
    assert response["profile"] == {"displayName": "jane"}
    info = response["providerInfo"]
    assert info["scope"] == "user:full"
    assert info["expiresInSeconds"] == 86400
    assert "idToken" not in info
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    # No refresh token from OpenShift: the access token is the session cookie.
    assert app.cookies["openshift-refresh-token"] == info["accessToken"]

    refreshed = refresh(app, "openshift").json
    assert refreshed["providerInfo"]["accessToken"] == info["accessToken"]
    assert refreshed["providerInfo"]["scope"] == "user:full"
    assert refreshed["profile"] == {"displayName": "jane"}
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert not any(
        path == "/oauth/token" and form.get("grant_type") == "refresh_token"
        for _, path, form, _ in idp.requests
    )

    logout(app, "openshift")
    assert idp.deleted == [TOKENS_PATH + access_token_name(info["accessToken"])]
    refresh(app, "openshift", status=401)


def test_a_revoked_token_fails_refresh(tmp_path, idp):
    app = openshift_app(tmp_path, idp)
    info = sign_in(app, idp, "openshift").message["response"]["providerInfo"]
    idp.revoke(info["accessToken"])
    error = refresh(app, "openshift", status=401).json["error"]
    assert error["message"].endswith("AuthenticationError: Invalid access token")
    logout(app, "openshift")  # the token is already invalid: nothing to delete
    assert idp.deleted == []


def test_a_user_without_a_name_is_an_error(tmp_path, idp):
    idp.user = {"kind": "User", "metadata": {}}
    app = openshift_app(tmp_path, idp)
    error = sign_in(app, idp, "openshift").message["error"]
    assert error["name"] == "ServiceUnavailableError"


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message):
    error = fault_error(openshift_app(tmp_path, idp), idp, "openshift", fault)
    assert error["name"] == name
    assert message in error["message"]


# -- config -------------------------------------------------------------------------------

#: docs/auth/openshift/provider.md, as a Backstage user has it.
DOCS_CONFIG = """
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    openshift:
      development:
        clientId: ${AUTH_OPENSHIFT_CLIENT_ID}
        clientSecret: ${AUTH_OPENSHIFT_CLIENT_SECRET}
        authorizationUrl: ${AUTH_OPENSHIFT_AUTHORIZATION_URL}
        tokenUrl: ${AUTH_OPENSHIFT_TOKEN_URL}
        openshiftApiServerUrl: ${OPENSHIFT_API_SERVER_URL}
        sessionDuration: 1d
        signIn:
          resolvers:
            - resolver: displayNameMatchingUserEntityName
"""
ENV = {
    "AUTH_OPENSHIFT_CLIENT_ID": "backstage",
    "AUTH_OPENSHIFT_CLIENT_SECRET": "secret",
    "AUTH_OPENSHIFT_AUTHORIZATION_URL": "https://oauth-openshift.apps.example.com/oauth/authorize",
    "AUTH_OPENSHIFT_TOKEN_URL": "https://oauth-openshift.apps.example.com/oauth/token",
    "OPENSHIFT_API_SERVER_URL": "https://api.example.com:6443",
}


def test_the_documented_config_passes_check_config(tmp_path):
    assert check_config_of(tmp_path, DOCS_CONFIG, environ=ENV) == []


@pytest.mark.parametrize("bad", ["openshiftApiServerURL", "tokenURL"])
def test_a_wrong_key_is_named(tmp_path, bad):
    document = yaml.safe_load(DOCS_CONFIG)
    env = document["auth"]["providers"]["openshift"]["development"]
    env[bad] = env.pop(bad[:-3] + "Url")
    errors = check_config_of(tmp_path, document, environ=ENV)
    assert errors
    assert errors[0].path.endswith(f"openshift.development.{bad}")
