"""flask_wsgiauth: wsgiauth as a Flask extension.

::

    app.config["WSGIAUTH_CONFIG"] = "app-config.yaml"
    WsgiAuth(app)  # or wsgiauth = WsgiAuth(); wsgiauth.init_app(app) in a factory

    @app.get("/private")
    @login_required
    def private():
        return {"user": current_identity.user_entity_ref}

``init_app`` wraps ``app.wsgi_app`` in ``AuthMiddleware``, so the auth paths never
reach Flask (its error handlers and debugger cannot touch their answers).
``current_identity`` is a proxy to the caller's verified identity or None; as with
any ``LocalProxy``, test it with ``if current_identity:``, not ``is None``. No auth
logic lives here: the core verifies tokens and writes the 401.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from flask import current_app
from flask import g
from flask import request
from werkzeug.local import LocalProxy

from wsgiauth import AuthApp
from wsgiauth import AuthMiddleware
from wsgiauth import BackstageIdentity
from wsgiauth import Config
from wsgiauth import ConfigError
from wsgiauth import HttpError
from wsgiauth import IdentityMiddleware
from wsgiauth import create_auth_app
from wsgiauth import load_config

__all__ = ["WsgiAuth", "current_identity", "get_identity", "login_required"]

ConfigSource = str | os.PathLike[str] | Sequence[str] | Config | AuthApp


@dataclass(frozen=True, slots=True)
class _State:
    auth_app: AuthApp
    gate: IdentityMiddleware


class WsgiAuth:
    """The extension; ``config`` beats ``app.config["WSGIAUTH_CONFIG"]``.

    :param config: app-config path(s), a ``Config``, or a ready ``AuthApp``.
    """

    def __init__(self, app: Any = None, *, config: ConfigSource | None = None) -> None:
        self.config = config
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        """Build and mount the auth app; a bad config or a clashing route fails here."""
        source = self.config if self.config is not None else app.config.get("WSGIAUTH_CONFIG")
        auth_app = _auth_app(source)
        if auth_app.verifier is None:
            raise ConfigError("the auth app has no identity verifier", path="WSGIAUTH_CONFIG")
        base = auth_app.base_path
        for rule in app.url_map.iter_rules():  # the routes registered so far
            static = rule.rule.split("<", 1)[0]
            if static == base or static.startswith(base + "/"):
                raise ConfigError(
                    f"route {rule.rule} clashes with the auth base path {base}; "
                    "move it or set another auth.basePath",
                    path="auth.basePath",
                )
        app.wsgi_app = AuthMiddleware(app.wsgi_app, auth_app)
        # The core renders 401s: a gate that refuses every request without a valid token.
        gate = IdentityMiddleware(_passed, auth_app.verifier, protected=lambda environ: True)
        app.extensions["wsgiauth"] = _State(auth_app, gate)


def get_identity() -> BackstageIdentity | None:
    """The caller's verified identity, once per request; None without a (valid) token."""
    if "wsgiauth_identity" not in g:
        verifier = current_app.extensions["wsgiauth"].auth_app.verifier
        try:
            g.wsgiauth_identity = verifier.identity_from_environ(request.environ)
        except HttpError:
            g.wsgiauth_identity = None  # a stale token on a public view means no identity
    identity: BackstageIdentity | None = g.wsgiauth_identity
    return identity


#: The caller's identity, or a proxy to None.
current_identity: Any = LocalProxy(get_identity)


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer 401 in Backstage's JSON error shape unless a valid identity token came."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        refusal = _refusal(current_app.extensions["wsgiauth"].gate, request.environ)
        if refusal is not None:
            status, headers, body = refusal
            return current_app.response_class(body, status=status, headers=headers)
        g.wsgiauth_identity = request.environ["wsgiauth.identity"]
        return current_app.ensure_sync(view)(*args, **kwargs)

    return wrapper


def _auth_app(source: ConfigSource | None) -> AuthApp:
    if isinstance(source, AuthApp):
        return source
    if isinstance(source, Config):
        return create_auth_app(source)
    paths = [source] if isinstance(source, str | os.PathLike) else list(source or ())
    if not paths or not all(str(path).strip() for path in paths):
        raise ConfigError("missing: set it to the app-config file path(s)", path="WSGIAUTH_CONFIG")
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
