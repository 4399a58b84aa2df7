"""The identity endpoints: JWKS, OpenID discovery and userinfo (spec §9.3).

``/.well-known/jwks.json`` is what every service verifying our tokens polls, so
its body is serialised once per key set and served with an ``ETag`` (WebOb's
``conditional_response`` answers ``If-None-Match`` with a 304): a verifier
revalidates cheaply and, with a short ``max-age``, sees a rotated key within
seconds. Keys are published before their first token is signed, so a cached
set plus one refetch on an unknown ``kid`` is always enough.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING

from webob import Response

from ..errors import AuthenticationError
from ..errors import NotFoundError
from ..errors import UnimplementedError
from ..responses import json_response
from .verifier import parse_bearer_token

if TYPE_CHECKING:
    from collections.abc import Callable

    from webob import Request

    from .types import TokenIssuer
    from .types import UserInfoStore
    from .verifier import IdentityVerifier

__all__ = ["IdentityRoutes"]

#: Short enough to see a rotation promptly, long enough to spare the endpoint.
JWKS_MAX_AGE = 30


class IdentityRoutes:
    """Handlers for the identity endpoints, keyed by their path under the auth base."""

    def __init__(
        self,
        *,
        issuer: str,
        token_issuer: TokenIssuer,
        verifier: IdentityVerifier,
        user_info_store: UserInfoStore | None,
    ) -> None:
        self.issuer = issuer
        self.token_issuer = token_issuer
        self.verifier = verifier
        self.user_info_store = user_info_store
        self._jwks: tuple[tuple[str, ...], bytes, str] | None = None
        self._discovery = json.dumps(
            {
                "issuer": issuer,
                "token_endpoint": f"{issuer}/v1/token",
                "userinfo_endpoint": f"{issuer}/v1/userinfo",
                "jwks_uri": f"{issuer}/.well-known/jwks.json",
                "response_types_supported": ["id_token"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["ES256"],
                "scopes_supported": ["openid"],
                "token_endpoint_auth_methods_supported": [],
                "claims_supported": ["sub", "ent"],
                "grant_types_supported": [],
            },
            separators=(",", ":"),
        ).encode()

    def routes(self) -> dict[str, Callable[[Request], Response]]:
        """Path (under the auth base) → handler, for :class:`~wsgiauth.app.AuthApp`."""
        return {
            "/.well-known/jwks.json": self.jwks,
            "/.well-known/openid-configuration": self.openid_configuration,
            "/v1/userinfo": self.userinfo,
            "/v1/token": self.token,
        }

    def jwks(self, request: Request) -> Response:
        """``{"keys": [...]}``: every public key a live token may have been signed with."""
        keys = self.token_issuer.list_public_keys()
        kids = tuple(key.get("kid", "") for key in keys)
        cached = self._jwks
        if cached is None or cached[0] != kids:
            body = json.dumps({"keys": keys}, separators=(",", ":")).encode()
            cached = (kids, body, hashlib.sha256(body).hexdigest()[:32])
            self._jwks = cached  # a plain assignment: readers see the old or the new tuple
        _, body, etag = cached
        # WebOb answers If-None-Match with a 304 when the response is called.
        return Response(
            body=body,
            headerlist=[
                ("Content-Type", "application/json; charset=utf-8"),
                ("Cache-Control", f"public, max-age={JWKS_MAX_AGE}"),
                ("ETag", f'"{etag}"'),
            ],
            conditional_response=True,
        )

    def openid_configuration(self, request: Request) -> Response:
        """OpenID discovery for our issuer (Backstage's stable form)."""
        return Response(
            body=self._discovery,
            headerlist=[
                ("Content-Type", "application/json; charset=utf-8"),
                ("Cache-Control", "public, max-age=3600"),
            ],
        )

    def userinfo(self, request: Request) -> Response:
        """The claims stored when the caller's token was issued."""
        token = parse_bearer_token(request.headers.get("Authorization", ""))
        if token is None:
            raise AuthenticationError("No token provided")
        identity = self.verifier.verify(token)
        info = (
            self.user_info_store.get_user_info(identity.user_entity_ref)
            if self.user_info_store
            else None
        )
        if info is None:
            raise NotFoundError("User info not found")
        return json_response({"claims": info})

    def token(self, request: Request) -> Response:
        """wsgiauth is not an OAuth authorization server (Backstage's stable form)."""
        raise UnimplementedError("Not Implemented")
