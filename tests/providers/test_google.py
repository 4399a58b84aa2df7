"""The ``google`` provider: profile transform, resolvers, and the popup flow against a fake Google.

The fake answers on loopback for Google's fixed hosts (``accounts.google.com``,
``www.googleapis.com``, ``oauth2.googleapis.com``), rerouted by the HttpClient test seam,
on the paths Backstage's passport strategy uses.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from webob import Request
from webob import Response

from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.popup import FAULTS
from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import fault_error
from tests.providers.popup import logout
from tests.providers.popup import refresh
from tests.providers.popup import sign_in
from tests.providers.popup import user_entity
from tests.providers.resolver_context import AnnotatedUserContext
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import NotFoundError
from wsgiauth.http import create_http_client
from wsgiauth.oauth import ClientCredentials
from wsgiauth.oauth import OAuthAuthenticator
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import SupportsOAuthLogout
from wsgiauth.oauth import transform_profile as passport_profile_info
from wsgiauth.providers import google
from wsgiauth.providers.google import GoogleAuthenticator
from wsgiauth.registry import BUILTIN_PROVIDERS
from wsgiauth.sign_in import SIGN_IN_FAILED
from wsgiauth.sign_in import SignInInfo
from wsgiauth.types import ProfileInfo

USERINFO = {
    "sub": "1057",
    "name": "Jane Doe",
    "given_name": "Jane",
    "family_name": "Doe",
    "picture": "https://lh3.googleusercontent.com/a/jane",
    "email": "jane@acme.org",
    "email_verified": True,
    "hd": "acme.org",
}
REQUIRED = (
    "openid https://www.googleapis.com/auth/userinfo.email "
    "https://www.googleapis.com/auth/userinfo.profile"
)
AUTHENTICATOR = GoogleAuthenticator(
    credentials=ClientCredentials("id", "secret", "client_secret_post"),
    callback_url="http://localhost:7007/api/auth/google/handler/frame",
    http=create_http_client(),
)
JANE = user_entity("jane", email="jane@acme.org", **{"google.com/email": "jane@acme.org"})


def result(userinfo: dict[str, Any] | None = None, id_token: str | None = None):
    profile = google._google_profile(USERINFO if userinfo is None else userinfo)
    session = OAuthSession(access_token="at", id_token=id_token)
    return OAuthAuthenticatorResult(full_profile=profile, session=session)


def unsigned(**claims: Any) -> str:
    return jwt.encode(claims, "not-checked-000000000000000000000", algorithm="HS256")


# -- the module ------------------------------------------------------------------------------


def test_module_is_registered_under_backstages_id() -> None:
    assert BUILTIN_PROVIDERS["google"] == "wsgiauth.providers.google:module"
    assert google.module.provider_id == "google"
    assert set(google.module.resolvers) == {"emailMatchingUserEntityAnnotation"}
    assert isinstance(AUTHENTICATOR, OAuthAuthenticator)
    assert isinstance(AUTHENTICATOR, SupportsOAuthLogout)
    assert GoogleAuthenticator.persist_scopes is False
    assert " ".join(GoogleAuthenticator.required_scopes) == REQUIRED


# -- the profile -----------------------------------------------------------------------------


def test_userinfo_becomes_the_passport_profile() -> None:
    profile = result().full_profile
    assert profile["provider"] == "google"
    assert profile["id"] == "1057"
    assert profile["displayName"] == "Jane Doe"
    assert profile["name"] == {"familyName": "Doe", "givenName": "Jane"}
    assert profile["emails"] == [{"value": "jane@acme.org", "verified": True}]
    assert profile["photos"] == [{"value": USERINFO["picture"]}]
    assert profile["_json"] == USERINFO


def test_profile_transform_reads_email_name_and_picture() -> None:
    info = AUTHENTICATOR.default_profile_transform(result())
    assert info == ProfileInfo(
        email="jane@acme.org", display_name="Jane Doe", picture=USERINFO["picture"]
    )


def test_an_unverified_email_is_dropped_and_not_taken_from_the_id_token() -> None:
    userinfo = {**USERINFO, "email_verified": False}
    token = unsigned(email="jane@acme.org", email_verified=True)
    assert passport_profile_info(result(userinfo).full_profile, token).email is None


def test_missing_fields_come_from_the_id_token() -> None:
    token = unsigned(email="jane@acme.org", picture="https://pic", name="Jane From Token")
    info = passport_profile_info(result({"sub": "1057"}).full_profile, token)
    # displayName falls back to the id before the ID token, as in Backstage.
    assert info == ProfileInfo(email="jane@acme.org", display_name="1057", picture="https://pic")
    info = passport_profile_info({}, token)
    assert info.display_name == "Jane From Token"


def test_an_unverified_id_token_email_is_not_used() -> None:
    token = unsigned(email="jane@acme.org", email_verified=False)
    assert passport_profile_info({}, token).email is None


def test_an_unreadable_id_token_fails_the_sign_in() -> None:
    with pytest.raises(AuthenticationError, match="Failed to parse id token"):
        passport_profile_info({}, "not-a-jwt")


# -- the resolvers ---------------------------------------------------------------------------


def resolve(options: dict[str, Any] | None, email: str | None, context: AnnotatedUserContext):
    resolver = google.module.resolvers["emailMatchingUserEntityAnnotation"](options)
    info = SignInInfo(profile=ProfileInfo(email=email), result=result())
    return resolver(info, context)  # type: ignore[arg-type]


def test_email_matching_user_entity_annotation_uses_google_com_email() -> None:
    context = AnnotatedUserContext({"google.com/email": "jane@acme.org"})
    assert resolve(None, "jane@acme.org", context).token == "user:default/jane"
    assert context.queries == [{"annotations": {"google.com/email": "jane@acme.org"}}]


def test_email_matching_user_entity_annotation_not_found_and_fallback() -> None:
    with pytest.raises(NotFoundError, match=SIGN_IN_FAILED[:20]):
        resolve(None, "ghost@acme.org", AnnotatedUserContext({}))
    context = AnnotatedUserContext({})
    options = {"dangerouslyAllowSignInWithoutUserInCatalog": True}
    assert resolve(options, "ghost@acme.org", context).token == "user:default/ghost@acme.org"


def test_email_matching_user_entity_annotation_needs_an_email() -> None:
    with pytest.raises(AuthenticationError, match="does not contain an email"):
        resolve(None, None, AnnotatedUserContext({}))


# -- the popup flow against a fake Google ----------------------------------------------------


class FakeGoogle(LoopbackIdp):
    """The loopback fake plus Google's revocation endpoint (``POST /revoke?token=``)."""

    def __init__(self) -> None:
        super().__init__(
            authorize_path="/o/oauth2/v2/auth",
            token_path="/oauth2/v4/token",
            apis={"/oauth2/v3/userinfo": lambda grant, request: grant.user},
            refresh_tokens=True,
        )
        self.revoked: list[str] = []

    def _route(self, request: Request, form: dict[str, str]) -> Response:
        if request.path == "/revoke" and request.method == "POST" and self.fault is None:
            self.revoked.append(request.GET.get("token", ""))
            return Response(status=200)
        return super()._route(request, form)


@pytest.fixture
def idp():
    fake = FakeGoogle()
    fake.user = dict(USERINFO)
    with fake.serving():
        yield fake


def google_app(tmp_path, idp, resolver="emailMatchingUserEntityAnnotation", users=(JANE,)):
    env = {
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "signIn": {"resolvers": [{"resolver": resolver}]},
    }
    reroute = {
        origin: idp.base_url
        for origin in (
            "https://accounts.google.com",
            "https://www.googleapis.com",
            "https://oauth2.googleapis.com",
        )
    }
    return build_app(tmp_path, {"google": {"development": env}}, users=list(users), reroute=reroute)


def test_a_full_popup_flow_against_a_fake_google(tmp_path, idp) -> None:
    app = google_app(tmp_path, idp)
    signed_in = sign_in(app, idp, "google", scope="https://www.googleapis.com/auth/drive")

    url = urlsplit(signed_in.authorize_url)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "accounts.google.com",
        "/o/oauth2/v2/auth",
    )
    query = idp.authorize_query()
    assert query["access_type"] == "offline"
    assert query["prompt"] == "consent"
    assert query["include_granted_scopes"] == "true"
    assert query["response_type"] == "code"
    assert query["client_id"] == idp.client_id
    assert query["redirect_uri"] == "http://localhost:7007/api/auth/google/handler/frame"
    assert query["scope"] == f"https://www.googleapis.com/auth/drive {REQUIRED}"
    assert query["code_challenge_method"] == "S256"

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": USERINFO["picture"],
    }
    info = response["providerInfo"]
    assert info["scope"] == query["scope"]  # as Google answered: not persisted
    assert info["expiresInSeconds"] == 3600
    assert info["accessToken"]
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    token_form = next(form for _, path, form, _ in idp.requests if path == "/oauth2/v4/token")
    assert token_form["client_secret"] == idp.client_secret  # in the form, as passport sends it
    userinfo_headers = next(h for _, path, _, h in idp.requests if path == "/oauth2/v3/userinfo")
    assert userinfo_headers["Authorization"] == f"Bearer {info['accessToken']}"

    refreshed = refresh(app, "google").json
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert refreshed["providerInfo"]["accessToken"] != info["accessToken"]
    assert refreshed["profile"]["email"] == "jane@acme.org"
    refresh_form = [f for _, p, f, _ in idp.requests if p == "/oauth2/v4/token"][-1]
    assert refresh_form["grant_type"] == "refresh_token"
    assert refresh_form["scope"] == REQUIRED  # Backstage passes the scope on refresh

    logout(app, "google")
    assert len(idp.revoked) == 1  # the current refresh token, revoked at Google
    refresh(app, "google", status=401)


def test_the_common_resolvers_are_offered_too(tmp_path, idp) -> None:
    app = google_app(tmp_path, idp, resolver="emailLocalPartMatchingUserEntityName")
    message = sign_in(app, idp, "google").message
    assert message["response"]["backstageIdentity"]["identity"]["userEntityRef"] == (
        "user:default/jane"
    )


def test_a_user_missing_from_the_catalog_is_an_error_in_the_popup(tmp_path, idp) -> None:
    app = google_app(tmp_path, idp, users=())
    error = sign_in(app, idp, "google").message["error"]
    assert error["name"] == "NotFoundError"


def test_a_failed_revocation_does_not_fail_the_logout(tmp_path, idp) -> None:
    app = google_app(tmp_path, idp)
    sign_in(app, idp, "google")
    idp.fault = "server_error"
    logout(app, "google", status=200)


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message) -> None:
    error = fault_error(google_app(tmp_path, idp), idp, "google", fault)
    assert error["name"] == name
    assert message in error["message"]


def test_a_malformed_userinfo_reaches_the_popup_as_an_error(tmp_path, idp) -> None:
    idp.apis["/oauth2/v3/userinfo"] = lambda grant, request: ["not", "an", "object"]
    app = google_app(tmp_path, idp)
    error = sign_in(app, idp, "google").message["error"]
    assert error["name"] == "ServiceUnavailableError"


# -- check-config ----------------------------------------------------------------------------

#: From https://backstage.io/docs/auth/google/provider (Configuration).
BACKSTAGE_DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    google:
      development:
        clientId: ${AUTH_GOOGLE_CLIENT_ID}
        clientSecret: ${AUTH_GOOGLE_CLIENT_SECRET}
        ## uncomment to set lifespan of user session
        # sessionDuration: { hours: 24 }
        signIn:
          resolvers:
            # See https://backstage.io/docs/auth/google/provider#resolvers for more resolvers
            - resolver: emailMatchingUserEntityAnnotation
"""
ENV = {"AUTH_GOOGLE_CLIENT_ID": "id.apps.googleusercontent.com", "AUTH_GOOGLE_CLIENT_SECRET": "s"}


def test_backstages_documented_config_passes_check_config(tmp_path) -> None:
    assert check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG, environ=ENV) == []
    full = BACKSTAGE_DOCS_CONFIG.replace(
        "        signIn:",
        "        callbackUrl: http://localhost:7007/api/auth/google/handler/frame\n"
        "        additionalScopes: [https://www.googleapis.com/auth/drive.readonly]\n"
        "        sessionDuration: { hours: 24 }\n"
        "        signIn:",
    )
    assert check_config_of(tmp_path, full, environ=ENV) == []


def test_check_config_names_a_misspelt_key(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, BACKSTAGE_DOCS_CONFIG.replace("clientSecret:", "clientSecrett:"), environ=ENV
    )
    assert errors
    assert errors[0].path.endswith("google.development.clientSecrett")
