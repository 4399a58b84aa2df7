"""Shared protocols and value types: the seams between the auth app and providers.

Python names are Backstage's in snake_case (``AuthProviderRouteHandlers``,
``ProfileInfo``, ``ClientAuthResponse``); camelCase appears only in ``to_json``.
Seams that users implement are :class:`typing.Protocol`; values are frozen
dataclasses, so nothing per request lives on shared objects (WSGI servers run
threads).
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Mapping
from dataclasses import dataclass
from dataclasses import field
from typing import TYPE_CHECKING
from typing import Any
from typing import Literal
from typing import Protocol
from typing import runtime_checkable

if TYPE_CHECKING:
    from webob import Request
    from webob import Response

    from .config import Config
    from .http import HttpClient
    from .sealing import CookieSealer

__all__ = [
    "AuthProviderFactory",
    "AuthProviderFactoryOptions",
    "AuthProviderRouteHandlers",
    "AuthResolverContext",
    "BackstageIdentityResponse",
    "BackstageSignInResult",
    "ClientAuthResponse",
    "CookieConfigurer",
    "CookieSettings",
    "ProfileInfo",
    "ProviderModule",
    "REFRESH_GRACE_SECONDS",
    "REFRESH_WAIT_SECONDS",
    "RefreshFlights",
    "ReplayStore",
    "SignInInfo",
    "SignInResolver",
    "SignInResolverFactory",
    "SupportsExtraRoutes",
    "SupportsLogout",
    "SupportsRefresh",
    "TokenParams",
]


@dataclass(frozen=True, slots=True)
class ProfileInfo:
    """What the frontend shows of a signed-in user (Backstage ``ProfileInfo``)."""

    email: str | None = None
    display_name: str | None = None
    picture: str | None = None

    def to_json(self) -> dict[str, str]:
        """The wire shape; absent fields are omitted as ``JSON.stringify`` does."""
        out = {"email": self.email, "displayName": self.display_name, "picture": self.picture}
        return {key: value for key, value in out.items() if value is not None}


@dataclass(frozen=True, slots=True)
class BackstageIdentityResponse:
    """The issued identity token and who it names (spec §6.1)."""

    token: str
    user_entity_ref: str
    ownership_entity_refs: tuple[str, ...]
    expires_in_seconds: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire shape of ``backstageIdentity``."""
        out: dict[str, Any] = {
            "token": self.token,
            "identity": {
                "type": "user",
                "userEntityRef": self.user_entity_ref,
                "ownershipEntityRefs": list(self.ownership_entity_refs),
            },
        }
        if self.expires_in_seconds is not None:
            out["expiresInSeconds"] = self.expires_in_seconds
        return out


@dataclass(frozen=True, slots=True)
class ClientAuthResponse:
    """The body of ``refresh`` and the ``response`` of the popup message (spec §6.1)."""

    profile: ProfileInfo
    #: Provider specific: ``idToken``, ``accessToken``, ``scope``, ``expiresInSeconds``.
    provider_info: dict[str, Any] | None = None
    backstage_identity: BackstageIdentityResponse | None = None

    def to_json(self) -> dict[str, Any]:
        """The wire shape; ``providerInfo`` and ``backstageIdentity`` only when present."""
        out: dict[str, Any] = {"profile": self.profile.to_json()}
        if self.provider_info is not None:
            out["providerInfo"] = self.provider_info
        if self.backstage_identity is not None:
            out["backstageIdentity"] = self.backstage_identity.to_json()
        return out


@dataclass(frozen=True, slots=True)
class CookieSettings:
    """Attributes for the OAuth cookies of one provider (Backstage ``CookieConfigurer`` result)."""

    path: str
    secure: bool
    same_site: Literal["lax", "strict", "none"] = "lax"
    domain: str | None = None


#: ``(provider_id, base_url, callback_url, app_origin) -> CookieSettings``.
CookieConfigurer = Callable[[str, str, str, str], CookieSettings]


@runtime_checkable
class AuthProviderRouteHandlers(Protocol):
    """The routes every provider answers; ``refresh`` and ``logout`` are optional."""

    def start(self, request: Request) -> Response: ...

    def frame_handler(self, request: Request) -> Response: ...


@runtime_checkable
class SupportsExtraRoutes(Protocol):
    """A provider with ``GET`` routes of its own, at ``/<id>/<name>`` (SAML's metadata)."""

    def extra_routes(self) -> Mapping[str, Callable[[Request], Response]]: ...


class ReplayStore(Protocol):
    """Remembers one-time values (a SAML assertion's ID) until they expire.

    On the configured database it is shared by every worker; in memory, by one process.
    """

    def first_use(self, key: str, expires_at: float) -> bool:
        """Record ``key`` until ``expires_at`` (epoch seconds); ``False`` if already there."""
        ...


@runtime_checkable
class SupportsRefresh(Protocol):
    """A provider that answers ``/refresh``."""

    def refresh(self, request: Request) -> Response: ...


@runtime_checkable
class SupportsLogout(Protocol):
    """A provider that answers ``/logout``."""

    def logout(self, request: Request) -> Response: ...


#: How long a finished refresh is handed to late callers with the same refresh token
#: (tabs that raced it), in one process and across processes alike.
REFRESH_GRACE_SECONDS = 20.0
#: How long a caller waits for another's refresh: then it gives up on it (in one
#: process) or takes its claim over (across processes: the owner died).
REFRESH_WAIT_SECONDS = 30.0


class RefreshFlights(Protocol):
    """One call per key across processes and hosts; a result is shared for a grace period.

    What lets tabs that race one rotating refresh token share one exchange when
    different workers serve them (``wsgiauth.identity.refresh_flights``, on the
    database). ``key`` is a secret (it holds the refresh token): implementations
    keep only what cannot give it or the result away.
    """

    def run(self, key: str, call: Callable[[], str]) -> str:
        """``call()``, or the result of the call with the same ``key`` that ran or runs."""
        ...

    def forget(self, key: str) -> None:
        """Hand nobody the result of ``key`` any more (logout)."""
        ...


@dataclass(frozen=True, slots=True)
class AuthProviderFactoryOptions:
    """Everything a provider factory gets to build its route handlers, and nothing more."""

    #: The id the provider is mounted under: ``auth.providers.<id>``, ``/<id>/start``.
    provider_id: str
    #: The provider's own subtree, ``auth.providers.<id>``.
    config: Config
    #: The external auth base URL, e.g. ``http://localhost:7007/api/auth``.
    base_url: str
    #: ``app.baseUrl``; its origin is the default postMessage target.
    app_url: str
    #: Whether an origin may receive sign-in results (app origin and allowed globs).
    is_origin_allowed: Callable[[str], bool]
    #: The one outbound HTTP client: timeouts, a size cap, faults as 503.
    http: HttpClient
    #: Seals cookie values with ``auth.session.secret`` (a no-op without one).
    sealer: CookieSealer
    #: What sign-in resolvers use to find users and issue tokens.
    resolver_context: AuthResolverContext
    #: ``auth.environment``: ``development`` unless configured otherwise.
    environment: str = "development"
    #: One-time values seen (the database's when configured); ``None``: keep them in memory.
    replay_store: ReplayStore | None = None
    #: The resolvers ``signIn.resolvers`` may name: the common ones, the provider
    #: module's own (:attr:`ProviderModule.resolvers`) and entry points.
    sign_in_resolver_factories: Mapping[str, SignInResolverFactory] = field(default_factory=dict)
    cookie_configurer: CookieConfigurer | None = None
    #: Shares refresh exchanges between processes (the database's); ``None``: this process only.
    refresh_flights: RefreshFlights | None = None


#: Builds one provider's route handlers from its options.
AuthProviderFactory = Callable[[AuthProviderFactoryOptions], AuthProviderRouteHandlers]


@dataclass(frozen=True, slots=True)
class ProviderModule:
    """A provider, as built-ins and third-party packages (entry points) both provide it.

    It carries its own sign-in resolvers, so they follow it under any id it is
    mounted as (``providers={"corp": oidc.module}``).
    """

    #: The id it is known by (Backstage's ``providerId``).
    provider_id: str
    factory: AuthProviderFactory
    #: Resolvers this provider adds to the common ones, by the name config uses.
    resolvers: Mapping[str, SignInResolverFactory] = field(default_factory=dict)


# -- sign-in (spec §10) --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TokenParams:
    """What to put in an identity token: ``sub``, ``ent`` and any extra claims."""

    #: ``sub`` (a user entity ref), optional ``ent`` (ownership refs), extra claims.
    claims: dict[str, Any]


@dataclass(frozen=True, slots=True)
class BackstageSignInResult:
    """What a sign-in resolver returns: the issued identity token."""

    token: str


@dataclass(frozen=True, slots=True)
class SignInInfo:
    """What a sign-in resolver gets: the profile and the provider's raw result."""

    profile: ProfileInfo
    #: The provider result: an ``OAuthAuthenticatorResult`` or a proxy provider's result.
    result: Any


class AuthResolverContext(Protocol):
    """What resolvers may do (Backstage ``AuthResolverContext``); public API for custom ones."""

    def issue_token(self, params: TokenParams) -> BackstageSignInResult:
        """Issue a token for ``params.claims`` (``ent`` defaults to ``[sub]``)."""
        ...

    def find_catalog_user(self, query: Mapping[str, Any]) -> Mapping[str, Any]:
        """The one User entity matching ``{"entityRef"}``, ``{"annotations"}`` or ``{"filter"}``.

        Raises ``NotFoundError`` "User not found" or ``ConflictError`` on several matches.
        """
        ...

    def sign_in_with_catalog_user(
        self,
        query: Mapping[str, Any],
        *,
        dangerous_entity_ref_fallback: str | Mapping[str, str] | None = None,
    ) -> BackstageSignInResult:
        """Find the user, resolve ownership, issue a token (or use the fallback ref)."""
        ...

    def resolve_ownership_entity_refs(self, entity: Mapping[str, Any]) -> list[str]:
        """The user's ref plus its direct ``memberOf`` groups, lowercased."""
        ...


#: Maps a provider's result to an identity token.
SignInResolver = Callable[[SignInInfo, AuthResolverContext], BackstageSignInResult]

#: Builds a resolver from its options (``None`` when config gives none).
SignInResolverFactory = Callable[[Mapping[str, Any] | None], SignInResolver]
