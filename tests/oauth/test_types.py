"""The OAuth authenticator protocols and the values that cross them.

``OAuthAuthenticator`` and ``SupportsOAuthLogout`` are runtime-checkable: the
route handlers ask ``isinstance(authenticator, SupportsOAuthLogout)`` before
offering a provider logout. The built-in authenticators are held to the
protocol's signatures, and the data classes' defaults are checked where they
reach the wire.
"""

from __future__ import annotations

import dataclasses

import pytest

from tests.conftest import APP_ORIGIN
from tests.conftest import FakeAuthenticator
from tests.conftest import set_cookies
from tests.conftest import state_of
from tests.oauth.test_provider_factory import app_with
from tests.protocols import protocol_mismatches
from wsgiauth.oauth import OAuthAuthenticator
from wsgiauth.oauth import OAuthSession
from wsgiauth.oauth import OAuthStartResponse
from wsgiauth.oauth import SupportsOAuthLogout
from wsgiauth.oauth import create_oauth_provider_factory
from wsgiauth.providers.oauth2 import OAuth2Authenticator
from wsgiauth.providers.oidc import OidcAuthenticator

XRW = {"X-Requested-With": "XMLHttpRequest"}


@pytest.mark.parametrize(
    "implementation",
    [
        pytest.param(OidcAuthenticator, id="oidc"),
        pytest.param(OAuth2Authenticator, id="oauth2"),
        pytest.param(FakeAuthenticator, id="tests-fake"),
    ],
)
def test_authenticators_implement_the_protocol(implementation):
    assert protocol_mismatches(implementation, OAuthAuthenticator) == []
    for attribute in OAuthAuthenticator.__annotations__:
        assert hasattr(implementation, attribute), attribute


#: The fake authenticator without ``logout``: a provider with no session to end.
NoLogout = type(
    "NoLogout",
    (),
    {
        name: member
        for name, member in vars(FakeAuthenticator).items()
        if name not in ("logout", "__dict__", "__weakref__")
    },
)


def test_logout_support_is_seen_at_runtime():
    fake = FakeAuthenticator(None, "http://cb")
    assert isinstance(fake, OAuthAuthenticator)
    assert isinstance(fake, SupportsOAuthLogout)
    no_logout = NoLogout(None, "http://cb")
    assert isinstance(no_logout, OAuthAuthenticator)
    assert not isinstance(no_logout, SupportsOAuthLogout)
    assert not isinstance(object(), OAuthAuthenticator)


def signed_in(authenticator, logout_url):
    testapp = app_with(
        create_oauth_provider_factory(authenticator), {"development": {"logoutUrl": logout_url}}
    )
    start = testapp.get(f"/api/auth/fake/start?env=development&origin={APP_ORIGIN}")
    testapp.get(f"/api/auth/fake/handler/frame?state={state_of(start.location)}&code=jane@x.org")
    return testapp


def test_an_authenticator_with_logout_is_asked_for_the_logout_url():
    testapp = signed_in(FakeAuthenticator, "https://idp.example/end")
    response = testapp.post("/api/auth/fake/logout?env=development", headers=XRW)
    assert response.json == {"logoutUrl": "https://idp.example/end"}
    assert "Max-Age=0" in set_cookies(response)["fake-refresh-token"]


def test_an_authenticator_without_logout_still_gets_its_cookies_cleared():
    testapp = signed_in(NoLogout, "https://idp.example/end")
    response = testapp.post("/api/auth/fake/logout?env=development", headers=XRW)
    assert response.content_type == "text/plain"
    assert response.body == b""
    assert "Max-Age=0" in set_cookies(response)["fake-refresh-token"]


class SeeOther(FakeAuthenticator):
    def start(self, input):
        started = super().start(input)
        return OAuthStartResponse(url=started.url, status=303)


@pytest.mark.parametrize(
    ("authenticator", "status"),
    [
        pytest.param(FakeAuthenticator, 302, id="default-302"),
        pytest.param(SeeOther, 303, id="own-status"),
    ],
)
def test_the_start_response_status_reaches_the_browser(authenticator, status):
    testapp = app_with(create_oauth_provider_factory(authenticator), {"development": {}})
    response = testapp.get(f"/api/auth/fake/start?env=development&origin={APP_ORIGIN}")
    assert response.status_int == status
    assert response.location.startswith("https://idp.example/authorize?")


def test_a_session_needs_only_an_access_token_and_is_bearer_by_default():
    session = OAuthSession(access_token="at")
    assert (session.token_type, session.scope, session.refresh_token) == ("Bearer", "", None)
    with pytest.raises(dataclasses.FrozenInstanceError):
        session.access_token = "other"  # type: ignore[misc]
