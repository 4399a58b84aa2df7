"""The WSGI entry point for gunicorn and other servers: ``gunicorn 'wsgiauth.wsgi:application'``.

``application`` is the auth app built from the app-config files named by the
``WSGIAUTH_CONFIG`` environment variable (several paths separated by
``os.pathsep``, later files win). By default it is served bare: the auth routes
at their base path and a 404 in Backstage's JSON error shape everywhere else.
With ``WSGIAUTH_APP=package.module:attr`` it wraps that WSGI app instead, as
``wsgiauth serve --app`` does: the app's ``configure(config)`` is called if it
has one, the caller's identity is offered through
:class:`~wsgiauth.identity.middleware.IdentityMiddleware` (``environ
["wsgiauth.identity"]`` and ``REMOTE_USER``), and the paths listed in its
``protected_paths`` attribute need a valid identity token.

A config that keeps keys or user info in memory (Backstage's development
config: ``backend.database.connection: ':memory:'``, or ``auth.keyStore.provider:
memory``) is served only when every worker can share that memory: when the
server's main process made a store for its workers (``wsgiauth serve``, gunicorn
with :mod:`wsgiauth.gunicorn_hooks`; see :mod:`wsgiauth.server_store`) or
``WSGIAUTH_SINGLE_PROCESS=1`` says the app runs in one process. Otherwise a
worker's tokens would fail at the others, so it refuses to start, naming the key.

``application`` is built on first access, not on import: gunicorn reads it
while a worker boots (in the master with ``--preload``), so a bad or missing
config stops the server at startup with the message of the
:class:`~wsgiauth.errors.ConfigError`, and importing this module stays free of
side effects. Programs build the same thing with :func:`make_application`.
"""

from __future__ import annotations

import os
import pkgutil
from collections.abc import Iterable
from collections.abc import Mapping
from time import sleep
from typing import TYPE_CHECKING
from typing import Any

from webob import Request

from .app import AuthApp
from .app import create_auth_app
from .errors import ConfigError
from .errors import NotFoundError
from .identity.database_config import unshared_memory_error
from .identity.middleware import IdentityMiddleware
from .identity.service import publish_signing_key
from .loader import load_config
from .middleware import AuthMiddleware
from .responses import error_response
from .responses import request_url

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

    from .config import Config

__all__ = [
    "APP_ENV",
    "CONFIG_ENV",
    "application_from_environ",
    "configured",
    "import_app",
    "make_application",
    "refuse_unshared_memory",
    "served_stack",
]

#: The app-config files, separated by ``os.pathsep`` (``:`` on POSIX).
CONFIG_ENV = "WSGIAUTH_CONFIG"
#: The WSGI app to wrap, as ``package.module:attr``; unset serves the auth app bare.
APP_ENV = "WSGIAUTH_APP"


def _not_found(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """What a bare auth app serves outside its base path: Backstage's 404 JSON."""
    # The path as sent, escaped: decoding a hostile one to report it would fail.
    path = request_url({**environ, "QUERY_STRING": ""})
    return error_response(Request(environ), NotFoundError(f"Not found: {path}"))(
        environ, start_response
    )


def import_app(dotted: str) -> WSGIApplication:
    """The WSGI app named by ``package.module:attr`` (``attr`` may itself be dotted).

    :raises ValueError: a malformed name or an object that is not callable.
    :raises ImportError, AttributeError: no such module or attribute.
    """
    module_name, _, attr = dotted.partition(":")
    if not module_name or not attr:
        raise ValueError("expected package.module:attribute")
    obj: Any = pkgutil.resolve_name(dotted)
    if not callable(obj):
        raise ValueError(f"{type(obj).__name__} is not a WSGI callable")
    return obj  # type: ignore[no-any-return]


def configured(app: WSGIApplication, config: Config) -> WSGIApplication:
    """``app.configure(config)`` if ``app`` has it (the demo portal does), else ``app``.

    :raises ValueError: ``configure`` returned something that is not a WSGI app.
    """
    configure = getattr(app, "configure", None)
    if not callable(configure):
        return app
    result = configure(config)
    if not callable(result):
        raise ValueError(f"configure() returned {type(result).__name__}, not a WSGI callable")
    return result  # type: ignore[no-any-return]


def served_stack(auth_app: AuthApp, app: WSGIApplication | None) -> WSGIApplication:
    """The served stack: ``app`` behind the auth routes, offered the caller's identity.

    Paths ``app`` lists in ``protected_paths`` need a valid identity token; with no
    ``app``, the auth routes alone, and Backstage's JSON 404 elsewhere.
    """
    if app is None:
        return AuthMiddleware(_not_found, auth_app)
    wrapped: WSGIApplication = app
    if auth_app.verifier is not None:
        wrapped = IdentityMiddleware(
            app,
            auth_app.verifier,
            protected=tuple(getattr(app, "protected_paths", ())),
            set_remote_user=True,
            cors=auth_app.cors,
        )
    return AuthMiddleware(wrapped, auth_app)


def make_application(
    *config_paths: str | os.PathLike[str], app: WSGIApplication | str | None = None
) -> WSGIApplication:
    """The auth app from ``config_paths``, bare or in front of ``app``.

    :param config_paths: app-config files; later files win.
    :param app: the WSGI app to wrap, or its ``package.module:attr`` name; None
        serves the auth routes alone, with a JSON 404 elsewhere.
    :raises ConfigError: no config file, a bad config, or an app that cannot be loaded.
    """
    if not config_paths:
        raise ConfigError("no config file given")
    config = load_config(*config_paths)
    return _served(config, create_auth_app(config), app)


def _served(
    config: Config, auth_app: AuthApp, app: WSGIApplication | str | None
) -> WSGIApplication:
    if app is None:
        return served_stack(auth_app, None)
    try:
        inner = configured(import_app(app) if isinstance(app, str) else app, config)
    except (ImportError, AttributeError, ValueError) as exc:
        raise ConfigError(f"{APP_ENV}: cannot load {app!r}: {exc}") from exc
    return served_stack(auth_app, inner)


def application_from_environ(environ: Mapping[str, str] | None = None) -> WSGIApplication:
    """:func:`make_application` with ``WSGIAUTH_CONFIG`` and ``WSGIAUTH_APP`` from ``environ``.

    The server entry point: unlike :func:`make_application`, it refuses a config
    that keeps state in memory which the workers cannot share
    (:func:`refuse_unshared_memory`), and, in a key store that other processes
    read, publishes this worker's signing key before it serves, then waits
    (``rotation_delay_seconds``, a few seconds) until every worker's key list can
    show it: no worker's first tokens fail at another worker's JWKS, and no first
    sign-in waits for that.

    :param environ: the process environment by default.
    :raises ConfigError: ``WSGIAUTH_CONFIG`` unset or empty, unshared memory, or
        anything :func:`make_application` raises.
    """
    environ = os.environ if environ is None else environ
    paths = [path for path in environ.get(CONFIG_ENV, "").split(os.pathsep) if path]
    if not paths:
        raise ConfigError(
            f"{CONFIG_ENV} is not set: set it to the app-config file(s) to serve, "
            f"separated by {os.pathsep!r} (later files win)"
        )
    config = load_config(*paths)
    refuse_unshared_memory(config)
    auth_app = create_auth_app(config)
    stack = _served(config, auth_app, environ.get(APP_ENV) or None)
    # In a store other workers read, a new key signs only once they can all list it.
    delay = publish_signing_key(auth_app.token_issuer)
    if delay > 0:
        sleep(delay)  # the first sign-in would wait it otherwise
    return stack


def refuse_unshared_memory(config: Config) -> None:
    """Refuse a config that keeps state in memory when the workers cannot share it.

    :raises ConfigError: from :func:`~wsgiauth.identity.database_config.unshared_memory_error`.
    """
    error = unshared_memory_error(config)
    if error is not None:
        raise error


def __getattr__(name: str) -> Any:
    """Build ``application`` on first access (PEP 562), then keep it as a module global."""
    if name == "application":
        app = application_from_environ()
        globals()["application"] = app
        return app
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
