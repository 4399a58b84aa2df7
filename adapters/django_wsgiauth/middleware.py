"""``WsgiAuthMiddleware``: the caller's identity on every Django request.

It sets ``request.wsgiauth_identity`` (a ``BackstageIdentity`` or None), answers
401 in Backstage's JSON error shape on ``WSGIAUTH["PROTECTED"]`` prefixes without
a valid token, and with ``WSGIAUTH["SET_USER"]`` sets ``request.user`` to an
:class:`~django_wsgiauth.IdentityUser` (when ``django.contrib.auth`` already set a
user and there is no identity, that user is kept). Place it after
``AuthenticationMiddleware``. It is built when Django loads its middleware, so a
bad setting fails at startup.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from wsgiauth import ConfigError
from wsgiauth import HttpError
from wsgiauth import authenticate
from wsgiauth import path_prefixes
from wsgiauth import refusal_response

from . import AnonymousIdentityUser
from . import IdentityUser
from . import get_auth_app
from . import http_response
from . import options
from . import wsgi_environ

__all__ = ["WsgiAuthMiddleware"]

_ANONYMOUS = AnonymousIdentityUser()


class WsgiAuthMiddleware:
    """Django middleware; configured by ``settings.WSGIAUTH``."""

    def __init__(self, get_response: Callable[[Any], Any]) -> None:
        self.get_response = get_response
        settings = options()
        protected = settings.get("PROTECTED", ())
        if isinstance(protected, str) or not all(
            isinstance(p, str) and p.startswith("/") for p in protected
        ):
            raise ConfigError(
                "must be a list of path prefixes starting with '/'", path="WSGIAUTH.PROTECTED"
            )
        auth_app = get_auth_app()
        self.verifier = auth_app.verifier
        self.cors = auth_app.cors
        self.protected = path_prefixes(tuple(protected))
        self.set_user = bool(settings.get("SET_USER", False))

    def __call__(self, request: Any) -> Any:
        environ = wsgi_environ(request)
        try:
            identity = authenticate(environ, self.verifier, protected=self.protected)
        except HttpError as error:
            return http_response(refusal_response(environ, error, cors=self.cors))
        request.wsgiauth_identity = identity
        if self.set_user and (identity is not None or not hasattr(request, "user")):
            request.user = IdentityUser(identity) if identity is not None else _ANONYMOUS
        return self.get_response(request)
