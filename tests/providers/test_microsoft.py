"""The ``microsoft`` provider: profile, Graph, scope transform, resolvers, and the popup flow.

The fake answers on loopback for ``login.microsoftonline.com`` (the tenant's v2.0
authorize and token endpoints) and ``graph.microsoft.com`` (``/v1.0/me/`` and the
photo), rerouted by the HttpClient test seam. Like Entra ID it issues JWT access
tokens whose ``aud`` is Graph or the resource asked for, rotates refresh tokens, and
issues a token for another resource on a refresh grant that asks for its scope.
"""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import urlsplit

import jwt
import pytest
from webob import Request
from webob import Response

from tests.providers.loopback_idp import Grant
from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.popup import FAULTS
from tests.providers.popup import XRW
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
from wsgiauth.providers import microsoft
from wsgiauth.providers.microsoft import GRAPH_AUDIENCE
from wsgiauth.providers.microsoft import MicrosoftAuthenticator
from wsgiauth.registry import BUILTIN_PROVIDERS
from wsgiauth.sign_in import SIGN_IN_FAILED
from wsgiauth.sign_in import SignInInfo
from wsgiauth.types import ProfileInfo

TENANT = "7c5f0a2e-1111-4d4b-9b9a-0123456789ab"
USER_ID = "87d349ed-44d7-43e1-9a83-5f2406dee5bd"
ME = {
    "id": USER_ID,
    "displayName": "Jane Doe",
    "givenName": "Jane",
    "surname": "Doe",
    "mail": "jane@acme.org",
    "userPrincipalName": "jane_acme.org#EXT#@acme.onmicrosoft.com",
}
PHOTO = b"\xff\xd8\xff\xe0 a small jpeg"
PHOTO_URL = "data:image/jpeg;base64," + base64.b64encode(PHOTO).decode()
REQUIRED = "email openid offline_access user.read"
JANE = user_entity(
    "jane",
    email="jane@acme.org",
    **{"graph.microsoft.com/user-id": USER_ID, "microsoft.com/email": "jane@acme.org"},
)


def unsigned(**claims: Any) -> str:
    return jwt.encode(claims, "not-checked-000000000000000000000", algorithm="HS256")


def authenticator(**kw: Any) -> MicrosoftAuthenticator:
    return MicrosoftAuthenticator(
        credentials=ClientCredentials("id", "secret", "client_secret_post"),
        callback_url="http://localhost:7007/api/auth/microsoft/handler/frame",
        http=create_http_client(),
        tenant_id=TENANT,
        **kw,
    )


def result(full_profile: dict[str, Any], id_token: str | None = None) -> OAuthAuthenticatorResult:
    return OAuthAuthenticatorResult(
        full_profile=full_profile, session=OAuthSession(access_token="at", id_token=id_token)
    )


# -- the module ------------------------------------------------------------------------------


def test_module_is_registered_under_backstages_id() -> None:
    assert BUILTIN_PROVIDERS["microsoft"] == "wsgiauth.providers.microsoft:module"
    assert microsoft.module.provider_id == "microsoft"
    assert set(microsoft.module.resolvers) == {
        "emailMatchingUserEntityAnnotation",
        "userIdMatchingUserEntityAnnotation",
    }
    assert isinstance(authenticator(), OAuthAuthenticator)
    assert MicrosoftAuthenticator.persist_scopes is False
    assert " ".join(MicrosoftAuthenticator.required_scopes) == REQUIRED


# -- the profile -----------------------------------------------------------------------------


def test_graph_me_becomes_the_passport_profile() -> None:
    profile = microsoft._microsoft_profile(ME)
    assert profile["provider"] == "microsoft"
    assert profile["id"] == USER_ID
    assert profile["displayName"] == "Jane Doe"
    assert profile["name"] == {"familyName": "Doe", "givenName": "Jane"}
    assert profile["emails"] == [{"type": "work", "value": "jane@acme.org"}]
    no_mail = microsoft._microsoft_profile({**ME, "mail": None})
    assert no_mail["emails"][0]["value"] == ME["userPrincipalName"]


def test_profile_transform_reads_mail_name_and_photo() -> None:
    profile = {**microsoft._microsoft_profile(ME), "photos": [{"value": PHOTO_URL}]}
    info = authenticator().default_profile_transform(result(profile))
    assert info == ProfileInfo(email="jane@acme.org", display_name="Jane Doe", picture=PHOTO_URL)


def test_without_a_profile_the_id_token_gives_email_and_name() -> None:
    token = unsigned(email="jane@acme.org", name="Jane Doe", oid=USER_ID)
    info = authenticator().default_profile_transform(result({}, token))
    assert info == ProfileInfo(email="jane@acme.org", display_name="Jane Doe")


@pytest.mark.parametrize(
    ("claims", "graph"),
    [
        pytest.param(
            {"aud": GRAPH_AUDIENCE, "scp": "openid User.Read email"}, True, id="user.read"
        ),
        pytest.param({"aud": GRAPH_AUDIENCE, "scp": "User.Read.All"}, True, id="user.read.all"),
        pytest.param(
            {"aud": GRAPH_AUDIENCE, "scp": "https://graph.microsoft.com/User.Read"},
            True,
            id="full-uri",
        ),
        pytest.param({"aud": GRAPH_AUDIENCE, "scp": "Mail.Send"}, False, id="no-user-read"),
        pytest.param({"aud": "api://backend", "scp": "User.Read"}, False, id="other-resource"),
    ],
)
def test_the_profile_is_read_only_with_a_graph_user_read_token(claims, graph) -> None:
    assert microsoft._has_graph_read_scope(unsigned(**claims)) is graph
    assert authenticator()._skip_profile(unsigned(**claims)) is not graph


def test_an_unreadable_token_still_tries_graph_and_skip_user_profile_never_does() -> None:
    assert authenticator()._skip_profile("opaque-token") is False
    graph_token = unsigned(aud=GRAPH_AUDIENCE, scp="User.Read")
    assert authenticator(skip_user_profile=True)._skip_profile(graph_token) is True


@pytest.mark.parametrize(
    ("query", "computed", "sent"),
    [
        pytest.param("", REQUIRED, REQUIRED, id="default"),
        pytest.param(
            "scope=Mail.Send", f"Mail.Send {REQUIRED}", f"Mail.Send {REQUIRED}", id="graph"
        ),
        pytest.param(
            "scope=api://backend/.default",
            f"api://backend/.default {REQUIRED}",
            "api://backend/.default offline_access",
            id="other-resource",
        ),
        pytest.param(
            "scope=https://management.azure.com/user_impersonation%20offline_access",
            "ignored",
            "https://management.azure.com/user_impersonation offline_access",
            id="no-duplicate",
        ),
    ],
)
def test_the_scope_transform(query, computed, sent) -> None:
    request = Request.blank(f"/api/auth/microsoft/start?{query}")
    assert MicrosoftAuthenticator._scope(request, computed) == sent


# -- the resolvers ---------------------------------------------------------------------------


def resolve(name: str, options: Any, info: SignInInfo, context: AnnotatedUserContext):
    return microsoft.module.resolvers[name](options)(info, context)  # type: ignore[arg-type]


def jane_info(**profile: Any) -> SignInInfo:
    full = microsoft._microsoft_profile({**ME, **profile})
    return SignInInfo(profile=ProfileInfo(email=full["emails"][0]["value"]), result=result(full))


def test_user_id_matching_user_entity_annotation() -> None:
    context = AnnotatedUserContext({"graph.microsoft.com/user-id": USER_ID})
    token = resolve("userIdMatchingUserEntityAnnotation", None, jane_info(), context).token
    assert token == "user:default/jane"
    assert context.queries == [{"annotations": {"graph.microsoft.com/user-id": USER_ID}}]


def test_user_id_matching_user_entity_annotation_not_found_and_fallback() -> None:
    name = "userIdMatchingUserEntityAnnotation"
    with pytest.raises(NotFoundError, match=SIGN_IN_FAILED[:20]):
        resolve(name, None, jane_info(), AnnotatedUserContext({}))
    options = {"dangerouslyAllowSignInWithoutUserInCatalog": True}
    token = resolve(name, options, jane_info(), AnnotatedUserContext({})).token
    assert token == f"user:default/{USER_ID}"
    with pytest.raises(AuthenticationError, match="Microsoft profile contained no id"):
        resolve(name, None, jane_info(id=None), AnnotatedUserContext({}))
    with pytest.raises(Exception, match="unknown option"):
        microsoft.module.resolvers[name]({"annotation": "x"})


def test_email_matching_user_entity_annotation_uses_microsoft_com_email() -> None:
    context = AnnotatedUserContext({"microsoft.com/email": "jane@acme.org"})
    token = resolve("emailMatchingUserEntityAnnotation", None, jane_info(), context).token
    assert token == "user:default/jane"
    assert context.queries == [{"annotations": {"microsoft.com/email": "jane@acme.org"}}]


# -- the popup flow against a fake Entra ID --------------------------------------------------


class FakeEntra(LoopbackIdp):
    """Entra ID's v2.0 endpoints and Graph, with JWT access tokens per resource."""

    def __init__(self) -> None:
        super().__init__(
            authorize_path=f"/{TENANT}/oauth2/v2.0/authorize",
            token_path=f"/{TENANT}/oauth2/v2.0/token",
            apis={"/v1.0/me/": lambda grant, request: grant.user},
        )
        self.photo: bytes | None = PHOTO
        self._asked: str | None = None

    def _route(self, request: Request, form: dict[str, str]) -> Response:
        if request.path == "/v1.0/me/photos/96x96/$value" and self.fault is None:
            grant = self._bearer(request)
            if grant is None or self.photo is None:
                return Response(status=404, json_body={"error": {"code": "ImageNotFound"}})
            return Response(body=self.photo, content_type="image/jpeg")
        return super()._route(request, form)

    def _bearer(self, request: Request) -> Grant | None:
        grant = super()._bearer(request)
        if grant is None or request.path.startswith("/v1.0/"):
            # Graph takes only Graph tokens.
            token = request.headers.get("Authorization", "").partition(" ")[2]
            if (
                grant is not None
                and jwt.decode(token, options={"verify_signature": False})["aud"] != GRAPH_AUDIENCE
            ):
                return None
        return grant

    def _token(self, request: Request, form: dict[str, str]) -> Response:
        # A refresh grant may ask for another resource's scope than the consent had.
        self._asked = form.get("scope") if form.get("grant_type") == "refresh_token" else None
        return super()._token(request, form)

    def _issue(self, grant: Grant) -> dict[str, Any]:
        token = super()._issue(grant)
        scopes = (self._asked or grant.scope).split()
        resources = {s.rsplit("/", 1)[0] for s in scopes if "/" in s}
        audience = resources.pop() if resources else GRAPH_AUDIENCE
        scp = " ".join(s for s in scopes if s not in ("offline_access",))
        access = unsigned(aud=audience, scp=scp, oid=USER_ID)
        self._access[access] = grant
        token["access_token"] = access
        token["scope"] = " ".join(scopes)
        if "openid" in scopes:
            token["id_token"] = unsigned(
                aud=self.client_id, oid=USER_ID, name="Jane Doe", email="jane@acme.org"
            )
        return token


@pytest.fixture
def idp():
    fake = FakeEntra()
    fake.user = dict(ME)
    with fake.serving():
        yield fake


def microsoft_app(tmp_path, idp, resolver="userIdMatchingUserEntityAnnotation", **extra):
    env = {
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "tenantId": TENANT,
        "signIn": {"resolvers": [{"resolver": resolver}]},
        **extra,
    }
    reroute = {
        "https://login.microsoftonline.com": idp.base_url,
        "https://graph.microsoft.com": idp.base_url,
    }
    return build_app(tmp_path, {"microsoft": {"development": env}}, users=[JANE], reroute=reroute)


def token_forms(idp: FakeEntra) -> list[dict[str, str]]:
    return [form for _, path, form, _ in idp.requests if path == idp.token_path]


def test_a_full_popup_flow_against_a_fake_entra_id(tmp_path, idp) -> None:
    app = microsoft_app(tmp_path, idp, domainHint="acme.org", additionalScopes=["Mail.Send"])
    signed_in = sign_in(app, idp, "microsoft")

    url = urlsplit(signed_in.authorize_url)
    assert (url.scheme, url.netloc, url.path) == (
        "https",
        "login.microsoftonline.com",
        f"/{TENANT}/oauth2/v2.0/authorize",
    )
    query = idp.authorize_query()
    assert query["domain_hint"] == "acme.org"
    assert query["response_type"] == "code"
    assert query["client_id"] == idp.client_id
    assert query["redirect_uri"] == "http://localhost:7007/api/auth/microsoft/handler/frame"
    assert query["scope"] == f"{REQUIRED} Mail.Send"
    assert query["code_challenge_method"] == "S256"
    assert "access_type" not in query and "prompt" not in query

    response = signed_in.message["response"]
    assert response["profile"] == {
        "email": "jane@acme.org",
        "displayName": "Jane Doe",
        "picture": PHOTO_URL,
    }
    info = response["providerInfo"]
    assert info["scope"] == f"{REQUIRED} Mail.Send"  # as Entra ID answered: not persisted
    assert info["idToken"] and info["accessToken"] and info["expiresInSeconds"] == 3600
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert token_forms(idp)[0]["client_secret"] == idp.client_secret  # in the form

    refreshed = refresh(app, "microsoft").json
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert refreshed["profile"]["picture"] == PHOTO_URL
    assert token_forms(idp)[-1]["scope"] == f"{REQUIRED} Mail.Send"

    logout(app, "microsoft")
    refresh(app, "microsoft", status=401)


def test_a_token_for_another_resource_through_the_scope_upgrade(tmp_path, idp) -> None:
    app = microsoft_app(tmp_path, idp, additionalScopes=["Mail.Send"])
    sign_in(app, idp, "microsoft")

    upgraded = app.get(
        "/api/auth/microsoft/refresh?env=development&scope=api://backend/.default", headers=XRW
    ).json
    # The resource's scope alone (plus offline_access) was asked for ...
    resource_refresh, graph_refresh = token_forms(idp)[-2:]
    assert resource_refresh["scope"] == "api://backend/.default offline_access"
    # ... and the profile came with a second exchange, for a Graph token.
    assert graph_refresh["scope"] == "openid email User.Read offline_access"
    access = jwt.decode(
        upgraded["providerInfo"]["accessToken"], options={"verify_signature": False}
    )
    assert access["aud"] == "api://backend"
    assert upgraded["providerInfo"]["scope"] == "api://backend/.default offline_access"
    assert upgraded["profile"]["email"] == "jane@acme.org"
    assert upgraded["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    # The refresh token rotated twice; the session kept the last one, so it still works.
    assert refresh(app, "microsoft").json["profile"]["displayName"] == "Jane Doe"


def test_signing_in_for_another_resource_fetches_the_profile_via_graph(tmp_path, idp) -> None:
    app = microsoft_app(tmp_path, idp)
    signed_in = sign_in(app, idp, "microsoft", scope="api://backend/.default")
    assert idp.authorize_query()["scope"] == "api://backend/.default offline_access"
    response = signed_in.message["response"]
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert token_forms(idp)[-1]["scope"] == "openid email User.Read offline_access"
    assert "idToken" not in response["providerInfo"]  # no openid scope was asked for


def test_skip_user_profile_reads_nothing_from_graph(tmp_path, idp) -> None:
    app = microsoft_app(
        tmp_path, idp, resolver="emailMatchingUserEntityProfileEmail", skipUserProfile=True
    )
    response = sign_in(app, idp, "microsoft").message["response"]
    # Email and name from the ID token; no photo.
    assert response["profile"] == {"email": "jane@acme.org", "displayName": "Jane Doe"}
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert not [path for _, path, _, _ in idp.requests if path.startswith("/v1.0/")]


def test_a_user_without_a_photo_has_no_picture(tmp_path, idp) -> None:
    idp.photo = None
    app = microsoft_app(tmp_path, idp, resolver="emailMatchingUserEntityAnnotation")
    response = sign_in(app, idp, "microsoft").message["response"]
    assert "picture" not in response["profile"]
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"


@pytest.mark.parametrize(("fault", "name", "message"), FAULTS)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message) -> None:
    error = fault_error(microsoft_app(tmp_path, idp), idp, "microsoft", fault)
    assert error["name"] == name
    assert message in error["message"]


def test_a_malformed_graph_profile_reaches_the_popup_as_an_error(tmp_path, idp) -> None:
    idp.apis["/v1.0/me/"] = lambda grant, request: "not an object"
    app = microsoft_app(tmp_path, idp)
    error = sign_in(app, idp, "microsoft").message["error"]
    assert error["name"] == "ServiceUnavailableError"


# -- check-config ----------------------------------------------------------------------------

#: From https://backstage.io/docs/auth/microsoft/provider (Configuration).
BACKSTAGE_DOCS_CONFIG = """\
app:
  baseUrl: http://localhost:3000
backend:
  baseUrl: http://localhost:7007
auth:
  environment: development
  providers:
    microsoft:
      development:
        clientId: ${AZURE_CLIENT_ID}
        clientSecret: ${AZURE_CLIENT_SECRET}
        tenantId: ${AZURE_TENANT_ID}
        domainHint: ${AZURE_TENANT_ID}
        signIn:
          resolvers:
            # See https://backstage.io/docs/auth/microsoft/provider#resolvers for more resolvers
            - resolver: userIdMatchingUserEntityAnnotation
"""
ENV = {"AZURE_CLIENT_ID": "id", "AZURE_CLIENT_SECRET": "secret", "AZURE_TENANT_ID": TENANT}


def test_backstages_documented_config_passes_check_config(tmp_path) -> None:
    assert check_config_of(tmp_path, BACKSTAGE_DOCS_CONFIG, environ=ENV) == []
    full = BACKSTAGE_DOCS_CONFIG.replace(
        "        signIn:",
        "        additionalScopes: [Mail.Send]\n"
        "        skipUserProfile: true\n"
        "        sessionDuration: { hours: 24 }\n"
        "        callbackUrl: http://localhost:7007/api/auth/microsoft/handler/frame\n"
        "        signIn:",
    )
    assert check_config_of(tmp_path, full, environ=ENV) == []


def test_check_config_names_a_misspelt_key(tmp_path) -> None:
    errors = check_config_of(
        tmp_path, BACKSTAGE_DOCS_CONFIG.replace("domainHint:", "domainHnit:"), environ=ENV
    )
    assert errors
    assert errors[0].path.endswith("microsoft.development.domainHnit")


def test_tenant_id_is_required(tmp_path) -> None:
    errors = check_config_of(
        tmp_path,
        BACKSTAGE_DOCS_CONFIG.replace("        tenantId: ${AZURE_TENANT_ID}\n", ""),
        environ=ENV,
    )
    assert errors
    assert errors[0].path.endswith("microsoft.development.tenantId")
