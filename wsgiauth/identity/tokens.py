"""The Backstage user token format: claims and a signing key in, a signed token out (spec §9.1).

Pure functions, no key lifecycle (that is :mod:`wsgiauth.identity.token_factory`).
Tokens are built byte for byte as Backstage builds them: header
``{"typ":"vnd.backstage.user","alg":...,"kid":...}``, payload
``{...extra, iss, sub, ent, aud, iat, exp, uip}``, where ``uip`` is only the
signature of a second JWS, header ``{"typ":"vnd.backstage.limited-user",...}``
over exactly ``{"sub":...,"iat":...,"exp":...}``. Backstage services rebuild that
"limited user token" from the parts, so its JSON must match ``JSON.stringify``.
"""

from __future__ import annotations

import functools
import json
import logging
import math
from dataclasses import dataclass
from typing import Any

from cryptography.hazmat.primitives.asymmetric.ec import ECDSA
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature
from cryptography.hazmat.primitives.hashes import HashAlgorithm
from jwt.algorithms import ECAlgorithm
from jwt.api_jws import PyJWS
from jwt.utils import base64url_encode

from ..catalog.refs import is_entity_ref
from ..errors import HttpError
from ..errors import InputError
from ..types import TokenParams

__all__ = [
    "AUDIENCE",
    "MAX_TOKEN_LENGTH",
    "TYP_LIMITED_USER",
    "TYP_USER",
    "SigningKey",
    "TokenTooLargeError",
    "issue_user_token",
]

log = logging.getLogger(__name__)

#: JOSE ``typ`` of a full user token and of the limited token that ``uip`` proves.
TYP_USER = "vnd.backstage.user"
TYP_LIMITED_USER = "vnd.backstage.limited-user"
#: The ``aud`` of every user token.
AUDIENCE = "backstage"
#: Backstage refuses to issue longer tokens (about 500 ownership refs of 64 bytes), and
#: the verifier refuses to read them.
MAX_TOKEN_LENGTH = 32768

_JWS = PyJWS()
_BAD_SUB = '"sub" claim provided by the auth resolver is not a valid EntityRef.'


class TokenTooLargeError(HttpError):
    """The token would exceed :data:`MAX_TOKEN_LENGTH`: a resolver or catalog bug (500)."""

    status_code = 500
    wire_name = "Error"


@dataclass(frozen=True, slots=True)
class SigningKey:
    """A private key to sign tokens with, and the public JWK that verifies them."""

    kid: str
    algorithm: str
    #: A ``cryptography`` private key object.
    private_key: Any
    public_jwk: dict[str, Any]
    #: Epoch seconds by the issuer's clock.
    created_at: float


#: Made once: ``json.dumps`` with these options would build an encoder per call.
_COMPACT = json.JSONEncoder(separators=(",", ":"), ensure_ascii=False, allow_nan=False)


def _compact_json(value: Any) -> bytes:
    """``JSON.stringify`` bytes: no spaces, insertion order, non-ASCII kept as UTF-8."""
    return _COMPACT.encode(value).encode()


@functools.lru_cache(maxsize=64)
def _header_segment(header_typ: str, algorithm: str, kid: str) -> bytes:
    """The encoded JOSE header, made once per key and ``typ``.

    The bytes of PyJWT's ``encode(..., headers=..., sort_headers=False)``: ``typ``,
    ``alg``, ``kid`` in this order (Backstage's), ASCII-escaped compact JSON.
    """
    _JWS._validate_headers({"kid": kid}, encoding=True)  # noqa: SLF001 - as encode() does
    header = {"typ": header_typ, "alg": algorithm, "kid": kid}
    return base64url_encode(json.dumps(header, separators=(",", ":")).encode())


def _sign(key: SigningKey, header_typ: str, payload: bytes) -> str:
    """A compact JWS, as PyJWT's ``encode`` makes it, less its per-call header work.

    Two of these are signed per token and the signature is most of their cost, so the
    header segment is cached and PyJWT's algorithm object signs directly.
    """
    signing_input = (
        _header_segment(header_typ, key.algorithm, key.kid) + b"." + (base64url_encode(payload))
    )
    algorithm = _JWS.get_algorithm_by_name(key.algorithm)
    private_key = algorithm.prepare_key(key.private_key)  # checks the key fits (EC: its curve)
    if isinstance(algorithm, ECAlgorithm):
        signature = _ec_signature(private_key, algorithm.hash_alg, signing_input)
    else:
        signature = algorithm.sign(signing_input, private_key)
    return (signing_input + b"." + base64url_encode(signature)).decode("ascii")


def _ec_signature(private_key: Any, hash_alg: type[HashAlgorithm], message: bytes) -> bytes:
    """``ECAlgorithm.sign``: JOSE's ``r || s``, each as wide as the curve, from a DER signature.

    The same bytes, without a new ``ECDSA`` and hash object per call or PyJWT's
    hex round trip per number.
    """
    r, s = decode_dss_signature(private_key.sign(message, _ecdsa(hash_alg)))
    width = (private_key.curve.key_size + 7) // 8
    return r.to_bytes(width, "big") + s.to_bytes(width, "big")


@functools.lru_cache(maxsize=8)  # one per hash algorithm
def _ecdsa(hash_alg: type[HashAlgorithm]) -> ECDSA:
    return ECDSA(hash_alg())


def issue_user_token(
    key: SigningKey,
    params: TokenParams,
    *,
    issuer: str,
    duration: int,
    now: float,
    omit_ownership_claim: bool,
) -> tuple[str, dict[str, Any]]:
    """Sign a user token; return it and the claims to keep as user info.

    Raises :class:`InputError` for a ``sub`` that is not an entity ref, a bad ``ent``
    or claims that are not JSON, and :class:`TokenTooLargeError` past
    :data:`MAX_TOKEN_LENGTH`.
    """
    extra = dict(params.claims)
    sub = extra.pop("sub", None)
    if not isinstance(sub, str) or not is_entity_ref(sub):
        raise InputError(_BAD_SUB)
    ent = extra.pop("ent", None)
    if ent is None:
        ent = [sub]
    elif not isinstance(ent, list | tuple) or not all(isinstance(ref, str) for ref in ent):
        raise InputError('"ent" claim provided by the auth resolver must be a list of entity refs')
    ent = list(ent)
    iat = math.floor(now)
    exp = iat + duration
    proof = _compact_json({"sub": sub, "iat": iat, "exp": exp})
    uip = _sign(key, TYP_LIMITED_USER, proof).rsplit(".", 1)[1]
    claims = {**extra, "iss": issuer, "sub": sub, "ent": ent, "aud": AUDIENCE}
    claims.update(iat=iat, exp=exp, uip=uip)
    token_claims = (
        {k: v for k, v in claims.items() if k != "ent"} if omit_ownership_claim else claims
    )
    try:
        token = _sign(key, TYP_USER, _compact_json(token_claims))
    except (TypeError, ValueError) as exc:
        raise InputError("The claims provided by the auth resolver are not valid JSON") from exc
    if len(token) > MAX_TOKEN_LENGTH:
        raise TokenTooLargeError(
            "Failed to issue a new user token. The resulting token is excessively large, with "
            "either too many ownership claims or too large custom claims. You likely have a bug "
            f"either in the sign-in resolver or catalog data (sub '{sub}', {len(ent)} ownership "
            f"refs, {len(token)} characters)."
        )
    log.debug("Issued a token for %s with %d ownership refs (kid %s)", sub, len(ent), key.kid)
    user_info = {k: v for k, v in claims.items() if k not in ("aud", "iat", "iss", "uip")}
    return token, user_info
