"""``backstageIdentity`` from a sign-in result (Backstage ``prepareBackstageIdentityResponse``).

The frontend needs to know who the token names and when it expires without
verifying it, so the payload is decoded here, unverified, exactly as
Backstage does (spec §6.1). The token was issued by this process a moment
ago; verification is for the services that receive it.
"""

from __future__ import annotations

import binascii
import json
import time
from collections.abc import Callable
from typing import Any

from jwt.utils import base64url_decode

from ..errors import InputError
from ..types import BackstageIdentityResponse
from ..types import BackstageSignInResult

__all__ = ["prepare_backstage_identity_response"]


def _unverified_claims(token: str) -> dict[str, Any]:
    """The payload segment alone: a full unverified ``jwt.decode`` would decode all three."""
    parts = token.split(".")
    try:
        if len(parts) != 3:
            raise ValueError("not three segments")
        claims = json.loads(base64url_decode(parts[1]))
        if not isinstance(claims, dict):
            raise ValueError("payload is not an object")
    except (ValueError, binascii.Error, RecursionError) as exc:  # json.loads of deep nesting
        raise InputError("Identity response must return a JWT") from exc
    return claims


def prepare_backstage_identity_response(
    result: BackstageSignInResult, *, clock: Callable[[], float] = time.time
) -> BackstageIdentityResponse:
    """The ``backstageIdentity`` of a response: token, user ref, ownership refs, expiry.

    ``expires_in_seconds`` is ``round(exp - now)``, or None when the token has no ``exp``.

    :raises InputError: no token, no ``sub`` claim, an expired token, or not a JWT.
    """
    if not result.token:
        raise InputError("Identity response must return a token")
    claims = _unverified_claims(result.token)
    sub = claims.get("sub")
    if not isinstance(sub, str) or not sub:
        raise InputError("Identity response must return a token with subject claim")
    ent = claims.get("ent", [])
    if not isinstance(ent, list) or not all(isinstance(ref, str) for ref in ent):
        raise InputError("Identity response must return a token with a list of ownership refs")
    exp = claims.get("exp")
    expires_in: int | None = None
    # As Backstage: a missing, zero or non-numeric ``exp`` means no expiry is reported.
    if isinstance(exp, int | float) and not isinstance(exp, bool) and exp:
        expires_in = round(exp - clock())
        if expires_in < 0:
            raise InputError("Identity response must not return an expired token")
    return BackstageIdentityResponse(
        token=result.token,
        user_entity_ref=sub,
        ownership_entity_refs=tuple(ent),
        expires_in_seconds=expires_in,
    )
