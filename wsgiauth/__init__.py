"""wsgiauth: Backstage-compatible sign-in for any WSGI app.

Wrap an app with :class:`AuthMiddleware` around the app built by
:func:`create_auth_app` from a Backstage ``app-config.yaml``::

    from wsgiauth import AuthMiddleware, create_auth_app, load_config

    auth_app = create_auth_app(load_config("app-config.yaml"))
    application = AuthMiddleware(application, auth_app)
"""

from __future__ import annotations

from .app import AuthApp as AuthApp
from .app import create_auth_app as create_auth_app
from .config import Config as Config
from .config import load_config as load_config
from .errors import AuthenticationError as AuthenticationError
from .errors import ConfigError as ConfigError
from .errors import HttpError as HttpError
from .errors import InputError as InputError
from .errors import NotAllowedError as NotAllowedError
from .errors import NotFoundError as NotFoundError
from .errors import ServiceUnavailableError as ServiceUnavailableError
from .errors import WsgiAuthError as WsgiAuthError
from .middleware import AuthMiddleware as AuthMiddleware
from .registry import ProviderModule as ProviderModule

__all__ = [
    "AuthApp",
    "AuthMiddleware",
    "AuthenticationError",
    "Config",
    "ConfigError",
    "HttpError",
    "InputError",
    "NotAllowedError",
    "NotFoundError",
    "ProviderModule",
    "ServiceUnavailableError",
    "WsgiAuthError",
    "create_auth_app",
    "load_config",
]
