"""The OIDC provider against a stubbed identity provider that signs real ID tokens."""

from __future__ import annotations

import base64
import logging
import time
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit
from wsgiref.validate import validator

import pytest
import requests
import responses
import webtest  # type: ignore[import-untyped]
from cryptography.hazmat.primitives.asymmetric import rsa
from oauthlib.oauth2 import WebApplicationClient
from webob import Request

from tests.conftest import APP_ORIGIN
from tests.conftest import base_config
from tests.conftest import inner_app
from tests.conftest import parse_web_message
from tests.conftest import state_of
from tests.providers.oidc_idp import CLIENT_ID
from tests.providers.oidc_idp import END_SESSION_URL
from tests.providers.oidc_idp import FLOW_NONCE
from tests.providers.oidc_idp import ISSUER
from tests.providers.oidc_idp import JWKS_URL
from tests.providers.oidc_idp import METADATA_URL
from tests.providers.oidc_idp import REVOKE_URL
from tests.providers.oidc_idp import TOKEN_URL
from tests.providers.oidc_idp import USERINFO_URL
from tests.providers.oidc_idp import FakeClock
from tests.providers.oidc_idp import Idp
from tests.providers.oidc_idp import discovery
from tests.providers.oidc_idp import public_jwk
from wsgiauth.app import create_auth_app
from wsgiauth.config import Config
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ConfigError
from wsgiauth.errors import InputError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import create_http_client
from wsgiauth.middleware import AuthMiddleware
from wsgiauth.oauth.types import OAuthAuthenticateInput
from wsgiauth.oauth.types import OAuthAuthenticator
from wsgiauth.oauth.types import OAuthAuthenticatorResult
from wsgiauth.oauth.types import OAuthLogoutInput
from wsgiauth.oauth.types import OAuthRefreshInput
from wsgiauth.oauth.types import OAuthSession
from wsgiauth.oauth.types import OAuthStartInput
from wsgiauth.oauth.types import SupportsOAuthLogout
from wsgiauth.providers import oidc
from wsgiauth.providers.oidc import OidcAuthenticator
from wsgiauth.providers.oidc_tokens import derive_id_token_nonce
from wsgiauth.types import ProfileInfo

CALLBACK = "http://localhost:7007/api/auth/oidc/handler/frame"
VERIFIER = "v" * 64
ENV_PATH = "auth.providers.oidc.development"


@pytest.fixture
def idp(mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey) -> Idp:
    return Idp(mocked, rsa_key)


def env_config(**block: Any) -> Config:
    """One environment block, read from where it lives in a real app-config."""
    settings = {"clientId": CLIENT_ID, "clientSecret": "s3cret", "metadataUrl": METADATA_URL}
    settings.update(block)
    settings = {key: value for key, value in settings.items() if value is not None}
    root = Config.from_dict({"auth": {"providers": {"oidc": {"development": settings}}}})
    return root.get_config(ENV_PATH)


def make(clock: FakeClock | None = None, **block: Any) -> OidcAuthenticator:
    return OidcAuthenticator.from_config(
        env_config(**block),
        callback_url=CALLBACK,
        http=create_http_client(),
        clock=clock or FakeClock(),
    )


def start_input(**overrides: Any) -> OAuthStartInput:
    fields: dict[str, Any] = {
        "request": Request.blank("/api/auth/oidc/start?env=development"),
        "scope": "openid profile email",
        "state": "6e6f6e63653d61&x=1 +/",
        "nonce": FLOW_NONCE,
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
    }
    fields.update(overrides)
    return OAuthStartInput(**fields)


def callback(query: str = "code=the-code&state=s") -> OAuthAuthenticateInput:
    request = Request.blank(f"/api/auth/oidc/handler/frame?{query}")
    return OAuthAuthenticateInput(request=request, nonce=FLOW_NONCE, code_verifier=VERIFIER)


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


# --- the protocol and the module export


def test_is_an_oauth_authenticator_with_logout() -> None:
    auth = make()
    assert isinstance(auth, OAuthAuthenticator)
    assert isinstance(auth, SupportsOAuthLogout)
    assert auth.persist_scopes is True
    assert auth.required_scopes == ("openid", "profile", "email")
    assert oidc.module.provider_id == "oidc"


def test_construction_fetches_nothing(mocked: responses.RequestsMock) -> None:
    make()
    assert len(mocked.calls) == 0


# --- start


def test_authorization_url(idp: Idp) -> None:
    response = make().start(start_input())
    assert response.url.startswith(f"{ISSUER}/authorize?")
    assert query_of(response.url) == {
        "response_type": "code",
        "client_id": CLIENT_ID,
        "redirect_uri": CALLBACK,
        "scope": "openid profile email",
        "state": "6e6f6e63653d61&x=1 +/",
        "code_challenge": "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
        "code_challenge_method": "S256",
        "nonce": derive_id_token_nonce(FLOW_NONCE),
        "prompt": "none",
    }


@pytest.mark.parametrize(
    ("prompt", "expected"),
    [
        pytest.param(None, "none", id="default-none"),
        pytest.param("consent", "consent", id="configured"),
        pytest.param("login consent", "login consent", id="several"),
        pytest.param("auto", None, id="auto-sends-none"),
    ],
)
def test_prompt(idp: Idp, prompt: str | None, expected: str | None) -> None:
    url = make(prompt=prompt).start(start_input()).url
    assert query_of(url).get("prompt") == expected


def test_start_url_search_params_reach_the_authorization_url(idp: Idp) -> None:
    """Backstage's ``startUrlSearchParams``; its prompt counts only with ``prompt: auto``."""
    params = {"acr_values": "urn:mfa", "login_hint": "jane@example.com"}
    params["prompt"] = "select_account"
    query = query_of(make(startUrlSearchParams=params).start(start_input()).url)
    assert (query["acr_values"], query["login_hint"]) == ("urn:mfa", "jane@example.com")
    assert query["prompt"] == "none"  # the configured (default) prompt wins, as in Backstage
    assert query["state"] == "6e6f6e63653d61&x=1 +/"
    auto = make(prompt="auto", startUrlSearchParams=params).start(start_input()).url
    assert query_of(auto)["prompt"] == "select_account"


@pytest.mark.parametrize("name", ["state", "nonce", "redirect_uri", "client_id", "code_challenge"])
def test_start_url_search_params_cannot_set_what_each_flow_sets(
    mocked: responses.RequestsMock, name: str
) -> None:
    with pytest.raises(ConfigError, match="sets it for every flow") as info:
        make(startUrlSearchParams={name: "mine"})
    assert info.value.path == f"{ENV_PATH}.startUrlSearchParams.{name}"


@pytest.mark.parametrize(
    ("timeout", "seconds"),
    [
        pytest.param({"seconds": 30}, 30.0, id="backstage-duration"),
        pytest.param("45s", 45.0, id="duration-string"),
        pytest.param(2500, 2.5, id="milliseconds"),
        pytest.param(None, 10.0, id="default"),
    ],
)
def test_timeout_as_backstage_writes_it_or_in_milliseconds(
    mocked: responses.RequestsMock, timeout: Any, seconds: float
) -> None:
    assert make(timeout=timeout).http.read_timeout == seconds


def test_plain_http_idp_keeps_its_scheme(mocked: responses.RequestsMock) -> None:
    local = "http://127.0.0.1:9000"
    mocked.get(
        f"{local}/.well-known/openid-configuration",
        json=discovery(issuer=local, authorization_endpoint=f"{local}/auth"),
    )
    auth = make(metadataUrl=f"{local}/.well-known/openid-configuration")
    assert auth.start(start_input()).url.startswith(f"{local}/auth?response_type=code&")


# --- code exchange and client authentication


def test_authenticate_returns_claims_and_session(idp: Idp) -> None:
    id_token = idp.id_token()
    idp.token_response(id_token)
    result = make().authenticate(callback())
    assert result.session == OAuthSession(
        access_token="at-1",
        token_type="Bearer",
        scope="openid profile email",
        id_token=id_token,
        expires_in_seconds=3600,
        refresh_token="rt-1",
    )
    assert result.full_profile["sub"] == "user-1"
    assert result.full_profile["name"] == "Ada Lovelace"
    assert result.full_profile["email"] == "ada@example.com"


@pytest.mark.parametrize(
    ("method", "header", "body_auth"),
    [
        pytest.param(
            None,
            # RFC 6749 §2.3.1: id and secret are form-urlencoded before Basic encoding.
            "Basic " + base64.b64encode(b"my+client%3A1:s%3Acr%2Bt%2F%C3%A9").decode(),
            {},
            id="client_secret_basic-default",
        ),
        pytest.param(
            "client_secret_post",
            None,
            {"client_id": "my client:1", "client_secret": "s:cr+t/é"},
            id="client_secret_post",
        ),
        pytest.param("none", None, {"client_id": "my client:1"}, id="none"),
    ],
)
def test_code_exchange_client_authentication(
    idp: Idp, method: str | None, header: str | None, body_auth: dict[str, str]
) -> None:
    idp.token_response(idp.id_token(aud="my client:1"))
    auth = make(clientId="my client:1", clientSecret="s:cr+t/é", tokenEndpointAuthMethod=method)
    auth.authenticate(callback())
    request = idp.calls(TOKEN_URL)[0].request
    assert request.headers.get("Authorization") == header
    assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert idp.form(TOKEN_URL) == {
        "grant_type": "authorization_code",
        "code": "the-code",
        "redirect_uri": CALLBACK,
        "code_verifier": VERIFIER,
        **body_auth,
    }


def test_form_post_callback(idp: Idp) -> None:
    idp.token_response()
    request = Request.blank(
        "/api/auth/oidc/handler/frame", POST={"code": "posted-code", "state": "s"}
    )
    make().authenticate(
        OAuthAuthenticateInput(request=request, nonce=FLOW_NONCE, code_verifier=VERIFIER)
    )
    assert idp.form(TOKEN_URL)["code"] == "posted-code"


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        pytest.param(
            "error=access_denied&error_description=The+user+said+no&state=s",
            AuthenticationError,
            "Authentication rejected, The user said no",
            id="error-with-description",
        ),
        pytest.param(
            "error=login_required&state=s",
            AuthenticationError,
            "Authentication rejected, login_required",
            id="error-only",
        ),
        pytest.param(
            "state=s",
            InputError,
            "Authentication failed, the callback has no authorization code",
            id="no-code",
        ),
    ],
)
def test_callback_errors(idp: Idp, query: str, error: type[Exception], message: str) -> None:
    with pytest.raises(error) as info:
        make().authenticate(callback(query))
    assert str(info.value) == message
    assert idp.calls(TOKEN_URL) == []


@pytest.mark.parametrize(
    ("status", "body", "message"),
    [
        pytest.param(
            400,
            {"error": "invalid_grant", "error_description": "Code expired"},
            "Authentication failed, invalid_grant: Code expired",
            id="invalid_grant",
        ),
        pytest.param(
            401,
            {"error": "invalid_client"},
            "Authentication failed, invalid_client",
            id="invalid_client",
        ),
        pytest.param(
            403,
            "<html>forbidden</html>",
            "Authentication failed, the token endpoint at idp.example.com answered 403",
            id="4xx-not-oauth",
        ),
        pytest.param(
            200,
            {"token_type": "Bearer"},
            "Authentication failed, missing_token: Missing access token parameter.",
            id="no-access-token",
        ),
    ],
)
def test_token_endpoint_rejections(
    idp: Idp, mocked: responses.RequestsMock, status: int, body: Any, message: str
) -> None:
    if isinstance(body, dict):
        mocked.post(TOKEN_URL, status=status, json=body)
    else:
        mocked.post(TOKEN_URL, status=status, body=body)
    with pytest.raises(AuthenticationError) as info:
        make().authenticate(callback())
    assert info.value.message == message


def test_token_response_without_id_token(idp: Idp, mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json={"access_token": "at", "token_type": "Bearer"})
    with pytest.raises(AuthenticationError, match="the token response has no ID token"):
        make().authenticate(callback())


# --- ID token verification (the checks themselves: test_oidc_tokens.py)


NOW = int(time.time())


def test_an_invalid_id_token_fails_the_login_before_userinfo(
    idp: Idp, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    idp.token_response(idp.id_token(key=other_rsa_key))
    with pytest.raises(AuthenticationError) as info:
        make().authenticate(callback())
    assert info.value.message == (
        "Authentication failed, invalid ID token: Signature verification failed"
    )
    assert idp.calls(USERINFO_URL) == []


def test_leeway_is_configurable(idp: Idp) -> None:
    idp.token_response(idp.id_token(exp=int(time.time()) - 30, iat=NOW - 600))
    with pytest.raises(AuthenticationError, match="Signature has expired"):
        make(idTokenLeeway="10s").authenticate(callback())


def test_other_configured_algorithm(idp: Idp, mocked: responses.RequestsMock) -> None:
    jwk = public_jwk(idp.key, "k1")
    del jwk["alg"]  # a key with no alg may serve the configured one
    mocked.replace(responses.GET, JWKS_URL, json={"keys": [jwk]})
    idp.token_response(idp.id_token(algorithm="PS256"))
    auth = make(tokenSignedResponseAlg="PS256")
    assert auth.authenticate(callback()).full_profile["sub"] == "user-1"
    idp.token_response(idp.id_token(algorithm="RS256"))
    with pytest.raises(AuthenticationError, match="algorithm 'RS256' is not the expected PS256"):
        auth.authenticate(callback())


# --- userinfo


def test_userinfo_is_merged_over_id_token_claims(idp: Idp, mocked: responses.RequestsMock) -> None:
    mocked.replace(
        responses.GET,
        USERINFO_URL,
        json={"sub": "user-1", "name": "Ada King", "picture": "https://img.example/ada.png"},
    )
    idp.token_response(idp.id_token(email="ada@idtoken.example"))
    profile = make().authenticate(callback()).full_profile
    assert profile["name"] == "Ada King"  # userinfo wins
    assert profile["email"] == "ada@idtoken.example"  # ID-token claims stay
    assert profile["picture"] == "https://img.example/ada.png"
    assert profile["iss"] == ISSUER
    assert idp.calls(USERINFO_URL)[0].request.headers["Authorization"] == "Bearer at-1"


def test_userinfo_for_another_subject_is_rejected(idp: Idp, mocked: responses.RequestsMock) -> None:
    mocked.replace(responses.GET, USERINFO_URL, json={"sub": "someone-else", "email": "x@y"})
    idp.token_response()
    with pytest.raises(AuthenticationError, match="userinfo subject differs from the ID token"):
        make().authenticate(callback())


def test_no_userinfo_endpoint_uses_id_token_claims(
    idp: Idp, mocked: responses.RequestsMock
) -> None:
    mocked.replace(responses.GET, METADATA_URL, json=discovery(userinfo_endpoint=None))
    idp.token_response()
    profile = make().authenticate(callback()).full_profile
    assert profile["name"] == "Ada Lovelace"
    assert idp.calls(USERINFO_URL) == []


# --- refresh


def refresh_input(refresh_token: str = "rt-old") -> OAuthRefreshInput:  # noqa: S107
    return OAuthRefreshInput(
        request=Request.blank("/api/auth/oidc/refresh?env=development"),
        scope="openid profile email",
        scope_already_granted=True,
        refresh_token=refresh_token,
    )


def test_refresh_rotates_the_refresh_token(idp: Idp) -> None:
    idp.token_response(idp.id_token(nonce=None), refresh_token="rt-new", access_token="at-2")
    result = make().refresh(refresh_input())
    assert result.session.refresh_token == "rt-new"
    assert result.session.access_token == "at-2"
    assert result.full_profile["name"] == "Ada Lovelace"
    assert result.full_profile["email"] == "ada@example.com"
    request = idp.calls(TOKEN_URL)[0].request
    assert request.headers["Authorization"].startswith("Basic ")
    assert idp.form(TOKEN_URL) == {"grant_type": "refresh_token", "refresh_token": "rt-old"}


def test_refresh_keeps_the_refresh_token_when_not_rotated(idp: Idp) -> None:
    idp.token_response(refresh_token=None, id_token="", scope=None)
    result = make().refresh(refresh_input())
    assert result.session.refresh_token == "rt-old"
    assert result.session.id_token is None
    assert result.session.scope == "openid profile email"  # the requested scope
    assert result.full_profile == {"sub": "user-1", "email": "ada@example.com"}


def test_refresh_verifies_a_returned_id_token(idp: Idp, other_rsa_key: rsa.RSAPrivateKey) -> None:
    idp.token_response(idp.id_token(key=other_rsa_key))
    with pytest.raises(AuthenticationError, match="Refresh failed, invalid ID token"):
        make().refresh(refresh_input())


def test_refresh_with_client_secret_post(idp: Idp) -> None:
    idp.token_response()
    make(tokenEndpointAuthMethod="client_secret_post").refresh(refresh_input())
    assert "Authorization" not in idp.calls(TOKEN_URL)[0].request.headers
    assert idp.form(TOKEN_URL)["client_secret"] == "s3cret"
    assert idp.form(TOKEN_URL)["client_id"] == CLIENT_ID


def test_refresh_invalid_grant(idp: Idp, mocked: responses.RequestsMock) -> None:
    mocked.post(
        TOKEN_URL,
        status=400,
        json={"error": "invalid_grant", "error_description": "Token is not active"},
    )
    with pytest.raises(AuthenticationError) as info:
        make().refresh(refresh_input())
    assert info.value.message == (
        "The refresh token was rejected, invalid_grant: Token is not active"
    )


def test_refresh_whose_access_token_userinfo_refuses_is_401_not_503(
    idp: Idp, mocked: responses.RequestsMock
) -> None:
    # A provider that revoked the grant (e.g. a rotated refresh token reused elsewhere)
    # refuses the new access token: the session is over, sign in again; not an outage.
    idp.token_response(idp.id_token(nonce=None), refresh_token="rt-new", access_token="at-2")
    mocked.replace(responses.GET, USERINFO_URL, status=401, json={"error": "invalid_token"})
    with pytest.raises(AuthenticationError, match="refused the token"):
        make().refresh(refresh_input())


# --- logout


def logout_input(refresh_token: str | None = "rt-1") -> OAuthLogoutInput:  # noqa: S107
    return OAuthLogoutInput(
        request=Request.blank("/api/auth/oidc/logout", method="POST"),
        refresh_token=refresh_token,
    )


def test_logout_revokes_the_refresh_token(idp: Idp, mocked: responses.RequestsMock) -> None:
    mocked.post(REVOKE_URL, status=200)
    assert make().logout(logout_input()) is None
    request = idp.calls(REVOKE_URL)[0].request
    assert idp.form(REVOKE_URL) == {"token": "rt-1", "token_type_hint": "refresh_token"}
    expected = "Basic " + base64.b64encode(f"{CLIENT_ID}:s3cret".encode()).decode()
    assert request.headers["Authorization"] == expected


def test_logout_revocation_with_client_secret_post(
    idp: Idp, mocked: responses.RequestsMock
) -> None:
    mocked.post(REVOKE_URL, status=200)
    make(tokenEndpointAuthMethod="client_secret_post").logout(logout_input())
    assert idp.form(REVOKE_URL) == {
        "token": "rt-1",
        "token_type_hint": "refresh_token",
        "client_id": CLIENT_ID,
        "client_secret": "s3cret",
    }


@pytest.mark.parametrize(
    "stub",
    [
        pytest.param({"status": 503}, id="5xx"),
        pytest.param({"status": 400, "json": {"error": "unsupported_token_type"}}, id="4xx"),
        pytest.param({"body": requests.ConnectionError("down")}, id="unreachable"),
    ],
)
def test_failed_revocation_does_not_fail_logout(
    idp: Idp,
    mocked: responses.RequestsMock,
    caplog: pytest.LogCaptureFixture,
    stub: dict[str, Any],
) -> None:
    mocked.post(REVOKE_URL, **stub)
    with caplog.at_level(logging.WARNING, logger="wsgiauth.providers.oidc"):
        assert make().logout(logout_input("rt-SECRET")) is None
    assert "Revoking the refresh token at idp.example.com failed" in caplog.text
    assert "SECRET" not in caplog.text


@pytest.mark.parametrize(
    ("doc", "refresh_token"),
    [
        pytest.param(discovery(revocation_endpoint=None), "rt-1", id="no-revocation-endpoint"),
        pytest.param(discovery(), None, id="no-refresh-token"),
    ],
)
def test_logout_without_revocation(
    mocked: responses.RequestsMock, doc: dict[str, Any], refresh_token: str | None
) -> None:
    mocked.get(METADATA_URL, json=doc)
    assert make().logout(logout_input(refresh_token)) is None
    assert [call.request.method for call in mocked.calls] == ["GET"]


def test_federated_logout_returns_the_end_session_url(
    idp: Idp, mocked: responses.RequestsMock
) -> None:
    mocked.post(REVOKE_URL, status=200)
    result = make(federatedLogout=True).logout(logout_input())
    assert result is not None
    assert result.logout_url == f"{END_SESSION_URL}?client_id={CLIENT_ID}"


def test_federated_logout_needs_an_end_session_endpoint(mocked: responses.RequestsMock) -> None:
    mocked.get(METADATA_URL, json=discovery(end_session_endpoint=None))
    assert make(federatedLogout=True).logout(logout_input(None)) is None


def test_logout_survives_an_unreachable_idp(mocked: responses.RequestsMock) -> None:
    mocked.get(METADATA_URL, body=requests.ConnectionError("down"))
    assert make(federatedLogout=True).logout(logout_input()) is None


# --- the provider is down


@pytest.mark.parametrize(
    ("stub", "message"),
    [
        pytest.param(
            {"body": requests.ConnectionError("refused")},
            "Identity provider at idp.example.com is unreachable",
            id="connection-error",
        ),
        pytest.param(
            {"body": requests.ReadTimeout("slow")},
            "Identity provider at idp.example.com timed out after 10s",
            id="timeout",
        ),
        pytest.param(
            {"status": 502, "body": "bad gateway"},
            "Identity provider at idp.example.com answered 502",
            id="502",
        ),
        pytest.param(
            {"status": 200, "body": "<html>", "content_type": "text/html"},
            "Identity provider at idp.example.com returned malformed JSON",
            id="malformed-json",
        ),
        pytest.param(
            {"status": 302, "headers": {"Location": "https://evil.example/"}},
            "Token endpoint at idp.example.com answered 302",
            id="redirect",
        ),
    ],
)
def test_token_endpoint_faults_are_503(
    idp: Idp, mocked: responses.RequestsMock, stub: dict[str, Any], message: str
) -> None:
    mocked.post(TOKEN_URL, **stub)
    with pytest.raises(ServiceUnavailableError) as info:
        make().authenticate(callback())
    assert info.value.message == message


def test_timeout_setting_is_the_read_timeout(idp: Idp, mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, body=requests.ReadTimeout("slow"))
    auth = make(timeout=2500)
    assert auth.http.read_timeout == 2.5
    with pytest.raises(ServiceUnavailableError, match="timed out after 2.5s"):
        auth.authenticate(callback())
    assert idp.calls(TOKEN_URL)[0].request.req_kwargs["timeout"] == (3.05, 2.5)


def test_oversized_userinfo_is_503(idp: Idp, mocked: responses.RequestsMock) -> None:
    mocked.replace(responses.GET, USERINFO_URL, json={"sub": "user-1", "blob": "x" * 5000})
    idp.token_response()
    auth = OidcAuthenticator.from_config(
        env_config(), callback_url=CALLBACK, http=create_http_client(max_bytes=4096)
    )
    with pytest.raises(ServiceUnavailableError, match="sent more than 4096 bytes"):
        auth.authenticate(callback())


# --- config


@pytest.mark.parametrize(
    ("block", "key", "message"),
    [
        pytest.param({"clientId": None}, "clientId", "missing", id="missing-clientId"),
        pytest.param({"clientSecret": None}, "clientSecret", "missing", id="missing-secret"),
        pytest.param({"metadataUrl": None}, "metadataUrl", "missing", id="missing-metadataUrl"),
        pytest.param(
            {"metadataUrl": "/.well-known/openid-configuration"},
            "metadataUrl",
            "expected an absolute http(s) URL",
            id="relative-metadataUrl",
        ),
        pytest.param(
            {"scope": "openid groups"},
            "scope",
            'The oidc provider no longer supports the "scope" configuration option. '
            'Please use the "additionalScopes" option instead.',
            id="scope-rejected",
        ),
        pytest.param(
            {"tokenEndpointAuthMethod": "private_key_jwt"},
            "tokenEndpointAuthMethod",
            "expected one of client_secret_basic, client_secret_post, none",
            id="bad-auth-method",
        ),
        pytest.param(
            {"tokenSignedResponseAlg": "HS256"},
            "tokenSignedResponseAlg",
            "expected an asymmetric algorithm",
            id="symmetric-alg",
        ),
        pytest.param(
            {"tokenSignedResponseAlg": "none"},
            "tokenSignedResponseAlg",
            "expected an asymmetric algorithm",
            id="alg-none",
        ),
        pytest.param({"timeout": 0}, "timeout", "expected a duration above 0", id="zero-timeout"),
        pytest.param({"timeout": "soon"}, "timeout", "expected a duration", id="bad-timeout"),
        pytest.param(
            {"startUrlSearchParams": {"acr_values": 2}},
            "startUrlSearchParams.acr_values",
            "expected a string",
            id="start-param-not-string",
        ),
        pytest.param(
            {"federatedLogout": "yes"}, "federatedLogout", "expected a boolean", id="bad-bool"
        ),
        pytest.param(
            {"idTokenLeeway": "a while"}, "idTokenLeeway", "expected a duration", id="bad-leeway"
        ),
    ],
)
def test_config_errors_name_the_dotted_key(
    mocked: responses.RequestsMock, block: dict[str, Any], key: str, message: str
) -> None:
    with pytest.raises(ConfigError) as info:
        make(**block)
    assert info.value.path == f"{ENV_PATH}.{key}"
    assert message in info.value.reason
    assert len(mocked.calls) == 0  # found at startup, not at the first login


def test_public_client_needs_no_secret(idp: Idp) -> None:
    auth = make(clientSecret=None, tokenEndpointAuthMethod="none")
    assert auth.credentials.client_secret is None


# --- profile


@pytest.mark.parametrize(
    ("claims", "expected"),
    [
        pytest.param(
            {"sub": "u", "name": "Ada", "email": "ada@x", "picture": "https://p/x.png"},
            ProfileInfo(email="ada@x", display_name="Ada", picture="https://p/x.png"),
            id="full",
        ),
        pytest.param(
            {"sub": "u", "preferred_username": "ada"},
            ProfileInfo(display_name="ada"),
            id="preferred_username",
        ),
        pytest.param({"sub": "u-123"}, ProfileInfo(display_name="u-123"), id="sub"),
        pytest.param(
            {"sub": "u", "name": "", "email": 42},
            ProfileInfo(display_name="u"),
            id="ignores-empty-and-non-strings",
        ),
    ],
)
def test_default_profile_transform(claims: dict[str, Any], expected: ProfileInfo) -> None:
    result = OAuthAuthenticatorResult(full_profile=claims, session=OAuthSession(access_token="a"))
    assert make().default_profile_transform(result) == expected


# --- the whole popup flow through the auth app, on the wire


def oidc_testapp() -> webtest.TestApp:
    block = {"clientId": CLIENT_ID, "clientSecret": "s3cret", "metadataUrl": METADATA_URL}
    config = base_config(providers={"oidc": {"development": block}})
    auth_app = create_auth_app(Config.from_dict(config))
    return webtest.TestApp(validator(AuthMiddleware(inner_app, auth_app)))


def test_popup_flow_through_the_auth_app(
    mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey
) -> None:
    idp = Idp(mocked, rsa_key)
    app = oidc_testapp()
    started = app.get(f"/api/auth/oidc/start?env=development&origin={APP_ORIGIN}")
    assert started.status_int == 302
    query = query_of(started.location)
    # A real IdP echoes the nonce it was sent into the ID token.
    idp.token_response(idp.id_token(nonce=query["nonce"]))

    page = app.get(f"/api/auth/oidc/handler/frame?code=the-code&state={state_of(started.location)}")
    message = parse_web_message(page.text)
    assert message["type"] == "authorization_response", message
    response = message["response"]
    assert response["profile"] == {"email": "ada@example.com", "displayName": "Ada Lovelace"}
    assert response["providerInfo"]["accessToken"] == "at-1"
    assert response["providerInfo"]["scope"] == "openid profile email"
    # The verifier sent to the token endpoint is the one behind the challenge in the URL.
    verifier = idp.form(TOKEN_URL)["code_verifier"]
    assert (
        WebApplicationClient("").create_code_challenge(verifier, "S256") == query["code_challenge"]
    )

    idp.token_response(idp.id_token(nonce=None), refresh_token="rt-2", access_token="at-2")
    refreshed = app.get(
        "/api/auth/oidc/refresh?env=development", headers={"X-Requested-With": "XMLHttpRequest"}
    )
    assert refreshed.json["providerInfo"]["accessToken"] == "at-2"
    assert idp.form(TOKEN_URL)["refresh_token"] == "rt-1"


def test_forged_id_token_is_a_postmessage_error(
    mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey, other_rsa_key: rsa.RSAPrivateKey
) -> None:
    idp = Idp(mocked, rsa_key)
    app = oidc_testapp()
    started = app.get(f"/api/auth/oidc/start?env=development&origin={APP_ORIGIN}")
    nonce = query_of(started.location)["nonce"]
    idp.token_response(idp.id_token(key=other_rsa_key, nonce=nonce))
    page = app.get(f"/api/auth/oidc/handler/frame?code=c&state={state_of(started.location)}")
    message = parse_web_message(page.text)
    assert message["type"] == "authorization_response"
    assert message["error"]["name"] == "AuthenticationError"
    assert "invalid ID token" in message["error"]["message"]
    assert "response" not in message


def test_idp_down_at_start_is_a_503(mocked: responses.RequestsMock) -> None:
    mocked.get(METADATA_URL, body=requests.ConnectionError("refused"))
    response = oidc_testapp().get(
        f"/api/auth/oidc/start?env=development&origin={APP_ORIGIN}", status=503
    )
    error = response.json["error"]
    assert error["name"] == "ServiceUnavailableError"
    assert error["message"].startswith("Identity provider at idp.example.com is unreachable")


# --- mix-up defence (RFC 9207): the callback's iss must name this provider

EVIL_ISSUER = "https://evil.example"


def popup_callback(
    mocked: responses.RequestsMock,
    rsa_key: rsa.RSAPrivateKey,
    params: list[tuple[str, str]],
    *,
    promised: object = None,
) -> tuple[dict[str, Any], Idp]:
    """A popup login whose callback carries ``params``; the posted message and the IdP.

    :param promised: the discovery's ``authorization_response_iss_parameter_supported``
        (None leaves it out).
    """
    idp = Idp(mocked, rsa_key)
    doc = discovery(authorization_response_iss_parameter_supported=promised)
    mocked.upsert(responses.GET, METADATA_URL, json=doc)
    app = oidc_testapp()
    started = app.get(f"/api/auth/oidc/start?env=development&origin={APP_ORIGIN}")
    idp.token_response(idp.id_token(nonce=query_of(started.location)["nonce"]))
    query = urlencode([("code", "the-code"), ("state", state_of(started.location)), *params])
    page = app.get(f"/api/auth/oidc/handler/frame?{query}")
    message = parse_web_message(page.text)
    assert message["type"] == "authorization_response", message
    return message, idp


def refused(message: dict[str, Any], reason: str) -> bool:
    """Whether the opener got the error, and nothing else, for ``reason``."""
    return "response" not in message and message["error"] == {
        "name": "AuthenticationError",
        "message": f"Authentication failed, the authorization response {reason}",
    }


@pytest.mark.parametrize("promised", [True, None], ids=["promised", "not-promised"])
def test_callback_with_the_providers_iss_signs_in(
    mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey, promised: object
) -> None:
    message, idp = popup_callback(mocked, rsa_key, [("iss", ISSUER)], promised=promised)
    assert message["response"]["profile"]["email"] == "ada@example.com"
    assert len(idp.calls(TOKEN_URL)) == 1


@pytest.mark.parametrize("promised", [True, None], ids=["promised", "not-promised"])
@pytest.mark.parametrize(
    "iss",
    [
        pytest.param(EVIL_ISSUER, id="another-issuer"),
        # Simple string comparison (RFC 9207 §2.4): no normalising into a match.
        pytest.param(f"{ISSUER}/", id="trailing-slash"),
        pytest.param(ISSUER.upper(), id="other-case"),
        pytest.param("", id="empty"),
    ],
)
def test_callback_from_another_issuer_is_refused_before_the_code_exchange(
    mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey, iss: str, promised: object
) -> None:
    message, idp = popup_callback(mocked, rsa_key, [("iss", iss)], promised=promised)
    assert refused(message, "is from another issuer"), message
    # The code of a mixed-up response never reaches this provider's token endpoint.
    assert idp.calls(TOKEN_URL) == []


def test_callback_without_iss_is_refused_when_the_metadata_promises_it(
    mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey
) -> None:
    message, idp = popup_callback(mocked, rsa_key, [], promised=True)
    assert refused(message, "has no issuer"), message
    assert idp.calls(TOKEN_URL) == []


@pytest.mark.parametrize(
    "promised",
    [
        pytest.param(None, id="absent"),
        pytest.param(False, id="false"),
        # Metadata values are typed (RFC 8414): only JSON true is the promise.
        pytest.param("true", id="a-string"),
    ],
)
def test_callback_without_iss_signs_in_when_the_metadata_does_not_promise_it(
    mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey, promised: object
) -> None:
    message, idp = popup_callback(mocked, rsa_key, [], promised=promised)
    assert message["response"]["profile"]["email"] == "ada@example.com"
    assert len(idp.calls(TOKEN_URL)) == 1


def test_callback_with_several_iss_is_refused(
    mocked: responses.RequestsMock, rsa_key: rsa.RSAPrivateKey
) -> None:
    # The honest issuer first: a check that read only one value would let this through.
    params = [("iss", ISSUER), ("iss", EVIL_ISSUER)]
    message, idp = popup_callback(mocked, rsa_key, params, promised=True)
    assert refused(message, "names several issuers"), message
    assert idp.calls(TOKEN_URL) == []


def test_form_post_iss_counts_with_the_query_iss(idp: Idp) -> None:
    request = Request.blank(
        f"/api/auth/oidc/handler/frame?{urlencode({'iss': ISSUER})}",
        POST={"code": "posted-code", "state": "s", "iss": EVIL_ISSUER},
    )
    with pytest.raises(AuthenticationError, match="names several issuers"):
        make().authenticate(
            OAuthAuthenticateInput(request=request, nonce=FLOW_NONCE, code_verifier=VERIFIER)
        )
    assert idp.calls(TOKEN_URL) == []


def test_form_post_callback_with_iss_in_the_body(idp: Idp, mocked: responses.RequestsMock) -> None:
    mocked.upsert(
        responses.GET,
        METADATA_URL,
        json=discovery(authorization_response_iss_parameter_supported=True),
    )
    idp.token_response()
    request = Request.blank(
        "/api/auth/oidc/handler/frame", POST={"code": "posted-code", "state": "s", "iss": ISSUER}
    )
    make().authenticate(
        OAuthAuthenticateInput(request=request, nonce=FLOW_NONCE, code_verifier=VERIFIER)
    )
    assert idp.form(TOKEN_URL)["code"] == "posted-code"


def test_error_response_from_another_issuer_is_not_reported_as_the_idps(idp: Idp) -> None:
    query = urlencode(
        {"error": "access_denied", "error_description": "Call +1 555 to unlock", "iss": EVIL_ISSUER}
    )
    with pytest.raises(AuthenticationError) as info:
        make().authenticate(callback(query))
    assert (
        str(info.value)
        == "Authentication failed, the authorization response is from another issuer"
    )
