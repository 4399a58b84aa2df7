"""ProxyRouteHandlers: ``/refresh`` signs in whoever the request says, the popup routes are 501.

As in Backstage's ``createProxyAuthRouteHandlers``: no env level, no
``X-Requested-With`` check, and the sign-in resolver always runs.
"""

from __future__ import annotations

import jwt
import pytest
from webob import Request

from tests.proxy.conftest import EMAIL_RESOLVER
from tests.proxy.conftest import HeaderAuthenticator
from tests.proxy.conftest import proxy_app
from wsgiauth.config import Config
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import UnimplementedError
from wsgiauth.proxy import ProfileInfo
from wsgiauth.proxy import ProxyAuthenticatorResult
from wsgiauth.proxy import create_proxy_auth_provider_factory
from wsgiauth.proxy.route_handlers import ProxyRouteHandlers
from wsgiauth.types import BackstageIdentityResponse
from wsgiauth.types import BackstageSignInResult

JANE = {"X-Auth-Email": "jane@acme.org"}


@pytest.fixture
def testapp():
    return proxy_app(create_proxy_auth_provider_factory(HeaderAuthenticator), EMAIL_RESOLVER)


@pytest.mark.parametrize("method", [pytest.param("GET", id="GET"), pytest.param("POST", id="POST")])
def test_refresh_answers_the_session_of_the_caller(testapp, method):
    response = testapp.request("/api/auth/header/refresh", method=method, headers=JANE)
    assert response.status_int == 200
    assert response.content_type == "application/json"
    body = response.json
    assert body["profile"] == {"email": "jane@acme.org", "displayName": "From the proxy"}
    assert body["providerInfo"] == {"header": "X-Auth-Email"}
    identity = body["backstageIdentity"]
    assert identity["identity"] == {
        "type": "user",
        "userEntityRef": "user:default/jane",
        "ownershipEntityRefs": [
            "user:default/jane",
            "group:default/team-a",
            "group:default/team-b",
        ],
    }
    claims = jwt.decode(identity["token"], options={"verify_signature": False})
    assert claims["sub"] == "user:default/jane"


def test_refresh_needs_no_x_requested_with_and_sets_no_cookie(testapp):
    response = testapp.get("/api/auth/header/refresh", headers=JANE)  # an OAuth refresh: 401
    assert response.status_int == 200
    assert "Set-Cookie" not in response.headers


@pytest.mark.parametrize(
    ("headers", "status", "name", "message"),
    [
        pytest.param({}, 401, "AuthenticationError", "Missing X-Auth-Email header", id="no-header"),
        pytest.param(
            {"X-Auth-Email": "stranger@nowhere.example"},
            404,
            "NotFoundError",
            "Failed to sign-in, unable to resolve user identity",
            id="not-in-the-catalog",
        ),
    ],
)
def test_refresh_errors_are_json(testapp, headers, status, name, message):
    response = testapp.get("/api/auth/header/refresh", headers=headers, status=status)
    assert response.json["error"]["name"] == name
    assert response.json["error"]["message"].startswith(message)
    assert response.json["response"] == {"statusCode": status}


@pytest.mark.parametrize(
    "route", [pytest.param("start", id="start"), pytest.param("handler/frame", id="handler-frame")]
)
def test_the_popup_routes_are_not_implemented(testapp, route):
    response = testapp.get(f"/api/auth/header/{route}?env=development", headers=JANE, status=501)
    assert response.json["error"] == {"name": "NotImplementedError", "message": "Not implemented"}


def test_a_proxy_provider_has_no_logout_route(testapp):
    response = testapp.post("/api/auth/header/logout", headers=JANE, status=404)
    assert response.json["error"]["message"] == "Unknown route 'logout' of auth provider 'header'"


# -- the handlers on their own ---------------------------------------------------------------


class Recorder:
    """A resolver and identity response that record what they were given."""

    def __init__(self) -> None:
        self.resolved = []
        self.responded = []

    def resolver(self, info, context):
        self.resolved.append((info, context))
        return BackstageSignInResult(token="a.b.c")  # noqa: S106 - not a secret

    def identity_response(self, result):
        self.responded.append(result)
        return BackstageIdentityResponse(
            token=result.token,
            user_entity_ref="user:default/jane",
            ownership_entity_refs=("user:default/jane",),
        )


class NoInfoAuthenticator(HeaderAuthenticator):
    def authenticate(self, request):
        return ProxyAuthenticatorResult(result={"email": "jane@acme.org"})


def handlers_with(recorder, authenticator_class=HeaderAuthenticator, context=None):
    return ProxyRouteHandlers(
        authenticator_class(Config.from_dict({})),
        sign_in_resolver=recorder.resolver,
        resolver_context=context,
        identity_response=recorder.identity_response,
    )


def test_the_resolver_gets_the_profile_the_raw_result_and_the_context():
    recorder, context = Recorder(), object()
    handlers = handlers_with(recorder, context=context)
    response = handlers.refresh(Request.blank("/refresh", headers=JANE))
    [(info, given_context)] = recorder.resolved
    assert info.profile == ProfileInfo(email="jane@acme.org", display_name="From the proxy")
    assert info.result == {"email": "jane@acme.org"}
    assert given_context is context
    assert recorder.responded == [BackstageSignInResult(token="a.b.c")]  # noqa: S106
    assert response.json["backstageIdentity"] == {
        "token": "a.b.c",
        "identity": {
            "type": "user",
            "userEntityRef": "user:default/jane",
            "ownershipEntityRefs": ["user:default/jane"],
        },
    }


def test_no_provider_info_leaves_it_out_of_the_answer():
    handlers = handlers_with(Recorder(), NoInfoAuthenticator)
    body = handlers.refresh(Request.blank("/refresh")).json
    assert "providerInfo" not in body
    assert body["profile"] == {"email": "jane@acme.org", "displayName": "From the proxy"}


def test_a_refused_request_never_reaches_the_resolver():
    recorder = Recorder()
    with pytest.raises(AuthenticationError):
        handlers_with(recorder).refresh(Request.blank("/refresh"))
    assert recorder.resolved == []


@pytest.mark.parametrize(
    "route", [pytest.param("start", id="start"), pytest.param("frame_handler", id="frame-handler")]
)
def test_the_popup_routes_raise_unimplemented(route):
    recorder = Recorder()
    with pytest.raises(UnimplementedError) as info:
        getattr(handlers_with(recorder), route)(Request.blank("/", headers=JANE))
    assert info.value.status_code == 501
    assert recorder.resolved == []
