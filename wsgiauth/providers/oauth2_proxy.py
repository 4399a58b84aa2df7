"""Sign-in behind oauth2-proxy (Backstage's ``oauth2Proxy`` module).

Read against ``@backstage/plugin-auth-backend-module-oauth2-proxy-provider`` 0.3.3,
``dist/authenticator.cjs.js`` (``oauth2ProxyAuthenticator``), ``dist/resolvers.cjs.js``
(``oauth2ProxySignInResolvers``) and ``dist/module.cjs.js``, over
``@backstage/plugin-auth-node`` 0.7.8 ``createProxyAuthRouteHandlers``:

- no config keys but ``signIn`` (``auth.providers.oauth2Proxy`` is the config, no env
  level); a resolver is required;
- the result carries every request header (``headers``, ``get_header``), the ID token
  of ``X-OAUTH2-PROXY-ID-TOKEN: Bearer <jwt>`` as ``access_token`` and its claims,
  **decoded without verification**, as ``full_profile``; a token that does not decode
  is refused with ``AuthenticationError("Authentication failed")``;
- the profile: ``email`` from ``X-Forwarded-Email``, ``displayName`` from
  ``X-Forwarded-Preferred-Username``, else ``X-Forwarded-User``;
- ``providerInfo`` is ``{"accessToken": <that JWT or "">}``;
- the resolvers ``forwardedUserMatchingUserEntityName`` and
  ``forwardedPreferredUsernameMatchingUserEntityName`` (the User named like the header,
  ``dangerouslyAllowSignInWithoutUserInCatalog`` as their one option), plus the common
  ones.

oauth2-proxy signs nothing this app could check: like Backstage, the provider trusts
whoever can reach the app. Only the proxy may reach it, and the proxy must overwrite
(or strip) the ``X-Forwarded-*`` and ``X-OAUTH2-PROXY-ID-TOKEN`` headers that callers
send.

Unlike Backstage, a request with none of ``X-Forwarded-User``, ``-Email`` and
``-Preferred-Username`` (one that did not come through the proxy) is refused with 401
before any resolver runs, and the resolvers refuse a missing header with 401
(``AuthenticationError``) where Backstage throws a plain ``Error`` (a 500).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any

import jwt

from ..errors import AuthenticationError
from ..proxy import ProfileInfo
from ..proxy import ProviderModule
from ..proxy import ProxyAuthenticatorResult
from ..proxy import create_proxy_auth_provider_factory
from ..sign_in import boolean
from ..sign_in import create_sign_in_resolver_factory
from ..sign_in import options_schema

if TYPE_CHECKING:
    from collections.abc import Mapping
    from typing import Self

    from webob import Request

    from ..proxy import Config
    from ..proxy import HttpClient
    from ..sign_in import AuthResolverContext
    from ..sign_in import BackstageSignInResult
    from ..sign_in import SignInInfo
    from ..sign_in import SignInResolver
    from ..sign_in import SignInResolverFactory

__all__ = ["OAUTH2_PROXY_JWT_HEADER", "OAuth2ProxyAuthenticator", "OAuth2ProxyResult", "module"]

#: Where oauth2-proxy puts the ID token, as ``Bearer <jwt>`` (Backstage's name).
OAUTH2_PROXY_JWT_HEADER = "X-OAUTH2-PROXY-ID-TOKEN"
USER_HEADER = "x-forwarded-user"
EMAIL_HEADER = "x-forwarded-email"
PREFERRED_USERNAME_HEADER = "x-forwarded-preferred-username"
#: The only key of ``auth.providers.oauth2Proxy``.
NOT_THROUGH_PROXY = (
    "Authentication failed: the request carries none of X-Forwarded-User, X-Forwarded-Email, "
    "X-Forwarded-Preferred-Username; it did not come through oauth2-proxy"
)
DANGEROUS = "dangerouslyAllowSignInWithoutUserInCatalog"
_BEARER = re.compile(r"Bearer +(\S+)", re.IGNORECASE)


@dataclass(frozen=True, slots=True)
class OAuth2ProxyResult:
    """What oauth2-proxy passed (Backstage ``OAuth2ProxyResult``)."""

    #: The claims of the ID token, decoded but NOT verified; ``{}`` without one.
    full_profile: dict[str, Any]
    #: The ID token of ``X-OAUTH2-PROXY-ID-TOKEN``; ``""`` without one.
    access_token: str
    #: Every request header, by lowercase name. Trust only those the proxy sets.
    headers: Mapping[str, str] = field(default_factory=dict)

    def get_header(self, name: str) -> str | None:
        """The request header ``name`` (any case), or ``None``."""
        return self.headers.get(name.lower())


class OAuth2ProxyAuthenticator:
    """Backstage's ``oauth2ProxyAuthenticator``: the headers oauth2-proxy sets, trusted."""

    @classmethod
    def from_config(cls, config: Config, *, http: HttpClient) -> Self:
        """``auth.providers.oauth2Proxy`` holds only ``signIn``; there are no keys to fetch."""
        return cls()

    def authenticate(self, request: Request) -> ProxyAuthenticatorResult:
        """The forwarded headers, and the ID token's claims decoded without verification."""
        headers = {name.lower(): value for name, value in request.headers.items()}
        if not any(headers.get(h) for h in (USER_HEADER, EMAIL_HEADER, PREFERRED_USERNAME_HEADER)):
            raise AuthenticationError(NOT_THROUGH_PROXY)
        match = _BEARER.fullmatch(headers.get(OAUTH2_PROXY_JWT_HEADER.lower(), ""))
        token = match[1] if match else ""
        claims: dict[str, Any] = {}
        if token:
            try:
                # As Backstage's jose.decodeJwt: the token is only parsed, never verified.
                claims = jwt.decode(token, options={"verify_signature": False})
            except jwt.PyJWTError as error:
                raise AuthenticationError("Authentication failed") from error
        result = OAuth2ProxyResult(full_profile=claims, access_token=token, headers=headers)
        return ProxyAuthenticatorResult(result=result, provider_info={"accessToken": token})

    def default_profile_transform(self, result: ProxyAuthenticatorResult) -> ProfileInfo:
        """Email and display name from the forwarded headers."""
        proxy: OAuth2ProxyResult = result.result
        return ProfileInfo(
            email=proxy.get_header(EMAIL_HEADER) or None,
            display_name=proxy.get_header(PREFERRED_USERNAME_HEADER)
            or proxy.get_header(USER_HEADER)
            or None,
        )


def _header_matching_user_entity_name(header: str, missing: str) -> SignInResolverFactory:
    """The User named like the request header ``header`` (Backstage's two resolvers)."""

    def create(options: dict[str, Any]) -> SignInResolver:
        dangerous = options.get(DANGEROUS, False)

        def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
            result = info.result
            name = result.get_header(header) if isinstance(result, OAuth2ProxyResult) else None
            if not name:
                raise AuthenticationError(missing)
            return context.sign_in_with_catalog_user(
                {"entityRef": {"name": name}},
                dangerous_entity_ref_fallback={"name": name} if dangerous else None,
            )

        return resolve

    return create_sign_in_resolver_factory(
        create, options_schema=options_schema({DANGEROUS: boolean})
    )


#: The built-in ``oauth2Proxy`` provider.
module = ProviderModule(
    provider_id="oauth2Proxy",
    factory=create_proxy_auth_provider_factory(OAuth2ProxyAuthenticator, config_keys=()),
    resolvers={
        "forwardedUserMatchingUserEntityName": _header_matching_user_entity_name(
            USER_HEADER, "Request did not contain a user"
        ),
        "forwardedPreferredUsernameMatchingUserEntityName": _header_matching_user_entity_name(
            PREFERRED_USERNAME_HEADER, "Request did not contain a preferred username"
        ),
    },
)
