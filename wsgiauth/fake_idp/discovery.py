"""The fake IdP's signing keys, its JWKS and its discovery document.

One RSA (RS256) and one P-256 (ES256) key, made when the IdP starts and never
written anywhere: a restart invalidates every token it issued, which is what a
development IdP should do. Each client picks the algorithm of its ID tokens
(``id_token_signed_response_alg``), so a relying party can be tested with either.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric import rsa

__all__ = ["ALGORITHMS", "SCOPES", "SigningKeys", "discovery_document"]

#: The ID-token algorithms the IdP signs with, in the order the JWKS lists them.
ALGORITHMS = ("RS256", "ES256")
#: Scopes it knows; ``openid`` is required, the others add claims or nothing.
SCOPES = ("openid", "profile", "email", "offline_access")


@dataclass(frozen=True, slots=True)
class _Key:
    kid: str
    private: Any
    public_jwk: dict[str, Any]


class SigningKeys:
    """This process's RS256 and ES256 keys: sign a JWT, list the public halves."""

    def __init__(self) -> None:
        made: dict[str, Any] = {
            "RS256": rsa.generate_private_key(public_exponent=65537, key_size=2048),
            "ES256": ec.generate_private_key(ec.SECP256R1()),
        }
        self._keys: dict[str, _Key] = {}
        for algorithm, private in made.items():
            kid = f"{algorithm.lower()}-{uuid.uuid4().hex[:12]}"
            jwk: dict[str, Any] = jwt.get_algorithm_by_name(algorithm).to_jwk(
                private.public_key(), as_dict=True
            )
            jwk.pop("key_ops", None)
            jwk.update(kid=kid, alg=algorithm, use="sig")
            self._keys[algorithm] = _Key(kid=kid, private=private, public_jwk=jwk)

    def sign(self, claims: Mapping[str, Any], algorithm: str) -> str:
        """``claims`` as a JWT signed with the key of ``algorithm``, its ``kid`` in the header."""
        key = self._keys[algorithm]
        return jwt.encode(dict(claims), key.private, algorithm=algorithm, headers={"kid": key.kid})

    def verify(self, token: str, *, issuer: str) -> dict[str, Any]:
        """The claims of a token this IdP signed for ``issuer``, expired or not (id_token_hint).

        Raises :class:`jwt.PyJWTError` for anything else.
        """
        kid = jwt.get_unverified_header(token).get("kid")
        key = next((k for k in self._keys.values() if k.kid == kid), None)
        if key is None:
            raise jwt.InvalidKeyError("unknown kid")
        algorithm = key.public_jwk["alg"]
        claims: dict[str, Any] = jwt.decode(
            token,
            key.private.public_key(),
            algorithms=[algorithm],
            issuer=issuer,
            options={"verify_exp": False, "verify_aud": False, "require": ["iss", "sub", "aud"]},
        )
        return claims

    def jwks(self) -> dict[str, Any]:
        """The JWKS document: both public keys."""
        return {"keys": [dict(self._keys[alg].public_jwk) for alg in ALGORITHMS]}


def discovery_document(issuer: str) -> dict[str, Any]:
    """``/.well-known/openid-configuration`` for ``issuer`` (no trailing slash)."""
    return {
        "issuer": issuer,
        "authorization_endpoint": f"{issuer}/authorize",
        "token_endpoint": f"{issuer}/token",
        "userinfo_endpoint": f"{issuer}/userinfo",
        "jwks_uri": f"{issuer}/jwks",
        "end_session_endpoint": f"{issuer}/end-session",
        "revocation_endpoint": f"{issuer}/revoke",
        "response_types_supported": ["code"],
        "response_modes_supported": ["query"],
        "grant_types_supported": ["authorization_code", "refresh_token"],
        "subject_types_supported": ["public"],
        "id_token_signing_alg_values_supported": list(ALGORITHMS),
        "scopes_supported": list(SCOPES),
        "claims_supported": [
            "sub",
            "iss",
            "aud",
            "exp",
            "iat",
            "auth_time",
            "nonce",
            "sid",
            "azp",
            "name",
            "preferred_username",
            "email",
            "email_verified",
        ],  # fmt: skip
        "token_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "revocation_endpoint_auth_methods_supported": [
            "client_secret_basic",
            "client_secret_post",
            "none",
        ],
        "code_challenge_methods_supported": ["S256"],
        "authorization_response_iss_parameter_supported": True,
        "request_parameter_supported": False,
        "request_uri_parameter_supported": False,
    }
