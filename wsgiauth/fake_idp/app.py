"""``FakeIdp``: the fake OpenID provider as one WSGI app (webob).

Routes the endpoints, checks methods and sizes, and turns what they raise into
RFC 6749 error objects; nothing reaches the client as a 500 with a stack trace.
Every answer says ``X-Fake-Idp: development and tests only``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable
from collections.abc import Iterable
from collections.abc import Sequence
from typing import TYPE_CHECKING

from webob import Request
from webob import Response

from .authorize import authorize
from .authorize import sign_in
from .context import IdpContext
from .context import OAuthError
from .context import form_of
from .context import json_response
from .discovery import discovery_document
from .grants import GrantStore
from .registry import FakeClient
from .registry import FakeUser
from .session import end_session
from .session import revoke
from .session import userinfo
from .token import token

if TYPE_CHECKING:
    from _typeshed.wsgi import StartResponse
    from _typeshed.wsgi import WSGIEnvironment

__all__ = ["MAX_BODY_LENGTH", "MAX_QUERY_LENGTH", "FakeIdp"]

log = logging.getLogger(__name__)

#: Form bodies past this are refused (413).
MAX_BODY_LENGTH = 64 * 1024
#: Query strings past this are refused (414).
MAX_QUERY_LENGTH = 8192

Handler = Callable[[Request, IdpContext], Response]


def _discovery(request: Request, idp: IdpContext) -> Response:
    response = json_response(discovery_document(idp.issuer))
    response.headers["Cache-Control"] = "max-age=60"
    del response.headers["Pragma"]
    return response


def _jwks(request: Request, idp: IdpContext) -> Response:
    response = json_response(idp.keys.jwks())
    response.headers["Cache-Control"] = "max-age=60"
    del response.headers["Pragma"]
    return response


_ROUTES: dict[str, tuple[tuple[str, ...], Handler]] = {
    "/.well-known/openid-configuration": (("GET", "HEAD"), _discovery),
    "/jwks": (("GET", "HEAD"), _jwks),
    "/authorize": (("GET",), authorize),
    "/sign-in": (("POST",), sign_in),
    "/token": (("POST",), token),
    "/userinfo": (("GET", "POST"), userinfo),
    "/revoke": (("POST",), revoke),
    "/end-session": (("GET", "POST"), end_session),
}


class FakeIdp:
    """An OpenID provider for development and tests: never put it in front of real users.

    :param issuer: its URL, exactly as it appears in ``iss`` (``http://127.0.0.1:8400``).
    :param users: who may sign in (``sub`` is the user's entity ref).
    :param clients: the relying parties, with their exact redirect URIs.
    :param auto_consent: sign every request in as this user ref, with no page.
    """

    def __init__(
        self,
        issuer: str,
        users: Sequence[FakeUser],
        clients: Sequence[FakeClient],
        *,
        auto_consent: str | None = None,
        store: GrantStore | None = None,
    ) -> None:
        self.context = IdpContext.create(
            issuer, users, clients, auto_consent=auto_consent, store=store
        )

    @property
    def issuer(self) -> str:
        return self.context.issuer

    @property
    def metadata_url(self) -> str:
        """The discovery document's URL (the ``metadataUrl`` of wsgiauth's ``oidc`` provider)."""
        return f"{self.context.issuer}/.well-known/openid-configuration"

    def __call__(self, environ: WSGIEnvironment, start_response: StartResponse) -> Iterable[bytes]:
        request = Request(environ)
        try:
            response = self.handle(request)
        except OAuthError as error:
            response = error.response()
        except Exception:
            log.exception("fake-idp: %s %s failed", request.method, request.path)
            response = OAuthError("server_error", "Internal error.", 500).response()
        response.headers["X-Fake-Idp"] = "development and tests only"
        return response(environ, start_response)

    def handle(self, request: Request) -> Response:
        route = _ROUTES.get(request.path_info)
        if route is None:
            raise OAuthError("not_found", "No such endpoint.", 404)
        methods, handler = route
        if request.method not in methods:
            error = OAuthError("invalid_request", f"Use {' or '.join(methods)}.", 405)
            error.headers["Allow"] = ", ".join(methods)
            raise error
        if len(request.query_string) > MAX_QUERY_LENGTH:
            raise OAuthError("invalid_request", "The query string is too long.", 414)
        if request.method == "POST":
            _read_form(request)
        return handler(request, self.context)


def _read_form(request: Request) -> None:
    """Read a bounded form body; anything but a form is refused."""
    if request.content_length is not None and request.content_length > MAX_BODY_LENGTH:
        raise OAuthError("invalid_request", "The request body is too large.", 413)
    if request.content_length and request.content_type != "application/x-www-form-urlencoded":
        raise OAuthError("invalid_request", "Send application/x-www-form-urlencoded.", 415)
    body = request.body_file_raw.read(min(request.content_length or 0, MAX_BODY_LENGTH))
    request.body = body
    form_of(request)
