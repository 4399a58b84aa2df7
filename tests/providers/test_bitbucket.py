"""The ``bitbucket`` provider (Bitbucket Cloud): profile, resolvers, config, the popup flow.

The fake speaks Bitbucket Cloud's documented paths (``/site/oauth2/authorize``,
``/site/oauth2/access_token``, ``/2.0/user``, ``/2.0/user/emails``); the fixed hosts
bitbucket.org and api.bitbucket.org reach it through the HttpClient's reroute seam.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

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
from wsgiauth.providers import bitbucket
from wsgiauth.registry import BUILTIN_PROVIDERS
from wsgiauth.sign_in import SignInInfo
from wsgiauth.types import ProfileInfo

UUID = "{c7a1f5e2-1a2b-4c3d-9e8f-0123456789ab}"
#: ``GET /2.0/user`` as Bitbucket Cloud documents it (abridged; it has no email).
BITBUCKET_USER = {
    "type": "user",
    "uuid": UUID,
    "username": "jane_doe",
    "display_name": "Jane Doe",
    "account_id": "557058:0000",
    "nickname": "jane",
    "links": {
        "html": {"href": "https://bitbucket.org/%7Bc7a1f5e2%7D/"},
        "avatar": {"href": "https://avatar-management.example/jane.png"},
    },
}
#: ``GET /2.0/user/emails``: a page of the user's addresses.
EMAILS = {
    "pagelen": 10,
    "page": 1,
    "size": 2,
    "values": [
        {"type": "email", "email": "jd@old.example", "is_primary": False, "is_confirmed": True},
        {"type": "email", "email": "jane@acme.org", "is_primary": True, "is_confirmed": True},
    ],
}


def result(profile: dict[str, Any]) -> OAuthAuthenticatorResult:
    session = OAuthSession(access_token="at")  # noqa: S106
    return OAuthAuthenticatorResult(full_profile=profile, session=session)


def transform(profile: dict[str, Any]) -> ProfileInfo:
    authenticator = object.__new__(bitbucket.BitbucketAuthenticator)
    return authenticator.default_profile_transform(result(profile))


# -- profile -----------------------------------------------------------------------------


def test_the_profile_is_passport_bitbucket_oauth2s_plus_the_emails() -> None:
    assert bitbucket.bitbucket_profile(BITBUCKET_USER, EMAILS["values"]) == {
        "provider": "bitbucket",
        "id": UUID,
        "displayName": "Jane Doe",
        "username": "jane_doe",
        "profileUrl": "https://bitbucket.org/%7Bc7a1f5e2%7D/",
        "emails": [
            {"value": "jane@acme.org", "verified": True},  # the primary first
            {"value": "jd@old.example", "verified": True},
        ],
        "_json": BITBUCKET_USER,
    }


def test_profile_transform_primary_email_and_display_name_no_picture() -> None:
    profile = bitbucket.bitbucket_profile(BITBUCKET_USER, EMAILS["values"])
    assert transform(profile) == ProfileInfo(email="jane@acme.org", display_name="Jane Doe")


def test_profile_transform_an_unconfirmed_primary_gives_no_email() -> None:
    emails = [{"email": "jane@acme.org", "is_primary": True, "is_confirmed": False}]
    assert transform(bitbucket.bitbucket_profile(BITBUCKET_USER, emails)).email is None


def test_profile_transform_without_emails_or_name() -> None:
    profile = bitbucket.bitbucket_profile({"uuid": UUID, "username": "jd"}, [])
    assert transform(profile) == ProfileInfo(email=None, display_name="jd")


# -- resolvers ---------------------------------------------------------------------------


def resolve(name: str, profile: dict[str, Any], context: CatalogContext, options=None) -> Any:
    info = SignInInfo(profile=ProfileInfo(), result=result(profile))
    return bitbucket.module.resolvers[name](options)(info, context)


def test_the_module_carries_backstages_bitbucket_resolvers() -> None:
    assert set(bitbucket.module.resolvers) == {
        "userIdMatchingUserEntityAnnotation",
        "usernameMatchingUserEntityAnnotation",
    }
    assert bitbucket.module.provider_id == "bitbucket"
    assert BUILTIN_PROVIDERS["bitbucket"] == "wsgiauth.providers.bitbucket:module"


@pytest.mark.parametrize(
    ("name", "annotation", "value"),
    [
        ("userIdMatchingUserEntityAnnotation", "bitbucket.org/user-id", UUID),
        ("usernameMatchingUserEntityAnnotation", "bitbucket.org/username", "jane_doe"),
    ],
)
def test_annotation_resolvers(name, annotation, value) -> None:
    profile = bitbucket.bitbucket_profile(BITBUCKET_USER, [])
    context = CatalogContext()
    assert resolve(name, profile, context) == "signed-in"
    assert context.queries == [{"annotations": {annotation: value}}]
    assert context.fallbacks == [None]
    with pytest.raises(NotFoundError):
        resolve(name, profile, CatalogContext(found=False))
    dangerous = CatalogContext(found=False)
    options = {"dangerouslyAllowSignInWithoutUserInCatalog": True}
    assert resolve(name, profile, dangerous, options) == "signed-in"
    assert dangerous.fallbacks == [{"name": value}]


@pytest.mark.parametrize(
    ("name", "message"),
    [
        ("userIdMatchingUserEntityAnnotation", "does not contain an ID"),
        ("usernameMatchingUserEntityAnnotation", "does not contain a Username"),
    ],
)
def test_annotation_resolvers_need_their_field(name, message) -> None:
    with pytest.raises(AuthenticationError, match=message):
        resolve(name, bitbucket.bitbucket_profile({}, []), CatalogContext())


# -- the popup flow against a fake Bitbucket Cloud ---------------------------------------


@pytest.fixture
def idp():
    fake = LoopbackIdp(
        authorize_path="/site/oauth2/authorize",
        token_path="/site/oauth2/access_token",
        apis={
            "/2.0/user": lambda grant, request: grant.user["user"],
            "/2.0/user/emails": lambda grant, request: grant.user["emails"],
        },
        expires_in=7200,
        token_extra={"scopes": "account", "state": "authorization_code"},
    )
    fake.user = {"user": BITBUCKET_USER, "emails": EMAILS}
    with fake.serving():
        yield fake


REROUTE = ("https://bitbucket.org", "https://api.bitbucket.org")
JANE = user_entity("jane", email="jane@acme.org", **{"bitbucket.org/username": "jane_doe"})


def bitbucket_app(tmp_path, idp, resolver="usernameMatchingUserEntityAnnotation"):
    block = {
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "signIn": {"resolvers": [{"resolver": resolver}]},
    }
    return build_app(
        tmp_path,
        {"bitbucket": {"development": block}},
        users=[JANE],
        reroute=dict.fromkeys(REROUTE, idp.base_url),
    )


def test_a_full_popup_flow_against_bitbucket_cloud(tmp_path, idp):
    app = bitbucket_app(tmp_path, idp)
    signed_in = sign_in(app, idp, "bitbucket", scope="repository")

    url = urlsplit(signed_in.authorize_url)
    assert f"{url.scheme}://{url.netloc}{url.path}" == "https://bitbucket.org/site/oauth2/authorize"
    query = query_of(signed_in.authorize_url)
    assert query["client_id"] == idp.client_id
    assert query["response_type"] == "code"
    assert query["redirect_uri"] == f"{BACKEND}/api/auth/bitbucket/handler/frame"
    assert query["scope"].split() == ["repository", "account"]
    assert query["state"]
    assert "code_challenge" not in query  # as Backstage: no PKCE

    response = signed_in.message["response"]
    assert response["profile"] == {"email": "jane@acme.org", "displayName": "Jane Doe"}
    info = response["providerInfo"]
    assert info["accessToken"]
    assert info["scope"] == "repository account"  # persisted, as Backstage
    assert info["expiresInSeconds"] == 7200
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert "bitbucket-granted-scope" in app.cookies

    token_call = next(h for m, p, f, h in idp.requests if p == "/site/oauth2/access_token")
    basic = base64.b64encode(f"{idp.client_id}:{idp.client_secret}".encode()).decode()
    assert token_call["Authorization"] == f"Basic {basic}"
    emails_call = next(h for m, p, f, h in idp.requests if p == "/2.0/user/emails")
    assert emails_call["Authorization"] == f"Bearer {info['accessToken']}"

    refreshed = refresh(app, "bitbucket").json
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]
    assert refreshed["providerInfo"]["scope"] == "repository account"
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"

    logout(app, "bitbucket")
    refresh(app, "bitbucket", status=401)


def test_the_email_resolvers_work_with_the_emails_api(tmp_path, idp):
    app = bitbucket_app(tmp_path, idp, resolver="emailMatchingUserEntityProfileEmail")
    response = sign_in(app, idp, "bitbucket").message["response"]
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


def test_a_consumer_without_the_emails_permission_still_signs_in(tmp_path, idp):
    idp.apis.pop("/2.0/user/emails")  # the fake answers 404, as for a missing permission
    app = bitbucket_app(tmp_path, idp)
    response = sign_in(app, idp, "bitbucket").message["response"]
    assert "email" not in response["profile"]
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message):
    error = fault_error(
        bitbucket_app(tmp_path, idp),
        idp,
        "bitbucket",
        fault,
        query=f"env=development&origin={APP_ORIGIN}",
    )
    assert error["name"] == name
    assert message in error["message"]


# -- check-config ------------------------------------------------------------------------

#: The YAML of Backstage's Bitbucket provider docs.
DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    bitbucket:
      development:
        clientId: ${AUTH_BITBUCKET_CLIENT_ID}
        clientSecret: ${AUTH_BITBUCKET_CLIENT_SECRET}
        signIn:
          resolvers:
            # typically you would pick one of these
            - resolver: emailMatchingUserEntityProfileEmail
            - resolver: emailLocalPartMatchingUserEntityName
            - resolver: userIdMatchingUserEntityAnnotation
            - resolver: usernameMatchingUserEntityAnnotation
"""
ENV = {"AUTH_BITBUCKET_CLIENT_ID": "id", "AUTH_BITBUCKET_CLIENT_SECRET": "secret"}


def test_backstages_documented_config_passes_check_config(tmp_path):
    assert check_config_of(tmp_path, DOCS_CONFIG, environ=ENV) == []


@pytest.mark.parametrize("key", ["clientId", "clientSecret"])
def test_a_misspelt_key_is_named(tmp_path, key):
    errors = check_config_of(tmp_path, DOCS_CONFIG.replace(f" {key}:", f" {key}x:"), environ=ENV)
    assert errors
    assert errors[0].path.endswith(f"bitbucket.development.{key}x"), errors


def test_a_misspelt_resolver_is_named(tmp_path):
    errors = check_config_of(
        tmp_path,
        DOCS_CONFIG.replace("usernameMatchingUserEntityAnnotation", "usernameMatch"),
        environ=ENV,
    )
    assert errors and "usernameMatch" in str(errors[0])
