"""bottle_wsgiauth: wsgiauth as a Bottle plugin.

::

    app.install(WsgiAuthPlugin("app-config.yaml"))

    @app.get("/private", require_identity=True)
    def private(identity):  # the verified BackstageIdentity (None on public routes)
        return {"user": identity.user_entity_ref}

``setup`` mounts the auth app with ``app.mount`` under its base path; Bottle hands
its answers back untouched (mounts skip every plugin and error page). ``apply``
follows Bottle's zero-overhead rule: a route that neither takes ``identity`` nor
sets ``require_identity`` gets its callback back unchanged. No auth logic lives
here: the core verifies tokens and writes the 401.
"""

from __future__ import annotations

import functools
import inspect
import os
from collections.abc import Callable
from collections.abc import Sequence
from typing import Any

from bottle import HTTPResponse
from bottle import request

from wsgiauth import AuthApp
from wsgiauth import BackstageIdentity
from wsgiauth import Config
from wsgiauth import ConfigError
from wsgiauth import HttpError
from wsgiauth import IdentityMiddleware
from wsgiauth import create_auth_app
from wsgiauth import load_config

__all__ = ["WsgiAuthPlugin"]

ConfigSource = str | os.PathLike[str] | Sequence[str] | Config | AuthApp


class WsgiAuthPlugin:
    """Mount the auth app and hand routes the caller's identity.

    :param config: app-config path(s), a ``Config``, or a ready ``AuthApp``.
    :param keyword: the callback argument that receives the identity.
    """

    name = "wsgiauth"
    api = 2

    def __init__(self, config: ConfigSource, *, keyword: str = "identity") -> None:
        self.auth_app = _auth_app(config)
        if self.auth_app.verifier is None:
            raise ConfigError("the auth app has no identity verifier", path="WsgiAuthPlugin")
        self.verifier = self.auth_app.verifier
        self.keyword = keyword
        # The core renders 401s: a gate that refuses every request without a valid token.
        self.gate = IdentityMiddleware(_passed, self.verifier, protected=lambda environ: True)

    def setup(self, app: Any) -> None:
        """Check the routes so far against the base path, then mount the auth app there."""
        for route in app.routes:
            self._check(route)
        app.mount(self.auth_app.base_path, self.auth_app)

    def identity(self, environ: dict[str, Any]) -> BackstageIdentity | None:
        """The caller's verified identity; None without a token or with a bad one."""
        try:
            return self.verifier.identity_from_environ(environ)
        except HttpError:
            return None  # a stale token on a public route means no identity

    def apply(self, callback: Callable[..., Any], route: Any) -> Callable[..., Any]:
        """Wrap only the routes that take ``identity`` or set ``require_identity``."""
        self._check(route)
        # Not route.get_callback_args(): it never returns for a closure over no callable.
        takes = self.keyword in inspect.signature(route.callback).parameters
        required = bool(route.config.get("require_identity", False))
        if not (takes or required):
            return callback

        @functools.wraps(callback)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            environ = request.environ
            if required:
                refusal = _refusal(self.gate, environ)
                if refusal is not None:
                    status, headers, body = refusal
                    return HTTPResponse(body, status, headers)  # not HTTPError: no error page
                identity = environ["wsgiauth.identity"]
            else:
                identity = self.identity(environ)
            if takes:
                kwargs[self.keyword] = identity
            return callback(*args, **kwargs)

        return wrapper

    def _check(self, route: Any) -> None:
        mountpoint = route.config.get("mountpoint") or {}
        if mountpoint.get("target") is self.auth_app:
            return
        base = self.auth_app.base_path
        static = route.rule.split("<", 1)[0]
        if static == base or static.startswith(base + "/"):
            raise ConfigError(
                f"route {route.rule} clashes with the auth base path {base}; "
                "move it or set another auth.basePath",
                path="auth.basePath",
            )


def _auth_app(source: ConfigSource) -> AuthApp:
    if isinstance(source, AuthApp):
        return source
    if isinstance(source, Config):
        return create_auth_app(source)
    paths = [source] if isinstance(source, str | os.PathLike) else list(source or ())
    if not paths or not all(str(path).strip() for path in paths):
        raise ConfigError("missing: give the app-config file path(s)", path="WsgiAuthPlugin")
    return create_auth_app(load_config(*paths))


def _passed(environ: Any, start_response: Any) -> list[bytes]:
    return []


def _refusal(gate: Any, environ: Any) -> tuple[str, list[tuple[str, str]], bytes] | None:
    """Run the gate: None when the token is valid, else its answer (status, headers, body)."""
    seen: list[Any] = []

    def start_response(status: str, headers: list[tuple[str, str]], exc_info: Any = None) -> Any:
        seen[:] = [status, headers]
        return seen.append

    body = b"".join(gate(environ, start_response))
    return (seen[0], seen[1], body) if seen else None
