"""The ``github`` provider: profile transform, resolvers, and the popup flow against a fake GitHub.

The fake speaks GitHub's documented endpoints and shapes: ``/login/oauth/authorize``,
``/login/oauth/access_token`` (JSON for ``Accept: application/json``, comma-separated
``scope``, errors such as ``bad_verification_code`` in a 200), the REST API's ``/user`` and
``/user/emails`` (404 without the ``user:email`` scope), and the same under ``/api/v3`` for
GitHub Enterprise. github.com and api.github.com reach it through the HttpClient reroute seam.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from webob import Request
from webob import Response

from tests.catalog.fakes import FakeTokenIssuer
from tests.catalog.fakes import claims_of
from tests.conftest import parse_web_message
from tests.providers.loopback_idp import Grant
from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.loopback_idp import query_of
from tests.providers.popup import build_app
from tests.providers.popup import check_config_of
from tests.providers.popup import fault_error
from tests.providers.popup import faults
from tests.providers.popup import logout
from tests.providers.popup import refresh
from tests.providers.popup import sign_in
from tests.providers.popup import user_entity
from wsgiauth.catalog import CatalogAuthResolverContext
from wsgiauth.catalog import YamlCatalog
from wsgiauth.config import Config
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import InputError
from wsgiauth.errors import NotFoundError
from wsgiauth.http import create_http_client
from wsgiauth.oauth import OAuthAuthenticator
from wsgiauth.oauth import OAuthAuthenticatorResult
from wsgiauth.oauth import OAuthSession
from wsgiauth.providers import github
from wsgiauth.providers.github import GithubAuthenticator
from wsgiauth.registry import BUILTIN_PROVIDERS
from wsgiauth.sign_in import SignInInfo
from wsgiauth.types import ProfileInfo

NODE_ID = "MDQ6VXNlcjU4MzIzMQ=="
#: GET /user for an account whose email is private (``email: null``), as GitHub answers it.
USER = {
    "login": "octocat",
    "id": 583231,
    "node_id": NODE_ID,
    "avatar_url": "https://avatars.githubusercontent.com/u/583231?v=4",
    "html_url": "https://github.com/octocat",
    "type": "User",
    "name": "The Octocat",
    "email": None,
}
#: GET /user/emails.
EMAILS = [
    {"email": "octocat@users.noreply.github.com", "primary": False, "verified": True},
    {"email": "octocat@acme.org", "primary": True, "verified": True, "visibility": "private"},
]
OCTOCAT = user_entity("octocat", email="octocat@acme.org", **{"github.com/user-id": NODE_ID})
CALLBACK = "http://localhost:7007/api/auth/github/handler/frame"
REROUTE_HOSTS = ("https://github.com", "https://api.github.com")


# -- the fake GitHub -----------------------------------------------------------------------------


class FakeGithub(LoopbackIdp):
    """LoopbackIdp with GitHub's paths and its own ways (comma scopes, 200 errors, 404s)."""

    def __init__(self, *, api_prefix: str = "", **kwargs: Any) -> None:
        kwargs.setdefault("refresh_tokens", False)  # an OAuth app: no refresh token ...
        kwargs.setdefault("expires_in", None)  # ... and a token that never expires
        super().__init__(
            authorize_path="/login/oauth/authorize",
            token_path="/login/oauth/access_token",
            apis={
                f"{api_prefix}/user": lambda grant, request: grant.user["user"],
                f"{api_prefix}/user/emails": lambda grant, request: grant.user["emails"],
            },
            **kwargs,
        )
        self.api_prefix = api_prefix
        self.user = {"user": dict(USER), "emails": list(EMAILS)}

    def _route(self, request: Request, form: dict[str, str]) -> Response:
        if request.path == f"{self.api_prefix}/user/emails" and self.fault is None:
            grant = self._bearer(request)
            scopes = set((grant.scope if grant else "").replace(",", " ").split())
            if grant is not None and not scopes & {"user", "user:email"}:
                return Response(json_body={"message": "Not Found"}, status=404)
        if (
            request.path == self.token_path
            and self.fault == "expired_code"
            and form.get("grant_type") == "authorization_code"
        ):
            # GitHub answers a bad code with 200 and an error body.
            return Response(
                json_body={
                    "error": "bad_verification_code",
                    "error_description": "The code passed is incorrect or expired.",
                },
            )
        return super()._route(request, form)

    def _issue(self, grant: Grant) -> dict[str, Any]:
        token = super()._issue(grant)
        token["scope"] = ",".join(grant.scope.split())  # GitHub's separator
        return token

    def revoke_all(self) -> None:
        """As a user revoking the app's authorization does."""
        self._access.clear()

    def token_requests(self) -> list[dict[str, str]]:
        return [form for _, path, form, _ in self.requests if path == self.token_path]

    def api_calls(self, path: str) -> int:
        return sum(1 for _, seen, _, _ in self.requests if seen == self.api_prefix + path)


@pytest.fixture
def idp():
    fake = FakeGithub()
    with fake.serving():
        yield fake


def github_app(tmp_path, idp, *, users=(OCTOCAT,), reroute=True, **env: Any):
    block = {
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "signIn": {"resolvers": [{"resolver": "usernameMatchingUserEntityName"}]},
        **env,
    }
    hosts = {host: idp.base_url for host in REROUTE_HOSTS} if reroute else None
    return build_app(tmp_path, {"github": {"development": block}}, users=list(users), reroute=hosts)


# -- the popup flow ------------------------------------------------------------------------------


def test_an_oauth_app_signs_in_refreshes_and_logs_out(tmp_path, idp):
    app = github_app(tmp_path, idp, additionalScopes=["user:email"])
    signed_in = sign_in(app, idp, "github")

    assert signed_in.authorize_url.startswith("https://github.com/login/oauth/authorize?")
    query = query_of(signed_in.authorize_url)
    assert set(query) == {"response_type", "client_id", "redirect_uri", "scope", "state"}
    assert query["response_type"] == "code"
    assert query["client_id"] == idp.client_id
    assert query["redirect_uri"] == CALLBACK
    assert query["scope"] == "read:user user:email"

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "octocat@acme.org",  # private: from /user/emails
        "displayName": "The Octocat",
        "picture": USER["avatar_url"],
    }
    info = response["providerInfo"]
    assert info["scope"] == "read:user user:email"
    assert "expiresInSeconds" not in info and "idToken" not in info
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/octocat"

    [token_request] = idp.token_requests()
    assert token_request["grant_type"] == "authorization_code"
    assert token_request["client_secret"] == idp.client_secret  # in the form, as node-oauth
    assert "code_verifier" not in token_request
    assert idp.requests[-1][3]["Authorization"] == f"Bearer {info['accessToken']}"

    # No refresh token: the access token is the session, and /refresh re-reads the user.
    refreshed = refresh(app, "github").json
    assert refreshed["providerInfo"]["accessToken"] == info["accessToken"]
    assert refreshed["providerInfo"]["scope"] == "read:user user:email"
    assert refreshed["profile"]["email"] == "octocat@acme.org"
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/octocat"
    assert len(idp.token_requests()) == 1
    assert idp.api_calls("/user") == 2

    # A wider scope needs consent at GitHub again.
    refresh(app, "github", params={"scope": "repo"}, status=401)

    logout(app, "github")
    refresh(app, "github", status=401)


def test_refresh_fails_once_the_token_is_revoked(tmp_path, idp):
    app = github_app(tmp_path, idp)
    sign_in(app, idp, "github")
    idp.revoke_all()  # the user revokes the app at GitHub: /user answers 401
    failed = refresh(app, "github", status=401).json
    assert failed["error"]["name"] == "AuthenticationError"
    assert failed["error"]["cause"] == {
        "name": "AuthenticationError",
        "message": "Invalid access token",
    }


def test_the_session_cookie_holds_the_prefixed_access_token(tmp_path, idp):
    app = github_app(tmp_path, idp)
    info = sign_in(app, idp, "github").message["response"]["providerInfo"]
    cookie = app.cookies["github-refresh-token"].strip('"')
    assert cookie == f"access-token-v2.{info['accessToken']}"


def test_without_user_email_scope_the_public_email_is_kept(tmp_path, idp):
    idp.user["user"]["email"] = "octocat@github.com"  # public
    app = github_app(
        tmp_path,
        idp,
        signIn={"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]},
        users=[user_entity("octo", email="octocat@github.com")],
    )
    response = sign_in(app, idp, "github").message["response"]
    assert idp.api_calls("/user/emails") == 1  # answered 404: no user:email scope
    assert response["profile"]["email"] == "octocat@github.com"
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/octo"


def test_a_github_app_with_expiring_tokens_refreshes_at_the_token_endpoint(tmp_path):
    fake = FakeGithub(
        refresh_tokens=True, expires_in=28800, token_extra={"refresh_token_expires_in": 15897600}
    )
    with fake.serving():
        app = github_app(
            tmp_path,
            fake,
            signIn={"resolvers": [{"resolver": "userIdMatchingUserEntityAnnotation"}]},
        )
        response = sign_in(app, fake, "github").message["response"]
        assert response["providerInfo"]["expiresInSeconds"] == 28800
        assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/octocat"
        assert not app.cookies["github-refresh-token"].startswith("access-token-v2.")

        refreshed = refresh(app, "github").json
        grant = fake.token_requests()[-1]
        assert grant["grant_type"] == "refresh_token"
        assert (grant["client_id"], grant["client_secret"]) == (fake.client_id, fake.client_secret)
        assert grant["scope"] == "read:user"
        new_token = refreshed["providerInfo"]["accessToken"]
        assert new_token != response["providerInfo"]["accessToken"]
        assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/octocat"
        refresh(app, "github")  # the rotated refresh token was kept
        assert len(fake.token_requests()) == 3


def test_github_enterprise_uses_the_instance_and_its_api_v3(tmp_path):
    fake = FakeGithub(api_prefix="/api/v3")
    with fake.serving():
        app = github_app(tmp_path, fake, reroute=False, enterpriseInstanceUrl=f"{fake.base_url}/")
        signed_in = sign_in(app, fake, "github")
        assert signed_in.authorize_url.startswith(f"{fake.base_url}/login/oauth/authorize?")
        response = signed_in.message["response"]
        assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/octocat"
        assert fake.api_calls("/user") == 1
        assert refresh(app, "github").json["profile"]["displayName"] == "The Octocat"


@pytest.mark.parametrize(("fault", "name", "message"), faults("bad_verification_code"))
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message):
    error = fault_error(github_app(tmp_path, idp), idp, "github", fault)
    assert error["name"] == name
    assert message in error["message"]


def test_a_user_api_that_breaks_after_the_token_is_an_error_in_the_popup(tmp_path, idp):
    app = github_app(tmp_path, idp)
    start = app.get("/api/auth/github/start?env=development", status=302)
    callback = urlsplit(idp.consent(start.location))
    idp.apis["/user"] = lambda grant, request: ["not", "an", "object"]
    page = app.get(f"{callback.path}?{callback.query}", status=200)
    error = parse_web_message(page.text)["error"]
    assert error["name"] == "ServiceUnavailableError"


def test_a_user_missing_from_the_catalog_fails_in_the_popup(tmp_path, idp):
    app = github_app(tmp_path, idp, users=[user_entity("someone-else")])
    message = sign_in(app, idp, "github").message
    assert message["error"]["name"] == "NotFoundError"


# -- the authenticator and its profile -----------------------------------------------------------


def make(**block: Any) -> GithubAuthenticator:
    config = Config.from_dict({"clientId": "id", "clientSecret": "secret", **block})
    return GithubAuthenticator.from_config(config, callback_url=CALLBACK, http=create_http_client())


def test_the_authenticator_is_backstages_shape():
    assert isinstance(make(), OAuthAuthenticator)
    assert GithubAuthenticator.persist_scopes is True
    assert GithubAuthenticator.required_scopes == ("read:user",)
    assert BUILTIN_PROVIDERS["github"] == "wsgiauth.providers.github:module"
    assert github.module.provider_id == "github"
    assert set(github.module.resolvers) == {
        "usernameMatchingUserEntityName",
        "userIdMatchingUserEntityAnnotation",
    }


def result(**profile: Any) -> OAuthAuthenticatorResult:
    return OAuthAuthenticatorResult(full_profile=profile, session=OAuthSession(access_token="t"))


def transform(**profile: Any) -> ProfileInfo:
    return make().default_profile_transform(result(**profile))


def test_urls_for_github_com_and_an_enterprise_instance():
    public = make()
    assert (public.authorize_url, public.token_url, public.user_url, public.emails_url) == (
        "https://github.com/login/oauth/authorize",
        "https://github.com/login/oauth/access_token",
        "https://api.github.com/user",
        "https://api.github.com/user/emails",
    )
    ghe = make(enterpriseInstanceUrl="https://ghe.acme.example/")
    assert (ghe.authorize_url, ghe.token_url, ghe.user_url, ghe.emails_url) == (
        "https://ghe.acme.example/login/oauth/authorize",
        "https://ghe.acme.example/login/oauth/access_token",
        "https://ghe.acme.example/api/v3/user",
        "https://ghe.acme.example/api/v3/user/emails",
    )


def test_profile_transform_reads_passports_fields():
    assert transform(
        id="583231",
        username="octocat",
        displayName="The Octocat",
        emails=[{"value": "octocat@acme.org", "verified": True}],
        photos=[{"value": "https://avatars/octocat"}],
    ) == ProfileInfo(
        email="octocat@acme.org", display_name="The Octocat", picture="https://avatars/octocat"
    )


def test_profile_transform_falls_back_to_the_login_then_the_id():
    assert transform(id="1", username="octocat", displayName=None).display_name == "octocat"
    assert transform(id="1", username=None, displayName=None).display_name == "1"
    assert transform(id="1").email is None and transform(id="1").picture is None


def test_profile_transform_drops_an_unverified_email():
    profile = transform(id="1", emails=[{"value": "x@acme.org", "verified": False}])
    assert profile.email is None


# -- resolvers -----------------------------------------------------------------------------------


@pytest.fixture
def context(tmp_path):
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(OCTOCAT))
    return CatalogAuthResolverContext(YamlCatalog([path]), FakeTokenIssuer())


def info(**profile: Any) -> SignInInfo:
    return SignInInfo(profile=ProfileInfo(), result=result(**profile))


def resolve(name: str, profile: dict[str, Any], context, **options: Any) -> dict[str, Any]:
    resolver = github.module.resolvers[name](options or None)
    return claims_of(resolver(info(**profile), context).token)


def test_username_matching_user_entity_name(context):
    claims = resolve("usernameMatchingUserEntityName", {"username": "octocat"}, context)
    assert claims["sub"] == "user:default/octocat"
    assert claims["ent"] == ["user:default/octocat"]
    with pytest.raises(NotFoundError):
        resolve("usernameMatchingUserEntityName", {"username": "nobody"}, context)
    with pytest.raises(AuthenticationError, match="does not contain a username"):
        resolve("usernameMatchingUserEntityName", {"nodeId": NODE_ID}, context)


def test_username_matching_with_the_dangerous_fallback(context):
    claims = resolve(
        "usernameMatchingUserEntityName",
        {"username": "Nobody"},
        context,
        dangerouslyAllowSignInWithoutUserInCatalog=True,
    )
    assert claims["sub"] == "user:default/nobody"
    with pytest.raises(InputError, match="Invalid sign-in resolver options"):
        resolve("usernameMatchingUserEntityName", {"username": "x"}, context, allowedDomains=[])


def test_user_id_matching_user_entity_annotation(context):
    claims = resolve("userIdMatchingUserEntityAnnotation", {"nodeId": NODE_ID}, context)
    assert claims["sub"] == "user:default/octocat"
    assert claims["ent"] == ["user:default/octocat"]
    with pytest.raises(AuthenticationError, match="does not contain a user ID"):
        resolve("userIdMatchingUserEntityAnnotation", {"username": "octocat"}, context)
    with pytest.raises(NotFoundError):
        resolve("userIdMatchingUserEntityAnnotation", {"nodeId": "U_unknown"}, context)
    claims = resolve(
        "userIdMatchingUserEntityAnnotation",
        {"nodeId": "U_Unknown"},
        context,
        dangerouslyAllowSignInWithoutUserInCatalog=True,
    )
    assert claims["sub"] == "user:default/u_unknown"


def test_user_id_matching_refuses_a_match_that_differs_in_case(tmp_path):
    # The catalog matches without case; GitHub node IDs are case-sensitive.
    path = tmp_path / "users.yaml"
    path.write_text(yaml.safe_dump(user_entity("hubot", **{"github.com/user-id": "U_abc"})))
    context = CatalogAuthResolverContext(YamlCatalog([path]), FakeTokenIssuer())
    with pytest.raises(AuthenticationError, match="GitHub user ID does not match"):
        resolve("userIdMatchingUserEntityAnnotation", {"nodeId": "U_ABC"}, context)


# -- config --------------------------------------------------------------------------------------

#: From Backstage's docs/auth/github/provider.md (plus the app and backend URLs).
BACKSTAGE_DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    github:
      development:
        clientId: ${AUTH_GITHUB_CLIENT_ID}
        clientSecret: ${AUTH_GITHUB_CLIENT_SECRET}
        ## uncomment if using GitHub Enterprise
        enterpriseInstanceUrl: ${AUTH_GITHUB_ENTERPRISE_INSTANCE_URL}
        signIn:
          resolvers:
            # Matches the GitHub username with the Backstage user entity name.
            # See https://backstage.io/docs/auth/github/provider#resolvers for more resolvers.
            - resolver: usernameMatchingUserEntityName
"""
ENV = {
    "AUTH_GITHUB_CLIENT_ID": "b59241722e3c3b4816e2",
    "AUTH_GITHUB_CLIENT_SECRET": "s3cret",
    "AUTH_GITHUB_ENTERPRISE_INSTANCE_URL": "https://ghe.acme.example",
}


def test_backstages_documented_config_passes_check_config(tmp_path):
    assert check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG, environ=ENV) == []
    full = BACKSTAGE_DOCS_CONFIG.replace(
        "        signIn:",
        "        callbackUrl: https://your-intermediate-service.com/handler\n"
        "        additionalScopes: [user:email]\n"
        "        sessionDuration: { hours: 24 }\n"
        "        signIn:",
    ).replace(
        "- resolver: usernameMatchingUserEntityName",
        "- resolver: userIdMatchingUserEntityAnnotation\n"
        "              dangerouslyAllowSignInWithoutUserInCatalog: false\n"
        "            - resolver: emailMatchingUserEntityProfileEmail\n"
        "            - resolver: emailLocalPartMatchingUserEntityName\n"
        "            - resolver: usernameMatchingUserEntityName",
    )
    assert check_config_of(tmp_path, full, environ=ENV) == []


@pytest.mark.parametrize("key", ["clientSecret", "enterpriseInstanceUrl"])
def test_check_config_names_a_misspelt_key(tmp_path, key):
    errors = check_config_of(
        tmp_path, BACKSTAGE_DOCS_CONFIG.replace(f"{key}:", f"{key}x:"), environ=ENV
    )
    assert errors
    assert errors[0].path.endswith(f"github.development.{key}x")


def test_check_config_refuses_a_relative_enterprise_url(tmp_path):
    errors = check_config_of(
        tmp_path,
        BACKSTAGE_DOCS_CONFIG,
        environ={**ENV, "AUTH_GITHUB_ENTERPRISE_INSTANCE_URL": "ghe"},
    )
    assert [error.path for error in errors] == [
        "auth.providers.github.development.enterpriseInstanceUrl"
    ]
