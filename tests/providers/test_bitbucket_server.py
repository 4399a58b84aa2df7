"""The ``bitbucketServer`` provider (Data Center): profile, resolvers, config, the popup flow.

The fake speaks Bitbucket Data Center's documented paths: ``/rest/oauth2/latest/authorize``
and ``/token``, ``/plugins/servlet/applinks/whoami`` (the user name in ``X-AUSERNAME``)
and ``/rest/api/latest/users/<name>``. Backstage's ``host`` key has no scheme (https is
implied), so the test host ``https://bitbucket.acme.test`` reaches the fake through the
HttpClient's reroute seam.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
from webob import Request
from webob import Response

from tests.conftest import APP_ORIGIN
from tests.conftest import BACKEND
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
from wsgiauth.errors import ConfigError
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.providers import bitbucket_server
from wsgiauth.registry import BUILTIN_PROVIDERS
from wsgiauth.types import ProfileInfo

HOST = "bitbucket.acme.test"
WHOAMI = "/plugins/servlet/applinks/whoami"
#: ``GET /rest/api/latest/users/jane.doe?avatarSize=256`` (abridged).
DC_USER = {
    "name": "jane.doe",
    "emailAddress": "jane@acme.org",
    "active": True,
    "displayName": "Jane Doe",
    "id": 101,
    "slug": "jane.doe",
    "type": "NORMAL",
    "avatarUrl": "/users/jane.doe/avatar.png?s=256&v=1",
}


def transform(profile: dict[str, Any]) -> ProfileInfo:
    authenticator = object.__new__(bitbucket_server.BitbucketServerAuthenticator)
    session = OAuthSession(access_token="at")  # noqa: S106
    return authenticator.default_profile_transform(OAuthAuthenticatorResult(profile, session))


# -- profile -----------------------------------------------------------------------------


def test_the_profile_is_backstages_fetch_profile() -> None:
    assert bitbucket_server.bitbucket_server_profile(DC_USER, host=HOST) == {
        "provider": "bitbucketServer",
        "id": "101",
        "displayName": "Jane Doe",
        "username": "jane.doe",
        "emails": [{"value": "jane@acme.org"}],
        "photos": [{"value": f"https://{HOST}/users/jane.doe/avatar.png?s=256&v=1"}],
    }


def test_an_absolute_avatar_is_kept_and_none_gives_no_photos() -> None:
    gravatar = {**DC_USER, "avatarUrl": "https://secure.gravatar.com/avatar/x?s=256"}
    profile = bitbucket_server.bitbucket_server_profile(gravatar, host=HOST)
    assert profile["photos"] == [{"value": "https://secure.gravatar.com/avatar/x?s=256"}]
    bare = {key: value for key, value in DC_USER.items() if key != "avatarUrl"}
    assert "photos" not in bitbucket_server.bitbucket_server_profile(bare, host=HOST)


def test_profile_transform() -> None:
    profile = bitbucket_server.bitbucket_server_profile(DC_USER, host=HOST)
    assert transform(profile) == ProfileInfo(
        email="jane@acme.org",
        display_name="Jane Doe",
        picture=f"https://{HOST}/users/jane.doe/avatar.png?s=256&v=1",
    )
    bare = bitbucket_server.bitbucket_server_profile({"id": 7, "name": "jd"}, host=HOST)
    assert transform(bare) == ProfileInfo(email=None, display_name="jd", picture=None)


# -- resolvers ---------------------------------------------------------------------------


def test_the_module_has_only_the_common_resolvers() -> None:
    # Backstage's own emailMatchingUserEntityProfileEmail is shadowed by the common one.
    assert bitbucket_server.module.resolvers == {}
    assert bitbucket_server.module.provider_id == "bitbucketServer"
    assert BUILTIN_PROVIDERS["bitbucketServer"] == "wsgiauth.providers.bitbucket_server:module"


# -- the popup flow against a fake Bitbucket Data Center ---------------------------------


class BitbucketDataCenter(LoopbackIdp):
    """The loopback fake, plus whoami: the signed-in user's name in ``X-AUSERNAME``."""

    #: Answer whoami as for an anonymous caller (no header).
    anonymous = False

    def _route(self, request: Request, form: dict[str, str]) -> Response:
        if request.path == WHOAMI and self.fault is None:
            grant = self._bearer(request)
            response = Response(content_type="text/plain")
            if (
                grant is not None and not self.anonymous
            ):  # anonymous: 200 without the header, as Bitbucket does
                response.text = grant.user["name"]
                response.headers["X-AUSERNAME"] = grant.user["name"]
            return response
        return super()._route(request, form)


@pytest.fixture
def idp():
    fake = BitbucketDataCenter(
        authorize_path="/rest/oauth2/latest/authorize",
        token_path="/rest/oauth2/latest/token",
        apis={"/rest/api/latest/users/jane.doe": lambda grant, request: grant.user},
        expires_in=3600,
    )
    fake.user = DC_USER
    with fake.serving():
        yield fake


JANE = user_entity("jane", email="jane@acme.org")


def server_app(tmp_path, idp, **env):
    block = {
        "host": HOST,
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]},
        **env,
    }
    return build_app(
        tmp_path,
        {"bitbucketServer": {"development": block}},
        users=[JANE],
        reroute={f"https://{HOST}": idp.base_url},
    )


def test_a_full_popup_flow_against_bitbucket_data_center(tmp_path, idp):
    app = server_app(tmp_path, idp)
    signed_in = sign_in(app, idp, "bitbucketServer", scope="REPO_READ")

    url = urlsplit(signed_in.authorize_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == (
        f"https://{HOST}/rest/oauth2/latest/authorize"
    )
    query = query_of(signed_in.authorize_url)
    assert query["client_id"] == idp.client_id
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == f"{BACKEND}/api/auth/bitbucketServer/handler/frame"
    assert query["scope"] == "REPO_READ"
    assert query["state"]
    assert query["code_challenge_method"] == "S256"

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": f"https://{HOST}/users/jane.doe/avatar.png?s=256&v=1",
    }
    info = response["providerInfo"]
    assert info["accessToken"]
    assert info["scope"] == "REPO_READ"
    assert info["expiresInSeconds"] == 3600
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"

    token_form = next(f for m, p, f, _ in idp.requests if p == "/rest/oauth2/latest/token")
    assert (token_form["client_id"], token_form["client_secret"]) == (
        idp.client_id,
        idp.client_secret,
    )
    whoami = next(h for m, p, f, h in idp.requests if p == WHOAMI)
    assert whoami["Authorization"] == f"Bearer {info['accessToken']}"
    user_query = next(f for m, p, f, h in idp.requests if p.startswith("/rest/api/latest/users/"))
    assert user_query == {"avatarSize": "256"}

    refreshed = refresh(app, "bitbucketServer").json
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"

    logout(app, "bitbucketServer")
    refresh(app, "bitbucketServer", status=401)


def test_no_scope_is_sent_unless_asked(tmp_path, idp):
    signed_in = sign_in(server_app(tmp_path, idp), idp, "bitbucketServer")
    assert "scope" not in query_of(signed_in.authorize_url)


def test_whoami_without_a_user_name_is_an_error_in_the_popup(tmp_path, idp):
    idp.anonymous = True
    error = sign_in(server_app(tmp_path, idp), idp, "bitbucketServer").message["error"]
    assert error["message"] == "Failed to retrieve the username of the logged in user"


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message):
    error = fault_error(
        server_app(tmp_path, idp),
        idp,
        "bitbucketServer",
        fault,
        query=f"env=development&origin={APP_ORIGIN}",
    )
    assert error["name"] == name
    assert message in error["message"]


# -- config ------------------------------------------------------------------------------

#: The YAML of Backstage's Bitbucket Server provider docs.
DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    bitbucketServer:
      development:
        host: bitbucket.org
        clientId: ${AUTH_BITBUCKET_SERVER_CLIENT_ID}
        clientSecret: ${AUTH_BITBUCKET_SERVER_CLIENT_SECRET}
"""
ENV = {"AUTH_BITBUCKET_SERVER_CLIENT_ID": "id", "AUTH_BITBUCKET_SERVER_CLIENT_SECRET": "secret"}


def test_backstages_documented_config_passes_check_config(tmp_path):
    assert check_config_of(tmp_path, DOCS_CONFIG, environ=ENV) == []


@pytest.mark.parametrize("key", ["host", "clientId", "clientSecret"])
def test_a_misspelt_key_is_named(tmp_path, key):
    errors = check_config_of(tmp_path, DOCS_CONFIG.replace(f" {key}:", f" {key}x:"), environ=ENV)
    assert errors
    assert errors[0].path.endswith(f"bitbucketServer.development.{key}x"), errors


def test_host_is_required_and_has_no_scheme(tmp_path, idp):
    with pytest.raises(ConfigError) as missing:
        server_app(tmp_path, idp, host=None)
    assert missing.value.path.endswith("bitbucketServer.development.host")
    with pytest.raises(ConfigError, match="without a scheme") as scheme:
        server_app(tmp_path, idp, host=f"https://{HOST}")
    assert scheme.value.path.endswith("bitbucketServer.development.host")


def test_a_user_the_users_api_does_not_know_is_an_error_in_the_popup(tmp_path, idp):
    idp.apis.clear()  # /rest/api/latest/users/jane.doe answers 404
    error = sign_in(server_app(tmp_path, idp), idp, "bitbucketServer").message["error"]
    assert error["message"] == "Failed to retrieve the user 'jane.doe'"
