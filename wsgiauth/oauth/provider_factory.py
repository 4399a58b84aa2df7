"""Build an OAuth provider's route handlers from config (Backstage ``createOAuthProviderFactory``).

One :class:`~wsgiauth.oauth.route_handlers.OAuthRouteHandlers` per environment
under ``auth.providers.<id>``, behind an
:class:`~wsgiauth.environment.EnvironmentHandler`. Everything is read and
checked here, at startup, so a bad config never waits for the first request.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

from ..environment import EnvironmentHandler
from .cookies import OAuthCookieManager
from .route_handlers import OAuthRouteHandlers

if TYPE_CHECKING:
    from ..types import AuthProviderFactory
    from ..types import AuthProviderFactoryOptions
    from .route_handlers import SignIn
    from .types import OAuthAuthenticator
    from .types import ProfileTransform

__all__ = ["create_oauth_provider_factory"]


def create_oauth_provider_factory(
    authenticator: type[OAuthAuthenticator],
    *,
    profile_transform: ProfileTransform | None = None,
    sign_in: SignIn | None = None,
) -> AuthProviderFactory:
    """A provider factory that builds ``authenticator`` once per configured environment."""

    def factory(options: AuthProviderFactoryOptions) -> EnvironmentHandler:
        provider_id = options.provider_id
        handlers = {}
        for env in options.config.keys():
            config = options.config.get_config(env)
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
            )
            handlers[env] = OAuthRouteHandlers(
                authenticator.from_config(config, callback_url=callback_url, http=options.http),
                provider_id=provider_id,
                callback_url=callback_url,
                app_url=options.app_url,
                is_origin_allowed=options.is_origin_allowed,
                cookies=cookies,
                additional_scopes=tuple(
                    config.get_optional_string_or_list("additionalScopes") or ()
                ),
                profile_transform=profile_transform,
                sign_in=sign_in,
            )
        return EnvironmentHandler(provider_id, handlers)

    return factory
