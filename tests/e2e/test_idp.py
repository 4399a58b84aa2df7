"""The e2e OpenID provider itself, driven with ``requests`` alone (no wsgiauth).

These pin what the wsgiauth e2e tests rely on: the login-form driver works,
PKCE is required, the ID token and userinfo carry the predictable email and
name, refresh tokens are issued without ``offline_access`` and rotate, and
revocation kills them. A failure here is a broken fixture, not a wsgiauth bug.
"""

from __future__ import annotations

import base64
import hashlib
import secrets
from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qs
from urllib.parse import urlencode
from urllib.parse import urlsplit

import jwt
import pytest
import requests

pytestmark = pytest.mark.e2e

TIMEOUT = 10


@pytest.fixture
def session() -> Iterator[requests.Session]:
    with requests.Session() as s:
        yield s


@pytest.fixture(scope="module")
def discovery(oidc_provider) -> dict[str, Any]:
    response = requests.get(oidc_provider.metadata_url, timeout=TIMEOUT)
    assert response.status_code == 200
    document: dict[str, Any] = response.json()
    return document


def _pkce() -> tuple[str, str]:
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def _authorize_url(discovery, oidc_provider, **params: str) -> str:
    query = {
        "response_type": "code",
        "client_id": oidc_provider.client_id,
        "redirect_uri": oidc_provider.redirect_uris[0],
        "scope": "openid profile email",
        **params,
    }
    return f"{discovery['authorization_endpoint']}?{urlencode(query)}"


def _token_request(discovery, oidc_provider, **data: str) -> requests.Response:
    return requests.post(
        discovery["token_endpoint"],
        data=data,
        auth=(oidc_provider.client_id, oidc_provider.client_secret),
        timeout=TIMEOUT,
    )


def _login_and_exchange(session, discovery, oidc_provider, idp_login, login: str) -> dict[str, Any]:
    """Authorization-code flow with our own state, nonce and PKCE; returns the token response."""
    verifier, challenge = _pkce()
    state, nonce = secrets.token_hex(8), secrets.token_hex(8)
    url = _authorize_url(
        discovery,
        oidc_provider,
        state=state,
        nonce=nonce,
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    callback = idp_login(session, url, login=login)
    query = parse_qs(urlsplit(callback).query)
    assert query["state"] == [state]
    assert query["iss"] == [oidc_provider.issuer]
    response = _token_request(
        discovery,
        oidc_provider,
        grant_type="authorization_code",
        code=query["code"][0],
        redirect_uri=oidc_provider.redirect_uris[0],
        code_verifier=verifier,
    )
    assert response.status_code == 200, response.text
    tokens: dict[str, Any] = response.json()
    claims = _verify_id_token(discovery, oidc_provider, tokens["id_token"])
    assert claims["nonce"] == nonce
    return tokens


def _verify_id_token(discovery, oidc_provider, id_token: str) -> dict[str, Any]:
    jwks = jwt.PyJWKSet.from_dict(requests.get(discovery["jwks_uri"], timeout=TIMEOUT).json())
    kid = jwt.get_unverified_header(id_token)["kid"]
    key = next(k for k in jwks.keys if k.key_id == kid)
    claims: dict[str, Any] = jwt.decode(
        id_token,
        key,
        algorithms=["RS256"],
        audience=oidc_provider.client_id,
        issuer=oidc_provider.issuer,
    )
    return claims


def test_discovery_advertises_what_wsgiauth_uses(discovery, oidc_provider):
    assert discovery["issuer"] == oidc_provider.issuer
    assert discovery["code_challenge_methods_supported"] == ["S256"]
    assert discovery["revocation_endpoint"].startswith(oidc_provider.issuer)
    assert discovery["end_session_endpoint"].startswith(oidc_provider.issuer)
    assert {"openid", "email", "profile"} <= set(discovery["scopes_supported"])


def test_idp_login_smoke(session, discovery, oidc_provider, idp_login):
    tokens = _login_and_exchange(session, discovery, oidc_provider, idp_login, "alice")

    assert tokens["token_type"].lower() == "bearer"
    assert tokens["refresh_token"]
    assert set(tokens["scope"].split()) == {"openid", "profile", "email"}
    claims = _verify_id_token(discovery, oidc_provider, tokens["id_token"])
    assert claims["sub"] == "alice"
    assert claims["email"] == "alice@example.com"
    assert claims["name"] == "Alice Example"
    userinfo = requests.get(
        discovery["userinfo_endpoint"],
        headers={"Authorization": f"Bearer {tokens['access_token']}"},
        timeout=TIMEOUT,
    )
    assert userinfo.status_code == 200, userinfo.text
    assert userinfo.json() == {
        "sub": "alice",
        "email": "alice@example.com",
        "email_verified": True,
        "name": "Alice Example",
    }


def test_second_login_in_same_browser_asks_to_log_in_again(
    session, discovery, oidc_provider, idp_login
):
    # wsgiauth sends prompt=login in the e2e config: the IdP must show the form
    # again even though the cookie jar holds an IdP session.
    first = _login_and_exchange(session, discovery, oidc_provider, idp_login, "carol")
    verifier, challenge = _pkce()
    url = _authorize_url(
        discovery,
        oidc_provider,
        state="s2",
        prompt="login",
        code_challenge=challenge,
        code_challenge_method="S256",
    )
    callback = idp_login(session, url, login="dave")
    code = parse_qs(urlsplit(callback).query)["code"][0]
    second = _token_request(
        discovery,
        oidc_provider,
        grant_type="authorization_code",
        code=code,
        redirect_uri=oidc_provider.redirect_uris[0],
        code_verifier=verifier,
    ).json()
    subjects = [
        _verify_id_token(discovery, oidc_provider, t["id_token"])["sub"] for t in (first, second)
    ]
    assert subjects == ["carol", "dave"]


def test_refresh_rotates_and_old_token_dies(session, discovery, oidc_provider, idp_login):
    tokens = _login_and_exchange(session, discovery, oidc_provider, idp_login, "bob")
    old = tokens["refresh_token"]

    refreshed = _token_request(
        discovery, oidc_provider, grant_type="refresh_token", refresh_token=old
    )
    assert refreshed.status_code == 200, refreshed.text
    new = refreshed.json()["refresh_token"]
    assert new != old
    assert refreshed.json()["access_token"] != tokens["access_token"]

    reused = _token_request(discovery, oidc_provider, grant_type="refresh_token", refresh_token=old)
    assert reused.status_code == 400
    assert reused.json()["error"] == "invalid_grant"


def test_revoked_refresh_token_cannot_refresh(session, discovery, oidc_provider, idp_login):
    tokens = _login_and_exchange(session, discovery, oidc_provider, idp_login, "erin")

    revoked = requests.post(
        discovery["revocation_endpoint"],
        data={"token": tokens["refresh_token"], "token_type_hint": "refresh_token"},
        auth=(oidc_provider.client_id, oidc_provider.client_secret),
        timeout=TIMEOUT,
    )
    assert revoked.status_code == 200, revoked.text

    refreshed = _token_request(
        discovery, oidc_provider, grant_type="refresh_token", refresh_token=tokens["refresh_token"]
    )
    assert refreshed.status_code == 400
    assert refreshed.json()["error"] == "invalid_grant"


@pytest.mark.parametrize(
    "params",
    [
        pytest.param({}, id="no-challenge"),
        pytest.param(
            {"code_challenge": "x" * 43, "code_challenge_method": "plain"}, id="plain-method"
        ),
    ],
)
def test_authorize_without_s256_pkce_is_refused(session, discovery, oidc_provider, params):
    url = _authorize_url(discovery, oidc_provider, state="s", **params)

    response = session.get(url, allow_redirects=False, timeout=TIMEOUT)

    assert response.is_redirect
    location = response.headers["Location"]
    assert location.startswith(oidc_provider.redirect_uris[0])
    assert parse_qs(urlsplit(location).query)["error"] == ["invalid_request"]
