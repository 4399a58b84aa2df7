"""wsgiauth: Backstage-compatible sign-in for any WSGI app.

Wrap an app with :class:`AuthMiddleware` around the app built by
:func:`create_auth_app` from a Backstage ``app-config.yaml``, and hand it the
caller's identity with :class:`IdentityMiddleware`::

    from wsgiauth import AuthMiddleware, IdentityMiddleware, create_auth_app, load_config

    auth_app = create_auth_app(load_config("app-config.yaml"))
    application = IdentityMiddleware(application, auth_app.verifier)
    application = AuthMiddleware(application, auth_app)
"""

from __future__ import annotations

from .app import AuthApp as AuthApp
from .app import AuthAppSource as AuthAppSource
from .app import auth_app_from as auth_app_from
from .app import create_auth_app as create_auth_app
from .catalog.context import CatalogAuthResolverContext as CatalogAuthResolverContext
from .catalog.types import Catalog as Catalog
from .catalog.yaml_catalog import YamlCatalog as YamlCatalog
from .config import Config as Config
from .errors import AuthenticationError as AuthenticationError
from .errors import ConfigError as ConfigError
from .errors import HttpError as HttpError
from .errors import InputError as InputError
from .errors import NotAllowedError as NotAllowedError
from .errors import NotFoundError as NotFoundError
from .errors import ServiceUnavailableError as ServiceUnavailableError
from .errors import WsgiAuthError as WsgiAuthError
from .identity.middleware import IdentityMiddleware as IdentityMiddleware
from .identity.middleware import authenticate as authenticate
from .identity.middleware import path_prefixes as path_prefixes
from .identity.middleware import refusal_response as refusal_response
from .identity.verifier import BackstageIdentity as BackstageIdentity
from .identity.verifier import IdentityVerifier as IdentityVerifier
from .loader import load_config as load_config
from .middleware import AuthMiddleware as AuthMiddleware
from .sign_in.factory import create_sign_in_resolver_factory as create_sign_in_resolver_factory
from .types import AuthResolverContext as AuthResolverContext
from .types import BackstageSignInResult as BackstageSignInResult
from .types import ProfileInfo as ProfileInfo
from .types import ProviderModule as ProviderModule
from .types import SignInInfo as SignInInfo
from .types import SignInResolver as SignInResolver
from .types import TokenParams as TokenParams

__all__ = [
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
