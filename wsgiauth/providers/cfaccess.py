"""Cloudflare Access sign-in (Backstage's ``cfaccess`` module), a proxy provider.

Read against ``@backstage/plugin-auth-backend-module-cloudflare-access-provider`` 0.5.0,
``dist/helpers.cjs.js`` (``AuthHelper``), ``dist/authenticator.cjs.js``,
``dist/module.cjs.js``, ``dist/resolvers.cjs.js``, ``dist/types.cjs.js`` and
``config.schema.json``, and ``@backstage/plugin-auth-node`` 0.7.8
(``createProxyAuthRouteHandlers``, ``commonSignInResolvers``):

- config ``teamName`` and ``audience`` (both required), ``serviceTokens``
  (``token``, ``subject``), ``jwtHeaderName`` (default ``cf-access-jwt-assertion``),
  ``authorizationCookieName`` (default ``CF_Authorization``), ``signIn``; the
  documented ``sessionDuration`` is read and, as in Backstage, unused by a proxy
  provider;
- the JWT comes from the header, else from the cookie; it must be signed with one of
  ``https://<teamName>.cloudflareaccess.com/cdn-cgi/access/certs``, issued by
  ``https://<teamName>.cloudflareaccess.com`` for ``audience``;
- a token without ``sub`` is a service token: its ``common_name`` must be one of
  ``serviceTokens[].token``, and it signs in as ``{id, name: "Bot", email: subject,
  groups: []}``; a user's identity (with its groups) comes from
  ``/cdn-cgi/access/get-identity``, asked with the JWT in the header and the cookie,
  and cached by subject;
- the result is ``{claims, cfIdentity, expiresInSeconds, token}``, also sent as
  ``providerInfo``; the profile is ``cfIdentity``'s ``email`` and ``name``;
- resolvers: ``emailMatchingUserEntityProfileEmail`` and
  ``emailLocalPartMatchingUserEntityName``, the common ones (Backstage spreads
  ``commonSignInResolvers`` after the module's own, so the common ones win).

Unlike Backstage: only RS256 is accepted, ``exp`` and ``iat`` are required, and a token
that fails any check is a 401 (jose's errors reach Backstage's error handler as 500s);
keys or identity that Cloudflare cannot serve are a 503 (Backstage: 500), a 401/403
from the identity endpoint a 401. The identity cache holds an entry for at most
:data:`IDENTITY_CACHE_SECONDS` and never past the expiry of the token that fetched it
(Backstage's cache service keeps it without a TTL unless ``backend.cache.defaultTtl``
is set), and a cached entry is answered with the claims of the token presented, not
of the one that filled the cache. ``teamName`` must be a host label.
"""

from __future__ import annotations

import re
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any

import jwt

from ..proxy import AuthenticationError
from ..proxy import HttpError
from ..proxy import JwksKeys
from ..proxy import ProfileInfo
from ..proxy import ProviderModule
from ..proxy import ProxyAuthenticatorResult
from ..proxy import ServiceUnavailableError
from ..proxy import create_proxy_auth_provider_factory
from ..sign_in import email_local_part_matching_user_entity_name
from ..sign_in import email_matching_user_entity_profile_email

if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Self

    from webob import Request

    from ..proxy import Config
    from ..proxy import HttpClient

__all__ = ["CloudflareAccessAuthenticator", "ServiceToken", "module"]

#: Backstage's ``CF_JWT_HEADER`` and ``COOKIE_AUTH_NAME``.
CF_JWT_HEADER = "cf-access-jwt-assertion"
COOKIE_AUTH_NAME = "CF_Authorization"
#: Cloudflare signs Access JWTs with RS256 only; ``none`` and ``HS*`` are refused.
ALGORITHMS = ("RS256",)
#: The longest time a fetched identity (with its groups) is reused for a subject.
IDENTITY_CACHE_SECONDS = 3600.0
#: The most subjects whose identity is cached at once; the oldest go first.
IDENTITY_CACHE_SIZE = 10_000
KNOWN_KEYS = frozenset(
    {
        "teamName",
        "audience",
        "serviceTokens",
        "jwtHeaderName",
        "authorizationCookieName",
        "sessionDuration",
        "signIn",
    }
)
_TEAM_NAME = re.compile(r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?")


@dataclass(frozen=True, slots=True)
class ServiceToken:
    """One ``serviceTokens`` entry: a service token's client id and who it signs in as."""

    token: str
    subject: str


class _IdentityCache:
    """``cfIdentity`` by subject, bounded in size and age; thread-safe."""

    def __init__(self, clock: Callable[[], float]) -> None:
        self._clock = clock
        self._entries: OrderedDict[str, tuple[float, dict[str, Any]]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, subject: str) -> dict[str, Any] | None:
        with self._lock:
            entry = self._entries.get(subject)
            if entry is None:
                return None
            if self._clock() >= entry[0]:
                del self._entries[subject]
                return None
            return entry[1]

    def put(self, subject: str, identity: dict[str, Any], token_expires_at: float) -> None:
        until = min(self._clock() + IDENTITY_CACHE_SECONDS, token_expires_at)
        with self._lock:
            self._entries[subject] = (until, identity)
            self._entries.move_to_end(subject)
            while len(self._entries) > IDENTITY_CACHE_SIZE:
                self._entries.popitem(last=False)


class CloudflareAccessAuthenticator:
    """Backstage's ``AuthHelper``: checks the Access JWT, then reads the identity."""

    def __init__(
        self,
        *,
        team_name: str,
        audience: str,
        service_tokens: tuple[ServiceToken, ...] = (),
        jwt_header_name: str = CF_JWT_HEADER,
        authorization_cookie_name: str = COOKIE_AUTH_NAME,
        http: HttpClient,
        clock: Callable[[], float] = time.time,
    ) -> None:
        self.team_name = team_name
        self.audience = audience
        self.service_tokens = service_tokens
        self.jwt_header_name = jwt_header_name
        self.authorization_cookie_name = authorization_cookie_name
        self.http = http
        self.origin = f"https://{team_name}.cloudflareaccess.com"
        self.certs_url = f"{self.origin}/cdn-cgi/access/certs"
        self.identity_url = f"{self.origin}/cdn-cgi/access/get-identity"
        self.keys = JwksKeys(
            self.certs_url, algorithms=ALGORITHMS, key_algorithm="RS256", http=http, clock=clock
        )
        self._cache = _IdentityCache(clock)

    @classmethod
    def from_config(cls, config: Config, *, http: HttpClient) -> Self:
        """Build from ``auth.providers.cfaccess`` (no env level)."""
        team_name = config.get_string("teamName")
        if not _TEAM_NAME.fullmatch(team_name):
            raise config.error(
                "teamName",
                "expected the team name of <team>.cloudflareaccess.com (letters, digits, '-')",
            )
        service_tokens = []
        for item in config.get_optional_config_list("serviceTokens") or ():
            item.check_keys({"token", "subject"})
            service_tokens.append(
                ServiceToken(token=item.get_string("token"), subject=item.get_string("subject"))
            )
        config.get_optional_duration_seconds("sessionDuration")  # checked; a proxy has no session
        return cls(
            team_name=team_name,
            audience=config.get_string("audience"),
            service_tokens=tuple(service_tokens),
            jwt_header_name=config.get_optional_string("jwtHeaderName") or CF_JWT_HEADER,
            authorization_cookie_name=(
                config.get_optional_string("authorizationCookieName") or COOKIE_AUTH_NAME
            ),
            http=http,
        )

    def authenticate(self, request: Request) -> ProxyAuthenticatorResult:
        """The Access JWT from the header or cookie, verified; the identity it names."""
        token = request.headers.get(self.jwt_header_name) or request.cookies.get(
            self.authorization_cookie_name
        )
        if not token:
            raise AuthenticationError(
                f"Missing {self.jwt_header_name} and {self.authorization_cookie_name} "
                "from Cloudflare Access"
            )
        claims = self._verify(token)
        sub = claims.get("sub")
        is_service_token = not sub
        subject = claims.get("common_name") if is_service_token else sub
        if not subject or not isinstance(subject, str):
            raise AuthenticationError("Missing both sub and common_name from Cloudflare Access JWT")
        service_token = next((st for st in self.service_tokens if st.token == subject), None)
        if is_service_token and service_token is None:
            raise AuthenticationError(f"{subject} is not a permitted Service Token.")
        if service_token is not None:
            identity: dict[str, Any] = {
                "id": subject,
                "name": "Bot",
                "email": service_token.subject,
                "groups": [],
            }
        else:
            cached = self._cache.get(subject)
            if cached is None:
                cached = self._identity(token)
                self._cache.put(subject, cached, float(claims["exp"]))
            identity = cached
        result = {
            "claims": claims,
            "cfIdentity": identity,
            "expiresInSeconds": claims["exp"] - claims["iat"],
            "token": token,
        }
        return ProxyAuthenticatorResult(result=result, provider_info=result)

    def _verify(self, token: str) -> dict[str, Any]:
        """The claims of a JWT that Cloudflare Access signed for this application."""
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"Invalid Cloudflare Access JWT: {error}") from None
        if header.get("alg") not in ALGORITHMS:
            raise AuthenticationError(
                f"Cloudflare Access JWT algorithm {header.get('alg')!r} is not allowed "
                f"(expected {', '.join(ALGORITHMS)})"
            )
        kid = header.get("kid")
        if kid is not None and not isinstance(kid, str):
            raise AuthenticationError("Invalid Cloudflare Access JWT: its kid is not a string")
        try:
            key = self.keys.key(kid, lambda: _issued_at(token))
        except ServiceUnavailableError as error:
            raise ServiceUnavailableError(
                f"Could not load the Cloudflare Access signing keys from {self.certs_url}: "
                f"{error.message}"
            ) from error
        if key is None:
            raise AuthenticationError(
                f"Cloudflare Access JWT is signed with a key ({kid!r}) not in {self.certs_url}"
            )
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key,
                algorithms=list(ALGORITHMS),
                audience=self.audience,
                issuer=self.origin,
                options={"require": ["exp", "iat", "iss", "aud"]},
            )
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"Invalid Cloudflare Access JWT: {error}") from None
        return claims

    def _identity(self, token: str) -> dict[str, Any]:
        """``get-identity`` for the JWT, sent as Backstage sends it (header and cookie)."""
        try:
            response = self.http.request(
                "GET",
                self.identity_url,
                headers={
                    self.jwt_header_name: token,
                    "Cookie": f"{self.authorization_cookie_name}={token}",
                    "Accept": "application/json",
                },
            )
            if response.status in (401, 403):
                raise AuthenticationError(
                    f"Cloudflare Access refused the identity of this JWT ({response.status})"
                )
            if not response.ok:
                raise ServiceUnavailableError(
                    f"Cloudflare Access identity endpoint answered {response.status}"
                )
            identity = response.json()
        except AuthenticationError:
            raise
        except HttpError as error:
            raise ServiceUnavailableError(
                f"Failed to populate access identity information from {self.identity_url}: "
                f"{error.message}"
            ) from error
        if not isinstance(identity, dict):
            raise ServiceUnavailableError(
                f"Failed to populate access identity information from {self.identity_url}: "
                "the answer is not a JSON object"
            )
        return identity

    def default_profile_transform(self, result: ProxyAuthenticatorResult) -> ProfileInfo:
        """Backstage's: ``cfIdentity.email`` and ``cfIdentity.name``."""
        identity = result.result["cfIdentity"]
        email = identity.get("email")
        name = identity.get("name")
        return ProfileInfo(
            email=email if isinstance(email, str) and email else None,
            display_name=name if isinstance(name, str) and name else None,
        )


def _issued_at(token: str) -> float | None:
    """The ``iat`` a token claims, unverified: only to judge whether its kid may be new."""
    try:
        iat = jwt.decode(token, options={"verify_signature": False}).get("iat")
    except jwt.PyJWTError:
        return None
    return float(iat) if isinstance(iat, int | float) and not isinstance(iat, bool) else None


#: The built-in ``cfaccess`` provider.
module = ProviderModule(
    provider_id="cfaccess",
    factory=create_proxy_auth_provider_factory(
        CloudflareAccessAuthenticator, config_keys=KNOWN_KEYS
    ),
    resolvers={
        "emailMatchingUserEntityProfileEmail": email_matching_user_entity_profile_email,
        "emailLocalPartMatchingUserEntityName": email_local_part_matching_user_entity_name,
    },
)
