"""The generic OAuth 2 provider against a stubbed authorization server."""

from __future__ import annotations

import base64
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlsplit

import pytest
import requests
import responses
from webob import Request

from wsgiauth.config import Config
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ConfigError
from wsgiauth.errors import InputError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import create_http_client
from wsgiauth.oauth.types import OAuthAuthenticateInput
from wsgiauth.oauth.types import OAuthAuthenticator
from wsgiauth.oauth.types import OAuthRefreshInput
from wsgiauth.oauth.types import OAuthStartInput
from wsgiauth.oauth.types import SupportsOAuthLogout
from wsgiauth.providers import oauth2
from wsgiauth.providers.oauth2 import OAuth2Authenticator
from wsgiauth.types import ProfileInfo

SERVER = "https://auth.example.com"
AUTHORIZE_URL = f"{SERVER}/oauth/authorize"
TOKEN_URL = f"{SERVER}/oauth/token"
PROFILE_URL = f"{SERVER}/api/me"
CALLBACK = "http://localhost:7007/api/auth/oauth2/handler/frame"
ENV_PATH = "auth.providers.oauth2.development"
VERIFIER = "w" * 64
CHALLENGE = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
TOKEN = {
    "access_token": "at-1",
    "token_type": "bearer",
    "expires_in": 7200,
    "refresh_token": "rt-1",
    "scope": "read write",
}


def env_config(**block: Any) -> Config:
    settings = {
        "clientId": "client-1",
        "clientSecret": "s3cret",
        "authorizationUrl": AUTHORIZE_URL,
        "tokenUrl": TOKEN_URL,
    }
    settings.update(block)
    settings = {key: value for key, value in settings.items() if value is not None}
    root = Config.from_dict({"auth": {"providers": {"oauth2": {"development": settings}}}})
    return root.get_config(ENV_PATH)


def make(**block: Any) -> OAuth2Authenticator:
    return OAuth2Authenticator.from_config(
        env_config(**block), callback_url=CALLBACK, http=create_http_client()
    )


def start_input() -> OAuthStartInput:
    return OAuthStartInput(
        request=Request.blank("/api/auth/oauth2/start?env=development"),
        scope="read write",
        state="7374617465",
        nonce="bm9uY2U=",
        code_challenge=CHALLENGE,
    )


def callback(query: str = "code=c-1&state=7374617465") -> OAuthAuthenticateInput:
    request = Request.blank(f"/api/auth/oauth2/handler/frame?{query}")
    return OAuthAuthenticateInput(request=request, nonce="bm9uY2U=", code_verifier=VERIFIER)


def refresh_input() -> OAuthRefreshInput:
    return OAuthRefreshInput(
        request=Request.blank("/api/auth/oauth2/refresh?env=development"),
        scope="read write",
        scope_already_granted=True,
        refresh_token="rt-old",  # noqa: S106
    )


def form(call: Any) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(call.request.body).items()}


def query_of(url: str) -> dict[str, str]:
    return {key: values[0] for key, values in parse_qs(urlsplit(url).query).items()}


def test_is_an_oauth_authenticator_without_logout() -> None:
    auth = make()
    assert isinstance(auth, OAuthAuthenticator)
    assert not isinstance(auth, SupportsOAuthLogout)
    assert auth.persist_scopes is True
    assert auth.required_scopes == ()
    assert oauth2.module.provider_id == "oauth2"


# --- start


def test_authorization_url_has_pkce_by_default() -> None:
    url = make().start(start_input()).url
    assert url.startswith(f"{AUTHORIZE_URL}?")
    assert query_of(url) == {
        "response_type": "code",
        "client_id": "client-1",
        "redirect_uri": CALLBACK,
        "scope": "read write",
        "state": "7374617465",
        "code_challenge": CHALLENGE,
        "code_challenge_method": "S256",
        "access_type": "offline",
        "prompt": "consent",
    }


def test_pkce_can_be_turned_off(mocked: responses.RequestsMock) -> None:
    auth = make(pkce=False)
    query = query_of(auth.start(start_input()).url)
    assert "code_challenge" not in query
    assert "code_challenge_method" not in query
    mocked.post(TOKEN_URL, json=TOKEN)
    auth.authenticate(callback())
    assert "code_verifier" not in form(mocked.calls[0])


def test_authorization_url_keeps_existing_query() -> None:
    url = make(authorizationUrl=f"{AUTHORIZE_URL}?tenant=acme", prompt="auto").start(start_input())
    query = query_of(url.url)
    assert query["tenant"] == "acme"
    assert "prompt" not in query


# --- code exchange


@pytest.mark.parametrize(
    ("block", "header", "body_auth"),
    [
        pytest.param(
            {},
            "Basic " + base64.b64encode(b"client-1:s3cret").decode(),
            {},
            id="basic-by-default",
        ),
        pytest.param(
            {"includeBasicAuth": True},
            "Basic " + base64.b64encode(b"client-1:s3cret").decode(),
            {},
            id="includeBasicAuth",
        ),
        pytest.param(
            {"includeBasicAuth": False},
            None,
            {"client_id": "client-1", "client_secret": "s3cret"},
            id="includeBasicAuth-false-posts",
        ),
        pytest.param(
            {"tokenEndpointAuthMethod": "client_secret_post"},
            None,
            {"client_id": "client-1", "client_secret": "s3cret"},
            id="client_secret_post",
        ),
        pytest.param(
            {"tokenEndpointAuthMethod": "none", "clientSecret": None},
            None,
            {"client_id": "client-1"},
            id="public-client",
        ),
    ],
)
def test_code_exchange(
    mocked: responses.RequestsMock,
    block: dict[str, Any],
    header: str | None,
    body_auth: dict[str, str],
) -> None:
    mocked.post(TOKEN_URL, json=TOKEN)
    result = make(**block).authenticate(callback())
    request = mocked.calls[0].request
    assert request.headers.get("Authorization") == header
    assert form(mocked.calls[0]) == {
        "grant_type": "authorization_code",
        "code": "c-1",
        "redirect_uri": CALLBACK,
        "code_verifier": VERIFIER,
        **body_auth,
    }
    assert result.session.access_token == "at-1"
    assert result.session.token_type == "bearer"
    assert result.session.expires_in_seconds == 7200
    assert result.session.refresh_token == "rt-1"
    assert result.session.scope == "read write"
    assert result.full_profile == {}  # no profileUrl, no profile request


def test_callback_error_is_reported() -> None:
    with pytest.raises(AuthenticationError, match="Authentication rejected, access_denied"):
        make().authenticate(callback("error=access_denied&state=x"))


def test_callback_without_code() -> None:
    with pytest.raises(InputError):
        make().authenticate(callback("state=x"))


def test_invalid_grant(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, status=400, json={"error": "invalid_grant"})
    with pytest.raises(AuthenticationError) as info:
        make().authenticate(callback())
    assert info.value.message == "Authentication failed, invalid_grant"


def test_form_encoded_token_response(mocked: responses.RequestsMock) -> None:
    # Old servers (GitHub without Accept) answer form-encoded; oauthlib reads both.
    mocked.post(
        TOKEN_URL,
        body="access_token=at-9&token_type=bearer&scope=read",
        content_type="application/x-www-form-urlencoded",
    )
    session = make().authenticate(callback()).session
    assert (session.access_token, session.scope) == ("at-9", "read")


@pytest.mark.parametrize(
    ("stub", "message"),
    [
        pytest.param({"body": requests.ConnectionError()}, "is unreachable", id="down"),
        pytest.param({"status": 502}, "answered 502", id="502"),
        pytest.param(
            {"body": "{not json", "content_type": "application/json"},
            "malformed JSON",
            id="bad-json",
        ),
        pytest.param(
            {"json": {**TOKEN, "expires_in": "soon"}}, "malformed token response", id="bad-expiry"
        ),
    ],
)
def test_token_endpoint_faults(
    mocked: responses.RequestsMock, stub: dict[str, Any], message: str
) -> None:
    mocked.post(TOKEN_URL, **stub)
    with pytest.raises(ServiceUnavailableError, match=message):
        make().authenticate(callback())


# --- profile


def test_profile_is_fetched_with_the_access_token(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json=TOKEN)
    mocked.get(PROFILE_URL, json={"email": "ada@example.com", "name": "Ada", "picture": "p"})
    auth = make(profileUrl=PROFILE_URL)
    result = auth.authenticate(callback())
    assert mocked.calls[1].request.headers["Authorization"] == "Bearer at-1"
    assert result.full_profile["email"] == "ada@example.com"
    assert auth.default_profile_transform(result) == ProfileInfo(
        email="ada@example.com", display_name="Ada", picture="p"
    )


def test_profile_mapping_follows_dotted_paths(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json=TOKEN)
    mocked.get(
        PROFILE_URL,
        json={
            "data": {"attributes": {"mail": "ada@example.com", "full_name": "Ada L."}},
            "avatars": [{"url": "https://img/ada.png"}],
            "id": 42,
            "login": "ada",
        },
    )
    auth = make(
        profileUrl=PROFILE_URL,
        profileMapping={
            "email": "data.attributes.mail",
            "displayName": "data.attributes.full_name",
            "picture": "avatars.0.url",
            "id": "id",
            "username": "login",
        },
    )
    result = auth.authenticate(callback())
    assert auth.default_profile_transform(result) == ProfileInfo(
        email="ada@example.com", display_name="Ada L.", picture="https://img/ada.png"
    )
    assert auth.profile_field(result, "id") == "42"
    assert auth.profile_field(result, "username") == "ada"


def test_profile_mapping_missing_paths_are_none(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json=TOKEN)
    mocked.get(PROFILE_URL, json={"data": {"email": {"nested": "object"}}, "list": []})
    auth = make(
        profileUrl=PROFILE_URL,
        profileMapping={"email": "data.email", "displayName": "list.3", "picture": "nope.x"},
    )
    assert auth.default_profile_transform(auth.authenticate(callback())) == ProfileInfo()


def test_profile_url_failure_is_503(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json=TOKEN)
    mocked.get(PROFILE_URL, status=500)
    with pytest.raises(ServiceUnavailableError, match="answered 500"):
        make(profileUrl=PROFILE_URL).authenticate(callback())


# --- refresh


def test_refresh_sends_scope_and_keeps_the_refresh_token(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json={"access_token": "at-2", "token_type": "bearer"})
    result = make().refresh(refresh_input())
    assert form(mocked.calls[0]) == {
        "grant_type": "refresh_token",
        "refresh_token": "rt-old",
        "scope": "read write",
    }
    assert result.session.access_token == "at-2"
    assert result.session.refresh_token == "rt-old"


def test_refresh_returns_a_rotated_refresh_token(mocked: responses.RequestsMock) -> None:
    mocked.post(TOKEN_URL, json={**TOKEN, "refresh_token": "rt-new"})
    result = make(tokenEndpointAuthMethod="client_secret_post").refresh(refresh_input())
    assert result.session.refresh_token == "rt-new"
    assert form(mocked.calls[0])["client_id"] == "client-1"
    assert form(mocked.calls[0])["client_secret"] == "s3cret"


def test_refresh_invalid_grant(mocked: responses.RequestsMock) -> None:
    mocked.post(
        TOKEN_URL, status=400, json={"error": "invalid_grant", "error_description": "revoked"}
    )
    with pytest.raises(AuthenticationError) as info:
        make().refresh(refresh_input())
    assert info.value.message == "The refresh token was rejected, invalid_grant: revoked"


def test_disable_refresh(mocked: responses.RequestsMock) -> None:
    with pytest.raises(InputError, match="Session refreshes have been disabled"):
        make(disableRefresh=True).refresh(refresh_input())
    assert len(mocked.calls) == 0


# --- config


@pytest.mark.parametrize(
    ("block", "key", "message"),
    [
        pytest.param({"clientId": None}, "clientId", "missing", id="missing-clientId"),
        pytest.param({"clientSecret": None}, "clientSecret", "missing", id="missing-secret"),
        pytest.param({"tokenUrl": None}, "tokenUrl", "missing", id="missing-tokenUrl"),
        pytest.param(
            {"authorizationUrl": "oauth/authorize"},
            "authorizationUrl",
            "expected an absolute http(s) URL",
            id="relative-authorizationUrl",
        ),
        pytest.param(
            {"scope": "read"},
            "scope",
            'The oauth2 provider no longer supports the "scope" configuration option.',
            id="scope-rejected",
        ),
        pytest.param(
            {"tokenEndpointAuthMethod": "tls_client_auth"},
            "tokenEndpointAuthMethod",
            "expected one of",
            id="bad-auth-method",
        ),
        pytest.param(
            {"tokenEndpointAuthMethod": "client_secret_post", "includeBasicAuth": True},
            "includeBasicAuth",
            "contradicts tokenEndpointAuthMethod",
            id="contradiction",
        ),
        pytest.param(
            {"profileUrl": PROFILE_URL, "profileMapping": {"avatar": "a"}},
            "profileMapping.avatar",
            "unknown profile field",
            id="unknown-mapping-field",
        ),
        pytest.param(
            {"profileMapping": {"email": "mail"}},
            "profileMapping",
            "needs profileUrl",
            id="mapping-without-url",
        ),
        pytest.param({"pkce": "sometimes"}, "pkce", "expected a boolean", id="bad-pkce"),
    ],
)
def test_config_errors_name_the_dotted_key(block: dict[str, Any], key: str, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        make(**block)
    assert info.value.path == f"{ENV_PATH}.{key}"
    assert message in info.value.reason
