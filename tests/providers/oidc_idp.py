"""A stubbed OpenID Provider for the oidc tests: discovery, JWKS, token and userinfo.

Shared by tests/providers/test_oidc.py (the authenticator) and
tests/providers/test_oidc_tokens.py (discovery and ID-token checks). The IdP
signs real RS256 ID tokens with a key made once per session (conftest.py).
"""

from __future__ import annotations

import base64
import time
from typing import Any
from urllib.parse import parse_qs

import jwt
import responses
from cryptography.hazmat.primitives.asymmetric import rsa

from wsgiauth.providers.oidc_tokens import derive_id_token_nonce

ISSUER = "https://idp.example.com"
METADATA_URL = f"{ISSUER}/.well-known/openid-configuration"
TOKEN_URL = f"{ISSUER}/token"
JWKS_URL = f"{ISSUER}/jwks"
USERINFO_URL = f"{ISSUER}/userinfo"
REVOKE_URL = f"{ISSUER}/revoke"
END_SESSION_URL = f"{ISSUER}/logout"
CLIENT_ID = "backstage"
FLOW_NONCE = "q1+/w=="


def discovery(**overrides: Any) -> dict[str, Any]:
    doc = {
        "issuer": ISSUER,
        "authorization_endpoint": f"{ISSUER}/authorize",
        "token_endpoint": TOKEN_URL,
        "jwks_uri": JWKS_URL,
        "userinfo_endpoint": USERINFO_URL,
        "revocation_endpoint": REVOKE_URL,
        "end_session_endpoint": END_SESSION_URL,
    }
    doc.update(overrides)
    return {key: value for key, value in doc.items() if value is not None}


def public_jwk(key: rsa.RSAPrivateKey, kid: str, **extra: Any) -> dict[str, Any]:
    jwk: dict[str, Any] = jwt.algorithms.RSAAlgorithm.to_jwk(key.public_key(), as_dict=True)
    return {**jwk, "kid": kid, "use": "sig", "alg": "RS256", **extra}


def b64url(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


class FakeClock:
    """A monotonic clock the test moves by hand."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Idp:
    """A stubbed OpenID Provider: discovery, JWKS, token, userinfo, revocation."""

    def __init__(self, mocked: responses.RequestsMock, key: rsa.RSAPrivateKey) -> None:
        self.mocked = mocked
        self.key = key
        mocked.get(METADATA_URL, json=discovery())
        mocked.get(JWKS_URL, json={"keys": [public_jwk(key, "k1")]})
        mocked.get(USERINFO_URL, json={"sub": "user-1", "email": "ada@example.com"})

    def claims(self, **overrides: Any) -> dict[str, Any]:
        now = int(time.time())
        claims = {
            "iss": ISSUER,
            "sub": "user-1",
            "aud": CLIENT_ID,
            "exp": now + 300,
            "iat": now,
            "nonce": derive_id_token_nonce(FLOW_NONCE),
            "name": "Ada Lovelace",
        }
        claims.update(overrides)
        return {key: value for key, value in claims.items() if value is not None}

    def id_token(
        self,
        *,
        key: rsa.RSAPrivateKey | None = None,
        kid: str | None = "k1",
        algorithm: str = "RS256",
        **claims: Any,
    ) -> str:
        headers = {"kid": kid} if kid is not None else {}
        return jwt.encode(
            self.claims(**claims), key or self.key, algorithm=algorithm, headers=headers
        )

    def token_response(self, id_token: str | None = None, **fields: Any) -> None:
        body = {
            "access_token": "at-1",
            "token_type": "Bearer",
            "expires_in": 3600,
            "refresh_token": "rt-1",
            "scope": "openid profile email",
            "id_token": id_token if id_token is not None else self.id_token(),
            **fields,
        }
        body = {key: value for key, value in body.items() if value is not None}
        self.mocked.upsert(responses.POST, TOKEN_URL, json=body)

    def calls(self, url: str) -> list[Any]:
        return [call for call in self.mocked.calls if str(call.request.url).split("?")[0] == url]

    def form(self, url: str, index: int = -1) -> dict[str, str]:
        body = self.calls(url)[index].request.body
        return {key: values[0] for key, values in parse_qs(body, keep_blank_values=True).items()}
