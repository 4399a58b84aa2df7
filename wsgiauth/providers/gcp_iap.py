"""Google Identity-Aware Proxy sign-in (Backstage's ``gcpIap`` module).

Read against ``@backstage/plugin-auth-backend-module-gcp-iap-provider`` 0.4.19,
``dist/authenticator.cjs.js`` (``gcpIapAuthenticator``), ``dist/helpers.cjs.js``
(``createTokenValidator``), ``dist/resolvers.cjs.js`` (``gcpIapSignInResolvers``) and
``config.schema.json``, and the checks it delegates to ``google-auth-library`` 9.15.1
(``OAuth2Client.getIapPublicKeys`` and ``verifySignedJwtWithCertsAsync``):

- config ``audience`` (required: ``/projects/<number>/global/backendServices/<id>``
  or ``/projects/<number>/apps/<project id>``), ``jwtHeader`` (default
  ``x-goog-iap-jwt-assertion``), ``signIn``, and ``sessionDuration``, which the
  schema lists and Backstage's proxy handlers never read (nor does wsgiauth);
- the token: ES256, a known ``kid``, ``iss`` ``https://cloud.google.com/iap``,
  ``aud`` equal to ``audience``, ``iat`` and ``exp`` present, valid within
  google-auth-library's 300 s clock skew, ``exp`` less than a day ahead, and
  ``sub`` and ``email`` present;
- the result and ``providerInfo`` are ``{"iapToken": <claims>}``, the profile is
  ``{"email": iapToken.email}``;
- resolvers ``emailMatchingUserEntityAnnotation`` (``google.com/email``) and
  ``idMatchingUserEntityAnnotation`` (``google.com/user-id`` = the part of ``sub``
  after ``accounts.google.com:``), plus the common ones.

Deliberate differences: the keys come from Google's JWK form of the same key set
(``public_key-jwk``, the one Google's IAP docs name) through :class:`JwksKeys`, cached
for the endpoint's ``max-age`` with a bounded, rate-limited refetch, where
google-auth-library fetches the PEM map (``public_key``) on every request; the token
must say ``alg: ES256`` (google-auth-library does not look at ``alg``); and a key
endpoint that cannot be reached is a 503, not a 401, so that an outage does not sign
everyone out.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING
from typing import Any

import jwt

from ..proxy import AuthenticationError
from ..proxy import JwksKeys
from ..proxy import ProfileInfo
from ..proxy import ProviderModule
from ..proxy import ProxyAuthenticatorResult
from ..proxy import ServiceUnavailableError
from ..proxy import create_proxy_auth_provider_factory
from ..sign_in import boolean
from ..sign_in import create_sign_in_resolver_factory
from ..sign_in import email_matching_user_entity_annotation
from ..sign_in import options_schema

if TYPE_CHECKING:
    from typing import Self

    from webob import Request

    from ..proxy import Config
    from ..proxy import HttpClient
    from ..sign_in import AuthResolverContext
    from ..sign_in import BackstageSignInResult
    from ..sign_in import SignInInfo
    from ..sign_in import SignInResolver

__all__ = ["GcpIapAuthenticator", "module"]

#: Google's IAP signing keys as a JWKS (the PEM map is ``.../public_key``).
IAP_JWKS_URL = "https://www.gstatic.com/iap/verify/public_key-jwk"
ISSUER = "https://cloud.google.com/iap"
DEFAULT_IAP_JWT_HEADER = "x-goog-iap-jwt-assertion"
ALGORITHM = "ES256"
#: google-auth-library's ``CLOCK_SKEW_SECS_`` and ``DEFAULT_MAX_TOKEN_LIFETIME_SECS_``.
CLOCK_SKEW_SECONDS = 300
MAX_TOKEN_LIFETIME_SECONDS = 86400
#: The keys of ``auth.providers.gcpIap`` besides ``signIn``.
CONFIG_KEYS = ("audience", "jwtHeader", "sessionDuration")
FAILED = "Google IAP token verification failed"


class GcpIapAuthenticator:
    """Backstage's ``gcpIapAuthenticator``: the IAP JWT header, checked against Google's keys."""

    def __init__(self, *, audience: str, jwt_header: str, keys: JwksKeys) -> None:
        self.audience = audience
        self.jwt_header = jwt_header
        self.keys = keys

    @classmethod
    def from_config(cls, config: Config, *, http: HttpClient) -> Self:
        """Build from ``auth.providers.gcpIap``: ``audience``, ``jwtHeader``."""
        audience = config.get_string("audience")
        jwt_header = config.get_optional_string("jwtHeader") or DEFAULT_IAP_JWT_HEADER
        keys = JwksKeys(IAP_JWKS_URL, algorithms=(ALGORITHM,), http=http)
        return cls(audience=audience, jwt_header=jwt_header, keys=keys)

    def authenticate(self, request: Request) -> ProxyAuthenticatorResult:
        """The verified claims of the IAP header; 401 without one or when it fails a check."""
        token = request.headers.get(self.jwt_header)
        if not token:
            raise AuthenticationError("Missing Google IAP header")
        iap_token = self.verify(token)
        return ProxyAuthenticatorResult(
            result={"iapToken": iap_token}, provider_info={"iapToken": iap_token}
        )

    def verify(self, token: str) -> dict[str, Any]:
        """The claims of an IAP JWT that passes every check (``createTokenValidator``).

        :raises AuthenticationError: the token fails a check (401).
        :raises ServiceUnavailableError: Google's keys cannot be loaded (503).
        """
        try:
            header = jwt.get_unverified_header(token)
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"{FAILED}, {error}") from error
        if header.get("alg") != ALGORITHM:
            # Not "none", not HS256 with the public key as the secret: only what IAP signs.
            raise AuthenticationError(f"{FAILED}, the algorithm must be {ALGORITHM}")
        kid = header.get("kid")
        if not isinstance(kid, str) or not kid:
            raise AuthenticationError(f"{FAILED}, the token names no key")
        try:
            key = self.keys.key(kid, issued_at_hint=lambda: _unverified_iat(token))
        except ServiceUnavailableError as error:
            raise ServiceUnavailableError(
                f"Unable to list Google IAP token verification keys: {error.message}"
            ) from error
        if key is None:
            raise AuthenticationError(f"{FAILED}, no Google IAP key has the id {kid!r}")
        try:
            claims: dict[str, Any] = jwt.decode(
                token,
                key.key,
                algorithms=[ALGORITHM],
                leeway=CLOCK_SKEW_SECONDS,
                options={"require": ["iat", "exp"], "verify_aud": False, "verify_iss": False},
            )
        except jwt.PyJWTError as error:
            raise AuthenticationError(f"{FAILED}, {error}") from error
        self._check_claims(claims)
        return claims

    def _check_claims(self, claims: dict[str, Any]) -> None:
        now = time.time()
        if claims["exp"] >= now + MAX_TOKEN_LIFETIME_SECONDS:
            raise AuthenticationError(f"{FAILED}, expiration time too far in future")
        if claims.get("iss") != ISSUER:
            raise AuthenticationError(f"{FAILED}, invalid issuer {claims.get('iss')!r}")
        # Compared whole, as google-auth-library does: a list is no match.
        if claims.get("aud") != self.audience:
            raise AuthenticationError(f"{FAILED}, wrong recipient, payload audience != audience")
        if not claims.get("sub"):
            raise AuthenticationError("Google IAP token payload is missing subject claim")
        if not claims.get("email"):
            raise AuthenticationError("Google IAP token payload is missing email claim")

    def default_profile_transform(self, result: ProxyAuthenticatorResult) -> ProfileInfo:
        """The email only, as Backstage."""
        return ProfileInfo(email=result.result["iapToken"]["email"])


def _unverified_iat(token: str) -> float | None:
    """The issue time the token claims, before it is verified (only a refetch hint)."""
    try:
        iat = jwt.decode(token, options={"verify_signature": False}).get("iat")
    except jwt.PyJWTError:
        return None
    return float(iat) if isinstance(iat, int | float) else None


def _create_id_matching_user_entity_annotation(options: dict[str, Any]) -> SignInResolver:
    dangerous = options.get("dangerouslyAllowSignInWithoutUserInCatalog", False)

    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        # "accounts.google.com:118171344853296716226" → the Google user id.
        parts = str(info.result["iapToken"].get("sub", "")).split(":")
        user_id = parts[1] if len(parts) > 1 else ""
        if not user_id:
            raise AuthenticationError("Google IAP sign-in result has no user id in its subject")
        return context.sign_in_with_catalog_user(
            {"annotations": {"google.com/user-id": user_id}},
            dangerous_entity_ref_fallback={"name": user_id} if dangerous else None,
        )

    return resolve


#: The User whose ``google.com/user-id`` annotation is the id in the token's ``sub``.
id_matching_user_entity_annotation = create_sign_in_resolver_factory(
    _create_id_matching_user_entity_annotation,
    options_schema=options_schema({"dangerouslyAllowSignInWithoutUserInCatalog": boolean}),
)

#: The built-in ``gcpIap`` provider.
module = ProviderModule(
    provider_id="gcpIap",
    factory=create_proxy_auth_provider_factory(GcpIapAuthenticator, config_keys=CONFIG_KEYS),
    resolvers={
        "emailMatchingUserEntityAnnotation": email_matching_user_entity_annotation(
            "google.com/email"
        ),
        "idMatchingUserEntityAnnotation": id_matching_user_entity_annotation,
    },
)
