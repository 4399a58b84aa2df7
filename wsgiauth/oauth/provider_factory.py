"""Build an OAuth provider's route handlers from config (Backstage ``createOAuthProviderFactory``).

One :class:`~wsgiauth.oauth.route_handlers.OAuthRouteHandlers` per environment
under ``auth.providers.<id>``, behind an
:class:`~wsgiauth.oauth.environment.EnvironmentHandler`. Everything is read and
checked here, at startup, so a bad config never waits for the first request.
"""

from __future__ import annotations

from collections.abc import Collection
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..errors import ConfigError
from ..sign_in.declarative import read_declarative_sign_in_resolver
from ..sign_in.identity_response import prepare_backstage_identity_response
from ..types import SignInInfo
from .cookies import OAuthCookieManager
from .environment import EnvironmentHandler
from .route_handlers import OAuthRouteHandlers
from .shared_refresh import SharedRefresh

if TYPE_CHECKING:
    from ..sign_in.factory import SignInResolverFactory
    from ..types import AuthProviderFactory
    from ..types import AuthProviderFactoryOptions
    from ..types import AuthResolverContext
    from ..types import BackstageIdentityResponse
    from ..types import ProfileInfo
    from ..types import SignInResolver
    from .route_handlers import SignIn
    from .types import OAuthAuthenticator
    from .types import OAuthAuthenticatorResult
    from .types import ProfileTransform

__all__ = ["COMMON_CONFIG_KEYS", "create_oauth_provider_factory"]

#: The keys :func:`create_oauth_provider_factory` itself reads in every environment.
COMMON_CONFIG_KEYS = frozenset({"callbackUrl", "additionalScopes", "sessionDuration", "signIn"})


def create_oauth_provider_factory(
    authenticator: type[OAuthAuthenticator],
    *,
    profile_transform: ProfileTransform | None = None,
    sign_in_resolver: SignInResolver | None = None,
    sign_in_resolver_factories: Mapping[str, SignInResolverFactory] | None = None,
    config_keys: Collection[str] | None = None,
    environments: bool = True,
) -> AuthProviderFactory:
    """A provider factory that builds ``authenticator`` once per configured environment.

    :param config_keys: the keys the authenticator reads in an environment. Given,
        any other key (besides :data:`COMMON_CONFIG_KEYS`) fails startup and
        ``check-config`` with an error naming it: a misspelt ``clientSecrett`` must
        not pass for an unset one.
    :param sign_in_resolver: used when an environment configures no ``signIn.resolvers``.
    :param sign_in_resolver_factories: the names ``signIn.resolvers`` may use; by
        default ``options.sign_in_resolver_factories``: the common ones, the provider
        module's own and entry points.
    :param environments: ``False`` for a provider configured once, as Backstage's
        ``saml`` is: ``auth.providers.<id>`` is its config, for every ``env``.
    """
    session_cookie = bool(getattr(authenticator, "session_cookie", False))
    posts_callback = bool(getattr(authenticator, "posts_callback", False))

    def factory(options: AuthProviderFactoryOptions) -> EnvironmentHandler:
        provider_id = options.provider_id
        if session_cookie and not options.sealer.enabled:
            raise ConfigError(
                f"auth provider '{provider_id}' keeps its session in a sealed cookie, "
                "which needs a secret",
                path="auth.session.secret",
            )
        factories = sign_in_resolver_factories or options.sign_in_resolver_factories
        handlers = {}
        if environments:
            blocks = [(env, options.config.get_config(env)) for env in options.config.keys()]
        else:
            blocks = [(options.environment, options.config)]
        for env, config in blocks:
            if config_keys is not None:
                config.check_keys(COMMON_CONFIG_KEYS | set(config_keys))
            callback_url = (
                config.get_optional_string("callbackUrl")
                or f"{options.base_url}/{provider_id}/handler/frame"
            )
            duration = config.get_optional_duration_seconds("sessionDuration")
            cookies = OAuthCookieManager(
                provider_id=provider_id,
                base_url=options.base_url,
                callback_url=callback_url,
                default_app_origin=options.app_url,
                sealer=options.sealer,
                session_duration=int(duration) if duration else None,
                cookie_configurer=options.cookie_configurer,
                session_cookie=session_cookie,
                posts_callback=posts_callback,
            )
            resolver = read_declarative_sign_in_resolver(config, factories) or sign_in_resolver
            handlers[env] = OAuthRouteHandlers(
                authenticator.from_config(config, callback_url=callback_url, http=options.http),
                provider_id=provider_id,
                environment=env,
                callback_url=callback_url,
                app_url=options.app_url,
                is_origin_allowed=options.is_origin_allowed,
                cookies=cookies,
                additional_scopes=tuple(
                    config.get_optional_string_or_list("additionalScopes") or ()
                ),
                profile_transform=profile_transform,
                sign_in=_sign_in(resolver, options.resolver_context),
                refreshes=SharedRefresh(options.refresh_flights, namespace=f"{provider_id}/{env}"),
            )
        return EnvironmentHandler(provider_id, handlers, single=not environments)

    return factory


def _sign_in(resolver: SignInResolver | None, context: AuthResolverContext) -> SignIn | None:
    """The route handlers' sign-in step; ``None`` (no ``backstageIdentity``) without a resolver."""
    if resolver is None:
        return None

    def sign_in(
        result: OAuthAuthenticatorResult, profile: ProfileInfo
    ) -> BackstageIdentityResponse:
        signed_in = resolver(SignInInfo(profile=profile, result=result), context)
        return prepare_backstage_identity_response(signed_in)

    return sign_in
