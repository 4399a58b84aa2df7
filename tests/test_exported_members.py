"""The public surface of ``wsgiauth``: anything not listed here is internal."""

from __future__ import annotations

import inspect

import wsgiauth


def test_all_is_pinned_and_sorted():
    assert wsgiauth.__all__ == sorted(wsgiauth.__all__)
    assert wsgiauth.__all__ == [
        "AuthApp",
        "AuthAppSource",
        "AuthMiddleware",
        "AuthResolverContext",
        "AuthenticationError",
        "BackstageIdentity",
        "BackstageSignInResult",
        "Catalog",
        "CatalogAuthResolverContext",
        "Config",
        "ConfigError",
        "HttpError",
        "IdentityMiddleware",
        "IdentityVerifier",
        "InputError",
        "NotAllowedError",
        "NotFoundError",
        "ProfileInfo",
        "ProviderModule",
        "ServiceUnavailableError",
        "SignInInfo",
        "SignInResolver",
        "TokenParams",
        "WsgiAuthError",
        "YamlCatalog",
        "auth_app_from",
        "authenticate",
        "create_auth_app",
        "create_sign_in_resolver_factory",
        "load_config",
        "path_prefixes",
        "refusal_response",
    ]


def test_every_export_exists_and_belongs_to_wsgiauth():
    for name in wsgiauth.__all__:
        member = getattr(wsgiauth, name)
        if inspect.isclass(member) or inspect.isfunction(member):
            assert member.__module__.startswith("wsgiauth."), name
