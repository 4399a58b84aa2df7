"""A legacy portal signed in through wsgiauth, with its own users table as the catalog.

The portal (:mod:`.portal`) is an old-style WSGI app whose authorization code
reads ``REMOTE_USER``. It is wrapped, not rewritten:

- :class:`SqlCatalog` (``examples/sql_catalog.py``) serves the portal's
  ``users`` table to wsgiauth's sign-in resolvers, so tokens name its users
  and carry their groups;
- :class:`~wsgiauth.IdentityMiddleware` with ``set_remote_user=True`` verifies
  the bearer token and sets ``REMOTE_USER`` to the user entity ref
  (``user:default/alice``), which :func:`bare_user_names` turns back into the
  plain user name the portal has always received;
- :class:`~wsgiauth.AuthMiddleware` serves the auth routes under ``/api/auth``.

Run it from the repository root (guest sign-in is mapped to ``alice``, an admin)::

    python -m examples.legacy_portal          # http://127.0.0.1:7007

The variant behind oauth2-proxy (:data:`OAUTH2_PROXY_CONFIG_PATH`) signs in
through the ``oauth2Proxy`` provider instead: the proxy signs the user in and
sets ``X-Forwarded-User``, which names a user of the table::

    python -m examples.legacy_portal --config examples/legacy_portal/app-config.oauth2-proxy.yaml
    oauth2-proxy --http-address 127.0.0.1:4180 --upstream http://127.0.0.1:7007 ...

Only the proxy may reach the portal then: the provider believes any request
that carries those headers (see the oauth2Proxy section of docs/providers.md).
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path
from typing import TYPE_CHECKING

from examples.sql_catalog import SqlCatalog
from wsgiauth import AuthMiddleware
from wsgiauth import Config
from wsgiauth import IdentityMiddleware
from wsgiauth import create_auth_app
from wsgiauth import load_config

from .db import setup_database
from .portal import LegacyPortal

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

__all__ = [
    "CONFIG_PATH",
    "OAUTH2_PROXY_CONFIG_PATH",
    "bare_user_names",
    "make_app",
    "setup_database",
]

#: The example's app-config: guest sign-in as ``user:default/alice``.
CONFIG_PATH = Path(__file__).with_name("app-config.yaml")
#: The variant behind oauth2-proxy: ``X-Forwarded-User`` names the portal's user.
OAUTH2_PROXY_CONFIG_PATH = Path(__file__).with_name("app-config.oauth2-proxy.yaml")
NAMESPACE = "default"


def bare_user_names(app: WSGIApplication, *, namespace: str = NAMESPACE) -> WSGIApplication:
    """Give ``app`` the ``REMOTE_USER`` it expects: ``alice``, not ``user:default/alice``.

    Refs of other kinds or namespaces are left as they are, so they match no user
    of the portal's table.
    """
    prefix = f"user:{namespace}/"

    def middleware(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        user = environ.get("REMOTE_USER", "")
        if user.startswith(prefix):
            environ["REMOTE_USER"] = user[len(prefix) :]
        result: Iterable[bytes] = app(environ, start_response)
        return result

    return middleware


def make_app(
    database: str | os.PathLike[str], config: Config | str | os.PathLike[str] | None = None
) -> WSGIApplication:
    """The portal over the SQLite file ``database``, wrapped by wsgiauth.

    :param config: the app-config, or the path of its file (so that gunicorn can
        serve ``examples.legacy_portal:make_app('portal.db', 'app-config.yaml')``);
        by default :data:`CONFIG_PATH`. With ``auth.providers.oauth2Proxy`` the
        sign-in bar uses that provider, else guest.
    """
    path = os.fspath(database)
    setup_database(path)
    if not isinstance(config, Config):
        config = load_config(CONFIG_PATH if config is None else config)
    providers = config.get_optional_config("auth.providers")
    behind_proxy = providers is not None and "oauth2Proxy" in providers.keys()
    auth_app = create_auth_app(
        config, catalog=SqlCatalog(lambda: sqlite3.connect(path), namespace=NAMESPACE)
    )
    if auth_app.verifier is None:  # pragma: no cover - create_auth_app always sets one
        raise RuntimeError("the auth app has no identity verifier")
    portal = LegacyPortal(path, "oauth2Proxy" if behind_proxy else "guest")
    app = bare_user_names(portal)
    app = IdentityMiddleware(app, auth_app.verifier, set_remote_user=True)
    return AuthMiddleware(app, auth_app)
