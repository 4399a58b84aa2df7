"""The loopback fake and the popup driver, proven on the generic ``oauth2`` and ``oidc`` providers.

Every provider's full-flow test builds on these two helpers, so they get tests of
their own: a real sign-in, refresh and logout, and each fault the fake can play.
"""

from __future__ import annotations

from urllib.parse import urlsplit

import pytest

from tests.conftest import parse_web_message
from tests.providers.loopback_idp import LoopbackIdp
from tests.providers.popup import build_app
from tests.providers.popup import logout
from tests.providers.popup import refresh
from tests.providers.popup import sign_in
from tests.providers.popup import user_entity

JANE = user_entity("jane", email="jane@acme.org")


@pytest.fixture
def idp():
    fake = LoopbackIdp(
        authorize_path="/oauth/authorize",
        token_path="/oauth/token",
        apis={"/api/me": lambda grant, request: grant.user},
    )
    fake.user = {"email": "jane@acme.org", "name": "Jane Doe", "username": "jane"}
    with fake.serving():
        yield fake


def oauth2_app(tmp_path, idp, **extra):
    env = {
        "clientId": idp.client_id,
        "clientSecret": idp.client_secret,
        "authorizationUrl": f"{idp.base_url}/oauth/authorize",
        "tokenUrl": f"{idp.base_url}/oauth/token",
        "profileUrl": f"{idp.base_url}/api/me",
        "signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]},
        **extra,
    }
    return build_app(tmp_path, {"oauth2": {"development": env}}, users=[JANE])


def test_a_full_popup_flow_through_the_fake(tmp_path, idp):
    app = oauth2_app(tmp_path, idp)
    signed_in = sign_in(app, idp, "oauth2", scope="email")
    assert signed_in.authorize_url.startswith(f"{idp.base_url}/oauth/authorize?")
    response = signed_in.message["response"]
    assert response["profile"] == {"email": "jane@acme.org", "displayName": "Jane Doe"}
    assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    token_request = next(form for method, path, form, _ in idp.requests if path == "/oauth/token")
    assert token_request["grant_type"] == "authorization_code"
    assert token_request["code_verifier"]  # PKCE verified by the fake

    refreshed = refresh(app, "oauth2").json
    assert refreshed["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
    assert refreshed["providerInfo"]["accessToken"] != response["providerInfo"]["accessToken"]
    logout(app, "oauth2")
    refresh(app, "oauth2", status=401)  # the session cookie is gone


@pytest.mark.parametrize(
    ("fault", "name", "message"),
    [
        pytest.param("access_denied", "AuthenticationError", "denied access", id="denied"),
        pytest.param("expired_code", "AuthenticationError", "invalid_grant", id="expired-code"),
        pytest.param("server_error", "ServiceUnavailableError", "502", id="5xx"),
        pytest.param("malformed", "ServiceUnavailableError", "malformed", id="malformed"),
    ],
)
def test_each_fault_reaches_the_popup_as_an_error(tmp_path, idp, fault, name, message):
    app = oauth2_app(tmp_path, idp)
    if fault == "access_denied":
        idp.fault = fault  # at the authorize page
    start = app.get("/api/auth/oauth2/start?env=development", status=302)
    callback = idp.consent(start.location)
    idp.fault = fault  # then the back channel: token endpoint and APIs
    parts = urlsplit(callback)
    page = app.get(f"{parts.path}?{parts.query}", status=200)
    error = parse_web_message(page.text)["error"]
    assert error["name"] == name
    assert message in error["message"]


def test_an_oidc_provider_through_the_fake(tmp_path):
    fake = LoopbackIdp(oidc_issuer_path="/realm")
    fake.user = {"id_token": {"sub": "u-1", "email": "jane@acme.org", "name": "Jane Doe"}}
    with fake.serving():
        env = {
            "metadataUrl": f"{fake.issuer}/.well-known/openid-configuration",
            "clientId": fake.client_id,
            "clientSecret": fake.client_secret,
            "prompt": "login",
            "signIn": {"resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]},
        }
        app = build_app(tmp_path, {"oidc": {"development": env}}, users=[JANE])
        signed_in = sign_in(app, fake, "oidc")
        response = signed_in.message["response"]
        assert response["providerInfo"]["idToken"]
        assert response["backstageIdentity"]["identity"]["userEntityRef"] == "user:default/jane"
        assert fake.authorize_query()["nonce"]
        assert refresh(app, "oidc").json["profile"]["email"] == "jane@acme.org"
