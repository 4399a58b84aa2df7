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

from . import AnonymousIdentityUser
from . import IdentityUser
from . import gate
from . import get_auth_app
from . import options
from . import refuse

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
        self.gate = gate(get_auth_app(), tuple(protected))
        self.set_user = bool(settings.get("SET_USER", False))

    def __call__(self, request: Any) -> Any:
        refusal = refuse(self.gate, request.META)
        if refusal is not None:
            return refusal
        identity = request.META["wsgiauth.identity"]
        request.wsgiauth_identity = identity
        if self.set_user and (identity is not None or not hasattr(request, "user")):
            request.user = IdentityUser(identity) if identity is not None else _ANONYMOUS
        return self.get_response(request)
