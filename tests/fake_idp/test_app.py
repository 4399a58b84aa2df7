"""The fake IdP as a whole: routing and limits, then two independent clients against it.

The clients are a served fake IdP's real users: Authlib's ``OAuth2Session`` with
joserfc checking the ID token (discovery, code + PKCE, nonce, refresh rotation), and
wsgiauth's own ``oidc`` provider (oauthlib) through the auth app's routes.
"""

from __future__ import annotations

import re
import secrets
from urllib.parse import urljoin

import pytest
import requests
import webtest
from authlib.integrations.requests_client import OAuth2Session
from authlib.oidc.core import CodeIDToken
from joserfc import jwt as jose_jwt
from joserfc.jwk import KeySet

from tests.conftest import parse_web_message
from tests.fake_idp.conftest import CATALOG
from tests.fake_idp.conftest import JANE
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.fake_idp import FakeClient
from wsgiauth.fake_idp import running_fake_idp
from wsgiauth.fake_idp import users_from_catalog
from wsgiauth.middleware import AuthMiddleware

TIMEOUT = 10


# --- routing and limits -------------------------------------------------------------------


def test_discovery_and_jwks_are_served(browser, idp):
    document = browser.app.get("/.well-known/openid-configuration").json
    assert document["issuer"] == idp.issuer
    assert idp.metadata_url == f"{idp.issuer}/.well-known/openid-configuration"
    keys = browser.app.get("/jwks").json["keys"]
    assert [key["alg"] for key in keys] == ["RS256", "ES256"]


def test_every_answer_says_what_it_is(browser):
    for path in ("/jwks", "/nope"):
        response = browser.app.get(path, expect_errors=True)
        assert response.headers["X-Fake-Idp"] == "development and tests only"


def test_unknown_path_is_a_json_404(browser):
    assert browser.app.get("/nope", status=404).json["error"] == "not_found"


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        pytest.param("GET", "/token", "POST", id="get-token"),
        pytest.param("POST", "/authorize", "GET", id="post-authorize"),
        pytest.param("PUT", "/userinfo", "GET, POST", id="put-userinfo"),
        pytest.param("GET", "/sign-in", "POST", id="get-sign-in"),
    ],
)
def test_wrong_method(browser, method, path, allow):
    response = browser.app.request(path, method=method, status=405, expect_errors=True)
    assert response.headers["Allow"] == allow
    assert response.json["error"] == "invalid_request"


def test_oversized_and_odd_bodies_are_refused(browser):
    big = "grant_type=" + "x" * 70_000
    response = browser.app.post(
        "/token", big, content_type="application/x-www-form-urlencoded", status=413
    )
    assert response.json["error"] == "invalid_request"
    browser.app.post("/token", '{"a": 1}', content_type="application/json", status=415)
    browser.app.post(
        "/token", b"client_id=\xff", content_type="application/x-www-form-urlencoded", status=400
    )
    browser.app.get("/authorize?state=" + "x" * 9000, status=414)


def test_a_failing_endpoint_is_a_500_without_details(browser, idp, monkeypatch):
    def boom(token):
        raise RuntimeError("secret detail")

    monkeypatch.setattr(idp.context.store, "access_grant", boom)
    response = browser.app.get("/userinfo", headers={"Authorization": "Bearer x"}, status=500)
    assert response.json == {"error": "server_error", "error_description": "Internal error."}


# --- Authlib's client ---------------------------------------------------------------------


REDIRECT = "http://127.0.0.1:9/callback"


def pick_user(session: requests.Session, authorize_url: str, user: str = JANE) -> str:
    """Show the sign-in page and pick ``user``; the callback URL (not followed)."""
    page = session.get(authorize_url, timeout=TIMEOUT, allow_redirects=False)
    assert page.status_code == 200, page.text
    request_id = re.search(r'name="request" value="([^"]+)"', page.text).group(1)
    answer = session.post(
        urljoin(page.url, "sign-in"),
        data={"request": request_id, "user": user},
        timeout=TIMEOUT,
        allow_redirects=False,
    )
    assert answer.status_code == 303, answer.text
    return answer.headers["Location"]


@pytest.fixture(scope="module")
def served():
    clients = [
        FakeClient(client_id="authlib", client_secret="authlib-secret", redirect_uris=(REDIRECT,)),
        FakeClient(client_id="authlib-es", redirect_uris=(REDIRECT,),
                   id_token_signed_response_alg="ES256"),
    ]  # fmt: skip
    with running_fake_idp(users_from_catalog(CATALOG), clients) as idp:
        yield idp


def validated_id_token(id_token: str, metadata: dict, client_id: str, nonce: str | None):
    keys = KeySet.import_key_set(requests.get(metadata["jwks_uri"], timeout=TIMEOUT).json())
    decoded = jose_jwt.decode(id_token, keys, algorithms=["RS256", "ES256"])
    claims = CodeIDToken(
        decoded.claims,
        decoded.header,
        options={"iss": {"values": [metadata["issuer"]]}},
        params={"nonce": nonce, "client_id": client_id},
    )
    claims.validate(leeway=60)
    return claims


@pytest.mark.parametrize(
    ("client_id", "secret", "alg"),
    [
        pytest.param("authlib", "authlib-secret", "RS256", id="confidential-rs256"),
        pytest.param("authlib-es", None, "ES256", id="public-es256"),
    ],
)
def test_authlib_signs_in_and_refreshes(served, client_id, secret, alg):
    metadata = requests.get(served.metadata_url, timeout=TIMEOUT).json()
    client = OAuth2Session(
        client_id,
        secret,
        scope="openid profile email",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
        token_endpoint_auth_method="client_secret_basic" if secret else "none",
    )
    verifier, nonce = secrets.token_urlsafe(48), secrets.token_urlsafe(12)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce=nonce
    )
    callback = pick_user(requests.Session(), url)
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=callback,
        code_verifier=verifier,
        state=state,
    )
    claims = validated_id_token(token["id_token"], metadata, client_id, nonce)
    assert claims.header["alg"] == alg
    assert claims["sub"] == JANE
    assert claims["email"] == "jane@example.com"
    assert client.get(metadata["userinfo_endpoint"], timeout=TIMEOUT).json()["sub"] == JANE

    first_refresh = token["refresh_token"]
    refreshed = client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    assert refreshed["refresh_token"] != first_refresh
    validated_id_token(refreshed["id_token"], metadata, client_id, None)
    # The rotated token, replayed, is refused and ends the session.
    with pytest.raises(Exception, match="invalid_grant"):
        client.refresh_token(metadata["token_endpoint"], refresh_token=first_refresh)
    with pytest.raises(Exception, match="invalid_grant"):
        client.refresh_token(metadata["token_endpoint"], refresh_token=refreshed["refresh_token"])


def test_authlib_sees_a_tampered_id_token(served):
    metadata = requests.get(served.metadata_url, timeout=TIMEOUT).json()
    client = OAuth2Session(
        "authlib",
        "authlib-secret",
        scope="openid",
        redirect_uri=REDIRECT,
        code_challenge_method="S256",
    )
    verifier = secrets.token_urlsafe(48)
    url, state = client.create_authorization_url(
        metadata["authorization_endpoint"], code_verifier=verifier, nonce="n1"
    )
    token = client.fetch_token(
        metadata["token_endpoint"],
        authorization_response=pick_user(requests.Session(), url),
        code_verifier=verifier,
        state=state,
    )
    with pytest.raises(Exception, match="nonce"):
        validated_id_token(token["id_token"], metadata, "authlib", "another-nonce")


# --- wsgiauth's own oidc provider ---------------------------------------------------------


BACKEND = "http://127.0.0.1:7007"
CALLBACK = f"{BACKEND}/api/auth/oidc/handler/frame"


@pytest.mark.parametrize("alg", ["RS256", "ES256"])
def test_wsgiauth_oidc_provider_signs_in_refreshes_and_logs_out(alg):
    client = FakeClient(
        client_id="wsgiauth",
        client_secret="wsgiauth-secret",
        redirect_uris=(CALLBACK,),
        id_token_signed_response_alg=alg,
    )
    with running_fake_idp(users_from_catalog(CATALOG), [client]) as idp:
        config = {
            "app": {"baseUrl": BACKEND},
            "backend": {"baseUrl": BACKEND},
            "catalog": {"locations": [{"type": "file", "target": str(CATALOG)}]},
            "auth": {
                "environment": "development",
                "keyStore": {"provider": "memory"},
                "session": {"secret": "s" * 32},
                "providers": {
                    "oidc": {
                        "development": {
                            "metadataUrl": idp.metadata_url,
                            "clientId": "wsgiauth",
                            "clientSecret": "wsgiauth-secret",
                            "tokenSignedResponseAlg": alg,
                            "prompt": "auto",
                            "signIn": {
                                "resolvers": [{"resolver": "emailMatchingUserEntityProfileEmail"}]
                            },
                        }
                    }
                },
            },
        }
        app = webtest.TestApp(
            AuthMiddleware(lambda e, s: [], create_auth_app(Config.from_dict(config))),
            extra_environ={"HTTP_HOST": "127.0.0.1:7007"},
        )
        start = app.get(
            "/api/auth/oidc/start", {"env": "development", "origin": BACKEND}, status=302
        )
        callback = pick_user(requests.Session(), start.location)
        assert callback.startswith(CALLBACK + "?")
        frame = app.get(callback.removeprefix(BACKEND))
        message = parse_web_message(frame.text)
        assert message["type"] == "authorization_response", message
        identity = message["response"]["backstageIdentity"]["identity"]
        assert identity["userEntityRef"] == JANE
        assert identity["ownershipEntityRefs"] == [JANE, "group:default/platform"]

        headers = {"X-Requested-With": "XMLHttpRequest"}
        refreshed = app.get("/api/auth/oidc/refresh?env=development", headers=headers)
        assert refreshed.json["backstageIdentity"]["identity"]["userEntityRef"] == JANE
        again = app.get("/api/auth/oidc/refresh?env=development", headers=headers)
        assert again.json["profile"]["email"] == "jane@example.com"

        app.post("/api/auth/oidc/logout?env=development", headers=headers)
        # The IdP revoked the grant: the old refresh token no longer works there.
        assert not idp.context.store._refresh._entries
