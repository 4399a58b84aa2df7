"""Test doubles for the sign-in half: a token issuer that signs real ES256 JWTs."""

from __future__ import annotations

import os
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec

from wsgiauth.types import TokenParams

CATALOG_DIR = os.path.join(os.path.dirname(os.path.dirname(__file__)), "files", "catalog")
_KEY = ec.generate_private_key(ec.SECP256R1())


class FakeTokenIssuer:
    """Issues ES256 tokens as the TokenFactory does (claims + iss/aud/iat/exp); records claims."""

    def __init__(self, *, now: float | None = None, lifetime: int = 3600) -> None:
        self.now = time.time() if now is None else now
        self.lifetime = lifetime
        self.issued: list[dict[str, Any]] = []

    def issue_token(self, params: TokenParams) -> str:
        self.issued.append(dict(params.claims))
        claims = {
            "iss": "http://localhost:7007/api/auth",
            "aud": "backstage",
            "iat": int(self.now),
            "exp": int(self.now) + self.lifetime,
            **params.claims,
        }
        return jwt.encode(claims, _KEY, algorithm="ES256", headers={"kid": "test"})

    def list_public_keys(self) -> list[dict[str, Any]]:
        return []


def claims_of(token: str) -> dict[str, Any]:
    """The verified claims of a token from :class:`FakeTokenIssuer`."""
    return jwt.decode(
        token,
        _KEY.public_key(),
        algorithms=["ES256"],
        audience="backstage",
        options={"verify_exp": False, "verify_iat": False},
    )
