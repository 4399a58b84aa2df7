"""Route handlers of proxy providers (Backstage ``createProxyAuthRouteHandlers``, spec §1.7).

A proxy provider has no popup: ``/refresh`` reads the request (a header set by
a trusted proxy, or nothing at all for ``guest``), runs the mandatory sign-in
resolver and answers the session JSON. ``start`` and ``handler/frame`` answer
501. There is no env level and, as in Backstage, no ``X-Requested-With`` check.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Protocol

from ..audit import AuditEvent
from ..audit import audit
from ..audit import audit_failure
from ..audit import user_ref_of
from ..errors import HttpError
from ..errors import UnimplementedError
from ..responses import json_response
from ..types import ClientAuthResponse
from ..types import SignInInfo

if TYPE_CHECKING:
    from typing import Self

    from webob import Request
    from webob import Response

    from ..config import Config
    from ..http import HttpClient
    from ..types import AuthResolverContext
    from ..types import BackstageIdentityResponse
    from ..types import BackstageSignInResult
    from ..types import ProfileInfo
    from ..types import SignInResolver

__all__ = ["ProxyAuthenticator", "ProxyAuthenticatorResult", "ProxyRouteHandlers"]


@dataclass(frozen=True, slots=True)
class ProxyAuthenticatorResult:
    """What a proxy authenticator read from the request."""

    #: The provider's raw result, handed to the sign-in resolver.
    result: Any
    #: ``providerInfo`` for the response, if the provider has any.
    provider_info: dict[str, Any] | None = None


class ProxyAuthenticator(Protocol):
    """Reads who the caller is from the request (Backstage ``ProxyAuthenticator``)."""

    @classmethod
    def from_config(cls, config: Config, *, http: HttpClient) -> Self:
        """Backstage's ``initialize``: read the provider's config, keep a client for keys."""
        ...

    def authenticate(self, request: Request) -> ProxyAuthenticatorResult: ...

    def default_profile_transform(self, result: ProxyAuthenticatorResult) -> ProfileInfo: ...


class ProxyRouteHandlers:
    """``/refresh`` for a proxy provider; ``start`` and ``handler/frame`` answer 501."""

    def __init__(
        self,
        authenticator: ProxyAuthenticator,
        *,
        sign_in_resolver: SignInResolver,
        resolver_context: AuthResolverContext,
        identity_response: Callable[[BackstageSignInResult], BackstageIdentityResponse],
    ) -> None:
        self.authenticator = authenticator
        self.sign_in_resolver = sign_in_resolver
        self.resolver_context = resolver_context
        self.identity_response = identity_response

    def start(self, request: Request) -> Response:
        """Proxy providers have no login page."""
        raise UnimplementedError("Not implemented")

    def frame_handler(self, request: Request) -> Response:
        """Proxy providers have no callback."""
        raise UnimplementedError("Not implemented")

    def refresh(self, request: Request) -> Response:
        """Who the request says it is, signed in through the resolver."""
        try:
            result = self.authenticator.authenticate(request)
            profile = self.authenticator.default_profile_transform(result)
            signed_in = self.sign_in_resolver(
                SignInInfo(profile=profile, result=result.result), self.resolver_context
            )
            body = ClientAuthResponse(
                profile=profile,
                provider_info=result.provider_info,
                backstage_identity=self.identity_response(signed_in),
            ).to_json()
        except HttpError as error:
            audit_failure(AuditEvent.SIGN_IN_FAILED, error)
            raise
        audit(AuditEvent.SIGN_IN_SUCCEEDED, user=user_ref_of(body))
        return json_response(body)
