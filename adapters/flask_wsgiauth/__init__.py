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
from collections.abc import Callable
from typing import Any

from flask import current_app
from flask import g
from flask import request
from werkzeug.datastructures import Headers
from werkzeug.local import LocalProxy

from wsgiauth import AuthAppSource
from wsgiauth import AuthMiddleware
from wsgiauth import BackstageIdentity
from wsgiauth import HttpError
from wsgiauth import auth_app_from
from wsgiauth import authenticate
from wsgiauth import refusal_response

__all__ = ["WsgiAuth", "current_identity", "get_identity", "login_required"]


class WsgiAuth:
    """The extension; ``config`` beats ``app.config["WSGIAUTH_CONFIG"]``.

    :param config: app-config path(s), a ``Config``, or a ready ``AuthApp``.
    """

    def __init__(self, app: Any = None, *, config: AuthAppSource | None = None) -> None:
        self.config = config
        if app is not None:
            self.init_app(app)

    def init_app(self, app: Any) -> None:
        """Build and mount the auth app; a bad config or a clashing route fails here."""
        source = self.config if self.config is not None else app.config.get("WSGIAUTH_CONFIG")
        auth_app = auth_app_from(source, setting="WSGIAUTH_CONFIG")
        for rule in app.url_map.iter_rules():  # the routes registered so far
            auth_app.check_host_route(rule.rule, rule.rule.split("<", 1)[0])
        app.wsgi_app = AuthMiddleware(app.wsgi_app, auth_app)
        app.extensions["wsgiauth"] = auth_app


def get_identity() -> BackstageIdentity | None:
    """The caller's verified identity, once per request; None without a (valid) token."""
    if "wsgiauth_identity" not in g:
        verifier = current_app.extensions["wsgiauth"].verifier
        g.wsgiauth_identity = authenticate(request.environ, verifier, protected=False)
    identity: BackstageIdentity | None = g.wsgiauth_identity
    return identity


#: The caller's identity, or a proxy to None.
current_identity: Any = LocalProxy(get_identity)


def login_required(view: Callable[..., Any]) -> Callable[..., Any]:
    """Answer 401 in Backstage's JSON error shape unless a valid identity token came."""

    @functools.wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        auth_app = current_app.extensions["wsgiauth"]
        try:
            identity = authenticate(request.environ, auth_app.verifier)
        except HttpError as error:  # the core's 401, or its answer to a preflight
            refusal = refusal_response(request.environ, error, cors=auth_app.cors)
            response = current_app.response_class(refusal.body, status=refusal.status)
            response.headers = Headers(refusal.headerlist)  # as sent: no default Content-Type
            return response
        g.wsgiauth_identity = identity
        return current_app.ensure_sync(view)(*args, **kwargs)

    return wrapper
