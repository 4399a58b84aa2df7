"""``IdentityMiddleware``: hand the wrapped app the caller's verified Backstage identity.

It reads ``Authorization: Bearer <token>``, verifies the token with an
:class:`~wsgiauth.identity.verifier.IdentityVerifier`, and puts the
:class:`~wsgiauth.identity.verifier.BackstageIdentity` (or None) in
``environ["wsgiauth.identity"]``, and optionally the user entity ref in
``REMOTE_USER``. On *protected* paths a missing or bad token is answered with
401 in Backstage's JSON error shape and never reaches the app; elsewhere a bad
token just means no identity, so a public page never fails because of a stale
token.

A request without an ``Authorization`` header on an unprotected path costs a
dictionary lookup and a prefix check: no Request object is built.

When not to use it: if your framework has its own security hooks (a Pyramid
security policy, a Flask ``before_request``), call
:meth:`~wsgiauth.identity.verifier.IdentityVerifier.identity_from_environ` there
instead; the adapters do.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TYPE_CHECKING

from webob import Request

from ..app import error_response
from ..errors import AuthenticationError
from ..errors import HttpError
from .verifier import BackstageIdentity
from .verifier import IdentityVerifier

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["IDENTITY_ENVIRON_KEY", "IdentityMiddleware"]

log = logging.getLogger(__name__)

#: Where the identity (or None) is put by default.
IDENTITY_ENVIRON_KEY = "wsgiauth.identity"

_SLASHES = re.compile(r"/{2,}")


def _normalize(path: str) -> str:
    """``PATH_INFO`` with ``//``, ``.`` and ``..`` resolved, as routers may resolve them."""
    if "//" not in path and "/." not in path:
        return path  # the common case costs two substring scans
    normalized = posixpath.normpath(_SLASHES.sub("/", path))
    if path.endswith("/") and not normalized.endswith("/"):
        normalized += "/"
    return normalized if normalized.startswith("/") else "/" + normalized


class IdentityMiddleware:
    """Verify bearer identity tokens before the wrapped app runs.

    :param protected: path prefixes (``"/api/private"`` covers it and everything under
        it, not ``/api/privateer``; ``"/"`` covers every path), or a predicate on the
        environ. Requests there need a valid token.
    :param set_remote_user: also set ``REMOTE_USER`` to the user entity ref. It is left
        as the server set it when there is no identity.
    :param environ_key: where the identity (or None) goes.
    """

    def __init__(
        self,
        app: WSGIApplication,
        verifier: IdentityVerifier,
        *,
        protected: Sequence[str] | Callable[[WSGIEnvironment], bool] = (),
        set_remote_user: bool = False,
        environ_key: str = IDENTITY_ENVIRON_KEY,
    ) -> None:
        self.app = app
        self.verifier = verifier
        self.set_remote_user = set_remote_user
        self.environ_key = environ_key
        if callable(protected):
            self._predicate: Callable[[WSGIEnvironment], bool] | None = protected
            self._prefixes: tuple[tuple[str, str], ...] = ()
        else:
            if isinstance(protected, str):
                raise TypeError("protected must be a sequence of path prefixes, not a string")
            self._predicate = None
            prefixes = []
            for prefix in protected:
                if not prefix.startswith("/"):
                    raise ValueError(f"protected path must start with '/': {prefix!r}")
                exact = prefix.rstrip("/")
                prefixes.append((exact, exact + "/"))
            self._prefixes = tuple(prefixes)

    def is_protected(self, environ: WSGIEnvironment) -> bool:
        """Whether this request needs a valid identity token."""
        if self._predicate is not None:
            return self._predicate(environ)
        if not self._prefixes:
            return False
        # Resolve "//" and "/./" first, or "/api//private" would slip past the prefix
        # while a router that collapses slashes still serves the private view.
        path = _normalize(environ.get("PATH_INFO", "") or "/")
        return any(path == exact or path.startswith(under) for exact, under in self._prefixes)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        header = environ.get("HTTP_AUTHORIZATION")
        if header is None:
            environ[self.environ_key] = None
            if self.is_protected(environ) and not _is_preflight(environ):
                return self._refuse(
                    environ, start_response, AuthenticationError("Missing credentials"), "Bearer"
                )
            return self.app(environ, start_response)
        identity: BackstageIdentity | None
        try:
            identity = self.verifier.identity_from_environ(environ)
        except HttpError as error:
            identity = None
            if self.is_protected(environ):
                challenge = 'Bearer error="invalid_token"'
                if not isinstance(error, AuthenticationError):
                    challenge = ""  # a 503 is no statement about the token
                return self._refuse(environ, start_response, error, challenge)
            # A public page must not fail because of a stale or foreign token.
            log.debug("Ignoring a bad identity token on an unprotected path: %s", error)
        environ[self.environ_key] = identity
        if identity is not None and self.set_remote_user:
            environ["REMOTE_USER"] = identity.user_entity_ref
        return self.app(environ, start_response)

    def _refuse(
        self,
        environ: WSGIEnvironment,
        start_response: StartResponse,
        error: HttpError,
        challenge: str,
    ) -> Iterable[bytes]:
        response = error_response(Request(environ), error)
        if challenge:
            # RFC 6750 §3: tell the client which scheme to use (and that its token failed).
            response.headers["WWW-Authenticate"] = challenge
        return response(environ, start_response)


def _is_preflight(environ: WSGIEnvironment) -> bool:
    """A CORS preflight: browsers never send credentials on it, so it cannot carry a token."""
    return (
        environ.get("REQUEST_METHOD") == "OPTIONS"
        and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
    )
