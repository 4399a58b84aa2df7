"""Build a proxy provider from config (Backstage ``createProxyAuthProviderFactory``).

Proxy providers have no env level: their config is ``auth.providers.<id>``
itself. The sign-in resolver is mandatory (a proxy result alone names no
catalog user), so a missing one fails at startup.
"""

from __future__ import annotations

from collections.abc import Callable
from collections.abc import Collection
from collections.abc import Mapping
from typing import TYPE_CHECKING

from ..sign_in.declarative import read_declarative_sign_in_resolver
from ..sign_in.identity_response import prepare_backstage_identity_response
from .route_handlers import ProxyRouteHandlers

if TYPE_CHECKING:
    from ..types import AuthProviderFactory
    from ..types import AuthProviderFactoryOptions
    from ..types import SignInResolver
    from ..types import SignInResolverFactory
    from .route_handlers import ProxyAuthenticator

__all__ = ["create_proxy_auth_provider_factory"]


def create_proxy_auth_provider_factory(
    authenticator: type[ProxyAuthenticator],
    *,
    sign_in_resolver_factories: Mapping[str, SignInResolverFactory] | None = None,
    sign_in_resolver: Callable[[AuthProviderFactoryOptions], SignInResolver] | None = None,
    config_keys: Collection[str] | None = None,
) -> AuthProviderFactory:
    """A provider factory for a proxy ``authenticator``.

    :param sign_in_resolver_factories: resolvers ``signIn.resolvers`` may name; by
        default ``options.sign_in_resolver_factories``.
    :param sign_in_resolver: builds the resolver from the options when config names none.
    :param config_keys: the keys the authenticator reads. Given, any other key (besides
        ``signIn``) fails startup and ``check-config`` first, with an error naming it.
    """

    def factory(options: AuthProviderFactoryOptions) -> ProxyRouteHandlers:
        if config_keys is not None:
            options.config.check_keys({"signIn", *config_keys})
        factories = sign_in_resolver_factories or options.sign_in_resolver_factories
        resolver = read_declarative_sign_in_resolver(options.config, factories)
        if resolver is None and sign_in_resolver is not None:
            resolver = sign_in_resolver(options)
        if resolver is None:
            raise options.config.error(
                "signIn",
                f"No sign-in resolver configured for proxy auth provider '{options.provider_id}'",
            )
        return ProxyRouteHandlers(
            authenticator.from_config(options.config, http=options.http),
            sign_in_resolver=resolver,
            resolver_context=options.resolver_context,
            identity_response=prepare_backstage_identity_response,
        )

    return factory
