"""The ``gitlab`` provider: profile, resolvers, config, and the popup flow against a fake GitLab.

The fake speaks GitLab's documented OAuth paths (``/oauth/authorize``, ``/oauth/token``)
and ``/api/v4/user``; gitlab.com is reached by rerouting the HttpClient, a
self-managed GitLab through Backstage's own ``audience`` key.
"""

from __future__ import annotations

import textwrap
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest

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
from tests.providers.resolver_context import CatalogContext
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import NotFoundError
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.providers import gitlab
from wsgiauth.registry import BUILTIN_PROVIDERS
from wsgiauth.sign_in import SignInInfo
from wsgiauth.types import ProfileInfo

#: ``GET /api/v4/user`` as GitLab documents it (abridged).
GITLAB_USER = {
    "id": 42,
    "username": "jane",
    "name": "Jane Doe",
    "state": "active",
    "avatar_url": "https://gitlab.example/uploads/-/system/user/avatar/42/avatar.png",
    "web_url": "https://gitlab.example/jane",
    "email": "jane@acme.org",
    "public_email": "",
}


def result(profile: dict[str, Any], id_token: str | None = None) -> OAuthAuthenticatorResult:
    session = OAuthSession(access_token="at", id_token=id_token)  # noqa: S106
    return OAuthAuthenticatorResult(full_profile=profile, session=session)


def transform(profile: dict[str, Any], id_token: str | None = None) -> ProfileInfo:
    authenticator = object.__new__(gitlab.GitlabAuthenticator)
    return authenticator.default_profile_transform(result(profile, id_token))


# -- profile -----------------------------------------------------------------------------


def test_the_profile_is_passport_gitlab2s() -> None:
    assert gitlab.gitlab_profile(GITLAB_USER) == {
        "provider": "gitlab",
        "id": "42",
        "username": "jane",
        "displayName": "Jane Doe",
        "emails": [{"value": "jane@acme.org"}],
        "avatarUrl": GITLAB_USER["avatar_url"],
        "profileUrl": "https://gitlab.example/jane",
        "_json": GITLAB_USER,
    }


def test_profile_transform_email_name_and_avatar() -> None:
    assert transform(gitlab.gitlab_profile(GITLAB_USER)) == ProfileInfo(
        email="jane@acme.org", display_name="Jane Doe", picture=GITLAB_USER["avatar_url"]
    )


def test_profile_transform_falls_back_to_username_then_id() -> None:
    no_name = gitlab.gitlab_profile({**GITLAB_USER, "name": None, "email": None})
    assert transform(no_name) == ProfileInfo(
        email=None, display_name="jane", picture=GITLAB_USER["avatar_url"]
    )
    bare = gitlab.gitlab_profile({"id": 7})
    assert transform(bare) == ProfileInfo(email=None, display_name="7", picture=None)


def test_profile_transform_fills_gaps_from_the_id_token() -> None:
    id_token = jwt.encode(
        {"email": "jane@acme.org", "name": "Jane", "picture": "https://p/j.png"}, "k" * 32
    )
    bare = gitlab.gitlab_profile({"id": 7, "username": "jane"})
    assert transform(bare, id_token) == ProfileInfo(
        email="jane@acme.org", display_name="jane", picture="https://p/j.png"
    )
    unverified = jwt.encode({"email": "x@acme.org", "email_verified": False}, "k" * 32)
    assert transform(bare, unverified).email is None
    with pytest.raises(AuthenticationError, match="Failed to parse id token"):
        transform(bare, "not-a-jwt")


# -- resolvers ---------------------------------------------------------------------------


def resolve(name: str, profile: dict[str, Any], context: CatalogContext, options=None) -> Any:
    factory = gitlab.module.resolvers[name]
    info = SignInInfo(profile=ProfileInfo(), result=result(profile))
    return factory(options)(info, context)


def test_the_module_carries_backstages_gitlab_resolvers() -> None:
    assert set(gitlab.module.resolvers) == {
        "usernameMatchingUserEntityName",
        "userIdMatchingUserEntityAnnotation",
    }
    assert gitlab.module.provider_id == "gitlab"
    assert BUILTIN_PROVIDERS["gitlab"] == "wsgiauth.providers.gitlab:module"


def test_username_matching_user_entity_name() -> None:
    context = CatalogContext()
    resolve("usernameMatchingUserEntityName", gitlab.gitlab_profile(GITLAB_USER), context)
    assert context.queries == [{"entityRef": {"name": "jane"}}]
    with pytest.raises(AuthenticationError, match="username"):
        resolve(
            "usernameMatchingUserEntityName", gitlab.gitlab_profile({"id": 1}), CatalogContext()
        )


def test_user_id_matching_user_entity_annotation_uses_the_gitlab_host() -> None:
    context = CatalogContext()
    resolve("userIdMatchingUserEntityAnnotation", gitlab.gitlab_profile(GITLAB_USER), context)
    assert context.queries == [{"annotations": {"gitlab.example/user-id": "42"}}]
    assert context.fallbacks == [None]


def test_user_id_matching_user_entity_annotation_not_found_and_fallback() -> None:
    profile = gitlab.gitlab_profile(GITLAB_USER)
    with pytest.raises(NotFoundError):
        resolve("userIdMatchingUserEntityAnnotation", profile, CatalogContext(found=False))
    context = CatalogContext(found=False)
    options = {"dangerouslyAllowSignInWithoutUserInCatalog": True}
    assert resolve("userIdMatchingUserEntityAnnotation", profile, context, options) == "signed-in"
    assert context.fallbacks == [{"name": "42"}]


@pytest.mark.parametrize(
    ("profile", "message"),
    [
        pytest.param({"web_url": "https://gitlab.com/x"}, "user ID", id="no-id"),
        pytest.param({"id": 1}, "profile URL", id="no-profile-url"),
    ],
)
def test_user_id_matching_user_entity_annotation_needs_id_and_url(profile, message) -> None:
    with pytest.raises(AuthenticationError, match=message):
        resolve(
            "userIdMatchingUserEntityAnnotation", gitlab.gitlab_profile(profile), CatalogContext()
        )


def test_resolver_options_are_checked() -> None:
    with pytest.raises(Exception, match="allowedDomains"):
        gitlab.module.resolvers["userIdMatchingUserEntityAnnotation"]({"allowedDomains": []})


# -- the popup flow against a fake GitLab ------------------------------------------------


@pytest.fixture
def idp():
    fake = LoopbackIdp(
        authorize_path="/oauth/authorize",
        token_path="/oauth/token",
        apis={"/api/v4/user": lambda grant, request: grant.user},
        expires_in=7200,
    )
    with fake.serving():
        fake.user = {**GITLAB_USER, "web_url": f"{fake.base_url}/jane"}
        yield fake


RESOLVERS = {"signIn": {"resolvers": [{"resolver": "userIdMatchingUserEntityAnnotation"}]}}
JANE = user_entity("jane", email="jane@acme.org", **{"127.0.0.1/user-id": "42"})


def gitlab_app(tmp_path, idp, **env):
    block = {"clientId": idp.client_id, "clientSecret": idp.client_secret, **RESOLVERS, **env}
    return build_app(
        tmp_path,
        {"gitlab": {"development": block}},
        users=[JANE],
        reroute={"https://gitlab.com": idp.base_url},
    )


def test_a_full_popup_flow_against_self_managed_gitlab(tmp_path, idp):
    app = gitlab_app(tmp_path, idp, audience=idp.base_url)
    signed_in = sign_in(app, idp, "gitlab", scope="read_api")

    url = urlsplit(signed_in.authorize_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == f"{idp.base_url}/oauth/authorize"
    query = query_of(signed_in.authorize_url)
    assert query["client_id"] == idp.client_id
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == f"{BACKEND}/api/auth/gitlab/handler/frame"
    assert query["scope"].split() == ["read_api", "read_user"]
    assert query["state"]
    assert query["code_challenge_method"] == "S256"
    assert "access_type" not in query and "prompt" not in query  # passport drops them

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": GITLAB_USER["avatar_url"],
    }
    info = response["providerInfo"]
    assert info["accessToken"]
    assert info["scope"] == "read_api read_user"  # as the token endpoint answered
    assert info["expiresInSeconds"] == 7200
    assert not info.get("idToken")
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"

    token_form = next(f for m, p, f, _ in idp.requests if p == "/oauth/token")
    assert token_form["grant_type"] == "authorization_code"
    assert token_form["client_id"] == idp.client_id  # credentials in the body, as passport
    assert token_form["client_secret"] == idp.client_secret
    user_call = next(h for m, p, f, h in idp.requests if p == "/api/v4/user")
    assert user_call["Authorization"] == f"Bearer {info['accessToken']}"

    refreshed = refresh(app, "gitlab").json
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]
    assert refreshed["profile"]["email"] == "jane@acme.org"
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    refresh_form = [f for m, p, f, _ in idp.requests if p == "/oauth/token"][-1]
    assert refresh_form["grant_type"] == "refresh_token"
    assert refresh_form["scope"].split() == ["read_user"]

    logout(app, "gitlab")
    refresh(app, "gitlab", status=401)


def test_gitlab_com_is_the_default_audience(tmp_path, idp):
    app = gitlab_app(tmp_path, idp)
    signed_in = sign_in(app, idp, "gitlab")
    assert signed_in.authorize_url.startswith("https://gitlab.com/oauth/authorize?")
    response = signed_in.message["response"]
    assert response["profile"]["displayName"] == "Jane Doe"
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message):
    error = fault_error(
        gitlab_app(tmp_path, idp, audience=idp.base_url),
        idp,
        "gitlab",
        fault,
        query=f"env=development&origin={APP_ORIGIN}",
    )
    assert error["name"] == name
    assert message in error["message"]


def test_a_user_not_in_the_catalog_is_an_error_in_the_popup(tmp_path, idp):
    idp.user = {**idp.user, "id": 99}
    app = gitlab_app(tmp_path, idp, audience=idp.base_url)
    error = sign_in(app, idp, "gitlab").message["error"]
    assert "unable to resolve user identity" in error["message"]


# -- check-config ------------------------------------------------------------------------

#: The YAML of Backstage's GitLab provider docs, with its commented keys switched on.
DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    gitlab:
      development:
        clientId: ${AUTH_GITLAB_CLIENT_ID}
        clientSecret: ${AUTH_GITLAB_CLIENT_SECRET}
        audience: https://gitlab.company.com
        callbackUrl: http://localhost:7007/api/auth/gitlab/handler/frame
        sessionDuration: { hours: 24 }
        signIn:
          resolvers:
            - resolver: usernameMatchingUserEntityName
"""
ENV = {"AUTH_GITLAB_CLIENT_ID": "id", "AUTH_GITLAB_CLIENT_SECRET": "secret"}


def test_backstages_documented_config_passes_check_config(tmp_path):
    assert check_config_of(tmp_path, DOCS_CONFIG, environ=ENV) == []


@pytest.mark.parametrize("key", ["clientSecret", "audience", "callbackUrl"])
def test_a_misspelt_key_is_named(tmp_path, key):
    errors = check_config_of(
        tmp_path, textwrap.dedent(DOCS_CONFIG).replace(f" {key}:", f" {key}x:"), environ=ENV
    )
    assert errors
    assert errors[0].path.endswith(f"gitlab.development.{key}x"), errors
