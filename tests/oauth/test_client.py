"""The OAuth 2 client mechanics: config URLs, client authentication, the authorization URL,
the callback, the token request (``requests`` stubbed with ``responses``) and the session.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from urllib.parse import parse_qs
from urllib.parse import parse_qsl
from urllib.parse import urlencode
from urllib.parse import urlsplit

import pytest
import responses
from hypothesis import given
from hypothesis import settings
from hypothesis import strategies as st
from oauthlib.oauth2 import WebApplicationClient
from webob import Request

from wsgiauth.config import Config
from wsgiauth.errors import AuthenticationError
from wsgiauth.errors import ConfigError
from wsgiauth.errors import InputError
from wsgiauth.errors import ServiceUnavailableError
from wsgiauth.http import create_http_client
from wsgiauth.oauth.client import ClientCredentials
from wsgiauth.oauth.client import _form_encode
from wsgiauth.oauth.client import _quote_plus
from wsgiauth.oauth.client import authorization_url
from wsgiauth.oauth.client import callback_code
from wsgiauth.oauth.client import check_response_issuer
from wsgiauth.oauth.client import read_absolute_url
from wsgiauth.oauth.client import request_token
from wsgiauth.oauth.client import session_from_token
from wsgiauth.oauth.types import OAuthSession

TOKEN_URL = "https://idp.example/oauth/token"
BASIC = ClientCredentials("my client:1", "s:cr+t/é", "client_secret_basic")
POST = ClientCredentials("app", "secret", "client_secret_post")
PUBLIC = ClientCredentials("app", None, "none")


@pytest.fixture
def mocked() -> Iterator[responses.RequestsMock]:
    with responses.RequestsMock() as rsps:
        yield rsps


# -- read_absolute_url ------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("https://idp.example/authorize", id="https"),
        pytest.param("http://127.0.0.1:8080/authorize?x=1", id="http-loopback-with-query"),
    ],
)
def test_absolute_urls_are_read(url):
    assert read_absolute_url(Config.from_dict({"authorizationUrl": url}), "authorizationUrl") == url


@pytest.mark.parametrize(
    "url",
    [
        pytest.param("/oauth/authorize", id="relative"),
        pytest.param("idp.example/authorize", id="no-scheme"),
        pytest.param("ftp://idp.example/authorize", id="ftp"),
        pytest.param("javascript:alert(1)", id="javascript"),
        pytest.param("https://", id="no-host"),
    ],
)
def test_a_url_that_is_not_absolute_http_is_a_config_error(url):
    config = Config.from_dict({"auth": {"authorizationUrl": url}}).get_config("auth")
    with pytest.raises(ConfigError) as info:
        read_absolute_url(config, "authorizationUrl")
    assert info.value.path == "auth.authorizationUrl"
    assert info.value.reason == f"expected an absolute http(s) URL, got {url!r}"


def test_a_missing_url_is_an_error_unless_optional():
    config = Config.from_dict({})
    with pytest.raises(ConfigError) as info:
        read_absolute_url(config, "tokenUrl")
    assert info.value.path == "tokenUrl"
    assert read_absolute_url(config, "tokenUrl", required=False) is None


# -- ClientCredentials ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("config", "default", "expected"),
    [
        pytest.param(
            {"clientId": "a", "clientSecret": "s"},
            None,
            ClientCredentials("a", "s", "client_secret_basic"),
            id="basic-by-default",
        ),
        pytest.param(
            {"clientId": "a", "clientSecret": "s"},
            "client_secret_post",
            ClientCredentials("a", "s", "client_secret_post"),
            id="the-provider-default",
        ),
        pytest.param(
            {
                "clientId": "a",
                "clientSecret": "s",
                "tokenEndpointAuthMethod": "client_secret_basic",
            },
            "client_secret_post",
            ClientCredentials("a", "s", "client_secret_basic"),
            id="config-wins",
        ),
        pytest.param(
            {"clientId": "a", "tokenEndpointAuthMethod": "none"},
            None,
            ClientCredentials("a", None, "none"),
            id="public-client-needs-no-secret",
        ),
    ],
)
def test_credentials_from_config(config, default, expected):
    assert ClientCredentials.from_config(Config.from_dict(config), auth_method=default) == expected


@pytest.mark.parametrize(
    ("config", "path", "reason"),
    [
        pytest.param({"clientSecret": "s"}, "clientId", "missing", id="no-client-id"),
        pytest.param({"clientId": "a"}, "clientSecret", "missing", id="no-secret"),
        pytest.param(
            {"clientId": "a", "clientSecret": "s", "tokenEndpointAuthMethod": "private_key_jwt"},
            "tokenEndpointAuthMethod",
            "expected one of client_secret_basic, client_secret_post, none, got 'private_key_jwt'",
            id="unsupported-method",
        ),
    ],
)
def test_credentials_config_errors(config, path, reason):
    with pytest.raises(ConfigError) as info:
        ClientCredentials.from_config(Config.from_dict(config))
    assert info.value.path == path
    assert info.value.reason == reason


@pytest.mark.parametrize(
    ("credentials", "refresh", "expected"),
    [
        pytest.param(BASIC, False, {"include_client_id": False}, id="basic"),
        pytest.param(BASIC, True, {"include_client_id": False}, id="basic-refresh"),
        pytest.param(
            POST, False, {"include_client_id": True, "client_secret": "secret"}, id="post"
        ),
        pytest.param(
            POST,
            True,
            {"include_client_id": True, "client_id": "app", "client_secret": "secret"},
            id="post-refresh",
        ),
        pytest.param(PUBLIC, False, {"include_client_id": True}, id="none"),
        pytest.param(
            PUBLIC, True, {"include_client_id": True, "client_id": "app"}, id="none-refresh"
        ),
    ],
)
def test_body_params_put_credentials_in_the_body_only_when_not_basic(
    credentials, refresh, expected
):
    assert credentials.body_params(refresh=refresh) == expected


def basic_header(credentials: ClientCredentials) -> str:
    request = Request.blank("/")
    credentials.http_auth()(request)  # HTTPBasicAuth sets the header on what it is given
    return request.headers["Authorization"]


def test_basic_auth_form_encodes_id_and_secret_first():
    """RFC 6749 §2.3.1: a ``:`` or non-ASCII in the secret survives the Basic encoding."""
    encoded = basic_header(BASIC).removeprefix("Basic ")
    assert base64.b64decode(encoded).decode() == "my+client%3A1:s%3Acr%2Bt%2F%C3%A9"


@pytest.mark.parametrize(
    "credentials",
    [
        pytest.param(POST, id="post"),
        pytest.param(PUBLIC, id="none"),
        pytest.param(ClientCredentials("app", None), id="basic-without-a-secret"),
    ],
)
def test_no_basic_auth_without_basic_and_a_secret(credentials):
    assert credentials.http_auth() is None


@pytest.mark.parametrize(
    ("credentials", "expected"),
    [
        pytest.param(BASIC, {}, id="basic"),
        pytest.param(POST, {"client_id": "app", "client_secret": "secret"}, id="post"),
        pytest.param(PUBLIC, {"client_id": "app"}, id="none"),
    ],
)
def test_revocation_data(credentials, expected):
    assert credentials.revocation_data("rt-1", "refresh_token") == {
        "token": "rt-1",
        "token_type_hint": "refresh_token",
        **expected,
    }


# -- authorization_url ------------------------------------------------------------------------


def query_of(url: str) -> list[tuple[str, str]]:
    return parse_qsl(urlsplit(url).query, keep_blank_values=True)


def test_authorization_url_carries_the_flow_and_pkce():
    url = authorization_url(
        "https://idp.example/authorize",
        "app",
        redirect_uri="http://localhost:7007/api/auth/x/handler/frame",
        scope="openid email",
        state="abc123",
        code_challenge="challenge",
        nonce="n-1",
        prompt=None,
    )
    assert url.startswith("https://idp.example/authorize?")
    assert dict(query_of(url)) == {
        "response_type": "code",
        "client_id": "app",
        "redirect_uri": "http://localhost:7007/api/auth/x/handler/frame",
        "scope": "openid email",
        "state": "abc123",
        "code_challenge": "challenge",
        "code_challenge_method": "S256",
        "nonce": "n-1",
    }


@pytest.mark.parametrize(
    ("params", "absent"),
    [
        pytest.param({"state": "s"}, {"code_challenge", "code_challenge_method"}, id="no-pkce"),
        pytest.param({"state": "s", "prompt": None, "scope": ""}, {"prompt", "scope"}, id="empty"),
    ],
)
def test_authorization_url_drops_what_is_not_given(params, absent):
    keys = {key for key, _ in query_of(authorization_url("https://idp.example/a", "app", **params))}
    assert keys & absent == set()
    assert {"response_type", "client_id", "state"} <= keys


def test_authorization_url_keeps_a_plain_http_scheme_and_an_existing_query():
    url = authorization_url("http://127.0.0.1:9000/auth?tenant=t1", "app", state="s")
    assert url.startswith("http://127.0.0.1:9000/auth?")
    assert ("tenant", "t1") in query_of(url)
    assert ("state", "s") in query_of(url)


def test_authorization_url_differs_per_flow_only_in_the_flow_parameters():
    first = authorization_url("https://idp.example/a", "app", state="one", scope="openid")
    second = authorization_url("https://idp.example/a", "app", state="two", scope="email")
    assert parse_qs(urlsplit(first).query)["state"] == ["one"]
    assert parse_qs(urlsplit(second).query)["state"] == ["two"]
    assert parse_qs(urlsplit(second).query)["scope"] == ["email"]


_FORM_TEXT = st.text(max_size=40)


@settings(max_examples=300)
@given(st.lists(st.tuples(_FORM_TEXT, _FORM_TEXT), max_size=6))
def test_form_encode_is_urlencode(pairs):
    """The fast path (values that need no quoting) and the quoted one give urlencode's bytes."""
    assert _form_encode(pairs) == urlencode(pairs)


_B64URL = st.text(alphabet="ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@settings(max_examples=200)
@given(
    state=st.one_of(st.binary(min_size=1, max_size=64).map(bytes.hex), _FORM_TEXT),
    scope=_FORM_TEXT,
    challenge=st.one_of(_B64URL, _FORM_TEXT),
    nonce=st.one_of(_B64URL, _FORM_TEXT),
    prompt=st.sampled_from([None, "none", "login consent"]),
)
def test_authorization_url_has_the_parameters_oauthlib_would_send(
    state, scope, challenge, nonce, prompt
):
    endpoint = "https://idp.example/authorize?tenant=t 1"
    params = {
        "redirect_uri": "http://localhost:7007/api/auth/x/handler/frame",
        "scope": scope,
        "state": state,
        "code_challenge": challenge,
        "nonce": nonce,
        "prompt": prompt,
    }
    url = authorization_url(endpoint, "app", **params)
    given_ = {key: value for key, value in params.items() if value}
    if given_.get("code_challenge"):
        given_["code_challenge_method"] = "S256"
    expected = WebApplicationClient("app").prepare_request_uri(endpoint, **given_)
    assert sorted(query_of(url)) == sorted(query_of(expected))
    # And byte for byte what urlencode makes of the per-flow part (the wire before the fast path).
    per_flow = [
        (k, v) for k, v in given_.items() if k in {"scope", "state", "code_challenge", "nonce"}
    ]
    if "code_challenge_method" in given_:
        per_flow.append(("code_challenge_method", "S256"))
    assert url.endswith(urlencode(per_flow))


def test_scope_quoting_cache_is_bounded():
    for index in range(600):
        _form_encode([("scope", f"openid extra:{index}")])
    info = _quote_plus.cache_info()
    assert info.maxsize == 256
    assert info.currsize <= 256


# -- callback_code ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(Request.blank("/cb?state=s&code=the-code"), id="query"),
        pytest.param(Request.blank("/cb", POST={"state": "s", "code": "the-code"}), id="form-post"),
    ],
)
def test_callback_code(request_):
    assert callback_code(request_) == "the-code"


@pytest.mark.parametrize(
    ("query", "error", "message"),
    [
        pytest.param(
            "error=access_denied&error_description=The+user+said+no",
            AuthenticationError,
            "Authentication rejected, The user said no",
            id="error-with-description",
        ),
        pytest.param(
            "error=access_denied&code=ignored",
            AuthenticationError,
            "Authentication rejected, access_denied",
            id="error-wins-over-code",
        ),
        pytest.param(
            "state=s",
            InputError,
            "Authentication failed, the callback has no authorization code",
            id="no-code",
        ),
        pytest.param(
            "code=",
            InputError,
            "Authentication failed, the callback has no authorization code",
            id="empty-code",
        ),
    ],
)
def test_callback_errors(query, error, message):
    with pytest.raises(error) as info:
        callback_code(Request.blank(f"/cb?{query}"))
    assert info.value.full_message() == message


# -- check_response_issuer (RFC 9207) ---------------------------------------------------------

ISSUER = "https://idp.example.com"


@pytest.mark.parametrize("promised", [True, False])
@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(Request.blank(f"/cb?code=c&iss={ISSUER}"), id="query"),
        pytest.param(Request.blank("/cb", POST={"code": "c", "iss": ISSUER}), id="form-post"),
    ],
)
def test_the_issuer_of_the_flow_passes(request_, promised):
    check_response_issuer(request_, ISSUER, promised=promised)


def test_no_issuer_passes_unless_promised():
    check_response_issuer(Request.blank("/cb?code=c"), ISSUER, promised=False)
    with pytest.raises(AuthenticationError) as info:
        check_response_issuer(Request.blank("/cb?code=c"), ISSUER, promised=True)
    assert info.value.full_message() == (
        "Authentication failed, the authorization response has no issuer"
    )


@pytest.mark.parametrize("promised", [True, False])
@pytest.mark.parametrize("iss", ["https://evil.example", f"{ISSUER}/", ISSUER.upper(), ""])
def test_another_issuer_is_refused(iss, promised, caplog):
    request = Request.blank(f"/cb?{urlencode({'code': 'c', 'iss': iss})}")
    with pytest.raises(AuthenticationError) as info:
        check_response_issuer(request, ISSUER, promised=promised)
    assert info.value.full_message() == (
        "Authentication failed, the authorization response is from another issuer"
    )
    assert "Authorization response from issuer" in caplog.text


@pytest.mark.parametrize(
    "request_",
    [
        pytest.param(Request.blank(f"/cb?iss={ISSUER}&iss={ISSUER}"), id="query-twice"),
        pytest.param(
            Request.blank(f"/cb?iss={ISSUER}", POST={"iss": "https://evil.example"}),
            id="query-and-form",
        ),
    ],
)
def test_several_issuers_are_refused(request_):
    with pytest.raises(AuthenticationError) as info:
        check_response_issuer(request_, ISSUER, promised=False)
    assert info.value.full_message() == (
        "Authentication failed, the authorization response names several issuers"
    )


# -- request_token ----------------------------------------------------------------------------

TOKEN = {"access_token": "at-1", "token_type": "Bearer", "expires_in": 3600, "scope": "openid"}


def exchange(credentials=BASIC, *, failed="Authentication failed"):
    body = "grant_type=authorization_code&code=c-1"
    return request_token(create_http_client(), TOKEN_URL, credentials, body, failed=failed)


def test_token_request_is_a_form_post_with_basic_auth(mocked):
    mocked.post(TOKEN_URL, json=TOKEN)
    token = exchange()
    assert {key: token[key] for key in TOKEN} == {**TOKEN, "scope": ["openid"]}  # oauthlib's list
    [call] = mocked.calls
    assert call.request.headers["Content-Type"] == "application/x-www-form-urlencoded"
    assert call.request.headers["Accept"] == "application/json"
    assert call.request.headers["Authorization"] == basic_header(BASIC)
    assert call.request.body == "grant_type=authorization_code&code=c-1"


def test_token_request_without_basic_sends_no_authorization_header(mocked):
    mocked.post(TOKEN_URL, json=TOKEN)
    exchange(POST)
    assert "Authorization" not in mocked.calls[0].request.headers


def test_a_form_encoded_token_response_is_read_too(mocked):
    """GitHub-style servers answer ``application/x-www-form-urlencoded``."""
    mocked.post(
        TOKEN_URL,
        body="access_token=at-2&token_type=bearer&scope=repo",
        content_type="application/x-www-form-urlencoded",
    )
    token = exchange()
    assert (token["access_token"], token["scope"]) == ("at-2", ["repo"])


@pytest.mark.parametrize(
    ("status", "body", "failed", "message"),
    [
        pytest.param(
            400,
            {"error": "invalid_grant", "error_description": "Refresh token expired"},
            "Refresh failed",
            "Refresh failed, invalid_grant: Refresh token expired",
            id="invalid-grant",
        ),
        pytest.param(
            401,
            {"error": "invalid_client"},
            "Authentication failed",
            "Authentication failed, invalid_client",
            id="invalid-client-no-description",
        ),
        pytest.param(
            403,
            "<html>Forbidden</html>",
            "Authentication failed",
            "Authentication failed, the token endpoint at idp.example answered 403",
            id="html-error-page",
        ),
        pytest.param(
            200,
            {"token_type": "Bearer"},
            "Authentication failed",
            "Authentication failed, missing_token: Missing access token parameter.",
            id="no-access-token",
        ),
    ],
)
def test_a_refusal_is_an_authentication_error(mocked, status, body, failed, message):
    if isinstance(body, dict):
        mocked.post(TOKEN_URL, json=body, status=status)
    else:
        mocked.post(TOKEN_URL, body=body, status=status, content_type="text/html")
    with pytest.raises(AuthenticationError) as info:
        exchange(failed=failed)
    assert info.value.full_message() == message


@pytest.mark.parametrize(
    ("status", "body", "headers", "message"),
    [
        pytest.param(
            302,
            "",
            {"Location": "https://elsewhere.example/token"},
            "Token endpoint at idp.example answered 302",
            id="redirect-not-followed",
        ),
        pytest.param(
            200,
            "<html>sign in</html>",
            {"Content-Type": "text/html"},
            "Identity provider at idp.example returned malformed JSON",
            id="2xx-not-json",
        ),
        pytest.param(
            200,
            json.dumps({"access_token": "at", "token_type": "Bearer", "expires_in": "soon"}),
            {"Content-Type": "application/json"},
            "Token endpoint at idp.example returned a malformed token response",
            id="expires-in-not-a-number",
        ),
        pytest.param(
            502,
            "bad gateway",
            {},
            "Identity provider at idp.example answered 502",
            id="5xx",
        ),
    ],
)
def test_a_broken_token_endpoint_is_a_503(mocked, status, body, headers, message):
    mocked.post(TOKEN_URL, body=body, status=status, headers=headers)
    with pytest.raises(ServiceUnavailableError) as info:
        exchange()
    assert info.value.full_message() == message
    assert len(mocked.calls) == 1  # a POST with a code is never replayed elsewhere


# -- session_from_token -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("token", "kwargs", "expected"),
    [
        pytest.param(
            {
                "access_token": "at",
                "token_type": "DPoP",
                "scope": "openid email",
                "id_token": "id.jwt.sig",
                "expires_in": 3600,
                "refresh_token": "rt-new",
                "refresh_expires_in": 86400,
            },
            {"scope": "ignored", "refresh_token": "rt-old"},
            OAuthSession(
                access_token="at",
                token_type="DPoP",
                scope="openid email",
                id_token="id.jwt.sig",
                expires_in_seconds=3600,
                refresh_token="rt-new",
                refresh_token_expires_in_seconds=86400,
            ),
            id="everything",
        ),
        pytest.param(
            {"access_token": "at"},
            {"scope": "openid", "refresh_token": "rt-old"},
            OAuthSession(access_token="at", scope="openid", refresh_token="rt-old"),
            id="no-echo-no-rotation",
        ),
        pytest.param(
            {"access_token": "at", "scope": ["repo", "user"], "token_type": None},
            {},
            OAuthSession(access_token="at", token_type="Bearer", scope="repo user"),
            id="scope-list",
        ),
        pytest.param(
            {"access_token": "at", "id_token": "", "expires_in": "60"},
            {},
            OAuthSession(access_token="at", expires_in_seconds=60),
            id="empty-id-token-string-expiry",
        ),
        pytest.param(
            {"access_token": "at", "refresh_expires_in": "forever"},
            {},
            OAuthSession(access_token="at"),
            id="refresh-expiry-not-a-number",
        ),
    ],
)
def test_session_from_token(token, kwargs, expected):
    assert session_from_token(token, **kwargs) == expected


@pytest.mark.parametrize(
    ("credentials", "client_in_body"),
    [
        pytest.param(BASIC, {}, id="basic"),
        pytest.param(POST, {"client_id": "app", "client_secret": "secret"}, id="post"),
        pytest.param(PUBLIC, {"client_id": "app"}, id="none"),
    ],
)
def test_grant_forms_put_the_client_where_its_method_says(credentials, client_in_body):
    code = dict(
        parse_qsl(
            credentials.code_grant("c0de", redirect_uri="https://b.example/cb", code_verifier="v")
        )
    )
    assert code == {
        "grant_type": "authorization_code",
        "code": "c0de",
        "redirect_uri": "https://b.example/cb",
        "code_verifier": "v",
        **client_in_body,
    }
    refresh = dict(parse_qsl(credentials.refresh_grant("r1")))
    assert refresh == {"grant_type": "refresh_token", "refresh_token": "r1", **client_in_body}
    with_scope = dict(parse_qsl(credentials.refresh_grant("r1", scope="openid email")))
    assert with_scope["scope"] == "openid email"
    no_pkce = dict(parse_qsl(credentials.code_grant("c", redirect_uri="x", code_verifier=None)))
    assert "code_verifier" not in no_pkce
