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
forbidden view, a Flask decorator), call :func:`authenticate` there: it is the
middleware's own check, and raises the :class:`~wsgiauth.errors.HttpError` that
:func:`refusal_response` turns into the answer to send. The adapters do.
"""

from __future__ import annotations

import logging
import posixpath
import re
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TYPE_CHECKING
from typing import Literal
from typing import overload

from webob import Request
from webob import Response

from ..errors import AuthenticationError
from ..errors import HttpError
from ..responses import error_response
from .verifier import BackstageIdentity
from .verifier import IdentityVerifier

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIApplication
    from _typeshed.wsgi import WSGIEnvironment

    from ..cors import CorsPolicy

__all__ = [
    "IDENTITY_ENVIRON_KEY",
    "IdentityMiddleware",
    "authenticate",
    "path_prefixes",
    "refusal_response",
]

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


def path_prefixes(prefixes: Sequence[str]) -> Callable[[WSGIEnvironment], bool]:
    """Whether a request's path is one of ``prefixes`` or under one.

    ``"/api/private"`` covers it and everything under it, not ``/api/privateer``;
    ``"/"`` covers every path. ``//``, ``.`` and ``..`` are resolved first, or
    ``/api//private`` would slip past while a router that collapses slashes still
    serves the private view. Prefixes are plain text (``"/privé"``, not
    ``"/priv%C3%A9"``), compared with ``PATH_INFO`` in its PEP 3333 form: UTF-8
    bytes read as latin-1.
    """
    if isinstance(prefixes, str):
        raise TypeError("protected must be a sequence of path prefixes, not a string")
    pairs = []
    for prefix in prefixes:
        if not prefix.startswith("/"):
            raise ValueError(f"protected path must start with '/': {prefix!r}")
        # PATH_INFO holds UTF-8 bytes decoded as latin-1: compare in that form, or a
        # non-ASCII prefix would never match and its views would be served to anyone.
        exact = prefix.rstrip("/").encode("utf-8").decode("latin-1")
        pairs.append((exact, exact + "/"))
    matches = tuple(pairs)

    def under(environ: WSGIEnvironment) -> bool:
        if not matches:
            return False
        path = _normalize(environ.get("PATH_INFO", "") or "/")
        return any(path == exact or path.startswith(sub) for exact, sub in matches)

    return under


@overload
def authenticate(
    environ: WSGIEnvironment, verifier: IdentityVerifier, *, protected: Literal[True] = True
) -> BackstageIdentity: ...
@overload
def authenticate(
    environ: WSGIEnvironment,
    verifier: IdentityVerifier,
    *,
    protected: bool | Callable[[WSGIEnvironment], bool],
) -> BackstageIdentity | None: ...
def authenticate(
    environ: WSGIEnvironment,
    verifier: IdentityVerifier,
    *,
    protected: bool | Callable[[WSGIEnvironment], bool] = True,
) -> BackstageIdentity | None:
    """The caller's verified identity: :class:`IdentityMiddleware`'s check, for host hooks.

    Where sign-in is required (``protected``: a flag, or a predicate asked only when
    it matters) a missing or bad token raises
    :class:`~wsgiauth.errors.AuthenticationError`, and keys that cannot be fetched
    :class:`~wsgiauth.errors.ServiceUnavailableError`; :func:`refusal_response`
    renders either. A CORS preflight there is unauthenticated whatever it carries
    (browsers send no credentials on one), so it never reaches a view. Elsewhere a
    missing or bad token means None, so a public page never fails because of a
    stale token. Without an ``Authorization`` header on an unprotected path no
    Request object is built.

    :raises HttpError: only where sign-in is required.
    """
    if environ.get("HTTP_AUTHORIZATION") is None or _is_preflight(environ):
        if not _asks(protected, environ):
            return None
        # A forged preflight must not reach a view that takes "no identity" for "public".
        raise AuthenticationError("Missing credentials")
    try:
        return verifier.identity_from_environ(environ)
    except HttpError as error:
        if not _asks(protected, environ):
            # A public page must not fail because of a stale or foreign token.
            log.debug("Ignoring a bad identity token on an unprotected path: %s", error)
            return None
        raise


def refusal_response(
    environ: WSGIEnvironment, error: HttpError, *, cors: CorsPolicy | None = None
) -> Response:
    """What to send instead of the view when :func:`authenticate` raised ``error``.

    Backstage's JSON error body; a 401 carries an RFC 6750 ``WWW-Authenticate``
    challenge (``Bearer``, or ``Bearer error="invalid_token"`` when a token came). A
    CORS preflight is answered instead: 204, with CORS headers only for an origin
    ``cors`` allows (without a policy, none, which no browser takes as permission).
    Each host converts this one response into its framework's.
    """
    if _is_preflight(environ):
        request = Request(environ)
        response = cors.preflight(request) if cors is not None else Response(status=204)
        if cors is not None:
            cors.apply(request, response)
        return response
    response = error_response(Request(environ), error)
    if isinstance(error, AuthenticationError):
        # RFC 6750 §3: tell the client which scheme to use (and that its token failed).
        token_came = environ.get("HTTP_AUTHORIZATION") is not None
        response.headers["WWW-Authenticate"] = (
            'Bearer error="invalid_token"' if token_came else "Bearer"
        )
    return response


def _asks(protected: bool | Callable[[WSGIEnvironment], bool], environ: WSGIEnvironment) -> bool:
    return protected if isinstance(protected, bool) else protected(environ)


class IdentityMiddleware:
    """Verify bearer identity tokens before the wrapped app runs.

    :param protected: path prefixes (see :func:`path_prefixes`), or a predicate on the
        environ. Requests there need a valid token.
    :param set_remote_user: also set ``REMOTE_USER`` to the user entity ref. It is left
        as the server set it when there is no identity.
    :param environ_key: where the identity (or None) goes.
    :param cors: the CORS policy (``auth_app.cors``) that answers preflights on protected
        paths; without it they get a bare 204, which no browser takes as a permission.
    """

    def __init__(
        self,
        app: WSGIApplication,
        verifier: IdentityVerifier,
        *,
        protected: Sequence[str] | Callable[[WSGIEnvironment], bool] = (),
        set_remote_user: bool = False,
        environ_key: str = IDENTITY_ENVIRON_KEY,
        cors: CorsPolicy | None = None,
    ) -> None:
        self.app = app
        self.cors = cors
        self.verifier = verifier
        self.set_remote_user = set_remote_user
        self.environ_key = environ_key
        self._protected = protected if callable(protected) else path_prefixes(protected)

    def is_protected(self, environ: WSGIEnvironment) -> bool:
        """Whether this request needs a valid identity token."""
        return self._protected(environ)

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        try:
            identity = authenticate(environ, self.verifier, protected=self.is_protected)
        except HttpError as error:
            return refusal_response(environ, error, cors=self.cors)(environ, start_response)
        environ[self.environ_key] = identity
        if identity is not None and self.set_remote_user:
            environ["REMOTE_USER"] = identity.user_entity_ref
        return self.app(environ, start_response)


def _is_preflight(environ: WSGIEnvironment) -> bool:
    """A CORS preflight: browsers never send credentials on it, so it cannot carry a token."""
    return (
        environ.get("REQUEST_METHOD") == "OPTIONS"
        and "HTTP_ACCESS_CONTROL_REQUEST_METHOD" in environ
    )
