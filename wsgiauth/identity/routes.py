"""The identity endpoints: JWKS, OpenID discovery and userinfo (spec §9.3).

``/.well-known/jwks.json`` is what every service verifying our tokens polls, so
its whole answer (body, ``ETag``, headers) is built once per key set, a
:class:`~wsgiauth.responses.FixedRoute` the auth app sends as it is to a plain
``GET``; with ``If-None-Match`` WebOb's ``conditional_response`` answers a 304: a
verifier revalidates cheaply and, with a short ``max-age``, sees a rotated key
within seconds. Keys are published before their first token is signed, so a cached
set plus one refetch on an unknown ``kid`` is always enough.
"""

from __future__ import annotations

import hashlib
import json
from typing import TYPE_CHECKING
from typing import Any

from webob import Response

from ..errors import AuthenticationError
from ..errors import NotFoundError
from ..errors import UnimplementedError
from ..responses import FixedResponse
from ..responses import FixedRoute
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
        #: The key list last served and its answer; replaced whole, never mutated.
        self._jwks: tuple[list[dict[str, Any]], FixedResponse] | None = None
        discovery = json.dumps(
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
        self._discovery = FixedResponse.of(
            discovery,
            [
                ("Content-Type", "application/json; charset=utf-8"),
                ("Cache-Control", "public, max-age=3600"),
            ],
        )

    def routes(self) -> dict[str, Callable[[Request], Response]]:
        """Path (under the auth base) → handler, for :class:`~wsgiauth.app.AuthApp`."""
        return {
            "/.well-known/jwks.json": FixedRoute(self.jwks),
            "/.well-known/openid-configuration": FixedRoute(self.openid_configuration),
            "/v1/userinfo": self.userinfo,
            "/v1/token": self.token,
        }

    def jwks(self) -> FixedResponse:
        """``{"keys": [...]}``: every public key a live token may have been signed with."""
        keys = self.token_issuer.list_public_keys()
        cached = self._jwks
        # The issuer hands out the same key objects while its list is unchanged, so this
        # compare is an identity check per key in the common case.
        if cached is None or cached[0] != keys:
            body = json.dumps({"keys": keys}, separators=(",", ":")).encode()
            etag = hashlib.sha256(body).hexdigest()[:32]
            answer = FixedResponse.of(
                body,
                [
                    ("Content-Type", "application/json; charset=utf-8"),
                    ("Cache-Control", f"public, max-age={JWKS_MAX_AGE}"),
                    ("ETag", f'"{etag}"'),
                ],
                conditional=True,  # WebOb answers If-None-Match with a 304
            )
            cached = (keys, answer)
            self._jwks = cached  # a plain assignment: readers see the old or the new tuple
        return cached[1]

    def openid_configuration(self) -> FixedResponse:
        """OpenID discovery for our issuer (Backstage's stable form)."""
        return self._discovery

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
