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
from collections.abc import Callable
from typing import Any

from bottle import HTTPResponse
from bottle import request

from wsgiauth import AuthAppSource
from wsgiauth import BackstageIdentity
from wsgiauth import HttpError
from wsgiauth import auth_app_from
from wsgiauth import authenticate
from wsgiauth import refusal_response

__all__ = ["WsgiAuthPlugin"]


class WsgiAuthPlugin:
    """Mount the auth app and hand routes the caller's identity.

    :param config: app-config path(s), a ``Config``, or a ready ``AuthApp``.
    :param keyword: the callback argument that receives the identity.
    """

    name = "wsgiauth"
    api = 2

    def __init__(self, config: AuthAppSource, *, keyword: str = "identity") -> None:
        self.auth_app = auth_app_from(config, setting="WsgiAuthPlugin")
        self.verifier = self.auth_app.verifier
        self.keyword = keyword

    def setup(self, app: Any) -> None:
        """Check the routes so far against the base path, then mount the auth app there."""
        for route in app.routes:
            self._check(route)
        app.mount(self.auth_app.base_path, self.auth_app)

    def identity(self, environ: dict[str, Any]) -> BackstageIdentity | None:
        """The caller's verified identity; None without a token or with a bad one."""
        return authenticate(environ, self.verifier, protected=False)

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
            try:
                identity = authenticate(request.environ, self.verifier, protected=required)
            except HttpError as error:  # the core's 401 or preflight answer; no error page
                refusal = refusal_response(request.environ, error, cors=self.auth_app.cors)
                return HTTPResponse(refusal.body, refusal.status, refusal.headerlist)
            if takes:
                kwargs[self.keyword] = identity
            return callback(*args, **kwargs)

        return wrapper

    def _check(self, route: Any) -> None:
        mountpoint = route.config.get("mountpoint") or {}
        if mountpoint.get("target") is self.auth_app:
            return
        self.auth_app.check_host_route(route.rule, route.rule.split("<", 1)[0])
