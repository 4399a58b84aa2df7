"""The OAuth authenticator protocol: the small object that knows one identity provider.

Backstage's ``OAuthAuthenticator`` with ``initialize()`` folded into
``from_config``: the instance is the context. The generic route handlers
(:mod:`wsgiauth.oauth.route_handlers`) own cookies, state, nonce and PKCE
verifier; an authenticator only builds the authorization URL and talks to the
provider's back channel.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import Protocol
from typing import runtime_checkable

if TYPE_CHECKING:
    from collections.abc import Mapping
    from collections.abc import Sequence
    from typing import Self

    from webob import Request
    from webob import Response

    from ..config import Config
    from ..http import HttpClient
    from ..types import ProfileInfo

__all__ = [
    "OAuthAuthenticateInput",
    "OAuthAuthenticator",
    "OAuthAuthenticatorResult",
    "OAuthLogoutInput",
    "OAuthLogoutResult",
    "OAuthRefreshInput",
    "OAuthSession",
    "OAuthStartInput",
    "OAuthStartResponse",
    "ProbeTarget",
    "ProfileTransform",
    "SupportsOAuthLogout",
    "SupportsOAuthRoutes",
    "SupportsProbes",
]


@dataclass(frozen=True, slots=True)
class OAuthStartInput:
    """What ``start`` needs to build the provider's authorization URL."""

    request: Request
    #: Space-joined scopes, already computed (requested, granted, required, additional).
    scope: str
    #: The encoded ``state`` to send to the provider unchanged.
    state: str
    #: The flow nonce (also inside ``state``); OIDC derives its ID-token ``nonce`` from it.
    nonce: str
    #: PKCE S256 challenge for this flow.
    code_challenge: str


@dataclass(frozen=True, slots=True)
class OAuthStartResponse:
    """Where to send the browser."""

    url: str
    status: int = 302


@dataclass(frozen=True, slots=True)
class OAuthAuthenticateInput:
    """The callback request plus what the route handler recovered from the flow."""

    request: Request
    #: The flow nonce from the verified ``state``.
    nonce: str
    #: The PKCE verifier sealed in this flow's cookie.
    code_verifier: str


@dataclass(frozen=True, slots=True)
class OAuthRefreshInput:
    """A refresh of the provider session from the refresh-token cookie."""

    request: Request
    scope: str
    scope_already_granted: bool
    refresh_token: str


@dataclass(frozen=True, slots=True)
class OAuthLogoutInput:
    """A logout; the refresh token may be revoked at the provider."""

    request: Request
    refresh_token: str | None


@dataclass(frozen=True, slots=True)
class OAuthLogoutResult:
    """What a provider wants the browser to do after logout (e.g. an end-session URL)."""

    logout_url: str | None = None


@dataclass(frozen=True, slots=True)
class OAuthSession:
    """The provider's tokens (Backstage ``OAuthSession``)."""

    access_token: str
    token_type: str = "Bearer"  # noqa: S105 - a token type, not a secret
    scope: str = ""
    id_token: str | None = None
    expires_in_seconds: int | None = None
    refresh_token: str | None = None
    refresh_token_expires_in_seconds: int | None = None


@dataclass(frozen=True, slots=True)
class OAuthAuthenticatorResult:
    """A provider's answer: the raw profile and the session."""

    #: The provider's profile as it came (ID-token claims merged with userinfo for OIDC).
    full_profile: dict[str, Any]
    session: OAuthSession


#: Maps a provider result to the profile the frontend shows.
ProfileTransform = Callable[[OAuthAuthenticatorResult], "ProfileInfo"]


@runtime_checkable
class OAuthAuthenticator(Protocol):
    """One identity provider's mechanics (authorization URL, code exchange, refresh).

    Two optional class attributes change how the route handlers treat it:

    - ``session_cookie = True``: the provider has no refresh token of its own (SAML).
      ``authenticate`` puts a session it makes itself in ``session.refresh_token``;
      the route handlers keep it sealed in the refresh-token cookie, refuse it after
      ``sessionDuration`` and hand it back to ``refresh``. Startup fails without
      ``auth.session.secret``, since an unsealed session could be forged.
    - ``posts_callback = True``: the provider POSTs its answer to ``handler/frame``
      from its own site (SAML's HTTP-POST binding). Over https the flow cookies are
      then ``SameSite=None``, or the browser would not send them with that POST.
    """

    #: Whether granted scopes live in the ``<id>-granted-scope`` cookie (spec §3.4).
    persist_scopes: bool
    #: Scopes always requested, e.g. ``("openid", "profile", "email")``.
    required_scopes: tuple[str, ...]

    @classmethod
    def from_config(cls, config: Config, *, callback_url: str, http: HttpClient) -> Self:
        """Build from one environment's config block; raise ``ConfigError`` on bad config."""
        ...

    def start(self, input: OAuthStartInput) -> OAuthStartResponse: ...

    def authenticate(self, input: OAuthAuthenticateInput) -> OAuthAuthenticatorResult: ...

    def refresh(self, input: OAuthRefreshInput) -> OAuthAuthenticatorResult: ...

    def default_profile_transform(self, result: OAuthAuthenticatorResult) -> ProfileInfo: ...


@runtime_checkable
class SupportsOAuthLogout(Protocol):
    """An authenticator that can end the provider session."""

    def logout(self, input: OAuthLogoutInput) -> OAuthLogoutResult | None: ...


@runtime_checkable
class SupportsOAuthRoutes(Protocol):
    """An authenticator with ``GET`` routes of its own, at ``<auth base>/<id>/<name>``.

    For what an identity provider's admin reads from the app, such as SAML's SP
    metadata. The names may not be ``start``, ``handler/frame``, ``refresh`` or ``logout``.
    """

    def routes(self) -> Mapping[str, Callable[[Request], Response]]: ...


@dataclass(frozen=True, slots=True)
class ProbeTarget:
    """An endpoint of the provider that the diagnostics page checks, and what makes it fine."""

    #: How the page names it: ``discovery``, ``token endpoint``, ``SAML metadata``.
    name: str
    url: str
    #: ``openid-discovery``: a 2xx JSON document, whose ``jwks_uri`` is probed next;
    #: ``document``: any 2xx answer; ``answer``: anything short of a 5xx (a token
    #: endpoint refuses a ``GET``, and still answered).
    expect: Literal["openid-discovery", "document", "answer"]


@runtime_checkable
class SupportsProbes(Protocol):
    """An authenticator that names the endpoints ``<auth base>/.diagnostics`` probes.

    :class:`~wsgiauth.oauth.endpoints.OAuthEndpointAuthenticator` names its token
    endpoint; an authenticator without this method is shown with nothing to probe.
    """

    def probe_targets(self) -> Sequence[ProbeTarget]: ...
