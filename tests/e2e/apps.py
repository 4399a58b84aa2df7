"""WSGI apps that the e2e tests serve with gunicorn (``tests.e2e.apps:make_app()``).

A tiny downstream app wrapped in ``AuthMiddleware``, built from the app-config
file named by the ``WSGIAUTH_CONFIG`` environment variable, exactly as a user
would deploy wsgiauth in front of their own WSGI app.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment


def downstream_app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
    """The user's own app: answers every path outside ``/api/auth`` with 200."""
    body = b"downstream app\n"
    start_response("200 OK", [("Content-Type", "text/plain"), ("Content-Length", str(len(body)))])
    return [body]


def make_app() -> WSGIApplication:
    """gunicorn app factory: wsgiauth in front of :func:`downstream_app`."""
    from wsgiauth.app import create_auth_app
    from wsgiauth.loader import load_config
    from wsgiauth.middleware import AuthMiddleware

    config = load_config(os.environ["WSGIAUTH_CONFIG"])
    return AuthMiddleware(downstream_app, create_auth_app(config))


def make_hostile_stack() -> WSGIApplication:
    """gunicorn app factory: ``tests.hostile``'s stack, and ``/_pid`` naming the worker."""
    from tests.hostile import build_stack
    from wsgiauth.loader import load_config

    stack = build_stack(load_config(os.environ["WSGIAUTH_CONFIG"]))

    def app(environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        if environ["PATH_INFO"] == "/_pid":
            start_response("200 OK", [("Content-Type", "text/plain")])
            return [str(os.getpid()).encode()]
        return stack(environ, start_response)

    return app
