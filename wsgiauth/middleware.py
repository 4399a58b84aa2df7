"""``AuthMiddleware``: send the auth base path to the auth app, everything else through.

The pass-through path is one string comparison on ``PATH_INFO``: no Request
object, no copy of the environ, nothing read from the body, so the wrapped
app sees exactly what it would see without wsgiauth (Werkzeug's
``DispatcherMiddleware`` does the same). Requests under the base path get it
moved from ``PATH_INFO`` to ``SCRIPT_NAME``, as every WSGI mount does.

When not to use it: if your framework can mount a WSGI app at a path
(Pyramid ``wsgiapp2``, Bottle ``mount``), mount the auth app there instead.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

    from .app import AuthApp

__all__ = ["AuthMiddleware"]


class AuthMiddleware:
    """Wrap ``app`` so that ``base_path`` (default: the auth app's) is served by ``auth_app``."""

    def __init__(
        self, app: WSGIApplication, auth_app: AuthApp, *, base_path: str | None = None
    ) -> None:
        self.app = app
        self.auth_app = auth_app
        prefix = (base_path if base_path is not None else auth_app.base_path).rstrip("/")
        if not prefix.startswith("/"):
            raise ValueError(f"base_path must start with '/': {base_path!r}")
        self.base_path = prefix
        self._prefix_slash = prefix + "/"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        path: str = environ.get("PATH_INFO", "")
        if path.startswith(self._prefix_slash) or path == self.base_path:
            environ["SCRIPT_NAME"] = environ.get("SCRIPT_NAME", "") + self.base_path
            environ["PATH_INFO"] = path[len(self.base_path) :]
            return self.auth_app(environ, start_response)
        return self.app(environ, start_response)
