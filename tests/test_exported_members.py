"""The public surface: every ``__all__`` is exactly what its module offers, as httpx pins its own.

The package ``__init__`` files are the public API (``wsgiauth`` for apps, ``wsgiauth.oauth``
and ``wsgiauth.proxy`` for provider authors, ...): their ``__all__`` lists every public
name they bind, no more, no less. In every other module, each public class and function
defined there is in ``__all__``, and ``__all__`` names nothing that is not there.
"""

from __future__ import annotations

import importlib
import inspect
import pkgutil
from types import ModuleType

import pytest

import wsgiauth

PACKAGES = [
    "wsgiauth",
    "wsgiauth.catalog",
    "wsgiauth.diagnostics",
    "wsgiauth.fake_idp",
    "wsgiauth.identity",
    "wsgiauth.oauth",
    "wsgiauth.proxy",
    "wsgiauth.sign_in",
    "wsgiauth.testing",
]
MODULES = sorted(
    info.name
    for info in pkgutil.walk_packages(wsgiauth.__path__, "wsgiauth.")
    if info.name not in PACKAGES and not info.ispkg
)


def _isort_order(name: str) -> tuple[int, str]:
    """CONSTANTS, then Classes, then functions, each sorted (ruff's RUF022 order)."""
    return (0 if name.isupper() else 1 if name[:1].isupper() else 2, name)


def _public_bindings(module: ModuleType) -> list[str]:
    return [
        name
        for name, value in vars(module).items()
        if not name.startswith("_")
        and not isinstance(value, ModuleType)
        and name != "annotations"  # from __future__ import annotations
    ]


def test_the_top_level_api_is_pinned():
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


@pytest.mark.parametrize("name", PACKAGES)
def test_a_package_exports_exactly_what_it_binds(name):
    package = importlib.import_module(name)
    assert package.__all__ == sorted(package.__all__, key=_isort_order)
    assert sorted(package.__all__) == sorted(_public_bindings(package))
    for member in map(package.__dict__.get, package.__all__):
        if inspect.isclass(member) or inspect.isfunction(member):
            assert member.__module__.startswith("wsgiauth."), member


@pytest.mark.parametrize("name", MODULES)
def test_a_module_exports_what_it_defines(name):
    module = importlib.import_module(name)
    exported = getattr(module, "__all__", [])
    assert sorted(set(exported) - set(vars(module))) == [], "__all__ names what is not there"
    defined = [
        member
        for member, value in vars(module).items()
        if not member.startswith("_")
        and (inspect.isclass(value) or inspect.isfunction(value))
        and value.__module__ == name
    ]
    assert sorted(set(defined) - set(exported)) == [], "public but not in __all__"
