"""The guest provider: sign in with no credentials, for development (spec §1.8).

``GET /api/auth/guest/refresh`` signs everyone in as ``user:development/guest``
(or ``auth.providers.guest.userEntityRef``). Outside development it refuses,
unless ``dangerouslyAllowOutsideDevelopment: true`` says otherwise: a guest
door left open in production would let anyone in.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..catalog import parse_entity_ref
from ..catalog import stringify_entity_ref
from ..errors import InputError
from ..errors import UnimplementedError
from ..proxy import ProfileInfo
from ..proxy import ProviderModule
from ..proxy import ProxyAuthenticatorResult
from ..proxy import create_proxy_auth_provider_factory
from ..sign_in import TokenParams

if TYPE_CHECKING:
    from webob import Request

    from ..proxy import AuthProviderFactoryOptions
    from ..proxy import Config
    from ..proxy import HttpClient
    from ..sign_in import AuthResolverContext
    from ..sign_in import BackstageSignInResult
    from ..sign_in import SignInInfo
    from ..sign_in import SignInResolver

__all__ = ["GuestAuthenticator", "module"]

DEFAULT_USER_ENTITY_REF = "user:development/guest"
OUTSIDE_DEVELOPMENT = (
    "The guest provider is NOT recommended for use outside of a development environment. "
    "If you want to enable this, set `auth.providers.guest.dangerouslyAllowOutsideDevelopment: "
    "true` in your app config."
)


class GuestAuthenticator:
    """Reads nothing: every caller is the guest."""

    def __init__(self, config: Config) -> None:
        self.config = config

    @classmethod
    def from_config(cls, config: Config, *, http: HttpClient) -> GuestAuthenticator:
        """The guest reads no keys: ``http`` is not needed."""
        return cls(config)

    def authenticate(self, request: Request) -> ProxyAuthenticatorResult:
        """The guest needs no proof."""
        return ProxyAuthenticatorResult(result={})

    def default_profile_transform(self, result: ProxyAuthenticatorResult) -> ProfileInfo:
        """The guest has no profile."""
        return ProfileInfo()


def _guest_resolver(options: AuthProviderFactoryOptions) -> SignInResolver:
    """Backstage's guest resolver, with every option read and checked at startup."""
    config = options.config
    try:
        user_ref = stringify_entity_ref(
            parse_entity_ref(config.get_optional_string("userEntityRef") or DEFAULT_USER_ENTITY_REF)
        )
        ownership = [
            stringify_entity_ref(parse_entity_ref(ref))
            for ref in config.get_optional_string_list("ownershipEntityRefs") or [user_ref]
        ]
    except InputError as error:
        raise config.error("userEntityRef", str(error)) from error
    allowed = options.environment == "development" or bool(
        config.get_optional_bool("dangerouslyAllowOutsideDevelopment")
    )

    def resolve(info: SignInInfo, context: AuthResolverContext) -> BackstageSignInResult:
        if not allowed:
            raise UnimplementedError(OUTSIDE_DEVELOPMENT)
        try:
            return context.sign_in_with_catalog_user({"entityRef": user_ref})
        except Exception:  # noqa: BLE001 - Backstage falls back on any catalog error
            return context.issue_token(TokenParams(claims={"sub": user_ref, "ent": ownership}))

    return resolve


module = ProviderModule(
    provider_id="guest",
    factory=create_proxy_auth_provider_factory(
        GuestAuthenticator, sign_in_resolver=_guest_resolver
    ),
)
